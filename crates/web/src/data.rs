//! The Data page and its API: per-symbol stored ranges with their gaps (NYSE sessions inside the
//! stored span that have neither bars nor a `closed` mark) and splits, deleting a symbol (after a
//! confirmation that names it), and importing a CSV or Parquet file by upload.
//!
//! Fixed from the original's ranges page (§6.6): the range shown is what is stored (never bounds
//! written ahead of the data), gaps are listed instead of hidden inside a span, and an import is
//! one transaction (all of its days or none).

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vectura_core::{calendar, BarSeries, Symbol};
use vectura_jobs::backtest::Widened;
use vectura_store::{Store, SymbolRange};

use crate::auth::CurrentSession;
use crate::error::{ApiError, ErrorBody};
use crate::pages::{render, Chrome};
use crate::server::AppState;

/// The largest upload accepted (ten years of minute bars as CSV are about 250 MB uncompressed;
/// gzip-compressed CSV and Parquet are far smaller).
pub const IMPORT_LIMIT: usize = 512 * 1024 * 1024;

/// Gaps listed per symbol at most (the count is always exact).
const GAPS_SHOWN: usize = 500;

/// One split.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SplitView {
    /// The first day trading at the new price (YYYY-MM-DD).
    pub effective_date: String,
    /// New shares per old share (4 for a 4-for-1).
    pub ratio: f64,
}

/// One symbol's stored range.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RangeView {
    pub symbol: String,
    /// The first stored day (YYYY-MM-DD), if any.
    pub have_from: Option<String>,
    /// The last stored day (YYYY-MM-DD), if any.
    pub have_to: Option<String>,
    /// The first day the provider has data for, when known.
    pub first_available_day: Option<String>,
    pub days_stored: u64,
    pub days_closed: u64,
    pub days_failed: u64,
    pub bars: u64,
    /// NYSE sessions between the first and last stored day with no bars and no closed mark.
    pub gaps: u64,
    pub splits: Vec<SplitView>,
}

/// One missing session day.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GapView {
    pub day: String,
    /// Failed fetch attempts (0: never fetched).
    pub attempts: u64,
    pub last_error: Option<String>,
}

/// A symbol's range with its gaps.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RangeDetail {
    pub range: RangeView,
    /// The first 500 gaps, in date order (`range.gaps` is the full count).
    pub gaps: Vec<GapView>,
}

/// What a delete removed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeleteResult {
    pub symbol: String,
    pub days_deleted: u64,
}

/// What an import stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportResult {
    pub symbol: String,
    pub bars: u64,
    pub days: u64,
    pub first_day: String,
    pub last_day: String,
    /// Bars whose open or close lay outside their low..high and were widened (0 with strict).
    pub widened: u64,
    /// A one-line summary for people.
    pub message: String,
}

fn day(d: Option<NaiveDate>) -> Option<String> {
    d.map(|d| d.to_string())
}

/// Checks and upper-cases a symbol: a 422 naming the field otherwise.
pub fn parse_symbol(field: &str, s: &str) -> Result<String, ApiError> {
    Symbol::new(s.trim())
        .map(String::from)
        .map_err(|e| ApiError::field(field, e.to_string()))
}

async fn gaps_of(store: &Store, r: &SymbolRange) -> Result<Vec<vectura_store::Gap>, ApiError> {
    let (Some(from), Some(to)) = (r.have_from, r.have_to) else {
        return Ok(Vec::new());
    };
    let sessions: Vec<NaiveDate> = calendar::sessions(from, to)
        .iter()
        .map(|s| s.date)
        .collect();
    Ok(store.gaps(&r.symbol, &sessions).await?)
}

async fn view(store: &Store, r: &SymbolRange) -> Result<(RangeView, Vec<GapView>), ApiError> {
    let gaps = gaps_of(store, r).await?;
    let splits = store
        .splits(&r.symbol)
        .await?
        .into_iter()
        .map(|s| SplitView {
            effective_date: s.effective.to_string(),
            ratio: s.ratio,
        })
        .collect();
    let shown = gaps
        .iter()
        .take(GAPS_SHOWN)
        .map(|g| GapView {
            day: g.day.to_string(),
            attempts: g.attempts,
            last_error: g.last_error.clone(),
        })
        .collect();
    Ok((
        RangeView {
            symbol: r.symbol.clone(),
            have_from: day(r.have_from),
            have_to: day(r.have_to),
            first_available_day: day(r.first_available_day),
            days_stored: r.days_stored,
            days_closed: r.days_closed,
            days_failed: r.days_failed,
            bars: r.bars,
            gaps: gaps.len() as u64,
            splits,
        },
        shown,
    ))
}

async fn all_views(store: &Store) -> Result<Vec<RangeView>, ApiError> {
    let mut out = Vec::new();
    for r in store.ranges().await? {
        out.push(view(store, &r).await?.0);
    }
    Ok(out)
}

async fn one(store: &Store, symbol: &str) -> Result<RangeDetail, ApiError> {
    let sym = parse_symbol("symbol", symbol)?;
    let r = store.range(&sym).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "nothing is stored for {sym}: import or fetch its bars first"
        ))
    })?;
    let (range, gaps) = view(store, &r).await?;
    Ok(RangeDetail { range, gaps })
}

#[derive(Template)]
#[template(path = "data.html")]
struct DataPage {
    chrome: Chrome,
    ranges: Vec<RangeView>,
    deleted: Option<String>,
    /// The fetch form's values.
    fetch: crate::data_fetch::FetchInput,
    fetch_to: String,
    /// The fetch form's error: the field and the message.
    fetch_error: Option<(String, String)>,
    /// Why fetching cannot work here (no Alpaca keys), when it cannot.
    keys_missing: Option<String>,
}

/// `?deleted=SYM` after a delete.
#[derive(Debug, Deserialize)]
pub struct DeletedQuery {
    pub deleted: Option<String>,
}

/// The Data page, with the fetch form's input and error after a refused fetch.
pub async fn page_with(
    state: &AppState,
    s: &CurrentSession,
    deleted: Option<String>,
    fetch: Option<(crate::data_fetch::FetchInput, ApiError)>,
) -> Result<Response, ApiError> {
    let ranges = all_views(&state.store).await?;
    let (fetch, fetch_error) = match fetch {
        Some((i, e)) => (
            i,
            Some((e.field.clone().unwrap_or_default(), e.message.clone())),
        ),
        None => (Default::default(), None),
    };
    Ok(render(&DataPage {
        chrome: Chrome::new("Data", "data", s),
        ranges,
        deleted,
        fetch_to: fetch.to.clone().unwrap_or_default(),
        fetch,
        fetch_error,
        keys_missing: crate::data_fetch::keys_hint(state),
    }))
}

/// `GET /data`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    q: Result<Query<DeletedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let deleted = q
        .ok()
        .and_then(|q| q.0.deleted)
        .and_then(|d| Symbol::new(&d).ok().map(String::from));
    page_with(&state, &s, deleted, None).await
}

#[derive(Template)]
#[template(path = "data_symbol.html")]
struct SymbolPage {
    chrome: Chrome,
    more: bool,
    d: RangeDetail,
}

/// `GET /data/{symbol}`.
pub async fn symbol_page(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    Path(symbol): Path<String>,
) -> Result<Response, ApiError> {
    let d = one(&state.store, &symbol).await?;
    Ok(render(&SymbolPage {
        chrome: Chrome::new(d.range.symbol.clone(), "data", &s),
        more: d.range.gaps > d.gaps.len() as u64,
        d,
    }))
}

#[derive(Template)]
#[template(path = "data_delete.html")]
struct DeletePage {
    chrome: Chrome,
    range: RangeView,
    error: Option<String>,
}

/// `GET /data/{symbol}/delete`: the confirmation.
pub async fn delete_confirm(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    Path(symbol): Path<String>,
) -> Result<Response, ApiError> {
    let d = one(&state.store, &symbol).await?;
    Ok(render(&DeletePage {
        chrome: Chrome::new(format!("Delete {}", d.range.symbol), "data", &s),
        range: d.range,
        error: None,
    }))
}

/// The delete confirmation's fields.
#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    /// The symbol typed again.
    #[serde(default)]
    pub confirm: String,
}

/// `POST /data/{symbol}/delete`: deletes when the symbol was typed again.
pub async fn delete_form(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    Path(symbol): Path<String>,
    form: Result<Form<DeleteForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let d = one(&state.store, &symbol).await?;
    let typed = form.map(|f| f.0.confirm).unwrap_or_default();
    if !typed.trim().eq_ignore_ascii_case(&d.range.symbol) {
        let mut res = render(&DeletePage {
            chrome: Chrome::new(format!("Delete {}", d.range.symbol), "data", &s),
            error: Some(format!(
                "type {} to confirm: nothing was deleted",
                d.range.symbol
            )),
            range: d.range,
        });
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(res);
    }
    state.store.delete_symbol(&d.range.symbol).await?;
    Ok(Redirect::to(&format!("/data?deleted={}", d.range.symbol)).into_response())
}

/// Every stored symbol's range, gap count and splits.
#[utoipa::path(get, path = "/api/v1/ranges", tag = "data",
    responses((status = 200, body = [RangeView]), (status = 401, body = ErrorBody)))]
pub async fn api_ranges(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<RangeView>>, ApiError> {
    Ok(Json(all_views(&state.store).await?))
}

/// One symbol's range with its gaps.
#[utoipa::path(get, path = "/api/v1/ranges/{symbol}", tag = "data",
    params(("symbol" = String, Path, description = "A ticker, e.g. SPY")),
    responses((status = 200, body = RangeDetail), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn api_range(
    State(state): State<Arc<AppState>>,
    Path(symbol): Path<String>,
) -> Result<Json<RangeDetail>, ApiError> {
    Ok(Json(one(&state.store, &symbol).await?))
}

/// Deletes a symbol's bars, day statuses, range and splits (one transaction).
#[utoipa::path(delete, path = "/api/v1/ranges/{symbol}", tag = "data",
    params(("symbol" = String, Path, description = "A ticker, e.g. SPY")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, body = DeleteResult), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn api_delete(
    State(state): State<Arc<AppState>>,
    Path(symbol): Path<String>,
) -> Result<Json<DeleteResult>, ApiError> {
    let sym = parse_symbol("symbol", &symbol)?;
    if state.store.range(&sym).await?.is_none() {
        return Err(ApiError::not_found(format!("nothing is stored for {sym}")));
    }
    let days_deleted = state.store.delete_symbol(&sym).await?;
    Ok(Json(DeleteResult {
        symbol: sym,
        days_deleted,
    }))
}

/// The import's options, from the query string.
#[derive(Debug, Clone)]
struct ImportOptions {
    parquet: bool,
    tz: Option<chrono_tz::Tz>,
    strict: bool,
    name: String,
}

fn parse_bool(field: &str, v: &str) -> Result<bool, ApiError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "off" | "no" => Ok(false),
        "true" | "1" | "on" | "yes" => Ok(true),
        _ => Err(ApiError::field(
            field,
            format!("{v:?} is not a yes/no value: give true or false"),
        )),
    }
}

fn import_options(q: &HashMap<String, String>, body: &[u8]) -> Result<ImportOptions, ApiError> {
    for k in q.keys() {
        if !matches!(k.as_str(), "format" | "tz" | "strict" | "filename") {
            return Err(ApiError::field(
                k,
                format!("{k} is not an import option: use format, tz, strict or filename"),
            ));
        }
    }
    let name = q
        .get("filename")
        .map(|n| n.chars().filter(|c| !c.is_control()).take(200).collect())
        .filter(|n: &String| !n.is_empty())
        .unwrap_or_else(|| "the upload".to_string());
    let sniffed = body.starts_with(b"PAR1");
    let parquet = match q.get("format").map(|f| f.trim().to_ascii_lowercase()) {
        None => sniffed || name.to_ascii_lowercase().ends_with(".parquet"),
        Some(f) if f.is_empty() || f == "auto" => {
            sniffed || name.to_ascii_lowercase().ends_with(".parquet")
        }
        Some(f) if f == "csv" => false,
        Some(f) if f == "parquet" => true,
        Some(f) => {
            return Err(ApiError::field(
                "format",
                format!(
                "{f:?} is not a format: give csv or parquet (or leave it out to tell by the file)"
            ),
            ))
        }
    };
    let tz = match q.get("tz").map(|t| t.trim()).filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(t.parse::<chrono_tz::Tz>().map_err(|_| {
            ApiError::field(
                "tz",
                format!(
                    "{t:?} is not a time zone: give an IANA name such as America/New_York or UTC"
                ),
            )
        })?),
    };
    let strict = match q.get("strict") {
        None => false,
        Some(v) => parse_bool("strict", v)?,
    };
    Ok(ImportOptions {
        parquet,
        tz,
        strict,
        name,
    })
}

/// Parses the upload (CPU work, run off the async workers).
fn load(symbol: &str, body: &[u8], o: &ImportOptions) -> Result<(BarSeries, Widened), ApiError> {
    let mut widened = Widened::default();
    if o.parquet {
        if o.tz.is_some() {
            return Err(ApiError::field(
                "tz",
                "a Parquet file's timestamps carry their zone: leave tz out",
            ));
        }
        // The Parquet reader takes a path: the upload goes to a private temporary file first.
        let path = std::env::temp_dir().join(format!(
            "vectura-upload-{}-{}.parquet",
            std::process::id(),
            crate::auth::random_token()
        ));
        std::fs::write(&path, body).map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the upload cannot be stored for reading ({e}): check the temporary folder's free space"),
            )
        })?;
        let r = vectura_data::parquet_io::read_parquet_checked(&path, o.strict);
        let _ = std::fs::remove_file(&path);
        let l = r.map_err(|e| {
            ApiError::field(
                "file",
                e.to_string().replace(&path.display().to_string(), &o.name),
            )
        })?;
        widened.add(&o.name, l.widened, &l.widened_lines);
        Ok((l.series, widened))
    } else {
        let l = vectura_data::load_csv_reader(
            &o.name,
            body,
            &vectura_data::LoadOptions {
                symbol: Some(symbol.to_string()),
                tz: o.tz,
                strict: o.strict,
            },
        )
        .map_err(|e| ApiError::field("file", e.to_string()))?;
        widened.add(&o.name, l.widened, &l.widened_lines);
        Ok((l.series, widened))
    }
}

/// Imports a CSV (optionally gzip-compressed) or Parquet file of bars, sent as the request body,
/// under `symbol`: all its days or, on any error, none. Days already stored are replaced.
#[utoipa::path(post, path = "/api/v1/ranges/{symbol}/import", tag = "data",
    params(
        ("symbol" = String, Path, description = "The symbol to store the bars under"),
        ("format" = Option<String>, Query, description = "csv or parquet; by default told by the file (Parquet's PAR1 magic or a .parquet filename)"),
        ("tz" = Option<String>, Query, description = "Zone of zone-less CSV timestamps (IANA name; default UTC)"),
        ("strict" = Option<bool>, Query, description = "Reject inconsistent bars instead of widening them"),
        ("filename" = Option<String>, Query, description = "The file's name, for messages"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes"),
    security(("session" = [], "csrf" = [])),
    responses((status = 201, body = ImportResult), (status = 422, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn api_import(
    State(state): State<Arc<AppState>>,
    Path(symbol): Path<String>,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<ImportResult>), ApiError> {
    let sym = parse_symbol("symbol", &symbol)?;
    let q = q
        .map_err(|e| ApiError::field("query", format!("the query string cannot be read: {e}")))?
        .0;
    let body = body.map_err(|e| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the upload cannot be read ({e}): send at most {} MB",
                IMPORT_LIMIT >> 20
            ),
        )
    })?;
    if body.is_empty() {
        return Err(ApiError::field(
            "file",
            "the upload is empty: choose a CSV or Parquet file of bars",
        ));
    }
    let opts = import_options(&q, &body)?;
    let name = opts.name.clone();
    let sym2 = sym.clone();
    let (series, widened) = tokio::task::spawn_blocking(move || load(&sym2, &body, &opts))
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))??;
    if series.is_empty() {
        return Err(ApiError::field(
            "file",
            format!("{name} holds no bars (of {sym}): nothing was imported"),
        ));
    }
    // The one import path of `vectura data import`: days split, stored in one transaction.
    let done = vectura_jobs::data::store_import(&state.store, &sym, &series, &name, &widened)
        .await
        .map_err(|e| match e {
            vectura_jobs::JobError::Store(s) => ApiError::store(s),
            other => ApiError::field(
                other.field().unwrap_or("file"),
                vectura_jobs::error::chain(&other),
            ),
        })?;
    state.metrics.inc("imports_total");
    Ok((
        StatusCode::CREATED,
        Json(ImportResult {
            symbol: done.symbol,
            bars: done.bars as u64,
            days: done.days as u64,
            first_day: done.first.to_string(),
            last_day: done.last.to_string(),
            widened: done.widened as u64,
            message: done.message,
        }),
    ))
}
