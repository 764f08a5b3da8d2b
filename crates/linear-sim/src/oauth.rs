//! OAuth2 endpoints (FACTS.md "Endpoint / auth"): `GET /oauth/authorize`
//! (the person approves at once and is redirected with `code` and `state`),
//! `POST /oauth/token` (`authorization_code` and `refresh_token` grants, with
//! `expires_in` and a refresh token: "Refresh tokens are mandatory for all
//! OAuth apps since 2026-04-01") and `POST /oauth/revoke`.
//!
//! Error bodies follow RFC 6749 §5.2 (`{"error", "error_description"}`), and
//! an unknown token on revoke answers 200 as RFC 7009 §2.2 says. Inference:
//! `scope` in the token answer is a list (`["read","write"]`) as Linear's
//! OAuth page shows it.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::ids;
use crate::state::{AccessToken, AuthCode, RefreshToken, Scopes, State};

/// How long an authorization code may wait before the token exchange.
const CODE_TTL: Duration = Duration::from_secs(600);

/// One HTTP answer of an OAuth endpoint.
#[derive(Debug, Clone)]
pub(crate) struct OAuthReply {
    pub status: u16,
    pub body: Value,
    /// `Location` for a redirect.
    pub location: Option<String>,
    pub error_code: Option<String>,
}

fn err(status: u16, code: &str, description: &str) -> OAuthReply {
    OAuthReply {
        status,
        body: json!({"error": code, "error_description": description}),
        location: None,
        error_code: Some(code.to_owned()),
    }
}

fn redirect(uri: &str, pairs: &[(&str, &str)]) -> OAuthReply {
    let mut url = match url::Url::parse(uri) {
        Ok(u) => u,
        Err(_) => return err(400, "invalid_request", "redirect_uri is not a valid URL"),
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    let error_code = pairs
        .iter()
        .find(|(k, _)| *k == "error")
        .map(|(_, v)| (*v).to_owned());
    OAuthReply {
        status: 302,
        body: Value::Null,
        location: Some(url.to_string()),
        error_code,
    }
}

fn params(raw: &[u8]) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// `GET /oauth/authorize?client_id&redirect_uri&response_type=code&scope&state`.
pub(crate) fn authorize(st: &mut State, query: &str) -> OAuthReply {
    let p = params(query.as_bytes());
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let Some(client) = st.oauth_clients.get(get("client_id")) else {
        return err(400, "invalid_client", "unknown client_id");
    };
    let redirect_uri = get("redirect_uri");
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        // RFC 6749 §4.1.2.1: never redirect to an unregistered URI.
        return err(
            400,
            "invalid_request",
            "redirect_uri is not registered for this client",
        );
    }
    let state_param = get("state");
    let with_state = |mut v: Vec<(&'static str, String)>| {
        if !state_param.is_empty() {
            v.push(("state", state_param.to_owned()));
        }
        v
    };
    let go = |pairs: Vec<(&'static str, String)>| {
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        redirect(redirect_uri, &borrowed)
    };
    if get("response_type") != "code" {
        return go(with_state(vec![
            ("error", "unsupported_response_type".into()),
            ("error_description", "response_type must be code".into()),
        ]));
    }
    let scopes = match Scopes::parse(if get("scope").is_empty() {
        "read"
    } else {
        get("scope")
    }) {
        Ok(s) => s,
        Err(bad) => {
            return go(with_state(vec![
                ("error", "invalid_scope".into()),
                ("error_description", format!("unknown scope `{bad}`")),
            ]))
        }
    };
    let Some(user) = st.authorizing_user.clone() else {
        return go(with_state(vec![
            ("error", "access_denied".into()),
            (
                "error_description",
                "no person is signed in to approve".into(),
            ),
        ]));
    };
    let code = ids::secret_hex();
    st.granted.push(code.clone());
    st.auth_codes.insert(
        code.clone(),
        AuthCode {
            client_id: get("client_id").to_owned(),
            user_id: user,
            scopes,
            redirect_uri: redirect_uri.to_owned(),
            expires: Instant::now() + CODE_TTL,
        },
    );
    go(with_state(vec![("code", code)]))
}

fn client_credentials(
    p: &std::collections::HashMap<String, String>,
    authorization: Option<&str>,
) -> (String, String) {
    if let Some((id, secret)) = authorization.and_then(decode_basic) {
        return (id, secret);
    }
    (
        p.get("client_id").cloned().unwrap_or_default(),
        p.get("client_secret").cloned().unwrap_or_default(),
    )
}

fn issue_tokens(
    st: &mut State,
    client_id: &str,
    user_id: &str,
    scopes: &Scopes,
    grant: &str,
) -> Value {
    let access = ids::access_token();
    let refresh = ids::refresh_token();
    st.granted.push(access.clone());
    st.granted.push(refresh.clone());
    st.access_tokens.insert(
        access.clone(),
        AccessToken {
            client_id: client_id.to_owned(),
            user_id: user_id.to_owned(),
            scopes: scopes.clone(),
            expires_at: Instant::now() + st.token_ttl,
            revoked: false,
            grant: grant.to_owned(),
        },
    );
    st.refresh_tokens.insert(
        refresh.clone(),
        RefreshToken {
            client_id: client_id.to_owned(),
            user_id: user_id.to_owned(),
            scopes: scopes.clone(),
            revoked: false,
            grant: grant.to_owned(),
        },
    );
    let scope_list: Vec<String> = scopes.to_list().split(',').map(str::to_owned).collect();
    json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": st.token_ttl.as_secs(),
        "scope": scope_list,
        "refresh_token": refresh,
    })
}

/// `POST /oauth/token` with a form body.
pub(crate) fn token(st: &mut State, authorization: Option<&str>, body: &[u8]) -> OAuthReply {
    let p = params(body);
    let (client_id, secret) = client_credentials(&p, authorization);
    match st.oauth_clients.get(&client_id) {
        Some(c) if c.secret == secret => {}
        _ => return err(401, "invalid_client", "client_id or client_secret is wrong"),
    }
    let ok = |body: Value| OAuthReply {
        status: 200,
        body,
        location: None,
        error_code: None,
    };
    match p.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = p.get("code").cloned().unwrap_or_default();
            // A code works once: remove it whatever happens next.
            let Some(grant) = st.auth_codes.remove(&code) else {
                return err(
                    400,
                    "invalid_grant",
                    "the authorization code is unknown or already used",
                );
            };
            if grant.client_id != client_id {
                return err(
                    400,
                    "invalid_grant",
                    "the authorization code belongs to another client",
                );
            }
            if Instant::now() >= grant.expires {
                return err(400, "invalid_grant", "the authorization code has expired");
            }
            if p.get("redirect_uri").map(String::as_str) != Some(grant.redirect_uri.as_str()) {
                return err(
                    400,
                    "invalid_grant",
                    "redirect_uri does not match the authorization request",
                );
            }
            let grant_id = ids::secret_hex();
            ok(issue_tokens(
                st,
                &client_id,
                &grant.user_id,
                &grant.scopes,
                &grant_id,
            ))
        }
        Some("refresh_token") => {
            let rt = p.get("refresh_token").cloned().unwrap_or_default();
            let Some(old) = st.refresh_tokens.get(&rt).cloned() else {
                return err(400, "invalid_grant", "the refresh token is unknown");
            };
            if old.revoked || old.client_id != client_id {
                return err(
                    400,
                    "invalid_grant",
                    "the refresh token is revoked or belongs to another client",
                );
            }
            // Rotation: the used refresh token stops working.
            if let Some(r) = st.refresh_tokens.get_mut(&rt) {
                r.revoked = true;
            }
            ok(issue_tokens(
                st,
                &client_id,
                &old.user_id,
                &old.scopes,
                &old.grant,
            ))
        }
        Some(other) => err(
            400,
            "unsupported_grant_type",
            &format!("grant_type `{other}` is not supported"),
        ),
        None => err(400, "invalid_request", "grant_type is missing"),
    }
}

/// `POST /oauth/revoke`: the token comes in the form (`token`) or as
/// `Authorization: Bearer`. Revoking an access or refresh token revokes the
/// whole grant (its access and refresh tokens).
pub(crate) fn revoke(st: &mut State, authorization: Option<&str>, body: &[u8]) -> OAuthReply {
    let p = params(body);
    let token = p.get("token").cloned().or_else(|| {
        authorization
            .and_then(|h| h.split_once(' '))
            .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned())
    });
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return err(
            400,
            "invalid_request",
            "give the token in the `token` form field or as Authorization: Bearer",
        );
    };
    let grant = st
        .access_tokens
        .get(&token)
        .map(|t| t.grant.clone())
        .or_else(|| st.refresh_tokens.get(&token).map(|t| t.grant.clone()));
    if let Some(g) = grant {
        for t in st.access_tokens.values_mut().filter(|t| t.grant == g) {
            t.revoked = true;
        }
        for t in st.refresh_tokens.values_mut().filter(|t| t.grant == g) {
            t.revoked = true;
        }
    }
    OAuthReply {
        status: 200,
        body: json!({"success": true}),
        location: None,
        error_code: None,
    }
}

/// `Basic base64(id:secret)` to `(id, secret)`.
fn decode_basic(h: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let (scheme, rest) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn basic_auth_decodes() {
        // "client:secret"
        assert_eq!(
            super::decode_basic("Basic Y2xpZW50OnNlY3JldA=="),
            Some(("client".into(), "secret".into()))
        );
        assert_eq!(super::decode_basic("Bearer x"), None);
    }
}
