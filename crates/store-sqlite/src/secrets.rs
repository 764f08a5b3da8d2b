//! `SecretStore`: tokens sealed with ChaCha20-Poly1305, bound to their reference and binding
//! (which names the tenant, the provider and the API root the token may be sent to), each
//! row naming the key that sealed it (key id and origin).

use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use chrono::Utc;
use rand::RngCore;
use rusqlite::{params, OptionalExtension};
use webriskops_domain::{CredentialRef, Token};
use webriskops_ports::{PortError, PortResult, SecretStore};

use crate::error::StoreError;
use crate::key::KeyOrigin;
use crate::{time_text, MasterKey, SqliteStore, KEY_FILE_NAME, MASTER_KEY_ENV};

/// Version tag of the sealing scheme, part of the associated data.
const SCHEME: &[u8] = b"webriskops-secret-v1";

/// The associated data: scheme, reference and binding, each length-prefixed so that no
/// two different (reference, binding) pairs produce the same bytes. The binding
/// (`webriskops_service::secret_binding`) carries the API root the record was saved for,
/// so a token sealed for one root never opens for another, even if the record is edited.
fn associated_data(reference: &str, binding: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SCHEME.len() + reference.len() + binding.len() + 8);
    aad.extend_from_slice(SCHEME);
    for part in [reference, binding] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

fn cipher(key: &MasterKey) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(Key::from_slice(key.bytes()))
}

fn undecryptable(reference: &str) -> StoreError {
    StoreError::Crypto {
        message: format!(
            "stored token {reference} cannot be decrypted: wrong master key or tampered data; \
             set WEBRISKOPS_MASTER_KEY to the key used at setup, or run setup again"
        ),
    }
}

/// Seals `token` for `reference` and `binding`; returns (nonce, ciphertext).
fn seal(
    key: &MasterKey,
    reference: &str,
    binding: &str,
    token: &Token,
) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let aad = associated_data(reference, binding);
    let ciphertext = cipher(key)
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: token.expose().as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| StoreError::Crypto {
            message: format!("cannot encrypt token {reference}; run setup again"),
        })?;
    Ok((nonce.to_vec(), ciphertext))
}

/// Opens a sealed token; any mismatch of key, reference, binding or bytes fails.
fn open(
    key: &MasterKey,
    reference: &str,
    binding: &str,
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<Token, StoreError> {
    if nonce.len() != 12 {
        return Err(undecryptable(reference));
    }
    let aad = associated_data(reference, binding);
    let plain = cipher(key)
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| undecryptable(reference))?;
    let text = String::from_utf8(plain).map_err(|_| undecryptable(reference))?;
    Token::new(text).map_err(|_| undecryptable(reference))
}

/// How a key is described in messages: where it came from and its id.
fn describe_key(origin: Option<KeyOrigin>, id: Option<&str>, data_dir: &std::path::Path) -> String {
    let from = match origin {
        Some(KeyOrigin::Env) => format!("the key in {MASTER_KEY_ENV}"),
        Some(KeyOrigin::File) => format!("the key file {}", data_dir.join(KEY_FILE_NAME).display()),
        Some(KeyOrigin::Given) => "a key given by the embedding program".to_owned(),
        None => "a master key saved before key ids were recorded".to_owned(),
    };
    match id {
        Some(id) => format!("{from} (key id {id})"),
        None => from,
    }
}

/// How to provide the key a secret was sealed with.
fn provide_fix(origin: Option<KeyOrigin>, data_dir: &std::path::Path) -> String {
    let file = data_dir.join(KEY_FILE_NAME);
    match origin {
        Some(KeyOrigin::Env) => {
            format!("set {MASTER_KEY_ENV} to the key used at setup and run again")
        }
        Some(KeyOrigin::File) => format!(
            "restore {} from a backup (and unset {MASTER_KEY_ENV} if it is set) and run again",
            file.display()
        ),
        _ => format!(
            "set {MASTER_KEY_ENV} to the key used at setup, or restore {}, and run again",
            file.display()
        ),
    }
}

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
    async fn sealing_key(&self) -> PortResult<MasterKey> {
        if let Some(k) = self.current_key() {
            return Ok(k);
        }
        let Some(path) = self.inner.key_file.clone() else {
            return Err(StoreError::NoMasterKey.into());
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
            let origin = origin.as_deref().and_then(KeyOrigin::parse);
            return Err(StoreError::KeyUnavailable {
                message: format!(
                    "no master key is available, and the stored secrets were sealed with {}; \
                     a new key could open none of them, so none was created: {}",
                    describe_key(origin, id.as_deref(), self.data_dir()),
                    provide_fix(origin, self.data_dir())
                ),
            }
            .into());
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
        let (nonce, ciphertext) = seal(&key, &reference, &binding, token)?;
        let (key_id, key_origin) = (key.id(), key.origin().as_str());
        self.run(move |conn, path| {
            conn.execute(
                "INSERT OR REPLACE INTO secrets
                   (reference, nonce, ciphertext, binding, created_at, key_id, key_origin)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    reference,
                    nonce,
                    ciphertext,
                    binding,
                    time_text(Utc::now()),
                    key_id,
                    key_origin
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
        let data_dir = self.data_dir().to_owned();
        let reference = reference.0.clone();
        let binding = binding.to_owned();
        self.run(move |conn, path| {
            type Row = (Vec<u8>, Vec<u8>, String, Option<String>, Option<String>);
            let row: Option<Row> = conn
                .query_row(
                    "SELECT nonce, ciphertext, binding, key_id, key_origin
                     FROM secrets WHERE reference = ?1",
                    params![reference],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()
                .map_err(|e| StoreError::sqlite(path, e))?;
            let Some((nonce, ciphertext, stored_binding, key_id, key_origin)) = row else {
                return Ok(None);
            };
            let origin = key_origin.as_deref().and_then(KeyOrigin::parse);
            let Some(key) = key else {
                return Err(StoreError::KeyUnavailable {
                    message: format!(
                        "stored token {reference} was sealed with {}, which is not available \
                         now; no new key was created: {}",
                        describe_key(origin, key_id.as_deref(), &data_dir),
                        provide_fix(origin, &data_dir)
                    ),
                });
            };
            if let Some(id) = key_id.as_deref().filter(|id| *id != key.id()) {
                return Err(StoreError::Crypto {
                    message: format!(
                        "stored token {reference} cannot be decrypted: wrong master key or \
                         tampered data: it was sealed with {}, and the key in use is {}; {}",
                        describe_key(origin, Some(id), &data_dir),
                        describe_key(Some(key.origin()), Some(&key.id()), &data_dir),
                        provide_fix(origin, &data_dir)
                    ),
                });
            }
            // The stored binding only improves the message; the AEAD check below is what
            // refuses a token opened for another record.
            if stored_binding != binding {
                return Err(StoreError::Crypto {
                    message: format!(
                        "stored token {reference} belongs to {stored_binding}, not {binding}; \
                         run setup again to save a token for this destination"
                    ),
                });
            }
            open(&key, &reference, &binding, &nonce, &ciphertext).map(Some)
        })
        .await
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
        let (nonce, ciphertext) = seal(&key, &reference, &binding, token)?;
        let (key_id, key_origin) = (key.id(), key.origin().as_str());
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
                    None => {
                        return Ok(Err(PortError::not_found(format!(
                            "stored token {reference}; run setup again to save one"
                        ))))
                    }
                    Some(b) if b != binding => {
                        return Err(StoreError::Crypto {
                            message: format!(
                                "stored token {reference} belongs to {b}, not {binding}; it was \
                                 not replaced: run setup again to save a token for this destination"
                            ),
                        })
                    }
                    Some(_) => {}
                }
                tx.execute(
                    "UPDATE secrets SET nonce = ?2, ciphertext = ?3, created_at = ?4,
                       key_id = ?5, key_origin = ?6
                     WHERE reference = ?1 AND binding = ?7",
                    params![
                        reference,
                        nonce,
                        ciphertext,
                        time_text(Utc::now()),
                        key_id,
                        key_origin,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Token {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        Token::new(raw.iter().map(|b| format!("{b:02x}")).collect::<String>()).unwrap()
    }

    #[test]
    fn sealed_tokens_open_only_with_the_same_key_reference_and_binding() {
        const REF: &str = "acme/trello_cloud/token";
        const BIND: &str = "acme/trello_cloud/b1";
        let key = MasterKey::generate();
        let t = token();
        let (nonce, ct) = seal(&key, REF, BIND, &t).unwrap();
        let opens = |k: &MasterKey, r: &str, b: &str, n: &[u8]| open(k, r, b, n, &ct);
        assert_eq!(opens(&key, REF, BIND, &nonce).unwrap(), t);
        assert!(opens(&key, "other/trello_cloud/token", BIND, &nonce).is_err());
        assert!(opens(&key, REF, "acme/trello_cloud/b2", &nonce).is_err());
        assert!(opens(&MasterKey::generate(), REF, BIND, &nonce).is_err());
        assert!(opens(&key, REF, BIND, &nonce[..8]).is_err());
    }

    #[test]
    fn associated_data_does_not_confuse_how_reference_and_binding_split() {
        assert_ne!(associated_data("a/b", "c"), associated_data("a", "b/c"));
    }

    #[test]
    fn every_write_uses_a_fresh_nonce() {
        let key = MasterKey::generate();
        let t = token();
        let (n1, c1) = seal(&key, "r", "b", &t).unwrap();
        let (n2, c2) = seal(&key, "r", "b", &t).unwrap();
        assert_ne!(n1, n2);
        assert_ne!(c1, c2);
    }
}
