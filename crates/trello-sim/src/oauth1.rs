//! The browser and OAuth pages of Trello (FACTS.md §6):
//!
//! - `GET /1/authorize` (key + token flow): a page with an Allow form; approving creates
//!   a token and, with `return_url` and `callback_method=fragment`, redirects to
//!   `return_url#token=<token>`; without `return_url` the page shows the token.
//! - OAuth 1.0a, three legs, signed HMAC-SHA1 with the key's application secret
//!   (RFC 5849; Trello's endpoints as in its authorization guide and every OAuth 1
//!   client of it, e.g. py-trello `util.create_oauth_token`, trelloR `get_token`):
//!   `POST /1/OAuthGetRequestToken` (with `oauth_callback`) answers
//!   `oauth_token=…&oauth_token_secret=…&oauth_callback_confirmed=true`;
//!   `GET /1/OAuthAuthorizeToken?oauth_token=…&name=…&scope=…&expiration=…` is the
//!   Allow page, whose form redirects to the callback with `oauth_token` and
//!   `oauth_verifier`; `POST /1/OAuthGetAccessToken` (signed with the request token's
//!   secret, with `oauth_verifier`) answers `oauth_token=…&oauth_token_secret=…`. The
//!   access token is an ordinary 76-character API token for the key.
//!
//! Texts of refusals are not documented; the simulator answers 401 `invalid signature`,
//! `invalid key` or `invalid token`, and 400 `invalid value for <param>` in Trello's
//! usual plain-text style (an inference).
//!
//! The person approving is the member signed in to the browser
//! (`SimHandle::set_browser_member`; by default the first member created).

use std::collections::{HashMap, HashSet};

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use chrono::{Duration, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::Rng;
use sha1::Sha1;

use crate::routes::Reply;
use crate::state::{Permission, State};

/// A request token between leg 1 and leg 3.
#[derive(Debug, Clone)]
pub(crate) struct RequestToken {
    key: String,
    secret: String,
    callback: String,
    /// Set when the person approved, with what they approved.
    approved: Option<Approval>,
}

#[derive(Debug, Clone)]
struct Approval {
    verifier: String,
    member: String,
    scope: Vec<String>,
    expiration: String,
}

/// OAuth 1.0 state.
#[derive(Debug, Default)]
pub(crate) struct OAuth1State {
    request_tokens: HashMap<String, RequestToken>,
    /// access token -> its token secret.
    access_secrets: HashMap<String, String>,
    /// (consumer key, timestamp, nonce) seen: a replayed request is refused (RFC 5849 §3.3).
    nonces: HashSet<(String, String, String)>,
}

/// RFC 3986 unreserved characters stay; everything else is %XX (RFC 5849 §3.6).
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.gen::<u8>()))
        .collect()
}

/// The parameters of an `Authorization: OAuth …` header, decoded.
fn oauth_header_params(headers: &HeaderMap) -> Vec<(String, String)> {
    let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Vec::new();
    };
    let Some(rest) = v.trim().strip_prefix("OAuth ") else {
        return Vec::new();
    };
    rest.split(',')
        .filter_map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(s.trim().trim_matches('"'))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            Some((dec(k), dec(v)))
        })
        .filter(|(k, _)| k != "realm")
        .collect()
}

/// RFC 5849 §3.4.1: the signature base string.
fn base_string(method: &str, base_uri: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "oauth_signature")
        .map(|(k, v)| (enc(k), enc(v)))
        .collect();
    pairs.sort();
    let norm = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        enc(base_uri),
        enc(&norm)
    )
}

/// RFC 5849 §3.4.2: HMAC-SHA1, key `enc(consumer secret)&enc(token secret)`.
fn hmac_sha1(base: &str, consumer_secret: &str, token_secret: &str) -> Vec<u8> {
    let key = format!("{}&{}", enc(consumer_secret), enc(token_secret));
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(base.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A signed OAuth 1.0 request: its header parameters, once the signature checked out.
struct Signed {
    params: HashMap<String, String>,
    key: String,
}

/// Checks a request's OAuth 1.0 signature; `token_secret` finds the token's secret.
#[allow(clippy::too_many_arguments)]
fn verify(
    st: &mut State,
    method: &str,
    base_uri: &str,
    query: &str,
    headers: &HeaderMap,
    form: &[(String, String)],
    token_secret: impl Fn(&State, &str) -> Option<String>,
) -> Result<Signed, Reply> {
    let header = oauth_header_params(headers);
    let get = |k: &str| header.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let key = get("oauth_consumer_key")
        .filter(|k| st.keys.contains(k))
        .ok_or_else(|| Reply::text(401, "invalid key"))?;
    if get("oauth_signature_method").as_deref() != Some("HMAC-SHA1") {
        return Err(Reply::invalid("oauth_signature_method"));
    }
    let (Some(ts), Some(nonce), Some(sig)) = (
        get("oauth_timestamp"),
        get("oauth_nonce"),
        get("oauth_signature"),
    ) else {
        return Err(Reply::text(401, "invalid signature"));
    };
    let tsecret = match get("oauth_token") {
        Some(t) => token_secret(st, &t).ok_or_else(|| Reply::text(401, "invalid token"))?,
        None => String::new(),
    };
    let secret = st.key_secrets.get(&key).cloned().unwrap_or_default();
    let mut all: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    all.extend(form.iter().cloned());
    all.extend(header.iter().cloned());
    let expected = hmac_sha1(&base_string(method, base_uri, &all), &secret, &tsecret);
    let given = base64::engine::general_purpose::STANDARD
        .decode(sig.as_bytes())
        .unwrap_or_default();
    if given != expected {
        return Err(Reply::text(401, "invalid signature"));
    }
    if !st.oauth1.nonces.insert((key.clone(), ts, nonce)) {
        return Err(Reply::text(401, "invalid signature"));
    }
    Ok(Signed {
        params: header.into_iter().collect(),
        key,
    })
}

/// The member signed in to the browser.
fn browser_member(st: &State) -> Option<String> {
    st.browser_member
        .clone()
        .or_else(|| st.members.keys().next().cloned())
}

fn parse_scope(s: Option<&str>) -> Result<Vec<String>, Reply> {
    let scope: Vec<String> = s
        .unwrap_or("read")
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect();
    if scope.is_empty()
        || scope
            .iter()
            .any(|x| !matches!(x.as_str(), "read" | "write" | "account"))
    {
        return Err(Reply::invalid("scope"));
    }
    Ok(scope)
}

fn parse_expiration(s: Option<&str>) -> Result<String, Reply> {
    match s.unwrap_or("30days") {
        e @ ("1hour" | "1day" | "30days" | "never") => Ok(e.to_owned()),
        _ => Err(Reply::invalid("expiration")),
    }
}

/// Creates the API token a person approved.
fn grant(st: &mut State, key: &str, member: &str, scope: &[String], expiration: &str) -> String {
    let has = |s: &str| scope.iter().any(|x| x == s);
    let (read, write) = (has("read") || has("write"), has("write"));
    // The same permissions as the fixture's tokens of the same scope (`full_permissions`
    // in handle.rs): a read,write token writes its member too, so it can revoke itself
    // (`DELETE /tokens/{token}` needs write, FACTS.md §6). One model of a scope, whichever
    // way the token was made.
    let permissions = vec![
        Permission::new("*", "Board", read, write),
        Permission::new("*", "Organization", read, write),
        Permission::new(member, "Member", read, write),
    ];
    let expires = match expiration {
        "1hour" => Some(Utc::now() + Duration::hours(1)),
        "1day" => Some(Utc::now() + Duration::days(1)),
        "30days" => Some(Utc::now() + Duration::days(30)),
        _ => None,
    };
    st.create_token(key, member, permissions, expires)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The approval page: the app's name, what it asks for, and an Allow/Deny form
/// posting `fields` back to `action`.
fn allow_page(action: &str, app: &str, scope: &[String], fields: &[(&str, String)]) -> Reply {
    let hidden: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                html_escape(k),
                html_escape(v)
            )
        })
        .collect();
    Reply::html(
        200,
        &format!(
            "<!doctype html><html><head><title>Authorize {app}</title></head><body>\
             <h1>Let {app} use your account?</h1><p>It asks to: {scope}</p>\
             <form method=\"post\" action=\"{action}\">{hidden}\
             <button type=\"submit\" name=\"approve\" value=\"Allow\">Allow</button>\
             <button type=\"submit\" name=\"approve\" value=\"Deny\">Deny</button>\
             </form></body></html>",
            app = html_escape(app),
            scope = html_escape(&scope.join(", ")),
        ),
    )
}

/// Answers the browser and OAuth routes (`rest` is the path after `/1`), or `None`
/// for every other path.
pub(crate) fn route(
    st: &mut State,
    method: &str,
    rest: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<(Reply, &'static str)> {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let q: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let mut all = q.clone();
    all.extend(form.iter().cloned());
    let p = |k: &str| {
        all.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let base_uri = format!("http://{}/1{}", host.to_ascii_lowercase(), rest);
    let path = rest.trim_end_matches('/');
    let out = match (method, path) {
        ("GET", "/authorize") => (authorize_page(st, &p), "/1/authorize"),
        ("POST", "/authorize") => (authorize_post(st, &p), "/1/authorize"),
        ("POST", "/OAuthGetRequestToken") => (
            request_token(st, method, &base_uri, query, headers, &form),
            "/1/OAuthGetRequestToken",
        ),
        ("GET", "/OAuthAuthorizeToken") => (authorize_token_page(st, &p), "/1/OAuthAuthorizeToken"),
        ("POST", "/OAuthAuthorizeToken") => {
            (authorize_token_post(st, &p), "/1/OAuthAuthorizeToken")
        }
        ("POST", "/OAuthGetAccessToken") => (
            access_token(st, method, &base_uri, query, headers, &form),
            "/1/OAuthGetAccessToken",
        ),
        _ => return None,
    };
    Some(out)
}

fn authorize_page(st: &State, p: &impl Fn(&str) -> Option<String>) -> Reply {
    let check = || -> Result<Reply, Reply> {
        let key = p("key")
            .filter(|k| st.keys.contains(k))
            .ok_or_else(|| Reply::text(401, "invalid key"))?;
        if p("response_type").as_deref() != Some("token") {
            return Err(Reply::invalid("response_type"));
        }
        let scope = parse_scope(p("scope").as_deref())?;
        let expiration = parse_expiration(p("expiration").as_deref())?;
        let name = p("name").unwrap_or_default();
        let mut fields = vec![
            ("key", key),
            ("scope", scope.join(",")),
            ("expiration", expiration),
            ("name", name.clone()),
        ];
        for k in ["return_url", "callback_method"] {
            if let Some(v) = p(k) {
                fields.push((k, v));
            }
        }
        Ok(allow_page("/1/authorize", &name, &scope, &fields))
    };
    check().unwrap_or_else(|e| e)
}

fn authorize_post(st: &mut State, p: &impl Fn(&str) -> Option<String>) -> Reply {
    let mut run = || -> Result<Reply, Reply> {
        let key = p("key")
            .filter(|k| st.keys.contains(k))
            .ok_or_else(|| Reply::text(401, "invalid key"))?;
        let scope = parse_scope(p("scope").as_deref())?;
        let expiration = parse_expiration(p("expiration").as_deref())?;
        if p("approve").as_deref() != Some("Allow") {
            return Ok(Reply::html(200, "<!doctype html><p>Access denied.</p>"));
        }
        let member = browser_member(st).ok_or_else(|| Reply::text(401, "not signed in"))?;
        let token = grant(st, &key, &member, &scope, &expiration);
        match (p("return_url"), p("callback_method").as_deref()) {
            (Some(url), Some("fragment")) => Ok(Reply::redirect(&format!("{url}#token={token}"))),
            (Some(url), Some("postMessage")) => Ok(Reply::html(
                200,
                &format!(
                    "<!doctype html><script>window.opener.postMessage({token:?}, {url:?});\
                     window.close();</script>"
                ),
            )),
            _ => Ok(Reply::html(
                200,
                &format!(
                    "<!doctype html><p>You have granted access. Your token is:</p>\
                     <pre id=\"token\">{token}</pre>"
                ),
            )),
        }
    };
    run().unwrap_or_else(|e| e)
}

fn request_token(
    st: &mut State,
    method: &str,
    base_uri: &str,
    query: &str,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Reply {
    let signed = match verify(st, method, base_uri, query, headers, form, |_, _| None) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(callback) = signed.params.get("oauth_callback").cloned() else {
        return Reply::invalid("oauth_callback");
    };
    let token = random_hex(16);
    let secret = random_hex(16);
    st.granted.push(secret.clone());
    st.oauth1.request_tokens.insert(
        token.clone(),
        RequestToken {
            key: signed.key,
            secret: secret.clone(),
            callback,
            approved: None,
        },
    );
    Reply::text(
        200,
        &format!("oauth_token={token}&oauth_token_secret={secret}&oauth_callback_confirmed=true"),
    )
}

fn authorize_token_page(st: &State, p: &impl Fn(&str) -> Option<String>) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let token = p("oauth_token")
            .filter(|t| st.oauth1.request_tokens.contains_key(t))
            .ok_or_else(|| Reply::text(401, "invalid token"))?;
        let scope = parse_scope(p("scope").as_deref())?;
        let expiration = parse_expiration(p("expiration").as_deref())?;
        let name = p("name").unwrap_or_default();
        let fields = vec![
            ("oauth_token", token),
            ("scope", scope.join(",")),
            ("expiration", expiration),
            ("name", name.clone()),
        ];
        Ok(allow_page("/1/OAuthAuthorizeToken", &name, &scope, &fields))
    };
    run().unwrap_or_else(|e| e)
}

fn authorize_token_post(st: &mut State, p: &impl Fn(&str) -> Option<String>) -> Reply {
    let mut run = || -> Result<Reply, Reply> {
        let token = p("oauth_token")
            .filter(|t| st.oauth1.request_tokens.contains_key(t))
            .ok_or_else(|| Reply::text(401, "invalid token"))?;
        let scope = parse_scope(p("scope").as_deref())?;
        let expiration = parse_expiration(p("expiration").as_deref())?;
        if p("approve").as_deref() != Some("Allow") {
            st.oauth1.request_tokens.remove(&token);
            return Ok(Reply::html(200, "<!doctype html><p>Access denied.</p>"));
        }
        let member = browser_member(st).ok_or_else(|| Reply::text(401, "not signed in"))?;
        let verifier = random_hex(16);
        st.granted.push(verifier.clone());
        let rt = st
            .oauth1
            .request_tokens
            .get_mut(&token)
            .ok_or_else(|| Reply::text(401, "invalid token"))?;
        rt.approved = Some(Approval {
            verifier: verifier.clone(),
            member,
            scope,
            expiration,
        });
        if rt.callback == "oob" {
            return Ok(Reply::html(
                200,
                &format!("<!doctype html><p>Your verification code:</p><pre>{verifier}</pre>"),
            ));
        }
        let mut url =
            url::Url::parse(&rt.callback).map_err(|_| Reply::invalid("oauth_callback"))?;
        url.query_pairs_mut()
            .append_pair("oauth_token", &token)
            .append_pair("oauth_verifier", &verifier);
        Ok(Reply::redirect(url.as_str()))
    };
    run().unwrap_or_else(|e| e)
}

fn access_token(
    st: &mut State,
    method: &str,
    base_uri: &str,
    query: &str,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Reply {
    let signed = match verify(st, method, base_uri, query, headers, form, |st, t| {
        st.oauth1.request_tokens.get(t).map(|r| r.secret.clone())
    }) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(rt_id) = signed.params.get("oauth_token").cloned() else {
        return Reply::text(401, "invalid token");
    };
    let Some(rt) = st.oauth1.request_tokens.get(&rt_id).cloned() else {
        return Reply::text(401, "invalid token");
    };
    let Some(approval) = rt.approved.filter(|_| rt.key == signed.key) else {
        return Reply::text(401, "invalid token");
    };
    if signed.params.get("oauth_verifier") != Some(&approval.verifier) {
        return Reply::invalid("oauth_verifier");
    }
    st.oauth1.request_tokens.remove(&rt_id);
    let token = grant(
        st,
        &rt.key,
        &approval.member,
        &approval.scope,
        &approval.expiration,
    );
    let secret = random_hex(32);
    st.granted.push(secret.clone());
    st.oauth1
        .access_secrets
        .insert(token.clone(), secret.clone());
    Reply::text(
        200,
        &format!("oauth_token={token}&oauth_token_secret={secret}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The photo request of OAuth Core 1.0 Appendix A.5 (the vector RFC 5849's §1.2
    /// example is built on): its base string and its signature
    /// `tR3+Ty81lMeYAr/Fid0kMTYa/WM=` with secrets `kd94hf93k423kf44` and
    /// `pfkkdhi9sl3r4s00`.
    #[test]
    fn rfc5849_example() {
        let params: Vec<(String, String)> = [
            ("file", "vacation.jpg"),
            ("size", "original"),
            ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            ("oauth_token", "nnch734d00sl2jdk"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1191242096"),
            ("oauth_nonce", "kllo9940pd9333jh"),
            ("oauth_version", "1.0"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let base = base_string("GET", "http://photos.example.net/photos", &params);
        assert_eq!(
            base,
            "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
        );
        let sig = base64::engine::general_purpose::STANDARD.encode(hmac_sha1(
            &base,
            "kd94hf93k423kf44",
            "pfkkdhi9sl3r4s00",
        ));
        assert_eq!(sig, "tR3+Ty81lMeYAr/Fid0kMTYa/WM=");
    }
}
