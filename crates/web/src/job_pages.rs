//! Any server job (a sweep, a data fetch; backtests also have their own pages): its page with
//! live progress and cancel, and the API to read, follow (SSE) and cancel it.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::CurrentSession;
use crate::error::{ApiError, ErrorBody};
use crate::pages::{render, Chrome};
use crate::server::AppState;

/// A job as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    /// `backtest`, `sweep` or `fetch`.
    pub kind: String,
    pub name: String,
    /// queued, running, done, failed or cancelled.
    pub status: String,
    pub error: Option<String>,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// The progress events stored (each an object: kind, stage, label, message, current, total,
    /// progress, timestamp_ms).
    #[schema(value_type = Vec<Object>)]
    pub progress: Value,
    /// The outcome once done (`message`, `link` to the result's page, `summary`), else null.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
}

/// The stored job `id` (any kind).
pub async fn stored(state: &AppState, id: &str) -> Result<vectura_store::WebJob, ApiError> {
    if id.len() > 100 {
        return Err(ApiError::field("id", "a job id is at most 100 characters"));
    }
    state
        .store
        .job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job with id {id:?} is stored")))
}

/// Passes a cancel on to a queued or running job (409 when it already ended or runs elsewhere).
pub async fn cancel(state: &AppState, id: &str) -> Result<(), ApiError> {
    let j = stored(state, id).await?;
    if j.status.is_final() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "the job is already {}: nothing to cancel",
                j.status.as_str()
            ),
        ));
    }
    match state.jobs.get(id) {
        Some(live) => {
            live.cancel.cancel("cancelled from the dashboard");
            Ok(())
        }
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "the job is not running in this server: it ends as failed at the next start",
        )),
    }
}

fn nav_of(kind: &str) -> &'static str {
    match kind {
        "backtest" => "backtests",
        "sweep" => "sweeps",
        _ => "data",
    }
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    chrome: Chrome,
    job: JobView,
    active: bool,
    events: String,
    message: String,
    link: Option<(String, String)>,
}

/// `GET /jobs/{id}`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let j = stored(&state, &id).await?;
    if j.kind == "backtest" {
        return Ok(Redirect::to(&format!("/backtests/{id}")).into_response());
    }
    let result = j.result.clone().unwrap_or(Value::Null);
    let text = |k: &str| result.get(k).and_then(Value::as_str).map(str::to_string);
    let link = match (text("link"), text("link_text")) {
        (Some(href), Some(t)) => Some((href, t)),
        (Some(href), None) => Some((href.clone(), href)),
        _ => None,
    };
    let job = view(j);
    Ok(render(&JobPage {
        chrome: Chrome::new(job.name.clone(), nav_of(&job.kind), &s),
        active: !matches!(job.status.as_str(), "done" | "failed" | "cancelled"),
        events: crate::sweeps::script_json(&job.progress),
        message: text("message").unwrap_or_default(),
        link,
        job,
    }))
}

fn view(j: vectura_store::WebJob) -> JobView {
    JobView {
        status: j.status.as_str().to_string(),
        id: j.id,
        kind: j.kind,
        name: j.name,
        error: j.error,
        created_at_ms: j.created_at_ms,
        finished_at_ms: j.finished_at_ms,
        progress: j.progress,
        result: j.result,
    }
}

/// `POST /jobs/{id}/cancel` (form): back to the job's page, which shows the outcome.
pub async fn cancel_form(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match cancel(&state, &id).await {
        Ok(()) => {}
        Err(e) if e.status == StatusCode::CONFLICT => {}
        Err(e) => return Err(e),
    }
    Ok(Redirect::to(&format!("/jobs/{id}")).into_response())
}

/// One job (any kind) with its progress and outcome.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn api_get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(view(stored(&state, &id).await?)))
}

/// A job's progress as server-sent events (`progress`, `status`, then one `end`).
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses((status = 200, content_type = "text/event-stream", description = "progress, status and end events"),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn api_events(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if id.len() > 100 {
        return Err(ApiError::field("id", "a job id is at most 100 characters"));
    }
    Ok(crate::jobs::events(&state, &id).await?.into_response())
}

/// Cancels a queued or running job (it ends `cancelled`).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 202, description = "The cancel was passed on"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn api_cancel(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    cancel(&state, &id).await?;
    Ok(StatusCode::ACCEPTED)
}
