//! The Alpaca and Alpha Vantage clients against the emulator (in process, on a random port):
//! paging, retries of 429/5xx/timeouts, failing days, the token bucket, auth errors, and Alpha
//! Vantage's replies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use vectura_core::calendar::{session, Session};
use vectura_core::Split;
use vectura_data::alpaca::{AlpacaData, Feed, FetchError, RetryPolicy, Timeframe};
use vectura_data::alphavantage::{AlphaVantage, SplitsError};
use vectura_data::ratelimit::TokenBucket;
use vectura_emulator::{AvReply, Config, Emulator, RetryAfter};

const KEY: &str = "PKTEST";
const SECRET: &str = "test-secret-value";

fn sess(y: i32, m: u32, d: u32) -> Session {
    session(NaiveDate::from_ymd_opt(y, m, d).unwrap()).expect("a session day")
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

async fn emulator() -> Emulator {
    Emulator::start(Config {
        now: Some(1_719_835_200), // 2024-07-01 12:00Z
        extended_hours: true,
        ..Config::default()
    })
    .await
    .expect("the emulator starts")
}

fn fast(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(5),
    }
}

/// A SIP client of the emulator with quick retries and a bucket that never waits here.
fn client(emu: &Emulator) -> AlpacaData {
    AlpacaData::new(KEY, SECRET)
        .with_base_url(emu.base_url())
        .with_feed(Feed::Sip)
        .with_retry(fast(4))
        .with_rate_limiter(Arc::new(TokenBucket::new(10_000, 10_000.0)))
}

fn statuses(emu: &Emulator) -> Vec<u16> {
    emu.handle().requests().iter().map(|r| r.status).collect()
}

#[tokio::test]
async fn a_sessions_bars_come_back_complete_across_pages() {
    let emu = emulator().await;
    let h = emu.handle();
    let s = sess(2024, 1, 2);
    let bars = client(&emu)
        .with_page_limit(50)
        .bars_for_session("SPY", &s, Timeframe::MINUTE)
        .await
        .unwrap();
    assert_eq!(bars.len(), 390);
    assert_eq!(bars.ts[0], s.open);
    assert_eq!(*bars.ts.last().unwrap(), s.close - 60);
    let want = h.minute_bars("SPY", s.open, s.close);
    assert_eq!(want.len(), 390);
    for (i, w) in want.iter().enumerate() {
        let b = bars.get(i);
        assert_eq!(
            (b.ts, b.open, b.high, b.low, b.close, b.volume),
            (w.t, w.o, w.h, w.l, w.c, w.v as f64)
        );
        assert_eq!((b.vwap, b.trade_count), (Some(w.vw), Some(w.n)));
    }
    let log = h.requests();
    assert_eq!(log.len(), 8, "390 bars in pages of 50");
    for r in &log {
        assert_eq!(r.status, 200);
        assert_eq!(r.key.as_deref(), Some(KEY));
        for p in ["adjustment=raw", "feed=sip", "limit=50", "timeframe=1Min"] {
            assert!(r.query.contains(p), "{} lacks {p}", r.query);
        }
    }
    assert_eq!(
        log.iter()
            .filter(|r| r.query.contains("page_token="))
            .count(),
        7
    );

    // An early close (13:00 ET), extended hours, daily bars, the IEX feed.
    let e = sess(2024, 11, 29);
    let emu2 = Emulator::start(Config {
        now: Some(1_735_689_600), // 2025-01-01
        extended_hours: true,
        ..Config::default()
    })
    .await
    .unwrap();
    let early = client(&emu2)
        .with_page_limit(100)
        .bars_for_session("SPY", &e, Timeframe::MINUTE)
        .await
        .unwrap();
    assert_eq!(early.len(), 210);
    assert_eq!(*early.ts.last().unwrap(), e.close - 60);

    let ext = client(&emu)
        .with_extended(true)
        .with_page_limit(100)
        .bars_for_session("SPY", &s, Timeframe::MINUTE)
        .await
        .unwrap();
    assert_eq!(
        ext.len(),
        h.minute_bars("SPY", s.pre_open(), s.post_close()).len()
    );
    assert!(ext.len() > 390);
    assert!(ext.ts[0] >= s.pre_open() && *ext.ts.last().unwrap() < s.post_close());

    let daily = client(&emu)
        .bars_for_session("SPY", &s, Timeframe::Day)
        .await
        .unwrap();
    assert!(daily.daily);
    assert_eq!(daily.ts, vec![s.open]);
    assert_eq!(daily.open[0], want[0].o);
    assert_eq!(daily.close[0], want[389].c);

    let iex = client(&emu)
        .with_feed(Feed::Iex)
        .bars_for_session("SPY", &s, Timeframe::MINUTE)
        .await
        .unwrap();
    assert_eq!(iex.close, bars.close);
    assert!(iex.volume.iter().sum::<f64>() < bars.volume.iter().sum::<f64>() / 10.0);
}

#[tokio::test]
async fn several_symbols_page_together() {
    let emu = emulator().await;
    let s = sess(2024, 3, 1);
    let c = client(&emu).with_page_limit(100);
    let all = c
        .bars_multi(&["SPY", "aapl", "MSFT"], s.open, s.close, Timeframe::MINUTE)
        .await
        .unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["AAPL", "MSFT", "SPY"]);
    for (sym, series) in &all {
        assert_eq!(series.len(), 390, "{sym}");
        let one = c
            .bars_for_session(sym, &s, Timeframe::MINUTE)
            .await
            .unwrap();
        assert_eq!(&one, series, "{sym}");
    }
    // Before Alpaca's history: every symbol is there, empty.
    let old = sess(2015, 3, 2);
    let none = c
        .bars_multi(&["SPY", "AAPL"], old.open, old.close, Timeframe::MINUTE)
        .await
        .unwrap();
    assert!(none.len() == 2 && none.values().all(|s| s.is_empty()));
}

#[tokio::test]
async fn rate_limit_replies_and_server_errors_are_retried() {
    let emu = emulator().await;
    let h = emu.handle();
    let s = sess(2024, 1, 2);
    h.update_faults(|f| f.every_nth_429 = Some(2));
    let bars = client(&emu)
        .with_page_limit(50)
        .with_max_attempts(2)
        .bars_for_session("SPY", &s, Timeframe::MINUTE)
        .await
        .unwrap();
    assert_eq!(bars.len(), 390);
    let st = statuses(&emu);
    assert_eq!(st.iter().filter(|&&x| x == 429).count(), 7, "{st:?}");
    assert_eq!(st.iter().filter(|&&x| x == 200).count(), 8, "{st:?}");

    h.clear_faults();
    h.clear_requests();
    let next = emu.handle().faults(); // no faults left
    assert!(next.every_nth_429.is_none());
    // Requests so far: 15; the next three fail with 500, 502 (HTML) and 503.
    h.update_faults(|f| f.fail_requests = [16, 17, 18].into());
    let again = client(&emu)
        .bars_for_session("SPY", &s, Timeframe::MINUTE)
        .await
        .unwrap();
    assert_eq!(again, bars);
    assert_eq!(statuses(&emu), [500, 502, 503, 200]);

    // With a 5xx probability, everything still arrives.
    h.clear_faults();
    h.update_faults(|f| f.error_rate = 0.3);
    let noisy = client(&emu)
        .with_page_limit(30)
        .with_max_attempts(10)
        .bars_for_session("SPY", &s, Timeframe::MINUTE)
        .await
        .unwrap();
    assert_eq!(noisy, bars);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let emu = emulator().await;
    let h = emu.handle();
    h.update_faults(|f| f.retry_after = RetryAfter::Always(1));
    h.fail_day_with("SPY", day(2024, 1, 2), 1, 429);
    let t = Instant::now();
    let bars = client(&emu)
        .bars_for_session("SPY", &sess(2024, 1, 2), Timeframe::MINUTE)
        .await
        .unwrap();
    assert_eq!(bars.len(), 390);
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(statuses(&emu), [429, 200]);
}

#[tokio::test]
async fn a_day_failing_three_times_needs_four_attempts() {
    let emu = emulator().await;
    let h = emu.handle();
    h.fail_day("SPY", day(2024, 1, 2), 3);
    let ok = client(&emu)
        .with_max_attempts(4)
        .bars_for_session("SPY", &sess(2024, 1, 2), Timeframe::MINUTE)
        .await
        .unwrap();
    assert_eq!(ok.len(), 390);
    assert_eq!(statuses(&emu), [500, 500, 500, 200]);

    h.clear_requests();
    h.fail_day("SPY", day(2024, 1, 3), 3);
    let c = client(&emu).with_max_attempts(2);
    let err = c
        .bars_for_session("SPY", &sess(2024, 1, 3), Timeframe::MINUTE)
        .await
        .unwrap_err();
    match &err {
        FetchError::GaveUp {
            symbol,
            day,
            attempts,
            status,
            ..
        } => {
            assert_eq!((symbol.as_str(), day.as_str()), ("SPY", "2024-01-03"));
            assert_eq!((*attempts, *status), (2, Some(500)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.status(), Some(500));
    assert!(err.is_transient());
    let msg = err.to_string();
    for part in ["SPY", "2024-01-03", "2 attempts", "HTTP 500", "again later"] {
        assert!(msg.contains(part), "{msg}");
    }
    assert!(!msg.contains(SECRET));
    assert_eq!(statuses(&emu), [500, 500]);
    // One failure is left: fetching again later works with the same two attempts.
    let later = c
        .bars_for_session("SPY", &sess(2024, 1, 3), Timeframe::MINUTE)
        .await
        .unwrap();
    assert_eq!(later.len(), 390);
}

#[tokio::test]
async fn timeouts_are_retried_and_reported() {
    let emu = emulator().await;
    let h = emu.handle();
    let s = sess(2024, 1, 2);
    h.update_faults(|f| {
        f.delay = Duration::from_millis(1_500);
        f.delay_requests = Some(1);
    });
    let c = client(&emu).with_timeout(Duration::from_millis(400));
    let bars = c.bars_for_session("SPY", &s, Timeframe::Day).await.unwrap();
    assert_eq!(bars.len(), 1);
    assert_eq!(h.request_count(), 2);

    h.update_faults(|f| f.delay_requests = None);
    let err = c
        .with_max_attempts(2)
        .bars_for_session("SPY", &s, Timeframe::Day)
        .await
        .unwrap_err();
    match &err {
        FetchError::GaveUp {
            status: None,
            last,
            attempts: 2,
            ..
        } => {
            assert!(last.contains("no reply within 0.4 s"), "{last}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn every_request_and_every_retry_takes_a_token() {
    // Alpaca's default: never more than 200 in any 60 s (the pacing itself is checked with a manual
    // clock in ratelimit.rs; here: that the client asks the bucket before every HTTP request).
    let default = TokenBucket::alpaca_default();
    assert!(default.max_in(Duration::from_secs(60)) <= 200.0);

    let emu = emulator().await;
    let h = emu.handle();
    // Every 4th request is a 429 (retried at once), so retries must take tokens too.
    h.update_faults(|f| {
        f.every_nth_429 = Some(4);
        f.retry_after = RetryAfter::Always(0);
    });
    // A bucket that holds enough tokens for the test and never refills (in any test's lifetime).
    const TOKENS: u32 = 500;
    let bucket = Arc::new(TokenBucket::new(TOKENS, 1e-9));
    let c = client(&emu).with_rate_limiter(bucket.clone());
    let s = sess(2024, 1, 2);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let c = c.clone();
        tasks.spawn(async move { c.bars_for_session("SPY", &s, Timeframe::Day).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().unwrap().len(), 1);
    }
    let sent = h.request_count();
    let throttled = statuses(&emu).iter().filter(|&&s| s == 429).count();
    assert!(throttled >= 10, "{throttled} of {sent} were 429s");
    assert_eq!(
        sent,
        50 + throttled,
        "one request per call plus one per 429"
    );
    let left = (0..TOKENS).take_while(|_| bucket.try_acquire()).count();
    assert_eq!(left + sent, TOKENS as usize, "tokens taken = requests sent");
}

#[tokio::test]
async fn missing_or_wrong_credentials_fail_at_once_with_the_fix() {
    let emu = emulator().await;
    let s = sess(2024, 1, 2);
    let err = AlpacaData::new("", "")
        .with_base_url(emu.base_url())
        .with_retry(fast(5))
        .bars_for_session("SPY", &s, Timeframe::MINUTE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("APCA_API_KEY_ID") && msg.contains("SPY 2024-01-02"),
        "{msg}"
    );
    assert_eq!(emu.handle().request_count(), 1, "no retry of a 401");

    let strict = Emulator::start(Config {
        keys: Some(vec![(KEY.into(), "the-right-one".into())]),
        now: Some(1_719_835_200),
        ..Config::default()
    })
    .await
    .unwrap();
    let err = client(&strict)
        .bars_for_session("SPY", &s, Timeframe::MINUTE)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::Unauthorized { status: 403, message, .. } if message == "forbidden."),
        "{err:?}"
    );
    assert!(!err.to_string().contains(SECRET));
    assert!(!format!("{err:?}").contains(SECRET));

    // Any other 4xx is not retried either.
    emu.handle().clear_requests();
    emu.handle().fail_day_with("SPY", day(2024, 1, 2), 5, 422);
    let err = client(&emu)
        .bars_for_session("SPY", &s, Timeframe::MINUTE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Rejected { status: 422, .. }),
        "{err:?}"
    );
    assert_eq!(emu.handle().request_count(), 1);

    let bad = client(&emu)
        .bars_for_session("NOT A SYMBOL", &s, Timeframe::MINUTE)
        .await
        .unwrap_err();
    assert!(matches!(bad, FetchError::BadSymbol(_)));
}

/// Alpaca error replies that quote the request's key id and secret (the emulator's
/// `echo_credentials` fault): every error built from them has both masked, in `Display` and `Debug`.
#[tokio::test]
async fn echoed_credentials_are_masked_in_every_error() {
    let emu = emulator().await;
    let h = emu.handle();
    h.update_faults(|f| {
        f.echo_credentials = true;
        f.retry_after = RetryAfter::Always(0);
    });
    let s = sess(2024, 1, 2);
    let check = |what: &str, err: &FetchError| {
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains(SECRET), "{what} shows the secret: {text}");
            assert!(!text.contains(KEY), "{what} shows the whole key id: {text}");
            // The echo was there (so the test is not passing on a quiet server), masked.
            assert!(text.contains("APCA-API-SECRET-KEY: ***"), "{what}: {text}");
        }
    };
    // 500 (JSON), 502 (an HTML page's title), 429: retried, then given up with the last message.
    for status in [500, 502, 429] {
        h.clear_requests();
        h.fail_day_with("SPY", day(2024, 1, 2), 2, status);
        let err = client(&emu)
            .with_max_attempts(2)
            .bars_for_session("SPY", &s, Timeframe::MINUTE)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::GaveUp { .. }), "{err:?}");
        assert_eq!(statuses(&emu), [status, status]);
        check(&format!("HTTP {status}"), &err);
    }
    // 422: rejected at once.
    h.fail_day_with("SPY", day(2024, 1, 2), 1, 422);
    let err = client(&emu)
        .bars_for_session("SPY", &s, Timeframe::MINUTE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Rejected { status: 422, .. }),
        "{err:?}"
    );
    check("HTTP 422", &err);
    // 403 from a server that knows another secret for the key, on the bars and the splits routes.
    let strict = Emulator::start(Config {
        keys: Some(vec![(KEY.into(), "the-right-one".into())]),
        now: Some(1_719_835_200),
        faults: vectura_emulator::Faults {
            echo_credentials: true,
            ..Default::default()
        },
        ..Config::default()
    })
    .await
    .unwrap();
    let err = client(&strict)
        .bars_multi(&["SPY", "AAPL"], s.open, s.close, Timeframe::MINUTE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Unauthorized { status: 403, .. }),
        "{err:?}"
    );
    check("HTTP 403 (bars)", &err);
    let err = client(&strict)
        .splits("SPY", day(2020, 1, 1), day(2024, 1, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Unauthorized { status: 403, .. }),
        "{err:?}"
    );
    check("HTTP 403 (corporate actions)", &err);
}

const AV_KEY: &str = "AVSECRETKEY42";

/// Whether an error is of the expected kind.
type ErrorKind = fn(&SplitsError) -> bool;

fn av(emu: &Emulator) -> AlphaVantage {
    AlphaVantage::new(AV_KEY).with_base_url(emu.base_url())
}

#[tokio::test]
async fn alpha_vantage_splits_are_parsed_oldest_first() {
    let emu = emulator().await;
    emu.handle().set_splits(
        "NVDA",
        vec![(day(2024, 6, 10), 10.0), (day(2021, 7, 20), 4.0)],
    );
    let splits = av(&emu).splits("nvda").await.unwrap();
    assert_eq!(
        splits,
        vec![
            Split {
                effective: day(2021, 7, 20),
                ratio: 4.0
            },
            Split {
                effective: day(2024, 6, 10),
                ratio: 10.0
            },
        ]
    );
    assert_eq!(av(&emu).splits("SPY").await.unwrap(), vec![]);
    let log = emu.handle().requests();
    assert!(log.iter().all(|r| r.path == "/query" && r.status == 200));
    assert!(log[0].query.contains("function=SPLITS") && log[0].query.contains("symbol=NVDA"));
}

#[tokio::test]
async fn alpha_vantage_refusals_are_errors_not_empty_lists() {
    let emu = emulator().await;
    let h = emu.handle();
    h.set_splits("AAPL", vec![(day(2020, 8, 31), 4.0)]);
    let cases: Vec<(AvReply, ErrorKind)> = vec![
        (AvReply::Information, |e| {
            matches!(e, SplitsError::RateLimited { .. })
        }),
        (AvReply::Note, |e| {
            matches!(e, SplitsError::RateLimited { .. })
        }),
        (AvReply::ErrorMessage, |e| {
            matches!(e, SplitsError::Service { status: None, .. })
        }),
        (AvReply::Html, |e| matches!(e, SplitsError::Invalid { .. })),
        (AvReply::Empty, |e| matches!(e, SplitsError::Invalid { .. })),
        (AvReply::BadJson, |e| {
            matches!(e, SplitsError::Invalid { .. })
        }),
        (
            AvReply::Raw {
                status: 200,
                content_type: "application/json".into(),
                body: "{}".into(),
            },
            |e| matches!(e, SplitsError::Invalid { .. }),
        ),
        (
            AvReply::Raw {
                status: 503,
                content_type: "text/html".into(),
                body: "<html>down</html>".into(),
            },
            |e| {
                matches!(
                    e,
                    SplitsError::Service {
                        status: Some(503),
                        ..
                    }
                )
            },
        ),
    ];
    for (reply, want) in cases {
        h.update_faults(|f| f.av_reply = reply.clone());
        let err = av(&emu).splits("AAPL").await.unwrap_err();
        assert!(want(&err), "{reply:?} gave {err:?}");
        // Alpha Vantage's rate-limit text repeats the key: it never reaches a message.
        assert!(!err.to_string().contains(AV_KEY), "{err}");
        assert!(!format!("{err:?}").contains(AV_KEY), "{err:?}");
    }
    h.clear_faults();
    assert_eq!(av(&emu).splits("AAPL").await.unwrap().len(), 1);
    h.update_faults(|f| f.av_daily_limit = Some(0));
    let err = av(&emu).splits("AAPL").await.unwrap_err();
    assert!(matches!(err, SplitsError::RateLimited { .. }), "{err:?}");
    assert!(err.to_string().contains("25 requests per day"), "{err}");

    assert_eq!(
        AlphaVantage::new("").splits("AAPL").await.unwrap_err(),
        SplitsError::MissingKey
    );
    // Nothing listens on port 9 of 127.0.0.1.
    let err = AlphaVantage::new(AV_KEY)
        .with_base_url("http://127.0.0.1:9")
        .splits("AAPL")
        .await
        .unwrap_err();
    assert!(matches!(err, SplitsError::Network { .. }), "{err:?}");
    assert!(!err.to_string().contains(AV_KEY), "{err}");
}
