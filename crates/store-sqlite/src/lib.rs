//! Embedded SQLite store: provider records, the export ledger, the run journal and encrypted secrets.
//!
//! One [`SqliteStore`] owns a data directory: it holds an exclusive advisory lock on
//! `webriskops.lock` for its whole life, so a second process gets [`StoreError::Locked`]
//! instead of a corrupted ledger. The database runs in WAL mode with `synchronous=FULL`:
//! every write has reached the disk when the call returns. Blocking SQLite work runs on
//! tokio's blocking pool, never on the async runtime's threads.
//!
//! Every state file (database, its `-wal` and `-shm`, the lock, the key file) is private to
//! the user (0600 on unix, whatever the umask), and a data directory that group or others
//! can write is refused (readable: a warning), each with the `chmod` that fixes it.

mod accounts;
mod error;
mod journal;
mod ledger;
mod providers;
mod queue;
mod schema;
mod secrets;
mod sign_ins;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags};
use webriskops_ports::PortResult;

pub use error::StoreError;
pub use schema::SCHEMA_VERSION;
/// The sealing of secrets is shared with every store (`webriskops_sealing`).
pub use webriskops_sealing::{KeyOrigin, MasterKey, KEY_FILE_NAME, MASTER_KEY_ENV};

/// Name of the database file inside the data directory.
pub const DB_FILE_NAME: &str = "webriskops.db";

/// Name of the lock file inside the data directory.
pub const LOCK_FILE_NAME: &str = "webriskops.lock";

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long a statement waits for a busy database before failing. Default 5 s.
    pub busy_timeout: Duration,
    /// The key that encrypts secrets; without one, the [`SecretStore`] methods fail
    /// (`InvalidInput`, naming `WEBRISKOPS_MASTER_KEY`) and everything else works.
    ///
    /// [`SecretStore`]: webriskops_ports::SecretStore
    pub master_key: Option<MasterKey>,
    /// When `master_key` is `None`: use the key file `<data_dir>/master.key`. It is loaded
    /// when present; it is created (0600) only when a secret is sealed while the database
    /// holds no secret at all, so a key is never made up in place of one that sealed
    /// existing secrets (their key id and origin say which key to provide).
    pub key_file: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            master_key: None,
            key_file: false,
        }
    }
}

/// The embedded store. Cheap to clone: clones share one connection and one lock.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    // Field order matters: the connection closes before the lock is released.
    conn: Mutex<Connection>,
    db_path: PathBuf,
    data_dir: PathBuf,
    /// The key in use; set later when the key file is created on the first seal.
    master_key: Mutex<Option<MasterKey>>,
    /// `<data_dir>/master.key` when [`StoreOptions::key_file`] is set.
    key_file: Option<PathBuf>,
    _lock: fd_lock::RwLock<fs::File>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`: the directory (mode 0700 on
    /// unix), the lock, the database `webriskops.db`, its pragmas and migrations.
    /// Blocking; call it before serving requests or from a blocking context.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another handle holds the directory,
    /// [`StoreError::Corrupt`] for a damaged file, [`StoreError::SchemaTooNew`] for a
    /// database of a newer build, [`StoreError::Io`] / [`StoreError::Sqlite`] otherwise.
    pub fn open(data_dir: &Path, opts: StoreOptions) -> Result<SqliteStore, StoreError> {
        create_private_dir(data_dir)?;
        check_data_dir(data_dir)?;
        let lock = acquire_lock(data_dir)?;
        let db_path = data_dir.join(DB_FILE_NAME);
        // SQLite would create the file 0644 less the umask; create it private first. SQLite
        // gives a new -wal or -shm the database file's own mode, ignoring the umask (its test
        // journal3.test: "it creates it with the same file-system permissions as the database
        // file itself", https://github.com/sqlcipher/sqlcipher/blob/master/test/journal3.test).
        create_private_file(&db_path)?;
        for suffix in ["-wal", "-shm"] {
            tighten_if_present(&sibling(&db_path, suffix))?;
        }
        let key_file = opts.key_file.then(|| data_dir.join(KEY_FILE_NAME));
        let master_key = match (&opts.master_key, &key_file) {
            (Some(k), _) => Some(k.clone()),
            (None, Some(path)) if fs::symlink_metadata(path).is_ok() => {
                Some(MasterKey::load_or_create(path).map_err(StoreError::Key)?)
            }
            _ => None,
        };
        let mut conn = Connection::open_with_flags(
            &db_path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::sqlite(&db_path, e))?;
        schema::configure(&conn, &db_path, opts.busy_timeout)?;
        schema::migrate(&mut conn, &db_path)?;
        for suffix in ["-wal", "-shm"] {
            tighten_if_present(&sibling(&db_path, suffix))?;
        }
        tracing::debug!(path = %db_path.display(), "opened the store");
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                db_path,
                data_dir: data_dir.to_owned(),
                master_key: Mutex::new(master_key),
                key_file,
                _lock: lock,
            }),
        })
    }

    /// The data directory this store owns.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        &self.inner.db_path
    }

    /// Runs `work` with the connection on the blocking pool.
    async fn run<T, F>(&self, work: F) -> PortResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Path) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let joined = tokio::task::spawn_blocking(move || {
            // A panic inside a transaction rolled it back; the connection stays usable.
            let mut conn = inner.conn.lock().unwrap_or_else(|p| p.into_inner());
            work(&mut conn, &inner.db_path)
        })
        .await;
        match joined {
            Ok(result) => result.map_err(Into::into),
            Err(e) => Err(StoreError::Task {
                message: e.to_string(),
            }
            .into()),
        }
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("db_path", &self.inner.db_path)
            .field("master_key", &self.current_key())
            .finish_non_exhaustive()
    }
}

/// Creates `dir` and its missing parents, private to the user (0700) on unix.
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    webriskops_sealing::create_private_dir(dir)
        .map_err(|e| StoreError::io("create the data directory", dir, e))
}

/// Refuses a data directory that group or others can write (they could replace the
/// database or the key file), and warns when they can read it, each with the fix.
#[cfg(unix)]
fn check_data_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(dir)
        .map_err(|e| StoreError::io("inspect the data directory", dir, e))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o022 != 0 {
        return Err(StoreError::DataDirPermissions {
            path: dir.to_owned(),
            mode,
        });
    }
    if mode & 0o055 != 0 {
        tracing::warn!(
            "data directory {} can be read by group or others (mode {:03o}); restrict it with `chmod 700 {}`",
            dir.display(),
            mode & 0o777,
            dir.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_data_dir(_dir: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// `<path><suffix>`, e.g. the database's `-wal`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Opens (creating 0600 if needed) a state file, and makes an existing one private.
fn open_private(path: &Path, what: &'static str) -> Result<fs::File, StoreError> {
    let mut options = fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(path)
        .map_err(|e| StoreError::io(what, path, e))?;
    tighten(&file, path)?;
    Ok(file)
}

/// Creates the file private to the user when missing; an existing one is made private.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    open_private(path, "create").map(drop)
}

/// Makes an existing file private; a missing one is fine.
fn tighten_if_present(path: &Path) -> Result<(), StoreError> {
    match fs::OpenOptions::new().read(true).open(path) {
        Ok(file) => tighten(&file, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io("open", path, e)),
    }
}

/// Removes group and other permissions through the open descriptor (never a path that
/// could meanwhile name another file).
#[cfg(unix)]
fn tighten(file: &fs::File, path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .map_err(|e| StoreError::io("inspect", path, e))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(mode & 0o700))
            .map_err(|e| StoreError::StatePermissions {
                path: path.to_owned(),
                mode,
                reason: e.to_string(),
            })?;
        tracing::info!(path = %path.display(), from = format!("{mode:03o}"), "made a state file private");
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_file: &fs::File, _path: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Takes the exclusive advisory lock on `<data_dir>/webriskops.lock` without waiting.
fn acquire_lock(data_dir: &Path) -> Result<fd_lock::RwLock<fs::File>, StoreError> {
    let lock_file = data_dir.join(LOCK_FILE_NAME);
    let file = open_private(&lock_file, "open the lock file")?;
    let mut lock = fd_lock::RwLock::new(file);
    match lock.try_write() {
        // The lock belongs to the open file, not the guard: forgetting the guard keeps it
        // held until the file closes, when the store is dropped or the process ends.
        Ok(guard) => std::mem::forget(guard),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            return Err(StoreError::Locked {
                data_dir: data_dir.to_owned(),
                lock_file,
            })
        }
        Err(e) => return Err(StoreError::io("lock", &lock_file, e)),
    }
    Ok(lock)
}

/// Formats a time the way every table stores it.
pub(crate) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Parses a stored time.
pub(crate) fn parse_time(
    path: &Path,
    what: &'static str,
    text: &str,
) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| decode(path, what, e))
}

/// A [`StoreError::Decode`] for a stored value that does not parse.
pub(crate) fn decode(path: &Path, what: &'static str, reason: impl fmt::Display) -> StoreError {
    StoreError::Decode {
        path: path.to_owned(),
        what,
        reason: reason.to_string(),
    }
}

/// Parses a stored keyword (`open`, `trello_cloud`, …) with the type's serde names.
pub(crate) fn keyword<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    use serde::de::IntoDeserializer;
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
        text.into_deserializer();
    T::deserialize(de).map_err(|e| decode(path, what, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_runs_wal_with_full_sync_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), StoreOptions::default()).unwrap();
        let conn = store.inner.conn.lock().unwrap();
        let get = |pragma: &str| -> String {
            conn.query_row(&format!("PRAGMA {pragma}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| format!("{v:?}"))
            .unwrap()
        };
        assert_eq!(get("journal_mode"), "Text(\"wal\")");
        assert_eq!(get("synchronous"), "Integer(2)");
        assert_eq!(get("foreign_keys"), "Integer(1)");
        assert_eq!(get("user_version"), format!("Integer({SCHEMA_VERSION})"));
    }

    #[cfg(unix)]
    #[test]
    fn data_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        let _store = SqliteStore::open(&dir, StoreOptions::default()).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn keywords_round_trip_through_their_serde_names() {
        use webriskops_domain::{TargetState, TrackerStatus};
        let p = Path::new("x");
        for t in [TargetState::Open, TargetState::Done, TargetState::Archived] {
            assert_eq!(keyword::<TargetState>(p, "target", t.as_str()).unwrap(), t);
        }
        for s in [
            TrackerStatus::Open,
            TrackerStatus::Done,
            TrackerStatus::Archived,
            TrackerStatus::Deleted,
        ] {
            assert_eq!(
                keyword::<TrackerStatus>(p, "status", s.as_str()).unwrap(),
                s
            );
        }
        assert!(keyword::<TargetState>(p, "target", "sideways").is_err());
    }
}
