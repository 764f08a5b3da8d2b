//! The transport over real HTTP against small canned servers on 127.0.0.1: the
//! authorization header forms, `RATELIMITED` (HTTP 400) retried after the announced
//! reset, a lost mutation answer never resent, a 100 MB body never read whole, secrets
//! never in errors or logs, paging, and the OAuth endpoints.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use webriskops_linear::{
    ops, Credential, LinearClient, LinearSecret, LinearSettings, OAuthClient, RateLimits,
    RetryPolicy, Transport, MAX_BODY_BYTES,
};
use webriskops_ports::PortError;

const HUNDRED_MB: usize = 100 * 1024 * 1024;

/// What the canned server does with one request.
enum Reply {
    /// Write these bytes, then close.
    Bytes(Vec<u8>),
    /// Write `head`, then `total` bytes of `fill` until the client stops reading.
    Stream { head: String, total: usize },
    /// Read the request, then close the connection without a word.
    Close,
}

/// One request as received: its head (request line and headers), body, and arrival
/// time in UTC epoch milliseconds.
#[derive(Clone, Debug)]
struct Received {
    head: String,
    body: String,
    at_ms: u64,
}

struct Canned {
    url: String,
    requests: Arc<Mutex<Vec<Received>>>,
    streamed: Arc<AtomicUsize>,
}

impl Canned {
    fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
    fn request(&self, i: usize) -> Received {
        self.requests.lock().unwrap()[i].clone()
    }
}

fn epoch_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

async fn canned(answer: impl Fn(usize, &Received) -> Reply + Send + Sync + 'static) -> Canned {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let streamed = Arc::new(AtomicUsize::new(0));
    let answer = Arc::new(answer);
    let (reqs, count) = (requests.clone(), streamed.clone());
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let (answer, reqs, count) = (answer.clone(), reqs.clone(), count.clone());
            tokio::spawn(async move { serve_one(sock, &*answer, &reqs, &count).await });
        }
    });
    Canned {
        url,
        requests,
        streamed,
    }
}

async fn serve_one(
    mut sock: TcpStream,
    answer: &(dyn Fn(usize, &Received) -> Reply + Send + Sync),
    reqs: &Mutex<Vec<Received>>,
    streamed: &AtomicUsize,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let l = l.to_ascii_lowercase();
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let received = Received {
        head,
        body: String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned(),
        at_ms: epoch_ms(),
    };
    let n = {
        let mut r = reqs.lock().unwrap();
        r.push(received.clone());
        r.len()
    };
    match answer(n, &received) {
        Reply::Bytes(b) => {
            let _ = sock.write_all(&b).await;
            let _ = sock.shutdown().await;
        }
        Reply::Stream { head, total } => {
            if sock.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let fill = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < total {
                let n = fill.len().min(total - sent);
                if sock.write_all(&fill[..n]).await.is_err() {
                    break;
                }
                sent += n;
                streamed.fetch_add(n, Ordering::Relaxed);
            }
            let _ = sock.shutdown().await;
        }
        Reply::Close => drop(sock),
    }
}

fn answer(status: &str, headers: &[(&str, String)], body: &str) -> Reply {
    let mut s = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.push_str(body);
    Reply::Bytes(s.into_bytes())
}

fn ok(data: Value) -> Reply {
    answer("200 OK", &[], &json!({ "data": data }).to_string())
}

fn viewer_data() -> Value {
    json!({
        "viewer": {"id": "u1", "name": "Ada", "displayName": "ada", "email": "ada@example.com", "active": true},
        "organization": {"id": "o1", "name": "Acme", "urlKey": "acme"}
    })
}

fn issue_json(id: &str) -> Value {
    json!({
        "id": id, "identifier": "ENG-1", "url": "https://linear.app/acme/issue/ENG-1",
        "title": "t", "description": "d", "priority": 2.0, "dueDate": null, "archivedAt": null,
        "updatedAt": "2026-01-01T00:00:00.000Z",
        "state": {"id": "s1", "name": "Todo", "type": "unstarted"},
        "assignee": null, "labels": {"nodes": []},
        "attachments": {"nodes": [{"id": "a1", "url": "https://findings.example/F-1"}]},
        "team": {"id": "t1", "key": "ENG"}
    })
}

/// Settings for tests: the canned server, fast backoffs, a short period so the
/// buckets refill in milliseconds, and a distinct secret per test (budgets are shared
/// by secret across the process).
fn settings(url: &str) -> LinearSettings {
    LinearSettings {
        api_url: url.to_owned(),
        timeout_ms: 5_000,
        concurrency: 4,
        retry: RetryPolicy {
            max_retries: 3,
            initial_backoff_ms: 5,
            max_backoff_ms: 20,
            deadline_ms: 10_000,
            ..RetryPolicy::default()
        },
        limits: RateLimits {
            period_ms: 1_000,
            ..RateLimits::default()
        },
    }
}

fn key(name: &str) -> Credential {
    Credential::api_key(format!("lin_api_{name}SECRETKEY0123456789")).unwrap()
}

/// Log lines of the adapter while the returned guard lives.
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
        (logs.clone(), tracing::subscriber::set_default(sub))
    }
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn header<'a>(r: &'a Received, name: &str) -> Option<&'a str> {
    r.head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

// ------------------------------------------------------------------ auth header

#[tokio::test]
async fn api_key_goes_bare_and_oauth_token_as_bearer() {
    let server = canned(|_, _| ok(viewer_data())).await;
    let api_key = key("bare");
    let c = LinearClient::new(&settings(&server.url), &api_key).unwrap();
    let (viewer, org) = c.viewer().await.unwrap();
    assert_eq!((viewer.id.as_str(), org.name.as_str()), ("u1", "Acme"));
    let r = server.request(0);
    assert!(r.head.starts_with("POST /graphql HTTP/1.1"), "{}", r.head);
    assert_eq!(header(&r, "authorization"), Some(api_key.secret().expose()));
    assert_eq!(header(&r, "content-type"), Some("application/json"));
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["operationName"], "Viewer");
    assert_eq!(body["query"], ops::VIEWER.document);
    assert!(body["variables"].is_object());

    let token = Credential::oauth("oauthTOKENvalue123").unwrap();
    let c = LinearClient::new(&settings(&server.url), &token).unwrap();
    c.viewer().await.unwrap();
    assert_eq!(
        header(&server.request(1), "authorization"),
        Some("Bearer oauthTOKENvalue123")
    );
}

#[test]
fn plain_http_is_refused_off_loopback() {
    let e =
        LinearClient::new(&settings("http://api.linear.app/graphql"), &key("http")).unwrap_err();
    assert!(e.to_string().contains("loopback"), "{e}");
}

// ------------------------------------------------------------------ rate limits

fn ratelimited_body() -> String {
    json!({"errors": [{"message": "Rate limit exceeded", "extensions": {"code": "RATELIMITED", "type": "Ratelimited", "userError": true}}]}).to_string()
}

#[tokio::test]
async fn ratelimited_400_is_retried_after_the_announced_reset() {
    let (logs, _guard) = Logs::capture(tracing::Level::WARN);
    let reset_at = Arc::new(Mutex::new(0u64));
    let reset = reset_at.clone();
    let server = canned(move |n, _| {
        if n == 1 {
            let at = epoch_ms() + 300;
            *reset.lock().unwrap() = at;
            answer(
                "400 Bad Request",
                &[
                    ("x-ratelimit-requests-limit", "2500".into()),
                    ("x-ratelimit-requests-remaining", "0".into()),
                    ("x-ratelimit-requests-reset", at.to_string()),
                ],
                &ratelimited_body(),
            )
        } else {
            ok(viewer_data())
        }
    })
    .await;
    let c = LinearClient::new(&settings(&server.url), &key("ratelimited")).unwrap();
    c.viewer().await.expect("retried after the reset");
    assert_eq!(server.hits(), 2);
    assert!(
        server.request(1).at_ms >= *reset_at.lock().unwrap(),
        "the retry is not sent before the announced reset"
    );
    let stats = c.stats();
    assert_eq!((stats.rate_limited, stats.retries), (1, 1));
    let logs = logs.text();
    assert_eq!(logs.matches("retrying Linear request").count(), 1, "{logs}");
    assert!(logs.contains("rate_limited"), "{logs}");
}

#[tokio::test]
async fn a_reset_announced_for_next_year_is_clamped_and_reported() {
    let (logs, _guard) = Logs::capture(tracing::Level::WARN);
    let server = canned(|_, _| {
        answer(
            "400 Bad Request",
            &[
                ("x-ratelimit-complexity-remaining", "0".into()),
                ("x-ratelimit-complexity-reset", u64::MAX.to_string()),
            ],
            &ratelimited_body(),
        )
    })
    .await;
    let mut s = settings(&server.url);
    s.retry.deadline_ms = 200;
    let c = LinearClient::new(&s, &key("forever")).unwrap();
    let e = c.viewer().await.unwrap_err();
    // The wait is one period (1 s here) at most, longer than the deadline: no retry,
    // and the caller learns how long to wait.
    assert!(
        matches!(e, PortError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(1)),
        "{e:?}"
    );
    assert_eq!(server.hits(), 1);
    let logs = logs.text();
    assert!(
        logs.contains("clamped a rate-limit header from Linear")
            && logs.contains("x-ratelimit-complexity-reset"),
        "{logs}"
    );
}

// ------------------------------------------------------------------ lost answers

#[tokio::test]
async fn a_mutation_whose_answer_is_lost_is_not_resent() {
    let server = canned(|_, _| Reply::Close).await;
    let t = Transport::new(&settings(&server.url), &key("lost")).unwrap();
    let e = t
        .execute(&ops::ISSUE_ARCHIVE, json!({"id": "x"}))
        .await
        .unwrap_err();
    assert!(e.may_have_applied(), "{e:?}");
    assert_eq!(server.hits(), 1, "sent once, never again");
    assert_eq!(t.stats().retries, 0);
}

#[tokio::test]
async fn a_create_with_attachment_is_one_request_and_never_resent_after_a_5xx() {
    let server = canned(|_, _| answer("502 Bad Gateway", &[], "upstream")).await;
    let c = LinearClient::new(&settings(&server.url), &key("create5xx")).unwrap();
    let new = webriskops_linear::NewIssue {
        team_id: "t1".into(),
        title: "XSS on /login".into(),
        description: "steps".into(),
        priority: Some(2),
        state_id: None,
        label_ids: vec![],
        assignee_id: None,
        due_date: Some("2026-12-31".into()),
        finding_url: "https://findings.example/F-1".into(),
        attachment_title: "WebRiskOps finding F-1".into(),
        attachment_subtitle: None,
    };
    let tenant = webriskops_domain::TenantId::new("acme").unwrap();
    let finding = webriskops_domain::FindingId::new("F-1").unwrap();
    let e = c
        .create_issue_with_attachment(&tenant, &finding, &new)
        .await
        .unwrap_err();
    assert!(e.may_have_applied(), "{e:?}");
    assert_eq!(server.hits(), 1);
    let body: Value = serde_json::from_str(&server.request(0).body).unwrap();
    let id = webriskops_linear::issue_client_id(&tenant, "t1", &finding);
    assert_eq!(body["operationName"], "IssueCreateWithAttachment");
    assert_eq!(body["variables"]["issue"]["id"], id.as_str());
    assert_eq!(body["variables"]["issueId"], id.as_str());
    assert_eq!(body["variables"]["url"], "https://findings.example/F-1");
    assert_eq!(body["variables"]["issue"]["priority"], 2);
}

#[tokio::test]
async fn a_query_is_retried_after_a_lost_answer_and_a_5xx() {
    let server = canned(|n, _| match n {
        1 => Reply::Close,
        2 => answer("503 Service Unavailable", &[], "busy"),
        _ => ok(json!({"issue": issue_json("i1")})),
    })
    .await;
    let c = LinearClient::new(&settings(&server.url), &key("queryretry")).unwrap();
    let issue = c.issue("i1").await.unwrap().unwrap();
    assert_eq!(issue.identifier, "ENG-1");
    assert_eq!(server.hits(), 3);
    assert_eq!(c.stats().retries, 2);
}

#[tokio::test]
async fn the_deadline_bounds_a_request_and_each_retry_is_logged() {
    let (logs, _guard) = Logs::capture(tracing::Level::WARN);
    let server = canned(|_, _| answer("503 Service Unavailable", &[], "down")).await;
    let mut s = settings(&server.url);
    s.retry = RetryPolicy {
        max_retries: 1_000,
        initial_backoff_ms: 40,
        max_backoff_ms: 40,
        jitter: 0.0,
        deadline_ms: 300,
        ..RetryPolicy::default()
    };
    let c = LinearClient::new(&s, &key("deadline")).unwrap();
    let e = c.teams().await.unwrap_err();
    assert_eq!(e.kind(), "unavailable", "{e}");
    assert!(e.to_string().contains("deadline"), "{e}");
    let hits = server.hits();
    assert!(
        hits < 1_000,
        "stopped by the deadline, not by the retry count"
    );
    let logs = logs.text();
    let retries = usize::try_from(c.stats().retries).unwrap();
    assert_eq!(
        logs.matches("retrying Linear request").count(),
        retries,
        "one warn per retry"
    );
    // The last retry's timeout is what is left of the deadline: on a busy machine it can
    // end before the request reaches the server, so the server may see one fewer.
    assert!(
        hits == retries + 1 || hits == retries,
        "{hits} requests for {retries} retries"
    );
    assert!(logs.contains("giving up on Linear request"), "{logs}");
}

// ------------------------------------------------------------------ hostile bodies

#[tokio::test]
async fn a_100_mb_body_is_not_read_whole() {
    // Announced: refused before reading.
    let server = canned(|_, _| Reply::Stream {
        head: format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {HUNDRED_MB}\r\nconnection: close\r\n\r\n"
        ),
        total: HUNDRED_MB,
    })
    .await;
    let c = LinearClient::new(&settings(&server.url), &key("big1")).unwrap();
    let e = c.viewer().await.unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
    assert_eq!(
        server.hits(),
        1,
        "the same answer would come again: not retried"
    );
    assert!(server.streamed.load(Ordering::Relaxed) < HUNDRED_MB / 2);

    // Not announced (read until close): reading stops at the cap.
    let server = canned(|_, _| Reply::Stream {
        head: "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
            .to_owned(),
        total: HUNDRED_MB,
    })
    .await;
    let t = Transport::new(&settings(&server.url), &key("big2")).unwrap();
    let e = t
        .execute(&ops::ISSUE_ARCHIVE, json!({"id": "x"}))
        .await
        .unwrap_err();
    assert!(e.may_have_applied(), "a 2xx to a write was applied: {e:?}");
    let streamed = server.streamed.load(Ordering::Relaxed);
    assert!(
        streamed < HUNDRED_MB / 2,
        "{streamed} bytes written before the client stopped reading (cap {MAX_BODY_BYTES})"
    );
}

#[tokio::test]
async fn secrets_never_reach_errors_or_logs() {
    let (logs, _guard) = Logs::capture(tracing::Level::DEBUG);
    let credential = key("echo");
    let secret = credential.secret().expose().to_owned();
    // A server that echoes the Authorization header everywhere it can.
    let server = canned(|n, r| {
        let auth = header(r, "authorization").unwrap_or_default().to_owned();
        match n {
            1 => answer(
                "400 Bad Request",
                &[],
                &json!({"errors": [{"message": format!("bad key {auth}"), "path": [auth.clone()],
                    "extensions": {"code": auth.clone(), "type": "authentication error"}}]})
                .to_string(),
            ),
            2 => answer("500 Internal Server Error", &[], &format!("boom {auth}")),
            3 => answer("401 Unauthorized", &[], &format!("{{\"error\": \"{auth}\"")),
            _ => answer("200 OK", &[], &format!("not json {auth}")),
        }
    })
    .await;
    let mut s = settings(&server.url);
    s.retry = RetryPolicy::none();
    let c = LinearClient::new(&s, &credential).unwrap();
    let mut shown = vec![format!("{c:?}"), format!("{credential:?}")];
    for _ in 0..4 {
        let e = c.viewer().await.unwrap_err();
        shown.push(e.to_string());
        shown.push(format!("{e:?}"));
    }
    shown.push(logs.text());
    for s in &shown {
        assert!(!s.contains(&secret), "secret leaked in: {s}");
        assert!(
            !s.contains("SECRETKEY"),
            "part of the secret leaked in: {s}"
        );
    }
    assert!(shown.iter().any(|s| s.contains("<redacted>")), "{shown:?}");
}

// ------------------------------------------------------------------ paging

#[tokio::test]
async fn teams_are_read_page_by_page_with_a_small_first() {
    let server = canned(|_, r| {
        let body: Value = serde_json::from_str(&r.body).unwrap();
        let after = body["variables"]["after"].as_str().map(str::to_owned);
        let (nodes, next) = match after.as_deref() {
            None => (
                json!([{"id": "t1", "key": "ENG", "name": "Eng", "archivedAt": null}]),
                json!({"hasNextPage": true, "endCursor": "c1"}),
            ),
            _ => (
                json!([{"id": "t2", "key": "OPS", "name": "Ops", "archivedAt": null}]),
                json!({"hasNextPage": false, "endCursor": "c2"}),
            ),
        };
        ok(json!({"teams": {"nodes": nodes, "pageInfo": next}}))
    })
    .await;
    let c = LinearClient::new(&settings(&server.url), &key("pages")).unwrap();
    let teams = c.teams().await.unwrap();
    assert_eq!(
        teams.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
        vec!["ENG", "OPS"]
    );
    let first: Value = serde_json::from_str(&server.request(0).body).unwrap();
    assert_eq!(first["variables"]["first"], ops::PAGE_SIZE);
    let second: Value = serde_json::from_str(&server.request(1).body).unwrap();
    assert_eq!(second["variables"]["after"], "c1");
}

// ------------------------------------------------------------------ OAuth

#[tokio::test]
async fn oauth_exchange_refresh_and_revoke_are_form_posts() {
    let server = canned(|_, r| {
        if r.head.starts_with("POST /oauth/revoke") {
            answer("200 OK", &[], "")
        } else if r.body.contains("grant_type=refresh_token") {
            answer("400 Bad Request", &[], r#"{"error":"invalid_grant","error_description":"refresh token revoked"}"#)
        } else {
            answer(
                "200 OK",
                &[],
                r#"{"access_token":"NEWACCESS1","token_type":"Bearer","expires_in":86399,"scope":"read,write","refresh_token":"NEWREFRESH1"}"#,
            )
        }
    })
    .await;
    let base = server.url.trim_end_matches("/graphql").to_owned();
    let oauth = OAuthClient::with_endpoints(
        "client1",
        LinearSecret::new("client secret", "CLIENTSECRETxyz").unwrap(),
        &format!("{base}/oauth/token"),
        &format!("{base}/oauth/revoke"),
    )
    .unwrap();
    let redirect = url::Url::parse("https://app.example.com/cb").unwrap();
    let tokens = oauth
        .exchange_code(&LinearSecret::new("code", "CODE123").unwrap(), &redirect)
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose(), "NEWACCESS1");
    assert!(tokens.expires_at.is_some());
    assert_eq!(tokens.scopes, vec!["read", "write"]);
    let r = server.request(0);
    assert!(r.head.starts_with("POST /oauth/token"), "{}", r.head);
    assert_eq!(
        header(&r, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    for part in [
        "grant_type=authorization_code",
        "code=CODE123",
        "client_id=client1",
        "client_secret=CLIENTSECRETxyz",
        "redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb",
    ] {
        assert!(r.body.contains(part), "{part} in {}", r.body);
    }

    let e = oauth
        .refresh(tokens.refresh_token.as_ref().unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "unauthenticated", "{e}");
    assert!(!e.to_string().contains("NEWREFRESH1") && !e.to_string().contains("CLIENTSECRET"));

    oauth.revoke(&tokens.access_token).await.unwrap();
    let r = server.request(2);
    assert!(r.head.starts_with("POST /oauth/revoke"), "{}", r.head);
    assert_eq!(header(&r, "authorization"), Some("Bearer NEWACCESS1"));
    assert!(r.body.contains("token=NEWACCESS1"), "{}", r.body);
}
