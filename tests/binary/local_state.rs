//! Configuration and local state: a stray `webriskops.toml` cannot redirect credentials, a
//! record is bound to its API root, state files are private, the master key is never made
//! up, a blocked setup keeps a draft for the fallback, and the bundle says why it exists.

use std::path::Path;

use serde_json::Value;
use trello_sim::{SimConfig, SimServer};

use crate::common::{finding, Run, World};

/// A second Trello simulator standing in for an attacker's host: it answers like Trello
/// and logs every request it receives.
struct Attacker {
    server: Option<SimServer>,
    rt: tokio::runtime::Runtime,
}

impl Attacker {
    fn start() -> Attacker {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(SimServer::start(SimConfig::default())).unwrap();
        server.handle().seed_standard();
        Attacker {
            server: Some(server),
            rt,
        }
    }

    fn root(&self) -> String {
        self.server.as_ref().unwrap().base_url()
    }

    fn requests(&self) -> usize {
        self.server.as_ref().unwrap().handle().request_log().len()
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

/// Runs the binary in the world's directory without any named configuration file and
/// without the API root variable: only what the directory itself holds could apply.
fn run_unconfigured(w: &World, args: &[&str]) -> Run {
    let mut c = w.command();
    c.env_remove("WEBRISKOPS_CONFIG")
        .env_remove("WEBRISKOPS_TRELLO_API_ROOT")
        .args(args);
    let out = c.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn no_secret_in(w: &World, run: &Run) {
    for secret in [&w.fx.tokens.full, &w.fx.api_key] {
        assert!(!run.stdout.contains(secret.as_str()), "{run:?}");
        assert!(!run.stderr.contains(secret.as_str()), "{run:?}");
    }
}

#[test]
fn a_webriskops_toml_in_the_working_directory_sends_nothing_to_its_api_root() {
    let w = World::new();
    w.setup_saved(&w.fx.tokens.full);
    let attacker = Attacker::start();
    std::fs::write(
        w.path("webriskops.toml"),
        format!("[trello]\napi_root = \"{}\"\n", attacker.root()),
    )
    .unwrap();
    let file = w.findings_file("f.jsonl", &[finding("f-1", "One")]);

    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["sync"],
        vec!["export", file.to_str().unwrap(), "--fallback", "never"],
    ] {
        let run = run_unconfigured(&w, &args);
        assert_eq!(
            attacker.requests(),
            0,
            "{args:?} sent requests to the api_root of ./webriskops.toml: {run:?}"
        );
        no_secret_in(&w, &run);
        // The file is not read, so the default root applies, which is not the record's:
        // refused before any request, with both fixes.
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("./webriskops.toml is not read"),
            "{run:?}"
        );
        assert!(
            run.stderr.contains("differs from") && run.stderr.contains(&w.base_url),
            "{run:?}"
        );
    }
}

#[test]
fn an_explicit_config_with_another_api_root_is_refused_before_any_request() {
    let w = World::new();
    w.setup_saved(&w.fx.tokens.full);
    let attacker = Attacker::start();
    let other = w.path("other.toml");
    std::fs::write(
        &other,
        format!("[trello]\napi_root = \"{}\"\n", attacker.root()),
    )
    .unwrap();
    let run = run_unconfigured(&w, &["--config", other.to_str().unwrap(), "status"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(attacker.requests(), 0, "{run:?}");
    no_secret_in(&w, &run);
    let msg = &run.stderr;
    assert!(
        msg.contains(&attacker.root()),
        "names the configured root: {msg}"
    );
    assert!(msg.contains(&w.base_url), "names the record's root: {msg}");
    assert!(msg.contains("trello.api_root"), "names the setting: {msg}");
    assert!(
        msg.contains("webriskops setup trello --save"),
        "says how to move: {msg}"
    );
    assert!(
        msg.contains("unset"),
        "says how to keep the old root: {msg}"
    );

    // The variable is refused the same way.
    let run = w.run(
        &["status"],
        &[("WEBRISKOPS_TRELLO_API_ROOT", &attacker.root())],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("WEBRISKOPS_TRELLO_API_ROOT"), "{run:?}");
    assert_eq!(attacker.requests(), 0);

    // Setup against the other root neither uses nor sends the stored credentials.
    let run = w.run(
        &["setup", "trello", "--json"],
        &[("WEBRISKOPS_TRELLO_API_ROOT", &attacker.root())],
    );
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(attacker.requests(), 0, "{run:?}");
    // (The authorize URL carries the API key of TRELLO_API_KEY by design; the token never.)
    assert!(!run.stdout.contains(&w.fx.tokens.full), "{run:?}");
    assert!(!run.stderr.contains(&w.fx.tokens.full), "{run:?}");
    assert_eq!(
        run.json()["record"]["api_root"],
        Value::from(attacker.root())
    );
    // And the record still works where it belongs.
    assert_eq!(w.run(&["status"], &[]).code, 0);
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn state_files_are_private_and_an_open_data_directory_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    // The data directory exists already, as an operator may have made it.
    let data = w.data_dir();
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = w.run(&["status"], &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("chmod 700 {}", data.display())),
        "{run:?}"
    );
    assert!(!data.join("webriskops.db").exists());

    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    w.setup_saved(&w.fx.tokens.full);
    for name in ["webriskops.db", "webriskops.lock", "master.key"] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    for name in ["webriskops.db-wal", "webriskops.db-shm"] {
        let p = data.join(name);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{name}");
        }
    }
}

#[test]
fn a_missing_master_key_variable_never_creates_a_key_file() {
    let w = World::new();
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let env = [
        ("TRELLO_TOKEN", w.fx.tokens.full.as_str()),
        ("WEBRISKOPS_MASTER_KEY", key),
    ];
    let run = w.run(
        &[
            "setup",
            "trello",
            "--board-id",
            &w.fx.board_id,
            "--list-id",
            &w.fx.list_id,
            "--confirm-revoke-path",
            "--save",
        ],
        &env,
    );
    assert_eq!(run.code, 0, "{run:?}");
    let key_file = w.data_dir().join("master.key");
    assert!(!key_file.exists());

    let run = w.run(&["status"], &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("WEBRISKOPS_MASTER_KEY"), "{run:?}");
    assert!(!key_file.exists(), "no key was made up: {run:?}");
    assert_eq!(
        w.run(&["status"], &[("WEBRISKOPS_MASTER_KEY", key)]).code,
        0
    );
}

#[test]
fn a_blocked_first_setup_keeps_a_draft_that_the_automatic_fallback_uses() {
    let w = World::new();
    let ro = [("TRELLO_TOKEN", w.fx.tokens.read_only.as_str())];
    let setup = w.run(
        &[
            "setup",
            "trello",
            "--board-id",
            &w.fx.board_id,
            "--list-id",
            &w.fx.list_id,
            "--confirm-revoke-path",
            "--save",
            "--json",
        ],
        &ro,
    );
    assert_eq!(setup.code, 3, "{setup:?}");
    let json = setup.json();
    assert_eq!(json["saved"], Value::Bool(false));
    assert_eq!(json["draft_kept"], Value::Bool(true));
    assert_eq!(json["record_state"], "draft");
    assert_eq!(json["record"]["credential"], Value::Null);
    assert!(setup
        .codes()
        .contains(&"PROVIDER_SCOPE_UNAVAILABLE".to_owned()));
    assert!(!setup.stdout.contains(&w.fx.tokens.read_only));

    // No secret of any kind is stored for a draft.
    let db = rusqlite::Connection::open(w.data_dir().join("webriskops.db")).unwrap();
    let secrets: i64 = db
        .query_row("SELECT count(*) FROM secrets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(secrets, 0);
    drop(db);

    let status = w.run(&["status", "--json"], &[]);
    assert_eq!(status.code, 3, "{status:?}");
    let st = status.json();
    assert_eq!(st["record_state"], "draft");
    assert_eq!(
        st["record"]["draft"]["blocked_by"],
        serde_json::json!(["PROVIDER_SCOPE_UNAVAILABLE"])
    );
    let text = w.run(&["status"], &[]);
    assert!(
        text.stdout
            .contains("draft (not saved: blocked by PROVIDER_SCOPE_UNAVAILABLE)"),
        "{text:?}"
    );

    // The automatic fallback knows the destination and applies.
    let file = w.findings_file("f.jsonl", &[finding("f-1", "One")]);
    let export = w.run(
        &[
            "export",
            file.to_str().unwrap(),
            "--out",
            "bundle",
            "--json",
        ],
        &ro,
    );
    assert_eq!(export.code, 3, "{export:?}");
    let ex = export.json();
    assert_eq!(ex["tracker"], "portable", "{ex}");
    assert_eq!(ex["record_state"], "draft");
    assert_eq!(ex["fallback"], "blocked");
    let reasons = ex["fallback_reasons"].to_string();
    assert!(reasons.contains("PROVIDER_SCOPE_UNAVAILABLE"), "{reasons}");
    assert!(!reasons.contains("REVOKE_PATH_UNCONFIRMED"), "{reasons}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(w.path("bundle/manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["provider"]["board_id"],
        Value::from(w.fx.board_id.clone())
    );
    assert_eq!(
        manifest["provider"]["list_id"],
        Value::from(w.fx.list_id.clone())
    );
    assert_eq!(manifest["fallback"], "blocked");
    assert_eq!(w.writes_logged(), 0);

    // A successful setup replaces the draft with the saved record.
    let saved = w.setup_saved(&w.fx.tokens.full).json();
    assert_eq!(saved["record_state"], "saved");
    assert_eq!(saved["record"]["draft"], Value::Null);
    let st = w.run(&["status", "--json"], &[]).json();
    assert_eq!(st["record_state"], "saved");
    assert_eq!(st["record"]["api_root"], Value::from(w.base_url.clone()));

    // A blocked re-run never turns the saved record back into a draft.
    let again = w.run(&["setup", "trello", "--save", "--json"], &ro);
    assert_eq!(again.code, 3, "{again:?}");
    assert_eq!(again.json()["record_state"], "saved");
    assert_eq!(w.run(&["status"], &[]).code, 0);
}

#[test]
fn a_requested_bundle_says_so_in_its_manifest() {
    let w = World::new();
    let file = w.findings_file("f.jsonl", &[finding("f-1", "One")]);
    let run = w.run(
        &[
            "export",
            file.to_str().unwrap(),
            "--fallback",
            "always",
            "--out",
            "asked",
            "--json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["fallback"], "requested");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(w.path("asked/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["fallback"], "requested");
    assert_eq!(manifest["fallback_reasons"], serde_json::json!([]));
}
