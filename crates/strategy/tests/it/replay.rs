//! A small live-style driver over real minute bars: decide on each bar's close, fill at the next
//! bar's open, with each order filled in parts (and sometimes the rest cancelled) as a plan says.

use vectura_core::calendar::{self, SessionPart};
use vectura_core::{BarSeries, Fill, IntentId, OrderEnd, OrderIntent, Side};
use vectura_data::{load_csv_path, LoadOptions};
use vectura_strategy::grid::{Grid, GridSnapshot};
use vectura_strategy::sma::{SmaCross, SmaSnapshot};
use vectura_strategy::{Account, AllowAll, Eval, Strategy, Tick};

/// A strategy with a typed snapshot: what the driver restores between steps.
pub trait Restorable: Strategy + Sized {
    type Snapshot: Clone
        + std::fmt::Debug
        + PartialEq
        + serde::Serialize
        + serde::de::DeserializeOwned;
    fn snap(&self) -> Self::Snapshot;
    fn from_snap(s: Self::Snapshot) -> Self;
}

impl Restorable for Grid {
    type Snapshot = GridSnapshot;
    fn snap(&self) -> GridSnapshot {
        self.snapshot()
    }
    fn from_snap(s: GridSnapshot) -> Grid {
        Grid::restore(s).unwrap()
    }
}

impl Restorable for SmaCross {
    type Snapshot = SmaSnapshot;
    fn snap(&self) -> SmaSnapshot {
        self.snapshot()
    }
    fn from_snap(s: SmaSnapshot) -> SmaCross {
        SmaCross::restore(s).unwrap()
    }
}

/// The bundled SPY minute bars of January 2011, regular session only.
pub fn spy_january() -> BarSeries {
    let path = format!(
        "{}/../../data/bundled/SPY_1min_2011-01.csv.gz",
        env!("CARGO_MANIFEST_DIR")
    );
    let l = load_csv_path(std::path::Path::new(&path), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let s = l.series;
    s.filter(|i| calendar::classify(s.ts[i]) == SessionPart::Regular)
}

/// How one order fills: its parts as (share of the order, price offset in basis points from the
/// open), and whether the rest of the order is then cancelled.
#[derive(Debug, Clone)]
pub struct OrderPlan {
    pub parts: Vec<(f64, f64)>,
    pub cancel_rest: bool,
    /// When this plan is the one of a bar's first order: that bar's orders fill last-sent first (a
    /// venue keeps no order among them), so a sell's fill can join away a buy trigger with an order out.
    pub reverse: bool,
}

/// The fills an order gets under `plan`: (shares, price) per part, and whether the last one ends it.
pub fn parts_of(qty: f64, open: f64, plan: &OrderPlan) -> (Vec<(f64, f64)>, bool) {
    let weights: f64 = plan.parts.iter().map(|p| p.0).sum();
    // A cancelled rest leaves a quarter of the order unfilled.
    let filled = if plan.cancel_rest { qty * 0.75 } else { qty };
    let mut left = filled;
    let mut out = Vec::new();
    for (k, &(w, bps)) in plan.parts.iter().enumerate() {
        let q = if k + 1 == plan.parts.len() {
            left
        } else {
            (filled * w / weights).min(left)
        };
        left -= q;
        out.push((q, open * (1.0 + bps / 1e4)));
    }
    (out, !plan.cancel_rest)
}

/// Everything the driver saw the grid do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Intent(OrderIntent),
    Cancel(IntentId),
}

/// How fills reach the grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delivery {
    /// Each part as its own fill.
    Parts,
    /// One fill of each order's total at its volume-weighted price, at the first part's time.
    Total,
}

/// The driver's result: what the strategy asked for and its final state.
pub struct Outcome<S = GridSnapshot> {
    pub events: Vec<Event>,
    pub state: S,
    pub cash: f64,
}

/// Drives `g` over `bars`, calling `step` after every call into the strategy (a restore point).
pub fn drive<G: Restorable>(
    mut g: G,
    bars: &BarSeries,
    plans: &[OrderPlan],
    delivery: Delivery,
    mut step: impl FnMut(G) -> G,
) -> Outcome<G::Snapshot> {
    let mut cash = 10_000.0;
    let mut shares = 0.0;
    let mut events = Vec::new();
    let mut queue: Vec<OrderIntent> = Vec::new();
    let mut cancelled: Vec<IntentId> = Vec::new();
    let mut n_orders = 0usize;
    for i in 0..bars.len() {
        let b = bars.get(i);
        // The orders sent at the previous close fill at this open, one after the other.
        let mut batch = std::mem::take(&mut queue);
        if plans[n_orders % plans.len()].reverse {
            batch.reverse();
        }
        for o in batch {
            if cancelled.contains(&o.id) {
                g.on_order_end(o.id, &OrderEnd::Cancelled);
                g = step(g);
                continue;
            }
            let plan = &plans[n_orders % plans.len()];
            n_orders += 1;
            let (parts, last_ends) = parts_of(o.qty, b.open, plan);
            let sign = if o.side == Side::Buy { 1.0 } else { -1.0 };
            let mut notional = 0.0;
            let mut total = 0.0;
            for &(q, p) in &parts {
                notional += q * p;
                total += q;
            }
            cash -= sign * notional;
            shares += sign * total;
            match delivery {
                Delivery::Parts => {
                    for (k, &(q, p)) in parts.iter().enumerate() {
                        g.on_fill(&Fill {
                            intent: o.id,
                            side: o.side,
                            qty: q,
                            price: p,
                            commission: 0.0,
                            ts: b.ts + k as i64,
                            done: last_ends && k + 1 == parts.len(),
                        });
                        g = step(g);
                    }
                }
                Delivery::Total => {
                    let price = if parts.len() > 1 {
                        notional / total
                    } else {
                        parts[0].1
                    };
                    g.on_fill(&Fill {
                        intent: o.id,
                        side: o.side,
                        qty: total,
                        price,
                        commission: 0.0,
                        ts: b.ts,
                        done: last_ends,
                    });
                    g = step(g);
                }
            }
            if !last_ends {
                g.on_order_end(o.id, &OrderEnd::Cancelled);
                g = step(g);
            }
            while let Some(c) = g.next_cancel() {
                g = step(g);
                events.push(Event::Cancel(c));
                cancelled.push(c);
            }
        }
        let equity = cash + shares * b.close;
        let tick = Tick {
            ts: b.ts,
            open: b.open,
            high: b.high,
            low: b.low,
            close: b.close,
            eval: Eval::Close,
        };
        g.on_bar(&tick, &Account { cash, equity }, &AllowAll);
        g = step(g);
        let mut reserved = 0.0;
        loop {
            let a = Account {
                cash: cash - reserved,
                equity,
            };
            let next = g.next_intent(&a, &AllowAll);
            g = step(g);
            let Some(intent) = next else { break };
            if intent.side == Side::Buy {
                // Slack for an open above the close: the fill must not overdraw.
                reserved += intent.qty * intent.ref_price * 1.01;
            }
            events.push(Event::Intent(intent));
            queue.push(intent);
        }
    }
    Outcome {
        events,
        state: g.snap(),
        cash,
    }
}

/// A snapshot through JSON text and back, as the store keeps it.
pub fn round_trip<G: Restorable>(g: G) -> G {
    let text = serde_json::to_string(&g.snap()).unwrap();
    G::from_snap(serde_json::from_str(&text).unwrap())
}
