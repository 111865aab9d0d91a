//! The NYSE calendar against the reference session lists in `data/fixtures/calendar` and named
//! known days.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate};
use proptest::prelude::*;
use vectura_core::calendar::{
    classify, is_session, next_session, ny_date, prev_session, session, session_open_ts, sessions,
    Session, SessionPart, FIRST_YEAR, LAST_YEAR,
};

fn d(s: &str) -> NaiveDate {
    s.parse()
        .unwrap_or_else(|e| panic!("bad test date {s}: {e}"))
}

fn ts(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad test instant {s}: {e}"))
        .timestamp()
}

/// Reads a reference session list from `data/fixtures/calendar/` (part of the repository: a missing
/// file is a failure, never a skip).
fn reference(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/fixtures/calendar")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reference file {} is part of the repository: {e}",
            path.display()
        )
    })
}

/// (date, open, close) rows of a reference CSV whose first three columns are those.
fn rows(text: &str) -> Vec<(NaiveDate, i64, i64)> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split(',').collect();
            // The exchange_calendars file stamps its index as midnight UTC; the date is its first ten chars.
            (d(&cols[0][..10]), ts(cols[1]), ts(cols[2]))
        })
        .collect()
}

fn check_reference(name: &str, expected_rows: usize) {
    let want = rows(&reference(name));
    assert_eq!(want.len(), expected_rows, "{name} row count");
    for &(date, open, close) in &want {
        let s =
            session(date).unwrap_or_else(|| panic!("{name}: {date} is a session in the reference"));
        assert_eq!(
            (s.date, s.open, s.close),
            (date, open, close),
            "{name}: {date}"
        );
        assert_eq!(
            s.early_close,
            close - open < 6 * 3600 + 1800,
            "{name}: {date} early flag"
        );
    }
    // Comparing the full lists also proves we have no session the reference lacks.
    let (first, last) = (want[0].0, want[want.len() - 1].0);
    let ours: Vec<(NaiveDate, i64, i64)> = sessions(first, last)
        .iter()
        .map(|s| (s.date, s.open, s.close))
        .collect();
    assert_eq!(
        ours.len(),
        want.len(),
        "{name}: session count {first}..={last}"
    );
    assert_eq!(ours, want, "{name}");
}

#[test]
fn matches_nyse_sessions_2000_2030() {
    check_reference("nyse_sessions_2000_2030.csv", 7_794);
}

#[test]
fn matches_exchange_calendars_1990_2023() {
    check_reference("xnys_answers_1990_2023_exchange_calendars.csv", 8_324);
}

fn assert_closed(days: &[&str]) {
    for day in days {
        assert!(!is_session(d(day)), "{day} should be closed");
        assert_eq!(session(d(day)), None, "{day}");
    }
}

/// Asserts a 13:00 ET close, given as the expected UTC close instant.
fn assert_early(day: &str, close_utc: &str) {
    let s = session(d(day)).unwrap_or_else(|| panic!("{day} should be a session"));
    assert!(s.early_close, "{day} should close early");
    assert_eq!(s.close, ts(close_utc), "{day} close");
    assert_eq!(s.close - s.open, 3 * 3600 + 1800, "{day} length");
}

fn assert_full(day: &str) {
    let s = session(d(day)).unwrap_or_else(|| panic!("{day} should be a session"));
    assert!(!s.early_close, "{day} should be a full session");
    assert_eq!(s.close - s.open, 6 * 3600 + 1800, "{day} length");
}

#[test]
fn holidays_and_early_closes_2024() {
    assert_closed(&[
        "2024-01-01",
        "2024-01-15",
        "2024-02-19",
        "2024-03-29",
        "2024-05-27",
        "2024-06-19",
        "2024-07-04",
        "2024-09-02",
        "2024-11-28",
        "2024-12-25",
    ]);
    assert_early("2024-07-03", "2024-07-03T17:00:00Z");
    assert_early("2024-11-29", "2024-11-29T18:00:00Z");
    assert_early("2024-12-24", "2024-12-24T18:00:00Z");
    assert_full("2024-12-31");
    assert_eq!(sessions(d("2024-01-01"), d("2024-12-31")).len(), 252);
    assert_eq!(
        sessions(d("2024-01-01"), d("2024-12-31"))
            .iter()
            .filter(|s| s.early_close)
            .count(),
        3
    );
}

#[test]
fn holidays_and_early_closes_2025() {
    assert_closed(&[
        "2025-01-01",
        "2025-01-09",
        "2025-01-20",
        "2025-02-17",
        "2025-04-18",
        "2025-05-26",
        "2025-06-19",
        "2025-07-04",
        "2025-09-01",
        "2025-11-27",
        "2025-12-25",
    ]);
    assert_early("2025-07-03", "2025-07-03T17:00:00Z");
    assert_early("2025-11-28", "2025-11-28T18:00:00Z");
    assert_early("2025-12-24", "2025-12-24T18:00:00Z");
    assert_full("2025-12-26");
    assert_eq!(sessions(d("2025-01-01"), d("2025-12-31")).len(), 250);
    assert_eq!(
        sessions(d("2025-01-01"), d("2025-12-31"))
            .iter()
            .filter(|s| s.early_close)
            .count(),
        3
    );
}

#[test]
fn dst_switches_2024_and_2025() {
    // (Friday before, Monday after, UTC open on each): spring forward moves the open an hour earlier in UTC.
    for (fri, mon, fri_open, mon_open) in [
        (
            "2024-03-08",
            "2024-03-11",
            "2024-03-08T14:30:00Z",
            "2024-03-11T13:30:00Z",
        ),
        (
            "2024-11-01",
            "2024-11-04",
            "2024-11-01T13:30:00Z",
            "2024-11-04T14:30:00Z",
        ),
        (
            "2025-03-07",
            "2025-03-10",
            "2025-03-07T14:30:00Z",
            "2025-03-10T13:30:00Z",
        ),
        (
            "2025-10-31",
            "2025-11-03",
            "2025-10-31T13:30:00Z",
            "2025-11-03T14:30:00Z",
        ),
    ] {
        let (f, m) = (session(d(fri)).unwrap(), session(d(mon)).unwrap());
        assert_eq!(f.open, ts(fri_open), "{fri}");
        assert_eq!(m.open, ts(mon_open), "{mon}");
        assert_eq!(f.close - f.open, 23_400);
        assert_eq!(m.close - m.open, 23_400);
        assert_eq!(next_session(d(fri)), Some(m));
        assert_eq!(prev_session(d(mon)), Some(f));
    }
    // Midnight New York on the switch Sundays themselves.
    assert_eq!(ny_date(ts("2024-03-10T04:59:59Z")), d("2024-03-09"));
    assert_eq!(ny_date(ts("2024-03-10T05:00:00Z")), d("2024-03-10"));
    assert_eq!(ny_date(ts("2024-03-11T03:59:59Z")), d("2024-03-10"));
    assert_eq!(ny_date(ts("2024-03-11T04:00:00Z")), d("2024-03-11"));
    assert_eq!(ny_date(ts("2024-11-03T03:59:59Z")), d("2024-11-02"));
    assert_eq!(ny_date(ts("2024-11-03T04:00:00Z")), d("2024-11-03"));
    assert_eq!(ny_date(ts("2024-11-04T04:59:59Z")), d("2024-11-03"));
    assert_eq!(ny_date(ts("2024-11-04T05:00:00Z")), d("2024-11-04"));
}

#[test]
fn one_off_closures() {
    assert_closed(&[
        "1994-04-27",
        "2001-09-11",
        "2001-09-12",
        "2001-09-13",
        "2001-09-14",
        "2004-06-11",
        "2007-01-02",
        "2012-10-29",
        "2012-10-30",
        "2018-12-05",
        "2025-01-09",
    ]);
    assert_eq!(
        next_session(d("2001-09-10")).map(|s| s.date),
        Some(d("2001-09-17"))
    );
    assert_eq!(
        next_session(d("2012-10-26")).map(|s| s.date),
        Some(d("2012-10-31"))
    );
    assert_eq!(
        prev_session(d("2025-01-10")).map(|s| s.date),
        Some(d("2025-01-08"))
    );
}

#[test]
fn historical_early_closes() {
    // 14:00 ET closes before 1993.
    let s = session(d("1992-11-27")).unwrap();
    assert!(s.early_close);
    assert_eq!(s.close, ts("1992-11-27T19:00:00Z"));
    // Until 2012 a Thursday Independence Day closed Friday the 5th early, not Wednesday the 3rd.
    assert_full("2002-07-03");
    assert_early("2002-07-05", "2002-07-05T17:00:00Z");
    assert_early("2013-07-03", "2013-07-03T17:00:00Z");
    assert_full("2013-07-05");
    assert_early("1999-12-31", "1999-12-31T18:00:00Z");
    assert_early("2003-12-26", "2003-12-26T18:00:00Z");
    assert_full("2008-12-26");
}

#[test]
fn rules_for_2031_to_2035() {
    // July 4 2032 is a Sunday: observed Monday, and Friday the 2nd is a full session.
    assert_closed(&["2032-07-05"]);
    assert_full("2032-07-02");
    // Christmas 2032 is a Saturday: observed Friday the 24th; New Year's Day 2033 (Saturday) is not observed.
    assert_closed(&["2032-12-24"]);
    assert_full("2032-12-31");
    assert_full("2033-01-03");
    // Christmas 2033 is a Sunday: observed Monday the 26th.
    assert_closed(&["2033-12-26"]);
    assert_full("2033-12-23");
    assert_closed(&[
        "2035-03-23",
        "2034-01-02",
        "2031-06-19",
        "2035-01-15",
        "2034-11-23",
    ]);
    assert_early("2031-11-28", "2031-11-28T18:00:00Z");
    assert_early("2035-07-03", "2035-07-03T17:00:00Z");
    assert_early("2035-12-24", "2035-12-24T18:00:00Z");
    // July 4 2034 is a Tuesday: Monday the 3rd closes early. Christmas Eve 2034 is a Sunday.
    assert_early("2034-07-03", "2034-07-03T17:00:00Z");
    assert_full("2034-12-22");
    assert_eq!(
        sessions(d("2034-12-22"), d("2034-12-27"))
            .iter()
            .map(|s| s.date)
            .collect::<Vec<_>>(),
        [d("2034-12-22"), d("2034-12-26"), d("2034-12-27")]
    );
}

#[test]
fn classify_parts_of_a_day() {
    // 2024-07-03 is an early close in daylight time: 04:00 ET = 08:00Z, open 13:30Z, close 17:00Z, 20:00 ET = 00:00Z.
    for (instant, part) in [
        ("2024-07-03T07:59:59Z", SessionPart::Closed),
        ("2024-07-03T08:00:00Z", SessionPart::Pre),
        ("2024-07-03T13:29:59Z", SessionPart::Pre),
        ("2024-07-03T13:30:00Z", SessionPart::Regular),
        ("2024-07-03T16:59:59Z", SessionPart::Regular),
        ("2024-07-03T17:00:00Z", SessionPart::Post),
        ("2024-07-03T23:59:59Z", SessionPart::Post),
        ("2024-07-04T00:00:00Z", SessionPart::Closed),
        ("2024-07-04T15:00:00Z", SessionPart::Closed), // Independence Day
        ("2024-07-06T15:00:00Z", SessionPart::Closed), // Saturday
        // A full winter day: 04:00 ET = 09:00Z, 16:00 ET = 21:00Z, 20:00 ET = 01:00Z next day.
        ("2024-01-02T08:59:59Z", SessionPart::Closed),
        ("2024-01-02T09:00:00Z", SessionPart::Pre),
        ("2024-01-02T14:30:00Z", SessionPart::Regular),
        ("2024-01-02T20:59:59Z", SessionPart::Regular),
        ("2024-01-02T21:00:00Z", SessionPart::Post),
        ("2024-01-03T00:59:59Z", SessionPart::Post),
        ("2024-01-03T01:00:00Z", SessionPart::Closed),
    ] {
        assert_eq!(classify(ts(instant)), part, "{instant}");
    }
    let s = session(d("2024-07-03")).unwrap();
    assert_eq!(s.pre_open(), ts("2024-07-03T08:00:00Z"));
    assert_eq!(s.post_close(), ts("2024-07-04T00:00:00Z"));
}

#[test]
fn next_and_prev_across_holiday_weekends() {
    // Labor Day 2024 is Monday September 2.
    let fri = session(d("2024-08-30")).unwrap();
    let tue = session(d("2024-09-03")).unwrap();
    assert_eq!(next_session(d("2024-08-30")), Some(tue));
    assert_eq!(next_session(d("2024-08-31")), Some(tue));
    assert_eq!(next_session(d("2024-09-02")), Some(tue));
    assert_eq!(prev_session(d("2024-09-03")), Some(fri));
    assert_eq!(prev_session(d("2024-09-02")), Some(fri));
    assert_eq!(
        prev_session(d("2024-08-30")).map(|s| s.date),
        Some(d("2024-08-29"))
    );
    // Good Friday 2024: Thursday March 28 to Monday April 1.
    assert_eq!(
        next_session(d("2024-03-28")).map(|s| s.date),
        Some(d("2024-04-01"))
    );
    assert_eq!(
        prev_session(d("2024-04-01")).map(|s| s.date),
        Some(d("2024-03-28"))
    );
}

#[test]
fn session_open_ts_on_any_day() {
    assert_eq!(session_open_ts(d("2024-07-06")), ts("2024-07-06T13:30:00Z")); // Saturday, daylight time
    assert_eq!(session_open_ts(d("2024-01-06")), ts("2024-01-06T14:30:00Z")); // Saturday, standard time
    assert_eq!(session_open_ts(d("2024-12-25")), ts("2024-12-25T14:30:00Z"));
    assert_eq!(
        session_open_ts(d("2024-07-05")),
        session(d("2024-07-05")).unwrap().open
    );
    // Beyond chrono-tz's table for New York (2039) the US rule still gives daylight time in July.
    assert_eq!(session_open_ts(d("2045-07-05")), ts("2045-07-05T13:30:00Z"));
    assert_eq!(session_open_ts(d("2045-01-05")), ts("2045-01-05T14:30:00Z"));
}

#[test]
fn years_outside_the_table_follow_the_rules() {
    assert_eq!((FIRST_YEAR, LAST_YEAR), (1990, 2035));
    assert_closed(&[
        "1989-12-25",
        "1989-03-24",
        "2036-04-11",
        "2036-07-04",
        "2050-11-24",
        "2050-11-24",
    ]);
    assert_full("1989-01-16"); // MLK Day was not a market holiday before 1998
    assert_early("2036-11-28", "2036-11-28T18:00:00Z");
    assert_early("2050-11-25", "2050-11-25T18:00:00Z");
    assert_closed(&["2050-12-26"]); // Christmas 2050 is a Sunday
    assert_eq!(
        sessions(d("2035-12-28"), d("2036-01-03"))
            .iter()
            .map(|s| s.date)
            .collect::<Vec<_>>(),
        [
            d("2035-12-28"),
            d("2035-12-31"),
            d("2036-01-02"),
            d("2036-01-03")
        ]
    );
    assert_eq!(ny_date(ts("2036-01-01T04:59:59Z")), d("2035-12-31"));
    assert_eq!(ny_date(ts("2036-01-01T05:00:00Z")), d("2036-01-01"));
    assert_eq!(ny_date(ts("2040-07-01T03:59:59Z")), d("2040-06-30"));
    assert_eq!(ny_date(ts("2040-07-01T04:00:00Z")), d("2040-07-01"));
}

/// The answers every date must give, whatever the year: a session on the date asked for, of a
/// full or early length, its neighbours strictly before and after, one-day ranges agreeing.
fn assert_consistent_day(date: NaiveDate) {
    let s = session(date);
    assert_eq!(is_session(date), s.is_some(), "{date}");
    assert_eq!(
        sessions(date, date),
        s.into_iter().collect::<Vec<_>>(),
        "{date}"
    );
    if let Some(s) = s {
        assert_eq!(s.date, date);
        // 09:30–16:00, –13:00 or –14:00 New York time (the same offset all day).
        assert!(
            [6 * 3600 + 1800, 3 * 3600 + 1800, 4 * 3600 + 1800].contains(&(s.close - s.open)),
            "{date}: {s:?}"
        );
        assert_eq!(s.early_close, s.close - s.open < 6 * 3600 + 1800, "{date}");
        assert_eq!(s.open - s.pre_open(), 5 * 3600 + 1800, "{date}");
        assert_eq!(s.post_close() - s.open, 10 * 3600 + 1800, "{date}");
        assert_eq!(session_open_ts(date), s.open, "{date}");
        assert_eq!(classify(s.open), SessionPart::Regular, "{date}");
        assert_eq!(classify(s.close - 1), SessionPart::Regular, "{date}");
        assert_eq!(classify(s.close), SessionPart::Post, "{date}");
        assert_eq!(classify(s.pre_open()), SessionPart::Pre, "{date}");
        assert_eq!(classify(s.pre_open() - 1), SessionPart::Closed, "{date}");
    }
    if let Some(n) = next_session(date) {
        assert!(n.date > date, "{date}: next {}", n.date);
        assert_eq!(session(n.date), Some(n));
    }
    if let Some(p) = prev_session(date) {
        assert!(p.date < date, "{date}: prev {}", p.date);
        assert_eq!(session(p.date), Some(p));
    }
}

#[test]
fn extremes_answer_consistently() {
    for date in [
        NaiveDate::MIN,
        NaiveDate::MAX,
        d("0001-01-01"),
        d("9999-12-31"),
        d("1500-04-01"),
        d("1883-11-18"),
    ] {
        assert_consistent_day(date);
    }
    assert_eq!(next_session(NaiveDate::MAX), None);
    assert_eq!(prev_session(NaiveDate::MIN), None);
    assert!(sessions(d("2024-01-05"), d("2024-01-01")).is_empty());
    // Instants beyond chrono's dates clamp to its first and last date and are never in a session.
    assert_eq!(ny_date(i64::MIN), NaiveDate::MIN);
    assert_eq!(ny_date(i64::MIN + 1), NaiveDate::MIN);
    assert_eq!(ny_date(i64::MAX), NaiveDate::MAX);
    assert_eq!(ny_date(i64::MAX - 1), NaiveDate::MAX);
    for t in [i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX] {
        assert_eq!(classify(t), SessionPart::Closed, "{t}");
    }
    // The epoch is 19:00 EST on Wednesday 1969-12-31: after hours of a (rule-made) session.
    for t in [-1, 0, 1] {
        assert_eq!(ny_date(t), d("1969-12-31"), "{t}");
        assert_eq!(classify(t), SessionPart::Post, "{t}");
    }
    // A session built with absurd times saturates instead of overflowing.
    let odd = Session {
        date: d("2024-01-02"),
        open: i64::MAX,
        close: i64::MIN,
        early_close: false,
    };
    assert_eq!(odd.pre_open(), i64::MAX - (5 * 3600 + 1800));
    assert_eq!(odd.post_close(), i64::MAX);
    let odd = Session {
        open: i64::MIN,
        ..odd
    };
    assert_eq!(odd.pre_open(), i64::MIN);
    assert_eq!(odd.post_close(), i64::MIN + 10 * 3600 + 1800);
    // Years 1..=9999 in full, one Friday and one Monday a year, stay consistent.
    for year in 1..=9999 {
        let Some(s) = next_session(NaiveDate::from_ymd_opt(year, 6, 1).unwrap()) else {
            panic!("{year}")
        };
        assert_eq!(ny_date(s.open), s.date, "{year}");
        assert_eq!(classify(s.open), SessionPart::Regular, "{year}");
        assert_eq!(session_open_ts(s.date), s.open);
    }
}

#[test]
fn dates_outside_the_checked_years_are_refused_by_the_checked_functions() {
    use vectura_core::calendar::{check, checked_session, checked_sessions, covers};
    // 1985-01-02: the rules say 09:30, but the NYSE opened at 10:00 until 1985-09-30.
    let old = d("1985-01-02");
    assert_eq!(
        session(old).map(|s| s.open),
        Some(ts("1985-01-02T14:30:00Z"))
    );
    let err = checked_session(old).unwrap_err();
    assert_eq!(err.date, old);
    let msg = err.to_string();
    assert!(
        msg.starts_with("1985-01-02 is outside the NYSE calendar's checked years 1990–2035")
            && msg.contains("use dates from 1990-01-01 to 2035-12-31")
            && !msg.contains('\n'),
        "{msg}"
    );
    for (from, to, bad) in [
        ("1989-12-29", "1990-01-05", "1989-12-29"),
        ("2035-12-28", "2036-01-03", "2036-01-03"),
        ("1985-01-01", "2040-01-01", "1985-01-01"),
    ] {
        assert_eq!(
            checked_sessions(d(from), d(to)).unwrap_err().date,
            d(bad),
            "{from}..{to}"
        );
    }
    // The edges of the table are accepted and answer as the plain functions do.
    for (from, to) in [("1990-01-01", "1990-01-31"), ("2035-12-01", "2035-12-31")] {
        let got = checked_sessions(d(from), d(to)).unwrap();
        assert!(!got.is_empty());
        assert_eq!(got, sessions(d(from), d(to)));
    }
    assert_eq!(
        checked_sessions(d("1985-01-05"), d("1985-01-01")),
        Ok(vec![])
    );
    assert_eq!(
        checked_session(d("1990-01-02")),
        Ok(session(d("1990-01-02")))
    );
    assert_eq!(checked_session(d("1990-01-01")), Ok(None));
    for (date, inside) in [
        ("1989-12-31", false),
        ("1990-01-01", true),
        ("2035-12-31", true),
        ("2036-01-01", false),
    ] {
        assert_eq!(covers(d(date)), inside, "{date}");
        assert_eq!(check(d(date)).is_ok(), inside, "{date}");
    }
    assert!(!covers(NaiveDate::MIN) && !covers(NaiveDate::MAX));
}

#[test]
fn table_lookups_are_fast_enough_for_bulk_loads() {
    // Classifying a year of minute stamps should take well under a second even unoptimised.
    let start = ts("2024-01-01T00:00:00Z");
    let mut regular = 0usize;
    for t in (start..start + 366 * 86_400).step_by(60) {
        if classify(t) == SessionPart::Regular {
            regular += 1;
        }
    }
    // 2024: 249 full sessions of 390 minutes and 3 early closes of 210.
    assert_eq!(regular, 249 * 390 + 3 * 210);
}

proptest! {
    #[test]
    fn classify_agrees_with_session(t in -62_135_596_800i64..253_402_300_799i64) {
        let date = ny_date(t);
        let part = classify(t);
        match session(date) {
            None => prop_assert_eq!(part, SessionPart::Closed),
            Some(s) => {
                prop_assert_eq!(ny_date(s.open), date);
                prop_assert_eq!(part == SessionPart::Regular, s.open <= t && t < s.close);
                prop_assert_eq!(session_open_ts(date), s.open);
            }
        }
    }

    #[test]
    fn any_instant_has_a_consistent_date_and_part(
        t in prop_oneof![any::<i64>(), -9_000_000_000_000i64..9_000_000_000_000],
    ) {
        let date = ny_date(t);
        match DateTime::from_timestamp(t, 0) {
            // New York is always behind UTC (LMT, EST, EDT, war time), by less than a day.
            Some(utc) => {
                let u = utc.date_naive();
                prop_assert!(date == u || date.succ_opt() == Some(u), "{} vs UTC {}", date, u);
            }
            None => prop_assert!(date == NaiveDate::MIN || date == NaiveDate::MAX, "{}", date),
        }
        let part = classify(t);
        match session(date) {
            None => prop_assert_eq!(part, SessionPart::Closed),
            Some(s) => {
                let want = if t < s.pre_open() || t >= s.post_close() {
                    SessionPart::Closed
                } else if t < s.open {
                    SessionPart::Pre
                } else if t < s.close {
                    SessionPart::Regular
                } else {
                    SessionPart::Post
                };
                prop_assert_eq!(part, want);
            }
        }
    }

    #[test]
    fn next_and_prev_are_inverse(days in 0i32..3_000_000) {
        let Some(date) = NaiveDate::from_num_days_from_ce_opt(days + 1) else { return Ok(()) };
        if let Some(n) = next_session(date) {
            prop_assert!(n.date > date);
            let back = prev_session(n.date).map(|s| s.date);
            prop_assert!(back.is_none_or(|b| b <= date));
            prop_assert!(sessions(date.succ_opt().unwrap(), n.date.pred_opt().unwrap_or(n.date)).iter().all(|s| s.date == n.date) );
        }
    }
}
