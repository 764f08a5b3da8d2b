//! The store conformance suite (`webriskops_ports::store_conformance`) against SQLite: the
//! same functions the PostgreSQL store passes.

mod common;

use std::sync::Arc;

use webriskops_ports::store_conformance::{self as suite, Stores};
use webriskops_ports::{JobQueue, SecretStore};
use webriskops_store_sqlite::{MasterKey, SqliteStore};

fn stores(store: &SqliteStore) -> Stores {
    let s = Arc::new(store.clone());
    Stores {
        providers: s.clone(),
        ledger: s.clone(),
        journal: s.clone(),
        secrets: s.clone(),
        accounts: s.clone(),
        jobs: s.clone(),
        events: s.clone(),
        queue: s.clone(),
        uploads: s.clone(),
        hooks: s,
    }
}

fn fresh() -> (tempfile::TempDir, Stores) {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_with_key(dir.path(), &MasterKey::generate());
    let s = stores(&store);
    (dir, s)
}

#[tokio::test]
async fn records() {
    let (_dir, s) = fresh();
    suite::records(&s).await;
}

#[tokio::test]
async fn ledger() {
    let (_dir, s) = fresh();
    suite::ledger(&s).await;
}

#[tokio::test]
async fn journal() {
    let (_dir, s) = fresh();
    suite::journal(&s).await;
}

#[tokio::test]
async fn secrets() {
    let (dir, s) = fresh();
    let path = dir.path().to_owned();
    // The suite drops its handles first: the directory's lock is free again.
    suite::secrets(s, || async move {
        Arc::new(common::open_with_key(&path, &MasterKey::generate())) as Arc<dyn SecretStore>
    })
    .await;
}

#[tokio::test]
async fn accounts() {
    let (_dir, s) = fresh();
    suite::accounts(&s).await;
}

#[tokio::test]
async fn sign_ins() {
    let (_dir, s) = fresh();
    suite::sign_ins(&s).await;
}

#[tokio::test]
async fn expired_authorizations_deleted() {
    let (_dir, s) = fresh();
    suite::expired_authorizations_deleted(&s).await;
}

#[tokio::test]
async fn jobs() {
    let (_dir, s) = fresh();
    suite::jobs(&s).await;
}

#[tokio::test]
async fn events() {
    let (_dir, s) = fresh();
    suite::events(&s).await;
}

#[tokio::test]
async fn events_numbered_per_tenant() {
    let (_dir, s) = fresh();
    suite::events_numbered_per_tenant(&s).await;
}

#[tokio::test]
async fn events_skip_repeats() {
    let (_dir, s) = fresh();
    suite::events_skip_repeats(&s).await;
}

#[tokio::test]
async fn job_uploads() {
    let (_dir, s) = fresh();
    suite::job_uploads(&s).await;
}

#[tokio::test]
async fn queue_one_job_per_tenancy() {
    let (_dir, s) = fresh();
    suite::queue_one_job_per_tenancy(&s).await;
}

#[tokio::test]
async fn queue_basics() {
    let (_dir, s) = fresh();
    suite::queue_basics(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_race() {
    let (_dir, s) = fresh();
    // One process holds the database: its workers share the one handle.
    let workers: Vec<Arc<dyn JobQueue>> = (0..4).map(|_| s.queue.clone()).collect();
    suite::queue_race(&s, workers).await;
}

#[tokio::test]
async fn queue_takeover() {
    let (_dir, s) = fresh();
    suite::queue_takeover(&s).await;
}

#[tokio::test]
async fn queue_heartbeat() {
    let (_dir, s) = fresh();
    suite::queue_heartbeat(&s).await;
}

#[tokio::test]
async fn webhooks() {
    let (_dir, s) = fresh();
    suite::webhooks(&s).await;
}

#[tokio::test]
async fn queue_sync_jobs() {
    let (_dir, s) = fresh();
    suite::queue_sync_jobs(&s).await;
}

#[tokio::test]
async fn queue_sync_schedule() {
    let (_dir, s) = fresh();
    suite::queue_sync_schedule(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_sync_schedule_race() {
    let (_dir, s) = fresh();
    let workers: Vec<Arc<dyn JobQueue>> = (0..4).map(|_| s.queue.clone()).collect();
    suite::queue_sync_schedule_race(&s, workers).await;
}
