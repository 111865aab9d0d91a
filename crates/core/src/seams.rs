//! The seams that let one code path serve backtests, the demo, tests and live trading (DESIGN.md §3):
//! a clock and a market-data feed, with their replay versions. The wall clock lives with the trader and
//! the broker seam (async: Alpaca and the simulated broker) in `vectura-broker`, because core does no
//! I/O and never reads the system time.

use crate::bar::{Bar, BarSeries};
use crate::symbol::Symbol;

/// Where "now" comes from. The trader asks this, never the system, so a replay is deterministic.
pub trait Clock {
    /// The current instant, Unix seconds UTC.
    fn now(&self) -> i64;
}

/// A clock driven by the data: it reads whatever instant the replay last set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayClock {
    now: i64,
}

impl ReplayClock {
    /// A clock at `start`.
    pub fn new(start: i64) -> Self {
        ReplayClock { now: start }
    }

    /// Moves the clock forward to `ts` (never backwards: a replay cannot un-happen).
    pub fn advance_to(&mut self, ts: i64) {
        self.now = self.now.max(ts);
    }
}

impl Clock for ReplayClock {
    fn now(&self) -> i64 {
        self.now
    }
}

/// A source of closed bars in time order, one symbol or many.
pub trait Feed {
    /// The next closed bar, or `None` when the feed is exhausted (a replay) or has nothing yet (live).
    fn next_bar(&mut self) -> Option<(&Symbol, Bar)>;
}

/// Replays one symbol's bars, each exactly once, in order.
#[derive(Debug, Clone)]
pub struct ReplayFeed {
    symbol: Symbol,
    bars: BarSeries,
    next: usize,
}

impl ReplayFeed {
    /// A feed over `bars` for `symbol`.
    pub fn new(symbol: Symbol, bars: BarSeries) -> Self {
        ReplayFeed {
            symbol,
            bars,
            next: 0,
        }
    }

    /// Bars not yet delivered.
    pub fn remaining(&self) -> usize {
        self.bars.len() - self.next
    }
}

impl Feed for ReplayFeed {
    fn next_bar(&mut self) -> Option<(&Symbol, Bar)> {
        if self.next >= self.bars.len() {
            return None;
        }
        let b = self.bars.get(self.next);
        self.next += 1;
        Some((&self.symbol, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_feed_delivers_each_bar_once_and_drives_the_clock() {
        let mut s = BarSeries::default();
        for t in [60, 120, 180] {
            s.push(Bar::flat(t, 10.0 + t as f64)).unwrap();
        }
        let mut feed = ReplayFeed::new(Symbol::new("SPY").unwrap(), s);
        let mut clock = ReplayClock::new(0);
        let mut seen = vec![];
        while let Some((sym, bar)) = feed.next_bar() {
            assert_eq!(sym.as_str(), "SPY");
            clock.advance_to(bar.ts);
            seen.push((clock.now(), bar.close));
        }
        assert_eq!(seen, vec![(60, 70.0), (120, 130.0), (180, 190.0)]);
        assert_eq!(feed.remaining(), 0);
        clock.advance_to(5);
        assert_eq!(clock.now(), 180, "the clock never goes back");
    }
}
