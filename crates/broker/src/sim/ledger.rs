//! What the simulated broker received and did, for tests and reports to read: every order request (to
//! count duplicates, as the emulator's `--orders-log` does), every cancel request, every execution with
//! its commission, and every order event as generated (before the stream's faults).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::types::{Execution, OrderRequest, TradeEvent};

/// One order request as it reached the simulated broker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    /// Arrival number, from 0.
    pub seq: u64,
    /// The broker's time on arrival.
    pub at: DateTime<Utc>,
    pub request: OrderRequest,
    pub outcome: RequestOutcome,
}

/// What became of an order request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum RequestOutcome {
    /// A new order was created.
    Accepted { order_id: String },
    /// An order with this client order id existed; it was returned and nothing was created.
    Duplicate { order_id: String },
    /// Refused (invalid, buying power, held shares, or an injected reject); nothing was created.
    Refused {
        status: u16,
        code: Option<i64>,
        message: String,
    },
    /// The caller got [`crate::BrokerError::Unavailable`]: with `order_id` the order was created
    /// and only the reply was lost; without, nothing happened.
    Unavailable { order_id: Option<String> },
}

/// One cancel request (`order_id` `None`: cancel all).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CancelRecord {
    pub at: DateTime<Utc>,
    pub order_id: Option<String>,
    /// The orders it cancelled.
    pub canceled: Vec<String>,
    /// True when the caller got [`crate::BrokerError::Unavailable`] (with `canceled` empty nothing happened).
    pub unavailable: bool,
}

/// One execution with what the broker charged for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionRecord {
    pub execution: Execution,
    pub client_order_id: String,
    /// Commission charged for this fill, dollars (Alpaca's stream does not carry it).
    pub commission: Decimal,
}

/// Everything recorded so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ledger {
    pub requests: Vec<RequestRecord>,
    pub cancels: Vec<CancelRecord>,
    pub executions: Vec<ExecutionRecord>,
    /// Every order event in the order the broker generated it (what a stream with no faults delivers).
    pub events: Vec<TradeEvent>,
}

impl Ledger {
    /// How many order requests carried `client_order_id` (retries and duplicates included).
    pub fn requests_for(&self, client_order_id: &str) -> usize {
        self.requests
            .iter()
            .filter(|r| r.request.client_order_id == client_order_id)
            .count()
    }

    /// The total commission charged.
    pub fn commission(&self) -> Decimal {
        self.executions.iter().map(|e| e.commission).sum()
    }
}
