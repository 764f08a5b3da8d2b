//! Getting a token: the authorize URL (key + token flow) and the OAuth 1.0 endpoints
//! (FACTS.md §6). A token from either flow is used the same way: in the
//! `Authorization: OAuth oauth_consumer_key="…", oauth_token="…"` header.
//!
//! Two ways to get a token:
//!
//! 1. **Key + token** (what `webriskops` setup uses): the user opens
//!    [`authorize_url`], approves, and pastes the token shown (or it comes back to
//!    `return_url` in the URL fragment).
//! 2. **OAuth 1.0 three-legged flow**, for an application with a server side; its
//!    requests are signed with the application's OAuth secret from the key page
//!    (FACTS.md §6):
//!    1. the application POSTs to [`OAUTH_REQUEST_TOKEN_URL`] with its callback and
//!       gets a temporary request token and secret;
//!    2. it sends the user to [`OAUTH_AUTHORIZE_TOKEN_URL`] with that request token
//!       (asking for scope `read,write` and an expiration, as with the authorize URL),
//!       where the user approves; Trello redirects to the callback with a verifier;
//!    3. the application POSTs the request token and verifier to
//!       [`OAUTH_ACCESS_TOKEN_URL`] and receives the access token.
//!
//!    The access token is then used exactly like a key + token pair: the API key is
//!    the OAuth consumer key. This crate does not sign OAuth 1.0 requests; the flow
//!    runs in the application that owns the secret.
//!
//! Least privilege: the exporter needs `read,write` (read boards, lists, labels,
//! members and cards; create and update cards, checklists and labels). `account`
//! (change the member's own profile, mark notifications read) is never needed and
//! should not be granted.

use url::Url;
use webriskops_domain::{ApiKey, Scope, Token};

/// The page where a user authorizes a token for an API key.
pub const AUTHORIZE_URL: &str = "https://trello.com/1/authorize";
/// OAuth 1.0, leg 1: the application gets a request token (signed with its secret).
pub const OAUTH_REQUEST_TOKEN_URL: &str = "https://trello.com/1/OAuthGetRequestToken";
/// OAuth 1.0, leg 2: the user approves the request token in the browser.
pub const OAUTH_AUTHORIZE_TOKEN_URL: &str = "https://trello.com/1/OAuthAuthorizeToken";
/// OAuth 1.0, leg 3: the application exchanges the verifier for an access token.
pub const OAUTH_ACCESS_TOKEN_URL: &str = "https://trello.com/1/OAuthGetAccessToken";

/// How long a token lives (`expiration` of the authorize URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiration {
    OneHour,
    OneDay,
    /// The default: long enough for routine exports, short enough to limit a leak.
    #[default]
    ThirtyDays,
    Never,
}

impl Expiration {
    pub fn as_str(self) -> &'static str {
        match self {
            Expiration::OneHour => "1hour",
            Expiration::OneDay => "1day",
            Expiration::ThirtyDays => "30days",
            Expiration::Never => "never",
        }
    }
}

/// Options of the authorize URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeOptions {
    /// Shown to the user on the authorize page (`name`).
    pub app_name: String,
    pub expiration: Expiration,
    /// Default `read,write`; `account` is never needed.
    pub scopes: Vec<Scope>,
    /// Where Trello sends the user (with the token in the fragment) after approval;
    /// without it Trello shows the token on the page for the user to copy.
    pub return_url: Option<String>,
}

impl Default for AuthorizeOptions {
    fn default() -> Self {
        AuthorizeOptions {
            app_name: "WebRiskOps".into(),
            expiration: Expiration::default(),
            scopes: vec![Scope::Read, Scope::Write],
            return_url: None,
        }
    }
}

/// The URL a user opens to create a token for `api_key`:
/// `https://trello.com/1/authorize?expiration=…&name=…&scope=read,write&response_type=token&key=…`
/// (FACTS.md §6). With a `return_url`, `callback_method=fragment` is added so the token
/// comes back in the URL fragment, which browsers do not send to servers.
///
/// The API key is not a secret (it is in every authorize URL); the token never appears
/// in any URL this crate builds.
pub fn authorize_url(api_key: &ApiKey, options: &AuthorizeOptions) -> String {
    let mut url = Url::parse(AUTHORIZE_URL).expect("valid constant");
    let scopes = if options.scopes.is_empty() {
        "read,write".to_owned()
    } else {
        let mut s: Vec<&str> = options.scopes.iter().map(|s| s.as_str()).collect();
        s.dedup();
        s.join(",")
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("expiration", options.expiration.as_str());
        q.append_pair("name", &options.app_name);
        q.append_pair("scope", &scopes);
        q.append_pair("response_type", "token");
        q.append_pair("key", api_key.expose());
        if let Some(r) = &options.return_url {
            q.append_pair("callback_method", "fragment");
            q.append_pair("return_url", r);
        }
    }
    // `scope=read,write` reads better unescaped, as Trello's docs write it.
    url.to_string().replace("%2C", ",")
}

/// The Authorization header value for a key and token.
pub(crate) fn authorization_header(key: &ApiKey, token: &Token) -> String {
    format!(
        "OAuth oauth_consumer_key=\"{}\", oauth_token=\"{}\"",
        key.expose(),
        token.expose()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ApiKey {
        ApiKey::new("0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn authorize_url_asks_for_read_write_only() {
        let url = authorize_url(&key(), &AuthorizeOptions::default());
        assert_eq!(
            url,
            "https://trello.com/1/authorize?expiration=30days&name=WebRiskOps&scope=read,write&response_type=token&key=0123456789abcdef0123456789abcdef"
        );
        assert!(!url.contains("account"));
    }

    #[test]
    fn authorize_url_options() {
        let url = authorize_url(
            &key(),
            &AuthorizeOptions {
                app_name: "Web Risk Ops".into(),
                expiration: Expiration::Never,
                scopes: vec![Scope::Read],
                return_url: Some("https://app.example.com/trello/done".into()),
            },
        );
        assert!(url.contains("expiration=never"));
        assert!(url.contains("name=Web+Risk+Ops"));
        assert!(url.contains("scope=read&"));
        assert!(url.contains("callback_method=fragment"));
        assert!(url.contains("return_url=https%3A%2F%2Fapp.example.com%2Ftrello%2Fdone"));
        assert_eq!(Expiration::OneHour.as_str(), "1hour");
        assert_eq!(Expiration::OneDay.as_str(), "1day");
    }

    #[test]
    fn header_form() {
        let t = Token::new("tok").unwrap();
        assert_eq!(
            authorization_header(&key(), &t),
            "OAuth oauth_consumer_key=\"0123456789abcdef0123456789abcdef\", oauth_token=\"tok\""
        );
    }
}
