//! Readiness: from a provider record plus what the tracker answered, the five ready
//! states of Trello setup and the blocked states that stop saving or exporting.
//!
//! The rules follow the Trello setup page: cloud target → board → list → scope →
//! revoke path. Each blocked state names its code, the record field to change and a
//! one-line fix. Saving a token is allowed only when nothing is blocked.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::TrelloId;
use crate::provider::{DeploymentMode, ProviderKey, ProviderRecord, Scope};

/// A blocked-state code, as the product page names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BlockedCode {
    /// No usable credentials: missing, invalid, expired or revoked token.
    ProviderAuthRequired,
    /// The token cannot reach the board, list, cards or labels it needs.
    ProviderScopeUnavailable,
    /// A `base_url` or self-hosted mode for a cloud-only provider.
    ProviderDeploymentUnsupported,
    /// No usable board: missing, malformed or closed.
    DestinationBoardRequired,
    /// No list chosen for new cards.
    DestinationListRequired,
    /// The board is not in the customer's workspace.
    BoardNotInWorkspace,
    /// The list is on another board, does not exist, or is archived.
    ListNotOnBoard,
    /// The customer has not confirmed how to revoke the token.
    RevokePathUnconfirmed,
}

impl BlockedCode {
    /// Every code, in the order of the setup path.
    pub const ALL: &'static [BlockedCode] = &[
        BlockedCode::ProviderDeploymentUnsupported,
        BlockedCode::ProviderAuthRequired,
        BlockedCode::DestinationBoardRequired,
        BlockedCode::BoardNotInWorkspace,
        BlockedCode::DestinationListRequired,
        BlockedCode::ListNotOnBoard,
        BlockedCode::ProviderScopeUnavailable,
        BlockedCode::RevokePathUnconfirmed,
    ];

    /// The code as written in output and docs, e.g. `PROVIDER_AUTH_REQUIRED`.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockedCode::ProviderAuthRequired => "PROVIDER_AUTH_REQUIRED",
            BlockedCode::ProviderScopeUnavailable => "PROVIDER_SCOPE_UNAVAILABLE",
            BlockedCode::ProviderDeploymentUnsupported => "PROVIDER_DEPLOYMENT_UNSUPPORTED",
            BlockedCode::DestinationBoardRequired => "DESTINATION_BOARD_REQUIRED",
            BlockedCode::DestinationListRequired => "DESTINATION_LIST_REQUIRED",
            BlockedCode::BoardNotInWorkspace => "BOARD_NOT_IN_WORKSPACE",
            BlockedCode::ListNotOnBoard => "LIST_NOT_ON_BOARD",
            BlockedCode::RevokePathUnconfirmed => "REVOKE_PATH_UNCONFIRMED",
        }
    }

    /// Whether exporting to files instead (the portable fallback) is the right answer
    /// to this code: the destination exists in principle but cannot be written safely.
    pub fn suits_portable_fallback(self) -> bool {
        !matches!(self, BlockedCode::RevokePathUnconfirmed)
    }
}

impl fmt::Display for BlockedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason setup cannot continue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedState {
    pub code: BlockedCode,
    /// The record field (or input) to change, e.g. `board_id`, `token`, `base_url`.
    pub field: String,
    /// One line saying exactly what to do.
    pub fix: String,
}

/// The five ready states of the setup page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyStates {
    pub cloud_target: bool,
    pub board: bool,
    pub list: bool,
    pub scope: bool,
    pub revoke_path: bool,
}

impl ReadyStates {
    /// All five are ready.
    pub fn all(&self) -> bool {
        self.cloud_target && self.board && self.list && self.scope && self.revoke_path
    }
}

/// The outcome of a readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    pub ready: ReadyStates,
    pub blocked: Vec<BlockedState>,
    /// Advice that does not block, e.g. a token with more scope than needed.
    pub notes: Vec<String>,
}

impl Readiness {
    /// Nothing is blocked and every state is ready: the record may be saved.
    pub fn is_ready(&self) -> bool {
        self.blocked.is_empty() && self.ready.all()
    }

    /// Whether a given code is among the blocked states.
    pub fn has(&self, code: BlockedCode) -> bool {
        self.blocked.iter().any(|b| b.code == code)
    }

    /// Whether `export --fallback auto` writes the portable bundle: something is blocked,
    /// and every blocked code is one that files can stand in for.
    pub fn portable_fallback_applies(&self) -> bool {
        !self.blocked.is_empty()
            && self
                .blocked
                .iter()
                .all(|b| b.code.suits_portable_fallback())
    }

    /// The blocked codes, deduplicated, in path order.
    pub fn codes(&self) -> Vec<BlockedCode> {
        let mut codes: Vec<BlockedCode> = self.blocked.iter().map(|b| b.code).collect();
        codes.sort_by_key(|c| BlockedCode::ALL.iter().position(|x| x == c));
        codes.dedup();
        codes
    }
}

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
}

impl Observations {
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
        }
    }
}

fn block(out: &mut Vec<BlockedState>, code: BlockedCode, field: &str, fix: impl Into<String>) {
    out.push(BlockedState {
        code,
        field: field.to_owned(),
        fix: fix.into(),
    });
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
    let mut cloud_ok = true;
    if let Some(url) = record.base_url() {
        cloud_ok = false;
        block(
            &mut blocked,
            BlockedCode::ProviderDeploymentUnsupported,
            "base_url",
            format!(
                "{provider} is cloud-only: clear base_url ({url}); self-hosted {} does not exist",
                provider.tracker_name()
            ),
        );
    }
    if record.deployment_mode == DeploymentMode::SelfHosted && provider.cloud_only() {
        cloud_ok = false;
        block(
            &mut blocked,
            BlockedCode::ProviderDeploymentUnsupported,
            "deployment_mode",
            format!("{provider} is cloud-only: set deployment_mode to cloud"),
        );
    }
    ready.cloud_target = cloud_ok;

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
            "choose the board for remediation cards (--board-id, 24 hex characters)",
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
            "choose the list where new cards go (--list-id)",
        ),
        Some(id) if !id_well_formed(provider, id) => block(
            &mut blocked,
            BlockedCode::DestinationListRequired,
            "list_id",
            format!("{id:?} is not a list id: use the 24-hex id of a list on the board"),
        ),
        Some(_) => {
            list_ok = check_list(&mut blocked, "list_id", obs.list.as_ref(), board_id);
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
        } else if !check_list(
            &mut blocked,
            "done_list_id",
            obs.done_list.as_ref(),
            board_id,
        ) {
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
            "confirm you know how to revoke the token (webriskops revoke, or Trello account settings → Applications): --confirm-revoke-path",
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

fn check_list(
    blocked: &mut Vec<BlockedState>,
    field: &str,
    obs: Option<&ListObservation>,
    board_id: &str,
) -> bool {
    match obs {
        None => false,
        Some(ListObservation::NotFound) => {
            block(
                blocked,
                BlockedCode::ListNotOnBoard,
                field,
                "no list has this id on the board: choose a list of the board",
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
                format!("list {name:?} is archived: restore it in Trello or choose an open list"),
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
                format!(
                    "list {name:?} is on another board ({on}): choose a list of board {board_id}"
                ),
            );
            false
        }
        Some(ListObservation::Found { .. }) => true,
    }
}
