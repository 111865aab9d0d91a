//! A replayed session the demo drives bar by bar: the simulated broker fed bundled bars, the real
//! trader stepping after every bar, and a restart that resumes where the last process stopped.
//!
//! The simulated account lives in memory, so a restart rebuilds it: the sim is deterministic (order
//! and execution ids come from counters), so handing it the same bars and the same order requests in
//! the same sequence gives the same account, the same orders and the same execution ids. The requests
//! come from the store (`at_orders`: every order the broker accepted, with the sim time it was sent
//! at); after the rebuild, [`Trader::start`] reconciles as after any restart, so no order is sent
//! twice and no fill is applied twice.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use vectura_broker::sim::{Replay, SimBroker, SimConfig};
use vectura_broker::{
    qty_from_f64, Broker, Decimal, OrderFilter, OrderQuery, OrderRequest, OrderType, TimeInForce,
};
use vectura_core::calendar::{self, SessionPart};
use vectura_core::{Bar, BarSeries};
use vectura_store::{OrderRow, Store};

use crate::clock::Clock;
use crate::error::TraderError;
use crate::runtime::{ControlChanges, StepReport, Trader, TraderConfig};

/// The simulated broker's time, as the trader's clock.
struct SimClock(Arc<SimBroker>);

impl Clock for SimClock {
    fn now(&self) -> i64 {
        self.0.now()
    }
}

/// What one bar did.
#[derive(Debug, Clone)]
pub struct BarStep {
    pub symbol: String,
    pub bar: Bar,
    /// Whether the bar is of the regular session (the only ones the trader decides on).
    pub regular: bool,
    pub report: StepReport,
    pub controls: ControlChanges,
}

/// What opening a session found.
#[derive(Debug, Clone, Default)]
pub struct Resumed {
    /// Bars replayed to rebuild the simulated account (0 on a fresh start).
    pub bars: usize,
    /// Orders handed again to the rebuilt account.
    pub orders: usize,
    /// What the trader's start reconciled.
    pub report: StepReport,
}

/// A replay through the simulated broker and the real trader.
pub struct SimSession {
    sim: Arc<SimBroker>,
    trader: Trader,
    replay: Replay,
    /// The account's equity after each bar handed over (Unix s of the bar's end, dollars).
    equity: Vec<(i64, f64)>,
}

fn dec(x: Decimal) -> f64 {
    x.to_string().parse().unwrap_or(f64::NAN)
}

/// The intent number of a stored order (its position among the bar's orders).
fn intent_no(o: &OrderRow) -> u64 {
    o.intent
        .as_ref()
        .and_then(|v| v.pointer("/intent/id"))
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
}

impl SimSession {
    /// Opens the session over `store` (whose enabled symbols are traded): rebuilds the simulated
    /// account from the stored orders when runs exist, then starts (and so reconciles) the trader.
    pub async fn open(
        store: Store,
        bars: Vec<(String, BarSeries)>,
        cash: Decimal,
    ) -> Result<(SimSession, Resumed), TraderError> {
        let first = bars
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(_, s)| s.ts[0])
            .min()
            .ok_or_else(|| TraderError::Config("no bars to replay".into()))?;
        let mut cfg = SimConfig::new(cash);
        cfg.start = first - 60;
        cfg.share_scale = 1e4;
        let sim = Arc::new(
            SimBroker::new(cfg)
                .map_err(|e| TraderError::Config(format!("simulated broker: {e}")))?,
        );
        let symbols: Vec<String> = bars.iter().map(|(s, _)| s.clone()).collect();
        let mut replay = Replay::new(bars);
        let mut equity = Vec::new();

        // Where the last process stopped: the latest bar any run decided on.
        let mut cutoff: Option<i64> = None;
        let mut pending: BTreeMap<String, VecDeque<OrderRow>> = BTreeMap::new();
        for sym in &symbols {
            if let Some(run) = store.active_run(sym).await? {
                if let Some(now) = run.snapshot.get("now").and_then(|v| v.as_i64()) {
                    cutoff = Some(cutoff.map_or(now, |c: i64| c.max(now)));
                }
                let mut sent: Vec<OrderRow> = store
                    .orders(sym)
                    .await?
                    .into_iter()
                    .filter(|o| o.broker_order_id.is_some())
                    .collect();
                sent.sort_by_key(|o| (o.created_at, intent_no(o)));
                pending.insert(sym.clone(), sent.into());
            }
        }
        let mut resumed = Resumed::default();
        if let Some(cutoff) = cutoff {
            while replay.peek_ts().is_some_and(|t| t <= cutoff) {
                let Some((sym, _bar)) = sim
                    .step(&mut replay)
                    .map_err(|e| TraderError::Config(format!("simulated broker: {e}")))?
                else {
                    break;
                };
                resumed.bars += 1;
                let now = sim.now();
                if let Some(q) = pending.get_mut(&sym) {
                    while q.front().is_some_and(|o| o.created_at.timestamp() <= now) {
                        let o = q.pop_front().expect("a front order");
                        resend(&sim, &o).await?;
                        resumed.orders += 1;
                    }
                }
                equity.push((now, dec(sim.account().await?.equity)));
            }
            let left: usize = pending.values().map(VecDeque::len).sum();
            if left > 0 {
                tracing::warn!(
                    orders = left,
                    "stored orders sent after the last decided bar were not handed again"
                );
            }
        }
        let (trader, report) = Trader::start(
            store,
            sim.clone(),
            sim.clone(),
            Arc::new(SimClock(sim.clone())),
            TraderConfig::default(),
        )
        .await?;
        resumed.report = report;
        Ok((
            SimSession {
                sim,
                trader,
                replay,
                equity,
            },
            resumed,
        ))
    }

    /// Hands over the next bar and steps the trader (controls read again first); `None` when the
    /// bars are exhausted.
    pub async fn next_bar(&mut self) -> Result<Option<BarStep>, TraderError> {
        let controls = self.trader.reload_controls().await?;
        let Some((symbol, bar)) = self
            .sim
            .step(&mut self.replay)
            .map_err(|e| TraderError::Config(format!("simulated broker: {e}")))?
        else {
            return Ok(None);
        };
        let report = self.trader.step().await?;
        let now = self.sim.now();
        self.equity
            .push((now, dec(self.sim.account().await?.equity)));
        Ok(Some(BarStep {
            regular: calendar::classify(bar.ts) == SessionPart::Regular,
            symbol,
            bar,
            report,
            controls,
        }))
    }

    /// Reads the controls again without a bar (a halt or a new parameter while the replay waits).
    pub async fn reload_controls(&mut self) -> Result<ControlChanges, TraderError> {
        self.trader.reload_controls().await
    }

    /// The simulated broker (the account the dashboard shows).
    pub fn broker(&self) -> Arc<SimBroker> {
        self.sim.clone()
    }

    /// The trader.
    pub fn trader(&self) -> &Trader {
        &self.trader
    }

    /// The account's equity after each bar so far (bar end, dollars).
    pub fn equity(&self) -> &[(i64, f64)] {
        &self.equity
    }

    /// Bars not yet handed over.
    pub fn remaining(&self) -> usize {
        self.replay.remaining()
    }

    /// The time of the next bar, if any.
    pub fn next_ts(&self) -> Option<i64> {
        self.replay.peek_ts()
    }
}

/// Hands a stored order to the rebuilt account as it was first sent (and its cancel, when the
/// dashboard's kill switch cancelled it before any fill).
async fn resend(sim: &SimBroker, o: &OrderRow) -> Result<(), TraderError> {
    let qty = qty_from_f64(o.qty)
        .ok_or_else(|| TraderError::Config(format!("order {}: bad quantity", o.client_order_id)))?;
    let req = OrderRequest {
        client_order_id: o.client_order_id.clone(),
        symbol: o.symbol.clone(),
        side: o.side,
        qty,
        order_type: OrderType::Market,
        time_in_force: TimeInForce::Day,
        extended_hours: false,
    };
    let placed = match sim.submit(&req).await {
        Ok(p) => p,
        // A request the account refuses now was refused then too: nothing to rebuild.
        Err(vectura_broker::BrokerError::Rejected { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if o.status == "canceled" && o.filled_qty == 0.0 {
        sim.cancel(&placed.id).await?;
    }
    Ok(())
}

/// Open orders of the account (for the dashboard's in-flight list).
pub async fn open_orders(sim: &SimBroker) -> Result<Vec<vectura_broker::Order>, TraderError> {
    Ok(sim
        .orders(&OrderQuery {
            status: OrderFilter::Open,
            after: None,
            until: None,
            symbols: vec![],
        })
        .await?)
}
