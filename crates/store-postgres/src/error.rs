//! The store's own error, saying what failed, where (never with credentials) and how to
//! fix it, and its port mapping.

use webriskops_ports::PortError;

/// What went wrong in the PostgreSQL store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgStoreError {
    /// The database URL does not parse (it is not repeated: it may hold a password).
    #[error(
        "the database URL is malformed ({reason}); expected \
         postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
    )]
    Url { reason: String },
    /// The server cannot be reached or refused the connection.
    #[error(
        "cannot connect to PostgreSQL at {target}: {}; check that the server runs, the \
         address and the credentials in the database URL, and that this host may connect",
        detail(.source)
    )]
    Connect {
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// No pooled connection could be had in time.
    #[error(
        "no connection to PostgreSQL at {target}: {message}; check that the server runs and \
         accepts connections"
    )]
    Pool { target: String, message: String },
    /// The database was migrated by a newer webriskops.
    #[error(
        "database schema version {found} is newer than this webriskops understands \
         ({supported}): a newer build migrated it; upgrade webriskops (every replica runs the \
         same version)"
    )]
    SchemaTooNew { found: i32, supported: i32 },
    /// The database lacks migrations this build needs, and migrating on open was off.
    #[error(
        "database schema version {found} is older than this webriskops needs ({supported}); \
         run `webriskops migrate` with the same database URL, then start again"
    )]
    SchemaTooOld { found: i32, supported: i32 },
    /// A migration failed; it was rolled back whole.
    #[error(
        "migration {version} ({name}) failed on {target}: {source}; nothing of it was applied"
    )]
    Migration {
        version: i32,
        name: &'static str,
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A statement failed.
    #[error("PostgreSQL at {target} failed: {}", detail(.source))]
    Postgres {
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A stored row cannot be read back.
    #[error("database {target} holds an unreadable {what}: {reason}")]
    Decode {
        target: String,
        what: &'static str,
        reason: String,
    },
    /// The object named does not exist.
    #[error("{what} does not exist")]
    NotFound { what: String },
}

/// The server's own words for an error it reported (`ERROR 23505: duplicate key …`), which
/// the client error's text ("db error") leaves out; the client's text otherwise.
fn detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => e.to_string(),
    }
}

impl PgStoreError {
    /// Whether the error is the server's `code` (e.g. a foreign key violation).
    pub(crate) fn is(&self, code: &tokio_postgres::error::SqlState) -> bool {
        matches!(self, PgStoreError::Postgres { source, .. } if source.code() == Some(code))
    }
}

impl From<PgStoreError> for PortError {
    fn from(e: PgStoreError) -> Self {
        let message = e.to_string();
        match e {
            PgStoreError::NotFound { what } => PortError::NotFound {
                context: Default::default(),
                what,
            },
            PgStoreError::SchemaTooNew { .. } | PgStoreError::SchemaTooOld { .. } => {
                PortError::Conflict {
                    context: Default::default(),
                    message,
                }
            }
            PgStoreError::Url { .. } => PortError::InvalidInput {
                context: Default::default(),
                message,
            },
            PgStoreError::Connect { .. }
            | PgStoreError::Pool { .. }
            | PgStoreError::Migration { .. }
            | PgStoreError::Postgres { .. }
            | PgStoreError::Decode { .. } => PortError::Other {
                context: Default::default(),
                message,
            },
        }
    }
}
