//! The seams the trader drives: a broker account and a market-data feed. Alpaca and the simulated broker
//! implement both; the trader holds them as `Arc<dyn Broker>` / `Arc<dyn MarketData>`.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::mpsc;
use vectura_core::Bar;

use crate::error::BrokerError;
use crate::types::{
    Account, Asset, CalendarDay, Execution, MarketClock, Order, OrderQuery, OrderRequest, Position,
    TradeEvent,
};

/// An account at a broker.
#[async_trait]
pub trait Broker: Send + Sync {
    /// A short name for logs and reports (`alpaca-paper`, `alpaca-live`, `sim`).
    fn name(&self) -> &str;

    /// The account's cash, equity and buying power.
    async fn account(&self) -> Result<Account, BrokerError>;

    /// The market clock (the broker's time, whether the market is open, the next open and close).
    async fn clock(&self) -> Result<MarketClock, BrokerError>;

    /// Trading sessions between two dates, both included.
    async fn calendar(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarDay>, BrokerError>;

    /// One instrument (tradable, fractionable, …).
    async fn asset(&self, symbol: &str) -> Result<Asset, BrokerError>;

    /// Places an order. Safe to retry with the same `client_order_id`: when an order with that id
    /// already exists (a retry after a lost reply, a restart), that order is returned and no second one
    /// is placed. A submission whose outcome stays unknown returns [`BrokerError::Unavailable`].
    async fn submit(&self, req: &OrderRequest) -> Result<Order, BrokerError>;

    /// The order with our `client_order_id`, or `None` when the broker has none.
    async fn order_by_client_id(&self, client_order_id: &str)
        -> Result<Option<Order>, BrokerError>;

    /// Every order matching `q`, oldest first (all pages).
    async fn orders(&self, q: &OrderQuery) -> Result<Vec<Order>, BrokerError>;

    /// Asks for an order to be cancelled (by the broker's id); the outcome arrives as a stream event.
    /// Cancelling an order that already ended is not an error.
    async fn cancel(&self, order_id: &str) -> Result<(), BrokerError>;

    /// Asks for every open order to be cancelled; returns the ids asked for.
    async fn cancel_all(&self) -> Result<Vec<String>, BrokerError>;

    /// Every open position.
    async fn positions(&self) -> Result<Vec<Position>, BrokerError>;

    /// The open positions in `symbol` (one at most at a real broker): [`Broker::positions`] filtered,
    /// unless the broker can answer for the one symbol without listing the others (the simulated one).
    async fn positions_of(&self, symbol: &str) -> Result<Vec<Position>, BrokerError> {
        let mut v = self.positions().await?;
        v.retain(|p| p.symbol == symbol);
        Ok(v)
    }

    /// Every execution (Alpaca's `FILL` activities) after `after`, oldest first (all pages).
    async fn executions(&self, after: Option<DateTime<Utc>>)
        -> Result<Vec<Execution>, BrokerError>;

    /// The executions of `symbol` after `after`, oldest first: [`Broker::executions`] filtered, unless
    /// the broker can select them by symbol without copying every other symbol's (the simulated one).
    async fn executions_of(
        &self,
        symbol: &str,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<Execution>, BrokerError> {
        let mut v = self.executions(after).await?;
        v.retain(|x| x.symbol == symbol);
        Ok(v)
    }

    /// Subscribes to order events. The stream reconnects by itself; after each reconnect it backfills
    /// what it missed (Alpaca never replays stream events) and says so with [`StreamEvent::Connected`].
    async fn trade_updates(&self) -> Result<TradeUpdates, BrokerError>;
}

/// A message of the order stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The stream is (again) connected and authorised. `reconnect` is true after a drop: events of the
    /// gap were backfilled just before, but the trader should reconcile in full now.
    Connected { reconnect: bool },
    /// An order event (possibly one seen before: consumers de-duplicate by execution id).
    Event(Box<TradeEvent>),
    /// The stream dropped; it is reconnecting (with backoff) unless `fatal`.
    Disconnected { reason: String, fatal: bool },
}

/// A receiver of order events; dropping it stops the stream.
#[derive(Debug)]
pub struct TradeUpdates {
    rx: mpsc::Receiver<StreamEvent>,
}

impl TradeUpdates {
    /// Wraps the receiving end of the channel an implementation feeds.
    pub fn new(rx: mpsc::Receiver<StreamEvent>) -> Self {
        TradeUpdates { rx }
    }

    /// The next message, or `None` once the stream ended for good.
    pub async fn next(&mut self) -> Option<StreamEvent> {
        self.rx.recv().await
    }

    /// A message already waiting, without blocking.
    pub fn try_next(&mut self) -> Option<StreamEvent> {
        self.rx.try_recv().ok()
    }
}

/// Closed bars from a market-data feed.
#[async_trait]
pub trait MarketData: Send + Sync {
    /// Subscribes to closed minute bars of `symbols`. The stream reconnects by itself.
    async fn subscribe_bars(&self, symbols: &[String]) -> Result<BarUpdates, BrokerError>;

    /// Minute bars of `symbol` with `from <= start < to` (the REST fallback and the backfill after a gap).
    async fn bars(
        &self,
        symbol: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Bar>, BrokerError>;
}

/// A message of the bar stream.
#[derive(Debug, Clone, PartialEq)]
pub enum BarEvent {
    /// Connected and subscribed (again, when `reconnect`; bars of the gap may be missing: backfill by REST).
    Connected { reconnect: bool },
    /// A closed bar.
    Bar { symbol: String, bar: Bar },
    /// The stream dropped; it is reconnecting unless `fatal` (for example Alpaca's 406 connection
    /// limit persists, or 402 the feed is not in the plan).
    Disconnected { reason: String, fatal: bool },
}

/// A receiver of bars; dropping it stops the stream.
#[derive(Debug)]
pub struct BarUpdates {
    rx: mpsc::Receiver<BarEvent>,
}

impl BarUpdates {
    /// Wraps the receiving end of the channel an implementation feeds.
    pub fn new(rx: mpsc::Receiver<BarEvent>) -> Self {
        BarUpdates { rx }
    }

    /// The next message, or `None` once the stream ended for good.
    pub async fn next(&mut self) -> Option<BarEvent> {
        self.rx.recv().await
    }

    /// A message already waiting, without blocking.
    pub fn try_next(&mut self) -> Option<BarEvent> {
        self.rx.try_recv().ok()
    }
}
