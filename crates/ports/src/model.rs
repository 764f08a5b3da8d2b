//! Plain data exchanged through the tracker ports.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use webriskops_domain::{FindingId, Grant, ItemId, Permission, StateCategory, TargetState};

/// What a tracker adapter can do. Optional behaviour is gated on these flags, never
/// discovered by error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// The tracker name used in status events (`trello`, `linear`, `portable`, `fake`).
    pub tracker: &'static str,
    /// Items can be read back (`list_items`). False for write-only trackers.
    pub list_items: bool,
    pub labels: bool,
    pub create_labels: bool,
    pub checklists: bool,
    pub members: bool,
    /// A priority field of its own (Linear); otherwise priority becomes a label.
    pub native_priority: bool,
    /// Items can be archived and unarchived.
    pub archive: bool,
    /// Items can be moved between destinations.
    pub move_items: bool,
    /// Tokens can be revoked through the API.
    pub revoke: bool,
    /// The largest page `list_items` returns.
    pub max_page_size: u32,
    /// The longest item title the tracker takes, counted as the domain's `tracker_len`
    /// counts (UTF-16 code units). Longer titles are cut visibly before they are sent.
    pub max_title_chars: usize,
    /// The longest item description (body), counted the same way. The exporter's part
    /// and the text people wrote after the marker share it.
    pub max_body_chars: usize,
    /// The longest checklist item, counted the same way (unused by trackers without
    /// checklists, whose steps travel in the body).
    pub max_step_chars: usize,
    /// The most assignees (members) an item can have: one for Linear, effectively
    /// unlimited (`u32::MAX`) for Trello. When an item already has this many and none is
    /// ours, the person's choice is kept and ours is routed instead.
    pub max_assignees: u32,
    /// A new item can copy its step list from a template the tracker holds
    /// ([`crate::WorkItems::create_step_template`], [`crate::WorkItems::create_item_copying`]):
    /// findings that share their steps then cost one create each, whatever the number of
    /// steps (ADR 0006). Trackers without it take the steps one by one.
    pub copies_step_lists: bool,
}

/// The account the credentials belong to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub full_name: Option<String>,
}

/// What the tracker says about the token in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub member_id: Option<String>,
    /// The application name the token was issued to.
    pub app_name: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// `None` for tokens that never expire.
    pub expires_at: Option<DateTime<Utc>>,
    /// Per-object permissions, for trackers that have them (Trello); empty otherwise.
    /// The tracker's own readiness rules read them; everything neutral reads `grant`.
    pub permissions: Vec<Permission>,
    /// What the credential may do, in tracker-neutral terms (ADR 0005 §7).
    pub grant: Grant,
}

/// A board (Trello) or team (Linear).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub closed: bool,
    /// The workspace (Trello organization) it belongs to, if any.
    pub organization_id: Option<String>,
    pub url: Option<String>,
}

/// A list (Trello) or workflow state (Linear).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub id: String,
    /// The tracker's own name of the state (a list's name, a workflow state's name).
    pub name: String,
    pub closed: bool,
    pub container_id: String,
    /// The category of the state, as far as the tracker itself says: a tracker whose
    /// states are typed (Linear) gives it; a Trello list is `Open` here, because which
    /// list is the done list is the provider record's choice, which reads are told
    /// through [`ListItemsOptions::done_destination`] and [`ReadOptions`].
    pub category: StateCategory,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub id: String,
    /// Trello labels may be unnamed (empty).
    pub name: String,
    pub color: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub username: String,
    pub full_name: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckItem {
    pub id: String,
    pub name: String,
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checklist {
    pub id: String,
    pub name: String,
    pub items: Vec<CheckItem>,
}

/// A work item as the tracker shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteItem {
    pub id: ItemId,
    /// The finding the item belongs to, read by the adapter from whatever identity the
    /// tracker offers (Trello: the marker in the description); `None` for items that
    /// are nobody's finding. Callers never parse the body for it.
    pub finding_id: Option<FindingId>,
    pub url: Option<String>,
    pub container_id: String,
    pub destination_id: String,
    /// The category of the item's state (ADR 0005 §1). Reads (`list_items`, `get_item`,
    /// `find_by_finding`) MUST give it, honouring the done destination the caller
    /// passes; on the answers of writes it is the adapter's best knowledge without it.
    pub category: StateCategory,
    /// The tracker's own name of the item's state (Trello: the list's name when the
    /// adapter has read the board's lists, else the list's id).
    pub state_name: String,
    pub title: String,
    pub body: String,
    /// Archived (Trello `closed`).
    pub archived: bool,
    pub label_ids: Vec<String>,
    pub member_ids: Vec<String>,
    pub due: Option<NaiveDate>,
    /// Creation time, seconds since the epoch (Trello: from the id).
    pub created_secs: u64,
    pub last_activity: Option<DateTime<Utc>>,
    /// Present when asked for with `ListItemsOptions::with_checklists`.
    pub checklists: Option<Vec<Checklist>>,
    /// The item's native priority as a rank (1 highest … 4 lowest, the domain's p1–p4);
    /// `None` when the tracker has none (`capabilities().native_priority` false) or the
    /// item is unprioritised.
    pub priority: Option<u8>,
}

/// One page request of `list_items`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListItemsOptions {
    pub container_id: String,
    /// The cursor from the previous page; `None` for the first (newest) page.
    pub cursor: Option<String>,
    /// At most `Capabilities::max_page_size`; 0 means the largest.
    pub page_size: u32,
    /// Include archived items.
    pub include_archived: bool,
    /// Include checklists and their items.
    pub with_checklists: bool,
    /// The destination whose items read as `Done`, for trackers whose destinations carry
    /// no category of their own (Trello: the record's done list; when `None`, an
    /// archived card reads as `Done`). Trackers with typed states ignore it.
    pub done_destination: Option<String>,
}

impl ListItemsOptions {
    /// The same reading choices, for one item (`get_item`, `find_by_finding`).
    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            with_checklists: self.with_checklists,
            done_destination: self.done_destination.clone(),
        }
    }
}

/// How to read single items (`get_item`, `find_by_finding`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadOptions {
    /// Include checklists and their items.
    pub with_checklists: bool,
    /// See [`ListItemsOptions::done_destination`].
    pub done_destination: Option<String>,
}

/// One page of items; `next_cursor` is `None` on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemPage {
    /// The items of findings and of people; never a step template.
    pub items: Vec<RemoteItem>,
    pub next_cursor: Option<String>,
    /// The exporter's step templates among this page's items, read by the adapter from
    /// the template's own marker (`capabilities().copies_step_lists`; empty otherwise).
    pub step_templates: Vec<StepTemplate>,
}

/// A step list the exporter keeps in the tracker for new items to copy (ADR 0006): an
/// item of its own that is never a finding's and is kept out of people's sight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTemplate {
    /// The id of the item that holds it (what [`crate::WorkItems::create_item_copying`]
    /// copies and [`crate::WorkItems::delete_step_template`] deletes).
    pub id: String,
    /// The step group key it was made for (`webriskops_domain::step_group_key`).
    pub key: String,
    /// The destination it is in (Trello: the card's list). An export owns only the
    /// templates in its own destination: a container may serve several.
    pub destination_id: String,
    /// Out of people's sight (Trello: archived).
    pub hidden: bool,
    /// Every step list it holds, as the tracker shows it now, ticks included.
    pub checklists: Vec<Checklist>,
}

/// A step template to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewStepTemplate {
    pub container_id: String,
    /// Where the item is made before it is hidden.
    pub destination_id: String,
    /// The step group key; the adapter writes it into the template's own marker.
    pub key: String,
    pub title: String,
    /// Text saying what the template is, for a person who finds it.
    pub body: String,
    /// The name of its one step list (`webriskops_domain::CHECKLIST_NAME`).
    pub checklist_name: String,
    pub steps: Vec<String>,
}

/// Where a new item goes in its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    Top,
    #[default]
    Bottom,
}

/// A new item. The body MUST already carry the finding's marker: identity travels in
/// the create request itself, so a create whose answer is lost can be found again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewItem {
    pub finding_id: FindingId,
    pub destination_id: String,
    pub title: String,
    pub body: String,
    pub label_ids: Vec<String>,
    pub member_ids: Vec<String>,
    pub due: Option<NaiveDate>,
    pub placement: Placement,
    /// For trackers without label ids (portable): label names.
    pub label_names: Vec<String>,
    /// For trackers without members (portable): who should fix it.
    pub assignee: Option<String>,
    /// Routing notes for fields the tracker cannot hold.
    pub notes: Vec<String>,
    /// The state the item should end in (write-only trackers record it).
    pub target: TargetState,
    /// Native priority, 1 (urgent) to 4, for trackers that have one.
    pub priority: Option<u8>,
}

/// Changes to an item: `None` leaves a field alone. Label and member lists are the
/// complete new lists (callers merge with what people added).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ItemChanges {
    pub title: Option<String>,
    pub body: Option<String>,
    pub label_ids: Option<Vec<String>>,
    pub member_ids: Option<Vec<String>>,
    /// `Some(None)` clears the due date.
    pub due: Option<Option<NaiveDate>>,
    /// Move to this destination.
    pub destination_id: Option<String>,
    /// Archive (`true`) or unarchive (`false`).
    pub archived: Option<bool>,
    /// Set the native priority (rank 1 highest … 4 lowest); only asked of trackers with
    /// `capabilities().native_priority`.
    pub priority: Option<u8>,
}

impl ItemChanges {
    /// Nothing would be written.
    pub fn is_empty(&self) -> bool {
        *self == ItemChanges::default()
    }
}

/// A label to create in a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLabel {
    pub container_id: String,
    pub name: String,
    pub color: Option<String>,
}

/// What an adapter has sent so far, for run summaries and benchmarks: the same words for
/// every tracker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStats {
    /// Requests that only read.
    pub reads: u64,
    /// Requests that write (create, update, archive, revoke).
    pub writes: u64,
    /// Answers that refused a request for the rate limit.
    pub rate_limited: u64,
    /// Of those, the answers that refused the whole application key (every customer's
    /// requests, not one token's): the ones a shared budget must prevent.
    #[serde(default)]
    pub rate_limited_key: u64,
    /// Attempts after the first, for any reason.
    pub retries: u64,
}
