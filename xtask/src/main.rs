//! Project automation: `cargo xtask test` (the CI gate) and `cargo xtask bench`.
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
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("bench") => bench(&args[1..]),
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
