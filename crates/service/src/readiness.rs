//! Gathers observations from the tracker and evaluates readiness.

use chrono::{DateTime, Utc};
use futures::future::join;
use webriskops_domain::readiness::{check, BoardList};

use webriskops_domain::{
    BlockedCode, BoardObservation, ListObservation, Observations, ProviderRecord, Readiness,
    TokenObservation, TrackerObservations,
};
use webriskops_ports::{
    Account, Container, Destination, PortError, TokenInfo, TrackerIntrospection,
};

use crate::ServiceError;

/// A readiness check and what was seen on the way (for setup output and choices).
#[derive(Debug, Clone)]
pub struct SetupCheck {
    pub readiness: Readiness,
    /// What the tracker answered, in its provider's terms.
    pub observations: TrackerObservations,
    pub token: Option<TokenInfo>,
    /// The chosen container, when the tracker showed it.
    pub container: Option<Container>,
    /// Containers the credential can see, listed when none is chosen yet.
    pub containers: Vec<Container>,
    /// Open destinations of the chosen container.
    pub destinations: Vec<Destination>,
    pub account: Option<Account>,
}

fn present(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// What a lookup's error means for readiness; transient failures abort the check.
fn classify<T>(r: Result<T, PortError>) -> Result<Result<T, Observed>, ServiceError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(PortError::NotFound { .. } | PortError::InvalidInput { .. }) => {
            Ok(Err(Observed::NotFound))
        }
        Err(PortError::PermissionDenied { .. }) => Ok(Err(Observed::NoAccess)),
        Err(PortError::Unauthenticated { message, .. }) => Ok(Err(Observed::Refused(message))),
        Err(e) => Err(ServiceError::Port(e)),
    }
}

enum Observed {
    NotFound,
    NoAccess,
    Refused(String),
}

fn list_obs(r: Result<Destination, Observed>) -> ListObservation {
    match r {
        Ok(d) => ListObservation::Found {
            name: d.name,
            closed: d.closed,
            board_id: d.container_id,
        },
        Err(Observed::NotFound) => ListObservation::NotFound,
        Err(Observed::NoAccess | Observed::Refused(_)) => ListObservation::NoAccess,
    }
}

/// The check when the adapter gathered its provider's observations itself
/// ([`TrackerIntrospection::observe_setup`]): the provider's rules decide, and the
/// choices (containers when none is ready, destinations of a ready container) and the
/// account come through the neutral port methods.
async fn observed_check(
    t: &dyn TrackerIntrospection,
    record: &ProviderRecord,
    observations: TrackerObservations,
) -> Result<SetupCheck, ServiceError> {
    let readiness = check(record, &observations);
    let mut out = SetupCheck {
        readiness,
        observations,
        token: None,
        container: None,
        containers: vec![],
        destinations: vec![],
        account: None,
    };
    if out.readiness.has(BlockedCode::ProviderAuthRequired) {
        return Ok(out);
    }
    out.account = classify(t.whoami().await)?.ok();
    let grant = out.observations.grant();
    out.token = out.account.as_ref().map(|a| TokenInfo {
        member_id: Some(a.id.clone()),
        app_name: None,
        created_at: None,
        expires_at: out.observations.credential_expires_at(),
        permissions: vec![],
        grant,
    });
    let container = present(&record.board_id);
    match container.filter(|_| out.readiness.ready.container()) {
        Some(id) => {
            if let Ok(Ok(dests)) = classify(t.destinations(id).await) {
                out.destinations = dests.into_iter().filter(|d| !d.closed).collect();
            }
        }
        None => {
            if let Ok(Ok(all)) = classify(t.containers().await) {
                out.containers = all.into_iter().filter(|c| !c.closed).collect();
            }
        }
    }
    Ok(out)
}

/// Readiness of `record` before an export: the tracker's own quick observations when it
/// has them ([`TrackerIntrospection::observe_for_export`]), else the full check.
///
/// # Errors
/// As [`check_readiness`].
pub(crate) async fn readiness_for_export(
    tracker: Option<&dyn TrackerIntrospection>,
    record: &ProviderRecord,
    now: DateTime<Utc>,
) -> Result<Readiness, ServiceError> {
    if let Some(t) = tracker {
        if let Some(observations) = t.observe_for_export(record, now).await? {
            return Ok(check(record, &observations));
        }
    }
    Ok(check_readiness(tracker, record, now).await?.readiness)
}

/// Checks readiness of `record`. `tracker` is `None` when no token is available.
///
/// # Errors
/// Only when the tracker cannot be asked (unavailable, rate limited): readiness is
/// never guessed.
pub async fn check_readiness(
    tracker: Option<&dyn TrackerIntrospection>,
    record: &ProviderRecord,
    now: DateTime<Utc>,
) -> Result<SetupCheck, ServiceError> {
    let Some(t) = tracker else {
        let observations = TrackerObservations::without_credential(record.provider_key, now);
        return Ok(SetupCheck {
            readiness: check(record, &observations),
            observations,
            token: None,
            container: None,
            containers: vec![],
            destinations: vec![],
            account: None,
        });
    };
    if let Some(observations) = t.observe_setup(record, now).await? {
        return observed_check(t, record, observations).await;
    }
    let mut check = SetupCheck {
        readiness: Readiness {
            ready: Default::default(),
            blocked: vec![],
            notes: vec![],
        },
        observations: TrackerObservations::without_credential(record.provider_key, now),
        token: None,
        container: None,
        containers: vec![],
        destinations: vec![],
        account: None,
    };
    let mut obs = Observations::new(now, TokenObservation::Missing);
    let token = match classify(t.token_info().await)? {
        Ok(info) => {
            check.token = Some(info.clone());
            TokenObservation::Valid {
                permissions: info.permissions,
                expires_at: info.expires_at,
            }
        }
        Err(Observed::Refused(reason)) => TokenObservation::Rejected { reason },
        Err(_) => TokenObservation::Rejected {
            reason: format!(
                "the tracker does not recognise the {}",
                record.provider_key.vocabulary().credential
            ),
        },
    };
    obs.token = token;
    let token_ok = matches!(&obs.token, TokenObservation::Valid { expires_at, .. } if expires_at.is_none_or(|at| at > now));
    if token_ok {
        let well_formed = |id: &&str| record.provider_key.accepts_id(id);
        if let Some(container_id) = present(&record.board_id).filter(well_formed) {
            let (container, dests) =
                join(t.container(container_id), t.destinations(container_id)).await;
            match classify(container)? {
                Ok(c) => {
                    *obs.container_mut() = Some(BoardObservation::Found {
                        name: c.name.clone(),
                        closed: c.closed,
                        organization_id: c.organization_id.clone(),
                    });
                    check.container = Some(c);
                    let (labels, members) =
                        join(t.labels(container_id), t.members(container_id)).await;
                    obs.labels_readable = Some(classify(labels)?.is_ok());
                    obs.members_readable = Some(classify(members)?.is_ok());
                    if let Ok(Ok(dests)) = classify(dests) {
                        // The domain tells a destination in another container from one
                        // out of scope with these.
                        obs.board_lists = Some(
                            dests
                                .iter()
                                .map(|d| BoardList {
                                    id: d.id.clone(),
                                    name: d.name.clone(),
                                    closed: d.closed,
                                })
                                .collect(),
                        );
                        check.destinations = dests.into_iter().filter(|d| !d.closed).collect();
                    }
                }
                Err(Observed::NotFound) => *obs.container_mut() = Some(BoardObservation::NotFound),
                Err(Observed::NoAccess) => *obs.container_mut() = Some(BoardObservation::NoAccess),
                Err(Observed::Refused(reason)) => obs.token = TokenObservation::Rejected { reason },
            }
        } else if let Ok(Ok(all)) = classify(t.containers().await) {
            check.containers = all.into_iter().filter(|c| !c.closed).collect();
        }
        if let Some(id) = present(&record.list_id).filter(well_formed) {
            obs.list = Some(list_obs(classify(t.destination(id).await)?));
        }
        if let Some(id) = present(&record.done_list_id).filter(well_formed) {
            obs.done_list = Some(list_obs(classify(t.destination(id).await)?));
        }
        if obs.container_mut().is_some() {
            check.account = t.whoami().await.ok();
        }
    }
    check.observations = TrackerObservations::from(obs);
    check.readiness = webriskops_domain::readiness::check(record, &check.observations);
    Ok(check)
}

#[cfg(test)]
mod tests {
    use webriskops_domain::{BlockedCode, TenantId};
    use webriskops_fake::{FakeTracker, Fault};

    use super::*;

    /// A list the token cannot see, on a board whose lists it can read, is on another
    /// board: `LIST_NOT_ON_BOARD` with the board's lists to choose from, not a scope
    /// problem whose fix would be a new token.
    #[tokio::test]
    async fn an_invisible_list_not_among_the_board_lists_is_not_on_the_board() {
        let w = FakeTracker::standard();
        let other = w.tracker.add_container("Elsewhere", Some(&w.org_id));
        let foreign = w.tracker.add_destination(&other, "Theirs");
        let mut r = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
        r.board_id = Some(w.board_id.clone());
        r.list_id = Some(foreign);
        r.workspace_id = Some(w.org_id.clone());
        r.revoke_path_confirmed = true;
        w.tracker.inject(Fault {
            method: Some("destination"),
            times: 1,
            error: PortError::PermissionDenied {
                context: Default::default(),
                message: "unauthorized permission requested".into(),
            },
            apply_first: false,
        });
        let check = check_readiness(
            Some(&w.tracker as &dyn TrackerIntrospection),
            &r,
            Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!(check.readiness.codes(), [BlockedCode::ListNotOnBoard]);
        let fix = &check.readiness.blocked[0].fix;
        assert!(fix.contains("choose one of these lists: "), "{fix}");
        assert!(fix.contains(&w.list_id), "{fix}");
    }
}
