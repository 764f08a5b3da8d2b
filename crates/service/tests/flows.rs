//! Export and sync flows against the fake tracker: idempotence, no duplicates after
//! failures, field ownership, status events.

mod common;

use common::{env, finding, sample, VecSource};
use webriskops_domain::{StateCategory, Status, TrackerStatus};
use webriskops_fake::Fault;
use webriskops_ports::{ItemChanges, PortError};
use webriskops_service::{export, sync, ExportOptions, Silent};

async fn run(e: &common::Env, source: &VecSource) -> webriskops_service::ExportSummary {
    export(
        &e.ports,
        &e.record,
        &e.target,
        source,
        &ExportOptions::default(),
        &Silent,
    )
    .await
    .unwrap()
}

fn cards_per_finding(e: &common::Env) -> std::collections::HashMap<String, usize> {
    let mut m = std::collections::HashMap::new();
    for item in e.world.tracker.items(&e.world.board_id) {
        if let Some(f) = item.finding_id {
            *m.entry(f.to_string()).or_insert(0) += 1;
        }
    }
    m
}

#[tokio::test]
async fn sample_export_twice_writes_nothing_the_second_time() {
    let e = env();
    let source = VecSource::new(sample());
    let first = run(&e, &source).await;
    // 12 findings: 3 are closed without a card (skipped), 9 are created.
    assert_eq!((first.created, first.skipped), (9, 3), "{first:#?}");
    assert!(first.failed.is_empty());
    assert!(cards_per_finding(&e).values().all(|n| *n == 1));
    e.world.tracker.clear_calls();
    let second = run(&e, &source).await;
    assert_eq!(
        e.world.tracker.write_count(),
        0,
        "an unchanged re-export must not write: {:?}",
        e.world.tracker.calls()
    );
    assert_eq!(
        (
            second.created,
            second.updated,
            second.unchanged,
            second.skipped
        ),
        (0, 0, 9, 3)
    );
    assert_eq!(second.requests.writes, 0);
}

#[tokio::test]
async fn routing_uses_members_labels_and_checklist_fallbacks() {
    let e = env();
    let source = VecSource::new(sample());
    let s = run(&e, &source).await;
    let routed = &s.routed["wro-f-0004"];
    assert_eq!(
        routed["assignee"],
        "checklist:Assign to someone-not-on-the-board (not a member of the board)"
    );
    assert!(s.routed["wro-f-0001"]["assignee"].starts_with("member:"));
    assert!(routed["priority"].starts_with("new_label:"));
    let card = e
        .world
        .tracker
        .items(&e.world.board_id)
        .into_iter()
        .find(|i| i.finding_id.as_ref().unwrap().as_str() == "wro-f-0004")
        .unwrap();
    let steps: Vec<String> = card.checklists.unwrap()[0]
        .items
        .iter()
        .map(|i| i.name.clone())
        .collect();
    assert_eq!(
        steps,
        [
            "Upgrade jQuery to 3.7+",
            "Retest plugins",
            "Assign to someone-not-on-the-board (not a member of the board)"
        ]
    );
    assert!(s.labels_created.contains(&"severity: high".to_string()));
    // Each label is created once, however many cards carry it.
    assert_eq!(
        e.world.tracker.count("create_label"),
        s.labels_created.len()
    );
}

#[tokio::test]
async fn a_new_card_costs_steps_plus_two_requests() {
    let e = env();
    let mut f = finding("wro-cost", "Cost");
    f.component = None;
    e.world
        .tracker
        .add_label(&e.world.board_id, "severity: high", Some("orange"));
    e.world.tracker.add_label(&e.world.board_id, "P2", None);
    let source = VecSource::new(vec![f]);
    let s = run(&e, &source).await;
    assert_eq!(s.created, 1);
    assert_eq!(
        s.requests.writes,
        2 + 2,
        "k=2 steps → create + checklist + 2 items"
    );
}

#[tokio::test]
async fn lost_ledger_adopts_existing_cards_instead_of_duplicating() {
    let e = env();
    let source = VecSource::new(sample());
    run(&e, &source).await;
    e.store.wipe_ledger();
    e.world.tracker.clear_calls();
    let s = run(&e, &source).await;
    assert_eq!(s.created, 0);
    assert_eq!(e.world.tracker.write_count(), 0);
    assert!(cards_per_finding(&e).values().all(|n| *n == 1));
}

#[tokio::test]
async fn timed_out_create_that_succeeded_is_found_not_repeated() {
    let e = env();
    e.world.tracker.inject(Fault {
        method: Some("create_item"),
        times: 1,
        error: PortError::OutcomeUnknown {
            context: Default::default(),
            message: "timed out".into(),
        },
        apply_first: true,
    });
    let source = VecSource::new(vec![finding("wro-timeout", "Slow create")]);
    let s = run(&e, &source).await;
    assert_eq!(s.created, 1, "{s:#?}");
    assert!(s.failed.is_empty());
    assert_eq!(cards_per_finding(&e)["wro-timeout"], 1);
    assert_eq!(
        e.world.tracker.count("create_item"),
        1,
        "the create must not be sent again"
    );
    let card = &e.world.tracker.items(&e.world.board_id)[0];
    assert_eq!(
        card.checklists.as_ref().unwrap()[0].items.len(),
        2,
        "the checklist is still added"
    );
}

/// The adapter is the one place that retries: a create whose outcome is unknown and
/// whose marker the board does not show is reported, not sent again by the service; the
/// next export looks for the marker and creates the card once.
#[tokio::test]
async fn timed_out_create_found_absent_is_not_resent_and_a_rerun_creates_it() {
    let e = env();
    e.world.tracker.inject(Fault {
        method: Some("create_item"),
        times: 1,
        error: PortError::OutcomeUnknown {
            context: Default::default(),
            message: "connection reset".into(),
        },
        apply_first: false,
    });
    let source = VecSource::new(vec![finding("wro-reset", "Reset")]);
    let s = run(&e, &source).await;
    assert_eq!((s.created, s.failed_count), (0, 1), "{:?}", s.failed);
    assert_eq!(s.failed[0].kind, "outcome_unknown");
    assert!(
        s.failed[0].error.contains("run the export again"),
        "{}",
        s.failed[0].error
    );
    assert_eq!(
        e.world.tracker.count("create_item"),
        1,
        "the service does not send a create again"
    );
    assert!(
        e.world.tracker.count("list_items") >= 1,
        "the unknown outcome was read back"
    );
    let s = run(&e, &source).await;
    assert_eq!(s.created, 1);
    assert_eq!(cards_per_finding(&e)["wro-reset"], 1);
    assert_eq!(e.world.tracker.count("create_item"), 2);
}

#[tokio::test]
async fn unavailable_tracker_fails_findings_and_a_rerun_converges() {
    let e = env();
    e.world.tracker.inject(Fault {
        method: Some("create_item"),
        times: 3,
        error: PortError::Unavailable {
            context: Default::default(),
            message: "503".into(),
        },
        apply_first: false,
    });
    let source = VecSource::new((0..6).map(|i| finding(&format!("wro-u{i}"), "U")).collect());
    let first = export(
        &e.ports,
        &e.record,
        &e.target,
        &source,
        &ExportOptions {
            concurrency: 1,
            ..Default::default()
        },
        &webriskops_service::Silent,
    )
    .await
    .unwrap();
    assert_eq!((first.created, first.failed_count), (3, 3));
    assert!(first.is_partial());
    let second = run(&e, &source).await;
    assert_eq!(
        (second.created, second.unchanged, second.failed_count),
        (3, 3, 0)
    );
    assert!(cards_per_finding(&e).values().all(|n| *n == 1));
    assert_eq!(cards_per_finding(&e).len(), 6);
}

#[tokio::test]
async fn duplicates_on_the_board_keep_the_oldest_and_delete_nothing() {
    let e = env();
    let source = VecSource::new(vec![finding("wro-dup", "Dup")]);
    run(&e, &source).await;
    let original = e.world.tracker.items(&e.world.board_id)[0].clone();
    let copy = e
        .world
        .tracker
        .person_create(&e.world.list_id, "copy", &original.body);
    let s = run(&e, &source).await;
    assert_eq!(s.duplicates.len(), 1);
    assert_eq!(s.duplicates[0].kept, original.id);
    assert_eq!(s.duplicates[0].others, vec![copy]);
    assert_eq!(
        e.world.tracker.items(&e.world.board_id).len(),
        2,
        "never delete"
    );
    assert_eq!(s.created, 0);
}

#[tokio::test]
async fn people_edits_stay_and_exporter_fields_are_restored() {
    let e = env();
    let source = VecSource::new(vec![finding("wro-own", "Owned title")]);
    run(&e, &source).await;
    let card = e.world.tracker.items(&e.world.board_id)[0].clone();
    let their_label = e
        .world
        .tracker
        .add_label(&e.world.board_id, "needs-vendor", None);
    let mut labels = card.label_ids.clone();
    labels.push(their_label.clone());
    e.world.tracker.person_update(
        &card.id,
        &ItemChanges {
            title: Some("renamed by a person".into()),
            body: Some(format!("{}\n\nOps note: vendor ticket 42", card.body)),
            label_ids: Some(labels),
            ..Default::default()
        },
    );
    e.world.tracker.person_tick(&card.id, "step one");
    source.edit("wro-own", |f| {
        f.severity = webriskops_domain::Severity::Critical
    });
    let s = run(&e, &source).await;
    assert_eq!(s.updated, 1, "{s:#?}");
    let after = e.world.tracker.items(&e.world.board_id)[0].clone();
    assert_eq!(after.title, "Owned title");
    assert!(after.body.ends_with("Ops note: vendor ticket 42"));
    assert!(after.body.contains("**Severity:** critical"));
    assert!(
        after.label_ids.contains(&their_label),
        "a label people added stays"
    );
    let names: Vec<String> = e.world.tracker.items(&e.world.board_id)[0]
        .label_ids
        .to_vec();
    assert_eq!(
        names.len(),
        card.label_ids.len() + 1,
        "severity label swapped, not accumulated"
    );
    assert!(
        after.checklists.unwrap()[0]
            .items
            .iter()
            .any(|i| i.name == "step one" && i.complete),
        "ticks stay"
    );
}

#[tokio::test]
async fn closing_reopening_and_person_moves() {
    let e = env();
    let source = VecSource::new(vec![finding("wro-a", "A"), finding("wro-b", "B")]);
    run(&e, &source).await;
    // WebRiskOps closes A: the card moves to Done.
    source.edit("wro-a", |f| f.status = Status::Resolved);
    let s = run(&e, &source).await;
    assert_eq!(s.closed, 1);
    let items = e.world.tracker.items(&e.world.board_id);
    let a = items
        .iter()
        .find(|i| i.finding_id.as_ref().unwrap().as_str() == "wro-a")
        .unwrap()
        .clone();
    assert_eq!(a.destination_id, e.world.done_list_id);
    // A reopens in WebRiskOps: the exporter moves it back.
    source.edit("wro-a", |f| f.status = Status::Open);
    let s = run(&e, &source).await;
    assert_eq!(s.reopened, 1);
    let a = e
        .world
        .tracker
        .items(&e.world.board_id)
        .into_iter()
        .find(|i| i.id == a.id)
        .unwrap();
    assert_eq!(a.destination_id, e.world.list_id);
    // A person archives B while its finding is open: export does not fight it...
    let b = e
        .world
        .tracker
        .items(&e.world.board_id)
        .into_iter()
        .find(|i| i.finding_id.as_ref().unwrap().as_str() == "wro-b")
        .unwrap();
    e.world.tracker.person_update(
        &b.id,
        &ItemChanges {
            archived: Some(true),
            ..Default::default()
        },
    );
    let s = run(&e, &source).await;
    assert_eq!((s.reopened, s.updated, s.unchanged), (0, 0, 2));
    // ...and sync reports it exactly once.
    let mut events = Vec::new();
    let sum = sync(
        e.ports.items.as_ref(),
        e.ports.ledger.as_ref(),
        &e.record,
        &e.target,
        chrono::Utc::now(),
        &mut |ev| {
            events.push(ev.clone());
            Ok(())
        },
    )
    .await
    .unwrap();
    assert_eq!(sum.events, 1);
    assert_eq!(events[0].finding_id.as_str(), "wro-b");
    assert_eq!(
        (events[0].previous, events[0].tracker_status),
        (TrackerStatus::Open, TrackerStatus::Archived)
    );
    let mut again = Vec::new();
    sync(
        e.ports.items.as_ref(),
        e.ports.ledger.as_ref(),
        &e.record,
        &e.target,
        chrono::Utc::now(),
        &mut |ev| {
            again.push(ev.clone());
            Ok(())
        },
    )
    .await
    .unwrap();
    assert!(again.is_empty(), "each change is emitted once");
    // A deleted card is reported as deleted, and not recreated by export.
    e.world.tracker.person_delete(&b.id);
    let mut del = Vec::new();
    sync(
        e.ports.items.as_ref(),
        e.ports.ledger.as_ref(),
        &e.record,
        &e.target,
        chrono::Utc::now(),
        &mut |ev| {
            del.push(ev.clone());
            Ok(())
        },
    )
    .await
    .unwrap();
    assert_eq!(del[0].tracker_status, TrackerStatus::Deleted);
    let s = run(&e, &source).await;
    assert_eq!((s.created, s.skipped), (0, 1));
}

#[tokio::test]
async fn dry_run_plans_and_writes_nothing() {
    let e = env();
    let source = VecSource::new(sample());
    let s = export(
        &e.ports,
        &e.record,
        &e.target,
        &source,
        &ExportOptions {
            dry_run: true,
            ..Default::default()
        },
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!(s.created, 9);
    assert_eq!(s.plan.len(), 9);
    assert_eq!(e.world.tracker.write_count(), 0);
    assert_eq!(e.store.ledger_writes(), 0);
}

#[tokio::test]
async fn invalid_findings_are_reported_and_valid_ones_continue() {
    let e = env();
    let source = VecSource::new(vec![finding("wro-ok", "ok")]);
    source
        .0
        .lock()
        .unwrap()
        .push(Err(webriskops_domain::FindingError {
            position: webriskops_domain::Position::Line(2),
            id: Some("wro-bad".into()),
            field: Some("severity".into()),
            reason: "\"urgent\" is not one of: critical, high, medium, low, info".into(),
        }));
    source
        .0
        .lock()
        .unwrap()
        .push(Ok(finding("wro-ok", "again")));
    let s = run(&e, &source).await;
    assert_eq!(s.created, 1);
    assert_eq!(s.invalid_count, 2, "a bad finding and a repeated id");
    assert!(s.is_partial());
}

#[tokio::test]
async fn sync_adopts_marked_cards_missing_from_the_ledger_without_events() {
    let e = env();
    let source = VecSource::new(vec![finding("wro-s", "S")]);
    run(&e, &source).await;
    e.store.wipe_ledger();
    let mut events = Vec::new();
    let s = sync(
        e.ports.items.as_ref(),
        e.ports.ledger.as_ref(),
        &e.record,
        &e.target,
        chrono::Utc::now(),
        &mut |ev| {
            events.push(ev.clone());
            Ok(())
        },
    )
    .await
    .unwrap();
    assert_eq!((s.adopted, s.events), (1, 0));
}

/// A step refused as unavailable (after the adapter's own retries) is not sent again by
/// the service: the finding fails, and the next export adds the missing step once.
#[tokio::test]
async fn a_checklist_step_refused_is_not_resent_by_the_service_and_a_rerun_adds_it() {
    let e = env();
    e.world.tracker.inject(Fault {
        method: Some("add_check_item"),
        times: 1,
        error: PortError::Unavailable {
            context: Default::default(),
            message: "Trello answered 503".into(),
        },
        apply_first: false,
    });
    let source = VecSource::new(vec![finding("wro-step", "Step")]);
    let s = run(&e, &source).await;
    assert_eq!(s.failed_count, 1, "{:?}", s.failed);
    assert_eq!(
        e.world.tracker.count("add_check_item"),
        2,
        "each of the two steps sent once"
    );
    let s = run(&e, &source).await;
    assert_eq!(s.failed_count, 0, "{:?}", s.failed);
    let card = &e.world.tracker.items(&e.world.board_id)[0];
    let lists = card.checklists.as_ref().unwrap();
    assert_eq!(lists.len(), 1, "one checklist");
    let names: Vec<&str> = lists[0].items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names.len(), 2, "each step once: {names:?}");
    assert_eq!(cards_per_finding(&e)["wro-step"], 1);
}

#[tokio::test]
async fn checklist_writes_whose_answer_was_lost_are_reconciled_not_repeated() {
    let e = env();
    e.world.tracker.inject(Fault {
        method: Some("create_checklist"),
        times: 1,
        error: PortError::OutcomeUnknown {
            context: Default::default(),
            message: "connection closed".into(),
        },
        apply_first: true,
    });
    e.world.tracker.inject(Fault {
        method: Some("add_check_item"),
        times: 1,
        error: PortError::OutcomeUnknown {
            context: Default::default(),
            message: "timed out".into(),
        },
        apply_first: true,
    });
    let source = VecSource::new(vec![finding("wro-cl", "Checklist")]);
    let s = run(&e, &source).await;
    assert_eq!((s.created, s.failed_count), (1, 0), "{:?}", s.failed);
    let card = &e.world.tracker.items(&e.world.board_id)[0];
    let lists = card.checklists.as_ref().unwrap();
    assert_eq!(lists.len(), 1, "one checklist, not two");
    let names: Vec<&str> = lists[0].items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["step one", "step two"], "each step once, in order");
}

#[tokio::test]
async fn refused_label_creation_routes_to_checklist_items_and_the_cards_still_go_out() {
    let e = env();
    e.world.tracker.inject(Fault {
        method: Some("create_label"),
        times: 100,
        error: PortError::PermissionDenied {
            context: Default::default(),
            message: "unauthorized permission requested".into(),
        },
        apply_first: false,
    });
    let mut f = finding("wro-nolabels", "No labels allowed");
    f.component = Some("storefront".into());
    let source = VecSource::new(vec![f]);
    let s = run(&e, &source).await;
    assert_eq!((s.created, s.failed_count), (1, 0), "{:?}", s.failed);
    assert!(s.labels_created.is_empty());
    let card = &e.world.tracker.items(&e.world.board_id)[0];
    let steps: Vec<&str> = card.checklists.as_ref().unwrap()[0]
        .items
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert!(steps.contains(&"Label wanted: P2"), "{steps:?}");
    assert!(
        steps.contains(&"Label wanted: component: storefront"),
        "{steps:?}"
    );
}

/// A source that counts how often it is opened.
#[derive(Debug)]
struct CountingSource(VecSource, std::sync::atomic::AtomicUsize);

impl webriskops_ports::FindingSource for CountingSource {
    fn open(&self) -> webriskops_ports::PortResult<webriskops_ports::FindingStream> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.open()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

#[tokio::test]
async fn an_unchanged_re_export_reads_the_file_once_and_a_changed_one_twice() {
    let e = env();
    let source = CountingSource(VecSource::new(sample()), Default::default());
    let first = export(
        &e.ports,
        &e.record,
        &e.target,
        &source,
        &ExportOptions::default(),
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!(first.created, 9);
    assert_eq!(
        source.1.swap(0, std::sync::atomic::Ordering::SeqCst),
        2,
        "plan, then apply"
    );
    let again = export(
        &e.ports,
        &e.record,
        &e.target,
        &source,
        &ExportOptions::default(),
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!(again.unchanged, 9);
    assert_eq!(
        source.1.swap(0, std::sync::atomic::Ordering::SeqCst),
        1,
        "nothing to apply: the file is not read again"
    );
    // A lost ledger is refreshed from the board without any write: that needs the second pass.
    e.store.wipe_ledger();
    e.world.tracker.clear_calls();
    let ledger_writes_before = e.store.ledger_writes();
    let adopted = export(
        &e.ports,
        &e.record,
        &e.target,
        &source,
        &ExportOptions::default(),
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!((adopted.unchanged, e.world.tracker.write_count()), (9, 0));
    assert_eq!(source.1.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(
        e.store.ledger_writes() - ledger_writes_before,
        9,
        "every card's entry is rebuilt"
    );
}

async fn sync_events(e: &common::Env) -> Vec<webriskops_domain::StatusEvent> {
    let mut events = Vec::new();
    sync(
        e.ports.items.as_ref(),
        e.ports.ledger.as_ref(),
        &e.record,
        &e.target,
        chrono::Utc::now(),
        &mut |ev| {
            events.push(ev.clone());
            Ok(())
        },
    )
    .await
    .unwrap();
    events
}

#[tokio::test]
async fn a_canceled_item_is_reported_once_as_canceled_and_not_fought() {
    let e = env();
    let source = VecSource::new(vec![finding("wro-c", "C"), finding("wro-o", "O")]);
    run(&e, &source).await;
    let c = e
        .world
        .tracker
        .items(&e.world.board_id)
        .into_iter()
        .find(|i| i.finding_id.as_ref().unwrap().as_str() == "wro-c")
        .unwrap();
    // A person closes the work without doing it (Linear's Canceled, Duplicate).
    e.world
        .tracker
        .person_move_to_category(&c.id, StateCategory::Canceled);
    let events = sync_events(&e).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].finding_id.as_str(), "wro-c");
    assert_eq!(
        (events[0].previous, events[0].tracker_status),
        (TrackerStatus::Open, TrackerStatus::Canceled)
    );
    assert_eq!(
        serde_json::to_value(&events[0]).unwrap()["tracker_status"],
        "canceled"
    );
    assert!(
        sync_events(&e).await.is_empty(),
        "reported once, then silence"
    );
    // The finding is still open in WebRiskOps: export does not reopen a person's cancel.
    e.world.tracker.clear_calls();
    let s = run(&e, &source).await;
    assert_eq!((s.reopened, s.updated, s.unchanged), (0, 0, 2), "{s:#?}");
    assert_eq!(e.world.tracker.write_count(), 0);
    assert!(
        sync_events(&e).await.is_empty(),
        "and still never reads as open"
    );
}

#[tokio::test]
async fn the_stored_fingerprint_decides_writes_not_the_trackers_rendering() {
    let e = env();
    let source = VecSource::new(vec![finding("wro-md", "Rendered")]);
    run(&e, &source).await;
    let card = e.world.tracker.items(&e.world.board_id)[0].clone();
    // The tracker re-renders the Markdown it was sent (emphasis, line endings).
    e.world.tracker.person_update(
        &card.id,
        &webriskops_ports::ItemChanges {
            body: Some(card.body.replace("**", "__").replace('\n', "\r\n")),
            ..Default::default()
        },
    );
    e.world.tracker.clear_calls();
    let s = run(&e, &source).await;
    assert_eq!((s.updated, s.unchanged), (0, 1), "{s:#?}");
    assert_eq!(
        e.world.tracker.write_count(),
        0,
        "an unchanged finding is not rewritten: {:?}",
        e.world.tracker.calls()
    );
    // When the finding changes, the card is written (and what people wrote is kept).
    source.edit("wro-md", |f| f.title = "Rendered, rescanned".into());
    let s = run(&e, &source).await;
    assert_eq!(s.updated, 1, "{s:#?}");
    let after = e.world.tracker.items(&e.world.board_id)[0].clone();
    assert_eq!(after.title, "Rendered, rescanned");
}

/// A tracker without checklists (Linear) gets the steps as a task list in the body: none is
/// dropped, no checklist call is made, a person's tick survives a later rewrite, and an
/// unchanged re-export writes nothing.
#[tokio::test]
async fn without_checklists_the_steps_travel_in_the_body_and_keep_their_ticks() {
    let e = env();
    let mut caps = webriskops_ports::Tracker::capabilities(&e.world.tracker);
    caps.checklists = false;
    e.world.tracker.set_capabilities(caps);
    let mut f = finding("steps-1", "Steps in the body");
    let source = VecSource::new(vec![f.clone()]);
    let first = run(&e, &source).await;
    assert_eq!(first.created, 1, "{first:#?}");
    assert_eq!(e.world.tracker.count("create_checklist"), 0);
    assert_eq!(e.world.tracker.count("add_check_item"), 0);
    let item = e.world.tracker.items(&e.world.board_id).remove(0);
    let marker_at = item.body.find("[webriskops:finding:").unwrap();
    for step in ["- [ ] step one", "- [ ] step two"] {
        let at = item
            .body
            .find(step)
            .unwrap_or_else(|| panic!("{step}: {}", item.body));
        assert!(at < marker_at, "the steps are in the exporter's part");
    }

    // A person ticks the first step; nothing changed in the finding: no write.
    let ticked = item.body.replace("- [ ] step one", "- [x] step one");
    e.world.tracker.person_update(
        &item.id,
        &ItemChanges {
            body: Some(ticked),
            ..ItemChanges::default()
        },
    );
    e.world.tracker.clear_calls();
    run(&e, &source).await;
    assert_eq!(e.world.tracker.write_count(), 0);

    // The finding changes: the exporter's part is rewritten, the tick stays.
    f.title = "Steps in the body, retitled".into();
    f.remediation_steps.push("step three".into());
    run(&e, &VecSource::new(vec![f])).await;
    let item = e.world.tracker.items(&e.world.board_id).remove(0);
    assert!(item.body.contains("- [x] step one"), "{}", item.body);
    assert!(item.body.contains("- [ ] step two"), "{}", item.body);
    assert!(item.body.contains("- [ ] step three"), "{}", item.body);
}

/// A tracker with native priority gets the finding's priority as a field: on create, and
/// again when the finding's priority changes; an unchanged re-export writes nothing.
#[tokio::test]
async fn native_priority_is_written_on_create_and_when_the_finding_changes() {
    let e = env();
    let mut caps = webriskops_ports::Tracker::capabilities(&e.world.tracker);
    caps.native_priority = true;
    e.world.tracker.set_capabilities(caps);
    let mut f = finding("prio-1", "Prioritised");
    run(&e, &VecSource::new(vec![f.clone()])).await;
    let item = e.world.tracker.items(&e.world.board_id).remove(0);
    assert_eq!(item.priority, Some(2), "high severity is p2");

    e.world.tracker.clear_calls();
    run(&e, &VecSource::new(vec![f.clone()])).await;
    assert_eq!(e.world.tracker.write_count(), 0);

    f.priority = Some(webriskops_domain::Priority::P1);
    let s = run(&e, &VecSource::new(vec![f])).await;
    assert_eq!(s.updated, 1, "{s:#?}");
    let item = e.world.tracker.items(&e.world.board_id).remove(0);
    assert_eq!(item.priority, Some(1));
}

/// Findings that share their steps copy one step template (ADR 0006): every item carries
/// exactly its steps, the template is found again by listing after the ledger is lost,
/// and nothing is written then.
#[tokio::test]
async fn findings_sharing_steps_copy_one_template_that_a_lost_ledger_finds_again() {
    let e = env();
    e.world.tracker.copy_step_lists();
    let findings: Vec<_> = (0..6)
        .map(|i| finding(&format!("wro-grp-{i}"), "Same rule"))
        .collect();
    let source = VecSource::new(findings);
    let s = run(&e, &source).await;
    assert_eq!(
        (s.created, s.step_templates.created, s.step_templates.copied),
        (6, 1, 6)
    );
    let items = e.world.tracker.items(&e.world.board_id);
    let templates: Vec<_> = items.iter().filter(|i| i.finding_id.is_none()).collect();
    assert_eq!(templates.len(), 1);
    assert!(templates[0].archived, "the template is never open");
    for item in items.iter().filter(|i| i.finding_id.is_some()) {
        let lists = item.checklists.as_ref().unwrap();
        assert_eq!(lists.len(), 1);
        let steps: Vec<&str> = lists[0].items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(steps[..2], ["step one", "step two"]);
        assert!(lists[0].items.iter().all(|i| !i.complete));
        assert!(!item.archived);
    }
    e.store.wipe_ledger();
    e.world.tracker.clear_calls();
    let again = run(&e, &source).await;
    assert_eq!((again.created, again.unchanged), (0, 6));
    assert_eq!(
        again.step_templates.created + again.step_templates.deleted,
        0
    );
    assert_eq!(e.world.tracker.write_count(), 0);
    assert!(cards_per_finding(&e).values().all(|n| *n == 1));
}
