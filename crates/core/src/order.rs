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

/// The prefix of every client order id Vectura makes (orders without it are not ours).
pub const CLIENT_ORDER_PREFIX: &str = "vt-";

/// Alpaca's limit on a client order id's length.
pub const CLIENT_ORDER_ID_MAX: usize = 128;

impl IntentId {
    /// The broker-facing client order id for this intent: `vt-{run}-{symbol}-{n}`. With a [`RunId`] and a
    /// [`crate::Symbol`] it is at most 3 + 13 + 1 + 10 + 1 + 20 = 48 characters (Alpaca allows 128).
    pub fn client_order_id(&self, run: &str, symbol: &str) -> String {
        format!("{CLIENT_ORDER_PREFIX}{run}-{symbol}-{}", self.0)
    }
}

/// A client order id taken apart: which run, symbol and intent it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOrderId {
    pub run: RunId,
    pub symbol: String,
    pub intent: IntentId,
}

impl ClientOrderId {
    /// Parses `vt-{run}-{symbol}-{n}`; `None` for an id Vectura did not make (a manual order, another
    /// tool's). The symbol may itself hold `-`: the run ends at the first `-`, the number after the last.
    pub fn parse(s: &str) -> Option<ClientOrderId> {
        let rest = s.strip_prefix(CLIENT_ORDER_PREFIX)?;
        let (run, rest) = rest.split_once('-')?;
        let (symbol, n) = rest.rsplit_once('-')?;
        if symbol.is_empty() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(ClientOrderId {
            run: RunId::parse(run).ok()?,
            symbol: symbol.to_string(),
            intent: IntentId(n.parse().ok()?),
        })
    }
}

/// A run identity, unique among every run ever made on one broker account: a run is one strategy
/// instance trading one symbol from its start until it is retired, across any number of restarts
/// (a restart restores the run and keeps its id; a fresh start makes a new one). Client order ids are
/// `run` + intent number, so a new run can never reuse an old order's id, even a cancelled one.
///
/// The id is the run's start instant in Unix milliseconds, in base 36, 9 digits wide (so ids sort as
/// their start times do until the year 5188); the store hands out a later instant than any earlier
/// run of the account ([`RunId::after`]), so ids stay unique when two runs start in one millisecond or
/// the clock steps back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

/// A run id that is not 1 to 13 lower-case ASCII letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("run id {0:?} is not 1 to 13 characters of a-z and 0-9: use an id the store made")]
pub struct RunIdError(pub String);

const RUN_ID_WIDTH: usize = 9;
const RUN_ID_MAX: usize = 13;

impl RunId {
    /// The id of a run started at `ms` (Unix milliseconds; negative instants count as 0).
    pub fn from_start_ms(ms: i64) -> RunId {
        let mut n = ms.max(0) as u64;
        let mut digits = Vec::with_capacity(RUN_ID_MAX);
        while n > 0 {
            digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
            n /= 36;
        }
        while digits.len() < RUN_ID_WIDTH {
            digits.push(b'0');
        }
        digits.reverse();
        RunId(String::from_utf8(digits).expect("ASCII digits"))
    }

    /// The id for a run starting at `now_ms` on an account whose latest run is `latest`: `now_ms`, or
    /// one millisecond after `latest` when that is later, so no two runs of the account share an id.
    pub fn after(latest: Option<&RunId>, now_ms: i64) -> RunId {
        let floor = latest
            .and_then(RunId::start_ms)
            .map_or(i64::MIN, |ms| ms.saturating_add(1));
        RunId::from_start_ms(now_ms.max(floor))
    }

    /// The start instant this id encodes (Unix ms), when it is one [`RunId::from_start_ms`] made.
    pub fn start_ms(&self) -> Option<i64> {
        i64::from_str_radix(&self.0, 36).ok()
    }

    /// Checks an id read back from the store or a client order id.
    pub fn parse(s: &str) -> Result<RunId, RunIdError> {
        if (1..=RUN_ID_MAX).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        {
            Ok(RunId(s.to_string()))
        } else {
            Err(RunIdError(s.to_string()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The client order id of `intent` in this run.
    pub fn client_order_id(&self, symbol: &str, intent: IntentId) -> String {
        intent.client_order_id(&self.0, symbol)
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RunId {
    type Error = RunIdError;
    fn try_from(s: String) -> Result<RunId, RunIdError> {
        RunId::parse(&s)
    }
}

impl From<RunId> for String {
    fn from(r: RunId) -> String {
        r.0
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

/// A fill as a broker reported it: the execution plus the broker's ids. The execution id names this one
/// execution for good, so a fill seen twice (a stream reconnect, a backfill) is recognised and applied
/// once; the order id is the broker's id of the order it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerFill {
    /// The broker's order id.
    pub order_id: String,
    /// The broker's execution id (Alpaca: the stream's `execution_id`, the `FILL` activity's id tail).
    pub execution_id: String,
    pub fill: Fill,
}

/// Why an intent ended without (full) execution; the strategy keeps its trigger armed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEnd {
    Rejected(String),
    Cancelled,
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_fixed_width_sortable_and_never_repeat_on_an_account() {
        let a = RunId::from_start_ms(1_764_590_000_000);
        assert_eq!(a.as_str().len(), 9);
        assert_eq!(a.start_ms(), Some(1_764_590_000_000));
        let b = RunId::from_start_ms(1_764_590_000_001);
        assert!(a < b, "later starts sort later");
        // Same millisecond, or a clock that stepped back: the next run still gets a fresh, later id.
        let c = RunId::after(Some(&b), 1_764_590_000_001);
        let d = RunId::after(Some(&c), 1_000);
        assert!(b < c && c < d, "{b} {c} {d}");
        assert_eq!(RunId::after(None, 42), RunId::from_start_ms(42));
        assert!(RunId::parse("Abc").is_err() && RunId::parse("").is_err());
        assert!(RunId::parse("a-b").is_err());
        assert_eq!(
            serde_json::from_str::<RunId>("\"x y\"")
                .unwrap_err()
                .to_string(),
            "run id \"x y\" is not 1 to 13 characters of a-z and 0-9: use an id the store made"
        );
    }

    #[test]
    fn client_order_ids_round_trip_and_stay_within_alpacas_limit() {
        let run = RunId::from_start_ms(i64::MAX);
        let longest = run.client_order_id("ABCDEFGHIJ", IntentId(u64::MAX));
        assert!(longest.len() <= CLIENT_ORDER_ID_MAX, "{longest}");
        assert_eq!(longest.len(), 48);
        for (sym, n) in [("SPY", 1u64), ("BRK-B", 7), ("ABCDEFGHIJ", u64::MAX)] {
            let id = run.client_order_id(sym, IntentId(n));
            let p = ClientOrderId::parse(&id).unwrap();
            assert_eq!(
                (p.run, p.symbol.as_str(), p.intent),
                (run.clone(), sym, IntentId(n))
            );
        }
        for foreign in [
            "",
            "vt-",
            "manual-1",
            "vt-abc-SPY-",
            "vt-abc--3",
            "vt-ABC-SPY-1",
            "x-abc-SPY-1",
        ] {
            assert_eq!(ClientOrderId::parse(foreign), None, "{foreign}");
        }
    }
}
