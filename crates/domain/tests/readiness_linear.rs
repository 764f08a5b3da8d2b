//! Linear's setup path: each blocked state from a realistic Linear answer, with its fix.

use chrono::{Duration, TimeZone, Utc};
use webriskops_domain::readiness::linear::{
    evaluate, is_linear_id, CredentialObservation, LinearObservations, StateSeen, TeamSeen,
};
use webriskops_domain::{BlockedCode, ProviderKey, ProviderRecord, Readiness, TenantId};

const ORG: &str = "0f0e0d0c-0b0a-4909-8807-060504030201";
const OTHER_ORG: &str = "11111111-2222-4333-8444-555555555555";
const ENG: &str = "6a8d3f0e-1b2c-4d5e-8f90-a1b2c3d4e5f6";
const OPS: &str = "7b9e4a1f-2c3d-4e5f-9a01-b2c3d4e5f6a7";
const TODO: &str = "a0000000-0000-4000-8000-000000000001";
const DONE: &str = "a0000000-0000-4000-8000-000000000002";
const CANCELED: &str = "a0000000-0000-4000-8000-000000000003";
const STARTED: &str = "a0000000-0000-4000-8000-000000000004";
const OLD: &str = "a0000000-0000-4000-8000-000000000005";
const OPS_TODO: &str = "b0000000-0000-4000-8000-000000000001";

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap()
}

fn team(id: &str, key: &str, org: &str) -> TeamSeen {
    TeamSeen {
        id: id.into(),
        key: key.into(),
        name: format!("{key} team"),
        organization_id: Some(org.into()),
    }
}

fn state(id: &str, name: &str, kind: &str, team: &str) -> StateSeen {
    StateSeen {
        id: id.into(),
        name: name.into(),
        kind: kind.into(),
        team_id: team.into(),
        archived: false,
    }
}

fn eng_states() -> Vec<StateSeen> {
    let mut old = state(OLD, "Old", "unstarted", ENG);
    old.archived = true;
    vec![
        state(TODO, "Todo", "unstarted", ENG),
        state(STARTED, "In Progress", "started", ENG),
        state(DONE, "Done", "completed", ENG),
        state(CANCELED, "Canceled", "canceled", ENG),
        old,
    ]
}

fn find(id: &str) -> Option<StateSeen> {
    eng_states()
        .into_iter()
        .chain([state(OPS_TODO, "Todo", "unstarted", OPS)])
        .find(|s| s.id == id)
}

fn record() -> ProviderRecord {
    let mut r = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    r.provider_key = ProviderKey::LinearCloud;
    r.board_id = Some(ENG.into());
    r.list_id = Some(TODO.into());
    r.workspace_id = Some(ORG.into());
    r.revoke_path_confirmed = true;
    r
}

fn valid_key() -> CredentialObservation {
    CredentialObservation::Valid {
        scopes: vec![],
        expires_at: None,
        refreshable: false,
    }
}

/// What the adapter would observe for `record` in the standard workspace.
fn observe(r: &ProviderRecord, credential: CredentialObservation) -> LinearObservations {
    let mut o = LinearObservations::new(now(), credential);
    o.teams = Some(vec![team(ENG, "ENG", ORG), team(OPS, "OPS", ORG)]);
    if r.board_id.as_deref() == Some(ENG) {
        o.team_states = Some(eng_states());
    }
    o.state = r.list_id.as_deref().map(find);
    o.done_state = r.done_list_id.as_deref().map(find);
    o
}

fn fix_of(r: &Readiness, code: BlockedCode) -> String {
    r.blocked
        .iter()
        .find(|b| b.code == code)
        .unwrap_or_else(|| panic!("{code} not blocked: {r:?}"))
        .fix
        .clone()
}

#[test]
fn a_complete_setup_is_ready_with_the_default_done_state_named() {
    let r = record();
    let out = evaluate(&r, &observe(&r, valid_key()));
    assert!(out.is_ready(), "{out:?}");
    assert!(
        out.notes.iter().any(|n| n.contains("Done")),
        "the default done state is named: {:?}",
        out.notes
    );
}

#[test]
fn a_missing_refused_or_unrefreshable_credential_requires_auth() {
    let r = record();
    for cred in [
        CredentialObservation::Missing,
        CredentialObservation::Rejected {
            reason: "authentication error".into(),
        },
        CredentialObservation::RefreshFailed {
            reason: "invalid_grant".into(),
        },
        CredentialObservation::Valid {
            scopes: vec!["read".into(), "write".into()],
            expires_at: Some(now() - Duration::minutes(1)),
            refreshable: false,
        },
    ] {
        let out = evaluate(&r, &observe(&r, cred.clone()));
        assert_eq!(out.codes(), [BlockedCode::ProviderAuthRequired], "{cred:?}");
        assert!(!out.ready.scope);
    }
}

#[test]
fn an_expired_refreshable_token_is_routine_not_blocked() {
    let r = record();
    let out = evaluate(
        &r,
        &observe(
            &r,
            CredentialObservation::Valid {
                scopes: vec!["read".into(), "write".into()],
                expires_at: Some(now() - Duration::minutes(1)),
                refreshable: true,
            },
        ),
    );
    assert!(out.is_ready(), "{out:?}");
    assert!(out.notes.iter().any(|n| n.contains("refreshed")));
}

#[test]
fn a_read_only_token_cannot_create_issues() {
    let r = record();
    let out = evaluate(
        &r,
        &observe(
            &r,
            CredentialObservation::Valid {
                scopes: vec!["read".into()],
                expires_at: None,
                refreshable: true,
            },
        ),
    );
    assert_eq!(out.codes(), [BlockedCode::ProviderScopeUnavailable]);
    assert!(fix_of(&out, BlockedCode::ProviderScopeUnavailable).contains("read,write"));
    assert!(out.portable_fallback_applies());
    // issues:create is enough.
    let out = evaluate(
        &r,
        &observe(
            &r,
            CredentialObservation::Valid {
                scopes: vec!["read".into(), "issues:create".into()],
                expires_at: None,
                refreshable: true,
            },
        ),
    );
    assert!(out.is_ready(), "{out:?}");
}

#[test]
fn any_base_url_is_unsupported() {
    let mut r = record();
    r.base_url = Some("https://linear.example.internal".into());
    let out = evaluate(&r, &observe(&r, valid_key()));
    assert_eq!(out.codes(), [BlockedCode::ProviderDeploymentUnsupported]);
    assert!(!out.ready.cloud_target);
}

#[test]
fn no_team_or_a_team_key_asks_for_the_team_and_lists_the_choices() {
    let mut r = record();
    r.board_id = None;
    let out = evaluate(&r, &observe(&r, valid_key()));
    assert!(out.has(BlockedCode::DestinationTeamRequired), "{out:?}");
    let fix = fix_of(&out, BlockedCode::DestinationTeamRequired);
    assert!(
        fix.contains("choose the team") && fix.contains(ENG) && fix.contains(OPS),
        "{fix}"
    );

    r.board_id = Some("ENG".into());
    let out = evaluate(&r, &observe(&r, valid_key()));
    let fix = fix_of(&out, BlockedCode::DestinationTeamRequired);
    assert!(fix.contains("not its key"), "{fix}");
}

#[test]
fn a_team_the_key_cannot_see_is_a_scope_problem_with_the_visible_teams() {
    let mut r = record();
    r.board_id = Some("99999999-9999-4999-8999-999999999999".into());
    let out = evaluate(&r, &observe(&r, valid_key()));
    assert!(out.has(BlockedCode::ProviderScopeUnavailable), "{out:?}");
    assert!(
        fix_of(&out, BlockedCode::ProviderScopeUnavailable).contains("choose one of these teams")
    );
    assert!(!out.ready.board && !out.ready.scope);
}

#[test]
fn a_team_of_another_workspace_is_not_in_the_workspace() {
    let r = record();
    let mut obs = observe(&r, valid_key());
    obs.teams = Some(vec![team(ENG, "ENG", OTHER_ORG)]);
    let out = evaluate(&r, &obs);
    assert_eq!(out.codes(), [BlockedCode::TeamNotInWorkspace]);
    assert_eq!(out.blocked[0].field, "workspace_id");
}

#[test]
fn a_missing_state_asks_for_one_and_lists_the_teams_open_states() {
    let mut r = record();
    r.list_id = None;
    let out = evaluate(&r, &observe(&r, valid_key()));
    assert_eq!(out.codes(), [BlockedCode::DestinationStateRequired]);
    let fix = fix_of(&out, BlockedCode::DestinationStateRequired);
    assert!(fix.contains("Todo") && fix.contains(TODO), "{fix}");
    assert!(!fix.contains(OLD), "archived states are no choice: {fix}");
}

#[test]
fn another_teams_state_an_archived_state_or_an_unknown_one_is_not_in_the_team() {
    for (id, words) in [
        (OPS_TODO, "another team"),
        (OLD, "archived"),
        ("c0000000-0000-4000-8000-00000000dead", "no state"),
    ] {
        let mut r = record();
        r.list_id = Some(id.into());
        let out = evaluate(&r, &observe(&r, valid_key()));
        assert_eq!(out.codes(), [BlockedCode::StateNotInTeam], "{id}");
        let fix = fix_of(&out, BlockedCode::StateNotInTeam);
        assert!(
            fix.contains(words) && fix.contains("choose one of these states"),
            "{fix}"
        );
        assert!(!out.ready.list);
    }
}

#[test]
fn a_done_state_must_close_work() {
    let mut r = record();
    r.done_list_id = Some(STARTED.into());
    let out = evaluate(&r, &observe(&r, valid_key()));
    assert_eq!(out.codes(), [BlockedCode::StateNotInTeam]);
    assert_eq!(out.blocked[0].field, "done_state_id");
    let fix = fix_of(&out, BlockedCode::StateNotInTeam);
    assert!(
        fix.contains("completed or canceled") && fix.contains(DONE) && !fix.contains(TODO),
        "{fix}"
    );
    for ok in [DONE, CANCELED] {
        r.done_list_id = Some(ok.into());
        assert!(evaluate(&r, &observe(&r, valid_key())).is_ready());
    }
}

#[test]
fn an_unconfirmed_revoke_path_names_where_to_revoke_in_linear() {
    let mut r = record();
    r.revoke_path_confirmed = false;
    let out = evaluate(&r, &observe(&r, valid_key()));
    assert_eq!(out.codes(), [BlockedCode::RevokePathUnconfirmed]);
    assert!(fix_of(&out, BlockedCode::RevokePathUnconfirmed).contains("Settings"));
    assert!(!out.portable_fallback_applies());
}

#[test]
fn hostile_names_are_escaped_in_fixes() {
    let mut r = record();
    r.list_id = None;
    let mut obs = observe(&r, valid_key());
    obs.team_states = Some(vec![state(
        TODO,
        "Todo\u{1b}[31m\nforged",
        "unstarted",
        ENG,
    )]);
    let out = evaluate(&r, &obs);
    let fix = fix_of(&out, BlockedCode::DestinationStateRequired);
    assert!(!fix.chars().any(char::is_control), "{fix:?}");
}

#[test]
fn linear_ids_are_uuids() {
    assert!(is_linear_id(ENG));
    for bad in [
        "ENG",
        "",
        "6a8d3f0e1b2c4d5e8f90a1b2c3d4e5f6",
        "6a8d3f0e-1b2c-4d5e-8f90-a1b2c3d4e5fg",
    ] {
        assert!(!is_linear_id(bad), "{bad}");
    }
}
