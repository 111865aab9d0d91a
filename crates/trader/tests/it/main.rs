mod parity;
mod risk;
mod support;
