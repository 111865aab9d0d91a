//! Sweep results as Parquet: the CSV's columns in the same order (`set` as UINT64, every other
//! column a nullable DOUBLE holding the very same f64), one row per set in set order. Written under a
//! temporary name and renamed when complete, so a failed sweep leaves no partial file. A sweep of
//! several markets leads each row with the market: `symbol` (UTF8), `start_date` and `end_date`
//! (DATE), as its CSV does.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Date32Array, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use vectura_backtest::Market;

use super::record::{value_names, Record};
use crate::out_file::OutFile;
use crate::JobError;

type Result<T, E = JobError> = std::result::Result<T, E>;

/// A Parquet error while writing `path`, with the fix when it is about room.
fn parquet_err(path: &Path, room: bool) -> impl FnOnce(parquet::errors::ParquetError) -> JobError {
    let context = if room {
        format!(
            "writing --output {}: check the disk has room",
            path.display()
        )
    } else {
        format!("cannot write --output {}", path.display())
    };
    move |source| JobError::Parquet { context, source }
}

/// Rows per record batch and per row group: memory stays bounded however many sets a sweep has.
const ROWS: usize = 64 * 1024;

/// The buffered leading columns of a several-market file.
#[derive(Default)]
struct MarketColumns {
    symbols: Vec<String>,
    starts: Vec<i32>,
    ends: Vec<i32>,
}

/// Days since 1970-01-01, Parquet's DATE.
fn epoch_days(d: chrono::NaiveDate) -> i32 {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    // Dates of bars are far inside i32 days of 1970.
    (d - epoch).num_days() as i32
}

/// A Parquet results file being written.
pub struct ParquetOut {
    file: OutFile,
    path: PathBuf,
    schema: Arc<Schema>,
    writer: ArrowWriter<File>,
    /// The market columns, when the file has them (a sweep of several markets).
    markets: Option<MarketColumns>,
    sets: Vec<u64>,
    columns: Vec<Vec<Option<f64>>>,
}

impl ParquetOut {
    /// Starts `path` (written as a temporary file beside it until [`ParquetOut::finish`]); with `markets`, every row
    /// leads with its market's columns.
    pub fn create(path: &Path, markets: bool) -> Result<ParquetOut> {
        let names = value_names();
        let mut fields = Vec::new();
        if markets {
            fields.push(Field::new("symbol", DataType::Utf8, false));
            fields.push(Field::new("start_date", DataType::Date32, false));
            fields.push(Field::new("end_date", DataType::Date32, false));
        }
        fields.push(Field::new("set", DataType::UInt64, false));
        fields.extend(
            names
                .iter()
                .map(|n| Field::new(*n, DataType::Float64, true)),
        );
        let schema = Arc::new(Schema::new(fields));
        let out = OutFile::prepare(path, "--output")?;
        let file = out.open()?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROWS))
            .build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(parquet_err(path, false))?;
        Ok(ParquetOut {
            file: out,
            path: path.to_path_buf(),
            schema,
            writer,
            markets: markets.then(MarketColumns::default),
            sets: Vec::with_capacity(ROWS),
            columns: vec![Vec::with_capacity(ROWS); names.len()],
        })
    }

    /// Appends one set's row, of `market` when the file has market columns.
    pub fn row(&mut self, market: Option<&Market>, r: &Record) -> Result<()> {
        if let (Some(cols), Some(m)) = (self.markets.as_mut(), market) {
            cols.symbols.push(m.symbol.clone());
            cols.starts.push(epoch_days(m.start));
            cols.ends.push(epoch_days(m.end));
        }
        self.sets.push(r.set);
        for (c, v) in self.columns.iter_mut().zip(&r.values) {
            c.push(*v);
        }
        if self.sets.len() >= ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.sets.is_empty() {
            return Ok(());
        }
        let mut cols: Vec<ArrayRef> = Vec::new();
        if let Some(m) = self.markets.as_mut() {
            cols.push(Arc::new(StringArray::from(std::mem::take(&mut m.symbols))));
            cols.push(Arc::new(Date32Array::from(std::mem::take(&mut m.starts))));
            cols.push(Arc::new(Date32Array::from(std::mem::take(&mut m.ends))));
        }
        cols.push(Arc::new(UInt64Array::from(std::mem::take(&mut self.sets))));
        for c in &mut self.columns {
            cols.push(Arc::new(Float64Array::from(std::mem::take(c))));
        }
        let batch =
            RecordBatch::try_new(self.schema.clone(), cols).map_err(|source| JobError::Arrow {
                context: format!("writing --output {}", self.path.display()),
                source,
            })?;
        self.writer
            .write(&batch)
            .map_err(parquet_err(&self.path, true))
    }

    /// Writes the rest, closes the file and moves it into place.
    pub fn finish(mut self) -> Result<()> {
        self.flush()?;
        self.writer.close().map_err(parquet_err(&self.path, true))?;
        self.file.commit()
    }
}
