//! The /settings pages in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`; `scripts/install-browser.sh` installs them,
//! and `cargo xtask test` runs it when they are missing). An admin walks login →
//! /settings → setup against the simulator (blocked states with their fixes, then ready,
//! save) → export upload with progress → a person moves the work → the status shows it →
//! revoke, for Trello and for Linear.
//!
//! Screenshots of the main pages go to `target/screenshots/`, and to `docs/screenshots/`
//! when `WEBRISKOPS_UPDATE_SCREENSHOTS=1`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";
const EMAIL: &str = "pm@acme.example";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn which(name: &str, default: &str) -> PathBuf {
    let env = format!("WEBRISKOPS_{}", name.to_ascii_uppercase().replace('-', "_"));
    let p = std::env::var(&env).map_or_else(|_| PathBuf::from(default), PathBuf::from);
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-browser.sh (Debian packages chromium and \
         chromium-driver), or point {env} at it",
        p.display()
    );
    p
}

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let child = Command::new(which("chromedriver", "/usr/bin/chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, port }
    }

    async fn browser(&self, profile: &Path) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": which("chromium", "/usr/bin/chromium"),
                // This machine has no network: without the background-networking flags
                // Chromium's own connections are refused, many at a time.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                         format!("--user-data-dir={}", profile.display())],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("connect to chromedriver")
    }
}

/// The browser, with the source of every page of the server it showed, taken after each
/// navigation and each step (every element waited for), to search for secrets.
struct Browser {
    c: Client,
    /// The server's origin: only its pages are kept (the trackers' own pages may show
    /// their tokens to the person).
    origin: String,
    pages: std::sync::Mutex<Vec<(String, String)>>,
}

impl std::ops::Deref for Browser {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.c
    }
}

impl Browser {
    fn new(c: Client, origin: &str) -> Browser {
        Browser {
            c,
            origin: origin.to_owned(),
            pages: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Keeps the page shown now, when it is the server's.
    async fn record(&self) {
        let Ok(url) = self.c.current_url().await else {
            return;
        };
        let origin = format!("{}/", self.origin);
        if !url.as_str().starts_with(&origin) {
            return;
        }
        if let Ok(source) = self.c.source().await {
            self.pages.lock().unwrap().push((url.to_string(), source));
        }
    }

    /// Navigates, then keeps the page.
    async fn goto(&self, url: &str) -> Result<(), fantoccini::error::CmdError> {
        self.c.goto(url).await?;
        self.record().await;
        Ok(())
    }

    /// Every page of the server shown so far: (URL, source).
    fn pages(&self) -> Vec<(String, String)> {
        self.pages.lock().unwrap().clone()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `webriskops serve` with one tenant and its admin, killed on drop.
struct Server {
    child: Child,
    url: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    fn start(dir: &Path, env: &[(&str, String)]) -> Server {
        Server::start_on(dir, env, 0)
    }

    fn start_on(dir: &Path, env: &[(&str, String)], port: u16) -> Server {
        let data = dir.join("data");
        // Two writes in flight: with the simulators' latency during the export, the page
        // shows the export running for seconds.
        let config = dir.join("webriskops.toml");
        std::fs::write(&config, "[export]\nconcurrency = 2\n").unwrap();
        let mut env = env.to_vec();
        env.push(("WEBRISKOPS_CONFIG", config.to_str().unwrap().to_owned()));
        let env = env.as_slice();
        let run = |args: &[&str]| {
            let out = base_command(dir, &data, env).args(args).output().unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::write(dir.join("pw"), PASSWORD).unwrap();
        run(&["tenant", "add", "acme"]);
        let pw = dir.join("pw");
        run(&[
            "user",
            "add",
            "--tenant",
            "acme",
            "--email",
            EMAIL,
            "--role",
            "admin",
            "--password-file",
            pw.to_str().unwrap(),
        ]);
        let mut child = base_command(dir, &data, env)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("WEBRISKOPS_SYNC_INTERVAL_SECS", "3600")
            // Everything the server logs is searched for secrets.
            .env("RUST_LOG", "debug")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server never printed `listening on`");
        Server { child, url, log }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base_command(dir: &Path, data: &Path, env: &[(&str, String)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_webriskops"));
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("WEBRISKOPS_DATA_DIR", data)
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

async fn wait_for(c: &Browser, css: &str) -> fantoccini::elements::Element {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            c.record().await;
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never appeared on {}:\n{}",
            c.current_url().await.unwrap(),
            c.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(c: &Browser, css: &str) -> String {
    wait_for(c, css).await.text().await.unwrap()
}

async fn shot(c: &Browser, name: &str) {
    let png = c.screenshot().await.unwrap();
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join(format!("{name}.png")), &png).unwrap();
    // The pages docs/server.md and the README show.
    const IN_DOCS: &[&str] = &[
        "settings",
        "settings-connected",
        "trello-setup-blocked",
        "trello-setup-ready",
        "trello-export-done",
        "linear-status",
    ];
    if std::env::var("WEBRISKOPS_UPDATE_SCREENSHOTS").as_deref() == Ok("1")
        && IN_DOCS.contains(&name)
    {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(format!("{name}.png")), &png).unwrap();
    }
}

/// A screenshot with the element `css` scrolled to the middle of the window, when the
/// page is longer than the window (what the picture is of is then in it).
async fn shot_of(c: &Browser, name: &str, css: &str) {
    wait_for(c, css).await;
    let in_view = c
        .execute(
            "var e = document.querySelector(arguments[0]);\
             e.scrollIntoView({block: 'center'});\
             var r = e.getBoundingClientRect();\
             return r.top >= 0 && r.top < window.innerHeight && r.bottom > 0;",
            vec![json!(css)],
        )
        .await
        .unwrap();
    assert_eq!(in_view, json!(true), "{css} is not in the window");
    shot(c, name).await;
}

async fn click(c: &Browser, css: &str) {
    wait_for(c, css).await.click().await.unwrap();
}

async fn login(c: &Browser, url: &str) {
    c.goto(&format!("{url}/settings")).await.unwrap();
    // Without a session the page sends the person to /login.
    wait_for(c, "#email").await.send_keys(EMAIL).await.unwrap();
    wait_for(c, "#password")
        .await
        .send_keys(PASSWORD)
        .await
        .unwrap();
    click(c, "#sign-in").await;
    wait_for(c, "#status-trello").await;
    assert!(c.current_url().await.unwrap().path().ends_with("/settings"));
}

async fn codes_shown(c: &Browser) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css("#blocked-list li")).await.unwrap() {
        out.push(e.attr("data-code").await.unwrap().unwrap_or_default());
    }
    out
}

/// The setup page's steps, the same for each tracker: hold the token, choose the
/// container, then the destinations and the revoke-path confirmation, check, save.
/// How the person gives the setup its credential.
enum Auth {
    /// Signs in with the tracker (OAuth 2.0 for Linear, OAuth 1.0 for Trello), approves
    /// on the tracker's page when it shows one, and comes back.
    Connect,
    /// Follows the authorize link (Trello: the token comes back in the URL fragment).
    AuthorizeLink,
}

/// Approves on the simulator's authorize page when it shows one (linear-sim approves
/// at once and comes straight back).
async fn approve_if_asked(c: &Browser) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(allow) = c.find(Locator::Css("button[value='Allow']")).await {
            allow.click().await.unwrap();
            return;
        }
        if c.find(Locator::Css("#message")).await.is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "neither an authorize page nor our page"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn walk_setup(
    c: &Browser,
    url: &str,
    tracker: &str,
    auth: &[Auth],
    container: &str,
    dest: &str,
    done: &str,
) {
    c.goto(&format!("{url}/settings/{tracker}")).await.unwrap();
    let codes = codes_shown(c).await;
    assert!(
        codes.contains(&"PROVIDER_AUTH_REQUIRED".to_owned()),
        "{codes:?}"
    );
    // Each blocked state is shown with its fix where its field is.
    let here = text_of(c, "#step-auth .blocked-here").await;
    assert!(here.contains("PROVIDER_AUTH_REQUIRED"), "{here}");
    assert!(wait_for(c, "#save")
        .await
        .attr("disabled")
        .await
        .unwrap()
        .is_some());
    shot(c, &format!("{tracker}-setup-blocked")).await;

    for step in auth {
        match step {
            Auth::Connect => {
                click(c, "#connect").await;
                approve_if_asked(c).await;
            }
            Auth::AuthorizeLink => {
                click(c, "#authorize").await;
                approve_if_asked(c).await;
            }
        }
        assert!(text_of(c, "#message").await.contains("held"));
    }
    let codes = codes_shown(c).await;
    assert!(
        !codes.contains(&"PROVIDER_AUTH_REQUIRED".to_owned()),
        "{codes:?}"
    );

    wait_for(c, "#container_id")
        .await
        .select_by_value(container)
        .await
        .unwrap();
    click(c, "#check").await;
    wait_for(c, &format!("#destination_id option[value='{dest}']")).await;
    wait_for(c, "#destination_id")
        .await
        .select_by_value(dest)
        .await
        .unwrap();
    wait_for(c, "#done_id")
        .await
        .select_by_value(done)
        .await
        .unwrap();
    click(c, "#confirm_revoke_path").await;
    click(c, "#check").await;
    assert!(text_of(c, "#all-ready")
        .await
        .contains("Nothing is blocked"));
    assert!(wait_for(c, "#save")
        .await
        .attr("disabled")
        .await
        .unwrap()
        .is_none());
    shot(c, &format!("{tracker}-setup-ready")).await;
    click(c, "#save").await;
    assert!(text_of(c, "#message").await.starts_with("Saved"));
    assert_eq!(text_of(c, "#record-state").await, "saved");
}

async fn walk_export(c: &Browser, url: &str, tracker: &str, findings: &Path) {
    c.goto(&format!("{url}/exports")).await.unwrap();
    wait_for(c, "#findings")
        .await
        .send_keys(findings.to_str().unwrap())
        .await
        .unwrap();
    wait_for(c, "#tracker")
        .await
        .select_by_value(tracker)
        .await
        .unwrap();
    click(c, "#start-export").await;
    // The page follows the job live: while it runs, the count moves towards the total
    // (the simulator answers slowly enough that it runs for seconds); then the summary.
    wait_for(c, "#job").await;
    let (done, total) = running_with_progress(c).await;
    assert!(0 < done && done < total, "{done} / {total}");
    shot(c, &format!("{tracker}-export-running")).await;
    let summary = text_of(c, "#summary").await;
    assert_eq!(text_of(c, "#job-state").await, "done", "{summary}");
    assert!(summary.contains("created"), "{summary}");
    shot(c, &format!("{tracker}-export-done")).await;
}

/// Polls the export page until it shows the job running with some but not all of its
/// writes done; answers (done, total). Fails if the job finishes first.
async fn running_with_progress(c: &Browser) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let text = |css: &'static str| async move {
            match c.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            }
        };
        let state = text("#job-state").await;
        let count = text("#job-count").await;
        let (done, total) = count
            .split_once(" / ")
            .and_then(|(d, t)| Some((d.trim().parse().ok()?, t.trim().parse().ok()?)))
            .unwrap_or((0, 0));
        if seen.last() != Some(&(state.clone(), count.clone())) {
            seen.push((state.clone(), count.clone()));
        }
        if state == "running" && 0 < done && done < total {
            c.record().await;
            return (done, total);
        }
        assert!(
            state != "done" && state != "failed",
            "the export finished ({state}) before the page showed it running with progress: \
             {seen:?}"
        );
        assert!(
            Instant::now() < deadline,
            "the page never showed the export running with progress: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Findings per export: enough, with the simulator's latency during the export, that
/// the page shows it running before it is done.
const FINDINGS: usize = 12;
/// The simulators' latency while the export runs.
const EXPORT_LATENCY: Duration = Duration::from_millis(400);

fn findings_file(dir: &Path) -> PathBuf {
    let lines: Vec<String> = (1..=FINDINGS)
        .map(|i| {
            json!({"id": format!("f-{i}"), "title": format!("Finding {i}"), "severity": "high",
                   "status": "open", "remediation_steps": ["Patch it", "Verify it"]})
            .to_string()
        })
        .collect();
    let p = dir.join("findings.jsonl");
    std::fs::write(&p, lines.join("\n")).unwrap();
    p
}

/// The events listed on the Trello setup page.
async fn events_listed(c: &Browser, url: &str) -> usize {
    c.goto(&format!("{url}/settings/trello")).await.unwrap();
    c.find_all(Locator::Css("#events tr.event"))
        .await
        .unwrap()
        .len()
}

/// A delivery with a wrong signature is refused (401) and changes nothing; the same
/// delivery signed correctly again (Trello's retry) is accepted once only; a callback the
/// server does not know answers 410, which makes Trello delete that webhook.
async fn forged_and_repeated_deliveries_change_nothing(
    c: &Browser,
    url: &str,
    h: &trello_sim::SimHandle,
    app_secret: &str,
) {
    let hooks = h.webhooks();
    assert_eq!(hooks.len(), 1, "save registered one webhook: {hooks:?}");
    let callback = hooks[0].callback_url.clone();
    assert!(
        callback.starts_with(&format!("{url}/hooks/trello/")),
        "{callback}"
    );
    let delivered = h.webhook_deliveries();
    let action = delivered.last().unwrap().action_id.clone();
    let before = events_listed(c, url).await;
    c.goto(&format!("{url}/settings")).await.unwrap();
    let counted = |line: &str| {
        line.split(", ").find_map(|p| {
            p.split_once(" deliver")
                .and_then(|(n, _)| n.parse::<u32>().ok())
        })
    };
    let accepted = counted(&text_of(c, "#status-trello .webhook").await);
    let body = json!({"action": {"id": action, "type": "updateCard",
                                 "data": {"card": {"id": "000000000000000000000000"}}},
                      "model": {}})
    .to_string();
    let http = reqwest::Client::new();
    let post = |sig: String, to: String, body: String| {
        http.post(to)
            .header("X-Trello-Webhook", sig)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let forged = post(
        "bm90IGEgc2lnbmF0dXJl".into(),
        callback.clone(),
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(forged.status(), 401);
    let secret = webriskops_ports::WebhookSecret::new(app_secret);
    let good = webriskops_trello::webhook_signature(&secret, body.as_bytes(), &callback);
    let repeated = post(good.clone(), callback.clone(), body.clone())
        .await
        .unwrap();
    assert_eq!(repeated.status(), 200, "a retry is acknowledged");
    let unknown = format!("{url}/hooks/trello/ffffffffffffffffffffffffffffffff");
    let gone = post(good, unknown, body).await.unwrap();
    assert_eq!(gone.status(), 410);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        events_listed(c, url).await,
        before,
        "nothing new was emitted"
    );
    c.goto(&format!("{url}/settings")).await.unwrap();
    let hook = text_of(c, "#status-trello .webhook").await;
    assert!(hook.contains("1 refused"), "{hook}");
    assert_eq!(
        counted(&hook),
        accepted,
        "a retried delivery is counted once: {hook}"
    );
}

/// Waits until the tracker's setup page lists a status change, reloading it: the
/// tracker's webhook delivery makes the server sync, with no click.
async fn change_arrives(c: &Browser, url: &str, tracker: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        c.goto(&format!("{url}/settings/{tracker}")).await.unwrap();
        if let Ok(e) = c.find(Locator::Css("#events tr.event td.now")).await {
            return e.text().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no status change arrived by webhook within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn revoke(c: &Browser, url: &str, tracker: &str) {
    c.goto(&format!("{url}/settings/{tracker}")).await.unwrap();
    // Without the confirmation nothing is revoked.
    click(c, "#revoke").await;
    assert!(text_of(c, "#error").await.contains("confirmation"));
    click(c, "#confirm-revoke").await;
    click(c, "#revoke").await;
    assert!(text_of(c, "#message").await.starts_with("Revoked"));
}

/// No secret is in the server's log or in any page of the server the browser showed.
#[track_caller]
fn assert_no_secret(log: &str, pages: &[(String, String)], secrets: &[String]) {
    for s in secrets {
        assert!(!s.is_empty());
        assert!(
            !log.contains(s.as_str()),
            "a secret reached the server's log"
        );
        for (url, source) in pages {
            assert!(
                !source.contains(s.as_str()),
                "a secret reached the page {url}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_up_trello_exports_sees_a_persons_move_and_revokes_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let sim = trello_sim::SimServer::start(trello_sim::SimConfig::default())
        .await
        .unwrap();
    let h = sim.handle();
    let fx = h.seed_standard();
    let granted_at_start = h.granted_secrets().len();
    let server = Server::start(
        dir.path(),
        &[
            ("TRELLO_API_KEY", fx.api_key.clone()),
            ("TRELLO_API_SECRET", fx.api_secret.clone()),
            ("WEBRISKOPS_TRELLO_API_ROOT", sim.base_url()),
        ],
    );
    let driver = Driver::start();
    let url = server.url.clone();
    let c = Browser::new(driver.browser(&dir.path().join("profile")).await, &url);

    login(&c, &url).await;
    shot(&c, "settings").await;
    walk_setup(
        &c,
        &url,
        "trello",
        // Both ways of the seeds: the authorize URL (token in the fragment), then the
        // OAuth 1.0 three-legged flow, whose token replaces the first.
        &[Auth::AuthorizeLink, Auth::Connect],
        &fx.board_id,
        &fx.list_id,
        &fx.done_list_id,
    )
    .await;
    // The token saved is the OAuth 1.0 one, and the record says how it was made.
    c.goto(&format!("{url}/api/v1/integration")).await.unwrap();
    let status: serde_json::Value = serde_json::from_str(&text_of(&c, "pre").await).unwrap();
    let record = &status["integrations"]["trello"]["record"];
    assert_eq!(record["auth_method"], "oauth1", "{status}");
    assert_eq!(record["board_id"], json!(fx.board_id), "{status}");
    h.set_latency(EXPORT_LATENCY);
    walk_export(&c, &url, "trello", &findings_file(dir.path())).await;
    h.set_latency(Duration::ZERO);
    // One card per finding (they share their steps, so they were copied from a step
    // template: an archived card of its own marker, never open on the list).
    let cards: Vec<_> = h
        .cards(&fx.board_id)
        .into_iter()
        .filter(|c| c.desc.contains("[webriskops:finding:"))
        .collect();
    assert_eq!(cards.len(), FINDINGS, "one card per finding");
    assert!(cards.iter().all(|c| !c.closed));
    assert!(h
        .cards(&fx.board_id)
        .iter()
        .filter(|c| !c.desc.contains("[webriskops:finding:"))
        .all(|t| t.closed));

    // A person moves a card to the done list in Trello; the status shows it.
    h.person_move_card(&cards[0].id, &fx.done_list_id);
    let now = change_arrives(&c, &url, "trello").await;
    assert_eq!(now, "done");
    // /settings with Trello connected: ready, the last export and sync, the webhook.
    c.goto(&format!("{url}/settings")).await.unwrap();
    assert!(text_of(&c, "#status-trello .badge.ok")
        .await
        .contains("connected"));
    shot(&c, "settings-connected").await;
    forged_and_repeated_deliveries_change_nothing(&c, &url, &h, &fx.api_secret).await;
    c.goto(&format!("{url}/settings")).await.unwrap();
    let hook = text_of(&c, "#status-trello .webhook").await;
    assert!(hook.starts_with("active: last delivery"), "{hook}");
    shot(&c, "trello-status").await;

    revoke(&c, &url, "trello").await;
    // Revoking deletes the webhook first, while the token can.
    assert!(h.webhooks().is_empty(), "{:?}", h.webhooks());
    // Both ways of signing in made tokens the walk used (the authorize page's, then the
    // OAuth 1.0 access token with its secret): none of them, nor any other credential the
    // simulator holds, is on any page of the server the walk showed or in its log.
    let granted = h.granted_secrets();
    assert!(
        granted.len() >= granted_at_start + 5,
        "the walk's own tokens and secrets are searched for: {} new",
        granted.len() - granted_at_start
    );
    let mut secrets = granted;
    secrets.push(PASSWORD.to_owned());
    let pages = c.pages();
    assert!(pages.len() > 20, "only {} pages kept", pages.len());
    let log = server.log.lock().unwrap().clone();
    assert_no_secret(&log, &pages, &secrets);
    c.c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_up_linear_exports_sees_a_persons_close_and_revokes_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let sim = linear_sim::SimServer::start(linear_sim::SimConfig {
        // Linear delivers only to public https URLs; the server here is on loopback.
        allow_loopback_webhooks: true,
        ..linear_sim::SimConfig::default()
    })
    .await
    .unwrap();
    let h = sim.handle();
    let fx = h.seed_standard();
    let granted_at_start = h.granted_secrets().len();
    // The server's Linear OAuth application, registered with its callback URL.
    let port = free_port();
    let (client_id, client_secret) =
        h.create_oauth_client(&[&format!("http://127.0.0.1:{port}/settings/linear/callback")]);
    let root = sim.root_url();
    let server = Server::start_on(
        dir.path(),
        &[
            ("WEBRISKOPS_LINEAR_API_URL", sim.base_url()),
            ("LINEAR_CLIENT_ID", client_id),
            ("LINEAR_CLIENT_SECRET", client_secret.clone()),
            (
                "WEBRISKOPS_LINEAR_OAUTH_AUTHORIZE_URL",
                format!("{root}/oauth/authorize"),
            ),
            (
                "WEBRISKOPS_LINEAR_OAUTH_TOKEN_URL",
                format!("{root}/oauth/token"),
            ),
        ],
        port,
    );
    let driver = Driver::start();
    let url = server.url.clone();
    let c = Browser::new(driver.browser(&dir.path().join("profile")).await, &url);

    login(&c, &url).await;
    let eng = &fx.eng;
    walk_setup(
        &c,
        &url,
        "linear",
        // The OAuth2 code flow: Linear returns to the callback with the code and state.
        &[Auth::Connect],
        &eng.id,
        &eng.todo,
        &eng.done,
    )
    .await;
    h.set_latency(EXPORT_LATENCY);
    walk_export(&c, &url, "linear", &findings_file(dir.path())).await;
    h.set_latency(Duration::ZERO);
    let issues = h.issues(&eng.id);
    assert_eq!(issues.len(), FINDINGS, "one issue per finding");

    h.person_move_issue(&issues[0].id, &eng.done);
    let now = change_arrives(&c, &url, "linear").await;
    assert_eq!(now, "done");
    shot_of(&c, "linear-status", "#events").await;
    c.goto(&format!("{url}/settings")).await.unwrap();
    let hook = text_of(&c, "#status-linear .webhook").await;
    assert!(hook.starts_with("active: last delivery"), "{hook}");

    revoke(&c, &url, "linear").await;
    assert!(h.webhooks().is_empty(), "{:?}", h.webhooks());
    // The OAuth2 code, the access and refresh tokens it was exchanged for, the webhook's
    // signing secret, the client secret and every key: on no page of the server the walk
    // showed and not in its log.
    let granted = h.granted_secrets();
    assert!(
        granted.len() >= granted_at_start + 5,
        "the walk's own code, tokens and webhook secret are searched for: {} new",
        granted.len() - granted_at_start
    );
    assert!(granted.contains(&client_secret));
    let mut secrets = granted;
    secrets.push(PASSWORD.to_owned());
    let pages = c.pages();
    assert!(pages.len() > 20, "only {} pages kept", pages.len());
    let log = server.log.lock().unwrap().clone();
    assert_no_secret(&log, &pages, &secrets);
    c.c.close().await.unwrap();
}
