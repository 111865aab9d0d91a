//! Win rate over closed lots.

use super::TradeStats;

/// Closed lots sold above their cost (after commissions), percent of closed lots; `None` when no lot
/// was closed (rather than a 0 % that reads as every trade lost).
pub fn win_rate_pct(s: &TradeStats) -> Option<f64> {
    (s.closed > 0).then(|| s.wins as f64 / s.closed as f64 * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wins_over_closed_lots() {
        let s = TradeStats {
            closed: 4,
            wins: 3,
            ..TradeStats::default()
        };
        assert_eq!(win_rate_pct(&s), Some(75.0));
        let lost = TradeStats {
            closed: 2,
            ..TradeStats::default()
        };
        assert_eq!(win_rate_pct(&lost), Some(0.0));
        assert_eq!(win_rate_pct(&TradeStats::default()), None);
    }
}
