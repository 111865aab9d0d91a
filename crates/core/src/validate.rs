//! The one validation path every bar source goes through: CSV files, Parquet files, Alpaca's bars
//! replies and the original's v1 day blobs (`vectura-data`, which re-exports this module as
//! `vectura_data::validate`), and the emulator's bar files (`vectura-emulator`). The rules are pure,
//! so they live in the core, which both depend on.
//!
//! A reader turns its input into [`Bar`]s and hands each to a [`Checker`], which makes the same
//! checks for all of them and, on failure, returns the same error, a [`BadBar`], whose one-line
//! message names the source, the line/row/bar/pair, the field, the problem and the fix:
//!
//! - prices (open, high, low, close, VWAP) finite and > 0; volume finite and >= 0; a trade count a
//!   whole number >= 0 ([`trade_count_f64`], [`trade_count_i64`] for sources that carry it as a
//!   signed or floating number);
//! - the bar time inside [`FIRST_TS`]..[`END_TS`] (years [`FIRST_YEAR`]..=[`LAST_YEAR`]), so that
//!   no later date arithmetic overflows and no store shows a year such as +262142;
//! - open and close inside low..high: widened and counted, or refused when strict;
//! - strictly increasing times, or (for files) strictly decreasing throughout, then reversed; a
//!   repeated time is an error naming the first occurrence.

use std::fmt;

use crate::{Bar, BarSeries};

/// How many widened bars a load names by their item number (the rest are only counted).
pub const WIDENED_LINES_KEPT: usize = 10;

/// First year a bar may fall in. Earlier than the calendar's checked table
/// ([`crate::calendar::FIRST_YEAR`], 1990) because real daily files go back further (the
/// MSFT 1986 fixture, Yahoo's 1962 IBM series); the calendar serves those years by its rules alone.
pub const FIRST_YEAR: i32 = 1900;
/// Last year a bar may fall in: the end of the calendar's checked table.
pub const LAST_YEAR: i32 = crate::calendar::LAST_YEAR;
/// 1900-01-01T00:00:00Z as Unix seconds: the earliest bar time accepted.
pub const FIRST_TS: i64 = -2_208_988_800;
/// 2036-01-01T00:00:00Z as Unix seconds: bar times must be before it.
pub const END_TS: i64 = 2_082_758_400;

/// A field of a bar, as named in messages through the reader's own names for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The bar time.
    Time,
    /// The open price.
    Open,
    /// The high price.
    High,
    /// The low price.
    Low,
    /// The close price.
    Close,
    /// The volume.
    Volume,
    /// The volume-weighted average price.
    Vwap,
    /// The number of trades.
    TradeCount,
}

impl Field {
    /// The field's plain name (`open`, `trade_count`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Field::Time => "timestamp",
            Field::Open => "open",
            Field::High => "high",
            Field::Low => "low",
            Field::Close => "close",
            Field::Volume => "volume",
            Field::Vwap => "vwap",
            Field::TradeCount => "trade_count",
        }
    }
}

/// Which item of its source a bar is; the kind also chooses the fix a message suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// A 1-based line of a text file (CSV).
    Line(u64),
    /// A 1-based data row of a table file (Parquet).
    Row(u64),
    /// A 1-based bar of a provider's reply (Alpaca).
    Bar(u64),
    /// A 0-based `[seconds, close]` pair of a stored v1 day blob.
    Pair(u64),
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Line(n) => write!(f, "line {n}"),
            Item::Row(n) => write!(f, "row {n}"),
            Item::Bar(n) => write!(f, "bar {n}"),
            Item::Pair(n) => write!(f, "pair {n}"),
        }
    }
}

impl Item {
    /// What to do about a bad value in this kind of item.
    fn remedy(self) -> &'static str {
        match self {
            Item::Line(_) | Item::Row(_) => "fix or remove the row",
            Item::Bar(_) => {
                "the provider sent a bad bar: fetch the day again later, and report it to the provider if it repeats"
            }
            Item::Pair(_) => "the stored day is damaged; fetch it again",
        }
    }

    fn number(self) -> u64 {
        match self {
            Item::Line(n) | Item::Row(n) | Item::Bar(n) | Item::Pair(n) => n,
        }
    }
}

/// What is wrong with a bar.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// A price that is zero, negative, NaN or infinite.
    Price { text: String },
    /// A volume that is negative, NaN or infinite.
    Volume { text: String },
    /// A trade count that is negative or not whole.
    TradeCount { text: String },
    /// A time outside what the source or Vectura accepts.
    Time { text: String, expected: String },
    /// Open or close outside low..high (or low above high), refused because the load is strict.
    Inconsistent { detail: String },
    /// The same time as an earlier bar.
    Duplicate { ts: String, prev: Item },
    /// A time out of order with the previous bar.
    Disordered {
        ts: String,
        newest_first: bool,
        prev_ts: String,
        prev: Item,
    },
}

/// Where a bad bar is: its source (a file name, "Alpaca bars of AAPL 2024-01-02", ...), its item,
/// and the field as the source names it (`column 4 "low"`, `column "low"`, `field "l"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// The file or reply the bar came from.
    pub source: String,
    /// Which line, row, bar or pair.
    pub item: Item,
    /// The field as the source names it, when one field is at fault.
    pub field: Option<String>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.source, self.item)?;
        if let Some(field) = &self.field {
            write!(f, ", {field}")?;
        }
        Ok(())
    }
}

/// A bar that failed a check, from any source: one line naming the source, the item, the field,
/// the problem and the fix.
#[derive(Debug, Clone, PartialEq)]
pub struct BadBar {
    /// Where the bar is.
    pub at: Place,
    /// What is wrong with it.
    pub problem: Problem,
}

impl fmt::Display for BadBar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let item = self.at.item;
        let provider = matches!(item, Item::Bar(_) | Item::Pair(_));
        write!(f, "{}: ", self.at)?;
        match &self.problem {
            Problem::Price { text } => write!(
                f,
                "price `{text}` is not finite and positive: prices must be > 0 (no 0, negatives, NaN or inf); {}",
                item.remedy()
            ),
            Problem::Volume { text } => write!(
                f,
                "volume `{text}` must be a finite number >= 0: {}",
                item.remedy()
            ),
            Problem::TradeCount { text } => write!(
                f,
                "trade count `{text}` must be a whole number >= 0: {}",
                item.remedy()
            ),
            Problem::Time { text, expected } => write!(
                f,
                "time `{text}` is outside {expected}: {}",
                if provider {
                    item.remedy()
                } else {
                    "fix the row (check the time's unit: seconds, milliseconds, microseconds or nanoseconds)"
                }
            ),
            Problem::Inconsistent { detail } => write!(
                f,
                "inconsistent bar: {detail}: fix the row, or load without --strict to widen high/low to cover open and close"
            ),
            Problem::Duplicate { ts, prev } => {
                write!(f, "timestamp {ts} repeats {prev}: ")?;
                if provider {
                    f.write_str(item.remedy())
                } else {
                    f.write_str("remove the duplicate row (for a multi-symbol file, pass --symbol)")
                }
            }
            Problem::Disordered {
                ts,
                newest_first,
                prev_ts,
                prev,
            } => {
                let order = if *newest_first {
                    "before (the file is newest first)"
                } else {
                    "after"
                };
                write!(f, "timestamp {ts} is not {order} {prev_ts} on {prev}: ")?;
                if provider {
                    f.write_str(item.remedy())
                } else {
                    f.write_str(
                        "sort the file by time (oldest first, or newest first throughout)",
                    )
                }
            }
        }
    }
}

impl std::error::Error for BadBar {}

/// How a source names a field in messages: the name (`column 4 "low"`) and, for text sources, the
/// value as written (so a message quotes `0.00`, not `0`).
#[derive(Debug, Clone, Default)]
pub struct Name {
    /// The field as the source names it.
    pub field: String,
    /// The value as written in the source, when it is text.
    pub text: Option<String>,
}

/// A time for messages: RFC 3339 when it is one, else the raw Unix seconds.
pub fn show_ts(ts: i64) -> String {
    match chrono::DateTime::from_timestamp(ts, 0) {
        Some(d) => d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => format!("{ts} s after 1970 (no calendar date)"),
    }
}

/// The accepted time range in words, for messages.
pub fn range_words() -> String {
    format!("{FIRST_YEAR}-01-01..{LAST_YEAR}-12-31 (the years Vectura's trading calendar serves)")
}

/// True when `ts` is inside [`FIRST_TS`]..[`END_TS`].
#[inline]
pub fn time_in_range(ts: i64) -> bool {
    (FIRST_TS..END_TS).contains(&ts)
}

/// True for a usable price: finite and > 0.
#[inline]
pub fn is_price(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

/// True for a usable volume: finite and >= 0.
#[inline]
pub fn is_volume(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

/// A trade count carried as a float (JSON, CSV `12.0`): a whole number in 0..2^64, else `None`.
#[inline]
pub fn trade_count_f64(v: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 1.8e19).then_some(v as u64)
}

/// A trade count carried as a signed integer: >= 0, else `None`.
#[inline]
pub fn trade_count_i64(v: i64) -> Option<u64> {
    u64::try_from(v).ok()
}

/// What is wrong with an inconsistent bar, in words.
pub fn inconsistency(b: &Bar) -> String {
    let mut parts = Vec::new();
    if b.high < b.open {
        parts.push(format!("high {} is below open {}", b.high, b.open));
    }
    if b.high < b.close {
        parts.push(format!("high {} is below close {}", b.high, b.close));
    }
    if b.low > b.open {
        parts.push(format!("low {} is above open {}", b.low, b.open));
    }
    if b.low > b.close {
        parts.push(format!("low {} is above close {}", b.low, b.close));
    }
    if b.low > b.high {
        parts.push(format!("low {} is above high {}", b.low, b.high));
    }
    parts.join(", ")
}

/// Which orders a source may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// Oldest first only (a provider's reply asked for ascending bars).
    OldestFirst,
    /// Oldest first, or newest first throughout (vendor files of both kinds exist); a newest-first
    /// source is reversed by [`Checker::finish`].
    Either,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Unknown,
    Oldest,
    Newest,
}

/// What a [`Checker`] did besides accepting bars.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checked {
    /// The bars, oldest first, strictly increasing times.
    pub series: BarSeries,
    /// True when the source was newest-first and has been reversed.
    pub reversed: bool,
    /// How many inconsistent bars were widened (always 0 when strict).
    pub widened: usize,
    /// The item numbers (lines, rows, ...) of the first [`WIDENED_LINES_KEPT`] widened bars.
    pub widened_items: Vec<u64>,
}

/// Checks bars one by one and collects the good ones; see the module docs for the checks.
#[derive(Debug)]
pub struct Checker {
    source: String,
    strict: bool,
    ordering: Ordering,
    seen: Seen,
    prev: Option<(i64, Item)>,
    out: Checked,
    first: bool,
}

impl Checker {
    /// A checker of bars from `source` (named in messages); `strict` refuses inconsistent bars
    /// instead of widening them.
    pub fn new(source: impl Into<String>, strict: bool, ordering: Ordering) -> Checker {
        Checker {
            source: source.into(),
            strict,
            ordering,
            seen: Seen::Unknown,
            prev: None,
            out: Checked::default(),
            first: true,
        }
    }

    /// Room for `n` more bars.
    pub fn reserve(&mut self, n: usize) {
        self.out.series.reserve(n);
    }

    /// The source named in messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Checks `bar` (widening it when it is inconsistent and the load is not strict) and keeps it;
    /// `name` tells how the source names a field, called only to build an error.
    #[inline]
    pub fn push(
        &mut self,
        mut bar: Bar,
        item: Item,
        name: impl Fn(Field) -> Name,
    ) -> Result<(), BadBar> {
        self.check_values(&bar, item, &name)?;
        if !bar.is_consistent() {
            if self.strict {
                return Err(self.bad(
                    item,
                    None,
                    Problem::Inconsistent {
                        detail: inconsistency(&bar),
                    },
                ));
            }
            bar.widen();
            self.out.widened += 1;
            if self.out.widened_items.len() < WIDENED_LINES_KEPT {
                self.out.widened_items.push(item.number());
            }
        }
        self.check_order(bar.ts, item)?;
        self.keep(bar);
        Ok(())
    }

    #[inline]
    fn check_values(
        &self,
        bar: &Bar,
        item: Item,
        name: &impl Fn(Field) -> Name,
    ) -> Result<(), BadBar> {
        let fail = |field: Field, shown: String, mk: fn(String) -> Problem| {
            let n = name(field);
            self.bad(item, Some(n.field), mk(n.text.unwrap_or(shown)))
        };
        if !time_in_range(bar.ts) {
            let n = name(Field::Time);
            return Err(self.bad(
                item,
                Some(n.field),
                Problem::Time {
                    text: n.text.unwrap_or_else(|| show_ts(bar.ts)),
                    expected: range_words(),
                },
            ));
        }
        for (field, v) in [
            (Field::Open, bar.open),
            (Field::High, bar.high),
            (Field::Low, bar.low),
            (Field::Close, bar.close),
        ] {
            if !is_price(v) {
                return Err(fail(field, v.to_string(), |text| Problem::Price { text }));
            }
        }
        if !is_volume(bar.volume) {
            return Err(fail(Field::Volume, bar.volume.to_string(), |text| {
                Problem::Volume { text }
            }));
        }
        if let Some(v) = bar.vwap {
            if !is_price(v) {
                return Err(fail(Field::Vwap, v.to_string(), |text| Problem::Price {
                    text,
                }));
            }
        }
        Ok(())
    }

    #[inline]
    fn check_order(&mut self, ts: i64, item: Item) -> Result<(), BadBar> {
        if let Some((pts, pitem)) = self.prev {
            if ts == pts {
                return Err(self.bad(
                    item,
                    None,
                    Problem::Duplicate {
                        ts: show_ts(ts),
                        prev: pitem,
                    },
                ));
            }
            let fail = match self.seen {
                Seen::Unknown if ts > pts => {
                    self.seen = Seen::Oldest;
                    false
                }
                Seen::Unknown if self.ordering == Ordering::Either => {
                    self.seen = Seen::Newest;
                    false
                }
                Seen::Unknown => {
                    self.seen = Seen::Oldest;
                    true
                }
                Seen::Oldest => ts < pts,
                Seen::Newest => ts > pts,
            };
            if fail {
                return Err(self.bad(
                    item,
                    None,
                    Problem::Disordered {
                        ts: show_ts(ts),
                        newest_first: self.seen == Seen::Newest,
                        prev_ts: show_ts(pts),
                        prev: pitem,
                    },
                ));
            }
        }
        self.prev = Some((ts, item));
        Ok(())
    }

    #[inline]
    fn keep(&mut self, b: Bar) {
        let s = &mut self.out.series;
        s.ts.push(b.ts);
        s.open.push(b.open);
        s.high.push(b.high);
        s.low.push(b.low);
        s.close.push(b.close);
        s.volume.push(b.volume);
        // VWAP and trade count columns are kept only while every bar has them.
        match (self.first, b.vwap, &mut s.vwap) {
            (true, Some(v), slot) => *slot = Some(vec![v]),
            (false, Some(v), Some(col)) => col.push(v),
            (_, None, slot) => *slot = None,
            (false, Some(_), None) => {}
        }
        match (self.first, b.trade_count, &mut s.trade_count) {
            (true, Some(v), slot) => *slot = Some(vec![v]),
            (false, Some(v), Some(col)) => col.push(v),
            (_, None, slot) => *slot = None,
            (false, Some(_), None) => {}
        }
        self.first = false;
    }

    /// A [`BadBar`] at `item` of this source.
    pub fn bad(&self, item: Item, field: Option<String>, problem: Problem) -> BadBar {
        BadBar {
            at: Place {
                source: self.source.clone(),
                item,
                field,
            },
            problem,
        }
    }

    /// The bars kept so far.
    pub fn len(&self) -> usize {
        self.out.series.len()
    }

    /// True when no bar has been kept.
    pub fn is_empty(&self) -> bool {
        self.out.series.is_empty()
    }

    /// The bars, oldest first (a newest-first source reversed), and what was widened.
    pub fn finish(self, daily: bool) -> Checked {
        let mut out = self.out;
        out.series.daily = daily;
        if self.seen == Seen::Newest {
            out.reversed = true;
            let s = &mut out.series;
            s.ts.reverse();
            s.open.reverse();
            s.high.reverse();
            s.low.reverse();
            s.close.reverse();
            s.volume.reverse();
            if let Some(v) = s.vwap.as_mut() {
                v.reverse();
            }
            if let Some(v) = s.trade_count.as_mut() {
                v.reverse();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_constants_are_the_years_they_name() {
        use chrono::{Datelike, TimeZone, Utc};
        assert_eq!(
            Utc.with_ymd_and_hms(FIRST_YEAR, 1, 1, 0, 0, 0)
                .unwrap()
                .timestamp(),
            FIRST_TS
        );
        assert_eq!(
            Utc.with_ymd_and_hms(LAST_YEAR + 1, 1, 1, 0, 0, 0)
                .unwrap()
                .timestamp(),
            END_TS
        );
        let last = chrono::DateTime::from_timestamp(END_TS - 1, 0).unwrap();
        assert_eq!(last.year(), LAST_YEAR);
        assert!(time_in_range(FIRST_TS) && time_in_range(END_TS - 1));
        assert!(!time_in_range(FIRST_TS - 1) && !time_in_range(END_TS));
        assert!(!time_in_range(i64::MIN) && !time_in_range(i64::MAX));
    }
}
