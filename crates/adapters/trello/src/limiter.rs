//! Client-side rate limiting: sliding windows per token, per API key (shared by every
//! adapter of the process that uses the key) and for `/1/members/{id}` (FACTS.md §9).
//!
//! A window admits a request when fewer than `limit` requests were stamped in the last
//! `window + safety margin`; it never admits more than `limit` in any such span, so a
//! server counting the same requests over `window` never sees more than `limit`.
//! Trello's `x-rate-limit-*` headers correct the windows (see [`Window::observe`]),
//! within bounds: a server cannot announce a window longer than [`DOCUMENTED_WINDOW`]
//! (or the configured one, if longer), nor more remaining requests than its limit.
//!
//! The clock is tokio's (the same as `std`'s outside tests), so tests can pause it.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use webriskops_domain::{ApiKey, Token};

use crate::config::RateLimits;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Trello's documented rate-limit window for tokens and keys: `x-rate-limit-api-*-
/// interval-ms` is 10000 (FACTS.md §9, developer.atlassian.com/cloud/trello/guides/rest-api/rate-limits).
/// An announced interval is never taken beyond this (or the configured window, when
/// the operator configured a longer one): one answer announcing 2^64−1 ms would
/// otherwise stop every later request.
pub const DOCUMENTED_WINDOW: Duration = Duration::from_secs(10);

/// The longest window headers may set for a window configured as `configured`.
pub(crate) fn window_cap(configured: Duration) -> Duration {
    DOCUMENTED_WINDOW.max(configured)
}

/// A header value the limiter did not take as announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Clamped {
    /// `interval-ms` or `remaining`.
    pub what: &'static str,
    pub announced: u64,
    pub used: u64,
}

/// One sliding window.
#[derive(Debug)]
pub(crate) struct Window {
    configured_limit: u32,
    limit: u32,
    configured_window: Duration,
    window: Duration,
    margin: Duration,
    stamps: VecDeque<Instant>,
}

impl Window {
    pub(crate) fn new(limit: u32, window: Duration, margin: Duration) -> Self {
        let limit = limit.max(1);
        Window {
            configured_limit: limit,
            limit,
            configured_window: window,
            window,
            margin,
            stamps: VecDeque::new(),
        }
    }

    fn span(&self) -> Duration {
        self.window.saturating_add(self.margin)
    }

    /// Forgets stamps older than two spans: one span counts, the second is kept so a
    /// late answer can be compared with the window as it was when its request left.
    fn prune(&mut self, now: Instant) {
        let keep = self.span().saturating_mul(2);
        while self
            .stamps
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= keep)
        {
            self.stamps.pop_front();
        }
    }

    /// Index of the first stamp counted at `at` (stamps are in time order).
    fn first_counted(&self, at: Instant) -> usize {
        let span = self.span();
        self.stamps
            .partition_point(|t| at.saturating_duration_since(*t) >= span)
    }

    /// Requests counted in the window now.
    pub(crate) fn used(&mut self, now: Instant) -> u32 {
        self.prune(now);
        let upto = self.stamps.partition_point(|t| *t <= now);
        u32::try_from(upto.saturating_sub(self.first_counted(now))).unwrap_or(u32::MAX)
    }

    pub(crate) fn limit(&self) -> u32 {
        self.limit
    }

    /// How long until `n` more requests fit; `None` when they fit now.
    fn wait(&mut self, n: u32, now: Instant) -> Option<Duration> {
        self.prune(now);
        let first = self.first_counted(now);
        let len = self.stamps.len() - first;
        let n = n as usize;
        if len + n <= self.limit as usize || len == 0 {
            return None;
        }
        let excess = (len + n - self.limit as usize).min(len);
        let oldest_to_go = self.stamps[first + excess - 1];
        Some(
            oldest_to_go
                .checked_add(self.span())
                .map_or(Duration::MAX, |free| free.saturating_duration_since(now)),
        )
    }

    /// Counts `n` requests at `now` (or at the latest stamp, if a concurrent caller
    /// stamped later: stamps stay in time order, and later is the safe side).
    fn take(&mut self, n: u32, now: Instant) {
        let at = self.stamps.back().map_or(now, |b| (*b).max(now));
        for _ in 0..n {
            self.stamps.push_back(at);
        }
    }

    /// Corrects the window with what the server announced: the smaller limit and the
    /// longer window of configured and announced values. An interval longer than
    /// [`window_cap`] is taken as the cap and a `remaining` above the announced limit as
    /// that limit; what was changed is returned, for the caller to log.
    ///
    /// `remaining` was computed when the server admitted the request stamped here at
    /// `sent_at`. The server then counted the requests of its last window; this window
    /// held the same requests at `sent_at`, plus those sent up to a safety margin later
    /// (which may have overtaken this one on the way). When the server counted more, the
    /// difference is someone else's (another process on the same token or key) and is
    /// counted from `sent_at`, so it expires when the server forgets it.
    pub(crate) fn observe(
        &mut self,
        max: Option<u32>,
        interval: Option<Duration>,
        remaining: Option<u32>,
        sent_at: Instant,
        now: Instant,
    ) -> Vec<Clamped> {
        let mut clamped = Vec::new();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if let Some(m) = max.filter(|m| *m > 0) {
            self.limit = self.configured_limit.min(m);
        }
        if let Some(i) = interval.filter(|i| !i.is_zero()) {
            let cap = window_cap(self.configured_window);
            if i > cap {
                clamped.push(Clamped {
                    what: "interval-ms",
                    announced: ms(i),
                    used: ms(cap),
                });
            }
            self.window = self.configured_window.max(i.min(cap));
        }
        let Some(mut r) = remaining else {
            return clamped;
        };
        let announced_limit = max.filter(|m| *m > 0).unwrap_or(self.limit);
        if r > announced_limit {
            clamped.push(Clamped {
                what: "remaining",
                announced: u64::from(r),
                used: u64::from(announced_limit),
            });
            r = announced_limit;
        }
        self.prune(now);
        if now.saturating_duration_since(sent_at) >= self.span() {
            return clamped;
        }
        let server_used = max.unwrap_or(self.limit).saturating_sub(r).min(self.limit) as usize;
        let horizon = sent_at + self.margin;
        let upto = self.stamps.partition_point(|t| *t <= horizon);
        let ours = upto.saturating_sub(self.first_counted(sent_at));
        if server_used > ours {
            let at = self.stamps.partition_point(|t| *t <= sent_at);
            for _ in 0..(server_used - ours) {
                self.stamps.insert(at, sent_at);
            }
        }
        clamped
    }

    /// Marks the window as full from now (the server refused with 429 and sent no
    /// usable headers).
    pub(crate) fn fill(&mut self, now: Instant) {
        let ours = self.used(now);
        if ours < self.limit {
            self.take(self.limit - ours, now);
        }
    }

    fn merge_config(&mut self, limit: u32, window: Duration, margin: Duration) {
        self.configured_limit = self.configured_limit.min(limit.max(1));
        self.limit = self.limit.min(self.configured_limit);
        self.configured_window = self.configured_window.max(window);
        self.window = self.window.max(self.configured_window);
        self.margin = self.margin.max(margin);
    }
}

/// The request budget of one API key, shared by every adapter in the process that uses
/// the key, whatever its token: Trello allows 300 requests per 10 s per key across all
/// tokens (FACTS.md §9). Obtain it with [`KeyBudget::shared`].
#[derive(Debug)]
pub struct KeyBudget {
    hint: String,
    window: Mutex<Window>,
}

static KEY_BUDGETS: OnceLock<Mutex<HashMap<String, Arc<KeyBudget>>>> = OnceLock::new();

impl KeyBudget {
    /// The process-wide budget of `key`. The first caller's limits create it; later
    /// callers with other limits make it stricter (smaller limit, longer window),
    /// never looser.
    pub fn shared(key: &ApiKey, limits: &RateLimits) -> Arc<KeyBudget> {
        let map = KEY_BUDGETS.get_or_init(|| Mutex::new(HashMap::new()));
        let mut map = lock(map);
        let entry = map.entry(key.expose().to_owned()).or_insert_with(|| {
            Arc::new(KeyBudget {
                hint: key.hint(),
                window: Mutex::new(Window::new(
                    limits.key_limit,
                    limits.window(),
                    limits.safety_margin(),
                )),
            })
        });
        lock(&entry.window).merge_config(limits.key_limit, limits.window(), limits.safety_margin());
        entry.clone()
    }

    /// Requests of the key counted in the current window.
    pub fn used(&self) -> u32 {
        lock(&self.window).used(Instant::now())
    }

    /// The key's current limit per window.
    pub fn limit(&self) -> u32 {
        lock(&self.window).limit()
    }

    /// How long until one more request of the key fits (zero when it fits now).
    pub fn wait_for_one(&self) -> Duration {
        lock(&self.window)
            .wait(1, Instant::now())
            .unwrap_or(Duration::ZERO)
    }

    /// The key as shown in messages (last four characters).
    pub fn key_hint(&self) -> &str {
        &self.hint
    }

    pub(crate) fn window(&self) -> &Mutex<Window> {
        &self.window
    }
}

/// The budget of one token (its main window and its `/1/members` window), shared by
/// every adapter of the process using the same key and token.
#[derive(Debug)]
pub(crate) struct TokenBudget {
    pub(crate) window: Mutex<Window>,
    pub(crate) members: Mutex<Window>,
}

static TOKEN_BUDGETS: OnceLock<Mutex<HashMap<u64, Arc<TokenBudget>>>> = OnceLock::new();

impl TokenBudget {
    /// Keyed by a hash of key and token, so the token itself is not kept here.
    pub(crate) fn shared(key: &ApiKey, token: &Token, limits: &RateLimits) -> Arc<TokenBudget> {
        let mut h = DefaultHasher::new();
        key.expose().hash(&mut h);
        token.expose().hash(&mut h);
        let id = h.finish();
        let map = TOKEN_BUDGETS.get_or_init(|| Mutex::new(HashMap::new()));
        let mut map = lock(map);
        let entry = map.entry(id).or_insert_with(|| {
            Arc::new(TokenBudget {
                window: Mutex::new(Window::new(
                    limits.token_limit,
                    limits.window(),
                    limits.safety_margin(),
                )),
                members: Mutex::new(Window::new(
                    limits.members_limit,
                    limits.members_window(),
                    limits.safety_margin(),
                )),
            })
        });
        lock(&entry.window).merge_config(
            limits.token_limit,
            limits.window(),
            limits.safety_margin(),
        );
        lock(&entry.members).merge_config(
            limits.members_limit,
            limits.members_window(),
            limits.safety_margin(),
        );
        entry.clone()
    }
}

/// Waits until `n` requests fit in the token and key windows (and one in the members
/// window when `members` is set), then counts them. Returns the time waited.
pub(crate) async fn acquire(
    token: &TokenBudget,
    key: Option<&KeyBudget>,
    n: u32,
    members: bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let now = Instant::now();
        let wait = {
            // Always the same lock order: token, members, key.
            let mut t = lock(&token.window);
            let mut m = lock(&token.members);
            let mut k = key.map(|k| lock(k.window()));
            let waits = [
                t.wait(n, now),
                if members { m.wait(1, now) } else { None },
                k.as_mut().and_then(|k| k.wait(n, now)),
            ];
            match waits.into_iter().flatten().max() {
                None => {
                    t.take(n, now);
                    if members {
                        m.take(1, now);
                    }
                    if let Some(k) = k.as_mut() {
                        k.take(n, now);
                    }
                    return start.elapsed();
                }
                Some(w) => w,
            }
        };
        tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn window_never_admits_more_than_limit_per_span() {
        let mut w = Window::new(3, 100 * MS, 10 * MS);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(w.wait(1, t0).is_none());
            w.take(1, t0);
        }
        assert_eq!(w.wait(1, t0), Some(110 * MS));
        assert_eq!(w.wait(1, t0 + 50 * MS), Some(60 * MS));
        assert!(w.wait(1, t0 + 110 * MS).is_none());
        assert!(w.wait(3, t0 + 110 * MS).is_none());
    }

    #[test]
    fn headers_compare_with_the_window_as_it_was_when_sent() {
        let mut w = Window::new(10, 100 * MS, 5 * MS);
        let t0 = Instant::now();
        w.take(4, t0);
        let sent = t0 + 90 * MS;
        w.take(1, sent);
        // Answered 60 ms later: our first four stamps have expired by now, but the
        // server counted them when it admitted the request.
        let now = sent + 60 * MS;
        w.observe(Some(10), Some(100 * MS), Some(5), sent, now);
        assert_eq!(w.used(now), 1, "nothing foreign: no phantom requests");
        w.observe(Some(10), Some(100 * MS), Some(2), sent, now);
        assert_eq!(
            w.used(now),
            4,
            "three foreign requests counted from when it was sent"
        );
        assert_eq!(w.wait(7, now), Some(45 * MS));
    }

    #[test]
    fn batch_larger_than_limit_is_admitted_when_empty() {
        let mut w = Window::new(2, 100 * MS, MS);
        assert!(w.wait(5, Instant::now()).is_none());
    }

    #[test]
    fn headers_tighten_and_count_foreign_requests() {
        let mut w = Window::new(100, 1000 * MS, MS);
        let t0 = Instant::now();
        w.take(10, t0);
        w.observe(Some(50), Some(2000 * MS), Some(20), t0, t0);
        assert_eq!(w.limit(), 50);
        assert_eq!(w.span(), 2001 * MS);
        assert_eq!(w.used(t0), 30, "server saw 30, we saw 10: 20 foreign");
        // A looser announcement never loosens the configuration.
        w.observe(Some(500), Some(10 * MS), None, t0, t0);
        assert_eq!(w.limit(), 100);
        assert_eq!(w.span(), 1001 * MS);
        w.fill(t0);
        assert_eq!(w.used(t0), 100);
    }

    #[test]
    fn key_budget_is_shared_by_key() {
        let key = ApiKey::new("abcdefabcdefabcdefabcdefabcdef01").unwrap();
        let limits = RateLimits::default();
        let a = KeyBudget::shared(&key, &limits);
        let b = KeyBudget::shared(
            &key,
            &RateLimits {
                key_limit: 150,
                ..limits.clone()
            },
        );
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.limit(), 150, "the stricter limit wins");
        assert_eq!(a.key_hint(), "…ef01");
    }

    #[test]
    fn announced_windows_and_remaining_are_bounded() {
        // One hostile answer: an interval of 2^64-1 ms and nothing remaining.
        let mut w = Window::new(100, 1000 * MS, 10 * MS);
        let t0 = Instant::now();
        w.take(1, t0);
        let clamped = w.observe(
            Some(100),
            Some(Duration::from_millis(u64::MAX)),
            Some(0),
            t0,
            t0,
        );
        assert_eq!(
            clamped,
            vec![Clamped {
                what: "interval-ms",
                announced: u64::MAX,
                used: 10_000,
            }]
        );
        assert_eq!(w.span(), DOCUMENTED_WINDOW + 10 * MS);
        assert_eq!(
            w.wait(1, t0),
            Some(DOCUMENTED_WINDOW + 10 * MS),
            "the next request waits one documented window at most, not forever"
        );
        assert!(w.wait(1, t0 + DOCUMENTED_WINDOW + 10 * MS).is_none());

        // More remaining than the limit counts as nothing used, and is reported.
        let mut w = Window::new(100, 1000 * MS, 10 * MS);
        let clamped = w.observe(Some(100), None, Some(u32::MAX), t0, t0);
        assert_eq!(clamped[0].what, "remaining");
        assert_eq!(clamped[0].used, 100);
        assert_eq!(w.used(t0), 0);

        // An operator's longer window stays the cap.
        let mut w = Window::new(100, 60_000 * MS, 10 * MS);
        let clamped = w.observe(None, Some(120_000 * MS), None, t0, t0);
        assert_eq!(clamped[0].used, 60_000);
        assert_eq!(w.span(), 60_010 * MS);
    }

    /// Paused time: the clock moves only when every task waits, so the waits are exact
    /// and nothing depends on how fast the machine is.
    #[tokio::test(start_paused = true)]
    async fn acquire_waits_for_the_shared_key_window() {
        let key = ApiKey::new("abcdefabcdefabcdefabcdefabcdef02").unwrap();
        let limits = RateLimits {
            token_limit: 10,
            key_limit: 4,
            window_ms: 100,
            safety_margin_ms: 5,
            ..RateLimits::default()
        };
        let kb = KeyBudget::shared(&key, &limits);
        let t1 = TokenBudget::shared(&key, &Token::new("one1").unwrap(), &limits);
        let t2 = TokenBudget::shared(&key, &Token::new("two2").unwrap(), &limits);
        let start = Instant::now();
        for _ in 0..2 {
            assert_eq!(acquire(&t1, Some(&kb), 1, false).await, Duration::ZERO);
            assert_eq!(acquire(&t2, Some(&kb), 1, false).await, Duration::ZERO);
        }
        assert_eq!(kb.used(), 4);
        assert_eq!(kb.wait_for_one(), 105 * MS);
        let waited = acquire(&t1, Some(&kb), 1, false).await;
        assert_eq!(
            waited,
            105 * MS,
            "the fifth request waits for the key window (window + margin), though its token has room"
        );
        assert_eq!(start.elapsed(), 105 * MS);
    }
}
