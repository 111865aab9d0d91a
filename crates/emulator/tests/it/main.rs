//! Integration tests of vectura-emulator, in one binary (one link per crate keeps cold builds short).

mod faults;
mod spec;
