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

/// Whole shares for all of `cash` at `px`, commission included (an all-in buy).
#[inline]
pub fn all_in_qty(cash: f64, px: f64, commission: &Commission) -> f64 {
    let mut q = (cash / px).floor();
    while q > 0.0 && q * px + commission.of(q, px) > cash {
        q -= 1.0;
    }
    q
}

/// True when a buy of `qty` at `px` costs more than `cash`, `commission` included.
#[inline(always)]
pub fn overspends(cash: f64, qty: f64, px: f64, commission: f64) -> bool {
    qty * px + commission > cash
}

/// The largest buy at `px` that `cash` pays, commission included, in steps of `1/scale` shares:
/// `(qty, commission)`; the quantity is 0 when not even one step is affordable.
#[inline]
pub fn shrink_to_cash(cash: f64, px: f64, commission: &Commission, scale: f64) -> (f64, f64) {
    let c = commission;
    let mut qty = floor_dp(
        (cash - c.per_order).max(0.0) / (px * (1.0 + c.pct / 100.0) + c.per_share),
        scale,
    );
    let mut fee = c.of(qty, px);
    while qty > 0.0 && overspends(cash, qty, px, fee) {
        qty = floor_dp(qty - 1.0 / scale, scale);
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
    fn all_in_buys_whole_shares_for_the_cash_less_commission() {
        let c = fees(0.0, 0.5, 0.0);
        // 1000 / 10.5 per share all in = 95.2: 95 shares.
        assert_eq!(buy(1000.0, 10.0, 0.0, true, &c, 1e4, true), (95.0, 47.5));
        assert_eq!(buy(5.0, 10.0, 0.0, true, &c, 1e4, true).0, 0.0);
    }
}
