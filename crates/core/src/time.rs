//! Instants as Unix seconds, and the conversions the engine needs without reading the clock.

use chrono::{DateTime, NaiveDate, Utc};

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// The UTC day number (days since 1970-01-01) of a Unix-seconds instant.
#[inline(always)]
pub fn utc_day(ts: i64) -> i64 {
    ts.div_euclid(DAY)
}

/// Unix seconds of a UTC date's midnight.
pub fn midnight_utc(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp()
}

/// The UTC date of an instant.
pub fn date_utc(ts: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp(ts, 0)
        .map(|d| d.date_naive())
        .unwrap_or(NaiveDate::MIN)
}

/// RFC 3339 UTC text of an instant, seconds precision (`2024-01-02T14:30:00Z`).
pub fn rfc3339(ts: i64) -> String {
    match DateTime::<Utc>::from_timestamp(ts, 0) {
        Some(d) => d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => format!("@{ts}"),
    }
}

/// The original's `toISOString()` form with milliseconds (`2024-01-02T14:30:00.000Z`).
pub fn iso_millis(ts: i64) -> String {
    match DateTime::<Utc>::from_timestamp(ts, 0) {
        Some(d) => d.format("%Y-%m-%dT%H:%M:%S.000Z").to_string(),
        None => format!("@{ts}"),
    }
}

/// `year × 12 + month − 1` of a UTC day number (civil calendar, no allocation, no tz lookups).
#[inline]
pub fn year_month_of_day(day: i64) -> i64 {
    // Howard Hinnant's days-to-civil algorithm.
    let z = day + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    y * 12 + (m - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn conversions() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 10).unwrap();
        let t = midnight_utc(d);
        assert_eq!(date_utc(t + 5), d);
        assert_eq!(rfc3339(t + 3600), "2024-03-10T01:00:00Z");
        assert_eq!(iso_millis(t), "2024-03-10T00:00:00.000Z");
        assert_eq!(year_month_of_day(utc_day(t)), 2024 * 12 + 2);
        assert_eq!(year_month_of_day(0), 1970 * 12);
        assert_eq!(year_month_of_day(-1), 1969 * 12 + 11);
    }
}
