//! Sharpe ratio of the daily time-weighted returns.

use super::daily::DailyReturns;
use super::TRADING_DAYS;

/// `mean / sd × √252` (risk-free rate 0, sample deviation). `None` below two days, and when the deviation
/// is zero or within the index's rounding ([`DailyReturns::noise_floor`]): a run that never trades has
/// no ratio rather than one made of rounding.
pub fn sharpe(d: &DailyReturns) -> Option<f64> {
    let sd = d.sd_above_noise()?;
    Some(d.mean()? / sd * TRADING_DAYS.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_over_deviation_annualised() {
        let mut d = DailyReturns::default();
        for r in [0.01, -0.005, 0.02, 0.0] {
            d.push(r, 0);
        }
        let mean = 0.025 / 4.0;
        let sd = ([0.01, -0.005, 0.02, 0.0]
            .iter()
            .map(|r: &f64| (r - mean).powi(2))
            .sum::<f64>()
            / 3.0)
            .sqrt();
        let s = sharpe(&d).unwrap();
        assert!((s - mean / sd * 252f64.sqrt()).abs() < 1e-12, "{s}");
    }

    #[test]
    fn no_ratio_without_deviation_or_from_rounding() {
        let mut flat = DailyReturns::default();
        for _ in 0..10 {
            flat.push(0.0, 0);
        }
        assert_eq!(sharpe(&flat), None);
        let mut noise = DailyReturns::default();
        for r in [0.0, 2.2e-16, 0.0, 1.1e-16, 2.2e-16, 0.0] {
            noise.push(r, 1);
        }
        assert_eq!(sharpe(&noise), None, "±1 ulp is not a return");
        let mut one = DailyReturns::default();
        one.push(0.01, 0);
        assert_eq!(sharpe(&one), None, "one day has no deviation");
    }
}
