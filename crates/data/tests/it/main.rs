//! Integration tests of vectura-data, in one binary (one link per crate keeps cold builds short).

mod bad_input;
mod codec;
mod fixtures;
mod formats;
mod line_bound;
mod parquet_input;
mod proptests;
mod providers;
mod validation;
