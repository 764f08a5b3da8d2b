//! The composition root: settings, the store with its master key, the tracker a command
//! works on, credentials and the tracker's adapter (Trello or Linear), assembled once per
//! command.
//!
//! A stored credential is only ever sent to the API root its record was saved for (the
//! Trello API root, the Linear API URL): a record whose root differs from the configured
//! one is refused before any request.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use webriskops_domain::{ApiKey, CredentialRef, ProviderKey, ProviderRecord, TenantId, Token};
use webriskops_linear::{
    parse_api_url, Credential, CredentialFacts, FindingUrl, LinearAdapter, LinearAdapterOptions,
    StoredOAuth, DEFAULT_API_URL, TOKEN_URL as LINEAR_TOKEN_URL,
};
use webriskops_ports::PortError;
use webriskops_service::{secret_binding, ServicePorts, Tenancy, Tracker};
use webriskops_store_sqlite::{MasterKey, SqliteStore, StoreOptions, MASTER_KEY_ENV};

use crate::store::Stores;
use webriskops_budget::SharedBudget;
use webriskops_trello::{
    parse_api_root, SharedKeyBudget, TrelloAdapter, TrelloConfig, DEFAULT_API_ROOT,
};

use crate::cli::TrackerArg;
use crate::config::{
    Settings, ENV_API_KEY, ENV_API_ROOT, ENV_FINDING_URL, ENV_LINEAR_API_KEY, ENV_LINEAR_API_URL,
    ENV_TOKEN, ENV_TRACKER,
};
use crate::error::{AppError, AppResult};
use crate::output::Out;
use crate::redact;

/// Where a stored Linear OAuth token set is refreshed instead of Linear's token endpoint
/// (linear-sim in tests): `https`, or plain `http` only on loopback.
pub const ENV_LINEAR_OAUTH_TOKEN_URL: &str = "WEBRISKOPS_LINEAR_OAUTH_TOKEN_URL";

/// Reads one environment variable (the real environment, or the demo's own).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Everything a command needs, composed from settings and the environment.
pub struct App {
    pub settings: Settings,
    pub data_dir: PathBuf,
    pub out: Out,
    pub tenant: TenantId,
    env: EnvLookup,
    /// Whether prompts may be shown (stdin and stderr are terminals).
    pub interactive: bool,
    /// The tracker whose record the command works on (see [`App::choose_provider`]).
    provider: ProviderKey,
    store: Option<Stores>,
    /// The key budgets every replica shares (`serve` on PostgreSQL), spent by this
    /// tenant's Trello requests.
    shared_budget: Option<SharedBudget>,
}

/// Where the token in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOrigin {
    Env,
    /// `LINEAR_API_KEY`.
    LinearEnv,
    File,
    Stored,
    Prompt,
}

impl TokenOrigin {
    pub fn describe(self) -> &'static str {
        match self {
            TokenOrigin::Env => "TRELLO_TOKEN",
            TokenOrigin::LinearEnv => "LINEAR_API_KEY",
            TokenOrigin::File => "--token-file",
            TokenOrigin::Stored => "the stored token",
            TokenOrigin::Prompt => "the prompt",
        }
    }
}

/// The stored API key's reference: the key lives encrypted next to the token.
pub fn api_key_ref(tenant: &TenantId) -> CredentialRef {
    CredentialRef(format!("{tenant}/{}/api_key", ProviderKey::TrelloCloud))
}

impl App {
    /// Builds the context. The store is opened on first use.
    ///
    /// # Errors
    /// An invalid tenant name (exit 2).
    pub fn new(settings: Settings, data_dir: PathBuf, out: Out, env: EnvLookup) -> AppResult<App> {
        let tenant = TenantId::new(settings.tenant.clone()).map_err(|e| {
            AppError::usage(format!(
                "{e}; fix `tenant` in the configuration or WEBRISKOPS_TENANT"
            ))
        })?;
        // Secrets are registered the moment they are read.
        for var in [ENV_TOKEN, ENV_API_KEY, ENV_LINEAR_API_KEY, MASTER_KEY_ENV] {
            if let Some(v) = env(var) {
                redact::register(&v);
            }
        }
        if let Some(k) = &settings.trello.api_key {
            redact::register(k);
        }
        Ok(App {
            settings,
            data_dir,
            out,
            tenant,
            env,
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
            provider: ProviderKey::TrelloCloud,
            store: None,
            shared_budget: None,
        })
    }

    /// Spends the tracker key budgets with every replica through `budget` (none: this
    /// process's limiter alone).
    #[must_use]
    pub fn with_shared_budget(mut self, budget: Option<SharedBudget>) -> App {
        self.shared_budget = budget;
        self
    }

    /// This context for `tenant`'s `provider`, with an open `store` (the server composes
    /// one per request from the store it holds).
    #[must_use]
    pub fn scoped(mut self, tenancy: &Tenancy, store: Stores) -> App {
        self.tenant = tenancy.tenant.clone();
        self.provider = tenancy.provider;
        self.store = Some(store);
        self.interactive = false;
        self
    }

    /// Works on `provider`'s record from now on (`setup trello` and `setup linear` say
    /// which).
    pub fn set_provider(&mut self, provider: ProviderKey) {
        self.provider = provider;
    }

    /// The tracker the command works on.
    pub fn provider(&self) -> ProviderKey {
        self.provider
    }

    /// The tracker's name as texts write it: `Trello`, `Linear`.
    pub fn tracker_title(&self) -> &'static str {
        match self.provider {
            ProviderKey::TrelloCloud => "Trello",
            ProviderKey::LinearCloud => "Linear",
        }
    }

    /// Chooses the tracker for status, export, sync and revoke: `flag` (`--tracker`),
    /// else `WEBRISKOPS_TRACKER`, else the provider of the tenant's only record (saved or
    /// draft); without any record, Trello.
    ///
    /// # Errors
    /// An unknown `WEBRISKOPS_TRACKER`, or records of both trackers and nothing chosen
    /// (exit 2, naming both and the flag); store failures.
    pub async fn choose_provider(&mut self, flag: Option<TrackerArg>) -> AppResult<()> {
        let named = match flag {
            Some(f) => Some(provider_of(f)),
            None => match (self.env)(ENV_TRACKER).filter(|v| !v.trim().is_empty()) {
                None => None,
                Some(v) => Some(match v.trim().to_ascii_lowercase().as_str() {
                    "trello" => ProviderKey::TrelloCloud,
                    "linear" => ProviderKey::LinearCloud,
                    _ => {
                        return Err(AppError::usage(format!(
                            "{ENV_TRACKER}={} is not a tracker: use trello or linear",
                            webriskops_domain::echo_untrusted(&v)
                        )))
                    }
                }),
            },
        };
        if let Some(p) = named {
            self.provider = p;
            return Ok(());
        }
        let store = self.store()?;
        let mut found = Vec::new();
        for p in [ProviderKey::TrelloCloud, ProviderKey::LinearCloud] {
            if store.records.load(&self.tenant, p).await?.is_some() {
                found.push(p);
            }
        }
        match found.as_slice() {
            [] => self.provider = ProviderKey::TrelloCloud,
            [only] => self.provider = *only,
            _ => {
                return Err(AppError::usage(format!(
                    "tenant {} has a trello and a linear provider record: choose one with \
                     --tracker trello or --tracker linear (or {ENV_TRACKER})",
                    self.tenant
                )))
            }
        }
        Ok(())
    }

    /// The store, opened on first use. The master key is `WEBRISKOPS_MASTER_KEY` when set,
    /// else the data directory's key file, which the store creates only when it seals the
    /// first secret of an empty store (never in place of the key that sealed stored ones).
    ///
    /// # Errors
    /// A malformed master key, an unsafe data directory, a locked or corrupt database
    /// (exit 1, with the fix).
    pub fn store(&mut self) -> AppResult<Stores> {
        if let Some(s) = &self.store {
            return Ok(s.clone());
        }
        let master_key = match (self.env)(MASTER_KEY_ENV).filter(|v| !v.trim().is_empty()) {
            Some(v) => Some(MasterKey::from_env_value(&v)?),
            None => None,
        };
        let store = SqliteStore::open(
            &self.data_dir,
            StoreOptions {
                key_file: master_key.is_none(),
                master_key,
                ..StoreOptions::default()
            },
        )?;
        let store = Stores::sqlite(store);
        self.store = Some(store.clone());
        Ok(store)
    }

    /// Works on `store` (PostgreSQL at `--database-url`) instead of the data directory's.
    pub fn use_store(&mut self, store: Stores) {
        self.store = Some(store);
    }

    /// Whose integration the commands work on: this tenant's record of the chosen tracker.
    pub fn tenancy(&self) -> Tenancy {
        Tenancy {
            tenant: self.tenant.clone(),
            provider: self.provider,
        }
    }

    /// The ports the service's use cases run against: the store for every local port,
    /// and `tracker` (with its request statistics) when credentials were found.
    ///
    /// # Errors
    /// See [`App::store`].
    pub fn ports(&mut self, tracker: Option<Tracker>) -> AppResult<ServicePorts> {
        Ok(self.store()?.service_ports().with_tracker(tracker))
    }

    /// The configured API root of the chosen tracker (Trello's API root, Linear's API
    /// URL), normalised as the adapter uses it. It is part of the binding a stored
    /// secret is sealed with.
    ///
    /// # Errors
    /// An unusable root (exit 2; plain http is refused except on loopback).
    pub fn api_root(&self) -> AppResult<String> {
        match self.provider {
            ProviderKey::TrelloCloud => parse_api_root(&self.settings.trello.api_root)
                .map(|u| u.to_string())
                .map_err(|e| {
                    AppError::usage(format!(
                        "{e}; fix {ENV_API_ROOT} or trello.api_root in the configuration file"
                    ))
                }),
            ProviderKey::LinearCloud => parse_api_url(&self.settings.linear.api_url)
                .map(|u| u.to_string())
                .map_err(|e| {
                    AppError::usage(format!(
                        "{e}; fix {ENV_LINEAR_API_URL} or linear.api_url in the configuration file"
                    ))
                }),
        }
    }

    /// The root `record` belongs to: the one saved in it, or, for a record saved before
    /// roots were recorded, its provider's default root (its token was made for the
    /// tracker itself).
    pub fn record_root(record: &ProviderRecord) -> String {
        match record.provider_key {
            ProviderKey::TrelloCloud => {
                let raw = record.api_root.as_deref().unwrap_or(DEFAULT_API_ROOT);
                parse_api_root(raw).map_or_else(|_| raw.to_owned(), |u| u.to_string())
            }
            ProviderKey::LinearCloud => {
                let raw = record.api_root.as_deref().unwrap_or(DEFAULT_API_URL);
                parse_api_url(raw).map_or_else(|_| raw.to_owned(), |u| u.to_string())
            }
        }
    }

    /// Refuses `record` when the configured API root is not the one it was saved for, so
    /// that no stored token or key is ever sent elsewhere.
    ///
    /// # Errors
    /// The roots differ (exit 2, naming both and the two fixes).
    pub fn check_root(&self, record: &ProviderRecord) -> AppResult<()> {
        let configured = self.api_root()?;
        let recorded = Self::record_root(record);
        if configured == recorded {
            return Ok(());
        }
        let legacy = if record.api_root.is_none() {
            " (the record was saved before roots were recorded, so it stands for the default root)"
        } else {
            ""
        };
        let (var, key, what) = match record.provider_key {
            ProviderKey::TrelloCloud => (ENV_API_ROOT, "trello.api_root", "Trello API root"),
            ProviderKey::LinearCloud => (ENV_LINEAR_API_URL, "linear.api_url", "Linear API URL"),
        };
        let source = if (self.env)(var).is_some_and(|v| !v.trim().is_empty()) {
            var.to_owned()
        } else {
            format!("{key} in the configuration file")
        };
        let setup = record.provider_key.tracker_name();
        Err(AppError::usage(format!(
            "the {what} in use, {configured} (from {source}), differs from {recorded}, \
             the root the {} provider record of tenant {} was saved for{legacy}; nothing was sent \
             and the stored token is only ever sent to {recorded}. To keep using {recorded}, \
             unset {source}; to move to {configured}, run `webriskops setup {setup} --save` \
             against it with a token for it",
            record.state_name(),
            self.tenant
        )))
    }

    /// The chosen tracker's record of this tenant, saved or draft, as stored: its API root
    /// is not checked (setup decides what to do with a record of another root).
    ///
    /// # Errors
    /// Store failures.
    pub async fn record_unchecked(&mut self) -> AppResult<Option<ProviderRecord>> {
        let store = self.store()?;
        Ok(store.records.load(&self.tenant, self.provider).await?)
    }

    /// The chosen tracker's record of this tenant (saved or draft), if any, refused when it belongs
    /// to another API root than the configured one.
    ///
    /// # Errors
    /// Store failures; a record of another root (exit 2, see [`App::check_root`]).
    pub async fn record(&mut self) -> AppResult<Option<ProviderRecord>> {
        let record = self.record_unchecked().await?;
        if let Some(r) = &record {
            self.check_root(r)?;
        }
        Ok(record)
    }

    /// The API key: `TRELLO_API_KEY` or the configuration, else the stored key.
    ///
    /// # Errors
    /// A malformed key (exit 2) or an unreadable stored key (exit 1).
    pub async fn api_key(&mut self, record: Option<&ProviderRecord>) -> AppResult<Option<ApiKey>> {
        let configured = (self.env)(ENV_API_KEY).or_else(|| self.settings.trello.api_key.clone());
        if let Some(raw) = configured.filter(|k| !k.trim().is_empty()) {
            redact::register(&raw);
            return ApiKey::new(raw).map(Some).map_err(|e| {
                AppError::usage(format!(
                    "{ENV_API_KEY} (or trello.api_key) is not usable: {e}; copy the key from https://trello.com/power-ups/admin"
                ))
            });
        }
        // A draft never has stored credentials, and no stored key leaves for another root.
        let Some(record) = record.filter(|r| !r.is_draft()) else {
            return Ok(None);
        };
        self.check_root(record)?;
        let store = self.store()?;
        let stored = store
            .secrets
            .get_token(&api_key_ref(&self.tenant), &secret_binding(record))
            .await?;
        match stored {
            Some(t) => {
                redact::register(t.expose());
                Ok(ApiKey::new(t.expose()).ok())
            }
            None => Ok(None),
        }
    }

    /// `TRELLO_TOKEN`, when set.
    ///
    /// # Errors
    /// A malformed value (exit 2).
    pub fn env_token(&self) -> AppResult<Option<Token>> {
        match (self.env)(ENV_TOKEN).filter(|t| !t.trim().is_empty()) {
            None => Ok(None),
            Some(raw) => {
                redact::register(&raw);
                Token::new(raw).map(Some).map_err(|e| {
                    AppError::usage(format!(
                        "{ENV_TOKEN} is not usable: {e}; paste the token again"
                    ))
                })
            }
        }
    }

    /// The token saved for `record`, if any.
    ///
    /// # Errors
    /// A wrong master key or tampered data (exit 1, with the fix).
    pub async fn stored_token(&mut self, record: &ProviderRecord) -> AppResult<Option<Token>> {
        let Some(reference) = record.credential.clone().filter(|_| !record.is_draft()) else {
            return Ok(None);
        };
        self.check_root(record)?;
        let store = self.store()?;
        let token = store
            .secrets
            .get_token(&reference, &secret_binding(record))
            .await?;
        if let Some(t) = &token {
            redact::register(t.expose());
        }
        Ok(token)
    }

    /// `LINEAR_API_KEY`, when set.
    ///
    /// # Errors
    /// A malformed value (exit 2).
    pub fn env_linear_key(&self) -> AppResult<Option<Token>> {
        match (self.env)(ENV_LINEAR_API_KEY).filter(|t| !t.trim().is_empty()) {
            None => Ok(None),
            Some(raw) => {
                redact::register(&raw);
                Token::new(raw).map(Some).map_err(|e| {
                    AppError::usage(format!(
                        "{ENV_LINEAR_API_KEY} is not usable: {e}; copy the key again from Linear (Settings › Security & access)"
                    ))
                })
            }
        }
    }

    /// The chosen tracker's credential from the environment: `TRELLO_TOKEN` or
    /// `LINEAR_API_KEY`.
    ///
    /// # Errors
    /// A malformed value (exit 2).
    pub fn env_credential(&self) -> AppResult<Option<(Token, TokenOrigin)>> {
        Ok(match self.provider {
            ProviderKey::TrelloCloud => self.env_token()?.map(|t| (t, TokenOrigin::Env)),
            ProviderKey::LinearCloud => self.env_linear_key()?.map(|t| (t, TokenOrigin::LinearEnv)),
        })
    }

    /// The credential for commands after setup: the environment's first (`TRELLO_TOKEN`,
    /// `LINEAR_API_KEY`), else the stored one.
    ///
    /// # Errors
    /// See [`App::env_credential`] and [`App::stored_token`].
    pub async fn token(
        &mut self,
        record: Option<&ProviderRecord>,
    ) -> AppResult<Option<(Token, TokenOrigin)>> {
        if let Some(t) = self.env_credential()? {
            return Ok(Some(t));
        }
        match record {
            Some(r) => Ok(self
                .stored_token(r)
                .await?
                .map(|t| (t, TokenOrigin::Stored))),
            None => Ok(None),
        }
    }

    /// A Trello adapter for `key` and `token`, configured from the settings.
    ///
    /// # Errors
    /// An unusable API root or adapter setting (exit 2).
    pub fn trello(&self, key: ApiKey, token: Token) -> AppResult<Arc<TrelloAdapter>> {
        let t = &self.settings.trello;
        let bad = |e: webriskops_trello::ConfigError| {
            AppError::usage(format!(
                "{e}; fix WEBRISKOPS_TRELLO_API_ROOT or the [trello] section of the configuration"
            ))
        };
        let mut config = TrelloConfig::new(key, token)
            .with_api_root(&t.api_root)
            .map_err(bad)?;
        config.limits = t.limits.clone();
        config.retry = t.retry.clone();
        config.timeout = Duration::from_secs(t.timeout_secs);
        config.concurrency = t.concurrency;
        config.shared = self.shared_budget.clone().map(|budget| SharedKeyBudget {
            budget,
            owner: self.tenant.as_str().to_owned(),
        });
        config.validate().map_err(bad)?;
        Ok(Arc::new(TrelloAdapter::new(config).map_err(bad)?))
    }

    /// A Linear adapter for the credential `key` (a personal API key, or a stored OAuth
    /// token set, see [`StoredOAuth`]), configured from the settings (`[linear]`,
    /// `WEBRISKOPS_LINEAR_API_URL`, `WEBRISKOPS_FINDING_URL`).
    ///
    /// # Errors
    /// An unusable API URL, finding URL template, key, token set or adapter setting
    /// (exit 2).
    pub fn linear(&self, key: &Token) -> AppResult<Arc<LinearAdapter>> {
        self.linear_with(key, None)
    }

    /// The Linear credential and its facts from the stored or given text.
    fn linear_credential(key: &Token) -> AppResult<(Credential, CredentialFacts)> {
        if StoredOAuth::is_token_set(key.expose()) {
            let set = StoredOAuth::parse(key.expose()).map_err(unusable_set)?;
            for s in set.secrets() {
                redact::register(s.expose());
            }
            let credential = Credential::oauth(set.tokens.access_token.expose()).map_err(|e| {
                AppError::usage(format!("the Linear OAuth token set is not usable: {e}"))
            })?;
            return Ok((credential, set.facts()));
        }
        let credential = Credential::api_key(key.expose()).map_err(|e| {
            AppError::usage(format!(
                "the Linear API key is not usable: {e}; copy the key again from Linear (Settings › Security & access)"
            ))
        })?;
        Ok((credential, CredentialFacts::default()))
    }

    /// The URL stored Linear OAuth token sets are refreshed at: Linear's, or
    /// `WEBRISKOPS_LINEAR_OAUTH_TOKEN_URL`.
    fn linear_token_url(&self) -> String {
        (self.env)(ENV_LINEAR_OAUTH_TOKEN_URL)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| LINEAR_TOKEN_URL.to_owned())
    }

    /// The stored Linear credential `token` of `record`, ready for use: a personal API key
    /// as it is; an OAuth token set whose access token expires within
    /// [`webriskops_linear::REFRESH_MARGIN`] is refreshed with its refresh token, and the
    /// new set (Linear rotates the refresh token) replaces the old one in the store in one
    /// step before anything else is sent. A refused refresh (`invalid_grant`: the refresh
    /// token was revoked or expired) is returned as its reason, for readiness to report
    /// `PROVIDER_AUTH_REQUIRED` with "authorize again"; the stored set is left as it was.
    ///
    /// # Errors
    /// An unusable stored set (exit 2), an unreachable token endpoint (exit 1, retry), a
    /// store failure.
    async fn fresh_linear_secret(
        &mut self,
        record: &ProviderRecord,
        token: Token,
    ) -> AppResult<(Token, Option<String>)> {
        if !StoredOAuth::is_token_set(token.expose()) {
            return Ok((token, None));
        }
        let set = StoredOAuth::parse(token.expose()).map_err(unusable_set)?;
        if !set.needs_refresh(Utc::now()) {
            return Ok((token, None));
        }
        let Some(reference) = record.credential.clone() else {
            return Ok((token, None));
        };
        let refreshed = match set.refresh(&self.linear_token_url()).await {
            Ok(s) => s,
            Err(PortError::Unauthenticated { message, .. }) => return Ok((token, Some(message))),
            Err(PortError::InvalidInput { message, .. }) => {
                return Err(AppError::usage(format!(
                    "{message}; fix {ENV_LINEAR_OAUTH_TOKEN_URL}"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        for s in refreshed.secrets() {
            redact::register(s.expose());
        }
        let text = Token::new(refreshed.to_text()).map_err(|e| {
            AppError::failed(format!(
                "the refreshed Linear OAuth token set cannot be stored: {e}; authorize again and \
                 run webriskops setup linear --token-file FILE --save"
            ))
        })?;
        redact::register(text.expose());
        let store = self.store()?;
        store
            .secrets
            .replace_token(&reference, &secret_binding(record), &text)
            .await?;
        tracing::info!("refreshed the Linear OAuth access token and stored the new token set");
        Ok((text, None))
    }

    /// Where OAuth access tokens are revoked: Linear's, or beside the token endpoint
    /// `WEBRISKOPS_LINEAR_OAUTH_TOKEN_URL` names (`…/oauth/token` → `…/oauth/revoke`), so a
    /// token made by another endpoint (linear-sim) is never sent to Linear itself.
    pub fn linear_revoke_url(&self) -> String {
        let token_url = self.linear_token_url();
        if token_url == LINEAR_TOKEN_URL {
            webriskops_linear::REVOKE_URL.to_owned()
        } else {
            match token_url.rsplit_once('/') {
                Some((base, _)) => format!("{base}/revoke"),
                None => token_url,
            }
        }
    }

    /// [`App::linear`], with the reason a refresh of the stored token set failed, if it did.
    fn linear_with(
        &self,
        key: &Token,
        refresh_failure: Option<String>,
    ) -> AppResult<Arc<LinearAdapter>> {
        let l = &self.settings.linear;
        let bad = |e: webriskops_linear::ConfigError| {
            AppError::usage(format!(
                "{e}; fix {ENV_LINEAR_API_URL}, {ENV_FINDING_URL} or the [linear] section of the configuration"
            ))
        };
        let settings = l.adapter_settings();
        settings.validate().map_err(bad)?;
        let finding_url = FindingUrl::new(&l.finding_url).map_err(bad)?;
        let (credential, credential_facts) = Self::linear_credential(key)?;
        let adapter = LinearAdapter::new(
            &settings,
            credential,
            self.tenant.clone(),
            LinearAdapterOptions {
                finding_url,
                credential_facts,
                refresh_failure,
                revoke_url: self.linear_revoke_url(),
            },
        )
        .map_err(bad)?;
        Ok(Arc::new(adapter))
    }

    /// The chosen tracker's adapter for `token` (and, for Trello, the API key `key`).
    ///
    /// # Errors
    /// See [`App::trello`] and [`App::linear`].
    pub fn adapter(&self, key: Option<ApiKey>, token: &Token) -> AppResult<Option<Tracker>> {
        Ok(match (self.provider, key) {
            (ProviderKey::LinearCloud, _) => {
                let a = self.linear(token)?;
                Some(Tracker::new(a.clone()).with_webhooks(a))
            }
            (ProviderKey::TrelloCloud, Some(k)) => {
                let a = self.trello(k, token.clone())?;
                Some(Tracker::new(a.clone()).with_webhooks(a))
            }
            (ProviderKey::TrelloCloud, None) => None,
        })
    }

    /// The chosen tracker's adapter for the record's credentials, when they are known
    /// (Trello: the API key and the token; Linear: the API key).
    ///
    /// # Errors
    /// See [`App::api_key`], [`App::token`], [`App::trello`] and [`App::linear`].
    pub async fn tracker_for(
        &mut self,
        record: Option<&ProviderRecord>,
    ) -> AppResult<Option<Tracker>> {
        let key = match self.provider {
            ProviderKey::TrelloCloud => self.api_key(record).await?,
            ProviderKey::LinearCloud => None,
        };
        match (self.token(record).await?, record) {
            (Some((t, TokenOrigin::Stored)), Some(r))
                if self.provider == ProviderKey::LinearCloud =>
            {
                let (t, refresh_failure) = self.fresh_linear_secret(r, t).await?;
                let a = self.linear_with(&t, refresh_failure)?;
                Ok(Some(Tracker::new(a.clone()).with_webhooks(a)))
            }
            (Some((t, _)), _) => self.adapter(key, &t),
            (None, _) => Ok(None),
        }
    }
}

/// An unusable Linear OAuth token set (its message never quotes the set), with where a
/// good one is stored from.
fn unusable_set(e: PortError) -> AppError {
    let message = match e {
        PortError::InvalidInput { message, .. } => message,
        other => other.to_string(),
    };
    AppError::usage(format!(
        "{message}; store it with webriskops setup linear --token-file FILE --save"
    ))
}

/// The provider a `--tracker` value names.
pub fn provider_of(t: TrackerArg) -> ProviderKey {
    match t {
        TrackerArg::Trello => ProviderKey::TrelloCloud,
        TrackerArg::Linear => ProviderKey::LinearCloud,
    }
}
