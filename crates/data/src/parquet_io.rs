//! Bars as a Parquet file (one symbol's series, one row per bar), for `vectura data export --format
//! parquet` / `data import` and for comparing sizes and speeds with the day codec.
//!
//! Columns: `timestamp` (Arrow `Timestamp(Second, "UTC")`, stored as INT64 Unix seconds), `open`,
//! `high`, `low`, `close`, `volume` (DOUBLE), and, when the series has them, `vwap` (DOUBLE) and
//! `trade_count` (UINT64). No column is nullable. A daily series carries the key-value metadata
//! `vectura.daily = true`. Files are written with zstd; [`read_parquet_checked`] reads files of
//! other writers too (pandas, pyarrow, polars: uncompressed, snappy, gzip, lz4, brotli or zstd; the
//! column types and time units it accepts are listed there), through the checks every bar source
//! shares ([`crate::validate`]).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, TimestampSecondArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use vectura_core::{Bar, BarSeries};

use crate::csv::Loaded;
use crate::timeparse::ZoneCache;
use crate::validate::{self, Checker, Field as BarField, Item, Name, Ordering, Problem};

const DAILY_KEY: &str = "vectura.daily";
/// 09:30, the NYSE open, in seconds: a `Date32` bar is stamped then, New York time, as CSV dates are.
const DAILY_STAMP_SEC: i64 = 9 * 3600 + 30 * 60;
/// Rows per written record batch.
const BATCH_ROWS: usize = 64 * 1024;

/// Why a Parquet file cannot be written or read as bars.
#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    #[error("{path}: {source}: check the path and its permissions")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a readable Parquet file ({source}): export it again")]
    Parquet {
        path: String,
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: {source}")]
    Arrow {
        path: String,
        source: arrow_schema::ArrowError,
    },
    #[error("{path}: {problem}: write it with `vectura data export --format parquet`")]
    Layout { path: String, problem: String },
    #[error("zstd level {0} is out of range: use 1..=22")]
    Level(i32),
    /// A bar that fails the checks every source shares: see [`crate::validate`].
    #[error(transparent)]
    Bar(#[from] validate::BadBar),
}

fn schema(bars: &BarSeries) -> Arc<Schema> {
    let mut fields = vec![
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
            false,
        ),
        Field::new("open", DataType::Float64, false),
        Field::new("high", DataType::Float64, false),
        Field::new("low", DataType::Float64, false),
        Field::new("close", DataType::Float64, false),
        Field::new("volume", DataType::Float64, false),
    ];
    if bars.vwap.is_some() {
        fields.push(Field::new("vwap", DataType::Float64, false));
    }
    if bars.trade_count.is_some() {
        fields.push(Field::new("trade_count", DataType::UInt64, false));
    }
    Arc::new(Schema::new(fields))
}

/// Writes `bars` to `path` (replacing it) as one Parquet file compressed with zstd at `zstd_level`.
pub fn write_parquet(path: &Path, bars: &BarSeries, zstd_level: i32) -> Result<(), ParquetError> {
    let name = path.display().to_string();
    let level = ZstdLevel::try_new(zstd_level).map_err(|_| ParquetError::Level(zstd_level))?;
    let pq = |source| ParquetError::Parquet {
        path: name.clone(),
        source,
    };
    let mut props = WriterProperties::builder().set_compression(Compression::ZSTD(level));
    if bars.daily {
        props = props.set_key_value_metadata(Some(vec![KeyValue::new(
            DAILY_KEY.to_string(),
            "true".to_string(),
        )]));
    }
    let file = File::create(path).map_err(|source| ParquetError::Io {
        path: name.clone(),
        source,
    })?;
    let schema = schema(bars);
    let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props.build())).map_err(pq)?;
    let n = bars.len();
    let mut start = 0;
    while start < n || (n == 0 && start == 0) {
        let end = (start + BATCH_ROWS).min(n);
        let f = |c: &[f64]| -> ArrayRef { Arc::new(Float64Array::from(c[start..end].to_vec())) };
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(TimestampSecondArray::from(bars.ts[start..end].to_vec()).with_timezone("UTC")),
            f(&bars.open),
            f(&bars.high),
            f(&bars.low),
            f(&bars.close),
            f(&bars.volume),
        ];
        if let Some(v) = &bars.vwap {
            cols.push(f(v));
        }
        if let Some(t) = &bars.trade_count {
            cols.push(Arc::new(UInt64Array::from(t[start..end].to_vec())));
        }
        let batch =
            RecordBatch::try_new(schema.clone(), cols).map_err(|source| ParquetError::Arrow {
                path: name.clone(),
                source,
            })?;
        w.write(&batch).map_err(pq)?;
        if n == 0 {
            break;
        }
        start = end;
    }
    w.close().map_err(pq)?;
    Ok(())
}

/// Reads a file written by [`write_parquet`] (or any Parquet file with those columns), widening
/// inconsistent bars; see [`read_parquet_checked`].
pub fn read_parquet(path: &Path) -> Result<BarSeries, ParquetError> {
    read_parquet_checked(path, false).map(|l| l.series)
}

/// How a `timestamp` column's values become Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeCol {
    /// A Parquet/Arrow timestamp: this many units per second.
    Typed(i64),
    /// A plain integer: the unit is chosen from the first value (see [`plain_unit`]).
    Plain(Option<i64>),
    /// Days since 1970-01-01 (Arrow `Date32`): daily bars, stamped 09:30 New York as CSV dates are.
    Days,
}

/// The units per second that put a plain integer time `v` inside the calendar's checked years
/// (1990..=2035), if one does: seconds, milliseconds, microseconds or nanoseconds. Those four
/// ranges are a factor 1000 apart and each spans less than a factor 4, so at most one fits.
fn plain_unit(v: i64) -> Option<i64> {
    let first = chrono::NaiveDate::from_ymd_opt(vectura_core::calendar::FIRST_YEAR, 1, 1)
        .expect("the calendar's first year is a date")
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp();
    [1, 1_000, 1_000_000, 1_000_000_000]
        .into_iter()
        .find(|&per| v % per == 0 && (first..validate::END_TS).contains(&(v / per)))
}

fn unit_words(per: i64) -> &'static str {
    match per {
        1 => "seconds",
        1_000 => "milliseconds",
        1_000_000 => "microseconds",
        _ => "nanoseconds",
    }
}

/// A numeric column's value as `f64` (DOUBLE, FLOAT and the integer types pandas writes for volume).
fn f64_at(a: &ArrayRef, i: usize) -> f64 {
    match a.data_type() {
        DataType::Float64 => a.as_primitive::<Float64Type>().value(i),
        DataType::Float32 => a.as_primitive::<Float32Type>().value(i) as f64,
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i) as f64,
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i) as f64,
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i) as f64,
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i) as f64,
        _ => unreachable!("column types are checked before reading"),
    }
}

fn is_number(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Float64
            | DataType::Float32
            | DataType::Int64
            | DataType::Int32
            | DataType::UInt64
            | DataType::UInt32
    )
}

/// Largest row count reserved up front: the file's own count is not trusted (a damaged or hostile
/// footer may claim 10^15 rows); the columns grow past it as rows are really read.
const MAX_RESERVE: usize = 1 << 20;

/// Reads bars from a Parquet file through the checks every bar source shares ([`validate`]):
/// prices, volume, trade count, the time range, order (oldest or newest first, repeats refused)
/// and consistency (widened and counted, or refused when `strict`). Errors name the file, the
/// 1-based data row and the column.
///
/// The `timestamp` column may be a Parquet timestamp of any unit (s, ms, µs, ns; with or without
/// a zone: a zone-less one is taken as UTC) holding whole seconds, a `Date32` (daily bars), or a
/// plain integer, whose unit is the one that puts the first value inside the calendar's checked
/// years 1990..=2035 (every later value must then fit the same unit: otherwise write the column as
/// a Parquet timestamp). Price and volume columns may be DOUBLE, FLOAT or integers.
pub fn read_parquet_checked(path: &Path, strict: bool) -> Result<Loaded, ParquetError> {
    let name = path.display().to_string();
    let pq = |source| ParquetError::Parquet {
        path: name.clone(),
        source,
    };
    let layout = |problem: String| ParquetError::Layout {
        path: name.clone(),
        problem,
    };
    let file = File::open(path).map_err(|source| ParquetError::Io {
        path: name.clone(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
    let daily_meta = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .is_some_and(|kv| {
            kv.iter()
                .any(|k| k.key == DAILY_KEY && k.value.as_deref() == Some("true"))
        });
    let schema = builder.schema().clone();
    let idx = |col: &str| schema.index_of(col).ok();
    let need = |col: &str| idx(col).ok_or_else(|| layout(format!("no `{col}` column")));
    let (it, io, ih, il, ic, iv) = (
        need("timestamp")?,
        need("open")?,
        need("high")?,
        need("low")?,
        need("close")?,
        need("volume")?,
    );
    let (ivw, itc) = (idx("vwap"), idx("trade_count"));
    let mut time_col = match schema.field(it).data_type() {
        DataType::Timestamp(unit, _) => TimeCol::Typed(match unit {
            TimeUnit::Second => 1,
            TimeUnit::Millisecond => 1_000,
            TimeUnit::Microsecond => 1_000_000,
            TimeUnit::Nanosecond => 1_000_000_000,
        }),
        DataType::Int64 | DataType::Int32 => TimeCol::Plain(None),
        DataType::Date32 => TimeCol::Days,
        t => {
            return Err(layout(format!(
                "column `timestamp` has type {t}, not a timestamp"
            )))
        }
    };
    for (i, col) in [
        (io, "open"),
        (ih, "high"),
        (il, "low"),
        (ic, "close"),
        (iv, "volume"),
    ]
    .into_iter()
    .chain(ivw.map(|i| (i, "vwap")))
    {
        let t = schema.field(i).data_type();
        if !is_number(t) {
            return Err(layout(format!("column `{col}` has type {t}, not a number")));
        }
    }
    if let Some(i) = itc {
        let t = schema.field(i).data_type();
        if !matches!(
            t,
            DataType::UInt64 | DataType::Int64 | DataType::Int32 | DataType::UInt32
        ) {
            return Err(layout(format!(
                "column `trade_count` has type {t}, not an integer"
            )));
        }
    }
    let used: Vec<usize> = [it, io, ih, il, ic, iv]
        .into_iter()
        .chain(ivw)
        .chain(itc)
        .collect();
    let rows = builder.metadata().file_metadata().num_rows().max(0) as usize;
    let mut checker = Checker::new(name.clone(), strict, Ordering::Either);
    checker.reserve(rows.min(MAX_RESERVE));
    let mut new_york = ZoneCache::new(chrono_tz::America::New_York);
    let reader = builder.with_batch_size(BATCH_ROWS).build().map_err(pq)?;
    let mut row0 = 0u64;
    let col_name = |i: usize| format!("column \"{}\"", schema.field(i).name());
    for batch in reader {
        let batch = batch.map_err(|source| ParquetError::Arrow {
            path: name.clone(),
            source,
        })?;
        for &i in &used {
            let a = batch.column(i);
            if a.null_count() > 0 {
                let r = (0..a.len()).find(|&r| a.is_null(r)).unwrap_or(0);
                return Err(layout(format!(
                    "row {}, {}: empty (null) value",
                    row0 + r as u64 + 1,
                    col_name(i)
                )));
            }
        }
        let (t, o, h, l, c, v) = (
            batch.column(it),
            batch.column(io),
            batch.column(ih),
            batch.column(il),
            batch.column(ic),
            batch.column(iv),
        );
        let vw = ivw.map(|i| batch.column(i));
        let tc = itc.map(|i| batch.column(i));
        for r in 0..batch.num_rows() {
            let row = row0 + r as u64 + 1;
            let item = Item::Row(row);
            let time_err = |text: String, expected: String| {
                ParquetError::Bar(checker.bad(
                    item,
                    Some(col_name(it)),
                    Problem::Time { text, expected },
                ))
            };
            let ts = match time_col {
                TimeCol::Typed(per) => {
                    let raw = timestamp_at(t, r);
                    if raw % per != 0 {
                        return Err(time_err(
                            format!("{raw} {}", unit_words(per)),
                            "whole seconds (bars start on a whole second)".into(),
                        ));
                    }
                    raw / per
                }
                TimeCol::Plain(unit) => {
                    let raw = match t.data_type() {
                        DataType::Int32 => t.as_primitive::<Int32Type>().value(r) as i64,
                        _ => t.as_primitive::<Int64Type>().value(r),
                    };
                    let per = match unit {
                        Some(per) => per,
                        None => {
                            let per = plain_unit(raw).ok_or_else(|| {
                                time_err(
                                    raw.to_string(),
                                    "Unix seconds, milliseconds, microseconds or nanoseconds of 1990..2035 (a plain integer column has no unit, so Vectura takes the one that fits; write the column as a Parquet timestamp, e.g. pandas datetime64 or pyarrow pa.timestamp(\"s\"), to give one)".into(),
                                )
                            })?;
                            time_col = TimeCol::Plain(Some(per));
                            per
                        }
                    };
                    if plain_unit(raw) != Some(per) {
                        return Err(time_err(
                            raw.to_string(),
                            format!(
                                "Unix {} of 1990..2035, the unit row 1 has (a plain integer column has no unit: write it as a Parquet timestamp to give one)",
                                unit_words(per)
                            ),
                        ));
                    }
                    raw / per
                }
                TimeCol::Days => {
                    let day = t.as_primitive::<Date32Type>().value(r) as i64;
                    let noon = day * 86_400 + 43_200;
                    if !validate::time_in_range(noon) {
                        return Err(time_err(
                            format!("day {day} after 1970-01-01"),
                            validate::range_words(),
                        ));
                    }
                    new_york.resolve(day, DAILY_STAMP_SEC).map_err(|_| {
                        time_err(
                            format!("day {day} after 1970-01-01"),
                            "a New York date with a 09:30".into(),
                        )
                    })?
                }
            };
            let trade_count = match tc {
                None => None,
                Some(a) => {
                    let n = match a.data_type() {
                        DataType::UInt64 => Some(a.as_primitive::<UInt64Type>().value(r)),
                        DataType::UInt32 => Some(a.as_primitive::<UInt32Type>().value(r) as u64),
                        DataType::Int32 => {
                            validate::trade_count_i64(a.as_primitive::<Int32Type>().value(r) as i64)
                        }
                        _ => validate::trade_count_i64(a.as_primitive::<Int64Type>().value(r)),
                    };
                    match n {
                        Some(n) => Some(n),
                        None => {
                            return Err(ParquetError::Bar(checker.bad(
                                item,
                                Some(col_name(itc.expect("a trade_count column"))),
                                Problem::TradeCount {
                                    text: f64_at(a, r).to_string(),
                                },
                            )))
                        }
                    }
                }
            };
            let bar = Bar {
                ts,
                open: f64_at(o, r),
                high: f64_at(h, r),
                low: f64_at(l, r),
                close: f64_at(c, r),
                volume: f64_at(v, r),
                vwap: vw.map(|a| f64_at(a, r)),
                trade_count,
            };
            checker.push(bar, item, |f| Name {
                field: match f {
                    BarField::Time => col_name(it),
                    BarField::Open => col_name(io),
                    BarField::High => col_name(ih),
                    BarField::Low => col_name(il),
                    BarField::Close => col_name(ic),
                    BarField::Volume => col_name(iv),
                    BarField::Vwap => ivw.map_or_else(|| "vwap".into(), col_name),
                    BarField::TradeCount => itc.map_or_else(|| "trade_count".into(), col_name),
                },
                text: None,
            })?;
        }
        row0 += batch.num_rows() as u64;
    }
    let mut checked = checker.finish(daily_meta || time_col == TimeCol::Days);
    if checked.series.is_empty() {
        // No bar to take them from: the columns are there, empty, as the file has them.
        checked.series.vwap = ivw.map(|_| Vec::new());
        checked.series.trade_count = itc.map(|_| Vec::new());
    }
    Ok(Loaded {
        series: checked.series,
        symbol: None,
        reversed: checked.reversed,
        widened: checked.widened,
        widened_lines: checked.widened_items,
        rows: row0 as usize,
    })
}

/// The raw value of a timestamp column of any unit at row `r`.
fn timestamp_at(a: &ArrayRef, r: usize) -> i64 {
    match a.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            a.as_primitive::<TimestampSecondType>().value(r)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            a.as_primitive::<TimestampMillisecondType>().value(r)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            a.as_primitive::<TimestampMicrosecondType>().value(r)
        }
        _ => a.as_primitive::<TimestampNanosecondType>().value(r),
    }
}
