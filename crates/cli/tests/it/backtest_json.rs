//! `vectura backtest --json` on the bundled data: the headline figures, recomputed independently from the
//! JSON's own trade list and deposits; the grid's trades themselves, against a plain re-implementation
//! of the grid in this file; and the numbers of the extreme ends of every flag's range.

use crate::common::{secs, vectura};
use serde_json::Value;
use std::path::PathBuf;

/// `vectura backtest --json EXTRA…`, which must succeed, parsed.
fn backtest_json(extra: &[&str]) -> Value {
    let mut args = vec!["backtest", "--json"];
    args.extend_from_slice(extra);
    let out = vectura(&args);
    assert!(
        out.status.success(),
        "{extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

fn recompute(extra: &[&str]) {
    let r = backtest_json(extra);
    let f = |v: &Value| v.as_f64().unwrap();
    let start = f(&r["start_capital"]);
    let deposits: f64 = r["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| f(&d["amount"]))
        .sum();
    let trades = r["trades"].as_array().unwrap();
    let (mut cash, mut shares, mut wins, mut sells) = (start + deposits, 0.0f64, 0, 0);
    let mut last = i64::MIN;
    for t in trades {
        let ts = secs(t["time"].as_str().unwrap());
        assert!(ts >= last, "trades in time order");
        last = ts;
        let (q, p, c) = (f(&t["shares"]), f(&t["price"]), f(&t["commission"]));
        match t["side"].as_str().unwrap() {
            "buy" => {
                cash -= q * p + c;
                shares += q;
            }
            "sell" => {
                cash += q * p - c;
                shares -= q;
                sells += 1;
                let buy = &trades[t["closes_trade"].as_u64().unwrap() as usize];
                let pnl = q * (p - f(&buy["price"])) - c;
                assert!((pnl - f(&t["pnl"])).abs() < 1e-6, "pnl of a sell");
                if pnl > 0.0 {
                    wins += 1;
                }
            }
            s => panic!("side {s}"),
        }
        assert!(cash >= -1e-9, "cash never negative");
    }
    let last_close = r["series"]["price"].as_array().unwrap().last().unwrap();
    let equity = cash + shares * f(last_close);
    let tol = |x: f64| 1e-7 * (1.0 + x.abs());
    assert!(
        (f(&r["final_cash"]) - cash).abs() < tol(cash),
        "final_cash {} vs {cash}",
        r["final_cash"]
    );
    assert!(
        (f(&r["final_equity"]) - equity).abs() < tol(equity),
        "final_equity {} vs {equity}",
        r["final_equity"]
    );
    assert_eq!(f(&r["invested_cash"]), start + deposits);
    let m = &r["metrics"];
    assert!((f(&m["total_return"]) - (equity - start - deposits)).abs() < tol(equity));
    let pct = equity / (start + deposits) * 100.0 - 100.0;
    assert!((f(&m["total_return_pct"]) - pct).abs() < 1e-6);
    assert_eq!(m["total_trades"].as_u64().unwrap() as usize, trades.len());
    assert_eq!(m["closed_trades"].as_u64().unwrap() as usize, sells);
    if sells > 0 {
        assert!((f(&m["win_rate_pct"]) - wins as f64 / sells as f64 * 100.0).abs() < 1e-9);
    }
    assert!(f(&m["maximum_equity"]) >= f(&r["final_equity_post_trade"]) - tol(equity));
    // Timing and the bar count are reported.
    let timing = &r["timing"];
    assert!(timing["bars_processed"].as_u64().unwrap() > 10_000);
    assert_eq!(timing["bars_processed"], r["bars_processed"]);
    assert!(f(&timing["load_seconds"]) >= 0.0 && f(&timing["run_seconds"]) >= 0.0);
    assert_eq!(r["symbol"], "SPY");
}

#[test]
fn default_backtest_json_recomputes_from_its_trades() {
    recompute(&[]);
}

#[test]
fn active_backtest_json_recomputes_from_its_trades() {
    recompute(&[
        "--capital-pct",
        "35",
        "--buy-below-pct",
        "0.3",
        "--sell-above-pct",
        "0.6",
        "--buy-after-sell-pct",
        "1",
        "--cash-floor",
        "50",
        "--order-gap-pct",
        "0.2",
        "--start-capital",
        "3000",
    ]);
}

#[test]
fn touch_fill_and_sma_cross_json_recompute_too() {
    recompute(&[
        "--fill",
        "touch",
        "--capital-pct",
        "35",
        "--buy-below-pct",
        "0.3",
        "--sell-above-pct",
        "0.6",
    ]);
    recompute(&[
        "--strategy",
        "sma-cross",
        "--fill",
        "next-open",
        "--contribution-frequency-days",
        "0",
    ]);
}

/// One trade as the JSON lists it: time (Unix s), buy?, shares, price, the buy a sell closes.
type RefTrade = (i64, bool, f64, f64, Option<usize>);

/// `floor(x · 10⁴) / 10⁴`, the grid's share and dollar rounding.
fn floor4(x: f64) -> f64 {
    (x * 1e4).floor() / 1e4
}

/// The grid of the original (§1) with joining off, no PDT rule, deposits, commission or slippage,
/// written out plainly: buy triggers in creation order (a first "higher" one at −1 buys at once), a
/// buy uses `capital_pct` of cash unless what stays is below the cash floor, and makes a "below" buy
/// trigger and its lot's sell trigger; a sell makes a "below" and a "higher" buy trigger. Triggers fire on
/// the close; every trigger that fired on a bar is acted on, buys first. With `next_open` orders decided
/// on a close fill at the next bar's open (buys sized at the close, cut to the cash there is).
fn reference_grid(
    ts: &[i64],
    open: &[f64],
    close: &[f64],
    cash0: f64,
    p: [f64; 5],
    next_open: bool,
) -> Vec<RefTrade> {
    let [cap, below, above, after, floor] = p;
    let (k_cap, k_below, k_above, k_after) = (
        cap / 100.0,
        1.0 - below / 100.0,
        1.0 + above / 100.0,
        1.0 + after / 100.0,
    );
    // (id, price, fires at or above); (id, price, shares, the buy's trade index)
    let mut buys: Vec<(u64, f64, bool)> = vec![(0, -1.0, true)];
    let mut sells: Vec<(u64, f64, f64, usize)> = vec![];
    let mut next_id = 1u64;
    let mut cash = cash0;
    let mut out: Vec<RefTrade> = vec![];
    // Orders waiting for the next open: (buy trigger id or sell trigger id, buy?, shares).
    let mut pending: Vec<(u64, bool, f64)> = vec![];
    let vetoed = |cash: f64| cash - floor4(cash * k_cap) < floor;
    let buy = |id: u64,
               qty: f64,
               px: f64,
               t: i64,
               buys: &mut Vec<(u64, f64, bool)>,
               sells: &mut Vec<(u64, f64, f64, usize)>,
               cash: &mut f64,
               out: &mut Vec<RefTrade>,
               next_id: &mut u64| {
        *cash = *cash - qty * px - 0.0;
        buys.retain(|b| b.0 != id);
        buys.push((*next_id, px * k_below, false));
        sells.push((*next_id + 1, px * k_above, qty, out.len()));
        *next_id += 2;
        out.push((t, true, qty, px, None));
    };
    let sell = |id: u64,
                px: f64,
                t: i64,
                buys: &mut Vec<(u64, f64, bool)>,
                sells: &mut Vec<(u64, f64, f64, usize)>,
                cash: &mut f64,
                out: &mut Vec<RefTrade>,
                next_id: &mut u64| {
        let i = sells.iter().position(|s| s.0 == id).unwrap();
        let (_, _, qty, lot) = sells.remove(i);
        *cash = *cash + px * qty - 0.0;
        buys.push((*next_id, px * k_below, false));
        buys.push((*next_id + 1, px * k_after, true));
        *next_id += 2;
        out.push((t, false, qty, px, Some(lot)));
    };
    for i in 0..ts.len() {
        // Orders sent at the previous close fill at this open, in the order they were sent.
        for (id, is_buy, qty) in std::mem::take(&mut pending) {
            let px = open[i];
            if is_buy {
                let mut q = qty;
                if q * px > cash {
                    q = floor4(cash / px);
                    while q > 0.0 && q * px > cash {
                        q = floor4(q - 1e-4);
                    }
                }
                if q > 0.0 {
                    buy(
                        id,
                        q,
                        px,
                        ts[i],
                        &mut buys,
                        &mut sells,
                        &mut cash,
                        &mut out,
                        &mut next_id,
                    );
                }
            } else {
                sell(
                    id,
                    px,
                    ts[i],
                    &mut buys,
                    &mut sells,
                    &mut cash,
                    &mut out,
                    &mut next_id,
                );
            }
        }
        let px = close[i];
        let fired_buys: Vec<u64> = if vetoed(cash) {
            vec![]
        } else {
            buys.iter()
                .filter(|b| if b.2 { px >= b.1 } else { px <= b.1 })
                .map(|b| b.0)
                .collect()
        };
        let fired_sells: Vec<u64> = sells.iter().filter(|s| px >= s.1).map(|s| s.0).collect();
        let mut reserved = 0.0;
        for id in fired_buys {
            let avail = cash - reserved;
            if vetoed(avail) {
                break;
            }
            let qty = floor4(floor4(avail * k_cap) / px);
            if qty <= 0.0 {
                continue;
            }
            if next_open {
                reserved += qty * px;
                pending.push((id, true, qty));
            } else {
                buy(
                    id,
                    qty,
                    px,
                    ts[i],
                    &mut buys,
                    &mut sells,
                    &mut cash,
                    &mut out,
                    &mut next_id,
                );
            }
        }
        for id in fired_sells {
            if next_open {
                pending.push((id, false, 0.0));
            } else {
                sell(
                    id,
                    px,
                    ts[i],
                    &mut buys,
                    &mut sells,
                    &mut cash,
                    &mut out,
                    &mut next_id,
                );
            }
        }
    }
    out
}

#[test]
fn grid_trades_match_a_plain_reimplementation_of_the_grid() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/bundled/SPY_1min_2011-01.csv.gz");
    let bars = vectura_data::csv::load_csv_path(&file, &Default::default())
        .unwrap()
        .series;
    let file = file.display().to_string();
    for (fill, params) in [
        ("close", [35.0, 0.3, 0.6, 1.0, 50.0]),
        ("next-open", [35.0, 0.3, 0.6, 1.0, 50.0]),
        ("close", [60.0, 0.5, 0.4, 0.3, 200.0]),
        ("next-open", [20.0, 0.2, 0.25, 0.3, 0.0]),
    ] {
        let [cap, below, above, after, floor] = params.map(|x| x.to_string());
        let out = vectura(&[
            "backtest",
            "--json",
            "--data",
            &file,
            "--session",
            "all",
            "--pdt",
            "off",
            "--contribution-frequency-days",
            "0",
            "--start-capital",
            "3000",
            "--fill",
            fill,
            "--order-gap-pct",
            "-1",
            "--capital-pct",
            &cap,
            "--buy-below-pct",
            &below,
            "--sell-above-pct",
            &above,
            "--buy-after-sell-pct",
            &after,
            "--cash-floor",
            &floor,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["bars_processed"].as_u64(), Some(bars.len() as u64));
        let got: Vec<RefTrade> = r["trades"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    secs(t["time"].as_str().unwrap()),
                    t["side"] == "buy",
                    t["shares"].as_f64().unwrap(),
                    t["price"].as_f64().unwrap(),
                    t["closes_trade"].as_u64().map(|x| x as usize),
                )
            })
            .collect();
        let want = reference_grid(
            &bars.ts,
            &bars.open,
            &bars.close,
            3000.0,
            params,
            fill == "next-open",
        );
        assert!(want.len() > 20, "{fill} {params:?}: {} trades", want.len());
        assert_eq!(got.len(), want.len(), "{fill} {params:?}: trade count");
        for (k, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a, b, "{fill} {params:?}: trade {k}");
        }
    }
}

#[test]
fn numbers_beyond_their_flags_ranges_are_refused_and_their_ends_stay_finite() {
    for (args, flag) in [
        (
            &["--strategy", "sma-cross", "--slow", "18446744073709551615"][..],
            "--slow",
        ),
        (&["--slippage-bps", "20000"], "--slippage-bps"),
        (&["--slippage-bps", "10000"], "--slippage-bps"),
        (&["--start-capital", "1e308"], "--start-capital"),
        (&["--contribution-amount", "1e308"], "--contribution-amount"),
        (&["--commission-pct", "100"], "--commission-pct"),
        (&["--commission-per-order", "1e7"], "--commission-per-order"),
        (&["--commission-per-share", "inf"], "--commission-per-share"),
        (&["--cash-floor", "1e13"], "cash-floor"),
        (
            &["--contribution-frequency-days", "36501"],
            "--contribution-frequency-days",
        ),
    ] {
        let mut all = vec!["backtest"];
        all.extend_from_slice(args);
        let out = vectura(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(flag) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
        assert!(err.len() < 200, "a short line: {err}");
        assert!(out.stdout.is_empty());
    }
    let optional = [
        "cagr_pct",
        "sharpe",
        "sortino",
        "calmar",
        "win_rate_pct",
        "profit_factor",
        "average_holding_days",
    ];
    for args in [
        &[
            "--start-capital",
            "1e12",
            "--contribution-amount",
            "1e9",
            "--contribution-frequency-days",
            "1",
            "--cash-floor",
            "1e12",
        ][..],
        &[
            "--start-capital",
            "1e12",
            "--cash-floor",
            "0",
            "--capital-pct",
            "100",
        ],
        &[
            "--slippage-bps",
            "9999.99",
            "--fill",
            "touch",
            "--capital-pct",
            "100",
        ],
        &[
            "--commission-pct",
            "99.99",
            "--commission-per-order",
            "1e6",
            "--commission-per-share",
            "1000",
        ],
        &[
            "--strategy",
            "sma-cross",
            "--fast",
            "1",
            "--slow",
            "100000",
            "--start-capital",
            "1e12",
        ],
    ] {
        let r = backtest_json(args);
        for k in [
            "final_equity",
            "final_cash",
            "invested_cash",
            "max_equity_state",
        ] {
            assert!(r[k].as_f64().is_some_and(f64::is_finite), "{args:?}: {k}");
        }
        // JSON holds no inf or NaN: serde writes them as null, so a null must be a metric without value.
        for (k, v) in r["metrics"].as_object().unwrap() {
            assert!(
                v.as_f64().is_some_and(f64::is_finite)
                    || (v.is_null() && optional.contains(&k.as_str())),
                "{args:?}: {k} = {v}"
            );
        }
        for t in r["trades"].as_array().unwrap() {
            let p = t["price"].as_f64().unwrap();
            assert!(p.is_finite() && p > 0.0, "{args:?}: price {p}");
        }
    }
}

#[test]
fn a_run_without_trades_shows_no_ratios_in_text_and_json() {
    // A cash floor above all the money: nothing is bought; weekly deposits only.
    let out = vectura(&["backtest", "--cash-floor", "100000"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |start: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no {start:?} line in {text}"))
            .to_string()
    };
    let ratios = line("sharpe / sortino");
    assert!(
        ratios.contains("— / —") && ratios.ends_with("calmar —"),
        "{ratios}"
    );
    let lots = line("closed lots");
    assert!(
        lots.contains("win rate —") && lots.contains("avg holding —"),
        "{lots}"
    );
    assert!(!text.contains("0.00 days") && !text.contains("NaN"));
    // The original's figures are under their own heading.
    let head = text
        .lines()
        .position(|l| l.starts_with("the original's figures"))
        .expect("the original's heading");
    let best = text
        .lines()
        .position(|l| l.contains("best / worst month"))
        .unwrap();
    assert!(best > head);
    let r = backtest_json(&["--cash-floor", "100000"]);
    let m = &r["metrics"];
    for k in [
        "sharpe",
        "sortino",
        "calmar",
        "win_rate_pct",
        "average_holding_days",
    ] {
        assert!(m[k].is_null(), "{k} = {}", m[k]);
    }
    assert_eq!(m["volatility_pct"], 0.0);
    assert_eq!(m["total_trades"], 0);
}

/// The drawdown panel on the bundled SPY: its deepest point is the max-drawdown metric (the panel once
/// dipped to −0.97 % where the metric said 0.77 %: quiet runs took the peak of the run's end), and the
/// JSON says how wide its buckets are.
#[test]
fn the_drawdown_panel_reaches_the_max_drawdown_metric_and_no_further() {
    for extra in [&[][..], &["--compat", "vectura-v1", "--fill", "close"][..]] {
        let r = backtest_json(extra);
        let s = &r["series"];
        let dd: Vec<f64> = s["drawdown_pct"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let deepest = dd.iter().cloned().fold(0.0, f64::max);
        let metric = r["metrics"]["maximum_drawdown_pct"].as_f64().unwrap();
        assert!(metric > 0.1, "{extra:?}: the run has a drawdown ({metric})");
        assert_eq!(deepest, metric, "{extra:?}: the panel's deepest point");
        let w = s["bucket_seconds"].as_i64().expect("bucket_seconds");
        assert!(w >= 60, "{w}");
        assert_eq!(dd.len(), s["time"].as_array().unwrap().len());
    }
}
