//! Errors on pages are pages: a handler's [`ApiError`] reaches a browser on an HTML route as a
//! small page with the same status, the field at fault, the fix and a link back; `/api/...` (and
//! the plain-text `/healthz` and `/metrics`) keep their JSON or text.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::error::ApiError;
use crate::pages::Chrome;
use crate::server::AppState;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    reason: String,
    field: Option<String>,
    message: String,
    back: String,
    back_text: String,
}

/// Whether errors of this path stay as they are (JSON for the API, text for the probes).
fn keeps_body(path: &str) -> bool {
    path.starts_with("/api/") || path == "/api" || matches!(path, "/healthz" | "/metrics")
}

/// Where the page's link goes: the section the path belongs to.
fn back_of(path: &str) -> (String, String) {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let (href, text) = match first {
        "backtests" => ("/backtests", "Back to the backtests"),
        "sweeps" => ("/sweeps", "Back to the sweeps"),
        "data" => ("/data", "Back to the market data"),
        "live" if path.starts_with("/live/algo") => ("/live/algo", "Back to the algorithm"),
        "live" if path.starts_with("/live/trades") => ("/live/trades", "Back to the trades"),
        "live" => ("/live", "Back to the live overview"),
        "login" | "setup" => ("/login", "Back to the login"),
        _ => ("/", "Back to the start page"),
    };
    (href.to_string(), text.to_string())
}

/// The middleware: a page's route answering with an [`ApiError`] answers with its page instead.
pub async fn error_pages(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if keeps_body(&path) {
        return next.run(req).await;
    }
    let headers = req.headers().clone();
    let res = next.run(req).await;
    let Some(err) = res.extensions().get::<ApiError>().cloned() else {
        return res;
    };
    // The frame shows the nav when the request had a live session (an error of the session lookup
    // itself shows the page without it).
    let session = crate::security::session_of(&state, &headers)
        .await
        .ok()
        .flatten();
    let title = format!(
        "{} {}",
        err.status.as_u16(),
        err.status.canonical_reason().unwrap_or("Error")
    );
    let chrome = match &session {
        Some(s) => Chrome::new(title.clone(), "", s),
        None => Chrome::public(&title, String::new()),
    };
    let (back, back_text) = back_of(&path);
    let page = ErrorPage {
        chrome,
        status: err.status.as_u16(),
        reason: err.status.canonical_reason().unwrap_or("Error").to_string(),
        field: err.field.clone(),
        message: err.message.clone(),
        back,
        back_text,
    };
    let Ok(html) = page.render() else {
        return res;
    };
    let mut out = (err.status, Html(html)).into_response();
    // Keep what the handler set besides the body (a Retry-After, say), but not its JSON type or length.
    for (k, v) in res.headers() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_and_the_probes_keep_their_bodies_and_pages_link_to_their_section() {
        assert!(keeps_body("/api/v1/backtests/x"));
        assert!(keeps_body("/healthz"));
        assert!(!keeps_body("/backtests/x"));
        assert!(!keeps_body("/apiary"));
        assert_eq!(back_of("/backtests/nope").0, "/backtests");
        assert_eq!(back_of("/data/SPY/delete").0, "/data");
        assert_eq!(back_of("/live/algo/SPY/halt").0, "/live/algo");
        assert_eq!(back_of("/nowhere").0, "/");
    }
}
