//! HTTP front end: connections, faults, routing (`/graphql`, `/oauth/*`),
//! latency, rate-limit headers and the request log.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

use crate::faults::Fault;
use crate::graphql::{self, GqlConfig};
use crate::log::LoggedRequest;
use crate::oauth;
use crate::ratelimit::Budget;
use crate::state::State;

/// Largest request body read.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// State shared by the server and every handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub cfg: GqlConfig,
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

/// An answer before latency and faults shape its delivery.
struct Processed {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    location: Option<String>,
    budget: Option<Budget>,
    complexity: Option<u64>,
    error_code: Option<String>,
}

impl Processed {
    fn text(status: u16, text: &str) -> Self {
        Processed {
            status,
            content_type: "text/plain; charset=utf-8",
            body: text.as_bytes().to_vec(),
            location: None,
            budget: None,
            complexity: None,
            error_code: None,
        }
    }
}

/// What the log keeps of a request.
#[derive(Clone)]
struct Meta {
    method: String,
    path: String,
    operation_name: Option<String>,
    root_fields: Vec<String>,
}

/// Logs a request whose handler is dropped before answering (the client hung
/// up, e.g. during a `Delay` fault), with status 0 like a dropped connection.
struct LogIfAbandoned {
    shared: Arc<Shared>,
    meta: Meta,
    start: Instant,
    done: bool,
}

impl Drop for LogIfAbandoned {
    fn drop(&mut self) {
        if !self.done {
            record(&self.shared, &self.meta, 0, None, None, self.start);
        }
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>, kill: Arc<Notify>) -> Response<Body> {
    let start = Instant::now();
    let method = req.method().as_str().to_ascii_uppercase();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let (parts, body) = req.into_parts();
    let mut guard = LogIfAbandoned {
        shared: shared.clone(),
        meta: Meta {
            method: method.clone(),
            path: path.clone(),
            operation_name: None,
            root_fields: Vec::new(),
        },
        start,
        done: false,
    };
    let bytes = match axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            guard.done = true;
            let p = Processed::text(413, "request entity too large");
            record(&shared, &guard.meta, p.status, None, None, start);
            return response(p);
        }
    };
    if path == "/graphql" {
        let (op, roots) = graphql::peek(&bytes);
        guard.meta.operation_name = op.clone();
        guard.meta.root_fields = roots;
    }
    let mut ops = guard.meta.root_fields.clone();
    ops.extend(guard.meta.operation_name.clone());
    let (fault, latency) = {
        let mut st = shared.lock();
        (st.faults.take(&method, &path, &ops), st.latency)
    };
    let drop_now = |guard: &mut LogIfAbandoned| {
        guard.done = true;
        record(&shared, &guard.meta, 0, None, None, start);
        kill.notify_one();
    };

    let apply = |meta: &mut Meta| {
        let mut st = shared.lock();
        route(
            &mut st,
            &shared.cfg,
            &method,
            &path,
            &query,
            &parts.headers,
            &bytes,
            meta,
        )
    };
    let processed = match &fault {
        Some(Fault::Status(s)) => {
            let code = StatusCode::from_u16(*s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Processed::text(code.as_u16(), code.canonical_reason().unwrap_or("error"))
        }
        Some(Fault::RateLimited) => Processed {
            status: 400,
            content_type: "application/json; charset=utf-8",
            body: json!({"errors": [{
                "message": "Rate limit exceeded",
                "extensions": {"code": "RATELIMITED", "type": "ratelimited", "userError": true,
                               "userPresentableMessage": "Rate limit exceeded"}
            }]})
            .to_string()
            .into_bytes(),
            location: None,
            budget: None,
            complexity: None,
            error_code: Some("RATELIMITED".into()),
        },
        Some(Fault::DropConnection { after_apply: false }) => {
            drop_now(&mut guard);
            return std::future::pending().await;
        }
        Some(Fault::Delay {
            delay,
            after_apply: false,
        }) => {
            tokio::time::sleep(*delay).await;
            apply(&mut guard.meta)
        }
        _ => apply(&mut guard.meta),
    };

    match fault {
        Some(Fault::DropConnection { after_apply: true }) => {
            drop_now(&mut guard);
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
        &guard.meta,
        processed.status,
        processed.error_code.clone(),
        processed.complexity,
        start,
    );
    response(processed)
}

#[allow(clippy::too_many_arguments)]
fn route(
    st: &mut State,
    cfg: &GqlConfig,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    meta: &mut Meta,
) -> Processed {
    let authorization = header_str(headers, header::AUTHORIZATION);
    let json_reply = |r: oauth::OAuthReply| Processed {
        status: r.status,
        content_type: "application/json; charset=utf-8",
        body: if r.location.is_some() {
            Vec::new()
        } else {
            r.body.to_string().into_bytes()
        },
        location: r.location,
        budget: None,
        complexity: None,
        error_code: r.error_code,
    };
    match (method, path) {
        ("POST", "/graphql") => {
            let ctype = header_str(headers, header::CONTENT_TYPE)
                .unwrap_or("")
                .to_ascii_lowercase();
            let out = graphql::process(st, cfg, authorization, &ctype, body);
            meta.operation_name = out.operation_name.clone();
            meta.root_fields = out.root_fields.clone();
            Processed {
                status: out.status,
                content_type: "application/json; charset=utf-8",
                body: out.body,
                location: None,
                budget: Some(out.budget),
                complexity: out.complexity,
                error_code: out.error_code,
            }
        }
        ("GET", "/oauth/authorize") => json_reply(oauth::authorize(st, query)),
        ("POST", "/oauth/token") => json_reply(oauth::token(st, authorization, body)),
        ("POST", "/oauth/revoke") => json_reply(oauth::revoke(st, authorization, body)),
        _ => Processed::text(404, &format!("Cannot {method} {path}")),
    }
}

fn record(
    shared: &Shared,
    meta: &Meta,
    status: u16,
    error_code: Option<String>,
    complexity: Option<u64>,
    start: Instant,
) {
    let elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        method = %meta.method,
        path = %meta.path,
        operation = meta.operation_name.as_deref().unwrap_or("-"),
        root_fields = %meta.root_fields.join(","),
        status,
        error_code = error_code.as_deref().unwrap_or("-"),
        complexity = complexity.unwrap_or(0),
        elapsed_ms,
        "request"
    );
    shared.lock().log.push(LoggedRequest {
        method: meta.method.clone(),
        path: meta.path.clone(),
        operation_name: meta.operation_name.clone(),
        root_fields: meta.root_fields.clone(),
        status,
        error_code,
        complexity,
        elapsed_ms,
    });
}

fn response(p: Processed) -> Response<Body> {
    let mut resp = Response::new(Body::from(p.body));
    *resp.status_mut() =
        StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(p.content_type),
    );
    if let Some(loc) = p.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        h.insert(header::LOCATION, loc);
    }
    if let Some(b) = p.budget {
        // FACTS.md "Rate limits": headers on every response, resets in UTC epoch ms.
        let pairs = [
            ("x-ratelimit-requests-limit", b.requests_limit),
            ("x-ratelimit-requests-remaining", b.requests_remaining),
            ("x-ratelimit-requests-reset", b.requests_reset_ms),
            ("x-ratelimit-complexity-limit", b.complexity_limit),
            ("x-ratelimit-complexity-remaining", b.complexity_remaining),
            ("x-ratelimit-complexity-reset", b.complexity_reset_ms),
        ];
        for (name, value) in pairs {
            h.insert(name, HeaderValue::from(value));
        }
        h.insert("x-complexity", HeaderValue::from(p.complexity.unwrap_or(0)));
    }
    resp
}
