//! Integration tests of vectura-broker, in one binary (one link per crate keeps cold builds short).

mod sim_common;
mod sim_faults;
mod sim_orders;
mod sim_parity;
