//! Average holding time of closed lots.

use super::TradeStats;
use vectura_core::time::DAY;

/// Mean time from a lot's buy to its sell, days (a partial sell weighs its share of the sell); `None`
/// when no lot was closed (rather than 0 days).
pub fn average_holding_days(s: &TradeStats) -> Option<f64> {
    (s.closed > 0).then(|| s.holding_secs / s.closed as f64 / DAY as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_days_over_closed_lots() {
        let s = TradeStats {
            closed: 2,
            holding_secs: (DAY * 3) as f64,
            ..TradeStats::default()
        };
        assert_eq!(average_holding_days(&s), Some(1.5));
        assert_eq!(average_holding_days(&TradeStats::default()), None);
    }
}
