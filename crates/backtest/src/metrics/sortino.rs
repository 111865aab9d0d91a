//! Sortino ratio of the daily time-weighted returns.

use super::daily::DailyReturns;
use super::TRADING_DAYS;

/// `mean / downside deviation × √252`, the downside deviation `√(Σ min(r, 0)² / n)` (target 0). `None`
/// without a day and when no day fell by more than the index's rounding ([`DailyReturns::noise_floor`]).
pub fn sortino(d: &DailyReturns) -> Option<f64> {
    let down = d.downside().filter(|&x| x > d.noise_floor())?;
    Some(d.mean()? / down * TRADING_DAYS.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_over_downside_deviation_annualised() {
        let mut d = DailyReturns::default();
        for r in [0.01, -0.02, 0.03, -0.01] {
            d.push(r, 0);
        }
        let down = ((0.0004f64 + 0.0001) / 4.0).sqrt();
        let s = sortino(&d).unwrap();
        assert!((s - 0.0025 / down * 252f64.sqrt()).abs() < 1e-12, "{s}");
    }

    #[test]
    fn a_steady_fall_has_a_ratio_even_with_no_deviation() {
        let mut d = DailyReturns::default();
        for _ in 0..5 {
            d.push(-0.001, 0);
        }
        let s = sortino(&d).unwrap();
        assert!((s + 252f64.sqrt()).abs() < 1e-9, "{s}");
    }

    #[test]
    fn no_ratio_when_nothing_fell_beyond_rounding() {
        let mut up = DailyReturns::default();
        for r in [0.01, 0.02, -1.1e-16, 0.0] {
            up.push(r, 1);
        }
        assert_eq!(sortino(&up), None);
        assert_eq!(sortino(&DailyReturns::default()), None);
    }
}
