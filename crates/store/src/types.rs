//! The rows the store reads and writes.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use vectura_core::Side;

/// The outcome of the last fetch of one symbol-day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DayState {
    /// Bars are stored for the day.
    Fetched,
    /// The provider has no bars for the day (a holiday, a halt, before the listing).
    Closed,
    /// Every fetch so far failed; the day is a gap.
    Failed,
}

impl DayState {
    /// The value in `bt_day_status.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            DayState::Fetched => "fetched",
            DayState::Closed => "closed",
            DayState::Failed => "failed",
        }
    }

    /// Parses a `bt_day_status.status` value.
    pub fn parse(s: &str) -> Option<DayState> {
        match s {
            "fetched" => Some(DayState::Fetched),
            "closed" => Some(DayState::Closed),
            "failed" => Some(DayState::Failed),
            _ => None,
        }
    }
}

/// One `bt_day_status` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayStatus {
    pub state: DayState,
    /// The last failure's message (kept while the state is `Failed`; set again by a failed re-fetch of a
    /// day already fetched or closed, which keeps its state).
    pub error: Option<String>,
    /// Failed fetch attempts so far.
    pub attempts: u64,
    pub updated_at: Option<DateTime<Utc>>,
}

/// What is stored for one symbol (a `bt_symbol_ranges` row with counts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolRange {
    pub symbol: String,
    /// The first and last day with stored bars (a hull: days in between may be gaps, see `gaps`).
    pub have_from: Option<NaiveDate>,
    pub have_to: Option<NaiveDate>,
    /// The first day the provider has data for, once searched.
    pub first_available_day: Option<NaiveDate>,
    /// Days with stored bars.
    pub days_stored: u64,
    /// Days marked closed (no bars at the provider).
    pub days_closed: u64,
    /// Days whose every fetch failed so far.
    pub days_failed: u64,
    /// Bars over all stored days.
    pub bars: u64,
}

/// A session day with neither stored bars nor a `closed` mark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub day: NaiveDate,
    /// Failed fetch attempts so far (0: never tried).
    pub attempts: u64,
    pub last_error: Option<String>,
}

/// The grid parameters of one symbol (`at_algo_config`), percentages as in the form (2 = 2 %).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlgoConfig {
    pub capital_pct: f64,
    pub buy_below_pct: f64,
    pub sell_above_pct: f64,
    pub buy_after_sell_pct: f64,
    pub cash_floor: f64,
    /// −1 turns joining off.
    pub order_gap_pct: f64,
}

/// One executed trade (`at_trade_history`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradeRecord {
    pub id: String,
    pub timestamp: DateTime<Utc>,
    pub side: Side,
    pub shares: f64,
    pub price: f64,
    /// For a sell: the id of the lot (buy) it closed.
    pub close_trade_id: Option<String>,
}

/// A buy trigger (`at_to_buy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuyTrigger {
    pub id: String,
    pub at_price: f64,
    /// `below` or `higher`, as the original wrote it.
    pub below_or_higher: String,
}

/// A sell trigger for one lot (`at_to_sell`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SellTrigger {
    pub id: String,
    pub at_price: f64,
    pub below_or_higher: String,
    pub shares: f64,
    /// The lot (`at_open_trades.id`) this trigger sells.
    pub trade_id: String,
}

/// One symbol's armed triggers, each list by price ascending (as the original read them).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Triggers {
    pub buys: Vec<BuyTrigger>,
    pub sells: Vec<SellTrigger>,
}

/// An open lot (`at_open_trades`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenLot {
    pub id: String,
    pub timestamp: DateTime<Utc>,
    pub price: f64,
    pub shares: f64,
}

/// An order, stored as an intent before it is submitted (`at_orders`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRow {
    /// The deterministic id sent to the broker (see `vectura_core::IntentId::client_order_id`).
    pub client_order_id: String,
    pub symbol: String,
    pub side: Side,
    pub qty: f64,
    /// The trader's status word (for example `intent`, `submitted`, `partially_filled`, `filled`,
    /// `cancelled`, `rejected`).
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub broker_order_id: Option<String>,
    pub filled_qty: f64,
    pub filled_avg_price: Option<f64>,
    /// The full intent (for example a serialised `vectura_core::OrderIntent`), for reconciliation.
    pub intent: Option<serde_json::Value>,
    /// Why the broker rejected or ended the order, when it did.
    pub error: Option<String>,
}

/// A broker report on a stored order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderUpdate {
    pub status: String,
    /// Kept as stored when `None`.
    pub broker_order_id: Option<String>,
    pub filled_qty: f64,
    pub filled_avg_price: Option<f64>,
    /// Replaces the stored error (`None` clears it).
    pub error: Option<String>,
}

/// A symbol's live-trading summary (`at_trade_summary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradeSummary {
    pub max_cash: f64,
    pub max_equity: f64,
    pub splits_last_updated_at: Option<NaiveDate>,
    /// The split list as last fetched (JSON array).
    pub splits: serde_json::Value,
    /// The day-trade days (JSON array).
    pub pdt_days: serde_json::Value,
    pub session_start: Option<DateTime<Utc>>,
    pub session_end: Option<DateTime<Utc>>,
}

/// Where a sweep run stands (`sweep_runs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SweepStatus {
    /// Started; rows may still be arriving.
    Running,
    /// Every set's row is stored.
    Done,
    /// Stopped by an error; the rows stored so far stay.
    Failed,
}

impl SweepStatus {
    /// The value in `sweep_runs.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            SweepStatus::Running => "running",
            SweepStatus::Done => "done",
            SweepStatus::Failed => "failed",
        }
    }

    /// Parses a `sweep_runs.status` value.
    pub fn parse(s: &str) -> Option<SweepStatus> {
        match s {
            "running" => Some(SweepStatus::Running),
            "done" => Some(SweepStatus::Done),
            "failed" => Some(SweepStatus::Failed),
            _ => None,
        }
    }
}

/// What a new sweep run records before its first row (see `Store::create_sweep_run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSweepRun {
    /// The swept symbols (checked and upper-cased when stored).
    pub symbols: Vec<String>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    /// The fill model's name (for example `NextOpen`).
    pub fill: String,
    /// The sweep plan (base parameters, axes, sampling) as JSON.
    pub plan: serde_json::Value,
    /// Sets in the plan: the rows a finished run holds.
    pub set_count: u64,
}

/// One stored sweep run (`sweep_runs`), with the number of result rows stored so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRun {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub symbols: Vec<String>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub fill: String,
    pub plan: serde_json::Value,
    pub set_count: u64,
    pub status: SweepStatus,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why a failed run stopped.
    pub error: Option<String>,
    /// Result rows stored for the run.
    pub rows_stored: u64,
}

/// One parameter set's result (`sweep_results`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    /// The set's index in the plan (rows are read back in this order).
    pub set_index: u64,
    /// The set's parameters, a JSON object keyed by `at_algo_config` column names.
    pub params: serde_json::Value,
    /// The set's metrics, a JSON object keyed by metric name.
    pub metrics: serde_json::Value,
}

/// A sweep's results by column: what its heat maps and best-set tables read, without the rows'
/// JSON. Row `i` of every column is the set `set_index[i]` (set order).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepColumns {
    pub set_index: Vec<u64>,
    /// Each row's market: an index into `markets` ([`market_of`] of its parameters).
    pub market: Vec<u32>,
    pub markets: Vec<String>,
    /// Each numeric parameter (all but `set`), one value per row (none where a row lacks it).
    pub params: std::collections::BTreeMap<String, Vec<Option<f64>>>,
    /// Each numeric metric, one value per row (none where a row lacks it).
    pub metrics: std::collections::BTreeMap<String, Vec<Option<f64>>>,
}

/// The market a sweep row ran on: its parameters' `symbol`, `start_date` and `end_date`, or `all`.
pub fn market_of(params: &serde_json::Value) -> String {
    let s = |k: &str| {
        params
            .get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
    };
    let m = format!("{} {} {}", s("symbol"), s("start_date"), s("end_date"));
    let m = m.trim().to_string();
    if m.is_empty() {
        "all".to_string()
    } else {
        m
    }
}

impl SweepColumns {
    /// The columns of `rows` (in the order given).
    pub fn from_rows(rows: &[SweepResult]) -> SweepColumns {
        use serde_json::Value;
        let n = rows.len();
        let mut c = SweepColumns {
            set_index: Vec::with_capacity(n),
            market: Vec::with_capacity(n),
            ..SweepColumns::default()
        };
        let mut market_ids: std::collections::HashMap<String, u32> = Default::default();
        for (i, r) in rows.iter().enumerate() {
            c.set_index.push(r.set_index);
            let m = market_of(&r.params);
            let next = c.markets.len() as u32;
            let id = *market_ids.entry(m.clone()).or_insert_with(|| {
                c.markets.push(m);
                next
            });
            c.market.push(id);
            let put = |cols: &mut std::collections::BTreeMap<String, Vec<Option<f64>>>,
                       k: &String,
                       v: f64| {
                if let Some(col) = cols.get_mut(k) {
                    col[i] = Some(v);
                } else {
                    let mut col = vec![None; n];
                    col[i] = Some(v);
                    cols.insert(k.clone(), col);
                }
            };
            if let Value::Object(p) = &r.params {
                for (k, v) in p {
                    if k != "set" {
                        if let Some(f) = v.as_f64() {
                            put(&mut c.params, k, f);
                        }
                    }
                }
            }
            if let Value::Object(m) = &r.metrics {
                for (k, v) in m {
                    if let Some(f) = v.as_f64() {
                        put(&mut c.metrics, k, f);
                    }
                }
            }
        }
        c
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.set_index.len()
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.set_index.is_empty()
    }
}
