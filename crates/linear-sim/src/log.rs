//! The request log: one entry per HTTP request, with no credential in it.

use serde::Serialize;

/// One request as the simulator saw it. Credentials never appear: the
/// `Authorization` header, OAuth form bodies and GraphQL variables are not
/// recorded, and `path` has no query string (the authorize redirect carries
/// codes and state there).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedRequest {
    /// HTTP method, upper case.
    pub method: String,
    /// Path without the query string, e.g. `/graphql` or `/oauth/token`.
    pub path: String,
    /// The GraphQL `operationName` (or the operation's own name), if any.
    pub operation_name: Option<String>,
    /// Root fields of the executed operation, e.g. `["issueCreate"]`.
    pub root_fields: Vec<String>,
    /// HTTP status answered; 0 when the connection was dropped without an answer.
    pub status: u16,
    /// First `errors[].extensions.code` of the answer (or the OAuth `error`), if any.
    pub error_code: Option<String>,
    /// Complexity points estimated for the document, when it was valid.
    pub complexity: Option<u64>,
    /// Time from receipt to answer, latency and delays included.
    pub elapsed_ms: u64,
}
