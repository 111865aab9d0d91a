//! Alpaca's trading API, emulated: one account per API key, orders with client-order-id uniqueness,
//! fills against the bars the market-data endpoints serve, positions, `FILL` activities, and the
//! order events the `trade_updates` stream sends.
//!
//! Accounting, kept simple on purpose: a cash account (multiplier 1, no margin, no shorting). Buying
//! power is cash minus what open buy orders reserve (qty × the price at submission, the limit price
//! for limit orders, the notional for notional orders): fractional orders are never marginable at
//! Alpaca, and here no order is, so fractional and whole-share orders are treated alike. A market order
//! can fill above the price it reserved at, so cash may end a few cents below zero. Equity is cash plus
//! every position marked at the close of its symbol's last closed bar.

pub(crate) mod bars;
pub(crate) mod engine;
pub(crate) mod routes;
pub(crate) mod wire;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
pub use vectura_core::Side;

use crate::clock::Micros;
use crate::synth::SplitMix;

/// A refusal the next submissions get instead of the normal checks (`status`, Alpaca's `code`, `message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub code: i64,
    pub message: String,
}

impl Rejection {
    /// 403 `{"code":40310000,"message":"insufficient buying power"}`.
    pub fn buying_power() -> Rejection {
        Rejection {
            status: 403,
            code: 40310000,
            message: "insufficient buying power".into(),
        }
    }

    /// 422 `{"code":42210000,"message":"potential wash trade detected. use complex orders"}`.
    pub fn wash_trade() -> Rejection {
        Rejection {
            status: 422,
            code: 42210000,
            message: "potential wash trade detected. use complex orders".into(),
        }
    }
}

/// What a route fault does to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Answers with this status before doing anything: a 5xx (JSON for 500, a load balancer's HTML
    /// page otherwise) or a 429 with `X-RateLimit-*` headers.
    Status(u16),
    /// Waits this long (real time), then serves the request normally.
    Delay(Duration),
    /// Never answers (the client times out).
    Hang,
    /// Sends the status line and headers, then breaks the connection mid-body.
    Drop,
}

/// A fault on every request whose method and path match, `times` more times (`None`: always).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteFault {
    /// `GET`, `POST`, `DELETE`…; `None` matches any method.
    pub method: Option<String>,
    /// A path prefix (`/v2/orders`, `/v2/account`, `/` for every route).
    pub path: String,
    pub action: FaultAction,
    pub times: Option<u32>,
}

impl RouteFault {
    /// A fault on every request under `path`, always.
    pub fn on(path: &str, action: FaultAction) -> RouteFault {
        RouteFault {
            method: None,
            path: path.into(),
            action,
            times: None,
        }
    }

    /// Limits the fault to `method`.
    pub fn method(mut self, method: &str) -> RouteFault {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Limits the fault to the next `n` matching requests.
    pub fn times(mut self, n: u32) -> RouteFault {
        self.times = Some(n);
        self
    }
}

/// What happens to the reply of a `POST /v2/orders` that created its order (the "lost reply").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReply {
    /// The order exists, but the reply is this status (a 5xx or 429).
    Status(u16),
    /// The order exists, and no reply ever comes.
    Hang,
    /// The order exists, and the connection breaks mid-reply.
    Drop,
    /// The order exists, and the reply comes this much (real time) later.
    Delay(Duration),
}

/// Faults of the trading API and the streams. `TradingFaults::default()` injects none.
///
/// Order of checks for a trading request: credentials (401), [`TradingFaults::rate_limit`] (429),
/// [`TradingFaults::routes`] (the first matching fault with uses left), then the handler. For
/// `POST /v2/orders` the handler then applies [`TradingFaults::reject_next`], the normal checks, and
/// after the order exists, [`TradingFaults::lost_reply`].
#[derive(Debug, Clone, Default)]
pub struct TradingFaults {
    /// Faults by route (any HTTP route of the emulator, market data included).
    pub routes: Vec<RouteFault>,
    /// The reply of a submission that created its order is lost, [`TradingFaults::lost_replies`] times.
    pub lost_reply: Option<LostReply>,
    /// How many submissions lose their reply (`None`: all while [`TradingFaults::lost_reply`] is set).
    pub lost_replies: Option<u32>,
    /// The next submissions are refused with these (one each), before any other check.
    pub reject_next: VecDeque<Rejection>,
    /// The next N orders are accepted, then rejected (status `rejected`, a `rejected` event) when
    /// they would have filled.
    pub reject_later: u32,
    /// Orders created while set fill in this many parts, one part per bar (each at its bar's open).
    pub partial_fills: Option<u32>,
    /// Orders created while set fill no earlier than this much emulator time after they arrived.
    pub fill_delay: Option<Duration>,
    /// Orders created while set stay `new`: they never fill (until cancelled or expired).
    pub hold_new: bool,
    /// At most this many trading requests per key in any [`TradingFaults::rate_window`] (Alpaca: 200 a
    /// minute); more are 429 `{"code":42910000,"message":"rate limit exceeded"}`.
    pub rate_limit: Option<u32>,
    /// The rate-limit window (real time); `None` is Alpaca's minute.
    pub rate_window: Option<Duration>,
    /// WebSocket upgrades (both streams) are refused with 503 while set.
    pub refuse_streams: bool,
    /// A trade-stream connection that starts listening first gets the key's last N events again (the
    /// duplicates a client sees after a reconnect).
    pub duplicate_on_reconnect: Option<usize>,
    /// After [`crate::EmulatorHandle::drop_data_streams`], the dropped connection still counts against
    /// the key's one market-data connection for this long (real time): a new one gets 406.
    pub stale_after_drop: Option<Duration>,
    /// The SIP feed is not in any key's plan: `/v2/sip` answers 409 `insufficient subscription`.
    pub sip_not_in_plan: bool,
    /// Drops every stream connection this often (real time), as a flaky network does.
    pub drop_streams_every: Option<Duration>,
}

/// Settings of the trading emulator.
#[derive(Debug, Clone)]
pub struct TradingConfig {
    /// Cash of a new account (each key pair is an account, opened on its first request).
    pub initial_cash: Decimal,
    /// Send the pattern-day-trader fields Alpaca removed on 2026-07-06 (`pattern_day_trader`,
    /// `daytrade_count`, `daytrading_buying_power`): off by default.
    pub pdt_fields: bool,
    /// The `trade_updates` stream sends binary frames, as Alpaca's paper endpoint does (the live
    /// endpoint sends text). On by default.
    pub binary_frames: bool,
    /// Write every order request (`/v2/orders…` and position closes) as a JSON line to this file.
    pub orders_log: Option<PathBuf>,
    /// Symbols that can be traded; `None`: every symbol with a CSV or replay file, and any other valid
    /// symbol (synthetic bars) unless a replay is set.
    pub symbols: Option<BTreeSet<String>>,
    /// Replay files: (symbol, minute-bar CSV or CSV.gz). They drive the clock, the bars and the fills.
    pub replay: Vec<(String, PathBuf)>,
    /// Replay speed (emulator seconds per real second); default 1.
    pub speed: Option<f64>,
    /// Replay start (Unix seconds); default the first replayed bar's start.
    pub start: Option<i64>,
    /// Faults from the start.
    pub faults: TradingFaults,
    /// Days the built-in NYSE calendar opens that this venue keeps closed (an unscheduled closure,
    /// such as 2025-01-09's national day of mourning): `/v2/calendar` leaves them out and `/v2/clock`
    /// says closed. The replay's bars of such a day still fill orders sent anyway.
    pub closed_days: BTreeSet<chrono::NaiveDate>,
}

impl Default for TradingConfig {
    fn default() -> Self {
        TradingConfig {
            initial_cash: Decimal::from(100_000),
            pdt_fields: false,
            binary_frames: true,
            orders_log: None,
            symbols: None,
            replay: Vec::new(),
            speed: None,
            start: None,
            faults: TradingFaults::default(),
            closed_days: BTreeSet::new(),
        }
    }
}

/// How an order executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Market,
    Limit(Decimal),
}

/// One order, with the engine's bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub id: String,
    pub client_order_id: String,
    pub asset_id: String,
    pub symbol: String,
    pub side: Side,
    pub kind: Kind,
    pub tif: String,
    pub qty: Option<Decimal>,
    pub notional: Option<Decimal>,
    pub extended_hours: bool,
    pub status: &'static str,
    pub filled_qty: Decimal,
    /// Σ qty × price of the fills (the average price's numerator).
    pub filled_value: Decimal,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub submitted_at: Micros,
    pub filled_at: Option<Micros>,
    pub canceled_at: Option<Micros>,
    pub expired_at: Option<Micros>,
    pub failed_at: Option<Micros>,
    pub expires_at: Option<Micros>,
    /// When it reached the emulator (emulator time).
    pub arrival: Micros,
    /// The price buying power was reserved at (buys).
    pub reserve_price: Decimal,
    /// Parts still to fill (1: the rest at once).
    pub parts_left: u32,
    /// Bars starting before this (emulator time) are not considered for the next fill.
    pub cursor: Micros,
    /// Never fills ([`TradingFaults::hold_new`]).
    pub hold: bool,
    /// Rejected when due instead of filled ([`TradingFaults::reject_later`]).
    pub reject_when_due: bool,
}

impl Order {
    pub fn is_open(&self) -> bool {
        matches!(self.status, "new" | "partially_filled" | "accepted")
    }

    /// Shares still to fill (notional orders: unknown until priced, `None`).
    pub fn remaining(&self) -> Option<Decimal> {
        self.qty.map(|q| q - self.filled_qty)
    }

    /// Buying power this open buy order holds.
    pub fn reserved(&self) -> Decimal {
        if !self.is_open() || self.side != Side::Buy {
            return Decimal::ZERO;
        }
        match (self.qty, self.notional) {
            (Some(q), _) => (q - self.filled_qty) * self.reserve_price,
            (None, Some(n)) => (n - self.filled_value).max(Decimal::ZERO),
            (None, None) => Decimal::ZERO,
        }
    }
}

/// A position: shares and their total cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub qty: Decimal,
    pub cost: Decimal,
}

/// One `FILL` activity.
#[derive(Debug, Clone)]
pub(crate) struct Fill {
    /// `YYYYMMDDHHMMSSmmm::<execution id>`.
    pub id: String,
    pub order_id: String,
    pub symbol: String,
    pub side: Side,
    pub qty: Decimal,
    pub price: Decimal,
    pub cum_qty: Decimal,
    pub leaves_qty: Decimal,
    pub order_status: &'static str,
    pub partial: bool,
    pub at: Micros,
}

/// A message for a stream connection's task.
#[derive(Debug, Clone)]
pub(crate) enum StreamOut {
    /// JSON text of one message (trade stream) or of one array of messages (market data).
    Json(serde_json::Value),
    /// Close the socket without a close frame.
    Drop,
}

/// One account: an API key's cash, positions, orders, fills and stream connections.
pub(crate) struct Account {
    pub id: String,
    pub number: String,
    pub created_at: Micros,
    pub cash: Decimal,
    /// Equity at the last session close the emulator passed.
    pub last_equity: Decimal,
    pub positions: BTreeMap<String, Pos>,
    pub orders: Vec<Order>,
    pub by_id: HashMap<String, usize>,
    pub by_client: HashMap<String, usize>,
    pub fills: Vec<Fill>,
    /// Listening trade-stream connections.
    pub conns: Vec<(u64, UnboundedSender<StreamOut>)>,
    /// The last events sent (for [`TradingFaults::duplicate_on_reconnect`]).
    pub sent: VecDeque<serde_json::Value>,
}

/// One market-data stream connection.
pub(crate) struct MdConn {
    pub id: u64,
    pub key: String,
    pub sip: bool,
    pub bars: BTreeSet<String>,
    pub tx: UnboundedSender<StreamOut>,
}

/// One order request, as `--orders-log` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderRequestRecord {
    /// Wall-clock time of arrival (RFC 3339).
    pub time: String,
    /// Emulator time of arrival.
    pub emulator_time: String,
    /// The API key id (never the secret).
    pub key: Option<String>,
    pub method: String,
    pub path: String,
    pub client_order_id: Option<String>,
    pub order_id: Option<String>,
    /// The status answered; `None` when no reply was sent (a hang).
    pub status: Option<u16>,
    /// Whether this request created an order.
    pub created: bool,
    /// What happened (`created`, `duplicate`, `rejected: …`, `fault …`, `canceled`, `found`, …).
    pub outcome: String,
}

/// Everything the trading emulator keeps.
pub(crate) struct Trading {
    pub cfg: TradingConfig,
    pub faults: TradingFaults,
    pub accounts: HashMap<String, Account>,
    /// Events (bars, fills, closes) are processed up to this emulator time.
    pub processed: Micros,
    /// The last stamp handed out (stamps strictly increase).
    pub last_stamp: Micros,
    pub rng: SplitMix,
    pub next_conn: u64,
    pub md_conns: Vec<MdConn>,
    /// Per symbol: bars closing at or before this were published on the market-data stream.
    pub md_cursor: HashMap<String, Micros>,
    /// Keys whose dropped market-data connection still counts until then.
    pub md_stale: HashMap<String, Instant>,
    pub requests: Vec<OrderRequestRecord>,
    pub log_file: Option<std::fs::File>,
    /// Trading requests per key, for [`TradingFaults::rate_limit`] and the headers.
    pub recent: HashMap<String, VecDeque<Instant>>,
    pub last_drop: Instant,
}

impl Trading {
    pub fn new(cfg: TradingConfig, seed: u64, now: Micros) -> std::io::Result<Trading> {
        let log_file = match &cfg.orders_log {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| {
                        std::io::Error::new(e.kind(), format!("--orders-log {}: {e}", p.display()))
                    })?,
            ),
            None => None,
        };
        Ok(Trading {
            faults: cfg.faults.clone(),
            cfg,
            accounts: HashMap::new(),
            processed: now,
            last_stamp: 0,
            rng: SplitMix(seed ^ 0x0DDE_5EED),
            next_conn: 0,
            md_conns: Vec::new(),
            md_cursor: HashMap::new(),
            md_stale: HashMap::new(),
            requests: Vec::new(),
            log_file,
            recent: HashMap::new(),
            last_drop: Instant::now(),
        })
    }

    /// A time stamp at `now`, strictly after every earlier one.
    pub fn stamp(&mut self, now: Micros) -> Micros {
        self.last_stamp = now.max(self.last_stamp + 1);
        self.last_stamp
    }

    /// Records an order request (and appends it to `--orders-log`).
    pub fn record(&mut self, rec: OrderRequestRecord) {
        if let Some(f) = &mut self.log_file {
            use std::io::Write;
            if let Ok(line) = serde_json::to_string(&rec) {
                // One write per line, so a reader never sees half a record.
                let _ = f.write_all(format!("{line}\n").as_bytes());
                let _ = f.flush();
            }
        }
        self.requests.push(rec);
    }

    /// The account of `key`, opened with the initial cash on first use.
    pub fn account(&mut self, key: &str, now: Micros) -> &mut Account {
        if !self.accounts.contains_key(key) {
            let id = self.rng.uuid();
            let number = format!("PA{:010}", self.rng.next_u64() % 10_000_000_000);
            let cash = self.cfg.initial_cash;
            self.accounts.insert(
                key.to_string(),
                Account {
                    id,
                    number,
                    created_at: now,
                    cash,
                    last_equity: cash,
                    positions: BTreeMap::new(),
                    orders: Vec::new(),
                    by_id: HashMap::new(),
                    by_client: HashMap::new(),
                    fills: Vec::new(),
                    conns: Vec::new(),
                    sent: VecDeque::new(),
                },
            );
        }
        self.accounts.get_mut(key).expect("inserted above")
    }
}

/// Events kept per account for [`TradingFaults::duplicate_on_reconnect`].
pub(crate) const SENT_KEPT: usize = 256;

impl Account {
    /// Sends a `trade_updates` event to every listening connection.
    pub fn emit(&mut self, data: serde_json::Value) {
        let msg = serde_json::json!({ "stream": "trade_updates", "data": data });
        self.conns
            .retain(|(_, tx)| tx.send(StreamOut::Json(msg.clone())).is_ok());
        self.sent.push_back(msg);
        while self.sent.len() > SENT_KEPT {
            self.sent.pop_front();
        }
    }
}
