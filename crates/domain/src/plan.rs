//! Change plans: for each finding, what to do with its card, decided from the card
//! plan, the ledger and what the tracker shows; duplicate resolution; status events.
//!
//! Ownership rule: the exporter owns the title, its part of the description, its
//! labels, its checklist items, the assignee it adds and the due date. Labels, members,
//! comments, text below the marker and checklist ticks added by people stay. A card
//! that a person closed (moved to done, canceled or archived) while its finding is still
//! open is a status signal: export does not reopen it, sync reports it. Export reopens a
//! card only when WebRiskOps itself had closed it and the finding is open again.
//!
//! Change detection (ADR 0005 §3): whether a card needs a write is decided by the
//! fingerprint the ledger stored of what was last written, never by comparing text read
//! from the tracker (a tracker may re-render it). Only without a usable fingerprint (a
//! lost or stale ledger, an adopted card) is the tracker's card compared field by field,
//! so a lost database still plans no write for a card that is as the exporter left it.

pub mod steps;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::card::{split_owned, CardExport, Routing, TargetState};
use crate::ids::{FindingId, ItemId};
use crate::state::StateCategory;

/// The state of a card as the tracker shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackerStatus {
    Open,
    Done,
    /// Closed without doing the work (a state of category `Canceled`).
    Canceled,
    Archived,
    Deleted,
}

impl TrackerStatus {
    /// `open`, `done`, `canceled`, `archived` or `deleted` (findings-v1 status events).
    pub fn as_str(self) -> &'static str {
        match self {
            TrackerStatus::Open => "open",
            TrackerStatus::Done => "done",
            TrackerStatus::Canceled => "canceled",
            TrackerStatus::Archived => "archived",
            TrackerStatus::Deleted => "deleted",
        }
    }

    /// The status of an item the tracker shows: archived first (whatever its state),
    /// then by the category of its state; open and started both read `Open`.
    pub fn of_item(category: StateCategory, archived: bool) -> TrackerStatus {
        if archived {
            return TrackerStatus::Archived;
        }
        match category {
            StateCategory::Open | StateCategory::Started => TrackerStatus::Open,
            StateCategory::Done => TrackerStatus::Done,
            StateCategory::Canceled => TrackerStatus::Canceled,
        }
    }

    /// What a card in this state satisfies.
    pub fn is_closed(self) -> bool {
        !matches!(self, TrackerStatus::Open)
    }
}

impl From<TargetState> for TrackerStatus {
    fn from(t: TargetState) -> Self {
        match t {
            TargetState::Open => TrackerStatus::Open,
            TargetState::Done => TrackerStatus::Done,
            TargetState::Archived => TrackerStatus::Archived,
        }
    }
}

/// What the local ledger remembers of one exported finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub finding_id: FindingId,
    pub item_id: ItemId,
    pub item_url: Option<String>,
    /// Fingerprint of the card plan last written.
    pub fingerprint: String,
    /// Where the exporter last put the card.
    pub target: TargetState,
    /// The tracker status last observed (and reported by sync).
    pub observed: TrackerStatus,
    pub updated_at: DateTime<Utc>,
}

/// A card as read from the tracker, in tracker-neutral terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedItem {
    pub item_id: ItemId,
    pub finding_id: FindingId,
    pub url: Option<String>,
    /// Creation time (seconds since the epoch); the oldest card of a finding wins.
    pub created_secs: u64,
    pub status: TrackerStatus,
    pub title: String,
    pub body: String,
    pub label_ids: Vec<String>,
    pub member_ids: Vec<String>,
    pub due: Option<NaiveDate>,
    /// Names of the items of the exporter's checklist; `None` when not read.
    pub checklist_items: Option<Vec<String>>,
    /// The native priority rank (1 highest … 4), for trackers that have one.
    #[serde(default)]
    pub priority: Option<u8>,
}

/// A field the exporter has to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangedField {
    Title,
    Body,
    Labels,
    Members,
    Due,
    Checklist,
    /// The tracker's native priority.
    Priority,
}

/// What to do with one finding's card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PlanAction {
    /// No card exists: create one.
    Create,
    /// Write these fields; the card stays where it is.
    Update { fields: Vec<ChangedField> },
    /// Nothing to write.
    Unchanged,
    /// The finding closed: move the card to the done list or archive it (and write these fields).
    Close { fields: Vec<ChangedField> },
    /// The exporter had closed the card and the finding is open again.
    Reopen { fields: Vec<ChangedField> },
    /// No write, for the reason given.
    Skip { reason: String },
}

impl PlanAction {
    /// Short name used in summaries: create, update, unchanged, close, reopen, skip.
    pub fn name(&self) -> &'static str {
        match self {
            PlanAction::Create => "create",
            PlanAction::Update { .. } => "update",
            PlanAction::Unchanged => "unchanged",
            PlanAction::Close { .. } => "close",
            PlanAction::Reopen { .. } => "reopen",
            PlanAction::Skip { .. } => "skip",
        }
    }

    /// Whether applying the action writes to the tracker.
    pub fn writes(&self) -> bool {
        !matches!(self, PlanAction::Unchanged | PlanAction::Skip { .. })
    }
}

/// The fields where the tracker's card differs from what the exporter owns.
pub fn changed_fields(
    card: &CardExport,
    routing: &Routing,
    item: &ObservedItem,
) -> Vec<ChangedField> {
    let mut fields = Vec::new();
    if item.title != card.title {
        fields.push(ChangedField::Title);
    }
    if split_owned(&item.body).0 != card.body {
        fields.push(ChangedField::Body);
    }
    if !routing.create_labels.is_empty()
        || routing
            .label_ids
            .iter()
            .any(|l| !item.label_ids.contains(l))
    {
        fields.push(ChangedField::Labels);
    }
    if routing
        .member_id
        .as_ref()
        .is_some_and(|m| !item.member_ids.contains(m))
    {
        fields.push(ChangedField::Members);
    }
    if item.due != card.due {
        fields.push(ChangedField::Due);
    }
    if routing.native_priority() && item.priority != Some(card.priority.rank()) {
        fields.push(ChangedField::Priority);
    }
    if let Some(items) = &item.checklist_items {
        let wanted = card.checklist.iter().chain(routing.extra_checklist.iter());
        if wanted
            .into_iter()
            .any(|step| !items.iter().any(|i| i == step))
        {
            fields.push(ChangedField::Checklist);
        }
    }
    fields
}

/// Whether the ledger's fingerprint says the card is as the exporter last wrote it: the
/// entry is about this very card and holds the card plan's fingerprint.
pub fn written_as_planned(card: &CardExport, ledger: Option<&LedgerEntry>, item: &ItemId) -> bool {
    ledger.is_some_and(|l| {
        &l.item_id == item && !l.fingerprint.is_empty() && l.fingerprint == card.fingerprint
    })
}

/// The fields to write: none when the ledger's fingerprint says the card was last written
/// from this very plan (what the tracker shows now is not compared: people's edits and a
/// tracker's re-rendering are not fought); otherwise, without a usable fingerprint or
/// after the finding changed, the fields where the tracker's card differs.
pub fn fields_to_write(
    card: &CardExport,
    routing: &Routing,
    ledger: Option<&LedgerEntry>,
    item: &ObservedItem,
) -> Vec<ChangedField> {
    if written_as_planned(card, ledger, &item.item_id) {
        Vec::new()
    } else {
        changed_fields(card, routing, item)
    }
}

/// Decides the action for one finding.
///
/// `observed` is the card the tracker reads as the finding's (after duplicate
/// resolution), `ledger` what was recorded locally. With no ledger but an observed card
/// (a lost or stale ledger, or a create whose answer never arrived) the card is adopted,
/// never created again. Which fields are written follows [`fields_to_write`].
pub fn decide(
    card: &CardExport,
    routing: &Routing,
    ledger: Option<&LedgerEntry>,
    observed: Option<&ObservedItem>,
) -> PlanAction {
    let Some(item) = observed else {
        return match (ledger, card.target) {
            (Some(_), _) => PlanAction::Skip {
                reason: "the card was deleted or moved off the board in the tracker; not recreated"
                    .into(),
            },
            (None, TargetState::Open) => PlanAction::Create,
            (None, _) => PlanAction::Skip {
                reason: "closed finding without a card; nothing to create".into(),
            },
        };
    };
    let fields = fields_to_write(card, routing, ledger, item);
    let update_or_unchanged = |fields: Vec<ChangedField>| {
        if fields.is_empty() {
            PlanAction::Unchanged
        } else {
            PlanAction::Update { fields }
        }
    };
    match (item.status.is_closed(), card.target) {
        (false, TargetState::Open) => update_or_unchanged(fields),
        (false, _) => PlanAction::Close { fields },
        (true, TargetState::Open) => {
            let we_closed_it = ledger.is_some_and(|l| l.target != TargetState::Open);
            if we_closed_it {
                PlanAction::Reopen { fields }
            } else {
                update_or_unchanged(fields)
            }
        }
        (true, _) => update_or_unchanged(fields),
    }
}

/// The card kept for a finding and the extra ones found with the same marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateResolution {
    pub keep: ObservedItem,
    /// Reported, never deleted.
    pub duplicates: Vec<ObservedItem>,
}

/// Several cards carry one finding's marker: keep the oldest (ties broken by id),
/// report the rest. Returns `None` for an empty input.
pub fn resolve_duplicates(mut items: Vec<ObservedItem>) -> Option<DuplicateResolution> {
    items.sort_by(|a, b| {
        a.created_secs
            .cmp(&b.created_secs)
            .then_with(|| a.item_id.cmp(&b.item_id))
    });
    let mut it = items.into_iter();
    let keep = it.next()?;
    Some(DuplicateResolution {
        keep,
        duplicates: it.collect(),
    })
}

/// One status change observed by sync (contract `findings-v1`, "Status events").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEvent {
    pub finding_id: FindingId,
    pub tracker: String,
    pub item_id: ItemId,
    pub item_url: Option<String>,
    pub tracker_status: TrackerStatus,
    pub previous: TrackerStatus,
    pub observed_at: DateTime<Utc>,
}

impl StatusEvent {
    /// The event for a newly observed status, or `None` when nothing changed since
    /// the ledger last recorded it (each change is emitted once).
    pub fn on_change(
        entry: &LedgerEntry,
        now_status: TrackerStatus,
        tracker: &str,
        now: DateTime<Utc>,
    ) -> Option<StatusEvent> {
        (entry.observed != now_status).then(|| StatusEvent {
            finding_id: entry.finding_id.clone(),
            tracker: tracker.to_owned(),
            item_id: entry.item_id.clone(),
            item_url: entry.item_url.clone(),
            tracker_status: now_status,
            previous: entry.observed,
            observed_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::route;
    use crate::card::RoutingContext;
    use crate::finding::{Finding, Severity, Status};

    fn card(status: Status) -> (CardExport, Routing) {
        let mut f = Finding::minimal(FindingId::new("wro-9").unwrap(), "Title", Severity::Low);
        f.status = status;
        let c = CardExport::from_finding(&f, true);
        let r = route(&c, &RoutingContext::default());
        (c, r)
    }

    fn observed(c: &CardExport, status: TrackerStatus, created: u64, id: &str) -> ObservedItem {
        ObservedItem {
            item_id: ItemId::new(id).unwrap(),
            finding_id: c.finding_id.clone(),
            url: None,
            created_secs: created,
            status,
            title: c.title.clone(),
            body: c.body.clone(),
            label_ids: vec![],
            member_ids: vec![],
            due: c.due,
            checklist_items: None,
            priority: None,
        }
    }

    fn ledger(c: &CardExport, target: TargetState) -> LedgerEntry {
        LedgerEntry {
            finding_id: c.finding_id.clone(),
            item_id: ItemId::new("c1").unwrap(),
            item_url: None,
            fingerprint: c.fingerprint.clone(),
            target,
            observed: target.into(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn new_open_finding_is_created_and_closed_one_skipped() {
        let (c, r) = card(Status::Open);
        assert_eq!(decide(&c, &r, None, None), PlanAction::Create);
        let (c, r) = card(Status::Resolved);
        assert!(matches!(
            decide(&c, &r, None, None),
            PlanAction::Skip { .. }
        ));
    }

    #[test]
    fn an_existing_card_is_adopted_even_without_a_ledger() {
        let (c, r) = card(Status::Open);
        let o = observed(&c, TrackerStatus::Open, 1, "c1");
        assert_eq!(decide(&c, &r, None, Some(&o)), PlanAction::Unchanged);
        let mut edited = o.clone();
        edited.title = "changed by a person".into();
        edited.body = format!("{}\nnotes of a person", c.body);
        assert_eq!(
            decide(&c, &r, None, Some(&edited)),
            PlanAction::Update {
                fields: vec![ChangedField::Title]
            }
        );
    }

    #[test]
    fn person_closed_card_is_not_reopened_but_our_close_is() {
        let (c, r) = card(Status::Open);
        let o = observed(&c, TrackerStatus::Done, 1, "c1");
        assert_eq!(
            decide(&c, &r, Some(&ledger(&c, TargetState::Open)), Some(&o)),
            PlanAction::Unchanged
        );
        assert_eq!(
            decide(&c, &r, Some(&ledger(&c, TargetState::Done)), Some(&o)),
            PlanAction::Reopen { fields: vec![] }
        );
        let (closed, r2) = card(Status::Resolved);
        let open = observed(&closed, TrackerStatus::Open, 1, "c1");
        assert_eq!(
            decide(&closed, &r2, None, Some(&open)),
            PlanAction::Close { fields: vec![] }
        );
    }

    #[test]
    fn the_stored_fingerprint_decides_whether_to_write_not_the_trackers_text() {
        let (c, r) = card(Status::Open);
        let mut rerendered = observed(&c, TrackerStatus::Open, 1, "c1");
        // A tracker that re-renders Markdown, and a person who renamed the card.
        rerendered.body = c.body.replace("**", "__");
        rerendered.title = "renamed by a person".into();
        let entry = ledger(&c, TargetState::Open);
        assert_eq!(
            decide(&c, &r, Some(&entry), Some(&rerendered)),
            PlanAction::Unchanged,
            "written from this very plan: nothing to write"
        );
        // The finding changed since: the ledger's fingerprint no longer matches.
        let mut older = entry.clone();
        older.fingerprint = "fingerprint of an older plan".into();
        assert_eq!(
            decide(&c, &r, Some(&older), Some(&rerendered)),
            PlanAction::Update {
                fields: vec![ChangedField::Title, ChangedField::Body]
            }
        );
        // An entry about another card (a new duplicate winner) or without a fingerprint
        // (adopted by sync) is no proof: the card is compared.
        let mut other = entry.clone();
        other.item_id = ItemId::new("c2").unwrap();
        assert!(decide(&c, &r, Some(&other), Some(&rerendered)).writes());
        let mut adopted = entry;
        adopted.fingerprint = String::new();
        assert!(decide(&c, &r, Some(&adopted), Some(&rerendered)).writes());
    }

    #[test]
    fn a_canceled_item_is_a_close_by_a_person() {
        use crate::state::StateCategory;
        assert_eq!(
            TrackerStatus::of_item(StateCategory::Canceled, false),
            TrackerStatus::Canceled
        );
        assert_eq!(
            TrackerStatus::of_item(StateCategory::Started, false),
            TrackerStatus::Open
        );
        assert_eq!(
            TrackerStatus::of_item(StateCategory::Done, true),
            TrackerStatus::Archived
        );
        let (c, r) = card(Status::Open);
        let canceled = observed(&c, TrackerStatus::Canceled, 1, "c1");
        assert_eq!(
            decide(
                &c,
                &r,
                Some(&ledger(&c, TargetState::Open)),
                Some(&canceled)
            ),
            PlanAction::Unchanged,
            "a person's cancel is not fought"
        );
        assert_eq!(
            decide(&c, &r, None, Some(&canceled)),
            PlanAction::Unchanged,
            "without a ledger a closed card is a person's close"
        );
        assert_eq!(
            decide(
                &c,
                &r,
                Some(&ledger(&c, TargetState::Done)),
                Some(&canceled)
            ),
            PlanAction::Reopen { fields: vec![] }
        );
        let entry = ledger(&c, TargetState::Open);
        let ev =
            StatusEvent::on_change(&entry, TrackerStatus::Canceled, "linear", Utc::now()).unwrap();
        assert_eq!(ev.tracker_status.as_str(), "canceled");
    }

    #[test]
    fn deleted_card_with_ledger_is_not_recreated() {
        let (c, r) = card(Status::Open);
        assert!(matches!(
            decide(&c, &r, Some(&ledger(&c, TargetState::Open)), None),
            PlanAction::Skip { .. }
        ));
    }

    #[test]
    fn duplicates_keep_the_oldest() {
        let (c, _) = card(Status::Open);
        let res = resolve_duplicates(vec![
            observed(&c, TrackerStatus::Open, 30, "c3"),
            observed(&c, TrackerStatus::Open, 10, "c1"),
            observed(&c, TrackerStatus::Open, 20, "c2"),
        ])
        .unwrap();
        assert_eq!(res.keep.item_id.as_str(), "c1");
        assert_eq!(res.duplicates.len(), 2);
    }

    #[test]
    fn status_events_fire_once_per_change() {
        let (c, _) = card(Status::Open);
        let mut entry = ledger(&c, TargetState::Open);
        let ev = StatusEvent::on_change(&entry, TrackerStatus::Done, "trello", Utc::now()).unwrap();
        assert_eq!(ev.previous, TrackerStatus::Open);
        entry.observed = TrackerStatus::Done;
        assert!(
            StatusEvent::on_change(&entry, TrackerStatus::Done, "trello", Utc::now()).is_none()
        );
    }
}
