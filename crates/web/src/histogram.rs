//! The distribution of round-trip P&L as the trades page charts it: bins of a round width (1, 2 or
//! 5 times a power of ten) whose edges are multiples of it, so that zero is always an edge and no
//! bin mixes wins with losses.

use serde::Serialize;
use utoipa::ToSchema;

/// Bins at most.
pub const MAX_BINS: usize = 40;

/// Counts of values per bin `[lo[i], lo[i] + width)` (the last bin holds its upper edge too).
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Histogram {
    /// Each bin's lower edge.
    pub lo: Vec<f64>,
    /// Width of every bin (0 without values).
    pub width: f64,
    pub count: Vec<u64>,
}

/// The smallest of 1, 2, 5 × 10^k at or above `x` (> 0).
fn round_width(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|w| *w >= x * (1.0 - 1e-12))
        .unwrap_or(10.0 * p)
}

impl Histogram {
    /// The histogram of `values` (non-finite ones left out): about √n bins, at most [`MAX_BINS`].
    pub fn of(values: &[f64]) -> Histogram {
        let finite = || values.iter().copied().filter(|v| v.is_finite());
        let n = finite().count();
        if n == 0 {
            return Histogram::default();
        }
        let (min, max) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let bins = ((n as f64).sqrt().ceil() as usize).clamp(1, MAX_BINS);
        // A single value (or all equal): one bin around it, a cent wide at least.
        let span = (max - min).max(0.01);
        let mut width = round_width(span / bins as f64);
        let mut start = (min / width).floor() * width;
        // Rounding up the width can need one more bin than planned; widen until they fit.
        while ((max - start) / width).floor() as usize >= MAX_BINS {
            width = round_width(width * 1.5);
            start = (min / width).floor() * width;
        }
        let k = ((max - start) / width).floor() as usize + 1;
        let mut count = vec![0u64; k];
        for v in finite() {
            let i = (((v - start) / width).floor() as usize).min(k - 1);
            count[i] += 1;
        }
        Histogram {
            lo: (0..k).map(|i| start + i as f64 * width).collect(),
            width,
            count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(round_width(0.3), 0.5);
        assert_eq!(round_width(1.0), 1.0);
        assert_eq!(round_width(1.1), 2.0);
        assert_eq!(round_width(37.0), 50.0);
        assert_eq!(round_width(600.0), 1000.0);
    }

    #[test]
    fn every_value_is_counted_once_and_zero_is_an_edge() {
        let v: Vec<f64> = (-30..=70).map(|i| i as f64 * 1.37).collect();
        let h = Histogram::of(&v);
        assert_eq!(h.count.iter().sum::<u64>(), v.len() as u64);
        assert!(h.lo.len() <= MAX_BINS);
        assert!(h.lo.iter().any(|&e| e.abs() < 1e-9), "{:?}", h.lo);
        // No bin holds both a loss and a win.
        for (i, &lo) in h.lo.iter().enumerate() {
            let hi = lo + h.width;
            let inside: Vec<f64> = v
                .iter()
                .copied()
                .filter(|&x| x >= lo && (x < hi || i + 1 == h.lo.len()))
                .collect();
            assert!(
                inside.iter().all(|&x| x < 0.0) || inside.iter().all(|&x| x >= 0.0),
                "{lo}: {inside:?}"
            );
        }
        assert!(h.lo[0] <= v[0] && v[v.len() - 1] <= h.lo[h.lo.len() - 1] + h.width);
    }

    #[test]
    fn no_value_no_bin_one_value_one_bin_and_non_finite_left_out() {
        assert_eq!(Histogram::of(&[]), Histogram::default());
        let h = Histogram::of(&[12.5, f64::NAN, f64::INFINITY]);
        assert_eq!(h.count, vec![1]);
        assert!(h.lo[0] <= 12.5 && 12.5 < h.lo[0] + h.width);
    }

    #[test]
    fn a_wide_spread_of_many_values_keeps_to_the_bin_limit() {
        let mut v: Vec<f64> = (0..10_000).map(|i| (i % 97) as f64 * 0.01).collect();
        v.push(-5_000.0);
        v.push(12_345.0);
        let h = Histogram::of(&v);
        assert!(h.lo.len() <= MAX_BINS, "{}", h.lo.len());
        assert_eq!(h.count.iter().sum::<u64>(), v.len() as u64);
    }
}
