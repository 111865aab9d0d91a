//! Recording a sweep in the database (`sweep_runs`, `sweep_results`) while it runs: rows are sent in
//! batches to a writer thread, so the cores keep computing while the database writes, and the bounded
//! channel keeps memory flat however many sets there are.

use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use anyhow::{anyhow, Result};
use vectura_store::{NewSweepRun, Store, StoreError, SweepResult, SweepStatus};

use crate::env;

/// Rows per database transaction.
const BATCH: usize = 1024;
/// Batches waiting for the writer at most (bounds memory if the database is slower than the sweep).
const QUEUE: usize = 4;

type Worker = JoinHandle<(tokio::runtime::Runtime, Store, Result<(), StoreError>)>;

/// A sweep run being recorded.
pub struct DbRecorder {
    run_id: String,
    batch: Vec<SweepResult>,
    tx: Option<SyncSender<Vec<SweepResult>>>,
    worker: Option<Worker>,
}

/// The fix appended to every database error of a sweep.
const FIX: &str =
    "check DATABASE_URL / VECTURA_DATA_DIR, or pass --no-db to sweep without recording the run";

impl DbRecorder {
    /// Opens the store (DATABASE_URL, or the SQLite file in the data directory) and records the run as
    /// running; fails before any set is computed when the database cannot be used.
    pub fn start(run: NewSweepRun) -> Result<DbRecorder> {
        env::load_dotenv()?;
        let loc = env::database_url(true)?;
        let rt = env::runtime()?;
        let err = |e: StoreError| anyhow!("recording the sweep in the database: {e}; {FIX}");
        let store = rt.block_on(Store::open(&loc.url)).map_err(err)?;
        let run_id = rt.block_on(store.create_sweep_run(&run)).map_err(err)?;
        let (tx, rx) = sync_channel::<Vec<SweepResult>>(QUEUE);
        let id = run_id.clone();
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
            (rt, store, res)
        });
        Ok(DbRecorder {
            run_id,
            batch: Vec::with_capacity(BATCH),
            tx: Some(tx),
            worker: Some(worker),
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
    pub fn finish(mut self, failure: Option<&str>) -> Result<String> {
        let sent = self.send();
        self.tx = None;
        let worker = self
            .worker
            .take()
            .ok_or_else(|| anyhow!("the sweep run was finished twice"))?;
        let (rt, store, written) = worker
            .join()
            .map_err(|_| anyhow!("the database writer thread crashed; {FIX}"))?;
        let write_err = written.err().map(|e| e.to_string()).or(sent.err());
        let reason = failure.map(str::to_string).or(write_err.clone());
        let status = if reason.is_some() {
            SweepStatus::Failed
        } else {
            SweepStatus::Done
        };
        let finished = rt.block_on(store.finish_sweep_run(&self.run_id, status, reason.as_deref()));
        rt.block_on(store.close());
        if let Some(e) = write_err {
            return Err(anyhow!("recording the sweep in the database: {e}; {FIX}"));
        }
        finished.map_err(|e| anyhow!("recording the sweep in the database: {e}; {FIX}"))?;
        Ok(self.run_id.clone())
    }
}
