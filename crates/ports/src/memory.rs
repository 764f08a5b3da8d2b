//! The one in-memory [`ExportLedger`]: a run-scoped ledger for exports whose ledger must
//! not outlive them (the portable bundle, written whole each time), and the ledger of the
//! in-memory test stores.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use webriskops_domain::{FindingId, LedgerEntry};

use crate::{ExportLedger, LedgerScope, PortResult};

/// An [`ExportLedger`] in memory, empty when created. Entries are kept per scope in finding
/// order, so [`ExportLedger::all`] answers in a stable order.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    scopes: HashMap<LedgerScope, BTreeMap<FindingId, LedgerEntry>>,
    writes: u64,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps whole: keep using them.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many entries were written since creation (for "no needless writes" checks).
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    /// Forgets every scope, as a lost or deleted database would.
    pub fn wipe(&self) {
        self.lock().scopes.clear();
    }
}

#[async_trait]
impl ExportLedger for MemoryLedger {
    async fn get(
        &self,
        scope: &LedgerScope,
        finding: &FindingId,
    ) -> PortResult<Option<LedgerEntry>> {
        Ok(self
            .lock()
            .scopes
            .get(scope)
            .and_then(|m| m.get(finding))
            .cloned())
    }

    async fn all(&self, scope: &LedgerScope) -> PortResult<Vec<LedgerEntry>> {
        Ok(self
            .lock()
            .scopes
            .get(scope)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn put(&self, scope: &LedgerScope, entry: &LedgerEntry) -> PortResult<()> {
        let mut s = self.lock();
        s.writes += 1;
        s.scopes
            .entry(scope.clone())
            .or_default()
            .insert(entry.finding_id.clone(), entry.clone());
        Ok(())
    }

    async fn clear(&self, scope: &LedgerScope) -> PortResult<u64> {
        Ok(self
            .lock()
            .scopes
            .remove(scope)
            .map_or(0, |m| m.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use webriskops_domain::{ItemId, ProviderKey, TargetState, TenantId, TrackerStatus};

    use super::*;

    fn scope(tenant: &str) -> LedgerScope {
        LedgerScope {
            tenant: TenantId::new(tenant).unwrap(),
            provider: ProviderKey::TrelloCloud,
            container_id: "container".into(),
        }
    }

    fn entry(finding: &str, item: &str) -> LedgerEntry {
        LedgerEntry {
            finding_id: FindingId::new(finding).unwrap(),
            item_id: ItemId::new(item).unwrap(),
            item_url: None,
            fingerprint: format!("fp-{item}"),
            target: TargetState::Open,
            observed: TrackerStatus::Open,
            updated_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn scopes_are_isolated_and_a_put_replaces_the_findings_entry() {
        let ledger = MemoryLedger::new();
        let (a, b) = (scope("acme"), scope("globex"));
        ledger.put(&a, &entry("f-2", "item-2")).await.unwrap();
        ledger.put(&a, &entry("f-1", "item-1")).await.unwrap();
        ledger.put(&a, &entry("f-1", "item-1b")).await.unwrap();
        ledger.put(&b, &entry("f-1", "other")).await.unwrap();

        let ids: Vec<String> = ledger
            .all(&a)
            .await
            .unwrap()
            .iter()
            .map(|e| e.item_id.to_string())
            .collect();
        assert_eq!(ids, ["item-1b", "item-2"], "finding order, one entry each");
        let f1 = FindingId::new("f-1").unwrap();
        assert_eq!(
            ledger
                .get(&b, &f1)
                .await
                .unwrap()
                .unwrap()
                .item_id
                .to_string(),
            "other"
        );
        assert_eq!(ledger.writes(), 4);

        assert_eq!(ledger.clear(&a).await.unwrap(), 2);
        assert!(ledger.get(&a, &f1).await.unwrap().is_none());
        assert!(
            ledger.get(&b, &f1).await.unwrap().is_some(),
            "other scope kept"
        );
        ledger.wipe();
        assert!(ledger.all(&b).await.unwrap().is_empty());
    }
}
