//! `webriskops export FILE`: findings to Trello cards, or to the portable bundle.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;
use webriskops_domain::{BlockedState, ProviderRecord, Readiness};
use webriskops_portable::{
    FallbackCause, FallbackTrigger, PortableExport, PortableOptions, RecordSummary,
};
use webriskops_ports::{FindingSource, TrackerIntrospection};
use webriskops_service::{
    check_readiness, export, ExportOptions, ExportPorts, ExportSummary, ExportTarget, RequestCounts,
};
use webriskops_trello::TrelloAdapter;

use super::{print_readiness, ReadinessJson};
use crate::app::App;
use crate::cli::ExportArgs;
use crate::config::FallbackMode;
use crate::error::{AppError, AppResult, Exit};
use crate::output::Out;
use crate::progress::StderrProgress;
use webriskops_findings_file::FileSource;

/// Most plan lines and failures printed in human output (all are in `--json`).
const LISTED: usize = 20;

/// What one export should do, resolved from flags and settings.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub dry_run: bool,
    pub fallback: FallbackMode,
    pub out_dir: PathBuf,
    pub concurrency: usize,
}

impl ExportRequest {
    pub fn from_args(app: &App, args: &ExportArgs) -> Self {
        Self {
            dry_run: args.dry_run,
            fallback: args.fallback.unwrap_or(app.settings.export.fallback),
            out_dir: args
                .out
                .clone()
                .unwrap_or_else(|| app.settings.export.out_dir.clone()),
            concurrency: args
                .concurrency
                .map_or(app.settings.export.concurrency, usize::from),
        }
    }
}

/// Where the cards go.
enum Destination {
    Trello(Arc<TrelloAdapter>, ExportTarget),
    Portable(FallbackCause),
    Blocked(Readiness),
}

#[derive(Debug, Serialize)]
struct ExportJson<'a> {
    #[serde(flatten)]
    summary: &'a ExportSummary,
    source: String,
    source_checksum: Option<String>,
    /// The bundle directory, when the portable fallback was used.
    out_dir: Option<String>,
    /// Why the bundle was written: `requested` (`--fallback always`) or `blocked`; `null`
    /// when the cards went to Trello.
    fallback: Option<FallbackTrigger>,
    /// The blocked states that caused a `blocked` fallback (empty otherwise).
    fallback_reasons: &'a [BlockedState],
    /// The tenant's record: `saved`, `draft` (choices of a blocked setup, no token) or `none`.
    record_state: &'static str,
}

#[derive(Debug, Serialize)]
struct BlockedJson<'a> {
    exported: bool,
    /// The tenant's record: `saved`, `draft` or `none`.
    record_state: &'static str,
    #[serde(flatten)]
    readiness: ReadinessJson<'a>,
}

/// Runs `export FILE`.
///
/// # Errors
/// An unreadable file, store or tracker failures. Blocked setups and invalid findings
/// are outcomes (exit 3 and 4), not errors.
pub async fn run(app: &mut App, args: &ExportArgs) -> AppResult<Exit> {
    let source = FileSource::open_path(&args.file).map_err(|e| AppError::failed(e.to_string()))?;
    let req = ExportRequest::from_args(app, args);
    Ok(export_source(app, &source, &req).await?.0)
}

/// Exports `source` as `req` says; the summary is returned when an export ran.
///
/// # Errors
/// See [`run`].
pub async fn export_source(
    app: &mut App,
    source: &FileSource,
    req: &ExportRequest,
) -> AppResult<(Exit, Option<ExportSummary>)> {
    let out = app.out;
    // A draft (the choices of a blocked setup, never a token) tells the fallback where the
    // cards were meant to go.
    let stored = app.record().await?;
    let record_state = stored.as_ref().map_or("none", ProviderRecord::state_name);
    let record = stored.unwrap_or_else(|| ProviderRecord::new_trello(app.tenant.clone()));
    let destination = choose(app, &record, req.fallback).await?;
    let opts = ExportOptions {
        dry_run: req.dry_run,
        concurrency: req.concurrency.max(1),
        ..ExportOptions::default()
    };
    let store = Arc::new(app.store()?);
    let progress = StderrProgress::new(false);
    let (summary, cause, out_dir) = match destination {
        Destination::Blocked(readiness) => {
            if out.json {
                out.json_doc(&BlockedJson {
                    exported: false,
                    record_state,
                    readiness: (&readiness).into(),
                });
            } else {
                out.say("Export stopped: Trello setup is blocked.");
                print_readiness(&out, &readiness, &record);
                out.say(
                    "Fix the states above (webriskops setup trello), or write the portable \
                     bundle instead with --fallback always.",
                );
            }
            return Ok((Exit::Blocked, None));
        }
        Destination::Trello(adapter, target) => {
            let ports = ExportPorts {
                items: adapter.clone(),
                introspection: Some(adapter.clone()),
                ledger: store.clone(),
                journal: store.clone(),
            };
            let mut summary = export(&ports, &record, &target, source, &opts, &progress).await?;
            let stats = adapter.stats();
            summary.requests = RequestCounts {
                reads: stats.reads,
                writes: stats.writes,
                rate_limited: stats.rate_limited_429s,
            };
            (summary, None, None)
        }
        Destination::Portable(cause) => {
            let portable = PortableExport::new(PortableOptions {
                out_dir: req.out_dir.clone(),
                source_checksum: source.checksum().unwrap_or_default(),
                record_summary: Some(RecordSummary::from(&record)),
                fallback: cause.clone(),
                created_at: Utc::now(),
                ..PortableOptions::default()
            })
            .map_err(|e| AppError::failed(format!("cannot write the portable bundle: {e}")))?;
            let ports = ExportPorts {
                items: Arc::new(portable),
                introspection: None,
                // The bundle is written whole each time: its ledger lives for this run
                // only and never reaches the tracker's ledger in the database.
                ledger: Arc::new(webriskops_ports::MemoryLedger::new()),
                journal: store.clone(),
            };
            let target = portable_target(&record);
            let summary = export(&ports, &record, &target, source, &opts, &progress).await?;
            (summary, Some(cause), Some(req.out_dir.clone()))
        }
    };
    progress.finish();
    let reasons = cause_reasons(cause.as_ref());
    report(
        &out,
        source,
        &summary,
        &Fallback {
            trigger: cause.as_ref().map(FallbackCause::trigger),
            reasons,
            record_state,
        },
        out_dir.as_ref(),
    );
    // A bundle written because setup is blocked is a safety net, not a success: the
    // blocked state stays until someone fixes it, so scheduled runs must notice (exit 3).
    // `--fallback always` asked for the bundle itself and exits as any export does.
    let exit = if !summary.blocked.is_empty() || !reasons.is_empty() {
        Exit::Blocked
    } else if summary.failed_count > 0 || summary.invalid_count > 0 {
        Exit::Partial
    } else {
        Exit::Ok
    };
    Ok((exit, Some(summary)))
}

/// The ledger scope and destination a portable bundle records.
fn portable_target(record: &ProviderRecord) -> ExportTarget {
    ExportTarget {
        container_id: record.board_id.clone().unwrap_or_else(|| "portable".into()),
        destination_id: record.list_id.clone().unwrap_or_else(|| "portable".into()),
        done_destination_id: record.done_list_id.clone(),
    }
}

/// Re-checks readiness and picks Trello, the bundle, or a stop.
///
/// `auto` falls back only when every blocked code suits the fallback (the destination
/// exists but cannot be written safely: auth, scope, board, list, deployment; see
/// `BlockedCode::suits_portable_fallback`). An unconfirmed revoke path means setup was
/// never finished, which files do not fix.
async fn choose(
    app: &mut App,
    record: &ProviderRecord,
    mode: FallbackMode,
) -> AppResult<Destination> {
    if mode == FallbackMode::Always {
        return Ok(Destination::Portable(FallbackCause::Requested));
    }
    let tracker = app.tracker_for(Some(record)).await?;
    let check = check_readiness(
        tracker.as_deref().map(|t| t as &dyn TrackerIntrospection),
        record,
        Utc::now(),
    )
    .await?;
    let readiness = check.readiness;
    if readiness.is_ready() {
        if let (Some(t), Some(target)) = (tracker, ExportTarget::from_record(record)) {
            return Ok(Destination::Trello(t, target));
        }
    }
    let fallback_ok = mode == FallbackMode::Auto && readiness.portable_fallback_applies();
    if fallback_ok {
        Ok(Destination::Portable(FallbackCause::Blocked(
            readiness.blocked,
        )))
    } else {
        Ok(Destination::Blocked(readiness))
    }
}

/// The blocked states of a fallback (none when the bundle was requested or not written).
fn cause_reasons(cause: Option<&FallbackCause>) -> &[BlockedState] {
    cause.map_or(&[], FallbackCause::reasons)
}

/// Why the bundle was written, and what record the export used.
struct Fallback<'a> {
    trigger: Option<FallbackTrigger>,
    reasons: &'a [BlockedState],
    record_state: &'static str,
}

fn report(
    out: &Out,
    source: &FileSource,
    s: &ExportSummary,
    fallback: &Fallback<'_>,
    out_dir: Option<&PathBuf>,
) {
    let reasons = fallback.reasons;
    for e in &s.invalid {
        out.note(source.describe_error(e));
    }
    if s.invalid_count > s.invalid.len() as u64 {
        out.note(format!(
            "{}: … and {} more invalid findings",
            source.describe(),
            s.invalid_count - s.invalid.len() as u64
        ));
    }
    // Invalid findings print through `describe_error`, which escapes what they quote; a
    // tracker's error can quote the card text it refused (findings input), so it is
    // escaped too.
    for f in &s.failed {
        out.note(format!(
            "failed: finding {} ({}): {}",
            f.finding_id,
            f.action,
            webriskops_domain::escape_untrusted(&f.error)
        ));
    }
    if out.json {
        out.json_doc(&ExportJson {
            summary: s,
            source: source.describe(),
            source_checksum: source.checksum(),
            out_dir: out_dir.map(|d| d.display().to_string()),
            fallback: fallback.trigger,
            fallback_reasons: reasons,
            record_state: fallback.record_state,
        });
        return;
    }
    let dest = match out_dir {
        Some(d) => format!("portable bundle {}", d.display()),
        None => "Trello".to_owned(),
    };
    let verb = if s.dry_run { "Dry run of" } else { "Exported" };
    out.say(format!("{verb} {} → {dest}", source.describe()));
    if fallback.trigger == Some(FallbackTrigger::Requested) {
        out.say("  Trello was not asked: the bundle was requested (--fallback always).");
    }
    if fallback.record_state == "draft" && out_dir.is_some() {
        out.say(
            "  The destination comes from the draft record (not saved: setup was blocked; it holds no token).",
        );
    }
    if !reasons.is_empty() {
        out.say("  Trello was not used because setup is blocked:");
        for b in reasons {
            out.say(format!("    {} ({}): {}", b.code, b.field, b.fix));
        }
        out.say("  The bundle keeps each finding's identity: a later Trello export will not duplicate it.");
    }
    let would = if s.dry_run { "would be " } else { "" };
    out.say(format!(
        "  {would}created {}, updated {}, closed {}, reopened {}; unchanged {}, skipped {}",
        s.created, s.updated, s.closed, s.reopened, s.unchanged, s.skipped
    ));
    out.say(format!(
        "  invalid findings {}, failed writes {}, findings with duplicate cards {}",
        s.invalid_count,
        s.failed_count,
        s.duplicates.len()
    ));
    for d in s.duplicates.iter().take(LISTED) {
        let others: Vec<&str> = d.others.iter().map(|i| i.as_str()).collect();
        out.say(format!(
            "    {}: kept card {}, left {} alone (never deleted; archive them in Trello if unwanted)",
            d.finding_id,
            d.kept,
            others.join(", ")
        ));
    }
    if s.interrupted_writes_reconciled > 0 {
        out.say(format!(
            "  {} write(s) of an interrupted earlier run were reconciled (no duplicates)",
            s.interrupted_writes_reconciled
        ));
    }
    if !s.labels_created.is_empty() {
        out.say(format!(
            "  labels {would}created: {}",
            s.labels_created.join(", ")
        ));
    }
    if !s.routed.is_empty() {
        out.say(format!(
            "  {} finding(s) had fields Trello lacks routed to labels, checklist items or notes (see --json `routed`)",
            s.routed.len()
        ));
    }
    for p in s.plan.iter().take(LISTED) {
        out.say(format!("    would {} {}", p.action.name(), p.finding_id));
    }
    if s.plan.len() > LISTED {
        out.say(format!(
            "    … and {} more planned writes",
            s.plan.len() - LISTED
        ));
    }
    for b in &s.blocked {
        out.say(format!("  stopped: {} ({}): {}", b.code, b.field, b.fix));
    }
    out.say(format!(
        "  requests to {}: {} reads, {} writes, {} answered 429 (rate limited)",
        if out_dir.is_some() {
            "the bundle"
        } else {
            "Trello"
        },
        s.requests.reads,
        s.requests.writes,
        s.requests.rate_limited
    ));
}
