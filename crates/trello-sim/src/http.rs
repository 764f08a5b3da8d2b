//! HTTP front end: connections, the 414 check, faults, authentication, rate
//! limits, latency, response headers and the request log.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

use crate::auth;
use crate::faults::Fault;
use crate::log::{redact_path, Limit, LoggedRequest};
use crate::ratelimit::{Budget, Refusal};
use crate::routes::{self, Params, Reply, ReplyBody, Route};
use crate::state::State;

/// Longest request target (path and query) accepted before 414
/// (FACTS.md §0: "a URL of about 8 KB").
pub(crate) const MAX_URL_BYTES: usize = 8192;

/// Largest request body read.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// State shared by the server and every handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<State>,
    /// When the simulator started: arrival times in the log count from here.
    pub epoch: Instant,
    /// How long the HEAD check of a new webhook's callback may take.
    pub webhook_timeout: Duration,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent enough data for
        // a simulator; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Accepts connections until `shutdown` changes (or its sender is dropped).
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            res = listener.accept() => match res {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, shared.clone(), shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}

/// Serves one TCP connection. A `DropConnection` fault fires `kill`, which
/// drops the connection future and so closes the socket with no response.
async fn connection(stream: TcpStream, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let kill = Arc::new(Notify::new());
    let kill_svc = kill.clone();
    let svc = service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        let kill = kill_svc.clone();
        async move { Ok::<_, Infallible>(handle(shared, req, kill).await) }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
    tokio::select! {
        _ = conn => {}
        _ = kill.notified() => {}
        _ = shutdown.changed() => {}
    }
}

/// The outcome of a request before latency and faults shape its delivery.
struct Processed {
    reply: Reply,
    route: String,
    budget: Budget,
    /// A webhook to store once its callback answers HEAD (sent without the lock).
    pending: Option<routes::webhooks::PendingWebhook>,
    /// Who sent it and which limit refused it, for the log.
    seen: Seen,
}

/// What the log says of an authenticated request.
#[derive(Debug, Clone, Default)]
struct Seen {
    key: Option<String>,
    token_id: Option<String>,
    limited_by: Option<Limit>,
    /// The names of the query and body parameters (credentials left out).
    params: Vec<String>,
}

fn route_template(method: &str, path: &str) -> String {
    path.strip_prefix("/1")
        .filter(|r| r.is_empty() || r.starts_with('/'))
        .and_then(|r| Route::parse(method, &routes::segments(r)))
        .map_or_else(|| "unmatched".to_owned(), |(_, t)| t.to_owned())
}

/// Logs a request whose handler is dropped before answering (the client hung up, e.g.
/// during a `Delay` fault), with status 0 like a dropped connection: every request the
/// server saw is in the log.
struct LogIfAbandoned {
    shared: Arc<Shared>,
    method: String,
    path: String,
    start: Instant,
    done: bool,
}

impl Drop for LogIfAbandoned {
    fn drop(&mut self) {
        if !self.done {
            let route = route_template(&self.method, &self.path);
            record(
                &self.shared,
                &self.method,
                &route,
                &self.path,
                0,
                self.start,
                Seen::default(),
            );
        }
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>, kill: Arc<Notify>) -> Response<Body> {
    let start = Instant::now();
    let method = req.method().as_str().to_ascii_uppercase();
    let path = req.uri().path().to_owned();
    let mut guard = LogIfAbandoned {
        shared: shared.clone(),
        method: method.clone(),
        path: path.clone(),
        start,
        done: false,
    };
    let target_len = req
        .uri()
        .path_and_query()
        .map_or(path.len(), |pq| pq.as_str().len());
    let too_long = target_len > MAX_URL_BYTES;
    let (fault, latency, full) = {
        let mut st = shared.lock();
        let fault = if too_long {
            None
        } else {
            st.faults.take(&method, &path)
        };
        (fault, st.latency, st.limiter.full_budget())
    };
    let drop_now = |guard: &mut LogIfAbandoned, status_route: String| {
        guard.done = true;
        record(
            &shared,
            &method,
            &status_route,
            &path,
            0,
            start,
            Seen::default(),
        );
        kill.notify_one();
    };

    let processed = if too_long {
        Processed {
            reply: Reply::text(414, "Request-URI Too Large"),
            route: "-".into(),
            budget: full,
            pending: None,
            seen: Seen::default(),
        }
    } else {
        match &fault {
            Some(Fault::Status(s)) => {
                let code = StatusCode::from_u16(*s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                Processed {
                    reply: Reply::text(code.as_u16(), code.canonical_reason().unwrap_or("error")),
                    route: route_template(&method, &path),
                    budget: full,
                    pending: None,
                    seen: Seen::default(),
                }
            }
            Some(Fault::RateLimit429) => Processed {
                reply: Reply::json(429, token_limit_body()),
                route: route_template(&method, &path),
                budget: Budget {
                    token_remaining: 0,
                    ..full
                },
                pending: None,
                seen: Seen::default(),
            },
            Some(Fault::DropConnection { after_apply: false }) => {
                drop_now(&mut guard, route_template(&method, &path));
                return std::future::pending().await;
            }
            Some(Fault::Delay {
                delay,
                after_apply: false,
            }) => {
                tokio::time::sleep(*delay).await;
                apply(&shared, req).await
            }
            _ => apply(&shared, req).await,
        }
    };

    match fault {
        Some(Fault::DropConnection { after_apply: true }) => {
            drop_now(&mut guard, processed.route);
            return std::future::pending().await;
        }
        Some(Fault::Delay {
            delay,
            after_apply: true,
        }) => tokio::time::sleep(delay).await,
        _ => {}
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    guard.done = true;
    record(
        &shared,
        &method,
        &processed.route,
        &path,
        processed.reply.status,
        start,
        processed.seen,
    );
    response(processed.reply, processed.budget)
}

fn record(
    shared: &Shared,
    method: &str,
    route: &str,
    path: &str,
    status: u16,
    start: Instant,
    seen: Seen,
) {
    let elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let at_us = u64::try_from(start.saturating_duration_since(shared.epoch).as_micros())
        .unwrap_or(u64::MAX);
    let path = redact_path(path);
    tracing::info!(method, route, path = %path, status, elapsed_ms, "request");
    let mut st = shared.lock();
    st.log.push(LoggedRequest {
        method: method.to_owned(),
        route: route.to_owned(),
        path,
        status,
        elapsed_ms,
        at_us,
        key: seen.key,
        token_id: seen.token_id,
        limited_by: seen.limited_by,
    });
    st.log_params.push(seen.params);
}

fn token_limit_body() -> Value {
    json!({"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"})
}

async fn apply(shared: &Shared, req: Request<Incoming>) -> Processed {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let full = shared.lock().limiter.full_budget();
            return Processed {
                reply: Reply::text(413, "request entity too large"),
                route: route_template(parts.method.as_str(), parts.uri.path()),
                budget: full,
                pending: None,
                seen: Seen::default(),
            };
        }
    };
    let mut processed = process(
        &mut shared.lock(),
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &parts.headers,
        &bytes,
    );
    if let Some(pending) = processed.pending.take() {
        // Trello sends HEAD to the callback and needs 200 (FACTS.md §7).
        let head = head_status(&pending.callback_url, shared.webhook_timeout).await;
        processed.reply = routes::webhooks::finish_create(&mut shared.lock(), pending, head);
    }
    processed
}

/// The status a URL answers to HEAD, or why it did not answer.
async fn head_status(url: &str, timeout: Duration) -> Result<u16, String> {
    let client = reqwest::Client::builder()
        // Callbacks are local test receivers: a proxy from the environment must not
        // capture them.
        .no_proxy()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    client
        .head(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.without_url().to_string())
}

/// Routes, authenticates, rate-limits and answers one request.
fn process(
    st: &mut State,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Processed {
    let full = st.limiter.full_budget();
    let not_found = || Processed {
        reply: Reply::text(404, &format!("Cannot {method} {path}")),
        route: "unmatched".into(),
        budget: full,
        pending: None,
        seen: Seen::default(),
    };
    let Some(rest) = path
        .strip_prefix("/1")
        .filter(|r| r.is_empty() || r.starts_with('/'))
    else {
        return not_found();
    };
    if let Some((reply, template)) = crate::oauth1::route(st, method, rest, query, headers, body) {
        return Processed {
            reply,
            route: template.to_owned(),
            budget: full,
            pending: None,
            seen: Seen::default(),
        };
    }
    let Some((route, template)) = Route::parse(method, &routes::segments(rest)) else {
        return not_found();
    };
    let fail = |reply: Reply, budget: Budget| Processed {
        reply,
        route: template.to_owned(),
        budget,
        pending: None,
        seen: Seen::default(),
    };

    let mut params = Params::from_pairs(url::form_urlencoded::parse(query.as_bytes()).into_owned());
    if !body.is_empty() {
        let ctype = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if ctype.starts_with("application/x-www-form-urlencoded") {
            for (k, v) in url::form_urlencoded::parse(body).into_owned() {
                params.insert(&k, Value::String(v));
            }
        } else if ctype.starts_with("application/json") || body.first() == Some(&b'{') {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(obj)) => params.merge_json(obj),
                Ok(_) => {}
                Err(_) => return fail(Reply::text(400, "invalid json"), full),
            }
        }
    }

    let (h_key, h_token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map_or((None, None), auth::parse_oauth_header);
    let key = params.str("key").or(h_key);
    let token = params.str("token").or(h_token);
    let auth = match auth::authenticate(st, key.as_deref(), token.as_deref()) {
        Ok(a) => a,
        Err(reply) => {
            let budget = match key.as_deref() {
                Some(k) if st.keys.contains(k) => st.limiter.budget(k, None, Instant::now()),
                _ => full,
            };
            return fail(reply, budget);
        }
    };

    let (verdict, budget) = st.limiter.admit(
        &auth.key,
        &auth.token,
        route.is_members_limited(),
        Instant::now(),
    );
    let mut seen = Seen {
        key: Some(auth.key.clone()),
        token_id: st.tokens.get(&auth.token).map(|t| t.id.clone()),
        limited_by: None,
        params: params.names(),
    };
    let answer = |reply: Reply, budget: Budget, seen: Seen| Processed {
        reply,
        route: template.to_owned(),
        budget,
        pending: None,
        seen,
    };
    if let Err(refusal) = verdict {
        let key_body =
            || json!({"error": "API_KEY_LIMIT_EXCEEDED", "message": "Rate limit exceeded"});
        let (body, limit) = match refusal {
            Refusal::Token => (token_limit_body(), Limit::Token),
            Refusal::Key => (key_body(), Limit::Key),
            Refusal::KeyLockedOut => (key_body(), Limit::KeyLockedOut),
            Refusal::Members => (
                json!({"message": "Exceeded rate limit to /1/member", "error": "RATE_LIMIT_EXCEEDED"}),
                Limit::Members,
            ),
        };
        seen.limited_by = Some(limit);
        return answer(Reply::json(429, body), budget, seen);
    }
    if let Route::WebhookCreate(path_token) = &route {
        return match routes::webhooks::prepare_create(st, &auth, path_token.as_deref(), &params) {
            Ok(pending) => Processed {
                reply: Reply::text(500, "pending"),
                route: template.to_owned(),
                budget,
                pending: Some(pending),
                seen,
            },
            Err(reply) => answer(reply, budget, seen),
        };
    }
    let reply = routes::dispatch(st, &auth, route, &params);
    answer(reply, budget, seen)
}

fn response(reply: Reply, budget: Budget) -> Response<Body> {
    let mut location = None;
    let (ctype, bytes) = match reply.body {
        ReplyBody::Json(v) => (
            "application/json; charset=utf-8",
            v.to_string().into_bytes(),
        ),
        ReplyBody::Text(s) => ("text/plain; charset=utf-8", s.into_bytes()),
        ReplyBody::Html(s) => ("text/html; charset=utf-8", s.into_bytes()),
        ReplyBody::Redirect(l) => {
            location = Some(l);
            ("text/plain; charset=utf-8", Vec::new())
        }
    };
    let mut resp = Response::new(Body::from(bytes));
    if let Some(l) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    let pairs = [
        ("x-rate-limit-api-token-interval-ms", budget.interval_ms),
        ("x-rate-limit-api-token-max", u64::from(budget.token_max)),
        (
            "x-rate-limit-api-token-remaining",
            u64::from(budget.token_remaining),
        ),
        ("x-rate-limit-api-key-interval-ms", budget.interval_ms),
        ("x-rate-limit-api-key-max", u64::from(budget.key_max)),
        (
            "x-rate-limit-api-key-remaining",
            u64::from(budget.key_remaining),
        ),
    ];
    for (name, value) in pairs {
        h.insert(name, HeaderValue::from(value));
    }
    resp
}
