//! Vectura's core domain: bars, symbols, orders and fills, splits and the NYSE calendar.
//!
//! This crate does no I/O and never reads the clock: every instant it sees is passed in, so the same
//! code serves backtests, sweeps and the live runtime deterministically.

pub mod bar;
pub mod calendar;
pub mod order;
pub mod qty;
pub mod seams;
pub mod split;
pub mod symbol;
pub mod time;
pub mod validate;

pub use bar::{Bar, BarError, BarSeries};
pub use order::{
    BrokerFill, ClientOrderId, Fill, IntentId, OrderEnd, OrderIntent, OrderKind, RunId, RunIdError,
    Side,
};
pub use qty::floor_dp;
pub use seams::{Clock, Feed, ReplayClock, ReplayFeed};
pub use split::{Split, SplitError};
pub use symbol::{Symbol, SymbolError};
