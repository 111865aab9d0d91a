//! Integration tests of vectura-core, in one binary (one link per crate keeps cold builds short).

mod calendar;
