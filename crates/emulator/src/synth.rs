//! Deterministic synthetic bars and the transforms the bars endpoints apply (feed, split
//! adjustment, aggregation to a timeframe).
//!
//! A minute bar depends only on the seed, the symbol, the session date and the minute, so the same
//! bar comes back whatever window or page it is asked for in.

use chrono::{Datelike, NaiveDate};
use vectura_core::calendar::Session;

/// One bar as the emulator serves it (Alpaca's fields: `t` as Unix seconds here).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmuBar {
    /// Bar start, Unix seconds UTC.
    pub t: i64,
    pub o: f64,
    pub h: f64,
    pub l: f64,
    pub c: f64,
    /// Volume (shares).
    pub v: u64,
    /// Trade count.
    pub n: u64,
    /// Volume-weighted average price.
    pub vw: f64,
}

/// The source feed of the bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// All US exchanges (the full volume).
    Sip,
    /// The Investors Exchange: the same prices, a small share of the volume and trades.
    Iex,
}

/// Bar aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeframe {
    /// `[1-59]Min`: buckets aligned to multiples of N minutes since the Unix epoch.
    Minutes(u32),
    /// `[1-23]Hour`: buckets aligned to multiples of N hours since the Unix epoch.
    Hours(u32),
    /// `1Day`: the regular session, stamped at midnight New York time, as Alpaca stamps daily bars.
    Day,
}

impl Timeframe {
    /// Parses Alpaca's timeframe text (`1Min`, `5T`, `1Hour`, `2H`, `1Day`, `1D`).
    pub fn parse(s: &str) -> Option<Timeframe> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (num, unit) = s.split_at(digits);
        let n: u32 = num.parse().ok()?;
        match unit {
            "Min" | "T" if (1..=59).contains(&n) => Some(Timeframe::Minutes(n)),
            "Hour" | "H" if (1..=23).contains(&n) => Some(Timeframe::Hours(n)),
            "Day" | "D" if n == 1 => Some(Timeframe::Day),
            _ => None,
        }
    }

    /// The letter used inside page tokens.
    pub(crate) fn token_letter(self) -> &'static str {
        match self {
            Timeframe::Minutes(_) => "M",
            Timeframe::Hours(_) => "H",
            Timeframe::Day => "D",
        }
    }
}

const HOUR: i64 = 3_600;

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash_str(seed: u64, s: &str) -> u64 {
    let mut h = 0xCBF2_9CE4_8422_2325u64 ^ mix(seed);
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix(h)
}

/// A uniform number in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A small deterministic generator (splitmix64), also used for fault probabilities.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(pub u64);

impl SplitMix {
    pub(crate) fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        unit(mix(self.0))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A random (version 4) UUID, deterministic for the seed.
    pub(crate) fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }
}

fn round_price(p: f64) -> f64 {
    if p >= 1.0 {
        (p * 100.0).round() / 100.0
    } else {
        ((p * 10_000.0).round() / 10_000.0).max(0.0001)
    }
}

/// Raw SIP minute bars of `symbol` on `session`'s date: every regular-session minute (early closes
/// respected) and, with `extended`, about a third of the pre-market (04:00) and after-hours (to
/// 20:00) minutes. Prices are the split-adjusted path; [`to_raw`] turns them into raw prices.
pub(crate) fn synthetic_day(
    seed: u64,
    symbol: &str,
    session: &Session,
    extended: bool,
) -> Vec<EmuBar> {
    let sym = hash_str(seed, symbol);
    let base = 20.0 + unit(mix(sym ^ 1)) * 380.0;
    let base_vol = 2_000.0 + unit(mix(sym ^ 2)) * 18_000.0;
    let p1 = unit(mix(sym ^ 3)) * std::f64::consts::TAU;
    let p2 = unit(mix(sym ^ 4)) * std::f64::consts::TAU;
    let k = f64::from(session.date.num_days_from_ce());
    let day =
        mix(sym ^ (session.date.num_days_from_ce() as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let drift = 0.25 * (std::f64::consts::TAU * k / 365.25 + p1).sin()
        + 0.08 * (std::f64::consts::TAU * k / 41.0 + p2).sin()
        + 0.03 * (unit(mix(day ^ 5)) - 0.5);
    let mut price = base * drift.exp();

    let start = session.pre_open();
    let end = session.post_close();
    let regular_len = ((session.close - session.open) / 60).max(1) as f64;
    let mut out = Vec::with_capacity(if extended { 720 } else { 400 });
    let mut i: u64 = 0;
    let mut t = start;
    while t < end {
        i += 1;
        let h = mix(day.wrapping_add(i));
        let regular = t >= session.open && t < session.close;
        let sigma = if regular { 0.0006 } else { 0.0003 };
        let z = (unit(h) + unit(mix(h ^ 11)) + unit(mix(h ^ 12)) - 1.5) * 2.0;
        let open = price;
        price *= (sigma * z).exp();
        let close = price;
        let present = regular || (extended && unit(mix(h ^ 13)) < 0.35);
        if present {
            let o = round_price(open);
            let c = round_price(close);
            let hi = round_price(open.max(close) * (1.0 + sigma * 0.5 * unit(mix(h ^ 14))))
                .max(o)
                .max(c);
            let lo = round_price(open.min(close) * (1.0 - sigma * 0.5 * unit(mix(h ^ 15))))
                .min(o)
                .min(c);
            let vol = if regular {
                let m = ((t - session.open) / 60) as f64;
                let shape = 1.0 + 2.0 * (-m / 30.0).exp() + 1.5 * (-(regular_len - m) / 30.0).exp();
                base_vol * shape * (0.5 + unit(mix(h ^ 16)))
            } else {
                base_vol * 0.05 * (0.5 + unit(mix(h ^ 16)))
            };
            let v = (vol.round() as u64).max(1);
            let n = ((vol / (20.0 + 80.0 * unit(mix(h ^ 17)))).round() as u64).clamp(1, v);
            let vw = (((o + hi + lo + c) / 4.0 * 10_000.0).round() / 10_000.0).clamp(lo, hi);
            out.push(EmuBar {
                t,
                o,
                h: hi,
                l: lo,
                c,
                v,
                n,
                vw,
            });
        }
        t += 60;
    }
    out
}

/// The product of the ratios of the splits that take effect after `date` (1 when none).
pub(crate) fn split_factor_after(splits: &[(NaiveDate, f64)], date: NaiveDate) -> f64 {
    splits
        .iter()
        .filter(|(d, r)| *d > date && r.is_finite() && *r > 0.0)
        .map(|(_, r)| *r)
        .product()
}

/// Turns split-adjusted synthetic bars into raw ones: prices times `factor`, volume as generated.
pub(crate) fn to_raw(bars: &mut [EmuBar], factor: f64) {
    if factor == 1.0 {
        return;
    }
    for b in bars {
        b.o = round_price(b.o * factor);
        b.h = round_price(b.h * factor);
        b.l = round_price(b.l * factor);
        b.c = round_price(b.c * factor);
        b.vw = round_price(b.vw * factor).clamp(b.l, b.h);
    }
}

/// Split-adjusts raw bars of a day `factor` later splits apply to: prices divided, volume multiplied.
pub(crate) fn adjust_split(bars: &mut [EmuBar], factor: f64) {
    if factor == 1.0 {
        return;
    }
    for b in bars {
        b.o /= factor;
        b.h /= factor;
        b.l /= factor;
        b.c /= factor;
        b.vw /= factor;
        b.v = ((b.v as f64) * factor).round() as u64;
    }
}

/// IEX's share of the SIP volume and trades.
pub(crate) fn to_iex(bars: &mut [EmuBar]) {
    for b in bars {
        b.v = (b.v / 25).max(1);
        b.n = (b.n / 25).max(1);
    }
}

/// Aggregates one New York date's minute bars (ascending) into `tf` bars.
pub(crate) fn aggregate(bars: &[EmuBar], tf: Timeframe, session: &Session) -> Vec<EmuBar> {
    match tf {
        Timeframe::Minutes(1) => bars.to_vec(),
        Timeframe::Minutes(n) => bucket(bars, i64::from(n) * 60),
        Timeframe::Hours(n) => bucket(bars, i64::from(n) * HOUR),
        Timeframe::Day => {
            let midnight = session.pre_open() - 4 * HOUR;
            let regular: Vec<EmuBar> = bars
                .iter()
                .copied()
                .filter(|b| b.t >= session.open && b.t < session.close)
                .collect();
            if regular.is_empty() {
                return Vec::new();
            }
            let mut b = merge(&regular);
            b.t = midnight;
            vec![b]
        }
    }
}

fn bucket(bars: &[EmuBar], width: i64) -> Vec<EmuBar> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bars.len() {
        let start = bars[i].t.div_euclid(width) * width;
        let mut j = i;
        while j < bars.len() && bars[j].t < start + width {
            j += 1;
        }
        let mut b = merge(&bars[i..j]);
        b.t = start;
        out.push(b);
        i = j;
    }
    out
}

fn merge(bars: &[EmuBar]) -> EmuBar {
    let first = bars[0];
    let last = bars[bars.len() - 1];
    let v: u64 = bars.iter().map(|b| b.v).sum();
    let n: u64 = bars.iter().map(|b| b.n).sum();
    let h = bars.iter().map(|b| b.h).fold(f64::MIN, f64::max);
    let l = bars.iter().map(|b| b.l).fold(f64::MAX, f64::min);
    let vw = if v > 0 {
        let num: f64 = bars.iter().map(|b| b.vw * b.v as f64).sum();
        ((num / v as f64) * 10_000.0).round() / 10_000.0
    } else {
        (first.o + last.c) / 2.0
    };
    EmuBar {
        t: first.t,
        o: first.o,
        h,
        l,
        c: last.c,
        v,
        n,
        vw: vw.clamp(l, h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vectura_core::calendar::session;

    #[test]
    fn every_regular_minute_and_deterministic() {
        let s = session(NaiveDate::from_ymd_opt(2024, 1, 2).unwrap()).unwrap();
        let a = synthetic_day(7, "SPY", &s, false);
        assert_eq!(a.len(), 390);
        assert_eq!(a[0].t, s.open);
        assert_eq!(a, synthetic_day(7, "SPY", &s, false));
        assert_ne!(a, synthetic_day(8, "SPY", &s, false));
        for b in &a {
            assert!(b.l <= b.o.min(b.c) && b.h >= b.o.max(b.c) && b.l > 0.0);
            assert!(b.vw >= b.l && b.vw <= b.h && b.n >= 1 && b.v >= b.n);
        }
        let ext = synthetic_day(7, "SPY", &s, true);
        assert!(ext.len() > 390 && ext.len() < 960);
        let regular: Vec<_> = ext
            .iter()
            .filter(|b| b.t >= s.open && b.t < s.close)
            .copied()
            .collect();
        assert_eq!(regular, a);
        // Early close: 13:00 ET.
        let e = session(NaiveDate::from_ymd_opt(2024, 11, 29).unwrap()).unwrap();
        assert_eq!(synthetic_day(7, "SPY", &e, false).len(), 210);
    }

    #[test]
    fn timeframes_parse_and_aggregate() {
        assert_eq!(Timeframe::parse("1Min"), Some(Timeframe::Minutes(1)));
        assert_eq!(Timeframe::parse("15T"), Some(Timeframe::Minutes(15)));
        assert_eq!(Timeframe::parse("1Hour"), Some(Timeframe::Hours(1)));
        assert_eq!(Timeframe::parse("1D"), Some(Timeframe::Day));
        assert_eq!(Timeframe::parse("60Min"), None);
        assert_eq!(Timeframe::parse("Min"), None);
        let s = session(NaiveDate::from_ymd_opt(2024, 1, 2).unwrap()).unwrap();
        let m = synthetic_day(1, "AAPL", &s, false);
        let d = aggregate(&m, Timeframe::Day, &s);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].t, s.pre_open() - 4 * HOUR);
        assert_eq!(d[0].o, m[0].o);
        assert_eq!(d[0].c, m[389].c);
        assert_eq!(d[0].v, m.iter().map(|b| b.v).sum::<u64>());
        let h = aggregate(&m, Timeframe::Hours(1), &s);
        assert_eq!(h.len(), 7); // 14:30-15:00, 15..21 UTC
        let f = aggregate(&m, Timeframe::Minutes(5), &s);
        assert_eq!(f.len(), 78);
    }
}
