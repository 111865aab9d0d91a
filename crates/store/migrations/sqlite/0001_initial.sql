-- Vectura schema, migration 0001 (initial), SQLite.
-- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run
-- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema

CREATE TABLE IF NOT EXISTS bt_bars_daily (
  symbol text NOT NULL,
  day text NOT NULL,
  data blob NOT NULL,
  records integer NOT NULL,
  start_ts integer NOT NULL,
  end_ts integer NOT NULL,
  created_at text DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (symbol, day)
);

CREATE TABLE IF NOT EXISTS bt_symbol_ranges (
  symbol text NOT NULL,
  have_from text,
  have_to text,
  first_available_day text,
  updated_at text DEFAULT CURRENT_TIMESTAMP,
  splits text NOT NULL DEFAULT '[]',
  last_split_check text,
  PRIMARY KEY (symbol)
);

CREATE TABLE IF NOT EXISTS bt_day_status (
  symbol text NOT NULL,
  day text NOT NULL,
  status text NOT NULL CHECK (status IN ('fetched', 'closed', 'failed')),
  error text,
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  updated_at text DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (symbol, day)
);

CREATE TABLE IF NOT EXISTS splits (
  symbol text NOT NULL,
  effective_date text NOT NULL,
  ratio real NOT NULL CHECK (ratio > 0),
  source text NOT NULL,
  fetched_at text NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (symbol, effective_date)
);

CREATE TABLE IF NOT EXISTS at_trade_summary (
  symbol text NOT NULL,
  max_cash real NOT NULL,
  max_equity real NOT NULL,
  splits_last_updated_at text,
  splits text NOT NULL DEFAULT '[]',
  pdt_days text NOT NULL DEFAULT '[]',
  session_start text,
  session_end text,
  PRIMARY KEY (symbol)
);

CREATE TABLE IF NOT EXISTS at_trade_history (
  id text NOT NULL,
  symbol text NOT NULL,
  timestamp text NOT NULL,
  trade_type text NOT NULL CHECK (trade_type IN ('buy', 'sell')),
  shares real NOT NULL,
  price real NOT NULL,
  close_trade_id text,
  PRIMARY KEY (id)
);

CREATE TABLE IF NOT EXISTS at_to_buy (
  symbol text NOT NULL,
  id text NOT NULL,
  at_price real NOT NULL,
  below_or_higher text NOT NULL,
  PRIMARY KEY (symbol, id)
);

CREATE TABLE IF NOT EXISTS at_to_sell (
  symbol text NOT NULL,
  id text NOT NULL,
  at_price real NOT NULL,
  below_or_higher text NOT NULL,
  shares real NOT NULL,
  trade_id text NOT NULL,
  PRIMARY KEY (symbol, id)
);

CREATE TABLE IF NOT EXISTS at_open_trades (
  symbol text NOT NULL,
  id text NOT NULL,
  timestamp text NOT NULL,
  price real NOT NULL,
  shares real NOT NULL,
  PRIMARY KEY (symbol, id)
);

CREATE TABLE IF NOT EXISTS at_algo_config (
  symbol text NOT NULL,
  capital_pct real NOT NULL,
  buy_below_pct real NOT NULL,
  sell_above_pct real NOT NULL,
  buy_after_sell_pct real NOT NULL,
  cash_floor real NOT NULL,
  order_gap_pct real NOT NULL,
  updated_at text DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (symbol)
);

CREATE TABLE IF NOT EXISTS at_orders (
  client_order_id text NOT NULL,
  symbol text NOT NULL,
  side text NOT NULL CHECK (side IN ('buy', 'sell')),
  qty real NOT NULL,
  status text NOT NULL,
  created_at text NOT NULL,
  broker_order_id text,
  filled_qty real NOT NULL DEFAULT 0,
  filled_avg_price real,
  intent text,
  error text,
  updated_at text DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (client_order_id)
);

CREATE INDEX IF NOT EXISTS idx_at_trade_history_symbol_timestamp ON at_trade_history (symbol, timestamp);
CREATE INDEX IF NOT EXISTS idx_at_orders_symbol_status ON at_orders (symbol, status);
