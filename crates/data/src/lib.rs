//! Vectura's market data: loading bars from CSV files (and, later, the bar store and providers).
//!
//! [`load_csv_path`] / [`load_csv_reader`] read one symbol's OHLCV bars from a vendor's CSV export,
//! plain or gzip-compressed, into a [`vectura_core::BarSeries`]:
//!
//! - a header row is required; columns may come in any order and case (spaces, `_` and `-` in names
//!   are ignored). The time column is named `timestamp`, `datetime`, `ts`/`t`, `time` or `date` (in
//!   that preference), or has an empty header cell; a `date` plus a `time` column are joined. Then
//!   `open`/`o`, `high`/`h`, `low`/`l`, `close`/`c`/`price`/`last` (`close` alone loads flat bars),
//!   optional `volume`/`vol`/`v` (0 when absent or empty), `vwap`/`vw`, `trade_count`/`trades`/`n`
//!   and `symbol`/`ticker`. Other columns (`Adj Close`, `OpenInt`, `rth`, ...) are ignored;
//! - times: RFC 3339 with `Z` or an offset; `YYYY-MM-DD HH:MM[:SS]` (or with `T`) in UTC, or in
//!   [`LoadOptions::tz`] when given (DST-aware: a skipped or repeated local time is an error);
//!   `YYYY-MM-DD`, `M/D/YYYY`, `YYYYMMDD` (daily bars, stamped at 09:30 America/New_York, and
//!   `series.daily` set); Unix seconds (9–10 digits) or milliseconds (13 digits);
//! - a `Symbol` column: the rows of [`LoadOptions::symbol`] only; without it, a file holding more
//!   than one symbol is an error listing them;
//! - newest-first files are reversed; any other disorder or a repeated timestamp is an error;
//! - blank and whitespace-only lines are skipped (line numbers in messages still count them);
//! - prices must be finite and positive, volume finite and not negative, times within
//!   1900-01-01..2035-12-31; inconsistent bars (open or close outside low..high) are widened and
//!   counted, or rejected with [`LoadOptions::strict`]. These checks are [`validate`]'s, the one
//!   path every bar source (CSV, Parquet, Alpaca's replies, v1 blobs) goes through;
//! - a record (line) longer than [`MAX_LINE`] (64 KiB) stops the load, so that a gzip bomb or
//!   `/dev/zero` cannot take unbounded memory;
//! - every error is a [`LoadError`] whose message is one line naming the file, the line, the column
//!   where one is involved, the problem and the fix.

pub mod alpaca;
pub mod alphavantage;
pub mod codec;
pub mod csv;
mod error;
pub mod parquet_io;
pub mod ratelimit;
pub mod synth;
mod timeparse;
pub mod v1blob;
/// The checks every bar source shares (kept in the core, so the emulator uses them too).
pub use vectura_core::validate;

pub use crate::csv::{
    load_csv_path, load_csv_reader, LoadOptions, Loaded, MAX_LINE, WIDENED_LINES_KEPT,
};
pub use crate::error::LoadError;
