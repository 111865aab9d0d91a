//! Hand-rolled parsing of the time shapes that bar files come in, without allocation.
//!
//! [`parse_time`] only reads the text; turning a zone-less local time into an instant (which needs
//! the zone and its DST rules) is [`ZoneCache`]'s job.

use chrono::{DateTime, NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;

/// Seconds in a day.
const DAY: i64 = 86_400;

/// What a time cell says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stamp {
    /// An instant: the text carried `Z`, an offset, or was Unix seconds/milliseconds.
    At(i64),
    /// A wall-clock time without a zone: `day` (days since 1970-01-01) and seconds into it.
    Naive { day: i64, sec: i64 },
    /// A date without a time of day (a daily bar), as days since 1970-01-01.
    Date(i64),
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

fn ymd(y: i64, m: u32, d: u32) -> Result<i64, &'static str> {
    if !(1..=12).contains(&m) {
        return Err("month out of range");
    }
    if d == 0 || d > days_in_month(y, m) {
        return Err("day out of range for the month");
    }
    Ok(days_from_civil(y, m, d))
}

#[inline]
fn digit(b: &[u8], i: usize) -> Option<u32> {
    match b.get(i) {
        Some(c) if c.is_ascii_digit() => Some((c - b'0') as u32),
        _ => None,
    }
}

#[inline]
fn d2(b: &[u8], i: usize) -> Option<u32> {
    Some(digit(b, i)? * 10 + digit(b, i + 1)?)
}

#[inline]
fn d4(b: &[u8], i: usize) -> Option<u32> {
    Some(d2(b, i)? * 100 + d2(b, i + 2)?)
}

/// An unsigned integer of 1..=18 ASCII digits.
fn uint(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    let mut v = 0u64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u64;
    }
    Some(v)
}

const SHAPE: &str = "not a recognised date/time";

/// `HH:MM[:SS][.fff]` at the start of `b` (hour may have one digit): seconds into the day and the rest.
fn clock(b: &[u8]) -> Result<(i64, &[u8]), &'static str> {
    let (h, mut i) = match (d2(b, 0), digit(b, 0)) {
        (Some(h), _) => (h, 2),
        (None, Some(h)) => (h, 1),
        _ => return Err(SHAPE),
    };
    if b.get(i) != Some(&b':') {
        return Err(SHAPE);
    }
    let mi = d2(b, i + 1).ok_or(SHAPE)?;
    i += 3;
    let mut s = 0;
    if b.get(i) == Some(&b':') {
        s = d2(b, i + 1).ok_or(SHAPE)?;
        i += 3;
        if matches!(b.get(i), Some(b'.') | Some(b',')) {
            let start = i + 1;
            i = start;
            while b.get(i).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
            if i == start {
                return Err(SHAPE);
            }
        }
    }
    if h > 23 || mi > 59 || s > 59 {
        return Err("hour, minute or second out of range");
    }
    Ok(((h * 3600 + mi * 60 + s) as i64, &b[i..]))
}

/// The zone after a clock: `None` for none, `Some(seconds east of UTC)` for `Z`, `UTC` or `±HH[:MM]`.
fn zone(b: &[u8]) -> Result<Option<i64>, &'static str> {
    let b = match b {
        [b' ', rest @ ..] => rest,
        _ => b,
    };
    match b {
        [] => Ok(None),
        [b'Z'] | [b'z'] => Ok(Some(0)),
        _ if b.eq_ignore_ascii_case(b"UTC") || b.eq_ignore_ascii_case(b"GMT") => Ok(Some(0)),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let h = d2(rest, 0).ok_or("bad UTC offset")?;
            let m = match &rest[2..] {
                [] => 0,
                [b':', _, _] => d2(rest, 3).ok_or("bad UTC offset")?,
                [_, _] => d2(rest, 2).ok_or("bad UTC offset")?,
                _ => return Err("bad UTC offset"),
            };
            if h > 23 || m > 59 {
                return Err("bad UTC offset");
            }
            let off = (h * 3600 + m * 60) as i64;
            Ok(Some(if *sign == b'-' { -off } else { off }))
        }
        _ => Err(SHAPE),
    }
}

/// A date's day number followed by an optional ` HH:MM[:SS]`/`THH:MM[:SS]` and zone.
fn with_clock(day: i64, rest: &[u8]) -> Result<Stamp, &'static str> {
    match rest {
        [] => Ok(Stamp::Date(day)),
        [b' ' | b'T' | b't', clk @ ..] => {
            let (sec, rest) = clock(clk)?;
            Ok(match zone(rest)? {
                None => Stamp::Naive { day, sec },
                Some(off) => Stamp::At(day * DAY + sec - off),
            })
        }
        _ => Err(SHAPE),
    }
}

/// The day number of a `YYYY-MM-DD` prefix.
pub(crate) fn date_prefix_day(b: &[u8]) -> Option<i64> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    ymd(d4(b, 0)? as i64, d2(b, 5)?, d2(b, 8)?).ok()
}

/// Reads one time cell (already trimmed).
pub(crate) fn parse_time(b: &[u8]) -> Result<Stamp, &'static str> {
    // YYYY-MM-DD[( |T)HH:MM[:SS][.fff][Z|±HH:MM]]: the common shapes, first.
    if b.len() >= 10 && b[4] == b'-' && b[7] == b'-' {
        let (y, m, d) = match (d4(b, 0), d2(b, 5), d2(b, 8)) {
            (Some(y), Some(m), Some(d)) => (y, m, d),
            _ => return Err(SHAPE),
        };
        let day = ymd(y as i64, m, d)?;
        return with_clock(day, &b[10..]);
    }
    if b.contains(&b'/') {
        return slashed(b);
    }
    if b.first().is_some_and(|c| c.is_ascii_digit()) {
        let end = b
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(b.len());
        let (num, rest) = b.split_at(end);
        if num.len() == 8 {
            // YYYYMMDD, optionally ` HHMMSS` (NinjaTrader's export).
            let (y, m, d) = (
                d4(num, 0).unwrap_or(0),
                d2(num, 4).unwrap_or(0),
                d2(num, 6).unwrap_or(0),
            );
            let day = ymd(y as i64, m, d)?;
            return match rest {
                [] => Ok(Stamp::Date(day)),
                [b' ', t @ ..] if t.len() == 6 => {
                    let (h, mi, s) = match (d2(t, 0), d2(t, 2), d2(t, 4)) {
                        (Some(h), Some(mi), Some(s)) => (h, mi, s),
                        _ => return Err(SHAPE),
                    };
                    if h > 23 || mi > 59 || s > 59 {
                        return Err("hour, minute or second out of range");
                    }
                    Ok(Stamp::Naive {
                        day,
                        sec: (h * 3600 + mi * 60 + s) as i64,
                    })
                }
                _ => with_clock(day, rest),
            };
        }
        if rest.is_empty() {
            let v = uint(num).ok_or(SHAPE)? as i64;
            return match num.len() {
                9 | 10 => Ok(Stamp::At(v)),
                13 => Ok(Stamp::At(v.div_euclid(1000))),
                _ => Err("a number that is neither YYYYMMDD nor Unix seconds (9-10 digits) or milliseconds (13)"),
            };
        }
    }
    Err(SHAPE)
}

/// `M/D/YYYY` (US order) or `YYYY/MM/DD`, optionally followed by a clock.
fn slashed(b: &[u8]) -> Result<Stamp, &'static str> {
    let end = b
        .iter()
        .position(|&c| c == b' ' || c == b'T')
        .unwrap_or(b.len());
    let (date, rest) = b.split_at(end);
    let mut parts = date.split(|&c| c == b'/');
    let (p1, p2, p3) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c), None) => (a, b, c),
        _ => return Err(SHAPE),
    };
    let small = |p: &[u8]| -> Result<u32, &'static str> {
        if p.is_empty() || p.len() > 2 {
            return Err(SHAPE);
        }
        Ok(uint(p).ok_or(SHAPE)? as u32)
    };
    let day = if p1.len() == 4 {
        ymd(uint(p1).ok_or(SHAPE)? as i64, small(p2)?, small(p3)?)?
    } else if p3.len() == 4 {
        ymd(uint(p3).ok_or(SHAPE)? as i64, small(p1)?, small(p2)?)?
    } else {
        return Err("slashed dates must be M/D/YYYY or YYYY/MM/DD (four-digit year)");
    };
    with_clock(day, rest)
}

/// What is wrong with a local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalProblem {
    /// The wall-clock time happens twice (clocks go back).
    Ambiguous,
    /// The wall-clock time is skipped (clocks go forward).
    Nonexistent,
}

/// Converts wall-clock times of one zone to instants, remembering the last day's offset.
pub(crate) struct ZoneCache {
    tz: Tz,
    day: i64,
    /// The offset (seconds east of UTC) valid for the whole of `day`, when it has a single one.
    off: Option<i64>,
}

impl ZoneCache {
    pub(crate) fn new(tz: Tz) -> Self {
        ZoneCache {
            tz,
            day: i64::MIN,
            off: None,
        }
    }

    fn offset_at(&self, ts: i64) -> Option<i64> {
        let utc = DateTime::from_timestamp(ts, 0)?.naive_utc();
        Some(
            self.tz
                .offset_from_utc_datetime(&utc)
                .fix()
                .local_minus_utc() as i64,
        )
    }

    /// The instant of wall-clock time `sec` on `day` in the zone.
    pub(crate) fn resolve(&mut self, day: i64, sec: i64) -> Result<i64, LocalProblem> {
        if day != self.day {
            self.day = day;
            // One offset a day before and two days after the local date's UTC midnight: then no
            // transition falls inside the local day (zones are at most ±14 h from UTC).
            let a = self.offset_at((day - 1) * DAY);
            let b = self.offset_at((day + 2) * DAY);
            self.off = match (a, b) {
                (Some(a), Some(b)) if a == b => Some(a),
                _ => None,
            };
        }
        if let Some(off) = self.off {
            return Ok(day * DAY + sec - off);
        }
        let naive = NaiveDate::from_num_days_from_ce_opt((day + 719_163) as i32)
            .and_then(|d| {
                d.and_hms_opt(
                    (sec / 3600) as u32,
                    (sec / 60 % 60) as u32,
                    (sec % 60) as u32,
                )
            })
            .ok_or(LocalProblem::Nonexistent)?;
        match self.tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) => Ok(t.timestamp()),
            chrono::LocalResult::Ambiguous(..) => Err(LocalProblem::Ambiguous),
            chrono::LocalResult::None => Err(LocalProblem::Nonexistent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Stamp {
        parse_time(s.as_bytes()).unwrap()
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2011, 1, 3), 14_977);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for d in [-800_000i64, -1, 0, 59, 10_000, 2_932_896] {
            let nd = NaiveDate::from_num_days_from_ce_opt((d + 719_163) as i32).unwrap();
            use chrono::Datelike;
            assert_eq!(days_from_civil(nd.year() as i64, nd.month(), nd.day()), d);
        }
    }

    #[test]
    fn shapes() {
        let t = 1_294_065_000; // 2011-01-03T14:30:00Z
        let day = 14_977;
        assert_eq!(at("2011-01-03T14:30:00Z"), Stamp::At(t));
        assert_eq!(at("2011-01-03T14:30:00.250Z"), Stamp::At(t));
        assert_eq!(at("2011-01-03T09:30:00-05:00"), Stamp::At(t));
        assert_eq!(at("2011-01-03 20:00:00+0530"), Stamp::At(t));
        assert_eq!(at("2011-01-03 14:30:00 UTC"), Stamp::At(t));
        assert_eq!(at("2011-01-03 14:30:00"), Stamp::Naive { day, sec: 52_200 });
        assert_eq!(at("2011-01-03T14:30"), Stamp::Naive { day, sec: 52_200 });
        assert_eq!(at("2011-01-03"), Stamp::Date(day));
        assert_eq!(at("1/3/2011"), Stamp::Date(day));
        assert_eq!(at("01/03/2011"), Stamp::Date(day));
        assert_eq!(at("2011/01/03"), Stamp::Date(day));
        assert_eq!(at("1/3/2011 14:30"), Stamp::Naive { day, sec: 52_200 });
        assert_eq!(at("20110103"), Stamp::Date(day));
        assert_eq!(at("20110103 143000"), Stamp::Naive { day, sec: 52_200 });
        assert_eq!(at("1294065000"), Stamp::At(t));
        assert_eq!(at("1294065000123"), Stamp::At(t));
        assert_eq!(at("999999999"), Stamp::At(999_999_999));
        for bad in [
            "",
            "x",
            "2011-13-01",
            "2011-02-29",
            "2011-01-03 24:00:00",
            "2011-01-03 14:30:00+25:00",
            "2011-01-03X",
            "13/45/2011",
            "1/3/11",
            "12345",
            "2011-01-03 14:30:00 junk",
            "/",
            "1//",
            "2011-01-03T",
            "2011-01-03 1:3",
            "99999999",
        ] {
            assert!(
                parse_time(bad.as_bytes()).is_err(),
                "{bad:?} should be an error"
            );
        }
    }

    #[test]
    fn zones_and_dst() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let mut z = ZoneCache::new(ny);
        let d = days_from_civil(2019, 11, 5);
        assert_eq!(z.resolve(d, 9 * 3600 + 1800), Ok(1_572_964_200)); // 14:30Z
                                                                      // 2011-03-13: 02:30 does not exist; 2011-11-06 01:30 happens twice.
        let spring = days_from_civil(2011, 3, 13);
        assert_eq!(
            z.resolve(spring, 2 * 3600 + 1800),
            Err(LocalProblem::Nonexistent)
        );
        assert_eq!(z.resolve(spring, 9 * 3600 + 1800), Ok(1_300_023_000)); // 13:30Z (EDT)
        let fall = days_from_civil(2011, 11, 6);
        assert_eq!(z.resolve(fall, 3600 + 1800), Err(LocalProblem::Ambiguous));
        assert_eq!(z.resolve(fall, 9 * 3600 + 1800), Ok(1_320_589_800)); // 14:30Z (EST)
    }
}
