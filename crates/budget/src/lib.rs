//! One process's side of the request budgets its replicas share ([`RequestBudgets`]).
//!
//! Requests wait here per owner (a tenant), in the order they came; one driver task per
//! process asks the store for slots for every waiting owner at once, in one round trip
//! per key, at most every fiftieth of a window (so a busy fleet costs the database tens of
//! exchanges a second, not one per request), and hands the granted slots to the waiting
//! requests. A [`Slot`] is held while its request is in flight; when the last slot of a
//! grant has ended, the next exchange releases the grant, dated when its last request
//! ended, and its slots count one window more. The fair split between owners, across
//! every replica, is the store's (the domain's rule).
//!
//! When the store cannot be reached, requests wait (the driver tries again every tenth of a
//! window and logs it): no request is sent on a budget nobody can account for.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;
use webriskops_ports::budget::MAX_POLL_FRACTION;
use webriskops_ports::{
    BudgetExchange, BudgetUsage, KeyScope, PortResult, Released, RequestBudgets, SlotAsk,
};

/// A waiting holder asks again at most every window ÷ this (the batching interval).
pub const MIN_POLL_FRACTION: u32 = 50;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a request needs: `n` slots of `key`, for `owner`, whose own `token` budget allows
/// `token_limit` per window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRequest {
    pub key: KeyScope,
    pub owner: String,
    pub token: String,
    pub token_limit: u32,
    pub n: u32,
}

/// Counters of this process, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BudgetStats {
    /// Slots handed to requests, per owner.
    pub slots_by_owner: BTreeMap<String, u64>,
    /// Exchanges with the store, and those that failed.
    pub exchanges: u64,
    pub failed_exchanges: u64,
    /// Pauses this process asked for (the tracker refused the whole key).
    pub pauses: u64,
}

/// The shared budgets as this process sees them: cheap to clone, one per process.
#[derive(Clone)]
pub struct SharedBudget {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBudget")
            .field("holder", &self.inner.holder)
            .finish_non_exhaustive()
    }
}

struct Inner {
    store: Arc<dyn RequestBudgets>,
    holder: String,
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Default)]
struct State {
    keys: BTreeMap<String, KeyState>,
    driver_running: bool,
    stats: BudgetStats,
}

struct KeyState {
    key: KeyScope,
    owners: BTreeMap<String, OwnerState>,
    grants: BTreeMap<i64, GrantState>,
}

struct OwnerState {
    token: String,
    token_limit: u32,
    waiters: VecDeque<Waiter>,
}

struct Waiter {
    n: u32,
    tx: oneshot::Sender<Slot>,
}

struct GrantState {
    owner: String,
    /// Granted, not handed to a request yet.
    spare: u32,
    /// Handed to requests still in flight.
    out: u32,
    /// When the latest of its requests ended.
    last_end: Option<Instant>,
}

impl KeyState {
    fn spare_of(&self, owner: &str) -> u32 {
        self.grants
            .values()
            .filter(|g| g.owner == owner)
            .map(|g| g.spare)
            .sum()
    }

    /// Takes `n` spare slots of `owner` (the oldest grants first), if it has them.
    fn take_spare(&mut self, owner: &str, n: u32) -> Option<Vec<(i64, u32)>> {
        if self.spare_of(owner) < n {
            return None;
        }
        let mut left = n;
        let mut parts = Vec::new();
        for (id, g) in self.grants.iter_mut().filter(|(_, g)| g.owner == owner) {
            if left == 0 {
                break;
            }
            let take = g.spare.min(left);
            if take > 0 {
                g.spare -= take;
                g.out += take;
                left -= take;
                parts.push((*id, take));
            }
        }
        Some(parts)
    }

    /// Hands spare slots to the waiters of each owner, first come first served.
    fn serve(&mut self, inner: &Arc<Inner>, stats: &mut BudgetStats) {
        let owners: Vec<String> = self.owners.keys().cloned().collect();
        for owner in owners {
            // A waiter whose request was dropped is skipped.
            let front = |k: &mut KeyState| {
                k.owners.get_mut(&owner).and_then(|o| {
                    while o.waiters.front().is_some_and(|w| w.tx.is_closed()) {
                        o.waiters.pop_front();
                    }
                    o.waiters.front().map(|w| w.n)
                })
            };
            while let Some(n) = front(self) {
                let Some(parts) = self.take_spare(&owner, n) else {
                    break;
                };
                let waiter = self
                    .owners
                    .get_mut(&owner)
                    .and_then(|o| o.waiters.pop_front())
                    .expect("the waiter seen above");
                let slot = Slot {
                    inner: Arc::downgrade(inner),
                    key: self.key.name.clone(),
                    parts,
                };
                match waiter.tx.send(slot) {
                    Ok(()) => {
                        *stats.slots_by_owner.entry(owner.clone()).or_insert(0) += u64::from(n);
                    }
                    Err(mut slot) => {
                        // Dropped meanwhile: the slots are spare again, never sent.
                        for (id, k) in std::mem::take(&mut slot.parts) {
                            if let Some(g) = self.grants.get_mut(&id) {
                                g.out -= k;
                                g.spare += k;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Slots held by one request while it is in flight: dropping it (answer read, failure,
/// cancellation) ends them.
#[derive(Debug)]
pub struct Slot {
    inner: Weak<Inner>,
    key: String,
    parts: Vec<(i64, u32)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.parts.is_empty() {
            return;
        }
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let now = Instant::now();
        let mut state = lock(&inner.state);
        if let Some(k) = state.keys.get_mut(&self.key) {
            for (id, n) in &self.parts {
                if let Some(g) = k.grants.get_mut(id) {
                    g.out = g.out.saturating_sub(*n);
                    g.last_end = Some(g.last_end.map_or(now, |t| t.max(now)));
                }
            }
        }
        drop(state);
        inner.wake.notify_one();
    }
}

impl SharedBudget {
    /// The budgets of `store`, spent by this process under the name `holder` (unique per
    /// process: a replica's id).
    pub fn new(store: Arc<dyn RequestBudgets>, holder: impl Into<String>) -> Self {
        SharedBudget {
            inner: Arc::new(Inner {
                store,
                holder: holder.into(),
                state: Mutex::new(State::default()),
                wake: Notify::new(),
            }),
        }
    }

    /// This process's name as a holder.
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    /// Waits for `req.n` slots and returns them, to be held while the request is in
    /// flight. Must be called within a tokio runtime (the driver is spawned on it).
    pub async fn acquire(&self, req: SlotRequest) -> Slot {
        let rx = {
            let mut state = lock(&self.inner.state);
            let k = state
                .keys
                .entry(req.key.name.clone())
                .or_insert_with(|| KeyState {
                    key: req.key.clone(),
                    owners: BTreeMap::new(),
                    grants: BTreeMap::new(),
                });
            k.key = req.key.clone();
            let owner = k
                .owners
                .entry(req.owner.clone())
                .or_insert_with(|| OwnerState {
                    token: req.token.clone(),
                    token_limit: req.token_limit,
                    waiters: VecDeque::new(),
                });
            owner.token_limit = req.token_limit;
            // Spare slots of the owner serve at once, unless others wait before it.
            if owner.waiters.is_empty() {
                if let Some(parts) = k.take_spare(&req.owner, req.n) {
                    *state
                        .stats
                        .slots_by_owner
                        .entry(req.owner.clone())
                        .or_insert(0) += u64::from(req.n);
                    return Slot {
                        inner: Arc::downgrade(&self.inner),
                        key: req.key.name,
                        parts,
                    };
                }
            }
            let (tx, rx) = oneshot::channel();
            k.owners
                .get_mut(&req.owner)
                .expect("inserted above")
                .waiters
                .push_back(Waiter { n: req.n, tx });
            if !state.driver_running {
                state.driver_running = true;
                tokio::spawn(drive(Arc::downgrade(&self.inner)));
            }
            rx
        };
        self.inner.wake.notify_one();
        match rx.await {
            Ok(slot) => slot,
            // The driver ended with the budget dropped: nothing can be accounted for.
            Err(_) => std::future::pending().await,
        }
    }

    /// Pauses the key for every replica (the tracker refused the whole key) for `for_`.
    ///
    /// # Errors
    /// The store's, when it cannot record the pause.
    pub async fn pause(&self, key: &KeyScope, for_: Duration) -> PortResult<()> {
        lock(&self.inner.state).stats.pauses += 1;
        tracing::warn!(
            key = %key.name,
            pause_ms = u64::try_from(for_.as_millis()).unwrap_or(u64::MAX),
            "the tracker refused the whole key: every replica pauses it"
        );
        self.inner.store.pause(&key.name, for_).await
    }

    /// The key's use now across every replica, per owner.
    ///
    /// # Errors
    /// The store's.
    pub async fn usage(&self, key: &KeyScope) -> PortResult<BudgetUsage> {
        self.inner.store.usage(key).await
    }

    /// This process's counters.
    pub fn stats(&self) -> BudgetStats {
        lock(&self.inner.state).stats.clone()
    }

    /// The keys this process has spent, as last configured.
    pub fn keys(&self) -> Vec<KeyScope> {
        lock(&self.inner.state)
            .keys
            .values()
            .map(|k| k.key.clone())
            .collect()
    }
}

/// What one exchange of a key needs, taken under the lock.
struct Prepared {
    exchange: BudgetExchange,
}

fn prepare(k: &mut KeyState, holder: &str, now: Instant) -> Option<Prepared> {
    // Owners with nobody waiting give their spare slots back.
    let idle: Vec<String> = k
        .owners
        .iter()
        .filter(|(_, o)| o.waiters.iter().all(|w| w.tx.is_closed()))
        .map(|(name, _)| name.clone())
        .collect();
    for name in &idle {
        for g in k.grants.values_mut().filter(|g| &g.owner == name) {
            g.spare = 0;
        }
        k.owners.remove(name);
    }
    let released: Vec<Released> = k
        .grants
        .iter()
        .filter(|(_, g)| g.spare == 0 && g.out == 0)
        .map(|(id, g)| Released {
            grant: *id,
            ago: g
                .last_end
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t)),
        })
        .collect();
    for r in &released {
        k.grants.remove(&r.grant);
    }
    let asks: Vec<SlotAsk> = k
        .owners
        .iter()
        .map(|(name, o)| {
            let waiting: u32 = o
                .waiters
                .iter()
                .filter(|w| !w.tx.is_closed())
                .map(|w| w.n)
                .sum();
            SlotAsk {
                owner: name.clone(),
                token: o.token.clone(),
                token_limit: o.token_limit,
                want: waiting.saturating_sub(k.spare_of(name)),
            }
        })
        .collect();
    // Owners that stopped waiting are told once (their demand drops to zero).
    let had_idle = !idle.is_empty();
    let mut asks = asks;
    for name in idle {
        asks.push(SlotAsk {
            owner: name,
            token: String::new(),
            token_limit: 0,
            want: 0,
        });
    }
    if released.is_empty() && asks.iter().all(|a| a.want == 0) && !had_idle {
        return None;
    }
    Some(Prepared {
        exchange: BudgetExchange {
            holder: holder.to_owned(),
            key: k.key.clone(),
            released,
            asks,
        },
    })
}

/// The driver: exchanges for every key with something to ask or release, then sleeps
/// until the next useful moment (a waiter, an ended slot, the store's hint), never less
/// than a fiftieth of a window between exchanges of a key.
async fn drive(weak: Weak<Inner>) {
    let mut last: BTreeMap<String, Instant> = BTreeMap::new();
    loop {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let now = Instant::now();
        // Which keys have work, and when each may exchange next.
        let mut due: Vec<(String, Instant)> = Vec::new();
        {
            let mut state = lock(&inner.state);
            let keys: Vec<String> = state.keys.keys().cloned().collect();
            for name in keys {
                let k = state.keys.get_mut(&name).expect("listed");
                let busy = k.owners.values().any(|o| !o.waiters.is_empty())
                    || k.grants.values().any(|g| g.out == 0);
                if !busy {
                    continue;
                }
                let min_gap = k.key.rules.window / MIN_POLL_FRACTION;
                let at = last.get(&name).map_or(now, |t| *t + min_gap);
                due.push((name, at));
            }
            if due.is_empty() {
                // Nothing waits and nothing is to release: the driver ends; the next
                // acquire starts another.
                let idle = state
                    .keys
                    .values()
                    .all(|k| k.owners.is_empty() && k.grants.is_empty());
                if idle {
                    state.driver_running = false;
                    return;
                }
            }
        }
        let next_due = due.iter().map(|(_, at)| *at).min();
        match next_due {
            Some(at) if at > now => {
                // Both waits are bounded: the driver holds the budget no longer.
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = inner.wake.notified() => {}
                }
                continue;
            }
            Some(_) => {}
            None => {
                // Slots in flight: wait for one to end (or a new waiter).
                let any_window = {
                    let state = lock(&inner.state);
                    state
                        .keys
                        .values()
                        .map(|k| k.key.rules.window / MAX_POLL_FRACTION)
                        .min()
                        .unwrap_or(Duration::from_secs(1))
                };
                tokio::select! {
                    () = tokio::time::sleep(any_window) => {}
                    () = inner.wake.notified() => {}
                }
                continue;
            }
        }
        let mut sleep_for: Option<Duration> = None;
        for (name, at) in due {
            if at > now {
                continue;
            }
            last.insert(name.clone(), now);
            let prepared = {
                let mut state = lock(&inner.state);
                let mut stats = std::mem::take(&mut state.stats);
                let prepared = state.keys.get_mut(&name).and_then(|k| {
                    // Spare slots first: what the owners already hold needs no exchange.
                    k.serve(&inner, &mut stats);
                    prepare(k, &inner.holder, now)
                });
                state.stats = stats;
                prepared
            };
            let Some(p) = prepared else {
                let gap = {
                    let state = lock(&inner.state);
                    state.keys.get(&name).map_or(Duration::from_millis(1), |k| {
                        k.key.rules.window / MIN_POLL_FRACTION
                    })
                };
                sleep_for = Some(sleep_for.map_or(gap, |s| s.min(gap)));
                continue;
            };
            let window = p.exchange.key.rules.window;
            let result = inner.store.exchange(&p.exchange).await;
            let mut state = lock(&inner.state);
            state.stats.exchanges += 1;
            let answer = match result {
                Ok(a) => a,
                Err(e) => {
                    state.stats.failed_exchanges += 1;
                    tracing::warn!(key = %name, error = %e, "cannot reach the shared request budget; requests wait");
                    // Nothing was released: the grants are released at the next exchange.
                    if let Some(k) = state.keys.get_mut(&name) {
                        for r in &p.exchange.released {
                            k.grants.insert(
                                r.grant,
                                GrantState {
                                    owner: String::new(),
                                    spare: 0,
                                    out: 0,
                                    last_end: Instant::now().checked_sub(r.ago),
                                },
                            );
                        }
                    }
                    let retry = window / MAX_POLL_FRACTION;
                    sleep_for = Some(sleep_for.map_or(retry, |s| s.min(retry)));
                    continue;
                }
            };
            let mut stats = std::mem::take(&mut state.stats);
            if let Some(k) = state.keys.get_mut(&name) {
                for (g, ask) in answer.grants.iter().zip(&p.exchange.asks) {
                    if let (Some(id), true) = (g.grant, g.n > 0) {
                        k.grants.insert(
                            id,
                            GrantState {
                                owner: ask.owner.clone(),
                                spare: g.n,
                                out: 0,
                                last_end: None,
                            },
                        );
                    }
                }
                k.serve(&inner, &mut stats);
                let still_waiting = k.owners.values().any(|o| !o.waiters.is_empty());
                if still_waiting {
                    let hint = answer
                        .paused_for
                        .or(answer.retry_in)
                        .unwrap_or(window / MIN_POLL_FRACTION)
                        .clamp(window / MIN_POLL_FRACTION, window / MAX_POLL_FRACTION);
                    let hint = answer.paused_for.map_or(hint, |p| p.max(hint));
                    sleep_for = Some(sleep_for.map_or(hint, |s| s.min(hint)));
                }
            }
            state.stats = stats;
        }
        drop(inner);
        if let Some(d) = sleep_for {
            tokio::time::sleep(d).await;
        }
    }
}

#[cfg(test)]
mod tests;
