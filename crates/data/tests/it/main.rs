//! Integration tests of vectura-data, in one binary (one link per crate keeps cold builds short).

mod bad_input;
mod codec;
mod formats;
mod proptests;
mod providers;
mod fixtures;
