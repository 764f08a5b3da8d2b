//! The one error type every port returns, by meaning rather than by transport, with
//! the adapter and operation that failed and the adapter's own error as its source.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Result of a port call.
pub type PortResult<T> = Result<T, PortError>;

/// The error an adapter kept as the cause of a [`PortError`]. It MUST NOT print a
/// credential (adapters strip URLs and redact before keeping one).
pub type ErrorSource = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Where a [`PortError`] came from: which adapter (`tracker`, as in
/// `Capabilities::tracker`), which port operation (`operation`, the trait method), and
/// the adapter's own error (`source`). Every field is optional: an error made before it
/// reaches an adapter's trait method carries none yet.
///
/// It never takes part in the error's meaning: two errors that differ only in their
/// source compare equal, and `is_transient`, `may_have_applied` and `kind` ignore it.
#[derive(Clone, Default)]
pub struct ErrorContext {
    pub tracker: Option<&'static str>,
    pub operation: Option<&'static str>,
    pub source: Option<ErrorSource>,
}

impl ErrorContext {
    /// No context yet (what every error starts with).
    pub const fn none() -> Self {
        ErrorContext {
            tracker: None,
            operation: None,
            source: None,
        }
    }
}

impl PartialEq for ErrorContext {
    /// Equal when they name the same adapter and operation; the source is a diagnostic
    /// and is not compared.
    fn eq(&self, other: &Self) -> bool {
        self.tracker == other.tracker && self.operation == other.operation
    }
}

impl Eq for ErrorContext {}

impl fmt::Debug for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The source's text, not its `Debug`: a client error's `Debug` may show fields
        // (such as a request URL) its text does not.
        f.debug_struct("ErrorContext")
            .field("tracker", &self.tracker)
            .field("operation", &self.operation)
            .field("source", &self.source.as_ref().map(ToString::to_string))
            .finish()
    }
}

impl fmt::Display for ErrorContext {
    /// `"linear create_item: "`, `"linear: "`, `"create_item: "` or nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.tracker, self.operation) {
            (Some(t), Some(o)) => write!(f, "{t} {o}: "),
            (Some(x), None) | (None, Some(x)) => write!(f, "{x}: "),
            (None, None) => Ok(()),
        }
    }
}

/// What went wrong, in terms the service can act on. Adapters keep their own errors
/// and convert; no HTTP status or client error crosses this boundary. Messages never
/// contain credentials.
///
/// Every variant carries an [`ErrorContext`]: the adapter fills it where its trait
/// methods return ([`PortError::with_context`]), so the text reads
/// `"linear create_item: not found: issue abc"`, and `std::error::Error::source` gives
/// the adapter's own error where it kept one. Build variants with
/// `context: ErrorContext::none()` (or the constructors below) and match them with `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortError {
    /// The object does not exist (or no longer exists).
    NotFound { what: String, context: ErrorContext },
    /// The credentials are missing, invalid, expired or revoked.
    Unauthenticated {
        message: String,
        context: ErrorContext,
    },
    /// The credentials work but may not do this (scope, board membership).
    PermissionDenied {
        message: String,
        context: ErrorContext,
    },
    /// The tracker's rate limit was hit; wait this long if known.
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
        context: ErrorContext,
    },
    /// The tracker cannot do this at all (see its capabilities).
    NotSupported { what: String, context: ErrorContext },
    /// The tracker could not be reached or failed (5xx, refused connection); the request
    /// was not applied.
    Unavailable {
        message: String,
        context: ErrorContext,
    },
    /// No answer arrived in time or the connection dropped after sending: the request
    /// may or may not have been applied.
    OutcomeUnknown {
        message: String,
        context: ErrorContext,
    },
    /// The request was refused as malformed (bad id, value out of range, URL too long).
    InvalidInput {
        message: String,
        context: ErrorContext,
    },
    /// Local state is in use or inconsistent (e.g. another process holds the data directory).
    Conflict {
        message: String,
        context: ErrorContext,
    },
    /// Anything else.
    Other {
        message: String,
        context: ErrorContext,
    },
}

impl fmt::Display for PortError {
    /// `"{tracker} {operation}: "` once (what is known of it), then [`PortError::reason`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.context())?;
        self.fmt_reason(f)
    }
}

impl PortError {
    fn fmt_reason(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortError::NotFound { what, .. } => write!(f, "not found: {what}"),
            PortError::Unauthenticated { message, .. } => {
                write!(f, "authentication required: {message}")
            }
            PortError::PermissionDenied { message, .. } => {
                write!(f, "permission denied: {message}")
            }
            PortError::RateLimited { message, .. } => write!(f, "rate limited: {message}"),
            PortError::NotSupported { what, .. } => write!(f, "not supported: {what}"),
            PortError::Unavailable { message, .. } => {
                write!(f, "tracker unavailable: {message}")
            }
            PortError::OutcomeUnknown { message, .. } => {
                write!(f, "no answer from the tracker: {message}")
            }
            PortError::InvalidInput { message, .. } => write!(f, "invalid input: {message}"),
            PortError::Conflict { message, .. } => write!(f, "conflict: {message}"),
            PortError::Other { message, .. } => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for PortError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.context()
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
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
        PortError::NotFound {
            what: what.into(),
            context: ErrorContext::none(),
        }
    }

    pub fn other(message: impl Into<String>) -> Self {
        PortError::Other {
            message: message.into(),
            context: ErrorContext::none(),
        }
    }

    /// The error's text without the adapter and operation it came from: for texts
    /// written in a tenant's own words (a blocked state's fix), where code names such as
    /// `list_items` do not belong. Logs and reports use `Display`, which names them.
    pub fn reason(&self) -> String {
        struct Reason<'a>(&'a PortError);
        impl fmt::Display for Reason<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt_reason(f)
            }
        }
        Reason(self).to_string()
    }

    /// Where the error came from (see [`ErrorContext`]).
    pub fn context(&self) -> &ErrorContext {
        match self {
            PortError::NotFound { context, .. }
            | PortError::Unauthenticated { context, .. }
            | PortError::PermissionDenied { context, .. }
            | PortError::RateLimited { context, .. }
            | PortError::NotSupported { context, .. }
            | PortError::Unavailable { context, .. }
            | PortError::OutcomeUnknown { context, .. }
            | PortError::InvalidInput { context, .. }
            | PortError::Conflict { context, .. }
            | PortError::Other { context, .. } => context,
        }
    }

    fn context_mut(&mut self) -> &mut ErrorContext {
        match self {
            PortError::NotFound { context, .. }
            | PortError::Unauthenticated { context, .. }
            | PortError::PermissionDenied { context, .. }
            | PortError::RateLimited { context, .. }
            | PortError::NotSupported { context, .. }
            | PortError::Unavailable { context, .. }
            | PortError::OutcomeUnknown { context, .. }
            | PortError::InvalidInput { context, .. }
            | PortError::Conflict { context, .. }
            | PortError::Other { context, .. } => context,
        }
    }

    /// The adapter (`tracker`) and port operation that failed. Fills only what is not
    /// set yet, so the innermost adapter's answer wins when one port calls another
    /// (a decorator, or a default method over `list_items`). Adapters call it in one
    /// place, where their trait methods return.
    #[must_use]
    pub fn with_context(mut self, tracker: &'static str, operation: &'static str) -> Self {
        let c = self.context_mut();
        c.tracker.get_or_insert(tracker);
        c.operation.get_or_insert(operation);
        self
    }

    /// Keeps the adapter's own error as this error's `source()`. The source MUST NOT
    /// print a credential (strip URLs, redact) and SHOULD NOT repeat in its text what
    /// the message already says.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.context_mut().source = Some(Arc::new(source));
        self
    }

    /// [`PortError::with_source`] for a source already shared (kept by the adapter too).
    #[must_use]
    pub fn with_shared_source(mut self, source: ErrorSource) -> Self {
        self.context_mut().source = Some(source);
        self
    }

    /// The adapter that failed, when known.
    pub fn tracker(&self) -> Option<&'static str> {
        self.context().tracker
    }

    /// The port operation that failed, when known.
    pub fn operation(&self) -> Option<&'static str> {
        self.context().operation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transience_is_data_on_the_error() {
        assert!(PortError::RateLimited {
            context: Default::default(),
            retry_after: None,
            message: "x".into()
        }
        .is_transient());
        assert!(PortError::OutcomeUnknown {
            context: Default::default(),
            message: "x".into()
        }
        .may_have_applied());
        assert!(!PortError::Unavailable {
            context: Default::default(),
            message: "x".into()
        }
        .may_have_applied());
        assert!(!PortError::Unauthenticated {
            context: Default::default(),
            message: "x".into()
        }
        .is_transient());
        assert_eq!(
            PortError::not_found("card 1").to_string(),
            "not found: card 1"
        );
    }

    #[derive(Debug)]
    struct Cause;
    impl fmt::Display for Cause {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("connection reset")
        }
    }
    impl std::error::Error for Cause {}

    #[test]
    fn context_names_the_adapter_and_operation_once() {
        let e = PortError::not_found("issue abc")
            .with_context("linear", "create_item")
            // An outer layer (a decorator, a default method) does not rename it.
            .with_context("fake", "find_by_finding");
        assert_eq!(e.tracker(), Some("linear"));
        assert_eq!(e.operation(), Some("create_item"));
        assert_eq!(e.to_string(), "linear create_item: not found: issue abc");
        assert_eq!(e.reason(), "not found: issue abc");
        assert_eq!(PortError::other("x").to_string(), "x");
    }

    #[test]
    fn context_keeps_the_meaning() {
        let e = PortError::Unauthenticated {
            message: "expired".into(),
            context: ErrorContext::none(),
        }
        .with_context("trello", "whoami")
        .with_source(Cause);
        assert!(matches!(e, PortError::Unauthenticated { .. }));
        assert_eq!(e.kind(), "unauthenticated");
        assert!(!e.is_transient() && !e.may_have_applied());
        let lost = PortError::OutcomeUnknown {
            message: "x".into(),
            context: ErrorContext::none(),
        }
        .with_context("trello", "create_item");
        assert!(lost.is_transient() && lost.may_have_applied());
    }

    #[test]
    fn the_source_is_kept_and_not_compared() {
        let e = PortError::other("x")
            .with_context("trello", "list_items")
            .with_source(Cause);
        let source = std::error::Error::source(&e).expect("source");
        assert_eq!(source.to_string(), "connection reset");
        assert!(source.downcast_ref::<Cause>().is_some());
        assert!(std::error::Error::source(&PortError::other("x")).is_none());
        // Equal by meaning, message, adapter and operation; the source is a diagnostic.
        assert_eq!(
            e,
            PortError::other("x").with_context("trello", "list_items")
        );
        assert_ne!(e, PortError::other("x"));
        // Debug shows the source's text, never its own Debug.
        assert!(format!("{e:?}").contains("\"connection reset\""), "{e:?}");
        assert!(!format!("{e:?}").contains("Cause"), "{e:?}");
    }
}
