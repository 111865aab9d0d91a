-- Vectura schema, migration 0002 (sweeps), Postgres.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

CREATE TABLE IF NOT EXISTS sweep_runs (
  id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  symbols jsonb NOT NULL DEFAULT '[]'::jsonb,
  start_date date,
  end_date date,
  fill text NOT NULL,
  plan jsonb NOT NULL,
  set_count bigint NOT NULL CHECK (set_count >= 0),
  status text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
  finished_at timestamptz,
  error text,
  PRIMARY KEY (id)
);

CREATE TABLE IF NOT EXISTS sweep_results (
  run_id text NOT NULL,
  set_index bigint NOT NULL CHECK (set_index >= 0),
  params jsonb NOT NULL,
  metrics jsonb NOT NULL,
  PRIMARY KEY (run_id, set_index)
);

CREATE INDEX IF NOT EXISTS idx_sweep_runs_created_at ON sweep_runs (created_at);
