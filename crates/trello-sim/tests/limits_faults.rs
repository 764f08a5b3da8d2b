//! Rate limits, injected faults, latency and the request log over real HTTP.

mod common;

use std::time::Duration;

use common::{env, env_with, json, read};
use reqwest::Method;
use serde_json::json as j;
use trello_sim::{Fault, FaultRule, Limit, SimConfig};

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn token_limit_then_window_passes() {
    let e = env_with(SimConfig {
        window: Duration::from_secs(1),
        token_limit: 5,
        ..SimConfig::default()
    })
    .await;
    let path = format!("/boards/{}", e.fx.board_id);
    for i in 0..5 {
        let resp = e.req(Method::GET, &path, e.full()).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            header(&resp, "x-rate-limit-api-token-remaining"),
            (4 - i).to_string()
        );
        assert_eq!(header(&resp, "x-rate-limit-api-token-interval-ms"), "1000");
        assert_eq!(header(&resp, "x-rate-limit-api-token-max"), "5");
        assert_eq!(header(&resp, "x-rate-limit-api-key-max"), "300");
        assert_eq!(header(&resp, "x-rate-limit-api-key-interval-ms"), "1000");
    }
    let resp = e.req(Method::GET, &path, e.full()).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "x-rate-limit-api-token-remaining"), "0");
    assert!(resp.headers().get("retry-after").is_none());
    let (_, body) = read(resp).await;
    assert_eq!(
        json(&body),
        j!({"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"})
    );
    assert_eq!(e.h.count_status(429), 1);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resp = e.req(Method::GET, &path, e.full()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn key_limit_is_shared_by_tokens() {
    let e = env_with(SimConfig {
        window: Duration::from_secs(5),
        token_limit: 5,
        key_limit: 6,
        ..SimConfig::default()
    })
    .await;
    let path = format!("/boards/{}", e.fx.board_id);
    for _ in 0..5 {
        assert_eq!(e.get(&path, e.full()).await.0, 200);
    }
    let ro = e.fx.tokens.read_only.clone();
    assert_eq!(e.get(&path, &ro).await.0, 200);
    let resp = e.req(Method::GET, &path, &ro).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "x-rate-limit-api-key-remaining"), "0");
    assert_eq!(header(&resp, "x-rate-limit-api-token-remaining"), "4");
    let (_, body) = read(resp).await;
    assert_eq!(json(&body)["error"], "API_KEY_LIMIT_EXCEEDED");
}

#[tokio::test]
async fn members_route_limit() {
    let e = env_with(SimConfig {
        window: Duration::from_millis(100),
        members_limit: 2,
        ..SimConfig::default()
    })
    .await;
    assert_eq!(e.get("/members/me", e.full()).await.0, 200);
    assert_eq!(e.get("/members/jdoe", e.full()).await.0, 200);
    let (status, body) = e.get("/members/me", e.full()).await;
    assert_eq!(status, 429);
    assert_eq!(
        json(&body),
        j!({"message": "Exceeded rate limit to /1/member", "error": "RATE_LIMIT_EXCEEDED"})
    );
    // Nested member routes do not count (FACTS.md §5).
    assert_eq!(e.get("/members/me/boards", e.full()).await.0, 200);
}

async fn create_card(e: &common::Env, name: &str) -> Result<(u16, String), reqwest::Error> {
    let resp = e
        .req(Method::POST, "/cards", e.full())
        .json(&j!({"idList": e.fx.list_id, "name": name}))
        .send()
        .await?;
    Ok(read(resp).await)
}

fn names(e: &common::Env) -> Vec<String> {
    e.h.cards(&e.fx.board_id)
        .into_iter()
        .map(|c| c.name)
        .collect()
}

#[tokio::test]
async fn status_and_429_faults_are_not_applied() {
    let e = env().await;
    e.h.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
        1,
        Fault::Status(503),
    ));
    e.h.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
        1,
        Fault::RateLimit429,
    ));
    // A GET does not match and does not consume the rules.
    assert_eq!(
        e.get(&format!("/boards/{}", e.fx.board_id), e.full())
            .await
            .0,
        200
    );
    let (status, body) = create_card(&e, "first").await.unwrap();
    assert_eq!((status, body.as_str()), (503, "Service Unavailable"));
    let (status, body) = create_card(&e, "second").await.unwrap();
    assert_eq!(status, 429);
    assert_eq!(json(&body)["error"], "API_TOKEN_LIMIT_EXCEEDED");
    assert!(names(&e).is_empty());
    assert_eq!(create_card(&e, "third").await.unwrap().0, 200);
    assert_eq!(names(&e), vec!["third".to_string()]);
    let statuses: Vec<u16> = e.h.request_log().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 503, 429, 200]);
    assert!(e.h.pending_faults().is_empty());
}

#[tokio::test]
async fn delay_after_apply_times_out_but_card_exists() {
    let e = env().await;
    e.h.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
        1,
        Fault::Delay {
            delay: Duration::from_millis(1500),
            after_apply: true,
        },
    ));
    let err = e
        .req(Method::POST, "/cards", e.full())
        .timeout(Duration::from_millis(300))
        .json(&j!({"idList": e.fx.list_id, "name": "slow"}))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(names(&e), vec!["slow".to_string()]);
    // The client gave up, and the request is still in the log (status 0: no answer delivered).
    let mut logged = false;
    for _ in 0..100 {
        if e.h
            .request_log()
            .iter()
            .any(|r| r.method == "POST" && r.route == "/1/cards" && r.status == 0)
        {
            logged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        logged,
        "abandoned request missing from the log: {:?}",
        e.h.request_log()
    );
}

#[tokio::test]
async fn dropped_connections() {
    let e = env().await;
    e.h.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
        1,
        Fault::DropConnection { after_apply: false },
    ));
    e.h.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
        1,
        Fault::DropConnection { after_apply: true },
    ));
    assert!(create_card(&e, "lost").await.is_err());
    assert!(names(&e).is_empty());
    assert!(create_card(&e, "applied").await.is_err());
    assert_eq!(names(&e), vec!["applied".to_string()]);
    assert_eq!(create_card(&e, "normal").await.unwrap().0, 200);
    assert_eq!(e.h.count_status(0), 2);
    assert_eq!(e.h.request_log()[0].route, "/1/cards");
}

#[tokio::test]
async fn latency_applies_to_every_response() {
    let e = env().await;
    e.h.set_latency(Duration::from_millis(60));
    assert_eq!(e.get("/nowhere", e.full()).await.0, 404);
    assert_eq!(e.get("/members/me", e.full()).await.0, 200);
    assert!(e.h.request_log().iter().all(|r| r.elapsed_ms >= 60));
    e.h.clear_request_log();
    assert_eq!(e.h.request_count(), 0);
    e.server.shutdown().await;
}

/// The log says when each request arrived, under which key and token (by the token's id,
/// never the token), and which limit refused a 429: what a benchmark of several clients
/// sharing one key measures its aggregate rate and its key-level 429s from.
#[tokio::test]
async fn the_log_names_key_token_arrival_and_the_refusing_limit() {
    let e = env_with(SimConfig {
        window: Duration::from_secs(5),
        token_limit: 2,
        key_limit: 3,
        ..SimConfig::default()
    })
    .await;
    let a = e.h.seed_workspace(&e.fx.api_key, "Alpha");
    let b = e.h.seed_workspace(&e.fx.api_key, "Beta");
    assert_ne!(a.token_id, b.token_id);
    assert_eq!(e.h.token_id(&a.token).as_deref(), Some(a.token_id.as_str()));
    for (token, board) in [
        (&a.token, &a.board_id),
        (&a.token, &a.board_id),
        (&a.token, &a.board_id), // over a's token budget
        (&b.token, &b.board_id),
        (&b.token, &b.board_id), // over the key's budget
    ] {
        e.get(&format!("/boards/{board}"), token).await;
    }
    let log = e.h.request_log();
    let statuses: Vec<u16> = log.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 429, 200, 429]);
    let limits: Vec<_> = log.iter().map(|r| r.limited_by).collect();
    assert_eq!(
        limits,
        [None, None, Some(Limit::Token), None, Some(Limit::Key)]
    );
    let tokens: Vec<&str> = log.iter().filter_map(|r| r.token_id.as_deref()).collect();
    assert_eq!(
        tokens,
        [
            &a.token_id,
            &a.token_id,
            &a.token_id,
            &b.token_id,
            &b.token_id
        ]
        .map(String::as_str)
    );
    assert!(log
        .iter()
        .all(|r| r.key.as_deref() == Some(e.fx.api_key.as_str())));
    assert!(
        log.windows(2).all(|w| w[0].at_us <= w[1].at_us),
        "arrivals in order"
    );
    let text = format!("{log:?}");
    assert!(!text.contains(&a.token) && !text.contains(&b.token));

    // A request without valid credentials is logged without a key or token.
    e.get(&format!("/boards/{}", a.board_id), "nope").await;
    let last = e.h.request_log().pop().unwrap();
    assert_eq!((last.status, last.key, last.token_id), (401, None, None));
}
