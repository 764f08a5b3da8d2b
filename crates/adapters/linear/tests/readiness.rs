//! Readiness against linear-sim: what Linear answers for a record becomes the domain's
//! Linear blocked states, each with a fix naming the choices.

use chrono::Utc;
use linear_sim::{Fixture, SimConfig, SimServer};
use webriskops_domain::readiness::linear::evaluate;
use webriskops_domain::{BlockedCode, ProviderKey, ProviderRecord, Readiness, TenantId};
use webriskops_linear::{observe, Credential, CredentialFacts, LinearClient, LinearSettings};

struct World {
    _sim: SimServer,
    url: String,
    fx: Fixture,
}

async fn world() -> World {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let fx = sim.handle().seed_standard();
    World {
        url: sim.base_url(),
        _sim: sim,
        fx,
    }
}

impl World {
    fn client(&self, key: &str) -> LinearClient {
        let settings = LinearSettings {
            api_url: self.url.clone(),
            ..LinearSettings::default()
        };
        LinearClient::new(&settings, &Credential::api_key(key.to_owned()).unwrap()).unwrap()
    }

    fn record(&self) -> ProviderRecord {
        let mut r = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
        r.provider_key = ProviderKey::LinearCloud;
        r.board_id = Some(self.fx.eng.id.clone());
        r.list_id = Some(self.fx.eng.todo.clone());
        r.workspace_id = Some(self.fx.organization_id.clone());
        r.revoke_path_confirmed = true;
        r
    }

    async fn check(
        &self,
        key: Option<&str>,
        facts: &CredentialFacts,
        r: &ProviderRecord,
    ) -> Readiness {
        let client = key.map(|k| self.client(k));
        let obs = observe(client.as_ref(), facts, r, Utc::now())
            .await
            .unwrap();
        evaluate(r, &obs)
    }
}

fn fix(r: &Readiness, code: BlockedCode) -> &str {
    &r.blocked
        .iter()
        .find(|b| b.code == code)
        .unwrap_or_else(|| panic!("{code} not blocked: {r:?}"))
        .fix
}

#[tokio::test]
async fn a_full_key_on_a_team_it_sees_is_ready() {
    let w = world().await;
    let r = w.record();
    let out = w
        .check(Some(&w.fx.keys.full), &CredentialFacts::default(), &r)
        .await;
    assert!(out.is_ready(), "{out:?}");
    assert!(
        out.notes.iter().any(|n| n.contains("Done")),
        "{:?}",
        out.notes
    );
}

#[tokio::test]
async fn no_key_or_a_refused_key_requires_auth() {
    let w = world().await;
    let r = w.record();
    let out = w.check(None, &CredentialFacts::default(), &r).await;
    assert_eq!(out.codes(), [BlockedCode::ProviderAuthRequired]);
    let bogus = format!("lin_api_{}", "0".repeat(40));
    let out = w.check(Some(&bogus), &CredentialFacts::default(), &r).await;
    assert_eq!(out.codes(), [BlockedCode::ProviderAuthRequired], "{out:?}");
}

#[tokio::test]
async fn a_team_the_key_cannot_see_lists_the_teams_it_can() {
    let w = world().await;
    let mut r = w.record();
    r.board_id = Some(w.fx.ops.id.clone());
    r.list_id = Some(w.fx.ops.todo.clone());
    let out = w
        .check(Some(&w.fx.keys.eng_only), &CredentialFacts::default(), &r)
        .await;
    assert!(out.has(BlockedCode::ProviderScopeUnavailable), "{out:?}");
    let f = fix(&out, BlockedCode::ProviderScopeUnavailable);
    assert!(f.contains(&w.fx.eng.id) && !f.contains(&w.fx.ops.id), "{f}");
}

#[tokio::test]
async fn another_teams_state_an_archived_one_and_a_done_state_that_does_not_close_are_named() {
    let w = world().await;
    let cases = [
        (
            Some(w.fx.ops.todo.clone()),
            None,
            "another team",
            "state_id",
        ),
        (
            Some(w.fx.eng.archived_state.clone()),
            None,
            "archived",
            "state_id",
        ),
        (
            Some(w.fx.eng.todo.clone()),
            Some(w.fx.eng.in_progress.clone()),
            "completed or canceled",
            "done_state_id",
        ),
    ];
    for (state, done, words, field) in cases {
        let mut r = w.record();
        r.list_id = state;
        r.done_list_id = done;
        let out = w
            .check(Some(&w.fx.keys.full), &CredentialFacts::default(), &r)
            .await;
        assert_eq!(
            out.codes(),
            [BlockedCode::StateNotInTeam],
            "{words}: {out:?}"
        );
        assert_eq!(out.blocked[0].field, field);
        let f = fix(&out, BlockedCode::StateNotInTeam);
        assert!(
            f.contains(words) && f.contains("choose one of these states"),
            "{f}"
        );
    }
    let mut r = w.record();
    r.done_list_id = Some(w.fx.eng.canceled.clone());
    assert!(w
        .check(Some(&w.fx.keys.full), &CredentialFacts::default(), &r)
        .await
        .is_ready());
}

#[tokio::test]
async fn an_oauth_token_without_write_cannot_create_issues_and_refresh_is_routine() {
    let w = world().await;
    let r = w.record();
    let read_only = CredentialFacts {
        scopes: vec!["read".into()],
        expires_at: Some(Utc::now() + chrono::Duration::hours(1)),
        refreshable: true,
    };
    let out = w.check(Some(&w.fx.keys.full), &read_only, &r).await;
    assert_eq!(out.codes(), [BlockedCode::ProviderScopeUnavailable]);
    assert!(out.portable_fallback_applies());
    let expired_but_refreshable = CredentialFacts {
        scopes: vec!["read".into(), "write".into()],
        expires_at: Some(Utc::now() - chrono::Duration::minutes(5)),
        refreshable: true,
    };
    let out = w
        .check(Some(&w.fx.keys.full), &expired_but_refreshable, &r)
        .await;
    assert!(out.is_ready(), "{out:?}");
}
