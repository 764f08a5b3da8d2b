//! The status use case ([`gather`]): the tenant's record, readiness checked live, and the
//! last run of each kind.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use webriskops_domain::{ProviderRecord, Readiness, TenantId};
use webriskops_ports::{RunKind, RunRecord};

use crate::context::{RecordState, ServicePorts, Tenancy};
use crate::readiness::check_readiness;
use crate::ServiceError;

/// One status request: whose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRequest {
    #[serde(flatten)]
    pub tenancy: Tenancy,
}

/// A run as status shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The run's summary (counts), when it finished and its summary is JSON.
    pub summary: Option<serde_json::Value>,
}

impl From<RunRecord> for RunSummary {
    fn from(r: RunRecord) -> Self {
        Self {
            started_at: r.started_at,
            finished_at: r.finished_at,
            summary: r.summary_json.and_then(|s| serde_json::from_str(&s).ok()),
        }
    }
}

/// The integration status of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub tenant: TenantId,
    pub record_state: RecordState,
    /// The stored record (saved or draft), if any.
    pub record: Option<ProviderRecord>,
    /// The record readiness was checked for: the stored one, or a blank one.
    pub checked: ProviderRecord,
    pub readiness: Readiness,
    /// From the tracker when it answered, else as recorded.
    pub token_expires_at: Option<DateTime<Utc>>,
    pub last_export: Option<RunSummary>,
    pub last_sync: Option<RunSummary>,
    pub last_revoke: Option<RunSummary>,
}

impl StatusReport {
    pub fn is_ready(&self) -> bool {
        self.readiness.is_ready()
    }
}

/// Status, end to end: loads the record, checks readiness against `ports.tracker` at
/// `now` (never guessed), and reads the last export, sync and revoke from the journal.
///
/// # Errors
/// Store failures, or the tracker cannot be asked.
pub async fn gather(
    ports: &ServicePorts,
    req: &StatusRequest,
    now: DateTime<Utc>,
) -> Result<StatusReport, ServiceError> {
    let who = &req.tenancy;
    let record = ports.record(who).await?;
    let checked = record.clone().unwrap_or_else(|| who.blank_record());
    let check = check_readiness(
        ports.tracker.as_ref().map(|t| t.introspection.as_ref()),
        &checked,
        now,
    )
    .await?;
    let last = |kind| async move {
        Ok::<_, ServiceError>(
            ports
                .journal
                .last_run(&who.tenant, who.provider, kind)
                .await?
                .map(RunSummary::from),
        )
    };
    let last_export = last(RunKind::Export).await?;
    let last_sync = last(RunKind::Sync).await?;
    let last_revoke = last(RunKind::Revoke).await?;
    let token_expires_at = check
        .token
        .as_ref()
        .and_then(|t| t.expires_at)
        .or(record.as_ref().and_then(|r| r.token_expires_at));
    Ok(StatusReport {
        tenant: who.tenant.clone(),
        record_state: RecordState::of(record.as_ref()),
        record,
        checked,
        readiness: check.readiness,
        token_expires_at,
        last_export,
        last_sync,
        last_revoke,
    })
}
