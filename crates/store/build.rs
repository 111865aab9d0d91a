//! Embeds the migration files: writes `$OUT_DIR/migrations.rs` with each dialect's files (name and
//! `include_str!` of the text), oldest first. This replaces `sqlx::migrate!`, whose proc macro would
//! build sqlx's SQLite and Postgres drivers (and the SQLite C library) a second time for the host.

use std::fmt::Write;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    // Read at run time, not `env!` at the build script's compile time: a build script compiled in
    // another checkout (a copied target/ directory) would otherwise embed that checkout's files.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("migrations");
    let mut out = String::new();
    for (constant, dialect) in [("SQLITE", "sqlite"), ("POSTGRES", "postgres")] {
        let mut files: Vec<String> = std::fs::read_dir(dir.join(dialect))
            .unwrap_or_else(|e| panic!("reading migrations/{dialect}: {e}"))
            .map(|e| {
                e.expect("a directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        writeln!(out, "pub(crate) const {constant}: &[(&str, &str)] = &[").unwrap();
        for f in files {
            let path = dir.join(dialect).join(&f);
            println!("cargo:rerun-if-changed={}", path.display());
            writeln!(
                out,
                "    ({f:?}, include_str!({:?})),",
                path.display().to_string()
            )
            .unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    let target =
        Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR is set")).join("migrations.rs");
    std::fs::write(target, out).expect("writing migrations.rs");
}
