//! Configuration from the environment, `.env.local` and `.env` (in that order of precedence, as the
//! seed reads them), and where the store lives.

use std::path::PathBuf;

/// Why the environment's configuration cannot be used (the message names the file or variable and the fix).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    #[error(
        "{name} cannot be read: fix the line it names (KEY=value per line) or remove the file"
    )]
    DotEnv {
        name: &'static str,
        #[source]
        source: dotenvy::Error,
    },
    #[error("no data directory is known for this user: set VECTURA_DATA_DIR to a folder for the bar store")]
    NoDataDir,
    #[error("creating the data directory {dir}: check its permissions or set VECTURA_DATA_DIR")]
    CreateDataDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

type Result<T, E = EnvError> = std::result::Result<T, E>;

/// Reads `.env.local` and then `.env` from the working directory; a variable already set (by the
/// environment or the earlier file) is kept. A missing file is fine; an unreadable one is an error.
pub fn load_dotenv() -> Result<()> {
    for name in [".env.local", ".env"] {
        match dotenvy::from_filename(name) {
            Ok(_) => {}
            Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(EnvError::DotEnv { name, source }),
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
    dirs::data_dir()
        .map(|d| d.join("vectura"))
        .ok_or(EnvError::NoDataDir)
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
        std::fs::create_dir_all(&dir).map_err(|source| EnvError::CreateDataDir {
            dir: dir.display().to_string(),
            source,
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

    /// The store as a backtest's `data.sources` names it: `store FILE`, or `store DATABASE_URL`.
    pub fn source_name(&self) -> String {
        match &self.file {
            Some(f) => format!("store {}", f.display()),
            None => "store DATABASE_URL".to_string(),
        }
    }

    /// Whether the store may hold anything (a default file that does not exist holds nothing).
    pub fn exists(&self) -> bool {
        self.file.as_ref().is_none_or(|f| f.exists())
    }
}

/// The database a job reads bars from and records sweeps in.
#[derive(Debug, Clone)]
pub enum StoreAccess {
    /// As the CLI finds it: `.env.local` / `.env` are read, then `DATABASE_URL`, or `vectura.db`
    /// in the data directory; opened when a job needs it and closed after. A default file that
    /// does not exist holds no bars (and is created to record a sweep).
    FromEnv,
    /// An open store (a server's pool), used as is and never closed by a job. `name` says where
    /// it is in messages and in a backtest's `data.sources` (`store DATABASE_URL`).
    Open {
        store: vectura_store::Store,
        name: String,
    },
}
