//! The conformance suite: plain async functions any tracker adapter must pass.
//!
//! Call them from the adapter's own tests (`#[tokio::test]`), or run them all with
//! [`run_all`], which skips what the adapter's capabilities say it cannot do. Each
//! function panics with a message naming the broken rule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use webriskops_domain::{marker, FindingId, ItemId, StateCategory, TargetState};

use crate::error::PortError;
use crate::model::{
    ItemChanges, ListItemsOptions, NewItem, NewLabel, Placement, ReadOptions, RemoteItem,
};
use crate::tracker::{list_all_items, TrackerIntrospection, WorkItems};

/// What the suite runs against: an adapter and an empty-enough destination.
#[derive(Debug, Clone)]
pub struct Target {
    pub items: Arc<dyn WorkItems>,
    /// Absent for write-only trackers.
    pub introspection: Option<Arc<dyn TrackerIntrospection>>,
    pub container_id: String,
    pub destination_id: String,
    /// A second destination in the same container (moves), not a closed state.
    pub other_destination_id: String,
    /// The destination closed findings go to: passed to reads as the done destination
    /// (Trello: the record's done list), or a state the tracker itself types as done.
    pub done_destination_id: String,
    /// A well-formed id of an item that does not exist.
    pub missing_item_id: ItemId,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A finding id unique within the process, so suites can share a destination.
pub fn unique_finding(prefix: &str) -> FindingId {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    FindingId::new(format!("conf-{prefix}-{}-{n}", std::process::id())).expect("valid id")
}

/// A new item for `finding`, body carrying its marker.
pub fn new_item(t: &Target, finding: &FindingId, title: &str) -> NewItem {
    NewItem {
        finding_id: finding.clone(),
        destination_id: t.destination_id.clone(),
        title: title.to_owned(),
        body: format!("Conformance item.\n\n---\n{}", marker(finding)),
        label_ids: vec![],
        member_ids: vec![],
        due: None,
        placement: Placement::Bottom,
        label_names: vec![],
        assignee: None,
        notes: vec![],
        target: TargetState::Open,
        priority: None,
    }
}

/// How the suite reads: archived included, with the target's done destination.
fn listing(t: &Target, include_archived: bool, with_checklists: bool) -> ListItemsOptions {
    ListItemsOptions {
        container_id: t.container_id.clone(),
        include_archived,
        with_checklists,
        done_destination: Some(t.done_destination_id.clone()),
        ..Default::default()
    }
}

fn reading(t: &Target, with_checklists: bool) -> ReadOptions {
    ReadOptions {
        with_checklists,
        done_destination: Some(t.done_destination_id.clone()),
    }
}

async fn find(t: &Target, id: &ItemId, with_checklists: bool) -> RemoteItem {
    let all = list_all_items(t.items.as_ref(), &listing(t, true, with_checklists))
        .await
        .expect("list_items must succeed");
    let mut matching: Vec<RemoteItem> = all.into_iter().filter(|i| &i.id == id).collect();
    assert_eq!(matching.len(), 1, "item {id} must be listed exactly once");
    matching.remove(0)
}

/// A created item is listed with its title, body (marker intact) and destination.
pub async fn create_item_carries_the_marker(t: &Target) {
    let f = unique_finding("create");
    let created = t
        .items
        .create_item(&new_item(t, &f, "Created by the suite"))
        .await
        .expect("create_item");
    assert_eq!(created.title, "Created by the suite");
    assert_eq!(
        created.destination_id, t.destination_id,
        "create must place the item in its destination"
    );
    let listed = find(t, &created.id, false).await;
    assert!(
        listed.body.contains(&marker(&f)),
        "the marker must survive the round trip"
    );
    assert!(!listed.archived);
    assert!(listed.created_secs > 0, "created_secs must be known");
}

/// `get_item` reads one item back, checklists included when asked. Every tracker that
/// can list items must support it: reconciling a write whose answer was lost needs it.
pub async fn get_item_reads_one_item(t: &Target) {
    let f = unique_finding("get");
    let created = t
        .items
        .create_item(&new_item(t, &f, "Read me back"))
        .await
        .expect("create_item");
    let read = t
        .items
        .get_item(&created.id, &reading(t, true))
        .await
        .expect("get_item");
    assert_eq!(read.id, created.id);
    assert_eq!(read.title, "Read me back");
    assert!(read.body.contains(&marker(&f)));
    assert!(
        read.checklists.is_some(),
        "with_checklists must return checklists (maybe empty)"
    );
    let plain = t
        .items
        .get_item(&created.id, &reading(t, false))
        .await
        .expect("get_item without checklists");
    assert!(plain.checklists.is_none());
    let err = t
        .items
        .get_item(&t.missing_item_id, &reading(t, false))
        .await
        .expect_err("a missing item is an error");
    assert!(
        matches!(
            err,
            PortError::NotFound { .. }
                | PortError::PermissionDenied { .. }
                | PortError::InvalidInput { .. }
        ),
        "missing item must be NotFound/PermissionDenied/InvalidInput, got {err:?}"
    );
    names_its_origin(t, &err, "get_item");
}

/// Every item read carries the finding the adapter read from the tracker's identity,
/// on listings and on `get_item` alike, and a state: not closed in the destination new
/// items go to, with the tracker's name for it.
pub async fn items_carry_their_finding_and_state(t: &Target) {
    let f = unique_finding("identity");
    let created = t
        .items
        .create_item(&new_item(t, &f, "Whose am I"))
        .await
        .expect("create_item");
    let listed = find(t, &created.id, false).await;
    assert_eq!(
        listed.finding_id.as_ref(),
        Some(&f),
        "list_items must read the finding of each item"
    );
    assert!(
        !listed.category.is_closed(),
        "a new item in its destination must not read as closed, got {:?}",
        listed.category
    );
    assert!(!listed.state_name.is_empty(), "state_name must be given");
    let read = t
        .items
        .get_item(&created.id, &reading(t, false))
        .await
        .expect("get_item");
    assert_eq!(
        read.finding_id.as_ref(),
        Some(&f),
        "get_item must read the finding of the item"
    );
    assert_eq!(read.category, listed.category);
}

/// An item moved to the done destination reads `Done` (listed and read alone), and
/// `Open` or `Started` again once moved back; the destinations carry categories too.
pub async fn the_done_destination_reads_done(t: &Target) {
    let f = unique_finding("done");
    let created = t
        .items
        .create_item(&new_item(t, &f, "To finish"))
        .await
        .expect("create_item");
    let to = |dest: &str| ItemChanges {
        destination_id: Some(dest.to_owned()),
        ..Default::default()
    };
    t.items
        .update_item(&created.id, &to(&t.done_destination_id))
        .await
        .expect("move to the done destination");
    let listed = find(t, &created.id, false).await;
    assert_eq!(
        listed.category,
        StateCategory::Done,
        "an item in the done destination must be listed as Done"
    );
    let read = t
        .items
        .get_item(&created.id, &reading(t, false))
        .await
        .expect("get_item");
    assert_eq!(
        read.category,
        StateCategory::Done,
        "get_item must read Done"
    );
    t.items
        .update_item(&created.id, &to(&t.destination_id))
        .await
        .expect("move back");
    assert!(!find(t, &created.id, false).await.category.is_closed());
    if let Some(i) = &t.introspection {
        let dests = i.destinations(&t.container_id).await.expect("destinations");
        let of = |id: &str| dests.iter().find(|d| d.id == id).map(|d| d.category);
        assert!(
            of(&t.destination_id).is_some_and(|c| !c.is_closed()),
            "the target destination must not be a closed state"
        );
        assert!(
            of(&t.done_destination_id)
                .is_some_and(|c| matches!(c, StateCategory::Open | StateCategory::Done)),
            "the done destination is typed Done, or untyped (Open) where reads are told"
        );
    }
}

/// `find_by_finding` finds the item of a finding (archived too) and nothing for a
/// finding without one.
pub async fn find_by_finding_present_and_absent(t: &Target) {
    let f = unique_finding("lookup");
    let created = t
        .items
        .create_item(&new_item(t, &f, "Look me up"))
        .await
        .expect("create_item");
    let found = t
        .items
        .find_by_finding(&t.container_id, &f, &reading(t, true))
        .await
        .expect("find_by_finding")
        .expect("the item of a finding just created must be found");
    assert_eq!(found.id, created.id);
    assert_eq!(found.finding_id.as_ref(), Some(&f));
    assert!(
        found.checklists.is_some(),
        "with_checklists must return checklists (maybe empty)"
    );
    let absent = unique_finding("absent");
    assert_eq!(
        t.items
            .find_by_finding(&t.container_id, &absent, &reading(t, false))
            .await
            .expect("find_by_finding of a finding without an item"),
        None
    );
    if t.items.capabilities().archive {
        t.items
            .update_item(
                &created.id,
                &ItemChanges {
                    archived: Some(true),
                    ..Default::default()
                },
            )
            .await
            .expect("archive");
        let found = t
            .items
            .find_by_finding(&t.container_id, &f, &reading(t, false))
            .await
            .expect("find_by_finding")
            .expect("an archived item must be found too");
        assert_eq!(found.id, created.id);
    }
}

/// `update_item` writes only the fields it is given.
pub async fn update_writes_only_given_fields(t: &Target) {
    let f = unique_finding("update");
    let created = t
        .items
        .create_item(&new_item(t, &f, "Before"))
        .await
        .expect("create_item");
    let changes = ItemChanges {
        title: Some("After".into()),
        ..Default::default()
    };
    let updated = t
        .items
        .update_item(&created.id, &changes)
        .await
        .expect("update_item");
    assert_eq!(updated.title, "After");
    let listed = find(t, &created.id, false).await;
    assert_eq!(listed.title, "After");
    assert_eq!(
        listed.body, created.body,
        "an update of the title must leave the body alone"
    );
    assert_eq!(listed.destination_id, t.destination_id);
}

/// A tracker with native priority keeps the rank given on create and on change, and
/// reads it back (1 highest … 4).
pub async fn priority_is_native_on_create_change_and_read(t: &Target) {
    let f = unique_finding("priority");
    let mut item = new_item(t, &f, "Prioritised");
    item.priority = Some(2);
    let created = t.items.create_item(&item).await.expect("create_item");
    assert_eq!(
        created.priority,
        Some(2),
        "create answers the priority it set"
    );
    assert_eq!(find(t, &created.id, false).await.priority, Some(2));
    let changes = ItemChanges {
        priority: Some(4),
        ..Default::default()
    };
    let updated = t
        .items
        .update_item(&created.id, &changes)
        .await
        .expect("update_item");
    assert_eq!(updated.priority, Some(4));
    let read = find(t, &created.id, false).await;
    assert_eq!(read.priority, Some(4));
    assert_eq!(
        read.title, "Prioritised",
        "a priority change leaves the title"
    );
}

/// Label lists in `ItemChanges` replace the whole list.
pub async fn labels_replace_the_whole_list(t: &Target) {
    let a = t
        .items
        .create_label(&NewLabel {
            container_id: t.container_id.clone(),
            name: format!("{}-a", unique_finding("l")),
            color: Some("green".into()),
        })
        .await
        .expect("create_label a");
    let b = t
        .items
        .create_label(&NewLabel {
            container_id: t.container_id.clone(),
            name: format!("{}-b", unique_finding("l")),
            color: None,
        })
        .await
        .expect("create_label b");
    let f = unique_finding("labels");
    let mut item = new_item(t, &f, "Labelled");
    item.label_ids = vec![a.id.clone()];
    let created = t
        .items
        .create_item(&item)
        .await
        .expect("create_item with a label");
    assert_eq!(created.label_ids, vec![a.id.clone()]);
    let changes = ItemChanges {
        label_ids: Some(vec![b.id.clone()]),
        ..Default::default()
    };
    t.items
        .update_item(&created.id, &changes)
        .await
        .expect("update labels");
    let listed = find(t, &created.id, false).await;
    assert_eq!(
        listed.label_ids,
        vec![b.id],
        "label_ids replace, they do not add"
    );
}

/// Archiving and unarchiving are visible in listings that include archived items.
pub async fn archive_and_unarchive(t: &Target) {
    let f = unique_finding("archive");
    let created = t
        .items
        .create_item(&new_item(t, &f, "To archive"))
        .await
        .expect("create_item");
    t.items
        .update_item(
            &created.id,
            &ItemChanges {
                archived: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("archive");
    assert!(
        find(t, &created.id, false).await.archived,
        "archived item must be listed as archived"
    );
    let open_only = list_all_items(t.items.as_ref(), &listing(t, false, false))
        .await
        .expect("listing open items");
    assert!(
        !open_only.iter().any(|i| i.id == created.id),
        "archived items must be left out unless asked for"
    );
    t.items
        .update_item(
            &created.id,
            &ItemChanges {
                archived: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("unarchive");
    assert!(!find(t, &created.id, false).await.archived);
}

/// Items move between destinations of the same container.
pub async fn move_between_destinations(t: &Target) {
    let f = unique_finding("move");
    let created = t
        .items
        .create_item(&new_item(t, &f, "To move"))
        .await
        .expect("create_item");
    let changes = ItemChanges {
        destination_id: Some(t.other_destination_id.clone()),
        ..Default::default()
    };
    t.items
        .update_item(&created.id, &changes)
        .await
        .expect("move");
    assert_eq!(
        find(t, &created.id, false).await.destination_id,
        t.other_destination_id
    );
}

/// Checklist items keep the positions they were given, even when added out of order.
pub async fn checklist_items_keep_their_order(t: &Target) {
    let f = unique_finding("checklist");
    let created = t
        .items
        .create_item(&new_item(t, &f, "With steps"))
        .await
        .expect("create_item");
    let list = t
        .items
        .create_checklist(&created.id, "Remediation")
        .await
        .expect("create_checklist");
    for (pos, name) in [(2, "second"), (1, "first"), (3, "third")] {
        t.items
            .add_check_item(&list.id, name, pos)
            .await
            .expect("add_check_item");
    }
    let listed = find(t, &created.id, true).await;
    let lists = listed
        .checklists
        .expect("with_checklists must return checklists");
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].name, "Remediation");
    let names: Vec<&str> = lists[0].items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["first", "second", "third"]);
    assert!(lists[0].items.iter().all(|i| !i.complete));
}

/// Paging returns every item exactly once, newest first within the walk.
pub async fn paging_returns_every_item_once(t: &Target) {
    let mut ids = Vec::new();
    for i in 0..7 {
        let f = unique_finding("page");
        ids.push(
            t.items
                .create_item(&new_item(t, &f, &format!("Paged {i}")))
                .await
                .expect("create_item")
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let opts = ListItemsOptions {
            cursor: cursor.take(),
            page_size: 3,
            ..listing(t, true, false)
        };
        let page = t.items.list_items(&opts).await.expect("list_items page");
        assert!(page.items.len() <= 3, "a page must respect page_size");
        pages += 1;
        assert!(pages < 10_000, "paging must end");
        seen.extend(page.items.into_iter().map(|i| i.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    for id in &ids {
        assert_eq!(
            seen.iter().filter(|s| *s == id).count(),
            1,
            "item {id} must appear exactly once across pages"
        );
    }
    let positions: Vec<usize> = ids
        .iter()
        .map(|id| seen.iter().position(|s| s == id).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] > w[1]),
        "pages must run newest first"
    );
}

/// Updating an item that does not exist is a typed error, not a success or a panic.
pub async fn missing_item_is_a_typed_error(t: &Target) {
    let err = t
        .items
        .update_item(
            &t.missing_item_id,
            &ItemChanges {
                title: Some("x".into()),
                ..Default::default()
            },
        )
        .await
        .expect_err("updating a missing item must fail");
    assert!(
        matches!(
            err,
            PortError::NotFound { .. }
                | PortError::PermissionDenied { .. }
                | PortError::InvalidInput { .. }
        ),
        "missing item must be NotFound/PermissionDenied/InvalidInput, got {err:?}"
    );
    names_its_origin(t, &err, "update_item");
}

/// An error from the adapter names it (its `capabilities().tracker`) and the port
/// operation that failed, in its fields and once at the start of its text (ADR 0005 §9).
pub fn names_its_origin(t: &Target, err: &PortError, operation: &str) {
    let tracker = t.items.capabilities().tracker;
    assert_eq!(
        err.tracker(),
        Some(tracker),
        "the error of {operation} must name the adapter, got {err:?}"
    );
    assert_eq!(
        err.operation(),
        Some(operation),
        "the error must name the operation {operation}, got {err:?}"
    );
    let text = err.to_string();
    let prefix = format!("{tracker} {operation}: ");
    assert!(
        text.starts_with(&prefix) && !text[prefix.len()..].contains(&prefix),
        "the error's text must start with {prefix:?} once, got {text:?}"
    );
}

/// Introspection sees the container, its destinations, labels, members and the token.
pub async fn introspection_sees_the_destination(t: &Target) {
    let i = t.introspection.as_ref().expect("introspection");
    let me = i.whoami().await.expect("whoami");
    assert!(!me.id.is_empty());
    let token = i.token_info().await.expect("token_info");
    // The neutral grant (ADR 0005 §7) is consistent, agrees with the token's expiry and
    // reaches the target container.
    assert_eq!(
        token.grant.inconsistency(),
        None,
        "grant: {:?}",
        token.grant
    );
    assert_eq!(token.grant.expires_at, token.expires_at, "grant expiry");
    assert!(
        token.grant.containers.reaches(&t.container_id),
        "a grant that works on the target container reaches it: {:?}",
        token.grant.containers
    );
    // `permissions` are per-object grants (a Trello token's); a tracker that has none to
    // report (Linear) leaves them empty until the neutral grants of ADR 0005 §7, and
    // then MUST at least name the account the token acts for.
    if token.permissions.is_empty() {
        assert_eq!(
            token.member_id.as_deref(),
            Some(me.id.as_str()),
            "a working token has permissions, or names the account whoami gives"
        );
    }
    let c = i.container(&t.container_id).await.expect("container");
    assert_eq!(c.id, t.container_id);
    let dests = i.destinations(&t.container_id).await.expect("destinations");
    assert!(
        dests.iter().any(|d| d.id == t.destination_id),
        "destinations must include the target destination"
    );
    let d = i.destination(&t.destination_id).await.expect("destination");
    assert_eq!(d.container_id, t.container_id);
    i.labels(&t.container_id).await.expect("labels");
    i.members(&t.container_id).await.expect("members");
    assert!(i
        .containers()
        .await
        .expect("containers")
        .iter()
        .any(|c| c.id == t.container_id));
}

/// Write-only trackers accept creates, checklists and a flush.
pub async fn write_only_accepts_creates(t: &Target) {
    let f = unique_finding("wo");
    let created = t
        .items
        .create_item(&new_item(t, &f, "Write-only"))
        .await
        .expect("create_item");
    if t.items.capabilities().checklists {
        let list = t
            .items
            .create_checklist(&created.id, "Remediation")
            .await
            .expect("create_checklist");
        t.items
            .add_check_item(&list.id, "step", 1)
            .await
            .expect("add_check_item");
    }
    t.items.flush().await.expect("flush");
}

/// Runs every function that applies to the adapter's capabilities.
/// A due date set on create reads back, and a change can clear it.
pub async fn due_dates_round_trip(t: &Target) {
    let f = unique_finding("due");
    let mut item = new_item(t, &f, "Due");
    let due = chrono::NaiveDate::from_ymd_opt(2031, 3, 14).expect("a date");
    item.due = Some(due);
    let created = t.items.create_item(&item).await.expect("create_item");
    assert_eq!(
        find(t, &created.id, false).await.due,
        Some(due),
        "due on create"
    );
    let cleared = ItemChanges {
        due: Some(None),
        ..Default::default()
    };
    t.items
        .update_item(&created.id, &cleared)
        .await
        .expect("update_item");
    assert_eq!(find(t, &created.id, false).await.due, None, "due cleared");
}

/// Assignees are members of the container, as many as the tracker allows: a tracker
/// that takes one keeps the first it is given and reads back no other.
pub async fn assignees_within_the_trackers_allowance(t: &Target) {
    let Some(intro) = &t.introspection else {
        return;
    };
    let members = intro
        .members(&t.container_id)
        .await
        .expect("members of the container");
    let Some(first) = members.first() else {
        return;
    };
    let f = unique_finding("assignee");
    let mut item = new_item(t, &f, "Assigned");
    item.member_ids = members.iter().take(2).map(|m| m.id.clone()).collect();
    let created = t.items.create_item(&item).await.expect("create_item");
    let read = find(t, &created.id, false).await;
    assert!(
        read.member_ids.contains(&first.id),
        "the first assignee is kept: {:?}",
        read.member_ids
    );
    let allowed = t.items.capabilities().max_assignees as usize;
    assert!(
        read.member_ids.len() <= allowed.max(1),
        "no more assignees than the tracker allows ({allowed}): {:?}",
        read.member_ids
    );
}

/// Revoking ends the credential's access, or a tracker that cannot revoke through its API
/// says so (`capabilities().revoke` false, a `NotSupported` naming what to do). Run it on a
/// target with a throwaway credential: the credential does not work afterwards.
pub async fn revoke_ends_access(t: &Target) {
    let intro = t
        .introspection
        .as_ref()
        .expect("revoking needs the introspection port");
    let result = intro.revoke_token().await;
    if !t.items.capabilities().revoke {
        let e = result.expect_err("a tracker that cannot revoke must say so");
        assert_eq!(e.kind(), "not_supported", "{e}");
        assert!(!e.to_string().trim().is_empty());
        return;
    }
    result.expect("revoke_token");
    let after = intro.whoami().await;
    assert!(
        matches!(after, Err(PortError::Unauthenticated { .. })),
        "a revoked credential is refused: {after:?}"
    );
}

pub async fn run_all(t: &Target) {
    let caps = t.items.capabilities();
    write_only_accepts_creates(t).await;
    if !caps.list_items {
        return;
    }
    create_item_carries_the_marker(t).await;
    get_item_reads_one_item(t).await;
    items_carry_their_finding_and_state(t).await;
    find_by_finding_present_and_absent(t).await;
    update_writes_only_given_fields(t).await;
    missing_item_is_a_typed_error(t).await;
    paging_returns_every_item_once(t).await;
    due_dates_round_trip(t).await;
    if caps.members {
        assignees_within_the_trackers_allowance(t).await;
    }
    if caps.labels && caps.create_labels {
        labels_replace_the_whole_list(t).await;
    }
    if caps.native_priority {
        priority_is_native_on_create_change_and_read(t).await;
    }
    if caps.archive {
        archive_and_unarchive(t).await;
    }
    if caps.move_items {
        move_between_destinations(t).await;
        the_done_destination_reads_done(t).await;
    }
    if caps.checklists {
        checklist_items_keep_their_order(t).await;
    }
    if t.introspection.is_some() {
        introspection_sees_the_destination(t).await;
    }
}
