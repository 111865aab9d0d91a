//! A long-only SMA cross with whole-share, all-in sizing: proof that the [`Strategy`] trait is general.
//!
//! **Snapshot and restore**, as the grid's: [`SmaCross::snapshot`] is the whole state as data
//! ([`SmaSnapshot`]), and [`SmaCross::restore`] gives a strategy that continues exactly as the original
//! would, averages and intent counter included.

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

/// Version of [`SmaSnapshot`]'s layout; a snapshot of another version is refused, never guessed at.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// Everything an [`SmaCross`] is, as plain data: restoring it ([`SmaCross::restore`]) gives a strategy
/// that behaves exactly as the one snapshotted, at any point (between bars, between a bar and its
/// intent, with an order in flight or partly filled). Floats survive JSON exactly (serde_json's
/// `float_roundtrip` is on workspace-wide).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmaSnapshot {
    /// [`SNAPSHOT_FORMAT`] when written.
    pub format: u32,
    pub params: SmaParams,
    /// Bars seen so far.
    pub bars_seen: u64,
    /// The closes of the last `min(bars_seen, slow)` bars, oldest first: the averages' window.
    pub window: Vec<f64>,
    /// The last bar's (fast, slow) averages, once there were `slow` bars.
    pub prev: Option<(f64, f64)>,
    /// Shares held.
    pub shares: f64,
    /// The intent in flight and its side.
    pub pending: Option<(IntentId, Side)>,
    /// The cross the last bar made, not yet turned into an intent.
    pub want: Option<Side>,
    /// The last bar's close (what an intent is sized and priced by).
    pub close: f64,
    /// The next intent number to hand out (client order ids continue from it after a restore).
    pub next_intent: u64,
}

/// A snapshot that cannot be an SMA cross's state.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SnapshotError {
    #[error("sma-cross snapshot format {found} is not {SNAPSHOT_FORMAT}: restore it with the version of vectura that wrote it")]
    Format { found: u32 },
    #[error("sma-cross snapshot params: {0}")]
    Params(#[from] SmaError),
    #[error("sma-cross snapshot {field}: {detail}")]
    Invalid { field: &'static str, detail: String },
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

    /// The next intent number (the counter client order ids are made from).
    pub fn next_intent_id(&self) -> IntentId {
        IntentId(self.next_id)
    }

    /// The strategy's whole state (see [`SmaSnapshot`]).
    pub fn snapshot(&self) -> SmaSnapshot {
        let len = self.ring.len();
        let w = self.n.min(len);
        SmaSnapshot {
            format: SNAPSHOT_FORMAT,
            params: self.p,
            bars_seen: self.n as u64,
            window: (0..w).map(|j| self.ring[(self.n - w + j) % len]).collect(),
            prev: self.prev,
            shares: self.shares,
            pending: self.pending,
            want: self.want,
            close: self.close,
            next_intent: self.next_id,
        }
    }

    /// The strategy an [`SmaCross::snapshot`] was taken of. Refuses a snapshot that cannot be one
    /// (a window of the wrong length, non-finite numbers, an intent beyond the counter), naming the
    /// field.
    pub fn restore(s: SmaSnapshot) -> Result<SmaCross, SnapshotError> {
        if s.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format { found: s.format });
        }
        let mut out = SmaCross::new(s.params)?;
        let bad = |field, detail: String| Err(SnapshotError::Invalid { field, detail });
        let Ok(n) = usize::try_from(s.bars_seen) else {
            return bad(
                "bars_seen",
                format!("{} bars do not fit this machine", s.bars_seen),
            );
        };
        let len = out.ring.len();
        if s.window.len() != n.min(len) {
            return bad(
                "window",
                format!(
                    "{} closes, but {} bars seen with a slow window of {len} keep {}",
                    s.window.len(),
                    n,
                    n.min(len)
                ),
            );
        }
        if let Some(c) = s.window.iter().find(|c| !c.is_finite()) {
            return bad("window", format!("close {c} is not finite"));
        }
        if s.prev.is_some() != (n >= len) {
            return bad(
                "prev",
                format!("averages exist once {len} bars are seen, and {n} were"),
            );
        }
        if let Some((f, sl)) = s.prev.filter(|(f, sl)| !(f.is_finite() && sl.is_finite())) {
            return bad("prev", format!("averages {f}, {sl} are not finite"));
        }
        if !(s.shares.is_finite() && s.shares >= 0.0) {
            return bad(
                "shares",
                format!("{} is not a finite number >= 0", s.shares),
            );
        }
        if !s.close.is_finite() {
            return bad("close", format!("{} is not finite", s.close));
        }
        if s.next_intent == 0 {
            return bad("next_intent", "intent numbers start at 1".into());
        }
        if let Some((id, _)) = s.pending.filter(|(id, _)| id.0 >= s.next_intent) {
            return bad(
                "pending",
                format!("id {} is not below next_intent {}", id.0, s.next_intent),
            );
        }
        // The window goes back where the ring would hold it: the averages read it by recency from
        // position n - 1, so they are the same sums, term by term.
        let w = s.window.len();
        for (j, c) in s.window.into_iter().enumerate() {
            out.ring[(n - w + j) % len] = c;
        }
        out.n = n;
        out.prev = s.prev;
        out.shares = s.shares;
        out.pending = s.pending;
        out.want = s.want;
        out.close = s.close;
        out.next_id = s.next_intent;
        Ok(out)
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

    fn feed(s: &mut SmaCross, closes: impl IntoIterator<Item = f64>) {
        let acct = Account {
            cash: 1000.0,
            equity: 1000.0,
        };
        for (i, c) in closes.into_iter().enumerate() {
            s.on_bar(&Tick::at(i as i64 * 60, c), &acct, &crate::AllowAll);
        }
    }

    #[test]
    fn a_snapshot_keeps_the_window_oldest_first_and_round_trips() {
        let mut s = SmaCross::new(SmaParams { fast: 2, slow: 3 }).unwrap();
        feed(&mut s, [1.0, 2.0]);
        let early = s.snapshot();
        assert_eq!((early.bars_seen, early.window.clone()), (2, vec![1.0, 2.0]));
        assert_eq!(early.prev, None);
        feed(&mut s, [3.0, 4.0, 5.0]);
        let snap = s.snapshot();
        assert_eq!(snap.bars_seen, 5);
        assert_eq!(snap.window, vec![3.0, 4.0, 5.0], "the last `slow` closes");
        assert_eq!(snap.prev, Some((4.5, 4.0)));
        let back = SmaCross::restore(snap.clone()).unwrap();
        assert_eq!(back.snapshot(), snap);
        assert_eq!(SmaCross::restore(early.clone()).unwrap().snapshot(), early);
    }

    #[test]
    fn a_bad_snapshot_is_refused_with_the_field_named() {
        let mut s = SmaCross::new(SmaParams { fast: 2, slow: 3 }).unwrap();
        feed(&mut s, [1.0, 2.0, 3.0, 4.0]);
        let good = s.snapshot();
        let refused = |f: &dyn Fn(&mut SmaSnapshot)| {
            let mut b = good.clone();
            f(&mut b);
            SmaCross::restore(b).unwrap_err().to_string()
        };
        assert!(refused(&|b| b.format = 2).contains("format 2 is not 1"));
        assert!(refused(&|b| b.params.fast = 3).starts_with("sma-cross snapshot params: --fast 3"));
        assert!(refused(&|b| {
            b.window.pop();
        })
        .starts_with("sma-cross snapshot window: 2 closes"));
        assert!(refused(&|b| b.window[0] = f64::NAN)
            .starts_with("sma-cross snapshot window: close NaN"));
        assert!(refused(&|b| b.prev = None).starts_with("sma-cross snapshot prev"));
        assert!(refused(&|b| b.shares = -1.0).starts_with("sma-cross snapshot shares"));
        assert!(refused(&|b| b.close = f64::INFINITY).starts_with("sma-cross snapshot close"));
        assert!(refused(&|b| b.next_intent = 0).starts_with("sma-cross snapshot next_intent"));
        assert!(refused(&|b| b.pending = Some((IntentId(1), Side::Buy)))
            .starts_with("sma-cross snapshot pending: id 1 is not below next_intent 1"));
    }
}
