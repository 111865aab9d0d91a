//! Down-sampled chart series: at most a fixed number of points, each the last bar of its time bucket.

use serde::{Deserialize, Serialize};

/// Price, equity, cash and drawdown sampled for charts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Unix seconds of each point (the last bar in its bucket).
    pub ts: Vec<i64>,
    pub price: Vec<f64>,
    pub equity: Vec<f64>,
    pub cash: Vec<f64>,
    /// Drawdown of raw equity from its running peak, percent.
    pub drawdown_pct: Vec<f64>,
}

/// Collects [`Series`] bar by bar.
#[derive(Debug, Clone)]
pub struct Recorder {
    t0: i64,
    width: i64,
    last_bucket: i64,
    pub series: Series,
}

impl Recorder {
    /// A recorder for bars from `first` to `last` (Unix s), keeping at most about `max_points` points.
    pub fn new(first: i64, last: i64, max_points: usize) -> Recorder {
        let span = (last - first).max(1);
        let width = (span / max_points.max(1) as i64 + 1).max(60);
        Recorder {
            t0: first,
            width,
            last_bucket: i64::MIN,
            series: Series::default(),
        }
    }

    /// Records a bar's close, post-trade equity and cash, and the running equity peak.
    #[inline]
    pub fn push(&mut self, ts: i64, price: f64, equity: f64, cash: f64, peak: f64) {
        let b = (ts - self.t0).div_euclid(self.width);
        let dd = if peak > 0.0 {
            ((peak - equity) / peak * 100.0).max(0.0)
        } else {
            0.0
        };
        let s = &mut self.series;
        if b != self.last_bucket {
            self.last_bucket = b;
            s.ts.push(ts);
            s.price.push(price);
            s.equity.push(equity);
            s.cash.push(cash);
            s.drawdown_pct.push(dd);
        } else if let Some(k) = s.ts.len().checked_sub(1) {
            s.ts[k] = ts;
            s.price[k] = price;
            s.equity[k] = equity;
            s.cash[k] = cash;
            s.drawdown_pct[k] = s.drawdown_pct[k].max(dd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn keeps_at_most_about_max_points_and_the_last_bar() {
        let mut r = Recorder::new(0, 100_000 * 60, 100);
        for i in 0..=100_000 {
            r.push(i * 60, i as f64, 1.0, 1.0, 1.0);
        }
        assert!(r.series.ts.len() <= 101, "{}", r.series.ts.len());
        assert_eq!(*r.series.ts.last().unwrap(), 100_000 * 60);
    }
}
