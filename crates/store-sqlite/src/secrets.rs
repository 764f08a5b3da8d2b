//! `SecretStore`: tokens sealed by `webriskops_sealing` (ChaCha20-Poly1305, bound to
//! reference and binding), with the key id and origin stored next to each.

use async_trait::async_trait;
use chrono::Utc;
use rusqlite::{params, OptionalExtension};
use webriskops_domain::{CredentialRef, Token};
use webriskops_ports::{PortResult, SecretStore};
use webriskops_sealing::{seal, StoredSecret};

use crate::error::StoreError;
use crate::{time_text, MasterKey, SqliteStore, KEY_FILE_NAME};

impl SqliteStore {
    /// The key in use, if any.
    pub(crate) fn current_key(&self) -> Option<MasterKey> {
        self.inner
            .master_key
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The key to seal with: the key in use, or a key file created now, only when no
    /// secret is stored (a new key could open none of them).
    pub(crate) async fn sealing_key(&self) -> PortResult<MasterKey> {
        if let Some(k) = self.current_key() {
            return Ok(k);
        }
        let Some(path) = self.inner.key_file.clone() else {
            return Err(webriskops_sealing::no_master_key(Some(
                &self.data_dir().join(KEY_FILE_NAME),
            )));
        };
        let stored = self
            .run(|conn, db| {
                conn.query_row(
                    "SELECT key_origin, key_id FROM secrets ORDER BY created_at LIMIT 1",
                    [],
                    |r| {
                        Ok((
                            r.get::<_, Option<String>>(0)?,
                            r.get::<_, Option<String>>(1)?,
                        ))
                    },
                )
                .optional()
                .map_err(|e| StoreError::sqlite(db, e))
            })
            .await?;
        if let Some((origin, id)) = stored {
            return Err(webriskops_sealing::key_unavailable(
                Some(&self.data_dir().join(KEY_FILE_NAME)),
                id.as_deref(),
                origin.as_deref(),
            ));
        }
        let mut slot = self
            .inner
            .master_key
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(k) = slot.as_ref() {
            return Ok(k.clone());
        }
        let key = MasterKey::load_or_create(&path)?;
        *slot = Some(key.clone());
        Ok(key)
    }
}

#[async_trait]
impl SecretStore for SqliteStore {
    async fn put_token(
        &self,
        reference: &CredentialRef,
        binding: &str,
        token: &Token,
    ) -> PortResult<()> {
        let key = self.sealing_key().await?;
        let reference = reference.0.clone();
        let binding = binding.to_owned();
        let sealed = seal(&key, &reference, &binding, token)?;
        self.run(move |conn, path| {
            conn.execute(
                "INSERT OR REPLACE INTO secrets
                   (reference, nonce, ciphertext, binding, created_at, key_id, key_origin)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    reference,
                    sealed.nonce,
                    sealed.ciphertext,
                    binding,
                    time_text(Utc::now()),
                    sealed.key_id,
                    sealed.key_origin
                ],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }

    async fn get_token(
        &self,
        reference: &CredentialRef,
        binding: &str,
    ) -> PortResult<Option<Token>> {
        let key = self.current_key();
        let key_file = self.data_dir().join(KEY_FILE_NAME);
        let wanted = reference.0.clone();
        let stored = self
            .run(move |conn, path| {
                conn.query_row(
                    "SELECT nonce, ciphertext, binding, key_id, key_origin
                     FROM secrets WHERE reference = ?1",
                    params![wanted],
                    |r| {
                        Ok(StoredSecret {
                            nonce: r.get(0)?,
                            ciphertext: r.get(1)?,
                            binding: r.get(2)?,
                            key_id: r.get(3)?,
                            key_origin: r.get(4)?,
                        })
                    },
                )
                .optional()
                .map_err(|e| StoreError::sqlite(path, e))
            })
            .await?;
        stored
            .map(|s| {
                webriskops_sealing::open_stored(
                    key.as_ref(),
                    Some(&key_file),
                    &reference.0,
                    binding,
                    &s,
                )
            })
            .transpose()
    }

    /// One transaction: the stored row is checked (present, same binding) and its sealed
    /// bytes overwritten together, so a crash leaves the old secret or the new one.
    async fn replace_token(
        &self,
        reference: &CredentialRef,
        binding: &str,
        token: &Token,
    ) -> PortResult<()> {
        let key = self.sealing_key().await?;
        let reference = reference.0.clone();
        let binding = binding.to_owned();
        let sealed = seal(&key, &reference, &binding, token)?;
        let outcome = self
            .run(move |conn, path| {
                let tx = conn
                    .transaction()
                    .map_err(|e| StoreError::sqlite(path, e))?;
                let stored: Option<String> = tx
                    .query_row(
                        "SELECT binding FROM secrets WHERE reference = ?1",
                        params![reference],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(|e| StoreError::sqlite(path, e))?;
                match stored {
                    None => return Ok(Err(webriskops_sealing::replace_missing(&reference))),
                    Some(b) if b != binding => {
                        return Ok(Err(webriskops_sealing::replace_conflict(
                            &reference, &b, &binding,
                        )))
                    }
                    Some(_) => {}
                }
                tx.execute(
                    "UPDATE secrets SET nonce = ?2, ciphertext = ?3, created_at = ?4,
                       key_id = ?5, key_origin = ?6
                     WHERE reference = ?1 AND binding = ?7",
                    params![
                        reference,
                        sealed.nonce,
                        sealed.ciphertext,
                        time_text(Utc::now()),
                        sealed.key_id,
                        sealed.key_origin,
                        binding
                    ],
                )
                .map_err(|e| StoreError::sqlite(path, e))?;
                tx.commit().map_err(|e| StoreError::sqlite(path, e))?;
                Ok(Ok(()))
            })
            .await?;
        outcome
    }

    async fn delete_token(&self, reference: &CredentialRef) -> PortResult<()> {
        let reference = reference.0.clone();
        self.run(move |conn, path| {
            conn.execute(
                "DELETE FROM secrets WHERE reference = ?1",
                params![reference],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }
}
