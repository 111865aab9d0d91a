//! Market data for the CLI and the server alike: fetching bars from Alpaca into the store (with
//! progress and cancel as a job), importing a CSV or Parquet file, exporting stored bars.
//!
//! The functions return what happened (the lines a person reads); the caller prints them.

use std::io::Write;
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use vectura_core::calendar;
use vectura_core::{BarSeries, Symbol};
use vectura_data::alpaca::{AlpacaData, Feed};
use vectura_data::alphavantage::AlphaVantage;
use vectura_data::{load_csv_path, LoadOptions};
use vectura_fetch::{DayOutcome, Event, FetchOptions, FetchReport, SplitRefresh};
use vectura_store::Store;

use crate::backtest::{parse_tz, Widened};
use crate::out_file::OutFile;
use crate::{JobContext, JobError, JobOutcome, Stage};

type Result<T, E = JobError> = std::result::Result<T, E>;

/// A checked ticker, or the error naming `flag` (`symbol`, `--symbol`).
pub fn parse_symbol(s: &str, flag: &'static str) -> Result<String> {
    Symbol::new(s)
        .map(|s| s.as_str().to_string())
        .map_err(|e| JobError::invalid(flag.trim_start_matches('-'), format!("{flag}: {e}")))
}

/// A fetch of minute bars from Alpaca into the store: only days not stored yet or failed before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FetchRequest {
    pub symbols: Vec<String>,
    /// The first day.
    pub from: NaiveDate,
    /// The last day, inclusive; `None`: the last closed session.
    pub to: Option<NaiveDate>,
    /// `None`: `APCA_DATA_FEED`, else IEX.
    pub feed: Option<DataFeed>,
    /// Also pre-market and after-hours bars.
    pub extended: bool,
    /// Passes over the days that failed (at least 1).
    pub passes: u32,
    /// Refresh the split lists (Alpha Vantage, Alpaca's corporate actions) first.
    pub splits: bool,
}

/// Alpaca's feed of bars: IEX (the free plan) or SIP (paid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFeed {
    Iex,
    Sip,
}

/// What a fetch did, as lines for a person: `out` (split updates, then one line per symbol),
/// `warnings`, and `problem` when the fetch is not complete (a symbol without bars, days still
/// failing), which the CLI reports as its error.
#[derive(Debug, Clone, Serialize)]
pub struct FetchDone {
    pub out: Vec<String>,
    pub warnings: Vec<String>,
    pub problem: Option<String>,
    /// Days stored by this run, over all symbols.
    pub days_stored: usize,
}

/// The feed: the request's, else `APCA_DATA_FEED`, else IEX.
fn feed_of(req: &FetchRequest) -> Result<Feed> {
    Ok(
        match (req.feed, crate::config::var("APCA_DATA_FEED").as_deref()) {
            (Some(DataFeed::Iex), _) => Feed::Iex,
            (Some(DataFeed::Sip), _) => Feed::Sip,
            (None, None) => Feed::Iex,
            (None, Some(v)) if v.eq_ignore_ascii_case("iex") => Feed::Iex,
            (None, Some(v)) if v.eq_ignore_ascii_case("sip") => Feed::Sip,
            (None, Some(v)) => {
                return Err(JobError::invalid(
                    "feed",
                    format!("APCA_DATA_FEED is {v:?}: set it to iex or sip"),
                ))
            }
        },
    )
}

/// The Alpaca market-data client of the environment (`APCA_API_KEY_ID`, `APCA_API_SECRET_KEY`,
/// `APCA_API_DATA_URL`).
pub fn alpaca_from_env() -> Result<AlpacaData> {
    AlpacaData::from_env().map_err(|source| JobError::Provider { source })
}

/// Fetches as `req` says with `alpaca` (`None`: the environment's; its feed and session are set
/// from the request), calling `on_event` as the fetch goes (a progress bar); `now` is the
/// current Unix time.
pub async fn fetch(
    store: &Store,
    alpaca: Option<AlpacaData>,
    req: &FetchRequest,
    now: i64,
    mut on_event: impl FnMut(&Event),
) -> Result<FetchDone> {
    let symbols = req
        .symbols
        .iter()
        .map(|s| parse_symbol(s, "symbol"))
        .collect::<Result<Vec<_>>>()?;
    let to = match req.to {
        Some(t) => t,
        None => calendar::prev_session(calendar::ny_date(now))
            .map(|s| s.date)
            .ok_or_else(|| {
                JobError::invalid("to", "no session before today in the calendar: give --to")
            })?,
    };
    if req.from > to {
        return Err(JobError::invalid(
            "from",
            format!("--from {} is after --to {to}: swap them", req.from),
        ));
    }
    let feed = feed_of(req)?;
    let alpaca = match alpaca {
        Some(a) => a,
        None => alpaca_from_env()?,
    };
    let alpaca = alpaca.with_feed(feed).with_extended(req.extended);
    let mut done = FetchDone {
        out: Vec::new(),
        warnings: Vec::new(),
        problem: None,
        days_stored: 0,
    };
    if req.splits {
        let av = AlphaVantage::from_env().ok();
        let sources = vectura_fetch::SplitSources {
            alpha_vantage: av.as_ref(),
            alpaca: Some(&alpaca),
        };
        let today = chrono::DateTime::from_timestamp(now, 0)
            .map(|t| t.date_naive())
            .unwrap_or(to);
        for s in &symbols {
            match vectura_fetch::refresh_splits(store, sources, s, today, false).await? {
                SplitRefresh::Changed(n) => done
                    .out
                    .push(format!("{s}: split list updated ({n} splits)")),
                SplitRefresh::Kept(why) => done
                    .warnings
                    .push(format!("{s}: splits not refreshed: {why}")),
                SplitRefresh::Unchanged | SplitRefresh::CheckedToday => {}
            }
        }
    }
    let opts = FetchOptions {
        passes: req.passes.max(1),
        now,
        ..FetchOptions::default()
    };
    let report = vectura_fetch::fetch(store, &alpaca, &symbols, req.from, to, &opts, |e| {
        on_event(e)
    })
    .await
    .map_err(JobError::Fetch)?;
    summarize(&report, &mut done);
    Ok(done)
}

/// The per-symbol lines and the problem of a finished fetch.
fn summarize(report: &FetchReport, done: &mut FetchDone) {
    for (s, r) in &report.symbols {
        done.days_stored += r.stored;
        if r.no_data {
            done.out.push(format!(
                "{s}: Alpaca has no bars for it since {}: check the symbol (and the feed)",
                vectura_fetch::alpaca_history_start()
            ));
            continue;
        }
        done.out.push(format!(
            "{s}: {} days stored, {} closed, {} already held{}{}",
            r.stored,
            r.closed,
            r.already,
            if r.before_listing > 0 {
                format!(
                    ", {} before its first day {}",
                    r.before_listing,
                    r.first_available_day
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                )
            } else {
                String::new()
            },
            if r.failed.is_empty() {
                String::new()
            } else {
                format!(", {} still failing", r.failed.len())
            }
        ));
    }
    let missing: Vec<&str> = report
        .symbols
        .iter()
        .filter(|(_, r)| r.no_data)
        .map(|(s, _)| s.as_str())
        .collect();
    if !missing.is_empty() {
        done.problem = Some(format!(
            "Alpaca has no bars for {}: check the symbol; nothing was stored for it",
            missing.join(", ")
        ));
    } else if !report.complete() {
        let n: usize = report.symbols.values().map(|r| r.failed.len()).sum();
        done.problem = Some(format!("{n} days are still gaps (see `vectura data gaps`): run the same fetch again later to retry only them"));
    }
}

/// A fetch as a job (a server's): progress `searching_first_available_day` per symbol, then
/// `working_on_chunk` per day fetched of the pass's days; a cancel stops it between requests (the
/// days stored so far stay: each is whole, and a new fetch asks only for the rest). `alpaca`:
/// `None` reads the environment.
pub fn fetch_job(
    req: &FetchRequest,
    alpaca: Option<AlpacaData>,
    ctx: &JobContext,
) -> Result<JobOutcome<FetchDone>> {
    let (store, owned) = crate::sweep::open_job_store(ctx)?;
    ctx.report(Stage::InitializeBacktest, "starting the fetch", 0, 1);
    let mut days = 0u64;
    let mut done_days = 0u64;
    let on_event = |e: &Event| match e {
        Event::Searching { symbol } => ctx.report(
            Stage::SearchingFirstAvailableDay,
            format!("{symbol}: searching its first day"),
            0,
            1,
        ),
        Event::Pass { pass, days: n } => {
            days = *n as u64;
            done_days = 0;
            ctx.report(
                Stage::WorkingOnChunk,
                if *pass == 1 {
                    "fetching".to_string()
                } else {
                    format!("retry {}", pass - 1)
                },
                0,
                days,
            );
        }
        Event::Day {
            symbol,
            day,
            outcome,
        } => {
            done_days += 1;
            let what = match outcome {
                DayOutcome::Failed(_) => "failed",
                _ => "fetched",
            };
            ctx.report(
                Stage::WorkingOnChunk,
                format!("{symbol} {day}: {what}"),
                done_days.min(days),
                days,
            );
        }
        _ => {}
    };
    let cancel = ctx.cancel.clone();
    let out = ctx.wait(async {
        tokio::select! {
            r = fetch(&store, alpaca, req, vectura_fetch::now_unix(), on_event) => Some(r),
            _ = async {
                // The token has no waker: look every 50 ms.
                while !cancel.is_cancelled() {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            } => None,
        }
    });
    if owned {
        ctx.wait(store.close());
    }
    match out {
        None => Ok(JobOutcome::Cancelled(
            ctx.cancel.cancelled().unwrap_or_else(|| crate::Cancel {
                reason: "cancelled".into(),
                signal: None,
            }),
        )),
        Some(r) => {
            let d = r?;
            ctx.report(Stage::Completed, "done", 1, 1);
            Ok(JobOutcome::Done(d))
        }
    }
}

/// Splits a series into New York trading days.
pub fn by_day(s: &BarSeries) -> Vec<(NaiveDate, BarSeries)> {
    let mut out: Vec<(NaiveDate, BarSeries)> = Vec::new();
    let mut start = 0;
    for i in 1..=s.len() {
        if i == s.len() || calendar::ny_date(s.ts[i]) != calendar::ny_date(s.ts[start]) {
            out.push((calendar::ny_date(s.ts[start]), s.slice(start, i)));
            start = i;
        }
    }
    out
}

/// Whether the path names a Parquet file (by its extension).
pub fn is_parquet(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// What an import stored.
#[derive(Debug, Clone, Serialize)]
pub struct ImportDone {
    pub symbol: String,
    pub bars: usize,
    pub days: usize,
    pub first: NaiveDate,
    pub last: NaiveDate,
    /// Bars whose open or close lay outside their low..high and were widened (0 with strict).
    pub widened: usize,
    /// The line a person reads.
    pub message: String,
}

/// Stores the bars of `file` (CSV, or Parquet by its extension) under `symbol`, day by day.
pub async fn import_file(
    store: &Store,
    file: &Path,
    symbol: &str,
    tz: Option<&str>,
    strict: bool,
) -> Result<ImportDone> {
    let symbol = parse_symbol(symbol, "--symbol")?;
    let mut widened = Widened::default();
    let series = if is_parquet(file) {
        let l = vectura_data::parquet_io::read_parquet_checked(file, strict)
            .map_err(|source| JobError::ParquetFile { source })?;
        widened.add(&file.display().to_string(), l.widened, &l.widened_lines);
        l.series
    } else {
        let tz = parse_tz(tz)?;
        let l = load_csv_path(
            file,
            &LoadOptions {
                symbol: Some(symbol.clone()),
                tz,
                strict,
            },
        )?;
        widened.add(&file.display().to_string(), l.widened, &l.widened_lines);
        l.series
    };
    if series.is_empty() {
        return Err(JobError::NoBars {
            message: format!("{} holds no bars: nothing to import", file.display()),
        });
    }
    store_import(
        store,
        &symbol,
        &series,
        &file.display().to_string(),
        &widened,
    )
    .await
}

/// Stores the bars of an import (`series`, of `symbol`, read from `source`, with the bars the
/// reader widened) day by day (New York days) in one transaction: all of its days or none. The
/// one path of `vectura data import` and the dashboard's upload.
pub async fn store_import(
    store: &Store,
    symbol: &str,
    series: &BarSeries,
    source: &str,
    widened: &Widened,
) -> Result<ImportDone> {
    let symbol = parse_symbol(symbol, "symbol")?;
    if series.is_empty() {
        return Err(JobError::NoBars {
            message: format!("{source} holds no bars (of {symbol}): nothing was imported"),
        });
    }
    let days = by_day(series);
    let refs: Vec<(NaiveDate, &BarSeries)> = days.iter().map(|(d, s)| (*d, s)).collect();
    store.put_days(&symbol, &refs).await?;
    let (first, last) = (days[0].0, days[days.len() - 1].0);
    let message = format!(
        "{symbol}: imported {} bars on {} days ({first} to {last}) from {source}{}",
        series.len(),
        days.len(),
        widened
            .message()
            .map(|w| format!("; {w}"))
            .unwrap_or_default()
    );
    Ok(ImportDone {
        symbol,
        bars: series.len(),
        days: days.len(),
        first,
        last,
        widened: widened.count,
        message,
    })
}

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Parquet,
}

/// Writes `symbol`'s stored bars (raw, as imported) between `from` and `to` (default: all) to
/// `output` as `format` (default: by the extension); returns the line a person reads.
pub async fn export(
    store: &Store,
    symbol: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    format: Option<ExportFormat>,
    output: &Path,
) -> Result<String> {
    let symbol = parse_symbol(symbol, "symbol")?;
    let range = store
        .range(&symbol)
        .await?
        .filter(|r| r.days_stored > 0)
        .ok_or_else(|| JobError::NoBars { message: format!("no bars of {symbol} are stored: fetch or import them first (`vectura data ranges` lists what is stored)") })?;
    let from = from.or(range.have_from).unwrap_or(NaiveDate::MIN);
    let to = to.or(range.have_to).unwrap_or(NaiveDate::MAX);
    let bars = store.load(&symbol, from, to).await?;
    if bars.is_empty() {
        return Err(JobError::NoBars {
            message: format!(
                "no bars of {symbol} are stored between {from} and {to}: widen --from/--to"
            ),
        });
    }
    let format = match format {
        Some(f) => f,
        None if is_parquet(output) => ExportFormat::Parquet,
        None => ExportFormat::Csv,
    };
    // A regular file is replaced whole (temporary file + rename); a device, FIFO or symlink's
    // target is written as it is (see `OutFile`).
    let file = OutFile::prepare(output, "--output")?;
    let disk = || {
        format!(
            "writing --output {}: check the disk has room",
            output.display()
        )
    };
    match format {
        ExportFormat::Parquet => vectura_data::parquet_io::write_parquet(file.path(), &bars, 3)
            .map_err(|source| JobError::ParquetWrite {
                output: output.display().to_string(),
                source,
            })?,
        ExportFormat::Csv => {
            let mut w = std::io::BufWriter::new(file.open()?);
            write_csv(&mut w, &bars).map_err(|e| JobError::io(disk(), e))?;
            w.flush().map_err(|e| JobError::io(disk(), e))?;
        }
    }
    file.commit()?;
    Ok(format!(
        "{symbol}: exported {} bars to {}",
        bars.len(),
        output.display()
    ))
}

/// The bars as CSV the loader reads back bit for bit (shortest round-trip decimals; UTC times;
/// daily bars as dates).
pub fn write_csv(w: &mut dyn Write, s: &BarSeries) -> std::io::Result<()> {
    write!(w, "timestamp,open,high,low,close,volume")?;
    if s.vwap.is_some() {
        write!(w, ",vwap")?;
    }
    if s.trade_count.is_some() {
        write!(w, ",trade_count")?;
    }
    writeln!(w)?;
    for i in 0..s.len() {
        if s.daily {
            write!(w, "{}", calendar::ny_date(s.ts[i]))?;
        } else {
            write!(w, "{}", vectura_core::time::rfc3339(s.ts[i]))?;
        }
        write!(
            w,
            ",{:?},{:?},{:?},{:?},{:?}",
            s.open[i], s.high[i], s.low[i], s.close[i], s.volume[i]
        )?;
        if let Some(v) = &s.vwap {
            write!(w, ",{:?}", v[i])?;
        }
        if let Some(t) = &s.trade_count {
            write!(w, ",{}", t[i])?;
        }
        writeln!(w)?;
    }
    Ok(())
}
