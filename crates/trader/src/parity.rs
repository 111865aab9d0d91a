//! Live against the backtest (issue 17 §8, `vectura trade parity --symbol S --date D`): a session's
//! stored bars go through the backtest engine with the `next-open` model, from the state the trader
//! had at the open, and every difference with what the broker did is listed: per fill the slippage
//! in basis points against the model's price, trades the model made that live did not (and why:
//! the broker's reject, a risk limit, a halt) and the other way round.
//!
//! The model follows live where live was refused: an intent the broker rejected (or a risk limit
//! or a halt stopped) is refused in the model too (its trigger stays armed in both), so one reject
//! is one difference, not every later trade diverging after it.
//!
//! Scope: the state at the open is known when the run began on that session (a new grid with the
//! account's cash at its first decision). The store keeps no snapshot per session open, so a later
//! session of a run is refused with a message saying so.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use vectura_backtest::{BacktestConfig, FillModel, PdtMode};
use vectura_core::calendar::{self, SessionPart};
use vectura_core::{BarSeries, Fill, IntentId, OrderEnd, OrderIntent, Side};
use vectura_store::{RiskLimits, Store};
use vectura_strategy::grid::{Grid, GridMode};
use vectura_strategy::{Account, SellGate, Strategy, Tick};

use crate::error::TraderError;
use crate::runtime::StoredIntent;

/// Seconds a bar lasts.
const BAR_S: i64 = 60;

/// One fill both the model and live made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FillParity {
    /// The fill's bar (the open after the deciding bar), RFC 3339.
    pub time: DateTime<Utc>,
    pub side: Side,
    pub model_shares: f64,
    pub live_shares: f64,
    pub model_price: f64,
    pub live_price: f64,
    /// Against us, in basis points: a buy above or a sell below the model's price is positive.
    pub slippage_bps: f64,
    pub client_order_id: String,
}

/// A trade one side made and the other did not.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Difference {
    /// The model traded; live did not, for `why` (the broker's reject, a risk limit, a halt, or no
    /// order at all).
    ModelOnly {
        time: DateTime<Utc>,
        side: Side,
        shares: f64,
        price: f64,
        why: String,
    },
    /// Live traded; the model did not.
    LiveOnly {
        time: DateTime<Utc>,
        side: Side,
        shares: f64,
        price: f64,
        client_order_id: String,
    },
    /// Both traded at that bar, but not the same number of shares.
    Shares {
        time: DateTime<Utc>,
        side: Side,
        model_shares: f64,
        live_shares: f64,
        client_order_id: String,
    },
}

/// The parity of one symbol's session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParityReport {
    pub symbol: String,
    pub date: NaiveDate,
    /// Trades of the model (next-open fills).
    pub model_trades: usize,
    /// Orders of the run that filled that session.
    pub live_fills: usize,
    pub fills: Vec<FillParity>,
    pub differences: Vec<Difference>,
    /// Mean slippage over the fills, basis points (0 without fills).
    pub mean_slippage_bps: f64,
}

/// What live did with one decision: filled, or refused with a reason.
#[derive(Debug, Clone)]
struct LiveOrder {
    client_order_id: String,
    bar_ts: i64,
    side: Side,
    filled: f64,
    price: Option<f64>,
    /// Why live did not trade it (`rejected`, `dropped`, …), when it did not.
    refused: Option<String>,
}

/// The grid, driven by the backtest engine, refusing what live was refused.
struct Follow {
    grid: Grid,
    /// Per (deciding bar, side): the reasons of live's refusals, in order.
    refusals: HashMap<(i64, Side), Vec<String>>,
    limits: RiskLimits,
    /// From this time on the symbol was halted (and why).
    halt: Option<(i64, String)>,
    bar_ts: i64,
    /// (deciding bar, side, shares, price, why) of what the model was refused.
    refused: Vec<(i64, Side, f64, f64, String)>,
}

impl Follow {
    fn why_not(&mut self, intent: &OrderIntent) -> Option<String> {
        if let Some((at, why)) = &self.halt {
            if self.bar_ts + BAR_S >= *at {
                return Some(format!("halt: {why}"));
            }
        }
        if let Some(max) = self.limits.max_order_notional {
            let notional = intent.qty * intent.ref_price;
            if notional > max {
                return Some(format!(
                    "risk limit: order notional {notional:.2} exceeds max_order_notional {max}"
                ));
            }
        }
        if let (Some(max), Side::Buy) = (self.limits.max_position_value, intent.side) {
            let held: f64 = self.grid.lots().iter().map(|l| l.shares).sum();
            let value = (held + intent.qty) * intent.ref_price;
            if value > max {
                return Some(format!(
                    "risk limit: position value {value:.2} after the buy exceeds max_position_value {max}"
                ));
            }
        }
        let list = self.refusals.get_mut(&(self.bar_ts, intent.side))?;
        if list.is_empty() {
            None
        } else {
            Some(list.remove(0))
        }
    }
}

impl Strategy for Follow {
    fn name(&self) -> &'static str {
        "grid"
    }
    // Every bar goes to `on_bar`: the deciding bar's time is what live's refusals are keyed by.
    fn quiet_band(&self, _: &Account) -> Option<(f64, f64)> {
        None
    }
    fn on_bar(&mut self, tick: &Tick, account: &Account, gate: &dyn SellGate) {
        self.bar_ts = tick.ts;
        self.grid.on_bar(tick, account, gate);
    }
    fn next_intent(&mut self, account: &Account, gate: &dyn SellGate) -> Option<OrderIntent> {
        loop {
            let intent = self.grid.next_intent(account, gate)?;
            match self.why_not(&intent) {
                None => return Some(intent),
                Some(why) => {
                    self.refused.push((
                        self.bar_ts,
                        intent.side,
                        intent.qty,
                        intent.ref_price,
                        why.clone(),
                    ));
                    self.grid.on_order_end(intent.id, &OrderEnd::Rejected(why));
                }
            }
        }
    }
    fn on_fill(&mut self, fill: &Fill) {
        self.grid.on_fill(fill);
    }
    fn on_order_end(&mut self, intent: IntentId, end: &OrderEnd) {
        self.grid.on_order_end(intent, end);
    }
    fn state(&self) -> serde_json::Value {
        Strategy::state(&self.grid)
    }
}

fn instant(ts: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(ts, 0).unwrap_or_default()
}

/// Builds the report from its parts: the bars (one session, or a run's sessions back to back),
/// the grid at the first open, the cash then, what live did with each decision, the limits and
/// the halt. The report is dated `date`; the model's trade times come with it (for a split by day).
fn compare(
    symbol: &str,
    date: NaiveDate,
    bars: &BarSeries,
    grid: Grid,
    cash: f64,
    live: &[LiveOrder],
    (limits, halt): (RiskLimits, Option<(i64, String)>),
) -> Result<(ParityReport, Vec<i64>), TraderError> {
    let mut refusals: HashMap<(i64, Side), Vec<String>> = HashMap::new();
    for o in live {
        if let Some(why) = &o.refused {
            refusals
                .entry((o.bar_ts, o.side))
                .or_default()
                .push(why.clone());
        }
    }
    let share_scale = grid.snapshot().mode.share_scale;
    let mut follow = Follow {
        grid,
        refusals,
        limits,
        halt,
        bar_ts: i64::MIN,
        refused: Vec::new(),
    };
    let last_date = bars
        .ts
        .last()
        .map_or(date, |&t| calendar::ny_date(t).max(date));
    let mut cfg = BacktestConfig::new(symbol, date, last_date);
    cfg.start_capital = cash;
    cfg.contributions = None;
    cfg.fill = FillModel::NextOpen;
    cfg.pdt = PdtMode::Off;
    cfg.record_series = false;
    cfg.share_scale = share_scale;
    cfg.kernel = false;
    let r = vectura_backtest::run(bars, &mut follow, &cfg)
        .map_err(|e| TraderError::Config(format!("parity: the backtest refused: {e}")))?;
    let mut differences = Vec::new();
    for (bar, side, shares, price, why) in &follow.refused {
        differences.push(Difference::ModelOnly {
            time: instant(bar + BAR_S),
            side: *side,
            shares: *shares,
            price: *price,
            why: why.clone(),
        });
    }
    // Live fills by their fill bar and side, in order. The fill bar is the bar after the deciding
    // one, as the model fills: across a missing minute, or overnight from a session's last bar.
    let fill_bar = |o: &LiveOrder| {
        let k = bars.ts.partition_point(|&t| t <= o.bar_ts);
        bars.ts.get(k).copied().unwrap_or(o.bar_ts + BAR_S)
    };
    let mut filled: HashMap<(i64, Side), Vec<&LiveOrder>> = HashMap::new();
    for o in live.iter().filter(|o| o.filled > 0.0) {
        filled.entry((fill_bar(o), o.side)).or_default().push(o);
    }
    let mut fills = Vec::new();
    let tol = 0.5 / share_scale;
    for t in &r.trades {
        // Several orders of one side at one bar: the one of the same size first.
        let Some(o) = filled.get_mut(&(t.ts, t.side)).and_then(|v| {
            let k = v
                .iter()
                .position(|o| (o.filled - t.shares).abs() <= tol)
                .unwrap_or(0);
            (!v.is_empty()).then(|| v.remove(k))
        }) else {
            differences.push(Difference::ModelOnly {
                time: instant(t.ts),
                side: t.side,
                shares: t.shares,
                price: t.price,
                why: "no live order: the trader did not decide on that bar (down, or the bar came late)".into(),
            });
            continue;
        };
        let live_price = o.price.unwrap_or(f64::NAN);
        let sign = if t.side == Side::Buy { 1.0 } else { -1.0 };
        fills.push(FillParity {
            time: instant(t.ts),
            side: t.side,
            model_shares: t.shares,
            live_shares: o.filled,
            model_price: t.price,
            live_price,
            slippage_bps: sign * (live_price - t.price) / t.price * 1e4,
            client_order_id: o.client_order_id.clone(),
        });
        if (o.filled - t.shares).abs() > tol {
            differences.push(Difference::Shares {
                time: instant(t.ts),
                side: t.side,
                model_shares: t.shares,
                live_shares: o.filled,
                client_order_id: o.client_order_id.clone(),
            });
        }
    }
    let mut rest: Vec<&LiveOrder> = filled.into_values().flatten().collect();
    rest.sort_by_key(|o| o.bar_ts);
    for o in rest {
        differences.push(Difference::LiveOnly {
            time: instant(fill_bar(o)),
            side: o.side,
            shares: o.filled,
            price: o.price.unwrap_or(f64::NAN),
            client_order_id: o.client_order_id.clone(),
        });
    }
    differences.sort_by_key(Difference::time);
    let mean = mean_slippage(&fills);
    let model_ts = r.trades.iter().map(|t| t.ts).collect();
    Ok((
        ParityReport {
            symbol: symbol.to_string(),
            date,
            model_trades: r.trades.len(),
            live_fills: live.iter().filter(|o| o.filled > 0.0).count(),
            fills,
            differences,
            mean_slippage_bps: mean,
        },
        model_ts,
    ))
}

fn mean_slippage(fills: &[FillParity]) -> f64 {
    if fills.is_empty() {
        0.0
    } else {
        fills.iter().map(|f| f.slippage_bps).sum::<f64>() / fills.len() as f64
    }
}

impl ParityReport {
    /// A session where neither side traded.
    fn empty(symbol: &str, date: NaiveDate) -> ParityReport {
        ParityReport {
            symbol: symbol.to_string(),
            date,
            model_trades: 0,
            live_fills: 0,
            fills: Vec::new(),
            differences: Vec::new(),
            mean_slippage_bps: 0.0,
        }
    }
}

impl Difference {
    /// When the difference happened (the fill bar).
    pub fn time(&self) -> DateTime<Utc> {
        match self {
            Difference::ModelOnly { time, .. }
            | Difference::LiveOnly { time, .. }
            | Difference::Shares { time, .. } => *time,
        }
    }
}

/// The run's orders decided on bars in `from..to` (Unix s), oldest decision first, and the
/// account's cash read for the first of them.
async fn live_orders(
    store: &Store,
    sym: &str,
    (from, to): (i64, i64),
) -> Result<(Vec<LiveOrder>, Option<f64>), TraderError> {
    let mut live = Vec::new();
    let mut first: Option<(i64, Option<f64>)> = None;
    for o in store.orders(sym).await? {
        let Some(si) = o
            .intent
            .clone()
            .and_then(|v| serde_json::from_value::<StoredIntent>(v).ok())
        else {
            continue;
        };
        if si.bar_ts < from || si.bar_ts >= to {
            continue;
        }
        if first.is_none_or(|(t, _)| si.bar_ts < t) {
            first = Some((si.bar_ts, si.bar_cash.map(|c| c.0)));
        }
        let refused = match o.status.as_str() {
            "rejected" => Some(format!(
                "reject: {}",
                o.error
                    .clone()
                    .unwrap_or_else(|| "rejected by the broker".into())
            )),
            "dropped" => Some("dropped: never sent, its bar passed (the trader was down)".into()),
            "cancelled" | "canceled" | "expired" if o.filled_qty <= 0.0 => {
                Some(format!("{}: the broker ended the order unfilled", o.status))
            }
            _ => None,
        };
        live.push(LiveOrder {
            client_order_id: o.client_order_id,
            bar_ts: si.bar_ts,
            side: si.intent.side,
            filled: o.filled_qty,
            price: o.filled_avg_price,
            refused,
        });
    }
    live.sort_by_key(|o| o.bar_ts);
    Ok((live, first.and_then(|f| f.1)))
}

/// The symbol's risk limits and halt (from when, and why), as the model follows them.
async fn limits_and_halt(
    store: &Store,
    sym: &str,
) -> Result<(RiskLimits, Option<(i64, String)>), TraderError> {
    let control = store.trade_control(sym).await?;
    let limits = control.as_ref().map(|c| c.limits).unwrap_or_default();
    let halt = control.and_then(|c| match (c.halted_at, c.halt_reason) {
        (Some(at), Some(why)) => Some((at.timestamp(), why)),
        _ => None,
    });
    Ok((limits, halt))
}

/// The grid the run started with (its parameters and mode, no state), for the model.
fn fresh_grid(run: &vectura_strategy::run::GridRun) -> Grid {
    let snap = run.grid().snapshot();
    Grid::new(
        snap.params,
        GridMode {
            record_lines: false,
            ..snap.mode
        },
    )
}

/// The parity report of `symbol`'s active run on `date`, from the store: the session's stored bars
/// (`vectura data fetch`), the run's orders of that session, its risk limits and halt.
pub async fn parity(
    store: &Store,
    symbol: &str,
    date: NaiveDate,
) -> Result<ParityReport, TraderError> {
    let sym = symbol.to_ascii_uppercase();
    let session = calendar::session(date).ok_or_else(|| {
        TraderError::Config(format!(
            "--date {date}: not a trading session: give a weekday the exchange was open"
        ))
    })?;
    let stored = store.active_run(&sym).await?.ok_or_else(|| {
        TraderError::Config(format!(
            "{sym}: no active run: parity compares a run of `vectura trade` with the backtest"
        ))
    })?;
    let run = stored.grid_run()?;
    let began = run.run().start_ms().unwrap_or(0).div_euclid(1000);
    if calendar::ny_date(began) != date {
        return Err(TraderError::Config(format!(
            "{sym}: run {} began before {date}: its state at that open is not stored (no snapshot per session open is kept yet); parity covers a run's first session (the run's days one after another: the performance page, or `GET /api/v1/performance`)",
            run.run()
        )));
    }
    let all = store.load(&sym, date, date).await?;
    let bars = all.filter(|i| calendar::classify(all.ts[i]) == SessionPart::Regular);
    if bars.is_empty() {
        return Err(TraderError::Config(format!(
            "{sym} {date}: no stored regular-session bars: fetch them first (`vectura data fetch --symbol {sym} --start-date {date} --end-date {date}`)"
        )));
    }
    let (live, cash) = live_orders(store, &sym, (session.open, session.close)).await?;
    let cash = cash.ok_or_else(|| {
        TraderError::Config(format!(
            "{sym} {date}: the run made no decision that session: nothing to compare"
        ))
    })?;
    let limits = limits_and_halt(store, &sym).await?;
    let (report, _) = compare(&sym, date, &bars, fresh_grid(&run), cash, &live, limits)?;
    Ok(report)
}

/// One session of a run in its day-by-day parity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayParity {
    pub date: NaiveDate,
    /// The session's report (absent when it cannot be made: `missing` says why).
    pub report: Option<ParityReport>,
    /// Why the session has no report (its bars are not stored, or an earlier session's are not).
    pub missing: Option<String>,
}

/// The parity of `symbol`'s active run, session by session from the run's first through the last
/// bar it decided on (an empty list without a run or a decision). The model runs once over the
/// sessions back to back, from the grid and the cash the run started with, so its state at each
/// open is the one its own trades led to (following live's refusals, as [`parity`] does); its
/// trades and differences are then told per session. The stored bars of each session are read
/// (`vectura data fetch`); from the first session without them the rest has no report, as a
/// model that skipped a day would be compared from the wrong state.
pub async fn by_day(store: &Store, symbol: &str) -> Result<Vec<DayParity>, TraderError> {
    let sym = symbol.to_ascii_uppercase();
    let Some(stored) = store.active_run(&sym).await? else {
        return Ok(Vec::new());
    };
    let run = stored.grid_run()?;
    let began = run.run().start_ms().unwrap_or(0).div_euclid(1000);
    let last = run.grid().snapshot().now;
    if last < began - BAR_S {
        return Ok(Vec::new());
    }
    let sessions = calendar::sessions(calendar::ny_date(began), calendar::ny_date(last));
    let (Some(first), Some(end)) = (sessions.first(), sessions.last()) else {
        return Ok(Vec::new());
    };
    let all = store.load(&sym, first.date, end.date).await?;
    // The sessions the model can cover: each one's regular bars stored, up to the first gap.
    let mut covered = 0;
    for s in &sessions {
        let lo = all.ts.partition_point(|&t| t < s.open);
        let hi = all.ts.partition_point(|&t| t < s.close);
        let decided = all.ts[lo..hi].iter().any(|&t| t <= last);
        if !decided {
            break;
        }
        covered += 1;
    }
    let missing = |s: &calendar::Session, first_gap: NaiveDate| DayParity {
        date: s.date,
        report: None,
        missing: Some(if s.date == first_gap {
            format!(
                "no stored regular-session bars: fetch them (`vectura data fetch --symbol {sym} --start-date {d} --end-date {d}`)",
                d = s.date
            )
        } else {
            format!("the bars of {first_gap} are not stored: the model cannot reach this session's open from the run's start")
        }),
    };
    let mut days = Vec::with_capacity(sessions.len());
    if covered > 0 {
        let end = sessions[covered - 1].close;
        let bars = all.filter(|i| {
            let t = all.ts[i];
            t <= last && t < end && calendar::classify(t) == SessionPart::Regular
        });
        // A decision on the last bar is left out on both sides: its fill comes with a bar the
        // model has not seen yet.
        let (live, cash) = live_orders(store, &sym, (began - BAR_S, end.min(last))).await?;
        let limits = limits_and_halt(store, &sym).await?;
        // No decision yet: nothing traded on either side (the model has no cash to start from).
        let (whole, model_ts) = match cash {
            Some(cash) => compare(
                &sym,
                first.date,
                &bars,
                fresh_grid(&run),
                cash,
                &live,
                limits,
            )?,
            None => (ParityReport::empty(&sym, first.date), Vec::new()),
        };
        days.extend(split(&whole, &model_ts, &sessions[..covered]));
    }
    if let Some(gap) = sessions.get(covered) {
        days.extend(sessions[covered..].iter().map(|s| missing(s, gap.date)));
    }
    Ok(days)
}

/// The report of a run of sessions told per session, each model trade, fill and difference by the
/// New York date of its fill bar. Every filled live order is either a matched fill or a live-only
/// difference, so those two count a day's live fills.
fn split(whole: &ParityReport, model_ts: &[i64], sessions: &[calendar::Session]) -> Vec<DayParity> {
    let mut days: Vec<ParityReport> = sessions
        .iter()
        .map(|s| ParityReport::empty(&whole.symbol, s.date))
        .collect();
    let at: HashMap<NaiveDate, usize> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| (s.date, i))
        .collect();
    let day = |ts: i64| at.get(&calendar::ny_date(ts)).copied();
    for &t in model_ts {
        if let Some(i) = day(t) {
            days[i].model_trades += 1;
        }
    }
    for f in &whole.fills {
        if let Some(i) = day(f.time.timestamp()) {
            days[i].live_fills += 1;
            days[i].fills.push(f.clone());
        }
    }
    for d in &whole.differences {
        if let Some(i) = day(d.time().timestamp()) {
            if matches!(d, Difference::LiveOnly { .. }) {
                days[i].live_fills += 1;
            }
            days[i].differences.push(d.clone());
        }
    }
    days.into_iter()
        .map(|mut r| {
            r.mean_slippage_bps = mean_slippage(&r.fills);
            DayParity {
                date: r.date,
                report: Some(r),
                missing: None,
            }
        })
        .collect()
}
