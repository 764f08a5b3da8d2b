//! The adapter's own error, and how it maps onto the port error.

use std::io;
use std::path::{Path, PathBuf};

use webriskops_ports::PortError;

/// What went wrong while writing or reading a portable bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortableError {
    /// A file system operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The options cannot produce a bundle.
    #[error("invalid portable export options: {reason}")]
    InvalidOptions { reason: String },
    /// The target exists and is not a bundle, so replacing it could destroy other files.
    #[error(
        "{} exists and is not a portable bundle; choose a new or empty directory, or remove it",
        path.display()
    )]
    NotABundle { path: PathBuf },
    /// A file the manifest lists (or the manifest itself) is missing.
    #[error(
        "{file} is missing from the portable bundle in {}; export the bundle again",
        dir.display()
    )]
    MissingFile { dir: PathBuf, file: String },
    /// A file differs from the checksum the manifest recorded.
    #[error(
        "{file} in the portable bundle in {} was changed after export (checksum mismatch); restore it or export the bundle again",
        dir.display()
    )]
    ChecksumMismatch { dir: PathBuf, file: String },
    /// A file cannot be understood.
    #[error(
        "{file} in the portable bundle in {} is not valid: {reason}; export the bundle again",
        dir.display()
    )]
    Malformed {
        dir: PathBuf,
        file: String,
        reason: String,
    },
    /// A card was added twice, or two ids map to one file name.
    #[error("{message}")]
    Conflict { message: String },
}

impl PortableError {
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_owned();
        move |source| PortableError::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn malformed(dir: &Path, file: &str, reason: impl ToString) -> Self {
        PortableError::Malformed {
            dir: dir.to_owned(),
            file: file.to_owned(),
            reason: reason.to_string(),
        }
    }
}

impl From<PortableError> for PortError {
    /// By meaning, with the bundle error kept as the `source()` (and through it the
    /// file system's error), so a caller can still reach the `io::Error`.
    fn from(e: PortableError) -> Self {
        let message = e.to_string();
        let port = match e {
            PortableError::InvalidOptions { .. } | PortableError::NotABundle { .. } => {
                PortError::InvalidInput {
                    context: Default::default(),
                    message,
                }
            }
            PortableError::Conflict { .. } => PortError::Conflict {
                context: Default::default(),
                message,
            },
            _ => PortError::Other {
                context: Default::default(),
                message,
            },
        };
        port.with_source(e)
    }
}
