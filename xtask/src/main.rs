//! Project automation: `cargo xtask test` (the CI gate), `cargo xtask bench` and
//! `cargo xtask fuzz`.
//!
//! Kept dependency-free so it builds in seconds on a fresh machine.

use std::env;
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test            the domain purity check, cargo fmt --check, cargo clippy -D warnings,
                  every test (nextest when installed, else cargo test) and the doc
                  tests; what CI runs
  bench [ARGS]    the export benchmarks against the local Trello simulator (release build);
                  ARGS go to the benchmark, e.g. `cargo xtask bench -- --help`
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

/// Crates that must never reach the pure domain crate.
const FORBIDDEN_IN_DOMAIN: &[&str] = &["tokio", "reqwest", "sqlx", "rusqlite", "axum", "hyper"];

/// The domain crate's invariant: no async runtime, HTTP or database in its dependency tree.
fn check_domain_purity() -> Result<(), String> {
    eprintln!("xtask: domain purity (cargo tree -p webriskops-domain)");
    let out = cargo()
        .args([
            "tree",
            "-p",
            "webriskops-domain",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .output()
        .map_err(|e| format!("cargo tree: cannot start: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    let found: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| FORBIDDEN_IN_DOMAIN.contains(name))
        .collect();
    if found.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the domain crate must stay pure, but its dependency tree has: {}",
            found.join(", ")
        ))
    }
}

fn test() -> Result<(), String> {
    check_domain_purity()?;
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

    if has_nextest() {
        let mut nextest = cargo();
        nextest.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        run("cargo nextest run --workspace", nextest)?;
        let mut doc = cargo();
        doc.args(["test", "--workspace", "--doc"]);
        run("cargo test --doc", doc)?;
    } else {
        eprintln!("xtask: cargo-nextest not installed; using cargo test");
        let mut test = cargo();
        test.args(["test", "--workspace", "--no-fail-fast"]);
        run("cargo test --workspace", test)?;
    }
    Ok(())
}

fn bench(args: &[String]) -> Result<(), String> {
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
