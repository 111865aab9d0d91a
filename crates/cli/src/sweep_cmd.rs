//! `vectura sweep`: many grid parameter sets over the same bars, on all cores.

use crate::backtest_cmd::{prepare, BacktestArgs, StrategyArg};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use vectura_backtest::sweep::{
    csv_header, csv_line, metric_names, run_sets, ParamAxis, Plan, Sampling, TopK,
};

/// Flags of `vectura sweep`: the backtest flags plus the plan, the output and the shard.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    pub common: BacktestArgs,
    /// A parameter to vary: name=start:stop:step or name=v1,v2,… (names as the at_algo_config columns).
    #[arg(long = "param", required = true)]
    pub params: Vec<String>,
    /// Draw N sets at random from the parameter values instead of every combination.
    #[arg(long)]
    pub random: Option<u64>,
    /// Seed for --random.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write one row per set, in set order (.csv).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Rank the top table by this metric (higher is better).
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

/// The set range `[from, to)` of shard `index` of `count` over `len` sets: contiguous and deterministic.
pub fn shard_range(len: u64, index: u64, count: u64) -> (u64, u64) {
    let count = count.max(1) as u128;
    let (len, index) = (len as u128, index as u128);
    (
        (len * index / count) as u64,
        (len * (index + 1) / count) as u64,
    )
}

fn shard_index(args: &SweepArgs) -> Result<u64> {
    if let Some(i) = args.shard_index {
        return Ok(i);
    }
    for var in ["AWS_BATCH_JOB_ARRAY_INDEX", "JOB_COMPLETION_INDEX"] {
        if let Ok(v) = std::env::var(var) {
            return v.trim().parse().map_err(|_| {
                anyhow!("{var}={v:?} is not a shard index: it must be a whole number")
            });
        }
    }
    Ok(0)
}

/// Runs `vectura sweep`.
pub fn run(args: &SweepArgs, out: &mut dyn Write) -> Result<()> {
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
    let index = shard_index(args)?;
    if index >= args.shard_count {
        bail!(
            "--shard-index {index} is not below --shard-count {}: indexes run from 0",
            args.shard_count
        );
    }
    if let Some(p) = &args.output {
        if p.extension().and_then(|e| e.to_str()) != Some("csv") {
            bail!("--output {}: give a .csv file", p.display());
        }
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
    let prep = prepare(&args.common)?;
    let plan = Plan::new(prep.params, axes, sampling)?;
    let (from, to) = shard_range(plan.len(), index, args.shard_count);
    prep.progress.finish_and_clear();

    let pb = ProgressBar::new(to - from);
    if std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} sets  {per_sec}  ETA {eta}")
                .unwrap_or(ProgressStyle::default_bar()),
        );
    } else {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    let mut writer = match &args.output {
        Some(p) => Some(CsvOut::create(p)?),
        None => None,
    };
    let mut top = TopK::new(args.top, &args.rank_by);
    let t0 = Instant::now();
    run_sets(&prep.bars, &prep.cfg, &plan, from, to, 256, |row| {
        top.offer(&row);
        pb.inc(1);
        match writer.as_mut() {
            Some(w) => w.row(&csv_line(&row)).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    })?;
    let secs = t0.elapsed().as_secs_f64();
    pb.finish_and_clear();
    if let Some(w) = writer {
        w.finish()?;
    }
    let sets = to - from;
    writeln!(
        out,
        "{} sets (shard {index}/{} of {}) × {} bars of {} in {secs:.3} s: {:.0} set·bars/s",
        sets,
        args.shard_count,
        plan.len(),
        prep.bars.len(),
        prep.symbol,
        sets as f64 * prep.bars.len() as f64 / secs.max(1e-9)
    )?;
    writeln!(out, "top {} by {}:", args.top, args.rank_by)?;
    writeln!(
        out,
        "{:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>12} {:>10} {:>8}",
        "set",
        "cap%",
        "below%",
        "above%",
        "after%",
        "floor",
        "gap%",
        &args.rank_by[..args.rank_by.len().min(12)],
        "maxDD%",
        "trades"
    )?;
    for r in top.rows() {
        let p = &r.params;
        writeln!(
            out,
            "{:>7} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.2} {:>8.3} {:>12.4} {:>10.3} {:>8}",
            r.set,
            p.capital_pct,
            p.buy_below_pct,
            p.sell_above_pct,
            p.buy_after_sell_pct,
            p.cash_floor,
            p.order_gap_pct,
            vectura_backtest::sweep::metric(&r.metrics, &args.rank_by).unwrap_or(f64::NAN),
            r.metrics.maximum_drawdown_pct,
            r.metrics.total_trades
        )?;
    }
    if let Some(p) = &args.output {
        writeln!(out, "results: {}", p.display())?;
    }
    Ok(())
}

/// A CSV file written through a temporary name and renamed when complete.
struct CsvOut {
    tmp: PathBuf,
    path: PathBuf,
    w: BufWriter<std::fs::File>,
}

impl CsvOut {
    fn create(path: &Path) -> Result<CsvOut> {
        let tmp = path.with_extension("csv.tmp");
        let f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write --output {}", path.display()))?;
        let mut w = BufWriter::new(f);
        writeln!(w, "{}", csv_header())?;
        Ok(CsvOut {
            tmp,
            path: path.to_path_buf(),
            w,
        })
    }

    fn row(&mut self, line: &str) -> std::io::Result<()> {
        writeln!(self.w, "{line}")
    }

    fn finish(mut self) -> Result<()> {
        self.w.flush()?;
        drop(self.w);
        std::fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("cannot write --output {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::shard_range;

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
