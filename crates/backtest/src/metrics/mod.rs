//! Result metrics, one per file with its formula and tests. The original's (§2.9), computed in its exact
//! arithmetic order on raw equity, where deposits count as gains; and ours, on the time-weighted index
//! (deposits removed), annualised, and over closed trades. [`Tracker`] gathers bar by bar what they need.
//!
//! A ratio has no value (`None`: null in JSON, "—" in text and HTML, an empty CSV cell, a Parquet null)
//! when its denominator is zero or indistinguishable from zero by the rounding of the time-weighted index
//! ([`daily::DailyReturns::noise_floor`], [`calmar::drawdown_noise_floor`]); a trade statistic has none
//! when no lot was closed.

pub mod cagr;
pub mod calmar;
pub mod daily;
pub mod holding;
pub mod profit_factor;
pub mod sharpe;
pub mod sortino;
mod tracker;
pub mod volatility;
pub mod win_rate;

pub use tracker::{ceil_days, gallop, Span, Tracker};

use serde::{Deserialize, Serialize};

/// Trading days per year, for annualising daily figures.
pub const TRADING_DAYS: f64 = 252.0;
/// Average days per month used by the original (365.25 / 12).
pub const DAYS_PER_MONTH: f64 = 30.4375;

/// Trade statistics the engine collects from closed lots.
#[derive(Debug, Clone, Copy, Default)]
pub struct TradeStats {
    pub closed: u64,
    pub wins: u64,
    pub gross_profit: f64,
    pub gross_loss: f64,
    pub holding_secs: f64,
}

/// What the finished run hands the metrics.
#[derive(Debug, Clone, Copy)]
pub struct RunTotals {
    pub start_capital: f64,
    pub final_equity: f64,
    /// Start capital plus every deposit.
    pub invested: f64,
    pub trades: u64,
    /// Whole days from the start date to the end date, plus one.
    pub inclusive_days: i64,
    /// Unix seconds of the end date's 00:00 UTC (where an open drawdown period ends, as in the original).
    pub end_midnight: i64,
    /// Calendar days the money was at work: from the first bar (from the first deposit when the start
    /// capital is 0) to the last bar.
    pub span_days: f64,
    pub buy_hold_final: f64,
}

/// Every metric of a run.
///
/// The first group are the original's figures (`--compat vectura-v1` reproduces them bit for bit): they
/// read raw equity, so a deposit counts as a gain (a month with a deposit shows it as return, and a
/// deposit can hide a drawdown). The second group are ours, with deposits removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    // ---- the original's (§2.9): raw equity, deposits count as gains ----
    /// The original's: finalEquity − investedCash.
    pub total_return: f64,
    /// The original's: finalEquity / investedCash × 100 − 100 (not time-weighted).
    pub total_return_pct: f64,
    /// The original's: (Σ_bars (eq − cash)/eq / bars) × 100.
    pub average_invested_capital_pct: f64,
    /// The original's: highest post-trade equity (deposits included), at least the start capital.
    pub maximum_equity: f64,
    /// The original's: largest fall of raw equity from its peak, percent (a deposit can hide a fall).
    pub maximum_drawdown_pct: f64,
    /// The original's: largest fall of raw equity from its peak, dollars.
    pub maximum_drawdown_dollar: f64,
    /// The original's: longest stretch from a bar at or below the raw-equity peak to the next new peak,
    /// ceil(days).
    pub longest_drawdown_days: i64,
    pub total_trades: u64,
    /// The original's: trades / (inclusive days / 30.4375).
    pub average_trades_per_month: f64,
    /// The original's: best month-end to month-end change of raw equity, percent: deposits count as gains.
    pub best_month_return_pct: f64,
    /// The original's: worst month-end to month-end change of raw equity, percent: deposits count as gains.
    pub worst_month_return_pct: f64,
    /// The original's: total_return_pct / |maximum_drawdown_pct| (0 without a drawdown).
    pub return_max_drawdown_ratio: f64,
    /// The original's buy-and-hold benchmark (it buys with every deposit too).
    pub buy_hold_final_equity: f64,
    /// The original's: finalEquity − buy-and-hold final value.
    pub buy_hold_dollar_difference: f64,
    /// The original's: (finalEquity − bh) / bh × 100.
    pub buy_hold_percentage_difference: f64,
    // ---- ours: deposits removed ----
    /// Time-weighted return: the product of sub-period growth between deposits, minus one, percent. The
    /// first sub-period starts with the first money (the first deposit when the start capital is 0).
    pub time_weighted_return_pct: f64,
    /// Compound annual growth of the time-weighted index over the calendar span ([`cagr`]); null when
    /// the extrapolation to a year overflows.
    pub cagr_pct: Option<f64>,
    /// Standard deviation of daily index returns (sample), × √252, percent ([`volatility`]); 0 when it is
    /// within the index's rounding.
    pub volatility_pct: f64,
    /// Mean daily return / its standard deviation × √252, risk-free rate 0 ([`sharpe`]); null when the
    /// deviation is zero or within rounding.
    pub sharpe: Option<f64>,
    /// Mean daily return / downside deviation × √252 ([`sortino`]); null when nothing fell.
    pub sortino: Option<f64>,
    /// CAGR / maximum drawdown of the time-weighted index ([`calmar`]); null without a drawdown (or
    /// without a CAGR).
    pub calmar: Option<f64>,
    /// Largest peak-to-trough fall of the time-weighted index, percent (0 within rounding).
    pub time_weighted_max_drawdown_pct: f64,
    /// Share of bars with a position, percent.
    pub exposure_pct: f64,
    /// Closed lots sold above their cost, percent of closed lots ([`win_rate`]); null with none closed.
    pub win_rate_pct: Option<f64>,
    /// Gross profit / gross loss over closed lots ([`profit_factor`]); null when nothing was lost.
    pub profit_factor: Option<f64>,
    /// Mean time from a lot's buy to its sell, days ([`holding`]); null with none closed.
    pub average_holding_days: Option<f64>,
    pub closed_trades: u64,
}
