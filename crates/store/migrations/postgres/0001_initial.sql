-- Vectura schema, migration 0001 (initial), Postgres.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

CREATE TABLE IF NOT EXISTS bt_bars_daily (
  symbol text NOT NULL,
  day date NOT NULL,
  data bytea NOT NULL,
  records integer NOT NULL,
  start_ts bigint NOT NULL,
  end_ts bigint NOT NULL,
  created_at timestamptz DEFAULT now(),
  PRIMARY KEY (symbol, day)
);

CREATE TABLE IF NOT EXISTS bt_symbol_ranges (
  symbol text NOT NULL,
  have_from date,
  have_to date,
  first_available_day date,
  updated_at timestamptz DEFAULT now(),
  splits jsonb NOT NULL DEFAULT '[]'::jsonb,
  last_split_check date,
  PRIMARY KEY (symbol)
);

CREATE TABLE IF NOT EXISTS bt_day_status (
  symbol text NOT NULL,
  day date NOT NULL,
  status text NOT NULL CHECK (status IN ('fetched', 'closed', 'failed')),
  error text,
  attempts bigint NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  updated_at timestamptz DEFAULT now(),
  PRIMARY KEY (symbol, day)
);

CREATE TABLE IF NOT EXISTS splits (
  symbol text NOT NULL,
  effective_date date NOT NULL,
  ratio double precision NOT NULL CHECK (ratio > 0),
  source text NOT NULL,
  fetched_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (symbol, effective_date)
);

CREATE TABLE IF NOT EXISTS at_trade_summary (
  symbol text NOT NULL,
  max_cash double precision NOT NULL,
  max_equity double precision NOT NULL,
  splits_last_updated_at date,
  splits jsonb NOT NULL DEFAULT '[]'::jsonb,
  pdt_days jsonb NOT NULL DEFAULT '[]'::jsonb,
  session_start timestamptz,
  session_end timestamptz,
  PRIMARY KEY (symbol)
);

CREATE TABLE IF NOT EXISTS at_trade_history (
  id text NOT NULL,
  symbol text NOT NULL,
  timestamp timestamptz NOT NULL,
  trade_type text NOT NULL CHECK (trade_type IN ('buy', 'sell')),
  shares double precision NOT NULL,
  price double precision NOT NULL,
  close_trade_id text,
  PRIMARY KEY (id)
);

CREATE TABLE IF NOT EXISTS at_to_buy (
  symbol text NOT NULL,
  id text NOT NULL,
  at_price double precision NOT NULL,
  below_or_higher text NOT NULL,
  PRIMARY KEY (symbol, id)
);

CREATE TABLE IF NOT EXISTS at_to_sell (
  symbol text NOT NULL,
  id text NOT NULL,
  at_price double precision NOT NULL,
  below_or_higher text NOT NULL,
  shares double precision NOT NULL,
  trade_id text NOT NULL,
  PRIMARY KEY (symbol, id)
);

CREATE TABLE IF NOT EXISTS at_open_trades (
  symbol text NOT NULL,
  id text NOT NULL,
  timestamp timestamptz NOT NULL,
  price double precision NOT NULL,
  shares double precision NOT NULL,
  PRIMARY KEY (symbol, id)
);

CREATE TABLE IF NOT EXISTS at_algo_config (
  symbol text NOT NULL,
  capital_pct double precision NOT NULL,
  buy_below_pct double precision NOT NULL,
  sell_above_pct double precision NOT NULL,
  buy_after_sell_pct double precision NOT NULL,
  cash_floor double precision NOT NULL,
  order_gap_pct double precision NOT NULL,
  updated_at timestamptz DEFAULT now(),
  PRIMARY KEY (symbol)
);

CREATE TABLE IF NOT EXISTS at_orders (
  client_order_id text NOT NULL,
  symbol text NOT NULL,
  side text NOT NULL CHECK (side IN ('buy', 'sell')),
  qty double precision NOT NULL,
  status text NOT NULL,
  created_at timestamptz NOT NULL,
  broker_order_id text,
  filled_qty double precision NOT NULL DEFAULT 0,
  filled_avg_price double precision,
  intent jsonb,
  error text,
  updated_at timestamptz DEFAULT now(),
  PRIMARY KEY (client_order_id)
);

CREATE INDEX IF NOT EXISTS idx_at_trade_history_symbol_timestamp ON at_trade_history (symbol, timestamp);
CREATE INDEX IF NOT EXISTS idx_at_orders_symbol_status ON at_orders (symbol, status);
