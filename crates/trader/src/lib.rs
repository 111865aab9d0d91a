//! Vectura's live trading runtime (issue 17): per enabled symbol, on each closed regular-session minute
//! bar, the same grid code as the backtest decides; its intents become broker orders; fills update the
//! strategy exactly once; and a start reconciles everything against the broker, halting what it
//! cannot explain.
//!
//! The order of durable steps is what makes it safe with money (DESIGN.md §5):
//! 1. an intent is saved with its client order id together with the strategy snapshot that has the
//!    advanced intent counter, in one transaction ([`vectura_store::Store::save_run_with_order`]);
//! 2. then it is submitted (idempotent at the broker by that client order id);
//! 3. every fill is saved with the snapshot it produced and its execution id, in one transaction
//!    (a fill seen twice is applied once).
//!
//! A crash between any two steps leaves a state [`Trader::start`] repairs: see [`runtime`] for the
//! rules (an intent saved but never sent is sent while its bar is the current one, else dropped and
//! its trigger re-armed).

pub mod check;
pub mod clock;
pub mod demo;
pub mod error;
pub mod notify;
pub mod ops;
pub mod parity;
pub mod replay;
pub mod risk;
pub mod runtime;
pub mod schedule;
pub mod session;
pub mod venue;

pub use clock::{Clock, WallClock};
pub use error::{CrashPoint, TraderError};
pub use notify::{Event, Notifier, WebhookConfig};
pub use runtime::{
    ControlChanges, CrashHook, SplitFeed, StepReport, SymbolStatus, Trader, TraderConfig,
};
