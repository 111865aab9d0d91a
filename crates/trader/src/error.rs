//! Why a trader step failed. A halt is not an error: it is recorded per symbol and the others go on.

use vectura_broker::BrokerError;
use vectura_store::StoreError;

/// A failed step or start; the trader's durable state is consistent whichever it is.
#[derive(Debug, thiserror::Error)]
pub enum TraderError {
    /// The store could not be read or written; nothing after the failed write happened.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The broker could not be reached or answered unexpectedly; the next step reconciles.
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
    /// The configuration cannot be traded with (no enabled symbol, a bad grid, live without --live).
    #[error("{0}")]
    Config(String),
    /// A test's crash point was reached: the trader stops as if killed there.
    #[error("crash injected at {0:?}")]
    Crashed(CrashPoint),
}

/// Points where a test can make the trader stop as if killed (SIGKILL) to prove that a restart from
/// the store loses nothing and doubles nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The intent and its counter are saved; the order was not submitted.
    AfterIntentSaved,
    /// The order was submitted; its reply was not handled (the intent still reads `intent`).
    AfterSubmit,
    /// A fill was received; its transaction was not begun.
    BeforeFillSaved,
    /// A fill's transaction is open, every row written, the commit not made.
    InsideFillTransaction,
}
