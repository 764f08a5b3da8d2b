//! Connection settings and the numbered migrations, tracked with `PRAGMA user_version`.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::StoreError;

/// The migrations in order; migration `i` (0-based) brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_secret_keys.sql"),
    include_str!("../migrations/0003_accounts.sql"),
    include_str!("../migrations/0004_webhooks.sql"),
    include_str!("../migrations/0005_job_leases.sql"),
    include_str!("../migrations/0006_job_uploads.sql"),
    include_str!("../migrations/0007_sync_jobs.sql"),
    include_str!("../migrations/0008_sign_ins.sql"),
    include_str!("../migrations/0009_event_sequence.sql"),
    include_str!("../migrations/0010_run_providers.sql"),
    include_str!("../migrations/0011_event_repeats.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Sets the pragmas every connection needs: WAL, `synchronous=FULL` (a commit is on disk
/// when it returns), foreign keys and the busy timeout. The first read of the file happens
/// here, so a file that is not a database is reported as corrupt.
pub(crate) fn configure(
    conn: &Connection,
    path: &Path,
    busy_timeout: Duration,
) -> Result<(), StoreError> {
    let sql = |e| StoreError::sqlite(path, e);
    conn.busy_timeout(busy_timeout).map_err(sql)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(sql)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Decode {
            path: path.to_owned(),
            what: "journal mode",
            reason: format!("sqlite kept journal mode {mode:?} instead of wal"),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(sql)?;
    Ok(())
}

/// Applies every migration newer than the file's `user_version`, each in its own transaction.
///
/// # Errors
/// [`StoreError::SchemaTooNew`] when the file was written by a newer build.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let sql = |e| StoreError::sqlite(path, e);
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index as i64 + 1;
        let tx = conn.transaction().map_err(sql)?;
        tx.execute_batch(migration).map_err(sql)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
        tracing::info!(path = %path.display(), version, "applied database migration");
    }
    Ok(())
}
