//! The trading API's JSON, as Alpaca sends it: money and quantities as decimal strings, times in
//! RFC 3339 with microseconds, `null` for what does not apply.

use chrono::{DateTime, NaiveDate, TimeZone};
use chrono_tz::America::New_York;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use vectura_core::calendar::Session;

use super::{Account, Fill, Kind, Order, Pos, Side};
use crate::clock::{rfc3339_micros, Micros, SECOND};

/// A decimal as Alpaca writes it: no trailing zeros, `0` for zero.
pub(crate) fn dec(d: Decimal) -> String {
    if d.is_zero() {
        return "0".into();
    }
    d.normalize().to_string()
}

/// An f64 price as the exact decimal of its shortest text (43.58 stays 43.58).
pub(crate) fn dec_f64(x: f64) -> Decimal {
    format!("{x}")
        .parse()
        .ok()
        .or_else(|| Decimal::from_f64_retain(x))
        .unwrap_or_default()
}

/// A ratio written with at most 6 decimals (percent changes).
fn ratio(num: Decimal, den: Decimal) -> String {
    if den.is_zero() {
        return "0".into();
    }
    dec((num / den).round_dp(6))
}

fn opt_time(t: Option<Micros>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339_micros(t)))
}

fn side(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// An instant in New York time (`2025-06-24T09:30:00-04:00`), as the clock endpoint writes it.
pub(crate) fn ny_time(t: Micros) -> String {
    match DateTime::from_timestamp_micros(t) {
        Some(d) => New_York
            .from_utc_datetime(&d.naive_utc())
            .format("%Y-%m-%dT%H:%M:%S%.6f%:z")
            .to_string(),
        None => String::new(),
    }
}

/// New York wall time `HH:MM` of a Unix-seconds instant.
fn ny_hm(ts: i64, fmt: &str) -> String {
    match DateTime::from_timestamp(ts, 0) {
        Some(d) => New_York
            .from_utc_datetime(&d.naive_utc())
            .format(fmt)
            .to_string(),
        None => String::new(),
    }
}

/// An order (`Order` in trading-api.json).
pub(crate) fn order(o: &Order) -> Value {
    let (ty, limit) = match o.kind {
        Kind::Market => ("market", Value::Null),
        Kind::Limit(p) => ("limit", Value::String(dec(p))),
    };
    let avg = if o.filled_qty.is_zero() {
        Value::Null
    } else {
        Value::String(dec((o.filled_value / o.filled_qty).round_dp(9)))
    };
    json!({
        "id": o.id,
        "client_order_id": o.client_order_id,
        "created_at": rfc3339_micros(o.created_at),
        "updated_at": rfc3339_micros(o.updated_at),
        "submitted_at": rfc3339_micros(o.submitted_at),
        "filled_at": opt_time(o.filled_at),
        "expired_at": opt_time(o.expired_at),
        "expires_at": opt_time(o.expires_at),
        "canceled_at": opt_time(o.canceled_at),
        "failed_at": opt_time(o.failed_at),
        "replaced_at": null,
        "replaced_by": null,
        "replaces": null,
        "asset_id": o.asset_id,
        "symbol": o.symbol,
        "asset_class": "us_equity",
        "notional": o.notional.map(dec),
        "qty": o.qty.map(dec),
        "filled_qty": dec(o.filled_qty),
        "filled_avg_price": avg,
        "order_class": "",
        "order_type": ty,
        "type": ty,
        "side": side(o.side),
        "position_intent": match o.side { Side::Buy => "buy_to_open", Side::Sell => "sell_to_close" },
        "time_in_force": o.tif,
        "limit_price": limit,
        "stop_price": null,
        "status": o.status,
        "extended_hours": o.extended_hours,
        "legs": null,
        "trail_percent": null,
        "trail_price": null,
        "hwm": null,
    })
}

/// A deterministic asset id for a symbol (UUID-shaped).
pub(crate) fn asset_id(symbol: &str) -> String {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in symbol.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
    }
    let mut r = crate::synth::SplitMix(h);
    r.uuid()
}

/// A position (`Position`), marked at `price` (the last close) with `lastday` (the previous
/// session's last close).
pub(crate) fn position(
    symbol: &str,
    p: &Pos,
    held: Decimal,
    price: Decimal,
    lastday: Decimal,
) -> Value {
    let avg = if p.qty.is_zero() {
        Decimal::ZERO
    } else {
        (p.cost / p.qty).round_dp(9)
    };
    let value = p.qty * price;
    let pl = value - p.cost;
    let intraday = p.qty * (price - lastday);
    json!({
        "asset_id": asset_id(symbol),
        "symbol": symbol,
        "exchange": "NYSE",
        "asset_class": "us_equity",
        "asset_marginable": true,
        "qty": dec(p.qty),
        "qty_available": dec(p.qty - held),
        "avg_entry_price": dec(avg),
        "side": "long",
        "market_value": dec(value),
        "cost_basis": dec(p.cost),
        "unrealized_pl": dec(pl),
        "unrealized_plpc": ratio(pl, p.cost),
        "unrealized_intraday_pl": dec(intraday),
        "unrealized_intraday_plpc": ratio(intraday, p.qty * lastday),
        "current_price": dec(price),
        "lastday_price": dec(lastday),
        "change_today": ratio(price - lastday, lastday),
    })
}

/// Figures of an account at one instant.
pub(crate) struct AccountFigures {
    pub cash: Decimal,
    pub buying_power: Decimal,
    pub long_value: Decimal,
    pub equity: Decimal,
    pub last_equity: Decimal,
}

/// The account (`Account`); the pattern-day-trader fields only with `pdt`.
pub(crate) fn account(a: &Account, f: &AccountFigures, now: Micros, pdt: bool) -> Value {
    let bp = dec(f.buying_power);
    let mut v = json!({
        "id": a.id,
        "account_number": a.number,
        "status": "ACTIVE",
        "crypto_status": "INACTIVE",
        "currency": "USD",
        "buying_power": bp,
        "regt_buying_power": bp,
        "non_marginable_buying_power": bp,
        "options_buying_power": bp,
        "cash": dec(f.cash),
        "accrued_fees": "0",
        "pending_transfer_in": "0",
        "pending_transfer_out": "0",
        "pending_reg_taf_fees": "0",
        "portfolio_value": dec(f.equity),
        "equity": dec(f.equity),
        "last_equity": dec(f.last_equity),
        "long_market_value": dec(f.long_value),
        "short_market_value": "0",
        "initial_margin": dec(f.long_value),
        "maintenance_margin": dec(f.long_value),
        "last_maintenance_margin": "0",
        "sma": "0",
        "multiplier": "1",
        "shorting_enabled": false,
        "trading_blocked": false,
        "transfers_blocked": false,
        "account_blocked": false,
        "trade_suspended_by_user": false,
        "created_at": rfc3339_micros(a.created_at),
        "balance_asof": DateTime::from_timestamp_micros(now - 86_400 * SECOND)
            .map(|d| d.date_naive().to_string())
            .unwrap_or_default(),
        "intraday_adjustments": "0",
        "options_approved_level": 0,
        "options_trading_level": 0,
    });
    if pdt {
        v["pattern_day_trader"] = json!(false);
        v["daytrade_count"] = json!(0);
        v["daytrading_buying_power"] = json!("0");
    }
    v
}

/// A `FILL` activity (`TradingActivities`), with the account id alpaca-py requires.
pub(crate) fn activity(f: &Fill, account_id: &str) -> Value {
    json!({
        "id": f.id,
        "account_id": account_id,
        "activity_type": "FILL",
        "transaction_time": rfc3339_micros(f.at),
        "type": if f.partial { "partial_fill" } else { "fill" },
        "price": dec(f.price),
        "qty": dec(f.qty),
        "side": side(f.side),
        "symbol": f.symbol,
        "leaves_qty": dec(f.leaves_qty),
        "order_id": f.order_id,
        "cum_qty": dec(f.cum_qty),
        "order_status": f.order_status,
    })
}

/// An activity id: the transaction time (UTC, to the millisecond) `::` the execution id.
pub(crate) fn activity_id(at: Micros, execution_id: &str) -> String {
    let stamp = DateTime::from_timestamp_micros(at)
        .map(|d| d.format("%Y%m%d%H%M%S%3f").to_string())
        .unwrap_or_default();
    format!("{stamp}::{execution_id}")
}

/// A `trade_updates` event's data.
pub(crate) fn trade_event(
    event: &str,
    o: &Order,
    at: Micros,
    execution_id: &str,
    fill: Option<(Decimal, Decimal)>,
    position_qty: Decimal,
) -> Value {
    let mut v = json!({
        "event": event,
        "execution_id": execution_id,
        "order": order(o),
        "timestamp": rfc3339_micros(at),
        "position_qty": dec(position_qty),
    });
    if let Some((qty, price)) = fill {
        v["qty"] = json!(dec(qty));
        v["price"] = json!(dec(price));
    }
    v
}

/// One calendar day (`legacy_calendar_day`).
pub(crate) fn calendar_day(s: &Session, settlement: NaiveDate) -> Value {
    json!({
        "date": s.date.to_string(),
        "open": ny_hm(s.open, "%H:%M"),
        "close": ny_hm(s.close, "%H:%M"),
        "session_open": ny_hm(s.pre_open(), "%H%M"),
        "session_close": ny_hm(s.post_close(), "%H%M"),
        "settlement_date": settlement.to_string(),
    })
}

/// An asset (`Assets`).
pub(crate) fn asset(symbol: &str) -> Value {
    json!({
        "id": asset_id(symbol),
        "class": "us_equity",
        "exchange": "NYSE",
        "symbol": symbol,
        "name": format!("{symbol} (emulated)"),
        "status": "active",
        "tradable": true,
        "marginable": true,
        "maintenance_margin_requirement": 30,
        "margin_requirement_long": "30",
        "margin_requirement_short": "100",
        "shortable": false,
        "easy_to_borrow": false,
        "fractionable": true,
        "attributes": ["fractional_eh_enabled"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_times_are_written_as_alpaca_writes_them() {
        assert_eq!(dec("12.50".parse().unwrap()), "12.5");
        assert_eq!(dec("-0.000".parse().unwrap()), "0");
        assert_eq!(dec_f64(43.58).to_string(), "43.58");
        assert_eq!(dec_f64(0.1 + 0.2).to_string(), "0.30000000000000004");
        // 2024-07-01 13:30Z is 09:30 EDT; 2024-01-02 14:30Z is 09:30 EST.
        assert_eq!(
            ny_time(1_719_840_600_000_000),
            "2024-07-01T09:30:00.000000-04:00"
        );
        assert_eq!(
            ny_time(1_704_205_800_000_000),
            "2024-01-02T09:30:00.000000-05:00"
        );
        assert_eq!(
            activity_id(1_643_828_109_981_482, "x"),
            "20220202185509981::x"
        );
        assert_eq!(asset_id("SPY"), asset_id("SPY"));
        assert_ne!(asset_id("SPY"), asset_id("QQQ"));
    }
}
