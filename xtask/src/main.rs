//! Project automation: `cargo xtask test` (the CI gate), `cargo xtask bench` and
//! `cargo xtask fuzz`.
//!
//! Kept dependency-free so it builds in seconds on a fresh machine.

mod naming;

/// The tests' throwaway PostgreSQL cluster: the one file the tests' support crate
/// (`webriskops-pg-testing`) compiles too, so xtask stays dependency-free.
#[allow(dead_code)]
#[path = "../../crates/pg-testing/src/cluster.rs"]
mod pg_cluster;

use std::env;
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test            the architecture check, cargo fmt --check, cargo clippy -D warnings,
                  every test (nextest when installed, else cargo test) and the doc
                  tests; what CI runs. The PostgreSQL tests use DATABASE_URL when
                  set, else a throwaway cluster (the local initdb and pg_ctl) under
                  the target directory, removed afterwards
  architecture    only the architecture check: domain, ports and service have no HTTP or
                  database crate (the domain no tokio) in their normal dependency trees,
                  the service depends on no adapter, and the source of ports and
                  service names no tracker (trello, linear) and none of its objects
                  (board, card, team; list in strings)
  bench [ARGS]    the export benchmarks against the local Trello simulator (release build),
                  the fleet scenario last (replicas of the release binary on PostgreSQL:
                  DATABASE_URL, else a throwaway cluster); ARGS go to the benchmark,
                  e.g. `cargo xtask bench -- --help`
  fuzz [--seconds N] [TARGET...]
                  runs each cargo fuzz target in fuzz/ for N seconds (default 60; all
                  targets when none is named), starting from the committed seeds; an
                  input that breaks a property is copied to fuzz/regressions/TARGET/,
                  which `cargo xtask test` then replays forever. Needs cargo-fuzz
                  (`cargo install cargo-fuzz`)
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("architecture") => check_architecture(),
        Some("bench") => bench(&args[1..]),
        Some("fuzz") => fuzz(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
        None => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(step: &str, mut cmd: Command) -> Result<(), String> {
    eprintln!("xtask: {step}");
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// HTTP, database and web-server crates: adapters' business, never the core's.
const IO_CRATES: &[&str] = &["reqwest", "rusqlite", "sqlx", "axum", "hyper"];

/// The adapter crates (and simulators): chosen by the app, never by the service.
const ADAPTER_CRATES: &[&str] = &[
    "webriskops-trello",
    "webriskops-linear",
    "webriskops-portable",
    "webriskops-store-sqlite",
    "webriskops-store-postgres",
    "webriskops-findings-file",
    "webriskops-fake",
    "trello-sim",
    "linear-sim",
];

/// One dependency rule of docs/architecture.md: `krate`'s normal dependency tree holds
/// none of `forbidden`.
struct Rule {
    krate: &'static str,
    forbidden: &'static [&'static [&'static str]],
    rule: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        krate: "webriskops-domain",
        forbidden: &[IO_CRATES, &["tokio"]],
        rule: "the domain is pure: no async runtime, HTTP or database crate",
    },
    Rule {
        krate: "webriskops-ports",
        forbidden: &[IO_CRATES],
        rule: "the ports are neutral: no HTTP or database crate crosses them",
    },
    Rule {
        krate: "webriskops-service",
        forbidden: &[IO_CRATES, ADAPTER_CRATES],
        rule: "the service uses ports only: no HTTP or database crate and no adapter; the app \
               composes adapters and passes them in",
    },
    Rule {
        krate: "webriskops-budget",
        forbidden: &[
            IO_CRATES,
            ADAPTER_CRATES,
            &["tokio-postgres", "deadpool-postgres"],
        ],
        rule: "the shared budget's client speaks to its store through the RequestBudgets port \
               only: no HTTP or database crate and no adapter",
    },
    Rule {
        krate: "webriskops-server",
        forbidden: &[ADAPTER_CRATES, &["reqwest", "rusqlite", "sqlx"]],
        rule: "the HTTP front end serves and renders only: no adapter, no database or HTTP \
               client crate; the app composes them and hands them over as a Composer",
    },
];

/// A `cargo tree --prefix depth` line: its depth and the crate's name.
fn parse_tree_line(line: &str) -> Option<(usize, &str)> {
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let depth = line[..digits].parse().ok()?;
    let name = line[digits..].split_whitespace().next()?;
    Some((depth, name))
}

/// A forbidden crate found in a dependency tree, with the chain that pulls it in.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    krate: String,
    path: Vec<String>,
}

/// The forbidden crates of a `cargo tree -e normal --prefix depth` output, each once,
/// with the first chain from the root that reaches it.
fn violations(tree: &str, forbidden: &[&[&str]]) -> Vec<Violation> {
    let mut chain: Vec<&str> = Vec::new();
    let mut found: Vec<Violation> = Vec::new();
    for (depth, name) in tree.lines().filter_map(parse_tree_line) {
        chain.truncate(depth);
        chain.push(name);
        let banned = forbidden.iter().any(|set| set.contains(&name));
        if banned && depth > 0 && !found.iter().any(|v| v.krate == name) {
            found.push(Violation {
                krate: name.to_owned(),
                path: chain.iter().map(|s| (*s).to_owned()).collect(),
            });
        }
    }
    found
}

/// The dependency rules of docs/architecture.md, checked on `cargo tree -e normal` (what
/// a release build links): domain, ports and service stay free of HTTP and database
/// crates (the domain of tokio too), and the service depends on no adapter; then the
/// naming rule ([`check_naming`]).
fn check_architecture() -> Result<(), String> {
    let mut broken = Vec::new();
    for rule in RULES {
        eprintln!(
            "xtask: architecture (cargo tree -p {} -e normal)",
            rule.krate
        );
        let out = cargo()
            .args([
                "tree", "-p", rule.krate, "-e", "normal", "--prefix", "depth",
            ])
            .output()
            .map_err(|e| format!("cargo tree: cannot start: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo tree -p {} failed: {}",
                rule.krate,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        for v in violations(&String::from_utf8_lossy(&out.stdout), rule.forbidden) {
            broken.push(format!(
                "  {} depends on {} ({}), which breaks the rule: {}",
                rule.krate,
                v.krate,
                v.path.join(" → "),
                rule.rule
            ));
        }
    }
    if !broken.is_empty() {
        return Err(format!(
            "the architecture check failed (see docs/architecture.md); move the dependency \
             into an adapter or the app:\n{}",
            broken.join("\n")
        ));
    }
    check_naming()
}

/// The naming rule (ADR 0005 §10): the source of ports and service names no tracker and
/// none of its objects; see [`naming`].
fn check_naming() -> Result<(), String> {
    eprintln!(
        "xtask: architecture (tracker names in {})",
        naming::NEUTRAL_TREES.join(", ")
    );
    let broken = naming::check(&workspace_root(), naming::NEUTRAL_TREES)?;
    if broken.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the naming check failed (see docs/architecture.md): ports and service name no \
             tracker and none of its objects; take the words from the record's provider \
             vocabulary (`ProviderKey::vocabulary()`) or use the neutral names (container, \
             destination, item):\n{}",
            broken.join("\n")
        ))
    }
}

/// The browser tests drive Debian's Chromium; install it when it is missing.
fn ensure_browser() -> Result<(), String> {
    let root = workspace_root();
    let script = root.join("scripts/install-browser.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script);
    run("scripts/install-browser.sh", cmd)
}

/// The PostgreSQL the store's tests use: `DATABASE_URL` when set, else a throwaway cluster
/// under the target directory for the whole run (stopped and removed when dropped).
fn tests_database() -> Result<(String, Option<pg_cluster::Cluster>), String> {
    if let Some(url) = env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        eprintln!("xtask: PostgreSQL tests use DATABASE_URL");
        return Ok((url, None));
    }
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    eprintln!(
        "xtask: starting a throwaway PostgreSQL cluster under {}",
        target.display()
    );
    let cluster = pg_cluster::Cluster::start(&target.join("pg-xtask"))?;
    eprintln!("xtask: PostgreSQL tests use {}", cluster.url());
    Ok((cluster.url(), Some(cluster)))
}

fn test() -> Result<(), String> {
    check_architecture()?;
    ensure_browser()?;
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run("cargo fmt --check", fmt)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run("cargo clippy --workspace --all-targets -D warnings", clippy)?;

    // Kept until the tests are done; dropping it stops and removes the cluster.
    let (database_url, _cluster) = tests_database()?;
    if has_nextest() {
        let mut nextest = cargo();
        nextest.env("DATABASE_URL", &database_url);
        nextest.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        run("cargo nextest run --workspace", nextest)?;
        let mut doc = cargo();
        doc.args(["test", "--workspace", "--doc"]);
        run("cargo test --doc", doc)?;
    } else {
        eprintln!("xtask: cargo-nextest not installed; using cargo test");
        let mut test = cargo();
        test.env("DATABASE_URL", &database_url);
        test.args(["test", "--workspace", "--no-fail-fast"]);
        run("cargo test --workspace", test)?;
    }
    Ok(())
}

fn bench(args: &[String]) -> Result<(), String> {
    // The fleet scenario runs the release binary as `webriskops serve` replicas; the
    // benchmark finds it next to itself in the target directory.
    let mut binary = cargo();
    binary.args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "webriskops",
        "--bin",
        "webriskops",
    ]);
    run("the webriskops binary (release)", binary)?;
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "--quiet",
        "-p",
        "webriskops-bench",
        "--",
    ]);
    cmd.args(args.iter().filter(|a| *a != "--"));
    run("benchmarks (release)", cmd)
}

/// The cargo fuzz targets: the `[[bin]]` names in `fuzz/Cargo.toml`.
fn fuzz_targets(fuzz_dir: &std::path::Path) -> Result<Vec<String>, String> {
    let manifest = fuzz_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let mut in_bin = false;
    let mut names = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(v) = line.strip_prefix("name = ").filter(|_| in_bin) {
            names.push(v.trim_matches('"').to_owned());
        }
    }
    Ok(names)
}

/// What one fuzz run did.
struct FuzzRun {
    target: String,
    runs: Option<u64>,
    crashes: Vec<std::path::PathBuf>,
}

fn fuzz(args: &[String]) -> Result<(), String> {
    let fuzz_dir = workspace_root().join("fuzz");
    let known = fuzz_targets(&fuzz_dir)?;
    let mut seconds: u64 = 60;
    let mut targets: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                let v = it.next().ok_or("--seconds needs a number of seconds")?;
                seconds = v
                    .parse()
                    .map_err(|_| format!("--seconds takes whole seconds, not {v:?}"))?;
            }
            t if known.iter().any(|k| k == t) => targets.push(t.to_owned()),
            other => {
                return Err(format!(
                    "unknown fuzz target or option {other:?}; targets: {}",
                    known.join(", ")
                ))
            }
        }
    }
    if targets.is_empty() {
        targets = known;
    }
    let installed = cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        return Err("cargo-fuzz is not installed; run `cargo install cargo-fuzz`".into());
    }
    let mut results = Vec::new();
    for target in &targets {
        results.push(fuzz_one(&fuzz_dir, target, seconds)?);
    }
    eprintln!("xtask: fuzz summary ({seconds} s per target)");
    let mut failed = false;
    for r in &results {
        let runs = r.runs.map_or("?".to_owned(), |n| n.to_string());
        eprintln!(
            "  {:<16} {:>12} executions  {} crashes",
            r.target,
            runs,
            r.crashes.len()
        );
        for c in &r.crashes {
            failed = true;
            eprintln!("    kept as a regression input: {}", c.display());
        }
    }
    if failed {
        Err(
            "fuzzing found inputs that break a property: fix them; `cargo xtask test` replays them"
                .into(),
        )
    } else {
        Ok(())
    }
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lies one level below the workspace root")
        .to_owned()
}

fn fuzz_one(fuzz_dir: &std::path::Path, target: &str, seconds: u64) -> Result<FuzzRun, String> {
    let corpus = fuzz_dir.join("corpus").join(target);
    let seeds = fuzz_dir.join("seeds").join(target);
    let artifacts = fuzz_dir.join("artifacts").join(target);
    for d in [&corpus, &artifacts] {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    eprintln!("xtask: fuzzing {target} for {seconds} s");
    // cargo fuzz passes sanitizer flags that stable rustc accepts only with
    // RUSTC_BOOTSTRAP; the machines here carry the stable toolchain alone.
    let out = cargo()
        .current_dir(fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", "--release", target])
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-max_len=65536")
        .arg("-rss_limit_mb=2048")
        .output()
        .map_err(|e| format!("cargo fuzz: cannot start: {e}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    // libFuzzer's last line: "Done 123456 runs in 60 second(s)".
    let runs = log.lines().rev().find_map(|l| {
        l.strip_prefix("Done ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    });
    let mut crashes = Vec::new();
    let regressions = fuzz_dir.join("regressions").join(target);
    for entry in std::fs::read_dir(&artifacts).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        std::fs::create_dir_all(&regressions).map_err(|e| e.to_string())?;
        let kept = regressions.join(path.file_name().expect("artifact file name"));
        std::fs::rename(&path, &kept)
            .or_else(|_| std::fs::copy(&path, &kept).map(|_| ()))
            .map_err(|e| format!("cannot keep {}: {e}", path.display()))?;
        crashes.push(kept);
    }
    if !out.status.success() && crashes.is_empty() {
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "cargo fuzz run {target} failed without an input to keep:\n{}",
            tail.join("\n")
        ));
    }
    Ok(FuzzRun {
        target: target.to_owned(),
        runs,
        crashes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo tree -p webriskops-service -e normal --prefix depth`, shortened, with an
    /// adapter and an HTTP client pulled in through it.
    const TREE: &str = "\
0webriskops-service v0.1.0 (/w/crates/service)
1async-trait v0.1.92 (proc-macro)
2proc-macro2 v1.0.107
1webriskops-ports v0.1.0 (/w/crates/ports)
2serde v1.0.229
1webriskops-trello v0.1.0 (/w/crates/adapters/trello)
2reqwest v0.12.24
3hyper v1.7.0
4tokio v1.48.0
3hyper-util v0.1.17
2webriskops-ports v0.1.0 (/w/crates/ports) (*)
1tokio v1.48.0 (*)
";

    #[test]
    fn tree_lines_give_depth_and_name() {
        assert_eq!(
            parse_tree_line("0webriskops-service v0.1.0 (/w/crates/service)"),
            Some((0, "webriskops-service"))
        );
        assert_eq!(
            parse_tree_line("12serde_derive v1.0.229 (proc-macro)"),
            Some((12, "serde_derive"))
        );
        assert_eq!(parse_tree_line(""), None);
        assert_eq!(parse_tree_line("[build-dependencies]"), None);
    }

    #[test]
    fn each_forbidden_crate_is_named_once_with_the_chain_that_pulls_it_in() {
        let found = violations(TREE, &[IO_CRATES, ADAPTER_CRATES]);
        let names: Vec<&str> = found.iter().map(|v| v.krate.as_str()).collect();
        assert_eq!(names, ["webriskops-trello", "reqwest", "hyper"]);
        assert_eq!(
            found[2].path,
            [
                "webriskops-service",
                "webriskops-trello",
                "reqwest",
                "hyper"
            ]
        );
        // `hyper-util` is not `hyper`, and tokio is allowed outside the domain.
        assert!(violations(TREE, &[IO_CRATES])
            .iter()
            .all(|v| v.krate != "hyper-util" && v.krate != "tokio"));
        let domain = violations(TREE, &[&["tokio"]]);
        assert_eq!(domain.len(), 1);
        assert_eq!(domain[0].path.last().map(String::as_str), Some("tokio"));
    }

    #[test]
    fn a_clean_tree_and_the_root_itself_break_nothing() {
        let clean = "0webriskops-domain v0.1.0 (/w/crates/domain)\n1serde v1.0.229\n";
        assert!(violations(clean, &[IO_CRATES, &["tokio"]]).is_empty());
        // A rule never fires on the crate it is about.
        assert!(violations(clean, &[&["webriskops-domain"]]).is_empty());
    }

    #[test]
    fn the_rules_cover_domain_ports_service_and_server() {
        let crates: Vec<&str> = RULES.iter().map(|r| r.krate).collect();
        assert_eq!(
            crates,
            [
                "webriskops-domain",
                "webriskops-ports",
                "webriskops-service",
                "webriskops-budget",
                "webriskops-server"
            ]
        );
        let service = &RULES[2];
        assert!(service.forbidden.iter().any(|s| s.contains(&"trello-sim")));
        // The shared budget's client reaches its store through the port only.
        let budget = &RULES[3];
        for banned in [
            "webriskops-store-postgres",
            "webriskops-trello",
            "tokio-postgres",
            "reqwest",
        ] {
            assert!(
                budget.forbidden.iter().any(|s| s.contains(&banned)),
                "{banned}"
            );
        }
        // The front end may serve HTTP, but names no adapter and no database or client.
        let server = &RULES[4];
        for banned in [
            "webriskops-trello",
            "webriskops-store-sqlite",
            "reqwest",
            "rusqlite",
        ] {
            assert!(
                server.forbidden.iter().any(|s| s.contains(&banned)),
                "{banned}"
            );
        }
        assert!(!server.forbidden.iter().any(|s| s.contains(&"axum")));
    }
}
