//! Runs one grid backtest many times over a bar file, for profilers:
//! `profile_run FILE [v1|default] [defaults|active|golden-c] [reps] [series]`, e.g.
//! `cargo run --release -p vectura-backtest --example profile_run -- data/fixtures/INDA_1min_2023-07-10_to_2025-07-07.csv.gz v1 golden-c`.
//! `series` records what `vectura backtest --json` records (chart series, trigger lines, state).
//! `VECTURA_COLD=1` evicts the caches before each run, as a fresh `vectura backtest` process meets
//! the bars (loaded, then pushed out of cache by the parse).

use vectura_backtest::{run, BacktestConfig, FillModel};
use vectura_data::csv::{load_csv_path, LoadOptions};
use vectura_strategy::grid::{Grid, GridMode, GridParams};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let Some(file) = a.get(1) else {
        eprintln!(
            "usage: profile_run FILE [v1|default] [defaults|active|golden-c] [reps] [series]"
        );
        std::process::exit(2);
    };
    let bars = load_csv_path(file.as_ref(), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .series;
    let compat = a.get(2).map(|s| s == "v1").unwrap_or(true);
    let golden_c = a.get(3).map(|s| s == "golden-c").unwrap_or(false);
    let (p, cap) = if golden_c {
        (
            GridParams {
                capital_pct: 20.0,
                buy_below_pct: 0.5,
                sell_above_pct: 1.0,
                buy_after_sell_pct: 2.0,
                cash_floor: 100.0,
                order_gap_pct: -1.0,
            },
            10_000.0,
        )
    } else if a.get(3).map(|s| s == "active").unwrap_or(false) {
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
    } else {
        (GridParams::default(), 10_000.0)
    };
    let reps: usize = a.get(4).and_then(|s| s.parse().ok()).unwrap_or(20);
    let d0 = vectura_core::time::date_utc(bars.ts[0]);
    let d1 = vectura_core::time::date_utc(*bars.ts.last().unwrap());
    let mut c = BacktestConfig::new("P", d0, d1);
    c.start_capital = cap;
    let series = a.get(5).map(|s| s == "series").unwrap_or(false);
    c.record_series = series;
    if golden_c {
        c.contributions = Some(vectura_backtest::Contributions {
            every_days: 7,
            amount: 500.0,
        });
    }
    c.compat_v1 = compat;
    c.fill = if compat {
        FillModel::Close
    } else {
        FillModel::NextOpen
    };
    let mut x = 0.0;
    let mut trades = 0;
    let mut dt = f64::INFINITY;
    let cold = std::env::var_os("VECTURA_COLD").is_some();
    let mut junk = vec![0u8; if cold { 96 << 20 } else { 0 }];
    for k in 0..reps {
        for b in junk.iter_mut().step_by(64) {
            *b = b.wrapping_add(k as u8);
        }
        let t = std::time::Instant::now();
        let r = run(
            &bars,
            &mut Grid::new(
                p,
                GridMode {
                    compat_v1: compat,
                    share_scale: 1e4,
                    record_lines: series,
                },
            ),
            &c,
        )
        .unwrap();
        dt = dt.min(t.elapsed().as_secs_f64());
        x += r.final_equity;
        trades = r.trades.len();
    }
    std::hint::black_box(&junk);
    println!(
        "{} bars, {trades} trades, {:.3} ms/run, {:.2} ns/bar, {:.0} M bars/s ({x})",
        bars.len(),
        dt * 1e3,
        dt * 1e9 / bars.len() as f64,
        bars.len() as f64 / dt / 1e6
    );
}
