//! Client-side rate limiting: sliding windows per token, per API key (shared by every
//! adapter of the process that uses the key) and for `/1/members/{id}` (FACTS.md §9).
//!
//! A request holds its place in a window from its admission until `window + safety
//! margin` after its answer was read (or its attempt ended in any other way: see
//! [`Permit`]); a window admits a request while fewer than `limit` places are held.
//! The server counts a request when it receives it, at some moment `s` between its
//! admission and its answer, and forgets it at `s + window`; the place is held at least
//! that long, however late the request left this process. So for any window of the
//! server's, the requests it counts all held their places when the last of them was
//! admitted, and there were at most `limit` of them. The margin only absorbs clock
//! granularity; nothing depends on how fast the machine is.
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

/// One request (or a `/batch` of `n`) in a window: counted from its admission until
/// one span after its answer (`done`), and for as long as it is in flight.
#[derive(Debug, Clone, Copy)]
struct Entry {
    id: u64,
    sent: Instant,
    done: Option<Instant>,
    n: u32,
}

impl Entry {
    /// How long after `now` the entry stops being counted: one span after its answer;
    /// an entry still in flight at `now` cannot stop before `now + span`.
    fn expires_in(&self, span: Duration, now: Instant) -> Duration {
        let from = self.done.unwrap_or(now);
        if from >= now {
            span.saturating_add(from - now)
        } else {
            span.saturating_sub(now - from)
        }
    }

    fn counted_at(&self, span: Duration, at: Instant) -> bool {
        self.sent <= at
            && self
                .done
                .is_none_or(|d| at.saturating_duration_since(d) < span)
    }
}

/// One sliding window.
#[derive(Debug)]
pub(crate) struct Window {
    configured_limit: u32,
    limit: u32,
    configured_window: Duration,
    window: Duration,
    margin: Duration,
    entries: VecDeque<Entry>,
    next_id: u64,
}

/// The id of an entry someone else's (phantom) requests: never finished by a permit.
const FOREIGN: u64 = 0;

impl Window {
    pub(crate) fn new(limit: u32, window: Duration, margin: Duration) -> Self {
        let limit = limit.max(1);
        Window {
            configured_limit: limit,
            limit,
            configured_window: window,
            window,
            margin,
            entries: VecDeque::new(),
            next_id: FOREIGN + 1,
        }
    }

    fn span(&self) -> Duration {
        self.window.saturating_add(self.margin)
    }

    /// Forgets entries answered more than two spans ago: one span counts, the second
    /// is kept so a late answer can be compared with the window as it was when its
    /// request left. Entries in flight are kept, so memory is bounded by the limit
    /// (what two spans can admit) plus the requests in flight.
    fn prune(&mut self, now: Instant) {
        let keep = self.span().saturating_mul(2);
        self.entries.retain(|e| {
            e.done
                .is_none_or(|d| now.saturating_duration_since(d) < keep)
        });
    }

    /// Requests counted in the window at `at`.
    fn counted(&self, at: Instant) -> u32 {
        let span = self.span();
        self.entries
            .iter()
            .filter(|e| e.counted_at(span, at))
            .fold(0u32, |acc, e| acc.saturating_add(e.n))
    }

    /// Requests counted in the window now (in flight, or answered less than a span ago).
    pub(crate) fn used(&mut self, now: Instant) -> u32 {
        self.prune(now);
        self.counted(now)
    }

    pub(crate) fn limit(&self) -> u32 {
        self.limit
    }

    /// How long until `n` more requests fit; `None` when they fit now (or when nothing
    /// is counted: a batch larger than the limit goes alone). Entries in flight expire
    /// one span after their answer, so at `now + span` at the earliest.
    fn wait(&mut self, n: u32, now: Instant) -> Option<Duration> {
        self.prune(now);
        let span = self.span();
        let mut expiries: Vec<(Duration, u32)> = self
            .entries
            .iter()
            .filter(|e| e.counted_at(span, now))
            .map(|e| (e.expires_in(span, now), e.n))
            .collect();
        let counted = expiries.iter().fold(0u32, |acc, e| acc.saturating_add(e.1));
        if counted.saturating_add(n) <= self.limit || counted == 0 {
            return None;
        }
        let mut excess = counted.saturating_add(n) - self.limit;
        expiries.sort_unstable_by_key(|e| e.0);
        let mut wait = Duration::ZERO;
        for (after, k) in expiries {
            wait = after;
            excess = excess.saturating_sub(k);
            if excess == 0 {
                break;
            }
        }
        Some(wait)
    }

    /// Counts `n` requests admitted at `now`, in flight until [`Window::finish`] is
    /// called with the returned id.
    fn take(&mut self, n: u32, now: Instant) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push_back(Entry {
            id,
            sent: now,
            done: None,
            n,
        });
        id
    }

    /// The request `id` was answered (or its attempt ended otherwise) at `at`: it stays
    /// counted for one more span, as the server may have received it just before.
    fn finish(&mut self, id: u64, at: Instant) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.id == id) {
            e.done = Some(at.max(e.sent));
        }
    }

    /// Counts `n` requests of someone else, received by the server at `at`.
    fn foreign(&mut self, n: u32, at: Instant) {
        self.entries.push_back(Entry {
            id: FOREIGN,
            sent: at,
            done: Some(at),
            n,
        });
    }

    /// Corrects the window with what the server announced: the smaller limit and the
    /// longer window of configured and announced values. An interval longer than
    /// [`window_cap`] is taken as the cap and a `remaining` above the announced limit as
    /// that limit; what was changed is returned, for the caller to log.
    ///
    /// `remaining` was computed when the server received the request admitted here at
    /// `sent_at`. The server then counted the requests of its last window; this window
    /// held the same requests at `sent_at` (those in flight, and those answered less
    /// than a span before), plus those admitted up to a safety margin later (which may
    /// have overtaken this one on the way). When the server counted more, the
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
        let span = self.span();
        if now.saturating_duration_since(sent_at) >= span {
            return clamped;
        }
        let server_used = max.unwrap_or(self.limit).saturating_sub(r).min(self.limit);
        let horizon = sent_at + self.margin;
        let ours = self
            .entries
            .iter()
            .filter(|e| {
                e.sent <= horizon
                    && e.done
                        .is_none_or(|d| sent_at.saturating_duration_since(d) < span)
            })
            .fold(0u32, |acc, e| acc.saturating_add(e.n));
        if server_used > ours {
            self.foreign(server_used - ours, sent_at);
        }
        clamped
    }

    /// Marks the window as full from now (the server refused with 429 and sent no
    /// usable headers).
    pub(crate) fn fill(&mut self, now: Instant) {
        let ours = self.used(now);
        if ours < self.limit {
            self.foreign(self.limit - ours, now);
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

/// Requests admitted by [`acquire`]: they hold their places in the token, members and
/// key windows while the permit lives. Dropping it (the answer was read, or the attempt
/// failed, timed out or was cancelled) marks them answered now, and they stay counted
/// for one more span.
///
/// The server counts a request when it receives it, at some moment between its
/// admission here and its answer; a place held from admission until one span after
/// the answer covers every such moment, however late the request reaches the server.
#[must_use = "the requests are counted as answered when the permit is dropped"]
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    token: &'a TokenBudget,
    /// `None` when the key's budget is spent through a store shared by every replica.
    key: Option<&'a KeyBudget>,
    token_id: u64,
    members_id: Option<u64>,
    key_id: Option<u64>,
    admitted: Instant,
    waited: Duration,
}

impl Permit<'_> {
    /// When the requests were admitted (the earliest the server can have received them).
    pub(crate) fn admitted(&self) -> Instant {
        self.admitted
    }

    /// How long [`acquire`] waited for room.
    pub(crate) fn waited(&self) -> Duration {
        self.waited
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let now = Instant::now();
        // The same lock order as `acquire`: token, members, key.
        lock(&self.token.window).finish(self.token_id, now);
        if let Some(id) = self.members_id {
            lock(&self.token.members).finish(id, now);
        }
        if let (Some(key), Some(id)) = (self.key, self.key_id) {
            lock(key.window()).finish(id, now);
        }
    }
}

/// Waits until `n` requests fit in the token and key windows (and one in the members
/// window when `members` is set), then counts them until the returned permit is
/// dropped, and for one span after.
///
/// Without `key`, the key's window is not this process's to keep (the shared budget
/// keeps it for every replica).
pub(crate) async fn acquire<'a>(
    token: &'a TokenBudget,
    key: Option<&'a KeyBudget>,
    n: u32,
    members: bool,
) -> Permit<'a> {
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
                    return Permit {
                        token,
                        key,
                        token_id: t.take(n, now),
                        members_id: members.then(|| m.take(1, now)),
                        key_id: k.as_mut().map(|k| k.take(n, now)),
                        admitted: now,
                        waited: now.saturating_duration_since(start),
                    };
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

    /// Counts `n` requests admitted and answered at `at`.
    fn answered(w: &mut Window, n: u32, at: Instant) {
        let id = w.take(n, at);
        w.finish(id, at);
    }

    #[test]
    fn window_never_admits_more_than_limit_per_span() {
        let mut w = Window::new(3, 100 * MS, 10 * MS);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(w.wait(1, t0).is_none());
            answered(&mut w, 1, t0);
        }
        assert_eq!(w.wait(1, t0), Some(110 * MS));
        assert_eq!(w.wait(1, t0 + 50 * MS), Some(60 * MS));
        assert!(w.wait(1, t0 + 110 * MS).is_none());
        assert!(w.wait(3, t0 + 110 * MS).is_none());
    }

    #[test]
    fn a_request_in_flight_holds_its_place_until_a_span_after_its_answer() {
        let mut w = Window::new(1, 100 * MS, 10 * MS);
        let t0 = Instant::now();
        let id = w.take(1, t0);
        // Still unanswered long after a window: the server may not have received it
        // yet, so the place stays taken.
        let later = t0 + 1000 * MS;
        assert_eq!(w.used(later), 1);
        assert_eq!(w.wait(1, later), Some(110 * MS));
        w.finish(id, later);
        assert_eq!(w.wait(1, later + 50 * MS), Some(60 * MS));
        assert!(w.wait(1, later + 110 * MS).is_none());
        assert_eq!(w.used(later + 110 * MS), 0);
    }

    #[test]
    fn answered_entries_are_forgotten_after_two_spans() {
        let mut w = Window::new(1000, 100 * MS, 10 * MS);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let at = t0 + i * MS;
            answered(&mut w, 1, at);
            let _ = w.wait(1, at);
            assert!(
                w.entries.len() <= 221,
                "{} entries at {i} ms",
                w.entries.len()
            );
        }
        let in_flight = w.take(1, t0 + 10_000 * MS);
        let _ = w.wait(1, t0 + 20_000 * MS);
        assert_eq!(w.entries.len(), 1, "only the request in flight is kept");
        w.finish(in_flight, t0 + 20_000 * MS);
        assert_eq!(w.used(t0 + 20_000 * MS), 1);
    }

    #[test]
    fn headers_compare_with_the_window_as_it_was_when_sent() {
        let mut w = Window::new(10, 100 * MS, 5 * MS);
        let t0 = Instant::now();
        answered(&mut w, 4, t0);
        let sent = t0 + 90 * MS;
        let _in_flight = w.take(1, sent);
        // Answered 60 ms later: our first four requests have expired by now, but the
        // server counted them when it received the request.
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
        let _in_flight = w.take(10, t0);
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
        answered(&mut w, 1, t0);
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

    /// A key of its own per test (`abcd…` and two digits): budgets are process-wide.
    fn budgets(n: u8, limits: &RateLimits) -> (ApiKey, Arc<KeyBudget>, Arc<TokenBudget>) {
        let key = ApiKey::new(format!("abcdefabcdefabcdefabcdefabcdef{n:02}")).unwrap();
        let kb = KeyBudget::shared(&key, limits);
        let tb = TokenBudget::shared(&key, &Token::new("one1").unwrap(), limits);
        (key, kb, tb)
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
            for t in [&t1, &t2] {
                let answered = acquire(t, Some(&kb), 1, false).await;
                assert_eq!(answered.waited(), Duration::ZERO);
            }
        }
        assert_eq!(kb.used(), 4);
        assert_eq!(kb.wait_for_one(), 105 * MS);
        let fifth = acquire(&t1, Some(&kb), 1, false).await;
        assert_eq!(
            fifth.waited(),
            105 * MS,
            "the fifth request waits for the key window (window + margin), though its token has room"
        );
        assert_eq!(start.elapsed(), 105 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_slower_than_the_window_keeps_its_place_until_a_window_after_it() {
        let limits = RateLimits {
            token_limit: 1,
            window_ms: 100,
            safety_margin_ms: 5,
            ..RateLimits::default()
        };
        let (_, kb, tb) = budgets(3, &limits);
        let start = Instant::now();
        let first = acquire(&tb, Some(&kb), 1, false).await;
        // The first request's answer takes 300 ms: the server may receive it as late
        // as then, and counts it for a window from there.
        let (_, second) = tokio::join!(
            async {
                tokio::time::sleep(300 * MS).await;
                drop(first);
            },
            async { acquire(&tb, Some(&kb), 1, false).await.admitted() }
        );
        assert_eq!(second - start, 405 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_attempt_frees_its_place_a_window_after_it_ended() {
        let limits = RateLimits {
            token_limit: 1,
            window_ms: 100,
            safety_margin_ms: 5,
            ..RateLimits::default()
        };
        let (_, kb, tb) = budgets(4, &limits);
        let start = Instant::now();
        // An attempt that never gets its answer, cut off after 50 ms (its future is
        // dropped, as a timeout or a cancelled export does).
        let cut = tokio::time::timeout(50 * MS, async {
            let _slot = acquire(&tb, Some(&kb), 1, false).await;
            std::future::pending::<()>().await;
        })
        .await;
        assert!(cut.is_err());
        assert_eq!(kb.used(), 1);
        let next = acquire(&tb, Some(&kb), 1, false).await;
        assert_eq!(next.admitted() - start, 155 * MS);
        drop(next);
        assert_eq!(
            kb.used(),
            1,
            "the cancelled one expired; the next is counted"
        );
    }

    /// Requests with answers from instant to three windows late, at random, through
    /// acquire: whenever the server receives each (any moment between its admission and
    /// its answer), no window of the server's ever holds more than the limit. The
    /// worst case for a window ending at `s` is every request admitted by `s` and
    /// answered after `s - window`.
    #[tokio::test(start_paused = true)]
    async fn no_arrival_time_puts_more_than_the_limit_in_a_window() {
        let limits = RateLimits {
            token_limit: 5,
            key_limit: 7,
            window_ms: 100,
            safety_margin_ms: 1,
            ..RateLimits::default()
        };
        let (key, kb, t1) = budgets(5, &limits);
        let t2 = TokenBudget::shared(&key, &Token::new("two2").unwrap(), &limits);
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let plan: Vec<(usize, Duration, Duration)> = (0..300)
            .map(|_| {
                let token = (next() % 2) as usize;
                let start = Duration::from_millis(next() % 3000);
                let latency = Duration::from_millis(match next() % 4 {
                    0 => 0,
                    1 => next() % 20,
                    2 => next() % 100,
                    _ => next() % 300,
                });
                (token, start, latency)
            })
            .collect();
        let t0 = Instant::now();
        let done = futures::future::join_all(plan.iter().map(|(token, start, latency)| {
            let (kb, tb) = (&kb, if *token == 0 { &t1 } else { &t2 });
            async move {
                tokio::time::sleep(*start).await;
                let slot = acquire(tb, Some(kb), 1, false).await;
                let admitted = slot.admitted();
                tokio::time::sleep(*latency).await;
                drop(slot);
                (*token, admitted, Instant::now())
            }
        }))
        .await;
        let window = limits.window();
        for (_, s, _) in &done {
            let could_count = |token: Option<usize>| {
                done.iter()
                    .filter(|(t, a, c)| token.is_none_or(|k| k == *t) && a <= s && *c + window > *s)
                    .count()
            };
            assert!(
                could_count(None) <= 7,
                "the key's window ending {:?} in could hold {}",
                *s - t0,
                could_count(None)
            );
            for token in [0, 1] {
                assert!(could_count(Some(token)) <= 5);
            }
        }
    }
}
