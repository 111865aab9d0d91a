//! A sweep job: many grid parameter sets over the same bars, on all cores, over one or several
//! markets; walk-forward; distributed through an object store as shards and merged.
//!
//! [`prepare`] checks a [`SweepRequest`] and loads every market's bars once ([`PreparedSweep`]);
//! [`run`] runs it as the request says (here, walk-forward, packed into a store, as local shard
//! processes); [`run_shard`] and [`merge`] are the steps of a distributed sweep.

mod db;
mod parquet_out;
mod record;

use db::DbRecorder;
use parquet_out::ParquetOut;
use record::Record;

use crate::backtest::{
    fill_flag, prepare as prepare_market, BacktestRequest, Prepared, StrategyKind,
};
use crate::error::chain;
use crate::out_file::OutFile;
use crate::shards::{Packed, PackedMarket, Remote};
use crate::{Cancel, JobContext, JobError, JobOutcome, Stage};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use vectura_backtest::sweep::{
    csv_header, csv_line, metric_names, run_sets, ParamAxis, Plan, Sampling, SweepRow, TopK,
    WalkRow,
};
use vectura_backtest::Market;
use vectura_report::sweep::{self as report, Heat};

type Result<T, E = JobError> = std::result::Result<T, E>;

/// Refuses the request: `field` is the request field at fault, the message names its flag and the fix.
macro_rules! refuse {
    ($field:expr, $($arg:tt)*) => {
        return Err(JobError::invalid($field, format!($($arg)*)))
    };
}

/// Refuses what the sweep store holds, naming the fix.
macro_rules! damaged {
    ($($arg:tt)*) => {
        return Err(JobError::shards(format!($($arg)*)))
    };
}

/// Rows between progress events (and between the parallel chunks of `run_sets`).
const CHUNK: u64 = 256;

/// The HTML report of a sweep: a heat map of `rank_by` over two swept parameters and the top table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRequest {
    /// Where the page is written.
    pub path: PathBuf,
    /// The heat map's x axis (default: the first swept parameter).
    pub heatmap_x: Option<String>,
    /// The heat map's y axis (default: the next swept parameter).
    pub heatmap_y: Option<String>,
}

/// A sweep as asked: the backtest fields every set shares (`base`; its `symbol`, `start_date` and
/// `end_date` give the market when `symbols` and `ranges` are empty), the parameters to vary, the
/// markets, the outputs and, for a distributed sweep, the store and the shard. Field names are
/// `vectura sweep`'s flags in snake case; errors name the flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SweepRequest {
    /// The shared backtest fields; `base.symbol` is ignored when `symbols` is given.
    pub base: BacktestRequest,
    /// Symbols to sweep, one market per symbol and range (empty: `base.symbol` or the data's).
    pub symbols: Vec<String>,
    /// Date ranges `FROM:TO` (`YYYY-MM-DD:YYYY-MM-DD`, both inclusive), instead of
    /// `base.start_date`/`base.end_date`.
    pub ranges: Vec<String>,
    /// Parameters to vary: `name=start:stop:step` or `name=v1,v2,…` (`at_algo_config` names).
    pub params: Vec<String>,
    /// Every combination, or N sets drawn at random.
    pub sampling: Sampling,
    /// The metric that ranks the top table and colours the heat map (higher is better).
    pub rank_by: String,
    /// Rows in the top table.
    pub top: usize,
    /// Walk forward: `IS:OOS` calendar days.
    pub walk_forward: Option<String>,
    /// One row per set, in set order (`.csv` or `.parquet`).
    pub output: Option<PathBuf>,
    /// Record the run and its rows in the database.
    pub record: bool,
    /// The HTML report (single-machine, non-walk-forward sweeps only).
    pub report: Option<ReportRequest>,
    /// Object store of a distributed sweep (`file:///path` or `s3://bucket/prefix`).
    pub store: Option<String>,
    /// With `store`: run the whole sweep here as N shard processes, then merge into `output`.
    pub local_processes: Option<u64>,
    /// Run only this shard (`None`: from AWS_BATCH_JOB_ARRAY_INDEX or JOB_COMPLETION_INDEX, else all).
    pub shard_index: Option<u64>,
    /// Number of shards the plan is cut into.
    pub shard_count: u64,
}

impl Default for SweepRequest {
    fn default() -> Self {
        SweepRequest {
            base: BacktestRequest::default(),
            symbols: Vec::new(),
            ranges: Vec::new(),
            params: Vec::new(),
            sampling: Sampling::Grid,
            rank_by: "time_weighted_return_pct".to_string(),
            top: 10,
            walk_forward: None,
            output: None,
            record: true,
            report: None,
            store: None,
            local_processes: None,
            shard_index: None,
            shard_count: 1,
        }
    }
}

/// A checked sweep with every market's bars loaded (once each; the workers only read them).
pub struct PreparedSweep {
    /// Each market's bars and configuration, in market order.
    pub preps: Vec<Prepared>,
    /// The markets, in row order.
    pub markets: Vec<Market>,
    /// The parameter sets.
    pub plan: Plan,
    /// The widened-bars notes, once per distinct message (markets cut from one file share them).
    pub notes: Vec<String>,
    /// The calendar notes of the markets, once per distinct message.
    pub calendar_notes: Vec<String>,
    /// The shard this process runs (from the request or the environment), and of how many.
    pub shard_index: Option<u64>,
    pub shard_count: u64,
    /// One heat map per market when a report is asked for.
    heats: Option<Vec<Heat>>,
    kind: Option<OutputKind>,
}

/// Where a recorded sweep went: the run's id and the database (its file, or `DATABASE_URL` masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    pub run_id: String,
    pub at: String,
}

/// A sweep (or one shard of it) run on this machine.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub markets: Vec<Market>,
    /// Sets per market.
    pub sets: u64,
    /// Bars of each market.
    pub bars: Vec<usize>,
    /// The rows run, `[from, to)` of all rows (market-major, then set).
    pub from: u64,
    pub to: u64,
    pub shard_index: Option<u64>,
    pub shard_count: u64,
    pub seconds: f64,
    /// Sets run times their market's bars.
    pub set_bars: f64,
    /// The best `top` rows by `rank_by` over all markets: (market index, row).
    pub top: Vec<(usize, SweepRow)>,
    pub output: Option<PathBuf>,
    pub report: Option<PathBuf>,
    pub recorded: Option<Recorded>,
}

/// One market's walk-forward rows.
#[derive(Debug, Clone, Serialize)]
pub struct MarketWalk {
    pub market: Market,
    pub rows: Vec<WalkRow>,
}

/// A walk-forward sweep: every market's windows, in market order.
#[derive(Debug, Clone, Serialize)]
pub struct WalkSummary {
    pub in_sample_days: i64,
    pub out_of_sample_days: i64,
    pub walks: Vec<MarketWalk>,
    /// The CSV written to `output` (when given).
    pub output: Option<PathBuf>,
}

/// A sweep packed into a store for its shards to run.
#[derive(Debug, Clone, Serialize)]
pub struct PackSummary {
    pub store: String,
    pub markets: usize,
    pub sets: u64,
    /// Bars of all markets.
    pub bars: usize,
    pub shard_count: u64,
}

/// One shard of a packed sweep, run and stored.
#[derive(Debug, Clone, Serialize)]
pub struct ShardSummary {
    pub index: u64,
    pub shard_count: u64,
    /// The rows `[from, to)` of all rows.
    pub from: u64,
    pub to: u64,
    /// Whether the sweep has several markets (its rows then lead with the market).
    pub several: bool,
    pub seconds: f64,
}

/// Every shard's rows merged into one file.
#[derive(Debug, Clone, Serialize)]
pub struct MergeSummary {
    pub shard_count: u64,
    pub rows: usize,
    pub several: bool,
    pub output: PathBuf,
    pub recorded: Option<Recorded>,
}

/// What a [`run`] did, by the request's kind (in JSON: `{"kind": "ran", …}`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SweepDone {
    /// Ran here (the whole sweep, or the shard `shard_index` of it without a store).
    Ran(RunSummary),
    /// Walked forward.
    Walked(WalkSummary),
    /// Packed into the store; the shards are run elsewhere.
    Packed(PackSummary),
    /// Packed, then ran the one shard asked for.
    Shard(ShardSummary),
    /// Packed, ran every shard as a local process and merged them.
    Merged(MergeSummary),
}

/// Starts the process that runs shard `index` of the sweep packed in `store` (for `vectura`:
/// `vectura sweep run --store STORE --shard-index INDEX`), with its stdout as the caller wants it.
pub type ShardLauncher = dyn Fn(&str, u64) -> std::process::Command + Send + Sync;

/// The job's store (the caller's, or the environment's, opened here: then the flag is true and
/// the caller closes it).
pub(crate) fn open_job_store(ctx: &JobContext) -> Result<(vectura_store::Store, bool)> {
    db::open_store(ctx)
}

/// Parses `--range FROM:TO`.
pub fn parse_range(spec: &str) -> Result<(NaiveDate, NaiveDate)> {
    let bad = || {
        JobError::invalid(
            "ranges",
            format!("--range {spec:?}: give FROM:TO as YYYY-MM-DD:YYYY-MM-DD, e.g. 2011-01-01:2011-06-30"),
        )
    };
    let (a, b) = spec.split_once(':').ok_or_else(bad)?;
    let day = |t: &str| NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").map_err(|_| bad());
    let (from, to) = (day(a)?, day(b)?);
    if to < from {
        refuse!(
            "ranges",
            "--range {spec}: the end {to} is before the start {from}; give FROM:TO with FROM first"
        );
    }
    Ok((from, to))
}

/// The backtest request of every market, symbols × ranges in the order given (symbol first); one
/// entry, the base request as given, when neither is given.
fn market_args(args: &SweepRequest) -> Result<Vec<BacktestRequest>> {
    let c = &args.base;
    if !args.ranges.is_empty() && (c.start_date.is_some() || c.end_date.is_some()) {
        refuse!("ranges", "--range with --start-date/--end-date: give the dates one way, as --range FROM:TO (repeatable) or as --start-date/--end-date");
    }
    let mut ranges = Vec::new();
    for spec in &args.ranges {
        let r = parse_range(spec)?;
        if ranges.contains(&r) {
            refuse!(
                "ranges",
                "--range {spec} is given twice: give each range once"
            );
        }
        ranges.push(r);
    }
    let mut symbols: Vec<&String> = Vec::new();
    for s in &args.symbols {
        if symbols.iter().any(|t| t.eq_ignore_ascii_case(s)) {
            refuse!(
                "symbols",
                "--symbol {s} is given twice: give each symbol once"
            );
        }
        symbols.push(s);
    }
    let symbols: Vec<Option<&String>> = if symbols.is_empty() {
        vec![c.symbol.as_ref()]
    } else {
        symbols.into_iter().map(Some).collect()
    };
    let ranges: Vec<(Option<NaiveDate>, Option<NaiveDate>)> = if ranges.is_empty() {
        vec![(c.start_date, c.end_date)]
    } else {
        ranges
            .into_iter()
            .map(|(a, b)| (Some(a), Some(b)))
            .collect()
    };
    let mut out = Vec::with_capacity(symbols.len() * ranges.len());
    for s in &symbols {
        for (from, to) in &ranges {
            let mut a = c.clone();
            a.symbol = s.cloned();
            a.start_date = *from;
            a.end_date = *to;
            out.push(a);
        }
    }
    Ok(out)
}

/// The set range `[from, to)` of shard `index` of `count` over `len` sets: contiguous and deterministic.
pub fn shard_range(len: u64, index: u64, count: u64) -> (u64, u64) {
    let count = count.max(1) as u128;
    let (len, index) = (len as u128, index as u128);
    (
        (len * index / count) as u64,
        (len * (index + 1) / count) as u64,
    )
}

/// The rows `[from, to)` of a sweep of `markets` × `sets` rows (market-major, then set) as pieces of
/// one market each: (market, first set, end set). A shard is a contiguous slice of these rows, so
/// concatenating the shards in order gives the single-machine file.
pub fn market_slices(sets: u64, markets: usize, from: u64, to: u64) -> Vec<(usize, u64, u64)> {
    (0..markets)
        .filter_map(|mi| {
            let base = mi as u64 * sets;
            let a = from.max(base).min(base + sets);
            let b = to.min(base + sets).max(a);
            (a < b).then_some((mi, a - base, b - base))
        })
        .collect()
}

/// Rows of a sweep: markets × sets, or an error naming the fix when that overflows.
fn row_count(markets: usize, sets: u64) -> Result<u64> {
    sets.checked_mul(markets as u64).ok_or_else(|| {
        JobError::invalid(
            "params",
            format!("{markets} markets × {sets} sets is too many rows: sweep fewer --param values or markets"),
        )
    })
}

/// The markets of a packed sweep, in row order.
fn packed_markets(p: &Packed) -> Result<Vec<Market>> {
    (0..p.market_count())
        .map(|i| {
            let (symbol, cfg) = p.market(i).ok_or_else(|| {
                JobError::shards(format!(
                    "plan.json has no market {i}: pack again into a new --store prefix"
                ))
            })?;
            Ok(Market {
                symbol: symbol.to_string(),
                start: cfg.start_date,
                end: cfg.end_date,
            })
        })
        .collect()
}

/// The shard index: `flag`, or AWS Batch's / Kubernetes' index variable, or `None`.
pub fn shard_index(flag: Option<u64>) -> Result<Option<u64>> {
    if let Some(i) = flag {
        return Ok(Some(i));
    }
    for var in ["AWS_BATCH_JOB_ARRAY_INDEX", "JOB_COMPLETION_INDEX"] {
        if let Ok(v) = std::env::var(var) {
            return v.trim().parse().map(Some).map_err(|_| {
                JobError::invalid(
                    "shard_index",
                    format!("{var}={v:?} is not a shard index: it must be a whole number"),
                )
            });
        }
    }
    Ok(None)
}

/// Runs shard `index` (`None`: from the environment) of the sweep packed in `store` and stores its
/// rows there. A cancel stops it before it stores anything: its rows stay unwritten until a re-run.
pub fn run_shard(
    store: &str,
    index: Option<u64>,
    ctx: &JobContext,
) -> Result<JobOutcome<ShardSummary>> {
    ctx.report(Stage::InitializeBacktest, "reading the packed sweep", 0, 1);
    let remote = Remote::open(store, ctx.runtime.clone())?;
    let packed = remote.packed()?;
    let index = shard_index(index)?.ok_or_else(|| {
        JobError::invalid("shard_index", "no shard index: pass --shard-index I or set AWS_BATCH_JOB_ARRAY_INDEX / JOB_COMPLETION_INDEX")
    })?;
    if index >= packed.shard_count {
        refuse!(
            "shard_index",
            "shard index {index} is not below the sweep's {} shards: indexes run from 0",
            packed.shard_count
        );
    }
    let markets = packed_markets(&packed)?;
    let several = markets.len() > 1;
    let total = row_count(markets.len(), packed.plan.len())?;
    let (from, to) = shard_range(total, index, packed.shard_count);
    let mut rows = Vec::new();
    let t0 = Instant::now();
    let mut done = 0u64;
    // Only the markets this shard's rows fall in are fetched and decoded.
    for (mi, a, b) in market_slices(packed.plan.len(), markets.len(), from, to) {
        let bars = remote.bars(&packed, mi)?;
        let cfg = packed.market(mi).map(|(_, c)| c).ok_or_else(|| {
            JobError::shards(format!(
                "plan.json has no market {mi}: pack again into a new --store prefix"
            ))
        })?;
        // The market columns lead every row of a several-market sweep, as in the single-machine file.
        let prefix = if several {
            markets[mi].csv_prefix()
        } else {
            String::new()
        };
        let ran = run_sets(&bars, cfg, &packed.plan, a, b, CHUNK, |row| {
            if ctx.cancel.is_cancelled() {
                return Err("cancelled".to_string());
            }
            rows.extend_from_slice(prefix.as_bytes());
            rows.extend_from_slice(csv_line(&row).as_bytes());
            rows.push(b'\n');
            done += 1;
            if done.is_multiple_of(CHUNK) {
                ctx.report(
                    Stage::WorkingOnChunk,
                    rows_left(to - from - done),
                    done,
                    to - from,
                );
            }
            Ok(())
        });
        if let Some(c) = ctx.cancel.cancelled() {
            return Ok(JobOutcome::Cancelled(c));
        }
        ran?;
    }
    ctx.report(Stage::AccumulatingChunks, "storing the shard's rows", 0, 1);
    remote.put_shard(index, packed.shard_count, rows)?;
    ctx.report(Stage::Completed, "done", 1, 1);
    Ok(JobOutcome::Done(ShardSummary {
        index,
        shard_count: packed.shard_count,
        from,
        to,
        several,
        seconds: t0.elapsed().as_secs_f64(),
    }))
}

/// The original's message for rows still to run ("N sets remaining").
fn rows_left(n: u64) -> String {
    format!("{n} sets remaining")
}

/// Checks that shard `index`'s object holds exactly the rows [`shard_range`] gives it, in order, each
/// led by its market's columns (several markets) and its set number.
fn check_shard(
    index: u64,
    packed: &Packed,
    bytes: &[u8],
    total: u64,
    markets: &[Market],
    store: &str,
) -> Result<()> {
    let count = packed.shard_count;
    let sets = packed.plan.len();
    let (from, to) = shard_range(total, index, count);
    let name = Remote::shard_name(index, count);
    let rerun = format!(
        "it was replaced or damaged: re-run that shard (vectura sweep run --store {store} --shard-index {index}), then merge again"
    );
    let text = std::str::from_utf8(bytes)
        .map_err(|_| JobError::shards(format!("{name} is not text; {rerun}")))?;
    if !text.is_empty() && !text.ends_with('\n') {
        damaged!("{name} ends in a partial row; {rerun}");
    }
    let lines = text.split_terminator('\n').count() as u64;
    if lines != to - from {
        damaged!(
            "{name} holds {lines} rows, but shard {index} of {count} has {} (rows {from}..{to} of the sweep); {rerun}",
            to - from
        );
    }
    let several = markets.len() > 1;
    for (k, line) in text.split_terminator('\n').enumerate() {
        // `sets` is above 0: the shard holds a row, and the rows total markets × sets.
        let row = from + k as u64;
        let (mi, set) = ((row / sets.max(1)) as usize, row % sets.max(1));
        let m = &markets[mi.min(markets.len() - 1)];
        let rest = if several {
            line.strip_prefix(m.csv_prefix().as_str())
        } else {
            Some(line)
        };
        let got = rest
            .and_then(|r| r.split(',').next())
            .and_then(|s| s.parse::<u64>().ok());
        if got != Some(set) {
            let lead: Vec<&str> = line.split(',').take(if several { 4 } else { 1 }).collect();
            let want = if several {
                format!("set {set} of {} {}..{}", m.symbol, m.start, m.end)
            } else {
                format!("set {set}")
            };
            damaged!(
                "{name} row {} should be {want} but starts {:?}; {rerun}",
                k + 1,
                lead.join(",")
            );
        }
    }
    Ok(())
}

/// Waits for the local shard processes; a failed one is named with the command that re-runs it. On
/// a cancel its signal (SIGTERM when it came without one) is passed on to every shard still
/// running and, once they have stopped (each cleaning up after itself), the sweep ends cancelled.
fn wait_shards(
    mut children: Vec<std::process::Child>,
    store: &str,
    ctx: &JobContext,
) -> Result<Option<Cancel>> {
    let n = children.len() as u64;
    let mut done: Vec<Option<std::process::ExitStatus>> = vec![None; children.len()];
    let mut forwarded = false;
    let wait_err = |e: std::io::Error| JobError::ShardProcess {
        message: "cannot wait for the shard processes".to_string(),
        source: Some(e),
    };
    while done.iter().any(Option::is_none) {
        if let (Some(c), false) = (ctx.cancel.cancelled(), forwarded) {
            let sig = c.signal.unwrap_or(libc::SIGTERM);
            for (c, d) in children.iter().zip(&done) {
                if d.is_none() {
                    // SAFETY: kill(2) on the pid of a child not yet reaped (so not reused).
                    unsafe { libc::kill(c.id() as libc::pid_t, sig) };
                }
            }
            forwarded = true;
        }
        let before = done.iter().filter(|d| d.is_some()).count();
        for (c, d) in children.iter_mut().zip(done.iter_mut()) {
            if d.is_none() {
                *d = c.try_wait().map_err(wait_err)?;
            }
        }
        let after = done.iter().filter(|d| d.is_some()).count();
        if after > before {
            ctx.report(
                Stage::WorkingOnChunk,
                format!("{} shard processes running", n - after as u64),
                after as u64,
                n,
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if let Some(c) = ctx.cancel.cancelled() {
        return Ok(Some(c));
    }
    for (i, st) in done.into_iter().flatten().enumerate() {
        if !st.success() {
            return Err(JobError::ShardProcess {
                message: format!("shard process {i} failed ({st}); re-run it with: vectura sweep run --store {store} --shard-index {i}"),
                source: None,
            });
        }
    }
    Ok(None)
}

/// Merges every shard's rows of the sweep packed in `store` into `output` (and, when `record`,
/// records them in the database), exactly as the single-machine run of the sweep writes them.
pub fn merge(
    store: &str,
    output: &Path,
    record: bool,
    ctx: &JobContext,
) -> Result<JobOutcome<MergeSummary>> {
    let kind = OutputKind::of(output, "--output")?;
    ctx.report(Stage::AccumulatingChunks, "reading the shards' rows", 0, 1);
    let remote = Remote::open(store, ctx.runtime.clone())?;
    let packed = remote.packed()?;
    let markets = packed_markets(&packed)?;
    let several = markets.len() > 1;
    let sets = packed.plan.len();
    let total = row_count(markets.len(), sets)?;
    let shards = remote.shard_rows(packed.shard_count)?;
    // Each shard's object must hold exactly its own rows: one replaced by a copy of another's
    // would otherwise merge into a file with the right row count and the wrong sets.
    for (i, b) in shards.iter().enumerate() {
        check_shard(i as u64, &packed, b, total, &markets, store)?;
    }
    let rows = shards.concat();
    let n = rows.iter().filter(|&&b| b == b'\n').count();
    // Every row a shard writes ends in a newline: anything after the last one is damage, and would
    // otherwise be read as one more row than counted.
    if rows.last().is_some_and(|&b| b != b'\n') {
        damaged!(
            "the shards' results end in a partial row: re-run the shards into a new --store prefix"
        );
    }
    if n as u64 != total {
        damaged!(
            "the shards hold {n} rows but the sweep has {total} ({} markets × {sets} sets): a shard's results are incomplete; re-run it",
            markets.len()
        );
    }
    let text = std::str::from_utf8(&rows).map_err(|_| {
        JobError::shards(
            "the shards' results are not text: re-run the shards into a new --store prefix",
        )
    })?;
    // Parsed once up front: a damaged row stops the merge before any file or database row is written.
    // Row i is set i % sets of market i / sets: a row out of place or of another market is damage.
    let records = if kind == OutputKind::Parquet || record {
        text.lines()
            .enumerate()
            .map(|(i, line)| {
                // `sets` is above 0 whenever there is a row (the count matched markets × sets).
                let (mi, set) = ((i as u64 / sets.max(1)) as usize, i as u64 % sets.max(1));
                let m = &markets[mi.min(markets.len() - 1)];
                let prefix = if several { m.csv_prefix() } else { String::new() };
                let rec = line
                    .strip_prefix(prefix.as_str())
                    .map(Record::parse_csv)
                    .transpose()?
                    .filter(|r| r.set == set)
                    .ok_or_else(|| JobError::shards(format!("row {i} of the shards' results is not set {set} of {} {}..{}: re-run the shards into a new --store prefix", m.symbol, m.start, m.end)))?;
                Ok((i as u64, mi, rec))
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    let mut recorder = if record {
        let cfgs = (0..markets.len())
            .filter_map(|i| packed.market(i).map(|(_, c)| c))
            .collect::<Vec<_>>();
        Some(DbRecorder::start(new_run(&cfgs, &packed.plan)?, ctx)?)
    } else {
        None
    };
    let mut cancelled = None;
    let written = (|| -> Result<()> {
        if let Some(r) = recorder.as_mut() {
            // Keyed as the single-machine run keys its rows: by place in the run when several markets.
            for (i, mi, rec) in &records {
                let row = if several {
                    rec.to_store_in(&markets[*mi], *i)
                } else {
                    rec.to_store()
                };
                r.push(row)
                    .map_err(|detail| JobError::RecordStopped { detail })?;
            }
        }
        if let Some(c) = ctx.cancel.cancelled() {
            cancelled = Some(c);
            return Ok(());
        }
        match kind {
            OutputKind::Csv => {
                let mut w = CsvOut::create(output, several)?;
                w.write_all(&rows)?;
                if let Some(c) = ctx.cancel.cancelled() {
                    cancelled = Some(c);
                    return Ok(());
                }
                w.finish()
            }
            OutputKind::Parquet => {
                let mut w = ParquetOut::create(output, several)?;
                for (_, mi, rec) in &records {
                    w.row(several.then(|| &markets[*mi]), rec)?;
                }
                if let Some(c) = ctx.cancel.cancelled() {
                    cancelled = Some(c);
                    return Ok(());
                }
                w.finish()
            }
        }
    })();
    let recorded = finish_recorder(recorder.take(), &written, cancelled.as_ref(), ctx)?;
    written?;
    if let Some(c) = cancelled {
        return Ok(JobOutcome::Cancelled(c));
    }
    ctx.report(Stage::Completed, "done", 1, 1);
    Ok(JobOutcome::Done(MergeSummary {
        shard_count: packed.shard_count,
        rows: n,
        several,
        output: output.to_path_buf(),
        recorded,
    }))
}

/// What a sweep run of `plan` over the markets of `cfgs` records before its rows: every symbol
/// once, the span from the earliest start to the latest end, and a row per set per market.
fn new_run(
    cfgs: &[&vectura_backtest::BacktestConfig],
    plan: &Plan,
) -> Result<vectura_store::NewSweepRun> {
    let first = cfgs.first().ok_or_else(|| {
        JobError::invalid(
            "symbols",
            "a sweep without a market: give --symbol or --data",
        )
    })?;
    let mut symbols: Vec<String> = Vec::new();
    for c in cfgs {
        if !symbols.contains(&c.symbol) {
            symbols.push(c.symbol.clone());
        }
    }
    let set_count = plan.len().checked_mul(cfgs.len() as u64).ok_or_else(|| {
        JobError::invalid(
            "params",
            format!(
                "{} markets × {} sets is too many rows: sweep fewer",
                cfgs.len(),
                plan.len()
            ),
        )
    })?;
    Ok(vectura_store::NewSweepRun {
        symbols,
        start_date: cfgs.iter().map(|c| c.start_date).min(),
        end_date: cfgs.iter().map(|c| c.end_date).max(),
        fill: format!("{:?}", first.fill),
        plan: serde_json::to_value(plan).map_err(crate::error::json_err(
            "the sweep plan cannot be written as JSON",
        ))?,
        set_count,
    })
}

/// Ends a recorded run: failed with the cancel's reason or the error when `outcome` failed, done
/// otherwise. Returns where it was recorded when it is done.
fn finish_recorder(
    r: Option<DbRecorder>,
    outcome: &Result<()>,
    cancelled: Option<&Cancel>,
    ctx: &JobContext,
) -> Result<Option<Recorded>> {
    let Some(r) = r else { return Ok(None) };
    let failure = match (cancelled, outcome) {
        (Some(c), _) => Some(c.reason.clone()),
        (None, Err(e)) => Some(chain(e)),
        (None, Ok(())) => None,
    };
    match failure {
        None => {
            let run_id = r.finish(None)?;
            Ok(Some(Recorded {
                run_id,
                at: db::describe_store(ctx)?,
            }))
        }
        Some(f) => match r.finish(Some(&f)) {
            // The sweep's own error (or the cancel) is reported by the caller; the run is marked failed.
            Ok(_) => Ok(None),
            // A database failure is often what stopped the sweep: name it with the sweep's error.
            Err(db) => Err(JobError::SweepAndRecord {
                sweep: f,
                record: Box::new(db),
            }),
        },
    }
}

/// The formats `--output` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputKind {
    Csv,
    Parquet,
}

impl OutputKind {
    fn of(p: &Path, flag: &str) -> Result<OutputKind> {
        match p
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Ok(OutputKind::Csv),
            Some("parquet") => Ok(OutputKind::Parquet),
            // `/dev/null`, `/dev/stdout`, a pipe: no name to tell the format by, so CSV, as text.
            None if crate::out_file::is_stream_path(p) => Ok(OutputKind::Csv),
            _ => refuse!(
                "output",
                "{flag} {}: give a .csv or .parquet file",
                p.display()
            ),
        }
    }
}

/// An open results file of either format.
enum Output {
    Csv(CsvOut),
    // Boxed: the Parquet writer's buffers dwarf the CSV writer.
    Parquet(Box<ParquetOut>),
}

/// Checks a sweep request and loads every market's bars (before any set runs, once each).
/// Progress: `initialize_backtest`, one event per market loaded; the cancel is checked between
/// markets.
pub fn prepare(args: &SweepRequest, ctx: &JobContext) -> Result<JobOutcome<PreparedSweep>> {
    if args.params.is_empty() {
        refuse!(
            "params",
            "no --param: give at least one, e.g. --param buy_below_pct=1:5:0.5"
        );
    }
    if args.base.strategy != StrategyKind::Grid {
        refuse!(
            "strategy",
            "--strategy {:?}: sweeps vary the grid's parameters; use --strategy grid",
            args.base.strategy
        );
    }
    if !metric_names().contains(&args.rank_by.as_str()) {
        refuse!(
            "rank_by",
            "--rank-by {:?} is not a metric: use one of {}",
            args.rank_by,
            metric_names().join(", ")
        );
    }
    if args.shard_count == 0 {
        refuse!("shard_count", "--shard-count is 0: give 1 or more");
    }
    if args.local_processes == Some(0) {
        refuse!("local_processes", "--local-processes 0 starts no process to run the sets: give 1 or more (the number of cores, for one)");
    }
    if args.shard_count.max(args.local_processes.unwrap_or(0)) > crate::shards::MAX_SHARDS {
        refuse!(
            "shard_count",
            "--shard-count / --local-processes above {}: give fewer shards",
            crate::shards::MAX_SHARDS
        );
    }
    let shard_count = args.local_processes.unwrap_or(args.shard_count);
    let index = shard_index(args.shard_index)?;
    if index.unwrap_or(0) >= shard_count {
        refuse!(
            "shard_index",
            "--shard-index {} is not below --shard-count {}: indexes run from 0",
            index.unwrap_or(0),
            shard_count
        );
    }
    if args.local_processes.is_some() && (args.store.is_none() || args.output.is_none()) {
        refuse!(
            "local_processes",
            "--local-processes needs --store URL and --output FILE"
        );
    }
    let kind = args
        .output
        .as_deref()
        .map(|p| OutputKind::of(p, "--output"))
        .transpose()?;
    if args.report.is_some()
        && (args.walk_forward.is_some() || args.store.is_some() || shard_count > 1)
    {
        refuse!("report", "--report draws a whole single-machine sweep: drop --report, or --walk-forward / --store / --shard-count");
    }
    if args.walk_forward.is_some() && kind == Some(OutputKind::Parquet) {
        refuse!("output", "--output with --walk-forward: the walk-forward table is written as CSV; give a .csv file");
    }
    let axes = args
        .params
        .iter()
        .map(|s| ParamAxis::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let market_args = market_args(args)?;
    let several = market_args.len() > 1;
    let mut preps = Vec::with_capacity(market_args.len());
    for (i, a) in market_args.iter().enumerate() {
        ctx.report(
            Stage::InitializeBacktest,
            "loading bars",
            i as u64,
            market_args.len() as u64,
        );
        if let Some(c) = ctx.cancel.cancelled() {
            // Nothing is written yet: the sweep is simply not run.
            return Ok(JobOutcome::Cancelled(c));
        }
        // With --range or several symbols, an error names the market it is about (the loader's own
        // messages speak of --start-date/--end-date and of one symbol).
        let label = match (&a.symbol, a.start_date, a.end_date) {
            (s, Some(f), Some(t)) if !args.ranges.is_empty() => Some(format!(
                "{}--range {f}:{t}",
                s.as_ref()
                    .map(|s| format!("--symbol {s} "))
                    .unwrap_or_default()
            )),
            (Some(s), _, _) if several => Some(format!("--symbol {s}")),
            _ => None,
        };
        let p = match label {
            Some(market) => prepare_market(a, ctx).map_err(|e| JobError::InMarket {
                market,
                source: Box::new(e),
            })?,
            None => prepare_market(a, ctx)?,
        };
        preps.push(p);
    }
    // Widened bars are reported with their lines, once per distinct message (markets cut from one
    // file share its widened bars).
    let mut notes: Vec<String> = Vec::new();
    for w in preps.iter().filter_map(|p| p.widened.message()) {
        if !notes.contains(&w) {
            notes.push(w);
        }
    }
    let mut calendar_notes: Vec<String> = Vec::new();
    for w in preps.iter().filter_map(|p| p.calendar_note.clone()) {
        if !calendar_notes.contains(&w) {
            calendar_notes.push(w);
        }
    }
    let prep = preps.first().ok_or_else(|| {
        JobError::invalid(
            "symbols",
            "a sweep without a market: give --symbol or --data",
        )
    })?;
    let plan = Plan::new(prep.params, axes, args.sampling.clone())?;
    let markets: Vec<Market> = preps
        .iter()
        .map(|p| Market {
            symbol: p.symbol.clone(),
            start: p.cfg.start_date,
            end: p.cfg.end_date,
        })
        .collect();
    // One heat map per market: each market's cells are the best over its own sets only.
    let heats = match &args.report {
        Some(r) => Some(
            markets
                .iter()
                .map(|_| {
                    Heat::new(
                        &plan,
                        &args.rank_by,
                        r.heatmap_x.as_deref(),
                        r.heatmap_y.as_deref(),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    Ok(JobOutcome::Done(PreparedSweep {
        preps,
        markets,
        plan,
        notes,
        calendar_notes,
        shard_index: index,
        shard_count,
        heats,
        kind,
    }))
}

/// Runs a prepared sweep as `args` asks: walk-forward; packed into `args.store` (then its shard
/// `shard_index`, or every shard as a local process started by `launch`, merged into `output`);
/// or here, streaming rows in set order to `output` and the database. Progress:
/// `working_on_chunk` every 256 rows (sets done of all), `accumulating_chunks` while files are
/// finished, `completed`. A cancel stops it at its next row: the temporary output is removed, the
/// recorded run is marked failed with the cancel's reason (its rows so far stay).
pub fn run(
    prep: PreparedSweep,
    args: &SweepRequest,
    launch: Option<&ShardLauncher>,
    ctx: &JobContext,
) -> Result<JobOutcome<SweepDone>> {
    if let Some(wf) = &args.walk_forward {
        return walk(args, wf, &prep, ctx).map(|o| map_outcome(o, SweepDone::Walked));
    }
    let PreparedSweep {
        preps,
        markets,
        plan,
        shard_index: index,
        shard_count,
        mut heats,
        kind,
        ..
    } = prep;
    let several = markets.len() > 1;
    let first = &preps[0];
    if let Some(store) = &args.store {
        ctx.report(Stage::AccumulatingChunks, "packing the sweep", 0, 1);
        let remote = Remote::open(store, ctx.runtime.clone())?;
        let packed = Packed {
            format: 1,
            symbol: first.symbol.clone(),
            plan: plan.clone(),
            cfg: first.cfg.clone(),
            shard_count,
            bars: 0,
            bars_hash: String::new(),
            markets: preps[1..]
                .iter()
                .map(|p| PackedMarket {
                    symbol: p.symbol.clone(),
                    cfg: p.cfg.clone(),
                    bars: 0,
                    bars_hash: String::new(),
                })
                .collect(),
        };
        let series: Vec<_> = preps.iter().map(|p| &p.bars).collect();
        remote.pack(&packed, &series)?;
        if let Some(n) = args.local_processes {
            let launch = launch.ok_or_else(|| {
                JobError::invalid(
                    "local_processes",
                    "--local-processes: this caller cannot start shard processes; run the shards with vectura sweep run",
                )
            })?;
            let children: Vec<_> = (0..n)
                .map(|i| {
                    launch(store, i)
                        .spawn()
                        .map_err(|e| JobError::ShardProcess {
                            message: format!("cannot start shard process {i}"),
                            source: Some(e),
                        })
                })
                .collect::<Result<_>>()?;
            if let Some(c) = wait_shards(children, store, ctx)? {
                return Ok(JobOutcome::Cancelled(c));
            }
            let output = args.output.as_deref().unwrap_or(Path::new("sweep.csv"));
            return merge(store, output, args.record, ctx)
                .map(|o| map_outcome(o, SweepDone::Merged));
        }
        return match index {
            Some(i) => run_shard(store, Some(i), ctx).map(|o| map_outcome(o, SweepDone::Shard)),
            None => {
                ctx.report(Stage::Completed, "packed", 1, 1);
                Ok(JobOutcome::Done(SweepDone::Packed(PackSummary {
                    store: store.clone(),
                    markets: markets.len(),
                    sets: plan.len(),
                    bars: preps.iter().map(|p| p.bars.len()).sum(),
                    shard_count,
                })))
            }
        };
    }
    // A shard is a contiguous slice of all rows (markets in order, then sets), as on the store path.
    let (from, to) = shard_range(
        row_count(markets.len(), plan.len())?,
        index.unwrap_or(0),
        shard_count,
    );
    let rows_total = to - from;
    let slices = market_slices(plan.len(), markets.len(), from, to);
    ctx.report(Stage::WorkingOnChunk, rows_left(rows_total), 0, rows_total);
    let mut writer = match (&args.output, kind) {
        (Some(p), Some(OutputKind::Parquet)) => {
            Some(Output::Parquet(Box::new(ParquetOut::create(p, several)?)))
        }
        (Some(p), _) => Some(Output::Csv(CsvOut::create(p, several)?)),
        (None, _) => None,
    };
    // Only a whole single-machine run is recorded: a shard's rows (--shard-index) are a part of a
    // sweep, recorded when `sweep merge` puts the parts together.
    let mut recorder = if !args.record || shard_count > 1 {
        None
    } else {
        let cfgs: Vec<_> = preps.iter().map(|p| &p.cfg).collect();
        Some(DbRecorder::start(new_run(&cfgs, &plan)?, ctx)?)
    };
    // One ranking per market (a market's top k holds every row of it that can be in the overall
    // top k); they are merged after the run.
    let mut tops: Vec<TopK> = markets
        .iter()
        .map(|_| TopK::new(args.top, &args.rank_by))
        .collect();
    let t0 = Instant::now();
    let mut ran: Result<()> = Ok(());
    let mut cancelled = None;
    let mut done = 0u64;
    // Markets run one after the other, each streaming its rows in set order: memory stays that of
    // one market's sweep however many markets there are.
    for &(mi, a, b) in &slices {
        let (p, market, top) = (&preps[mi], &markets[mi], &mut tops[mi]);
        let tag = several.then_some(market);
        // The CSV line's leading market columns (none for a one-market sweep, whose file is unchanged).
        let prefix = match tag {
            Some(m) => m.csv_prefix(),
            None => String::new(),
        };
        // The row's place in the whole run: the database key of a several-market run.
        let base = mi as u64 * plan.len();
        ran = run_sets(&p.bars, &p.cfg, &plan, a, b, CHUNK, |row| {
            if ctx.cancel.is_cancelled() {
                return Err("cancelled".to_string());
            }
            top.offer(&row);
            if let Some(h) = heats.as_mut() {
                h[mi].offer(&row);
            }
            done += 1;
            if done.is_multiple_of(CHUNK) {
                ctx.report(
                    Stage::WorkingOnChunk,
                    rows_left(rows_total - done),
                    done,
                    rows_total,
                );
            }
            let rec = match (&writer, &recorder) {
                (Some(Output::Parquet(_)), _) | (_, Some(_)) => Some(Record::from_row(&row)),
                _ => None,
            };
            if let (Some(r), Some(rec)) = (recorder.as_mut(), &rec) {
                r.push(match tag {
                    Some(m) => rec.to_store_in(m, base + row.set),
                    None => rec.to_store(),
                })?;
            }
            match (writer.as_mut(), &rec) {
                (Some(Output::Csv(w)), _) => w
                    .row_in(&prefix, &csv_line(&row))
                    .map_err(|e| e.to_string()),
                (Some(Output::Parquet(w)), Some(rec)) => w.row(tag, rec).map_err(|e| chain(&e)),
                _ => Ok(()),
            }
        })
        .map(|_| ())
        .map_err(JobError::from);
        // A cancel is reported as itself, not as a failed set.
        if let Some(c) = ctx.cancel.cancelled() {
            cancelled = Some(c);
            ran = Ok(());
            break;
        }
        if ran.is_err() {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let report_path = args.report.as_ref().map(|r| r.path.clone());
    let written = match cancelled {
        // Dropping the writer removes its temporary file.
        Some(_) => {
            drop(writer);
            Ok(())
        }
        None => ran
            .and_then(|()| {
                ctx.report(Stage::AccumulatingChunks, "writing the results", 0, 1);
                match writer {
                    Some(Output::Csv(w)) => w.finish(),
                    Some(Output::Parquet(w)) => w.finish(),
                    None => Ok(()),
                }
            })
            .and_then(|()| match (&report_path, &heats) {
                (Some(path), Some(heats)) if several => {
                    // The symbols once each, in market order, and the span of all ranges.
                    let mut symbols: Vec<&str> = Vec::new();
                    for m in &markets {
                        if !symbols.contains(&m.symbol.as_str()) {
                            symbols.push(&m.symbol);
                        }
                    }
                    let symbols = symbols.join(", ");
                    let summary = report::Summary {
                        symbol: &symbols,
                        start: markets
                            .iter()
                            .map(|m| m.start)
                            .min()
                            .unwrap_or(first.cfg.start_date)
                            .to_string(),
                        end: markets
                            .iter()
                            .map(|m| m.end)
                            .max()
                            .unwrap_or(first.cfg.end_date)
                            .to_string(),
                        fill: fill_flag(first.cfg.fill).to_string(),
                        sets: plan.len(),
                        bars: preps.iter().map(|p| p.bars.len()).sum(),
                        seconds: secs,
                    };
                    let maps: Vec<_> = markets.iter().zip(heats).collect();
                    let rows: Vec<_> = rank_markets(&tops, args.top, &args.rank_by)
                        .into_iter()
                        .map(|(mi, r)| (&markets[mi], r))
                        .collect();
                    write_report(path, &report::render_markets(&summary, &maps, &rows))
                }
                (Some(path), Some(heats)) => {
                    let summary = report::Summary {
                        symbol: &first.symbol,
                        start: first.cfg.start_date.to_string(),
                        end: first.cfg.end_date.to_string(),
                        fill: fill_flag(first.cfg.fill).to_string(),
                        sets: rows_total,
                        bars: first.bars.len(),
                        seconds: secs,
                    };
                    let rows: Vec<_> = tops[0].rows().collect();
                    write_report(path, &report::render(&summary, &heats[0], &rows))
                }
                _ => Ok(()),
            }),
    };
    let recorded = finish_recorder(recorder, &written, cancelled.as_ref(), ctx)?;
    written?;
    if let Some(c) = cancelled {
        return Ok(JobOutcome::Cancelled(c));
    }
    // Work done: each slice's sets times its market's bars.
    let set_bars: f64 = slices
        .iter()
        .map(|&(mi, a, b)| (b - a) as f64 * preps[mi].bars.len() as f64)
        .sum();
    let top = rank_markets(&tops, args.top, &args.rank_by)
        .into_iter()
        .map(|(mi, r)| (mi, r.clone()))
        .collect();
    ctx.report(Stage::Completed, "done", rows_total, rows_total);
    Ok(JobOutcome::Done(SweepDone::Ran(RunSummary {
        sets: plan.len(),
        bars: preps.iter().map(|p| p.bars.len()).collect(),
        markets,
        from,
        to,
        shard_index: index,
        shard_count,
        seconds: secs,
        set_bars,
        top,
        output: args.output.clone(),
        report: report_path,
        recorded,
    })))
}

/// A job's outcome with its result wrapped (`SweepDone::Merged`, …).
fn map_outcome<T>(o: JobOutcome<T>, f: impl FnOnce(T) -> SweepDone) -> JobOutcome<SweepDone> {
    match o {
        JobOutcome::Done(t) => JobOutcome::Done(f(t)),
        JobOutcome::Cancelled(c) => JobOutcome::Cancelled(c),
    }
}

/// Writes the page through a temporary name, so a failed write leaves no partial report.
fn write_report(path: &Path, html: &str) -> Result<()> {
    OutFile::write_all(path, "--report", html.as_bytes())
}

/// The best `k` rows by `metric` over every market's ranking, as (market index, row): higher first,
/// rows without a value after every number, ties to the earlier market, then to the lower set (a
/// one-market ranking comes back unchanged).
fn rank_markets<'a>(tops: &'a [TopK], k: usize, metric: &str) -> Vec<(usize, &'a SweepRow)> {
    let mut all: Vec<(Option<f64>, usize, &SweepRow)> = tops
        .iter()
        .enumerate()
        .flat_map(|(mi, t)| {
            t.rows().map(move |r| {
                let v = vectura_backtest::sweep::metric(&r.metrics, metric).filter(|v| !v.is_nan());
                (v, mi, r)
            })
        })
        .collect();
    // Stable: rows of equal value keep market order, and within a market the TopK's set order.
    all.sort_by(|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    all.into_iter().take(k).map(|(_, mi, r)| (mi, r)).collect()
}

/// Parses `--walk-forward IS:OOS` (calendar days, both above 0).
pub fn parse_walk_forward(spec: &str) -> Result<(i64, i64)> {
    let bad = || {
        JobError::invalid(
            "walk_forward",
            format!(
                "--walk-forward {spec:?}: give IS:OOS in calendar days, both above 0, e.g. 180:30"
            ),
        )
    };
    let (a, b) = spec.split_once(':').ok_or_else(bad)?;
    let (is_days, oos_days): (i64, i64) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if is_days <= 0 || oos_days <= 0 {
        return Err(bad());
    }
    Ok((is_days, oos_days))
}

/// Walks forward on every market independently (each over its own dates) and writes the CSV of
/// all markets' windows to `output`.
fn walk(
    args: &SweepRequest,
    spec: &str,
    prep: &PreparedSweep,
    ctx: &JobContext,
) -> Result<JobOutcome<WalkSummary>> {
    let (is_days, oos_days) = parse_walk_forward(spec)?;
    let several = prep.markets.len() > 1;
    // Every market is walked before anything is written: a market without a full window stops the
    // run with no file written.
    let mut walks = Vec::with_capacity(prep.preps.len());
    let n = prep.preps.len() as u64;
    for (i, (p, m)) in prep.preps.iter().zip(&prep.markets).enumerate() {
        if let Some(c) = ctx.cancel.cancelled() {
            return Ok(JobOutcome::Cancelled(c));
        }
        ctx.report(
            Stage::WorkingOnChunk,
            format!("{} markets remaining", n - i as u64),
            i as u64,
            n,
        );
        let rows = vectura_backtest::sweep::walk_forward(
            &p.bars,
            &p.cfg,
            &prep.plan,
            is_days,
            oos_days,
            &args.rank_by,
            args.top,
        )?;
        if rows.is_empty() {
            let of = if several {
                format!(" of {} {}:{}", m.symbol, m.start, m.end)
            } else {
                String::new()
            };
            return Err(JobError::NoBars { message: format!("--walk-forward {spec}: the data{of} ({} bars) holds no full in-sample window followed by out-of-sample bars: shorten the windows", p.bars.len()) });
        }
        walks.push(MarketWalk {
            market: m.clone(),
            rows,
        });
    }
    if let Some(c) = ctx.cancel.cancelled() {
        return Ok(JobOutcome::Cancelled(c));
    }
    if let Some(p) = &args.output {
        ctx.report(Stage::AccumulatingChunks, "writing the results", 0, 1);
        let mut w = CsvOut::create_raw(p)?;
        w.write_all(walk_csv(&walks).as_bytes())?;
        w.finish()?;
    }
    ctx.report(Stage::Completed, "done", n, n);
    Ok(JobOutcome::Done(WalkSummary {
        in_sample_days: is_days,
        out_of_sample_days: oos_days,
        walks,
        output: args.output.clone(),
    }))
}

/// The walk-forward CSV: with several markets the rows lead with the market, as the sweep's own
/// results file does.
pub fn walk_csv(walks: &[MarketWalk]) -> String {
    let several = walks.len() > 1;
    let mut csv = String::new();
    if several {
        csv.push_str("symbol,start_date,end_date,");
    }
    csv.push_str("window,is_start,is_end,oos_start,oos_end,rank,set,capital_pct,buy_below_pct,sell_above_pct,buy_after_sell_pct,cash_floor,order_gap_pct,is_metric,oos_metric,is_max_drawdown_pct,oos_max_drawdown_pct\n");
    for w in walks {
        let prefix = if several {
            w.market.csv_prefix()
        } else {
            String::new()
        };
        for r in &w.rows {
            let p = &r.params;
            csv.push_str(&format!(
                "{prefix}{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                r.window,
                r.in_sample.0,
                r.in_sample.1,
                r.out_of_sample.0,
                r.out_of_sample.1,
                r.rank,
                r.set,
                p.capital_pct,
                p.buy_below_pct,
                p.sell_above_pct,
                p.buy_after_sell_pct,
                p.cash_floor,
                p.order_gap_pct,
                r.in_sample_metric.map_or(String::new(), |v| v.to_string()),
                r.out_of_sample_metric
                    .map_or(String::new(), |v| v.to_string()),
                r.in_sample_max_dd_pct,
                r.out_of_sample_max_dd_pct
            ));
        }
    }
    csv
}

/// A CSV file written through a temporary name and renamed when complete (see [`OutFile`]).
struct CsvOut {
    file: OutFile,
    w: BufWriter<std::fs::File>,
}

/// A write error of `--output`.
fn output_err(e: std::io::Error) -> JobError {
    JobError::io("writing --output: check the disk has room", e)
}

impl CsvOut {
    /// A results file with its header; with `markets`, led by the market columns.
    fn create(path: &Path, markets: bool) -> Result<CsvOut> {
        let mut c = Self::create_raw(path)?;
        if markets {
            write!(c.w, "symbol,start_date,end_date,").map_err(output_err)?;
        }
        writeln!(c.w, "{}", csv_header()).map_err(output_err)?;
        Ok(c)
    }

    fn create_raw(path: &Path) -> Result<CsvOut> {
        let file = OutFile::prepare(path, "--output")?;
        let f = file.open()?;
        Ok(CsvOut {
            file,
            w: BufWriter::new(f),
        })
    }

    /// Writes `bytes` as they are.
    fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.w.write_all(bytes).map_err(output_err)
    }

    /// Writes `prefix` (the market columns, or nothing) and then `line`.
    fn row_in(&mut self, prefix: &str, line: &str) -> std::io::Result<()> {
        writeln!(self.w, "{prefix}{line}")
    }

    fn finish(mut self) -> Result<()> {
        self.w.flush().map_err(output_err)?;
        drop(self.w);
        self.file.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::{market_slices, shard_range};

    #[test]
    fn shards_of_several_markets_are_contiguous_slices_of_all_rows() {
        // 3 markets × 4 sets = 12 rows; rows 3..9 are set 3 of market 0, all of 1, set 0 of 2.
        assert_eq!(
            market_slices(4, 3, 3, 9),
            vec![(0, 3, 4), (1, 0, 4), (2, 0, 1)]
        );
        assert_eq!(market_slices(4, 3, 4, 8), vec![(1, 0, 4)]);
        assert!(market_slices(4, 3, 5, 5).is_empty());
        assert!(market_slices(0, 3, 0, 0).is_empty());
        for count in 1..8 {
            let mut rows = vec![];
            for i in 0..count {
                let (a, b) = shard_range(12, i, count);
                for (m, x, y) in market_slices(4, 3, a, b) {
                    rows.extend((x..y).map(|s| (m, s)));
                }
            }
            let want: Vec<_> = (0..3).flat_map(|m| (0..4).map(move |s| (m, s))).collect();
            assert_eq!(rows, want, "{count} shards");
        }
    }

    #[test]
    fn shards_cover_the_plan_exactly_once() {
        for len in [0u64, 1, 7, 10, 1001] {
            for count in 1..6 {
                let mut next = 0;
                for i in 0..count {
                    let (a, b) = shard_range(len, i, count);
                    assert_eq!(a, next);
                    next = b;
                }
                assert_eq!(next, len);
            }
        }
    }
}
