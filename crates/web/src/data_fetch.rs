//! Fetching bars from Alpaca from the dashboard: the Data page's form (`POST /data/fetch`) and
//! `POST /api/v1/data/fetch` start `vectura_jobs::data::fetch_job` as a server job, followed with
//! its progress (and cancelled) on `/jobs/{id}`. The provider is Alpaca with the server's
//! environment (`APCA_API_KEY_ID`, `APCA_API_SECRET_KEY`, `APCA_API_DATA_URL`), or the client
//! [`AppState::alpaca`] holds; without keys the request is refused (422 naming `APCA_API_KEY_ID`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use vectura_data::alpaca::AlpacaData;
use vectura_jobs::data::FetchRequest;
use vectura_jobs::JobOutcome;

use crate::auth::CurrentSession;
use crate::error::{ApiError, ErrorBody};
use crate::server::AppState;

/// The longest span one fetch may ask for (Alpaca's minute history starts in 2016).
const MAX_DAYS: i64 = 366 * 12;

/// A fetch of one symbol's minute bars: only days not stored yet (or failed before) are asked for.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct FetchInput {
    /// A ticker, e.g. SPY.
    #[serde(default)]
    #[schema(pattern = r"^\s*[A-Za-z0-9./-]{1,10}\s*$", required = true)]
    pub symbol: String,
    /// The first day, YYYY-MM-DD.
    #[serde(default)]
    #[schema(pattern = r"^\s*\d{4}-\d{2}-\d{2}\s*$", required = true)]
    pub from: String,
    /// The last day, YYYY-MM-DD (inclusive); empty or left out: the last closed session.
    #[serde(default)]
    #[schema(pattern = r"^\s*(\d{4}-\d{2}-\d{2})?\s*$")]
    pub to: Option<String>,
}

/// A fetch job started.
#[derive(Debug, Serialize, ToSchema)]
pub struct FetchStarted {
    pub id: String,
    /// The job's page (progress and cancel).
    pub link: String,
}

fn date(field: &str, v: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").map_err(|_| {
        ApiError::field(
            field,
            format!("{v:?} is not a date: give YYYY-MM-DD, e.g. 2024-03-04"),
        )
    })
}

/// Checks the input: the request, or the error naming the field.
pub fn check(input: &FetchInput) -> Result<FetchRequest, ApiError> {
    let symbol = crate::data::parse_symbol("symbol", &input.symbol)?;
    if input.from.trim().is_empty() {
        return Err(ApiError::field(
            "from",
            "the first day is missing: give YYYY-MM-DD",
        ));
    }
    let from = date("from", &input.from)?;
    let to = match input.to.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(date("to", t)?),
    };
    let today = chrono::Utc::now().date_naive();
    if from > today {
        return Err(ApiError::field(
            "from",
            format!("{from} is in the future: give a day up to today"),
        ));
    }
    if let Some(t) = to {
        if from > t {
            return Err(ApiError::field(
                "from",
                format!("from {from} is after to {t}: swap them"),
            ));
        }
    }
    let end = to.unwrap_or(today);
    if (end - from).num_days() > MAX_DAYS {
        return Err(ApiError::field(
            "from",
            format!("{from} to {end} is more than 12 years: fetch it in parts"),
        ));
    }
    Ok(FetchRequest {
        symbols: vec![symbol],
        from,
        to,
        feed: None,
        extended: false,
        passes: 3,
        splits: false,
    })
}

/// The Alpaca client: the one the state holds, else the environment's (422 naming
/// `APCA_API_KEY_ID` when the keys are not set).
pub fn client(state: &AppState) -> Result<AlpacaData, ApiError> {
    if let Some(c) = state.alpaca.get() {
        return Ok(c.clone());
    }
    AlpacaData::from_env().map_err(|e| {
        ApiError::field(
            "APCA_API_KEY_ID",
            format!("the server cannot fetch from Alpaca: {e}; then restart `vectura serve`"),
        )
    })
}

/// Whether fetching can work (a client or keys are there), for the page's note.
pub fn keys_hint(state: &AppState) -> Option<String> {
    client(state).err().map(|e| e.message)
}

/// Checks and starts a fetch job; its id.
pub async fn start(state: &Arc<AppState>, input: &FetchInput) -> Result<String, ApiError> {
    let req = check(input)?;
    let alpaca = client(state)?;
    let symbol = req.symbols[0].clone();
    let name = format!(
        "Fetch {symbol} {} to {}",
        req.from,
        req.to
            .map(|t| t.to_string())
            .unwrap_or_else(|| "the last session".to_string())
    );
    let stored = json!({"input": input, "request": req});
    let work: crate::jobs::Work = Box::new(move |ctx| {
        match vectura_jobs::data::fetch_job(&req, Some(alpaca), ctx) {
            Ok(JobOutcome::Done(d)) => {
                let mut lines = d.out.clone();
                lines.extend(d.warnings.iter().cloned());
                if let Some(p) = &d.problem {
                    lines.push(p.clone());
                    return Err(lines.join("; "));
                }
                Ok(JobOutcome::Done(json!({
                    "message": lines.join("; "),
                    "link": format!("/data/{symbol}"),
                    "link_text": format!("{symbol}'s stored range"),
                    "summary": {"days_stored": d.days_stored, "out": d.out, "warnings": d.warnings},
                })))
            }
            Ok(JobOutcome::Cancelled(c)) => Ok(JobOutcome::Cancelled(c)),
            Err(e) => Err(vectura_jobs::error::chain(&e)),
        }
    });
    let id = crate::jobs::start_job(state, "fetch", "fetch", &name, &stored, work).await?;
    state.metrics.inc("fetches_started_total");
    Ok(id)
}

/// Starts fetching a symbol's minute bars from Alpaca; follow it at `/api/v1/jobs/{id}/events`,
/// cancel it at `/api/v1/jobs/{id}/cancel`.
#[utoipa::path(post, path = "/api/v1/data/fetch", tag = "data",
    request_body = FetchInput,
    security(("session" = [], "csrf" = [])),
    responses((status = 202, body = FetchStarted), (status = 422, body = ErrorBody), (status = 400, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn api_start(
    State(state): State<Arc<AppState>>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<FetchStarted>), ApiError> {
    let input: FetchInput = crate::backtests::json_object(body)?;
    let id = start(&state, &input).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(FetchStarted {
            link: format!("/jobs/{id}"),
            id,
        }),
    ))
}

/// `POST /data/fetch` (the Data page's form): to the job's page, or the Data page again with the
/// message next to the form (422).
pub async fn submit(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let f = form
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?
        .0;
    let input = FetchInput {
        symbol: f.get("symbol").cloned().unwrap_or_default(),
        from: f.get("from").cloned().unwrap_or_default(),
        to: f.get("to").cloned(),
    };
    match start(&state, &input).await {
        Ok(id) => Ok(Redirect::to(&format!("/jobs/{id}")).into_response()),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            let mut res = crate::data::page_with(&state, &s, None, Some((input, e))).await?;
            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(res)
        }
        Err(e) => Err(e),
    }
}
