//! The layers every request passes: security headers on every reply, and the session and CSRF
//! checks in front of everything that is not public.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::auth::{constant_time_eq, cookie, sha256_hex, CurrentSession, SESSION_COOKIE};
use crate::error::ApiError;
use crate::server::AppState;

/// The header a script sends its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field a page's form sends its CSRF token in.
pub const CSRF_FIELD: &str = "csrf";
/// The largest form body read for its CSRF field (forms here are a few fields).
const FORM_LIMIT: usize = 64 * 1024;

/// Scripts and styles from this origin only (no inline script: data goes in JSON blocks); inline
/// styles are allowed because plotly.js sets them on the elements it draws. Nothing may frame us.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                       img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; frame-src 'self'; \
                       object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers to every reply, and `Cache-Control: no-store` to everything but the
/// static files (pages and API replies hold account data).
pub async fn headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    // A handler may set a stricter policy of its own (the sandboxed report); the rest get ours.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    if !h.contains_key(header::X_FRAME_OPTIONS) {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if !is_static && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Paths served without a session.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/login" | "/login/link" | "/setup" | "/healthz" | "/metrics" | "/favicon.ico"
    ) || path.starts_with("/static/")
}

/// Whether a method changes something (and so needs the CSRF token).
pub fn is_mutating(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// The session of the request's cookie, if it is live.
pub async fn session_of(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Option<CurrentSession>, ApiError> {
    let Some(secret) = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| cookie(h, SESSION_COOKIE))
    else {
        return Ok(None);
    };
    if secret.is_empty() || secret.len() > 128 {
        return Ok(None);
    }
    let id_hash = sha256_hex(secret);
    let now = crate::now_ms();
    if let Some(s) = state.sessions.get(&id_hash, now) {
        return Ok(Some(s));
    }
    Ok(state.store.session(&id_hash, now).await?.map(|s| {
        let c = CurrentSession {
            username: s.username,
            csrf_token: s.csrf_token,
            id_hash: s.id_hash,
        };
        state.sessions.put(&c, s.expires_at_ms);
        c
    }))
}

fn unauthenticated(path: &str, query: Option<&str>) -> Response {
    if is_api(path) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "not logged in: log in at /login (the session cookie is missing or expired)",
        )
        .into_response();
    }
    let next = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let target = if next == "/" {
        "/login".to_string()
    } else {
        format!("/login?next={}", crate::pages::url_encode(&next))
    };
    Redirect::to(&target).into_response()
}

fn csrf_refused() -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "the CSRF token is missing or wrong: reload the page and submit again (scripts send the X-CSRF-Token header)",
    )
    .into_response()
}

/// The value of `field` in a url-encoded form body.
pub fn form_field(body: &[u8], field: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == field)
        .map(|(_, v)| v.into_owned())
}

/// Requires a live session for every non-public path (API: 401; pages: a redirect to the login),
/// and the session's CSRF token on every mutating request: the `X-CSRF-Token` header, or the
/// `csrf` field of a url-encoded form (the body is read and handed on unchanged).
pub async fn require_session(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_string();
    if is_public(&path) {
        return next.run(req).await;
    }
    let session = match session_of(&state, req.headers()).await {
        Ok(Some(s)) => s,
        Ok(None) => return unauthenticated(&path, req.uri().query()),
        Err(e) => return e.into_response(),
    };
    let mut req = req;
    if is_mutating(req.method()) {
        let header_token = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let ok = match header_token {
            Some(t) => constant_time_eq(&t, &session.csrf_token),
            None => {
                let is_form = req
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
                if !is_form {
                    state.metrics.inc("csrf_refused_total");
                    return csrf_refused();
                }
                let (parts, body) = req.into_parts();
                let bytes = match to_bytes(body, FORM_LIMIT).await {
                    Ok(b) => b,
                    Err(_) => {
                        return ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!("the form is larger than {FORM_LIMIT} bytes"),
                        )
                        .into_response()
                    }
                };
                let ok = form_field(&bytes, CSRF_FIELD)
                    .is_some_and(|t| constant_time_eq(&t, &session.csrf_token));
                req = Request::from_parts(parts, Body::from(bytes));
                ok
            }
        };
        if !ok {
            state.metrics.inc("csrf_refused_total");
            return csrf_refused();
        }
    }
    req.extensions_mut().insert(session);
    next.run(req).await
}
