//! Metrics of whole runs: no ratio made of rounding, trade statistics without trades, and the
//! time-weighted index of a run that starts without money. Checked through the JSON record, as the CLI
//! prints it.

use chrono::NaiveDate;
use serde_json::Value;
use vectura_backtest::{run, BacktestConfig, BacktestResult, Contributions, FillModel};
use vectura_core::{Bar, BarSeries};
use vectura_strategy::grid::{Grid, GridMode, GridParams};

const DAY: i64 = 86_400;

/// One bar a day at 15:00 UTC for `days` days from 2024-01-01, a deterministic zig-zag walk.
fn daily_bars(days: i64) -> BarSeries {
    let t0 = NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(15, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp();
    let mut s = BarSeries::default();
    let mut p = 100.0;
    for d in 0..days {
        p *= 1.0 + [0.012, -0.02, 0.007, 0.015, -0.011, -0.004, 0.009][(d % 7) as usize];
        s.push(Bar::flat(t0 + d * DAY, (p * 100.0f64).round() / 100.0))
            .unwrap();
    }
    s
}

fn config(bars: &BarSeries, capital: f64, every_days: u32) -> BacktestConfig {
    let d0 = vectura_core::time::date_utc(bars.ts[0]);
    let d1 = vectura_core::time::date_utc(*bars.ts.last().unwrap());
    let mut c = BacktestConfig::new("T", d0, d1);
    c.fill = FillModel::Close;
    c.start_capital = capital;
    c.contributions = Some(Contributions {
        every_days,
        amount: 500.0,
    });
    c
}

fn metrics(r: &BacktestResult) -> Value {
    serde_json::to_value(&r.metrics).unwrap()
}

#[test]
fn a_run_that_never_trades_has_no_ratios_and_no_trade_statistics() {
    // A cash floor above any cash the run holds: nothing is ever bought. Weekly deposits change the
    // index's factor, which rounding turned into daily returns of ±1e-16 and a Sharpe of 1.07.
    let bars = daily_bars(300);
    let p = GridParams {
        cash_floor: 1e9,
        ..GridParams::default()
    };
    for every_days in [1, 7] {
        let cfg = config(&bars, 1000.0, every_days);
        let r = run(&bars, &mut Grid::new(p, GridMode::default()), &cfg).unwrap();
        assert!(r.trades.is_empty());
        assert!(r.contributions.len() > 40);
        let m = metrics(&r);
        for k in [
            "sharpe",
            "sortino",
            "calmar",
            "win_rate_pct",
            "average_holding_days",
            "profit_factor",
        ] {
            assert!(m[k].is_null(), "every {every_days} days: {k} = {}", m[k]);
        }
        assert_eq!(m["volatility_pct"], 0.0, "{}", m["volatility_pct"]);
        assert_eq!(m["time_weighted_max_drawdown_pct"], 0.0);
        assert!(m["time_weighted_return_pct"].as_f64().unwrap().abs() < 1e-9);
        assert_eq!(m["closed_trades"], 0);
    }
}

#[test]
fn a_run_that_trades_has_its_ratios() {
    let bars = daily_bars(300);
    let p = GridParams {
        buy_below_pct: 1.0,
        sell_above_pct: 1.5,
        buy_after_sell_pct: 1.0,
        cash_floor: 0.0,
        ..GridParams::default()
    };
    let r = run(
        &bars,
        &mut Grid::new(p, GridMode::default()),
        &config(&bars, 1000.0, 7),
    )
    .unwrap();
    assert!(r.metrics.closed_trades > 5, "{}", r.metrics.closed_trades);
    let m = &r.metrics;
    assert!(m.sharpe.is_some_and(f64::is_finite));
    assert!(m.sortino.is_some_and(f64::is_finite));
    assert!(m.calmar.is_some_and(f64::is_finite));
    assert!(m.volatility_pct > 1.0, "{}", m.volatility_pct);
    let wins = r
        .trades
        .iter()
        .filter(|t| t.pnl.is_some_and(|x| x > 0.0))
        .count();
    assert_eq!(
        m.win_rate_pct,
        Some(wins as f64 / m.closed_trades as f64 * 100.0)
    );
    assert!(m.average_holding_days.is_some_and(|d| d > 0.0));
}

#[test]
fn without_start_capital_the_time_weighted_return_starts_at_the_first_deposit() {
    // Run A starts with nothing and gets 500 every 7 days; run B starts on A's first deposit day with
    // those 500 as capital and the same deposits after. Same money, same trades: the same time-weighted
    // figures. (A read −100 % before: its index was 0 until the first deposit and stayed 0.)
    let bars = daily_bars(200);
    let p = GridParams {
        buy_below_pct: 1.0,
        sell_above_pct: 1.5,
        buy_after_sell_pct: 1.0,
        cash_floor: 0.0,
        ..GridParams::default()
    };
    let cfg_a = config(&bars, 0.0, 7);
    let a = run(&bars, &mut Grid::new(p, GridMode::default()), &cfg_a).unwrap();
    let first = a.contributions[0].ts;
    let b_bars = bars.slice_time(first, i64::MAX);
    let mut cfg_b = config(&b_bars, 500.0, 7);
    cfg_b.start_date = vectura_core::time::date_utc(first);
    let b = run(&b_bars, &mut Grid::new(p, GridMode::default()), &cfg_b).unwrap();
    assert_eq!(a.trades, b.trades);
    assert!(a.trades.len() > 10);
    assert_eq!(a.contributions[1..], b.contributions[..]);
    assert_eq!(a.final_equity, b.final_equity);
    let (ma, mb) = (metrics(&a), metrics(&b));
    for k in [
        "time_weighted_return_pct",
        "cagr_pct",
        "volatility_pct",
        "sharpe",
        "sortino",
        "calmar",
        "time_weighted_max_drawdown_pct",
    ] {
        assert_eq!(ma[k], mb[k], "{k}");
    }
    let twr = ma["time_weighted_return_pct"].as_f64().unwrap();
    assert!(twr > -50.0 && twr != 0.0, "{twr}");
}
