//! Shared set-up for the integration tests: a simulator on 127.0.0.1 with a scaled
//! rate-limit window, its standard world, and adapters for its tokens.
#![allow(dead_code)]

use std::time::Duration;

use trello_sim::{Fixture, SimConfig, SimHandle, SimServer};
use webriskops_domain::{ApiKey, Token};
use webriskops_trello::{RateLimits, RetryPolicy, TrelloAdapter, TrelloConfig};

/// The scaled window: Trello's limits (100 per token, 300 per key) per second.
pub const WINDOW: Duration = Duration::from_secs(1);

pub struct World {
    pub sim: SimServer,
    pub handle: SimHandle,
    pub fx: Fixture,
    pub base_url: String,
}

pub fn sim_config() -> SimConfig {
    SimConfig {
        port: 0,
        latency: Duration::from_millis(2),
        window: WINDOW,
        token_limit: 100,
        key_limit: 300,
        members_limit: 100,
        ..SimConfig::default()
    }
}

pub async fn world_with(config: SimConfig) -> World {
    let sim = SimServer::start(config).await.expect("simulator starts");
    let handle = sim.handle();
    let fx = handle.seed_standard();
    let base_url = sim.base_url();
    World {
        sim,
        handle,
        fx,
        base_url,
    }
}

pub async fn world() -> World {
    world_with(sim_config()).await
}

/// Fast retries so fault tests stay short.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 8,
        initial_backoff_ms: 10,
        max_backoff_ms: 200,
        multiplier: 2.0,
        jitter: 0.5,
        ..RetryPolicy::default()
    }
}

pub fn config(w: &World, token: &str) -> TrelloConfig {
    let mut c = TrelloConfig::new(
        ApiKey::new(&w.fx.api_key).expect("fixture key"),
        Token::new(token).expect("fixture token"),
    )
    .with_api_root(&w.base_url)
    .expect("loopback http is accepted");
    c.limits = RateLimits::scaled(WINDOW);
    c.retry = fast_retry();
    c.timeout = Duration::from_secs(5);
    c
}

pub fn adapter(w: &World, token: &str) -> TrelloAdapter {
    TrelloAdapter::new(config(w, token)).expect("adapter builds")
}

/// A well-formed id nothing has.
pub const MISSING_ID: &str = "5f00000000000000000000aa";
