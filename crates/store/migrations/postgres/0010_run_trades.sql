-- Vectura schema, migration 0010 (run_trades), Postgres.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

CREATE TABLE IF NOT EXISTS at_run_trades (
  symbol text NOT NULL,
  run_id text NOT NULL,
  seq bigint NOT NULL CHECK (seq >= 0),
  trade jsonb NOT NULL,
  PRIMARY KEY (run_id, seq)
);
