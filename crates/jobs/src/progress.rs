//! What a running job tells its caller: the original's progress stages (original-behaviour.md
//! §2.12) with counts, sent to a [`ProgressSink`] (a terminal spinner, a server's event stream).

use serde::{Deserialize, Serialize};

/// A job's stage, named as the original's progress events name it (`snake_case` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Loading and checking the bars, building the configuration (`current`/`total`: markets).
    InitializeBacktest,
    /// Searching for a symbol's first available day (fetches; reserved for jobs that download).
    SearchingFirstAvailableDay,
    /// Downloading the days before the stored range (calendar days; reserved for downloads).
    DownloadingBeforeRange,
    /// Downloading the days after the stored range (calendar days; reserved for downloads).
    DownloadingAfterRange,
    /// Running: a backtest's bars (`current` 0 before, `total` after), a sweep's rows (sets done of
    /// all), a shard's rows, the shard processes finished of a local distributed sweep.
    WorkingOnChunk,
    /// Computing metrics (a backtest's engine computes them with the run; sent once it is done).
    CalculatingMetrics,
    /// Putting results together: writing files and reports, merging shards.
    AccumulatingChunks,
    /// The job finished (not sent for a failed or cancelled job).
    Completed,
}

impl Stage {
    /// The stage's name as the original's events spell it (`working_on_chunk`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::InitializeBacktest => "initialize_backtest",
            Stage::SearchingFirstAvailableDay => "searching_first_available_day",
            Stage::DownloadingBeforeRange => "downloading_before_range",
            Stage::DownloadingAfterRange => "downloading_after_range",
            Stage::WorkingOnChunk => "working_on_chunk",
            Stage::CalculatingMetrics => "calculating_metrics",
            Stage::AccumulatingChunks => "accumulating_chunks",
            Stage::Completed => "completed",
        }
    }
}

/// One progress event: the stage, a line for a person, and how far along (`current` of `total`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub stage: Stage,
    pub message: String,
    pub current: u64,
    pub total: u64,
}

impl Progress {
    /// An event of `stage` at `current` of `total`.
    pub fn new(stage: Stage, message: impl Into<String>, current: u64, total: u64) -> Progress {
        Progress {
            stage,
            message: message.into(),
            current,
            total,
        }
    }

    /// How far along, 0 to 1 (1 when `total` is 0: nothing to do is done).
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            (self.current as f64 / self.total as f64).clamp(0.0, 1.0)
        }
    }

    /// The original's `progress` field: `min(100, round(current / total × 100))`.
    pub fn percent(&self) -> u8 {
        (self.fraction() * 100.0).round().min(100.0) as u8
    }
}

/// Receives a job's progress events. Called from the job's thread (a sweep calls it once per
/// chunk of rows, not per row), so an implementation returns quickly: a server sends the event
/// into a channel; throttling, as the original's, is the receiver's choice.
pub trait ProgressSink: Send + Sync {
    /// One event.
    fn report(&self, p: &Progress);
}

/// A sink that drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn report(&self, _: &Progress) {}
}

/// Any `Fn(&Progress)` closure is a sink.
impl<F: Fn(&Progress) + Send + Sync> ProgressSink for F {
    fn report(&self, p: &Progress) {
        self(p)
    }
}
