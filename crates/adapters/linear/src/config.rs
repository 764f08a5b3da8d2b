//! Settings of the Linear adapter: plain serde data with documented defaults, loadable
//! by the application's configuration like the Trello adapter's.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::secret::Credential;

/// Linear's GraphQL endpoint (FACTS.md "Endpoint / auth").
pub const DEFAULT_API_URL: &str = "https://api.linear.app/graphql";

/// The environment variable the application maps to [`LinearSettings::api_url`]. The
/// adapter itself never reads the environment.
pub const API_URL_ENV: &str = "WEBRISKOPS_LINEAR_API_URL";

/// Why settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid Linear API URL {url:?}: {reason}")]
    ApiUrl { url: String, reason: String },
    #[error("invalid Linear adapter setting {field}: {reason}")]
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

/// Client-side rate limits: two leaky buckets per credential, one of requests and one of
/// complexity points, refilled continuously at `limit / period` (FACTS.md "Rate
/// limits"). Defaults are Linear's published limits; the request limit of an API key
/// is 2,500 per hour (the documentation also says 5,000: the smaller is used).
///
/// With `follow_headers`, the `X-RateLimit-{Requests,Complexity}-{Limit,Remaining,
/// Reset}` headers correct the buckets: an announced limit can only lower the
/// configured one, `Remaining` can only lower the bucket's level (never above the
/// limit), and a reset further than one `period_ms` away is taken as one period and
/// logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Requests per period with a personal API key. Default 2 500.
    pub api_key_requests: u32,
    /// Complexity points per period with a personal API key. Default 3 000 000.
    pub api_key_complexity: u32,
    /// Requests per period with an OAuth token. Default 5 000.
    pub oauth_requests: u32,
    /// Complexity points per period with an OAuth token. Default 2 000 000.
    pub oauth_complexity: u32,
    /// The period of the limits, in milliseconds. Default 3 600 000 (one hour).
    pub period_ms: u64,
    /// Complexity assumed for an operation before Linear has reported its cost
    /// (`X-Complexity`) once. Default 1 000.
    pub initial_complexity_estimate: u32,
    /// Correct the buckets with Linear's rate-limit headers. Default true.
    pub follow_headers: bool,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            api_key_requests: 2_500,
            api_key_complexity: 3_000_000,
            oauth_requests: 5_000,
            oauth_complexity: 2_000_000,
            period_ms: 3_600_000,
            initial_complexity_estimate: 1_000,
            follow_headers: true,
        }
    }
}

/// Linear refuses any single query over this many complexity points (FACTS.md "Rate
/// limits"); an announced `X-Complexity` above it is clamped to it.
pub const MAX_QUERY_COMPLEXITY: u32 = 10_000;

impl RateLimits {
    pub fn period(&self) -> Duration {
        Duration::from_millis(self.period_ms)
    }

    /// `(requests, complexity)` per period for a credential of this kind.
    pub fn for_credential(&self, credential: &Credential) -> (u32, u32) {
        match credential {
            Credential::ApiKey(_) => (self.api_key_requests, self.api_key_complexity),
            Credential::OAuth(_) => (self.oauth_requests, self.oauth_complexity),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, reason: &str| {
            Err(ConfigError::Setting {
                field,
                reason: reason.to_owned(),
            })
        };
        for (field, v) in [
            ("limits.api_key_requests", self.api_key_requests),
            ("limits.api_key_complexity", self.api_key_complexity),
            ("limits.oauth_requests", self.oauth_requests),
            ("limits.oauth_complexity", self.oauth_complexity),
        ] {
            if v == 0 {
                return bad(field, "must be at least 1");
            }
        }
        if self.period_ms == 0 {
            return bad("limits.period_ms", "must be positive (milliseconds)");
        }
        if !(1..=MAX_QUERY_COMPLEXITY).contains(&self.initial_complexity_estimate) {
            return bad(
                "limits.initial_complexity_estimate",
                "must be between 1 and 10000 (Linear's per-query maximum)",
            );
        }
        Ok(())
    }
}

/// The retry policy is the ports' one ([`webriskops_ports::RetryPolicy`]): what this
/// adapter retries is described in `docs/linear.md`.
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

/// Everything but the credential, as the operator configures it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinearSettings {
    /// The GraphQL endpoint. Default `https://api.linear.app/graphql`; plain http only
    /// for loopback hosts (see [`parse_api_url`]).
    pub api_url: String,
    /// Time allowed for one HTTP exchange, in milliseconds. Default 30 000.
    pub timeout_ms: u64,
    /// Requests in flight at once. Default 8.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub limits: RateLimits,
}

impl Default for LinearSettings {
    fn default() -> Self {
        LinearSettings {
            api_url: DEFAULT_API_URL.to_owned(),
            timeout_ms: 30_000,
            concurrency: 8,
            retry: RetryPolicy::default(),
            limits: RateLimits::default(),
        }
    }
}

impl LinearSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Checks every setting and returns the parsed API URL.
    ///
    /// # Errors
    /// The first unusable setting.
    pub fn validate(&self) -> Result<Url, ConfigError> {
        let url = parse_api_url(&self.api_url)?;
        self.limits.validate()?;
        check_retry(&self.retry)?;
        if !(1..=256).contains(&self.concurrency) {
            return Err(ConfigError::Setting {
                field: "concurrency",
                reason: "must be between 1 and 256".into(),
            });
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::Setting {
                field: "timeout_ms",
                reason: "must be positive".into(),
            });
        }
        Ok(url)
    }
}

/// Parses and checks an operator-provided API URL: `https://` anywhere, `http://` only
/// for loopback hosts (127.0.0.0/8, ::1, `localhost`), no user name, password, query or
/// fragment.
///
/// # Errors
/// Anything else, with the reason.
pub fn parse_api_url(s: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(s.trim()).map_err(|e| ConfigError::ApiUrl {
        url: webriskops_domain::text::echo_untrusted(s).into_owned(),
        reason: e.to_string(),
    })?;
    check_url(&url)?;
    Ok(url)
}

/// Plain http is accepted only for loopback hosts (the simulators).
pub use webriskops_http::is_loopback;

pub(crate) fn check_url(url: &Url) -> Result<(), ConfigError> {
    let fail = |reason: &str| {
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        Err(ConfigError::ApiUrl {
            // Never echo a password that may have been pasted into the URL.
            url: shown.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_url_accepts_https_anywhere_and_http_only_on_loopback() {
        assert!(parse_api_url(DEFAULT_API_URL).is_ok());
        assert!(parse_api_url("http://127.0.0.1:8080/graphql").is_ok());
        assert!(parse_api_url("http://[::1]:9/graphql").is_ok());
        assert!(parse_api_url("http://localhost:9/graphql").is_ok());
        for bad in [
            "http://api.linear.app/graphql",
            "http://10.0.0.1/graphql",
            "http://localhost.example.com/graphql",
            "ftp://127.0.0.1/graphql",
            "https://user:pw@api.linear.app/graphql",
            "https://api.linear.app/graphql?key=x",
            "not a url",
        ] {
            let err = parse_api_url(bad).expect_err(bad);
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
        let err = parse_api_url("http://example.com/graphql").unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[test]
    fn settings_deserialize_with_documented_defaults() {
        let s: LinearSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(s, LinearSettings::default());
        assert_eq!(s.api_url, DEFAULT_API_URL);
        assert_eq!(s.timeout(), Duration::from_secs(30));
        assert_eq!(s.limits.api_key_requests, 2_500);
        assert_eq!(s.limits.period(), Duration::from_secs(3600));
        assert_eq!(s.retry.deadline(), Duration::from_secs(60));
        let s: LinearSettings = serde_json::from_str(
            r#"{"limits": {"oauth_requests": 100}, "retry": {"max_retries": 1}}"#,
        )
        .unwrap();
        assert_eq!(s.limits.oauth_requests, 100);
        assert_eq!(s.limits.oauth_complexity, 2_000_000);
        assert_eq!(s.retry.max_retries, 1);
        assert!(serde_json::from_str::<LinearSettings>(r#"{"nope": 1}"#).is_err());
        assert!(s.validate().is_ok());
        let bad = LinearSettings {
            limits: RateLimits {
                initial_complexity_estimate: 20_000,
                ..RateLimits::default()
            },
            ..LinearSettings::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(2, 0.0), Duration::from_millis(1000));
        assert_eq!(p.backoff(10, 0.0), Duration::from_millis(16_000));
        assert_eq!(p.backoff(1, 0.999_999).as_millis(), 250);
    }
}
