//! Request budgets that several processes share: a tracker's per-key window (Trello: 300
//! requests per 10 s for every customer of the application key together) and each
//! owner's own window within it (Trello: 100 per 10 s per token).
//!
//! A store keeps the grants, so that replicas on any number of machines spend one budget:
//! each process asks in one round trip ([`RequestBudgets::exchange`]) for slots for the
//! owners waiting in it, says which of its earlier grants' requests have ended, and tells
//! what its owners still wait for, so that every replica keeps a fair share free for them
//! (the split is the domain's [`webriskops_domain::allot`]). [`MemoryBudgets`] is the
//! in-process store of the same rules, for one process and for tests.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use webriskops_domain::{allot, usage_by_owner, GrantRow, OwnerAsk, SlotRules, Waiting};

use crate::PortResult;

/// The budget of one key: its store name (a digest, never the key), its limit per window
/// and how long slots count ([`SlotRules`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyScope {
    pub name: String,
    pub limit: u32,
    pub rules: SlotRules,
}

/// Slots for one owner, which also spend the owner's `token` budget (a digest name) of
/// `token_limit` per window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotAsk {
    pub owner: String,
    pub token: String,
    pub token_limit: u32,
    pub want: u32,
}

/// A grant whose requests have all ended, `ago` before the exchange that says so (the
/// store dates the end on its own clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    pub grant: i64,
    pub ago: Duration,
}

/// One round trip of a process (`holder`) with the store for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetExchange {
    pub holder: String,
    pub key: KeyScope,
    pub released: Vec<Released>,
    /// At most one ask per owner.
    pub asks: Vec<SlotAsk>,
}

/// Slots granted to one ask (`grant` is `None` when `n` is 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotGrant {
    pub grant: Option<i64>,
    pub n: u32,
}

/// The store's answer to an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetAnswer {
    /// One per ask, in order.
    pub grants: Vec<SlotGrant>,
    /// When asking again may give more, if some ask was left short.
    pub retry_in: Option<Duration>,
    /// The key is paused (the tracker refused the whole key) for this long more.
    pub paused_for: Option<Duration>,
}

/// One owner's use of a key in the current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerUsage {
    pub owner: String,
    pub used: u32,
    pub waiting: u32,
}

/// A key's use in the current window, for status pages and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BudgetUsage {
    pub limit: u32,
    pub used: u32,
    pub paused_for: Option<Duration>,
    pub owners: Vec<OwnerUsage>,
}

/// One owner's view of a key's use: the key's totals and its own part, never another
/// owner's name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OwnerView {
    pub limit: u32,
    pub used: u32,
    pub paused_for_ms: Option<u64>,
    /// Owners using the key in this window or waiting for it (this one included).
    pub owners_active: u32,
    /// This owner's slots in the window, and what it waits for.
    pub owner_used: u32,
    pub owner_waiting: u32,
    /// The equal share of the key each active owner is sure of (limit ÷ active owners).
    pub fair_share: u32,
}

impl BudgetUsage {
    /// What `owner` may see of the key's use.
    #[must_use]
    pub fn view_of(&self, owner: &str) -> OwnerView {
        let mine = self.owners.iter().find(|o| o.owner == owner);
        let active = self
            .owners
            .iter()
            .filter(|o| o.used > 0 || o.waiting > 0)
            .count();
        let active = u32::try_from(active).unwrap_or(u32::MAX);
        let counted = active + u32::from(mine.is_none_or(|m| m.used == 0 && m.waiting == 0));
        OwnerView {
            limit: self.limit,
            used: self.used,
            paused_for_ms: self
                .paused_for
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            owners_active: active,
            owner_used: mine.map_or(0, |m| m.used),
            owner_waiting: mine.map_or(0, |m| m.waiting),
            fair_share: self.limit / counted.max(1),
        }
    }
}

/// The store of shared request budgets.
#[async_trait]
pub trait RequestBudgets: Send + Sync + std::fmt::Debug {
    /// Releases the exchange's ended grants, records what its owners wait for, and grants
    /// what the key, each token and the fair split allow, all at once; nothing while the
    /// key is paused.
    async fn exchange(&self, x: &BudgetExchange) -> PortResult<BudgetAnswer>;

    /// Pauses every grant of the key `scope` for `for_` (extends, never shortens, a pause).
    async fn pause(&self, scope: &str, for_: Duration) -> PortResult<()>;

    /// The key's use now, per owner.
    async fn usage(&self, key: &KeyScope) -> PortResult<BudgetUsage>;
}

/// How long an owner's recorded demand is believed without being renewed: holders renew
/// it at each exchange, at least every [`MAX_POLL_FRACTION`] of a window while waiting.
#[must_use]
pub fn demand_lifetime(window: Duration) -> Duration {
    window / MAX_POLL_FRACTION * 3
}

/// A waiting holder asks again at least every window ÷ this.
pub const MAX_POLL_FRACTION: u32 = 10;

/// The part of an exchange every store does the same way once it holds the key's rows:
/// decide with [`allot`] and say what to record. `demand` holds the other holders' live
/// demand (this holder's own is replaced by the exchange's).
#[must_use]
pub fn decide(
    x: &BudgetExchange,
    rows: &[GrantRow],
    others: &[Waiting],
    paused_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Decision {
    if let Some(until) = paused_until.filter(|u| *u > now) {
        let left = (until - now).to_std().unwrap_or(Duration::ZERO);
        return Decision {
            answer: BudgetAnswer {
                grants: x
                    .asks
                    .iter()
                    .map(|_| SlotGrant { grant: None, n: 0 })
                    .collect(),
                retry_in: Some(left),
                paused_for: Some(left),
            },
            waiting: x.asks.iter().map(|a| (a.owner.clone(), a.want)).collect(),
        };
    }
    let asks: Vec<OwnerAsk> = x
        .asks
        .iter()
        .map(|a| OwnerAsk {
            owner: a.owner.clone(),
            token: a.token.clone(),
            token_limit: a.token_limit,
            want: a.want,
        })
        .collect();
    let a = allot(rows, others, &asks, x.key.limit, &x.key.rules, now);
    Decision {
        answer: BudgetAnswer {
            grants: a
                .granted
                .iter()
                .map(|n| SlotGrant { grant: None, n: *n })
                .collect(),
            retry_in: a.retry_in,
            paused_for: None,
        },
        waiting: x
            .asks
            .iter()
            .zip(&a.still_waiting)
            .map(|(ask, w)| (ask.owner.clone(), *w))
            .collect(),
    }
}

/// What a store records and answers after [`decide`]; the store fills in the grant ids
/// of the non-zero grants as it inserts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub answer: BudgetAnswer,
    /// This holder's demand per owner after the exchange.
    pub waiting: Vec<(String, u32)>,
}

/// A key's usage from its rows and live demand.
#[must_use]
pub fn usage_of(
    key: &KeyScope,
    rows: &[GrantRow],
    demand: &[Waiting],
    paused_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> BudgetUsage {
    let (used, by_owner) = usage_by_owner(rows, now, &key.rules);
    let mut owners: BTreeMap<String, OwnerUsage> = by_owner
        .into_iter()
        .map(|(owner, used)| {
            (
                owner.clone(),
                OwnerUsage {
                    owner,
                    used,
                    waiting: 0,
                },
            )
        })
        .collect();
    for w in demand {
        let e = owners.entry(w.owner.clone()).or_insert_with(|| OwnerUsage {
            owner: w.owner.clone(),
            used: 0,
            waiting: 0,
        });
        e.waiting = e.waiting.saturating_add(w.waiting);
    }
    BudgetUsage {
        limit: key.limit,
        used,
        paused_for: paused_until
            .filter(|u| *u > now)
            .map(|u| (u - now).to_std().unwrap_or(Duration::ZERO)),
        owners: owners.into_values().collect(),
    }
}

/// [`RequestBudgets`] in memory: one process's shared budgets (and the tests').
#[derive(Debug, Default)]
pub struct MemoryBudgets {
    inner: Mutex<MemoryInner>,
}

/// One key's demand: (holder, owner) → (waiting, renewed at).
type DemandOf = BTreeMap<(String, String), (u32, DateTime<Utc>)>;

#[derive(Debug, Default)]
struct MemoryInner {
    next_id: i64,
    /// Per key: grant id → row.
    grants: BTreeMap<String, BTreeMap<i64, GrantRow>>,
    /// Per key: (holder, owner) → (waiting, renewed at).
    demand: BTreeMap<String, DemandOf>,
    paused: BTreeMap<String, DateTime<Utc>>,
}

impl MemoryBudgets {
    pub fn new() -> Self {
        Self::default()
    }

    fn live_demand(
        inner: &MemoryInner,
        key: &KeyScope,
        except: Option<&str>,
        now: DateTime<Utc>,
    ) -> Vec<Waiting> {
        let life = chrono::Duration::from_std(demand_lifetime(key.rules.window))
            .unwrap_or(chrono::Duration::MAX);
        inner
            .demand
            .get(&key.name)
            .into_iter()
            .flatten()
            .filter(|((holder, _), (w, at))| {
                Some(holder.as_str()) != except && *w > 0 && *at + life > now
            })
            .map(|((_, owner), (w, _))| Waiting {
                owner: owner.clone(),
                waiting: *w,
            })
            .collect()
    }
}

fn lock(m: &Mutex<MemoryInner>) -> std::sync::MutexGuard<'_, MemoryInner> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl RequestBudgets for MemoryBudgets {
    async fn exchange(&self, x: &BudgetExchange) -> PortResult<BudgetAnswer> {
        let now = Utc::now();
        let mut inner = lock(&self.inner);
        let rows = inner.grants.entry(x.key.name.clone()).or_default();
        for r in &x.released {
            if let Some(row) = rows.get_mut(&r.grant) {
                let ago = chrono::Duration::from_std(r.ago).unwrap_or_default();
                row.done_at = Some(now - ago);
            }
        }
        rows.retain(|_, r| !r.forgettable(now, &x.key.rules));
        let current: Vec<GrantRow> = rows.values().cloned().collect();
        let others = Self::live_demand(&inner, &x.key, Some(&x.holder), now);
        let paused = inner.paused.get(&x.key.name).copied();
        let mut d = decide(x, &current, &others, paused, now);
        for (g, ask) in d.answer.grants.iter_mut().zip(&x.asks) {
            if g.n == 0 {
                continue;
            }
            inner.next_id += 1;
            let id = inner.next_id;
            g.grant = Some(id);
            inner.grants.entry(x.key.name.clone()).or_default().insert(
                id,
                GrantRow {
                    owner: ask.owner.clone(),
                    token: ask.token.clone(),
                    n: g.n,
                    granted_at: now,
                    done_at: None,
                },
            );
        }
        let demand = inner.demand.entry(x.key.name.clone()).or_default();
        for (owner, w) in d.waiting {
            demand.insert((x.holder.clone(), owner), (w, now));
        }
        Ok(d.answer)
    }

    async fn pause(&self, scope: &str, for_: Duration) -> PortResult<()> {
        let until = Utc::now() + chrono::Duration::from_std(for_).unwrap_or_default();
        let mut inner = lock(&self.inner);
        let e = inner.paused.entry(scope.to_owned()).or_insert(until);
        *e = (*e).max(until);
        Ok(())
    }

    async fn usage(&self, key: &KeyScope) -> PortResult<BudgetUsage> {
        let now = Utc::now();
        let inner = lock(&self.inner);
        let rows: Vec<GrantRow> = inner
            .grants
            .get(&key.name)
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default();
        let demand = Self::live_demand(&inner, key, None, now);
        Ok(usage_of(
            key,
            &rows,
            &demand,
            inner.paused.get(&key.name).copied(),
            now,
        ))
    }
}
