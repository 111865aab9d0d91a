//! Configuration from the environment, `.env.local` and `.env` (in that order of precedence, as the
//! seed reads them), and where the store lives.

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};

/// Reads `.env.local` and then `.env` from the working directory; a variable already set (by the
/// environment or the earlier file) is kept. A missing file is fine; an unreadable one is an error.
pub fn load_dotenv() -> Result<()> {
    for name in [".env.local", ".env"] {
        match dotenvy::from_filename(name) {
            Ok(_) => {}
            Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(anyhow!(
                    "{name} cannot be read ({e}): fix the line it names (KEY=value per line) or remove the file"
                ))
            }
        }
    }
    Ok(())
}

/// A variable's value, when set and not blank.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The data directory: `VECTURA_DATA_DIR`, or the platform's data directory plus `vectura`
/// (`~/.local/share/vectura` on Linux).
pub fn data_dir() -> Result<PathBuf> {
    if let Some(d) = var("VECTURA_DATA_DIR") {
        return Ok(PathBuf::from(d));
    }
    dirs::data_dir().map(|d| d.join("vectura")).ok_or_else(|| {
        anyhow!("no data directory is known for this user: set VECTURA_DATA_DIR to a folder for the bar store")
    })
}

/// Where the store is: `DATABASE_URL` (`sqlite://…` or `postgres://…`), or `vectura.db` in the
/// data directory (created with the directory when missing, if `create`).
pub fn database_url(create: bool) -> Result<StoreLocation> {
    if let Some(url) = var("DATABASE_URL") {
        return Ok(StoreLocation { url, file: None });
    }
    let dir = data_dir()?;
    let file = dir.join("vectura.db");
    if create {
        std::fs::create_dir_all(&dir).with_context(|| {
            format!(
                "creating the data directory {}: check its permissions or set VECTURA_DATA_DIR",
                dir.display()
            )
        })?;
    }
    Ok(StoreLocation {
        url: format!("sqlite://{}?mode=rwc", file.display()),
        file: Some(file),
    })
}

/// The store's URL, and its file when it is the default SQLite file.
pub struct StoreLocation {
    pub url: String,
    pub file: Option<PathBuf>,
}

impl StoreLocation {
    /// Where the store is, for messages: the SQLite file, or DATABASE_URL with its password masked.
    pub fn describe(&self) -> String {
        match &self.file {
            Some(f) => f.display().to_string(),
            None => format!("DATABASE_URL {}", vectura_store::mask_url(&self.url)),
        }
    }

    /// Whether the store may hold anything (a default file that does not exist holds nothing).
    pub fn exists(&self) -> bool {
        self.file.as_ref().is_none_or(|f| f.exists())
    }
}

/// Opens the store (running its migrations) on a runtime of its own.
pub fn open_store(rt: &tokio::runtime::Runtime, create: bool) -> Result<vectura_store::Store> {
    let loc = database_url(create)?;
    rt.block_on(vectura_store::Store::open(&loc.url))
        .map_err(|e| anyhow!("{e}"))
}

/// A runtime for the commands that talk to the store or the network.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}
