//! Hostile bar files through the real binary (issue 14, defects 2 and 4): Parquet files with prices
//! and volumes no market has, high below low, times at the ends of i64, and a gzip bomb CSV, fed to
//! `vectura data import` and `vectura backtest --data`. Each is refused with exit code 2 and one line
//! naming the row (or line) and the field and the fix, and the SQLite file the binary wrote then holds
//! no bar and no day of any kind (the good first day of the file included). And what real writers
//! make (integer milliseconds, every Parquet codec) is read as they meant it. Only the codec test
//! compresses: the others write uncompressed files, so that each fails for its own reason alone
//! (a build that cannot read snappy would hide whether it checks the values).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampNanosecondArray, TimestampSecondArray,
};
use arrow_schema::{Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sqlx::{Connection, Row};

use crate::common::{bin, scratch};

/// 2024-01-02 14:30Z and 14:31Z, then 2024-01-03 14:30Z and 14:31Z (the NYSE open, EST): two days.
const T: [i64; 4] = [1_704_205_800, 1_704_205_860, 1_704_292_200, 1_704_292_260];

/// Runs the binary with the data directory `dir/data` (its SQLite file `dir/data/vectura.db`) and
/// no inherited store or keys.
fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("VECTURA_DATA_DIR", dir.join("data"))
        // Set and blank, so that no `.env` file fills it in and the SQLite file is used.
        .env("DATABASE_URL", "")
        .env_remove("APCA_API_KEY_ID")
        .env_remove("APCA_API_SECRET_KEY")
        .output()
        .expect("vectura runs")
}

/// Exit code 2, one line on stderr (`error: …`) holding every needle, nothing on stdout, no panic.
fn refused(what: &str, out: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{what}: exit code\n{err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: one line: {err}");
    assert!(err.starts_with("error: "), "{what}: {err}");
    for n in needles {
        assert!(err.contains(n), "{what}: {err:?} should mention {n:?}");
    }
    assert!(
        out.stdout.is_empty(),
        "{what}: nothing on stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    err
}

fn ok(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every table of the SQLite file under `dir/data` that holds rows, with its row count (the
/// migrations' own bookkeeping aside), read with plain SQL; empty when there is no file at all.
fn stored_rows(dir: &Path) -> Vec<(String, i64)> {
    let db = dir.join("data").join("vectura.db");
    if !db.exists() {
        return Vec::new();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}?mode=ro", db.display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let tables: Vec<String> = sqlx::query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
        )
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
        assert!(
            tables.iter().any(|t| t == "bt_bars_daily"),
            "the store's tables exist: {tables:?}"
        );
        let mut out = Vec::new();
        for t in tables {
            let n: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM \"{t}\""))
                .fetch_one(&mut c)
                .await
                .unwrap()
                .get(0);
            if n > 0 {
                out.push((t, n));
            }
        }
        out
    })
}

fn f64s(v: &[f64]) -> ArrayRef {
    Arc::new(Float64Array::from(v.to_vec()))
}

/// Writes one batch of `cols` (name, array) as Parquet with `compression`.
fn write_parquet(path: &Path, cols: Vec<(&str, ArrayRef)>, compression: Compression) {
    let schema = Arc::new(Schema::new(
        cols.iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(schema.clone(), cols.into_iter().map(|c| c.1).collect()).unwrap();
    let props = WriterProperties::builder()
        .set_compression(compression)
        .build();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// A table's columns: (name, values).
type Columns = Vec<(&'static str, ArrayRef)>;

/// Four good bars over two days, the time column `ts`.
fn bars_with(ts: ArrayRef) -> Columns {
    vec![
        ("timestamp", ts),
        ("open", f64s(&[10.0, 10.5, 10.2, 10.4])),
        ("high", f64s(&[11.0, 11.0, 10.9, 10.9])),
        ("low", f64s(&[9.5, 10.1, 10.0, 10.1])),
        ("close", f64s(&[10.5, 10.2, 10.8, 10.6])),
        ("volume", f64s(&[100.0, 200.0, 300.0, 400.0])),
    ]
}

fn utc_secs(v: &[i64]) -> ArrayRef {
    Arc::new(TimestampSecondArray::from(v.to_vec()).with_timezone("UTC"))
}

/// The good bars with row 4 (the second day's second bar) of `column` set to `value`.
fn with_bad(column: &str, value: f64) -> Columns {
    let mut cols = bars_with(utc_secs(&T));
    let c = cols.iter_mut().find(|c| c.0 == column).unwrap();
    let mut v: Vec<f64> =
        c.1.as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .values()
            .to_vec();
    v[3] = value;
    c.1 = f64s(&v);
    cols
}

/// The stored bars of `symbol`, exported as CSV and read back: (time, close, volume).
fn exported(dir: &Path, symbol: &str) -> Vec<(i64, f64, f64)> {
    let csv = dir.join(format!("{symbol}.csv"));
    ok(
        "export",
        &run(
            dir,
            &["data", "export", symbol, "-o", csv.to_str().unwrap()],
        ),
    );
    let s = vectura_data::load_csv_path(&csv, &Default::default())
        .unwrap()
        .series;
    (0..s.len())
        .map(|i| (s.ts[i], s.close[i], s.volume[i]))
        .collect()
}

fn want_exported() -> Vec<(i64, f64, f64)> {
    vec![
        (T[0], 10.5, 100.0),
        (T[1], 10.2, 200.0),
        (T[2], 10.8, 300.0),
        (T[3], 10.6, 400.0),
    ]
}

/// A Parquet file no market could have made is refused whole: exit 2, one line naming the file,
/// row 4 and the column, the fix, and afterwards no table of the store holds a row (not even the
/// good first day's bars, or its range or status).
#[test]
fn parquet_files_with_impossible_values_import_nothing() {
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    let cases: Vec<(&str, Columns, Vec<&str>)> = vec![
        (
            "nan-open",
            with_bad("open", nan),
            vec!["column \"open\"", "price `NaN`"],
        ),
        (
            "inf-high",
            with_bad("high", inf),
            vec!["column \"high\"", "price `inf`"],
        ),
        (
            "minus-inf-close",
            with_bad("close", -inf),
            vec!["column \"close\"", "price `-inf`"],
        ),
        (
            "zero-low",
            with_bad("low", 0.0),
            vec!["column \"low\"", "price `0`"],
        ),
        (
            "negative-close",
            with_bad("close", -10.6),
            vec!["column \"close\"", "price `-10.6`"],
        ),
        (
            "negative-volume",
            with_bad("volume", -400.0),
            vec!["column \"volume\"", "volume `-400`"],
        ),
        (
            "nan-volume",
            with_bad("volume", nan),
            vec!["column \"volume\"", "volume `NaN`"],
        ),
        (
            "inf-volume",
            with_bad("volume", inf),
            vec!["column \"volume\"", "volume `inf`"],
        ),
    ];
    for (name, cols, needles) in cases {
        let dir = scratch(&format!("hostile-pq-{name}"));
        let file = dir.join(format!("{name}.parquet"));
        write_parquet(&file, cols, Compression::UNCOMPRESSED);
        let out = run(
            &dir,
            &["data", "import", file.to_str().unwrap(), "--symbol", "HOST"],
        );
        let mut all = vec![file.to_str().unwrap(), "row 4", "fix or remove the row"];
        all.extend(needles);
        refused(name, &out, &all);
        assert_eq!(stored_rows(&dir), vec![], "{name}: nothing stored");
    }
}

/// High below low: refused with `--strict` (nothing stored); without it the bar is widened to
/// cover open and close, the import says so with the row, and the stored bar is consistent.
#[test]
fn a_parquet_bar_with_high_below_low_is_refused_when_strict_and_widened_and_reported_otherwise() {
    let dir = scratch("hostile-pq-high-below-low");
    let file = dir.join("inverted.parquet");
    // Row 4: high 9.0 below low 10.1 (and below open 10.4 and close 10.6).
    write_parquet(&file, with_bad("high", 9.0), Compression::UNCOMPRESSED);
    let f = file.to_str().unwrap();
    let out = run(&dir, &["data", "import", f, "--symbol", "HOST", "--strict"]);
    refused(
        "strict",
        &out,
        &[
            f,
            "row 4",
            "inconsistent bar",
            "high 9 is below open 10.4",
            "--strict",
        ],
    );
    assert_eq!(stored_rows(&dir), vec![], "nothing stored");
    let out = ok(
        "widened",
        &run(&dir, &["data", "import", f, "--symbol", "HOST"]),
    );
    assert!(
        out.contains("1 inconsistent bar was widened to include its open and close (--strict rejects them): "),
        "the widening is reported: {out}"
    );
    assert!(out.contains(&format!("{f}:4")), "with its row: {out}");
    let csv = dir.join("host.csv");
    ok(
        "export",
        &run(
            &dir,
            &["data", "export", "HOST", "-o", csv.to_str().unwrap()],
        ),
    );
    let s = vectura_data::load_csv_path(&csv, &Default::default())
        .unwrap()
        .series;
    assert_eq!(
        (s.high[3], s.low[3]),
        (10.6, 9.0),
        "widened to cover open and close"
    );
    assert!((0..s.len()).all(|i| s.low[i] <= s.high[i]));
}

/// Times at the ends of i64 (seconds and nanoseconds), and one just past the calendar, are refused
/// naming the timestamp column and the calendar's years: no panic in a later backtest, no year
/// +262142 in `data ranges`, no millions of gaps.
#[test]
fn parquet_times_at_the_ends_of_i64_import_nothing() {
    let ns = |v: i64| -> ArrayRef {
        let mut t: Vec<i64> = T.iter().map(|t| t * 1_000_000_000).collect();
        t[3] = v;
        Arc::new(TimestampNanosecondArray::from(t).with_timezone("UTC"))
    };
    let secs = |v: i64| {
        let mut t = T;
        t[3] = v;
        utc_secs(&t)
    };
    let calendar = "1900-01-01..2035-12-31";
    let cases: Vec<(&str, ArrayRef, &str)> = vec![
        ("s-max", secs(i64::MAX), calendar),
        ("s-min", secs(i64::MIN), calendar),
        ("s-2036", secs(2_082_758_400), calendar),
        // 2262-04-11T23:47:16Z, the last whole second i64 nanoseconds reach.
        (
            "ns-max-whole",
            ns(i64::MAX - i64::MAX % 1_000_000_000),
            calendar,
        ),
        ("ns-max", ns(i64::MAX), "whole seconds"),
        ("ns-min", ns(i64::MIN), "whole seconds"),
    ];
    for (name, ts, why) in cases {
        let dir = scratch(&format!("hostile-pq-time-{name}"));
        let file = dir.join(format!("{name}.parquet"));
        write_parquet(&file, bars_with(ts), Compression::UNCOMPRESSED);
        let out = run(
            &dir,
            &["data", "import", file.to_str().unwrap(), "--symbol", "HOST"],
        );
        refused(
            name,
            &out,
            &[file.to_str().unwrap(), "row 4, column \"timestamp\"", why],
        );
        assert_eq!(stored_rows(&dir), vec![], "{name}: nothing stored");
        // Neither a range nor a gap list of an absurd span.
        let ranges = ok(name, &run(&dir, &["data", "ranges", "--json"]));
        assert_eq!(ranges.trim(), "[]", "{name}");
    }
}

/// Plain integer milliseconds (as many exporters write them) are read as milliseconds, not as
/// seconds 1000 times later.
#[test]
fn parquet_integer_milliseconds_are_read_as_milliseconds() {
    let dir = scratch("hostile-pq-int-ms");
    let file = dir.join("ms.parquet");
    let ms: Vec<i64> = T.iter().map(|t| t * 1_000).collect();
    write_parquet(
        &file,
        bars_with(Arc::new(Int64Array::from(ms))),
        Compression::UNCOMPRESSED,
    );
    let out = ok(
        "import",
        &run(
            &dir,
            &["data", "import", file.to_str().unwrap(), "--symbol", "MS"],
        ),
    );
    assert!(
        out.contains("MS: imported 4 bars on 2 days (2024-01-02 to 2024-01-03)"),
        "{out}"
    );
    assert_eq!(exported(&dir, "MS"), want_exported());
}

/// Every codec pandas, pyarrow and polars write (snappy is their default) imports the same bars.
#[test]
fn every_parquet_codec_imports_the_same_bars() {
    for (name, c) in [
        ("uncompressed", Compression::UNCOMPRESSED),
        ("snappy", Compression::SNAPPY),
        ("gzip", Compression::GZIP(GzipLevel::default())),
        ("lz4", Compression::LZ4),
        ("lz4-raw", Compression::LZ4_RAW),
        ("brotli", Compression::BROTLI(BrotliLevel::default())),
        ("zstd", Compression::ZSTD(ZstdLevel::default())),
    ] {
        let dir = scratch(&format!("hostile-pq-codec-{name}"));
        let file = dir.join(format!("{name}.parquet"));
        write_parquet(&file, bars_with(utc_secs(&T)), c);
        let out = ok(
            name,
            &run(
                &dir,
                &[
                    "data",
                    "import",
                    file.to_str().unwrap(),
                    "--symbol",
                    "CODEC",
                ],
            ),
        );
        assert!(
            out.contains("CODEC: imported 4 bars on 2 days"),
            "{name}: {out}"
        );
        assert_eq!(exported(&dir, "CODEC"), want_exported(), "{name}");
    }
}

/// `backtest --data` reads CSV; a Parquet file given there is refused in one line that says where
/// Parquet goes, never read as text.
#[test]
fn a_parquet_file_given_to_backtest_data_is_refused_plainly() {
    let dir = scratch("hostile-pq-backtest");
    let file = dir.join("bars.parquet");
    write_parquet(&file, with_bad("open", f64::NAN), Compression::UNCOMPRESSED);
    let f = file.to_str().unwrap();
    let err = refused(
        "backtest --data x.parquet",
        &run(&dir, &["backtest", "--session", "all", "--data", f]),
        &[f, "is a Parquet file, not CSV text", "vectura data import"],
    );
    assert!(
        err.is_ascii(),
        "no binary noise from reading it as text: {err}"
    );
    assert_eq!(stored_rows(&dir), vec![]);
}

const HEADER: &str = "timestamp,open,high,low,close,volume\n";
const DAY1: &str = "2024-01-02 14:30:00,10,11,9.5,10.5,100\n2024-01-02 14:31:00,10.5,11,10.1,10.2,200\n2024-01-03 14:30:00,10.2,10.9,10,10.8,300\n";

/// The same impossible values in a CSV file, through both commands: refused at line 5 (the second
/// day's second bar) naming the column, nothing stored, no report written.
#[test]
fn csv_files_with_impossible_values_are_refused_by_import_and_backtest() {
    for (name, row, needles) in [
        (
            "nan-open",
            "NaN,10.9,10.1,10.6,400",
            &["column 2 \"open\"", "price `NaN`"][..],
        ),
        (
            "inf-high",
            "10.4,inf,10.1,10.6,400",
            &["column 3 \"high\"", "price `inf`"],
        ),
        (
            "zero-low",
            "10.4,10.9,0,10.6,400",
            &["column 4 \"low\"", "price `0`"],
        ),
        (
            "negative-close",
            "10.4,10.9,10.1,-10.6,400",
            &["column 5 \"close\"", "price `-10.6`"],
        ),
        (
            "negative-volume",
            "10.4,10.9,10.1,10.6,-400",
            &["column 6 \"volume\"", "volume `-400`"],
        ),
        (
            "nan-volume",
            "10.4,10.9,10.1,10.6,NaN",
            &["column 6 \"volume\"", "volume `NaN`"],
        ),
        ("time-i64-max", "", &["column 1 \"timestamp\""]),
    ] {
        let dir = scratch(&format!("hostile-csv-{name}"));
        let file = dir.join(format!("{name}.csv"));
        let last = if row.is_empty() {
            "9223372036854775807,10.4,10.9,10.1,10.6,400".to_string()
        } else {
            format!("2024-01-03 14:31:00,{row}")
        };
        std::fs::write(&file, format!("{HEADER}{DAY1}{last}\n")).unwrap();
        let f = file.to_str().unwrap();
        let mut all = vec![f, "line 5"];
        all.extend_from_slice(needles);
        refused(
            &format!("import {name}"),
            &run(&dir, &["data", "import", f, "--symbol", "HOST"]),
            &all,
        );
        assert_eq!(stored_rows(&dir), vec![], "{name}: nothing stored");
        let report = dir.join("r.html");
        refused(
            &format!("backtest {name}"),
            &run(
                &dir,
                &[
                    "backtest",
                    "--session",
                    "all",
                    "--data",
                    f,
                    "--report",
                    report.to_str().unwrap(),
                ],
            ),
            &all,
        );
        assert!(!report.exists(), "{name}: no report");
        assert_eq!(stored_rows(&dir), vec![], "{name}: nothing stored");
    }
}

/// A `.csv.gz` of about 1 MB that inflates to a 1 GiB line (1024 gzip members of 1 MiB of digits
/// each, one valid gzip file) stops at the line bound with a message naming the line and the bound,
/// through both commands; nothing stored.
#[test]
fn a_gzip_bomb_csv_stops_at_the_line_bound() {
    let dir = scratch("hostile-gzip-bomb");
    let file = dir.join("bomb.csv.gz");
    let member = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![b'1'; 1 << 20]).unwrap();
        e.finish().unwrap()
    };
    let head = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(format!("{HEADER}2024-01-02 14:30:00,10,11,9,10,").as_bytes())
            .unwrap();
        e.finish().unwrap()
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    f.write_all(&head).unwrap();
    for _ in 0..1024 {
        f.write_all(&member).unwrap();
    }
    drop(f);
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size < 4 << 20, "a small file: {size} bytes");
    let p = file.to_str().unwrap();
    let needles = [p, "line 2: the line is longer than 65536 bytes"];
    refused(
        "import",
        &run(&dir, &["data", "import", p, "--symbol", "BOMB"]),
        &needles,
    );
    assert_eq!(stored_rows(&dir), vec![], "nothing stored");
    refused(
        "backtest",
        &run(&dir, &["backtest", "--session", "all", "--data", p]),
        &needles,
    );
}
