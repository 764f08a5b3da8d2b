//! The export against the fake tracker set up like Linear: no checklists, no portable
//! notes, one assignee, Linear's title limit. Nothing routed is lost, and a person's
//! assignee is kept.

mod common;

use common::{env, finding, VecSource};
use webriskops_ports::ItemChanges;
use webriskops_service::{export, ExportOptions, ExportSummary, Silent};

fn linear_like(e: &common::Env) {
    let mut caps = webriskops_ports::Tracker::capabilities(&e.world.tracker);
    caps.checklists = false;
    caps.native_priority = true;
    caps.max_assignees = 1;
    caps.max_title_chars = 255;
    e.world.tracker.set_capabilities(caps);
}

async fn run(e: &common::Env, source: &VecSource) -> ExportSummary {
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

#[tokio::test]
async fn a_non_member_assignee_is_routed_into_the_description_and_reported() {
    let e = env();
    linear_like(&e);
    let mut f = finding("lin-ghost", &"Long title ".repeat(40));
    f.assignee = Some("ghost@example.com".into());
    let source = VecSource::new(vec![f]);
    let s = run(&e, &source).await;
    assert_eq!(s.created, 1, "{s:#?}");
    assert_eq!(
        s.routed["lin-ghost"]["assignee"],
        "description:Assign to: ghost@example.com (not a member of the board)"
    );
    assert!(
        s.routed["lin-ghost"]
            .values()
            .all(|t| !t.starts_with("note:")),
        "nothing is left to notes the tracker would drop: {:?}",
        s.routed
    );
    let item = e.world.tracker.items(&e.world.board_id).remove(0);
    assert!(item.member_ids.is_empty());
    let marker_at = item.body.find("[webriskops:finding:").unwrap();
    let at = item
        .body
        .find("**Assign to:** ghost@example.com (not a member of the board)")
        .unwrap_or_else(|| panic!("{}", item.body));
    assert!(at < marker_at, "in the exporter's part: {}", item.body);
    assert!(item.title.chars().count() <= 255, "{}", item.title);
    assert!(item.title.ends_with(" …"));

    // The line is part of the plan: a re-run writes nothing.
    e.world.tracker.clear_calls();
    let again = run(&e, &source).await;
    assert_eq!(e.world.tracker.write_count(), 0, "{again:#?}");
    assert_eq!(again.unchanged, 1);
}

#[tokio::test]
async fn an_assignee_a_person_set_is_kept_and_ours_is_routed() {
    let e = env();
    linear_like(&e);
    let mut f = finding("lin-assign", "Assigned");
    f.assignee = Some("jdoe".into());
    let source = VecSource::new(vec![f]);
    let s = run(&e, &source).await;
    assert_eq!(s.created, 1, "{s:#?}");
    let jdoe = e.world.member_ids["jdoe"].clone();
    let asmith = e.world.member_ids["asmith"].clone();
    let item = e.world.tracker.items(&e.world.board_id).remove(0);
    assert_eq!(item.member_ids, [jdoe]);

    // A person assigns the issue to someone else.
    e.world.tracker.person_update(
        &item.id,
        &ItemChanges {
            member_ids: Some(vec![asmith.clone()]),
            ..ItemChanges::default()
        },
    );
    let s = run(&e, &source).await;
    assert_eq!(
        s.routed["lin-assign"]["assignee"],
        "description:Assign to: jdoe (already assigned by a person, who is kept)"
    );
    let item = e.world.tracker.items(&e.world.board_id).remove(0);
    assert_eq!(item.member_ids, [asmith], "the person's choice stays alone");
    assert!(
        item.body
            .contains("**Assign to:** jdoe (already assigned by a person, who is kept)"),
        "{}",
        item.body
    );

    // Settled: nothing more to write.
    e.world.tracker.clear_calls();
    run(&e, &source).await;
    assert_eq!(
        e.world.tracker.write_count(),
        0,
        "{:?}",
        e.world.tracker.calls()
    );
}
