//! The arithmetic of one fill: adverse slippage, all-in sizing, commission and the guard that shrinks
//! a buy to the cash there is. The backtest engine and the simulated broker (`vectura_broker::sim`) both
//! call these, so a fill is priced, sized and charged identically in a backtest and in a simulated run.
//!
//! Each function is the engine's f64 expression, operation for operation (the golden cases depend on
//! the order of operations); they inline into the engine's loop.

use crate::config::Commission;
use vectura_core::{floor_dp, Side};

/// The execution price of a `side` fill at `price` with adverse slippage `slip`, a fraction
/// (basis points / 10 000): a buy pays more, a sell gets less.
#[inline(always)]
pub fn slipped(side: Side, price: f64, slip: f64) -> f64 {
    if slip > 0.0 {
        match side {
            Side::Buy => price * (1.0 + slip),
            Side::Sell => price * (1.0 - slip),
        }
    } else {
        price
    }
}

/// Whole shares for all of `cash` at `px`, commission included (an all-in buy): the most that
/// [`shrink_to_cash`] finds in whole shares, and one more when rounding left a share unbought. (A
/// count down from `cash / px` took 10^14 steps with a trillion dollars, a cent a share and a commission
/// per share.) Infinite when the count is beyond f64 (a price near 0); the engine refuses that order.
#[inline]
pub fn all_in_qty(cash: f64, px: f64, commission: &Commission) -> f64 {
    let (q, _) = shrink_to_cash(cash, px, commission, 1.0);
    let next = q + 1.0;
    if q.is_finite() && !overspends(cash, next, px, commission.of(next, px)) {
        next
    } else {
        q
    }
}

/// True when a buy of `qty` at `px` costs more than `cash`, `commission` included.
#[inline(always)]
pub fn overspends(cash: f64, qty: f64, px: f64, commission: f64) -> bool {
    qty * px + commission > cash
}

/// The largest buy at `px` that `cash` pays, commission included, in steps of `1/scale` shares:
/// `(qty, commission)`; the quantity is 0 when not even one step is affordable. The closed form, then a
/// step down while rounding leaves it too dear; a step always lowers the count (by one ulp where
/// `1/scale` is below the count's resolution), so the loop ends within a few steps.
#[inline]
pub fn shrink_to_cash(cash: f64, px: f64, commission: &Commission, scale: f64) -> (f64, f64) {
    let c = commission;
    let mut qty = floor_dp(
        (cash - c.per_order).max(0.0) / (px * (1.0 + c.pct / 100.0) + c.per_share),
        scale,
    );
    let mut fee = c.of(qty, px);
    while qty > 0.0 && qty.is_finite() && overspends(cash, qty, px, fee) {
        let down = floor_dp(qty - 1.0 / scale, scale);
        qty = if down < qty { down } else { qty.next_down() };
        fee = c.of(qty, px);
    }
    (qty, fee)
}

/// A buy's shares and commission at `px` with `cash` available: `qty` (or, `all_in`, all the cash in
/// whole shares). With `guard`, a buy that would overspend (a gap up, slippage, commission) is shrunk
/// to what the cash pays, in steps of `1/share_scale` shares (whole shares when `all_in`).
#[inline]
pub fn buy(
    cash: f64,
    px: f64,
    qty: f64,
    all_in: bool,
    commission: &Commission,
    share_scale: f64,
    guard: bool,
) -> (f64, f64) {
    let qty = if all_in {
        all_in_qty(cash, px, commission)
    } else {
        qty
    };
    let fee = commission.of(qty, px);
    if guard && overspends(cash, qty, px, fee) {
        let scale = if all_in { 1.0 } else { share_scale };
        return shrink_to_cash(cash, px, commission, scale);
    }
    (qty, fee)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fees(per_order: f64, per_share: f64, pct: f64) -> Commission {
        Commission {
            per_order,
            per_share,
            pct,
        }
    }

    #[test]
    fn slippage_is_adverse_on_both_sides() {
        assert_eq!(slipped(Side::Buy, 100.0, 0.001), 100.0 * 1.001);
        assert_eq!(slipped(Side::Sell, 100.0, 0.001), 100.0 * 0.999);
        assert_eq!(slipped(Side::Buy, 100.0, 0.0), 100.0);
    }

    #[test]
    fn an_affordable_buy_is_left_as_asked() {
        let c = fees(1.0, 0.0, 0.0);
        assert_eq!(buy(1000.0, 10.0, 50.0, false, &c, 1e4, true), (50.0, 1.0));
    }

    #[test]
    fn the_guard_shrinks_an_overspending_buy_to_the_cash_commission_included() {
        // 100 shares at 10 with 1 + 1 % commission: 1011 > 1000.
        let c = fees(1.0, 0.0, 1.0);
        let (q, fee) = buy(1000.0, 10.0, 100.0, false, &c, 1e4, true);
        assert!(q * 10.0 + fee <= 1000.0, "{q} {fee}");
        // One more step would not be affordable.
        let more = q + 1e-4;
        assert!(more * 10.0 + c.of(more, 10.0) > 1000.0);
        assert_eq!(fee, c.of(q, 10.0));
        // Unguarded (vectura-v1), the order stands.
        assert_eq!(buy(1000.0, 10.0, 100.0, false, &c, 1e4, false).0, 100.0);
    }

    #[test]
    fn all_in_is_the_most_whole_shares_the_cash_pays_found_without_counting_down() {
        // Brute force from cash / px down (as the engine once did), then one up, on small cases.
        for (cash, px, c) in [
            (1000.0f64, 10.0f64, fees(0.0, 0.0, 0.0)),
            (1000.0, 7.3, fees(1.0, 0.01, 0.1)),
            (999.99, 3.33, fees(0.0, 0.5, 0.0)),
            (50.0, 49.99, fees(0.02, 0.0, 0.0)),
            (0.3 * 3.0, 0.3, fees(0.0, 0.0, 0.0)),
        ] {
            let mut q = (cash / px).floor();
            while q > 0.0 && q * px + c.of(q, px) > cash {
                q -= 1.0;
            }
            if !overspends(cash, q + 1.0, px, c.of(q + 1.0, px)) {
                q += 1.0;
            }
            assert_eq!(all_in_qty(cash, px, &c), q, "{cash} at {px}");
        }
        // A trillion dollars at a cent with a commission per share: at once, not 10^14 steps down.
        let c = fees(0.0, 1.0, 0.0);
        let q = all_in_qty(1e12, 0.01, &c);
        assert!(!overspends(1e12, q, 0.01, c.of(q, 0.01)));
        assert!(overspends(1e12, q + 1.0, 0.01, c.of(q + 1.0, 0.01)));
        // Beyond f64's count (a price near 0): infinite, for the engine to refuse.
        assert!(!all_in_qty(1e12, 1e-300, &fees(0.0, 0.0, 0.0)).is_finite());
        // Above 2^53 shares a step of 1/scale is below resolution: the guard still ends.
        let (q, fee) = shrink_to_cash(1e12, 1e-6, &fees(0.0, 0.0, 1.0), 1e4);
        assert!(q > 0.0 && !overspends(1e12, q, 1e-6, fee));
    }

    #[test]
    fn all_in_buys_whole_shares_for_the_cash_less_commission() {
        let c = fees(0.0, 0.5, 0.0);
        // 1000 / 10.5 per share all in = 95.2: 95 shares.
        assert_eq!(buy(1000.0, 10.0, 0.0, true, &c, 1e4, true), (95.0, 47.5));
        assert_eq!(buy(5.0, 10.0, 0.0, true, &c, 1e4, true).0, 0.0);
    }
}
