//! `Accounts`, `ExportJobs` and `EventLog`: what `webriskops serve` keeps for its tenants,
//! shared by every replica.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;
use webriskops_domain::{ProviderKey, Role, TenantId};
use webriskops_ports::{
    Accounts, EventChange, EventLog, ExportJob, ExportJobs, JobState, LoggedEvent,
    PendingAuthorization, PortResult, Principal, SignInFailures, UserRecord,
};

use crate::error::PgStoreError;
use crate::PgStore;

/// The two-key advisory lock space of the event log (the first key); the second is the
/// tenant's hash. Distinct from the migrations' one-key lock.
const EVENT_LOCK_SPACE: i32 = 0x7772_6f65; // "wroe"

impl PgStore {
    async fn put_user_once(
        &self,
        tenant: &TenantId,
        email: &str,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, PgStoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg(e))?;
        let owner: Option<(i64, String)> = tx
            .query_opt(
                "SELECT id, tenant FROM users WHERE lower(email) = lower($1) FOR UPDATE",
                &[&email],
            )
            .await
            .map_err(|e| self.pg(e))?
            .map(|r| (r.get(0), r.get(1)));
        match owner {
            Some((_, t)) if t != tenant.as_str() => return Ok(false),
            Some((id, _)) => {
                tx.execute(
                    "UPDATE users SET role = $2, password_hash = $3 WHERE id = $1",
                    &[&id, &role.as_str(), &password_hash],
                )
                .await
                .map_err(|e| self.pg(e))?;
                // A new password ends every session of the person.
                tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&id])
                    .await
                    .map_err(|e| self.pg(e))?;
            }
            None => {
                tx.execute(
                    "INSERT INTO users (tenant, email, role, password_hash, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &tenant.as_str(),
                        &email,
                        &role.as_str(),
                        &password_hash,
                        &now,
                    ],
                )
                .await
                .map_err(|e| self.pg(e))?;
            }
        }
        tx.commit().await.map_err(|e| self.pg(e))?;
        Ok(true)
    }
}

#[async_trait]
impl Accounts for PgStore {
    async fn add_tenant(&self, tenant: &TenantId, now: DateTime<Utc>) -> PortResult<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "INSERT INTO tenants (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&tenant.as_str(), &now],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(n == 1)
    }

    async fn tenant_exists(&self, tenant: &TenantId) -> PortResult<bool> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT 1 FROM tenants WHERE name = $1", &[&tenant.as_str()])
            .await
            .map_err(|e| self.pg(e))?;
        Ok(row.is_some())
    }

    async fn tenants(&self) -> PortResult<Vec<TenantId>> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT name FROM tenants ORDER BY name COLLATE \"C\"", &[])
            .await
            .map_err(|e| self.pg(e))?;
        Ok(rows
            .iter()
            .map(|r| self.tenant_of(r.get(0)))
            .collect::<Result<_, _>>()?)
    }

    /// One transaction holding the e-mail's row. For a new person the unique index on
    /// `lower(email)` decides between replicas adding the same e-mail at once: the one that
    /// loses tries again, and then finds the row the other wrote (updated if it is the same
    /// tenant's, `false` if another's), so one person results either way.
    async fn put_user(
        &self,
        tenant: &TenantId,
        email: &str,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        match self
            .put_user_once(tenant, email, role, password_hash, now)
            .await
        {
            Err(e) if e.is(&SqlState::UNIQUE_VIOLATION) => Ok(self
                .put_user_once(tenant, email, role, password_hash, now)
                .await?),
            other => Ok(other?),
        }
    }

    async fn user_by_email(&self, email: &str) -> PortResult<Option<UserRecord>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT id, tenant, email, role, password_hash FROM users
                 WHERE lower(email) = lower($1)",
                &[&email],
            )
            .await
            .map_err(|e| self.pg(e))?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(UserRecord {
            id: r.get(0),
            tenant: self.tenant_of(r.get(1))?,
            email: r.get(2),
            role: self.role_of(r.get(3))?,
            password_hash: r.get(4),
        }))
    }

    async fn add_api_token(
        &self,
        tenant: &TenantId,
        role: Role,
        digest: &str,
        now: DateTime<Utc>,
    ) -> PortResult<i64> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO api_tokens (tenant, role, digest, created_at)
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[&tenant.as_str(), &role.as_str(), &digest, &now],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(row.get(0))
    }

    async fn api_token(&self, digest: &str) -> PortResult<Option<Principal>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT id, tenant, role FROM api_tokens WHERE digest = $1",
                &[&digest],
            )
            .await
            .map_err(|e| self.pg(e))?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(Principal {
            tenant: self.tenant_of(r.get(1))?,
            role: self.role_of(r.get(2))?,
            subject: format!("api-token:{}", r.get::<_, i64>(0)),
        }))
    }

    async fn add_session(
        &self,
        digest: &str,
        user_id: i64,
        expires_at: DateTime<Utc>,
    ) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO sessions (digest, user_id, expires_at) VALUES ($1, $2, $3)",
                &[&digest, &user_id, &expires_at],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }

    async fn session(&self, digest: &str, now: DateTime<Utc>) -> PortResult<Option<Principal>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT s.expires_at, u.tenant, u.role, u.email
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.digest = $1",
                &[&digest],
            )
            .await
            .map_err(|e| self.pg(e))?;
        let Some(r) = row else {
            return Ok(None);
        };
        if r.get::<_, DateTime<Utc>>(0) <= now {
            client
                .execute("DELETE FROM sessions WHERE digest = $1", &[&digest])
                .await
                .map_err(|e| self.pg(e))?;
            return Ok(None);
        }
        Ok(Some(Principal {
            tenant: self.tenant_of(r.get(1))?,
            role: self.role_of(r.get(2))?,
            subject: r.get(3),
        }))
    }

    async fn end_session(&self, digest: &str) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM sessions WHERE digest = $1", &[&digest])
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }

    async fn hold_token_until(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        expires_at: DateTime<Utc>,
    ) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO held_tokens (tenant, provider_key, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant, provider_key) DO UPDATE SET expires_at = excluded.expires_at",
                &[&tenant.as_str(), &provider.as_str(), &expires_at],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }

    async fn held_until(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<DateTime<Utc>>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT expires_at FROM held_tokens WHERE tenant = $1 AND provider_key = $2",
                &[&tenant.as_str(), &provider.as_str()],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn release_held(&self, tenant: &TenantId, provider: ProviderKey) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM held_tokens WHERE tenant = $1 AND provider_key = $2",
                &[&tenant.as_str(), &provider.as_str()],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }

    async fn expired_holds(&self, now: DateTime<Utc>) -> PortResult<Vec<(TenantId, ProviderKey)>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT tenant, provider_key FROM held_tokens WHERE expires_at <= $1",
                &[&now],
            )
            .await
            .map_err(|e| self.pg(e))?;
        let mut out = Vec::new();
        for r in &rows {
            let provider = r
                .get::<_, &str>(1)
                .parse::<ProviderKey>()
                .map_err(|e| self.decode("provider key", e))?;
            out.push((self.tenant_of(r.get(0))?, provider));
        }
        Ok(out)
    }

    async fn put_pending_choices(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        choices_json: &str,
    ) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO pending_choices (tenant, provider_key, choices_json) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant, provider_key) DO UPDATE SET choices_json = excluded.choices_json",
                &[&tenant.as_str(), &provider.as_str(), &choices_json],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }

    async fn pending_choices(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<String>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT choices_json FROM pending_choices WHERE tenant = $1 AND provider_key = $2",
                &[&tenant.as_str(), &provider.as_str()],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn clear_pending_choices(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM pending_choices WHERE tenant = $1 AND provider_key = $2",
                &[&tenant.as_str(), &provider.as_str()],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }

    async fn put_authorization(&self, pending: &PendingAuthorization) -> PortResult<()> {
        self.put_authorization_pg(pending).await
    }

    async fn take_authorization(
        &self,
        digest: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Option<PendingAuthorization>> {
        self.take_authorization_pg(digest, now).await
    }

    async fn delete_expired_authorizations(&self, now: DateTime<Utc>) -> PortResult<u64> {
        let client = self.client().await?;
        Ok(client
            .execute("DELETE FROM authorizations WHERE expires_at <= $1", &[&now])
            .await
            .map_err(|e| self.pg(e))?)
    }

    async fn sign_in_failed(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: chrono::TimeDelta,
    ) -> PortResult<SignInFailures> {
        self.sign_in_failed_pg(key, now, window).await
    }

    async fn sign_in_failures(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: chrono::TimeDelta,
    ) -> PortResult<Option<SignInFailures>> {
        self.sign_in_failures_pg(key, now, window).await
    }

    async fn forget_sign_in_failures(&self, key: &str) -> PortResult<()> {
        self.forget_sign_in_failures_pg(key).await
    }
}

/// The columns of an export job, in the order [`PgStore::job_of`] reads them.
pub(crate) const JOB_COLUMNS: &str = "id, tenant, provider_key, state, progress_json, \
     summary_json, bundle_dir, input_path, created_at, finished_at, fallback";

/// How many columns [`JOB_COLUMNS`] names: what a query reads after them starts here.
pub(crate) const JOB_COLUMN_COUNT: usize = 11;

impl PgStore {
    /// An export job from a row of [`JOB_COLUMNS`] (the first [`JOB_COLUMN_COUNT`] columns).
    pub(crate) fn job_of(&self, r: &Row) -> Result<ExportJob, PgStoreError> {
        let state: &str = r.get(3);
        Ok(ExportJob {
            id: r.get(0),
            tenant: self.tenant_of(r.get(1))?,
            provider: r
                .get::<_, &str>(2)
                .parse::<ProviderKey>()
                .map_err(|e| self.decode("provider key", e))?,
            state: JobState::parse(state).ok_or_else(|| self.decode("job state", state))?,
            progress_json: r.get(4),
            summary_json: r.get(5),
            bundle_dir: r.get(6),
            input_path: r.get(7),
            created_at: r.get(8),
            finished_at: r.get(9),
            fallback: r.get(10),
        })
    }

    fn jobs_of(&self, rows: &[Row]) -> Result<Vec<ExportJob>, PgStoreError> {
        rows.iter().map(|r| self.job_of(r)).collect()
    }
}

#[async_trait]
impl ExportJobs for PgStore {
    async fn add_job(&self, job: &ExportJob) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute(
                &format!(
                    "INSERT INTO export_jobs ({JOB_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ),
                &[
                    &job.id,
                    &job.tenant.as_str(),
                    &job.provider.as_str(),
                    &job.state.as_str(),
                    &job.progress_json,
                    &job.summary_json,
                    &job.bundle_dir,
                    &job.input_path,
                    &job.created_at,
                    &job.finished_at,
                    &job.fallback,
                ],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }

    async fn update_job(&self, job: &ExportJob) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE export_jobs SET state = $3, progress_json = $4, summary_json = $5,
                   bundle_dir = $6, finished_at = $7
                 WHERE id = $1 AND tenant = $2 AND kind = 'export'",
                &[
                    &job.id,
                    &job.tenant.as_str(),
                    &job.state.as_str(),
                    &job.progress_json,
                    &job.summary_json,
                    &job.bundle_dir,
                    &job.finished_at,
                ],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }

    async fn job(&self, tenant: &TenantId, id: &str) -> PortResult<Option<ExportJob>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {JOB_COLUMNS} FROM export_jobs WHERE id = $1 AND tenant = $2 AND kind = 'export'"),
                &[&id, &tenant.as_str()],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(row.map(|r| self.job_of(&r)).transpose()?)
    }

    async fn jobs(&self, tenant: &TenantId, limit: usize) -> PortResult<Vec<ExportJob>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM export_jobs WHERE tenant = $1 AND kind = 'export'
                     ORDER BY created_at DESC, id COLLATE \"C\" LIMIT $2"
                ),
                &[&tenant.as_str(), &limit],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(self.jobs_of(&rows)?)
    }

    async fn unfinished_jobs(&self) -> PortResult<Vec<ExportJob>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM export_jobs WHERE state IN ('queued', 'running') AND kind = 'export'
                     ORDER BY created_at"
                ),
                &[],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(self.jobs_of(&rows)?)
    }
}

#[async_trait]
impl EventLog for PgStore {
    /// The cursor is the tenant's own number (`seq`: the tenant's highest plus one), never
    /// a sequence shared by tenants, whose gaps would count other tenants' events. The
    /// tenant's advisory lock is held from before the finding's last event is compared and
    /// the number drawn until the commit, so two replicas never draw the same number nor
    /// both append one repeated change, and one tenant's cursors become visible in order:
    /// a reader that has seen cursor `n` never later finds a smaller one of the tenant
    /// appear.
    async fn append_event(
        &self,
        tenant: &TenantId,
        change: &EventChange,
        event_json: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Option<i64>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg(e))?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&EVENT_LOCK_SPACE, &tenant.as_str()],
        )
        .await
        .map_err(|e| self.pg(e))?;
        let row = tx
            .query_opt(
                "INSERT INTO status_events
                     (tenant, seq, finding_id, item_id, previous, status, event_json, created_at)
                 SELECT $1::text,
                        (SELECT COALESCE(MAX(seq), 0) + 1 FROM status_events WHERE tenant = $1),
                        $2::text, $3::text, $4::text, $5::text, $6::text, $7::timestamptz
                 WHERE NOT EXISTS (
                     SELECT 1 FROM (SELECT item_id, previous, status FROM status_events
                                    WHERE tenant = $1 AND finding_id = $2
                                    ORDER BY seq DESC LIMIT 1) AS last
                     WHERE last.item_id = $3 AND last.previous = $4 AND last.status = $5)
                 RETURNING seq",
                &[
                    &tenant.as_str(),
                    &change.finding_id,
                    &change.item_id,
                    &change.previous.as_str(),
                    &change.status.as_str(),
                    &event_json,
                    &now,
                ],
            )
            .await
            .map_err(|e| self.pg(e))?;
        tx.commit().await.map_err(|e| self.pg(e))?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn latest_events(&self, tenant: &TenantId, limit: usize) -> PortResult<Vec<LoggedEvent>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT seq, event_json FROM status_events
                 WHERE tenant = $1 ORDER BY seq DESC LIMIT $2",
                &[&tenant.as_str(), &limit],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(rows
            .iter()
            .map(|r| LoggedEvent {
                cursor: r.get(0),
                event_json: r.get(1),
            })
            .collect())
    }

    async fn events_after(
        &self,
        tenant: &TenantId,
        cursor: i64,
        limit: usize,
    ) -> PortResult<Vec<LoggedEvent>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT seq, event_json FROM status_events
                 WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&tenant.as_str(), &cursor, &limit],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(rows
            .iter()
            .map(|r| LoggedEvent {
                cursor: r.get(0),
                event_json: r.get(1),
            })
            .collect())
    }
}
