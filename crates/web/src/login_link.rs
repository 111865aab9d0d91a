//! The one-time login link `vectura demo` prints: `GET /login/link?token=…` logs the browser in as
//! the admin once; the token is then spent (a second use, or any other token, is refused).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::constant_time_eq;
use crate::pages::{render, Chrome};
use crate::server::AppState;
use crate::ADMIN_USER;

/// What a spent or wrong link shows: a page (the link is opened in a browser), not a JSON body.
#[derive(Template)]
#[template(path = "link_spent.html")]
struct SpentPage {
    chrome: Chrome,
    message: &'static str,
}

/// `?token=` of the link.
#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    pub token: String,
}

/// `GET /login/link`: spends the token, starts a session, goes to the live overview.
pub async fn enter(
    State(state): State<Arc<AppState>>,
    q: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let given = q.map(|q| q.0.token).unwrap_or_default();
    let ok = {
        let mut slot = state.login_link.lock().unwrap_or_else(|p| p.into_inner());
        let matches = slot
            .as_deref()
            .is_some_and(|t| !given.is_empty() && constant_time_eq(t, &given));
        if matches {
            // Spent before the session exists: a second request with it finds nothing.
            *slot = None;
        }
        matches
    };
    if !ok {
        state.metrics.inc("login_link_refused_total");
        let mut r = render(&SpentPage {
            chrome: Chrome::public("Login link spent", String::new()),
            message: "this login link is spent or wrong: a link logs in once; restart `vectura demo` for a new one, or log in at /login",
        });
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    }
    match crate::pages::start_session(&state, ADMIN_USER).await {
        Ok(cookie) => {
            let mut res = Redirect::to("/live").into_response();
            res.headers_mut().append(header::SET_COOKIE, cookie);
            res
        }
        Err(e) => e.into_response(),
    }
}
