//! `SecretStore`: tokens sealed with ChaCha20-Poly1305, bound to their reference and binding.

use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use chrono::Utc;
use rand::RngCore;
use rusqlite::{params, OptionalExtension};
use webriskops_domain::{CredentialRef, Token};
use webriskops_ports::{PortResult, SecretStore};

use crate::error::StoreError;
use crate::{time_text, MasterKey, SqliteStore};

/// Version tag of the sealing scheme, part of the associated data.
const SCHEME: &[u8] = b"webriskops-secret-v1";

/// The associated data: scheme, reference and binding, each length-prefixed so that no
/// two different (reference, binding) pairs produce the same bytes.
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

impl SqliteStore {
    fn master_key(&self) -> Result<MasterKey, StoreError> {
        self.inner.master_key.clone().ok_or(StoreError::NoMasterKey)
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
        let key = self.master_key()?;
        let reference = reference.0.clone();
        let binding = binding.to_owned();
        let (nonce, ciphertext) = seal(&key, &reference, &binding, token)?;
        self.run(move |conn, path| {
            conn.execute(
                "INSERT OR REPLACE INTO secrets (reference, nonce, ciphertext, binding, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![reference, nonce, ciphertext, binding, time_text(Utc::now())],
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
        let key = self.master_key()?;
        let reference = reference.0.clone();
        let binding = binding.to_owned();
        self.run(move |conn, path| {
            let row: Option<(Vec<u8>, Vec<u8>, String)> = conn
                .query_row(
                    "SELECT nonce, ciphertext, binding FROM secrets WHERE reference = ?1",
                    params![reference],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(|e| StoreError::sqlite(path, e))?;
            let Some((nonce, ciphertext, stored_binding)) = row else {
                return Ok(None);
            };
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
