//! `vectura backtest`: every field of the original form as a flag, plus data, session, fill and output options.

use crate::{bundled, report};
use anyhow::{anyhow, bail, Context, Result};
use chrono::NaiveDate;
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vectura_backtest::{BacktestConfig, Commission, Contributions, FillModel, PdtMode};
use vectura_core::calendar::{self, SessionPart};
use vectura_core::split::{apply_splits, Split};
use vectura_core::time::date_utc;
use vectura_core::{BarSeries, Symbol};
use vectura_data::csv::{load_csv_path, load_csv_reader, LoadOptions, Loaded};
use vectura_strategy::grid::{Grid, GridMode, GridParams};
use vectura_strategy::sma::{SmaCross, SmaParams};

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

/// Bars with where they came from.
struct Input {
    series: BarSeries,
    symbol: String,
    sources: Vec<String>,
    widened: Widened,
    /// The store's splits of the symbol, applied at read time (bars come from the store raw).
    splits: Vec<Split>,
}

/// The `--tz` flag: an IANA zone name, or `None` for UTC.
pub fn parse_tz(tz: Option<&str>) -> Result<Option<chrono_tz::Tz>> {
    tz.map(|z| {
        z.parse::<chrono_tz::Tz>().map_err(|_| {
            anyhow!(
                "--tz {z:?} is not a time zone: give an IANA name such as America/New_York or UTC"
            )
        })
    })
    .transpose()
}

/// The raw bars and splits of `symbol` from the store, when it holds any (`None` otherwise, and
/// when the default SQLite file does not exist yet).
fn load_from_store(
    symbol: &str,
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
) -> Result<Option<(BarSeries, Vec<Split>, String)>> {
    crate::env::load_dotenv()?;
    let loc = crate::env::database_url(false)?;
    if !loc.exists() {
        return Ok(None);
    }
    let rt = crate::env::runtime()?;
    let res = rt.block_on(async {
        let store = vectura_store::Store::open(&loc.url)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let out = async {
            let Some(r) = store
                .range(symbol)
                .await
                .map_err(|e| anyhow!("{e}"))?
                .filter(|r| r.days_stored > 0)
            else {
                return Ok(None);
            };
            let (Some(a), Some(b)) = (from.or(r.have_from), to.or(r.have_to)) else {
                return Ok(None);
            };
            // A day either side: the date filter after loading picks the exact days.
            let bars = store
                .load(
                    symbol,
                    a - chrono::Duration::days(1),
                    b + chrono::Duration::days(1),
                )
                .await
                .map_err(|e| anyhow!("{e}"))?;
            let splits = store.splits(symbol).await.map_err(|e| anyhow!("{e}"))?;
            Ok::<_, anyhow::Error>(Some((bars, splits)))
        }
        .await;
        store.close().await;
        out
    })?;
    let what = match &loc.file {
        Some(f) => format!("store {}", f.display()),
        None => "store DATABASE_URL".to_string(),
    };
    Ok(res.map(|(b, s)| (b, s, what)))
}

fn symbol_from_file(path: &Path) -> Option<String> {
    let stem = path.file_name()?.to_str()?;
    let head = stem.split(['_', '-', '.']).next()?;
    Symbol::new(head).ok().map(|s| s.to_string())
}

/// The inconsistent bars a load widened: how many, and where the first few were (`file:line`).
#[derive(Debug, Clone, Default)]
pub struct Widened {
    pub count: usize,
    pub at: Vec<String>,
}

impl Widened {
    /// How many `at` keeps: enough to find the rows, not a flood.
    pub const SHOWN: usize = 5;

    /// Adds a file's widened bars (`lines` are its first widened lines, 1-based).
    pub fn add(&mut self, file: &str, count: usize, lines: &[u64]) {
        self.count += count;
        for l in lines {
            if self.at.len() < Self::SHOWN {
                self.at.push(format!("{file}:{l}"));
            }
        }
    }

    /// The sentence that reports them (README: widened bars are reported with their lines), or
    /// `None` when none was widened.
    pub fn message(&self) -> Option<String> {
        (self.count > 0).then(|| {
            let more = if self.count > self.at.len() { ", …" } else { "" };
            format!(
                "{} inconsistent bar{} widened to include {} open and close (--strict rejects them): {}{more}",
                self.count,
                if self.count == 1 { " was" } else { "s were" },
                if self.count == 1 { "its" } else { "their" },
                self.at.join(", ")
            )
        })
    }
}

fn join_loaded(name: &str, acc: &mut Option<(BarSeries, Widened)>, l: Loaded) -> Result<()> {
    match acc {
        None => {
            let mut w = Widened::default();
            w.add(name, l.widened, &l.widened_lines);
            *acc = Some((l.series, w));
        }
        Some((s, w)) => {
            w.add(name, l.widened, &l.widened_lines);
            if let (Some(&last), Some(&first)) = (s.ts.last(), l.series.ts.first()) {
                if first <= last {
                    bail!(
                        "{name} starts at {} but the previous file ends at {}: give --data files in time order without overlap",
                        vectura_core::time::rfc3339(first),
                        vectura_core::time::rfc3339(last)
                    );
                }
            }
            for i in 0..l.series.len() {
                s.push(l.series.get(i))
                    .map_err(|e| anyhow!("{name}: {e}"))?;
            }
        }
    }
    Ok(())
}

fn load(args: &BacktestArgs) -> Result<Input> {
    let tz = parse_tz(args.tz.as_deref())?;
    let opts = LoadOptions {
        symbol: args.symbol.first().cloned(),
        tz,
        strict: args.strict,
    };
    let mut acc = None;
    let mut sources = vec![];
    let mut file_symbol = None;
    if args.data.is_empty() {
        if let Some(s) = args.symbol.first() {
            let sym = Symbol::new(s).map_err(|e| anyhow!("--symbol: {e}"))?;
            if let Some((series, splits, what)) =
                load_from_store(sym.as_str(), args.start_date, args.end_date)?
            {
                if series.is_empty() {
                    bail!("the {what} holds no bars of {sym} between the dates asked: `vectura data ranges` shows what it holds");
                }
                return Ok(Input {
                    series,
                    symbol: sym.to_string(),
                    sources: vec![what],
                    widened: Widened::default(),
                    splits,
                });
            }
            if !s.eq_ignore_ascii_case(bundled::SYMBOL) {
                bail!(
                    "no bars for --symbol {s}: the store holds none and the bundled data holds {} only; run `vectura data fetch {s} --from YYYY-MM-DD` or pass --data FILE with {s}'s bars",
                    bundled::SYMBOL
                );
            }
        }
        let opts = LoadOptions {
            symbol: None,
            ..opts
        };
        for (name, bytes) in bundled::FILES {
            let l = load_csv_reader(name, *bytes, &opts)?;
            join_loaded(name, &mut acc, l)?;
            sources.push(name.to_string());
        }
        file_symbol = Some(bundled::SYMBOL.to_string());
    } else {
        for p in &args.data {
            let name = p.display().to_string();
            let l = load_csv_path(p, &opts)?;
            if file_symbol.is_none() {
                file_symbol = l.symbol.clone().or_else(|| symbol_from_file(p));
            }
            join_loaded(&name, &mut acc, l)?;
            sources.push(name);
        }
    }
    let (series, widened) = acc.ok_or_else(|| anyhow!("no bars loaded"))?;
    let symbol = match args.symbol.first() {
        Some(s) => Symbol::new(s)
            .map_err(|e| anyhow!("--symbol: {e}"))?
            .to_string(),
        None => file_symbol.unwrap_or_else(|| "UNKNOWN".into()),
    };
    Ok(Input {
        series,
        symbol,
        sources,
        widened,
        splits: Vec::new(),
    })
}

fn load_splits(path: &Path) -> Result<Vec<Split>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --splits {}", path.display()))?;
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty()
            || (i == 0 && line.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        {
            continue;
        }
        let mut parts = line.split(',').map(str::trim);
        let (Some(d), Some(r)) = (parts.next(), parts.next()) else {
            bail!(
                "{} line {}: expected date,ratio (e.g. 2020-08-31,4): fix the row",
                path.display(),
                i + 1
            );
        };
        let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
            anyhow!(
                "{} line {}, column 1: {d:?} is not a YYYY-MM-DD date",
                path.display(),
                i + 1
            )
        })?;
        let ratio = match r.split_once(':') {
            Some((a, b)) => match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(a), Ok(b)) if b != 0.0 => a / b,
                _ => f64::NAN,
            },
            None => r.parse::<f64>().unwrap_or(f64::NAN),
        };
        let s = Split {
            effective: date,
            ratio,
        };
        s.validate()
            .map_err(|e| anyhow!("{} line {}, column 2: {e}", path.display(), i + 1))?;
        out.push(s);
    }
    Ok(out)
}

fn progress(msg: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    if std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or(ProgressStyle::default_spinner()),
        );
        pb.enable_steady_tick(Duration::from_millis(100));
    } else {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_message(msg.to_string());
    pb
}

/// Loaded bars and the run's configuration, shared by `backtest` and `sweep`.
pub struct Prepared {
    pub bars: BarSeries,
    pub cfg: BacktestConfig,
    pub params: GridParams,
    pub symbol: String,
    pub sources: Vec<String>,
    pub bars_loaded: usize,
    pub widened: Widened,
    pub load_seconds: f64,
    pub progress: ProgressBar,
}

/// Loads and cuts the bars and builds the configuration from the flags.
pub fn prepare(args: &BacktestArgs) -> Result<Prepared> {
    let compat = args.compat == Some(CompatArg::VecturaV1);
    let fill = match (args.fill, compat) {
        (Some(FillArg::Close), _) | (None, true) => FillModel::Close,
        (Some(FillArg::NextOpen), _) | (None, false) => FillModel::NextOpen,
        (Some(FillArg::Touch), _) => FillModel::Touch,
    };
    let f = args.contribution_frequency_days;
    if !(f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= 36_500.0) {
        bail!(
            "--contribution-frequency-days is {f}: give a whole number of days from 0 (no deposits) to 36500"
        );
    }
    let params = GridParams {
        capital_pct: args.capital_pct,
        buy_below_pct: args.buy_below_pct,
        sell_above_pct: args.sell_above_pct,
        buy_after_sell_pct: args.buy_after_sell_pct,
        cash_floor: args.cash_floor,
        order_gap_pct: args.order_gap_pct,
    };
    params.validate().map_err(|e| anyhow!("--{e}"))?;
    if args.symbol.len() > 1 {
        bail!(
            "--symbol given {} times ({}): a backtest runs one symbol; give one --symbol, or use `vectura sweep` for several",
            args.symbol.len(),
            args.symbol.join(", ")
        );
    }
    if args.share_decimals > 9 {
        bail!("--share-decimals is {}: give 0 to 9 (4 as the original, 9 as Alpaca's fractional orders)", args.share_decimals);
    }
    if let (Some(s), Some(e)) = (args.start_date, args.end_date) {
        if e < s {
            bail!("--end-date {e} is before --start-date {s}: give an end on or after the start");
        }
    }
    let pb = progress("loading bars");
    let t0 = Instant::now();
    let mut input = load(args)?;
    // A --splits file replaces the store's list.
    let splits = match &args.splits {
        Some(p) => load_splits(p)?,
        None => std::mem::take(&mut input.splits),
    };
    if !splits.is_empty() {
        apply_splits(&mut input.series, &splits, calendar::session_open_ts);
    }
    // Which bars are traded: the session filter, then the dates.
    let s = &input.series;
    let daily = s.daily;
    check_calendar_years(s, args)?;
    let sessioned = match args.session {
        _ if daily => s.clone(),
        SessionArg::All => s.clone(),
        SessionArg::Regular => s.filter(|i| calendar::classify(s.ts[i]) == SessionPart::Regular),
        SessionArg::Extended => s.filter(|i| calendar::classify(s.ts[i]) != SessionPart::Closed),
    };
    let day_of = |ts: i64| {
        if compat {
            date_utc(ts)
        } else {
            calendar::ny_date(ts)
        }
    };
    if sessioned.is_empty() {
        bail!(
            "no bars of {} fall in the {:?} session: try --session all",
            input.sources.join(", "),
            args.session
        );
    }
    let first_day = day_of(sessioned.ts[0]);
    let last_day = day_of(sessioned.ts[sessioned.len() - 1]);
    // A date given alone outside the data is named itself, not the default that stands opposite it.
    let span = || {
        format!(
            "the data ({}) spans {first_day} to {last_day}",
            input.sources.join(", ")
        )
    };
    match (args.start_date, args.end_date) {
        (Some(s), None) if s > last_day => bail!(
            "--start-date {s} is after the last day of the data: {}; give a --start-date on or before {last_day}",
            span()
        ),
        (None, Some(e)) if e < first_day => bail!(
            "--end-date {e} is before the first day of the data: {}; give an --end-date on or after {first_day}",
            span()
        ),
        _ => {}
    }
    let start = args.start_date.unwrap_or(first_day);
    let end = args.end_date.unwrap_or(last_day);
    if end < start {
        bail!("--end-date {end} is before --start-date {start}: give an end on or after the start");
    }
    let bars = sessioned.filter(|i| {
        let d = day_of(sessioned.ts[i]);
        d >= start && d <= end
    });
    if bars.is_empty() {
        bail!(
            "no bars between {start} and {end}: the data spans {first_day} to {last_day}; pick dates inside it"
        );
    }
    let load_seconds = t0.elapsed().as_secs_f64();

    let mut cfg = BacktestConfig::new(&input.symbol, start, end);
    cfg.start_capital = args.start_capital;
    cfg.contributions = (f > 0.0 && args.contribution_amount > 0.0).then_some(Contributions {
        every_days: f as u32,
        amount: args.contribution_amount,
    });
    if !(args.contribution_amount.is_finite() && args.contribution_amount >= 0.0) {
        bail!(
            "--contribution-amount is {}: give a dollar amount from 0 to 1e9 per deposit",
            args.contribution_amount
        );
    }
    cfg.fill = fill;
    cfg.compat_v1 = compat;
    cfg.pdt = match args.pdt {
        PdtArg::Auto => PdtMode::Auto,
        PdtArg::On => PdtMode::On,
        PdtArg::Off => PdtMode::Off,
    };
    cfg.commission = Commission {
        per_order: args.commission_per_order,
        per_share: args.commission_per_share,
        pct: args.commission_pct,
    };
    cfg.slippage_bps = args.slippage_bps;
    cfg.share_scale = vectura_core::qty::scale_for(if compat { 4 } else { args.share_decimals });
    cfg.benchmark_cash_floor = args.cash_floor;
    cfg.record_series = args.report.is_some() || args.json;
    cfg.validate().map_err(|e| anyhow!("{e}"))?;
    Ok(Prepared {
        bars,
        cfg,
        params,
        symbol: input.symbol.clone(),
        sources: input.sources.clone(),
        bars_loaded: input.series.len(),
        widened: input.widened,
        load_seconds,
        progress: pb,
    })
}

/// A fill model as `--fill` spells it (`next-open`), for what the user reads.
pub fn fill_flag(f: FillModel) -> &'static str {
    match f {
        FillModel::Close => "close",
        FillModel::NextOpen => "next-open",
        FillModel::Touch => "touch",
    }
}

/// The session filter keeps or drops intraday bars by the calendar's session times, which are
/// checked for [`calendar::FIRST_YEAR`]..=[`calendar::LAST_YEAR`] only (before 1985-09-30 the NYSE
/// opened at 10:00, not 09:30): `--session regular|extended` on intraday bars outside those years
/// is refused. Daily bars and `--session all` use the calendar only to stamp daily bars at 09:30
/// New York and to count pattern-day-trader days, so they run, with a note on stderr.
fn check_calendar_years(s: &BarSeries, args: &BacktestArgs) -> Result<()> {
    // Only the bars inside --start-date/--end-date matter.
    let days: Vec<NaiveDate> =
        s.ts.iter()
            .map(|&t| calendar::ny_date(t))
            .filter(|d| {
                args.start_date.is_none_or(|a| *d >= a) && args.end_date.is_none_or(|b| *d <= b)
            })
            .collect();
    let (Some(&first), Some(&last)) = (days.first(), days.last()) else {
        return Ok(());
    };
    let outside = [first, last].into_iter().find(|d| !calendar::covers(*d));
    let Some(date) = outside else {
        return Ok(());
    };
    let err = calendar::OutsideCalendar { date };
    if !s.daily && args.session != SessionArg::All {
        let flag = format!("{:?}", args.session).to_lowercase();
        bail!("--session {flag} needs the NYSE calendar's session times, but {err} (--start-date/--end-date), or pass --session all to trade every bar as given");
    }
    eprintln!(
        "note: the bars run from {first} to {last}, outside the NYSE calendar's checked years {}–{}: there daily bars are stamped 09:30 New York and pattern-day-trader days follow today's holiday rules",
        calendar::FIRST_YEAR,
        calendar::LAST_YEAR
    );
    Ok(())
}

/// Runs `vectura backtest`.
pub fn run(args: &BacktestArgs, out: &mut dyn Write) -> Result<()> {
    let Prepared {
        bars,
        cfg,
        params,
        symbol,
        sources,
        bars_loaded,
        widened,
        load_seconds,
        progress: pb,
    } = prepare(args)?;
    let compat = cfg.compat_v1;
    pb.set_message(format!("backtesting {} bars of {}", bars.len(), symbol));
    let t1 = Instant::now();
    let (mut result, params_json) = match args.strategy {
        StrategyArg::Grid => {
            let mode = GridMode {
                compat_v1: compat,
                share_scale: cfg.share_scale,
                record_lines: cfg.record_series,
            };
            let mut g = Grid::new(params, mode);
            (
                vectura_backtest::run(&bars, &mut g, &cfg)?,
                serde_json::to_value(params)?,
            )
        }
        StrategyArg::SmaCross => {
            let p = SmaParams {
                fast: args.fast,
                slow: args.slow,
            };
            let mut s = SmaCross::new(p)?;
            (
                vectura_backtest::run(&bars, &mut s, &cfg)?,
                serde_json::to_value(p)?,
            )
        }
    };
    let run_seconds = t1.elapsed().as_secs_f64();
    pb.finish_and_clear();
    result.timing.load_seconds = load_seconds;
    result.timing.run_seconds = run_seconds;
    result.timing.bars_per_second = if run_seconds > 0.0 {
        bars.len() as f64 / run_seconds
    } else {
        0.0
    };

    let mut doc = serde_json::to_value(&result)?;
    if let Some(o) = doc.as_object_mut() {
        o.insert("params".into(), params_json);
        o.insert(
            "data".into(),
            serde_json::json!({ "sources": sources, "bars_loaded": bars_loaded, "widened_bars": widened.count, "widened_at": widened.at, "session": format!("{:?}", args.session).to_lowercase() }),
        );
    }
    if let Some(path) = &args.report {
        write_atomic(path, report::render_html(&doc).as_bytes())?;
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        print_summary(out, &result, &sources)?;
        if let Some(w) = widened.message() {
            writeln!(out, "note: {w}")?;
        }
        if let Some(p) = &args.report {
            writeln!(out, "report: {}", p.display())?;
        }
    }
    Ok(())
}

/// Writes the report whole: a regular file through a temporary file and a rename (a failed run
/// leaves no partial report), a device or FIFO through, a symlink's target (see `OutFile`).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::out_file::OutFile::write_all(path, "--report", bytes)
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
