//! A long-only SMA cross with whole-share, all-in sizing: proof that the [`Strategy`] trait is general.

use crate::{Account, SellGate, Strategy, Tick};
use serde::{Deserialize, Serialize};
use vectura_core::{Fill, IntentId, OrderEnd, OrderIntent, OrderKind, Side};

/// SMA cross parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SmaParams {
    /// Bars in the fast average.
    pub fast: usize,
    /// Bars in the slow average.
    pub slow: usize,
}

/// The longest slow window, bars: a 200-day average of regular-session minute bars is 78 000. The
/// strategy keeps the window and sums it every bar, so its memory and time grow with it.
pub const MAX_WINDOW: usize = 100_000;

/// Fast/slow windows that cannot work.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SmaError {
    #[error(
        "--fast {fast} must be at least 1 and below --slow {slow}: for example --fast 10 --slow 20"
    )]
    Windows { fast: usize, slow: usize },
    #[error("--slow {0} is longer than 100000 bars: give a window of at most 100000 bars")]
    TooLong(usize),
}

impl SmaParams {
    /// Checks the windows: `1 ≤ fast < slow ≤ MAX_WINDOW`.
    pub fn validate(&self) -> Result<(), SmaError> {
        if self.fast == 0 || self.fast >= self.slow {
            return Err(SmaError::Windows {
                fast: self.fast,
                slow: self.slow,
            });
        }
        if self.slow > MAX_WINDOW {
            return Err(SmaError::TooLong(self.slow));
        }
        Ok(())
    }
}

/// Buys all-in (whole shares) when the fast SMA of closes crosses above the slow one, sells everything
/// when it crosses below. A cross means: fast ≤ slow on the previous bar and fast > slow now (above), or
/// fast ≥ slow before and fast < slow now (below), as backtesting.py and backtrader count them.
#[derive(Debug, Clone)]
pub struct SmaCross {
    p: SmaParams,
    ring: Vec<f64>,
    n: usize,
    // Sums are recomputed from the window every bar, so no drift accumulates over long runs.
    prev: Option<(f64, f64)>,
    shares: f64,
    pending: Option<(IntentId, Side)>,
    want: Option<Side>,
    close: f64,
    next_id: u64,
}

impl SmaCross {
    /// A new SMA cross.
    pub fn new(p: SmaParams) -> Result<SmaCross, SmaError> {
        p.validate()?;
        Ok(SmaCross {
            p,
            ring: vec![0.0; p.slow],
            n: 0,
            prev: None,
            shares: 0.0,
            pending: None,
            want: None,
            close: 0.0,
            next_id: 1,
        })
    }

    fn mean_last(&self, k: usize) -> f64 {
        let len = self.ring.len();
        let mut s = 0.0;
        for j in 0..k {
            s += self.ring[(self.n - 1 - j) % len];
        }
        s / k as f64
    }

    /// Shares held.
    pub fn position(&self) -> f64 {
        self.shares
    }
}

impl Strategy for SmaCross {
    fn name(&self) -> &'static str {
        "sma-cross"
    }

    fn quiet_band(&self, _: &Account) -> Option<(f64, f64)> {
        None
    }

    fn on_bar(&mut self, tick: &Tick, _: &Account, _: &dyn SellGate) {
        let len = self.ring.len();
        self.ring[self.n % len] = tick.close;
        self.n += 1;
        self.close = tick.close;
        self.want = None;
        if self.n < self.p.slow {
            return;
        }
        let now = (self.mean_last(self.p.fast), self.mean_last(self.p.slow));
        if let Some((pf, ps)) = self.prev {
            if pf <= ps && now.0 > now.1 {
                self.want = Some(Side::Buy);
            } else if pf >= ps && now.0 < now.1 {
                self.want = Some(Side::Sell);
            }
        }
        self.prev = Some(now);
    }

    fn next_intent(&mut self, account: &Account, _: &dyn SellGate) -> Option<OrderIntent> {
        let side = self.want.take()?;
        if self.pending.is_some() {
            return None;
        }
        let qty = match side {
            Side::Buy if self.shares == 0.0 => (account.cash / self.close).floor(),
            Side::Sell if self.shares > 0.0 => self.shares,
            _ => return None,
        };
        if side == Side::Buy && !(qty >= 1.0) {
            return None;
        }
        let id = IntentId(self.next_id);
        self.next_id += 1;
        self.pending = Some((id, side));
        Some(OrderIntent {
            id,
            side,
            qty,
            ref_price: self.close,
            kind: OrderKind::Market,
            closes: None,
            all_in: side == Side::Buy,
        })
    }

    fn on_fill(&mut self, fill: &Fill) {
        match fill.side {
            Side::Buy => self.shares += fill.qty,
            Side::Sell => self.shares = (self.shares - fill.qty).max(0.0),
        }
        if fill.done && self.pending.is_some_and(|(id, _)| id == fill.intent) {
            self.pending = None;
        }
    }

    fn on_order_end(&mut self, intent: IntentId, _: &OrderEnd) {
        if self.pending.is_some_and(|(id, _)| id == intent) {
            self.pending = None;
        }
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({
            "strategy": "sma-cross",
            "params": self.p,
            "shares": self.shares,
            "fast_sma": self.prev.map(|p| p.0),
            "slow_sma": self.prev.map(|p| p.1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_bounded() {
        let p = |fast, slow| SmaParams { fast, slow };
        assert_eq!(p(10, 20).validate(), Ok(()));
        assert_eq!(p(1, MAX_WINDOW).validate(), Ok(()));
        assert!(matches!(p(0, 20).validate(), Err(SmaError::Windows { .. })));
        assert!(matches!(
            p(20, 20).validate(),
            Err(SmaError::Windows { .. })
        ));
        assert!(matches!(
            p(20, 10).validate(),
            Err(SmaError::Windows { .. })
        ));
        // The window is allocated: a huge one was a capacity-overflow panic.
        let e = SmaCross::new(p(10, usize::MAX)).unwrap_err();
        assert_eq!(e, SmaError::TooLong(usize::MAX));
        assert!(
            e.to_string().starts_with("--slow 18446744073709551615"),
            "{e}"
        );
        assert_eq!(
            SmaCross::new(p(10, MAX_WINDOW + 1)).unwrap_err(),
            SmaError::TooLong(MAX_WINDOW + 1)
        );
        assert!(SmaCross::new(p(10, 20)).is_ok());
    }
}
