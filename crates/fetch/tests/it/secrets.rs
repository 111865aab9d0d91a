//! An Alpaca error reply that echoes the request's credentials (the emulator's `echo_credentials`
//! fault, as a gateway quoting the headers would): neither the fetch's error, nor its events, nor the
//! day's stored error (`bt_day_status.error`) carries the secret or the whole key id. SQLite here;
//! the same on Postgres below (ignored unless run by scripts/test).

use std::time::Duration;

use chrono::NaiveDate;
use vectura_data::alpaca::{AlpacaData, Feed, RetryPolicy};
use vectura_data::ratelimit::TokenBucket;
use vectura_emulator::{Config, Emulator, Faults};
use vectura_fetch::{fetch, DayOutcome, Event, FetchOptions};
use vectura_store::Store;

const KEY: &str = "PKECHOKEY12345";
const SECRET: &str = "echoed-secret-0123456789abcdef";
/// 2024-07-01 12:00Z: every day asked for has closed.
const NOW: i64 = 1_719_835_200;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn client(base: &str) -> AlpacaData {
    AlpacaData::new(KEY, SECRET)
        .with_base_url(base)
        .with_feed(Feed::Sip)
        .with_retry(RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retry_after: Duration::from_millis(5),
        })
        .with_rate_limiter(std::sync::Arc::new(TokenBucket::new(10_000, 10_000.0)))
}

fn opts() -> FetchOptions {
    FetchOptions {
        passes: 1,
        pass_delay: Duration::ZERO,
        search_first_day: false,
        now: NOW,
        ..FetchOptions::default()
    }
}

/// Asserts that `text` has no trace of the credentials, and that something was masked in it.
fn assert_masked(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} shows the secret: {text}");
    assert!(!text.contains(KEY), "{what} shows the whole key id: {text}");
    assert!(
        text.contains("***"),
        "{what}: the echo should be there, masked: {text}"
    );
}

/// The day's stored error and every error column of `bt_day_status`, read back through the store.
async fn stored_errors(store: &Store, symbol: &str, day: NaiveDate) -> String {
    let status = store
        .day_status(symbol, day)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{symbol} {day} has a status row"));
    status.error.expect("a failed day keeps its error")
}

/// A day failing with an echoing 500 (retried, then given up) and then one refused with an echoing
/// 403 (which stops the fetch): both errors, as printed and as stored, are masked.
async fn echoed_secret_is_never_printed_or_stored(store: &Store) {
    let emu = Emulator::start(Config {
        now: Some(NOW),
        faults: Faults {
            echo_credentials: true,
            ..Faults::default()
        },
        ..Config::default()
    })
    .await
    .unwrap();
    let h = emu.handle();
    let failing = d(2024, 1, 3);
    h.fail_day_with("AAA", failing, 10, 500);
    let mut events = Vec::new();
    let report = fetch(
        store,
        &client(&emu.base_url()),
        &["AAA".to_string()],
        d(2024, 1, 2),
        d(2024, 1, 4),
        &opts(),
        |e| events.push(format!("{e:?}")),
    )
    .await
    .unwrap();
    assert_eq!(report.symbols["AAA"].failed.len(), 1, "{report:?}");
    // The emulator did echo the secret: the test checks masking, not a quiet server.
    assert!(h.requests().iter().any(|r| r.status == 500));
    let failed: Vec<&String> = events.iter().filter(|e| e.contains("Failed")).collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    assert_masked("the failed day's event", failed[0]);
    for e in &events {
        assert!(!e.contains(SECRET), "{e}");
    }
    assert_masked(
        "the stored 500 error",
        &stored_errors(store, "AAA", failing).await,
    );

    // A refusal (403 with the echo) stops the fetch: its error and the stored row are masked too.
    let strict = Emulator::start(Config {
        now: Some(NOW),
        keys: Some(vec![(KEY.into(), "the-right-secret".into())]),
        faults: Faults {
            echo_credentials: true,
            ..Faults::default()
        },
        ..Config::default()
    })
    .await
    .unwrap();
    let mut outcomes = Vec::new();
    let err = fetch(
        store,
        &client(&strict.base_url()),
        &["BBB".to_string()],
        d(2024, 1, 2),
        d(2024, 1, 2),
        &opts(),
        |e| {
            if let Event::Day {
                outcome: DayOutcome::Failed(m),
                ..
            } = e
            {
                outcomes.push(m.clone());
            }
        },
    )
    .await
    .unwrap_err();
    assert_masked("the fetch's error", &err.to_string());
    assert_masked("the fetch's error (Debug)", &format!("{err:?}"));
    assert_eq!(outcomes.len(), 1);
    assert_masked("the refused day's event", &outcomes[0]);
    assert_masked(
        "the stored 403 error",
        &stored_errors(store, "BBB", d(2024, 1, 2)).await,
    );
}

#[tokio::test]
async fn an_echoed_secret_is_never_printed_or_stored_in_sqlite() {
    let dir = std::env::temp_dir().join(format!("vectura-fetch-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("v.db").display());
    let store = Store::open(&url).await.unwrap();
    echoed_secret_is_never_printed_or_stored(&store).await;
    // Every error column, not only the two rows asked for.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let errors: Vec<Option<String>> = sqlx::query_scalar("SELECT error FROM bt_day_status")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(errors.iter().flatten().count(), 2, "{errors:?}");
    for e in errors.iter().flatten() {
        assert!(!e.contains(SECRET) && !e.contains(KEY), "{e}");
    }
    pool.close().await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test"]
async fn an_echoed_secret_is_never_printed_or_stored_in_postgres() {
    let base = std::env::var("VECTURA_TEST_DATABASE_URL")
        .expect("VECTURA_TEST_DATABASE_URL names the Postgres test server (scripts/test sets it)");
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&base)
        .await
        .unwrap_or_else(|e| panic!("{base} cannot be reached: {e}"));
    let schema = format!("vf_secrets_{}", std::process::id());
    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let store = Store::open(&format!("{base}{sep}options=-c%20search_path%3D{schema}"))
        .await
        .unwrap();
    echoed_secret_is_never_printed_or_stored(&store).await;
    let errors: Vec<Option<String>> =
        sqlx::query_scalar(&format!("SELECT error FROM {schema}.bt_day_status"))
            .fetch_all(&admin)
            .await
            .unwrap();
    assert_eq!(errors.iter().flatten().count(), 2, "{errors:?}");
    for e in errors.iter().flatten() {
        assert!(!e.contains(SECRET) && !e.contains(KEY), "{e}");
    }
    store.close().await;
    let _ = sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await;
}
