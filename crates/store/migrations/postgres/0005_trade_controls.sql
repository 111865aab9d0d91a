-- Vectura schema, migration 0005 (trade_controls), Postgres.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

CREATE TABLE IF NOT EXISTS at_trade_controls (
  symbol text NOT NULL,
  enabled integer NOT NULL CHECK (enabled IN (0, 1)),
  max_order_notional double precision,
  max_orders_per_day bigint,
  max_daily_loss double precision,
  max_position_value double precision,
  halt_reason text,
  halted_at timestamptz,
  updated_at timestamptz DEFAULT now(),
  PRIMARY KEY (symbol)
);
