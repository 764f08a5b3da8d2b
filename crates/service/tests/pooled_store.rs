//! The export against a store with fewer connections than writes in flight, as the
//! PostgreSQL store has (a pool of 8, 16 writes at once): each call holds a connection
//! from its start until its answer has been read, which happens only when its future is
//! polled. The export must keep polling the writes in flight while it writes the ledger,
//! or the ledger's batch waits for a connection they hold, forever.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;
use webriskops_domain::{FindingId, LedgerEntry, ProviderKey, TenantId};
use webriskops_fake::MemoryStore;
use webriskops_ports::{
    ExportLedger, IntentOutcome, JournalIntent, LedgerScope, PortResult, RunId, RunJournal,
    RunKind, RunRecord,
};
use webriskops_service::{export, ExportOptions, Silent};

/// A store whose every call holds one of `pool` connections across an await point.
#[derive(Debug)]
struct Pooled {
    inner: MemoryStore,
    pool: Arc<Semaphore>,
}

impl Pooled {
    async fn call<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let _connection = self.pool.acquire().await.expect("pool open");
        // The statement is sent; its answer is read when this future is polled again.
        tokio::task::yield_now().await;
        f.await
    }
}

#[async_trait]
impl ExportLedger for Pooled {
    async fn get(&self, scope: &LedgerScope, f: &FindingId) -> PortResult<Option<LedgerEntry>> {
        self.call(self.inner.get(scope, f)).await
    }
    async fn all(&self, scope: &LedgerScope) -> PortResult<Vec<LedgerEntry>> {
        self.call(self.inner.all(scope)).await
    }
    async fn put(&self, scope: &LedgerScope, entry: &LedgerEntry) -> PortResult<()> {
        self.call(self.inner.put(scope, entry)).await
    }
    async fn put_many(&self, scope: &LedgerScope, entries: &[LedgerEntry]) -> PortResult<()> {
        self.call(self.inner.put_many(scope, entries)).await
    }
    async fn clear(&self, scope: &LedgerScope) -> PortResult<u64> {
        self.call(self.inner.clear(scope)).await
    }
}

#[async_trait]
impl RunJournal for Pooled {
    async fn start_run(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        kind: RunKind,
    ) -> PortResult<RunId> {
        self.call(self.inner.start_run(tenant, provider, kind))
            .await
    }
    async fn record_intent(&self, run: RunId, f: &FindingId, action: &str) -> PortResult<i64> {
        self.call(self.inner.record_intent(run, f, action)).await
    }
    async fn record_outcome(&self, intent: i64, outcome: &IntentOutcome) -> PortResult<()> {
        self.call(self.inner.record_outcome(intent, outcome)).await
    }
    async fn finish_run(&self, run: RunId, summary_json: &str) -> PortResult<()> {
        self.call(self.inner.finish_run(run, summary_json)).await
    }
    async fn unfinished(&self, tenant: &TenantId) -> PortResult<Vec<JournalIntent>> {
        self.call(self.inner.unfinished(tenant)).await
    }
    async fn settle_unfinished(&self, tenant: &TenantId, by: RunId) -> PortResult<u64> {
        self.call(self.inner.settle_unfinished(tenant, by)).await
    }
    async fn last_run(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        kind: RunKind,
    ) -> PortResult<Option<RunRecord>> {
        self.call(self.inner.last_run(tenant, provider, kind)).await
    }
}

/// Paused time: if the export deadlocks, every task waits and the clock jumps to the
/// timeout at once; nothing here depends on how fast the machine is.
#[tokio::test(start_paused = true)]
async fn an_export_with_more_writes_in_flight_than_store_connections_finishes() {
    let mut e = common::env();
    let pooled = Arc::new(Pooled {
        inner: e.store.clone(),
        pool: Arc::new(Semaphore::new(2)),
    });
    e.ports.ledger = pooled.clone();
    e.ports.journal = pooled;
    let findings: Vec<_> = (0..40)
        .map(|i| common::finding(&format!("pool-{i}"), &format!("Finding {i}")))
        .collect();
    let source = common::VecSource::new(findings);
    let opts = ExportOptions {
        concurrency: 8,
        ledger_batch: 1,
        ..ExportOptions::default()
    };
    let run = export(&e.ports, &e.record, &e.target, &source, &opts, &Silent);
    let summary = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("the export waited forever for a store connection")
        .expect("the export succeeds");
    assert_eq!(summary.created, 40);
}
