//! The store conformance suite (`webriskops_ports::store_conformance`) against
//! PostgreSQL: the same functions the SQLite store passes. Each test has a database of
//! its own (`webriskops_pg_testing`).

use std::sync::Arc;

use webriskops_pg_testing::{test_database, TestDatabase};
use webriskops_ports::store_conformance::{self as suite, Stores};
use webriskops_ports::{JobQueue, SecretStore};
use webriskops_sealing::MasterKey;
use webriskops_store_postgres::{PgOptions, PgStore};

async fn open(db: &TestDatabase) -> PgStore {
    PgStore::open(
        &db.url,
        PgOptions {
            master_key: Some(MasterKey::generate()),
            ..PgOptions::default()
        },
    )
    .await
    .expect("open the store")
}

fn stores(store: PgStore) -> Stores {
    let s = Arc::new(store);
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

async fn fresh() -> (TestDatabase, Stores) {
    let db = test_database().await;
    let s = stores(open(&db).await);
    (db, s)
}

#[tokio::test]
async fn records() {
    let (_db, s) = fresh().await;
    suite::records(&s).await;
}

#[tokio::test]
async fn ledger() {
    let (_db, s) = fresh().await;
    suite::ledger(&s).await;
}

#[tokio::test]
async fn journal() {
    let (_db, s) = fresh().await;
    suite::journal(&s).await;
}

#[tokio::test]
async fn secrets() {
    let (db, s) = fresh().await;
    let url = db.url.clone();
    suite::secrets(s, || async move {
        let other = PgStore::open(
            &url,
            PgOptions {
                master_key: Some(MasterKey::generate()),
                ..PgOptions::default()
            },
        )
        .await
        .unwrap();
        Arc::new(other) as Arc<dyn SecretStore>
    })
    .await;
}

#[tokio::test]
async fn accounts() {
    let (_db, s) = fresh().await;
    suite::accounts(&s).await;
}

#[tokio::test]
async fn sign_ins() {
    let (_db, s) = fresh().await;
    suite::sign_ins(&s).await;
}

#[tokio::test]
async fn expired_authorizations_deleted() {
    let (_db, s) = fresh().await;
    suite::expired_authorizations_deleted(&s).await;
}

#[tokio::test]
async fn jobs() {
    let (_db, s) = fresh().await;
    suite::jobs(&s).await;
}

#[tokio::test]
async fn events() {
    let (_db, s) = fresh().await;
    suite::events(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_numbered_per_tenant() {
    let (_db, s) = fresh().await;
    suite::events_numbered_per_tenant(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_skip_repeats() {
    let (_db, s) = fresh().await;
    suite::events_skip_repeats(&s).await;
}

#[tokio::test]
async fn job_uploads() {
    let (_db, s) = fresh().await;
    suite::job_uploads(&s).await;
}

#[tokio::test]
async fn queue_one_job_per_tenancy() {
    let (_db, s) = fresh().await;
    suite::queue_one_job_per_tenancy(&s).await;
}

#[tokio::test]
async fn queue_basics() {
    let (_db, s) = fresh().await;
    suite::queue_basics(&s).await;
}

/// Four handles with their own pools, as four replicas would hold, race on one database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_race() {
    let (db, s) = fresh().await;
    let mut workers: Vec<Arc<dyn JobQueue>> = Vec::new();
    for _ in 0..4 {
        workers.push(Arc::new(open(&db).await));
    }
    suite::queue_race(&s, workers).await;
}

#[tokio::test]
async fn queue_takeover() {
    let (_db, s) = fresh().await;
    suite::queue_takeover(&s).await;
}

#[tokio::test]
async fn queue_heartbeat() {
    let (_db, s) = fresh().await;
    suite::queue_heartbeat(&s).await;
}

#[tokio::test]
async fn webhooks() {
    let (_db, s) = fresh().await;
    suite::webhooks(&s).await;
}

/// The budget suite: its holders race through the pool's connections, as replicas do
/// through theirs.
async fn budgets() -> (TestDatabase, Arc<dyn webriskops_ports::RequestBudgets>) {
    let db = test_database().await;
    let s: Arc<dyn webriskops_ports::RequestBudgets> = Arc::new(open(&db).await);
    (db, s)
}

#[tokio::test]
async fn budgets_limits() {
    let (_db, b) = budgets().await;
    suite::budgets_limits(b).await;
}

#[tokio::test]
async fn budgets_fairness_and_pause() {
    let (_db, b) = budgets().await;
    suite::budgets_fairness_and_pause(b).await;
}

#[tokio::test]
async fn budgets_reserve() {
    let (_db, b) = budgets().await;
    suite::budgets_reserve(b).await;
}

#[tokio::test]
async fn queue_sync_jobs() {
    let (_db, s) = fresh().await;
    suite::queue_sync_jobs(&s).await;
}

#[tokio::test]
async fn queue_sync_schedule() {
    let (_db, s) = fresh().await;
    suite::queue_sync_schedule(&s).await;
}

/// Four handles with their own pools, as four replicas would hold, tick on one database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_sync_schedule_race() {
    let (db, s) = fresh().await;
    let mut workers: Vec<Arc<dyn JobQueue>> = Vec::new();
    for _ in 0..4 {
        workers.push(Arc::new(open(&db).await));
    }
    suite::queue_sync_schedule_race(&s, workers).await;
}
