//! Readiness, the neutral part: the ready and blocked states every provider's setup path
//! ends in, and the one entry point [`check`] that reads a tracker's answers with the rules
//! of the record's provider.
//!
//! Here: the neutral types ([`BlockedCode`], [`BlockedState`], [`ReadyStates`],
//! [`Readiness`], [`TrackerObservations`]), the entry point [`check`], and the private
//! helpers both providers' rules use (the cloud-target check, blocked-state building, the
//! "choose one of these" lists). Each provider's rules and observation types live in that
//! provider's module: [`trello`] (cloud target → board → list → scope → revoke path) and
//! [`linear`] (cloud target → team → workflow state → scope → revoke path). Trello's
//! names stay reachable here too (`readiness::evaluate`, `readiness::Observations`, …).
//!
//! Each blocked state names its code, the record field to change and a one-line fix.
//! Saving a token is allowed only when nothing is blocked.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::provider::{DeploymentMode, ProviderKey, ProviderRecord};
use crate::text::echo_untrusted;

pub mod linear;
pub mod trello;

pub use trello::{
    evaluate, BoardList, BoardObservation, ListObservation, Observations, Permission,
    TokenObservation,
};

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
    /// Linear: no usable team (missing or malformed id).
    DestinationTeamRequired,
    /// Linear: no workflow state chosen for new issues.
    DestinationStateRequired,
    /// Linear: the team is not in the customer's workspace.
    TeamNotInWorkspace,
    /// Linear: the state belongs to another team, is archived, or (for the done state) is
    /// not a completed or canceled state.
    StateNotInTeam,
}

impl BlockedCode {
    /// Every code, in the order of the setup path.
    pub const ALL: &'static [BlockedCode] = &[
        BlockedCode::ProviderDeploymentUnsupported,
        BlockedCode::ProviderAuthRequired,
        BlockedCode::DestinationBoardRequired,
        BlockedCode::DestinationTeamRequired,
        BlockedCode::BoardNotInWorkspace,
        BlockedCode::TeamNotInWorkspace,
        BlockedCode::DestinationListRequired,
        BlockedCode::DestinationStateRequired,
        BlockedCode::ListNotOnBoard,
        BlockedCode::StateNotInTeam,
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
            BlockedCode::DestinationTeamRequired => "DESTINATION_TEAM_REQUIRED",
            BlockedCode::DestinationStateRequired => "DESTINATION_STATE_REQUIRED",
            BlockedCode::TeamNotInWorkspace => "TEAM_NOT_IN_WORKSPACE",
            BlockedCode::StateNotInTeam => "STATE_NOT_IN_TEAM",
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

    /// The container state (Trello's board, Linear's team), by its tracker-neutral name.
    pub fn container(&self) -> bool {
        self.board
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

/// Lists named in a fix at most; the rest are counted.
const MAX_LISTED_CHOICES: usize = 10;

/// The first ready state, the same for every cloud-only tracker: no `base_url`, no
/// self-hosted mode.
fn check_cloud_target(record: &ProviderRecord, blocked: &mut Vec<BlockedState>) -> bool {
    let provider = record.provider_key;
    let mut cloud_ok = true;
    if let Some(url) = record.base_url() {
        cloud_ok = false;
        block(
            blocked,
            BlockedCode::ProviderDeploymentUnsupported,
            "base_url",
            format!(
                "{provider} is cloud-only: clear base_url ({}); self-hosted {} does not exist",
                echo_untrusted(url),
                provider.tracker_name()
            ),
        );
    }
    if record.deployment_mode == DeploymentMode::SelfHosted && provider.cloud_only() {
        cloud_ok = false;
        block(
            blocked,
            BlockedCode::ProviderDeploymentUnsupported,
            "deployment_mode",
            format!("{provider} is cloud-only: set deployment_mode to cloud"),
        );
    }
    cloud_ok
}

/// "choose one of these NOUN: name (id), …": at most [`MAX_LISTED_CHOICES`], the rest
/// counted, names and ids escaped and shortened.
fn choices<'a>(noun: &str, items: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let items: Vec<(&str, &str)> = items.into_iter().collect();
    let mut shown: Vec<String> = items
        .iter()
        .take(MAX_LISTED_CHOICES)
        .map(|(name, id)| format!("{} ({})", echo_untrusted(name), echo_untrusted(id)))
        .collect();
    if items.len() > MAX_LISTED_CHOICES {
        shown.push(format!("… ({} more)", items.len() - MAX_LISTED_CHOICES));
    }
    format!("choose one of these {noun}: {}", shown.join(", "))
}

fn block(out: &mut Vec<BlockedState>, code: BlockedCode, field: &str, fix: impl Into<String>) {
    out.push(BlockedState {
        code,
        field: field.to_owned(),
        fix: fix.into(),
    });
}

/// What a tracker answered for one readiness check, in its own provider's terms: the
/// one input of the neutral entry point [`check`]. Each provider's rules live in their own
/// module ([`trello::evaluate`], [`linear::evaluate`]); the service and the ports carry
/// this value without knowing which tracker it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tracker", content = "observations", rename_all = "snake_case")]
pub enum TrackerObservations {
    Trello(Observations),
    Linear(linear::LinearObservations),
}

/// The generic observations, which Trello's rules read.
impl From<Observations> for TrackerObservations {
    fn from(o: Observations) -> Self {
        TrackerObservations::Trello(o)
    }
}

impl TrackerObservations {
    /// Observations of `provider` with nothing looked up and no credential: what is known
    /// when no key or token was found (`PROVIDER_AUTH_REQUIRED` in that provider's words).
    pub fn without_credential(provider: ProviderKey, now: DateTime<Utc>) -> Self {
        match provider {
            ProviderKey::TrelloCloud => {
                TrackerObservations::Trello(Observations::new(now, TokenObservation::Missing))
            }
            ProviderKey::LinearCloud => TrackerObservations::Linear(
                linear::LinearObservations::new(now, linear::CredentialObservation::Missing),
            ),
        }
    }

    /// The provider whose rules read these observations.
    pub fn provider(&self) -> ProviderKey {
        match self {
            TrackerObservations::Trello(_) => ProviderKey::TrelloCloud,
            TrackerObservations::Linear(_) => ProviderKey::LinearCloud,
        }
    }

    /// When the credential expires, as the tracker (or the credential itself) said;
    /// `None` when it does not expire or was not valid.
    pub fn credential_expires_at(&self) -> Option<DateTime<Utc>> {
        match self {
            TrackerObservations::Trello(o) => match &o.token {
                TokenObservation::Valid { expires_at, .. } => *expires_at,
                _ => None,
            },
            TrackerObservations::Linear(o) => match &o.credential {
                linear::CredentialObservation::Valid { expires_at, .. } => *expires_at,
                _ => None,
            },
        }
    }

    /// The done destination a record gets when it names none, where the provider has one
    /// (Linear: the team's first completed state, by position; Trello: none, closed cards
    /// are archived).
    pub fn default_done_destination(&self) -> Option<String> {
        match self {
            TrackerObservations::Trello(_) => None,
            TrackerObservations::Linear(o) => o
                .team_states
                .as_deref()?
                .iter()
                .find(|s| !s.archived && s.kind == "completed")
                .map(|s| s.id.clone()),
        }
    }

    /// The workspace the chosen container (board, team) was seen in, when it was seen.
    pub fn container_workspace(&self, record: &ProviderRecord) -> Option<String> {
        match self {
            TrackerObservations::Trello(o) => match &o.board {
                Some(BoardObservation::Found {
                    organization_id, ..
                }) => organization_id.clone(),
                _ => None,
            },
            TrackerObservations::Linear(o) => {
                let id = record.board_id.as_deref().map(str::trim)?;
                o.teams
                    .as_deref()?
                    .iter()
                    .find(|t| t.id == id)
                    .and_then(|t| t.organization_id.clone())
            }
        }
    }
}

/// Readiness of `record` from what its tracker answered: the neutral entry point that
/// dispatches to the record's provider's rules ([`trello::evaluate`] for Trello,
/// [`linear::evaluate`] for Linear).
///
/// Observations of another provider than the record's (an adapter composed for the wrong
/// record) are never read with the wrong rules: the result is blocked with
/// `PROVIDER_AUTH_REQUIRED` on `token`, saying which tracker answered and which the record
/// names, so nothing is saved and no export runs. Pure and total, like the rules.
pub fn check(record: &ProviderRecord, obs: &TrackerObservations) -> Readiness {
    match (record.provider_key, obs) {
        (ProviderKey::TrelloCloud, TrackerObservations::Trello(o)) => evaluate(record, o),
        (ProviderKey::LinearCloud, TrackerObservations::Linear(o)) => linear::evaluate(record, o),
        (provider, other) => {
            let mut blocked = Vec::new();
            let cloud_target = check_cloud_target(record, &mut blocked);
            block(
                &mut blocked,
                BlockedCode::ProviderAuthRequired,
                "token",
                format!(
                    "the credentials in use are for {}, but the record is for {provider}: connect {} with its own credentials (webriskops setup {})",
                    other.provider().tracker_name(),
                    provider.tracker_name(),
                    provider.tracker_name()
                ),
            );
            Readiness {
                ready: ReadyStates {
                    cloud_target,
                    revoke_path: record.revoke_path_confirmed,
                    ..ReadyStates::default()
                },
                blocked,
                notes: Vec::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::trello::tests::{observations, record, LIST};
    use super::*;
    use crate::ids::TenantId;

    #[test]
    fn check_dispatches_to_the_record_provider_rules_and_blocks_a_mismatch() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let trello = record(LIST);
        let mut linear = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
        linear.provider_key = ProviderKey::LinearCloud;
        linear.revoke_path_confirmed = true;
        // Each provider's rules, through the one entry point.
        let obs = observations(ListObservation::NotFound, None);
        assert_eq!(
            check(&trello, &TrackerObservations::Trello(obs.clone())),
            evaluate(&trello, &obs)
        );
        let missing = TrackerObservations::without_credential(ProviderKey::LinearCloud, now);
        let r = check(&linear, &missing);
        assert!(r.has(BlockedCode::ProviderAuthRequired), "{r:?}");
        assert!(r.has(BlockedCode::DestinationTeamRequired), "{r:?}");
        assert!(r.blocked.iter().any(|b| b.fix.contains("Linear")), "{r:?}");
        // Observations of another tracker are never read with the wrong rules.
        let r = check(&trello, &missing);
        assert_eq!(r.codes(), [BlockedCode::ProviderAuthRequired]);
        assert!(!r.is_ready());
        assert!(
            r.blocked[0]
                .fix
                .contains("for linear, but the record is for trello_cloud"),
            "{r:?}"
        );
        let r = check(&linear, &TrackerObservations::Trello(obs));
        assert_eq!(r.codes(), [BlockedCode::ProviderAuthRequired]);
    }
}
