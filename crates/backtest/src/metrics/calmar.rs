//! Calmar ratio: growth per unit of the time-weighted index's worst fall.

/// The largest drawdown of the time-weighted index that rounding alone can produce when `flows` deposits
/// re-derived its factor between the peak and the trough: each adds at most 2 half-ulps to the ratio
/// trough / peak, the two products and the division 3 more (see [`super::daily`]), so `(2 + flows)·ε`.
pub fn drawdown_noise_floor(flows: u64) -> f64 {
    (2.0 + flows as f64) * f64::EPSILON
}

/// `cagr / max_drawdown` (both fractions); `None` when the drawdown is zero or within `floor`.
pub fn calmar(cagr: f64, max_drawdown: f64, floor: f64) -> Option<f64> {
    (max_drawdown > floor).then(|| cagr / max_drawdown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_over_drawdown() {
        assert_eq!(calmar(0.2, 0.1, drawdown_noise_floor(0)), Some(2.0));
        assert_eq!(calmar(-0.05, 0.25, drawdown_noise_floor(3)), Some(-0.2));
    }

    #[test]
    fn no_ratio_without_a_drawdown_beyond_rounding() {
        assert_eq!(calmar(0.1, 0.0, drawdown_noise_floor(0)), None);
        // A run without trades, 100 weekly deposits: the index wobbles by ~1e-14 from rounding.
        assert_eq!(calmar(1e-15, 1.1e-14, drawdown_noise_floor(100)), None);
        assert!(calmar(0.1, 1e-6, drawdown_noise_floor(100)).is_some());
    }
}
