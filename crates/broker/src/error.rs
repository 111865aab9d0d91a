//! Broker errors, sorted by what the caller can conclude: nothing happened, something may have
//! happened (reconcile before acting again), or the setup is wrong.

use std::time::Duration;

/// A boxed source error, kept so the chain reaches the log.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a broker call failed. Messages never contain an API secret.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker refused the request and nothing happened (Alpaca: 403 insufficient buying power,
    /// 422 wash trade, a limit price too far away, a qty it does not accept, …). Not worth retrying as is.
    #[error("the broker refused the request (HTTP {status}{}): {message}", code.map(|c| format!(", code {c}")).unwrap_or_default())]
    Rejected {
        status: u16,
        code: Option<i64>,
        message: String,
    },
    /// What was asked for does not exist (an order id, a client order id, a symbol).
    #[error("not found at the broker: {what}")]
    NotFound { what: String },
    /// The credentials were refused.
    #[error("the broker refused the credentials ({message}): check APCA_API_KEY_ID and APCA_API_SECRET_KEY and that they belong to {endpoint}")]
    Unauthorized { message: String, endpoint: String },
    /// Too many requests; `retry_after` when the broker said how long to wait.
    #[error("the broker's rate limit was hit{}", retry_after.map(|d| format!(" (retry after {} ms)", d.as_millis())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// The outcome is unknown: a timeout, a lost connection, a 5xx. For a submission the order may
    /// or may not exist; look it up by client order id (the Alpaca client already tried) before acting.
    #[error("the broker could not be reached or did not answer: {message}")]
    Unavailable {
        message: String,
        #[source]
        source: Option<Source>,
    },
    /// A reply we could not read (not the documented format).
    #[error("the broker's reply could not be read: {message}")]
    Protocol {
        message: String,
        #[source]
        source: Option<Source>,
    },
    /// The market-data API answered, but with a bar that fails the checks every bar source shares
    /// (a NaN, zero or negative price, a negative volume, a time out of order or outside the
    /// calendar's years). Not an outage: the service was reached and nothing was changed, but the data
    /// must not be traded on; fetch again later, and report it to the provider if it repeats.
    #[error("the market-data API sent a bad bar, which is not used: {message}")]
    BadData {
        message: String,
        #[source]
        source: Option<Source>,
    },
    /// The configuration is wrong or incomplete (missing keys, a bad URL, live trading not allowed).
    #[error("{0}")]
    Config(String),
}

impl BrokerError {
    /// True when the request certainly had no effect at the broker.
    pub fn nothing_happened(&self) -> bool {
        matches!(
            self,
            BrokerError::Rejected { .. }
                | BrokerError::NotFound { .. }
                | BrokerError::Unauthorized { .. }
                | BrokerError::RateLimited { .. }
                | BrokerError::BadData { .. }
                | BrokerError::Config(_)
        )
    }
}
