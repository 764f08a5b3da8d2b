//! Local state ports: provider records, the export ledger, the run journal and secrets.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use webriskops_domain::{
    CredentialRef, FindingId, LedgerEntry, ProviderKey, ProviderRecord, TenantId, Token,
};

use crate::error::PortResult;

/// Provider records, one per tenant and provider.
#[async_trait]
pub trait ProviderStore: Send + Sync + Debug + 'static {
    async fn load(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<ProviderRecord>>;
    /// Inserts or replaces the record.
    async fn save(&self, record: &ProviderRecord) -> PortResult<()>;
    async fn delete(&self, tenant: &TenantId, provider: ProviderKey) -> PortResult<()>;
}

/// Which ledger: a tenant's exports to one container of one provider.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LedgerScope {
    pub tenant: TenantId,
    pub provider: ProviderKey,
    pub container_id: String,
}

/// The export ledger: finding → item, fingerprint and last observed state.
#[async_trait]
pub trait ExportLedger: Send + Sync + Debug + 'static {
    async fn get(
        &self,
        scope: &LedgerScope,
        finding: &FindingId,
    ) -> PortResult<Option<LedgerEntry>>;
    /// Every entry of the scope (bounded by the number of findings ever exported).
    async fn all(&self, scope: &LedgerScope) -> PortResult<Vec<LedgerEntry>>;
    /// Inserts or replaces an entry, durably.
    async fn put(&self, scope: &LedgerScope, entry: &LedgerEntry) -> PortResult<()>;
    /// Inserts or replaces many entries in one transaction.
    async fn put_many(&self, scope: &LedgerScope, entries: &[LedgerEntry]) -> PortResult<()> {
        for e in entries {
            self.put(scope, e).await?;
        }
        Ok(())
    }
    /// Removes every entry of the scope; returns how many.
    async fn clear(&self, scope: &LedgerScope) -> PortResult<u64>;
}

/// The kind of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Export,
    Sync,
    Revoke,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Export => "export",
            RunKind::Sync => "sync",
            RunKind::Revoke => "revoke",
        }
    }
}

/// A run's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(pub i64);

/// How an intended write ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum IntentOutcome {
    Done { item_id: Option<String> },
    Failed { error: String },
}

/// A write that was announced and never given an outcome (the process died).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalIntent {
    pub id: i64,
    pub run: RunId,
    pub finding_id: FindingId,
    pub action: String,
    pub recorded_at: DateTime<Utc>,
}

/// A run as remembered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: RunId,
    pub kind: RunKind,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The run's summary as JSON text, once finished.
    pub summary_json: Option<String>,
}

/// The run journal: every write is announced before it is sent and settled after.
#[async_trait]
pub trait RunJournal: Send + Sync + Debug + 'static {
    /// Starts a run of `kind` with the tenant's `provider` (its tracker).
    async fn start_run(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        kind: RunKind,
    ) -> PortResult<RunId>;
    /// Records the intent to write; returns the intent id. MUST be durable on return.
    async fn record_intent(&self, run: RunId, finding: &FindingId, action: &str)
        -> PortResult<i64>;
    async fn record_outcome(&self, intent: i64, outcome: &IntentOutcome) -> PortResult<()>;
    async fn finish_run(&self, run: RunId, summary_json: &str) -> PortResult<()>;
    /// Intents of earlier runs of the tenant that never got an outcome.
    async fn unfinished(&self, tenant: &TenantId) -> PortResult<Vec<JournalIntent>>;
    /// Marks unfinished intents as reconciled by a later run.
    async fn settle_unfinished(&self, tenant: &TenantId, by: RunId) -> PortResult<u64>;
    /// The latest run of `kind` with the tenant's `provider`; another tracker's runs never
    /// count.
    async fn last_run(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        kind: RunKind,
    ) -> PortResult<Option<RunRecord>>;
}

/// Credentials at rest. Implementations MUST encrypt, MUST bind each secret to its
/// reference and `binding` (so a secret copied to another record fails to open), and
/// MUST report a wrong key or tampering as an error, never as a missing secret.
#[async_trait]
pub trait SecretStore: Send + Sync + Debug + 'static {
    async fn put_token(
        &self,
        reference: &CredentialRef,
        binding: &str,
        token: &Token,
    ) -> PortResult<()>;
    async fn get_token(
        &self,
        reference: &CredentialRef,
        binding: &str,
    ) -> PortResult<Option<Token>>;
    async fn delete_token(&self, reference: &CredentialRef) -> PortResult<()>;
    /// Replaces the secret stored under `reference` with `token`, sealed for the same
    /// `binding`, in one atomic step (a refreshed OAuth2 token set): afterwards only the
    /// new secret is stored, and a failure leaves the old one in place; there is no moment
    /// with neither.
    ///
    /// # Errors
    /// `NotFound` when nothing is stored under `reference` (nothing is stored then);
    /// `Conflict` when the stored secret is bound to another `binding` (it stays as it
    /// was).
    async fn replace_token(
        &self,
        reference: &CredentialRef,
        binding: &str,
        token: &Token,
    ) -> PortResult<()>;
}
