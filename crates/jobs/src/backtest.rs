//! A backtest job: the request (every field of the original form, plus data, session, fill and
//! cost options), loading and cutting its bars ([`prepare`], shared with sweeps), and running it
//! ([`run`]) into the result document that `--json` prints and the report renders.

use crate::{bundled, JobContext, JobError, JobOutcome, Stage, StoreAccess};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use vectura_backtest::{BacktestConfig, Commission, Contributions, FillModel, PdtMode};
use vectura_core::calendar::{self, SessionPart};
use vectura_core::split::{apply_splits, Split};
use vectura_core::time::date_utc;
use vectura_core::{BarSeries, Symbol};
use vectura_data::csv::{load_csv_path, load_csv_reader, LoadOptions, Loaded};
use vectura_strategy::grid::{Grid, GridMode, GridParams};
use vectura_strategy::sma::{SmaCross, SmaParams};

type Result<T, E = JobError> = std::result::Result<T, E>;

/// Refuses the request: `field` is the request field at fault, the message names its flag and the fix.
macro_rules! refuse {
    ($field:expr, $($arg:tt)*) => {
        return Err(JobError::invalid($field, format!($($arg)*)))
    };
}

/// Which input bars are traded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Session {
    /// 09:30–16:00 America/New_York on NYSE sessions (13:00 on early closes).
    Regular,
    /// Pre-market (from 04:00), regular and post-market (to 20:00) on NYSE sessions.
    Extended,
    /// Every bar given.
    All,
}

impl Session {
    /// The name as `--session` spells it (`regular`), also the result document's `data.session`.
    pub fn as_str(self) -> &'static str {
        match self {
            Session::Regular => "regular",
            Session::Extended => "extended",
            Session::All => "all",
        }
    }
}

/// Compatibility modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compat {
    /// Reproduce the original TypeScript engine's results bit for bit.
    #[serde(rename = "vectura-v1")]
    VecturaV1,
}

/// Strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyKind {
    /// The grid strategy (the original's).
    Grid,
    /// The SMA cross (long only, whole shares, all in).
    SmaCross,
}

/// A backtest as asked: the original form's fields with its defaults ([`Default`]), and ours.
/// Field names are `vectura backtest`'s flags in snake case; errors name the flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BacktestRequest {
    /// Ticker; picks the rows of a file with a Symbol column, or the store's bars without `data`.
    /// `None`: the file's symbol, or the bundled SPY bars.
    pub symbol: Option<String>,
    /// First day. `None`: the first day of the data.
    pub start_date: Option<NaiveDate>,
    /// Last day, inclusive. `None`: the last day of the data.
    pub end_date: Option<NaiveDate>,
    /// Starting cash, dollars: 0 to 1e12.
    pub start_capital: f64,
    /// Deposit every N days, a whole number from 0 (none) to 36500.
    pub contribution_frequency_days: f64,
    /// Dollars per deposit: 0 (none) to 1e9.
    pub contribution_amount: f64,
    /// Percent of current cash used per buy: above 0, at most 100.
    pub capital_pct: f64,
    /// Percent below a fill for the next "below" buy trigger.
    pub buy_below_pct: f64,
    /// Percent above a buy for that lot's sell trigger.
    pub sell_above_pct: f64,
    /// Percent above a sell for the "buy higher" trigger.
    pub buy_after_sell_pct: f64,
    /// Dollars a buy may not dip into: 0 to 1e12.
    pub cash_floor: f64,
    /// Join gap for buy triggers, percent from 0 to 100; -1 turns joining off.
    pub order_gap_pct: f64,
    /// Which bars are traded.
    pub session: Session,
    /// Fill model; `None`: next-open, or close under `compat`.
    pub fill: Option<FillModel>,
    /// Reproduce another engine's results.
    pub compat: Option<Compat>,
    /// Strategy.
    pub strategy: StrategyKind,
    /// SMA cross: bars in the fast average.
    pub fast: usize,
    /// SMA cross: bars in the slow average.
    pub slow: usize,
    /// Bar files (CSV or CSV.gz), joined in time order; empty: the store's or the bundled bars.
    pub data: Vec<PathBuf>,
    /// Time zone of zone-less timestamps in `data` (IANA name); `None`: UTC.
    pub tz: Option<String>,
    /// Splits to apply (CSV `date,ratio`); replaces the store's list.
    pub splits: Option<PathBuf>,
    /// Reject inconsistent bars instead of widening them.
    pub strict: bool,
    /// Pattern-day-trader rule.
    pub pdt: PdtMode,
    /// Commission per order, dollars.
    pub commission_per_order: f64,
    /// Commission per share, dollars.
    pub commission_per_share: f64,
    /// Commission, percent of the notional.
    pub commission_pct: f64,
    /// Adverse slippage, basis points of the fill price.
    pub slippage_bps: f64,
    /// Share decimals of the grid's sizing, 0 to 9.
    pub share_decimals: u32,
    /// Record chart series and trigger lines (for `--json`, a report or a chart).
    pub record_series: bool,
}

impl Default for BacktestRequest {
    /// The original form's defaults.
    fn default() -> Self {
        BacktestRequest {
            symbol: None,
            start_date: None,
            end_date: None,
            start_capital: 1000.0,
            contribution_frequency_days: 7.0,
            contribution_amount: 500.0,
            capital_pct: 60.0,
            buy_below_pct: 2.0,
            sell_above_pct: 18.0,
            buy_after_sell_pct: 25.0,
            cash_floor: 200.0,
            order_gap_pct: 1.5,
            session: Session::Regular,
            fill: None,
            compat: None,
            strategy: StrategyKind::Grid,
            fast: 10,
            slow: 20,
            data: Vec::new(),
            tz: None,
            splits: None,
            strict: false,
            pdt: PdtMode::Auto,
            commission_per_order: 0.0,
            commission_per_share: 0.0,
            commission_pct: 0.0,
            slippage_bps: 0.0,
            share_decimals: 4,
            record_series: false,
        }
    }
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
            JobError::invalid(
                "tz",
                format!("--tz {z:?} is not a time zone: give an IANA name such as America/New_York or UTC"),
            )
        })
    })
    .transpose()
}

/// The raw bars and splits of `symbol` from a store (`None` when it holds none of the symbol or
/// of the dates asked).
async fn load_from(
    store: &vectura_store::Store,
    symbol: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Option<(BarSeries, Vec<Split>)>> {
    let Some(r) = store.range(symbol).await?.filter(|r| r.days_stored > 0) else {
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
        .await?;
    let splits = store.splits(symbol).await?;
    Ok(Some((bars, splits)))
}

/// The raw bars and splits of `symbol` from the job's store, when it holds any (`None` otherwise,
/// and when the default SQLite file does not exist yet), with the store's name for `sources`.
fn load_from_store(
    ctx: &JobContext,
    symbol: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Option<(BarSeries, Vec<Split>, String)>> {
    match &ctx.store {
        StoreAccess::Open { store, name } => Ok(ctx
            .wait(load_from(store, symbol, from, to))?
            .map(|(b, s)| (b, s, name.clone()))),
        StoreAccess::FromEnv => {
            crate::config::load_dotenv()?;
            let loc = crate::config::database_url(false)?;
            if !loc.exists() {
                return Ok(None);
            }
            let res = ctx.wait(async {
                let store = vectura_store::Store::open(&loc.url).await?;
                let out = load_from(&store, symbol, from, to).await;
                store.close().await;
                out
            })?;
            Ok(res.map(|(b, s)| (b, s, loc.source_name())))
        }
    }
}

fn symbol_from_file(path: &Path) -> Option<String> {
    let stem = path.file_name()?.to_str()?;
    let head = stem.split(['_', '-', '.']).next()?;
    Symbol::new(head).ok().map(|s| s.to_string())
}

/// The inconsistent bars a load widened: how many, and where the first few were (`file:line`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
                    refuse!(
                        "data",
                        "{name} starts at {} but the previous file ends at {}: give --data files in time order without overlap",
                        vectura_core::time::rfc3339(first),
                        vectura_core::time::rfc3339(last)
                    );
                }
            }
            for i in 0..l.series.len() {
                s.push(l.series.get(i)).map_err(|source| JobError::Bar {
                    file: name.to_string(),
                    source,
                })?;
            }
        }
    }
    Ok(())
}

fn load(args: &BacktestRequest, ctx: &JobContext) -> Result<Input> {
    let tz = parse_tz(args.tz.as_deref())?;
    let opts = LoadOptions {
        symbol: args.symbol.clone(),
        tz,
        strict: args.strict,
    };
    let mut acc = None;
    let mut sources = vec![];
    let mut file_symbol = None;
    if args.data.is_empty() {
        if let Some(s) = &args.symbol {
            let sym = Symbol::new(s).map_err(JobError::Symbol)?;
            if let Some((series, splits, what)) =
                load_from_store(ctx, sym.as_str(), args.start_date, args.end_date)?
            {
                if series.is_empty() {
                    return Err(JobError::NoBars { message: format!("the {what} holds no bars of {sym} between the dates asked: `vectura data ranges` shows what it holds") });
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
                return Err(JobError::NoBars { message: format!(
                    "no bars for --symbol {s}: the store holds none and the bundled data holds {} only; run `vectura data fetch {s} --from YYYY-MM-DD` or pass --data FILE with {s}'s bars",
                    bundled::SYMBOL
                ) });
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
    let (series, widened) = acc.ok_or_else(|| JobError::NoBars {
        message: "no bars loaded: give --data FILE with bars".to_string(),
    })?;
    let symbol = match &args.symbol {
        Some(s) => Symbol::new(s).map_err(JobError::Symbol)?.to_string(),
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
    let text = std::fs::read_to_string(path).map_err(|e| {
        JobError::io(
            format!("cannot read --splits {}: check the path", path.display()),
            e,
        )
    })?;
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
            refuse!(
                "splits",
                "{} line {}: expected date,ratio (e.g. 2020-08-31,4): fix the row",
                path.display(),
                i + 1
            );
        };
        let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
            JobError::invalid(
                "splits",
                format!(
                    "{} line {}, column 1: {d:?} is not a YYYY-MM-DD date",
                    path.display(),
                    i + 1
                ),
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
        s.validate().map_err(|source| JobError::Split {
            at: format!("{} line {}, column 2", path.display(), i + 1),
            source,
        })?;
        out.push(s);
    }
    Ok(out)
}

/// Loaded bars and the run's configuration, shared by backtests and sweeps.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub bars: BarSeries,
    pub cfg: BacktestConfig,
    pub params: GridParams,
    pub symbol: String,
    pub sources: Vec<String>,
    pub bars_loaded: usize,
    pub widened: Widened,
    pub load_seconds: f64,
    /// A note for the person (stderr in the CLI): the bars lie outside the calendar's checked years.
    pub calendar_note: Option<String>,
}

/// Loads and cuts the bars and builds the configuration from the request (file and store I/O:
/// call it from a blocking thread, see the crate's documentation).
pub fn prepare(args: &BacktestRequest, ctx: &JobContext) -> Result<Prepared> {
    let compat = args.compat == Some(Compat::VecturaV1);
    let fill = match (args.fill, compat) {
        (Some(f), _) => f,
        (None, true) => FillModel::Close,
        (None, false) => FillModel::NextOpen,
    };
    let f = args.contribution_frequency_days;
    if !(f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= 36_500.0) {
        refuse!(
            "contribution_frequency_days",
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
    params.validate().map_err(|e| JobError::Invalid {
        field: param_field(e.name),
        message: format!("--{e}"),
    })?;
    if args.share_decimals > 9 {
        refuse!("share_decimals", "--share-decimals is {}: give 0 to 9 (4 as the original, 9 as Alpaca's fractional orders)", args.share_decimals);
    }
    if let (Some(s), Some(e)) = (args.start_date, args.end_date) {
        if e < s {
            refuse!(
                "end_date",
                "--end-date {e} is before --start-date {s}: give an end on or after the start"
            );
        }
    }
    let t0 = Instant::now();
    let mut input = load(args, ctx)?;
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
    let calendar_note = check_calendar_years(s, args)?;
    let sessioned = match args.session {
        _ if daily => s.clone(),
        Session::All => s.clone(),
        Session::Regular => s.filter(|i| calendar::classify(s.ts[i]) == SessionPart::Regular),
        Session::Extended => s.filter(|i| calendar::classify(s.ts[i]) != SessionPart::Closed),
    };
    let day_of = |ts: i64| {
        if compat {
            date_utc(ts)
        } else {
            calendar::ny_date(ts)
        }
    };
    if sessioned.is_empty() {
        return Err(JobError::NoBars {
            message: format!(
                "no bars of {} fall in the {:?} session: try --session all",
                input.sources.join(", "),
                args.session
            ),
        });
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
        (Some(s), None) if s > last_day => refuse!(
            "start_date",
            "--start-date {s} is after the last day of the data: {}; give a --start-date on or before {last_day}",
            span()
        ),
        (None, Some(e)) if e < first_day => refuse!(
            "end_date",
            "--end-date {e} is before the first day of the data: {}; give an --end-date on or after {first_day}",
            span()
        ),
        _ => {}
    }
    let start = args.start_date.unwrap_or(first_day);
    let end = args.end_date.unwrap_or(last_day);
    if end < start {
        refuse!(
            "end_date",
            "--end-date {end} is before --start-date {start}: give an end on or after the start"
        );
    }
    let bars = sessioned.filter(|i| {
        let d = day_of(sessioned.ts[i]);
        d >= start && d <= end
    });
    if bars.is_empty() {
        return Err(JobError::NoBars {
            message: format!(
                "no bars between {start} and {end}: the data spans {first_day} to {last_day}; pick dates inside it"
            ),
        });
    }
    let load_seconds = t0.elapsed().as_secs_f64();

    let mut cfg = BacktestConfig::new(&input.symbol, start, end);
    cfg.start_capital = args.start_capital;
    cfg.contributions = (f > 0.0 && args.contribution_amount > 0.0).then_some(Contributions {
        every_days: f as u32,
        amount: args.contribution_amount,
    });
    if !(args.contribution_amount.is_finite() && args.contribution_amount >= 0.0) {
        refuse!(
            "contribution_amount",
            "--contribution-amount is {}: give a dollar amount from 0 to 1e9 per deposit",
            args.contribution_amount
        );
    }
    cfg.fill = fill;
    cfg.compat_v1 = compat;
    cfg.pdt = args.pdt;
    cfg.commission = Commission {
        per_order: args.commission_per_order,
        per_share: args.commission_per_share,
        pct: args.commission_pct,
    };
    cfg.slippage_bps = args.slippage_bps;
    cfg.share_scale = vectura_core::qty::scale_for(if compat { 4 } else { args.share_decimals });
    cfg.benchmark_cash_floor = args.cash_floor;
    cfg.record_series = args.record_series;
    cfg.validate()?;
    Ok(Prepared {
        bars,
        cfg,
        params,
        symbol: input.symbol.clone(),
        sources: input.sources.clone(),
        bars_loaded: input.series.len(),
        widened: input.widened,
        load_seconds,
        calendar_note,
    })
}

/// The request field of a grid parameter as [`GridParams::validate`] names it (`capital-pct`).
fn param_field(name: &str) -> &'static str {
    match name {
        "capital-pct" => "capital_pct",
        "buy-below-pct" => "buy_below_pct",
        "sell-above-pct" => "sell_above_pct",
        "buy-after-sell-pct" => "buy_after_sell_pct",
        "cash-floor" => "cash_floor",
        _ => "order_gap_pct",
    }
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
fn check_calendar_years(s: &BarSeries, args: &BacktestRequest) -> Result<Option<String>> {
    // Only the bars inside --start-date/--end-date matter.
    let days: Vec<NaiveDate> =
        s.ts.iter()
            .map(|&t| calendar::ny_date(t))
            .filter(|d| {
                args.start_date.is_none_or(|a| *d >= a) && args.end_date.is_none_or(|b| *d <= b)
            })
            .collect();
    let (Some(&first), Some(&last)) = (days.first(), days.last()) else {
        return Ok(None);
    };
    let outside = [first, last].into_iter().find(|d| !calendar::covers(*d));
    let Some(date) = outside else {
        return Ok(None);
    };
    let err = calendar::OutsideCalendar { date };
    if !s.daily && args.session != Session::All {
        let flag = args.session.as_str();
        refuse!("session", "--session {flag} needs the NYSE calendar's session times, but {err} (--start-date/--end-date), or pass --session all to trade every bar as given");
    }
    Ok(Some(format!(
        "the bars run from {first} to {last}, outside the NYSE calendar's checked years {}–{}: there daily bars are stamped 09:30 New York and pattern-day-trader days follow today's holiday rules",
        calendar::FIRST_YEAR,
        calendar::LAST_YEAR
    )))
}

/// A finished backtest: the engine's result and the document `--json` prints (the result with
/// `params` and `data` added), which the report renders.
#[derive(Debug, Clone, Serialize)]
pub struct BacktestDone {
    pub result: vectura_backtest::BacktestResult,
    /// The full result as JSON: `final_equity`, …, `params`, `data` (sources, bars, widened bars,
    /// session).
    pub doc: serde_json::Value,
    /// Where the bars came from (files, `bundled:…`, `store …`).
    pub sources: Vec<String>,
    /// The inconsistent bars that were widened.
    pub widened: Widened,
    /// The calendar note of [`Prepared::calendar_note`].
    pub calendar_note: Option<String>,
}

/// The engine's daily checkpoint in a job: progress about every 1 % of the bars, and the cancel.
struct JobCheckpoint<'a> {
    ctx: &'a JobContext,
    symbol: &'a str,
    next: usize,
    step: usize,
}

impl vectura_backtest::Checkpoint for JobCheckpoint<'_> {
    fn day(&mut self, i: usize, n: usize) -> bool {
        if i >= self.next && i > 0 {
            self.ctx.report(
                Stage::WorkingOnChunk,
                format!("backtesting {} bars of {}", n, self.symbol),
                i as u64,
                n as u64,
            );
            self.next = i + self.step;
        }
        // After the event: a sink that holds the job until a cancel sees it stop right here.
        !self.ctx.cancel.is_cancelled()
    }
}

/// Runs a backtest job: loads the bars ([`prepare`]), runs the strategy and builds the result
/// document. Progress: `initialize_backtest`, `working_on_chunk` (0, then about every 1 % of the
/// bars at a day's first bar, then all bars), `calculating_metrics`, `completed`. The cancel is
/// checked before the run and once per day of bars during it (the engine's checkpoint): a
/// cancelled run returns [`JobOutcome::Cancelled`] and keeps nothing of its work.
pub fn run(args: &BacktestRequest, ctx: &JobContext) -> Result<JobOutcome<BacktestDone>> {
    ctx.report(Stage::InitializeBacktest, "loading bars", 0, 1);
    let Prepared {
        bars,
        cfg,
        params,
        symbol,
        sources,
        bars_loaded,
        widened,
        load_seconds,
        calendar_note,
    } = prepare(args, ctx)?;
    if let Some(c) = ctx.cancel.cancelled() {
        return Ok(JobOutcome::Cancelled(c));
    }
    let compat = cfg.compat_v1;
    let n = bars.len() as u64;
    ctx.report(
        Stage::WorkingOnChunk,
        format!("backtesting {} bars of {}", bars.len(), symbol),
        0,
        n,
    );
    let mut checkpoint = JobCheckpoint {
        ctx,
        symbol: &symbol,
        next: 0,
        step: (bars.len() / 100).max(1),
    };
    let json = crate::error::json_err("the backtest result cannot be written as JSON");
    let t1 = Instant::now();
    let (result, params_json) = match args.strategy {
        StrategyKind::Grid => {
            let mode = GridMode {
                compat_v1: compat,
                share_scale: cfg.share_scale,
                record_lines: cfg.record_series,
            };
            let mut g = Grid::new(params, mode);
            (
                vectura_backtest::run_until(&bars, &mut g, &cfg, &mut checkpoint)?,
                serde_json::to_value(params).map_err(json)?,
            )
        }
        StrategyKind::SmaCross => {
            let p = SmaParams {
                fast: args.fast,
                slow: args.slow,
            };
            let mut s = SmaCross::new(p)?;
            (
                vectura_backtest::run_until(&bars, &mut s, &cfg, &mut checkpoint)?,
                serde_json::to_value(p).map_err(json)?,
            )
        }
    };
    let Some(mut result) = result else {
        let c = ctx.cancel.cancelled().unwrap_or_else(|| crate::Cancel {
            reason: "cancelled".into(),
            signal: None,
        });
        return Ok(JobOutcome::Cancelled(c));
    };
    let run_seconds = t1.elapsed().as_secs_f64();
    if let Some(c) = ctx.cancel.cancelled() {
        return Ok(JobOutcome::Cancelled(c));
    }
    ctx.report(Stage::WorkingOnChunk, "backtested", n, n);
    ctx.report(Stage::CalculatingMetrics, "metrics", 1, 1);
    result.timing.load_seconds = load_seconds;
    result.timing.run_seconds = run_seconds;
    result.timing.bars_per_second = if run_seconds > 0.0 {
        bars.len() as f64 / run_seconds
    } else {
        0.0
    };

    let json = crate::error::json_err("the backtest result cannot be written as JSON");
    let mut doc = serde_json::to_value(&result).map_err(json)?;
    if let Some(o) = doc.as_object_mut() {
        o.insert("params".into(), params_json);
        o.insert(
            "data".into(),
            serde_json::json!({ "sources": sources, "bars_loaded": bars_loaded, "widened_bars": widened.count, "widened_at": widened.at, "session": args.session.as_str() }),
        );
    }
    ctx.report(Stage::Completed, "done", 1, 1);
    Ok(JobOutcome::Done(BacktestDone {
        result,
        doc,
        sources,
        widened,
        calendar_note,
    }))
}
