//! Engine throughput in bars per second, on the seeded bars of `shared/peers/gen_minute_bars.py`
//! (1 and 10 years) and on a real joining-off golden case, for the sets `shared/peers/bench_grid.py` times.
//!
//! `cargo bench -p vectura-backtest` generates the seeded bars into `peerdata/` on first use (python3 with
//! numpy), or reads them from `$VECTURA_PEERDATA`. Compare with bench_grid.py in the same session.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use vectura_backtest::sweep::{run_sets, ParamAxis, Plan, Sampling};
use vectura_backtest::{run, BacktestConfig, Contributions, FillModel, PdtMode};
use vectura_core::BarSeries;
use vectura_data::csv::{load_csv_path, LoadOptions};
use vectura_strategy::grid::{Grid, GridMode, GridParams};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The seeded synthetic bars, generated once with the peer's own generator.
fn seeded(years: u32) -> Option<BarSeries> {
    let dir = std::env::var_os("VECTURA_PEERDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("peerdata"));
    let file = dir.join(format!("syn_{years}y.csv"));
    if !file.exists() {
        let _ = std::fs::create_dir_all(&dir);
        let gen = root().join("../shared/peers/gen_minute_bars.py");
        let py = if root().join("peervenv/bin/python").exists() {
            root().join("peervenv/bin/python")
        } else {
            PathBuf::from("python3")
        };
        eprintln!("generating {} with {}", file.display(), gen.display());
        let ok = Command::new(py)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .args([
                gen.as_os_str(),
                "--years".as_ref(),
                years.to_string().as_ref(),
                "--seed".as_ref(),
                "1".as_ref(),
                "--out".as_ref(),
                file.as_os_str(),
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!(
                "cannot generate the seeded bars (needs python3 with numpy): skipping {years}y"
            );
            return None;
        }
    }
    load(&file)
}

fn load(file: &Path) -> Option<BarSeries> {
    match load_csv_path(file, &LoadOptions::default()) {
        Ok(l) => Some(l.series),
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}

/// The default parameters as bench_grid.py runs them (10 000 USD, no deposits).
fn defaults() -> (GridParams, f64) {
    (GridParams::default(), 10_000.0)
}

/// bench_grid.py's active set (golden case d): 3 000 USD, 35 / 0.3 / 0.6 / 1 / 50 / 0.2.
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
    let d1 = vectura_core::time::date_utc(*bars.ts.last().unwrap());
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
    for years in [1u32, 10] {
        let Some(bars) = seeded(years) else { continue };
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
                    BenchmarkId::new(format!("{mode}/{name}"), format!("{years}y")),
                    &bars,
                    |b, bars| {
                        b.iter(|| run(bars, &mut Grid::new(p, gm), &cfg).unwrap().final_equity)
                    },
                );
            }
        }
    }
    // A real joining-off case: golden INDA case c (thousands of live triggers), vectura-v1.
    if let Some(bars) = load(&root().join("../shared/data/INDA_1min_2023-07-10_to_2025-07-07.csv"))
    {
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
    }
    g.finish();
}

/// Sweep throughput (sets × bars per second) on the seeded year, over random sets drawn from ranges like
/// bench_grid.py's "wide" sets, on all cores (rayon), in our default mode.
fn bench_sweep(c: &mut Criterion) {
    let Some(bars) = seeded(1) else { return };
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
        g.bench_function(BenchmarkId::new("wide-random/1y", sets), |b| {
            b.iter(|| {
                let mut acc = 0.0;
                run_sets(&bars, &cfg, &plan, 0, plan.len(), 256, |r| {
                    acc += r.final_equity;
                    Ok(())
                })
                .unwrap();
                acc
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_sweep);
criterion_main!(benches);
