//! OHLCV bars, one at a time ([`Bar`]) and columnar ([`BarSeries`]) for the hot loops.

use serde::{Deserialize, Serialize};

/// One bar: its start instant (Unix seconds, UTC) and OHLCV, with VWAP and trade count when the feed has them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    /// Bar start, Unix seconds UTC (Alpaca's convention). A daily bar is stamped with its session's open.
    pub ts: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub vwap: Option<f64>,
    pub trade_count: Option<u64>,
}

/// What is wrong with a bar.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BarError {
    #[error("{field} is {value}: prices must be finite and positive")]
    BadPrice { field: &'static str, value: f64 },
    #[error("volume is {0}: volume must be finite and not negative")]
    BadVolume(f64),
    #[error("low {low} is above high {high}: fix the row or load without --strict to widen it")]
    LowAboveHigh { low: f64, high: f64 },
    #[error("open/close outside low..high: fix the row or load without --strict to widen it")]
    Inconsistent,
    #[error("timestamp {ts} is not after the previous bar's {prev}: bars must be in time order without repeats")]
    Disordered { ts: i64, prev: i64 },
}

impl Bar {
    /// A bar with all four prices equal (a close-only feed, as the original stored).
    pub fn flat(ts: i64, price: f64) -> Bar {
        Bar {
            ts,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: 0.0,
            vwap: None,
            trade_count: None,
        }
    }

    /// Checks prices and volume; `strict` also rejects open/close outside low..high.
    pub fn validate(&self, strict: bool) -> Result<(), BarError> {
        for (field, value) in [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(BarError::BadPrice { field, value });
            }
        }
        if let Some(v) = self.vwap {
            if !(v.is_finite() && v > 0.0) {
                return Err(BarError::BadPrice {
                    field: "vwap",
                    value: v,
                });
            }
        }
        if !(self.volume.is_finite() && self.volume >= 0.0) {
            return Err(BarError::BadVolume(self.volume));
        }
        if strict {
            if self.low > self.high {
                return Err(BarError::LowAboveHigh {
                    low: self.low,
                    high: self.high,
                });
            }
            if !self.is_consistent() {
                return Err(BarError::Inconsistent);
            }
        }
        Ok(())
    }

    /// True when low ≤ open, close ≤ high.
    pub fn is_consistent(&self) -> bool {
        self.low <= self.open.min(self.close)
            && self.high >= self.open.max(self.close)
            && self.low <= self.high
    }

    /// Widens high and low so that low ≤ open, close ≤ high.
    pub fn widen(&mut self) {
        let hi = self.high.max(self.open).max(self.close).max(self.low);
        let lo = self.low.min(self.open).min(self.close).min(self.high);
        self.high = hi;
        self.low = lo;
    }
}

/// Bars of one symbol in strictly increasing time, stored column by column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BarSeries {
    pub ts: Vec<i64>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
    /// Present only when every bar has a VWAP.
    pub vwap: Option<Vec<f64>>,
    /// Present only when every bar has a trade count.
    pub trade_count: Option<Vec<u64>>,
    /// True when the bars are whole sessions stamped with a plain date (daily bars).
    pub daily: bool,
}

impl BarSeries {
    /// An empty series with room for `n` bars.
    pub fn with_capacity(n: usize) -> Self {
        BarSeries {
            ts: Vec::with_capacity(n),
            open: Vec::with_capacity(n),
            high: Vec::with_capacity(n),
            low: Vec::with_capacity(n),
            close: Vec::with_capacity(n),
            volume: Vec::with_capacity(n),
            vwap: None,
            trade_count: None,
            daily: false,
        }
    }

    /// Number of bars.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// True when there are no bars.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Appends a bar, which must be later than the last one; VWAP/trade-count columns are kept only
    /// while every bar has them.
    pub fn push(&mut self, b: Bar) -> Result<(), BarError> {
        if let Some(&prev) = self.ts.last() {
            if b.ts <= prev {
                return Err(BarError::Disordered { ts: b.ts, prev });
            }
        }
        let first = self.ts.is_empty();
        self.ts.push(b.ts);
        self.open.push(b.open);
        self.high.push(b.high);
        self.low.push(b.low);
        self.close.push(b.close);
        self.volume.push(b.volume);
        match (first, b.vwap, &mut self.vwap) {
            (true, Some(v), slot) => *slot = Some(vec![v]),
            (false, Some(v), Some(col)) => col.push(v),
            (_, None, slot) => *slot = None,
            (false, Some(_), None) => {}
        }
        match (first, b.trade_count, &mut self.trade_count) {
            (true, Some(v), slot) => *slot = Some(vec![v]),
            (false, Some(v), Some(col)) => col.push(v),
            (_, None, slot) => *slot = None,
            (false, Some(_), None) => {}
        }
        Ok(())
    }

    /// The bar at index `i`.
    pub fn get(&self, i: usize) -> Bar {
        Bar {
            ts: self.ts[i],
            open: self.open[i],
            high: self.high[i],
            low: self.low[i],
            close: self.close[i],
            volume: self.volume[i],
            vwap: self.vwap.as_ref().map(|v| v[i]),
            trade_count: self.trade_count.as_ref().map(|v| v[i]),
        }
    }

    /// A new series of the bars whose index passes `keep`.
    pub fn filter(&self, mut keep: impl FnMut(usize) -> bool) -> BarSeries {
        let mut out = BarSeries::with_capacity(self.len());
        out.daily = self.daily;
        let mut vw = self.vwap.as_ref().map(|_| Vec::new());
        let mut tc = self.trade_count.as_ref().map(|_| Vec::new());
        for i in 0..self.len() {
            if keep(i) {
                out.ts.push(self.ts[i]);
                out.open.push(self.open[i]);
                out.high.push(self.high[i]);
                out.low.push(self.low[i]);
                out.close.push(self.close[i]);
                out.volume.push(self.volume[i]);
                if let (Some(d), Some(s)) = (vw.as_mut(), self.vwap.as_ref()) {
                    d.push(s[i]);
                }
                if let (Some(d), Some(s)) = (tc.as_mut(), self.trade_count.as_ref()) {
                    d.push(s[i]);
                }
            }
        }
        out.vwap = vw;
        out.trade_count = tc;
        out
    }

    /// The bars with `from <= ts < to`.
    pub fn slice_time(&self, from: i64, to: i64) -> BarSeries {
        let a = self.ts.partition_point(|&t| t < from);
        let b = self.ts.partition_point(|&t| t < to).max(a);
        self.slice(a, b)
    }

    /// Makes room for `n` more bars in every column (a loader that knows the count avoids regrowing).
    pub fn reserve(&mut self, n: usize) {
        self.ts.reserve(n);
        self.open.reserve(n);
        self.high.reserve(n);
        self.low.reserve(n);
        self.close.reserve(n);
        self.volume.reserve(n);
        if let Some(v) = self.vwap.as_mut() {
            v.reserve(n);
        }
        if let Some(v) = self.trade_count.as_mut() {
            v.reserve(n);
        }
    }

    /// A copy of the bars at indices `a..b` (clamped to the series).
    pub fn slice(&self, a: usize, b: usize) -> BarSeries {
        let b = b.min(self.len());
        let a = a.min(b);
        BarSeries {
            ts: self.ts[a..b].to_vec(),
            open: self.open[a..b].to_vec(),
            high: self.high[a..b].to_vec(),
            low: self.low[a..b].to_vec(),
            close: self.close[a..b].to_vec(),
            volume: self.volume[a..b].to_vec(),
            vwap: self.vwap.as_ref().map(|v| v[a..b].to_vec()),
            trade_count: self.trade_count.as_ref().map(|v| v[a..b].to_vec()),
            daily: self.daily,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_rejects_disorder_and_repeats() {
        let mut s = BarSeries::default();
        s.push(Bar::flat(10, 1.0)).unwrap();
        assert_eq!(
            s.push(Bar::flat(10, 1.0)),
            Err(BarError::Disordered { ts: 10, prev: 10 })
        );
        assert_eq!(
            s.push(Bar::flat(5, 1.0)),
            Err(BarError::Disordered { ts: 5, prev: 10 })
        );
        s.push(Bar::flat(11, 2.0)).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.slice_time(11, 12).close, vec![2.0]);
    }

    #[test]
    fn validate_and_widen() {
        let mut b = Bar {
            ts: 0,
            open: 10.0,
            high: 9.5,
            low: 9.0,
            close: 9.8,
            volume: 1.0,
            vwap: None,
            trade_count: None,
        };
        assert!(b.validate(false).is_ok());
        assert_eq!(b.validate(true), Err(BarError::Inconsistent));
        b.widen();
        assert!(b.is_consistent());
        assert_eq!(b.high, 10.0);
        let bad = Bar::flat(0, f64::NAN);
        assert!(matches!(
            bad.validate(false),
            Err(BarError::BadPrice { field: "open", .. })
        ));
        assert!(Bar::flat(0, -1.0).validate(false).is_err());
    }

    #[test]
    fn optional_columns_kept_only_when_complete() {
        let mut s = BarSeries::default();
        let mut b = Bar::flat(1, 1.0);
        b.vwap = Some(1.0);
        s.push(b).unwrap();
        assert!(s.vwap.is_some());
        s.push(Bar::flat(2, 1.0)).unwrap();
        assert!(s.vwap.is_none());
    }
}
