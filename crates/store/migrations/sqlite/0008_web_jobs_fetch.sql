-- Vectura schema, migration 0008 (web_jobs_fetch), SQLite.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

CREATE TABLE web_jobs_0008 (
  id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('backtest', 'sweep', 'fetch')),
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
INSERT INTO web_jobs_0008 (id, kind, name, status, request, progress, result, error, created_at_ms, started_at_ms, finished_at_ms)
  SELECT id, kind, name, status, request, progress, result, error, created_at_ms, started_at_ms, finished_at_ms FROM web_jobs;
DROP TABLE web_jobs;
ALTER TABLE web_jobs_0008 RENAME TO web_jobs;
CREATE INDEX IF NOT EXISTS idx_web_jobs_kind_created_at_ms ON web_jobs (kind, created_at_ms);
