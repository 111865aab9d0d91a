-- Vectura schema, migration 0011 (byte_order_indexes), Postgres.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

CREATE INDEX IF NOT EXISTS idx_at_trade_history_timestamp_id_c_symbol_trade_type ON at_trade_history (timestamp, id COLLATE "C", symbol, trade_type);
CREATE INDEX IF NOT EXISTS idx_at_trade_history_symbol_timestamp_id_c_trade_type ON at_trade_history (symbol, timestamp, id COLLATE "C", trade_type);
CREATE INDEX IF NOT EXISTS idx_at_orders_created_at_symbol_c_client_order_id_c ON at_orders (created_at DESC, symbol COLLATE "C", client_order_id COLLATE "C");
CREATE INDEX IF NOT EXISTS idx_at_orders_symbol_created_at_client_order_id_c ON at_orders (symbol, created_at DESC, client_order_id COLLATE "C");
