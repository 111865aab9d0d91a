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

/// The largest start capital and cash floor, dollars (`--start-capital`, `--cash-floor`).
///
/// A trillion dollars is beyond any account, and keeps every amount the engine forms finite and exact to
/// the cent: with the deposits below, invested cash stays under 2 × 10¹³, where an f64 still resolves
/// 0.004 dollars.
pub const MAX_DOLLARS: f64 = 1e12;
/// The largest single deposit, dollars (`--contribution-amount`): a deposit a day for the calendar's
/// 46 years (1990–2035) adds at most 1.7 × 10¹³.
pub const MAX_DEPOSIT: f64 = 1e9;
/// The longest deposit interval, days (`--contribution-frequency-days`): a century.
pub const MAX_DEPOSIT_DAYS: u32 = 36_500;
/// The largest commission per order, dollars (`--commission-per-order`).
pub const MAX_COMMISSION_PER_ORDER: f64 = 1e6;
/// The largest commission per share, dollars (`--commission-per-share`).
pub const MAX_COMMISSION_PER_SHARE: f64 = 1e3;
/// The commission percentage stays below 100 (`--commission-pct`): at 100 % a sell returns nothing.
pub const MAX_COMMISSION_PCT: f64 = 100.0;
/// Slippage stays below 10 000 basis points (`--slippage-bps`): at 100 % a sell fills at a price of 0,
/// above it at a negative price.
pub const MAX_SLIPPAGE_BPS: f64 = 10_000.0;

/// A configuration the engine cannot run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("--end-date {end} is before --start-date {start}: give an end on or after the start")]
    EndBeforeStart { start: NaiveDate, end: NaiveDate },
    #[error("--compat vectura-v1 fills at the close: drop --fill or use --fill close")]
    CompatFill,
    /// A number outside its flag's documented range.
    #[error("{flag} is {}: {rule}", vectura_strategy::show_number(*.value))]
    Range {
        flag: &'static str,
        value: f64,
        rule: &'static str,
    },
}

/// `value` within `[0, max]` (or `[0, max)` when `open`), else the flag's range error.
fn in_range(
    flag: &'static str,
    value: f64,
    max: f64,
    open: bool,
    rule: &'static str,
) -> Result<(), ConfigError> {
    let ok = value.is_finite() && value >= 0.0 && if open { value < max } else { value <= max };
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Range { flag, value, rule })
    }
}

impl BacktestConfig {
    /// Checks the configuration: dates in order and every number in its flag's range (the constants
    /// above), so that no run can reach an infinite, NaN or negative price or amount.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.end_date < self.start_date {
            return Err(ConfigError::EndBeforeStart {
                start: self.start_date,
                end: self.end_date,
            });
        }
        in_range(
            "--start-capital",
            self.start_capital,
            MAX_DOLLARS,
            false,
            "give a dollar amount from 0 to 1e12",
        )?;
        if let Some(c) = self.contributions {
            in_range(
                "--contribution-amount",
                c.amount,
                MAX_DEPOSIT,
                false,
                "give a dollar amount from 0 to 1e9 per deposit",
            )?;
            in_range(
                "--contribution-frequency-days",
                c.every_days as f64,
                MAX_DEPOSIT_DAYS as f64,
                false,
                "give a whole number of days from 0 (no deposits) to 36500",
            )?;
        }
        if self.compat_v1 && self.fill != FillModel::Close {
            return Err(ConfigError::CompatFill);
        }
        in_range(
            "--commission-per-order",
            self.commission.per_order,
            MAX_COMMISSION_PER_ORDER,
            false,
            "give dollars from 0 to 1e6",
        )?;
        in_range(
            "--commission-per-share",
            self.commission.per_share,
            MAX_COMMISSION_PER_SHARE,
            false,
            "give dollars from 0 to 1000",
        )?;
        in_range(
            "--commission-pct",
            self.commission.pct,
            MAX_COMMISSION_PCT,
            true,
            "give a percentage from 0 up to, not including, 100",
        )?;
        in_range(
            "--slippage-bps",
            self.slippage_bps,
            MAX_SLIPPAGE_BPS,
            true,
            "give basis points from 0 up to, not including, 10000 (100 %)",
        )?;
        in_range(
            "--cash-floor",
            self.benchmark_cash_floor,
            MAX_DOLLARS,
            false,
            "give a dollar amount from 0 to 1e12",
        )?;
        if !(self.share_scale >= 1.0 && self.share_scale <= 1e9 && self.share_scale.fract() == 0.0)
        {
            return Err(ConfigError::Range {
                flag: "--share-decimals",
                value: self.share_scale.log10(),
                rule: "give 0 to 9 decimals",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BacktestConfig {
        let d = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        BacktestConfig::new("T", d, d)
    }

    /// Checks that `set` with each of `bad` is refused naming `flag`, and with each of `good` accepted.
    fn range(flag: &str, set: fn(&mut BacktestConfig, f64), good: &[f64], bad: &[f64]) {
        for &v in good {
            let mut c = cfg();
            set(&mut c, v);
            assert_eq!(c.validate(), Ok(()), "{flag} {v}");
        }
        for &v in bad {
            let mut c = cfg();
            set(&mut c, v);
            let e = c.validate().unwrap_err();
            assert!(
                matches!(e, ConfigError::Range { flag: f, .. } if f == flag),
                "{flag} {v}: {e}"
            );
            assert!(e.to_string().starts_with(flag), "{e}");
        }
    }

    #[test]
    fn every_number_has_a_range() {
        let nan = f64::NAN;
        let inf = f64::INFINITY;
        range(
            "--start-capital",
            |c, v| c.start_capital = v,
            &[0.0, 1000.0, 1e12],
            &[-1.0, 1.000_001e12, 1e308, nan, inf],
        );
        range(
            "--contribution-amount",
            |c, v| {
                c.contributions = Some(Contributions {
                    every_days: 7,
                    amount: v,
                })
            },
            &[0.0, 500.0, 1e9],
            &[-10.0, 1.1e9, 1e308, nan, inf],
        );
        range(
            "--contribution-frequency-days",
            |c, v| {
                c.contributions = Some(Contributions {
                    every_days: v as u32,
                    amount: 500.0,
                })
            },
            &[0.0, 1.0, 36_500.0],
            &[36_501.0, u32::MAX as f64],
        );
        range(
            "--commission-per-order",
            |c, v| c.commission.per_order = v,
            &[0.0, 1.0, 1e6],
            &[-0.01, 1.1e6, nan, inf],
        );
        range(
            "--commission-per-share",
            |c, v| c.commission.per_share = v,
            &[0.0, 0.005, 1000.0],
            &[-0.01, 1000.5, nan],
        );
        range(
            "--commission-pct",
            |c, v| c.commission.pct = v,
            &[0.0, 0.1, 99.99],
            &[-1.0, 100.0, 150.0, nan],
        );
        range(
            "--slippage-bps",
            |c, v| c.slippage_bps = v,
            &[0.0, 5.0, 9_999.0],
            &[-1.0, 10_000.0, 20_000.0, nan, inf],
        );
        range(
            "--cash-floor",
            |c, v| c.benchmark_cash_floor = v,
            &[0.0, 200.0, 1e12],
            &[-5.0, 2e12, nan],
        );
        range(
            "--share-decimals",
            |c, v| c.share_scale = v,
            &[1.0, 1e4, 1e9],
            &[0.5, 1e10, 1e12, nan],
        );
    }

    #[test]
    fn huge_values_are_shown_short() {
        let mut c = cfg();
        c.start_capital = 1e308;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "--start-capital is 1e308: give a dollar amount from 0 to 1e12"
        );
        use vectura_strategy::show_number as show;
        assert_eq!(show(20_000.0), "20000");
        assert_eq!(show(-1.5), "-1.5");
        assert_eq!(show(f64::NAN), "NaN");
        assert_eq!(show(1e-300), "1e-300");
    }

    #[test]
    fn dates_and_compat_are_checked() {
        let mut c = cfg();
        c.end_date = c.start_date - chrono::Duration::days(1);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::EndBeforeStart { .. })
        ));
        let mut c = cfg();
        c.compat_v1 = true;
        assert_eq!(c.validate(), Err(ConfigError::CompatFill));
        c.fill = FillModel::Close;
        assert_eq!(c.validate(), Ok(()));
    }
}
