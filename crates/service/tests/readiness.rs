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
        check.containers.iter().any(|b| b.id == w.board_id),
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

/// The fake behind an adapter that gathers its own readiness observations
/// (`TrackerIntrospection::observe_setup`): every other method is the fake's.
#[derive(Debug)]
struct SelfObserving {
    inner: FakeTracker,
    observations: Result<webriskops_domain::Observations, webriskops_ports::PortError>,
}

impl webriskops_ports::Tracker for SelfObserving {
    fn capabilities(&self) -> webriskops_ports::Capabilities {
        webriskops_ports::Tracker::capabilities(&self.inner)
    }
}

#[async_trait::async_trait]
impl TrackerIntrospection for SelfObserving {
    async fn whoami(&self) -> webriskops_ports::PortResult<webriskops_ports::Account> {
        self.inner.whoami().await
    }
    async fn token_info(&self) -> webriskops_ports::PortResult<webriskops_ports::TokenInfo> {
        self.inner.token_info().await
    }
    async fn containers(&self) -> webriskops_ports::PortResult<Vec<webriskops_ports::Container>> {
        self.inner.containers().await
    }
    async fn container(
        &self,
        id: &str,
    ) -> webriskops_ports::PortResult<webriskops_ports::Container> {
        self.inner.container(id).await
    }
    async fn destinations(
        &self,
        id: &str,
    ) -> webriskops_ports::PortResult<Vec<webriskops_ports::Destination>> {
        self.inner.destinations(id).await
    }
    async fn destination(
        &self,
        id: &str,
    ) -> webriskops_ports::PortResult<webriskops_ports::Destination> {
        self.inner.destination(id).await
    }
    async fn labels(&self, id: &str) -> webriskops_ports::PortResult<Vec<webriskops_ports::Label>> {
        self.inner.labels(id).await
    }
    async fn members(
        &self,
        id: &str,
    ) -> webriskops_ports::PortResult<Vec<webriskops_ports::Member>> {
        self.inner.members(id).await
    }
    async fn revoke_token(&self) -> webriskops_ports::PortResult<()> {
        self.inner.revoke_token().await
    }
    async fn observe_setup(
        &self,
        _record: &ProviderRecord,
        _now: chrono::DateTime<Utc>,
    ) -> webriskops_ports::PortResult<Option<webriskops_domain::TrackerObservations>> {
        self.observations.clone().map(|o| Some(o.into()))
    }
}

/// When the adapter observes for itself, its observations decide (here: a board the
/// fake would find is reported missing), the choices still come through the neutral
/// port, and a transient failure is an error, never a blocked state.
#[tokio::test]
async fn an_adapter_observing_for_itself_decides_readiness_and_transient_failures_are_errors() {
    use webriskops_domain::{BoardObservation, Observations, TokenObservation};
    let w = FakeTracker::standard();
    let mut obs = Observations::new(
        Utc::now(),
        TokenObservation::Valid {
            permissions: vec![Permission {
                id_model: "*".into(),
                model_type: "board".into(),
                read: true,
                write: true,
            }],
            expires_at: None,
        },
    );
    obs.board = Some(BoardObservation::NotFound);
    let t = SelfObserving {
        inner: w.tracker.clone(),
        observations: Ok(obs),
    };
    let mut r = record(&w);
    r.list_id = None;
    let check = check_readiness(Some(&t as &dyn TrackerIntrospection), &r, Utc::now())
        .await
        .unwrap();
    assert!(
        check.readiness.has(BlockedCode::DestinationBoardRequired),
        "{:?}",
        check.readiness
    );
    // The generic path would have found the board and its lists: nothing of it ran.
    assert!(check.destinations.is_empty());
    assert!(check.container.is_none());
    assert!(
        check.containers.iter().any(|b| b.id == w.board_id),
        "choices listed"
    );
    assert!(check.account.is_some());

    let failing = SelfObserving {
        inner: w.tracker.clone(),
        observations: Err(webriskops_ports::PortError::Unavailable {
            context: Default::default(),
            message: "503".into(),
        }),
    };
    assert!(
        check_readiness(Some(&failing as &dyn TrackerIntrospection), &r, Utc::now())
            .await
            .is_err()
    );
}

/// Without credentials, a record is judged by its own provider's rules: a Linear record
/// asks for Linear credentials and its team, in Linear's words.
#[tokio::test]
async fn without_a_tracker_each_provider_record_gets_its_own_rules() {
    let mut r = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    r.provider_key = webriskops_domain::ProviderKey::LinearCloud;
    let check = check_readiness(None, &r, Utc::now()).await.unwrap();
    let codes = check.readiness.codes();
    assert!(
        codes.contains(&BlockedCode::ProviderAuthRequired),
        "{codes:?}"
    );
    assert!(
        codes.contains(&BlockedCode::DestinationTeamRequired),
        "{codes:?}"
    );
    let auth = &check.readiness.blocked[check
        .readiness
        .blocked
        .iter()
        .position(|b| b.code == BlockedCode::ProviderAuthRequired)
        .unwrap()];
    assert!(auth.fix.contains("Linear"), "{}", auth.fix);
}
