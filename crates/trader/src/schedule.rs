//! When the market is open: the broker's calendar (Alpaca's `/v2/calendar`) when it answers, the
//! built-in NYSE calendar (holidays, early closes, DST) otherwise, and for any day outside the window
//! the broker gave. The broker's calendar wins where they differ: it knows unscheduled closures (a
//! national day of mourning) that no rule does. The daemon's sleep follows the broker's clock
//! (`/v2/clock`): see [`next_wake`].

use std::collections::BTreeMap;

use chrono::NaiveDate;
use vectura_broker::{Broker, MarketClock};
use vectura_core::calendar;

/// Days before today the broker's calendar is read for (a restart decides no older bar).
const BACK_DAYS: u64 = 3;
/// Days after today the broker's calendar is read for.
const AHEAD_DAYS: u64 = 10;

/// Where a day's session came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The broker's calendar.
    Broker,
    /// The built-in calendar (offline, a broker error, or a day outside the broker's window).
    BuiltIn,
}

/// The regular sessions the trader trades in.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// The broker's days, from the first to the last date asked for: a date in that range with no
    /// entry is closed.
    days: BTreeMap<NaiveDate, (i64, i64)>,
    window: Option<(NaiveDate, NaiveDate)>,
    /// The New York date the broker's calendar was last read on.
    read_on: Option<NaiveDate>,
    /// After a failed read: when (Unix seconds) to ask again.
    retry_at: Option<i64>,
}

/// Seconds before a failed read of the broker's calendar is tried again (not every minute: each
/// try may wait out the client's timeout).
const RETRY_S: i64 = 1800;

impl Schedule {
    /// The built-in calendar only (until [`Schedule::refresh`] succeeds).
    pub fn built_in() -> Schedule {
        Schedule::default()
    }

    /// The open and close (Unix seconds) of `date`'s regular session, if there is one, and where that
    /// answer came from.
    pub fn session(&self, date: NaiveDate) -> (Option<(i64, i64)>, Source) {
        match self.window {
            Some((from, to)) if (from..=to).contains(&date) => {
                (self.days.get(&date).copied(), Source::Broker)
            }
            _ => (
                calendar::session(date).map(|s| (s.open, s.close)),
                Source::BuiltIn,
            ),
        }
    }

    /// Whether the instant `ts` falls in a regular session.
    pub fn is_regular(&self, ts: i64) -> bool {
        self.session(calendar::ny_date(ts))
            .0
            .is_some_and(|(open, close)| (open..close).contains(&ts))
    }

    /// The opening bell of `date`'s session (the built-in 09:30 New York time on a closed day).
    pub fn open_ts(&self, date: NaiveDate) -> i64 {
        self.session(date)
            .0
            .map_or_else(|| calendar::session_open_ts(date), |(open, _)| open)
    }

    /// Whether the broker's calendar should be read at `now`: not read yet on this New York day,
    /// and no failed read within the last half hour.
    pub fn due(&self, now: i64) -> bool {
        match self.retry_at {
            Some(t) => now >= t,
            None => self.read_on != Some(calendar::ny_date(now)),
        }
    }

    /// Reads the broker's calendar around `now`'s New York date; on an error keeps what it had (the
    /// built-in calendar beyond it) and says why. Logs every day where the broker and the built-in
    /// calendar differ.
    pub async fn refresh(&mut self, broker: &dyn Broker, now: i64) -> Result<(), String> {
        self.retry_at = Some(now + RETRY_S);
        let today = calendar::ny_date(now);
        let from = today
            .checked_sub_days(chrono::Days::new(BACK_DAYS))
            .unwrap_or(today);
        let to = today
            .checked_add_days(chrono::Days::new(AHEAD_DAYS))
            .unwrap_or(today);
        let got = broker.calendar(from, to).await.map_err(|e| {
            format!(
                "the broker's calendar is unavailable ({e}): the built-in NYSE calendar is used"
            )
        })?;
        let mut days = BTreeMap::new();
        for d in got {
            let (open, close) = (d.open.timestamp(), d.close.timestamp());
            if d.date < from || d.date > to || open >= close {
                return Err(format!(
                    "the broker's calendar has a day that cannot be traded on ({} open {} close {}): the built-in NYSE calendar is used",
                    d.date, d.open, d.close
                ));
            }
            days.insert(d.date, (open, close));
        }
        let mut day = from;
        while day <= to {
            let ours = calendar::session(day).map(|s| (s.open, s.close));
            let theirs = days.get(&day).copied();
            if ours != theirs {
                tracing::warn!(date = %day, broker = ?theirs, built_in = ?ours, "the broker's calendar differs from the built-in one: the broker's is used");
            }
            day = match day.succ_opt() {
                Some(d) => d,
                None => break,
            };
        }
        self.days = days;
        self.window = Some((from, to));
        self.read_on = Some(today);
        self.retry_at = None;
        Ok(())
    }
}

/// How long the daemon sleeps after a step at `now`, given the broker's clock when it answered: to
/// two seconds past the next minute while the market is open or opens within `lead_s` seconds (the
/// pre-market step), else until `lead_s` before the next open, but at most 15 minutes, so that halts,
/// resumes and fills done while closed are seen soon.
pub fn next_wake(now: i64, clock: Option<&MarketClock>, lead_s: i64) -> u64 {
    let minute = (60 - now.rem_euclid(60) + 2) as u64;
    let Some(c) = clock else {
        return minute;
    };
    if c.is_open {
        return minute;
    }
    let until = c.next_open.timestamp() - lead_s - now;
    if until <= 60 {
        return minute;
    }
    (until as u64).min(15 * 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn clock(is_open: bool, next_open: i64) -> MarketClock {
        MarketClock {
            now: Utc.timestamp_opt(0, 0).unwrap(),
            is_open,
            next_open: Utc.timestamp_opt(next_open, 0).unwrap(),
            next_close: Utc.timestamp_opt(next_open + 23_400, 0).unwrap(),
        }
    }

    #[test]
    fn the_daemon_wakes_each_minute_while_open_and_sleeps_in_bounded_steps_while_closed() {
        let now = 1_700_000_010; // 30 s past a minute
        assert_eq!(next_wake(now, None, 1800), 32, "no clock: every minute");
        assert_eq!(next_wake(now, Some(&clock(true, now + 86_400)), 1800), 32);
        // Closed, opening in 10 hours: 15 minutes at most.
        assert_eq!(next_wake(now, Some(&clock(false, now + 36_000)), 1800), 900);
        // Closed, the pre-market step due in 5 minutes: wake for it.
        assert_eq!(next_wake(now, Some(&clock(false, now + 2100)), 1800), 300);
        // Inside the pre-market lead: every minute.
        assert_eq!(next_wake(now, Some(&clock(false, now + 1000)), 1800), 32);
    }

    #[test]
    fn without_the_broker_the_built_in_calendar_answers() {
        let s = Schedule::built_in();
        let day = NaiveDate::from_ymd_opt(2024, 11, 29).unwrap(); // the day after Thanksgiving
        let (sess, src) = s.session(day);
        let (open, close) = sess.expect("an early close is a session");
        assert_eq!(src, Source::BuiltIn);
        assert_eq!(close - open, 3 * 3600 + 1800, "09:30 to 13:00");
        assert!(s.is_regular(open) && !s.is_regular(close) && !s.is_regular(open - 1));
        let christmas = NaiveDate::from_ymd_opt(2024, 12, 25).unwrap();
        assert_eq!(s.session(christmas).0, None);
        assert!(s.due(open));
    }
}
