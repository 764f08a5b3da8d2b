//! The HTTP exchange: `POST <api_url>` with `{query, variables, operationName}`, the
//! `Authorization` header, the rate limiter, bounded reads, and the one retry loop of
//! the adapter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{field, Instrument};
use url::Url;
use webriskops_ports::{ErrorSource, PortError};

use crate::config::{is_loopback, ConfigError, LinearSettings, MAX_QUERY_COMPLEXITY};
use crate::errors::{excerpt, map_answer, Outcome, Redactor};
use crate::limiter::{self, header_u64, Budget};
use crate::ops::{OpKind, Operation};
use crate::secret::Credential;
use webriskops_http::{strip_urls, Cause};

/// The most of a 2xx answer that is read: 16 MiB. The largest legitimate answer is a
/// page of [`crate::ops::PAGE_SIZE`] issues with their descriptions, labels and
/// attachments; a larger answer is not Linear's: reading stops and the request fails.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The most of any other answer that is read: a GraphQL error document (a 400
/// `RATELIMITED`, a validation error) is a few kilobytes.
pub const MAX_ERROR_BODY_BYTES: usize = 256 * 1024;

/// Requests sent, by kind. Each attempt counts, retries included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    pub queries: u64,
    pub mutations: u64,
    /// Answers that were `RATELIMITED` (HTTP 400 or 429).
    pub rate_limited: u64,
    /// Attempts after the first, for any reason.
    pub retries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    queries: AtomicU64,
    mutations: AtomicU64,
    rate_limited: AtomicU64,
    retries: AtomicU64,
}

/// How one attempt ended, when not with data.
enum Failure {
    /// Answered: the one mapping decided (see `errors::map_answer`).
    Answered {
        error: PortError,
        retry: bool,
        retry_after: Option<Duration>,
    },
    /// Answered 2xx with a body larger than [`MAX_BODY_BYTES`].
    TooLarge { status: u16 },
    /// The connection could not be made: nothing was sent.
    NotSent(Cause),
    /// Sent, but no (complete) answer: may have been applied.
    Lost(Cause),
}

impl Failure {
    /// The client error kept as the source of the port error this failure becomes.
    fn kept_source(&self) -> Option<ErrorSource> {
        match self {
            Failure::NotSent(c) | Failure::Lost(c) => c.source.clone(),
            _ => None,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn epoch_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

/// The GraphQL side of the adapter: one client per credential.
pub struct Transport {
    client: reqwest::Client,
    url: Url,
    auth: HeaderValue,
    credential_kind: &'static str,
    redactor: Redactor,
    budget: Arc<Budget>,
    settings: LinearSettings,
    permits: Semaphore,
    counters: Counters,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("url", &self.url.as_str())
            .field("credential", &self.credential_kind)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Request<'a> {
    query: &'a str,
    variables: &'a Value,
    #[serde(rename = "operationName")]
    operation_name: &'a str,
}

impl Transport {
    /// A transport for `credential` with `settings`.
    ///
    /// # Errors
    /// A setting is unusable, or the credential cannot travel in a header.
    pub fn new(settings: &LinearSettings, credential: &Credential) -> Result<Self, ConfigError> {
        let url = settings.validate()?;
        let client = http_client(&url, settings.timeout(), settings.concurrency)?;
        let mut auth = HeaderValue::from_str(&credential.header_value()).map_err(|_| {
            ConfigError::Setting {
                field: "credential",
                reason: "contains characters that cannot travel in a header".into(),
            }
        })?;
        auth.set_sensitive(true);
        Ok(Transport {
            client,
            url,
            auth,
            credential_kind: credential.kind(),
            redactor: Redactor::new(&[credential.secret().expose()]),
            budget: Budget::shared(credential, &settings.limits),
            settings: settings.clone(),
            permits: Semaphore::new(settings.concurrency),
            counters: Counters::default(),
        })
    }

    pub fn stats(&self) -> RequestStats {
        RequestStats {
            queries: self.counters.queries.load(Ordering::Relaxed),
            mutations: self.counters.mutations.load(Ordering::Relaxed),
            rate_limited: self.counters.rate_limited.load(Ordering::Relaxed),
            retries: self.counters.retries.load(Ordering::Relaxed),
        }
    }

    /// Runs `op` with `variables`, retrying what is safe to retry (the adapter's only
    /// retry loop), and returns the answer's `data`.
    ///
    /// # Errors
    /// Every failure as a [`PortError`] by meaning (see `docs/linear.md`, "Error
    /// mapping"). A mutation whose answer was lost, or that got a 5xx or a partial
    /// answer, is `OutcomeUnknown` and was sent once only.
    pub async fn execute(&self, op: &Operation, variables: Value) -> Result<Value, PortError> {
        let body = serde_json::to_vec(&Request {
            query: op.document,
            variables: &variables,
            operation_name: op.name,
        })
        .map_err(|e| PortError::other(format!("cannot encode Linear {}: {e}", op.name)))?;
        let retry = &self.settings.retry;
        let deadline = retry.deadline();
        // Time spent exchanging with Linear and backing off; waits for the rate limiter
        // and for a connection slot are not counted (see `RetryPolicy::deadline_ms`).
        let mut spent = Duration::ZERO;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let timeout = self.settings.timeout().min(deadline.saturating_sub(spent));
            let (result, took) = self.attempt(op, &body, attempt, timeout).await;
            spent += took;
            let failure = match result {
                Ok(data) => return Ok(data),
                Err(f) => f,
            };
            let reason = reason_of(&failure);
            let (retry_ok, error, retry_after) = self.judge(op, failure);
            if !(retry_ok && attempt <= retry.max_retries) {
                return Err(error);
            }
            let backoff = retry.backoff(attempt, rand::thread_rng().gen::<f64>());
            let wait = backoff.max(retry_after.unwrap_or_default());
            if spent + wait >= deadline {
                tracing::warn!(
                    operation = op.name,
                    attempt,
                    elapsed_ms = millis(spent),
                    reason = %reason,
                    deadline_ms = millis(deadline),
                    "giving up on Linear request: its deadline has passed"
                );
                return Err(past_deadline(
                    error,
                    op.name,
                    attempt,
                    spent,
                    deadline,
                    retry_after,
                ));
            }
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                operation = op.name,
                attempt,
                max_attempts = retry.max_retries.saturating_add(1),
                elapsed_ms = millis(spent),
                reason = %reason,
                wait_ms = millis(wait),
                "retrying Linear request"
            );
            tokio::time::sleep(wait).await;
            spent += wait;
        }
    }

    /// Whether a failure may be retried, the error to report if not, and the wait
    /// Linear asked for.
    fn judge(&self, op: &Operation, f: Failure) -> (bool, PortError, Option<Duration>) {
        let kept = f.kept_source();
        let (retry, error, retry_after) = self.judge_failure(op, f);
        match kept {
            Some(source) => (retry, error.with_shared_source(source), retry_after),
            None => (retry, error, retry_after),
        }
    }

    fn judge_failure(&self, op: &Operation, f: Failure) -> (bool, PortError, Option<Duration>) {
        match f {
            Failure::Answered {
                error,
                retry,
                retry_after,
            } => (retry, error, retry_after),
            Failure::TooLarge { status } => {
                let message = format!(
                    "Linear's answer ({status}) to {} is larger than {} MiB, the most the adapter reads; this is not an answer Linear gives: check that {} points at Linear",
                    op.name,
                    MAX_BODY_BYTES / (1024 * 1024),
                    crate::config::API_URL_ENV,
                );
                let e = match op.kind {
                    OpKind::Query => PortError::Other {
                        context: Default::default(),
                        message,
                    },
                    OpKind::Mutation => PortError::OutcomeUnknown {
                        context: Default::default(),
                        message,
                    },
                };
                (false, e, None)
            }
            Failure::NotSent(msg) => (
                true,
                PortError::Unavailable {
                    context: Default::default(),
                    message: format!("cannot reach Linear for {}: {msg}", op.name),
                },
                None,
            ),
            Failure::Lost(msg) => {
                let message = format!("no complete answer to Linear {}: {msg}", op.name);
                match op.kind {
                    OpKind::Query => (
                        true,
                        PortError::Unavailable {
                            context: Default::default(),
                            message,
                        },
                        None,
                    ),
                    // A write may have happened: never sent twice. The caller looks the
                    // issue up by its attachment URL or client id.
                    OpKind::Mutation => (
                        false,
                        PortError::OutcomeUnknown {
                            context: Default::default(),
                            message: format!("{message}; the write may have been applied"),
                        },
                        None,
                    ),
                }
            }
        }
    }

    async fn attempt(
        &self,
        op: &Operation,
        body: &[u8],
        attempt: u32,
        timeout: Duration,
    ) -> (Result<Value, Failure>, Duration) {
        let Ok(_permit) = self.permits.acquire().await else {
            return (
                Err(Failure::Answered {
                    error: PortError::other("the Linear adapter is shutting down"),
                    retry: false,
                    retry_after: None,
                }),
                Duration::ZERO,
            );
        };
        // Held until the answer has been read or the attempt ended otherwise (error,
        // timeout, this future dropped): the request's units leave the buckets then.
        let slot = self.budget.acquire(op.name).await;
        let (waited, taken) = (slot.waited(), slot.taken());
        let span = tracing::debug_span!(
            "linear_request",
            operation = op.name,
            attempt,
            wait_ms = millis(waited),
            status = field::Empty,
            elapsed_ms = field::Empty,
        );
        let started = Instant::now();
        let result = async {
            match op.kind {
                OpKind::Query => self.counters.queries.fetch_add(1, Ordering::Relaxed),
                OpKind::Mutation => self.counters.mutations.fetch_add(1, Ordering::Relaxed),
            };
            let req = self
                .client
                .post(self.url.clone())
                .header(AUTHORIZATION, self.auth.clone())
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json")
                .timeout(timeout)
                .body(body.to_vec());
            let answer = read_capped(req, timeout, &self.redactor).await;
            let span = tracing::Span::current();
            span.record("elapsed_ms", millis(started.elapsed()));
            let (status, headers, bytes) = match answer {
                Ok(a) => a,
                Err(f) => {
                    if let Failure::TooLarge { status } = &f {
                        span.record("status", *status);
                        tracing::warn!(
                            status = *status,
                            max_bytes = MAX_BODY_BYTES,
                            "linear answered more than the adapter reads"
                        );
                    }
                    return Err(f);
                }
            };
            span.record("status", status);
            tracing::debug!(status, "linear answered");
            self.observe_limits(op, &headers, taken);
            let retry_after = self.announced_wait(&headers);
            match map_answer(op, status, &bytes, retry_after, &self.redactor) {
                Outcome::Data(data) => Ok(data),
                Outcome::Failed { error, retry } => {
                    if matches!(error, PortError::RateLimited { .. }) {
                        self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                        if retry_after.is_none() {
                            // No usable headers: assume the buckets are empty.
                            self.budget.drain();
                        }
                    }
                    Err(Failure::Answered {
                        error,
                        retry,
                        retry_after,
                    })
                }
            }
        }
        .instrument(span)
        .await;
        drop(slot);
        (result, started.elapsed())
    }

    /// The headers' corrections to the buckets, the operation's real cost, and a warn
    /// for each hostile value clamped.
    fn observe_limits(&self, op: &Operation, h: &HeaderMap, taken: u32) {
        if let Some(cost) = header_u64(h, "x-complexity") {
            if cost > u64::from(MAX_QUERY_COMPLEXITY) {
                tracing::warn!(
                    header = "x-complexity",
                    announced = cost,
                    used = MAX_QUERY_COMPLEXITY,
                    "clamped a rate-limit header from Linear"
                );
            }
            let cost = u32::try_from(cost).unwrap_or(u32::MAX);
            self.budget.settle(op.name, taken, cost);
        }
        if self.settings.limits.follow_headers {
            for c in self.budget.observe(h) {
                tracing::warn!(
                    header = %c.header,
                    announced = c.announced,
                    used = c.used,
                    "clamped a rate-limit header from Linear"
                );
            }
        }
    }

    /// The wait Linear announced: for each exhausted bucket (`Remaining: 0`, requests,
    /// complexity or endpoint), the time until its reset (UTC epoch ms), the longest of
    /// them; else `Retry-After` in seconds. Each is capped at one period of the limits
    /// and logged when cut.
    fn announced_wait(&self, h: &HeaderMap) -> Option<Duration> {
        let cap = self.settings.limits.period();
        let now = epoch_ms_now();
        let mut wait: Option<Duration> = None;
        for prefix in [
            "x-ratelimit-requests",
            "x-ratelimit-complexity",
            "x-ratelimit-endpoint-requests",
        ] {
            let remaining = header_u64(h, &format!("{prefix}-remaining"));
            let reset_name = format!("{prefix}-reset");
            let (Some(0), Some(reset)) = (remaining, header_u64(h, &reset_name)) else {
                continue;
            };
            let (w, clamped) = limiter::until_reset(&reset_name, reset, now, cap);
            if let Some(c) = clamped {
                tracing::warn!(
                    header = %c.header,
                    announced_ms = c.announced,
                    used_ms = c.used,
                    "clamped a rate-limit header from Linear"
                );
            }
            wait = Some(wait.map_or(w, |x| x.max(w)));
        }
        wait.or_else(|| {
            let secs = header_u64(h, "retry-after")?;
            let announced = Duration::from_secs(secs);
            if announced > cap {
                tracing::warn!(
                    header = "retry-after",
                    announced_ms = secs.saturating_mul(1000),
                    used_ms = millis(cap),
                    "clamped a rate-limit header from Linear"
                );
                return Some(cap);
            }
            Some(announced)
        })
    }
}

/// The HTTP client: no redirects (a redirect would carry the `Authorization` header
/// elsewhere), rustls, and no proxy for loopback.
pub(crate) fn http_client(
    url: &Url,
    timeout: Duration,
    concurrency: usize,
) -> Result<reqwest::Client, ConfigError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("webriskops-linear/", env!("CARGO_PKG_VERSION")))
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency)
        .connect_timeout(timeout.min(Duration::from_secs(10)));
    if is_loopback(url) {
        // A proxy from the environment must not capture loopback traffic.
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|e| ConfigError::Client(e.to_string()))
}

/// Sends the request and reads the answer: at most [`MAX_BODY_BYTES`] of a 2xx body
/// (more fails as `TooLarge` without reading the rest) and [`MAX_ERROR_BODY_BYTES`] of
/// any other (its start is kept). A body-capped read like the Trello adapter's: a
/// candidate for a shared HTTP helper.
async fn read_capped(
    req: reqwest::RequestBuilder,
    timeout: Duration,
    redactor: &Redactor,
) -> Result<(u16, HeaderMap, Vec<u8>), Failure> {
    let mut resp = req
        .send()
        .await
        .map_err(|e| classify(e, timeout, redactor))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let ok = (200..300).contains(&status);
    let cap = if ok {
        MAX_BODY_BYTES
    } else {
        MAX_ERROR_BODY_BYTES
    };
    let announced = resp
        .content_length()
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    if ok && announced.is_some_and(|n| n > cap) {
        return Err(Failure::TooLarge { status });
    }
    let mut bytes = Vec::with_capacity(announced.unwrap_or(0).min(cap).min(1 << 20));
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| classify(e, timeout, redactor))?
    {
        let room = cap - bytes.len();
        if chunk.len() > room {
            if ok {
                return Err(Failure::TooLarge { status });
            }
            bytes.extend_from_slice(&chunk[..room]);
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((status, headers, bytes))
}

/// A client error as text without URLs, and whether the request can have reached Linear.
fn classify(e: reqwest::Error, timeout: Duration, redactor: &Redactor) -> Failure {
    let e = e.without_url();
    let mut text = if e.is_timeout() {
        format!("timed out after {timeout:?}")
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    let text = excerpt(&strip_urls(&redactor.clean(&text)), 300);
    let mut raw = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        raw.push_str(": ");
        raw.push_str(&s.to_string());
        source = s.source();
    }
    let cleaned = strip_urls(&redactor.clean(&raw));
    if e.is_connect() {
        Failure::NotSent(Cause::new(e, &raw, &cleaned, text))
    } else if e.is_builder() {
        Failure::Answered {
            error: PortError::other(format!("cannot build the request: {text}")),
            retry: false,
            retry_after: None,
        }
    } else {
        Failure::Lost(Cause::new(e, &raw, &cleaned, text))
    }
}

/// The failed attempt's reason, for the retry log line.
fn reason_of(f: &Failure) -> String {
    match f {
        Failure::Answered { error, .. } => error.kind().to_owned(),
        Failure::TooLarge { .. } => "answer too large".to_owned(),
        Failure::NotSent(m) => format!("connection failed before sending: {m}"),
        Failure::Lost(m) => format!("answer lost: {m}"),
    }
}

/// The error of a request whose deadline passed: `RateLimited` with the wait when
/// Linear asked for one (the caller can schedule it), else `Unavailable` (transient).
fn past_deadline(
    last: PortError,
    op: &str,
    attempts: u32,
    spent: Duration,
    deadline: Duration,
    retry_after: Option<Duration>,
) -> PortError {
    let message = format!(
        "gave up on Linear {op} after {attempts} attempt{} in {:.1} s: the request's deadline of {:.1} s (retry.deadline_ms) leaves no time for another; last failure: {last}",
        if attempts == 1 { "" } else { "s" },
        spent.as_secs_f64(),
        deadline.as_secs_f64(),
    );
    match last {
        PortError::RateLimited { .. } => PortError::RateLimited {
            context: Default::default(),
            retry_after,
            message,
        },
        _ => PortError::Unavailable {
            context: Default::default(),
            message,
        },
    }
}

/// Posts a form (OAuth endpoints) once, without retries (an authorization code is
/// single-use; a refresh token may rotate), and reads the answer within the caps.
/// Returns the status and body; transport failures as `PortError`s.
pub(crate) async fn post_form(
    client: &reqwest::Client,
    url: &Url,
    bearer: Option<&str>,
    form: &[(&str, &str)],
    timeout: Duration,
    redactor: &Redactor,
    what: &str,
) -> Result<(u16, Vec<u8>), PortError> {
    let mut req = client
        .post(url.clone())
        .header(ACCEPT, "application/json")
        .timeout(timeout)
        .form(form);
    if let Some(t) = bearer {
        let mut v =
            HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| PortError::InvalidInput {
                context: Default::default(),
                message: format!("{what}: the token cannot travel in a header"),
            })?;
        v.set_sensitive(true);
        req = req.header(AUTHORIZATION, v);
    }
    match read_capped(req, timeout, redactor).await {
        Ok((status, _, body)) => Ok((status, body)),
        Err(Failure::NotSent(m)) => Err(PortError::Unavailable {
            context: Default::default(),
            message: format!("cannot reach Linear for {what}: {m}"),
        }),
        Err(Failure::Lost(m)) => Err(PortError::OutcomeUnknown {
            context: Default::default(),
            message: format!("no complete answer to {what}: {m}"),
        }),
        Err(Failure::TooLarge { status }) => Err(PortError::Other {
            context: Default::default(),
            message: format!(
                "Linear's answer ({status}) to {what} is larger than {} MiB, the most the adapter reads",
                MAX_BODY_BYTES / (1024 * 1024)
            ),
        }),
        Err(Failure::Answered { error, .. }) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_stripped_from_client_errors() {
        assert_eq!(
            strip_urls("error sending request for url (http://127.0.0.1:9/graphql): closed"),
            "error sending request for url (<url>): closed"
        );
        assert_eq!(
            strip_urls("a https://x/y b http://z c"),
            "a <url> b <url> c"
        );
    }

    #[test]
    fn deadline_keeps_a_rate_limit_wait() {
        let e = past_deadline(
            PortError::RateLimited {
                context: Default::default(),
                retry_after: None,
                message: "x".into(),
            },
            "Teams",
            2,
            Duration::from_secs(1),
            Duration::from_secs(2),
            Some(Duration::from_secs(30)),
        );
        assert!(
            matches!(e, PortError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(30))
        );
        let e = past_deadline(
            PortError::OutcomeUnknown {
                context: Default::default(),
                message: "x".into(),
            },
            "Teams",
            1,
            Duration::ZERO,
            Duration::from_secs(2),
            None,
        );
        assert_eq!(e.kind(), "unavailable");
    }
}
