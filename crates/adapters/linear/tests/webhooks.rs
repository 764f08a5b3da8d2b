//! Webhooks against linear-sim over HTTP: registering with the adapter, verifying the
//! sim's signed deliveries, refusing altered, stale or foreign ones.

use std::time::Duration;

use linear_sim::{SimConfig, SimServer};
use trello_sim::callback::{CallbackServer, Received};
use webriskops_domain::TenantId;
use webriskops_linear::{
    Credential, FindingUrl, LinearAdapter, LinearAdapterOptions, LinearSettings,
    LinearWebhookVerifier,
};
use webriskops_ports::{
    PortError, TrackerWebhooks, WebhookRejection, WebhookRequest, WebhookSecret, WebhookVerifier,
};

const WAIT: Duration = Duration::from_secs(20);

fn adapter(sim: &SimServer, key: &str) -> LinearAdapter {
    LinearAdapter::new(
        &LinearSettings {
            api_url: sim.base_url(),
            ..LinearSettings::default()
        },
        Credential::api_key(key.to_owned()).unwrap(),
        TenantId::new("acme").unwrap(),
        LinearAdapterOptions {
            finding_url: FindingUrl::new("https://risk.example.com/findings/{id}").unwrap(),
            ..LinearAdapterOptions::default()
        },
    )
    .unwrap()
}

fn request<'a>(
    r: &'a Received,
    url: &'a str,
    now: chrono::DateTime<chrono::Utc>,
) -> WebhookRequest<'a> {
    WebhookRequest {
        headers: &r.headers,
        raw_body: &r.body,
        callback_url: url,
        now,
    }
}

#[tokio::test]
async fn register_verify_and_delete_through_the_sim() {
    let sim = SimServer::start(SimConfig {
        allow_loopback_webhooks: true,
        webhook_retry_delays: vec![Duration::from_millis(10); 3],
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let h = sim.handle();
    let fx = h.seed_standard();
    let cb = CallbackServer::start().await;
    let url = cb.url("/hooks/linear/opaque-7");

    // Without the admin scope Linear refuses: the server must ask for it.
    let err = adapter(&sim, &fx.keys.full)
        .register(&fx.eng.id, &url)
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::PermissionDenied { .. }), "{err:?}");

    let a = adapter(&sim, &fx.keys.admin);
    let reg = a.register(&fx.eng.id, &url).await.expect("registered");
    assert_eq!(reg.scope_id, fx.eng.id);
    assert_eq!(reg.callback_url, url);
    let secret = reg.secret.clone().expect("Linear signs per webhook");
    assert_eq!(
        h.webhooks()[0].secret,
        secret.expose(),
        "the secret the adapter chose"
    );
    assert!(
        !format!("{reg:?}").contains(secret.expose()),
        "never printed"
    );
    assert!(a.health(&reg.id).await.unwrap().unwrap().active);

    let issue = h.person_create_issue(&fx.eng.id, "IDOR", "");
    h.person_move_issue(&issue, &fx.eng.done);
    let posts = cb.wait_for_posts(2, WAIT).await;

    let v = LinearWebhookVerifier::new(secret.clone());
    let now = chrono::Utc::now();
    let events: Vec<_> = posts
        .iter()
        .map(|p| v.verify(&request(p, &url, now)).expect("genuine"))
        .collect();
    assert!(events
        .iter()
        .all(|e| e.item_id.as_deref() == Some(issue.as_str())));
    assert_eq!(events[0].kind, "Issue.create");
    assert_eq!(events[1].kind, "Issue.update");
    assert_ne!(events[0].delivery_id, events[1].delivery_id);

    let mut tampered = posts[1].clone();
    let text = String::from_utf8(tampered.body.clone()).unwrap();
    tampered.body = text.replacen("IDOR", "IDOS", 1).into_bytes();
    assert_eq!(
        v.verify(&request(&tampered, &url, now)),
        Err(WebhookRejection::BadSignature)
    );
    assert!(matches!(
        v.verify(&request(
            &posts[1],
            &url,
            now + chrono::Duration::seconds(61)
        )),
        Err(WebhookRejection::Stale { .. })
    ));
    let foreign = LinearWebhookVerifier::new(WebhookSecret::new("another webhook's secret"));
    assert_eq!(
        foreign.verify(&request(&posts[1], &url, now)),
        Err(WebhookRejection::BadSignature)
    );

    h.set_webhook_enabled(&reg.id, false);
    assert!(!a.health(&reg.id).await.unwrap().unwrap().active);
    a.delete(&reg.id).await.expect("deleted");
    assert!(h.webhooks().is_empty());
    a.delete(&reg.id).await.expect("deleting twice is fine");
    assert_eq!(a.health(&reg.id).await.unwrap(), None);
}

/// The server-side OAuth2 code flow through linear-sim, as `webriskops serve` runs it:
/// the authorize URL with `state` (and `admin`, to register the webhook), the redirect
/// back with `code` and the same `state`, the exchange, and a webhook registered with
/// the token.
#[tokio::test]
async fn oauth2_code_flow_with_state_then_a_webhook() {
    let sim = SimServer::start(SimConfig {
        allow_loopback_webhooks: true,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let fx = sim.handle().seed_standard();
    let redirect = url::Url::parse(&fx.oauth.redirect_uri).unwrap();
    let endpoint = url::Url::parse(&format!("{}/oauth/authorize", sim.root_url())).unwrap();
    let request = webriskops_linear::authorize_url_at(
        &endpoint,
        &fx.oauth.client_id,
        &redirect,
        &webriskops_linear::AuthorizeOptions {
            scopes: webriskops_linear::Scopes::ReadWriteAdmin,
            ..webriskops_linear::AuthorizeOptions::default()
        },
    );
    assert!(
        request.url.as_str().contains("scope=read%2Cwrite%2Cadmin"),
        "{}",
        request.url
    );
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = browser.get(request.url.clone()).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let back = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(redirect.as_str()));
    let q: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    webriskops_linear::check_state(&request.state, &q["state"]).expect("the same state");
    assert!(webriskops_linear::check_state(&request.state, "forged").is_err());

    let oauth = webriskops_linear::OAuthClient::with_endpoints(
        &fx.oauth.client_id,
        webriskops_linear::LinearSecret::new("client secret", fx.oauth.client_secret.clone())
            .unwrap(),
        &format!("{}/oauth/token", sim.root_url()),
        &format!("{}/oauth/revoke", sim.root_url()),
    )
    .unwrap();
    let code = webriskops_linear::LinearSecret::new("code", q["code"].clone()).unwrap();
    let tokens = oauth
        .exchange_code(&code, &redirect)
        .await
        .expect("exchanged");
    assert!(
        tokens.scopes.iter().any(|s| s == "admin"),
        "{:?}",
        tokens.scopes
    );
    let a = LinearAdapter::new(
        &LinearSettings {
            api_url: sim.base_url(),
            ..LinearSettings::default()
        },
        Credential::oauth(tokens.access_token.expose().to_owned()).unwrap(),
        TenantId::new("acme").unwrap(),
        LinearAdapterOptions {
            finding_url: FindingUrl::new("https://risk.example.com/findings/{id}").unwrap(),
            ..LinearAdapterOptions::default()
        },
    )
    .unwrap();
    let cb = CallbackServer::start().await;
    let reg = a
        .register(&fx.eng.id, &cb.url("/hooks/linear/x"))
        .await
        .expect("admin may");
    assert!(reg.secret.is_some());
}
