//! Security headers on every answer, and the cross-site request guard on every unsafe
//! method.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// The content security policy: our own scripts and styles only, no framing, forms post
/// only to us.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Adds the security headers to every answer.
pub async fn headers(req: Request<Body>, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn is_unsafe(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The origin (`scheme://host[:port]`) of a URL.
pub fn origin_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(u.origin().ascii_serialization())
}

/// Refuses an unsafe request a browser sent from another site.
///
/// Requests with an API token (`Authorization: Bearer`) carry no ambient credential and
/// pass; so do webhook deliveries (`/hooks/`, checked by signature). Every other unsafe
/// request must show it comes from our own pages: `Sec-Fetch-Site: same-origin` (or
/// `none`, typed by the person), or, from a browser without Fetch metadata, an `Origin`
/// equal to the public URL's. A request with neither is refused when it carries a
/// cookie, since only a browser sends one.
pub async fn csrf_guard(State(state): State<AppState>, req: Request<Body>, next: Next) -> Response {
    if !is_unsafe(req.method()) || req.uri().path().starts_with("/hooks/") {
        return next.run(req).await;
    }
    let h = req.headers();
    if h.get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "))
        && h.get(header::COOKIE).is_none()
    {
        return next.run(req).await;
    }
    let ours = origin_of(&state.config.public_url);
    let fetch_site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = h.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let allowed = match (fetch_site, origin) {
        (Some(site), _) => site == "same-origin" || site == "none",
        (None, Some(o)) => Some(o.to_owned()) == ours,
        (None, None) => h.get(header::COOKIE).is_none(),
    };
    if allowed {
        return next.run(req).await;
    }
    tracing::warn!(path = %req.uri().path(), "refused a cross-site request");
    ApiError::new(
        StatusCode::FORBIDDEN,
        "CROSS_SITE_REQUEST",
        "this request came from another site and was refused",
        "use the pages of this server, or call the API with an API token",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://ops.example.com/x").as_deref(),
            Some("https://ops.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("not a url"), None);
    }
}
