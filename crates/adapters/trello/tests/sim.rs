//! The adapter against the Trello simulator over real HTTP on 127.0.0.1.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use common::{adapter, config, world, World, MISSING_ID};
use futures::future::join_all;
use trello_sim::{Fault, FaultRule};
use webriskops_domain::readiness::BoardList;
use webriskops_domain::{
    evaluate, marker, BlockedCode, BoardObservation, FindingId, ItemId, ListObservation,
    Observations, ProviderRecord, StateCategory, TenantId, TokenObservation,
};
use webriskops_ports::conformance::{self, Target};
use webriskops_ports::{
    list_all_items, ItemChanges, ListItemsOptions, NewItem, NewLabel, Placement, PortError,
    ReadOptions, TrackerIntrospection, WorkItems,
};
use webriskops_trello::TrelloAdapter;

/// Every card of a board, archived ones when asked, without checklists or a done list.
fn listing(board: &str, include_archived: bool) -> ListItemsOptions {
    ListItemsOptions {
        container_id: board.to_owned(),
        include_archived,
        ..Default::default()
    }
}

fn new_item(w: &World, finding: &str, title: &str) -> NewItem {
    let f = FindingId::new(finding).unwrap();
    NewItem {
        body: format!("Body of {title}\n\n---\n{}", marker(&f)),
        finding_id: f,
        destination_id: w.fx.list_id.clone(),
        title: title.to_owned(),
        label_ids: vec![],
        member_ids: vec![],
        due: None,
        placement: Placement::Bottom,
        label_names: vec![],
        assignee: None,
        notes: vec![],
        target: webriskops_domain::TargetState::Open,
        priority: None,
    }
}

fn cards_with_marker(w: &World, finding: &str) -> usize {
    let m = marker(&FindingId::new(finding).unwrap());
    w.handle
        .cards(&w.fx.board_id)
        .iter()
        .filter(|c| c.desc.contains(&m))
        .count()
}

#[tokio::test]
async fn cards_read_their_finding_their_done_list_and_their_lists_name() {
    let w = world().await;
    let a = adapter(&w, &w.fx.tokens.full);
    let created = a
        .create_item(&new_item(&w, "wro-state-1", "Where am I"))
        .await
        .unwrap();
    w.handle
        .person_move_card(created.id.as_str(), &w.fx.done_list_id);
    let read = |done: Option<&str>| ReadOptions {
        with_checklists: false,
        done_destination: done.map(str::to_owned),
    };
    let before = w.handle.request_count();
    let card = a
        .get_item(&created.id, &read(Some(&w.fx.done_list_id)))
        .await
        .unwrap();
    assert_eq!(card.finding_id.unwrap().as_str(), "wro-state-1");
    assert_eq!(
        card.category,
        StateCategory::Done,
        "in the record's done list"
    );
    assert_eq!(
        card.state_name, w.fx.done_list_id,
        "no list read yet: the list id, and no extra request for names"
    );
    assert_eq!(w.handle.request_count(), before + 1);
    let open = a.get_item(&created.id, &read(None)).await.unwrap();
    assert_eq!(
        open.category,
        StateCategory::Open,
        "without the record's done list a Trello list has no category"
    );
    a.destinations(&w.fx.board_id).await.unwrap();
    let named = a
        .get_item(&created.id, &read(Some(&w.fx.done_list_id)))
        .await
        .unwrap();
    assert_eq!(
        named.state_name, "Done",
        "the list's name once the lists were read"
    );
    let found = a
        .find_by_finding(
            &w.fx.board_id,
            &FindingId::new("wro-state-1").unwrap(),
            &read(Some(&w.fx.done_list_id)),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id, found.category),
        (created.id, StateCategory::Done)
    );
}

// ---------------------------------------------------------------- conformance

#[tokio::test]
async fn conformance_suite_passes() {
    let w = world().await;
    let a = Arc::new(adapter(&w, &w.fx.tokens.full));
    let target = Target {
        items: a.clone(),
        introspection: Some(a.clone()),
        container_id: w.fx.board_id.clone(),
        destination_id: w.fx.list_id.clone(),
        other_destination_id: w.fx.doing_list_id.clone(),
        done_destination_id: w.fx.done_list_id.clone(),
        missing_item_id: ItemId::new(MISSING_ID).unwrap(),
    };
    conformance::run_all(&target).await;
    let s = a.stats();
    assert!(s.reads > 0 && s.writes > 0);
    assert_eq!(s.rate_limited_429s, 0);
    assert_eq!(w.handle.count_status(429), 0);
}

#[tokio::test]
async fn conformance_revoke_ends_access() {
    let w = world().await;
    let a = Arc::new(adapter(&w, &w.fx.tokens.full));
    let target = Target {
        items: a.clone(),
        introspection: Some(a.clone()),
        container_id: w.fx.board_id.clone(),
        destination_id: w.fx.list_id.clone(),
        other_destination_id: w.fx.doing_list_id.clone(),
        done_destination_id: w.fx.done_list_id.clone(),
        missing_item_id: ItemId::new(MISSING_ID).unwrap(),
    };
    conformance::revoke_ends_access(&target).await;
    assert!(w.handle.token_revoked(&w.fx.tokens.full));
}

// ---------------------------------------------------------------- readiness

/// Gathers readiness observations from the adapter: token, then (with a working token)
/// board, lists, labels and members in one batch.
async fn observe(a: &TrelloAdapter, rec: &ProviderRecord) -> Observations {
    let token = match a.token_info().await {
        Ok(t) => TokenObservation::Valid {
            permissions: t.permissions,
            expires_at: t.expires_at,
        },
        Err(PortError::Unauthenticated { message, .. }) => {
            TokenObservation::Rejected { reason: message }
        }
        Err(e) => panic!("token_info: unexpected {e:?}"),
    };
    let mut obs = Observations::new(Utc::now(), token);
    if matches!(obs.token, TokenObservation::Rejected { .. }) {
        return obs;
    }
    let Some(board) = rec.board_id.as_deref() else {
        return obs;
    };
    let mut lists: Vec<&str> = Vec::new();
    lists.extend(rec.list_id.as_deref());
    lists.extend(rec.done_list_id.as_deref());
    let snap = a
        .readiness_snapshot(board, &lists)
        .await
        .expect("the batch itself succeeds");
    obs.board = Some(match snap.board {
        Ok(c) => BoardObservation::Found {
            name: c.name,
            closed: c.closed,
            organization_id: c.organization_id,
        },
        Err(PortError::NotFound { .. }) => BoardObservation::NotFound,
        Err(PortError::PermissionDenied { .. }) => BoardObservation::NoAccess,
        Err(e) => panic!("board: unexpected {e:?}"),
    });
    let list_obs = |r: &Result<webriskops_ports::Destination, PortError>| match r {
        Ok(d) => ListObservation::Found {
            name: d.name.clone(),
            closed: d.closed,
            board_id: d.container_id.clone(),
        },
        Err(PortError::NotFound { .. }) => ListObservation::NotFound,
        Err(PortError::PermissionDenied { .. }) => ListObservation::NoAccess,
        Err(e) => panic!("list: unexpected {e:?}"),
    };
    let mut answers = snap.lists.iter();
    if rec.list_id.is_some() {
        obs.list = answers.next().map(|(_, r)| list_obs(r));
    }
    if rec.done_list_id.is_some() {
        obs.done_list = answers.next().map(|(_, r)| list_obs(r));
    }
    // Only a refusal says the token cannot read them; a missing board is reported above.
    let readable = |r: Result<(), &PortError>| match r {
        Ok(()) => Some(true),
        Err(PortError::PermissionDenied { .. }) => Some(false),
        Err(_) => None,
    };
    obs.labels_readable = readable(snap.labels.as_ref().map(|_| ()));
    obs.members_readable = readable(snap.members.as_ref().map(|_| ()));
    obs.board_lists = snap.board_lists.ok().map(|ls| {
        ls.into_iter()
            .map(|d| BoardList {
                id: d.id,
                name: d.name,
                closed: d.closed,
            })
            .collect()
    });
    obs
}

fn record(w: &World, board: &str, list: &str) -> ProviderRecord {
    let mut r = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    r.board_id = Some(board.to_owned());
    r.list_id = Some(list.to_owned());
    r.workspace_id = Some(w.fx.org_id.clone());
    r.revoke_path_confirmed = true;
    r
}

async fn codes(w: &World, token: &str, rec: &ProviderRecord) -> Vec<BlockedCode> {
    let a = adapter(w, token);
    let readiness = evaluate(rec, &observe(&a, rec).await);
    readiness.codes()
}

#[tokio::test]
async fn readiness_answers_map_to_the_right_blocked_codes() {
    let w = world().await;
    let fx = &w.fx;
    let good = record(&w, &fx.board_id, &fx.list_id);
    let mut with_done = good.clone();
    with_done.done_list_id = Some(fx.done_list_id.clone());

    // Ready: full token, open board in the workspace, open lists.
    let a = adapter(&w, &fx.tokens.full);
    let r = evaluate(&with_done, &observe(&a, &with_done).await);
    assert!(r.is_ready(), "{r:?}");

    use BlockedCode::*;
    assert_eq!(
        codes(&w, &fx.tokens.expired, &good).await,
        [ProviderAuthRequired]
    );
    assert_eq!(
        codes(&w, &fx.tokens.read_only, &good).await,
        [ProviderScopeUnavailable]
    );
    assert_eq!(
        codes(&w, &fx.tokens.other_board_only, &good).await,
        [ProviderScopeUnavailable]
    );

    let closed_list = record(&w, &fx.board_id, &fx.closed_list_id);
    assert_eq!(
        codes(&w, &fx.tokens.full, &closed_list).await,
        [ListNotOnBoard]
    );
    let list_elsewhere = record(
        &w,
        &fx.board_id,
        &w.handle.create_list(&fx.other_board_id, "Elsewhere"),
    );
    assert_eq!(
        codes(&w, &fx.tokens.full, &list_elsewhere).await,
        [ListNotOnBoard]
    );

    // A token of the same member that covers only this board: the list on the other
    // board answers 401, but the board's lists are readable and it is not among them.
    let board_only = w.handle.create_token(
        &fx.api_key,
        &fx.members[0].id,
        vec![
            trello_sim::Permission::new(&fx.board_id, "Board", true, true),
            trello_sim::Permission::new(&fx.members[0].id, "Member", true, false),
        ],
        None,
    );
    let a = adapter(&w, &board_only);
    let obs = observe(&a, &list_elsewhere).await;
    assert_eq!(
        obs.list,
        Some(ListObservation::NoAccess),
        "the token cannot see it"
    );
    let r = evaluate(&list_elsewhere, &obs);
    assert_eq!(r.codes(), [ListNotOnBoard], "{r:?}");
    let fix = &r.blocked[0].fix;
    assert!(
        fix.contains(&format!(
            "choose one of these lists: To Do ({}), Doing ({}), Done ({})",
            fx.list_id, fx.doing_list_id, fx.done_list_id
        )),
        "{fix}"
    );
    assert!(
        !fix.contains("Old"),
        "archived lists are not offered: {fix}"
    );
    assert!(!fix.contains("authorize"), "{fix}");

    let other_ws = record(
        &w,
        &fx.other_board_id,
        &w.handle.create_list(&fx.other_board_id, "Backlog 2"),
    );
    assert_eq!(
        codes(&w, &fx.tokens.full, &other_ws).await,
        [BoardNotInWorkspace]
    );
    let personal = record(
        &w,
        &fx.personal_board_id,
        &w.handle.create_list(&fx.personal_board_id, "Todo"),
    );
    assert_eq!(
        codes(&w, &fx.tokens.full, &personal).await,
        [BoardNotInWorkspace]
    );

    let closed_board = record(&w, &fx.closed_board_id, &fx.list_id);
    assert!(codes(&w, &fx.tokens.full, &closed_board)
        .await
        .contains(&DestinationBoardRequired));

    let missing = record(&w, MISSING_ID, "5f00000000000000000000bb");
    assert_eq!(
        codes(&w, &fx.tokens.full, &missing).await,
        [DestinationBoardRequired, ListNotOnBoard]
    );

    // Revoked last: it changes the world.
    w.handle.revoke_token(&fx.tokens.revocable);
    assert_eq!(
        codes(&w, &fx.tokens.revocable, &good).await,
        [ProviderAuthRequired]
    );
}

/// The export's readiness check (`observe_for_export`: the token and one `/batch`, then
/// the domain's rules, as `run_export` runs it) and the full check that setup and status
/// run (`webriskops_service::check_readiness`: one request per question) block the same
/// records with the same codes. The quick check reads fewer answers; any case where it
/// read them differently would let an export through that setup refuses, or the reverse.
#[tokio::test]
async fn the_export_readiness_check_blocks_exactly_as_the_full_check() {
    use BlockedCode::*;
    let w = world().await;
    let fx = &w.fx;
    let h = &w.handle;
    let good = record(&w, &fx.board_id, &fx.list_id);
    let with_done = |list: &str| {
        let mut r = good.clone();
        r.done_list_id = Some(list.to_owned());
        r
    };
    let elsewhere = h.create_list(&fx.other_board_id, "Elsewhere");
    // A token of the same member that covers only the fixture board: it cannot see a
    // list on another board at all.
    let board_only = h.create_token(
        &fx.api_key,
        &fx.members[0].id,
        vec![
            trello_sim::Permission::new(&fx.board_id, "Board", true, true),
            trello_sim::Permission::new(&fx.members[0].id, "Member", true, false),
        ],
        None,
    );
    h.revoke_token(&fx.tokens.revocable);
    let t = &fx.tokens;
    let cases: Vec<(&str, &str, ProviderRecord, &[BlockedCode])> = vec![
        ("ready", &t.full, with_done(&fx.done_list_id), &[]),
        (
            "expired token",
            &t.expired,
            good.clone(),
            &[ProviderAuthRequired],
        ),
        (
            "revoked token",
            &t.revocable,
            good.clone(),
            &[ProviderAuthRequired],
        ),
        (
            "read-only token",
            &t.read_only,
            good.clone(),
            &[ProviderScopeUnavailable],
        ),
        (
            "token for another board only",
            &t.other_board_only,
            good.clone(),
            &[ProviderScopeUnavailable],
        ),
        (
            "archived list",
            &t.full,
            record(&w, &fx.board_id, &fx.closed_list_id),
            &[ListNotOnBoard],
        ),
        (
            "archived done list",
            &t.full,
            with_done(&fx.closed_list_id),
            &[ListNotOnBoard],
        ),
        (
            "missing list",
            &t.full,
            record(&w, &fx.board_id, MISSING_ID),
            &[ListNotOnBoard],
        ),
        (
            "list on another board",
            &t.full,
            record(&w, &fx.board_id, &elsewhere),
            &[ListNotOnBoard],
        ),
        (
            "list on a board the token cannot see",
            &board_only,
            record(&w, &fx.board_id, &elsewhere),
            &[ListNotOnBoard],
        ),
        (
            "done list on another board",
            &t.full,
            with_done(&elsewhere),
            &[ListNotOnBoard],
        ),
        (
            "board of another workspace",
            &t.full,
            record(&w, &fx.other_board_id, &elsewhere),
            &[BoardNotInWorkspace],
        ),
        (
            "board of no workspace",
            &t.full,
            record(
                &w,
                &fx.personal_board_id,
                &h.create_list(&fx.personal_board_id, "Todo"),
            ),
            &[BoardNotInWorkspace],
        ),
        (
            "archived board",
            &t.full,
            record(
                &w,
                &fx.closed_board_id,
                &h.create_list(&fx.closed_board_id, "Backlog"),
            ),
            &[DestinationBoardRequired],
        ),
        (
            "missing board",
            &t.full,
            record(&w, MISSING_ID, "5f00000000000000000000bb"),
            &[DestinationBoardRequired, ListNotOnBoard],
        ),
    ];
    let mut wrong = Vec::new();
    for (name, token, rec, want) in cases {
        let a = adapter(&w, token);
        let now = Utc::now();
        let observed = a
            .observe_for_export(&rec, now)
            .await
            .unwrap_or_else(|e| panic!("{name}: observe_for_export failed: {e}"))
            .unwrap_or_else(|| panic!("{name}: the export's own check was not taken"));
        let quick = webriskops_domain::readiness::check(&rec, &observed).codes();
        let full = webriskops_service::check_readiness(Some(&adapter(&w, token)), &rec, now)
            .await
            .unwrap_or_else(|e| panic!("{name}: check_readiness failed: {e}"))
            .readiness
            .codes();
        if quick != full || quick != want {
            wrong.push(format!(
                "{name}: export check {quick:?}, full check {full:?}, expected {want:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn readiness_relevant_answers_are_typed_port_errors() {
    let w = world().await;
    let fx = &w.fx;
    let full = adapter(&w, &fx.tokens.full);

    let e = adapter(&w, &fx.tokens.expired).whoami().await.unwrap_err();
    assert!(
        matches!(&e, PortError::Unauthenticated { message, .. } if message.contains("expired token")),
        "{e:?}"
    );
    let e = adapter(&w, &fx.tokens.expired)
        .container(&fx.board_id)
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::Unauthenticated { .. }), "{e:?}");

    // Read-only: reads work, writes are refused as a permission, not as bad credentials.
    let ro = adapter(&w, &fx.tokens.read_only);
    assert!(ro.container(&fx.board_id).await.is_ok());
    let info = ro.token_info().await.unwrap();
    assert!(info.permissions.iter().all(|p| p.read && !p.write));
    let e = ro
        .create_item(&new_item(&w, "ro-1", "x"))
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::PermissionDenied { .. }), "{e:?}");
    assert_eq!(cards_with_marker(&w, "ro-1"), 0);

    // Other-board-only: the fixture board answers 401 → PermissionDenied, never Unauthenticated.
    let ob = adapter(&w, &fx.tokens.other_board_only);
    for e in [
        ob.container(&fx.board_id).await.unwrap_err(),
        ob.destination(&fx.list_id).await.unwrap_err(),
        ob.labels(&fx.board_id).await.unwrap_err(),
        ob.members(&fx.board_id).await.unwrap_err(),
    ] {
        assert!(matches!(e, PortError::PermissionDenied { .. }), "{e:?}");
    }
    assert!(ob.container(&fx.other_board_id).await.is_ok());

    // Closed list, other workspace, personal board, closed board: answers, not errors.
    let d = full.destination(&fx.closed_list_id).await.unwrap();
    assert!(d.closed);
    assert_eq!(d.container_id, fx.board_id);
    assert_eq!(
        full.container(&fx.other_board_id)
            .await
            .unwrap()
            .organization_id
            .as_deref(),
        Some(fx.other_org_id.as_str())
    );
    assert_eq!(
        full.container(&fx.personal_board_id)
            .await
            .unwrap()
            .organization_id,
        None
    );
    assert!(full.container(&fx.closed_board_id).await.unwrap().closed);
    let dests = full.destinations(&fx.board_id).await.unwrap();
    assert!(
        dests.iter().any(|d| d.id == fx.closed_list_id && d.closed),
        "filter=all includes archived lists"
    );
    let boards = full.containers().await.unwrap();
    assert!(boards.iter().any(|b| b.id == fx.board_id));
    assert!(
        !boards.iter().any(|b| b.id == fx.closed_board_id),
        "filter=open"
    );

    // Not found and malformed ids.
    assert!(matches!(
        full.container(MISSING_ID).await.unwrap_err(),
        PortError::NotFound { .. }
    ));
    assert!(matches!(
        full.destination(MISSING_ID).await.unwrap_err(),
        PortError::NotFound { .. }
    ));
    let before = w.handle.request_count();
    let e = full.container("Security Remediation").await.unwrap_err();
    assert!(
        matches!(&e, PortError::InvalidInput { message, .. } if message.contains("board id")),
        "{e:?}"
    );
    assert_eq!(
        w.handle.request_count(),
        before,
        "a malformed id is refused before sending"
    );

    // Revoke: afterwards every call is Unauthenticated, including the cached whoami.
    let rv = adapter(&w, &fx.tokens.revocable);
    assert_eq!(rv.whoami().await.unwrap().username, "secops");
    rv.revoke_token().await.unwrap();
    assert!(w.handle.token_revoked(&fx.tokens.revocable));
    assert!(matches!(
        rv.token_info().await.unwrap_err(),
        PortError::Unauthenticated { .. }
    ));
    assert!(matches!(
        rv.whoami().await.unwrap_err(),
        PortError::Unauthenticated { .. }
    ));

    // A wrong key.
    let mut c = config(&w, &fx.tokens.full);
    c.api_key = webriskops_domain::ApiKey::new("0123456789abcdef0123456789abcdef").unwrap();
    let e = TrelloAdapter::new(c).unwrap().whoami().await.unwrap_err();
    assert!(
        matches!(&e, PortError::Unauthenticated { message, .. } if message.contains("invalid key")),
        "{e:?}"
    );
}

// ---------------------------------------------------------------- work items

#[tokio::test]
async fn create_update_archive_move_and_routing_round_trip() {
    let w = world().await;
    let fx = &w.fx;
    let a = adapter(&w, &fx.tokens.full);
    let jdoe = fx.member("jdoe").unwrap().id.clone();
    let asmith = fx.member("asmith").unwrap().id.clone();
    let outsider = fx.member("outsider").unwrap().id.clone();

    let sev = a
        .create_label(&NewLabel {
            container_id: fx.board_id.clone(),
            name: "severity: high".into(),
            color: Some("orange_dark".into()),
        })
        .await
        .unwrap();
    let tag = a
        .create_label(&NewLabel {
            container_id: fx.board_id.clone(),
            name: "component: api".into(),
            color: None,
        })
        .await
        .unwrap();
    assert_eq!(tag.color, None);
    let labels = a.labels(&fx.board_id).await.unwrap();
    assert!(labels
        .iter()
        .any(|l| l.id == sev.id && l.color.as_deref() == Some("orange_dark")));
    let members = a.members(&fx.board_id).await.unwrap();
    assert!(members.iter().any(|m| m.id == jdoe && m.username == "jdoe"));
    assert!(!members.iter().any(|m| m.id == outsider));

    let due = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
    let mut item = new_item(&w, "wro-route-1", "Patch the API gateway");
    item.label_ids = vec![sev.id.clone(), tag.id.clone()];
    item.member_ids = vec![jdoe.clone()];
    item.due = Some(due);
    item.placement = Placement::Top;
    let created = a.create_item(&item).await.unwrap();
    assert_eq!(created.due, Some(due));
    assert_eq!(created.label_ids, vec![sev.id.clone(), tag.id.clone()]);
    assert_eq!(created.member_ids, vec![jdoe.clone()]);
    assert!(created.url.is_some());
    let card = w.handle.card(created.id.as_str()).unwrap();
    assert!(card.desc.ends_with("[webriskops:finding:wro-route-1]"));
    assert_eq!(card.id_list, fx.list_id);

    // Only the given fields; lists replace; null clears the due date.
    let updated = a
        .update_item(
            &created.id,
            &ItemChanges {
                member_ids: Some(vec![asmith.clone()]),
                label_ids: Some(vec![tag.id.clone()]),
                due: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.member_ids, vec![asmith.clone()]);
    assert_eq!(updated.label_ids, vec![tag.id.clone()]);
    assert_eq!(updated.due, None);
    assert_eq!(updated.title, "Patch the API gateway");
    let card = w.handle.card(created.id.as_str()).unwrap();
    assert_eq!(card.due, None);
    assert_eq!(card.desc, item.body);

    // Move, archive, unarchive.
    a.update_item(
        &created.id,
        &ItemChanges {
            destination_id: Some(fx.done_list_id.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        w.handle.card(created.id.as_str()).unwrap().id_list,
        fx.done_list_id
    );
    let archived = a
        .update_item(
            &created.id,
            &ItemChanges {
                archived: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(archived.archived);
    assert!(w.handle.card(created.id.as_str()).unwrap().closed);
    let open = list_all_items(&a, &listing(&fx.board_id, false))
        .await
        .unwrap();
    assert!(!open.iter().any(|i| i.id == created.id));
    a.update_item(
        &created.id,
        &ItemChanges {
            archived: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(!w.handle.card(created.id.as_str()).unwrap().closed);

    // Empty changes write nothing and read the card back.
    let writes = a.stats().writes;
    let same = a
        .update_item(&created.id, &ItemChanges::default())
        .await
        .unwrap();
    assert_eq!(same.id, created.id);
    assert_eq!(a.stats().writes, writes);

    // Changes made by a person are seen.
    w.handle.person_add_member(created.id.as_str(), &jdoe);
    let listed = list_all_items(&a, &listing(&fx.board_id, true))
        .await
        .unwrap();
    let it = listed.iter().find(|i| i.id == created.id).unwrap();
    assert_eq!(it.member_ids, vec![asmith.clone(), jdoe.clone()]);
    assert_eq!(
        it.created_secs,
        u64::from_str_radix(&created.id.as_str()[..8], 16).unwrap()
    );
    assert!(it.last_activity.is_some());

    // A member not on the board: InvalidInput naming the field.
    let mut bad = new_item(&w, "wro-route-2", "Outsider");
    bad.member_ids = vec![outsider];
    let e = a.create_item(&bad).await.unwrap_err();
    assert!(
        matches!(&e, PortError::InvalidInput { message, .. } if message.contains("idMembers")),
        "{e:?}"
    );
    // A list that does not exist.
    let mut bad = new_item(&w, "wro-route-3", "Nowhere");
    bad.destination_id = MISSING_ID.into();
    let e = a.create_item(&bad).await.unwrap_err();
    assert!(
        matches!(&e, PortError::InvalidInput { message, .. } if message.contains("idList")),
        "{e:?}"
    );
    // A label of another board.
    let foreign = w
        .handle
        .create_label(&fx.other_board_id, "foreign", Some("red"));
    let e = a
        .update_item(
            &created.id,
            &ItemChanges {
                label_ids: Some(vec![foreign]),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PortError::InvalidInput { message, .. } if message.contains("idLabels")),
        "{e:?}"
    );
}

#[tokio::test]
async fn long_text_travels_in_the_body_and_long_urls_are_refused_locally() {
    let w = world().await;
    let a = adapter(&w, &w.fx.tokens.full);
    let mut item = new_item(&w, "wro-long-1", &"長い題名".repeat(1000));
    item.body = format!(
        "{}\n\n---\n[webriskops:finding:wro-long-1]",
        "説明文".repeat(5000)
    );
    let created = a
        .create_item(&item)
        .await
        .expect("16 KB of CJK in the JSON body");
    assert_eq!(created.title, item.title);
    assert_eq!(w.handle.count_status(414), 0);

    let cl = a
        .create_checklist(&created.id, "Remediation")
        .await
        .unwrap();
    let before = w.handle.request_count();
    let e = a
        .add_check_item(&cl.id, &"手順".repeat(1500), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PortError::InvalidInput { message, .. } if message.contains("request too long")),
        "{e:?}"
    );
    assert_eq!(w.handle.request_count(), before, "refused before sending");
}

#[tokio::test]
async fn labels_past_fifty_and_paging_past_a_thousand_cards() {
    let w = world().await;
    let fx = &w.fx;
    let a = adapter(&w, &fx.tokens.full);
    let owner = fx.member("secops").unwrap().id.clone();
    let board = w.handle.create_board(Some(&fx.org_id), "Big board");
    w.handle.add_board_admin(&board, &owner);
    let list = w.handle.create_list(&board, "Intake");
    for i in 0..60 {
        w.handle.create_label(&board, &format!("tag-{i}"), None);
    }
    assert_eq!(
        a.labels(&board).await.unwrap().len(),
        66,
        "6 default + 60: none silently missing"
    );

    let mut ids = Vec::new();
    for i in 0..2100 {
        ids.push(w.handle.person_create_card(&list, &format!("Card {i}"), ""));
    }
    w.handle.person_archive_card(&ids[5]);
    w.handle.clear_request_log();
    let all = list_all_items(&a, &listing(&board, true)).await.unwrap();
    assert_eq!(all.len(), 2100);
    let mut seen: Vec<&str> = all.iter().map(|i| i.id.as_str()).collect();
    assert!(
        seen.windows(2).all(|p| p[0] > p[1]),
        "newest first, no repeats"
    );
    seen.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(seen, expected);
    assert!(
        all.iter()
            .find(|i| i.id.as_str() == ids[5])
            .unwrap()
            .archived
    );
    assert_eq!(
        w.handle.request_count(),
        3,
        "pages of 1000: 1000 + 1000 + 100"
    );

    let open = list_all_items(&a, &listing(&board, false)).await.unwrap();
    assert_eq!(open.len(), 2099);

    let page = a
        .list_items(&ListItemsOptions {
            container_id: board.clone(),
            cursor: None,
            page_size: 5000,
            include_archived: true,
            with_checklists: true,
            done_destination: None,
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1000, "page size is capped at 1000");
    assert_eq!(
        page.next_cursor.as_deref(),
        Some(page.items[999].id.as_str())
    );
    assert!(page.items.iter().all(|i| i.checklists.is_some()));
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn a_429_storm_and_5xx_bursts_create_every_card_exactly_once() {
    let w = world().await;
    let a = Arc::new(adapter(&w, &w.fx.tokens.full));
    w.handle.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
        30,
        Fault::RateLimit429,
    ));
    w.handle.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
        6,
        Fault::Status(503),
    ));
    w.handle.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
        4,
        Fault::Status(500),
    ));
    w.handle.inject(FaultRule::new(
        Some("PUT"),
        Some("/1/cards"),
        5,
        Fault::Status(502),
    ));
    let findings: Vec<String> = (0..20).map(|i| format!("wro-storm-{i}")).collect();
    let created = join_all(findings.iter().map(|f| {
        let a = a.clone();
        let item = new_item(&w, f, f);
        async move { a.create_item(&item).await }
    }))
    .await;
    for (f, r) in findings.iter().zip(&created) {
        let item = r.as_ref().unwrap_or_else(|e| panic!("{f}: {e:?}"));
        assert_eq!(cards_with_marker(&w, f), 1, "{f} created exactly once");
        a.update_item(
            &item.id,
            &ItemChanges {
                title: Some(format!("{f} updated")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    assert!(w.handle.pending_faults().is_empty(), "every fault was hit");
    assert_eq!(w.handle.cards(&w.fx.board_id).len(), 20);
    let s = a.stats();
    assert_eq!(s.rate_limited_429s, 30);
    assert_eq!(s.retries, 30 + 6 + 4 + 5);
    assert_eq!(
        w.handle.count_status(429),
        30,
        "only the injected 429s: the limiter caused none"
    );
}

#[tokio::test]
async fn a_post_whose_answer_is_lost_is_outcome_unknown_and_never_resent() {
    let w = world().await;
    let mut c = config(&w, &w.fx.tokens.full);
    c.timeout = Duration::from_millis(300);
    let a = TrelloAdapter::new(c).unwrap();

    w.handle.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
        1,
        Fault::Delay {
            delay: Duration::from_millis(1200),
            after_apply: true,
        },
    ));
    let e = a
        .create_item(&new_item(&w, "wro-lost-1", "Slow"))
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::OutcomeUnknown { .. }), "{e:?}");
    assert!(e.may_have_applied());
    assert_eq!(
        cards_with_marker(&w, "wro-lost-1"),
        1,
        "applied once, not resent"
    );

    w.handle.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
        1,
        Fault::DropConnection { after_apply: true },
    ));
    let e = a
        .create_item(&new_item(&w, "wro-lost-2", "Dropped"))
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::OutcomeUnknown { .. }), "{e:?}");
    assert_eq!(cards_with_marker(&w, "wro-lost-2"), 1);

    w.handle.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
        1,
        Fault::DropConnection { after_apply: false },
    ));
    let e = a
        .create_item(&new_item(&w, "wro-lost-3", "Dropped before"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, PortError::OutcomeUnknown { .. }),
        "the client cannot tell: {e:?}"
    );
    assert_eq!(cards_with_marker(&w, "wro-lost-3"), 0);
    // The simulator does not log a request whose client hung up during a Delay fault,
    // so count what the adapter sent.
    assert_eq!(a.stats().writes, 3, "no POST was sent twice");
    assert_eq!(a.stats().retries, 0);

    // Idempotent requests are retried through timeouts and dropped connections.
    let card = a
        .create_item(&new_item(&w, "wro-lost-4", "Retry me"))
        .await
        .unwrap();
    w.handle.inject(FaultRule::new(
        Some("PUT"),
        Some("/1/cards"),
        1,
        Fault::Delay {
            delay: Duration::from_millis(1200),
            after_apply: true,
        },
    ));
    w.handle.inject(FaultRule::new(
        Some("GET"),
        Some("/1/boards"),
        2,
        Fault::DropConnection { after_apply: false },
    ));
    let updated = a
        .update_item(
            &card.id,
            &ItemChanges {
                title: Some("Retried".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.title, "Retried");
    assert!(a.container(&w.fx.board_id).await.is_ok());
    assert!(a.stats().retries >= 3);
}

#[tokio::test]
async fn unreachable_and_exhausted_retries_are_typed() {
    let w = world().await;
    // Nothing listens on a closed port: Unavailable (and nothing was sent, so a POST too).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = config(&w, &w.fx.tokens.full);
    c.api_root = webriskops_trello::parse_api_root(&format!("http://127.0.0.1:{port}/1")).unwrap();
    c.retry.max_retries = 1;
    let a = TrelloAdapter::new(c).unwrap();
    assert!(matches!(
        a.whoami().await.unwrap_err(),
        PortError::Unavailable { .. }
    ));
    assert!(matches!(
        a.create_item(&new_item(&w, "wro-x-1", "x"))
            .await
            .unwrap_err(),
        PortError::Unavailable { .. }
    ));

    let mut c = config(&w, &w.fx.tokens.full);
    c.retry.max_retries = 2;
    let a = TrelloAdapter::new(c).unwrap();
    w.handle
        .inject(FaultRule::new(Some("GET"), None, 3, Fault::Status(503)));
    assert!(matches!(
        a.container(&w.fx.board_id).await.unwrap_err(),
        PortError::Unavailable { .. }
    ));
    w.handle
        .inject(FaultRule::new(Some("GET"), None, 3, Fault::RateLimit429));
    assert!(matches!(
        a.container(&w.fx.board_id).await.unwrap_err(),
        PortError::RateLimited { .. }
    ));
    assert!(a.container(&w.fx.board_id).await.is_ok());

    // Plain http to a non-loopback host is refused at construction.
    let mut c = config(&w, &w.fx.tokens.full);
    c.api_root = url::Url::parse("http://api.trello.com/1").unwrap();
    let e = TrelloAdapter::new(c).unwrap_err();
    assert!(e.to_string().contains("loopback"), "{e}");
}

#[tokio::test]
async fn an_unreachable_trello_error_names_the_operation_and_keeps_the_client_error() {
    let w = world().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = config(&w, &w.fx.tokens.full);
    c.api_root = webriskops_trello::parse_api_root(&format!("http://127.0.0.1:{port}/1")).unwrap();
    c.retry.max_retries = 0;
    let a = TrelloAdapter::new(c).unwrap();
    let e = a.container(&w.fx.board_id).await.unwrap_err();
    assert!(matches!(e, PortError::Unavailable { .. }), "{e:?}");
    assert_eq!(
        (e.tracker(), e.operation()),
        (Some("trello"), Some("container"))
    );
    assert!(
        e.to_string()
            .starts_with("trello container: tracker unavailable: cannot reach Trello"),
        "{e}"
    );
    // The client's own error is the source, without the URL (which names the board).
    let mut chain = Vec::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    assert!(
        !chain.is_empty(),
        "the client error is kept as the source: {e:?}"
    );
    let chain = chain.join(": ");
    assert!(!chain.contains(&w.fx.board_id), "{chain}");
    assert!(!chain.contains("127.0.0.1"), "{chain}");
    assert!(!chain.contains(w.fx.tokens.full.as_str()), "{chain}");
}

/// Which refusals of a copy mean "the template is gone" (ADR 0006 §7): trello-sim, like
/// Trello, answers a source card that no longer exists with 400 `invalid value for
/// idCardSource`, which the adapter reports as `NotFound` (the export then creates that
/// card plainly and stops copying the group). A refusal about the card itself, here a
/// list that does not exist (`invalid value for idList`), stays `InvalidInput`: the
/// template is fine, and the group keeps copying. Neither refusal created a card.
#[tokio::test]
async fn a_copy_from_a_gone_template_is_not_found_and_other_refusals_stay_invalid_input() {
    let w = world().await;
    let fx = &w.fx;
    let a = adapter(&w, &fx.tokens.full);
    let steps: Vec<String> = vec!["a".into(), "b".into()];
    let new_template = webriskops_ports::NewStepTemplate {
        container_id: fx.board_id.clone(),
        destination_id: fx.list_id.clone(),
        key: webriskops_domain::step_group_key(&steps),
        title: "template".into(),
        body: "steps".into(),
        checklist_name: "Remediation".into(),
        steps: steps.clone(),
    };

    let kept = a.create_step_template(&new_template).await.unwrap();
    let copy = a
        .create_item_copying(&new_item(&w, "copy-ok", "Copied"), &kept.id)
        .await
        .unwrap();
    let copied = w.handle.card(copy.id.as_str()).unwrap();
    assert_eq!(
        copied.checklists[0].items.len(),
        2,
        "the control copy works"
    );

    let gone = a.create_step_template(&new_template).await.unwrap();
    w.handle.person_delete_card(&gone.id);
    let e = a
        .create_item_copying(&new_item(&w, "copy-gone", "Gone"), &gone.id)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PortError::NotFound { what, .. } if what.contains("idCardSource")),
        "{e:?}"
    );
    assert!(!e.may_have_applied());
    assert_eq!(cards_with_marker(&w, "copy-gone"), 0);

    let mut elsewhere = new_item(&w, "copy-bad-list", "Bad list");
    elsewhere.destination_id = MISSING_ID.to_owned();
    let e = a
        .create_item_copying(&elsewhere, &kept.id)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PortError::InvalidInput { message, .. } if message.contains("idList")),
        "{e:?}"
    );
    assert_eq!(cards_with_marker(&w, "copy-bad-list"), 0);
}
