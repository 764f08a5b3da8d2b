//! Leaky-bucket rate limits for requests and complexity points, one pair of
//! buckets per user and kind of credential (FACTS.md "Rate limits": "counted
//! per user: all of a user's API keys share one quota").
//!
//! Decisions where FACTS.md is silent:
//! - a refused request (`RATELIMITED`) takes nothing from either bucket;
//! - a request is admitted only when both buckets have room for it (one
//!   request, and the document's complexity);
//! - `remaining` is the floor of the room left; `reset` is when the bucket
//!   will be empty again (fully replenished), in UTC epoch milliseconds.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Capacities of one bucket pair per period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    pub requests: f64,
    pub complexity: f64,
}

/// Which bucket refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Requests,
    Complexity,
}

/// Values for the `X-RateLimit-*` headers and `rateLimitStatus`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Budget {
    pub period_ms: u64,
    pub requests_limit: u64,
    pub requests_remaining: u64,
    pub requests_reset_ms: u64,
    pub complexity_limit: u64,
    pub complexity_remaining: u64,
    pub complexity_reset_ms: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    fn drained(self, capacity: f64, period: Duration, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        let rate = capacity / period.as_secs_f64();
        Bucket {
            level: (self.level - rate * elapsed).max(0.0),
            at: now,
        }
    }
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    period: Duration,
    buckets: HashMap<String, (Bucket, Bucket)>,
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn floor_u64(x: f64) -> u64 {
    if x <= 0.0 {
        0
    } else {
        x.floor() as u64
    }
}

impl RateLimiter {
    pub(crate) fn new(period: Duration) -> Self {
        RateLimiter {
            period,
            buckets: HashMap::new(),
        }
    }

    fn period_ms(&self) -> u64 {
        u64::try_from(self.period.as_millis()).unwrap_or(u64::MAX)
    }

    fn current(&mut self, who: &str, limits: Limits, now: Instant) -> (Bucket, Bucket) {
        let fresh = Bucket {
            level: 0.0,
            at: now,
        };
        let (r, c) = self.buckets.get(who).copied().unwrap_or((fresh, fresh));
        (
            r.drained(limits.requests, self.period, now),
            c.drained(limits.complexity, self.period, now),
        )
    }

    fn budget_of(&self, r: Bucket, c: Bucket, limits: Limits) -> Budget {
        let now_ms = epoch_ms();
        let reset = |b: Bucket, cap: f64| {
            let frac = if cap > 0.0 { b.level / cap } else { 0.0 };
            #[allow(clippy::cast_precision_loss)]
            let ms = self.period_ms() as f64 * frac;
            now_ms + floor_u64(ms.ceil())
        };
        Budget {
            period_ms: self.period_ms(),
            requests_limit: floor_u64(limits.requests),
            requests_remaining: floor_u64(limits.requests - r.level),
            requests_reset_ms: reset(r, limits.requests),
            complexity_limit: floor_u64(limits.complexity),
            complexity_remaining: floor_u64(limits.complexity - c.level),
            complexity_reset_ms: reset(c, limits.complexity),
        }
    }

    /// The budget of `who` without taking anything.
    pub(crate) fn budget(&mut self, who: &str, limits: Limits, now: Instant) -> Budget {
        let (r, c) = self.current(who, limits, now);
        self.buckets.insert(who.to_owned(), (r, c));
        self.budget_of(r, c, limits)
    }

    /// Takes one request and `complexity` points, or says which bucket refuses.
    pub(crate) fn admit(
        &mut self,
        who: &str,
        limits: Limits,
        complexity: f64,
        now: Instant,
    ) -> (Result<(), Refusal>, Budget) {
        let (mut r, mut c) = self.current(who, limits, now);
        let verdict = if r.level + 1.0 > limits.requests {
            Err(Refusal::Requests)
        } else if c.level + complexity > limits.complexity {
            Err(Refusal::Complexity)
        } else {
            r.level += 1.0;
            c.level += complexity;
            Ok(())
        };
        self.buckets.insert(who.to_owned(), (r, c));
        (verdict, self.budget_of(r, c, limits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        requests: 3.0,
        complexity: 100.0,
    };

    #[test]
    fn buckets_fill_refuse_and_leak() {
        let mut rl = RateLimiter::new(Duration::from_secs(3));
        let t0 = Instant::now();
        for left in [2, 1, 0] {
            let (v, b) = rl.admit("u", L, 10.0, t0);
            assert!(v.is_ok());
            assert_eq!(b.requests_remaining, left);
        }
        let (v, b) = rl.admit("u", L, 10.0, t0);
        assert_eq!(v, Err(Refusal::Requests));
        assert_eq!(b.complexity_remaining, 70, "a refusal takes nothing");
        // One request leaks out per second.
        let (v, _) = rl.admit("u", L, 10.0, t0 + Duration::from_secs(1));
        assert!(v.is_ok());
        // Another user has a bucket of their own.
        assert!(rl.admit("v", L, 10.0, t0).0.is_ok());
    }

    #[test]
    fn complexity_bucket_refuses() {
        let mut rl = RateLimiter::new(Duration::from_secs(3600));
        let t0 = Instant::now();
        assert!(rl.admit("u", L, 90.0, t0).0.is_ok());
        assert_eq!(rl.admit("u", L, 20.0, t0).0, Err(Refusal::Complexity));
        assert!(rl.admit("u", L, 10.0, t0).0.is_ok());
    }
}
