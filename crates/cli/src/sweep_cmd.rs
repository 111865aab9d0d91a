//! `vectura sweep`: many grid parameter sets over the same bars, on all cores.

mod db;
mod parquet_out;
mod record;
mod report;

use db::DbRecorder;
use parquet_out::ParquetOut;
use record::Record;
use report::Heat;

use crate::backtest_cmd::{prepare, BacktestArgs, StrategyArg};
use crate::interrupt;
use crate::out_file::OutFile;
use crate::shards::{Packed, PackedMarket, Remote};
use anyhow::{anyhow, bail, Context, Result};
use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{BufWriter, IsTerminal, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Instant;
use vectura_backtest::sweep::{
    csv_header, csv_line, metric_names, run_sets, ParamAxis, Plan, Sampling, SweepRow, TopK,
};

/// Flags of `vectura sweep`: the backtest flags plus the plan, the output and the shard.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    pub action: Option<SweepAction>,
    #[command(flatten)]
    pub common: BacktestArgs,
    /// A date range to sweep, FROM:TO (YYYY-MM-DD:YYYY-MM-DD, both inclusive); repeat it for several.
    /// Instead of --start-date/--end-date. Every --symbol is swept over every range.
    #[arg(long = "range", value_name = "FROM:TO")]
    pub ranges: Vec<String>,
    /// A parameter to vary: name=start:stop:step or name=v1,v2,… (names as the at_algo_config columns).
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// Object store for a distributed sweep (file:///path or s3://bucket/prefix): the plan and the bars
    /// are packed there once, and each shard writes its results there.
    #[arg(long)]
    pub store: Option<String>,
    /// With --store: run the whole sweep here as N shard processes, then merge into --output.
    #[arg(long)]
    pub local_processes: Option<u64>,
    /// Walk forward: rolling windows of IS in-sample and OOS out-of-sample calendar days (e.g. 180:30);
    /// the --top in-sample winners of each window are re-run out of sample and shown side by side.
    #[arg(long, value_name = "IS:OOS")]
    pub walk_forward: Option<String>,
    /// Draw N different sets at random (without replacement) instead of every combination; N may not
    /// exceed the number of distinct combinations the --param values make.
    #[arg(long)]
    pub random: Option<u64>,
    /// Seed for --random.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write one row per set, in set order (.csv or .parquet).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Do not record the run and its rows in the database (DATABASE_URL, or vectura.db in VECTURA_DATA_DIR).
    #[arg(long)]
    pub no_db: bool,
    // `--report FILE.html` comes with the backtest flags (`common.report`): for a sweep it is the
    // heat map of --rank-by over two swept parameters and the top table.
    /// The heat map's x axis for --report (default: the first swept parameter).
    #[arg(long, value_name = "PARAM")]
    pub heatmap_x: Option<String>,
    /// The heat map's y axis for --report (default: the next swept parameter).
    #[arg(long, value_name = "PARAM")]
    pub heatmap_y: Option<String>,
    /// Rank the top table (and colour the heat map) by this metric (higher is better).
    #[arg(long, default_value = "time_weighted_return_pct")]
    pub rank_by: String,
    /// Rows in the top table.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Run only this shard of the plan (default: from AWS_BATCH_JOB_ARRAY_INDEX or JOB_COMPLETION_INDEX).
    #[arg(long)]
    pub shard_index: Option<u64>,
    /// Number of shards the plan is cut into.
    #[arg(long, default_value_t = 1)]
    pub shard_count: u64,
}

/// The steps of a distributed sweep.
#[derive(clap::Subcommand, Debug)]
pub enum SweepAction {
    /// Run one shard of a sweep packed in --store (the index from --shard-index, AWS_BATCH_JOB_ARRAY_INDEX or JOB_COMPLETION_INDEX).
    Run {
        #[arg(long)]
        store: String,
        #[arg(long)]
        shard_index: Option<u64>,
    },
    /// Combine every shard's results into one file, identical to a single-machine run's.
    Merge {
        #[arg(long)]
        store: String,
        #[arg(long)]
        output: PathBuf,
        /// Do not record the merged run in the database.
        #[arg(long)]
        no_db: bool,
    },
}

/// One market of a sweep: a symbol's bars over a date range (the dates the bars were cut to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Market {
    pub symbol: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Market {
    /// The leading CSV columns of this market's rows in a sweep of several markets.
    fn csv_prefix(&self) -> String {
        format!("{},{},{},", self.symbol, self.start, self.end)
    }
}

/// Parses `--range FROM:TO`.
fn parse_range(spec: &str) -> Result<(NaiveDate, NaiveDate)> {
    let bad = || {
        anyhow!(
            "--range {spec:?}: give FROM:TO as YYYY-MM-DD:YYYY-MM-DD, e.g. 2011-01-01:2011-06-30"
        )
    };
    let (a, b) = spec.split_once(':').ok_or_else(bad)?;
    let day = |t: &str| NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").map_err(|_| bad());
    let (from, to) = (day(a)?, day(b)?);
    if to < from {
        bail!(
            "--range {spec}: the end {to} is before the start {from}; give FROM:TO with FROM first"
        );
    }
    Ok((from, to))
}

/// The backtest flags of every market, symbols × ranges in the order given (symbol first); one
/// entry, the flags as given, when neither is repeated.
fn market_args(args: &SweepArgs) -> Result<Vec<BacktestArgs>> {
    let c = &args.common;
    if !args.ranges.is_empty() && (c.start_date.is_some() || c.end_date.is_some()) {
        bail!("--range with --start-date/--end-date: give the dates one way, as --range FROM:TO (repeatable) or as --start-date/--end-date");
    }
    let mut ranges = Vec::new();
    for spec in &args.ranges {
        let r = parse_range(spec)?;
        if ranges.contains(&r) {
            bail!("--range {spec} is given twice: give each range once");
        }
        ranges.push(r);
    }
    let mut symbols: Vec<&String> = Vec::new();
    for s in &c.symbol {
        if symbols.iter().any(|t| t.eq_ignore_ascii_case(s)) {
            bail!("--symbol {s} is given twice: give each symbol once");
        }
        symbols.push(s);
    }
    let symbols: Vec<Option<&String>> = if symbols.is_empty() {
        vec![None]
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
            a.symbol = s.map(|s| vec![s.clone()]).unwrap_or_default();
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
fn market_slices(sets: u64, markets: usize, from: u64, to: u64) -> Vec<(usize, u64, u64)> {
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
    sets.checked_mul(markets as u64)
        .ok_or_else(|| anyhow!("{markets} markets × {sets} sets is too many rows: sweep fewer --param values or markets"))
}

/// The markets of a packed sweep, in row order.
fn packed_markets(p: &Packed) -> Result<Vec<Market>> {
    (0..p.market_count())
        .map(|i| {
            let (symbol, cfg) = p.market(i).ok_or_else(|| {
                anyhow!("plan.json has no market {i}: pack again into a new --store prefix")
            })?;
            Ok(Market {
                symbol: symbol.to_string(),
                start: cfg.start_date,
                end: cfg.end_date,
            })
        })
        .collect()
}

fn shard_index(flag: Option<u64>) -> Result<Option<u64>> {
    if let Some(i) = flag {
        return Ok(Some(i));
    }
    for var in ["AWS_BATCH_JOB_ARRAY_INDEX", "JOB_COMPLETION_INDEX"] {
        if let Ok(v) = std::env::var(var) {
            return v.trim().parse().map(Some).map_err(|_| {
                anyhow!("{var}={v:?} is not a shard index: it must be a whole number")
            });
        }
    }
    Ok(None)
}

/// Runs shard `index` of the sweep packed in `store` and stores its rows there.
fn run_remote_shard(store: &str, index: Option<u64>, out: &mut dyn Write) -> Result<()> {
    let remote = Remote::open(store)?;
    let packed = remote.packed()?;
    let index = shard_index(index)?.ok_or_else(|| {
        anyhow!("no shard index: pass --shard-index I or set AWS_BATCH_JOB_ARRAY_INDEX / JOB_COMPLETION_INDEX")
    })?;
    if index >= packed.shard_count {
        bail!(
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
    // A signal stops the shard before it stores anything: its rows stay unwritten until a re-run.
    interrupt::install();
    // Only the markets this shard's rows fall in are fetched and decoded.
    for (mi, a, b) in market_slices(packed.plan.len(), markets.len(), from, to) {
        let bars = remote.bars(&packed, mi)?;
        let cfg = packed.market(mi).map(|(_, c)| c).ok_or_else(|| {
            anyhow!("plan.json has no market {mi}: pack again into a new --store prefix")
        })?;
        // The market columns lead every row of a several-market sweep, as in the single-machine file.
        let prefix = if several {
            markets[mi].csv_prefix()
        } else {
            String::new()
        };
        let ran = run_sets(&bars, cfg, &packed.plan, a, b, 256, |row| {
            interrupt::check().map_err(|e| e.to_string())?;
            rows.extend_from_slice(prefix.as_bytes());
            rows.extend_from_slice(csv_line(&row).as_bytes());
            rows.push(b'\n');
            Ok(())
        });
        interrupt::check()?;
        ran?;
    }
    remote.put_shard(index, packed.shard_count, rows)?;
    writeln!(
        out,
        "shard {index}/{}: {} {from}..{to} in {:.3} s, stored",
        packed.shard_count,
        if several { "rows" } else { "sets" },
        t0.elapsed().as_secs_f64()
    )?;
    Ok(())
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
    let text = std::str::from_utf8(bytes).map_err(|_| anyhow!("{name} is not text; {rerun}"))?;
    if !text.is_empty() && !text.ends_with('\n') {
        bail!("{name} ends in a partial row; {rerun}");
    }
    let lines = text.split_terminator('\n').count() as u64;
    if lines != to - from {
        bail!(
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
            bail!(
                "{name} row {} should be {want} but starts {:?}; {rerun}",
                k + 1,
                lead.join(",")
            );
        }
    }
    Ok(())
}

/// Waits for the local shard processes; a failed one is named with the command that re-runs it. On
/// Ctrl-C or SIGTERM the signal is passed on to every shard still running and, once they have
/// stopped (each cleaning up after itself), the sweep ends as interrupted.
fn wait_shards(mut children: Vec<std::process::Child>, store: &str) -> Result<()> {
    let mut done: Vec<Option<std::process::ExitStatus>> = vec![None; children.len()];
    let mut forwarded = false;
    while done.iter().any(Option::is_none) {
        if let (Some(sig), false) = (interrupt::received(), forwarded) {
            for (c, d) in children.iter().zip(&done) {
                if d.is_none() {
                    // SAFETY: kill(2) on the pid of a child not yet reaped (so not reused).
                    unsafe { libc::kill(c.id() as libc::pid_t, sig.0) };
                }
            }
            forwarded = true;
        }
        for (c, d) in children.iter_mut().zip(done.iter_mut()) {
            if d.is_none() {
                *d = c.try_wait()?;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if let Some(sig) = interrupt::received() {
        return Err(sig.into());
    }
    for (i, st) in done.into_iter().flatten().enumerate() {
        if !st.success() {
            bail!("shard process {i} failed ({st}); re-run it with: vectura sweep run --store {store} --shard-index {i}");
        }
    }
    Ok(())
}

/// Merges every shard's rows into `output` (and, unless `no_db`, records them in the database).
fn merge(store: &str, output: &Path, no_db: bool, out: &mut dyn Write) -> Result<()> {
    let kind = OutputKind::of(output, "--output")?;
    let remote = Remote::open(store)?;
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
        bail!(
            "the shards' results end in a partial row: re-run the shards into a new --store prefix"
        );
    }
    if n as u64 != total {
        bail!(
            "the shards hold {n} rows but the sweep has {total} ({} markets × {sets} sets): a shard's results are incomplete; re-run it",
            markets.len()
        );
    }
    let text = std::str::from_utf8(&rows).map_err(|_| {
        anyhow!("the shards' results are not text: re-run the shards into a new --store prefix")
    })?;
    // Parsed once up front: a damaged row stops the merge before any file or database row is written.
    // Row i is set i % sets of market i / sets: a row out of place or of another market is damage.
    let records = if kind == OutputKind::Parquet || !no_db {
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
                    .ok_or_else(|| anyhow!("row {i} of the shards' results is not set {set} of {} {}..{}: re-run the shards into a new --store prefix", m.symbol, m.start, m.end))?;
                Ok((i as u64, mi, rec))
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    // A signal from here on removes the temporary output and marks the recorded run interrupted.
    interrupt::install();
    let mut recorder = if no_db {
        None
    } else {
        let cfgs = (0..markets.len())
            .filter_map(|i| packed.market(i).map(|(_, c)| c))
            .collect::<Vec<_>>();
        Some(DbRecorder::start(new_run(&cfgs, &packed.plan)?)?)
    };
    let written = (|| -> Result<()> {
        if let Some(r) = recorder.as_mut() {
            // Keyed as the single-machine run keys its rows: by place in the run when several markets.
            for (i, mi, rec) in &records {
                let row = if several {
                    rec.to_store_in(&markets[*mi], *i)
                } else {
                    rec.to_store()
                };
                r.push(row).map_err(|e| anyhow!(e))?;
            }
        }
        interrupt::check()?;
        match kind {
            OutputKind::Csv => {
                let mut w = CsvOut::create(output, several)?;
                w.w.write_all(&rows)?;
                interrupt::check()?;
                w.finish()
            }
            OutputKind::Parquet => {
                let mut w = ParquetOut::create(output, several)?;
                for (_, mi, rec) in &records {
                    w.row(several.then(|| &markets[*mi]), rec)?;
                }
                interrupt::check()?;
                w.finish()
            }
        }
    })();
    let run_id = finish_recorder(recorder.take(), &written)?;
    written?;
    writeln!(
        out,
        "merged {} shards, {n} {}: {}",
        packed.shard_count,
        if several { "rows" } else { "sets" },
        output.display()
    )?;
    if let Some(id) = run_id {
        writeln!(out, "{}", recorded(&id)?)?;
    }
    Ok(())
}

/// Says where a sweep run was recorded: the database (its file, or DATABASE_URL masked) and the id.
fn recorded(id: &str) -> Result<String> {
    let at = crate::env::database_url(false)?.describe();
    Ok(format!("recorded in the database {at} as sweep run {id}"))
}

/// Set·bars per second for the summary line: 0 for no work (an empty sum of f64 is -0.0, which
/// would print as "-0").
fn per_second(work: f64, secs: f64) -> String {
    let rate = if work > 0.0 {
        work / secs.max(1e-9)
    } else {
        0.0
    };
    format!("{rate:.0}")
}

/// What a sweep run of `plan` over the markets of `cfgs` records before its rows: every symbol
/// once, the span from the earliest start to the latest end, and a row per set per market.
fn new_run(
    cfgs: &[&vectura_backtest::BacktestConfig],
    plan: &Plan,
) -> Result<vectura_store::NewSweepRun> {
    let first = cfgs
        .first()
        .ok_or_else(|| anyhow!("a sweep without a market: give --symbol or --data"))?;
    let mut symbols: Vec<String> = Vec::new();
    for c in cfgs {
        if !symbols.contains(&c.symbol) {
            symbols.push(c.symbol.clone());
        }
    }
    let set_count = plan.len().checked_mul(cfgs.len() as u64).ok_or_else(|| {
        anyhow!(
            "{} markets × {} sets is too many rows: sweep fewer",
            cfgs.len(),
            plan.len()
        )
    })?;
    Ok(vectura_store::NewSweepRun {
        symbols,
        start_date: cfgs.iter().map(|c| c.start_date).min(),
        end_date: cfgs.iter().map(|c| c.end_date).max(),
        fill: format!("{:?}", first.fill),
        plan: serde_json::to_value(plan).context("the sweep plan cannot be written as JSON")?,
        set_count,
    })
}

/// Ends a recorded run: failed with the error when `outcome` failed, done otherwise.
fn finish_recorder(r: Option<DbRecorder>, outcome: &Result<()>) -> Result<Option<String>> {
    let Some(r) = r else { return Ok(None) };
    match outcome {
        Ok(()) => r.finish(None).map(Some),
        Err(e) => match r.finish(Some(&format!("{e:#}"))) {
            // The sweep's own error is reported by the caller; the run is marked failed.
            Ok(_) => Ok(None),
            // A database failure is often what stopped the sweep: name it with the sweep's error.
            Err(db) => Err(anyhow!("{e:#}; {db:#}")),
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
            _ => bail!("{flag} {}: give a .csv or .parquet file", p.display()),
        }
    }
}

/// An open results file of either format.
enum Output {
    Csv(CsvOut),
    // Boxed: the Parquet writer's buffers dwarf the CSV writer.
    Parquet(Box<ParquetOut>),
}

/// Runs `vectura sweep`.
pub fn run(args: &SweepArgs, out: &mut dyn Write) -> Result<()> {
    match &args.action {
        Some(SweepAction::Run { store, shard_index }) => {
            return run_remote_shard(store, *shard_index, out)
        }
        Some(SweepAction::Merge {
            store,
            output,
            no_db,
        }) => return merge(store, output, *no_db, out),
        None => {}
    }
    if args.params.is_empty() {
        bail!("no --param: give at least one, e.g. --param buy_below_pct=1:5:0.5");
    }
    if args.common.strategy != StrategyArg::Grid {
        bail!(
            "--strategy {:?}: sweeps vary the grid's parameters; use --strategy grid",
            args.common.strategy
        );
    }
    if !metric_names().contains(&args.rank_by.as_str()) {
        bail!(
            "--rank-by {:?} is not a metric: use one of {}",
            args.rank_by,
            metric_names().join(", ")
        );
    }
    if args.shard_count == 0 {
        bail!("--shard-count is 0: give 1 or more");
    }
    if args.local_processes == Some(0) {
        bail!("--local-processes 0 starts no process to run the sets: give 1 or more (the number of cores, for one)");
    }
    if args.shard_count.max(args.local_processes.unwrap_or(0)) > crate::shards::MAX_SHARDS {
        bail!(
            "--shard-count / --local-processes above {}: give fewer shards",
            crate::shards::MAX_SHARDS
        );
    }
    let shard_count = args.local_processes.unwrap_or(args.shard_count);
    let index = shard_index(args.shard_index)?;
    if index.unwrap_or(0) >= shard_count {
        bail!(
            "--shard-index {} is not below --shard-count {}: indexes run from 0",
            index.unwrap_or(0),
            shard_count
        );
    }
    if args.local_processes.is_some() && (args.store.is_none() || args.output.is_none()) {
        bail!("--local-processes needs --store URL and --output FILE");
    }
    let kind = args
        .output
        .as_deref()
        .map(|p| OutputKind::of(p, "--output"))
        .transpose()?;
    if args.common.report.is_some()
        && (args.walk_forward.is_some() || args.store.is_some() || shard_count > 1)
    {
        bail!("--report draws a whole single-machine sweep: drop --report, or --walk-forward / --store / --shard-count");
    }
    if args.common.report.is_none() && (args.heatmap_x.is_some() || args.heatmap_y.is_some()) {
        bail!("--heatmap-x / --heatmap-y shape the heat map of --report: add --report FILE.html");
    }
    if args.walk_forward.is_some() && kind == Some(OutputKind::Parquet) {
        bail!("--output with --walk-forward: the walk-forward table is written as CSV; give a .csv file");
    }
    let axes = args
        .params
        .iter()
        .map(|s| ParamAxis::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let sampling = match args.random {
        Some(n) => Sampling::Random { n, seed: args.seed },
        None => Sampling::Grid,
    };
    let market_args = market_args(args)?;
    let several = market_args.len() > 1;
    // Every market's bars are loaded (and checked) before any set runs, once each, and then only
    // read by the workers.
    let mut preps = Vec::with_capacity(market_args.len());
    for a in &market_args {
        // With --range or several symbols, an error names the market it is about (the loader's own
        // messages speak of --start-date/--end-date and of one symbol).
        let label = match (a.symbol.first(), a.start_date, a.end_date) {
            (s, Some(f), Some(t)) if !args.ranges.is_empty() => Some(format!(
                "{}--range {f}:{t}",
                s.map(|s| format!("--symbol {s} ")).unwrap_or_default()
            )),
            (Some(s), _, _) if several => Some(format!("--symbol {s}")),
            _ => None,
        };
        let p = match label {
            Some(l) => prepare(a).with_context(|| l)?,
            None => prepare(a)?,
        };
        p.progress.finish_and_clear();
        preps.push(p);
    }
    // Widened bars are reported with their lines, once per distinct message (markets cut from one
    // file share its widened bars).
    let mut notes: Vec<String> = Vec::new();
    for w in preps.iter().filter_map(|p| p.widened.message()) {
        if !notes.contains(&w) {
            writeln!(out, "note: {w}")?;
            notes.push(w);
        }
    }
    let prep = preps
        .first()
        .ok_or_else(|| anyhow!("a sweep without a market: give --symbol or --data"))?;
    let plan = Plan::new(prep.params, axes, sampling)?;
    let markets: Vec<Market> = preps
        .iter()
        .map(|p| Market {
            symbol: p.symbol.clone(),
            start: p.cfg.start_date,
            end: p.cfg.end_date,
        })
        .collect();
    // One heat map per market: each market's cells are the best over its own sets only.
    let mut heats = match &args.common.report {
        Some(_) => Some(
            markets
                .iter()
                .map(|_| {
                    Heat::new(
                        &plan,
                        &args.rank_by,
                        args.heatmap_x.as_deref(),
                        args.heatmap_y.as_deref(),
                    )
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        None => None,
    };
    if let Some(wf) = &args.walk_forward {
        return walk(args, wf, &preps, &markets, &plan, out);
    }
    if let Some(store) = &args.store {
        let remote = Remote::open(store)?;
        let packed = Packed {
            format: 1,
            symbol: prep.symbol.clone(),
            plan: plan.clone(),
            cfg: prep.cfg.clone(),
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
            // A signal to this process is passed on to the shard processes (see `wait_shards`).
            interrupt::install();
            let exe = std::env::current_exe()?;
            let children: Vec<_> = (0..n)
                .map(|i| {
                    std::process::Command::new(&exe)
                        .args([
                            "sweep",
                            "run",
                            "--store",
                            store,
                            "--shard-index",
                            &i.to_string(),
                        ])
                        .stdout(std::process::Stdio::null())
                        // A group of its own: a terminal's Ctrl-C reaches this process only, which
                        // passes it on once (a second signal would end a shard without cleanup).
                        .process_group(0)
                        .spawn()
                        .with_context(|| format!("cannot start shard process {i}"))
                })
                .collect::<Result<_>>()?;
            wait_shards(children, store)?;
            let output = args.output.as_deref().unwrap_or(Path::new("sweep.csv"));
            return merge(store, output, args.no_db, out);
        }
        match index {
            Some(i) => return run_remote_shard(store, Some(i), out),
            None => {
                let what = if several {
                    let bars: usize = preps.iter().map(|p| p.bars.len()).sum();
                    format!(
                        "{} markets × {} sets ({bars} bars)",
                        markets.len(),
                        plan.len()
                    )
                } else {
                    format!("{} sets of {} bars", plan.len(), prep.bars.len())
                };
                writeln!(out, "packed {what} into {store} as {shard_count} shards; run each with: vectura sweep run --store {store} --shard-index I; then: vectura sweep merge --store {store} --output FILE")?;
                return Ok(());
            }
        }
    }
    // A shard is a contiguous slice of all rows (markets in order, then sets), as on the store path.
    let (from, to) = shard_range(
        row_count(markets.len(), plan.len())?,
        index.unwrap_or(0),
        shard_count,
    );
    let rows_total = to - from;
    let slices = market_slices(plan.len(), markets.len(), from, to);

    let pb = ProgressBar::new(rows_total);
    if std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} sets  {per_sec}  ETA {eta}")
                .unwrap_or(ProgressStyle::default_bar()),
        );
    } else {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    // From here on a Ctrl-C or SIGTERM stops the sweep at its next row, so that the temporary
    // results file is removed and the recorded run is marked as interrupted (see `interrupt`).
    interrupt::install();
    let mut writer = match (&args.output, kind) {
        (Some(p), Some(OutputKind::Parquet)) => {
            Some(Output::Parquet(Box::new(ParquetOut::create(p, several)?)))
        }
        (Some(p), _) => Some(Output::Csv(CsvOut::create(p, several)?)),
        (None, _) => None,
    };
    // Only a whole single-machine run is recorded: a shard's rows (--shard-index) are a part of a
    // sweep, recorded when `sweep merge` puts the parts together.
    let mut recorder = if args.no_db || shard_count > 1 {
        None
    } else {
        let cfgs: Vec<_> = preps.iter().map(|p| &p.cfg).collect();
        Some(DbRecorder::start(new_run(&cfgs, &plan)?)?)
    };
    // One ranking per market (a market's top k holds every row of it that can be in the overall
    // top k); they are merged after the run.
    let mut tops: Vec<TopK> = markets
        .iter()
        .map(|_| TopK::new(args.top, &args.rank_by))
        .collect();
    let t0 = Instant::now();
    let mut ran: Result<()> = Ok(());
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
        ran = run_sets(&p.bars, &p.cfg, &plan, a, b, 256, |row| {
            interrupt::check().map_err(|e| e.to_string())?;
            top.offer(&row);
            if let Some(h) = heats.as_mut() {
                h[mi].offer(&row);
            }
            pb.inc(1);
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
                (Some(Output::Parquet(w)), Some(rec)) => {
                    w.row(tag, rec).map_err(|e| format!("{e:#}"))
                }
                _ => Ok(()),
            }
        })
        .map(|_| ())
        .map_err(anyhow::Error::from);
        // A signal is reported as itself (exit code 128 + its number), not as a failed set.
        if let Some(sig) = interrupt::received() {
            ran = Err(sig.into());
        }
        if ran.is_err() {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let written = ran
        .and_then(|()| match writer {
            Some(Output::Csv(w)) => w.finish(),
            Some(Output::Parquet(w)) => w.finish(),
            None => Ok(()),
        })
        .and_then(|()| match (&args.common.report, &heats) {
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
                        .unwrap_or(prep.cfg.start_date)
                        .to_string(),
                    end: markets
                        .iter()
                        .map(|m| m.end)
                        .max()
                        .unwrap_or(prep.cfg.end_date)
                        .to_string(),
                    fill: crate::backtest_cmd::fill_flag(prep.cfg.fill).to_string(),
                    sets: plan.len(),
                    bars: preps.iter().map(|p| p.bars.len()).sum(),
                    seconds: secs,
                };
                let maps: Vec<_> = markets.iter().zip(heats).collect();
                let rows: Vec<_> = rank_markets(&tops, args.top, &args.rank_by)
                    .into_iter()
                    .map(|(mi, r)| (&markets[mi], r))
                    .collect();
                report::write(path, &report::render_markets(&summary, &maps, &rows))
            }
            (Some(path), Some(heats)) => {
                let summary = report::Summary {
                    symbol: &prep.symbol,
                    start: prep.cfg.start_date.to_string(),
                    end: prep.cfg.end_date.to_string(),
                    fill: crate::backtest_cmd::fill_flag(prep.cfg.fill).to_string(),
                    sets: rows_total,
                    bars: prep.bars.len(),
                    seconds: secs,
                };
                let rows: Vec<_> = tops[0].rows().collect();
                report::write(path, &report::render(&summary, &heats[0], &rows))
            }
            _ => Ok(()),
        });
    let run_id = finish_recorder(recorder, &written)?;
    written?;
    // Work done: each slice's sets times its market's bars.
    let set_bars: f64 = slices
        .iter()
        .map(|&(mi, a, b)| (b - a) as f64 * preps[mi].bars.len() as f64)
        .sum();
    if several {
        let bars: usize = preps.iter().map(|p| p.bars.len()).sum();
        // A shard says which slice of the whole run's rows it ran.
        let shard = if shard_count > 1 {
            format!(
                " (rows {from}..{to}, shard {}/{shard_count})",
                index.unwrap_or(0)
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "{} markets × {} sets{shard} = {rows_total} rows over {bars} bars in {secs:.3} s: {} set·bars/s",
            markets.len(),
            plan.len(),
            per_second(set_bars, secs)
        )?;
    } else {
        // The whole plan plainly; a shard says which slice of it, and which shard of how many.
        let sets = if shard_count > 1 {
            format!(
                "sets {from}..{to} of {} (shard index {} of {shard_count} shards)",
                plan.len(),
                index.unwrap_or(0)
            )
        } else {
            format!("{rows_total} sets")
        };
        writeln!(
            out,
            "{sets} × {} bars of {} in {secs:.3} s: {} set·bars/s",
            prep.bars.len(),
            prep.symbol,
            per_second(set_bars, secs)
        )?;
    }
    let ranked = rank_markets(&tops, args.top, &args.rank_by);
    writeln!(out, "top {} by {}:", args.top, args.rank_by)?;
    if several {
        write!(out, "{:<8} {:>10} {:>10} ", "symbol", "start", "end")?;
    }
    // The metric's column is as wide as its name (time_weighted_return_pct is 24), never cut.
    let mw = args.rank_by.len().max(12);
    writeln!(
        out,
        "{:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>mw$} {:>10} {:>8}",
        "set",
        "cap%",
        "below%",
        "above%",
        "after%",
        "floor",
        "gap%",
        args.rank_by,
        "maxDD%",
        "trades"
    )?;
    for (mi, r) in ranked {
        if several {
            let m = &markets[mi];
            write!(
                out,
                "{:<8} {:>10} {:>10} ",
                m.symbol,
                m.start.to_string(),
                m.end.to_string()
            )?;
        }
        let p = &r.params;
        writeln!(
            out,
            "{:>7} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.2} {:>8.3} {:>mw$} {:>10.3} {:>8}",
            r.set,
            p.capital_pct,
            p.buy_below_pct,
            p.sell_above_pct,
            p.buy_after_sell_pct,
            p.cash_floor,
            p.order_gap_pct,
            opt4(vectura_backtest::sweep::metric(&r.metrics, &args.rank_by)),
            r.metrics.maximum_drawdown_pct,
            r.metrics.total_trades
        )?;
    }
    if let Some(p) = &args.output {
        writeln!(out, "results: {}", p.display())?;
    }
    if let Some(p) = &args.common.report {
        writeln!(out, "report: {}", p.display())?;
    }
    if let Some(id) = run_id {
        writeln!(out, "{}", recorded(&id)?)?;
    }
    Ok(())
}

/// A metric for the text tables: four decimals, or "—" without a value.
fn opt4(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |x| format!("{x:.4}"))
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

/// Walks forward on every market independently (each over its own dates), then prints each
/// market's table in market order, under a heading naming the market when there are several.
fn walk(
    args: &SweepArgs,
    spec: &str,
    preps: &[crate::backtest_cmd::Prepared],
    markets: &[Market],
    plan: &Plan,
    out: &mut dyn Write,
) -> Result<()> {
    let bad = || {
        anyhow!("--walk-forward {spec:?}: give IS:OOS in calendar days, both above 0, e.g. 180:30")
    };
    let (a, b) = spec.split_once(':').ok_or_else(bad)?;
    let (is_days, oos_days): (i64, i64) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if is_days <= 0 || oos_days <= 0 {
        return Err(bad());
    }
    let several = markets.len() > 1;
    // Every market is walked before anything is printed: a market without a full window stops the
    // run with nothing half-shown and no file written.
    let mut walks = Vec::with_capacity(preps.len());
    for (prep, m) in preps.iter().zip(markets) {
        let rows = vectura_backtest::sweep::walk_forward(
            &prep.bars,
            &prep.cfg,
            plan,
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
            bail!("--walk-forward {spec}: the data{of} ({} bars) holds no full in-sample window followed by out-of-sample bars: shorten the windows", prep.bars.len());
        }
        walks.push(rows);
    }
    // With several markets the CSV rows lead with the market, as the sweep's own results file does.
    let mut csv = String::new();
    if several {
        csv.push_str("symbol,start_date,end_date,");
    }
    csv.push_str("window,is_start,is_end,oos_start,oos_end,rank,set,capital_pct,buy_below_pct,sell_above_pct,buy_after_sell_pct,cash_floor,order_gap_pct,is_metric,oos_metric,is_max_drawdown_pct,oos_max_drawdown_pct\n");
    for (mi, (rows, m)) in walks.iter().zip(markets).enumerate() {
        if several {
            if mi > 0 {
                writeln!(out)?;
            }
            writeln!(out, "{} {} → {}:", m.symbol, m.start, m.end)?;
        }
        let prefix = if several {
            m.csv_prefix()
        } else {
            String::new()
        };
        walk_table(args, is_days, oos_days, rows, &prefix, &mut csv, out)?;
    }
    if let Some(p) = &args.output {
        let mut w = CsvOut::create_raw(p)?;
        w.w.write_all(csv.as_bytes())?;
        w.finish()?;
        writeln!(out, "results: {}", p.display())?;
    }
    Ok(())
}

/// Prints one market's walk-forward table and appends its CSV rows, each led by `prefix`.
fn walk_table(
    args: &SweepArgs,
    is_days: i64,
    oos_days: i64,
    rows: &[vectura_backtest::sweep::WalkRow],
    prefix: &str,
    csv: &mut String,
    out: &mut dyn Write,
) -> Result<()> {
    writeln!(
        out,
        "walk-forward {is_days}:{oos_days} days, ranked by {} (in-sample → out-of-sample):",
        args.rank_by
    )?;
    writeln!(
        out,
        "{:>3} {:>23} {:>23} {:>4} {:>7} {:>12} {:>12} {:>9} {:>9}",
        "win",
        "in sample",
        "out of sample",
        "rank",
        "set",
        "IS metric",
        "OOS metric",
        "IS maxDD",
        "OOS maxDD"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:>3} {} {} {} {} {:>4} {:>7} {:>12} {:>12} {:>9.3} {:>9.3}",
            r.window,
            r.in_sample.0,
            r.in_sample.1,
            r.out_of_sample.0,
            r.out_of_sample.1,
            r.rank,
            r.set,
            opt4(r.in_sample_metric),
            opt4(r.out_of_sample_metric),
            r.in_sample_max_dd_pct,
            r.out_of_sample_max_dd_pct
        )?;
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
    let winners: Vec<&vectura_backtest::sweep::WalkRow> =
        rows.iter().filter(|r| r.rank == 1).collect();
    // The mean over the winners whose metric has a value.
    let mean = |f: fn(&vectura_backtest::sweep::WalkRow) -> Option<f64>| {
        let v: Vec<f64> = winners.iter().filter_map(|r| f(r)).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    writeln!(
        out,
        "in-sample winners: mean {} in sample {}, out of sample {}",
        args.rank_by,
        opt4(mean(|r| r.in_sample_metric)),
        opt4(mean(|r| r.out_of_sample_metric))
    )?;
    Ok(())
}

/// A CSV file written through a temporary name and renamed when complete (see [`OutFile`]).
struct CsvOut {
    file: OutFile,
    pub w: BufWriter<std::fs::File>,
}

impl CsvOut {
    /// A results file with its header; with `markets`, led by the market columns.
    fn create(path: &Path, markets: bool) -> Result<CsvOut> {
        let mut c = Self::create_raw(path)?;
        if markets {
            write!(c.w, "symbol,start_date,end_date,")?;
        }
        writeln!(c.w, "{}", csv_header())?;
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

    /// Writes `prefix` (the market columns, or nothing) and then `line`.
    fn row_in(&mut self, prefix: &str, line: &str) -> std::io::Result<()> {
        writeln!(self.w, "{prefix}{line}")
    }

    fn finish(mut self) -> Result<()> {
        self.w
            .flush()
            .context("writing --output: check the disk has room")?;
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
