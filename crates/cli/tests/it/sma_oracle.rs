//! The SMA 10/20 cross against backtesting.py's trade list (`data/oracles/sma`): long only, all-in whole
//! shares, 10 000 USD, no commission, next-open fills, on its bundled GOOG daily bars. Trade by trade:
//! entry and exit dates, prices, sizes and PnL.

use crate::common::{secs, vectura};
use serde_json::Value;
use std::path::PathBuf;

fn data(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(rel)
        .display()
        .to_string()
}

/// One round trip of backtesting.py's `stats._trades`.
#[derive(Debug)]
struct OracleTrade {
    size: f64,
    entry_price: f64,
    exit_price: f64,
    pnl: f64,
    entry: String,
    exit: String,
}

fn oracle() -> Vec<OracleTrade> {
    let text = std::fs::read_to_string(data(
        "oracles/sma/GOOG_sma10_20_next_open_backtestingpy.csv",
    ))
    .expect("the SMA oracle is in the repository");
    let mut lines = text.lines();
    // The header's later columns are quoted and hold commas; the ones read here come before them.
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (size, ep, xp, pnl, et, xt) = (
        col("Size"),
        col("EntryPrice"),
        col("ExitPrice"),
        col("PnL"),
        col("EntryTime"),
        col("ExitTime"),
    );
    lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            let num = |i: usize| c[i].parse::<f64>().unwrap();
            OracleTrade {
                size: num(size),
                entry_price: num(ep),
                exit_price: num(xp),
                pnl: num(pnl),
                entry: c[et].to_string(),
                exit: c[xt].to_string(),
            }
        })
        .collect()
}

/// The New York date of an RFC 3339 time (daily bars are stamped at the 09:30 open).
fn ny_date(t: &Value) -> String {
    vectura_core::calendar::ny_date(secs(t.as_str().unwrap())).to_string()
}

#[test]
fn sma_cross_trades_match_backtesting_py_trade_by_trade() {
    let bars = data("fixtures/daily/GOOG_2004_2013_backtestingpy.csv");
    let out = vectura(&[
        "backtest",
        "--strategy",
        "sma-cross",
        "--fast",
        "10",
        "--slow",
        "20",
        "--fill",
        "next-open",
        "--data",
        &bars,
        "--contribution-frequency-days",
        "0",
        "--start-capital",
        "10000",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    let want = oracle();
    assert_eq!(want.len(), 47, "the oracle's 47 round trips");
    let trades = r["trades"].as_array().unwrap();
    // Every round trip but the last closed by a cross; the last one is still open at the end (the
    // oracle closes it on the final bar).
    assert_eq!(trades.len(), 2 * want.len() - 1, "buys and sells");
    for (k, w) in want.iter().enumerate() {
        let buy = &trades[2 * k];
        assert_eq!(buy["side"], "buy", "trade {k}");
        assert_eq!(ny_date(&buy["time"]), w.entry, "trade {k} entry date");
        assert_eq!(f(&buy["price"]), w.entry_price, "trade {k} entry price");
        assert_eq!(f(&buy["shares"]), w.size, "trade {k} size");
        if k + 1 < want.len() {
            let sell = &trades[2 * k + 1];
            assert_eq!(sell["side"], "sell", "trade {k}");
            assert_eq!(ny_date(&sell["time"]), w.exit, "trade {k} exit date");
            assert_eq!(f(&sell["price"]), w.exit_price, "trade {k} exit price");
            assert_eq!(f(&sell["shares"]), w.size, "trade {k} exit size");
            assert_eq!(sell["closes_trade"], 2 * k, "trade {k} closes its buy");
            assert!(
                (f(&sell["pnl"]) - w.pnl).abs() < 1e-6,
                "trade {k} PnL {} vs {}",
                sell["pnl"],
                w.pnl
            );
        }
    }
    // The last round trip: its buy is the one open lot, and the oracle closed it on the last bar.
    let last = want.last().unwrap();
    let lots = r["open_lots"].as_array().unwrap();
    assert_eq!(lots.len(), 1);
    assert_eq!(lots[0]["trade"], 2 * (want.len() - 1));
    assert_eq!(f(&lots[0]["shares"]), last.size);
    assert_eq!(f(&lots[0]["price"]), last.entry_price);
    assert_eq!(r["end_date"], last.exit.as_str());
    // backtesting.py's final equity marks that position at the last close: 75 645.99.
    assert!(
        (f(&r["final_equity"]) - 75_645.99).abs() < 0.005,
        "{}",
        r["final_equity"]
    );
    let closed: f64 = want[..want.len() - 1].iter().map(|t| t.pnl).sum();
    let cash = 10_000.0 + closed - last.size * last.entry_price;
    assert!(
        (f(&r["final_cash"]) - cash).abs() < 1e-6,
        "{}",
        r["final_cash"]
    );
}
