//! Vectura's store: minute bars per symbol-day, stored ranges, per-day fetch status (gaps), splits, and
//! the live-trading `at_*` tables, in SQLite (the embedded default) or Postgres (Supabase works as is).
//!
//! ```no_run
//! # async fn demo() -> Result<(), vectura_store::StoreError> {
//! let store = vectura_store::Store::open("sqlite://vectura.db?mode=rwc").await?;
//! for r in store.ranges().await? {
//!     println!("{} {:?}..{:?}: {} days", r.symbol, r.have_from, r.have_to, r.days_stored);
//! }
//! # Ok(()) }
//! ```
//!
//! [`Store::open`] runs the migrations (generated from [`schema`]'s single set of definitions into
//! `migrations/sqlite` and `migrations/postgres`) and checks that every table has the columns this
//! version needs. Every change that touches more than one row runs in one transaction. Bars are
//! stored raw; splits live in their own table and are applied by the reader.
//!
//! Symbols are checked and upper-cased as [`vectura_core::Symbol`] does.

mod audit;
mod bars;
mod controls;
mod dashboard;
pub mod error;
mod live;
mod migrations;
mod runs;
pub mod schema;
mod sweeps;
mod types;
mod web;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, Row};

pub use crate::error::{mask_url, StoreError};
pub use crate::schema::{schema_sql_postgres, Dialect};
pub use crate::types::{market_of, SweepColumns};
pub use crate::types::{
    AlgoConfig, BuyTrigger, DayState, DayStatus, Gap, NewSweepRun, OpenLot, OrderRow, OrderUpdate,
    SellTrigger, SweepResult, SweepRun, SweepStatus, SymbolRange, TradeRecord, TradeSummary,
    Triggers,
};

pub use crate::audit::{AuditEntry, SymbolSettings};
pub use crate::controls::{RiskLimits, TradeControls};
pub use crate::dashboard::{
    RoundTripStats, TradeFilter, TradeLine, TradeTally, TradeVersion, IN_FLIGHT_STATUSES,
};
pub use crate::runs::{
    ExecutionRecord, RunState, RunView, SavedRun, StoredRun, FORMAT_TRADES_APART,
};
pub use crate::web::{JobStatus, WebJob, WebJobSummary, WebSession};

use crate::error::query_err;

const SQLITE_OPEN_FIX: &str = "check the path: its directory must exist and be writable (a missing file is created there unless the URL says ?mode=ro or ?mode=rw)";

/// How long opening a Postgres connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs `$body` with `$pool` bound to the backend's pool: the body is written once and type-checked
/// against each backend (the SQL uses only what both accept: `$n` parameters, `ON CONFLICT`, `CASE`).
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            $crate::Store::Sqlite($pool) => $body,
            $crate::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`: a deferred transaction that reads
/// and then writes fails at once with "database is locked" when another connection wrote in between
/// (the busy timeout cannot help it), while taking the write lock up front waits for it instead.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>>
           + Send;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<
        Output = Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error>,
    > + Send {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<
        Output = Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error>,
    > + Send {
        self.begin()
    }
}

/// A connection pool to the store's database. Cheap to clone (the pools are shared).
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Store {
    /// Opens the database at `url`, creates or updates its tables, and checks them.
    ///
    /// Accepts `sqlite://PATH` (a missing file is created, in an existing folder; `?mode=rw` or
    /// `?mode=ro` opens only an existing one), `sqlite::memory:` (one
    /// private in-memory database), and `postgres://…` / `postgresql://…` (sslmode and other options
    /// as libpq spells them in the URL, for example a Supabase connection string). On Postgres the
    /// tables go to the first schema of the search path; `?options=-c%20search_path%3DNAME` picks
    /// another (the tests give each run a schema of its own this way). Use Supabase's direct or
    /// session-mode connection string: the transaction-mode pooler (port 6543) does not keep the
    /// prepared statements sqlx relies on.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let url = url.trim();
        let masked = mask_url(url);
        let store = if url.starts_with("sqlite:") {
            let open_err = |source: sqlx::Error| StoreError::Open {
                url: masked.clone(),
                fix: SQLITE_OPEN_FIX,
                source,
            };
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            let mut opts = SqliteConnectOptions::from_str(url)
                .map_err(open_err)?
                .busy_timeout(Duration::from_secs(10));
            // A plain `sqlite://dir/new.db` creates the file, as Django and Freqtrade do with their
            // SQLite URLs; an explicit `mode=` (ro, rw) is the user's choice and kept.
            if !url.contains("mode=") {
                opts = opts.create_if_missing(true);
            }
            let pool = if memory {
                // Every connection to `:memory:` is its own database: keep exactly one, forever.
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    // A local connection cannot go stale: no ping round trip before every use.
                    .test_before_acquire(false)
                    .connect_with(opts)
                    .await
            } else {
                opts = opts
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
                connect_sqlite_file(opts).await
            }
            .map_err(open_err)?;
            Store::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url).map_err(|source| StoreError::Open {
                url: masked.clone(),
                fix: "check the URL's form: postgres://USER:PASSWORD@HOST:5432/DATABASE?sslmode=require (percent-encode special characters in the password)",
                source,
            })?;
            let open_err = |source: sqlx::Error| StoreError::Open {
                url: masked.clone(),
                fix: pg_open_fix(&source),
                source,
            };
            // One direct attempt first: the pool retries a refused connection until its timeout
            // and then reports only the timeout; this names the real cause at once.
            let probe =
                tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect_with(&opts))
                    .await
                    .unwrap_or_else(|_| {
                        Err(sqlx::Error::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                        )))
                    })
                    .map_err(open_err)?;
            probe.close().await.map_err(open_err)?;
            let pool = PgPoolOptions::new()
                .max_connections(5)
                .acquire_timeout(CONNECT_TIMEOUT)
                .connect_with(opts)
                .await
                .map_err(open_err)?;
            Store::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl { url: masked });
        };
        store.migrate_url(&masked).await?;
        Ok(store)
    }

    /// Which SQL dialect the store speaks.
    pub fn dialect(&self) -> Dialect {
        match self {
            Store::Sqlite(_) => Dialect::Sqlite,
            Store::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs the migrations not yet applied and checks the tables (done by [`Store::open`]; running it
    /// again is harmless).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.migrate_url("the store").await
    }

    async fn migrate_url(&self, url: &str) -> Result<(), StoreError> {
        let backend = self.dialect().name();
        let result = match migrations::migrator(self.dialect()).await {
            Ok(m) => match self {
                Store::Sqlite(p) => migrate_sqlite(&m, p).await,
                // sqlx takes a Postgres advisory lock around the whole migration (before it even
                // creates its bookkeeping table), so processes starting together apply each once.
                Store::Postgres(p) => m.run(p).await,
            },
            Err(e) => Err(e),
        };
        result.map_err(|source| StoreError::Migrate {
            backend,
            url: url.to_string(),
            fix: migrate_fix(&source),
            source,
        })?;
        self.verify_schema().await
    }

    /// Closes every connection (pending operations finish first).
    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await)
    }

    /// The columns (name, type as the database reports it) of each of vectura's tables that exists,
    /// in column order.
    pub async fn table_columns(
        &self,
    ) -> Result<BTreeMap<String, Vec<(String, String)>>, StoreError> {
        let mut out = BTreeMap::new();
        for t in schema::tables() {
            let err = || query_err("reading the columns of", t.name, "the schema");
            let cols: Vec<(String, String)> = match self {
                Store::Sqlite(p) => {
                    sqlx::query("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                        .bind(t.name)
                        .fetch_all(p)
                        .await
                        .map_err(err())?
                        .iter()
                        .map(|r| Ok((r.try_get("name")?, r.try_get("type")?)))
                        .collect::<Result<_, sqlx::Error>>()
                        .map_err(err())?
                }
                Store::Postgres(p) => sqlx::query(
                    "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type \
                     FROM pg_attribute a WHERE a.attrelid = to_regclass($1) \
                     AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                )
                .bind(t.name)
                .fetch_all(p)
                .await
                .map_err(err())?
                .iter()
                .map(|r| Ok((r.try_get("name")?, r.try_get("type")?)))
                .collect::<Result<_, sqlx::Error>>()
                .map_err(err())?,
            };
            if !cols.is_empty() {
                out.insert(t.name.to_string(), cols);
            }
        }
        Ok(out)
    }

    /// Checks that every table has every column this version uses (and, on Postgres, of the right
    /// type): a table made earlier by other SQL (the original seed's, for one) is named with the fix.
    async fn verify_schema(&self) -> Result<(), StoreError> {
        let actual = self.table_columns().await?;
        let recreate = |t: &str| {
            format!(
                "it was probably created by other SQL (the original seed's at_* tables have no symbol column): \
                 rename it (ALTER TABLE {t} RENAME TO {t}_old) and restart vectura to create it anew, then copy the rows over"
            )
        };
        for t in schema::tables() {
            let Some(cols) = actual.get(t.name) else {
                return Err(StoreError::Schema {
                    table: t.name.to_string(),
                    detail: "the table is missing after the migrations ran".to_string(),
                    fix: "check that the database user may create tables in the current schema (search_path), then restart vectura".to_string(),
                });
            };
            for c in t.columns {
                match cols.iter().find(|(n, _)| n == c.name) {
                    None => {
                        return Err(StoreError::Schema {
                            table: t.name.to_string(),
                            detail: format!("it has no column {}", c.name),
                            fix: recreate(t.name),
                        })
                    }
                    Some((_, ty)) if self.dialect() == Dialect::Postgres => {
                        let want = c.ty.pg_reported();
                        if ty != want {
                            return Err(StoreError::Schema {
                                table: t.name.to_string(),
                                detail: format!("column {} is {ty}, vectura needs {want}", c.name),
                                fix: format!(
                                    "ALTER TABLE {t} ALTER COLUMN {c} TYPE {w} USING {c}::{w}; or {r}",
                                    t = t.name,
                                    c = c.name,
                                    w = c.ty.sql(Dialect::Postgres),
                                    r = recreate(t.name)
                                ),
                            });
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }
}

/// Runs the SQLite migrations inside one `BEGIN IMMEDIATE` transaction. sqlx takes no lock on
/// SQLite: processes opening a new database together each saw no migration applied, each applied
/// them, and all but one failed on `UNIQUE constraint failed: _sqlx_migrations.version`. With the
/// write lock taken first, the others wait (busy timeout) and then find everything applied. sqlx
/// applies each migration in a savepoint of this transaction; the whole commits at once.
/// Opens a file database's pool, retrying while another process holds the lock.
///
/// A connection that comes back to the pool inside a transaction is closed (SQLite rolls it back)
/// instead of kept: sqlx 0.8 starts `BEGIN IMMEDIATE` and then awaits a check of it, and a caller
/// cancelled in between (a dropped future, a timeout) leaves an open write transaction that no
/// `Transaction` will ever end. Kept idle in the pool, it held the write lock, and every other
/// connection, this process's and others', failed with "database is locked" after the busy timeout.
///
/// Switching a new file to WAL takes an exclusive lock, and SQLite answers "database is locked" at
/// once, without waiting out the busy timeout, when two connections would deadlock on it: with
/// several processes opening one new database together, all but one can lose that race.
async fn connect_sqlite_file(opts: SqliteConnectOptions) -> Result<SqlitePool, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + SQLITE_BUSY_RETRY_FOR;
    let mut wait = Duration::from_millis(10);
    loop {
        match SqlitePoolOptions::new()
            .max_connections(4)
            // A local file's connection cannot go stale: no ping round trip (a hand-off to the
            // connection's worker thread) before every query and transaction.
            .test_before_acquire(false)
            .after_release(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
            .connect_with(opts.clone())
            .await
        {
            Err(e) if sqlite_busy(&e) && tokio::time::Instant::now() + wait < deadline => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(250));
            }
            other => return other,
        }
    }
}

/// How long opening a file database keeps retrying a locked file.
const SQLITE_BUSY_RETRY_FOR: Duration = Duration::from_secs(10);

/// SQLITE_BUSY or SQLITE_LOCKED, in any of their extended forms.
fn sqlite_busy(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

async fn migrate_sqlite(
    migrator: &sqlx::migrate::Migrator,
    p: &SqlitePool,
) -> Result<(), sqlx::migrate::MigrateError> {
    let mut tx = p.begin_write().await?;
    migrator.run_direct(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

fn pg_open_fix(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Database(d) => match d.code().as_deref() {
            Some("28P01") | Some("28000") => {
                "check the user and password in DATABASE_URL (Supabase: Project Settings → Database)"
            }
            Some("3D000") => "the database does not exist: create it or fix its name at the end of DATABASE_URL",
            _ => "check DATABASE_URL and that the user may connect",
        },
        sqlx::Error::Tls(_) => {
            "the TLS handshake failed: check sslmode in DATABASE_URL (sslmode=require for Supabase, sslmode=disable for a local server without TLS)"
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => {
            "check the host and port in DATABASE_URL and that Postgres is running and reachable"
        }
        sqlx::Error::Configuration(_) => "check the URL's form: postgres://USER:PASSWORD@HOST:5432/DATABASE",
        _ => "check DATABASE_URL and that Postgres is running",
    }
}

fn migrate_fix(e: &sqlx::migrate::MigrateError) -> &'static str {
    use sqlx::migrate::MigrateError as M;
    match e {
        M::VersionMissing(_) => {
            "the database was migrated by a newer vectura: upgrade vectura (or use another database)"
        }
        M::VersionMismatch(_) => {
            "an applied migration differs from this vectura's: the database was migrated by another build; use a matching vectura"
        }
        M::Dirty(_) => {
            "a migration stopped half-way earlier: inspect the _sqlx_migrations table and the named migration, fix by hand, then retry"
        }
        _ => "check that the database user may create tables, then retry",
    }
}

/// Checks and upper-cases a symbol.
pub(crate) fn symbol_key(symbol: &str) -> Result<String, StoreError> {
    vectura_core::Symbol::new(symbol)
        .map(String::from)
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

/// Rejects NaN and infinities (SQLite would store NaN as NULL).
pub(crate) fn finite(table: &str, column: &str, target: &str, v: f64) -> Result<(), StoreError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{table}: {column} for {target} is {v}: give a finite number"
        )))
    }
}
