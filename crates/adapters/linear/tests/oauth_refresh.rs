//! A stored OAuth2 token set against linear-sim: its text form, the neutral grant it gives,
//! a refresh that rotates the refresh token, and a refresh refused after a revoke.

use chrono::Utc;
use linear_sim::{Fixture, SimConfig, SimHandle, SimServer};
use url::Url;
use webriskops_domain::TenantId;
use webriskops_linear::{
    Credential, LinearAdapter, LinearAdapterOptions, LinearSecret, LinearSettings, OAuthClient,
    StoredOAuth, REFRESH_MARGIN,
};
use webriskops_ports::{GrantScope, PortError, TrackerIntrospection};

struct World {
    sim: SimServer,
    h: SimHandle,
    fx: Fixture,
}

async fn world() -> World {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let h = sim.handle();
    let fx = h.seed_standard();
    World { sim, h, fx }
}

impl World {
    fn token_url(&self) -> String {
        format!("{}/oauth/token", self.sim.root_url())
    }

    /// secops's token set through the simulator's authorize and token endpoints, as the
    /// application would store it.
    async fn stored_set(&self) -> StoredOAuth {
        let o = &self.fx.oauth;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = http
            .get(format!("{}/oauth/authorize", self.sim.root_url()))
            .query(&[
                ("client_id", o.client_id.as_str()),
                ("redirect_uri", o.redirect_uri.as_str()),
                ("response_type", "code"),
                ("scope", "read,write"),
                ("state", "s"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
        let loc = Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        let code = loc.query_pairs().find(|(k, _)| k == "code").unwrap().1;
        let secret = LinearSecret::new("client secret", o.client_secret.clone()).unwrap();
        let root = self.sim.root_url();
        let tokens = OAuthClient::with_endpoints(
            &o.client_id,
            secret.clone(),
            &self.token_url(),
            &format!("{root}/oauth/revoke"),
        )
        .unwrap()
        .exchange_code(
            &LinearSecret::new("code", code.into_owned()).unwrap(),
            &Url::parse(&o.redirect_uri).unwrap(),
        )
        .await
        .unwrap();
        StoredOAuth {
            tokens,
            client_id: o.client_id.clone(),
            client_secret: secret,
        }
    }

    fn adapter(&self, set: &StoredOAuth) -> LinearAdapter {
        LinearAdapter::new(
            &LinearSettings {
                api_url: self.sim.base_url(),
                ..LinearSettings::default()
            },
            Credential::oauth(set.tokens.access_token.expose()).unwrap(),
            TenantId::new("acme").unwrap(),
            LinearAdapterOptions {
                credential_facts: set.facts(),
                ..LinearAdapterOptions::default()
            },
        )
        .unwrap()
    }
}

#[tokio::test]
async fn a_stored_set_round_trips_as_one_line_that_never_prints_its_secrets() {
    let w = world().await;
    let set = w.stored_set().await;
    let text = set.to_text();
    assert!(StoredOAuth::is_token_set(&text));
    assert!(
        !StoredOAuth::is_token_set(&w.fx.keys.full),
        "a personal key is not a set"
    );
    assert!(
        !text.contains(' ') && !text.contains('\n'),
        "one token-shaped line"
    );
    assert!(
        text.len() <= 512,
        "fits the store's token limit: {}",
        text.len()
    );
    assert_eq!(StoredOAuth::parse(&text).unwrap(), set);
    let shown = format!("{set:?}");
    for s in set.secrets() {
        assert!(!shown.contains(s.expose()), "{shown}");
    }
    let broken = StoredOAuth::parse(&text.replace("\"v\":1", "\"v\":2")).unwrap_err();
    assert!(!broken
        .to_string()
        .contains(set.tokens.access_token.expose()));
    assert!(StoredOAuth::parse("{\"v\":1}").is_err());
}

#[tokio::test]
async fn an_oauth_grant_names_its_scopes_expiry_and_refresh() {
    let w = world().await;
    let set = w.stored_set().await;
    let info = w.adapter(&set).token_info().await.unwrap();
    let g = info.grant;
    assert_eq!(g.scopes, ["read", "write"]);
    assert_eq!(g.containers, GrantScope::All);
    assert!(g.can_write && g.refreshable);
    assert!(g.expires_at.is_some_and(|at| at > Utc::now()));
    assert_eq!(g.inconsistency(), None);
    // A fresh day-long token needs no refresh; one inside the margin does.
    assert!(!set.needs_refresh(Utc::now()));
    let at = set.tokens.expires_at.unwrap();
    assert!(set.needs_refresh(at - REFRESH_MARGIN + chrono::Duration::seconds(1)));
}

#[tokio::test]
async fn a_refresh_rotates_the_refresh_token_and_the_new_set_works() {
    let w = world().await;
    let old = w.stored_set().await;
    w.h.expire_access_token(old.tokens.access_token.expose());
    let expired = w.adapter(&old).whoami().await.unwrap_err();
    assert!(
        matches!(expired, PortError::Unauthenticated { .. }),
        "{expired:?}"
    );

    let new = old.refresh(&w.token_url()).await.unwrap();
    assert_ne!(new.tokens.access_token, old.tokens.access_token);
    assert_ne!(
        new.tokens.refresh_token, old.tokens.refresh_token,
        "rotated"
    );
    assert_eq!(new.client_id, old.client_id);
    assert_eq!(w.adapter(&new).whoami().await.unwrap().username, "secops");

    let reused = old.refresh(&w.token_url()).await.unwrap_err();
    assert!(
        matches!(&reused, PortError::Unauthenticated { message, .. } if message.contains("authorize the application again")),
        "{reused:?}"
    );
    new.refresh(&w.token_url())
        .await
        .expect("the new refresh token works");
}

#[tokio::test]
async fn a_refresh_after_a_revoke_asks_for_a_new_authorization() {
    let w = world().await;
    let set = w.stored_set().await;
    webriskops_linear::revoke_access_token(
        &format!("{}/oauth/revoke", w.sim.root_url()),
        &set.tokens.access_token,
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();
    let e = set.refresh(&w.token_url()).await.unwrap_err();
    assert!(matches!(e, PortError::Unauthenticated { .. }), "{e:?}");
    for s in set.secrets() {
        assert!(!e.to_string().contains(s.expose()), "{e}");
    }
    // Plain http to another host is refused before anything is sent.
    let far = set.refresh("http://linear.example.com/oauth/token").await;
    assert!(
        matches!(far, Err(PortError::InvalidInput { .. })),
        "{far:?}"
    );
}
