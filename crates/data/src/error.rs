//! [`LoadError`]: everything that can stop a bar file from loading, each said on one line with the
//! file, the line, the column where one is involved, the problem and the fix.

/// Why a bar file did not load. Every message is one line: file, 1-based line, column (1-based index
/// and header name) where relevant, the problem, then what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("{file}: cannot open: {source}: check the path and that the file is readable")]
    Open {
        file: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{file} line {line}: read failed: {source}: check that the file is complete (a .gz must be a whole gzip stream)")]
    Read {
        file: String,
        line: u64,
        #[source]
        source: std::io::Error,
    },

    /// A Parquet file (its `PAR1` magic) given to the CSV reader: never read as text.
    #[error("{file}: this is a Parquet file, not CSV text: import it with `vectura data import {file} --symbol SYMBOL` (which reads Parquet) and run the stored bars with --symbol SYMBOL, or give a CSV file")]
    Parquet { file: String },

    #[error("{file} line 1: no bars: the file is empty: it needs a header row such as `timestamp,open,high,low,close,volume` and one row per bar")]
    Empty { file: String },

    #[error(
        "{file} line {line}: no bars: only the header is present: add one row per bar below it"
    )]
    NoBars { file: String, line: u64 },

    #[error("{file} line {line}: no time column in the header [{header}]: name the bar time column timestamp, ts, time, date or datetime (or leave its header cell empty)")]
    NoTimeColumn {
        file: String,
        line: u64,
        header: String,
    },

    #[error("{file} line {line}: no close column in the header [{header}]: add a close (or price) column; open, high, low and volume are optional")]
    NoCloseColumn {
        file: String,
        line: u64,
        header: String,
    },

    #[error("{file} line {line}: the header has {have} but no {missing} column: give all of open, high and low, or none of them (close only)")]
    PartialOhlc {
        file: String,
        line: u64,
        have: String,
        missing: String,
    },

    #[error("{file} line {line}, column {index} \"{name}\": repeats column {first}: rename or remove one of them")]
    DuplicateColumn {
        file: String,
        line: u64,
        index: usize,
        name: String,
        first: usize,
    },

    #[error("{file} line {line}: {found} fields but the header (line {header_line}) has {expected}: fix the row (a missing or extra comma, or an unquoted comma inside a value)")]
    FieldCount {
        file: String,
        line: u64,
        found: usize,
        expected: usize,
        header_line: u64,
    },

    #[error("{file} line {line}, column {index} \"{column}\": cannot read time `{text}` ({reason}): use RFC 3339 (2011-01-03T14:30:00Z), YYYY-MM-DD HH:MM:SS, YYYY-MM-DD, M/D/YYYY, YYYYMMDD or Unix seconds")]
    BadTime {
        file: String,
        line: u64,
        index: usize,
        column: String,
        text: String,
        reason: &'static str,
    },

    #[error("{file} line {line}, column {index} \"{column}\": local time `{text}` {problem} in {tz}: write the time with a UTC offset or Z, or fix the row")]
    LocalTime {
        file: String,
        line: u64,
        index: usize,
        column: String,
        text: String,
        tz: &'static str,
        problem: &'static str,
    },

    #[error("{file} line {line}, column {index} \"{column}\": `{text}` is {} but line {first_line} is {}: use one kind of time throughout the file (dates for daily bars, date and time otherwise)", time_kind(*.date_only), time_kind(!*.date_only))]
    MixedTimes {
        file: String,
        line: u64,
        index: usize,
        column: String,
        text: String,
        /// True when this row is a plain date (and the first row had a time of day).
        date_only: bool,
        first_line: u64,
    },

    #[error("{file} line {line}, column {index} \"{column}\": `{text}` is not a number: write a plain decimal such as 123.45")]
    BadNumber {
        file: String,
        line: u64,
        index: usize,
        column: String,
        text: String,
    },

    /// A bar that fails the checks every source shares (prices, volume, trade count, time range,
    /// consistency with --strict, order and repeats): see [`crate::validate`].
    #[error(transparent)]
    Bar(#[from] crate::validate::BadBar),

    #[error("{file} line {line}: the line is longer than {limit} bytes (a CSV bar row is well under 1 KiB): this is not a bar file, or it is damaged; check the file (a .gz must inflate to CSV text)", limit = crate::csv::MAX_LINE)]
    LineTooLong { file: String, line: u64 },

    #[error("{file}: column {index} \"{column}\" holds {count} symbols ({symbols}): pass --symbol to choose one")]
    MultipleSymbols {
        file: String,
        index: usize,
        column: String,
        count: usize,
        symbols: String,
    },

    #[error("{file}: no rows for symbol {wanted} in column {index} \"{column}\", which holds {count} symbols ({symbols}): pass one of them with --symbol")]
    UnknownSymbol {
        file: String,
        wanted: String,
        index: usize,
        column: String,
        count: usize,
        symbols: String,
    },
}

fn time_kind(date_only: bool) -> &'static str {
    if date_only {
        "a date without a time of day"
    } else {
        "a date with a time of day"
    }
}
