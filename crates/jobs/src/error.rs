//! [`JobError`]: every way a backtest or sweep job fails, each on one line naming the field or
//! object at fault and the fix, with the underlying error kept as its source.

use vectura_backtest::sweep::PlanError;
use vectura_backtest::ConfigError;
use vectura_data::LoadError;
use vectura_report::sweep::HeatError;
use vectura_store::StoreError;
use vectura_strategy::sma::SmaError;

/// The fix appended to every database error of a recorded sweep.
pub const RECORD_FIX: &str =
    "check DATABASE_URL / VECTURA_DATA_DIR, or pass --no-db to sweep without recording the run";

/// Why a job failed (a cancel is not an error: see [`crate::JobOutcome::Cancelled`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// A request field is out of range, malformed or inconsistent with another; `message` names
    /// it (as its CLI flag, `--start-date`) and the fix. `field` is the request's field name
    /// (`start_date`), for a form to show the message next to it.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },

    /// The request asks for bars that are not there (dates outside the data, a symbol without
    /// bars, a session without bars); the message says what the data holds.
    #[error("{message}")]
    NoBars { message: String },

    /// `--symbol` is not a ticker.
    #[error("--symbol")]
    Symbol(#[source] vectura_core::symbol::SymbolError),

    /// A bar of `file` does not follow the previous file's bars.
    #[error("{file}")]
    Bar {
        file: String,
        #[source]
        source: vectura_core::bar::BarError,
    },

    /// A row of the `--splits` file is not a valid split; `at` names the file, line and column.
    #[error("{at}")]
    Split {
        at: String,
        #[source]
        source: vectura_core::split::SplitError,
    },

    /// A bar file could not be read or holds a bad row.
    #[error(transparent)]
    Load(#[from] LoadError),

    /// A file could not be read or written; `context` names it and the fix.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// The configuration from the environment (`.env`, `DATABASE_URL`, the data directory).
    #[error(transparent)]
    Env(#[from] crate::config::EnvError),

    /// The bar store failed while loading bars.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// Recording a sweep in the database failed (the store's error follows as the source).
    #[error("recording the sweep in the database ({RECORD_FIX})")]
    Record(#[source] StoreError),

    /// Recording a sweep in the database stopped without a store error of its own.
    #[error("recording the sweep in the database: {detail}; {RECORD_FIX}")]
    RecordStopped { detail: String },

    /// The sweep's own error, with the database error that (often) caused it as its source.
    #[error("{sweep}")]
    SweepAndRecord {
        sweep: String,
        #[source]
        record: Box<JobError>,
    },

    /// The parameter plan is invalid, or a set could not run.
    #[error(transparent)]
    Plan(#[from] PlanError),

    /// The backtest configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The SMA cross's parameters are invalid.
    #[error(transparent)]
    Sma(#[from] SmaError),

    /// The sweep report's heat map cannot be drawn as asked.
    #[error(transparent)]
    Heat(#[from] HeatError),

    /// The sweep store (object store) failed; `context` names the object and the fix.
    #[error("{context}")]
    ObjectStore {
        context: String,
        #[source]
        source: object_store::Error,
    },

    /// `--store` is not a URL.
    #[error("--store {url:?} is not a URL (give file:///path or s3://bucket/prefix)")]
    StoreUrl {
        url: String,
        #[source]
        source: url::ParseError,
    },

    /// The sweep store's `plan.json` holds a plan a sweep from the flags could not have.
    #[error("plan.json in the sweep store is refused (it was changed after packing: pack the sweep again into a new prefix)")]
    PackedPlan(#[source] PlanError),

    /// The sweep store holds something this job refuses (a damaged or changed object, a missing
    /// shard, another sweep); the message names it and what to re-run.
    #[error("{message}")]
    Shards { message: String },

    /// A Parquet results file could not be written; `context` names it.
    #[error("{context}")]
    Parquet {
        context: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// An Arrow batch of a Parquet results file could not be built; `context` names it.
    #[error("{context}")]
    Arrow {
        context: String,
        #[source]
        source: arrow_schema::ArrowError,
    },

    /// A JSON document could not be written or read; `context` names it.
    #[error("{context}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },

    /// A local shard process failed or could not be started; the message says how to re-run it.
    #[error("{message}")]
    ShardProcess {
        message: String,
        #[source]
        source: Option<std::io::Error>,
    },

    /// Fetching bars failed (the store, or the provider refused in a way retrying cannot fix).
    #[error(transparent)]
    Fetch(vectura_fetch::FetchError),

    /// The market-data provider's client cannot be made (no credentials); the message says which
    /// variables to set.
    #[error("{source}")]
    Provider {
        #[source]
        source: vectura_data::alpaca::FetchError,
    },

    /// A Parquet bar file could not be read (the message names it).
    #[error("{source}")]
    ParquetFile {
        #[source]
        source: vectura_data::parquet_io::ParquetError,
    },

    /// Stored bars could not be written as Parquet to `output`.
    #[error("writing --output {output}: {source}")]
    ParquetWrite {
        output: String,
        #[source]
        source: vectura_data::parquet_io::ParquetError,
    },

    /// An error about one market of a several-market sweep, led by the market (`--symbol AAPL`).
    #[error("{market}")]
    InMarket {
        market: String,
        #[source]
        source: Box<JobError>,
    },
}

impl JobError {
    /// A refused request field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> JobError {
        JobError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// A refusal of the sweep store's contents.
    pub fn shards(message: impl Into<String>) -> JobError {
        JobError::Shards {
            message: message.into(),
        }
    }

    /// An I/O failure with what was being done and the fix.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> JobError {
        JobError::Io {
            context: context.into(),
            source,
        }
    }

    /// The request field at fault, when the error is about one (also inside a market's error).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            JobError::Invalid { field, .. } => Some(field),
            JobError::Heat(h) => Some(h.field),
            JobError::Symbol(_) => Some("symbol"),
            JobError::Split { .. } => Some("splits"),
            JobError::StoreUrl { .. } => Some("store"),
            JobError::InMarket { source, .. } => source.field(),
            _ => None,
        }
    }
}

/// Runs `f` in the JSON `context` ("writing plan.json").
pub(crate) fn json_err(context: impl Into<String>) -> impl FnOnce(serde_json::Error) -> JobError {
    let context = context.into();
    move |source| JobError::Json { context, source }
}

/// An error and its sources on one line, `outer: inner: …` (what anyhow's `{:#}` prints), for a
/// recorded run's error text.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
