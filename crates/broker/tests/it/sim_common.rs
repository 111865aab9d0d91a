//! Helpers shared by the simulated broker's tests: real bars, instants, order requests, a stream reader.

use std::str::FromStr;

use chrono::NaiveDate;
use vectura_broker::sim::{SimBroker, SimConfig};
use vectura_broker::{
    Decimal, OrderRequest, OrderType, Side, StreamEvent, TimeInForce, TradeEvent, TradeUpdates,
};
use vectura_core::calendar::{self, SessionPart};
use vectura_core::{Bar, BarSeries};
use vectura_data::{load_csv_path, LoadOptions};

/// The bundled SPY minute bars of one month (`"01"` or `"03"`), regular session only, as
/// `vectura backtest` trades them by default.
pub fn spy_month(month: &str) -> BarSeries {
    let path = format!(
        "{}/../../data/bundled/SPY_1min_2011-{month}.csv.gz",
        env!("CARGO_MANIFEST_DIR")
    );
    let l = load_csv_path(std::path::Path::new(&path), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let s = l.series;
    s.filter(|i| calendar::classify(s.ts[i]) == SessionPart::Regular)
}

/// Both bundled months, January then March.
pub fn spy_both() -> BarSeries {
    let (a, b) = (spy_month("01"), spy_month("03"));
    let mut s = a.clone();
    for i in 0..b.len() {
        s.push(b.get(i)).unwrap();
    }
    s
}

/// The bars of one New York date.
pub fn session_of(s: &BarSeries, date: NaiveDate) -> BarSeries {
    s.filter(|i| calendar::ny_date(s.ts[i]) == date)
}

/// A New York wall-clock instant (from 04:00 on) as Unix seconds: 09:30 of that date, as the calendar
/// gives it, shifted (New York changes its offset at 02:00, so the day's offset holds).
pub fn ny(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    calendar::session_open_ts(date(y, m, d)) + ((h as i64 * 60 + min as i64) - 570) * 60
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// A bar at `ts` with every price `p` (open `o`, close `p`).
pub fn bar(ts: i64, o: f64, p: f64) -> Bar {
    Bar {
        ts,
        open: o,
        high: o.max(p),
        low: o.min(p),
        close: p,
        volume: 100.0,
        vwap: None,
        trade_count: None,
    }
}

/// A market day order.
pub fn market(cid: &str, side: Side, qty: &str) -> OrderRequest {
    OrderRequest {
        client_order_id: cid.into(),
        symbol: "SPY".into(),
        side,
        qty: d(qty),
        order_type: OrderType::Market,
        time_in_force: TimeInForce::Day,
        extended_hours: false,
    }
}

/// A simulated account with `cash` dollars and the defaults.
pub fn sim(cash: &str) -> SimBroker {
    SimBroker::new(SimConfig::new(d(cash))).unwrap()
}

/// Minute bars from 2011-01-03 09:30 New York time, one per price (open = previous close).
pub fn minutes(prices: &[f64]) -> Vec<Bar> {
    let t0 = ny(2011, 1, 3, 9, 30);
    let mut prev = prices[0];
    prices
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let b = bar(t0 + 60 * i as i64, prev, p);
            prev = p;
            b
        })
        .collect()
}

/// Every message waiting on a stream.
pub fn drain(u: &mut TradeUpdates) -> Vec<StreamEvent> {
    let mut out = vec![];
    while let Some(m) = u.try_next() {
        out.push(m);
    }
    out
}

/// The order events among stream messages.
pub fn events(msgs: &[StreamEvent]) -> Vec<TradeEvent> {
    msgs.iter()
        .filter_map(|m| match m {
            StreamEvent::Event(e) => Some((**e).clone()),
            _ => None,
        })
        .collect()
}

/// The decimal as f64 (through its text, correctly rounded).
pub fn f(x: Decimal) -> f64 {
    x.to_string().parse().unwrap()
}
