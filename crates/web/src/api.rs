//! Small endpoints: health, metrics, the session, the fallback.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::CurrentSession;
use crate::error::{ApiError, ErrorBody};
use crate::server::AppState;

/// `GET /healthz`: 200 `ok` when the database answers, 503 otherwise.
pub async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    match state.store.user_count().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")).into_response(),
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut r = state.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// Who is logged in, and the CSRF token scripts send with mutating calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub username: String,
    /// Send as the X-CSRF-Token header on every POST, PUT, PATCH and DELETE.
    pub csrf_token: String,
}

/// The current session.
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody)))]
pub async fn session(Extension(s): Extension<CurrentSession>) -> Json<SessionView> {
    Json(SessionView {
        username: s.username,
        csrf_token: s.csrf_token,
    })
}

/// Anything else: 404 (reached only with a session; without one the login answers first).
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such page or endpoint: see /api/v1/openapi.json for the API")
}
