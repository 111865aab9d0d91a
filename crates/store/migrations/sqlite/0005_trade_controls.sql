-- Vectura schema, migration 0005 (trade_controls), SQLite.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

CREATE TABLE IF NOT EXISTS at_trade_controls (
  symbol text NOT NULL,
  enabled integer NOT NULL CHECK (enabled IN (0, 1)),
  max_order_notional real,
  max_orders_per_day integer,
  max_daily_loss real,
  max_position_value real,
  halt_reason text,
  halted_at text,
  updated_at text DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (symbol)
);
