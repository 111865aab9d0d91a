//! The NYSE trading calendar: sessions, early closes, closures and the New York wall clock.
//!
//! Years [`FIRST_YEAR`]..=[`LAST_YEAR`] are served from a table built once on first use and checked
//! against reference session lists, one-off closures included. Any other date follows the holiday and
//! early-close rules alone, so it is a best effort: pre-1990 closures that no rule predicts (election
//! days, weather, mourning days) are not known, and the regular session is taken as 09:30–16:00 for
//! every year (before 1985-09-30 the NYSE opened at 10:00). Nothing here panics for any `NaiveDate`
//! or any `i64` instant.
//!
//! The plain functions ([`session`], [`sessions`], [`classify`], ...) answer for any date, so that
//! stamping and grouping bars (New York dates, 09:30 stamps of daily bars) works for old daily
//! histories. Whatever reports or filters by sessions must not rely on those extrapolated answers:
//! [`check`], [`checked_session`] and [`checked_sessions`] refuse a date outside the checked years
//! with [`OutsideCalendar`], a one-line error naming the date, the years and the fix.

use std::cell::Cell;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveTime, Offset, TimeZone, Weekday};
use chrono_tz::America::New_York;

/// First year with a checked holiday table.
pub const FIRST_YEAR: i32 = 1990;
/// Last year with a checked holiday table.
pub const LAST_YEAR: i32 = 2035;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;
const PRE_OPEN: i64 = 4 * HOUR;
const OPEN: i64 = 9 * HOUR + 30 * 60;
const CLOSE: i64 = 16 * HOUR;
const EARLY_CLOSE: i64 = 13 * HOUR;
/// Early closes were at 14:00 until 1992; from 1993 they are at 13:00.
const OLD_EARLY_CLOSE: i64 = 14 * HOUR;
const POST_CLOSE: i64 = 20 * HOUR;
const EST: i64 = -5 * HOUR;
const EDT: i64 = -4 * HOUR;

/// From this year on, New York's offset comes from the US DST rule rather than chrono-tz, whose
/// table for the zone ends in 2039 and then reports daylight time for ever.
const RULE_DST_YEAR: i32 = 2038;
/// 2038-01-01 00:00 EST as Unix seconds: the instant the rule takes over from chrono-tz.
const RULE_DST_FROM_TS: i64 = 2_145_934_800;

/// Closures no rule predicts, as (year, month, day): all fall inside the table years.
const ONE_OFF_CLOSURES: &[(i32, u32, u32)] = &[
    (1994, 4, 27),  // Richard Nixon's funeral
    (2001, 9, 11),  // 9/11 attacks
    (2001, 9, 12),  //
    (2001, 9, 13),  //
    (2001, 9, 14),  //
    (2004, 6, 11),  // Ronald Reagan's funeral
    (2007, 1, 2),   // Gerald Ford's national day of mourning
    (2012, 10, 29), // Hurricane Sandy
    (2012, 10, 30), //
    (2018, 12, 5),  // George H. W. Bush's national day of mourning
    (2025, 1, 9),   // Jimmy Carter's national day of mourning
];

/// Early closes (13:00 ET) no rule predicts, as (year, month, day).
const ONE_OFF_EARLY_CLOSES: &[(i32, u32, u32)] = &[
    (1997, 12, 26), // Friday after a Thursday Christmas; 2008 and 2014 had a full session
    (1999, 12, 31), // Y2K eve
    (2003, 12, 26), // Friday after a Thursday Christmas
];

/// A date outside the checked years [`FIRST_YEAR`]..=[`LAST_YEAR`], where sessions, holidays and
/// opening times would only be extrapolated from today's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{date} is outside the NYSE calendar's checked years {FIRST_YEAR}–{LAST_YEAR}: sessions, holidays and opening times there are not known (before 1985-09-30 the NYSE opened at 10:00); use dates from {FIRST_YEAR}-01-01 to {LAST_YEAR}-12-31")]
pub struct OutsideCalendar {
    /// The first date asked for that is outside the checked years.
    pub date: NaiveDate,
}

/// Whether `date` lies in the checked years [`FIRST_YEAR`]..=[`LAST_YEAR`].
pub fn covers(date: NaiveDate) -> bool {
    (FIRST_YEAR..=LAST_YEAR).contains(&date.year())
}

/// `Ok` when `date` lies in the checked years, else [`OutsideCalendar`].
pub fn check(date: NaiveDate) -> Result<(), OutsideCalendar> {
    if covers(date) {
        Ok(())
    } else {
        Err(OutsideCalendar { date })
    }
}

/// [`session`], refusing a date outside the checked years instead of extrapolating.
pub fn checked_session(date: NaiveDate) -> Result<Option<Session>, OutsideCalendar> {
    check(date)?;
    Ok(session(date))
}

/// [`sessions`], refusing a range that reaches outside the checked years (the error names the end
/// that does) instead of extrapolating. An empty range (`to < from`) is `Ok` and empty.
pub fn checked_sessions(from: NaiveDate, to: NaiveDate) -> Result<Vec<Session>, OutsideCalendar> {
    if to < from {
        return Ok(Vec::new());
    }
    check(from)?;
    check(to)?;
    Ok(sessions(from, to))
}

/// One regular session (times as Unix seconds UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Session {
    /// The session's New York calendar date.
    pub date: NaiveDate,
    /// Opening bell, Unix seconds UTC.
    pub open: i64,
    /// Closing bell, Unix seconds UTC (13:00 or 14:00 ET on an early close).
    pub close: i64,
    /// Whether the session closes before 16:00 ET.
    pub early_close: bool,
}

impl Session {
    /// Start of pre-market trading, 04:00 ET, as Unix seconds UTC.
    pub fn pre_open(&self) -> i64 {
        // New York switches DST at 02:00, so 04:00 and 09:30 always share an offset.
        self.open.saturating_sub(OPEN - PRE_OPEN)
    }

    /// End of after-hours trading, 20:00 ET (also on early-close days), as Unix seconds UTC.
    pub fn post_close(&self) -> i64 {
        self.open.saturating_add(POST_CLOSE - OPEN)
    }
}

/// Where an instant falls in the trading day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPart {
    /// 04:00 ET up to the open on a session day.
    Pre,
    /// From the open up to the close.
    Regular,
    /// From the close up to 20:00 ET.
    Post,
    /// Any other instant, including all of a weekend, holiday or closure.
    Closed,
}

/// The regular session on `date`, or `None` on weekends, holidays and closures.
pub fn session(date: NaiveDate) -> Option<Session> {
    let table = table();
    if let Some(i) = table.index(date) {
        return table.days[i];
    }
    // Bars come in date order, so remembering the last answer saves most rule evaluations.
    thread_local! {
        static LAST: Cell<Option<(NaiveDate, Option<Session>)>> = const { Cell::new(None) };
    }
    LAST.with(|last| match last.get() {
        Some((d, s)) if d == date => s,
        _ => {
            let s = build_session(date, rule_kind(date));
            last.set(Some((date, s)));
            s
        }
    })
}

/// Whether `date` has a regular session.
pub fn is_session(date: NaiveDate) -> bool {
    session(date).is_some()
}

/// All sessions from `from` to `to`, both inclusive, in ascending order (empty when `to < from`).
pub fn sessions(from: NaiveDate, to: NaiveDate) -> Vec<Session> {
    if to < from {
        return Vec::new();
    }
    let days = to.signed_duration_since(from).num_days();
    // Cap the reservation: a huge range should grow as it goes rather than reserve up front.
    let mut out = Vec::with_capacity(usize::try_from(days / 7 * 5 + 5).unwrap_or(0).min(1 << 16));
    // Not `iter_days`: it stops before `NaiveDate::MAX` (it needs a successor to yield a day).
    let mut d = from;
    loop {
        out.extend(session(d));
        match d.succ_opt() {
            Some(next) if next <= to => d = next,
            _ => return out,
        }
    }
}

/// The first session strictly after `date`.
pub fn next_session(date: NaiveDate) -> Option<Session> {
    let mut d = date;
    loop {
        d = d.succ_opt()?;
        if let Some(s) = session(d) {
            return Some(s);
        }
    }
}

/// The last session strictly before `date`.
pub fn prev_session(date: NaiveDate) -> Option<Session> {
    let mut d = date;
    loop {
        d = d.pred_opt()?;
        if let Some(s) = session(d) {
            return Some(s);
        }
    }
}

/// The America/New_York calendar date of an instant (clamped to chrono's range at the extremes).
pub fn ny_date(ts: i64) -> NaiveDate {
    let table = table();
    if let Some(i) = table.day_of_instant(ts) {
        return table.date(i);
    }
    let local = ts.saturating_add(ny_offset_at(ts));
    match DateTime::from_timestamp(local, 0) {
        Some(dt) => dt.date_naive(),
        None if ts < 0 => NaiveDate::MIN,
        None => NaiveDate::MAX,
    }
}

/// Where `ts` falls: pre-market, regular session, after hours, or closed.
pub fn classify(ts: i64) -> SessionPart {
    let table = table();
    let session = match table.day_of_instant(ts) {
        Some(i) => table.days[i],
        None => session(ny_date(ts)),
    };
    let Some(s) = session else {
        return SessionPart::Closed;
    };
    if ts < s.pre_open() {
        SessionPart::Closed
    } else if ts < s.open {
        SessionPart::Pre
    } else if ts < s.close {
        SessionPart::Regular
    } else if ts < s.post_close() {
        SessionPart::Post
    } else {
        SessionPart::Closed
    }
}

/// 09:30 America/New_York on `date` as Unix seconds, whether or not `date` is a session.
pub fn session_open_ts(date: NaiveDate) -> i64 {
    match session(date) {
        Some(s) => s.open,
        None => ny_local_to_utc(date, OPEN),
    }
}

/// What kind of day a date is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayKind {
    Closed,
    Full,
    /// Closes early; the close as seconds after New York midnight.
    Early(i64),
}

/// The precomputed calendar for the table years.
struct Table {
    /// `num_days_from_ce` of FIRST_YEAR-01-01.
    first_ce: i32,
    /// The session (if any) of each day from FIRST_YEAR-01-01 to LAST_YEAR-12-31.
    days: Vec<Option<Session>>,
    /// New York midnight of each of those days as Unix seconds, plus the midnight after the last.
    midnights: Vec<i64>,
}

impl Table {
    fn index(&self, date: NaiveDate) -> Option<usize> {
        let i = usize::try_from(date.num_days_from_ce() - self.first_ce).ok()?;
        (i < self.days.len()).then_some(i)
    }

    fn date(&self, i: usize) -> NaiveDate {
        // `i` came from `day_of_instant`, so it is small and the date exists.
        i32::try_from(i)
            .ok()
            .and_then(|i| NaiveDate::from_num_days_from_ce_opt(self.first_ce + i))
            .unwrap_or(NaiveDate::MIN)
    }

    /// Index of the New York day containing `ts`, if it is a table day.
    fn day_of_instant(&self, ts: i64) -> Option<usize> {
        let (first, last) = (*self.midnights.first()?, *self.midnights.last()?);
        if ts < first || ts >= last {
            return None;
        }
        // Days are 23–25 hours long, so the 24-hour guess is off by at most one either way.
        let mut i = usize::try_from((ts - first) / DAY)
            .ok()?
            .min(self.days.len() - 1);
        if self.midnights[i] > ts {
            i -= 1;
        } else if self.midnights[i + 1] <= ts {
            i += 1;
        }
        Some(i)
    }
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(build_table)
}

fn build_table() -> Table {
    let first = NaiveDate::from_ymd_opt(FIRST_YEAR, 1, 1).unwrap_or(NaiveDate::MIN);
    let end = NaiveDate::from_ymd_opt(LAST_YEAR + 1, 1, 1).unwrap_or(NaiveDate::MAX);
    let mut days = Vec::new();
    let mut midnights = Vec::new();
    for date in first.iter_days().take_while(|d| *d < end) {
        days.push(build_session(date, table_kind(date)));
        midnights.push(ny_local_to_utc(date, 0));
    }
    midnights.push(ny_local_to_utc(end, 0));
    Table {
        first_ce: first.num_days_from_ce(),
        days,
        midnights,
    }
}

fn build_session(date: NaiveDate, kind: DayKind) -> Option<Session> {
    let (close, early_close) = match kind {
        DayKind::Closed => return None,
        DayKind::Full => (CLOSE, false),
        DayKind::Early(close) => (close, true),
    };
    Some(Session {
        date,
        open: ny_local_to_utc(date, OPEN),
        close: ny_local_to_utc(date, close),
        early_close,
    })
}

fn listed(date: NaiveDate, list: &[(i32, u32, u32)]) -> bool {
    list.iter()
        .any(|&(y, m, d)| (date.year(), date.month(), date.day()) == (y, m, d))
}

/// Kind of a table day: the rules plus the one-offs.
fn table_kind(date: NaiveDate) -> DayKind {
    if listed(date, ONE_OFF_CLOSURES) {
        DayKind::Closed
    } else if listed(date, ONE_OFF_EARLY_CLOSES) && rule_kind(date) != DayKind::Closed {
        DayKind::Early(EARLY_CLOSE)
    } else {
        rule_kind(date)
    }
}

/// Kind of a day by the rules alone.
fn rule_kind(date: NaiveDate) -> DayKind {
    if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) || is_rule_holiday(date) {
        DayKind::Closed
    } else if let Some(close) = rule_early_close(date) {
        DayKind::Early(close)
    } else {
        DayKind::Full
    }
}

/// Whether a weekday is a full holiday by the rules.
fn is_rule_holiday(date: NaiveDate) -> bool {
    let (y, d, wd) = (date.year(), date.day(), date.weekday());
    let monday = wd == Weekday::Mon;
    // A Saturday holiday is taken on Friday and a Sunday one on Monday.
    let observed =
        |day: u32| d == day || (d + 1 == day && wd == Weekday::Fri) || (d == day + 1 && monday);
    match date.month() {
        // No Friday off for a Saturday New Year's Day: that Friday closes a fiscal year.
        1 => d == 1 || (d == 2 && monday) || (y >= 1998 && monday && (15..=21).contains(&d)),
        2 => monday && (15..=21).contains(&d),
        3 | 4 => wd == Weekday::Fri && good_friday(y) == Some(date),
        5 => monday && d >= 25,
        6 => y >= 2022 && observed(19),
        7 => observed(4),
        9 => monday && d <= 7,
        11 => wd == Weekday::Thu && (22..=28).contains(&d),
        12 => observed(25),
        _ => false,
    }
}

/// The early close of a weekday that is not a holiday, by the rules, as seconds after midnight.
fn rule_early_close(date: NaiveDate) -> Option<i64> {
    let (y, d, wd) = (date.year(), date.day(), date.weekday());
    let eve_close = if y <= 1992 {
        OLD_EARLY_CLOSE
    } else {
        EARLY_CLOSE
    };
    let early = match date.month() {
        // Reference data: no early close before 1995; until 2012 a Thursday Independence Day moved
        // it from Wednesday the 3rd to Friday the 5th.
        7 if y >= 1995 => {
            let thursday_fourth = (wd == Weekday::Wed && d == 3) || (wd == Weekday::Fri && d == 5);
            if y < 2013 && thursday_fourth {
                d == 5
            } else {
                d == 3 && wd != Weekday::Fri
            }
        }
        // The day after Thanksgiving closes early from 1992 (1990 and 1991 had full sessions).
        11 if y >= 1992 => wd == Weekday::Fri && (23..=29).contains(&d),
        // A Friday Christmas Eve is the observed Christmas holiday, never reaching here.
        12 => d == 24,
        _ => false,
    };
    early.then_some(eve_close)
}

/// Good Friday of `year` (Gregorian computus), or `None` where chrono has no such date.
fn good_friday(year: i32) -> Option<NaiveDate> {
    // Anonymous Gregorian algorithm; Euclidean division keeps it defined for negative years.
    let y = i64::from(year);
    let a = y.rem_euclid(19);
    let (b, c) = (y.div_euclid(100), y.rem_euclid(100));
    let (d, e) = (b.div_euclid(4), b.rem_euclid(4));
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    let easter =
        NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)?;
    easter.pred_opt()?.pred_opt()
}

/// Unix seconds of `secs` after midnight New York wall-clock time on `date`.
fn ny_local_to_utc(date: NaiveDate, secs: i64) -> i64 {
    let wall = date.and_time(NaiveTime::MIN).and_utc().timestamp() + secs;
    wall - ny_offset_local(date, secs)
}

/// New York's UTC offset (seconds, negative) at wall-clock `secs` after midnight on `date`.
fn ny_offset_local(date: NaiveDate, secs: i64) -> i64 {
    if date.year() >= RULE_DST_YEAR {
        return us_rule_offset_local(date, secs);
    }
    let Some(time) = u32::try_from(secs)
        .ok()
        .and_then(|s| NaiveTime::from_num_seconds_from_midnight_opt(s, 0))
    else {
        return EST;
    };
    match New_York.offset_from_local_datetime(&date.and_time(time)) {
        // Ambiguous only in the 01:00 hour of a fall-back day: take the earlier, daylight reading.
        LocalResult::Single(o) | LocalResult::Ambiguous(o, _) => {
            i64::from(o.fix().local_minus_utc())
        }
        // Only 02:00–03:00 of a spring-forward day; no session time falls there.
        LocalResult::None => EST,
    }
}

/// New York's UTC offset (seconds, negative) at instant `ts`.
fn ny_offset_at(ts: i64) -> i64 {
    if ts >= RULE_DST_FROM_TS {
        return us_rule_offset_at(ts);
    }
    match DateTime::from_timestamp(ts, 0) {
        Some(dt) => i64::from(
            New_York
                .offset_from_utc_datetime(&dt.naive_utc())
                .fix()
                .local_minus_utc(),
        ),
        None => EST,
    }
}

/// The US DST dates since 2007: second Sunday of March to first Sunday of November.
fn us_dst_dates(year: i32) -> Option<(NaiveDate, NaiveDate)> {
    Some((
        NaiveDate::from_weekday_of_month_opt(year, 3, Weekday::Sun, 2)?,
        NaiveDate::from_weekday_of_month_opt(year, 11, Weekday::Sun, 1)?,
    ))
}

fn us_rule_offset_local(date: NaiveDate, secs: i64) -> i64 {
    let Some((start, end)) = us_dst_dates(date.year()) else {
        return EST;
    };
    // Clocks change at 02:00 wall time; the repeated 01:00 hour is read as daylight time.
    let after_start = date > start || (date == start && secs >= 2 * HOUR);
    let before_end = date < end || (date == end && secs < 2 * HOUR);
    if after_start && before_end {
        EDT
    } else {
        EST
    }
}

fn us_rule_offset_at(ts: i64) -> i64 {
    // January is standard time, so reading the year at a fixed -5h is safe around New Year.
    let Some(year) = DateTime::from_timestamp(ts.saturating_add(EST), 0).map(|dt| dt.year()) else {
        return EST;
    };
    let Some((start, end)) = us_dst_dates(year) else {
        return EST;
    };
    let start_ts = start.and_time(NaiveTime::MIN).and_utc().timestamp() + 2 * HOUR - EST;
    let end_ts = end.and_time(NaiveTime::MIN).and_utc().timestamp() + 2 * HOUR - EDT;
    if (start_ts..end_ts).contains(&ts) {
        EDT
    } else {
        EST
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn rule_dst_start_constant_is_2038_new_year_est() {
        assert_eq!(
            RULE_DST_FROM_TS,
            ny_local_to_utc(date(RULE_DST_YEAR, 1, 1), 0)
        );
        assert_eq!(
            RULE_DST_FROM_TS,
            date(2038, 1, 1)
                .and_hms_opt(5, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp()
        );
    }

    #[test]
    fn us_rule_agrees_with_chrono_tz_2007_to_2037() {
        for year in 2007..RULE_DST_YEAR {
            for d in date(year, 1, 1)
                .iter_days()
                .take_while(|d| d.year() == year)
            {
                for secs in [0, OPEN, CLOSE, POST_CLOSE] {
                    assert_eq!(
                        us_rule_offset_local(d, secs),
                        ny_offset_local(d, secs),
                        "{d} {secs}"
                    );
                }
                let noon = d.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp();
                for ts in (noon - DAY..noon + DAY).step_by(HOUR as usize) {
                    let tz = i64::from(
                        New_York
                            .offset_from_utc_datetime(
                                &DateTime::from_timestamp(ts, 0).unwrap().naive_utc(),
                            )
                            .fix()
                            .local_minus_utc(),
                    );
                    assert_eq!(us_rule_offset_at(ts), tz, "{ts}");
                }
            }
        }
    }

    #[test]
    fn good_friday_known_years() {
        assert_eq!(good_friday(2024), Some(date(2024, 3, 29)));
        assert_eq!(good_friday(2025), Some(date(2025, 4, 18)));
        assert_eq!(good_friday(2035), Some(date(2035, 3, 23)));
        assert_eq!(good_friday(2038), Some(date(2038, 4, 23)));
        assert!(good_friday(i32::MAX).is_none());
        let _ = good_friday(-4000);
    }

    #[test]
    fn table_matches_rules_outside_one_offs() {
        let t = table();
        for (i, s) in t.days.iter().enumerate() {
            let d = t.date(i);
            if listed(d, ONE_OFF_CLOSURES) || listed(d, ONE_OFF_EARLY_CLOSES) {
                continue;
            }
            assert_eq!(*s, build_session(d, rule_kind(d)), "{d}");
        }
    }

    #[test]
    fn ny_date_table_agrees_with_chrono_tz() {
        let t = table();
        let (first, last) = (
            t.midnights[0] - 2 * DAY,
            *t.midnights.last().unwrap() + 2 * DAY,
        );
        let mut ts = first;
        while ts < last {
            let want = New_York.timestamp_opt(ts, 0).unwrap().date_naive();
            assert_eq!(ny_date(ts), want, "{ts}");
            assert_eq!(
                ny_date(ts + 59 * 60 + 59),
                New_York.timestamp_opt(ts + 3599, 0).unwrap().date_naive()
            );
            ts += HOUR;
        }
    }
}
