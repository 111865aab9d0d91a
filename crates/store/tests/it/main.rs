//! Integration tests of vectura-store, in one binary (one link per crate keeps cold builds short).

mod cancelled;
mod dashboard;
mod migrate_race;
mod runs;
mod store;
