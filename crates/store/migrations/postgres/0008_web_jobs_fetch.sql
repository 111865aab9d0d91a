-- Vectura schema, migration 0008 (web_jobs_fetch), Postgres.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

ALTER TABLE web_jobs DROP CONSTRAINT IF EXISTS web_jobs_kind_check;
ALTER TABLE web_jobs ADD CONSTRAINT web_jobs_kind_check CHECK (kind IN ('backtest', 'sweep', 'fetch'));
