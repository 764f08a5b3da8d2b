//! `webriskops serve`: the /settings pages, the JSON API and the webhook receivers, for
//! many tenants, over the same service layer as the CLI.
//!
//! This crate is a front end and nothing more: every handler authenticates the caller,
//! scopes the request to the caller's tenant, parses its input into a service request,
//! calls one use case and renders the outcome. It never names an adapter: the binary
//! composes the trackers and stores and hands them over as a [`Composer`].

mod api;
mod auth;
mod error;
mod hooks;
mod jobs;
pub mod json;
mod metrics;
mod openapi;
mod pages;
mod schema;
mod security;
mod state;
mod sync;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use webriskops_domain::{ProviderKey, Token};
use webriskops_ports::{
    Accounts, BudgetUsage, EventLog, ExportJobs, FindingSource, JobQueue, JobUploads,
    WebhookRegistry, WebhookSecret, WebhookVerifier,
};
use webriskops_service::{CompanionSecret, PortableWriter, ServicePorts, Tenancy, Tracker};

pub use api::route_list as api_routes;
pub use error::ApiError;
pub use metrics::MetricsToken;
pub use openapi::openapi_document;
pub use state::AppState;

/// Why the composer could not give what a request needs: what, and how to fix it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ComposeError {
    pub message: String,
    pub fix: String,
    /// A configuration problem of the server (500) rather than of the request (400).
    pub server_side: bool,
}

/// What the binary gives the server: stores, trackers and files, composed from its
/// configuration. Every method is scoped to one tenant by its arguments.
#[async_trait]
pub trait Composer: Send + Sync + 'static {
    /// The local ports (records, secrets, ledger, journal) without a tracker.
    fn local_ports(&self) -> ServicePorts;
    fn accounts(&self) -> Arc<dyn Accounts>;
    fn jobs(&self) -> Arc<dyn ExportJobs>;
    /// Export jobs claimed under leases (every replica's worker claims from it).
    fn queue(&self) -> Arc<dyn JobQueue>;
    /// The jobs' uploads, kept in the store so that any replica can run a job.
    fn uploads(&self) -> Arc<dyn JobUploads>;
    fn events(&self) -> Arc<dyn EventLog>;
    fn webhooks(&self) -> Arc<dyn WebhookRegistry>;
    /// Whether the stores can serve now (the database answers and holds this build's
    /// schema), for `/readyz`.
    ///
    /// # Errors
    /// Why not, in words for an operator, with no credential in them.
    async fn ready(&self) -> Result<(), String>;
    /// The use now of the key budget `provider`'s requests share with every replica (every
    /// tenant's part in it), when they spend one through the store; `None` when each
    /// process limits its own requests (SQLite, or `WEBRISKOPS_SHARED_BUDGET=off`), when
    /// the tracker has no per-key budget, or when the store does not answer.
    async fn key_budget(&self, provider: ProviderKey) -> Option<BudgetUsage>;
    /// The verifier of `provider`'s deliveries: Trello's signs with the application
    /// secret, Linear's with the webhook's own `secret`; `None` when the server lacks the
    /// secret (every delivery is then refused).
    fn webhook_verifier(
        &self,
        provider: ProviderKey,
        secret: Option<WebhookSecret>,
    ) -> Option<Arc<dyn WebhookVerifier>>;
    /// The API root a record of `provider` is saved for.
    ///
    /// # Errors
    /// The configured root is unusable.
    fn api_root(&self, provider: ProviderKey) -> Result<String, ComposeError>;
    /// A tracker for `who`: with `token` (a token held for setup) when given, else with
    /// the tenant's stored credentials; `None` when there are none.
    ///
    /// # Errors
    /// Unusable configuration or credentials.
    async fn tracker(
        &self,
        who: &Tenancy,
        token: Option<&Token>,
    ) -> Result<Option<Tracker>, ComposeError>;
    /// Secrets saved beside a tenant's token (Trello: the application key).
    ///
    /// # Errors
    /// The application's key is missing or unusable.
    fn companions(&self, who: &Tenancy) -> Result<Vec<CompanionSecret>, ComposeError>;
    /// Writes portable bundles.
    fn portable(&self) -> Arc<dyn PortableWriter>;
    /// Opens an uploaded findings file.
    ///
    /// # Errors
    /// The file is not a findings file.
    fn open_findings(&self, path: &std::path::Path)
        -> Result<Arc<dyn FindingSource>, ComposeError>;
    /// Where a person gets a token for `provider` (least privilege: read and write),
    /// coming back to `return_url`: one link per token lifetime the person may pick,
    /// as `(label, url)`, the recommended first; empty when the application has no key
    /// for it.
    fn authorize_urls(&self, provider: ProviderKey, return_url: &str) -> Vec<(String, String)>;
    /// Registers every token-like text the server reads, so logs never show it.
    fn register_secret(&self, secret: &str);
    /// Starts a server-side authorization (Linear's OAuth2 code flow, Trello's OAuth 1.0
    /// three-legged flow) that returns to `callback_url`; `None` when the application is
    /// not registered for it.
    ///
    /// # Errors
    /// The tracker refused to start it (a wrong application secret, say).
    async fn authorize_start(
        &self,
        provider: ProviderKey,
        callback_url: &str,
    ) -> Result<Option<AuthorizeStart>, ComposeError>;
    /// Finishes an authorization from the parameters the tracker returned to the
    /// callback, checking them against `start`; answers the credential to hold.
    ///
    /// # Errors
    /// A mismatched `state`, a refusal, a failed exchange.
    async fn authorize_finish(
        &self,
        provider: ProviderKey,
        callback_url: &str,
        start: &AuthorizeStart,
        params: &std::collections::HashMap<String, String>,
    ) -> Result<Token, ComposeError>;
}

/// An authorization in progress: where to send the person, the value the callback must
/// echo (`state`, or OAuth 1.0's request token), and a secret to keep for the finish
/// (OAuth 1.0's request-token secret). `Debug` hides the secret.
#[derive(Clone)]
pub struct AuthorizeStart {
    pub url: String,
    pub state: String,
    pub secret: Option<String>,
    /// How the credential is obtained, recorded with the setup when it comes back
    /// (Trello: `oauth1`).
    pub auth_method: Option<webriskops_domain::AuthMethod>,
}

impl std::fmt::Debug for AuthorizeStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizeStart")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The address people and the trackers' webhooks reach (no trailing slash); empty:
    /// `http://` and the bound address.
    pub public_url: String,
    /// Where uploads and bundles are written (inside the data directory).
    pub work_dir: PathBuf,
    /// Largest findings upload, in bytes.
    pub max_upload_bytes: u64,
    /// How often saved integrations are synced (the safety net under webhooks).
    pub sync_interval: Duration,
    /// Writes in flight at once per export.
    pub export_concurrency: usize,
    /// How long a claim on an export job holds without a heartbeat (renewed every third
    /// of it); a dead replica's jobs are taken over once it has passed.
    pub job_lease: Duration,
    /// The bearer token `/metrics` requires, when set; without it `/metrics` is open to
    /// whoever reaches the port (counts only), so expose it only to the monitoring network.
    pub metrics_token: Option<MetricsToken>,
}

impl ServerConfig {
    /// Whether cookies must be `Secure` (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// Builds the router over `state` (tests call this with a state of their own).
pub fn router(state: AppState) -> axum::Router {
    let api = api::routes();
    let pages = pages::routes();
    axum::Router::new()
        .merge(api)
        .merge(pages)
        .merge(hooks::routes())
        .route("/metrics", axum::routing::get(metrics::scrape))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::csrf_guard,
        ))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then drains: stops accepting, lets in-flight
/// requests finish, waits for running export jobs, and returns.
///
/// `on_listening` is called with the bound address once the server accepts connections.
///
/// # Errors
/// The address cannot be bound, or the store fails at start.
pub async fn serve(
    mut config: ServerConfig,
    composer: Arc<dyn Composer>,
    on_listening: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    std::fs::create_dir_all(&config.work_dir).map_err(|e| {
        ApiError::server(format!(
            "cannot create the work directory {}: {e}",
            config.work_dir.display()
        ))
    })?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            ApiError::server(format!(
                "cannot listen on {}: {e}; choose another address with --listen",
                config.listen
            ))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| ApiError::server(format!("cannot read the bound address: {e}")))?;
    if config.public_url.is_empty() {
        config.public_url = format!("http://{addr}");
    }
    let state = AppState::new(config, composer);
    let worker = tokio::spawn(jobs::work(state.clone()));
    let poller = tokio::spawn(sync::poll_forever(state.clone()));
    let app = router(state.clone());
    on_listening(addr);
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    poller.abort();
    // The worker stops claiming, and the jobs it claimed run to their end.
    state.jobs.drain().await;
    let _ = worker.await;
    state.jobs.drain().await;
    served.map_err(|e| ApiError::server(format!("the server stopped: {e}")))
}
