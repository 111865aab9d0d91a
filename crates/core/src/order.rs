//! Order intents (what a strategy wants) and fills (what a venue did).

use serde::{Deserialize, Serialize};

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

/// A strategy-unique, monotonically increasing order intent number; with the run and symbol it makes
/// the client order id, so a resubmission after a restart is idempotent at the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IntentId(pub u64);

impl IntentId {
    /// The broker-facing client order id for this intent (Alpaca allows up to 128 characters).
    pub fn client_order_id(&self, run: &str, symbol: &str) -> String {
        format!("vt-{run}-{symbol}-{}", self.0)
    }
}

/// How the venue should execute an intent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum OrderKind {
    /// At the market, now.
    Market,
    /// A triggered order touched inside the bar at `trigger` (the `touch` fill model): fills at the trigger
    /// price, or at the open when the bar opened beyond it.
    Touch { trigger: f64 },
}

/// An order a strategy wants placed. Sized by the strategy at `ref_price`, the price it decided on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OrderIntent {
    pub id: IntentId,
    pub side: Side,
    /// Shares, already rounded to the strategy's share precision.
    pub qty: f64,
    /// The price the decision was made at (the close, or the touched trigger).
    pub ref_price: f64,
    pub kind: OrderKind,
    /// For a sell that closes one lot: the buy intent that opened it (lot accounting, trade links).
    pub closes: Option<IntentId>,
    /// Size at fill time to all cash the venue has available, in whole shares (`qty` is then an estimate).
    pub all_in: bool,
}

/// A (possibly partial) execution of an intent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    pub intent: IntentId,
    pub side: Side,
    /// Shares executed in this fill.
    pub qty: f64,
    /// Execution price per share, after slippage.
    pub price: f64,
    /// Commission charged for this fill, in dollars.
    pub commission: f64,
    /// Unix seconds UTC.
    pub ts: i64,
    /// True when this fill completes the intent (no more fills will come for it).
    pub done: bool,
}

/// Why an intent ended without (full) execution; the strategy keeps its trigger armed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEnd {
    Rejected(String),
    Cancelled,
    Expired,
}
