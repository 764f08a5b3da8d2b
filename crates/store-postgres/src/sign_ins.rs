//! What the sign-in pages share between replicas: authorizations with a tracker in
//! progress (their secret sealed) and failed sign-ins counted per key.

use chrono::{DateTime, TimeDelta, Utc};
use tokio_postgres::Row;
use webriskops_domain::{ProviderKey, Token};
use webriskops_ports::{PendingAuthorization, PortResult, SignInFailures};
use webriskops_sealing::{seal, StoredSecret};

use crate::PgStore;

/// The sealing reference and binding of an authorization's secret: it opens only for the
/// row it was sealed for.
pub(crate) fn sealing_names(digest: &str, tenant: &str, provider: &str) -> (String, String) {
    (
        format!("authorization:{digest}"),
        format!("{tenant}/{provider}"),
    )
}

impl PgStore {
    pub(crate) async fn put_authorization_pg(&self, p: &PendingAuthorization) -> PortResult<()> {
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
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO authorizations (digest, tenant, provider_key, auth_method, nonce,
                   ciphertext, key_id, key_origin, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (digest) DO UPDATE SET tenant = excluded.tenant,
                   provider_key = excluded.provider_key, auth_method = excluded.auth_method,
                   nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                   key_id = excluded.key_id, key_origin = excluded.key_origin,
                   expires_at = excluded.expires_at",
                &[
                    &p.digest,
                    &p.tenant.as_str(),
                    &p.provider.as_str(),
                    &p.auth_method,
                    &sealed.as_ref().map(|s| s.nonce.clone()),
                    &sealed.as_ref().map(|s| s.ciphertext.clone()),
                    &sealed.as_ref().map(|s| s.key_id.clone()),
                    &sealed.as_ref().map(|s| s.key_origin),
                    &p.expires_at,
                ],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }

    /// Deletes the expired rows, then the row asked for, returning it: of two takers, the
    /// second finds nothing to delete.
    pub(crate) async fn take_authorization_pg(
        &self,
        digest: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Option<PendingAuthorization>> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM authorizations WHERE expires_at <= $1", &[&now])
            .await
            .map_err(|e| self.pg(e))?;
        let row = client
            .query_opt(
                "DELETE FROM authorizations WHERE digest = $1 AND expires_at > $2
                 RETURNING digest, tenant, provider_key, auth_method, nonce, ciphertext,
                   key_id, key_origin, expires_at",
                &[&digest, &now],
            )
            .await
            .map_err(|e| self.pg(e))?;
        row.map(|r| self.authorization_of(&r)).transpose()
    }

    fn authorization_of(&self, r: &Row) -> PortResult<PendingAuthorization> {
        let digest: String = r.get(0);
        let tenant: String = r.get(1);
        let provider: String = r.get(2);
        let nonce: Option<Vec<u8>> = r.get(4);
        let ciphertext: Option<Vec<u8>> = r.get(5);
        let (reference, binding) = sealing_names(&digest, &tenant, &provider);
        let secret: Option<Token> = match (nonce, ciphertext) {
            (Some(nonce), Some(ciphertext)) => Some(webriskops_sealing::open_stored(
                self.master_key.as_ref(),
                None,
                &reference,
                &binding,
                &StoredSecret {
                    nonce,
                    ciphertext,
                    binding: binding.clone(),
                    key_id: r.get(6),
                    key_origin: r.get(7),
                },
            )?),
            _ => None,
        };
        Ok(PendingAuthorization {
            digest,
            tenant: self.tenant_of(&tenant)?,
            provider: provider
                .parse::<ProviderKey>()
                .map_err(|e| self.decode("provider key", e))?,
            secret,
            auth_method: r.get(3),
            expires_at: r.get(8),
        })
    }

    /// One statement: a new key starts at 1, a key whose window has passed starts again,
    /// another counts one more; concurrent failures on any replicas each count.
    pub(crate) async fn sign_in_failed_pg(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> PortResult<SignInFailures> {
        let client = self.client().await?;
        let r = client
            .query_one(
                "INSERT INTO sign_in_failures AS f (key, failures, since) VALUES ($1, 1, $2)
                 ON CONFLICT (key) DO UPDATE SET
                   failures = CASE WHEN f.since <= $3 THEN 1 ELSE f.failures + 1 END,
                   since = CASE WHEN f.since <= $3 THEN excluded.since ELSE f.since END
                 RETURNING failures, since",
                &[&key, &now, &(now - window)],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(SignInFailures {
            count: u32::try_from(r.get::<_, i32>(0)).unwrap_or(0),
            since: r.get(1),
        })
    }

    pub(crate) async fn sign_in_failures_pg(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> PortResult<Option<SignInFailures>> {
        let client = self.client().await?;
        let r = client
            .query_opt(
                "SELECT failures, since FROM sign_in_failures WHERE key = $1 AND since > $2",
                &[&key, &(now - window)],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(r.map(|r| SignInFailures {
            count: u32::try_from(r.get::<_, i32>(0)).unwrap_or(0),
            since: r.get(1),
        }))
    }

    pub(crate) async fn forget_sign_in_failures_pg(&self, key: &str) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM sign_in_failures WHERE key = $1", &[&key])
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }
}
