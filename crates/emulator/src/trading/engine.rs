//! The trading engine: submission checks, fills at the next bar's open, partial fills, cancels,
//! expiry, and the bar publications of the market-data stream, all processed in emulator-time order.
//!
//! A market order fills at the open of the first bar starting at or after the minute it arrived in
//! (regular session bars only, unless `extended_hours`): an order sent when a bar closes arrives a few
//! milliseconds into the next minute and gets that minute's open, as the backtest's `next-open` model
//! fills it. The fill happens at `max(arrival, bar start)`. A limit order fills in the first such bar
//! whose range reaches its price: at the open when the bar opened beyond it, else at the limit. With
//! partial fills, each later part fills at the close of the next bar, at that bar's open.

use std::collections::BTreeSet;
use std::time::Duration;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Value};
use vectura_core::calendar::{next_session, ny_date, session};

use super::bars::BarSource;
use super::wire::{self, dec, dec_f64};
use super::{Account, Fill, Kind, Order, Pos, Side, StreamOut, Trading};
use crate::clock::{Micros, SECOND};
use crate::synth::EmuBar;
use crate::Inner;

/// Alpaca's largest number of decimals for a quantity.
const QTY_DP: u32 = 9;

/// A refused request: status and body.
pub(crate) type Refusal = (u16, Value);

pub(crate) fn refusal(status: u16, code: i64, message: impl Into<String>) -> Refusal {
    (status, json!({ "code": code, "message": message.into() }))
}

fn invalid(message: impl Into<String>) -> Refusal {
    refusal(422, 40010001, message)
}

fn floor_dp(d: Decimal, dp: u32) -> Decimal {
    d.round_dp_with_strategy(dp, RoundingStrategy::ToZero)
}

/// Splits `inner` into the bar source and the trading state.
pub(crate) fn parts(inner: &mut Inner) -> (BarSource<'_>, &mut Trading) {
    let Inner {
        seed,
        csv,
        splits,
        extended_hours,
        day_cache,
        trading,
        ..
    } = inner;
    (
        BarSource {
            seed: *seed,
            csv,
            splits,
            extended: *extended_hours,
            cache: day_cache,
        },
        trading,
    )
}

/// Whether `symbol` can be traded.
pub(crate) fn tradable(inner: &Inner, symbol: &str) -> bool {
    if let Some(set) = &inner.trading.cfg.symbols {
        return set.contains(symbol);
    }
    if inner.csv.contains_key(symbol) {
        return true;
    }
    inner.trading.cfg.replay.is_empty() && crate::alpaca::valid_symbol(symbol)
}

/// The symbols the emulator lists as assets.
pub(crate) fn listed_symbols(inner: &Inner) -> BTreeSet<String> {
    if let Some(set) = &inner.trading.cfg.symbols {
        return set.clone();
    }
    let mut s: BTreeSet<String> = inner.csv.keys().cloned().collect();
    if inner.trading.cfg.replay.is_empty() {
        for sym in ["AAPL", "INDA", "IWM", "MSFT", "QQQ", "SPY", "TQQQ"] {
            s.insert(sym.to_string());
        }
    }
    s
}

/// Brings the engine up to the clock's now.
pub(crate) fn sync(inner: &mut Inner) {
    let now = inner.clock.now();
    process(inner, now);
}

/// The close of the first regular session ending after `t`.
fn next_close_after(t: Micros) -> Option<Micros> {
    let d = ny_date(t.div_euclid(SECOND));
    match session(d) {
        Some(s) if s.close * SECOND > t => Some(s.close * SECOND),
        _ => next_session(d).map(|s| s.close * SECOND),
    }
}

/// When an order created at `arrival` expires (`day`: its session's close, or 20:00 ET with
/// `extended_hours`; `gtc`: after 90 days).
fn expiry(arrival: Micros, tif: &str, extended: bool) -> Option<Micros> {
    if tif == "gtc" {
        return Some(arrival + 90 * 86_400 * SECOND);
    }
    let secs = arrival.div_euclid(SECOND);
    let end = |s: &vectura_core::calendar::Session| if extended { s.post_close() } else { s.close };
    let d = ny_date(secs);
    let s = match session(d) {
        Some(s) if end(&s) > secs => s,
        _ => next_session(d)?,
    };
    Some(end(&s) * SECOND)
}

/// The next fill of an open order no later than `target`: (time, bar, price).
fn due(src: &BarSource, o: &mut Order, target: Micros) -> Option<(Micros, EmuBar, Decimal)> {
    if !o.is_open() || o.hold {
        return None;
    }
    let eff = o.arrival.max(o.cursor);
    let mut from = eff.div_euclid(SECOND).div_euclid(60) * 60;
    let regular_only = !o.extended_hours;
    // A later part of a partial fill happens as its bar closes (one part per bar).
    let later = !o.filled_qty.is_zero();
    loop {
        let b = src.at_or_after(&o.symbol, from, regular_only)?;
        let at = eff.max(if later {
            (b.t + 60) * SECOND
        } else {
            b.t * SECOND
        });
        if at > target {
            return None;
        }
        match o.kind {
            Kind::Market => return Some((at, b, dec_f64(b.o))),
            Kind::Limit(l) => {
                let (open, low, high) = (dec_f64(b.o), dec_f64(b.l), dec_f64(b.h));
                let hit = match o.side {
                    Side::Buy if open <= l => Some(open),
                    Side::Buy if low <= l => Some(l),
                    Side::Sell if open >= l => Some(open),
                    Side::Sell if high >= l => Some(l),
                    _ => None,
                };
                if let Some(p) = hit {
                    return Some((at, b, p));
                }
                // This bar cannot fill it, now or later: skip it for good.
                from = b.t + 60;
                o.cursor = o.cursor.max(from * SECOND);
            }
        }
    }
}

/// Figures of an account at `now`.
pub(crate) fn figures(src: &BarSource, a: &Account, now: Micros) -> wire::AccountFigures {
    let secs = now.div_euclid(SECOND);
    let mut long_value = Decimal::ZERO;
    for (sym, p) in &a.positions {
        long_value += p.qty * mark(src, sym, p, secs);
    }
    let reserved: Decimal = a.orders.iter().map(Order::reserved).sum();
    wire::AccountFigures {
        cash: a.cash,
        buying_power: (a.cash - reserved).max(Decimal::ZERO),
        long_value,
        equity: a.cash + long_value,
        last_equity: a.last_equity,
    }
}

/// The price a position is marked at: its symbol's last close, or its entry price before any bar.
pub(crate) fn mark(src: &BarSource, sym: &str, p: &Pos, secs: i64) -> Decimal {
    match src.last_closed(sym, secs) {
        Some(b) => dec_f64(b.c),
        None if !p.qty.is_zero() => p.cost / p.qty,
        None => Decimal::ZERO,
    }
}

/// The close of the previous session's last bar (a position's `lastday_price`).
pub(crate) fn lastday(src: &BarSource, sym: &str, p: &Pos, secs: i64) -> Decimal {
    let d = ny_date(secs);
    let prev_close = match session(d) {
        Some(s) if s.open <= secs => {
            vectura_core::calendar::prev_session(d).map(|s| s.post_close())
        }
        _ => vectura_core::calendar::prev_session(d).map(|s| s.post_close()),
    };
    match prev_close {
        Some(t) => mark(src, sym, p, t.min(secs)),
        None => mark(src, sym, p, secs),
    }
}

/// Shares of `symbol` held for open sell orders.
pub(crate) fn held_for_sells(a: &Account, symbol: &str) -> Decimal {
    a.orders
        .iter()
        .filter(|o| o.is_open() && o.side == Side::Sell && o.symbol == symbol)
        .map(|o| o.remaining().unwrap_or(Decimal::ZERO))
        .sum()
}

/// Processes every event (bar closes, fills, expiries, session closes) up to `target`, in time order.
pub(crate) fn process(inner: &mut Inner, target: Micros) {
    let (src, t) = parts(inner);
    loop {
        let mut next = Micros::MAX;
        let subscribed: BTreeSet<String> = t
            .md_conns
            .iter()
            .flat_map(|c| c.bars.iter().cloned())
            .collect();
        let mut closes: Vec<(String, EmuBar)> = Vec::new();
        for sym in &subscribed {
            let cursor = *t.md_cursor.get(sym).unwrap_or(&t.processed);
            if let Some(b) = src.at_or_after(sym, cursor.div_euclid(SECOND) - 59, false) {
                let at = (b.t + 60) * SECOND;
                if at < next {
                    next = at;
                    closes.clear();
                }
                if at == next {
                    closes.push((sym.clone(), b));
                }
            }
        }
        let session_close = next_close_after(t.processed);
        if let Some(c) = session_close {
            next = next.min(c);
        }
        for a in t.accounts.values_mut() {
            for o in a.orders.iter_mut().filter(|o| o.is_open()) {
                if let Some(e) = o.expires_at {
                    next = next.min(e);
                }
                if let Some((at, _, _)) = due(&src, o, target.min(next)) {
                    next = next.min(at);
                }
            }
        }
        if next > target {
            break;
        }
        let at = next.max(t.processed);
        if closes
            .first()
            .is_some_and(|(_, b)| (b.t + 60) * SECOND == next)
        {
            publish(t, &closes, at);
        }
        for a in t.accounts.values_mut() {
            for i in 0..a.orders.len() {
                if !a.orders[i].is_open() {
                    continue;
                }
                if a.orders[i].expires_at.is_some_and(|e| e <= at) {
                    end_order(a, i, "expired", at, &mut t.rng);
                    continue;
                }
                if let Some((due_at, bar, price)) = due(&src, &mut a.orders[i], at) {
                    if due_at <= at {
                        fill_part(a, i, &bar, price, at, &mut t.rng);
                    }
                }
            }
        }
        if session_close == Some(next) {
            for a in t.accounts.values_mut() {
                a.last_equity = figures(&src, a, next).equity;
            }
        }
        t.processed = at;
    }
    t.processed = t.processed.max(target);
}

/// Sends bars that closed at `at` to the market-data connections subscribed to them.
fn publish(t: &mut Trading, closes: &[(String, EmuBar)], at: Micros) {
    for (sym, _) in closes {
        t.md_cursor.insert(sym.clone(), at);
    }
    for c in &t.md_conns {
        let msgs: Vec<Value> = closes
            .iter()
            .filter(|(s, _)| c.bars.contains(s))
            .map(|(s, b)| {
                let mut b = *b;
                if !c.sip {
                    crate::synth::to_iex(std::slice::from_mut(&mut b));
                }
                bar_msg(s, &b)
            })
            .collect();
        if !msgs.is_empty() {
            let _ = c.tx.send(StreamOut::Json(Value::Array(msgs)));
        }
    }
}

/// A bar message of the market-data stream.
pub(crate) fn bar_msg(symbol: &str, b: &EmuBar) -> Value {
    json!({
        "T": "b",
        "S": symbol,
        "o": b.o,
        "h": b.h,
        "l": b.l,
        "c": b.c,
        "v": b.v,
        "t": vectura_core::time::rfc3339(b.t),
        "n": b.n,
        "vw": b.vw,
    })
}

fn position_qty(a: &Account, sym: &str) -> Decimal {
    a.positions.get(sym).map_or(Decimal::ZERO, |p| p.qty)
}

/// Ends an open order (`canceled`, `expired`, `rejected`) and emits the event.
pub(crate) fn end_order(
    a: &mut Account,
    i: usize,
    status: &'static str,
    at: Micros,
    rng: &mut crate::synth::SplitMix,
) {
    let held = position_qty(a, &a.orders[i].symbol);
    let o = &mut a.orders[i];
    o.status = status;
    o.updated_at = at;
    match status {
        "canceled" => o.canceled_at = Some(at),
        "expired" => o.expired_at = Some(at),
        _ => o.failed_at = Some(at),
    }
    let ev = wire::trade_event(status, o, at, &rng.uuid(), None, held);
    a.emit(ev);
}

/// Fills the next part of order `i` at `price` (bar `bar`).
fn fill_part(
    a: &mut Account,
    i: usize,
    bar: &EmuBar,
    price: Decimal,
    at: Micros,
    rng: &mut crate::synth::SplitMix,
) {
    if a.orders[i].reject_when_due {
        end_order(a, i, "rejected", at, rng);
        return;
    }
    let o = &a.orders[i];
    let parts = o.parts_left.max(1);
    let whole = |d: Decimal| d.fract().is_zero();
    let part = match (o.qty, o.notional) {
        (Some(q), _) => {
            let left = q - o.filled_qty;
            if parts > 1 {
                let each = left / Decimal::from(parts);
                let each = if whole(q) && left >= Decimal::from(parts) {
                    each.floor()
                } else {
                    floor_dp(each, QTY_DP)
                };
                if each.is_zero() {
                    left
                } else {
                    each
                }
            } else {
                left
            }
        }
        (None, Some(n)) => {
            let left = (n - o.filled_value).max(Decimal::ZERO) / Decimal::from(parts);
            floor_dp(left / price, QTY_DP)
        }
        (None, None) => Decimal::ZERO,
    };
    // A sell never takes more than is held (a position closed behind the order's back).
    let part = match o.side {
        Side::Sell => part.min(position_qty(a, &o.symbol)),
        Side::Buy => part,
    };
    if part <= Decimal::ZERO {
        end_order(a, i, "canceled", at, rng);
        return;
    }
    let sym = o.symbol.clone();
    let side = o.side;
    let value = part * price;
    match side {
        Side::Buy => {
            a.cash -= value;
            let p = a.positions.entry(sym.clone()).or_default();
            p.qty += part;
            p.cost += value;
        }
        Side::Sell => {
            a.cash += value;
            if let Some(p) = a.positions.get_mut(&sym) {
                let avg = if p.qty.is_zero() {
                    Decimal::ZERO
                } else {
                    p.cost / p.qty
                };
                p.qty -= part;
                p.cost = if p.qty.is_zero() {
                    Decimal::ZERO
                } else {
                    p.cost - avg * part
                };
                if p.qty.is_zero() {
                    a.positions.remove(&sym);
                }
            }
        }
    }
    let o = &mut a.orders[i];
    o.filled_qty += part;
    o.filled_value += value;
    o.parts_left = parts.saturating_sub(1).max(1);
    o.cursor = (bar.t + 60) * SECOND;
    o.updated_at = at;
    let done = match (o.qty, o.notional) {
        (Some(q), _) => o.filled_qty >= q,
        (None, Some(n)) => parts <= 1 || o.filled_value >= n,
        (None, None) => true,
    };
    if done {
        o.status = "filled";
        o.filled_at = Some(at);
    } else {
        o.status = "partially_filled";
    }
    let leaves = match o.qty {
        Some(q) if !done => q - o.filled_qty,
        _ => Decimal::ZERO,
    };
    let exec = rng.uuid();
    let fill = Fill {
        id: wire::activity_id(at, &exec),
        order_id: o.id.clone(),
        symbol: sym.clone(),
        side,
        qty: part,
        price,
        cum_qty: o.filled_qty,
        leaves_qty: leaves,
        order_status: o.status,
        partial: !done,
        at,
    };
    let event = if done { "fill" } else { "partial_fill" };
    let ev = wire::trade_event(event, o, at, &exec, Some((part, price)), Decimal::ZERO);
    a.fills.push(fill);
    let mut ev = ev;
    ev["position_qty"] = json!(dec(position_qty(a, &sym)));
    a.emit(ev);
}

/// A decimal field sent as a string or a number.
fn dec_field(body: &Value, name: &str) -> Result<Option<Decimal>, Refusal> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => parse_dec(s)
            .map(Some)
            .ok_or_else(|| invalid(format!("invalid {name}: {s}"))),
        Some(Value::Number(n)) => parse_dec(&n.to_string())
            .map(Some)
            .ok_or_else(|| invalid(format!("invalid {name}: {n}"))),
        Some(other) => Err(invalid(format!("invalid {name}: {other}"))),
    }
}

fn parse_dec(s: &str) -> Option<Decimal> {
    let s = s.trim();
    s.parse::<Decimal>()
        .ok()
        .or_else(|| Decimal::from_scientific(s).ok())
}

fn str_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str).map(str::trim)
}

/// What a submission produced.
pub(crate) struct Submitted {
    pub index: usize,
}

/// A new order from a `POST /v2/orders` body; refusals as Alpaca answers them.
pub(crate) fn submit(
    inner: &mut Inner,
    key: &str,
    body: &Value,
    now: Micros,
) -> Result<Submitted, Refusal> {
    if !body.is_object() {
        return Err(invalid("request body format is invalid"));
    }
    if let Some(r) = inner.trading.faults.reject_next.pop_front() {
        return Err(refusal(r.status, r.code, r.message));
    }
    let symbol = match str_field(body, "symbol") {
        None | Some("") => return Err(invalid("symbol is required")),
        Some(s) => s.to_ascii_uppercase(),
    };
    let side = match str_field(body, "side") {
        Some("buy") => Side::Buy,
        Some("sell") => Side::Sell,
        None => return Err(invalid("side is required")),
        Some(s) => return Err(invalid(format!("invalid side: {s}"))),
    };
    let tif = match str_field(body, "time_in_force") {
        None => return Err(invalid("time_in_force is required")),
        Some(t @ ("day" | "gtc" | "opg" | "cls" | "ioc" | "fok")) => t.to_string(),
        Some(t) => return Err(invalid(format!("invalid time_in_force: {t}"))),
    };
    let qty = dec_field(body, "qty")?;
    let notional = dec_field(body, "notional")?;
    let limit = dec_field(body, "limit_price")?;
    let kind = match str_field(body, "type").or_else(|| str_field(body, "order_type")) {
        None => return Err(invalid("type is required")),
        Some("market") => Kind::Market,
        Some("limit") => match limit {
            None => return Err(invalid("limit_price is required for limit orders")),
            Some(p) if p <= Decimal::ZERO => return Err(invalid("limit_price must be > 0")),
            Some(p) => {
                let dp = if p >= Decimal::ONE { 2 } else { 4 };
                if p.normalize().scale() > dp {
                    return Err(refusal(
                        422,
                        42210000,
                        format!("invalid limit_price {}. sub-penny increment does not fulfill minimum pricing criteria", dec(p)),
                    ));
                }
                Kind::Limit(p)
            }
        },
        Some(t @ ("stop" | "stop_limit" | "trailing_stop")) => {
            return Err(invalid(format!(
                "order type {t} is not supported by the emulator (market and limit are)"
            )))
        }
        Some(t) => return Err(invalid(format!("invalid order type: {t}"))),
    };
    let extended = body
        .get("extended_hours")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match (qty, notional) {
        (Some(_), Some(_)) => return Err(invalid("only one of qty or notional can be specified")),
        (None, None) => return Err(invalid("qty or notional is required")),
        (Some(q), None) if q <= Decimal::ZERO => return Err(invalid("qty must be > 0")),
        (Some(q), None) if q.normalize().scale() > QTY_DP => {
            return Err(invalid("qty must have at most 9 decimal places"))
        }
        (None, Some(n)) if n <= Decimal::ZERO => return Err(invalid("notional must be > 0")),
        (None, Some(_)) if kind != Kind::Market || tif != "day" => {
            return Err(invalid(
                "notional orders must be market orders with time_in_force day",
            ))
        }
        _ => {}
    }
    let fractional = notional.is_some() || qty.is_some_and(|q| !q.fract().is_zero());
    if fractional && tif != "day" {
        return Err(refusal(
            422,
            42210000,
            "fractional orders must be DAY orders",
        ));
    }
    if extended && !(matches!(kind, Kind::Limit(_)) && (tif == "day" || tif == "gtc")) {
        return Err(invalid("extended hours order must be DAY limit orders"));
    }
    let client_order_id = match str_field(body, "client_order_id") {
        Some(c) if c.chars().count() > 128 => {
            return Err(invalid(
                "client_order_id must be no more than 128 characters",
            ))
        }
        Some(c) if !c.is_empty() => Some(c.to_string()),
        _ => None,
    };
    if !tradable(inner, &symbol) {
        return Err(invalid(format!("could not find asset \"{symbol}\"")));
    }
    let (src, t) = parts(inner);
    let price = src
        .price_at(&symbol, now.div_euclid(SECOND))
        .map(dec_f64)
        .ok_or_else(|| {
            invalid(format!(
                "no price for \"{symbol}\": the emulator has no bars for it"
            ))
        })?;
    let fill_delay = t.faults.fill_delay;
    let hold = t.faults.hold_new;
    let parts_n = t.faults.partial_fills.unwrap_or(1).max(1);
    let reject_later = t.faults.reject_later > 0;
    let stamp = t.stamp(now);
    let id = t.rng.uuid();
    let coid = client_order_id.unwrap_or_else(|| t.rng.uuid());
    let a = t.account(key, now);
    if a.by_client.contains_key(&coid) {
        return Err(invalid("client_order_id must be unique"));
    }
    // A wash trade: an open order on the other side that this one could trade against.
    let crosses = |o: &Order| match (o.kind, kind) {
        (Kind::Limit(theirs), Kind::Limit(ours)) => match side {
            Side::Buy => ours >= theirs,
            Side::Sell => ours <= theirs,
        },
        _ => true,
    };
    if a.orders
        .iter()
        .any(|o| o.is_open() && o.symbol == symbol && o.side != side && crosses(o))
    {
        let r = super::Rejection::wash_trade();
        return Err(refusal(r.status, r.code, r.message));
    }
    let reserve_price = match kind {
        Kind::Limit(p) => p,
        Kind::Market => price,
    };
    match side {
        Side::Buy => {
            let cost = match (qty, notional) {
                (Some(q), _) => q * reserve_price,
                (None, Some(n)) => n,
                _ => Decimal::ZERO,
            };
            let bp = figures(&src, a, now).buying_power;
            if cost > bp {
                return Err((
                    403,
                    json!({
                        "code": 40310000,
                        "message": "insufficient buying power",
                        "buying_power": dec(bp),
                        "cost_basis": dec(cost),
                    }),
                ));
            }
        }
        Side::Sell => {
            let want = match (qty, notional) {
                (Some(q), _) => q,
                (None, Some(n)) => floor_dp(n / price, QTY_DP),
                _ => Decimal::ZERO,
            };
            let have = position_qty(a, &symbol);
            let held = held_for_sells(a, &symbol);
            let available = (have - held).max(Decimal::ZERO);
            if want > available {
                return Err((
                    403,
                    json!({
                        "code": 40310000,
                        "message": format!("insufficient qty available for order (requested: {}, available: {})", dec(want), dec(available)),
                        "symbol": symbol,
                        "existing_qty": dec(have),
                        "held_for_orders": dec(held),
                        "available": dec(available),
                    }),
                ));
            }
        }
    }
    let arrival = stamp;
    let cursor =
        arrival + fill_delay.map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 2));
    let order = Order {
        id: id.clone(),
        client_order_id: coid.clone(),
        asset_id: wire::asset_id(&symbol),
        symbol,
        side,
        kind,
        tif: tif.clone(),
        qty,
        notional,
        extended_hours: extended,
        status: "new",
        filled_qty: Decimal::ZERO,
        filled_value: Decimal::ZERO,
        created_at: stamp,
        updated_at: stamp,
        submitted_at: stamp,
        filled_at: None,
        canceled_at: None,
        expired_at: None,
        failed_at: None,
        expires_at: expiry(arrival, &tif, extended),
        arrival,
        reserve_price,
        parts_left: parts_n,
        cursor,
        hold,
        reject_when_due: reject_later,
    };
    let index = a.orders.len();
    a.by_id.insert(id, index);
    a.by_client.insert(coid, index);
    let exec = t.rng.uuid();
    let a = t.accounts.get_mut(key).expect("opened above");
    let ev = wire::trade_event(
        "new",
        &order,
        stamp,
        &exec,
        None,
        position_qty(a, &order.symbol),
    );
    a.orders.push(order);
    a.emit(ev);
    if reject_later {
        t.faults.reject_later -= 1;
    }
    Ok(Submitted { index })
}

/// Cancels an open order by id.
pub(crate) fn cancel(t: &mut Trading, key: &str, id: &str, now: Micros) -> Result<(), Refusal> {
    let stamp = t.stamp(now);
    let Trading { accounts, rng, .. } = t;
    let Some(a) = accounts.get_mut(key) else {
        return Err(refusal(404, 40410000, "order not found"));
    };
    let Some(&i) = a.by_id.get(id) else {
        return Err(refusal(404, 40410000, "order not found"));
    };
    if !a.orders[i].is_open() {
        return Err(refusal(
            422,
            42210000,
            format!("order is already in \"{}\" state", a.orders[i].status),
        ));
    }
    end_order(a, i, "canceled", stamp, rng);
    Ok(())
}

/// Cancels every open order of `key`; the ids cancelled.
pub(crate) fn cancel_all(t: &mut Trading, key: &str, now: Micros) -> Vec<String> {
    let ids: Vec<String> = match t.accounts.get(key) {
        Some(a) => a
            .orders
            .iter()
            .filter(|o| o.is_open())
            .map(|o| o.id.clone())
            .collect(),
        None => Vec::new(),
    };
    ids.into_iter()
        .filter(|id| cancel(t, key, id, now).is_ok())
        .collect()
}

/// A real-time `Duration` as emulator micros (for tests that advance the clock).
pub(crate) fn micros(d: Duration) -> Micros {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 4)
}
