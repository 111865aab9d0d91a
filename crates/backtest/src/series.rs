//! Down-sampled chart series: a bounded number of points that still show everything a chart can.
//!
//! The span is cut into time buckets of `bucket_seconds` (about a pixel of a full-width chart: the point
//! budget over 4). Each bucket keeps the bars of its first and last bar, its lowest and highest price,
//! lowest and highest equity and deepest drawdown (up to 7 distinct bars, in time order), so the
//! envelope of every series is the bar-by-bar envelope; and every bar with a trade is kept as a point
//! of its own, so each execution sits on the lines. Every point is a real bar, its values exactly the
//! engine's.
//!
//! The engine hands runs of quiet bars (no trade, fixed cash and holdings) over whole
//! ([`Recorder::push_quiet`]): there equity is a non-decreasing function of the close, so a bucket's
//! lowest and highest equity are the bars of its lowest and highest close, and while the run makes no
//! new equity peak its deepest drawdown is the bar of its lowest equity. One pass over the closes per
//! bucket (min and max in SIMD lanes) finds them, and equity is marked for those few bars only.

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
    /// Width of a bucket in seconds: each bucket of this many seconds from the first bar keeps its
    /// extremes (see the module documentation).
    #[serde(default)]
    pub bucket_seconds: i64,
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
        self.merge(&Bucket::new(p));
    }

    /// Takes in a later stretch of the same bucket; ties keep the earlier bar, as bar-by-bar adding does.
    #[inline]
    fn merge(&mut self, o: &Bucket) {
        self.last = o.last;
        if o.lo_price.price < self.lo_price.price {
            self.lo_price = o.lo_price;
        }
        if o.hi_price.price > self.hi_price.price {
            self.hi_price = o.hi_price;
        }
        if o.lo_equity.equity < self.lo_equity.equity {
            self.lo_equity = o.lo_equity;
        }
        if o.hi_equity.equity > self.hi_equity.equity {
            self.hi_equity = o.hi_equity;
        }
        if o.hi_dd.dd > self.hi_dd.dd {
            self.hi_dd = o.hi_dd;
        }
    }
}

/// Buckets per point budget: a bucket keeps up to 7 bars, typically 4 or fewer distinct ones.
const POINTS_PER_BUCKET: usize = 4;

/// Drawdown of `equity` from `peak`, percent (0 without a positive peak).
#[inline]
fn drawdown(peak: f64, equity: f64) -> f64 {
    if peak > 0.0 {
        ((peak - equity) / peak * 100.0).max(0.0)
    } else {
        0.0
    }
}

/// Collects [`Series`] bar by bar, or a run of quiet bars at a time.
#[derive(Debug, Clone)]
pub struct Recorder {
    t0: i64,
    width: i64,
    /// The open bucket's end (Unix s, exclusive); bars are in time order, so a bar before it is in it.
    bucket_end: i64,
    open: Option<Bucket>,
    /// Bars in the last whole bucket a quiet run spanned: where the next bucket's end is looked for
    /// first (a search over the whole run would wait on memory at every step).
    per_bucket: usize,
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
            bucket_end: i64::MIN,
            open: None,
            per_bucket: 0,
            series: Series {
                bucket_seconds: width,
                ..Series::default()
            },
        }
    }

    /// The end of the bucket holding `ts`.
    #[inline]
    fn end_of(&self, ts: i64) -> i64 {
        self.t0 + ((ts - self.t0).div_euclid(self.width) + 1) * self.width
    }

    /// Records a bar's close, post-trade equity and cash, and the running equity peak; `traded`: the bar
    /// had an execution, and is kept as a point.
    #[inline]
    pub fn push(&mut self, ts: i64, price: f64, equity: f64, cash: f64, peak: f64, traded: bool) {
        let p = Point {
            ts,
            price,
            equity,
            cash,
            dd: drawdown(peak, equity),
        };
        if traded {
            // The bars before it close their bucket, the trade is a point, and the bucket goes on after.
            self.flush();
            self.emit(p);
            self.bucket_end = self.end_of(ts);
            return;
        }
        match self.open.as_mut() {
            Some(open) if ts < self.bucket_end => open.add(p),
            _ => self.start(Bucket::new(p)),
        }
    }

    /// Records a run of quiet bars (`ts` and `close` of the same length, in time order): no trade,
    /// `cash` and the holdings fixed, `mark` the equity at a close (non-decreasing in the close, as
    /// cash plus shares held is), `peak` the running equity peak before the run. The result is the
    /// same as [`Recorder::push`] bar by bar with the running peak, but only the bars a bucket keeps
    /// are marked; a stretch that makes a new peak (or where `mark` falls with the price) goes bar by bar.
    pub fn push_quiet(
        &mut self,
        ts: &[i64],
        close: &[f64],
        cash: f64,
        peak: f64,
        mark: impl Fn(f64) -> f64,
    ) {
        let n = ts.len().min(close.len());
        let mut peak = peak;
        let mut k = 0;
        while k < n {
            if self.open.is_none() || ts[k] >= self.bucket_end {
                self.flush();
                self.bucket_end = self.end_of(ts[k]);
            }
            // The stretch of the run inside this bucket.
            let fresh = self.open.is_none();
            let end = if ts[n - 1] < self.bucket_end {
                n
            } else {
                search_from(&ts[..n], k, k + self.per_bucket, self.bucket_end)
            };
            if fresh && end < n {
                self.per_bucket = end - k;
            }
            let (lo, hi) = extremes(&close[k..end]);
            let point = |i: usize, equity: f64, peak: f64| Point {
                ts: ts[i],
                price: close[i],
                equity,
                cash,
                dd: drawdown(peak, equity),
            };
            let (e_lo, e_hi) = (mark(close[k + lo]), mark(close[k + hi]));
            if e_hi <= peak && e_lo <= e_hi {
                // No new peak: the drawdown is deepest where equity, and so the close, is lowest.
                let lo_p = point(k + lo, e_lo, peak);
                let hi_p = point(k + hi, e_hi, peak);
                let seg = Bucket {
                    first: point(k, mark(close[k]), peak),
                    last: point(end - 1, mark(close[end - 1]), peak),
                    lo_price: lo_p,
                    hi_price: hi_p,
                    lo_equity: lo_p,
                    hi_equity: hi_p,
                    hi_dd: lo_p,
                };
                self.take(seg);
            } else {
                for (i, &c) in close.iter().enumerate().take(end).skip(k) {
                    let e = mark(c);
                    if e > peak {
                        peak = e;
                    }
                    let b = Bucket::new(point(i, e, peak));
                    self.take(b);
                }
            }
            k = end;
        }
    }

    /// Merges a stretch into the open bucket, or opens the bucket with it.
    #[inline]
    fn take(&mut self, seg: Bucket) {
        match self.open.as_mut() {
            Some(open) => open.merge(&seg),
            None => self.open = Some(seg),
        }
    }

    /// Closes the open bucket and opens the one `b` starts.
    fn start(&mut self, b: Bucket) {
        self.flush();
        self.bucket_end = self.end_of(b.first.ts);
        self.open = Some(b);
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

/// The first position `p` in `k..=ts.len()` with `ts[p] >= end` (`ts` sorted, `ts[k] < end`), searched
/// outward from `guess`: the same answer as a binary search, touching only memory near the guess.
fn search_from(ts: &[i64], k: usize, guess: usize, end: i64) -> usize {
    let n = ts.len();
    let g = guess.clamp(k + 1, n);
    if ts[g - 1] < end {
        return g + crate::metrics::gallop(&ts[g..], end);
    }
    // ts[hi] >= end; step down in doubling strides to a stamp before `end` (ts[k] is one).
    let mut hi = g - 1;
    let mut step = 1;
    let lo = loop {
        if hi - k <= step {
            break k;
        }
        let c = hi - step;
        if ts[c] < end {
            break c;
        }
        hi = c;
        step *= 2;
    };
    lo + 1 + ts[lo + 1..hi].partition_point(|&t| t < end)
}

/// Bars per chunk of [`extremes`]: the chunk of an extreme is searched again for its first bar.
const CHUNK: usize = 64;

/// The positions of the first lowest and the first highest value of `x` (0 for an empty or all-NaN `x`).
fn extremes(x: &[f64]) -> (usize, usize) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut c_lo, mut c_hi) = (0, 0);
    for (c, chunk) in x.chunks(CHUNK).enumerate() {
        crate::kernel::prefetch_block(x, c * CHUNK + crate::kernel::PREFETCH_AHEAD);
        let (l, h) = min_max(chunk);
        if l < lo {
            lo = l;
            c_lo = c;
        }
        if h > hi {
            hi = h;
            c_hi = c;
        }
    }
    let find = |c: usize, v: f64| {
        let from = c * CHUNK;
        from + x
            .get(from..)
            .and_then(|s| s.iter().position(|&p| p == v))
            .unwrap_or(0)
    };
    (find(c_lo, lo), find(c_hi, hi))
}

/// Lowest and highest value of `x`, in four lanes (the compare-and-select form compiles to SIMD min/max).
#[inline]
// Four lanes indexed side by side: the shape LLVM turns into one vector min and max per four bars.
#[allow(clippy::needless_range_loop)]
fn min_max(x: &[f64]) -> (f64, f64) {
    let mut l = [f64::INFINITY; 4];
    let mut h = [f64::NEG_INFINITY; 4];
    let mut quads = x.chunks_exact(4);
    for q in &mut quads {
        for j in 0..4 {
            l[j] = if q[j] < l[j] { q[j] } else { l[j] };
            h[j] = if q[j] > h[j] { q[j] } else { h[j] };
        }
    }
    for &v in quads.remainder() {
        l[0] = if v < l[0] { v } else { l[0] };
        h[0] = if v > h[0] { v } else { h[0] };
    }
    let lo = l
        .iter()
        .fold(f64::INFINITY, |a, &b| if b < a { b } else { a });
    let hi = h
        .iter()
        .fold(f64::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    (lo, hi)
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

    /// Runs of quiet bars recorded whole give the series bar-by-bar recording gives, new peaks and
    /// bucket edges inside a run included.
    #[test]
    fn quiet_runs_match_bar_by_bar_recording() {
        let n = 50_000i64;
        let price = |i: i64| {
            let x = i as f64;
            100.0 + 0.0004 * x + 3.0 * (x / 900.0).sin() + 0.7 * (x / 37.0).cos()
        };
        for (shares, budget) in [(3.0, 100), (7.5, 2_000), (0.0, 300), (2.0, 400_000)] {
            let (cash, start) = (500.0, 800.0);
            let mark = |p: f64| cash + shares * p;
            let mut a = Recorder::new(0, (n - 1) * 60, budget);
            let mut b = Recorder::new(0, (n - 1) * 60, budget);
            let mut peak = start;
            // Runs of irregular lengths, each closed by a bar recorded alone (a trade every third).
            let mut i = 0i64;
            let mut run = 1i64;
            while i < n {
                let len = (run * 7_919 % 3_001).min(n - i);
                let ts: Vec<i64> = (i..i + len).map(|k| k * 60).collect();
                let close: Vec<f64> = (i..i + len).map(price).collect();
                a.push_quiet(&ts, &close, cash, peak, mark);
                for k in 0..len as usize {
                    let e = mark(close[k]);
                    peak = peak.max(e);
                    b.push(ts[k], close[k], e, cash, peak, false);
                }
                i += len;
                if i < n {
                    let e = mark(price(i));
                    peak = peak.max(e);
                    let traded = run % 3 == 0;
                    a.push(i * 60, price(i), e, cash, peak, traded);
                    b.push(i * 60, price(i), e, cash, peak, traded);
                    i += 1;
                }
                run += 1;
            }
            let (a, b) = (a.finish(), b.finish());
            if shares > 0.0 {
                assert_eq!(a, b, "shares {shares}, budget {budget}");
            } else {
                // Flat equity: the bars kept for it may differ, the values may not.
                assert_eq!(a.price.len(), a.ts.len());
                let lo = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
                assert_eq!(lo(&a.price), lo(&b.price));
                assert!(a.equity.iter().all(|&e| e == cash));
            }
            assert!(a.ts.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn extremes_find_the_first_lowest_and_highest() {
        let x: Vec<f64> = (0..1_000).map(|i| ((i * 37) % 101) as f64).collect();
        let (lo, hi) = extremes(&x);
        assert_eq!((x[lo], x[hi]), (0.0, 100.0));
        assert_eq!(lo, x.iter().position(|&v| v == 0.0).unwrap());
        assert_eq!(hi, x.iter().position(|&v| v == 100.0).unwrap());
        assert_eq!(extremes(&[]), (0, 0));
        assert_eq!(extremes(&[2.0, 1.0, 1.0, 3.0, 3.0]), (1, 3));
    }

    #[test]
    fn search_from_any_guess_is_the_partition_point() {
        let ts: Vec<i64> = (0..300).map(|i| i * 3 + (i / 50) * 1000).collect();
        for k in [0, 1, 7, 60, 299] {
            for end in [ts[k] + 1, ts[k] + 4, ts[k] + 200, ts[k] + 5000, i64::MAX] {
                let want = k + ts[k..].partition_point(|&t| t < end);
                for guess in [0, k, k + 1, k + 2, k + 50, k + 63, 1000] {
                    assert_eq!(
                        search_from(&ts, k, guess, end),
                        want,
                        "k {k} end {end} guess {guess}"
                    );
                }
            }
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
