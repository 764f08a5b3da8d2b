//! The one retry policy every adapter's request loop follows: plain serde data with
//! documented defaults (loadable by `config`), the backoff it computes and the checks
//! its settings must pass. What each tracker retries is the adapter's (see its docs).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Exponential backoff with jitter for one adapter's retry loop, bounded by a deadline:
/// attempt `n` waits `initial_backoff_ms × multiplier^(n-1)`, capped at `max_backoff_ms`,
/// minus up to `jitter` of it (0.5 = anywhere between half and all of it).
///
/// `deadline_ms` bounds one logical request across all its attempts: the time spent
/// exchanging with the tracker and backing off (waits for the rate limiter and for a free
/// connection slot do not count, so a full budget never fails a request). Each attempt's
/// timeout is cut to what is left, no backoff is started that would end past it, and a
/// request that runs out of time fails as unavailable (transient), saying so and how long
/// it tried; a wait the tracker announced (`Retry-After`, a reset header) is waited instead
/// of the backoff when it is longer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries after the first attempt. Default 6.
    pub max_retries: u32,
    /// First backoff, in milliseconds. Default 500.
    pub initial_backoff_ms: u64,
    /// Longest backoff, in milliseconds. Default 16 000.
    pub max_backoff_ms: u64,
    /// Growth per retry. Default 2.0.
    pub multiplier: f64,
    /// Share of each backoff that is random, 0..=1. Default 0.5.
    pub jitter: f64,
    /// Most time one logical request may take across its attempts and backoffs, in
    /// milliseconds. Default 60 000: two full attempts at a 30 s timeout, instead of
    /// seven (about four minutes) against a server that never answers.
    pub deadline_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 6,
            initial_backoff_ms: 500,
            max_backoff_ms: 16_000,
            multiplier: 2.0,
            jitter: 0.5,
            deadline_ms: 60_000,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The deadline of one logical request (see [`RetryPolicy::deadline_ms`]).
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// The backoff before retry number `retry` (1-based), jitter applied with `rand01`
    /// in `[0, 1)`.
    pub fn backoff(&self, retry: u32, rand01: f64) -> Duration {
        let exp = self
            .multiplier
            .max(1.0)
            .powi(i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX));
        let base = (self.initial_backoff_ms as f64 * exp).min(self.max_backoff_ms as f64);
        let jitter = self.jitter.clamp(0.0, 1.0) * rand01.clamp(0.0, 1.0);
        Duration::from_secs_f64((base * (1.0 - jitter)).max(0.0) / 1000.0)
    }

    /// The first setting that cannot work, as `(field, reason)`: each adapter words it as
    /// its own configuration error.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Some(("retry.multiplier", "must be a number >= 1"));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Some(("retry.jitter", "must be between 0 and 1"));
        }
        if self.deadline_ms == 0 {
            return Some((
                "retry.deadline_ms",
                "must be positive (milliseconds one request may take across its retries)",
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jitter_only_shortens_it() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(2, 0.0), Duration::from_millis(1000));
        assert_eq!(p.backoff(10, 0.0), Duration::from_millis(16_000));
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(250));
        assert!(p.problem().is_none());
        let bad = RetryPolicy {
            jitter: 2.0,
            ..RetryPolicy::default()
        };
        assert_eq!(bad.problem().map(|(f, _)| f), Some("retry.jitter"));
        let bad = RetryPolicy {
            deadline_ms: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(bad.problem().map(|(f, _)| f), Some("retry.deadline_ms"));
    }
}
