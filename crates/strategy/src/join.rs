//! The join ("order gap") filter over buy triggers (original §1.6).

use serde::{Deserialize, Serialize};

/// Which way a trigger fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// Fires when the price is at or below the trigger.
    Below,
    /// Fires when the price is at or above the trigger.
    Higher,
}

/// A buy trigger.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BuyTrigger {
    pub id: u64,
    pub price: f64,
    pub dir: Dir,
    /// Set while an order for this trigger is out and unfilled; such a trigger cannot fire again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<u64>,
    /// Removed, awaiting compaction (joining off only: the id order stays searchable without shifting).
    #[serde(skip)]
    pub dead: bool,
}

/// Merges nearby buy triggers of one direction, in place; `gap_pct == -1` leaves the list unchanged.
///
/// Stable-sorts by price, then sweeps with an anchor: a trigger of the anchor's direction within `gap_pct`
/// percent of the anchor's price (the anchor's price is the denominator) is merged. Below-chains keep
/// the anchor (the lowest); higher-chains keep the newer, higher trigger, so the anchor moves up. Every
/// dropped trigger is passed to `removed` (its `pending` tells whether an order for it is out).
pub fn join(triggers: &mut Vec<BuyTrigger>, gap_pct: f64, mut removed: impl FnMut(&BuyTrigger)) {
    if gap_pct == -1.0 || triggers.len() < 2 {
        return;
    }
    // Stable, so equal prices keep their order, as the original's Array.prototype.sort does.
    if !triggers.windows(2).all(|w| w[0].price <= w[1].price) {
        triggers.sort_by(|a, b| a.price.total_cmp(&b.price));
    }
    let mut w = 0usize;
    let mut cur = triggers[0];
    for j in 1..triggers.len() {
        let n = triggers[j];
        // The same arithmetic, in the same order, as the original: |a−b| / a × 100 ≤ gap.
        if cur.dir == n.dir && (cur.price - n.price).abs() / cur.price * 100.0 <= gap_pct {
            match n.dir {
                Dir::Below => removed(&n),
                Dir::Higher => {
                    removed(&cur);
                    cur = n;
                }
            }
        } else {
            triggers[w] = cur;
            w += 1;
            cur = n;
        }
    }
    triggers[w] = cur;
    triggers.truncate(w + 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: u64, price: f64, dir: Dir) -> BuyTrigger {
        BuyTrigger {
            id,
            price,
            dir,
            pending: None,
            dead: false,
        }
    }

    fn prices(v: &[BuyTrigger]) -> Vec<f64> {
        v.iter().map(|t| t.price).collect()
    }

    #[test]
    fn below_chain_keeps_the_fixed_anchor() {
        // §1.6: 100 / 101.4 / 102.8 at 1.5 % → [100, 102.8] because the anchor stays at 100.
        let mut v = vec![
            t(1, 102.8, Dir::Below),
            t(2, 100.0, Dir::Below),
            t(3, 101.4, Dir::Below),
        ];
        let mut gone = vec![];
        join(&mut v, 1.5, |t| gone.push(t.id));
        assert_eq!(prices(&v), vec![100.0, 102.8]);
        assert_eq!(gone, vec![3]);
    }

    #[test]
    fn higher_chain_moves_the_anchor() {
        // §1.6: the same prices as "higher" triggers → [102.8].
        let mut v = vec![
            t(1, 100.0, Dir::Higher),
            t(2, 101.4, Dir::Higher),
            t(3, 102.8, Dir::Higher),
        ];
        let mut gone = vec![];
        join(&mut v, 1.5, |t| gone.push(t.id));
        assert_eq!(prices(&v), vec![102.8]);
        assert_eq!(gone, vec![1, 2]);
    }

    #[test]
    fn other_direction_breaks_a_chain_and_gap_zero_merges_only_equal() {
        let mut v = vec![
            t(1, 100.0, Dir::Below),
            t(2, 100.5, Dir::Higher),
            t(3, 101.0, Dir::Below),
        ];
        join(&mut v, 1.5, |_| {});
        assert_eq!(v.len(), 3);
        let mut v = vec![
            t(1, 100.0, Dir::Below),
            t(2, 100.0, Dir::Below),
            t(3, 100.01, Dir::Below),
        ];
        join(&mut v, 0.0, |_| {});
        assert_eq!(prices(&v), vec![100.0, 100.01]);
    }

    #[test]
    fn off_keeps_insertion_order() {
        let mut v = vec![t(1, 105.0, Dir::Below), t(2, 100.0, Dir::Below)];
        join(&mut v, -1.0, |_| panic!("nothing is removed"));
        assert_eq!(prices(&v), vec![105.0, 100.0]);
    }
}
