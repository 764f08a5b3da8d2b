//! Every guarantee of the export, proven against the simulator over real HTTP with the
//! real Trello adapter and SQLite store: exactly one card per finding through 429
//! storms, 5xx bursts, lost answers and a lost database; field ownership; status.

use std::time::Duration;

use trello_sim::{Fault, FaultRule};
use webriskops_domain::Status;
use webriskops_e2e::{findings, write_findings, World};
use webriskops_service::ExportOptions;

const FAST: Duration = Duration::from_millis(200);

fn assert_one_card_each(w: &World, expected: usize) {
    let cards = w.cards_per_finding();
    assert_eq!(cards.len(), expected, "every finding has a card");
    for (f, c) in &cards {
        assert_eq!(c.len(), 1, "finding {f} has {} cards", c.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_twice_the_second_run_writes_nothing() {
    let w = World::start(Duration::from_millis(5), FAST).await;
    let src = write_findings(&w.dir.path().join("f.jsonl"), &findings("e2e", 30, 3));
    let (first, _) = w.export(&src).await;
    assert_eq!(first.created, 30);
    assert_one_card_each(&w, 30);
    let card = &w.cards_per_finding()["e2e-00000"][0];
    assert_eq!(card.checklists[0].items.len(), 3);
    w.sim.clear_request_log();
    let (second, adapter) = w.export(&src).await;
    assert_eq!((second.created, second.unchanged), (0, 30));
    assert_eq!(
        w.writes_logged(),
        0,
        "an unchanged re-export sends no write"
    );
    assert_eq!(adapter.stats().writes, 0);
    let reads = w.sim.request_log().len();
    assert!(
        reads <= 4,
        "only setup lookups and the board listing are read, got {reads}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_and_5xx_bursts_still_create_each_card_once() {
    let w = World::start(Duration::from_millis(2), FAST).await;
    w.sim.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
        15,
        Fault::RateLimit429,
    ));
    w.sim.inject(FaultRule::new(
        Some("POST"),
        Some("/1/checklists"),
        5,
        Fault::Status(503),
    ));
    w.sim.inject(FaultRule::new(
        Some("GET"),
        Some("/1/boards"),
        2,
        Fault::Status(500),
    ));
    let src = write_findings(&w.dir.path().join("f.jsonl"), &findings("storm", 25, 2));
    let (s, adapter) = w.export(&src).await;
    assert_eq!((s.created, s.failed_count), (25, 0), "{:?}", s.failed);
    assert_one_card_each(&w, 25);
    assert!(
        adapter.stats().rate_limited_429s >= 15,
        "the storm was seen and ridden out"
    );
    assert!(w.sim.pending_faults().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_never_arrives_is_not_duplicated() {
    let w = World::start(Duration::ZERO, FAST).await;
    // The card is created, then the answer comes after the client gave up.
    w.sim.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
        1,
        Fault::Delay {
            delay: Duration::from_secs(3),
            after_apply: true,
        },
    ));
    // And another one whose connection drops after the card exists.
    w.sim.inject(FaultRule::new(
        Some("POST"),
        Some("/1/cards"),
        1,
        Fault::DropConnection { after_apply: true },
    ));
    let src = write_findings(&w.dir.path().join("f.jsonl"), &findings("lost", 6, 1));
    let opts = ExportOptions {
        concurrency: 1,
        ..Default::default()
    };
    let (s, _) = w
        .export_with(&src, &w.fixture.tokens.full, Duration::from_secs(1), opts)
        .await;
    assert_eq!((s.created, s.failed_count), (6, 0), "{:?}", s.failed);
    assert_one_card_each(&w, 6);
    for cards in w.cards_per_finding().values() {
        assert_eq!(
            cards[0].checklists.len(),
            1,
            "the checklist is added once, also to an adopted card"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_rebuilds_from_markers() {
    let w = World::start(Duration::ZERO, FAST).await;
    let src = write_findings(&w.dir.path().join("f.jsonl"), &findings("lostdb", 12, 2));
    w.export(&src).await;
    std::fs::remove_dir_all(w.data_dir()).unwrap();
    w.sim.clear_request_log();
    let (s, _) = w.export(&src).await;
    assert_eq!((s.created, s.unchanged), (0, 12));
    assert_eq!(w.writes_logged(), 0);
    assert_one_card_each(&w, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_keep_their_changes_and_status_comes_back_once() {
    let w = World::start(Duration::ZERO, FAST).await;
    let mut fs = findings("own", 4, 2);
    let src_path = w.dir.path().join("f.jsonl");
    let src = write_findings(&src_path, &fs);
    w.export(&src).await;
    let cards = w.cards_per_finding();
    let (c0, c1, c2) = (
        &cards["own-00000"][0],
        &cards["own-00001"][0],
        &cards["own-00002"][0],
    );
    // A person: archives card 0, moves card 1 to Done, edits card 2 and ticks a step.
    w.sim.person_archive_card(&c0.id);
    w.sim.person_move_card(&c1.id, &w.fixture.done_list_id);
    w.sim
        .person_edit_desc(&c2.id, &format!("{}\n\nVendor ticket 42", c2.desc));
    w.sim
        .person_tick_check_item(&c2.id, &c2.checklists[0].items[0].id, true);
    let theirs = w
        .sim
        .labels(&w.fixture.board_id)
        .into_iter()
        .find(|l| l.name.is_empty())
        .unwrap();
    w.sim.person_add_label(&c2.id, &theirs.id);
    // WebRiskOps changes finding 2's title.
    fs[2].title = "Finding 2, rescanned".into();
    let src = write_findings(&src_path, &fs);
    let (s, _) = w.export(&src).await;
    assert_eq!(
        (s.updated, s.reopened, s.closed),
        (1, 0, 0),
        "people's closes are not fought"
    );
    let after = w.sim.card(&c2.id).unwrap();
    assert_eq!(after.name, "Finding 2, rescanned");
    assert!(after.desc.ends_with("Vendor ticket 42"));
    assert!(after.id_labels.contains(&theirs.id));
    assert!(
        after.checklists[0].items[0].complete,
        "a tick by a person stays"
    );
    assert!(w.sim.card(&c0.id).unwrap().closed);
    assert_eq!(w.sim.card(&c1.id).unwrap().id_list, w.fixture.done_list_id);
    let (sum, events) = w.sync().await;
    assert_eq!(sum.events, 2);
    let statuses: Vec<(String, &str)> = events
        .iter()
        .map(|e| (e.finding_id.to_string(), e.tracker_status.as_str()))
        .collect();
    assert!(statuses.contains(&("own-00000".into(), "archived")));
    assert!(statuses.contains(&("own-00001".into(), "done")));
    let (again, _) = w.sync().await;
    assert_eq!(again.events, 0, "each change is emitted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finding_closed_then_reopened_moves_to_done_and_back() {
    let w = World::start(Duration::ZERO, FAST).await;
    let mut fs = findings("cycle", 2, 0);
    let path = w.dir.path().join("f.jsonl");
    w.export(&write_findings(&path, &fs)).await;
    fs[0].status = Status::Resolved;
    let (s, _) = w.export(&write_findings(&path, &fs)).await;
    assert_eq!(s.closed, 1);
    let id = w.cards_per_finding()["cycle-00000"][0].id.clone();
    assert_eq!(w.sim.card(&id).unwrap().id_list, w.fixture.done_list_id);
    let (_, events) = w.sync().await;
    assert!(
        events.is_empty(),
        "the exporter's own move is not echoed as an event"
    );
    fs[0].status = Status::Open;
    let (s, _) = w.export(&write_findings(&path, &fs)).await;
    assert_eq!(s.reopened, 1);
    assert_eq!(w.sim.card(&id).unwrap().id_list, w.fixture.list_id);
    assert_one_card_each(&w, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_on_the_board_are_reported_and_kept() {
    let w = World::start(Duration::ZERO, FAST).await;
    let path = w.dir.path().join("f.jsonl");
    let src = write_findings(&path, &findings("dup", 3, 0));
    w.export(&src).await;
    let original = w.cards_per_finding()["dup-00001"][0].clone();
    let copy = w
        .sim
        .person_create_card(&w.fixture.list_id, "copied by a person", &original.desc);
    let (s, _) = w.export(&src).await;
    assert_eq!(s.duplicates.len(), 1);
    assert_eq!(s.duplicates[0].kept.as_str(), original.id);
    assert_eq!(s.duplicates[0].others[0].as_str(), copy);
    assert_eq!(
        w.cards_per_finding()["dup-00001"].len(),
        2,
        "nothing is deleted"
    );
    assert_eq!(s.created, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_mid_export_stops_writes_and_a_rerun_finishes() {
    let w = World::start(Duration::from_millis(10), FAST).await;
    let src = write_findings(&w.dir.path().join("f.jsonl"), &findings("revoked", 40, 0));
    let sim = w.sim.clone();
    let board = w.fixture.board_id.clone();
    let token = w.fixture.tokens.revocable.clone();
    let watcher = tokio::spawn(async move {
        while sim.cards(&board).len() < 10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        sim.revoke_token(&token);
    });
    let opts = ExportOptions {
        concurrency: 4,
        ..Default::default()
    };
    let (s, _) = w
        .export_with(
            &src,
            &w.fixture.tokens.revocable,
            Duration::from_secs(5),
            opts,
        )
        .await;
    watcher.await.unwrap();
    assert!(s.created >= 10 && s.created < 40, "created {}", s.created);
    assert_eq!(
        s.blocked.first().map(|b| b.code.as_str()),
        Some("PROVIDER_AUTH_REQUIRED")
    );
    let (again, _) = w.export(&src).await;
    assert_eq!(again.created + s.created, 40);
    assert_one_card_each(&w, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_findings_stream_through_a_real_export() {
    // Trello's budgets at a 20 ms window (5,000 requests/s) keep this quick; each card
    // costs one request (no steps), so the run is 10,000 creates plus a listing.
    let w = World::start(Duration::ZERO, Duration::from_millis(20)).await;
    let src = write_findings(&w.dir.path().join("f.jsonl"), &findings("big", 10_000, 0));
    let opts = ExportOptions {
        concurrency: 64,
        ..Default::default()
    };
    let (s, _) = w
        .export_with(&src, &w.fixture.tokens.full, Duration::from_secs(30), opts)
        .await;
    assert_eq!(
        (s.created, s.failed_count),
        (10_000, 0),
        "{:?}",
        s.failed.first()
    );
    assert_one_card_each(&w, 10_000);
    // Re-running pages through 10,000 cards (ten pages of 1,000) and writes nothing.
    w.sim.clear_request_log();
    let (again, _) = w.export(&src).await;
    assert_eq!(again.unchanged, 10_000);
    assert_eq!(w.writes_logged(), 0);
    let pages = w
        .sim
        .request_log()
        .iter()
        .filter(|r| r.route == "/1/boards/{id}/cards")
        .count();
    assert_eq!(
        pages, 11,
        "1,000 cards a page, newest first, until a short page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_sized_step_in_any_script_exports_without_failing() {
    let w = World::start(Duration::ZERO, FAST).await;
    let mut fs = findings("cjk", 1, 0);
    // 1,000 characters is the contract's maximum; in CJK it percent-encodes to 9 KB.
    let long = "測試".repeat(500);
    fs[0].remediation_steps = vec![long.clone(), "short".into()];
    let (s, _) = w
        .export(&write_findings(&w.dir.path().join("f.jsonl"), &fs))
        .await;
    assert_eq!((s.created, s.failed_count), (1, 0), "{:?}", s.failed);
    let card = &w.cards_per_finding()["cjk-00000"][0];
    let items: Vec<&str> = card.checklists[0]
        .items
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].ends_with(" …") && items[0].starts_with("測試"));
    assert!(
        card.desc.contains(&long),
        "the full step is kept in the description"
    );
}
