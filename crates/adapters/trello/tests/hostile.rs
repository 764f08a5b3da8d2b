//! The adapter against a hostile or broken server: a tiny raw HTTP server on 127.0.0.1
//! that writes canned answers (rate-limit headers announcing forever, a Retry-After of
//! years, 100 MB bodies, bodies that quote control characters, a server that never
//! answers, answers that echo the token path).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use webriskops_domain::{ApiKey, Token};
use webriskops_ports::{PortError, TrackerIntrospection};
use webriskops_trello::{RateLimits, RetryPolicy, TrelloAdapter, TrelloConfig, MAX_BODY_BYTES};

const BOARD: &str = "5f0c0c0c0c0c0c0c0c0c0c0c";
const HUNDRED_MB: usize = 100 * 1024 * 1024;

/// What the raw server does with one request.
enum Reply {
    /// Write these bytes, then close.
    Bytes(Vec<u8>),
    /// Write `head` (status line and headers), then `total` bytes of `fill`, in chunks,
    /// until the client stops reading.
    Stream {
        head: String,
        fill: u8,
        total: usize,
    },
    /// Read the request and never answer.
    Hang,
}

struct Raw {
    root: String,
    /// Requests received (their request line and headers).
    requests: Arc<Mutex<Vec<String>>>,
    /// Body bytes written by `Reply::Stream` before the client stopped reading.
    streamed: Arc<AtomicUsize>,
}

impl Raw {
    fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

async fn raw_server(answer: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> Raw {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = format!("http://{}/1", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let streamed = Arc::new(AtomicUsize::new(0));
    let answer = Arc::new(answer);
    let (reqs, stream_count) = (requests.clone(), streamed.clone());
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let (answer, reqs, stream_count) = (answer.clone(), reqs.clone(), stream_count.clone());
            tokio::spawn(async move {
                serve_one(sock, &*answer, &reqs, &stream_count).await;
            });
        }
    });
    Raw {
        root,
        requests,
        streamed,
    }
}

async fn serve_one(
    mut sock: TcpStream,
    answer: &(dyn Fn(usize, &str) -> Reply + Send + Sync),
    reqs: &Mutex<Vec<String>>,
    streamed: &AtomicUsize,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let n = {
        let mut r = reqs.lock().unwrap();
        r.push(head.clone());
        r.len()
    };
    match answer(n, &head) {
        Reply::Bytes(b) => {
            let _ = sock.write_all(&b).await;
            let _ = sock.shutdown().await;
        }
        Reply::Stream { head, fill, total } => {
            if sock.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![fill; 64 * 1024];
            let mut sent = 0;
            while sent < total {
                let n = chunk.len().min(total - sent);
                if sock.write_all(&chunk[..n]).await.is_err() {
                    break;
                }
                sent += n;
                streamed.fetch_add(n, Ordering::Relaxed);
            }
            let _ = sock.shutdown().await;
        }
        Reply::Hang => {
            // Keep the connection open and silent until the client gives up.
            let _ = sock.read(&mut buf).await;
            std::future::pending::<()>().await;
        }
    }
}

fn answer(status: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.push_str(body);
    Reply::Bytes(s.into_bytes())
}

fn board_json() -> String {
    format!(r#"{{"id":"{BOARD}","name":"Board","closed":false,"idOrganization":null}}"#)
}

/// A distinct API key per test: key budgets are shared process-wide.
fn config(root: &str, key: &str, token: &str) -> TrelloConfig {
    let mut c = TrelloConfig::new(ApiKey::new(key).unwrap(), Token::new(token).unwrap())
        .with_api_root(root)
        .unwrap();
    c.limits = RateLimits::scaled(Duration::from_millis(200));
    c.retry = RetryPolicy {
        max_retries: 0,
        initial_backoff_ms: 5,
        max_backoff_ms: 20,
        ..RetryPolicy::default()
    };
    c.timeout = Duration::from_secs(5);
    c
}

/// Log lines of the adapter (WARN and up) while the returned guard lives.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Logs {
    fn capture(level: tracing::Level) -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let sub = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        let guard = tracing::subscriber::set_default(sub);
        (logs, guard)
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

// ------------------------------------------------------------- rate-limit headers

#[tokio::test]
async fn rate_limit_headers_announcing_forever_are_clamped_and_logged() {
    let (logs, _guard) = Logs::capture(tracing::Level::WARN);
    let body = board_json();
    let server = raw_server(move |_, _| {
        answer(
            "200 OK",
            &[
                ("content-type", "application/json"),
                ("x-rate-limit-api-key-interval-ms", "18446744073709551615"),
                ("x-rate-limit-api-key-max", "300"),
                ("x-rate-limit-api-key-remaining", "0"),
                ("x-rate-limit-api-token-interval-ms", "18446744073709551615"),
                ("x-rate-limit-api-token-max", "100"),
                ("x-rate-limit-api-token-remaining", "4294967295"),
            ],
            &body,
        )
    })
    .await;
    let c = config(
        &server.root,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa01",
        "ATTAhostile1",
    );
    let margin = c.limits.safety_margin();
    let a = TrelloAdapter::new(c).unwrap();
    let board = a.container(BOARD).await.expect("the answer itself is fine");
    assert_eq!(board.id, BOARD);

    // The key window is full (0 remaining), but for one documented window at most.
    let key = a.key_budget();
    assert_eq!(key.used(), key.limit(), "0 remaining is believed");
    let wait = key.wait_for_one();
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(10) + margin,
        "the next request waits at most Trello's 10 s window, not forever: {wait:?}"
    );
    let log = logs.text();
    assert!(
        log.contains("clamped a rate-limit header from Trello")
            && log.contains("x-rate-limit-api-key-interval-ms")
            && log.contains("announced=18446744073709551615")
            && log.contains("used=10000"),
        "{log}"
    );
    assert!(
        log.contains("x-rate-limit-api-token-remaining") && log.contains("used=100"),
        "a remaining above the limit is clamped to it: {log}"
    );
}

#[tokio::test]
async fn a_retry_after_of_years_is_capped() {
    let (logs, _guard) = Logs::capture(tracing::Level::WARN);
    let server = raw_server(|_, _| {
        answer(
            "429 Too Many Requests",
            &[
                ("content-type", "application/json"),
                ("retry-after", "4294967295"),
            ],
            r#"{"error":"API_TOKEN_LIMIT_EXCEEDED","message":"Rate limit exceeded"}"#,
        )
    })
    .await;
    let a = TrelloAdapter::new(config(
        &server.root,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa02",
        "ATTAhostile2",
    ))
    .unwrap();
    let e = a.container(BOARD).await.unwrap_err();
    match e {
        PortError::RateLimited { retry_after, .. } => {
            assert_eq!(
                retry_after,
                Some(Duration::from_secs(10)),
                "capped at the window"
            )
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(logs.text().contains("retry-after"), "{}", logs.text());
}

// ------------------------------------------------------------------ body sizes

#[tokio::test]
async fn a_100_mb_answer_is_not_read_whole_and_not_echoed() {
    // With a Content-Length the adapter refuses before reading; without one it stops
    // reading at the cap. Neither echoes the body.
    for announce_length in [true, false] {
        let server = raw_server(move |_, _| {
            let mut head = String::from("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n");
            if announce_length {
                head.push_str(&format!("content-length: {}\r\n", HUNDRED_MB + 2));
            } else {
                head.push_str("connection: close\r\n");
            }
            head.push_str("\r\n\"");
            Reply::Stream {
                head,
                fill: b'x',
                total: HUNDRED_MB,
            }
        })
        .await;
        let a = TrelloAdapter::new(config(
            &server.root,
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa03",
            "ATTAhostile3",
        ))
        .unwrap();
        let e = a.container(BOARD).await.unwrap_err();
        let m = e.to_string();
        assert!(
            matches!(e, PortError::Other { .. }) && !e.is_transient(),
            "a GET too large is final: {e:?}"
        );
        assert!(m.contains("larger than 64 MiB"), "{m}");
        assert!(
            m.len() < 500,
            "the error is one short line: {} bytes",
            m.len()
        );
        assert!(!m.contains("xxxxxxxxxx"), "the body is not echoed: {m}");
        assert!(
            server.streamed.load(Ordering::Relaxed) < HUNDRED_MB,
            "the adapter stopped reading (length announced: {announce_length})"
        );
        assert_eq!(server.hits(), 1, "an answer too large is not asked again");
    }
    assert_eq!(MAX_BODY_BYTES, 64 * 1024 * 1024);
}

#[tokio::test]
async fn bad_bodies_are_shortened_and_escaped_in_errors() {
    // A 2xx body that is not what was asked, quoting control characters: the decode
    // error quotes it, shortened and escaped.
    let big = format!(
        "\"\\u001b[2J\\nFAKE LOG LINE {}\"",
        "y".repeat(5 * 1024 * 1024)
    );
    let server =
        raw_server(move |_, _| answer("200 OK", &[("content-type", "application/json")], &big))
            .await;
    let a = TrelloAdapter::new(config(
        &server.root,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa04",
        "ATTAhostile4",
    ))
    .unwrap();
    let m = a.container(BOARD).await.unwrap_err().to_string();
    assert!(m.len() < 500, "{} bytes", m.len());
    assert!(m.contains("unexpected answer from Trello"), "{m}");
    assert!(!m.contains('\u{1b}') && !m.contains('\n'), "{m:?}");

    // An error answer of 100 MB: a short prefix of it, escaped.
    let server = raw_server(|_, _| Reply::Stream {
        head: format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n\u{1b}[31mboom\n",
            HUNDRED_MB + 10
        ),
        fill: b'z',
        total: HUNDRED_MB,
    })
    .await;
    let a = TrelloAdapter::new(config(
        &server.root,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa04",
        "ATTAhostile4",
    ))
    .unwrap();
    let e = a.container(BOARD).await.unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, PortError::InvalidInput { .. }), "{e:?}");
    assert!(m.len() < 500, "{} bytes", m.len());
    assert!(m.contains("\\u{1b}[31mboom\\nzzz"), "{m}");
    assert!(server.streamed.load(Ordering::Relaxed) < HUNDRED_MB);
}

// ------------------------------------------------------------------- deadline

#[tokio::test]
async fn a_server_that_never_answers_costs_one_deadline_with_progress_logged() {
    let (logs, _guard) = Logs::capture(tracing::Level::WARN);
    let server = raw_server(|_, _| Reply::Hang).await;
    let mut c = config(
        &server.root,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa05",
        "ATTAhostile5",
    );
    c.timeout = Duration::from_millis(100);
    c.retry = RetryPolicy {
        max_retries: 1000,
        initial_backoff_ms: 5,
        max_backoff_ms: 10,
        deadline_ms: 700,
        ..RetryPolicy::default()
    };
    let a = TrelloAdapter::new(c).unwrap();
    let e = a.container(BOARD).await.unwrap_err();
    let m = e.to_string();
    assert!(
        matches!(e, PortError::Unavailable { .. }) && e.is_transient(),
        "{e:?}"
    );
    assert!(
        m.contains("deadline of 0.7 s (retry.deadline_ms)")
            && m.contains("gave up on GET /boards/{id} after"),
        "the error says the deadline passed and how long it tried: {m}"
    );
    assert!(
        server.hits() < 1001,
        "the deadline, not the retry count, ended it ({} attempts)",
        server.hits()
    );
    let log = logs.text();
    let retries: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("retrying Trello request"))
        .collect();
    assert_eq!(
        retries.len(),
        server.hits() - 1,
        "one WARN line per retry: {log}"
    );
    let first = retries[0];
    for field in [
        "WARN",
        "attempt=1",
        "elapsed_ms=",
        "reason=answer lost: timed out",
        "wait_ms=",
        "route=\"/boards/{id}\"",
    ] {
        assert!(first.contains(field), "{field} in {first}");
    }
    assert!(log.contains("giving up on Trello request"), "{log}");
}

#[tokio::test]
async fn a_write_that_hangs_past_the_deadline_stays_outcome_unknown() {
    let server = raw_server(|_, _| Reply::Hang).await;
    let mut c = config(
        &server.root,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa06",
        "ATTAhostile6",
    );
    c.timeout = Duration::from_secs(30);
    c.retry = RetryPolicy {
        max_retries: 5,
        initial_backoff_ms: 5,
        max_backoff_ms: 10,
        deadline_ms: 300,
        ..RetryPolicy::default()
    };
    let a = TrelloAdapter::new(c).unwrap();
    // A revoke (DELETE) whose answer never comes: the timeout is cut to the deadline,
    // and the outcome stays unknown (the token may be revoked).
    let e = a.revoke_token().await.unwrap_err();
    assert!(e.may_have_applied(), "{e:?}");
    assert!(e.to_string().contains("deadline"), "{e}");
}

// ------------------------------------------------------------------ token paths

#[tokio::test]
async fn token_paths_never_reach_errors_or_logs() {
    let (logs, _guard) = Logs::capture(tracing::Level::TRACE);
    // Opaque tokens may hold characters that are percent-encoded in a path.
    let token = "ATTAsecret/with?odd%chars#and spaces-inside-abcdef0123456789";
    let token = token.replace(' ', "_");
    let server = raw_server(|n, head| {
        let line = head.lines().next().unwrap_or_default().to_owned();
        let echo = format!("Cannot serve {line} (url http://127.0.0.1{line})");
        match n {
            // GET /tokens/{token}: a 500 echoing the path (retried), then a 404.
            1 => answer("500 Internal Server Error", &[], &echo),
            2 => answer("404 Not Found", &[], &echo),
            // DELETE /tokens/{token}/: a 400 echoing it.
            _ => answer("400 Bad Request", &[("location", &line)], &echo),
        }
    })
    .await;
    let mut c = config(&server.root, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa07", &token);
    c.retry.max_retries = 1;
    let a = TrelloAdapter::new(c).unwrap();
    a.start_recording();
    let e1 = a.token_info().await.unwrap_err();
    let e2 = a.revoke_token().await.unwrap_err();
    assert_eq!(server.hits(), 3);
    let sent = server.requests.lock().unwrap().clone();
    let encoded = "ATTAsecret%2Fwith%3Fodd%25chars%23and_spaces-inside-abcdef0123456789";
    assert!(
        sent[0].contains(encoded),
        "the token did travel in the path, percent-encoded: {}",
        sent[0]
    );
    let mut haystacks = vec![
        format!("{e1} {e1:?}"),
        format!("{e2} {e2:?}"),
        logs.text(),
        format!("{:?}", a.recorded_requests()),
        format!("{a:?}"),
    ];
    haystacks.push(e1.to_string());
    for h in &haystacks {
        for needle in [token.as_str(), encoded, "secret%2Fwith", "secret/with"] {
            assert!(!h.contains(needle), "{needle} leaked: {h}");
        }
    }
    assert!(
        e1.to_string().contains("/tokens/{token}") || e1.to_string().contains("<redacted>"),
        "{e1}"
    );
}
