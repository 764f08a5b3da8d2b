//! Identifier generation: Mongo-style object ids, shortLinks, API keys and tokens.

use chrono::{DateTime, Utc};
use rand::Rng;

/// Generates 24-hex object ids that sort by creation.
///
/// Like a Mongo ObjectId the first 8 hex digits are the creation time in
/// seconds; the remaining 16 are a per-process random prefix followed by a
/// counter, so every id is strictly greater than the one before it.
#[derive(Debug)]
pub(crate) struct IdGen {
    last_secs: u32,
    prefix: u64,
    counter: u64,
}

impl IdGen {
    pub(crate) fn new() -> Self {
        let mut rng = rand::thread_rng();
        // 10 hex digits of randomness, 6 hex digits of counter; the counter
        // starts low so it cannot overflow into the prefix in practice.
        IdGen {
            last_secs: 0,
            prefix: rng.gen_range(0..(1u64 << 40)),
            counter: rng.gen_range(0..0x1000),
        }
    }

    /// Returns the next object id.
    pub(crate) fn next_id(&mut self) -> String {
        let now = u32::try_from(Utc::now().timestamp()).unwrap_or(u32::MAX);
        self.last_secs = self.last_secs.max(now);
        self.counter += 1;
        if self.counter >= (1 << 24) {
            self.counter = 0;
            self.prefix = (self.prefix + 1) & ((1u64 << 40) - 1);
        }
        format!(
            "{:08x}{:010x}{:06x}",
            self.last_secs, self.prefix, self.counter
        )
    }
}

/// True when `s` is a 24-hex object id.
pub(crate) fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// True when `s` looks like an 8-character shortLink.
pub(crate) fn is_short_link(s: &str) -> bool {
    s.len() == 8 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The smallest object id that can have been created at `t`.
pub(crate) fn id_floor(t: DateTime<Utc>) -> String {
    let secs = u32::try_from(t.timestamp().max(0)).unwrap_or(u32::MAX);
    format!("{secs:08x}0000000000000000")
}

/// A random 8-character alphanumeric shortLink.
pub(crate) fn short_link() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..8)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A random 32-hex API key.
pub(crate) fn api_key() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    hex::encode(bytes)
}

/// A random 64-hex application secret (the OAuth secret of the key page).
pub(crate) fn api_secret() -> String {
    let bytes: [u8; 32] = rand::thread_rng().gen();
    hex::encode(bytes)
}

/// A random 76-character token: `ATTA`, 64 lowercase hex, 8 uppercase hex.
pub(crate) fn token() -> String {
    let mut rng = rand::thread_rng();
    let body: [u8; 32] = rng.gen();
    let tail: [u8; 4] = rng.gen();
    format!("ATTA{}{}", hex::encode(body), hex::encode_upper(tail))
}

/// True when `s` has the shape of a token (64 hex, or the 76-character form).
/// Used only to redact tokens from logged paths; authentication treats
/// tokens as opaque.
pub(crate) fn looks_like_token(s: &str) -> bool {
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        || (s.len() == 76 && s.starts_with("ATTA") && s[4..].bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A URL slug of a name, as Trello puts in board and card urls.
pub(crate) fn slug(name: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
            dash = false;
        } else if !dash && !out.is_empty() {
            out.push('-');
            dash = true;
        }
        if out.len() >= 128 {
            break;
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_increasing_and_well_formed() {
        let mut g = IdGen::new();
        let a = g.next_id();
        let b = g.next_id();
        assert!(is_object_id(&a) && is_object_id(&b));
        assert!(a < b);
    }

    #[test]
    fn token_shape() {
        let t = token();
        assert_eq!(t.len(), 76);
        assert!(t.starts_with("ATTA"));
        assert!(t[4..68]
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
        assert!(t[68..]
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
        assert!(looks_like_token(&t));
        assert_eq!(api_key().len(), 32);
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Security Remediation!"), "security-remediation");
        assert_eq!(short_link().len(), 8);
    }
}
