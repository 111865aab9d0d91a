//! Integration tests of vectura-broker's Alpaca client against the emulator, started in-process on
//! 127.0.0.1 (no internet), in one binary.

mod common;
mod faults;
mod rest;
mod secrets;
mod streams;
mod submit;
