//! A local HTTP server that behaves like Linear's GraphQL API (and its OAuth2
//! endpoints) for everything a tracker adapter uses; see `docs/linear-sim.md`.

mod auth;
mod complexity;
mod exec;
mod faults;
mod filter;
mod graphql;
mod handle;
mod http;
mod ids;
mod log;
mod oauth;
mod ratelimit;
mod state;
mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::{Fault, FaultRule};
pub use handle::{
    Fixture, FixtureKeys, FixtureOAuthClient, FixtureTeam, FixtureUser, SimAttachment, SimHandle,
    SimIssue,
};
pub use log::LoggedRequest;
pub use state::Scopes;
pub use webhooks::{SimDelivery, SimWebhook};

/// Server settings. Limits are per `period` (Linear: one hour), so a test
/// can shrink the period instead of sending thousands of requests.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Added to every response.
    pub latency: Duration,
    /// The leaky buckets' period (Linear: 1 h). Buckets refill at
    /// `limit / period`.
    pub period: Duration,
    /// Requests per period per user for API keys (FACTS.md: 2,500).
    pub api_key_requests: u32,
    /// Complexity points per period per user for API keys (FACTS.md: 3,000,000).
    pub api_key_complexity: u64,
    /// Requests per period per user and OAuth app (FACTS.md: 5,000).
    pub oauth_requests: u32,
    /// Complexity points per period per user and OAuth app (FACTS.md: 2,000,000).
    pub oauth_complexity: u64,
    /// Requests per period without valid credentials (FACTS.md: 600 per IP).
    pub unauthenticated_requests: u32,
    /// Largest complexity of one query (FACTS.md: 10,000).
    pub max_complexity: u64,
    /// Lifetime of OAuth access tokens (`expires_in`).
    pub access_token_ttl: Duration,
    /// Re-render descriptions written through the API as Linear's editor
    /// would (see `docs/linear-sim.md`); person edits are always re-rendered.
    pub normalize_markdown: bool,
    /// Waits before each retry of a failed webhook delivery: Linear retries 3 times,
    /// after 1 minute, 1 hour and 6 hours (see `webhooks.rs`). Tests scale them down.
    pub webhook_retry_delays: Vec<Duration>,
    /// How long a receiver may take to answer (Linear: 5 s).
    pub webhook_timeout: Duration,
    /// Accept `http://` webhook URLs on loopback hosts. Linear delivers only to public
    /// HTTPS URLs, so this is off by default; tests and the demo turn it on.
    pub allow_loopback_webhooks: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            port: 0,
            latency: Duration::ZERO,
            period: Duration::from_secs(3600),
            api_key_requests: 2_500,
            api_key_complexity: 3_000_000,
            oauth_requests: 5_000,
            oauth_complexity: 2_000_000,
            unauthenticated_requests: 600,
            max_complexity: 10_000,
            access_token_ttl: Duration::from_secs(86_399),
            normalize_markdown: true,
            webhook_retry_delays: vec![
                Duration::from_secs(60),
                Duration::from_secs(3600),
                Duration::from_secs(6 * 3600),
            ],
            webhook_timeout: Duration::from_secs(5),
            allow_loopback_webhooks: false,
        }
    }
}

/// A running simulator. Dropping it without [`SimServer::shutdown`] also
/// stops it.
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    handle: SimHandle,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl SimServer {
    /// Loads the vendored schema, binds 127.0.0.1:`config.port` and starts
    /// serving with an empty world.
    pub async fn start(config: SimConfig) -> anyhow::Result<SimServer> {
        if config.period.is_zero() {
            anyhow::bail!("rate-limit period must be positive");
        }
        graphql::schema().map_err(|e| anyhow::anyhow!(e))?;
        let listener = TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind 127.0.0.1:{}: {e}", config.port))?;
        let addr = listener.local_addr()?;
        #[allow(clippy::cast_precision_loss)]
        let limits = |r: u32, c: u64| ratelimit::Limits {
            requests: f64::from(r),
            complexity: c as f64,
        };
        let cfg = graphql::GqlConfig {
            api_key: limits(config.api_key_requests, config.api_key_complexity),
            oauth: limits(config.oauth_requests, config.oauth_complexity),
            unauthenticated: limits(config.unauthenticated_requests, 100_000),
            max_complexity: config.max_complexity,
            markdown: config.normalize_markdown,
            allow_loopback_webhooks: config.allow_loopback_webhooks,
        };
        let mut world = state::State::new(
            ratelimit::RateLimiter::new(config.period),
            config.latency,
            config.access_token_ttl,
        );
        let (outbox, outgoing) = tokio::sync::mpsc::unbounded_channel();
        world.outbox = Some(outbox);
        let shared = Arc::new(http::Shared {
            state: Mutex::new(world),
            cfg,
        });
        let delivery = webhooks::DeliveryConfig {
            retry_delays: config.webhook_retry_delays.clone(),
            timeout: config.webhook_timeout,
        };
        let deliveries = tokio::spawn(webhooks::deliver_all(shared.clone(), outgoing, delivery));
        let (tx, rx) = watch::channel(false);
        let server = tokio::spawn(http::serve(listener, shared.clone(), rx));
        let task = tokio::spawn(async move {
            let _ = server.await;
            deliveries.abort();
        });
        Ok(SimServer {
            addr,
            handle: SimHandle::new(shared),
            shutdown: tx,
            task,
        })
    }

    /// The GraphQL endpoint, e.g. `http://127.0.0.1:41234/graphql`.
    pub fn base_url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// The server root for the OAuth endpoints, e.g. `http://127.0.0.1:41234`
    /// (`/oauth/authorize`, `/oauth/token`, `/oauth/revoke`).
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle controlling the simulated world.
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    /// Stops accepting, closes open connections and waits for the server.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}
