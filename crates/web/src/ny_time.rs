//! Times as the pages show them: New York wall-clock time, the exchange's, for US equities (the
//! JSON API keeps RFC 3339 in UTC; each shown time carries it in a `<time datetime>`).

use chrono::{DateTime, Utc};

/// `2024-03-04 09:30:00 ET` for a Unix time in seconds (empty when out of range).
pub fn text(ts: i64) -> String {
    DateTime::from_timestamp(ts, 0).map(of).unwrap_or_default()
}

/// `2024-03-04 09:30:00 ET`: to the second (the `<time datetime>` beside it keeps the rest).
pub fn of(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::America::New_York)
        .format("%Y-%m-%d %H:%M:%S ET")
        .to_string()
}

/// `09:30 ET`: the time of day only (beside a date shown elsewhere).
pub fn clock(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::America::New_York)
        .format("%H:%M ET")
        .to_string()
}

/// An RFC 3339 time in New York time; the text as it is when it is not one.
pub fn of_rfc3339(s: &str) -> String {
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => of(t.with_timezone(&Utc)),
        Err(_) => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summer_and_winter_times_are_the_exchanges() {
        // 13:30Z is the open in summer (EDT), 14:30Z in winter (EST).
        assert_eq!(
            of_rfc3339("2023-07-10T13:30:00+00:00"),
            "2023-07-10 09:30:00 ET"
        );
        assert_eq!(of_rfc3339("2024-03-04T14:30:00Z"), "2024-03-04 09:30:00 ET");
        assert_eq!(
            of_rfc3339("2024-03-04T23:38:00.250+00:00"),
            "2024-03-04 18:38:00 ET"
        );
        assert_eq!(text(1_688_995_800), "2023-07-10 09:30:00 ET");
        assert_eq!(
            clock(DateTime::from_timestamp(1_688_995_800, 0).unwrap()),
            "09:30 ET"
        );
        assert_eq!(of_rfc3339("not a time"), "not a time");
    }
}
