//! Vectura's backtest engine: replay, fill models, portfolio, PDT, contributions and metrics.

pub mod config;
pub mod engine;
pub mod kernel;
pub mod metrics;
pub mod pdt;
pub mod result;
pub mod series;

pub use config::{BacktestConfig, Commission, ConfigError, Contributions, FillModel, PdtMode};
pub use engine::run;
pub use metrics::Metrics;
pub use result::BacktestResult;
