//! `webriskops export FILE`: findings to Trello cards or Linear issues, or to the portable
//! bundle.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use webriskops_domain::provider::Vocabulary;
use webriskops_domain::BlockedState;
use webriskops_portable::{
    FallbackCause as PortableCause, PortableExport, PortableOptions, RecordSummary,
};
use webriskops_ports::{FindingSource, WorkItems};
use webriskops_service::{
    run_export, ExportDestination, ExportResult, ExportSummary, ExportVerdict, FallbackCause,
    FallbackTrigger, PortableSpec, PortableWriter, ServiceError,
};

use super::{print_readiness, ReadinessJson};
use crate::app::App;
use crate::cli::ExportArgs;
use crate::config::FallbackMode;
use crate::error::{AppError, AppResult, Exit};
use crate::output::Out;
use crate::progress::StderrProgress;
use webriskops_findings_file::FileSource;
use webriskops_server::json::{BlockedExportJson as BlockedJson, ExportJson};

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

/// Opens the portable bundle for the service's fallback.
pub(crate) struct Bundle;

impl PortableWriter for Bundle {
    fn open(&self, spec: &PortableSpec) -> Result<Arc<dyn WorkItems>, ServiceError> {
        let fallback = match &spec.cause {
            FallbackCause::Requested => PortableCause::Requested,
            FallbackCause::Blocked(reasons) => PortableCause::Blocked(reasons.clone()),
        };
        let bundle = PortableExport::new(PortableOptions {
            out_dir: spec.out_dir.clone(),
            source_checksum: spec.source_checksum.clone(),
            record_summary: Some(RecordSummary::from(&spec.record)),
            fallback,
            created_at: spec.created_at,
            ..PortableOptions::default()
        })
        .map_err(|e| ServiceError::Input(format!("cannot write the portable bundle: {e}")))?;
        Ok(Arc::new(bundle))
    }
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
    let policy = req.fallback.policy();
    // The record is loaded here (refused when it belongs to another API root) to find its
    // credentials; `--fallback always` never asks the tracker, so it needs none.
    let record = app.record().await?;
    let tracker = if policy.asks_tracker() {
        let record = record.unwrap_or_else(|| app.tenancy().blank_record());
        app.tracker_for(Some(&record)).await?
    } else {
        None
    };
    let ports = app.ports(tracker)?;
    let request = webriskops_service::ExportRequest {
        tenancy: app.tenancy(),
        fallback: policy,
        out_dir: req.out_dir.clone(),
        dry_run: req.dry_run,
        concurrency: req.concurrency,
    };
    let progress = StderrProgress::new(false);
    let outcome = run_export(&ports, &Bundle, source, &request, &progress, Utc::now()).await?;
    let record_state = outcome.record_state.as_str();
    let exit = match outcome.verdict() {
        ExportVerdict::Complete => Exit::Ok,
        ExportVerdict::Partial => Exit::Partial,
        ExportVerdict::Blocked => Exit::Blocked,
    };
    let (summary, destination) = match &outcome.result {
        ExportResult::Blocked { readiness } => {
            if out.json {
                out.json_doc(&BlockedJson {
                    exported: false,
                    record_state,
                    readiness: ReadinessJson::new(readiness, outcome.record.provider_key),
                });
            } else {
                out.say(format!(
                    "Export stopped: {} setup is blocked.",
                    app.tracker_title()
                ));
                print_readiness(&out, readiness, &outcome.record);
                out.say(format!(
                    "Fix the states above (webriskops setup {}), or write the portable \
                     bundle instead with --fallback always.",
                    app.provider().tracker_name()
                ));
            }
            return Ok((exit, None));
        }
        ExportResult::Exported {
            summary,
            destination,
        } => (summary, destination),
    };
    progress.finish();
    let (cause, out_dir) = match destination {
        ExportDestination::Tracker => (None, None),
        ExportDestination::Portable { out_dir, cause } => (Some(cause), Some(out_dir)),
    };
    // The record's words: Trello's cards and boards, Linear's issues and teams.
    let words = outcome.record.provider_key.vocabulary();
    report(
        &out,
        &words,
        source,
        summary,
        &Fallback {
            trigger: cause.map(FallbackCause::trigger),
            reasons: cause.map_or(&[], FallbackCause::reasons),
            record_state,
        },
        out_dir,
    );
    Ok((exit, Some(ExportSummary::clone(summary))))
}

/// Why the bundle was written, and what record the export used.
struct Fallback<'a> {
    trigger: Option<FallbackTrigger>,
    reasons: &'a [BlockedState],
    record_state: &'static str,
}

/// The summary line about duplicates, in the tracker's words.
fn duplicates_line(words: &Vocabulary, s: &ExportSummary) -> String {
    format!(
        "  invalid findings {}, failed writes {}, findings with duplicate {} {}",
        s.invalid_count,
        s.failed_count,
        words.items,
        s.duplicates.len()
    )
}

/// One duplicate: which item was kept and which were left alone.
fn duplicate_line(words: &Vocabulary, d: &webriskops_service::export::DuplicateReport) -> String {
    let others: Vec<&str> = d.others.iter().map(|i| i.as_str()).collect();
    format!(
        "    {}: kept {} {}, left {} alone (never deleted; archive them in {} if unwanted)",
        d.finding_id,
        words.item,
        d.kept,
        others.join(", "),
        words.tracker
    )
}

/// The summary line about routed fields, naming the places the routes actually used
/// (`RouteTarget` as `describe_route` writes it: `label:`, `checklist:`, `description:` …).
/// Routes within labels, checklist items and notes keep the one sentence Trello's
/// summary has always said.
fn routed_line(words: &Vocabulary, s: &ExportSummary) -> Option<String> {
    if s.routed.is_empty() {
        return None;
    }
    let description = format!("the {} description", words.item);
    let mut places: Vec<&str> = Vec::new();
    for target in s.routed.values().flat_map(|m| m.values()) {
        let place = match target.split_once(':').map_or(target.as_str(), |(k, _)| k) {
            "label" | "new_label" => "labels",
            "checklist" => "checklist items",
            "note" => "notes",
            "description" => description.as_str(),
            "field" => "fields of its own",
            _ => continue,
        };
        if !places.contains(&place) {
            places.push(place);
        }
    }
    let classic = ["labels", "checklist items", "notes"];
    let places = if places.iter().all(|p| classic.contains(p)) {
        "labels, checklist items or notes".to_owned()
    } else {
        let order = [
            "labels",
            "fields of its own",
            description.as_str(),
            "checklist items",
            "notes",
        ];
        let listed: Vec<&str> = order.into_iter().filter(|p| places.contains(p)).collect();
        match listed.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => listed.concat(),
        }
    };
    Some(format!(
        "  {} finding(s) had fields {} lacks routed to {places} (see --json `routed`)",
        s.routed.len(),
        words.tracker
    ))
}

fn report(
    out: &Out,
    words: &Vocabulary,
    source: &FileSource,
    s: &ExportSummary,
    fallback: &Fallback<'_>,
    out_dir: Option<&PathBuf>,
) {
    let tracker = words.tracker;
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
        None => tracker.to_owned(),
    };
    let verb = if s.dry_run { "Dry run of" } else { "Exported" };
    out.say(format!("{verb} {} → {dest}", source.describe()));
    if fallback.trigger == Some(FallbackTrigger::Requested) {
        out.say(format!(
            "  {tracker} was not asked: the bundle was requested (--fallback always)."
        ));
    }
    if fallback.record_state == "draft" && out_dir.is_some() {
        out.say(
            "  The destination comes from the draft record (not saved: setup was blocked; it holds no token).",
        );
    }
    if !reasons.is_empty() {
        out.say(format!(
            "  {tracker} was not used because setup is blocked:"
        ));
        for b in reasons {
            out.say(format!("    {} ({}): {}", b.code, b.field, b.fix));
        }
        out.say(format!(
            "  The bundle keeps each finding's identity: a later {tracker} export will not duplicate it."
        ));
    }
    let would = if s.dry_run { "would be " } else { "" };
    out.say(format!(
        "  {would}created {}, updated {}, closed {}, reopened {}; unchanged {}, skipped {}",
        s.created, s.updated, s.closed, s.reopened, s.unchanged, s.skipped
    ));
    out.say(duplicates_line(words, s));
    for d in s.duplicates.iter().take(LISTED) {
        out.say(duplicate_line(words, d));
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
    if let Some(line) = routed_line(words, s) {
        out.say(line);
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
            tracker
        },
        s.requests.reads,
        s.requests.writes,
        s.requests.rate_limited
    ));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use webriskops_domain::{FindingId, ItemId, ProviderKey};
    use webriskops_service::export::DuplicateReport;

    use super::*;

    fn summary(routes: &[(&str, &str)]) -> ExportSummary {
        let mut s = ExportSummary {
            invalid_count: 1,
            failed_count: 2,
            ..ExportSummary::default()
        };
        s.duplicates.push(DuplicateReport {
            finding_id: FindingId::new("wro-1").unwrap(),
            kept: ItemId::new("A").unwrap(),
            others: vec![ItemId::new("B").unwrap()],
        });
        let routed: BTreeMap<String, String> = routes
            .iter()
            .map(|(f, t)| ((*f).to_owned(), (*t).to_owned()))
            .collect();
        if !routed.is_empty() {
            s.routed.insert("wro-1".into(), routed);
        }
        s
    }

    #[test]
    fn trellos_summary_keeps_its_words() {
        let words = ProviderKey::TrelloCloud.vocabulary();
        let s = summary(&[
            ("priority", "new_label:P2"),
            (
                "assignee",
                "checklist:Assign to x (not a member of the board)",
            ),
            ("severity", "note:Label wanted: severity: high"),
        ]);
        assert_eq!(
            duplicates_line(&words, &s),
            "  invalid findings 1, failed writes 2, findings with duplicate cards 1"
        );
        assert_eq!(
            duplicate_line(&words, &s.duplicates[0]),
            "    wro-1: kept card A, left B alone (never deleted; archive them in Trello if unwanted)"
        );
        assert_eq!(
            routed_line(&words, &s).unwrap(),
            "  1 finding(s) had fields Trello lacks routed to labels, checklist items or notes (see --json `routed`)"
        );
        assert_eq!(routed_line(&words, &summary(&[])), None);
    }

    #[test]
    fn linears_summary_speaks_of_issues_and_where_fields_went() {
        let words = ProviderKey::LinearCloud.vocabulary();
        let s = summary(&[
            ("priority", "field:priority"),
            ("component", "label:component: web"),
            (
                "assignee",
                "description:Assign to: x (not a member of the team)",
            ),
        ]);
        assert_eq!(
            duplicates_line(&words, &s),
            "  invalid findings 1, failed writes 2, findings with duplicate issues 1"
        );
        assert_eq!(
            duplicate_line(&words, &s.duplicates[0]),
            "    wro-1: kept issue A, left B alone (never deleted; archive them in Linear if unwanted)"
        );
        assert_eq!(
            routed_line(&words, &s).unwrap(),
            "  1 finding(s) had fields Linear lacks routed to labels, fields of its own or the issue description (see --json `routed`)"
        );
    }
}
