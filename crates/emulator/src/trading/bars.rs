//! Where the trading emulator's prices come from: the bars the market-data endpoints serve (a CSV or
//! replay file for the symbol, else the synthetic bars), looked up by time without the "only bars
//! that closed before now" filter of the REST endpoints (the engine itself decides what is due).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use vectura_core::calendar::{classify, ny_date, session, SessionPart};

use crate::synth::{self, EmuBar};

/// Synthetic days already generated, per (symbol, New York date).
pub(crate) type DayCache = HashMap<(String, NaiveDate), Arc<Vec<EmuBar>>>;

/// Days searched forward or backward for a bar (a long weekend with a holiday is 4 days).
const SEARCH_DAYS: u32 = 12;
/// Synthetic days kept before the cache is emptied.
const CACHE_DAYS: usize = 512;

/// A read-only view of the emulator's bar data.
pub(crate) struct BarSource<'a> {
    pub seed: u64,
    pub csv: &'a HashMap<String, Arc<Vec<EmuBar>>>,
    pub splits: &'a HashMap<String, Vec<(NaiveDate, f64)>>,
    pub extended: bool,
    pub cache: &'a RefCell<DayCache>,
}

impl BarSource<'_> {
    fn day(&self, symbol: &str, date: NaiveDate) -> Arc<Vec<EmuBar>> {
        let key = (symbol.to_string(), date);
        if let Some(d) = self.cache.borrow().get(&key) {
            return d.clone();
        }
        let bars = match session(date) {
            None => Vec::new(),
            Some(s) => {
                let mut b = synth::synthetic_day(self.seed, symbol, &s, self.extended);
                let f = self
                    .splits
                    .get(symbol)
                    .map_or(1.0, |sp| synth::split_factor_after(sp, date));
                synth::to_raw(&mut b, f);
                b
            }
        };
        let bars = Arc::new(bars);
        let mut cache = self.cache.borrow_mut();
        if cache.len() >= CACHE_DAYS {
            cache.clear();
        }
        cache.insert(key, bars.clone());
        bars
    }

    /// The first bar of `symbol` starting at or after `t` (Unix seconds), in the regular session
    /// only when `regular_only`.
    pub fn at_or_after(&self, symbol: &str, t: i64, regular_only: bool) -> Option<EmuBar> {
        let ok = |b: &EmuBar| !regular_only || classify(b.t) == SessionPart::Regular;
        if let Some(all) = self.csv.get(symbol) {
            let i = all.partition_point(|b| b.t < t);
            return all[i..].iter().find(|b| ok(b)).copied();
        }
        let mut d = ny_date(t);
        for _ in 0..SEARCH_DAYS {
            let day = self.day(symbol, d);
            let i = day.partition_point(|b| b.t < t);
            if let Some(b) = day[i..].iter().find(|b| ok(b)) {
                return Some(*b);
            }
            d = d.succ_opt()?;
        }
        None
    }

    /// The last bar of `symbol` starting at or before `t`.
    pub fn at_or_before(&self, symbol: &str, t: i64) -> Option<EmuBar> {
        if let Some(all) = self.csv.get(symbol) {
            let i = all.partition_point(|b| b.t <= t);
            return i.checked_sub(1).map(|i| all[i]);
        }
        let mut d = ny_date(t);
        for _ in 0..SEARCH_DAYS {
            let day = self.day(symbol, d);
            let i = day.partition_point(|b| b.t <= t);
            if let Some(i) = i.checked_sub(1) {
                return Some(day[i]);
            }
            d = d.pred_opt()?;
        }
        None
    }

    /// The last bar of `symbol` that closed at or before `now` (Unix seconds).
    pub fn last_closed(&self, symbol: &str, now: i64) -> Option<EmuBar> {
        self.at_or_before(symbol, now - 60)
    }

    /// The price of `symbol` at `now`: the open of the bar under way, else the last close, else
    /// (before the data starts) the first open.
    pub fn price_at(&self, symbol: &str, now: i64) -> Option<f64> {
        match self.at_or_before(symbol, now) {
            Some(b) if b.t + 60 > now => Some(b.o),
            Some(b) => Some(b.c),
            None => self.at_or_after(symbol, now, false).map(|b| b.o),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_bars_are_found_forward_backward_and_by_session_part() {
        let bars = vec![
            // 2024-07-01: 12:00Z is pre-market, 13:30Z the open, 13:31Z the next minute.
            EmuBar {
                t: 1_719_835_200,
                o: 1.0,
                h: 1.0,
                l: 1.0,
                c: 1.5,
                v: 1,
                n: 1,
                vw: 1.0,
            },
            EmuBar {
                t: 1_719_840_600,
                o: 2.0,
                h: 2.0,
                l: 2.0,
                c: 2.5,
                v: 1,
                n: 1,
                vw: 2.0,
            },
            EmuBar {
                t: 1_719_840_660,
                o: 3.0,
                h: 3.0,
                l: 3.0,
                c: 3.5,
                v: 1,
                n: 1,
                vw: 3.0,
            },
        ];
        let csv: HashMap<String, Arc<Vec<EmuBar>>> = [("X".to_string(), Arc::new(bars))].into();
        let splits = HashMap::new();
        let cache = RefCell::new(DayCache::new());
        let src = BarSource {
            seed: 1,
            csv: &csv,
            splits: &splits,
            extended: false,
            cache: &cache,
        };
        assert_eq!(src.at_or_after("X", 0, false).unwrap().o, 1.0);
        assert_eq!(src.at_or_after("X", 0, true).unwrap().o, 2.0);
        assert!(src.at_or_after("X", 1_719_840_661, false).is_none());
        assert_eq!(src.last_closed("X", 1_719_840_660).unwrap().o, 2.0);
        assert_eq!(src.price_at("X", 1_719_840_630), Some(2.0));
        assert_eq!(src.price_at("X", 1_719_840_720), Some(3.5));
        assert_eq!(src.price_at("X", 100), Some(1.0));
        // Synthetic bars: the next regular bar after a Saturday is Monday's open.
        let sat = 1_720_267_200; // 2024-07-06 12:00Z
        let b = src.at_or_after("SPY", sat, true).unwrap();
        assert_eq!(b.t, 1_720_445_400); // 2024-07-08 13:30Z
    }
}
