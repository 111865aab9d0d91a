//! The CSV bar loader: one symbol's bars from a vendor export, `.csv` or `.csv.gz`.
//!
//! What it reads is described in the repository's `data/fixtures/README.md` ("What the bar loader
//! reads") and in the crate docs. The hot loop works on [`::csv::ByteRecord`]s and parses times and
//! numbers without allocating.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use chrono_tz::Tz;
use vectura_core::{Bar, BarSeries};

use crate::error::LoadError;
use crate::timeparse::{parse_time, LocalProblem, Stamp, ZoneCache};
use crate::validate::{self, Checker, Field, Item, Name, Ordering, Problem};

/// How many widened lines [`Loaded::widened_lines`] keeps (the shared checks' count).
pub use vectura_core::validate::WIDENED_LINES_KEPT;

/// How many symbols an error message lists.
const SYMBOLS_LISTED: usize = 20;

/// 09:30, the NYSE open, in seconds: daily (date-only) bars are stamped then, New York time.
const DAILY_STAMP_SEC: i64 = 9 * 3600 + 30 * 60;

/// What to load from a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    /// With a `Symbol` column: keep only this symbol's rows (case-insensitive). Required when the
    /// file holds more than one symbol; ignored when the file has no `Symbol` column.
    pub symbol: Option<String>,
    /// The zone of times written without `Z` or an offset (`YYYY-MM-DD HH:MM:SS`); UTC when `None`.
    pub tz: Option<Tz>,
    /// Reject inconsistent bars (open/close outside low..high) instead of widening them.
    pub strict: bool,
}

/// A loaded file.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The bars, oldest first, strictly increasing timestamps (Unix seconds UTC, bar start).
    pub series: BarSeries,
    /// The symbol as written in the file's `Symbol` column (of the rows kept), or `None` without one.
    pub symbol: Option<String>,
    /// True when the file was newest-first and has been reversed.
    pub reversed: bool,
    /// How many inconsistent bars were widened (always 0 with `strict`).
    pub widened: usize,
    /// The 1-based line numbers of the first [`WIDENED_LINES_KEPT`] widened bars.
    pub widened_lines: Vec<u64>,
    /// Data rows read from the file (all symbols; header and blank lines not counted).
    pub rows: usize,
}

/// Loads a `.csv` or `.csv.gz` bar file (gzip is recognised by its magic bytes, whatever the name).
pub fn load_csv_path(path: &Path, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| LoadError::Open {
        file: name.clone(),
        source,
    })?;
    load_csv_reader(&name, file, opts)
}

/// Loads bars from CSV text (or gzip-compressed CSV, recognised by its magic bytes); `name` is the
/// file name used in error messages.
pub fn load_csv_reader(
    name: &str,
    reader: impl Read,
    opts: &LoadOptions,
) -> Result<Loaded, LoadError> {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(LoadError::Read {
                    file: name.to_string(),
                    line: 1,
                    source,
                })
            }
        }
    }
    let rest = std::io::Cursor::new(head).take(got as u64).chain(reader);
    if got == 4 && &head == b"PAR1" {
        // Read as text, its header would be reported as binary noise.
        return Err(LoadError::Parquet {
            file: name.to_string(),
        });
    }
    if got >= 2 && head[..2] == [0x1f, 0x8b] {
        let gz = flate2::read::MultiGzDecoder::new(rest);
        Loader::new(name, opts).run(Lines::new(BufReader::with_capacity(1 << 16, gz)))
    } else {
        Loader::new(name, opts).run(Lines::new(rest))
    }
}

/// The longest CSV record (a line, or several when a quoted field holds line breaks) the loader
/// reads, in bytes: 64 KiB. A bar row is well under 1 KiB and the widest real header a few KiB, so
/// anything longer is not a bar file (a gzip bomb inflating to one huge line, `/dev/zero`); the
/// bound keeps the loader's memory small whatever the input.
pub const MAX_LINE: usize = 64 << 10;

/// Why [`Lines`] stopped: the record starting on `line` is longer than [`MAX_LINE`].
#[derive(Debug)]
struct TooLong {
    line: u64,
}

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {} is longer than {MAX_LINE} bytes", self.line)
    }
}

impl std::error::Error for TooLong {}

/// Rewrites line ends to `\n` (from `\r\n` or a lone `\r`) and puts a space on every empty line,
/// so that the CSV reader neither skips lines nor miscounts them: each record's position is then
/// its true 1-based line (the reader counts `\n`s, skips empty lines silently, and would count a
/// `\r\n` late). It also stops with a [`TooLong`] error at a record longer than [`MAX_LINE`],
/// following quotes as the CSV reader does (a `"` opening a field starts a quoted field, which
/// `""` continues and a lone `"` ends) so that a quoted field cannot grow without end either.
struct Lines<R> {
    inner: R,
    at_line_start: bool,
    after_cr: bool,
    queued: Option<u8>,
    st: Track,
}

/// Where [`Lines`] is in the CSV text, for the record-length bound.
struct Track {
    /// Inside a quoted field (line ends there do not end the record).
    in_quotes: bool,
    /// A `"` was just read inside a quoted field: the next byte decides whether it ends it.
    quote_pending: bool,
    /// The last byte written (`\n` at the start).
    last: u8,
    /// 1-based line of the next byte written, and the line the current record started on.
    line: u64,
    record_line: u64,
    /// Bytes of the current record so far.
    run: usize,
}

impl<R: BufRead> Lines<R> {
    fn new(inner: R) -> Self {
        Lines {
            inner,
            at_line_start: true,
            after_cr: false,
            queued: None,
            st: Track {
                in_quotes: false,
                quote_pending: false,
                last: b'\n',
                line: 1,
                record_line: 1,
                run: 0,
            },
        }
    }
}

impl Track {
    /// Follows quotes and lines for the (already normalised) byte `c` about to be written.
    #[inline]
    fn byte(&mut self, c: u8) -> std::io::Result<()> {
        if self.quote_pending {
            self.quote_pending = false;
            if c != b'"' {
                self.in_quotes = false;
            }
        } else if c == b'"' {
            if self.in_quotes {
                self.quote_pending = true;
            } else if self.last == b',' || self.last == b'\n' {
                self.in_quotes = true;
            }
        }
        self.last = c;
        if c == b'\n' {
            self.line += 1;
            if !(self.in_quotes || self.quote_pending) {
                self.run = 0;
                self.record_line = self.line;
                return Ok(());
            }
        }
        self.grow(1)
    }

    /// Counts `n` more bytes of the current record, which contain no line end or quote.
    #[inline]
    fn grow(&mut self, n: usize) -> std::io::Result<()> {
        self.run += n;
        if self.run > MAX_LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                TooLong {
                    line: self.record_line,
                },
            ));
        }
        Ok(())
    }
}

impl<R: BufRead> Read for Lines<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let mut n = 0;
        if let Some(q) = self.queued.take() {
            self.st.byte(q)?;
            out[0] = q;
            n = 1;
        }
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                return Ok(n);
            }
            let mut i = 0;
            while i < buf.len() && n < out.len() {
                if !self.at_line_start && !self.after_cr && !self.st.quote_pending {
                    // Inside a line: copy up to the next line end or quote in one go.
                    let room = (buf.len() - i).min(out.len() - n);
                    let run = find_special(&buf[i..i + room]);
                    if run > 0 {
                        out[n..n + run].copy_from_slice(&buf[i..i + run]);
                        self.st.last = buf[i + run - 1];
                        self.st.grow(run)?;
                        n += run;
                        i += run;
                    }
                    if i == buf.len() || n == out.len() {
                        break;
                    }
                }
                let c = buf[i];
                i += 1;
                if self.after_cr && c == b'\n' {
                    self.after_cr = false;
                    continue;
                }
                let newline = c == b'\n' || c == b'\r';
                let blank = newline && self.at_line_start;
                self.after_cr = c == b'\r';
                self.at_line_start = newline;
                if blank {
                    self.st.byte(b' ')?;
                    out[n] = b' ';
                    n += 1;
                    if n == out.len() {
                        self.queued = Some(b'\n');
                        break;
                    }
                }
                let c = if newline { b'\n' } else { c };
                self.st.byte(c)?;
                out[n] = c;
                n += 1;
            }
            self.inner.consume(i);
            if n > 0 {
                return Ok(n);
            }
        }
    }
}

/// The index of the first `\n`, `\r` or `"` in `b` (or its length), eight bytes at a time.
#[inline]
fn find_special(b: &[u8]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = b.chunks_exact(8);
    let mut i = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (x, y, z) = (
            w ^ (LO * b'\n' as u64),
            w ^ (LO * b'\r' as u64),
            w ^ (LO * b'"' as u64),
        );
        // A zero byte in x, y or z marks a match; the lowest flagged byte is always a true one.
        let t = ((x.wrapping_sub(LO) & !x) | (y.wrapping_sub(LO) & !y) | (z.wrapping_sub(LO) & !z))
            & HI;
        if t != 0 {
            return i + (t.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    for &c in chunks.remainder() {
        if c == b'\n' || c == b'\r' || c == b'"' {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// ASCII whitespace trimmed from both ends.
#[inline]
fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// Cell text for a message: lossy UTF-8, control characters escaped, at most 60 characters.
fn snippet(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == 60 {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}

/// A number cell: plain decimals of up to 15 digits exactly by Clinger's fast path (an exact
/// integer divided by an exact power of ten, so correctly rounded), anything else by the standard
/// library (exponents, long digit strings, `NaN`, `inf`).
#[inline]
fn parse_f64(b: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let (mut m, mut count, mut frac, mut dot) = (0u64, 0usize, 0usize, false);
    let mut fast = !digits.is_empty() && digits.len() <= 16;
    if fast {
        for &c in digits {
            if c.is_ascii_digit() {
                m = m * 10 + (c - b'0') as u64;
                count += 1;
                frac += dot as usize;
            } else if c == b'.' && !dot {
                dot = true;
            } else {
                fast = false;
                break;
            }
        }
    }
    if fast && count > 0 && count <= 15 {
        let v = m as f64 / POW10[frac];
        return Some(if neg { -v } else { v });
    }
    if b.is_empty() {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// The columns the header names, by 0-based index.
struct Columns {
    names: Vec<String>,
    time: usize,
    /// A separate time-of-day column joined to a `date` column (`Date,Time,...` exports).
    clock: Option<usize>,
    open: Option<usize>,
    high: Option<usize>,
    low: Option<usize>,
    close: usize,
    volume: Option<usize>,
    vwap: Option<usize>,
    trades: Option<usize>,
    symbol: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Timestamp,
    DateTime,
    Ts,
    Time,
    Date,
    Unnamed,
    Open,
    High,
    Low,
    Close,
    Volume,
    Vwap,
    Trades,
    Symbol,
}

/// A cell without a leading UTF-8 byte-order mark.
fn strip_bom(cell: &[u8]) -> &[u8] {
    cell.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(cell)
}

fn role(cell: &[u8]) -> Option<Role> {
    let cell = trim(strip_bom(trim(cell)));
    // Lower-case, without spaces, underscores and dashes: `Trade Count` = `trade_count` = `tradecount`.
    let mut key = [0u8; 24];
    let mut n = 0;
    for &c in cell {
        if matches!(c, b' ' | b'_' | b'-') {
            continue;
        }
        if n == key.len() {
            return None;
        }
        key[n] = c.to_ascii_lowercase();
        n += 1;
    }
    Some(match &key[..n] {
        b"" => Role::Unnamed,
        b"timestamp" | b"timestamputc" => Role::Timestamp,
        b"datetime" | b"datetimeutc" => Role::DateTime,
        b"ts" | b"t" => Role::Ts,
        b"time" => Role::Time,
        b"date" => Role::Date,
        b"open" | b"o" => Role::Open,
        b"high" | b"h" => Role::High,
        b"low" | b"l" => Role::Low,
        b"close" | b"c" | b"price" | b"last" => Role::Close,
        b"volume" | b"vol" | b"v" => Role::Volume,
        b"vwap" | b"vw" => Role::Vwap,
        b"tradecount" | b"trades" | b"n" | b"numtrades" => Role::Trades,
        b"symbol" | b"ticker" => Role::Symbol,
        _ => return None,
    })
}

impl Columns {
    fn from_header(file: &str, line: u64, rec: &::csv::ByteRecord) -> Result<Columns, LoadError> {
        let names: Vec<String> = rec.iter().map(|c| snippet(trim(strip_bom(c)))).collect();
        let header = || names.join(",");
        let mut slots: Vec<(Role, usize)> = Vec::new();
        for (i, cell) in rec.iter().enumerate() {
            let Some(r) = role(cell) else { continue };
            if r == Role::Unnamed {
                // Several unnamed cells: the first names the date column, the others are ignored.
                if slots.iter().any(|&(s, _)| s == Role::Unnamed) {
                    continue;
                }
            } else if let Some(&(_, first)) = slots.iter().find(|&&(s, _)| s == r) {
                return Err(LoadError::DuplicateColumn {
                    file: file.to_string(),
                    line,
                    index: i + 1,
                    name: names[i].clone(),
                    first: first + 1,
                });
            }
            slots.push((r, i));
        }
        let get = |r: Role| slots.iter().find(|&&(s, _)| s == r).map(|&(_, i)| i);
        let (time, clock) = match (
            get(Role::Timestamp)
                .or(get(Role::DateTime))
                .or(get(Role::Ts)),
            get(Role::Date),
            get(Role::Time),
        ) {
            (Some(t), _, _) => (t, None),
            (None, Some(d), Some(t)) => (d, Some(t)),
            (None, d, t) => match t.or(d).or(get(Role::Unnamed)) {
                Some(t) => (t, None),
                None => {
                    return Err(LoadError::NoTimeColumn {
                        file: file.to_string(),
                        line,
                        header: header(),
                    });
                }
            },
        };
        let Some(close) = get(Role::Close) else {
            return Err(LoadError::NoCloseColumn {
                file: file.to_string(),
                line,
                header: header(),
            });
        };
        let (open, high, low) = (get(Role::Open), get(Role::High), get(Role::Low));
        let present: Vec<&str> = [("open", open), ("high", high), ("low", low)]
            .iter()
            .filter(|x| x.1.is_some())
            .map(|x| x.0)
            .collect();
        if !present.is_empty() && present.len() < 3 {
            let missing: Vec<&str> = [("open", open), ("high", high), ("low", low)]
                .iter()
                .filter(|x| x.1.is_none())
                .map(|x| x.0)
                .collect();
            return Err(LoadError::PartialOhlc {
                file: file.to_string(),
                line,
                have: present.join(", "),
                missing: missing.join(", "),
            });
        }
        Ok(Columns {
            names,
            time,
            clock,
            open,
            high,
            low,
            close,
            volume: get(Role::Volume),
            vwap: get(Role::Vwap),
            trades: get(Role::Trades),
            symbol: get(Role::Symbol),
        })
    }
}

/// The symbols a file holds, noted row by row cheaply (files are usually grouped by symbol).
#[derive(Default)]
struct SymbolSet {
    set: BTreeSet<Vec<u8>>,
    last: Option<Vec<u8>>,
}

impl SymbolSet {
    #[inline]
    fn note(&mut self, s: &[u8]) {
        if self.last.as_deref() == Some(s) {
            return;
        }
        if !self.set.contains(s) {
            self.set.insert(s.to_vec());
        }
        self.last = Some(s.to_vec());
    }

    fn listing(&self) -> String {
        let mut out: Vec<String> = self
            .set
            .iter()
            .take(SYMBOLS_LISTED)
            .map(|s| snippet(s))
            .collect();
        if self.set.len() > SYMBOLS_LISTED {
            out.push("…".to_string());
        }
        out.join(", ")
    }
}

struct Loader<'a> {
    file: &'a str,
    opts: &'a LoadOptions,
    zone: Option<ZoneCache>,
    new_york: ZoneCache,
    /// The last date cell seen and its day number (intraday files repeat a date for many rows).
    date_cache: Option<([u8; 10], i64)>,
    scratch: Vec<u8>,
}

impl<'a> Loader<'a> {
    fn new(file: &'a str, opts: &'a LoadOptions) -> Self {
        Loader {
            file,
            opts,
            zone: opts.tz.map(ZoneCache::new),
            new_york: ZoneCache::new(chrono_tz::America::New_York),
            date_cache: None,
            scratch: Vec::new(),
        }
    }

    fn read_err(&self, line: u64, e: ::csv::Error) -> LoadError {
        let source = match e.into_kind() {
            ::csv::ErrorKind::Io(e) => e,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{other:?}")),
        };
        if let Some(t) = source.get_ref().and_then(|e| e.downcast_ref::<TooLong>()) {
            return LoadError::LineTooLong {
                file: self.file.to_string(),
                line: t.line,
            };
        }
        LoadError::Read {
            file: self.file.to_string(),
            line,
            source,
        }
    }

    fn run(mut self, input: impl Read) -> Result<Loaded, LoadError> {
        let mut rdr = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(input);
        let mut rec = ::csv::ByteRecord::new();
        let mut line = 1u64;
        let is_blank = |r: &::csv::ByteRecord| r.len() == 1 && trim(&r[0]).is_empty();

        // The header: the first line that is not blank.
        let (cols, header_line) = loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(LoadError::Empty {
                        file: self.file.to_string(),
                    })
                }
                Err(e) => return Err(self.read_err(line, e)),
            }
            line = rec.position().map_or(line, |p| p.line());
            if !is_blank(&rec) {
                break (Columns::from_header(self.file, line, &rec)?, line);
            }
        };

        let mut checker = Checker::new(self.file, self.opts.strict, Ordering::Either);
        let mut rows = 0usize;
        // Whether the rows are dates (daily bars), and the first row's line.
        let mut daily: Option<(bool, u64)> = None;
        let mut symbols = SymbolSet::default();
        let mut kept_symbol: Option<String> = None;
        let mut first_symbol: Option<Vec<u8>> = None;
        let mut many_symbols = false;
        let width = cols.names.len();

        loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(self.read_err(line, e)),
            }
            line = rec.position().map_or(line, |p| p.line());
            if is_blank(&rec) {
                continue;
            }
            rows += 1;
            if rec.len() != width {
                return Err(LoadError::FieldCount {
                    file: self.file.to_string(),
                    line,
                    found: rec.len(),
                    expected: width,
                    header_line,
                });
            }

            if let Some(si) = cols.symbol {
                let s = trim(&rec[si]);
                symbols.note(s);
                match &self.opts.symbol {
                    Some(want) => {
                        if !s.eq_ignore_ascii_case(trim(want.as_bytes())) {
                            continue;
                        }
                        if kept_symbol.is_none() {
                            kept_symbol = Some(String::from_utf8_lossy(s).into_owned());
                        }
                    }
                    None => {
                        if many_symbols {
                            continue;
                        }
                        match &first_symbol {
                            None => first_symbol = Some(s.to_vec()),
                            Some(f) if f.as_slice() == s => {}
                            Some(_) => {
                                many_symbols = true;
                                continue;
                            }
                        }
                    }
                }
            }

            // Time.
            let (ts, is_date) = self.time(&cols, &rec, line)?;
            match daily {
                None => daily = Some((is_date, line)),
                Some((d, first_line)) if d != is_date => {
                    return Err(LoadError::MixedTimes {
                        file: self.file.to_string(),
                        line,
                        index: cols.time + 1,
                        column: cols.names[cols.time].clone(),
                        text: snippet(trim(&rec[cols.time])),
                        date_only: is_date,
                        first_line,
                    });
                }
                Some(_) => {}
            }

            // Values: parsed here, checked by the one validation path all sources share.
            let close = self.number(&cols, &rec, cols.close, line)?;
            let (open, high, low) = match (cols.open, cols.high, cols.low) {
                (Some(o), Some(h), Some(l)) => (
                    self.number(&cols, &rec, o, line)?,
                    self.number(&cols, &rec, h, line)?,
                    self.number(&cols, &rec, l, line)?,
                ),
                _ => (close, close, close),
            };
            let volume = match cols.volume {
                Some(i) if !trim(&rec[i]).is_empty() => self.number(&cols, &rec, i, line)?,
                _ => 0.0,
            };
            let vwap = match cols.vwap {
                Some(i) if !trim(&rec[i]).is_empty() => Some(self.number(&cols, &rec, i, line)?),
                _ => None,
            };
            let trade_count = match cols.trades {
                Some(i) if !trim(&rec[i]).is_empty() => {
                    let t = trim(&rec[i]);
                    let n = std::str::from_utf8(t)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .or_else(|| parse_f64(t).and_then(validate::trade_count_f64));
                    match n {
                        Some(n) => Some(n),
                        None => {
                            return Err(LoadError::Bar(checker.bad(
                                Item::Line(line),
                                Some(column_name(&cols, i)),
                                Problem::TradeCount { text: snippet(t) },
                            )))
                        }
                    }
                }
                _ => None,
            };

            let bar = Bar {
                ts,
                open,
                high,
                low,
                close,
                volume,
                vwap,
                trade_count,
            };
            checker.push(bar, Item::Line(line), |f| {
                let i = match f {
                    Field::Time => Some(cols.time),
                    Field::Open => cols.open.or(Some(cols.close)),
                    Field::High => cols.high.or(Some(cols.close)),
                    Field::Low => cols.low.or(Some(cols.close)),
                    Field::Close => Some(cols.close),
                    Field::Volume => cols.volume,
                    Field::Vwap => cols.vwap,
                    Field::TradeCount => cols.trades,
                };
                match i {
                    Some(i) => Name {
                        field: column_name(&cols, i),
                        text: Some(snippet(trim(&rec[i]))),
                    },
                    None => Name {
                        field: f.name().to_string(),
                        text: None,
                    },
                }
            })?;
        }

        if let Some(si) = cols.symbol {
            let column = cols.names[si].clone();
            if many_symbols {
                return Err(LoadError::MultipleSymbols {
                    file: self.file.to_string(),
                    index: si + 1,
                    column,
                    count: symbols.set.len(),
                    symbols: symbols.listing(),
                });
            }
            if let (Some(want), None) = (&self.opts.symbol, &kept_symbol) {
                if rows > 0 {
                    return Err(LoadError::UnknownSymbol {
                        file: self.file.to_string(),
                        wanted: want.clone(),
                        index: si + 1,
                        column,
                        count: symbols.set.len(),
                        symbols: symbols.listing(),
                    });
                }
            }
            if self.opts.symbol.is_none() {
                kept_symbol = first_symbol.map(|s| String::from_utf8_lossy(&s).into_owned());
            }
        }
        if checker.is_empty() {
            return Err(LoadError::NoBars {
                file: self.file.to_string(),
                line: header_line,
            });
        }
        let checked = checker.finish(daily.is_some_and(|d| d.0));
        Ok(Loaded {
            series: checked.series,
            symbol: kept_symbol,
            reversed: checked.reversed,
            widened: checked.widened,
            widened_lines: checked.widened_items,
            rows,
        })
    }

    /// The row's bar time, and whether it was a plain date.
    #[inline]
    fn time(
        &mut self,
        cols: &Columns,
        rec: &::csv::ByteRecord,
        line: u64,
    ) -> Result<(i64, bool), LoadError> {
        let mut text = trim(&rec[cols.time]);
        if let Some(c) = cols.clock {
            self.scratch.clear();
            self.scratch.extend_from_slice(text);
            self.scratch.push(b' ');
            self.scratch.extend_from_slice(trim(&rec[c]));
            text = &self.scratch;
        }
        let stamp = stamp(&mut self.date_cache, text).map_err(|reason| LoadError::BadTime {
            file: self.file.to_string(),
            line,
            index: cols.time + 1,
            column: cols.names[cols.time].clone(),
            text: snippet(text),
            reason,
        })?;
        let local = |z: &mut ZoneCache, day, sec, tz: Tz| {
            z.resolve(day, sec).map_err(|p| LoadError::LocalTime {
                file: self.file.to_string(),
                line,
                index: cols.time + 1,
                column: cols.names[cols.time].clone(),
                text: snippet(text),
                tz: tz.name(),
                problem: match p {
                    LocalProblem::Ambiguous => {
                        "is ambiguous (it happens twice as the clocks go back)"
                    }
                    LocalProblem::Nonexistent => "does not exist (the clocks go forward over it)",
                },
            })
        };
        Ok(match stamp {
            Stamp::At(ts) => (ts, false),
            Stamp::Naive { day, sec } => match self.zone.as_mut() {
                None => (day * 86_400 + sec, false),
                Some(z) => {
                    let tz = self.opts.tz.unwrap_or(chrono_tz::UTC);
                    (local(z, day, sec, tz)?, false)
                }
            },
            Stamp::Date(day) => (
                local(
                    &mut self.new_york,
                    day,
                    DAILY_STAMP_SEC,
                    chrono_tz::America::New_York,
                )?,
                true,
            ),
        })
    }

    /// A number cell (any number: the checker judges its value).
    #[inline]
    fn number(
        &self,
        cols: &Columns,
        rec: &::csv::ByteRecord,
        i: usize,
        line: u64,
    ) -> Result<f64, LoadError> {
        parse_f64(trim(&rec[i])).ok_or_else(|| LoadError::BadNumber {
            file: self.file.to_string(),
            line,
            index: i + 1,
            column: cols.names[i].clone(),
            text: snippet(trim(&rec[i])),
        })
    }
}

/// A column as messages name it: `column 4 "low"`.
fn column_name(cols: &Columns, i: usize) -> String {
    format!("column {} \"{}\"", i + 1, cols.names[i])
}

/// Parses a time cell, remembering the last `YYYY-MM-DD` prefix's day number in `cache` so that the
/// common `YYYY-MM-DD HH:MM:SS[Z]` shapes of intraday files skip the date arithmetic.
#[inline]
fn stamp(cache: &mut Option<([u8; 10], i64)>, text: &[u8]) -> Result<Stamp, &'static str> {
    let zulu = text.len() == 20 && matches!(text[19], b'Z' | b'z');
    if (text.len() == 19 || zulu)
        && text[4] == b'-'
        && text[7] == b'-'
        && text[13] == b':'
        && text[16] == b':'
    {
        if let Some((cached, day)) = cache {
            if cached[..] == text[..10] && matches!(text[10], b' ' | b'T' | b't') {
                let d = |i: usize| text[i].wrapping_sub(b'0') as i64;
                if [11, 12, 14, 15, 17, 18]
                    .iter()
                    .all(|&i| text[i].is_ascii_digit())
                {
                    let (h, m, s) = (d(11) * 10 + d(12), d(14) * 10 + d(15), d(17) * 10 + d(18));
                    if h < 24 && m < 60 && s < 60 {
                        let sec = h * 3600 + m * 60 + s;
                        return Ok(if zulu {
                            Stamp::At(*day * 86_400 + sec)
                        } else {
                            Stamp::Naive { day: *day, sec }
                        });
                    }
                }
            }
        }
    }
    let stamp = parse_time(text)?;
    if text.len() >= 10 && text[4] == b'-' && text[7] == b'-' {
        let day = match stamp {
            Stamp::Naive { day, .. } | Stamp::Date(day) => Some(day),
            Stamp::At(_) => crate::timeparse::date_prefix_day(text),
        };
        if let Some(day) = day {
            let mut key = [0u8; 10];
            key.copy_from_slice(&text[..10]);
            *cache = Some((key, day));
        }
    }
    Ok(stamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalise(input: &[u8], chunk: usize) -> Vec<u8> {
        let mut lines = Lines::new(BufReader::with_capacity(3, input));
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            let n = lines.read(&mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn numbers() {
        for t in [
            "1",
            "1.5",
            "-2.25",
            "+3",
            "0.1",
            ".5",
            "5.",
            "123456789012345",
            "0.000000000000001",
            "3080.49",
            "1e3",
            "1.7976931348623157e308",
            "12345678901234567890",
            "0.1234567890123456789",
        ] {
            assert_eq!(
                parse_f64(t.as_bytes()),
                Some(t.parse::<f64>().unwrap()),
                "{t}"
            );
        }
        assert!(parse_f64(b"NaN").unwrap().is_nan());
        assert_eq!(parse_f64(b"inf"), Some(f64::INFINITY));
        for t in ["", ".", "-", "1.2.3", "1,5", "x", "1 2", "--1"] {
            assert_eq!(parse_f64(t.as_bytes()), None, "{t}");
        }
    }

    #[test]
    fn specials_found() {
        for (s, want) in [
            ("", 0),
            ("abc", 3),
            ("abcdefghij\n", 10),
            ("ab\rcdefghij\n", 2),
            ("abcdefgh\n", 8),
            ("\n", 0),
        ] {
            assert_eq!(find_special(s.as_bytes()), want, "{s:?}");
        }
        let mut long = vec![b'a'; 100];
        for i in (0..100).rev() {
            long[i] = if i % 2 == 0 { b'\n' } else { b'\r' };
            assert_eq!(find_special(&long), i);
        }
    }

    #[test]
    fn line_ends_are_normalised_and_empty_lines_kept() {
        for chunk in [1, 2, 3, 64] {
            assert_eq!(normalise(b"a\r\nb\r\n\r\nc", chunk), b"a\nb\n \nc");
            assert_eq!(normalise(b"\n\na\rb\r\r\n", chunk), b" \n \na\nb\n \n");
            assert_eq!(normalise(b"a\n\n", chunk), b"a\n \n");
            assert_eq!(normalise(b"", chunk), b"");
        }
    }
}
