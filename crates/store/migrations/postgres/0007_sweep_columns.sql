-- Vectura schema, migration 0007 (sweep_columns), Postgres.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

CREATE TABLE IF NOT EXISTS sweep_columns (
  run_id text NOT NULL,
  data text NOT NULL,
  PRIMARY KEY (run_id)
);
