//! Annualised volatility of the daily time-weighted returns.

use super::daily::DailyReturns;
use super::TRADING_DAYS;

/// Sample standard deviation of daily returns × √252, percent; 0 below two days and when the deviation
/// is within the index's rounding ([`DailyReturns::noise_floor`]), so a run that never trades shows 0
/// rather than 6e-14 %.
pub fn volatility_pct(d: &DailyReturns) -> f64 {
    d.sd_above_noise()
        .map_or(0.0, |sd| sd * TRADING_DAYS.sqrt() * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annualised_sample_deviation_in_percent() {
        let mut d = DailyReturns::default();
        d.push(0.01, 0);
        d.push(-0.01, 0);
        // Sample sd of ±1 %: √(2 × 0.0001 / 1) = 1.4142 %.
        let v = volatility_pct(&d);
        assert!((v - 2f64.sqrt() * 252f64.sqrt()).abs() < 1e-9, "{v}");
    }

    #[test]
    fn rounding_reads_as_zero() {
        let mut d = DailyReturns::default();
        for r in [0.0, 2.2e-16, -1.1e-16, 0.0] {
            d.push(r, 1);
        }
        assert_eq!(volatility_pct(&d), 0.0);
        assert_eq!(volatility_pct(&DailyReturns::default()), 0.0);
    }
}
