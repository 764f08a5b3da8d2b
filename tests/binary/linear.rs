//! The real `webriskops` binary against linear-sim: `setup linear`, then export, sync,
//! status and revoke on a tenant whose record names Linear.

use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, Mutex};

use linear_sim::{Fixture, SimConfig, SimHandle, SimServer};
use serde_json::Value;
use tempfile::TempDir;

use crate::common::{files_under, finding, Run};

/// Adapter settings for the simulator: short retries, so a test never waits long.
const CONFIG: &str = r#"
[linear]
timeout_ms = 10000

[linear.retry]
initial_backoff_ms = 20
max_backoff_ms = 200
deadline_ms = 20000
"#;

/// Each finding's canonical URL: the attachment that ties an issue to its finding.
const FINDING_URL: &str = "https://risk.example.test/findings/{id}";

/// A linear-sim with the standard world (teams ENG and OPS, keys full / read_only /
/// eng_only), a working directory and a data directory.
struct LinearWorld {
    sim: SimHandle,
    fx: Fixture,
    api_url: String,
    dir: TempDir,
    /// Every stdout and stderr the binary produced, for the redaction search.
    transcript: Arc<Mutex<String>>,
    server: Option<SimServer>,
    rt: tokio::runtime::Runtime,
}

impl LinearWorld {
    fn new() -> LinearWorld {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(SimServer::start(SimConfig::default())).unwrap();
        let sim = server.handle();
        let fx = sim.seed_standard();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("webriskops.toml"), CONFIG).unwrap();
        LinearWorld {
            api_url: server.base_url(),
            sim,
            fx,
            dir,
            transcript: Arc::new(Mutex::new(String::new())),
            server: Some(server),
            rt,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary in a clean environment pointing at this world (no key).
    fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("webriskops"));
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("WEBRISKOPS_CONFIG", self.dir.path().join("webriskops.toml"))
            .env("WEBRISKOPS_DATA_DIR", self.data_dir())
            .env("WEBRISKOPS_LINEAR_API_URL", &self.api_url)
            .env("WEBRISKOPS_FINDING_URL", FINDING_URL)
            .stdin(std::process::Stdio::null());
        c
    }

    /// Runs the binary with `args` and extra environment variables, in a clean
    /// environment pointing at this world (no key unless given).
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
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

    /// `setup linear --json` with `key` and `args`.
    fn setup(&self, key: &str, args: &[&str]) -> Run {
        let mut all = vec!["setup", "linear", "--json"];
        all.extend_from_slice(args);
        self.run(&all, &[("LINEAR_API_KEY", key)])
    }

    /// Setup with the full key on ENG (Todo, done state Done), saved.
    fn setup_saved(&self) -> Run {
        let run = self.setup(
            &self.fx.keys.full,
            &[
                "--team-id",
                &self.fx.eng.id,
                "--state-id",
                &self.fx.eng.todo,
                "--done-state-id",
                &self.fx.eng.done,
                "--confirm-revoke-path",
                "--save",
            ],
        );
        assert_eq!(run.code, 0, "setup failed: {run:?}");
        run
    }

    fn findings_file(&self, name: &str, lines: &[String]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    }

    /// Attachments per finding URL over every issue of the world (archived and trashed
    /// ones included): more than one for a finding is a duplicate issue.
    fn attachments_per_finding(&self) -> std::collections::BTreeMap<String, usize> {
        let prefix = FINDING_URL.trim_end_matches("{id}");
        let mut m = std::collections::BTreeMap::new();
        for i in self.sim.all_issues() {
            for a in &i.attachments {
                if let Some(id) = a.url.strip_prefix(prefix) {
                    *m.entry(id.to_owned()).or_insert(0) += 1;
                }
            }
        }
        m
    }

    /// GraphQL mutations the simulator answered (`issueCreate`, `issueUpdate`, …).
    fn mutations_logged(&self) -> usize {
        self.sim
            .request_log()
            .iter()
            .filter(|r| {
                r.root_fields.iter().any(|f| {
                    f.ends_with("Create")
                        || f.ends_with("Update")
                        || f.ends_with("Archive")
                        || f.ends_with("Unarchive")
                        || f.ends_with("Delete")
                })
            })
            .count()
    }
}

impl Drop for LinearWorld {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

fn code_of(run: &Run, field: &str) -> Vec<String> {
    run.json()["blocked"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["field"] == field)
        .map(|b| b["code"].as_str().unwrap().to_owned())
        .collect()
}

// ── setup linear ─────────────────────────────────────────────────────────────────────

#[test]
fn setup_linear_lists_the_teams_the_key_sees_then_the_team_states() {
    let w = LinearWorld::new();
    let run = w.setup(&w.fx.keys.full, &[]);
    assert_eq!(run.code, 3, "{run:?}");
    let json = run.json();
    let mut keys: Vec<&str> = json["ready"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["cloud_target", "revoke_path", "scope", "state", "team"]
    );
    assert_eq!(json["ready"]["cloud_target"], Value::Bool(true));
    assert_eq!(json["saved"], Value::Bool(false));
    assert_eq!(json["record_state"], "none");
    assert!(run
        .codes()
        .contains(&"DESTINATION_TEAM_REQUIRED".to_owned()));
    let teams: Vec<&str> = json["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(teams.contains(&w.fx.eng.id.as_str()), "{json}");
    assert!(teams.contains(&w.fx.ops.id.as_str()), "{json}");
    for b in json["blocked"].as_array().unwrap() {
        assert!(b["fix"].as_str().is_some_and(|f| !f.is_empty()), "{b}");
    }

    // The same in text, on a terminal-less run.
    let text = w.run(&["setup", "linear"], &[("LINEAR_API_KEY", &w.fx.keys.full)]);
    assert_eq!(text.code, 3, "{text:?}");
    assert!(
        text.stdout.contains("Teams this key can see"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("Engineering"), "{}", text.stdout);
    assert!(text.stdout.contains(&w.fx.ops.id), "{}", text.stdout);

    // With the team, its workflow states are the choices.
    let run = w.setup(&w.fx.keys.full, &["--team-id", &w.fx.eng.id]);
    assert_eq!(run.code, 3, "{run:?}");
    let json = run.json();
    assert_eq!(json["ready"]["team"], Value::Bool(true), "{json}");
    let states = json["states"].to_string();
    assert!(states.contains(&w.fx.eng.todo), "{states}");
    assert!(states.contains(&w.fx.eng.done), "{states}");
    assert!(!states.contains(&w.fx.eng.archived_state), "{states}");
    assert!(run
        .codes()
        .contains(&"DESTINATION_STATE_REQUIRED".to_owned()));
    let help = w.run(&["setup", "linear", "--help"], &[]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Examples"), "{}", help.stdout);
    assert!(help.stdout.contains("--team-id"), "{}", help.stdout);
}

#[test]
fn each_linear_blocked_code_comes_from_a_realistic_answer() {
    let w = LinearWorld::new();
    let fx = &w.fx;
    let ready_args = |team: &str, state: &str| {
        vec![
            "--team-id".to_owned(),
            team.to_owned(),
            "--state-id".to_owned(),
            state.to_owned(),
            "--confirm-revoke-path".to_owned(),
        ]
    };
    let setup = |key: &str, args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        w.setup(key, &a)
    };

    // No key at all: connect Linear.
    let run = w.run(&["setup", "linear", "--json"], &[]);
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(code_of(&run, "token"), ["PROVIDER_AUTH_REQUIRED"]);
    assert!(run.stdout.contains("Linear"), "{}", run.stdout);

    // A key Linear refuses (revoked).
    let revoked = w.sim.create_api_key(
        &fx.user("secops").unwrap().id,
        linear_sim::Scopes::read_write(),
        None,
    );
    w.sim.revoke_api_key(&revoked);
    let run = setup(&revoked, ready_args(&fx.eng.id, &fx.eng.todo));
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(code_of(&run, "token"), ["PROVIDER_AUTH_REQUIRED"]);

    // A team the key cannot see: the eng-only key and the OPS team.
    let run = setup(&fx.keys.eng_only, ready_args(&fx.ops.id, &fx.ops.todo));
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(code_of(&run, "team_id"), ["PROVIDER_SCOPE_UNAVAILABLE"]);

    // A team key instead of its id.
    let run = setup(&fx.keys.full, ready_args("ENG", &fx.eng.todo));
    assert_eq!(code_of(&run, "team_id"), ["DESTINATION_TEAM_REQUIRED"]);

    // Another team's state.
    let run = setup(&fx.keys.full, ready_args(&fx.eng.id, &fx.ops.todo));
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(code_of(&run, "state_id"), ["STATE_NOT_IN_TEAM"]);
    let fix = run.json()["blocked"][0]["fix"].as_str().unwrap().to_owned();
    assert!(fix.contains("another team"), "{fix}");

    // A done state that does not close the issue (In Progress is `started`).
    let mut args = ready_args(&fx.eng.id, &fx.eng.todo);
    args.extend(["--done-state-id".to_owned(), fx.eng.in_progress.clone()]);
    let run = setup(&fx.keys.full, args);
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(code_of(&run, "done_state_id"), ["STATE_NOT_IN_TEAM"]);

    // An archived state.
    let run = setup(
        &fx.keys.full,
        ready_args(&fx.eng.id, &fx.eng.archived_state),
    );
    assert_eq!(code_of(&run, "state_id"), ["STATE_NOT_IN_TEAM"]);

    // Another workspace.
    let mut args = ready_args(&fx.eng.id, &fx.eng.todo);
    args.extend([
        "--workspace-id".to_owned(),
        "00000000-0000-4000-8000-000000000000".to_owned(),
    ]);
    let run = setup(&fx.keys.full, args);
    assert_eq!(run.codes(), ["TEAM_NOT_IN_WORKSPACE"]);

    // Any base URL: Linear is cloud-only.
    let mut args = ready_args(&fx.eng.id, &fx.eng.todo);
    args.extend([
        "--base-url".to_owned(),
        "https://linear.internal.example".to_owned(),
    ]);
    let run = setup(&fx.keys.full, args);
    assert_eq!(run.codes(), ["PROVIDER_DEPLOYMENT_UNSUPPORTED"]);
    assert_eq!(run.json()["ready"]["cloud_target"], Value::Bool(false));

    // Everything chosen but the revoke path.
    let run = w.setup(
        &fx.keys.full,
        &["--team-id", &fx.eng.id, "--state-id", &fx.eng.todo],
    );
    assert_eq!(run.codes(), ["REVOKE_PATH_UNCONFIRMED"]);
    assert_eq!(run.json()["ready"]["revoke_path"], Value::Bool(false));
    assert_eq!(run.json()["ready"]["state"], Value::Bool(true));

    // Nothing blocked: ready (exit 0), not saved without --save.
    let run = setup(&fx.keys.full, ready_args(&fx.eng.id, &fx.eng.todo));
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["blocked"], serde_json::json!([]));
    assert_eq!(run.json()["saved"], Value::Bool(false));
    assert!(
        !w.data_dir().join("webriskops.db").exists() || {
            let st = w.run(&["status", "--json", "--tracker", "linear"], &[]);
            st.json()["record_state"] == "none"
        }
    );
}

// ── export, sync, status ─────────────────────────────────────────────────────────────

#[test]
fn saved_setup_exports_one_issue_per_finding_with_steps_and_a_re_export_writes_nothing() {
    let w = LinearWorld::new();
    let setup = w.setup_saved();
    let json = setup.json();
    assert_eq!(json["saved"], Value::Bool(true));
    assert_eq!(json["record_state"], "saved");
    assert_eq!(json["record"]["provider_key"], "linear_cloud");
    assert_eq!(
        json["record"]["workspace_id"],
        Value::from(w.fx.organization_id.clone())
    );
    let steps = serde_json::json!({
        "id": "f-2",
        "title": "Weak TLS",
        "severity": "high",
        "status": "open",
        "remediation_steps": ["Disable TLS 1.0", "Enable HSTS"],
    })
    .to_string();
    let file = w.findings_file("f.jsonl", &[finding("f-1", "Open redirect"), steps]);
    let f = file.to_str().unwrap();

    // The stored key is used: no LINEAR_API_KEY now.
    let run = w.run(&["export", f, "--json"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.json();
    assert_eq!(s["created"], 2, "{s}");
    assert_eq!(s["failed_count"], 0, "{s}");
    assert!(s["fallback"].is_null(), "{s}");
    let issues = w.sim.issues(&w.fx.eng.id);
    assert_eq!(issues.len(), 2, "{issues:?}");
    for i in &issues {
        assert_eq!(i.state_id, w.fx.eng.todo);
        assert_eq!(i.attachments.len(), 1, "{i:?}");
        assert!(
            i.attachments[0]
                .url
                .starts_with("https://risk.example.test/findings/"),
            "{i:?}"
        );
    }
    let tls = issues
        .iter()
        .find(|i| i.title.contains("Weak TLS"))
        .unwrap();
    let body = tls.description.clone().unwrap_or_default();
    assert!(body.contains("- [ ] Disable TLS 1.0"), "{body}");
    assert!(body.contains("- [ ] Enable HSTS"), "{body}");

    // A re-export changes nothing and sends no mutation.
    w.sim.clear_request_log();
    let again = w.run(&["export", f, "--json"], &[]);
    assert_eq!(again.code, 0, "{again:?}");
    let s = again.json();
    assert_eq!(s["created"], 0, "{s}");
    assert_eq!(s["updated"], 0, "{s}");
    assert_eq!(s["unchanged"], 2, "{s}");
    assert_eq!(w.mutations_logged(), 0, "{:?}", w.sim.request_log());
    assert_eq!(w.sim.issues(&w.fx.eng.id).len(), 2);

    // Human output names Linear.
    let text = w.run(&["export", f], &[]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(text.stdout.contains("→ Linear"), "{}", text.stdout);
}

#[test]
fn sync_reports_an_issue_a_person_canceled_once_and_status_shows_the_linear_record() {
    let w = LinearWorld::new();
    w.setup_saved();
    let file = w.findings_file("f.jsonl", &[finding("f-1", "One"), finding("f-2", "Two")]);
    let run = w.run(&["export", file.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let issue = w
        .sim
        .issues(&w.fx.eng.id)
        .into_iter()
        .find(|i| i.title.contains("One"))
        .unwrap();
    w.sim.person_move_issue(&issue.id, &w.fx.eng.canceled);

    let first = w.run(&["sync"], &[]);
    assert_eq!(first.code, 0, "{first:?}");
    let events: Vec<Value> = first
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{}", first.stdout);
    assert_eq!(events[0]["finding_id"], "f-1");
    assert_eq!(events[0]["tracker"], "linear");
    assert_eq!(events[0]["tracker_status"], "canceled");
    let again = w.run(&["sync"], &[]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.stdout.trim(), "", "reported twice: {}", again.stdout);

    let status = w.run(&["status", "--json"], &[]);
    assert_eq!(status.code, 0, "{status:?}");
    let s = status.json();
    assert_eq!(s["record_state"], "saved");
    assert_eq!(s["record"]["provider_key"], "linear_cloud");
    assert_eq!(s["record"]["board_id"], Value::from(w.fx.eng.id.clone()));
    assert_eq!(s["ready"]["team"], Value::Bool(true), "{s}");
    assert_eq!(s["blocked"], serde_json::json!([]));
    assert!(s["last_export"].is_object(), "{s}");
    assert!(s["last_sync"].is_object(), "{s}");
    let text = w.run(&["status"], &[]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(
        text.stdout.contains(&format!(
            "Linear: team {}, state {}",
            w.fx.eng.id, w.fx.eng.todo
        )),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("API key stored (encrypted)"),
        "{}",
        text.stdout
    );
}

#[test]
fn blocked_by_scope_auto_fallback_writes_the_bundle_with_the_same_identities() {
    let w = LinearWorld::new();
    // The record is for OPS; the key in use now only sees ENG.
    let run = w.setup(
        &w.fx.keys.full,
        &[
            "--team-id",
            &w.fx.ops.id,
            "--state-id",
            &w.fx.ops.todo,
            "--confirm-revoke-path",
            "--save",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let file = w.findings_file("f.jsonl", &[finding("f-1", "One")]);
    let eng_only = [("LINEAR_API_KEY", w.fx.keys.eng_only.as_str())];
    let run = w.run(
        &[
            "export",
            file.to_str().unwrap(),
            "--json",
            "--out",
            "bundle",
        ],
        &eng_only,
    );
    assert_eq!(
        run.code, 3,
        "the bundle is written but setup stays blocked: {run:?}"
    );
    let s = run.json();
    assert_eq!(s["tracker"], "portable", "{s}");
    assert_eq!(s["created"], 1, "{s}");
    assert_eq!(s["fallback"], "blocked", "{s}");
    assert_eq!(
        s["fallback_reasons"][0]["code"], "PROVIDER_SCOPE_UNAVAILABLE",
        "{s}"
    );
    assert!(w.sim.issues(&w.fx.ops.id).is_empty());
    let bundle = files_under(&w.path("bundle"));
    let all: String = bundle
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(all.contains("f-1"), "{bundle:?}");
    // --fallback never: blocked, exit 3.
    let run = w.run(
        &["export", file.to_str().unwrap(), "--fallback", "never"],
        &eng_only,
    );
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stdout.contains("Linear setup is blocked"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_read_only_key_is_stopped_at_its_first_write_with_the_scope_code() {
    let w = LinearWorld::new();
    w.setup_saved();
    let file = w.findings_file("f.jsonl", &[finding("f-1", "One")]);
    let ro = [("LINEAR_API_KEY", w.fx.keys.read_only.as_str())];
    let run = w.run(&["export", file.to_str().unwrap(), "--json"], &ro);
    assert_eq!(run.code, 3, "{run:?}");
    let s = run.json();
    assert_eq!(s["tracker"], "linear", "{s}");
    assert_eq!(s["blocked"][0]["code"], "PROVIDER_SCOPE_UNAVAILABLE", "{s}");
    assert_eq!(s["created"], 0, "{s}");
    assert!(w.sim.issues(&w.fx.eng.id).is_empty());
}

#[test]
fn a_killed_linear_export_resumes_without_duplicate_issues() {
    use linear_sim::{Fault, FaultRule};
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};

    const FINDINGS: usize = 100;
    const CONCURRENCY: u32 = 4;
    let w = LinearWorld::new();
    w.sim.set_latency(Duration::from_millis(30));
    w.setup_saved();
    let lines: Vec<String> = (0..FINDINGS)
        .map(|i| finding(&format!("crash-{i:03}"), &format!("Crash {i}")))
        .collect();
    let file = w.findings_file("crash.jsonl", &lines);
    let mut child = w
        .command()
        .args([
            "export",
            file.to_str().unwrap(),
            "--concurrency",
            &CONCURRENCY.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while w.sim.issues(&w.fx.eng.id).len() < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The next creates are applied by Linear (the issue and its attachment) but their
    // answers never come: every worker is then inside a create whose outcome the export
    // has not recorded, the moment a crash is most likely to duplicate.
    w.sim.inject(FaultRule::graphql(
        "issueCreate",
        CONCURRENCY,
        Fault::Delay {
            delay: Duration::from_secs(120),
            after_apply: true,
        },
    ));
    while !w.sim.pending_faults().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        w.sim.pending_faults().is_empty(),
        "the export never reached the stalled creates"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the export must still be running when it is killed"
    );
    child.kill().unwrap(); // SIGKILL: no cleanup runs
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "killed, not exited: {status:?}");
    let issues_at_kill = w.sim.issues(&w.fx.eng.id).len();
    assert!(
        (10..FINDINGS).contains(&issues_at_kill),
        "killed mid-run: {issues_at_kill} of {FINDINGS} issues existed"
    );

    // The journal shows the run was cut short with creates in flight.
    {
        let conn = rusqlite::Connection::open(w.data_dir().join("webriskops.db")).unwrap();
        let unfinished: i64 = conn
            .query_row(
                "SELECT count(*) FROM runs WHERE kind = 'export' AND finished_at IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unfinished, 1, "the killed run never finished");
        let open: i64 = conn
            .query_row(
                "SELECT count(*) FROM intents WHERE outcome IS NULL AND settled_by IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            open >= 1,
            "at least one create was in flight, applied but unrecorded"
        );
    }

    let run = w.run(&["export", file.to_str().unwrap(), "--json"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["duplicates"], serde_json::json!([]), "{run:?}");
    let per = w.attachments_per_finding();
    assert_eq!(per.len(), FINDINGS, "every finding has an issue: {per:?}");
    assert!(per.values().all(|n| *n == 1), "duplicates: {per:?}");
    assert_eq!(
        w.sim.all_issues().len(),
        FINDINGS,
        "no issue without its finding's attachment"
    );
}

// ── choosing the tracker, revoke, secrets ────────────────────────────────────────────

#[test]
fn with_records_of_both_trackers_commands_ask_which_one() {
    let w = LinearWorld::new();
    w.setup_saved();
    // A Trello draft: the choices of a blocked setup (no Trello is asked without a token).
    let draft = w.run(
        &[
            "setup",
            "trello",
            "--board-id",
            "5f0c0c0c0c0c0c0c0c0c0c0c",
            "--save",
        ],
        &[],
    );
    assert_eq!(draft.code, 3, "{draft:?}");
    let both = w.run(&["status"], &[]);
    assert_eq!(both.code, 2, "{both:?}");
    assert!(both.stderr.contains("--tracker trello"), "{}", both.stderr);
    assert!(both.stderr.contains("--tracker linear"), "{}", both.stderr);
    let linear = w.run(&["status", "--tracker", "linear", "--json"], &[]);
    assert_eq!(linear.code, 0, "{linear:?}");
    assert_eq!(linear.json()["record"]["provider_key"], "linear_cloud");
    let trello = w.run(&["status", "--json"], &[("WEBRISKOPS_TRACKER", "trello")]);
    assert_eq!(trello.json()["record"]["provider_key"], "trello_cloud");
    assert_eq!(trello.json()["record_state"], "draft");
    let bad = w.run(&["status"], &[("WEBRISKOPS_TRACKER", "jira")]);
    assert_eq!(bad.code, 2, "{bad:?}");
    let contradicting = w.run(&["--tracker", "trello", "setup", "linear"], &[]);
    assert_eq!(contradicting.code, 2, "{contradicting:?}");
}

#[test]
fn revoke_deletes_the_stored_key_says_where_to_delete_it_in_linear_and_blocks_the_record() {
    let w = LinearWorld::new();
    w.setup_saved();
    let run = w.run(&["revoke", "--yes"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("Settings › Security & access"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Deleted the encrypted local copy"),
        "{}",
        run.stdout
    );
    let status = w.run(&["status", "--json"], &[]);
    assert_eq!(status.code, 3, "{status:?}");
    assert_eq!(status.codes(), ["PROVIDER_AUTH_REQUIRED"]);
    // The key itself still works at Linear (an API key has no revoke API): the record
    // is what is blocked.
    let again = w.setup(&w.fx.keys.full, &["--team-id", &w.fx.eng.id]);
    assert_ne!(again.json()["ready"]["scope"], Value::Bool(false));
}

#[test]
fn a_stored_key_is_never_sent_to_another_api_url() {
    let w = LinearWorld::new();
    w.setup_saved();
    // Another simulator stands in for a URL the key was not saved for.
    let other = linear_sim_url(&w);
    w.sim.clear_request_log();
    let env = [("WEBRISKOPS_LINEAR_API_URL", other.as_str())];
    for args in [&["status"][..], &["sync"][..], &["revoke", "--yes"][..]] {
        let run = w.run(args, &env);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(&other), "{}", run.stderr);
        assert!(run.stderr.contains(&w.api_url), "{}", run.stderr);
        assert!(
            run.stderr.contains("webriskops setup linear --save"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(w.sim.request_count(), 0);
    // Plain http elsewhere than loopback is refused as configuration.
    let run = w.run(
        &["status"],
        &[("WEBRISKOPS_LINEAR_API_URL", "http://linear.example/graphql")],
    );
    assert_eq!(run.code, 2, "{run:?}");
}

/// A loopback URL nothing listens on, distinct from the world's.
fn linear_sim_url(w: &LinearWorld) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/graphql");
    assert_ne!(url, w.api_url);
    url
}

#[test]
fn the_linear_key_appears_in_no_output_and_no_file() {
    let w = LinearWorld::new();
    let key = w.fx.keys.full.clone();
    let env = [("LINEAR_API_KEY", key.as_str()), ("RUST_LOG", "trace")];
    w.setup_saved();
    let file = w.findings_file("f.jsonl", &[finding("f-1", "One"), "{broken".into()]);
    let f = file.to_str().unwrap();
    let keyfile = w.path("key.txt");
    std::fs::write(&keyfile, format!("{key}\n")).unwrap();
    let kf = keyfile.to_str().unwrap();
    w.run(&["setup", "linear"], &env);
    w.run(
        &["setup", "linear", "--token-file", kf, "--team-id", "ENG"],
        &[("RUST_LOG", "trace")],
    );
    w.run(&["status"], &env);
    w.run(&["status", "--json"], &env);
    w.run(&["export", f, "--dry-run"], &env);
    w.run(&["export", f], &env);
    w.run(&["export", f, "--json", "--log-format", "json"], &env);
    w.run(&["export", f, "--fallback", "always", "--out", "b"], &env);
    w.run(&["sync"], &env);
    w.run(&["sync", "--json"], &env);
    w.run(&["revoke", "--yes"], &env);
    w.run(&["status"], &env);
    w.run(&["export", f, "--fallback", "never"], &env);

    let transcript = w.transcript.lock().unwrap().clone();
    assert!(
        transcript.contains("DEBUG") || transcript.contains("TRACE"),
        "logs were on"
    );
    assert!(!transcript.contains(&key), "the key leaked into output");
    let mut files = files_under(&w.data_dir());
    files.extend(files_under(&w.path("b")));
    assert!(files.iter().any(|p| p.ends_with("webriskops.db")));
    for p in files {
        let bytes = std::fs::read(&p).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&key), "{} holds the key", p.display());
    }
}

/// Without `--done-state-id`, setup names the team's first completed state as where closed
/// findings go, saves it in the record, and export moves the issue of a closed finding
/// there: what setup says is what export does.
#[test]
fn without_a_done_state_closed_findings_go_to_the_teams_first_completed_state() {
    let w = LinearWorld::new();
    let run = w.setup(
        &w.fx.keys.full,
        &[
            "--team-id",
            &w.fx.eng.id,
            "--state-id",
            &w.fx.eng.todo,
            "--confirm-revoke-path",
            "--save",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let json = run.json();
    assert_eq!(
        json["record"]["done_list_id"],
        Value::from(w.fx.eng.done.clone()),
        "{json}"
    );
    assert!(
        json["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap_or_default()
            .contains("first completed state")),
        "{json}"
    );
    let open = w.findings_file("open.jsonl", &[finding("f-1", "Open redirect")]);
    assert_eq!(w.run(&["export", open.to_str().unwrap()], &[]).code, 0);
    let closed = serde_json::json!({
        "id": "f-1",
        "title": "Open redirect",
        "severity": "medium",
        "status": "resolved",
    })
    .to_string();
    let closed = w.findings_file("closed.jsonl", &[closed]);
    let run = w.run(&["export", closed.to_str().unwrap(), "--json"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let issues = w.sim.issues(&w.fx.eng.id);
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].state_id, w.fx.eng.done, "{:?}", issues[0]);
    assert!(!issues[0].archived, "moved to Done, not archived");
}
