//! Export benchmarks: the real Trello and Linear adapters, service and SQLite store
//! against the local simulators with latency and the trackers' budgets scaled in time.
//! For Trello the latency is scaled with the window (`--latency-ms` ÷ `--scale`): the
//! limiter holds each request's place from its admission until a window after its
//! answer, so a run is the real one sped up only when latency shrinks with the window.
//!
//! The orchestrator runs the simulator and starts one worker process per scenario, so
//! each scenario's peak memory is its own. Timings are reported, never asserted.

mod fleet;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::json;
use trello_sim::{SimConfig, SimServer};
use webriskops_domain::{ApiKey, ProviderRecord, TenantId, Token};
use webriskops_findings_file::FileSource;
use webriskops_service::{export, sync, ExportOptions, ExportPorts, ExportTarget, Silent};
use webriskops_store_sqlite::{SqliteStore, StoreOptions};
use webriskops_trello::{RateLimits, TrelloAdapter, TrelloConfig};

#[derive(Parser, Debug)]
#[command(
    about = "Export benchmarks against the local Trello simulator",
    after_help = "Example:\n  cargo xtask bench                      # all scenarios, 150 ms latency, Trello's budgets and latency scaled 10x\n  cargo xtask bench -- --cards 200       # a quicker run"
)]
struct Args {
    #[command(subcommand)]
    worker: Option<Worker>,
    /// Latency of a real request, in milliseconds. Trello's simulator adds it divided by
    /// `--scale` (time is scaled, latency with it); linear-sim adds it as given.
    #[arg(long, default_value_t = 150)]
    latency_ms: u64,
    /// Time scale: Trello's 10 s window becomes 10 s / scale.
    #[arg(long, default_value_t = 10)]
    scale: u64,
    /// New findings in the first scenario.
    #[arg(long, default_value_t = 1000)]
    cards: usize,
    /// Remediation steps per finding (checklist items).
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Findings in the dry-run scenario.
    #[arg(long, default_value_t = 100_000)]
    dry_run_findings: usize,
    /// Findings in the realistic-scan scenarios (0 skips them): raised by `--rules`
    /// rules with 2–6 steps each, every finding of a rule carrying the same steps.
    #[arg(long, default_value_t = 1000)]
    scan_findings: usize,
    /// Rules of the realistic scan.
    #[arg(long, default_value_t = 30)]
    rules: usize,
    /// Writes in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// New findings in the Linear scenarios (0 skips Linear).
    #[arg(long, default_value_t = 300)]
    linear_cards: usize,
    /// Time scale for Linear: its one-hour budget period becomes 1 h / scale (360: 10 s,
    /// so an API key's 2,500 requests per hour become 250 per second).
    #[arg(long, default_value_t = 360)]
    linear_scale: u64,
    /// Tenants of the fleet scenario (0 skips it): several `webriskops serve` replicas
    /// on one PostgreSQL database (DATABASE_URL, else a throwaway cluster) exporting
    /// for many tenants at once through one Trello key, with the budgets and the
    /// latency scaled by `--scale`.
    #[arg(long, default_value_t = 20)]
    fleet_tenants: usize,
    /// Findings of the fleet's tenant 1, the large one.
    #[arg(long, default_value_t = 2000)]
    fleet_large: usize,
    /// The other tenants' findings are spread evenly over MIN..=MAX.
    #[arg(long, default_value_t = 50)]
    fleet_small_min: usize,
    #[arg(long, default_value_t = 200)]
    fleet_small_max: usize,
    /// `webriskops serve` replicas of the fleet.
    #[arg(long, default_value_t = 3)]
    fleet_replicas: usize,
    /// Remediation steps per fleet finding (0: one request per new card).
    #[arg(long, default_value_t = 0)]
    fleet_steps: usize,
    /// The fleet's runs, by `WEBRISKOPS_SHARED_BUDGET`: `off` (per-replica local
    /// limiters), `on` (the key budget shared through PostgreSQL).
    #[arg(long, value_delimiter = ',', default_value = "off,on")]
    fleet_variants: Vec<String>,
    /// The release `webriskops` binary the fleet runs (default: next to this one).
    #[arg(long)]
    webriskops: Option<PathBuf>,
    /// Keep the fleet replicas' logs (`off-replica-1.log`, …) in this directory.
    #[arg(long)]
    fleet_logs: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Worker {
    /// (internal) run one scenario in this process and print its result as JSON.
    #[command(hide = true)]
    Worker(WorkerArgs),
}

#[derive(clap::Args, Debug, Serialize, Deserialize, Clone)]
struct WorkerArgs {
    #[arg(long)]
    mode: String,
    #[arg(long)]
    api_root: String,
    #[arg(long)]
    board: String,
    #[arg(long)]
    list: String,
    #[arg(long)]
    done: String,
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long)]
    findings: PathBuf,
    #[arg(long)]
    window_ms: u64,
    #[arg(long)]
    concurrency: usize,
    /// Write every card's steps one by one (no step templates).
    #[arg(long)]
    no_templates: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Outcome {
    reads: u64,
    writes: u64,
    r429: u64,
    retries: u64,
    wall_s: f64,
    peak_mb: f64,
    created: u64,
    updated: u64,
    unchanged: u64,
    closed: u64,
    failed: u64,
    duplicates: usize,
    events: u64,
    #[serde(default)]
    templates_created: u64,
    #[serde(default)]
    copied: u64,
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn run_worker(w: WorkerArgs) -> Result<()> {
    let key = ApiKey::new(std::env::var("BENCH_TRELLO_KEY")?)?;
    let token = Token::new(std::env::var("BENCH_TRELLO_TOKEN")?)?;
    let mut config = TrelloConfig::new(key, token).with_api_root(&w.api_root)?;
    config.limits = RateLimits::scaled(Duration::from_millis(w.window_ms));
    config.concurrency = w.concurrency;
    let adapter = Arc::new(TrelloAdapter::new(config)?);
    let store = SqliteStore::open(&w.data_dir, StoreOptions::default())?;
    let mut record = ProviderRecord::new_trello(TenantId::new("bench")?);
    record.board_id = Some(w.board.clone());
    record.list_id = Some(w.list.clone());
    record.done_list_id = Some(w.done.clone());
    let target = ExportTarget::from_record(&record).context("target")?;
    let ports = ExportPorts {
        items: adapter.clone(),
        introspection: Some(adapter.clone()),
        ledger: Arc::new(store.clone()),
        journal: Arc::new(store.clone()),
    };
    let started = Instant::now();
    let mut out = Outcome {
        reads: 0,
        writes: 0,
        r429: 0,
        retries: 0,
        wall_s: 0.0,
        peak_mb: 0.0,
        created: 0,
        updated: 0,
        unchanged: 0,
        closed: 0,
        failed: 0,
        duplicates: 0,
        events: 0,
        templates_created: 0,
        copied: 0,
    };
    if w.mode == "sync" {
        let mut events = 0u64;
        let s = sync(
            adapter.as_ref(),
            &store,
            &record,
            &target,
            chrono::Utc::now(),
            &mut |_| {
                events += 1;
                Ok(())
            },
        )
        .await?;
        out.events = s.events;
    } else {
        let opts = ExportOptions {
            dry_run: w.mode == "dry-run",
            concurrency: w.concurrency,
            step_templates: !w.no_templates,
            ..Default::default()
        };
        // The reader operators run: format detected from the content, checksummed, streamed.
        let source = FileSource::open_path(&w.findings)?;
        // The readiness check every export makes first (as `run_export` does): the token
        // and one `/batch`, whose labels and members the export then reuses.
        use webriskops_ports::TrackerIntrospection;
        adapter
            .observe_for_export(&record, chrono::Utc::now())
            .await?
            .context("the Trello adapter observes readiness itself")?;
        let s = export(&ports, &record, &target, &source, &opts, &Silent).await?;
        out.templates_created = s.step_templates.created;
        out.copied = s.step_templates.copied;
        out.created = s.created;
        out.updated = s.updated;
        out.unchanged = s.unchanged;
        out.closed = s.closed;
        out.failed = s.failed_count;
        out.duplicates = s.duplicates.len();
        if let Some(f) = s.failed.first() {
            eprintln!("first failure: {} {}", f.finding_id, f.error);
        }
    }
    out.wall_s = started.elapsed().as_secs_f64();
    let stats = adapter.stats();
    out.reads = stats.reads;
    out.writes = stats.writes;
    out.r429 = stats.rate_limited_429s;
    out.retries = stats.retries;
    out.peak_mb = peak_rss_mb();
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

fn write_findings(
    path: &Path,
    n: usize,
    steps: usize,
    changed_every: Option<usize>,
    closed_every: Option<usize>,
) -> Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    let severities = ["critical", "high", "medium", "low", "info"];
    let components = ["storefront", "platform", "identity", "marketing-site"];
    for i in 0..n {
        let changed = changed_every.is_some_and(|k| i % k == 0);
        let closed = closed_every.is_some_and(|k| i % k == 0);
        let title = if changed {
            format!("Finding {i} (rescanned)")
        } else {
            format!("Finding {i}")
        };
        let f = json!({
            "id": finding_id(i),
            "title": title,
            "severity": severities[i % severities.len()],
            "status": if closed { "resolved" } else { "open" },
            "component": components[i % components.len()],
            "asset": format!("https://app{}.example.com/", i % 17),
            "description": format!("Benchmark finding {i}. The header is missing on every page of the property."),
            "remediation_steps": (1..=steps).map(|s| format!("Step {s} for finding {i}")).collect::<Vec<_>>(),
            "tags": ["bench"],
        });
        serde_json::to_writer(&mut w, &f)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}

/// The id of the `i`th finding [`write_findings`] writes.
fn finding_id(i: usize) -> String {
    format!("bench-{i:06}")
}

/// A realistic scan: `n` findings raised by `rules` rules, rule `r` with 2 + r % 5 steps
/// (2–6), every finding of a rule carrying the same steps, on many assets.
fn write_scan(path: &Path, n: usize, rules: usize) -> Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    let severities = ["critical", "high", "medium", "low", "info"];
    for i in 0..n {
        let r = i % rules.max(1);
        let f = json!({
            "id": format!("scan-{i:06}"),
            "title": format!("Rule {r} raised on asset {i}"),
            "severity": severities[r % severities.len()],
            "status": "open",
            "asset": format!("https://app{i}.example.com/"),
            "description": format!("Rule {r} found the same problem on this asset."),
            "remediation_steps": (1..=2 + r % 5).map(|s| format!("Rule {r}: step {s}")).collect::<Vec<_>>(),
            "tags": ["bench", "scan"],
        });
        serde_json::to_writer(&mut w, &f)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}

struct Row {
    name: &'static str,
    cards: usize,
    o: Outcome,
    rate: f64,
}

impl Row {
    fn requests(&self) -> u64 {
        self.o.reads + self.o.writes
    }
    fn floor_s(&self) -> f64 {
        self.requests() as f64 / self.rate
    }
    fn requests_per_card(&self) -> f64 {
        self.requests() as f64 / self.cards.max(1) as f64
    }
    /// Wall against floor, left out ("—") where the floor is under a second: the wall
    /// is then latency and start-up, not throughput.
    fn wall_per_floor(&self) -> String {
        if self.floor_s() >= 1.0 {
            format!("{:.2}", self.o.wall_s / self.floor_s())
        } else {
            "—".to_owned()
        }
    }
    /// Cards created per second of wall time: how fast a customer sees cards ("—" for a
    /// run that created none).
    fn cards_per_s(&self) -> String {
        if self.o.created > 0 && self.o.wall_s > 0.0 {
            format!("{:.1}", self.o.created as f64 / self.o.wall_s)
        } else {
            "—".to_owned()
        }
    }
    fn is_scan(&self) -> bool {
        self.name.starts_with("realistic")
    }
}

fn orchestrate(args: Args) -> Result<()> {
    let window = Duration::from_millis(10_000 / args.scale.max(1));
    // Scaled with the window: a request holds its place in the limiter's window until a
    // window after its answer, so latency weighs on throughput in proportion to it.
    let latency = Duration::from_millis(args.latency_ms) / args.scale.max(1) as u32;
    let dir = tempfile::tempdir()?;
    // The fleet's PostgreSQL, started before the runtime's threads (it sets DATABASE_URL).
    let _cluster = if args.fleet_tenants > 0 {
        fleet::throwaway_database(dir.path())?
    } else {
        None
    };
    let rt = tokio::runtime::Runtime::new()?;
    let server = rt.block_on(SimServer::start(SimConfig {
        port: 0,
        latency,
        window,
        token_limit: 100,
        key_limit: 300,
        members_limit: 100,
        ..SimConfig::default()
    }))?;
    let fixture = server.handle().seed_standard();
    let exe = std::env::current_exe()?;
    let rate = 100.0 / window.as_secs_f64();
    eprintln!(
        "simulator at {} · latency {} ms ({} ms scaled {}x, as the window) · window {} ms · allowed rate {rate:.0} req/s (per token)",
        server.base_url(),
        latency.as_millis(),
        args.latency_ms,
        args.scale.max(1),
        window.as_millis()
    );
    let base = dir.path().join("base.jsonl");
    let changed = dir.path().join("changed.jsonl");
    let big = dir.path().join("big.jsonl");
    write_findings(&base, args.cards, args.steps, None, None)?;
    write_findings(&changed, args.cards, args.steps, Some(10), None)?;
    write_findings(&big, args.dry_run_findings, args.steps, None, None)?;
    let data_dir = dir.path().join("data");
    let main_board = (
        fixture.board_id.clone(),
        fixture.list_id.clone(),
        fixture.done_list_id.clone(),
    );
    let worker_on = |mode: &str,
                     findings: &Path,
                     (board, list, done): &(String, String, String),
                     data_dir: &Path,
                     no_templates: bool|
     -> Result<Outcome> {
        let w = WorkerArgs {
            mode: mode.into(),
            api_root: server.base_url(),
            board: board.clone(),
            list: list.clone(),
            done: done.clone(),
            data_dir: data_dir.to_owned(),
            findings: findings.to_owned(),
            window_ms: window.as_millis() as u64,
            concurrency: args.concurrency,
            no_templates,
        };
        eprintln!(
            "running {mode} on {}",
            findings.file_name().unwrap_or_default().to_string_lossy()
        );
        let output = Command::new(&exe)
            .args([
                "worker",
                "--mode",
                &w.mode,
                "--api-root",
                &w.api_root,
                "--board",
                &w.board,
                "--list",
                &w.list,
                "--done",
                &w.done,
            ])
            .arg("--data-dir")
            .arg(&w.data_dir)
            .arg("--findings")
            .arg(&w.findings)
            .args([
                "--window-ms",
                &w.window_ms.to_string(),
                "--concurrency",
                &w.concurrency.to_string(),
            ])
            .args(w.no_templates.then_some("--no-templates"))
            .env("BENCH_TRELLO_KEY", &fixture.api_key)
            .env("BENCH_TRELLO_TOKEN", &fixture.tokens.full)
            .output()?;
        if !output.status.success() {
            bail!(
                "worker {mode} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let line = BufReader::new(output.stdout.as_slice())
            .lines()
            .last()
            .context("worker printed nothing")??;
        Ok(serde_json::from_str(&line)?)
    };
    let worker = |mode: &str, findings: &Path| -> Result<Outcome> {
        worker_on(mode, findings, &main_board, &data_dir, false)
    };
    let mut rows = Vec::new();
    let handle = server.handle();
    // `--cards 0` and `--dry-run-findings 0` skip those scenarios.
    if args.cards > 0 {
        rows.push(Row {
            name: "new findings",
            cards: args.cards,
            o: worker("export", &base)?,
            rate,
        });
        rows.push(Row {
            name: "unchanged re-export",
            cards: args.cards,
            o: worker("export", &base)?,
            rate,
        });
        rows.push(Row {
            name: "10 % changed",
            cards: args.cards,
            o: worker("export", &changed)?,
            rate,
        });
        // People finish some cards in Trello before the sync.
        let cards = handle.cards(&fixture.board_id);
        for c in cards.iter().step_by(20) {
            handle.person_move_card(&c.id, &fixture.done_list_id);
        }
        rows.push(Row {
            name: "sync",
            cards: cards.len(),
            o: worker("sync", &base)?,
            rate,
        });
    }
    if args.dry_run_findings > 0 {
        rows.push(Row {
            name: "dry run",
            cards: args.dry_run_findings,
            o: worker("dry-run", &big)?,
            rate,
        });
    }
    // The realistic scan, on boards of its own, with and without step templates.
    if args.scan_findings > 0 {
        let scan = dir.path().join("scan.jsonl");
        write_scan(&scan, args.scan_findings, args.rules)?;
        let owner = fixture.members[0].id.clone();
        let board_for = |name: &str| {
            let b = handle.create_board(Some(&fixture.org_id), name);
            handle.add_board_admin(&b, &owner);
            for m in fixture.members.iter().skip(1).filter(|m| m.on_board) {
                handle.add_board_member(&b, &m.id);
            }
            let list = handle.create_list(&b, "To Do");
            let done = handle.create_list(&b, "Done");
            (b, list, done)
        };
        let with = board_for("Scan with templates");
        let without = board_for("Scan without templates");
        let with_dir = dir.path().join("data-scan-templates");
        let without_dir = dir.path().join("data-scan-plain");
        rows.push(Row {
            name: "realistic scan, templates",
            cards: args.scan_findings,
            o: worker_on("export", &scan, &with, &with_dir, false)?,
            rate,
        });
        rows.push(Row {
            name: "realistic scan, no templates",
            cards: args.scan_findings,
            o: worker_on("export", &scan, &without, &without_dir, true)?,
            rate,
        });
        rows.push(Row {
            name: "realistic scan re-export",
            cards: args.scan_findings,
            o: worker_on("export", &scan, &with, &with_dir, false)?,
            rate,
        });
        let cards = handle.cards(&with.0);
        let open_templates = cards
            .iter()
            .filter(|c| c.desc.contains("[webriskops:template:") && !c.closed)
            .count();
        eprintln!(
            "scan board: {} cards ({} open templates)",
            cards.len(),
            open_templates
        );
    }
    let on_board = handle.cards(&fixture.board_id).len();
    let sim_429 = handle.count_status(429);
    rt.block_on(server.shutdown());

    println!("| scenario | findings | reads | writes | requests/card | wall (s) | floor (s) | wall/floor | 429s | peak RSS (MB) | outcome |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in rows.iter().filter(|r| !r.is_scan()) {
        let outcome = match r.name {
            "sync" => format!("{} events", r.o.events),
            _ => format!(
                "{} created, {} updated, {} unchanged, {} failed, {} duplicates",
                r.o.created, r.o.updated, r.o.unchanged, r.o.failed, r.o.duplicates
            ),
        };
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.1} | {:.1} | {} | {} | {:.0} | {} |",
            r.name,
            r.cards,
            r.o.reads,
            r.o.writes,
            r.requests_per_card(),
            r.o.wall_s,
            r.floor_s(),
            r.wall_per_floor(),
            r.o.r429,
            r.o.peak_mb,
            outcome
        );
    }
    // The realistic scan side by side, with the figure a customer feels: cards per second.
    if rows.iter().any(Row::is_scan) {
        println!(
            "\n| realistic scan ({} findings, {} rules, 2–6 steps) | reads | writes | requests/card | cards/s | wall (s) | floor (s) | wall/floor | 429s | peak RSS (MB) | outcome |",
            args.scan_findings, args.rules
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    }
    for r in rows.iter().filter(|r| r.is_scan()) {
        println!(
            "| {} | {} | {} | {:.2} | {} | {:.1} | {:.1} | {} | {} | {:.0} | {} created ({} copied from {} templates made), {} unchanged, {} failed, {} duplicates |",
            r.name,
            r.o.reads,
            r.o.writes,
            r.requests_per_card(),
            r.cards_per_s(),
            r.o.wall_s,
            r.floor_s(),
            r.wall_per_floor(),
            r.o.r429,
            r.o.peak_mb,
            r.o.created,
            r.o.copied,
            r.o.templates_created,
            r.o.unchanged,
            r.o.failed,
            r.o.duplicates
        );
    }
    println!("\ncards on the board: {on_board}; 429 answers seen by the simulator: {sim_429}");
    if args.linear_cards > 0 {
        linear_bench(&args, &rt, dir.path())?;
    }
    let binary = match &args.webriskops {
        Some(p) => p.clone(),
        None => exe.with_file_name("webriskops"),
    };
    fleet::run(
        &fleet::FleetOptions {
            tenants: args.fleet_tenants,
            large: args.fleet_large,
            small_min: args.fleet_small_min,
            small_max: args.fleet_small_max,
            replicas: args.fleet_replicas,
            steps: args.fleet_steps,
            variants: args.fleet_variants.clone(),
            scale: args.scale,
            latency_ms: args.latency_ms,
            binary,
            logs: args.fleet_logs.clone(),
        },
        &rt,
        dir.path(),
    )?;
    Ok(())
}

/// One Linear scenario's figures, from the adapter's own request statistics (the port).
struct LinearRow {
    name: &'static str,
    stats: webriskops_ports::RequestStats,
    mutations: usize,
    wall_s: f64,
    created: u64,
    unchanged: u64,
    failed: u64,
}

/// Linear: new issues, then an unchanged re-export, against linear-sim with Linear's
/// per-user budgets scaled in time (in process: one adapter per scenario).
fn linear_bench(args: &Args, rt: &tokio::runtime::Runtime, dir: &Path) -> Result<()> {
    use webriskops_linear::{
        Credential, FindingUrl, LinearAdapter, LinearAdapterOptions, LinearSettings, RateLimits,
    };
    let period = Duration::from_secs(3600) / args.linear_scale.max(1) as u32;
    let server = rt.block_on(linear_sim::SimServer::start(linear_sim::SimConfig {
        latency: Duration::from_millis(args.latency_ms),
        period,
        ..linear_sim::SimConfig::default()
    }))?;
    let sim = server.handle();
    let fx = sim.seed_standard();
    let findings = dir.join("linear.jsonl");
    write_findings(&findings, args.linear_cards, args.steps, None, None)?;
    let data_dir = dir.join("linear-data");
    let rate = 2_500.0 / period.as_secs_f64();
    eprintln!(
        "linear-sim at {} · latency {} ms · period {} ms · allowed rate {rate:.0} req/s (per user)",
        server.base_url(),
        args.latency_ms,
        period.as_millis()
    );
    let mut record = ProviderRecord::new_trello(TenantId::new("bench")?);
    record.provider_key = webriskops_domain::ProviderKey::LinearCloud;
    record.board_id = Some(fx.eng.id.clone());
    record.list_id = Some(fx.eng.todo.clone());
    record.done_list_id = Some(fx.eng.done.clone());
    let target = ExportTarget::from_record(&record).context("target")?;
    let mut rows = Vec::new();
    for name in ["new issues", "unchanged re-export"] {
        let settings = LinearSettings {
            api_url: server.base_url(),
            limits: RateLimits {
                period_ms: period.as_millis() as u64,
                ..RateLimits::default()
            },
            ..LinearSettings::default()
        };
        let adapter = Arc::new(LinearAdapter::new(
            &settings,
            Credential::api_key(fx.keys.full.clone())?,
            TenantId::new("bench")?,
            LinearAdapterOptions {
                finding_url: FindingUrl::new("https://risk.example.com/findings/{id}")?,
                ..LinearAdapterOptions::default()
            },
        )?);
        let store = SqliteStore::open(&data_dir, StoreOptions::default())?;
        let ports = ExportPorts {
            items: adapter.clone(),
            introspection: Some(adapter.clone()),
            ledger: Arc::new(store.clone()),
            journal: Arc::new(store),
        };
        let opts = ExportOptions {
            concurrency: args.concurrency,
            ..Default::default()
        };
        let source = FileSource::open_path(&findings)?;
        sim.clear_request_log();
        let started = Instant::now();
        let s = rt.block_on(export(&ports, &record, &target, &source, &opts, &Silent))?;
        let wall_s = started.elapsed().as_secs_f64();
        let mutations = sim
            .request_log()
            .iter()
            .filter(|r| r.root_fields.iter().any(|f| is_mutation(f)))
            .count();
        rows.push(LinearRow {
            name,
            stats: webriskops_ports::WorkItems::request_stats(adapter.as_ref()).unwrap_or_default(),
            mutations,
            wall_s,
            created: s.created,
            unchanged: s.unchanged,
            failed: s.failed_count,
        });
    }
    let ratelimited = sim
        .error_code_counts()
        .get("RATELIMITED")
        .copied()
        .unwrap_or(0);
    let issues = sim.issues(&fx.eng.id).len();
    rt.block_on(server.shutdown());

    println!("\n| Linear scenario | findings | reads | writes | mutations | requests/issue | wall (s) | floor (s) | RATELIMITED | outcome |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in &rows {
        let requests = r.stats.reads + r.stats.writes;
        println!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.1} | {:.1} | {} | {} created, {} unchanged, {} failed |",
            r.name,
            args.linear_cards,
            r.stats.reads,
            r.stats.writes,
            r.mutations,
            requests as f64 / args.linear_cards.max(1) as f64,
            r.wall_s,
            requests as f64 / rate,
            r.stats.rate_limited,
            r.created,
            r.unchanged,
            r.failed
        );
    }
    println!(
        "\nissues in the team: {issues}; RATELIMITED answers seen by linear-sim: {ratelimited}"
    );
    Ok(())
}

/// Root fields that write (the GraphQL mutations the exporter sends).
fn is_mutation(field: &str) -> bool {
    [
        "issueCreate",
        "issueUpdate",
        "issueArchive",
        "issueUnarchive",
        "issueLabelCreate",
    ]
    .iter()
    .any(|m| field.starts_with(m))
        || (field.starts_with("attachment") && !field.starts_with("attachmentsForURL"))
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.worker {
        Some(Worker::Worker(w)) => tokio::runtime::Runtime::new()?.block_on(run_worker(w)),
        None => orchestrate(args),
    }
}
