-- Vectura schema, migration 0009 (live_page_indexes), SQLite.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

CREATE INDEX IF NOT EXISTS idx_at_trade_history_timestamp_id_symbol_trade_type ON at_trade_history (timestamp, id, symbol, trade_type);
CREATE INDEX IF NOT EXISTS idx_at_trade_history_symbol_timestamp_id_trade_type ON at_trade_history (symbol, timestamp, id, trade_type);
CREATE INDEX IF NOT EXISTS idx_at_trade_history_id_symbol_trade_type_price_timestamp ON at_trade_history (id, symbol, trade_type, price, timestamp);
CREATE INDEX IF NOT EXISTS idx_at_trade_history_symbol_close_trade_id_price_shares ON at_trade_history (symbol, close_trade_id, price, shares);
CREATE INDEX IF NOT EXISTS idx_at_orders_created_at_symbol_client_order_id ON at_orders (created_at DESC, symbol, client_order_id);
CREATE INDEX IF NOT EXISTS idx_at_orders_symbol_created_at_client_order_id ON at_orders (symbol, created_at DESC, client_order_id);
