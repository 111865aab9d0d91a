//! Bars as a Parquet file (one symbol's series, one row per bar), for `vectura data export --format
//! parquet` / `data import` and for comparing sizes and speeds with the day codec.
//!
//! Columns: `timestamp` (Arrow `Timestamp(Second, "UTC")`, stored as INT64 Unix seconds), `open`,
//! `high`, `low`, `close`, `volume` (DOUBLE), and, when the series has them, `vwap` (DOUBLE) and
//! `trade_count` (UINT64). No column is nullable. A daily series carries the key-value metadata
//! `vectura.daily = true`. [`read_parquet`] also accepts a `timestamp` of plain INT64 seconds or of a
//! millisecond, microsecond or nanosecond timestamp type holding whole seconds.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float64Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt64Type,
};
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, TimestampSecondArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use vectura_core::BarSeries;

const DAILY_KEY: &str = "vectura.daily";
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

/// Reads a file written by [`write_parquet`] (or any Parquet file with those columns).
pub fn read_parquet(path: &Path) -> Result<BarSeries, ParquetError> {
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
    let daily = builder
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
    let rows = builder.metadata().file_metadata().num_rows().max(0) as usize;
    let mut s = BarSeries::with_capacity(rows);
    s.daily = daily;
    if ivw.is_some() {
        s.vwap = Some(Vec::with_capacity(rows));
    }
    if itc.is_some() {
        s.trade_count = Some(Vec::with_capacity(rows));
    }
    let reader = builder.with_batch_size(BATCH_ROWS).build().map_err(pq)?;
    for batch in reader {
        let batch = batch.map_err(|source| ParquetError::Arrow {
            path: name.clone(),
            source,
        })?;
        for i in 0..batch.num_columns() {
            if batch.column(i).null_count() > 0 {
                let col = schema.field(i).name();
                return Err(layout(format!("column `{col}` has empty (null) values")));
            }
        }
        push_ts(&mut s.ts, batch.column(it)).map_err(&layout)?;
        for (dst, i, col) in [
            (&mut s.open, io, "open"),
            (&mut s.high, ih, "high"),
            (&mut s.low, il, "low"),
            (&mut s.close, ic, "close"),
            (&mut s.volume, iv, "volume"),
        ] {
            push_f64(dst, batch.column(i), col).map_err(&layout)?;
        }
        if let (Some(dst), Some(i)) = (s.vwap.as_mut(), ivw) {
            push_f64(dst, batch.column(i), "vwap").map_err(&layout)?;
        }
        if let (Some(dst), Some(i)) = (s.trade_count.as_mut(), itc) {
            let a = batch.column(i);
            match a.data_type() {
                DataType::UInt64 => dst.extend_from_slice(a.as_primitive::<UInt64Type>().values()),
                DataType::Int64 => {
                    let v = a.as_primitive::<Int64Type>().values();
                    if v.iter().any(|&x| x < 0) {
                        return Err(layout("column `trade_count` has negative values".into()));
                    }
                    dst.extend(v.iter().map(|&x| x as u64));
                }
                t => return Err(layout(format!("column `trade_count` has type {t}"))),
            }
        }
    }
    if let Some(w) = s.ts.windows(2).position(|w| w[1] <= w[0]) {
        return Err(layout(format!(
            "timestamps out of order at row {} ({} after {})",
            w + 1,
            s.ts[w + 1],
            s.ts[w]
        )));
    }
    Ok(s)
}

fn push_ts(dst: &mut Vec<i64>, a: &ArrayRef) -> Result<(), String> {
    let mut per = |v: &[i64], div: i64| -> Result<(), String> {
        if v.iter().any(|&x| x % div != 0) {
            return Err("column `timestamp` has fractions of a second".into());
        }
        dst.extend(v.iter().map(|&x| x / div));
        Ok(())
    };
    match a.data_type() {
        DataType::Int64 => per(a.as_primitive::<Int64Type>().values(), 1),
        DataType::Timestamp(TimeUnit::Second, _) => {
            per(a.as_primitive::<TimestampSecondType>().values(), 1)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            per(a.as_primitive::<TimestampMillisecondType>().values(), 1_000)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => per(
            a.as_primitive::<TimestampMicrosecondType>().values(),
            1_000_000,
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => per(
            a.as_primitive::<TimestampNanosecondType>().values(),
            1_000_000_000,
        ),
        t => Err(format!("column `timestamp` has type {t}")),
    }
}

fn push_f64(dst: &mut Vec<f64>, a: &ArrayRef, col: &str) -> Result<(), String> {
    match a.data_type() {
        DataType::Float64 => {
            dst.extend_from_slice(a.as_primitive::<Float64Type>().values());
            Ok(())
        }
        t => Err(format!("column `{col}` has type {t}, not DOUBLE")),
    }
}
