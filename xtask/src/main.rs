//! Project automation: `cargo xtask test` (the CI gate) and `cargo xtask bench`.
//!
//! Kept dependency-free so it builds in seconds on a fresh machine.

use std::env;
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test            cargo fmt --check, cargo clippy -D warnings, every test (nextest when
                  installed, else cargo test) and the doc tests; what CI runs
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
    let status = cmd.status().map_err(|e| format!("{step}: cannot start: {e}"))?;
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

fn test() -> Result<(), String> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run("cargo fmt --check", fmt)?;

    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
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
    cmd.args(["run", "--release", "--quiet", "-p", "webriskops-bench", "--"]);
    cmd.args(args.iter().filter(|a| *a != "--"));
    run("benchmarks (release)", cmd)
}
