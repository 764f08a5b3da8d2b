//! Secrets: the Trello API key and user token. Neither ever prints.

use std::fmt;

use crate::ids::{check_api_key, IdError};

/// A user token for the tracker. Opaque: real Trello tokens are 76 characters
/// (`ATTA` + 64 hex + 8 hex) while older ones are 64 hex, so only emptiness,
/// length and printable ASCII are checked. `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token after trimming surrounding whitespace (a pasted newline is common).
    ///
    /// # Errors
    /// Empty, longer than 512 characters, or containing non-printable characters.
    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(IdError::new("token", "is empty"));
        }
        if trimmed.len() > 512 {
            return Err(IdError::new("token", "is longer than 512 characters"));
        }
        if !trimmed.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdError::new(
                "token",
                "must be printable ASCII without spaces",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The secret value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted token>")
    }
}

/// A Trello API key: 32 hexadecimal characters. Not a secret on its own, but it
/// identifies the application and its shared rate budget, so it is shown only
/// by its last four characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ApiKey(String);

impl ApiKey {
    /// # Errors
    /// Anything but 32 hexadecimal characters (surrounding whitespace is trimmed).
    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        let trimmed = value.trim();
        check_api_key(trimmed).map_err(|reason| IdError::new("api key", reason))?;
        Ok(Self(trimmed.to_owned()))
    }

    /// The key value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short form safe for display: `…` and the last four characters.
    pub fn hint(&self) -> String {
        format!("…{}", &self.0[self.0.len() - 4..])
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.hint())
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_opaque_and_never_printed() {
        let raw = format!("ATTA{}{}", "ab".repeat(32), "ABCDEF12");
        let t = Token::new(format!("{raw}\n")).unwrap();
        assert_eq!(t.expose(), raw);
        assert!(!format!("{t:?}").contains(&raw[4..20]));
        assert!(!format!("{t}").contains(&raw[4..20]));
        assert!(Token::new("   ").is_err());
        assert!(Token::new("has space").is_err());
    }

    #[test]
    fn api_key_must_be_32_hex_and_prints_a_hint() {
        let k = ApiKey::new("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(format!("{k:?}"), "ApiKey(…cdef)");
        assert!(ApiKey::new("0123").is_err());
    }
}
