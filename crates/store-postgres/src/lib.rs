//! The PostgreSQL store: the same store ports as the SQLite store (provider records, the
//! export ledger, the run journal, sealed secrets, accounts, export jobs, the status-event
//! log, the webhook registry) with the same meaning (one conformance suite checks both), plus the job queue
//! several replicas share (`JobQueue`: `FOR UPDATE SKIP LOCKED`, leases, takeover).
//!
//! [`migrate`] applies the migrations in `migrations/` in order, each in its own
//! transaction under a cluster-wide advisory lock, recorded in `schema_migrations`, so
//! replicas starting together apply each once. [`PgStore::open`] connects a pool,
//! migrates (unless told not to) and refuses a database whose schema is newer than this
//! build, with the fix.
//!
//! Secrets are sealed by `webriskops_sealing`, exactly as the SQLite store seals them;
//! every replica needs the same master key (there is no key file).

mod accounts;
mod budgets;
mod error;
mod queue;
mod records;
mod schema;
mod secrets;
mod sign_ins;
mod webhooks;

use std::fmt;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use webriskops_domain::{Role, TenantId};
use webriskops_sealing::MasterKey;

pub use error::PgStoreError;
pub use schema::{migration_versions, Migrated, SCHEMA_VERSION};

/// How to open the store.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The key that seals secrets (the same on every replica); without one, the
    /// `SecretStore` methods fail (`InvalidInput`, naming `WEBRISKOPS_MASTER_KEY`) and
    /// everything else works.
    pub master_key: Option<MasterKey>,
    /// Connections kept by this handle. Default 8.
    pub pool_size: usize,
    /// Apply pending migrations on open (default). Without it, a database behind this build
    /// is refused with the fix (`webriskops migrate`).
    pub migrate: bool,
    /// How long connecting, and waiting for a free connection, may take. Default 10 s.
    pub connect_timeout: Duration,
}

/// Connections of the control pool, besides [`PgOptions::pool_size`].
const CONTROL_POOL_SIZE: usize = 3;

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            master_key: None,
            pool_size: 8,
            migrate: true,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The PostgreSQL store. Cheap to clone: clones share one pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// A few connections of their own for the job queue's claims, heartbeats and finishes
    /// and for the shared request budgets: a lease is renewed, and a budget exchanged, even
    /// while the jobs' own work holds every connection of `pool`.
    control: Pool,
    /// Where it is connected, without credentials (`host:port/database`), for messages.
    target: String,
    master_key: Option<MasterKey>,
}

/// Parses `url` (`postgres://user[:password]@host[:port]/database[?…]`, or the key=value
/// form), never echoing it, since it may hold a password.
fn parse_url(url: &str) -> Result<tokio_postgres::Config, PgStoreError> {
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| PgStoreError::Url {
            reason: e.to_string(),
        })
}

/// `host:port/database` of a configuration: what messages name, never the password.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// Applies every pending migration to the database at `url`, each in its own transaction
/// under the migrations' advisory lock; replicas may call it at the same time.
///
/// # Errors
/// A malformed URL, an unreachable server, a database of a newer build
/// ([`PgStoreError::SchemaTooNew`]), a migration that failed (rolled back whole).
pub async fn migrate(url: &str) -> Result<Migrated, PgStoreError> {
    let mut config = parse_url(url)?;
    config.connect_timeout(Duration::from_secs(10));
    let target = describe(&config);
    let (mut client, connection) =
        config
            .connect(NoTls)
            .await
            .map_err(|source| PgStoreError::Connect {
                target: target.clone(),
                source,
            })?;
    let task = tokio::spawn(connection);
    let result = schema::migrate(&mut client, &target).await;
    drop(client);
    let _ = task.await;
    result
}

impl PgStore {
    /// Connects to `url`, applies pending migrations (unless `opts.migrate` is false) and
    /// checks the schema.
    ///
    /// # Errors
    /// [`PgStoreError::Url`], [`PgStoreError::Connect`] (with the server it tried),
    /// [`PgStoreError::SchemaTooNew`] (upgrade this build), [`PgStoreError::SchemaTooOld`]
    /// (run `webriskops migrate`, when `opts.migrate` is false), a failed migration.
    pub async fn open(url: &str, opts: PgOptions) -> Result<PgStore, PgStoreError> {
        if opts.migrate {
            migrate(url).await?;
        }
        let mut config = parse_url(url)?;
        config.connect_timeout(opts.connect_timeout);
        config.application_name("webriskops");
        let target = describe(&config);
        let build = |size: usize| {
            let manager = Manager::from_config(
                config.clone(),
                NoTls,
                ManagerConfig {
                    // A connection that broke (the server restarted) is dropped, not handed
                    // out.
                    recycling_method: RecyclingMethod::Fast,
                },
            );
            Pool::builder(manager)
                .max_size(size.max(1))
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(opts.connect_timeout))
                .create_timeout(Some(opts.connect_timeout))
                .build()
                .map_err(|e| PgStoreError::Pool {
                    target: target.clone(),
                    message: e.to_string(),
                })
        };
        let pool = build(opts.pool_size)?;
        let control = build(CONTROL_POOL_SIZE)?;
        let store = PgStore {
            pool,
            control,
            target,
            master_key: opts.master_key,
        };
        store.check_schema().await?;
        tracing::debug!(target = %store.target, "opened the PostgreSQL store");
        Ok(store)
    }

    /// `host:port/database` this store is connected to (no credentials).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether the database answers now and holds this build's schema: the schema version
    /// found, for a readiness check (`/readyz`).
    ///
    /// # Errors
    /// The database does not answer (a pooled connection broke, the server is gone), or
    /// its schema is not [`SCHEMA_VERSION`] ([`PgStoreError::SchemaTooNew`],
    /// [`PgStoreError::SchemaTooOld`]).
    pub async fn check_schema(&self) -> Result<i32, PgStoreError> {
        let client = self.client().await?;
        let found = schema::version(&client, &self.target).await?;
        if found > SCHEMA_VERSION {
            return Err(PgStoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            return Err(PgStoreError::SchemaTooOld {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(found)
    }

    /// A connection of the control pool (queue and budgets).
    async fn control_client(&self) -> Result<deadpool_postgres::Object, PgStoreError> {
        self.control.get().await.map_err(|e| PgStoreError::Pool {
            target: self.target.clone(),
            message: e.to_string(),
        })
    }

    /// A pooled connection.
    async fn client(&self) -> Result<deadpool_postgres::Object, PgStoreError> {
        self.pool.get().await.map_err(|e| PgStoreError::Pool {
            target: self.target.clone(),
            message: e.to_string(),
        })
    }

    /// A failed statement, as the store's error.
    fn pg(&self, source: tokio_postgres::Error) -> PgStoreError {
        PgStoreError::Postgres {
            target: self.target.clone(),
            source,
        }
    }

    fn decode(&self, what: &'static str, reason: impl fmt::Display) -> PgStoreError {
        PgStoreError::Decode {
            target: self.target.clone(),
            what,
            reason: reason.to_string(),
        }
    }

    fn tenant_of(&self, text: &str) -> Result<TenantId, PgStoreError> {
        TenantId::new(text).map_err(|e| self.decode("tenant", e))
    }

    fn role_of(&self, text: &str) -> Result<Role, PgStoreError> {
        Role::parse(text).map_err(|e| self.decode("role", e))
    }

    /// Parses a stored keyword (`open`, `export`, …) with the type's serde names.
    fn keyword<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        text: &str,
    ) -> Result<T, PgStoreError> {
        serde_json::from_value(serde_json::Value::String(text.to_owned()))
            .map_err(|e| self.decode(what, e))
    }
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .field("master_key", &self.master_key)
            .finish_non_exhaustive()
    }
}
