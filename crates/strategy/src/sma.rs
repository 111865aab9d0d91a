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

/// Fast/slow windows that cannot work.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SmaError {
    #[error(
        "--fast {fast} must be at least 1 and below --slow {slow}: for example --fast 10 --slow 20"
    )]
    Windows { fast: usize, slow: usize },
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
        if p.fast == 0 || p.fast >= p.slow {
            return Err(SmaError::Windows {
                fast: p.fast,
                slow: p.slow,
            });
        }
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
