//! Recording a sweep in the database (`sweep_runs`, `sweep_results`) while it runs: rows are sent in
//! batches to a writer thread, so the cores keep computing while the database writes, and the bounded
//! channel keeps memory flat however many sets there are.

use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use vectura_store::{NewSweepRun, Store, StoreError, SweepResult, SweepStatus};

use crate::{config, JobContext, JobError, StoreAccess};

/// Rows per database transaction.
const BATCH: usize = 1024;
/// Batches waiting for the writer at most (bounds memory if the database is slower than the sweep).
const QUEUE: usize = 4;

type Worker = JoinHandle<(Store, Result<(), StoreError>)>;

/// A sweep run being recorded.
pub struct DbRecorder {
    run_id: String,
    batch: Vec<SweepResult>,
    tx: Option<SyncSender<Vec<SweepResult>>>,
    worker: Option<Worker>,
    rt: tokio::runtime::Handle,
    /// Whether the recorder opened the store (and so closes it): not a server's own pool.
    owned: bool,
}

/// A database error of a recorded sweep.
fn record_err(source: StoreError) -> JobError {
    JobError::Record(source)
}

/// Opens the job's store: the one from the environment (created when missing), or the caller's.
/// Returns it and whether it was opened here.
pub(crate) fn open_store(ctx: &JobContext) -> Result<(Store, bool), JobError> {
    match &ctx.store {
        StoreAccess::Open { store, .. } => Ok((store.clone(), false)),
        StoreAccess::FromEnv => {
            config::load_dotenv()?;
            let loc = config::database_url(true)?;
            let store = ctx.wait(Store::open(&loc.url)).map_err(record_err)?;
            Ok((store, true))
        }
    }
}

/// Where the job's sweeps are recorded, for messages: the SQLite file, `DATABASE_URL` masked, or
/// the open store's name.
pub(crate) fn describe_store(ctx: &JobContext) -> Result<String, JobError> {
    Ok(match &ctx.store {
        StoreAccess::Open { name, .. } => name.clone(),
        StoreAccess::FromEnv => config::database_url(false)?.describe(),
    })
}

impl DbRecorder {
    /// Opens the job's store and records the run as running; fails before any set is computed
    /// when the database cannot be used.
    pub fn start(run: NewSweepRun, ctx: &JobContext) -> Result<DbRecorder, JobError> {
        let (store, owned) = open_store(ctx)?;
        let run_id = match ctx.wait(store.create_sweep_run(&run)) {
            Ok(id) => id,
            Err(e) => {
                if owned {
                    ctx.wait(store.close());
                }
                return Err(record_err(e));
            }
        };
        let (tx, rx) = sync_channel::<Vec<SweepResult>>(QUEUE);
        let id = run_id.clone();
        let rt = ctx.runtime.clone();
        let worker = std::thread::spawn(move || {
            let mut res = Ok(());
            // On the first error the loop ends, dropping the receiver: the next send fails and the
            // sweep stops instead of computing rows nobody stores.
            for batch in rx {
                res = rt.block_on(store.append_sweep_results(&id, &batch));
                if res.is_err() {
                    break;
                }
            }
            (store, res)
        });
        Ok(DbRecorder {
            run_id,
            batch: Vec::with_capacity(BATCH),
            tx: Some(tx),
            worker: Some(worker),
            rt: ctx.runtime.clone(),
            owned,
        })
    }

    /// Queues one row; a full batch goes to the writer.
    pub fn push(&mut self, r: SweepResult) -> Result<(), String> {
        self.batch.push(r);
        if self.batch.len() >= BATCH {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), String> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        match &self.tx {
            Some(tx) if !batch.is_empty() => tx.send(batch).map_err(|_| {
                "the database writer stopped (its error follows when the sweep ends)".to_string()
            }),
            _ => Ok(()),
        }
    }

    /// Stores the last rows and marks the run done, or failed with `failure` (rows stored so far stay).
    /// Returns the run id.
    pub fn finish(mut self, failure: Option<&str>) -> Result<String, JobError> {
        let sent = self.send();
        self.tx = None;
        let worker = self.worker.take().ok_or_else(|| JobError::RecordStopped {
            detail: "the sweep run was finished twice".to_string(),
        })?;
        let (store, written) = worker.join().map_err(|_| JobError::RecordStopped {
            detail: "the database writer thread crashed".to_string(),
        })?;
        let reason = failure.map(str::to_string).or_else(|| match &written {
            Err(e) => Some(e.to_string()),
            Ok(()) => sent.clone().err(),
        });
        let status = if reason.is_some() {
            SweepStatus::Failed
        } else {
            SweepStatus::Done
        };
        let finished =
            self.rt
                .block_on(store.finish_sweep_run(&self.run_id, status, reason.as_deref()));
        if self.owned {
            self.rt.block_on(store.close());
        }
        written.map_err(record_err)?;
        if let Err(detail) = sent {
            return Err(JobError::RecordStopped { detail });
        }
        finished.map_err(record_err)?;
        Ok(self.run_id.clone())
    }
}
