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
