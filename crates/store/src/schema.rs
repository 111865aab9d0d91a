//! The schema, defined once for both backends.
//!
//! Every table and index is described here as data ([`MIGRATIONS`]); [`render`] turns a migration into
//! SQLite or Postgres DDL. The files under `crates/store/migrations/{sqlite,postgres}/` (which
//! `sqlx::migrate!` embeds) are generated from these definitions and must not be edited by hand: the
//! test `schema::tests::migration_files_are_generated_from_the_definitions` fails when they differ, and
//! `VECTURA_BLESS=1 cargo test -p vectura-store --lib schema` rewrites them. The two dialects differ only
//! in column types and one default:
//!
//! | kind | Postgres | SQLite |
//! |---|---|---|
//! | text | `text` | `text` |
//! | date | `date` | `text` (`YYYY-MM-DD`) |
//! | blob | `bytea` | `blob` |
//! | json | `jsonb` | `text` |
//! | timestamp | `timestamptz` | `text` (RFC 3339 or `YYYY-MM-DD HH:MM:SS`, UTC) |
//! | int | `integer` | `integer` |
//! | bigint | `bigint` | `integer` |
//! | double | `double precision` | `real` |
//! | default now | `now()` | `CURRENT_TIMESTAMP` |
//!
//! Every statement is `CREATE … IF NOT EXISTS`, so the Postgres DDL pasted into Supabase's SQL editor
//! ([`schema_sql_postgres`]) and the migration run on start can both happen, in either order.
//!
//! To change the schema, append a [`Migration`] (never edit an applied one: sqlx checks their
//! checksums), then bless the files.

/// A SQL dialect the store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The migrations directory (relative to the crate) holding this dialect's generated files.
    pub fn dir(self) -> &'static str {
        match self {
            Dialect::Sqlite => "migrations/sqlite",
            Dialect::Postgres => "migrations/postgres",
        }
    }

    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "Postgres",
        }
    }
}

/// A column's kind, mapped to a type per dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Text,
    Date,
    Blob,
    Json,
    Timestamp,
    Int,
    BigInt,
    Double,
}

impl Ty {
    /// The type as written in DDL.
    pub fn sql(self, d: Dialect) -> &'static str {
        match (d, self) {
            (_, Ty::Text) => "text",
            (Dialect::Postgres, Ty::Date) => "date",
            (Dialect::Postgres, Ty::Blob) => "bytea",
            (Dialect::Postgres, Ty::Json) => "jsonb",
            (Dialect::Postgres, Ty::Timestamp) => "timestamptz",
            (Dialect::Postgres, Ty::Int) => "integer",
            (Dialect::Postgres, Ty::BigInt) => "bigint",
            (Dialect::Postgres, Ty::Double) => "double precision",
            (Dialect::Sqlite, Ty::Date | Ty::Json | Ty::Timestamp) => "text",
            (Dialect::Sqlite, Ty::Blob) => "blob",
            (Dialect::Sqlite, Ty::Int | Ty::BigInt) => "integer",
            (Dialect::Sqlite, Ty::Double) => "real",
        }
    }

    /// The type as Postgres reports it (`format_type`), to check an existing table.
    pub fn pg_reported(self) -> &'static str {
        match self {
            Ty::Timestamp => "timestamp with time zone",
            other => other.sql(Dialect::Postgres),
        }
    }
}

/// A column default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnDefault {
    None,
    /// The time of the insert.
    Now,
    /// An empty JSON array.
    EmptyJsonArray,
    /// The number 0.
    Zero,
}

/// One column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: Ty,
    pub not_null: bool,
    pub default: ColumnDefault,
    /// A portable CHECK expression.
    pub check: Option<&'static str>,
}

const fn col(name: &'static str, ty: Ty) -> Column {
    Column {
        name,
        ty,
        not_null: false,
        default: ColumnDefault::None,
        check: None,
    }
}

const fn req(name: &'static str, ty: Ty) -> Column {
    Column {
        not_null: true,
        ..col(name, ty)
    }
}

const fn with_default(c: Column, default: ColumnDefault) -> Column {
    Column { default, ..c }
}

const fn with_check(c: Column, check: &'static str) -> Column {
    Column {
        check: Some(check),
        ..c
    }
}

/// One table.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub primary_key: &'static [&'static str],
}

/// One index.
#[derive(Debug, Clone, Copy)]
pub struct Index {
    pub name: &'static str,
    pub table: &'static str,
    pub columns: &'static [&'static str],
}

/// One migration: tables then indexes, created if missing.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    /// The file-name description (`0001_initial.sql`).
    pub name: &'static str,
    pub tables: &'static [Table],
    pub indexes: &'static [Index],
    /// Statements beyond creating tables and indexes (changing a table made by an earlier
    /// migration), per dialect, appended to the generated file as they are.
    pub raw: Option<Raw>,
}

/// A migration's hand-written statements, one text per dialect.
#[derive(Debug, Clone, Copy)]
pub struct Raw {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl Raw {
    /// The text of dialect `d`.
    pub fn sql(&self, d: Dialect) -> &'static str {
        match d {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.postgres,
        }
    }
}

impl Migration {
    /// The file name sqlx reads the version and description from.
    pub fn file_name(&self) -> String {
        format!("{:04}_{}.sql", self.version, self.name)
    }
}

use Ty::*;

/// Bars: one row per symbol and session day, `data` a `vectura_data::codec` blob (the seed's table).
const BT_BARS_DAILY: Table = Table {
    name: "bt_bars_daily",
    columns: &[
        req("symbol", Text),
        req("day", Date),
        req("data", Blob),
        req("records", Int),
        req("start_ts", BigInt),
        req("end_ts", BigInt),
        with_default(col("created_at", Timestamp), ColumnDefault::Now),
    ],
    primary_key: &["symbol", "day"],
};

/// Per-symbol span of stored days (the seed's table; `splits` mirrors the `splits` table in the seed's
/// `[{effective_date, split_factor}]` form).
const BT_SYMBOL_RANGES: Table = Table {
    name: "bt_symbol_ranges",
    columns: &[
        req("symbol", Text),
        col("have_from", Date),
        col("have_to", Date),
        col("first_available_day", Date),
        with_default(col("updated_at", Timestamp), ColumnDefault::Now),
        with_default(req("splits", Json), ColumnDefault::EmptyJsonArray),
        col("last_split_check", Date),
    ],
    primary_key: &["symbol"],
};

/// The outcome of the last fetch of each symbol-day; a session day with no `fetched` or `closed` row is
/// a gap.
const BT_DAY_STATUS: Table = Table {
    name: "bt_day_status",
    columns: &[
        req("symbol", Text),
        req("day", Date),
        with_check(
            req("status", Text),
            "status IN ('fetched', 'closed', 'failed')",
        ),
        col("error", Text),
        with_check(
            with_default(req("attempts", BigInt), ColumnDefault::Zero),
            "attempts >= 0",
        ),
        with_default(col("updated_at", Timestamp), ColumnDefault::Now),
    ],
    primary_key: &["symbol", "day"],
};

/// Splits per symbol, applied to raw bars when they are read.
const SPLITS: Table = Table {
    name: "splits",
    columns: &[
        req("symbol", Text),
        req("effective_date", Date),
        with_check(req("ratio", Double), "ratio > 0"),
        req("source", Text),
        with_default(req("fetched_at", Timestamp), ColumnDefault::Now),
    ],
    primary_key: &["symbol", "effective_date"],
};

const AT_TRADE_SUMMARY: Table = Table {
    name: "at_trade_summary",
    columns: &[
        req("symbol", Text),
        req("max_cash", Double),
        req("max_equity", Double),
        col("splits_last_updated_at", Date),
        with_default(req("splits", Json), ColumnDefault::EmptyJsonArray),
        with_default(req("pdt_days", Json), ColumnDefault::EmptyJsonArray),
        col("session_start", Timestamp),
        col("session_end", Timestamp),
    ],
    primary_key: &["symbol"],
};

const AT_TRADE_HISTORY: Table = Table {
    name: "at_trade_history",
    columns: &[
        req("id", Text),
        req("symbol", Text),
        req("timestamp", Timestamp),
        with_check(req("trade_type", Text), "trade_type IN ('buy', 'sell')"),
        req("shares", Double),
        req("price", Double),
        col("close_trade_id", Text),
    ],
    primary_key: &["id"],
};

const AT_TO_BUY: Table = Table {
    name: "at_to_buy",
    columns: &[
        req("symbol", Text),
        req("id", Text),
        req("at_price", Double),
        req("below_or_higher", Text),
    ],
    primary_key: &["symbol", "id"],
};

const AT_TO_SELL: Table = Table {
    name: "at_to_sell",
    columns: &[
        req("symbol", Text),
        req("id", Text),
        req("at_price", Double),
        req("below_or_higher", Text),
        req("shares", Double),
        req("trade_id", Text),
    ],
    primary_key: &["symbol", "id"],
};

const AT_OPEN_TRADES: Table = Table {
    name: "at_open_trades",
    columns: &[
        req("symbol", Text),
        req("id", Text),
        req("timestamp", Timestamp),
        req("price", Double),
        req("shares", Double),
    ],
    primary_key: &["symbol", "id"],
};

const AT_ALGO_CONFIG: Table = Table {
    name: "at_algo_config",
    columns: &[
        req("symbol", Text),
        req("capital_pct", Double),
        req("buy_below_pct", Double),
        req("sell_above_pct", Double),
        req("buy_after_sell_pct", Double),
        req("cash_floor", Double),
        req("order_gap_pct", Double),
        with_default(col("updated_at", Timestamp), ColumnDefault::Now),
    ],
    primary_key: &["symbol"],
};

/// Order intents, stored before submission; updated as the broker reports.
const AT_ORDERS: Table = Table {
    name: "at_orders",
    columns: &[
        req("client_order_id", Text),
        req("symbol", Text),
        with_check(req("side", Text), "side IN ('buy', 'sell')"),
        req("qty", Double),
        req("status", Text),
        req("created_at", Timestamp),
        col("broker_order_id", Text),
        with_default(req("filled_qty", Double), ColumnDefault::Zero),
        col("filled_avg_price", Double),
        col("intent", Json),
        col("error", Text),
        with_default(col("updated_at", Timestamp), ColumnDefault::Now),
    ],
    primary_key: &["client_order_id"],
};

/// One parameter sweep (`vectura sweep`): what was swept and how far it got. `id` is made by the
/// client (see `Store::create_sweep_run`), so both dialects share one definition without sequences.
const SWEEP_RUNS: Table = Table {
    name: "sweep_runs",
    columns: &[
        req("id", Text),
        with_default(req("created_at", Timestamp), ColumnDefault::Now),
        with_default(req("symbols", Json), ColumnDefault::EmptyJsonArray),
        col("start_date", Date),
        col("end_date", Date),
        req("fill", Text),
        req("plan", Json),
        with_check(req("set_count", BigInt), "set_count >= 0"),
        with_check(
            req("status", Text),
            "status IN ('running', 'done', 'failed')",
        ),
        col("finished_at", Timestamp),
        col("error", Text),
    ],
    primary_key: &["id"],
};

/// One row per parameter set of a sweep: the set's parameters and metrics as JSON objects.
const SWEEP_RESULTS: Table = Table {
    name: "sweep_results",
    columns: &[
        req("run_id", Text),
        with_check(req("set_index", BigInt), "set_index >= 0"),
        req("params", Json),
        req("metrics", Json),
    ],
    primary_key: &["run_id", "set_index"],
};

/// Dashboard users (`vectura user set-password`): an Argon2id PHC string per user name.
const WEB_USERS: Table = Table {
    name: "web_users",
    columns: &[
        req("username", Text),
        req("password_hash", Text),
        with_check(req("updated_at_ms", BigInt), "updated_at_ms >= 0"),
    ],
    primary_key: &["username"],
};

/// Dashboard sessions, keyed by the SHA-256 (hex) of the cookie's secret so that a copy of the
/// database opens none; each with its CSRF token and an absolute expiry (Unix milliseconds).
const WEB_SESSIONS: Table = Table {
    name: "web_sessions",
    columns: &[
        req("id_hash", Text),
        req("username", Text),
        req("csrf_token", Text),
        with_check(req("created_at_ms", BigInt), "created_at_ms >= 0"),
        with_check(req("expires_at_ms", BigInt), "expires_at_ms >= 0"),
    ],
    primary_key: &["id_hash"],
};

/// Server jobs (backtests, sweeps and data fetches started from the dashboard; `fetch` is
/// allowed by migration 0008, which rebuilds the CHECK below: this definition is 0004's): the request as submitted, the
/// progress events seen so far, and the outcome, so a reload or a restart finds them.
const WEB_JOBS: Table = Table {
    name: "web_jobs",
    columns: &[
        req("id", Text),
        with_check(req("kind", Text), "kind IN ('backtest', 'sweep')"),
        req("name", Text),
        with_check(
            req("status", Text),
            "status IN ('queued', 'running', 'done', 'failed', 'cancelled')",
        ),
        req("request", Json),
        with_default(req("progress", Json), ColumnDefault::EmptyJsonArray),
        col("result", Json),
        col("error", Text),
        with_check(req("created_at_ms", BigInt), "created_at_ms >= 0"),
        col("started_at_ms", BigInt),
        col("finished_at_ms", BigInt),
    ],
    primary_key: &["id"],
};

/// One live run: a strategy instance trading one symbol under an account-level run id (the prefix of
/// its client order ids), with its complete state (`state`, a JSON snapshot in layout `format`). The
/// readable `at_to_buy`, `at_to_sell`, `at_open_trades` and `at_trade_history` rows are written from
/// the same state in the same transaction. `run_id` is made by the client (`Store::new_run_id`).
const AT_RUNS: Table = Table {
    name: "at_runs",
    columns: &[
        req("symbol", Text),
        req("run_id", Text),
        req("account", Text),
        req("strategy", Text),
        with_check(req("format", BigInt), "format >= 1"),
        req("state", Json),
        with_check(req("status", Text), "status IN ('active', 'ended')"),
        with_default(req("created_at", Timestamp), ColumnDefault::Now),
        with_default(col("updated_at", Timestamp), ColumnDefault::Now),
    ],
    primary_key: &["run_id"],
};

/// A live run's trade history, one row per trade in order (`seq` from 0), appended in the transaction
/// of the save that made the trade: the run's state (`at_runs.state`, format 2) holds the rest of its
/// snapshot and how many rows it has, so a save every bar writes no trade again. `trade` is the
/// strategy's own record (JSON), read back exactly; `at_trade_history` shows the same trades readably.
const AT_RUN_TRADES: Table = Table {
    name: "at_run_trades",
    columns: &[
        req("symbol", Text),
        req("run_id", Text),
        with_check(req("seq", BigInt), "seq >= 0"),
        req("trade", Json),
    ],
    primary_key: &["run_id", "seq"],
};

/// Every broker execution a run has applied, keyed by the broker's execution id and written in the
/// same transaction as the state it changed: a fill seen again (stream reconnect, backfill) is found
/// here and applied once.
const AT_EXECUTIONS: Table = Table {
    name: "at_executions",
    columns: &[
        req("symbol", Text),
        req("execution_id", Text),
        req("run_id", Text),
        req("client_order_id", Text),
        req("broker_order_id", Text),
        with_check(req("side", Text), "side IN ('buy', 'sell')"),
        req("qty", Double),
        req("price", Double),
        req("executed_at", Timestamp),
        with_default(col("applied_at", Timestamp), ColumnDefault::Now),
    ],
    primary_key: &["execution_id"],
};

/// Per-symbol trading controls of the live runtime: whether the symbol is traded at all (`enabled`,
/// 1 or 0), the risk limits (NULL: no limit), and a halt that survives restarts (`halt_reason` set:
/// halted, with what differs and how to resolve it). Kept beside `at_algo_config` rather than in it:
/// the schema generator creates tables and never alters one, and an applied migration is never changed.
const AT_TRADE_CONTROLS: Table = Table {
    name: "at_trade_controls",
    columns: &[
        req("symbol", Text),
        with_check(req("enabled", Int), "enabled IN (0, 1)"),
        col("max_order_notional", Double),
        col("max_orders_per_day", BigInt),
        col("max_daily_loss", Double),
        col("max_position_value", Double),
        col("halt_reason", Text),
        col("halted_at", Timestamp),
        with_default(col("updated_at", Timestamp), ColumnDefault::Now),
    ],
    primary_key: &["symbol"],
};

/// Every change made to a symbol's trading settings (the dashboard's algorithm page: a grid
/// parameter, the enabled flag, a risk limit, a halt or resume): who, when, the field, the old and
/// the new value as text. Written in the same transaction as the change.
const AT_ALGO_AUDIT: Table = Table {
    name: "at_algo_audit",
    columns: &[
        req("symbol", Text),
        req("id", Text),
        req("changed_at", Timestamp),
        req("username", Text),
        req("field", Text),
        col("old_value", Text),
        col("new_value", Text),
    ],
    primary_key: &["symbol", "id"],
};

/// A finished sweep's results by column (`SweepColumns` as JSON text, written when the run is
/// finished), so its heat maps and best sets are computed without reading and parsing every row.
const SWEEP_COLUMNS: Table = Table {
    name: "sweep_columns",
    columns: &[req("run_id", Text), req("data", Text)],
    primary_key: &["run_id"],
};

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        tables: &[
            BT_BARS_DAILY,
            BT_SYMBOL_RANGES,
            BT_DAY_STATUS,
            SPLITS,
            AT_TRADE_SUMMARY,
            AT_TRADE_HISTORY,
            AT_TO_BUY,
            AT_TO_SELL,
            AT_OPEN_TRADES,
            AT_ALGO_CONFIG,
            AT_ORDERS,
        ],
        indexes: &[
            Index {
                name: "idx_at_trade_history_symbol_timestamp",
                table: "at_trade_history",
                columns: &["symbol", "timestamp"],
            },
            Index {
                name: "idx_at_orders_symbol_status",
                table: "at_orders",
                columns: &["symbol", "status"],
            },
        ],
        raw: None,
    },
    Migration {
        version: 2,
        name: "sweeps",
        tables: &[SWEEP_RUNS, SWEEP_RESULTS],
        indexes: &[Index {
            name: "idx_sweep_runs_created_at",
            table: "sweep_runs",
            columns: &["created_at"],
        }],
        raw: None,
    },
    Migration {
        version: 3,
        name: "runs",
        tables: &[AT_RUNS, AT_EXECUTIONS],
        indexes: &[
            Index {
                name: "idx_at_runs_account_run_id",
                table: "at_runs",
                columns: &["account", "run_id"],
            },
            Index {
                name: "idx_at_runs_symbol_status",
                table: "at_runs",
                columns: &["symbol", "status"],
            },
            Index {
                name: "idx_at_executions_run_id",
                table: "at_executions",
                columns: &["run_id"],
            },
        ],
        raw: None,
    },
    Migration {
        version: 4,
        name: "web",
        tables: &[WEB_USERS, WEB_SESSIONS, WEB_JOBS],
        indexes: &[
            Index {
                name: "idx_web_sessions_expires_at_ms",
                table: "web_sessions",
                columns: &["expires_at_ms"],
            },
            Index {
                name: "idx_web_jobs_kind_created_at_ms",
                table: "web_jobs",
                columns: &["kind", "created_at_ms"],
            },
        ],
        raw: None,
    },
    Migration {
        version: 5,
        name: "trade_controls",
        tables: &[AT_TRADE_CONTROLS],
        indexes: &[],
        raw: None,
    },
    Migration {
        version: 6,
        name: "algo_audit",
        tables: &[AT_ALGO_AUDIT],
        indexes: &[Index {
            name: "idx_at_algo_audit_changed_at",
            table: "at_algo_audit",
            columns: &["changed_at"],
        }],
        raw: None,
    },
    Migration {
        version: 7,
        name: "sweep_columns",
        tables: &[SWEEP_COLUMNS],
        indexes: &[],
        raw: None,
    },
    Migration {
        version: 8,
        name: "web_jobs_fetch",
        tables: &[],
        indexes: &[],
        raw: Some(WEB_JOBS_FETCH),
    },
    Migration {
        version: 9,
        name: "live_page_indexes",
        tables: &[],
        indexes: &[
            // The trades page and its CSV, every symbol: newest first, ties by id (with the
            // symbol and side, a page's ids are read from the index alone).
            Index {
                name: "idx_at_trade_history_timestamp_id_symbol_trade_type",
                table: "at_trade_history",
                columns: &["timestamp", "id", "symbol", "trade_type"],
            },
            // The same for one symbol, and each symbol's last trade on the overview.
            Index {
                name: "idx_at_trade_history_symbol_timestamp_id_trade_type",
                table: "at_trade_history",
                columns: &["symbol", "timestamp", "id", "trade_type"],
            },
            // A closing trade's opening buy, from the index alone.
            Index {
                name: "idx_at_trade_history_id_symbol_trade_type_price_timestamp",
                table: "at_trade_history",
                columns: &["id", "symbol", "trade_type", "price", "timestamp"],
            },
            // The round trips' aggregate (and the trade count), from the index alone.
            Index {
                name: "idx_at_trade_history_symbol_close_trade_id_price_shares",
                table: "at_trade_history",
                columns: &["symbol", "close_trade_id", "price", "shares"],
            },
            // The newest orders, of every symbol and of one, in the page's order (newest first,
            // ties by symbol and client order id ascending), so no sort is needed.
            Index {
                name: "idx_at_orders_created_at_symbol_client_order_id",
                table: "at_orders",
                columns: &["created_at DESC", "symbol", "client_order_id"],
            },
            Index {
                name: "idx_at_orders_symbol_created_at_client_order_id",
                table: "at_orders",
                columns: &["symbol", "created_at DESC", "client_order_id"],
            },
        ],
        raw: None,
    },
    Migration {
        version: 10,
        name: "run_trades",
        tables: &[AT_RUN_TRADES],
        indexes: &[],
        raw: None,
    },
    Migration {
        version: 11,
        name: "byte_order_indexes",
        tables: &[],
        indexes: &[],
        raw: Some(BYTE_ORDER_INDEXES),
    },
];

/// Migration 0011: the live pages order trades by id, and orders by symbol and client order id, in
/// byte order (`COLLATE "C"` on Postgres, as Rust and SQLite compare text). An index in the
/// database's collation cannot serve that order (Postgres sorts every row before a deep page's
/// `OFFSET`), so Postgres gets 0009's ordering indexes again with those columns in "C". SQLite's
/// text already compares bytewise: 0009's indexes serve it, and it gets nothing.
const BYTE_ORDER_INDEXES: Raw = Raw {
    sqlite: "\n-- SQLite compares text bytewise: migration 0009's indexes already serve the byte order.\n",
    postgres: "\n\
CREATE INDEX IF NOT EXISTS idx_at_trade_history_timestamp_id_c_symbol_trade_type ON at_trade_history (timestamp, id COLLATE \"C\", symbol, trade_type);
CREATE INDEX IF NOT EXISTS idx_at_trade_history_symbol_timestamp_id_c_trade_type ON at_trade_history (symbol, timestamp, id COLLATE \"C\", trade_type);
CREATE INDEX IF NOT EXISTS idx_at_orders_created_at_symbol_c_client_order_id_c ON at_orders (created_at DESC, symbol COLLATE \"C\", client_order_id COLLATE \"C\");
CREATE INDEX IF NOT EXISTS idx_at_orders_symbol_created_at_client_order_id_c ON at_orders (symbol, created_at DESC, client_order_id COLLATE \"C\");
",
};

/// Migration 0008: `web_jobs.kind` also allows `fetch` (data fetches started from the dashboard).
/// SQLite cannot change a CHECK in place: the table is rebuilt (created anew, copied, the old one
/// dropped, the new one renamed, its index made again), inside the migration's transaction.
/// Postgres drops the column's constraint (named by Postgres's rule, `web_jobs_kind_check`) and
/// adds the new one; running it twice is harmless.
const WEB_JOBS_FETCH: Raw = Raw {
    sqlite: "\n\
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
",
    postgres: "\n\
ALTER TABLE web_jobs DROP CONSTRAINT IF EXISTS web_jobs_kind_check;
ALTER TABLE web_jobs ADD CONSTRAINT web_jobs_kind_check CHECK (kind IN ('backtest', 'sweep', 'fetch'));
",
};

/// Every table of the current schema, in creation order.
pub fn tables() -> impl Iterator<Item = &'static Table> {
    MIGRATIONS.iter().flat_map(|m| m.tables.iter())
}

fn render_default(d: ColumnDefault, ty: Ty, dialect: Dialect) -> Option<&'static str> {
    match (d, dialect) {
        (ColumnDefault::None, _) => None,
        (ColumnDefault::Now, Dialect::Postgres) => Some("now()"),
        (ColumnDefault::Now, Dialect::Sqlite) => Some("CURRENT_TIMESTAMP"),
        (ColumnDefault::EmptyJsonArray, Dialect::Postgres) if ty == Json => Some("'[]'::jsonb"),
        (ColumnDefault::EmptyJsonArray, _) => Some("'[]'"),
        (ColumnDefault::Zero, _) => Some("0"),
    }
}

/// The DDL of one table.
pub fn render_table(t: &Table, d: Dialect) -> String {
    let mut lines: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            let mut s = format!("  {} {}", c.name, c.ty.sql(d));
            if c.not_null {
                s.push_str(" NOT NULL");
            }
            if let Some(def) = render_default(c.default, c.ty, d) {
                s.push_str(" DEFAULT ");
                s.push_str(def);
            }
            if let Some(check) = c.check {
                s.push_str(&format!(" CHECK ({check})"));
            }
            s
        })
        .collect();
    lines.push(format!("  PRIMARY KEY ({})", t.primary_key.join(", ")));
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n);\n",
        t.name,
        lines.join(",\n")
    )
}

/// The DDL of one migration, as stored in its generated file.
pub fn render(m: &Migration, d: Dialect) -> String {
    let mut out = format!(
        "-- Vectura schema, migration {:04} ({}), {}.\n\
         -- Generated from crates/store/src/schema.rs: do not edit; change the definitions there and run\n\
         -- VECTURA_BLESS=1 cargo test -p vectura-store --lib schema\n",
        m.version,
        m.name,
        d.name()
    );
    for t in m.tables {
        out.push('\n');
        out.push_str(&render_table(t, d));
    }
    if !m.indexes.is_empty() {
        out.push('\n');
    }
    for i in m.indexes {
        out.push_str(&format!(
            "CREATE INDEX IF NOT EXISTS {} ON {} ({});\n",
            i.name,
            i.table,
            i.columns.join(", ")
        ));
    }
    if let Some(raw) = m.raw {
        out.push_str(raw.sql(d));
    }
    out
}

/// The full Postgres DDL (every migration, in order), for pasting into Supabase's SQL editor. Running
/// it before or after vectura's own migration is harmless: every statement creates only what is missing.
pub fn schema_sql_postgres() -> String {
    let mut out = String::from(
        "-- Vectura's tables for Postgres / Supabase: paste into the SQL editor and run.\n\
         -- vectura creates the same tables by itself on start; running both is harmless.\n",
    );
    for m in MIGRATIONS {
        out.push('\n');
        out.push_str(&render(m, Dialect::Postgres));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn crate_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn migration_files_are_generated_from_the_definitions() {
        let bless = std::env::var("VECTURA_BLESS").is_ok_and(|v| v == "1");
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            let dir = crate_dir().join(d.dir());
            let mut expected: Vec<String> = MIGRATIONS.iter().map(|m| m.file_name()).collect();
            expected.sort();
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                for m in MIGRATIONS {
                    std::fs::write(dir.join(m.file_name()), render(m, d)).unwrap();
                }
            }
            let mut present: Vec<String> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}: run with VECTURA_BLESS=1", dir.display()))
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            present.sort();
            assert_eq!(
                present,
                expected,
                "{}: the files differ from schema.rs's migrations: run VECTURA_BLESS=1 cargo test -p vectura-store --lib schema",
                dir.display()
            );
            for m in MIGRATIONS {
                let path = dir.join(m.file_name());
                let text = std::fs::read_to_string(&path).unwrap();
                assert_eq!(
                    text,
                    render(m, d),
                    "{} was edited by hand or schema.rs changed: run VECTURA_BLESS=1 cargo test -p vectura-store --lib schema (and never change an applied migration: add one)",
                    path.display()
                );
            }
        }
    }

    /// Table name → column names, read back from the DDL text (not from the definitions), so the two
    /// generated sets are compared as written.
    fn parse_tables(sql: &str) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        let mut current: Option<(String, Vec<String>)> = None;
        for line in sql.lines() {
            if let Some(rest) = line.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
                current = Some((rest.trim_end_matches(" (").to_string(), Vec::new()));
            } else if line == ");" {
                let (name, cols) = current.take().expect("a ); closes a CREATE TABLE");
                assert!(out.insert(name, cols).is_none(), "table created twice");
            } else if let Some((_, cols)) = current.as_mut() {
                let word = line.split_whitespace().next().unwrap_or_default();
                if word != "PRIMARY" {
                    cols.push(word.to_string());
                }
            }
        }
        out
    }

    #[test]
    fn both_dialects_define_the_same_tables_and_columns() {
        let read = |d: Dialect| {
            MIGRATIONS
                .iter()
                .map(|m| {
                    let text =
                        std::fs::read_to_string(crate_dir().join(d.dir()).join(m.file_name()))
                            .unwrap();
                    // The hand-written statements differ by dialect by design: only the
                    // generated part is compared.
                    match m.raw {
                        Some(raw) => text
                            .strip_suffix(raw.sql(d))
                            .expect("the file ends with its raw statements")
                            .to_string(),
                        None => text,
                    }
                })
                .collect::<String>()
        };
        let sqlite = parse_tables(&read(Dialect::Sqlite));
        let postgres = parse_tables(&read(Dialect::Postgres));
        assert_eq!(sqlite, postgres);
        let names: Vec<&str> = sqlite.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "at_algo_audit",
                "at_algo_config",
                "at_executions",
                "at_open_trades",
                "at_orders",
                "at_run_trades",
                "at_runs",
                "at_to_buy",
                "at_to_sell",
                "at_trade_controls",
                "at_trade_history",
                "at_trade_summary",
                "bt_bars_daily",
                "bt_day_status",
                "bt_symbol_ranges",
                "splits",
                "sweep_columns",
                "sweep_results",
                "sweep_runs",
                "web_jobs",
                "web_sessions",
                "web_users"
            ]
        );
        assert_eq!(
            sqlite["bt_bars_daily"],
            [
                "symbol",
                "day",
                "data",
                "records",
                "start_ts",
                "end_ts",
                "created_at"
            ]
        );
        assert_eq!(
            sqlite["bt_symbol_ranges"],
            [
                "symbol",
                "have_from",
                "have_to",
                "first_available_day",
                "updated_at",
                "splits",
                "last_split_check"
            ]
        );
        for (t, cols) in &sqlite {
            if t.starts_with("at_") && t != "at_orders" && t != "at_trade_history" {
                assert_eq!(cols[0], "symbol", "{t} is keyed by symbol first");
            }
        }
        // Line by line, the two dialects differ only in column types, two defaults and the header.
        let pg = read(Dialect::Postgres);
        let lite = read(Dialect::Sqlite);
        assert_eq!(pg.lines().count(), lite.lines().count());
        for (p, l) in pg.lines().zip(lite.lines()) {
            assert_eq!(
                to_sqlite(p),
                l,
                "the Postgres line {p:?} has no SQLite twin"
            );
        }
    }

    /// A Postgres DDL line with its type and defaults written the SQLite way.
    fn to_sqlite(line: &str) -> String {
        if line.starts_with("--") {
            return line.replace(Dialect::Postgres.name(), Dialect::Sqlite.name());
        }
        let Some(body) = line.strip_prefix("  ") else {
            return line.to_string();
        };
        let Some((name, rest)) = body.split_once(' ') else {
            return line.to_string();
        };
        const TYPES: [(&str, &str); 8] = [
            ("double precision", "real"),
            ("timestamptz", "text"),
            ("bytea", "blob"),
            ("jsonb", "text"),
            ("date", "text"),
            ("bigint", "integer"),
            ("integer", "integer"),
            ("text", "text"),
        ];
        for (pg, lite) in TYPES {
            if let Some(tail) = rest.strip_prefix(pg) {
                let tail = tail
                    .replace("DEFAULT now()", "DEFAULT CURRENT_TIMESTAMP")
                    .replace("'[]'::jsonb", "'[]'");
                return format!("  {name} {lite}{tail}");
            }
        }
        line.to_string()
    }

    /// What `vectura db schema` prints, read back statement by statement (not compared with
    /// `render`'s own output): every table of every migration with each column's Postgres type and
    /// NOT NULL, its primary key, every index on its columns, each statement `IF NOT EXISTS` (so
    /// pasting it twice, or after vectura's own migration, is harmless), and nothing of SQLite's.
    /// That it also runs on a real server is `store.rs`'s `postgres_schema_sql_runs_twice_*` test.
    #[test]
    fn postgres_schema_sql_creates_every_table_column_and_index() {
        let sql = schema_sql_postgres();
        let body: String = sql
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        let statements: Vec<&str> = body
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut indexes: BTreeMap<String, String> = BTreeMap::new();
        for st in &statements {
            if let Some(rest) = st.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
                let (name, cols) = rest
                    .split_once(" (")
                    .expect("a table's columns follow its name");
                let cols = cols
                    .trim()
                    .strip_suffix(')')
                    .expect("the column list closes");
                let lines = cols.split(",\n").map(|c| c.trim().to_string()).collect();
                assert!(
                    tables.insert(name.to_string(), lines).is_none(),
                    "{name} twice"
                );
            } else if let Some(rest) = st.strip_prefix("CREATE INDEX IF NOT EXISTS ") {
                let (name, on) = rest.split_once(" ON ").expect("CREATE INDEX name ON table");
                assert!(
                    indexes.insert(name.to_string(), on.to_string()).is_none(),
                    "{name} twice"
                );
            } else if st.starts_with("ALTER TABLE web_jobs DROP CONSTRAINT IF EXISTS ")
                || st.starts_with("ALTER TABLE web_jobs ADD CONSTRAINT ")
            {
                // 0008's constraint swap: dropped if there, then added (harmless twice).
            } else {
                panic!("a statement that is not CREATE … IF NOT EXISTS: {st:?}");
            }
        }
        let want_tables: Vec<&str> = MIGRATIONS
            .iter()
            .flat_map(|m| m.tables.iter().map(|t| t.name))
            .collect();
        let mut got_tables: Vec<&str> = tables.keys().map(String::as_str).collect();
        let mut sorted = want_tables.clone();
        sorted.sort_unstable();
        got_tables.sort_unstable();
        assert_eq!(got_tables, sorted, "the tables printed");
        for m in MIGRATIONS {
            for t in m.tables {
                let lines = &tables[t.name];
                assert_eq!(
                    lines.len(),
                    t.columns.len() + 1,
                    "{}: columns and the key",
                    t.name
                );
                for (line, c) in lines.iter().zip(t.columns) {
                    let want = format!("{} {}", c.name, c.ty.sql(Dialect::Postgres));
                    assert!(
                        line == &want || line.starts_with(&format!("{want} ")),
                        "{}: {line:?} is not column {want:?}",
                        t.name
                    );
                    assert_eq!(line.contains("NOT NULL"), c.not_null, "{}: {line}", t.name);
                }
                assert_eq!(
                    lines.last().unwrap(),
                    &format!("PRIMARY KEY ({})", t.primary_key.join(", ")),
                    "{}",
                    t.name
                );
            }
            for ix in m.indexes {
                assert_eq!(
                    indexes.get(ix.name).map(String::as_str),
                    Some(format!("{} ({})", ix.table, ix.columns.join(", ")).as_str()),
                    "index {} of migration {}",
                    ix.name,
                    m.version
                );
            }
        }
        // Indexes a dialect needs alone (0011's byte-order ones) are in the raw statements.
        let raw_indexes: usize = MIGRATIONS
            .iter()
            .filter_map(|m| m.raw)
            .map(|r| r.postgres.matches("CREATE INDEX IF NOT EXISTS ").count())
            .sum();
        assert_eq!(raw_indexes, 4, "0011's byte-order indexes");
        assert_eq!(
            indexes
                .get("idx_at_trade_history_timestamp_id_c_symbol_trade_type")
                .map(String::as_str),
            Some("at_trade_history (timestamp, id COLLATE \"C\", symbol, trade_type)")
        );
        let want_indexes: usize =
            MIGRATIONS.iter().map(|m| m.indexes.len()).sum::<usize>() + raw_indexes;
        assert_eq!(
            indexes.len(),
            want_indexes,
            "no index beyond the migrations'"
        );
        // Types and defaults Postgres has and SQLite's DDL would have instead.
        for sqlite_only in [" real", " blob", "CURRENT_TIMESTAMP", "AUTOINCREMENT"] {
            assert!(
                !body.contains(sqlite_only),
                "{sqlite_only} in the Postgres DDL"
            );
        }
        assert!(body.contains("data bytea NOT NULL"));
        assert!(body.contains("splits jsonb NOT NULL DEFAULT '[]'::jsonb"));
    }
}
