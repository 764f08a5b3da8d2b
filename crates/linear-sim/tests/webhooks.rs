//! Webhooks over real HTTP: `webhookCreate`/`webhookDelete`/`webhook` as the schema
//! and Linear's rules say, and signed deliveries of issue changes with retries.

mod common;

use std::time::Duration;

use common::{env_with, Env};
use hmac::{Hmac, Mac};
use linear_sim::SimConfig;
use serde_json::{json, Value};
use sha2::Sha256;
use trello_sim::callback::{CallbackServer, Received};

const WAIT: Duration = Duration::from_secs(20);

const CREATE: &str = "mutation C($input: WebhookCreateInput!) { webhookCreate(input: $input) { success webhook { id url enabled secret resourceTypes team { id } } } }";
const DELETE: &str = "mutation D($id: String!) { webhookDelete(id: $id) { success entityId } }";
const GET: &str = "query W($id: String!) { webhook(id: $id) { id enabled } }";

fn config() -> SimConfig {
    SimConfig {
        allow_loopback_webhooks: true,
        webhook_retry_delays: vec![Duration::from_millis(10); 3],
        ..SimConfig::default()
    }
}

async fn create(e: &Env, key: &str, input: Value) -> common::Answer {
    e.gql_as(Some(key), CREATE, json!({ "input": input })).await
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

fn body(r: &Received) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

async fn until(cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn creating_a_webhook_needs_admin_a_team_and_an_acceptable_url() {
    let e = env_with(config()).await;
    let cb = CallbackServer::start().await;
    let input = json!({"url": cb.url("/hooks/linear/1"), "teamId": e.fx.eng.id, "resourceTypes": ["Issue"]});

    let a = create(&e, &e.fx.keys.full.clone(), input.clone()).await;
    assert_eq!(a.code(), "FORBIDDEN", "{}", a.body);
    assert!(e.h.webhooks().is_empty());

    let a = create(
        &e,
        &e.fx.keys.admin.clone(),
        json!({"url": cb.url("/x"), "resourceTypes": ["Issue"]}),
    )
    .await;
    assert!(
        a.body["errors"].is_array(),
        "no team and not all public teams: {}",
        a.body
    );

    let a = create(
        &e,
        &e.fx.keys.admin.clone(),
        json!({"url": "not a url", "teamId": e.fx.eng.id, "resourceTypes": ["Issue"]}),
    )
    .await;
    assert!(a.body["errors"].is_array(), "{}", a.body);

    // A document the schema refuses (no resourceTypes) never reaches the resolver.
    let a = create(
        &e,
        &e.fx.keys.admin.clone(),
        json!({"url": cb.url("/x"), "teamId": e.fx.eng.id}),
    )
    .await;
    assert!(a.body["errors"].is_array(), "{}", a.body);

    let a = create(&e, &e.fx.keys.admin.clone(), input).await;
    let w = &a.body["data"]["webhookCreate"]["webhook"];
    assert_eq!(
        a.body["data"]["webhookCreate"]["success"], true,
        "{}",
        a.body
    );
    assert_eq!(w["team"]["id"], e.fx.eng.id.as_str());
    assert_eq!(w["enabled"], true);
    assert!(
        w["secret"].as_str().is_some_and(|s| s.len() >= 32),
        "generated: {w}"
    );
    let id = w["id"].as_str().unwrap().to_owned();

    let a = e
        .gql_as(Some(&e.fx.keys.admin.clone()), GET, json!({"id": id}))
        .await;
    assert_eq!(a.body["data"]["webhook"]["enabled"], true);
    let a = e
        .gql_as(Some(&e.fx.keys.admin.clone()), DELETE, json!({"id": id}))
        .await;
    assert_eq!(a.body["data"]["webhookDelete"]["entityId"], id.as_str());
    let a = e
        .gql_as(Some(&e.fx.keys.admin.clone()), DELETE, json!({"id": id}))
        .await;
    assert!(a.body["errors"].is_array());
}

#[tokio::test]
async fn plain_http_and_localhost_urls_are_refused_by_default() {
    let e = env_with(SimConfig::default()).await;
    for url in [
        "http://127.0.0.1:9/h",
        "https://localhost/h",
        "http://hooks.example/h",
    ] {
        let a = create(
            &e,
            &e.fx.keys.admin.clone(),
            json!({"url": url, "teamId": e.fx.eng.id, "resourceTypes": ["Issue"]}),
        )
        .await;
        assert!(a.body["errors"].is_array(), "{url}: {}", a.body);
    }
    let a = create(&e, &e.fx.keys.admin.clone(), json!({"url": "https://hooks.example/h", "teamId": e.fx.eng.id, "resourceTypes": ["Issue"]})).await;
    assert_eq!(
        a.body["data"]["webhookCreate"]["success"], true,
        "{}",
        a.body
    );
}

#[tokio::test]
async fn a_person_moving_an_issue_is_delivered_signed_and_retried_with_one_delivery_id() {
    let e = env_with(config()).await;
    let cb = CallbackServer::start().await;
    let a = create(
        &e,
        &e.fx.keys.admin.clone(),
        json!({"url": cb.url("/hooks/linear/t1"), "teamId": e.fx.eng.id, "resourceTypes": ["Issue"], "secret": "whsec-test"}),
    )
    .await;
    assert_eq!(
        a.body["data"]["webhookCreate"]["success"], true,
        "{}",
        a.body
    );
    let issue =
        e.h.person_create_issue(&e.fx.ops.id, "other team: no delivery", "");
    let issue_eng = e.h.person_create_issue(&e.fx.eng.id, "SSRF", "");
    let creates = cb.wait_for_posts(1, WAIT).await;
    assert_eq!(body(&creates[0])["action"], "create");
    assert_eq!(body(&creates[0])["data"]["id"], issue_eng.as_str());
    assert_ne!(issue, issue_eng);

    cb.script_posts(&[500, 502]);
    e.h.person_move_issue(&issue_eng, &e.fx.eng.done);
    let posts = cb.wait_for_posts(4, WAIT).await;
    let moves = &posts[1..];
    for p in moves {
        let b = body(p);
        assert_eq!(b["action"], "update");
        assert_eq!(b["type"], "Issue");
        assert_eq!(b["data"]["stateId"], e.fx.eng.done.as_str());
        assert_eq!(
            b["updatedFrom"]["stateId"],
            body(&creates[0])["data"]["stateId"]
        );
        assert_ne!(b["updatedFrom"]["stateId"], b["data"]["stateId"]);
        assert!(b["webhookTimestamp"].as_i64().is_some());
        assert_eq!(p.header("linear-event"), Some("Issue"));
        assert_eq!(
            p.header("linear-signature"),
            Some(hmac_hex("whsec-test", &p.body).as_str())
        );
    }
    let ids: Vec<_> = moves
        .iter()
        .map(|p| p.header("linear-delivery").unwrap())
        .collect();
    assert!(
        ids.iter().all(|d| *d == ids[0]),
        "retries keep the delivery id"
    );
    assert_ne!(creates[0].header("linear-delivery"), Some(ids[0]));
    until(|| e.h.webhook_deliveries().len() == 4).await;
    let attempts: Vec<_> =
        e.h.webhook_deliveries()
            .into_iter()
            .skip(1)
            .map(|d| (d.attempt, d.status))
            .collect();
    assert_eq!(attempts, vec![(1, 500), (2, 502), (3, 200)]);
}

#[tokio::test]
async fn a_failing_receiver_gets_three_retries_and_a_disabled_webhook_none() {
    let e = env_with(config()).await;
    let cb = CallbackServer::start().await;
    cb.set_post_status(503);
    let a = create(
        &e,
        &e.fx.keys.admin.clone(),
        json!({"url": cb.url("/h"), "teamId": e.fx.eng.id, "resourceTypes": ["Issue"]}),
    )
    .await;
    let id = a.body["data"]["webhookCreate"]["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // An API change is delivered as a person's is.
    let made = e
        .data(
            "mutation M($input: IssueCreateInput!) { issueCreate(input: $input) { issue { id } } }",
            json!({"input": {"teamId": e.fx.eng.id, "title": "via API"}}),
        )
        .await;
    assert!(made["issueCreate"]["issue"]["id"].is_string());
    cb.wait_for_posts(4, WAIT).await;
    until(|| e.h.webhook_deliveries().len() == 4).await;
    assert_eq!(
        e.h.webhook_deliveries().len(),
        4,
        "1 attempt + 3 retries, then none"
    );

    e.h.set_webhook_enabled(&id, false);
    // A second, enabled webhook hears of the next change; the disabled one does not.
    let healthy = CallbackServer::start().await;
    create(
        &e,
        &e.fx.keys.admin.clone(),
        json!({"url": healthy.url("/ok"), "teamId": e.fx.eng.id, "resourceTypes": ["Issue"]}),
    )
    .await;
    e.h.person_create_issue(&e.fx.eng.id, "not delivered to the disabled one", "");
    healthy.wait_for_posts(1, WAIT).await;
    until(|| e.h.webhook_deliveries().len() == 5).await;
    assert_eq!(cb.posts().len(), 4);
}
