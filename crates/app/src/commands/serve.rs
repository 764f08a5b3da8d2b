//! `webriskops serve`: composes the store, the trackers and the files for the HTTP front
//! end (crate `webriskops-server`) and runs it until SIGTERM or Ctrl-C.
//!
//! The composer builds, per request, the same [`App`] context the CLI commands use,
//! scoped to the caller's tenant and tracker, over the one store the server holds. The
//! process environment's tenant credentials (`TRELLO_TOKEN`, `LINEAR_API_KEY`) are hidden
//! from it: in the server every tenant brings its own token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use webriskops_budget::SharedBudget;
use webriskops_domain::{ProviderKey, Token};
use webriskops_findings_file::FileSource;
use webriskops_linear::LinearWebhookVerifier;
use webriskops_ports::{
    Accounts, BudgetUsage, EventLog, ExportJobs, FindingSource, JobQueue, JobUploads,
    WebhookRegistry, WebhookSecret, WebhookVerifier,
};
use webriskops_server::{AuthorizeStart, ComposeError, Composer, ServerConfig};
use webriskops_service::{CompanionSecret, PortableWriter, ServicePorts, Tenancy, Tracker};
use webriskops_trello::{
    authorize_url, AuthorizeOptions, Expiration, OAuth1AuthorizeOptions, OAuth1Client,
    RequestToken, TrelloWebhookVerifier, DEFAULT_API_ROOT,
};

use crate::app::{api_key_ref, App, EnvLookup};
use crate::cli::ServeArgs;
use crate::config::{Settings, ENV_LINEAR_API_KEY, ENV_TOKEN, ENV_TRACKER};
use crate::error::{AppError, AppResult, Exit};
use crate::output::Out;
use crate::redact;
use crate::store::Stores;

/// `TRELLO_API_SECRET`: the application's Trello secret (OAuth 1.0, webhook signatures).
pub const ENV_API_SECRET: &str = "TRELLO_API_SECRET";
/// `WEBRISKOPS_LISTEN`: the address `serve` listens on.
pub const ENV_LISTEN: &str = "WEBRISKOPS_LISTEN";
/// `WEBRISKOPS_PUBLIC_URL`: the address people and webhooks reach.
pub const ENV_PUBLIC_URL: &str = "WEBRISKOPS_PUBLIC_URL";
/// `WEBRISKOPS_SYNC_INTERVAL_SECS`: how often saved integrations are synced (default 300).
pub const ENV_SYNC_INTERVAL: &str = "WEBRISKOPS_SYNC_INTERVAL_SECS";
/// `WEBRISKOPS_JOB_LEASE_SECS`: how long a replica's claim on an export job holds without a
/// heartbeat (default 30; renewed every third of it): after a replica dies, another takes
/// its jobs over once this has passed.
pub const ENV_JOB_LEASE: &str = "WEBRISKOPS_JOB_LEASE_SECS";
/// `WEBRISKOPS_MAX_UPLOAD_BYTES`: the largest findings upload (default 256 MiB).
pub const ENV_MAX_UPLOAD: &str = "WEBRISKOPS_MAX_UPLOAD_BYTES";
/// `WEBRISKOPS_SHARED_BUDGET`: `off` gives each process its own tracker limiters only
/// (default `on`: with PostgreSQL, every replica spends one budget per key).
pub const ENV_SHARED_BUDGET: &str = "WEBRISKOPS_SHARED_BUDGET";
/// `WEBRISKOPS_METRICS_TOKEN`: the bearer token `/metrics` requires (none: `/metrics` is
/// open, for a port only the monitoring network reaches).
pub const ENV_METRICS_TOKEN: &str = "WEBRISKOPS_METRICS_TOKEN";
/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The binary's composer: one store (SQLite or PostgreSQL, as ports), per-request [`App`]
/// contexts.
pub struct AppComposer {
    settings: Settings,
    data_dir: PathBuf,
    env: EnvLookup,
    store: Stores,
    /// The tracker key budgets shared with every replica, when the store holds them and
    /// `WEBRISKOPS_SHARED_BUDGET` is not `off`.
    shared_budget: Option<SharedBudget>,
}

impl AppComposer {
    /// A composer over `store` when given (PostgreSQL), else over the store of `data_dir`,
    /// opened once.
    ///
    /// # Errors
    /// The store cannot be opened (locked, bad master key, unsafe directory).
    pub fn new(
        settings: Settings,
        data_dir: PathBuf,
        env: EnvLookup,
        store: Option<Stores>,
    ) -> AppResult<Self> {
        // Tenant credentials in the server's own environment never stand in for a
        // tenant's token.
        let inner = env.clone();
        let env: EnvLookup = Arc::new(move |k: &str| {
            if [ENV_TOKEN, ENV_LINEAR_API_KEY, ENV_TRACKER].contains(&k) {
                None
            } else {
                inner(k)
            }
        });
        let mut bootstrap = App::new(
            settings.clone(),
            data_dir.clone(),
            Out { json: false },
            env.clone(),
        )?;
        let store = match store {
            Some(s) => s,
            None => bootstrap.store()?,
        };
        let shared_budget = match (shared_budget_wanted(&env)?, &store.budgets) {
            (true, Some(b)) => Some(SharedBudget::new(b.clone(), replica_name())),
            _ => None,
        };
        Ok(Self {
            settings,
            data_dir,
            env,
            store,
            shared_budget,
        })
    }

    fn app(&self, who: &Tenancy) -> Result<App, ComposeError> {
        let app = App::new(
            self.settings.clone(),
            self.data_dir.clone(),
            Out { json: false },
            self.env.clone(),
        )
        .map_err(compose_error)?;
        Ok(app
            .scoped(who, self.store.clone())
            .with_shared_budget(self.shared_budget.clone()))
    }
}

impl AppComposer {
    /// The Trello application key the server runs with: `TRELLO_API_KEY`, else the
    /// configuration's `trello.api_key` (possibly blank; callers check).
    fn app_key(&self) -> Option<String> {
        (self.env)(crate::config::ENV_API_KEY).or_else(|| self.settings.trello.api_key.clone())
    }
}

/// This process's name among replicas: host, process id and a random part, so that a
/// restarted process is another holder.
fn replica_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "host".into());
    let mut b = [0u8; 4];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
    let random: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{host}-{}-{random}", std::process::id())
}

/// `WEBRISKOPS_SHARED_BUDGET`: `on` (the default) spends the tracker keys' budgets with
/// every replica through the database; `off` leaves each process its own limiter only
/// (for comparison; replicas then overrun a shared key together).
fn shared_budget_wanted(env: &EnvLookup) -> AppResult<bool> {
    match env(ENV_SHARED_BUDGET).as_deref().map(str::trim) {
        None | Some("" | "on" | "1" | "true") => Ok(true),
        Some("off" | "0" | "false") => Ok(false),
        Some(other) => Err(AppError::usage(format!(
            "{ENV_SHARED_BUDGET}={other:?} is neither on nor off; leave it unset (on) unless \
             comparing with per-process limiters"
        ))),
    }
}

fn compose_error(e: AppError) -> ComposeError {
    ComposeError {
        message: redact::redact(&e.message),
        fix: "the operator can check the server's configuration and log".into(),
        server_side: true,
    }
}

#[async_trait]
impl Composer for AppComposer {
    async fn key_budget(&self, provider: ProviderKey) -> Option<BudgetUsage> {
        let budget = self.shared_budget.as_ref()?;
        if provider != ProviderKey::TrelloCloud {
            // Linear counts per user and per hour, not per application key.
            return None;
        }
        let key = self
            .app_key()
            .and_then(|k| webriskops_domain::ApiKey::new(k.trim()).ok())?;
        let t = &self.settings.trello;
        let scope = webriskops_trello::shared::key_scope(
            &key,
            &t.limits,
            Duration::from_secs(t.timeout_secs),
        );
        match budget.usage(&scope).await {
            Ok(u) => Some(u),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the shared key budget");
                None
            }
        }
    }

    fn local_ports(&self) -> ServicePorts {
        self.store.service_ports()
    }

    fn accounts(&self) -> Arc<dyn Accounts> {
        self.store.accounts.clone()
    }

    fn jobs(&self) -> Arc<dyn ExportJobs> {
        self.store.jobs.clone()
    }

    fn events(&self) -> Arc<dyn EventLog> {
        self.store.events.clone()
    }

    fn queue(&self) -> Arc<dyn JobQueue> {
        self.store.queue.clone()
    }

    fn uploads(&self) -> Arc<dyn JobUploads> {
        self.store.uploads.clone()
    }

    fn webhooks(&self) -> Arc<dyn WebhookRegistry> {
        self.store.hooks.clone()
    }

    async fn ready(&self) -> Result<(), String> {
        self.store.ready().await.map_err(|e| redact::redact(&e))
    }

    fn webhook_verifier(
        &self,
        provider: ProviderKey,
        secret: Option<WebhookSecret>,
    ) -> Option<Arc<dyn WebhookVerifier>> {
        match provider {
            // Trello signs every delivery with the application secret.
            ProviderKey::TrelloCloud => {
                let app_secret = (self.env)(ENV_API_SECRET).filter(|s| !s.trim().is_empty())?;
                redact::register(&app_secret);
                Some(Arc::new(TrelloWebhookVerifier::new(WebhookSecret::new(
                    app_secret.trim(),
                ))))
            }
            ProviderKey::LinearCloud => {
                Some(Arc::new(LinearWebhookVerifier::new(secret?)) as Arc<dyn WebhookVerifier>)
            }
        }
    }

    fn api_root(&self, provider: ProviderKey) -> Result<String, ComposeError> {
        let who = Tenancy {
            tenant: webriskops_domain::TenantId::new("server").map_err(|e| ComposeError {
                message: e.to_string(),
                fix: String::new(),
                server_side: true,
            })?,
            provider,
        };
        self.app(&who)?.api_root().map_err(compose_error)
    }

    async fn tracker(
        &self,
        who: &Tenancy,
        token: Option<&Token>,
    ) -> Result<Option<Tracker>, ComposeError> {
        let mut app = self.app(who)?;
        match token {
            Some(t) => {
                let key = match who.provider {
                    ProviderKey::TrelloCloud => app.api_key(None).await.map_err(compose_error)?,
                    ProviderKey::LinearCloud => None,
                };
                app.adapter(key, t).map_err(compose_error)
            }
            None => {
                // A record of another API root is never sent anything.
                let record = app.record().await.map_err(compose_error)?;
                match record {
                    Some(r) => app.tracker_for(Some(&r)).await.map_err(compose_error),
                    None => Ok(None),
                }
            }
        }
    }

    fn companions(&self, who: &Tenancy) -> Result<Vec<CompanionSecret>, ComposeError> {
        if who.provider != ProviderKey::TrelloCloud {
            return Ok(Vec::new());
        }
        let key = self
            .app_key()
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| ComposeError {
                message: "the server has no Trello application key".into(),
                fix: "set TRELLO_API_KEY for webriskops serve".into(),
                server_side: true,
            })?;
        let secret = Token::new(key.trim()).map_err(|e| ComposeError {
            message: format!("TRELLO_API_KEY is not usable: {e}"),
            fix: "copy the key again from https://trello.com/power-ups/admin".into(),
            server_side: true,
        })?;
        Ok(vec![CompanionSecret {
            reference: api_key_ref(&who.tenant),
            secret,
        }])
    }

    fn portable(&self) -> Arc<dyn PortableWriter> {
        Arc::new(super::export::Bundle)
    }

    fn open_findings(&self, path: &Path) -> Result<Arc<dyn FindingSource>, ComposeError> {
        FileSource::open_path(path)
            .map(|s| Arc::new(s) as Arc<dyn FindingSource>)
            .map_err(|e| ComposeError {
                message: e.to_string(),
                fix: "upload a findings file (JSON or JSON Lines, docs/contracts/findings-v1.md)"
                    .into(),
                server_side: false,
            })
    }

    fn authorize_urls(&self, provider: ProviderKey, return_url: &str) -> Vec<(String, String)> {
        if provider != ProviderKey::TrelloCloud {
            return Vec::new();
        }
        let Some(key) = self
            .app_key()
            .and_then(|raw| webriskops_domain::ApiKey::new(raw.trim()).ok())
        else {
            return Vec::new();
        };
        // Against another API root (trello-sim), its own authorize page.
        let root = self
            .settings
            .trello
            .api_root
            .trim_end_matches('/')
            .to_owned();
        let official = root == DEFAULT_API_ROOT.trim_end_matches('/');
        [
            (Expiration::ThirtyDays, "30 days"),
            (Expiration::OneDay, "1 day"),
            (Expiration::OneHour, "1 hour"),
            (Expiration::Never, "never"),
        ]
        .into_iter()
        .map(|(expiration, label)| {
            let url = authorize_url(
                &key,
                &AuthorizeOptions {
                    expiration,
                    return_url: Some(return_url.to_owned()),
                    ..AuthorizeOptions::default()
                },
            );
            let url = if official {
                url
            } else {
                url.replacen("https://trello.com/1", &root, 1)
            };
            (label.to_owned(), url)
        })
        .collect()
    }

    fn register_secret(&self, secret: &str) {
        redact::register(secret);
    }

    async fn authorize_start(
        &self,
        provider: ProviderKey,
        callback_url: &str,
    ) -> Result<Option<AuthorizeStart>, ComposeError> {
        match provider {
            ProviderKey::LinearCloud => {
                let Some((client_id, _)) = self.linear_client() else {
                    return Ok(None);
                };
                let redirect = url::Url::parse(callback_url).map_err(|e| ComposeError {
                    message: format!("the callback URL {callback_url} is not a URL: {e}"),
                    fix: "fix --public-url".into(),
                    server_side: true,
                })?;
                // The server registers its own webhook, which Linear allows only with
                // the `admin` scope (developers.linear.app/docs/graphql/webhooks).
                let req = webriskops_linear::authorize_url(
                    &client_id,
                    &redirect,
                    &webriskops_linear::AuthorizeOptions {
                        scopes: webriskops_linear::Scopes::ReadWriteAdmin,
                        ..webriskops_linear::AuthorizeOptions::default()
                    },
                );
                let url = match (self.env)(ENV_LINEAR_OAUTH_AUTHORIZE_URL)
                    .filter(|v| !v.trim().is_empty())
                {
                    Some(base) => {
                        req.url
                            .as_str()
                            .replacen(webriskops_linear::AUTHORIZE_URL, base.trim(), 1)
                    }
                    None => req.url.to_string(),
                };
                Ok(Some(AuthorizeStart {
                    url,
                    state: req.state,
                    secret: None,
                    auth_method: None,
                }))
            }
            ProviderKey::TrelloCloud => {
                let Some(client) = self.trello_oauth1()? else {
                    return Ok(None);
                };
                let request =
                    client
                        .request_token(callback_url)
                        .await
                        .map_err(|e| {
                            ComposeError {
                        message: redact::redact(&e.to_string()),
                        fix: "check TRELLO_API_KEY and TRELLO_API_SECRET (the OAuth secret on the \
                              key page), or paste a token instead"
                            .into(),
                        server_side: true,
                    }
                        })?;
                let url = client.authorize_url(
                    &request,
                    &OAuth1AuthorizeOptions {
                        expiration: self.trello_expiration(),
                        ..OAuth1AuthorizeOptions::default()
                    },
                );
                Ok(Some(AuthorizeStart {
                    url,
                    state: request.token,
                    secret: Some(request.secret.expose().to_owned()),
                    auth_method: Some(webriskops_domain::AuthMethod::Oauth1),
                }))
            }
        }
    }

    async fn authorize_finish(
        &self,
        provider: ProviderKey,
        callback_url: &str,
        start: &AuthorizeStart,
        params: &HashMap<String, String>,
    ) -> Result<Token, ComposeError> {
        let refused = |message: String| ComposeError {
            message,
            fix: "start the authorization again from the setup page".into(),
            server_side: false,
        };
        match provider {
            ProviderKey::LinearCloud => {
                let returned = params.get("state").map(String::as_str).unwrap_or_default();
                webriskops_linear::check_state(&start.state, returned)
                    .map_err(|e| refused(e.to_string()))?;
                if let Some(err) = params.get("error") {
                    return Err(refused(format!(
                        "Linear did not authorize: {} {}",
                        webriskops_domain::echo_untrusted(err),
                        webriskops_domain::echo_untrusted(
                            params.get("error_description").map_or("", String::as_str)
                        )
                    )));
                }
                let (client_id, secret) = self.linear_client().ok_or_else(|| {
                    refused("the Linear OAuth application is no longer configured".into())
                })?;
                let code = params
                    .get("code")
                    .and_then(|c| webriskops_linear::LinearSecret::new("code", c.clone()).ok())
                    .ok_or_else(|| refused("Linear returned no code".into()))?;
                redact::register(code.expose());
                let token_url = self.linear_token_endpoint();
                let revoke_url = self
                    .app(&Tenancy {
                        tenant: webriskops_domain::TenantId::new("server")
                            .map_err(|e| refused(e.to_string()))?,
                        provider,
                    })?
                    .linear_revoke_url();
                let client = webriskops_linear::OAuthClient::with_endpoints(
                    &client_id,
                    secret.clone(),
                    &token_url,
                    &revoke_url,
                )
                .map_err(|e| ComposeError {
                    message: e.to_string(),
                    fix: format!("fix {}", crate::app::ENV_LINEAR_OAUTH_TOKEN_URL),
                    server_side: true,
                })?;
                let redirect = url::Url::parse(callback_url)
                    .map_err(|e| refused(format!("the callback URL is not a URL: {e}")))?;
                let tokens = client
                    .exchange_code(&code, &redirect)
                    .await
                    .map_err(|e| refused(redact::redact(&e.to_string())))?;
                let set = webriskops_linear::StoredOAuth {
                    tokens,
                    client_id,
                    client_secret: secret,
                };
                for s in set.secrets() {
                    redact::register(s.expose());
                }
                Token::new(set.to_text()).map_err(|e| refused(format!("the token set: {e}")))
            }
            ProviderKey::TrelloCloud => {
                let client = self.trello_oauth1()?.ok_or_else(|| {
                    refused("the Trello application is no longer configured".into())
                })?;
                if params.get("oauth_token").map(String::as_str) != Some(start.state.as_str()) {
                    return Err(refused(
                        "Trello returned another request token than the one sent".into(),
                    ));
                }
                let verifier = params
                    .get("oauth_verifier")
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        refused("Trello returned no verifier: access was denied".into())
                    })?;
                let secret = start
                    .secret
                    .as_deref()
                    .and_then(|s| Token::new(s).ok())
                    .ok_or_else(|| refused("the request token's secret was lost".into()))?;
                let request = RequestToken {
                    token: start.state.clone(),
                    secret,
                };
                let access = client
                    .access_token(&request, verifier)
                    .await
                    .map_err(|e| refused(redact::redact(&e.to_string())))?;
                redact::register(access.token.expose());
                redact::register(access.secret.expose());
                Ok(access.token)
            }
        }
    }
}

/// `LINEAR_CLIENT_ID` and `LINEAR_CLIENT_SECRET`: the server's Linear OAuth application.
pub const ENV_LINEAR_CLIENT_ID: &str = "LINEAR_CLIENT_ID";
pub const ENV_LINEAR_CLIENT_SECRET: &str = "LINEAR_CLIENT_SECRET";
/// Where people authorize the Linear application instead of linear.app (linear-sim).
pub const ENV_LINEAR_OAUTH_AUTHORIZE_URL: &str = "WEBRISKOPS_LINEAR_OAUTH_AUTHORIZE_URL";

impl AppComposer {
    /// The OAuth 1.0 client of the application's Trello key and secret, when both are
    /// configured; against trello-sim, its own endpoints under its API root.
    fn trello_oauth1(&self) -> Result<Option<OAuth1Client>, ComposeError> {
        let key = self.app_key().filter(|k| !k.trim().is_empty());
        let secret = (self.env)(ENV_API_SECRET).filter(|s| !s.trim().is_empty());
        let (Some(key), Some(secret)) = (key, secret) else {
            return Ok(None);
        };
        redact::register(&secret);
        let bad = |e: String| ComposeError {
            message: e,
            fix: "check TRELLO_API_KEY, TRELLO_API_SECRET and WEBRISKOPS_TRELLO_API_ROOT".into(),
            server_side: true,
        };
        let key = webriskops_domain::ApiKey::new(key.trim()).map_err(|e| bad(e.to_string()))?;
        let secret = Token::new(secret.trim()).map_err(|e| bad(e.to_string()))?;
        let root = self
            .settings
            .trello
            .api_root
            .trim_end_matches('/')
            .to_owned();
        let site = if root == DEFAULT_API_ROOT.trim_end_matches('/') {
            webriskops_trello::SITE_ROOT.to_owned()
        } else {
            root
        };
        OAuth1Client::new(&site, key, secret)
            .map(Some)
            .map_err(|e| bad(e.to_string()))
    }

    /// The token lifetime `trello.token_expiration` asks for (the default when it is not
    /// one of the four; `setup trello` refuses such a value with its fix).
    fn trello_expiration(&self) -> Expiration {
        super::setup::parse_expiration(&self.settings.trello.token_expiration).unwrap_or_default()
    }

    /// The Linear OAuth application, when configured.
    fn linear_client(&self) -> Option<(String, webriskops_linear::LinearSecret)> {
        let id = (self.env)(ENV_LINEAR_CLIENT_ID).filter(|v| !v.trim().is_empty())?;
        let secret = (self.env)(ENV_LINEAR_CLIENT_SECRET).filter(|v| !v.trim().is_empty())?;
        redact::register(&secret);
        let secret = webriskops_linear::LinearSecret::new("client secret", secret.trim()).ok()?;
        Some((id.trim().to_owned(), secret))
    }

    fn linear_token_endpoint(&self) -> String {
        (self.env)(crate::app::ENV_LINEAR_OAUTH_TOKEN_URL)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| webriskops_linear::TOKEN_URL.to_owned())
    }
}

fn env_or<T: std::str::FromStr>(env: &EnvLookup, name: &str, default: T) -> AppResult<T> {
    match env(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            AppError::usage(format!(
                "{name}={} is not usable; fix or unset it",
                webriskops_domain::echo_untrusted(&v)
            ))
        }),
    }
}

/// `addr` with a free port the system picks (for `--listen HOST:0`).
fn free_port(addr: SocketAddr) -> AppResult<SocketAddr> {
    std::net::TcpListener::bind(addr)
        .and_then(|l| l.local_addr())
        .map_err(|e| {
            AppError::failed(format!(
                "cannot listen on {addr}: {e}; choose another address with --listen"
            ))
        })
}

/// The server's configuration from the flags and the environment.
///
/// # Errors
/// An unusable address, URL or number (exit 2).
pub fn server_config(
    args: &ServeArgs,
    env: &EnvLookup,
    data_dir: &Path,
    settings: &Settings,
) -> AppResult<ServerConfig> {
    let listen: SocketAddr = match args.listen {
        Some(a) => a,
        None => env_or(
            env,
            ENV_LISTEN,
            DEFAULT_LISTEN.parse().expect("valid default"),
        )?,
    };
    let given_url = args
        .public_url
        .clone()
        .or_else(|| env(ENV_PUBLIC_URL).filter(|v| !v.trim().is_empty()));
    // The default public URL is the listen URL, so it needs the real port: with port 0
    // (any free port), one is chosen now. Otherwise the public URL would name port 0, and
    // the cross-site guard would refuse our own pages' `Origin`.
    let listen = match given_url {
        None if listen.port() == 0 => free_port(listen)?,
        _ => listen,
    };
    let public_url = given_url.unwrap_or_else(|| format!("http://{listen}"));
    let parsed = url::Url::parse(public_url.trim()).map_err(|e| {
        AppError::usage(format!(
            "--public-url {public_url:?} is not a URL ({e}); give e.g. https://ops.example.com"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(AppError::usage(format!(
            "--public-url {public_url:?} must be http:// or https://"
        )));
    }
    let metrics_token = env(ENV_METRICS_TOKEN)
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .map(|t| {
            redact::register(&t);
            webriskops_server::MetricsToken::new(&t)
        });
    Ok(ServerConfig {
        listen,
        public_url: public_url.trim().trim_end_matches('/').to_owned(),
        work_dir: data_dir.join("server"),
        max_upload_bytes: env_or(env, ENV_MAX_UPLOAD, 256 * 1024 * 1024)?,
        sync_interval: Duration::from_secs(env_or(env, ENV_SYNC_INTERVAL, 300u64)?.max(1)),
        export_concurrency: settings.export.concurrency,
        job_lease: Duration::from_secs(env_or(env, ENV_JOB_LEASE, 30u64)?.max(1)),
        metrics_token,
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("stopping: draining requests and export jobs");
}

/// Serves with `composer` until a signal, printing `listening on http://ADDR` on stderr.
///
/// # Errors
/// The address cannot be bound; the store fails at start.
pub async fn serve_with(
    config: ServerConfig,
    composer: Arc<dyn Composer>,
    announce: impl FnOnce(SocketAddr) + Send,
) -> AppResult<()> {
    webriskops_server::serve(config, composer, announce, shutdown_signal())
        .await
        .map_err(|e| AppError::failed(format!("{} ({})", e.message, e.fix)))
}

/// Runs `serve`.
///
/// # Errors
/// See [`serve_with`] and [`server_config`].
pub async fn run(
    settings: Settings,
    data_dir: PathBuf,
    env: EnvLookup,
    args: &ServeArgs,
    store: Option<Stores>,
) -> AppResult<Exit> {
    let config = server_config(args, &env, &data_dir, &settings)?;
    let composer = Arc::new(AppComposer::new(settings, data_dir, env, store)?);
    serve_with(config, composer, |addr| {
        eprintln!("listening on http://{addr}");
    })
    .await?;
    Ok(Exit::Ok)
}
