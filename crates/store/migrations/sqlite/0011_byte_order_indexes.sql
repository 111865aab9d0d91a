-- Vectura schema, migration 0011 (byte_order_indexes), SQLite.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

-- SQLite compares text bytewise: migration 0009's indexes already serve the byte order.
