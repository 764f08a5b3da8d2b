//! The JSON shapes front ends print: the CLI's `--json` and the HTTP API answer with these
//! same structures, so their field names are defined once. They live with the front end,
//! not in the service, because they speak each tracker's words (`board`/`list`,
//! `team`/`state`), which the service never names.

use chrono::{DateTime, Utc};
use serde::Serialize;
use webriskops_domain::{BlockedState, ProviderKey, ProviderRecord, Readiness, ReadyStates};

use webriskops_service::export::{ExportSummary, FallbackTrigger};
use webriskops_service::status::{RunSummary, StatusReport};

/// The five ready states in the provider's words: Trello's board and list, Linear's team
/// and workflow state.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ReadyJson<'a> {
    Board(&'a ReadyStates),
    Team {
        cloud_target: bool,
        team: bool,
        state: bool,
        scope: bool,
        revoke_path: bool,
    },
}

impl<'a> ReadyJson<'a> {
    pub fn new(r: &'a ReadyStates, provider: ProviderKey) -> Self {
        match provider {
            ProviderKey::TrelloCloud => ReadyJson::Board(r),
            ProviderKey::LinearCloud => ReadyJson::Team {
                cloud_target: r.cloud_target,
                team: r.board,
                state: r.list,
                scope: r.scope,
                revoke_path: r.revoke_path,
            },
        }
    }
}

/// The readiness part of setup and status JSON: these names never change (`ready` in the
/// provider's words: `board`/`list` for Trello, `team`/`state` for Linear).
#[derive(Debug, Serialize)]
pub struct ReadinessJson<'a> {
    pub ready: ReadyJson<'a>,
    pub blocked: &'a [BlockedState],
    pub notes: &'a [String],
}

impl<'a> ReadinessJson<'a> {
    pub fn new(r: &'a Readiness, provider: ProviderKey) -> Self {
        Self {
            ready: ReadyJson::new(&r.ready, provider),
            blocked: &r.blocked,
            notes: &r.notes,
        }
    }
}

/// `status --json` and `GET /api/v1/integration` (one per tracker).
#[derive(Debug, Serialize)]
pub struct StatusJson<'a> {
    pub tenant: String,
    /// `saved`, `draft` (the choices of a blocked setup, no token) or `none`.
    pub record_state: &'static str,
    pub record: Option<&'a ProviderRecord>,
    #[serde(flatten)]
    pub readiness: ReadinessJson<'a>,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub last_export: Option<&'a RunSummary>,
    pub last_sync: Option<&'a RunSummary>,
    pub last_revoke: Option<&'a RunSummary>,
}

impl<'a> StatusJson<'a> {
    pub fn new(report: &'a StatusReport) -> Self {
        Self {
            tenant: report.tenant.to_string(),
            record_state: report.record_state.as_str(),
            record: report.record.as_ref(),
            readiness: ReadinessJson::new(&report.readiness, report.checked.provider_key),
            token_expires_at: report.token_expires_at,
            last_export: report.last_export.as_ref(),
            last_sync: report.last_sync.as_ref(),
            last_revoke: report.last_revoke.as_ref(),
        }
    }
}

/// `export --json` and the summary of an export job in the API.
#[derive(Debug, Serialize)]
pub struct ExportJson<'a> {
    #[serde(flatten)]
    pub summary: &'a ExportSummary,
    pub source: String,
    pub source_checksum: Option<String>,
    /// The bundle directory, when the portable fallback was used.
    pub out_dir: Option<String>,
    /// Why the bundle was written: `requested` (`--fallback always`) or `blocked`; `null`
    /// when the cards went to the tracker.
    pub fallback: Option<FallbackTrigger>,
    /// The blocked states that caused a `blocked` fallback (empty otherwise).
    pub fallback_reasons: &'a [BlockedState],
    /// The tenant's record: `saved`, `draft` (choices of a blocked setup, no token) or `none`.
    pub record_state: &'static str,
}

/// `export --json` when setup is blocked and nothing was written.
#[derive(Debug, Serialize)]
pub struct BlockedExportJson<'a> {
    pub exported: bool,
    /// The tenant's record: `saved`, `draft` or `none`.
    pub record_state: &'static str,
    #[serde(flatten)]
    pub readiness: ReadinessJson<'a>,
}

/// The `export --json` document of `outcome`, read from `source`.
pub fn export_value(
    outcome: &webriskops_service::export::ExportOutcome,
    source: &dyn webriskops_ports::FindingSource,
) -> serde_json::Value {
    use webriskops_service::export::{ExportDestination, ExportResult, FallbackCause};
    let record_state = outcome.record_state.as_str();
    let doc = match &outcome.result {
        ExportResult::Blocked { readiness } => serde_json::to_value(BlockedExportJson {
            exported: false,
            record_state,
            readiness: ReadinessJson::new(readiness, outcome.record.provider_key),
        }),
        ExportResult::Exported {
            summary,
            destination,
        } => {
            let (cause, out_dir) = match destination {
                ExportDestination::Tracker => (None, None),
                ExportDestination::Portable { out_dir, cause } => (Some(cause), Some(out_dir)),
            };
            serde_json::to_value(ExportJson {
                summary,
                source: source.describe(),
                source_checksum: source.checksum(),
                out_dir: out_dir.map(|d| d.display().to_string()),
                fallback: cause.map(FallbackCause::trigger),
                fallback_reasons: cause.map_or(&[], FallbackCause::reasons),
                record_state,
            })
        }
    };
    doc.unwrap_or(serde_json::Value::Null)
}
