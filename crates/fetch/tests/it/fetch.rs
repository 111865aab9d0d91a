//! Fetches against the local emulator (real HTTP, Alpaca's JSON) into a real SQLite store.

use std::time::Duration;

use chrono::NaiveDate;
use vectura_core::calendar;
use vectura_data::alpaca::{AlpacaData, Feed, RetryPolicy};
use vectura_data::alphavantage::AlphaVantage;
use vectura_data::ratelimit::TokenBucket;
use vectura_emulator::{AvReply, Config, Emulator, Faults, RetryAfter};
use vectura_fetch::{
    closed_sessions, fetch, find_first_available_day, gaps, now_unix, refresh_splits, DayOutcome,
    Event, FetchOptions, SplitRefresh, SplitSources,
};
use vectura_store::Store;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

const KEY: &str = "PKTEST";
const LIMIT: u32 = 100;
const WINDOW: Duration = Duration::from_secs(2);

fn client(base: &str) -> AlpacaData {
    AlpacaData::new(KEY, "secret-value")
        .with_base_url(base)
        .with_feed(Feed::Sip)
        .with_retry(RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_millis(50),
        })
        .with_rate_limiter(std::sync::Arc::new(TokenBucket::per_window(LIMIT, WINDOW)))
}

fn opts() -> FetchOptions {
    FetchOptions {
        passes: 4,
        pass_delay: Duration::from_millis(20),
        ..FetchOptions::default()
    }
}

async fn store() -> (tempdir::Dir, Store) {
    let dir = tempdir::Dir::new();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("v.db").display());
    let s = Store::open(&url).await.unwrap();
    (dir, s)
}

/// A store in a private schema of the Postgres test server (`VECTURA_TEST_DATABASE_URL`), dropped
/// by [`drop_schema`]. Without a reachable server it panics: the test is `#[ignore]`d, so running it
/// means the server is expected, and a missing one must fail rather than pass by doing nothing.
async fn postgres_store() -> (sqlx::PgPool, String, Store) {
    let base = std::env::var("VECTURA_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("VECTURA_TEST_DATABASE_URL is not set: run scripts/test, or set it to a reachable server (for example postgres://postgres@127.0.0.1:5432/test)")
    });
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&base)
        .await
        .unwrap_or_else(|e| {
            panic!("{base} cannot be reached: {e}: start PostgreSQL (scripts/test does)")
        });
    let schema = format!("vf_{}_{}", std::process::id(), now_unix());
    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let store = Store::open(&format!("{base}{sep}options=-c%20search_path%3D{schema}"))
        .await
        .unwrap();
    (admin, schema, store)
}

async fn drop_schema(admin: sqlx::PgPool, schema: String, store: Store) {
    store.close().await;
    let _ = sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await;
}

/// A year for two symbols through 429s (some with Retry-After), 5xx and one day failing three times:
/// every session ends stored, no gaps are left, the pacing never exceeds the limit, and a second run
/// asks for no day again. SQLite here; Postgres below, the same test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_for_two_symbols_through_faults() {
    let (_dir, store) = store().await;
    year_through_faults(&store).await;
}

/// The same year fetch into the real Postgres (as a Supabase connection string would be).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: run scripts/test"]
async fn a_year_for_two_symbols_through_faults_on_postgres() {
    let (admin, schema, store) = postgres_store().await;
    year_through_faults(&store).await;
    drop_schema(admin, schema, store).await;
}

async fn year_through_faults(store: &Store) {
    let store = store.clone();
    let failing = d(2024, 7, 3); // an early close, too
    let emu = Emulator::start(Config {
        faults: Faults {
            every_nth_429: Some(9),
            retry_after: RetryAfter::EveryOther(1),
            error_rate: 0.04,
            rate_limit: Some(LIMIT),
            rate_window: Some(WINDOW),
            ..Faults::default()
        },
        ..Config::default()
    })
    .await
    .unwrap();
    emu.handle().fail_day("BBB", failing, 3);
    let alpaca = client(&emu.base_url());
    let symbols = vec!["AAA".to_string(), "bbb".to_string()];
    let (from, to) = (d(2024, 1, 1), d(2024, 12, 31));
    let mut failures = 0;
    let mut passes = 0;
    let report = fetch(&store, &alpaca, &symbols, from, to, &opts(), |e| match e {
        Event::Day {
            outcome: DayOutcome::Failed(_),
            ..
        } => failures += 1,
        Event::Pass { .. } => passes += 1,
        _ => {}
    })
    .await
    .unwrap();
    let sessions = closed_sessions(from, to, now_unix());
    assert_eq!(sessions.len(), 252);
    assert!(report.complete(), "{report:?}");
    assert!(
        failures >= 2,
        "the failing day failed in the first pass: {failures}"
    );
    assert!(passes >= 2, "failed days were retried in a later pass");
    for sym in ["AAA", "BBB"] {
        let rep = &report.symbols[sym];
        assert_eq!(rep.first_available_day, Some(d(2016, 1, 4)));
        assert_eq!(rep.stored, 252, "{sym}");
        assert_eq!(rep.closed, 0);
        assert!(gaps(&store, sym, from, to, now_unix())
            .await
            .unwrap()
            .is_empty());
        let r = store.range(sym).await.unwrap().unwrap();
        assert_eq!(r.days_stored, 252);
        assert_eq!(
            (r.have_from, r.have_to),
            (Some(d(2024, 1, 2)), Some(d(2024, 12, 31)))
        );
        // The stored bars are the emulator's, bar for bar, on the retried early-close day.
        let s = calendar::session(failing).unwrap();
        let stored = store.load(sym, failing, failing).await.unwrap();
        let served = emu.handle().minute_bars(sym, s.open, s.close);
        assert_eq!(stored.len(), served.len());
        assert_eq!(stored.len(), 210, "13:00 close");
        for (i, b) in served.iter().enumerate() {
            assert_eq!(
                (
                    stored.ts[i],
                    stored.open[i],
                    stored.high[i],
                    stored.low[i],
                    stored.close[i]
                ),
                (b.t, b.o, b.h, b.l, b.c)
            );
            assert_eq!(stored.volume[i], b.v as f64);
        }
    }
    let status = store.day_status("BBB", failing).await.unwrap().unwrap();
    assert_eq!(status.state, vectura_store::DayState::Fetched);
    let max = emu.handle().max_requests_in_window(Some(KEY), WINDOW);
    assert!(max <= LIMIT as usize, "{max} requests within {WINDOW:?}");
    let sent_429 = emu
        .handle()
        .requests_for_key(KEY)
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert!(sent_429 > 0, "the injected 429s were met");

    // Resumable: a second run asks for nothing but the listing check it already has.
    emu.handle().clear_requests();
    let again = fetch(&store, &alpaca, &symbols, from, to, &opts(), |_| {})
        .await
        .unwrap();
    assert_eq!(again.symbols["AAA"].stored, 0);
    assert_eq!(again.symbols["AAA"].already, 252);
    assert_eq!(emu.handle().request_count(), 0);
}

/// The first-day search finds a listing day in the middle of the history without asking for each
/// day, and the days before it are never requested nor counted as gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_available_day_is_searched_not_probed_day_by_day() {
    let listing = d(2023, 5, 17);
    let emu = Emulator::start(Config {
        first_day: listing,
        ..Config::default()
    })
    .await
    .unwrap();
    let alpaca = client(&emu.base_url());
    let found = find_first_available_day(&alpaca, "NEW", d(2016, 1, 4), d(2025, 6, 30), now_unix())
        .await
        .unwrap();
    assert_eq!(found, Some(listing));
    let probes = emu.handle().request_count();
    assert!(probes <= 14, "{probes} probes");

    let (_dir, store) = store().await;
    emu.handle().clear_requests();
    let report = fetch(
        &store,
        &alpaca,
        &["NEW".to_string()],
        d(2023, 5, 1),
        d(2023, 5, 31),
        &opts(),
        |_| {},
    )
    .await
    .unwrap();
    let rep = &report.symbols["NEW"];
    assert_eq!(rep.first_available_day, Some(listing));
    assert_eq!(rep.before_listing, 12, "May 1..16 holds 12 sessions");
    assert_eq!(rep.stored, 10);
    assert!(report.complete());
    // The search again (stored now: not repeated) plus one request per stored day.
    let bars_requests = emu
        .handle()
        .requests()
        .iter()
        .filter(|r| r.query.contains("timeframe=1Min"))
        .count();
    assert_eq!(bars_requests, 10);
}

/// A symbol the provider has nothing for is found out by the search alone: no day is requested,
/// nothing is stored, and the report says so.
#[tokio::test]
async fn a_symbol_without_data_is_not_fetched_day_by_day() {
    let emu = Emulator::start(Config {
        first_day: d(2099, 1, 2),
        ..Config::default()
    })
    .await
    .unwrap();
    let (_dir, store) = store().await;
    let report = fetch(
        &store,
        &client(&emu.base_url()),
        &["NOPE".to_string()],
        d(2024, 1, 1),
        d(2024, 12, 31),
        &opts(),
        |_| {},
    )
    .await
    .unwrap();
    assert!(report.symbols["NOPE"].no_data);
    assert!(!report.complete());
    let minute_requests = emu
        .handle()
        .requests()
        .iter()
        .filter(|r| r.query.contains("timeframe=1Min"))
        .count();
    assert_eq!(minute_requests, 0);
    assert!(
        emu.handle().request_count() <= 2,
        "one probe of the last window"
    );
    assert!(store
        .range("NOPE")
        .await
        .unwrap()
        .is_none_or(|r| r.days_stored == 0 && r.days_closed == 0));
}

/// Credentials refused: the fetch stops at once with the fix in the message; nothing is stored.
#[tokio::test]
async fn refused_credentials_stop_the_fetch() {
    let emu = Emulator::start(Config {
        keys: Some(vec![("OTHER".into(), "x".into())]),
        ..Config::default()
    })
    .await
    .unwrap();
    let (_dir, store) = store().await;
    let err = fetch(
        &store,
        &client(&emu.base_url()),
        &["AAA".to_string()],
        d(2024, 1, 1),
        d(2024, 1, 31),
        &FetchOptions {
            search_first_day: false,
            ..opts()
        },
        |_| {},
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("APCA_API_KEY_ID"), "{err}");
    let r = store.range("AAA").await.unwrap();
    assert!(r.is_none_or(|r| r.days_stored == 0));
}

/// An Alpha Vantage rate-limit reply keeps the stored split list; a real list replaces it; the
/// refresh calls at most once a day.
#[tokio::test]
async fn splits_refresh_keeps_the_list_on_a_refusal() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    emu.handle().set_splits("AAA", vec![(d(2020, 8, 31), 4.0)]);
    let (_dir, store) = store().await;
    let av = AlphaVantage::new("AVKEY").with_base_url(emu.base_url());
    let today = d(2026, 11, 24);
    let r = refresh_splits(&store, av_only(&av), "AAA", today, false)
        .await
        .unwrap();
    assert_eq!(r, SplitRefresh::Changed(1));
    let before = store.splits("AAA").await.unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].ratio, 4.0);

    let n = emu.handle().request_count();
    assert_eq!(
        refresh_splits(&store, av_only(&av), "AAA", today, false)
            .await
            .unwrap(),
        SplitRefresh::CheckedToday
    );
    assert_eq!(
        emu.handle().request_count(),
        n,
        "no second call the same day"
    );

    for reply in [
        AvReply::Information,
        AvReply::Note,
        AvReply::ErrorMessage,
        AvReply::Html,
    ] {
        emu.handle().update_faults(|f| f.av_reply = reply.clone());
        let r = refresh_splits(&store, av_only(&av), "AAA", d(2026, 11, 25), true)
            .await
            .unwrap();
        assert!(matches!(r, SplitRefresh::Kept(_)), "{reply:?}: {r:?}");
        assert_eq!(store.splits("AAA").await.unwrap(), before, "{reply:?}");
    }
}

fn av_only(av: &AlphaVantage) -> SplitSources<'_> {
    SplitSources {
        alpha_vantage: Some(av),
        alpaca: None,
    }
}

/// Alpaca's corporate actions stand in when Alpha Vantage refuses: forward and reverse splits, as
/// ratios, oldest first.
#[tokio::test]
async fn alpaca_corporate_actions_are_the_second_split_source() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    emu.handle()
        .set_splits("AAA", vec![(d(2022, 8, 25), 3.0), (d(2019, 3, 1), 0.1)]);
    emu.handle().set_splits("OTHER", vec![(d(2021, 1, 4), 2.0)]);
    emu.handle()
        .update_faults(|f| f.av_reply = AvReply::Information);
    let (_dir, store) = store().await;
    let av = AlphaVantage::new("AVKEY").with_base_url(emu.base_url());
    let alpaca = client(&emu.base_url());
    let both = SplitSources {
        alpha_vantage: Some(&av),
        alpaca: Some(&alpaca),
    };
    let r = refresh_splits(&store, both, "AAA", d(2026, 11, 24), false)
        .await
        .unwrap();
    assert_eq!(r, SplitRefresh::Changed(2));
    let got = store.splits("AAA").await.unwrap();
    assert_eq!(
        got.iter()
            .map(|s| (s.effective, s.ratio))
            .collect::<Vec<_>>(),
        vec![(d(2019, 3, 1), 0.1), (d(2022, 8, 25), 3.0)]
    );
    // Alpaca alone, too (no Alpha Vantage key).
    let only = SplitSources {
        alpha_vantage: None,
        alpaca: Some(&alpaca),
    };
    assert_eq!(
        refresh_splits(&store, only, "OTHER", d(2026, 11, 24), false)
            .await
            .unwrap(),
        SplitRefresh::Changed(1)
    );
}

mod tempdir {
    use std::path::{Path, PathBuf};

    /// A directory removed on drop.
    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("vectura-fetch-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
