//! The one error type every port returns, by meaning rather than by transport.

use std::time::Duration;

/// Result of a port call.
pub type PortResult<T> = Result<T, PortError>;

/// What went wrong, in terms the service can act on. Adapters keep their own errors
/// and convert; no HTTP status or client error crosses this boundary. Messages never
/// contain credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// The object does not exist (or no longer exists).
    #[error("not found: {what}")]
    NotFound { what: String },
    /// The credentials are missing, invalid, expired or revoked.
    #[error("authentication required: {message}")]
    Unauthenticated { message: String },
    /// The credentials work but may not do this (scope, board membership).
    #[error("permission denied: {message}")]
    PermissionDenied { message: String },
    /// The tracker's rate limit was hit; wait this long if known.
    #[error("rate limited: {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// The tracker cannot do this at all (see its capabilities).
    #[error("not supported: {what}")]
    NotSupported { what: String },
    /// The tracker could not be reached or failed (5xx, refused connection); the request
    /// was not applied.
    #[error("tracker unavailable: {message}")]
    Unavailable { message: String },
    /// No answer arrived in time or the connection dropped after sending: the request
    /// may or may not have been applied.
    #[error("no answer from the tracker: {message}")]
    OutcomeUnknown { message: String },
    /// The request was refused as malformed (bad id, value out of range, URL too long).
    #[error("invalid input: {message}")]
    InvalidInput { message: String },
    /// Local state is in use or inconsistent (e.g. another process holds the data directory).
    #[error("conflict: {message}")]
    Conflict { message: String },
    /// Anything else.
    #[error("{message}")]
    Other { message: String },
}

impl PortError {
    /// Whether the same request may succeed if tried again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PortError::RateLimited { .. }
                | PortError::Unavailable { .. }
                | PortError::OutcomeUnknown { .. }
        )
    }

    /// Whether a write may have taken effect although it reported failure. A create
    /// that fails this way must be reconciled (look for its marker), not simply retried.
    pub fn may_have_applied(&self) -> bool {
        matches!(self, PortError::OutcomeUnknown { .. })
    }

    /// A short stable name of the variant, for summaries and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            PortError::NotFound { .. } => "not_found",
            PortError::Unauthenticated { .. } => "unauthenticated",
            PortError::PermissionDenied { .. } => "permission_denied",
            PortError::RateLimited { .. } => "rate_limited",
            PortError::NotSupported { .. } => "not_supported",
            PortError::Unavailable { .. } => "unavailable",
            PortError::OutcomeUnknown { .. } => "outcome_unknown",
            PortError::InvalidInput { .. } => "invalid_input",
            PortError::Conflict { .. } => "conflict",
            PortError::Other { .. } => "other",
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        PortError::NotFound { what: what.into() }
    }

    pub fn other(message: impl Into<String>) -> Self {
        PortError::Other {
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transience_is_data_on_the_error() {
        assert!(PortError::RateLimited {
            retry_after: None,
            message: "x".into()
        }
        .is_transient());
        assert!(PortError::OutcomeUnknown {
            message: "x".into()
        }
        .may_have_applied());
        assert!(!PortError::Unavailable {
            message: "x".into()
        }
        .may_have_applied());
        assert!(!PortError::Unauthenticated {
            message: "x".into()
        }
        .is_transient());
        assert_eq!(
            PortError::not_found("card 1").to_string(),
            "not found: card 1"
        );
    }
}
