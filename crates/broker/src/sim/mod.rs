//! The simulated broker: an Alpaca-like cash account that fills orders against the bars it is handed,
//! with the backtest's fill models and cost arithmetic, for offline paper trading
//! (`vectura trade --broker sim`), the demo and tests.
//!
//! It has no clock of its own. A driver hands it each closed bar ([`SimBroker::on_bar`]); the broker
//! fills what is due at that bar, publishes the order events and the bar, and from then on answers
//! [`Broker::clock`] and [`Broker::calendar`] from the driven time and the NYSE calendar of
//! `vectura_core::calendar`.
//!
//! # Fills
//! - Market orders follow [`SimConfig::fill`]: [`FillModel::NextOpen`] (the default) fills an order sent
//!   after bar k closed at bar k+1's open, as the backtest's `next-open` model; [`FillModel::Close`]
//!   (and `Touch`, which for market orders is the same, as in the engine) fills at submission, at the last
//!   bar's close. With [`SimConfig::regular_hours_only`] a market order waits for a regular-session bar.
//! - Limit orders fill on the first later bar that trades through the limit: at the open when it opened
//!   beyond the limit, else at the limit (the backtest's `touch` rule), never worse than the limit.
//! - Price, size and commission come from `vectura_backtest::fill`, the engine's own arithmetic:
//!   adverse slippage of [`SimConfig::slippage_bps`], the engine's commission model (charged per fill, so
//!   a per-order fee is charged once per part of a partial fill), and its overspend guard.
//! - Money is exact: fills are computed in f64 exactly as the engine computes them, then booked as
//!   [`Decimal`]s (prices and commissions as the shortest decimal of the f64, which converts back to the
//!   same f64, so a strategy fed these fills sees the engine's numbers).
//!
//! # Buying power and held shares
//! A cash account: no margin, no short selling. Buying power is cash less what open buy orders reserve,
//! their unfilled quantity at their reference price (the limit, or the last close when they were
//! placed), as the engine reserves `qty × ref_price` for pending buys. A buy whose notional exceeds it is
//! refused with Alpaca's 403 `insufficient buying power`; a sell of more than is held and not already
//! being sold with 403 `insufficient qty available for order`. Before the first bar of a symbol there is
//! no price, so a market buy is not checked until it fills.
//!
//! # A gap up: where the simulation differs from a broker
//! An order sized at the close can cost more than the cash at the next open (a gap up, slippage,
//! commission). The backtest shrinks it to what the cash pays. A broker never shrinks an order: it
//! checks buying power once, when the order arrives, against its current price (the simulator does the
//! same, against the last close) and rejects with 403 an order that fails; an order that passes is
//! filled whole at the open, whatever that costs, and the difference comes out of margin or takes a
//! cash account below zero. The simulator keeps the submission check and never takes cash below zero;
//! at the fill it offers two answers ([`Overspend`]): [`Overspend::Shrink`] (the default: the backtest's
//! answer, which parity with `vectura backtest` needs) fills what the cash pays, exactly as the engine's
//! guard computes it, and cancels the rest (`partial_fill` then `canceled`, or `rejected` when not one
//! share is affordable); [`Overspend::Reject`] fills nothing and rejects the order (or cancels its rest
//! when it was partly filled), the nearest a cash account comes to a broker's refusal. Neither is what a
//! margin account does; a parity report should expect this one difference on gap-up fills.
//!
//! # Orders and events
//! Orders are created `new` (the `new` event follows at once), then go `partially_filled`/`filled`,
//! `canceled`, `expired` (a day order at its session's close; a day order placed outside a session is
//! for the next one) or `rejected`, with Alpaca's `trade_updates` event for each change. Submission is
//! idempotent by client order id: a repeat returns the existing order and creates nothing. Quantities
//! follow Alpaca's rules: at most 9 decimals, and a fractional quantity only on a `day` order. Every
//! instant is stamped at least a microsecond after the previous one, so orders and executions have
//! distinct, increasing times (an execution's whole second is its bar's start).
//!
//! Commission is not part of Alpaca's stream or its executions; read it from the [`Ledger`] or with
//! [`SimBroker::commission_of`].
//!
//! # Streams
//! [`Broker::trade_updates`] and [`MarketData::subscribe_bars`] open one connection each (first message:
//! `Connected { reconnect: false }`). Unlike the Alpaca client, a simulated stream does not backfill after
//! a drop: the events of the gap are lost, as on Alpaca's own wire, and after `Connected { reconnect:
//! true }` the consumer backfills through [`Broker::orders`], [`Broker::executions`] and
//! [`MarketData::bars`]. A consumer that lets its buffer ([`SimConfig::stream_capacity`]) fill is dropped
//! the same way.
//!
//! # Faults
//! [`Faults`] injects, from one seed, rejects, partial and delayed fills, orders that stay `new`, dropped
//! streams, duplicate and reordered events, 5xx and timeouts, and lost replies (see [`Fault`]). Every
//! request, cancel, execution and event is kept in a [`Ledger`] for tests to read.

mod faults;
mod ledger;
mod replay;
mod stream;

pub use faults::{Fault, Faults};
pub use ledger::{CancelRecord, ExecutionRecord, Ledger, RequestOutcome, RequestRecord};
pub use replay::Replay;
pub use vectura_backtest::{Commission, FillModel};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use vectura_backtest::fill;
use vectura_core::calendar::{self, SessionPart};
use vectura_core::{Bar, BarError, Side, Symbol, SymbolError};

use crate::error::BrokerError;
use crate::types::{
    Account, Asset, CalendarDay, Execution, MarketClock, Order, OrderFilter, OrderQuery,
    OrderRequest, OrderStatus, OrderType, Position, TimeInForce, TradeEvent, TradeEventKind,
    QTY_DECIMALS,
};
use crate::venue::{BarUpdates, Broker, MarketData, TradeUpdates};
use faults::key_of;
use stream::Streams;

/// What the simulator does when a buy costs more than the cash at its fill (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overspend {
    /// Fill what the cash pays (the backtest's guard) and cancel the rest.
    #[default]
    Shrink,
    /// Fill nothing more: reject the order (cancel its rest when partly filled).
    Reject,
}

/// The simulated account and its fill rules.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Starting cash, dollars.
    pub cash: Decimal,
    /// When market orders fill (see the module docs).
    pub fill: FillModel,
    /// Commission per fill, the backtest's model (default none, as Alpaca).
    pub commission: Commission,
    /// Adverse slippage in basis points of the fill price.
    pub slippage_bps: f64,
    /// Share precision of a buy shrunk to the cash, as a power of ten (1e9: Alpaca's 9 decimals; give the
    /// backtest's `share_scale` for parity).
    pub share_scale: f64,
    /// What a buy that costs more than the cash at its fill does.
    pub overspend: Overspend,
    /// How long a bar lasts: the clock reads a bar's start plus this once the bar has been handed over.
    pub bar_seconds: i64,
    /// The clock before the first bar, Unix seconds: set it just before the first bar (a day order
    /// placed before any bar is for the session after this instant).
    pub start: i64,
    /// Market orders fill only on regular-session bars (limit orders outside it only with
    /// `extended_hours`), as at Alpaca.
    pub regular_hours_only: bool,
    /// Injected faults (none by default).
    pub faults: Faults,
    /// Messages each stream buffers before its consumer counts as fallen behind.
    pub stream_capacity: usize,
    /// The broker's name in logs ([`Broker::name`]).
    pub name: String,
}

impl SimConfig {
    /// An account with `cash` dollars, the next-open model, no costs and no faults.
    pub fn new(cash: Decimal) -> SimConfig {
        SimConfig {
            cash,
            fill: FillModel::NextOpen,
            commission: Commission::default(),
            slippage_bps: 0.0,
            share_scale: 1e9,
            overspend: Overspend::Shrink,
            bar_seconds: 60,
            start: 0,
            regular_hours_only: true,
            faults: Faults::none(),
            stream_capacity: 1 << 16,
            name: "sim".into(),
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |field: &'static str, value: String, rule: &'static str| {
            Err(SimError::Config { field, value, rule })
        };
        if self.cash.is_sign_negative() || self.cash > Decimal::from(MAX_CASH) {
            return bad(
                "cash",
                self.cash.to_string(),
                "give 0 to 1000000000000000 dollars",
            );
        }
        for (field, v) in [
            ("commission per order", self.commission.per_order),
            ("commission per share", self.commission.per_share),
            ("commission pct", self.commission.pct),
            ("slippage bps", self.slippage_bps),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(field, v.to_string(), "give a finite number of 0 or more");
            }
        }
        if !(self.share_scale.is_finite() && (1.0..=1e9).contains(&self.share_scale)) {
            return bad(
                "share scale",
                self.share_scale.to_string(),
                "give a power of ten from 1 (whole shares) to 1e9 (Alpaca's 9 decimals)",
            );
        }
        if self.bar_seconds <= 0 {
            return bad(
                "bar seconds",
                self.bar_seconds.to_string(),
                "give the bar length in seconds (60 for minute bars)",
            );
        }
        if !(MIN_TS..=MAX_TS).contains(&self.start) {
            return bad(
                "start",
                self.start.to_string(),
                "give Unix seconds between years 1900 and 9999",
            );
        }
        if self.stream_capacity < 8 {
            return bad(
                "stream capacity",
                self.stream_capacity.to_string(),
                "give 8 messages or more",
            );
        }
        if self.faults.max_parts < 2
            || self.faults.max_part_bars < 1
            || self.faults.max_delay_bars < 1
            || self.faults.max_gap_bars < 1
        {
            return bad(
                "faults",
                format!("{:?}", self.faults),
                "max_parts must be 2 or more and the bar counts 1 or more",
            );
        }
        Ok(())
    }
}

/// A bar or a configuration the simulator cannot take.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulated broker: {field} is {value}: {rule}")]
    Config {
        field: &'static str,
        value: String,
        rule: &'static str,
    },
    #[error("simulated broker: bar symbol {symbol:?}: {source}")]
    Symbol {
        symbol: String,
        #[source]
        source: SymbolError,
    },
    #[error("simulated broker: {symbol} bar at {ts}: {source}")]
    BadBar {
        symbol: String,
        ts: i64,
        #[source]
        source: BarError,
    },
    #[error("simulated broker: {symbol} bar at {ts}: {what}")]
    OutOfRange {
        symbol: String,
        ts: i64,
        what: &'static str,
    },
    #[error("simulated broker: {symbol} bar at {ts} is not after the previous one at {prev}: hand over each symbol's bars once, in time order")]
    OutOfOrder { symbol: String, ts: i64, prev: i64 },
}

/// 1900-01-01 and 9999-12-31 23:59:59 UTC: instants every date type here can hold.
const MIN_TS: i64 = -2_208_988_800;
const MAX_TS: i64 = 253_402_300_799;
/// Prices above this are refused, so exact decimal arithmetic can never overflow.
const MAX_PRICE: f64 = 1e9;
/// Most starting cash (the same reason).
const MAX_CASH: i64 = 1_000_000_000_000_000;
/// Most shares one order may ask for (the same reason).
const MAX_QTY: i64 = 1_000_000_000_000;

/// The broker's calls, for the keys of injected unavailability.
#[derive(Debug, Clone, Copy)]
enum Call {
    Account,
    Clock,
    Calendar,
    Asset,
    OrderByClientId,
    Orders,
    Cancel,
    CancelAll,
    Positions,
    Executions,
    TradeUpdates,
    SubscribeBars,
    Bars,
}

const UNAVAILABLE: [&str; 4] = [
    "HTTP 503 Service Unavailable (simulated)",
    "HTTP 500 Internal Server Error (simulated)",
    "HTTP 502 Bad Gateway (simulated)",
    "the request timed out after 10 s (simulated)",
];

/// Alpaca's refusals the reject fault picks from: (status, code, message).
const REJECTS: [(u16, i64, &str); 3] = [
    (403, 40310000, "insufficient buying power"),
    (
        422,
        42210000,
        "potential wash trade detected. use complex orders",
    ),
    (
        422,
        40010001,
        "cost basis must be >= minimal amount of order 1",
    ),
];

/// One part of an order's fill schedule: `qty` due at the symbol's bar number `due`.
#[derive(Debug, Clone, Copy)]
struct Part {
    due: u64,
    qty: Decimal,
}

struct SimOrder {
    order: Order,
    /// Whole second of submission: the order cannot fill on a bar that started earlier.
    placed: i64,
    plan: VecDeque<Part>,
    /// Price that reserves buying power per unfilled share (the limit or the last close at submission).
    ref_px: Option<Decimal>,
    /// A day order's expiry (its session's close), Unix seconds.
    expires: Option<i64>,
    limit: Option<f64>,
}

#[derive(Default)]
struct SymbolBook {
    bars: Vec<Bar>,
    /// The last bar's close as a decimal (made once per bar: positions and equity read it often).
    close: Option<Decimal>,
}

struct Pos {
    qty: Decimal,
    avg: Decimal,
}

struct State {
    cfg: SimConfig,
    slip: f64,
    now: i64,
    /// Last stamp handed out, Unix microseconds.
    stamp_us: i64,
    cash: Decimal,
    orders: Vec<SimOrder>,
    by_client: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
    /// Indices of orders not yet final, in submission order.
    open: Vec<usize>,
    /// Per symbol, the indices of its orders (creation order, so by `created_at`: stamps only grow).
    orders_of: HashMap<String, Vec<usize>>,
    /// Per symbol, the indices of its executions in `ledger.executions` (by time, likewise).
    executions_of: HashMap<String, Vec<usize>>,
    positions: BTreeMap<String, Pos>,
    symbols: HashMap<String, SymbolBook>,
    ledger: Ledger,
    streams: Streams,
    event_seq: u64,
    bar_seq: u64,
    exec_seq: u64,
    calls: [u64; 13],
    submit_attempts: HashMap<String, u64>,
    cancel_attempts: HashMap<String, u64>,
    /// Equity at the close of the last session seen, and that session's date.
    last_equity: Option<Decimal>,
    session: Option<NaiveDate>,
}

/// The simulated broker (see the module docs). Cheap to share: hold it in an `Arc` and hand it to the
/// trader as `Arc<dyn Broker>` and `Arc<dyn MarketData>`.
pub struct SimBroker {
    state: Mutex<State>,
    name: String,
}

impl std::fmt::Debug for SimBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimBroker")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl SimBroker {
    /// A simulated account as `cfg` describes.
    pub fn new(cfg: SimConfig) -> Result<SimBroker, SimError> {
        cfg.validate()?;
        let name = cfg.name.clone();
        let state = State {
            slip: cfg.slippage_bps / 1e4,
            now: cfg.start,
            stamp_us: cfg.start * 1_000_000 - 1,
            cash: cfg.cash,
            orders: Vec::new(),
            by_client: HashMap::new(),
            by_id: HashMap::new(),
            open: Vec::new(),
            orders_of: HashMap::new(),
            executions_of: HashMap::new(),
            positions: BTreeMap::new(),
            symbols: HashMap::new(),
            ledger: Ledger::default(),
            streams: Streams::new(cfg.stream_capacity),
            event_seq: 0,
            bar_seq: 0,
            exec_seq: 0,
            calls: [0; 13],
            submit_attempts: HashMap::new(),
            cancel_attempts: HashMap::new(),
            last_equity: None,
            session: None,
            cfg,
        };
        Ok(SimBroker {
            state: Mutex::new(state),
            name,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-booked fill behind (every booking step
        // completes before the next), so the state stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands over a closed bar of `symbol`: moves the clock to the bar's start, expires day orders whose
    /// session has closed, fills what is due at this bar (at its open, or at a touched limit), publishes
    /// the order events, moves the clock to the bar's end and publishes the bar to bar streams.
    pub fn on_bar(&self, symbol: &str, bar: &Bar) -> Result<(), SimError> {
        self.lock().on_bar(symbol, bar)
    }

    /// Feeds the next bar of `replay`; returns its symbol and bar, or `None` when the replay is done.
    pub fn step(&self, replay: &mut Replay) -> Result<Option<(String, Bar)>, SimError> {
        match replay.next_bar() {
            Some((sym, bar)) => {
                let sym = sym.to_string();
                self.on_bar(&sym, &bar)?;
                Ok(Some((sym, bar)))
            }
            None => Ok(None),
        }
    }

    /// Moves the clock forward to `ts` without a bar (a session's close, a quiet minute): day orders
    /// whose session has closed expire, dropped streams reconnect. The clock never goes back.
    pub fn advance_to(&self, ts: i64) {
        let mut st = self.lock();
        let ts = ts.clamp(MIN_TS, MAX_TS);
        st.streams.reconnect();
        st.advance(ts);
        st.streams.flush();
    }

    /// The broker's time, Unix seconds.
    pub fn now(&self) -> i64 {
        self.lock().now
    }

    /// Replaces the fault schedule (for example to end a test run without faults and reconcile).
    pub fn set_faults(&self, faults: Faults) {
        self.lock().cfg.faults = faults;
    }

    /// Everything recorded so far (requests, cancels, executions with commissions, events).
    pub fn ledger(&self) -> Ledger {
        self.lock().ledger.clone()
    }

    /// How many order requests carried `client_order_id` (retries and duplicates included).
    pub fn requests_for(&self, client_order_id: &str) -> usize {
        self.lock().ledger.requests_for(client_order_id)
    }

    /// The commission charged for the execution `execution_id`, if it exists.
    pub fn commission_of(&self, execution_id: &str) -> Option<Decimal> {
        self.lock()
            .ledger
            .executions
            .iter()
            .find(|e| e.execution.id == execution_id)
            .map(|e| e.commission)
    }

    /// Applies a stock split to the account, as the broker does before the open of its effective
    /// date: the position's shares multiplied by `ratio` (2 for a 2-for-1), its average entry price
    /// divided by it. Open orders are left as they are (the trader applies a split with none out).
    pub fn split(&self, symbol: &str, ratio: Decimal) -> Result<(), SimError> {
        if ratio <= Decimal::ZERO {
            return Err(SimError::Config {
                field: "split ratio",
                value: ratio.to_string(),
                rule: "a positive number of new shares per old share (2 for a 2-for-1)",
            });
        }
        let mut st = self.lock();
        if let Some(p) = st.positions.get_mut(&symbol.to_ascii_uppercase()) {
            p.qty *= ratio;
            p.avg /= ratio;
        }
        Ok(())
    }

    /// The last close handed over for `symbol`.
    pub fn last_close(&self, symbol: &str) -> Option<f64> {
        let st = self.lock();
        st.symbols
            .get(&symbol.to_ascii_uppercase())
            .and_then(|b| b.bars.last())
            .map(|b| b.close)
    }
}

impl vectura_core::Clock for SimBroker {
    fn now(&self) -> i64 {
        SimBroker::now(self)
    }
}

/// `f64` to the decimal of its shortest text, which converts back to the same `f64`.
fn dec(x: f64) -> Option<Decimal> {
    if !x.is_finite() {
        return None;
    }
    Decimal::from_str(&x.to_string())
        .ok()
        .or_else(|| Decimal::from_f64_retain(x))
}

/// A decimal as the nearest `f64` (through its text: correctly rounded).
fn f64_of(d: Decimal) -> f64 {
    d.to_string().parse().unwrap_or(f64::NAN)
}

fn time_us(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::UNIX_EPOCH)
}

fn time_s(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(s, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

/// A UUID-shaped id (version 4 layout) from the seed and a number, so ids look like Alpaca's and a run
/// replays with the same ids.
fn uuid_like(seed: u64, kind: u64, n: u64) -> String {
    let a = faults::mix64(seed, &[kind, n, 1]);
    let b = faults::mix64(seed, &[kind, n, 2]);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

fn refused(status: u16, code: i64, message: impl Into<String>) -> BrokerError {
    BrokerError::Rejected {
        status,
        code: Some(code),
        message: message.into(),
    }
}

/// The close of the session an order placed at `ts` is for: the current one while it is open or
/// before its open, else the next.
fn session_close_for(ts: i64) -> Option<i64> {
    let d = calendar::ny_date(ts);
    match calendar::session(d) {
        Some(s) if ts < s.close => Some(s.close),
        _ => calendar::next_session(d).map(|s| s.close),
    }
}

impl State {
    fn stamp(&mut self, secs: i64) -> i64 {
        self.stamp_us = (secs * 1_000_000).max(self.stamp_us + 1);
        self.stamp_us
    }

    fn unavailable(&self, key: &[u64]) -> BrokerError {
        let i = self.cfg.faults.pick(Fault::Unavailable, key, 1, 4) as usize;
        BrokerError::Unavailable {
            message: UNAVAILABLE[i].into(),
            source: None,
        }
    }

    /// Counts a call and says whether the unavailability fault strikes it.
    fn call_fails(&mut self, call: Call) -> Option<BrokerError> {
        let n = self.calls[call as usize];
        self.calls[call as usize] += 1;
        let key = [1000 + call as u64, n];
        self.cfg
            .faults
            .hit(Fault::Unavailable, &key)
            .then(|| self.unavailable(&key))
    }

    /// The last close handed over for `symbol`, as a decimal.
    fn last_close_dec(&self, symbol: &str) -> Option<Decimal> {
        self.symbols.get(symbol).and_then(|b| b.close)
    }

    fn market_value(&self) -> Decimal {
        self.positions
            .iter()
            .map(|(s, p)| {
                let px = self.last_close_dec(s).unwrap_or(p.avg);
                p.qty * px
            })
            .sum()
    }

    fn reserved(&self) -> Decimal {
        self.open
            .iter()
            .map(|&i| &self.orders[i])
            .filter(|o| o.order.side == Side::Buy)
            .map(|o| {
                let leaves = o.order.qty.unwrap_or_default() - o.order.filled_qty;
                o.ref_px.map_or(Decimal::ZERO, |p| leaves * p)
            })
            .sum()
    }

    fn buying_power(&self) -> Decimal {
        (self.cash - self.reserved()).max(Decimal::ZERO)
    }

    fn held_free(&self, symbol: &str) -> Decimal {
        let held = self.positions.get(symbol).map_or(Decimal::ZERO, |p| p.qty);
        let selling: Decimal = self
            .open
            .iter()
            .map(|&i| &self.orders[i].order)
            .filter(|o| o.side == Side::Sell && o.symbol == symbol)
            .map(|o| o.qty.unwrap_or_default() - o.filled_qty)
            .sum();
        held - selling
    }

    fn emit(&mut self, kind: TradeEventKind, i: usize, execution: Option<Execution>, at_us: i64) {
        let o = &self.orders[i].order;
        let ev = TradeEvent {
            kind,
            order: o.clone(),
            execution,
            position_qty: Some(
                self.positions
                    .get(&o.symbol)
                    .map_or(Decimal::ZERO, |p| p.qty),
            ),
            at: time_us(at_us),
        };
        let seq = self.event_seq;
        self.event_seq += 1;
        self.streams.publish_trade(&self.cfg.faults, seq, &ev);
        self.ledger.events.push(ev);
    }

    fn close_order(&mut self, i: usize) {
        self.open.retain(|&j| j != i);
    }

    /// Ends an open order without (further) fills: canceled, expired or rejected.
    fn end_order(&mut self, i: usize, status: OrderStatus, at_secs: i64) {
        let us = self.stamp(at_secs);
        let t = time_us(us);
        let kind = {
            let o = &mut self.orders[i].order;
            o.updated_at = Some(t);
            let kind = match status {
                OrderStatus::Canceled => {
                    o.canceled_at = Some(t);
                    TradeEventKind::Canceled
                }
                OrderStatus::Expired => {
                    o.expired_at = Some(t);
                    TradeEventKind::Expired
                }
                _ => {
                    o.failed_at = Some(t);
                    TradeEventKind::Rejected
                }
            };
            o.status = status;
            kind
        };
        self.orders[i].plan.clear();
        self.close_order(i);
        self.emit(kind, i, None, us);
    }

    /// Moves the clock to `ts` and expires day orders whose session closed by then.
    fn advance(&mut self, ts: i64) {
        self.now = self.now.max(ts);
        let now = self.now;
        let due: Vec<(usize, i64)> = self
            .open
            .iter()
            .filter_map(|&i| self.orders[i].expires.filter(|&e| e <= now).map(|e| (i, e)))
            .collect();
        for (i, e) in due {
            self.end_order(i, OrderStatus::Expired, e);
        }
    }

    fn on_bar(&mut self, symbol: &str, bar: &Bar) -> Result<(), SimError> {
        let sym = Symbol::new(symbol)
            .map_err(|source| SimError::Symbol {
                symbol: symbol.to_string(),
                source,
            })?
            .as_str()
            .to_string();
        bar.validate(false).map_err(|source| SimError::BadBar {
            symbol: sym.clone(),
            ts: bar.ts,
            source,
        })?;
        if !(MIN_TS..=MAX_TS - self.cfg.bar_seconds).contains(&bar.ts) {
            return Err(SimError::OutOfRange {
                symbol: sym,
                ts: bar.ts,
                what: "the time is outside years 1900 to 9999",
            });
        }
        if [bar.open, bar.high, bar.low, bar.close]
            .iter()
            .any(|&p| p > MAX_PRICE)
        {
            return Err(SimError::OutOfRange {
                symbol: sym,
                ts: bar.ts,
                what: "a price is above 1e9 dollars",
            });
        }
        if let Some(prev) = self.symbols.get(&sym).and_then(|b| b.bars.last()) {
            if bar.ts <= prev.ts {
                return Err(SimError::OutOfOrder {
                    symbol: sym,
                    ts: bar.ts,
                    prev: prev.ts,
                });
            }
        }
        // Today's P&L reads equity at the previous session's close.
        let day = calendar::ny_date(bar.ts);
        if self.session != Some(day) {
            if self.session.is_some() {
                self.last_equity = Some(self.cash + self.market_value());
            }
            self.session = Some(day);
        }
        self.streams.reconnect();
        self.advance(bar.ts);
        let book = self.symbols.entry(sym.clone()).or_default();
        let k = book.bars.len() as u64;
        book.bars.push(*bar);
        book.close = dec(bar.close);
        self.fill_due(&sym, k, bar);
        self.advance(bar.ts + self.cfg.bar_seconds);
        self.streams.flush();
        let seq = self.bar_seq;
        self.bar_seq += 1;
        self.streams.publish_bar(&self.cfg.faults, seq, &sym, bar);
        Ok(())
    }

    /// Fills the parts of `sym`'s open orders due at its bar number `k`.
    fn fill_due(&mut self, sym: &str, k: u64, bar: &Bar) {
        if self.open.is_empty() {
            return;
        }
        let regular = calendar::classify(bar.ts) == SessionPart::Regular;
        let todo: Vec<usize> = self
            .open
            .iter()
            .copied()
            .filter(|&i| self.orders[i].order.symbol == sym)
            .collect();
        for i in todo {
            let o = &self.orders[i];
            if bar.ts < o.placed || o.plan.front().is_none_or(|p| p.due > k) {
                continue;
            }
            if self.cfg.regular_hours_only
                && !regular
                && !(o.limit.is_some() && o.order.extended_hours)
            {
                continue;
            }
            let side = o.order.side;
            let px = match o.limit {
                None => fill::slipped(side, bar.open, self.slip),
                Some(l) => match side {
                    Side::Buy if bar.low <= l => {
                        fill::slipped(side, bar.open.min(l), self.slip).min(l)
                    }
                    Side::Sell if bar.high >= l => {
                        fill::slipped(side, bar.open.max(l), self.slip).max(l)
                    }
                    _ => continue,
                },
            };
            while self.orders[i].plan.front().is_some_and(|p| p.due <= k) {
                if !self.fill_part(i, px, bar.ts) {
                    break;
                }
            }
        }
    }

    /// Fills the next part of order `i` at `px` (after slippage) at `ts`. Returns whether the order is
    /// still open.
    fn fill_part(&mut self, i: usize, px: f64, ts: i64) -> bool {
        let Some(part) = self.orders[i].plan.front().copied() else {
            return true;
        };
        let Some(px_d) = dec(px) else {
            self.end_order(i, OrderStatus::Rejected, ts);
            return false;
        };
        let side = self.orders[i].order.side;
        let c = self.cfg.commission;
        let want = f64_of(part.qty);
        let (qty, fee, rest_ends) = match side {
            Side::Buy => {
                let cash = f64_of(self.cash);
                let (q, fee) = fill::buy(cash, px, want, false, &c, self.cfg.share_scale, true);
                if q >= want {
                    (part.qty, fee, false)
                } else {
                    match self.cfg.overspend {
                        // The engine's shrunk quantity is a multiple of 1/share_scale, so its decimal is exact.
                        Overspend::Shrink => {
                            (crate::types::qty_from_f64(q).unwrap_or_default(), fee, true)
                        }
                        Overspend::Reject => (Decimal::ZERO, 0.0, true),
                    }
                }
            }
            Side::Sell => {
                let held = self
                    .positions
                    .get(&self.orders[i].order.symbol)
                    .map_or(Decimal::ZERO, |p| p.qty);
                let q = part.qty.min(held);
                (q, c.of(f64_of(q), px), q < part.qty)
            }
        };
        if qty > Decimal::ZERO {
            let Some(fee_d) = dec(fee) else {
                self.end_order(i, OrderStatus::Rejected, ts);
                return false;
            };
            self.book_fill(i, qty, px_d, fee_d, ts);
        }
        if rest_ends {
            let status = if self.orders[i].order.filled_qty > Decimal::ZERO {
                OrderStatus::Canceled
            } else {
                OrderStatus::Rejected
            };
            self.end_order(i, status, ts);
            return false;
        }
        let plan = &mut self.orders[i].plan;
        plan.pop_front();
        if self.orders[i].order.status == OrderStatus::Filled {
            self.close_order(i);
            return false;
        }
        true
    }

    /// Books one execution: cash, position, order, ledger and event.
    fn book_fill(&mut self, i: usize, qty: Decimal, px: Decimal, fee: Decimal, ts: i64) {
        let us = self.stamp(ts);
        let t = time_us(us);
        let (side, symbol, order_id, cid) = {
            let o = &self.orders[i].order;
            (
                o.side,
                o.symbol.clone(),
                o.id.clone(),
                o.client_order_id.clone(),
            )
        };
        let notional = qty * px;
        match side {
            Side::Buy => {
                self.cash -= notional + fee;
                let p = self.positions.entry(symbol.clone()).or_insert(Pos {
                    qty: Decimal::ZERO,
                    avg: Decimal::ZERO,
                });
                let total = p.qty + qty;
                p.avg = if p.qty.is_zero() {
                    px
                } else {
                    (p.qty * p.avg + notional) / total
                };
                p.qty = total;
            }
            Side::Sell => {
                self.cash += notional - fee;
                if let Some(p) = self.positions.get_mut(&symbol) {
                    p.qty -= qty;
                    if p.qty.is_zero() {
                        self.positions.remove(&symbol);
                    }
                }
            }
        }
        let (cum, leaves) = {
            let o = &mut self.orders[i].order;
            let before = o.filled_qty;
            let cum = before + qty;
            o.filled_avg_price = Some(match o.filled_avg_price {
                Some(avg) if !before.is_zero() => (avg * before + notional) / cum,
                _ => px,
            });
            o.filled_qty = cum;
            let leaves = o.qty.unwrap_or_default() - cum;
            o.updated_at = Some(t);
            if leaves.is_zero() {
                o.status = OrderStatus::Filled;
                o.filled_at = Some(t);
            } else {
                o.status = OrderStatus::PartiallyFilled;
            }
            (cum, leaves)
        };
        let n = self.exec_seq;
        self.exec_seq += 1;
        let execution = Execution {
            id: uuid_like(self.cfg.faults.seed, 2, n),
            order_id,
            symbol,
            side,
            qty,
            price: px,
            cum_qty: cum,
            leaves_qty: leaves,
            time: t,
        };
        let k = self.ledger.executions.len();
        self.executions_of
            .entry(execution.symbol.clone())
            .or_default()
            .push(k);
        self.ledger.executions.push(ExecutionRecord {
            execution: execution.clone(),
            client_order_id: cid,
            commission: fee,
        });
        let kind = if leaves.is_zero() {
            TradeEventKind::Fill
        } else {
            TradeEventKind::PartialFill
        };
        self.emit(kind, i, Some(execution), us);
    }

    /// The fill schedule of a new order whose first fill is due at bar number `start`.
    fn plan(&self, cid: &str, qty: Decimal, start: u64) -> VecDeque<Part> {
        let f = &self.cfg.faults;
        let key = [key_of(cid)];
        let mut plan = VecDeque::new();
        if f.hit(Fault::StaysNew, &key) {
            return plan;
        }
        let delay = if f.hit(Fault::DelayedFill, &key) {
            1 + f.pick(Fault::DelayedFill, &key, 0, f.max_delay_bars as u64)
        } else {
            0
        };
        let first = start + delay;
        // Parts keep the order's precision: whole shares for a whole-share order.
        let scale = qty.normalize().scale();
        let unit = Decimal::new(1, scale);
        let units = (qty / unit).trunc();
        let n = if f.hit(Fault::PartialFill, &key) {
            let n = 2 + f.pick(Fault::PartialFill, &key, 0, (f.max_parts - 1) as u64);
            n.min(units.to_u64().unwrap_or(u64::MAX)).max(1)
        } else {
            1
        };
        if n == 1 {
            plan.push_back(Part { due: first, qty });
            return plan;
        }
        let spread = 1 + f.pick(Fault::PartialFill, &key, 1, f.max_part_bars as u64);
        // Uneven weights 1..=4 per part, every part at least one unit, the last takes the remainder.
        let weights: Vec<u64> = (0..n)
            .map(|j| 1 + f.pick(Fault::PartialFill, &key, 2 + j, 4))
            .collect();
        let total: u64 = weights.iter().sum();
        let free = units - Decimal::from(n);
        let mut given = Decimal::ZERO;
        for (j, w) in weights.iter().enumerate() {
            let j = j as u64;
            let q = if j + 1 == n {
                qty - given
            } else {
                (Decimal::ONE + (free * Decimal::from(*w) / Decimal::from(total)).floor()) * unit
            };
            given += q;
            plan.push_back(Part {
                due: first + j * spread / n,
                qty: q,
            });
        }
        plan
    }

    /// Alpaca's checks of a new order, in its words.
    fn check(&self, req: &OrderRequest, sym: &str) -> Result<Option<Decimal>, BrokerError> {
        if req.client_order_id.is_empty() || req.client_order_id.len() > 128 {
            return Err(refused(
                422,
                40010001,
                "client_order_id must be 1 to 128 characters",
            ));
        }
        if req.qty <= Decimal::ZERO {
            return Err(refused(422, 40010001, "qty must be > 0"));
        }
        if req.qty.normalize().scale() > QTY_DECIMALS {
            return Err(refused(
                422,
                40010001,
                "qty must have at most 9 decimal places",
            ));
        }
        if req.qty > Decimal::from(MAX_QTY) {
            return Err(refused(
                422,
                40010001,
                "qty must be at most 1000000000000 (simulated broker)",
            ));
        }
        match req.time_in_force {
            TimeInForce::Day | TimeInForce::Gtc => {}
            other => {
                return Err(refused(
                    422,
                    42210000,
                    format!(
                    "time_in_force {other:?} is not supported by the simulated broker (day, gtc)"
                )
                    .to_lowercase(),
                ))
            }
        }
        if !req.qty.fract().is_zero() && req.time_in_force != TimeInForce::Day {
            return Err(refused(
                422,
                42210000,
                "fractional orders must be DAY orders",
            ));
        }
        let limit = match req.order_type {
            OrderType::Market => None,
            OrderType::Limit { limit_price } => {
                if limit_price <= Decimal::ZERO || limit_price > Decimal::from(MAX_PRICE as i64) {
                    return Err(refused(422, 40010001, "limit_price must be > 0"));
                }
                Some(limit_price)
            }
        };
        if req.extended_hours && !(limit.is_some() && req.time_in_force == TimeInForce::Day) {
            return Err(refused(
                422,
                42210000,
                "extended hours order must be DAY limit orders",
            ));
        }
        let ref_px = limit.or_else(|| self.last_close_dec(sym));
        match req.side {
            Side::Buy => {
                if let Some(px) = ref_px {
                    if req.qty * px > self.buying_power() {
                        return Err(refused(403, 40310000, "insufficient buying power"));
                    }
                }
            }
            Side::Sell => {
                let free = self.held_free(sym);
                if req.qty > free {
                    return Err(refused(
                        403,
                        40310000,
                        format!(
                            "insufficient qty available for order (requested: {}, available: {})",
                            req.qty.normalize(),
                            free.max(Decimal::ZERO).normalize()
                        ),
                    ));
                }
            }
        }
        Ok(ref_px)
    }

    fn record(&mut self, req: &OrderRequest, at_us: i64, outcome: RequestOutcome) {
        let seq = self.ledger.requests.len() as u64;
        self.ledger.requests.push(RequestRecord {
            seq,
            at: time_us(at_us),
            request: req.clone(),
            outcome,
        });
    }

    fn submit(&mut self, req: &OrderRequest) -> Result<Order, BrokerError> {
        let cid = req.client_order_id.clone();
        let attempt = {
            let a = self.submit_attempts.entry(cid.clone()).or_insert(0);
            *a += 1;
            *a - 1
        };
        let key = [key_of(&cid), attempt];
        let now = self.now;
        let at = self.stamp(now);
        if self.cfg.faults.hit(Fault::Unavailable, &key) {
            self.record(req, at, RequestOutcome::Unavailable { order_id: None });
            return Err(self.unavailable(&key));
        }
        if let Some(&i) = self.by_client.get(&cid) {
            let order = self.orders[i].order.clone();
            self.record(
                req,
                at,
                RequestOutcome::Duplicate {
                    order_id: order.id.clone(),
                },
            );
            return Ok(order);
        }
        let sym = match Symbol::new(&req.symbol) {
            Ok(s) => s.as_str().to_string(),
            Err(e) => {
                let err = refused(422, 40010001, format!("invalid symbol: {e}"));
                self.record_refusal(req, at, &err);
                return Err(err);
            }
        };
        let ref_px = match self.check(req, &sym) {
            Ok(p) => p,
            Err(err) => {
                self.record_refusal(req, at, &err);
                return Err(err);
            }
        };
        if self.cfg.faults.hit(Fault::Reject, &key) {
            let (status, code, message) =
                REJECTS[self.cfg.faults.pick(Fault::Reject, &key, 0, 3) as usize];
            let err = refused(status, code, message);
            self.record_refusal(req, at, &err);
            return Err(err);
        }
        // Accepted.
        let i = self.orders.len();
        let t = time_us(at);
        let order = Order {
            id: uuid_like(self.cfg.faults.seed, 1, i as u64),
            client_order_id: cid.clone(),
            symbol: sym.clone(),
            side: req.side,
            qty: Some(req.qty),
            filled_qty: Decimal::ZERO,
            filled_avg_price: None,
            status: OrderStatus::New,
            order_type: req.order_type,
            time_in_force: req.time_in_force,
            extended_hours: req.extended_hours,
            created_at: t,
            updated_at: Some(t),
            submitted_at: Some(t),
            filled_at: None,
            canceled_at: None,
            expired_at: None,
            failed_at: None,
        };
        let limit = match req.order_type {
            OrderType::Market => None,
            OrderType::Limit { limit_price } => Some(f64_of(limit_price)),
        };
        let (bars, last) = self
            .symbols
            .get(&sym)
            .map_or((0, None), |b| (b.bars.len() as u64, b.bars.last().copied()));
        // The close model fills a market order now, at the last close: its first part is due at the bar
        // that just closed.
        let at_close = self.cfg.fill != FillModel::NextOpen && limit.is_none() && bars > 0;
        let start = if at_close { bars - 1 } else { bars };
        let plan = self.plan(&cid, req.qty, start);
        self.orders.push(SimOrder {
            order,
            placed: now,
            plan,
            ref_px,
            expires: match req.time_in_force {
                TimeInForce::Day => Some(session_close_for(now).unwrap_or(MAX_TS)),
                _ => None,
            },
            limit,
        });
        self.by_client.insert(cid, i);
        self.by_id.insert(self.orders[i].order.id.clone(), i);
        self.orders_of.entry(sym.clone()).or_default().push(i);
        self.open.push(i);
        self.emit(TradeEventKind::New, i, None, at);
        if let (true, Some(last)) = (at_close, last) {
            let regular = calendar::classify(last.ts) == SessionPart::Regular;
            if regular || !self.cfg.regular_hours_only {
                let px = fill::slipped(req.side, last.close, self.slip);
                while self.orders[i].plan.front().is_some_and(|p| p.due < bars) {
                    if !self.fill_part(i, px, now) {
                        break;
                    }
                }
            }
        }
        let order = self.orders[i].order.clone();
        if self.cfg.faults.hit(Fault::LostReply, &key) {
            self.record(
                req,
                at,
                RequestOutcome::Unavailable {
                    order_id: Some(order.id.clone()),
                },
            );
            return Err(self.unavailable(&key));
        }
        self.record(
            req,
            at,
            RequestOutcome::Accepted {
                order_id: order.id.clone(),
            },
        );
        Ok(order)
    }

    fn record_refusal(&mut self, req: &OrderRequest, at: i64, err: &BrokerError) {
        if let BrokerError::Rejected {
            status,
            code,
            message,
        } = err
        {
            self.record(
                req,
                at,
                RequestOutcome::Refused {
                    status: *status,
                    code: *code,
                    message: message.clone(),
                },
            );
        }
    }

    fn cancel(&mut self, order_id: &str) -> Result<(), BrokerError> {
        let at = self.stamp(self.now);
        if let Some(e) = self.call_fails(Call::Cancel) {
            self.record_cancel(at, Some(order_id), vec![], true);
            return Err(e);
        }
        let Some(&i) = self.by_id.get(order_id) else {
            return Err(BrokerError::NotFound {
                what: format!("order {order_id}"),
            });
        };
        let mut done = vec![];
        if !self.orders[i].order.status.is_final() {
            self.end_order(i, OrderStatus::Canceled, self.now);
            done.push(order_id.to_string());
        }
        let attempt = {
            let a = self
                .cancel_attempts
                .entry(order_id.to_string())
                .or_insert(0);
            *a += 1;
            *a - 1
        };
        let key = [key_of(order_id), attempt, 1];
        if self.cfg.faults.hit(Fault::LostReply, &key) {
            self.record_cancel(at, Some(order_id), done, true);
            return Err(self.unavailable(&key));
        }
        self.record_cancel(at, Some(order_id), done, false);
        Ok(())
    }

    fn cancel_all(&mut self) -> Result<Vec<String>, BrokerError> {
        let at = self.stamp(self.now);
        if let Some(e) = self.call_fails(Call::CancelAll) {
            self.record_cancel(at, None, vec![], true);
            return Err(e);
        }
        let open = self.open.clone();
        let mut done = vec![];
        for i in open {
            done.push(self.orders[i].order.id.clone());
            self.end_order(i, OrderStatus::Canceled, self.now);
        }
        let n = self.ledger.cancels.len() as u64;
        let key = [2000, n];
        if self.cfg.faults.hit(Fault::LostReply, &key) {
            self.record_cancel(at, None, done, true);
            return Err(self.unavailable(&key));
        }
        self.record_cancel(at, None, done.clone(), false);
        Ok(done)
    }

    fn record_cancel(
        &mut self,
        at: i64,
        id: Option<&str>,
        canceled: Vec<String>,
        unavailable: bool,
    ) {
        self.ledger.cancels.push(CancelRecord {
            at: time_us(at),
            order_id: id.map(str::to_string),
            canceled,
            unavailable,
        });
    }

    fn account(&self) -> Account {
        let mv = self.market_value();
        Account {
            id: format!("sim-{}", self.cfg.name),
            status: "ACTIVE".into(),
            currency: "USD".into(),
            cash: self.cash,
            equity: self.cash + mv,
            buying_power: self.buying_power(),
            last_equity: Some(self.last_equity.unwrap_or(self.cfg.cash)),
            long_market_value: Some(mv),
            trading_blocked: false,
            account_blocked: false,
            trade_suspended_by_user: false,
        }
    }

    fn clock(&self) -> MarketClock {
        let now = self.now;
        let d = calendar::ny_date(now);
        let today = calendar::session(d).filter(|s| now < s.close);
        let (is_open, next_open, next_close) = match today {
            Some(s) if now >= s.open => (
                true,
                calendar::next_session(d).map_or(MAX_TS, |n| n.open),
                s.close,
            ),
            Some(s) => (false, s.open, s.close),
            None => match calendar::next_session(d) {
                Some(n) => (false, n.open, n.close),
                None => (false, MAX_TS, MAX_TS),
            },
        };
        MarketClock {
            now: time_s(now),
            is_open,
            next_open: time_s(next_open),
            next_close: time_s(next_close),
        }
    }

    fn orders(&self, q: &OrderQuery) -> Vec<Order> {
        // Orders are kept in creation order and stamps only grow, so those created after `after` are
        // a suffix (of all orders, or of each symbol's index): found by bisection, not by a scan.
        let after = |i: &usize| {
            q.after
                .is_some_and(|a| self.orders[*i].order.created_at <= a)
        };
        let mut picked: Vec<usize> = if q.symbols.is_empty() {
            let from = self
                .orders
                .partition_point(|o| q.after.is_some_and(|a| o.order.created_at <= a));
            (from..self.orders.len()).collect()
        } else {
            let mut v = Vec::new();
            for s in &q.symbols {
                if let Some(ix) = self.orders_of.get(&s.to_ascii_uppercase()) {
                    v.extend_from_slice(&ix[ix.partition_point(after)..]);
                }
            }
            if q.symbols.len() > 1 {
                v.sort_unstable();
                v.dedup();
            }
            v
        };
        picked.retain(|&i| {
            let o = &self.orders[i].order;
            let status = match q.status {
                OrderFilter::Open => !o.status.is_final(),
                OrderFilter::Closed => o.status.is_final(),
                OrderFilter::All => true,
            };
            status && q.until.is_none_or(|u| o.created_at <= u)
        });
        picked
            .into_iter()
            .map(|i| self.orders[i].order.clone())
            .collect()
    }

    /// The executions after `after` (of `symbol` only, when given), oldest first: a suffix of the
    /// time-ordered ledger (or of the symbol's index), found by bisection.
    fn executions(&self, symbol: Option<&str>, after: Option<DateTime<Utc>>) -> Vec<Execution> {
        let all = &self.ledger.executions;
        let later = |k: &usize| after.is_some_and(|a| all[*k].execution.time <= a);
        match symbol {
            None => {
                let from = all.partition_point(|e| after.is_some_and(|a| e.execution.time <= a));
                all[from..].iter().map(|e| e.execution.clone()).collect()
            }
            Some(s) => match self.executions_of.get(&s.to_ascii_uppercase()) {
                Some(ix) => ix[ix.partition_point(later)..]
                    .iter()
                    .map(|&k| all[k].execution.clone())
                    .collect(),
                None => Vec::new(),
            },
        }
    }

    fn positions(&self) -> Vec<Position> {
        self.positions
            .iter()
            .map(|(s, p)| self.position(s, p))
            .collect()
    }

    fn position(&self, s: &str, p: &Pos) -> Position {
        let px = self.last_close_dec(s);
        Position {
            symbol: s.to_string(),
            qty: p.qty,
            avg_entry_price: p.avg,
            market_value: px.map(|px| p.qty * px),
            current_price: px,
        }
    }
}

#[async_trait]
impl Broker for SimBroker {
    fn name(&self) -> &str {
        &self.name
    }

    async fn account(&self) -> Result<Account, BrokerError> {
        let mut st = self.lock();
        if let Some(e) = st.call_fails(Call::Account) {
            return Err(e);
        }
        Ok(st.account())
    }

    async fn clock(&self) -> Result<MarketClock, BrokerError> {
        let mut st = self.lock();
        if let Some(e) = st.call_fails(Call::Clock) {
            return Err(e);
        }
        Ok(st.clock())
    }

    async fn calendar(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarDay>, BrokerError> {
        if let Some(e) = self.lock().call_fails(Call::Calendar) {
            return Err(e);
        }
        Ok(calendar::sessions(from, to)
            .into_iter()
            .map(|s| CalendarDay {
                date: s.date,
                open: time_s(s.open),
                close: time_s(s.close),
            })
            .collect())
    }

    async fn asset(&self, symbol: &str) -> Result<Asset, BrokerError> {
        if let Some(e) = self.lock().call_fails(Call::Asset) {
            return Err(e);
        }
        let sym = Symbol::new(symbol).map_err(|_| BrokerError::NotFound {
            what: format!("asset {symbol:?}"),
        })?;
        Ok(Asset {
            symbol: sym.as_str().to_string(),
            status: "active".into(),
            tradable: true,
            fractionable: true,
            min_order_size: None,
            min_trade_increment: None,
        })
    }

    async fn submit(&self, req: &OrderRequest) -> Result<Order, BrokerError> {
        self.lock().submit(req)
    }

    async fn order_by_client_id(
        &self,
        client_order_id: &str,
    ) -> Result<Option<Order>, BrokerError> {
        let mut st = self.lock();
        if let Some(e) = st.call_fails(Call::OrderByClientId) {
            return Err(e);
        }
        Ok(st
            .by_client
            .get(client_order_id)
            .map(|&i| st.orders[i].order.clone()))
    }

    async fn orders(&self, q: &OrderQuery) -> Result<Vec<Order>, BrokerError> {
        let mut st = self.lock();
        if let Some(e) = st.call_fails(Call::Orders) {
            return Err(e);
        }
        Ok(st.orders(q))
    }

    async fn cancel(&self, order_id: &str) -> Result<(), BrokerError> {
        self.lock().cancel(order_id)
    }

    async fn cancel_all(&self) -> Result<Vec<String>, BrokerError> {
        self.lock().cancel_all()
    }

    async fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        let mut st = self.lock();
        if let Some(e) = st.call_fails(Call::Positions) {
            return Err(e);
        }
        Ok(st.positions())
    }

    async fn positions_of(&self, symbol: &str) -> Result<Vec<Position>, BrokerError> {
        let mut st = self.lock();
        if let Some(e) = st.call_fails(Call::Positions) {
            return Err(e);
        }
        let sym = symbol.to_ascii_uppercase();
        Ok(st
            .positions
            .get(&sym)
            .map(|p| st.position(&sym, p))
            .into_iter()
            .collect())
    }

    async fn executions(
        &self,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<Execution>, BrokerError> {
        let mut st = self.lock();
        if let Some(e) = st.call_fails(Call::Executions) {
            return Err(e);
        }
        Ok(st.executions(None, after))
    }

    async fn executions_of(
        &self,
        symbol: &str,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<Execution>, BrokerError> {
        let mut st = self.lock();
        if let Some(e) = st.call_fails(Call::Executions) {
            return Err(e);
        }
        Ok(st.executions(Some(symbol), after))
    }

    async fn trade_updates(&self) -> Result<TradeUpdates, BrokerError> {
        let mut st = self.lock();
        if let Some(e) = st.call_fails(Call::TradeUpdates) {
            return Err(e);
        }
        Ok(TradeUpdates::new(st.streams.subscribe_trades()))
    }
}

#[async_trait]
impl MarketData for SimBroker {
    async fn subscribe_bars(&self, symbols: &[String]) -> Result<BarUpdates, BrokerError> {
        let mut st = self.lock();
        if let Some(e) = st.call_fails(Call::SubscribeBars) {
            return Err(e);
        }
        Ok(BarUpdates::new(st.streams.subscribe_bars(symbols)))
    }

    async fn bars(
        &self,
        symbol: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Bar>, BrokerError> {
        let mut st = self.lock();
        if let Some(e) = st.call_fails(Call::Bars) {
            return Err(e);
        }
        let (f, t) = (from.timestamp(), to.timestamp());
        Ok(st
            .symbols
            .get(&symbol.to_ascii_uppercase())
            .map(|b| {
                // Bars are handed over in strictly increasing time (on_bar refuses others).
                let from = b.bars.partition_point(|b| b.ts < f);
                b.bars[from..]
                    .iter()
                    .take_while(|b| b.ts < t)
                    .copied()
                    .collect()
            })
            .unwrap_or_default())
    }
}
