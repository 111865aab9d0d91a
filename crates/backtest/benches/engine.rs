//! Engine throughput in bars per second (criterion prints it as `thrpt`), bare and with everything
//! `vectura backtest --json` records (`+series`: chart series, trigger lines, final state), on seeded
//! synthetic minute bars
//! (1 and 10 years of dense regular sessions, generated in Rust, no file needed) and on the real INDA
//! minute bars of `data/fixtures` (golden case c, joining off: thousands of live triggers). The
//! `+series/cold` runs start from evicted caches, as a fresh `vectura backtest` process does.
//!
//! `VECTURA_BENCH_BARS=FILE.csv` replaces the seeded bars with a bar file (relative to the current
//! folder or the repository's root), e.g. `peerdata/syn_10y.csv` that a peer's generator wrote, for
//! side-by-side runs on the same input. A missing or unreadable input panics: a benchmark that measures
//! nothing must not pass.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vectura_backtest::sweep::{run_sets, ParamAxis, Plan, Sampling};
use vectura_backtest::{run, BacktestConfig, Contributions, FillModel, PdtMode};
use vectura_core::BarSeries;
use vectura_data::csv::{load_csv_path, LoadOptions};
use vectura_strategy::grid::{Grid, GridMode, GridParams};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(file: &Path) -> BarSeries {
    match load_csv_path(file, &LoadOptions::default()) {
        Ok(l) if !l.series.is_empty() => l.series,
        Ok(_) => panic!("benchmark input {} holds no bars", file.display()),
        Err(e) => panic!("benchmark input {}: {e}", file.display()),
    }
}

/// The inputs of the benchmarks: seeded bars of each of `years`, or `$VECTURA_BENCH_BARS` alone.
fn inputs(years: &[u32]) -> Vec<(String, BarSeries)> {
    match std::env::var_os("VECTURA_BENCH_BARS") {
        Some(f) => {
            // `cargo bench` runs in crates/backtest: a relative path may also name a file from the
            // repository's root.
            let mut p = PathBuf::from(f);
            if p.is_relative() && !p.exists() {
                p = root().join(p);
            }
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "file".into());
            vec![(name, load(&p))]
        }
        None => years
            .iter()
            .map(|&y| {
                (
                    format!("seeded-{y}y"),
                    vectura_data::synth::seeded_minute_bars(y, 1),
                )
            })
            .collect(),
    }
}

/// Bytes written between cold runs: well past the last-level cache (32 MiB on the development machine).
const EVICT_BYTES: usize = 96 << 20;

/// Pushes the bars out of the caches (and their pages out of the TLB) by writing a larger buffer.
fn evict(junk: &mut [u8]) {
    for b in junk.iter_mut().step_by(64) {
        *b = b.wrapping_add(1);
    }
    std::hint::black_box(&*junk);
}

/// The default parameters as the peers' grid benchmark runs them (10 000 USD, no deposits).
fn defaults() -> (GridParams, f64) {
    (GridParams::default(), 10_000.0)
}

/// The peers' active set (golden case d): 3 000 USD, 35 / 0.3 / 0.6 / 1 / 50 / 0.2.
fn active() -> (GridParams, f64) {
    (
        GridParams {
            capital_pct: 35.0,
            buy_below_pct: 0.3,
            sell_above_pct: 0.6,
            buy_after_sell_pct: 1.0,
            cash_floor: 50.0,
            order_gap_pct: 0.2,
        },
        3000.0,
    )
}

fn config(bars: &BarSeries, capital: f64, compat: bool) -> BacktestConfig {
    let d0 = vectura_core::time::date_utc(bars.ts[0]);
    let d1 = vectura_core::time::date_utc(*bars.ts.last().expect("bars"));
    let mut c = BacktestConfig::new("SYN", d0, d1);
    c.start_capital = capital;
    c.record_series = false;
    if compat {
        c.compat_v1 = true;
        c.fill = FillModel::Close;
    } else {
        c.fill = FillModel::NextOpen;
        c.pdt = PdtMode::Auto;
    }
    c
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("grid");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    for (input, bars) in inputs(&[1, 10]) {
        g.throughput(Throughput::Elements(bars.len() as u64));
        for (name, (p, capital)) in [("defaults", defaults()), ("active", active())] {
            for (mode, compat) in [("v1", true), ("default-mode", false)] {
                let cfg = config(&bars, capital, compat);
                let gm = GridMode {
                    compat_v1: compat,
                    share_scale: 1e4,
                    record_lines: false,
                };
                g.bench_with_input(
                    BenchmarkId::new(format!("{mode}/{name}"), &input),
                    &bars,
                    |b, bars| {
                        b.iter(|| run(bars, &mut Grid::new(p, gm), &cfg).unwrap().final_equity)
                    },
                );
                // The whole run `vectura backtest --json` makes: chart series, trigger lines, state.
                let mut whole = cfg.clone();
                whole.record_series = true;
                let gm = GridMode {
                    record_lines: true,
                    ..gm
                };
                g.bench_with_input(
                    BenchmarkId::new(format!("{mode}/{name}+series"), &input),
                    &bars,
                    |b, bars| {
                        b.iter(|| {
                            let r = run(bars, &mut Grid::new(p, gm), &whole).unwrap();
                            (r.final_equity, r.series.map(|s| s.time.len()))
                        })
                    },
                );
                // The same from cold caches, as a fresh `vectura backtest` process meets bars that
                // the parse pushed out of cache: what `timing.run_seconds` reports.
                if name == "defaults" {
                    let mut junk = vec![0u8; EVICT_BYTES];
                    g.bench_with_input(
                        BenchmarkId::new(format!("{mode}/{name}+series/cold"), &input),
                        &bars,
                        |b, bars| {
                            b.iter_batched(
                                || evict(&mut junk),
                                |_| {
                                    let r = run(bars, &mut Grid::new(p, gm), &whole).unwrap();
                                    (r.final_equity, r.series.map(|s| s.time.len()))
                                },
                                BatchSize::PerIteration,
                            )
                        },
                    );
                }
            }
        }
    }
    // A real joining-off case: golden INDA case c (thousands of live triggers), vectura-v1.
    let bars = load(&root().join("data/fixtures/INDA_1min_2023-07-10_to_2025-07-07.csv.gz"));
    g.throughput(Throughput::Elements(bars.len() as u64));
    let p = GridParams {
        capital_pct: 20.0,
        buy_below_pct: 0.5,
        sell_above_pct: 1.0,
        buy_after_sell_pct: 2.0,
        cash_floor: 100.0,
        order_gap_pct: -1.0,
    };
    let mut cfg = config(&bars, 10_000.0, true);
    cfg.contributions = Some(Contributions {
        every_days: 7,
        amount: 500.0,
    });
    let gm = GridMode {
        compat_v1: true,
        share_scale: 1e4,
        record_lines: false,
    };
    g.bench_function("v1/golden-INDA-c-joining-off", |b| {
        b.iter(|| {
            run(&bars, &mut Grid::new(p, gm), &cfg)
                .unwrap()
                .final_equity
        })
    });
    g.finish();
}

/// Sweep throughput (sets × bars per second) on the seeded year (or `$VECTURA_BENCH_BARS`), over
/// random sets drawn from wide ranges, on all cores (rayon), in our default mode.
fn bench_sweep(c: &mut Criterion) {
    let (input, bars) = inputs(&[1]).swap_remove(0);
    let axes = [
        "capital_pct=10:60:0.01",
        "buy_below_pct=0.2:3:0.001",
        "sell_above_pct=0.3:20:0.001",
        "buy_after_sell_pct=0.5:25:0.001",
        "cash_floor=50:200:0.01",
        "order_gap_pct=0.1:1.5:0.001",
    ]
    .iter()
    .map(|s| ParamAxis::parse(s).unwrap())
    .collect::<Vec<_>>();
    let cfg = config(&bars, 10_000.0, false);
    let mut g = c.benchmark_group("sweep");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    for sets in [1_000u64, 10_000] {
        let plan = Plan::new(
            GridParams::default(),
            axes.clone(),
            Sampling::Random { n: sets, seed: 7 },
        )
        .unwrap();
        g.throughput(Throughput::Elements(sets * bars.len() as u64));
        g.bench_function(
            BenchmarkId::new(format!("wide-random/{input}"), sets),
            |b| {
                b.iter(|| {
                    let mut acc = 0.0;
                    run_sets(&bars, &cfg, &plan, 0, plan.len(), 256, |r| {
                        acc += r.final_equity;
                        Ok(())
                    })
                    .unwrap();
                    acc
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench, bench_sweep);
criterion_main!(benches);
