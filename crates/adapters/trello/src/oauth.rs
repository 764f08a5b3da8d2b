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
//!    the OAuth consumer key. [`OAuth1Client`] runs the two signed legs (RFC 5849
//!    HMAC-SHA1, signed with the application secret and, for leg 3, the request
//!    token's secret) and builds the leg-2 URL; the application keeps the request
//!    token's secret between legs.
//!
//! Least privilege: the exporter needs `read,write` (read boards, lists, labels,
//! members and cards; create and update cards, checklists and labels). `account`
//! (change the member's own profile, mark notifications read) is never needed and
//! should not be granted.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::Rng;
use sha1::Sha1;
use url::Url;
use webriskops_domain::{ApiKey, Scope, Token};
use webriskops_http::Redactor;
use webriskops_ports::PortError;

use crate::config::{parse_api_root, ConfigError};

/// The page where a user authorizes a token for an API key.
pub const AUTHORIZE_URL: &str = "https://trello.com/1/authorize";
/// OAuth 1.0, leg 1: the application gets a request token (signed with its secret).
pub const OAUTH_REQUEST_TOKEN_URL: &str = "https://trello.com/1/OAuthGetRequestToken";
/// OAuth 1.0, leg 2: the user approves the request token in the browser.
pub const OAUTH_AUTHORIZE_TOKEN_URL: &str = "https://trello.com/1/OAuthAuthorizeToken";
/// OAuth 1.0, leg 3: the application exchanges the verifier for an access token.
pub const OAUTH_ACCESS_TOKEN_URL: &str = "https://trello.com/1/OAuthGetAccessToken";

/// Where Trello's authorize pages and OAuth 1.0 endpoints live (the site, not the API
/// root `api.trello.com`).
pub const SITE_ROOT: &str = "https://trello.com/1";

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
    authorize_url_at(
        &Url::parse(SITE_ROOT).expect("valid constant"),
        api_key,
        options,
    )
}

/// [`authorize_url`] on another site root (e.g. trello-sim's `http://127.0.0.1:PORT/1`).
pub fn authorize_url_at(site_root: &Url, api_key: &ApiKey, options: &AuthorizeOptions) -> String {
    let mut url = site_root.clone();
    url.path_segments_mut()
        .expect("a base URL")
        .pop_if_empty()
        .push("authorize");
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

fn scope_list(scopes: &[Scope]) -> String {
    if scopes.is_empty() {
        return "read,write".to_owned();
    }
    let mut s: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    s.dedup();
    s.join(",")
}

/// RFC 3986 unreserved characters stay; everything else is `%XX` (RFC 5849 §3.6).
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// RFC 5849 §3.4.1: the signature base string of a request: the method, the base URI
/// (scheme, host, port if not the default, path; no query) and every parameter (query,
/// form body, `oauth_*` but `oauth_signature`), each encoded, sorted by name then value.
pub fn signature_base_string(method: &str, base_uri: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "oauth_signature")
        .map(|(k, v)| (enc(k), enc(v)))
        .collect();
    pairs.sort();
    let normalized = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        enc(base_uri),
        enc(&normalized)
    )
}

/// RFC 5849 §3.4.2: `HMAC-SHA1` of the base string, keyed `enc(consumer secret)&enc(token
/// secret)`, base64.
pub fn hmac_sha1_signature(base_string: &str, consumer_secret: &str, token_secret: &str) -> String {
    let key = format!("{}&{}", enc(consumer_secret), enc(token_secret));
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(base_string.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A temporary request token (leg 1). Keep it, secret included, until the person comes
/// back to the callback with its verifier; then pass it to [`OAuth1Client::access_token`].
#[derive(Clone, PartialEq, Eq)]
pub struct RequestToken {
    /// `oauth_token`: public, it travels in the authorize URL and comes back to the callback.
    pub token: String,
    /// `oauth_token_secret`: never shown.
    pub secret: Token,
}

impl std::fmt::Debug for RequestToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestToken")
            .field("token", &self.token)
            .field("secret", &self.secret)
            .finish()
    }
}

/// The result of leg 3: an API token for the key (used like any other: in the
/// `Authorization: OAuth oauth_consumer_key, oauth_token` header), and its OAuth secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: Token,
    pub secret: Token,
}

/// What the person is asked to grant on the leg-2 page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth1AuthorizeOptions {
    /// Shown to the person (`name`).
    pub app_name: String,
    pub expiration: Expiration,
    /// Default `read,write`.
    pub scopes: Vec<Scope>,
}

impl Default for OAuth1AuthorizeOptions {
    fn default() -> Self {
        OAuth1AuthorizeOptions {
            app_name: "WebRiskOps".into(),
            expiration: Expiration::default(),
            scopes: vec![Scope::Read, Scope::Write],
        }
    }
}

/// Trello's OAuth 1.0a three-legged flow for an application holding its API key and
/// secret (`TRELLO_API_KEY`, `TRELLO_API_SECRET`). Endpoints as in Trello's
/// authorization guide and its OAuth 1 clients (py-trello `util.create_oauth_token`,
/// trelloR `get_token`): `OAuthGetRequestToken`, `OAuthAuthorizeToken?oauth_token=…&name=…&scope=…&expiration=…`,
/// `OAuthGetAccessToken`. Requests carry their `oauth_*` parameters in the
/// `Authorization: OAuth …` header (RFC 5849 §3.5.1).
pub struct OAuth1Client {
    http: reqwest::Client,
    site_root: Url,
    key: ApiKey,
    secret: Token,
    redactor: Redactor,
}

impl std::fmt::Debug for OAuth1Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth1Client")
            .field("site_root", &self.site_root.as_str())
            .field("key", &self.key)
            .field("secret", &self.secret)
            .finish()
    }
}

impl OAuth1Client {
    /// A client for the site at `site_root` ([`SITE_ROOT`], or trello-sim's base URL):
    /// `https`, or plain http on a loopback host only.
    ///
    /// # Errors
    /// An unacceptable root, or a client that cannot be built.
    pub fn new(site_root: &str, key: ApiKey, app_secret: Token) -> Result<Self, ConfigError> {
        let site_root = parse_api_root(site_root)?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30));
        if crate::is_loopback(&site_root) {
            builder = builder.no_proxy();
        }
        let http = builder
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        let redactor = Redactor::new(&[app_secret.expose(), key.expose()]);
        Ok(OAuth1Client {
            http,
            site_root,
            key,
            secret: app_secret,
            redactor,
        })
    }

    fn endpoint(&self, name: &str) -> Url {
        let mut u = self.site_root.clone();
        u.path_segments_mut()
            .expect("a base URL")
            .pop_if_empty()
            .push(name);
        u
    }

    /// Leg 1: `POST OAuthGetRequestToken` with `oauth_callback` (where Trello sends the
    /// person back with `oauth_token` and `oauth_verifier`).
    ///
    /// # Errors
    /// `Unauthenticated` when Trello refuses the key or signature; transport errors.
    pub async fn request_token(&self, callback: &str) -> Result<RequestToken, PortError> {
        let answer = self
            .signed_post(
                "OAuthGetRequestToken",
                &[("oauth_callback", callback.to_owned())],
                "",
            )
            .await?;
        let token = field(&answer, "oauth_token")?;
        let secret = field(&answer, "oauth_token_secret")?;
        Ok(RequestToken {
            token,
            secret: Token::new(secret).map_err(|_| malformed("oauth_token_secret"))?,
        })
    }

    /// Leg 2: the page the person opens to approve the request token:
    /// `…/OAuthAuthorizeToken?oauth_token=…&name=…&scope=read,write&expiration=…`.
    pub fn authorize_url(
        &self,
        request: &RequestToken,
        options: &OAuth1AuthorizeOptions,
    ) -> String {
        let mut url = self.endpoint("OAuthAuthorizeToken");
        url.query_pairs_mut()
            .append_pair("oauth_token", &request.token)
            .append_pair("name", &options.app_name)
            .append_pair("scope", &scope_list(&options.scopes))
            .append_pair("expiration", options.expiration.as_str());
        url.to_string().replace("%2C", ",")
    }

    /// Leg 3: `POST OAuthGetAccessToken` with the request token and the verifier the
    /// callback received, signed with the request token's secret.
    ///
    /// # Errors
    /// `Unauthenticated` when Trello refuses the request token, verifier or signature;
    /// transport errors.
    pub async fn access_token(
        &self,
        request: &RequestToken,
        verifier: &str,
    ) -> Result<AccessToken, PortError> {
        let answer = self
            .signed_post(
                "OAuthGetAccessToken",
                &[
                    ("oauth_token", request.token.clone()),
                    ("oauth_verifier", verifier.to_owned()),
                ],
                request.secret.expose(),
            )
            .await?;
        let token = field(&answer, "oauth_token")?;
        let secret = field(&answer, "oauth_token_secret")?;
        Ok(AccessToken {
            token: Token::new(token).map_err(|_| malformed("oauth_token"))?,
            secret: Token::new(secret).map_err(|_| malformed("oauth_token_secret"))?,
        })
    }

    /// POSTs to `endpoint` with the `oauth_*` parameters (plus `extra`) signed in the
    /// Authorization header; answers the form-encoded body.
    async fn signed_post(
        &self,
        endpoint: &str,
        extra: &[(&str, String)],
        token_secret: &str,
    ) -> Result<Vec<(String, String)>, PortError> {
        let url = self.endpoint(endpoint);
        let nonce: String = {
            let mut rng = rand::thread_rng();
            (0..16)
                .map(|_| format!("{:02x}", rng.gen::<u8>()))
                .collect()
        };
        let mut params: Vec<(String, String)> = vec![
            ("oauth_consumer_key".into(), self.key.expose().to_owned()),
            ("oauth_nonce".into(), nonce),
            ("oauth_signature_method".into(), "HMAC-SHA1".into()),
            (
                "oauth_timestamp".into(),
                chrono::Utc::now().timestamp().to_string(),
            ),
            ("oauth_version".into(), "1.0".into()),
        ];
        params.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let base = signature_base_string("POST", url.as_str(), &params);
        let signature = hmac_sha1_signature(&base, self.secret.expose(), token_secret);
        params.push(("oauth_signature".into(), signature));
        let header = format!(
            "OAuth {}",
            params
                .iter()
                .map(|(k, v)| format!("{}=\"{}\"", enc(k), enc(v)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut value = reqwest::header::HeaderValue::from_str(&header)
            .map_err(|_| PortError::other("the OAuth header cannot be built"))?;
        value.set_sensitive(true);
        let resp = self
            .http
            .post(url)
            .header(reqwest::header::AUTHORIZATION, value)
            .send()
            .await
            .map_err(|e| PortError::Unavailable {
                context: Default::default(),
                message: format!(
                    "cannot reach Trello for {endpoint}: {}",
                    self.redactor.excerpt(
                        &webriskops_http::strip_urls(&e.without_url().to_string()),
                        200
                    )
                ),
            })?;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            let text = self.redactor.excerpt(&body, 200);
            let message = format!("Trello answered {status} to {endpoint}: {text}");
            return Err(match status {
                401 | 403 => PortError::Unauthenticated {
                    context: Default::default(),
                    message,
                },
                400..=499 => PortError::InvalidInput {
                    context: Default::default(),
                    message,
                },
                _ => PortError::Unavailable {
                    context: Default::default(),
                    message,
                },
            });
        }
        Ok(url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect())
    }
}

fn field(answer: &[(String, String)], name: &str) -> Result<String, PortError> {
    answer
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| malformed(name))
}

fn malformed(name: &str) -> PortError {
    PortError::other(format!("Trello's OAuth answer has no usable {name}"))
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

    /// RFC 5849 §1.2's photo request (and OAuth Core 1.0 Appendix A.5's variant of it):
    /// the same base string and signatures the specifications give.
    #[test]
    fn rfc5849_signature_vectors() {
        let pairs = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
            [
                ("file", "vacation.jpg"),
                ("size", "original"),
                ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
                ("oauth_token", "nnch734d00sl2jdk"),
                ("oauth_signature_method", "HMAC-SHA1"),
            ]
            .iter()
            .chain(extra)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
        };
        let uri = "http://photos.example.net/photos";
        let rfc = pairs(&[("oauth_timestamp", "137131202"), ("oauth_nonce", "chapoH")]);
        let base = signature_base_string("GET", uri, &rfc);
        assert_eq!(
            hmac_sha1_signature(&base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00"),
            "MdpQcU8iPSUjWoN/UDMsK2sui9I="
        );
        let core = pairs(&[
            ("oauth_timestamp", "1191242096"),
            ("oauth_nonce", "kllo9940pd9333jh"),
            ("oauth_version", "1.0"),
        ]);
        let base = signature_base_string("GET", uri, &core);
        assert_eq!(
            base,
            "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
        );
        assert_eq!(
            hmac_sha1_signature(&base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00"),
            "tR3+Ty81lMeYAr/Fid0kMTYa/WM="
        );
        // Encoding is RFC 3986's: space as %20, `~` kept, `+` and `*` escaped.
        assert_eq!(enc("a b~+*"), "a%20b~%2B%2A");
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
