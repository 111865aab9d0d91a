//! Parameter sweeps: a deterministic plan of grid parameter sets, run on all cores over bars decoded
//! once and shared read-only, with results produced in set order and memory bounded by a chunk.

use crate::config::BacktestConfig;
use crate::metrics::Metrics;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use vectura_core::BarSeries;
use vectura_strategy::grid::{Grid, GridMode, GridParams};

/// The grid parameters a sweep can vary, named as the `at_algo_config` columns.
pub const PARAM_NAMES: [&str; 6] = [
    "capital_pct",
    "buy_below_pct",
    "sell_above_pct",
    "buy_after_sell_pct",
    "cash_floor",
    "order_gap_pct",
];

/// The values one parameter takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamAxis {
    pub name: String,
    pub values: Vec<f64>,
}

/// A bad `--param`.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("--param {0:?}: write name=start:stop:step or name=v1,v2,… with name one of capital_pct, buy_below_pct, sell_above_pct, buy_after_sell_pct, cash_floor, order_gap_pct")]
    Syntax(String),
    #[error("--param {name}: {value:?} is not a number")]
    Number { name: String, value: String },
    #[error(
        "--param {0}: the range needs step > 0 and start ≤ stop, and at most 1 000 000 values"
    )]
    Range(String),
    #[error("--param {0} is given twice: give each parameter once")]
    Twice(String),
    #[error("the plan has {0} sets, more than 100 000 000: narrow the ranges or use --random N")]
    TooBig(u128),
    #[error("--random 0 draws no set: give --random 1 or more, or drop --random to run every set")]
    NoDraws,
    #[error("--random {n} draws more sets than the {distinct} distinct ones the --param values make, so sets would repeat: give --random {distinct} or fewer, or drop --random to run each set once")]
    MoreDrawsThanSets { n: u64, distinct: u128 },
    #[error("set {index}: {error}")]
    Invalid { index: u64, error: String },
}

impl ParamAxis {
    /// Parses `name=start:stop:step` (inclusive, steps counted as integers so no drift) or `name=a,b,c`.
    pub fn parse(spec: &str) -> Result<ParamAxis, PlanError> {
        let (name, rhs) = spec
            .split_once('=')
            .ok_or_else(|| PlanError::Syntax(spec.into()))?;
        let name = name.trim().replace('-', "_");
        if !PARAM_NAMES.contains(&name.as_str()) {
            return Err(PlanError::Syntax(spec.into()));
        }
        let num = |v: &str| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or(PlanError::Number {
                    name: name.clone(),
                    value: v.into(),
                })
        };
        let parts: Vec<&str> = rhs.split(':').collect();
        let values = if parts.len() == 3 {
            let (a, b, st) = (num(parts[0])?, num(parts[1])?, num(parts[2])?);
            if !(st > 0.0 && a <= b) || (b - a) / st > 1e6 {
                return Err(PlanError::Range(name));
            }
            let n = ((b - a) / st + 1e-9).floor() as u64;
            (0..=n).map(|k| round12(a + k as f64 * st)).collect()
        } else if parts.len() == 1 {
            rhs.split(',').map(num).collect::<Result<Vec<_>, _>>()?
        } else {
            return Err(PlanError::Syntax(spec.into()));
        };
        if values.is_empty() {
            return Err(PlanError::Syntax(spec.into()));
        }
        Ok(ParamAxis { name, values })
    }
}

/// Rounds to 12 significant decimals so that `1 + 3 × 0.1` prints as 1.3 in results.
fn round12(x: f64) -> f64 {
    let s = format!("{x:.12}");
    s.parse().unwrap_or(x)
}

/// How the sets are drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Sampling {
    /// Every combination, the first axis varying slowest.
    Grid,
    /// `n` different sets drawn uniformly, without replacement, from the distinct combinations of the
    /// axes' values (a value listed twice counts once), the same on every machine: set `i` is
    /// combination `π(i)` of a seeded pseudo-random permutation `π` ([`Plan::set`] says which). `n`
    /// may not exceed the number of distinct sets ([`PlanError::MoreDrawsThanSets`]): asking for
    /// more is refused rather than silently running fewer.
    Random { n: u64, seed: u64 },
}

/// A deterministic sweep plan: set `i` is the same on every machine and in every shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub base: GridParams,
    pub axes: Vec<ParamAxis>,
    pub sampling: Sampling,
}

/// SplitMix64's increment (2^64 / the golden ratio).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64: a tiny, fully specified PRNG, so random plans are identical across versions and
/// machines. `splitmix(s)` is the first output of a generator seeded with `s`, and
/// `splitmix(s + k·GOLDEN_GAMMA)` its output `k + 1`.
fn splitmix(state: u64) -> u64 {
    let mut z = state.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Plan {
    /// A plan over `axes` from `base`, checking names are unique and the size is sane.
    pub fn new(
        base: GridParams,
        axes: Vec<ParamAxis>,
        sampling: Sampling,
    ) -> Result<Plan, PlanError> {
        for (i, a) in axes.iter().enumerate() {
            if axes[..i].iter().any(|b| b.name == a.name) {
                return Err(PlanError::Twice(a.name.clone()));
            }
        }
        let p = Plan {
            base,
            axes,
            sampling,
        };
        p.check()?;
        Ok(p)
    }

    /// Checks the plan's size: at most 100 000 000 sets, and a random plan draws at least one set and
    /// no more than there are distinct ones. [`Plan::new`] calls it; a plan read back from a file should
    /// too.
    pub fn check(&self) -> Result<(), PlanError> {
        let size = match self.sampling {
            Sampling::Grid => self
                .axes
                .iter()
                .fold(1u128, |acc, a| acc.saturating_mul(a.values.len() as u128)),
            Sampling::Random { n, .. } => n as u128,
        };
        if size > 100_000_000 {
            return Err(PlanError::TooBig(size));
        }
        if let Sampling::Random { n, .. } = self.sampling {
            if n == 0 {
                return Err(PlanError::NoDraws);
            }
            let distinct = self.distinct_sets();
            if n as u128 > distinct {
                return Err(PlanError::MoreDrawsThanSets { n, distinct });
            }
        }
        Ok(())
    }

    /// The number of different parameter sets the axes make (a value listed twice counts once).
    pub fn distinct_sets(&self) -> u128 {
        self.axes.iter().fold(1u128, |acc, a| {
            let mut bits: Vec<u64> = a.values.iter().map(|v| (v + 0.0).to_bits()).collect();
            bits.sort_unstable();
            bits.dedup();
            acc.saturating_mul(bits.len() as u128)
        })
    }

    /// Number of sets.
    pub fn len(&self) -> u64 {
        match self.sampling {
            Sampling::Grid => self.axes.iter().map(|a| a.values.len() as u64).product(),
            Sampling::Random { n, .. } => n,
        }
    }

    /// True when the plan has no sets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The parameters of set `i`.
    ///
    /// A grid plan enumerates every combination, the first axis varying slowest. A random plan
    /// numbers the `D` distinct combinations the same way (each axis's distinct values in the order
    /// given) and takes combination `π(i)`, with `π` a permutation of `0..D` keyed by the seed (see
    /// [`Sets`]): sets `0..n` are `n` different combinations, and any shard computes its own sets
    /// alone. For many calls, [`Plan::sets`] prepares the axes once.
    pub fn set(&self, i: u64) -> GridParams {
        self.sets().set(i)
    }

    /// The plan's sets, ready to be drawn many times (the distinct values of each axis and the
    /// permutation of a random plan computed once).
    pub fn sets(&self) -> Sets {
        match self.sampling {
            Sampling::Grid => Sets {
                base: self.base,
                axes: self
                    .axes
                    .iter()
                    .map(|a| (a.name.clone(), a.values.clone()))
                    .collect(),
                permutation: None,
            },
            Sampling::Random { seed, .. } => Sets {
                base: self.base,
                axes: self
                    .axes
                    .iter()
                    .map(|a| (a.name.clone(), distinct_values(&a.values)))
                    .collect(),
                permutation: Some(Permutation::new(self.distinct_sets(), seed)),
            },
        }
    }
}

/// An axis's values without repeats, in the order first given (0 and -0 are one value, as in
/// [`Plan::distinct_sets`]).
fn distinct_values(values: &[f64]) -> Vec<f64> {
    let mut seen = std::collections::HashSet::new();
    values
        .iter()
        .copied()
        .filter(|v| seen.insert((v + 0.0).to_bits()))
        .collect()
}

/// The sets of a [`Plan`], prepared by [`Plan::sets`].
#[derive(Debug, Clone)]
pub struct Sets {
    base: GridParams,
    /// (parameter, values): all values for a grid, the distinct ones for a random plan.
    axes: Vec<(String, Vec<f64>)>,
    /// The permutation of combination numbers of a random plan.
    permutation: Option<Permutation>,
}

impl Sets {
    /// The parameters of set `i` (see [`Plan::set`]).
    pub fn set(&self, i: u64) -> GridParams {
        let mut rest = match &self.permutation {
            None => i as u128,
            Some(pi) => pi.apply(i as u128),
        };
        let mut p = self.base;
        for (name, values) in self.axes.iter().rev() {
            let n = values.len() as u128;
            set_param(&mut p, name, values[(rest % n) as usize]);
            rest /= n;
        }
        p
    }
}

/// Feistel rounds of [`Permutation`]: more than the four a pseudo-random permutation needs.
const FEISTEL_ROUNDS: usize = 6;

/// A seeded pseudo-random permutation of `0..domain`, evaluated one number at a time (so that draws
/// without replacement need no table of what was drawn, and shards need no coordination).
///
/// A balanced Feistel network on the smallest even number of bits `2h` that holds `domain - 1`
/// (`h` at least 1): a number `x` is split into its high half `L` and low half `R` (`h` bits each),
/// and each of the rounds `k = 0..6` maps `(L, R)` to `(R, L ^ (SplitMix64(key_k ^ R) mod 2^h))`,
/// where `key_k` is output `k + 1` of a SplitMix64 seeded with the plan's seed and `SplitMix64(s)`
/// is the first output of one seeded with `s`. That is a bijection of `0..2^2h`; a result at or above
/// `domain` is fed through again until it falls inside ("cycle walking"), which makes a bijection
/// of `0..domain` and takes fewer than 4 passes on average (`2^2h < 4·domain`).
#[derive(Debug, Clone)]
struct Permutation {
    domain: u128,
    half_bits: u32,
    keys: [u64; FEISTEL_ROUNDS],
}

impl Permutation {
    fn new(domain: u128, seed: u64) -> Permutation {
        let bits = 128 - domain.saturating_sub(1).leading_zeros();
        let mut keys = [0; FEISTEL_ROUNDS];
        for (k, key) in keys.iter_mut().enumerate() {
            *key = splitmix(seed.wrapping_add((k as u64).wrapping_mul(GOLDEN_GAMMA)));
        }
        Permutation {
            domain,
            half_bits: bits.div_ceil(2).max(1),
            keys,
        }
    }

    /// `π(x)`, for `x < domain`.
    fn apply(&self, mut x: u128) -> u128 {
        let h = self.half_bits;
        let mask = (1u128 << h) - 1;
        loop {
            let (mut l, mut r) = (x >> h, x & mask);
            for key in self.keys {
                // r < 2^h <= 2^64, so the cast keeps every bit.
                (l, r) = (r, l ^ (splitmix(key ^ r as u64) as u128 & mask));
            }
            x = (l << h) | r;
            if x < self.domain {
                return x;
            }
        }
    }
}

fn set_param(p: &mut GridParams, name: &str, v: f64) {
    match name {
        "capital_pct" => p.capital_pct = v,
        "buy_below_pct" => p.buy_below_pct = v,
        "sell_above_pct" => p.sell_above_pct = v,
        "buy_after_sell_pct" => p.buy_after_sell_pct = v,
        "cash_floor" => p.cash_floor = v,
        "order_gap_pct" => p.order_gap_pct = v,
        _ => {}
    }
}

/// One set's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    pub set: u64,
    pub params: GridParams,
    pub final_equity: f64,
    pub final_cash: f64,
    pub invested_cash: f64,
    pub metrics: Metrics,
}

/// Runs sets `[from, to)` of `plan` over `bars` on all cores, `chunk` sets at a time, handing rows to
/// `sink` in set order (so memory stays flat however many sets there are). Returns the sets run.
pub fn run_sets(
    bars: &BarSeries,
    cfg: &BacktestConfig,
    plan: &Plan,
    from: u64,
    to: u64,
    chunk: u64,
    mut sink: impl FnMut(SweepRow) -> Result<(), String>,
) -> Result<u64, PlanError> {
    let mut cfg = cfg.clone();
    cfg.record_series = false;
    let mode = GridMode {
        compat_v1: cfg.compat_v1,
        share_scale: cfg.share_scale,
        record_lines: false,
    };
    let chunk = chunk.max(1);
    let sets = plan.sets();
    let mut start = from;
    while start < to {
        let end = (start + chunk).min(to);
        let rows: Vec<Result<SweepRow, PlanError>> = (start..end)
            .into_par_iter()
            .map(|i| {
                let params = sets.set(i);
                params.validate().map_err(|e| PlanError::Invalid {
                    index: i,
                    error: e.to_string(),
                })?;
                let r =
                    crate::engine::run(bars, &mut Grid::new(params, mode), &cfg).map_err(|e| {
                        PlanError::Invalid {
                            index: i,
                            error: e.to_string(),
                        }
                    })?;
                Ok(SweepRow {
                    set: i,
                    params,
                    final_equity: r.final_equity,
                    final_cash: r.final_cash,
                    invested_cash: r.invested_cash,
                    metrics: r.metrics,
                })
            })
            .collect();
        for r in rows {
            sink(r?).map_err(|e| PlanError::Invalid {
                index: start,
                error: e,
            })?;
        }
        start = end;
    }
    Ok(to.saturating_sub(from))
}

/// The CSV header of sweep rows.
pub fn csv_header() -> String {
    let mut h = String::from("set,");
    h.push_str(&PARAM_NAMES.join(","));
    h.push_str(",final_equity,final_cash,invested_cash");
    for m in metric_names() {
        h.push(',');
        h.push_str(m);
    }
    h
}

/// Metric names in CSV column order.
pub fn metric_names() -> &'static [&'static str] {
    &[
        "total_return",
        "total_return_pct",
        "time_weighted_return_pct",
        "cagr_pct",
        "maximum_drawdown_pct",
        "time_weighted_max_drawdown_pct",
        "sharpe",
        "sortino",
        "calmar",
        "volatility_pct",
        "total_trades",
        "win_rate_pct",
        "profit_factor",
        "exposure_pct",
        "average_invested_capital_pct",
        "buy_hold_percentage_difference",
    ]
}

/// A metric of a row by name (`None` for unknown names and for a metric without a value: a ratio over
/// no deviation, a trade statistic without closed trades).
pub fn metric(m: &Metrics, name: &str) -> Option<f64> {
    Some(match name {
        "total_return" => m.total_return,
        "total_return_pct" => m.total_return_pct,
        "time_weighted_return_pct" => m.time_weighted_return_pct,
        "cagr_pct" => return m.cagr_pct,
        "maximum_drawdown_pct" => m.maximum_drawdown_pct,
        "time_weighted_max_drawdown_pct" => m.time_weighted_max_drawdown_pct,
        "sharpe" => return m.sharpe,
        "sortino" => return m.sortino,
        "calmar" => return m.calmar,
        "volatility_pct" => m.volatility_pct,
        "total_trades" => m.total_trades as f64,
        "win_rate_pct" => return m.win_rate_pct,
        "profit_factor" => return m.profit_factor,
        "exposure_pct" => m.exposure_pct,
        "average_invested_capital_pct" => m.average_invested_capital_pct,
        "buy_hold_percentage_difference" => m.buy_hold_percentage_difference,
        _ => return None,
    })
}

/// One CSV line for a row (f64 in shortest round-trip form, so files compare exactly).
pub fn csv_line(r: &SweepRow) -> String {
    let p = &r.params;
    let mut s = format!(
        "{},{},{},{},{},{},{},{},{},{}",
        r.set,
        p.capital_pct,
        p.buy_below_pct,
        p.sell_above_pct,
        p.buy_after_sell_pct,
        p.cash_floor,
        p.order_gap_pct,
        r.final_equity,
        r.final_cash,
        r.invested_cash
    );
    for m in metric_names() {
        s.push(',');
        if let Some(v) = metric(&r.metrics, m) {
            s.push_str(&v.to_string());
        }
    }
    s
}

/// Keeps the best `k` rows by a metric (higher is better), ties broken by the lower set index. A row
/// whose metric has no value (or is NaN) ranks below every row with a number.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    metric: String,
    rows: Vec<(Option<f64>, SweepRow)>,
}

/// True when a row with metric `a` at set `sa` ranks above one with `b` at set `sb`: higher numbers
/// first, every number above no value, then the lower set.
pub fn ranks_above(a: Option<f64>, sa: u64, b: Option<f64>, sb: u64) -> bool {
    match (a, b) {
        (Some(x), Some(y)) if x != y => x > y,
        (Some(_), None) => true,
        (None, Some(_)) => false,
        _ => sa < sb,
    }
}

impl TopK {
    /// A ranking of the best `k` rows by `metric`.
    pub fn new(k: usize, metric: &str) -> TopK {
        TopK {
            k,
            metric: metric.to_string(),
            rows: Vec::new(),
        }
    }

    /// Offers a row.
    pub fn offer(&mut self, r: &SweepRow) {
        let v = metric(&r.metrics, &self.metric).filter(|v| !v.is_nan());
        let beaten = |a: &(Option<f64>, SweepRow)| ranks_above(v, r.set, a.0, a.1.set);
        if self.rows.len() < self.k || self.rows.last().is_some_and(beaten) {
            let pos = self
                .rows
                .partition_point(|(x, row)| ranks_above(*x, row.set, v, r.set));
            self.rows.insert(pos, (v, r.clone()));
            self.rows.truncate(self.k);
        }
    }

    /// The ranked rows, best first.
    pub fn rows(&self) -> impl Iterator<Item = &SweepRow> {
        self.rows.iter().map(|(_, r)| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_lists() {
        let a = ParamAxis::parse("buy_below_pct=1:5:0.5").unwrap();
        assert_eq!(a.values, vec![1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]);
        let b = ParamAxis::parse("sell_above_pct=5,10,18").unwrap();
        assert_eq!(b.values, vec![5.0, 10.0, 18.0]);
        let c = ParamAxis::parse("capital_pct=10:11:0.1").unwrap();
        assert_eq!(c.values.len(), 11);
        assert_eq!(c.values[3], 10.3);
        assert!(matches!(
            ParamAxis::parse("nope=1,2"),
            Err(PlanError::Syntax(_))
        ));
        assert!(matches!(
            ParamAxis::parse("cash_floor=5:1:1"),
            Err(PlanError::Range(_))
        ));
        assert!(matches!(
            ParamAxis::parse("cash_floor=a,1"),
            Err(PlanError::Number { .. })
        ));
    }

    #[test]
    fn grid_plan_enumerates_every_combination_first_axis_slowest() {
        let axes = vec![
            ParamAxis::parse("buy_below_pct=1,2").unwrap(),
            ParamAxis::parse("sell_above_pct=5,10,18").unwrap(),
        ];
        let p = Plan::new(GridParams::default(), axes, Sampling::Grid).unwrap();
        assert_eq!(p.len(), 6);
        let got: Vec<(f64, f64)> = (0..6)
            .map(|i| (p.set(i).buy_below_pct, p.set(i).sell_above_pct))
            .collect();
        assert_eq!(
            got,
            vec![
                (1.0, 5.0),
                (1.0, 10.0),
                (1.0, 18.0),
                (2.0, 5.0),
                (2.0, 10.0),
                (2.0, 18.0)
            ]
        );
        assert_eq!(
            p.set(3).capital_pct,
            60.0,
            "unvaried parameters keep the base"
        );
    }

    /// SplitMix64 as Vigna's reference `splitmix64.c` writes it: a state stepped by the golden gamma,
    /// each output a mix of the new state.
    struct RefSplitMix64(u64);

    impl RefSplitMix64 {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    #[test]
    fn the_reference_splitmix64_gives_the_published_vectors() {
        let mut r = RefSplitMix64(0);
        let got: Vec<u64> = (0..4).map(|_| r.next()).collect();
        assert_eq!(
            got,
            [
                0xe220_a839_7b1d_cdaf,
                0x6e78_9e6a_a1b9_65f4,
                0x06c4_5d18_8009_454f,
                0xf88b_b8a8_724c_81ec
            ]
        );
    }

    /// The documented permutation (see `Permutation`), written again from the reference
    /// SplitMix64 alone: combination number `x` of `0..domain` for draw `x` of seed `seed`.
    fn reference_permutation(domain: u128, seed: u64, x: u128) -> u128 {
        let mut bits = 0u32;
        while bits < 128 && (domain - 1) >> bits != 0 {
            bits += 1;
        }
        let h = bits.div_ceil(2).max(1);
        let mut stream = RefSplitMix64(seed);
        let keys: Vec<u64> = (0..6).map(|_| stream.next()).collect();
        let mut x = x;
        loop {
            let (mut l, mut r) = (x >> h, x % (1u128 << h));
            for &k in &keys {
                let f = RefSplitMix64(k ^ r as u64).next() as u128 % (1u128 << h);
                (l, r) = (r, l ^ f);
            }
            x = (l << h) + r;
            if x < domain {
                return x;
            }
        }
    }

    #[test]
    fn random_draws_of_seed_7_are_the_documented_permutation_without_repeats() {
        // Combination c of the 9 × 3 × 1001 distinct sets is (c / 3003, c / 1001 % 3, c % 1001),
        // first axis slowest; draw i is combination π(i): the format plan.json shards rely on.
        let axes = vec![
            ParamAxis::parse("buy_below_pct=1:5:0.5").unwrap(),
            ParamAxis::parse("sell_above_pct=5,10,18").unwrap(),
            ParamAxis::parse("cash_floor=0:1000:1").unwrap(),
        ];
        let p = Plan::new(
            GridParams::default(),
            axes.clone(),
            Sampling::Random { n: 2000, seed: 7 },
        )
        .unwrap();
        let draws: Vec<[f64; 3]> = (0..2000)
            .map(|i| {
                let s = p.set(i);
                assert_eq!(s.capital_pct, 60.0, "unvaried parameters keep the base");
                [s.buy_below_pct, s.sell_above_pct, s.cash_floor]
            })
            .collect();
        for (i, d) in draws.iter().enumerate() {
            let c = reference_permutation(27_027, 7, i as u128) as usize;
            let want = [
                axes[0].values[c / 3003],
                axes[1].values[c / 1001 % 3],
                axes[2].values[c % 1001],
            ];
            assert_eq!(*d, want, "set {i}");
        }
        // Pinned, so that a change of the documented scheme (which would change what a plan.json
        // written earlier means) cannot pass unnoticed.
        assert_eq!(
            &draws[..4],
            &PINNED_SEED_7[..],
            "the first draws of seed 7 changed"
        );
        let mut seen: Vec<[u64; 3]> = draws.iter().map(|d| d.map(f64::to_bits)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 2000, "a set was drawn twice");
        // Another seed draws other sets.
        let q = Plan::new(
            GridParams::default(),
            axes,
            Sampling::Random { n: 2000, seed: 8 },
        )
        .unwrap();
        assert!((0..2000).any(|i| p.set(i) != q.set(i)));
    }

    /// The first four draws of the plan above (buy_below_pct, sell_above_pct, cash_floor).
    const PINNED_SEED_7: [[f64; 3]; 4] = [
        [3.5, 18.0, 485.0],
        [1.5, 18.0, 143.0],
        [5.0, 10.0, 787.0],
        [2.5, 5.0, 622.0],
    ];

    #[test]
    fn drawing_every_distinct_set_runs_each_exactly_once() {
        // Values listed twice, and 0 next to -0, count once; every domain size from 1 to 40 (odd
        // bit widths and sizes just above a power of two walk the most).
        for n in 1..=40u64 {
            let list: Vec<String> = (0..n).map(|v| v.to_string()).collect();
            let axes = vec![
                ParamAxis::parse(&format!("cash_floor=0,-0,{}", list.join(","))).unwrap(),
                ParamAxis::parse("sell_above_pct=5,10,5").unwrap(),
            ];
            let p = Plan::new(
                GridParams::default(),
                axes,
                Sampling::Random {
                    n: 2 * n,
                    seed: n ^ 0xfeed,
                },
            )
            .unwrap();
            assert_eq!(p.distinct_sets(), 2 * n as u128);
            let sets = p.sets();
            let mut got: Vec<(u64, u64)> = (0..2 * n)
                .map(|i| {
                    let s = sets.set(i);
                    ((s.cash_floor + 0.0).to_bits(), s.sell_above_pct.to_bits())
                })
                .collect();
            got.sort_unstable();
            let mut want: Vec<(u64, u64)> = (0..n)
                .flat_map(|v| [5.0f64, 10.0].map(|s| ((v as f64).to_bits(), s.to_bits())))
                .collect();
            want.sort_unstable();
            assert_eq!(got, want, "domain {}", 2 * n);
        }
    }

    #[test]
    fn random_plans_draw_at_least_one_set_and_no_more_than_there_are() {
        let axes = || {
            vec![
                ParamAxis::parse("buy_below_pct=1,2,3").unwrap(),
                // A value listed twice is one set, not two.
                ParamAxis::parse("sell_above_pct=5,10,10").unwrap(),
            ]
        };
        let plan = |n| {
            Plan::new(
                GridParams::default(),
                axes(),
                Sampling::Random { n, seed: 1 },
            )
        };
        assert_eq!(plan(0), Err(PlanError::NoDraws));
        assert_eq!(
            plan(7),
            Err(PlanError::MoreDrawsThanSets { n: 7, distinct: 6 })
        );
        let msg = plan(7).unwrap_err().to_string();
        assert!(
            msg.contains("--random 7") && msg.contains("--random 6 or fewer"),
            "{msg}"
        );
        assert_eq!(plan(6).unwrap().len(), 6);
        assert_eq!(plan(1).unwrap().distinct_sets(), 6);
    }

    #[test]
    fn duplicate_axes_are_refused() {
        let axes = vec![
            ParamAxis::parse("cash_floor=1").unwrap(),
            ParamAxis::parse("cash_floor=2").unwrap(),
        ];
        assert_eq!(
            Plan::new(GridParams::default(), axes, Sampling::Grid),
            Err(PlanError::Twice("cash_floor".into()))
        );
    }
}

/// One in-sample winner of a walk-forward window, with its out-of-sample result next to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WalkRow {
    pub window: usize,
    pub in_sample: (chrono::NaiveDate, chrono::NaiveDate),
    pub out_of_sample: (chrono::NaiveDate, chrono::NaiveDate),
    /// 1 = the in-sample best.
    pub rank: usize,
    pub set: u64,
    pub params: GridParams,
    /// The ranking metric in sample and out of sample (`None` where it has no value).
    pub in_sample_metric: Option<f64>,
    pub out_of_sample_metric: Option<f64>,
    pub in_sample_max_dd_pct: f64,
    pub out_of_sample_max_dd_pct: f64,
}

/// Rolling walk-forward: windows of `is_days` in-sample then `oos_days` out-of-sample calendar days,
/// stepping by `oos_days`; the plan runs in-sample, and its `top` sets by `rank_by` run on the following
/// out-of-sample days with fresh capital. Windows without bars on either side are skipped.
pub fn walk_forward(
    bars: &BarSeries,
    cfg: &BacktestConfig,
    plan: &Plan,
    is_days: i64,
    oos_days: i64,
    rank_by: &str,
    top: usize,
) -> Result<Vec<WalkRow>, PlanError> {
    use chrono::Duration;
    use vectura_core::time::{date_utc, midnight_utc};
    let mut rows = Vec::new();
    if bars.is_empty() || is_days <= 0 || oos_days <= 0 {
        return Ok(rows);
    }
    let first = date_utc(bars.ts[0]);
    let last = date_utc(bars.ts[bars.len() - 1]);
    let mut is_start = first;
    let mut window = 0;
    loop {
        let is_end = is_start + Duration::days(is_days - 1);
        let oos_start = is_end + Duration::days(1);
        let oos_end = oos_start + Duration::days(oos_days - 1);
        if oos_start > last {
            break;
        }
        let cut = |a: chrono::NaiveDate, b: chrono::NaiveDate| {
            bars.slice_time(midnight_utc(a), midnight_utc(b) + vectura_core::time::DAY)
        };
        let (is_bars, oos_bars) = (cut(is_start, is_end), cut(oos_start, oos_end.min(last)));
        if !is_bars.is_empty() && !oos_bars.is_empty() {
            let mut is_cfg = cfg.clone();
            is_cfg.start_date = is_start;
            is_cfg.end_date = is_end;
            let mut best = TopK::new(top, rank_by);
            run_sets(&is_bars, &is_cfg, plan, 0, plan.len(), 256, |r| {
                best.offer(&r);
                Ok(())
            })?;
            let mut oos_cfg = cfg.clone();
            oos_cfg.start_date = oos_start;
            oos_cfg.end_date = oos_end.min(last);
            oos_cfg.record_series = false;
            let mode = GridMode {
                compat_v1: cfg.compat_v1,
                share_scale: cfg.share_scale,
                record_lines: false,
            };
            for (rank, r) in best.rows().enumerate() {
                let o = crate::engine::run(&oos_bars, &mut Grid::new(r.params, mode), &oos_cfg)
                    .map_err(|e| PlanError::Invalid {
                        index: r.set,
                        error: e.to_string(),
                    })?;
                rows.push(WalkRow {
                    window,
                    in_sample: (is_start, is_end),
                    out_of_sample: (oos_start, oos_end.min(last)),
                    rank: rank + 1,
                    set: r.set,
                    params: r.params,
                    in_sample_metric: metric(&r.metrics, rank_by),
                    out_of_sample_metric: metric(&o.metrics, rank_by),
                    in_sample_max_dd_pct: r.metrics.maximum_drawdown_pct,
                    out_of_sample_max_dd_pct: o.metrics.maximum_drawdown_pct,
                });
            }
        }
        window += 1;
        is_start += Duration::days(oos_days);
    }
    Ok(rows)
}

#[cfg(test)]
mod walk_tests {
    use super::*;
    use vectura_core::Bar;

    #[test]
    fn windows_roll_and_winners_are_rerun_out_of_sample() {
        // 40 days of one bar a day, a slow zig-zag.
        let mut s = BarSeries::default();
        for d in 0..40i64 {
            let p = 100.0 + ((d % 6) as f64 - 3.0).abs() * 2.0;
            s.push(Bar::flat(1_700_006_400 + d * 86_400 + 15 * 3600, p))
                .unwrap();
        }
        let d0 = vectura_core::time::date_utc(s.ts[0]);
        let mut cfg = BacktestConfig::new("W", d0, d0 + chrono::Duration::days(39));
        cfg.fill = crate::FillModel::Close;
        let plan = Plan::new(
            GridParams::default(),
            vec![
                ParamAxis::parse("buy_below_pct=1,3").unwrap(),
                ParamAxis::parse("sell_above_pct=2,5").unwrap(),
            ],
            Sampling::Grid,
        )
        .unwrap();
        let rows = walk_forward(&s, &cfg, &plan, 20, 10, "total_return_pct", 2).unwrap();
        let windows: Vec<usize> = rows.iter().map(|r| r.window).collect();
        assert_eq!(
            windows,
            vec![0, 0, 1, 1],
            "two windows (days 0-19/20-29 and 10-29/30-39), top 2 each"
        );
        assert_eq!(rows[0].rank, 1);
        assert!(rows[0].in_sample_metric >= rows[1].in_sample_metric);
        assert_eq!(
            rows[0].out_of_sample.0,
            rows[0].in_sample.1 + chrono::Duration::days(1)
        );
        // Each out-of-sample figure is that of a plain run of the set on the out-of-sample days.
        for r in &rows {
            let (a, b) = r.out_of_sample;
            let oos = s.slice_time(
                vectura_core::time::midnight_utc(a),
                vectura_core::time::midnight_utc(b) + 86_400,
            );
            assert!(!oos.is_empty());
            let mut c = cfg.clone();
            c.start_date = a;
            c.end_date = b;
            let plain = crate::engine::run(
                &oos,
                &mut Grid::new(
                    r.params,
                    GridMode {
                        record_lines: false,
                        ..GridMode::default()
                    },
                ),
                &c,
            )
            .unwrap();
            assert_eq!(
                r.out_of_sample_metric,
                Some(plain.metrics.total_return_pct),
                "window {}",
                r.window
            );
            assert_eq!(
                r.out_of_sample_max_dd_pct,
                plain.metrics.maximum_drawdown_pct
            );
            assert!(plain.bars_processed < s.len() as u64 / 2);
        }
        // ... and the in-sample figure is the set's on the in-sample days.
        let (a, b) = rows[0].in_sample;
        let is = s.slice_time(
            vectura_core::time::midnight_utc(a),
            vectura_core::time::midnight_utc(b) + 86_400,
        );
        let mut c = cfg.clone();
        c.start_date = a;
        c.end_date = b;
        let plain =
            crate::engine::run(&is, &mut Grid::new(rows[0].params, GridMode::default()), &c)
                .unwrap();
        assert_eq!(
            rows[0].in_sample_metric,
            Some(plain.metrics.total_return_pct)
        );
    }

    #[test]
    fn a_metric_without_value_ranks_below_every_number() {
        let row = |set: u64, sharpe: Option<f64>| {
            let mut cfg = BacktestConfig::new(
                "T",
                chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap(),
                chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap(),
            );
            cfg.fill = crate::FillModel::Close;
            let mut s = BarSeries::default();
            s.push(Bar::flat(1_704_207_600, 100.0)).unwrap();
            let r = crate::engine::run(
                &s,
                &mut Grid::new(GridParams::default(), GridMode::default()),
                &cfg,
            )
            .unwrap();
            let mut metrics = r.metrics;
            metrics.sharpe = sharpe;
            SweepRow {
                set,
                params: GridParams::default(),
                final_equity: 0.0,
                final_cash: 0.0,
                invested_cash: 0.0,
                metrics,
            }
        };
        let mut top = TopK::new(4, "sharpe");
        for r in [
            row(0, None),
            row(1, Some(-3.0)),
            row(2, Some(f64::NAN)),
            row(3, Some(0.5)),
            row(4, None),
            row(5, Some(0.5)),
        ] {
            top.offer(&r);
        }
        let sets: Vec<u64> = top.rows().map(|r| r.set).collect();
        assert_eq!(
            sets,
            vec![3, 5, 1, 0],
            "numbers first (ties to the lower set), then no value"
        );
        let mut only_null = TopK::new(2, "sharpe");
        for r in [row(4, None), row(2, None), row(9, None)] {
            only_null.offer(&r);
        }
        let sets: Vec<u64> = only_null.rows().map(|r| r.set).collect();
        assert_eq!(sets, vec![2, 4], "rows without a value still rank, by set");
        // In the CSV a metric without value is an empty cell, a number its shortest form.
        let header = csv_header();
        let col = header.split(',').position(|h| h == "sharpe").unwrap();
        let cells = |r: &SweepRow| csv_line(r).split(',').map(String::from).collect::<Vec<_>>();
        assert_eq!(cells(&row(0, None))[col], "");
        assert_eq!(cells(&row(0, Some(-3.0)))[col], "-3");
        assert_eq!(cells(&row(0, None)).len(), header.split(',').count());
    }
}
