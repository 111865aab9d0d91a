//! Controls changed while the trader runs (the dashboard's algorithm page, `vectura trade halt`):
//! read again before a step, so a change takes effect at the next bar without a restart.

use vectura_broker::{OrderFilter, OrderQuery};
use vectura_strategy::grid::Grid;
use vectura_strategy::run::GridRun;

use super::{params_of, Trader};
use crate::error::TraderError;

/// What [`Trader::reload_controls`] changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlChanges {
    /// Symbols whose grid parameters changed.
    pub params: Vec<String>,
    /// Symbols newly halted, with the orders cancelled at the broker.
    pub halted: Vec<(String, usize)>,
    /// Symbols whose halt was lifted.
    pub resumed: Vec<String>,
}

impl Trader {
    /// Reads every traded symbol's controls (`at_trade_controls`) and grid (`at_algo_config`) again:
    /// new risk limits apply at once; a new halt cancels the symbol's open orders at the broker (the
    /// kill switch) and stops its steps; a lifted halt lets them run again; new grid parameters replace
    /// the run's (the triggers already armed keep their prices; new ones use the new distances).
    pub async fn reload_controls(&mut self) -> Result<ControlChanges, TraderError> {
        let mut changes = ControlChanges::default();
        let controls = self.store.trade_controls().await?;
        // Every symbol's grid in one read (a query per symbol cost 100 round trips a step).
        let algos = self.store.algo_configs().await?;
        for sym in self.symbols.keys().cloned().collect::<Vec<_>>() {
            let Some(c) = controls.iter().find(|c| c.symbol == sym) else {
                continue;
            };
            let was_halted = self.symbols[&sym].halted.is_some();
            {
                let s = self.symbols.get_mut(&sym).expect("a traded symbol");
                s.limits = c.limits;
                s.halted = c.halt_reason.clone();
            }
            match (was_halted, c.halt_reason.is_some()) {
                (false, true) => {
                    let n = self.cancel_open(&sym).await?;
                    tracing::warn!(symbol = %sym, cancelled = n, "halted by its controls");
                    self.cfg.notify.send(crate::notify::Event::Halt {
                        symbol: sym.clone(),
                        reason: c.halt_reason.clone().unwrap_or_default(),
                    });
                    changes.halted.push((sym.clone(), n));
                }
                (true, false) => {
                    tracing::info!(symbol = %sym, "resumed by its controls");
                    changes.resumed.push(sym.clone());
                }
                _ => {}
            }
            if let Some(algo) = algos.get(&sym) {
                let params = params_of(algo);
                let current = *self.symbols[&sym].run.grid().params();
                if params != current && params.validate().is_ok() {
                    // The applied execution ids as saved (every applied fill is saved with them).
                    let run_id = self.symbols[&sym].run.run().clone();
                    let applied = match self.store.run(&run_id).await? {
                        Some(r) => r.executions,
                        None => continue,
                    };
                    let s = self.symbols.get_mut(&sym).expect("a traded symbol");
                    let mut snap = s.run.grid().snapshot();
                    snap.params = params;
                    // The snapshot was just taken from a valid grid: only the parameters differ.
                    if Grid::restore(snap.clone()).is_ok() {
                        s.run = GridRun::restore(s.run.run().clone(), &sym, snap, applied)
                            .map_err(|e| TraderError::Config(format!("{sym}: {e}")))?;
                        self.save(&sym, None).await?;
                        tracing::info!(symbol = %sym, ?params, "grid parameters changed");
                        changes.params.push(sym.clone());
                    }
                }
            }
        }
        Ok(changes)
    }

    /// Cancels this symbol's open orders at the broker; how many were asked for.
    async fn cancel_open(&mut self, sym: &str) -> Result<usize, TraderError> {
        let orders = self
            .broker
            .orders(&OrderQuery {
                status: OrderFilter::Open,
                after: None,
                until: None,
                symbols: vec![sym.to_string()],
            })
            .await?;
        let mut n = 0;
        for o in orders.iter().filter(|o| o.symbol == sym) {
            if self.symbols[sym]
                .run
                .intent_of(&o.client_order_id)
                .is_some()
            {
                self.broker.cancel(&o.id).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}
