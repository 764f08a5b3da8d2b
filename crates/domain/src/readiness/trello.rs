//! Trello's readiness rules: the setup path `cloud target → board → list → scope →
//! revoke path`, in Trello's words, and the observation types the Trello adapter fills
//! (the token's permissions, the board, the lists).
//!
//! The neutral types and the one entry point, [`check`](super::check), are in the parent
//! module; [`evaluate`] is what it calls for a Trello record. Facts:
//! `vendor/trello/FACTS.md` (token permissions, 401 for ids the token cannot see).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    block, check_cloud_target, choices, BlockedCode, BlockedState, Readiness, ReadyStates,
};
use crate::ids::TrelloId;
use crate::provider::{ProviderKey, ProviderRecord, Scope};
use crate::text::echo_untrusted;

/// One entry of a token's permission list (Trello's `GET /tokens/{token}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// The object id the permission is about, or `*` for all of that type.
    pub id_model: String,
    /// `board`, `organization`, `member`, `enterprise` or `*`; compared case-insensitively.
    pub model_type: String,
    pub read: bool,
    pub write: bool,
}

impl Permission {
    fn covers(&self, kind: &str, id: &str) -> bool {
        let t = self.model_type.to_ascii_lowercase();
        (t == "*" || t == kind) && (self.id_model == "*" || self.id_model == id)
    }
}

/// What the tracker said about the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TokenObservation {
    /// No token was provided or stored.
    Missing,
    /// The tracker refused it (invalid, revoked, or expired without saying so).
    Rejected { reason: String },
    /// The token works, with these permissions and this expiry.
    Valid {
        permissions: Vec<Permission>,
        expires_at: Option<DateTime<Utc>>,
    },
}

/// What the tracker said about the chosen board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BoardObservation {
    Found {
        name: String,
        closed: bool,
        organization_id: Option<String>,
    },
    /// The id is well formed but no such board exists.
    NotFound,
    /// The board exists or may exist, but this token may not see it (Trello answers 401).
    NoAccess,
}

/// What the tracker said about a chosen list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ListObservation {
    Found {
        name: String,
        closed: bool,
        board_id: String,
    },
    NotFound,
    NoAccess,
}

/// One list of the chosen board, as the tracker listed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardList {
    pub id: String,
    pub name: String,
    pub closed: bool,
}

/// Everything gathered from the tracker for one readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observations {
    /// When the observations were made; token expiry is compared with it.
    pub now: DateTime<Utc>,
    pub token: TokenObservation,
    /// `None` when not looked up (no board chosen, or the token was refused).
    pub board: Option<BoardObservation>,
    pub list: Option<ListObservation>,
    pub done_list: Option<ListObservation>,
    /// Whether the board's labels could be read (`None`: not tried).
    pub labels_readable: Option<bool>,
    /// Whether the board's members could be read (`None`: not tried).
    pub members_readable: Option<bool>,
    /// The chosen board's lists, when they could be read (`None`: not tried or not
    /// readable). A list the token cannot see that is not among them is on another
    /// board, not out of scope.
    #[serde(default)]
    pub board_lists: Option<Vec<BoardList>>,
}

impl Observations {
    /// What was seen of the chosen container (the board), by its tracker-neutral name,
    /// for the service that gathers these observations.
    pub fn container_mut(&mut self) -> &mut Option<BoardObservation> {
        &mut self.board
    }

    /// Observations with nothing looked up yet.
    pub fn new(now: DateTime<Utc>, token: TokenObservation) -> Self {
        Self {
            now,
            token,
            board: None,
            list: None,
            done_list: None,
            labels_readable: None,
            members_readable: None,
            board_lists: None,
        }
    }
}

/// Checks whether `id` is a valid destination id for the provider.
fn id_well_formed(provider: ProviderKey, id: &str) -> bool {
    match provider {
        ProviderKey::TrelloCloud => TrelloId::new(id).is_ok(),
        ProviderKey::LinearCloud => !id.trim().is_empty(),
    }
}

/// Computes ready and blocked states from a record and what the tracker answered.
///
/// Pure and total: any combination of inputs gives an answer, never a panic.
pub fn evaluate(record: &ProviderRecord, obs: &Observations) -> Readiness {
    let mut blocked = Vec::new();
    let mut notes = Vec::new();
    let mut ready = ReadyStates::default();

    // 1. Cloud target.
    let provider = record.provider_key;
    ready.cloud_target = check_cloud_target(record, &mut blocked);

    // 2. Credentials.
    let permissions: Option<&[Permission]> = match &obs.token {
        TokenObservation::Missing => {
            block(
                &mut blocked,
                BlockedCode::ProviderAuthRequired,
                "token",
                "connect Trello: create a token with scope read,write (see the authorize URL) and provide it",
            );
            None
        }
        TokenObservation::Rejected { reason } => {
            block(
                &mut blocked,
                BlockedCode::ProviderAuthRequired,
                "token",
                format!("reconnect Trello: the token was refused ({reason}); create a new one"),
            );
            None
        }
        TokenObservation::Valid {
            expires_at: Some(at),
            ..
        } if *at <= obs.now => {
            block(
                &mut blocked,
                BlockedCode::ProviderAuthRequired,
                "token",
                format!("reconnect Trello: the token expired at {}", at.to_rfc3339()),
            );
            None
        }
        TokenObservation::Valid {
            permissions,
            expires_at,
        } => {
            if let Some(at) = expires_at {
                notes.push(format!(
                    "the token expires at {}; plan to renew it",
                    at.to_rfc3339()
                ));
            }
            Some(permissions.as_slice())
        }
    };

    // 3. Board.
    let mut board_org: Option<&str> = None;
    let mut board_visible = false;
    match record.board_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => block(
            &mut blocked,
            BlockedCode::DestinationBoardRequired,
            "board_id",
            "choose the board for remediation cards (its id is 24 hex characters)",
        ),
        Some(id) if !id_well_formed(provider, id) => block(
            &mut blocked,
            BlockedCode::DestinationBoardRequired,
            "board_id",
            format!("{id:?} is not a board id: use the 24-hex id (add .json to the board URL to see it)"),
        ),
        Some(_) => match &obs.board {
            None => {}
            Some(BoardObservation::NotFound) => block(
                &mut blocked,
                BlockedCode::DestinationBoardRequired,
                "board_id",
                "no board has this id: choose an existing board",
            ),
            Some(BoardObservation::NoAccess) => block(
                &mut blocked,
                BlockedCode::ProviderScopeUnavailable,
                "board_id",
                "the token cannot see this board: authorize a token for the board's member, or choose a board it can see",
            ),
            Some(BoardObservation::Found { closed: true, name, .. }) => block(
                &mut blocked,
                BlockedCode::DestinationBoardRequired,
                "board_id",
                format!("board {name:?} is closed: reopen it in Trello or choose an open board"),
            ),
            Some(BoardObservation::Found { organization_id, name, .. }) => {
                board_visible = true;
                board_org = organization_id.as_deref();
                let wanted = record.workspace_id.as_deref().map(str::trim).filter(|s| !s.is_empty());
                match (wanted, organization_id.as_deref()) {
                    (_, None) => block(
                        &mut blocked,
                        BlockedCode::BoardNotInWorkspace,
                        "board_id",
                        format!("board {name:?} is a personal board: move it into the customer's workspace or choose a workspace board"),
                    ),
                    (Some(w), Some(o)) if w != o => block(
                        &mut blocked,
                        BlockedCode::BoardNotInWorkspace,
                        "workspace_id",
                        format!("board {name:?} belongs to workspace {o}, not {w}: choose a board of workspace {w}"),
                    ),
                    _ => ready.board = true,
                }
            }
        },
    }

    // 4. Lists.
    let board_id = record.board_id.as_deref().unwrap_or_default().trim();
    let mut list_ok = false;
    match record
        .list_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => block(
            &mut blocked,
            BlockedCode::DestinationListRequired,
            "list_id",
            "choose the list where new cards go",
        ),
        Some(id) if !id_well_formed(provider, id) => block(
            &mut blocked,
            BlockedCode::DestinationListRequired,
            "list_id",
            format!("{id:?} is not a list id: use the 24-hex id of a list on the board"),
        ),
        Some(id) => {
            list_ok = check_list(&mut blocked, "list_id", id, obs, board_id);
        }
    }
    if let Some(done) = record
        .done_list_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if !id_well_formed(provider, done) {
            list_ok = false;
            block(
                &mut blocked,
                BlockedCode::ListNotOnBoard,
                "done_list_id",
                format!("{done:?} is not a list id: use the 24-hex id of a list on the board, or leave it out to archive"),
            );
        } else if !check_list(&mut blocked, "done_list_id", done, obs, board_id) {
            list_ok = false;
        }
    }
    ready.list = list_ok && ready.board;

    // 5. Scope.
    let granted_rw = record.scopes.contains(&Scope::Read) && record.scopes.contains(&Scope::Write);
    if record.scopes.contains(&Scope::Account) {
        notes.push("the account scope is not needed: a read,write token is enough".into());
    }
    if let Some(perms) = permissions {
        let covers = |kind: &str, id: &str, write: bool| {
            perms
                .iter()
                .any(|p| p.covers(kind, id) && p.read && (!write || p.write))
        };
        let board_rw = !board_id.is_empty()
            && (covers("board", board_id, true)
                || board_org.is_some_and(|o| covers("organization", o, true)));
        let board_r = !board_id.is_empty()
            && (covers("board", board_id, false)
                || board_org.is_some_and(|o| covers("organization", o, false)));
        let mut scope_ok = granted_rw;
        if !granted_rw {
            block(
                &mut blocked,
                BlockedCode::ProviderScopeUnavailable,
                "scopes",
                "the record grants less than read,write: authorize a token with scope read,write",
            );
        }
        if board_visible || !board_id.is_empty() && obs.board.is_some() {
            if board_r && !board_rw {
                scope_ok = false;
                block(
                    &mut blocked,
                    BlockedCode::ProviderScopeUnavailable,
                    "scopes",
                    "the token is read-only: authorize a new token with scope read,write, or choose the portable fallback",
                );
            } else if !board_r && board_visible {
                scope_ok = false;
                block(
                    &mut blocked,
                    BlockedCode::ProviderScopeUnavailable,
                    "board_id",
                    "the token is not allowed on this board: authorize a token that covers it, or choose the portable fallback",
                );
            }
        }
        if obs.labels_readable == Some(false) {
            scope_ok = false;
            block(
                &mut blocked,
                BlockedCode::ProviderScopeUnavailable,
                "scopes",
                "the token cannot read the board's labels: authorize read access to the board",
            );
        }
        if obs.members_readable == Some(false) {
            scope_ok = false;
            block(
                &mut blocked,
                BlockedCode::ProviderScopeUnavailable,
                "scopes",
                "the token cannot read the board's members: authorize read access to the board",
            );
        }
        ready.scope = scope_ok && board_visible && board_rw;
    }
    // The setup page: scope is ready only when the token can reach the board, the
    // lists, card fields and labels. A list the token cannot see (checked with the
    // lists above) is a scope problem too, so no scope block may coexist with it.
    if blocked
        .iter()
        .any(|b| b.code == BlockedCode::ProviderScopeUnavailable)
    {
        ready.scope = false;
    }

    // 6. Revoke path.
    ready.revoke_path = record.revoke_path_confirmed;
    if !record.revoke_path_confirmed {
        block(
            &mut blocked,
            BlockedCode::RevokePathUnconfirmed,
            "revoke_path",
            "confirm you know how to revoke the token (Revoke in WebRiskOps, or Trello account settings → Applications)",
        );
    }

    // A scope problem seen twice (e.g. read-only and labels) reads once per field.
    blocked.dedup_by(|a, b| a.code == b.code && a.field == b.field);
    Readiness {
        ready,
        blocked,
        notes,
    }
}

/// "choose one of these lists: To Do (5f…), Doing (5f…)": the board's open lists, names
/// escaped and shortened; `None` when the board's lists are not known.
fn list_choices(obs: &Observations) -> Option<String> {
    let lists = obs.board_lists.as_ref()?;
    let open: Vec<&BoardList> = lists.iter().filter(|l| !l.closed).collect();
    if open.is_empty() {
        return Some("the board has no open list: add one in Trello, then choose it".into());
    }
    Some(choices(
        "lists",
        open.iter().map(|l| (l.name.as_str(), l.id.as_str())),
    ))
}

/// `fix`, then the board's lists to choose from when they are known.
fn with_choices(fix: String, obs: &Observations) -> String {
    match list_choices(obs) {
        Some(choices) => format!("{fix}; {choices}"),
        None => fix,
    }
}

fn check_list(
    blocked: &mut Vec<BlockedState>,
    field: &str,
    list_id: &str,
    obs: &Observations,
    board_id: &str,
) -> bool {
    let seen = if field == "done_list_id" {
        obs.done_list.as_ref()
    } else {
        obs.list.as_ref()
    };
    let on_board = |id: &str| {
        obs.board_lists
            .as_ref()
            .map(|ls| ls.iter().any(|l| l.id.eq_ignore_ascii_case(id)))
    };
    match seen {
        None => false,
        Some(ListObservation::NotFound) => {
            block(
                blocked,
                BlockedCode::ListNotOnBoard,
                field,
                with_choices(
                    "no list has this id on the board: choose a list of the board".into(),
                    obs,
                ),
            );
            false
        }
        // The token cannot see the list, but it can read the board's lists and the list
        // is not among them: it is on another board (or gone), whatever the token's scope.
        Some(ListObservation::NoAccess) if on_board(list_id) == Some(false) => {
            block(
                blocked,
                BlockedCode::ListNotOnBoard,
                field,
                with_choices(
                    format!(
                        "list {} is not on board {board_id}: choose a list of this board",
                        echo_untrusted(list_id)
                    ),
                    obs,
                ),
            );
            false
        }
        Some(ListObservation::NoAccess) => {
            block(
                blocked,
                BlockedCode::ProviderScopeUnavailable,
                field,
                "the token cannot see this list: choose a list on a board the token covers",
            );
            false
        }
        Some(ListObservation::Found {
            name, closed: true, ..
        }) => {
            block(
                blocked,
                BlockedCode::ListNotOnBoard,
                field,
                with_choices(
                    format!(
                        "list \"{}\" is archived: restore it in Trello or choose an open list",
                        echo_untrusted(name)
                    ),
                    obs,
                ),
            );
            false
        }
        Some(ListObservation::Found {
            name, board_id: on, ..
        }) if on != board_id => {
            block(
                blocked,
                BlockedCode::ListNotOnBoard,
                field,
                with_choices(
                    format!(
                        "list \"{}\" is on another board ({}): choose a list of board {board_id}",
                        echo_untrusted(name),
                        echo_untrusted(on)
                    ),
                    obs,
                ),
            );
            false
        }
        Some(ListObservation::Found { .. }) => true,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ids::TenantId;

    const BOARD: &str = "5f0c0c0c0c0c0c0c0c0c0c0c";
    pub(crate) const LIST: &str = "5f0c0c0c0c0c0c0c0c0c0c01";
    const ELSEWHERE: &str = "5f0c0c0c0c0c0c0c0c0c0cff";

    pub(crate) fn record(list: &str) -> ProviderRecord {
        let mut r = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
        r.board_id = Some(BOARD.into());
        r.list_id = Some(list.into());
        r.revoke_path_confirmed = true;
        r
    }

    pub(crate) fn observations(
        list: ListObservation,
        board_lists: Option<Vec<BoardList>>,
    ) -> Observations {
        let mut o = Observations::new(
            DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap(),
            TokenObservation::Valid {
                permissions: vec![Permission {
                    id_model: BOARD.into(),
                    model_type: "board".into(),
                    read: true,
                    write: true,
                }],
                expires_at: None,
            },
        );
        o.board = Some(BoardObservation::Found {
            name: "Security".into(),
            closed: false,
            organization_id: Some("org".into()),
        });
        o.list = Some(list);
        o.labels_readable = Some(true);
        o.members_readable = Some(true);
        o.board_lists = board_lists;
        o
    }

    fn lists() -> Vec<BoardList> {
        vec![
            BoardList {
                id: LIST.into(),
                name: "To Do".into(),
                closed: false,
            },
            BoardList {
                id: "5f0c0c0c0c0c0c0c0c0c0c02".into(),
                name: "Evil\u{1b}[31m\nname".into(),
                closed: false,
            },
            BoardList {
                id: "5f0c0c0c0c0c0c0c0c0c0c03".into(),
                name: "Old".into(),
                closed: true,
            },
        ]
    }

    #[test]
    fn an_invisible_list_missing_from_the_readable_board_lists_is_not_on_the_board() {
        let r = evaluate(
            &record(ELSEWHERE),
            &observations(ListObservation::NoAccess, Some(lists())),
        );
        assert_eq!(r.codes(), [BlockedCode::ListNotOnBoard], "{r:?}");
        let fix = &r.blocked[0].fix;
        assert!(
            fix.contains(&format!("list {ELSEWHERE} is not on board {BOARD}")),
            "{fix}"
        );
        assert!(
            fix.contains(&format!(
                "choose one of these lists: To Do ({LIST}), Evil\\u{{1b}}[31m\\nname (5f0c0c0c0c0c0c0c0c0c0c02)"
            )),
            "open lists, names escaped: {fix}"
        );
        assert!(
            !fix.contains("Old"),
            "archived lists are not offered: {fix}"
        );
        assert!(!fix.contains("authorize"), "{fix}");
        assert!(r.ready.scope, "scope is not what is wrong: {r:?}");
        assert!(!r.ready.list);
    }

    #[test]
    fn an_invisible_list_stays_a_scope_problem_without_the_board_lists_or_when_on_them() {
        let r = evaluate(
            &record(ELSEWHERE),
            &observations(ListObservation::NoAccess, None),
        );
        assert_eq!(r.codes(), [BlockedCode::ProviderScopeUnavailable]);
        let r = evaluate(
            &record(LIST),
            &observations(ListObservation::NoAccess, Some(lists())),
        );
        assert_eq!(r.codes(), [BlockedCode::ProviderScopeUnavailable]);
    }

    #[test]
    fn choices_are_shortened_and_counted() {
        let many: Vec<BoardList> = (0..15)
            .map(|i| BoardList {
                id: format!("5f0c0c0c0c0c0c0c0c0c0d{i:02}"),
                name: format!("{i}{}", "n".repeat(500)),
                closed: false,
            })
            .collect();
        let r = evaluate(
            &record(ELSEWHERE),
            &observations(ListObservation::NotFound, Some(many)),
        );
        let fix = &r.blocked[0].fix;
        assert!(fix.contains("… (5 more)"), "{fix}");
        assert!(fix.len() < 2_500, "{} bytes", fix.len());
        let r = evaluate(
            &record(ELSEWHERE),
            &observations(ListObservation::NotFound, Some(vec![])),
        );
        assert!(r.blocked[0].fix.contains("no open list"), "{:?}", r.blocked);
    }
}
