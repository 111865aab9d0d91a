//! Bars of several symbols merged into one time-ordered feed, for driving the simulated broker from
//! stored or bundled bars (offline paper trading, the demo, tests).

use vectura_core::{Bar, BarSeries};

/// Replays each symbol's bars once, all symbols merged by bar time (ties in the order the symbols
/// were given).
#[derive(Debug, Clone)]
pub struct Replay {
    feeds: Vec<(String, BarSeries)>,
    next: Vec<usize>,
}

impl Replay {
    /// A replay of `feeds`, each `(symbol, bars in time order)`.
    pub fn new(feeds: Vec<(String, BarSeries)>) -> Replay {
        let next = vec![0; feeds.len()];
        Replay { feeds, next }
    }

    /// The next bar in time order, or `None` when every feed is exhausted.
    pub fn next_bar(&mut self) -> Option<(&str, Bar)> {
        let mut best: Option<(usize, i64)> = None;
        for (k, (_, s)) in self.feeds.iter().enumerate() {
            let i = self.next[k];
            if i < s.len() && best.is_none_or(|(_, t)| s.ts[i] < t) {
                best = Some((k, s.ts[i]));
            }
        }
        let (k, _) = best?;
        let i = self.next[k];
        self.next[k] += 1;
        let (sym, s) = &self.feeds[k];
        Some((sym.as_str(), s.get(i)))
    }

    /// The time of the next bar, without consuming it.
    pub fn peek_ts(&self) -> Option<i64> {
        self.feeds
            .iter()
            .zip(&self.next)
            .filter(|((_, s), &i)| i < s.len())
            .map(|((_, s), &i)| s.ts[i])
            .min()
    }

    /// Bars not yet delivered, all symbols.
    pub fn remaining(&self) -> usize {
        self.feeds
            .iter()
            .zip(&self.next)
            .map(|((_, s), &i)| s.len() - i)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(ts: &[i64]) -> BarSeries {
        let mut s = BarSeries::default();
        for &t in ts {
            s.push(Bar::flat(t, t as f64)).unwrap();
        }
        s
    }

    #[test]
    fn merges_by_time_with_ties_in_symbol_order() {
        let mut r = Replay::new(vec![
            ("A".into(), series(&[60, 180])),
            ("B".into(), series(&[60, 120, 240])),
        ]);
        assert_eq!(r.remaining(), 5);
        assert_eq!(r.peek_ts(), Some(60));
        let mut seen = vec![];
        while let Some((s, b)) = r.next_bar() {
            seen.push((s.to_string(), b.ts));
        }
        let want: Vec<(String, i64)> = [("A", 60), ("B", 60), ("B", 120), ("A", 180), ("B", 240)]
            .iter()
            .map(|(s, t)| (s.to_string(), *t))
            .collect();
        assert_eq!(seen, want);
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.peek_ts(), None);
    }
}
