//! Webhooks and the OAuth 1.0 flow against trello-sim over HTTP: what the server
//! relies on to register a board's webhook, verify deliveries and get a token.

mod common;

use std::time::Duration;

use common::{adapter, config, world, world_with, World};
use trello_sim::callback::{CallbackServer, Received};
use trello_sim::SimConfig;
use webriskops_domain::{ApiKey, Token};
use webriskops_ports::{
    PortError, TrackerIntrospection, TrackerWebhooks, WebhookRejection, WebhookRequest,
    WebhookSecret, WebhookVerifier,
};
use webriskops_trello::{
    authorize_url_at, AuthorizeOptions, Expiration, OAuth1AuthorizeOptions, OAuth1Client,
    TrelloAdapter, TrelloWebhookVerifier,
};

const WAIT: Duration = Duration::from_secs(20);

fn request<'a>(r: &'a Received, callback: &'a str) -> WebhookRequest<'a> {
    WebhookRequest {
        headers: &r.headers,
        raw_body: &r.body,
        callback_url: callback,
        now: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn register_is_idempotent_and_refused_when_the_callback_fails_head() {
    let w = world().await;
    let a = adapter(&w, &w.fx.tokens.full);
    let cb = CallbackServer::start().await;
    let url = cb.url("/hooks/trello/t1");
    let reg = a.register(&w.fx.board_id, &url).await.expect("registered");
    assert_eq!(reg.callback_url, url);
    assert_eq!(reg.scope_id, w.fx.board_id);
    assert_eq!(reg.secret, None, "Trello signs with the application secret");
    assert_eq!(w.handle.webhooks().len(), 1);

    // Saving again: the sim answers Trello's duplicate 400; the adapter finds the one
    // that exists.
    let again = a
        .register(&w.fx.board_id, &url)
        .await
        .expect("the same one");
    assert_eq!(again.id, reg.id);
    assert_eq!(w.handle.webhooks().len(), 1);

    let bad = CallbackServer::start().await;
    bad.set_head_status(500);
    let err = a
        .register(&w.fx.board_id, &bad.url("/hooks/trello/t2"))
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::InvalidInput { .. }), "{err:?}");
    assert!(err.to_string().contains("answer 200 to HEAD"), "{err}");
    assert!(!err.to_string().contains(&w.fx.tokens.full));

    let health = a.health(&reg.id).await.unwrap().expect("exists");
    assert!(health.active);
    assert_eq!(health.consecutive_failures, Some(0));

    a.delete(&reg.id).await.expect("deleted");
    assert!(w.handle.webhooks().is_empty());
    a.delete(&reg.id).await.expect("deleting twice is fine");
    assert_eq!(a.health(&reg.id).await.unwrap(), None);
}

#[tokio::test]
async fn the_verifier_accepts_the_sims_delivery_and_nothing_altered() {
    let w = world_with(SimConfig {
        webhook_retry_delays: vec![Duration::from_millis(10); 3],
        ..common::sim_config()
    })
    .await;
    let secret = WebhookSecret::new("app-secret-the-server-holds");
    w.handle.set_api_secret(&w.fx.api_key, secret.expose());
    let a = adapter(&w, &w.fx.tokens.full);
    let cb = CallbackServer::start().await;
    let url = cb.url("/hooks/trello/opaque-1");
    a.register(&w.fx.board_id, &url).await.unwrap();

    let card = w
        .handle
        .person_create_card(&w.fx.list_id, "Open redirect", "");
    w.handle.person_move_card(&card, &w.fx.done_list_id);
    let posts = cb.wait_for_posts(2, WAIT).await;

    let v = TrelloWebhookVerifier::new(secret);
    let events: Vec<_> = posts
        .iter()
        .map(|p| v.verify(&request(p, &url)).expect("genuine delivery"))
        .collect();
    assert!(events
        .iter()
        .all(|e| e.item_id.as_deref() == Some(card.as_str())));
    assert!(events.iter().any(|e| e.kind == "updateCard"));
    assert_ne!(events[0].delivery_id, events[1].delivery_id);

    let mut tampered = posts[1].clone();
    let text = String::from_utf8(tampered.body.clone()).unwrap();
    tampered.body = text
        .replacen("Open redirect", "Closed redirect", 1)
        .into_bytes();
    assert_eq!(
        v.verify(&request(&tampered, &url)),
        Err(WebhookRejection::BadSignature)
    );
    assert_eq!(
        v.verify(&request(&posts[1], &cb.url("/hooks/trello/opaque-2"))),
        Err(WebhookRejection::BadSignature),
        "the signature covers the registered callback URL"
    );
    let wrong = TrelloWebhookVerifier::new(WebhookSecret::new(w.fx.tokens.full.clone()));
    assert_eq!(
        wrong.verify(&request(&posts[1], &url)),
        Err(WebhookRejection::BadSignature),
        "the token is not the key"
    );
}

#[tokio::test]
async fn a_retried_delivery_carries_the_same_delivery_id() {
    let w = world_with(SimConfig {
        webhook_retry_delays: vec![Duration::from_millis(10); 3],
        ..common::sim_config()
    })
    .await;
    let a = adapter(&w, &w.fx.tokens.full);
    let cb = CallbackServer::start().await;
    cb.script_posts(&[503]);
    let url = cb.url("/h");
    a.register(&w.fx.board_id, &url).await.unwrap();
    let card = w.handle.person_create_card(&w.fx.list_id, "x", "");
    let posts = cb.wait_for_posts(2, WAIT).await;
    let v = TrelloWebhookVerifier::new(WebhookSecret::new(w.fx.api_secret.clone()));
    let first = v.verify(&request(&posts[0], &url)).unwrap();
    let retry = v.verify(&request(&posts[1], &url)).unwrap();
    assert_eq!(first, retry);
    assert_eq!(first.item_id.as_deref(), Some(card.as_str()));
}

async fn follow(
    client: &reqwest::Client,
    url: &str,
    form: Option<&[(String, String)]>,
) -> reqwest::Response {
    let r = match form {
        Some(f) => client.post(url).form(f),
        None => client.get(url),
    };
    r.send().await.expect("page answers")
}

/// The hidden fields of the page's form, plus `approve=Allow`.
fn allow_form(html: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = html
        .split("<input type=\"hidden\" ")
        .skip(1)
        .map(|chunk| {
            let attr = |n: &str| {
                let start = chunk.find(&format!("{n}=\"")).unwrap() + n.len() + 2;
                let end = chunk[start..].find('"').unwrap() + start;
                chunk[start..end]
                    .replace("&amp;", "&")
                    .replace("&quot;", "\"")
            };
            (attr("name"), attr("value"))
        })
        .collect();
    out.push(("approve".into(), "Allow".into()));
    out
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn token_works(w: &World, token: &str) -> TrelloAdapter {
    let a = adapter(w, token);
    let info = a
        .token_info()
        .await
        .expect("the new token works on the API");
    assert!(info.grant.can_write, "read,write was granted");
    a
}

#[tokio::test]
async fn oauth1_three_legs_through_the_sim_give_a_working_token() {
    let w = world().await;
    let key = ApiKey::new(&w.fx.api_key).unwrap();
    let secret = Token::new(w.fx.api_secret.clone()).unwrap();
    let client = OAuth1Client::new(&w.base_url, key.clone(), secret).unwrap();
    let callback = "http://127.0.0.1:9/settings/trello/oauth1/return?state=s1";

    let rt = client.request_token(callback).await.expect("leg 1");
    let page = client.authorize_url(
        &rt,
        &OAuth1AuthorizeOptions {
            app_name: "WebRiskOps".into(),
            expiration: Expiration::OneDay,
            ..OAuth1AuthorizeOptions::default()
        },
    );
    assert!(
        page.contains("scope=read,write") && page.contains("expiration=1day"),
        "{page}"
    );
    let b = browser();
    let html = follow(&b, &page, None).await.text().await.unwrap();
    assert!(html.contains("WebRiskOps"));
    let action = format!("{}/OAuthAuthorizeToken", w.base_url);
    let resp = follow(&b, &action, Some(&allow_form(&html))).await;
    assert_eq!(resp.status().as_u16(), 302);
    let back = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert!(back
        .as_str()
        .starts_with("http://127.0.0.1:9/settings/trello/oauth1/return?state=s1&"));
    let q: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(q["oauth_token"], rt.token);

    // A wrong verifier is refused; the right one gives the access token.
    assert!(client.access_token(&rt, "not-the-verifier").await.is_err());
    let access = client
        .access_token(&rt, &q["oauth_verifier"])
        .await
        .expect("leg 3");
    assert_eq!(access.token.expose().len(), 76);
    token_works(&w, access.token.expose()).await;
    // The request token is used up.
    assert!(client
        .access_token(&rt, &q["oauth_verifier"])
        .await
        .is_err());
}

#[tokio::test]
async fn oauth1_requests_signed_with_another_secret_are_refused() {
    let w = world().await;
    let key = ApiKey::new(&w.fx.api_key).unwrap();
    let client =
        OAuth1Client::new(&w.base_url, key, Token::new("not-the-secret").unwrap()).unwrap();
    let err = client
        .request_token("http://127.0.0.1:9/cb")
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::Unauthenticated { .. }), "{err:?}");
    assert!(!err.to_string().contains("not-the-secret"));
}

#[tokio::test]
async fn the_authorize_page_returns_the_token_in_the_fragment() {
    let w = world().await;
    let root = url::Url::parse(&w.base_url).unwrap();
    let key = ApiKey::new(&w.fx.api_key).unwrap();
    let page = authorize_url_at(
        &root,
        &key,
        &AuthorizeOptions {
            expiration: Expiration::OneHour,
            return_url: Some("http://127.0.0.1:9/settings/trello/return".into()),
            ..AuthorizeOptions::default()
        },
    );
    let b = browser();
    let html = follow(&b, &page, None).await.text().await.unwrap();
    let resp = follow(
        &b,
        &format!("{}/authorize", w.base_url),
        Some(&allow_form(&html)),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let token = location
        .strip_prefix("http://127.0.0.1:9/settings/trello/return#token=")
        .expect("token in the fragment");
    assert_eq!(token.len(), 76);
    let a = token_works(&w, token).await;
    let info = a.token_info().await.unwrap();
    assert!(info.expires_at.is_some(), "1hour expires");
    let _ = config(&w, token);
}
