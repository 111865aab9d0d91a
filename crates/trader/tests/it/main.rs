mod parity;
