//! Authorizations with a tracker in progress (their secret sealed) and failed sign-ins
//! counted per key: the same tables and meaning as the PostgreSQL store's.

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{params, OptionalExtension};
use webriskops_domain::{ProviderKey, Token};
use webriskops_ports::{PendingAuthorization, PortResult, SignInFailures};
use webriskops_sealing::{seal, StoredSecret};

use crate::error::StoreError;
use crate::{decode, parse_time, time_text, SqliteStore, KEY_FILE_NAME};

/// The sealing reference and binding of an authorization's secret, as PostgreSQL's.
fn sealing_names(digest: &str, tenant: &str, provider: &str) -> (String, String) {
    (
        format!("authorization:{digest}"),
        format!("{tenant}/{provider}"),
    )
}

/// A row as read, before its secret is opened.
struct Row {
    digest: String,
    tenant: String,
    provider: String,
    auth_method: Option<String>,
    nonce: Option<Vec<u8>>,
    ciphertext: Option<Vec<u8>>,
    key_id: Option<String>,
    key_origin: Option<String>,
    expires_at: String,
}

impl SqliteStore {
    pub(crate) async fn put_authorization_sqlite(
        &self,
        p: &PendingAuthorization,
    ) -> PortResult<()> {
        let (reference, binding) = sealing_names(&p.digest, p.tenant.as_str(), p.provider.as_str());
        let sealed = match &p.secret {
            Some(secret) => Some(seal(
                &self.sealing_key().await?,
                &reference,
                &binding,
                secret,
            )?),
            None => None,
        };
        let p = p.clone();
        self.run(move |conn, path| {
            conn.execute(
                "INSERT OR REPLACE INTO authorizations (digest, tenant, provider_key,
                   auth_method, nonce, ciphertext, key_id, key_origin, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    p.digest,
                    p.tenant.as_str(),
                    p.provider.as_str(),
                    p.auth_method,
                    sealed.as_ref().map(|s| s.nonce.clone()),
                    sealed.as_ref().map(|s| s.ciphertext.clone()),
                    sealed.as_ref().map(|s| s.key_id.clone()),
                    sealed.as_ref().map(|s| s.key_origin),
                    time_text(p.expires_at),
                ],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }

    /// One transaction: the row is read and deleted, and so is every expired one.
    pub(crate) async fn take_authorization_sqlite(
        &self,
        digest: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Option<PendingAuthorization>> {
        let digest = digest.to_owned();
        let taken = self
            .run(move |conn, path| {
                let sql = |e| StoreError::sqlite(path, e);
                let tx = conn.transaction().map_err(sql)?;
                let row = tx
                    .query_row(
                        "SELECT digest, tenant, provider_key, auth_method, nonce, ciphertext,
                           key_id, key_origin, expires_at
                         FROM authorizations WHERE digest = ?1",
                        params![digest],
                        |r| {
                            Ok(Row {
                                digest: r.get(0)?,
                                tenant: r.get(1)?,
                                provider: r.get(2)?,
                                auth_method: r.get(3)?,
                                nonce: r.get(4)?,
                                ciphertext: r.get(5)?,
                                key_id: r.get(6)?,
                                key_origin: r.get(7)?,
                                expires_at: r.get(8)?,
                            })
                        },
                    )
                    .optional()
                    .map_err(sql)?;
                tx.execute(
                    "DELETE FROM authorizations WHERE digest = ?1",
                    params![digest],
                )
                .map_err(sql)?;
                // Times are stored as RFC 3339 in UTC with nanoseconds (`time_text`): their
                // text order is their time order.
                tx.execute(
                    "DELETE FROM authorizations WHERE expires_at <= ?1",
                    params![time_text(now)],
                )
                .map_err(sql)?;
                tx.commit().map_err(sql)?;
                let Some(row) = row else { return Ok(None) };
                let expires_at = parse_time(path, "authorization expiry", &row.expires_at)?;
                if expires_at <= now {
                    return Ok(None);
                }
                let tenant = webriskops_domain::TenantId::new(&row.tenant)
                    .map_err(|e| decode(path, "tenant", e))?;
                let provider = row
                    .provider
                    .parse::<ProviderKey>()
                    .map_err(|e| decode(path, "provider key", e))?;
                Ok(Some((row, tenant, provider, expires_at)))
            })
            .await?;
        let Some((row, tenant, provider, expires_at)) = taken else {
            return Ok(None);
        };
        let (reference, binding) = sealing_names(&row.digest, &row.tenant, &row.provider);
        let secret: Option<Token> = match (row.nonce, row.ciphertext) {
            (Some(nonce), Some(ciphertext)) => Some(webriskops_sealing::open_stored(
                self.current_key().as_ref(),
                Some(&self.data_dir().join(KEY_FILE_NAME)),
                &reference,
                &binding,
                &StoredSecret {
                    nonce,
                    ciphertext,
                    binding: binding.clone(),
                    key_id: row.key_id,
                    key_origin: row.key_origin,
                },
            )?),
            _ => None,
        };
        Ok(Some(PendingAuthorization {
            digest: row.digest,
            tenant,
            provider,
            secret,
            auth_method: row.auth_method,
            expires_at,
        }))
    }

    /// One transaction: read, start again or count one more, write.
    pub(crate) async fn sign_in_failed_sqlite(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> PortResult<SignInFailures> {
        let key = key.to_owned();
        self.run(move |conn, path| {
            let sql = |e| StoreError::sqlite(path, e);
            let tx = conn.transaction().map_err(sql)?;
            let found: Option<(u32, String)> = tx
                .query_row(
                    "SELECT failures, since FROM sign_in_failures WHERE key = ?1",
                    params![key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(sql)?;
            let counted = match found {
                Some((n, since)) => {
                    let since = parse_time(path, "sign-in failures start", &since)?;
                    if since > now - window {
                        SignInFailures {
                            count: n + 1,
                            since,
                        }
                    } else {
                        SignInFailures {
                            count: 1,
                            since: now,
                        }
                    }
                }
                None => SignInFailures {
                    count: 1,
                    since: now,
                },
            };
            tx.execute(
                "INSERT OR REPLACE INTO sign_in_failures (key, failures, since)
                 VALUES (?1, ?2, ?3)",
                params![key, counted.count, time_text(counted.since)],
            )
            .map_err(sql)?;
            tx.commit().map_err(sql)?;
            Ok(counted)
        })
        .await
    }

    pub(crate) async fn sign_in_failures_sqlite(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> PortResult<Option<SignInFailures>> {
        let key = key.to_owned();
        self.run(move |conn, path| {
            let found: Option<(u32, String)> = conn
                .query_row(
                    "SELECT failures, since FROM sign_in_failures WHERE key = ?1",
                    params![key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(|e| StoreError::sqlite(path, e))?;
            let Some((count, since)) = found else {
                return Ok(None);
            };
            let since = parse_time(path, "sign-in failures start", &since)?;
            Ok((since > now - window).then_some(SignInFailures { count, since }))
        })
        .await
    }

    pub(crate) async fn forget_sign_in_failures_sqlite(&self, key: &str) -> PortResult<()> {
        let key = key.to_owned();
        self.run(move |conn, path| {
            conn.execute("DELETE FROM sign_in_failures WHERE key = ?1", params![key])
                .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }
}
