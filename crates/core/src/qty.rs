//! Share quantities and the original's `floorN` rounding.

/// `floor(x × 10^dp) / 10^dp` in f64, the original's `roundDown` (dp = 4 in backtests, 9 live).
#[inline(always)]
pub fn floor_dp(x: f64, scale: f64) -> f64 {
    (x * scale).floor() / scale
}

/// The scale `10^dp` for [`floor_dp`]; `dp` is clamped to 0..=12.
pub fn scale_for(dp: u32) -> f64 {
    10f64.powi(dp.min(12) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn floors_like_the_original() {
        assert_eq!(floor_dp(600.0 / 50.0, 1e4), 12.0);
        assert_eq!(floor_dp(1.23456789, 1e4), 1.2345);
        assert_eq!(floor_dp(0.99999, 1.0), 0.0);
        assert_eq!(scale_for(4), 1e4);
        assert_eq!(scale_for(9), 1e9);
    }
}
