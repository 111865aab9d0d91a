-- Vectura schema, migration 0002 (sweeps), SQLite.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

CREATE TABLE IF NOT EXISTS sweep_runs (
  id text NOT NULL,
  created_at text NOT NULL DEFAULT CURRENT_TIMESTAMP,
  symbols text NOT NULL DEFAULT '[]',
  start_date text,
  end_date text,
  fill text NOT NULL,
  plan text NOT NULL,
  set_count integer NOT NULL CHECK (set_count >= 0),
  status text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
  finished_at text,
  error text,
  PRIMARY KEY (id)
);

CREATE TABLE IF NOT EXISTS sweep_results (
  run_id text NOT NULL,
  set_index integer NOT NULL CHECK (set_index >= 0),
  params text NOT NULL,
  metrics text NOT NULL,
  PRIMARY KEY (run_id, set_index)
);

CREATE INDEX IF NOT EXISTS idx_sweep_runs_created_at ON sweep_runs (created_at);
