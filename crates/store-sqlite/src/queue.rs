//! `JobQueue`: export jobs claimed under leases. One process owns the database, and every
//! statement runs on its one connection, so a claim is a read and an update in one
//! transaction; a lease that expired is taken over like in the PostgreSQL store, so both
//! engines answer the store conformance suite alike.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{params, OptionalExtension};
use webriskops_domain::{ProviderKey, TenantId};
use webriskops_ports::{
    Claim, JobEnd, JobKind, JobQueue, JobState, JobUploads, Lease, PortResult, QueueDepth,
};

use crate::accounts::{query_jobs, JOB_COLUMNS};
use crate::error::StoreError;
use crate::{parse_time, time_text, SqliteStore};

/// How long finished syncs are kept (at least an interval): the schedule reads the newest.
const KEEP_FINISHED_SYNCS: TimeDelta = TimeDelta::days(1);

/// The insert of a sync job that joins a waiting one: the partial unique index
/// `export_jobs_one_waiting_sync` (migration 7) refuses a second queued sync of a tenancy,
/// and `ON CONFLICT DO NOTHING` turns that into no row
/// (https://www.sqlite.org/lang_upsert.html).
const INSERT_SYNC: &str = "INSERT INTO export_jobs
       (id, tenant, provider_key, state, progress_json, input_path, created_at, fallback, kind)
     SELECT ?1, ?2, ?3, 'queued', '{}', '', ?4, 'auto', 'sync'";

/// `now - interval`, saturating far in the past.
fn before(now: DateTime<Utc>, interval: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(interval)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `now + lease_for`, saturating far in the future.
fn lease_end(now: DateTime<Utc>, lease_for: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(lease_for)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[async_trait]
impl JobQueue for SqliteStore {
    async fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> PortResult<Option<Claim>> {
        let owner = owner.to_owned();
        let until = lease_end(now, lease_for);
        self.run(move |conn, path| {
            let sql = |e| StoreError::sqlite(path, e);
            let tx = conn.transaction().map_err(sql)?;
            let picked: Option<(String, String, Option<String>, i64, String)> = tx
                .query_row(
                    "SELECT id, state, lease_owner, attempts, kind FROM export_jobs j
                     WHERE (state = 'queued'
                        OR (state = 'running' AND lease_until IS NOT NULL AND lease_until < ?1))
                       AND NOT EXISTS (
                         SELECT 1 FROM export_jobs b
                         WHERE b.tenant = j.tenant AND b.provider_key = j.provider_key
                           AND b.id <> j.id AND b.state = 'running' AND b.lease_until >= ?1)
                     ORDER BY created_at, id LIMIT 1",
                    params![time_text(now)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()
                .map_err(sql)?;
            let Some((id, state, previous, attempts, kind)) = picked else {
                return Ok(None);
            };
            let kind = JobKind::parse(&kind).ok_or_else(|| StoreError::Decode {
                path: path.to_owned(),
                what: "job kind",
                reason: format!("unknown job kind {kind:?}"),
            })?;
            let attempt = attempts + 1;
            tx.execute(
                "UPDATE export_jobs SET state = 'running', lease_owner = ?2, lease_until = ?3,
                   attempts = ?4
                 WHERE id = ?1",
                params![id, owner, time_text(until), attempt],
            )
            .map_err(sql)?;
            let job = query_jobs(
                &tx,
                path,
                &format!("SELECT {JOB_COLUMNS} FROM export_jobs WHERE id = ?1"),
                &[&id],
            )?
            .pop()
            .ok_or_else(|| StoreError::NotFound {
                what: format!("export job {id}"),
            })?;
            tx.commit().map_err(sql)?;
            Ok(Some(Claim {
                job,
                kind,
                lease: Lease {
                    job_id: id,
                    owner,
                    attempt,
                    until,
                },
                taken_over_from: previous.filter(|_| state == JobState::Running.as_str()),
            }))
        })
        .await
    }

    async fn heartbeat(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> PortResult<Option<Lease>> {
        let renewed = Lease {
            until: lease_end(now, lease_for),
            ..lease.clone()
        };
        let lease = lease.clone();
        self.run(move |conn, path| {
            let n = conn
                .execute(
                    "UPDATE export_jobs SET lease_until = ?4
                     WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 AND attempts = ?3",
                    params![
                        lease.job_id,
                        lease.owner,
                        lease.attempt,
                        time_text(renewed.until)
                    ],
                )
                .map_err(|e| StoreError::sqlite(path, e))?;
            Ok((n == 1).then_some(renewed))
        })
        .await
    }

    async fn finish(&self, lease: &Lease, end: &JobEnd) -> PortResult<bool> {
        let (lease, end) = (lease.clone(), end.clone());
        let state = if end.succeeded {
            JobState::Done
        } else {
            JobState::Failed
        };
        self.run(move |conn, path| {
            let n = conn
                .execute(
                    "UPDATE export_jobs SET state = ?4, progress_json = ?5, summary_json = ?6,
                       bundle_dir = ?7, finished_at = ?8, lease_owner = NULL, lease_until = NULL
                     WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 AND attempts = ?3",
                    params![
                        lease.job_id,
                        lease.owner,
                        lease.attempt,
                        state.as_str(),
                        end.progress_json,
                        end.summary_json,
                        end.bundle_dir,
                        time_text(end.finished_at)
                    ],
                )
                .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(n == 1)
        })
        .await
    }

    async fn record_progress(&self, lease: &Lease, progress_json: &str) -> PortResult<bool> {
        let (lease, progress) = (lease.clone(), progress_json.to_owned());
        self.run(move |conn, path| {
            let n = conn
                .execute(
                    "UPDATE export_jobs SET progress_json = ?4
                     WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 AND attempts = ?3",
                    params![lease.job_id, lease.owner, lease.attempt, progress],
                )
                .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(n == 1)
        })
        .await
    }

    async fn enqueue_sync(
        &self,
        id: &str,
        tenant: &TenantId,
        provider: ProviderKey,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        let (id, tenant) = (id.to_owned(), tenant.as_str().to_owned());
        self.run(move |conn, path| {
            let n = conn
                .execute(
                    &format!("{INSERT_SYNC} WHERE true ON CONFLICT DO NOTHING"),
                    params![id, tenant, provider.as_str(), time_text(now)],
                )
                .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(n == 1)
        })
        .await
    }

    async fn enqueue_sync_if_due(
        &self,
        id: &str,
        tenant: &TenantId,
        provider: ProviderKey,
        now: DateTime<Utc>,
        interval: Duration,
    ) -> PortResult<bool> {
        let (id, tenant) = (id.to_owned(), tenant.as_str().to_owned());
        let since = before(now, interval);
        let keep_after = since.min(now - KEEP_FINISHED_SYNCS);
        self.run(move |conn, path| {
            let sql = |e| StoreError::sqlite(path, e);
            // One connection, one transaction: the check and the insert see the same rows.
            let tx = conn.transaction().map_err(sql)?;
            tx.execute(
                "DELETE FROM export_jobs
                 WHERE kind = 'sync' AND tenant = ?1 AND provider_key = ?2
                   AND state IN ('done', 'failed') AND created_at < ?3",
                params![tenant, provider.as_str(), time_text(keep_after)],
            )
            .map_err(sql)?;
            // `WHERE` before `ON CONFLICT`: SQLite needs it to parse an upsert whose
            // insert is a SELECT (https://www.sqlite.org/lang_upsert.html, "parsing ambiguity").
            let n = tx
                .execute(
                    &format!(
                        "{INSERT_SYNC}
                         WHERE NOT EXISTS (
                           SELECT 1 FROM export_jobs
                           WHERE kind = 'sync' AND tenant = ?2 AND provider_key = ?3
                             AND (state = 'queued' OR created_at > ?5))
                         ON CONFLICT DO NOTHING"
                    ),
                    params![
                        id,
                        tenant,
                        provider.as_str(),
                        time_text(now),
                        time_text(since)
                    ],
                )
                .map_err(sql)?;
            tx.commit().map_err(sql)?;
            Ok(n == 1)
        })
        .await
    }

    async fn depth_of(&self, kind: JobKind) -> PortResult<QueueDepth> {
        self.run(move |conn, path| {
            let (queued, running, oldest): (i64, i64, Option<String>) = conn
                .query_row(
                    "SELECT
                       COALESCE(SUM(state = 'queued'), 0),
                       COALESCE(SUM(state = 'running'), 0),
                       MIN(CASE WHEN state = 'queued' THEN created_at END)
                     FROM export_jobs WHERE kind = ?1",
                    params![kind.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(QueueDepth {
                queued: queued.max(0) as u64,
                running: running.max(0) as u64,
                oldest_queued_at: oldest
                    .map(|t| parse_time(path, "job creation", &t))
                    .transpose()?,
            })
        })
        .await
    }
}

#[async_trait]
impl JobUploads for SqliteStore {
    async fn put_upload_chunk(&self, job_id: &str, seq: u32, bytes: &[u8]) -> PortResult<()> {
        let (id, bytes) = (job_id.to_owned(), bytes.to_vec());
        self.run(move |conn, path| {
            conn.execute(
                "INSERT INTO job_uploads (job_id, seq, bytes) VALUES (?1, ?2, ?3)
                 ON CONFLICT (job_id, seq) DO UPDATE SET bytes = excluded.bytes",
                params![id, seq, bytes],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }

    async fn upload_chunk(&self, job_id: &str, seq: u32) -> PortResult<Option<Vec<u8>>> {
        let id = job_id.to_owned();
        self.run(move |conn, path| {
            conn.query_row(
                "SELECT bytes FROM job_uploads WHERE job_id = ?1 AND seq = ?2",
                params![id, seq],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| StoreError::sqlite(path, e))
        })
        .await
    }

    async fn delete_upload(&self, job_id: &str) -> PortResult<()> {
        let id = job_id.to_owned();
        self.run(move |conn, path| {
            conn.execute("DELETE FROM job_uploads WHERE job_id = ?1", params![id])
                .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }
}
