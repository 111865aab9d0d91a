mod parity;
mod sim;
