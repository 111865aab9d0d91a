//! Helpers shared by the job tests.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use vectura_jobs::{JobContext, Progress, ProgressSink, StoreAccess};

/// Records every progress event.
#[derive(Default)]
pub struct Events(pub Mutex<Vec<Progress>>);

impl ProgressSink for Events {
    fn report(&self, p: &Progress) {
        self.0.lock().unwrap().push(p.clone());
    }
}

/// A context on `rt` recording its events, with an in-memory SQLite store that has no bars.
pub fn context(rt: &tokio::runtime::Runtime) -> (JobContext, Arc<Events>) {
    let store = rt
        .block_on(vectura_store::Store::open("sqlite::memory:"))
        .unwrap();
    let events = Arc::new(Events::default());
    let mut ctx = JobContext::new(rt.handle().clone());
    ctx.progress = events.clone();
    ctx.store = StoreAccess::Open {
        store,
        name: "store test".to_string(),
    };
    (ctx, events)
}

/// A multi-thread runtime, as a server has.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vectura-jobs-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The names of the files in `dir`.
pub fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
