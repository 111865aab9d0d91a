//! The store's suite, written once and run against both backends: `sqlite::NAME` on a temporary file
//! and `postgres::NAME` on the server named by `VECTURA_TEST_DATABASE_URL` (for example
//! postgres://postgres@127.0.0.1:5432/test), each test in a fresh schema of its own that is dropped
//! afterwards. The Postgres tests are `#[ignore = "needs PostgreSQL: run scripts/test"]`: run (as
//! `scripts/test` does, with `--include-ignored`), they fail without that variable or a reachable
//! server, so that no test passes by skipping.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use sqlx::types::Json;
use sqlx::{Connection, Row};
use vectura_core::{Bar, BarSeries, Side, Split};
use vectura_store::schema::{self, Dialect};
use vectura_store::{
    AlgoConfig, BuyTrigger, DayState, Gap, NewSweepRun, OpenLot, OrderRow, OrderUpdate,
    SellTrigger, Store, StoreError, SweepColumns, SweepResult, SweepStatus, TradeRecord,
    TradeSummary,
};

// ---------------------------------------------------------------------------------------------
// The two backends.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Sqlite,
    Postgres,
}

/// One test's database: its URL, an open store, and what to remove afterwards.
pub(crate) struct Env {
    pub(crate) kind: Kind,
    pub(crate) url: String,
    pub(crate) store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    Files(PathBuf),
    Schema { admin: sqlx::PgPool, schema: String },
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut s = format!("vt_{}_{nanos}_{n}_{test}", std::process::id());
    s.truncate(63);
    s
}

/// Fails a Postgres test that has no server: it is ignored unless asked for, and asked for it must
/// not pass by doing nothing.
fn no_postgres(why: &str) -> ! {
    panic!("the Postgres tests cannot run: {why}: run scripts/test, or set VECTURA_TEST_DATABASE_URL to a reachable server (for example postgres://postgres@127.0.0.1:5432/test; start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`)");
}

/// Whether the Postgres server answers, tried once per test binary (one direct connection, so a
/// refused one fails at once instead of after a pool's timeout).
async fn probe_postgres(url: &str) -> Result<(), String> {
    static PROBE: Mutex<Option<Result<(), String>>> = Mutex::new(None);
    if let Some(known) = PROBE.lock().unwrap().clone() {
        return known;
    }
    let attempt = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        sqlx::PgConnection::connect(url),
    )
    .await;
    let result = match attempt {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(format!("cannot connect to {url}: {e}")),
        Err(_) => Err(format!("{url} did not answer within 10 s")),
    };
    *PROBE.lock().unwrap() = Some(result.clone());
    result
}

impl Env {
    pub(crate) async fn new(kind: Kind, test: &str) -> Option<Env> {
        let name = unique(test);
        match kind {
            Kind::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir).unwrap();
                let url = format!("sqlite://{}?mode=rwc", dir.join("store.db").display());
                let store = Store::open(&url).await.unwrap();
                Some(Env {
                    kind,
                    url,
                    store,
                    cleanup: Cleanup::Files(dir),
                })
            }
            Kind::Postgres => {
                let Ok(base) = std::env::var("VECTURA_TEST_DATABASE_URL") else {
                    no_postgres("VECTURA_TEST_DATABASE_URL is not set");
                };
                if let Err(why) = probe_postgres(&base).await {
                    no_postgres(&why);
                }
                let admin = match sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(std::time::Duration::from_secs(10))
                    .connect(&base)
                    .await
                {
                    Ok(p) => p,
                    Err(e) => no_postgres(&format!("cannot connect to {base}: {e}")),
                };
                sqlx::raw_sql(&format!("CREATE SCHEMA {name}"))
                    .execute(&admin)
                    .await
                    .unwrap();
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
                let store = Store::open(&url).await.unwrap();
                Some(Env {
                    kind,
                    url,
                    store,
                    cleanup: Cleanup::Schema {
                        admin,
                        schema: name,
                    },
                })
            }
        }
    }

    pub(crate) async fn finish(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::Files(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Schema { admin, schema } => {
                sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
            }
        }
    }

    /// Runs raw SQL (one or more statements) on the test's database.
    pub(crate) async fn exec(&self, sql: &str) {
        match &self.store {
            Store::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
            Store::Postgres(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// A count from raw SQL.
    pub(crate) async fn count(&self, sql: &str) -> i64 {
        match &self.store {
            Store::Sqlite(p) => sqlx::query(sql)
                .fetch_one(p)
                .await
                .unwrap()
                .get::<i64, _>(0),
            Store::Postgres(p) => sqlx::query(sql)
                .fetch_one(p)
                .await
                .unwrap()
                .get::<i64, _>(0),
        }
    }
}

/// Declares each listed async fn(&Env) as a test twice: `sqlite::NAME` and `postgres::NAME`.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let env = super::Env::new(super::Kind::Sqlite, stringify!($name)).await.unwrap();
                    super::$name(&env).await;
                    env.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs PostgreSQL: run scripts/test"]
                async fn $name() {
                    let env = super::Env::new(super::Kind::Postgres, stringify!($name)).await.unwrap();
                    super::$name(&env).await;
                    env.finish().await;
                }
            )*
        }
    };
}
pub(crate) use backend_tests;

backend_tests!(
    migrations_are_idempotent_and_create_every_table_and_column,
    put_and_load_round_trip_bit_exact,
    put_day_replaces_a_stored_day,
    ranges_widen_and_count,
    gaps_list_failed_and_missing_days_not_closed_ones,
    failed_attempts_count_and_never_downgrade_a_day,
    splits_replace_keep_and_mirror,
    delete_symbol_removes_bars_status_range_and_splits,
    failing_put_day_leaves_nothing_half_written,
    concurrent_writers_all_land,
    seed_style_table_is_reported_with_the_fix,
    algo_config_round_trip,
    trade_history_round_trip,
    triggers_replace_in_one_transaction,
    open_lots_round_trip,
    orders_intent_update_and_duplicates,
    trade_summary_round_trip,
    sweep_runs_create_append_finish_and_list,
    sweep_results_batches_are_all_or_nothing,
    sweep_columns_are_kept_when_a_run_finishes,
    web_users_sessions_and_jobs_round_trip,
);

// ---------------------------------------------------------------------------------------------
// Data.

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn ts(y: i32, m: u32, day: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, day, h, min, s).unwrap()
}

/// `n` minute bars from 14:30 UTC of `day`, with prices off any decimal grid (`seed` varies them).
fn bars(day: NaiveDate, n: usize, seed: u64) -> BarSeries {
    let start = day.and_hms_opt(14, 30, 0).unwrap().and_utc().timestamp();
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut s = BarSeries::default();
    for i in 0..n {
        let base = match i {
            0 => 1.0 / 3.0,
            1 => 1e-7 + 0.1 + 0.2,
            2 => 123456.789012345,
            _ => 50.0 + next() * 100.0,
        };
        let (a, b) = (base * (1.0 + next() * 1e-3), base * (1.0 - next() * 1e-3));
        s.push(Bar {
            ts: start + 60 * i as i64,
            open: a,
            high: a.max(b) * 1.0001,
            low: a.min(b) * 0.9999,
            close: b,
            volume: (next() * 1e6).floor() + next(),
            vwap: Some((a + b) / 2.0 + next() * 1e-9),
            trade_count: Some((next() * 1000.0) as u64),
        })
        .unwrap();
    }
    s
}

fn assert_bit_exact(got: &BarSeries, want: &BarSeries) {
    assert_eq!(got.ts, want.ts);
    for (name, g, w) in [
        ("open", &got.open, &want.open),
        ("high", &got.high, &want.high),
        ("low", &got.low, &want.low),
        ("close", &got.close, &want.close),
        ("volume", &got.volume, &want.volume),
    ] {
        let g: Vec<u64> = g.iter().map(|v| v.to_bits()).collect();
        let w: Vec<u64> = w.iter().map(|v| v.to_bits()).collect();
        assert_eq!(g, w, "{name} differs");
    }
    let bits = |v: &Option<Vec<f64>>| {
        v.as_ref()
            .map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
    };
    assert_eq!(bits(&got.vwap), bits(&want.vwap), "vwap differs");
    assert_eq!(got.trade_count, want.trade_count);
}

fn concat(parts: &[&BarSeries]) -> BarSeries {
    let mut out = BarSeries::default();
    for p in parts {
        for i in 0..p.len() {
            out.push(p.get(i)).unwrap();
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The suite.

/// What `vectura db schema` prints, pasted into an empty Postgres database (as into Supabase's SQL
/// editor) twice, creates every table of every migration with its columns' types and NOT NULLs and
/// every index, and vectura's own migration then runs over it and accepts the tables.
#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test"]
async fn postgres_schema_sql_runs_twice_on_an_empty_database_then_the_migration() {
    let Ok(base) = std::env::var("VECTURA_TEST_DATABASE_URL") else {
        no_postgres("VECTURA_TEST_DATABASE_URL is not set");
    };
    if let Err(why) = probe_postgres(&base).await {
        no_postgres(&why);
    }
    let name = unique("pasted_schema");
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("CREATE SCHEMA {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let ddl = schema::schema_sql_postgres();
    for pass in 1..=2 {
        sqlx::raw_sql(&ddl)
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("pasting the schema, pass {pass}: {e}"));
    }
    for t in schema::tables() {
        let cols: Vec<(String, String, bool)> = sqlx::query(
            "SELECT column_name::text, data_type::text, is_nullable = 'NO' FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        )
        .bind(&name)
        .bind(t.name)
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
        let want: Vec<(String, String, bool)> = t
            .columns
            .iter()
            // A primary-key column is NOT NULL whether or not its definition says so.
            .map(|c| {
                (
                    c.name.to_string(),
                    c.ty.pg_reported().to_string(),
                    c.not_null || t.primary_key.contains(&c.name),
                )
            })
            .collect();
        assert_eq!(cols, want, "table {}", t.name);
    }
    let indexes: Vec<String> =
        sqlx::query("SELECT indexname::text FROM pg_indexes WHERE schemaname = $1")
            .bind(&name)
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    for m in schema::MIGRATIONS {
        for ix in m.indexes {
            assert!(
                indexes.iter().any(|i| i == ix.name),
                "index {} is missing: {indexes:?}",
                ix.name
            );
        }
    }
    pool.close().await;
    // vectura's migration over the pasted tables: accepted as they are, and recorded.
    let store = Store::open(&url).await.unwrap();
    let n: i64 = match &store {
        Store::Postgres(p) => sqlx::query("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(p)
            .await
            .unwrap()
            .get(0),
        Store::Sqlite(_) => unreachable!("a postgres:// URL"),
    };
    assert_eq!(n, schema::MIGRATIONS.len() as i64);
    assert!(store.ranges().await.unwrap().is_empty());
    store.close().await;
    sqlx::raw_sql(&format!("DROP SCHEMA {name} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}

async fn migrations_are_idempotent_and_create_every_table_and_column(env: &Env) {
    let store = &env.store;
    // Again on the open store, then through a second open of the same database.
    store.migrate().await.unwrap();
    let again = Store::open(&env.url).await.unwrap();
    again.migrate().await.unwrap();
    again.close().await;
    assert_eq!(
        env.count("SELECT COUNT(*) FROM _sqlx_migrations").await,
        schema::MIGRATIONS.len() as i64
    );
    // The pasted DDL (Postgres: what `vectura db schema --postgres` prints) runs over it harmlessly.
    let ddl: String = match env.kind {
        Kind::Postgres => schema::schema_sql_postgres(),
        Kind::Sqlite => schema::MIGRATIONS
            .iter()
            .map(|m| schema::render(m, Dialect::Sqlite))
            .collect(),
    };
    env.exec(&ddl).await;
    env.exec(&ddl).await;
    let dialect = store.dialect();
    assert_eq!(
        dialect,
        match env.kind {
            Kind::Sqlite => Dialect::Sqlite,
            Kind::Postgres => Dialect::Postgres,
        }
    );
    let actual = store.table_columns().await.unwrap();
    let expected: Vec<&str> = schema::tables().map(|t| t.name).collect();
    let mut names: Vec<&str> = actual.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut want = expected.clone();
    want.sort_unstable();
    assert_eq!(names, want);
    for t in schema::tables() {
        let cols = &actual[t.name];
        let got: Vec<(&str, String)> = cols
            .iter()
            .map(|(n, ty)| (n.as_str(), ty.to_lowercase()))
            .collect();
        let want: Vec<(&str, String)> = t
            .columns
            .iter()
            .map(|c| {
                let ty = match dialect {
                    Dialect::Sqlite => c.ty.sql(Dialect::Sqlite),
                    Dialect::Postgres => c.ty.pg_reported(),
                };
                (c.name, ty.to_string())
            })
            .collect();
        assert_eq!(got, want, "{}", t.name);
    }
    // Nothing was stored by any of it.
    assert!(store.ranges().await.unwrap().is_empty());
}

async fn put_and_load_round_trip_bit_exact(env: &Env) {
    let s = &env.store;
    let (d1, d2, d3) = (d("2024-03-04"), d("2024-03-05"), d("2024-03-06"));
    let (b1, b2, b3) = (bars(d1, 390, 1), bars(d2, 210, 2), bars(d3, 3, 3));
    // Written out of order, and the symbol in lower case (stored upper-cased).
    s.put_day("spy", d2, &b2).await.unwrap();
    s.put_day("SPY", d1, &b1).await.unwrap();
    s.put_day("SPY", d3, &b3).await.unwrap();
    assert_bit_exact(&s.load("SPY", d1, d1).await.unwrap(), &b1);
    assert_bit_exact(
        &s.load("spy", d1, d3).await.unwrap(),
        &concat(&[&b1, &b2, &b3]),
    );
    assert_bit_exact(
        &s.load("SPY", d2, d("2030-01-01")).await.unwrap(),
        &concat(&[&b2, &b3]),
    );
    assert!(s
        .load("SPY", d("2024-03-07"), d("2024-03-08"))
        .await
        .unwrap()
        .is_empty());
    assert!(s.load("QQQ", d1, d3).await.unwrap().is_empty());
    assert!(matches!(
        s.load("SPY", d3, d1).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.put_day("SPY", d1, &BarSeries::default()).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.put_day("not a symbol!", d1, &b1).await,
        Err(StoreError::Invalid(_))
    ));
    let st = s.day_status("SPY", d1).await.unwrap().unwrap();
    assert_eq!(
        (st.state, st.attempts, st.error),
        (DayState::Fetched, 0, None)
    );
    assert!(st.updated_at.is_some());
    // The row's bookkeeping columns.
    assert_eq!(
        env.count("SELECT CAST(records AS BIGINT) FROM bt_bars_daily WHERE symbol = 'SPY' AND start_ts = 1709562600")
            .await,
        390
    );
}

async fn put_day_replaces_a_stored_day(env: &Env) {
    let s = &env.store;
    let day = d("2024-03-04");
    s.put_day("SPY", day, &bars(day, 390, 1)).await.unwrap();
    let replacement = bars(day, 17, 9);
    s.put_day("SPY", day, &replacement).await.unwrap();
    assert_bit_exact(&s.load("SPY", day, day).await.unwrap(), &replacement);
    let r = s.range("SPY").await.unwrap().unwrap();
    assert_eq!((r.days_stored, r.bars), (1, 17));
    assert_eq!((r.have_from, r.have_to), (Some(day), Some(day)));
    assert_eq!(env.count("SELECT COUNT(*) FROM bt_bars_daily").await, 1);
    assert_eq!(env.count("SELECT COUNT(*) FROM bt_day_status").await, 1);
}

async fn ranges_widen_and_count(env: &Env) {
    let s = &env.store;
    assert!(s.ranges().await.unwrap().is_empty());
    let mid = d("2024-03-06");
    s.put_day("SPY", mid, &bars(mid, 10, 1)).await.unwrap();
    let r = s.range("SPY").await.unwrap().unwrap();
    assert_eq!((r.have_from, r.have_to), (Some(mid), Some(mid)));
    // Earlier, then later, then one inside: the span only grows.
    for (day, n) in [("2024-03-04", 20), ("2024-03-11", 30), ("2024-03-07", 5)] {
        s.put_day("SPY", d(day), &bars(d(day), n, 2)).await.unwrap();
    }
    s.mark_closed("SPY", d("2024-03-09")).await.unwrap();
    s.mark_failed("SPY", d("2024-03-08"), "HTTP 429")
        .await
        .unwrap();
    s.mark_failed("SPY", d("2024-03-12"), "HTTP 500")
        .await
        .unwrap();
    s.put_day("QQQ", d("2020-01-02"), &bars(d("2020-01-02"), 1, 3))
        .await
        .unwrap();
    s.set_first_available_day("SPY", Some(d("2016-01-04")))
        .await
        .unwrap();
    let all = s.ranges().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].symbol, "QQQ");
    let spy = &all[1];
    assert_eq!(spy.symbol, "SPY");
    assert_eq!(
        (spy.have_from, spy.have_to),
        (Some(d("2024-03-04")), Some(d("2024-03-11")))
    );
    assert_eq!(spy.first_available_day, Some(d("2016-01-04")));
    assert_eq!(
        (spy.days_stored, spy.days_closed, spy.days_failed, spy.bars),
        (4, 1, 2, 65)
    );
    assert_eq!(
        (all[0].days_stored, all[0].bars, all[0].first_available_day),
        (1, 1, None)
    );
    s.set_first_available_day("SPY", None).await.unwrap();
    assert_eq!(
        s.range("SPY").await.unwrap().unwrap().first_available_day,
        None
    );
    assert_eq!(s.range("IWM").await.unwrap(), None);
    // A symbol only ever tried has a row with no span.
    s.mark_failed("IWM", d("2024-03-04"), "timeout")
        .await
        .unwrap();
    let iwm = s.range("IWM").await.unwrap().unwrap();
    assert_eq!(
        (iwm.have_from, iwm.days_stored, iwm.days_failed),
        (None, 0, 1)
    );
}

async fn gaps_list_failed_and_missing_days_not_closed_ones(env: &Env) {
    let s = &env.store;
    let sessions: Vec<NaiveDate> = [
        "2024-03-04",
        "2024-03-05",
        "2024-03-06",
        "2024-03-07",
        "2024-03-08",
    ]
    .into_iter()
    .map(d)
    .collect();
    s.put_day("SPY", sessions[0], &bars(sessions[0], 5, 1))
        .await
        .unwrap();
    s.mark_closed("SPY", sessions[1]).await.unwrap();
    s.mark_failed("SPY", sessions[2], "HTTP 429 too many requests")
        .await
        .unwrap();
    s.mark_failed("SPY", sessions[2], "HTTP 503").await.unwrap();
    s.put_day("SPY", sessions[4], &bars(sessions[4], 5, 2))
        .await
        .unwrap();
    // Another symbol's days change nothing.
    s.put_day("QQQ", sessions[3], &bars(sessions[3], 5, 3))
        .await
        .unwrap();
    let mut shuffled = sessions.clone();
    shuffled.reverse();
    shuffled.push(sessions[3]);
    let gaps = s.gaps("SPY", &shuffled).await.unwrap();
    assert_eq!(
        gaps,
        vec![
            Gap {
                day: sessions[2],
                attempts: 2,
                last_error: Some("HTTP 503".into())
            },
            Gap {
                day: sessions[3],
                attempts: 0,
                last_error: None
            },
        ]
    );
    // A repaired gap disappears; its attempts stay on record, its error goes.
    s.put_day("SPY", sessions[2], &bars(sessions[2], 5, 4))
        .await
        .unwrap();
    let gaps = s.gaps("SPY", &sessions).await.unwrap();
    assert_eq!(
        gaps.iter().map(|g| g.day).collect::<Vec<_>>(),
        vec![sessions[3]]
    );
    let st = s.day_status("SPY", sessions[2]).await.unwrap().unwrap();
    assert_eq!(
        (st.state, st.attempts, st.error),
        (DayState::Fetched, 2, None)
    );
    assert!(s.gaps("SPY", &[]).await.unwrap().is_empty());
    assert_eq!(s.gaps("NEW", &sessions).await.unwrap().len(), 5);
}

async fn failed_attempts_count_and_never_downgrade_a_day(env: &Env) {
    let s = &env.store;
    let (a, b, c) = (d("2024-03-04"), d("2024-03-05"), d("2024-03-06"));
    assert_eq!(s.day_status("SPY", a).await.unwrap(), None);
    for i in 1..=3 {
        s.mark_failed("SPY", a, &format!("failure {i}"))
            .await
            .unwrap();
        let st = s.day_status("SPY", a).await.unwrap().unwrap();
        assert_eq!((st.state, st.attempts), (DayState::Failed, i));
        assert_eq!(st.error.as_deref(), Some(format!("failure {i}").as_str()));
    }
    // A failed day later found closed is closed.
    s.mark_closed("SPY", a).await.unwrap();
    let st = s.day_status("SPY", a).await.unwrap().unwrap();
    assert_eq!(
        (st.state, st.attempts, st.error),
        (DayState::Closed, 3, None)
    );
    // A fetched day stays fetched (its bars stay) when a refresh fails or says closed.
    s.put_day("SPY", b, &bars(b, 4, 1)).await.unwrap();
    s.mark_failed("SPY", b, "HTTP 500").await.unwrap();
    let st = s.day_status("SPY", b).await.unwrap().unwrap();
    assert_eq!((st.state, st.attempts), (DayState::Fetched, 1));
    assert_eq!(st.error.as_deref(), Some("HTTP 500"));
    s.mark_closed("SPY", b).await.unwrap();
    assert_eq!(
        s.day_status("SPY", b).await.unwrap().unwrap().state,
        DayState::Fetched
    );
    assert_eq!(s.load("SPY", b, b).await.unwrap().len(), 4);
    // A closed day stays closed when a re-check fails; long messages are cut.
    s.mark_closed("SPY", c).await.unwrap();
    s.mark_failed("SPY", c, &"x".repeat(10_000)).await.unwrap();
    let st = s.day_status("SPY", c).await.unwrap().unwrap();
    assert_eq!((st.state, st.attempts), (DayState::Closed, 1));
    assert_eq!(st.error.map(|e| e.len()), Some(2000));
}

async fn splits_replace_keep_and_mirror(env: &Env) {
    let s = &env.store;
    let sp = |day: &str, ratio: f64| Split {
        effective: d(day),
        ratio,
    };
    assert!(s.splits("NVDA").await.unwrap().is_empty());
    assert_eq!(s.last_split_check("NVDA").await.unwrap(), None);
    let list = [sp("2024-06-10", 10.0), sp("2021-07-20", 4.0)];
    assert!(s
        .replace_splits("NVDA", &list, "alpha-vantage")
        .await
        .unwrap());
    let sorted = vec![sp("2021-07-20", 4.0), sp("2024-06-10", 10.0)];
    assert_eq!(s.splits("NVDA").await.unwrap(), sorted);
    // The same list again: unchanged.
    assert!(!s
        .replace_splits("NVDA", &sorted, "alpha-vantage")
        .await
        .unwrap());
    // A duplicate date fails in the database: nothing changes.
    let dup = [sp("2021-07-20", 4.0), sp("2021-07-20", 2.0)];
    let err = s.replace_splits("NVDA", &dup, "csv").await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Query {
                table: "splits",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("NVDA"), "{err}");
    assert_eq!(s.splits("NVDA").await.unwrap(), sorted);
    // A bad ratio is refused before anything is written.
    let err = s
        .replace_splits("NVDA", &[sp("2022-01-03", 0.0)], "csv")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert_eq!(s.splits("NVDA").await.unwrap(), sorted);
    // A reverse split changes it; other symbols are separate.
    let changed = [
        sp("2021-07-20", 4.0),
        sp("2024-06-10", 10.0),
        sp("2025-01-02", 0.1),
    ];
    assert!(s
        .replace_splits("NVDA", &changed, "alpha-vantage")
        .await
        .unwrap());
    assert_eq!(s.splits("NVDA").await.unwrap().len(), 3);
    assert!(s
        .replace_splits("AAPL", &[sp("2020-08-31", 4.0)], "alpha-vantage")
        .await
        .unwrap());
    assert_eq!(s.splits("NVDA").await.unwrap().len(), 3);
    // An empty list from the provider (the caller checked it is a real reply) clears it.
    assert!(s
        .replace_splits("AAPL", &[], "alpha-vantage")
        .await
        .unwrap());
    assert!(s.splits("AAPL").await.unwrap().is_empty());
    // The seed-form mirror in bt_symbol_ranges.
    let sql = "SELECT splits FROM bt_symbol_ranges WHERE symbol = 'NVDA'";
    let mirror: Json<serde_json::Value> = match &s {
        Store::Sqlite(p) => sqlx::query(sql).fetch_one(p).await.unwrap().get(0),
        Store::Postgres(p) => sqlx::query(sql).fetch_one(p).await.unwrap().get(0),
    };
    assert_eq!(
        mirror.0,
        serde_json::json!([
            {"effective_date": "2021-07-20", "split_factor": 4.0},
            {"effective_date": "2024-06-10", "split_factor": 10.0},
            {"effective_date": "2025-01-02", "split_factor": 0.1},
        ])
    );
    s.set_last_split_check("NVDA", d("2025-02-03"))
        .await
        .unwrap();
    assert_eq!(
        s.last_split_check("NVDA").await.unwrap(),
        Some(d("2025-02-03"))
    );
    s.set_last_split_check("NVDA", d("2025-02-04"))
        .await
        .unwrap();
    assert_eq!(
        s.last_split_check("NVDA").await.unwrap(),
        Some(d("2025-02-04"))
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM splits WHERE source = 'alpha-vantage'")
            .await,
        3
    );
}

async fn delete_symbol_removes_bars_status_range_and_splits(env: &Env) {
    let s = &env.store;
    let (a, b) = (d("2024-03-04"), d("2024-03-05"));
    for sym in ["SPY", "QQQ"] {
        s.put_day(sym, a, &bars(a, 5, 1)).await.unwrap();
        s.put_day(sym, b, &bars(b, 5, 2)).await.unwrap();
        s.mark_failed(sym, d("2024-03-06"), "HTTP 500")
            .await
            .unwrap();
        s.replace_splits(
            sym,
            &[Split {
                effective: a,
                ratio: 2.0,
            }],
            "test",
        )
        .await
        .unwrap();
        s.set_last_split_check(sym, b).await.unwrap();
    }
    s.upsert_algo_config("SPY", &config()).await.unwrap();
    assert_eq!(s.delete_symbol("spy").await.unwrap(), 2);
    assert!(s.load("SPY", a, b).await.unwrap().is_empty());
    assert_eq!(s.range("SPY").await.unwrap(), None);
    assert!(s.splits("SPY").await.unwrap().is_empty());
    assert_eq!(s.day_status("SPY", d("2024-03-06")).await.unwrap(), None);
    assert_eq!(s.last_split_check("SPY").await.unwrap(), None);
    // Live state is not bar data: kept.
    assert!(s.algo_config("SPY").await.unwrap().is_some());
    // The other symbol is untouched.
    let qqq = s.range("QQQ").await.unwrap().unwrap();
    assert_eq!((qqq.days_stored, qqq.days_failed, qqq.bars), (2, 1, 10));
    assert_eq!(s.splits("QQQ").await.unwrap().len(), 1);
    assert_eq!(s.delete_symbol("SPY").await.unwrap(), 0);
}

/// A put_day whose last statement (widening the range) fails leaves neither the bars nor the day's
/// status behind: the failure is injected with a trigger on `bt_symbol_ranges`.
async fn failing_put_day_leaves_nothing_half_written(env: &Env) {
    let s = &env.store;
    let (a, b) = (d("2024-03-04"), d("2024-03-05"));
    let original = bars(a, 7, 1);
    s.put_day("BOOM", a, &original).await.unwrap();
    s.mark_failed("BOOM", b, "HTTP 429").await.unwrap();
    env.exec(match env.kind {
        Kind::Sqlite => {
            "CREATE TRIGGER boom_insert BEFORE INSERT ON bt_symbol_ranges WHEN NEW.symbol = 'BOOM' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END; \
             CREATE TRIGGER boom_update BEFORE UPDATE ON bt_symbol_ranges WHEN NEW.symbol = 'BOOM' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        }
        Kind::Postgres => {
            "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.symbol = 'BOOM' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER boom BEFORE INSERT OR UPDATE ON bt_symbol_ranges \
             FOR EACH ROW EXECUTE FUNCTION boom();"
        }
    })
    .await;
    // Replacing a stored day: the old bars and status stay.
    let err = s.put_day("BOOM", a, &bars(a, 3, 2)).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            StoreError::Query {
                table: "bt_symbol_ranges",
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("BOOM 2024-03-04") && msg.contains("injected failure"),
        "{msg}"
    );
    assert_bit_exact(&s.load("BOOM", a, b).await.unwrap(), &original);
    // Repairing a failed day: still a failed day, no bars.
    assert!(s.put_day("BOOM", b, &bars(b, 3, 3)).await.is_err());
    let st = s.day_status("BOOM", b).await.unwrap().unwrap();
    assert_eq!((st.state, st.attempts), (DayState::Failed, 1));
    assert_eq!(
        env.count("SELECT COUNT(*) FROM bt_bars_daily WHERE symbol = 'BOOM'")
            .await,
        1
    );
    let r = s.range("BOOM").await.unwrap().unwrap();
    assert_eq!(
        (r.have_from, r.have_to, r.days_stored, r.bars),
        (Some(a), Some(a), 1, 7)
    );
    // Other symbols still write.
    s.put_day("SPY", b, &bars(b, 3, 4)).await.unwrap();
}

/// Writers on several connections at once (a fetcher filling days in parallel, a split refresh)
/// all land: SQLite waits for its write lock instead of failing.
async fn concurrent_writers_all_land(env: &Env) {
    let first = d("2024-01-02");
    let mut tasks = Vec::new();
    for i in 0..12u64 {
        let s = env.store.clone();
        tasks.push(tokio::spawn(async move {
            let day = first + chrono::Duration::days(i as i64);
            s.put_day("SPY", day, &bars(day, 60, i)).await?;
            s.mark_failed("QQQ", day, "HTTP 429").await?;
            s.replace_splits(
                "SPY",
                &[Split {
                    effective: day,
                    ratio: 2.0,
                }],
                "test",
            )
            .await?;
            let buy = BuyTrigger {
                id: format!("b{i}"),
                at_price: 10.0 + i as f64,
                below_or_higher: "below".into(),
            };
            s.replace_triggers("TQQQ", &[buy], &[]).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let r = env.store.range("SPY").await.unwrap().unwrap();
    assert_eq!((r.days_stored, r.bars), (12, 720));
    assert_eq!(
        (r.have_from, r.have_to),
        (Some(first), Some(d("2024-01-13")))
    );
    assert_eq!(
        env.store.range("QQQ").await.unwrap().unwrap().days_failed,
        12
    );
    // Each replacement was whole: one list survives, not a mix.
    assert_eq!(env.store.splits("SPY").await.unwrap().len(), 1);
    assert_eq!(env.store.triggers("TQQQ").await.unwrap().buys.len(), 1);
    assert_eq!(
        env.store
            .load("SPY", first, d("2024-01-13"))
            .await
            .unwrap()
            .len(),
        720
    );
}

/// A table left by other SQL (the seed's at_to_buy has no symbol column) stops `open` with the table
/// named and the fix.
async fn seed_style_table_is_reported_with_the_fix(env: &Env) {
    env.exec(
        "DROP TABLE at_to_buy; \
         CREATE TABLE at_to_buy (id text PRIMARY KEY NOT NULL, at_price double precision, below_or_higher text);",
    )
    .await;
    let err = Store::open(&env.url).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, StoreError::Schema { table, .. } if table == "at_to_buy"),
        "{msg}"
    );
    assert!(
        msg.contains("no column symbol") && msg.contains("RENAME TO at_to_buy_old"),
        "{msg}"
    );
    if env.kind == Kind::Postgres {
        // A seed-typed column is named with its ALTER.
        env.exec(
            "DROP TABLE at_to_buy; \
             CREATE TABLE at_to_buy (symbol text NOT NULL, id text NOT NULL, at_price numeric NOT NULL, \
             below_or_higher text NOT NULL, PRIMARY KEY (symbol, id));",
        )
        .await;
        let msg = Store::open(&env.url).await.unwrap_err().to_string();
        assert!(
            msg.contains("at_price is numeric, vectura needs double precision"),
            "{msg}"
        );
        assert!(
            msg.contains("ALTER TABLE at_to_buy ALTER COLUMN at_price TYPE double precision"),
            "{msg}"
        );
    }
}

fn config() -> AlgoConfig {
    AlgoConfig {
        capital_pct: 60.0,
        buy_below_pct: 2.0,
        sell_above_pct: 18.0,
        buy_after_sell_pct: 25.0,
        cash_floor: 200.0,
        order_gap_pct: -1.0,
    }
}

async fn algo_config_round_trip(env: &Env) {
    let s = &env.store;
    assert_eq!(s.algo_config("TQQQ").await.unwrap(), None);
    let c = config();
    s.upsert_algo_config("TQQQ", &c).await.unwrap();
    assert_eq!(s.algo_config("tqqq").await.unwrap(), Some(c));
    let c2 = AlgoConfig {
        order_gap_pct: 1.5,
        capital_pct: 0.1 + 0.2,
        ..c
    };
    s.upsert_algo_config("TQQQ", &c2).await.unwrap();
    assert_eq!(s.algo_config("TQQQ").await.unwrap(), Some(c2));
    assert_eq!(s.algo_config("SPY").await.unwrap(), None);
    // All of them at once, by symbol, as stored.
    s.upsert_algo_config("iwm", &c).await.unwrap();
    let all = s.algo_configs().await.unwrap();
    assert_eq!(
        all.into_iter().collect::<Vec<_>>(),
        [("IWM".to_string(), c), ("TQQQ".to_string(), c2)]
    );
    env.exec("DELETE FROM at_algo_config WHERE symbol = 'IWM'")
        .await;
    let bad = AlgoConfig {
        cash_floor: f64::NAN,
        ..c
    };
    assert!(matches!(
        s.upsert_algo_config("TQQQ", &bad).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(env.count("SELECT COUNT(*) FROM at_algo_config").await, 1);
}

async fn trade_history_round_trip(env: &Env) {
    let s = &env.store;
    let buy = TradeRecord {
        id: "vt-run-TQQQ-1".into(),
        timestamp: ts(2024, 3, 4, 15, 0, 0),
        side: Side::Buy,
        shares: 1.234567891,
        price: 61.23,
        close_trade_id: None,
    };
    let sell = TradeRecord {
        id: "vt-run-TQQQ-2".into(),
        timestamp: ts(2024, 3, 5, 15, 0, 0) + chrono::Duration::microseconds(123_456),
        side: Side::Sell,
        shares: 1.234567891,
        price: 72.2514,
        close_trade_id: Some("vt-run-TQQQ-1".into()),
    };
    s.insert_trade("TQQQ", &sell).await.unwrap();
    s.insert_trade("TQQQ", &buy).await.unwrap();
    s.insert_trade(
        "SPY",
        &TradeRecord {
            id: "other".into(),
            ..buy.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(s.trades("TQQQ").await.unwrap(), vec![buy.clone(), sell]);
    // The id is unique.
    let err = s.insert_trade("TQQQ", &buy).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Query {
                table: "at_trade_history",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(s.trades("SPY").await.unwrap().len(), 1);
}

async fn triggers_replace_in_one_transaction(env: &Env) {
    let s = &env.store;
    let b = |id: &str, px: f64| BuyTrigger {
        id: id.into(),
        at_price: px,
        below_or_higher: "below".into(),
    };
    let sell = SellTrigger {
        id: "s1".into(),
        at_price: 72.25,
        below_or_higher: "higher".into(),
        shares: 1.5,
        trade_id: "lot1".into(),
    };
    let first = vec![b("firstOrder", -1.0), b("b2", 60.5), b("b1", 59.9)];
    s.replace_triggers("TQQQ", &first, std::slice::from_ref(&sell))
        .await
        .unwrap();
    s.replace_triggers("SPY", &[b("x", 1.0)], &[])
        .await
        .unwrap();
    let t = s.triggers("TQQQ").await.unwrap();
    assert_eq!(
        t.buys.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        ["firstOrder", "b1", "b2"]
    );
    assert_eq!(t.sells, vec![sell.clone()]);
    // A duplicate id fails part-way: the previous triggers are all still there.
    let err = s
        .replace_triggers("TQQQ", &[b("b3", 58.0), b("b3", 57.0)], &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Query {
                table: "at_to_buy",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("nothing of this change was written"),
        "{err}"
    );
    assert_eq!(s.triggers("TQQQ").await.unwrap(), t);
    // Replaced wholesale, this symbol only.
    s.replace_triggers("TQQQ", &[b("b4", 55.0)], &[])
        .await
        .unwrap();
    let t = s.triggers("TQQQ").await.unwrap();
    assert_eq!((t.buys.len(), t.sells.len()), (1, 0));
    assert_eq!(s.triggers("SPY").await.unwrap().buys.len(), 1);
    assert!(matches!(
        s.replace_triggers("TQQQ", &[b("nan", f64::INFINITY)], &[])
            .await,
        Err(StoreError::Invalid(_))
    ));
}

async fn open_lots_round_trip(env: &Env) {
    let s = &env.store;
    let lot = |id: &str, h: u32, shares: f64| OpenLot {
        id: id.into(),
        timestamp: ts(2024, 3, 4, h, 0, 0),
        price: 61.23,
        shares,
    };
    s.upsert_open_lot("TQQQ", &lot("b", 16, 1.0)).await.unwrap();
    s.upsert_open_lot("TQQQ", &lot("a", 15, 2.0)).await.unwrap();
    s.upsert_open_lot("SPY", &lot("a", 15, 9.0)).await.unwrap();
    assert_eq!(
        s.open_lots("TQQQ").await.unwrap(),
        vec![lot("a", 15, 2.0), lot("b", 16, 1.0)]
    );
    // A split scales shares: the same id is replaced.
    s.upsert_open_lot("TQQQ", &lot("a", 15, 4.0)).await.unwrap();
    assert_eq!(s.open_lots("TQQQ").await.unwrap()[0].shares, 4.0);
    assert!(s.delete_open_lot("TQQQ", "a").await.unwrap());
    assert!(!s.delete_open_lot("TQQQ", "a").await.unwrap());
    assert_eq!(s.open_lots("TQQQ").await.unwrap(), vec![lot("b", 16, 1.0)]);
    assert_eq!(s.open_lots("SPY").await.unwrap(), vec![lot("a", 15, 9.0)]);
}

async fn orders_intent_update_and_duplicates(env: &Env) {
    let s = &env.store;
    let intent = OrderRow {
        client_order_id: "vt-run1-TQQQ-7".into(),
        symbol: "tqqq".into(),
        side: Side::Buy,
        qty: 1.5,
        status: "intent".into(),
        created_at: ts(2024, 3, 4, 15, 0, 0) + chrono::Duration::microseconds(250_001),
        broker_order_id: None,
        filled_qty: 0.0,
        filled_avg_price: None,
        intent: Some(
            serde_json::json!({"id": 7, "side": "buy", "qty": 1.5, "kind": {"type": "market"}}),
        ),
        error: None,
    };
    s.insert_order_intent(&intent).await.unwrap();
    let stored = s.order("vt-run1-TQQQ-7").await.unwrap().unwrap();
    assert_eq!(
        stored,
        OrderRow {
            symbol: "TQQQ".into(),
            ..intent.clone()
        }
    );
    // Stored once: a resubmission after a restart is detected.
    let err = s.insert_order_intent(&intent).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::DuplicateOrder { client_order_id } if client_order_id == "vt-run1-TQQQ-7"),
        "{err}"
    );
    s.update_order(
        "vt-run1-TQQQ-7",
        &OrderUpdate {
            status: "partially_filled".into(),
            broker_order_id: Some("b-123".into()),
            filled_qty: 0.5,
            filled_avg_price: Some(61.2345),
            error: None,
        },
    )
    .await
    .unwrap();
    // A later report without the broker id keeps it.
    s.update_order(
        "vt-run1-TQQQ-7",
        &OrderUpdate {
            status: "filled".into(),
            broker_order_id: None,
            filled_qty: 1.5,
            filled_avg_price: Some(61.25),
            error: None,
        },
    )
    .await
    .unwrap();
    let o = s.order("vt-run1-TQQQ-7").await.unwrap().unwrap();
    assert_eq!(o.status, "filled");
    assert_eq!(o.broker_order_id.as_deref(), Some("b-123"));
    assert_eq!((o.filled_qty, o.filled_avg_price), (1.5, Some(61.25)));
    let rejected = OrderRow {
        client_order_id: "vt-run1-TQQQ-8".into(),
        side: Side::Sell,
        created_at: intent.created_at + chrono::Duration::seconds(60),
        intent: None,
        ..intent.clone()
    };
    s.insert_order_intent(&rejected).await.unwrap();
    s.update_order(
        "vt-run1-TQQQ-8",
        &OrderUpdate {
            status: "rejected".into(),
            broker_order_id: None,
            filled_qty: 0.0,
            filled_avg_price: None,
            error: Some("HTTP 403: potential wash trade detected".into()),
        },
    )
    .await
    .unwrap();
    let all = s.orders("TQQQ").await.unwrap();
    assert_eq!(
        all.iter()
            .map(|o| o.client_order_id.as_str())
            .collect::<Vec<_>>(),
        ["vt-run1-TQQQ-7", "vt-run1-TQQQ-8"]
    );
    assert_eq!((all[1].side, all[1].intent.clone()), (Side::Sell, None));
    assert_eq!(
        all[1].error.as_deref(),
        Some("HTTP 403: potential wash trade detected")
    );
    assert!(s.orders("SPY").await.unwrap().is_empty());
    let err = s
        .update_order(
            "nope",
            &OrderUpdate {
                status: "filled".into(),
                broker_order_id: None,
                filled_qty: 1.0,
                filled_avg_price: None,
                error: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownOrder { .. }), "{err}");
    assert_eq!(s.order("nope").await.unwrap(), None);
}

async fn trade_summary_round_trip(env: &Env) {
    let s = &env.store;
    assert_eq!(s.trade_summary("TQQQ").await.unwrap(), None);
    let first = TradeSummary {
        max_cash: 0.0,
        max_equity: 0.0,
        splits_last_updated_at: Some(d("2024-03-04")),
        splits: serde_json::json!([]),
        pdt_days: serde_json::json!([]),
        session_start: None,
        session_end: None,
    };
    s.upsert_trade_summary("TQQQ", &first).await.unwrap();
    assert_eq!(s.trade_summary("TQQQ").await.unwrap(), Some(first.clone()));
    let later = TradeSummary {
        max_cash: 1234.56,
        max_equity: 25_000.125,
        splits: serde_json::json!([{"effective_date": "2022-01-13", "split_factor": 2.0}]),
        pdt_days: serde_json::json!([{"date": "2024-03-04", "roundTrips": 1}]),
        session_start: Some(ts(2024, 3, 4, 14, 30, 0)),
        session_end: Some(ts(2024, 3, 5, 20, 59, 0)),
        ..first.clone()
    };
    s.upsert_trade_summary("TQQQ", &later).await.unwrap();
    assert_eq!(s.trade_summary("TQQQ").await.unwrap(), Some(later));
    assert_eq!(s.trade_summary("SPY").await.unwrap(), None);
}

fn new_sweep(set_count: u64) -> NewSweepRun {
    NewSweepRun {
        symbols: vec!["spy".into(), "QQQ".into()],
        start_date: Some(d("2024-01-02")),
        end_date: Some(d("2024-12-31")),
        fill: "NextOpen".into(),
        plan: serde_json::json!({"axes": [{"name": "buy_below_pct", "values": [1.0, 1.5]}], "sampling": "Grid"}),
        set_count,
    }
}

/// A set's row with values off any decimal grid, so a lossy JSON round trip would show.
fn sweep_row(i: u64) -> SweepResult {
    let x = 1.0 / 3.0 + i as f64 * 1e-9;
    SweepResult {
        set_index: i,
        params: serde_json::json!({"buy_below_pct": 1.0 + 0.1 * i as f64, "capital_pct": 60.0}),
        metrics: serde_json::json!({
            "final_equity": 1234.5678901234567 * x,
            "sharpe": -x,
            "tiny": 5e-324,
            "huge": 1.7976931348623157e308,
            "total_trades": i,
            "profit_factor": null,
        }),
    }
}

/// Bit-exact equality of two JSON values (numbers compared as f64 bits or integers).
fn json_bits_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => match (x.as_u64(), y.as_u64()) {
            (Some(p), Some(q)) => p == q,
            _ => x.as_f64().map(f64::to_bits) == y.as_f64().map(f64::to_bits),
        },
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_bits_eq(v, w)))
        }
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_bits_eq(v, w))
        }
        _ => a == b,
    }
}

/// Finishing a run stores its rows by column (bit for bit), so a heat map reads one document; the
/// best sets' rows are read by index; a run finished before the columns were kept gets them later.
async fn sweep_columns_are_kept_when_a_run_finishes(env: &Env) {
    let s = &env.store;
    let id = s.create_sweep_run(&new_sweep(6)).await.unwrap();
    let mut rows: Vec<SweepResult> = (0..6).map(sweep_row).collect();
    rows[2].params["symbol"] = "QQQ".into();
    s.append_sweep_results(&id, &rows).await.unwrap();
    assert_eq!(s.sweep_columns(&id).await.unwrap(), None, "running");
    let err = s
        .put_sweep_columns(&id, &SweepColumns::from_rows(&rows))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("still running"), "{err}");
    s.finish_sweep_run(&id, SweepStatus::Done, None)
        .await
        .unwrap();
    let cols = s.sweep_columns(&id).await.unwrap().expect("columns");
    assert_eq!(cols, SweepColumns::from_rows(&rows));
    assert_eq!(cols.set_index, [0, 1, 2, 3, 4, 5]);
    assert_eq!(cols.markets, ["all", "QQQ"]);
    assert_eq!(cols.market, [0, 0, 1, 0, 0, 0]);
    let keys: Vec<&str> = cols.metrics.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["final_equity", "huge", "sharpe", "tiny", "total_trades"],
        "numbers only"
    );
    let fe: Vec<u64> = cols.metrics["final_equity"]
        .iter()
        .map(|v| v.unwrap().to_bits())
        .collect();
    let want: Vec<u64> = rows
        .iter()
        .map(|r| r.metrics["final_equity"].as_f64().unwrap().to_bits())
        .collect();
    assert_eq!(fe, want, "bit for bit");
    assert_eq!(cols.metrics["tiny"][0], Some(5e-324));
    // The best sets' rows by index, in set order; an index not stored is left out.
    let some = s.sweep_results_at(&id, &[4, 1, 99]).await.unwrap();
    assert_eq!(some.iter().map(|r| r.set_index).collect::<Vec<_>>(), [1, 4]);
    assert!(json_bits_eq(&some[1].params, &rows[4].params));
    assert!(s.sweep_results_at(&id, &[]).await.unwrap().is_empty());
    // Stored again (a run finished before the columns were kept): replaced, not duplicated.
    let one = SweepColumns::from_rows(&rows[..1]);
    s.put_sweep_columns(&id, &one).await.unwrap();
    assert_eq!(s.sweep_columns(&id).await.unwrap(), Some(one));
    let err = s
        .put_sweep_columns("nope", &SweepColumns::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownSweepRun { .. }), "{err}");
}

async fn sweep_runs_create_append_finish_and_list(env: &Env) {
    let s = &env.store;
    assert!(s.sweep_runs().await.unwrap().is_empty());
    let run = new_sweep(5);
    let id = s.create_sweep_run(&run).await.unwrap();
    let got = s.sweep_run(&id).await.unwrap().unwrap();
    assert_eq!(got.status, SweepStatus::Running);
    assert_eq!(got.symbols, ["SPY", "QQQ"]);
    assert_eq!(
        (got.start_date, got.end_date),
        (run.start_date, run.end_date)
    );
    assert_eq!(
        (got.fill.as_str(), got.set_count, got.rows_stored),
        ("NextOpen", 5, 0)
    );
    assert!(json_bits_eq(&got.plan, &run.plan), "{}", got.plan);
    assert!(got.finished_at.is_none() && got.error.is_none());
    // Two batches, the second written first: read back in set order, bit for bit.
    let rows: Vec<SweepResult> = (0..5).map(sweep_row).collect();
    s.append_sweep_results(&id, &rows[3..]).await.unwrap();
    s.append_sweep_results(&id, &rows[..3]).await.unwrap();
    s.append_sweep_results(&id, &[]).await.unwrap();
    let back = s.sweep_results(&id).await.unwrap();
    assert_eq!(back.len(), 5);
    for (b, r) in back.iter().zip(&rows) {
        assert_eq!(b.set_index, r.set_index);
        assert!(
            json_bits_eq(&b.params, &r.params),
            "{} vs {}",
            b.params,
            r.params
        );
        assert!(
            json_bits_eq(&b.metrics, &r.metrics),
            "{} vs {}",
            b.metrics,
            r.metrics
        );
    }
    s.finish_sweep_run(&id, SweepStatus::Done, None)
        .await
        .unwrap();
    let done = s.sweep_run(&id).await.unwrap().unwrap();
    assert_eq!((done.status, done.rows_stored), (SweepStatus::Done, 5));
    assert!(done.finished_at.is_some_and(|f| f >= done.created_at));
    // A finished run takes no more rows and is not finished twice.
    let err = s
        .append_sweep_results(&id, &[sweep_row(9)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SweepRunFinished { status: "done", .. }),
        "{err}"
    );
    let err = s
        .finish_sweep_run(&id, SweepStatus::Failed, Some("late"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::SweepRunFinished { .. }), "{err}");
    // A second run, finished as failed; "done" with missing rows is refused with the fix.
    let second = s.create_sweep_run(&new_sweep(3)).await.unwrap();
    assert_ne!(second, id);
    s.append_sweep_results(&second, &[sweep_row(0)])
        .await
        .unwrap();
    let err = s
        .finish_sweep_run(&second, SweepStatus::Done, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("holds 1 rows of its 3 sets") && err.contains("failed"),
        "{err}"
    );
    s.finish_sweep_run(&second, SweepStatus::Failed, Some("--data: file vanished"))
        .await
        .unwrap();
    // Newest first, with their counts; the first run's rows are untouched by the second's.
    let runs = s.sweep_runs().await.unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [second.as_str(), id.as_str()]);
    assert_eq!(runs[0].status, SweepStatus::Failed);
    assert_eq!(runs[0].error.as_deref(), Some("--data: file vanished"));
    assert_eq!(runs[0].rows_stored, 1);
    assert_eq!(s.sweep_results(&id).await.unwrap().len(), 5);
    // Unknown runs are named.
    assert!(s.sweep_run("nope").await.unwrap().is_none());
    assert!(s.sweep_results("nope").await.unwrap().is_empty());
    let err = s
        .append_sweep_results("nope", &[sweep_row(0)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownSweepRun { .. }), "{err}");
    let err = s
        .finish_sweep_run("nope", SweepStatus::Done, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownSweepRun { .. }), "{err}");
    // Bad input is refused before anything is written.
    let mut bad = new_sweep(1);
    bad.symbols = vec!["not a symbol!".into()];
    assert!(matches!(
        s.create_sweep_run(&bad).await.unwrap_err(),
        StoreError::Invalid(_)
    ));
    let mut bad = new_sweep(1);
    bad.start_date = Some(d("2025-01-01"));
    assert!(s
        .create_sweep_run(&bad)
        .await
        .unwrap_err()
        .to_string()
        .contains("swap"));
    assert_eq!(env.count("SELECT COUNT(*) FROM sweep_runs").await, 2);
}

/// A batch holding a set already stored (here, one repeated inside the batch) writes none of its rows;
/// a batch larger than one INSERT statement lands whole.
async fn sweep_results_batches_are_all_or_nothing(env: &Env) {
    let s = &env.store;
    let id = s.create_sweep_run(&new_sweep(2600)).await.unwrap();
    s.append_sweep_results(&id, &[sweep_row(0)]).await.unwrap();
    let batch: Vec<SweepResult> = (1..1500).chain([0]).map(sweep_row).collect();
    let err = s.append_sweep_results(&id, &batch).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Query {
                table: "sweep_results",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("nothing of this change was written"),
        "{err}"
    );
    assert_eq!(s.sweep_results(&id).await.unwrap().len(), 1);
    let batch: Vec<SweepResult> = (1..2600).map(sweep_row).collect();
    s.append_sweep_results(&id, &batch).await.unwrap();
    let back = s.sweep_results(&id).await.unwrap();
    assert_eq!(back.len(), 2600);
    assert!(back
        .iter()
        .enumerate()
        .all(|(i, r)| r.set_index == i as u64));
    s.finish_sweep_run(&id, SweepStatus::Done, None)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Opening, without a backend of the suite.

#[tokio::test]
async fn open_accepts_memory_and_explains_bad_urls() {
    let mem = Store::open("sqlite::memory:").await.unwrap();
    let day = d("2024-03-04");
    mem.put_day("SPY", day, &bars(day, 2, 1)).await.unwrap();
    // One connection, kept: the data is still there for the next query.
    assert_eq!(mem.load("SPY", day, day).await.unwrap().len(), 2);

    let err = Store::open("mysql://root@localhost/db").await.unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("sqlite://PATH (a file, created when missing)"),
        "{err}"
    );

    let err = Store::open("sqlite:///nonexistent-dir-vectura/x.db?mode=rwc")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(
        err.to_string().contains("its directory must exist"),
        "{err}"
    );

    let err = Store::open("postgresql://postgres:hunter2@127.0.0.1:1/postgres")
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Open { .. }), "{msg}");
    assert!(
        msg.contains("postgres:***@127.0.0.1:1") && !msg.contains("hunter2"),
        "{msg}"
    );
    assert!(msg.contains("check the host and port"), "{msg}");
}

/// A plain `sqlite://dir/new.db` in an existing folder creates the file (as Django and Freqtrade
/// do); `?mode=rw` and `?mode=ro` still open only an existing file; a missing folder is named.
#[tokio::test]
async fn a_plain_sqlite_url_creates_the_file_and_an_explicit_mode_is_kept() {
    let dir = std::env::temp_dir().join(unique("plain_sqlite"));
    std::fs::create_dir_all(&dir).unwrap();
    for mode in ["?mode=rw", "?mode=ro"] {
        let file = dir.join(format!("only-existing{}.db", &mode[6..]));
        let err = Store::open(&format!("sqlite://{}{mode}", file.display()))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{mode}: {err}");
        assert!(!file.exists(), "{mode} created {}", file.display());
    }
    let file = dir.join("new.db");
    let store = Store::open(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let day = d("2024-03-04");
    store.put_day("SPY", day, &bars(day, 3, 1)).await.unwrap();
    store.close().await;
    assert!(file.is_file(), "the file is created");
    // Opened again (now existing) with the same plain URL: the bars are there.
    let again = Store::open(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    assert_eq!(again.load("SPY", day, day).await.unwrap().len(), 3);
    again.close().await;
    let err = Store::open(&format!("sqlite://{}/no-such-dir/new.db", dir.display()))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("its directory must exist"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Two pools on one SQLite file (two processes, in effect) writing at once: every transaction that
/// reads before it writes waits for the other writer instead of failing with "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_one_sqlite_file_wait_for_each_other() {
    let dir = std::env::temp_dir().join(unique("concurrent"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("store.db").display());
    let a = Store::open(&url).await.unwrap();
    let b = Store::open(&url).await.unwrap();
    let work = |s: Store| async move {
        for _ in 0..20 {
            let id = s.create_sweep_run(&new_sweep(50)).await.unwrap();
            for k in 0..5 {
                let rows: Vec<SweepResult> = (k * 10..k * 10 + 10).map(sweep_row).collect();
                s.append_sweep_results(&id, &rows).await.unwrap();
            }
            s.finish_sweep_run(&id, SweepStatus::Done, None)
                .await
                .unwrap();
        }
    };
    let (x, y) = tokio::join!(tokio::spawn(work(a.clone())), tokio::spawn(work(b.clone())));
    x.unwrap();
    y.unwrap();
    let runs = a.sweep_runs().await.unwrap();
    assert_eq!(runs.len(), 40);
    a.close().await;
    b.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// The dashboard's tables: a password change ends the user's sessions in the same transaction,
/// sessions expire by the stored time, and jobs move queued → running → ended once.
async fn web_users_sessions_and_jobs_round_trip(env: &Env) {
    use vectura_store::{JobStatus, WebSession};
    let s = &env.store;
    assert_eq!(s.user_count().await.unwrap(), 0);
    assert!(s
        .set_user_password("bad name!", "$argon2id$x", 1)
        .await
        .is_err());
    s.set_user_password("admin", "$argon2id$first", 1)
        .await
        .unwrap();
    assert_eq!(
        s.user_password_hash("admin").await.unwrap().as_deref(),
        Some("$argon2id$first")
    );
    assert_eq!(s.user_password_hash("other").await.unwrap(), None);
    let sess = |id: &str, at: i64| WebSession {
        id_hash: id.to_string(),
        username: "admin".to_string(),
        csrf_token: format!("csrf-{id}"),
        created_at_ms: at,
        expires_at_ms: at + 1000,
    };
    s.create_session(&sess("a", 100)).await.unwrap();
    s.create_session(&sess("b", 200)).await.unwrap();
    assert!(
        s.create_session(&sess("b", 200)).await.is_err(),
        "an id is stored once"
    );
    assert_eq!(
        s.session("a", 500).await.unwrap().unwrap().csrf_token,
        "csrf-a"
    );
    assert!(
        s.session("a", 1100).await.unwrap().is_none(),
        "expired at 1100"
    );
    assert!(s.session("b", 1100).await.unwrap().is_some());
    // A login after a's expiry removes a's row.
    s.create_session(&sess("c", 1150)).await.unwrap();
    assert_eq!(env.count("SELECT COUNT(*) FROM web_sessions").await, 2);
    assert!(s.delete_session("c").await.unwrap());
    assert!(!s.delete_session("c").await.unwrap());
    s.set_user_password("admin", "$argon2id$second", 2)
        .await
        .unwrap();
    assert_eq!(s.user_count().await.unwrap(), 1);
    assert!(
        s.session("b", 1100).await.unwrap().is_none(),
        "a new password ends the sessions"
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM web_sessions").await, 0);

    let req = serde_json::json!({"symbol": "SPY", "capital_pct": 60.0});
    s.create_job("j1", "backtest", "My Backtest", &req, 10)
        .await
        .unwrap();
    assert!(s.create_job("j2", "chart", "x", &req, 10).await.is_err());
    s.create_job("j2", "backtest", "Second", &req, 20)
        .await
        .unwrap();
    s.create_job("j3", "sweep", "A sweep", &req, 30)
        .await
        .unwrap();
    // Migration 0008 lets the table's CHECK take a data fetch (the store's own check agrees).
    s.create_job("jf", "fetch", "Fetch SPY", &req, 31)
        .await
        .unwrap();
    assert_eq!(
        env.count("SELECT COUNT(*) FROM web_jobs WHERE kind = 'fetch'")
            .await,
        1
    );
    assert_eq!(s.jobs("fetch", 10).await.unwrap().len(), 1);
    assert!(s
        .finish_job(
            "jf",
            JobStatus::Cancelled,
            &serde_json::json!([]),
            None,
            None,
            32
        )
        .await
        .unwrap());
    assert!(s.delete_job("jf").await.unwrap());
    assert!(s.start_job("j1", 11).await.unwrap());
    assert!(!s.start_job("j1", 12).await.unwrap(), "started once");
    let prog = serde_json::json!([{"stage": "initialize_backtest"}]);
    s.set_job_progress("j1", &prog).await.unwrap();
    let result = serde_json::json!({"final_equity": 1234.5});
    assert!(s
        .finish_job("j1", JobStatus::Done, &prog, Some(&result), None, 13)
        .await
        .unwrap());
    assert!(!s
        .finish_job("j1", JobStatus::Failed, &prog, None, Some("x"), 14)
        .await
        .unwrap());
    assert!(s
        .finish_job("j1", JobStatus::Running, &prog, None, None, 14)
        .await
        .is_err());
    let j = s.job("j1").await.unwrap().unwrap();
    assert_eq!(j.status, JobStatus::Done);
    assert_eq!(j.request, req);
    assert_eq!(j.progress, prog);
    assert_eq!(j.result, Some(result));
    assert_eq!((j.started_at_ms, j.finished_at_ms), (Some(11), Some(13)));
    let list = s.jobs("backtest", 10).await.unwrap();
    assert_eq!(
        list.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["j2", "j1"]
    );
    assert_eq!(s.jobs("sweep", 10).await.unwrap().len(), 1);
    assert!(!s.delete_job("j2").await.unwrap(), "a queued job is kept");
    assert_eq!(s.fail_unfinished_jobs("restarted", 40).await.unwrap(), 2);
    let j2 = s.job("j2").await.unwrap().unwrap();
    assert_eq!(
        (j2.status, j2.error.as_deref()),
        (JobStatus::Failed, Some("restarted"))
    );
    assert!(s.delete_job("j2").await.unwrap());
    assert!(s.job("j2").await.unwrap().is_none());

    // 0008's SQLite rebuild keeps every row and column as it was, and the index (run again here,
    // over rows, inside a transaction as the migrator runs it).
    if let Store::Sqlite(p) = &env.store {
        let m8 = vectura_store::schema::MIGRATIONS
            .iter()
            .find(|m| m.version == 8)
            .expect("migration 0008");
        let sql = m8.raw.expect("0008 is hand-written").sqlite;
        let mut tx = p.begin().await.unwrap();
        sqlx::raw_sql(sql).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        let again = s.job("j1").await.unwrap().unwrap();
        assert_eq!(again.status, JobStatus::Done);
        assert_eq!(again.request, req);
        assert_eq!(again.progress, prog);
        assert_eq!(again.result, j.result);
        assert_eq!(
            (again.started_at_ms, again.finished_at_ms),
            (Some(11), Some(13))
        );
        assert_eq!(s.jobs("sweep", 10).await.unwrap().len(), 1);
        assert_eq!(
            env.count(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' \
                 AND name = 'idx_web_jobs_kind_created_at_ms' AND tbl_name = 'web_jobs'"
            )
            .await,
            1
        );
        assert_eq!(
            env.count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'web_jobs_0008'")
                .await,
            0
        );
    }
}
