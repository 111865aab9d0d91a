//! Vectura's broker layer: everything between the strategy and a broker.
//!
//! - [`Broker`]: an account at a broker, async and answerable (submit, cancel, look up by client order id,
//!   list orders, positions, executions, the account, and a stream of order events). Submission is
//!   idempotent by client order id, so a retry after a crash or a lost reply cannot double an order.
//! - [`MarketData`]: closed minute bars as a stream (with a REST fallback).
//! - Implementations: the Alpaca client ([`alpaca`], REST and WebSocket streams, paper or live) and the
//!   simulated broker ([`sim`], fills against bars with the backtest's fill models, for offline paper
//!   trading, the demo and tests).
//!
//! Money and quantities are exact decimals ([`Decimal`]) as Alpaca sends them; the strategy's f64 values
//! are converted once, at the trader's boundary ([`qty_from_f64`]).

pub mod error;
pub mod sim;
pub mod types;
pub mod venue;

pub use error::BrokerError;
pub use rust_decimal::Decimal;
pub use types::*;
pub use venue::{BarEvent, BarUpdates, Broker, MarketData, StreamEvent, TradeUpdates};
