//! One test per bad input: each error names the file, the line, the column where one is involved,
//! the problem and the fix, on one line.

use vectura_data::{load_csv_reader, LoadError, LoadOptions, Loaded};

const HEADER: &str = "timestamp,open,high,low,close,volume\n";

fn load(text: &str, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    load_csv_reader("bars.csv", text.as_bytes(), opts)
}

/// The error message for `text`, checked to be one line naming the file.
fn err(text: &str, opts: &LoadOptions) -> String {
    let e = load(text, opts).expect_err("expected an error").to_string();
    assert!(!e.contains('\n'), "not one line: {e}");
    assert!(e.starts_with("bars.csv"), "does not name the file: {e}");
    e
}

fn err0(text: &str) -> String {
    err(text, &LoadOptions::default())
}

fn has(e: &str, parts: &[&str]) {
    for p in parts {
        assert!(e.contains(p), "{e:?} should contain {p:?}");
    }
}

#[test]
fn malformed_number() {
    let e = err0(&format!(
        "{HEADER}2024-01-02 14:30:00,1,2,0.5,1.5,10\n2024-01-02 14:31:00,1,2x,0.5,1.5,10\n"
    ));
    has(
        &e,
        &[
            "line 3",
            "column 3 \"high\"",
            "`2x` is not a number",
            "plain decimal",
        ],
    );
}

#[test]
fn empty_price_cell() {
    let e = err0(&format!("{HEADER}2024-01-02 14:30:00,1,,0.5,1.5,10\n"));
    has(&e, &["line 2", "column 3 \"high\"", "`` is not a number"]);
}

#[test]
fn wrong_field_count() {
    let e = err0(&format!(
        "{HEADER}2024-01-02 14:30:00,1,2,0.5,1.5,10\n2024-01-02 14:31:00,1,2,0.5,1.5\n"
    ));
    has(
        &e,
        &["line 3", "5 fields", "header (line 1) has 6", "fix the row"],
    );
    let e = err0(&format!("{HEADER}2024-01-02 14:30:00,1,2,0.5,1.5,10,7\n"));
    has(&e, &["line 2", "7 fields"]);
}

#[test]
fn disordered_timestamps() {
    let e = err0(&format!(
        "{HEADER}2024-01-02 14:30:00,1,2,0.5,1.5,10\n2024-01-02 14:32:00,1,2,0.5,1.5,10\n2024-01-02 14:31:00,1,2,0.5,1.5,10\n"
    ));
    has(
        &e,
        &[
            "line 4",
            "2024-01-02T14:31:00Z is not after 2024-01-02T14:32:00Z on line 3",
            "sort the file",
        ],
    );
}

#[test]
fn disorder_in_a_newest_first_file() {
    let e = err0(&format!(
        "{HEADER}2024-01-02 14:32:00,1,2,0.5,1.5,10\n2024-01-02 14:31:00,1,2,0.5,1.5,10\n2024-01-02 14:33:00,1,2,0.5,1.5,10\n"
    ));
    has(
        &e,
        &[
            "line 4",
            "2024-01-02T14:33:00Z is not before",
            "newest first",
            "2024-01-02T14:31:00Z on line 3",
        ],
    );
}

#[test]
fn duplicate_timestamp() {
    let e = err0(&format!(
        "{HEADER}2024-01-02 14:30:00,1,2,0.5,1.5,10\n2024-01-02T14:30:00Z,1,2,0.5,1.5,10\n"
    ));
    has(
        &e,
        &[
            "line 3",
            "timestamp 2024-01-02T14:30:00Z repeats line 2",
            "remove the duplicate",
        ],
    );
}

#[test]
fn zero_price() {
    let e = err0(&format!("{HEADER}2024-01-02 14:30:00,1,2,0.5,0,10\n"));
    has(
        &e,
        &[
            "line 2",
            "column 5 \"close\"",
            "price `0` is not finite and positive",
        ],
    );
}

#[test]
fn zero_price_is_an_error_even_in_a_close_only_file() {
    let e = err0("date,close\n2024-01-02,0.0\n");
    has(&e, &["line 2", "column 2 \"close\"", "price `0.0`"]);
}

#[test]
fn negative_price() {
    let e = err0(&format!("{HEADER}2024-01-02 14:30:00,-1,2,0.5,1.5,10\n"));
    has(
        &e,
        &[
            "line 2",
            "column 2 \"open\"",
            "price `-1` is not finite and positive",
        ],
    );
}

#[test]
fn nan_price() {
    let e = err0(&format!("{HEADER}2024-01-02 14:30:00,1,2,NaN,1.5,10\n"));
    has(
        &e,
        &["line 2", "column 4 \"low\"", "price `NaN` is not finite"],
    );
}

#[test]
fn inf_price() {
    let e = err0(&format!("{HEADER}2024-01-02 14:30:00,1,inf,0.5,1.5,10\n"));
    has(&e, &["line 2", "column 3 \"high\"", "price `inf`"]);
    let e = err0(&format!(
        "{HEADER}2024-01-02 14:30:00,1,2,0.5,-Infinity,10\n"
    ));
    has(&e, &["column 5 \"close\"", "price `-Infinity`"]);
}

#[test]
fn negative_volume() {
    let e = err0(&format!("{HEADER}2024-01-02 14:30:00,1,2,0.5,1.5,-10\n"));
    has(
        &e,
        &[
            "line 2",
            "column 6 \"volume\"",
            "volume `-10` must be a finite number >= 0",
        ],
    );
    let e = err0(&format!("{HEADER}2024-01-02 14:30:00,1,2,0.5,1.5,NaN\n"));
    has(&e, &["column 6 \"volume\"", "volume `NaN`"]);
}

#[test]
fn bad_vwap_and_trade_count() {
    let h = "timestamp,open,high,low,close,volume,vwap,trade_count\n";
    let e = err0(&format!("{h}2024-01-02 14:30:00,1,2,0.5,1.5,10,0,3\n"));
    has(&e, &["column 7 \"vwap\"", "price `0`"]);
    let e = err0(&format!("{h}2024-01-02 14:30:00,1,2,0.5,1.5,10,1.2,3.5\n"));
    has(
        &e,
        &[
            "column 8 \"trade_count\"",
            "trade count `3.5` must be a whole number",
        ],
    );
}

#[test]
fn multi_symbol_file_without_symbol() {
    let e = err0(
        "Date,Symbol,Open,High,Low,Close,Volume\n20100104,MSFT,1,2,0.5,1.5,10\n20100105,MSFT,1,2,0.5,1.5,10\n\
         20100104,AAPL,1,2,0.5,1.5,10\n20100104,ibm,1,2,0.5,1.5,10\n",
    );
    has(
        &e,
        &[
            "column 2 \"Symbol\"",
            "holds 3 symbols (AAPL, MSFT, ibm)",
            "pass --symbol",
        ],
    );
}

#[test]
fn multi_symbol_list_is_cut_at_20() {
    let mut text = String::from("date,symbol,close\n");
    for i in 0..30 {
        text.push_str(&format!("2024-01-02,S{i:02},1\n"));
    }
    let e = err0(&text);
    has(&e, &["holds 30 symbols (S00, S01,", "S19, …)"]);
    assert!(!e.contains("S20"), "{e}");
}

#[test]
fn unknown_symbol() {
    let opts = LoadOptions {
        symbol: Some("GOOG".into()),
        ..Default::default()
    };
    let e = err(
        "Date,Symbol,Open,High,Low,Close,Volume\n20100104,MSFT,1,2,0.5,1.5,10\n20100104,AAPL,1,2,0.5,1.5,10\n",
        &opts,
    );
    has(
        &e,
        &[
            "no rows for symbol GOOG",
            "column 2 \"Symbol\"",
            "holds 2 symbols (AAPL, MSFT)",
            "--symbol",
        ],
    );
}

#[test]
fn no_time_column() {
    let e = err0("when,open,high,low,close\n1,1,1,1,1\n");
    has(
        &e,
        &[
            "line 1",
            "no time column",
            "[when,open,high,low,close]",
            "timestamp, ts, time, date or datetime",
        ],
    );
}

#[test]
fn no_close_column() {
    let e = err0("timestamp,open,high,low,Adj Close\n2024-01-02,1,1,1,1\n");
    has(
        &e,
        &["line 1", "no close column", "Adj Close", "add a close"],
    );
}

#[test]
fn partial_ohlc_columns() {
    let e = err0("timestamp,open,close\n2024-01-02,1,1\n");
    has(
        &e,
        &[
            "line 1",
            "has open but no high, low column",
            "all of open, high and low, or none",
        ],
    );
}

#[test]
fn duplicate_column() {
    let e = err0("timestamp,close,open,high,low,Close\n2024-01-02,1,1,1,1,1\n");
    has(&e, &["line 1", "column 6 \"Close\"", "repeats column 2"]);
}

#[test]
fn empty_file() {
    for text in ["", "\n\n", "  \n\t\n"] {
        let e = err0(text);
        has(&e, &["no bars", "the file is empty", "header row"]);
    }
}

#[test]
fn header_only() {
    let e = err0(HEADER);
    has(&e, &["line 1", "no bars", "only the header"]);
    let e = err0("\n\ntimestamp,close\n\n   \n");
    has(&e, &["line 3", "no bars"]);
}

#[test]
fn bad_date_text() {
    let e = err0(&format!(
        "{HEADER}2024-01-02 14:30:00,1,2,0.5,1.5,10\nyesterday,1,2,0.5,1.5,10\n"
    ));
    has(
        &e,
        &[
            "line 3",
            "column 1 \"timestamp\"",
            "cannot read time `yesterday`",
            "RFC 3339",
            "YYYYMMDD",
        ],
    );
    let e = err0("Date,Close\n2024-02-30,1\n");
    has(
        &e,
        &[
            "line 2",
            "column 1 \"Date\"",
            "`2024-02-30`",
            "day out of range",
        ],
    );
    let e = err0("Date,Close\n2024-01-02 25:00:00,1\n");
    has(&e, &["`2024-01-02 25:00:00`", "out of range"]);
    let e = err0("Date,Close\n13/1/2024,1\n");
    has(&e, &["`13/1/2024`", "month out of range"]);
}

#[test]
fn mixed_dates_and_times() {
    let e = err0("Date,Close\n2024-01-02,1\n2024-01-03 14:30:00,1\n");
    has(
        &e,
        &[
            "line 3",
            "column 1 \"Date\"",
            "is a date with a time of day but line 2 is a date without",
            "one kind of time",
        ],
    );
}

#[test]
fn nonexistent_and_ambiguous_local_times() {
    let opts = LoadOptions {
        tz: Some(chrono_tz::America::New_York),
        ..Default::default()
    };
    let e = err(
        "Date,Close\n2011-03-13 01:59:00,1\n2011-03-13 02:30:00,1\n",
        &opts,
    );
    has(
        &e,
        &[
            "line 3",
            "column 1 \"Date\"",
            "`2011-03-13 02:30:00` does not exist",
            "America/New_York",
            "UTC offset",
        ],
    );
    let e = err("Date,Close\n2011-11-06 01:30:00,1\n", &opts);
    has(&e, &["line 2", "is ambiguous", "America/New_York"]);
}

#[test]
fn inconsistent_bar_widened_or_rejected_with_strict() {
    let text = format!(
        "{HEADER}2024-01-02 14:30:00,10,9.5,9,9.8,1\n2024-01-02 14:31:00,10,11,9,10.5,1\n2024-01-02 14:32:00,10,11,10.2,10.5,1\n"
    );
    let l = load(&text, &LoadOptions::default()).unwrap();
    assert_eq!(l.widened, 2);
    assert_eq!(l.widened_lines, vec![2, 4]);
    let b = l.series.get(0);
    assert_eq!((b.open, b.high, b.low, b.close), (10.0, 10.0, 9.0, 9.8));
    let b = l.series.get(2);
    assert_eq!((b.open, b.high, b.low, b.close), (10.0, 11.0, 10.0, 10.5));
    for i in 0..3 {
        assert!(l.series.get(i).is_consistent());
    }

    let e = err(
        &text,
        &LoadOptions {
            strict: true,
            ..Default::default()
        },
    );
    has(
        &e,
        &[
            "line 2",
            "inconsistent bar: high 9.5 is below open 10",
            "without --strict",
        ],
    );
}

#[test]
fn widened_lines_keep_the_first_ten() {
    let mut text = String::from(HEADER);
    for i in 0..25 {
        text.push_str(&format!("2024-01-02 14:{i:02}:00,10,9.5,9,9.8,1\n"));
    }
    let l = load(&text, &LoadOptions::default()).unwrap();
    assert_eq!(l.widened, 25);
    assert_eq!(l.widened_lines, (2..12).collect::<Vec<u64>>());
}

#[test]
fn gzip_that_is_cut_short() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut text = String::from(HEADER);
    for i in 0..2000 {
        text.push_str(&format!("{},1,2,0.5,1.5,{i}\n", 1_700_000_000 + 60 * i));
    }
    gz.write_all(text.as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    let e = load_csv_reader(
        "bars.csv.gz",
        &bytes[..bytes.len() / 2],
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("bars.csv.gz line ") && e.contains("read failed"),
        "{e}"
    );
    assert!(!e.contains('\n'));
}

#[test]
fn missing_file() {
    let e = vectura_data::load_csv_path(
        std::path::Path::new("/nonexistent/bars.csv"),
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    has(
        &e,
        &["/nonexistent/bars.csv", "cannot open", "check the path"],
    );
}

/// A Parquet file handed to the CSV reader is named as such (by its `PAR1` magic), never read as
/// text with its binary header quoted back; files of 0 to 3 bytes still get the usual messages.
#[test]
fn a_parquet_file_is_not_read_as_text() {
    let mut bytes = b"PAR1\x15\x04\x15@\x15>L\x15\x08\x15\x00\x12\x00\x00".to_vec();
    bytes.extend_from_slice(b"\ntimestamp,open\n");
    let e = load_csv_reader("bars.parquet", &bytes[..], &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, LoadError::Parquet { .. }), "{e:?}");
    let e = e.to_string();
    has(
        &e,
        &[
            "bars.parquet: this is a Parquet file, not CSV text",
            "vectura data import",
        ],
    );
    assert!(e.is_ascii() && !e.contains('\n'), "{e}");
    for short in ["", "P", "PA", "PAR"] {
        let e = load_csv_reader("x.csv", short.as_bytes(), &LoadOptions::default()).unwrap_err();
        assert!(!matches!(e, LoadError::Parquet { .. }), "{short:?}: {e}");
    }
}
