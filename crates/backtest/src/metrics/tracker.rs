//! The per-bar tracker: what every metric needs, gathered bar by bar on the engine's hot path.

use super::calmar::{calmar, drawdown_noise_floor};
use super::daily::DailyReturns;
use super::{
    cagr::cagr, holding::average_holding_days, profit_factor::profit_factor, sharpe::sharpe,
    sortino::sortino, volatility::volatility_pct, win_rate::win_rate_pct,
};
use super::{Metrics, RunTotals, TradeStats, DAYS_PER_MONTH};
use vectura_core::time::{year_month_of_day, DAY};

/// The per-bar tracker: the original's metric state (§2.9) and the time-weighted index.
///
/// Drawdowns are tracked per epoch (the bars between two new peaks): within an epoch the peak is fixed,
/// so the largest `peak − eq` and `(peak − eq)/peak × 100` of the epoch are those of its lowest equity
/// (IEEE rounding is monotonic). Keeping the epoch's minimum gives the original's per-bar maxima bit for
/// bit, without a division per bar.
#[derive(Debug, Clone)]
pub struct Tracker {
    /// Highest recorded equity (deposits included), starting at the start capital.
    pub peak: f64,
    min_since_peak: f64,
    max_dd_dollar: f64,
    max_dd_pct: f64,
    need_open: bool,
    open_since: i64,
    longest_dd_days: i64,
    /// Σ (equity − cash) / equity over recorded bars: in bar order (exact mode), or in lanes (fast mode).
    sum_ratio: f64,
    sum_lanes: [f64; 4],
    exact: bool,
    cur_ym: i64,
    cur_eq: f64,
    prev_eq: f64,
    best_month: f64,
    worst_month: f64,
    n_months: u32,
    // Time-weighted index: twr = k × equity between deposits. Before the first money (a start capital
    // of 0) there is no sub-period: `funded` is false and the index waits at 1.
    funded: bool,
    twr_k: f64,
    twr: f64,
    twr_peak: f64,
    twr_min: f64,
    twr_max_dd: f64,
    last_eq: f64,
    // Day boundaries: the UTC day (months) and the New York date (daily returns) of the last bar.
    utc_day: i64,
    ny_day: i64,
    next_boundary: i64,
    day_ref: f64,
    daily: DailyReturns,
    // Deposits since the last day closed, in the window before, and in all: what bounds the rounding.
    flows_window: u32,
    flows_prev_window: u32,
    flows: u64,
    bars_in_market: u64,
    bars: u64,
}

/// Bars per block of the quiet-bar kernel.
const BLOCK: usize = 64;

/// New York dates: 4 h west of UTC puts 04:00–20:00 ET of both EST and EDT on one day.
const NY_SHIFT: i64 = 4 * 3600;

/// What a run of quiet bars needs besides the tracker: fixed cash and holdings, the band, the next event.
#[derive(Debug, Clone, Copy)]
pub struct Span<'a> {
    pub cash: f64,
    /// Shares of each open lot in lot order (exact mode sums their values in this order).
    pub lots: &'a [f64],
    /// Total shares (fast mode: equity = cash + total × price).
    pub total: f64,
    pub lo: f64,
    pub hi: f64,
    /// The first instant at which something else is due (a deposit).
    pub bound: i64,
}

impl Tracker {
    /// A tracker for a run starting with `start` dollars whose start date is the UTC day `start_day`.
    /// `exact`: sum the invested ratio in bar order, as the original (vectura-v1).
    pub fn new(start: f64, start_day: i64, exact: bool) -> Tracker {
        Tracker {
            peak: start,
            min_since_peak: f64::INFINITY,
            max_dd_dollar: 0.0,
            max_dd_pct: 0.0,
            need_open: true,
            open_since: 0,
            longest_dd_days: 0,
            sum_ratio: 0.0,
            sum_lanes: [0.0; 4],
            exact,
            // The original's month map starts with {month(startDate): start}.
            cur_ym: year_month_of_day(start_day),
            cur_eq: start,
            prev_eq: start,
            best_month: f64::NEG_INFINITY,
            worst_month: f64::INFINITY,
            n_months: 0,
            funded: start > 0.0,
            twr_k: if start > 0.0 { 1.0 / start } else { 0.0 },
            twr: 1.0,
            twr_peak: 1.0,
            twr_min: f64::INFINITY,
            twr_max_dd: 0.0,
            last_eq: start,
            utc_day: i64::MIN,
            ny_day: i64::MIN,
            next_boundary: i64::MIN,
            day_ref: 1.0,
            daily: DailyReturns::default(),
            flows_window: 0,
            flows_prev_window: 0,
            flows: 0,
            bars_in_market: 0,
            bars: 0,
        }
    }

    /// A deposit credited before the tick of the bar at `ts`: the index continues from the new base, so
    /// deposits are not returns. The first money of a run that started with none starts the first
    /// sub-period (the index is 1 there; the days before it have no return).
    #[inline]
    pub fn flow(&mut self, ts: i64, amount: f64) {
        let base = self.last_eq + amount;
        self.last_eq = base;
        if !self.funded {
            if base > 0.0 {
                self.fund(ts, base);
            }
            return;
        }
        self.twr_k = if base > 0.0 { self.twr / base } else { 0.0 };
        self.flows_window = self.flows_window.saturating_add(1);
        self.flows += 1;
    }

    /// Starts the time-weighted index at 1 on the first money, `base` dollars, at `ts`.
    #[cold]
    fn fund(&mut self, ts: i64, base: f64) {
        // The day that ended before this bar had no money: close it first, uncounted.
        if ts >= self.next_boundary {
            self.boundary(ts);
        }
        self.funded = true;
        self.twr_k = 1.0 / base;
        self.twr = 1.0;
        self.twr_peak = 1.0;
        self.twr_min = f64::INFINITY;
        self.twr_max_dd = 0.0;
        self.day_ref = 1.0;
        self.daily = DailyReturns::default();
        self.flows_window = 0;
        self.flows_prev_window = 0;
    }

    /// Closes the month and the day the previous bar belonged to when `ts` starts new ones.
    #[cold]
    fn boundary(&mut self, ts: i64) {
        let ud = ts.div_euclid(DAY);
        let nd = (ts - NY_SHIFT).div_euclid(DAY);
        if ud != self.utc_day {
            let ym = year_month_of_day(ud);
            if ym != self.cur_ym {
                self.close_month();
                self.cur_ym = ym;
            }
            self.utc_day = ud;
        }
        if nd != self.ny_day {
            if self.ny_day != i64::MIN {
                self.end_day();
            }
            self.ny_day = nd;
        }
        self.next_boundary = ((ud + 1) * DAY).min((nd + 1) * DAY + NY_SHIFT);
    }

    #[inline]
    fn finish_epoch(&mut self) {
        if self.min_since_peak < f64::INFINITY {
            let dd = self.peak - self.min_since_peak;
            let ddp = if self.peak != 0.0 {
                dd / self.peak * 100.0
            } else {
                0.0
            };
            if dd > self.max_dd_dollar {
                self.max_dd_dollar = dd;
            }
            if ddp > self.max_dd_pct {
                self.max_dd_pct = ddp;
            }
        }
    }

    #[cold]
    fn new_peak(&mut self, ts: i64, eq: f64) {
        self.finish_epoch();
        if !self.need_open {
            self.longest_dd_days = self.longest_dd_days.max(ceil_days(ts - self.open_since));
        }
        self.peak = eq;
        self.min_since_peak = f64::INFINITY;
        // The next bar at or below this peak opens a drawdown period.
        self.need_open = true;
    }

    #[cold]
    fn new_twr_peak(&mut self, twr: f64) {
        self.finish_twr_epoch();
        self.twr_peak = twr;
        self.twr_min = f64::INFINITY;
    }

    fn finish_twr_epoch(&mut self) {
        if self.twr_min < f64::INFINITY && self.twr_peak > 0.0 {
            let dd = 1.0 - self.twr_min / self.twr_peak;
            if dd > self.twr_max_dd {
                self.twr_max_dd = dd;
            }
        }
    }

    /// Records one bar's post-trade equity and cash (§2.4 step 4).
    #[inline]
    pub fn push(&mut self, ts: i64, eq: f64, cash: f64) {
        self.bars += 1;
        self.bars_in_market += (eq != cash) as u64;
        if ts >= self.next_boundary {
            self.boundary(ts);
        }
        // The original records only finite, non-negative equity.
        if !(eq.is_finite() && eq >= 0.0) {
            return;
        }
        if eq > 0.0 {
            self.sum_ratio += (eq - cash) / eq;
        }
        self.record(ts, eq);
    }

    /// The peak, drawdown and time-weighted state after a bar of finite, non-negative equity `eq`:
    /// the step [`Tracker::push`] and the quiet-bar path share.
    #[inline(always)]
    fn record(&mut self, ts: i64, eq: f64) {
        if eq > self.peak {
            self.new_peak(ts, eq);
        } else {
            // Equity equal to the peak opens a drawdown period too (the original's quirk).
            self.min_since_peak = self.min_since_peak.min(eq);
            if self.need_open {
                self.open_since = ts;
                self.need_open = false;
            }
        }
        self.cur_eq = eq;
        self.last_eq = eq;
        let twr = self.twr_k * eq;
        self.twr = twr;
        if twr > self.twr_peak {
            self.new_twr_peak(twr);
        } else {
            self.twr_min = self.twr_min.min(twr);
        }
    }

    /// Records bars from `from` on while they stay quiet (close strictly inside the band, or low and
    /// high with `TOUCH`), before `sp.bound` and inside the current day: nothing trades on them, so each
    /// equity is cash plus the fixed holdings at the close. The same arithmetic as [`Tracker::push`], bar
    /// by bar. Returns the first bar not recorded and the highest equity seen.
    ///
    /// On x86-64 with AVX2, bars go in blocks through [`crate::kernel`]: one fused SIMD pass per 8 bars
    /// over prices only, with the ordered ratio sum as the only chain. A block that makes a new peak is
    /// replayed bar by bar.
    pub fn quiet_span<const EXACT: bool, const TOUCH: bool>(
        &mut self,
        ts: &[i64],
        close: &[f64],
        low: &[f64],
        high: &[f64],
        from: usize,
        sp: &Span,
    ) -> (usize, f64) {
        let n = ts.len().min(close.len()).min(low.len()).min(high.len());
        let mut max_eq = f64::NEG_INFINITY;
        let mut i = from;
        let mut eqs = [0.0f64; BLOCK];
        loop {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    loop {
                        // Timestamps are sorted: one look at each block's last stamp decides whether a
                        // day boundary or a deposit falls inside it (then a search of that block finds
                        // where), so the scan otherwise reads prices only.
                        let ahead = i + crate::kernel::PREFETCH_AHEAD;
                        crate::kernel::prefetch_block(ts, ahead);
                        crate::kernel::prefetch_block(close, ahead);
                        if TOUCH {
                            crate::kernel::prefetch_block(low, ahead);
                            crate::kernel::prefetch_block(high, ahead);
                        }
                        let bound = sp.bound.min(self.next_boundary);
                        let mut max = (n - i).min(BLOCK);
                        if max > 0 && ts[i + max - 1] >= bound {
                            max = ts[i..i + max].partition_point(|&t| t < bound);
                        }
                        if max < 8 {
                            break;
                        }
                        let input = crate::kernel::BlockIn {
                            cash: sp.cash,
                            lots: sp.lots,
                            total: sp.total,
                            lo: sp.lo,
                            hi: sp.hi,
                            peak: self.peak,
                            twr_k: self.twr_k,
                            twr_peak: self.twr_peak,
                            sum: self.sum_ratio,
                        };
                        let (l, h): (&[f64], &[f64]) = if TOUCH {
                            (&low[i..], &high[i..])
                        } else {
                            (&[], &[])
                        };
                        // SAFETY: AVX2 is present (checked above) and every slice holds at least `max` bars.
                        let out = unsafe {
                            crate::kernel::block_avx2::<EXACT, TOUCH>(
                                &close[i..],
                                l,
                                h,
                                max,
                                &input,
                                &mut eqs,
                            )
                        };
                        let m = out.bars;
                        if m == 0 {
                            break;
                        }
                        if out.clean {
                            if EXACT {
                                self.sum_ratio = out.sum;
                            } else {
                                for (a, b) in self.sum_lanes.iter_mut().zip(out.lanes) {
                                    *a += b;
                                }
                            }
                            if self.need_open {
                                self.open_since = ts[i];
                                self.need_open = false;
                            }
                            self.min_since_peak = self.min_since_peak.min(out.lo);
                            self.twr_min = self.twr_min.min(self.twr_k * out.lo);
                            self.bars += m as u64;
                            self.bars_in_market += out.in_market;
                            let last = mark::<EXACT>(close[i + m - 1], sp);
                            self.cur_eq = last;
                            self.last_eq = last;
                            self.twr = self.twr_k * last;
                            max_eq = max_eq.max(out.hi);
                            i += m;
                        } else {
                            let (j, mx) =
                                self.quiet_bars::<EXACT>(ts, close, i, i + m, sp, Some(&eqs[..m]));
                            max_eq = max_eq.max(mx);
                            if j < i + m {
                                return (j, max_eq);
                            }
                            i = j;
                        }
                        if m < max / 8 * 8 {
                            break;
                        }
                    }
                }
            }
            // A few bars one at a time (across a day boundary, or where a block did not fit), up to the
            // first bar that is not quiet or has a deposit due; then blocks again.
            let start = i;
            while i < n && i < start + 8 && ts[i] < sp.bound {
                let quiet = if TOUCH {
                    low[i] > sp.lo && high[i] < sp.hi
                } else {
                    close[i] > sp.lo && close[i] < sp.hi
                };
                if !quiet {
                    return (i, max_eq);
                }
                let (j, mx) = self.quiet_bars::<EXACT>(ts, close, i, i + 1, sp, None);
                max_eq = max_eq.max(mx);
                if j == i {
                    return (i, max_eq);
                }
                i = j;
            }
            if i == start || i >= n {
                return (i, max_eq);
            }
        }
    }

    /// The per-bar path over quiet bars `[from, to)` (already known quiet and before the bound).
    /// `pre`: the bars' equities when the kernel already computed them.
    fn quiet_bars<const EXACT: bool>(
        &mut self,
        ts: &[i64],
        close: &[f64],
        from: usize,
        to: usize,
        sp: &Span,
        pre: Option<&[f64]>,
    ) -> (usize, f64) {
        let cash = sp.cash;
        let mut max_eq = f64::NEG_INFINITY;
        for i in from..to {
            if ts[i] >= self.next_boundary {
                self.boundary(ts[i]);
            }
            let e = match pre {
                Some(p) => p[i - from],
                None => mark::<EXACT>(close[i], sp),
            };
            if !(e.is_finite() && e >= 0.0) {
                return (i, max_eq);
            }
            max_eq = max_eq.max(e);
            self.bars += 1;
            self.bars_in_market += (e != cash) as u64;
            if e > 0.0 {
                let r = (e - cash) / e;
                if EXACT {
                    self.sum_ratio += r;
                } else {
                    self.sum_lanes[i & 3] += r;
                }
            }
            self.record(ts[i], e);
        }
        (to, max_eq)
    }

    fn end_day(&mut self) {
        if self.funded && self.day_ref > 0.0 {
            // Deposits credited on the bar that opened this day came before the last day closed: the
            // day's index moves with those of both windows.
            let flows = self.flows_window.saturating_add(self.flows_prev_window);
            self.daily.push(self.twr / self.day_ref - 1.0, flows);
        }
        self.flows_prev_window = self.flows_window;
        self.flows_window = 0;
        self.day_ref = self.twr;
    }

    fn close_month(&mut self) {
        if self.prev_eq > 0.0 {
            let r = (self.cur_eq - self.prev_eq) / self.prev_eq * 100.0;
            self.best_month = self.best_month.max(r);
            self.worst_month = self.worst_month.min(r);
            self.n_months += 1;
        }
        self.prev_eq = self.cur_eq;
    }

    /// The equity of the last recorded bar.
    #[inline]
    pub fn last_equity(&self) -> f64 {
        self.last_eq
    }

    /// The current time-weighted index (1.0 at the start).
    pub fn twr(&self) -> f64 {
        self.twr
    }

    /// Computes every metric at the end of the run.
    pub fn finish(mut self, t: &RunTotals, stats: &TradeStats) -> Metrics {
        if self.bars > 0 {
            self.close_month();
            if self.ny_day != i64::MIN {
                self.end_day();
            }
        }
        self.finish_epoch();
        self.finish_twr_epoch();
        if !self.need_open {
            self.longest_dd_days = self
                .longest_dd_days
                .max(ceil_days(t.end_midnight - self.open_since));
        }
        if !self.exact {
            let l = self.sum_lanes;
            self.sum_ratio += (l[0] + l[1]) + (l[2] + l[3]);
        }
        let total_return = t.final_equity - t.invested;
        let total_return_pct = if t.invested > 0.0 {
            t.final_equity / t.invested * 100.0 - 100.0
        } else {
            0.0
        };
        let months = t.inclusive_days as f64 / DAYS_PER_MONTH;
        let (best, worst) = if months < 1.0 || self.n_months == 0 {
            (total_return_pct, total_return_pct)
        } else {
            (self.best_month, self.worst_month)
        };
        let n = self.bars as f64;
        let avg_invested = if self.bars > 0 {
            self.sum_ratio / n * 100.0
        } else {
            0.0
        };
        let bh = t.buy_hold_final;
        if !self.funded {
            // No money ever: no sub-period, the index stays at 1.
            self.twr = 1.0;
            self.twr_max_dd = 0.0;
        }
        let cagr = cagr(self.twr, t.span_days);
        let dd_floor = drawdown_noise_floor(self.flows);
        let twr_max_dd = if self.twr_max_dd > dd_floor {
            self.twr_max_dd
        } else {
            0.0
        };
        Metrics {
            total_return,
            total_return_pct,
            average_invested_capital_pct: avg_invested,
            maximum_equity: self.peak,
            maximum_drawdown_pct: self.max_dd_pct,
            maximum_drawdown_dollar: self.max_dd_dollar,
            longest_drawdown_days: self.longest_dd_days,
            total_trades: t.trades,
            average_trades_per_month: if months > 0.0 {
                t.trades as f64 / months
            } else {
                0.0
            },
            best_month_return_pct: best,
            worst_month_return_pct: worst,
            return_max_drawdown_ratio: if self.max_dd_pct != 0.0 {
                total_return_pct / self.max_dd_pct.abs()
            } else {
                0.0
            },
            buy_hold_final_equity: bh,
            buy_hold_dollar_difference: t.final_equity - bh,
            buy_hold_percentage_difference: if bh > 0.0 {
                (t.final_equity - bh) / bh * 100.0
            } else {
                0.0
            },
            time_weighted_return_pct: (self.twr - 1.0) * 100.0,
            cagr_pct: cagr.map(|g| g * 100.0),
            volatility_pct: volatility_pct(&self.daily),
            sharpe: sharpe(&self.daily),
            sortino: sortino(&self.daily),
            calmar: cagr.and_then(|g| calmar(g, twr_max_dd, dd_floor)),
            time_weighted_max_drawdown_pct: twr_max_dd * 100.0,
            exposure_pct: if self.bars > 0 {
                self.bars_in_market as f64 / n * 100.0
            } else {
                0.0
            },
            win_rate_pct: win_rate_pct(stats),
            profit_factor: profit_factor(stats),
            average_holding_days: average_holding_days(stats),
            closed_trades: stats.closed,
        }
    }
}

/// Equity at `p` with the span's fixed holdings, in the engine's arithmetic.
#[inline(always)]
fn mark<const EXACT: bool>(p: f64, sp: &Span) -> f64 {
    if EXACT {
        let mut s = 0.0;
        for &sh in sp.lots {
            s += p * sh;
        }
        sp.cash + s
    } else {
        sp.cash + sp.total * p
    }
}

/// The number of leading values below `bound` in sorted `ts`, searching outward from the front so that
/// a nearby answer touches only nearby memory.
#[inline]
pub fn gallop(ts: &[i64], bound: i64) -> usize {
    let n = ts.len();
    let mut hi = 1usize;
    while hi < n && ts[hi] < bound {
        hi *= 2;
    }
    let lo = hi / 2;
    let hi = hi.min(n);
    lo + ts[lo..hi].partition_point(|&t| t < bound)
}

/// `ceil(seconds / day)`, the original's drawdown-duration rounding.
#[inline]
pub fn ceil_days(secs: i64) -> i64 {
    (secs as f64 / DAY as f64).ceil() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(final_equity: f64, invested: f64) -> RunTotals {
        RunTotals {
            start_capital: 100.0,
            final_equity,
            invested,
            trades: 0,
            inclusive_days: 60,
            end_midnight: 59 * DAY,
            span_days: 59.0,
            buy_hold_final: 100.0,
        }
    }

    #[test]
    fn gallop_finds_the_partition_point() {
        let ts: Vec<i64> = (0..1000).map(|i| i * 2).collect();
        for bound in [-5, 0, 1, 2, 3, 500, 1997, 1998, 1999, 5000] {
            assert_eq!(
                gallop(&ts, bound),
                ts.partition_point(|&t| t < bound),
                "bound {bound}"
            );
        }
        assert_eq!(gallop(&[], 3), 0);
    }

    #[test]
    fn drawdown_peak_and_periods_follow_the_original() {
        let mut t = Tracker::new(100.0, 0, true);
        t.push(0, 100.0, 100.0); // equal to the peak: opens a period
        t.push(DAY, 90.0, 90.0);
        t.push(3 * DAY + 1, 120.0, 120.0); // new peak closes it: ceil(3 days + 1 s) = 4
        t.push(4 * DAY, 60.0, 60.0);
        let m = t.finish(&totals(60.0, 100.0), &TradeStats::default());
        assert_eq!(m.maximum_equity, 120.0);
        assert_eq!(m.maximum_drawdown_dollar, 60.0);
        assert_eq!(m.maximum_drawdown_pct, 50.0);
        assert_eq!(
            m.longest_drawdown_days, 55,
            "open period ends at the end date's midnight"
        );
        assert_eq!(m.total_return_pct, -40.0);
        assert_eq!(m.return_max_drawdown_ratio, -0.8);
    }

    #[test]
    fn deposits_are_not_returns_in_the_time_weighted_index() {
        let mut t = Tracker::new(100.0, 0, true);
        t.push(0, 100.0, 0.0);
        t.push(DAY, 110.0, 0.0); // +10 %
        t.flow(2 * DAY, 890.0); // deposit: 1000
        t.push(2 * DAY, 1000.0, 0.0);
        t.push(3 * DAY, 1100.0, 0.0); // +10 %
        let m = t.finish(&totals(1100.0, 990.0), &TradeStats::default());
        assert!(
            (m.time_weighted_return_pct - 21.0).abs() < 1e-9,
            "{}",
            m.time_weighted_return_pct
        );
        assert!(
            m.maximum_equity == 1100.0,
            "the original's peak counts the deposit"
        );
        assert_eq!(m.time_weighted_max_drawdown_pct, 0.0);
    }

    #[test]
    fn with_no_start_capital_the_index_starts_at_the_first_deposit() {
        // Two days without money, 1000 deposited on day 2, +1 % on day 3.
        let h = 15 * 3600;
        let mut t = Tracker::new(0.0, 0, false);
        t.push(h, 0.0, 0.0);
        t.push(DAY + h, 0.0, 0.0);
        t.flow(2 * DAY + h, 1000.0);
        t.push(2 * DAY + h, 1000.0, 0.0);
        t.push(3 * DAY + h, 1010.0, 0.0);
        let m = t.finish(&totals(1010.0, 1000.0), &TradeStats::default());
        assert!(
            (m.time_weighted_return_pct - 1.0).abs() < 1e-12,
            "{}",
            m.time_weighted_return_pct
        );
        assert_eq!(m.time_weighted_max_drawdown_pct, 0.0);
        // Daily returns are day 2 (0, from the deposit) and day 3 (+1 %); the days without money have
        // none: mean 0.005, sample sd 0.005·√2.
        let want = 0.005 / (0.005 * 2f64.sqrt()) * 252f64.sqrt();
        let got = m.sharpe.unwrap();
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        // Never any money: no sub-period, no return.
        let mut t = Tracker::new(0.0, 0, false);
        t.push(h, 0.0, 0.0);
        t.push(DAY + h, 0.0, 0.0);
        let m = t.finish(&totals(0.0, 0.0), &TradeStats::default());
        assert_eq!(m.time_weighted_return_pct, 0.0);
        assert_eq!(m.sharpe, None);
        assert_eq!(m.time_weighted_max_drawdown_pct, 0.0);
    }

    #[test]
    fn monthly_returns_chain_from_the_start_capital() {
        let jan = 0; // 1970-01
        let feb = 31 * DAY;
        let mut t = Tracker::new(100.0, 0, true);
        t.push(jan, 110.0, 110.0);
        t.push(feb, 99.0, 99.0);
        let m = t.finish(&totals(99.0, 100.0), &TradeStats::default());
        assert!((m.best_month_return_pct - 10.0).abs() < 1e-12);
        assert!((m.worst_month_return_pct + 10.0).abs() < 1e-12);
    }
}
