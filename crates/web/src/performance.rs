//! The live account's performance (`/live/performance`, `GET /api/v1/performance`): its equity and
//! drawdown curves (plotly, drawn by the live pages' script) and the backtest engine's metrics
//! ([`vectura_backtest::metrics`]) computed on the live equity, bar by bar, as a backtest computes
//! them on its own: the same tracker, the same formulas.

use std::convert::Infallible;
use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;
use vectura_backtest::metrics::{Metrics, RunTotals, Tracker, TradeStats};
use vectura_core::time::DAY;
use vectura_store::TradeFilter;

use crate::auth::CurrentSession;
use crate::error::ApiError;
use crate::live::LiveFeed;
use crate::pages::{render, Chrome};
use crate::server::AppState;

/// Points drawn at most per curve (the metrics read every bar).
pub const MAX_POINTS: usize = 2000;

/// The curves as drawn: times (RFC 3339), equity (dollars) and drawdown from the running peak
/// (percent, 0 or below).
#[derive(Debug, Clone, Serialize, ToSchema, Default)]
pub struct Curves {
    pub time: Vec<String>,
    pub equity: Vec<f64>,
    pub drawdown_pct: Vec<f64>,
}

/// The live account's performance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Performance {
    /// Whether a trader runs in this process (false: no curve, no metrics).
    pub live: bool,
    /// The account's starting cash.
    pub start_cash: Option<f64>,
    /// Bars of equity recorded (the curves keep at most [`MAX_POINTS`] of them, the last included).
    pub bars: usize,
    /// The backtest engine's metrics on the live equity (absent before the first bar). The
    /// buy-and-hold fields have no benchmark here: null.
    #[schema(value_type = Option<Object>)]
    pub metrics: Option<Metrics>,
    pub curves: Curves,
    /// Each traded symbol's active run against the backtest, session by session, newest first.
    pub parity: Vec<ParityDay>,
}

/// Sessions per symbol the page lists (the API gives them all).
pub const PARITY_DAYS_SHOWN: usize = 30;

/// One session of a symbol's live run against the backtest engine on the same bars (the trader's
/// parity report): the slippage of each fill against the model's price and every trade one side
/// made and the other did not.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParityDay {
    pub symbol: String,
    /// The session's New York date, YYYY-MM-DD.
    pub date: String,
    /// Trades the model made (absent without a report).
    pub model_trades: Option<usize>,
    /// Orders of the run that filled.
    pub live_fills: Option<usize>,
    /// Mean slippage of the fills against the model's price, basis points (positive: against us).
    pub mean_slippage_bps: Option<f64>,
    /// The largest slippage against us among the fills, basis points.
    pub worst_slippage_bps: Option<f64>,
    /// Each difference in words, New York time.
    pub differences: Vec<String>,
    /// Why the session has no report (its bars are not stored, or the report failed).
    pub missing: Option<String>,
}

fn verb(side: vectura_core::Side) -> &'static str {
    match side {
        vectura_core::Side::Buy => "bought",
        vectura_core::Side::Sell => "sold",
    }
}

/// A difference as the page words it.
fn difference_text(d: &vectura_trader::parity::Difference) -> String {
    use vectura_trader::parity::Difference as D;
    let n = |x: &f64| crate::live_pages::num(x);
    match d {
        D::ModelOnly {
            time,
            side,
            shares,
            price,
            why,
        } => format!(
            "{}: the model {} {} @ {}; live did not ({why})",
            crate::ny_time::clock(*time),
            verb(*side),
            n(shares),
            n(price)
        ),
        D::LiveOnly {
            time,
            side,
            shares,
            price,
            client_order_id,
        } => format!(
            "{}: live {} {} @ {} ({client_order_id}); the model did not",
            crate::ny_time::clock(*time),
            verb(*side),
            n(shares),
            n(price)
        ),
        D::Shares {
            time,
            side,
            model_shares,
            live_shares,
            client_order_id,
        } => format!(
            "{}: both {}, the model {} shares, live {} ({client_order_id})",
            crate::ny_time::clock(*time),
            verb(*side),
            n(model_shares),
            n(live_shares)
        ),
    }
}

/// The parity of every traded symbol's active run, newest session first per symbol. A symbol
/// whose report fails gets one row saying why (the page still shows the rest).
async fn parity(state: &AppState) -> Result<Vec<ParityDay>, ApiError> {
    let mut out = Vec::new();
    for c in state.store.trade_controls().await? {
        let days = match vectura_trader::parity::by_day(&state.store, &c.symbol).await {
            Ok(d) => d,
            Err(e) => {
                out.push(ParityDay {
                    symbol: c.symbol.clone(),
                    date: String::new(),
                    model_trades: None,
                    live_fills: None,
                    mean_slippage_bps: None,
                    worst_slippage_bps: None,
                    differences: Vec::new(),
                    missing: Some(format!("no parity report: {e}")),
                });
                continue;
            }
        };
        for d in days.into_iter().rev() {
            let r = d.report.as_ref();
            out.push(ParityDay {
                symbol: c.symbol.clone(),
                date: d.date.to_string(),
                model_trades: r.map(|r| r.model_trades),
                live_fills: r.map(|r| r.live_fills),
                mean_slippage_bps: r
                    .filter(|r| !r.fills.is_empty())
                    .map(|r| r.mean_slippage_bps),
                worst_slippage_bps: r.and_then(|r| {
                    r.fills
                        .iter()
                        .map(|f| f.slippage_bps)
                        .filter(|x| x.is_finite())
                        .reduce(f64::max)
                }),
                differences: r
                    .map(|r| r.differences.iter().map(difference_text).collect())
                    .unwrap_or_default(),
                missing: d.missing,
            });
        }
    }
    Ok(out)
}

/// Closed lots of every symbol, as the engine counts them: a sell against the buy of its lot (read
/// by one pass over the closing trades, in each symbol's order), and the trades made.
async fn trade_stats(state: &AppState) -> Result<(TradeStats, u64), ApiError> {
    let mut s = TradeStats::default();
    state
        .store
        .for_each_round_trip(None, |t| {
            let (Some(pnl), Some(opened)) = (t.pnl(), t.open_timestamp) else {
                return;
            };
            s.closed += 1;
            if pnl > 0.0 {
                s.wins += 1;
                s.gross_profit += pnl;
            } else {
                s.gross_loss -= pnl;
            }
            s.holding_secs += (t.timestamp - opened).num_seconds() as f64;
        })
        .await?;
    let trades = state.store.trade_count(&TradeFilter::default()).await?;
    Ok((s, trades))
}

/// The engine's metrics on an equity curve (`(bar end, equity)`, oldest first) with the cash held at
/// each bar (`cash_at`), starting from `start` dollars with no deposit.
pub fn metrics_of(
    equity: &[(i64, f64)],
    cash_at: impl Fn(i64) -> f64,
    start: f64,
    stats: &TradeStats,
    trades: u64,
) -> Option<Metrics> {
    let (first, last) = (equity.first()?, equity.last()?);
    let (first_day, last_day) = (first.0.div_euclid(DAY), last.0.div_euclid(DAY));
    let mut t = Tracker::new(start, first_day, false);
    for &(ts, eq) in equity {
        t.push(ts, eq, cash_at(ts));
    }
    let totals = RunTotals {
        start_capital: start,
        final_equity: last.1,
        invested: start,
        trades,
        inclusive_days: last_day - first_day + 1,
        end_midnight: last_day * DAY,
        span_days: (last.0 - first.0) as f64 / DAY as f64,
        buy_hold_final: f64::NAN,
    };
    Some(t.finish(&totals, stats))
}

/// The curves of `equity`, at most [`MAX_POINTS`] evenly spaced points (the last one kept).
pub fn curves_of(equity: &[(i64, f64)], start: f64) -> Curves {
    let mut peak = start;
    let dd: Vec<f64> = equity
        .iter()
        .map(|&(_, e)| drawdown_pct(&mut peak, e))
        .collect();
    let step = equity.len().div_ceil(MAX_POINTS).max(1);
    let mut c = Curves::default();
    for (i, &(ts, e)) in equity.iter().enumerate() {
        if i % step == 0 || i + 1 == equity.len() {
            c.time.push(vectura_core::time::rfc3339(ts));
            c.equity.push(e);
            c.drawdown_pct.push(dd[i]);
        }
    }
    c
}

/// The drawdown of `e` from the running `peak` in percent, with the peak moved up to `e` first.
fn drawdown_pct(peak: &mut f64, e: f64) -> f64 {
    *peak = peak.max(e);
    if *peak > 0.0 {
        (e / *peak - 1.0) * 100.0
    } else {
        0.0
    }
}

async fn load(state: &AppState) -> Result<Performance, ApiError> {
    let Some(feed) = state.live.get() else {
        return Ok(Performance {
            live: false,
            start_cash: None,
            bars: 0,
            metrics: None,
            curves: Curves::default(),
            parity: parity(state).await?,
        });
    };
    let equity = feed.equity();
    let start = feed.start_cash();
    Ok(Performance {
        live: true,
        start_cash: Some(start),
        bars: equity.len(),
        metrics: live_metrics(state, feed, &equity).await?,
        curves: curves_of(&equity, start),
        parity: parity(state).await?,
    })
}

/// The engine's metrics on the feed's `equity` (absent before the first bar), with its cash and
/// the stored trades.
async fn live_metrics(
    state: &AppState,
    feed: &LiveFeed,
    equity: &[(i64, f64)],
) -> Result<Option<Metrics>, ApiError> {
    let cash = feed.cash_points();
    let start = feed.start_cash();
    let (stats, trades) = trade_stats(state).await?;
    // Cash changes only on a fill, and a step with a fill publishes: the last cash seen at or
    // before a bar is the bar's (the start cash before the first).
    let cash_at = |ts: i64| match cash.partition_point(|&(t, _)| t <= ts) {
        0 => start,
        i => cash[i - 1].1,
    };
    Ok(metrics_of(equity, cash_at, start, &stats, trades))
}

/// What a connection of the performance stream has drawn so far, to send it only the new points.
#[derive(Debug, Clone, Copy, Default)]
struct Drawn {
    /// Whether an event was sent (before it, the next one sends the curves whole).
    sent: bool,
    /// Bars of the curve sent.
    bars: usize,
    /// The first and the last of them, to tell a curve that grew from one started anew.
    first: Option<(i64, f64)>,
    last: Option<(i64, f64)>,
    /// Points the client's charts hold.
    points: usize,
    /// The running peak of the equity sent (for the new points' drawdown).
    peak: f64,
}

/// An update of the performance page: the metrics as the page lists them and the curve's new
/// points (or, with `reset`, the curves whole, as the page draws them first).
#[derive(Debug, Clone, Serialize)]
pub struct PerformanceUpdate {
    /// Bars of equity recorded.
    pub bars: usize,
    /// The curves replace what is drawn (a first event, a curve started anew, or too many points
    /// drawn); otherwise they are appended to it.
    pub reset: bool,
    pub curves: Curves,
    /// Each metric's id, label and value, as the page shows it (none before the first bar).
    pub metrics: Vec<MetricText>,
}

/// A metric as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct MetricText {
    /// The metric's field in [`Metrics`] (the page's cell is `m-{id}`).
    pub id: &'static str,
    pub label: &'static str,
    /// Formatted as the page prints it (`–` when it has no value).
    pub value: String,
}

/// The update a connection that drew `d` is sent: `None` when no bar was added since.
async fn update(
    state: &AppState,
    feed: &LiveFeed,
    d: Drawn,
) -> Result<Option<(PerformanceUpdate, Drawn)>, ApiError> {
    let equity = feed.equity();
    let start = feed.start_cash();
    let grew = d.sent
        && equity.len() >= d.bars
        && (d.bars == 0
            || (equity.first().copied() == d.first && equity.get(d.bars - 1).copied() == d.last));
    if grew && equity.len() == d.bars {
        return Ok(None);
    }
    let new = if grew { &equity[d.bars..] } else { &equity[..] };
    // A chart of more points than the page first draws is thinned by starting it over.
    let reset = !grew || d.points + new.len() > 2 * MAX_POINTS;
    let (curves, points, peak) = if reset {
        let c = curves_of(&equity, start);
        let n = c.time.len();
        (c, n, equity.iter().fold(start, |p, &(_, e)| p.max(e)))
    } else {
        // The drawdown from the running peak, continued from the points drawn (as curves_of).
        let mut c = Curves::default();
        let mut peak = d.peak;
        for &(ts, e) in new {
            c.time.push(vectura_core::time::rfc3339(ts));
            c.equity.push(e);
            c.drawdown_pct.push(drawdown_pct(&mut peak, e));
        }
        (c, d.points + new.len(), peak)
    };
    let metrics = live_metrics(state, feed, &equity)
        .await?
        .as_ref()
        .map(rows)
        .unwrap_or_default();
    let drawn = Drawn {
        sent: true,
        bars: equity.len(),
        first: equity.first().copied(),
        last: equity.last().copied(),
        points,
        peak,
    };
    Ok(Some((
        PerformanceUpdate {
            bars: equity.len(),
            reset,
            curves,
            metrics,
        },
        drawn,
    )))
}

/// The performance page's updates as server-sent events `performance`, each a PerformanceUpdate:
/// the first (at once) with the curves whole, then after each bar the new points and the metrics.
/// Without a trader in this process the stream sends nothing.
#[utoipa::path(get, path = "/api/v1/performance/events", tag = "live",
    responses((status = 200, description = "text/event-stream of `performance` events, each a PerformanceUpdate"), (status = 401, body = crate::error::ErrorBody)))]
pub async fn api_performance_events(
    State(state): State<Arc<AppState>>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let to_event = |u: &PerformanceUpdate| {
        Event::default()
            .event("performance")
            .data(serde_json::to_string(u).unwrap_or_default())
    };
    let mut drawn = Drawn::default();
    let mut head = Vec::new();
    if let Some(feed) = state.live.get() {
        if let Some((u, d)) = update(&state, feed, drawn).await? {
            head.push(Ok(to_event(&u)));
            drawn = d;
        }
    }
    let st = state.clone();
    let tail = crate::live::follow(&state, drawn, move |d, _| {
        let st = st.clone();
        async move {
            let Some(feed) = st.live.get() else {
                return (None, d);
            };
            match update(&st, feed, d).await {
                Ok(Some((u, next))) => (Some(to_event(&u)), next),
                Ok(None) => (None, d),
                Err(e) => {
                    // A failed read skips this update; the next bar tries again.
                    tracing::warn!(error = %e, "performance update");
                    (None, d)
                }
            }
        }
    });
    use futures_util::StreamExt;
    Ok(Sse::new(futures_util::stream::iter(head).chain(tail)).keep_alive(KeepAlive::default()))
}

/// The live account's equity and drawdown curves and the backtest metrics on its equity.
#[utoipa::path(get, path = "/api/v1/performance", tag = "live",
    responses((status = 200, body = Performance), (status = 401, body = crate::error::ErrorBody)))]
pub async fn api_performance(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Performance>, ApiError> {
    Ok(Json(load(&state).await?))
}

#[derive(Template)]
#[template(path = "live_performance.html")]
struct PerformancePage {
    chrome: Chrome,
    live_js: &'static str,
    plotly: &'static str,
    live: bool,
    bars: usize,
    rows: Vec<MetricText>,
    data: String,
    parity: Vec<ParityDay>,
}

impl PerformancePage {
    /// Basis points as the parity table prints them.
    fn bps(&self, v: &Option<f64>) -> String {
        opt(*v, "")
    }
}

fn opt(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.2}{unit}"),
        _ => "–".into(),
    }
}

fn rows(m: &Metrics) -> Vec<MetricText> {
    let pct = |v: f64| opt(Some(v), " %");
    let r = |id, label, value| MetricText { id, label, value };
    vec![
        r("total_return_pct", "Total return", pct(m.total_return_pct)),
        r(
            "total_return",
            "Total return, dollars",
            opt(Some(m.total_return), ""),
        ),
        r(
            "time_weighted_return_pct",
            "Time-weighted return",
            pct(m.time_weighted_return_pct),
        ),
        r("cagr_pct", "CAGR", opt(m.cagr_pct, " %")),
        r(
            "maximum_equity",
            "Highest equity",
            opt(Some(m.maximum_equity), ""),
        ),
        r(
            "maximum_drawdown_pct",
            "Max drawdown",
            pct(m.maximum_drawdown_pct),
        ),
        r(
            "maximum_drawdown_dollar",
            "Max drawdown, dollars",
            opt(Some(m.maximum_drawdown_dollar), ""),
        ),
        r(
            "longest_drawdown_days",
            "Longest drawdown, days",
            m.longest_drawdown_days.to_string(),
        ),
        r(
            "volatility_pct",
            "Volatility (annualised)",
            pct(m.volatility_pct),
        ),
        r("sharpe", "Sharpe", opt(m.sharpe, "")),
        r("sortino", "Sortino", opt(m.sortino, "")),
        r("calmar", "Calmar", opt(m.calmar, "")),
        r(
            "exposure_pct",
            "Exposure (bars with a position)",
            pct(m.exposure_pct),
        ),
        r(
            "average_invested_capital_pct",
            "Average invested capital",
            pct(m.average_invested_capital_pct),
        ),
        r("total_trades", "Trades", m.total_trades.to_string()),
        r("closed_trades", "Closed lots", m.closed_trades.to_string()),
        r("win_rate_pct", "Win rate", opt(m.win_rate_pct, " %")),
        r("profit_factor", "Profit factor", opt(m.profit_factor, "")),
        r(
            "average_holding_days",
            "Average holding, days",
            opt(m.average_holding_days, ""),
        ),
        r(
            "best_month_return_pct",
            "Best month",
            pct(m.best_month_return_pct),
        ),
        r(
            "worst_month_return_pct",
            "Worst month",
            pct(m.worst_month_return_pct),
        ),
    ]
}

/// `GET /live/performance`.
pub async fn performance_page(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
) -> Result<Response, ApiError> {
    let p = load(&state).await?;
    Ok(render(&PerformancePage {
        chrome: Chrome::new("Performance", "performance", &s),
        live_js: crate::assets::live_js_url(),
        plotly: crate::assets::plotly_url(),
        live: p.live,
        bars: p.bars,
        rows: p.metrics.as_ref().map(rows).unwrap_or_default(),
        data: crate::sweeps::script_json(&p.curves),
        parity: shown(p.parity),
    }))
}

/// The newest [`PARITY_DAYS_SHOWN`] sessions of each symbol.
fn shown(all: Vec<ParityDay>) -> Vec<ParityDay> {
    let mut per: std::collections::HashMap<String, usize> = Default::default();
    all.into_iter()
        .filter(|d| {
            let n = per.entry(d.symbol.clone()).or_default();
            *n += 1;
            *n <= PARITY_DAYS_SHOWN
        })
        .collect()
}
