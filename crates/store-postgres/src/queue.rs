//! `JobQueue` for several replicas: a claim locks the oldest claimable row with
//! `FOR UPDATE SKIP LOCKED` (a row another replica is claiming is skipped, not waited for)
//! and writes the lease in the same statement, skipping the jobs of a tenancy that has a
//! job running under a live lease (claims take turns on an advisory lock for that check); heartbeats and finishes are fenced by the
//! lease's owner and attempt.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use webriskops_domain::{ProviderKey, TenantId};
use webriskops_ports::{
    Claim, JobEnd, JobKind, JobQueue, JobState, JobUploads, Lease, PortResult, QueueDepth,
};

use crate::accounts::{JOB_COLUMNS, JOB_COLUMN_COUNT};
use crate::PgStore;

/// The advisory lock claims take turns on ("wro-clai" as a number).
const CLAIM_LOCK: i64 = 0x7772_6f2d_636c_6169;

/// The advisory lock the schedule's ticks take turns on ("wro-sync" as a number).
const SCHEDULE_LOCK: i64 = 0x7772_6f2d_7379_6e63;

/// How long finished syncs are kept (at least an interval): the schedule reads the newest.
const KEEP_FINISHED_SYNCS: TimeDelta = TimeDelta::days(1);

/// The insert of a sync job that joins a waiting one: the partial unique index
/// `export_jobs_one_waiting_sync` (migration 6) refuses a second queued sync of a tenancy,
/// and `ON CONFLICT DO NOTHING` turns that into no row
/// (https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT).
const INSERT_SYNC: &str = "INSERT INTO export_jobs
       (id, tenant, provider_key, state, progress_json, input_path, created_at, fallback, kind)
     SELECT $1::text, $2::text, $3::text, 'queued', '{}', '', $4::timestamptz, 'auto', 'sync'";

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
impl JobQueue for PgStore {
    async fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> PortResult<Option<Claim>> {
        let until = lease_end(now, lease_for);
        // The CTE reads the row as it was (its state and holder) and locks it; the UPDATE
        // writes the lease. A job running without a lease (a process that does not use the
        // queue runs it) is never claimable.
        let job_columns: String = JOB_COLUMNS
            .split(", ")
            .map(|c| format!("j.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut client = self.control_client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg(e))?;
        // Claims take turns (a transaction-level advisory lock, released at commit), so
        // that the check for a running job of the same tenancy below sees every claim
        // committed before: two replicas never start two jobs of one tenancy at once.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CLAIM_LOCK])
            .await
            .map_err(|e| self.pg(e))?;
        let row = tx
            .query_opt(
                &format!(
                    "WITH picked AS (
                       SELECT id, state AS was_state, lease_owner AS was_owner
                       FROM export_jobs j
                       WHERE (state = 'queued'
                          OR (state = 'running' AND lease_until IS NOT NULL AND lease_until < $1))
                         AND NOT EXISTS (
                           SELECT 1 FROM export_jobs b
                           WHERE b.tenant = j.tenant AND b.provider_key = j.provider_key
                             AND b.id <> j.id AND b.state = 'running' AND b.lease_until >= $1)
                       ORDER BY created_at, id
                       LIMIT 1
                       FOR UPDATE SKIP LOCKED
                     )
                     UPDATE export_jobs j
                     SET state = 'running', lease_owner = $2, lease_until = $3,
                         attempts = j.attempts + 1
                     FROM picked WHERE j.id = picked.id
                     RETURNING {job_columns}, j.attempts, picked.was_state, picked.was_owner,
                       j.kind"
                ),
                &[&now, &owner, &until],
            )
            .await
            .map_err(|e| self.pg(e))?;
        tx.commit().await.map_err(|e| self.pg(e))?;
        let Some(r) = row else {
            return Ok(None);
        };
        let job = self.job_of(&r)?;
        let attempt: i64 = r.get(JOB_COLUMN_COUNT);
        let was_state: &str = r.get(JOB_COLUMN_COUNT + 1);
        let was_owner: Option<String> = r.get(JOB_COLUMN_COUNT + 2);
        let kind: &str = r.get(JOB_COLUMN_COUNT + 3);
        let kind = JobKind::parse(kind).ok_or_else(|| self.decode("job kind", kind))?;
        if was_state == JobState::Running.as_str() {
            tracing::info!(job = %job.id, tenant = %job.tenant, from = ?was_owner, to = owner,
                attempt, kind = kind.as_str(), "took over a job whose lease expired");
        }
        Ok(Some(Claim {
            lease: Lease {
                job_id: job.id.clone(),
                owner: owner.to_owned(),
                attempt,
                until,
            },
            job,
            kind,
            taken_over_from: was_owner.filter(|_| was_state == JobState::Running.as_str()),
        }))
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
        let client = self.control_client().await?;
        let n = client
            .execute(
                "UPDATE export_jobs SET lease_until = $4
                 WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND attempts = $3",
                &[&lease.job_id, &lease.owner, &lease.attempt, &renewed.until],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok((n == 1).then_some(renewed))
    }

    async fn finish(&self, lease: &Lease, end: &JobEnd) -> PortResult<bool> {
        let state = if end.succeeded {
            JobState::Done
        } else {
            JobState::Failed
        };
        let client = self.control_client().await?;
        let n = client
            .execute(
                "UPDATE export_jobs SET state = $4, progress_json = $5, summary_json = $6,
                   bundle_dir = $7, finished_at = $8, lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND attempts = $3",
                &[
                    &lease.job_id,
                    &lease.owner,
                    &lease.attempt,
                    &state.as_str(),
                    &end.progress_json,
                    &end.summary_json,
                    &end.bundle_dir,
                    &end.finished_at,
                ],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(n == 1)
    }

    async fn record_progress(&self, lease: &Lease, progress_json: &str) -> PortResult<bool> {
        let client = self.control_client().await?;
        let n = client
            .execute(
                "UPDATE export_jobs SET progress_json = $4
                 WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND attempts = $3",
                &[&lease.job_id, &lease.owner, &lease.attempt, &progress_json],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(n == 1)
    }

    async fn enqueue_sync(
        &self,
        id: &str,
        tenant: &TenantId,
        provider: ProviderKey,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        let client = self.control_client().await?;
        let n = client
            .execute(
                &format!("{INSERT_SYNC} ON CONFLICT DO NOTHING"),
                &[&id, &tenant.as_str(), &provider.as_str(), &now],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(n == 1)
    }

    async fn enqueue_sync_if_due(
        &self,
        id: &str,
        tenant: &TenantId,
        provider: ProviderKey,
        now: DateTime<Utc>,
        interval: Duration,
    ) -> PortResult<bool> {
        let since = before(now, interval);
        let keep_after = since.min(now - KEEP_FINISHED_SYNCS);
        let mut client = self.control_client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg(e))?;
        // Ticks take turns (a transaction-level advisory lock, released at commit): under
        // READ COMMITTED each statement sees what committed before it began
        // (https://www.postgresql.org/docs/current/transaction-iso.html#XACT-READ-COMMITTED),
        // so the check below sees the sync another replica's tick queued, even one that was
        // claimed at once and is no longer `queued` for the unique index to refuse.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEDULE_LOCK])
            .await
            .map_err(|e| self.pg(e))?;
        tx.execute(
            "DELETE FROM export_jobs
             WHERE kind = 'sync' AND tenant = $1 AND provider_key = $2
               AND state IN ('done', 'failed') AND created_at < $3",
            &[&tenant.as_str(), &provider.as_str(), &keep_after],
        )
        .await
        .map_err(|e| self.pg(e))?;
        let n = tx
            .execute(
                &format!(
                    "{INSERT_SYNC}
                     WHERE NOT EXISTS (
                       SELECT 1 FROM export_jobs
                       WHERE kind = 'sync' AND tenant = $2 AND provider_key = $3
                         AND (state = 'queued' OR created_at > $5))
                     ON CONFLICT DO NOTHING"
                ),
                &[&id, &tenant.as_str(), &provider.as_str(), &now, &since],
            )
            .await
            .map_err(|e| self.pg(e))?;
        tx.commit().await.map_err(|e| self.pg(e))?;
        Ok(n == 1)
    }

    async fn depth_of(&self, kind: JobKind) -> PortResult<QueueDepth> {
        let client = self.control_client().await?;
        let r = client
            .query_one(
                "SELECT count(*) FILTER (WHERE state = 'queued'),
                        count(*) FILTER (WHERE state = 'running'),
                        min(created_at) FILTER (WHERE state = 'queued')
                 FROM export_jobs WHERE kind = $1",
                &[&kind.as_str()],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(QueueDepth {
            queued: r.get::<_, i64>(0).max(0) as u64,
            running: r.get::<_, i64>(1).max(0) as u64,
            oldest_queued_at: r.get(2),
        })
    }
}

#[async_trait]
impl JobUploads for PgStore {
    async fn put_upload_chunk(&self, job_id: &str, seq: u32, bytes: &[u8]) -> PortResult<()> {
        let seq = i32::try_from(seq).map_err(|_| self.decode("upload chunk number", seq))?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO job_uploads (job_id, seq, bytes) VALUES ($1, $2, $3)
                 ON CONFLICT (job_id, seq) DO UPDATE SET bytes = excluded.bytes",
                &[&job_id, &seq, &bytes],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }

    async fn upload_chunk(&self, job_id: &str, seq: u32) -> PortResult<Option<Vec<u8>>> {
        let Ok(seq) = i32::try_from(seq) else {
            return Ok(None);
        };
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT bytes FROM job_uploads WHERE job_id = $1 AND seq = $2",
                &[&job_id, &seq],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn delete_upload(&self, job_id: &str) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM job_uploads WHERE job_id = $1", &[&job_id])
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }
}
