//! Integration tests of vectura-broker, in one binary (one link per crate keeps cold builds short): the
//! Alpaca client against the emulator started in-process on 127.0.0.1 (no internet), and the simulated broker.

mod common;
mod faults;
mod fills;
mod rest;
mod secrets;
mod sim_common;
mod sim_faults;
mod sim_orders;
mod sim_parity;
mod streams;
mod submit;
