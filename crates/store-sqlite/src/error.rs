//! The store's own error, saying what failed, where and how to fix it, and its port mapping.

use std::io;
use std::path::PathBuf;

use webriskops_ports::PortError;

/// What went wrong in the SQLite store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process (or another handle in this process) holds the data directory.
    #[error(
        "another webriskops process is using {data_dir} (it holds {lock_file}); wait for it to \
         finish, or use another --data-dir"
    )]
    Locked {
        data_dir: PathBuf,
        lock_file: PathBuf,
    },
    /// The database file is not a SQLite database or is damaged.
    #[error(
        "database {path} is corrupt or not a webriskops database ({detail}); move it aside \
         (e.g. rename it to webriskops.db.broken) and run again: the export ledger is rebuilt \
         from the tracker's card markers on the next export, provider records and tokens need \
         setup again"
    )]
    Corrupt { path: PathBuf, detail: String },
    /// The database was written by a newer webriskops.
    #[error(
        "database schema version {found} is newer than this webriskops understands ({supported}); \
         upgrade webriskops"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    /// A file-system operation failed.
    #[error(
        "cannot {action} {path}: {source}; check that the path exists and is writable by this user"
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// SQLite reported an error.
    #[error("database {path} failed: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A stored row cannot be read back.
    #[error("database {path} holds an unreadable {what}: {reason}; move the file aside if this persists")]
    Decode {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    /// The data directory can be written by group or others.
    #[error(
        "data directory {path} can be written by group or others (mode {mode:03o}), so they could \
         replace the database or the key file; restrict it with `chmod 700 {path}` and run again",
        path = path.display()
    )]
    DataDirPermissions { path: PathBuf, mode: u32 },
    /// A state file is open to group or others and cannot be made private.
    #[error(
        "state file {path} is open to group or others (mode {mode:03o}) and cannot be made \
         private ({reason}); make it yours and private with `chmod 600 {path}`, or use another \
         --data-dir",
        path = path.display()
    )]
    StatePermissions {
        path: PathBuf,
        mode: u32,
        reason: String,
    },
    /// The object named does not exist.
    #[error("{what} does not exist")]
    NotFound { what: String },
    /// The master key (its file or value) cannot be used; the error says how to fix it.
    #[error(transparent)]
    Key(PortError),
    /// The blocking task running the query died.
    #[error("store task failed: {message}")]
    Task { message: String },
}

impl StoreError {
    /// Classifies a SQLite error: damage and "not a database" become [`StoreError::Corrupt`].
    pub(crate) fn sqlite(path: impl Into<PathBuf>, source: rusqlite::Error) -> Self {
        let path = path.into();
        match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt {
                    path,
                    detail: source.to_string(),
                }
            }
            _ => StoreError::Sqlite { path, source },
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl From<StoreError> for PortError {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        match e {
            StoreError::Locked { .. }
            | StoreError::Corrupt { .. }
            | StoreError::SchemaTooNew { .. } => PortError::Conflict {
                context: Default::default(),
                message,
            },
            StoreError::NotFound { what } => PortError::NotFound {
                context: Default::default(),
                what,
            },
            StoreError::Key(e) => e,
            StoreError::DataDirPermissions { .. } | StoreError::StatePermissions { .. } => {
                PortError::InvalidInput {
                    context: Default::default(),
                    message,
                }
            }
            StoreError::Io { .. }
            | StoreError::Sqlite { .. }
            | StoreError::Decode { .. }
            | StoreError::Task { .. } => PortError::Other {
                context: Default::default(),
                message,
            },
        }
    }
}
