-- Vectura schema, migration 0004 (web), SQLite.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

CREATE TABLE IF NOT EXISTS web_users (
  username text NOT NULL,
  password_hash text NOT NULL,
  updated_at_ms integer NOT NULL CHECK (updated_at_ms >= 0),
  PRIMARY KEY (username)
);

CREATE TABLE IF NOT EXISTS web_sessions (
  id_hash text NOT NULL,
  username text NOT NULL,
  csrf_token text NOT NULL,
  created_at_ms integer NOT NULL CHECK (created_at_ms >= 0),
  expires_at_ms integer NOT NULL CHECK (expires_at_ms >= 0),
  PRIMARY KEY (id_hash)
);

CREATE TABLE IF NOT EXISTS web_jobs (
  id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('backtest', 'sweep')),
  name text NOT NULL,
  status text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  request text NOT NULL,
  progress text NOT NULL DEFAULT '[]',
  result text,
  error text,
  created_at_ms integer NOT NULL CHECK (created_at_ms >= 0),
  started_at_ms integer,
  finished_at_ms integer,
  PRIMARY KEY (id)
);

CREATE INDEX IF NOT EXISTS idx_web_sessions_expires_at_ms ON web_sessions (expires_at_ms);
CREATE INDEX IF NOT EXISTS idx_web_jobs_kind_created_at_ms ON web_jobs (kind, created_at_ms);
