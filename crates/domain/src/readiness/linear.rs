//! Linear's readiness rules: the setup path `cloud target → team → workflow state →
//! scope → revoke path`, in Linear's words.
//!
//! The record's destination fields carry Linear's objects: `board_id` is the team,
//! `list_id` the workflow state new issues start in, `done_list_id` the state closed
//! findings move to (without it, the team's first `completed` state), `workspace_id` the
//! Linear workspace (organization). Facts: `vendor/linear/FACTS.md` (teams, workflow
//! state types, scopes, OAuth2 refresh).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    block, check_cloud_target, choices, BlockedCode, BlockedState, Readiness, ReadyStates,
};
use crate::provider::ProviderRecord;
use crate::text::echo_untrusted;

/// What Linear said about the credential (a personal API key or an OAuth2 access token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CredentialObservation {
    /// No key or token was provided or stored.
    Missing,
    /// Linear refused it (invalid, revoked, expired).
    Rejected { reason: String },
    /// The access token expired and refreshing it failed (the refresh token was revoked
    /// or expired): only a new authorization helps.
    RefreshFailed { reason: String },
    /// The credential works. `scopes` are the OAuth2 scopes granted (empty for a
    /// personal API key, which acts with its owner's rights); `refreshable` when a
    /// refresh token is kept, so expiry is routine rather than a block.
    Valid {
        scopes: Vec<String>,
        expires_at: Option<DateTime<Utc>>,
        refreshable: bool,
    },
}

/// A team the credential can see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamSeen {
    pub id: String,
    /// The team's key, e.g. `ENG` (issue identifiers start with it).
    pub key: String,
    pub name: String,
    /// The workspace (organization) the team belongs to.
    pub organization_id: Option<String>,
}

/// A workflow state, as Linear lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSeen {
    pub id: String,
    pub name: String,
    /// Linear's state type: `triage`, `backlog`, `unstarted`, `started`, `completed`,
    /// `canceled` or `duplicate` (a string in the schema, not an enum).
    pub kind: String,
    pub team_id: String,
    pub archived: bool,
}

impl StateSeen {
    /// Whether closing a finding may move its issue here.
    pub fn closes_work(&self) -> bool {
        matches!(self.kind.as_str(), "completed" | "canceled")
    }
}

/// Everything gathered from Linear for one readiness check. `None` means not looked up
/// (nothing chosen yet, or the credential was refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearObservations {
    /// When the observations were made; expiry is compared with it.
    pub now: DateTime<Utc>,
    pub credential: CredentialObservation,
    /// Every team the credential can see: the choices, and the way to tell "another
    /// workspace's or an invisible team" from "no such team".
    pub teams: Option<Vec<TeamSeen>>,
    /// Every workflow state of the chosen team, archived ones included.
    pub team_states: Option<Vec<StateSeen>>,
    /// The chosen state, looked up by id wherever it is (it may be another team's).
    pub state: Option<Option<StateSeen>>,
    /// The chosen done state, likewise.
    pub done_state: Option<Option<StateSeen>>,
}

impl LinearObservations {
    /// Observations with nothing looked up yet.
    pub fn new(now: DateTime<Utc>, credential: CredentialObservation) -> Self {
        Self {
            now,
            credential,
            teams: None,
            team_states: None,
            state: None,
            done_state: None,
        }
    }
}

/// Linear ids are UUIDs (`8-4-4-4-12` hex digits); team keys such as `ENG` are not ids.
pub fn is_linear_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Scopes that let the exporter create issues (FACTS: `write`, or `issues:create`, which
/// covers issues and their attachments).
fn can_create_issues(scopes: &[String]) -> bool {
    scopes.is_empty()
        || scopes
            .iter()
            .any(|s| matches!(s.trim(), "write" | "issues:create"))
}

fn team_choices(teams: &[TeamSeen]) -> String {
    choices(
        "teams",
        teams.iter().map(|t| (t.name.as_str(), t.id.as_str())),
    )
}

fn state_choices(states: &[StateSeen], closing_only: bool) -> Option<String> {
    let open: Vec<&StateSeen> = states
        .iter()
        .filter(|s| !s.archived && (!closing_only || s.closes_work()))
        .collect();
    (!open.is_empty()).then(|| {
        choices(
            "states",
            open.iter().map(|s| (s.name.as_str(), s.id.as_str())),
        )
    })
}

fn with(fix: String, extra: Option<String>) -> String {
    match extra {
        Some(e) => format!("{fix}; {e}"),
        None => fix,
    }
}

/// Computes Linear's ready and blocked states from a record and what Linear answered.
///
/// Pure and total: any combination of inputs gives an answer, never a panic. The ready
/// states reuse the neutral [`ReadyStates`]: `board` is the team, `list` the state.
pub fn evaluate(record: &ProviderRecord, obs: &LinearObservations) -> Readiness {
    let mut blocked = Vec::new();
    let mut notes = Vec::new();
    let mut ready = ReadyStates {
        cloud_target: check_cloud_target(record, &mut blocked),
        ..ReadyStates::default()
    };

    // 2. Credentials.
    let credential_ok = check_credential(obs, &mut blocked, &mut notes);

    // 3. Team.
    let team_id = trimmed(record.board_id.as_deref());
    let mut team: Option<&TeamSeen> = None;
    match team_id {
        None => block(
            &mut blocked,
            BlockedCode::DestinationTeamRequired,
            "team_id",
            with(
                "choose the team for remediation issues from the teams the key sees".into(),
                obs.teams.as_deref().filter(|t| !t.is_empty()).map(team_choices),
            ),
        ),
        Some(id) if !is_linear_id(id) => block(
            &mut blocked,
            BlockedCode::DestinationTeamRequired,
            "team_id",
            with(
                format!(
                    "{} is not a team id: use the team's UUID, not its key or name",
                    echo_untrusted(id)
                ),
                obs.teams.as_deref().filter(|t| !t.is_empty()).map(team_choices),
            ),
        ),
        Some(id) => match obs.teams.as_deref() {
            None => {}
            Some(teams) => match teams.iter().find(|t| t.id == id) {
                None => block(
                    &mut blocked,
                    BlockedCode::ProviderScopeUnavailable,
                    "team_id",
                    format!(
                        "the key cannot see this team (it does not exist, or its owner is not a member): use a key of a member of the team, or {}",
                        if teams.is_empty() {
                            "join a team in Linear first".to_owned()
                        } else {
                            team_choices(teams)
                        }
                    ),
                ),
                Some(t) => {
                    let wanted = trimmed(record.workspace_id.as_deref());
                    match (wanted, t.organization_id.as_deref()) {
                        (Some(w), Some(o)) if w != o => block(
                            &mut blocked,
                            BlockedCode::TeamNotInWorkspace,
                            "workspace_id",
                            format!(
                                "team {} belongs to workspace {}, not {}: choose a team of workspace {}",
                                echo_untrusted(&t.name),
                                echo_untrusted(o),
                                echo_untrusted(w),
                                echo_untrusted(w)
                            ),
                        ),
                        _ => {
                            team = Some(t);
                            ready.board = true;
                        }
                    }
                }
            },
        },
    }

    // 4. States.
    let states = obs.team_states.as_deref();
    let team_name = team.map_or_else(
        || "the team".to_owned(),
        |t| echo_untrusted(&t.name).into_owned(),
    );
    let mut state_ok = match trimmed(record.list_id.as_deref()) {
        None => {
            block(
                &mut blocked,
                BlockedCode::DestinationStateRequired,
                "state_id",
                with(
                    "choose the workflow state new issues start in".into(),
                    states.and_then(|s| state_choices(s, false)),
                ),
            );
            false
        }
        Some(id) => check_state(
            &mut blocked,
            StateCheck {
                field: "state_id",
                id,
                seen: obs.state.as_ref(),
                team_id: team_id.unwrap_or_default(),
                team_name: &team_name,
                states,
                closing: false,
            },
        ),
    };
    match trimmed(record.done_list_id.as_deref()) {
        None => {
            if let Some(first_done) =
                states.and_then(|s| s.iter().find(|s| !s.archived && s.kind == "completed"))
            {
                notes.push(format!(
                    "closed findings move to {}, the team's first completed state (choose another done state to change it)",
                    echo_untrusted(&first_done.name)
                ));
            } else if states.is_some() {
                state_ok = false;
                block(
                    &mut blocked,
                    BlockedCode::DestinationStateRequired,
                    "done_state_id",
                    format!("{team_name} has no completed state: add one in Linear, or choose a canceled state as the done state"),
                );
            }
        }
        Some(id) => {
            if !check_state(
                &mut blocked,
                StateCheck {
                    field: "done_state_id",
                    id,
                    seen: obs.done_state.as_ref(),
                    team_id: team_id.unwrap_or_default(),
                    team_name: &team_name,
                    states,
                    closing: true,
                },
            ) {
                state_ok = false;
            }
        }
    }
    ready.list = state_ok && ready.board;

    // 5. Scope: the credential works, may create issues, and sees the team.
    ready.scope = credential_ok && ready.board;

    // 6. Revoke path.
    if record.revoke_path_confirmed {
        ready.revoke_path = true;
    } else {
        block(
            &mut blocked,
            BlockedCode::RevokePathUnconfirmed,
            "revoke_path",
            "confirm you know how to revoke access (Revoke in WebRiskOps; or in Linear: Settings › Security & access for API keys, Settings › Applications for authorized apps)",
        );
    }

    Readiness {
        ready,
        blocked,
        notes,
    }
}

fn trimmed(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// Returns whether the credential works and may create issues.
fn check_credential(
    obs: &LinearObservations,
    blocked: &mut Vec<BlockedState>,
    notes: &mut Vec<String>,
) -> bool {
    match &obs.credential {
        CredentialObservation::Missing => {
            block(
                blocked,
                BlockedCode::ProviderAuthRequired,
                "token",
                "connect Linear: create a personal API key (Settings › Security & access) or authorize WebRiskOps with OAuth, and provide it",
            );
            false
        }
        CredentialObservation::Rejected { reason } => {
            block(
                blocked,
                BlockedCode::ProviderAuthRequired,
                "token",
                format!(
                    "reconnect Linear: the key was refused ({}); create a new key or authorize again",
                    echo_untrusted(reason)
                ),
            );
            false
        }
        CredentialObservation::RefreshFailed { reason } => {
            block(
                blocked,
                BlockedCode::ProviderAuthRequired,
                "token",
                format!(
                    "authorize WebRiskOps in Linear again: refreshing the access token failed ({})",
                    echo_untrusted(reason)
                ),
            );
            false
        }
        CredentialObservation::Valid {
            expires_at: Some(at),
            refreshable: false,
            ..
        } if *at <= obs.now => {
            block(
                blocked,
                BlockedCode::ProviderAuthRequired,
                "token",
                format!(
                    "reconnect Linear: the access token expired at {} and cannot be refreshed",
                    at.to_rfc3339()
                ),
            );
            false
        }
        CredentialObservation::Valid {
            scopes,
            expires_at,
            refreshable,
        } => {
            match (expires_at, refreshable) {
                (Some(_), true) => notes.push(
                    "the access token expires and is refreshed automatically".into(),
                ),
                (Some(at), false) => notes.push(format!(
                    "the access token expires at {} and cannot be refreshed; plan to authorize again",
                    at.to_rfc3339()
                )),
                (None, _) => {}
            }
            if scopes.iter().any(|s| s.trim() == "admin") {
                notes.push(
                    "the admin scope is used only to register the status webhook (webriskops \
                     serve); exports need read,write (or read,issues:create)"
                        .into(),
                );
            }
            if can_create_issues(scopes) {
                true
            } else {
                block(
                    blocked,
                    BlockedCode::ProviderScopeUnavailable,
                    "token",
                    format!(
                        "the token may not create issues (scopes: {}): authorize again with scope read,write or read,issues:create",
                        echo_untrusted(&scopes.join(","))
                    ),
                );
                false
            }
        }
    }
}

struct StateCheck<'a> {
    field: &'a str,
    id: &'a str,
    /// `Some(None)`: looked up, and Linear has no state with this id that the key sees.
    seen: Option<&'a Option<StateSeen>>,
    team_id: &'a str,
    team_name: &'a str,
    states: Option<&'a [StateSeen]>,
    /// The done state: it must close work (completed or canceled).
    closing: bool,
}

/// Checks one chosen state; returns whether it is usable.
fn check_state(blocked: &mut Vec<BlockedState>, c: StateCheck<'_>) -> bool {
    let choices_here = || c.states.and_then(|s| state_choices(s, c.closing));
    if !is_linear_id(c.id) {
        block(
            blocked,
            if c.closing {
                BlockedCode::StateNotInTeam
            } else {
                BlockedCode::DestinationStateRequired
            },
            c.field,
            with(
                format!(
                    "{} is not a state id: use the state's UUID, not its name",
                    echo_untrusted(c.id)
                ),
                choices_here(),
            ),
        );
        return false;
    }
    let state = match c.seen {
        None => return false,
        Some(None) => {
            block(
                blocked,
                BlockedCode::StateNotInTeam,
                c.field,
                with(
                    format!("no state of {} has this id", c.team_name),
                    choices_here(),
                ),
            );
            return false;
        }
        Some(Some(s)) => s,
    };
    let name = echo_untrusted(&state.name);
    let problem = if state.team_id != c.team_id {
        Some(format!("state {name} belongs to another team"))
    } else if state.archived {
        Some(format!("state {name} is archived"))
    } else if c.closing && !state.closes_work() {
        Some(format!(
            "state {name} is of type {}, which does not close work: closed findings need a completed or canceled state",
            echo_untrusted(&state.kind)
        ))
    } else {
        None
    };
    match problem {
        Some(p) => {
            block(
                blocked,
                BlockedCode::StateNotInTeam,
                c.field,
                with(
                    format!("{p}: choose a state of {}", c.team_name),
                    choices_here(),
                ),
            );
            false
        }
        None => true,
    }
}
