//! Integration tests of vectura-cli, in one binary (one link per crate keeps cold builds short).

mod backtest_json;
mod bad_input;
mod calendar_cli;
mod charts;
mod common;
mod data;
mod golden;
mod hostile_files;
mod interrupt;
mod merge_checks;
mod serve;
mod sma_oracle;
mod small_defects;
mod sweep;
mod trade_ops;
mod trade_replay;
mod writers;
