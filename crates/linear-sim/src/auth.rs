//! Credentials on `/graphql`: personal API keys in `Authorization: <key>`
//! (no `Bearer`), OAuth access tokens in `Authorization: Bearer <token>`
//! (FACTS.md "Endpoint / auth").

use std::time::Instant;

use crate::state::{Scopes, State};

/// Which kind of credential authenticated a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CredKind {
    ApiKey,
    OAuth { client_id: String },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    pub user_id: String,
    pub scopes: Scopes,
    /// `None`: every team.
    pub team_ids: Option<Vec<String>>,
    pub kind: CredKind,
}

impl Auth {
    /// The rate-limit bucket: per user, shared by all of a user's API keys;
    /// per user and OAuth application for tokens (FACTS.md "Rate limits").
    pub(crate) fn bucket(&self) -> String {
        match &self.kind {
            CredKind::ApiKey => format!("user:{}:api-key", self.user_id),
            CredKind::OAuth { client_id } => format!("user:{}:oauth:{client_id}", self.user_id),
        }
    }

    pub(crate) fn sees_team(&self, team: &str) -> bool {
        self.team_ids
            .as_ref()
            .is_none_or(|ts| ts.iter().any(|t| t == team))
    }
}

/// Why authentication failed; the message is what the client reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthFailure(pub String);

/// Resolves the `Authorization` header value.
pub(crate) fn authenticate(
    st: &State,
    header: Option<&str>,
    now: Instant,
) -> Result<Auth, AuthFailure> {
    let fail = |m: &str| Err(AuthFailure(m.to_owned()));
    let Some(raw) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return fail("Authentication required, not authenticated");
    };
    let (bearer, value) = match raw.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => (true, rest.trim()),
        _ => (false, raw),
    };
    if let Some(key) = st.api_keys.get(value) {
        if bearer {
            // FACTS.md: personal API keys go without the Bearer prefix.
            return fail(
                "authentication failed: personal API keys are sent without the `Bearer` prefix",
            );
        }
        if key.revoked {
            return fail("authentication failed: the API key has been revoked");
        }
        if !st.user(&key.user_id).is_some_and(|u| u.active) {
            return fail("authentication failed: the API key's user is not active");
        }
        return Ok(Auth {
            user_id: key.user_id.clone(),
            scopes: key.scopes.clone(),
            team_ids: key.team_ids.clone(),
            kind: CredKind::ApiKey,
        });
    }
    if let Some(tok) = st.access_tokens.get(value) {
        if !bearer {
            return fail("authentication failed: OAuth access tokens are sent as `Bearer <token>`");
        }
        if tok.revoked {
            return fail("authentication failed: the access token has been revoked");
        }
        if now >= tok.expires_at {
            return fail("authentication failed: the access token has expired");
        }
        if !st.user(&tok.user_id).is_some_and(|u| u.active) {
            return fail("authentication failed: the token's user is not active");
        }
        return Ok(Auth {
            user_id: tok.user_id.clone(),
            scopes: tok.scopes.clone(),
            team_ids: None,
            kind: CredKind::OAuth {
                client_id: tok.client_id.clone(),
            },
        });
    }
    fail("authentication failed: the API key or access token is not valid")
}
