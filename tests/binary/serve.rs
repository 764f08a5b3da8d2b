//! `webriskops serve` end to end: the real binary as a child process, its JSON API and
//! pages over HTTP, against trello-sim and linear-sim in this process. Each test starts
//! one server (`--listen 127.0.0.1:0`), reads its address from `listening on http://…`
//! on stderr, and stops it with SIGTERM, which must end it with exit code 0.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::common::{finding, Run};

/// Adapter settings for both simulators: raised limits and short retries.
const CONFIG: &str = r#"
[trello]
timeout_secs = 10

[trello.limits]
window_ms = 1000
token_limit = 1000
key_limit = 3000
members_limit = 1000
members_window_ms = 90000

[trello.retry]
initial_backoff_ms = 20
max_backoff_ms = 200

[linear]
timeout_ms = 10000

[linear.retry]
initial_backoff_ms = 20
max_backoff_ms = 200
deadline_ms = 20000
"#;

/// Each finding's canonical URL (Linear attachments).
const FINDING_URL: &str = "https://risk.example.test/findings/{id}";
/// The store's master key, given in the environment so a leak of it can be searched for.
const MASTER_KEY: &str = "5f1c9e0d7a3b2c4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6";
/// The application's Trello secret.
pub(crate) const APP_SECRET: &str = "app-secret-4f7d2c9a1b8e6d3f0a5c7e9b2d4f6a8c";
/// The password of every person the tests add.
pub(crate) const PASSWORD: &str = "correct horse battery staple 42";
/// An export id no tenant has (the shape of a real one: 32 hex digits).
const UNKNOWN_ID: &str = "0123456789abcdef0123456789abcdef";
/// How long a test waits for the server or a job before failing.
pub(crate) const PATIENCE: Duration = Duration::from_secs(45);

// ── harness ──────────────────────────────────────────────────────────────────────────

/// Both simulators with their standard worlds, a working directory with the data
/// directory, and an HTTP client.
pub(crate) struct Sims {
    pub(crate) trello: trello_sim::SimHandle,
    pub(crate) tfx: trello_sim::Fixture,
    troot: String,
    linear: linear_sim::SimHandle,
    lfx: linear_sim::Fixture,
    lurl: String,
    pub(crate) dir: TempDir,
    http: reqwest::Client,
    /// Every answer's status, headers and body, for the search for secrets.
    seen: Arc<Mutex<String>>,
    servers: Option<(trello_sim::SimServer, linear_sim::SimServer)>,
    pub(crate) rt: tokio::runtime::Runtime,
    /// `WEBRISKOPS_DATABASE_URL` of every command, when the test runs on PostgreSQL.
    database_url: Option<String>,
}

/// A tenant's API tokens.
pub(crate) struct Tenant {
    pub(crate) admin: String,
    pub(crate) viewer: String,
}

impl Sims {
    pub(crate) fn new() -> Sims {
        Sims::with_trello_latency(Duration::ZERO)
    }

    pub(crate) fn with_trello_latency(latency: Duration) -> Sims {
        Sims::with_trello(latency, 3000)
    }

    /// Trello answering in `latency`, with `key_limit` requests per 1 s window on the
    /// application key (the simulator's and the adapter's setting alike).
    pub(crate) fn with_trello(latency: Duration, key_limit: u32) -> Sims {
        Sims::with(
            Sims::trello_config(latency, key_limit),
            linear_sim::SimConfig::default(),
        )
    }

    /// linear-sim with `linear`'s settings (e.g. webhooks to this loopback server).
    pub(crate) fn with_linear(linear: linear_sim::SimConfig) -> Sims {
        Sims::with(Sims::trello_config(Duration::ZERO, 3000), linear)
    }

    /// trello-sim retrying failed webhook deliveries at once and deactivating a webhook
    /// after `disable_after` failures in a row (Trello: over 1,000, for 30 days).
    pub(crate) fn with_trello_deactivating_after(disable_after: u32) -> Sims {
        Sims::with(
            trello_sim::SimConfig {
                webhook_retry_delays: vec![Duration::from_millis(10); 3],
                webhook_disable_after: disable_after,
                webhook_disable_after_failing_for: Duration::ZERO,
                ..Sims::trello_config(Duration::ZERO, 3000)
            },
            linear_sim::SimConfig::default(),
        )
    }

    fn trello_config(latency: Duration, key_limit: u32) -> trello_sim::SimConfig {
        trello_sim::SimConfig {
            latency,
            window: Duration::from_secs(1),
            token_limit: 1000,
            key_limit,
            members_limit: 1000,
            ..trello_sim::SimConfig::default()
        }
    }

    fn with(trello: trello_sim::SimConfig, linear: linear_sim::SimConfig) -> Sims {
        let key_limit = trello.key_limit;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (t, l) = rt.block_on(async {
            let t = trello_sim::SimServer::start(trello).await.unwrap();
            let l = linear_sim::SimServer::start(linear).await.unwrap();
            (t, l)
        });
        let (trello, linear) = (t.handle(), l.handle());
        let (tfx, lfx) = (trello.seed_standard(), linear.seed_standard());
        let dir = tempfile::tempdir().unwrap();
        let config = CONFIG.replace("key_limit = 3000", &format!("key_limit = {key_limit}"));
        std::fs::write(dir.path().join("webriskops.toml"), config).unwrap();
        let http = {
            let _in = rt.enter();
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
        };
        Sims {
            troot: t.base_url(),
            lurl: l.base_url(),
            trello,
            tfx,
            linear,
            lfx,
            dir,
            http,
            seen: Arc::new(Mutex::new(String::new())),
            servers: Some((t, l)),
            rt,
            database_url: None,
        }
    }

    pub(crate) fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// The binary in a clean environment pointing at both simulators (no tenant token).
    pub(crate) fn command(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("webriskops"));
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("WEBRISKOPS_CONFIG", self.dir.path().join("webriskops.toml"))
            .env("WEBRISKOPS_DATA_DIR", self.data_dir())
            .env("WEBRISKOPS_MASTER_KEY", MASTER_KEY)
            .env("WEBRISKOPS_TRELLO_API_ROOT", &self.troot)
            .env("TRELLO_API_KEY", &self.tfx.api_key)
            .env("TRELLO_API_SECRET", APP_SECRET)
            .env("WEBRISKOPS_LINEAR_API_URL", &self.lurl)
            .env("WEBRISKOPS_FINDING_URL", FINDING_URL)
            .stdin(Stdio::null());
        if let Some(url) = &self.database_url {
            c.env("WEBRISKOPS_DATABASE_URL", url);
        }
        c
    }

    /// The environment of a server registered with linear-sim as an OAuth application
    /// whose callback is `callback` (the server's public URL + `/settings/linear/callback`).
    pub(crate) fn linear_oauth_env(&self, callback: &str) -> Vec<(&'static str, String)> {
        let (id, secret) = self.linear.create_oauth_client(&[callback]);
        let root = self.lurl.trim_end_matches("/graphql");
        vec![
            ("LINEAR_CLIENT_ID", id),
            ("LINEAR_CLIENT_SECRET", secret),
            (
                "WEBRISKOPS_LINEAR_OAUTH_AUTHORIZE_URL",
                format!("{root}/oauth/authorize"),
            ),
            (
                "WEBRISKOPS_LINEAR_OAUTH_TOKEN_URL",
                format!("{root}/oauth/token"),
            ),
        ]
    }

    /// Every command from now on runs on the PostgreSQL database at `url`.
    pub(crate) fn on_database(mut self, url: &str) -> Sims {
        self.database_url = Some(url.to_owned());
        self
    }

    /// Runs a command of the binary to its end; it must succeed.
    pub(crate) fn cli(&self, args: &[&str]) -> Run {
        let out = self.command().args(args).output().unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_eq!(run.code, 0, "webriskops {args:?} failed: {run:?}");
        run
    }

    fn api_token(&self, tenant: &str, role: &str) -> String {
        let run = self.cli(&[
            "api-token",
            "create",
            "--tenant",
            tenant,
            "--role",
            role,
            "--json",
        ]);
        run.json()["token"].as_str().unwrap().to_owned()
    }

    /// `tenant add` with an admin and a viewer API token (before `serve`: the store is
    /// locked while it runs).
    pub(crate) fn tenant(&self, name: &str) -> Tenant {
        self.cli(&["tenant", "add", name]);
        Tenant {
            admin: self.api_token(name, "admin"),
            viewer: self.api_token(name, "viewer"),
        }
    }

    /// `user add` with [`PASSWORD`], from a password file.
    pub(crate) fn user(&self, tenant: &str, email: &str, role: &str) {
        let file = self.dir.path().join("password.txt");
        std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
        self.cli(&[
            "user",
            "add",
            "--tenant",
            tenant,
            "--email",
            email,
            "--role",
            role,
            "--password-file",
            file.to_str().unwrap(),
        ]);
        std::fs::remove_file(file).unwrap();
    }

    /// Starts `webriskops serve --listen 127.0.0.1:0 ARGS` with `env` added and waits
    /// until it listens.
    pub(crate) fn serve(&self, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut c = self.command();
        c.args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let err_log = log.clone();
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(addr.trim().to_owned());
                }
                let mut l = err_log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut stdout = child.stdout.take().unwrap();
        let out_log = log.clone();
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            out_log.lock().unwrap().push_str(&s);
        });
        let addr = match rx.recv_timeout(PATIENCE) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server never said it listens:\n{}", log.lock().unwrap());
            }
        };
        let server = Server {
            child: Some(child),
            base: format!("http://{addr}"),
            log,
            readers: vec![err_reader, out_reader],
            http: self.http.clone(),
            rt: self.rt.handle().clone(),
            seen: self.seen.clone(),
            document: std::sync::OnceLock::new(),
        };
        // Every test's API answers are held to the served OpenAPI document.
        server.check_answers();
        server
    }

    /// Cards on the fixture board per finding marker.
    pub(crate) fn cards_per_finding(&self) -> std::collections::BTreeMap<String, usize> {
        let mut m = std::collections::BTreeMap::new();
        for c in self.trello.cards(&self.tfx.board_id) {
            if let Some(at) = c.desc.find("[webriskops:finding:") {
                let rest = &c.desc[at + "[webriskops:finding:".len()..];
                let id = rest.split(']').next().unwrap().to_owned();
                *m.entry(id).or_insert(0) += 1;
            }
        }
        m
    }

    /// Everything every server answered so far.
    fn seen(&self) -> String {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Sims {
    fn drop(&mut self) {
        if let Some((t, l)) = self.servers.take() {
            self.rt.block_on(async {
                t.shutdown().await;
                l.shutdown().await;
            });
        }
    }
}

/// One answer of the server.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    headers: HeaderMap,
    pub(crate) text: String,
}

impl Resp {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text))
    }

    /// `error.code` of an error answer.
    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code: {} {}", self.status, self.text))
            .to_owned()
    }

    /// The codes of `blocked` (a readiness answer) or of `error.blocked`.
    fn blocked_codes(&self) -> Vec<String> {
        let v = self.json();
        let list = if v["blocked"].is_array() {
            v["blocked"].clone()
        } else {
            v["error"]["blocked"].clone()
        };
        list.as_array()
            .unwrap_or_else(|| panic!("no blocked list: {v}"))
            .iter()
            .map(|b| b["code"].as_str().unwrap().to_owned())
            .collect()
    }

    pub(crate) fn header(&self, name: &str) -> String {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Asserts the status, showing the answer otherwise.
    #[track_caller]
    pub(crate) fn expect(&self, status: u16) -> &Resp {
        assert_eq!(self.status, status, "{} {}", self.status, self.text);
        self
    }
}

/// A running `webriskops serve`.
pub(crate) struct Server {
    child: Option<Child>,
    base: String,
    /// Its stdout and stderr.
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    http: reqwest::Client,
    rt: tokio::runtime::Handle,
    seen: Arc<Mutex<String>>,
    /// Its OpenAPI document, once [`Server::check_answers`] fetched it.
    document: std::sync::OnceLock<Value>,
}

/// How a request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
}

impl Server {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// From now on, every JSON answer under `/api/v1` must match the schema the server's
    /// own OpenAPI document gives it (an error answer: the API's error shape).
    pub(crate) fn check_answers(&self) {
        let doc = self.get("/api/v1/openapi.json", "").expect(200).json();
        assert!(self.document.set(doc).is_ok(), "already checking");
    }

    /// Sends a request and records the answer.
    pub(crate) fn send(&self, rb: RequestBuilder) -> Resp {
        let req = rb.build().unwrap();
        let (method, path) = (
            req.method().as_str().to_lowercase(),
            req.url().path().to_owned(),
        );
        let resp = self.rt.block_on(async {
            let r = self.http.execute(req).await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let text = r.text().await.unwrap();
            Resp {
                status,
                headers,
                text,
            }
        });
        let mut seen = self.seen.lock().unwrap();
        seen.push_str(&resp.status.to_string());
        for (k, v) in &resp.headers {
            seen.push_str(&format!("\n{k}: {}", String::from_utf8_lossy(v.as_bytes())));
        }
        seen.push_str(&format!("\n\n{}\n", resp.text));
        drop(seen);
        if let Some(doc) = self.document.get().filter(|_| path.starts_with("/api/v1/")) {
            if let Some(schema) = crate::conforms::answer_schema(doc, &method, &path, resp.status) {
                if let Err(e) = crate::conforms::check(doc, schema, &resp.json(), "$") {
                    panic!(
                        "{method} {path} answered {} off its documented schema: {e}\n{}",
                        resp.status, resp.text
                    );
                }
            }
        }
        resp
    }

    fn call(&self, method: Method, path: &str, auth: Auth<'_>, body: Option<&Value>) -> Resp {
        let mut rb = self.request(method, path);
        if let Auth::Bearer(t) = auth {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        self.send(rb)
    }

    pub(crate) fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Auth::Bearer(token), None)
    }

    pub(crate) fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Auth::Bearer(token), Some(&body))
    }

    pub(crate) fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Auth::Bearer(token), Some(&body))
    }

    pub(crate) fn post_empty(&self, path: &str, token: &str) -> Resp {
        self.call(Method::POST, path, Auth::Bearer(token), None)
    }

    /// Uploads a findings file: answers the export's id.
    pub(crate) fn export(&self, token: &str, query: &str, lines: &[String]) -> String {
        let r = self.send(
            self.request(Method::POST, &format!("/api/v1/exports{query}"))
                .bearer_auth(token)
                .header("content-type", "application/x-ndjson")
                .body(lines.join("\n") + "\n"),
        );
        r.expect(202);
        r.json()["id"].as_str().unwrap().to_owned()
    }

    /// Polls an export until it is finished; answers its last state.
    pub(crate) fn wait_export(&self, token: &str, id: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let r = self.get(&format!("/api/v1/exports/{id}"), token);
            r.expect(200);
            let v = r.json();
            if v["state"] == "done" || v["state"] == "failed" {
                return v;
            }
            assert!(Instant::now() < deadline, "the export never finished: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Holds `token` and sets every choice of a ready Trello setup, then saves it.
    pub(crate) fn trello_saved(&self, s: &Sims, api_token: &str, trello_token: &str) {
        self.post(
            "/api/v1/integration/trello/token",
            api_token,
            json!({"token": trello_token}),
        )
        .expect(200);
        let r = self.put(
            "/api/v1/integration/trello",
            api_token,
            json!({
                "board_id": s.tfx.board_id,
                "list_id": s.tfx.list_id,
                "done_list_id": s.tfx.done_list_id,
                "confirm_revoke_path": true,
            }),
        );
        r.expect(200);
        assert_eq!(r.json()["blocked"], json!([]), "{}", r.text);
        let r = self.post_empty("/api/v1/integration/trello/save", api_token);
        r.expect(200);
        assert_eq!(r.json()["saved"], json!(true), "{}", r.text);
    }

    /// The status of one tracker (`GET /api/v1/integration`).
    pub(crate) fn status(&self, token: &str, tracker: &str) -> Value {
        let r = self.get("/api/v1/integration", token);
        r.expect(200);
        r.json()["integrations"][tracker].clone()
    }

    /// Signs in at /login; answers the whole answer.
    pub(crate) fn login(&self, email: &str, password: &str) -> Resp {
        self.send(
            self.request(Method::POST, "/login")
                .form(&[("email", email), ("password", password)]),
        )
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the exit; answers the exit code.
    pub(crate) fn stop(&mut self) -> i32 {
        let mut child = self.child.take().expect("running");
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the server did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        status.code().unwrap_or(-1)
    }

    /// Kills the server at once (SIGKILL, as `kill -9`): nothing of it runs on.
    pub(crate) fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
    }

    /// Stops the server; it must exit 0.
    pub(crate) fn stop_ok(&mut self) {
        let code = self.stop();
        assert_eq!(code, 0, "serve exited {code}:\n{}", self.log());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `n` valid findings with ids `PREFIX-0` …
pub(crate) fn findings(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            finding(
                &format!("{prefix}-{i}"),
                &format!("Finding {i} of {prefix}"),
            )
        })
        .collect()
}

/// Asserts no secret appears in `text` (what the server answered and logged).
#[track_caller]
fn assert_no_secrets(text: &str, secrets: &[(&str, &str)]) {
    for (name, secret) in secrets {
        assert!(!secret.is_empty());
        assert!(!text.contains(secret), "the {name} leaked");
    }
}

/// Asserts `text` (an answer to a tenant) names no file of the server's.
#[track_caller]
fn assert_no_server_paths(s: &Sims, text: &str) {
    let dir = s.dir.path().to_str().unwrap();
    assert!(!text.contains(dir), "a server path is shown: {text}");
}

/// `(method, path)` of every API route with `{tracker}` and `{id}` filled in.
fn routes_with(tracker: &str, id: &str) -> Vec<(Method, String)> {
    webriskops_server::api_routes()
        .iter()
        .map(|(m, p)| {
            (
                Method::from_bytes(m.to_ascii_uppercase().as_bytes()).unwrap(),
                p.replace("{tracker}", tracker).replace("{id}", id),
            )
        })
        .collect()
}

// ── Trello and Linear through the API ────────────────────────────────────────────────

#[test]
fn trello_setup_export_sync_and_revoke_through_the_api() {
    let s = Sims::new();
    let t = s.tenant("acme");
    let mut srv = s.serve(&[], &[]);
    let tok = t.admin.as_str();
    let trello_token = s.tfx.tokens.revocable.clone();

    // Nothing chosen and no token: every blocked state with its code and fix.
    let r = srv.put("/api/v1/integration/trello", tok, json!({}));
    r.expect(200);
    let codes = r.blocked_codes();
    for code in [
        "PROVIDER_AUTH_REQUIRED",
        "DESTINATION_BOARD_REQUIRED",
        "DESTINATION_LIST_REQUIRED",
        "REVOKE_PATH_UNCONFIRMED",
    ] {
        assert!(
            codes.contains(&code.to_owned()),
            "{code} missing: {codes:?}"
        );
    }
    for b in r.json()["blocked"].as_array().unwrap() {
        assert!(b["fix"].as_str().is_some_and(|f| !f.is_empty()), "{b}");
    }
    assert_eq!(r.json()["saved"], json!(false));

    // The token is held: the boards it sees are the choices.
    let r = srv.post(
        "/api/v1/integration/trello/token",
        tok,
        json!({"token": trello_token}),
    );
    r.expect(200);
    assert!(!r
        .blocked_codes()
        .contains(&"PROVIDER_AUTH_REQUIRED".to_owned()));
    assert!(r.json()["boards"].to_string().contains(&s.tfx.board_id));
    assert!(!r.json()["token_held_until"].is_null(), "{}", r.text);

    let r = srv.put(
        "/api/v1/integration/trello",
        tok,
        json!({
            "board_id": s.tfx.board_id,
            "list_id": s.tfx.list_id,
            "done_list_id": s.tfx.done_list_id,
            "confirm_revoke_path": true,
        }),
    );
    r.expect(200);
    assert_eq!(r.json()["blocked"], json!([]), "{}", r.text);
    let ready = r.json()["ready"].clone();
    assert!(
        ready.as_object().unwrap().values().all(|v| v == true),
        "{ready}"
    );

    let r = srv.post_empty("/api/v1/integration/trello/save", tok);
    r.expect(200);
    assert_eq!(r.json()["saved"], json!(true));
    let status = srv.status(tok, "trello");
    assert_eq!(status["record_state"], "saved", "{status}");
    assert_eq!(status["ready_to_export"], json!(true), "{status}");
    assert_eq!(srv.status(tok, "linear")["record_state"], "none");

    // Export three findings.
    let id = srv.export(tok, "", &findings("api", 3));
    let job = srv.wait_export(tok, &id);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["tracker"], "trello", "{job}");
    assert_eq!(job["summary"]["created"], json!(3), "{job}");
    assert_eq!(job["summary"]["invalid_count"], json!(0), "{job}");
    assert_eq!(job["bundle"], json!(false), "{job}");
    assert_no_server_paths(&s, &job.to_string());
    let per = s.cards_per_finding();
    assert_eq!(per.len(), 3, "{per:?}");
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    let listed = srv.get("/api/v1/exports", tok);
    listed.expect(200);
    assert_eq!(listed.json()["exports"][0]["id"], json!(id));

    // People finish two cards: two status events, in order, each read once.
    for f in ["api-1", "api-2"] {
        let card = s
            .trello
            .cards(&s.tfx.board_id)
            .into_iter()
            .find(|c| c.desc.contains(&format!("[webriskops:finding:{f}]")))
            .unwrap();
        s.trello.person_move_card(&card.id, &s.tfx.done_list_id);
    }
    srv.post_empty("/api/v1/integration/trello/sync", tok)
        .expect(200);
    let r = srv.get("/api/v1/status-events", tok);
    r.expect(200);
    let page = r.json();
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{page}");
    let mut finished: Vec<&str> = events
        .iter()
        .map(|e| e["event"]["finding_id"].as_str().unwrap())
        .collect();
    finished.sort_unstable();
    assert_eq!(finished, ["api-1", "api-2"], "{page}");
    for e in events {
        assert_eq!(e["event"]["tracker_status"], "done", "{page}");
        assert_eq!(e["event"]["previous"], "open", "{page}");
    }
    let cursors: Vec<i64> = events
        .iter()
        .map(|e| e["cursor"].as_i64().unwrap())
        .collect();
    assert!(cursors[0] < cursors[1], "{page}");
    let next = page["next_cursor"].as_i64().unwrap();
    assert_eq!(next, cursors[1]);
    // Read one at a time, the same events come in the same order.
    let first = srv.get("/api/v1/status-events?limit=1", tok).json();
    assert_eq!(first["events"], json!([events[0]]), "{first}");
    let second = srv
        .get(
            &format!(
                "/api/v1/status-events?limit=1&after={}",
                first["next_cursor"]
            ),
            tok,
        )
        .json();
    assert_eq!(second["events"], json!([events[1]]), "{second}");
    let r = srv.get(&format!("/api/v1/status-events?after={next}"), tok);
    r.expect(200);
    assert_eq!(r.json()["events"], json!([]), "{}", r.text);
    assert_eq!(r.json()["next_cursor"], json!(next));
    // A second sync finds nothing new.
    srv.post_empty("/api/v1/integration/trello/sync", tok)
        .expect(200);
    let again = srv.get("/api/v1/status-events", tok).json();
    assert_eq!(again["events"].as_array().unwrap().len(), 2, "{again}");

    // Revoke: at Trello, and the integration is blocked again.
    srv.post_empty("/api/v1/integration/trello/revoke", tok)
        .expect(200);
    assert!(s.trello.token_revoked(&trello_token));
    let status = srv.status(tok, "trello");
    assert_eq!(status["ready_to_export"], json!(false), "{status}");
    assert!(
        status["blocked"]
            .to_string()
            .contains("PROVIDER_AUTH_REQUIRED"),
        "{status}"
    );

    // Exports go on without a token: the product's sample file (one JSON document) goes
    // to the portable bundle, which can be downloaded.
    let sample = include_str!("../../crates/app/assets/sample-findings.json");
    let r = srv.send(
        srv.request(Method::POST, "/api/v1/exports")
            .bearer_auth(tok)
            .header("content-type", "application/json")
            .body(sample),
    );
    r.expect(202);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let job = srv.wait_export(tok, &id);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["bundle"], json!(true), "{job}");
    assert_eq!(job["summary"]["tracker"], "portable", "{job}");
    assert_eq!(job["summary"]["invalid_count"], json!(0), "{job}");
    assert!(job["summary"]["created"].as_u64().unwrap() > 0, "{job}");
    assert!(
        job["summary"]["fallback_reasons"]
            .to_string()
            .contains("PROVIDER_AUTH_REQUIRED"),
        "{job}"
    );
    assert_no_server_paths(&s, &job.to_string());
    let tar = srv.get(&format!("/api/v1/exports/{id}/bundle"), tok);
    tar.expect(200);
    assert!(
        tar.text.contains("wro-f-0001"),
        "the bundle holds the findings"
    );
    assert_eq!(s.cards_per_finding().len(), 3, "no card after the revoke");

    srv.stop_ok();
    let everything = format!("{}\n{}", s.seen(), srv.log());
    assert!(everything.contains("DEBUG"), "debug logs were on");
    assert_no_secrets(
        &everything,
        &[
            ("Trello token", &trello_token),
            ("application key", &s.tfx.api_key),
            ("application secret", APP_SECRET),
            ("API token", tok),
            ("viewer API token", &t.viewer),
            ("master key", MASTER_KEY),
        ],
    );
}

#[test]
fn save_is_refused_while_blocked_or_without_a_held_token() {
    let s = Sims::new();
    let t = s.tenant("acme");
    let mut srv = s.serve(&[], &[]);
    let tok = t.admin.as_str();
    let save = "/api/v1/integration/trello/save";

    let r = srv.post_empty(save, tok);
    r.expect(409);
    assert_eq!(r.code(), "TOKEN_REQUIRED");
    let e = &r.json()["error"];
    assert!(e["fix"].as_str().is_some_and(|f| !f.is_empty()), "{e}");

    // A token that can only read, and choices still missing.
    srv.post(
        "/api/v1/integration/trello/token",
        tok,
        json!({"token": s.tfx.tokens.read_only}),
    )
    .expect(200);
    srv.put(
        "/api/v1/integration/trello",
        tok,
        json!({"board_id": s.tfx.board_id}),
    )
    .expect(200);
    let r = srv.post_empty(save, tok);
    r.expect(409);
    assert_eq!(r.code(), "SETUP_BLOCKED");
    let codes = r.blocked_codes();
    for code in [
        "PROVIDER_SCOPE_UNAVAILABLE",
        "DESTINATION_LIST_REQUIRED",
        "REVOKE_PATH_UNCONFIRMED",
    ] {
        assert!(
            codes.contains(&code.to_owned()),
            "{code} missing: {codes:?}"
        );
    }
    for b in r.json()["error"]["blocked"].as_array().unwrap() {
        assert!(b["field"].as_str().is_some(), "{b}");
        assert!(b["fix"].as_str().is_some_and(|f| !f.is_empty()), "{b}");
    }
    // Nothing was persisted with the token; the choices are kept as a draft.
    let status = srv.status(tok, "trello");
    assert_ne!(status["record_state"], "saved", "{status}");
    assert!(status["record"]["credential"].is_null(), "{status}");
    srv.stop_ok();
}

#[test]
fn linear_setup_export_and_scheduled_sync_through_the_api() {
    let s = Sims::new();
    let t = s.tenant("acme");
    let mut srv = s.serve(&[], &[("WEBRISKOPS_SYNC_INTERVAL_SECS", "1")]);
    let tok = t.admin.as_str();
    let key = s.lfx.keys.full.clone();

    let r = srv.post(
        "/api/v1/integration/linear/token",
        tok,
        json!({"token": key}),
    );
    r.expect(200);
    assert!(
        r.json()["teams"].to_string().contains(&s.lfx.eng.id),
        "{}",
        r.text
    );
    let r = srv.put(
        "/api/v1/integration/linear",
        tok,
        json!({
            "team_id": s.lfx.eng.id,
            "state_id": s.lfx.eng.todo,
            "done_state_id": s.lfx.eng.done,
            "confirm_revoke_path": true,
        }),
    );
    r.expect(200);
    assert_eq!(r.json()["blocked"], json!([]), "{}", r.text);
    let r = srv.post_empty("/api/v1/integration/linear/save", tok);
    r.expect(200);
    assert_eq!(r.json()["saved"], json!(true));
    assert_eq!(srv.status(tok, "linear")["record_state"], "saved");

    let id = srv.export(tok, "", &findings("lin", 3));
    let job = srv.wait_export(tok, &id);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["tracker"], "linear", "{job}");
    assert_eq!(job["summary"]["created"], json!(3), "{job}");
    let issues = s.linear.issues(&s.lfx.eng.id);
    assert_eq!(issues.len(), 3, "{issues:?}");
    for i in 0..3 {
        let url = FINDING_URL.replace("{id}", &format!("lin-{i}"));
        assert_eq!(
            issues
                .iter()
                .filter(|is| is.attachments.iter().any(|a| a.url == url))
                .count(),
            1,
            "one issue for lin-{i}"
        );
    }
    assert!(issues.iter().all(|i| i.state_id == s.lfx.eng.todo));

    // A person finishes an issue: the scheduled sync (every second here) emits the
    // status event without anyone asking.
    let url = FINDING_URL.replace("{id}", "lin-2");
    let issue = issues
        .iter()
        .find(|is| is.attachments.iter().any(|a| a.url == url))
        .unwrap();
    s.linear.person_move_issue(&issue.id, &s.lfx.eng.done);
    let deadline = Instant::now() + PATIENCE;
    let events = loop {
        let page = srv.get("/api/v1/status-events", tok).json();
        let events = page["events"].as_array().unwrap().clone();
        if !events.is_empty() {
            break events;
        }
        assert!(Instant::now() < deadline, "no status event came");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"]["finding_id"], "lin-2");
    assert_eq!(events[0]["event"]["tracker"], "linear");
    assert_eq!(events[0]["event"]["tracker_status"], "done");
    srv.post_empty("/api/v1/integration/linear/sync", tok)
        .expect(200);
    let again = srv.get("/api/v1/status-events", tok).json();
    assert_eq!(
        again["events"].as_array().unwrap().len(),
        1,
        "once: {again}"
    );

    srv.stop_ok();
    assert_no_secrets(
        &format!("{}\n{}", s.seen(), srv.log()),
        &[("Linear key", &key), ("API token", tok)],
    );
}

/// A Linear delivery as linear-sim sends one: an `Issue` update of `issue`, stamped
/// `sent_ms`, with its `Linear-Delivery` id and a `Linear-Signature` keyed with `secret`.
fn linear_delivery(
    srv: &Server,
    path: &str,
    secret: &str,
    delivery: &str,
    issue: &str,
    sent_ms: i64,
) -> Resp {
    let body = json!({
        "action": "update",
        "type": "Issue",
        "data": {"id": issue},
        "createdAt": chrono::Utc::now().to_rfc3339(),
        "webhookTimestamp": sent_ms,
    })
    .to_string();
    let sig = webriskops_linear::webhook_signature(
        &webriskops_ports::WebhookSecret::new(secret),
        body.as_bytes(),
    );
    srv.send(
        srv.request(Method::POST, path)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Linear-Delivery", delivery)
            .header("Linear-Event", "Issue")
            .header("Linear-Signature", sig)
            .body(body),
    )
}

#[test]
fn linear_deliveries_forged_stale_or_repeated_over_http_queue_no_sync() {
    let s = Sims::with_linear(linear_sim::SimConfig {
        // The server listens on loopback; Linear delivers only to public https URLs.
        allow_loopback_webhooks: true,
        ..linear_sim::SimConfig::default()
    });
    let t = s.tenant("acme");
    // No scheduled sync during the test: only deliveries queue one.
    let mut srv = s.serve(
        &[],
        &[
            ("WEBRISKOPS_SYNC_INTERVAL_SECS", "3600"),
            ("WEBRISKOPS_METRICS_TOKEN", METRICS_TOKEN),
        ],
    );
    let tok = t.admin.as_str();
    let eng = &s.lfx.eng;
    // A key with the admin scope: Linear lets only admins register webhooks.
    srv.post(
        "/api/v1/integration/linear/token",
        tok,
        json!({"token": s.lfx.keys.admin}),
    )
    .expect(200);
    let r = srv.put(
        "/api/v1/integration/linear",
        tok,
        json!({"team_id": eng.id, "state_id": eng.todo, "done_state_id": eng.done,
               "confirm_revoke_path": true}),
    );
    assert_eq!(r.json()["blocked"], json!([]), "{}", r.text);
    srv.post_empty("/api/v1/integration/linear/save", tok)
        .expect(200);
    let hooks = s.linear.webhooks();
    assert_eq!(hooks.len(), 1, "save registered one webhook: {hooks:?}");
    let hook = hooks[0].clone();
    let path = hook
        .url
        .strip_prefix(&srv.url(""))
        .unwrap_or_else(|| panic!("{} is not the server's", hook.url))
        .to_owned();
    assert!(path.starts_with("/hooks/linear/"), "{path}");
    // From here the test sends every delivery itself: linear-sim's own ones stop.
    s.linear.set_webhook_enabled(&hook.id, false);

    let id = srv.export(tok, "", &findings("hook", 2));
    assert_eq!(srv.wait_export(tok, &id)["state"], "done");
    let mut issues = s.linear.issues(&eng.id);
    assert_eq!(issues.len(), 2, "{issues:?}");
    // hook-0's issue first: the export creates them in either order.
    issues.sort_by_key(|i| {
        i.description
            .as_deref()
            .is_some_and(|d| d.contains("[webriskops:finding:hook-1]"))
    });
    s.linear.person_move_issue(&issues[0].id, &eng.done);

    let counts = |srv: &Server| {
        let (_, m) = scrape(srv);
        let of = |k: String| m.get(&k).copied().unwrap_or(0.0);
        let hook = |o: &str| {
            of(format!(
                "webriskops_webhook_deliveries_total{{tracker=\"linear\",outcome=\"{o}\"}}"
            ))
        };
        (
            hook("accepted"),
            hook("rejected"),
            hook("duplicate"),
            of("webriskops_syncs_total{tracker=\"linear\",outcome=\"synced\"}".to_owned()),
        )
    };
    let registry = |srv: &Server| {
        let w = srv.status(tok, "linear")["webhook"].clone();
        (
            w["deliveries"].as_i64().unwrap(),
            w["rejected"].as_i64().unwrap(),
        )
    };
    let events = |srv: &Server| -> Vec<Value> {
        srv.get("/api/v1/status-events", tok).json()["events"]
            .as_array()
            .unwrap()
            .clone()
    };
    let now_ms = || chrono::Utc::now().timestamp_millis();
    assert_eq!(counts(&srv), (0.0, 0.0, 0.0, 0.0));

    // A signature made with another secret: 401, counted as refused, nothing queued.
    let forged = linear_delivery(
        &srv,
        &path,
        "not-the-webhook-secret",
        "d-forged",
        &issues[0].id,
        now_ms(),
    );
    forged.expect(401);
    assert_eq!(forged.code(), "WEBHOOK_REJECTED");
    // A correctly signed delivery sent more than a minute ago: refused the same way.
    let stale = linear_delivery(
        &srv,
        &path,
        &hook.secret,
        "d-stale",
        &issues[0].id,
        now_ms() - 90_000,
    );
    stale.expect(401);
    assert_eq!(stale.code(), "WEBHOOK_REJECTED");
    assert_eq!(registry(&srv), (0, 2), "refused, and none taken");
    assert_eq!(counts(&srv), (0.0, 2.0, 0.0, 0.0));
    assert_eq!(events(&srv), Vec::<Value>::new());

    // The genuine delivery: its sync emits the person's change.
    linear_delivery(&srv, &path, &hook.secret, "d-1", &issues[0].id, now_ms()).expect(200);
    let deadline = Instant::now() + PATIENCE;
    while events(&srv).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the delivery's sync emitted nothing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let first = events(&srv);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["event"]["finding_id"], "hook-0");
    assert_eq!(first[0]["event"]["tracker_status"], "done");
    // The only sync of the test ran for it: the refused ones queued none.
    let synced = scrape_until(&srv, |m| {
        m.get("webriskops_syncs_total{tracker=\"linear\",outcome=\"synced\"}")
            .is_some_and(|n| *n >= 1.0)
    });
    assert_eq!(
        synced.get("webriskops_syncs_total{tracker=\"linear\",outcome=\"synced\"}"),
        Some(&1.0)
    );

    // Linear's retry of d-1 (stamped and signed anew, the same `Linear-Delivery`), after
    // another person's change: acknowledged, and taken as the duplicate it is. Had it been
    // taken, its sync would emit the second change.
    s.linear.person_move_issue(&issues[1].id, &eng.done);
    linear_delivery(&srv, &path, &hook.secret, "d-1", &issues[1].id, now_ms()).expect(200);
    assert_eq!(registry(&srv), (1, 2), "one delivery taken");
    assert_eq!(counts(&srv), (1.0, 2.0, 1.0, 1.0));
    assert_eq!(events(&srv), first, "one status event for d-1");

    // A new delivery is taken: the second change comes, once.
    linear_delivery(&srv, &path, &hook.secret, "d-2", &issues[1].id, now_ms()).expect(200);
    while events(&srv).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the second delivery's sync emitted nothing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let all = events(&srv);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1]["event"]["finding_id"], "hook-1");
    let (accepted, rejected, duplicate, _) = counts(&srv);
    assert_eq!((accepted, rejected, duplicate), (2.0, 2.0, 1.0));
    assert_eq!(registry(&srv), (2, 2));
    srv.stop_ok();
    assert_no_secrets(
        &format!("{}\n{}", s.seen(), srv.log()),
        &[
            ("webhook secret", &hook.secret),
            ("Linear key", &s.lfx.keys.admin),
        ],
    );
}

/// The text of an element of a page: the first `<tag class="class">…</tag>` after `after`.
fn text_in(page: &str, after: &str, class: &str) -> String {
    let from = page
        .find(after)
        .unwrap_or_else(|| panic!("no {after} in {page}"));
    let open = format!("class=\"{class}\">");
    let at = page[from..]
        .find(&open)
        .unwrap_or_else(|| panic!("no .{class} after {after}"))
        + from
        + open.len();
    let end = page[at..].find('<').unwrap() + at;
    page[at..end].to_owned()
}

/// The /settings page says a webhook whose deliveries fail is failing, with the tracker's
/// count and what to check; once Trello deactivated it, says so with the count and that
/// saving again registers a new one. The deliveries fail for real: the public URL leads
/// to a proxy that answers 502 to them (and 200 to Trello's HEAD check).
#[test]
fn settings_show_a_failing_then_deactivated_trello_webhook_with_the_next_step() {
    // Each person's action is one delivery of 4 attempts (3 retries): 4 failures, then
    // 8, at which the webhook is deactivated.
    let s = Sims::with_trello_deactivating_after(8);
    let proxy = s.rt.block_on(trello_sim::callback::CallbackServer::start());
    proxy.set_post_status(502);
    let t = s.tenant("acme");
    s.user("acme", "pm@acme.example", "admin");
    let public = proxy.url("");
    let mut srv = s.serve(&[], &[("WEBRISKOPS_PUBLIC_URL", &public)]);
    let tok = t.admin.as_str();
    srv.trello_saved(&s, tok, &s.tfx.tokens.full);
    let hooks = s.trello.webhooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert!(hooks[0].callback_url.starts_with(&public), "{hooks:?}");

    let login = srv.login("pm@acme.example", PASSWORD);
    let cookie = login.header("set-cookie");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let settings = |srv: &Server| {
        let r = srv.send(
            srv.request(Method::GET, "/settings")
                .header("cookie", &cookie),
        );
        r.expect(200);
        let page = r.text.clone();
        (
            text_in(&page, "id=\"status-trello\"", "webhook"),
            text_in(&page, "id=\"status-trello\"", "next"),
        )
    };
    let (hook, next) = settings(&srv);
    assert!(hook.starts_with("active: no delivery yet"), "{hook}");
    assert_eq!(next, "Next step: Export findings");

    let failures_reach = |n: u32| {
        let deadline = Instant::now() + PATIENCE;
        while s.trello.webhooks()[0].consecutive_failures < n {
            assert!(Instant::now() < deadline, "{:?}", s.trello.webhooks());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    s.trello
        .person_create_card(&s.tfx.list_id, "A person's card", "");
    failures_reach(4);
    assert!(s.trello.webhooks()[0].active);
    let (hook, next) = settings(&srv);
    assert!(
        hook.starts_with("failing: 4 consecutive failed deliveries"),
        "{hook}"
    );
    assert!(hook.contains("public URL reaches this server"), "{hook}");
    assert_eq!(
        next,
        "Next step: Check that the public URL reaches this server: deliveries from Trello are failing"
    );

    s.trello
        .person_create_card(&s.tfx.list_id, "Another card", "");
    failures_reach(8);
    let deadline = Instant::now() + PATIENCE;
    while s.trello.webhooks()[0].active {
        assert!(Instant::now() < deadline, "{:?}", s.trello.webhooks());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (hook, next) = settings(&srv);
    assert!(
        hook.starts_with("deactivated by the tracker after 8 consecutive failed deliveries"),
        "{hook}"
    );
    assert!(hook.contains("save the setup again"), "{hook}");
    assert_eq!(
        next,
        "Next step: Check that the public URL reaches this server, then save Trello setup again to register a new webhook"
    );
    // The API says the same, in its own terms.
    let w = srv.status(tok, "trello")["webhook"].clone();
    assert_eq!(w["state"], "inactive", "{w}");
    assert_eq!(w["consecutive_failures"], 8, "{w}");
    // The proxy got every attempt: the webhook's failures are real deliveries.
    assert_eq!(proxy.posts().len(), 8);
    srv.stop_ok();
}

/// Starts Trello's OAuth 1.0 on `srv`'s setup page as the person with `cookie` would (the
/// server's request token, Trello's Allow page, allowed) and returns the callback path,
/// with its query, that Trello sends the browser back to.
pub(crate) fn trello_oauth1_allowed(s: &Sims, srv: &Server, cookie: &str) -> String {
    let start = srv.send(
        srv.request(Method::GET, "/settings/trello/connect")
            .header("cookie", cookie),
    );
    assert_eq!(start.status, 303, "{}", start.text);
    let allow_page = url::Url::parse(&start.header("location")).unwrap();
    assert!(
        allow_page.path().ends_with("/OAuthAuthorizeToken"),
        "{allow_page}"
    );
    let mut form: Vec<(String, String)> = allow_page.query_pairs().into_owned().collect();
    form.push(("approve".into(), "Allow".into()));
    let mut page = allow_page.clone();
    page.set_query(None);
    let allowed =
        s.rt.block_on(async { s.http.post(page.as_str()).form(&form).send().await.unwrap() });
    assert!(allowed.status().is_redirection(), "{allowed:?}");
    let callback =
        url::Url::parse(allowed.headers().get("location").unwrap().to_str().unwrap()).unwrap();
    assert_eq!(callback.path(), "/settings/trello/callback");
    format!("{}?{}", callback.path(), callback.query().unwrap())
}

/// Signs in with Trello (OAuth 1.0) on the setup page as the person with `cookie` would:
/// [`trello_oauth1_allowed`], then the callback on the same server; the token is then held.
fn connect_trello_with_oauth1(s: &Sims, srv: &Server, cookie: &str) {
    let path = trello_oauth1_allowed(s, srv, cookie);
    let finished = srv.send(srv.request(Method::GET, &path).header("cookie", cookie));
    assert_eq!(finished.status, 303, "{}", finished.text);
    assert_eq!(finished.header("location"), "/settings/trello?held=1");
}

#[test]
fn the_saved_trello_record_says_how_its_token_was_made() {
    let s = Sims::new();
    let t = s.tenant("acme");
    s.user("acme", "pm@acme.example", "admin");
    // The key's application secret, which signs the OAuth 1.0 exchanges.
    s.trello.set_api_secret(&s.tfx.api_key, APP_SECRET);
    let mut srv = s.serve(&[], &[]);
    let tok = t.admin.as_str();
    let cookie = srv.login("pm@acme.example", PASSWORD).header("set-cookie");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let choose_and_save = |srv: &Server| {
        let r = srv.put(
            "/api/v1/integration/trello",
            tok,
            json!({"board_id": s.tfx.board_id, "list_id": s.tfx.list_id,
                   "confirm_revoke_path": true}),
        );
        assert_eq!(r.json()["blocked"], json!([]), "{}", r.text);
        srv.post_empty("/api/v1/integration/trello/save", tok)
            .expect(200);
        srv.status(tok, "trello")["record"]["auth_method"].clone()
    };

    connect_trello_with_oauth1(&s, &srv, &cookie);
    assert_eq!(choose_and_save(&srv), "oauth1");
    // A token from the authorize page (or pasted) replaces it: the record says so, both
    // held after the OAuth 1.0 one and saved over a record made with it.
    srv.post(
        "/api/v1/integration/trello/token",
        tok,
        json!({"token": s.tfx.tokens.full}),
    )
    .expect(200);
    assert_eq!(choose_and_save(&srv), "api_key_token");
    connect_trello_with_oauth1(&s, &srv, &cookie);
    assert_eq!(choose_and_save(&srv), "oauth1");
    srv.stop_ok();
}

// ── who may do what ──────────────────────────────────────────────────────────────────

/// A draft Trello setup (choices, no token) and an export of it, which goes to the
/// portable fallback (only a token is missing): a job with a bundle. Answers the job's id.
fn draft_export_with_bundle(srv: &Server, s: &Sims, tok: &str, prefix: &str) -> String {
    srv.put(
        "/api/v1/integration/trello",
        tok,
        json!({"board_id": s.tfx.board_id, "list_id": s.tfx.list_id, "confirm_revoke_path": true}),
    )
    .expect(200);
    let id = srv.export(tok, "?tracker=trello", &findings(prefix, 2));
    let job = srv.wait_export(tok, &id);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["bundle"], json!(true), "{job}");
    assert_no_server_paths(s, &job.to_string());
    id
}

#[test]
fn one_tenant_never_sees_or_changes_another_tenants_data() {
    let s = Sims::new();
    let a = s.tenant("alpha");
    let b = s.tenant("bravo");
    s.user("bravo", "bo@bravo.example", "admin");
    let mut srv = s.serve(&[], &[]);

    // Alpha: Trello saved, an export, a status event; a Linear draft exported to a bundle.
    srv.trello_saved(&s, &a.admin, &s.tfx.tokens.full);
    let trello_job = srv.export(&a.admin, "?tracker=trello", &findings("alpha", 2));
    assert_eq!(srv.wait_export(&a.admin, &trello_job)["state"], "done");
    let card = s.trello.cards(&s.tfx.board_id)[0].clone();
    s.trello.person_move_card(&card.id, &s.tfx.done_list_id);
    srv.post_empty("/api/v1/integration/trello/sync", &a.admin)
        .expect(200);
    let a_events = srv.get("/api/v1/status-events", &a.admin).json();
    assert_eq!(
        a_events["events"].as_array().unwrap().len(),
        1,
        "{a_events}"
    );
    srv.put(
        "/api/v1/integration/linear",
        &a.admin,
        json!({"team_id": s.lfx.eng.id, "state_id": s.lfx.eng.todo, "confirm_revoke_path": true}),
    )
    .expect(200);
    let bundle_job = srv.export(&a.admin, "?tracker=linear", &findings("alpha-l", 2));
    let done = srv.wait_export(&a.admin, &bundle_job);
    assert_eq!(done["bundle"], json!(true), "{done}");
    let tar = srv.get(&format!("/api/v1/exports/{bundle_job}/bundle"), &a.admin);
    tar.expect(200);
    assert_eq!(tar.header("content-type"), "application/x-tar");
    assert!(
        tar.text.contains("bundle/manifest.json"),
        "the bundle's files"
    );
    assert!(tar.text.contains("alpha-l-1"), "the bundle's findings");
    // Alpha holds a Linear key for a setup in progress.
    let held = srv.post(
        "/api/v1/integration/linear/token",
        &a.admin,
        json!({"token": s.lfx.keys.full}),
    );
    held.expect(200);
    assert!(held.text.contains(&s.lfx.eng.in_progress), "{}", held.text);
    let a_ids = [trello_job.clone(), bundle_job.clone()];

    // What Bravo must never see: Alpha's ids, name, board, or the workflow states
    // Alpha's held key sees.
    let foreign = |text: &str| {
        a_ids.iter().any(|id| text.contains(id.as_str()))
            || text.contains("alpha")
            || text.contains(&s.tfx.board_id)
            || text.contains(&s.lfx.eng.in_progress)
    };

    // Routes with an id: Alpha's ids answer Bravo exactly as an unknown id does.
    let b_cookie = {
        let r = srv.login("bo@bravo.example", PASSWORD);
        r.expect(303);
        let c = r.header("set-cookie");
        c.split(';').next().unwrap().to_owned()
    };
    let by_token = |path: &str| srv.get(path, &b.admin);
    let by_session =
        |path: &str| srv.send(srv.request(Method::GET, path).header("cookie", &b_cookie));
    type Getter<'a> = &'a dyn Fn(&str) -> Resp;
    let id_routes: Vec<(&str, Getter<'_>, &str)> = vec![
        ("api", &by_token, "/api/v1/exports/{id}"),
        ("api", &by_token, "/api/v1/exports/{id}/bundle"),
        ("api (session)", &by_session, "/api/v1/exports/{id}"),
        ("api (session)", &by_session, "/api/v1/exports/{id}/bundle"),
        ("page", &by_session, "/exports/{id}"),
    ];
    for (kind, send, route) in &id_routes {
        let unknown = send(&route.replace("{id}", UNKNOWN_ID));
        assert_eq!(unknown.status, 404, "{kind} {route}: {}", unknown.text);
        for id in &a_ids {
            let r = send(&route.replace("{id}", id));
            assert_eq!(r.status, 404, "{kind} {route} with Alpha's id: {}", r.text);
            assert_eq!(
                r.text,
                unknown.text.replace(UNKNOWN_ID, id),
                "{kind} {route}: Alpha's id is told apart from an unknown one"
            );
            assert!(!foreign(&r.text.replace(id.as_str(), "")), "{}", r.text);
        }
    }
    // Every id route of the API is in the table above.
    for (_, p) in &webriskops_server::api_routes() {
        if p.contains("{id}") {
            assert!(
                id_routes.iter().any(|(_, _, r)| *r == p.as_str()),
                "{p} is not checked"
            );
        }
    }

    // Routes without an id answer Bravo's own, empty, data.
    let exports = by_token("/api/v1/exports");
    exports.expect(200);
    assert_eq!(exports.json()["exports"], json!([]), "{}", exports.text);
    let status = by_token("/api/v1/integration");
    status.expect(200);
    assert_eq!(status.json()["tenant"], "bravo");
    for tracker in ["trello", "linear"] {
        assert_eq!(
            status.json()["integrations"][tracker]["record_state"],
            "none",
            "{}",
            status.text
        );
    }
    for path in [
        "/api/v1/status-events",
        "/api/v1/status-events?after=0",
        "/api/v1/status-events?after=-5",
    ] {
        let r = by_token(path);
        r.expect(200);
        assert_eq!(r.json()["events"], json!([]), "{path}: {}", r.text);
    }
    for r in [&exports, &status] {
        assert!(!foreign(&r.text), "{}", r.text);
    }
    for page in [
        "/settings",
        "/settings/trello",
        "/settings/linear",
        "/exports",
    ] {
        let r = by_session(page);
        assert!(r.status < 400, "{page}: {} {}", r.status, r.text);
        assert!(!foreign(&r.text), "{page} shows Alpha's data: {}", r.text);
    }

    // Bravo's writes change Bravo's records only.
    for tracker in ["trello", "linear"] {
        for (m, p) in routes_with(tracker, UNKNOWN_ID) {
            if m == Method::GET || p == "/api/v1/exports" {
                continue;
            }
            let body = (m == Method::PUT).then(|| json!({}));
            let r = srv.call(m.clone(), &p, Auth::Bearer(&b.admin), body.as_ref());
            assert!(!foreign(&r.text), "{m} {p}: {}", r.text);
        }
    }
    assert!(!s.trello.token_revoked(&s.tfx.tokens.full), "Alpha's token");
    let a_status = srv.status(&a.admin, "trello");
    assert_eq!(a_status["record_state"], "saved", "{a_status}");
    assert_eq!(a_status["ready_to_export"], json!(true), "{a_status}");
    assert_eq!(
        srv.get("/api/v1/status-events", &a.admin).json(),
        a_events,
        "Alpha's events are unchanged"
    );
    let a_exports = srv.get("/api/v1/exports", &a.admin).json();
    assert_eq!(a_exports["exports"].as_array().unwrap().len(), 2);
    srv.stop_ok();
}

#[test]
fn viewers_read_and_only_admins_change() {
    let s = Sims::new();
    let t = s.tenant("acme");
    s.user("acme", "vic@acme.example", "viewer");
    let mut srv = s.serve(&[], &[]);
    let job = draft_export_with_bundle(&srv, &s, &t.admin, "v");
    let before = srv.get("/api/v1/integration", &t.admin).json();

    let mut unsafe_routes = 0;
    for tracker in ["trello", "linear"] {
        for (m, p) in routes_with(tracker, &job) {
            if m == Method::GET {
                let r = srv.get(&p, &t.viewer);
                assert_eq!(r.status, 200, "viewer GET {p}: {}", r.text);
            } else {
                unsafe_routes += 1;
                let body = match p.rsplit('/').next() {
                    Some("token") => Some(json!({"token": s.tfx.tokens.full})),
                    _ if m == Method::PUT => Some(json!({"board_id": s.tfx.other_board_id})),
                    _ => None,
                };
                let r = srv.call(m.clone(), &p, Auth::Bearer(&t.viewer), body.as_ref());
                assert_eq!(r.status, 403, "viewer {m} {p}: {}", r.text);
                assert_eq!(r.code(), "FORBIDDEN", "viewer {m} {p}");
            }
        }
    }
    assert!(unsafe_routes >= 6);
    // A viewer signed in on the pages reads them and cannot post their forms.
    let login = srv.login("vic@acme.example", PASSWORD);
    login.expect(303);
    let cookie = login.header("set-cookie");
    let cookie = cookie.split(';').next().unwrap();
    for page in ["/settings", "/settings/trello", &format!("/exports/{job}")] {
        let r = srv.send(srv.request(Method::GET, page).header("cookie", cookie));
        assert_eq!(r.status, 200, "viewer page {page}: {}", r.text);
    }
    for (form, fields) in [
        (
            "choices",
            vec![("container_id", s.tfx.other_board_id.as_str())],
        ),
        ("token", vec![("token", s.tfx.tokens.full.as_str())]),
        ("save", vec![]),
        ("revoke", vec![("confirm", "yes")]),
        ("sync", vec![]),
    ] {
        let r = srv.send(
            srv.request(Method::POST, &format!("/settings/trello/{form}"))
                .header("cookie", cookie)
                .header("sec-fetch-site", "same-origin")
                .form(&fields),
        );
        assert_eq!(r.status, 403, "viewer form {form}: {}", r.text);
    }
    // A viewer's upload is refused too, and nothing changed.
    let r = srv.send(
        srv.request(Method::POST, "/api/v1/exports?tracker=trello")
            .bearer_auth(&t.viewer)
            .body(findings("viewer", 1).join("\n")),
    );
    r.expect(403);
    assert_eq!(srv.get("/api/v1/integration", &t.admin).json(), before);
    let exports = srv.get("/api/v1/exports", &t.admin).json();
    assert_eq!(exports["exports"].as_array().unwrap().len(), 1, "{exports}");
    assert!(s.trello.cards(&s.tfx.board_id).is_empty());
    srv.stop_ok();
}

// ── the browser's security ───────────────────────────────────────────────────────────

#[test]
fn cross_site_requests_with_the_session_cookie_are_refused() {
    let s = Sims::new();
    let t = s.tenant("acme");
    s.user("acme", "ann@acme.example", "admin");
    let mut srv = s.serve(&[], &[]);

    let login = srv.login("ann@acme.example", PASSWORD);
    login.expect(303);
    let set_cookie = login.header("set-cookie");
    assert!(set_cookie.starts_with("wro_session="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite="), "{set_cookie}");
    assert!(
        !set_cookie.contains("Secure"),
        "no Secure on http: {set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let with_cookie = |m: Method, path: &str| srv.request(m, path).header("cookie", &cookie);
    let choices = json!({"board_id": s.tfx.board_id});

    let refused = [
        ("cross-site fetch", vec![("sec-fetch-site", "cross-site")]),
        ("same-site fetch", vec![("sec-fetch-site", "same-site")]),
        ("another origin", vec![("origin", "http://evil.example")]),
        ("another port", vec![("origin", "http://127.0.0.1:1")]),
        ("no fetch metadata, no origin", vec![]),
    ];
    for (what, headers) in &refused {
        let mut rb = with_cookie(Method::PUT, "/api/v1/integration/trello").json(&choices);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = srv.send(rb);
        assert_eq!(r.status, 403, "{what}: {}", r.text);
        assert_eq!(r.code(), "CROSS_SITE_REQUEST", "{what}");
        let mut rb = with_cookie(Method::POST, "/settings/trello/choices")
            .form(&[("container_id", s.tfx.board_id.as_str())]);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = srv.send(rb);
        assert_eq!(r.status, 403, "{what} (page form): {}", r.text);
    }
    // A cross-site sign-out does not end the session either.
    srv.send(with_cookie(Method::POST, "/logout").header("sec-fetch-site", "cross-site"))
        .expect(403);
    // Nothing changed.
    let status = srv.send(with_cookie(Method::GET, "/api/v1/integration"));
    status.expect(200);
    let trello = &status.json()["integrations"]["trello"];
    assert_eq!(trello["record_state"], "none", "{trello}");

    // From our own pages: accepted.
    let r = srv.send(
        with_cookie(Method::PUT, "/api/v1/integration/trello")
            .header("sec-fetch-site", "same-origin")
            .json(&choices),
    );
    r.expect(200);
    let r = srv.send(
        with_cookie(Method::PUT, "/api/v1/integration/trello")
            .header("origin", srv.base.clone())
            .json(&json!({"list_id": s.tfx.list_id})),
    );
    r.expect(200);
    let status = srv.get("/api/v1/integration", &t.admin).json();
    let record = &status["integrations"]["trello"]["record"];
    assert_eq!(record["board_id"], json!(s.tfx.board_id), "{status}");
    assert_eq!(record["list_id"], json!(s.tfx.list_id), "{status}");

    // Sign-out ends the session on the server.
    srv.send(with_cookie(Method::POST, "/logout").header("sec-fetch-site", "same-origin"))
        .expect(303);
    let r = srv.send(with_cookie(Method::GET, "/api/v1/integration"));
    r.expect(401);
    assert_eq!(r.code(), "UNAUTHENTICATED");

    srv.stop_ok();
    let session_id = cookie.trim_start_matches("wro_session=");
    assert_no_secrets(
        &format!("{}\n{}", s.seen(), srv.log()),
        &[
            ("password", PASSWORD),
            ("API token", &t.admin),
            ("application key", &s.tfx.api_key),
            ("master key", MASTER_KEY),
        ],
    );
    assert!(!srv.log().contains(session_id), "the session id is logged");
}

/// The value of the first hidden `nonce` field of a page (empty when it has none).
fn nonce_in(html: &str) -> String {
    let Some(at) = html.find(r#"name="nonce" value=""#) else {
        return String::new();
    };
    let rest = &html[at + r#"name="nonce" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The `return_url` of the setup page's first authorize link (`id="authorize"`).
fn authorize_return_url(html: &str) -> String {
    let at = html.find(r#"id="authorize""#).expect("an authorize link");
    let start = html[..at].rfind("href=\"").unwrap() + "href=\"".len();
    let href = html[start..start + html[start..].find('"').unwrap()]
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    url::Url::parse(&href)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "return_url")
        .expect("the link names where Trello returns")
        .1
        .into_owned()
}

#[test]
fn a_token_posted_without_the_pages_one_time_nonce_is_refused_and_changes_nothing() {
    let s = Sims::new();
    let t = s.tenant("acme");
    s.user("acme", "ann@acme.example", "admin");
    let mut srv = s.serve(&[], &[]);
    let cookie_of = |r: &Resp| {
        r.expect(303);
        r.header("set-cookie").split(';').next().unwrap().to_owned()
    };
    let cookie = cookie_of(&srv.login("ann@acme.example", PASSWORD));
    let page = |path: &str| {
        let r = srv.send(srv.request(Method::GET, path).header("cookie", &cookie));
        r.expect(200);
        r
    };
    // What the authorized page's script (or the paste form) posts, from our own origin.
    let post_token = |cookie: &str, token: &str, nonce: Option<&str>| {
        let mut form = vec![("token", token)];
        form.extend(nonce.map(|n| ("nonce", n)));
        srv.send(
            srv.request(Method::POST, "/settings/trello/token")
                .header("cookie", cookie)
                .header("sec-fetch-site", "same-origin")
                .form(&form),
        )
    };
    let held = || srv.status(&t.admin, "trello")["token_held_until"].clone();
    let attackers = s.tfx.tokens.full.clone();
    let anns = s.tfx.tokens.revocable.clone();

    // A crafted link, /settings/trello/authorized#token=<the attacker's>: the page has no
    // nonce to post, and the post its script makes is refused with a page that says why.
    let crafted = page("/settings/trello/authorized");
    assert_eq!(nonce_in(&crafted.text), "");
    let r = post_token(&cookie, &attackers, None);
    r.expect(403);
    assert!(r.text.contains("TOKEN_FORM_NOT_YOURS"), "{}", r.text);
    assert!(r.text.contains("nothing was changed"), "{}", r.text);
    let r = post_token(&cookie, &attackers, Some(&"0f".repeat(32)));
    r.expect(403);
    assert_eq!(held(), Value::Null, "no token is held");

    // The real flow: the setup page's authorize link returns to the authorized page with
    // the page's nonce, which posts it back with the token.
    let setup = page("/settings/trello");
    let nonce = nonce_in(&setup.text);
    assert_eq!(nonce.len(), 64, "{}", setup.text);
    let return_url = authorize_return_url(&setup.text);
    let back = return_url
        .strip_prefix(&srv.base)
        .unwrap_or_else(|| panic!("{return_url} is not ours"));
    assert_eq!(back, format!("/settings/trello/authorized?nonce={nonce}"));
    assert_eq!(nonce_in(&page(back).text), nonce);
    // Another session (the attacker's own, say) cannot use the nonce Ann's page got.
    let other = cookie_of(&srv.login("ann@acme.example", PASSWORD));
    post_token(&other, &attackers, Some(&nonce)).expect(403);
    assert_eq!(held(), Value::Null, "no token is held");
    let r = post_token(&cookie, &anns, Some(&nonce));
    r.expect(303);
    assert_eq!(r.header("location"), "/settings/trello?held=1");
    let until = held();
    assert!(until.is_string(), "{until}");
    // Used once: posting it again is refused, and the held token stays Ann's.
    post_token(&cookie, &attackers, Some(&nonce)).expect(403);
    assert_eq!(held(), until);
    // The paste form carries a fresh nonce of its own each time the page is shown.
    let again = nonce_in(&page("/settings/trello").text);
    assert_ne!(again, nonce);
    post_token(&cookie, &anns, Some(&again)).expect(303);
    srv.stop_ok();
}

#[test]
fn a_store_failure_answers_a_request_id_and_logs_the_detail_never_a_path() {
    let s = Sims::new();
    let t = s.tenant("acme");
    s.user("acme", "ann@acme.example", "admin");
    let mut srv = s.serve(&[], &[]);
    srv.get("/api/v1/status-events", &t.admin).expect(200);
    let login = srv.login("ann@acme.example", PASSWORD);
    login.expect(303);
    let cookie = login
        .header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // The store fails under the running server: a table it reads is gone.
    {
        let conn = rusqlite::Connection::open(s.data_dir().join("webriskops.db")).unwrap();
        conn.execute_batch("ALTER TABLE status_events RENAME TO status_events_moved")
            .unwrap();
    }
    let r = srv.get("/api/v1/status-events", &t.admin);
    r.expect(500);
    assert_eq!(r.code(), "INTERNAL");
    assert_no_server_paths(&s, &r.text);
    assert!(
        !r.text.contains("status_events"),
        "store detail answered: {}",
        r.text
    );
    let error = &r.json()["error"];
    let id = error["request_id"]
        .as_str()
        .expect("a request id")
        .to_owned();
    assert!(
        error["message"].as_str().unwrap().contains(&id),
        "{}",
        r.text
    );
    // The page that reads the same table says the same, as a page.
    let page = srv.send(
        srv.request(Method::GET, "/settings/trello")
            .header("cookie", &cookie),
    );
    page.expect(500);
    assert_no_server_paths(&s, &page.text);
    assert!(page.text.contains("request id"), "{}", page.text);
    {
        let conn = rusqlite::Connection::open(s.data_dir().join("webriskops.db")).unwrap();
        conn.execute_batch("ALTER TABLE status_events_moved RENAME TO status_events")
            .unwrap();
    }
    srv.stop_ok();
    // The operator finds the detail in the log under the id.
    let log = srv.log();
    let line = log
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("request id {id} is not logged: {log}"));
    assert!(line.contains("status_events"), "{line}");
}

/// A `multipart/form-data` body of `(name, filename, content)` parts, and its type.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "wro-test-boundary-7f3a9c";
    let mut body = Vec::new();
    for (name, file, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let disposition = match file {
            Some(f) => format!("form-data; name=\"{name}\"; filename=\"{f}\""),
            None => format!("form-data; name=\"{name}\""),
        };
        body.extend_from_slice(format!("Content-Disposition: {disposition}\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn the_upload_forms_text_fields_are_bounded_though_the_route_has_no_body_limit() {
    let s = Sims::new();
    let t = s.tenant("acme");
    s.user("acme", "ann@acme.example", "admin");
    let mut srv = s.serve(&[], &[]);
    srv.trello_saved(&s, &t.admin, &s.tfx.tokens.full);
    let login = srv.login("ann@acme.example", PASSWORD);
    login.expect(303);
    let cookie = login
        .header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let upload = |parts: &[(&str, Option<&str>, &[u8])]| {
        let (content_type, body) = multipart(parts);
        srv.send(
            srv.request(Method::POST, "/exports")
                .header("cookie", &cookie)
                .header("sec-fetch-site", "same-origin")
                .header("content-type", content_type)
                .body(body),
        )
    };
    let file = findings("wro-mp", 1).join("\n").into_bytes();
    // A tracker field longer than any tracker's name: refused as it is read (small enough
    // that the socket takes it whole before the answer).
    let huge = vec![b'a'; 16 * 1024];
    let r = upload(&[
        ("tracker", None, &huge),
        ("findings", Some("f.jsonl"), &file),
    ]);
    r.expect(413);
    assert!(r.text.contains("FIELD_TOO_LARGE"), "{}", r.text);
    let r = upload(&[
        ("findings", Some("f.jsonl"), &file),
        ("fallback", None, &huge),
    ]);
    r.expect(413);
    // A field the form does not have: refused.
    let r = upload(&[("findings", Some("f.jsonl"), &file), ("extra", None, &huge)]);
    r.expect(400);
    assert_eq!(
        srv.get("/api/v1/exports", &t.admin).json()["exports"],
        json!([]),
        "nothing was queued"
    );
    // The form's own fields: queued.
    let r = upload(&[
        ("findings", Some("f.jsonl"), &file),
        ("tracker", None, b"trello"),
        ("fallback", None, b"never"),
    ]);
    r.expect(303);
    assert!(
        r.header("location").starts_with("/exports/"),
        "{}",
        r.header("location")
    );
    srv.stop_ok();
}

#[test]
fn pages_and_api_answers_carry_the_security_headers() {
    let s = Sims::new();
    let t = s.tenant("acme");
    let mut srv = s.serve(&[], &[]);
    let answers = [
        (
            "login page",
            srv.call(Method::GET, "/login", Auth::None, None),
        ),
        ("api", srv.get("/api/v1/integration", &t.admin)),
        (
            "api error",
            srv.call(Method::GET, "/api/v1/integration", Auth::None, None),
        ),
        (
            "not found",
            srv.get(&format!("/api/v1/exports/{UNKNOWN_ID}"), &t.admin),
        ),
    ];
    assert_eq!(answers[0].1.status, 200);
    assert!(answers[0].1.header("content-type").starts_with("text/html"));
    assert_eq!(answers[1].1.status, 200);
    assert_eq!(answers[2].1.status, 401);
    assert_eq!(answers[3].1.status, 404);
    for (what, r) in &answers {
        let csp = r.header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        assert!(csp.contains("default-src"), "{what}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{what}");
        let referrer = r.header("referrer-policy");
        assert!(
            [
                "no-referrer",
                "same-origin",
                "strict-origin-when-cross-origin"
            ]
            .contains(&referrer.as_str()),
            "{what}: {referrer}"
        );
    }
    srv.stop_ok();
}

#[test]
fn sign_in_is_throttled_after_five_failures_and_cookies_are_secure_behind_https() {
    let s = Sims::new();
    s.tenant("acme");
    s.user("acme", "ann@acme.example", "admin");
    let mut srv = s.serve(&["--public-url", "https://ops.example.test"], &[]);

    let ok = srv.login("ann@acme.example", PASSWORD);
    ok.expect(303);
    let set_cookie = ok.header("set-cookie");
    for flag in ["HttpOnly", "SameSite=", "Secure"] {
        assert!(set_cookie.contains(flag), "{flag}: {set_cookie}");
    }

    for i in 0..5 {
        let r = srv.login("ann@acme.example", &format!("wrong password {i}"));
        assert_eq!(r.status, 401, "attempt {i}: {}", r.text);
    }
    let r = srv.login("ann@acme.example", PASSWORD);
    assert_eq!(
        r.status, 429,
        "the right password after five failures: {}",
        r.text
    );
    assert!(
        r.header("set-cookie").is_empty(),
        "no session while throttled"
    );
    srv.stop_ok();
    assert_no_secrets(&srv.log(), &[("password", PASSWORD)]);
}

// ── the API's contract ───────────────────────────────────────────────────────────────

#[test]
fn the_openapi_document_lists_exactly_the_routes_served() {
    let s = Sims::new();
    let t = s.tenant("acme");
    let mut srv = s.serve(&[], &[]);
    let doc = srv.get("/api/v1/openapi.json", &t.admin);
    doc.expect(200);
    let doc = doc.json();
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "put", "post", "delete", "patch", "head"].contains(&m.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut listed: Vec<(String, String)> = webriskops_server::api_routes()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p))
        .collect();
    listed.sort();
    assert_eq!(documented, listed);

    // Every documented route is served: our own answers are JSON, the router's own 404
    // and 405 have an empty body.
    for (m, p) in &documented {
        let path = p.replace("{tracker}", "trello").replace("{id}", UNKNOWN_ID);
        let method = Method::from_bytes(m.to_ascii_uppercase().as_bytes()).unwrap();
        let body = (method == Method::PUT).then(|| json!({}));
        let r = srv.call(method, &path, Auth::Bearer(&t.admin), body.as_ref());
        assert!(
            r.status != 405 && !r.text.is_empty(),
            "{m} {p} is not routed: {} {:?}",
            r.status,
            r.text
        );
        let v: Value = serde_json::from_str(&r.text)
            .unwrap_or_else(|e| panic!("{m} {p}: not JSON ({e}): {}", r.text));
        if r.status == 404 {
            assert_eq!(v["error"]["code"], "NOT_FOUND", "{m} {p}");
        }
    }
    // And nothing else is served at those paths: every other method gets the router's
    // own 405 (a route added outside the table would answer here).
    let paths: std::collections::BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for p in paths {
        let path = p.replace("{tracker}", "trello").replace("{id}", UNKNOWN_ID);
        for m in ["get", "put", "post", "delete", "patch"] {
            if documented.contains(&(m.to_owned(), p.clone())) {
                continue;
            }
            let method = Method::from_bytes(m.to_ascii_uppercase().as_bytes()).unwrap();
            let r = srv.call(method, &path, Auth::Bearer(&t.admin), None);
            assert_eq!(
                (r.status, r.text.as_str()),
                (405, ""),
                "{m} {p} is served but not documented"
            );
        }
    }
    // The router's own answers are what the checks above tell apart.
    let r = srv.get("/api/v1/no-such-route", &t.admin);
    assert_eq!((r.status, r.text.as_str()), (404, ""));
    srv.stop_ok();
}

#[test]
fn bad_input_gets_a_status_code_message_and_fix() {
    let s = Sims::new();
    let t = s.tenant("acme");
    let mut srv = s.serve(&[], &[("WEBRISKOPS_MAX_UPLOAD_BYTES", "2000")]);
    let tok = t.admin.as_str();
    let check = |r: &Resp, status: u16, code: &str| {
        assert_eq!(r.status, status, "{}", r.text);
        assert_eq!(r.code(), code, "{}", r.text);
        let e = &r.json()["error"];
        for field in ["message", "fix"] {
            assert!(e[field].as_str().is_some_and(|m| !m.is_empty()), "{e}");
        }
    };

    let r = srv.put(
        "/api/v1/integration/trello",
        tok,
        json!({"board_id": s.tfx.board_id, "colour": "blue"}),
    );
    check(&r, 400, "BAD_REQUEST");
    assert!(r.text.contains("colour"), "names the field: {}", r.text);
    let r = srv.put(
        "/api/v1/integration/linear",
        tok,
        json!({"board_id": s.tfx.board_id}),
    );
    check(&r, 400, "BAD_REQUEST");
    assert!(r.text.contains("board_id"), "{}", r.text);
    let r = srv.send(
        srv.request(Method::PUT, "/api/v1/integration/trello")
            .bearer_auth(tok)
            .header("content-type", "application/json")
            .body("{not json"),
    );
    check(&r, 400, "BAD_REQUEST");
    let r = srv.post("/api/v1/integration/trello/token", tok, json!({"tok": "x"}));
    check(&r, 400, "BAD_REQUEST");
    // A body over the limit of the JSON routes (64 KiB) is too large, not malformed.
    let huge = json!({"board_id": "b".repeat(100 * 1024)});
    check(
        &srv.put("/api/v1/integration/trello", tok, huge.clone()),
        413,
        "BODY_TOO_LARGE",
    );
    let huge = json!({"token": "t".repeat(100 * 1024)});
    check(
        &srv.post("/api/v1/integration/trello/token", tok, huge),
        413,
        "BODY_TOO_LARGE",
    );
    let r = srv.put("/api/v1/integration/jira", tok, json!({}));
    check(&r, 404, "NOT_FOUND");
    // Nothing of the refused requests was kept.
    assert_eq!(srv.status(tok, "trello")["record_state"], "none");
    assert_eq!(srv.status(tok, "linear")["record_state"], "none");

    let upload = |body: Vec<u8>| {
        srv.send(
            srv.request(Method::POST, "/api/v1/exports?tracker=trello")
                .bearer_auth(tok)
                .body(body),
        )
    };
    check(&upload(Vec::new()), 400, "BAD_REQUEST");
    let big = findings("big", 40).join("\n").into_bytes();
    assert!(big.len() > 2000);
    check(&upload(big), 413, "UPLOAD_TOO_LARGE");
    let r = srv.send(
        srv.request(Method::POST, "/api/v1/exports?tracker=asana")
            .bearer_auth(tok)
            .body(findings("x", 1).join("\n")),
    );
    check(&r, 400, "BAD_REQUEST");
    let listed = srv.get("/api/v1/exports", tok).json();
    assert_eq!(listed["exports"], json!([]), "no job for a refused upload");
    let uploads = s.data_dir().join("server").join("uploads");
    if uploads.exists() {
        assert_eq!(
            crate::common::files_under(&uploads),
            Vec::<std::path::PathBuf>::new(),
            "a refused upload is not kept"
        );
    }
    for query in ["after=abc", "limit=-1", "after=1.5"] {
        let r = srv.get(&format!("/api/v1/status-events?{query}"), tok);
        check(&r, 400, "BAD_REQUEST");
    }
    // A file that is not a findings file: the job fails and says why.
    let id = srv.export(tok, "?tracker=trello", &["this is not JSON".to_owned()]);
    let job = srv.wait_export(tok, &id);
    assert_eq!(job["state"], "failed", "{job}");
    let e = &job["summary"]["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("line 1")),
        "{job}"
    );
    assert!(e["fix"].as_str().is_some_and(|f| !f.is_empty()), "{job}");
    assert_no_server_paths(&s, &job.to_string());

    // Without a token, or with a wrong one.
    let r = srv.call(Method::GET, "/api/v1/integration", Auth::None, None);
    check(&r, 401, "UNAUTHENTICATED");
    let r = srv.call(
        Method::POST,
        "/api/v1/exports",
        Auth::None,
        Some(&json!({})),
    );
    check(&r, 401, "UNAUTHENTICATED");
    let wrong = format!("{}x", tok);
    let r = srv.get("/api/v1/integration", &wrong);
    check(&r, 401, "UNAUTHENTICATED");
    let r = srv.send(
        srv.request(Method::GET, "/api/v1/integration")
            .header("authorization", format!("Basic {tok}")),
    );
    check(&r, 401, "UNAUTHENTICATED");
    srv.stop_ok();
    assert_no_secrets(
        &format!("{}\n{}", s.seen(), srv.log()),
        &[("API token", tok)],
    );
}

// ── stopping ─────────────────────────────────────────────────────────────────────────

#[test]
fn sigterm_waits_for_a_running_export_to_finish() {
    const N: usize = 12;
    let s = Sims::with_trello_latency(Duration::from_millis(60));
    let t = s.tenant("acme");
    let mut srv = s.serve(&[], &[]);
    let tok = t.admin.as_str();
    srv.trello_saved(&s, tok, &s.tfx.tokens.full);
    let id = srv.export(tok, "", &findings("term", N));

    // Stop while the export is writing cards.
    let deadline = Instant::now() + PATIENCE;
    while s.trello.cards(&s.tfx.board_id).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the export never started writing"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let running = srv.get(&format!("/api/v1/exports/{id}"), tok).json();
    assert_eq!(running["state"], "running", "{running}");
    srv.stop_ok();
    let per = s.cards_per_finding();
    assert_eq!(
        per.len(),
        N,
        "the process exited before the export ended: {per:?}"
    );
    {
        let conn = rusqlite::Connection::open(s.data_dir().join("webriskops.db")).unwrap();
        let state: String = conn
            .query_row("SELECT state FROM export_jobs WHERE id = ?1", [&id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(state, "done", "the job row when the process exited");
    }

    // Started again, the server shows the finished job and runs nothing again.
    let card_writes = || {
        s.trello
            .request_log()
            .iter()
            .filter(|r| r.method != "GET" && r.path.starts_with("/1/cards"))
            .count()
    };
    let writes = card_writes();
    assert!(writes >= N, "the cards' writes are counted: {writes}");
    let mut again = s.serve(&[], &[]);
    let job = again.get(&format!("/api/v1/exports/{id}"), tok).json();
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["summary"]["created"], json!(N), "{job}");
    again.stop_ok();
    assert_eq!(card_writes(), writes, "nothing was run again");
}

#[test]
fn two_exports_of_one_tenant_at_once_write_each_card_once() {
    const N: usize = 10;
    let s = Sims::with_trello_latency(Duration::from_millis(30));
    let t = s.tenant("acme");
    let mut srv = s.serve(&[], &[]);
    let tok = t.admin.as_str();
    srv.trello_saved(&s, tok, &s.tfx.tokens.full);
    let lines = findings("twice", N);
    let first = srv.export(tok, "", &lines);
    let second = srv.export(tok, "", &lines);
    for id in [&first, &second] {
        let job = srv.wait_export(tok, id);
        assert_eq!(job["state"], "done", "{job}");
    }
    let per = s.cards_per_finding();
    assert_eq!(per.len(), N, "{per:?}");
    assert!(per.values().all(|n| *n == 1), "duplicates: {per:?}");
    srv.stop_ok();
}

#[test]
fn syncs_at_once_emit_each_status_event_once() {
    const N: usize = 4;
    let s = Sims::with_trello_latency(Duration::from_millis(30));
    let t = s.tenant("acme");
    let mut srv = s.serve(&[], &[]);
    let tok = t.admin.as_str();
    srv.trello_saved(&s, tok, &s.tfx.tokens.full);
    let id = srv.export(tok, "", &findings("sync", N));
    assert_eq!(srv.wait_export(tok, &id)["state"], "done");
    for card in s.trello.cards(&s.tfx.board_id) {
        s.trello.person_move_card(&card.id, &s.tfx.done_list_id);
    }
    std::thread::scope(|scope| {
        let syncs: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| srv.post_empty("/api/v1/integration/trello/sync", tok)))
            .collect();
        for h in syncs {
            h.join().unwrap().expect(200);
        }
    });
    let page = srv.get("/api/v1/status-events", tok).json();
    let mut ids: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["finding_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["sync-0", "sync-1", "sync-2", "sync-3"], "{page}");
    srv.stop_ok();
}

#[test]
fn an_export_can_go_to_the_portable_bundle_by_choice_and_a_bad_choice_is_refused() {
    let s = Sims::new();
    let t = s.tenant("acme");
    let mut srv = s.serve(&[], &[]);
    let tok = t.admin.as_str();
    // A draft record names the tracker; `always` never asks it and writes the bundle.
    srv.put(
        "/api/v1/integration/trello",
        tok,
        json!({"board_id": s.tfx.board_id, "list_id": s.tfx.list_id}),
    )
    .expect(200);
    let reads_before = s.trello.request_log().len();
    let id = srv.export(
        tok,
        "?tracker=trello&fallback=always",
        &findings("bundle-", 3),
    );
    let job = srv.wait_export(tok, &id);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["bundle"], json!(true), "{job}");
    assert_eq!(job["summary"]["fallback"], "requested", "{job}");
    assert_eq!(job["summary"]["created"], 3, "{job}");
    assert_eq!(
        s.trello.request_log().len(),
        reads_before,
        "`always` sends nothing to the tracker"
    );
    assert!(s.trello.cards(&s.tfx.board_id).is_empty());
    // The upload (the tenant's findings) is not kept once the job has ended.
    let uploads = s.data_dir().join("server").join("uploads");
    let left: Vec<_> = std::fs::read_dir(&uploads)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "uploads left behind: {left:?}");
    {
        let conn = rusqlite::Connection::open(s.data_dir().join("webriskops.db")).unwrap();
        let chunks: i64 = conn
            .query_row("SELECT count(*) FROM job_uploads", [], |r| r.get(0))
            .unwrap();
        assert_eq!(chunks, 0, "the upload is left in the store");
    }

    let r = srv.send(
        srv.request(Method::POST, "/api/v1/exports?fallback=sometimes")
            .bearer_auth(tok)
            .body(findings("x-", 1).join("\n")),
    );
    r.expect(400);
    assert!(r.text.contains("auto, never or always"), "{}", r.text);
    srv.stop_ok();
}

// ── operations: /metrics ─────────────────────────────────────────────────────────────

/// The operator's metrics token in the test.
pub(crate) const METRICS_TOKEN: &str = "metrics-token-7b1e0c55d2a94f3e";

/// `GET /metrics` with the metrics token (no session), parsed as the Prometheus text
/// format: every line is `# HELP …`, `# TYPE …` or `name{labels} value`; answers each
/// series' value by its `name{labels}` as written.
pub(crate) fn scrape(srv: &Server) -> (String, std::collections::BTreeMap<String, f64>) {
    let r = srv.send(
        srv.request(Method::GET, "/metrics")
            .bearer_auth(METRICS_TOKEN),
    );
    r.expect(200);
    assert!(
        r.header("content-type")
            .starts_with("text/plain; version=0.0.4"),
        "{}",
        r.header("content-type")
    );
    let mut series = std::collections::BTreeMap::new();
    for line in r.text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not `name value`: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line:?}"));
        let name_end = key.find('{').unwrap_or(key.len());
        let name = &key[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "not a metric name: {line:?}"
        );
        let labels = &key[name_end..];
        if !labels.is_empty() {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("labels not in braces: {line:?}"));
            for pair in inner.split("\",") {
                let (k, v) = pair
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("not label=\"value\": {line:?}"));
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line:?}"
                );
                assert!(!v.contains('\n'), "{line:?}");
            }
        }
        assert!(
            series.insert(key.to_owned(), value).is_none(),
            "a series twice: {line:?}"
        );
    }
    (r.text.clone(), series)
}

/// Scrapes until `done` holds (counters move after the API shows a job done).
pub(crate) fn scrape_until(
    srv: &Server,
    done: impl Fn(&std::collections::BTreeMap<String, f64>) -> bool,
) -> std::collections::BTreeMap<String, f64> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (text, m) = scrape(srv);
        if done(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "the metrics never moved:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_count_jobs_webhook_deliveries_syncs_and_tracker_requests() {
    let s = Sims::new();
    let t = s.tenant("acme");
    let mut srv = s.serve(&[], &[("WEBRISKOPS_METRICS_TOKEN", METRICS_TOKEN)]);
    let tok = t.admin.as_str();
    let trello_token = s.tfx.tokens.revocable.clone();
    let get = |m: &std::collections::BTreeMap<String, f64>, k: &str| m.get(k).copied();

    // The metrics token is required (a tenant's API token is not it); no session is.
    let r = srv.send(srv.request(Method::GET, "/metrics"));
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.code(), "METRICS_TOKEN_REQUIRED");
    srv.get("/metrics", tok).expect(401);

    // Before anything: the queue's gauges and the takeovers at zero.
    let (_, m) = scrape(&srv);
    assert_eq!(get(&m, "webriskops_jobs_queued"), Some(0.0), "{m:?}");
    assert_eq!(get(&m, "webriskops_jobs_running"), Some(0.0), "{m:?}");
    assert_eq!(
        get(&m, "webriskops_jobs_oldest_queued_age_seconds"),
        Some(0.0),
        "{m:?}"
    );
    assert_eq!(
        get(&m, "webriskops_job_lease_takeovers_total"),
        Some(0.0),
        "{m:?}"
    );

    // An export: one job done, the adapter's requests counted for Trello. Trello signs its
    // deliveries with the application's secret, as the server's.
    s.trello.set_api_secret(&s.tfx.api_key, APP_SECRET);
    srv.trello_saved(&s, tok, &trello_token);
    let id = srv.export(tok, "", &findings("met", 3));
    let job = srv.wait_export(tok, &id);
    assert_eq!(job["state"], "done", "{job}");
    let writes = job["summary"]["requests"]["writes"].as_f64().unwrap();
    let reads = job["summary"]["requests"]["reads"].as_f64().unwrap();
    assert!(writes >= 3.0, "{job}");
    let m = scrape_until(&srv, |m| {
        get(m, "webriskops_jobs_finished_total{outcome=\"done\"}") == Some(1.0)
    });
    assert_eq!(
        get(
            &m,
            "webriskops_tracker_requests_total{tracker=\"trello\",kind=\"write\"}"
        ),
        Some(writes),
        "{m:?}"
    );
    assert!(
        get(
            &m,
            "webriskops_tracker_requests_total{tracker=\"trello\",kind=\"read\"}"
        )
        .is_some_and(|n| n >= reads),
        "{m:?}"
    );
    assert_eq!(
        get(
            &m,
            "webriskops_tracker_rate_limited_total{tracker=\"trello\",kind=\"key\"}"
        ),
        Some(0.0),
        "{m:?}"
    );
    assert_eq!(get(&m, "webriskops_jobs_queued"), Some(0.0), "{m:?}");

    // Webhook deliveries: a forged one (wrong signature), one for no callback of ours, one
    // for a tracker that does not exist, and a correctly signed one sent twice.
    let hooks = s.trello.webhooks();
    assert_eq!(hooks.len(), 1, "save registered one webhook: {hooks:?}");
    let callback = hooks[0].callback_url.clone();
    let path = callback.strip_prefix(&srv.url("")).unwrap().to_owned();
    let body = json!({"action": {"id": "5f0000000000000000metrics", "type": "updateCard",
                                 "data": {"card": {"id": "000000000000000000000000"}}},
                      "model": {}})
    .to_string();
    let deliver = |path: &str, sig: &str| {
        srv.send(
            srv.request(Method::POST, path)
                .header("X-Trello-Webhook", sig)
                .header("Content-Type", "application/json")
                .body(body.clone()),
        )
    };
    deliver(&path, "bm90IGEgc2lnbmF0dXJl").expect(401);
    let good = webriskops_trello::webhook_signature(
        &webriskops_ports::WebhookSecret::new(APP_SECRET),
        body.as_bytes(),
        &callback,
    );
    deliver(&path, &good).expect(200);
    deliver(&path, &good).expect(200);
    deliver("/hooks/trello/ffffffffffffffffffffffffffffffff", &good).expect(410);
    let odd = deliver(
        "/hooks/no-such-tracker/ffffffffffffffffffffffffffffffff",
        &good,
    );
    assert!(odd.status >= 400, "{odd:?}");
    let (text, m) = scrape(&srv);
    let hook = |outcome: &str| {
        get(
            &m,
            &format!(
                "webriskops_webhook_deliveries_total{{tracker=\"trello\",outcome=\"{outcome}\"}}"
            ),
        )
        .unwrap_or(0.0)
    };
    // Trello's own deliveries of the export's actions are accepted too, so at least one.
    assert!(hook("accepted") >= 1.0, "{text}");
    assert!(hook("duplicate") >= 1.0, "{text}");
    assert_eq!(hook("rejected"), 1.0, "{text}");
    assert!(hook("unknown") >= 1.0, "{text}");
    assert!(
        !text.contains("no-such-tracker"),
        "a path made a series: {text}"
    );

    // A sync after a person finished a card: counted, with its status event.
    let card = s
        .trello
        .cards(&s.tfx.board_id)
        .into_iter()
        .find(|c| c.desc.contains("[webriskops:finding:met-1]"))
        .unwrap();
    s.trello.person_move_card(&card.id, &s.tfx.done_list_id);
    srv.post_empty("/api/v1/integration/trello/sync", tok)
        .expect(200);
    let (text, m) = scrape(&srv);
    assert!(
        get(
            &m,
            "webriskops_syncs_total{tracker=\"trello\",outcome=\"synced\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(
        get(&m, "webriskops_status_events_total{tracker=\"trello\"}"),
        Some(1.0),
        "{text}"
    );

    // Counts only: nothing of the tenant's.
    for private in ["acme", s.tfx.board_id.as_str(), "met-1", &card.id] {
        assert!(!text.contains(private), "{private} is shown:\n{text}");
    }
    srv.stop_ok();
    assert_no_secrets(
        &format!("{}\n{}", s.seen(), srv.log()),
        &[
            ("Trello token", &trello_token),
            ("application secret", APP_SECRET),
            ("API token", tok),
            ("master key", MASTER_KEY),
            ("metrics token", METRICS_TOKEN),
        ],
    );
}
