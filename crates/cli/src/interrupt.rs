//! Ctrl-C (SIGINT) and SIGTERM during a sweep: the signal is noted and trips the job's cancel token
//! ([`token`]), so the sweep stops at its next row, its temporary files are removed and its
//! database run is marked as interrupted before the process exits with 128 + the signal's number
//! (130, 143), as a shell reports it.
//!
//! The handler only stores the signal number (the one thing a signal handler may safely do); a
//! second signal while the first is being handled ends the process at once.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal received (0: none yet).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The sweep was stopped by a signal; its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted(pub i32);

impl Interrupted {
    /// The signal's name, for messages.
    pub fn name(self) -> &'static str {
        match self.0 {
            libc::SIGINT => "SIGINT (Ctrl-C)",
            libc::SIGTERM => "SIGTERM",
            _ => "a signal",
        }
    }

    /// The exit code a shell gives a process ended by this signal.
    pub fn exit_code(self) -> u8 {
        (128 + self.0).clamp(0, 255) as u8
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted by {}: stopped before the end, no results file was written; run the sweep again",
            self.name()
        )
    }
}

impl std::error::Error for Interrupted {}

extern "C" fn on_signal(sig: libc::c_int) {
    if RECEIVED.swap(sig, Ordering::SeqCst) != 0 {
        // A second signal: the user insists. `_exit` is async-signal-safe; cleanup is skipped.
        unsafe { libc::_exit(128 + sig) }
    }
}

/// Catches SIGINT and SIGTERM from now on (for the rest of the process).
pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` only touches an atomic and calls `_exit`, both async-signal-safe;
        // `sa` is fully initialised (zeroed, then the handler and an empty mask set).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            // Interrupted system calls resume: the sweep notices the signal at its next row.
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The signal received since [`install`], if any.
pub fn received() -> Option<Interrupted> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(Interrupted(s)),
    }
}

/// A cancel token tripped by the signal received since [`install`]; its reason is the
/// [`Interrupted`] message, which the recorded run's error then carries.
pub fn token() -> vectura_jobs::CancelToken {
    vectura_jobs::CancelToken::with_source(|| {
        received().map(|i| vectura_jobs::Cancel {
            reason: i.to_string(),
            signal: Some(i.0),
        })
    })
}

/// The error that ends a job cancelled by a signal: [`Interrupted`] (its exit code 128 + the
/// signal), or the cancel's own reason when no signal was received.
pub fn cancelled(c: vectura_jobs::Cancel) -> anyhow::Error {
    match received() {
        Some(i) => i.into(),
        None => anyhow::anyhow!("{}", c.reason),
    }
}

/// The exit code for an error that is (or wraps) an interruption.
pub fn exit_code(e: &anyhow::Error) -> Option<u8> {
    e.chain()
        .find_map(|c| c.downcast_ref::<Interrupted>())
        .map(|i| i.exit_code())
}
