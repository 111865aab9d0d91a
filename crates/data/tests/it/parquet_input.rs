//! Parquet files as other writers make them (pandas, pyarrow, polars): every compression they use,
//! timestamps of every unit, plain integer times, integer volumes, dates; and what is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Date32Array, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray,
};
use arrow_schema::{Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use vectura_data::parquet_io::{read_parquet, read_parquet_checked, ParquetError};
use vectura_data::validate::{Item, Problem};

/// 2024-01-02 14:30Z and the next two minutes.
const T: [i64; 3] = [1_704_205_800, 1_704_205_860, 1_704_205_920];

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vectura-parquet-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn f64s(v: &[f64]) -> ArrayRef {
    Arc::new(Float64Array::from(v.to_vec()))
}

/// Writes one batch of `cols` (name, array) with `compression`.
fn write(path: &Path, cols: Vec<(&str, ArrayRef)>, compression: Compression) {
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

/// Three good bars with the time column `ts`.
fn bars_with(ts: ArrayRef) -> Vec<(&'static str, ArrayRef)> {
    vec![
        ("timestamp", ts),
        ("open", f64s(&[10.0, 10.5, 10.2])),
        ("high", f64s(&[11.0, 11.0, 10.9])),
        ("low", f64s(&[9.5, 10.1, 10.0])),
        ("close", f64s(&[10.5, 10.2, 10.8])),
        ("volume", f64s(&[100.0, 200.0, 300.0])),
    ]
}

fn scaled(per: i64) -> Vec<i64> {
    T.iter().map(|t| t * per).collect()
}

#[test]
fn every_compression_pandas_and_pyarrow_write_is_read() {
    let secs: ArrayRef = Arc::new(TimestampSecondArray::from(T.to_vec()).with_timezone("UTC"));
    for c in [
        Compression::UNCOMPRESSED,
        Compression::SNAPPY,
        Compression::GZIP(GzipLevel::default()),
        Compression::LZ4,
        Compression::LZ4_RAW,
        Compression::BROTLI(BrotliLevel::default()),
        Compression::ZSTD(ZstdLevel::default()),
    ] {
        let p = tmp(&format!("codec-{c:?}.parquet").replace(['(', ')', ' ', '{', '}', ':'], ""));
        write(&p, bars_with(secs.clone()), c);
        let s = read_parquet(&p).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        assert_eq!(s.ts, T.to_vec(), "{c:?}");
        assert_eq!(s.close, vec![10.5, 10.2, 10.8], "{c:?}");
        assert_eq!(s.volume, vec![100.0, 200.0, 300.0], "{c:?}");
    }
}

#[test]
fn timestamps_of_every_unit_with_or_without_a_zone_are_unix_seconds() {
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("s", Arc::new(TimestampSecondArray::from(scaled(1)))),
        (
            "ms",
            Arc::new(TimestampMillisecondArray::from(scaled(1_000)).with_timezone("UTC")),
        ),
        (
            "us",
            Arc::new(TimestampMicrosecondArray::from(scaled(1_000_000)).with_timezone("+05:00")),
        ),
        (
            "ns",
            Arc::new(TimestampNanosecondArray::from(scaled(1_000_000_000))),
        ),
    ];
    for (unit, ts) in cols {
        let p = tmp(&format!("typed-{unit}.parquet"));
        write(&p, bars_with(ts), Compression::SNAPPY);
        assert_eq!(read_parquet(&p).unwrap().ts, T.to_vec(), "{unit}");
    }
}

#[test]
fn plain_integer_times_take_the_one_unit_that_fits_the_calendar() {
    for (unit, per) in [
        ("s", 1),
        ("ms", 1_000),
        ("us", 1_000_000),
        ("ns", 1_000_000_000),
    ] {
        let p = tmp(&format!("plain-{unit}.parquet"));
        write(
            &p,
            bars_with(Arc::new(Int64Array::from(scaled(per)))),
            Compression::SNAPPY,
        );
        let s = read_parquet(&p).unwrap_or_else(|e| panic!("{unit}: {e}"));
        assert_eq!(s.ts, T.to_vec(), "{unit}: read as the wrong unit");
    }
    let p = tmp("plain-i32.parquet");
    let t32: Vec<i32> = T.iter().map(|&t| t as i32).collect();
    write(
        &p,
        bars_with(Arc::new(Int32Array::from(t32))),
        Compression::SNAPPY,
    );
    assert_eq!(read_parquet(&p).unwrap().ts, T.to_vec());
}

fn time_error(p: &Path) -> (Item, String) {
    match read_parquet_checked(p, false) {
        Err(ParquetError::Bar(b)) => {
            assert!(matches!(b.problem, Problem::Time { .. }), "{b}");
            let msg = b.to_string();
            assert!(msg.starts_with(&p.display().to_string()), "{msg}");
            assert!(msg.contains("column \"timestamp\""), "{msg}");
            (b.at.item, msg)
        }
        other => panic!("expected a time error, got {other:?}"),
    }
}

#[test]
fn plain_integer_times_that_fit_no_unit_are_refused_with_the_fix() {
    let p = tmp("plain-bad.parquet");
    // 0-ish, the ends of i64, 1970-01-02 in milliseconds, 1989 in seconds, 2036 in seconds.
    for v in [
        0,
        1,
        -1,
        i64::MIN,
        i64::MAX,
        86_400_000,
        599_616_000,
        2_082_758_400,
    ] {
        write(
            &p,
            vec![
                ("timestamp", Arc::new(Int64Array::from(vec![v])) as ArrayRef),
                ("open", f64s(&[1.0])),
                ("high", f64s(&[1.0])),
                ("low", f64s(&[1.0])),
                ("close", f64s(&[1.0])),
                ("volume", f64s(&[1.0])),
            ],
            Compression::SNAPPY,
        );
        let (item, msg) = time_error(&p);
        assert_eq!(item, Item::Row(1), "{v}");
        assert!(msg.contains(&format!("`{v}`")), "{msg}");
        assert!(msg.contains("Parquet timestamp"), "{msg}");
    }
    // Milliseconds, then a value in seconds: refused at that row, naming the unit row 1 set.
    write(
        &p,
        bars_with(Arc::new(Int64Array::from(vec![
            T[0] * 1_000,
            T[1] * 1_000,
            T[2],
        ]))),
        Compression::SNAPPY,
    );
    let (item, msg) = time_error(&p);
    assert_eq!(item, Item::Row(3));
    assert!(msg.contains("milliseconds"), "{msg}");
}

#[test]
fn typed_timestamps_at_the_ends_of_i64_are_refused_not_a_panic() {
    let p = tmp("typed-ends.parquet");
    for v in [i64::MIN, i64::MIN + 1, i64::MAX, -2_208_988_801] {
        write(
            &p,
            vec![
                (
                    "timestamp",
                    Arc::new(TimestampSecondArray::from(vec![v]).with_timezone("UTC")) as ArrayRef,
                ),
                ("open", f64s(&[1.0])),
                ("high", f64s(&[1.0])),
                ("low", f64s(&[1.0])),
                ("close", f64s(&[1.0])),
                ("volume", f64s(&[1.0])),
            ],
            Compression::SNAPPY,
        );
        let (item, msg) = time_error(&p);
        assert_eq!(item, Item::Row(1));
        assert!(msg.contains("1900-01-01..2035-12-31"), "{msg}");
    }
    // Nanoseconds at the ends of i64 are years 1677 and 2262: outside too.
    for v in [i64::MIN, i64::MAX - i64::MAX % 1_000_000_000] {
        let mut cols = bars_with(Arc::new(TimestampNanosecondArray::from(vec![
            v,
            T[1] * 1_000_000_000,
            T[2] * 1_000_000_000,
        ])));
        cols.truncate(6);
        write(&p, cols, Compression::SNAPPY);
        let (item, _) = time_error(&p);
        assert_eq!(item, Item::Row(1));
    }
}

#[test]
fn fractions_of_a_second_are_refused() {
    let p = tmp("fraction.parquet");
    write(
        &p,
        bars_with(Arc::new(TimestampMillisecondArray::from(vec![
            T[0] * 1_000,
            T[1] * 1_000 + 500,
            T[2] * 1_000,
        ]))),
        Compression::SNAPPY,
    );
    let (item, msg) = time_error(&p);
    assert_eq!(item, Item::Row(2));
    assert!(msg.contains("whole seconds"), "{msg}");
}

#[test]
fn integer_volumes_float32_prices_and_dates_are_read() {
    let p = tmp("pandas-types.parquet");
    let f32s = |v: &[f32]| -> ArrayRef { Arc::new(Float32Array::from(v.to_vec())) };
    // 2024-01-02, -03, -04 as days since 1970-01-01.
    let days: ArrayRef = Arc::new(Date32Array::from(vec![19_724, 19_725, 19_726]));
    write(
        &p,
        vec![
            ("timestamp", days),
            ("open", f32s(&[10.0, 10.5, 10.25])),
            ("high", f32s(&[11.0, 11.0, 10.75])),
            ("low", f32s(&[9.5, 10.0, 10.0])),
            ("close", f32s(&[10.5, 10.25, 10.5])),
            ("volume", Arc::new(Int64Array::from(vec![100, 200, 300]))),
        ],
        Compression::SNAPPY,
    );
    let s = read_parquet(&p).unwrap();
    assert!(s.daily);
    // 09:30 New York (EST, UTC-5) is 14:30Z.
    assert_eq!(
        s.ts,
        vec![1_704_205_800, 1_704_292_200, 1_704_378_600],
        "dates are stamped at the New York open"
    );
    assert_eq!(s.volume, vec![100.0, 200.0, 300.0]);
    assert_eq!(s.close, vec![10.5, 10.25, 10.5]);
}

#[test]
fn a_null_is_refused_naming_its_row_and_column() {
    let p = tmp("null.parquet");
    let mut cols = bars_with(Arc::new(TimestampSecondArray::from(T.to_vec())));
    cols[4].1 = Arc::new(Float64Array::from(vec![Some(1.0), Some(2.0), None]));
    write(&p, cols, Compression::SNAPPY);
    let e = read_parquet(&p).unwrap_err().to_string();
    assert!(
        e.contains("row 3, column \"close\": empty (null) value"),
        "{e}"
    );
}
