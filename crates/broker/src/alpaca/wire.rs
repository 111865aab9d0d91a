//! Alpaca's JSON (trading-api.json's `Order`, `Account`, `Position`, `Assets`, `TradingActivities`,
//! clock, calendar and the `trade_updates` events), read tolerantly: unknown fields are ignored, every
//! field we do not need is optional, numbers may come as strings or as numbers, unknown states and
//! events are kept as "other", and the pattern-day-trader fields are never read.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::BrokerError;
use crate::types::{
    Account, Asset, CalendarDay, Execution, MarketClock, Order, OrderStatus, OrderType, Position,
    Side, TimeInForce, TradeEvent, TradeEventKind,
};

fn protocol(message: impl Into<String>) -> BrokerError {
    BrokerError::Protocol {
        message: message.into(),
        source: None,
    }
}

/// A decimal sent as a string (`"12.5"`), a number (`12.5`), or absent/`null`/`""`.
fn de_dec<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::String(s)) => parse_dec(&s),
        Some(Value::Number(n)) => parse_dec(&n.to_string()),
        _ => None,
    })
}

pub(crate) fn parse_dec(s: &str) -> Option<Decimal> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    s.parse::<Decimal>()
        .ok()
        .or_else(|| Decimal::from_scientific(s).ok())
}

/// A time in RFC 3339 (any offset, any fraction), or absent/`null`/unreadable.
fn de_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        _ => None,
    })
}

fn de_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::Bool(b)) => Some(b),
        Some(Value::String(s)) => match s.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    })
}

fn de_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// An order as Alpaca sends it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RawOrder {
    #[serde(default, deserialize_with = "de_str")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de_str")]
    pub client_order_id: Option<String>,
    #[serde(default, deserialize_with = "de_str")]
    pub symbol: Option<String>,
    #[serde(default, deserialize_with = "de_str")]
    pub side: Option<String>,
    #[serde(default, deserialize_with = "de_dec")]
    pub qty: Option<Decimal>,
    #[serde(default, deserialize_with = "de_dec")]
    pub filled_qty: Option<Decimal>,
    #[serde(default, deserialize_with = "de_dec")]
    pub filled_avg_price: Option<Decimal>,
    #[serde(default, deserialize_with = "de_dec")]
    pub limit_price: Option<Decimal>,
    #[serde(default, deserialize_with = "de_str")]
    pub status: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "de_str")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "de_str")]
    pub order_type: Option<String>,
    #[serde(default, deserialize_with = "de_str")]
    pub time_in_force: Option<String>,
    #[serde(default, deserialize_with = "de_bool")]
    pub extended_hours: Option<bool>,
    #[serde(default, deserialize_with = "de_time")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_time")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_time")]
    pub submitted_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_time")]
    pub filled_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_time")]
    pub canceled_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_time")]
    pub expired_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_time")]
    pub failed_at: Option<DateTime<Utc>>,
}

fn side(s: Option<&str>, what: &str) -> Result<Side, BrokerError> {
    match s {
        Some("buy") => Ok(Side::Buy),
        Some("sell") => Ok(Side::Sell),
        other => Err(protocol(format!(
            "{what}: side {other:?} is neither buy nor sell"
        ))),
    }
}

impl RawOrder {
    /// Our order; an order we cannot represent (a stop or multi-leg order placed elsewhere) is an
    /// error naming it, never skipped: reconciliation must see every order.
    pub fn into_order(self) -> Result<Order, BrokerError> {
        let id = self.id.ok_or_else(|| protocol("an order without an id"))?;
        let sym = self.symbol.clone().unwrap_or_default();
        let what = format!("order {id} ({sym})");
        let client_order_id = self
            .client_order_id
            .ok_or_else(|| protocol(format!("{what}: no client_order_id")))?;
        let kind = self.kind.or(self.order_type).unwrap_or_default();
        let order_type = match kind.as_str() {
            "market" => OrderType::Market,
            "limit" => OrderType::Limit {
                limit_price: self
                    .limit_price
                    .ok_or_else(|| protocol(format!("{what}: a limit order without limit_price")))?,
            },
            other => {
                return Err(protocol(format!(
                    "{what}: order type {other:?} is not one Vectura places (market, limit): an order made outside Vectura?"
                )))
            }
        };
        let tif = match self.time_in_force.as_deref() {
            Some("day") => TimeInForce::Day,
            Some("gtc") => TimeInForce::Gtc,
            Some("opg") => TimeInForce::Opg,
            Some("cls") => TimeInForce::Cls,
            Some("ioc") => TimeInForce::Ioc,
            Some("fok") => TimeInForce::Fok,
            other => {
                return Err(protocol(format!(
                    "{what}: time_in_force {other:?} is unknown"
                )))
            }
        };
        let created_at = self
            .created_at
            .or(self.submitted_at)
            .ok_or_else(|| protocol(format!("{what}: no created_at")))?;
        Ok(Order {
            side: side(self.side.as_deref(), &what)?,
            id,
            client_order_id,
            symbol: sym,
            qty: self.qty,
            filled_qty: self.filled_qty.unwrap_or_default(),
            filled_avg_price: self.filled_avg_price,
            status: OrderStatus::parse(self.status.as_deref().unwrap_or("")),
            order_type,
            time_in_force: tif,
            extended_hours: self.extended_hours.unwrap_or(false),
            created_at,
            updated_at: self.updated_at,
            submitted_at: self.submitted_at,
            filled_at: self.filled_at,
            canceled_at: self.canceled_at,
            expired_at: self.expired_at,
            failed_at: self.failed_at,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawAccount {
    #[serde(default, deserialize_with = "de_str")]
    id: Option<String>,
    #[serde(default, deserialize_with = "de_str")]
    status: Option<String>,
    #[serde(default, deserialize_with = "de_str")]
    currency: Option<String>,
    #[serde(default, deserialize_with = "de_dec")]
    cash: Option<Decimal>,
    #[serde(default, deserialize_with = "de_dec")]
    equity: Option<Decimal>,
    #[serde(default, deserialize_with = "de_dec")]
    buying_power: Option<Decimal>,
    #[serde(default, deserialize_with = "de_dec")]
    last_equity: Option<Decimal>,
    #[serde(default, deserialize_with = "de_dec")]
    long_market_value: Option<Decimal>,
    #[serde(default, deserialize_with = "de_bool")]
    trading_blocked: Option<bool>,
    #[serde(default, deserialize_with = "de_bool")]
    account_blocked: Option<bool>,
    #[serde(default, deserialize_with = "de_bool")]
    trade_suspended_by_user: Option<bool>,
}

impl RawAccount {
    pub fn into_account(self) -> Result<Account, BrokerError> {
        let need = |v: Option<Decimal>, f: &str| {
            v.ok_or_else(|| protocol(format!("the account has no {f}")))
        };
        Ok(Account {
            id: self.id.ok_or_else(|| protocol("the account has no id"))?,
            status: self.status.unwrap_or_default(),
            currency: self.currency.unwrap_or_else(|| "USD".into()),
            cash: need(self.cash, "cash")?,
            equity: need(self.equity, "equity")?,
            buying_power: need(self.buying_power, "buying_power")?,
            last_equity: self.last_equity,
            long_market_value: self.long_market_value,
            trading_blocked: self.trading_blocked.unwrap_or(false),
            account_blocked: self.account_blocked.unwrap_or(false),
            trade_suspended_by_user: self.trade_suspended_by_user.unwrap_or(false),
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawPosition {
    #[serde(default, deserialize_with = "de_str")]
    symbol: Option<String>,
    #[serde(default, deserialize_with = "de_dec")]
    qty: Option<Decimal>,
    #[serde(default, deserialize_with = "de_str")]
    side: Option<String>,
    #[serde(default, deserialize_with = "de_dec")]
    avg_entry_price: Option<Decimal>,
    #[serde(default, deserialize_with = "de_dec")]
    market_value: Option<Decimal>,
    #[serde(default, deserialize_with = "de_dec")]
    current_price: Option<Decimal>,
}

impl RawPosition {
    pub fn into_position(self) -> Result<Position, BrokerError> {
        let symbol = self
            .symbol
            .ok_or_else(|| protocol("a position without a symbol"))?;
        let qty = self
            .qty
            .ok_or_else(|| protocol(format!("position {symbol}: no qty")))?;
        // Alpaca writes short positions with a negative qty; some replies use a positive qty and side.
        let qty = if self.side.as_deref() == Some("short") && qty > Decimal::ZERO {
            -qty
        } else {
            qty
        };
        Ok(Position {
            avg_entry_price: self
                .avg_entry_price
                .ok_or_else(|| protocol(format!("position {symbol}: no avg_entry_price")))?,
            symbol,
            qty,
            market_value: self.market_value,
            current_price: self.current_price,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawAsset {
    #[serde(default, deserialize_with = "de_str")]
    symbol: Option<String>,
    #[serde(default, deserialize_with = "de_str")]
    status: Option<String>,
    #[serde(default, deserialize_with = "de_bool")]
    tradable: Option<bool>,
    #[serde(default, deserialize_with = "de_bool")]
    fractionable: Option<bool>,
    #[serde(default, deserialize_with = "de_dec")]
    min_order_size: Option<Decimal>,
    #[serde(default, deserialize_with = "de_dec")]
    min_trade_increment: Option<Decimal>,
}

impl RawAsset {
    pub fn into_asset(self) -> Result<Asset, BrokerError> {
        Ok(Asset {
            symbol: self
                .symbol
                .ok_or_else(|| protocol("an asset without a symbol"))?,
            status: self.status.unwrap_or_default(),
            tradable: self.tradable.unwrap_or(false),
            fractionable: self.fractionable.unwrap_or(false),
            min_order_size: self.min_order_size,
            min_trade_increment: self.min_trade_increment,
        })
    }
}

/// One `FILL` activity.
#[derive(Debug, Deserialize)]
pub(crate) struct RawActivity {
    #[serde(default, deserialize_with = "de_str")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de_str")]
    activity_type: Option<String>,
    #[serde(default, deserialize_with = "de_str")]
    pub order_id: Option<String>,
    #[serde(default, deserialize_with = "de_str")]
    symbol: Option<String>,
    #[serde(default, deserialize_with = "de_str")]
    side: Option<String>,
    #[serde(default, deserialize_with = "de_dec")]
    qty: Option<Decimal>,
    #[serde(default, deserialize_with = "de_dec")]
    price: Option<Decimal>,
    #[serde(default, deserialize_with = "de_dec")]
    cum_qty: Option<Decimal>,
    #[serde(default, deserialize_with = "de_dec")]
    leaves_qty: Option<Decimal>,
    #[serde(default, deserialize_with = "de_time")]
    transaction_time: Option<DateTime<Utc>>,
}

/// The execution id inside an activity id (`20220202135509981::<execution id>`), which is the
/// `execution_id` the stream sends for the same fill.
pub(crate) fn execution_id_of(activity_id: &str) -> &str {
    activity_id.split_once("::").map_or(activity_id, |(_, e)| e)
}

impl RawActivity {
    /// The execution; `None` for an activity that is not a fill.
    pub fn into_execution(self) -> Result<Option<Execution>, BrokerError> {
        if self.activity_type.as_deref().is_some_and(|t| t != "FILL") {
            return Ok(None);
        }
        let id = self
            .id
            .ok_or_else(|| protocol("a FILL activity without an id"))?;
        let what = format!("FILL activity {id}");
        let need =
            |v: Option<Decimal>, f: &str| v.ok_or_else(|| protocol(format!("{what}: no {f}")));
        let qty = need(self.qty, "qty")?;
        Ok(Some(Execution {
            order_id: self
                .order_id
                .ok_or_else(|| protocol(format!("{what}: no order_id")))?,
            symbol: self.symbol.unwrap_or_default(),
            side: side(self.side.as_deref(), &what)?,
            qty,
            price: need(self.price, "price")?,
            cum_qty: self.cum_qty.unwrap_or(qty),
            leaves_qty: self.leaves_qty.unwrap_or_default(),
            time: self
                .transaction_time
                .ok_or_else(|| protocol(format!("{what}: no transaction_time")))?,
            id: execution_id_of(&id).to_string(),
        }))
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawClock {
    #[serde(default, deserialize_with = "de_time")]
    timestamp: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_bool")]
    is_open: Option<bool>,
    #[serde(default, deserialize_with = "de_time")]
    next_open: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_time")]
    next_close: Option<DateTime<Utc>>,
}

impl RawClock {
    pub fn into_clock(self) -> Result<MarketClock, BrokerError> {
        let need = |v: Option<DateTime<Utc>>, f: &str| {
            v.ok_or_else(|| protocol(format!("the clock has no {f}")))
        };
        Ok(MarketClock {
            now: need(self.timestamp, "timestamp")?,
            is_open: self
                .is_open
                .ok_or_else(|| protocol("the clock has no is_open"))?,
            next_open: need(self.next_open, "next_open")?,
            next_close: need(self.next_close, "next_close")?,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawCalendarDay {
    #[serde(default, deserialize_with = "de_str")]
    date: Option<String>,
    #[serde(default, deserialize_with = "de_str")]
    open: Option<String>,
    #[serde(default, deserialize_with = "de_str")]
    close: Option<String>,
}

/// `HH:MM` New York time on `date` as UTC.
fn ny_instant(date: NaiveDate, hm: &str) -> Option<DateTime<Utc>> {
    let t = NaiveTime::parse_from_str(hm.trim(), "%H:%M").ok()?;
    chrono_tz_free_ny(date.and_time(t))
}

/// New York local time to UTC, from the NYSE calendar's knowledge of the offset: the session open
/// (09:30 local) of that date is known in UTC, so the offset is the difference.
fn chrono_tz_free_ny(local: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
    let open_utc = vectura_core::calendar::session_open_ts(local.date());
    let open_local = local.date().and_hms_opt(9, 30, 0)?.and_utc().timestamp();
    let offset = open_local - open_utc;
    Utc.timestamp_opt(local.and_utc().timestamp() - offset, 0)
        .single()
}

impl RawCalendarDay {
    pub fn into_day(self) -> Result<CalendarDay, BrokerError> {
        let date_s = self
            .date
            .ok_or_else(|| protocol("a calendar day without a date"))?;
        let date = NaiveDate::parse_from_str(date_s.trim(), "%Y-%m-%d")
            .map_err(|_| protocol(format!("calendar date {date_s:?} is not YYYY-MM-DD")))?;
        let at = |v: Option<String>, f: &str| {
            v.as_deref()
                .and_then(|s| ny_instant(date, s))
                .ok_or_else(|| protocol(format!("calendar day {date}: {f} is not HH:MM")))
        };
        Ok(CalendarDay {
            open: at(self.open, "open")?,
            close: at(self.close, "close")?,
            date,
        })
    }
}

/// One `trade_updates` message's `data`.
#[derive(Debug, Deserialize)]
pub(crate) struct RawTradeUpdate {
    #[serde(default, deserialize_with = "de_str")]
    event: Option<String>,
    #[serde(default, deserialize_with = "de_str")]
    execution_id: Option<String>,
    order: RawOrder,
    #[serde(default, deserialize_with = "de_time")]
    timestamp: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_dec")]
    position_qty: Option<Decimal>,
    #[serde(default, deserialize_with = "de_dec")]
    price: Option<Decimal>,
    #[serde(default, deserialize_with = "de_dec")]
    qty: Option<Decimal>,
}

impl RawTradeUpdate {
    pub fn into_event(self) -> Result<TradeEvent, BrokerError> {
        let order = self.order.into_order()?;
        let kind = TradeEventKind::parse(self.event.as_deref().unwrap_or(""));
        let at = self
            .timestamp
            .or(order.updated_at)
            .unwrap_or(order.created_at);
        let execution = match (&kind, self.qty, self.price) {
            (TradeEventKind::Fill | TradeEventKind::PartialFill, Some(qty), Some(price)) => {
                let id = self.execution_id.clone().ok_or_else(|| {
                    protocol(format!(
                        "a {} event of order {} without execution_id",
                        if kind == TradeEventKind::Fill {
                            "fill"
                        } else {
                            "partial_fill"
                        },
                        order.id
                    ))
                })?;
                Some(Execution {
                    id,
                    order_id: order.id.clone(),
                    symbol: order.symbol.clone(),
                    side: order.side,
                    qty,
                    price,
                    cum_qty: order.filled_qty,
                    leaves_qty: order
                        .qty
                        .map_or(Decimal::ZERO, |q| (q - order.filled_qty).max(Decimal::ZERO)),
                    time: at,
                })
            }
            _ => None,
        };
        Ok(TradeEvent {
            kind,
            order,
            execution,
            position_qty: self.position_qty,
            at,
        })
    }
}

/// The error body of a refused request: `{"code": 40310000, "message": "…"}` (code as a number or
/// a string; an HTML page has neither).
pub(crate) fn error_body(bytes: &[u8]) -> (Option<i64>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return (None, None);
    };
    let code = match &v["code"] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let message = v["message"].as_str().map(str::to_string);
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_parse_tolerantly_with_exact_decimals() {
        let raw: RawOrder = serde_json::from_value(serde_json::json!({
            "id": "o1", "client_order_id": "c1", "symbol": "SPY", "side": "buy",
            "qty": "0.123456789", "filled_qty": 0.1, "filled_avg_price": null,
            "type": "market", "time_in_force": "day", "status": "held_for_review",
            "created_at": "2024-07-01T13:30:00.123456789Z", "something_new": {"x": 1},
            "extended_hours": false
        }))
        .unwrap();
        let o = raw.into_order().unwrap();
        assert_eq!(o.qty.unwrap().to_string(), "0.123456789");
        assert_eq!(o.filled_qty.to_string(), "0.1");
        assert_eq!(o.status, OrderStatus::Other("held_for_review".into()));
        let stop: RawOrder = serde_json::from_value(serde_json::json!({
            "id": "o2", "client_order_id": "c2", "symbol": "SPY", "side": "sell",
            "type": "stop", "time_in_force": "gtc", "created_at": "2024-07-01T13:30:00Z"
        }))
        .unwrap();
        let e = stop.into_order().unwrap_err().to_string();
        assert!(e.contains("o2") && e.contains("stop"), "{e}");
    }

    #[test]
    fn accounts_need_no_pattern_day_trader_fields_and_activities_give_the_stream_execution_id() {
        let a: RawAccount = serde_json::from_value(serde_json::json!({
            "id": "a", "status": "ACTIVE", "cash": "100.5", "equity": "100.5", "buying_power": "100.5"
        }))
        .unwrap();
        assert_eq!(a.into_account().unwrap().cash.to_string(), "100.5");
        let act: RawActivity = serde_json::from_value(serde_json::json!({
            "id": "20220202135509981::2d7be4ff-d1f3-43e9-856a-0f5cf5c5088e", "activity_type": "FILL",
            "type": "fill", "order_id": "o", "symbol": "AAPL", "side": "buy", "qty": "2", "price": "174.78",
            "cum_qty": "2", "leaves_qty": "0", "transaction_time": "2022-02-02T18:55:09.981482Z"
        }))
        .unwrap();
        let e = act.into_execution().unwrap().unwrap();
        assert_eq!(e.id, "2d7be4ff-d1f3-43e9-856a-0f5cf5c5088e");
        assert_eq!(e.price.to_string(), "174.78");
    }

    #[test]
    fn calendar_times_are_new_york_wall_times() {
        let d: RawCalendarDay = serde_json::from_value(serde_json::json!({
            "date": "2024-07-03", "open": "09:30", "close": "13:00"
        }))
        .unwrap();
        let d = d.into_day().unwrap();
        assert_eq!(d.open.to_rfc3339(), "2024-07-03T13:30:00+00:00");
        assert_eq!(d.close.to_rfc3339(), "2024-07-03T17:00:00+00:00");
        let w: RawCalendarDay = serde_json::from_value(serde_json::json!({
            "date": "2024-01-02", "open": "09:30", "close": "16:00"
        }))
        .unwrap();
        assert_eq!(
            w.into_day().unwrap().close.to_rfc3339(),
            "2024-01-02T21:00:00+00:00"
        );
    }
}
