//! `vectura sweep`: the flags, mapped onto a [`SweepRequest`] run as a job; this module prints.

use crate::backtest_cmd::BacktestArgs;
use crate::interrupt;
use crate::progress::Spinner;
use anyhow::{bail, Result};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use vectura_backtest::sweep::{metric, Sampling};
use vectura_jobs::sweep::{
    MergeSummary, PackSummary, Recorded, ReportRequest, RunSummary, ShardSummary, SweepDone,
    WalkSummary,
};
use vectura_jobs::{JobContext, JobOutcome, SweepRequest};

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

impl SweepArgs {
    /// The job's request.
    fn to_request(&self) -> Result<SweepRequest> {
        let c = &self.common;
        if c.report.is_none() && (self.heatmap_x.is_some() || self.heatmap_y.is_some()) {
            bail!(
                "--heatmap-x / --heatmap-y shape the heat map of --report: add --report FILE.html"
            );
        }
        Ok(SweepRequest {
            // The base's symbol: the one market when --symbol is given once or not at all.
            base: c.request_for(None),
            symbols: c.symbol.clone(),
            ranges: self.ranges.clone(),
            params: self.params.clone(),
            sampling: match self.random {
                Some(n) => Sampling::Random { n, seed: self.seed },
                None => Sampling::Grid,
            },
            rank_by: self.rank_by.clone(),
            top: self.top,
            walk_forward: self.walk_forward.clone(),
            output: self.output.clone(),
            record: !self.no_db,
            report: c.report.as_ref().map(|path| ReportRequest {
                path: path.clone(),
                heatmap_x: self.heatmap_x.clone(),
                heatmap_y: self.heatmap_y.clone(),
            }),
            store: self.store.clone(),
            local_processes: self.local_processes,
            shard_index: self.shard_index,
            shard_count: self.shard_count,
        })
    }
}

/// The context of a sweep job: the process's runtime, a terminal progress bar, and a cancel token
/// tripped by SIGINT / SIGTERM (caught from here on: the job stops at its next row, cleans up, and
/// `vectura` exits with 130 / 143).
fn context(rt: &tokio::runtime::Runtime, bar: &Spinner) -> JobContext {
    interrupt::install();
    let mut ctx = JobContext::new(rt.handle().clone());
    ctx.progress = bar.sink();
    ctx.cancel = interrupt::token();
    ctx
}

/// The result of a job, or the error that a cancel ends the command with.
fn finished<T>(o: JobOutcome<T>) -> Result<T> {
    match o {
        JobOutcome::Done(t) => Ok(t),
        JobOutcome::Cancelled(c) => Err(interrupt::cancelled(c)),
    }
}

/// Runs `vectura sweep`.
pub fn run(args: &SweepArgs, out: &mut dyn Write) -> Result<()> {
    let rt = crate::env::runtime()?;
    let bar = Spinner::sets();
    let ctx = context(&rt, &bar);
    let res = run_in(args, &ctx, &bar, out);
    bar.finish();
    res
}

fn run_in(args: &SweepArgs, ctx: &JobContext, bar: &Spinner, out: &mut dyn Write) -> Result<()> {
    match &args.action {
        Some(SweepAction::Run { store, shard_index }) => {
            let s = finished(vectura_jobs::sweep::run_shard(store, *shard_index, ctx)?)?;
            bar.finish();
            return print_shard(&s, out);
        }
        Some(SweepAction::Merge {
            store,
            output,
            no_db,
        }) => {
            let m = finished(vectura_jobs::sweep::merge(store, output, !*no_db, ctx)?)?;
            bar.finish();
            return print_merge(&m, out);
        }
        None => {}
    }
    let req = args.to_request()?;
    let prep = finished(vectura_jobs::sweep::prepare(&req, ctx)?)?;
    for note in &prep.calendar_notes {
        eprintln!("note: {note}");
    }
    for w in &prep.notes {
        writeln!(out, "note: {w}")?;
    }
    // Shard processes are this binary running `sweep run`; their stdout is not ours to print.
    let launch = |store: &str, i: u64| {
        let mut c = std::process::Command::new(
            std::env::current_exe().unwrap_or_else(|_| PathBuf::from("vectura")),
        );
        c.args([
            "sweep",
            "run",
            "--store",
            store,
            "--shard-index",
            &i.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        // A group of its own: a terminal's Ctrl-C reaches this process only, which passes it
        // on once (a second signal would end a shard without cleanup).
        .process_group(0);
        c
    };
    let done = finished(vectura_jobs::sweep::run(prep, &req, Some(&launch), ctx)?)?;
    bar.finish();
    match done {
        SweepDone::Ran(r) => print_run(&r, args.top, &args.rank_by, out),
        SweepDone::Walked(w) => print_walk(&w, &args.rank_by, out),
        SweepDone::Packed(p) => print_packed(&p, out),
        SweepDone::Shard(s) => print_shard(&s, out),
        SweepDone::Merged(m) => print_merge(&m, out),
    }
}

/// Says where a sweep run was recorded: the database (its file, or DATABASE_URL masked) and the id.
fn recorded(r: &Recorded) -> String {
    format!(
        "recorded in the database {} as sweep run {}",
        r.at, r.run_id
    )
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

/// A metric for the text tables: four decimals, or "—" without a value.
fn opt4(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |x| format!("{x:.4}"))
}

fn print_shard(s: &ShardSummary, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "shard {}/{}: {} {}..{} in {:.3} s, stored",
        s.index,
        s.shard_count,
        if s.several { "rows" } else { "sets" },
        s.from,
        s.to,
        s.seconds
    )?;
    Ok(())
}

fn print_merge(m: &MergeSummary, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "merged {} shards, {} {}: {}",
        m.shard_count,
        m.rows,
        if m.several { "rows" } else { "sets" },
        m.output.display()
    )?;
    if let Some(r) = &m.recorded {
        writeln!(out, "{}", recorded(r))?;
    }
    Ok(())
}

fn print_packed(p: &PackSummary, out: &mut dyn Write) -> Result<()> {
    let what = if p.markets > 1 {
        format!("{} markets × {} sets ({} bars)", p.markets, p.sets, p.bars)
    } else {
        format!("{} sets of {} bars", p.sets, p.bars)
    };
    let store = &p.store;
    writeln!(out, "packed {what} into {store} as {} shards; run each with: vectura sweep run --store {store} --shard-index I; then: vectura sweep merge --store {store} --output FILE", p.shard_count)?;
    Ok(())
}

fn print_run(r: &RunSummary, top: usize, rank_by: &str, out: &mut dyn Write) -> Result<()> {
    let several = r.markets.len() > 1;
    let rows_total = r.to - r.from;
    let secs = r.seconds;
    if several {
        let bars: usize = r.bars.iter().sum();
        // A shard says which slice of the whole run's rows it ran.
        let shard = if r.shard_count > 1 {
            format!(
                " (rows {}..{}, shard {}/{})",
                r.from,
                r.to,
                r.shard_index.unwrap_or(0),
                r.shard_count
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "{} markets × {} sets{shard} = {rows_total} rows over {bars} bars in {secs:.3} s: {} set·bars/s",
            r.markets.len(),
            r.sets,
            per_second(r.set_bars, secs)
        )?;
    } else {
        // The whole plan plainly; a shard says which slice of it, and which shard of how many.
        let sets = if r.shard_count > 1 {
            format!(
                "sets {}..{} of {} (shard index {} of {} shards)",
                r.from,
                r.to,
                r.sets,
                r.shard_index.unwrap_or(0),
                r.shard_count
            )
        } else {
            format!("{rows_total} sets")
        };
        writeln!(
            out,
            "{sets} × {} bars of {} in {secs:.3} s: {} set·bars/s",
            r.bars[0],
            r.markets[0].symbol,
            per_second(r.set_bars, secs)
        )?;
    }
    writeln!(out, "top {top} by {rank_by}:")?;
    if several {
        write!(out, "{:<8} {:>10} {:>10} ", "symbol", "start", "end")?;
    }
    // The metric's column is as wide as its name (time_weighted_return_pct is 24), never cut.
    let mw = rank_by.len().max(12);
    writeln!(
        out,
        "{:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>mw$} {:>10} {:>8}",
        "set", "cap%", "below%", "above%", "after%", "floor", "gap%", rank_by, "maxDD%", "trades"
    )?;
    for (mi, row) in &r.top {
        if several {
            let m = &r.markets[*mi];
            write!(
                out,
                "{:<8} {:>10} {:>10} ",
                m.symbol,
                m.start.to_string(),
                m.end.to_string()
            )?;
        }
        let p = &row.params;
        writeln!(
            out,
            "{:>7} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.2} {:>8.3} {:>mw$} {:>10.3} {:>8}",
            row.set,
            p.capital_pct,
            p.buy_below_pct,
            p.sell_above_pct,
            p.buy_after_sell_pct,
            p.cash_floor,
            p.order_gap_pct,
            opt4(metric(&row.metrics, rank_by)),
            row.metrics.maximum_drawdown_pct,
            row.metrics.total_trades
        )?;
    }
    if let Some(p) = &r.output {
        writeln!(out, "results: {}", p.display())?;
    }
    if let Some(p) = &r.report {
        writeln!(out, "report: {}", p.display())?;
    }
    if let Some(rec) = &r.recorded {
        writeln!(out, "{}", recorded(rec))?;
    }
    Ok(())
}

/// Prints each market's walk-forward table in market order, under a heading naming the market
/// when there are several.
fn print_walk(w: &WalkSummary, rank_by: &str, out: &mut dyn Write) -> Result<()> {
    let several = w.walks.len() > 1;
    for (mi, mw) in w.walks.iter().enumerate() {
        let m = &mw.market;
        if several {
            if mi > 0 {
                writeln!(out)?;
            }
            writeln!(out, "{} {} → {}:", m.symbol, m.start, m.end)?;
        }
        walk_table(w, rank_by, &mw.rows, out)?;
    }
    if let Some(p) = &w.output {
        writeln!(out, "results: {}", p.display())?;
    }
    Ok(())
}

/// Prints one market's walk-forward table.
fn walk_table(
    w: &WalkSummary,
    rank_by: &str,
    rows: &[vectura_backtest::sweep::WalkRow],
    out: &mut dyn Write,
) -> Result<()> {
    writeln!(
        out,
        "walk-forward {}:{} days, ranked by {} (in-sample → out-of-sample):",
        w.in_sample_days, w.out_of_sample_days, rank_by
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
        rank_by,
        opt4(mean(|r| r.in_sample_metric)),
        opt4(mean(|r| r.out_of_sample_metric))
    )?;
    Ok(())
}
