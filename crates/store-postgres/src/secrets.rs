//! `SecretStore`: tokens sealed by `webriskops_sealing` exactly as the SQLite store seals
//! them (ChaCha20-Poly1305 bound to reference and binding, the key id and origin beside).

use async_trait::async_trait;
use chrono::Utc;
use webriskops_domain::{CredentialRef, Token};
use webriskops_ports::{PortResult, SecretStore};
use webriskops_sealing::{seal, MasterKey, StoredSecret};

use crate::PgStore;

impl PgStore {
    /// The key to seal with. There is no key file: without a key, the error names the key
    /// that sealed the stored secrets, if any.
    pub(crate) async fn sealing_key(&self) -> PortResult<MasterKey> {
        if let Some(k) = &self.master_key {
            return Ok(k.clone());
        }
        let client = self.client().await?;
        let stored = client
            .query_opt(
                "SELECT key_id, key_origin FROM secrets ORDER BY created_at LIMIT 1",
                &[],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Err(match stored {
            Some(r) => webriskops_sealing::key_unavailable(None, r.get(0), r.get(1)),
            None => webriskops_sealing::no_master_key(None),
        })
    }
}

#[async_trait]
impl SecretStore for PgStore {
    async fn put_token(
        &self,
        reference: &CredentialRef,
        binding: &str,
        token: &Token,
    ) -> PortResult<()> {
        let key = self.sealing_key().await?;
        let sealed = seal(&key, &reference.0, binding, token)?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO secrets
                   (reference, nonce, ciphertext, binding, created_at, key_id, key_origin)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (reference) DO UPDATE SET nonce = excluded.nonce,
                   ciphertext = excluded.ciphertext, binding = excluded.binding,
                   created_at = excluded.created_at, key_id = excluded.key_id,
                   key_origin = excluded.key_origin",
                &[
                    &reference.0,
                    &sealed.nonce,
                    &sealed.ciphertext,
                    &binding,
                    &Utc::now(),
                    &sealed.key_id,
                    &sealed.key_origin,
                ],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }

    async fn get_token(
        &self,
        reference: &CredentialRef,
        binding: &str,
    ) -> PortResult<Option<Token>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT nonce, ciphertext, binding, key_id, key_origin
                 FROM secrets WHERE reference = $1",
                &[&reference.0],
            )
            .await
            .map_err(|e| self.pg(e))?;
        row.map(|r| {
            let stored = StoredSecret {
                nonce: r.get(0),
                ciphertext: r.get(1),
                binding: r.get(2),
                key_id: r.get(3),
                key_origin: r.get(4),
            };
            webriskops_sealing::open_stored(
                self.master_key.as_ref(),
                None,
                &reference.0,
                binding,
                &stored,
            )
        })
        .transpose()
    }

    async fn delete_token(&self, reference: &CredentialRef) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM secrets WHERE reference = $1", &[&reference.0])
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }

    /// One transaction: the row is locked and checked (present, same binding) and its
    /// sealed bytes overwritten together; a failure leaves the old secret.
    async fn replace_token(
        &self,
        reference: &CredentialRef,
        binding: &str,
        token: &Token,
    ) -> PortResult<()> {
        let key = self.sealing_key().await?;
        let sealed = seal(&key, &reference.0, binding, token)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg(e))?;
        let stored: Option<String> = tx
            .query_opt(
                "SELECT binding FROM secrets WHERE reference = $1 FOR UPDATE",
                &[&reference.0],
            )
            .await
            .map_err(|e| self.pg(e))?
            .map(|r| r.get(0));
        match stored {
            None => return Err(webriskops_sealing::replace_missing(&reference.0)),
            Some(b) if b != binding => {
                return Err(webriskops_sealing::replace_conflict(
                    &reference.0,
                    &b,
                    binding,
                ))
            }
            Some(_) => {}
        }
        tx.execute(
            "UPDATE secrets SET nonce = $2, ciphertext = $3, created_at = $4, key_id = $5,
               key_origin = $6
             WHERE reference = $1",
            &[
                &reference.0,
                &sealed.nonce,
                &sealed.ciphertext,
                &Utc::now(),
                &sealed.key_id,
                &sealed.key_origin,
            ],
        )
        .await
        .map_err(|e| self.pg(e))?;
        tx.commit().await.map_err(|e| self.pg(e))?;
        Ok(())
    }
}
