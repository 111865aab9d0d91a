//! Integration tests of vectura-emulator, in one binary (one link per crate keeps cold builds short).

mod alpaca_py;
mod faults;
mod openapi;
mod spec;
mod streams;
mod trading;
mod trading_spec;
