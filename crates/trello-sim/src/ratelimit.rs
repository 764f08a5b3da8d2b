//! Sliding-window rate limits per token, per API key and on /1/members routes.
//!
//! Decisions where FACTS.md §9 is silent:
//! - windows slide (each request expires `window` after it was admitted);
//! - a rejected (429) request does not consume quota, but each 429 counts
//!   toward the key's "more than 200 429s" lockout, which then lasts until
//!   the window holding those 429s ends;
//! - the token limit is checked before the key limit, then the members limit.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Token,
    Key,
    /// The key collected more than 200 429s in a window and is refused until it ends.
    KeyLockedOut,
    Members,
}

/// Values for the `x-rate-limit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    pub interval_ms: u64,
    pub token_max: u32,
    pub token_remaining: u32,
    pub key_max: u32,
    pub key_remaining: u32,
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    window: Duration,
    members_window: Duration,
    token_limit: u32,
    key_limit: u32,
    members_limit: u32,
    tokens: HashMap<String, VecDeque<Instant>>,
    keys: HashMap<String, VecDeque<Instant>>,
    members: HashMap<String, VecDeque<Instant>>,
    key_429s: HashMap<String, VecDeque<Instant>>,
    key_locked_until: HashMap<String, Instant>,
}

/// 429s a key may collect in a window before every request on it is refused.
const KEY_429_LOCKOUT: usize = 200;

fn prune(q: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
        q.pop_front();
    }
}

fn remaining(max: u32, used: usize) -> u32 {
    max.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX))
}

impl RateLimiter {
    pub(crate) fn new(
        window: Duration,
        token_limit: u32,
        key_limit: u32,
        members_limit: u32,
    ) -> Self {
        // Trello's /1/members window is 900 s against a 10 s main window.
        let members_window = window.saturating_mul(90);
        RateLimiter {
            window,
            members_window,
            token_limit,
            key_limit,
            members_limit,
            tokens: HashMap::new(),
            keys: HashMap::new(),
            members: HashMap::new(),
            key_429s: HashMap::new(),
            key_locked_until: HashMap::new(),
        }
    }

    fn interval_ms(&self) -> u64 {
        u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX)
    }

    /// The budget reported when no key or token is known.
    pub(crate) fn full_budget(&self) -> Budget {
        Budget {
            interval_ms: self.interval_ms(),
            token_max: self.token_limit,
            token_remaining: self.token_limit,
            key_max: self.key_limit,
            key_remaining: self.key_limit,
        }
    }

    /// Current budget of a key (and token) without admitting anything.
    pub(crate) fn budget(&mut self, key: &str, token: Option<&str>, now: Instant) -> Budget {
        let window = self.window;
        let kq = self.keys.entry(key.to_owned()).or_default();
        prune(kq, now, window);
        let key_used = kq.len();
        let token_used = match token {
            Some(t) => {
                let tq = self.tokens.entry(t.to_owned()).or_default();
                prune(tq, now, window);
                tq.len()
            }
            None => 0,
        };
        Budget {
            interval_ms: self.interval_ms(),
            token_max: self.token_limit,
            token_remaining: remaining(self.token_limit, token_used),
            key_max: self.key_limit,
            key_remaining: remaining(self.key_limit, key_used),
        }
    }

    /// Admits one request or says which limit refuses it.
    pub(crate) fn admit(
        &mut self,
        key: &str,
        token: &str,
        members_route: bool,
        now: Instant,
    ) -> (Result<(), Refusal>, Budget) {
        let window = self.window;
        let mut budget = self.budget(key, Some(token), now);
        let locked = self
            .key_locked_until
            .get(key)
            .is_some_and(|until| now < *until);
        let token_used = self.tokens.get(token).map_or(0, VecDeque::len);
        let key_used = self.keys.get(key).map_or(0, VecDeque::len);
        let members_q = self.members.entry(token.to_owned()).or_default();
        prune(members_q, now, self.members_window);
        let members_used = members_q.len();

        let refusal = if locked {
            Some(Refusal::KeyLockedOut)
        } else if token_used >= self.token_limit as usize {
            Some(Refusal::Token)
        } else if key_used >= self.key_limit as usize {
            Some(Refusal::Key)
        } else if members_route && members_used >= self.members_limit as usize {
            Some(Refusal::Members)
        } else {
            None
        };
        if let Some(r) = refusal {
            let q = self.key_429s.entry(key.to_owned()).or_default();
            prune(q, now, window);
            q.push_back(now);
            if q.len() > KEY_429_LOCKOUT {
                let oldest = q.front().copied().unwrap_or(now);
                self.key_locked_until
                    .insert(key.to_owned(), oldest + window);
            }
            if matches!(r, Refusal::Key | Refusal::KeyLockedOut) {
                budget.key_remaining = 0;
            }
            if r == Refusal::Token {
                budget.token_remaining = 0;
            }
            return (Err(r), budget);
        }
        self.tokens
            .entry(token.to_owned())
            .or_default()
            .push_back(now);
        self.keys.entry(key.to_owned()).or_default().push_back(now);
        if members_route {
            self.members
                .entry(token.to_owned())
                .or_default()
                .push_back(now);
        }
        budget.token_remaining = budget.token_remaining.saturating_sub(1);
        budget.key_remaining = budget.key_remaining.saturating_sub(1);
        (Ok(()), budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_and_key_limits() {
        let mut rl = RateLimiter::new(Duration::from_secs(10), 2, 3, 100);
        let t0 = Instant::now();
        assert!(rl.admit("k", "a", false, t0).0.is_ok());
        assert!(rl.admit("k", "a", false, t0).0.is_ok());
        assert_eq!(rl.admit("k", "a", false, t0).0, Err(Refusal::Token));
        assert!(rl.admit("k", "b", false, t0).0.is_ok());
        assert_eq!(rl.admit("k", "b", false, t0).0, Err(Refusal::Key));
        let later = t0 + Duration::from_secs(10);
        assert!(rl.admit("k", "a", false, later).0.is_ok());
    }

    #[test]
    fn lockout_after_many_429s() {
        let mut rl = RateLimiter::new(Duration::from_secs(10), 1, 1000, 100);
        let t0 = Instant::now();
        assert!(rl.admit("k", "a", false, t0).0.is_ok());
        for _ in 0..=KEY_429_LOCKOUT {
            assert!(rl.admit("k", "a", false, t0).0.is_err());
        }
        assert_eq!(
            rl.admit("k", "fresh", false, t0).0,
            Err(Refusal::KeyLockedOut)
        );
        assert!(rl
            .admit("k", "fresh", false, t0 + Duration::from_secs(10))
            .0
            .is_ok());
    }

    #[test]
    fn members_window_is_scaled() {
        let mut rl = RateLimiter::new(Duration::from_millis(100), 100, 300, 1);
        let t0 = Instant::now();
        assert!(rl.admit("k", "a", true, t0).0.is_ok());
        assert_eq!(rl.admit("k", "a", true, t0).0, Err(Refusal::Members));
        assert!(rl.admit("k", "a", false, t0).0.is_ok());
        assert!(rl
            .admit("k", "a", true, t0 + Duration::from_secs(9))
            .0
            .is_ok());
    }
}
