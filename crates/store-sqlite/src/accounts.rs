//! `Accounts`, `ExportJobs` and `EventLog`: what `webriskops serve` keeps for its tenants.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};
use webriskops_domain::{ProviderKey, Role, TenantId};
use webriskops_ports::{
    Accounts, EventChange, EventLog, ExportJob, ExportJobs, JobState, LoggedEvent,
    PendingAuthorization, PortResult, Principal, SignInFailures, UserRecord,
};

use crate::error::StoreError;
use crate::{decode, parse_time, time_text, SqliteStore};

fn role_of(path: &std::path::Path, text: &str) -> Result<Role, StoreError> {
    Role::parse(text).map_err(|e| decode(path, "role", e))
}

fn tenant_of(path: &std::path::Path, text: &str) -> Result<TenantId, StoreError> {
    TenantId::new(text).map_err(|e| decode(path, "tenant", e))
}

#[async_trait]
impl Accounts for SqliteStore {
    async fn add_tenant(&self, tenant: &TenantId, now: DateTime<Utc>) -> PortResult<bool> {
        let tenant = tenant.as_str().to_owned();
        self.run(move |conn, path| {
            let n = conn
                .execute(
                    "INSERT INTO tenants (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![tenant, time_text(now)],
                )
                .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(n == 1)
        })
        .await
    }

    async fn tenant_exists(&self, tenant: &TenantId) -> PortResult<bool> {
        let tenant = tenant.as_str().to_owned();
        self.run(move |conn, path| {
            conn.query_row(
                "SELECT 1 FROM tenants WHERE name = ?1",
                params![tenant],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| StoreError::sqlite(path, e))
        })
        .await
    }

    async fn tenants(&self) -> PortResult<Vec<TenantId>> {
        self.run(move |conn, path| {
            let sql = |e| StoreError::sqlite(path, e);
            let mut stmt = conn
                .prepare("SELECT name FROM tenants ORDER BY name")
                .map_err(sql)?;
            let names: Vec<String> = stmt
                .query_map([], |r| r.get(0))
                .map_err(sql)?
                .collect::<Result<_, _>>()
                .map_err(sql)?;
            names.iter().map(|n| tenant_of(path, n)).collect()
        })
        .await
    }

    async fn put_user(
        &self,
        tenant: &TenantId,
        email: &str,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        let (tenant, email, hash) = (
            tenant.as_str().to_owned(),
            email.to_owned(),
            password_hash.to_owned(),
        );
        self.run(move |conn, path| {
            let sql = |e| StoreError::sqlite(path, e);
            let tx = conn.transaction().map_err(sql)?;
            let owner: Option<String> = tx
                .query_row(
                    "SELECT tenant FROM users WHERE email = ?1",
                    params![email],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)?;
            match owner {
                Some(t) if t != tenant => return Ok(false),
                Some(_) => {
                    tx.execute(
                        "UPDATE users SET role = ?2, password_hash = ?3 WHERE email = ?1",
                        params![email, role.as_str(), hash],
                    )
                    .map_err(sql)?;
                    // A new password ends every session of the person.
                    tx.execute(
                        "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE email = ?1)",
                        params![email],
                    )
                    .map_err(sql)?;
                }
                None => {
                    tx.execute(
                        "INSERT INTO users (tenant, email, role, password_hash, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![tenant, email, role.as_str(), hash, time_text(now)],
                    )
                    .map_err(sql)?;
                }
            }
            tx.commit().map_err(sql)?;
            Ok(true)
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> PortResult<Option<UserRecord>> {
        let email = email.to_owned();
        self.run(move |conn, path| {
            let row = conn
                .query_row(
                    "SELECT id, tenant, email, role, password_hash FROM users WHERE email = ?1",
                    params![email],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                        ))
                    },
                )
                .optional()
                .map_err(|e| StoreError::sqlite(path, e))?;
            row.map(|(id, tenant, email, role, password_hash)| {
                Ok(UserRecord {
                    id,
                    tenant: tenant_of(path, &tenant)?,
                    email,
                    role: role_of(path, &role)?,
                    password_hash,
                })
            })
            .transpose()
        })
        .await
    }

    async fn add_api_token(
        &self,
        tenant: &TenantId,
        role: Role,
        digest: &str,
        now: DateTime<Utc>,
    ) -> PortResult<i64> {
        let (tenant, digest) = (tenant.as_str().to_owned(), digest.to_owned());
        self.run(move |conn, path| {
            conn.execute(
                "INSERT INTO api_tokens (tenant, role, digest, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![tenant, role.as_str(), digest, time_text(now)],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    async fn api_token(&self, digest: &str) -> PortResult<Option<Principal>> {
        let digest = digest.to_owned();
        self.run(move |conn, path| {
            let row = conn
                .query_row(
                    "SELECT id, tenant, role FROM api_tokens WHERE digest = ?1",
                    params![digest],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(|e| StoreError::sqlite(path, e))?;
            row.map(|(id, tenant, role)| {
                Ok(Principal {
                    tenant: tenant_of(path, &tenant)?,
                    role: role_of(path, &role)?,
                    subject: format!("api-token:{id}"),
                })
            })
            .transpose()
        })
        .await
    }

    async fn add_session(
        &self,
        digest: &str,
        user_id: i64,
        expires_at: DateTime<Utc>,
    ) -> PortResult<()> {
        let digest = digest.to_owned();
        self.run(move |conn, path| {
            conn.execute(
                "INSERT INTO sessions (digest, user_id, expires_at) VALUES (?1, ?2, ?3)",
                params![digest, user_id, time_text(expires_at)],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }

    async fn session(&self, digest: &str, now: DateTime<Utc>) -> PortResult<Option<Principal>> {
        let digest = digest.to_owned();
        self.run(move |conn, path| {
            let sql = |e| StoreError::sqlite(path, e);
            let row = conn
                .query_row(
                    "SELECT s.expires_at, u.tenant, u.role, u.email
                     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.digest = ?1",
                    params![digest],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    },
                )
                .optional()
                .map_err(sql)?;
            let Some((expires, tenant, role, email)) = row else {
                return Ok(None);
            };
            if parse_time(path, "session expiry", &expires)? <= now {
                conn.execute("DELETE FROM sessions WHERE digest = ?1", params![digest])
                    .map_err(sql)?;
                return Ok(None);
            }
            Ok(Some(Principal {
                tenant: tenant_of(path, &tenant)?,
                role: role_of(path, &role)?,
                subject: email,
            }))
        })
        .await
    }

    async fn end_session(&self, digest: &str) -> PortResult<()> {
        let digest = digest.to_owned();
        self.run(move |conn, path| {
            conn.execute("DELETE FROM sessions WHERE digest = ?1", params![digest])
                .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }

    async fn hold_token_until(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        expires_at: DateTime<Utc>,
    ) -> PortResult<()> {
        let tenant = tenant.as_str().to_owned();
        self.run(move |conn, path| {
            conn.execute(
                "INSERT INTO held_tokens (tenant, provider_key, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant, provider_key) DO UPDATE SET expires_at = excluded.expires_at",
                params![tenant, provider.as_str(), time_text(expires_at)],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }

    async fn held_until(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<DateTime<Utc>>> {
        let tenant = tenant.as_str().to_owned();
        self.run(move |conn, path| {
            let t: Option<String> = conn
                .query_row(
                    "SELECT expires_at FROM held_tokens WHERE tenant = ?1 AND provider_key = ?2",
                    params![tenant, provider.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| StoreError::sqlite(path, e))?;
            t.map(|t| parse_time(path, "held token expiry", &t))
                .transpose()
        })
        .await
    }

    async fn release_held(&self, tenant: &TenantId, provider: ProviderKey) -> PortResult<()> {
        let tenant = tenant.as_str().to_owned();
        self.run(move |conn, path| {
            conn.execute(
                "DELETE FROM held_tokens WHERE tenant = ?1 AND provider_key = ?2",
                params![tenant, provider.as_str()],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }

    async fn expired_holds(&self, now: DateTime<Utc>) -> PortResult<Vec<(TenantId, ProviderKey)>> {
        self.run(move |conn, path| {
            let mut stmt = conn
                .prepare("SELECT tenant, provider_key, expires_at FROM held_tokens")
                .map_err(|e| StoreError::sqlite(path, e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(|e| StoreError::sqlite(path, e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::sqlite(path, e))?;
            let mut out = Vec::new();
            for (tenant, provider, until) in rows {
                if parse_time(path, "held token expiry", &until)? > now {
                    continue;
                }
                let provider = provider
                    .parse::<ProviderKey>()
                    .map_err(|e| decode(path, "provider key", e))?;
                out.push((tenant_of(path, &tenant)?, provider));
            }
            Ok(out)
        })
        .await
    }

    async fn put_pending_choices(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        choices_json: &str,
    ) -> PortResult<()> {
        let (tenant, json) = (tenant.as_str().to_owned(), choices_json.to_owned());
        self.run(move |conn, path| {
            conn.execute(
                "INSERT INTO pending_choices (tenant, provider_key, choices_json) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant, provider_key) DO UPDATE SET choices_json = excluded.choices_json",
                params![tenant, provider.as_str(), json],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }

    async fn pending_choices(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<String>> {
        let tenant = tenant.as_str().to_owned();
        self.run(move |conn, path| {
            conn.query_row(
                "SELECT choices_json FROM pending_choices WHERE tenant = ?1 AND provider_key = ?2",
                params![tenant, provider.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| StoreError::sqlite(path, e))
        })
        .await
    }

    async fn clear_pending_choices(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<()> {
        let tenant = tenant.as_str().to_owned();
        self.run(move |conn, path| {
            conn.execute(
                "DELETE FROM pending_choices WHERE tenant = ?1 AND provider_key = ?2",
                params![tenant, provider.as_str()],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }

    async fn put_authorization(&self, pending: &PendingAuthorization) -> PortResult<()> {
        self.put_authorization_sqlite(pending).await
    }

    async fn take_authorization(
        &self,
        digest: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Option<PendingAuthorization>> {
        self.take_authorization_sqlite(digest, now).await
    }

    async fn delete_expired_authorizations(&self, now: DateTime<Utc>) -> PortResult<u64> {
        self.run(move |conn, path| {
            // Times are stored as RFC 3339 in UTC with nanoseconds (`time_text`): their
            // text order is their time order.
            let n = conn
                .execute(
                    "DELETE FROM authorizations WHERE expires_at <= ?1",
                    params![time_text(now)],
                )
                .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(n as u64)
        })
        .await
    }

    async fn sign_in_failed(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: chrono::TimeDelta,
    ) -> PortResult<SignInFailures> {
        self.sign_in_failed_sqlite(key, now, window).await
    }

    async fn sign_in_failures(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: chrono::TimeDelta,
    ) -> PortResult<Option<SignInFailures>> {
        self.sign_in_failures_sqlite(key, now, window).await
    }

    async fn forget_sign_in_failures(&self, key: &str) -> PortResult<()> {
        self.forget_sign_in_failures_sqlite(key).await
    }
}

pub(crate) const JOB_COLUMNS: &str =
    "id, tenant, provider_key, state, progress_json, summary_json, \
                                      bundle_dir, input_path, created_at, finished_at, fallback";

fn job_of(path: &std::path::Path, r: &Row<'_>) -> rusqlite::Result<Result<ExportJob, StoreError>> {
    let (id, tenant, provider, state): (String, String, String, String) =
        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
    let (progress_json, summary_json, bundle_dir, input_path): (
        String,
        Option<String>,
        Option<String>,
        String,
    ) = (r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?);
    let (created, finished, fallback): (String, Option<String>, String) =
        (r.get(8)?, r.get(9)?, r.get(10)?);
    Ok((|| {
        Ok(ExportJob {
            id,
            tenant: tenant_of(path, &tenant)?,
            provider: provider
                .parse::<ProviderKey>()
                .map_err(|e| decode(path, "provider key", e))?,
            state: JobState::parse(&state).ok_or_else(|| decode(path, "job state", &state))?,
            progress_json,
            summary_json,
            bundle_dir,
            input_path,
            fallback,
            created_at: parse_time(path, "job creation", &created)?,
            finished_at: finished
                .map(|f| parse_time(path, "job finish", &f))
                .transpose()?,
        })
    })())
}

pub(crate) fn query_jobs(
    conn: &rusqlite::Connection,
    path: &std::path::Path,
    sql_text: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<ExportJob>, StoreError> {
    let sql = |e| StoreError::sqlite(path, e);
    let mut stmt = conn.prepare(sql_text).map_err(sql)?;
    let rows = stmt
        .query_map(args, |r| job_of(path, r))
        .map_err(sql)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql)?;
    rows.into_iter().collect()
}

#[async_trait]
impl ExportJobs for SqliteStore {
    async fn add_job(&self, job: &ExportJob) -> PortResult<()> {
        let j = job.clone();
        self.run(move |conn, path| {
            conn.execute(
                &format!("INSERT INTO export_jobs ({JOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
                params![
                    j.id,
                    j.tenant.as_str(),
                    j.provider.as_str(),
                    j.state.as_str(),
                    j.progress_json,
                    j.summary_json,
                    j.bundle_dir,
                    j.input_path,
                    time_text(j.created_at),
                    j.finished_at.map(time_text),
                    j.fallback
                ],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }

    async fn update_job(&self, job: &ExportJob) -> PortResult<()> {
        let j = job.clone();
        self.run(move |conn, path| {
            conn.execute(
                "UPDATE export_jobs SET state = ?3, progress_json = ?4, summary_json = ?5,
                 bundle_dir = ?6, finished_at = ?7 WHERE id = ?1 AND tenant = ?2",
                params![
                    j.id,
                    j.tenant.as_str(),
                    j.state.as_str(),
                    j.progress_json,
                    j.summary_json,
                    j.bundle_dir,
                    j.finished_at.map(time_text)
                ],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }

    async fn job(&self, tenant: &TenantId, id: &str) -> PortResult<Option<ExportJob>> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        self.run(move |conn, path| {
            let mut jobs = query_jobs(
                conn,
                path,
                &format!("SELECT {JOB_COLUMNS} FROM export_jobs WHERE id = ?1 AND tenant = ?2 AND kind = 'export'"),
                &[&id, &tenant],
            )?;
            Ok(jobs.pop())
        })
        .await
    }

    async fn jobs(&self, tenant: &TenantId, limit: usize) -> PortResult<Vec<ExportJob>> {
        let tenant = tenant.as_str().to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |conn, path| {
            query_jobs(
                conn,
                path,
                &format!(
                    "SELECT {JOB_COLUMNS} FROM export_jobs WHERE tenant = ?1 AND kind = 'export'
                     ORDER BY created_at DESC, id LIMIT ?2"
                ),
                &[&tenant, &limit],
            )
        })
        .await
    }

    async fn unfinished_jobs(&self) -> PortResult<Vec<ExportJob>> {
        self.run(move |conn, path| {
            query_jobs(
                conn,
                path,
                &format!(
                    "SELECT {JOB_COLUMNS} FROM export_jobs WHERE state IN ('queued', 'running') AND kind = 'export'
                     ORDER BY created_at"
                ),
                &[],
            )
        })
        .await
    }
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn append_event(
        &self,
        tenant: &TenantId,
        change: &EventChange,
        event_json: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Option<i64>> {
        let (tenant, json) = (tenant.as_str().to_owned(), event_json.to_owned());
        let change = change.clone();
        self.run(move |conn, path| {
            // One statement: SQLite's single writer compares the finding's last event,
            // draws the tenant's next number and writes it at once, so the tenant's
            // numbers are 1, 2, 3… without gaps and a repeat is never written.
            conn.query_row(
                "INSERT INTO status_events
                     (tenant, seq, finding_id, item_id, previous, status, event_json, created_at)
                 SELECT ?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM status_events WHERE tenant = ?1),
                        ?2, ?3, ?4, ?5, ?6, ?7
                 WHERE NOT EXISTS (
                     SELECT 1 FROM (SELECT item_id, previous, status FROM status_events
                                    WHERE tenant = ?1 AND finding_id = ?2
                                    ORDER BY seq DESC LIMIT 1) AS last
                     WHERE last.item_id = ?3 AND last.previous = ?4 AND last.status = ?5)
                 RETURNING seq",
                params![
                    tenant,
                    change.finding_id,
                    change.item_id,
                    change.previous.as_str(),
                    change.status.as_str(),
                    json,
                    time_text(now)
                ],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| StoreError::sqlite(path, e))
        })
        .await
    }

    async fn latest_events(&self, tenant: &TenantId, limit: usize) -> PortResult<Vec<LoggedEvent>> {
        let tenant = tenant.as_str().to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |conn, path| {
            let sql = |e| StoreError::sqlite(path, e);
            let mut stmt = conn
                .prepare(
                    "SELECT seq, event_json FROM status_events
                     WHERE tenant = ?1 ORDER BY seq DESC LIMIT ?2",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![tenant, limit], |r| {
                    Ok(LoggedEvent {
                        cursor: r.get(0)?,
                        event_json: r.get(1)?,
                    })
                })
                .map_err(sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql)?;
            Ok(rows)
        })
        .await
    }

    async fn events_after(
        &self,
        tenant: &TenantId,
        cursor: i64,
        limit: usize,
    ) -> PortResult<Vec<LoggedEvent>> {
        let tenant = tenant.as_str().to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |conn, path| {
            let sql = |e| StoreError::sqlite(path, e);
            let mut stmt = conn
                .prepare(
                    "SELECT seq, event_json FROM status_events
                     WHERE tenant = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![tenant, cursor, limit], |r| {
                    Ok(LoggedEvent {
                        cursor: r.get(0)?,
                        event_json: r.get(1)?,
                    })
                })
                .map_err(sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql)?;
            Ok(rows)
        })
        .await
    }
}

const HOOK_COLUMNS: &str = "opaque_id, tenant, provider_key, webhook_id, callback_url, scope_id, \
                            created_at, last_delivery_at, deliveries, rejected";

fn hook_of_row(
    path: &std::path::Path,
    r: &Row<'_>,
) -> rusqlite::Result<Result<webriskops_ports::HookRecord, StoreError>> {
    let (opaque_id, tenant, provider, webhook_id, callback_url, scope_id): (
        String,
        String,
        String,
        String,
        String,
        String,
    ) = (
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    );
    let (created, last, deliveries, rejected): (String, Option<String>, i64, i64) =
        (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?);
    Ok((|| {
        Ok(webriskops_ports::HookRecord {
            opaque_id,
            tenant: tenant_of(path, &tenant)?,
            provider: provider
                .parse::<ProviderKey>()
                .map_err(|e| decode(path, "provider key", e))?,
            webhook_id,
            callback_url,
            scope_id,
            created_at: parse_time(path, "webhook creation", &created)?,
            last_delivery_at: last
                .map(|t| parse_time(path, "webhook delivery", &t))
                .transpose()?,
            deliveries,
            rejected,
        })
    })())
}

fn query_hook(
    conn: &rusqlite::Connection,
    path: &std::path::Path,
    where_clause: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Option<webriskops_ports::HookRecord>, StoreError> {
    let sql = |e| StoreError::sqlite(path, e);
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {HOOK_COLUMNS} FROM webhooks WHERE {where_clause}"
        ))
        .map_err(sql)?;
    let mut rows = stmt
        .query_map(args, |r| hook_of_row(path, r))
        .map_err(sql)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql)?;
    rows.pop().transpose()
}

#[async_trait]
impl webriskops_ports::WebhookRegistry for SqliteStore {
    async fn put_hook(&self, hook: &webriskops_ports::HookRecord) -> PortResult<()> {
        let h = hook.clone();
        self.run(move |conn, path| {
            let sql = |e| StoreError::sqlite(path, e);
            let tx = conn.transaction().map_err(sql)?;
            tx.execute(
                "DELETE FROM webhooks WHERE tenant = ?1 AND provider_key = ?2",
                params![h.tenant.as_str(), h.provider.as_str()],
            )
            .map_err(sql)?;
            tx.execute(
                &format!(
                    "INSERT INTO webhooks ({HOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                params![
                    h.opaque_id,
                    h.tenant.as_str(),
                    h.provider.as_str(),
                    h.webhook_id,
                    h.callback_url,
                    h.scope_id,
                    time_text(h.created_at),
                    h.last_delivery_at.map(time_text),
                    h.deliveries,
                    h.rejected
                ],
            )
            .map_err(sql)?;
            tx.commit().map_err(sql)
        })
        .await
    }

    async fn hook(&self, opaque_id: &str) -> PortResult<Option<webriskops_ports::HookRecord>> {
        let id = opaque_id.to_owned();
        self.run(move |conn, path| query_hook(conn, path, "opaque_id = ?1", &[&id]))
            .await
    }

    async fn hook_of(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<webriskops_ports::HookRecord>> {
        let (t, p) = (tenant.as_str().to_owned(), provider.as_str().to_owned());
        self.run(move |conn, path| {
            query_hook(conn, path, "tenant = ?1 AND provider_key = ?2", &[&t, &p])
        })
        .await
    }

    async fn delete_hook(&self, tenant: &TenantId, provider: ProviderKey) -> PortResult<()> {
        let (t, p) = (tenant.as_str().to_owned(), provider.as_str().to_owned());
        self.run(move |conn, path| {
            conn.execute(
                "DELETE FROM webhooks WHERE tenant = ?1 AND provider_key = ?2",
                params![t, p],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }

    async fn record_delivery(
        &self,
        opaque_id: &str,
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        let (o, d) = (opaque_id.to_owned(), delivery_id.to_owned());
        self.run(move |conn, path| {
            let sql = |e| StoreError::sqlite(path, e);
            let tx = conn.transaction().map_err(sql)?;
            let fresh = tx
                .execute(
                    "INSERT INTO webhook_deliveries (opaque_id, delivery_id, received_at)
                     VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    params![o, d, time_text(now)],
                )
                .map_err(sql)?
                == 1;
            if fresh {
                tx.execute(
                    "UPDATE webhooks SET deliveries = deliveries + 1, last_delivery_at = ?2
                     WHERE opaque_id = ?1",
                    params![o, time_text(now)],
                )
                .map_err(sql)?;
            }
            tx.commit().map_err(sql)?;
            Ok(fresh)
        })
        .await
    }

    async fn record_rejection(&self, opaque_id: &str) -> PortResult<()> {
        let o = opaque_id.to_owned();
        self.run(move |conn, path| {
            conn.execute(
                "UPDATE webhooks SET rejected = rejected + 1 WHERE opaque_id = ?1",
                params![o],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }
}
