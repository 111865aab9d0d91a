//! What a broker reports and what we ask of it, in our own terms (the Alpaca client maps its wire format
//! onto these; the simulated broker produces them directly).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
pub use vectura_core::Side;

/// The largest number of decimals Alpaca accepts for a fractional quantity.
pub const QTY_DECIMALS: u32 = 9;

/// A strategy's share count (already floored to its precision) as the exact decimal sent to the broker:
/// rounded down to [`QTY_DECIMALS`], so an order never asks for more than the strategy sized. `None` for a
/// value that is not a finite, non-negative number.
pub fn qty_from_f64(q: f64) -> Option<Decimal> {
    if !(q.is_finite() && q >= 0.0) {
        return None;
    }
    // Shortest round-trip text first: 0.1234 stays 0.1234 instead of 0.12339999999999999580.
    let d: Decimal = format!("{q}").parse().ok()?;
    Some(
        d.round_dp_with_strategy(QTY_DECIMALS, rust_decimal::RoundingStrategy::ToZero)
            .normalize(),
    )
}

/// How an order executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum OrderType {
    /// At the market.
    Market,
    /// At `limit_price` or better.
    Limit {
        #[serde(with = "rust_decimal::serde::str")]
        limit_price: Decimal,
    },
}

/// How long an order stays working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeInForce {
    Day,
    Gtc,
    Opg,
    Cls,
    Ioc,
    Fok,
}

/// An order we ask the broker to place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// Our id for the order, unique forever at the broker (Alpaca: at most 128 characters); a second
    /// submission with the same id must never create a second order.
    pub client_order_id: String,
    pub symbol: String,
    pub side: Side,
    /// Shares (fractional up to [`QTY_DECIMALS`] decimals).
    pub qty: Decimal,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    /// May execute outside the regular session (Alpaca: limit orders, day, only).
    pub extended_hours: bool,
}

/// Where an order stands, as Alpaca names the states. An unknown state is kept as [`OrderStatus::Other`]
/// rather than failing the whole reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    New,
    PartiallyFilled,
    Filled,
    DoneForDay,
    Canceled,
    Expired,
    Replaced,
    PendingCancel,
    PendingReplace,
    Accepted,
    PendingNew,
    AcceptedForBidding,
    Stopped,
    Rejected,
    Suspended,
    Calculated,
    Held,
    /// A state this version does not know.
    Other(String),
}

impl OrderStatus {
    /// Parses Alpaca's status word; unknown words become [`OrderStatus::Other`].
    pub fn parse(s: &str) -> OrderStatus {
        match s {
            "new" => OrderStatus::New,
            "partially_filled" => OrderStatus::PartiallyFilled,
            "filled" => OrderStatus::Filled,
            "done_for_day" => OrderStatus::DoneForDay,
            "canceled" | "cancelled" => OrderStatus::Canceled,
            "expired" => OrderStatus::Expired,
            "replaced" => OrderStatus::Replaced,
            "pending_cancel" => OrderStatus::PendingCancel,
            "pending_replace" => OrderStatus::PendingReplace,
            "accepted" => OrderStatus::Accepted,
            "pending_new" => OrderStatus::PendingNew,
            "accepted_for_bidding" => OrderStatus::AcceptedForBidding,
            "stopped" => OrderStatus::Stopped,
            "rejected" => OrderStatus::Rejected,
            "suspended" => OrderStatus::Suspended,
            "calculated" => OrderStatus::Calculated,
            "held" => OrderStatus::Held,
            other => OrderStatus::Other(other.to_string()),
        }
    }

    /// Alpaca's word for the state.
    pub fn as_str(&self) -> &str {
        match self {
            OrderStatus::New => "new",
            OrderStatus::PartiallyFilled => "partially_filled",
            OrderStatus::Filled => "filled",
            OrderStatus::DoneForDay => "done_for_day",
            OrderStatus::Canceled => "canceled",
            OrderStatus::Expired => "expired",
            OrderStatus::Replaced => "replaced",
            OrderStatus::PendingCancel => "pending_cancel",
            OrderStatus::PendingReplace => "pending_replace",
            OrderStatus::Accepted => "accepted",
            OrderStatus::PendingNew => "pending_new",
            OrderStatus::AcceptedForBidding => "accepted_for_bidding",
            OrderStatus::Stopped => "stopped",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Suspended => "suspended",
            OrderStatus::Calculated => "calculated",
            OrderStatus::Held => "held",
            OrderStatus::Other(s) => s,
        }
    }

    /// True when no more fills can come (filled, canceled, expired, rejected, replaced). An unknown state
    /// is not final: the trader keeps asking rather than assuming.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            OrderStatus::Filled
                | OrderStatus::Canceled
                | OrderStatus::Expired
                | OrderStatus::Rejected
                | OrderStatus::Replaced
        )
    }
}

/// An order as the broker reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The broker's id.
    pub id: String,
    pub client_order_id: String,
    pub symbol: String,
    pub side: Side,
    /// Ordered shares (`None` for a notional order).
    pub qty: Option<Decimal>,
    pub filled_qty: Decimal,
    pub filled_avg_price: Option<Decimal>,
    pub status: OrderStatus,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub extended_hours: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub filled_at: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub expired_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

/// Which orders to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderFilter {
    Open,
    Closed,
    All,
}

/// A query for [`crate::Broker::orders`]: the implementation pages through all matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderQuery {
    pub status: OrderFilter,
    /// Only orders submitted after this instant.
    pub after: Option<DateTime<Utc>>,
    /// Only orders submitted until this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only these symbols (empty: all).
    pub symbols: Vec<String>,
}

impl OrderQuery {
    /// Every open order.
    pub fn open() -> OrderQuery {
        OrderQuery {
            status: OrderFilter::Open,
            after: None,
            until: None,
            symbols: Vec::new(),
        }
    }

    /// Every order, open or closed, submitted after `after` (the backfill after a stream reconnect).
    pub fn all_after(after: DateTime<Utc>) -> OrderQuery {
        OrderQuery {
            status: OrderFilter::All,
            after: Some(after),
            until: None,
            symbols: Vec::new(),
        }
    }
}

/// The account, as the broker reports it. The pattern-day-trader fields Alpaca removed on 2026-07-06
/// (`pattern_day_trader`, `daytrade_count`, …) are deliberately absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    /// `ACTIVE` when the account can trade.
    pub status: String,
    pub currency: String,
    pub cash: Decimal,
    pub equity: Decimal,
    pub buying_power: Decimal,
    /// Equity at the previous session's close (today's P&L is `equity − last_equity`).
    pub last_equity: Option<Decimal>,
    pub long_market_value: Option<Decimal>,
    pub trading_blocked: bool,
    pub account_blocked: bool,
    pub trade_suspended_by_user: bool,
}

/// A position in one symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub symbol: String,
    /// Shares held; negative for a short position.
    pub qty: Decimal,
    pub avg_entry_price: Decimal,
    pub market_value: Option<Decimal>,
    pub current_price: Option<Decimal>,
}

/// One execution (Alpaca's `FILL` account activity, or a simulated fill). `id` is the broker's
/// execution id: a fill seen twice (stream reconnect, backfill) has the same id and is applied once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub id: String,
    /// The broker's order id.
    pub order_id: String,
    pub symbol: String,
    pub side: Side,
    /// Shares executed in this fill.
    pub qty: Decimal,
    pub price: Decimal,
    /// Shares of the order executed so far, this fill included.
    pub cum_qty: Decimal,
    /// Shares of the order still working after this fill.
    pub leaves_qty: Decimal,
    pub time: DateTime<Utc>,
}

impl Execution {
    /// This execution as the strategy's fill of `intent` (found from the order's client order id),
    /// carrying the broker's order and execution ids so that the live loop applies it once. It ends
    /// the intent when nothing of the order is left working.
    pub fn to_fill(
        &self,
        intent: vectura_core::IntentId,
        commission: f64,
    ) -> vectura_core::BrokerFill {
        use rust_decimal::prelude::ToPrimitive;
        // Decimal → f64 is total (never None); NaN would only mark a broken conversion downstream.
        let f = |d: Decimal| d.to_f64().unwrap_or(f64::NAN);
        vectura_core::BrokerFill {
            order_id: self.order_id.clone(),
            execution_id: self.id.clone(),
            fill: vectura_core::Fill {
                intent,
                side: self.side,
                qty: f(self.qty),
                price: f(self.price),
                commission,
                ts: self.time.timestamp(),
                done: self.leaves_qty.is_zero(),
            },
        }
    }
}

/// What happened to an order, as the `trade_updates` stream names it. Unknown events are kept as
/// [`TradeEventKind::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeEventKind {
    New,
    Fill,
    PartialFill,
    Canceled,
    Expired,
    DoneForDay,
    Replaced,
    Rejected,
    PendingNew,
    PendingCancel,
    PendingReplace,
    Stopped,
    Suspended,
    Calculated,
    OrderCancelRejected,
    OrderReplaceRejected,
    Restated,
    Other(String),
}

impl TradeEventKind {
    /// Parses Alpaca's event word; unknown words become [`TradeEventKind::Other`].
    pub fn parse(s: &str) -> TradeEventKind {
        match s {
            "new" => TradeEventKind::New,
            "fill" => TradeEventKind::Fill,
            "partial_fill" => TradeEventKind::PartialFill,
            "canceled" | "cancelled" => TradeEventKind::Canceled,
            "expired" => TradeEventKind::Expired,
            "done_for_day" => TradeEventKind::DoneForDay,
            "replaced" => TradeEventKind::Replaced,
            "rejected" => TradeEventKind::Rejected,
            "pending_new" => TradeEventKind::PendingNew,
            "pending_cancel" => TradeEventKind::PendingCancel,
            "pending_replace" => TradeEventKind::PendingReplace,
            "stopped" => TradeEventKind::Stopped,
            "suspended" => TradeEventKind::Suspended,
            "calculated" => TradeEventKind::Calculated,
            "order_cancel_rejected" => TradeEventKind::OrderCancelRejected,
            "order_replace_rejected" => TradeEventKind::OrderReplaceRejected,
            "restated" => TradeEventKind::Restated,
            other => TradeEventKind::Other(other.to_string()),
        }
    }
}

/// One event of the order stream: the order as it is after the event, and for fills the execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradeEvent {
    pub kind: TradeEventKind,
    pub order: Order,
    /// The fill, for `fill` and `partial_fill` events (with the broker's execution id).
    pub execution: Option<Execution>,
    /// Shares held in the symbol after the event, when the broker says.
    pub position_qty: Option<Decimal>,
    pub at: DateTime<Utc>,
}

/// The market clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketClock {
    /// The broker's current time.
    pub now: DateTime<Utc>,
    pub is_open: bool,
    pub next_open: DateTime<Utc>,
    pub next_close: DateTime<Utc>,
}

/// One trading session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarDay {
    pub date: NaiveDate,
    /// Regular session open and close.
    pub open: DateTime<Utc>,
    pub close: DateTime<Utc>,
}

/// A tradable instrument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub symbol: String,
    /// `active` or `inactive`.
    pub status: String,
    pub tradable: bool,
    pub fractionable: bool,
    /// The smallest order quantity, when the broker sets one.
    pub min_order_size: Option<Decimal>,
    /// The quantity step, when the broker sets one.
    pub min_trade_increment: Option<Decimal>,
}

/// Which market-data feed (Alpaca: `iex` on the free plan, `sip` for the consolidated tape).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFeed {
    Iex,
    Sip,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_rounded_down_to_nine_decimals_without_float_noise() {
        assert_eq!(qty_from_f64(0.1234).unwrap().to_string(), "0.1234");
        assert_eq!(qty_from_f64(12.0).unwrap().to_string(), "12");
        assert_eq!(
            qty_from_f64(0.1234567899).unwrap().to_string(),
            "0.123456789"
        );
        assert_eq!(qty_from_f64(1.0 / 3.0).unwrap().to_string(), "0.333333333");
        assert_eq!(qty_from_f64(f64::NAN), None);
        assert_eq!(qty_from_f64(-1.0), None);
    }

    #[test]
    fn an_execution_becomes_a_fill_that_carries_the_broker_ids() {
        let x = Execution {
            id: "exec-9".into(),
            order_id: "ord-3".into(),
            symbol: "SPY".into(),
            side: Side::Buy,
            qty: "0.123456789".parse().unwrap(),
            price: "401.25".parse().unwrap(),
            cum_qty: "0.123456789".parse().unwrap(),
            leaves_qty: "1".parse().unwrap(),
            time: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        let f = x.to_fill(vectura_core::IntentId(7), 0.5);
        assert_eq!(
            (f.order_id.as_str(), f.execution_id.as_str()),
            ("ord-3", "exec-9")
        );
        assert_eq!(f.fill.intent, vectura_core::IntentId(7));
        assert_eq!(
            (f.fill.qty, f.fill.price, f.fill.ts),
            (0.123456789, 401.25, 1_700_000_000)
        );
        assert!(!f.fill.done, "1 share still working");
        let last = Execution {
            leaves_qty: Decimal::ZERO,
            ..x
        };
        assert!(last.to_fill(vectura_core::IntentId(7), 0.0).fill.done);
    }

    #[test]
    fn unknown_states_and_events_are_kept_not_fatal() {
        assert_eq!(
            OrderStatus::parse("held_for_review"),
            OrderStatus::Other("held_for_review".into())
        );
        assert!(!OrderStatus::parse("held_for_review").is_final());
        assert!(OrderStatus::parse("filled").is_final());
        assert_eq!(OrderStatus::parse("pending_new").as_str(), "pending_new");
        assert_eq!(
            TradeEventKind::parse("something_new"),
            TradeEventKind::Other("something_new".into())
        );
    }
}
