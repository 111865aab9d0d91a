//! Integration tests of vectura-store, in one binary (one link per crate keeps cold builds short).

mod runs;
mod store;
