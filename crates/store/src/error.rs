//! [`StoreError`]: every way the store can fail, each said on one line naming the table, the symbol
//! and day where one is involved, the problem, and what to do about it.

use chrono::NaiveDate;
use vectura_data::codec::CodecError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database URL {url:?} is not supported: use sqlite://PATH (a file, created when missing), sqlite::memory: or postgres://USER:PASSWORD@HOST:5432/DB (a Supabase connection string works as is)")]
    UnsupportedUrl { url: String },

    #[error("cannot open the database {url}: {source}: {fix}")]
    Open {
        /// The URL with any password masked.
        url: String,
        fix: &'static str,
        #[source]
        source: sqlx::Error,
    },

    #[error("migrating the {backend} database {url} failed: {source}: {fix}")]
    Migrate {
        backend: &'static str,
        url: String,
        fix: &'static str,
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    #[error("table {table} does not match what vectura needs: {detail}: {fix}")]
    Schema {
        table: String,
        detail: String,
        fix: String,
    },

    #[error("{op} {table} for {target} failed: {source}: {fix}")]
    Query {
        /// What was being done ("writing", "reading", ...).
        op: &'static str,
        table: &'static str,
        /// The symbol, day or order the operation was about.
        target: String,
        fix: &'static str,
        #[source]
        source: sqlx::Error,
    },

    #[error("bt_bars_daily: the stored bars of {symbol} on {day} cannot be decoded: {source}")]
    Decode {
        symbol: String,
        day: NaiveDate,
        #[source]
        source: CodecError,
    },

    #[error("bt_bars_daily: the stored bars of {symbol} on {day} start at or before the end of the previous stored day: the day holds another day's bars; fetch it again (put_day replaces it)")]
    Overlap { symbol: String, day: NaiveDate },

    #[error("{table}: a stored row for {target} holds {detail}: correct or delete that row")]
    BadRow {
        table: &'static str,
        target: String,
        detail: String,
    },

    #[error("{0}")]
    Invalid(String),

    #[error("at_orders: an order with client_order_id {client_order_id:?} is already stored: an intent is stored once; use update_order for later changes")]
    DuplicateOrder { client_order_id: String },

    #[error("at_orders: no order with client_order_id {client_order_id:?} is stored: store it with insert_order_intent before updating it")]
    UnknownOrder { client_order_id: String },

    #[error("at_runs: saving run {run_id} was stopped before its commit: nothing of it was written (the caller's hook asked to stop)")]
    Interrupted { run_id: String },

    #[error("at_executions: execution {execution_id:?} was applied before: a fill seen again (stream reconnect, backfill) is skipped; nothing of this save was written")]
    DuplicateExecution { execution_id: String },

    #[error("sweep_runs: no sweep run with id {id:?} is stored: create it with create_sweep_run first (list runs with sweep_runs)")]
    UnknownSweepRun { id: String },

    #[error("sweep_runs: the sweep run {id:?} is already {status}: rows are added and a run finished only while it is running; start a new run")]
    SweepRunFinished { id: String, status: &'static str },
}

/// What to do about a failed query, by the kind of failure.
pub(crate) fn fix_for(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => {
            "check that the database is running and reachable at DATABASE_URL, then retry"
        }
        sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::Decode(_) => {
            "the table's columns do not match this vectura: restart it to run the migrations, or compare the table with `vectura db schema --postgres`"
        }
        sqlx::Error::Database(d) => {
            if d.is_unique_violation() {
                "two rows share a key (a duplicate in the input, or a row already stored): nothing of this change was written; remove the duplicate"
            } else if d.is_check_violation() || d.is_foreign_key_violation() {
                "a value breaks the table's constraints: nothing of this change was written; correct the input"
            } else {
                "nothing of this change was written: check the database's permissions and that its tables were created by vectura's migrations (restart vectura), then retry"
            }
        }
        _ => "nothing of this change was written: check the database, then retry",
    }
}

/// Builds the `map_err` closure for a query: operation, table, and what it was about.
pub(crate) fn query_err(
    op: &'static str,
    table: &'static str,
    target: impl Into<String>,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    let target = target.into();
    move |source| StoreError::Query {
        op,
        table,
        target,
        fix: fix_for(&source),
        source,
    }
}

/// The URL with the password (between `user:` and `@`) replaced by `***`, for messages.
pub fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_only() {
        assert_eq!(
            mask_url("postgresql://postgres:s3cr@t@db.x.supabase.co:5432/postgres"),
            "postgresql://postgres:***@db.x.supabase.co:5432/postgres"
        );
        assert_eq!(
            mask_url("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert_eq!(
            mask_url("sqlite:///tmp/a.db?mode=rwc"),
            "sqlite:///tmp/a.db?mode=rwc"
        );
        assert_eq!(mask_url("sqlite::memory:"), "sqlite::memory:");
    }
}
