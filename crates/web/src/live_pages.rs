//! The live pages: the overview (`/live`, updated by server-sent events), trades (`/live/trades`,
//! filters, paging, CSV, round trips), the algorithm settings per symbol (`/live/algo`: validation
//! next to the field, audited saves, the kill switch and resume with a confirmation), and their
//! JSON API under `/api/v1`.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vectura_core::Side;
use vectura_store::{
    AlgoConfig, AuditEntry, RiskLimits, SymbolSettings, TradeFilter, TradeLine, TradeVersion,
};
use vectura_strategy::grid::GridParams;

use crate::auth::{random_token, CurrentSession};
use crate::backtests::BacktestInput;
use crate::error::ApiError;
use crate::histogram::Histogram;
use crate::live::{self, Overview};
use crate::pages::{render, Chrome};
use crate::server::AppState;

/// The live pages' routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/live", get(overview_page))
        .route("/live/trades", get(trades_page))
        .route("/live/trades.csv", get(trades_csv))
        .route("/live/algo", get(algo_page))
        .route(
            "/live/performance",
            get(crate::performance::performance_page),
        )
        .route("/live/algo/{symbol}", post(algo_save_form))
        .route("/live/algo/{symbol}/backtest", post(algo_backtest_form))
        .route("/live/algo/{symbol}/halt", post(halt_form))
        .route("/live/algo/{symbol}/resume", post(resume_form))
        .route("/api/v1/overview", get(live::api_overview))
        .route("/api/v1/overview/events", get(live::api_overview_events))
        .route("/api/v1/trades", get(api_trades))
        .route(
            "/api/v1/performance",
            get(crate::performance::api_performance),
        )
        .route(
            "/api/v1/performance/events",
            get(crate::performance::api_performance_events),
        )
        .route("/api/v1/algo", get(api_algo))
        .route("/api/v1/algo/{symbol}", post(api_algo_save))
        .route("/api/v1/algo/{symbol}/halt", post(api_halt))
        .route("/api/v1/algo/{symbol}/resume", post(api_resume))
}

/// The number formats of the live templates (askama calls them as methods of the page).
trait Formats {
    fn money(&self, v: &Option<f64>) -> String {
        money(v)
    }
    fn pct(&self, v: &Option<f64>) -> String {
        pct(v)
    }
    fn num(&self, v: &f64) -> String {
        num(v)
    }
    /// An RFC 3339 time in New York time.
    fn ny(&self, rfc3339: &str) -> String {
        crate::ny_time::of_rfc3339(rfc3339)
    }
}

impl Formats for OverviewPage {}
impl Formats for TradesTemplate {}
impl Formats for AlgoPage {}

/// Dollars with cents, or a dash.
pub fn money(v: &Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.2}"),
        _ => "–".into(),
    }
}

/// Percent with two decimals, or a dash.
pub fn pct(v: &Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.2} %"),
        _ => "–".into(),
    }
}

/// A number as short as it reads exactly (at most four decimals).
pub fn num(v: &f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn live_js() -> &'static str {
    crate::assets::live_js_url()
}

#[derive(Template)]
#[template(path = "live.html")]
struct OverviewPage {
    chrome: Chrome,
    live_js: &'static str,
    o: Overview,
}

/// `GET /live`.
pub async fn overview_page(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
) -> Result<Response, ApiError> {
    let p = live::current(&state).await?;
    Ok(render(&OverviewPage {
        chrome: Chrome::new("Live", "live", &s),
        live_js: live_js(),
        o: p.overview.clone(),
    }))
}

// ---------------------------------------------------------------- trades

/// One executed trade with, for a sell, its round trip's P&L and holding time.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TradeRow {
    pub id: String,
    pub symbol: String,
    /// RFC 3339.
    pub time: String,
    pub side: String,
    pub shares: f64,
    pub price: f64,
    /// A sell's profit against the buy that opened its lot, dollars.
    pub pnl: Option<f64>,
    /// A sell's holding time (`2h 15m`).
    pub held: String,
}

/// Round-trip statistics of the trades shown.
#[derive(Debug, Clone, Serialize, ToSchema, Default)]
pub struct TradeStats {
    pub round_trips: usize,
    pub win_rate_pct: Option<f64>,
    /// Gross profit over gross loss (absent without a loss).
    pub profit_factor: Option<f64>,
    pub realised: f64,
}

/// An order with its outcome.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderOutcome {
    pub client_order_id: String,
    pub symbol: String,
    pub created: String,
    pub side: String,
    pub qty: f64,
    pub filled: f64,
    /// `filled`, `partially_filled`, `rejected`, `canceled`, `dropped`, `submitted`, …
    pub status: String,
    /// Why it was rejected or ended.
    pub error: Option<String>,
}

/// A page of trades.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TradesPage {
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    pub stats: TradeStats,
    /// The round trips' P&L, dollars, binned (the symbol filter applies, the side does not).
    pub pnl_histogram: Histogram,
    pub trades: Vec<TradeRow>,
    pub orders: Vec<OrderOutcome>,
}

/// Filters and paging of the trades.
#[derive(Debug, Clone, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TradeQuery {
    /// Only this symbol.
    pub symbol: Option<String>,
    /// `buy` or `sell`.
    #[param(pattern = r"^\s*(buy|sell)?\s*$")]
    pub side: Option<String>,
    /// From 1 (a page past the last shows the last).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<usize>,
    /// Rows per page, 1 to 500 (50 by default).
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<usize>,
}

fn side_word(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn held(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m")
    }
}

/// The filter of a trades query (the side and symbol checked and normalised), and its page size.
fn trade_filter(q: &TradeQuery) -> Result<(TradeFilter, usize), ApiError> {
    let side = match q.side.as_deref().map(str::trim).unwrap_or("") {
        "" => None,
        "buy" => Some(Side::Buy),
        "sell" => Some(Side::Sell),
        other => {
            return Err(ApiError::field(
                "side",
                format!("side is {other:?}: give buy, sell or leave it empty"),
            ))
        }
    };
    let per_page = q.per_page.unwrap_or(50);
    if !(1..=500).contains(&per_page) {
        return Err(ApiError::field(
            "per_page",
            format!("per_page is {per_page}: give 1 to 500"),
        ));
    }
    let symbol = q
        .symbol
        .as_deref()
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty());
    Ok((TradeFilter { symbol, side }, per_page))
}

/// A trade as the page and the CSV show it.
fn trade_row(t: TradeLine) -> TradeRow {
    TradeRow {
        pnl: t.pnl(),
        held: t
            .open_timestamp
            .map(|b| held((t.timestamp - b).num_seconds()))
            .unwrap_or_default(),
        time: t.timestamp.to_rfc3339(),
        side: side_word(t.side).into(),
        id: t.id,
        symbol: t.symbol,
        shares: t.shares,
        price: t.price,
    }
}

/// A page of the filtered symbols' trades, newest first, with the round trips' statistics (of
/// every side) and the newest 200 orders: each read by one query of the store.
/// The round trips' statistics and P&L histogram of the trades `f` keeps.
async fn round_trips(
    state: &AppState,
    f: &TradeFilter,
) -> Result<(TradeStats, Histogram), ApiError> {
    let rt = state.store.round_trip_stats(f.symbol.as_deref()).await?;
    let stats = TradeStats {
        round_trips: usize::try_from(rt.count).unwrap_or(usize::MAX),
        win_rate_pct: (rt.count > 0).then(|| rt.wins as f64 / rt.count as f64 * 100.0),
        profit_factor: (rt.gross_loss > 0.0).then(|| rt.gross_win / rt.gross_loss),
        realised: rt.realised,
    };
    let mut pnls = Vec::with_capacity(stats.round_trips.min(1 << 20));
    state
        .store
        .for_each_round_trip(f.symbol.as_deref(), |t| {
            if let Some(p) = t.pnl() {
                pnls.push(p);
            }
        })
        .await?;
    Ok((stats, Histogram::of(&pnls)))
}

async fn load_trades(state: &AppState, q: &TradeQuery) -> Result<TradesPage, ApiError> {
    let (filter, per_page) = trade_filter(q)?;
    let total = usize::try_from(state.store.trade_count(&filter).await?).unwrap_or(usize::MAX);
    let pages = total.div_ceil(per_page).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let trades = state
        .store
        .trade_lines(
            &filter,
            per_page as u64,
            ((page - 1) as u64).saturating_mul(per_page as u64),
        )
        .await?
        .into_iter()
        .map(trade_row)
        .collect();
    // The round trips of the symbol filter (a side filter does not apply to them).
    let rt_filter = TradeFilter {
        symbol: filter.symbol.clone(),
        side: None,
    };
    let version = state.store.trade_version(&rt_filter).await?;
    let (stats, pnl_histogram) = state
        .round_trip_cache
        .get_or_make(&rt_filter, version, || round_trips(state, &rt_filter))
        .await?;
    let orders = state
        .store
        .recent_orders(filter.symbol.as_deref(), 200)
        .await?
        .into_iter()
        .map(|o| OrderOutcome {
            client_order_id: o.client_order_id,
            symbol: o.symbol,
            created: o.created_at.to_rfc3339(),
            side: side_word(o.side).into(),
            qty: o.qty,
            filled: o.filled_qty,
            status: o.status,
            error: o.error,
        })
        .collect();
    Ok(TradesPage {
        total,
        page,
        pages,
        stats,
        pnl_histogram,
        trades,
        orders,
    })
}

#[derive(Template)]
#[template(path = "live_trades.html")]
struct TradesTemplate {
    chrome: Chrome,
    live_js: &'static str,
    q_symbol: String,
    q_side: String,
    total: usize,
    page: usize,
    pages: usize,
    stats: TradeStats,
    plotly: &'static str,
    /// The P&L histogram as the page's script reads it.
    pnl_data: String,
    rows: Vec<TradeRow>,
    orders: Vec<OrderOutcome>,
}

/// `GET /live/trades`.
pub async fn trades_page(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    q: Result<Query<TradeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = q.map(|q| q.0).unwrap_or_default();
    let p = load_trades(&state, &q).await?;
    Ok(render(&TradesTemplate {
        chrome: Chrome::new("Trades", "trades", &s),
        live_js: live_js(),
        q_symbol: q.symbol.unwrap_or_default(),
        q_side: q.side.unwrap_or_default(),
        total: p.total,
        page: p.page,
        pages: p.pages,
        stats: p.stats,
        plotly: crate::assets::plotly_url(),
        pnl_data: crate::sweeps::script_json(&p.pnl_histogram),
        rows: p.trades,
        orders: p.orders,
    }))
}

/// Writes `s` as a CSV cell: quoted when it holds a comma, a quote or a line break.
fn csv_cell(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// Values made from the trades a filter keeps (the CSV export, the round trips' summary), for the
/// filters asked lately: a request costs two index reads (the trades' version) instead of a read of
/// every trade, while no trade of the filter is added.
#[derive(Debug)]
pub struct TradeCache<T> {
    /// Newest first. An async lock, held while a missing value is made: the requests that come
    /// meanwhile wait for it instead of each making the same one.
    entries: tokio::sync::Mutex<std::collections::VecDeque<(TradeFilter, TradeVersion, T)>>,
}

impl<T> Default for TradeCache<T> {
    fn default() -> Self {
        TradeCache {
            entries: Default::default(),
        }
    }
}

/// The trades CSV, rendered, per filter.
pub type CsvCache = TradeCache<Bytes>;

/// The round trips' statistics and P&L histogram, per symbol filter.
pub type RoundTripCache = TradeCache<(TradeStats, Histogram)>;

impl<T: Clone> TradeCache<T> {
    /// Filters kept.
    const KEEP: usize = 8;

    /// The value for the trades `f` keeps, made by `make` unless the one kept has the same version.
    async fn get_or_make<Fut>(
        &self,
        f: &TradeFilter,
        version: TradeVersion,
        make: impl FnOnce() -> Fut,
    ) -> Result<T, ApiError>
    where
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let mut e = self.entries.lock().await;
        if let Some((_, _, v)) = e.iter().find(|(k, v, _)| k == f && *v == version) {
            return Ok(v.clone());
        }
        // Read after `version`: it holds at least the trades the version counts, so a request
        // that sees this version later is never given fewer.
        let v = make().await?;
        e.retain(|(k, _, _)| k != f);
        e.push_front((f.clone(), version, v.clone()));
        e.truncate(Self::KEEP);
        Ok(v)
    }
}

/// The CSV of every trade `filter` keeps, newest first, written in one pass over the store's rows.
async fn render_csv(state: &AppState, filter: &TradeFilter) -> Result<Bytes, ApiError> {
    use std::fmt::Write as _;
    let mut out = String::from("time,symbol,side,shares,price,pnl,held,id\n");
    state
        .store
        .for_each_trade_line(filter, |t| {
            let t = trade_row(t);
            // Writing to a String cannot fail.
            let _ = write!(
                out,
                "{},{},{},{},{},",
                t.time, t.symbol, t.side, t.shares, t.price
            );
            if let Some(p) = t.pnl {
                let _ = write!(out, "{p:.2}");
            }
            let _ = write!(out, ",{},", t.held);
            csv_cell(&mut out, &t.id);
            out.push('\n');
        })
        .await?;
    Ok(Bytes::from(out))
}

/// `GET /live/trades.csv`: every trade the filters keep (no paging), newest first; made again only
/// when a trade was added or removed since the last export of the same filters ([`CsvCache`]).
pub async fn trades_csv(
    State(state): State<Arc<AppState>>,
    q: Result<Query<TradeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = q.map(|q| q.0).unwrap_or_default();
    // The export has no pages: a page or page size given is ignored.
    let (filter, _) = trade_filter(&TradeQuery {
        per_page: None,
        ..q
    })?;
    let version = state.store.trade_version(&filter).await?;
    let csv = state
        .csv_cache
        .get_or_make(&filter, version, || render_csv(&state, &filter))
        .await?;
    let mut r = csv.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"trades.csv\""),
    );
    Ok(r)
}

/// The highest page number the API takes (as its document says).
const MAX_PAGE: usize = 1_000_000;

/// Trades (newest first, paged) with round-trip statistics, and the orders with their outcomes.
#[utoipa::path(get, path = "/api/v1/trades", tag = "live", params(TradeQuery),
    responses((status = 200, body = TradesPage), (status = 422, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)))]
pub async fn api_trades(
    State(state): State<Arc<AppState>>,
    q: Result<Query<TradeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TradesPage>, ApiError> {
    let q = q.map_err(|e| ApiError::field("query", e.body_text()))?.0;
    if let Some(p) = q.page.filter(|p| !(1..=MAX_PAGE).contains(p)) {
        return Err(ApiError::field(
            "page",
            format!("page is {p}: give 1 to {MAX_PAGE}"),
        ));
    }
    Ok(Json(load_trades(&state, &q).await?))
}

// ---------------------------------------------------------------- algorithm

/// A symbol's settings as the form and the API send them (numbers as text in the form).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, Default)]
pub struct SettingsInput {
    pub capital_pct: Option<String>,
    pub buy_below_pct: Option<String>,
    pub sell_above_pct: Option<String>,
    pub buy_after_sell_pct: Option<String>,
    pub cash_floor: Option<String>,
    pub order_gap_pct: Option<String>,
    /// Empty: no limit.
    pub max_order_notional: Option<String>,
    pub max_orders_per_day: Option<String>,
    pub max_daily_loss: Option<String>,
    pub max_position_value: Option<String>,
    /// `1`/`true`/`on` when traded (a form's unchecked box sends nothing).
    pub enabled: Option<String>,
}

/// The fields of the form, in order: (name, label).
const FIELDS: [(&str, &str); 10] = [
    (
        "capital_pct",
        "Cash per buy, % of cash (above 0, at most 100)",
    ),
    ("buy_below_pct", "Buy below, % under the last fill"),
    ("sell_above_pct", "Sell above, % over the lot's buy"),
    ("buy_after_sell_pct", "Buy after sell, % over the sell"),
    ("cash_floor", "Cash floor, dollars a buy may not dip into"),
    ("order_gap_pct", "Join gap, % (-1: off)"),
    (
        "max_order_notional",
        "Max order notional, dollars (empty: none)",
    ),
    ("max_orders_per_day", "Max orders per day (empty: none)"),
    (
        "max_daily_loss",
        "Max daily loss, dollars (halts; empty: none)",
    ),
    (
        "max_position_value",
        "Max position value, dollars (empty: none)",
    ),
];

/// A field of the form with its value and its message.
struct FieldView {
    name: &'static str,
    label: &'static str,
    value: String,
    error: Option<String>,
}

struct SymbolForm {
    symbol: String,
    enabled: bool,
    halt_reason: Option<String>,
    /// The state beside the symbol's name ([`state_text`]).
    state_text: String,
    fields: Vec<FieldView>,
    /// The backtest button's look-back, in months.
    months: FieldView,
}

/// A symbol's state as the algorithm page words it: `enabled`, `disabled`, or its halt's reason
/// after `halted: ` (a reason that already says it, as the dashboard's and the operator's
/// `halted from the dashboard by …` / `halted by the operator …` do, is shown as it is).
pub fn state_text(enabled: bool, halt_reason: Option<&str>) -> String {
    match halt_reason {
        Some(r) if r.get(..6).is_some_and(|w| w.eq_ignore_ascii_case("halted")) => r.to_string(),
        Some(r) => format!("halted: {r}"),
        None if enabled => "enabled".into(),
        None => "disabled".into(),
    }
}

/// A symbol's settings as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SymbolSettingsView {
    pub symbol: String,
    pub enabled: bool,
    pub halt_reason: Option<String>,
    pub capital_pct: f64,
    pub buy_below_pct: f64,
    pub sell_above_pct: f64,
    pub buy_after_sell_pct: f64,
    pub cash_floor: f64,
    pub order_gap_pct: f64,
    pub max_order_notional: Option<f64>,
    pub max_orders_per_day: Option<u32>,
    pub max_daily_loss: Option<f64>,
    pub max_position_value: Option<f64>,
}

/// One audited change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditView {
    pub symbol: String,
    pub changed_at: String,
    pub username: String,
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

/// Every symbol's settings and the latest changes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlgoView {
    pub symbols: Vec<SymbolSettingsView>,
    pub audit: Vec<AuditView>,
}

fn opt_text(v: Option<f64>) -> String {
    v.map(|x| num(&x)).unwrap_or_default()
}

fn values_of(v: &SymbolSettingsView) -> [String; 10] {
    [
        num(&v.capital_pct),
        num(&v.buy_below_pct),
        num(&v.sell_above_pct),
        num(&v.buy_after_sell_pct),
        num(&v.cash_floor),
        num(&v.order_gap_pct),
        opt_text(v.max_order_notional),
        v.max_orders_per_day
            .map(|n| n.to_string())
            .unwrap_or_default(),
        opt_text(v.max_daily_loss),
        opt_text(v.max_position_value),
    ]
}

async fn settings(state: &AppState) -> Result<Vec<SymbolSettingsView>, ApiError> {
    let mut out = Vec::new();
    for c in state.store.trade_controls().await? {
        let a = state
            .store
            .algo_config(&c.symbol)
            .await?
            .unwrap_or_else(|| {
                let d = GridParams::default();
                AlgoConfig {
                    capital_pct: d.capital_pct,
                    buy_below_pct: d.buy_below_pct,
                    sell_above_pct: d.sell_above_pct,
                    buy_after_sell_pct: d.buy_after_sell_pct,
                    cash_floor: d.cash_floor,
                    order_gap_pct: d.order_gap_pct,
                }
            });
        out.push(SymbolSettingsView {
            symbol: c.symbol,
            enabled: c.enabled,
            halt_reason: c.halt_reason,
            capital_pct: a.capital_pct,
            buy_below_pct: a.buy_below_pct,
            sell_above_pct: a.sell_above_pct,
            buy_after_sell_pct: a.buy_after_sell_pct,
            cash_floor: a.cash_floor,
            order_gap_pct: a.order_gap_pct,
            max_order_notional: c.limits.max_order_notional,
            max_orders_per_day: c.limits.max_orders_per_day,
            max_daily_loss: c.limits.max_daily_loss,
            max_position_value: c.limits.max_position_value,
        });
    }
    Ok(out)
}

async fn audit(state: &AppState) -> Result<Vec<AuditView>, ApiError> {
    Ok(state
        .store
        .audit_entries(None, 100)
        .await?
        .into_iter()
        .map(|a| AuditView {
            symbol: a.symbol,
            changed_at: a.changed_at.to_rfc3339(),
            username: a.username,
            field: a.field,
            old_value: a.old_value,
            new_value: a.new_value,
        })
        .collect())
}

/// Parses the input: the settings, or every field's message.
fn parse(input: &SettingsInput) -> Result<SymbolSettings, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let raw = [
        &input.capital_pct,
        &input.buy_below_pct,
        &input.sell_above_pct,
        &input.buy_after_sell_pct,
        &input.cash_floor,
        &input.order_gap_pct,
        &input.max_order_notional,
        &input.max_orders_per_day,
        &input.max_daily_loss,
        &input.max_position_value,
    ];
    let mut nums: [Option<f64>; 10] = [None; 10];
    for (i, ((name, _), v)) in FIELDS.iter().zip(raw).enumerate() {
        let text = v.as_deref().unwrap_or("").trim();
        if text.is_empty() {
            if i < 6 {
                errors.push((*name, format!("{name} is empty: give a number")));
            }
            continue;
        }
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => nums[i] = Some(x),
            _ => errors.push((*name, format!("{name} is {text:?}: give a number"))),
        }
    }
    let p = GridParams {
        capital_pct: nums[0].unwrap_or(f64::NAN),
        buy_below_pct: nums[1].unwrap_or(f64::NAN),
        sell_above_pct: nums[2].unwrap_or(f64::NAN),
        buy_after_sell_pct: nums[3].unwrap_or(f64::NAN),
        cash_floor: nums[4].unwrap_or(f64::NAN),
        order_gap_pct: nums[5].unwrap_or(f64::NAN),
    };
    // Each grid field against the grid's own rule (the one the trader and the backtest use).
    for (i, (name, _)) in FIELDS.iter().enumerate().take(6) {
        if errors.iter().any(|(n, _)| n == name) {
            continue;
        }
        let mut probe = GridParams::default();
        let v = nums[i].unwrap_or(f64::NAN);
        match i {
            0 => probe.capital_pct = v,
            1 => probe.buy_below_pct = v,
            2 => probe.sell_above_pct = v,
            3 => probe.buy_after_sell_pct = v,
            4 => probe.cash_floor = v,
            _ => probe.order_gap_pct = v,
        }
        if let Err(e) = probe.validate() {
            errors.push((*name, format!("{name} is {}: {}", num(&v), e.rule)));
        }
    }
    for i in [6, 8, 9] {
        if let Some(v) = nums[i] {
            if v <= 0.0 {
                let name = FIELDS[i].0;
                errors.push((
                    name,
                    format!(
                        "{name} is {}: give a dollar amount above 0, or leave it empty for no limit",
                        num(&v)
                    ),
                ));
            }
        }
    }
    let per_day = match nums[7] {
        Some(v) if v >= 1.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX) => Some(v as u32),
        Some(v) => {
            errors.push((
                "max_orders_per_day",
                format!(
                    "max_orders_per_day is {}: give a whole number of 1 or more, or leave it empty",
                    num(&v)
                ),
            ));
            None
        }
        None => None,
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let enabled = matches!(
        input.enabled.as_deref().map(str::trim),
        Some("1" | "true" | "on" | "yes")
    );
    Ok(SymbolSettings {
        algo: AlgoConfig {
            capital_pct: p.capital_pct,
            buy_below_pct: p.buy_below_pct,
            sell_above_pct: p.sell_above_pct,
            buy_after_sell_pct: p.buy_after_sell_pct,
            cash_floor: p.cash_floor,
            order_gap_pct: p.order_gap_pct,
        },
        enabled,
        limits: RiskLimits {
            max_order_notional: nums[6],
            max_orders_per_day: per_day,
            max_daily_loss: nums[8],
            max_position_value: nums[9],
        },
    })
}

fn now_utc() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(crate::now_ms()).unwrap_or_default()
}

/// Saves new settings with one audit row per changed field; the names of the changed fields.
async fn save(
    state: &AppState,
    user: &str,
    symbol: &str,
    input: &SettingsInput,
) -> Result<Vec<String>, Result<Vec<(&'static str, String)>, ApiError>> {
    let sym = symbol.trim().to_ascii_uppercase();
    let current = settings(state)
        .await
        .map_err(Err)?
        .into_iter()
        .find(|s| s.symbol == sym)
        .ok_or_else(|| {
            Err(ApiError::not_found(format!(
                "no trading controls for {sym}: only symbols the trader knows can be configured here"
            )))
        })?;
    let new = parse(input).map_err(Ok)?;
    let new_view = SymbolSettingsView {
        symbol: sym.clone(),
        enabled: new.enabled,
        halt_reason: current.halt_reason.clone(),
        capital_pct: new.algo.capital_pct,
        buy_below_pct: new.algo.buy_below_pct,
        sell_above_pct: new.algo.sell_above_pct,
        buy_after_sell_pct: new.algo.buy_after_sell_pct,
        cash_floor: new.algo.cash_floor,
        order_gap_pct: new.algo.order_gap_pct,
        max_order_notional: new.limits.max_order_notional,
        max_orders_per_day: new.limits.max_orders_per_day,
        max_daily_loss: new.limits.max_daily_loss,
        max_position_value: new.limits.max_position_value,
    };
    let at = now_utc();
    let mut changes = Vec::new();
    let (old_v, new_v) = (values_of(&current), values_of(&new_view));
    for (i, (name, _)) in FIELDS.iter().enumerate() {
        if old_v[i] != new_v[i] {
            changes.push(AuditEntry {
                symbol: sym.clone(),
                changed_at: at,
                username: user.to_string(),
                field: name.to_string(),
                old_value: Some(old_v[i].clone()).filter(|s| !s.is_empty()),
                new_value: Some(new_v[i].clone()).filter(|s| !s.is_empty()),
            });
        }
    }
    if current.enabled != new.enabled {
        changes.push(AuditEntry {
            symbol: sym.clone(),
            changed_at: at,
            username: user.to_string(),
            field: "enabled".into(),
            old_value: Some(current.enabled.to_string()),
            new_value: Some(new.enabled.to_string()),
        });
    }
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    state
        .store
        .save_symbol_settings(&sym, &new, &changes, &random_token()[..12])
        .await
        .map_err(|e| Err(ApiError::store(e)))?;
    tracing::info!(symbol = %sym, user, fields = changes.len(), "settings changed");
    Ok(changes.into_iter().map(|c| c.field).collect())
}

#[derive(Template)]
#[template(path = "live_algo.html")]
struct AlgoPage {
    chrome: Chrome,
    live_js: &'static str,
    saved: Option<String>,
    forms: Vec<SymbolForm>,
    audit: Vec<AuditView>,
}

/// A refused save or backtest: the symbol, what was sent (the months typed, for a backtest), each
/// field's message.
type Failed<'a> = (
    &'a str,
    &'a SettingsInput,
    Option<&'a str>,
    Vec<(&'static str, String)>,
);

async fn algo_render(
    state: &AppState,
    s: &CurrentSession,
    saved: Option<String>,
    failed: Option<Failed<'_>>,
) -> Result<Response, ApiError> {
    let forms = settings(state)
        .await?
        .into_iter()
        .map(|v| {
            let values = values_of(&v);
            let mine = failed.as_ref().filter(|(sym, ..)| *sym == v.symbol);
            let fields = FIELDS
                .iter()
                .enumerate()
                .map(|(i, (name, label))| {
                    let (value, error) = match mine {
                        Some((_, input, _, errors)) => {
                            let raw = [
                                &input.capital_pct,
                                &input.buy_below_pct,
                                &input.sell_above_pct,
                                &input.buy_after_sell_pct,
                                &input.cash_floor,
                                &input.order_gap_pct,
                                &input.max_order_notional,
                                &input.max_orders_per_day,
                                &input.max_daily_loss,
                                &input.max_position_value,
                            ];
                            (
                                raw[i].clone().unwrap_or_default(),
                                errors
                                    .iter()
                                    .find(|(n, _)| n == name)
                                    .map(|(_, m)| m.clone()),
                            )
                        }
                        None => (values[i].clone(), None),
                    };
                    FieldView {
                        name,
                        label,
                        value,
                        error,
                    }
                })
                .collect();
            let months = match mine {
                Some((_, _, typed, errors)) => FieldView {
                    name: "months",
                    label: "months",
                    value: typed.unwrap_or_default().to_string(),
                    error: errors
                        .iter()
                        .find(|(n, _)| *n == "months")
                        .map(|(_, m)| m.clone()),
                },
                None => FieldView {
                    name: "months",
                    label: "months",
                    value: BACKTEST_MONTHS.to_string(),
                    error: None,
                },
            };
            SymbolForm {
                months,
                state_text: state_text(v.enabled, v.halt_reason.as_deref()),
                symbol: v.symbol,
                enabled: v.enabled,
                halt_reason: v.halt_reason,
                fields,
            }
        })
        .collect();
    let page = AlgoPage {
        chrome: Chrome::new("Algorithm", "algo", s),
        live_js: live_js(),
        saved,
        forms,
        audit: audit(state).await?,
    };
    let mut r = render(&page);
    if failed.is_some() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(r)
}

/// `?saved=` after a save.
#[derive(Debug, Deserialize, Default)]
pub struct SavedQuery {
    pub saved: Option<String>,
}

/// `GET /live/algo`.
pub async fn algo_page(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    q: Result<Query<SavedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let saved = q.ok().and_then(|q| q.0.saved).map(|m| {
        // Only our own short messages come back through the address.
        m.chars().take(200).collect::<String>()
    });
    algo_render(&state, &s, saved, None).await
}

/// `POST /live/algo/{symbol}`: saves, or shows the form again with each message next to its field.
pub async fn algo_save_form(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    Path(symbol): Path<String>,
    form: Result<Form<SettingsInput>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let input = form.map_err(|e| ApiError::field("body", e.body_text()))?.0;
    let sym = symbol.trim().to_ascii_uppercase();
    match save(&state, &s.username, &sym, &input).await {
        Ok(changed) => {
            let msg = if changed.is_empty() {
                format!("{sym}: nothing changed")
            } else {
                format!(
                    "{sym}: saved {}; the trader uses it from the next bar",
                    changed.join(", ")
                )
            };
            Ok(Redirect::to(&format!(
                "/live/algo?saved={}",
                crate::pages::url_encode(&msg)
            ))
            .into_response())
        }
        Err(Ok(errors)) => algo_render(&state, &s, None, Some((&sym, &input, None, errors))).await,
        Err(Err(e)) => Err(e),
    }
}

/// Months the backtest button looks back by default.
pub const BACKTEST_MONTHS: u32 = 3;

/// The backtest button's form: the grid settings as typed (saved or not) and the look-back.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct BacktestSettingsForm {
    #[serde(flatten)]
    pub settings: SettingsInput,
    /// Whole months back from the last day with bars (1 to 120; empty: [`BACKTEST_MONTHS`]).
    pub months: Option<String>,
}

fn months_of(text: Option<&str>) -> Result<u32, String> {
    let t = text.unwrap_or("").trim();
    if t.is_empty() {
        return Ok(BACKTEST_MONTHS);
    }
    match t.parse::<u32>() {
        Ok(n) if (1..=120).contains(&n) => Ok(n),
        _ => Err(format!(
            "months is {:?}: give a whole number of months from 1 to 120",
            t.chars().take(20).collect::<String>()
        )),
    }
}

/// The first and last day of the bundled bars (read once).
fn bundled_days() -> Option<(chrono::NaiveDate, chrono::NaiveDate)> {
    static DAYS: std::sync::OnceLock<Option<(chrono::NaiveDate, chrono::NaiveDate)>> =
        std::sync::OnceLock::new();
    *DAYS.get_or_init(|| {
        let bars = crate::demo::bundled_bars().ok()?;
        let (first, last) = (bars.ts.first()?, bars.ts.last()?);
        Some((
            vectura_core::calendar::ny_date(*first),
            vectura_core::calendar::ny_date(*last),
        ))
    })
}

/// The backtest of `algo` on `sym`'s last `months` months of bars, as the trader would trade them:
/// fills at the next bar's open, the regular session, no deposits, the live account's equity (or
/// the form's default capital without a trader in this process) to start with. The stored bars
/// are used, or the bundled ones for their symbol when none are stored.
async fn settings_backtest(
    state: &AppState,
    sym: &str,
    algo: &AlgoConfig,
    months: u32,
) -> Result<BacktestInput, Result<Vec<(&'static str, String)>, ApiError>> {
    let stored = state
        .store
        .range(sym)
        .await
        .map_err(|e| Err(ApiError::store(e)))?
        .and_then(|r| Some((r.have_from?, r.have_to?)));
    let (source, (first, last)) = match stored {
        Some(days) => ("store", days),
        None => match bundled_days().filter(|_| sym == crate::demo::SYMBOL) {
            Some(days) => ("bundled", days),
            None => {
                return Err(Ok(vec![(
                    "months",
                    format!("{sym} has no stored bars to backtest on: fetch them on the data page (/data) first"),
                )]))
            }
        },
    };
    let start = last
        .checked_sub_months(chrono::Months::new(months))
        .and_then(|d| d.succ_opt())
        .unwrap_or(first)
        .max(first);
    let equity = state
        .live
        .get()
        .map(|f| f.equity())
        .and_then(|e| e.last().map(|p| p.1));
    let mut name = format!("{sym} live settings, last {months} months");
    name.truncate(50);
    Ok(BacktestInput {
        name: Some(name),
        source: Some(source.into()),
        symbol: Some(sym.to_string()),
        start_date: Some(start.to_string()),
        end_date: Some(last.to_string()),
        start_capital: equity
            .filter(|e| e.is_finite() && *e > 0.0)
            .map(|e| e.round()),
        cash_floor: Some(algo.cash_floor),
        contribution_frequency_days: Some(0.0),
        contribution_amount: Some(0.0),
        capital_pct: Some(algo.capital_pct),
        buy_below_pct: Some(algo.buy_below_pct),
        sell_above_pct: Some(algo.sell_above_pct),
        buy_after_sell_pct: Some(algo.buy_after_sell_pct),
        order_gap_enabled: Some(algo.order_gap_pct >= 0.0),
        order_gap_pct: Some(algo.order_gap_pct).filter(|g| *g >= 0.0),
        fill: Some("next-open".into()),
        session: Some("regular".into()),
        strategy: Some("grid".into()),
        ..BacktestInput::default()
    })
}

/// `POST /live/algo/{symbol}/backtest`: the form's settings as typed (checked as a save checks
/// them, not saved) backtested over the last months; the backtest's page, or the form again with
/// each message next to its field.
pub async fn algo_backtest_form(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    Path(symbol): Path<String>,
    form: Result<Form<BacktestSettingsForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let form = form.map_err(|e| ApiError::field("body", e.body_text()))?.0;
    let sym = symbol.trim().to_ascii_uppercase();
    if !settings(&state).await?.iter().any(|v| v.symbol == sym) {
        return Err(ApiError::not_found(format!(
            "no trading controls for {sym}: only symbols the trader knows can be backtested here"
        )));
    }
    let months = months_of(form.months.as_deref());
    let parsed = parse(&form.settings);
    let (st, session) = (&*state, &s);
    let refused = |errors| {
        let typed = form.months.as_deref();
        let input = &form.settings;
        let sym = sym.as_str();
        async move { algo_render(st, session, None, Some((sym, input, typed, errors))).await }
    };
    let (settings, months) = match (parsed, months) {
        (Ok(p), Ok(m)) => (p, m),
        (p, m) => {
            let mut errors = p.err().unwrap_or_default();
            if let Err(e) = m {
                errors.push(("months", e));
            }
            return refused(errors).await;
        }
    };
    let input = match settings_backtest(&state, &sym, &settings.algo, months).await {
        Ok(i) => i,
        Err(Ok(errors)) => return refused(errors).await,
        Err(Err(e)) => return Err(e),
    };
    let request = match input.to_request() {
        Ok(r) => r,
        // The backtest's own fields are not on this form: their messages go to the look-back.
        Err(errors) => {
            let errors = errors
                .into_iter()
                .map(|(f, m)| ("months", format!("the backtest's {f}: {m}")))
                .collect();
            return refused(errors).await;
        }
    };
    let id = crate::jobs::start_backtest(
        &state,
        &input.name(),
        &serde_json::to_value(&input).unwrap_or(serde_json::Value::Null),
        request,
    )
    .await?;
    tracing::info!(symbol = %sym, user = %s.username, job = %id, months, "settings backtested");
    Ok(Redirect::to(&format!("/backtests/{id}")).into_response())
}

/// A confirmed halt or resume.
#[derive(Debug, Deserialize, Default, ToSchema)]
pub struct ConfirmForm {
    /// Must be `yes`: the kill switch asks first.
    #[serde(default)]
    #[schema(pattern = "^yes$", required = true)]
    pub confirm: String,
    /// Why (shown with the halt).
    #[serde(default)]
    pub reason: Option<String>,
}

async fn halt(
    state: &AppState,
    user: &str,
    symbol: &str,
    f: &ConfirmForm,
) -> Result<String, ApiError> {
    if f.confirm != "yes" {
        return Err(ApiError::field(
            "confirm",
            "a halt needs confirm=yes: it cancels the symbol's open orders and stops its trading",
        ));
    }
    let sym = symbol.trim().to_ascii_uppercase();
    if state.store.trade_control(&sym).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "no trading controls for {sym}"
        )));
    }
    let at = now_utc();
    // The halt takes effect on the trader's clock (the replay's, under the demo): parity refuses
    // the model's trades from there on.
    let effective = state
        .live
        .get()
        .map(|f| f.latest().overview.as_of)
        .filter(|&t| t > 0)
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .unwrap_or(at);
    let reason = format!(
        "halted from the dashboard by {user}{}: resume it on the algorithm page or with `vectura trade resume --symbol {sym}`",
        f.reason.as_deref().map(|r| format!(" ({})", r.chars().take(200).collect::<String>())).unwrap_or_default()
    );
    state.store.halt_symbol(&sym, &reason, effective).await?;
    state
        .store
        .record_audit(
            &AuditEntry {
                symbol: sym.clone(),
                changed_at: at,
                username: user.to_string(),
                field: "halt".into(),
                old_value: None,
                new_value: Some(reason),
            },
            &random_token()[..12],
        )
        .await?;
    tracing::warn!(symbol = %sym, user, "halted from the dashboard");
    Ok(format!(
        "{sym} halted: its open orders are cancelled at the next step"
    ))
}

async fn resume(
    state: &AppState,
    user: &str,
    symbol: &str,
    f: &ConfirmForm,
) -> Result<String, ApiError> {
    if f.confirm != "yes" {
        return Err(ApiError::field("confirm", "a resume needs confirm=yes"));
    }
    let sym = symbol.trim().to_ascii_uppercase();
    let old = state
        .store
        .trade_control(&sym)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no trading controls for {sym}")))?
        .halt_reason;
    if !state.store.resume_symbol(&sym).await? {
        return Ok(format!("{sym} was not halted"));
    }
    state
        .store
        .record_audit(
            &AuditEntry {
                symbol: sym.clone(),
                changed_at: now_utc(),
                username: user.to_string(),
                field: "halt".into(),
                old_value: old,
                new_value: None,
            },
            &random_token()[..12],
        )
        .await?;
    Ok(format!("{sym} resumed: it trades from the next bar"))
}

/// `POST /live/algo/{symbol}/halt`.
pub async fn halt_form(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    Path(symbol): Path<String>,
    form: Result<Form<ConfirmForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let f = form.map(|f| f.0).unwrap_or_default();
    let msg = halt(&state, &s.username, &symbol, &f).await?;
    Ok(Redirect::to(&format!(
        "/live/algo?saved={}",
        crate::pages::url_encode(&msg)
    ))
    .into_response())
}

/// `POST /live/algo/{symbol}/resume`.
pub async fn resume_form(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    Path(symbol): Path<String>,
    form: Result<Form<ConfirmForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let f = form.map(|f| f.0).unwrap_or_default();
    let msg = resume(&state, &s.username, &symbol, &f).await?;
    Ok(Redirect::to(&format!(
        "/live/algo?saved={}",
        crate::pages::url_encode(&msg)
    ))
    .into_response())
}

/// Every symbol's grid, enabled flag, risk limits and halt, and the latest 100 changes.
#[utoipa::path(get, path = "/api/v1/algo", tag = "live",
    responses((status = 200, body = AlgoView), (status = 401, body = crate::error::ErrorBody)))]
pub async fn api_algo(State(state): State<Arc<AppState>>) -> Result<Json<AlgoView>, ApiError> {
    Ok(Json(AlgoView {
        symbols: settings(&state).await?,
        audit: audit(&state).await?,
    }))
}

/// The fields a save changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Saved {
    pub changed: Vec<String>,
}

/// Saves a symbol's settings (numbers as strings or numbers); 422 names the first bad field.
#[utoipa::path(post, path = "/api/v1/algo/{symbol}", tag = "live", request_body = SettingsInput,
    params(("symbol" = String, Path, description = "A ticker with trading controls, e.g. SPY")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, body = Saved), (status = 422, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn api_algo_save(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    Path(symbol): Path<String>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Saved>, ApiError> {
    let v = body.map_err(crate::backtests::json_rejection)?.0;
    if !v.is_object() {
        return Err(ApiError::field(
            "body",
            "the body is JSON but not an object: send {\"capital_pct\": 30, …}",
        ));
    }
    // Numbers may come as JSON numbers or strings; booleans for `enabled`.
    let text = |k: &str| match v.get(k) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    };
    let input = SettingsInput {
        capital_pct: text("capital_pct"),
        buy_below_pct: text("buy_below_pct"),
        sell_above_pct: text("sell_above_pct"),
        buy_after_sell_pct: text("buy_after_sell_pct"),
        cash_floor: text("cash_floor"),
        order_gap_pct: text("order_gap_pct"),
        max_order_notional: text("max_order_notional"),
        max_orders_per_day: text("max_orders_per_day"),
        max_daily_loss: text("max_daily_loss"),
        max_position_value: text("max_position_value"),
        enabled: text("enabled"),
    };
    match save(&state, &s.username, &symbol, &input).await {
        Ok(changed) => Ok(Json(Saved { changed })),
        Err(Ok(errors)) => {
            let (f, m) = errors
                .into_iter()
                .next()
                .unwrap_or(("body", "invalid".into()));
            Err(ApiError::field(f, m))
        }
        Err(Err(e)) => Err(e),
    }
}

/// What a halt or resume did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    pub message: String,
}

/// The kill switch: halts the symbol (its open orders are cancelled at the trader's next step).
#[utoipa::path(post, path = "/api/v1/algo/{symbol}/halt", tag = "live", request_body = ConfirmForm,
    params(("symbol" = String, Path, description = "A ticker with trading controls, e.g. SPY")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, body = Done), (status = 422, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn api_halt(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    Path(symbol): Path<String>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Done>, ApiError> {
    let f: ConfirmForm = crate::backtests::json_object(body)?;
    Ok(Json(Done {
        message: halt(&state, &s.username, &symbol, &f).await?,
    }))
}

/// Lifts a symbol's halt.
#[utoipa::path(post, path = "/api/v1/algo/{symbol}/resume", tag = "live", request_body = ConfirmForm,
    params(("symbol" = String, Path, description = "A ticker with trading controls, e.g. SPY")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, body = Done), (status = 422, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn api_resume(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    Path(symbol): Path<String>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Done>, ApiError> {
    let f: ConfirmForm = crate::backtests::json_object(body)?;
    Ok(Json(Done {
        message: resume(&state, &s.username, &symbol, &f).await?,
    }))
}

#[cfg(test)]
mod tests {
    use super::state_text;

    #[test]
    fn a_halt_reads_halted_once() {
        assert_eq!(
            state_text(true, Some("halted from the dashboard by admin: resume it")),
            "halted from the dashboard by admin: resume it"
        );
        assert_eq!(
            state_text(false, Some("Halted by the operator")),
            "Halted by the operator"
        );
        assert_eq!(
            state_text(true, Some("the broker's position differs")),
            "halted: the broker's position differs"
        );
        assert_eq!(state_text(true, Some("halt")), "halted: halt");
        assert_eq!(state_text(true, None), "enabled");
        assert_eq!(state_text(false, None), "disabled");
    }
}
