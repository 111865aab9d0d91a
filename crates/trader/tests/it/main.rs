mod parity;
mod risk;
mod sim;
mod support;
