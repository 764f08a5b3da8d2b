//! The composition root: settings, the store with its master key, credentials and the
//! Trello adapter, assembled once per command.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use webriskops_domain::{ApiKey, CredentialRef, ProviderKey, ProviderRecord, TenantId, Token};
use webriskops_ports::{ProviderStore, SecretStore};
use webriskops_service::secret_binding;
use webriskops_store_sqlite::{
    MasterKey, SqliteStore, StoreOptions, KEY_FILE_NAME, MASTER_KEY_ENV,
};
use webriskops_trello::{TrelloAdapter, TrelloConfig};

use crate::config::{Settings, ENV_API_KEY, ENV_TOKEN};
use crate::error::{AppError, AppResult};
use crate::output::Out;
use crate::redact;

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
    store: Option<SqliteStore>,
}

/// Where the token in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOrigin {
    Env,
    File,
    Stored,
    Prompt,
}

impl TokenOrigin {
    pub fn describe(self) -> &'static str {
        match self {
            TokenOrigin::Env => "TRELLO_TOKEN",
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
        for var in [ENV_TOKEN, ENV_API_KEY, MASTER_KEY_ENV] {
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
            store: None,
        })
    }

    /// The store, opened (with its master key) on first use.
    ///
    /// # Errors
    /// A malformed master key, a locked or corrupt database (exit 1, with the fix).
    pub fn store(&mut self) -> AppResult<SqliteStore> {
        if let Some(s) = &self.store {
            return Ok(s.clone());
        }
        let key = self.master_key()?;
        let store = SqliteStore::open(
            &self.data_dir,
            StoreOptions {
                master_key: Some(key),
                ..StoreOptions::default()
            },
        )?;
        self.store = Some(store.clone());
        Ok(store)
    }

    fn master_key(&self) -> AppResult<MasterKey> {
        if let Some(v) = (self.env)(MASTER_KEY_ENV).filter(|v| !v.trim().is_empty()) {
            return Ok(MasterKey::from_env_value(&v)?);
        }
        create_private_dir(&self.data_dir)?;
        Ok(MasterKey::load_or_create(
            &self.data_dir.join(KEY_FILE_NAME),
        )?)
    }

    /// The saved Trello record of this tenant, if any.
    ///
    /// # Errors
    /// Store failures.
    pub async fn record(&mut self) -> AppResult<Option<ProviderRecord>> {
        let store = self.store()?;
        Ok(store.load(&self.tenant, ProviderKey::TrelloCloud).await?)
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
        let Some(record) = record else {
            return Ok(None);
        };
        let store = self.store()?;
        let stored = store
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
        let Some(reference) = record.credential.clone() else {
            return Ok(None);
        };
        let store = self.store()?;
        let token = store.get_token(&reference, &secret_binding(record)).await?;
        if let Some(t) = &token {
            redact::register(t.expose());
        }
        Ok(token)
    }

    /// The token for commands after setup: `TRELLO_TOKEN` first, else the stored one.
    ///
    /// # Errors
    /// See [`App::env_token`] and [`App::stored_token`].
    pub async fn token(
        &mut self,
        record: Option<&ProviderRecord>,
    ) -> AppResult<Option<(Token, TokenOrigin)>> {
        if let Some(t) = self.env_token()? {
            return Ok(Some((t, TokenOrigin::Env)));
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
        config.validate().map_err(bad)?;
        Ok(Arc::new(TrelloAdapter::new(config).map_err(bad)?))
    }

    /// The adapter for the record's credentials, when both key and token are known.
    ///
    /// # Errors
    /// See [`App::api_key`], [`App::token`] and [`App::trello`].
    pub async fn tracker_for(
        &mut self,
        record: Option<&ProviderRecord>,
    ) -> AppResult<Option<Arc<TrelloAdapter>>> {
        let key = self.api_key(record).await?;
        let token = self.token(record).await?;
        match (key, token) {
            (Some(k), Some((t, _))) => Ok(Some(self.trello(k, t)?)),
            _ => Ok(None),
        }
    }
}

/// Creates the data directory, private to the user (0700) on unix.
fn create_private_dir(dir: &Path) -> AppResult<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| {
        AppError::failed(format!(
            "cannot create the data directory {}: {e}; choose another with --data-dir",
            dir.display()
        ))
    })
}
