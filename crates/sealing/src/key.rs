//! The master key that encrypts secrets at rest: from an environment value or a 0600 key file,
//! with a fingerprint (key id) and its origin recorded next to every secret it seals.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

use webriskops_ports::{PortError, PortResult};

/// Name of the environment variable the application reads the master key from.
pub const MASTER_KEY_ENV: &str = "WEBRISKOPS_MASTER_KEY";

/// Conventional name of the key file inside the data directory.
pub const KEY_FILE_NAME: &str = "master.key";

/// Where a master key came from. Recorded with every secret it seals, so that a later
/// run without that key can say which key to provide instead of creating a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The environment variable [`MASTER_KEY_ENV`].
    Env,
    /// The key file [`KEY_FILE_NAME`] in the data directory.
    File,
    /// Handed over by the embedding program (tests, the benchmark).
    Given,
}

impl KeyOrigin {
    /// The keyword stored in the `secrets` table.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyOrigin::Env => "env",
            KeyOrigin::File => "file",
            KeyOrigin::Given => "given",
        }
    }

    /// The origin a stored keyword names; `None` for an unknown one.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "env" => Some(KeyOrigin::Env),
            "file" => Some(KeyOrigin::File),
            "given" => Some(KeyOrigin::Given),
            _ => None,
        }
    }
}

/// A 32-byte ChaCha20-Poly1305 key and where it came from. `Debug` never shows it;
/// two keys are equal when their bytes are, whatever their origin.
#[derive(Clone)]
pub struct MasterKey {
    bytes: [u8; 32],
    origin: KeyOrigin,
}

impl PartialEq for MasterKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for MasterKey {}

impl MasterKey {
    /// Parses the value of [`MASTER_KEY_ENV`]: 32 bytes as base64 (standard or URL-safe,
    /// padded or not) or as 64 hexadecimal characters. Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// `InvalidInput` for anything else; the message never contains the value.
    pub fn from_env_value(value: &str) -> PortResult<Self> {
        Self::parse(value, MASTER_KEY_ENV, KeyOrigin::Env)
    }

    /// Loads the key kept in `path`, or creates it (32 random bytes, base64, mode 0600,
    /// written to a temporary file and linked into place so a crash never leaves half a key).
    ///
    /// # Errors
    /// On unix, an existing file readable by group or others (`InvalidInput`, with the
    /// `chmod` that fixes it); a malformed file (`InvalidInput`); any I/O failure (`Other`).
    pub fn load_or_create(path: &Path) -> PortResult<Self> {
        match fs::symlink_metadata(path) {
            Ok(_) => Self::load(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(io_error("read", path, e)),
        }
    }

    /// A fresh random key (origin [`KeyOrigin::Given`]).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self {
            bytes,
            origin: KeyOrigin::Given,
        }
    }

    /// The key as padded standard base64, the form [`MasterKey::from_env_value`] accepts.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    /// Where the key came from.
    pub fn origin(&self) -> KeyOrigin {
        self.origin
    }

    /// The key's fingerprint: 16 hex digits of SHA-256 over a domain-separation tag and
    /// the key. It names the key in messages and in the `secrets` table; 64 bits of a hash
    /// of a 256-bit random key tell nothing usable about the key itself.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"webriskops-master-key-id-v1\0");
        h.update(self.bytes);
        hex::encode(&h.finalize()[..8])
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    fn parse(value: &str, origin_name: &str, origin: KeyOrigin) -> PortResult<Self> {
        let invalid = |reason: &str| {
            invalid_input(format!(
                "{origin_name} is not a valid master key: {reason}; expected 32 bytes as base64 \
                 or 64 hexadecimal characters (e.g. from `openssl rand -base64 32`)"
            ))
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(invalid("it is empty"));
        }
        let bytes = if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            decode_hex(value)
        } else {
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(value).ok())
                .ok_or_else(|| invalid("it is neither base64 nor hexadecimal"))?
        };
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| invalid(&format!("it decodes to {} bytes, not 32", b.len())))?;
        Ok(Self { bytes, origin })
    }

    fn load(path: &Path) -> PortResult<Self> {
        check_private(path)?;
        let text = fs::read_to_string(path).map_err(|e| io_error("read", path, e))?;
        Self::parse(
            &text,
            &format!("key file {}", path.display()),
            KeyOrigin::File,
        )
    }

    fn create(path: &Path) -> PortResult<Self> {
        let key = Self {
            origin: KeyOrigin::File,
            ..Self::generate()
        };
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        create_private_dir(dir).map_err(|e| io_error("create the directory", dir, e))?;
        let tmp = temporary_sibling(path);
        let written = write_private(&tmp, format!("{}\n", key.to_base64()).as_bytes());
        let linked = written.and_then(|()| fs::hard_link(&tmp, path));
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_dir(dir);
                tracing::info!(path = %path.display(), "created a new master key file");
                Ok(key)
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(io_error("create", path, e)),
        }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Creates `dir` and its missing parents, private to the user (0700) on unix.
///
/// # Errors
/// Any I/O failure.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn invalid_input(message: String) -> PortError {
    PortError::InvalidInput {
        message,
        context: Default::default(),
    }
}

fn io_error(action: &str, path: &Path, e: io::Error) -> PortError {
    PortError::other(format!(
        "cannot {action} {}: {e}; check that the path exists and is writable by this user",
        path.display()
    ))
}

fn decode_hex(value: &str) -> Vec<u8> {
    value
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |b: u8| char::from(b).to_digit(16).unwrap_or(0) as u8;
            digit(pair[0]) << 4 | digit(pair[1])
        })
        .collect()
}

fn temporary_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    path.with_file_name(name)
}

fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(unix)]
fn check_private(path: &Path) -> PortResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(|e| io_error("read", path, e))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(invalid_input(format!(
            "master key file {path} is readable by group or others (mode {mode:03o}); restrict \
             it with `chmod 600 {path}` and run again",
            path = path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> PortResult<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_value_accepts_base64_and_hex_of_32_bytes() {
        let key = MasterKey::generate();
        let b64 = key.to_base64();
        assert_eq!(
            MasterKey::from_env_value(&format!(" {b64}\n")).unwrap(),
            key
        );
        let hex: String = key.bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(MasterKey::from_env_value(&hex).unwrap(), key);
        assert_eq!(MasterKey::from_env_value(&hex.to_uppercase()).unwrap(), key);
        assert_eq!(
            MasterKey::from_env_value(&URL_SAFE_NO_PAD.encode(key.bytes())).unwrap(),
            key
        );
    }

    #[test]
    fn malformed_env_values_are_rejected_without_echoing_them() {
        let short = STANDARD.encode([7u8; 16]);
        let err = MasterKey::from_env_value(&short).unwrap_err().to_string();
        assert!(err.contains("16 bytes, not 32"), "{err}");
        assert!(!err.contains(&short), "{err}");
        assert!(MasterKey::from_env_value("").is_err());
        let err = MasterKey::from_env_value("not a key!")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("WEBRISKOPS_MASTER_KEY is not a valid master key"),
            "{err}"
        );
        assert!(!err.contains("not a key!"), "{err}");
    }

    #[test]
    fn key_ids_name_the_key_without_revealing_it() {
        let key = MasterKey::generate();
        let id = key.id();
        assert_eq!(id.len(), 16);
        assert_eq!(
            MasterKey::from_env_value(&key.to_base64()).unwrap().id(),
            id
        );
        assert_ne!(MasterKey::generate().id(), id);
        let hex: String = key.bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!hex.contains(&id), "the id is not a slice of the key");
    }

    #[test]
    fn debug_redacts_the_key() {
        let key = MasterKey::generate();
        let shown = format!("{key:?}");
        assert_eq!(shown, "MasterKey(<redacted>)");
        assert!(!shown.contains(&key.to_base64()[..8]));
    }
}
