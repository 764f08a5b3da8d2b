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
    /// When the request arrived, in microseconds since the simulator started: the
    /// arrival times a rate limit is judged on.
    pub at_us: u64,
    /// The API key of an authenticated request (`None` before authentication: 401s,
    /// 414s, unmatched routes, faults).
    pub key: Option<String>,
    /// The id of the token of an authenticated request (the token object's `id`, as
    /// `GET /1/tokens/{token}` answers it; never the token itself).
    pub token_id: Option<String>,
    /// Which limit of the simulator refused the request, for a rate-limit 429 (not for
    /// an injected one).
    pub limited_by: Option<Limit>,
}

/// The limit a 429 came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// The token's budget (`API_TOKEN_LIMIT_EXCEEDED`).
    Token,
    /// The key's budget, shared by its tokens (`API_KEY_LIMIT_EXCEEDED`).
    Key,
    /// The key is locked out after more than 200 429s in a window: every request on it
    /// is refused (`API_KEY_LIMIT_EXCEEDED`) until that window ends.
    KeyLockedOut,
    /// The /1/members/{idOrUsername} budget (`RATE_LIMIT_EXCEEDED`).
    Members,
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
