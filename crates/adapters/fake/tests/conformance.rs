//! The fake passes the conformance suite every tracker adapter must pass.

use std::sync::Arc;

use webriskops_domain::ItemId;
use webriskops_fake::{FakeTracker, Fault};
use webriskops_ports::conformance::{self, Target};
use webriskops_ports::PortError;

fn target() -> (Target, FakeTracker) {
    let world = FakeTracker::standard();
    let doing = world.tracker.add_destination(&world.board_id, "Review");
    let t = Target {
        items: Arc::new(world.tracker.clone()),
        introspection: Some(Arc::new(world.tracker.clone())),
        container_id: world.board_id.clone(),
        destination_id: world.list_id.clone(),
        other_destination_id: doing,
        done_destination_id: world.done_list_id.clone(),
        missing_item_id: ItemId::new("65ffffff00000000000fffff").unwrap(),
    };
    (t, world.tracker)
}

#[tokio::test]
async fn fake_passes_the_conformance_suite() {
    let (t, _) = target();
    conformance::run_all(&t).await;
}

/// Set up as a tracker with native priority and without checklists (Linear's shape), the
/// fake passes the suite's checks for those capabilities too.
#[tokio::test]
async fn fake_with_native_priority_and_no_checklists_passes_the_suite() {
    let (t, fake) = target();
    let mut caps = webriskops_ports::Tracker::capabilities(&fake);
    caps.native_priority = true;
    caps.checklists = false;
    fake.set_capabilities(caps);
    conformance::run_all(&t).await;
}

#[tokio::test]
async fn fake_revoke_ends_access() {
    let (t, _) = target();
    conformance::revoke_ends_access(&t).await;
}

#[tokio::test]
async fn faults_fail_the_next_calls_and_can_apply_first() {
    let (t, fake) = target();
    fake.inject(Fault {
        method: Some("create_item"),
        times: 1,
        error: PortError::OutcomeUnknown {
            context: Default::default(),
            message: "timed out".into(),
        },
        apply_first: true,
    });
    let f = conformance::unique_finding("fault");
    let err = t
        .items
        .create_item(&conformance::new_item(&t, &f, "lost answer"))
        .await
        .unwrap_err();
    assert!(err.may_have_applied());
    assert_eq!(
        fake.items(&t.container_id).len(),
        1,
        "the create took effect although it failed"
    );
    fake.inject(Fault {
        method: None,
        times: 2,
        error: PortError::Unavailable {
            context: Default::default(),
            message: "503".into(),
        },
        apply_first: false,
    });
    assert!(t
        .items
        .create_item(&conformance::new_item(&t, &f, "x"))
        .await
        .is_err());
    assert!(t
        .items
        .create_item(&conformance::new_item(&t, &f, "x"))
        .await
        .is_err());
    assert!(t
        .items
        .create_item(&conformance::new_item(&t, &f, "x"))
        .await
        .is_ok());
    assert_eq!(fake.items(&t.container_id).len(), 2);
    assert_eq!(fake.count("create_item"), 4);
}

#[tokio::test]
async fn clones_share_state_and_invalid_tokens_fail() {
    let (t, fake) = target();
    let clone = fake.clone();
    let f = conformance::unique_finding("share");
    t.items
        .create_item(&conformance::new_item(&t, &f, "shared"))
        .await
        .unwrap();
    assert_eq!(clone.items(&t.container_id).len(), 1);
    clone.invalidate_token();
    let err = t
        .items
        .create_item(&conformance::new_item(&t, &f, "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::Unauthenticated { .. }));
}
