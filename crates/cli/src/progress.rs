//! A job's progress on the terminal: a spinner while bars load, a bar while sets run; nothing when
//! stderr is not a terminal (so piped and tested output is unchanged).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;
use vectura_jobs::{Progress, ProgressSink, Stage};

/// The terminal's view of one job.
#[derive(Clone)]
pub struct Spinner {
    pb: ProgressBar,
}

/// Draws a job's events on its [`Spinner`]: loading as a spinner message, running rows as a bar.
struct Sink {
    pb: ProgressBar,
    /// Whether the bar shows counts (a sweep's rows) rather than a spinner.
    counting: bool,
}

impl ProgressSink for Sink {
    fn report(&self, p: &Progress) {
        if self.counting && p.stage == Stage::WorkingOnChunk {
            self.pb.set_length(p.total);
            self.pb.set_position(p.current);
        } else if !self.counting {
            self.pb.set_message(p.message.clone());
        }
    }
}

impl Spinner {
    /// A spinner with the elapsed time (hidden when stderr is not a terminal).
    pub fn new() -> Spinner {
        let pb = ProgressBar::new_spinner();
        if std::io::stderr().is_terminal() {
            pb.set_draw_target(ProgressDrawTarget::stderr());
            pb.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or(ProgressStyle::default_spinner()),
            );
            pb.enable_steady_tick(Duration::from_millis(100));
        } else {
            pb.set_draw_target(ProgressDrawTarget::hidden());
        }
        Spinner { pb }
    }

    /// A bar of sets done (hidden when stderr is not a terminal).
    pub fn sets() -> Spinner {
        let pb = ProgressBar::new(0);
        if std::io::stderr().is_terminal() {
            pb.set_draw_target(ProgressDrawTarget::stderr());
            pb.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} sets  {per_sec}  ETA {eta}")
                    .unwrap_or(ProgressStyle::default_bar()),
            );
        } else {
            pb.set_draw_target(ProgressDrawTarget::hidden());
        }
        Spinner { pb }
    }

    /// The sink that draws on it.
    pub fn sink(&self) -> Arc<dyn ProgressSink> {
        let counting = !self.is_spinner();
        Arc::new(Sink {
            pb: self.pb.clone(),
            counting,
        })
    }

    fn is_spinner(&self) -> bool {
        // A spinner has no length.
        self.pb.length().is_none()
    }

    /// Clears it from the terminal.
    pub fn finish(&self) {
        self.pb.finish_and_clear();
    }
}
