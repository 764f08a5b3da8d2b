//! The HTTP exchange: authentication header, rate limiting, concurrency, tracing,
//! request counting, and the one retry loop of the adapter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{field, Instrument};
use url::Url;
use webriskops_ports::{ErrorSource, PortError};

use crate::catalog::{self, HttpMethod, Op, SentRequest};
use crate::config::{is_loopback, ConfigError, RateLimits, RetryPolicy, TrelloConfig};
use crate::errors::{excerpt, map_status, parse_body, ErrorContext, Redactor};
use crate::limiter::{self, KeyBudget, TokenBudget};
use crate::oauth::authorization_header;
use crate::shared;
use webriskops_budget::SlotRequest;
use webriskops_http::{strip_urls, Cause};

/// URLs longer than this are refused before sending: Trello answers 414 at about 8 KB
/// (FACTS.md §0).
pub(crate) const MAX_URL_BYTES: usize = 7_680;

/// The most of a successful answer that is read: 64 MiB. The largest legitimate answer
/// is a board listing of 1,000 cards (Trello's `limit` maximum, FACTS.md §2) with
/// descriptions at Trello's 16,384-character maximum (§1): about 17 MB of JSON in
/// ASCII, 20 MB with checklists, 49 MB if every description were non-ASCII text.
/// A larger answer is not Trello's: reading stops and the request fails.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The most of an error answer that is read: only a short excerpt of it is ever shown.
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Requests sent, by kind. Each attempt counts, retries included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    /// GET requests sent (a `/batch` counts once).
    pub reads: u64,
    /// POST, PUT and DELETE requests sent.
    pub writes: u64,
    /// Answers with status 429.
    pub rate_limited_429s: u64,
    /// Of those, the 429s for the whole key (`API_KEY_LIMIT_EXCEEDED`).
    pub key_rate_limited_429s: u64,
    /// Attempts after the first, for any reason.
    pub retries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    reads: AtomicU64,
    writes: AtomicU64,
    rate_limited: AtomicU64,
    key_rate_limited: AtomicU64,
    retries: AtomicU64,
}

/// What one request costs against Trello's limits: one, a `/batch` of up to ten routes
/// included. Trello's batch reference presents batching as the way to "reduce the volume
/// of calls you are making to the API and more easily stay within your API rate limit"
/// (quoted in trello-for-wolves `lib/resources/Batch.d.ts`; FACTS.md §8), which it would
/// not do if each route counted; the simulator counts a batch once. Counting its routes
/// instead left about a third of the key's first window unspent in the fleet benchmark
/// (20 readiness batches of five or six routes each, charged as that many requests
/// where Trello sees one each).
const REQUEST_COST: u32 = 1;

/// One request to make: an operation, its path arguments, query and body.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub op: Op,
    pub args: Vec<String>,
    /// The path holds the token (`/tokens/{token}`): recorded as `<token>`.
    pub secret_path: bool,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Map<String, Value>>,
    /// The object for error messages, e.g. `board 5f…`.
    pub what: Option<String>,
    /// Routes carried inside a batch, for the recorder.
    pub inner: Vec<SentRequest>,
}

impl Call {
    pub(crate) fn new(op: Op, args: &[&str]) -> Self {
        Call {
            op,
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            secret_path: false,
            query: Vec::new(),
            body: None,
            what: None,
            inner: Vec::new(),
        }
    }

    pub(crate) fn query(mut self, k: &'static str, v: impl Into<String>) -> Self {
        debug_assert!(
            self.op.query.contains(&k),
            "{k} is not a query parameter of {}",
            self.op.template
        );
        self.query.push((k, v.into()));
        self
    }

    pub(crate) fn body(mut self, body: Map<String, Value>) -> Self {
        debug_assert!(
            body.keys().all(|k| self.op.body.contains(&k.as_str())),
            "body fields {:?} not all declared for {}",
            body.keys().collect::<Vec<_>>(),
            self.op.template
        );
        self.body = Some(body);
        self
    }

    pub(crate) fn what(mut self, what: impl Into<String>) -> Self {
        self.what = Some(what.into());
        self
    }

    pub(crate) fn secret_path(mut self) -> Self {
        self.secret_path = true;
        self
    }

    pub(crate) fn sent(&self, in_batch: bool) -> SentRequest {
        let names = catalog::placeholders(self.op.template);
        SentRequest {
            method: if in_batch {
                HttpMethod::Get
            } else {
                self.op.method
            },
            path_template: self.op.template.to_owned(),
            path_params: names
                .iter()
                .zip(&self.args)
                .map(|(n, v)| {
                    let v = if self.secret_path && *n == "token" {
                        "<token>".to_owned()
                    } else {
                        v.clone()
                    };
                    ((*n).to_owned(), v)
                })
                .collect(),
            query_params: self.query.iter().map(|(k, _)| (*k).to_owned()).collect(),
            body_params: self
                .body
                .as_ref()
                .map(|b| b.keys().cloned().collect())
                .unwrap_or_default(),
            in_batch,
        }
    }

    pub(crate) fn context(&self) -> ErrorContext {
        ErrorContext {
            method: self.op.method,
            route: self.op.template,
            subject: self.op.subject,
            what: self.what.clone(),
        }
    }

    /// The route with its query, relative to the API root (for `/batch`).
    pub(crate) fn relative(&self) -> String {
        let mut u = Url::parse("http://x/").expect("valid");
        {
            let mut segs = u.path_segments_mut().expect("base");
            segs.clear();
            segs.extend(catalog::segments(self.op.template, &self.arg_refs()));
        }
        if !self.query.is_empty() {
            let mut q = u.query_pairs_mut();
            for (k, v) in &self.query {
                q.append_pair(k, v);
            }
        }
        let s = u.as_str();
        s["http://x".len()..].to_owned()
    }

    fn arg_refs(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }
}

/// The answer to a successful request.
#[derive(Debug)]
pub(crate) struct Answer {
    pub body: Vec<u8>,
}

/// How a failed attempt ends.
enum Failure {
    /// Answered with a status that may succeed later (429, 5xx): not applied.
    Status {
        status: u16,
        body: Vec<u8>,
        retry_after: Option<Duration>,
    },
    /// Answered with a final status.
    Final(PortError),
    /// Answered 2xx with a body larger than [`MAX_BODY_BYTES`]: a write was applied,
    /// a read cannot be used. Never retried (the same answer would come again).
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The failed attempt's reason, for the retry log line.
fn reason_of(f: &Failure) -> String {
    match f {
        Failure::Status { status: 429, .. } => "rate limited (429)".to_owned(),
        Failure::Status { status, .. } => format!("server error ({status})"),
        Failure::Final(e) => e.kind().to_owned(),
        Failure::TooLarge { .. } => "answer too large".to_owned(),
        Failure::NotSent(m) => format!("connection failed before sending: {m}"),
        Failure::Lost(m) => format!("answer lost: {m}"),
    }
}

/// The HTTP side of the adapter.
pub(crate) struct Transport {
    client: reqwest::Client,
    root: Url,
    auth: HeaderValue,
    redactor: Redactor,
    token_budget: Arc<TokenBudget>,
    key_budget: Arc<KeyBudget>,
    limits: RateLimits,
    /// The key budget shared with every replica, when configured: it replaces this
    /// process's key window (the token and members windows stay).
    shared: Option<SharedSlots>,
    retry: RetryPolicy,
    timeout: Duration,
    permits: Semaphore,
    counters: Counters,
    recorder: Mutex<Option<Vec<SentRequest>>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("root", &self.root.as_str())
            .field("key", &self.key_budget.key_hint())
            .field("limits", &self.limits)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub(crate) fn new(config: &TrelloConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("webriskops-trello/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(config.concurrency)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)));
        if is_loopback(&config.api_root) {
            // A proxy from the environment must not capture loopback traffic.
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        let mut auth = HeaderValue::from_str(&authorization_header(&config.api_key, &config.token))
            .map_err(|_| ConfigError::Setting {
                field: "token",
                reason: "contains characters that cannot travel in a header".into(),
            })?;
        auth.set_sensitive(true);
        // The token also travels in the path of `/tokens/{token}`, percent-encoded: a
        // server echoing that path must not bring it back into an error.
        let encoded_token = catalog::encoded_segment(config.token.expose());
        Ok(Transport {
            client,
            root: config.api_root.clone(),
            auth,
            redactor: Redactor::new(&[
                config.token.expose(),
                &encoded_token,
                config.api_key.expose(),
            ]),
            token_budget: TokenBudget::shared(&config.api_key, &config.token, &config.limits),
            key_budget: KeyBudget::shared(&config.api_key, &config.limits),
            limits: config.limits.clone(),
            shared: config.shared.as_ref().map(|s| SharedSlots {
                budget: s.budget.clone(),
                owner: s.owner.clone(),
                key: shared::key_scope(&config.api_key, &config.limits, config.timeout),
                token: shared::token_scope(&config.api_key, &config.token),
            }),
            retry: config.retry.clone(),
            timeout: config.timeout,
            permits: Semaphore::new(config.concurrency),
            counters: Counters::default(),
            recorder: Mutex::new(None),
        })
    }

    pub(crate) fn stats(&self) -> RequestStats {
        RequestStats {
            reads: self.counters.reads.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
            rate_limited_429s: self.counters.rate_limited.load(Ordering::Relaxed),
            key_rate_limited_429s: self.counters.key_rate_limited.load(Ordering::Relaxed),
            retries: self.counters.retries.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn key_budget(&self) -> Arc<KeyBudget> {
        self.key_budget.clone()
    }

    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub(crate) fn start_recording(&self) {
        let mut r = lock(&self.recorder);
        if r.is_none() {
            *r = Some(Vec::new());
        }
    }

    pub(crate) fn recorded(&self) -> Vec<SentRequest> {
        lock(&self.recorder).clone().unwrap_or_default()
    }

    fn url(&self, call: &Call) -> Url {
        let mut url = self.root.clone();
        {
            let mut segs = url.path_segments_mut().expect("API root is a base URL");
            segs.pop_if_empty();
            segs.extend(catalog::segments(call.op.template, &call.arg_refs()));
        }
        if !call.query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in &call.query {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// Sends `call`, retrying what is safe to retry (the adapter's only retry loop), and
    /// returns the body of a 2xx answer.
    pub(crate) async fn execute(&self, call: &Call) -> Result<Answer, PortError> {
        let url = self.url(call);
        let ctx = call.context();
        if url.as_str().len() > MAX_URL_BYTES {
            return Err(PortError::InvalidInput {
                context: Default::default(),
                message: format!(
                    "request too long: {} {} would need a URL of {} bytes; Trello refuses URLs over about 8 KB, so shorten the text",
                    call.op.method.as_str(),
                    call.op.template,
                    url.as_str().len()
                ),
            });
        }
        let body = match &call.body {
            Some(b) => Some(
                serde_json::to_vec(b)
                    .map_err(|e| PortError::other(format!("cannot encode the request: {e}")))?,
            ),
            None => None,
        };
        if let Some(rec) = lock(&self.recorder).as_mut() {
            rec.push(call.sent(false));
            rec.extend(call.inner.iter().cloned());
        }
        let method = call.op.method;
        let deadline = self.retry.deadline();
        // Time spent exchanging with Trello and backing off; waits for the limiter and
        // for a connection slot are not counted (see `RetryPolicy::deadline_ms`).
        let mut spent = Duration::ZERO;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let timeout = self.timeout.min(deadline.saturating_sub(spent));
            let (failure, took) = self
                .attempt(call, &url, body.as_deref(), attempt, timeout)
                .await;
            spent += took;
            let failure = match failure {
                Ok(answer) => return Ok(answer),
                Err(f) => f,
            };
            let reason = reason_of(&failure);
            let may_retry = attempt <= self.retry.max_retries;
            let kept = failure.kept_source();
            let (retry, final_error, retry_after) = match failure {
                Failure::Final(e) => (false, e, None),
                Failure::TooLarge { status } => {
                    let message = format!(
                        "Trello's answer ({status}) to {} {} is larger than {} MiB, the most the adapter reads; this is not an answer Trello gives: check that {} points at Trello",
                        method.as_str(),
                        call.op.template,
                        MAX_BODY_BYTES / (1024 * 1024),
                        crate::config::API_ROOT_ENV,
                    );
                    let e = match method {
                        // A 2xx to a write: it was applied, but its answer is unusable.
                        HttpMethod::Get => PortError::Other {
                            context: Default::default(),
                            message,
                        },
                        _ => PortError::OutcomeUnknown {
                            context: Default::default(),
                            message,
                        },
                    };
                    (false, e, None)
                }
                Failure::Status {
                    status,
                    body,
                    retry_after,
                } => {
                    let e = map_status(status, &body, &ctx, &self.redactor, retry_after);
                    (true, e, retry_after)
                }
                Failure::NotSent(msg) => (
                    true,
                    PortError::Unavailable {
                        context: Default::default(),
                        message: format!(
                            "cannot reach Trello for {} {}: {msg}",
                            method.as_str(),
                            call.op.template
                        ),
                    },
                    None,
                ),
                Failure::Lost(msg) => {
                    let message = format!(
                        "no complete answer to {} {}: {msg}",
                        method.as_str(),
                        call.op.template
                    );
                    match method {
                        // A create may have happened: never send it twice.
                        HttpMethod::Post => (
                            false,
                            PortError::OutcomeUnknown {
                                context: Default::default(),
                                message,
                            },
                            None,
                        ),
                        HttpMethod::Get => (
                            true,
                            PortError::Unavailable {
                                context: Default::default(),
                                message,
                            },
                            None,
                        ),
                        HttpMethod::Put | HttpMethod::Delete => (
                            true,
                            PortError::OutcomeUnknown {
                                context: Default::default(),
                                message,
                            },
                            None,
                        ),
                    }
                }
            };
            let final_error = match kept {
                Some(source) => final_error.with_shared_source(source),
                None => final_error,
            };
            if !(retry && may_retry) {
                if matches!(final_error, PortError::Unauthenticated { .. }) {
                    tracing::debug!(route = call.op.template, "credentials refused");
                }
                return Err(final_error);
            }
            let backoff = self.retry.backoff(attempt, rand::thread_rng().gen::<f64>());
            // A (capped) Retry-After longer than the backoff is honoured.
            let wait = backoff.max(retry_after.unwrap_or_default());
            if spent + wait >= deadline {
                tracing::warn!(
                    method = method.as_str(),
                    route = call.op.template,
                    attempt,
                    elapsed_ms = millis(spent),
                    reason = %reason,
                    deadline_ms = millis(deadline),
                    "giving up on Trello request: its deadline has passed"
                );
                return Err(past_deadline(
                    final_error,
                    &format!("{} {}", method.as_str(), call.op.template),
                    attempt,
                    spent,
                    deadline,
                ));
            }
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                method = method.as_str(),
                route = call.op.template,
                attempt,
                max_attempts = self.retry.max_retries.saturating_add(1),
                elapsed_ms = millis(spent),
                reason = %reason,
                wait_ms = millis(wait),
                "retrying Trello request"
            );
            tokio::time::sleep(wait).await;
            spent += wait;
        }
    }

    async fn attempt(
        &self,
        call: &Call,
        url: &Url,
        body: Option<&[u8]>,
        attempt: u32,
        timeout: Duration,
    ) -> (Result<Answer, Failure>, Duration) {
        let Ok(_permit) = self.permits.acquire().await else {
            return (
                Err(Failure::Final(PortError::other(
                    "the adapter is shutting down",
                ))),
                Duration::ZERO,
            );
        };
        let queued = Instant::now();
        // Held until the answer is read: the slot counts until one window after that.
        let shared_slot = match &self.shared {
            Some(s) => Some(
                s.budget
                    .acquire(SlotRequest {
                        key: s.key.clone(),
                        owner: s.owner.clone(),
                        token: s.token.clone(),
                        token_limit: self.limits.token_limit,
                        n: REQUEST_COST,
                    })
                    .await,
            ),
            None => None,
        };
        let shared_wait = queued.elapsed();
        // Held until the answer has been read or the attempt ended otherwise (error,
        // timeout, this future dropped): the request keeps its place in the windows
        // until then, and for one window after.
        let slot = limiter::acquire(
            &self.token_budget,
            self.shared.is_none().then_some(&*self.key_budget),
            REQUEST_COST,
            call.op.members_limited,
        )
        .await;
        let waited = shared_wait + slot.waited();
        let method = call.op.method;
        let span = tracing::debug_span!(
            "trello_request",
            method = method.as_str(),
            route = call.op.template,
            attempt,
            wait_ms = millis(waited),
            status = field::Empty,
            elapsed_ms = field::Empty,
        );
        let started = Instant::now();
        let result = async {
            if method == HttpMethod::Get {
                self.counters.reads.fetch_add(1, Ordering::Relaxed);
            } else {
                self.counters.writes.fetch_add(1, Ordering::Relaxed);
            }
            let mut req = self
                .client
                .request(method.reqwest(), url.clone())
                .header(AUTHORIZATION, self.auth.clone())
                .timeout(timeout);
            if let Some(b) = body {
                req = req
                    .header(CONTENT_TYPE, "application/json")
                    .body(b.to_vec());
            }
            let result = self.exchange(req, timeout).await;
            let span = tracing::Span::current();
            span.record("elapsed_ms", millis(started.elapsed()));
            match &result {
                Ok((status, _, _)) => {
                    span.record("status", *status);
                    tracing::debug!(status = *status, "trello answered");
                }
                Err(Failure::NotSent(m) | Failure::Lost(m)) => {
                    tracing::debug!(error = %m, "no answer from trello");
                }
                Err(Failure::TooLarge { status }) => {
                    span.record("status", *status);
                    tracing::warn!(
                        status = *status,
                        max_bytes = MAX_BODY_BYTES,
                        "trello answered more than the adapter reads"
                    );
                }
                Err(_) => {}
            }
            let (status, headers, bytes) = result?;
            self.observe_limits(&headers, status, &bytes, slot.admitted());
            if status == 429 {
                self.pause_shared_key(&bytes).await;
            }
            if (200..300).contains(&status) {
                return Ok(Answer { body: bytes });
            }
            if status == 429 {
                self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                if is_key_refusal(&bytes) {
                    self.counters
                        .key_rate_limited
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            if status == 429 || (500..600).contains(&status) {
                return Err(Failure::Status {
                    status,
                    body: bytes,
                    retry_after: self.retry_after(&headers),
                });
            }
            Err(Failure::Final(map_status(
                status,
                &bytes,
                &call.context(),
                &self.redactor,
                None,
            )))
        }
        .instrument(span)
        .await;
        // The answer is read (or the attempt failed): the slots' windows start now.
        drop(slot);
        drop(shared_slot);
        (result, started.elapsed())
    }

    /// `Retry-After` in seconds, capped at the rate-limit window (Trello documents no
    /// `Retry-After`, FACTS.md §9; its windows are 10 s): a longer announcement is
    /// logged and cut to the cap. An HTTP-date form is ignored.
    fn retry_after(&self, h: &HeaderMap) -> Option<Duration> {
        let secs = header_u64(h, "retry-after")?;
        let announced = Duration::from_secs(secs);
        let cap = limiter::window_cap(self.limits.window());
        if announced > cap {
            tracing::warn!(
                header = "retry-after",
                announced = secs,
                used = millis(cap) / 1000,
                "clamped a rate-limit header from Trello"
            );
            return Some(cap);
        }
        Some(announced)
    }

    /// Sends the request and reads the answer, at most [`MAX_BODY_BYTES`] of a 2xx body
    /// and [`MAX_ERROR_BODY_BYTES`] of any other (the rest is not read).
    async fn exchange(
        &self,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<(u16, HeaderMap, Vec<u8>), Failure> {
        let mut resp = req.send().await.map_err(|e| self.classify(e, timeout))?;
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
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.classify(e, timeout))? {
            let room = cap - bytes.len();
            if chunk.len() > room {
                if ok {
                    return Err(Failure::TooLarge { status });
                }
                // An error answer: its start is all that is ever shown.
                bytes.extend_from_slice(&chunk[..room]);
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((status, headers, bytes))
    }

    /// A client error as text without the URL (which may hold a token), and whether the
    /// request can have reached Trello.
    fn classify(&self, e: reqwest::Error, timeout: Duration) -> Failure {
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
        let text = excerpt(&strip_urls(&self.redactor.clean(&text)), 300);
        let mut raw = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            raw.push_str(": ");
            raw.push_str(&s.to_string());
            source = s.source();
        }
        let cleaned = strip_urls(&self.redactor.clean(&raw));
        if e.is_connect() {
            Failure::NotSent(Cause::new(e, &raw, &cleaned, text))
        } else if e.is_builder() {
            Failure::Final(PortError::other(format!(
                "cannot build the request: {text}"
            )))
        } else {
            Failure::Lost(Cause::new(e, &raw, &cleaned, text))
        }
    }

    /// After a 429 for the whole key (`API_KEY_LIMIT_EXCEEDED`, FACTS.md §9), every
    /// replica pauses the key for a window: more 429s on the key would lock it out for
    /// every customer (more than 200 in a window).
    async fn pause_shared_key(&self, body: &[u8]) {
        let Some(s) = &self.shared else {
            return;
        };
        if !is_key_refusal(body) {
            return;
        }
        let pause = s.key.rules.window.saturating_add(s.key.rules.margin);
        if let Err(e) = s.budget.pause(&s.key, pause).await {
            tracing::warn!(error = %e, "cannot pause the shared key budget");
        }
    }

    fn observe_limits(&self, h: &HeaderMap, status: u16, body: &[u8], sent_at: Instant) {
        let now = Instant::now();
        let get = |n: &str| header_u64(h, n);
        let token = (
            get("x-rate-limit-api-token-max"),
            get("x-rate-limit-api-token-interval-ms"),
            get("x-rate-limit-api-token-remaining"),
        );
        let key = (
            get("x-rate-limit-api-key-max"),
            get("x-rate-limit-api-key-interval-ms"),
            get("x-rate-limit-api-key-remaining"),
        );
        let to32 = |v: Option<u64>| v.map(|v| u32::try_from(v).unwrap_or(u32::MAX));
        let have_headers = token.2.is_some() || key.2.is_some();
        if self.limits.follow_headers && have_headers {
            let clamped_token = lock(&self.token_budget.window).observe(
                to32(token.0),
                token.1.map(Duration::from_millis),
                to32(token.2),
                sent_at,
                now,
            );
            let clamped_key = lock(self.key_budget.window()).observe(
                to32(key.0),
                key.1.map(Duration::from_millis),
                to32(key.2),
                sent_at,
                now,
            );
            for (scope, c) in clamped_token
                .iter()
                .map(|c| ("token", c))
                .chain(clamped_key.iter().map(|c| ("key", c)))
            {
                tracing::warn!(
                    header = %format!("x-rate-limit-api-{scope}-{}", c.what),
                    announced = c.announced,
                    used = c.used,
                    "clamped a rate-limit header from Trello"
                );
            }
        }
        if status == 429 {
            let text = refusal_text(body);
            if text.contains("MEMBER") {
                lock(&self.token_budget.members).fill(now);
            } else if !(self.limits.follow_headers && have_headers) {
                if text.contains("KEY") {
                    lock(self.key_budget.window()).fill(now);
                } else {
                    lock(&self.token_budget.window).fill(now);
                }
            }
        }
    }
}

/// A 429 body's code and message, upper case.
fn refusal_text(body: &[u8]) -> String {
    let code = parse_body(body);
    format!("{} {}", code.code.unwrap_or_default(), code.text).to_ascii_uppercase()
}

/// Whether a 429 refused the whole key (not one token or the members route).
fn is_key_refusal(body: &[u8]) -> bool {
    let text = refusal_text(body);
    text.contains("KEY") && !text.contains("MEMBER")
}

/// The key budget shared with every replica, as this adapter spends it.
struct SharedSlots {
    budget: webriskops_budget::SharedBudget,
    owner: String,
    key: webriskops_ports::KeyScope,
    token: String,
}

/// The error of a request whose deadline passed: `Unavailable` (transient), saying how
/// many attempts over how long, and the last failure. A write whose answer was lost
/// stays `OutcomeUnknown`, so that it is reconciled, not assumed unapplied.
fn past_deadline(
    last: PortError,
    request: &str,
    attempts: u32,
    spent: Duration,
    deadline: Duration,
) -> PortError {
    let message = format!(
        "gave up on {request} after {attempts} attempt{} in {:.1} s: the request's deadline of {:.1} s (retry.deadline_ms) leaves no time for another; last failure: {last}",
        if attempts == 1 { "" } else { "s" },
        spent.as_secs_f64(),
        deadline.as_secs_f64(),
    );
    match last {
        PortError::OutcomeUnknown { .. } => PortError::OutcomeUnknown {
            context: Default::default(),
            message,
        },
        _ => PortError::Unavailable {
            context: Default::default(),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_error() -> reqwest::Error {
        reqwest::Client::new()
            .get("http://exa mple.invalid/1/tokens/ATTAsecret/")
            .build()
            .unwrap_err()
            .without_url()
    }

    #[test]
    fn a_client_error_is_kept_as_the_source_only_when_nothing_needed_cleaning() {
        let raw = "error sending request for url (http://127.0.0.1:9/1/tokens/ATTAxyz/): closed";
        let cleaned = strip_urls(raw);
        assert_ne!(raw, cleaned);
        let hidden = Cause::new(client_error(), raw, &cleaned, cleaned.clone());
        assert!(hidden.source.is_none(), "{hidden:?}");
        let plain = "client error (Connect): connection refused";
        let kept = Cause::new(client_error(), plain, plain, plain.into());
        assert!(kept.source.is_some(), "{kept:?}");
        let e = PortError::other("x");
        assert!(std::error::Error::source(&e).is_none());
        let failure = Failure::NotSent(kept);
        let e = e.with_shared_source(failure.kept_source().expect("kept"));
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn urls_are_stripped_from_client_errors() {
        assert_eq!(
            strip_urls(
                "error sending request for url (http://127.0.0.1:9/1/tokens/ATTAxyz/): closed"
            ),
            "error sending request for url (<url>): closed"
        );
        assert_eq!(strip_urls("no url here"), "no url here");
        assert_eq!(
            strip_urls("a https://x/y b http://z c"),
            "a <url> b <url> c"
        );
    }

    #[test]
    fn relative_routes_for_batch() {
        let c =
            Call::new(catalog::BOARD_LABELS, &["5f0c0c0c0c0c0c0c0c0c0c0c"]).query("limit", "1000");
        assert_eq!(
            c.relative(),
            "/boards/5f0c0c0c0c0c0c0c0c0c0c0c/labels?limit=1000"
        );
        let c = Call::new(catalog::BOARD, &["5f0c0c0c0c0c0c0c0c0c0c0c"]);
        assert_eq!(c.relative(), "/boards/5f0c0c0c0c0c0c0c0c0c0c0c");
    }

    #[test]
    fn sent_requests_hide_the_token() {
        let c = Call::new(catalog::TOKEN_INFO, &["ATTAsecret"])
            .secret_path()
            .query("fields", "x");
        let s = c.sent(false);
        assert_eq!(
            s.path_params,
            vec![("token".to_owned(), "<token>".to_owned())]
        );
        assert_eq!(s.query_params, vec!["fields".to_owned()]);
    }
}
