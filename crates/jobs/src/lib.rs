//! Backtests and sweeps as jobs that a command line or a server can run: the requests they take
//! ([`backtest::BacktestRequest`], [`sweep::SweepRequest`] with its [`Market`]s), loading bars
//! (files, the bundled SPY bars, the store), recording sweeps in the database, distributed shards
//! and their merge.
//!
//! Every job takes a [`JobContext`]: a tokio [`Handle`](tokio::runtime::Handle) for its I/O, a
//! [`ProgressSink`] and a [`CancelToken`]. A job is synchronous, CPU-bound work (rayon): run it on
//! a blocking thread (`tokio::task::spawn_blocking` in a server, the main thread of the CLI); it
//! waits on the handle for its database and object-store calls, so it must not be called from an
//! async task itself. No function here builds a runtime. A cancelled job ends with
//! [`JobOutcome::Cancelled`] after removing its temporary files and marking its recorded run
//! failed with the cancel's reason.

// `!(x > 0.0)` is deliberate throughout: NaN must fail every price and cash check.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod backtest;
pub mod bundled;
pub mod cancel;
pub mod config;
pub mod data;
pub mod error;
pub mod out_file;
pub mod progress;
pub mod shards;
pub mod sweep;

use std::sync::Arc;

pub use backtest::{BacktestDone, BacktestRequest, Compat, Prepared, Session, StrategyKind};
pub use cancel::{Cancel, CancelToken};
pub use config::{StoreAccess, StoreLocation};
pub use error::JobError;
pub use progress::{NoProgress, Progress, ProgressSink, Stage};
pub use sweep::{PreparedSweep, SweepRequest};
pub use vectura_backtest::Market;

/// How a job ended when it did not fail (in JSON: `{"done": …}` or `{"cancelled": {…}}`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobOutcome<T> {
    /// It ran to the end.
    Done(T),
    /// It was cancelled through its [`CancelToken`]; what it recorded is marked failed with this
    /// reason, and no partial output file is left.
    Cancelled(Cancel),
}

impl<T> JobOutcome<T> {
    /// The result, when done.
    pub fn done(self) -> Option<T> {
        match self {
            JobOutcome::Done(t) => Some(t),
            JobOutcome::Cancelled(_) => None,
        }
    }
}

/// What every job runs with.
#[derive(Clone)]
pub struct JobContext {
    /// The runtime the job's database and object-store calls run on (the caller's; a
    /// multi-thread runtime, whose workers drive the I/O while the job's thread waits).
    pub runtime: tokio::runtime::Handle,
    /// Where progress goes.
    pub progress: Arc<dyn ProgressSink>,
    /// Checked between rows and steps.
    pub cancel: CancelToken,
    /// The database: bars of a `symbol` without `data` files, and where sweeps are recorded.
    pub store: StoreAccess,
}

impl JobContext {
    /// A context on `runtime` with no progress sink, a fresh token and the store from the
    /// environment.
    pub fn new(runtime: tokio::runtime::Handle) -> JobContext {
        JobContext {
            runtime,
            progress: Arc::new(NoProgress),
            cancel: CancelToken::new(),
            store: StoreAccess::FromEnv,
        }
    }

    /// Sends one progress event.
    pub(crate) fn report(
        &self,
        stage: Stage,
        message: impl Into<String>,
        current: u64,
        total: u64,
    ) {
        self.progress
            .report(&Progress::new(stage, message, current, total));
    }

    /// Waits for `f` on the job's runtime (the job runs on a blocking thread).
    pub(crate) fn wait<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}
