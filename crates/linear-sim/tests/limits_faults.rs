//! Rate limits, complexity, injected faults, latency and the request log over real HTTP.

mod common;

use std::time::Duration;

use common::{env, env_with};
use linear_sim::{Fault, FaultRule, SimConfig};
use serde_json::json;

#[tokio::test]
async fn request_budget_decreases_then_ratelimited_with_http_400() {
    // A 5-request budget per hour: nothing leaks back during the test.
    let e = env_with(SimConfig {
        api_key_requests: 5,
        ..SimConfig::default()
    })
    .await;
    let q = "{ viewer { id } }";
    for left in (0..5).rev() {
        let a = e.gql(q, json!({})).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("x-ratelimit-requests-limit"), "5");
        assert_eq!(a.header("x-ratelimit-requests-remaining"), left.to_string());
        assert_eq!(a.header("x-complexity"), "2");
        let reset: u64 = a.header("x-ratelimit-requests-reset").parse().unwrap();
        assert!(reset > 1_600_000_000_000, "reset is UTC epoch milliseconds");
        assert!(!a.header("x-ratelimit-complexity-remaining").is_empty());
    }
    // The read-only key belongs to the same user: same bucket.
    let ro = e.fx.keys.read_only.clone();
    let a = e.gql_as(Some(&ro), q, json!({})).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.code(), "RATELIMITED");
    assert_eq!(a.body["errors"][0]["extensions"]["type"], "ratelimited");
    assert_eq!(a.header("x-ratelimit-requests-remaining"), "0");
    // Another user has a budget of their own.
    let other = e.fx.keys.other_user.clone();
    assert_eq!(e.gql_as(Some(&other), q, json!({})).await.status, 200);
    assert_eq!(e.h.error_code_counts()["RATELIMITED"], 1);
}

#[tokio::test]
async fn the_bucket_leaks_back_over_a_scaled_period() {
    let e = env_with(SimConfig {
        api_key_requests: 2,
        period: Duration::from_millis(400),
        ..SimConfig::default()
    })
    .await;
    let q = "{ viewer { id } }";
    let mut refused = false;
    for _ in 0..10 {
        if e.gql(q, json!({})).await.code() == "RATELIMITED" {
            refused = true;
            break;
        }
    }
    assert!(refused, "a 2-request bucket refuses a burst");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        e.gql(q, json!({})).await.status,
        200,
        "a full period later it has room"
    );
}

#[tokio::test]
async fn complexity_is_estimated_and_large_queries_are_rejected() {
    let e = env_with(SimConfig {
        api_key_complexity: 1_000,
        ..SimConfig::default()
    })
    .await;
    // 1 (issues) + 10 * (1 node + 2 * 0.1) = 13 points.
    let a = e
        .gql("{ issues(first: 10) { nodes { id title } } }", json!({}))
        .await;
    assert_eq!(a.header("x-complexity"), "13");
    // Connections multiply their nodes: 1 + 100 * (1 + 1 + 100 * 1.1) = 11,201 > 10,000.
    let q = "{ teams(first: 100) { nodes { issues(first: 100) { nodes { id } } } } }";
    let a = e.gql(q, json!({})).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.code(), "QUERY_TOO_COMPLEX");
    assert_eq!(a.header("x-complexity"), "11201");
    // Without `first` a connection is charged for 50: 1 + 50 * 1.1 = 56.
    let a = e.gql("{ issues { nodes { id } } }", json!({})).await;
    assert_eq!(a.header("x-complexity"), "56");
    // Queries under 10,000 points still empty a small complexity bucket (1,000 here).
    let q = "{ issues(first: 100) { nodes { id title } } }";
    let mut refused = false;
    for _ in 0..12 {
        if e.gql(q, json!({})).await.code() == "RATELIMITED" {
            refused = true;
            break;
        }
    }
    assert!(refused, "complexity points run out before requests do");
    let log = e.h.request_log();
    assert!(log.iter().any(|r| r.complexity == Some(121)));
}

#[tokio::test]
async fn drop_after_apply_applies_the_write() {
    let e = env().await;
    e.h.inject(FaultRule::graphql(
        "issueCreate",
        1,
        Fault::DropConnection { after_apply: true },
    ));
    let q = "mutation($t: String!) { issueCreate(input: {teamId: $t, title: \"dropped\"}) { success } }";
    let sent = e
        .client
        .post(&e.url)
        .header("Authorization", &e.fx.keys.full)
        .json(&json!({"query": q, "variables": {"t": e.fx.eng.id}}))
        .send()
        .await;
    assert!(sent.is_err(), "the connection closes without an answer");
    let issues = e.h.issues(&e.fx.eng.id);
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].title, "dropped");
    let log = e.h.request_log();
    assert_eq!(log.last().unwrap().status, 0);
    assert_eq!(log.last().unwrap().root_fields, ["issueCreate"]);

    // Before apply: nothing is written.
    e.h.inject(FaultRule::graphql(
        "issueCreate",
        1,
        Fault::DropConnection { after_apply: false },
    ));
    let sent = e
        .client
        .post(&e.url)
        .header("Authorization", &e.fx.keys.full)
        .json(&json!({"query": q, "variables": {"t": e.fx.eng.id}}))
        .send()
        .await;
    assert!(sent.is_err());
    assert_eq!(e.h.issues(&e.fx.eng.id).len(), 1);
    assert!(e.h.pending_faults().is_empty());
}

#[tokio::test]
async fn status_ratelimited_and_delay_faults() {
    let e = env().await;
    let q = "{ viewer { id } }";
    e.h.inject(FaultRule::new(
        None,
        Some("/graphql"),
        1,
        Fault::Status(503),
    ));
    e.h.inject(FaultRule::graphql("viewer", 1, Fault::RateLimited));
    let a = e.gql(q, json!({})).await;
    assert_eq!(a.status, 503);
    let a = e.gql(q, json!({})).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.code(), "RATELIMITED");
    assert_eq!(e.gql(q, json!({})).await.status, 200);

    // Delay after apply: a client that gives up still created the issue.
    e.h.inject(FaultRule::graphql(
        "issueCreate",
        1,
        Fault::Delay {
            delay: Duration::from_secs(3),
            after_apply: true,
        },
    ));
    let m =
        "mutation($t: String!) { issueCreate(input: {teamId: $t, title: \"late\"}) { success } }";
    let sent = e
        .client
        .post(&e.url)
        .timeout(Duration::from_millis(300))
        .header("Authorization", &e.fx.keys.full)
        .json(&json!({"query": m, "variables": {"t": e.fx.eng.id}}))
        .send()
        .await;
    assert!(sent.is_err(), "the client timed out");
    assert_eq!(e.h.issues(&e.fx.eng.id).len(), 1);
}

#[tokio::test]
async fn the_log_records_operations_without_secrets() {
    let e = env().await;
    let q = "query Who { viewer { id } }";
    e.gql(q, json!({})).await;
    e.gql_as(Some("lin_api_bogus_secret"), q, json!({})).await;
    let log = e.h.request_log();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].operation_name.as_deref(), Some("Who"));
    assert_eq!(log[0].root_fields, ["viewer"]);
    assert_eq!(log[0].status, 200);
    assert_eq!(log[0].complexity, Some(2));
    assert_eq!(log[1].error_code.as_deref(), Some("AUTHENTICATION_ERROR"));
    let text = format!("{log:?}");
    assert!(!text.contains(&e.fx.keys.full));
    assert!(!text.contains("lin_api_bogus_secret"));
}
