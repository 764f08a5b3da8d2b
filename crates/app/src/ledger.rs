//! A ledger that lives only for one run: the portable bundle is written whole each time,
//! so its entries must never reach the Trello ledger in the database.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use webriskops_domain::{FindingId, LedgerEntry};
use webriskops_ports::{ExportLedger, LedgerScope, PortResult};

/// An in-memory [`ExportLedger`], empty at the start of every portable export.
#[derive(Debug, Default)]
pub struct RunLedger {
    entries: Mutex<HashMap<(LedgerScope, FindingId), LedgerEntry>>,
}

impl RunLedger {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(LedgerScope, FindingId), LedgerEntry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ExportLedger for RunLedger {
    async fn get(
        &self,
        scope: &LedgerScope,
        finding: &FindingId,
    ) -> PortResult<Option<LedgerEntry>> {
        Ok(self.map().get(&(scope.clone(), finding.clone())).cloned())
    }

    async fn all(&self, scope: &LedgerScope) -> PortResult<Vec<LedgerEntry>> {
        Ok(self
            .map()
            .iter()
            .filter(|((s, _), _)| s == scope)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn put(&self, scope: &LedgerScope, entry: &LedgerEntry) -> PortResult<()> {
        self.map()
            .insert((scope.clone(), entry.finding_id.clone()), entry.clone());
        Ok(())
    }

    async fn clear(&self, scope: &LedgerScope) -> PortResult<u64> {
        let mut map = self.map();
        let before = map.len();
        map.retain(|(s, _), _| s != scope);
        Ok((before - map.len()) as u64)
    }
}
