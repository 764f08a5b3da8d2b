//! The names and rules under which this adapter's requests spend the key budget every
//! replica shares ([`crate::SharedKeyBudget`]): the key and the token reach the store only
//! as digests, and a slot counts like the local limiter's, one window (+ margin) after its
//! request ended.

use std::time::Duration;

use sha2::{Digest, Sha256};
use webriskops_domain::{ApiKey, SlotRules, Token};
use webriskops_ports::KeyScope;

use crate::config::RateLimits;

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..12])
}

/// The shared budget of `key`: Trello's per-key limit and window (FACTS.md §9: 300 per
/// 10 s for every token of the key), as configured. A slot never released (its process
/// died) stops counting after one request timeout and one window more: no request of it
/// can still reach Trello by then.
#[must_use]
pub fn key_scope(key: &ApiKey, limits: &RateLimits, timeout: Duration) -> KeyScope {
    KeyScope {
        name: format!("trello:key:{}", digest(&[key.expose()])),
        limit: limits.key_limit,
        rules: SlotRules {
            window: limits.window(),
            margin: limits.safety_margin(),
            in_flight_cap: timeout.saturating_add(limits.window()),
        },
    }
}

/// The name of `token`'s own budget within the key's (100 per 10 s per token).
#[must_use]
pub fn token_scope(key: &ApiKey, token: &Token) -> String {
    format!("trello:token:{}", digest(&[key.expose(), token.expose()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_name_digests_never_the_secrets() {
        let key = ApiKey::new("abcdefabcdefabcdefabcdefabcdef01").unwrap();
        let token = Token::new("tok-secret-123").unwrap();
        let k = key_scope(&key, &RateLimits::default(), Duration::from_secs(30));
        assert!(!k.name.contains(key.expose()));
        assert_eq!(k.limit, 300);
        assert_eq!(k.rules.window, Duration::from_secs(10));
        assert_eq!(k.rules.in_flight_cap, Duration::from_secs(40));
        let t = token_scope(&key, &token);
        assert!(!t.contains("tok-secret"));
        assert_ne!(t, token_scope(&key, &Token::new("another").unwrap()));
        assert_eq!(
            k,
            key_scope(&key, &RateLimits::default(), Duration::from_secs(30))
        );
    }
}
