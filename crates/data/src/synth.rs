//! Seeded synthetic minute bars, for benchmarks and scale tests that need more dense bars than the
//! repository's real fixtures hold. The same seed gives the same bars on every machine.

use chrono::{Datelike, NaiveDate};
use vectura_core::{Bar, BarSeries};

/// Regular-session minutes of a full day.
const MINUTES: i64 = 390;

/// SplitMix64: a small, fast generator with a fixed output for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

/// `years` × 252 consecutive weekdays from 2015-01-02 × 390 regular-session minutes (09:30 New York
/// on), as the peers' generator shapes them: a zero-drift log random walk from 100 (σ 0.0005 a
/// minute, plus 0.004 overnight), closes in cents, open = the previous close (the first bar of a
/// day gaps by half the overnight move), high and low widened by a half-normal wiggle, volume 1000.
/// Holidays are not skipped: the bars are a workload, not a market.
pub fn seeded_minute_bars(years: u32, seed: u64) -> BarSeries {
    let cents = |x: f64| (x * 100.0).round() / 100.0;
    let mut rng = Rng(seed);
    let sessions = 252 * years as usize;
    let mut s = BarSeries::with_capacity(sessions * MINUTES as usize);
    let mut day = NaiveDate::from_ymd_opt(2015, 1, 2).expect("a date");
    let mut logp = 100f64.ln();
    let mut prev = 100.0;
    let mut k = 0;
    while k < sessions {
        if day.weekday().number_from_monday() <= 5 {
            let open_ts = vectura_core::calendar::session_open_ts(day);
            for m in 0..MINUTES {
                let mut r = rng.normal() * 0.0005;
                if m == 0 {
                    r += rng.normal() * 0.004;
                }
                logp += r;
                let close = cents(logp.exp());
                let open = if m == 0 && k > 0 {
                    cents(prev * (r * 0.5).exp())
                } else {
                    prev
                };
                let high = cents(open.max(close) * (1.0 + (rng.normal() * 0.00025).abs()));
                let low = cents(open.min(close) * (1.0 - (rng.normal() * 0.00025).abs()));
                s.push(Bar {
                    ts: open_ts + 60 * m,
                    open,
                    high,
                    low,
                    close,
                    volume: 1000.0,
                    vwap: None,
                    trade_count: None,
                })
                .expect("minutes of later days come later");
                prev = close;
            }
            k += 1;
        }
        day = day.succ_opt().expect("a next day");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use vectura_core::calendar::{ny_date, session_open_ts};

    #[test]
    fn a_year_of_weekday_minutes_repeats_for_a_seed() {
        let a = seeded_minute_bars(1, 7);
        assert_eq!(a.len(), 252 * 390);
        assert_eq!(a, seeded_minute_bars(1, 7));
        assert_ne!(a.close, seeded_minute_bars(1, 8).close);
        assert!(a.ts.windows(2).all(|w| w[0] < w[1]));
        let mut days = std::collections::BTreeSet::new();
        for i in 0..a.len() {
            let b = a.get(i);
            assert!(b.validate(true).is_ok(), "bar {i}: {b:?}");
            let d = ny_date(b.ts);
            assert!(d.weekday().number_from_monday() <= 5, "{d}");
            let minute = (b.ts - session_open_ts(d)) / 60;
            assert!(
                (0..390).contains(&minute),
                "bar {i} at minute {minute} of {d}"
            );
            assert_eq!(b.high, (b.high * 100.0).round() / 100.0, "cents");
            days.insert(d);
        }
        assert_eq!(days.len(), 252);
        assert_eq!(
            days.first(),
            Some(&NaiveDate::from_ymd_opt(2015, 1, 2).unwrap())
        );
        assert!(seeded_minute_bars(0, 1).is_empty());
    }
}
