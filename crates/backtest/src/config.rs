//! Backtest configuration: fill, cost, PDT and contribution models.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// When and at which price an intent fills (DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FillModel {
    /// Decided and filled at the bar's close (the original's model; optimistic).
    Close,
    /// Decided on the close, filled at the next bar's open, as a live order sent at the bar's close.
    NextOpen,
    /// A trigger fires when the bar's low/high reaches it and fills at the trigger, or at the open when
    /// the bar opened beyond it.
    Touch,
}

/// Which pattern-day-trader rule the simulated broker applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PdtMode {
    /// The FINRA rule for bars before 2026-07-06 (when it was replaced), none after.
    Auto,
    /// The FINRA rule on every bar.
    On,
    /// No PDT rule.
    Off,
}

/// Commission per fill: `per_order + per_share × qty + pct/100 × notional`, dollars.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Commission {
    pub per_order: f64,
    pub per_share: f64,
    pub pct: f64,
}

impl Commission {
    /// The commission for one fill.
    #[inline]
    pub fn of(&self, qty: f64, price: f64) -> f64 {
        if self.per_order == 0.0 && self.per_share == 0.0 && self.pct == 0.0 {
            return 0.0;
        }
        self.per_order + self.per_share * qty + self.pct / 100.0 * qty * price
    }
}

/// Periodic deposits (original §2.6): `amount` every `every_days` days from the start date.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Contributions {
    pub every_days: u32,
    pub amount: f64,
}

/// Everything the engine needs besides the bars and the strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestConfig {
    pub symbol: String,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub start_capital: f64,
    pub contributions: Option<Contributions>,
    pub fill: FillModel,
    pub pdt: PdtMode,
    /// `vectura-v1`: the original's PDT window, metric formulas and buy-and-hold quirk.
    pub compat_v1: bool,
    pub commission: Commission,
    /// Adverse slippage in basis points of the fill price.
    pub slippage_bps: f64,
    /// Share precision as a power of ten (1e4 = 4 decimals).
    pub share_scale: f64,
    /// Dollars the buy-and-hold benchmark keeps back (the grid's cash floor, as the original does).
    pub benchmark_cash_floor: f64,
    /// Record chart series and trigger lines (off in sweeps).
    pub record_series: bool,
    /// Maximum points per chart series.
    pub max_points: usize,
    /// Record runs of quiet bars with the SIMD kernel (off only to cross-check it against the per-bar path).
    pub kernel: bool,
}

impl BacktestConfig {
    /// Defaults of the original form (§6.2) for a symbol and date range.
    pub fn new(symbol: &str, start_date: NaiveDate, end_date: NaiveDate) -> Self {
        BacktestConfig {
            symbol: symbol.to_string(),
            start_date,
            end_date,
            start_capital: 1000.0,
            contributions: None,
            fill: FillModel::NextOpen,
            pdt: PdtMode::Auto,
            compat_v1: false,
            commission: Commission::default(),
            slippage_bps: 0.0,
            share_scale: 1e4,
            benchmark_cash_floor: 200.0,
            record_series: true,
            max_points: 2000,
            kernel: true,
        }
    }
}

/// A configuration the engine cannot run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("--end-date {end} is before --start-date {start}: give an end on or after the start")]
    EndBeforeStart { start: NaiveDate, end: NaiveDate },
    #[error("--start-capital is {0}: give a dollar amount of 0 or more")]
    StartCapital(f64),
    #[error("--contribution-amount is {0}: give a dollar amount of 0 or more")]
    ContributionAmount(f64),
    #[error("--compat vectura-v1 fills at the close: drop --fill or use --fill close")]
    CompatFill,
    #[error("{name} is {value}: give a finite number of 0 or more")]
    Cost { name: &'static str, value: f64 },
}

impl BacktestConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.end_date < self.start_date {
            return Err(ConfigError::EndBeforeStart {
                start: self.start_date,
                end: self.end_date,
            });
        }
        if !(self.start_capital.is_finite() && self.start_capital >= 0.0) {
            return Err(ConfigError::StartCapital(self.start_capital));
        }
        if let Some(c) = self.contributions {
            if !(c.amount.is_finite() && c.amount >= 0.0) {
                return Err(ConfigError::ContributionAmount(c.amount));
            }
        }
        if self.compat_v1 && self.fill != FillModel::Close {
            return Err(ConfigError::CompatFill);
        }
        for (name, value) in [
            ("--commission-per-order", self.commission.per_order),
            ("--commission-per-share", self.commission.per_share),
            ("--commission-pct", self.commission.pct),
            ("--slippage-bps", self.slippage_bps),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(ConfigError::Cost { name, value });
            }
        }
        Ok(())
    }
}
