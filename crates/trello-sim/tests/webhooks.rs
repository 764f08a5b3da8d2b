//! Webhooks over real HTTP: creation with the HEAD check and the duplicate rule,
//! reading and deleting by the creating token only, signed deliveries when a person or
//! the API changes a card, retries, 410 and deactivation (FACTS.md §7).

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{env, env_with, json, read, Env};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::Value;
use sha1::Sha1;
use trello_sim::callback::{CallbackServer, Received};
use trello_sim::SimConfig;

const WAIT: Duration = Duration::from_secs(20);

fn fast() -> SimConfig {
    SimConfig {
        webhook_retry_delays: vec![Duration::from_millis(10); 3],
        ..SimConfig::default()
    }
}

async fn create(e: &Env, token: &str, callback: &str, model: &str) -> (u16, String) {
    read(
        e.req(Method::POST, "/webhooks/", token)
            .form(&[
                ("callbackURL", callback),
                ("idModel", model),
                ("description", "webriskops"),
            ])
            .send()
            .await
            .expect("response"),
    )
    .await
}

fn expected_signature(secret: &str, body: &[u8], callback: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.update(callback.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Waits (up to `WAIT`) until `cond` holds: the simulator records an attempt just
/// after the receiver has answered it.
async fn until(cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn body(r: &Received) -> Value {
    serde_json::from_slice(&r.body).expect("json delivery")
}

#[tokio::test]
async fn create_checks_the_callback_with_head_and_refuses_duplicates() {
    let e = env().await;
    let cb = CallbackServer::start().await;
    let url = cb.url("/hooks/trello/abc");
    let (status, text) = create(&e, e.full(), &url, &e.fx.board_id).await;
    assert_eq!(status, 200, "{text}");
    let w = json(&text);
    assert_eq!(w["idModel"], e.fx.board_id.as_str());
    assert_eq!(w["callbackURL"], url.as_str());
    assert_eq!(w["active"], true);
    assert_eq!(w["consecutiveFailures"], 0);
    let heads: Vec<_> = cb
        .received()
        .into_iter()
        .filter(|r| r.method == "HEAD")
        .collect();
    assert_eq!(heads.len(), 1, "one HEAD check before creating");
    assert_eq!(heads[0].path, "/hooks/trello/abc");

    let (status, text) = create(&e, e.full(), &url, &e.fx.board_id).await;
    assert_eq!(status, 400);
    assert_eq!(
        text,
        "A webhook with that callback, model, and token already exists"
    );
    // Another token may watch the same model with the same callback.
    let (status, _) = create(&e, &e.fx.tokens.revocable, &url, &e.fx.board_id).await;
    assert_eq!(status, 200);
    assert_eq!(e.h.webhooks().len(), 2);
}

#[tokio::test]
async fn create_fails_when_the_callback_does_not_answer_200() {
    let e = env().await;
    let cb = CallbackServer::start().await;
    cb.set_head_status(404);
    let url = cb.url("/hooks/x");
    let (status, text) = create(&e, e.full(), &url, &e.fx.board_id).await;
    assert_eq!(status, 400);
    assert_eq!(
        text,
        format!("URL ({url}) did not return 200 status code, got 404")
    );

    drop(cb); // nothing listens any more
    let (status, text) = create(&e, e.full(), &url, &e.fx.board_id).await;
    assert_eq!(status, 400);
    assert!(text.contains("did not return 200 status code"), "{text}");
    assert!(e.h.webhooks().is_empty());

    let (status, text) = create(&e, e.full(), "not a url", &e.fx.board_id).await;
    assert_eq!(
        (status, text.as_str()),
        (400, "invalid value for callbackURL")
    );
    let (status, text) = create(&e, e.full(), "http://127.0.0.1:9/x", "nope").await;
    assert_eq!((status, text.as_str()), (400, "invalid value for idModel"));
    let (status, _) = create(
        &e,
        &e.fx.tokens.other_board_only,
        "http://127.0.0.1:9/x",
        &e.fx.board_id,
    )
    .await;
    assert_eq!(status, 401, "a board the token cannot read");
}

#[tokio::test]
async fn only_the_creating_token_reads_lists_and_deletes_a_webhook() {
    let e = env().await;
    let cb = CallbackServer::start().await;
    let (_, text) = create(&e, e.full(), &cb.url("/h"), &e.fx.board_id).await;
    let id = json(&text)["id"].as_str().unwrap().to_owned();

    let w = e.get_json(&format!("/webhooks/{id}"), e.full()).await;
    assert_eq!(w["id"], id.as_str());
    let (status, text) = e
        .get(&format!("/webhooks/{id}"), &e.fx.tokens.revocable)
        .await;
    assert_eq!(
        (status, text.as_str()),
        (401, "webhook does not belong to token")
    );

    let list = e
        .get_json(&format!("/tokens/{}/webhooks", e.full()), e.full())
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, text) = e
        .get(
            &format!("/tokens/{}/webhooks", e.full()),
            &e.fx.tokens.revocable,
        )
        .await;
    assert_eq!((status, text.as_str()), (401, "unauthorized token"));

    let (status, _) = read(
        e.req(
            Method::DELETE,
            &format!("/webhooks/{id}"),
            &e.fx.tokens.revocable,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = read(
        e.req(Method::DELETE, &format!("/webhooks/{id}"), e.full())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = e.get(&format!("/webhooks/{id}"), e.full()).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_person_moving_a_card_is_delivered_signed_with_the_application_secret() {
    let e = env_with(fast()).await;
    e.h.set_api_secret(&e.fx.api_key, "app-secret-under-test");
    let cb = CallbackServer::start().await;
    let url = cb.url("/hooks/trello/tenant-1");
    let (status, _) = create(&e, e.full(), &url, &e.fx.board_id).await;
    assert_eq!(status, 200);
    let card = e.h.person_create_card(&e.fx.list_id, "SQL injection", "");
    e.h.person_move_card(&card, &e.fx.done_list_id);

    let posts = cb.wait_for_posts(2, WAIT).await;
    let moved = posts
        .iter()
        .find(|p| body(p)["action"]["type"] == "updateCard")
        .expect("an updateCard delivery");
    let b = body(moved);
    assert_eq!(b["action"]["data"]["card"]["id"], card.as_str());
    assert_eq!(
        b["action"]["data"]["listAfter"]["id"],
        e.fx.done_list_id.as_str()
    );
    assert_eq!(
        b["action"]["data"]["listBefore"]["id"],
        e.fx.list_id.as_str()
    );
    assert_eq!(b["model"]["id"], e.fx.board_id.as_str());
    assert!(b["action"]["id"].as_str().is_some_and(|s| s.len() == 24));
    assert_eq!(
        moved.header("x-trello-webhook"),
        Some(expected_signature("app-secret-under-test", &moved.body, &url).as_str())
    );
    assert_eq!(moved.header("content-type"), Some("application/json"));
    // Each action has its own id.
    let ids: std::collections::HashSet<_> = posts
        .iter()
        .map(|p| body(p)["action"]["id"].clone())
        .collect();
    assert_eq!(ids.len(), posts.len());
}

#[tokio::test]
async fn an_api_change_is_delivered_too_and_the_fixture_carries_the_secret() {
    let e = env_with(fast()).await;
    let cb = CallbackServer::start().await;
    let url = cb.url("/h");
    create(&e, e.full(), &url, &e.fx.board_id).await;
    let (status, text) = read(
        e.req(Method::POST, "/cards", e.full())
            .form(&[("idList", e.fx.list_id.as_str()), ("name", "XSS")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let card = json(&text)["id"].as_str().unwrap().to_owned();
    let posts = cb.wait_for_posts(1, WAIT).await;
    let b = body(&posts[0]);
    assert_eq!(b["action"]["type"], "createCard");
    assert_eq!(b["action"]["data"]["card"]["id"], card.as_str());
    assert_eq!(
        posts[0].header("x-trello-webhook"),
        Some(expected_signature(&e.fx.api_secret, &posts[0].body, &url).as_str())
    );
}

#[tokio::test]
async fn a_failed_delivery_is_retried_three_times_with_the_same_action() {
    let e = env_with(fast()).await;
    let cb = CallbackServer::start().await;
    create(&e, e.full(), &cb.url("/h"), &e.fx.board_id).await;
    cb.script_posts(&[500, 503, 502]);
    let card = e.h.person_create_card(&e.fx.list_id, "CSRF", "");
    let posts = cb.wait_for_posts(4, WAIT).await;
    assert_eq!(posts.len(), 4, "1 attempt + 3 retries");
    assert!(posts.iter().all(|p| p.body == posts[0].body));
    assert_eq!(
        body(&posts[0])["action"]["data"]["card"]["id"],
        card.as_str()
    );
    until(|| e.h.webhook_deliveries().len() == 4).await;
    let attempts: Vec<_> =
        e.h.webhook_deliveries()
            .iter()
            .map(|d| (d.attempt, d.status))
            .collect();
    assert_eq!(attempts, vec![(1, 500), (2, 503), (3, 502), (4, 200)]);
    assert_eq!(
        e.h.webhooks()[0].consecutive_failures,
        0,
        "reset by the success"
    );
}

#[tokio::test]
async fn gone_deletes_the_webhook_and_repeated_failures_deactivate_it() {
    let e = env_with(SimConfig {
        webhook_disable_after: 4,
        webhook_disable_after_failing_for: Duration::ZERO,
        ..fast()
    })
    .await;
    let gone = CallbackServer::start().await;
    gone.set_post_status(410);
    create(&e, e.full(), &gone.url("/gone"), &e.fx.board_id).await;
    e.h.person_create_card(&e.fx.list_id, "one", "");
    gone.wait_for_posts(1, WAIT).await;
    until(|| e.h.webhooks().is_empty()).await;
    assert!(e.h.webhooks().is_empty(), "410 deletes the webhook");

    let failing = CallbackServer::start().await;
    failing.set_post_status(500);
    create(&e, e.full(), &failing.url("/fail"), &e.fx.board_id).await;
    e.h.person_create_card(&e.fx.list_id, "two", "");
    failing.wait_for_posts(4, WAIT).await;
    until(|| !e.h.webhooks()[0].active).await;
    let w = &e.h.webhooks()[0];
    assert!(!w.active, "deactivated after 4 consecutive failures");
    assert_eq!(w.consecutive_failures, 4);
    let (_, text) = e.get(&format!("/webhooks/{}", w.id), e.full()).await;
    assert_eq!(json(&text)["active"], false);
    // No delivery to an inactive webhook: a second, healthy webhook hears of the next
    // action (queued after it), the inactive one does not.
    let healthy = CallbackServer::start().await;
    create(&e, e.full(), &healthy.url("/ok"), &e.fx.board_id).await;
    e.h.person_create_card(&e.fx.list_id, "three", "");
    healthy.wait_for_posts(1, WAIT).await;
    until(|| e.h.webhook_deliveries().iter().any(|d| d.status == 200)).await;
    assert_eq!(failing.posts().len(), 4);
}

/// Trello disables a webhook only after it has kept failing for a while (30 days by
/// default), not on a burst of failures.
#[tokio::test]
async fn failures_deactivate_a_webhook_only_once_it_has_been_failing_long_enough() {
    let e = env_with(SimConfig {
        webhook_disable_after: 2,
        webhook_disable_after_failing_for: Duration::from_secs(3600),
        ..fast()
    })
    .await;
    let failing = CallbackServer::start().await;
    failing.set_post_status(500);
    create(&e, e.full(), &failing.url("/fail"), &e.fx.board_id).await;
    e.h.person_create_card(&e.fx.list_id, "one", "");
    failing.wait_for_posts(4, WAIT).await;
    until(|| e.h.webhook_deliveries().len() == 4).await;
    let w = &e.h.webhooks()[0];
    assert_eq!(w.consecutive_failures, 4);
    assert!(w.active, "failing for less than an hour: still active");
}

#[tokio::test]
async fn revoking_the_token_deletes_its_webhooks() {
    let e = env().await;
    let cb = CallbackServer::start().await;
    create(&e, &e.fx.tokens.revocable, &cb.url("/h"), &e.fx.board_id).await;
    assert_eq!(e.h.webhooks().len(), 1);
    let (status, _) = read(
        e.req(
            Method::DELETE,
            &format!("/tokens/{}/", e.fx.tokens.revocable),
            &e.fx.tokens.revocable,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(e.h.webhooks().is_empty());
}

#[tokio::test]
async fn api_moves_and_deletes_are_delivered_as_trello_types() {
    let e = env_with(fast()).await;
    let cb = CallbackServer::start().await;
    create(&e, e.full(), &cb.url("/h"), &e.fx.board_id).await;
    let card = e.h.person_create_card(&e.fx.list_id, "move me", "");
    let (status, _) = read(
        e.req(Method::PUT, &format!("/cards/{card}"), e.full())
            .form(&[("idList", e.fx.done_list_id.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = read(
        e.req(Method::DELETE, &format!("/cards/{card}"), e.full())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let posts = cb.wait_for_posts(3, WAIT).await;
    let mut kinds: Vec<String> = posts
        .iter()
        .map(|p| body(p)["action"]["type"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["createCard", "deleteCard", "updateCard"]);
    let update = posts
        .iter()
        .map(body)
        .find(|b| b["action"]["type"] == "updateCard")
        .unwrap();
    assert_eq!(
        update["action"]["data"]["old"]["idList"],
        e.fx.list_id.as_str()
    );
    assert_eq!(
        update["action"]["idMemberCreator"],
        e.fx.member("secops").unwrap().id.as_str()
    );
    assert!(posts
        .iter()
        .all(|p| body(p)["action"]["data"]["card"]["id"] == card.as_str()));
}
