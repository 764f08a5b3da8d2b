//! The in-memory shared budgets pass the store conformance suite's budget rules.
#![cfg(feature = "store-conformance")]

use std::sync::Arc;

use webriskops_ports::store_conformance as suite;
use webriskops_ports::MemoryBudgets;

#[tokio::test]
async fn limits() {
    suite::budgets_limits(Arc::new(MemoryBudgets::new())).await;
}

#[tokio::test]
async fn fairness_and_pause() {
    suite::budgets_fairness_and_pause(Arc::new(MemoryBudgets::new())).await;
}

#[tokio::test]
async fn reserve() {
    suite::budgets_reserve(Arc::new(MemoryBudgets::new())).await;
}
