//! The limiter against the simulator's real limits (scaled to a 1 s window) with
//! 150 ms latency: bursts far above the budget get no 429 at all, with one token, with
//! two tokens sharing a key, and after another client spent most of the window.
//! How close the wall time comes to requests ÷ rate is measured by `cargo xtask bench`
//! (docs/benchmarks.md), never asserted here.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{config, sim_config, world_with};
use futures::future::join_all;
use webriskops_ports::TrackerIntrospection;
use webriskops_trello::TrelloAdapter;

async fn burst(a: Arc<TrelloAdapter>, board: String, n: usize) {
    let results = join_all((0..n).map(|_| {
        let a = a.clone();
        let board = board.clone();
        async move { a.container(&board).await }
    }))
    .await;
    for r in results {
        r.expect("every request succeeds");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_above_the_budget_get_no_429() {
    // 1. One token: 300 requests at 100 per second.
    let mut sc = sim_config();
    sc.latency = Duration::from_millis(150);
    let w = world_with(sc).await;
    let a = Arc::new(TrelloAdapter::new(config(&w, &w.fx.tokens.full)).unwrap());
    let n = 300;
    let start = Instant::now();
    burst(a.clone(), w.fx.board_id.clone(), n).await;
    let took = start.elapsed();
    let ideal = Duration::from_secs_f64(n as f64 / 100.0);
    eprintln!(
        "one token: {n} requests in {took:?} (requests ÷ rate = {ideal:?}), stats {:?}",
        a.stats()
    );
    assert_eq!(
        w.handle.count_status(429),
        0,
        "{:?}",
        w.handle.status_counts()
    );
    assert_eq!(w.handle.count_status(200), n);
    assert_eq!(a.stats().rate_limited_429s, 0);

    // 2. Two tokens of one key: the key budget (150 per second here) is shared.
    let mut sc = sim_config();
    sc.latency = Duration::from_millis(150);
    sc.key_limit = 150;
    let w = world_with(sc).await;
    let make = |token: &str| {
        let mut c = config(&w, token);
        c.limits.key_limit = 150;
        Arc::new(TrelloAdapter::new(c).unwrap())
    };
    let a = make(&w.fx.tokens.full);
    let b = make(&w.fx.tokens.revocable);
    assert!(Arc::ptr_eq(&a.key_budget(), &b.key_budget()));
    let per = 150;
    let start = Instant::now();
    tokio::join!(
        burst(a.clone(), w.fx.board_id.clone(), per),
        burst(b.clone(), w.fx.board_id.clone(), per)
    );
    let took = start.elapsed();
    let ideal = Duration::from_secs_f64((2 * per) as f64 / 150.0);
    eprintln!(
        "two tokens, one key: {} requests in {took:?} (requests ÷ rate = {ideal:?})",
        2 * per
    );
    assert_eq!(
        w.handle.count_status(429),
        0,
        "{:?}",
        w.handle.status_counts()
    );
    assert_eq!(w.handle.count_status(200), 2 * per);

    // 3. Another process spends 70 of the token's 100: the rate-limit headers tell the
    //    adapter, which waits for the window instead of running into 429s.
    let mut sc = sim_config();
    sc.latency = Duration::from_millis(20);
    let w = world_with(sc).await;
    let foreign = reqwest::Client::new();
    let header = format!(
        "OAuth oauth_consumer_key=\"{}\", oauth_token=\"{}\"",
        w.fx.api_key, w.fx.tokens.full
    );
    let url = format!("{}/boards/{}", w.base_url, w.fx.board_id);
    let sent =
        join_all((0..70).map(|_| foreign.get(&url).header("Authorization", &header).send())).await;
    assert!(sent
        .iter()
        .all(|r| r.as_ref().is_ok_and(|r| r.status() == 200)));
    let mut c = config(&w, &w.fx.tokens.full);
    c.concurrency = 4;
    let a = Arc::new(TrelloAdapter::new(c).unwrap());
    burst(a.clone(), w.fx.board_id.clone(), 60).await;
    eprintln!("foreign use: {:?}", w.handle.status_counts());
    assert_eq!(
        w.handle.count_status(429),
        0,
        "{:?}",
        w.handle.status_counts()
    );
}

/// A `/batch` spends what Trello counts (one request, FACTS.md §8), not one per route: the
/// key's budget after a readiness batch of six routes holds exactly the requests the
/// simulator received. Charging each route left a third of a fleet's first window unspent.
#[tokio::test]
async fn a_batch_spends_one_request_of_the_key_budget() {
    let w = world_with(sim_config()).await;
    let a = TrelloAdapter::new(config(&w, &w.fx.tokens.full)).unwrap();
    let key = a.key_budget();
    let (used_before, seen_before) = (key.used(), w.handle.request_count());
    let lists = [w.fx.list_id.as_str(), w.fx.done_list_id.as_str()];
    let snap = a
        .readiness_snapshot(&w.fx.board_id, &lists)
        .await
        .expect("the batch is answered");
    assert!(snap.board.is_ok() && snap.lists.iter().all(|(_, r)| r.is_ok()));
    let seen = w.handle.request_count() - seen_before;
    assert_eq!(seen, 1, "the routes travel in one request");
    assert_eq!(
        key.used() - used_before,
        1,
        "the key's budget is charged what Trello counts"
    );
}
