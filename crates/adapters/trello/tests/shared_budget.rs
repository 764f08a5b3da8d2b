//! The adapter on a key budget shared with other replicas (a `MemoryBudgets` store here;
//! PostgreSQL in `serve`): a 429 for the whole key pauses the key in the store for every
//! replica, a token's own 429 does not, and the requests get through after the pause.

mod common;

use std::sync::Arc;

use common::{config, sim_config, world_with};
use futures::future::join_all;
use webriskops_budget::SharedBudget;
use webriskops_ports::{MemoryBudgets, RequestBudgets, TrackerIntrospection};
use webriskops_trello::{SharedKeyBudget, TrelloAdapter};

async fn burst(a: &Arc<TrelloAdapter>, board: &str, n: usize) {
    let results = join_all((0..n).map(|_| {
        let a = a.clone();
        let board = board.to_owned();
        async move { a.container(&board).await }
    }))
    .await;
    for r in results {
        r.expect("every request gets through, after the pause if need be");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_of_the_whole_key_pauses_it_in_the_store() {
    // Another application spends the same key: Trello allows this one far less than the
    // 300 per window its budget believes.
    let mut sc = sim_config();
    sc.key_limit = 20;
    let w = world_with(sc).await;
    let store = Arc::new(MemoryBudgets::new());
    let budget = SharedBudget::new(store.clone(), "replica-a");
    let mut c = config(&w, &w.fx.tokens.full);
    c.shared = Some(SharedKeyBudget {
        budget: budget.clone(),
        owner: "acme".into(),
    });
    let key = webriskops_trello::shared::key_scope(&c.api_key, &c.limits, c.timeout);
    let a = Arc::new(TrelloAdapter::new(c).unwrap());
    burst(&a, &w.fx.board_id, 40).await;
    let refused = w.handle.count_status(429);
    assert!(refused > 0, "precondition: the key was refused");
    assert!(
        budget.stats().pauses >= 1,
        "a refusal of the whole key pauses it: {:?}",
        budget.stats()
    );
    assert_eq!(a.stats().key_rate_limited_429s as usize, refused);
    // The store counted this replica's requests for its tenant.
    let usage = store.usage(&key).await.unwrap();
    assert!(usage.owners.iter().all(|o| o.owner == "acme"), "{usage:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokens_own_refusal_does_not_pause_the_key() {
    let mut sc = sim_config();
    sc.token_limit = 10;
    let w = world_with(sc).await;
    let budget = SharedBudget::new(Arc::new(MemoryBudgets::new()), "replica-a");
    let mut c = config(&w, &w.fx.tokens.full);
    // The adapter believes its token has 100 (and, not following the headers, keeps
    // believing it); Trello refuses past 10.
    c.limits.follow_headers = false;
    c.shared = Some(SharedKeyBudget {
        budget: budget.clone(),
        owner: "acme".into(),
    });
    let a = Arc::new(TrelloAdapter::new(c).unwrap());
    burst(&a, &w.fx.board_id, 30).await;
    assert!(
        w.handle.count_status(429) > 0,
        "precondition: the token was refused"
    );
    assert_eq!(a.stats().key_rate_limited_429s, 0);
    assert_eq!(
        budget.stats().pauses,
        0,
        "one token's refusal holds no other tenant"
    );
}
