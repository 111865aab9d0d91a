//! Starting a sweep from the dashboard: the form on the Sweeps page and `POST /api/v1/sweeps`.
//! Each grid parameter takes a list (`1,2,4`) or a range (`1:5:0.5`) as `vectura sweep --param`
//! does; every combination or N random sets; optionally walk-forward; the market (bars, symbols,
//! dates or several ranges, fill, session). It runs as a server job (progress, cancel) and records
//! its run and rows in `sweep_runs` / `sweep_results`, whose page shows the heat maps.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use vectura_backtest::sweep::{metric_names, ParamAxis, Plan, Sampling, PARAM_NAMES};
use vectura_jobs::sweep::{SweepDone, SweepRequest};
use vectura_jobs::JobOutcome;

use crate::auth::CurrentSession;
use crate::backtests::{BacktestInput, FieldErrors, Started};
use crate::error::{ApiError, ErrorBody};
use crate::server::AppState;

/// The most sets a dashboard sweep runs (per market): more belongs to `vectura sweep --store`.
pub const MAX_SETS: u64 = 5_000_000;

/// A sweep as the form and the API take it (every field optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SweepInput {
    /// 1 to 50 characters (default "My Sweep").
    pub name: Option<String>,
    /// `bundled` (the SPY minute bars in the binary) or `store` (stored bars of `symbols`).
    pub source: Option<String>,
    /// Stored symbols, separated by commas or spaces: one market per symbol (and range).
    pub symbols: Option<String>,
    /// YYYY-MM-DD; default: the data's first day.
    pub start_date: Option<String>,
    /// YYYY-MM-DD; default: the data's last day.
    pub end_date: Option<String>,
    /// Several date ranges instead of the dates: `FROM:TO` each (YYYY-MM-DD:YYYY-MM-DD), separated
    /// by commas, spaces or lines.
    pub ranges: Option<String>,
    /// `next-open`, `close` or `touch`.
    pub fill: Option<String>,
    /// `regular`, `extended` or `all`.
    pub session: Option<String>,
    pub start_capital: Option<f64>,
    /// Per grid parameter (capital_pct, buy_below_pct, sell_above_pct, buy_after_sell_pct,
    /// cash_floor, order_gap_pct): `start:stop:step` or `v1,v2,…`; at least one.
    pub params: BTreeMap<String, String>,
    /// `grid` (every combination) or `random` (`random_sets` drawn).
    pub sampling: Option<String>,
    pub random_sets: Option<u64>,
    /// The random draw's seed (default 1).
    pub seed: Option<u64>,
    /// Walk forward: `IS:OOS` calendar days (e.g. 180:30).
    pub walk_forward: Option<String>,
    /// The metric that ranks the sets (default time_weighted_return_pct).
    pub rank_by: Option<String>,
    /// Rows of the top table (1 to 500, default 10).
    pub top: Option<u64>,
}

fn text(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn split_list(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// A plan error in the dashboard's words (the CLI's name their flags).
fn plan_text(e: &impl std::fmt::Display) -> String {
    e.to_string()
        .replace("--param ", "")
        .replace("--random", "random sets")
}

impl SweepInput {
    /// The sweep's name.
    pub fn name(&self) -> String {
        text(&self.name).unwrap_or("My Sweep").to_string()
    }

    /// Checks every field and builds the job's request, naming each bad field with its fix. The
    /// sweep is recorded in the database and writes no file.
    pub fn to_request(&self) -> Result<SweepRequest, FieldErrors> {
        let mut e: FieldErrors = Vec::new();
        if self.name().chars().count() > 50 {
            e.push((
                "name",
                "the name is longer than 50 characters: shorten it".into(),
            ));
        }
        let store = match text(&self.source) {
            None | Some("bundled") => false,
            Some("store") => true,
            Some(s) => {
                e.push(("source", format!("{s:?} is not one of bundled, store")));
                false
            }
        };
        let mut symbols = Vec::new();
        if store {
            for s in split_list(text(&self.symbols).unwrap_or("")) {
                match vectura_core::Symbol::new(&s) {
                    Ok(sym) => {
                        let sym = String::from(sym);
                        if symbols.contains(&sym) {
                            e.push(("symbols", format!("{sym} is given twice: give it once")));
                        } else {
                            symbols.push(sym);
                        }
                    }
                    Err(err) => e.push(("symbols", format!("{s:?}: {err}"))),
                }
            }
            if symbols.is_empty() && !e.iter().any(|(f, _)| *f == "symbols") {
                e.push((
                    "symbols",
                    "give the stored symbols to sweep (e.g. SPY, QQQ)".into(),
                ));
            }
        }
        let ranges = split_list(text(&self.ranges).unwrap_or(""));
        for r in &ranges {
            if let Err(err) = vectura_jobs::sweep::parse_range(r) {
                e.push(("ranges", err.to_string().replace("--range ", "the range ")));
            }
        }
        if !ranges.is_empty()
            && (text(&self.start_date).is_some() || text(&self.end_date).is_some())
        {
            e.push((
                "ranges",
                "give the dates one way: either ranges or the start and end dates".into(),
            ));
        }
        // The shared backtest fields are checked as the backtest form checks them.
        let base_input = BacktestInput {
            name: Some("sweep".into()),
            source: Some(if store { "store" } else { "bundled" }.into()),
            symbol: symbols
                .first()
                .cloned()
                .or_else(|| store.then(|| "SPY".into())),
            start_date: self.start_date.clone(),
            end_date: self.end_date.clone(),
            fill: self.fill.clone(),
            session: self.session.clone(),
            start_capital: self.start_capital,
            ..BacktestInput::default()
        };
        let base = match base_input.to_request() {
            Ok(b) => Some(b),
            Err(errs) => {
                e.extend(errs);
                None
            }
        };
        let mut specs = Vec::new();
        let mut axes = Vec::new();
        for (k, v) in &self.params {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            let field: &'static str = match PARAM_NAMES.iter().position(|n| n == k) {
                Some(i) => PARAM_FIELDS[i],
                None => {
                    e.push((
                        "params",
                        format!(
                            "{k:?} is not a grid parameter: use {}",
                            PARAM_NAMES.join(", ")
                        ),
                    ));
                    continue;
                }
            };
            let spec = format!("{k}={v}");
            match ParamAxis::parse(&spec) {
                Ok(a) => {
                    axes.push(a);
                    specs.push(spec);
                }
                Err(err) => e.push((field, plan_text(&err))),
            }
        }
        if specs.is_empty() && !e.iter().any(|(f, _)| f.starts_with("params")) {
            e.push((
                "params",
                "give at least one parameter's values, e.g. buy below 1:5:0.5 or 1,2,4".into(),
            ));
        }
        let sampling = match text(&self.sampling) {
            None | Some("grid") => Sampling::Grid,
            Some("random") => match self.random_sets {
                Some(n) if n > 0 => Sampling::Random {
                    n,
                    seed: self.seed.unwrap_or(1),
                },
                _ => {
                    e.push((
                        "random_sets",
                        "give how many random sets to draw (1 or more)".into(),
                    ));
                    Sampling::Grid
                }
            },
            Some(s) => {
                e.push(("sampling", format!("{s:?} is not one of grid, random")));
                Sampling::Grid
            }
        };
        if !axes.is_empty()
            && !e
                .iter()
                .any(|(f, _)| f.starts_with("params") || *f == "random_sets")
        {
            match Plan::new(Default::default(), axes, sampling.clone()) {
                Ok(p) if p.len() > MAX_SETS => e.push((
                    "params",
                    format!(
                        "the plan has {} sets, more than the dashboard's {MAX_SETS}: narrow the ranges, draw random sets or run vectura sweep",
                        p.len()
                    ),
                )),
                Ok(_) => {}
                Err(err) => {
                    let f = if matches!(sampling, Sampling::Random { .. }) {
                        "random_sets"
                    } else {
                        "params"
                    };
                    e.push((f, plan_text(&err)));
                }
            }
        }
        let walk_forward = text(&self.walk_forward).map(str::to_string);
        if let Some(w) = &walk_forward {
            if let Err(err) = vectura_jobs::sweep::parse_walk_forward(w) {
                e.push((
                    "walk_forward",
                    err.to_string().replace("--walk-forward ", ""),
                ));
            }
        }
        let rank_by = text(&self.rank_by)
            .unwrap_or("time_weighted_return_pct")
            .to_string();
        if !metric_names().contains(&rank_by.as_str()) {
            e.push((
                "rank_by",
                format!(
                    "{rank_by:?} is not a metric: use one of {}",
                    metric_names().join(", ")
                ),
            ));
        }
        let top = self.top.unwrap_or(10);
        if !(1..=500).contains(&top) {
            e.push(("top", format!("{top}: give 1 to 500 rows")));
        }
        match base {
            Some(mut base) if e.is_empty() => {
                if !ranges.is_empty() {
                    base.start_date = None;
                    base.end_date = None;
                }
                Ok(SweepRequest {
                    base,
                    symbols,
                    ranges,
                    params: specs,
                    sampling,
                    rank_by,
                    top: top as usize,
                    walk_forward,
                    record: true,
                    ..SweepRequest::default()
                })
            }
            _ => Err(e),
        }
    }

    /// The form's fields (`params.NAME` for each parameter) as typed.
    pub fn from_form(f: &HashMap<String, String>) -> Result<SweepInput, FieldErrors> {
        let mut e: FieldErrors = Vec::new();
        let s = |k: &str| {
            f.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut n = |k: &'static str| -> Option<f64> {
            let v = s(k)?;
            match v.parse::<f64>() {
                Ok(x) => Some(x),
                Err(_) => {
                    e.push((k, format!("{v:?} is not a number")));
                    None
                }
            }
        };
        let start_capital = n("start_capital");
        let mut u = |k: &'static str| -> Option<u64> {
            let v = s(k)?;
            match v.parse::<u64>() {
                Ok(x) => Some(x),
                Err(_) => {
                    e.push((k, format!("{v:?} is not a whole number 0 or above")));
                    None
                }
            }
        };
        let random_sets = u("random_sets");
        let seed = u("seed");
        let top = u("top");
        let params = PARAM_NAMES
            .iter()
            .filter_map(|k| s(&format!("params.{k}")).map(|v| (k.to_string(), v)))
            .collect();
        let input = SweepInput {
            name: s("name"),
            source: s("source"),
            symbols: s("symbols"),
            start_date: s("start_date"),
            end_date: s("end_date"),
            ranges: s("ranges"),
            fill: s("fill"),
            session: s("session"),
            start_capital,
            params,
            sampling: s("sampling"),
            random_sets,
            seed,
            walk_forward: s("walk_forward"),
            rank_by: s("rank_by"),
            top,
        };
        if e.is_empty() {
            Ok(input)
        } else {
            Err(e)
        }
    }
}

/// Each grid parameter's field name (`params.NAME`), in `PARAM_NAMES` order.
pub const PARAM_FIELDS: [&str; 6] = [
    "params.capital_pct",
    "params.buy_below_pct",
    "params.sell_above_pct",
    "params.buy_after_sell_pct",
    "params.cash_floor",
    "params.order_gap_pct",
];

/// The labels of the form's parameter fields, in `PARAM_NAMES` order.
pub const PARAM_LABELS: [&str; 6] = [
    "Cash per trade (%)",
    "Buy below (%)",
    "Sell above (%)",
    "Buy after sell (%)",
    "Cash floor ($)",
    "Order gap (%)",
];

/// What a finished sweep job stores: a line for a person, the link to its heat maps, the summary.
fn outcome_doc(d: &SweepDone) -> Value {
    let summary = serde_json::to_value(d).unwrap_or(Value::Null);
    match d {
        SweepDone::Ran(r) => {
            let rows = r.to - r.from;
            let mut doc = json!({
                "message": format!("{rows} sets over {} market(s) in {:.1} s", r.markets.len(), r.seconds),
                "summary": summary,
            });
            if let Some(rec) = &r.recorded {
                doc["link"] = json!(format!("/sweeps/{}", rec.run_id));
                doc["link_text"] = json!("Open its heat maps");
                doc["sweep_run"] = json!(rec.run_id);
            }
            doc
        }
        SweepDone::Walked(w) => json!({
            "message": format!(
                "walked forward {}:{} days: {} window(s) over {} market(s)",
                w.in_sample_days,
                w.out_of_sample_days,
                w.walks.iter().map(|m| m.rows.len()).sum::<usize>(),
                w.walks.len()
            ),
            "summary": summary,
        }),
        _ => json!({"message": "done", "summary": summary}),
    }
}

/// Stores and starts the sweep job.
pub async fn start(
    state: &Arc<AppState>,
    input: &SweepInput,
    request: SweepRequest,
) -> Result<String, ApiError> {
    let stored = json!({"input": input, "request": request});
    let work: crate::jobs::Work = Box::new(move |ctx| {
        let chain = |e: vectura_jobs::JobError| vectura_jobs::error::chain(&e);
        let prep = match vectura_jobs::sweep::prepare(&request, ctx).map_err(chain)? {
            JobOutcome::Done(p) => p,
            JobOutcome::Cancelled(c) => return Ok(JobOutcome::Cancelled(c)),
        };
        Ok(
            match vectura_jobs::sweep::run(prep, &request, None, ctx).map_err(chain)? {
                JobOutcome::Done(d) => JobOutcome::Done(outcome_doc(&d)),
                JobOutcome::Cancelled(c) => JobOutcome::Cancelled(c),
            },
        )
    });
    crate::jobs::start_job(state, "sweep", "sw", &input.name(), &stored, work).await
}

fn field_errors(errors: FieldErrors) -> ApiError {
    let (field, msg) = errors
        .into_iter()
        .next()
        .unwrap_or(("body", "invalid".into()));
    ApiError::field(field, msg)
}

/// Starts a sweep job; follow it at `/api/v1/jobs/{id}/events`.
#[utoipa::path(post, path = "/api/v1/sweeps", tag = "sweeps",
    request_body = SweepInput,
    security(("session" = [], "csrf" = [])),
    responses((status = 202, body = Started), (status = 422, body = ErrorBody), (status = 400, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn api_start(
    State(state): State<Arc<AppState>>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let input: SweepInput = crate::backtests::json_object(body)?;
    let request = input.to_request().map_err(field_errors)?;
    let id = start(&state, &input, request).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { id })))
}

/// `POST /sweeps` (the form): to the job's page, or the form again with each message next to
/// its field.
pub async fn submit(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let f = form
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?
        .0;
    let checked = SweepInput::from_form(&f).and_then(|i| i.to_request().map(|r| (i, r)));
    match checked {
        Ok((input, request)) => {
            let id = start(&state, &input, request).await?;
            Ok(Redirect::to(&format!("/jobs/{id}")).into_response())
        }
        Err(errors) => {
            let mut values = crate::backtests::FormValues {
                v: f.into_iter().filter(|(k, _)| k != "csrf").collect(),
                errors: HashMap::new(),
            };
            for (k, m) in errors {
                values.errors.entry(k.to_string()).or_insert(m);
            }
            let mut res = crate::sweeps::page_with(&state, &s, values).await?;
            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(res)
        }
    }
}
