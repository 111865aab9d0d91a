-- Vectura schema, migration 0003 (runs), SQLite.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

CREATE TABLE IF NOT EXISTS at_runs (
  symbol text NOT NULL,
  run_id text NOT NULL,
  account text NOT NULL,
  strategy text NOT NULL,
  format integer NOT NULL CHECK (format >= 1),
  state text NOT NULL,
  status text NOT NULL CHECK (status IN ('active', 'ended')),
  created_at text NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at text DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (run_id)
);

CREATE TABLE IF NOT EXISTS at_executions (
  symbol text NOT NULL,
  execution_id text NOT NULL,
  run_id text NOT NULL,
  client_order_id text NOT NULL,
  broker_order_id text NOT NULL,
  side text NOT NULL CHECK (side IN ('buy', 'sell')),
  qty real NOT NULL,
  price real NOT NULL,
  executed_at text NOT NULL,
  applied_at text DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (execution_id)
);

CREATE INDEX IF NOT EXISTS idx_at_runs_account_run_id ON at_runs (account, run_id);
CREATE INDEX IF NOT EXISTS idx_at_runs_symbol_status ON at_runs (symbol, status);
CREATE INDEX IF NOT EXISTS idx_at_executions_run_id ON at_executions (run_id);
