//! Export: plan every finding against the tracker's current state, then apply the
//! writes concurrently, journaled, so that a re-run after any failure converges.
//!
//! Identity is the finding each item carries in the tracker, written by the create
//! request itself and read back by the adapter (`RemoteItem::finding_id`), plus the
//! local ledger. Before any write the container's items are listed and matched by
//! finding, so a lost ledger, a crash between create and record, or a create whose
//! answer never arrived cannot produce a second item. Whether an item needs a write is
//! decided by the fingerprint the ledger stored (`domain::plan::fields_to_write`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use webriskops_domain::{copying_pays, step_group_key, template_intact, ObservedStepList};
use webriskops_domain::{
    decide, resolve_duplicates, BlockedCode, BlockedState, CardExport, CardOptions, ChangedField,
    Finding, FindingError, FindingId, ItemId, LedgerEntry, ObservedItem, PlanAction,
    ProviderRecord, RouteTarget, Routing, RoutingContext, TargetState, TrackerStatus,
    CHECKLIST_NAME,
};
use webriskops_ports::{
    Checklist, ExportLedger, FindingSource, FindingStream, IntentOutcome, ItemChanges, LedgerScope,
    ListItemsOptions, NewItem, NewLabel, NewStepTemplate, Placement, PortError, ReadOptions,
    RemoteItem, RunId, RunJournal, RunKind, StepTemplate, TrackerIntrospection, WorkItems,
};

use crate::{blocked_code_for, Progress, ServiceError};

mod run;

pub use run::{
    run_export, ExportDestination, ExportOutcome, ExportRequest, ExportResult, ExportVerdict,
    FallbackCause, FallbackPolicy, FallbackTrigger, PortableSpec, PortableWriter,
};

/// The adapters an export uses.
#[derive(Debug, Clone)]
pub struct ExportPorts {
    pub items: Arc<dyn WorkItems>,
    /// Labels and members for routing; `None` for trackers without them (portable).
    pub introspection: Option<Arc<dyn TrackerIntrospection>>,
    pub ledger: Arc<dyn ExportLedger>,
    pub journal: Arc<dyn RunJournal>,
}

/// Where cards go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportTarget {
    pub container_id: String,
    pub destination_id: String,
    /// Cards of closed findings go here; `None` archives them.
    pub done_destination_id: Option<String>,
}

impl ExportTarget {
    /// How the target's items are read: every item of the container, archived ones
    /// included, with the done destination (so the adapter can tell done items).
    pub(crate) fn listing(&self, with_checklists: bool) -> ListItemsOptions {
        ListItemsOptions {
            container_id: self.container_id.clone(),
            cursor: None,
            page_size: 0,
            include_archived: true,
            with_checklists,
            done_destination: self.done_destination_id.clone(),
        }
    }

    /// The target a provider record names, if it names board and list.
    pub fn from_record(record: &ProviderRecord) -> Option<ExportTarget> {
        Some(ExportTarget {
            container_id: record.board_id.clone()?,
            destination_id: record.list_id.clone()?,
            done_destination_id: record.done_list_id.clone(),
        })
    }
}

/// How to run an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportOptions {
    /// Plan only: read the tracker, write nothing anywhere.
    pub dry_run: bool,
    /// Writes in flight at once (the adapter's limiter keeps them within the rate limit).
    pub concurrency: usize,
    /// Ledger entries written per transaction.
    pub ledger_batch: usize,
    /// At most this many invalid findings and failures are listed (all are counted).
    pub max_listed_errors: usize,
    /// Findings that share their steps copy one step template when the tracker can
    /// (`capabilities().copies_step_lists`) and it is cheaper (ADR 0006); `false` writes
    /// every item's steps one by one (for comparison).
    pub step_templates: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            concurrency: 16,
            ledger_batch: 200,
            max_listed_errors: 1000,
            step_templates: true,
        }
    }
}

/// Requests made through the ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    pub reads: u64,
    pub writes: u64,
    /// Answers refused for the rate limit (filled in by the app from the adapter).
    #[serde(rename = "429s")]
    pub rate_limited: u64,
    /// Of those, refusals of the whole application key (every customer's budget).
    #[serde(rename = "429s_key", default)]
    pub rate_limited_key: u64,
}

/// The error of a create whose outcome was unknown and whose item the tracker does not
/// show: it was not sent again (that could make a second item); the next export looks
/// for the finding's item first and creates it only if it is still missing.
fn not_seen_after_unknown_outcome(e: PortError) -> PortError {
    match e {
        PortError::OutcomeUnknown { message, context } => PortError::OutcomeUnknown {
            context,
            message: format!(
                "{message}; no item carries the finding, and the create was not sent again: run the export again, it looks for the finding's item before creating"
            ),
        },
        other => other,
    }
}

/// Several cards found for one finding: the kept one and the others (never deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateReport {
    pub finding_id: FindingId,
    pub kept: ItemId,
    pub others: Vec<ItemId>,
}

/// A finding whose write failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReport {
    pub finding_id: FindingId,
    pub action: String,
    pub error: String,
    /// `PortError::kind`, e.g. `unavailable`.
    pub kind: String,
}

/// One planned write, listed in dry runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanLine {
    pub finding_id: FindingId,
    #[serde(flatten)]
    pub action: PlanAction,
}

/// The outcome of an export (or, for a dry run, of its plan).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSummary {
    pub tracker: String,
    pub dry_run: bool,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub closed: u64,
    pub reopened: u64,
    pub skipped: u64,
    pub duplicates: Vec<DuplicateReport>,
    pub failed: Vec<FailureReport>,
    pub failed_count: u64,
    /// Findings that break the contract (not exported).
    pub invalid: Vec<FindingError>,
    pub invalid_count: u64,
    /// Per finding: field → where it went (`label:P1`, `new_label:…`, `member:…`, `checklist:…`,
    /// `note:…`, `description:…` for a line of the item's description, `field:priority`).
    pub routed: BTreeMap<String, BTreeMap<String, String>>,
    pub labels_created: Vec<String>,
    pub blocked: Vec<BlockedState>,
    pub requests: RequestCounts,
    /// Writes of an earlier run that were interrupted and have now been reconciled.
    pub interrupted_writes_reconciled: u64,
    /// The planned writes (dry runs only).
    pub plan: Vec<PlanLine>,
    pub run_id: Option<i64>,
    /// Step templates: made, deleted (damaged or needed by no finding), and the items
    /// created by copying one (ADR 0006). A dry run counts what it would do.
    #[serde(default)]
    pub step_templates: StepTemplateCounts,
}

/// What an export did with step templates (ADR 0006).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTemplateCounts {
    pub created: u64,
    pub deleted: u64,
    /// Items created by copying a template's steps.
    pub copied: u64,
}

impl ExportSummary {
    /// Whether some findings failed or were invalid (the operator must look).
    pub fn is_partial(&self) -> bool {
        self.failed_count > 0 || self.invalid_count > 0 || !self.blocked.is_empty()
    }
}

fn describe_route(t: &RouteTarget) -> String {
    match t {
        RouteTarget::Label { name } => format!("label:{name}"),
        RouteTarget::NewLabel { name } => format!("new_label:{name}"),
        RouteTarget::Member { member_id } => format!("member:{member_id}"),
        RouteTarget::ChecklistItem { text } => format!("checklist:{text}"),
        RouteTarget::PortableNote { text } => format!("note:{text}"),
        RouteTarget::Description { text } => format!("description:{text}"),
        RouteTarget::NativeField { field } => format!("field:{field}"),
    }
}

/// Label names the exporter owns: it may remove them from a card when they no longer apply.
fn exporter_owned_label(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("severity: ")
        || n.starts_with("component: ")
        || matches!(n.as_str(), "p1" | "p2" | "p3" | "p4")
}

#[derive(Debug, Default)]
struct Counters {
    reads: AtomicU64,
    writes: AtomicU64,
}

impl Counters {
    fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }
    fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }
}

/// A card as observed, with what the exporter needs to continue its checklist.
#[derive(Debug, Clone)]
struct Seen {
    item: ObservedItem,
    our_checklist: Option<Checklist>,
}

/// Where an item stands, from the category the adapter read (ADR 0005 §1): archived,
/// done, canceled or open.
pub(crate) fn status_of(item: &RemoteItem) -> TrackerStatus {
    TrackerStatus::of_item(item.category, item.archived)
}

fn observe(item: RemoteItem, finding: FindingId) -> Seen {
    let status = status_of(&item);
    let our_checklist = item
        .checklists
        .as_ref()
        .and_then(|l| l.iter().find(|c| c.name == CHECKLIST_NAME).cloned());
    let checklist_items = item.checklists.as_ref().map(|_| {
        our_checklist
            .as_ref()
            .map(|c| c.items.iter().map(|i| i.name.clone()).collect())
            .unwrap_or_default()
    });
    Seen {
        item: ObservedItem {
            item_id: item.id,
            finding_id: finding,
            url: item.url,
            created_secs: item.created_secs,
            status,
            title: item.title,
            body: item.body,
            label_ids: item.label_ids,
            member_ids: item.member_ids,
            due: item.due,
            checklist_items,
            priority: item.priority,
        },
        our_checklist,
    }
}

/// Everything read before planning.
struct Snapshot {
    /// The exporter's step templates in the container, as listed.
    templates: Vec<StepTemplate>,
    ctx: RoutingContext,
    label_names: HashMap<String, String>,
    seen: HashMap<FindingId, Seen>,
    duplicates: Vec<DuplicateReport>,
    ledger: HashMap<FindingId, LedgerEntry>,
}

async fn read_snapshot(
    ports: &ExportPorts,
    target: &ExportTarget,
    scope: &LedgerScope,
    counters: &Counters,
    progress: &dyn Progress,
) -> Result<Snapshot, PortError> {
    let caps = ports.items.capabilities();
    let mut ctx = RoutingContext {
        supports_labels: caps.labels,
        can_create_labels: caps.create_labels,
        supports_checklists: caps.checklists,
        native_priority: caps.native_priority,
        // A live tracker without checklists (Linear) keeps no portable notes: routed
        // fields go into the description, where the fingerprint covers them.
        notes_in_body: !caps.checklists && caps.list_items,
        max_assignees: Some(caps.max_assignees),
        container_word: scope.provider.vocabulary().container,
        ..Default::default()
    };
    let mut label_names = HashMap::new();
    if let Some(i) = &ports.introspection {
        if caps.labels {
            counters.read();
            for l in i.labels(&target.container_id).await? {
                if !l.name.is_empty() {
                    ctx.labels
                        .entry(l.name.to_lowercase())
                        .or_insert_with(|| l.id.clone());
                }
                label_names.insert(l.id, l.name);
            }
        }
        if caps.members {
            counters.read();
            for m in i.members(&target.container_id).await? {
                ctx.members.insert(m.username.to_lowercase(), m.id.clone());
                if let Some(e) = &m.email {
                    ctx.members.insert(e.to_lowercase(), m.id.clone());
                }
            }
        }
    }
    let mut by_finding: HashMap<FindingId, Vec<Seen>> = HashMap::new();
    let mut templates = Vec::new();
    if caps.list_items {
        let listing = format!("listing {}", scope.provider.vocabulary().items);
        progress.phase(&listing, None);
        let mut opts = target.listing(caps.checklists);
        loop {
            counters.read();
            let page = ports.items.list_items(&opts).await?;
            progress.advance(page.items.len() as u64);
            // Only the templates in the export's own destination are its own: another
            // destination of the container may be another integration's, whose
            // templates this export must neither use nor delete (ADR 0006 §5).
            templates.extend(
                page.step_templates
                    .into_iter()
                    .filter(|t| t.destination_id == target.destination_id),
            );
            for item in page.items {
                if let Some(f) = item.finding_id.clone() {
                    by_finding
                        .entry(f.clone())
                        .or_default()
                        .push(observe(item, f));
                }
            }
            match page.next_cursor {
                Some(c) => opts.cursor = Some(c),
                None => break,
            }
        }
    }
    let mut seen = HashMap::with_capacity(by_finding.len());
    let mut duplicates = Vec::new();
    for (f, group) in by_finding {
        let mut extra: HashMap<ItemId, Option<Checklist>> = group
            .iter()
            .map(|s| (s.item.item_id.clone(), s.our_checklist.clone()))
            .collect();
        let res = resolve_duplicates(group.into_iter().map(|s| s.item).collect())
            .expect("non-empty group");
        if !res.duplicates.is_empty() {
            duplicates.push(DuplicateReport {
                finding_id: f.clone(),
                kept: res.keep.item_id.clone(),
                others: res.duplicates.iter().map(|d| d.item_id.clone()).collect(),
            });
        }
        let our_checklist = extra.remove(&res.keep.item_id).flatten();
        seen.insert(
            f,
            Seen {
                item: res.keep,
                our_checklist,
            },
        );
    }
    duplicates.sort_by(|a, b| a.finding_id.cmp(&b.finding_id));
    let ledger = ports
        .ledger
        .all(scope)
        .await?
        .into_iter()
        .map(|e| (e.finding_id.clone(), e))
        .collect();
    Ok(Snapshot {
        templates,
        ctx,
        label_names,
        seen,
        duplicates,
        ledger,
    })
}

/// One finding's work in the apply phase.
struct Job {
    planned: CardExport,
    routing: Routing,
    /// The step template whose steps a create copies (ADR 0006).
    template: Option<String>,
    action: PlanAction,
    seen: Option<Seen>,
    ledger: Option<LedgerEntry>,
}

/// Shared state of the apply phase.
struct Apply<'a> {
    ports: &'a ExportPorts,
    target: &'a ExportTarget,
    counters: &'a Counters,
    run: RunId,
    label_names: &'a HashMap<String, String>,
    /// Set on an authentication or permission failure: remaining writes are not sent.
    abort: AtomicBool,
    abort_error: Mutex<Option<PortError>>,
    /// Items created by copying a step template.
    copied: AtomicU64,
    /// Templates a copy was refused from in this run (gone, or refused as a source):
    /// the rest of their group takes the step-by-step path without asking again.
    refused_templates: Mutex<HashSet<String>>,
}

enum Applied {
    Done {
        action: &'static str,
        entry: LedgerEntry,
    },
    LedgerOnly(LedgerEntry),
    Failed(FailureReport),
}

/// How long to wait before each retry of a store call in the export loop: about four
/// seconds in all, which covers a database restart or failover (the statement in flight
/// fails with "connection closed", and the next attempt gets a new connection).
const STORE_RETRY_WAITS_MS: [u64; 4] = [100, 300, 1_000, 3_000];

/// `call`, tried again after each wait of [`STORE_RETRY_WAITS_MS`] while it fails. Only for
/// store calls that are safe to repeat. Without it, a finding whose journal entry fails in
/// a moment of lost connections is reported failed and gets no card, although the export
/// goes on (`connections_cut_again_and_again_mid_export_leave_no_finding_without_its_card`).
async fn with_store_retries<T, F, Fut>(mut call: F) -> Result<T, PortError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PortError>>,
{
    let mut waits = STORE_RETRY_WAITS_MS.iter();
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) => match waits.next() {
                Some(ms) => {
                    tracing::warn!(error = %e, retry_in_ms = ms, "a store call of the export failed; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
                }
                None => return Err(e),
            },
        }
    }
}

impl Apply<'_> {
    fn fail(&self, finding: &FindingId, action: &str, e: &PortError) -> Applied {
        if blocked_code_for(e).is_some() && !self.abort.swap(true, Ordering::SeqCst) {
            *self.abort_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
        }
        Applied::Failed(FailureReport {
            finding_id: finding.clone(),
            action: action.into(),
            error: e.to_string(),
            kind: e.kind().into(),
        })
    }

    async fn run(&self, job: Job) -> Applied {
        let id = job.planned.finding_id.clone();
        let name = job.action.name();
        if !job.action.writes() {
            // Adoption (lost ledger, new duplicate winner) or a refreshed fingerprint: local only.
            let seen = job.seen.as_ref().expect("ledger-only jobs have an item");
            return Applied::LedgerOnly(self.entry(
                &job,
                &seen.item.item_id,
                seen.item.url.clone(),
                None,
            ));
        }
        if self.abort.load(Ordering::SeqCst) {
            let e = self
                .abort_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_else(|| PortError::other("export stopped"));
            return Applied::Failed(FailureReport {
                finding_id: id,
                action: name.into(),
                error: format!("not attempted: {e}"),
                kind: e.kind().into(),
            });
        }
        // Before any write to the tracker, so repeating it is safe: a first attempt that
        // was recorded although it failed leaves an intent without an outcome, which the
        // next export reconciles by the finding's marker.
        let intent = match with_store_retries(|| {
            self.ports.journal.record_intent(self.run, &id, name)
        })
        .await
        {
            Ok(i) => i,
            Err(e) => return self.fail(&id, name, &e),
        };
        let result = match &job.action {
            PlanAction::Create => self.create(&job).await,
            PlanAction::Update { fields }
            | PlanAction::Close { fields }
            | PlanAction::Reopen { fields } => self.update(&job, fields).await,
            PlanAction::Unchanged | PlanAction::Skip { .. } => {
                unreachable!("non-writing actions return above")
            }
        };
        let outcome = match &result {
            Ok(entry) => IntentOutcome::Done {
                item_id: Some(entry.item_id.to_string()),
            },
            Err(e) => IntentOutcome::Failed {
                error: e.to_string(),
            },
        };
        // The write happened (or not) either way; a journal failure here only loses bookkeeping.
        let _ = self.ports.journal.record_outcome(intent, &outcome).await;
        match result {
            Ok(entry) => Applied::Done {
                action: name,
                entry,
            },
            Err(e) => self.fail(&id, name, &e),
        }
    }

    fn entry(
        &self,
        job: &Job,
        item: &ItemId,
        url: Option<String>,
        moved_to: Option<TargetState>,
    ) -> LedgerEntry {
        let (target, observed) = match (moved_to, &job.ledger, &job.seen) {
            (Some(t), _, _) => (t, t.into()),
            (None, Some(l), _) => (l.target, l.observed),
            // Adopted without a ledger: the exporter put it in the open list; a person's
            // close is then reported once by the next sync.
            (None, None, _) => (TargetState::Open, TrackerStatus::Open),
        };
        LedgerEntry {
            finding_id: job.planned.finding_id.clone(),
            item_id: item.clone(),
            item_url: url,
            fingerprint: job.planned.fingerprint.clone(),
            target,
            observed,
            updated_at: Utc::now(),
        }
    }

    async fn create(&self, job: &Job) -> Result<LedgerEntry, PortError> {
        let planned = &job.planned;
        let new = NewItem {
            finding_id: planned.finding_id.clone(),
            destination_id: self.target.destination_id.clone(),
            title: planned.title.clone(),
            body: planned.body.clone(),
            label_ids: job.routing.label_ids.clone(),
            member_ids: job.routing.member_id.iter().cloned().collect(),
            due: planned.due,
            placement: Placement::Bottom,
            label_names: planned.labels.iter().map(|l| l.name.clone()).collect(),
            assignee: planned.assignee.clone(),
            notes: job.routing.notes.clone(),
            target: planned.target,
            priority: Some(planned.priority.rank()),
        };
        // One create. Retrying is the adapter's job (the one place that retries); a
        // create whose outcome is unknown is reconciled here by reading back, never sent
        // again: a second request could make a second card.
        self.counters.write();
        let template = job.template.as_ref().filter(|t| {
            !self
                .refused_templates
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(*t)
        });
        let (first, copied) = match template {
            Some(template) => match self.ports.items.create_item_copying(&new, template).await {
                // The template is gone (a person deleted it during the run): nothing was
                // created, so the plain create is no second one, and the group's other
                // items do not ask again.
                Err(e @ PortError::NotFound { .. }) if !e.may_have_applied() => {
                    self.refused_templates
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(template.clone());
                    self.counters.write();
                    (self.ports.items.create_item(&new).await, false)
                }
                // Any other refusal (`InvalidInput`) created nothing either. It may be
                // this item's own (a list, label or member refused: the plain create
                // fails the same way) or the tracker refusing the source in words the
                // adapter does not know: this item is created plainly all the same, so
                // no finding is left without its card, and the group keeps copying.
                Err(e @ PortError::InvalidInput { .. }) if !e.may_have_applied() => {
                    tracing::warn!(error = %e, "a copy was refused; the item is created with its steps one by one");
                    self.counters.write();
                    (self.ports.items.create_item(&new).await, false)
                }
                other => (other, true),
            },
            None => (self.ports.items.create_item(&new).await, false),
        };
        let (item, existing_checklist) = match first {
            Ok(item) if copied => {
                // The steps came with the create, in the same request.
                self.copied.fetch_add(1, Ordering::Relaxed);
                return Ok(self.entry(job, &item.id, item.url.clone(), Some(TargetState::Open)));
            }
            Ok(item) => (item, None),
            Err(e) if e.may_have_applied() && self.ports.items.capabilities().list_items => {
                // The create may have happened: look its item up by finding.
                match self.find_by_finding(&planned.finding_id).await? {
                    Some(found) => {
                        let checklist = found
                            .checklists
                            .as_ref()
                            .and_then(|l| l.iter().find(|c| c.name == CHECKLIST_NAME).cloned());
                        (found, checklist)
                    }
                    None => return Err(not_seen_after_unknown_outcome(e)),
                }
            }
            Err(e) => return Err(e),
        };
        let steps = steps_of(planned, &job.routing);
        self.add_steps(&planned.finding_id, &item.id, existing_checklist, &steps)
            .await?;
        Ok(self.entry(job, &item.id, item.url.clone(), Some(TargetState::Open)))
    }

    /// How single items are read: with checklists when the tracker has them, and the
    /// target's done destination.
    fn reading(&self) -> ReadOptions {
        self.target
            .listing(self.ports.items.capabilities().checklists)
            .read_options()
    }

    async fn find_by_finding(&self, finding: &FindingId) -> Result<Option<RemoteItem>, PortError> {
        self.counters.read();
        self.ports
            .items
            .find_by_finding(&self.target.container_id, finding, &self.reading())
            .await
    }

    /// Adds the steps missing from the exporter's checklist, creating it when absent.
    /// Items people ticked or added stay as they are.
    ///
    /// Nothing here is sent twice: retrying is the adapter's job. A write whose outcome
    /// is unknown is reconciled by reading the card back: a checklist that turns out to
    /// exist is used (its items were never sent, so sending them is no repeat), and
    /// items that turn out to be there count as added. Whatever is still missing fails
    /// this finding, and the next export adds it.
    async fn add_steps(
        &self,
        finding: &FindingId,
        item: &ItemId,
        existing: Option<Checklist>,
        steps: &[String],
    ) -> Result<(), PortError> {
        if steps.is_empty() || !self.ports.items.capabilities().checklists {
            return Ok(());
        }
        let checklist = match existing {
            Some(c) => c,
            None => {
                self.counters.write();
                match self
                    .ports
                    .items
                    .create_checklist(item, CHECKLIST_NAME)
                    .await
                {
                    Ok(c) => c,
                    Err(e) if e.may_have_applied() => {
                        match self.our_checklist_now(finding, item).await? {
                            Some(Some(c)) => c,
                            _ => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        match self.add_missing_items(&checklist, steps).await {
            Err(e) if e.may_have_applied() => {
                let now = self.our_checklist_now(finding, item).await?;
                let have: Vec<&str> = now
                    .iter()
                    .flatten()
                    .flat_map(|c| c.items.iter().map(|i| i.name.as_str()))
                    .collect();
                if now.is_some() && steps.iter().all(|s| have.contains(&s.as_str())) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            other => other,
        }
    }

    /// The exporter's checklist on the card as the tracker shows it now: `Ok(None)` when
    /// the card cannot be read back (then nothing is retried), `Ok(Some(None))` when the
    /// card has no such checklist.
    async fn our_checklist_now(
        &self,
        finding: &FindingId,
        item: &ItemId,
    ) -> Result<Option<Option<Checklist>>, PortError> {
        self.counters.read();
        let read = ReadOptions {
            with_checklists: true,
            ..self.reading()
        };
        let current = match self.ports.items.get_item(item, &read).await {
            Ok(current) => Some(current),
            Err(PortError::NotSupported { .. }) => self
                .find_by_finding(finding)
                .await?
                .filter(|c| &c.id == item),
            Err(e) if e.is_transient() => None,
            Err(e) => return Err(e),
        };
        Ok(current.map(|c| {
            c.checklists
                .unwrap_or_default()
                .into_iter()
                .find(|l| l.name == CHECKLIST_NAME)
        }))
    }

    /// Sends each step that `checklist` lacks, once, concurrently; the first error wins.
    async fn add_missing_items(
        &self,
        checklist: &Checklist,
        steps: &[String],
    ) -> Result<(), PortError> {
        let have: Vec<String> = checklist.items.iter().map(|i| i.name.clone()).collect();
        let missing: Vec<(u32, &String)> = steps
            .iter()
            .filter(|s| !have.contains(s))
            .enumerate()
            .map(|(i, s)| (have.len() as u32 + i as u32 + 1, s))
            .collect();
        let adds = missing.into_iter().map(|(pos, name)| {
            self.counters.write();
            let id = checklist.id.clone();
            async move { self.ports.items.add_check_item(&id, name, pos).await }
        });
        let mut first_error: Option<PortError> = None;
        for r in futures::future::join_all(adds).await {
            if let Err(e) = r {
                // An unknown outcome first: it is the one to reconcile.
                match &first_error {
                    Some(f) if f.may_have_applied() || !e.may_have_applied() => {}
                    _ => first_error = Some(e),
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn update(&self, job: &Job, fields: &[ChangedField]) -> Result<LedgerEntry, PortError> {
        let seen = job.seen.as_ref().expect("updates have an item");
        let o = &seen.item;
        let planned = &job.planned;
        let mut changes = ItemChanges::default();
        for f in fields {
            match f {
                ChangedField::Title => changes.title = Some(planned.title.clone()),
                ChangedField::Body => changes.body = Some(planned.merged_body(&o.body)),
                ChangedField::Labels => {
                    let mut ids: Vec<String> = o
                        .label_ids
                        .iter()
                        .filter(|id| {
                            job.routing.label_ids.contains(id)
                                || !self
                                    .label_names
                                    .get(*id)
                                    .is_some_and(|n| exporter_owned_label(n))
                        })
                        .cloned()
                        .collect();
                    for id in &job.routing.label_ids {
                        if !ids.contains(id) {
                            ids.push(id.clone());
                        }
                    }
                    changes.label_ids = Some(ids);
                }
                ChangedField::Members => {
                    let mut ids = o.member_ids.clone();
                    ids.extend(
                        job.routing
                            .member_id
                            .iter()
                            .filter(|m| !o.member_ids.contains(m))
                            .cloned(),
                    );
                    changes.member_ids = Some(ids);
                }
                ChangedField::Due => changes.due = Some(planned.due),
                ChangedField::Priority => changes.priority = Some(planned.priority.rank()),
                ChangedField::Checklist => {}
            }
        }
        let moved_to = match &job.action {
            PlanAction::Close { .. } => {
                match (&planned.target, &self.target.done_destination_id) {
                    (TargetState::Done, Some(done)) => changes.destination_id = Some(done.clone()),
                    _ => changes.archived = Some(true),
                }
                Some(planned.target)
            }
            PlanAction::Reopen { .. } => {
                if o.status == TrackerStatus::Archived {
                    changes.archived = Some(false);
                }
                // Out of a done or canceled state, or out of the done destination.
                if matches!(o.status, TrackerStatus::Done | TrackerStatus::Canceled)
                    || self.target.done_destination_id.is_some()
                {
                    changes.destination_id = Some(self.target.destination_id.clone());
                }
                Some(TargetState::Open)
            }
            _ => None,
        };
        if !changes.is_empty() {
            self.counters.write();
            self.ports.items.update_item(&o.item_id, &changes).await?;
        }
        if fields.contains(&ChangedField::Checklist) {
            let steps = steps_of(planned, &job.routing);
            self.add_steps(
                &planned.finding_id,
                &o.item_id,
                seen.our_checklist.clone(),
                &steps,
            )
            .await?;
        }
        Ok(self.entry(job, &o.item_id, o.url.clone(), moved_to))
    }
}

/// Plans and (unless `dry_run`) applies an export of `source` to `target`.
///
/// Invalid findings are reported and skipped; valid ones continue. An authentication
/// or permission failure midway stops further writes and is reported as a blocked
/// state; other failures are reported per finding.
///
/// # Errors
/// Failures before any write (the listing, the ledger, the source) are returned; a
/// re-run is then safe.
pub async fn export(
    ports: &ExportPorts,
    record: &ProviderRecord,
    target: &ExportTarget,
    source: &dyn FindingSource,
    opts: &ExportOptions,
    progress: &dyn Progress,
) -> Result<ExportSummary, ServiceError> {
    let counters = Counters::default();
    let caps = ports.items.capabilities();
    let words = record.provider_key.vocabulary();
    let scope = LedgerScope {
        tenant: record.tenant.clone(),
        provider: record.provider_key,
        container_id: target.container_id.clone(),
    };
    let mut summary = ExportSummary {
        tracker: caps.tracker.into(),
        dry_run: opts.dry_run,
        ..Default::default()
    };

    let snap = match read_snapshot(ports, target, &scope, &counters, progress).await {
        Ok(s) => s,
        Err(e) => {
            if let Some(code) = blocked_code_for(&e) {
                summary.blocked.push(BlockedState {
                    code,
                    field: "token".into(),
                    fix: format!("{}; run `{}` again", e.reason(), words.setup_command),
                });
                summary.requests = RequestCounts {
                    reads: counters.reads.into_inner(),
                    writes: 0,
                    rate_limited: 0,
                    rate_limited_key: 0,
                };
                return Ok(summary);
            }
            return Err(e.into());
        }
    };
    let Snapshot {
        templates,
        mut ctx,
        mut label_names,
        seen,
        duplicates,
        ledger,
    } = snap;
    summary.duplicates = duplicates;
    let has_done = target.done_destination_id.is_some();
    // The tracker's text limits; a tracker without checklists takes the steps in the
    // body (a Markdown task list).
    let card_opts = CardOptions {
        has_done_list: has_done,
        steps_in_body: !caps.checklists,
        max_title_chars: caps.max_title_chars,
        max_body_chars: caps.max_body_chars,
        max_step_chars: caps.max_step_chars,
    };

    // Pass 1: plan. Only actions and routing outcomes are kept, never card bodies.
    progress.phase("planning", None);
    // Findings with work in the apply pass (a write, or a ledger refresh); an unchanged
    // re-export leaves this empty and the file is not read a second time.
    let mut wanted: HashSet<FindingId> = HashSet::new();
    let mut writes_planned = 0u64;
    let mut labels_to_create: BTreeMap<String, webriskops_domain::LabelIntent> = BTreeMap::new();
    let mut first_seen_at: HashSet<FindingId> = HashSet::new();
    // Step groups (ADR 0006): per key of every step list a finding of the file has, its
    // new items, and its steps where a template may serve them (a list two new items
    // share, or one a template already holds): a file of distinct steps keeps no steps.
    let copies = caps.copies_step_lists && caps.checklists && opts.step_templates;
    let template_keys: HashSet<String> = templates.iter().map(|t| t.key.clone()).collect();
    let mut groups: HashMap<String, StepGroup> = HashMap::new();
    let stream = source
        .open()
        .map_err(|e| ServiceError::Input(format!("cannot read {}: {e}", source.describe())))?;
    for result in stream {
        progress.advance(1);
        let finding = match result {
            Ok(f) => f,
            Err(e) => {
                record_invalid(&mut summary, e, opts);
                continue;
            }
        };
        if !first_seen_at.insert(finding.id.clone()) {
            let e = FindingError {
                position: webriskops_domain::Position::Document,
                id: Some(finding.id.to_string()),
                field: Some("id".into()),
                reason: "appears more than once in the file; only the first is exported".into(),
            };
            record_invalid(&mut summary, e, opts);
            continue;
        }
        let (planned, routing, action) = plan_one(&finding, &card_opts, &ctx, &ledger, &seen);
        if copies {
            let steps = steps_of(&planned, &routing);
            if !steps.is_empty() {
                let key = step_group_key(&steps);
                let has_template = template_keys.contains(&key);
                let g = groups.entry(key).or_default();
                if matches!(action, PlanAction::Create) {
                    g.items += 1;
                    if g.steps.is_none() && (g.items >= 2 || has_template) {
                        g.steps = Some(steps);
                    }
                }
            }
        }
        // Labels are created for the items that are written, and only for them.
        for l in routing.create_labels.iter().filter(|_| action.writes()) {
            labels_to_create
                .entry(l.name.to_lowercase())
                .or_insert_with(|| l.clone());
        }
        if !routing.routed.is_empty() {
            summary.routed.insert(
                planned.finding_id.to_string(),
                routing
                    .routed
                    .iter()
                    .map(|r| (r.field.clone(), describe_route(&r.target)))
                    .collect(),
            );
        }
        match &action {
            PlanAction::Create => summary.created += 1,
            PlanAction::Update { .. } => summary.updated += 1,
            PlanAction::Unchanged => summary.unchanged += 1,
            PlanAction::Close { .. } => summary.closed += 1,
            PlanAction::Reopen { .. } => summary.reopened += 1,
            PlanAction::Skip { .. } => summary.skipped += 1,
        }
        if opts.dry_run && action.writes() {
            summary.plan.push(PlanLine {
                finding_id: planned.finding_id.clone(),
                action: action.clone(),
            });
        }
        let entry = ledger.get(&planned.finding_id);
        let seen_card = seen.get(&planned.finding_id);
        if action.writes() {
            writes_planned += 1;
        }
        if action.writes() || needs_ledger_refresh(&planned, &action, seen_card, entry) {
            wanted.insert(planned.finding_id);
        }
    }
    // Without copying (a tracker that cannot, or templates switched off) templates are
    // left as they are.
    let template_plan = if copies {
        plan_templates(templates, &groups)
    } else {
        TemplatePlan::default()
    };
    if opts.dry_run {
        summary.step_templates = StepTemplateCounts {
            created: template_plan.to_create.len() as u64,
            deleted: template_plan.to_delete.len() as u64,
            copied: template_plan
                .copy_keys
                .iter()
                .filter_map(|k| groups.get(k))
                .map(|g| g.items)
                .sum(),
        };
        summary.labels_created = labels_to_create.values().map(|l| l.name.clone()).collect();
        summary.requests = RequestCounts {
            reads: counters.reads.into_inner(),
            writes: 0,
            rate_limited: 0,
            rate_limited_key: 0,
        };
        return Ok(summary);
    }

    // Apply. Counts are recomputed from what actually happened.
    let run = ports
        .journal
        .start_run(&record.tenant, record.provider_key, RunKind::Export)
        .await?;
    summary.run_id = Some(run.0);
    let unfinished = ports.journal.unfinished(&record.tenant).await?;
    if !unfinished.is_empty() {
        // The listing above already found every card those writes created.
        progress.note(&format!(
            "{} write(s) of an interrupted run reconciled from the {} listing",
            unfinished.len(),
            words.container
        ));
        summary.interrupted_writes_reconciled =
            ports.journal.settle_unfinished(&record.tenant, run).await?;
    }
    // Labels go out together (the adapter's limiter paces them), in name order.
    let creates = labels_to_create.into_values().map(|intent| {
        counters.write();
        let label = NewLabel {
            container_id: target.container_id.clone(),
            name: intent.name.clone(),
            color: intent.color.clone(),
        };
        async move { (intent, ports.items.create_label(&label).await) }
    });
    // Templates need no label: they are made while the labels are, one round trip less.
    let mut template_counts = StepTemplateCounts::default();
    let (created, template_for) = futures::join!(
        stream::iter(creates)
            .buffered(opts.concurrency.max(1))
            .collect::<Vec<_>>(),
        apply_templates(
            ports,
            target,
            &counters,
            template_plan,
            &groups,
            opts,
            progress,
            words.item,
            &mut template_counts,
        )
    );
    summary.step_templates = template_counts;
    let template_for = template_for?;
    drop(groups);
    for (intent, result) in created {
        match result {
            Ok(l) => {
                ctx.labels.insert(l.name.to_lowercase(), l.id.clone());
                label_names.insert(l.id, l.name);
                summary.labels_created.push(intent.name);
            }
            Err(e)
                if blocked_code_for(&e).is_some()
                    || matches!(e, PortError::NotSupported { .. }) =>
            {
                // Cannot create labels after all: route to checklist items (or, for a
                // tracker without checklists, to notes) instead.
                ctx.can_create_labels = false;
                progress.note(&format!(
                    "label `{}` could not be created ({e}); routing to {}",
                    webriskops_domain::text::echo_untrusted(&intent.name),
                    if ctx.supports_checklists {
                        "checklist items"
                    } else if ctx.notes_in_body {
                        "the description"
                    } else {
                        "notes (the description keeps the finding's fields)"
                    }
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Unchanged and skipped stand as planned; writes are counted as they succeed.
    summary.created = 0;
    summary.updated = 0;
    summary.closed = 0;
    summary.reopened = 0;

    progress.phase("applying", Some(writes_planned));
    let apply = Apply {
        ports,
        target,
        counters: &counters,
        run,
        label_names: &label_names,
        abort: AtomicBool::new(false),
        abort_error: Mutex::new(None),
        copied: AtomicU64::new(0),
        refused_templates: Mutex::new(HashSet::new()),
    };
    // Pass 2 reads the file again only when there is work, and builds cards only for
    // the findings that have it (a finding listed twice in the file is taken once).
    let stream: FindingStream = if wanted.is_empty() {
        Box::new(std::iter::empty())
    } else {
        source
            .open()
            .map_err(|e| ServiceError::Input(format!("cannot read {}: {e}", source.describe())))?
    };
    let ctx = &ctx;
    let jobs = stream.filter_map(Result::ok).filter_map(|finding| {
        if !wanted.remove(&finding.id) {
            return None;
        }
        let (planned, routing, action) = plan_one(&finding, &card_opts, ctx, &ledger, &seen);
        let seen_item = seen.get(&finding.id).cloned();
        let entry = ledger.get(&finding.id).cloned();
        if !action.writes()
            && !needs_ledger_refresh(&planned, &action, seen_item.as_ref(), entry.as_ref())
        {
            return None;
        }
        let template = match action {
            PlanAction::Create if !template_for.is_empty() => template_for
                .get(&step_group_key(&steps_of(&planned, &routing)))
                .cloned(),
            _ => None,
        };
        Some(Job {
            planned,
            routing,
            template,
            action,
            seen: seen_item,
            ledger: entry,
        })
    });
    let mut results = stream::iter(jobs)
        .map(|job| apply.run(job))
        .buffer_unordered(opts.concurrency.max(1));
    // The ledger is written in batches by a second future polled beside the loop, never
    // inside it: while the loop awaited a batch, the writes in flight would not be polled
    // and would keep the store connections they hold, and the batch could wait for one of
    // them forever (a pool smaller than the concurrency deadlocked this way).
    let (entries, mut written) = futures::channel::mpsc::unbounded::<LedgerEntry>();
    let consume = async {
        while let Some(applied) = results.next().await {
            match applied {
                Applied::Done { action, entry } => {
                    progress.advance(1);
                    match action {
                        "create" => summary.created += 1,
                        "update" => summary.updated += 1,
                        "close" => summary.closed += 1,
                        "reopen" => summary.reopened += 1,
                        _ => {}
                    }
                    let _ = entries.unbounded_send(entry);
                }
                Applied::LedgerOnly(entry) => {
                    let _ = entries.unbounded_send(entry);
                }
                Applied::Failed(f) => {
                    progress.advance(1);
                    summary.failed_count += 1;
                    if summary.failed.len() < opts.max_listed_errors {
                        summary.failed.push(f);
                    }
                }
            }
        }
        drop(entries);
        Ok::<(), PortError>(())
    };
    let record = async {
        let mut batch = Vec::with_capacity(opts.ledger_batch);
        while let Some(entry) = written.next().await {
            batch.push(entry);
            if batch.len() >= opts.ledger_batch.max(1) {
                // Entries are replaced by finding: writing them again changes nothing.
                with_store_retries(|| ports.ledger.put_many(&scope, &batch)).await?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            with_store_retries(|| ports.ledger.put_many(&scope, &batch)).await?;
        }
        Ok::<(), PortError>(())
    };
    futures::try_join!(consume, record)?;
    drop(results);
    ports.items.flush().await?;
    summary.step_templates.copied = apply.copied.load(Ordering::Relaxed);
    if let Some(e) = apply
        .abort_error
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
    {
        let code = blocked_code_for(&e).unwrap_or(BlockedCode::ProviderAuthRequired);
        let (tracker, credential) = (words.tracker, words.credential);
        let fix = match code {
            BlockedCode::ProviderAuthRequired => format!("reconnect {tracker} (the {credential} expired or was revoked during the export), then run the export again"),
            _ => format!("the {credential} lost access during the export: adjust the {credential}'s permissions or ask for the portable bundle (fallback policy `always`), then run the export again"),
        };
        summary.blocked.push(BlockedState {
            code,
            field: "token".into(),
            fix,
        });
    }
    summary
        .failed
        .sort_by(|a, b| a.finding_id.cmp(&b.finding_id));
    summary.requests = RequestCounts {
        reads: counters.reads.into_inner(),
        writes: counters.writes.into_inner(),
        rate_limited: 0,
        rate_limited_key: 0,
    };
    let json = serde_json::to_string(&SummaryForJournal::from(&summary)).unwrap_or_default();
    ports.journal.finish_run(run, &json).await?;
    Ok(summary)
}

/// Whether a finding that writes nothing still needs its ledger entry rewritten: its card
/// was adopted (no entry, or another card now wins the duplicates) or its plan changed.
fn needs_ledger_refresh(
    planned: &CardExport,
    action: &PlanAction,
    seen: Option<&Seen>,
    entry: Option<&LedgerEntry>,
) -> bool {
    !action.writes()
        && seen.is_some_and(|s| {
            entry
                .is_none_or(|l| l.item_id != s.item.item_id || l.fingerprint != planned.fingerprint)
        })
}

fn plan_one(
    finding: &Finding,
    opts: &CardOptions,
    ctx: &RoutingContext,
    ledger: &HashMap<FindingId, LedgerEntry>,
    seen: &HashMap<FindingId, Seen>,
) -> (CardExport, Routing, PlanAction) {
    // Routing knows the item's current members: a tracker with room for one assignee
    // keeps the one a person set.
    let current = seen.get(&finding.id).map(|s| s.item.member_ids.as_slice());
    let (planned, routing) = CardExport::build_routed(finding, opts, ctx, current);
    let action = decide(
        &planned,
        &routing,
        ledger.get(&finding.id),
        seen.get(&finding.id).map(|s| &s.item),
    );
    (planned, routing, action)
}

/// Every step an item of `planned` carries: the finding's own and the routed fields
/// that went to the step list.
fn steps_of(planned: &CardExport, routing: &Routing) -> Vec<String> {
    planned
        .checklist
        .iter()
        .chain(routing.extra_checklist.iter())
        .cloned()
        .collect()
}

/// One step list of the file: its new items in this export, and its steps when a
/// template may serve them.
#[derive(Default)]
struct StepGroup {
    items: u64,
    steps: Option<Vec<String>>,
}

/// What to do with step templates before the items are written (ADR 0006).
#[derive(Default)]
struct TemplatePlan {
    /// Intact templates kept: key → the id of the template.
    ready: HashMap<String, String>,
    /// Templates to make: key → steps.
    to_create: Vec<(String, Vec<String>)>,
    /// Damaged, duplicate, visible or unneeded templates.
    to_delete: Vec<String>,
    /// The groups whose new items copy a template.
    copy_keys: HashSet<String>,
}

fn is_intact(t: &StepTemplate, steps: &[String]) -> bool {
    let lists: Vec<ObservedStepList> = t
        .checklists
        .iter()
        .map(|c| ObservedStepList {
            name: c.name.clone(),
            steps: c
                .items
                .iter()
                .map(|i| (i.name.clone(), i.complete))
                .collect(),
        })
        .collect();
    template_intact(steps, CHECKLIST_NAME, t.hidden, &lists)
}

/// Decides which templates stay, which go and which are made: per key, the first intact
/// template stays (for a key no new item uses this time, the first hidden one: it is
/// checked when it is next copied); the others, templates out of hiding, and those of a
/// key no finding of the file has are deleted. A group copies when
/// `domain::copying_pays` says the template is cheaper than its items' steps.
fn plan_templates(
    existing: Vec<StepTemplate>,
    groups: &HashMap<String, StepGroup>,
) -> TemplatePlan {
    let mut plan = TemplatePlan::default();
    let mut by_key: BTreeMap<String, Vec<StepTemplate>> = BTreeMap::new();
    for t in existing {
        by_key.entry(t.key.clone()).or_default().push(t);
    }
    for (key, mut ts) in by_key {
        ts.sort_by(|a, b| a.id.cmp(&b.id));
        let keep = match groups.get(&key) {
            None => None,
            Some(StepGroup {
                steps: Some(steps), ..
            }) => ts.iter().position(|t| is_intact(t, steps)),
            Some(_) => ts.iter().position(|t| t.hidden),
        };
        for (i, t) in ts.into_iter().enumerate() {
            if Some(i) == keep {
                plan.ready.insert(key.clone(), t.id);
            } else {
                plan.to_delete.push(t.id);
            }
        }
    }
    let mut with_steps: Vec<(&String, u64, &Vec<String>)> = groups
        .iter()
        .filter_map(|(k, g)| Some((k, g.items, g.steps.as_ref()?)))
        .collect();
    with_steps.sort_by(|a, b| a.0.cmp(b.0));
    for (key, items, steps) in with_steps {
        let ready = plan.ready.contains_key(key);
        if copying_pays(items, steps.len(), ready) {
            if !ready {
                plan.to_create.push((key.clone(), steps.clone()));
            }
            plan.copy_keys.insert(key.clone());
        }
    }
    plan
}

/// Deletes and makes templates as planned, concurrently; returns key → template id for
/// the groups that copy. A template that cannot be made leaves its group on the
/// step-by-step path; a refused credential stops the export before any item is written.
#[allow(clippy::too_many_arguments)]
async fn apply_templates(
    ports: &ExportPorts,
    target: &ExportTarget,
    counters: &Counters,
    plan: TemplatePlan,
    groups: &HashMap<String, StepGroup>,
    opts: &ExportOptions,
    progress: &dyn Progress,
    item_word: &str,
    counts: &mut StepTemplateCounts,
) -> Result<HashMap<String, String>, PortError> {
    let TemplatePlan {
        mut ready,
        to_create,
        to_delete,
        copy_keys,
    } = plan;
    let deletes = to_delete.into_iter().map(|id| {
        counters.write();
        async move { ports.items.delete_step_template(&id).await }
    });
    let deleted: Vec<_> = stream::iter(deletes)
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    for r in deleted {
        match r {
            Ok(()) | Err(PortError::NotFound { .. }) => counts.deleted += 1,
            Err(e) if blocked_code_for(&e).is_some() => return Err(e),
            Err(e) => progress.note(&format!(
                "a step template could not be deleted ({e}); the next export tries again"
            )),
        }
    }
    let creates = to_create.into_iter().map(|(key, steps)| {
        for _ in 0..webriskops_domain::plan::steps::template_requests(steps.len()) {
            counters.write();
        }
        let new = NewStepTemplate {
            container_id: target.container_id.clone(),
            destination_id: target.destination_id.clone(),
            key: key.clone(),
            title: format!("WebRiskOps remediation steps ({} steps, template)", steps.len()),
            body: format!(
                "Remediation steps that WebRiskOps copies into each new {item} of the findings that share them. \
                 It keeps this template archived and unticked; an edited template is replaced on the next export, \
                 and it is deleted when no finding needs it.",
                item = item_word
            ),
            checklist_name: CHECKLIST_NAME.into(),
            steps,
        };
        async move { (key, ports.items.create_step_template(&new).await) }
    });
    let created: Vec<_> = stream::iter(creates)
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    for (key, r) in created {
        match r {
            Ok(t) => {
                counts.created += 1;
                ready.insert(key, t.id);
            }
            Err(e) if blocked_code_for(&e).is_some() => return Err(e),
            Err(e) => progress.note(&format!(
                "a step template could not be made ({e}); its {} new item(s) get their steps one by one",
                groups.get(&key).map_or(0, |g| g.items)
            )),
        }
    }
    ready.retain(|k, _| copy_keys.contains(k));
    Ok(ready)
}

fn record_invalid(summary: &mut ExportSummary, e: FindingError, opts: &ExportOptions) {
    summary.invalid_count += 1;
    if summary.invalid.len() < opts.max_listed_errors {
        summary.invalid.push(e);
    }
}

/// The counts of a summary, as kept in the run journal.
#[derive(Serialize)]
struct SummaryForJournal {
    created: u64,
    updated: u64,
    unchanged: u64,
    closed: u64,
    reopened: u64,
    skipped: u64,
    duplicates: usize,
    failed: u64,
    invalid: u64,
    requests: RequestCounts,
}

impl From<&ExportSummary> for SummaryForJournal {
    fn from(s: &ExportSummary) -> Self {
        Self {
            created: s.created,
            updated: s.updated,
            unchanged: s.unchanged,
            closed: s.closed,
            reopened: s.reopened,
            skipped: s.skipped,
            duplicates: s.duplicates.len(),
            failed: s.failed_count,
            invalid: s.invalid_count,
            requests: s.requests.clone(),
        }
    }
}
