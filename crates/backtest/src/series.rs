//! Down-sampled chart series: a bounded number of points that still show what matters. The span is cut
//! into time buckets; each bucket keeps its first and last bar and the bars of its lowest and highest
//! price, lowest and highest equity and deepest drawdown, so no extreme disappears from a chart; and
//! every bar with a trade is kept, so each execution sits on the lines.

use serde::{Deserialize, Serialize};

/// Price, equity, cash and drawdown sampled for charts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Unix seconds of each point.
    pub ts: Vec<i64>,
    pub price: Vec<f64>,
    pub equity: Vec<f64>,
    pub cash: Vec<f64>,
    /// Drawdown of raw equity from its running peak at that bar, percent.
    pub drawdown_pct: Vec<f64>,
}

/// One recorded bar.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    ts: i64,
    price: f64,
    equity: f64,
    cash: f64,
    dd: f64,
}

/// The bars a bucket keeps: first, last, lowest and highest price and equity, deepest drawdown.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    first: Point,
    last: Point,
    lo_price: Point,
    hi_price: Point,
    lo_equity: Point,
    hi_equity: Point,
    hi_dd: Point,
}

impl Bucket {
    fn new(p: Point) -> Bucket {
        Bucket {
            first: p,
            last: p,
            lo_price: p,
            hi_price: p,
            lo_equity: p,
            hi_equity: p,
            hi_dd: p,
        }
    }

    #[inline]
    fn add(&mut self, p: Point) {
        self.last = p;
        if p.price < self.lo_price.price {
            self.lo_price = p;
        }
        if p.price > self.hi_price.price {
            self.hi_price = p;
        }
        if p.equity < self.lo_equity.equity {
            self.lo_equity = p;
        }
        if p.equity > self.hi_equity.equity {
            self.hi_equity = p;
        }
        if p.dd > self.hi_dd.dd {
            self.hi_dd = p;
        }
    }
}

/// Buckets per point budget: a bucket keeps up to 7 bars, typically 4 or fewer distinct ones.
const POINTS_PER_BUCKET: usize = 4;

/// Collects [`Series`] bar by bar.
#[derive(Debug, Clone)]
pub struct Recorder {
    t0: i64,
    width: i64,
    bucket_of: i64,
    open: Option<Bucket>,
    series: Series,
}

impl Recorder {
    /// A recorder for bars from `first` to `last` (Unix s), keeping about `max_points` points (up to
    /// 7/4 of that where extremes fall apart) plus the bars with trades.
    pub fn new(first: i64, last: i64, max_points: usize) -> Recorder {
        let span = (last - first).max(1);
        let buckets = (max_points / POINTS_PER_BUCKET).max(1) as i64;
        let width = (span / buckets + 1).max(60);
        Recorder {
            t0: first,
            width,
            bucket_of: i64::MIN,
            open: None,
            series: Series::default(),
        }
    }

    /// Records a bar's close, post-trade equity and cash, and the running equity peak; `traded`: the bar
    /// had an execution, and is kept as a point.
    #[inline]
    pub fn push(&mut self, ts: i64, price: f64, equity: f64, cash: f64, peak: f64, traded: bool) {
        let dd = if peak > 0.0 {
            ((peak - equity) / peak * 100.0).max(0.0)
        } else {
            0.0
        };
        let p = Point {
            ts,
            price,
            equity,
            cash,
            dd,
        };
        let b = (ts - self.t0).div_euclid(self.width);
        if traded {
            // The bars before it close their bucket, the trade is a point, and the bucket goes on after.
            self.flush();
            self.emit(p);
            self.bucket_of = b;
            return;
        }
        match self.open.as_mut() {
            Some(open) if b == self.bucket_of => open.add(p),
            _ => {
                self.flush();
                self.bucket_of = b;
                self.open = Some(Bucket::new(p));
            }
        }
    }

    /// The series with the last bucket closed.
    pub fn finish(mut self) -> Series {
        self.flush();
        self.series
    }

    fn flush(&mut self) {
        let Some(b) = self.open.take() else {
            return;
        };
        let mut pts = [
            b.first,
            b.lo_price,
            b.hi_price,
            b.lo_equity,
            b.hi_equity,
            b.hi_dd,
            b.last,
        ];
        pts.sort_by_key(|p| p.ts);
        let mut prev = i64::MIN;
        for p in pts {
            if p.ts != prev {
                prev = p.ts;
                self.emit(p);
            }
        }
    }

    fn emit(&mut self, p: Point) {
        let s = &mut self.series;
        s.ts.push(p.ts);
        s.price.push(p.price);
        s.equity.push(p.equity);
        s.cash.push(p.cash);
        s.drawdown_pct.push(p.dd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100 001 minute bars: a slow wave with spikes, equity that dips, trades every 7 919 bars.
    fn bar(i: i64) -> (i64, f64, f64, f64, bool) {
        let x = i as f64;
        let spike = match i % 10_007 {
            0 => 25.0,
            5_000 => -30.0,
            _ => 0.0,
        };
        let price = 100.0 + 10.0 * (x / 3_000.0).sin() + spike;
        let equity =
            1_000.0 + 50.0 * (x / 7_000.0).cos() - if i % 4_999 == 17 { 200.0 } else { 0.0 };
        (
            i * 60,
            price,
            equity,
            500.0 + (i % 3) as f64,
            i > 0 && i % 7_919 == 0,
        )
    }

    /// A recorded bar: time, price, equity, cash, drawdown %, traded.
    type Rec = (i64, f64, f64, f64, f64, bool);

    #[test]
    fn keeps_ends_executions_and_extremes_within_a_bounded_count() {
        let n = 100_000i64;
        let mut r = Recorder::new(0, n * 60, 100);
        let mut peak = f64::NEG_INFINITY;
        let mut all: Vec<Rec> = Vec::new();
        for i in 0..=n {
            let (ts, p, e, c, traded) = bar(i);
            peak = peak.max(e);
            let dd = (peak - e) / peak * 100.0;
            all.push((ts, p, e, c, dd, traded));
            r.push(ts, p, e, c, peak, traded);
        }
        let s = r.finish();
        let trades = all.iter().filter(|b| b.5).count();
        assert!(trades > 10);
        // Bounded: about 25 buckets (each trade splits one) × at most 7 bars, plus the trades; and not a
        // handful either.
        assert!(s.ts.len() <= (26 + trades) * 7 + trades, "{}", s.ts.len());
        assert!(s.ts.len() >= 50, "{}", s.ts.len());
        // Points in time order, each the very bar it names.
        assert!(s.ts.windows(2).all(|w| w[0] < w[1]));
        for k in 0..s.ts.len() {
            let b = all[(s.ts[k] / 60) as usize];
            assert_eq!(
                (s.price[k], s.equity[k], s.cash[k], s.drawdown_pct[k]),
                (b.1, b.2, b.3, b.4),
                "point {k} at {}",
                s.ts[k]
            );
        }
        assert_eq!(s.ts[0], 0, "the first bar");
        assert_eq!(*s.ts.last().unwrap(), n * 60, "the last bar");
        for b in all.iter().filter(|b| b.5) {
            assert!(s.ts.contains(&b.0), "the trade at {}", b.0);
        }
        let arg = |f: fn(&Rec) -> f64, max: bool| {
            let mut best = all[0];
            for b in &all {
                if (max && f(b) > f(&best)) || (!max && f(b) < f(&best)) {
                    best = *b;
                }
            }
            best.0
        };
        for (what, ts) in [
            ("lowest price", arg(|b| b.1, false)),
            ("highest price", arg(|b| b.1, true)),
            ("lowest equity", arg(|b| b.2, false)),
            ("highest equity", arg(|b| b.2, true)),
            ("deepest drawdown", arg(|b| b.4, true)),
        ] {
            assert!(s.ts.contains(&ts), "{what} at {ts}");
        }
        // Every spike, not only the global extremes, shows.
        for i in (0..=n).filter(|i| i % 10_007 == 0 || i % 10_007 == 5_000) {
            assert!(s.ts.contains(&(i * 60)), "spike at bar {i}");
        }
    }

    #[test]
    fn short_runs_keep_every_bar() {
        let mut r = Recorder::new(0, 9 * 60, 2000);
        for i in 0..10 {
            r.push(i * 60, i as f64, 1.0, 1.0, 1.0, i == 3);
        }
        let s = r.finish();
        assert_eq!(s.ts, (0..10).map(|i| i * 60).collect::<Vec<_>>());
    }
}
