//! The configuration (from `vectura_jobs::config`) and the one tokio runtime of the process: the
//! CLI is the edge that builds it; the libraries take its handle.

use anyhow::{anyhow, Context, Result};

pub use vectura_jobs::config::{database_url, load_dotenv, var};

/// Opens the store (running its migrations) on the process's runtime.
pub fn open_store(rt: &tokio::runtime::Runtime, create: bool) -> Result<vectura_store::Store> {
    let loc = database_url(create)?;
    rt.block_on(vectura_store::Store::open(&loc.url))
        .map_err(|e| anyhow!("{e}"))
}

/// The runtime for the commands that talk to the store, the network or an object store.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}
