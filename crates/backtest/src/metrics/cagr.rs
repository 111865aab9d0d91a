//! Compound annual growth of the time-weighted index.

/// `index^(365.25 / days) − 1` over `span_days` calendar days (at least one); −1 (−100 %) once the index
/// reached 0 (everything lost). `None` when the extrapolation to a year overflows (a span of hours that
/// multiplied the money): no growth rate rather than an infinite one.
pub fn cagr(index: f64, span_days: f64) -> Option<f64> {
    let years = span_days.max(1.0) / 365.25;
    if index > 0.0 {
        Some(index.powf(1.0 / years) - 1.0).filter(|g| g.is_finite())
    } else {
        Some(-1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compounds_over_the_span() {
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
        assert!(close(cagr(1.21, 2.0 * 365.25), 0.1));
        assert!(close(cagr(1.1, 365.25 / 2.0), 0.21));
        assert_eq!(cagr(1.0, 100.0), Some(0.0));
        assert_eq!(cagr(0.0, 100.0), Some(-1.0));
        let a_day = cagr(1.01, 0.0).unwrap();
        assert!(
            (a_day - (1.01f64.powf(365.25) - 1.0)).abs() < 1e-9,
            "a span under a day counts as one"
        );
        assert_eq!(cagr(10.0, 0.5), None, "10^365 overflows");
    }
}
