//! Profit factor over closed lots.

use super::TradeStats;

/// Gross profit / gross loss over closed lots; `None` when nothing was lost (no lot closed, or every one
/// at a profit).
pub fn profit_factor(s: &TradeStats) -> Option<f64> {
    (s.gross_loss > 0.0).then(|| s.gross_profit / s.gross_loss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profit_over_loss() {
        let s = TradeStats {
            closed: 3,
            wins: 2,
            gross_profit: 30.0,
            gross_loss: 20.0,
            holding_secs: 0.0,
        };
        assert_eq!(profit_factor(&s), Some(1.5));
        let no_loss = TradeStats {
            closed: 2,
            wins: 2,
            gross_profit: 30.0,
            ..TradeStats::default()
        };
        assert_eq!(profit_factor(&no_loss), None);
        assert_eq!(profit_factor(&TradeStats::default()), None);
    }
}
