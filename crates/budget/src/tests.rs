//! The driver against the in-memory store: what two replicas hand out together never
//! exceeds the key in any window the tracker could count, a small owner is not held behind
//! a large one, a pause holds every replica, and a dropped request gives its slots back.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use webriskops_domain::SlotRules;
use webriskops_ports::{KeyScope, MemoryBudgets, RequestBudgets};

use super::*;

fn key(name: &str, limit: u32, window_ms: u64) -> KeyScope {
    KeyScope {
        name: name.into(),
        limit,
        rules: SlotRules {
            window: Duration::from_millis(window_ms),
            margin: Duration::from_millis(2),
            in_flight_cap: Duration::from_secs(30),
        },
    }
}

fn request(key: &KeyScope, owner: &str) -> SlotRequest {
    SlotRequest {
        key: key.clone(),
        owner: owner.into(),
        token: format!("token-{owner}"),
        token_limit: 1_000,
        n: 1,
    }
}

/// Runs `count` requests of `owner` on `budget`, each in flight for `hold`; returns each
/// request's (slot handed out, slot ended).
async fn run(
    budget: SharedBudget,
    key: KeyScope,
    owner: &'static str,
    count: usize,
    hold: Duration,
) -> Vec<(Instant, Instant)> {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (b, k) = (budget.clone(), key.clone());
            tokio::spawn(async move {
                let slot = b.acquire(request(&k, owner)).await;
                let start = Instant::now();
                tokio::time::sleep(hold).await;
                let end = Instant::now();
                drop(slot);
                (start, end)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("request task"));
    }
    out
}

/// The most requests the tracker could count in one window: a request reaches it at some
/// time in [start, end]; for every window-long span, count the requests that could be in it.
fn worst_window(all: &[(Instant, Instant)], window: Duration) -> usize {
    all.iter()
        .map(|(_, end)| {
            // Spans ending at a request's end are the worst (counts only grow to the right
            // until then).
            let from = end.checked_sub(window).unwrap_or(*end);
            all.iter().filter(|(s, e)| *e > from && *s <= *end).count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_exceed_the_key_in_any_window() {
    let store: Arc<dyn RequestBudgets> = Arc::new(MemoryBudgets::new());
    let a = SharedBudget::new(store.clone(), "replica-a");
    let b = SharedBudget::new(store.clone(), "replica-b");
    let k = key("k-window", 15, 200);
    let (x, y, z) = tokio::join!(
        run(a.clone(), k.clone(), "t1", 40, Duration::from_millis(3)),
        run(b.clone(), k.clone(), "t2", 40, Duration::from_millis(7)),
        run(a.clone(), k.clone(), "t3", 10, Duration::from_millis(1)),
    );
    let all: Vec<_> = x.into_iter().chain(y).chain(z).collect();
    assert_eq!(all.len(), 90);
    let worst = worst_window(&all, k.rules.window);
    assert!(
        worst <= 15,
        "{worst} requests could reach the tracker in one window"
    );
    let stats = a.stats();
    assert_eq!(stats.slots_by_owner.get("t1"), Some(&40));
    assert_eq!(stats.slots_by_owner.get("t3"), Some(&10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_owner_is_not_held_behind_a_large_one() {
    let store: Arc<dyn RequestBudgets> = Arc::new(MemoryBudgets::new());
    let a = SharedBudget::new(store.clone(), "replica-a");
    let b = SharedBudget::new(store.clone(), "replica-b");
    let k = key("k-fair", 20, 200);
    let large = tokio::spawn(run(a, k.clone(), "large", 200, Duration::from_millis(1)));
    // The small owner comes once the large one is well under way.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let small = run(b, k.clone(), "small", 20, Duration::from_millis(1)).await;
    let small_done = small.iter().map(|(_, e)| *e).max().expect("small ran");
    let large = large.await.expect("large ran");
    let large_after = large.iter().filter(|(s, _)| *s > small_done).count();
    // Equal shares: the small owner's 20 take about two windows, during which the large
    // one gets about 20; well over 100 of the large owner's requests are still to go.
    assert!(
        large_after >= 100,
        "only {large_after} of the large owner's requests ran after the small owner ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_holds_every_replica() {
    let store: Arc<dyn RequestBudgets> = Arc::new(MemoryBudgets::new());
    let a = SharedBudget::new(store.clone(), "replica-a");
    let b = SharedBudget::new(store.clone(), "replica-b");
    let k = key("k-pause", 50, 200);
    drop(a.acquire(request(&k, "t1")).await);
    // Measured from before the pause began: however slow the machine, no slot can come
    // sooner than the pause's length after this.
    let paused = Instant::now();
    a.pause(&k, Duration::from_millis(400)).await.unwrap();
    let slot = b.acquire(request(&k, "t2")).await;
    assert!(
        paused.elapsed() >= Duration::from_millis(390),
        "a slot was handed out {:?} into a 400 ms pause",
        paused.elapsed()
    );
    drop(slot);
    assert_eq!(a.stats().pauses, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_request_gives_its_slots_back() {
    let store: Arc<dyn RequestBudgets> = Arc::new(MemoryBudgets::new());
    let a = SharedBudget::new(store.clone(), "replica-a");
    let k = key("k-drop", 2, 300);
    let held = a.acquire(request(&k, "t1")).await;
    // A request that waits and is abandoned (its future dropped) before any slot.
    let mut two = request(&k, "t1");
    two.n = 2;
    let waiting = tokio::time::timeout(Duration::from_millis(50), a.acquire(two)).await;
    assert!(
        waiting.is_err(),
        "two slots cannot be had while one is held"
    );
    // The one free slot is still there for the next request of one.
    let other = tokio::time::timeout(Duration::from_secs(5), a.acquire(request(&k, "t1")))
        .await
        .expect("the abandoned request kept no slot");
    drop((held, other));
    let usage = a.usage(&k).await.unwrap();
    assert_eq!(
        usage.used, 2,
        "both ended slots count for a window after their end"
    );
}
