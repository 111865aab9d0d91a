//! The AVX2 quiet-bar kernel: one fused pass per 8 bars over prices only.
//!
//! Equity per bar is the lot values summed from 0.0 in lot order plus cash (vectura-v1) or cash plus total
//! shares × price (our mode), computed for 4 bars per register with no fused multiply-add, so each lane
//! rounds exactly as the scalar code does. The ordered sum of invested ratios runs in the same pass as a
//! scalar chain; it is speculative: if the block turns out to make a new peak (or holds bad equity), the
//! caller discards it and replays the block bar by bar.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Bars ahead of the scan that [`prefetch_block`] asks memory for: about 8 blocks of work hide a miss.
pub const PREFETCH_AHEAD: usize = 512;

/// Asks for the cache lines of `x[k..k + 64]` (the part inside `x`) ahead of use. The quiet scan
/// reads timestamps sparsely (a block's last stamp, a search where a day ends), a pattern the
/// hardware's stream prefetch does not follow, so each such read would otherwise wait on memory;
/// and a prefetch also walks the page tables early, which a fresh page of closes needs too.
#[inline(always)]
pub fn prefetch_block<T>(x: &[T], k: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let per_line = (64 / std::mem::size_of::<T>().max(1)).max(1);
        let end = x.len().min(k.saturating_add(64));
        let mut j = k;
        while j < end {
            // SAFETY: a prefetch changes no program state and cannot fault; the address is in `x`.
            #[allow(unused_unsafe)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(x.as_ptr().add(j).cast::<i8>())
            };
            j += per_line;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, k);
}

/// What one block contributed, to be committed by the caller if `clean`.
#[derive(Debug, Clone, Copy)]
pub struct BlockOut {
    /// Bars consumed (all quiet); a multiple of 8.
    pub bars: usize,
    /// The ordered sum continued over those bars (exact mode).
    pub sum: f64,
    /// Four lane sums to add (fast mode).
    pub lanes: [f64; 4],
    pub lo: f64,
    pub hi: f64,
    pub in_market: u64,
    /// No bar made a new peak and every equity was finite and non-negative.
    pub clean: bool,
}

/// Parameters of a block.
#[derive(Debug, Clone, Copy)]
pub struct BlockIn<'a> {
    pub cash: f64,
    pub lots: &'a [f64],
    pub total: f64,
    pub lo: f64,
    pub hi: f64,
    pub peak: f64,
    pub twr_k: f64,
    pub twr_peak: f64,
    pub sum: f64,
}

/// Runs whole groups of 8 quiet bars of `close` (and `low`/`high` with `TOUCH`) from 0, at most `max`
/// bars; stops at the first group holding a non-quiet bar.
///
/// # Safety
/// The CPU must support AVX2; `close` (and `low`/`high` with `TOUCH`) must hold at least `max` bars.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub unsafe fn block_avx2<const EXACT: bool, const TOUCH: bool>(
    close: &[f64],
    low: &[f64],
    high: &[f64],
    max: usize,
    a: &BlockIn,
    eq_out: &mut [f64],
) -> BlockOut {
    let max = max.min(eq_out.len());
    let max = max.min(close.len()).min(if TOUCH {
        low.len().min(high.len())
    } else {
        usize::MAX
    });
    let cashv = _mm256_set1_pd(a.cash);
    let totv = _mm256_set1_pd(a.total);
    let lov = _mm256_set1_pd(a.lo);
    let hiv = _mm256_set1_pd(a.hi);
    let peakv = _mm256_set1_pd(a.peak);
    let kv = _mm256_set1_pd(a.twr_k);
    let twrv = _mm256_set1_pd(a.twr_peak);
    let zero = _mm256_setzero_pd();
    let inf = _mm256_set1_pd(f64::INFINITY);
    let mut vlo = inf;
    let mut vhi = _mm256_set1_pd(f64::NEG_INFINITY);
    let mut bad = _mm256_setzero_pd();
    let mut nz = 0u64;
    let mut s = a.sum;
    let mut lane0 = zero;
    let mut lane1 = zero;
    let mut i = 0usize;
    let cp = close.as_ptr();
    while i + 8 <= max {
        let p0 = _mm256_loadu_pd(cp.add(i));
        let p1 = _mm256_loadu_pd(cp.add(i + 4));
        let q = if TOUCH {
            let l0 = _mm256_loadu_pd(low.as_ptr().add(i));
            let l1 = _mm256_loadu_pd(low.as_ptr().add(i + 4));
            let h0 = _mm256_loadu_pd(high.as_ptr().add(i));
            let h1 = _mm256_loadu_pd(high.as_ptr().add(i + 4));
            let q0 = _mm256_and_pd(
                _mm256_cmp_pd::<_CMP_GT_OQ>(l0, lov),
                _mm256_cmp_pd::<_CMP_LT_OQ>(h0, hiv),
            );
            let q1 = _mm256_and_pd(
                _mm256_cmp_pd::<_CMP_GT_OQ>(l1, lov),
                _mm256_cmp_pd::<_CMP_LT_OQ>(h1, hiv),
            );
            _mm256_movemask_pd(q0) | (_mm256_movemask_pd(q1) << 4)
        } else {
            let q0 = _mm256_and_pd(
                _mm256_cmp_pd::<_CMP_GT_OQ>(p0, lov),
                _mm256_cmp_pd::<_CMP_LT_OQ>(p0, hiv),
            );
            let q1 = _mm256_and_pd(
                _mm256_cmp_pd::<_CMP_GT_OQ>(p1, lov),
                _mm256_cmp_pd::<_CMP_LT_OQ>(p1, hiv),
            );
            _mm256_movemask_pd(q0) | (_mm256_movemask_pd(q1) << 4)
        };
        if q != 0xFF {
            break;
        }
        let (e0, e1) = if EXACT {
            let mut a0 = zero;
            let mut a1 = zero;
            for &sh in a.lots {
                let shv = _mm256_set1_pd(sh);
                a0 = _mm256_add_pd(a0, _mm256_mul_pd(p0, shv));
                a1 = _mm256_add_pd(a1, _mm256_mul_pd(p1, shv));
            }
            (_mm256_add_pd(cashv, a0), _mm256_add_pd(cashv, a1))
        } else {
            (
                _mm256_add_pd(cashv, _mm256_mul_pd(totv, p0)),
                _mm256_add_pd(cashv, _mm256_mul_pd(totv, p1)),
            )
        };
        _mm256_storeu_pd(eq_out.as_mut_ptr().add(i), e0);
        _mm256_storeu_pd(eq_out.as_mut_ptr().add(i + 4), e1);
        // (e − cash) / e where e > 0, else 0 (the original skips non-positive equity).
        let r0 = _mm256_and_pd(
            _mm256_div_pd(_mm256_sub_pd(e0, cashv), e0),
            _mm256_cmp_pd::<_CMP_GT_OQ>(e0, zero),
        );
        let r1 = _mm256_and_pd(
            _mm256_div_pd(_mm256_sub_pd(e1, cashv), e1),
            _mm256_cmp_pd::<_CMP_GT_OQ>(e1, zero),
        );
        vlo = _mm256_min_pd(vlo, _mm256_min_pd(e0, e1));
        vhi = _mm256_max_pd(vhi, _mm256_max_pd(e0, e1));
        // Not (0 ≤ e < ∞) — NaN included — or a new peak of equity or of the time-weighted index.
        let ok0 = _mm256_and_pd(
            _mm256_cmp_pd::<_CMP_GE_OQ>(e0, zero),
            _mm256_cmp_pd::<_CMP_LT_OQ>(e0, inf),
        );
        let ok1 = _mm256_and_pd(
            _mm256_cmp_pd::<_CMP_GE_OQ>(e1, zero),
            _mm256_cmp_pd::<_CMP_LT_OQ>(e1, inf),
        );
        let pk0 = _mm256_or_pd(
            _mm256_cmp_pd::<_CMP_GT_OQ>(e0, peakv),
            _mm256_cmp_pd::<_CMP_GT_OQ>(_mm256_mul_pd(kv, e0), twrv),
        );
        let pk1 = _mm256_or_pd(
            _mm256_cmp_pd::<_CMP_GT_OQ>(e1, peakv),
            _mm256_cmp_pd::<_CMP_GT_OQ>(_mm256_mul_pd(kv, e1), twrv),
        );
        let not_ok = _mm256_xor_pd(
            _mm256_and_pd(ok0, ok1),
            _mm256_castsi256_pd(_mm256_set1_epi64x(-1)),
        );
        bad = _mm256_or_pd(bad, _mm256_or_pd(not_ok, _mm256_or_pd(pk0, pk1)));
        let n0 = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_NEQ_UQ>(e0, cashv))
            | (_mm256_movemask_pd(_mm256_cmp_pd::<_CMP_NEQ_UQ>(e1, cashv)) << 4);
        nz += (n0 as u32).count_ones() as u64;
        if EXACT {
            let mut buf = [0.0f64; 8];
            _mm256_storeu_pd(buf.as_mut_ptr(), r0);
            _mm256_storeu_pd(buf.as_mut_ptr().add(4), r1);
            for r in buf {
                s += r;
            }
        } else {
            lane0 = _mm256_add_pd(lane0, r0);
            lane1 = _mm256_add_pd(lane1, r1);
        }
        i += 8;
    }
    let mut lo4 = [0.0f64; 4];
    let mut hi4 = [0.0f64; 4];
    let mut l4 = [0.0f64; 4];
    _mm256_storeu_pd(lo4.as_mut_ptr(), vlo);
    _mm256_storeu_pd(hi4.as_mut_ptr(), vhi);
    _mm256_storeu_pd(l4.as_mut_ptr(), _mm256_add_pd(lane0, lane1));
    BlockOut {
        bars: i,
        sum: s,
        lanes: l4,
        lo: lo4[0].min(lo4[1]).min(lo4[2].min(lo4[3])),
        hi: hi4[0].max(hi4[1]).max(hi4[2].max(hi4[3])),
        in_market: nz,
        clean: _mm256_movemask_pd(bad) == 0,
    }
}
