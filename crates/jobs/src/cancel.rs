//! Cancelling a running job: a [`CancelToken`] shared by the job and whoever may stop it. A job
//! checks it between rows (a sweep) or between steps (a backtest) and ends with
//! [`crate::JobOutcome::Cancelled`], after removing its temporary files and marking its recorded
//! run failed with the token's reason.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Where a token learns of a cancel it was not told of directly: polled by
/// [`CancelToken::is_cancelled`], returning the reason once cancelled (for example the CLI's
/// signal flag, which a signal handler may set but a handler cannot lock a mutex to report).
pub type CancelSource = dyn Fn() -> Option<Cancel> + Send + Sync;

/// Why a job was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cancel {
    /// For the person and the recorded run's error (e.g. `interrupted by SIGTERM: …`).
    pub reason: String,
    /// The signal that asked for it, if one did: passed on to a sweep's shard processes (SIGTERM
    /// otherwise).
    pub signal: Option<i32>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    why: Mutex<Option<Cancel>>,
    source: Option<Box<CancelSource>>,
}

/// A cancel flag and its reason; clones share it.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<Inner>);

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.0.cancelled.load(Ordering::SeqCst))
            .finish()
    }
}

impl CancelToken {
    /// A token that only [`CancelToken::cancel`] trips.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// A token that is also tripped when `source` returns a reason.
    pub fn with_source(source: impl Fn() -> Option<Cancel> + Send + Sync + 'static) -> CancelToken {
        CancelToken(Arc::new(Inner {
            source: Some(Box::new(source)),
            ..Inner::default()
        }))
    }

    /// Asks the job to stop, for `reason` (the first reason given is kept).
    pub fn cancel(&self, reason: impl Into<String>) {
        self.trip(Cancel {
            reason: reason.into(),
            signal: None,
        });
    }

    fn trip(&self, c: Cancel) {
        let mut why = self.0.why.lock().unwrap_or_else(|p| p.into_inner());
        if why.is_none() {
            *why = Some(c);
        }
        self.0.cancelled.store(true, Ordering::SeqCst);
    }

    /// Whether the job was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        if self.0.cancelled.load(Ordering::SeqCst) {
            return true;
        }
        match self.0.source.as_ref().and_then(|s| s()) {
            Some(c) => {
                self.trip(c);
                true
            }
            None => false,
        }
    }

    /// The cancel, once asked for.
    pub fn cancelled(&self) -> Option<Cancel> {
        if !self.is_cancelled() {
            return None;
        }
        self.0.why.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
