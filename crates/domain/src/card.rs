//! The tracker-neutral card plan for one finding (`CardExport`), its dedupe marker,
//! its content fingerprint, and routing of fields a destination cannot express.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::finding::{Finding, Priority, Severity, Status};
use crate::ids::FindingId;
use crate::text::{
    tracker_len, truncate_url_encoded, truncate_visibly, url_encoded_len, CHECK_ITEM_URL_BUDGET,
    TRELLO_TEXT_LIMIT,
};

/// Opens the dedupe marker written into every card description: `[webriskops:finding:<id>]`.
/// Finding ids cannot contain `]`, so the marker always ends at the first `]`.
pub const MARKER_PREFIX: &str = "[webriskops:finding:";
/// The name of the checklist the exporter owns on each card.
pub const CHECKLIST_NAME: &str = "Remediation";
/// A line above the marker; text people add below the marker line is theirs and kept.
const OWNED_END: &str = "\n\n---\n";

/// The marker for a finding id.
pub fn marker(id: &FindingId) -> String {
    format!("{MARKER_PREFIX}{id}]")
}

/// Finds the first well-formed marker in a description.
pub fn extract_marker(body: &str) -> Option<FindingId> {
    let mut rest = body;
    while let Some(at) = rest.find(MARKER_PREFIX) {
        let after = &rest[at + MARKER_PREFIX.len()..];
        if let Some(end) = after.find(']') {
            if let Ok(id) = FindingId::new(&after[..end]) {
                return Some(id);
            }
        }
        rest = after;
    }
    None
}

/// Splits a description into the exporter's part (up to and including the marker)
/// and what people wrote after the marker line. Without a marker, all of it is theirs.
pub fn split_owned(body: &str) -> (&str, &str) {
    match body.find(MARKER_PREFIX) {
        None => ("", body),
        Some(at) => {
            let end = body[at..].find(']').map_or(body.len(), |e| at + e + 1);
            (&body[..end], &body[end..])
        }
    }
}

/// Where a card should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// In the destination list (or any list but the done list).
    Open,
    /// Moved to the done list.
    Done,
    /// Archived (closed) because no done list is configured.
    Archived,
}

impl TargetState {
    /// Open findings go to the list; closed ones to the done list, or are archived
    /// when the record names no done list.
    pub fn for_status(status: Status, has_done_list: bool) -> TargetState {
        match (status.is_closed(), has_done_list) {
            (false, _) => TargetState::Open,
            (true, true) => TargetState::Done,
            (true, false) => TargetState::Archived,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Open => "open",
            TargetState::Done => "done",
            TargetState::Archived => "archived",
        }
    }
}

/// What a label stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelKind {
    Severity,
    Priority,
    Component,
    Tag,
}

/// A label the card should carry, by name; the adapter finds or creates it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LabelIntent {
    pub kind: LabelKind,
    pub name: String,
    /// A Trello colour name, or `None` for a label not shown on the card front.
    pub color: Option<String>,
}

/// The tracker-neutral plan of one card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardExport {
    pub finding_id: FindingId,
    /// Card name, within the tracker's limit.
    pub title: String,
    /// The exporter's description, ending with the marker, within the tracker's limit.
    pub body: String,
    pub labels: Vec<LabelIntent>,
    /// Remediation steps, in order.
    pub checklist: Vec<String>,
    /// Tracker username or e-mail of who should fix it.
    pub assignee: Option<String>,
    pub due: Option<NaiveDate>,
    pub severity: Severity,
    pub priority: Priority,
    pub status: Status,
    pub target: TargetState,
    /// Hex SHA-256 over everything above: equal fingerprints mean nothing to write.
    pub fingerprint: String,
    /// The tracker's description limit the body was built for ([`CardOptions`]); a
    /// merged description stays within it. Not part of the fingerprint (the body is).
    #[serde(default = "trello_text_limit")]
    pub max_body_chars: usize,
}

fn trello_text_limit() -> usize {
    TRELLO_TEXT_LIMIT
}

fn severity_color(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "red",
        Severity::High => "orange",
        Severity::Medium => "yellow",
        Severity::Low => "blue",
        Severity::Info => "sky",
    }
}

fn priority_color(p: Priority) -> &'static str {
    match p {
        Priority::P1 => "purple",
        Priority::P2 => "pink",
        Priority::P3 => "lime",
        Priority::P4 => "green",
    }
}

/// How a card plan is built for a destination.
///
/// The text limits are the tracker's (`Capabilities::max_*_chars` in the ports), counted
/// as [`tracker_len`] counts; `Default` gives Trello's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardOptions {
    /// Closed findings move to a done destination (else they are archived).
    pub has_done_list: bool,
    /// The tracker has no checklists: the remediation steps travel in the body as a
    /// Markdown task list (`- [ ] step`) inside the exporter's part, covered by the
    /// fingerprint, and the card has no checklist.
    pub steps_in_body: bool,
    /// The longest title the tracker takes.
    pub max_title_chars: usize,
    /// The longest description the tracker takes.
    pub max_body_chars: usize,
    /// The longest checklist item the tracker takes. Checklist items are also kept
    /// within [`CHECK_ITEM_URL_BUDGET`] once percent-encoded, as they travel in URLs.
    pub max_step_chars: usize,
}

impl Default for CardOptions {
    fn default() -> Self {
        CardOptions {
            has_done_list: false,
            steps_in_body: false,
            max_title_chars: TRELLO_TEXT_LIMIT,
            max_body_chars: TRELLO_TEXT_LIMIT,
            max_step_chars: TRELLO_TEXT_LIMIT,
        }
    }
}

impl CardExport {
    /// Builds the card plan for a finding, steps as a checklist. Never fails: over-long
    /// text is cut visibly.
    pub fn from_finding(f: &Finding, has_done_list: bool) -> CardExport {
        Self::build(
            f,
            &CardOptions {
                has_done_list,
                ..CardOptions::default()
            },
        )
    }

    /// Builds the card plan and routes it to a destination in one go: fields the
    /// destination routes into the description ([`RouteTarget::Description`]) become lines
    /// of the exporter's part of the body, covered by the fingerprint. `current_members`
    /// are the members of the existing item, if there is one (see [`route_item`]).
    pub fn build_routed(
        f: &Finding,
        opts: &CardOptions,
        ctx: &RoutingContext,
        current_members: Option<&[String]>,
    ) -> (CardExport, Routing) {
        let card = Self::build(f, opts);
        let routing = route_item(&card, ctx, current_members);
        let lines: Vec<String> = routing
            .routed
            .iter()
            .filter_map(|r| match &r.target {
                RouteTarget::Description { text } => Some(description_line(text)),
                _ => None,
            })
            .collect();
        if lines.is_empty() {
            return (card, routing);
        }
        let card = Self::build_with(f, opts, &lines);
        (card, routing)
    }

    /// Builds the card plan for a finding and a destination. Never fails: over-long text
    /// is cut visibly.
    pub fn build(f: &Finding, opts: &CardOptions) -> CardExport {
        Self::build_with(f, opts, &[])
    }

    /// [`CardExport::build`] with `routed_lines` (Markdown lines) added to the metadata.
    fn build_with(f: &Finding, opts: &CardOptions, routed_lines: &[String]) -> CardExport {
        let has_done_list = opts.has_done_list;
        let title_notice = " …";
        let title =
            truncate_visibly(f.title.trim(), opts.max_title_chars, title_notice).into_owned();
        let title = if title.is_empty() {
            f.id.to_string()
        } else {
            title
        };
        let priority = f.effective_priority();
        let body = compose_body(f, priority, opts, routed_lines);

        let mut labels = vec![
            LabelIntent {
                kind: LabelKind::Severity,
                name: format!("severity: {}", f.severity.as_str()),
                color: Some(severity_color(f.severity).into()),
            },
            LabelIntent {
                kind: LabelKind::Priority,
                name: priority.as_str().to_uppercase(),
                color: Some(priority_color(priority).into()),
            },
        ];
        if let Some(c) = &f.component {
            labels.push(LabelIntent {
                kind: LabelKind::Component,
                name: format!("component: {c}"),
                color: None,
            });
        }
        for t in &f.tags {
            let intent = LabelIntent {
                kind: LabelKind::Tag,
                name: t.clone(),
                color: None,
            };
            if !labels
                .iter()
                .any(|l| l.name.eq_ignore_ascii_case(&intent.name))
            {
                labels.push(intent);
            }
        }

        let mut card = CardExport {
            finding_id: f.id.clone(),
            title,
            body,
            labels,
            checklist: if opts.steps_in_body {
                Vec::new()
            } else {
                checklist_items(&f.remediation_steps, opts.max_step_chars)
            },
            assignee: f.assignee.clone(),
            due: f.due,
            severity: f.severity,
            priority,
            status: f.status,
            target: TargetState::for_status(f.status, has_done_list),
            fingerprint: String::new(),
            max_body_chars: opts.max_body_chars,
        };
        card.fingerprint = card.compute_fingerprint();
        card
    }

    /// The marker carried in the body.
    pub fn marker(&self) -> String {
        marker(&self.finding_id)
    }

    /// The description to write when a card already has `existing` text: the exporter's
    /// part is replaced, what people wrote after the marker is kept (and cut first if
    /// the whole would exceed the limit).
    ///
    /// Remediation steps in the body (trackers without checklists) keep the ticks people
    /// gave them: `- [x] step` in the existing text stays ticked.
    pub fn merged_body(&self, existing: &str) -> String {
        let (ours, theirs) = split_owned(existing);
        let body = if self.checklist.is_empty() && self.body.contains("\n- [ ] ") {
            keep_ticks(&self.body, ours)
        } else {
            self.body.clone()
        };
        if theirs.is_empty() {
            return body;
        }
        let room = self.max_body_chars.saturating_sub(tracker_len(&body));
        let theirs = truncate_visibly(theirs, room, "");
        format!("{body}{theirs}")
    }

    fn compute_fingerprint(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |name: &str, value: &str| {
            h.update(name.as_bytes());
            h.update([0]);
            h.update((value.len() as u64).to_le_bytes());
            h.update(value.as_bytes());
        };
        field("v", "1");
        field("title", &self.title);
        field("body", &self.body);
        let mut names: Vec<&str> = self.labels.iter().map(|l| l.name.as_str()).collect();
        names.sort_unstable();
        for n in names {
            field("label", n);
        }
        for step in &self.checklist {
            field("step", step);
        }
        field("assignee", self.assignee.as_deref().unwrap_or(""));
        field("due", &self.due.map(|d| d.to_string()).unwrap_or_default());
        field("target", self.target.as_str());
        hex::encode(h.finalize())
    }
}

/// Finding text may quote a marker (a pasted card description, a link to another
/// finding's card). The exporter's part of a description carries exactly one marker, at
/// its end, or [`split_owned`] and [`extract_marker`] would stop at the quoted one. A
/// quoted marker gets a Markdown escape inside it: it renders the same, but no longer
/// matches [`MARKER_PREFIX`].
fn defuse_markers(s: &str) -> Cow<'_, str> {
    if s.contains(MARKER_PREFIX) {
        Cow::Owned(s.replace(MARKER_PREFIX, "[webriskops\\:finding:"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Checklist items as the tracker can take them: each step cut visibly to the URL budget
/// and to the tracker's limit.
fn checklist_items(steps: &[String], max_step_chars: usize) -> Vec<String> {
    steps
        .iter()
        .map(|s| {
            let s = truncate_url_encoded(s, CHECK_ITEM_URL_BUDGET, " …");
            truncate_visibly(&s, max_step_chars, " …").into_owned()
        })
        .collect()
}

/// Whether a step is shortened for the checklist.
fn step_is_shortened(s: &str, max_step_chars: usize) -> bool {
    url_encoded_len(s) > CHECK_ITEM_URL_BUDGET || tracker_len(s) > max_step_chars
}

/// When a step had to be shortened for the checklist, the full steps go into the
/// description, so nothing a finding says is lost.
fn full_steps_section(steps: &[String], max_step_chars: usize) -> Option<String> {
    let shortened = steps.iter().any(|s| step_is_shortened(s, max_step_chars));
    shortened.then(|| {
        let mut out =
            String::from("**Remediation steps** (in full; the checklist shortens long ones)");
        for (i, s) in steps.iter().enumerate() {
            out.push_str(&format!("\n{}. {}", i + 1, defuse_markers(s)));
        }
        out
    })
}

/// The steps as a Markdown task list, in full, for trackers without checklists.
fn task_list_section(steps: &[String]) -> Option<String> {
    (!steps.is_empty()).then(|| {
        let mut out = String::from("**Remediation steps**");
        for s in steps {
            let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
            out.push_str(&format!("\n- [ ] {}", defuse_markers(&one_line)));
        }
        out
    })
}

/// The tasks a person ticked in `existing` (`- [x] text`), ticked again in `body`: a
/// tick is the person's, and a rewrite of the exporter's part must not undo it.
fn keep_ticks(body: &str, existing: &str) -> String {
    let ticked: Vec<&str> = existing
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            l.strip_prefix("- [x] ")
                .or_else(|| l.strip_prefix("- [X] "))
                .or_else(|| l.strip_prefix("* [x] "))
        })
        .map(str::trim_end)
        .collect();
    if ticked.is_empty() {
        return body.to_owned();
    }
    body.lines()
        .map(|l| match l.strip_prefix("- [ ] ") {
            Some(task) if ticked.contains(&task.trim_end()) => format!("- [x] {task}"),
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A routed text (`Assign to: jdoe (…)`) as a line of the description's metadata
/// (`**Assign to:** jdoe (…)`), with any marker it quotes defused.
fn description_line(text: &str) -> String {
    match text.split_once(": ") {
        Some((head, rest)) => format!("**{head}:** {}", defuse_markers(rest)),
        None => defuse_markers(text).into_owned(),
    }
}

fn compose_body(f: &Finding, priority: Priority, opts: &CardOptions, routed: &[String]) -> String {
    let steps_in_body = opts.steps_in_body;
    let limit = opts.max_body_chars;
    let mut meta = format!(
        "**Severity:** {} · **Priority:** {} · **Status:** {}",
        f.severity.as_str(),
        priority.as_str().to_uppercase(),
        f.status.as_str()
    );
    let mut line = |label: &str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            meta.push_str(&format!("\n**{label}:** {}", defuse_markers(v)));
        }
    };
    line("Asset", f.asset.as_deref());
    line("Component", f.component.as_deref());
    line("Assignee", f.assignee.as_deref());
    line("Due", f.due.map(|d| d.to_string()).as_deref());
    for l in routed {
        meta.push('\n');
        meta.push_str(l);
    }
    if !f.references.is_empty() {
        meta.push_str("\n\n**References**");
        for r in &f.references {
            meta.push_str(&format!("\n- {}", defuse_markers(r)));
        }
    }
    let tail = format!("\n\n{meta}{OWNED_END}{}", marker(&f.id));
    let description = defuse_markers(f.description.as_deref().unwrap_or("").trim());
    let steps = if steps_in_body {
        task_list_section(&f.remediation_steps)
    } else {
        full_steps_section(&f.remediation_steps, opts.max_step_chars)
    };
    let description = match steps {
        Some(steps) if description.is_empty() => std::borrow::Cow::Owned(steps),
        Some(steps) => std::borrow::Cow::Owned(format!("{description}\n\n{steps}")),
        None => description,
    };
    let description = description.as_ref();
    // The metadata and the marker always survive; the free text gives way.
    let room = limit.saturating_sub(tracker_len(&tail));
    let omitted = tracker_len(description);
    let notice = format!(
        "\n\n… [description truncated: {omitted} characters in all; see WebRiskOps for the rest]"
    );
    let description = truncate_visibly(description, room, &notice);
    let body = format!("{description}{tail}");
    let body = body.trim_start();
    if tracker_len(body) <= limit {
        body.to_owned()
    } else {
        // Pathological metadata (e.g. a hundred 2 KB references): keep the marker.
        let m = marker(&f.id);
        let room = limit.saturating_sub(tracker_len(&m) + 8);
        let head = truncate_visibly(body, room, " …");
        format!("{head}{OWNED_END}{m}")
    }
}

/// What a destination can express, for routing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingContext {
    /// Existing labels by lowercase name → label id.
    pub labels: HashMap<String, String>,
    /// Labels may be created on the destination.
    pub can_create_labels: bool,
    /// The tracker has labels at all.
    pub supports_labels: bool,
    /// Board members by lowercase username, e-mail and full name → member id.
    pub members: HashMap<String, String>,
    /// The tracker has checklists.
    pub supports_checklists: bool,
    /// The tracker has a priority field of its own (Linear).
    pub native_priority: bool,
    /// The tracker keeps no portable notes (a live tracker without checklists, such as
    /// Linear): what would become a note, or a checklist item, is routed into the
    /// description ([`RouteTarget::Description`]) instead of being lost.
    pub notes_in_body: bool,
    /// The most assignees an item can have (`Capabilities::max_assignees`); `None` for
    /// no limit.
    pub max_assignees: Option<u32>,
    /// The tracker's word for the container (`board`, `team`), for routed texts; empty
    /// reads as `board`.
    pub container_word: &'static str,
}

/// Where one field of a finding went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum RouteTarget {
    /// An existing label.
    Label { name: String },
    /// A label created for it.
    NewLabel { name: String },
    /// A card member.
    Member { member_id: String },
    /// An item of the card's checklist.
    ChecklistItem { text: String },
    /// A note in the portable export.
    PortableNote { text: String },
    /// A line of the exporter's part of the description (`**Assign to:** …`), for
    /// trackers that keep no notes and have no checklists.
    Description { text: String },
    /// A field of the tracker's own (e.g. Linear priority).
    NativeField { field: String },
}

/// One routed field of a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutedField {
    /// `severity`, `priority`, `component`, `assignee` or `tag:<name>`.
    pub field: String,
    pub target: RouteTarget,
}

/// The outcome of routing one card to one destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    /// Ids of existing labels the card carries.
    pub label_ids: Vec<String>,
    /// Labels to create first (then carried).
    pub create_labels: Vec<LabelIntent>,
    /// The member to add, when the assignee is on the board.
    pub member_id: Option<String>,
    /// Checklist items added for fields that had nowhere else to go.
    pub extra_checklist: Vec<String>,
    /// Notes for the portable export.
    pub notes: Vec<String>,
    /// Where every routed field went, for the export summary.
    pub routed: Vec<RoutedField>,
}

impl Routing {
    /// Whether the priority goes to the tracker's native field (not a label).
    pub fn native_priority(&self) -> bool {
        self.routed.iter().any(|r| {
            r.field == "priority"
                && matches!(&r.target, RouteTarget::NativeField { field } if field == "priority")
        })
    }

    /// Routed fields as a map field → target, for summaries.
    pub fn as_map(&self) -> BTreeMap<String, RouteTarget> {
        self.routed
            .iter()
            .map(|r| (r.field.clone(), r.target.clone()))
            .collect()
    }
}

/// Decides where each label intent and the assignee go on a destination:
/// existing label → new label (when allowed) → checklist item → portable note;
/// assignee: member when on the board → checklist item → portable note. A tracker that
/// keeps no notes ([`RoutingContext::notes_in_body`]) takes the description instead of
/// notes.
pub fn route(card: &CardExport, ctx: &RoutingContext) -> Routing {
    route_item(card, ctx, None)
}

/// [`route`] for an existing item whose members are `current_members`: when the item
/// already has as many assignees as the tracker allows ([`RoutingContext::max_assignees`],
/// Linear: one) and ours is not among them, the person's choice is kept and ours is
/// routed like an assignee who is not a member (never written as a member).
pub fn route_item(
    card: &CardExport,
    ctx: &RoutingContext,
    current_members: Option<&[String]>,
) -> Routing {
    let mut r = Routing::default();
    // `text` is `Head: rest` for the description; `checklist_text` is the wording for
    // checklist items and notes (Trello's, unchanged).
    let fallback = |r: &mut Routing, field: String, checklist_text: String, text: String| {
        let target = if ctx.supports_checklists {
            r.extra_checklist.push(checklist_text.clone());
            RouteTarget::ChecklistItem {
                text: checklist_text,
            }
        } else if ctx.notes_in_body {
            RouteTarget::Description { text }
        } else {
            r.notes.push(checklist_text.clone());
            RouteTarget::PortableNote {
                text: checklist_text,
            }
        };
        r.routed.push(RoutedField { field, target });
    };
    let container = if ctx.container_word.is_empty() {
        "board"
    } else {
        ctx.container_word
    };
    for label in &card.labels {
        let field = match label.kind {
            LabelKind::Severity => "severity".to_owned(),
            LabelKind::Priority => "priority".to_owned(),
            LabelKind::Component => "component".to_owned(),
            LabelKind::Tag => format!("tag:{}", label.name),
        };
        if label.kind == LabelKind::Priority && ctx.native_priority {
            r.routed.push(RoutedField {
                field,
                target: RouteTarget::NativeField {
                    field: "priority".into(),
                },
            });
            continue;
        }
        let key = label.name.to_lowercase();
        if ctx.supports_labels {
            if let Some(id) = ctx.labels.get(&key) {
                if !r.label_ids.contains(id) {
                    r.label_ids.push(id.clone());
                }
                r.routed.push(RoutedField {
                    field,
                    target: RouteTarget::Label {
                        name: label.name.clone(),
                    },
                });
                continue;
            }
            if ctx.can_create_labels {
                r.create_labels.push(label.clone());
                r.routed.push(RoutedField {
                    field,
                    target: RouteTarget::NewLabel {
                        name: label.name.clone(),
                    },
                });
                continue;
            }
        }
        // Severity and tags are already stated in the body; only priority and
        // component need a place of their own when labels are out of reach.
        let text = format!("Label wanted: {}", label.name);
        match label.kind {
            LabelKind::Priority | LabelKind::Component => {
                fallback(&mut r, field, text.clone(), text)
            }
            LabelKind::Severity | LabelKind::Tag if ctx.notes_in_body => {
                r.routed.push(RoutedField {
                    field,
                    target: RouteTarget::Description { text },
                });
            }
            LabelKind::Severity | LabelKind::Tag => {
                r.notes.push(text.clone());
                r.routed.push(RoutedField {
                    field,
                    target: RouteTarget::PortableNote { text },
                });
            }
        }
    }
    if let Some(who) = &card.assignee {
        let key = who.trim().trim_start_matches('@').to_lowercase();
        let full = |id: &String| {
            current_members.is_some_and(|m| {
                !m.contains(id) && ctx.max_assignees.is_some_and(|max| m.len() >= max as usize)
            })
        };
        match ctx.members.get(&key) {
            Some(id) if full(id) => fallback(
                &mut r,
                "assignee".into(),
                format!("Assign to {who} (already assigned by a person, who is kept)"),
                format!("Assign to: {who} (already assigned by a person, who is kept)"),
            ),
            Some(id) => {
                r.member_id = Some(id.clone());
                r.routed.push(RoutedField {
                    field: "assignee".into(),
                    target: RouteTarget::Member {
                        member_id: id.clone(),
                    },
                });
            }
            None => fallback(
                &mut r,
                "assignee".into(),
                format!("Assign to {who} (not a member of the {container})"),
                format!("Assign to: {who} (not a member of the {container})"),
            ),
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Finding;

    fn finding() -> Finding {
        let mut f = Finding::minimal(
            FindingId::new("wro-1").unwrap(),
            "XSS in search",
            Severity::High,
        );
        f.component = Some("storefront".into());
        f.assignee = Some("jdoe".into());
        f.remediation_steps = vec!["Encode output".into(), "Add CSP".into()];
        f.tags = vec!["pci".into()];
        f
    }

    #[test]
    fn steps_in_the_body_are_a_task_list_in_the_exporters_part_and_keep_ticks() {
        let mut f = finding();
        f.remediation_steps
            .push("Multi\nline   step with [webriskops:finding:x]".into());
        let opts = CardOptions {
            has_done_list: true,
            steps_in_body: true,
            ..CardOptions::default()
        };
        let card = CardExport::build(&f, &opts);
        assert!(card.checklist.is_empty());
        let (ours, _) = split_owned(&card.body);
        assert!(
            ours.contains("\n- [ ] Encode output\n- [ ] Add CSP\n"),
            "{ours}"
        );
        assert!(
            ours.contains("- [ ] Multi line step with"),
            "one line per step: {ours}"
        );
        assert_eq!(extract_marker(&card.body).unwrap().as_str(), "wro-1");
        assert_ne!(
            card.fingerprint,
            CardExport::from_finding(&f, true).fingerprint,
            "where the steps go is part of the plan"
        );
        // A person ticked one step and wrote below the marker; a step named alike but
        // different stays unticked.
        let existing = format!(
            "{}\n\nnote",
            card.body.replace("- [ ] Add CSP", "- [x] Add CSP")
        );
        f.remediation_steps.insert(0, "Add CSP headers".into());
        let next = CardExport::build(&f, &opts);
        let merged = next.merged_body(&existing);
        assert!(merged.contains("- [x] Add CSP\n"), "{merged}");
        assert!(merged.contains("- [ ] Add CSP headers"), "{merged}");
        assert!(merged.contains("- [ ] Encode output"), "{merged}");
        assert!(merged.ends_with("\n\nnote"), "{merged}");
    }

    #[test]
    fn card_carries_marker_labels_and_target() {
        let card = CardExport::from_finding(&finding(), false);
        assert!(card.body.ends_with("[webriskops:finding:wro-1]"));
        assert_eq!(extract_marker(&card.body).unwrap().as_str(), "wro-1");
        let names: Vec<&str> = card.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            ["severity: high", "P2", "component: storefront", "pci"]
        );
        assert_eq!(card.target, TargetState::Open);
        let mut closed = finding();
        closed.status = Status::Resolved;
        assert_eq!(
            CardExport::from_finding(&closed, false).target,
            TargetState::Archived
        );
        assert_eq!(
            CardExport::from_finding(&closed, true).target,
            TargetState::Done
        );
    }

    #[test]
    fn huge_descriptions_are_cut_visibly_and_keep_the_marker() {
        let mut f = finding();
        f.description = Some("測".repeat(200_000));
        let card = CardExport::from_finding(&f, false);
        assert!(tracker_len(&card.body) <= TRELLO_TEXT_LIMIT);
        assert!(card
            .body
            .contains("[description truncated: 200000 characters"));
        assert!(card.body.ends_with(&card.marker()));
    }

    #[test]
    fn long_steps_are_shortened_for_the_checklist_and_kept_whole_in_the_body() {
        let mut f = finding();
        let long = "測".repeat(1000);
        f.remediation_steps = vec!["short step".into(), long.clone()];
        let card = CardExport::from_finding(&f, false);
        assert_eq!(card.checklist[0], "short step");
        assert!(url_encoded_len(&card.checklist[1]) <= CHECK_ITEM_URL_BUDGET);
        assert!(card.checklist[1].ends_with(" …"));
        assert!(
            card.body.contains(&format!("2. {long}")),
            "the full step is in the description"
        );
        assert!(card.body.ends_with(&card.marker()));
        // Steps that fit are not repeated in the description.
        let plain = CardExport::from_finding(&finding(), false);
        assert!(!plain.body.contains("**Remediation steps**"));
    }

    #[test]
    fn people_text_after_the_marker_survives_updates() {
        let card = CardExport::from_finding(&finding(), false);
        let existing = format!(
            "old text\n{}\n\nNote from ops: waiting on vendor",
            card.marker()
        );
        let merged = card.merged_body(&existing);
        assert!(merged.starts_with(&card.body));
        assert!(merged.ends_with("Note from ops: waiting on vendor"));
        assert!(!merged.contains("old text"));
    }

    #[test]
    fn fingerprint_changes_with_content_only() {
        let a = CardExport::from_finding(&finding(), false);
        let b = CardExport::from_finding(&finding(), false);
        assert_eq!(a.fingerprint, b.fingerprint);
        let mut f = finding();
        f.title.push('!');
        assert_ne!(
            CardExport::from_finding(&f, false).fingerprint,
            a.fingerprint
        );
    }

    /// Linear's limits and routing, as the service sets them for a tracker without
    /// checklists that keeps no notes and has room for one assignee.
    fn linear_like() -> (CardOptions, RoutingContext) {
        let opts = CardOptions {
            has_done_list: true,
            steps_in_body: true,
            max_title_chars: 255,
            max_body_chars: 2_000,
            max_step_chars: 2_000,
        };
        let mut ctx = RoutingContext {
            supports_labels: true,
            can_create_labels: true,
            native_priority: true,
            notes_in_body: true,
            max_assignees: Some(1),
            container_word: "team",
            ..Default::default()
        };
        ctx.members.insert("jdoe".into(), "U-jdoe".into());
        (opts, ctx)
    }

    #[test]
    fn text_limits_come_from_the_options_and_default_to_trellos() {
        let mut f = finding();
        f.title = "T".repeat(300);
        f.description = Some("d".repeat(5_000));
        let (opts, _) = linear_like();
        let card = CardExport::build(&f, &opts);
        assert_eq!(tracker_len(&card.title), 255);
        assert!(card.title.ends_with(" …"));
        assert!(
            tracker_len(&card.body) <= 2_000,
            "{}",
            tracker_len(&card.body)
        );
        assert!(
            card.body.contains("[description truncated: "),
            "{}",
            card.body
        );
        assert!(card.body.ends_with(&card.marker()));
        // What people wrote after the marker is cut to the same limit.
        let merged = card.merged_body(&format!("{}\n\n{}", card.body, "p".repeat(5_000)));
        assert_eq!(tracker_len(&merged), 2_000);
        assert!(merged.starts_with(&card.body));

        // Trello's limits are the default: the same card as before, fingerprint included.
        let trello = CardExport::build(&f, &CardOptions::default());
        assert_eq!(trello.title, f.title);
        assert_eq!(trello, CardExport::from_finding(&f, false));
        assert_eq!(trello.max_body_chars, TRELLO_TEXT_LIMIT);

        // A checklist item longer than the tracker's step limit is cut to it, and the
        // full steps go into the description.
        f.remediation_steps = vec!["s".repeat(100)];
        let short_steps = CardExport::build(
            &f,
            &CardOptions {
                max_step_chars: 40,
                ..CardOptions::default()
            },
        );
        assert_eq!(tracker_len(&short_steps.checklist[0]), 40);
        assert!(short_steps
            .body
            .contains(&format!("1. {}", "s".repeat(100))));
    }

    #[test]
    fn a_non_member_assignee_goes_into_the_description_where_notes_are_not_kept() {
        let mut f = finding();
        f.assignee = Some("ghost@example.com".into());
        let (opts, ctx) = linear_like();
        let (card, r) = CardExport::build_routed(&f, &opts, &ctx, None);
        assert!(
            r.notes.is_empty(),
            "nothing is left as a note: {:?}",
            r.notes
        );
        assert!(r.extra_checklist.is_empty());
        assert_eq!(r.member_id, None);
        assert_eq!(
            r.as_map()["assignee"],
            RouteTarget::Description {
                text: "Assign to: ghost@example.com (not a member of the team)".into()
            }
        );
        let (ours, _) = split_owned(&card.body);
        assert!(
            ours.contains("\n**Assign to:** ghost@example.com (not a member of the team)\n"),
            "{ours}"
        );
        assert_ne!(
            card.fingerprint,
            CardExport::build(&f, &opts).fingerprint,
            "the routed line is covered by the fingerprint"
        );
        // A marker quoted in the assignee cannot forge the card's identity.
        f.assignee = Some("[webriskops:finding:other]".into());
        let (card, _) = CardExport::build_routed(&f, &opts, &ctx, None);
        assert_eq!(extract_marker(&card.body).unwrap().as_str(), "wro-1");

        // Labels out of reach go into the description too, tags included.
        let no_labels = RoutingContext {
            supports_labels: false,
            ..ctx.clone()
        };
        let (card, r) = CardExport::build_routed(&finding(), &opts, &no_labels, None);
        assert!(r.notes.is_empty(), "{:?}", r.notes);
        assert!(card
            .body
            .contains("**Label wanted:** component: storefront"));
        assert!(card.body.contains("**Label wanted:** pci"));

        // Without `notes_in_body` (the portable bundle, Trello) nothing changes.
        let plain = RoutingContext {
            notes_in_body: false,
            ..ctx
        };
        f.assignee = Some("ghost@example.com".into());
        let (card, r) = CardExport::build_routed(&f, &opts, &plain, None);
        assert_eq!(card, CardExport::build(&f, &opts));
        assert_eq!(
            r.notes,
            ["Assign to ghost@example.com (not a member of the team)"]
        );
    }

    #[test]
    fn an_item_with_as_many_assignees_as_allowed_keeps_the_persons_choice() {
        let f = finding();
        let (opts, ctx) = linear_like();
        // A new item, or one whose assignee is ours: ours is written.
        for current in [None, Some(&["U-jdoe".to_string()][..]), Some(&[][..])] {
            let (_, r) = CardExport::build_routed(&f, &opts, &ctx, current);
            assert_eq!(r.member_id.as_deref(), Some("U-jdoe"), "{current:?}");
        }
        // A person assigned someone else: theirs is kept, ours is routed, not written.
        let person = ["U-asmith".to_string()];
        let (card, r) = CardExport::build_routed(&f, &opts, &ctx, Some(&person));
        assert_eq!(r.member_id, None);
        assert_eq!(
            r.as_map()["assignee"],
            RouteTarget::Description {
                text: "Assign to: jdoe (already assigned by a person, who is kept)".into()
            }
        );
        assert!(card
            .body
            .contains("**Assign to:** jdoe (already assigned by a person, who is kept)"));
        // Trello takes many members: ours joins the person's.
        let many = RoutingContext {
            max_assignees: Some(u32::MAX),
            ..ctx
        };
        let (_, r) = CardExport::build_routed(&f, &opts, &many, Some(&person));
        assert_eq!(r.member_id.as_deref(), Some("U-jdoe"));
    }

    #[test]
    fn routing_prefers_labels_then_checklist_then_notes() {
        let card = CardExport::from_finding(&finding(), false);
        let mut ctx = RoutingContext {
            supports_labels: true,
            supports_checklists: true,
            ..Default::default()
        };
        ctx.labels.insert("severity: high".into(), "L1".into());
        ctx.members.insert("jdoe".into(), "M1".into());
        let r = route(&card, &ctx);
        assert_eq!(r.label_ids, ["L1"]);
        assert_eq!(r.member_id.as_deref(), Some("M1"));
        assert_eq!(
            r.extra_checklist,
            ["Label wanted: P2", "Label wanted: component: storefront"]
        );
        ctx.can_create_labels = true;
        ctx.members.clear();
        let r = route(&card, &ctx);
        assert_eq!(r.create_labels.len(), 3);
        assert_eq!(
            r.extra_checklist,
            ["Assign to jdoe (not a member of the board)"]
        );
        let portable = RoutingContext::default();
        let r = route(&card, &portable);
        assert!(r.extra_checklist.is_empty());
        assert_eq!(r.notes.len(), 5);
    }
}
