//! Readiness from realistic Trello answers.
//!
//! Each test starts from what Trello actually returns (`GET /1/tokens/{token}`,
//! `GET /1/boards/{id}`, `GET /1/lists/{id}`, status and body) and turns it into
//! observations the way the Trello adapter does, then checks the ready and blocked
//! states against the Trello setup page: the code, the field to change and a fix that
//! says what to do.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use webriskops_domain::{
    evaluate, BlockedCode, BoardObservation, DeploymentMode, ListObservation, Observations,
    Permission, ProviderRecord, Readiness, Scope, TenantId, TokenObservation,
};

// Trello object ids (24 hex): the customer's workspace, board and lists, and others.
const ORG: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";
const OTHER_ORG: &str = "60aa11bb22cc33dd44ee55ff";
const BOARD: &str = "6123456789abcdef01234567";
const OTHER_BOARD: &str = "61ffffffffffffffff000001";
const LIST: &str = "6123456789abcdef0123aaaa";
const DONE_LIST: &str = "6123456789abcdef0123bbbb";
const MEMBER: &str = "5c0ffee0000000000000beef";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

// ---- What the adapter does with Trello's answers -------------------------------------

/// `GET /1/tokens/{token}?fields=all`: 200 with the token object, or 401 with a text body.
fn token_answer(status: u16, body: &str) -> TokenObservation {
    match status {
        200 => {
            let v: Value = serde_json::from_str(body).expect("token json");
            let permissions = v["permissions"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| Permission {
                            id_model: p["idModel"].as_str().unwrap_or_default().to_owned(),
                            model_type: p["modelType"].as_str().unwrap_or_default().to_owned(),
                            read: p["read"].as_bool().unwrap_or(false),
                            write: p["write"].as_bool().unwrap_or(false),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let expires_at = v["dateExpires"]
                .as_str()
                .map(|s| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
            TokenObservation::Valid {
                permissions,
                expires_at,
            }
        }
        _ => TokenObservation::Rejected {
            reason: body.trim().to_owned(),
        },
    }
}

/// `GET /1/boards/{id}?fields=name,closed,idOrganization`. Trello answers 401 for a
/// board the token may not see, so a 401 that does not refuse the token is `NoAccess`.
fn board_answer(status: u16, body: &str) -> BoardObservation {
    match status {
        200 => {
            let v: Value = serde_json::from_str(body).expect("board json");
            BoardObservation::Found {
                name: v["name"].as_str().unwrap_or_default().to_owned(),
                closed: v["closed"].as_bool().unwrap_or(false),
                organization_id: v["idOrganization"].as_str().map(str::to_owned),
            }
        }
        401 | 403 => BoardObservation::NoAccess,
        _ => BoardObservation::NotFound,
    }
}

/// `GET /1/lists/{id}?fields=name,closed,idBoard`.
fn list_answer(status: u16, body: &str) -> ListObservation {
    match status {
        200 => {
            let v: Value = serde_json::from_str(body).expect("list json");
            ListObservation::Found {
                name: v["name"].as_str().unwrap_or_default().to_owned(),
                closed: v["closed"].as_bool().unwrap_or(false),
                board_id: v["idBoard"].as_str().unwrap_or_default().to_owned(),
            }
        }
        401 | 403 => ListObservation::NoAccess,
        _ => ListObservation::NotFound,
    }
}

fn token_json(permissions: Value, date_expires: Value) -> String {
    json!({
        "id": "6555aaaabbbbccccddddeeee",
        "identifier": "WebRiskOps",
        "idMember": MEMBER,
        "dateCreated": "2026-11-01T08:00:00.000Z",
        "dateExpires": date_expires,
        "permissions": permissions,
    })
    .to_string()
}

/// The permission list of a token authorized with `scope=read,write`.
fn read_write_permissions() -> Value {
    json!([
        {"idModel": MEMBER, "modelType": "Member", "read": true, "write": true},
        {"idModel": "*", "modelType": "Board", "read": true, "write": true},
        {"idModel": "*", "modelType": "Organization", "read": true, "write": true},
    ])
}

/// The permission list of a token authorized with `scope=read`.
fn read_only_permissions() -> Value {
    json!([
        {"idModel": MEMBER, "modelType": "Member", "read": true, "write": false},
        {"idModel": "*", "modelType": "Board", "read": true, "write": false},
        {"idModel": "*", "modelType": "Organization", "read": true, "write": false},
    ])
}

fn board_json(id: &str, name: &str, closed: bool, org: Option<&str>) -> String {
    json!({"id": id, "name": name, "closed": closed, "idOrganization": org}).to_string()
}

fn list_json(id: &str, name: &str, closed: bool, board: &str) -> String {
    json!({"id": id, "name": name, "closed": closed, "idBoard": board, "pos": 16384}).to_string()
}

// ---- A ready setup, and ways to break it ------------------------------------------

fn ready_record() -> ProviderRecord {
    let mut r = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    r.workspace_id = Some(ORG.into());
    r.board_id = Some(BOARD.into());
    r.list_id = Some(LIST.into());
    r.revoke_path_confirmed = true;
    r
}

fn ready_observations() -> Observations {
    let mut o = Observations::new(
        now(),
        token_answer(200, &token_json(read_write_permissions(), Value::Null)),
    );
    o.board = Some(board_answer(
        200,
        &board_json(BOARD, "Security Remediation", false, Some(ORG)),
    ));
    o.list = Some(list_answer(200, &list_json(LIST, "To do", false, BOARD)));
    o.labels_readable = Some(true);
    o.members_readable = Some(true);
    o
}

fn the_one(r: &Readiness, code: BlockedCode) -> &webriskops_domain::BlockedState {
    let found: Vec<_> = r.blocked.iter().filter(|b| b.code == code).collect();
    assert!(
        !found.is_empty(),
        "expected {code} among {:?}",
        r.blocked.iter().map(|b| b.code).collect::<Vec<_>>()
    );
    found[0]
}

/// Asserts that `code` is blocked on `field` with a fix that names one of `words`.
fn assert_blocked(r: &Readiness, code: BlockedCode, field: &str, words: &[&str]) {
    assert!(!r.is_ready(), "a blocked record must not be ready");
    let b = r
        .blocked
        .iter()
        .find(|b| b.code == code && b.field == field)
        .unwrap_or_else(|| panic!("expected {code} on {field}, got {:?}", r.blocked));
    assert!(!b.fix.trim().is_empty(), "{code}: the fix is empty");
    assert!(
        words.iter().any(|w| b.fix.contains(w)),
        "{code}: fix {:?} names none of {words:?}",
        b.fix
    );
}

#[test]
fn a_fully_ready_record_has_no_blocked_state() {
    let r = evaluate(&ready_record(), &ready_observations());
    assert!(r.blocked.is_empty(), "{:?}", r.blocked);
    assert!(r.ready.cloud_target && r.ready.board && r.ready.list);
    assert!(r.ready.scope && r.ready.revoke_path);
    assert!(r.ready.all());
    assert!(r.is_ready());
    assert!(r.codes().is_empty());
}

#[test]
fn a_ready_record_with_a_done_list_on_the_board_is_ready() {
    let mut rec = ready_record();
    rec.done_list_id = Some(DONE_LIST.into());
    let mut obs = ready_observations();
    obs.done_list = Some(list_answer(
        200,
        &list_json(DONE_LIST, "Done", false, BOARD),
    ));
    assert!(evaluate(&rec, &obs).is_ready());
}

// ---- PROVIDER_AUTH_REQUIRED ----------------------------------------------------------

#[test]
fn no_token_requires_auth() {
    let mut obs = Observations::new(now(), TokenObservation::Missing);
    // Without a token nothing else can be looked up.
    obs.labels_readable = None;
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::ProviderAuthRequired,
        "token",
        &["connect Trello"],
    );
    assert!(!r.ready.scope);
}

#[test]
fn a_token_refused_with_401_invalid_token_requires_auth() {
    let obs = Observations::new(now(), token_answer(401, "invalid token"));
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::ProviderAuthRequired,
        "token",
        &["reconnect Trello"],
    );
    assert!(the_one(&r, BlockedCode::ProviderAuthRequired)
        .fix
        .contains("invalid token"));
    assert!(!r.ready.scope);
    assert!(BlockedCode::ProviderAuthRequired.suits_portable_fallback());
}

#[test]
fn an_expired_token_requires_auth_even_with_full_permissions() {
    let expired = json!("2026-11-20T09:00:00.000Z");
    let mut obs = ready_observations();
    obs.token = token_answer(200, &token_json(read_write_permissions(), expired));
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::ProviderAuthRequired,
        "token",
        &["reconnect Trello"],
    );
    assert!(the_one(&r, BlockedCode::ProviderAuthRequired)
        .fix
        .contains("expired"));
    assert!(!r.ready.scope, "an expired token has no usable scope");
    // Expiring exactly now counts as expired.
    obs.token = token_answer(
        200,
        &token_json(read_write_permissions(), json!("2026-11-21T09:00:00Z")),
    );
    assert!(evaluate(&ready_record(), &obs).has(BlockedCode::ProviderAuthRequired));
}

#[test]
fn a_token_that_expires_later_is_ready_with_a_note() {
    let mut obs = ready_observations();
    obs.token = token_answer(
        200,
        &token_json(read_write_permissions(), json!("2026-12-21T09:00:00.000Z")),
    );
    let r = evaluate(&ready_record(), &obs);
    assert!(r.is_ready(), "{:?}", r.blocked);
    assert!(r.notes.iter().any(|n| n.contains("renew")));
}

// ---- PROVIDER_SCOPE_UNAVAILABLE ------------------------------------------------------

#[test]
fn a_read_only_token_has_no_usable_scope() {
    let mut obs = ready_observations();
    obs.token = token_answer(200, &token_json(read_only_permissions(), Value::Null));
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::ProviderScopeUnavailable,
        "scopes",
        &["read,write"],
    );
    assert!(the_one(&r, BlockedCode::ProviderScopeUnavailable)
        .fix
        .contains("portable fallback"));
    assert!(!r.ready.scope);
    // The board itself is fine: only the scope is blocked.
    assert!(r.ready.board && r.ready.list);
    assert_eq!(r.codes(), [BlockedCode::ProviderScopeUnavailable]);
    assert!(BlockedCode::ProviderScopeUnavailable.suits_portable_fallback());
}

#[test]
fn a_wildcard_model_type_read_only_token_has_no_usable_scope() {
    // The example of the Trello token documentation: modelType "*".
    let perms = json!([{"idModel": "*", "modelType": "*", "read": true, "write": false}]);
    let mut obs = ready_observations();
    obs.token = token_answer(200, &token_json(perms, Value::Null));
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::ProviderScopeUnavailable,
        "scopes",
        &["read,write"],
    );
    assert!(!r.ready.scope);
}

#[test]
fn a_wildcard_model_type_read_write_token_is_ready() {
    let perms = json!([{"idModel": "*", "modelType": "*", "read": true, "write": true}]);
    let mut obs = ready_observations();
    obs.token = token_answer(200, &token_json(perms, Value::Null));
    assert!(evaluate(&ready_record(), &obs).is_ready());
}

#[test]
fn a_token_for_one_specific_board_is_ready_on_that_board() {
    let perms = json!([{"idModel": BOARD, "modelType": "Board", "read": true, "write": true}]);
    let mut obs = ready_observations();
    obs.token = token_answer(200, &token_json(perms, Value::Null));
    assert!(evaluate(&ready_record(), &obs).is_ready());
}

#[test]
fn a_token_for_another_board_cannot_see_the_chosen_one() {
    // The token names only another board; Trello answers the chosen board with 401.
    let perms = json!([
        {"idModel": OTHER_BOARD, "modelType": "Board", "read": true, "write": true},
    ]);
    let mut obs = ready_observations();
    obs.token = token_answer(200, &token_json(perms, Value::Null));
    obs.board = Some(board_answer(401, "unauthorized permission requested"));
    obs.list = Some(list_answer(401, "unauthorized permission requested"));
    obs.labels_readable = None;
    obs.members_readable = None;
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::ProviderScopeUnavailable,
        "board_id",
        &["authorize a token", "choose a board"],
    );
    assert!(!r.ready.board && !r.ready.list && !r.ready.scope);
    // Not a credentials problem: the token itself works.
    assert!(!r.has(BlockedCode::ProviderAuthRequired));
}

#[test]
fn a_token_for_another_board_is_not_allowed_on_a_public_board() {
    // A public board answers 200 to anyone, but the token grants nothing on it.
    let perms = json!([
        {"idModel": OTHER_BOARD, "modelType": "Board", "read": true, "write": true},
    ]);
    let mut obs = ready_observations();
    obs.token = token_answer(200, &token_json(perms, Value::Null));
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::ProviderScopeUnavailable,
        "board_id",
        &["authorize a token", "portable fallback"],
    );
    assert!(!r.ready.scope);
}

#[test]
fn a_token_for_the_workspace_covers_its_boards() {
    let perms = json!([{"idModel": ORG, "modelType": "Organization", "read": true, "write": true}]);
    let mut obs = ready_observations();
    obs.token = token_answer(200, &token_json(perms, Value::Null));
    assert!(evaluate(&ready_record(), &obs).is_ready());
    // The same token does not cover a board of another workspace.
    let perms = json!([
        {"idModel": OTHER_ORG, "modelType": "Organization", "read": true, "write": true},
    ]);
    obs.token = token_answer(200, &token_json(perms, Value::Null));
    let r = evaluate(&ready_record(), &obs);
    assert!(r.has(BlockedCode::ProviderScopeUnavailable));
    assert!(!r.ready.scope);
}

#[test]
fn unreadable_labels_or_members_block_the_scope() {
    // GET /1/boards/{id}/labels answered 401: labels cannot be mapped.
    let mut obs = ready_observations();
    obs.labels_readable = Some(false);
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::ProviderScopeUnavailable,
        "scopes",
        &["labels"],
    );
    assert!(!r.ready.scope);
    let mut obs = ready_observations();
    obs.members_readable = Some(false);
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::ProviderScopeUnavailable,
        "scopes",
        &["members"],
    );
    assert!(!r.ready.scope);
}

#[test]
fn a_list_the_token_cannot_see_blocks_scope_and_list() {
    let mut obs = ready_observations();
    obs.list = Some(list_answer(401, "unauthorized permission requested"));
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::ProviderScopeUnavailable,
        "list_id",
        &["choose a list"],
    );
    assert!(!r.ready.list);
    assert!(
        !r.ready.scope,
        "scope cannot be ready while the token cannot reach the list"
    );
}

#[test]
fn a_record_granting_only_read_blocks_the_scope() {
    let mut rec = ready_record();
    rec.scopes = [Scope::Read].into_iter().collect();
    let r = evaluate(&rec, &ready_observations());
    assert_blocked(
        &r,
        BlockedCode::ProviderScopeUnavailable,
        "scopes",
        &["read,write"],
    );
    assert!(!r.ready.scope);
}

#[test]
fn the_account_scope_is_noted_but_not_blocking() {
    let mut rec = ready_record();
    rec.scopes.insert(Scope::Account);
    let r = evaluate(&rec, &ready_observations());
    assert!(r.is_ready());
    assert!(r.notes.iter().any(|n| n.contains("account")));
}

// ---- PROVIDER_DEPLOYMENT_UNSUPPORTED -------------------------------------------------

#[test]
fn a_base_url_is_an_unsupported_self_hosted_target() {
    let mut rec = ready_record();
    rec.base_url = Some("https://trello.intranet.example.com".into());
    let r = evaluate(&rec, &ready_observations());
    assert_blocked(
        &r,
        BlockedCode::ProviderDeploymentUnsupported,
        "base_url",
        &["clear base_url"],
    );
    assert!(!r.ready.cloud_target);
    // Even Trello's own API address: the page says leave base_url empty.
    rec.base_url = Some("https://api.trello.com/1".into());
    assert!(evaluate(&rec, &ready_observations()).has(BlockedCode::ProviderDeploymentUnsupported));
}

#[test]
fn a_blank_base_url_counts_as_empty() {
    let mut rec = ready_record();
    rec.base_url = Some("  ".into());
    let r = evaluate(&rec, &ready_observations());
    assert!(r.is_ready(), "{:?}", r.blocked);
}

#[test]
fn self_hosted_mode_is_unsupported_for_trello() {
    let mut rec = ready_record();
    rec.deployment_mode = DeploymentMode::SelfHosted;
    let r = evaluate(&rec, &ready_observations());
    assert_blocked(
        &r,
        BlockedCode::ProviderDeploymentUnsupported,
        "deployment_mode",
        &["deployment_mode to cloud"],
    );
    assert!(!r.ready.cloud_target);
}

// ---- DESTINATION_BOARD_REQUIRED ------------------------------------------------------

#[test]
fn a_missing_board_id_requires_a_board() {
    let mut rec = ready_record();
    rec.board_id = None;
    let mut obs = ready_observations();
    obs.board = None;
    let r = evaluate(&rec, &obs);
    assert_blocked(
        &r,
        BlockedCode::DestinationBoardRequired,
        "board_id",
        &["choose the board", "24 hex"],
    );
    assert!(!r.ready.board && !r.ready.list && !r.ready.scope);
    rec.board_id = Some("   ".into());
    assert!(evaluate(&rec, &obs).has(BlockedCode::DestinationBoardRequired));
}

#[test]
fn a_board_name_or_url_is_not_a_board_id() {
    // Trello would answer 400 "invalid id"; readiness catches it before asking.
    for bad in [
        "Security Remediation",
        "https://trello.com/b/AbCd1234/security",
        "AbCd1234",
    ] {
        let mut rec = ready_record();
        rec.board_id = Some(bad.into());
        let mut obs = ready_observations();
        obs.board = None;
        let r = evaluate(&rec, &obs);
        assert_blocked(
            &r,
            BlockedCode::DestinationBoardRequired,
            "board_id",
            &["24-hex"],
        );
    }
}

#[test]
fn a_closed_board_requires_another_board() {
    let mut obs = ready_observations();
    obs.board = Some(board_answer(
        200,
        &board_json(BOARD, "Old remediation", true, Some(ORG)),
    ));
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::DestinationBoardRequired,
        "board_id",
        &["reopen", "choose an open board"],
    );
    assert!(!r.ready.board && !r.ready.list && !r.ready.scope);
}

#[test]
fn a_board_that_does_not_exist_requires_another_board() {
    let mut obs = ready_observations();
    obs.board = Some(board_answer(404, "The requested resource was not found."));
    obs.list = None;
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::DestinationBoardRequired,
        "board_id",
        &["choose an existing board"],
    );
}

// ---- BOARD_NOT_IN_WORKSPACE ----------------------------------------------------------

#[test]
fn a_board_of_another_workspace_is_not_in_the_workspace() {
    let mut obs = ready_observations();
    obs.board = Some(board_answer(
        200,
        &board_json(BOARD, "Vendor board", false, Some(OTHER_ORG)),
    ));
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::BoardNotInWorkspace,
        "workspace_id",
        &["choose a board of workspace"],
    );
    assert!(the_one(&r, BlockedCode::BoardNotInWorkspace)
        .fix
        .contains(OTHER_ORG));
    assert!(!r.ready.board && !r.ready.list);
}

#[test]
fn a_personal_board_is_not_in_the_workspace() {
    let mut obs = ready_observations();
    obs.board = Some(board_answer(
        200,
        &board_json(BOARD, "My board", false, None),
    ));
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::BoardNotInWorkspace,
        "board_id",
        &["personal board", "choose a workspace board"],
    );
    assert!(!r.ready.board);
    // Also when no workspace was recorded: a personal board is never customer-owned.
    let mut rec = ready_record();
    rec.workspace_id = None;
    assert!(evaluate(&rec, &obs).has(BlockedCode::BoardNotInWorkspace));
}

// ---- DESTINATION_LIST_REQUIRED -------------------------------------------------------

#[test]
fn a_missing_list_id_requires_a_list() {
    let mut rec = ready_record();
    rec.list_id = None;
    let mut obs = ready_observations();
    obs.list = None;
    let r = evaluate(&rec, &obs);
    assert_blocked(
        &r,
        BlockedCode::DestinationListRequired,
        "list_id",
        &["choose the list"],
    );
    assert!(!r.ready.list);
    // The board is still fine.
    assert!(r.ready.board);
}

#[test]
fn a_list_name_is_not_a_list_id() {
    let mut rec = ready_record();
    rec.list_id = Some("To do".into());
    let mut obs = ready_observations();
    obs.list = None;
    let r = evaluate(&rec, &obs);
    assert_blocked(
        &r,
        BlockedCode::DestinationListRequired,
        "list_id",
        &["24-hex"],
    );
    assert!(!r.ready.list);
}

// ---- LIST_NOT_ON_BOARD ---------------------------------------------------------------

#[test]
fn a_closed_list_is_not_usable() {
    let mut obs = ready_observations();
    obs.list = Some(list_answer(200, &list_json(LIST, "Backlog", true, BOARD)));
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::ListNotOnBoard,
        "list_id",
        &["restore it", "choose an open list"],
    );
    assert!(!r.ready.list);
}

#[test]
fn a_list_of_another_board_is_not_on_the_board() {
    let mut obs = ready_observations();
    obs.list = Some(list_answer(
        200,
        &list_json(LIST, "To do", false, OTHER_BOARD),
    ));
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::ListNotOnBoard,
        "list_id",
        &["choose a list of board"],
    );
    assert!(the_one(&r, BlockedCode::ListNotOnBoard)
        .fix
        .contains(OTHER_BOARD));
    assert!(!r.ready.list);
}

#[test]
fn a_list_that_does_not_exist_is_not_on_the_board() {
    let mut obs = ready_observations();
    obs.list = Some(list_answer(404, "The requested resource was not found."));
    let r = evaluate(&ready_record(), &obs);
    assert_blocked(
        &r,
        BlockedCode::ListNotOnBoard,
        "list_id",
        &["choose a list"],
    );
    assert!(!r.ready.list);
}

#[test]
fn a_done_list_on_another_board_blocks_the_list() {
    let mut rec = ready_record();
    rec.done_list_id = Some(DONE_LIST.into());
    let mut obs = ready_observations();
    obs.done_list = Some(list_answer(
        200,
        &list_json(DONE_LIST, "Done", false, OTHER_BOARD),
    ));
    let r = evaluate(&rec, &obs);
    assert_blocked(
        &r,
        BlockedCode::ListNotOnBoard,
        "done_list_id",
        &["choose a list of board"],
    );
    assert!(!r.ready.list);
    rec.done_list_id = Some("Done".into());
    let r = evaluate(&rec, &obs);
    assert_blocked(
        &r,
        BlockedCode::ListNotOnBoard,
        "done_list_id",
        &["leave it out"],
    );
}

// ---- REVOKE_PATH_UNCONFIRMED ---------------------------------------------------------

#[test]
fn an_unconfirmed_revoke_path_blocks_saving() {
    let mut rec = ready_record();
    rec.revoke_path_confirmed = false;
    let r = evaluate(&rec, &ready_observations());
    assert_blocked(
        &r,
        BlockedCode::RevokePathUnconfirmed,
        "revoke_path",
        &["revoke the token", "Applications"],
    );
    assert_eq!(r.codes(), [BlockedCode::RevokePathUnconfirmed]);
    assert!(!r.ready.revoke_path);
    // Every other state is ready: only the revoke path stands in the way.
    assert!(r.ready.cloud_target && r.ready.board && r.ready.list && r.ready.scope);
    assert!(!BlockedCode::RevokePathUnconfirmed.suits_portable_fallback());
}

// ---- Ready states one by one ---------------------------------------------------------

#[test]
fn each_ready_state_holds_in_the_happy_path_and_falls_with_its_precondition() {
    let happy = evaluate(&ready_record(), &ready_observations());
    type State = fn(&Readiness) -> bool;
    type Break = fn(&mut ProviderRecord, &mut Observations);
    let cases: [(&str, State, Break); 5] = [
        (
            "cloud_target",
            |r| r.ready.cloud_target,
            |rec, _| {
                rec.base_url = Some("https://trello.example.internal".into());
            },
        ),
        (
            "board",
            |r| r.ready.board,
            |_, obs| {
                obs.board = Some(board_answer(
                    200,
                    &board_json(BOARD, "Vendor", false, Some(OTHER_ORG)),
                ));
            },
        ),
        (
            "list",
            |r| r.ready.list,
            |_, obs| {
                obs.list = Some(list_answer(
                    200,
                    &list_json(LIST, "To do", false, OTHER_BOARD),
                ));
            },
        ),
        (
            "scope",
            |r| r.ready.scope,
            |_, obs| {
                obs.token = token_answer(200, &token_json(read_only_permissions(), Value::Null));
            },
        ),
        (
            "revoke_path",
            |r| r.ready.revoke_path,
            |rec, _| {
                rec.revoke_path_confirmed = false;
            },
        ),
    ];
    for (name, state, breaks) in cases {
        assert!(state(&happy), "{name} should be ready in the happy path");
        let (mut rec, mut obs) = (ready_record(), ready_observations());
        breaks(&mut rec, &mut obs);
        let r = evaluate(&rec, &obs);
        assert!(
            !state(&r),
            "{name} should fall when its precondition breaks"
        );
        assert!(
            !r.is_ready(),
            "{name}: a broken precondition must block saving"
        );
        assert!(!r.blocked.is_empty(), "{name}: the reason must be shown");
    }
}

#[test]
fn unlooked_up_destinations_are_not_ready_but_not_blocked_either() {
    // A token was checked but the board and list were not fetched yet.
    let mut obs = ready_observations();
    obs.board = None;
    obs.list = None;
    let r = evaluate(&ready_record(), &obs);
    assert!(!r.ready.board && !r.ready.list && !r.ready.scope);
    assert!(!r.is_ready(), "readiness is computed, never assumed");
}

#[test]
fn every_blocked_state_names_a_field_and_a_fix_and_codes_follow_the_path() {
    // Everything wrong at once.
    let mut rec = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    rec.base_url = Some("https://trello.example.internal".into());
    rec.deployment_mode = DeploymentMode::SelfHosted;
    let obs = Observations::new(
        now() - Duration::days(1),
        token_answer(401, "invalid token"),
    );
    let r = evaluate(&rec, &obs);
    assert_eq!(
        r.codes(),
        [
            BlockedCode::ProviderDeploymentUnsupported,
            BlockedCode::ProviderAuthRequired,
            BlockedCode::DestinationBoardRequired,
            BlockedCode::DestinationListRequired,
            BlockedCode::RevokePathUnconfirmed,
        ]
    );
    for b in &r.blocked {
        assert!(!b.field.is_empty() && !b.fix.trim().is_empty(), "{b:?}");
    }
    assert_eq!(r.ready, Default::default());
}

#[test]
fn blocked_codes_print_as_on_the_setup_page() {
    let names: Vec<&str> = BlockedCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names,
        [
            "PROVIDER_DEPLOYMENT_UNSUPPORTED",
            "PROVIDER_AUTH_REQUIRED",
            "DESTINATION_BOARD_REQUIRED",
            "DESTINATION_TEAM_REQUIRED",
            "BOARD_NOT_IN_WORKSPACE",
            "TEAM_NOT_IN_WORKSPACE",
            "DESTINATION_LIST_REQUIRED",
            "DESTINATION_STATE_REQUIRED",
            "LIST_NOT_ON_BOARD",
            "STATE_NOT_IN_TEAM",
            "PROVIDER_SCOPE_UNAVAILABLE",
            "REVOKE_PATH_UNCONFIRMED",
        ]
    );
    for c in BlockedCode::ALL {
        assert_eq!(serde_json::to_value(c).unwrap(), json!(c.as_str()));
        assert_eq!(c.to_string(), c.as_str());
    }
}

/// `export --fallback auto` writes files for every code files can stand in for, and
/// never for an unfinished setup (the revoke path), alone or mixed with others.
#[test]
fn auto_fallback_applies_to_exactly_the_codes_files_can_stand_in_for() {
    use webriskops_domain::{BlockedState, Readiness, ReadyStates};
    let expected = [
        (BlockedCode::ProviderAuthRequired, true),
        (BlockedCode::ProviderScopeUnavailable, true),
        (BlockedCode::ProviderDeploymentUnsupported, true),
        (BlockedCode::DestinationBoardRequired, true),
        (BlockedCode::DestinationListRequired, true),
        (BlockedCode::BoardNotInWorkspace, true),
        (BlockedCode::ListNotOnBoard, true),
        (BlockedCode::DestinationTeamRequired, true),
        (BlockedCode::DestinationStateRequired, true),
        (BlockedCode::TeamNotInWorkspace, true),
        (BlockedCode::StateNotInTeam, true),
        (BlockedCode::RevokePathUnconfirmed, false),
    ];
    assert_eq!(
        expected.len(),
        BlockedCode::ALL.len(),
        "every code has an expectation"
    );
    let state = |code| BlockedState {
        code,
        field: "f".into(),
        fix: "x".into(),
    };
    for (code, applies) in expected {
        let r = Readiness {
            ready: ReadyStates::default(),
            blocked: vec![state(code)],
            notes: vec![],
        };
        assert_eq!(r.portable_fallback_applies(), applies, "{code}");
        let mixed = Readiness {
            blocked: vec![state(code), state(BlockedCode::RevokePathUnconfirmed)],
            ..r.clone()
        };
        assert!(
            !mixed.portable_fallback_applies(),
            "{code} with an unconfirmed revoke path"
        );
    }
    let ready = Readiness {
        ready: ReadyStates::default(),
        blocked: vec![],
        notes: vec![],
    };
    assert!(
        !ready.portable_fallback_applies(),
        "nothing blocked, nothing to fall back from"
    );
}

/// Trello's rules live in `readiness::trello`, and every path callers already use names the
/// same items: the crate root, `readiness::…`, and the provider's own module. Checking a
/// Trello record through the neutral entry point gives what Trello's rules give.
#[test]
fn trello_rules_are_reachable_at_every_path_and_through_the_neutral_entry_point() {
    use webriskops_domain::readiness::{self, trello, TrackerObservations};
    let mut record = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    record.board_id = Some(BOARD.into());
    record.list_id = Some(LIST.into());
    // The same type at three paths: each binding only compiles if they are one type.
    let root: Observations = trello::Observations::new(now(), TokenObservation::Missing);
    let via_readiness: readiness::Observations = root.clone();
    let rules: [fn(&ProviderRecord, &trello::Observations) -> Readiness; 3] =
        [evaluate, readiness::evaluate, trello::evaluate];
    let expected = trello::evaluate(&record, &root);
    assert!(
        expected.has(BlockedCode::ProviderAuthRequired),
        "{expected:?}"
    );
    for rule in rules {
        assert_eq!(rule(&record, &via_readiness), expected);
    }
    assert_eq!(
        readiness::check(&record, &TrackerObservations::Trello(root)),
        expected
    );
    let _: [trello::BoardList; 0] = [];
    let _: Option<(
        readiness::Permission,
        trello::BoardObservation,
        trello::ListObservation,
    )> = None::<(Permission, BoardObservation, ListObservation)>;
}
