//! Integration tests of vectura-fetch, in one binary (one link per crate keeps cold builds short).

mod fetch;
mod secrets;
