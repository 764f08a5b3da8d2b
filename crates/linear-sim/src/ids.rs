//! Generated identifiers and credentials: UUIDs, API keys, OAuth tokens.

use rand::Rng;

/// A random UUID v4, lower-case hyphenated (Linear's id format, FACTS.md
/// "Create issue": "identifier in UUID v4 format").
pub(crate) fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::thread_rng().gen();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// True for a hyphenated UUID whose version nibble is 4 and whose variant is
/// RFC 4122 (what `issueCreate(input: {id})` accepts).
pub(crate) fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 36 {
        return false;
    }
    for (i, c) in b.iter().enumerate() {
        let ok = match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        };
        if !ok {
            return false;
        }
    }
    b[14] == b'4' && matches!(b[19].to_ascii_lowercase(), b'8' | b'9' | b'a' | b'b')
}

fn alnum(n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// A personal API key: `lin_api_` and 40 alphanumerics (FACTS.md "Endpoint / auth").
pub(crate) fn api_key() -> String {
    format!("lin_api_{}", alnum(40))
}

/// An OAuth access token.
pub(crate) fn access_token() -> String {
    format!(
        "lin_oauth_{}",
        hex::encode(rand::thread_rng().gen::<[u8; 32]>())
    )
}

/// An OAuth refresh token.
pub(crate) fn refresh_token() -> String {
    format!(
        "lin_refresh_{}",
        hex::encode(rand::thread_rng().gen::<[u8; 32]>())
    )
}

/// An OAuth authorization code or client secret: 32 random hex.
pub(crate) fn secret_hex() -> String {
    hex::encode(rand::thread_rng().gen::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_uuids_are_v4() {
        for _ in 0..50 {
            let u = uuid_v4();
            assert!(is_uuid_v4(&u), "{u}");
        }
        assert!(!is_uuid_v4("00000000-0000-1000-8000-000000000000"));
        assert!(!is_uuid_v4("not-a-uuid"));
        assert!(api_key().starts_with("lin_api_"));
    }
}
