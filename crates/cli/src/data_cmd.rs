//! `vectura data …`: fetch, import, export and inspect the bar store.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use vectura_core::Symbol;
use vectura_data::alpaca::AlpacaData;
use vectura_data::alphavantage::AlphaVantage;
use vectura_fetch::{DayOutcome, Event, SplitRefresh};
use vectura_jobs::{data, JobError};
use vectura_store::Store;

use crate::env;

/// `vectura data`.
#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download minute bars from Alpaca into the store: only days not stored yet or failed before.
    Fetch(FetchArgs),
    /// Store the bars of a CSV or Parquet file under a symbol.
    Import(ImportArgs),
    /// Write a symbol's stored bars (raw, as imported) to a CSV or Parquet file.
    Export(ExportArgs),
    /// What is stored per symbol: days, bars, first and last day, failed days.
    Ranges(JsonFlag),
    /// Sessions without bars that are not known closed, per symbol.
    Gaps(GapsArgs),
    /// A symbol's stored splits; --refresh asks Alpha Vantage first.
    Splits(SplitsArgs),
    /// Delete everything stored for a symbol (bars, day status, range, splits).
    Delete(DeleteArgs),
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// Symbols (AAPL SPY …).
    #[arg(required = true)]
    pub symbols: Vec<String>,
    /// First day (YYYY-MM-DD).
    #[arg(long)]
    pub from: NaiveDate,
    /// Last day, inclusive (YYYY-MM-DD); default: the last closed session.
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// Alpaca feed: iex (free plan) or sip (paid). Default: APCA_DATA_FEED, else iex.
    #[arg(long, value_enum)]
    pub feed: Option<FeedArg>,
    /// Also fetch pre-market and after-hours bars (04:00–20:00 ET).
    #[arg(long)]
    pub extended: bool,
    /// Passes over the days that failed.
    #[arg(long, default_value_t = 3)]
    pub passes: u32,
    /// Do not refresh the split lists from Alpha Vantage.
    #[arg(long)]
    pub no_splits: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FeedArg {
    Iex,
    Sip,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A CSV file (as `vectura backtest --data` reads it) or a Parquet file (.parquet).
    pub file: PathBuf,
    /// The symbol to store the bars under (and to pick from a file with a Symbol column).
    #[arg(long)]
    pub symbol: String,
    /// Time zone of zone-less timestamps in a CSV (default UTC).
    #[arg(long)]
    pub tz: Option<String>,
    /// Reject inconsistent bars instead of widening them.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum Format {
    Csv,
    Parquet,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    pub symbol: String,
    /// csv or parquet; default from the output's extension.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    #[arg(long, short)]
    pub output: PathBuf,
    /// First day (default: the first stored).
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last day, inclusive (default: the last stored).
    #[arg(long)]
    pub to: Option<NaiveDate>,
}

#[derive(Args, Debug)]
pub struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct GapsArgs {
    /// Symbols (default: every stored symbol).
    pub symbols: Vec<String>,
    /// First day (default: the symbol's first stored day).
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last day (default: the symbol's last stored day).
    #[arg(long)]
    pub to: Option<NaiveDate>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SplitsArgs {
    pub symbol: String,
    /// Ask Alpha Vantage now (even if it was asked today); a refusal keeps the stored list.
    #[arg(long)]
    pub refresh: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    pub symbol: String,
    /// Confirm: without it, only says what would be deleted.
    #[arg(long)]
    pub yes: bool,
}

/// Runs `vectura data …`.
pub fn run(args: &DataArgs, out: &mut dyn Write) -> Result<()> {
    env::load_dotenv()?;
    let rt = env::runtime()?;
    // Even a read-only command opens (and so creates) the default file: an empty store answers
    // "nothing stored" the same way a full one answers.
    let store = env::open_store(&rt, true)?;
    let res = rt.block_on(async {
        match &args.command {
            DataCommand::Fetch(a) => fetch(&store, a, out).await,
            DataCommand::Import(a) => import(&store, a, out).await,
            DataCommand::Export(a) => export(&store, a, out).await,
            DataCommand::Ranges(a) => ranges(&store, a.json, out).await,
            DataCommand::Gaps(a) => gaps(&store, a, out).await,
            DataCommand::Splits(a) => splits(&store, a, out).await,
            DataCommand::Delete(a) => delete(&store, a, out).await,
        }
    });
    rt.block_on(store.close());
    res
}

/// The Alpha Vantage client when a key is set.
fn alpha_vantage() -> Option<AlphaVantage> {
    AlphaVantage::from_env().ok()
}

/// The Alpaca market-data client when keys are set.
fn alpaca_from_env() -> Option<AlpacaData> {
    AlpacaData::from_env().ok()
}

fn sym(s: &str, flag: &str) -> Result<String> {
    Ok(Symbol::new(s)
        .map_err(|e| anyhow!("{flag}: {e}"))?
        .as_str()
        .to_string())
}

fn store_err(e: vectura_store::StoreError) -> anyhow::Error {
    anyhow!("{e}")
}

/// A data-module error as this command has always printed it: one line. The store's and the
/// provider's errors already hold their causes' text in their own, so their chains would repeat
/// it; a file's errors keep their chain.
fn data_err(e: JobError) -> anyhow::Error {
    match e {
        JobError::Load(_) | JobError::Io { .. } => anyhow::Error::new(e),
        e => anyhow!("{e}"),
    }
}

async fn fetch(store: &Store, a: &FetchArgs, out: &mut dyn Write) -> Result<()> {
    let req = data::FetchRequest {
        symbols: a.symbols.clone(),
        from: a.from,
        to: a.to,
        feed: a.feed.map(|f| match f {
            FeedArg::Iex => data::DataFeed::Iex,
            FeedArg::Sip => data::DataFeed::Sip,
        }),
        extended: a.extended,
        passes: a.passes,
        splits: !a.no_splits,
    };
    let pb = if a.quiet {
        ProgressBar::hidden()
    } else {
        let pb = ProgressBar::new(0);
        pb.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} days, {per_sec}, ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    };
    let done = data::fetch(store, None, &req, vectura_fetch::now_unix(), |e| match e {
        Event::Searching { symbol } => pb.set_message(format!("{symbol}: first day")),
        Event::FirstDay { symbol, day } => pb.println(match day {
            Some(d) => format!("{symbol}: data from {d}"),
            None => format!("{symbol}: Alpaca has no bars for it"),
        }),
        Event::SearchFailed { symbol, error } => pb.println(format!(
            "{symbol}: first-day search failed ({error}); fetching without it"
        )),
        Event::Pass { pass, days } => {
            pb.set_length(*days as u64);
            pb.set_position(0);
            pb.set_message(if *pass == 1 {
                "fetching".to_string()
            } else {
                format!("retry {}", pass - 1)
            });
        }
        Event::Day { outcome, .. } => {
            if let DayOutcome::Failed(msg) = outcome {
                pb.println(format!("failed: {msg}"));
            }
            pb.inc(1);
        }
    })
    .await;
    pb.finish_and_clear();
    let done = done.map_err(data_err)?;
    for w in &done.warnings {
        eprintln!("warning: {w}");
    }
    for line in &done.out {
        writeln!(out, "{line}")?;
    }
    if let Some(p) = done.problem {
        bail!(p);
    }
    Ok(())
}

async fn import(store: &Store, a: &ImportArgs, out: &mut dyn Write) -> Result<()> {
    let done = data::import_file(store, &a.file, &a.symbol, a.tz.as_deref(), a.strict)
        .await
        .map_err(data_err)?;
    writeln!(out, "{}", done.message)?;
    Ok(())
}

async fn export(store: &Store, a: &ExportArgs, out: &mut dyn Write) -> Result<()> {
    let format = a.format.map(|f| match f {
        Format::Csv => data::ExportFormat::Csv,
        Format::Parquet => data::ExportFormat::Parquet,
    });
    let line = data::export(store, &a.symbol, a.from, a.to, format, &a.output)
        .await
        .map_err(data_err)?;
    writeln!(out, "{line}")?;
    Ok(())
}

async fn ranges(store: &Store, json: bool, out: &mut dyn Write) -> Result<()> {
    let rs = store.ranges().await.map_err(store_err)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rs)?)?;
        return Ok(());
    }
    if rs.is_empty() {
        writeln!(out, "nothing stored yet: `vectura data fetch SYMBOL --from YYYY-MM-DD` or `vectura data import FILE --symbol SYMBOL`")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<8} {:>10} {:>10} {:>6} {:>10} {:>6} {:>6} {:>10}",
        "symbol", "from", "to", "days", "bars", "closed", "failed", "first day"
    )?;
    let d = |d: Option<NaiveDate>| d.map_or("-".to_string(), |d| d.to_string());
    for r in rs {
        writeln!(
            out,
            "{:<8} {:>10} {:>10} {:>6} {:>10} {:>6} {:>6} {:>10}",
            r.symbol,
            d(r.have_from),
            d(r.have_to),
            r.days_stored,
            r.bars,
            r.days_closed,
            r.days_failed,
            d(r.first_available_day)
        )?;
    }
    Ok(())
}

async fn gaps(store: &Store, a: &GapsArgs, out: &mut dyn Write) -> Result<()> {
    if let (Some(from), Some(to)) = (a.from, a.to) {
        if from > to {
            bail!("--from {from} is after --to {to}: give the first day first (swap them)");
        }
    }
    let ranges = store.ranges().await.map_err(store_err)?;
    let wanted: Vec<String> = if a.symbols.is_empty() {
        ranges.iter().map(|r| r.symbol.clone()).collect()
    } else {
        a.symbols
            .iter()
            .map(|s| sym(s, "symbol"))
            .collect::<Result<_>>()?
    };
    let now = vectura_fetch::now_unix();
    let mut all = BTreeMap::new();
    for s in &wanted {
        let r = ranges.iter().find(|r| &r.symbol == s);
        let from = a
            .from
            .or(r.and_then(|r| r.have_from))
            .or(r.and_then(|r| r.first_available_day));
        let to = a.to.or(r.and_then(|r| r.have_to));
        // One flag given, the other from what is stored: a span that ends before it starts is the
        // flag's mistake, not "no gaps".
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                let (flag, day, default) = if a.from.is_some() {
                    (
                        "--from",
                        f,
                        format!("its last stored day {t}, the default --to"),
                    )
                } else {
                    (
                        "--to",
                        t,
                        format!("its first stored day {f}, the default --from"),
                    )
                };
                bail!("{flag} {day} leaves no span of {s}: it is {} {default}; give both --from and --to", if a.from.is_some() { "after" } else { "before" });
            }
        }
        let (Some(from), Some(to)) = (from, to) else {
            // Nothing stored yet, so no span to check: say so rather than print "no gaps".
            let failed = r.map_or(0, |r| r.days_failed);
            let msg = format!(
                "{s} has no stored days{}: give --from and --to to list the gaps of a span",
                if failed > 0 {
                    format!(" ({failed} failed)")
                } else {
                    String::new()
                }
            );
            if a.symbols.is_empty() {
                eprintln!("note: {msg}");
                continue;
            }
            bail!(msg);
        };
        let g = vectura_fetch::gaps(store, s, from, to, now)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        all.insert(s.clone(), g);
    }
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
        return Ok(());
    }
    let mut any = false;
    for (s, g) in &all {
        for gap in g {
            any = true;
            writeln!(
                out,
                "{s} {} {}",
                gap.day,
                match (&gap.last_error, gap.attempts) {
                    (_, 0) => "never fetched".to_string(),
                    (Some(e), n) => format!("failed {n}x: {e}"),
                    (None, n) => format!("failed {n}x"),
                }
            )?;
        }
    }
    if !any {
        writeln!(out, "no gaps")?;
    }
    Ok(())
}

async fn splits(store: &Store, a: &SplitsArgs, out: &mut dyn Write) -> Result<()> {
    let symbol = sym(&a.symbol, "symbol")?;
    if a.refresh {
        let av = alpha_vantage();
        let alpaca = alpaca_from_env();
        let sources = vectura_fetch::SplitSources {
            alpha_vantage: av.as_ref(),
            alpaca: alpaca.as_ref(),
        };
        let today = chrono::Utc::now().date_naive();
        if let SplitRefresh::Kept(why) =
            vectura_fetch::refresh_splits(store, sources, &symbol, today, true)
                .await
                .map_err(store_err)?
        {
            bail!("{symbol}: splits not refreshed, the stored list is kept: {why}");
        }
    }
    let list = store.splits(&symbol).await.map_err(store_err)?;
    if a.json {
        let rows: Vec<_> = list
            .iter()
            .map(|s| serde_json::json!({"effective_date": s.effective.to_string(), "ratio": s.ratio}))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
    } else if list.is_empty() {
        writeln!(out, "{symbol}: no splits stored")?;
    } else {
        for s in &list {
            writeln!(out, "{symbol} {} {}-for-1", s.effective, s.ratio)?;
        }
    }
    Ok(())
}

async fn delete(store: &Store, a: &DeleteArgs, out: &mut dyn Write) -> Result<()> {
    let symbol = sym(&a.symbol, "symbol")?;
    let Some(r) = store.range(&symbol).await.map_err(store_err)? else {
        bail!("nothing is stored for {symbol}: check the symbol (`vectura data ranges`)");
    };
    if !a.yes {
        writeln!(
            out,
            "would delete {symbol}: {} days, {} bars; run again with --yes to delete",
            r.days_stored, r.bars
        )?;
        return Ok(());
    }
    let n = store.delete_symbol(&symbol).await.map_err(store_err)?;
    writeln!(out, "{symbol}: deleted {n} stored days")?;
    Ok(())
}
