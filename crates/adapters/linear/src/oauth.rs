//! OAuth2 for Linear (FACTS.md "Endpoint / auth"): the authorize URL with
//! least-privilege scopes and a random `state`, the code exchange and refresh
//! (`POST https://api.linear.app/oauth/token`, form-encoded), and revoke.
//!
//! Source: linear.app/developers/oauth-2-0-authentication (authorize parameters,
//! comma-separated scopes, `state` to check on return, token exchange form-encoded,
//! the answer `{access_token, token_type, expires_in, scope, refresh_token}`; refresh
//! tokens are issued for every app since 2026-04-01). The revoke endpoint
//! (`POST https://api.linear.app/oauth/revoke`) is from the same page as quoted
//! secondhand; it is sent both forms it is documented with: the access token as
//! `Bearer` and RFC 7009's `token`/`token_type_hint` form fields.
//!
//! Least privilege: the exporter creates issues, attachments and labels, then updates
//! and archives its issues, so it needs `read,write`. An export that only ever creates
//! can use `read,issues:create` (issues and their attachments). `admin` is never asked.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Deserialize;
use url::Url;
use webriskops_ports::PortError;

use crate::config::{check_url, ConfigError};
use crate::errors::{excerpt, Redactor};
use crate::secret::LinearSecret;
use crate::transport::{http_client, post_form};

/// Where the user approves the application.
pub const AUTHORIZE_URL: &str = "https://linear.app/oauth/authorize";
/// Code exchange and refresh.
pub const TOKEN_URL: &str = "https://api.linear.app/oauth/token";
/// Token revocation.
pub const REVOKE_URL: &str = "https://api.linear.app/oauth/revoke";

/// The scopes asked for; `read` is always present (FACTS.md "Endpoint / auth").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scopes {
    /// `read,write`: create, update and archive issues, create labels. The default.
    #[default]
    ReadWrite,
    /// `read,issues:create`: create issues and their attachments only; updates,
    /// archiving and label creation are refused.
    ReadIssuesCreate,
    /// `read,write,admin`: also create and delete webhooks, which Linear allows only
    /// workspace admins and OAuth applications with `admin`
    /// (developers.linear.app/docs/graphql/webhooks). Only for a server that
    /// registers its own webhook.
    ReadWriteAdmin,
}

impl Scopes {
    pub fn as_str(self) -> &'static str {
        match self {
            Scopes::ReadWrite => "read,write",
            Scopes::ReadIssuesCreate => "read,issues:create",
            Scopes::ReadWriteAdmin => "read,write,admin",
        }
    }
}

/// Options of the authorize URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorizeOptions {
    pub scopes: Scopes,
    /// `actor=app`: issues are created as the application, not the user.
    pub actor_app: bool,
    /// `prompt=consent`: show the consent screen even if granted before.
    pub prompt_consent: bool,
}

/// The URL to send the user to, and the `state` to compare with the one Linear sends
/// back (see [`check_state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub url: Url,
    pub state: String,
}

/// Builds the authorize URL with a fresh random `state` (128 bits, hex).
pub fn authorize_url(
    client_id: &str,
    redirect_uri: &Url,
    options: &AuthorizeOptions,
) -> AuthorizeRequest {
    authorize_url_at(
        &Url::parse(AUTHORIZE_URL).expect("valid constant"),
        client_id,
        redirect_uri,
        options,
    )
}

/// [`authorize_url`] for another authorize endpoint, e.g. linear-sim's
/// `http://127.0.0.1:PORT/oauth/authorize` (`SimServer::root_url()` + `/oauth/authorize`).
pub fn authorize_url_at(
    authorize_endpoint: &Url,
    client_id: &str,
    redirect_uri: &Url,
    options: &AuthorizeOptions,
) -> AuthorizeRequest {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let state = hex::encode(bytes);
    let mut url = authorize_endpoint.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri.as_str())
            .append_pair("response_type", "code")
            .append_pair("scope", options.scopes.as_str())
            .append_pair("state", &state);
        if options.actor_app {
            q.append_pair("actor", "app");
        }
        if options.prompt_consent {
            q.append_pair("prompt", "consent");
        }
    }
    AuthorizeRequest { url, state }
}

/// Compares the `state` returned to the redirect URI with the one sent, in constant
/// time.
///
/// # Errors
/// `PermissionDenied` when they differ: the redirect is not an answer to this request
/// and must not be trusted.
pub fn check_state(sent: &str, returned: &str) -> Result<(), PortError> {
    let (a, b) = (sent.as_bytes(), returned.as_bytes());
    let diff = a
        .iter()
        .zip(b)
        .fold(u8::from(a.len() != b.len()), |acc, (x, y)| acc | (x ^ y));
    if diff == 0 && !a.is_empty() {
        Ok(())
    } else {
        Err(PortError::PermissionDenied {
            context: Default::default(),
            message: "the OAuth state returned by Linear does not match the one sent; start the authorization again".into(),
        })
    }
}

/// Tokens from an exchange or a refresh. `Debug` redacts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: LinearSecret,
    /// Present for every app since 2026-04-01; a refresh may rotate it.
    pub refresh_token: Option<LinearSecret>,
    /// When the access token expires (`expires_in` after it was received).
    pub expires_at: Option<DateTime<Utc>>,
    /// The scopes granted, as Linear lists them.
    pub scopes: Vec<String>,
}

#[derive(Deserialize)]
struct WireToken {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    scope: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The OAuth application's settings.
#[derive(Clone)]
pub struct OAuthClient {
    client: reqwest::Client,
    client_id: String,
    client_secret: LinearSecret,
    token_url: Url,
    revoke_url: Url,
    timeout: Duration,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// A client for Linear's endpoints.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(client_id: &str, client_secret: LinearSecret) -> Result<Self, ConfigError> {
        Self::with_endpoints(client_id, client_secret, TOKEN_URL, REVOKE_URL)
    }

    /// A client for other endpoints (a simulator): `https`, or `http` on loopback.
    ///
    /// # Errors
    /// An endpoint is not acceptable.
    pub fn with_endpoints(
        client_id: &str,
        client_secret: LinearSecret,
        token_url: &str,
        revoke_url: &str,
    ) -> Result<Self, ConfigError> {
        let parse = |s: &str| -> Result<Url, ConfigError> {
            let u = Url::parse(s).map_err(|e| ConfigError::ApiUrl {
                url: excerpt(s, 200),
                reason: e.to_string(),
            })?;
            check_url(&u)?;
            Ok(u)
        };
        let token_url = parse(token_url)?;
        let revoke_url = parse(revoke_url)?;
        let timeout = Duration::from_secs(30);
        Ok(OAuthClient {
            client: http_client(&token_url, timeout, 2)?,
            client_id: client_id.to_owned(),
            client_secret,
            token_url,
            revoke_url,
            timeout,
        })
    }

    /// Exchanges the authorization code from the redirect for tokens. Sent once: a code
    /// is single-use.
    ///
    /// # Errors
    /// `Unauthenticated` when Linear refuses the code or the client (`invalid_grant`,
    /// `invalid_client`); `Unavailable` on 5xx or no connection.
    pub async fn exchange_code(
        &self,
        code: &LinearSecret,
        redirect_uri: &Url,
    ) -> Result<TokenSet, PortError> {
        self.token_request(
            &[
                ("grant_type", "authorization_code"),
                ("code", code.expose()),
                ("redirect_uri", redirect_uri.as_str()),
                ("client_id", &self.client_id),
                ("client_secret", self.client_secret.expose()),
            ],
            &[code.expose()],
            "the OAuth code exchange",
        )
        .await
    }

    /// Gets a new access token with a refresh token. Keep the returned refresh token:
    /// Linear may rotate it.
    ///
    /// # Errors
    /// As [`OAuthClient::exchange_code`]; a refused refresh token means the user must
    /// authorize again.
    pub async fn refresh(&self, refresh_token: &LinearSecret) -> Result<TokenSet, PortError> {
        self.token_request(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose()),
                ("client_id", &self.client_id),
                ("client_secret", self.client_secret.expose()),
            ],
            &[refresh_token.expose()],
            "the OAuth token refresh",
        )
        .await
    }

    /// Revokes an access token (and with it the grant).
    ///
    /// # Errors
    /// As [`OAuthClient::exchange_code`].
    pub async fn revoke(&self, access_token: &LinearSecret) -> Result<(), PortError> {
        let redactor = self.redactor(&[access_token.expose()]);
        revoke_with(
            &self.client,
            &self.revoke_url,
            access_token,
            self.timeout,
            &redactor,
        )
        .await
    }

    fn redactor(&self, extra: &[&str]) -> Redactor {
        let mut all = vec![self.client_secret.expose()];
        all.extend_from_slice(extra);
        Redactor::new(&all)
    }

    async fn token_request(
        &self,
        form: &[(&str, &str)],
        secrets: &[&str],
        what: &str,
    ) -> Result<TokenSet, PortError> {
        let redactor = self.redactor(secrets);
        let received_at = Utc::now();
        let (status, body) = post_form(
            &self.client,
            &self.token_url,
            None,
            form,
            self.timeout,
            &redactor,
            what,
        )
        .await?;
        if !(200..300).contains(&status) {
            return Err(map_oauth_error(status, &body, &redactor, what));
        }
        parse_token(&body, received_at, &redactor, what)
    }
}

/// Revokes an access token (and with it the grant) at `revoke_url` ([`REVOKE_URL`], or a
/// simulator's): the token itself authenticates the request, so no client secret is
/// needed. Sent once.
///
/// # Errors
/// An unusable `revoke_url` is `InvalidInput`; otherwise as [`OAuthClient::revoke`].
pub async fn revoke_access_token(
    revoke_url: &str,
    access_token: &LinearSecret,
    timeout: Duration,
) -> Result<(), PortError> {
    let url = Url::parse(revoke_url).map_err(|e| ConfigError::ApiUrl {
        url: excerpt(revoke_url, 200),
        reason: e.to_string(),
    })?;
    check_url(&url)?;
    let client = http_client(&url, timeout, 1)?;
    let redactor = Redactor::new(&[access_token.expose()]);
    revoke_with(&client, &url, access_token, timeout, &redactor).await
}

async fn revoke_with(
    client: &reqwest::Client,
    revoke_url: &Url,
    access_token: &LinearSecret,
    timeout: Duration,
    redactor: &Redactor,
) -> Result<(), PortError> {
    let what = "the OAuth token revoke";
    let (status, body) = post_form(
        client,
        revoke_url,
        Some(access_token.expose()),
        &[
            ("token", access_token.expose()),
            ("token_type_hint", "access_token"),
        ],
        timeout,
        redactor,
        what,
    )
    .await?;
    if (200..300).contains(&status) {
        return Ok(());
    }
    Err(map_oauth_error(status, &body, redactor, what))
}

/// Reads a token answer. Every token in it is wrapped at once, so none can print.
fn parse_token(
    body: &[u8],
    received_at: DateTime<Utc>,
    redactor: &Redactor,
    what: &str,
) -> Result<TokenSet, PortError> {
    let w: WireToken = serde_json::from_slice(body).map_err(|e| PortError::Other {
        context: Default::default(),
        // The decode error may quote the body, which holds tokens: only its position.
        message: format!(
            "cannot read Linear's answer to {what}: not a token answer (line {}, column {})",
            e.line(),
            e.column()
        ),
    })?;
    let bad = |m: &str| PortError::Other {
        context: Default::default(),
        message: format!("Linear's answer to {what} {m}"),
    };
    if let Some(t) = &w.token_type {
        if !t.eq_ignore_ascii_case("bearer") {
            return Err(bad(&format!(
                "has token_type {:?}, not Bearer",
                redactor.excerpt(t, 40)
            )));
        }
    }
    let access_token = LinearSecret::new("access token", w.access_token)
        .map_err(|e| bad(&format!("has an unusable access token: {}", e.reason)))?;
    let refresh_token = match w.refresh_token {
        Some(r) => Some(
            LinearSecret::new("refresh token", r)
                .map_err(|e| bad(&format!("has an unusable refresh token: {}", e.reason)))?,
        ),
        None => None,
    };
    let expires_at = match w.expires_in {
        None => None,
        // Ten years at most: a hostile value cannot overflow the date.
        Some(s) if (0..=315_576_000).contains(&s) => {
            Some(received_at + chrono::Duration::seconds(s))
        }
        Some(s) => return Err(bad(&format!("has expires_in {s}, out of range"))),
    };
    let scopes = match w.scope {
        Some(serde_json::Value::String(s)) => s
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(|s| excerpt(s, 64))
            .collect(),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str())
            .map(|s| excerpt(s, 64))
            .collect(),
        _ => Vec::new(),
    };
    Ok(TokenSet {
        access_token,
        refresh_token,
        expires_at,
        scopes,
    })
}

/// How long before its expiry an access token is refreshed ([`StoredOAuth::needs_refresh`]).
pub const REFRESH_MARGIN: chrono::Duration = chrono::Duration::minutes(5);

/// An OAuth2 token set as the application keeps it: sealed in the secret store like a
/// personal API key, under the same reference and binding. It carries what a refresh
/// needs: the refresh token and the OAuth application's client id and secret (Linear's
/// token endpoint authenticates the client on `grant_type=refresh_token`).
///
/// Its text form ([`StoredOAuth::to_text`]) is one line of compact JSON, so it starts with
/// `{`, which no personal API key (`lin_api_…`) does: [`StoredOAuth::is_token_set`] tells
/// the two apart. `Debug` redacts every secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOAuth {
    pub tokens: TokenSet,
    pub client_id: String,
    pub client_secret: LinearSecret,
}

/// The stored JSON; short keys keep it within the store's 512-character token limit.
#[derive(serde::Serialize, Deserialize)]
struct WireStored {
    v: u8,
    access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    scopes: Vec<String>,
    client_id: String,
    client_secret: String,
}

impl StoredOAuth {
    /// Whether `text` is a stored token set rather than a personal API key.
    pub fn is_token_set(text: &str) -> bool {
        text.trim_start().starts_with('{')
    }

    /// Reads a stored token set. The error never quotes the text (it holds secrets).
    ///
    /// # Errors
    /// Not one line of the JSON [`StoredOAuth::to_text`] writes, or an unusable secret in
    /// it.
    pub fn parse(text: &str) -> Result<StoredOAuth, PortError> {
        let bad = |why: String| {
            PortError::InvalidInput {
                context: Default::default(),
            message: format!(
                "the Linear OAuth token set is not usable: {why}; write it as one line of JSON                  {{\"v\":1,\"access_token\":…,\"refresh_token\":…,\"expires_at\":…,\"scopes\":[…],\
                 \"client_id\":…,\"client_secret\":…}}, or authorize again"
            ),
        }
        };
        let w: WireStored = serde_json::from_str(text.trim()).map_err(|e| {
            bad(format!(
                "not that JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if w.v != 1 {
            return Err(bad(format!("version {} is not 1", w.v)));
        }
        let secret = |what, v: String| {
            LinearSecret::new(what, v).map_err(|e| bad(format!("its {what} {}", e.reason)))
        };
        if w.client_id.trim().is_empty() || !w.client_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("its client id is empty or not printable ASCII".into()));
        }
        Ok(StoredOAuth {
            tokens: TokenSet {
                access_token: secret("access token", w.access_token)?,
                refresh_token: w
                    .refresh_token
                    .map(|r| secret("refresh token", r))
                    .transpose()?,
                expires_at: w.expires_at,
                scopes: w.scopes.iter().map(|s| excerpt(s, 64)).collect(),
            },
            client_id: w.client_id,
            client_secret: secret("client secret", w.client_secret)?,
        })
    }

    /// The stored text: one line of compact JSON.
    pub fn to_text(&self) -> String {
        let w = WireStored {
            v: 1,
            access_token: self.tokens.access_token.expose().to_owned(),
            refresh_token: self
                .tokens
                .refresh_token
                .as_ref()
                .map(|r| r.expose().to_owned()),
            expires_at: self.tokens.expires_at,
            scopes: self.tokens.scopes.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.expose().to_owned(),
        };
        serde_json::to_string(&w).unwrap_or_default()
    }

    /// Every secret in the set, for the redaction of output.
    pub fn secrets(&self) -> Vec<&LinearSecret> {
        let mut all = vec![&self.tokens.access_token, &self.client_secret];
        all.extend(self.tokens.refresh_token.as_ref());
        all
    }

    /// Whether the access token should be refreshed before use at `now`: it expires within
    /// [`REFRESH_MARGIN`] and a refresh token is kept.
    pub fn needs_refresh(&self, now: DateTime<Utc>) -> bool {
        self.tokens.refresh_token.is_some()
            && self
                .tokens
                .expires_at
                .is_some_and(|at| at - REFRESH_MARGIN <= now)
    }

    /// What the credential's facts are for readiness and the neutral grant.
    pub fn facts(&self) -> crate::readiness::CredentialFacts {
        crate::readiness::CredentialFacts {
            scopes: self.tokens.scopes.clone(),
            expires_at: self.tokens.expires_at,
            refreshable: self.tokens.refresh_token.is_some(),
        }
    }

    /// Refreshes at `token_url` ([`TOKEN_URL`], or a simulator's: `https`, or `http` on
    /// loopback) and returns the new set to store in place of this one. Linear may rotate
    /// the refresh token; when the answer carries none, the current one is kept.
    ///
    /// # Errors
    /// No refresh token (`Unauthenticated`: authorize again); otherwise as
    /// [`OAuthClient::refresh`]: a refused refresh token (`invalid_grant`) is
    /// `Unauthenticated`, an unreachable endpoint `Unavailable`.
    pub async fn refresh(&self, token_url: &str) -> Result<StoredOAuth, PortError> {
        let Some(refresh_token) = &self.tokens.refresh_token else {
            return Err(PortError::Unauthenticated {
                context: Default::default(),
                message: "the Linear OAuth access token expired and no refresh token is kept; \
                          authorize the application again"
                    .into(),
            });
        };
        let client = OAuthClient::with_endpoints(
            &self.client_id,
            self.client_secret.clone(),
            token_url,
            REVOKE_URL,
        )?;
        let mut tokens = client.refresh(refresh_token).await?;
        // RFC 6749 §6: the server MAY issue a new refresh token (then the client discards
        // the old one); without one in the answer the old one stays valid. Linear's OAuth
        // page (cited at the top) documents `refresh_token` in the token answer.
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(refresh_token.clone());
        }
        Ok(StoredOAuth {
            tokens,
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
        })
    }
}

/// An OAuth error answer (RFC 6749 §5.2: `{error, error_description}`) by meaning.
fn map_oauth_error(status: u16, body: &[u8], redactor: &Redactor, what: &str) -> PortError {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default();
    let code = redactor.excerpt(s("error"), 64);
    let detail = match (code.is_empty(), s("error_description")) {
        (true, "") => redactor.excerpt(&String::from_utf8_lossy(body), 200),
        (true, d) => redactor.excerpt(d, 200),
        (false, "") => code.clone(),
        (false, d) => format!("{code}: {}", redactor.excerpt(d, 200)),
    };
    match (status, code.as_str()) {
        (500..=599, _) => PortError::Unavailable {
            context: Default::default(),
            message: format!("Linear answered {status} to {what}: {detail}"),
        },
        (429, _) => PortError::RateLimited {
            context: Default::default(),
            retry_after: None,
            message: format!("{what}: {detail}"),
        },
        (_, "invalid_grant") => PortError::Unauthenticated {
            context: Default::default(),
            message: format!("Linear refused {what} ({detail}); authorize the application again"),
        },
        (_, "invalid_client" | "unauthorized_client") | (401, _) => PortError::Unauthenticated {
            context: Default::default(),
            message: format!(
                "Linear refused {what} ({detail}); check the OAuth application's client id and secret"
            ),
        },
        (_, "invalid_scope") | (403, _) => PortError::PermissionDenied {
            context: Default::default(),
            message: format!("Linear refused {what}: {detail}"),
        },
        _ => PortError::InvalidInput {
            context: Default::default(),
            message: format!("Linear refused {what} with {status}: {detail}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_asks_least_privilege_and_a_fresh_state() {
        let redirect = Url::parse("https://app.example.com/oauth/linear").unwrap();
        let a = authorize_url("client1", &redirect, &AuthorizeOptions::default());
        let b = authorize_url("client1", &redirect, &AuthorizeOptions::default());
        assert_ne!(a.state, b.state, "state is random per request");
        assert_eq!(a.state.len(), 32);
        let q: std::collections::HashMap<_, _> = a.url.query_pairs().into_owned().collect();
        assert_eq!(a.url.as_str().split('?').next(), Some(AUTHORIZE_URL));
        assert_eq!(q["client_id"], "client1");
        assert_eq!(q["redirect_uri"], redirect.as_str());
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["scope"], "read,write");
        assert_eq!(q["state"], a.state);
        assert!(!q.contains_key("actor"));
        let c = authorize_url(
            "client1",
            &redirect,
            &AuthorizeOptions {
                scopes: Scopes::ReadIssuesCreate,
                actor_app: true,
                prompt_consent: false,
            },
        );
        let q: std::collections::HashMap<_, _> = c.url.query_pairs().into_owned().collect();
        assert_eq!(q["scope"], "read,issues:create");
        assert_eq!(q["actor"], "app");
        assert!(!c.url.as_str().contains("admin"));
    }

    #[test]
    fn state_must_match_exactly() {
        assert!(check_state("abcd", "abcd").is_ok());
        assert!(check_state("abcd", "abce").is_err());
        assert!(check_state("abcd", "abc").is_err());
        assert!(check_state("", "").is_err());
    }

    #[test]
    fn token_answers_are_typed_and_never_print() {
        let at = Utc::now();
        let t = parse_token(
            br#"{"access_token":"ACCESS123","token_type":"Bearer","expires_in":86399,"scope":"read write","refresh_token":"REFRESH456"}"#,
            at,
            &Redactor::default(),
            "x",
        )
        .unwrap();
        assert_eq!(t.access_token.expose(), "ACCESS123");
        assert_eq!(t.refresh_token.as_ref().unwrap().expose(), "REFRESH456");
        assert_eq!(t.expires_at, Some(at + chrono::Duration::seconds(86399)));
        assert_eq!(t.scopes, vec!["read", "write"]);
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("ACCESS123") && !shown.contains("REFRESH456"),
            "{shown}"
        );
        // A malformed answer quoting a token never echoes it.
        let e = parse_token(
            br#"{"access_token":"ACCESS123","#,
            at,
            &Redactor::default(),
            "x",
        )
        .unwrap_err();
        assert!(!e.to_string().contains("ACCESS123"), "{e}");
        let e = parse_token(
            br#"{"access_token":"A","expires_in":99999999999999}"#,
            at,
            &Redactor::default(),
            "x",
        )
        .unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
    }

    #[test]
    fn oauth_errors_by_meaning() {
        let r = Redactor::new(&["CLIENTSECRET"]);
        let e = map_oauth_error(
            400,
            br#"{"error":"invalid_grant","error_description":"code CLIENTSECRET expired"}"#,
            &r,
            "the OAuth code exchange",
        );
        assert_eq!(e.kind(), "unauthenticated");
        assert!(!e.to_string().contains("CLIENTSECRET"), "{e}");
        assert_eq!(map_oauth_error(401, b"", &r, "x").kind(), "unauthenticated");
        assert_eq!(map_oauth_error(503, b"down", &r, "x").kind(), "unavailable");
        assert_eq!(
            map_oauth_error(400, br#"{"error":"invalid_request"}"#, &r, "x").kind(),
            "invalid_input"
        );
    }
}
