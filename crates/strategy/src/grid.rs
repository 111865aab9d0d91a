//! The grid strategy of the original Vectura (original §1, DESIGN.md §1), with the `vectura-v1` switches.
//!
//! What live trading adds (issue 15):
//! - **Snapshot and restore**: [`Grid::snapshot`] is the whole state as data ([`GridSnapshot`]), and
//!   [`Grid::restore`] gives a grid that continues exactly as the original would, intent counter included.
//! - **Partial fills**: an order's parts are accumulated and applied once, when the order ends, as one
//!   fill of the total at the volume-weighted price, timed at the first part ([`PendingOrder`]). So the
//!   sell trigger of a lot filled in parts is `VWAP × (1 + sell_above_pct)`, its follow-up buy trigger
//!   `VWAP × (1 − buy_below_pct)`, and a lot sold in parts re-arms from the VWAP of its sale. A cancelled
//!   or expired rest leaves what filled: a smaller lot, or a smaller lot still on its (re-armed) trigger.
//!   A fill that comes whole (every backtest fill) is applied at once, as before.
//! - **Cancels**: when the join filter removes a buy trigger whose order is in flight, the order is kept
//!   ([`JoinedInFlight::Keep`], the backtest's behaviour) or cancelled ([`JoinedInFlight::Cancel`]:
//!   [`Strategy::next_cancel`] names it); either way its intent stays pending until the venue reports
//!   a fill or an end, so no order is orphaned.

use crate::join::{join, BuyTrigger, Dir};
use crate::{Account, Eval, SellGate, Strategy, Tick};
use serde::{Deserialize, Serialize};
use vectura_core::{floor_dp, Fill, IntentId, OrderEnd, OrderIntent, OrderKind, Side};

/// The id of the first-order trigger (at −1, higher), never drawn as a trigger line.
pub const FIRST_ORDER: u64 = 0;

/// Grid parameters, named as the `at_algo_config` columns.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GridParams {
    /// Percent of current cash used per buy (0 < x ≤ 100).
    pub capital_pct: f64,
    /// Distance below a fill price for the next "below" buy trigger, percent.
    pub buy_below_pct: f64,
    /// Distance above a buy's fill price for that lot's sell trigger, percent.
    pub sell_above_pct: f64,
    /// Distance above a sell's fill price for the "buy higher" trigger, percent.
    pub buy_after_sell_pct: f64,
    /// Dollars a buy may not dip into.
    pub cash_floor: f64,
    /// Join threshold for buy triggers, percent; −1 disables joining.
    pub order_gap_pct: f64,
}

impl Default for GridParams {
    fn default() -> Self {
        GridParams {
            capital_pct: 60.0,
            buy_below_pct: 2.0,
            sell_above_pct: 18.0,
            buy_after_sell_pct: 25.0,
            cash_floor: 200.0,
            order_gap_pct: 1.5,
        }
    }
}

/// A parameter outside the original form's range (§6.2).
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{name} is {}: {rule}", crate::show_number(*.value))]
pub struct ParamError {
    pub name: &'static str,
    pub value: f64,
    pub rule: &'static str,
}

impl GridParams {
    /// Checks every parameter against the ranges of the original form.
    pub fn validate(&self) -> Result<(), ParamError> {
        let pct = |name, value: f64| {
            if value.is_finite() && value > 0.0 && value <= 100.0 {
                Ok(())
            } else {
                Err(ParamError {
                    name,
                    value,
                    rule: "it must be above 0 and at most 100 (percent)",
                })
            }
        };
        pct("capital-pct", self.capital_pct)?;
        pct("buy-below-pct", self.buy_below_pct)?;
        pct("sell-above-pct", self.sell_above_pct)?;
        pct("buy-after-sell-pct", self.buy_after_sell_pct)?;
        if !(self.cash_floor.is_finite() && self.cash_floor >= 0.0 && self.cash_floor <= 1e12) {
            return Err(ParamError {
                name: "cash-floor",
                value: self.cash_floor,
                rule: "it must be a dollar amount from 0 to 1e12",
            });
        }
        let g = self.order_gap_pct;
        if !(g == -1.0 || (g.is_finite() && (0.0..=100.0).contains(&g))) {
            return Err(ParamError {
                name: "order-gap-pct",
                value: g,
                rule: "it must be between 0 and 100, or -1 to turn joining off",
            });
        }
        Ok(())
    }
}

/// How the grid behaves where the original's results differ from ours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GridMode {
    /// `vectura-v1`: buys fire even when joining removed their trigger earlier in the tick, and
    /// zero-share buys happen.
    pub compat_v1: bool,
    /// Share precision as a power of ten: 1e4 in backtests, 1e9 for Alpaca fractional orders, 1 for whole shares.
    pub share_scale: f64,
    /// Keep trigger lines for charts (off in sweeps).
    pub record_lines: bool,
}

impl Default for GridMode {
    fn default() -> Self {
        GridMode {
            compat_v1: false,
            share_scale: 1e4,
            record_lines: true,
        }
    }
}

/// A sell trigger: sells one whole lot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SellTrigger {
    pub id: u64,
    pub price: f64,
    pub shares: f64,
    /// The buy intent whose lot this trigger sells.
    pub lot: IntentId,
    /// When that lot was opened (Unix s), for the PDT gate.
    pub lot_opened: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<u64>,
}

/// An open lot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lot {
    pub id: IntentId,
    pub price: f64,
    pub shares: f64,
    pub opened: i64,
}

/// One executed trade in the strategy's history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GridTrade {
    pub intent: IntentId,
    pub side: Side,
    pub ts: i64,
    pub shares: f64,
    pub price: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closes: Option<IntentId>,
}

/// A trigger line for charts (original §2.11): from its creation until it executed, or open.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TriggerLine {
    pub id: u64,
    pub side: Side,
    pub price: f64,
    pub start: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executed: Option<i64>,
    /// Removed by the join filter: never drawn (and never in a chart's lines, which leave them out).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

/// What an intent out at the venue was for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "side")]
pub enum PendingKind {
    /// A buy fired by buy trigger `trigger`, armed at `price` (which locates it in the store).
    Buy { trigger: u64, price: f64 },
    /// A sell of the lot of sell trigger `trigger`.
    Sell { trigger: u64 },
}

/// An intent out at the venue, and what has filled of it so far.
///
/// Parts of a fill are only accumulated here: the strategy applies an order once, when it ends (its
/// last part, or a cancel or expiry of the rest), as ONE fill of the total at the volume-weighted
/// price, timed at the first part. So any split of a fill leaves the state one fill of the total
/// would, and the lot of a buy filled in parts gets its sell trigger (and its follow-up buy trigger)
/// from that VWAP. While parts come in, the lot does not exist yet and its trigger stays pending.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PendingOrder {
    pub intent: IntentId,
    pub kind: PendingKind,
    /// Parts filled so far (0: nothing yet).
    pub parts: u32,
    /// Shares filled so far.
    pub filled: f64,
    /// Σ shares × price over the parts, in arrival order.
    pub notional: f64,
    /// The first part's price (the total's price when there was one part: no `q × p / q` rounding).
    pub first_price: f64,
    /// The first part's time, Unix s.
    pub first_ts: i64,
    /// Commission of the parts so far.
    pub commission: f64,
}

impl PendingOrder {
    fn new(intent: IntentId, kind: PendingKind) -> PendingOrder {
        PendingOrder {
            intent,
            kind,
            parts: 0,
            filled: 0.0,
            notional: 0.0,
            first_price: 0.0,
            first_ts: 0,
            commission: 0.0,
        }
    }

    fn add(&mut self, f: &Fill) {
        if self.parts == 0 {
            self.first_price = f.price;
            self.first_ts = f.ts;
        }
        self.parts += 1;
        self.filled += f.qty;
        self.notional += f.qty * f.price;
        self.commission += f.commission;
    }

    /// The parts so far as one fill of their total at their volume-weighted price.
    fn total(&self, done: bool) -> Fill {
        Fill {
            intent: self.intent,
            side: match self.kind {
                PendingKind::Buy { .. } => Side::Buy,
                PendingKind::Sell { .. } => Side::Sell,
            },
            qty: self.filled,
            price: if self.parts > 1 && self.filled > 0.0 {
                self.notional / self.filled
            } else {
                self.first_price
            },
            commission: self.commission,
            ts: self.first_ts,
            done,
        }
    }
}

/// A stock split applied to a live grid's state: from `effective` (Unix s, the session open of its
/// date) one old share is `ratio` new shares. The history stays as executed; this records the change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitAdjustment {
    pub effective: i64,
    pub ratio: f64,
}

/// Why a split cannot be applied to a grid's state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SplitRefused {
    #[error("split ratio {0} is not a finite positive number")]
    BadRatio(f64),
    #[error("{0} order(s) are out at the venue: a split is applied with no order in flight (cancel them, or wait for them to end)")]
    OrdersInFlight(usize),
}

/// What happens to an order in flight when the join filter removes the buy trigger that fired it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinedInFlight {
    /// The order lives: when it fills, its lot opens as any other (the backtest's behaviour, where an
    /// order sent at one close fills at the next open), and when it ends unfilled nothing re-arms.
    #[default]
    Keep,
    /// The strategy asks for the order's cancel through [`Strategy::next_cancel`]. The intent stays
    /// pending until the venue reports its end, so a fill that beats the cancel still opens its lot.
    Cancel,
}

/// Version of [`GridSnapshot`]'s layout; a snapshot of another version is refused, never guessed at.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// Everything a [`Grid`] is, as plain data: restoring it ([`Grid::restore`]) gives a grid that behaves
/// exactly as the one snapshotted, at any point (between bars, between two `next_intent` calls of a
/// bar, with orders in flight or partly filled). Floats survive JSON exactly (serde_json's
/// `float_roundtrip` is on workspace-wide).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridSnapshot {
    /// [`SNAPSHOT_FORMAT`] when written.
    pub format: u32,
    pub params: GridParams,
    pub mode: GridMode,
    #[serde(default)]
    pub joined_in_flight: JoinedInFlight,
    /// The next trigger id to hand out.
    pub next_trigger: u64,
    /// The next intent number to hand out (client order ids continue from it after a restore).
    pub next_intent: u64,
    /// The last bar's time and evaluation (what intents of that bar are priced and timed by).
    pub now: i64,
    pub eval: Eval,
    /// Buy triggers in store order (the firing order), pending ones included.
    pub buy_triggers: Vec<BuyTrigger>,
    pub sell_triggers: Vec<SellTrigger>,
    pub lots: Vec<Lot>,
    pub history: Vec<GridTrade>,
    /// Every trigger line, those the join filter removed included.
    pub lines: Vec<TriggerLine>,
    pub pending: Vec<PendingOrder>,
    /// Cancels asked for and not yet taken by the driver.
    pub cancels: Vec<IntentId>,
    /// The current bar's fired buys not yet turned into intents: (trigger, fire price, trigger price).
    pub bar_buys: Vec<(u64, f64, f64)>,
    /// The current bar's fired sells not yet turned into intents: (trigger, fire price).
    pub bar_sells: Vec<(u64, f64)>,
    /// Splits applied to this state, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub splits: Vec<SplitAdjustment>,
}

/// A snapshot that cannot be a grid's state.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SnapshotError {
    #[error("grid snapshot format {found} is not {SNAPSHOT_FORMAT}: restore it with the version of vectura that wrote it")]
    Format { found: u32 },
    #[error("grid snapshot params: {0}")]
    Params(#[from] ParamError),
    #[error("grid snapshot {field}: {detail}")]
    Invalid { field: &'static str, detail: String },
}

/// The grid strategy's whole state.
#[derive(Debug, Clone)]
pub struct Grid {
    p: GridParams,
    mode: GridMode,
    k_cap: f64,
    k_below: f64,
    k_above: f64,
    k_after: f64,
    buys: Vec<BuyTrigger>,
    dead_buys: usize,
    sells: Vec<SellTrigger>,
    lots: Vec<Lot>,
    history: Vec<GridTrade>,
    lines: Vec<TriggerLine>,
    line_of: Vec<u32>,
    pending: Vec<PendingOrder>,
    joined_in_flight: JoinedInFlight,
    cancels: Vec<IntentId>,
    next_trigger: u64,
    next_intent: u64,
    // The snapshot of one bar: fired buys (trigger id, price) and sells (index into `sells` by id, price).
    fire_buys: Vec<(u64, f64, f64)>,
    fire_sells: Vec<(u64, f64)>,
    cursor_b: usize,
    cursor_s: usize,
    now: i64,
    eval: Eval,
    /// Cached extremes of armed triggers: (highest below-buy, lowest higher-buy, lowest sell); `None`
    /// after any change to the triggers.
    band_cache: std::cell::Cell<Option<(f64, f64, f64)>>,
    splits: Vec<SplitAdjustment>,
}

const NO_LINE: u32 = u32::MAX;

impl Grid {
    /// A fresh grid: one "higher" buy trigger at −1, so the first evaluated price buys.
    pub fn new(p: GridParams, mode: GridMode) -> Grid {
        Grid {
            p,
            mode,
            k_cap: p.capital_pct / 100.0,
            k_below: 1.0 - p.buy_below_pct / 100.0,
            k_above: 1.0 + p.sell_above_pct / 100.0,
            k_after: 1.0 + p.buy_after_sell_pct / 100.0,
            buys: vec![BuyTrigger {
                id: FIRST_ORDER,
                price: -1.0,
                dir: Dir::Higher,
                pending: None,
                dead: false,
            }],
            dead_buys: 0,
            sells: Vec::new(),
            lots: Vec::new(),
            history: Vec::new(),
            lines: Vec::new(),
            line_of: vec![NO_LINE],
            pending: Vec::new(),
            joined_in_flight: JoinedInFlight::Keep,
            cancels: Vec::new(),
            next_trigger: 1,
            next_intent: 1,
            fire_buys: Vec::new(),
            fire_sells: Vec::new(),
            cursor_b: 0,
            cursor_s: 0,
            now: 0,
            eval: Eval::Close,
            band_cache: std::cell::Cell::new(None),
            splits: Vec::new(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &GridParams {
        &self.p
    }

    /// Buy triggers in store order (the firing order).
    pub fn buy_triggers(&self) -> impl Iterator<Item = &BuyTrigger> + Clone {
        self.buys.iter().filter(|t| !t.dead)
    }

    /// Removes the buy trigger at store index `i`. With joining off it is only marked, and the store is
    /// compacted when half of it is dead, so a removal costs no shift of thousands of triggers.
    fn remove_buy(&mut self, i: usize) {
        if self.buys[i].pending.is_none() {
            self.band_disarm(self.buys[i].price, Some(self.buys[i].dir));
        }
        if self.p.order_gap_pct == -1.0 {
            self.buys[i].dead = true;
            self.dead_buys += 1;
            if self.dead_buys > 32 && self.dead_buys * 2 > self.buys.len() {
                self.buys.retain(|t| !t.dead);
                self.dead_buys = 0;
            }
        } else {
            self.buys.remove(i);
        }
    }

    /// Sell triggers in store order.
    pub fn sell_triggers(&self) -> &[SellTrigger] {
        &self.sells
    }

    /// Open lots in the order they were opened.
    pub fn lots(&self) -> &[Lot] {
        &self.lots
    }

    /// Every executed trade.
    pub fn history(&self) -> &[GridTrade] {
        &self.history
    }

    /// Trigger lines in creation order, without those the join filter removed.
    pub fn trigger_lines(&self) -> impl Iterator<Item = &TriggerLine> {
        self.lines.iter().filter(|l| !l.removed)
    }

    /// Where buy trigger `id` (at `price`) sits in the store, found by binary search: the store is in
    /// ascending id order with joining off (appends, order-keeping removals) and in ascending price order
    /// with joining on (every trade re-sorts).
    #[inline]
    fn find_buy(&self, id: u64, price: f64) -> Option<usize> {
        if self.p.order_gap_pct == -1.0 {
            self.buys
                .binary_search_by_key(&id, |t| t.id)
                .ok()
                .filter(|&i| !self.buys[i].dead)
        } else {
            let from = self.buys.partition_point(|t| t.price < price);
            self.buys[from..]
                .iter()
                .take_while(|t| t.price == price)
                .position(|t| t.id == id)
                .map(|k| from + k)
        }
    }

    /// Keeps the cached band right when an armed trigger appears (added, or its order ended).
    #[inline]
    fn band_arm(&self, price: f64, kind: Option<Dir>) {
        if let Some((lo, hi, sh)) = self.band_cache.get() {
            self.band_cache.set(Some(match kind {
                Some(Dir::Below) => (lo.max(price), hi, sh),
                Some(Dir::Higher) => (lo, hi.min(price), sh),
                None => (lo, hi, sh.min(price)),
            }));
        }
    }

    /// Drops the cached band when an armed trigger that may be an extreme goes away (removed, or pending).
    #[inline]
    fn band_disarm(&self, price: f64, kind: Option<Dir>) {
        if let Some((lo, hi, sh)) = self.band_cache.get() {
            let extreme = match kind {
                Some(Dir::Below) => price >= lo,
                Some(Dir::Higher) => price <= hi,
                None => price <= sh,
            };
            if extreme {
                self.band_cache.set(None);
            }
        }
    }

    /// Where sell trigger `id` sits: sell triggers are kept in ascending id order.
    #[inline]
    fn find_sell(&self, id: u64) -> Option<usize> {
        self.sells.binary_search_by_key(&id, |t| t.id).ok()
    }

    /// Where the lot opened by `intent` sits: lots are kept in ascending intent order.
    #[inline]
    fn find_lot(&self, intent: IntentId) -> Option<usize> {
        self.lots.binary_search_by_key(&intent, |l| l.id).ok()
    }

    /// Would a buy now be vetoed by the cash floor? (It depends on cash only, so one check covers a tick.)
    #[inline]
    fn vetoed(&self, cash: f64) -> bool {
        let use_cash = floor_dp(cash * self.k_cap, 1e4);
        cash - use_cash < self.p.cash_floor
    }

    fn new_trigger_id(&mut self, side: Side, price: f64) -> u64 {
        let id = self.next_trigger;
        self.next_trigger += 1;
        if self.mode.record_lines {
            self.line_of.push(self.lines.len() as u32);
            self.lines.push(TriggerLine {
                id,
                side,
                price,
                start: self.now,
                executed: None,
                removed: false,
            });
        } else {
            self.line_of.push(NO_LINE);
        }
        id
    }

    fn line_mut(&mut self, id: u64) -> Option<&mut TriggerLine> {
        match self.line_of.get(id as usize) {
            Some(&i) if i != NO_LINE => self.lines.get_mut(i as usize),
            _ => None,
        }
    }

    fn run_join(&mut self) {
        if self.p.order_gap_pct != -1.0 {
            self.band_cache.set(None);
        }
        let gap = self.p.order_gap_pct;
        let mut buys = std::mem::take(&mut self.buys);
        let cancel = self.joined_in_flight == JoinedInFlight::Cancel;
        let record = self.mode.record_lines;
        join(&mut buys, gap, |t| {
            if record {
                if let Some(&i) = self.line_of.get(t.id as usize) {
                    if i != NO_LINE {
                        self.lines[i as usize].removed = true;
                    }
                }
            }
            // A removed trigger whose order is out: the order is never orphaned. Its intent stays
            // pending (a fill opens the lot, an end clears it); under `Cancel` the driver is asked to
            // cancel it too.
            if let (true, Some(id)) = (cancel, t.pending) {
                self.cancels.push(IntentId(id));
            }
        });
        self.buys = buys;
    }

    /// The price a trigger fires at on this tick, if it fires.
    #[inline]
    fn fire_price(tick: &Tick, at: f64, dir: Dir) -> Option<f64> {
        match tick.eval {
            Eval::Close => {
                let p = tick.close;
                let hit = match dir {
                    Dir::Below => p <= at,
                    Dir::Higher => p >= at,
                };
                hit.then_some(p)
            }
            Eval::Touch => {
                // An open outside the bar's range (bad data) is clamped so that a flat bar behaves as `close`.
                let open = tick
                    .open
                    .clamp(tick.low.min(tick.high), tick.high.max(tick.low));
                match dir {
                    Dir::Below if open <= at => Some(open),
                    Dir::Below if tick.low <= at => Some(at),
                    Dir::Higher if open >= at => Some(open),
                    Dir::Higher if tick.high >= at => Some(at),
                    _ => None,
                }
            }
        }
    }

    /// Applies an order's (total) fill. `done`: no more of the order will fill.
    fn complete(&mut self, kind: PendingKind, fill: &Fill, done: bool) {
        match kind {
            PendingKind::Buy { trigger, price } => {
                self.apply_buy(fill, trigger, price);
                self.history.push(GridTrade {
                    intent: fill.intent,
                    side: Side::Buy,
                    ts: fill.ts,
                    shares: fill.qty,
                    price: fill.price,
                    closes: None,
                });
            }
            PendingKind::Sell { trigger } => {
                let Some(i) = self.find_sell(trigger) else {
                    return;
                };
                let lot = self.sells[i].lot;
                self.history.push(GridTrade {
                    intent: fill.intent,
                    side: Side::Sell,
                    ts: fill.ts,
                    shares: fill.qty,
                    price: fill.price,
                    closes: Some(lot),
                });
                let remaining = self.sells[i].shares - fill.qty;
                if done || remaining <= 0.0 {
                    self.apply_sell(lot, trigger, fill.price, fill.ts);
                } else {
                    // Part of the lot was sold and the rest of the order ended: the rest stays a lot
                    // (at its buy price) on its trigger, which re-arms.
                    self.sells[i].shares = remaining;
                    if let Some(l) = self.find_lot(lot) {
                        self.lots[l].shares = remaining;
                    }
                }
            }
        }
    }

    /// Stops asking for the cancel of an intent that has ended.
    #[inline]
    fn forget_cancel(&mut self, intent: IntentId) {
        if !self.cancels.is_empty() {
            self.cancels.retain(|&c| c != intent);
        }
    }

    /// Sets what happens to an order in flight whose buy trigger the join filter removes.
    pub fn set_joined_in_flight(&mut self, v: JoinedInFlight) {
        self.joined_in_flight = v;
    }

    /// Intents out at the venue, awaiting fills or their end.
    pub fn pending(&self) -> &[PendingOrder] {
        &self.pending
    }

    /// The shares the venue holds for this grid: the open lots, plus what buys in flight have
    /// filled, minus what sells in flight have sold (a lot sold in parts keeps its full shares until
    /// its order ends, so its sold parts count against it).
    pub fn position(&self) -> f64 {
        let lots: f64 = self.lots.iter().map(|l| l.shares).sum();
        self.pending.iter().fold(lots, |acc, p| match p.kind {
            PendingKind::Buy { .. } => acc + p.filled,
            PendingKind::Sell { .. } => acc - p.filled,
        })
    }

    /// The next intent number (the counter client order ids are made from).
    pub fn next_intent_id(&self) -> IntentId {
        IntentId(self.next_intent)
    }

    /// The grid's whole state (see [`GridSnapshot`]).
    pub fn snapshot(&self) -> GridSnapshot {
        let mut s = self.snapshot_without_history();
        s.history = self.history.clone();
        s
    }

    /// [`Grid::snapshot`] with `history` left empty: what a live run saves every bar (its history only
    /// grows, so the store appends the new trades apart instead of copying the whole of it each time).
    pub fn snapshot_without_history(&self) -> GridSnapshot {
        GridSnapshot {
            format: SNAPSHOT_FORMAT,
            params: self.p,
            mode: self.mode,
            joined_in_flight: self.joined_in_flight,
            next_trigger: self.next_trigger,
            next_intent: self.next_intent,
            now: self.now,
            eval: self.eval,
            buy_triggers: self.buy_triggers().copied().collect(),
            sell_triggers: self.sells.clone(),
            lots: self.lots.clone(),
            history: Vec::new(),
            lines: self.lines.clone(),
            pending: self.pending.clone(),
            cancels: self.cancels.clone(),
            bar_buys: self.fire_buys[self.cursor_b.min(self.fire_buys.len())..].to_vec(),
            bar_sells: self.fire_sells[self.cursor_s.min(self.fire_sells.len())..].to_vec(),
            splits: self.splits.clone(),
        }
    }

    /// Splits applied to this state, oldest first.
    pub fn splits(&self) -> &[SplitAdjustment] {
        &self.splits
    }

    /// Applies a split to the state: every open lot's shares (and its sell trigger's) multiplied by
    /// `ratio`, every lot and trigger price divided by it; the history stays as executed and the
    /// adjustment is recorded. Applying the same split (same `effective`) again changes nothing
    /// (false). Refused while orders are out: their fills would be in the old shares.
    pub fn apply_split(&mut self, effective: i64, ratio: f64) -> Result<bool, SplitRefused> {
        if !(ratio.is_finite() && ratio > 0.0) {
            return Err(SplitRefused::BadRatio(ratio));
        }
        if self.splits.iter().any(|s| s.effective == effective) {
            return Ok(false);
        }
        if !self.pending.is_empty() {
            return Err(SplitRefused::OrdersInFlight(self.pending.len()));
        }
        for l in &mut self.lots {
            l.shares *= ratio;
            l.price /= ratio;
        }
        for t in &mut self.sells {
            t.shares *= ratio;
            t.price /= ratio;
        }
        // The "higher" first-order trigger at −1 stays below every price whatever the ratio.
        for t in &mut self.buys {
            if t.price > 0.0 {
                t.price /= ratio;
            }
        }
        for l in self.lines.iter_mut().filter(|l| l.executed.is_none()) {
            if l.price > 0.0 {
                l.price /= ratio;
            }
        }
        self.band_cache.set(None);
        self.splits.push(SplitAdjustment { effective, ratio });
        Ok(true)
    }

    /// The grid a [`Grid::snapshot`] was taken of. Refuses a snapshot that breaks the grid's invariants
    /// (ids beyond the counters, stores out of order), naming the field.
    pub fn restore(s: GridSnapshot) -> Result<Grid, SnapshotError> {
        if s.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format { found: s.format });
        }
        s.params.validate()?;
        let bad = |field, detail: String| Err(SnapshotError::Invalid { field, detail });
        if !(s.mode.share_scale.is_finite() && s.mode.share_scale >= 1.0) {
            return bad(
                "mode.share_scale",
                format!("{} is not a power of ten of at least 1", s.mode.share_scale),
            );
        }
        let nt = s.next_trigger;
        let ni = s.next_intent;
        let too_big = [
            (
                "buy_triggers",
                "next_trigger",
                nt,
                s.buy_triggers.iter().map(|t| t.id).max(),
            ),
            (
                "sell_triggers",
                "next_trigger",
                nt,
                s.sell_triggers.iter().map(|t| t.id).max(),
            ),
            (
                "lines",
                "next_trigger",
                nt,
                s.lines.iter().map(|l| l.id).max(),
            ),
            (
                "pending",
                "next_intent",
                ni,
                s.pending.iter().map(|p| p.intent.0).max(),
            ),
            (
                "lots",
                "next_intent",
                ni,
                s.lots.iter().map(|l| l.id.0).max(),
            ),
            (
                "history",
                "next_intent",
                ni,
                s.history.iter().map(|t| t.intent.0).max(),
            ),
            (
                "cancels",
                "next_intent",
                ni,
                s.cancels.iter().map(|c| c.0).max(),
            ),
        ];
        for (field, counter, next, max) in too_big {
            if let Some(id) = max.filter(|&id| id >= next) {
                return bad(field, format!("id {id} is not below {counter} {next}"));
            }
        }
        if nt > u32::MAX as u64 {
            return bad("next_trigger", format!("{nt} is beyond 2^32 triggers"));
        }
        let joining = s.params.order_gap_pct != -1.0;
        let ordered = s.buy_triggers.windows(2).all(|w| {
            if joining {
                w[0].price <= w[1].price
            } else {
                w[0].id < w[1].id
            }
        });
        if !ordered {
            return bad(
                "buy_triggers",
                format!(
                    "not in ascending {} order (as the grid keeps them)",
                    if joining { "price" } else { "id" }
                ),
            );
        }
        if !s.sell_triggers.windows(2).all(|w| w[0].id < w[1].id) {
            return bad("sell_triggers", "not in ascending id order".into());
        }
        if !s.lots.windows(2).all(|w| w[0].id < w[1].id) {
            return bad("lots", "not in ascending intent order".into());
        }
        let mut g = Grid::new(s.params, s.mode);
        g.buys = s.buy_triggers;
        for t in &mut g.buys {
            t.dead = false;
        }
        g.sells = s.sell_triggers;
        g.lots = s.lots;
        g.history = s.history;
        g.line_of = vec![NO_LINE; nt as usize];
        for (i, l) in s.lines.iter().enumerate() {
            g.line_of[l.id as usize] = i as u32;
        }
        g.lines = s.lines;
        g.pending = s.pending;
        g.joined_in_flight = s.joined_in_flight;
        g.cancels = s.cancels;
        g.next_trigger = nt;
        g.next_intent = ni;
        g.now = s.now;
        g.eval = s.eval;
        g.fire_buys = s.bar_buys;
        g.fire_sells = s.bar_sells;
        g.splits = s.splits;
        Ok(g)
    }

    fn apply_buy(&mut self, fill: &Fill, trigger: u64, at: f64) {
        let p = fill.price;
        // The original removes the fired trigger (if joining has not already), adds the follow-up
        // "below" trigger and joins, then appends the lot's sell trigger and the lot.
        if let Some(i) = self.find_buy(trigger, at) {
            self.remove_buy(i);
            if let Some(l) = self.line_mut(trigger) {
                l.executed = Some(fill.ts);
            }
        }
        let below = self.new_trigger_id(Side::Buy, p * self.k_below);
        self.buys.push(BuyTrigger {
            id: below,
            price: p * self.k_below,
            dir: Dir::Below,
            pending: None,
            dead: false,
        });
        self.band_arm(p * self.k_below, Some(Dir::Below));
        self.run_join();
        let sell_at = p * self.k_above;
        let sid = self.new_trigger_id(Side::Sell, sell_at);
        self.band_arm(sell_at, None);
        self.sells.push(SellTrigger {
            id: sid,
            price: sell_at,
            shares: fill.qty,
            lot: fill.intent,
            lot_opened: fill.ts,
            pending: None,
        });
        let lot = Lot {
            id: fill.intent,
            price: p,
            shares: fill.qty,
            opened: fill.ts,
        };
        // Lots stay in intent order (`find_lot` searches them): a broker may fill a later order
        // first; the backtest always appends.
        match self.lots.last() {
            Some(last) if last.id > lot.id => {
                let at = self.lots.partition_point(|l| l.id < lot.id);
                self.lots.insert(at, lot);
            }
            _ => self.lots.push(lot),
        }
    }

    fn apply_sell(&mut self, lot: IntentId, trigger: u64, price: f64, ts: i64) {
        if let Some(i) = self.find_lot(lot) {
            self.lots.remove(i);
        }
        if let Some(i) = self.find_sell(trigger) {
            let t = self.sells.remove(i);
            if t.pending.is_none() {
                self.band_disarm(t.price, None);
            }
        }
        if let Some(l) = self.line_mut(trigger) {
            l.executed = Some(ts);
        }
        let down = price * self.k_below;
        let up = price * self.k_after;
        let d = self.new_trigger_id(Side::Buy, down);
        self.buys.push(BuyTrigger {
            id: d,
            price: down,
            dir: Dir::Below,
            pending: None,
            dead: false,
        });
        self.band_arm(down, Some(Dir::Below));
        let u = self.new_trigger_id(Side::Buy, up);
        self.buys.push(BuyTrigger {
            id: u,
            price: up,
            dir: Dir::Higher,
            pending: None,
            dead: false,
        });
        self.band_arm(up, Some(Dir::Higher));
        self.run_join();
    }

    fn clear_trigger_pending(&mut self, kind: PendingKind) {
        match kind {
            PendingKind::Buy { trigger, price, .. } => {
                if let Some(i) = self.find_buy(trigger, price) {
                    if self.buys[i].pending.take().is_some() {
                        self.band_arm(self.buys[i].price, Some(self.buys[i].dir));
                    }
                }
            }
            PendingKind::Sell { trigger } => {
                if let Some(i) = self.find_sell(trigger) {
                    if self.sells[i].pending.take().is_some() {
                        self.band_arm(self.sells[i].price, None);
                    }
                }
            }
        }
    }
}

impl Strategy for Grid {
    fn name(&self) -> &'static str {
        "grid"
    }

    fn quiet_band(&self, account: &Account) -> Option<(f64, f64)> {
        Some(self.quiet_band_for(account.cash))
    }

    fn on_bar(&mut self, tick: &Tick, account: &Account, gate: &dyn SellGate) {
        self.now = tick.ts;
        self.eval = tick.eval;
        self.fire_buys.clear();
        self.fire_sells.clear();
        self.cursor_b = 0;
        self.cursor_s = 0;
        // The cached extremes tell whether any buy or any sell can fire at all on this bar.
        let _ = self.quiet_band_for(account.cash);
        let (b_lo, b_hi, s_hi) =
            self.band_cache
                .get()
                .unwrap_or((f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY));
        let (bar_lo, bar_hi) = match tick.eval {
            Eval::Close => (tick.close, tick.close),
            Eval::Touch => (tick.low.min(tick.open), tick.high.max(tick.open)),
        };
        let buys_may_fire = bar_lo <= b_lo || bar_hi >= b_hi;
        let sells_may_fire = bar_hi >= s_hi;
        // Cash does not change while buys are vetoed, so if the first is vetoed, all of this tick's are.
        if buys_may_fire && !self.vetoed(account.cash) {
            for t in &self.buys {
                if t.pending.is_none() && !t.dead {
                    if let Some(px) = Self::fire_price(tick, t.price, t.dir) {
                        self.fire_buys.push((t.id, px, t.price));
                    }
                }
            }
        }
        for t in self.sells.iter().filter(|_| sells_may_fire) {
            if t.pending.is_none() {
                if let Some(px) = Self::fire_price(tick, t.price, Dir::Higher) {
                    if gate.allow_sell(t.lot_opened, tick.ts) {
                        self.fire_sells.push((t.id, px));
                    }
                }
            }
        }
    }

    fn next_intent(&mut self, account: &Account, gate: &dyn SellGate) -> Option<OrderIntent> {
        while self.cursor_b < self.fire_buys.len() {
            let (tid, px, at) = self.fire_buys[self.cursor_b];
            self.cursor_b += 1;
            let cash = account.cash;
            let use_cash = floor_dp(cash * self.k_cap, 1e4);
            if cash - use_cash < self.p.cash_floor {
                // Vetoed buys leave cash as it is, so every later buy of this tick is vetoed too.
                self.cursor_b = self.fire_buys.len();
                break;
            }
            let pos = self.find_buy(tid, at);
            // vectura-v1 fires a buy even when an earlier buy of this tick joined its trigger away.
            if pos.is_none() && !self.mode.compat_v1 {
                continue;
            }
            let shares = floor_dp(use_cash / px, self.mode.share_scale);
            if !(shares > 0.0) && !self.mode.compat_v1 {
                continue;
            }
            let id = IntentId(self.next_intent);
            self.next_intent += 1;
            if let Some(i) = pos {
                self.buys[i].pending = Some(id.0);
                self.band_disarm(self.buys[i].price, Some(self.buys[i].dir));
            }
            self.pending.push(PendingOrder::new(
                id,
                PendingKind::Buy {
                    trigger: tid,
                    price: at,
                },
            ));
            let kind = match (self.eval, pos) {
                (Eval::Touch, Some(i)) => OrderKind::Touch {
                    trigger: self.buys[i].price,
                },
                _ => OrderKind::Market,
            };
            return Some(OrderIntent {
                id,
                side: Side::Buy,
                qty: shares,
                ref_price: px,
                kind,
                closes: None,
                all_in: false,
            });
        }
        while self.cursor_s < self.fire_sells.len() {
            let (tid, px) = self.fire_sells[self.cursor_s];
            self.cursor_s += 1;
            let Some(i) = self.find_sell(tid) else {
                continue;
            };
            let t = self.sells[i];
            // Re-checked: an earlier sell of this tick may have made this one a day trade too many.
            if !gate.allow_sell(t.lot_opened, self.now) {
                continue;
            }
            let id = IntentId(self.next_intent);
            self.next_intent += 1;
            self.sells[i].pending = Some(id.0);
            self.band_disarm(self.sells[i].price, None);
            self.pending
                .push(PendingOrder::new(id, PendingKind::Sell { trigger: tid }));
            let kind = match self.eval {
                Eval::Touch => OrderKind::Touch { trigger: t.price },
                Eval::Close => OrderKind::Market,
            };
            return Some(OrderIntent {
                id,
                side: Side::Sell,
                qty: t.shares,
                ref_price: px,
                kind,
                closes: Some(t.lot),
                all_in: false,
            });
        }
        None
    }

    fn on_fill(&mut self, fill: &Fill) {
        let Some(idx) = self.pending.iter().position(|p| p.intent == fill.intent) else {
            return;
        };
        let p = self.pending[idx];
        if fill.done && p.parts == 0 {
            // The whole intent in one fill (every backtest fill): applied exactly as reported.
            self.pending.swap_remove(idx);
            self.complete(p.kind, fill, true);
            self.clear_trigger_pending(p.kind);
            self.forget_cancel(fill.intent);
            return;
        }
        self.pending[idx].add(fill);
        if fill.done {
            let p = self.pending.swap_remove(idx);
            self.complete(p.kind, &p.total(true), true);
            self.clear_trigger_pending(p.kind);
            self.forget_cancel(fill.intent);
        }
    }

    fn on_order_end(&mut self, intent: IntentId, _end: &OrderEnd) {
        if let Some(i) = self.pending.iter().position(|p| p.intent == intent) {
            let p = self.pending.swap_remove(i);
            if p.parts > 0 && p.filled > 0.0 {
                // The rest of a partly filled order was cancelled or expired: what filled stands, as
                // one fill (a smaller lot with triggers from its VWAP, or a smaller remaining lot).
                self.complete(p.kind, &p.total(false), false);
            }
            self.clear_trigger_pending(p.kind);
        }
        self.forget_cancel(intent);
    }

    fn next_cancel(&mut self) -> Option<IntentId> {
        if self.cancels.is_empty() {
            None
        } else {
            Some(self.cancels.remove(0))
        }
    }

    fn trigger_lines(&self) -> Vec<TriggerLine> {
        self.lines.iter().filter(|l| !l.removed).copied().collect()
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({
            "strategy": "grid",
            "params": self.p,
            "buy_triggers": self.buy_triggers().collect::<Vec<_>>(),
            "sell_triggers": self.sells,
            "lots": self.lots,
            "history": self.history,
        })
    }
}

impl Grid {
    /// The band for a given cash level: buys count only when a buy at that cash would not be vetoed.
    pub fn quiet_band_for(&self, cash: f64) -> (f64, f64) {
        #[cfg(debug_assertions)]
        if let Some(c) = self.band_cache.get() {
            self.band_cache.set(None);
            let _ = self.quiet_band_for(cash);
            assert_eq!(self.band_cache.get(), Some(c), "the cached band went stale");
        }
        let (b_lo, b_hi, s_hi) = match self.band_cache.get() {
            Some(c) => c,
            None => {
                let mut lo = f64::NEG_INFINITY;
                let mut hi = f64::INFINITY;
                for t in &self.buys {
                    if t.pending.is_none() && !t.dead {
                        match t.dir {
                            Dir::Below if t.price > lo => lo = t.price,
                            Dir::Higher if t.price < hi => hi = t.price,
                            _ => {}
                        }
                    }
                }
                let mut sh = f64::INFINITY;
                for t in &self.sells {
                    if t.pending.is_none() && t.price < sh {
                        sh = t.price;
                    }
                }
                self.band_cache.set(Some((lo, hi, sh)));
                (lo, hi, sh)
            }
        };
        if self.vetoed(cash) {
            (f64::NEG_INFINITY, s_hi)
        } else {
            (b_lo, b_hi.min(s_hi))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AllowAll;

    fn fill_now(g: &mut Grid, i: &OrderIntent, ts: i64) -> Fill {
        let f = Fill {
            intent: i.id,
            side: i.side,
            qty: i.qty,
            price: i.ref_price,
            commission: 0.0,
            ts,
            done: true,
        };
        g.on_fill(&f);
        f
    }

    #[test]
    fn the_position_counts_parts_of_a_buy_for_and_parts_of_a_sell_against() {
        let mut g = Grid::new(GridParams::default(), GridMode::default());
        let a = Account {
            cash: 1000.0,
            equity: 1000.0,
        };
        g.on_bar(&Tick::at(1, 50.0), &a, &AllowAll);
        let buy = g.next_intent(&a, &AllowAll).expect("first order buys");
        let part = |i: &OrderIntent, qty: f64, done: bool| Fill {
            intent: i.id,
            side: i.side,
            qty,
            price: i.ref_price,
            commission: 0.0,
            ts: 2,
            done,
        };
        g.on_fill(&part(&buy, 5.0, false));
        assert_eq!((g.lots().len(), g.position()), (0, 5.0), "5 of 12 bought");
        g.on_fill(&part(&buy, 7.0, true));
        assert_eq!((g.lots().len(), g.position()), (1, 12.0));
        let b = Account {
            cash: 400.0,
            equity: 1108.0,
        };
        g.on_bar(&Tick::at(3, 59.0), &b, &AllowAll);
        let sell = g.next_intent(&b, &AllowAll).expect("the lot sells at 59");
        assert_eq!((sell.side, sell.qty), (Side::Sell, 12.0));
        g.on_fill(&part(&sell, 4.0, false));
        // The lot keeps its 12 shares until the sell ends; the venue holds 8.
        assert_eq!((g.lots()[0].shares, g.position()), (12.0, 8.0));
        g.on_order_end(sell.id, &OrderEnd::Cancelled);
        assert_eq!((g.lots()[0].shares, g.position()), (8.0, 8.0));
    }

    #[test]
    fn a_split_multiplies_shares_divides_prices_keeps_history_and_applies_once() {
        let mut g = Grid::new(GridParams::default(), GridMode::default());
        let a = Account {
            cash: 1000.0,
            equity: 1000.0,
        };
        g.on_bar(&Tick::at(1, 50.0), &a, &AllowAll);
        let buy = g.next_intent(&a, &AllowAll).expect("first order buys");
        assert_eq!(
            g.apply_split(100, 2.0),
            Err(SplitRefused::OrdersInFlight(1))
        );
        fill_now(&mut g, &buy, 1);
        let history = g.snapshot().history;
        assert_eq!(g.apply_split(100, 2.0), Ok(true));
        assert_eq!(g.apply_split(100, 2.0), Ok(false), "the same split twice");
        assert_eq!((g.lots()[0].shares, g.lots()[0].price), (24.0, 25.0));
        let sells: Vec<_> = g
            .sell_triggers()
            .iter()
            .map(|t| (t.price, t.shares))
            .collect();
        assert_eq!(sells, vec![(29.5, 24.0)]);
        let buys: Vec<_> = g.buy_triggers().map(|t| t.price).collect();
        assert_eq!(buys, vec![24.5]);
        assert_eq!(g.snapshot().history, history, "history stays as executed");
        assert_eq!(
            g.splits(),
            &[SplitAdjustment {
                effective: 100,
                ratio: 2.0
            }]
        );
        // Restored, it remembers the split; at 29.5 the lot sells its 24 new shares.
        let mut g = Grid::restore(g.snapshot()).expect("restores");
        assert_eq!(g.apply_split(100, 2.0), Ok(false));
        let b = Account {
            cash: 400.0,
            equity: 1108.0,
        };
        g.on_bar(&Tick::at(200, 29.5), &b, &AllowAll);
        let sell = g.next_intent(&b, &AllowAll).expect("the lot sells");
        assert_eq!((sell.side, sell.qty), (Side::Sell, 24.0));
        assert!(matches!(
            g.apply_split(300, f64::NAN),
            Err(SplitRefused::BadRatio(_))
        ));
    }

    #[test]
    fn every_parameter_has_a_range() {
        let ok = GridParams::default();
        assert_eq!(ok.validate(), Ok(()));
        let with = |f: fn(&mut GridParams)| {
            let mut p = GridParams::default();
            f(&mut p);
            p.validate().map_err(|e| e.name)
        };
        assert_eq!(with(|p| p.capital_pct = 100.0), Ok(()));
        assert_eq!(with(|p| p.capital_pct = 100.5), Err("capital-pct"));
        assert_eq!(with(|p| p.buy_below_pct = 0.0), Err("buy-below-pct"));
        assert_eq!(with(|p| p.sell_above_pct = f64::NAN), Err("sell-above-pct"));
        assert_eq!(
            with(|p| p.buy_after_sell_pct = 1e308),
            Err("buy-after-sell-pct")
        );
        assert_eq!(with(|p| p.cash_floor = 1e12), Ok(()));
        assert_eq!(with(|p| p.cash_floor = 1.5e12), Err("cash-floor"));
        assert_eq!(with(|p| p.cash_floor = f64::INFINITY), Err("cash-floor"));
        assert_eq!(with(|p| p.order_gap_pct = -1.0), Ok(()));
        assert_eq!(with(|p| p.order_gap_pct = -0.5), Err("order-gap-pct"));
        assert_eq!(with(|p| p.order_gap_pct = 101.0), Err("order-gap-pct"));
        let p = GridParams {
            cash_floor: 1e308,
            ..GridParams::default()
        };
        assert_eq!(
            p.validate().unwrap_err().to_string(),
            "cash-floor is 1e308: it must be a dollar amount from 0 to 1e12"
        );
    }

    #[test]
    fn worked_example_of_1_4_first_buy_then_floor_veto() {
        // 1 000 USD at 50 with the defaults: 600 used, 12 shares, cash 400, triggers at 49 and 59.
        let mut g = Grid::new(GridParams::default(), GridMode::default());
        let mut cash = 1000.0;
        g.on_bar(
            &Tick::at(1, 50.0),
            &Account { cash, equity: cash },
            &AllowAll,
        );
        let buy = g
            .next_intent(&Account { cash, equity: cash }, &AllowAll)
            .expect("first order buys");
        assert_eq!((buy.side, buy.qty, buy.ref_price), (Side::Buy, 12.0, 50.0));
        fill_now(&mut g, &buy, 1);
        cash -= buy.qty * buy.ref_price;
        assert_eq!(cash, 400.0);
        assert!(g
            .next_intent(
                &Account {
                    cash,
                    equity: 1000.0
                },
                &AllowAll
            )
            .is_none());
        let below: Vec<_> = g.buy_triggers().map(|t| (t.price, t.dir)).collect();
        assert_eq!(below, vec![(49.0, Dir::Below)]);
        let sells: Vec<_> = g
            .sell_triggers()
            .iter()
            .map(|t| (t.price, t.shares))
            .collect();
        assert_eq!(sells, vec![(59.0, 12.0)]);
        assert_eq!(g.lots().len(), 1);
        // At 49 the below trigger fires, but 400 − floor4(400 × 0.6) = 160 < 200: the floor vetoes it.
        assert_eq!(
            g.quiet_band_for(cash),
            (f64::NEG_INFINITY, 59.0),
            "a vetoed buy trigger leaves the band"
        );
        g.on_bar(
            &Tick::at(2, 49.0),
            &Account {
                cash,
                equity: 988.0,
            },
            &AllowAll,
        );
        assert!(g
            .next_intent(
                &Account {
                    cash,
                    equity: 988.0
                },
                &AllowAll
            )
            .is_none());
        assert_eq!(
            g.buy_triggers().count(),
            1,
            "the vetoed trigger stays armed"
        );
        // A deposit lifts cash over the floor: the same trigger fires.
        let cash = 1000.0;
        g.on_bar(
            &Tick::at(3, 49.0),
            &Account {
                cash,
                equity: 1588.0,
            },
            &AllowAll,
        );
        let b2 = g
            .next_intent(
                &Account {
                    cash,
                    equity: 1588.0,
                },
                &AllowAll,
            )
            .expect("fires after a deposit");
        assert_eq!(b2.qty, floor_dp(600.0 / 49.0, 1e4));
    }

    #[test]
    fn sell_closes_the_whole_lot_and_adds_two_buy_triggers() {
        let mut g = Grid::new(
            GridParams {
                order_gap_pct: -1.0,
                ..GridParams::default()
            },
            GridMode::default(),
        );
        let acct = Account {
            cash: 1000.0,
            equity: 1000.0,
        };
        g.on_bar(&Tick::at(1, 50.0), &acct, &AllowAll);
        let b = g.next_intent(&acct, &AllowAll).unwrap();
        fill_now(&mut g, &b, 1);
        let acct = Account {
            cash: 400.0,
            equity: 1108.0,
        };
        g.on_bar(&Tick::at(2, 59.0), &acct, &AllowAll);
        let s = g.next_intent(&acct, &AllowAll).unwrap();
        assert_eq!((s.side, s.qty, s.closes), (Side::Sell, 12.0, Some(b.id)));
        fill_now(&mut g, &s, 2);
        assert!(g.lots().is_empty() && g.sell_triggers().is_empty());
        let t: Vec<_> = g.buy_triggers().map(|t| (t.price, t.dir)).collect();
        // Joining off keeps insertion order: the buy's 49, then the sell's below (57.82) and higher (73.75).
        assert_eq!(
            t,
            vec![
                (49.0, Dir::Below),
                (59.0 * 0.98, Dir::Below),
                (59.0 * 1.25, Dir::Higher)
            ]
        );
        assert_eq!(g.history().len(), 2);
    }

    #[test]
    fn an_unfilled_intent_leaves_its_trigger_armed() {
        let mut g = Grid::new(GridParams::default(), GridMode::default());
        let acct = Account {
            cash: 1000.0,
            equity: 1000.0,
        };
        g.on_bar(&Tick::at(1, 50.0), &acct, &AllowAll);
        let b = g.next_intent(&acct, &AllowAll).unwrap();
        // Pending: it cannot fire again while the order is out.
        assert_eq!(g.quiet_band_for(1000.0), (f64::NEG_INFINITY, f64::INFINITY));
        g.on_order_end(b.id, &OrderEnd::Rejected("test".into()));
        let first = g.buy_triggers().next().unwrap();
        assert_eq!(first.id, FIRST_ORDER);
        assert!(first.pending.is_none());
        g.on_bar(&Tick::at(2, 50.0), &acct, &AllowAll);
        assert!(
            g.next_intent(&acct, &AllowAll).is_some(),
            "re-fires on the next bar"
        );
    }

    #[test]
    fn touch_fills_at_the_trigger_or_at_an_open_beyond_it() {
        let t = Tick {
            ts: 0,
            open: 10.0,
            high: 10.5,
            low: 9.0,
            close: 9.5,
            eval: Eval::Touch,
        };
        assert_eq!(Grid::fire_price(&t, 9.2, Dir::Below), Some(9.2));
        assert_eq!(
            Grid::fire_price(&t, 10.2, Dir::Below),
            Some(10.0),
            "opened below the trigger"
        );
        assert_eq!(Grid::fire_price(&t, 10.4, Dir::Higher), Some(10.4));
        assert_eq!(
            Grid::fire_price(&t, 9.9, Dir::Higher),
            Some(10.0),
            "opened above the trigger"
        );
        assert_eq!(Grid::fire_price(&t, 11.0, Dir::Higher), None);
        assert_eq!(Grid::fire_price(&t, 8.0, Dir::Below), None);
    }

    /// A grid (10 % of capital, no floor, 5 % joining) holding two buy triggers in store order
    /// [higher 99 (id 10), below 101 (id 11)]: at 100 both fire.
    fn two_buy_triggers(mode: GridMode) -> Grid {
        let p = GridParams {
            capital_pct: 10.0,
            cash_floor: 0.0,
            order_gap_pct: 5.0,
            ..GridParams::default()
        };
        let mut g = Grid::new(p, mode);
        g.buys = vec![
            BuyTrigger {
                id: 10,
                price: 99.0,
                dir: Dir::Higher,
                pending: None,
                dead: false,
            },
            BuyTrigger {
                id: 11,
                price: 101.0,
                dir: Dir::Below,
                pending: None,
                dead: false,
            },
        ];
        g.next_trigger = 12;
        g.line_of.resize(12, NO_LINE);
        g
    }

    #[test]
    fn compat_fires_a_buy_whose_trigger_joining_removed_in_the_same_tick() {
        // The first buy adds a below trigger at 98, and 101 is within 5 % of that anchor, so joining
        // drops 101 before its buy runs.
        for (compat, want) in [(true, 2), (false, 1)] {
            let mut g = two_buy_triggers(GridMode {
                compat_v1: compat,
                ..GridMode::default()
            });
            let mut cash = 10_000.0;
            g.on_bar(
                &Tick::at(1, 100.0),
                &Account { cash, equity: cash },
                &AllowAll,
            );
            let mut n = 0;
            while let Some(i) = g.next_intent(&Account { cash, equity: cash }, &AllowAll) {
                fill_now(&mut g, &i, 1);
                cash -= i.qty * i.ref_price;
                n += 1;
            }
            assert_eq!(n, want, "compat={compat}");
            assert!(g.buy_triggers().all(|t| t.id != 11), "101 was joined away");
        }
    }

    /// Two buys fired on one bar, both out (next-open fills). The first one's fill adds a "below"
    /// trigger at 98 that joins the second's trigger (101) away while its order is in flight.
    fn two_orders_out_and_the_second_joined_away(in_flight: JoinedInFlight) -> (Grid, OrderIntent) {
        let mut g = two_buy_triggers(GridMode::default());
        g.set_joined_in_flight(in_flight);
        let a = Account {
            cash: 10_000.0,
            equity: 10_000.0,
        };
        g.on_bar(&Tick::at(1, 100.0), &a, &AllowAll);
        let first = g.next_intent(&a, &AllowAll).unwrap();
        let second = g.next_intent(&a, &AllowAll).unwrap();
        assert_eq!(g.pending().len(), 2);
        assert_eq!(g.next_cancel(), None, "nothing removed yet");
        fill_now(&mut g, &first, 2);
        assert!(g.buy_triggers().all(|t| t.id != 11), "101 was joined away");
        (g, second)
    }

    #[test]
    fn a_joined_trigger_with_an_order_out_is_cancelled_or_kept_never_orphaned() {
        // Cancel: the strategy asks once for the second order's cancel; the venue's end clears it.
        let (mut g, second) = two_orders_out_and_the_second_joined_away(JoinedInFlight::Cancel);
        assert_eq!(g.next_cancel(), Some(second.id));
        assert_eq!(g.next_cancel(), None, "asked for once");
        assert_eq!(
            g.pending().len(),
            1,
            "still tracked until the venue reports its end"
        );
        g.on_order_end(second.id, &OrderEnd::Cancelled);
        assert!(g.pending().is_empty());
        assert_eq!(g.lots().len(), 1);
        assert!(
            g.buy_triggers().all(|t| t.pending.is_none()),
            "nothing re-armed"
        );
        // Cancel, but the fill beats the cancel: the lot opens like any other, no cancel left over.
        let (mut g, second) = two_orders_out_and_the_second_joined_away(JoinedInFlight::Cancel);
        fill_now(&mut g, &second, 2);
        assert_eq!(g.next_cancel(), None, "a filled order needs no cancel");
        assert_eq!(g.lots().len(), 2);
        assert!(g.pending().is_empty());
        // Keep (the backtest's behaviour): no cancel; the order fills and opens its lot.
        let (mut g, second) = two_orders_out_and_the_second_joined_away(JoinedInFlight::Keep);
        assert_eq!(g.next_cancel(), None);
        assert_eq!(g.pending().len(), 1);
        fill_now(&mut g, &second, 2);
        assert_eq!(g.lots().len(), 2);
        assert_eq!(g.sell_triggers().len(), 2);
        assert!(g.pending().is_empty());
    }

    #[test]
    fn zero_share_buys_only_in_compat() {
        // 10 % of 300 is 30, which buys 0.0000 shares of a 1e6 stock: the original buys "0 shares".
        let p = GridParams {
            capital_pct: 10.0,
            cash_floor: 0.0,
            ..GridParams::default()
        };
        for (compat, buys) in [(true, true), (false, false)] {
            let mut g = Grid::new(
                p,
                GridMode {
                    compat_v1: compat,
                    ..GridMode::default()
                },
            );
            let acct = Account {
                cash: 300.0,
                equity: 300.0,
            };
            g.on_bar(&Tick::at(1, 1e6), &acct, &AllowAll);
            let i = g.next_intent(&acct, &AllowAll);
            assert_eq!(i.is_some(), buys);
            if let Some(i) = i {
                assert_eq!(i.qty, 0.0);
            }
        }
    }
}
