//! One validation path for every bar source: the same bad bar from a CSV file, a Parquet file, an
//! Alpaca bars reply and a v1 day blob is refused by the same check, with the same error type
//! ([`BadBar`]) whose message names the source, the line/row/bar/pair, the field and the fix.

use std::io::{Read, Write};
use std::mem::discriminant;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use vectura_core::BarSeries;
use vectura_data::alpaca::{AlpacaData, FetchError, RetryPolicy, Timeframe};
use vectura_data::parquet_io::{read_parquet_checked, write_parquet, ParquetError};
use vectura_data::v1blob::{self, V1Error};
use vectura_data::validate::{BadBar, Item, Problem, END_TS, FIRST_TS};
use vectura_data::{load_csv_reader, LoadError, LoadOptions};

/// 2024-01-02 14:30Z, a session minute.
const T0: i64 = 1_704_205_800;

/// One bar as the sources carry it.
#[derive(Clone, Copy, Debug)]
struct Row {
    ts: i64,
    o: f64,
    h: f64,
    l: f64,
    c: f64,
    v: f64,
    vw: f64,
}

fn good(i: i64) -> Row {
    Row {
        ts: T0 + 60 * i,
        o: 10.0,
        h: 11.0,
        l: 9.0,
        c: 10.5,
        v: 100.0,
        vw: 10.2,
    }
}

/// Three good bars with bar 2 (0-based 1) changed by `f`.
fn rows(f: impl Fn(&mut Row)) -> Vec<Row> {
    let mut r: Vec<Row> = (0..3).map(good).collect();
    f(&mut r[1]);
    r
}

fn show(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        v.to_string()
    }
}

fn csv_text(rows: &[Row]) -> String {
    let mut s = String::from("timestamp,open,high,low,close,volume,vwap\n");
    for r in rows {
        s += &format!(
            "{},{},{},{},{},{},{}\n",
            vectura_core::time::rfc3339(r.ts),
            show(r.o),
            show(r.h),
            show(r.l),
            show(r.c),
            show(r.v),
            show(r.vw)
        );
    }
    s
}

fn series(rows: &[Row]) -> BarSeries {
    BarSeries {
        ts: rows.iter().map(|r| r.ts).collect(),
        open: rows.iter().map(|r| r.o).collect(),
        high: rows.iter().map(|r| r.h).collect(),
        low: rows.iter().map(|r| r.l).collect(),
        close: rows.iter().map(|r| r.c).collect(),
        volume: rows.iter().map(|r| r.v).collect(),
        vwap: Some(rows.iter().map(|r| r.vw).collect()),
        trade_count: None,
        daily: false,
    }
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vectura-validation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn csv_bad(rows: &[Row], strict: bool) -> BadBar {
    let opts = LoadOptions {
        strict,
        ..LoadOptions::default()
    };
    match load_csv_reader("bars.csv", csv_text(rows).as_bytes(), &opts) {
        Err(LoadError::Bar(b)) => b,
        other => panic!("CSV: expected a bad bar, got {other:?}"),
    }
}

fn parquet_bad(path: &Path, rows: &[Row], strict: bool) -> BadBar {
    write_parquet(path, &series(rows), 3).unwrap();
    match read_parquet_checked(path, strict) {
        Err(ParquetError::Bar(b)) => b,
        other => panic!("Parquet: expected a bad bar, got {other:?}"),
    }
}

fn v1_bad(pairs: &str) -> BadBar {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(pairs.as_bytes()).unwrap();
    let day = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
    match v1blob::decode(day, &gz.finish().unwrap()) {
        Err(V1Error::Bar { problem, .. }) => problem,
        other => panic!("v1: expected a bad pair, got {other:?}"),
    }
}

/// A one-shot HTTP server answering every request with `body` (JSON); its base URL.
fn serve(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    format!("http://{addr}")
}

fn alpaca_json(rows: &[Row], n: Option<f64>) -> String {
    let bars: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                r#"{{"t":"{}","o":{},"h":{},"l":{},"c":{},"v":{},"vw":{}{}}}"#,
                vectura_core::time::rfc3339(r.ts),
                r.o,
                r.h,
                r.l,
                r.c,
                r.v,
                r.vw,
                n.map(|n| format!(r#","n":{n}"#)).unwrap_or_default()
            )
        })
        .collect();
    format!(r#"{{"bars":[{}],"next_page_token":null}}"#, bars.join(","))
}

async fn alpaca_fetch(body: String) -> Result<BarSeries, FetchError> {
    let url = serve(body);
    AlpacaData::new("PKTEST", "test-secret-value")
        .with_base_url(url)
        .with_retry(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        })
        .bars("AAPL", T0 - 3_600, T0 + 3_600, Timeframe::MINUTE)
        .await
}

async fn alpaca_bad(rows: &[Row], n: Option<f64>) -> BadBar {
    match alpaca_fetch(alpaca_json(rows, n)).await {
        Err(FetchError::BadBar { bar, .. }) => *bar,
        other => panic!("Alpaca: expected a bad bar, got {other:?}"),
    }
}

/// `b` is `want`'s kind of problem, at `item`, naming `field` (when given) in one line that
/// starts with the source and ends with a fix.
fn check(b: &BadBar, want: &Problem, item: Item, field: Option<&str>, source: &str) {
    let msg = b.to_string();
    assert_eq!(
        discriminant(&b.problem),
        discriminant(want),
        "{source}: wrong problem: {msg}"
    );
    assert_eq!(b.at.item, item, "{msg}");
    assert!(msg.starts_with(source), "{msg:?} should name {source:?}");
    assert!(!msg.contains('\n'), "not one line: {msg}");
    if let Some(f) = field {
        let at = b.at.field.as_deref().unwrap_or("");
        assert!(at.contains(f), "{msg:?}: field should name {f:?}");
    }
    let fixes = [
        "fix or remove the row",
        "fetch the day again",
        "fetch it again",
        "fix the row",
        "remove the duplicate row",
        "sort the file by time",
    ];
    assert!(
        fixes.iter().any(|f| msg.contains(f)),
        "{msg:?} gives no fix"
    );
}

fn price() -> Problem {
    Problem::Price {
        text: String::new(),
    }
}

#[tokio::test]
async fn every_source_refuses_bad_prices_and_volumes_the_same_way() {
    let pq = tmp("prices.parquet");
    // (change to bar 2, the field at fault, the problem, whether JSON can carry the value)
    type Case = (fn(&mut Row), &'static str, Problem, bool);
    let cases: Vec<Case> = vec![
        (|r| r.o = f64::NAN, "open", price(), false),
        (|r| r.h = f64::INFINITY, "high", price(), false),
        (|r| r.l = 0.0, "low", price(), true),
        (|r| r.c = -1.0, "close", price(), true),
        (|r| r.vw = 0.0, "vwap", price(), true),
        (
            |r| r.v = -5.0,
            "volume",
            Problem::Volume {
                text: String::new(),
            },
            true,
        ),
        (
            |r| r.v = f64::NAN,
            "volume",
            Problem::Volume {
                text: String::new(),
            },
            false,
        ),
    ];
    for (change, field, want, json) in cases {
        let r = rows(change);
        let csv = csv_bad(&r, false);
        check(&csv, &want, Item::Line(3), Some(field), "bars.csv line 3");
        let p = parquet_bad(&pq, &r, false);
        check(
            &p,
            &want,
            Item::Row(2),
            Some(field),
            &pq.display().to_string(),
        );
        if json {
            let a = alpaca_bad(&r, None).await;
            check(&a, &want, Item::Bar(2), None, "Alpaca bars of AAPL");
        }
    }
    // The v1 blob carries only the close.
    check(
        &v1_bad("[[52200,10],[52260,0]]"),
        &price(),
        Item::Pair(1),
        Some("close"),
        "v1 day blob 2024-01-02 pair 1",
    );
    check(
        &v1_bad("[[52200,10],[52260,-3.5]]"),
        &price(),
        Item::Pair(1),
        Some("close"),
        "v1 day blob",
    );
}

#[tokio::test]
async fn every_source_refuses_repeats_and_disorder_the_same_way() {
    let pq = tmp("order.parquet");
    let dup = rows(|r| r.ts = T0);
    let want = Problem::Duplicate {
        ts: String::new(),
        prev: Item::Line(0),
    };
    let csv = csv_bad(&dup, false);
    check(&csv, &want, Item::Line(3), None, "bars.csv line 3");
    assert!(csv.to_string().contains("repeats line 2"), "{csv}");
    let p = parquet_bad(&pq, &dup, false);
    check(&p, &want, Item::Row(2), None, &pq.display().to_string());
    assert!(p.to_string().contains("repeats row 1"), "{p}");
    let a = alpaca_bad(&dup, None).await;
    check(&a, &want, Item::Bar(2), None, "Alpaca bars of AAPL");
    check(
        &v1_bad("[[52200,10],[52200,11]]"),
        &want,
        Item::Pair(1),
        None,
        "v1 day blob",
    );

    // Up, then down: files may be newest first throughout, but not both.
    let mut mixed: Vec<Row> = (0..3).map(good).collect();
    mixed[2].ts = T0 - 60;
    let want = Problem::Disordered {
        ts: String::new(),
        newest_first: false,
        prev_ts: String::new(),
        prev: Item::Line(0),
    };
    check(
        &csv_bad(&mixed, false),
        &want,
        Item::Line(4),
        None,
        "bars.csv line 4",
    );
    check(
        &parquet_bad(&pq, &mixed, false),
        &want,
        Item::Row(3),
        None,
        &pq.display().to_string(),
    );
    check(
        &alpaca_bad(&mixed, None).await,
        &want,
        Item::Bar(3),
        None,
        "Alpaca bars of AAPL",
    );
    // A reply asked for oldest first may not be newest first.
    let mut down: Vec<Row> = (0..3).map(good).collect();
    down.reverse();
    check(
        &alpaca_bad(&down, None).await,
        &want,
        Item::Bar(2),
        None,
        "Alpaca bars of AAPL",
    );
    check(
        &v1_bad("[[52260,10],[52200,11]]"),
        &want,
        Item::Pair(1),
        None,
        "v1 day blob",
    );
    // A newest-first file is reversed, as a newest-first CSV is.
    write_parquet(&pq, &series(&down), 3).unwrap();
    let l = read_parquet_checked(&pq, false).unwrap();
    assert!(l.reversed);
    assert_eq!(l.series.ts, vec![T0, T0 + 60, T0 + 120]);
}

#[tokio::test]
async fn inconsistent_bars_are_widened_or_refused_with_strict_from_files_and_widened_from_alpaca() {
    let pq = tmp("widen.parquet");
    // high below low: widened to cover open and close, or refused with --strict.
    let r = rows(|r| {
        r.h = 8.0;
        r.l = 12.0;
    });
    let want = Problem::Inconsistent {
        detail: String::new(),
    };
    let csv = csv_bad(&r, true);
    check(&csv, &want, Item::Line(3), None, "bars.csv line 3");
    assert!(csv.to_string().contains("low 12 is above high 8"), "{csv}");
    check(
        &parquet_bad(&pq, &r, true),
        &want,
        Item::Row(2),
        None,
        &pq.display().to_string(),
    );
    let l = read_parquet_checked(&pq, false).unwrap();
    assert_eq!((l.widened, l.widened_lines.clone()), (1, vec![2]));
    assert_eq!((l.series.low[1], l.series.high[1]), (8.0, 12.0));
    let c = load_csv_reader("bars.csv", csv_text(&r).as_bytes(), &LoadOptions::default()).unwrap();
    assert_eq!((c.widened, c.widened_lines), (1, vec![3]));
    assert_eq!(c.series, l.series);
    let a = alpaca_fetch(alpaca_json(&r, None)).await.unwrap();
    assert_eq!((a.low[1], a.high[1]), (8.0, 12.0));
}

#[tokio::test]
async fn trade_counts_must_be_whole_and_not_negative_from_every_source() {
    let want = Problem::TradeCount {
        text: String::new(),
    };
    for n in [-1.0, 1.5] {
        let a = alpaca_bad(&rows(|_| {}), Some(n)).await;
        check(
            &a,
            &want,
            Item::Bar(1),
            Some("\"n\""),
            "Alpaca bars of AAPL",
        );
    }
    let text = "timestamp,open,high,low,close,volume,trade_count\n2024-01-02T14:30:00Z,10,11,9,10.5,100,-3\n";
    match load_csv_reader("bars.csv", text.as_bytes(), &LoadOptions::default()) {
        Err(LoadError::Bar(b)) => check(
            &b,
            &want,
            Item::Line(2),
            Some("trade_count"),
            "bars.csv line 2",
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn times_outside_the_calendar_are_refused_by_every_source() {
    let pq = tmp("times.parquet");
    let want = Problem::Time {
        text: String::new(),
        expected: String::new(),
    };
    for ts in [i64::MIN, i64::MIN + 1, FIRST_TS - 1, END_TS, i64::MAX] {
        let r = rows(|r| r.ts = ts);
        let p = parquet_bad(&pq, &r[1..2], false);
        check(
            &p,
            &want,
            Item::Row(1),
            Some("timestamp"),
            &pq.display().to_string(),
        );
        assert!(p.to_string().contains("1900-01-01..2035-12-31"), "{p}");
    }
    // The edges themselves are bars.
    for ts in [FIRST_TS, 0, END_TS - 60] {
        write_parquet(&pq, &series(&rows(|r| r.ts = ts)[1..2]), 3).unwrap();
        assert_eq!(
            read_parquet_checked(&pq, false).unwrap().series.ts,
            vec![ts]
        );
    }
    // CSV: times that parse but fall outside; Unix seconds of 2286.
    for (cell, shown) in [
        ("1899-12-31", "1899-12-31"),
        ("2036-01-01T00:00:00Z", "2036-01-01T00:00:00Z"),
        ("9999999999", "9999999999"),
        ("9999-12-31 23:59:59", "9999-12-31 23:59:59"),
    ] {
        let text = format!("timestamp,close\n{cell},10\n");
        match load_csv_reader("bars.csv", text.as_bytes(), &LoadOptions::default()) {
            Err(LoadError::Bar(b)) => {
                check(
                    &b,
                    &want,
                    Item::Line(2),
                    Some("timestamp"),
                    "bars.csv line 2",
                );
                assert!(b.to_string().contains(&format!("`{shown}`")), "{b}");
            }
            other => panic!("{cell}: {other:?}"),
        }
    }
    // i64-sized numbers in a CSV time cell are not times at all.
    for cell in ["-9223372036854775808", "9223372036854775807", "0"] {
        let text = format!("timestamp,close\n{cell},10\n");
        let e = load_csv_reader("bars.csv", text.as_bytes(), &LoadOptions::default())
            .expect_err(cell)
            .to_string();
        assert!(e.starts_with("bars.csv line 2"), "{e}");
    }
    // An Alpaca bar at year 2100 is outside too (its window is given in seconds).
    let far = vectura_data::validate::END_TS + 86_400 * 365 * 64;
    let body = alpaca_json(&rows(|r| r.ts = far)[1..2], None);
    let e = AlpacaData::new("PKTEST", "test-secret-value")
        .with_base_url(serve(body))
        .with_retry(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        })
        .bars("AAPL", far - 60, far + 60, Timeframe::MINUTE)
        .await;
    match e {
        Err(FetchError::BadBar { bar, .. }) => check(
            &bar,
            &want,
            Item::Bar(1),
            Some("\"t\""),
            "Alpaca bars of AAPL",
        ),
        other => panic!("{other:?}"),
    }
}
