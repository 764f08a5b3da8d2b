//! What Linear answers about a provider record, gathered for the domain's Linear readiness
//! rules (`webriskops_domain::readiness::linear`): the credential, the teams it sees, the
//! chosen team's workflow states and where the chosen states really are.

use chrono::{DateTime, Utc};
use webriskops_domain::readiness::linear::{
    is_linear_id, CredentialObservation, LinearObservations, StateSeen, TeamSeen,
};
use webriskops_domain::ProviderRecord;
use webriskops_ports::PortError;

use crate::client::{LinearClient, WorkflowState};

/// What the caller knows of the credential without asking Linear: OAuth2 scopes and
/// expiry come with the token; a personal API key has neither (it acts with its owner's
/// rights, and Linear offers no query for a key's own permissions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialFacts {
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// A refresh token is kept, so expiry is routine.
    pub refreshable: bool,
}

/// Teams whose states are searched for a chosen state that is not the chosen team's, to
/// say "it belongs to another team" rather than "no such state".
const MAX_TEAMS_SEARCHED: usize = 10;

fn seen(s: &WorkflowState, team_id: &str) -> StateSeen {
    StateSeen {
        id: s.id.clone(),
        name: s.name.clone(),
        kind: s.kind.clone(),
        team_id: team_id.to_owned(),
        archived: s.archived_at.is_some(),
    }
}

/// Gathers everything the Linear readiness rules need for `record`, with `client` if a
/// credential was given. Answers that decide a blocked state (a refused key) become
/// observations; anything else (Linear unavailable, rate limited) is an error, so that
/// "retry later" is never shown as "blocked".
///
/// # Errors
/// A transient or unexpected [`PortError`] from Linear.
pub async fn observe(
    client: Option<&LinearClient>,
    facts: &CredentialFacts,
    record: &ProviderRecord,
    now: DateTime<Utc>,
) -> Result<LinearObservations, PortError> {
    let Some(client) = client else {
        return Ok(LinearObservations::new(now, CredentialObservation::Missing));
    };
    let organization = match client.viewer().await {
        Ok((_, org)) => org,
        Err(PortError::Unauthenticated { message, .. }) => {
            return Ok(LinearObservations::new(
                now,
                CredentialObservation::Rejected { reason: message },
            ))
        }
        Err(e) => return Err(e),
    };
    let mut obs = LinearObservations::new(
        now,
        CredentialObservation::Valid {
            scopes: facts.scopes.clone(),
            expires_at: facts.expires_at,
            refreshable: facts.refreshable,
        },
    );
    // A credential belongs to one workspace: every team it sees is that workspace's.
    let teams = client.teams().await?;
    obs.teams = Some(
        teams
            .iter()
            .filter(|t| t.archived_at.is_none())
            .map(|t| TeamSeen {
                id: t.id.clone(),
                key: t.key.clone(),
                name: t.name.clone(),
                organization_id: Some(organization.id.clone()),
            })
            .collect(),
    );
    let team_id = record
        .board_id
        .as_deref()
        .map(str::trim)
        .filter(|id| is_linear_id(id) && teams.iter().any(|t| t.id == *id));
    let Some(team_id) = team_id else {
        return Ok(obs);
    };
    let states: Vec<StateSeen> = client
        .team_states(team_id)
        .await?
        .iter()
        .map(|s| seen(s, team_id))
        .collect();
    let wanted: Vec<&str> = [record.list_id.as_deref(), record.done_list_id.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|id| is_linear_id(id) && !states.iter().any(|s| s.id == *id))
        .collect();
    // A chosen state that is not the team's: look for it in the other teams.
    let mut elsewhere: Vec<StateSeen> = Vec::new();
    if !wanted.is_empty() {
        for other in teams
            .iter()
            .filter(|t| t.id != team_id)
            .take(MAX_TEAMS_SEARCHED)
        {
            elsewhere.extend(
                client
                    .team_states(&other.id)
                    .await?
                    .iter()
                    .filter(|s| wanted.contains(&s.id.as_str()))
                    .map(|s| seen(s, &other.id)),
            );
            if wanted.iter().all(|w| elsewhere.iter().any(|s| s.id == *w)) {
                break;
            }
        }
    }
    let lookup = |id: Option<&str>| {
        id.map(str::trim).filter(|id| !id.is_empty()).map(|id| {
            states
                .iter()
                .chain(elsewhere.iter())
                .find(|s| s.id == id)
                .cloned()
        })
    };
    obs.state = lookup(record.list_id.as_deref());
    obs.done_state = lookup(record.done_list_id.as_deref());
    obs.team_states = Some(states);
    Ok(obs)
}
