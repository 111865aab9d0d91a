//! Engine behaviour on hand-made bars: deposits, fill models, PDT in a run, and properties over random paths.

use chrono::NaiveDate;
use proptest::prelude::*;
use vectura_backtest::{run, BacktestConfig, Contributions, FillModel, PdtMode};
use vectura_core::{Bar, BarSeries, Side};
use vectura_strategy::grid::{Grid, GridMode, GridParams};
use vectura_strategy::sma::{SmaCross, SmaParams};

fn ts(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(h, min, 0)
        .unwrap()
        .and_utc()
        .timestamp()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn series(bars: &[(i64, f64)]) -> BarSeries {
    let mut s = BarSeries::default();
    for &(t, p) in bars {
        s.push(Bar::flat(t, p)).unwrap();
    }
    s
}

fn grid(compat: bool) -> Grid {
    Grid::new(
        GridParams::default(),
        GridMode {
            compat_v1: compat,
            ..GridMode::default()
        },
    )
}

#[test]
fn deposits_due_over_a_weekend_catch_up_on_monday_before_the_tick() {
    // Start Friday 2024-03-01, 100 USD every day: due Sat 00:00, Sun 00:00 and Mon 00:00.
    let bars = series(&[(ts(2024, 3, 1, 15, 0), 50.0), (ts(2024, 3, 4, 15, 0), 50.0)]);
    let mut cfg = BacktestConfig::new("T", date(2024, 3, 1), date(2024, 3, 4));
    cfg.fill = FillModel::Close;
    cfg.contributions = Some(Contributions {
        every_days: 1,
        amount: 100.0,
    });
    let r = run(&bars, &mut grid(false), &cfg).unwrap();
    let when: Vec<i64> = r.contributions.iter().map(|d| d.ts).collect();
    assert_eq!(
        when,
        vec![ts(2024, 3, 4, 15, 0); 3],
        "three deposits caught up on Monday's bar"
    );
    assert_eq!(r.invested_cash, 1300.0);
    // Friday: 12 shares at 50 (cash 400). Monday: 700 cash before the tick, so the 49 trigger is not hit
    // but the deposit is there: equity = 700 + 12 × 50.
    assert_eq!(r.final_cash, 700.0);
    assert_eq!(r.final_equity, 1300.0);
    assert_eq!(r.trades.len(), 1);
}

#[test]
fn worked_example_in_the_engine_floor_vetoes_the_second_buy() {
    let bars = series(&[
        (ts(2024, 3, 1, 15, 0), 50.0),
        (ts(2024, 3, 1, 15, 1), 49.0),
        (ts(2024, 3, 1, 15, 2), 48.0),
    ]);
    let mut cfg = BacktestConfig::new("T", date(2024, 3, 1), date(2024, 3, 1));
    cfg.fill = FillModel::Close;
    let r = run(&bars, &mut grid(false), &cfg).unwrap();
    assert_eq!(r.trades.len(), 1);
    assert_eq!((r.trades[0].shares, r.trades[0].price), (12.0, 50.0));
    assert_eq!(r.final_cash, 400.0);
    assert_eq!(r.bars_processed, 3);
}

#[test]
fn next_open_fills_at_the_next_bars_open_and_an_order_at_the_end_expires() {
    let mut s = BarSeries::default();
    for (i, (o, c)) in [(50.0, 50.0), (51.0, 52.0), (52.0, 52.5)]
        .into_iter()
        .enumerate()
    {
        s.push(Bar {
            ts: 60 * i as i64 + ts(2024, 3, 1, 15, 0),
            open: o,
            high: o.max(c),
            low: o.min(c),
            close: c,
            volume: 1.0,
            vwap: None,
            trade_count: None,
        })
        .unwrap();
    }
    let mut cfg = BacktestConfig::new("T", date(2024, 3, 1), date(2024, 3, 1));
    cfg.fill = FillModel::NextOpen;
    let r = run(&s, &mut grid(false), &cfg).unwrap();
    assert_eq!(r.trades.len(), 1);
    let t = &r.trades[0];
    assert_eq!(
        (t.ts, t.price),
        (s.ts[1], 51.0),
        "decided at the first close, filled at the second open"
    );
    assert_eq!(
        t.shares, 12.0,
        "sized at the decision price: floor4(600 / 50)"
    );
    assert_eq!(r.final_cash, 1000.0 - 12.0 * 51.0);
}

#[test]
fn pdt_holds_a_fourth_day_trade_in_a_run_below_25k_and_not_above() {
    // One day of same-day round trips: buy at q, sell at q × 1.0105 (the 1 % trigger), re-buy at
    // s × 1.0055 (the 0.5 % "higher" trigger), and so on: every sell is a day trade.
    let p = GridParams {
        capital_pct: 50.0,
        buy_below_pct: 50.0,
        sell_above_pct: 1.0,
        buy_after_sell_pct: 0.5,
        cash_floor: 0.0,
        order_gap_pct: -1.0,
    };
    let mut bars = vec![];
    let mut q = 100.0;
    for k in 0..5u32 {
        let s = q * 1.0105;
        bars.push((ts(2024, 3, 4, 15, 2 * k), q));
        bars.push((ts(2024, 3, 4, 15, 2 * k + 1), s));
        q = s * 1.0055;
    }
    let s = series(&bars);
    for (capital, sells) in [(10_000.0, 3usize), (25_000.0, 5), (100_000.0, 5)] {
        let mut cfg = BacktestConfig::new("T", date(2024, 3, 4), date(2024, 3, 4));
        cfg.fill = FillModel::Close;
        cfg.pdt = PdtMode::On;
        cfg.start_capital = capital;
        let r = run(&s, &mut Grid::new(p, GridMode::default()), &cfg).unwrap();
        let n = r.trades.iter().filter(|t| t.side == Side::Sell).count();
        assert_eq!(n, sells, "capital {capital}: {:?}", r.trades);
        // The same run without the rule, and with auto on bars after 2026-07-06's cut-off, trades freely.
        cfg.pdt = PdtMode::Off;
        let r_off = run(&s, &mut Grid::new(p, GridMode::default()), &cfg).unwrap();
        assert_eq!(
            r_off.trades.iter().filter(|t| t.side == Side::Sell).count(),
            5
        );
    }
}

prop_compose! {
    fn path()(start in 20.0f64..200.0, steps in prop::collection::vec((-0.03f64..0.03, 0.0f64..0.02, 0.0f64..0.02, -0.01f64..0.01), 1..400)) -> Vec<Bar> {
        let mut p = start;
        let mut out = Vec::with_capacity(steps.len());
        for (i, (r, up, down, gap)) in steps.into_iter().enumerate() {
            let open = (p * (1.0 + gap)).max(0.01);
            let close = (p * (1.0 + r)).max(0.01);
            let high = open.max(close) * (1.0 + up);
            let low = open.min(close) * (1.0 - down);
            out.push(Bar { ts: 1_700_000_000 + 60 * i as i64, open, high, low, close, volume: 1.0, vwap: None, trade_count: None });
            p = close;
        }
        out
    }
}

prop_compose! {
    fn params()(cap in 1.0f64..100.0, bb in 0.1f64..10.0, sa in 0.1f64..20.0, bas in 0.1f64..30.0, floor in 0.0f64..500.0, gap in prop_oneof![Just(-1.0), 0.0f64..3.0]) -> GridParams {
        GridParams { capital_pct: cap, buy_below_pct: bb, sell_above_pct: sa, buy_after_sell_pct: bas, cash_floor: floor, order_gap_pct: gap }
    }
}

fn to_series(bars: &[Bar]) -> BarSeries {
    let mut s = BarSeries::default();
    for b in bars {
        s.push(*b).unwrap();
    }
    s
}

fn cfg_for(s: &BarSeries, fill: FillModel, deposits: bool) -> BacktestConfig {
    let d = vectura_core::time::date_utc(s.ts[0]);
    let e = vectura_core::time::date_utc(*s.ts.last().unwrap());
    let mut c = BacktestConfig::new("P", d, e);
    c.fill = fill;
    c.start_capital = 5000.0;
    c.max_points = 4 * (s.len() + 10);
    c.commission.per_share = 0.0;
    if deposits {
        c.contributions = Some(Contributions {
            every_days: 1,
            amount: 250.0,
        });
    }
    c
}

/// The long-only SMA cross written out plainly: the means of the last `fast` and `slow` closes; a cross
/// above (fast ≤ slow on the previous bar, fast > slow now) buys as many whole shares as the cash pays
/// for when flat, a cross below (fast ≥ slow before, fast < slow now) sells everything; at the close, or
/// at the next bar's open with `next_open` (sized there; nothing when the cash no longer buys a share).
fn reference_sma(
    s: &BarSeries,
    fast: usize,
    slow: usize,
    cash0: f64,
    next_open: bool,
) -> Vec<(i64, Side, f64, f64)> {
    let mean = |i: usize, k: usize| {
        let mut sum = 0.0;
        for j in 0..k {
            sum += s.close[i - j];
        }
        sum / k as f64
    };
    // The most whole shares `cash` pays for at `px`.
    let whole = |cash: f64, px: f64| {
        let mut q = (cash / px).floor();
        while q > 0.0 && q * px > cash {
            q -= 1.0;
        }
        while (q + 1.0) * px <= cash {
            q += 1.0;
        }
        q
    };
    let (mut cash, mut shares) = (cash0, 0.0);
    let mut prev: Option<(f64, f64)> = None;
    let mut pending: Option<Side> = None;
    let mut out = Vec::new();
    let mut trade = |side: Side, px: f64, ts: i64, cash: &mut f64, shares: &mut f64| match side {
        Side::Buy => {
            let q = whole(*cash, px);
            if q >= 1.0 {
                *cash -= q * px;
                *shares = q;
                out.push((ts, Side::Buy, q, px));
            }
        }
        Side::Sell => {
            *cash += *shares * px;
            out.push((ts, Side::Sell, *shares, px));
            *shares = 0.0;
        }
    };
    for i in 0..s.len() {
        if let Some(side) = pending.take() {
            trade(side, s.open[i], s.ts[i], &mut cash, &mut shares);
        }
        if i + 1 < slow {
            continue;
        }
        let now = (mean(i, fast), mean(i, slow));
        if let Some((pf, ps)) = prev {
            let side = if pf <= ps && now.0 > now.1 {
                Some(Side::Buy)
            } else if pf >= ps && now.0 < now.1 {
                Some(Side::Sell)
            } else {
                None
            };
            let side = match side {
                Some(Side::Buy) if shares == 0.0 && (cash / s.close[i]).floor() >= 1.0 => {
                    Some(Side::Buy)
                }
                Some(Side::Sell) if shares > 0.0 => Some(Side::Sell),
                _ => None,
            };
            if let Some(side) = side {
                if next_open {
                    pending = Some(side);
                } else {
                    trade(side, s.close[i], s.ts[i], &mut cash, &mut shares);
                }
            }
        }
        prev = Some(now);
    }
    out
}

#[test]
fn sma_cross_buys_after_a_bottom_and_sells_after_a_top() {
    // Down 20 bars, up 30, down 30: one cross above after the bottom, one below after the top.
    let mut p = 100.0;
    let mut bars = Vec::new();
    for i in 0..80 {
        p *= if i < 20 {
            0.99
        } else if i < 50 {
            1.01
        } else {
            0.99
        };
        bars.push((ts(2024, 3, 4, 14, 0) + 60 * i, p));
    }
    let s = series(&bars);
    let mut cfg = BacktestConfig::new("T", date(2024, 3, 4), date(2024, 3, 4));
    cfg.fill = FillModel::Close;
    let sp = SmaParams { fast: 3, slow: 8 };
    let r = run(&s, &mut SmaCross::new(sp).unwrap(), &cfg).unwrap();
    let sides: Vec<Side> = r.trades.iter().map(|t| t.side).collect();
    assert_eq!(sides, vec![Side::Buy, Side::Sell]);
    assert!(r.trades[0].ts > s.ts[20] && r.trades[0].ts < s.ts[30]);
    assert!(r.trades[1].ts > s.ts[50] && r.trades[1].ts < s.ts[60]);
    assert_eq!(
        r.trades
            .iter()
            .map(|t| (t.ts, t.side, t.shares, t.price))
            .collect::<Vec<_>>(),
        reference_sma(&s, 3, 8, cfg.start_capital, false)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn cash_never_negative_equity_adds_up_and_each_bar_is_processed_once(
        bars in path(), p in params(), fill in prop_oneof![Just(FillModel::Close), Just(FillModel::NextOpen), Just(FillModel::Touch)],
        slip in prop_oneof![Just(0.0), 0.0f64..50.0], deposits in any::<bool>()
    ) {
        let s = to_series(&bars);
        let mut cfg = cfg_for(&s, fill, deposits);
        cfg.slippage_bps = slip;
        let r = run(&s, &mut Grid::new(p, GridMode::default()), &cfg).unwrap();
        prop_assert_eq!(r.bars_processed as usize, s.len());
        let series = r.series.as_ref().unwrap();
        // One chart point per bar here (one bar per minute bucket): every bar, once, in order.
        prop_assert_eq!(&series.time, &s.ts);
        // Rebuild holdings and cash from the trade list and deposits, bar by bar.
        let (mut k, mut dk) = (0usize, 0usize);
        let mut shares = 0.0f64;
        let mut cash = cfg.start_capital;
        for i in 0..s.len() {
            while dk < r.contributions.len() && r.contributions[dk].ts <= s.ts[i] {
                cash += r.contributions[dk].amount;
                dk += 1;
            }
            while k < r.trades.len() && r.trades[k].ts <= s.ts[i] {
                let t = &r.trades[k];
                match t.side {
                    Side::Buy => { shares += t.shares; cash -= t.shares * t.price + t.commission; }
                    Side::Sell => { shares -= t.shares; cash += t.shares * t.price - t.commission; }
                }
                k += 1;
            }
            prop_assert!(series.cash[i] >= 0.0, "cash {} < 0 at bar {}", series.cash[i], i);
            let tol = 1e-9 * (1.0 + series.equity[i].abs());
            prop_assert!((series.cash[i] - cash).abs() <= tol, "cash {} vs rebuilt {}", series.cash[i], cash);
            let eq = cash + shares * s.close[i];
            prop_assert!((series.equity[i] - eq).abs() <= 1e-7 * (1.0 + eq.abs()), "equity {} vs cash + shares × close {}", series.equity[i], eq);
        }
        prop_assert!(r.final_cash >= 0.0);
        prop_assert!(shares >= -1e-9);
    }

    #[test]
    fn close_and_touch_agree_on_flat_bars(bars in path(), p in params(), deposits in any::<bool>()) {
        let flat: Vec<Bar> = bars.iter().map(|b| Bar::flat(b.ts, b.close)).collect();
        let s = to_series(&flat);
        let a = run(&s, &mut Grid::new(p, GridMode::default()), &cfg_for(&s, FillModel::Close, deposits)).unwrap();
        let b = run(&s, &mut Grid::new(p, GridMode::default()), &cfg_for(&s, FillModel::Touch, deposits)).unwrap();
        prop_assert_eq!(&a.trades, &b.trades);
        prop_assert_eq!(a.final_equity, b.final_equity);
        prop_assert_eq!(a.final_cash, b.final_cash);
    }

    #[test]
    fn sma_cross_trades_as_a_plain_sma_cross_would(bars in path(), fast in 1usize..8, extra in 1usize..12) {
        let s = to_series(&bars);
        let sp = SmaParams { fast, slow: fast + extra };
        for fill in [FillModel::Close, FillModel::NextOpen] {
            let cfg = cfg_for(&s, fill, false);
            let r = run(&s, &mut SmaCross::new(sp).unwrap(), &cfg).unwrap();
            let got: Vec<(i64, Side, f64, f64)> =
                r.trades.iter().map(|t| (t.ts, t.side, t.shares, t.price)).collect();
            let want = reference_sma(&s, sp.fast, sp.slow, cfg.start_capital, fill == FillModel::NextOpen);
            prop_assert_eq!(&got, &want, "{:?}", fill);
            for t in &r.trades {
                prop_assert_eq!(t.shares.fract(), 0.0);
            }
            prop_assert!(r.final_cash >= 0.0);
        }
    }

    #[test]
    fn the_quiet_bar_kernel_matches_the_per_bar_path(
        bars in path(), p in params(), deposits in any::<bool>(), touch in any::<bool>(), many in 1usize..4
    ) {
        // Repeat the path to get spans long enough for whole SIMD blocks.
        let mut long = Vec::new();
        for k in 0..many * 3 {
            for (j, b) in bars.iter().enumerate() {
                long.push(Bar { ts: b.ts + (k * bars.len() + j) as i64 * 60 - j as i64 * 60, ..*b });
            }
        }
        let s = to_series(&long);
        for compat in [true, false] {
            let fill = if compat { FillModel::Close } else if touch { FillModel::Touch } else { FillModel::NextOpen };
            let mut on = cfg_for(&s, fill, deposits);
            on.compat_v1 = compat;
            let mut off = on.clone();
            off.kernel = false;
            let gm = GridMode { compat_v1: compat, ..GridMode::default() };
            let a = run(&s, &mut Grid::new(p, gm), &on).unwrap();
            let b = run(&s, &mut Grid::new(p, gm), &off).unwrap();
            prop_assert_eq!(&a.trades, &b.trades);
            prop_assert_eq!(a.final_equity, b.final_equity);
            prop_assert_eq!(a.max_equity_state, b.max_equity_state);
            let (ma, mb) = (&a.metrics, &b.metrics);
            if compat {
                prop_assert_eq!(ma, mb, "vectura-v1 metrics must agree bit for bit");
            } else {
                prop_assert_eq!(ma.maximum_drawdown_pct, mb.maximum_drawdown_pct);
                prop_assert_eq!(ma.longest_drawdown_days, mb.longest_drawdown_days);
                prop_assert_eq!(ma.time_weighted_return_pct, mb.time_weighted_return_pct);
                prop_assert_eq!(ma.exposure_pct, mb.exposure_pct);
                let d = (ma.average_invested_capital_pct - mb.average_invested_capital_pct).abs();
                prop_assert!(d <= 1e-9 * (1.0 + mb.average_invested_capital_pct.abs()), "lanes sum drifted: {}", d);
            }
        }
    }
}

#[test]
fn chart_series_keep_every_bar_with_a_trade_and_both_ends() {
    // 20 000 minute bars of a zig-zag that trades often, drawn with 40 points.
    let bars: Vec<(i64, f64)> = (0..20_000i64)
        .map(|i| {
            let x = i as f64;
            (
                ts(2024, 3, 4, 0, 0) + 60 * i,
                100.0 + 3.0 * (x / 150.0).sin() + (x / 2_000.0).cos(),
            )
        })
        .collect();
    let s = series(&bars);
    for fill in [FillModel::Close, FillModel::NextOpen] {
        let mut cfg = BacktestConfig::new("T", date(2024, 3, 4), date(2024, 3, 20));
        cfg.fill = fill;
        cfg.max_points = 40;
        let p = GridParams {
            buy_below_pct: 1.0,
            sell_above_pct: 1.0,
            buy_after_sell_pct: 1.0,
            cash_floor: 0.0,
            ..GridParams::default()
        };
        let r = run(&s, &mut Grid::new(p, GridMode::default()), &cfg).unwrap();
        let c = r.series.unwrap();
        assert!(r.trades.len() > 20, "{}", r.trades.len());
        assert!(
            c.time.len() < 40 * 2 + 8 * r.trades.len(),
            "{}",
            c.time.len()
        );
        assert_eq!(c.time[0], s.ts[0]);
        assert_eq!(*c.time.last().unwrap(), *s.ts.last().unwrap());
        for t in &r.trades {
            assert!(c.time.contains(&t.ts), "{fill:?}: trade at {}", t.ts);
        }
        let low = (0..s.len())
            .min_by(|&a, &b| s.close[a].total_cmp(&s.close[b]))
            .unwrap();
        assert!(c.time.contains(&s.ts[low]), "the lowest close");
    }
}

/// A rising, wavy minute path over four sessions: the grid buys, holds through long quiet runs that
/// make new equity peaks, sells, and buys again on the dips.
fn rising_waves() -> BarSeries {
    let mut bars = Vec::new();
    for day in 0..4i64 {
        for m in 0..390i64 {
            let i = (day * 390 + m) as f64;
            let p = 100.0 + 0.004 * i + 1.2 * (i / 45.0).sin() + 0.3 * (i / 7.0).cos();
            bars.push((ts(2024, 3, 4, 14, 30) + day * 86_400 + 60 * m, p));
        }
    }
    series(&bars)
}

fn wave_config(fill: FillModel, max_points: usize, kernel: bool) -> BacktestConfig {
    let mut cfg = BacktestConfig::new("T", date(2024, 3, 4), date(2024, 3, 7));
    cfg.fill = fill;
    cfg.max_points = max_points;
    cfg.kernel = kernel;
    cfg
}

fn wave_grid() -> Grid {
    Grid::new(
        GridParams {
            buy_below_pct: 0.8,
            sell_above_pct: 1.5,
            buy_after_sell_pct: 1.0,
            cash_floor: 0.0,
            ..GridParams::default()
        },
        GridMode::default(),
    )
}

/// `(peak − equity) / peak × 100`, never negative: the drawdown the panel draws.
fn dd(peak: f64, equity: f64) -> f64 {
    if peak > 0.0 {
        ((peak - equity) / peak * 100.0).max(0.0)
    } else {
        0.0
    }
}

#[test]
fn drawdown_series_is_the_bar_by_bar_drawdown_from_the_running_peak() {
    let s = rising_waves();
    for fill in [FillModel::Close, FillModel::NextOpen, FillModel::Touch] {
        // A budget of more points than bars keeps every bar (one-minute buckets).
        let cfg = wave_config(fill, 8 * s.len(), true);
        let r = run(&s, &mut wave_grid(), &cfg).unwrap();
        let c = r.series.as_ref().unwrap();
        assert_eq!(c.time, s.ts, "{fill:?}: every bar is a point");
        assert!(r.trades.len() >= 4, "{fill:?}: {} trades", r.trades.len());
        // Recomputed bar by bar: the peak runs from the start capital over every bar's equity.
        let mut peak = cfg.start_capital;
        let mut new_peaks_in_quiet_runs = 0;
        for k in 0..c.time.len() {
            let e = c.equity[k];
            if e > peak {
                peak = e;
                if !r.trades.iter().any(|t| t.ts == c.time[k]) {
                    new_peaks_in_quiet_runs += 1;
                }
            }
            assert_eq!(
                c.drawdown_pct[k],
                dd(peak, e),
                "{fill:?}: drawdown at bar {k} ({}), equity {e}, running peak {peak}",
                c.time[k]
            );
        }
        assert!(
            new_peaks_in_quiet_runs > 50,
            "{fill:?}: the path must make new peaks between trades ({new_peaks_in_quiet_runs})"
        );
        let deepest = c.drawdown_pct.iter().cloned().fold(0.0, f64::max);
        assert_eq!(deepest, r.metrics.maximum_drawdown_pct, "{fill:?}");
        // The quiet-run kernel and the per-bar path draw the same series.
        let per_bar = run(&s, &mut wave_grid(), &wave_config(fill, 8 * s.len(), false)).unwrap();
        assert_eq!(per_bar.series.as_ref().unwrap(), c, "{fill:?}");
    }
}

#[test]
fn bucketed_series_hold_the_envelope_of_every_bar() {
    let s = rising_waves();
    for fill in [FillModel::Close, FillModel::NextOpen] {
        // Every bar, bar by bar, as the truth.
        let all = run(&s, &mut wave_grid(), &wave_config(fill, 8 * s.len(), false)).unwrap();
        let all = all.series.unwrap();
        for kernel in [true, false] {
            let r = run(&s, &mut wave_grid(), &wave_config(fill, 60, kernel)).unwrap();
            let c = r.series.as_ref().unwrap();
            let w = c.bucket_seconds;
            assert!(w > 60, "{w}");
            assert!(
                c.time.len() < 60 * 2 + 2 * r.trades.len() && c.time.len() < s.len() / 4,
                "{fill:?}: {} points",
                c.time.len()
            );
            // Each point is the very bar it names, with the bar-by-bar values.
            let at = |t: i64| all.time.binary_search(&t).unwrap();
            for k in 0..c.time.len() {
                let b = at(c.time[k]);
                assert_eq!(
                    (c.price[k], c.equity[k], c.cash[k], c.drawdown_pct[k]),
                    (
                        all.price[b],
                        all.equity[b],
                        all.cash[b],
                        all.drawdown_pct[b]
                    ),
                    "{fill:?} kernel {kernel}: point {k}"
                );
            }
            for t in &r.trades {
                assert!(c.time.contains(&t.ts), "the trade at {}", t.ts);
            }
            // Per bucket, the points' lowest and highest price, equity and drawdown are the bars'.
            let bucket = |t: i64| (t - s.ts[0]).div_euclid(w);
            let mut b0 = 0;
            while b0 < all.time.len() {
                let id = bucket(all.time[b0]);
                let b1 = b0 + all.time[b0..].partition_point(|&t| bucket(t) == id);
                let kept: Vec<usize> = (0..c.time.len())
                    .filter(|&k| bucket(c.time[k]) == id)
                    .collect();
                for (what, bars, pts) in [
                    ("price", &all.price, &c.price),
                    ("equity", &all.equity, &c.equity),
                    ("drawdown", &all.drawdown_pct, &c.drawdown_pct),
                ] {
                    let lo = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
                    let hi = |v: &[f64]| v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let kv: Vec<f64> = kept.iter().map(|&k| pts[k]).collect();
                    assert_eq!(
                        lo(&kv),
                        lo(&bars[b0..b1]),
                        "{fill:?} {what} low of bucket {id}"
                    );
                    assert_eq!(
                        hi(&kv),
                        hi(&bars[b0..b1]),
                        "{fill:?} {what} high of bucket {id}"
                    );
                }
                // Cash moves only at trades: every bar's cash is that of the last point at or before it.
                for b in b0..b1 {
                    let k = c.time.partition_point(|&t| t <= all.time[b]) - 1;
                    assert_eq!(all.cash[b], c.cash[k], "{fill:?} cash at bar {b}");
                }
                b0 = b1;
            }
        }
    }
}
