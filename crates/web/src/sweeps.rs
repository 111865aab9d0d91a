//! The Sweeps pages and API: the stored sweep runs (`sweep_runs`), and one run's results as a heat
//! map over two parameters (the best value of a metric per cell, one map per market, all on one
//! colour scale) and a table of the best sets.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use vectura_store::{SweepColumns, SweepResult, SweepRun};

use crate::auth::CurrentSession;
use crate::error::{ApiError, ErrorBody};
use crate::pages::{render, Chrome};
use crate::server::AppState;

/// One stored sweep.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SweepView {
    pub id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub symbols: Vec<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub fill: String,
    /// running, done or failed.
    pub status: String,
    pub set_count: u64,
    pub rows_stored: u64,
    pub error: Option<String>,
}

impl SweepView {
    fn of(r: &SweepRun) -> SweepView {
        SweepView {
            id: r.id.clone(),
            created_at: r.created_at.to_rfc3339(),
            symbols: r.symbols.clone(),
            start_date: r.start_date.map(|d| d.to_string()),
            end_date: r.end_date.map(|d| d.to_string()),
            fill: fill_spelling(&r.fill),
            status: r.status.as_str().to_string(),
            set_count: r.set_count,
            rows_stored: r.rows_stored,
            error: r.error.clone(),
        }
    }
}

/// A fill model as the CLI spells it (`--fill next-open`): runs store the model's Rust name
/// (`NextOpen`), which is kebab-cased here; anything else is shown as stored.
pub fn fill_spelling(stored: &str) -> String {
    if !stored.chars().all(|c| c.is_ascii_alphanumeric())
        || !stored.starts_with(|c: char| c.is_ascii_uppercase())
    {
        return stored.to_string();
    }
    let mut out = String::with_capacity(stored.len() + 2);
    for (i, c) in stored.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Cells per heat-map axis at most: an axis with more distinct values (a random sweep's) is
/// bucketed, so a map is at most 60 × 60 cells whatever the sweep's size.
pub const MAX_AXIS_CELLS: usize = 60;

/// An axis's cells: the sorted distinct values when they fit, else [`MAX_AXIS_CELLS`] buckets of
/// about equal count labelled by their lowest value; and each value's cell (by bit pattern).
fn cells_of(values: &[f64]) -> (Vec<f64>, std::collections::HashMap<u64, usize>) {
    let n = values.len();
    if n <= MAX_AXIS_CELLS {
        let of = values
            .iter()
            .enumerate()
            .map(|(i, v)| (v.to_bits(), i))
            .collect();
        return (values.to_vec(), of);
    }
    let bucket = |i: usize| i * MAX_AXIS_CELLS / n;
    let mut labels = Vec::with_capacity(MAX_AXIS_CELLS);
    let mut of = std::collections::HashMap::with_capacity(n);
    for (i, v) in values.iter().enumerate() {
        let b = bucket(i);
        if b == labels.len() {
            labels.push(*v);
        }
        of.insert(v.to_bits(), b);
    }
    (labels, of)
}

/// One market's heat map: `z[y][x]` is the best metric value of the cell (null where no set).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeatMap {
    /// The market (symbol and span) the map is of.
    pub market: String,
    pub z: Vec<Vec<Option<f64>>>,
    /// The set (`set_index`) of each cell's best value.
    pub set: Vec<Vec<Option<u64>>>,
}

/// A set in the best-sets table.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TopRow {
    pub set_index: u64,
    pub market: String,
    #[schema(value_type = Object)]
    pub params: Value,
    pub value: f64,
}

/// One sweep with its heat maps and best sets.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SweepDetail {
    pub run: SweepView,
    /// Numeric parameters that vary (heat-map axes).
    pub params: Vec<String>,
    /// Numeric metrics.
    pub metrics: Vec<String>,
    pub x: Option<String>,
    pub y: Option<String>,
    pub metric: Option<String>,
    /// The listed values of `x` and `y`, sorted (each a column / row of evenly sized cells); when
    /// an axis has more than 60 distinct values, the lowest value of each of its 60 buckets.
    pub x_values: Vec<f64>,
    pub y_values: Vec<f64>,
    /// The distinct values of `x` and `y` (more than the cells when bucketed).
    pub x_distinct: usize,
    pub y_distinct: usize,
    pub maps: Vec<HeatMap>,
    /// The colour scale shared by every map.
    pub z_min: Option<f64>,
    pub z_max: Option<f64>,
    pub top: Vec<TopRow>,
}

/// The heat map's choices.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HeatQuery {
    /// The parameter across (default: the first varying one).
    pub x: Option<String>,
    /// The parameter down (default: the second varying one).
    pub y: Option<String>,
    /// The metric coloured (default: total_return_pct, else the first).
    pub metric: Option<String>,
    /// Rows in the best-sets table (default 20, at most 500).
    #[param(maximum = 500)]
    pub top: Option<u32>,
}

/// Orders floats (NaN last; the store keeps only finite numbers).
fn cmp_f64(a: &f64, b: &f64) -> std::cmp::Ordering {
    a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal)
}

/// Builds the detail of a run from its rows.
pub fn detail(
    run: &SweepRun,
    rows: &[SweepResult],
    q: &HeatQuery,
) -> Result<SweepDetail, ApiError> {
    let mut d = detail_of_columns(run, &SweepColumns::from_rows(rows), q)?;
    // Rows are in set order: each best set's parameters by a binary search.
    for t in &mut d.top {
        if let Ok(k) = rows.binary_search_by_key(&t.set_index, |r| r.set_index) {
            t.params = rows[k].params.clone();
        }
    }
    Ok(d)
}

/// Builds the detail of a run from its columns; the best sets' `params` are left null for the caller
/// to fill from their rows (a few hundred at most, where the columns hold every set).
pub fn detail_of_columns(
    run: &SweepRun,
    cols: &SweepColumns,
    q: &HeatQuery,
) -> Result<SweepDetail, ApiError> {
    // Numeric parameters and their distinct values (by bit pattern, as stored); numeric metrics.
    let distinct = |col: &[Option<f64>]| {
        let mut bits: Vec<u64> = col.iter().flatten().map(|f| f.to_bits()).collect();
        bits.sort_unstable();
        bits.dedup();
        bits
    };
    let values: BTreeMap<&String, Vec<u64>> =
        cols.params.iter().map(|(k, c)| (k, distinct(c))).collect();
    let params: Vec<String> = values
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, _)| (*k).clone())
        .collect();
    let metrics: Vec<String> = cols.metrics.keys().cloned().collect();
    let pick =
        |field: &str, want: &Option<String>, list: &[String], default: Option<&String>| match want
            .as_deref()
            .filter(|w| !w.is_empty())
        {
            Some(w) if list.iter().any(|p| p == w) => Ok(Some(w.to_string())),
            Some(w) => Err(ApiError::field(
                field,
                format!(
                    "{w:?} is not one of this sweep's {}: {}",
                    if field == "metric" {
                        "metrics"
                    } else {
                        "varying parameters"
                    },
                    list.join(", ")
                ),
            )),
            None => Ok(default.cloned()),
        };
    let x = pick("x", &q.x, &params, params.first())?;
    let y = pick(
        "y",
        &q.y,
        &params,
        params.iter().find(|p| Some(*p) != x.as_ref()),
    )?;
    let metric = pick(
        "metric",
        &q.metric,
        &metrics,
        metrics
            .iter()
            .find(|m| *m == "total_return_pct")
            .or(metrics.first()),
    )?;
    let top_n = q.top.unwrap_or(20);
    if top_n > 500 {
        return Err(ApiError::field(
            "top",
            format!("{top_n} rows is too many: give at most 500"),
        ));
    }
    let axis = |p: &Option<String>| -> Vec<f64> {
        p.as_ref()
            .and_then(|p| values.get(p))
            .map(|s| {
                let mut v: Vec<f64> = s.iter().map(|b| f64::from_bits(*b)).collect();
                v.sort_by(cmp_f64);
                v
            })
            .unwrap_or_default()
    };
    let (x_all, y_all) = (axis(&x), axis(&y));
    let (x_distinct, y_distinct) = (x_all.len(), y_all.len());
    let ((x_values, xi_of), (y_values, yi_of)) = (cells_of(&x_all), cells_of(&y_all));
    let mut maps: BTreeMap<&str, HeatMap> = BTreeMap::new();
    let mut top: Vec<TopRow> = Vec::new();
    let (mut z_min, mut z_max): (Option<f64>, Option<f64>) = (None, None);
    if let Some(m) = metric.as_ref().and_then(|m| cols.metrics.get(m)) {
        // A cell's column / row by the value's bit pattern (`cells_of`).
        let col = |p: &Option<String>| p.as_ref().and_then(|p| cols.params.get(p));
        let (xc, yc) = (col(&x), col(&y));
        let mut ranked: Vec<(f64, u64, usize)> = Vec::with_capacity(cols.len());
        for (i, v) in m.iter().enumerate() {
            let Some(v) = *v else {
                continue;
            };
            ranked.push((v, cols.set_index[i], i));
            let (Some(xc), Some(yc)) = (xc, yc) else {
                continue;
            };
            let coord =
                |c: &[Option<f64>], of: &std::collections::HashMap<u64, usize>| -> Option<usize> {
                    c[i].and_then(|f| of.get(&f.to_bits()).copied())
                };
            let (Some(xi), Some(yi)) = (coord(xc, &xi_of), coord(yc, &yi_of)) else {
                continue;
            };
            let market = cols.markets[cols.market[i] as usize].as_str();
            let map = maps.entry(market).or_insert_with(|| HeatMap {
                market: market.to_string(),
                z: vec![vec![None; x_values.len()]; y_values.len()],
                set: vec![vec![None; x_values.len()]; y_values.len()],
            });
            let cell = &mut map.z[yi][xi];
            if cell.is_none_or(|c| v > c) {
                *cell = Some(v);
                map.set[yi][xi] = Some(cols.set_index[i]);
            }
        }
        for map in maps.values() {
            for v in map.z.iter().flatten().flatten() {
                z_min = Some(z_min.map_or(*v, |z| z.min(*v)));
                z_max = Some(z_max.map_or(*v, |z| z.max(*v)));
            }
        }
        // The best `top_n`: highest value first, the lower set index on a tie.
        let order =
            |a: &(f64, u64, usize), b: &(f64, u64, usize)| cmp_f64(&b.0, &a.0).then(a.1.cmp(&b.1));
        let k = (top_n as usize).min(ranked.len());
        if k > 0 && k < ranked.len() {
            ranked.select_nth_unstable_by(k - 1, order);
        }
        ranked.truncate(k);
        ranked.sort_by(order);
        top = ranked
            .into_iter()
            .map(|(v, set_index, i)| TopRow {
                set_index,
                market: cols.markets[cols.market[i] as usize].clone(),
                params: Value::Null,
                value: v,
            })
            .collect();
    }
    Ok(SweepDetail {
        run: SweepView::of(run),
        params,
        metrics,
        x,
        y,
        metric,
        x_values,
        y_values,
        x_distinct,
        y_distinct,
        maps: maps.into_values().collect(),
        z_min,
        z_max,
        top,
    })
}

/// A JSON value safe inside `<script type="application/json">` (no `<`, `>` or `&` that could end
/// the element or start a comment).
pub fn script_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v)
        .unwrap_or_else(|_| "null".to_string())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[derive(Template)]
#[template(path = "sweeps.html")]
struct SweepsPage {
    chrome: Chrome,
    runs: Vec<SweepView>,
    /// The new-sweep form's values and messages.
    f: crate::backtests::FormValues,
    /// (field, label, parameter name) of each grid parameter.
    param_fields: Vec<(&'static str, &'static str)>,
    metrics: &'static [&'static str],
    /// Sweep jobs started here: (id, name, status, error).
    jobs: Vec<(String, String, String, String)>,
}

/// `GET /sweeps`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
) -> Result<Response, ApiError> {
    let mut f = crate::backtests::FormValues::default();
    for (k, v) in [
        ("name", "My Sweep"),
        ("params.buy_below_pct", "1:3:1"),
        ("params.sell_above_pct", "10,18,30"),
        ("seed", "1"),
        ("top", "10"),
    ] {
        f.v.insert(k.to_string(), v.to_string());
    }
    page_with(&state, &s, f).await
}

/// The Sweeps page with the form holding `f`.
pub async fn page_with(
    state: &AppState,
    s: &CurrentSession,
    f: crate::backtests::FormValues,
) -> Result<Response, ApiError> {
    let runs = state
        .store
        .sweep_runs()
        .await?
        .iter()
        .map(SweepView::of)
        .collect();
    let jobs = state
        .store
        .jobs("sweep", 20)
        .await?
        .into_iter()
        .map(|j| {
            (
                j.id,
                j.name,
                j.status.as_str().to_string(),
                j.error.unwrap_or_default(),
            )
        })
        .collect();
    Ok(render(&SweepsPage {
        chrome: Chrome::new("Sweeps", "sweeps", s),
        runs,
        f,
        param_fields: crate::sweep_form::PARAM_FIELDS
            .into_iter()
            .zip(crate::sweep_form::PARAM_LABELS)
            .collect(),
        metrics: vectura_backtest::sweep::metric_names(),
        jobs,
    }))
}

#[derive(Template)]
#[template(path = "sweep.html")]
struct SweepPage {
    chrome: Chrome,
    d: SweepDetail,
    data: String,
    plotly: &'static str,
}

async fn load(state: &AppState, id: &str, q: &HeatQuery) -> Result<SweepDetail, ApiError> {
    if id.len() > 200 {
        return Err(ApiError::field(
            "id",
            "a sweep id is at most 200 characters",
        ));
    }
    let run = state.store.sweep_run(id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no sweep with id {id:?} is stored: pick one from /sweeps"
        ))
    })?;
    // A finished run's columns are stored with it (a run finished before they were kept gets them
    // on its first view): the detail then reads one document and the best sets' rows, not every row.
    // A run still filling is computed from its rows, at its row count of the moment.
    let key = format!(
        "{id}|{}|{}|{:?}|{:?}|{:?}|{:?}",
        run.rows_stored,
        run.status.as_str(),
        q.x,
        q.y,
        q.metric,
        q.top
    );
    if let Some(d) = state.sweep_cache.get(&key) {
        return Ok(d);
    }
    let finished = run.status != vectura_store::SweepStatus::Running;
    let stored = if finished {
        state.store.sweep_columns(id).await?
    } else {
        None
    };
    let cols = match stored {
        Some(c) => c,
        None => {
            let rows = state.store.sweep_results(id).await?;
            let cols = tokio::task::spawn_blocking(move || SweepColumns::from_rows(&rows))
                .await
                .map_err(|e| {
                    ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                })?;
            if finished {
                state.store.put_sweep_columns(id, &cols).await?;
            }
            cols
        }
    };
    let q2 = q.clone();
    let mut d = tokio::task::spawn_blocking(move || detail_of_columns(&run, &cols, &q2))
        .await
        .map_err(|e| ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()))??;
    let sets: Vec<u64> = d.top.iter().map(|t| t.set_index).collect();
    let rows = state.store.sweep_results_at(id, &sets).await?;
    for t in &mut d.top {
        if let Ok(k) = rows.binary_search_by_key(&t.set_index, |r| r.set_index) {
            t.params = rows[k].params.clone();
        }
    }
    state.sweep_cache.put(key, d.clone());
    Ok(d)
}

/// The last few sweep details computed.
#[derive(Debug, Default)]
pub struct DetailCache {
    entries: std::sync::Mutex<std::collections::VecDeque<(String, SweepDetail)>>,
}

impl DetailCache {
    const KEEP: usize = 8;

    fn get(&self, key: &str) -> Option<SweepDetail> {
        let e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.iter().find(|(k, _)| k == key).map(|(_, d)| d.clone())
    }

    fn put(&self, key: String, d: SweepDetail) {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.retain(|(k, _)| *k != key);
        e.push_front((key, d));
        e.truncate(Self::KEEP);
    }
}

/// `GET /sweeps/{id}`.
pub async fn run_page(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    Path(id): Path<String>,
    q: Result<Query<HeatQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = q.map_err(|e| ApiError::field("query", e.body_text()))?.0;
    let d = load(&state, &id, &q).await?;
    let data = script_json(&d);
    Ok(render(&SweepPage {
        chrome: Chrome::new(format!("Sweep {id}"), "sweeps", &s),
        d,
        data,
        plotly: crate::assets::plotly_url(),
    }))
}

/// Every stored sweep, newest first.
#[utoipa::path(get, path = "/api/v1/sweeps", tag = "sweeps",
    responses((status = 200, body = [SweepView]), (status = 401, body = ErrorBody)))]
pub async fn api_runs(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<SweepView>>, ApiError> {
    Ok(Json(
        state
            .store
            .sweep_runs()
            .await?
            .iter()
            .map(SweepView::of)
            .collect(),
    ))
}

/// One sweep: its heat maps over two parameters and its best sets.
#[utoipa::path(get, path = "/api/v1/sweeps/{id}", tag = "sweeps",
    params(("id" = String, Path, description = "The sweep's id"), HeatQuery),
    responses((status = 200, body = SweepDetail), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn api_run(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    q: Result<Query<HeatQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SweepDetail>, ApiError> {
    let q = q.map_err(|e| ApiError::field("query", e.body_text()))?.0;
    Ok(Json(load(&state, &id, &q).await?))
}
#[cfg(test)]
mod cell_tests {
    use super::*;

    #[test]
    fn fill_models_are_spelled_as_the_cli_spells_them() {
        assert_eq!(fill_spelling("NextOpen"), "next-open");
        assert_eq!(fill_spelling("Close"), "close");
        assert_eq!(fill_spelling("Touch"), "touch");
        assert_eq!(fill_spelling("next-open"), "next-open");
        assert_eq!(fill_spelling(""), "");
    }

    /// A random sweep's 100 000 distinct values per axis make a 60 × 60 map, each cell the best
    /// of its bucket, and every set still lands in a cell.
    #[test]
    fn many_distinct_values_are_bucketed_into_at_most_60_by_60_cells() {
        let n = 100_000usize;
        let rows: Vec<SweepResult> = (0..n)
            .map(|i| {
                // Distinct on both axes, in a scrambled order.
                let x = ((i * 7919) % n) as f64 / 100.0 + 0.001;
                let y = ((i * 104_729) % n) as f64 / 10.0 + 0.002;
                SweepResult {
                    set_index: i as u64,
                    params: serde_json::json!({"symbol": "SPY", "buy_below_pct": x, "sell_above_pct": y}),
                    metrics: serde_json::json!({"total_return_pct": i as f64}),
                }
            })
            .collect();
        let run = SweepRun {
            id: "r".into(),
            created_at: chrono::Utc::now(),
            symbols: vec!["SPY".into()],
            start_date: None,
            end_date: None,
            fill: "NextOpen".into(),
            plan: serde_json::json!({}),
            status: vectura_store::SweepStatus::Done,
            set_count: n as u64,
            rows_stored: n as u64,
            finished_at: None,
            error: None,
        };
        let d = detail(&run, &rows, &HeatQuery::default()).unwrap();
        assert_eq!(d.run.fill, "next-open");
        assert_eq!((d.x_distinct, d.y_distinct), (n, n));
        assert_eq!(d.x_values.len(), MAX_AXIS_CELLS);
        assert_eq!(d.y_values.len(), MAX_AXIS_CELLS);
        assert!(d.x_values.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(d.maps.len(), 1);
        let m = &d.maps[0];
        assert_eq!(m.z.len(), MAX_AXIS_CELLS);
        assert!(m.z.iter().all(|r| r.len() == MAX_AXIS_CELLS));
        // The best set overall is in some cell, with its value.
        let best =
            m.z.iter()
                .flatten()
                .flatten()
                .fold(f64::MIN, |a, b| a.max(*b));
        assert_eq!(best, (n - 1) as f64);
        assert_eq!(d.z_max, Some((n - 1) as f64));
        // Few distinct values stay one cell each.
        let small: Vec<SweepResult> = rows[..0].to_vec();
        assert!(detail(&run, &small, &HeatQuery::default())
            .unwrap()
            .maps
            .is_empty());
        let (labels, of) = cells_of(&[1.0, 2.0, 3.0]);
        assert_eq!(labels, [1.0, 2.0, 3.0]);
        assert_eq!(of[&2.0f64.to_bits()], 1);
    }
}
