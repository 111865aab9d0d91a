//! The result record of a backtest, as the CLI prints it with `--json` and the report draws it.

use crate::metrics::Metrics;
use crate::series::Series;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize, Serializer};
use vectura_core::time::rfc3339;
use vectura_core::Side;
use vectura_strategy::grid::TriggerLine;

/// Serialises Unix seconds as RFC 3339 UTC text.
pub fn ser_time<S: Serializer>(ts: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ts))
}

fn ser_opt_time<S: Serializer>(ts: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ts {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

fn ser_times<S: Serializer>(ts: &[i64], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ts.iter().map(|t| rfc3339(*t)))
}

/// One executed trade.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trade {
    #[serde(rename = "time", serialize_with = "ser_time")]
    pub ts: i64,
    pub side: Side,
    pub shares: f64,
    pub price: f64,
    pub commission: f64,
    /// For a sell: the index in the trade list of the buy whose lot it closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closes_trade: Option<usize>,
    /// For a sell: profit of the closed shares after commissions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pnl: Option<f64>,
}

/// A deposit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deposit {
    #[serde(rename = "time", serialize_with = "ser_time")]
    pub ts: i64,
    pub amount: f64,
}

/// An open lot at the end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenLot {
    /// Index in the trade list of the buy that opened it.
    pub trade: usize,
    #[serde(rename = "time", serialize_with = "ser_time")]
    pub ts: i64,
    pub price: f64,
    pub shares: f64,
}

/// A trigger line for charts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub side: Side,
    pub price: f64,
    #[serde(serialize_with = "ser_time")]
    pub start: i64,
    #[serde(serialize_with = "ser_opt_time")]
    pub executed: Option<i64>,
}

impl From<&TriggerLine> for Line {
    fn from(l: &TriggerLine) -> Line {
        Line {
            side: l.side,
            price: l.price,
            start: l.start,
            executed: l.executed,
        }
    }
}

/// Chart series with RFC 3339 times, bucketed as [`crate::series`] says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartSeries {
    #[serde(serialize_with = "ser_times")]
    pub time: Vec<i64>,
    pub price: Vec<f64>,
    pub equity: Vec<f64>,
    pub cash: Vec<f64>,
    pub drawdown_pct: Vec<f64>,
    /// Seconds per bucket: each bucket keeps its first, last and extreme bars, every trade is a point.
    pub bucket_seconds: i64,
}

impl From<Series> for ChartSeries {
    fn from(s: Series) -> Self {
        ChartSeries {
            time: s.ts,
            price: s.price,
            equity: s.equity,
            cash: s.cash,
            drawdown_pct: s.drawdown_pct,
            bucket_seconds: s.bucket_seconds,
        }
    }
}

/// Where the time went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub bars_processed: u64,
    pub load_seconds: f64,
    pub run_seconds: f64,
    pub bars_per_second: f64,
}

/// Everything a backtest produces.
#[derive(Debug, Clone, Serialize)]
pub struct BacktestResult {
    pub symbol: String,
    pub strategy: &'static str,
    pub fill: crate::config::FillModel,
    pub compat: Option<&'static str>,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub start_capital: f64,
    /// Equity at the last bar's close (vectura-v1: before that bar's trades, as the original reports).
    pub final_equity: f64,
    pub final_cash: f64,
    /// Start capital plus every deposit.
    pub invested_cash: f64,
    /// Equity at the last bar's close after its trades.
    pub final_equity_post_trade: f64,
    /// Running maximum of tick-start equity (the original's `capital.max`).
    pub max_equity_state: f64,
    pub bars_processed: u64,
    pub metrics: Metrics,
    pub trades: Vec<Trade>,
    pub contributions: Vec<Deposit>,
    pub open_lots: Vec<OpenLot>,
    pub triggers: Vec<Line>,
    pub series: Option<ChartSeries>,
    /// The strategy's final state (triggers, lots, history); null when series are not recorded (sweeps).
    pub state: serde_json::Value,
    pub timing: Timing,
}
