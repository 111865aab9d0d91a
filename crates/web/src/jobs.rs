//! Server jobs (backtests, sweeps, data fetches) run on a blocking thread through `vectura_jobs`,
//! one at a time (a 2-core server stays responsive), each with its progress events kept in memory
//! for live streams (SSE) and stored in `web_jobs` when it ends, so a reload or a restart finds it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::response::sse::{Event, KeepAlive, Sse};
use serde_json::{json, Value};
use tokio::sync::{broadcast, Semaphore};
use vectura_jobs::{
    BacktestRequest, CancelToken, JobContext, JobOutcome, Progress, Stage, StoreAccess,
};
use vectura_store::JobStatus;

use crate::error::ApiError;
use crate::server::AppState;

/// A job the server runs now (or has queued).
pub struct Live {
    /// Progress events so far, and the end event once there is one.
    events: Mutex<Vec<Value>>,
    tx: broadcast::Sender<Value>,
    /// Trips the job's cancel.
    pub cancel: CancelToken,
}

impl Live {
    fn push(&self, ev: Value) {
        let mut evs = self.events.lock().unwrap_or_else(|p| p.into_inner());
        evs.push(ev.clone());
        // No receiver is fine: nobody watches.
        let _ = self.tx.send(ev);
    }

    fn progress(&self) -> Value {
        Value::Array(
            self.events
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .filter(|e| e["kind"] == "progress")
                .cloned()
                .collect(),
        )
    }
}

/// The running and queued jobs of this process.
pub struct Jobs {
    live: Mutex<HashMap<String, Arc<Live>>>,
    permits: Arc<Semaphore>,
    paused: Arc<AtomicBool>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").finish_non_exhaustive()
    }
}

impl Jobs {
    /// `concurrent` jobs run at once; the rest wait queued.
    pub fn new(concurrent: usize) -> Jobs {
        Jobs {
            live: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(concurrent.max(1))),
            paused: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Pauses running jobs: each holds at its next progress event in the middle of its work
    /// (after the event is shown) until [`Jobs::resume`] or its cancel (an operator freeing the
    /// machine for a while; the tests use it to cancel a job while it runs).
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    /// Lets paused jobs go on.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    /// The run slots: a holder of a permit keeps the next job queued (an operator pausing the
    /// runner; the tests use it to hold a job queued).
    pub fn permits(&self) -> Arc<Semaphore> {
        self.permits.clone()
    }

    /// The live job with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Live>> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}

/// A new job id: time-ordered and unguessable enough not to collide.
pub fn new_id(prefix: &str) -> String {
    let t = crate::auth::random_token();
    format!("{prefix}-{}-{}", crate::now_ms(), &t[..8])
}

fn stage_label(stage: &str) -> &'static str {
    match stage {
        "initialize_backtest" => "Initializing backtest",
        "searching_first_available_day" => "Searching for first available day",
        "downloading_before_range" => "Downloading stock data (before range)",
        "downloading_after_range" => "Downloading stock data (after range)",
        "working_on_chunk" => "Processing chunk",
        "calculating_metrics" => "Calculating metrics",
        "accumulating_chunks" => "Accumulating chart data",
        "completed" => "Completed",
        _ => "Working",
    }
}

fn progress_event(p: &Progress) -> Value {
    let stage = p.stage.as_str();
    json!({
        "kind": "progress",
        "stage": stage,
        "label": stage_label(stage),
        "message": p.message,
        "current": p.current,
        "total": p.total,
        "progress": p.percent(),
        "timestamp_ms": crate::now_ms(),
    })
}

/// A job's work: run on a blocking thread with its context; its result document when done.
pub type Work = Box<dyn FnOnce(&JobContext) -> Result<JobOutcome<Value>, String> + Send>;

/// Stores a new backtest job (`input` is what the form held, kept for editing and re-running)
/// and starts it.
pub async fn start_backtest(
    state: &Arc<AppState>,
    name: &str,
    input: &Value,
    request: BacktestRequest,
) -> Result<String, ApiError> {
    let stored = json!({"input": input, "request": request});
    let work: Work = Box::new(move |ctx| {
        vectura_jobs::backtest::run(&request, ctx)
            .map(|o| match o {
                JobOutcome::Done(d) => JobOutcome::Done(d.doc),
                JobOutcome::Cancelled(c) => JobOutcome::Cancelled(c),
            })
            .map_err(|e| vectura_jobs::error::chain(&e))
    });
    start_job(state, "backtest", "bt", name, &stored, work).await
}

/// Stores a new job of `kind` (`stored` is its request, kept for showing and re-running) and
/// starts it: queued until a run slot is free, then `work` on a blocking thread.
pub async fn start_job(
    state: &Arc<AppState>,
    kind: &str,
    prefix: &str,
    name: &str,
    stored: &Value,
    work: Work,
) -> Result<String, ApiError> {
    let id = new_id(prefix);
    state
        .store
        .create_job(&id, kind, name, stored, crate::now_ms())
        .await?;
    let (tx, _) = broadcast::channel(256);
    let live = Arc::new(Live {
        events: Mutex::new(Vec::new()),
        tx,
        cancel: CancelToken::new(),
    });
    state
        .jobs
        .live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), live.clone());
    state.metrics.inc("jobs_started_total");
    let st = state.clone();
    let job_id = id.clone();
    tokio::spawn(async move {
        let (status, result, error) = run_job(&st, &job_id, &live, work).await;
        let progress = live.progress();
        if let Err(e) = st
            .store
            .finish_job(
                &job_id,
                status,
                &progress,
                result.as_ref(),
                error.as_deref(),
                crate::now_ms(),
            )
            .await
        {
            // The outcome could not be stored: say so in the live stream; the restart marks the
            // job failed.
            live.push(json!({"kind": "end", "status": "failed", "error": format!("storing the result failed: {e}")}));
        } else {
            live.push(json!({"kind": "end", "status": status.as_str(), "error": error}));
        }
        st.metrics.inc("jobs_finished_total");
        st.jobs
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&job_id);
    });
    Ok(id)
}

/// Whether a paused job holds at this event: one in the middle of its work, not its first or
/// last step (so what it shows is the work going on).
fn holds_at(p: &Progress) -> bool {
    p.stage == Stage::WorkingOnChunk && p.current > 0 && p.current < p.total
}

async fn run_job(
    st: &Arc<AppState>,
    id: &str,
    live: &Arc<Live>,
    work: Work,
) -> (JobStatus, Option<Value>, Option<String>) {
    live.push(json!({"kind": "status", "status": "queued"}));
    let permit = tokio::select! {
        p = st.jobs.permits.clone().acquire_owned() => p,
        _ = wait_cancel(&live.cancel) => {
            let reason = live.cancel.cancelled().map(|c| c.reason).unwrap_or_default();
            return (JobStatus::Cancelled, None, Some(reason));
        }
    };
    let Ok(_permit) = permit else {
        return (
            JobStatus::Failed,
            None,
            Some("the server is stopping".to_string()),
        );
    };
    match st.store.start_job(id, crate::now_ms()).await {
        Ok(true) => {}
        Ok(false) => {
            return (
                JobStatus::Failed,
                None,
                Some("the job was ended meanwhile".into()),
            )
        }
        Err(e) => return (JobStatus::Failed, None, Some(e.to_string())),
    }
    live.push(json!({"kind": "status", "status": "running"}));
    let sink_live = live.clone();
    let paused = st.jobs.paused.clone();
    let ctx = JobContext {
        runtime: tokio::runtime::Handle::current(),
        progress: Arc::new(move |p: &Progress| {
            sink_live.push(progress_event(p));
            // The sink runs on the job's blocking thread: holding here holds the job.
            while holds_at(p) && paused.load(Ordering::SeqCst) && !sink_live.cancel.is_cancelled() {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }),
        cancel: live.cancel.clone(),
        store: StoreAccess::Open {
            store: st.store.clone(),
            name: "the dashboard's store".to_string(),
        },
    };
    let out = tokio::task::spawn_blocking(move || work(&ctx)).await;
    match out {
        Ok(Ok(JobOutcome::Done(d))) => (JobStatus::Done, Some(d), None),
        Ok(Ok(JobOutcome::Cancelled(c))) => (JobStatus::Cancelled, None, Some(c.reason)),
        Ok(Err(e)) => (JobStatus::Failed, None, Some(e)),
        Err(e) => (
            JobStatus::Failed,
            None,
            Some(format!("the job stopped: {e}")),
        ),
    }
}

async fn wait_cancel(t: &CancelToken) {
    // The token has no waker: look every 50 ms (only while a job is queued).
    while !t.is_cancelled() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The events of a job as SSE: everything so far, then live ones until its end (an ended job's
/// stored events and its end at once).
pub async fn events(
    state: &Arc<AppState>,
    id: &str,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let (past, rx) = match state.jobs.get(id) {
        Some(live) => {
            // Subscribing under the events lock: no event falls between the copy and the stream.
            let evs = live.events.lock().unwrap_or_else(|p| p.into_inner());
            (evs.clone(), Some(live.tx.subscribe()))
        }
        None => {
            let job =
                state.store.job(id).await?.ok_or_else(|| {
                    ApiError::not_found(format!("no job with id {id:?} is stored"))
                })?;
            let mut evs: Vec<Value> = job.progress.as_array().cloned().unwrap_or_default();
            if job.status.is_final() {
                evs.push(json!({"kind": "end", "status": job.status.as_str(), "error": job.error}));
            }
            (evs, None)
        }
    };
    let ended = past.iter().any(|e| e["kind"] == "end");
    let to_event = |v: &Value| {
        Ok::<_, Infallible>(
            Event::default()
                .event(v["kind"].as_str().unwrap_or("progress"))
                .data(v.to_string()),
        )
    };
    let past_stream = futures_util::stream::iter(past.iter().map(to_event).collect::<Vec<_>>());
    let live_stream = futures_util::stream::unfold(
        (if ended { None } else { rx }, false),
        move |(rx, done)| async move {
            if done {
                return None;
            }
            let mut rx = rx?;
            loop {
                match rx.recv().await {
                    Ok(v) => {
                        let end = v["kind"] == "end";
                        return Some((to_event(&v), (Some(rx), end)));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    use futures_util::StreamExt;
    Ok(Sse::new(past_stream.chain(live_stream)).keep_alive(KeepAlive::default()))
}
