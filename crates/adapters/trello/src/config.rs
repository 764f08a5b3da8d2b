//! Construction settings: where the API is, the credentials, rate limits, retries,
//! timeout and concurrency.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;
use webriskops_domain::{ApiKey, Token};

/// Trello's API root (FACTS.md §0).
pub const DEFAULT_API_ROOT: &str = "https://api.trello.com/1";

/// The environment variable the application maps to [`TrelloConfig::api_root`]. The
/// adapter itself never reads the environment; only the operator sets the API root.
pub const API_ROOT_ENV: &str = "WEBRISKOPS_TRELLO_API_ROOT";

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid Trello API root {url:?}: {reason}")]
    ApiRoot { url: String, reason: String },
    #[error("invalid Trello adapter setting {field}: {reason}")]
    Setting { field: &'static str, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl From<ConfigError> for webriskops_ports::PortError {
    fn from(e: ConfigError) -> Self {
        webriskops_ports::PortError::InvalidInput {
            context: Default::default(),
            message: e.to_string(),
        }
    }
}

/// Client-side rate limits (FACTS.md §9). Defaults are Trello's published limits:
/// 100 requests per 10 s per token, 300 per 10 s per API key (shared by every token of
/// the key in this process, see [`crate::KeyBudget`]), and 100 per 900 s per token on
/// `/1/members/{id}`.
///
/// When Trello's `x-rate-limit-api-{token,key}-{max,interval-ms,remaining}` headers are
/// present, the limiter takes the smaller limit and the longer window of configured
/// and announced values, and counts requests the server saw but this process did not
/// (another process using the same token or key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Requests per window per token. Default 100.
    pub token_limit: u32,
    /// Requests per window per API key, shared by all its tokens. Default 300.
    pub key_limit: u32,
    /// The window, in milliseconds. Default 10 000.
    pub window_ms: u64,
    /// Requests per members window per token on `/1/members/{id}`. Default 100.
    pub members_limit: u32,
    /// The members window, in milliseconds. Default 900 000.
    pub members_window_ms: u64,
    /// Extra time a request is counted after its window. A request holds its place from
    /// its admission until one window after its answer, which covers any moment Trello
    /// can have received it however late it was sent, so the margin only absorbs clock
    /// granularity and how Trello rounds its window's edges. Default 50 (0.5 % of the
    /// 10 s window; it was 250 when it also had to absorb the delay before sending).
    pub safety_margin_ms: u64,
    /// Correct the limiter with Trello's rate-limit headers. Default true.
    pub follow_headers: bool,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            token_limit: 100,
            key_limit: 300,
            window_ms: 10_000,
            members_limit: 100,
            members_window_ms: 900_000,
            safety_margin_ms: 50,
            follow_headers: true,
        }
    }
}

impl RateLimits {
    /// Limits scaled to a shorter window (tests and the simulator): the same counts, and
    /// the members window and the safety margin scaled by the same factor as the window,
    /// so a run at a scaled budget behaves as the real one sped up (the real margin,
    /// 50 ms of 10 s, is 0.5 % of the window; at least 5 ms, as timers tick in
    /// milliseconds whatever the scale).
    pub fn scaled(window: Duration) -> Self {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let real = RateLimits::default();
        RateLimits {
            window_ms,
            members_window_ms: window_ms.saturating_mul(90),
            safety_margin_ms: (real.safety_margin_ms.saturating_mul(window_ms) / real.window_ms)
                .max(5),
            ..real
        }
    }

    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms)
    }

    pub fn members_window(&self) -> Duration {
        Duration::from_millis(self.members_window_ms)
    }

    pub fn safety_margin(&self) -> Duration {
        Duration::from_millis(self.safety_margin_ms)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, reason: &str| {
            Err(ConfigError::Setting {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.token_limit == 0 {
            return bad("limits.token_limit", "must be at least 1");
        }
        if self.key_limit == 0 {
            return bad("limits.key_limit", "must be at least 1");
        }
        if self.members_limit == 0 {
            return bad("limits.members_limit", "must be at least 1");
        }
        if self.window_ms == 0 || self.members_window_ms == 0 {
            return bad("limits.window_ms", "windows must be positive");
        }
        Ok(())
    }
}

/// The retry policy is the ports' one ([`webriskops_ports::RetryPolicy`]): what this
/// adapter retries is described in `docs/trello.md`.
pub use webriskops_ports::RetryPolicy;

fn check_retry(retry: &RetryPolicy) -> Result<(), ConfigError> {
    match retry.problem() {
        Some((field, reason)) => Err(ConfigError::Setting {
            field,
            reason: reason.into(),
        }),
        None => Ok(()),
    }
}

/// Everything the adapter needs. Build with [`TrelloConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct TrelloConfig {
    /// The API root; `https://api.trello.com/1` unless the operator sets another (plain
    /// http is accepted only for loopback hosts, see [`parse_api_root`]).
    pub api_root: Url,
    pub api_key: ApiKey,
    pub token: Token,
    pub limits: RateLimits,
    pub retry: RetryPolicy,
    /// Time allowed for one HTTP exchange (rate-limit waits do not count). Default 30 s.
    pub timeout: Duration,
    /// Requests in flight at once. Default 32: throughput is bounded by
    /// `concurrency ÷ latency`, so 32 keeps a 100 requests/s budget (a 1 s test window)
    /// full up to about 300 ms latency; the rate limiter, not this bound, keeps within
    /// Trello's limits.
    pub concurrency: usize,
    /// The key budget this adapter spends with every replica (`serve` on PostgreSQL);
    /// `None` (the default): this process's limiter alone.
    pub shared: Option<SharedKeyBudget>,
}

/// Trello's per-key window spent with every replica through a store
/// ([`webriskops_budget::SharedBudget`]), on behalf of `owner` (the tenant, whose fair
/// share it gets). The key and the token reach the store only as digests.
#[derive(Debug, Clone)]
pub struct SharedKeyBudget {
    pub budget: webriskops_budget::SharedBudget,
    pub owner: String,
}

impl TrelloConfig {
    /// Defaults for everything but the credentials.
    pub fn new(api_key: ApiKey, token: Token) -> Self {
        TrelloConfig {
            api_root: Url::parse(DEFAULT_API_ROOT).expect("valid default URL"),
            api_key,
            token,
            limits: RateLimits::default(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            concurrency: 32,
            shared: None,
        }
    }

    /// Sets the API root after checking it (see [`parse_api_root`]).
    ///
    /// # Errors
    /// The URL is not acceptable.
    pub fn with_api_root(mut self, api_root: &str) -> Result<Self, ConfigError> {
        self.api_root = parse_api_root(api_root)?;
        Ok(self)
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// The first unusable setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_api_root(&self.api_root)?;
        self.limits.validate()?;
        check_retry(&self.retry)?;
        if !(1..=1024).contains(&self.concurrency) {
            return Err(ConfigError::Setting {
                field: "concurrency",
                reason: "must be between 1 and 1024".into(),
            });
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::Setting {
                field: "timeout",
                reason: "must be positive".into(),
            });
        }
        Ok(())
    }
}

/// Parses and checks an operator-provided API root: `https://` anywhere, `http://`
/// only for loopback hosts (127.0.0.0/8, ::1, `localhost`), no user name, password,
/// query or fragment. A trailing slash is removed.
///
/// # Errors
/// Anything else, with the reason.
pub fn parse_api_root(s: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(s.trim()).map_err(|e| ConfigError::ApiRoot {
        url: s.to_owned(),
        reason: e.to_string(),
    })?;
    check_api_root(&url)?;
    let mut url = url;
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

/// Plain http is accepted only for loopback hosts (the simulators).
pub use webriskops_http::is_loopback;

fn check_api_root(url: &Url) -> Result<(), ConfigError> {
    let fail = |reason: &str| {
        Err(ConfigError::ApiRoot {
            // Never echo a password that may have been pasted into the URL.
            url: redact_userinfo(url),
            reason: reason.to_owned(),
        })
    };
    if !url.username().is_empty() || url.password().is_some() {
        return fail("must not contain a user name or password; credentials travel only in the Authorization header");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return fail("must not have a query or fragment");
    }
    if url.host().is_none() {
        return fail("must have a host");
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => fail("plain http is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); use https"),
        _ => fail("the scheme must be https (or http for a loopback host)"),
    }
}

fn redact_userinfo(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_root_accepts_https_anywhere_and_http_only_on_loopback() {
        assert!(parse_api_root("https://api.trello.com/1").is_ok());
        assert!(parse_api_root("https://proxy.example.com/trello/1/").is_ok());
        assert_eq!(
            parse_api_root("http://127.0.0.1:8080/1/").unwrap().as_str(),
            "http://127.0.0.1:8080/1"
        );
        assert!(parse_api_root("http://127.8.9.10/1").is_ok());
        assert!(parse_api_root("http://[::1]:9/1").is_ok());
        assert!(parse_api_root("http://localhost:9/1").is_ok());
        for bad in [
            "http://api.trello.com/1",
            "http://10.0.0.1/1",
            "http://192.168.1.1/1",
            "http://[::2]/1",
            "http://localhost.example.com/1",
            "ftp://127.0.0.1/1",
            "https://user:pw@api.trello.com/1",
            "https://api.trello.com/1?key=x",
            "not a url",
        ] {
            let err = parse_api_root(bad).expect_err(bad);
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
        let err = parse_api_root("http://example.com/1").unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(2, 0.0), Duration::from_millis(1000));
        assert_eq!(p.backoff(10, 0.0), Duration::from_millis(16_000));
        assert_eq!(p.backoff(1, 0.999_999).as_millis(), 250);
    }

    #[test]
    fn settings_deserialize_with_defaults() {
        let l: RateLimits = serde_json::from_str(r#"{"token_limit": 50}"#).unwrap();
        assert_eq!(l.token_limit, 50);
        assert_eq!(l.key_limit, 300);
        assert_eq!(l.window_ms, 10_000);
        let r: RetryPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(r, RetryPolicy::default());
        assert_eq!(r.deadline(), Duration::from_secs(60));
        let r: RetryPolicy = serde_json::from_str(r#"{"deadline_ms": 5000}"#).unwrap();
        assert_eq!(r.deadline(), Duration::from_secs(5));
        assert!(serde_json::from_str::<RateLimits>(r#"{"nope": 1}"#).is_err());
    }
}
