//! A local HTTP server that behaves like the Trello REST API for everything
//! a card-exporting client uses; see `docs/trello-sim.md`.

mod auth;
pub mod callback;
mod faults;
mod handle;
mod http;
mod ids;
mod log;
mod oauth1;
mod ratelimit;
mod routes;
mod state;
mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::{Fault, FaultRule};
pub use handle::{Fixture, FixtureMember, FixtureTokens, SimHandle, Workspace};
pub use log::{Limit, LoggedRequest};
pub use state::{Permission, SimCard, SimCheckItem, SimChecklist, SimLabel};
pub use webhooks::{SimDelivery, SimWebhook};

/// Server settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Added to every response.
    pub latency: Duration,
    /// Trello's 10 s rate-limit window, scalable for tests. The 900 s
    /// /1/members window scales by the same factor (`window / 10 s`).
    pub window: Duration,
    /// Requests per window per token (Trello: 100).
    pub token_limit: u32,
    /// Requests per window per API key, shared by its tokens (Trello: 300).
    pub key_limit: u32,
    /// Requests per scaled 900 s per token on /1/members/{id} (Trello: 100).
    pub members_limit: u32,
    /// Waits before each retry of a failed webhook delivery: Trello retries 3 times,
    /// after 30, 60 and 120 s (see `webhooks.rs`). Tests scale them down.
    pub webhook_retry_delays: Vec<Duration>,
    /// How long a callback may take to answer a delivery or the HEAD check.
    pub webhook_timeout: Duration,
    /// Consecutive failed attempts after which a webhook turns inactive, once it has
    /// also been failing for `webhook_disable_after_failing_for` (Trello: more than
    /// 1,000 failures over 30 days, see `webhooks.rs`). Tests lower both.
    pub webhook_disable_after: u32,
    /// How long a webhook must have been failing, without one success, before it turns
    /// inactive (from `firstConsecutiveFailDate`).
    pub webhook_disable_after_failing_for: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            port: 0,
            latency: Duration::ZERO,
            window: Duration::from_secs(10),
            token_limit: 100,
            key_limit: 300,
            members_limit: 100,
            webhook_retry_delays: vec![
                Duration::from_secs(30),
                Duration::from_secs(60),
                Duration::from_secs(120),
            ],
            webhook_timeout: Duration::from_secs(10),
            webhook_disable_after: 1000,
            webhook_disable_after_failing_for: Duration::from_secs(30 * 24 * 3600),
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
    /// Binds 127.0.0.1:`config.port` and starts serving with an empty world.
    pub async fn start(config: SimConfig) -> anyhow::Result<SimServer> {
        if config.window.is_zero() {
            anyhow::bail!("rate-limit window must be positive");
        }
        let listener = TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind 127.0.0.1:{}: {e}", config.port))?;
        let addr = listener.local_addr()?;
        let limiter = ratelimit::RateLimiter::new(
            config.window,
            config.token_limit,
            config.key_limit,
            config.members_limit,
        );
        let (outbox, outgoing) = tokio::sync::mpsc::unbounded_channel();
        let mut world = state::State::new(limiter, config.latency);
        world.outbox = Some(outbox);
        let shared = Arc::new(http::Shared {
            state: Mutex::new(world),
            epoch: std::time::Instant::now(),
            webhook_timeout: config.webhook_timeout,
        });
        let delivery = webhooks::DeliveryConfig {
            retry_delays: config.webhook_retry_delays.clone(),
            timeout: config.webhook_timeout,
            disable_after: config.webhook_disable_after.max(1),
            disable_after_failing_for: config.webhook_disable_after_failing_for,
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

    /// The API root, e.g. `http://127.0.0.1:41234/1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/1", self.addr)
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
