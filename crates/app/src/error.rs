//! The application's error: a message for the operator and the exit code it maps to.

use std::fmt;

use webriskops_ports::PortError;
use webriskops_service::ServiceError;
use webriskops_store_sqlite::StoreError;

/// Documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything worked.
    Ok = 0,
    /// Something failed (tracker unreachable, database unusable, bad master key).
    Error = 1,
    /// The command line or the configuration cannot be used.
    Usage = 2,
    /// Setup is blocked; the output lists each blocked state and its fix.
    Blocked = 3,
    /// Some findings were invalid or failed; the rest were exported.
    Partial = 4,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A failure to report: what went wrong and how to fix it, never a secret.
#[derive(Debug)]
pub struct AppError {
    pub exit: Exit,
    pub message: String,
}

impl AppError {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Usage,
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Error,
            message: message.into(),
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AppError {}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::failed(e.to_string())
    }
}

impl From<PortError> for AppError {
    fn from(e: PortError) -> Self {
        let message = match &e {
            PortError::Unavailable { .. } | PortError::RateLimited { .. } => {
                format!("{e}; check the network and the API root, then run the command again")
            }
            PortError::OutcomeUnknown { .. } => {
                format!("{e}; run the command again: a re-run never duplicates a card")
            }
            _ => e.to_string(),
        };
        AppError::failed(message)
    }
}

impl From<ServiceError> for AppError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Port(p) => p.into(),
            ServiceError::Blocked(r) => AppError {
                exit: Exit::Blocked,
                message: format!(
                    "setup is blocked: {}",
                    r.codes()
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            ServiceError::Input(m) => AppError::failed(m),
        }
    }
}

/// Shorthand for results of the application layer.
pub type AppResult<T> = Result<T, AppError>;
