//! The request log: one entry per HTTP request, tokens redacted.

use serde::Serialize;

use crate::ids::looks_like_token;

/// One request as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggedRequest {
    /// HTTP method, upper case.
    pub method: String,
    /// Route template, e.g. `/1/boards/{id}/cards`; `unmatched` when no route
    /// matched and `-` when the request never reached routing (414).
    pub route: String,
    /// Actual path (no query string) with any token in it replaced by `{token}`.
    pub path: String,
    /// Status answered; 0 when the connection was dropped without an answer.
    pub status: u16,
    /// Time from receipt to answer, latency and delays included.
    pub elapsed_ms: u64,
}

/// Replaces token-shaped path segments, and whatever follows `/tokens/` (tokens are
/// opaque: any shape may be one), with `{token}`.
pub(crate) fn redact_path(path: &str) -> String {
    let mut prev = "";
    path.split('/')
        .map(|seg| {
            let out = if looks_like_token(seg) || (prev == "tokens" && !seg.is_empty()) {
                "{token}"
            } else {
                seg
            };
            prev = seg;
            out
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_redacted() {
        let t = crate::ids::token();
        assert_eq!(
            redact_path(&format!("/1/tokens/{t}/")),
            "/1/tokens/{token}/"
        );
        assert_eq!(redact_path("/1/boards/abc"), "/1/boards/abc");
        assert_eq!(
            redact_path("/1/tokens/not%2Flike-a-token/webhooks"),
            "/1/tokens/{token}/webhooks"
        );
        assert_eq!(redact_path("/1/tokens/short"), "/1/tokens/{token}");
    }
}
