//! `vectura backtest --json` on the bundled data: the headline figures, recomputed independently from the
//! JSON's own trade list and deposits.

use crate::common::{secs, vectura};
use serde_json::Value;

fn recompute(extra: &[&str]) {
    let mut args = vec!["backtest", "--json"];
    args.extend_from_slice(extra);
    let out = vectura(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
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
