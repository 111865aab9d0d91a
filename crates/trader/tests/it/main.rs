mod parity;
mod risk;
mod support;
mod sim;
