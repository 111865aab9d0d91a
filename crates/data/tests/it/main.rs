//! Integration tests of vectura-data, in one binary (one link per crate keeps cold builds short).

mod bad_input;
mod codec;
mod formats;
mod line_bound;
mod parquet_input;
mod proptests;
mod providers;
mod fixtures;
mod validation;
