//! End-to-end tests: the real `webriskops` binary as a child process against trello-sim.

mod common;
mod conforms;
mod demo_serve;
mod findings_input;
mod linear;
mod linear_oauth;
mod local_state;
mod replicas;
mod serve;

use std::time::{Duration, Instant};

use common::{files_under, finding, World};
use serde_json::Value;

// ── setup ────────────────────────────────────────────────────────────────────────────

#[test]
fn setup_ready_saves_with_the_exact_json_shape_and_status_is_ready() {
    let w = World::new();
    let run = w.setup_saved(&w.fx.tokens.full);
    let json = run.json();
    let ready = json["ready"].as_object().unwrap();
    let mut keys: Vec<&str> = ready.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["board", "cloud_target", "list", "revoke_path", "scope"]
    );
    assert!(ready.values().all(|v| v == &Value::Bool(true)), "{json}");
    assert_eq!(json["blocked"], serde_json::json!([]));
    assert_eq!(json["saved"], Value::Bool(true));
    assert_eq!(
        json["record"]["workspace_id"],
        Value::from(w.fx.org_id.clone())
    );

    // Status re-checks with the stored token (no TRELLO_TOKEN now).
    let status = w.run(&["status", "--json"], &[]);
    assert_eq!(status.code, 0, "{status:?}");
    let s = status.json();
    assert_eq!(s["record"]["board_id"], Value::from(w.fx.board_id.clone()));
    assert_eq!(s["blocked"], serde_json::json!([]));
    assert!(s["last_export"].is_null());
    let human = w.run(&["status"], &[]);
    assert!(human.stdout.contains("Last export: never"), "{human:?}");
}

#[test]
fn setup_without_board_or_list_is_blocked_and_offers_choices() {
    let w = World::new();
    let token = [("TRELLO_TOKEN", w.fx.tokens.full.as_str())];
    let run = w.run(&["setup", "trello", "--json", "--save"], &token);
    assert_eq!(run.code, 3, "{run:?}");
    let codes = run.codes();
    assert!(
        codes.contains(&"DESTINATION_BOARD_REQUIRED".to_owned()),
        "{codes:?}"
    );
    assert!(
        codes.contains(&"DESTINATION_LIST_REQUIRED".to_owned()),
        "{codes:?}"
    );
    assert_eq!(run.json()["saved"], Value::Bool(false));
    let boards = run.json()["boards"].to_string();
    assert!(boards.contains(&w.fx.board_id), "{boards}");

    let run = w.run(
        &[
            "setup",
            "trello",
            "--board-id",
            &w.fx.board_id,
            "--confirm-revoke-path",
        ],
        &token,
    );
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stdout.contains("DESTINATION_LIST_REQUIRED (list_id)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&w.fx.list_id),
        "lists offered: {}",
        run.stdout
    );
    // Nothing was saved: status still says not set up.
    let status = w.run(&["status"], &[]);
    assert_eq!(status.code, 3);
    assert!(status.stdout.contains("not set up"), "{status:?}");
}

#[test]
fn base_url_is_reported_as_deployment_unsupported_not_a_usage_error() {
    let w = World::new();
    let run = w.run(
        &[
            "setup",
            "trello",
            "--json",
            "--base-url",
            "https://trello.example.internal",
            "--board-id",
            &w.fx.board_id,
            "--list-id",
            &w.fx.list_id,
            "--confirm-revoke-path",
        ],
        &[("TRELLO_TOKEN", w.fx.tokens.full.as_str())],
    );
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(run.codes(), ["PROVIDER_DEPLOYMENT_UNSUPPORTED"]);
    assert_eq!(run.json()["ready"]["cloud_target"], Value::Bool(false));
}

#[test]
fn read_only_and_expired_tokens_are_blocked_with_their_codes() {
    let w = World::new();
    let args = |save: bool| {
        let mut a = vec![
            "setup",
            "trello",
            "--json",
            "--board-id",
            &w.fx.board_id,
            "--list-id",
            &w.fx.list_id,
            "--confirm-revoke-path",
        ];
        if save {
            a.push("--save");
        }
        a
    };
    let ro = w.run(
        &args(true),
        &[("TRELLO_TOKEN", w.fx.tokens.read_only.as_str())],
    );
    assert_eq!(ro.code, 3, "{ro:?}");
    assert!(ro
        .codes()
        .contains(&"PROVIDER_SCOPE_UNAVAILABLE".to_owned()));
    assert_eq!(ro.json()["saved"], Value::Bool(false));

    let expired = w.run(
        &args(false),
        &[("TRELLO_TOKEN", w.fx.tokens.expired.as_str())],
    );
    assert_eq!(expired.code, 3, "{expired:?}");
    assert!(expired
        .codes()
        .contains(&"PROVIDER_AUTH_REQUIRED".to_owned()));
}

#[test]
fn without_a_token_setup_prints_the_least_privilege_authorize_url() {
    let w = World::new();
    let run = w.run(&["setup", "trello"], &[]);
    assert_eq!(run.code, 3, "{run:?}");
    let url = run
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("https://trello.com/1/authorize?"))
        .unwrap_or_else(|| panic!("no authorize URL in {}", run.stdout));
    for part in [
        "scope=read,write",
        "expiration=30days",
        "name=WebRiskOps",
        "response_type=token",
    ] {
        assert!(url.contains(part), "{url} lacks {part}");
    }
    assert!(url.contains(&format!("key={}", w.fx.api_key)), "{url}");
    assert!(run.stdout.contains("TRELLO_TOKEN"), "{}", run.stdout);
    assert!(
        run.stdout.contains("PROVIDER_AUTH_REQUIRED"),
        "{}",
        run.stdout
    );
}

// ── export ───────────────────────────────────────────────────────────────────────────

#[test]
fn export_creates_cards_dry_run_and_re_export_write_nothing() {
    let w = World::new();
    w.setup_saved(&w.fx.tokens.full);
    let lines: Vec<String> = (1..=5)
        .map(|i| finding(&format!("f-{i}"), &format!("Finding {i}")))
        .collect();
    let file = w.findings_file("f.jsonl", &lines);
    let file = file.to_str().unwrap();

    w.sim.clear_request_log();
    let dry = w.run(&["export", file, "--dry-run", "--json"], &[]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert_eq!(dry.json()["created"], Value::from(5));
    assert_eq!(dry.json()["dry_run"], Value::Bool(true));
    assert_eq!(
        w.writes_logged(),
        0,
        "a dry run wrote: {:?}",
        w.sim.request_log()
    );
    assert!(w.sim.cards(&w.fx.board_id).is_empty());

    let first = w.run(&["export", file, "--json"], &[]);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(first.json()["created"], Value::from(5));
    assert_eq!(w.cards_per_finding().len(), 5);
    assert!(first.json()["requests"]["429s"].is_u64());

    w.sim.clear_request_log();
    let again = w.run(&["export", file, "--json"], &[]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.json()["unchanged"], Value::from(5));
    assert_eq!(again.json()["requests"]["writes"], Value::from(0));
    assert_eq!(
        w.writes_logged(),
        0,
        "re-export wrote: {:?}",
        w.sim.request_log()
    );
    // One readiness check (the token and one `/batch`, whose labels and members the
    // export reuses) and the listing, one page of 5 cards (ADR 0006 §8): labels or
    // members read again, or a second readiness check, would show here.
    let log = w.sim.request_log();
    let mut requests: Vec<(String, String)> = log
        .iter()
        .map(|r| (r.method.clone(), r.route.clone()))
        .collect();
    requests.sort();
    let expected = [
        ("GET", "/1/batch"),
        ("GET", "/1/boards/{id}/cards"),
        ("GET", "/1/tokens/{token}"),
    ]
    .map(|(m, r)| (m.to_owned(), r.to_owned()));
    assert_eq!(requests, expected, "the requests of an unchanged re-export");
    assert!(
        !log.iter()
            .any(|r| r.path.contains("/labels") || r.path.contains("/members")),
        "labels and members come from the readiness batch: {log:?}"
    );
    assert_eq!(
        again.json()["requests"]["reads"],
        Value::from(log.len() as u64)
    );

    let status = w.run(&["status", "--json"], &[]);
    assert_eq!(
        status.json()["last_export"]["summary"]["unchanged"],
        Value::from(5)
    );
}

#[test]
fn invalid_findings_are_reported_by_file_line_and_field_and_the_rest_export() {
    let w = World::new();
    w.setup_saved(&w.fx.tokens.full);
    let bad =
        serde_json::json!({"id": "f-bad", "title": "x", "severity": "loud", "status": "open"});
    let lines = vec![
        finding("f-1", "One"),
        bad.to_string(),
        "{not json".into(),
        finding("f-2", "Two"),
    ];
    let file = w.findings_file("mixed.jsonl", &lines);
    let run = w.run(&["export", file.to_str().unwrap()], &[]);
    assert_eq!(run.code, 4, "{run:?}");
    let prefix = format!("{}:2: field `severity`:", file.display());
    assert!(run.stderr.contains(&prefix), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("{}:3: ", file.display())),
        "{}",
        run.stderr
    );
    assert_eq!(w.cards_per_finding().len(), 2);
}

#[test]
fn fallback_always_writes_the_portable_bundle_without_setup() {
    let w = World::new();
    let file = w.findings_file("f.jsonl", &[finding("f-1", "One"), finding("f-2", "Two")]);
    let run = w.run(
        &[
            "export",
            file.to_str().unwrap(),
            "--fallback",
            "always",
            "--out",
            "bundle",
            "--json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["tracker"], Value::from("portable"));
    assert_eq!(run.json()["created"], Value::from(2));
    assert!(w.path("bundle/manifest.json").is_file());
    assert!(w.path("bundle/cards.json").is_file());
    assert_eq!(w.writes_logged(), 0);
}

#[test]
fn auto_fallback_with_a_read_only_token_writes_the_bundle_and_still_reports_blocked() {
    let w = World::new();
    w.setup_saved(&w.fx.tokens.full);
    let file = w.findings_file("f.jsonl", &[finding("f-1", "One")]);
    let ro = [("TRELLO_TOKEN", w.fx.tokens.read_only.as_str())];
    let run = w.run(&["export", file.to_str().unwrap(), "--json"], &ro);
    assert_eq!(
        run.code, 3,
        "the bundle is written but setup stays blocked: {run:?}"
    );
    let json = run.json();
    assert_eq!(json["tracker"], Value::from("portable"));
    assert!(
        json["fallback_reasons"]
            .to_string()
            .contains("PROVIDER_SCOPE_UNAVAILABLE"),
        "{json}"
    );
    assert!(w.path("webriskops-export/manifest.json").is_file());
    assert!(w.sim.cards(&w.fx.board_id).is_empty());

    let never = w.run(
        &[
            "export",
            file.to_str().unwrap(),
            "--fallback",
            "never",
            "--json",
        ],
        &ro,
    );
    assert_eq!(never.code, 3, "{never:?}");
    assert!(never
        .codes()
        .contains(&"PROVIDER_SCOPE_UNAVAILABLE".to_owned()));
}

#[test]
fn ten_thousand_findings_stream_through_a_dry_run() {
    let w = World::new();
    w.setup_saved(&w.fx.tokens.full);
    let lines: Vec<String> = (0..10_000)
        .map(|i| finding(&format!("big-{i}"), "Bulk finding"))
        .collect();
    let file = w.findings_file("big.jsonl", &lines);
    let run = w.run(
        &["export", file.to_str().unwrap(), "--dry-run", "--json"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["created"], Value::from(10_000));
    assert_eq!(json["invalid_count"], Value::from(0));
    assert_eq!(json["requests"]["writes"], Value::from(0));
    assert_eq!(w.writes_logged(), 0);
}

#[test]
fn a_killed_export_resumes_without_duplicates() {
    use std::os::unix::process::ExitStatusExt;
    use trello_sim::{Fault, FaultRule};

    const FINDINGS: usize = 200;
    const CONCURRENCY: u32 = 4;
    let w = World::with_latency(Duration::from_millis(30));
    w.setup_saved(&w.fx.tokens.full);
    let lines: Vec<String> = (0..FINDINGS)
        .map(|i| finding(&format!("crash-{i:03}"), &format!("Crash {i}")))
        .collect();
    let file = w.findings_file("crash.jsonl", &lines);
    let mut child = w
        .command()
        .args(["export", file.to_str().unwrap(), "--concurrency", "4"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while w.sim.cards(&w.fx.board_id).len() < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The next writes are applied by Trello but their answers never come: every worker
    // is then inside a write whose outcome the export has not recorded, which is the
    // moment a crash is most likely to duplicate.
    w.sim.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
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
        "the export never reached the stalled writes"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the export must still be running when it is killed"
    );
    child.kill().unwrap(); // SIGKILL: no cleanup runs
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "killed, not exited: {status:?}");
    let cards_at_kill = w.sim.cards(&w.fx.board_id).len();
    assert!(
        (10..FINDINGS).contains(&cards_at_kill),
        "killed mid-run: {cards_at_kill} of {FINDINGS} cards existed"
    );

    // The journal shows the run was cut short with writes in flight.
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
            "at least one write was in flight, applied but unrecorded"
        );
    }

    let run = w.run(&["export", file.to_str().unwrap(), "--json"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["duplicates"], serde_json::json!([]));
    let per = w.cards_per_finding();
    assert_eq!(per.len(), FINDINGS, "every finding has a card");
    assert!(per.values().all(|n| *n == 1), "duplicates: {per:?}");
}

/// The same crash during a grouped export (ADR 0006): 200 findings of 5 rules share
/// their steps, so their cards are copies of 5 templates. The killed run is shown to
/// have been copying (archived templates, `POST /1/cards` with `idCardSource` in the
/// simulator's log). After a `kill -9` with copies in flight and a re-run that finds the
/// same templates again (none made or deleted, every create a copy), every finding has
/// one card with its full checklist, and no template is open on the list.
#[test]
fn a_killed_grouped_export_resumes_with_full_checklists() {
    use std::os::unix::process::ExitStatusExt;
    use trello_sim::{Fault, FaultRule};

    const FINDINGS: usize = 200;
    const CONCURRENCY: u32 = 4;
    let w = World::with_latency(Duration::from_millis(30));
    w.setup_saved(&w.fx.tokens.full);
    let steps = |i: usize| -> Vec<String> {
        let rule = i % 5;
        (1..=2 + rule)
            .map(|s| format!("rule {rule}: step {s}"))
            .collect()
    };
    let lines: Vec<String> = (0..FINDINGS)
        .map(|i| {
            serde_json::json!({
                "id": format!("grp-{i:03}"),
                "title": format!("Rule {} on asset {i}", i % 5),
                "severity": "medium",
                "status": "open",
                "remediation_steps": steps(i),
            })
            .to_string()
        })
        .collect();
    let file = w.findings_file("grouped.jsonl", &lines);
    let mut child = w
        .command()
        .args(["export", file.to_str().unwrap(), "--concurrency", "4"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Five templates, then at least ten copies.
    while w.sim.cards(&w.fx.board_id).len() < 15 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    w.sim.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
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
        "the export never reached the stalled copies"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the export must still be running when it is killed"
    );
    child.kill().unwrap(); // SIGKILL: no cleanup runs
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "killed, not exited: {status:?}");
    let at_kill = w.cards_per_finding().len();
    assert!(
        (10..FINDINGS).contains(&at_kill),
        "killed mid-run: {at_kill} of {FINDINGS} cards existed"
    );
    // The killed run was copying: its five templates were made and archived before any
    // card, and the cards it created came from `POST /1/cards` with `idCardSource`.
    let templates = |w: &World| -> Vec<(String, bool)> {
        let mut t: Vec<(String, bool)> = w
            .sim
            .cards(&w.fx.board_id)
            .into_iter()
            .filter(|c| c.desc.contains("[webriskops:template:"))
            .map(|c| (c.id, c.closed))
            .collect();
        t.sort();
        t
    };
    let templates_at_kill = templates(&w);
    assert_eq!(templates_at_kill.len(), 5, "{templates_at_kill:?}");
    assert!(
        templates_at_kill.iter().all(|(_, closed)| *closed),
        "templates are archived: {templates_at_kill:?}"
    );
    let is_copy = |params: &[String]| params.iter().any(|p| p == "idCardSource");
    let copies_before_kill = w
        .sim
        .request_log_with_params()
        .iter()
        .filter(|(r, _)| r.method == "POST" && r.route == "/1/cards" && r.status == 200)
        .filter(|(_, p)| is_copy(p))
        .count();
    assert!(
        copies_before_kill >= 10,
        "the killed run copied its cards: {copies_before_kill} copies answered"
    );

    w.sim.clear_request_log();
    let run = w.run(&["export", file.to_str().unwrap(), "--json"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["duplicates"], serde_json::json!([]));
    // The re-run finds the templates again and only copies: no template is made or
    // deleted, and every card it creates is a copy. (Requests of the killed run that
    // the simulator logs when it notices the hang-up carry status 0.)
    let summary = run.json();
    assert_eq!(
        (
            &summary["step_templates"]["created"],
            &summary["step_templates"]["deleted"]
        ),
        (&Value::from(0), &Value::from(0)),
        "{summary}"
    );
    assert_eq!(
        summary["step_templates"]["copied"],
        Value::from((FINDINGS - at_kill) as u64),
        "every missing card is a copy"
    );
    let rerun = w.sim.request_log_with_params();
    let rerun: Vec<_> = rerun.iter().filter(|(r, _)| r.status != 0).collect();
    assert!(
        !rerun.iter().any(|(r, _)| r.method == "DELETE"),
        "nothing is deleted: {rerun:?}"
    );
    let creates: Vec<_> = rerun
        .iter()
        .filter(|(r, _)| r.method == "POST" && r.route == "/1/cards")
        .collect();
    assert!(!creates.is_empty());
    assert!(
        creates.iter().all(|(_, p)| is_copy(p)),
        "every create of the re-run is a copy, none a template: {creates:?}"
    );
    assert_eq!(templates(&w), templates_at_kill, "the same templates, kept");
    let per = w.cards_per_finding();
    assert_eq!(per.len(), FINDINGS, "every finding has a card");
    assert!(per.values().all(|n| *n == 1), "duplicates: {per:?}");
    for c in w.sim.cards(&w.fx.board_id) {
        if c.desc.contains("[webriskops:template:") {
            assert!(c.closed, "a template is open on the list: {}", c.name);
            continue;
        }
        let Some(at) = c.desc.find("[webriskops:finding:grp-") else {
            continue;
        };
        let i: usize = c.desc[at + "[webriskops:finding:grp-".len()..][..3]
            .parse()
            .unwrap();
        assert_eq!(c.checklists.len(), 1, "{}: one checklist", c.name);
        let got: Vec<&str> = c.checklists[0]
            .items
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(got, steps(i), "{}: its full checklist", c.name);
        assert!(c.checklists[0].items.iter().all(|i| !i.complete));
    }
}

/// A lost database (ADR 0006 §5): after a grouped export the data directory is deleted.
/// Set up again, the same file writes nothing: the cards are found by their markers and
/// the templates by the listing, and every template is kept as it is.
#[test]
fn a_lost_database_re_exports_a_grouped_file_without_a_write() {
    let w = World::new();
    w.setup_saved(&w.fx.tokens.full);
    let lines: Vec<String> = (0..12)
        .map(|i| {
            let rule = i % 3;
            serde_json::json!({
                "id": format!("lost-{i:02}"),
                "title": format!("Rule {rule} on asset {i}"),
                "severity": "medium",
                "status": "open",
                "remediation_steps": (1..=2 + rule).map(|s| format!("rule {rule}: step {s}")).collect::<Vec<_>>(),
            })
            .to_string()
        })
        .collect();
    let file = w.findings_file("grouped.jsonl", &lines);
    let file = file.to_str().unwrap();
    let templates = |w: &World| -> Vec<String> {
        let mut t: Vec<String> = w
            .sim
            .cards(&w.fx.board_id)
            .into_iter()
            .filter(|c| c.desc.contains("[webriskops:template:"))
            .map(|c| c.id)
            .collect();
        t.sort();
        t
    };
    let first = w.run(&["export", file, "--json"], &[]);
    assert_eq!(first.code, 0, "{first:?}");
    let json = first.json();
    assert_eq!(
        (
            &json["created"],
            &json["step_templates"]["created"],
            &json["step_templates"]["copied"]
        ),
        (&Value::from(12), &Value::from(3), &Value::from(12)),
        "{json}"
    );
    let before = templates(&w);
    assert_eq!(before.len(), 3);

    std::fs::remove_dir_all(w.data_dir()).unwrap();
    let status = w.run(&["status"], &[]);
    assert!(
        status.stdout.contains("not set up"),
        "the database is gone: {status:?}"
    );
    w.setup_saved(&w.fx.tokens.full);
    w.sim.clear_request_log();
    let again = w.run(&["export", file, "--json"], &[]);
    assert_eq!(again.code, 0, "{again:?}");
    let json = again.json();
    assert_eq!(
        (&json["created"], &json["unchanged"]),
        (&Value::from(0), &Value::from(12)),
        "{json}"
    );
    assert_eq!(
        json["step_templates"],
        serde_json::json!({"created": 0, "deleted": 0, "copied": 0}),
        "the templates are found again, none made or deleted"
    );
    assert_eq!(json["requests"]["writes"], Value::from(0));
    assert_eq!(
        w.writes_logged(),
        0,
        "a lost database costs no write: {:?}",
        w.sim.request_log()
    );
    assert_eq!(templates(&w), before, "the same templates, kept");
    assert_eq!(w.cards_per_finding().len(), 12);
    assert!(w.cards_per_finding().values().all(|n| *n == 1));
}

// ── sync and revoke ──────────────────────────────────────────────────────────────────

#[test]
fn sync_reports_a_card_a_person_finished_once() {
    let w = World::new();
    w.setup_saved(&w.fx.tokens.full);
    let file = w.findings_file("f.jsonl", &[finding("f-1", "One"), finding("f-2", "Two")]);
    assert_eq!(w.run(&["export", file.to_str().unwrap()], &[]).code, 0);
    let first = w.run(&["sync"], &[]);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(first.stdout, "", "nothing changed yet");

    let card = w
        .sim
        .cards(&w.fx.board_id)
        .into_iter()
        .find(|c| c.desc.contains("[webriskops:finding:f-2]"))
        .unwrap();
    w.sim.person_move_card(&card.id, &w.fx.done_list_id);
    let run = w.run(&["sync", "--json"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let events: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{}", run.stdout);
    let e = events[0].as_object().unwrap();
    let mut keys: Vec<&str> = e.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "finding_id",
            "item_id",
            "item_url",
            "observed_at",
            "previous",
            "tracker",
            "tracker_status"
        ]
    );
    assert_eq!(e["finding_id"], "f-2");
    assert_eq!(e["tracker_status"], "done");
    assert_eq!(e["previous"], "open");
    let summary: Value = serde_json::from_str(run.stderr.trim()).unwrap();
    assert_eq!(summary["events"], Value::from(1));

    let again = w.run(&["sync"], &[]);
    assert_eq!(again.code, 0);
    assert_eq!(again.stdout, "", "a change is reported once");
}

#[test]
fn revoke_needs_confirmation_then_revokes_at_trello_and_blocks_the_record() {
    let w = World::new();
    w.setup_saved(&w.fx.tokens.revocable);
    let refused = w.run(&["revoke"], &[]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert!(!w.sim.token_revoked(&w.fx.tokens.revocable));

    let run = w.run(&["revoke", "--yes"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("Revoked the token at Trello"),
        "{}",
        run.stdout
    );
    assert!(w.sim.token_revoked(&w.fx.tokens.revocable));

    let status = w.run(&["status", "--json"], &[]);
    assert_eq!(status.code, 3, "{status:?}");
    assert!(status
        .codes()
        .contains(&"PROVIDER_AUTH_REQUIRED".to_owned()));
    assert!(status.json()["record"]["credential"].is_null());
}

#[test]
fn the_demo_runs_to_the_end() {
    let w = World::new();
    let run = w.run(
        &["demo", "--data-dir", w.path("demo").to_str().unwrap()],
        &[],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("Write requests Trello received during this export: 0."),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\"tracker_status\":\"done\""),
        "{}",
        run.stdout
    );

    // Then the same walk for Linear, against its own simulator and data directory.
    for heading in [
        "═══ Part 1 of 2: Trello",
        "═══ Part 2 of 2: Linear",
        "── Linear step 1: setup without a team",
        "── Linear step 7: integration status",
    ] {
        assert!(
            run.stdout.contains(heading),
            "no {heading:?}: {}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("Teams this key can see"),
        "the blocked Linear setup lists the teams: {}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("Exported sample-findings.json → Linear"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("     - [ ] "),
        "the steps are shown as a task list: {}",
        run.stdout
    );
    let events: Vec<Value> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |tracker: &str| -> Vec<&Value> {
        events.iter().filter(|e| e["tracker"] == tracker).collect()
    };
    assert_eq!(of("trello").len(), 1, "{events:?}");
    let linear = of("linear");
    assert_eq!(linear.len(), 1, "one canceled event, once: {events:?}");
    assert_eq!(linear[0]["finding_id"], "wro-f-0002");
    assert_eq!(linear[0]["tracker_status"], "canceled");
    assert!(
        run.stdout
            .contains("Mutations Linear received during this export: 0."),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Linear: team "),
        "the Linear status ran: {}",
        run.stdout
    );
    for tracker in ["trello", "linear"] {
        let db = w.path("demo").join(tracker).join("webriskops.db");
        assert!(db.is_file(), "{} is missing", db.display());
    }
}

// ── secrets ──────────────────────────────────────────────────────────────────────────

#[test]
fn the_token_and_key_appear_in_no_output_and_no_file() {
    let w = World::new();
    let token = w.fx.tokens.revocable.clone();
    let key = w.fx.api_key.clone();
    let env = [("TRELLO_TOKEN", token.as_str()), ("RUST_LOG", "trace")];
    w.setup_saved(&token);
    let file = w.findings_file("f.jsonl", &[finding("f-1", "One"), "{broken".into()]);
    let f = file.to_str().unwrap();
    w.run(&["setup", "trello", "--board-id", &w.fx.board_id], &env);
    w.run(&["status"], &env);
    w.run(&["status", "--json"], &env);
    w.run(&["export", f, "--dry-run"], &env);
    w.run(&["export", f], &env);
    w.run(&["export", f, "--json", "--log-format", "json"], &env);
    w.run(&["export", f, "--fallback", "always", "--out", "b"], &env);
    w.run(&["sync"], &env);
    w.run(&["sync", "--json"], &env);
    w.run(&["export", "missing.json"], &env);
    w.run(&["revoke", "--yes"], &env);
    w.run(&["status"], &env);
    w.run(&["export", f, "--fallback", "never"], &env);

    let transcript = w.transcript.lock().unwrap().clone();
    assert!(
        transcript.contains("DEBUG") || transcript.contains("TRACE"),
        "logs were on"
    );
    assert!(!transcript.contains(&token), "the token leaked into output");
    assert!(!transcript.contains(&key), "the key leaked into output");
    let mut files = files_under(&w.data_dir());
    files.extend(files_under(&w.path("b")));
    assert!(files.iter().any(|p| p.ends_with("webriskops.db")));
    for p in files {
        let bytes = std::fs::read(&p).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&token), "{} holds the token", p.display());
        assert!(!text.contains(&key), "{} holds the key", p.display());
    }
}

#[test]
fn a_wrong_master_key_or_tampered_secret_is_a_clear_error() {
    let w = World::new();
    let k1 = "a".repeat(64);
    let k2 = "b".repeat(64);
    let mut setup_env = vec![("TRELLO_TOKEN", w.fx.tokens.full.as_str())];
    setup_env.push(("WEBRISKOPS_MASTER_KEY", &k1));
    let saved = w.run(
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
        &setup_env,
    );
    assert_eq!(saved.code, 0, "{saved:?}");
    assert!(
        !w.data_dir().join("master.key").exists(),
        "the env key was used"
    );
    assert_eq!(
        w.run(&["status"], &[("WEBRISKOPS_MASTER_KEY", &k1)]).code,
        0
    );

    let wrong = w.run(&["status"], &[("WEBRISKOPS_MASTER_KEY", &k2)]);
    assert_eq!(wrong.code, 1, "{wrong:?}");
    assert!(
        wrong.stderr.contains("WEBRISKOPS_MASTER_KEY"),
        "{}",
        wrong.stderr
    );

    let malformed = w.run(&["status"], &[("WEBRISKOPS_MASTER_KEY", "not-a-key")]);
    assert_eq!(malformed.code, 1, "{malformed:?}");
    assert!(
        malformed.stderr.contains("not a valid master key"),
        "{}",
        malformed.stderr
    );

    let conn = rusqlite::Connection::open(w.data_dir().join("webriskops.db")).unwrap();
    conn.execute(
        "UPDATE secrets SET ciphertext = zeroblob(length(ciphertext))",
        [],
    )
    .unwrap();
    drop(conn);
    let tampered = w.run(&["status"], &[("WEBRISKOPS_MASTER_KEY", &k1)]);
    assert_eq!(tampered.code, 1, "{tampered:?}");
    assert!(
        tampered.stderr.contains("cannot be decrypted"),
        "{}",
        tampered.stderr
    );
}

// ── bad input ────────────────────────────────────────────────────────────────────────

#[test]
fn usage_errors_exit_2_with_a_message() {
    let w = World::new();
    let unknown = w.run(&["export", "--frobnicate"], &[]);
    assert_eq!(unknown.code, 2, "{unknown:?}");
    let missing = w.run(&["--config", "nope.toml", "status"], &[]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(
        missing.stderr.contains("nope.toml does not exist"),
        "{}",
        missing.stderr
    );
    let help = w.run(&["export", "--help"], &[]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Examples"), "{}", help.stdout);
}

#[test]
fn a_corrupt_database_is_a_clear_error_naming_the_fix() {
    let w = World::new();
    std::fs::create_dir_all(w.data_dir()).unwrap();
    std::fs::write(w.data_dir().join("webriskops.db"), vec![0x5a; 8192]).unwrap();
    let run = w.run(&["status"], &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("corrupt"), "{}", run.stderr);
    assert!(run.stderr.contains("move it aside"), "{}", run.stderr);
}

#[test]
fn a_locked_data_directory_is_a_clear_error() {
    let w = World::new();
    let _held = webriskops_store_sqlite::SqliteStore::open(
        &w.data_dir(),
        webriskops_store_sqlite::StoreOptions::default(),
    )
    .unwrap();
    let run = w.run(&["status"], &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("another webriskops process"),
        "{}",
        run.stderr
    );
}

#[test]
fn without_a_terminal_progress_is_plain_lines_on_stderr_and_stdout_stays_clean() {
    let w = World::new();
    w.setup_saved(&w.fx.tokens.full);
    // Plain lines start at 100 writes: shorter runs finish before a line would help.
    let lines: Vec<String> = (1..=120)
        .map(|i| finding(&format!("p-{i}"), &format!("Progress {i}")))
        .collect();
    let file = w.findings_file("p.jsonl", &lines);
    let run = w.run(&["export", file.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("export: applying: 0/120"),
        "plain progress on stderr: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("export: applying: 120/120 (100%)"),
        "progress reaches the end: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains('\r') && !run.stderr.contains("\u{1b}["),
        "no bar drawing when not a terminal: {:?}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("export: applying"),
        "progress stays off stdout"
    );
}

#[test]
fn every_command_help_has_examples() {
    let w = World::new();
    for cmd in [
        &["setup", "trello"][..],
        &["status"],
        &["export"],
        &["sync"],
        &["revoke"],
        &["demo"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let help = w.run(&args, &[]);
        assert_eq!(help.code, 0, "{cmd:?}: {help:?}");
        assert!(
            help.stdout.contains("Examples"),
            "{cmd:?} --help has no examples: {}",
            help.stdout
        );
    }
}
