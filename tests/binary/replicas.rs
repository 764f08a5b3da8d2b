//! Several `webriskops serve --database-url …` replicas on one PostgreSQL database (each
//! test has a database of its own, `webriskops_pg_testing`): what one replica wrote,
//! every other one serves, because sessions, held tokens, records and export jobs live
//! in the database, not in a replica's memory or data directory.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::serve::{
    findings, trello_oauth1_allowed, Resp, Server, Sims, APP_SECRET, PASSWORD, PATIENCE,
};

/// `/readyz` of `srv`.
fn readyz(srv: &Server) -> Resp {
    srv.send(srv.request(Method::GET, "/readyz"))
}

/// Polls `/readyz` until it answers `status` (bounded by [`PATIENCE`]).
#[track_caller]
fn readyz_becomes(srv: &Server, status: u16) -> Resp {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = readyz(srv);
        if r.status == status {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never answered {status}: {} {}",
            r.status,
            r.text
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `n` `serve` replicas on the database of `s`, each with a data directory of its own
/// (`data-a`, `data-b`, …) and `env` besides.
fn start_replicas(s: &Sims, n: usize, env: &[(&str, &str)]) -> Vec<Server> {
    (0..n)
        .map(|i| {
            let name = format!("data-{}", char::from(b'a' + u8::try_from(i).unwrap()));
            let dir = s.dir.path().join(name).to_str().unwrap().to_owned();
            let mut env = env.to_vec();
            env.push(("WEBRISKOPS_DATA_DIR", &dir));
            s.serve(&[], &env)
        })
        .collect()
}

#[test]
fn two_replicas_on_one_database_serve_each_others_sessions_setups_and_exports() {
    let s = Sims::new();
    let db = s.rt.block_on(webriskops_pg_testing::test_database());
    let s = s.on_database(&db.url);

    // `migrate` says what it applied, and that nothing is left on a second run.
    let first = s.cli(&["migrate"]);
    assert!(
        first
            .stdout
            .contains("Applied PostgreSQL migration(s) 1, 2, 3, 4, 5, 6, 7"),
        "{first:?}"
    );
    let again = s.cli(&["migrate"]);
    assert!(
        again.stdout.contains("no migration was pending"),
        "{again:?}"
    );

    // Accounts are created once, through the CLI, in the shared database.
    let t = s.tenant("acme");
    s.user("acme", "ann@acme.example", "admin");

    // Two replicas with data directories of their own (nothing shared but the database).
    let mut a = s.serve(&[], &[]);
    let b_dir = s.dir.path().join("data-b");
    let mut b = s.serve(&[], &[("WEBRISKOPS_DATA_DIR", b_dir.to_str().unwrap())]);
    for srv in [&a, &b] {
        let r = readyz(srv);
        r.expect(200);
        assert_eq!(r.json()["status"], "ready", "{}", r.text);
    }

    // A session started on A is a session on B.
    let login = a.login("ann@acme.example", PASSWORD);
    assert_eq!(login.status, 303, "{}", login.text);
    let cookie = login.header("set-cookie");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let on_b = b.send(
        b.request(Method::GET, "/api/v1/integration")
            .header("cookie", &cookie),
    );
    on_b.expect(200);
    assert!(
        on_b.json()["integrations"]["trello"].is_object(),
        "{}",
        on_b.text
    );
    let without = b.send(b.request(Method::GET, "/api/v1/integration"));
    without.expect(401);

    // A token held on A, choices set on B, saved on A: the setup is saved on B.
    a.post(
        "/api/v1/integration/trello/token",
        &t.admin,
        json!({"token": s.tfx.tokens.full}),
    )
    .expect(200);
    let r = b.put(
        "/api/v1/integration/trello",
        &t.admin,
        json!({
            "board_id": s.tfx.board_id,
            "list_id": s.tfx.list_id,
            "done_list_id": s.tfx.done_list_id,
            "confirm_revoke_path": true,
        }),
    );
    r.expect(200);
    assert_eq!(
        r.json()["blocked"],
        json!([]),
        "B used the token A holds: {}",
        r.text
    );
    let r = a.post_empty("/api/v1/integration/trello/save", &t.admin);
    r.expect(200);
    assert_eq!(r.json()["saved"], json!(true), "{}", r.text);
    let status = b.status(&t.admin, "trello");
    assert_eq!(status["record_state"], "saved", "{status}");
    assert_eq!(status["ready_to_export"], json!(true), "{status}");

    // An export posted to A is read, to its end, on B.
    let id = a.export(&t.admin, "", &findings("rep", 4));
    let job = b.wait_export(&t.admin, &id);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["summary"]["created"], json!(4), "{job}");
    let listed = b.get("/api/v1/exports", &t.admin);
    listed.expect(200);
    assert!(listed.text.contains(&id), "{}", listed.text);
    let per = s.cards_per_finding();
    assert_eq!(per.len(), 4, "{per:?}");
    assert!(per.values().all(|n| *n == 1), "{per:?}");

    // The database goes away: both replicas stop being ready, and say why.
    drop(db);
    for srv in [&a, &b] {
        let r = readyz_becomes(srv, 503);
        let v: Value = r.json();
        assert_eq!(v["status"], "unavailable", "{}", r.text);
        assert!(
            !v["reason"].as_str().unwrap_or_default().is_empty(),
            "{}",
            r.text
        );
        // Alive all the same.
        let h = srv.send(srv.request(Method::GET, "/healthz"));
        h.expect(200);
    }
    a.stop_ok();
    b.stop_ok();
}

#[test]
fn postgres_needs_the_master_key_and_the_tracker_commands_refuse_it() {
    let s = Sims::new().on_database("postgres://webriskops@127.0.0.1:1/none");
    let out = s
        .command()
        .env_remove("WEBRISKOPS_MASTER_KEY")
        .args(["tenant", "add", "acme"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("WEBRISKOPS_MASTER_KEY"), "{stderr}");

    let file = s.dir.path().join("f.jsonl");
    std::fs::write(&file, findings("x", 1).join("\n")).unwrap();
    let out = s
        .command()
        .args(["export", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("data directory"), "{stderr}");
    assert!(
        !s.data_dir().join("webriskops.db").exists(),
        "nothing was written to SQLite instead"
    );

    let out = s
        .command()
        .env("WEBRISKOPS_DATABASE_URL", "mysql://db/x")
        .args(["serve"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("postgres://"), "{stderr}");
}

/// A replica that starts while another runs an export leaves that export to it: the job is
/// held under the other replica's lease, which it renews.
#[test]
fn a_replica_starting_leaves_another_replicas_running_export_alone() {
    use trello_sim::{Fault, FaultRule};

    let s = Sims::new();
    let db = s.rt.block_on(webriskops_pg_testing::test_database());
    let s = s.on_database(&db.url);
    let t = s.tenant("acme");
    let mut a = s.serve(&[], &[]);
    a.trello_saved(&s, &t.admin, &s.tfx.tokens.full);

    // One card write is applied but its answer stalls past the adapter's timeout (10 s
    // in the tests' configuration): A's export is running for that long.
    s.trello.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
        1,
        Fault::Delay {
            delay: Duration::from_secs(60),
            after_apply: true,
        },
    ));
    let id = a.export(&t.admin, "", &findings("held", 6));
    let deadline = Instant::now() + PATIENCE;
    while !s.trello.pending_faults().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the export never reached the stalled write"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let c_dir = s.dir.path().join("data-c");
    let mut c = s.serve(&[], &[("WEBRISKOPS_DATA_DIR", c_dir.to_str().unwrap())]);
    let state = c.get(&format!("/api/v1/exports/{id}"), &t.admin);
    state.expect(200);
    assert_eq!(
        state.json()["state"],
        "running",
        "precondition: C started while A's export ran: {}",
        state.text
    );
    assert!(
        !c.log().contains(&format!("claimed export job {id}")),
        "C took up A's running export:\n{}",
        c.log()
    );

    let job = c.wait_export(&t.admin, &id);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["summary"]["created"], json!(6), "{job}");
    let per = s.cards_per_finding();
    assert_eq!(per.len(), 6, "{per:?}");
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    a.stop_ok();
    c.stop_ok();
}

/// Three replicas on one database; the one that claimed an export is killed with `kill -9`
/// while it writes cards: once its lease has expired, another replica takes the job over
/// (reading the upload from the database) and finishes it. Every finding has exactly one
/// card, the job ends `done` on every replica, and its upload is not kept.
#[test]
fn a_replica_killed_mid_export_leaves_its_job_to_the_others() {
    // With 16 writes in flight and the tracker answering in 80 ms, a few seconds of work.
    const N: usize = 300;
    let s = Sims::with_trello_latency(Duration::from_millis(80));
    let db = s.rt.block_on(webriskops_pg_testing::test_database());
    let s = s.on_database(&db.url);
    let t = s.tenant("acme");
    // A short lease, so that the takeover comes soon after the kill.
    let lease = ("WEBRISKOPS_JOB_LEASE_SECS", "2");
    let mut replicas = start_replicas(&s, 3, &[lease]);
    replicas[0].trello_saved(&s, &t.admin, &s.tfx.tokens.full);

    let id = replicas[0].export(&t.admin, "", &findings("kill", N));
    // Wait until the export is writing cards, and find the replica that claimed it.
    let claimed = format!("claimed export job {id}");
    let deadline = Instant::now() + PATIENCE;
    let holder = loop {
        let written = s.cards_per_finding().len();
        assert!(
            written < N,
            "precondition: the export finished before the kill ({written} cards)"
        );
        if written > 0 {
            if let Some(i) = replicas.iter().position(|r| r.log().contains(&claimed)) {
                break i;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the export never started writing"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut killed = replicas.remove(holder);
    killed.kill();
    let written = s.cards_per_finding().len();
    assert!(
        written < N,
        "precondition: the export was cut mid-way ({written} of {N} cards)"
    );

    for r in &replicas {
        let job = r.wait_export(&t.admin, &id);
        assert_eq!(job["state"], "done", "{job}");
    }
    let per = s.cards_per_finding();
    assert_eq!(per.len(), N, "findings without a card: {per:?}");
    assert!(per.values().all(|n| *n == 1), "duplicates: {per:?}");
    assert!(
        replicas
            .iter()
            .any(|r| r.log().contains("took over an export job")),
        "no replica says it took the job over:\n{}\n{}",
        replicas[0].log(),
        replicas[1].log()
    );
    // The replica that took it over counts the takeover and the job it finished; the
    // queue's gauges, read from the database, are the same on every replica.
    let taker = replicas
        .iter()
        .find(|r| r.log().contains("took over an export job"))
        .unwrap();
    let m = crate::serve::scrape_until(taker, |m| {
        m.get("webriskops_jobs_finished_total{outcome=\"done\"}") == Some(&1.0)
    });
    assert_eq!(
        m.get("webriskops_job_lease_takeovers_total"),
        Some(&1.0),
        "{m:?}"
    );
    for r in &replicas {
        let (_, m) = crate::serve::scrape(r);
        assert_eq!(m.get("webriskops_jobs_queued"), Some(&0.0), "{m:?}");
        assert_eq!(m.get("webriskops_jobs_running"), Some(&0.0), "{m:?}");
    }

    // The upload (the tenant's findings) is not kept once the job has ended.
    let chunks: i64 = s.rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .query_one("SELECT count(*) FROM job_uploads", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(chunks, 0, "the upload is left in the database");
    for r in &mut replicas {
        r.stop_ok();
    }
}

#[test]
fn replicas_spend_one_key_budget_fairly_and_never_overrun_it() {
    // The application key allows 40 requests per 1 s window, for every tenant and
    // replica together; each replica's own limiter would allow 40 on its own. Three
    // tenants export at once on two replicas.
    const KEY_LIMIT: u32 = 40;
    const N: usize = 40;
    let s = Sims::with_trello(Duration::from_millis(20), KEY_LIMIT);
    let db = s.rt.block_on(webriskops_pg_testing::test_database());
    let s = s.on_database(&db.url);
    let tenants: Vec<_> = ["north", "south", "east"]
        .iter()
        .map(|name| (*name, s.tenant(name)))
        .collect();
    s.user("north", "nell@north.example", "admin");
    let mut replicas = start_replicas(&s, 2, &[]);
    for (i, (_, t)) in tenants.iter().enumerate() {
        replicas[i % 2].trello_saved(&s, &t.admin, &s.tfx.tokens.full);
    }
    let before = s.trello.status_counts();
    let ids: Vec<String> = tenants
        .iter()
        .enumerate()
        .map(|(i, (name, t))| replicas[i % 2].export(&t.admin, "", &findings(name, N)))
        .collect();
    for (i, ((_, t), id)) in tenants.iter().zip(&ids).enumerate() {
        let job = replicas[(i + 1) % 2].wait_export(&t.admin, id);
        assert_eq!(job["state"], "done", "{job}");
    }
    // Not one request was refused: the key's window was never overrun, by either
    // replica or by both together.
    assert_eq!(
        s.trello.count_status(429),
        0,
        "before {before:?}, after {:?}",
        s.trello.status_counts()
    );
    let per = s.cards_per_finding();
    assert_eq!(per.len(), 3 * N, "findings without a card: {per:?}");
    assert!(per.values().all(|n| *n == 1), "duplicates: {per:?}");

    // Each tenant sees the key's totals and its own part, never another tenant's name.
    let (name, t) = &tenants[0];
    let budget = replicas[1].status(&t.admin, "trello")["key_budget"].clone();
    assert_eq!(budget["limit"], json!(KEY_LIMIT), "{budget}");
    assert!(budget["fair_share"].as_u64().is_some(), "{budget}");
    assert!(!budget.to_string().contains("south"), "{budget}");
    assert!(!name.is_empty());
    // The settings page says the same in words.
    let cookie = {
        let r = replicas[0].login("nell@north.example", PASSWORD);
        r.expect(303);
        r.header("set-cookie").split(';').next().unwrap().to_owned()
    };
    let page = replicas[1]
        .send(
            replicas[1]
                .request(Method::GET, "/settings")
                .header("cookie", &cookie),
        )
        .text;
    assert!(
        page.contains("requests in the current window, all customers together"),
        "{page}"
    );
    // The operator's metrics name the key's limit and each tenant's use.
    let (text, m) = crate::serve::scrape(&replicas[0]);
    assert_eq!(
        m.get("webriskops_key_budget_limit{tracker=\"trello\"}"),
        Some(&f64::from(KEY_LIMIT)),
        "{text}"
    );
    assert!(
        text.contains("# TYPE webriskops_key_budget_tenant_used gauge"),
        "{text}"
    );
    for r in &mut replicas {
        r.stop_ok();
    }
}

/// The sum over `replicas` of the series of `name` (every label set).
fn total(replicas: &[&Server], name: &str) -> f64 {
    replicas
        .iter()
        .map(|r| {
            let (_, m) = crate::serve::scrape(r);
            m.iter()
                .filter(|(k, _)| *k == name || k.starts_with(&format!("{name}{{")))
                .map(|(_, v)| *v)
                .sum::<f64>()
        })
        .sum()
}

/// `webriskops_queue_jobs{kind="sync",state=…}` as `srv` reads it from the database.
fn sync_jobs(srv: &Server, state: &str) -> Option<f64> {
    let (_, m) = crate::serve::scrape(srv);
    m.get(&format!(
        "webriskops_queue_jobs{{kind=\"sync\",state=\"{state}\"}}"
    ))
    .copied()
}

/// Polls until no sync job is queued or running (bounded by [`PATIENCE`]).
#[track_caller]
fn syncs_settle(srv: &Server) {
    let deadline = Instant::now() + PATIENCE;
    while sync_jobs(srv, "queued") != Some(0.0) || sync_jobs(srv, "running") != Some(0.0) {
        assert!(Instant::now() < deadline, "the sync jobs never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Webhook deliveries are follow-up jobs of the queue, not syncs of the replica that
/// received them: while one replica exports a tenancy, deliveries to either replica wait
/// (no sync of that tenancy runs anywhere beside its export), join one queued sync, and
/// once the export has ended exactly one sync runs, on whichever replica claims it; the
/// person's status change is reported once.
#[test]
fn webhook_deliveries_during_an_export_make_one_sync_after_it_on_any_replica() {
    use trello_sim::{Fault, FaultRule};
    use webriskops_ports::WebhookSecret;

    use crate::serve::{APP_SECRET, METRICS_TOKEN};

    let s = Sims::new();
    let db = s.rt.block_on(webriskops_pg_testing::test_database());
    let s = s.on_database(&db.url);
    let t = s.tenant("acme");
    s.trello.set_api_secret(&s.tfx.api_key, APP_SECRET);
    let metrics = ("WEBRISKOPS_METRICS_TOKEN", METRICS_TOKEN);
    let b_dir = s.dir.path().join("data-b");
    let mut a = s.serve(&[], &[metrics]);
    let mut b = s.serve(
        &[],
        &[metrics, ("WEBRISKOPS_DATA_DIR", b_dir.to_str().unwrap())],
    );
    a.trello_saved(&s, &t.admin, &s.tfx.tokens.full);
    let first = findings("hook", 2);
    let id = a.export(&t.admin, "", &first);
    assert_eq!(a.wait_export(&t.admin, &id)["state"], "done");
    // The export's own card actions were delivered too: every delivery Trello made has
    // reached a replica, and the syncs they asked for have ended, twice in a row.
    let deadline = Instant::now() + PATIENCE;
    let mut calm = 0;
    while calm < 2 {
        assert!(
            Instant::now() < deadline,
            "the export's deliveries never settled"
        );
        std::thread::sleep(Duration::from_millis(300));
        syncs_settle(&a);
        let sent = s.trello.webhook_deliveries().len() as f64;
        let received = total(&[&a, &b], "webriskops_webhook_deliveries_total");
        calm = if sent == received { calm + 1 } else { 0 };
    }

    // The same findings again (nothing to write), held up by a read that stalls past the
    // adapter's timeout: the tenancy is busy exporting for that long.
    s.trello.inject(FaultRule::new(
        Some("GET"),
        None,
        1,
        Fault::Delay {
            delay: Duration::from_secs(60),
            after_apply: false,
        },
    ));
    let held = b.export(&t.admin, "", &first);
    let deadline = Instant::now() + PATIENCE;
    while !s.trello.pending_faults().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the export never reached the stall"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let syncs_before = total(&[&a, &b], "webriskops_syncs_total");
    let accepted_before = total(&[&a, &b], "webriskops_webhook_deliveries_total");

    // A person finishes a card (Trello delivers that to the callback, on A), and five more
    // deliveries come, through a load balancer, to either replica.
    let card = s
        .trello
        .cards(&s.tfx.board_id)
        .into_iter()
        .find(|c| c.desc.contains("[webriskops:finding:hook-1]"))
        .unwrap();
    s.trello.person_move_card(&card.id, &s.tfx.done_list_id);
    let hooks = s.trello.webhooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let callback = hooks[0].callback_url.clone();
    let path = callback.strip_prefix(&a.url("")).unwrap().to_owned();
    for i in 0..5 {
        let body =
            json!({"action": {"id": format!("5f00000000000000000hook{i}"), "type": "updateCard",
                                     "data": {"card": {"id": card.id}}},
                          "model": {}})
            .to_string();
        let sig = webriskops_trello::webhook_signature(
            &WebhookSecret::new(APP_SECRET),
            body.as_bytes(),
            &callback,
        );
        let to = if i % 2 == 0 { &a } else { &b };
        to.send(
            to.request(Method::POST, &path)
                .header("X-Trello-Webhook", sig)
                .header("Content-Type", "application/json")
                .body(body),
        )
        .expect(200);
    }
    let deadline = Instant::now() + PATIENCE;
    while total(&[&a, &b], "webriskops_webhook_deliveries_total") < accepted_before + 6.0 {
        assert!(Instant::now() < deadline, "Trello's delivery never came");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every delivery is answered, none is synced beside the export: one sync waits.
    let syncs_during = total(&[&a, &b], "webriskops_syncs_total");
    let (waiting, running) = (sync_jobs(&b, "queued"), sync_jobs(&a, "running"));
    let export = b.get(&format!("/api/v1/exports/{held}"), &t.admin).json();
    assert_eq!(
        export["state"], "running",
        "precondition: the export still runs: {export}"
    );
    assert_eq!(
        syncs_during, syncs_before,
        "a sync ran beside the tenancy's export"
    );
    assert_eq!(waiting, Some(1.0), "the deliveries joined one queued sync");
    assert_eq!(running, Some(0.0));

    // The export ends; then the one sync runs, and reports the change once.
    let ended = a.wait_export(&t.admin, &held);
    assert!(
        ended["state"] == "done" || ended["state"] == "failed",
        "{ended}"
    );
    syncs_settle(&a);
    assert_eq!(
        total(&[&a, &b], "webriskops_syncs_total"),
        syncs_before + 1.0,
        "six deliveries, one sync"
    );
    let events = b.get("/api/v1/status-events", &t.admin);
    events.expect(200);
    let events = events.json();
    let finished: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["finding_id"] == "hook-1")
        .collect();
    assert_eq!(finished.len(), 1, "reported once: {events}");
    assert_eq!(finished[0]["event"]["tracker_status"], "done", "{events}");
    a.stop_ok();
    b.stop_ok();
}

/// Two replicas tick the sync schedule every second: the tenancy is synced once per
/// interval in all (each sync a job one replica claimed), not once per replica.
#[test]
fn two_replicas_make_one_scheduled_sync_per_interval_not_two() {
    use crate::serve::METRICS_TOKEN;

    let s = Sims::new();
    let db = s.rt.block_on(webriskops_pg_testing::test_database());
    let s = s.on_database(&db.url);
    let t = s.tenant("acme");
    let env = [
        ("WEBRISKOPS_METRICS_TOKEN", METRICS_TOKEN),
        ("WEBRISKOPS_SYNC_INTERVAL_SECS", "1"),
    ];
    let b_dir = s.dir.path().join("data-b");
    let started = Instant::now();
    let mut a = s.serve(&[], &env);
    let mut b = s.serve(
        &[],
        &[
            env[0],
            env[1],
            ("WEBRISKOPS_DATA_DIR", b_dir.to_str().unwrap()),
        ],
    );
    a.trello_saved(&s, &t.admin, &s.tfx.tokens.full);
    // Long enough for several intervals on both replicas' clocks.
    std::thread::sleep(Duration::from_secs(6));
    let syncs = total(&[&a, &b], "webriskops_syncs_total");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        syncs >= 2.0,
        "the schedule synced {syncs} times in {elapsed} s"
    );
    // Each interval makes one sync of the tenancy, whichever replica ticks first: at most
    // one per second since the first replica started (two replicas syncing on their own
    // timers would make about twice that).
    assert!(
        syncs <= elapsed.floor() + 1.0,
        "{syncs} syncs in {elapsed} s with a 1 s interval"
    );
    // In the database: each queued 1 s or more after the one before it.
    let created: Vec<chrono::DateTime<chrono::Utc>> = s.rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .query(
                "SELECT created_at FROM export_jobs WHERE kind = 'sync' ORDER BY created_at",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    });
    assert!(created.len() >= 2, "{created:?}");
    for pair in created.windows(2) {
        assert!(
            pair[1] - pair[0] >= chrono::TimeDelta::seconds(1),
            "two syncs queued within one interval: {created:?}"
        );
    }
    a.stop_ok();
    b.stop_ok();
}

#[test]
fn a_postgresql_restart_mid_export_is_recovered_from_without_restarting_a_replica() {
    // With 16 writes in flight and the tracker answering in 80 ms, a few seconds of work.
    const N: usize = 300;
    let s = Sims::with_trello_latency(Duration::from_millis(80));
    // A cluster of this test alone: a shared server must not be restarted.
    let (cluster, db) = match s.rt.block_on(webriskops_pg_testing::private_database()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipped: restarting PostgreSQL needs a cluster of the test's own: {e}");
            return;
        }
    };
    let s = s.on_database(&db.url);
    let t = s.tenant("acme");
    s.user("acme", "ann@acme.example", "admin");
    // A lease shorter than the outage: the holder's lease runs out while the database is
    // down, so the job must be taken over (or kept) once it is back.
    let lease = ("WEBRISKOPS_JOB_LEASE_SECS", "2");
    let mut replicas = start_replicas(&s, 2, &[lease]);
    replicas[0].trello_saved(&s, &t.admin, &s.tfx.tokens.full);
    let login = replicas[0].login("ann@acme.example", PASSWORD);
    assert_eq!(login.status, 303, "{}", login.text);
    let cookie = login.header("set-cookie");
    let cookie = cookie.split(';').next().unwrap().to_owned();

    let id = replicas[1].export(&t.admin, "", &findings("restart", N));
    let deadline = Instant::now() + PATIENCE;
    while s.cards_per_finding().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the export never started writing"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    // The database stops mid-export (an operator's restart: connections are cut).
    cluster.stop().unwrap();
    let written = s.cards_per_finding().len();
    assert!(
        written < N,
        "precondition: the export was cut mid-way ({written} of {N} cards)"
    );
    for r in &replicas {
        let down = readyz_becomes(r, 503);
        assert_eq!(down.json()["status"], "unavailable", "{}", down.text);
    }
    // Down for longer than the lease.
    std::thread::sleep(Duration::from_secs(3));
    cluster.resume().unwrap();
    let back = Instant::now();
    for r in &replicas {
        let up = readyz_becomes(r, 200);
        assert_eq!(up.json()["status"], "ready", "{}", up.text);
    }
    eprintln!(
        "both replicas ready {:?} after the database was back",
        back.elapsed()
    );

    for r in &replicas {
        let job = r.wait_export(&t.admin, &id);
        assert_eq!(job["state"], "done", "{job}\n{}", r.log());
    }
    eprintln!(
        "export done {:?} after the database was back",
        back.elapsed()
    );
    let per = s.cards_per_finding();
    assert_eq!(per.len(), N, "findings without a card: {per:?}");
    assert!(per.values().all(|n| *n == 1), "duplicates: {per:?}");

    // Sessions and the API work afterwards, on both: the session from before the
    // restart, and a new one.
    for r in &replicas {
        let on = r.send(
            r.request(Method::GET, "/api/v1/integration")
                .header("cookie", &cookie),
        );
        on.expect(200);
        let status = r.status(&t.admin, "trello");
        assert_eq!(status["record_state"], "saved", "{status}");
    }
    let again = replicas[1].login("ann@acme.example", PASSWORD);
    assert_eq!(again.status, 303, "{}", again.text);

    // The replicas that recovered are the ones started before: each still runs and
    // stops cleanly.
    for r in &mut replicas {
        r.stop_ok();
    }
    drop(db);
    drop(cluster);
}

/// A client that does not follow redirects, for the tracker's pages (as a browser would
/// show them, one step at a time).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[test]
fn a_trello_authorization_started_on_one_replica_is_finished_by_another() {
    let s = Sims::new();
    let db = s.rt.block_on(webriskops_pg_testing::test_database());
    let s = s.on_database(&db.url);
    let t = s.tenant("acme");
    s.user("acme", "ann@acme.example", "admin");
    // The key's application secret, which signs the OAuth 1.0 exchanges.
    s.trello.set_api_secret(&s.tfx.api_key, APP_SECRET);
    let a = s.serve(&[], &[]);
    let b_dir = s.dir.path().join("data-b");
    let b = s.serve(&[], &[("WEBRISKOPS_DATA_DIR", b_dir.to_str().unwrap())]);
    let login = a.login("ann@acme.example", PASSWORD);
    assert_eq!(login.status, 303, "{}", login.text);
    let cookie = login.header("set-cookie");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    assert!(
        b.status(&t.admin, "trello")["token_held_until"].is_null(),
        "precondition: no token held"
    );

    // The person starts on A: A asks Trello for a request token (OAuth 1.0) and sends
    // the browser to Trello's Allow page; the person allows, and Trello sends the browser
    // back to the callback.
    let path = trello_oauth1_allowed(&s, &a, &cookie);

    // The load balancer sends the callback to B: B finishes with the request-token
    // secret A kept in the database, and holds the token.
    let finished = b.send(b.request(Method::GET, &path).header("cookie", &cookie));
    assert_eq!(finished.status, 303, "{}\n{}", finished.text, b.log());
    assert_eq!(finished.header("location"), "/settings/trello?held=1");
    for srv in [&a, &b] {
        let status = srv.status(&t.admin, "trello");
        assert!(
            !status["token_held_until"].is_null(),
            "the token is held on every replica: {status}"
        );
    }
    // The same answer again, on either replica, is refused: it was used once.
    for srv in [&a, &b] {
        let replay = srv.send(srv.request(Method::GET, &path).header("cookie", &cookie));
        assert_eq!(replay.status, 400, "{}", replay.text);
        assert!(
            replay.text.contains("does not match one started here"),
            "{}",
            replay.text
        );
    }
}

#[test]
fn failed_sign_ins_on_two_replicas_throttle_the_next_on_either() {
    let s = Sims::new();
    let db = s.rt.block_on(webriskops_pg_testing::test_database());
    let s = s.on_database(&db.url);
    s.tenant("acme");
    s.user("acme", "ann@acme.example", "admin");
    let a = s.serve(&[], &[]);
    let b_dir = s.dir.path().join("data-b");
    let b = s.serve(&[], &[("WEBRISKOPS_DATA_DIR", b_dir.to_str().unwrap())]);
    // Five wrong passwords, spread over both replicas.
    for (i, srv) in [&a, &b, &a, &b, &a].into_iter().enumerate() {
        let r = srv.login("ann@acme.example", "wrong password, try again");
        assert_eq!(r.status, 401, "attempt {}: {}", i + 1, r.text);
    }
    // The sixth is refused on either replica, even with the right password.
    for srv in [&b, &a] {
        let r = srv.login("ann@acme.example", PASSWORD);
        assert_eq!(r.status, 429, "{}", r.text);
        assert!(r.text.contains("Too many failed sign-ins"), "{}", r.text);
        let wait: u64 = r.header("retry-after").parse().unwrap();
        assert!(wait > 0 && wait <= 15 * 60, "{wait}");
    }
}

#[test]
fn connections_cut_again_and_again_mid_export_leave_no_finding_without_its_card() {
    // What a failover or a restart does to the connections a replica holds, with the
    // server answering again at once: every statement in flight fails with "connection
    // closed" or "terminating connection due to administrator command".
    const N: usize = 300;
    let s = Sims::with_trello_latency(Duration::from_millis(80));
    let db = s.rt.block_on(webriskops_pg_testing::test_database());
    let s = s.on_database(&db.url);
    let t = s.tenant("acme");
    let lease = ("WEBRISKOPS_JOB_LEASE_SECS", "2");
    let mut replicas = start_replicas(&s, 2, &[lease]);
    replicas[0].trello_saved(&s, &t.admin, &s.tfx.tokens.full);
    let id = replicas[1].export(&t.admin, "", &findings("cut", N));
    let deadline = Instant::now() + PATIENCE;
    while s.cards_per_finding().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the export never started writing"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let cut = s.rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut cut = 0;
        for _ in 0..10 {
            cut += client
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap()
                .len();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        cut
    });
    assert!(cut > 0, "precondition: connections were cut");
    let written = s.cards_per_finding().len();
    assert!(
        written < N,
        "precondition: the export was still running after the cuts ({written} of {N} cards)"
    );

    for r in &replicas {
        let job = r.wait_export(&t.admin, &id);
        assert_eq!(job["state"], "done", "{job}");
        assert_eq!(
            job["summary"]["failed_count"],
            json!(0),
            "{}",
            job["summary"]
        );
    }
    let per = s.cards_per_finding();
    assert_eq!(per.len(), N, "findings without a card: {}", N - per.len());
    assert!(per.values().all(|n| *n == 1), "duplicates: {per:?}");
    for r in &mut replicas {
        r.stop_ok();
    }
}

#[test]
fn a_linear_authorization_started_on_one_replica_is_finished_by_another() {
    let s = Sims::new();
    let db = s.rt.block_on(webriskops_pg_testing::test_database());
    let s = s.on_database(&db.url);
    let t = s.tenant("acme");
    s.user("acme", "ann@acme.example", "admin");
    // Both replicas behind one public address (the load balancer's; nobody listens on
    // it here), registered with Linear as the OAuth application's callback.
    let public = "http://127.0.0.1:9";
    let oauth = s.linear_oauth_env(&format!("{public}/settings/linear/callback"));
    let mut env: Vec<(&str, &str)> = oauth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = s.serve(&["--public-url", public], &env);
    let b_dir = s.dir.path().join("data-b");
    env.push(("WEBRISKOPS_DATA_DIR", b_dir.to_str().unwrap()));
    let b = s.serve(&["--public-url", public], &env);
    let login = a.login("ann@acme.example", PASSWORD);
    assert_eq!(login.status, 303, "{}", login.text);
    let cookie = login.header("set-cookie");
    let cookie = cookie.split(';').next().unwrap().to_owned();

    // Started on A: A sends the browser to Linear with a `state`.
    let start = a.send(
        a.request(Method::GET, "/settings/linear/connect")
            .header("cookie", &cookie),
    );
    assert_eq!(start.status, 303, "{}", start.text);
    let authorize = start.header("location");
    // Linear (the simulator approves at once) sends the browser back with the code.
    let back =
        s.rt.block_on(async { browser().get(&authorize).send().await.unwrap() });
    assert!(back.status().is_redirection(), "{back:?}");
    let callback =
        url::Url::parse(back.headers().get("location").unwrap().to_str().unwrap()).unwrap();
    assert_eq!(callback.path(), "/settings/linear/callback");
    // The load balancer sends the callback to B, which finishes with the state A kept.
    let path = format!("{}?{}", callback.path(), callback.query().unwrap());
    let finished = b.send(b.request(Method::GET, &path).header("cookie", &cookie));
    assert_eq!(finished.status, 303, "{}\n{}", finished.text, b.log());
    assert_eq!(finished.header("location"), "/settings/linear?held=1");
    let status = a.status(&t.admin, "linear");
    assert!(!status["token_held_until"].is_null(), "{status}");
}
