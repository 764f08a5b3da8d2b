//! Client-side rate limiting: two leaky buckets per credential, of requests and of
//! complexity points (FACTS.md "Rate limits": a leaky bucket refilled at
//! `LIMIT_AMOUNT / LIMIT_PERIOD`, counted per user). A request waits before it is sent
//! until both buckets hold what it takes: one request and the operation's complexity
//! as last reported by `X-Complexity` (or the configured estimate).
//!
//! Linear takes a request out of its bucket when it receives it, at some moment between
//! its admission here and its answer. So a request is held aside from its admission
//! until its answer (or the end of its attempt, see [`Permit`]), and only then taken
//! out of the bucket, which refills from there: at any moment the units held plus the
//! bucket's debt are at least what Linear's bucket can owe, whenever it received each
//! request (its debt over any span is at most what arrived in it minus the refill, and
//! every request that can have arrived in a span is either still held or was answered
//! within it). Nothing depends on how fast the machine is.
//!
//! The buckets are shared by every adapter of the process that uses the same secret
//! (keyed by a hash, never by the secret itself). Linear's headers correct them within
//! bounds (see [`Bucket::observe`]); a hostile value is clamped and reported, never
//! taken as announced.
//!
//! The clock is tokio's (the same as `std`'s outside tests), so tests can pause it.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use reqwest::header::HeaderMap;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::{RateLimits, MAX_QUERY_COMPLEXITY};
use crate::secret::Credential;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A header value the limiter did not take as announced, for the caller to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clamped {
    pub header: String,
    pub announced: u64,
    pub used: u64,
}

/// One leaky bucket: holds at most `capacity` units, refills continuously at
/// `capacity / period`, and a request takes units out of it.
#[derive(Debug)]
pub(crate) struct Bucket {
    configured: f64,
    capacity: f64,
    level: f64,
    /// Units of requests admitted and not yet answered: not in `level` yet, and not
    /// available.
    held: f64,
    period: Duration,
    updated: Instant,
}

impl Bucket {
    pub(crate) fn new(capacity: u32, period: Duration, now: Instant) -> Self {
        let capacity = f64::from(capacity.max(1));
        Bucket {
            configured: capacity,
            capacity,
            level: capacity,
            held: 0.0,
            period: period.max(Duration::from_millis(1)),
            updated: now,
        }
    }

    fn rate_per_sec(&self) -> f64 {
        self.capacity / self.period.as_secs_f64()
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.level = (self.level + elapsed * self.rate_per_sec()).min(self.capacity);
        self.updated = self.updated.max(now);
    }

    /// Units available now: the level less the units held by requests in flight (may be
    /// negative after an expensive request).
    #[cfg(test)]
    pub(crate) fn level(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.level - self.held
    }

    /// How long until `n` units are available; `None` when they are now. A request
    /// larger than the whole bucket is admitted when the bucket is full and nothing is
    /// in flight. When only answers can free the units (the level is full), the wait is
    /// a whole period, cut short by [`Budget`]'s notice of an answer.
    pub(crate) fn wait(&mut self, n: f64, now: Instant) -> Option<Duration> {
        self.refill(now);
        let need = n.min(self.capacity);
        if self.level - self.held >= need {
            return None;
        }
        let target = (need + self.held).min(self.capacity);
        if self.level >= target {
            return Some(self.period);
        }
        let secs = (target - self.level) / self.rate_per_sec();
        Some(Duration::try_from_secs_f64(secs).unwrap_or(self.period))
    }

    /// Takes `n` units out of the bucket now.
    pub(crate) fn take(&mut self, n: f64, now: Instant) {
        self.refill(now);
        self.level -= n;
    }

    /// Holds `n` units for a request being sent.
    fn hold(&mut self, n: f64) {
        self.held += n;
    }

    /// The request holding `n` units was answered (or its attempt ended) at `now`: they
    /// leave the bucket now, and refill from now on.
    fn release(&mut self, n: f64, now: Instant) {
        self.held = (self.held - n).max(0.0);
        self.take(n, now);
    }

    /// Gives back `n` units (a request cost less than estimated), up to the capacity.
    fn give(&mut self, n: f64, now: Instant) {
        self.refill(now);
        self.level = (self.level + n).min(self.capacity);
    }

    /// Corrects the bucket with an answer's headers: an announced limit can only lower
    /// the configured capacity, and `remaining` can only lower the level (another
    /// client of the same user spent it), after being cut to the limit. What was cut
    /// is returned.
    pub(crate) fn observe(
        &mut self,
        prefix: &str,
        limit: Option<u64>,
        remaining: Option<u64>,
        now: Instant,
    ) -> Vec<Clamped> {
        let mut clamped = Vec::new();
        self.refill(now);
        if let Some(l) = limit.filter(|l| *l > 0) {
            self.capacity = self.configured.min(l as f64);
            self.level = self.level.min(self.capacity);
        }
        if let Some(r) = remaining {
            let announced_limit = limit.filter(|l| *l > 0).unwrap_or(self.capacity as u64);
            let r = if r > announced_limit {
                clamped.push(Clamped {
                    header: format!("{prefix}-remaining"),
                    announced: r,
                    used: announced_limit,
                });
                announced_limit
            } else {
                r
            };
            self.level = self.level.min(r as f64);
        }
        clamped
    }
}

/// How long until an announced reset (UTC epoch milliseconds, FACTS.md "Rate limits"),
/// at most `cap`. A reset in the past is zero; one beyond the cap is cut to it and
/// reported.
pub(crate) fn until_reset(
    header: &str,
    reset_epoch_ms: u64,
    now_epoch_ms: u64,
    cap: Duration,
) -> (Duration, Option<Clamped>) {
    let wait = Duration::from_millis(reset_epoch_ms.saturating_sub(now_epoch_ms));
    if wait > cap {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        return (
            cap,
            Some(Clamped {
                header: header.to_owned(),
                announced: ms(wait),
                used: ms(cap),
            }),
        );
    }
    (wait, None)
}

/// The budget of one credential: its two buckets and the last reported cost of each
/// operation.
#[derive(Debug)]
pub(crate) struct Budget {
    pub(crate) requests: Mutex<Bucket>,
    pub(crate) complexity: Mutex<Bucket>,
    costs: Mutex<HashMap<&'static str, u32>>,
    initial_estimate: u32,
    /// Woken when a request releases its units (waiters blocked by requests in flight).
    answered: Notify,
}

/// A request admitted by [`Budget::acquire`]: it holds one request and its estimated
/// complexity while it lives. Dropping it (the answer was read, or the attempt failed,
/// timed out or was cancelled) takes them out of the buckets, which refill from then.
#[must_use = "the request is counted as answered when the permit is dropped"]
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    budget: &'a Budget,
    taken: u32,
    waited: Duration,
}

impl Permit<'_> {
    /// The complexity held for the request.
    pub(crate) fn taken(&self) -> u32 {
        self.taken
    }

    /// How long [`Budget::acquire`] waited for room.
    pub(crate) fn waited(&self) -> Duration {
        self.waited
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let now = Instant::now();
        // The same lock order as `acquire`: requests, then complexity.
        lock(&self.budget.requests).release(1.0, now);
        lock(&self.budget.complexity).release(f64::from(self.taken), now);
        self.budget.answered.notify_waiters();
    }
}

static BUDGETS: OnceLock<Mutex<HashMap<u64, Arc<Budget>>>> = OnceLock::new();

impl Budget {
    /// The process-wide budget of `credential`. Later callers with other limits make it
    /// stricter, never looser.
    pub(crate) fn shared(credential: &Credential, limits: &RateLimits) -> Arc<Budget> {
        let mut h = DefaultHasher::new();
        credential.secret().expose().hash(&mut h);
        let id = h.finish();
        let (req, cx) = limits.for_credential(credential);
        let now = Instant::now();
        let map = BUDGETS.get_or_init(|| Mutex::new(HashMap::new()));
        let mut map = lock(map);
        let entry = map.entry(id).or_insert_with(|| {
            Arc::new(Budget {
                requests: Mutex::new(Bucket::new(req, limits.period(), now)),
                complexity: Mutex::new(Bucket::new(cx, limits.period(), now)),
                costs: Mutex::new(HashMap::new()),
                initial_estimate: limits.initial_complexity_estimate,
                answered: Notify::new(),
            })
        });
        for (bucket, limit) in [(&entry.requests, req), (&entry.complexity, cx)] {
            let mut b = lock(bucket);
            b.configured = b.configured.min(f64::from(limit.max(1)));
            b.capacity = b.capacity.min(b.configured);
            b.level = b.level.min(b.capacity);
            b.period = b.period.max(limits.period());
        }
        entry.clone()
    }

    /// A budget of its own (tests).
    #[cfg(test)]
    pub(crate) fn private(requests: u32, complexity: u32, period: Duration) -> Budget {
        let now = Instant::now();
        Budget {
            requests: Mutex::new(Bucket::new(requests, period, now)),
            complexity: Mutex::new(Bucket::new(complexity, period, now)),
            costs: Mutex::new(HashMap::new()),
            initial_estimate: 1_000,
            answered: Notify::new(),
        }
    }

    /// The complexity `op` is expected to cost.
    pub(crate) fn estimate(&self, op: &'static str) -> u32 {
        lock(&self.costs)
            .get(op)
            .copied()
            .unwrap_or(self.initial_estimate)
    }

    /// Waits until one request and `op`'s estimated complexity fit, and holds them
    /// until the returned permit is dropped.
    pub(crate) async fn acquire(&self, op: &'static str) -> Permit<'_> {
        let start = Instant::now();
        let cost = self.estimate(op);
        loop {
            // Registered before looking, so an answer arriving meanwhile is not missed.
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let now = Instant::now();
            let wait = {
                // Always the same lock order: requests, then complexity.
                let mut r = lock(&self.requests);
                let mut c = lock(&self.complexity);
                match [r.wait(1.0, now), c.wait(f64::from(cost), now)]
                    .into_iter()
                    .flatten()
                    .max()
                {
                    None => {
                        r.hold(1.0);
                        c.hold(f64::from(cost));
                        return Permit {
                            budget: self,
                            taken: cost,
                            waited: now.saturating_duration_since(start),
                        };
                    }
                    Some(w) => w,
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait.max(Duration::from_millis(1))) => {}
                () = answered => {}
            }
        }
    }

    /// Records what a request really cost (`X-Complexity`, clamped to Linear's
    /// per-query maximum) and settles the difference with what was taken.
    pub(crate) fn settle(&self, op: &'static str, taken: u32, actual: u32) {
        let actual = actual.min(MAX_QUERY_COMPLEXITY);
        lock(&self.costs).insert(op, actual.max(1));
        let now = Instant::now();
        let mut c = lock(&self.complexity);
        if actual > taken {
            c.take(f64::from(actual - taken), now);
        } else {
            c.give(f64::from(taken - actual), now);
        }
    }

    /// Applies an answer's `X-RateLimit-{Requests,Complexity}-{Limit,Remaining}`
    /// headers; returns what was clamped.
    pub(crate) fn observe(&self, h: &HeaderMap) -> Vec<Clamped> {
        let now = Instant::now();
        let mut clamped = lock(&self.requests).observe(
            "x-ratelimit-requests",
            header_u64(h, "x-ratelimit-requests-limit"),
            header_u64(h, "x-ratelimit-requests-remaining"),
            now,
        );
        clamped.extend(lock(&self.complexity).observe(
            "x-ratelimit-complexity",
            header_u64(h, "x-ratelimit-complexity-limit"),
            header_u64(h, "x-ratelimit-complexity-remaining"),
            now,
        ));
        clamped
    }

    /// Empties both buckets' levels to zero (Linear answered RATELIMITED without usable
    /// headers): the next request waits for a refill.
    pub(crate) fn drain(&self) {
        let now = Instant::now();
        for b in [&self.requests, &self.complexity] {
            let mut b = lock(b);
            b.refill(now);
            let level = b.level;
            if level > 0.0 {
                b.take(level, now);
            }
        }
    }
}

/// A header as an unsigned integer; anything else (negative, text, overflow) is absent.
pub(crate) fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_bucket_refills_at_limit_per_period() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10, 1000 * MS, t0);
        for _ in 0..10 {
            assert!(b.wait(1.0, t0).is_none());
            b.take(1.0, t0);
        }
        assert_eq!(b.wait(1.0, t0), Some(100 * MS), "one unit per 100 ms");
        assert!(b.wait(1.0, t0 + 100 * MS).is_none());
        // Larger than the bucket: admitted once full, never refused forever.
        let mut b = Bucket::new(10, 1000 * MS, t0);
        assert!(b.wait(50.0, t0).is_none());
    }

    #[test]
    fn headers_only_tighten_and_hostile_values_are_clamped() {
        let t0 = Instant::now();
        let mut b = Bucket::new(100, 1000 * MS, t0);
        assert!(b.observe("x", Some(50), Some(20), t0).is_empty());
        assert_eq!(b.capacity, 50.0);
        assert_eq!(b.level(t0), 20.0, "another client spent 30");
        // A looser announcement never loosens the configuration.
        b.observe("x", Some(1_000_000), None, t0);
        assert_eq!(b.capacity, 100.0);
        // More remaining than the limit: cut to the limit, reported, never raises the level.
        let c = b.observe("x-ratelimit-requests", Some(100), Some(u64::MAX), t0);
        assert_eq!(
            c,
            vec![Clamped {
                header: "x-ratelimit-requests-remaining".into(),
                announced: u64::MAX,
                used: 100
            }]
        );
        assert_eq!(b.level(t0), 20.0);
        // Nothing remaining: the next request waits one unit's refill, not an hour.
        b.observe("x", Some(100), Some(0), t0);
        assert_eq!(b.wait(1.0, t0), Some(10 * MS));
    }

    #[test]
    fn resets_are_epoch_milliseconds_and_capped() {
        let hour = Duration::from_secs(3600);
        let now = 1_780_000_000_000;
        assert_eq!(until_reset("r", now + 1500, now, hour).0, 1500 * MS);
        assert_eq!(until_reset("r", now - 5, now, hour).0, Duration::ZERO);
        let (w, c) = until_reset("x-ratelimit-requests-reset", u64::MAX, now, hour);
        assert_eq!(w, hour);
        assert_eq!(c.unwrap().used, 3_600_000);
    }

    #[test]
    fn settle_learns_the_cost_and_clamps_it() {
        let b = Budget::private(10, 100_000, 1000 * MS);
        assert_eq!(b.estimate("Teams"), 1_000);
        b.settle("Teams", 1_000, 12);
        assert_eq!(b.estimate("Teams"), 12);
        b.settle("Teams", 12, u32::MAX);
        assert_eq!(b.estimate("Teams"), MAX_QUERY_COMPLEXITY);
    }

    /// Paused time: the clock moves only when every task waits, so waits are exact.
    #[tokio::test(start_paused = true)]
    async fn acquire_waits_for_the_emptier_bucket() {
        let b = Budget::private(2, 1_500, 1500 * MS);
        assert_eq!(b.acquire("Teams").await.waited(), Duration::ZERO);
        // Complexity: 500 left of 1 500, the next 1 000 needs 500 more at 1 per ms,
        // while the request bucket still has room.
        let second = b.acquire("Teams").await;
        assert_eq!(second.taken(), 1_000);
        assert_eq!(second.waited(), 500 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_refills_nothing_until_answered() {
        // One request per 100 ms; the first answer takes 300 ms, so Linear may take
        // it out of its bucket as late as then, and refill it 100 ms after.
        let b = Budget::private(1, 100_000, 100 * MS);
        let start = Instant::now();
        let first = b.acquire("Teams").await;
        let (_, second) = tokio::join!(
            async {
                tokio::time::sleep(300 * MS).await;
                drop(first);
            },
            async { b.acquire("Teams").await.waited() }
        );
        assert_eq!(second, 400 * MS);
        assert_eq!(start.elapsed(), 400 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_attempt_releases_its_units_when_dropped() {
        let b = Budget::private(1, 100_000, 100 * MS);
        let start = Instant::now();
        let cut = tokio::time::timeout(50 * MS, async {
            let _held = b.acquire("Teams").await;
            std::future::pending::<()>().await;
        })
        .await;
        assert!(cut.is_err());
        let next = b.acquire("Teams").await;
        assert_eq!(start.elapsed(), 150 * MS);
        drop(next);
    }

    /// Requests answered instantly or up to three periods late, at random: whenever
    /// Linear receives each (any moment between admission and answer), its bucket
    /// never goes below zero. The worst case for a moment `t` is, for some `s`, every
    /// request admitted by `t` and answered after `s` arriving in `(s, t]`.
    #[tokio::test(start_paused = true)]
    async fn no_arrival_time_overdraws_the_bucket() {
        let limit = 5u32;
        let period = 100 * MS;
        let b = Arc::new(Budget::private(limit, 1_000_000, period));
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let plan: Vec<(Duration, Duration)> = (0..200)
            .map(|_| {
                let start = Duration::from_millis(next() % 3000);
                let latency = Duration::from_millis(match next() % 4 {
                    0 => 0,
                    1 => next() % 20,
                    2 => next() % 100,
                    _ => next() % 300,
                });
                (start, latency)
            })
            .collect();
        let tasks: Vec<_> = plan
            .into_iter()
            .map(|(start, latency)| {
                let b = b.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(start).await;
                    let held = b.acquire("Teams").await;
                    let admitted = Instant::now();
                    tokio::time::sleep(latency).await;
                    drop(held);
                    (admitted, Instant::now())
                })
            })
            .collect();
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap());
        }
        let rate = f64::from(limit) / period.as_secs_f64();
        for (t, _) in &done {
            for (_, s) in done.iter().chain([&(*t, *t)]) {
                if s > t {
                    continue;
                }
                let arrived = done.iter().filter(|(a, c)| a <= t && c >= s).count() as f64;
                let refilled = rate * (*t - *s).as_secs_f64();
                assert!(
                    arrived - refilled <= f64::from(limit) + 1e-6,
                    "{arrived} requests can have arrived in a span refilling {refilled}"
                );
            }
        }
    }
}
