//! The numbered migrations in `migrations/`, recorded in `schema_migrations`.

use tokio_postgres::Client;

use crate::error::PgStoreError;

/// The migrations in order: (version, name, SQL).
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (
        2,
        "accounts",
        include_str!("../migrations/0002_accounts.sql"),
    ),
    (
        3,
        "webhooks",
        include_str!("../migrations/0003_webhooks.sql"),
    ),
    (
        4,
        "job_uploads",
        include_str!("../migrations/0004_job_uploads.sql"),
    ),
    (5, "budgets", include_str!("../migrations/0005_budgets.sql")),
    (
        6,
        "sync_jobs",
        include_str!("../migrations/0006_sync_jobs.sql"),
    ),
    (
        7,
        "sign_ins",
        include_str!("../migrations/0007_sign_ins.sql"),
    ),
    (
        8,
        "event_sequence",
        include_str!("../migrations/0008_event_sequence.sql"),
    ),
    (
        9,
        "run_providers",
        include_str!("../migrations/0009_run_providers.sql"),
    ),
    (
        10,
        "event_repeats",
        include_str!("../migrations/0010_event_repeats.sql"),
    ),
];

/// The schema version this build writes: the newest migration's number (numbers may have
/// gaps; each is applied when not yet recorded, whatever its place).
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The numbers of the migrations this build holds, in order.
pub fn migration_versions() -> Vec<i32> {
    MIGRATIONS.iter().map(|m| m.0).collect()
}

/// The advisory lock every migration transaction holds ("wro-migr" as a number): replicas
/// starting together apply each migration once, one after the other.
const MIGRATION_LOCK: i64 = 0x7772_6f2d_6d69_6772;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// What [`crate::migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The versions this call applied (none when another replica, or an earlier run,
    /// applied them).
    pub applied: Vec<i32>,
    /// The schema version now.
    pub version: i32,
}

/// The database's schema version: 0 before any migration.
pub(crate) async fn version(client: &Client, target: &str) -> Result<i32, PgStoreError> {
    let pg = |source| PgStoreError::Postgres {
        target: target.to_owned(),
        source,
    };
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .map_err(pg)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let found: Option<i32> = client
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .await
        .map_err(pg)?
        .get(0);
    Ok(found.unwrap_or(0))
}

/// Applies every migration not yet recorded, each in its own transaction holding the
/// migrations' advisory lock (`pg_advisory_xact_lock`, released at commit or rollback).
pub(crate) async fn migrate(client: &mut Client, target: &str) -> Result<Migrated, PgStoreError> {
    let pg = |source| PgStoreError::Postgres {
        target: target.to_owned(),
        source,
    };
    let mut applied = Vec::new();
    for &(version, name, sql) in MIGRATIONS {
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg)?;
        tx.batch_execute(CREATE_TABLE).await.map_err(pg)?;
        let newest: Option<i32> = tx
            .query_one("SELECT max(version) FROM schema_migrations", &[])
            .await
            .map_err(pg)?
            .get(0);
        if let Some(found) = newest.filter(|v| *v > SCHEMA_VERSION) {
            return Err(PgStoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let done: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)",
                &[&version],
            )
            .await
            .map_err(pg)?
            .get(0);
        if !done {
            tx.batch_execute(sql)
                .await
                .map_err(|source| PgStoreError::Migration {
                    version,
                    name,
                    target: target.to_owned(),
                    source,
                })?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&version, &name],
            )
            .await
            .map_err(pg)?;
            applied.push(version);
        }
        tx.commit().await.map_err(pg)?;
        if !done {
            tracing::info!(target, version, name, "applied database migration");
        }
    }
    Ok(Migrated {
        applied,
        version: SCHEMA_VERSION,
    })
}
