//! Every number of a run at the ends of its documented range (`BacktestConfig::validate`, `GridParams`,
//! `SmaParams`): prices stay positive and every amount and metric finite.

use proptest::prelude::*;
use vectura_backtest::config::{
    MAX_COMMISSION_PCT, MAX_COMMISSION_PER_ORDER, MAX_COMMISSION_PER_SHARE, MAX_DEPOSIT,
    MAX_DOLLARS, MAX_SLIPPAGE_BPS,
};
use vectura_backtest::{run, BacktestConfig, BacktestResult, Contributions, FillModel};
use vectura_core::{Bar, BarSeries};
use vectura_strategy::grid::{Grid, GridMode, GridParams};
use vectura_strategy::sma::{SmaCross, SmaParams};

/// The metrics that may be null (no value); every other one must be a finite number.
const OPTIONAL: [&str; 7] = [
    "cagr_pct",
    "sharpe",
    "sortino",
    "calmar",
    "win_rate_pct",
    "profit_factor",
    "average_holding_days",
];

fn check_finite(r: &BacktestResult) -> Result<(), TestCaseError> {
    for t in &r.trades {
        prop_assert!(t.price.is_finite() && t.price > 0.0, "price {}", t.price);
        prop_assert!(
            t.shares.is_finite() && t.shares >= 0.0,
            "shares {}",
            t.shares
        );
        prop_assert!(t.commission.is_finite() && t.commission >= 0.0);
        prop_assert!(t.pnl.is_none_or(f64::is_finite));
    }
    for x in [
        r.final_equity,
        r.final_cash,
        r.invested_cash,
        r.final_equity_post_trade,
        r.max_equity_state,
    ] {
        prop_assert!(x.is_finite(), "{x}");
    }
    // serde_json writes a non-finite f64 as null: a null outside OPTIONAL is an inf or a NaN.
    let m = serde_json::to_value(&r.metrics).unwrap();
    for (k, v) in m.as_object().unwrap() {
        if v.is_null() {
            prop_assert!(OPTIONAL.contains(&k.as_str()), "{k} is not finite");
        } else {
            prop_assert!(v.as_f64().is_some_and(f64::is_finite), "{k} = {v}");
        }
    }
    if let Some(s) = &r.series {
        for x in s.equity.iter().chain(&s.cash).chain(&s.drawdown_pct) {
            prop_assert!(x.is_finite());
        }
    }
    Ok(())
}

prop_compose! {
    /// A minute-bar path with prices from a cent to a million dollars.
    fn path()(start in prop_oneof![Just(0.01f64), Just(1e6), 0.01f64..1000.0],
              steps in prop::collection::vec(-0.05f64..0.05, 2..300)) -> BarSeries {
        let mut s = BarSeries::default();
        let mut p = start;
        for (i, r) in steps.into_iter().enumerate() {
            let open = p;
            p = (p * (1.0 + r)).max(0.0001);
            s.push(Bar { ts: 1_700_000_000 + 60 * i as i64, open, high: open.max(p) * 1.001, low: open.min(p) * 0.999, close: p, volume: 1.0, vwap: None, trade_count: None }).unwrap();
        }
        s
    }
}

fn edge(max: f64) -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), Just(max), 0.0..max]
}

fn below(max: f64) -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), Just(max * (1.0 - 1e-9)), 0.0..max]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn numbers_at_the_ends_of_their_ranges_stay_finite(
        s in path(),
        capital in edge(MAX_DOLLARS),
        deposit in edge(MAX_DEPOSIT),
        every in prop_oneof![Just(0u32), Just(1u32), 1u32..10],
        slip in below(MAX_SLIPPAGE_BPS),
        per_order in edge(MAX_COMMISSION_PER_ORDER),
        per_share in edge(MAX_COMMISSION_PER_SHARE),
        pct in below(MAX_COMMISSION_PCT),
        fill in prop_oneof![Just(FillModel::Close), Just(FillModel::NextOpen), Just(FillModel::Touch)],
        cap in prop_oneof![Just(100.0), 0.01f64..100.0],
        floor in edge(MAX_DOLLARS),
        sma in any::<bool>(),
    ) {
        let d0 = vectura_core::time::date_utc(s.ts[0]);
        let d1 = vectura_core::time::date_utc(*s.ts.last().unwrap());
        let mut c = BacktestConfig::new("X", d0, d1);
        c.start_capital = capital;
        c.contributions = Some(Contributions { every_days: every, amount: deposit });
        c.slippage_bps = slip;
        c.commission.per_order = per_order;
        c.commission.per_share = per_share;
        c.commission.pct = pct;
        c.fill = fill;
        c.benchmark_cash_floor = floor;
        prop_assert_eq!(c.validate(), Ok(()));
        let r = if sma {
            run(&s, &mut SmaCross::new(SmaParams { fast: 2, slow: 5 }).unwrap(), &c).unwrap()
        } else {
            let p = GridParams { capital_pct: cap, buy_below_pct: 1.0, sell_above_pct: 1.0, buy_after_sell_pct: 1.0, cash_floor: floor.min(1e3), order_gap_pct: -1.0 };
            prop_assert_eq!(p.validate(), Ok(()));
            run(&s, &mut Grid::new(p, GridMode::default()), &c).unwrap()
        };
        check_finite(&r)?;
    }
}

#[test]
fn a_price_near_zero_buys_nothing_rather_than_an_infinite_position() {
    // A trillion dollars at 1e-300 a share is more shares than an f64 counts.
    let mut s = BarSeries::default();
    for i in 0..50 {
        let p = if i % 2 == 0 { 1e-300 } else { 2e-300 };
        s.push(Bar::flat(1_700_000_000 + 60 * i, p)).unwrap();
    }
    let d = vectura_core::time::date_utc(s.ts[0]);
    for fill in [FillModel::Close, FillModel::NextOpen] {
        let mut c = BacktestConfig::new("X", d, d + chrono::Duration::days(1));
        c.start_capital = MAX_DOLLARS;
        c.fill = fill;
        let g = run(
            &s,
            &mut Grid::new(GridParams::default(), GridMode::default()),
            &c,
        )
        .unwrap();
        let m = run(
            &s,
            &mut SmaCross::new(SmaParams { fast: 1, slow: 2 }).unwrap(),
            &c,
        )
        .unwrap();
        for r in [&g, &m] {
            check_finite(r).unwrap();
            assert_eq!(r.final_equity, MAX_DOLLARS, "{fill:?}: nothing bought");
        }
        assert!(g.trades.is_empty() && m.trades.is_empty());
        assert_eq!(g.metrics.buy_hold_final_equity, MAX_DOLLARS);
    }
}

#[test]
fn the_ends_of_the_ranges_are_accepted_and_beyond_them_refused() {
    let d = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
    let mut c = BacktestConfig::new("X", d, d);
    c.start_capital = MAX_DOLLARS;
    c.slippage_bps = MAX_SLIPPAGE_BPS - 1.0;
    assert_eq!(c.validate(), Ok(()));
    c.slippage_bps = MAX_SLIPPAGE_BPS;
    let e = c.validate().unwrap_err().to_string();
    assert!(e.starts_with("--slippage-bps is 10000:"), "{e}");
}
