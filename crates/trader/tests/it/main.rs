mod calendar;
mod parity;
mod risk;
mod sim;
mod splits;
mod support;
mod webhook;
