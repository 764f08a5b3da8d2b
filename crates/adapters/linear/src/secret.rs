//! Linear credentials: a personal API key or an OAuth2 access token. Neither ever prints.

use std::fmt;

/// A secret value (API key, OAuth access or refresh token, client secret). `Debug` and
/// `Display` redact it; [`LinearSecret::expose`] is for the one place that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct LinearSecret(String);

/// Why a secret was refused. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Linear {what}: {reason}")]
pub struct SecretError {
    pub what: &'static str,
    pub reason: &'static str,
}

impl LinearSecret {
    /// Wraps a secret after trimming surrounding whitespace (a pasted newline is common).
    /// `what` names it in the error ("API key", "access token").
    ///
    /// # Errors
    /// Empty, longer than 4096 bytes, or not printable ASCII without spaces (it travels
    /// in an HTTP header).
    pub fn new(what: &'static str, value: impl Into<String>) -> Result<Self, SecretError> {
        let value = value.into();
        let trimmed = value.trim();
        let fail = |reason| Err(SecretError { what, reason });
        if trimmed.is_empty() {
            return fail("is empty");
        }
        if trimmed.len() > 4096 {
            return fail("is longer than 4096 characters");
        }
        if !trimmed.bytes().all(|b| b.is_ascii_graphic()) {
            return fail("must be printable ASCII without spaces");
        }
        Ok(LinearSecret(trimmed.to_owned()))
    }

    /// The secret value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LinearSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinearSecret(<redacted>)")
    }
}

impl fmt::Display for LinearSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How requests authenticate (FACTS.md "Endpoint / auth").
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A personal API key (`lin_api_…`), sent bare: `Authorization: <key>`.
    ApiKey(LinearSecret),
    /// An OAuth2 access token, sent as `Authorization: Bearer <token>`.
    OAuth(LinearSecret),
}

impl Credential {
    /// A personal API key.
    ///
    /// # Errors
    /// See [`LinearSecret::new`].
    pub fn api_key(value: impl Into<String>) -> Result<Self, SecretError> {
        LinearSecret::new("API key", value).map(Credential::ApiKey)
    }

    /// An OAuth2 access token.
    ///
    /// # Errors
    /// See [`LinearSecret::new`].
    pub fn oauth(value: impl Into<String>) -> Result<Self, SecretError> {
        LinearSecret::new("access token", value).map(Credential::OAuth)
    }

    /// The secret itself.
    pub fn secret(&self) -> &LinearSecret {
        match self {
            Credential::ApiKey(s) | Credential::OAuth(s) => s,
        }
    }

    /// The `Authorization` header value.
    pub(crate) fn header_value(&self) -> String {
        match self {
            Credential::ApiKey(k) => k.expose().to_owned(),
            Credential::OAuth(t) => format!("Bearer {}", t.expose()),
        }
    }

    /// `api key` or `oauth`, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::ApiKey(_) => "api key",
            Credential::OAuth(_) => "oauth",
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::ApiKey(_) => f.write_str("Credential::ApiKey(<redacted>)"),
            Credential::OAuth(_) => f.write_str("Credential::OAuth(<redacted>)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let raw = "lin_api_0123456789abcdefSECRET";
        let c = Credential::api_key(format!("{raw}\n")).unwrap();
        assert_eq!(c.secret().expose(), raw);
        for shown in [
            format!("{c:?}"),
            format!("{:?}", c.secret()),
            format!("{}", c.secret()),
        ] {
            assert!(!shown.contains("SECRET"), "{shown}");
        }
        assert!(Credential::api_key("  ").is_err());
        let e = Credential::oauth("has space SECRET").unwrap_err();
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }

    #[test]
    fn header_forms() {
        assert_eq!(
            Credential::api_key("lin_api_x").unwrap().header_value(),
            "lin_api_x",
            "a personal API key goes bare, without Bearer"
        );
        assert_eq!(
            Credential::oauth("tok").unwrap().header_value(),
            "Bearer tok"
        );
    }
}
