//! The trader: one [`GridRun`] per enabled symbol, driven one decision step at a time.
//!
//! A step ([`Trader::step`]), for each symbol that is not halted:
//! 1. **sync**: the broker's orders and executions since the run began are compared with ours; every
//!    execution not applied yet is applied and saved with its snapshot and execution id in one
//!    transaction; an order that ended without (full) fill ends its intent (its trigger re-arms);
//!    an order or position we cannot explain halts the symbol (persisted, with what differs and how
//!    to resolve it). A start runs the same sync first ([`Trader::start`]): that is the reconciliation.
//! 2. **decide**: the bar that closed last, if it is a regular-session bar not seen before, goes to the
//!    grid; each intent is saved (with its client order id and the advanced counter, one transaction),
//!    then submitted.
//!
//! When every symbol is done, the step writes what no order waited for (`Trader::finish_step`): the
//! `at_orders` rows of the accepted submissions and the state of bars decided without an order, so
//! that the last of many symbols' orders does not wait for the others' bookkeeping. All of it is
//! durable before the step returns.
//!
//! Rules the issue left open, decided here:
//! - **The current bar.** Only the bar that closed last is decided on (`bar.ts + 60 <= now < bar.ts +
//!   120`). Bars missed during an outage are not traded after the fact (their prices are gone).
//! - **An intent saved but never sent** (a crash between save and submit, or a submission whose
//!   outcome stayed unknown and that the broker does not know): sent while its bar is still the current
//!   one (the decision still holds); after that dropped: its intent ends as cancelled, its trigger
//!   re-arms, and its row reads `dropped`. Its client order id is never reused (the counter was saved).
//! - **Unexplained at the broker**: an order of this symbol since the run began whose client order id
//!   is not this run's, an execution of such an order, or a position that differs from our lots (plus
//!   the filled part of buys in flight, less the sold part of sells in flight) by more than half a
//!   share unit halts the symbol.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vectura_broker::{
    qty_from_f64, Broker, BrokerError, Decimal, MarketData, Order, OrderFilter, OrderQuery,
    OrderRequest, OrderStatus, OrderType, TimeInForce,
};
use vectura_core::calendar;
use vectura_core::{Bar, IntentId, OrderEnd, OrderIntent, RunId, Side};
use vectura_store::{
    AlgoConfig, ExecutionRecord, OrderRow, OrderUpdate, RiskLimits, RunState, SavedRun, Store,
    StoreError,
};
use vectura_strategy::grid::{Grid, GridMode, GridParams};
use vectura_strategy::run::{Applied, GridRun};
use vectura_strategy::{Account, AllowAll, Eval, Strategy, Tick};

use crate::clock::Clock;
use crate::notify::{Event, Notifier};
use crate::schedule::{next_wake, Schedule};

mod controls;
mod splits;
use crate::error::{CrashPoint, TraderError};
use crate::risk;
pub use controls::ControlChanges;
pub use splits::SplitFeed;

/// Seconds a bar lasts.
const BAR_S: i64 = 60;

/// How far before the last sync a sync reads the broker's orders and executions again: covers a
/// broker that shows a fill late and clocks a little apart.
const SYNC_OVERLAP: chrono::Duration = chrono::Duration::minutes(10);

/// An error and its sources, one line (`a: b: c`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

/// How the trader trades.
#[derive(Debug, Clone)]
pub struct TraderConfig {
    /// Share precision of the grid (a power of ten): 1e4 as the backtest, up to 1e9 for Alpaca's
    /// fractional orders, 1 for whole shares.
    pub share_scale: f64,
    /// Time in force of every order.
    pub time_in_force: TimeInForce,
    /// Seconds before the session's open the pre-market step (splits) may run: 1 800, 09:00 New York.
    pub premarket_lead_s: i64,
    /// Where the pre-market step refreshes splits from (none: the stored list only).
    pub splits: Option<SplitFeed>,
    /// The operations webhook: fills, rejects, halts and failed steps (disabled by default).
    pub notify: Notifier,
}

impl Default for TraderConfig {
    fn default() -> Self {
        TraderConfig {
            share_scale: 1e4,
            time_in_force: TimeInForce::Day,
            premarket_lead_s: 1800,
            splits: None,
            notify: Notifier::disabled(),
        }
    }
}

/// What one step did, per symbol (for logs, `--once` output and tests).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepReport {
    /// Bars decided on.
    pub bars: usize,
    /// Orders submitted (first submissions and resends of saved intents).
    pub submitted: usize,
    /// Executions applied.
    pub fills: usize,
    /// Intents ended (rejected, cancelled, expired, dropped).
    pub ended: usize,
    /// Splits applied to the state (the pre-market step).
    pub splits: usize,
    /// Symbols halted in this step, with the reason.
    pub halted: Vec<(String, String)>,
}

/// A symbol's state as `vectura trade status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolStatus {
    pub symbol: String,
    pub run_id: RunId,
    /// Shares held by our open lots.
    pub shares: f64,
    pub lots: usize,
    /// Intents out at the broker.
    pub pending: usize,
    pub halted: Option<String>,
}

/// The full intent as stored in `at_orders.intent`: what a resend needs and which bar decided it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredIntent {
    pub(crate) intent: OrderIntent,
    pub(crate) bar_ts: i64,
    /// The account's cash and equity as read for the bar's first intent: a restart in the middle of a
    /// bar sizes the rest from these (the broker's cash may already show the first orders' fills).
    #[serde(default)]
    pub(crate) bar_cash: Option<(f64, f64)>,
}

/// One traded symbol.
struct SymbolRun {
    run: GridRun,
    limits: RiskLimits,
    halted: Option<String>,
    /// The run's start: orders and executions since then are the run's to explain.
    since: DateTime<Utc>,
    /// The last bar decided on (Unix s).
    last_bar: i64,
    /// The New York day and the price the day's P&L is measured from (the session's first bar's
    /// open), read once a day from the market data (again after a restart: nothing to persist).
    day_start: Option<(chrono::NaiveDate, f64)>,
    /// The New York day the pre-market step last ran (splits checked); again after a restart.
    splits_checked: Option<chrono::NaiveDate>,
    /// When the last complete sync began (none after a start: the first reads the whole run).
    synced: Option<DateTime<Utc>>,
    /// What the last save wrote, so a save writes only what changed (a start knows nothing yet).
    saved: SavedRun,
}

/// The live runtime over a store, a broker and a market-data feed, with an injected clock.
pub struct Trader {
    store: Store,
    broker: Arc<dyn Broker>,
    data: Arc<dyn MarketData>,
    clock: Arc<dyn Clock + Send + Sync>,
    cfg: TraderConfig,
    account: String,
    symbols: BTreeMap<String, SymbolRun>,
    crash: Option<(CrashPoint, u32)>,
    crash_hook: Option<CrashHook>,
    /// The `at_orders` updates of this step's submissions, written when the step ends.
    submitted: Vec<(String, OrderUpdate)>,
    /// The sessions traded in: the broker's calendar, the built-in one as the fallback.
    schedule: Schedule,
}

/// Called where an armed crash point is reached, before the step fails there (the crash tests' binary
/// kills itself in it, so that the process dies at that very point: inside a fill's transaction too).
pub type CrashHook = Arc<dyn Fn(CrashPoint) + Send + Sync>;

fn params_of(c: &AlgoConfig) -> GridParams {
    GridParams {
        capital_pct: c.capital_pct,
        buy_below_pct: c.buy_below_pct,
        sell_above_pct: c.sell_above_pct,
        buy_after_sell_pct: c.buy_after_sell_pct,
        cash_floor: c.cash_floor,
        order_gap_pct: c.order_gap_pct,
    }
}

fn dec(x: Decimal) -> f64 {
    x.to_string().parse().unwrap_or(f64::NAN)
}

fn instant(ts: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(ts, 0).unwrap_or_default()
}

/// The `at_orders` update recording the broker's word on an order.
fn update_of(status: &str, o: Option<&Order>, error: Option<String>) -> OrderUpdate {
    OrderUpdate {
        status: status.to_string(),
        broker_order_id: o.map(|o| o.id.clone()),
        filled_qty: o.map(|o| dec(o.filled_qty)).unwrap_or(0.0),
        filled_avg_price: o.and_then(|o| o.filled_avg_price).map(dec),
        error,
    }
}

fn ends_intent(s: &OrderStatus) -> Option<OrderEnd> {
    match s {
        OrderStatus::Canceled | OrderStatus::Replaced | OrderStatus::DoneForDay => {
            Some(OrderEnd::Cancelled)
        }
        OrderStatus::Expired => Some(OrderEnd::Expired),
        OrderStatus::Rejected => Some(OrderEnd::Rejected("rejected by the broker".into())),
        _ => None,
    }
}

impl Trader {
    /// Loads (or creates) the run of every enabled symbol and reconciles each against the broker:
    /// missed fills applied, saved intents sent or dropped, anything unexplained halting its symbol.
    pub async fn start(
        store: Store,
        broker: Arc<dyn Broker>,
        data: Arc<dyn MarketData>,
        clock: Arc<dyn Clock + Send + Sync>,
        cfg: TraderConfig,
    ) -> Result<(Trader, StepReport), TraderError> {
        let account = broker.account().await?.id;
        let controls = store.trade_controls().await?;
        let enabled: Vec<_> = controls.into_iter().filter(|c| c.enabled).collect();
        if enabled.is_empty() {
            return Err(TraderError::Config(
                "no symbol is enabled for trading: enable one in at_trade_controls (enabled = 1) with its grid in at_algo_config".into(),
            ));
        }
        let mut symbols = BTreeMap::new();
        for c in enabled {
            let sym = c.symbol.clone();
            let run = match store.active_run(&sym).await? {
                Some(stored) => {
                    if stored.account != account {
                        return Err(TraderError::Config(format!(
                            "{sym}: the active run {} trades account {}, the broker is account {account}: use that account's keys, or end the run",
                            stored.run_id, stored.account
                        )));
                    }
                    stored.grid_run()?
                }
                None => {
                    let algo = store.algo_config(&sym).await?.ok_or_else(|| {
                        TraderError::Config(format!(
                            "{sym}: enabled but has no grid in at_algo_config: store its parameters first"
                        ))
                    })?;
                    let params = params_of(&algo);
                    params
                        .validate()
                        .map_err(|e| TraderError::Config(format!("{sym}: at_algo_config: {e}")))?;
                    let grid = Grid::new(
                        params,
                        GridMode {
                            compat_v1: false,
                            share_scale: cfg.share_scale,
                            record_lines: false,
                        },
                    );
                    let id = store
                        .new_run_id(&account, clock.now().saturating_mul(1000))
                        .await?;
                    let run = GridRun::new(id, &sym, grid);
                    store
                        .create_run(&RunState::of_grid(&run, &account)?)
                        .await?;
                    tracing::info!(symbol = %sym, run = %run.run(), "new run");
                    run
                }
            };
            let since = instant(run.run().start_ms().unwrap_or(0).div_euclid(1000));
            let last_bar = run.grid().snapshot().now;
            symbols.insert(
                sym,
                SymbolRun {
                    run,
                    limits: c.limits,
                    halted: c.halt_reason,
                    since,
                    last_bar,
                    day_start: None,
                    splits_checked: None,
                    synced: None,
                    saved: SavedRun::default(),
                },
            );
        }
        let mut t = Trader {
            store,
            broker,
            data,
            clock,
            cfg,
            account,
            symbols,
            crash: None,
            crash_hook: None,
            submitted: Vec::new(),
            schedule: Schedule::built_in(),
        };
        t.refresh_schedule().await;
        let mut report = StepReport::default();
        for sym in t.symbols.keys().cloned().collect::<Vec<_>>() {
            t.sync(&sym, &mut report).await?;
        }
        Ok((t, report))
    }

    /// Makes the trader stop with [`TraderError::Crashed`] the `nth` time (from 0) it reaches `at`.
    pub fn crash_at(&mut self, at: CrashPoint, nth: u32) {
        self.crash = Some((at, nth));
    }

    /// Whether a crash point is armed and not reached yet.
    pub fn crash_armed(&self) -> bool {
        self.crash.is_some()
    }

    /// Calls `hook` where an armed crash point is reached, before the step fails there.
    pub fn on_crash(&mut self, hook: CrashHook) {
        self.crash_hook = Some(hook);
    }

    /// Whether the armed crash point is `at` and this is its time (its count goes down otherwise).
    fn take_crash(&mut self, at: CrashPoint) -> bool {
        if let Some((p, n)) = &mut self.crash {
            if *p == at {
                if *n == 0 {
                    self.crash = None;
                    return true;
                }
                *n -= 1;
            }
        }
        false
    }

    fn reached(&mut self, at: CrashPoint) -> Result<(), TraderError> {
        if self.take_crash(at) {
            if let Some(h) = &self.crash_hook {
                h(at);
            }
            return Err(TraderError::Crashed(at));
        }
        Ok(())
    }

    /// The broker account id the runs trade.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The run of `symbol`.
    pub fn run(&self, symbol: &str) -> Option<&GridRun> {
        self.symbols.get(symbol).map(|s| &s.run)
    }

    /// Per symbol: position, lots, pending orders, halt.
    pub fn status(&self) -> Vec<SymbolStatus> {
        self.symbols
            .iter()
            .map(|(sym, s)| SymbolStatus {
                symbol: sym.clone(),
                run_id: s.run.run().clone(),
                shares: s.run.grid().lots().iter().map(|l| l.shares).sum(),
                lots: s.run.grid().lots().len(),
                pending: s.run.grid().pending().len(),
                halted: s.halted.clone(),
            })
            .collect()
    }

    /// One decision step for every symbol not halted: sync with the broker, then decide on the bar
    /// that closed last. Safe to run again at any time (cron every minute, or the daemon's loop).
    pub async fn step(&mut self) -> Result<StepReport, TraderError> {
        let mut report = StepReport::default();
        // `vectura trade halt` / `resume`, changed limits and grid parameters (the dashboard's
        // settings) reach a running daemon at its next step.
        self.reload_controls().await?;
        self.refresh_schedule().await;
        let syms: Vec<String> = self.symbols.keys().cloned().collect();
        // Symbols whose bar (decided without an order) awaits its save, by index in `syms`.
        let mut unsaved = Vec::new();
        let r = self.step_symbols(&syms, &mut unsaved, &mut report).await;
        // A crash point stands for the process dying there: nothing more is written.
        if matches!(r, Err(TraderError::Crashed(_))) {
            return r.map(|()| report);
        }
        let finished = self.finish_step(&syms, &unsaved).await;
        r.and(finished).map(|()| report)
    }

    /// Reads the broker's calendar when a new New York day began (or a failed read is due again).
    async fn refresh_schedule(&mut self) {
        let now = self.clock.now();
        if self.schedule.due(now) {
            if let Err(why) = self.schedule.refresh(self.broker.as_ref(), now).await {
                tracing::warn!(%why, "calendar not refreshed");
            }
        }
    }

    async fn step_symbols(
        &mut self,
        syms: &[String],
        unsaved: &mut Vec<usize>,
        report: &mut StepReport,
    ) -> Result<(), TraderError> {
        for (i, sym) in syms.iter().enumerate() {
            if self.symbols[sym].halted.is_some() {
                continue;
            }
            self.sync(sym, report).await?;
            if self.symbols[sym].halted.is_some() {
                continue;
            }
            if self.decide(sym, report).await? {
                unsaved.push(i);
            }
        }
        Ok(())
    }

    /// The step's bookkeeping that no order waits for, left until every symbol's order is out (so
    /// that the last symbol's submission does not wait for the others' writes): the `at_orders` rows
    /// of the orders submitted (a readable view; the intent was saved before its order), and the
    /// state of the bars decided without an order (nothing was sent for them: a crash before this
    /// save decides the bar again, exactly as a crash before an immediate save would). Everything is
    /// durable before the step returns, whether a symbol failed or not.
    async fn finish_step(&mut self, syms: &[String], unsaved: &[usize]) -> Result<(), TraderError> {
        let mut first_err = None;
        for (coid, u) in std::mem::take(&mut self.submitted) {
            match self.store.update_order(&coid, &u).await {
                Ok(()) | Err(StoreError::UnknownOrder { .. }) => {}
                Err(e) => {
                    first_err.get_or_insert(e.into());
                }
            }
        }
        for &i in unsaved {
            if let Err(e) = self.save(&syms[i], None).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    async fn save(&mut self, sym: &str, exec: Option<&ExecutionRecord>) -> Result<(), TraderError> {
        let s = self.symbols.get_mut(sym).expect("a traded symbol");
        self.store
            .save_grid(&mut s.saved, &s.run, &self.account, exec)
            .await?;
        Ok(())
    }

    async fn halt(
        &mut self,
        sym: &str,
        reason: String,
        report: &mut StepReport,
    ) -> Result<(), TraderError> {
        tracing::error!(symbol = %sym, %reason, "halted");
        self.cfg.notify.send(Event::Halt {
            symbol: sym.to_string(),
            reason: reason.clone(),
        });
        self.store
            .halt_symbol(sym, &reason, instant(self.clock.now()))
            .await?;
        if let Some(s) = self.symbols.get_mut(sym) {
            s.halted = Some(reason.clone());
        }
        report.halted.push((sym.to_string(), reason));
        Ok(())
    }

    /// Reconciles one symbol with the broker (see the module docs).
    async fn sync(&mut self, sym: &str, report: &mut StepReport) -> Result<(), TraderError> {
        let started = instant(self.clock.now());
        // The first sync after a start reads everything since the run began (the reconciliation);
        // later ones read a window from shortly before the last one, so a step's cost does not grow
        // with the run's age. The window is widened to the run's start whenever something in it
        // cannot be placed (an execution of an order older than the window).
        let since = self.symbols[sym].since;
        let from = match self.symbols[sym].synced {
            Some(last) => (last - SYNC_OVERLAP).max(since),
            None => since,
        };
        let mut orders = self.orders_since(sym, from).await?;
        // Pending intents whose orders are older than the window: looked up one by one.
        for intent in self.pending_intents(sym) {
            let coid = self.symbols[sym].run.client_order_id(intent);
            if !orders.iter().any(|o| o.client_order_id == coid) {
                if let Some(o) = self.broker.order_by_client_id(&coid).await? {
                    orders.push(o);
                }
            }
        }
        let run = &self.symbols[sym].run;
        if let Some(o) = orders
            .iter()
            .find(|o| o.symbol == sym && run.intent_of(&o.client_order_id).is_none())
        {
            let reason = format!(
                "the broker has an order of {sym} we did not place (id {}, client order id {:?}, {:?} {} shares, {}): cancel or close it in the broker's account, or let this run own it by ending the run, then `vectura trade resume --symbol {sym}`",
                o.id,
                o.client_order_id,
                o.side,
                o.qty.map(|q| q.to_string()).unwrap_or_default(),
                o.status.as_str()
            );
            return self.halt(sym, reason, report).await;
        }
        let mut window = (from, from > since);
        if !self
            .apply_executions(sym, &mut orders, &mut window, report)
            .await?
        {
            return Ok(());
        }
        // Intents still out: ended at the broker, or never sent and their bar gone (neither sends
        // anything, so both come before the position check; a split due today needs them ended).
        let by_coid: HashMap<&str, &Order> = orders
            .iter()
            .map(|o| (o.client_order_id.as_str(), o))
            .collect();
        let mut unsent = Vec::new();
        for intent in self.pending_intents(sym) {
            let coid = self.symbols[sym].run.client_order_id(intent);
            match by_coid.get(coid.as_str()) {
                Some(o) => {
                    if let Some(end) = ends_intent(&o.status) {
                        self.end_intent(sym, intent, &end).await?;
                        self.mark(&coid, o.status.as_str(), Some(o), None).await?;
                        report.ended += 1;
                    }
                }
                None => {
                    if !self.drop_if_stale(sym, intent, &coid, report).await? {
                        unsent.push((intent, coid));
                    }
                }
            }
        }
        // The pre-market step: a split that took effect today is applied before the position is
        // compared (the broker's position is in the new shares by then).
        if !self.apply_due_splits(sym, report).await? {
            return Ok(());
        }
        // Our lots (and the filled part of orders in flight) against the broker's position. A fill can
        // land between the executions read and the positions read: a difference is looked at again
        // after applying what came in meanwhile, and only a difference that stays halts.
        for attempt in 0..2 {
            let theirs = self.broker_position(sym).await?;
            let ours = self.symbols[sym].run.grid().position();
            if (theirs - ours).abs() <= 0.5 / self.cfg.share_scale {
                break;
            }
            if attempt == 0 {
                if !self
                    .apply_executions(sym, &mut orders, &mut window, report)
                    .await?
                {
                    return Ok(());
                }
                continue;
            }
            let reason = format!(
                "the broker's position in {sym} is {theirs} shares, this run's lots hold {ours}: a trade outside this run (a manual order?), a split not applied, or a fill we cannot see; make the position {ours} shares in the broker's account (or end the run and start a new one from the position), then `vectura trade resume --symbol {sym}`"
            );
            return self.halt(sym, reason, report).await;
        }
        // Saved intents the broker never got, their bar still current: sent now.
        for (intent, coid) in unsent {
            if self.symbols[sym]
                .run
                .grid()
                .pending()
                .iter()
                .any(|p| p.intent == intent)
            {
                self.resend(sym, &coid, report).await?;
            }
        }
        if let Some(s) = self.symbols.get_mut(sym) {
            s.synced = Some(started);
        }
        Ok(())
    }

    /// The shares of `sym` the broker's positions hold.
    async fn broker_position(&self, sym: &str) -> Result<f64, TraderError> {
        Ok(self
            .broker
            .positions_of(sym)
            .await?
            .iter()
            .filter(|p| p.symbol == sym)
            .map(|p| dec(p.qty))
            .sum())
    }

    /// The broker's orders of `sym` submitted from `from` on.
    async fn orders_since(
        &self,
        sym: &str,
        from: DateTime<Utc>,
    ) -> Result<Vec<Order>, TraderError> {
        Ok(self
            .broker
            .orders(&OrderQuery {
                status: OrderFilter::All,
                after: Some(from - chrono::Duration::seconds(1)),
                until: None,
                symbols: vec![sym.to_string()],
            })
            .await?)
    }

    fn pending_intents(&self, sym: &str) -> Vec<IntentId> {
        self.symbols[sym]
            .run
            .grid()
            .pending()
            .iter()
            .map(|p| p.intent)
            .collect()
    }

    /// Applies every execution of the run's orders not applied yet, each saved with its snapshot in
    /// one transaction, reading executions from `window.0` on. `window.1` says the window is shorter
    /// than the run: an execution whose order is not in `orders` widens `orders` to the run's start
    /// before it is judged. False when an execution of an order we did not place halted the symbol.
    async fn apply_executions(
        &mut self,
        sym: &str,
        orders: &mut Vec<Order>,
        window: &mut (DateTime<Utc>, bool),
        report: &mut StepReport,
    ) -> Result<bool, TraderError> {
        // Missed fills, in the broker's order.
        let execs = self
            .broker
            .executions_of(sym, Some(window.0 - chrono::Duration::seconds(1)))
            .await?;
        for x in execs.iter().filter(|x| x.symbol == sym) {
            if self.symbols[sym].run.is_applied(&x.id) {
                continue;
            }
            if window.1 && !orders.iter().any(|o| o.id == x.order_id) {
                let since = self.symbols[sym].since;
                *orders = self.orders_since(sym, since).await?;
                window.1 = false;
            }
            let Some(o) = orders.iter().find(|o| o.id == x.order_id).cloned() else {
                let reason = format!(
                    "the broker reports an execution of {sym} (id {}, {:?} {} at {}) of an order this run did not place: undo the trade in the broker's account, then `vectura trade resume --symbol {sym}`",
                    x.id, x.side, x.qty, x.price
                );
                self.halt(sym, reason, report).await?;
                return Ok(false);
            };
            let Some(intent) = self.symbols[sym].run.intent_of(&o.client_order_id) else {
                continue;
            };
            let mut fill = x.to_fill(intent, 0.0);
            // The order is done when its whole quantity has filled, counted over the parts applied:
            // a stream (or a reordered read) can bring the last part (leaves_qty 0) before an
            // earlier one, which would otherwise arrive for an intent already ended and be lost.
            if let Some(q) = o.qty.map(dec) {
                let before = self.symbols[sym]
                    .run
                    .grid()
                    .pending()
                    .iter()
                    .find(|p| p.intent == intent)
                    .map_or(0.0, |p| p.filled);
                fill.fill.done = before + fill.fill.qty >= q - 0.5 / self.cfg.share_scale;
            }
            self.reached(CrashPoint::BeforeFillSaved)?;
            let s = self.symbols.get_mut(sym).expect("a traded symbol");
            if s.run.apply_fill(&fill) == Applied::Duplicate {
                continue;
            }
            let rec = ExecutionRecord {
                execution_id: x.id.clone(),
                broker_order_id: x.order_id.clone(),
                client_order_id: o.client_order_id.clone(),
                side: x.side,
                qty: dec(x.qty),
                price: dec(x.price),
                executed_at: x.time,
            };
            let inside = self.take_crash(CrashPoint::InsideFillTransaction);
            let hook = self.crash_hook.clone().filter(|_| inside);
            let go_on = move || {
                if let Some(h) = &hook {
                    h(CrashPoint::InsideFillTransaction);
                }
                !inside
            };
            let s = self.symbols.get_mut(sym).expect("a traded symbol");
            match self
                .store
                .save_grid_with_hook(&mut s.saved, &s.run, &self.account, Some(&rec), &go_on)
                .await
            {
                Err(StoreError::Interrupted { .. }) if inside => {
                    return Err(TraderError::Crashed(CrashPoint::InsideFillTransaction))
                }
                r => r?,
            }
            report.fills += 1;
            tracing::info!(symbol = %sym, execution = %x.id, side = ?x.side, qty = %x.qty, price = %x.price, "fill");
            self.cfg.notify.send(Event::Fill {
                symbol: sym.to_string(),
                side: format!("{:?}", x.side).to_lowercase(),
                qty: x.qty.to_string(),
                price: x.price.to_string(),
                client_order_id: o.client_order_id.clone(),
            });
            if x.leaves_qty.is_zero() {
                self.mark(&o.client_order_id, "filled", Some(&o), None)
                    .await?;
            }
        }
        Ok(true)
    }

    async fn end_intent(
        &mut self,
        sym: &str,
        intent: IntentId,
        end: &OrderEnd,
    ) -> Result<(), TraderError> {
        let s = self.symbols.get_mut(sym).expect("a traded symbol");
        s.run.grid_mut().on_order_end(intent, end);
        self.save(sym, None).await
    }

    /// Records the broker's word on one of our orders in `at_orders` (a readable view: the snapshot and
    /// the broker are the truth, so a missing row is not an error).
    async fn mark(
        &self,
        coid: &str,
        status: &str,
        o: Option<&Order>,
        error: Option<String>,
    ) -> Result<(), TraderError> {
        let u = update_of(status, o, error);
        match self.store.update_order(coid, &u).await {
            Ok(()) | Err(StoreError::UnknownOrder { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The saved intent of `coid`, when readable.
    async fn stored_intent(&self, coid: &str) -> Result<Option<StoredIntent>, TraderError> {
        Ok(self
            .store
            .order(coid)
            .await?
            .and_then(|r| r.intent)
            .and_then(|v| serde_json::from_value::<StoredIntent>(v).ok()))
    }

    /// An intent the broker has no order for, whose bar is no longer the current one: dropped, its
    /// trigger re-armed (true). False when its bar is still current (it is to be sent).
    async fn drop_if_stale(
        &mut self,
        sym: &str,
        intent: IntentId,
        coid: &str,
        report: &mut StepReport,
    ) -> Result<bool, TraderError> {
        let now = self.clock.now();
        if let Some(si) = self.stored_intent(coid).await? {
            if si.bar_ts + BAR_S <= now && now < si.bar_ts + 2 * BAR_S {
                return Ok(false);
            }
        }
        tracing::warn!(symbol = %sym, client_order_id = %coid, "dropping an intent that was never sent and whose bar has passed; its trigger re-arms");
        self.end_intent(sym, intent, &OrderEnd::Cancelled).await?;
        self.mark(
            coid,
            "dropped",
            None,
            Some("never sent; its bar passed".into()),
        )
        .await?;
        report.ended += 1;
        Ok(true)
    }

    /// Sends a saved intent the broker never got (its bar is still the current one).
    async fn resend(
        &mut self,
        sym: &str,
        coid: &str,
        report: &mut StepReport,
    ) -> Result<(), TraderError> {
        let Some(si) = self.stored_intent(coid).await? else {
            return Ok(());
        };
        tracing::warn!(symbol = %sym, client_order_id = %coid, "resending an intent saved but not sent");
        self.submit(sym, &si.intent, coid, false, report).await
    }

    /// Submits a saved intent and records the reply (an accepted order's row at the step's end when
    /// `defer`, see [`Trader::finish_step`]).
    async fn submit(
        &mut self,
        sym: &str,
        intent: &OrderIntent,
        coid: &str,
        defer: bool,
        report: &mut StepReport,
    ) -> Result<(), TraderError> {
        let Some(qty) = qty_from_f64(intent.qty) else {
            let why = format!("the quantity {} cannot be sent", intent.qty);
            self.end_intent(sym, intent.id, &OrderEnd::Rejected(why.clone()))
                .await?;
            return self.mark(coid, "rejected", None, Some(why)).await;
        };
        let req = OrderRequest {
            client_order_id: coid.to_string(),
            symbol: sym.to_string(),
            side: intent.side,
            qty,
            order_type: OrderType::Market,
            time_in_force: self.cfg.time_in_force,
            extended_hours: false,
        };
        let r = self.broker.submit(&req).await;
        self.reached(CrashPoint::AfterSubmit)?;
        match r {
            Ok(o) => {
                report.submitted += 1;
                tracing::info!(symbol = %sym, client_order_id = %coid, side = ?intent.side, qty = %qty, "submitted");
                if defer {
                    let u = update_of("submitted", Some(&o), None);
                    self.submitted.push((coid.to_string(), u));
                    return Ok(());
                }
                self.mark(coid, "submitted", Some(&o), None).await
            }
            Err(BrokerError::Rejected {
                status, message, ..
            }) => {
                // The broker's own protections (buying power, wash trade, …): a recorded outcome, the
                // trigger stays armed for a later bar, no retry.
                let why = format!("HTTP {status}: {message}");
                tracing::warn!(symbol = %sym, client_order_id = %coid, reason = %why, "rejected");
                self.cfg.notify.send(Event::Reject {
                    symbol: sym.to_string(),
                    client_order_id: coid.to_string(),
                    reason: why.clone(),
                });
                self.end_intent(sym, intent.id, &OrderEnd::Rejected(why.clone()))
                    .await?;
                report.ended += 1;
                self.mark(coid, "rejected", None, Some(why)).await
            }
            // Unknown outcome: the intent stays saved; the next sync finds the order or resends/drops.
            Err(e) => Err(e.into()),
        }
    }

    /// The bar that closed last, when it is new and of the regular session.
    async fn current_bar(&self, sym: &str) -> Result<Option<Bar>, TraderError> {
        let now = self.clock.now();
        let start = (now - BAR_S).div_euclid(BAR_S) * BAR_S;
        if start <= self.symbols[sym].last_bar || !self.schedule.is_regular(start) {
            return Ok(None);
        }
        let bars = self
            .data
            .bars(sym, instant(start), instant(start + BAR_S))
            .await?;
        Ok(bars.into_iter().find(|b| b.ts == start))
    }

    /// Decides on the current bar; true when the bar was decided without an order and its state is
    /// left for the step's end to save ([`Trader::finish_step`]).
    async fn decide(&mut self, sym: &str, report: &mut StepReport) -> Result<bool, TraderError> {
        let bar = self.current_bar(sym).await?;
        let now = self.clock.now();
        let acct = self.broker.account().await?;
        let (mut cash, mut equity) = (dec(acct.cash), dec(acct.equity));
        if let Some(b) = bar {
            let tick = Tick {
                ts: b.ts,
                open: b.open,
                high: b.high,
                low: b.low,
                close: b.close,
                eval: Eval::Close,
            };
            let s = self.symbols.get_mut(sym).expect("a traded symbol");
            s.run
                .grid_mut()
                .on_bar(&tick, &Account { cash, equity }, &AllowAll);
            s.last_bar = b.ts;
            report.bars += 1;
        }
        // Each bar is used once, across restarts too: the bar's time is in the saved snapshot. The
        // save goes with the bar's first intent (one transaction on the way to the order), or alone
        // at the end; a crash before it decides the same bar again, as nothing of it was durable.
        let mut unsaved = bar.is_some();
        let last = self.symbols[sym].last_bar;
        if !(last + BAR_S <= now && now < last + 2 * BAR_S) {
            if unsaved {
                self.save(sym, None).await?;
            }
            return Ok(false);
        }
        if let (Some(b), Some(max)) = (bar, self.symbols[sym].limits.max_daily_loss) {
            let start = self.day_start_price(sym, b.ts, b.open).await?;
            let pnl = risk::day_pnl(self.symbols[sym].run.grid(), b.ts, start, b.close);
            tracing::debug!(symbol = %sym, pnl, "today's P&L");
            if let Some(reason) = risk::loss_halt(sym, pnl, max) {
                if unsaved {
                    self.save(sym, None).await?;
                }
                return self.halt(sym, reason, report).await.map(|()| false);
            }
        }
        // Buys of this bar already saved (before a restart) reserve their cash, as the engine's do.
        // A bar decided just now has none: the stored orders are read only when resuming a bar.
        let mut reserved = 0.0;
        if bar.is_none() {
            for o in self.store.orders(sym).await? {
                if let Some(si) = o
                    .intent
                    .and_then(|v| serde_json::from_value::<StoredIntent>(v).ok())
                {
                    if si.bar_ts == last {
                        if let Some((c, e)) = si.bar_cash {
                            (cash, equity) = (c, e);
                        }
                        if si.intent.side == Side::Buy && o.status != "rejected" {
                            reserved += si.intent.qty * si.intent.ref_price;
                        }
                    }
                }
            }
        }
        // Today's orders, counted when the first intent meets a max_orders_per_day.
        let mut today: Option<u32> = None;
        loop {
            let a = Account {
                cash: cash - reserved,
                equity,
            };
            let s = self.symbols.get_mut(sym).expect("a traded symbol");
            let Some(intent) = s.run.grid_mut().next_intent(&a, &AllowAll) else {
                break;
            };
            let coid = s.run.client_order_id(intent.id);
            let mut per_day = None;
            if let Some(max) = self.symbols[sym].limits.max_orders_per_day {
                let n = match today {
                    Some(n) => n,
                    None => risk::orders_on_day(&self.store.orders(sym).await?, now),
                };
                today = Some(n);
                if n >= max {
                    per_day = Some(format!(
                        "risk limit: {n} orders of {sym} today reach max_orders_per_day {max}"
                    ));
                }
            }
            if let Some(why) = per_day.or_else(|| self.over_limit(sym, &intent)) {
                tracing::warn!(symbol = %sym, client_order_id = %coid, reason = %why, "risk limit");
                self.cfg.notify.send(Event::Reject {
                    symbol: sym.to_string(),
                    client_order_id: coid.to_string(),
                    reason: why.clone(),
                });
                self.end_intent(sym, intent.id, &OrderEnd::Rejected(why))
                    .await?;
                unsaved = false;
                report.ended += 1;
                continue;
            }
            if intent.side == Side::Buy {
                reserved += intent.qty * intent.ref_price;
            }
            let row = OrderRow {
                client_order_id: coid.clone(),
                symbol: sym.to_string(),
                side: intent.side,
                qty: intent.qty,
                status: "intent".into(),
                created_at: instant(now),
                broker_order_id: None,
                filled_qty: 0.0,
                filled_avg_price: None,
                intent: serde_json::to_value(StoredIntent {
                    intent,
                    bar_ts: last,
                    bar_cash: Some((cash, equity)),
                })
                .ok(),
                error: None,
            };
            let s = self.symbols.get_mut(sym).expect("a traded symbol");
            self.store
                .save_grid_with_order(&mut s.saved, &s.run, &self.account, &row)
                .await?;
            unsaved = false;
            today = today.map(|n| n.saturating_add(1));
            self.reached(CrashPoint::AfterIntentSaved)?;
            self.submit(sym, &intent, &coid, true, report).await?;
        }
        Ok(unsaved)
    }

    /// The price today's P&L is measured from: the open of the session's first bar (`fallback`, the
    /// current bar's open, when the data has no first bar).
    async fn day_start_price(
        &mut self,
        sym: &str,
        ts: i64,
        fallback: f64,
    ) -> Result<f64, TraderError> {
        let day = calendar::ny_date(ts);
        if let Some((d, p)) = self.symbols[sym].day_start {
            if d == day {
                return Ok(p);
            }
        }
        let open = self.schedule.open_ts(day);
        let first = self
            .data
            .bars(sym, instant(open), instant(open + BAR_S))
            .await?
            .into_iter()
            .find(|b| b.ts == open)
            .map(|b| b.open)
            .unwrap_or(fallback);
        if let Some(s) = self.symbols.get_mut(sym) {
            s.day_start = Some((day, first));
        }
        Ok(first)
    }

    /// The risk limit an intent breaks, if any (checked before it is saved: nothing is sent).
    fn over_limit(&self, sym: &str, intent: &OrderIntent) -> Option<String> {
        let s = &self.symbols[sym];
        let notional = intent.qty * intent.ref_price;
        if let Some(max) = s.limits.max_order_notional {
            if notional > max {
                return Some(format!(
                    "risk limit: order notional {notional:.2} exceeds max_order_notional {max}"
                ));
            }
        }
        if let (Some(max), Side::Buy) = (s.limits.max_position_value, intent.side) {
            let held: f64 = s.run.grid().lots().iter().map(|l| l.shares).sum();
            let value = (held + intent.qty) * intent.ref_price;
            if value > max {
                return Some(format!(
                    "risk limit: position value {value:.2} after the buy exceeds max_position_value {max}"
                ));
            }
        }
        None
    }

    /// Runs steps until `stop` resolves (SIGTERM, Ctrl-C): each a little after a minute boundary,
    /// when the bar that closed is published. A step in progress finishes before it stops.
    pub async fn run_until(
        &mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), TraderError> {
        tokio::pin!(stop);
        // Failed steps in a row: a broker outage or a database blip fails a step, and the next
        // minute's step reconciles from the store and the broker (every step is safe to repeat), so
        // the daemon goes on instead of exiting. Told to the webhook at the first failure and then
        // hourly, not every minute.
        let mut failing = 0u32;
        loop {
            match self.step().await {
                Ok(report) => {
                    if failing > 0 {
                        tracing::info!(after = failing, "steps succeed again");
                    }
                    failing = 0;
                    if report != StepReport::default() {
                        tracing::info!(?report, "step");
                    }
                }
                Err(e @ TraderError::Crashed(_)) => return Err(e),
                Err(e) => {
                    failing += 1;
                    let message = error_chain(&e);
                    tracing::error!(error = %message, failing, "step failed; the next one reconciles");
                    if failing % 60 == 1 {
                        self.cfg.notify.send(Event::Error { message });
                    }
                }
            }
            let now = self.clock.now();
            // Two seconds after the next minute (the closed bar is published by then) while the
            // market is open, longer while the broker's clock says it is closed.
            let clock = self.broker.clock().await.ok();
            let wait = next_wake(now, clock.as_ref(), self.cfg.premarket_lead_s);
            tokio::select! {
                _ = &mut stop => return Ok(()),
                _ = tokio::time::sleep(std::time::Duration::from_secs(wait)) => {}
            }
        }
    }
}
