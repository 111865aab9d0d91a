//! The operator's controls over the trader (issue 17 §5–6): enable or disable a symbol, the kill
//! switch (`vectura trade halt`: the halt is persisted first, then our open orders are cancelled at
//! the broker), `resume`, and `status`. The CLI only parses and prints these.

use chrono::{DateTime, Utc};
use serde::Serialize;
use vectura_broker::{Broker, MarketData, OrderFilter, OrderQuery};
use vectura_core::calendar;
use vectura_store::{AlgoConfig, RiskLimits, Store};
use vectura_strategy::grid::GridParams;

use crate::error::TraderError;
use crate::risk;

/// The reason `vectura trade halt` stores (what a later `status` shows).
pub const OPERATOR_HALT: &str =
    "halted by the operator (`vectura trade halt`): `vectura trade resume` trades it again";

/// Enables `symbol` for trading, storing its grid (`params`, or the stored one when `None`) and
/// risk limits in one go. A symbol without a stored grid needs `params`.
pub async fn enable(
    store: &Store,
    symbol: &str,
    params: Option<GridParams>,
    limits: RiskLimits,
) -> Result<(), TraderError> {
    let sym = symbol.trim().to_ascii_uppercase();
    match params {
        Some(p) => {
            p.validate()
                .map_err(|e| TraderError::Config(format!("{sym}: the grid: {e}")))?;
            store
                .upsert_algo_config(
                    &sym,
                    &AlgoConfig {
                        capital_pct: p.capital_pct,
                        buy_below_pct: p.buy_below_pct,
                        sell_above_pct: p.sell_above_pct,
                        buy_after_sell_pct: p.buy_after_sell_pct,
                        cash_floor: p.cash_floor,
                        order_gap_pct: p.order_gap_pct,
                    },
                )
                .await?;
        }
        None => {
            if store.algo_config(&sym).await?.is_none() {
                return Err(TraderError::Config(format!(
                    "{sym} has no grid stored yet: give its parameters, for example `vectura trade enable {sym} --grid` (the backtest's defaults) or --capital-pct, --buy-below-pct, --sell-above-pct, --buy-after-sell-pct, --cash-floor, --order-gap-pct"
                )));
            }
        }
    }
    store.set_trade_controls(&sym, true, &limits).await?;
    Ok(())
}

/// Stops trading `symbol` at the next start (its run, lots and any halt stay as they are); false
/// when the symbol had no controls.
pub async fn disable(store: &Store, symbol: &str) -> Result<bool, TraderError> {
    let sym = symbol.trim().to_ascii_uppercase();
    match store.trade_control(&sym).await? {
        Some(c) => {
            store.set_trade_controls(&sym, false, &c.limits).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// What a halt did for one symbol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Halted {
    pub symbol: String,
    /// The halt reason now stored (an earlier halt keeps its own reason).
    pub reason: String,
    /// Broker order ids of our open orders that were cancelled.
    pub cancelled: Vec<String>,
}

/// The symbols an operator command applies to: `symbol`, or every symbol with controls.
async fn targets(store: &Store, symbol: Option<&str>) -> Result<Vec<String>, TraderError> {
    let all = store.trade_controls().await?;
    match symbol {
        Some(s) => {
            let sym = s.trim().to_ascii_uppercase();
            if all.iter().any(|c| c.symbol == sym) {
                Ok(vec![sym])
            } else {
                Err(TraderError::Config(format!(
                    "--symbol {sym}: no such traded symbol (known: {}); enable it with `vectura trade enable {sym}`",
                    all.iter().map(|c| c.symbol.as_str()).collect::<Vec<_>>().join(", ")
                )))
            }
        }
        None => Ok(all.into_iter().map(|c| c.symbol).collect()),
    }
}

/// The kill switch: persists the halt of `symbol` (or of every symbol) first, so no trader start
/// or step sends anything for it, then cancels our open orders of it at `broker` (orders whose
/// client order id is in `at_orders`; a manual order in the account is left alone). Without a
/// broker (the simulated one lives in its process) only the halt is stored.
pub async fn halt(
    store: &Store,
    broker: Option<&dyn Broker>,
    symbol: Option<&str>,
    at: DateTime<Utc>,
) -> Result<Vec<Halted>, TraderError> {
    let syms = targets(store, symbol).await?;
    // Every halt is durable before the broker is asked anything: an unreachable broker must not
    // leave a symbol trading.
    for sym in &syms {
        store.halt_symbol(sym, OPERATOR_HALT, at).await?;
        tracing::warn!(symbol = %sym, "halted by the operator");
    }
    let mut out = Vec::new();
    for sym in syms {
        let ours: std::collections::HashSet<String> = store
            .orders(&sym)
            .await?
            .into_iter()
            .map(|o| o.client_order_id)
            .collect();
        let mut cancelled = Vec::new();
        if let Some(broker) = broker {
            let open = broker
                .orders(&OrderQuery {
                    status: OrderFilter::Open,
                    after: None,
                    until: None,
                    symbols: vec![sym.clone()],
                })
                .await?;
            for o in open
                .iter()
                .filter(|o| o.symbol == sym && ours.contains(&o.client_order_id))
            {
                broker.cancel(&o.id).await?;
                tracing::info!(symbol = %sym, order = %o.id, client_order_id = %o.client_order_id, "cancelled by the halt");
                cancelled.push(o.id.clone());
            }
        }
        let reason = store
            .trade_control(&sym)
            .await?
            .and_then(|c| c.halt_reason)
            .unwrap_or_else(|| OPERATOR_HALT.to_string());
        out.push(Halted {
            symbol: sym,
            reason,
            cancelled,
        });
    }
    Ok(out)
}

/// Lifts the halt of `symbol` (or of every symbol); the symbols that were halted.
pub async fn resume(store: &Store, symbol: Option<&str>) -> Result<Vec<String>, TraderError> {
    let mut out = Vec::new();
    for sym in targets(store, symbol).await? {
        if store.resume_symbol(&sym).await? {
            tracing::info!(symbol = %sym, "resumed by the operator");
            out.push(sym);
        }
    }
    Ok(out)
}

/// An open lot, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LotStatus {
    pub opened: i64,
    pub price: f64,
    pub shares: f64,
}

/// An armed trigger.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriggerStatus {
    pub side: &'static str,
    pub price: f64,
    /// Shares a sell trigger sells (none for buys: sized at the time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<f64>,
}

/// An order out at the broker (or saved and not yet sent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingStatus {
    pub client_order_id: String,
    pub side: String,
    pub qty: f64,
    pub status: String,
}

/// One symbol's state for `vectura trade status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub symbol: String,
    pub enabled: bool,
    /// The active run, if one was started.
    pub run: Option<String>,
    /// Shares held by the run's open lots.
    pub shares: f64,
    pub lots: Vec<LotStatus>,
    pub pending: Vec<PendingStatus>,
    pub triggers: Vec<TriggerStatus>,
    /// Today's (New York) P&L, dollars, when a price could be read.
    pub today_pnl: Option<f64>,
    pub halted: Option<String>,
    pub halted_at: Option<DateTime<Utc>>,
}

/// Every symbol with controls, from the store; with `market`, today's P&L priced from its bars
/// (the session's first bar's open and the last bar's close up to `now`).
pub async fn status(
    store: &Store,
    market: Option<&dyn MarketData>,
    now: i64,
) -> Result<Vec<Status>, TraderError> {
    let mut out = Vec::new();
    for c in store.trade_controls().await? {
        let mut st = Status {
            symbol: c.symbol.clone(),
            enabled: c.enabled,
            run: None,
            shares: 0.0,
            lots: vec![],
            pending: vec![],
            triggers: vec![],
            today_pnl: None,
            halted: c.halt_reason.clone(),
            halted_at: c.halted_at,
        };
        if let Some(stored) = store.active_run(&c.symbol).await? {
            let run = stored.grid_run()?;
            let g = run.grid();
            st.run = Some(run.run().to_string());
            st.shares = g.lots().iter().map(|l| l.shares).sum();
            st.lots = g
                .lots()
                .iter()
                .map(|l| LotStatus {
                    opened: l.opened,
                    price: l.price,
                    shares: l.shares,
                })
                .collect();
            let snap = g.snapshot();
            st.triggers = snap
                .buy_triggers
                .iter()
                .map(|t| TriggerStatus {
                    side: "buy",
                    price: t.price,
                    shares: None,
                })
                .chain(snap.sell_triggers.iter().map(|t| TriggerStatus {
                    side: "sell",
                    price: t.price,
                    shares: Some(t.shares),
                }))
                .collect();
            let pending: std::collections::HashSet<String> = g
                .pending()
                .iter()
                .map(|p| run.client_order_id(p.intent))
                .collect();
            st.pending = store
                .orders(&c.symbol)
                .await?
                .into_iter()
                .filter(|o| pending.contains(&o.client_order_id))
                .map(|o| PendingStatus {
                    client_order_id: o.client_order_id,
                    side: format!("{:?}", o.side).to_lowercase(),
                    qty: o.qty,
                    status: o.status,
                })
                .collect();
            if let Some(m) = market {
                st.today_pnl = today_pnl(m, &c.symbol, g, now).await?;
            }
        }
        out.push(st);
    }
    Ok(out)
}

async fn today_pnl(
    m: &dyn MarketData,
    sym: &str,
    g: &vectura_strategy::grid::Grid,
    now: i64,
) -> Result<Option<f64>, TraderError> {
    let day = calendar::ny_date(now);
    let open = calendar::session_open_ts(day);
    if now <= open {
        return Ok(Some(0.0));
    }
    let at = |ts| DateTime::from_timestamp(ts, 0).unwrap_or_default();
    let bars = m.bars(sym, at(open), at(now)).await?;
    let (Some(first), Some(last)) = (bars.first(), bars.iter().rev().find(|b| b.ts + 60 <= now))
    else {
        return Ok(None);
    };
    Ok(Some(risk::day_pnl(g, now, first.open, last.close)))
}
