//! The differential test for `--compat vectura-v1`: the original engine's outputs on real INDA bars
//! (`data/oracles/golden`, on `data/fixtures/INDA_1min_2023-07-10_to_2025-07-07.csv.gz`), reproduced bit
//! for bit through the CLI as the golden README drives them.

use crate::common::{secs, vectura};
use serde_json::Value;
use std::path::PathBuf;

/// The repository's `data/` folder.
fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn check_case(case: &str) {
    let oracle = data().join(format!("oracles/golden/INDA_{case}.json"));
    let g: Value = serde_json::from_str(
        &std::fs::read_to_string(&oracle).unwrap_or_else(|e| panic!("{}: {e}", oracle.display())),
    )
    .unwrap();
    let data = data().join("fixtures/INDA_1min_2023-07-10_to_2025-07-07.csv.gz");
    assert!(data.is_file(), "{} is missing", data.display());
    let p = &g["params"];
    let mut args: Vec<String> = vec![
        "backtest".into(),
        "--session".into(),
        "all".into(),
        "--fill".into(),
        "close".into(),
        "--compat".into(),
        "vectura-v1".into(),
        "--json".into(),
        "--data".into(),
        data.display().to_string(),
        "--start-date".into(),
        g["start_date"].as_str().unwrap().into(),
        "--end-date".into(),
        g["end_date"].as_str().unwrap().into(),
    ];
    for k in [
        "start_capital",
        "capital_pct",
        "buy_below_pct",
        "sell_above_pct",
        "buy_after_sell_pct",
        "cash_floor",
        "order_gap_pct",
        "contribution_frequency_days",
        "contribution_amount",
    ] {
        args.push(format!("--{}", k.replace('_', "-")));
        args.push(p[k].to_string());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = vectura(&argv);
    assert!(
        out.status.success(),
        "case {case}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();

    // Trades: time, side, shares, price and the closed lot, exactly.
    let (rt, gt) = (
        r["trades"].as_array().unwrap(),
        g["trades"].as_array().unwrap(),
    );
    assert_eq!(rt.len(), gt.len(), "case {case}: trade count");
    for (i, (a, b)) in rt.iter().zip(gt).enumerate() {
        assert_eq!(
            secs(a["time"].as_str().unwrap()),
            secs(b["time"].as_str().unwrap()),
            "case {case} trade {i} time"
        );
        assert_eq!(a["side"], b["type"], "case {case} trade {i} side");
        assert_eq!(
            f(&a["shares"]),
            f(&b["shares"]),
            "case {case} trade {i} shares"
        );
        assert_eq!(
            f(&a["price"]),
            f(&b["price"]),
            "case {case} trade {i} price"
        );
        assert_eq!(
            a.get("closes_trade"),
            b.get("closes_trade"),
            "case {case} trade {i} lot"
        );
    }
    // Deposits.
    let (rc, gc) = (
        r["contributions"].as_array().unwrap(),
        g["contributions"].as_array().unwrap(),
    );
    assert_eq!(rc.len(), gc.len(), "case {case}: deposits");
    for (a, b) in rc.iter().zip(gc) {
        assert_eq!(
            secs(a["time"].as_str().unwrap()),
            secs(b["time"].as_str().unwrap())
        );
        assert_eq!(f(&a["amount"]), f(&b["amount"]));
    }
    // Final state: cash, equity, lots, triggers in store order.
    let fin = &g["final"];
    assert_eq!(f(&r["final_cash"]), f(&fin["cash"]), "case {case}: cash");
    assert_eq!(
        f(&r["final_equity"]),
        f(&fin["equity"]),
        "case {case}: equity"
    );
    assert_eq!(
        f(&r["final_equity_post_trade"]),
        f(&fin["equity_post_trade_last_close"]),
        "case {case}"
    );
    assert_eq!(
        f(&r["max_equity_state"]),
        f(&fin["max_equity_state"]),
        "case {case}: capital.max"
    );
    let lots: Vec<(u64, f64, f64)> = r["open_lots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["trade"].as_u64().unwrap(),
                f(&l["price"]),
                f(&l["shares"]),
            )
        })
        .collect();
    let glots: Vec<(u64, f64, f64)> = fin["open_lots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["trade"].as_u64().unwrap(),
                f(&l["price"]),
                f(&l["shares"]),
            )
        })
        .collect();
    assert_eq!(lots, glots, "case {case}: open lots");
    let buys: Vec<(f64, String)> = r["state"]["buy_triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (f(&t["price"]), t["dir"].as_str().unwrap().to_string()))
        .collect();
    let gbuys: Vec<(f64, String)> = fin["buy_triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                f(&t["at_price"]),
                t["direction"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(buys, gbuys, "case {case}: buy triggers");
    // Sell triggers: the lot is named by the buy's intent; map it to its trade index through the history.
    let hist: Vec<u64> = r["state"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["intent"].as_u64().unwrap())
        .collect();
    let sells: Vec<(f64, f64, usize)> = r["state"]["sell_triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let lot = t["lot"].as_u64().unwrap();
            (
                f(&t["price"]),
                f(&t["shares"]),
                hist.iter().position(|&h| h == lot).unwrap(),
            )
        })
        .collect();
    let gsells: Vec<(f64, f64, usize)> = fin["sell_triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                f(&t["at_price"]),
                f(&t["shares"]),
                t["lot"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    assert_eq!(sells, gsells, "case {case}: sell triggers");
    // The result record and every metric.
    let res = &g["result"];
    assert_eq!(
        r["bars_processed"].as_u64(),
        g["bars_processed"].as_u64(),
        "case {case}: bars"
    );
    assert_eq!(
        f(&r["invested_cash"]),
        f(&res["investedCash"]),
        "case {case}"
    );
    let m = &r["metrics"];
    let gm = &res["metrics"];
    for (ours, theirs) in [
        ("total_return", &res["totalReturn"]),
        ("total_return_pct", &res["totalReturnPercent"]),
        (
            "average_invested_capital_pct",
            &gm["averageInvestedCapitalPct"],
        ),
        ("maximum_equity", &gm["maximumEquity"]),
        ("maximum_drawdown_pct", &gm["maximumDrawdownPct"]),
        ("maximum_drawdown_dollar", &gm["maximumDrawdownDollar"]),
        ("longest_drawdown_days", &gm["longestDrawdownDurationDays"]),
        ("total_trades", &gm["totalTradesExecuted"]),
        ("average_trades_per_month", &gm["averageTradesPerMonth"]),
        ("best_month_return_pct", &gm["bestMonthReturnPct"]),
        ("worst_month_return_pct", &gm["worstMonthReturnPct"]),
        ("return_max_drawdown_ratio", &gm["returnMaxDrawdownRatio"]),
        (
            "buy_hold_dollar_difference",
            &gm["buyHoldComparison"]["dollarDifference"],
        ),
        (
            "buy_hold_percentage_difference",
            &gm["buyHoldComparison"]["percentageDifference"],
        ),
    ] {
        assert_eq!(f(&m[ours]), f(theirs), "case {case}: {ours}");
    }
}

#[test]
fn golden_inda_a_defaults() {
    check_case("a");
}

#[test]
fn golden_inda_b_active_with_deposits() {
    check_case("b");
}

#[test]
fn golden_inda_c_joining_off() {
    check_case("c");
}

#[test]
fn golden_inda_d_active_no_deposits() {
    check_case("d");
}
