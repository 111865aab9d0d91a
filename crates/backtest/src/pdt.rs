//! Pattern-day-trader rules: FINRA's (as it stood until 2026-07-06) and the original's 6-calendar-day quirk.

use vectura_core::calendar;
use vectura_core::time::utc_day;

/// Equity below which the rule applies, dollars.
pub const PDT_EQUITY: f64 = 25_000.0;
/// Day trades in the window at which a further day trade is held.
pub const PDT_LIMIT: u32 = 3;
/// 2026-07-06 00:00 America/New_York (04:00 UTC): FINRA's PDT rule gave way to intraday margin standards.
pub const PDT_END_TS: i64 = 1_783_310_400;

/// The original's PDT list (§2.7): `(UTC day, round trips)` entries in `[D−5, D]`, at most five kept.
#[derive(Debug, Clone)]
pub struct V1Pdt {
    days: [(i64, u32); 6],
    n: usize,
    rt_day: i64,
    rt_count: u32,
}

impl Default for V1Pdt {
    fn default() -> Self {
        V1Pdt {
            days: [(0, 0); 6],
            n: 0,
            rt_day: i64::MIN,
            rt_count: 0,
        }
    }
}

impl V1Pdt {
    /// Records a trade at `ts`; `day_trade` when it is a sell of a lot bought the same UTC day.
    pub fn record(&mut self, ts: i64, day_trade: bool) {
        let day = utc_day(ts);
        if self.rt_day != day {
            self.rt_day = day;
            self.rt_count = 0;
        }
        if day_trade {
            self.rt_count += 1;
        }
        // Keep entries in [day−5, day], set or insert today, sort by date, keep the last five.
        let lo = day - 5;
        let mut k = 0;
        let mut found = None;
        for j in 0..self.n {
            let (d, r) = self.days[j];
            if d >= lo && d <= day {
                self.days[k] = (d, r);
                if d == day && found.is_none() {
                    found = Some(k);
                }
                k += 1;
            }
        }
        match found {
            Some(f) => self.days[f].1 = self.rt_count,
            None => {
                self.days[k] = (day, self.rt_count);
                k += 1;
            }
        }
        self.days[..k].sort_by_key(|e| e.0);
        if k > 5 {
            self.days.copy_within(k - 5..k, 0);
            k = 5;
        }
        self.n = k;
    }

    /// May a sell of a lot opened at `lot_opened` go out at `now` with tick-start equity `equity`?
    pub fn allow_sell(&self, lot_opened: i64, now: i64, equity: f64) -> bool {
        if !(equity < PDT_EQUITY) {
            return true;
        }
        let day = utc_day(now);
        let sum: u32 = self.days[..self.n]
            .iter()
            .filter(|e| e.0 >= day - 5 && e.0 <= day)
            .map(|e| e.1)
            .sum();
        sum < PDT_LIMIT || utc_day(lot_opened) != day
    }

    /// The list as `(UTC date, round trips)` for reports.
    pub fn entries(&self) -> Vec<(chrono::NaiveDate, u32)> {
        self.days[..self.n]
            .iter()
            .map(|&(d, r)| (vectura_core::time::date_utc(d * 86_400), r))
            .collect()
    }
}

/// FINRA's rule: a day trade is a sell of shares bought the same New York trading day; with
/// [`PDT_LIMIT`] day trades in the last five business days (today included) and equity below
/// [`PDT_EQUITY`], a sell that would be one more is held.
#[derive(Debug, Clone, Default)]
pub struct FinraPdt {
    /// Day trades per New York session date, newest last; only the last five sessions are kept.
    recent: Vec<(chrono::NaiveDate, u32)>,
    window_for: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
}

impl FinraPdt {
    /// The first date of the five-session window that ends on `day`.
    fn window_start(&mut self, day: chrono::NaiveDate) -> chrono::NaiveDate {
        if let Some((d, s)) = self.window_for {
            if d == day {
                return s;
            }
        }
        let mut s = day;
        for _ in 0..4 {
            match calendar::prev_session(s) {
                Some(p) => s = p.date,
                None => break,
            }
        }
        self.window_for = Some((day, s));
        s
    }

    /// Records a trade at `ts`; `day_trade` when it sells shares bought the same New York day.
    pub fn record(&mut self, ts: i64, day_trade: bool) {
        if !day_trade {
            return;
        }
        let day = calendar::ny_date(ts);
        match self.recent.last_mut() {
            Some(e) if e.0 == day => e.1 += 1,
            _ => self.recent.push((day, 1)),
        }
        let start = self.window_start(day);
        self.recent.retain(|e| e.0 >= start);
    }

    /// Day trades in the five business days ending on `now`'s New York date.
    pub fn count(&mut self, now: i64) -> u32 {
        let day = calendar::ny_date(now);
        let start = self.window_start(day);
        self.recent
            .iter()
            .filter(|e| e.0 >= start && e.0 <= day)
            .map(|e| e.1)
            .sum()
    }

    /// May a sell of a lot opened at `lot_opened` go out at `now` with equity `equity`?
    pub fn allow_sell(&self, lot_opened: i64, now: i64, equity: f64) -> bool {
        if !(equity < PDT_EQUITY) {
            return true;
        }
        let day = calendar::ny_date(now);
        if calendar::ny_date(lot_opened) != day {
            return true;
        }
        let start = match self.window_for {
            Some((d, s)) if d == day => s,
            _ => {
                let mut s = day;
                for _ in 0..4 {
                    match calendar::prev_session(s) {
                        Some(p) => s = p.date,
                        None => break,
                    }
                }
                s
            }
        };
        let n: u32 = self
            .recent
            .iter()
            .filter(|e| e.0 >= start && e.0 <= day)
            .map(|e| e.1)
            .sum();
        n < PDT_LIMIT
    }
}

/// The rule a run applies.
#[derive(Debug, Clone)]
pub enum Pdt {
    Off,
    /// FINRA's rule, applied to bars before `until` (Unix s).
    Finra {
        rule: FinraPdt,
        until: i64,
    },
    V1(V1Pdt),
}

impl Pdt {
    /// Records an executed trade.
    pub fn record(&mut self, ts: i64, day_trade_utc: bool, day_trade_ny: bool) {
        match self {
            Pdt::Off => {}
            Pdt::Finra { rule, .. } => rule.record(ts, day_trade_ny),
            Pdt::V1(v) => v.record(ts, day_trade_utc),
        }
    }

    /// May this sell go out?
    pub fn allow_sell(&self, lot_opened: i64, now: i64, equity: f64) -> bool {
        match self {
            Pdt::Off => true,
            Pdt::Finra { rule, until } => now >= *until || rule.allow_sell(lot_opened, now, equity),
            Pdt::V1(v) => v.allow_sell(lot_opened, now, equity),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn ts(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
            .and_utc()
            .timestamp()
    }

    #[test]
    fn finra_three_day_trades_in_five_business_days_hold_a_fourth_below_25k() {
        // Mon 2024-03-04 .. Fri 2024-03-08: one day trade Mon, Tue, Wed.
        let mut p = FinraPdt::default();
        for d in [4, 5, 6] {
            p.record(ts(2024, 3, d, 15, 0), true);
        }
        let lot_today = ts(2024, 3, 8, 15, 0);
        let now = ts(2024, 3, 8, 16, 0);
        assert_eq!(p.count(now), 3);
        assert!(
            !p.allow_sell(lot_today, now, 24_999.99),
            "a 4th day trade is held below 25 000"
        );
        assert!(p.allow_sell(lot_today, now, 25_000.0), "allowed at 25 000");
        assert!(
            p.allow_sell(ts(2024, 3, 7, 15, 0), now, 1_000.0),
            "a lot from yesterday is no day trade"
        );
        // Five business days later (Mon 2024-03-11 drops Mon 03-04 out of the window) only 2 remain.
        let later = ts(2024, 3, 11, 15, 0);
        assert_eq!(p.count(later), 2);
        assert!(p.allow_sell(later - 60, later, 1_000.0));
    }

    #[test]
    fn finra_window_counts_business_days_not_calendar_days() {
        // Thu 2024-03-28, then Good Friday (closed) and a weekend: Mon..Wed after still see Thursday's.
        let mut p = FinraPdt::default();
        p.record(ts(2024, 3, 26, 15, 0), true);
        p.record(ts(2024, 3, 27, 15, 0), true);
        p.record(ts(2024, 3, 28, 15, 0), true);
        // 2024-04-02 (Tue): sessions 03-26, 27, 28, 04-01, 04-02 → all three still in the window.
        let now = ts(2024, 4, 2, 15, 0);
        assert_eq!(p.count(now), 3);
        assert!(!p.allow_sell(now - 60, now, 10_000.0));
        // Wed 04-03: the window starts 03-27, so two remain.
        assert_eq!(p.count(ts(2024, 4, 3, 15, 0)), 2);
    }

    #[test]
    fn v1_uses_six_calendar_days_and_utc_days() {
        let mut p = V1Pdt::default();
        for d in [1, 2, 3] {
            p.record(ts(2024, 3, d, 15, 0), true);
        }
        let now = ts(2024, 3, 6, 15, 0);
        assert!(
            !p.allow_sell(now - 60, now, 1000.0),
            "03-01 is inside [D-5, D]"
        );
        let now = ts(2024, 3, 7, 15, 0);
        assert!(
            p.allow_sell(now - 60, now, 1000.0),
            "03-01 left the 6-calendar-day window"
        );
        assert_eq!(p.entries().len(), 3);
    }

    #[test]
    fn auto_stops_applying_on_2026_07_06() {
        let mut rule = FinraPdt::default();
        for d in [29, 30] {
            rule.record(ts(2026, 6, d, 15, 0), true);
        }
        rule.record(ts(2026, 7, 2, 15, 0), true);
        let p = Pdt::Finra {
            rule,
            until: PDT_END_TS,
        };
        let before = ts(2026, 7, 2, 16, 0);
        assert!(!p.allow_sell(before - 60, before, 1000.0));
        let after = ts(2026, 7, 6, 15, 0);
        assert!(p.allow_sell(after - 60, after, 1000.0));
        assert_eq!(PDT_END_TS, ts(2026, 7, 6, 4, 0));
    }
}
