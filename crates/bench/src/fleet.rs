//! The fleet scenario: several `webriskops serve` replicas on one PostgreSQL database,
//! many tenants exporting at once through one Trello API key, against trello-sim with
//! Trello's budgets and latency scaled in time. Run twice: with per-replica local
//! limiters only (`WEBRISKOPS_SHARED_BUDGET=off`) and with the shared key budget
//! (`=on`). Every figure comes from the simulator's own request log and the jobs'
//! timestamps; timings are reported, never asserted.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use trello_sim::{Limit, LoggedRequest, SimConfig, SimHandle, SimServer, Workspace};

/// The fleet's settings (from the benchmark's command line).
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Tenants; 0 skips the fleet.
    pub tenants: usize,
    /// Findings of tenant 1, the large one.
    pub large: usize,
    /// The other tenants' sizes are spread evenly over `small_min..=small_max`.
    pub small_min: usize,
    pub small_max: usize,
    /// `webriskops serve` processes on the one database.
    pub replicas: usize,
    /// Remediation steps per finding (0: one request per new card).
    pub steps: usize,
    /// The variants to run, in order: `off` (local limiters), `on` (shared budget).
    pub variants: Vec<String>,
    /// Trello's windows and latency are divided by this.
    pub scale: u64,
    /// The simulated latency at Trello's scale, before dividing by `scale`.
    pub latency_ms: u64,
    /// The release `webriskops` binary.
    pub binary: PathBuf,
    /// Where the replicas' logs are kept (default: the run's temporary directory,
    /// removed at the end).
    pub logs: Option<PathBuf>,
}

/// Trello's budgets (FACTS.md §9, "Rate limits": 100 requests per 10 s per token, 300
/// per 10 s per API key).
const TOKEN_LIMIT: u32 = 100;
const KEY_LIMIT: u32 = 300;
/// Trello's window, scaled by `FleetOptions::scale`.
const TRELLO_WINDOW_MS: u64 = 10_000;
/// A master key for the run's throwaway database only (the replicas must share one).
const MASTER_KEY: &str = "4b656e63682d6f6e6c792d6b65792d666f722d612d7468726f776177617921ab";
/// A public URL the simulator cannot reach: its `HEAD` check fails, so no webhook is
/// registered and no delivery triggers a sync during the run (the exports alone are
/// measured).
const UNREACHABLE_PUBLIC_URL: &str = "http://127.0.0.1:9";

/// One tenant of the fleet.
#[derive(Clone)]
struct Tenant {
    name: String,
    findings: usize,
    file: PathBuf,
    ws: Workspace,
    api_token: String,
}

/// What one tenant's export came to.
#[derive(Debug, Clone)]
pub struct TenantResult {
    pub name: String,
    pub findings: usize,
    pub replica: usize,
    pub state: String,
    pub completion_s: f64,
    pub created: u64,
    pub failed: u64,
    pub missing: usize,
    pub duplicates: usize,
    /// Requests the simulator admitted under the tenant's token.
    pub requests: usize,
    /// Its completion in an ideal fair schedule of the same requests ([`ideal_completions`]).
    pub ideal_s: f64,
}

/// Completion times (s) of `work` (requests per tenant) when every tenant starts at once
/// and the key's `key_rate` is split equally between the tenants still sending, each
/// capped by its token's `token_rate` (processor sharing, the fairest schedule there is):
/// what a perfectly fair client would achieve with no overhead.
pub fn ideal_completions(work: &[usize], key_rate: f64, token_rate: f64) -> Vec<f64> {
    let mut left: Vec<f64> = work.iter().map(|w| *w as f64).collect();
    let mut done = vec![0.0; work.len()];
    let mut now = 0.0;
    loop {
        let active: Vec<usize> = (0..left.len()).filter(|&i| left[i] > 0.0).collect();
        if active.is_empty() {
            return done;
        }
        let rate = token_rate.min(key_rate / active.len() as f64);
        let step = active
            .iter()
            .map(|&i| left[i] / rate)
            .fold(f64::MAX, f64::min);
        now += step;
        for &i in &active {
            left[i] -= rate * step;
            if left[i] <= 1e-9 {
                left[i] = 0.0;
                done[i] = now;
            }
        }
    }
}

impl TenantResult {
    fn complete(&self) -> bool {
        self.state == "done" && self.missing == 0
    }
}

/// One variant's figures.
#[derive(Debug, Clone)]
pub struct VariantResult {
    pub variant: String,
    pub tenants: Vec<TenantResult>,
    /// Admitted requests per second over the busy period's whole windows, as % of the
    /// key's budget.
    pub busy_pct: f64,
    pub busy_s: f64,
    /// The same over the whole run (first request to last).
    pub whole_pct: f64,
    pub whole_s: f64,
    /// The busiest window's admitted requests, as % of the key's budget.
    pub peak_pct: f64,
    /// Requests admitted in each whole window of the busy period, in order.
    pub per_window: Vec<usize>,
    /// When each tenant sent its first request, in ms after the fleet's first, in order.
    pub starts_ms: Vec<u64>,
    pub requests: usize,
    pub key_429: usize,
    pub token_429: usize,
    pub locked_out_429: usize,
}

impl VariantResult {
    /// The small tenants whose export ended `done` with a card for every finding (a
    /// failed export's end is no completion time).
    fn small(&self) -> impl Iterator<Item = &TenantResult> {
        self.tenants.iter().skip(1).filter(|t| t.complete())
    }

    /// Small tenants whose export failed or left findings without a card.
    fn small_incomplete(&self) -> usize {
        self.tenants
            .iter()
            .skip(1)
            .filter(|t| !t.complete())
            .count()
    }

    /// Slowest ÷ fastest among the small tenants, of `f`.
    fn spread(&self, f: impl Fn(&TenantResult) -> f64) -> f64 {
        let v: Vec<f64> = self.small().map(f).collect();
        let max = v.iter().copied().fold(f64::MIN, f64::max);
        let min = v.iter().copied().fold(f64::MAX, f64::min);
        if v.is_empty() || min <= 0.0 {
            f64::NAN
        } else {
            max / min
        }
    }

    pub fn completion_spread(&self) -> f64 {
        self.spread(|t| t.completion_s)
    }

    pub fn per_finding_spread(&self) -> f64 {
        self.spread(|t| t.completion_s / t.findings.max(1) as f64)
    }

    fn small_range(&self) -> (f64, f64) {
        let v: Vec<f64> = self.small().map(|t| t.completion_s).collect();
        (
            v.iter().copied().fold(f64::MAX, f64::min),
            v.iter().copied().fold(f64::MIN, f64::max),
        )
    }
}

/// The sizes of the tenants: the large one first, then the small ones spread evenly
/// (deterministic) over `small_min..=small_max`.
pub fn sizes(o: &FleetOptions) -> Vec<usize> {
    let small = o.tenants.saturating_sub(1);
    let mut out = vec![o.large];
    for i in 0..small {
        let span = o.small_max.saturating_sub(o.small_min);
        let step = if small > 1 { span * i / (small - 1) } else { 0 };
        out.push(o.small_min + step);
    }
    out.truncate(o.tenants);
    out
}

/// Runs every variant and prints the tables.
pub fn run(o: &FleetOptions, rt: &tokio::runtime::Runtime, dir: &Path) -> Result<()> {
    if o.tenants == 0 {
        return Ok(());
    }
    if !o.binary.exists() {
        bail!(
            "the fleet needs the release binary at {} (cargo build --release -p webriskops; \
             `cargo xtask bench` builds it)",
            o.binary.display()
        );
    }
    let mut results = Vec::new();
    for v in &o.variants {
        results.push(run_variant(o, rt, &dir.join(format!("fleet-{v}")), v)?);
    }
    print_tables(o, &results);
    Ok(())
}

/// Starts a throwaway PostgreSQL cluster under `dir` and points `DATABASE_URL` at it,
/// unless `DATABASE_URL` is set. Call before any thread starts (it sets the process's
/// environment); keep the answer until the fleet is done.
pub fn throwaway_database(dir: &Path) -> Result<Option<webriskops_pg_testing::Cluster>> {
    match std::env::var(webriskops_pg_testing::DATABASE_URL) {
        Ok(url) if !url.is_empty() => Ok(None),
        _ => {
            let c = webriskops_pg_testing::Cluster::start(&dir.join("pg"))
                .map_err(|e| anyhow::anyhow!("no PostgreSQL for the fleet: {e}"))?;
            std::env::set_var(webriskops_pg_testing::DATABASE_URL, c.url());
            Ok(Some(c))
        }
    }
}

fn window(o: &FleetOptions) -> Duration {
    Duration::from_millis(TRELLO_WINDOW_MS / o.scale.max(1))
}

/// The replicas' configuration: Trello's budgets in the scaled window (as
/// `RateLimits::scaled` does: the members window and the safety margin scale with it),
/// and the retry policy's waits scaled the same way.
fn config(o: &FleetOptions) -> String {
    let s = o.scale.max(1);
    let w = TRELLO_WINDOW_MS / s;
    format!(
        "[trello.limits]\ntoken_limit = {TOKEN_LIMIT}\nkey_limit = {KEY_LIMIT}\nwindow_ms = {w}\n\
         members_limit = 100\nmembers_window_ms = {}\nsafety_margin_ms = {}\n\n\
         [trello.retry]\ninitial_backoff_ms = {}\nmax_backoff_ms = {}\ndeadline_ms = {}\n",
        w * 90,
        webriskops_trello::RateLimits::scaled(Duration::from_millis(w)).safety_margin_ms,
        (500 / s).max(1),
        (16_000 / s).max(1),
        (60_000 / s).max(1),
    )
}

/// The binary with the environment every command of the run shares.
fn command(o: &FleetOptions, dir: &Path, db_url: &str, api_root: &str, key: &str) -> Command {
    let mut c = Command::new(&o.binary);
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("WEBRISKOPS_CONFIG", dir.join("webriskops.toml"))
        .env("WEBRISKOPS_DATA_DIR", dir.join("data"))
        .env("WEBRISKOPS_DATABASE_URL", db_url)
        .env("WEBRISKOPS_MASTER_KEY", MASTER_KEY)
        .env("WEBRISKOPS_TRELLO_API_ROOT", api_root)
        .env("TRELLO_API_KEY", key)
        .stdin(Stdio::null());
    c
}

/// Runs a command of the binary to its end; answers its stdout.
fn cli(mut c: Command, args: &[&str]) -> Result<String> {
    let out = c.args(args).output()?;
    if !out.status.success() {
        bail!(
            "webriskops {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A running `webriskops serve`; stopped with SIGTERM when dropped.
struct Replica {
    child: Child,
    base: String,
}

impl Replica {
    fn start(mut c: Command, log: &Path) -> Result<Replica> {
        let mut child = c
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--public-url", UNREACHABLE_PUBLIC_URL])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().context("stderr")?;
        let mut file = std::fs::File::create(log)?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(addr.trim().to_owned());
                }
                let _ = writeln!(file, "{line}");
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => Ok(Replica {
                child,
                base: format!("http://{addr}"),
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("a replica never said it listens; see {}", log.display())
            }
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..200 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a request; answers the status and the JSON body.
async fn call(rb: reqwest::RequestBuilder) -> Result<(u16, Value)> {
    let r = rb.send().await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, v))
}

/// Holds the tenant's token and saves a ready Trello setup through the API.
async fn save_integration(http: &reqwest::Client, base: &str, t: &Tenant) -> Result<()> {
    let url = |p: &str| format!("{base}/api/v1/integration/trello{p}");
    let (s, v) = call(
        http.post(url("/token"))
            .bearer_auth(&t.api_token)
            .json(&json!({"token": t.ws.token})),
    )
    .await?;
    if s != 200 {
        bail!("{}: holding the token answered {s} {v}", t.name);
    }
    let (s, v) = call(http.put(url("")).bearer_auth(&t.api_token).json(&json!({
        "board_id": t.ws.board_id,
        "list_id": t.ws.list_id,
        "done_list_id": t.ws.done_list_id,
        "confirm_revoke_path": true,
    })))
    .await?;
    if s != 200 || v["blocked"] != json!([]) {
        bail!("{}: the setup is not ready: {s} {v}", t.name);
    }
    let (s, v) = call(http.post(url("/save")).bearer_auth(&t.api_token)).await?;
    if s != 200 || v["saved"] != json!(true) {
        bail!("{}: saving answered {s} {v}", t.name);
    }
    Ok(())
}

/// Uploads the tenant's findings to `base` and polls the job until it ends; answers
/// the moment of the upload and the job's last state.
async fn export(
    http: reqwest::Client,
    base: String,
    token: String,
    body: Vec<u8>,
) -> Result<(DateTime<Utc>, Value)> {
    let submitted = Utc::now();
    let (s, v) = call(
        http.post(format!("{base}/api/v1/exports"))
            .bearer_auth(&token)
            .header("content-type", "application/x-ndjson")
            .body(body),
    )
    .await?;
    if s != 202 {
        bail!("the upload answered {s} {v}");
    }
    let id = v["id"].as_str().context("job id")?.to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1800);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (s, v) = call(
            http.get(format!("{base}/api/v1/exports/{id}"))
                .bearer_auth(&token),
        )
        .await?;
        if s == 200 && (v["state"] == "done" || v["state"] == "failed") {
            return Ok((submitted, v));
        }
        if tokio::time::Instant::now() > deadline {
            bail!("export {id} never finished: {s} {v}");
        }
    }
}

fn run_variant(
    o: &FleetOptions,
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    variant: &str,
) -> Result<VariantResult> {
    std::fs::create_dir_all(dir)?;
    let window = window(o);
    let server = rt.block_on(SimServer::start(SimConfig {
        latency: Duration::from_millis(o.latency_ms / o.scale.max(1)),
        window,
        token_limit: TOKEN_LIMIT,
        key_limit: KEY_LIMIT,
        members_limit: 100,
        ..SimConfig::default()
    }))?;
    let sim = server.handle();
    let key = sim.create_api_key();
    let db = rt.block_on(webriskops_pg_testing::test_database());
    std::fs::write(dir.join("webriskops.toml"), config(o))?;
    let cmd = || command(o, dir, &db.url, &server.base_url(), &key);
    cli(cmd(), &["migrate"])?;

    // The tenants: a workspace each in Trello (one key), an account and API token each.
    let sizes = sizes(o);
    eprintln!(
        "fleet ({variant}): {} tenants ({} findings in all), {} replicas, window {} ms, latency {} ms",
        sizes.len(),
        sizes.iter().sum::<usize>(),
        o.replicas,
        window.as_millis(),
        o.latency_ms / o.scale.max(1)
    );
    let mut tenants = Vec::new();
    for (i, n) in sizes.iter().enumerate() {
        let name = format!("tenant{:02}", i + 1);
        let file = dir.join(format!("{name}.jsonl"));
        crate::write_findings(&file, *n, o.steps, None, None)?;
        tenants.push(Tenant {
            ws: sim.seed_workspace(&key, &name),
            name,
            findings: *n,
            file,
            api_token: String::new(),
        });
    }
    std::thread::scope(|s| -> Result<()> {
        let jobs: Vec<_> = tenants
            .iter_mut()
            .map(|t| {
                s.spawn(|| -> Result<()> {
                    cli(cmd(), &["tenant", "add", &t.name])?;
                    let out = cli(
                        cmd(),
                        &[
                            "api-token",
                            "create",
                            "--tenant",
                            &t.name,
                            "--role",
                            "admin",
                            "--json",
                        ],
                    )?;
                    let v: Value = serde_json::from_str(&out)?;
                    t.api_token = v["token"].as_str().context("api token")?.to_owned();
                    Ok(())
                })
            })
            .collect();
        for j in jobs {
            j.join().map_err(|_| anyhow::anyhow!("account thread"))??;
        }
        Ok(())
    })?;

    // The replicas, each with a data directory of its own.
    let replicas = (0..o.replicas.max(1))
        .map(|r| {
            let mut c = cmd();
            c.env("WEBRISKOPS_DATA_DIR", dir.join(format!("data-{r}")))
                .env("WEBRISKOPS_SHARED_BUDGET", variant)
                // The scheduled sync stays out of the run.
                .env("WEBRISKOPS_SYNC_INTERVAL_SECS", "3600");
            let logs = o.logs.as_deref().unwrap_or(dir);
            std::fs::create_dir_all(logs)?;
            Replica::start(c, &logs.join(format!("{variant}-replica-{}.log", r + 1)))
        })
        .collect::<Result<Vec<_>>>()?;
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let http = {
        let _in = rt.enter();
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()?
    };
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (i, t) in tenants.iter().enumerate() {
            let (http, base) = (http.clone(), bases[i % bases.len()].clone());
            let t = t.clone();
            set.spawn(async move { save_integration(&http, &base, &t).await });
        }
        while let Some(r) = set.join_next().await {
            r??;
        }
        anyhow::Ok(())
    })?;

    // Every export at once, round-robin over the replicas.
    let bodies = tenants
        .iter()
        .map(|t| std::fs::read(&t.file))
        .collect::<std::io::Result<Vec<_>>>()?;
    sim.clear_request_log();
    let jobs = rt.block_on(async {
        let handles: Vec<_> = tenants
            .iter()
            .zip(bodies)
            .enumerate()
            .map(|(i, (t, body))| {
                tokio::spawn(export(
                    http.clone(),
                    bases[i % bases.len()].clone(),
                    t.api_token.clone(),
                    body,
                ))
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await??);
        }
        anyhow::Ok(out)
    })?;
    let log = sim.request_log();
    drop(replicas);

    let mut results = Vec::new();
    for (i, (t, (submitted, job))) in tenants.iter().zip(&jobs).enumerate() {
        let finished = job["finished_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
            .context("finished_at")?;
        let (missing, duplicates) = check_cards(&sim, t);
        results.push(TenantResult {
            name: t.name.clone(),
            findings: t.findings,
            replica: i % bases.len(),
            state: job["state"].as_str().unwrap_or("?").to_owned(),
            completion_s: (finished - *submitted).num_milliseconds() as f64 / 1000.0,
            created: job["summary"]["created"].as_u64().unwrap_or(0),
            failed: job["summary"]["failed_count"].as_u64().unwrap_or(0),
            missing,
            duplicates,
            requests: 0,
            ideal_s: 0.0,
        });
    }
    let token_of: HashMap<&str, usize> = tenants
        .iter()
        .enumerate()
        .map(|(i, t)| (t.ws.token_id.as_str(), i))
        .collect();
    let rates = rates(&log, &token_of, window);
    for r in &log {
        let admitted = r.limited_by.is_none() && r.status != 429;
        if let Some(&i) = r.token_id.as_deref().and_then(|t| token_of.get(t)) {
            if admitted {
                results[i].requests += 1;
            }
        }
    }
    let work: Vec<usize> = results.iter().map(|t| t.requests).collect();
    let ideal = ideal_completions(
        &work,
        f64::from(KEY_LIMIT) / window.as_secs_f64(),
        f64::from(TOKEN_LIMIT) / window.as_secs_f64(),
    );
    for (t, i) in results.iter_mut().zip(ideal) {
        t.ideal_s = i;
    }
    rt.block_on(server.shutdown());
    drop(db);
    Ok(VariantResult {
        variant: variant.to_owned(),
        tenants: results,
        ..rates
    })
}

/// Cards on the tenant's board per finding: (findings without a card, extra cards).
fn check_cards(sim: &SimHandle, t: &Tenant) -> (usize, usize) {
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    // The marker the export writes into each card (the domain's own reader of it).
    for c in sim.cards(&t.ws.board_id) {
        if let Some(id) = webriskops_domain::extract_marker(&c.desc) {
            *per.entry(id.as_str().to_owned()).or_insert(0) += 1;
        }
    }
    let missing = (0..t.findings)
        .filter(|i| !per.contains_key(&crate::finding_id(*i)))
        .count();
    let duplicates = per.values().map(|n| n.saturating_sub(1)).sum();
    (missing, duplicates)
}

/// The key's aggregate rate and 429s from the simulator's log.
///
/// The busy period runs from the fleet's first request until fewer than
/// `KEY_LIMIT / TOKEN_LIMIT` (3) tenants still send: from then on their tokens' own
/// budgets cannot fill the key's, so no client could keep it full.
fn rates(
    log: &[LoggedRequest],
    token_of: &HashMap<&str, usize>,
    window: Duration,
) -> VariantResult {
    let ours: Vec<&LoggedRequest> = log
        .iter()
        .filter(|r| {
            r.token_id
                .as_deref()
                .is_some_and(|t| token_of.contains_key(t))
        })
        .collect();
    let admitted: Vec<u64> = {
        let mut v: Vec<u64> = ours
            .iter()
            .filter(|r| r.limited_by.is_none() && r.status != 429)
            .map(|r| r.at_us)
            .collect();
        v.sort_unstable();
        v
    };
    let mut last: HashMap<usize, u64> = HashMap::new();
    for r in &ours {
        let t = token_of[r.token_id.as_deref().unwrap_or_default()];
        let e = last.entry(t).or_insert(0);
        *e = (*e).max(r.at_us);
    }
    let mut firsts: HashMap<usize, u64> = HashMap::new();
    for r in &ours {
        let t = token_of[r.token_id.as_deref().unwrap_or_default()];
        let e = firsts.entry(t).or_insert(u64::MAX);
        *e = (*e).min(r.at_us);
    }
    let mut starts: Vec<u64> = firsts.into_values().collect();
    starts.sort_unstable();
    let mut lasts: Vec<u64> = last.into_values().collect();
    lasts.sort_unstable_by(|a, b| b.cmp(a));
    let first = admitted.first().copied().unwrap_or(0);
    let end_all = admitted.last().copied().unwrap_or(0);
    let k = (KEY_LIMIT / TOKEN_LIMIT) as usize;
    let busy_end = lasts
        .get(k - 1)
        .or(lasts.last())
        .copied()
        .unwrap_or(end_all);
    // Whole windows from the first request: under a sliding window no window-long
    // interval holds more than the key's budget, so a full one reads 100 %; a partial
    // window at the end would read high or low by chance, and is left out (`--scale`
    // and the sizes keep the periods many windows long).
    let w_us = u64::try_from(window.as_micros()).unwrap_or(u64::MAX).max(1);
    let pct = |from: u64, to: u64| -> (f64, f64) {
        let windows = (to.saturating_sub(from)) / w_us;
        if windows == 0 {
            return (f64::NAN, 0.0);
        }
        let until = from + windows * w_us;
        let n = admitted
            .iter()
            .filter(|t| **t >= from && **t < until)
            .count();
        (
            100.0 * n as f64 / (windows as f64 * f64::from(KEY_LIMIT)),
            (windows * w_us) as f64 / 1e6,
        )
    };
    let (busy_pct, busy_s) = pct(first, busy_end);
    let per_window: Vec<usize> = (0..(busy_end.saturating_sub(first)) / w_us)
        .map(|i| {
            let (a, b) = (first + i * w_us, first + (i + 1) * w_us);
            admitted.iter().filter(|t| **t >= a && **t < b).count()
        })
        .collect();
    let (whole_pct, whole_s) = pct(first, end_all);
    // The busiest window: most admitted arrivals within any `window`.
    let (mut lo, mut peak) = (0, 0);
    for hi in 0..admitted.len() {
        while admitted[hi] - admitted[lo] >= w_us {
            lo += 1;
        }
        peak = peak.max(hi - lo + 1);
    }
    let count = |l: Limit| ours.iter().filter(|r| r.limited_by == Some(l)).count();
    VariantResult {
        variant: String::new(),
        tenants: Vec::new(),
        busy_pct,
        busy_s,
        whole_pct,
        whole_s,
        peak_pct: 100.0 * peak as f64 / f64::from(KEY_LIMIT),
        per_window,
        starts_ms: starts
            .iter()
            .map(|t| t.saturating_sub(first) / 1000)
            .collect(),
        requests: ours.len(),
        key_429: count(Limit::Key) + count(Limit::KeyLockedOut),
        token_429: count(Limit::Token),
        locked_out_429: count(Limit::KeyLockedOut),
    }
}

fn label(variant: &str) -> String {
    match variant {
        "off" => "local limiters (`off`)".to_owned(),
        "on" => "shared budget (`on`)".to_owned(),
        other => format!("`{other}`"),
    }
}

fn print_tables(o: &FleetOptions, results: &[VariantResult]) {
    let total: usize = sizes(o).iter().sum();
    println!(
        "\n| fleet: {} replicas, {} tenants, one key | key budget used (busy period) | whole run | busiest window | key-level 429s | token 429s | key lockout | large tenant (s) | small tenants (s) | small: slowest/fastest completion | small: slowest/fastest s per finding | small: slowest/fastest slowdown vs fair ideal | outcome |",
        o.replicas,
        o.tenants
    );
    println!("|---|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---|");
    for r in results {
        let large = r.tenants.first().map_or(0.0, |t| t.completion_s);
        let (fast, slow) = r.small_range();
        let done = r.tenants.iter().filter(|t| t.state == "done").count();
        let created: u64 = r.tenants.iter().map(|t| t.created).sum();
        let failed: u64 = r.tenants.iter().map(|t| t.failed).sum();
        let missing: usize = r.tenants.iter().map(|t| t.missing).sum();
        let dups: usize = r.tenants.iter().map(|t| t.duplicates).sum();
        println!(
            "| {} | {:.1} % ({:.0} s) | {:.1} % ({:.0} s) | {:.0} % | {} | {} | {} | {:.1}{} | {:.1}–{:.1}{} | {:.2} | {:.2} | {:.2} | {}/{} jobs done, {} of {} cards created, {} failed, {} findings without a card, {} duplicates |",
            label(&r.variant),
            r.busy_pct,
            r.busy_s,
            r.whole_pct,
            r.whole_s,
            r.peak_pct,
            r.key_429,
            r.token_429,
            if r.locked_out_429 > 0 {
                format!("yes: {} refused while locked", r.locked_out_429)
            } else {
                "none".to_owned()
            },
            large,
            if r.tenants.first().is_some_and(TenantResult::complete) {
                ""
            } else {
                " (incomplete)"
            },
            fast,
            slow,
            match r.small_incomplete() {
                0 => String::new(),
                n => format!(" ({n} incomplete, left out)"),
            },
            r.completion_spread(),
            r.per_finding_spread(),
            r.spread(|t| t.completion_s / t.ideal_s.max(1e-3)),
            done,
            r.tenants.len(),
            created,
            total,
            failed,
            missing,
            dups
        );
    }
    println!(
        "| **target** | ≥ 95 % | — | ≤ 100 % | 0 | — | none | — | before the large tenant | ≤ 1.5 | ≤ 1.5 | ≤ 1.5 | every finding exactly one card |"
    );
    // Each tenant, side by side.
    print!("\n| tenant | findings | replica |");
    for r in results {
        print!(" {} (s) | findings/s |", label(&r.variant));
    }
    println!();
    print!("|---|---:|---:|");
    for _ in results {
        print!("---:|---:|");
    }
    println!();
    if let Some(first) = results.first() {
        for (i, t) in first.tenants.iter().enumerate() {
            print!("| {} | {} | {} |", t.name, t.findings, t.replica + 1);
            for r in results {
                let x = &r.tenants[i];
                let mark = match (x.state.as_str(), x.missing) {
                    ("done", 0) => String::new(),
                    ("done", n) => format!(" ({n} without a card)"),
                    (state, n) => format!(" ({state}, {n} without a card)"),
                };
                // A failed job's end is no pace of its tenant's.
                let pace = if x.state == "done" {
                    format!("{:.1}", x.findings as f64 / x.completion_s.max(1e-3))
                } else {
                    "—".to_owned()
                };
                print!(" {:.1}{mark} | {pace} |", x.completion_s);
            }
            println!();
        }
    }
    let key_rate = f64::from(KEY_LIMIT) / window(o).as_secs_f64();
    for r in results {
        println!(
            "\n{}: {} requests under the key; {:.0} requests/s admitted over the busy period ({:.0} s: from the first request until fewer than {} tenants still sent, when their tokens alone cannot fill the key), {:.0}/s over the whole run, against the key's {key_rate:.0}/s.",
            label(&r.variant),
            r.requests,
            r.busy_pct / 100.0 * key_rate,
            r.busy_s,
            KEY_LIMIT / TOKEN_LIMIT,
            r.whole_pct / 100.0 * key_rate,
        );
        println!(
            "{}: admitted in each window of the busy period (of {KEY_LIMIT}): {:?}; the tenants' first requests, ms after the fleet's first: {:?}",
            label(&r.variant),
            r.per_window,
            r.starts_ms
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(at_ms: u64, token: &str, limited_by: Option<Limit>) -> LoggedRequest {
        LoggedRequest {
            method: "POST".into(),
            route: "/1/cards".into(),
            path: "/1/cards".into(),
            status: if limited_by.is_some() { 429 } else { 200 },
            elapsed_ms: 15,
            at_us: at_ms * 1000,
            key: Some("k".into()),
            token_id: Some(token.into()),
            limited_by,
        }
    }

    #[test]
    fn the_ideal_schedule_shares_the_key_equally_within_each_token() {
        // Key 300/s, tokens 100/s: three tenants of 100, 200 and 600 requests. All three
        // at 100/s until the first ends (1 s); then two at 100/s (capped by their tokens)
        // until the second ends (2 s); then the last alone at 100/s (6 s).
        let t = ideal_completions(&[100, 200, 600], 300.0, 100.0);
        assert_eq!(t, vec![1.0, 2.0, 6.0]);
        // Six tenants: 50/s each while all six send.
        let t = ideal_completions(&[50; 6], 300.0, 100.0);
        assert!(t.iter().all(|x| (x - 1.0).abs() < 1e-9), "{t:?}");
    }

    #[test]
    fn the_sizes_are_one_large_tenant_then_small_ones_spread_evenly() {
        let o = FleetOptions {
            tenants: 20,
            large: 2000,
            small_min: 50,
            small_max: 200,
            replicas: 3,
            steps: 0,
            variants: vec![],
            scale: 10,
            latency_ms: 150,
            binary: PathBuf::new(),
            logs: None,
        };
        let s = sizes(&o);
        assert_eq!(s.len(), 20);
        assert_eq!((s[0], s[1], s[19]), (2000, 50, 200));
        assert!(s[1..].windows(2).all(|w| w[0] < w[1]), "{s:?}");
        assert_eq!(
            sizes(&FleetOptions { tenants: 0, ..o }),
            Vec::<usize>::new()
        );
    }

    /// A key kept full (300 admitted in each of two windows, spread over four tokens)
    /// reads 100 % of its budget; 429s are split by the limit that refused them; the
    /// busy period ends when fewer than three tokens still send.
    #[test]
    fn the_rate_is_read_over_whole_windows_and_429s_by_kind() {
        let mut log = Vec::new();
        for w in 0..2u64 {
            for i in 0..300u64 {
                let token = ["a", "b", "c", "d"][(i % 4) as usize];
                log.push(req(w * 1000 + i * 3, token, None));
            }
        }
        log.push(req(990, "a", Some(Limit::Token)));
        log.push(req(995, "b", Some(Limit::Key)));
        log.push(req(996, "c", Some(Limit::KeyLockedOut)));
        // Only "a" sends on, alone, for another second and a half.
        for i in 0..15u64 {
            log.push(req(2000 + i * 100, "a", None));
        }
        // A request of another key's token is not the fleet's.
        log.push(req(10, "other", None));
        let tokens: HashMap<&str, usize> = [("a", 0), ("b", 1), ("c", 2), ("d", 3)].into();
        let r = rates(&log, &tokens, Duration::from_secs(1));
        assert_eq!((r.token_429, r.key_429, r.locked_out_429), (1, 2, 1));
        assert_eq!(r.requests, 618);
        assert!((r.busy_pct - 100.0).abs() < 0.01, "{}", r.busy_pct);
        assert_eq!(r.busy_s, 1.0, "b, c and d stop within the second window");
        assert!((r.peak_pct - 100.0).abs() < 0.01, "{}", r.peak_pct);
        assert!(r.whole_pct < 100.0 && r.whole_s == 3.0, "{r:?}");
    }
}
