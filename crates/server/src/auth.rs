//! Who is calling: an API token (`Authorization: Bearer`) or a browser session (the
//! `wro_session` cookie, HttpOnly, SameSite=Lax, Secure behind https). The sign-in
//! throttle is counted in the store (`webriskops_service::accounts::sign_in_wait`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use webriskops_domain::Action;
use webriskops_ports::Principal;
use webriskops_service::accounts;

use crate::error::ApiError;
use crate::state::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "wro_session";

/// The value of cookie `name` in `headers`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The `Set-Cookie` value that starts a session.
pub fn session_cookie(id: &str, secure: bool, max_age: i64) -> String {
    format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends it in the browser.
pub fn clear_cookie(secure: bool) -> String {
    session_cookie("", secure, 0)
}

async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
    let accounts = state.composer.accounts();
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        return Ok(accounts::authenticate_token(accounts.as_ref(), token).await?);
    }
    match cookie(headers, SESSION_COOKIE) {
        Some(id) => Ok(accounts::authenticate_session(accounts.as_ref(), &id, Utc::now()).await?),
        None => Ok(None),
    }
}

/// The tenancy a caller may change: `tracker` named in the path (404 for another name),
/// the tenant from the caller only, and the domain's role rule (403 for a viewer). Every
/// unsafe route of the API and the pages asks this.
///
/// # Errors
/// 404 for an unknown tracker, 403 for a viewer.
pub fn tenancy_to_change(
    principal: &Principal,
    tracker: &str,
) -> Result<webriskops_service::Tenancy, ApiError> {
    let provider = crate::api::tracker_of(tracker)?;
    if !principal.role.may(Action::Change) {
        return Err(ApiError::forbidden());
    }
    Ok(webriskops_service::Tenancy {
        tenant: principal.tenant.clone(),
        provider,
    })
}

/// An authenticated caller of the API.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// See [`tenancy_to_change`].
    ///
    /// # Errors
    /// 404 for an unknown tracker, 403 for a viewer.
    pub fn to_change(&self, tracker: &str) -> Result<webriskops_service::Tenancy, ApiError> {
        tenancy_to_change(&self.0, tracker)
    }

    /// Refuses a viewer asking to change something.
    ///
    /// # Errors
    /// 403 for a viewer.
    pub fn may(&self, action: Action) -> Result<(), ApiError> {
        if self.0.role.may(action) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        principal(state, &parts.headers)
            .await?
            .map(Caller)
            .ok_or_else(ApiError::unauthenticated)
    }
}

/// A signed-in person on the pages; without a session the page sends them to /login.
#[derive(Debug, Clone)]
pub struct Person {
    pub principal: Principal,
    /// The digest of the session id (never the id itself): what one-time form values
    /// are bound to.
    pub session: String,
}

/// The answer to a page request without a session.
pub struct ToLogin;

impl IntoResponse for ToLogin {
    fn into_response(self) -> Response {
        Redirect::to("/login").into_response()
    }
}

impl FromRequestParts<AppState> for Person {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(ToLogin.into_response());
        };
        let accounts = state.composer.accounts();
        match accounts::authenticate_session(accounts.as_ref(), &id, Utc::now()).await {
            Ok(Some(principal)) => Ok(Person {
                principal,
                session: accounts::digest(&id),
            }),
            Ok(None) => Err(ToLogin.into_response()),
            Err(e) => Err(ApiError::from(e).into_response()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; wro_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn the_session_cookie_is_http_only_same_site_and_secure_behind_https() {
        let c = session_cookie("x", true, 60);
        for part in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=60"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!session_cookie("x", false, 60).contains("Secure"));
    }
}
