//! Stock splits, applied to raw bars when they are read.

use crate::bar::BarSeries;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A split: from `effective` on, one old share is `ratio` new shares (2.0 for a 2-for-1, 0.1 for 1-for-10).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub effective: NaiveDate,
    pub ratio: f64,
}

/// Why a split is unusable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SplitError {
    #[error("split ratio {ratio} on {date} is not a finite positive number: write it as 2 or 2:1 for a 2-for-1")]
    BadRatio { date: NaiveDate, ratio: f64 },
}

impl Split {
    /// Checks the ratio.
    pub fn validate(&self) -> Result<(), SplitError> {
        if self.ratio.is_finite() && self.ratio > 0.0 {
            Ok(())
        } else {
            Err(SplitError::BadRatio {
                date: self.effective,
                ratio: self.ratio,
            })
        }
    }
}

/// Back-adjusts raw bars in place: every bar that starts before a split's effective instant has its
/// prices divided and its volume multiplied by that split's ratio. `effective_ts(date)` gives the
/// instant a split takes effect (the session open of its date, from the calendar).
pub fn apply_splits(
    series: &mut BarSeries,
    splits: &[Split],
    effective_ts: impl Fn(NaiveDate) -> i64,
) {
    for s in splits {
        let cut = effective_ts(s.effective);
        let n = series.ts.partition_point(|&t| t < cut);
        let r = s.ratio;
        for i in 0..n {
            series.open[i] /= r;
            series.high[i] /= r;
            series.low[i] /= r;
            series.close[i] /= r;
            series.volume[i] *= r;
        }
        if let Some(v) = series.vwap.as_mut() {
            for x in &mut v[..n] {
                *x /= r;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bar::Bar;

    #[test]
    fn adjusts_bars_before_the_effective_instant_only() {
        let mut s = BarSeries::default();
        for (t, p) in [(10, 100.0), (20, 102.0), (30, 51.0)] {
            s.push(Bar {
                volume: 10.0,
                ..Bar::flat(t, p)
            })
            .unwrap();
        }
        let d = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        apply_splits(
            &mut s,
            &[Split {
                effective: d,
                ratio: 2.0,
            }],
            |_| 30,
        );
        assert_eq!(s.close, vec![50.0, 51.0, 51.0]);
        assert_eq!(s.volume, vec![20.0, 20.0, 10.0]);
        assert!(Split {
            effective: d,
            ratio: 0.0
        }
        .validate()
        .is_err());
    }
}
