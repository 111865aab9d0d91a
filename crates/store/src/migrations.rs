//! The migration files embedded in the binary (by `build.rs`), as sqlx's migrator reads them.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use crate::schema::Dialect;

mod files {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// One dialect's embedded migration files.
#[derive(Debug, Clone, Copy)]
struct Embedded(&'static [(&'static str, &'static str)]);

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async move { migrations(self.0) })
    }
}

/// The migrations of `files`, parsed as sqlx parses a directory (`0001_initial.sql` is version 1,
/// description "initial"), so the checksums and descriptions recorded by earlier versions match.
fn migrations(files: &[(&str, &'static str)]) -> Result<Vec<Migration>, BoxDynError> {
    files
        .iter()
        .map(|(name, sql)| {
            let (version, rest) = name.split_once('_').ok_or_else(|| {
                format!("migration file {name}: expected VERSION_DESCRIPTION.sql")
            })?;
            let version: i64 = version
                .parse()
                .map_err(|_| format!("migration file {name}: the version is not an integer"))?;
            let kind = MigrationType::from_filename(rest);
            let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
            Ok(Migration::new(
                version,
                Cow::Owned(description),
                kind,
                Cow::Borrowed(*sql),
                sql.starts_with("-- no-transaction"),
            ))
        })
        .collect()
}

/// The migrator of `dialect`, over the embedded files.
pub(crate) async fn migrator(dialect: Dialect) -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded(match dialect {
        Dialect::Sqlite => files::SQLITE,
        Dialect::Postgres => files::POSTGRES,
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in the migrations folders is embedded, numbered from 1 upwards in order (0004 comes
    /// from a branch merged separately from 0005's, so a gap is allowed until both are in).
    #[test]
    fn every_migration_file_is_embedded_in_order() {
        for (files, dir) in [(files::SQLITE, "sqlite"), (files::POSTGRES, "postgres")] {
            let on_disk = std::fs::read_dir(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("migrations")
                    .join(dir),
            )
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".sql")
            })
            .count();
            assert_eq!(files.len(), on_disk, "{dir}");
            let m = migrations(files).unwrap();
            let versions: Vec<i64> = m.iter().map(|m| m.version).collect();
            assert_eq!(versions.first(), Some(&1), "{dir}");
            assert!(
                versions.windows(2).all(|w| w[0] < w[1]),
                "{dir}: {versions:?}"
            );
            assert_eq!(m[0].description, "initial");
            assert!(m.iter().all(|m| !m.sql.is_empty() && !m.no_tx));
        }
    }
}
