//! The shapes vendors' exports come in: time formats and zones, column names and order, gzip,
//! symbols, newest-first files, blank lines.

use std::io::Write;

use vectura_core::time::rfc3339;
use vectura_data::{load_csv_path, load_csv_reader, LoadOptions, Loaded};

fn load(text: &str) -> Loaded {
    load_with(text, &LoadOptions::default())
}

fn load_with(text: &str, opts: &LoadOptions) -> Loaded {
    load_csv_reader("test.csv", text.as_bytes(), opts).unwrap_or_else(|e| panic!("{e}"))
}

fn stamps(l: &Loaded) -> Vec<String> {
    l.series.ts.iter().map(|&t| rfc3339(t)).collect()
}

fn ny() -> LoadOptions {
    LoadOptions {
        tz: Some(chrono_tz::America::New_York),
        ..Default::default()
    }
}

#[test]
fn tz_sp500_first_row_is_1430z() {
    let text = "Date,Open,Close,High,Low,Volume\n2019-11-05 09:30:00,3080.8,3080.49,3081.47,3080.3,2209795\n\
                2019-11-05 09:31:00,3080.33,3079.36,3080.33,3079.15,1739410\n";
    let l = load_with(text, &ny());
    assert_eq!(stamps(&l), ["2019-11-05T14:30:00Z", "2019-11-05T14:31:00Z"]);
    let b = l.series.get(0);
    assert_eq!(
        (b.open, b.high, b.low, b.close, b.volume),
        (3080.8, 3081.47, 3080.3, 3080.49, 2_209_795.0)
    );
    assert!(!l.series.daily);
    // Without a zone the same text is UTC.
    assert_eq!(stamps(&load(text))[0], "2019-11-05T09:30:00Z");
}

#[test]
fn tz_follows_dst() {
    let text = "timestamp,close\n2011-03-11 09:30:00,1\n2011-03-14 09:30:00,1\n2011-11-04 09:30:00,1\n2011-11-07 09:30:00,1\n";
    let l = load_with(text, &ny());
    assert_eq!(
        stamps(&l),
        [
            "2011-03-11T14:30:00Z",
            "2011-03-14T13:30:00Z",
            "2011-11-04T13:30:00Z",
            "2011-11-07T14:30:00Z"
        ]
    );
    // On the change day itself, times away from the jump are fine.
    let l = load_with(
        "timestamp,close\n2011-03-13 01:59:00,1\n2011-03-13 03:00:00,1\n",
        &ny(),
    );
    assert_eq!(stamps(&l), ["2011-03-13T06:59:00Z", "2011-03-13T07:00:00Z"]);
    // A zone in the text wins over the option.
    let l = load_with("timestamp,close\n2011-03-14T09:30:00Z,1\n", &ny());
    assert_eq!(stamps(&l), ["2011-03-14T09:30:00Z"]);
}

#[test]
fn time_formats() {
    let cases = [
        ("2011-01-03T14:30:00Z", "2011-01-03T14:30:00Z", false),
        ("2011-01-03T09:30:00-05:00", "2011-01-03T14:30:00Z", false),
        ("2011-01-03T16:30:00+02:00", "2011-01-03T14:30:00Z", false),
        ("2011-01-03T14:30:00.000Z", "2011-01-03T14:30:00Z", false),
        ("2011-01-03 14:30:00", "2011-01-03T14:30:00Z", false),
        ("2011-01-03T14:30:00", "2011-01-03T14:30:00Z", false),
        ("2011-01-03 14:30", "2011-01-03T14:30:00Z", false),
        ("1294065000", "2011-01-03T14:30:00Z", false),
        ("1294065000000", "2011-01-03T14:30:00Z", false),
        ("2011-01-03", "2011-01-03T14:30:00Z", true),
        ("1/3/2011", "2011-01-03T14:30:00Z", true),
        ("20110103", "2011-01-03T14:30:00Z", true),
        ("2011-07-01", "2011-07-01T13:30:00Z", true), // 09:30 EDT
        ("7/1/2011", "2011-07-01T13:30:00Z", true),
    ];
    for (text, want, daily) in cases {
        let l = load(&format!("timestamp,close\n{text},1\n"));
        assert_eq!(stamps(&l), [want], "{text}");
        assert_eq!(l.series.daily, daily, "{text}");
    }
}

#[test]
fn daily_bars_are_stamped_0930_new_york_whatever_the_zone() {
    let opts = LoadOptions {
        tz: Some(chrono_tz::Asia::Tokyo),
        ..Default::default()
    };
    let l = load_with("Date,Close\n2024-01-02,1\n2024-07-01,2\n", &opts);
    assert_eq!(stamps(&l), ["2024-01-02T14:30:00Z", "2024-07-01T13:30:00Z"]);
    assert!(l.series.daily);
}

#[test]
fn columns_in_any_order_and_case_extras_ignored() {
    let text = "RTH,VOLUME,Close,low,Adj Close,HIGH,Open,TimeStamp,OpenInt\n1,100,1.5,0.5,9,2,1,2024-01-02 14:30:00,0\n";
    let l = load(text);
    let b = l.series.get(0);
    assert_eq!(
        (b.ts, b.open, b.high, b.low, b.close, b.volume),
        (1_704_205_800, 1.0, 2.0, 0.5, 1.5, 100.0)
    );
    assert_eq!(l.symbol, None);
}

#[test]
fn empty_header_cell_names_the_date_column() {
    let l = load(",Open,High,Low,Close,Volume\n2004-08-19,100,104.06,95.96,100.34,22351900\n");
    assert_eq!(stamps(&l), ["2004-08-19T13:30:00Z"]);
    assert!(l.series.daily);
}

#[test]
fn time_column_names() {
    for name in [
        "timestamp",
        "ts",
        "time",
        "date",
        "datetime",
        "Date",
        "DateTime",
        "TIMESTAMP",
        "",
    ] {
        let l = load(&format!("{name},close\n2024-01-02T14:30:00Z,1\n"));
        assert_eq!(l.series.ts, [1_704_205_800], "{name}");
    }
}

#[test]
fn separate_date_and_time_columns_are_joined() {
    let l = load_with("Date,Time,Open,High,Low,Close\n2019-11-05,09:30,1,2,0.5,1.5\n2019-11-05,09:31,1,2,0.5,1.5\n", &ny());
    assert_eq!(stamps(&l), ["2019-11-05T14:30:00Z", "2019-11-05T14:31:00Z"]);
}

#[test]
fn close_only_is_flat_and_volume_defaults_to_zero() {
    let l = load("date,close\n2024-01-02,10.5\n2024-01-03,11\n");
    let b = l.series.get(1);
    assert_eq!(
        (b.open, b.high, b.low, b.close, b.volume),
        (11.0, 11.0, 11.0, 11.0, 0.0)
    );
    let l = load("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,\n");
    assert_eq!(l.series.volume, [0.0]);
}

#[test]
fn vwap_and_trade_count_columns() {
    let l = load(
        "t,o,h,l,c,v,vw,n\n1704205800,1,2,0.5,1.5,100,1.2,7\n1704205860,1,2,0.5,1.5,100,1.3,8\n",
    );
    assert_eq!(l.series.vwap, Some(vec![1.2, 1.3]));
    assert_eq!(l.series.trade_count, Some(vec![7, 8]));
    let l = load("timestamp,close,vwap,trades\n1704205800,1.5,1.2,7\n1704205860,1.5,,\n");
    assert_eq!(l.series.vwap, None);
    assert_eq!(l.series.trade_count, None);
    let l = load("timestamp,close,trade_count\n1704205800,1.5,7.0\n");
    assert_eq!(l.series.trade_count, Some(vec![7]));
}

#[test]
fn symbol_column() {
    let text = "Date,Symbol,Open,High,Low,Close,Volume\n20100104,MSFT,1,2,0.5,1.5,10\n20100105,MSFT,1,2,0.5,1.6,10\n\
                20100104,AAPL,3,4,2.5,3.5,10\n20100105,AAPL,3,4,2.5,3.6,10\n";
    let opts = LoadOptions {
        symbol: Some("aapl".into()),
        ..Default::default()
    };
    let l = load_with(text, &opts);
    assert_eq!(l.symbol.as_deref(), Some("AAPL"));
    assert_eq!(l.series.close, [3.5, 3.6]);
    assert_eq!(l.rows, 4);
    // One symbol: used without asking.
    let l = load("date,symbol,close\n2024-01-02,SPY,1\n2024-01-03,SPY,2\n");
    assert_eq!(l.symbol.as_deref(), Some("SPY"));
    assert_eq!(l.series.len(), 2);
    // --symbol with a file without a Symbol column: the file is taken as that symbol's.
    let l = load_with("date,close\n2024-01-02,1\n", &opts);
    assert_eq!(l.symbol, None);
}

#[test]
fn newest_first_is_reversed() {
    let l = load("Date,Open,High,Low,Close,Volume\n2011-12-30,3,4,2,3.5,1\n2011-12-29,2,3,1,2.5,1\n2011-12-28,1,2,0.5,1.5,1\n");
    assert!(l.reversed);
    assert_eq!(
        stamps(&l),
        [
            "2011-12-28T14:30:00Z",
            "2011-12-29T14:30:00Z",
            "2011-12-30T14:30:00Z"
        ]
    );
    assert_eq!(l.series.close, [1.5, 2.5, 3.5]);
    assert_eq!(l.series.open, [1.0, 2.0, 3.0]);
    let l = load("date,close\n2024-01-02,1\n");
    assert!(!l.reversed);
}

#[test]
fn blank_lines_crlf_bom_and_quotes() {
    let text = "\u{feff}timestamp,close\r\n2024-01-02T14:30:00Z,1\r\n\r\n   \r\n2024-01-02T14:31:00Z,\"2\"\r\n\r\n\n  \n";
    let l = load(text);
    assert_eq!(l.series.close, [1.0, 2.0]);
    assert_eq!(l.rows, 2);
    // Line numbers count blank lines and CRLF line ends.
    let e = load_csv_reader(
        "x.csv",
        "timestamp,close\r\n\r\n2024-01-02,1\r\n\r\n2024-01-03,x\r\n".as_bytes(),
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("x.csv line 5, column 2 \"close\""), "{e}");
    // Spaces around cells are trimmed.
    let l = load("timestamp , close\n 2024-01-02T14:30:00Z , 1.5 \n");
    assert_eq!(l.series.close, [1.5]);
}

fn gzip(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

#[test]
fn gzip_is_detected_by_magic_bytes() {
    let text = "timestamp,close\n2024-01-02T14:30:00Z,1\n2024-01-02T14:31:00Z,2\n";
    let bytes = gzip(text);
    let l = load_csv_reader("bars", &bytes[..], &LoadOptions::default()).unwrap();
    assert_eq!(l.series.close, [1.0, 2.0]);

    // By path, whatever the extension.
    let dir = std::env::temp_dir().join(format!("vectura-data-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["bars.csv.gz", "bars.csv"] {
        let p = dir.join(name);
        std::fs::write(&p, &bytes).unwrap();
        let l = load_csv_path(&p, &LoadOptions::default()).unwrap();
        assert_eq!(l.series.close, [1.0, 2.0], "{name}");
    }
    let p = dir.join("plain.csv.gz");
    std::fs::write(&p, text).unwrap();
    assert_eq!(
        load_csv_path(&p, &LoadOptions::default())
            .unwrap()
            .series
            .len(),
        2
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gzip_members_concatenated() {
    let mut bytes = gzip("timestamp,close\n2024-01-02T14:30:00Z,1\n");
    bytes.extend(gzip("2024-01-02T14:31:00Z,2\n"));
    let l = load_csv_reader("bars", &bytes[..], &LoadOptions::default()).unwrap();
    assert_eq!(l.series.close, [1.0, 2.0]);
}

/// A seeded random walk of `n` minute bars, as CSV text (`YYYY-MM-DD HH:MM:SS`, UTC), and the bars
/// that text says (each cell as written, read back with Rust's own parsers).
fn synthetic_minutes(n: usize) -> (String, Vec<vectura_core::Bar>) {
    let mut s = String::with_capacity(n * 64);
    let mut bars = Vec::with_capacity(n);
    s.push_str("timestamp,open,high,low,close,volume\n");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut price = 100.0f64;
    let mut ts = 1_704_205_800i64;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let step = ((x % 2001) as f64 - 1000.0) / 100_000.0;
        let open = price;
        let close = (price * (1.0 + step) * 100.0).round() / 100.0;
        let high = format!("{:.2}", open.max(close) + 0.01);
        let low = format!("{:.2}", open.min(close) - 0.01);
        let volume = x % 10_000;
        let t = chrono::DateTime::from_timestamp(ts, 0)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S");
        s.push_str(&format!("{t},{open},{high},{low},{close},{volume}\n"));
        bars.push(vectura_core::Bar {
            ts,
            open,
            high: high.parse().unwrap(),
            low: low.parse().unwrap(),
            close,
            volume: volume as f64,
            vwap: None,
            trade_count: None,
        });
        price = close;
        ts += 60 + 60 * x.is_multiple_of(3) as i64;
    }
    (s, bars)
}

#[test]
fn a_million_synthetic_rows_load() {
    // Generated here (a seeded random walk), not real data. Load speed is measured by benchmarks, not here.
    let (text, want) = synthetic_minutes(1_000_000);
    let l = load(&text);
    assert_eq!(
        (l.rows, l.series.len(), l.widened),
        (1_000_000, 1_000_000, 0)
    );
    assert!(!l.series.daily && !l.reversed);
    // Every row, every column: a loader that drops, repeats or shifts a row in the middle fails here.
    for (i, w) in want.iter().enumerate() {
        let got = l.series.get(i);
        assert_eq!(
            got,
            *w,
            "row {} ({})",
            i + 1,
            text.lines().nth(i + 1).unwrap_or("")
        );
    }
}
