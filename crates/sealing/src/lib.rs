//! How every store seals secrets at rest, in one place: the master key (from the
//! environment, a 0600 key file or the embedding program), ChaCha20-Poly1305 with the
//! secret's reference and binding as associated data, and the key id and origin kept next
//! to every sealed secret so that a run without that key can say which key to provide.
//!
//! A store keeps, per reference, the row [`Sealed`] describes and hands it back as a
//! [`StoredSecret`]; [`seal`] and [`open_stored`] do everything else, so the SQLite and the
//! PostgreSQL store cannot drift apart in what they accept. Every error is a
//! [`PortError`] by meaning: a wrong key, tampering or another binding is `Conflict`; a
//! missing or malformed key is `InvalidInput`; each message says how to fix it and never
//! contains the secret or the key.

mod key;

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use webriskops_domain::Token;
use webriskops_ports::{PortError, PortResult};

pub use key::{create_private_dir, KeyOrigin, MasterKey, KEY_FILE_NAME, MASTER_KEY_ENV};

/// Version tag of the sealing scheme, part of the associated data.
const SCHEME: &[u8] = b"webriskops-secret-v1";

/// What a store writes for one secret (besides the reference and the binding).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// 12 random bytes, fresh for every seal.
    pub nonce: Vec<u8>,
    /// The token encrypted and authenticated, with the tag.
    pub ciphertext: Vec<u8>,
    /// The sealing key's id ([`MasterKey::id`]).
    pub key_id: String,
    /// The sealing key's origin ([`KeyOrigin::as_str`]).
    pub key_origin: &'static str,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("key_origin", &self.key_origin)
            .finish_non_exhaustive()
    }
}

/// A secret's row as a store read it back.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    /// The binding the row claims (only improves messages: the AEAD check decides).
    pub binding: String,
    /// `None` for rows sealed before key ids were recorded.
    pub key_id: Option<String>,
    pub key_origin: Option<String>,
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSecret")
            .field("binding", &self.binding)
            .field("key_id", &self.key_id)
            .field("key_origin", &self.key_origin)
            .finish_non_exhaustive()
    }
}

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

fn conflict(message: String) -> PortError {
    PortError::Conflict {
        message,
        context: Default::default(),
    }
}

fn invalid_input(message: String) -> PortError {
    PortError::InvalidInput {
        message,
        context: Default::default(),
    }
}

fn undecryptable(reference: &str) -> PortError {
    conflict(format!(
        "stored token {reference} cannot be decrypted: wrong master key or tampered data; \
         set {MASTER_KEY_ENV} to the key used at setup, or run setup again"
    ))
}

/// Seals `token` for `reference` and `binding` with `key`.
///
/// # Errors
/// `Conflict` if the cipher refuses (it does not for a token of any real size).
pub fn seal(key: &MasterKey, reference: &str, binding: &str, token: &Token) -> PortResult<Sealed> {
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
        .map_err(|_| conflict(format!("cannot encrypt token {reference}; run setup again")))?;
    Ok(Sealed {
        nonce: nonce.to_vec(),
        ciphertext,
        key_id: key.id(),
        key_origin: key.origin().as_str(),
    })
}

/// Opens sealed bytes; any mismatch of key, reference, binding or bytes fails.
fn open(
    key: &MasterKey,
    reference: &str,
    binding: &str,
    nonce: &[u8],
    ciphertext: &[u8],
) -> PortResult<Token> {
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

/// Opens the secret a store read back for `reference`, asked for under `binding`, with the
/// key in use (`None`: the store has none). `key_file` is where this store would keep its
/// key file (the SQLite store's data directory), for the messages; `None` when it has none.
///
/// # Errors
/// No key: `InvalidInput` naming the key that sealed it and how to provide it. Another
/// key (by id), another binding, tampered bytes: `Conflict`, with the fix.
pub fn open_stored(
    key: Option<&MasterKey>,
    key_file: Option<&Path>,
    reference: &str,
    binding: &str,
    stored: &StoredSecret,
) -> PortResult<Token> {
    let origin = stored.key_origin.as_deref().and_then(KeyOrigin::parse);
    let Some(key) = key else {
        return Err(invalid_input(format!(
            "stored token {reference} was sealed with {}, which is not available now; no new \
             key was created: {}",
            describe_key(origin, stored.key_id.as_deref(), key_file),
            provide_fix(origin, key_file)
        )));
    };
    if let Some(id) = stored.key_id.as_deref().filter(|id| *id != key.id()) {
        return Err(conflict(format!(
            "stored token {reference} cannot be decrypted: wrong master key or tampered data: \
             it was sealed with {}, and the key in use is {}; {}",
            describe_key(origin, Some(id), key_file),
            describe_key(Some(key.origin()), Some(&key.id()), key_file),
            provide_fix(origin, key_file)
        )));
    }
    // The stored binding only improves the message; the AEAD check below is what refuses
    // a token opened for another record.
    if stored.binding != binding {
        return Err(conflict(format!(
            "stored token {reference} belongs to {}, not {binding}; run setup again to save a \
             token for this destination",
            stored.binding
        )));
    }
    open(key, reference, binding, &stored.nonce, &stored.ciphertext)
}

/// The error of a replacement refused because the stored secret is bound elsewhere (it
/// stays as it was).
pub fn replace_conflict(reference: &str, stored_binding: &str, binding: &str) -> PortError {
    conflict(format!(
        "stored token {reference} belongs to {stored_binding}, not {binding}; it was not \
         replaced: run setup again to save a token for this destination"
    ))
}

/// The error of a replacement with nothing stored under `reference`.
pub fn replace_missing(reference: &str) -> PortError {
    PortError::not_found(format!(
        "stored token {reference}; run setup again to save one"
    ))
}

/// The error of a seal asked of a store that has no key and may not create one because
/// secrets sealed with the key described by `stored_key_id` and `stored_key_origin` exist.
pub fn key_unavailable(
    key_file: Option<&Path>,
    stored_key_id: Option<&str>,
    stored_key_origin: Option<&str>,
) -> PortError {
    let origin = stored_key_origin.and_then(KeyOrigin::parse);
    invalid_input(format!(
        "no master key is available, and the stored secrets were sealed with {}; a new key \
         could open none of them, so none was created: {}",
        describe_key(origin, stored_key_id, key_file),
        provide_fix(origin, key_file)
    ))
}

/// The error of a secret operation asked of a store opened without a master key;
/// `key_file`: where this store could keep a key file (the SQLite store's data directory),
/// `None` for a store that takes its key from the environment only (every replica of a
/// PostgreSQL store needs the same key).
pub fn no_master_key(key_file: Option<&Path>) -> PortError {
    invalid_input(match key_file {
        Some(_) => format!(
            "the secret store has no master key; set {MASTER_KEY_ENV} or let webriskops \
             create a key file in the data directory"
        ),
        None => format!(
            "the secret store has no master key; set {MASTER_KEY_ENV} (the same key on every \
             replica)"
        ),
    })
}

/// How a key is described in messages: where it came from and its id.
fn describe_key(origin: Option<KeyOrigin>, id: Option<&str>, key_file: Option<&Path>) -> String {
    let from = match origin {
        Some(KeyOrigin::Env) => format!("the key in {MASTER_KEY_ENV}"),
        Some(KeyOrigin::File) => match key_file {
            Some(file) => format!("the key file {}", file.display()),
            None => format!("a key file ({KEY_FILE_NAME})"),
        },
        Some(KeyOrigin::Given) => "a key given by the embedding program".to_owned(),
        None => "a master key saved before key ids were recorded".to_owned(),
    };
    match id {
        Some(id) => format!("{from} (key id {id})"),
        None => from,
    }
}

/// How to provide the key a secret was sealed with.
fn provide_fix(origin: Option<KeyOrigin>, key_file: Option<&Path>) -> String {
    let file = key_file.map_or_else(
        || format!("the key file {KEY_FILE_NAME} it was read from"),
        |f| f.display().to_string(),
    );
    match origin {
        Some(KeyOrigin::Env) => {
            format!("set {MASTER_KEY_ENV} to the key used at setup and run again")
        }
        Some(KeyOrigin::File) => format!(
            "restore {file} from a backup (and unset {MASTER_KEY_ENV} if it is set) and run again"
        ),
        _ => format!(
            "set {MASTER_KEY_ENV} to the key used at setup, or restore {file}, and run again"
        ),
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

    fn stored(sealed: &Sealed, binding: &str) -> StoredSecret {
        StoredSecret {
            nonce: sealed.nonce.clone(),
            ciphertext: sealed.ciphertext.clone(),
            binding: binding.to_owned(),
            key_id: Some(sealed.key_id.clone()),
            key_origin: Some(sealed.key_origin.to_owned()),
        }
    }

    #[test]
    fn sealed_tokens_open_only_with_the_same_key_reference_and_binding() {
        const REF: &str = "acme/trello_cloud/token";
        const BIND: &str = "acme/trello_cloud/b1";
        let key = MasterKey::generate();
        let t = token();
        let sealed = seal(&key, REF, BIND, &t).unwrap();
        let (nonce, ct) = (&sealed.nonce, &sealed.ciphertext);
        let opens = |k: &MasterKey, r: &str, b: &str, n: &[u8]| open(k, r, b, n, ct);
        assert_eq!(opens(&key, REF, BIND, nonce).unwrap(), t);
        assert!(opens(&key, "other/trello_cloud/token", BIND, nonce).is_err());
        assert!(opens(&key, REF, "acme/trello_cloud/b2", nonce).is_err());
        assert!(opens(&MasterKey::generate(), REF, BIND, nonce).is_err());
        assert!(opens(&key, REF, BIND, &nonce[..8]).is_err());
    }

    #[test]
    fn open_stored_names_the_key_that_sealed_and_refuses_another_binding() {
        let key = MasterKey::generate();
        let t = token();
        let sealed = seal(&key, "r", "b", &t).unwrap();
        assert_eq!(
            open_stored(Some(&key), None, "r", "b", &stored(&sealed, "b")).unwrap(),
            t
        );
        let other = MasterKey::generate();
        let err = open_stored(Some(&other), None, "r", "b", &stored(&sealed, "b")).unwrap_err();
        assert!(matches!(err, PortError::Conflict { .. }), "{err:?}");
        assert!(err.to_string().contains(&key.id()), "{err}");
        let err = open_stored(None, None, "r", "b", &stored(&sealed, "b")).unwrap_err();
        assert!(matches!(err, PortError::InvalidInput { .. }), "{err:?}");
        assert!(err.to_string().contains(MASTER_KEY_ENV), "{err}");
        let err = open_stored(Some(&key), None, "r", "c", &stored(&sealed, "b")).unwrap_err();
        assert!(err.to_string().contains("run setup again"), "{err}");
        // The row rewritten to claim the binding asked for: the AEAD check refuses it.
        let err = open_stored(Some(&key), None, "r", "c", &stored(&sealed, "c")).unwrap_err();
        assert!(err.to_string().contains("cannot be decrypted"), "{err}");
    }

    #[test]
    fn associated_data_does_not_confuse_how_reference_and_binding_split() {
        assert_ne!(associated_data("a/b", "c"), associated_data("a", "b/c"));
    }

    #[test]
    fn every_write_uses_a_fresh_nonce() {
        let key = MasterKey::generate();
        let t = token();
        let a = seal(&key, "r", "b", &t).unwrap();
        let b = seal(&key, "r", "b", &t).unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert!(!format!("{a:?}").contains(&hex::encode(&a.ciphertext)));
    }
}
