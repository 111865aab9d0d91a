//! Vectura's backtest engine: replay, fill models, portfolio, PDT, contributions and metrics.

// `!(x > 0.0)` is deliberate throughout: NaN must fail every price and cash check.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod config;
pub mod engine;
pub mod fill;
pub mod kernel;
pub mod market;
pub mod metrics;
pub mod pdt;
pub mod result;
pub mod series;
pub mod sweep;

pub use config::{BacktestConfig, Commission, ConfigError, Contributions, FillModel, PdtMode};
pub use engine::{run, run_until, Checkpoint, Uninterrupted};
pub use market::Market;
pub use metrics::Metrics;
pub use result::BacktestResult;
