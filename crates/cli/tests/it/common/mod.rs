//! Helpers shared by the CLI tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `vectura` binary under test: the one built for this test run, or the one `VECTURA_BIN` names
/// (to run the same tests against another build, such as one from before a fix).
pub fn bin() -> PathBuf {
    std::env::var_os("VECTURA_BIN")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vectura")))
}

/// The `vectura` binary ([`bin`]), with a data directory of this test process's own: a test never
/// opens (or migrates) the user's default database under `~/.local/share/vectura`.
pub fn vectura(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("VECTURA_DATA_DIR", own_data_dir())
        // Set and blank, so that no `.env` file fills it in and the SQLite file in the data dir is used.
        .env("DATABASE_URL", "")
        .output()
        .expect("vectura runs")
}

/// A data directory for the `vectura` runs of this test process, outside the user's home.
pub fn own_data_dir() -> PathBuf {
    std::env::temp_dir().join(format!("vectura-test-{}-datadir", std::process::id()))
}

/// The repository's `data/fixtures`: small real bar files of every shape, each with its origin note.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/fixtures")
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vectura-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Parses RFC 3339 text (with or without milliseconds) to Unix seconds.
pub fn secs(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .timestamp()
}
