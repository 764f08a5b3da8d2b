//! The export use case ([`run_export`]): choose the destination by the fallback policy,
//! then export there and say why.
//!
//! `auto` falls back to the portable bundle only when every blocked code suits it
//! (`Readiness::portable_fallback_applies`); `never` stops on a blocked setup; `always`
//! writes the bundle without asking the tracker at all.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use webriskops_domain::{BlockedState, ProviderRecord, Readiness};
use webriskops_ports::{FindingSource, MemoryLedger, WorkItems};

use super::{export, ExportOptions, ExportPorts, ExportSummary, ExportTarget};
use crate::context::{RecordState, ServicePorts, Tenancy, Tracker};
use crate::readiness::readiness_for_export;
use crate::{Progress, ServiceError};

/// When to write the portable bundle instead of tracker cards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackPolicy {
    /// The bundle when the tracker cannot be made safe (every blocked code suits it).
    #[default]
    Auto,
    /// Never: a blocked setup stops the export.
    Never,
    /// Always the bundle, without asking the tracker.
    Always,
}

impl FallbackPolicy {
    /// Whether an export under this policy may ask the tracker at all; a front end need
    /// not resolve credentials when it may not.
    pub fn asks_tracker(self) -> bool {
        self != FallbackPolicy::Always
    }
}

/// Why the bundle was written: `requested` or `blocked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackTrigger {
    /// The policy is `always`: the operator asked for the bundle.
    Requested,
    /// The policy is `auto` and setup is blocked by states files can stand in for.
    Blocked,
}

/// Why the bundle was written, with the blocked states of a `blocked` fallback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "trigger", content = "reasons", rename_all = "snake_case")]
pub enum FallbackCause {
    Requested,
    /// Never empty.
    Blocked(Vec<BlockedState>),
}

impl FallbackCause {
    pub fn trigger(&self) -> FallbackTrigger {
        match self {
            FallbackCause::Requested => FallbackTrigger::Requested,
            FallbackCause::Blocked(_) => FallbackTrigger::Blocked,
        }
    }

    /// The blocked states (empty when requested).
    pub fn reasons(&self) -> &[BlockedState] {
        match self {
            FallbackCause::Requested => &[],
            FallbackCause::Blocked(r) => r,
        }
    }
}

/// What the portable writer is told about the bundle to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortableSpec {
    pub out_dir: PathBuf,
    /// Hex SHA-256 of the findings (empty when the source has none).
    pub source_checksum: String,
    /// Where the cards were meant to go.
    pub record: ProviderRecord,
    pub cause: FallbackCause,
    pub created_at: DateTime<Utc>,
}

/// Opens the portable bundle as a write-only `WorkItems` (the app passes the bundle
/// adapter; tests pass anything that records writes).
pub trait PortableWriter: Send + Sync {
    /// A writer for the bundle `spec` describes; nothing is visible before `flush`.
    ///
    /// # Errors
    /// The bundle cannot be written there (say where and how to fix it).
    fn open(&self, spec: &PortableSpec) -> Result<Arc<dyn WorkItems>, ServiceError>;
}

/// One export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRequest {
    #[serde(flatten)]
    pub tenancy: Tenancy,
    #[serde(default)]
    pub fallback: FallbackPolicy,
    /// The bundle directory, used when the bundle is written.
    pub out_dir: PathBuf,
    /// Plan only: read the tracker, write nothing anywhere.
    #[serde(default)]
    pub dry_run: bool,
    /// Writes in flight at once (at least one).
    pub concurrency: usize,
}

/// Where an export went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExportDestination {
    /// The tracker's cards.
    Tracker,
    /// The portable bundle in `out_dir`, for `cause`.
    Portable {
        out_dir: PathBuf,
        cause: FallbackCause,
    },
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ExportResult {
    /// Setup is blocked and the policy allows no bundle: nothing was written.
    Blocked { readiness: Readiness },
    /// The export ran (or, for a dry run, planned).
    Exported {
        summary: Box<ExportSummary>,
        destination: ExportDestination,
    },
}

/// How an export ended, for exit codes and schedulers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportVerdict {
    /// Everything went where it should.
    Complete,
    /// Some findings were invalid or failed; the rest were exported.
    Partial,
    /// Setup is blocked: nothing was written, the bundle was written because of it, or
    /// the credentials lost access midway. Scheduled runs must notice.
    Blocked,
}

/// The outcome of [`run_export`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportOutcome {
    /// The tenant's record as the export found it.
    pub record_state: RecordState,
    /// The record used: the stored one (a draft names where the cards were meant to
    /// go), or a blank one when none is stored.
    pub record: ProviderRecord,
    #[serde(flatten)]
    pub result: ExportResult,
}

impl ExportOutcome {
    /// The summary, when the export ran.
    pub fn summary(&self) -> Option<&ExportSummary> {
        match &self.result {
            ExportResult::Exported { summary, .. } => Some(summary),
            ExportResult::Blocked { .. } => None,
        }
    }

    /// Why the bundle was written, when it was.
    pub fn fallback(&self) -> Option<&FallbackCause> {
        match &self.result {
            ExportResult::Exported {
                destination: ExportDestination::Portable { cause, .. },
                ..
            } => Some(cause),
            _ => None,
        }
    }

    /// A bundle written because setup is blocked is a safety net, not a success: it is
    /// `Blocked` until someone fixes setup. A requested bundle ends as any export does.
    pub fn verdict(&self) -> ExportVerdict {
        let Some(summary) = self.summary() else {
            return ExportVerdict::Blocked;
        };
        let fell_back = self.fallback().is_some_and(|c| !c.reasons().is_empty());
        if !summary.blocked.is_empty() || fell_back {
            ExportVerdict::Blocked
        } else if summary.failed_count > 0 || summary.invalid_count > 0 {
            ExportVerdict::Partial
        } else {
            ExportVerdict::Complete
        }
    }
}

/// Where the cards go.
enum Choice {
    Tracker(Tracker, ExportTarget),
    Portable(FallbackCause),
    Blocked(Readiness),
}

/// Re-checks readiness (unless the policy is `always`) and picks the destination.
///
/// An unconfirmed revoke path means setup was never finished, which files do not fix:
/// it stops `auto` too (see `BlockedCode::suits_portable_fallback`).
async fn choose(
    tracker: Option<&Tracker>,
    record: &ProviderRecord,
    policy: FallbackPolicy,
    now: DateTime<Utc>,
) -> Result<Choice, ServiceError> {
    if !policy.asks_tracker() {
        return Ok(Choice::Portable(FallbackCause::Requested));
    }
    let readiness =
        readiness_for_export(tracker.map(|t| t.introspection.as_ref()), record, now).await?;
    if readiness.is_ready() {
        if let (Some(t), Some(target)) = (tracker, ExportTarget::from_record(record)) {
            return Ok(Choice::Tracker(t.clone(), target));
        }
    }
    if policy == FallbackPolicy::Auto && readiness.portable_fallback_applies() {
        Ok(Choice::Portable(FallbackCause::Blocked(readiness.blocked)))
    } else {
        Ok(Choice::Blocked(readiness))
    }
}

/// The ledger scope and destination a portable bundle records.
fn portable_target(record: &ProviderRecord) -> ExportTarget {
    ExportTarget {
        container_id: record.board_id.clone().unwrap_or_else(|| "portable".into()),
        destination_id: record.list_id.clone().unwrap_or_else(|| "portable".into()),
        done_destination_id: record.done_list_id.clone(),
    }
}

/// Export, end to end: loads the tenant's record (a draft tells the fallback where the
/// cards were meant to go), chooses the tracker or the portable bundle by the policy,
/// exports `source` there (journaled), and returns the summary with the cause of any
/// fallback. Requests are the tracker's own counts when it reports them.
///
/// The bundle's ledger lives for this run only: it never reaches the tracker's ledger.
///
/// # Errors
/// The tracker cannot be asked, the bundle cannot be opened, or a failure before any
/// write (a re-run is then safe). A blocked setup and invalid findings are outcomes.
pub async fn run_export(
    ports: &ServicePorts,
    portable: &dyn PortableWriter,
    source: &dyn FindingSource,
    req: &ExportRequest,
    progress: &dyn Progress,
    now: DateTime<Utc>,
) -> Result<ExportOutcome, ServiceError> {
    let stored = ports.record(&req.tenancy).await?;
    let record_state = RecordState::of(stored.as_ref());
    let record = stored.unwrap_or_else(|| req.tenancy.blank_record());
    let choice = choose(ports.tracker.as_ref(), &record, req.fallback, now).await?;
    let opts = ExportOptions {
        dry_run: req.dry_run,
        concurrency: req.concurrency.max(1),
        ..ExportOptions::default()
    };
    let result = match choice {
        Choice::Blocked(readiness) => ExportResult::Blocked { readiness },
        Choice::Tracker(tracker, target) => {
            let export_ports = ExportPorts {
                items: tracker.items.clone(),
                introspection: Some(tracker.introspection.clone()),
                ledger: ports.ledger.clone(),
                journal: ports.journal.clone(),
            };
            let mut summary =
                export(&export_ports, &record, &target, source, &opts, progress).await?;
            if let Some(counts) = tracker.request_counts() {
                summary.requests = counts;
            }
            ExportResult::Exported {
                summary: Box::new(summary),
                destination: ExportDestination::Tracker,
            }
        }
        Choice::Portable(cause) => {
            let items = portable.open(&PortableSpec {
                out_dir: req.out_dir.clone(),
                source_checksum: source.checksum().unwrap_or_default(),
                record: record.clone(),
                cause: cause.clone(),
                created_at: now,
            })?;
            let export_ports = ExportPorts {
                items,
                introspection: None,
                ledger: Arc::new(MemoryLedger::new()),
                journal: ports.journal.clone(),
            };
            let target = portable_target(&record);
            let summary = export(&export_ports, &record, &target, source, &opts, progress).await?;
            ExportResult::Exported {
                summary: Box::new(summary),
                destination: ExportDestination::Portable {
                    out_dir: req.out_dir.clone(),
                    cause,
                },
            }
        }
    };
    Ok(ExportOutcome {
        record_state,
        record,
        result,
    })
}
