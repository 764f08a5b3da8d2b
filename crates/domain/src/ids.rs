//! Validated identifiers: each newtype can only hold a well-formed value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    /// Which identifier was being parsed, e.g. `trello id`.
    pub kind: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl IdError {
    pub(crate) fn new(kind: &'static str, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
        }
    }
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $validate:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `value`.
            ///
            /// # Errors
            /// Returns an [`IdError`] naming the rule the value breaks.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                let check: fn(&str) -> Result<(), String> = $validate;
                check(&value).map_err(|reason| IdError::new($kind, reason))?;
                Ok(Self(value))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

fn hex_of_len(s: &str, len: usize) -> Result<(), String> {
    if s.len() != len {
        return Err(format!(
            "expected {len} hexadecimal characters, got {}",
            s.chars().count()
        ));
    }
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("expected only hexadecimal characters 0-9 and a-f".into());
    }
    Ok(())
}

pub(crate) fn check_api_key(s: &str) -> Result<(), String> {
    hex_of_len(s, 32)
}

string_id!(
    /// A Trello object id (board, list, card, label, checklist, member, organization):
    /// 24 hexadecimal characters, the first 8 of which encode the creation time.
    TrelloId,
    "trello id",
    |s| hex_of_len(s, 24)
);

impl TrelloId {
    /// Creation time encoded in the first 8 hex digits (seconds since the Unix epoch).
    pub fn created_at_secs(&self) -> u64 {
        u64::from_str_radix(&self.0[..8], 16).unwrap_or(0)
    }
}

string_id!(
    /// The id of a finding in WebRiskOps: 1..128 characters of `[A-Za-z0-9._:-]`.
    /// Stable and never reused: the dedupe key of every export.
    FindingId,
    "finding id",
    |s| {
        if s.is_empty() || s.len() > 128 {
            return Err(format!("must be 1 to 128 characters, got {}", s.chars().count()));
        }
        match s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))) {
            Some(c) => Err(format!("character {c:?} is not allowed; use A-Z a-z 0-9 . _ : -")),
            None => Ok(()),
        }
    }
);

string_id!(
    /// A tenant (customer) of WebRiskOps: 1..64 characters of `[A-Za-z0-9._-]`.
    TenantId,
    "tenant id",
    |s| {
        if s.is_empty() || s.len() > 64 {
            return Err("must be 1 to 64 characters".into());
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err("use only A-Z a-z 0-9 . _ -".into());
        }
        Ok(())
    }
);

string_id!(
    /// A tracker-neutral id of a remote object (a Trello card or list, a Linear issue or
    /// workflow state): non-empty, at most 256 characters, no whitespace or control characters.
    ItemId,
    "tracker id",
    |s| {
        if s.is_empty() || s.len() > 256 {
            return Err("must be 1 to 256 characters".into());
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain whitespace or control characters".into());
        }
        Ok(())
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trello_id_accepts_24_hex_and_reads_its_time() {
        let id = TrelloId::new("5e9f8f8f8f8f8f8f8f8f8f8f").unwrap();
        assert_eq!(id.created_at_secs(), 0x5e9f8f8f);
        assert!(TrelloId::new("5e9f8f8f8f8f8f8f8f8f8f8").is_err());
        assert!(TrelloId::new("5e9f8f8f8f8f8f8f8f8f8f8g").is_err());
        assert!(TrelloId::new("Security Remediation").is_err());
    }

    #[test]
    fn finding_id_follows_the_contract() {
        assert!(FindingId::new("wro-f-0001").is_ok());
        assert!(FindingId::new("a:b.c_d-e").is_ok());
        assert!(FindingId::new("").is_err());
        assert!(FindingId::new("../etc/passwd").is_err());
        assert!(FindingId::new("x".repeat(129)).is_err());
        let err = FindingId::new("a b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid finding id: character ' ' is not allowed; use A-Z a-z 0-9 . _ : -"
        );
    }

    #[test]
    fn ids_round_trip_through_serde_and_reject_bad_values() {
        let id: FindingId = serde_json::from_str("\"wro-1\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"wro-1\"");
        assert!(serde_json::from_str::<TrelloId>("\"nope\"").is_err());
    }
}
