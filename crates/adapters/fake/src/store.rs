//! In-memory implementations of the store ports (records, ledger, journal, secrets); the
//! ledger is the ports' one [`MemoryLedger`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::Utc;
use webriskops_domain::{
    CredentialRef, FindingId, LedgerEntry, ProviderKey, ProviderRecord, TenantId, Token,
};
use webriskops_ports::{
    ExportLedger, IntentOutcome, JournalIntent, LedgerScope, MemoryLedger, PortError, PortResult,
    ProviderStore, RunId, RunJournal, RunKind, RunRecord, SecretStore,
};

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<(TenantId, ProviderKey), ProviderRecord>,
    runs: Vec<(TenantId, RunRecord)>,
    /// The provider of each run in `runs`, in the same order.
    run_providers: Vec<ProviderKey>,
    intents: Vec<(
        TenantId,
        JournalIntent,
        Option<IntentOutcome>,
        Option<RunId>,
    )>,
    secrets: HashMap<CredentialRef, (String, Token)>,
}

/// All four store ports in memory. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    ledger: Arc<MemoryLedger>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many ledger entries were written (for tests of "no needless writes").
    pub fn ledger_writes(&self) -> u64 {
        self.ledger.writes()
    }

    /// Forgets the ledger, as a lost or deleted database would.
    pub fn wipe_ledger(&self) {
        self.ledger.wipe();
    }
}

#[async_trait]
impl ProviderStore for MemoryStore {
    async fn load(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<ProviderRecord>> {
        Ok(self
            .lock()
            .records
            .get(&(tenant.clone(), provider))
            .cloned())
    }
    async fn save(&self, record: &ProviderRecord) -> PortResult<()> {
        self.lock()
            .records
            .insert((record.tenant.clone(), record.provider_key), record.clone());
        Ok(())
    }
    async fn delete(&self, tenant: &TenantId, provider: ProviderKey) -> PortResult<()> {
        self.lock().records.remove(&(tenant.clone(), provider));
        Ok(())
    }
}

#[async_trait]
impl ExportLedger for MemoryStore {
    async fn get(
        &self,
        scope: &LedgerScope,
        finding: &FindingId,
    ) -> PortResult<Option<LedgerEntry>> {
        self.ledger.get(scope, finding).await
    }
    async fn all(&self, scope: &LedgerScope) -> PortResult<Vec<LedgerEntry>> {
        self.ledger.all(scope).await
    }
    async fn put(&self, scope: &LedgerScope, entry: &LedgerEntry) -> PortResult<()> {
        self.ledger.put(scope, entry).await
    }
    async fn clear(&self, scope: &LedgerScope) -> PortResult<u64> {
        self.ledger.clear(scope).await
    }
}

#[async_trait]
impl RunJournal for MemoryStore {
    async fn start_run(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        kind: RunKind,
    ) -> PortResult<RunId> {
        let mut s = self.lock();
        s.run_providers.push(provider);
        let id = RunId(s.runs.len() as i64 + 1);
        s.runs.push((
            tenant.clone(),
            RunRecord {
                id,
                kind,
                started_at: Utc::now(),
                finished_at: None,
                summary_json: None,
            },
        ));
        Ok(id)
    }
    async fn record_intent(
        &self,
        run: RunId,
        finding: &FindingId,
        action: &str,
    ) -> PortResult<i64> {
        let mut s = self.lock();
        let tenant = s
            .runs
            .iter()
            .find(|(_, r)| r.id == run)
            .map(|(t, _)| t.clone())
            .ok_or_else(|| PortError::not_found(format!("run {}", run.0)))?;
        let id = s.intents.len() as i64 + 1;
        s.intents.push((
            tenant,
            JournalIntent {
                id,
                run,
                finding_id: finding.clone(),
                action: action.into(),
                recorded_at: Utc::now(),
            },
            None,
            None,
        ));
        Ok(id)
    }
    async fn record_outcome(&self, intent: i64, outcome: &IntentOutcome) -> PortResult<()> {
        let mut s = self.lock();
        let i = s
            .intents
            .iter_mut()
            .find(|i| i.1.id == intent)
            .ok_or_else(|| PortError::not_found(format!("intent {intent}")))?;
        i.2 = Some(outcome.clone());
        Ok(())
    }
    async fn finish_run(&self, run: RunId, summary_json: &str) -> PortResult<()> {
        let mut s = self.lock();
        if let Some((_, r)) = s.runs.iter_mut().find(|(_, r)| r.id == run) {
            r.finished_at = Some(Utc::now());
            r.summary_json = Some(summary_json.into());
        }
        Ok(())
    }
    async fn unfinished(&self, tenant: &TenantId) -> PortResult<Vec<JournalIntent>> {
        let s = self.lock();
        Ok(s.intents
            .iter()
            .filter(|(t, _, o, settled)| t == tenant && o.is_none() && settled.is_none())
            .map(|(_, i, _, _)| i.clone())
            .collect())
    }
    async fn settle_unfinished(&self, tenant: &TenantId, by: RunId) -> PortResult<u64> {
        let mut s = self.lock();
        let mut n = 0;
        for (t, i, o, settled) in &mut s.intents {
            if t == tenant && o.is_none() && settled.is_none() && i.run != by {
                *settled = Some(by);
                n += 1;
            }
        }
        Ok(n)
    }
    async fn last_run(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        kind: RunKind,
    ) -> PortResult<Option<RunRecord>> {
        let s = self.lock();
        Ok(s.runs
            .iter()
            .zip(&s.run_providers)
            .rev()
            .find(|((t, r), p)| t == tenant && **p == provider && r.kind == kind)
            .map(|((_, r), _)| r.clone()))
    }
}

#[async_trait]
impl SecretStore for MemoryStore {
    async fn put_token(
        &self,
        reference: &CredentialRef,
        binding: &str,
        token: &Token,
    ) -> PortResult<()> {
        self.lock()
            .secrets
            .insert(reference.clone(), (binding.into(), token.clone()));
        Ok(())
    }
    async fn get_token(
        &self,
        reference: &CredentialRef,
        binding: &str,
    ) -> PortResult<Option<Token>> {
        match self.lock().secrets.get(reference) {
            None => Ok(None),
            Some((b, t)) if b == binding => Ok(Some(t.clone())),
            Some(_) => Err(PortError::Conflict {
                context: Default::default(),
                message: "stored token is bound to another record".into(),
            }),
        }
    }
    async fn delete_token(&self, reference: &CredentialRef) -> PortResult<()> {
        self.lock().secrets.remove(reference);
        Ok(())
    }
    async fn replace_token(
        &self,
        reference: &CredentialRef,
        binding: &str,
        token: &Token,
    ) -> PortResult<()> {
        // One lock: no reader sees neither secret.
        match self.lock().secrets.get_mut(reference) {
            None => Err(PortError::not_found(format!(
                "stored secret {}; run setup to save one",
                reference.0
            ))),
            Some((b, _)) if b != binding => Err(PortError::Conflict {
                context: Default::default(),
                message: "stored token is bound to another record".into(),
            }),
            Some((_, t)) => {
                *t = token.clone();
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replace_swaps_the_secret_only_where_one_is_bound_to_the_same_record() {
        let s = MemoryStore::new();
        let r = CredentialRef("acme/linear_cloud/token".into());
        let (old, new) = (
            Token::new("old-set").unwrap(),
            Token::new("new-set").unwrap(),
        );
        let missing = s.replace_token(&r, "b1", &new).await.unwrap_err();
        assert!(matches!(missing, PortError::NotFound { .. }), "{missing:?}");
        assert_eq!(s.get_token(&r, "b1").await.unwrap(), None, "nothing stored");
        s.put_token(&r, "b1", &old).await.unwrap();
        let other = s.replace_token(&r, "b2", &new).await.unwrap_err();
        assert!(matches!(other, PortError::Conflict { .. }), "{other:?}");
        assert_eq!(s.get_token(&r, "b1").await.unwrap(), Some(old.clone()));
        s.replace_token(&r, "b1", &new).await.unwrap();
        assert_eq!(s.get_token(&r, "b1").await.unwrap(), Some(new));
    }
}
