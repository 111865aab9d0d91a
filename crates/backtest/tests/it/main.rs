//! Integration tests of vectura-backtest, in one binary (one link per crate keeps cold builds short).

mod engine;
mod metrics;
mod ranges;
