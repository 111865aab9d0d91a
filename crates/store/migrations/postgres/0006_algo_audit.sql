-- Vectura schema, migration 0006 (algo_audit), Postgres.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

CREATE TABLE IF NOT EXISTS at_algo_audit (
  symbol text NOT NULL,
  id text NOT NULL,
  changed_at timestamptz NOT NULL,
  username text NOT NULL,
  field text NOT NULL,
  old_value text,
  new_value text,
  PRIMARY KEY (symbol, id)
);

CREATE INDEX IF NOT EXISTS idx_at_algo_audit_changed_at ON at_algo_audit (changed_at);
