//! Shared harness: a trello-sim per test, a private data directory, and the real binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use trello_sim::{Fixture, SimConfig, SimHandle, SimServer};

/// Adapter settings matching the simulator's scaled window and raised limits.
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
"#;

/// The outcome of one run of the binary.
#[derive(Debug, Clone)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    pub fn codes(&self) -> Vec<String> {
        self.json()["blocked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["code"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// A simulator with the standard world, a working directory and a data directory.
pub struct World {
    pub sim: SimHandle,
    pub fx: Fixture,
    pub base_url: String,
    pub dir: TempDir,
    /// Every stdout and stderr the binary produced, for the redaction search.
    pub transcript: Arc<Mutex<String>>,
    server: Option<SimServer>,
    rt: tokio::runtime::Runtime,
}

impl World {
    pub fn new() -> World {
        World::with_latency(Duration::ZERO)
    }

    pub fn with_latency(latency: Duration) -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = rt
            .block_on(SimServer::start(SimConfig {
                latency,
                window: Duration::from_secs(1),
                token_limit: 1000,
                key_limit: 3000,
                members_limit: 1000,
                ..SimConfig::default()
            }))
            .unwrap();
        let sim = server.handle();
        let fx = sim.seed_standard();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("webriskops.toml"), CONFIG).unwrap();
        World {
            base_url: server.base_url(),
            sim,
            fx,
            dir,
            transcript: Arc::new(Mutex::new(String::new())),
            server: Some(server),
            rt,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary with a clean environment pointing at this world (no token).
    pub fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("webriskops"));
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("WEBRISKOPS_CONFIG", self.dir.path().join("webriskops.toml"))
            .env("WEBRISKOPS_DATA_DIR", self.data_dir())
            .env("WEBRISKOPS_TRELLO_API_ROOT", &self.base_url)
            .env("TRELLO_API_KEY", &self.fx.api_key)
            .stdin(std::process::Stdio::null());
        c
    }

    /// Runs the binary with `args` and extra environment variables.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out: Output = c.output().unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let mut t = self.transcript.lock().unwrap();
        t.push_str(&run.stdout);
        t.push_str(&run.stderr);
        run
    }

    /// Setup with the full token, board, lists and revoke path, saved.
    pub fn setup_saved(&self, token: &str) -> Run {
        let run = self.run(
            &[
                "setup",
                "trello",
                "--board-id",
                &self.fx.board_id,
                "--list-id",
                &self.fx.list_id,
                "--done-list-id",
                &self.fx.done_list_id,
                "--confirm-revoke-path",
                "--save",
                "--json",
            ],
            &[("TRELLO_TOKEN", token)],
        );
        assert_eq!(run.code, 0, "setup failed: {run:?}");
        run
    }

    /// Writes findings as JSON Lines and returns the path.
    pub fn findings_file(&self, name: &str, lines: &[String]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    }

    /// Requests the simulator answered that were not reads.
    pub fn writes_logged(&self) -> usize {
        self.sim
            .request_log()
            .iter()
            .filter(|r| r.method != "GET")
            .count()
    }

    /// Cards on the main board per finding marker.
    pub fn cards_per_finding(&self) -> std::collections::BTreeMap<String, usize> {
        let mut m = std::collections::BTreeMap::new();
        for c in self.sim.cards(&self.fx.board_id) {
            if let Some(at) = c.desc.find("[webriskops:finding:") {
                let rest = &c.desc[at + "[webriskops:finding:".len()..];
                let id = rest.split(']').next().unwrap().to_owned();
                *m.entry(id).or_insert(0) += 1;
            }
        }
        m
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

/// One valid finding as a JSON line.
pub fn finding(id: &str, title: &str) -> String {
    serde_json::json!({
        "id": id,
        "title": title,
        "severity": "medium",
        "status": "open",
        "remediation_steps": ["Fix it"],
    })
    .to_string()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
