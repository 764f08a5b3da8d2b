//! Readiness gathered from a tracker (the fake) and evaluated: each code from what the
//! tracker answers.

use chrono::{Duration, Utc};
use webriskops_domain::{BlockedCode, Permission, ProviderRecord, TenantId};
use webriskops_fake::FakeTracker;
use webriskops_ports::TrackerIntrospection;
use webriskops_service::check_readiness;

fn record(w: &webriskops_fake::FakeWorld) -> ProviderRecord {
    let mut r = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    r.board_id = Some(w.board_id.clone());
    r.list_id = Some(w.list_id.clone());
    r.done_list_id = Some(w.done_list_id.clone());
    r.workspace_id = Some(w.org_id.clone());
    r.revoke_path_confirmed = true;
    r
}

async fn codes(t: &FakeTracker, r: &ProviderRecord) -> Vec<BlockedCode> {
    check_readiness(Some(t as &dyn TrackerIntrospection), r, Utc::now())
        .await
        .unwrap()
        .readiness
        .codes()
}

#[tokio::test]
async fn a_complete_record_is_ready() {
    let w = FakeTracker::standard();
    let check = check_readiness(
        Some(&w.tracker as &dyn TrackerIntrospection),
        &record(&w),
        Utc::now(),
    )
    .await
    .unwrap();
    assert!(check.readiness.is_ready(), "{:?}", check.readiness);
}

#[tokio::test]
async fn each_problem_maps_to_its_code() {
    let w = FakeTracker::standard();
    let mut r = record(&w);
    r.revoke_path_confirmed = false;
    assert_eq!(
        codes(&w.tracker, &r).await,
        [BlockedCode::RevokePathUnconfirmed]
    );

    let mut r = record(&w);
    r.board_id = None;
    r.list_id = None;
    r.done_list_id = None;
    let check = check_readiness(
        Some(&w.tracker as &dyn TrackerIntrospection),
        &r,
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        check.readiness.codes(),
        [
            BlockedCode::DestinationBoardRequired,
            BlockedCode::DestinationListRequired
        ]
    );
    assert!(
        check.boards.iter().any(|b| b.id == w.board_id),
        "boards to choose from are listed"
    );

    let mut r = record(&w);
    r.base_url = Some("https://trello.internal.example".into());
    assert!(codes(&w.tracker, &r)
        .await
        .contains(&BlockedCode::ProviderDeploymentUnsupported));

    let mut r = record(&w);
    r.workspace_id = Some("650000000000000000000abc".into());
    assert_eq!(
        codes(&w.tracker, &r).await,
        [BlockedCode::BoardNotInWorkspace]
    );

    let other_board = w.tracker.add_container("Elsewhere", Some(&w.org_id));
    let foreign_list = w.tracker.add_destination(&other_board, "Theirs");
    let mut r = record(&w);
    r.list_id = Some(foreign_list);
    assert_eq!(codes(&w.tracker, &r).await, [BlockedCode::ListNotOnBoard]);

    w.tracker.close_destination(&w.done_list_id);
    assert_eq!(
        codes(&w.tracker, &record(&w)).await,
        [BlockedCode::ListNotOnBoard]
    );
}

#[tokio::test]
async fn token_problems_map_to_auth_and_scope() {
    let w = FakeTracker::standard();
    w.tracker.set_token(
        vec![Permission {
            id_model: "*".into(),
            model_type: "Board".into(),
            read: true,
            write: false,
        }],
        None,
    );
    assert_eq!(
        codes(&w.tracker, &record(&w)).await,
        [BlockedCode::ProviderScopeUnavailable]
    );
    w.tracker.set_token(
        vec![Permission {
            id_model: "*".into(),
            model_type: "*".into(),
            read: true,
            write: true,
        }],
        Some(Utc::now() - Duration::hours(1)),
    );
    assert_eq!(
        codes(&w.tracker, &record(&w)).await,
        [BlockedCode::ProviderAuthRequired]
    );
    w.tracker.invalidate_token();
    assert_eq!(
        codes(&w.tracker, &record(&w)).await,
        [BlockedCode::ProviderAuthRequired]
    );
    let check = check_readiness(None, &record(&w), Utc::now())
        .await
        .unwrap();
    assert_eq!(check.readiness.codes(), [BlockedCode::ProviderAuthRequired]);
}
