//! Several processes opening a new database at once: every one succeeds and each migration is
//! applied once. Each opener here is a thread with its own runtime and its own pool (its own
//! connections), released together by a barrier, as separate processes would be.

use std::sync::{Arc, Barrier};
use vectura_store::Store;

/// Openers per trial.
const OPENERS: usize = 6;
/// Trials, each on a new database (the race was lost in 2 of 8 trials of 3 processes).
const TRIALS: usize = 8;

/// Opens `url` from `OPENERS` threads at once; every error, formatted.
fn open_together(url: &str) -> Vec<String> {
    let barrier = Arc::new(Barrier::new(OPENERS));
    let threads: Vec<_> = (0..OPENERS)
        .map(|_| {
            let (barrier, url) = (barrier.clone(), url.to_string());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                barrier.wait();
                rt.block_on(async {
                    let s = Store::open(&url).await.map_err(|e| e.to_string())?;
                    s.close().await;
                    Ok::<(), String>(())
                })
            })
        })
        .collect();
    threads
        .into_iter()
        .filter_map(|t| t.join().unwrap().err())
        .collect()
}

/// The applied migration versions, in order, as sqlx recorded them.
async fn applied(store: &Store) -> Vec<i64> {
    use sqlx::Row;
    let sql = "SELECT version FROM _sqlx_migrations ORDER BY version";
    let rows = match store {
        Store::Sqlite(p) => sqlx::query(sql).fetch_all(p).await.unwrap(),
        Store::Postgres(_) => unreachable!("read through the admin pool"),
    };
    rows.iter().map(|r| r.get::<i64, _>(0)).collect()
}

#[test]
fn sqlite_new_database_opened_by_several_at_once() {
    let dir = std::env::temp_dir().join(format!("vectura-migrate-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let want: Vec<i64> = vectura_store::schema::MIGRATIONS
        .iter()
        .map(|m| m.version as i64)
        .collect();
    for trial in 0..TRIALS {
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.join(format!("t{trial}.db")).display()
        );
        let errors = open_together(&url);
        assert!(errors.is_empty(), "trial {trial}: {errors:#?}");
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let s = Store::open(&url).await.unwrap();
            assert_eq!(
                applied(&s).await,
                want,
                "trial {trial}: each migration once"
            );
            s.close().await;
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs PostgreSQL: run scripts/test"]
fn postgres_new_schema_opened_by_several_at_once() {
    let base = std::env::var("VECTURA_TEST_DATABASE_URL")
        .expect("VECTURA_TEST_DATABASE_URL names the test server (scripts/test sets it)");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = rt.block_on(async {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&base)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {base}: {e}"))
    });
    let want: Vec<i64> = vectura_store::schema::MIGRATIONS
        .iter()
        .map(|m| m.version as i64)
        .collect();
    for trial in 0..TRIALS {
        let schema = format!("migrate_race_{}_{trial}", std::process::id());
        rt.block_on(async {
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&admin)
                .await
                .unwrap();
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&admin)
                .await
                .unwrap();
        });
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        let errors = open_together(&url);
        let versions: Vec<i64> = rt.block_on(async {
            let v = sqlx::query_scalar(&format!(
                "SELECT version FROM {schema}._sqlx_migrations ORDER BY version"
            ))
            .fetch_all(&admin)
            .await
            .unwrap();
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&admin)
                .await
                .unwrap();
            v
        });
        assert!(errors.is_empty(), "trial {trial}: {errors:#?}");
        assert_eq!(versions, want, "trial {trial}: each migration once");
    }
}
