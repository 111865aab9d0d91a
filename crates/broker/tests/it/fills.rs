//! `Execution::to_fill`: the broker's execution as the strategy's fill, with the broker's ids carried
//! (so a fill seen twice is applied once), the side and price as sent, and quantities converted
//! without drift.

use chrono::{TimeZone, Utc};
use vectura_broker::{Decimal, Execution, Side};
use vectura_core::IntentId;

fn exec(side: Side, qty: &str, price: &str, leaves: &str) -> Execution {
    Execution {
        id: "20240701133500000::8c2e6a3f-6e1b-4b8e-9f0a-1d2c3b4a5e6f".into(),
        order_id: "61e69015-8549-4bfd-b9c3-01e75843f47d".into(),
        symbol: "SPY".into(),
        side,
        qty: qty.parse().unwrap(),
        price: price.parse().unwrap(),
        cum_qty: qty.parse().unwrap(),
        leaves_qty: leaves.parse().unwrap(),
        time: Utc.with_ymd_and_hms(2024, 7, 1, 13, 35, 0).unwrap(),
    }
}

#[test]
fn the_brokers_ids_side_price_time_and_commission_are_carried() {
    let e = exec(Side::Sell, "3", "541.27", "0");
    let f = e.to_fill(IntentId(42), 0.25);
    assert_eq!(f.order_id, "61e69015-8549-4bfd-b9c3-01e75843f47d");
    assert_eq!(
        f.execution_id,
        "20240701133500000::8c2e6a3f-6e1b-4b8e-9f0a-1d2c3b4a5e6f"
    );
    assert_eq!(f.fill.intent, IntentId(42));
    assert_eq!(f.fill.side, Side::Sell);
    assert_eq!(f.fill.qty, 3.0);
    assert_eq!(f.fill.price, 541.27);
    assert_eq!(f.fill.commission, 0.25);
    assert_eq!(f.fill.ts, 1_719_840_900);
    assert!(f.fill.done, "nothing left working ends the intent");
    let b = exec(Side::Buy, "3", "541.27", "0").to_fill(IntentId(43), 0.0);
    assert_eq!(b.fill.side, Side::Buy);
    assert_eq!(b.fill.intent, IntentId(43));
}

#[test]
fn a_partial_fill_leaves_the_intent_open() {
    let f = exec(Side::Buy, "0.5", "100", "1.5").to_fill(IntentId(1), 0.0);
    assert!(!f.fill.done, "1.5 shares still working");
    assert_eq!(f.fill.qty, 0.5);
    // A remainder of 0.000000001 share (Alpaca's finest) still keeps the intent open.
    let g = exec(Side::Buy, "0.999999999", "100", "0.000000001").to_fill(IntentId(1), 0.0);
    assert!(!g.fill.done);
    // "0.000" is zero however it is written.
    let h = exec(Side::Buy, "1", "100", "0.000").to_fill(IntentId(1), 0.0);
    assert!(h.fill.done);
}

/// Alpaca sends decimal strings with up to 9 decimals for quantities; the fill's f64 must be the
/// double nearest to that decimal (what parsing the same string gives), never one a step away,
/// for every scale and magnitude: drift there would make the strategy's books disagree with the
/// broker's.
#[test]
fn decimal_quantities_and_prices_become_the_nearest_double() {
    let mut state = 0x5eed_u64;
    let mut next = || {
        // SplitMix64: a fixed sequence of cases.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut checked = 0;
    for _ in 0..20_000 {
        let scale = (next() % 10) as u32;
        let digits = 1 + next() % 15;
        let mantissa = next() % 10u64.pow(digits as u32);
        let d = Decimal::from_i128_with_scale(mantissa as i128, scale);
        let text = d.to_string();
        let want: f64 = text.parse().unwrap();
        let f = exec(Side::Buy, &text, &text, "0").to_fill(IntentId(7), 0.0);
        assert_eq!(f.fill.qty.to_bits(), want.to_bits(), "qty {text}");
        assert_eq!(f.fill.price.to_bits(), want.to_bits(), "price {text}");
        checked += 1;
    }
    assert_eq!(checked, 20_000);
    for (text, want) in [
        ("0.1", 0.1),
        ("0.123456789", 0.123456789),
        ("1.000000001", 1.000000001),
        ("12345.678901234", 12345.678901234),
        ("0.000000001", 1e-9),
        ("99999999.999999999", 99999999.999999999),
    ] {
        let f = exec(Side::Sell, text, text, "0").to_fill(IntentId(7), 0.0);
        assert_eq!(f.fill.qty, want, "qty {text}");
        assert_eq!(f.fill.price, want, "price {text}");
    }
}
