//! `vectura backtest`: every field of the original form as a flag, plus data, session, fill and
//! output options, mapped onto a [`BacktestRequest`] and run as a job; this module prints.

use crate::progress::Spinner;
use anyhow::{bail, Result};
use chrono::NaiveDate;
use clap::ValueEnum;
use std::io::Write;
use std::path::PathBuf;
use vectura_backtest::{FillModel, PdtMode};
use vectura_jobs::backtest::{fill_flag, BacktestRequest, Compat, Session, StrategyKind};
use vectura_jobs::{JobContext, JobOutcome};

/// Which input bars are traded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SessionArg {
    /// 09:30–16:00 America/New_York on NYSE sessions (13:00 on early closes).
    Regular,
    /// Pre-market (from 04:00), regular and post-market (to 20:00) on NYSE sessions.
    Extended,
    /// Every bar given.
    All,
}

/// Fill models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FillArg {
    /// Decided and filled at the bar's close (the original's model).
    Close,
    /// Decided on the close, filled at the next bar's open (the default).
    NextOpen,
    /// Triggers fire when the bar's range reaches them, filled at the trigger (or the open beyond it).
    Touch,
}

/// Compatibility modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompatArg {
    /// Reproduce the original TypeScript engine's results bit for bit.
    #[value(name = "vectura-v1")]
    VecturaV1,
}

/// Strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    Grid,
    SmaCross,
}

/// PDT rule choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PdtArg {
    /// FINRA's rule for bars before 2026-07-06 only.
    Auto,
    On,
    Off,
}

/// Flags of `vectura backtest` (the original form's fields in kebab case, with its defaults).
#[derive(clap::Args, Debug, Clone)]
pub struct BacktestArgs {
    /// Ticker; picks the rows of a file with a Symbol column. Default: the bundled data's SPY.
    /// A backtest takes one; `vectura sweep` takes it repeated, one market per symbol.
    // A list, so that `vectura sweep`, which flattens these flags, can take several; `prepare`
    // refuses more than one.
    #[arg(long)]
    pub symbol: Vec<String>,
    /// First day (YYYY-MM-DD). Default: the first day of the data.
    #[arg(long)]
    pub start_date: Option<NaiveDate>,
    /// Last day, inclusive (YYYY-MM-DD). Default: the last day of the data.
    #[arg(long)]
    pub end_date: Option<NaiveDate>,
    /// Starting cash, dollars: 0 to 1e12.
    #[arg(long, default_value_t = 1000.0)]
    pub start_capital: f64,
    /// Deposit every N days, a whole number from 0 (none) to 36500; the first falls N days after the
    /// start date.
    #[arg(long, default_value_t = 7.0)]
    pub contribution_frequency_days: f64,
    /// Dollars per deposit: 0 (none) to 1e9.
    #[arg(long, default_value_t = 500.0)]
    pub contribution_amount: f64,
    /// Percent of current cash used per buy: above 0, at most 100.
    #[arg(long, default_value_t = 60.0)]
    pub capital_pct: f64,
    /// Percent below a fill for the next "below" buy trigger: above 0, at most 100.
    #[arg(long, default_value_t = 2.0)]
    pub buy_below_pct: f64,
    /// Percent above a buy for that lot's sell trigger: above 0, at most 100.
    #[arg(long, default_value_t = 18.0)]
    pub sell_above_pct: f64,
    /// Percent above a sell for the "buy higher" trigger: above 0, at most 100.
    #[arg(long, default_value_t = 25.0)]
    pub buy_after_sell_pct: f64,
    /// Dollars a buy may not dip into: 0 to 1e12.
    #[arg(long, default_value_t = 200.0)]
    pub cash_floor: f64,
    /// Join gap for buy triggers, percent from 0 to 100; -1 turns joining off.
    #[arg(long, default_value_t = 1.5, allow_hyphen_values = true)]
    pub order_gap_pct: f64,
    /// Which bars are traded. `regular` and `extended` need the NYSE calendar's session times,
    /// checked for 1990–2035 only: intraday bars outside those years are refused with them (use
    /// `all`). Daily bars and `all` run for any year, with a note on stderr outside them.
    #[arg(long, value_enum, default_value = "regular")]
    pub session: SessionArg,
    /// Fill model (default next-open; close under --compat).
    #[arg(long, value_enum)]
    pub fill: Option<FillArg>,
    /// Reproduce another engine's results.
    #[arg(long, value_enum)]
    pub compat: Option<CompatArg>,
    /// Strategy.
    #[arg(long, value_enum, default_value = "grid")]
    pub strategy: StrategyArg,
    /// SMA cross: bars in the fast average, at least 1 and below --slow.
    #[arg(long, default_value_t = 10)]
    pub fast: usize,
    /// SMA cross: bars in the slow average, above --fast and at most 100000.
    #[arg(long, default_value_t = 20)]
    pub slow: usize,
    /// Bar file(s): CSV or CSV.gz with a header row; several files are joined in time order.
    #[arg(long)]
    pub data: Vec<PathBuf>,
    /// Time zone of zone-less timestamps in --data (default UTC), e.g. America/New_York.
    #[arg(long)]
    pub tz: Option<String>,
    /// Splits to apply to the raw bars: CSV with columns date,ratio (ratio 2 or 2:1 for a 2-for-1).
    #[arg(long)]
    pub splits: Option<PathBuf>,
    /// Reject inconsistent bars (high below open/close) instead of widening them.
    #[arg(long)]
    pub strict: bool,
    /// Pattern-day-trader rule.
    #[arg(long, value_enum, default_value = "auto")]
    pub pdt: PdtArg,
    /// Commission per order, dollars: 0 to 1e6.
    #[arg(long, default_value_t = 0.0)]
    pub commission_per_order: f64,
    /// Commission per share, dollars: 0 to 1000.
    #[arg(long, default_value_t = 0.0)]
    pub commission_per_share: f64,
    /// Commission, percent of the notional: 0 up to, not including, 100.
    #[arg(long, default_value_t = 0.0)]
    pub commission_pct: f64,
    /// Adverse slippage, basis points of the fill price: 0 up to, not including, 10000 (100 %).
    #[arg(long, default_value_t = 0.0)]
    pub slippage_bps: f64,
    /// Share decimals of the grid's sizing, 0 to 9 (4 as the original; 0 for whole shares).
    #[arg(long, default_value_t = 4)]
    pub share_decimals: u32,
    /// Print the full result as JSON (full f64 precision).
    #[arg(long)]
    pub json: bool,
    /// Write a self-contained HTML report.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

impl BacktestArgs {
    /// The job's request; `record_series` when the result is printed as JSON or reported. A
    /// backtest takes one `--symbol` (a sweep maps the repeated flag itself).
    pub fn to_request(&self) -> Result<BacktestRequest> {
        if self.symbol.len() > 1 {
            bail!(
                "--symbol given {} times ({}): a backtest runs one symbol; give one --symbol, or use `vectura sweep` for several",
                self.symbol.len(),
                self.symbol.join(", ")
            );
        }
        Ok(self.request_for(self.symbol.first().cloned()))
    }

    /// The request with `symbol` (the other fields as the flags give them).
    pub fn request_for(&self, symbol: Option<String>) -> BacktestRequest {
        BacktestRequest {
            symbol,
            start_date: self.start_date,
            end_date: self.end_date,
            start_capital: self.start_capital,
            contribution_frequency_days: self.contribution_frequency_days,
            contribution_amount: self.contribution_amount,
            capital_pct: self.capital_pct,
            buy_below_pct: self.buy_below_pct,
            sell_above_pct: self.sell_above_pct,
            buy_after_sell_pct: self.buy_after_sell_pct,
            cash_floor: self.cash_floor,
            order_gap_pct: self.order_gap_pct,
            session: match self.session {
                SessionArg::Regular => Session::Regular,
                SessionArg::Extended => Session::Extended,
                SessionArg::All => Session::All,
            },
            fill: self.fill.map(|f| match f {
                FillArg::Close => FillModel::Close,
                FillArg::NextOpen => FillModel::NextOpen,
                FillArg::Touch => FillModel::Touch,
            }),
            compat: self.compat.map(|c| match c {
                CompatArg::VecturaV1 => Compat::VecturaV1,
            }),
            strategy: match self.strategy {
                StrategyArg::Grid => StrategyKind::Grid,
                StrategyArg::SmaCross => StrategyKind::SmaCross,
            },
            fast: self.fast,
            slow: self.slow,
            data: self.data.clone(),
            tz: self.tz.clone(),
            splits: self.splits.clone(),
            strict: self.strict,
            pdt: match self.pdt {
                PdtArg::Auto => PdtMode::Auto,
                PdtArg::On => PdtMode::On,
                PdtArg::Off => PdtMode::Off,
            },
            commission_per_order: self.commission_per_order,
            commission_per_share: self.commission_per_share,
            commission_pct: self.commission_pct,
            slippage_bps: self.slippage_bps,
            share_decimals: self.share_decimals,
            record_series: self.report.is_some() || self.json,
        }
    }
}

/// Runs `vectura backtest`.
pub fn run(args: &BacktestArgs, out: &mut dyn Write) -> Result<()> {
    let req = args.to_request()?;
    let rt = crate::env::runtime()?;
    let mut ctx = JobContext::new(rt.handle().clone());
    let spinner = Spinner::new();
    ctx.progress = spinner.sink();
    let outcome = vectura_jobs::backtest::run(&req, &ctx);
    spinner.finish();
    let done = match outcome? {
        JobOutcome::Done(d) => d,
        // Nothing cancels a CLI backtest (no signal handler is installed for it).
        JobOutcome::Cancelled(c) => bail!("{}", c.reason),
    };
    if let Some(note) = &done.calendar_note {
        eprintln!("note: {note}");
    }
    if let Some(path) = &args.report {
        vectura_jobs::out_file::OutFile::write_all(
            path,
            "--report",
            vectura_report::render_html(&done.doc).as_bytes(),
        )?;
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &done.doc)?;
        writeln!(out)?;
    } else {
        print_summary(out, &done.result, &done.sources)?;
        if let Some(w) = done.widened.message() {
            writeln!(out, "note: {w}")?;
        }
        if let Some(p) = &args.report {
            writeln!(out, "report: {}", p.display())?;
        }
    }
    Ok(())
}

fn print_summary(
    out: &mut dyn Write,
    r: &vectura_backtest::BacktestResult,
    sources: &[String],
) -> Result<()> {
    // A metric without a value (a ratio over no deviation, a trade statistic without a closed lot).
    let opt = |v: Option<f64>, unit: &str| match v {
        Some(x) => format!("{x:.2}{unit}"),
        None => "—".to_string(),
    };
    let m = &r.metrics;
    writeln!(
        out,
        "{} {} backtest, {} to {}, fill {}{}",
        r.symbol,
        r.strategy,
        r.start_date,
        r.end_date,
        fill_flag(r.fill),
        r.compat
            .map(|c| format!(", compat {c}"))
            .unwrap_or_default()
    )?;
    writeln!(out, "data: {}", sources.join(", "))?;
    writeln!(out, "bars processed      {:>14}", r.bars_processed)?;
    writeln!(out, "trades              {:>14}", m.total_trades)?;
    writeln!(out, "invested cash       {:>14.2}", r.invested_cash)?;
    writeln!(out, "final equity        {:>14.2}", r.final_equity)?;
    writeln!(out, "final cash          {:>14.2}", r.final_cash)?;
    writeln!(out, "time-weighted (deposits removed):")?;
    writeln!(
        out,
        "  return            {:>14.2} %  CAGR {}",
        m.time_weighted_return_pct,
        opt(m.cagr_pct, " %")
    )?;
    writeln!(
        out,
        "  max drawdown      {:>14.2} %  volatility {:.2} %",
        m.time_weighted_max_drawdown_pct, m.volatility_pct
    )?;
    writeln!(
        out,
        "  sharpe / sortino  {:>14} / {}  calmar {}",
        opt(m.sharpe, ""),
        opt(m.sortino, ""),
        opt(m.calmar, "")
    )?;
    writeln!(
        out,
        "closed lots         {:>14}  win rate {}  profit factor {}  avg holding {}",
        m.closed_trades,
        opt(m.win_rate_pct, " %"),
        opt(m.profit_factor, ""),
        opt(m.average_holding_days, " days")
    )?;
    writeln!(
        out,
        "the original's figures (vectura-v1 formulas on raw equity: deposits count as gains):"
    )?;
    writeln!(
        out,
        "  total return      {:>14.2}  ({:+.2} % of invested cash)",
        m.total_return, m.total_return_pct
    )?;
    writeln!(
        out,
        "  max drawdown      {:>14.2}  ({:.2} %)",
        m.maximum_drawdown_dollar, m.maximum_drawdown_pct
    )?;
    let best = format!("{:+.2} %", m.best_month_return_pct);
    writeln!(
        out,
        "  best / worst month{best:>14}  / {:+.2} %",
        m.worst_month_return_pct
    )?;
    writeln!(
        out,
        "  buy & hold        {:>14.2}  (strategy {:+.2} %)",
        m.buy_hold_final_equity, m.buy_hold_percentage_difference
    )?;
    writeln!(
        out,
        "run time            {:>14.6} s  ({:.0} bars/s)",
        r.timing.run_seconds, r.timing.bars_per_second
    )?;
    Ok(())
}
