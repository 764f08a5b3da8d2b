//! The store the binary composes, whichever engine holds it: SQLite in the data
//! directory (one process), or PostgreSQL at `--database-url` (any number of `serve`
//! replicas sharing one database). Everything past this module sees only the ports.

use std::sync::Arc;

use webriskops_ports::{
    Accounts, EventLog, ExportJobs, ExportLedger, JobQueue, JobUploads, ProviderStore,
    RequestBudgets, RunJournal, SecretStore, WebhookRegistry,
};
use webriskops_service::ServicePorts;
use webriskops_store_postgres::{PgOptions, PgStore};
pub use webriskops_store_sqlite::MASTER_KEY_ENV;
use webriskops_store_sqlite::{MasterKey, SqliteStore};

use crate::error::{AppError, AppResult};

/// Which engine holds the store.
#[derive(Debug, Clone)]
enum Engine {
    Sqlite,
    Postgres(PgStore),
}

/// Every store port of one open store, as trait objects.
#[derive(Debug, Clone)]
pub struct Stores {
    pub records: Arc<dyn ProviderStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub ledger: Arc<dyn ExportLedger>,
    pub journal: Arc<dyn RunJournal>,
    pub accounts: Arc<dyn Accounts>,
    pub jobs: Arc<dyn ExportJobs>,
    pub events: Arc<dyn EventLog>,
    pub hooks: Arc<dyn WebhookRegistry>,
    /// Export jobs claimed under leases, by whichever process's worker.
    pub queue: Arc<dyn JobQueue>,
    /// The jobs' uploads, readable by every process on the store.
    pub uploads: Arc<dyn JobUploads>,
    /// The request budgets every replica shares (PostgreSQL only: one SQLite process
    /// needs none beyond its own limiter).
    pub budgets: Option<Arc<dyn RequestBudgets>>,
    engine: Engine,
}

impl Stores {
    fn of<S>(store: S, engine: Engine) -> Stores
    where
        S: ProviderStore
            + SecretStore
            + ExportLedger
            + RunJournal
            + Accounts
            + ExportJobs
            + EventLog
            + WebhookRegistry
            + JobQueue
            + JobUploads
            + 'static,
    {
        let s = Arc::new(store);
        Stores {
            records: s.clone(),
            secrets: s.clone(),
            ledger: s.clone(),
            journal: s.clone(),
            accounts: s.clone(),
            jobs: s.clone(),
            events: s.clone(),
            hooks: s.clone(),
            queue: s.clone(),
            uploads: s,
            budgets: None,
            engine,
        }
    }

    /// The data directory's SQLite store.
    pub fn sqlite(store: SqliteStore) -> Stores {
        Stores::of(store, Engine::Sqlite)
    }

    /// The PostgreSQL store at `url`, migrated on open. The master key must come from
    /// `master_key_env` (`WEBRISKOPS_MASTER_KEY`): every replica seals and opens with the
    /// same key, so there is no key file to fall back on.
    ///
    /// # Errors
    /// No or a malformed master key (exit 2); an unreachable database, a schema newer than
    /// this build, a failed migration (exit 1, with the fix).
    pub async fn postgres(url: &str, master_key_env: Option<String>) -> AppResult<Stores> {
        let master_key = master_key(master_key_env)?;
        let store = PgStore::open(
            url,
            PgOptions {
                master_key: Some(master_key),
                ..PgOptions::default()
            },
        )
        .await
        .map_err(|e| AppError::failed(format!("cannot open the PostgreSQL store: {e}")))?;
        let budgets: Arc<dyn RequestBudgets> = Arc::new(store.clone());
        Ok(Stores {
            budgets: Some(budgets),
            ..Stores::of(store.clone(), Engine::Postgres(store))
        })
    }

    /// The local ports the service's use cases take, without a tracker.
    pub fn service_ports(&self) -> ServicePorts {
        ServicePorts {
            records: self.records.clone(),
            secrets: self.secrets.clone(),
            ledger: self.ledger.clone(),
            journal: self.journal.clone(),
            tracker: None,
        }
    }

    /// Whether the store can serve now: PostgreSQL answers and holds this build's schema
    /// (SQLite, opened and migrated in this process, always can).
    ///
    /// # Errors
    /// Why not, in words for an operator (no credentials).
    pub async fn ready(&self) -> Result<(), String> {
        match &self.engine {
            Engine::Sqlite => Ok(()),
            Engine::Postgres(pg) => pg
                .check_schema()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }
}

/// The master key PostgreSQL needs, from `WEBRISKOPS_MASTER_KEY`'s value.
fn master_key(value: Option<String>) -> AppResult<MasterKey> {
    match value.filter(|v| !v.trim().is_empty()) {
        Some(v) => Ok(MasterKey::from_env_value(&v)?),
        None => Err(AppError::usage(format!(
            "with --database-url (PostgreSQL), set {MASTER_KEY_ENV}: every replica must seal \
             and open secrets with the same key, so no key file is made; generate one with \
             `head -c 32 /dev/urandom | base64` and give the same value to every replica"
        ))),
    }
}

/// `webriskops migrate`: applies PostgreSQL's pending migrations and says which; with
/// SQLite there is nothing to run (it migrates when opened).
///
/// # Errors
/// An unreachable database, a newer schema, a failed migration (exit 1).
pub async fn migrate(url: Option<&str>) -> AppResult<String> {
    let Some(url) = url else {
        return Ok(
            "SQLite (the data directory): migrations run when the store is opened; \
                   nothing to do. Give --database-url to migrate a PostgreSQL database."
                .to_owned(),
        );
    };
    let done = webriskops_store_postgres::migrate(url)
        .await
        .map_err(|e| AppError::failed(format!("cannot migrate the PostgreSQL store: {e}")))?;
    Ok(if done.applied.is_empty() {
        format!(
            "PostgreSQL schema is at version {}; no migration was pending.",
            done.version
        )
    } else {
        format!(
            "Applied PostgreSQL migration(s) {}; the schema is at version {}.",
            done.applied
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            done.version
        )
    })
}
