//! Strategies: the [`Strategy`] trait that backtests, sweeps and the live runtime drive bar by bar,
//! the grid strategy of the original Vectura ([`grid`]) and an SMA cross ([`sma`]).
//!
//! The seam (DESIGN.md §3): a strategy turns a bar into order intents and changes its lots and triggers
//! only when told of a fill. A fill may come at once (backtest), later (next-open fills, live), in parts,
//! or never (reject, cancel); an intent that ends unfilled leaves its trigger armed.

// `!(x > 0.0)` is deliberate throughout: NaN must fail every price and cash check.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod grid;
pub mod join;
pub mod run;
pub mod sma;

use serde::{Deserialize, Serialize};
use vectura_core::{Fill, IntentId, OrderEnd, OrderIntent};

/// A number for an error message, as a user wrote it: plain, or in exponent form where plain would run
/// to dozens of digits (`1e308`, not 309 of them).
pub fn show_number(x: f64) -> String {
    if x.is_finite() && x != 0.0 && !(1e-6..1e15).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// Which prices of a bar a strategy decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Eval {
    /// Decide on the close (the `close` and `next-open` fill models, and live bars).
    Close,
    /// Decide on the bar's range: a trigger fires when low/high reaches it, at the trigger price or at the
    /// open when the bar opened beyond it (the `touch` fill model).
    Touch,
}

/// One bar as a strategy sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tick {
    /// Bar start, Unix seconds UTC.
    pub ts: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub eval: Eval,
}

impl Tick {
    /// A tick where every price is `p` (close-only feeds, live snapshots).
    pub fn at(ts: i64, p: f64) -> Tick {
        Tick {
            ts,
            open: p,
            high: p,
            low: p,
            close: p,
            eval: Eval::Close,
        }
    }
}

/// What the venue's account looks like to the strategy when it sizes an intent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Account {
    /// Cash available for new buys (cash less what pending buys have reserved).
    pub cash: f64,
    /// Equity marked at this bar before its trades (what risk rules such as PDT read).
    pub equity: f64,
}

/// The venue's veto on sells (the PDT rule in backtests; none live since 2026-07-06).
pub trait SellGate {
    /// May a sell of a lot opened at `lot_opened` (Unix s) go out at `now`?
    fn allow_sell(&self, lot_opened: i64, now: i64) -> bool;
}

/// A gate that allows every sell.
pub struct AllowAll;

impl SellGate for AllowAll {
    #[inline]
    fn allow_sell(&self, _: i64, _: i64) -> bool {
        true
    }
}

/// A strategy driven bar by bar by the backtest engine, a sweep or the live trader.
///
/// Per bar the driver calls [`Strategy::on_bar`] (unless the bar is inside [`Strategy::quiet_band`]), then
/// [`Strategy::next_intent`] until it returns `None`. An intent filled at once is reported with
/// [`Strategy::on_fill`] before the next `next_intent`, so each is sized from the cash the previous left.
pub trait Strategy {
    /// A short name for reports (`grid`, `sma-cross`).
    fn name(&self) -> &'static str;

    /// Prices strictly inside `(lo, hi)` fire nothing and change no state, so a driver may skip
    /// [`Strategy::on_bar`] for a bar whose low is above `lo` and whose high is below `hi`. `None`: the
    /// strategy must see every bar (indicators). The band may depend only on the strategy's state and the
    /// account's cash: drivers re-query it after every fill, order end, cash change or `on_bar` call.
    fn quiet_band(&self, account: &Account) -> Option<(f64, f64)>;

    /// Evaluates a bar: builds the intents it wants from a snapshot of its state.
    fn on_bar(&mut self, tick: &Tick, account: &Account, gate: &dyn SellGate);

    /// The next intent for the current bar, sized against `account` as it is now.
    fn next_intent(&mut self, account: &Account, gate: &dyn SellGate) -> Option<OrderIntent>;

    /// A (possibly partial) execution of one of this strategy's intents.
    fn on_fill(&mut self, fill: &Fill);

    /// An intent ended without (further) fills; whatever it was for stays armed.
    fn on_order_end(&mut self, intent: IntentId, end: &OrderEnd);

    /// An intent whose order the strategy wants cancelled (its reason to exist is gone), each asked for
    /// once; a driver sends the cancel and keeps reporting the order's fills and end as usual. Backtests
    /// may ignore it. Strategies that never cancel return `None`.
    fn next_cancel(&mut self) -> Option<IntentId> {
        None
    }

    /// The strategy's state as JSON-ready data (triggers, lots, history).
    fn state(&self) -> serde_json::Value;

    /// Trigger lines for charts, in creation order (strategies without triggers have none).
    fn trigger_lines(&self) -> Vec<grid::TriggerLine> {
        Vec::new()
    }
}
