//! A grid as a live run: its identity on the account, the client order ids it makes, and broker
//! fills applied exactly once.
//!
//! The live loop (a later issue) persists a [`GridRun`] through the store after every change: the
//! snapshot, the readable `at_*` rows and, for a fill, the execution id, in one transaction. Restoring
//! gives back the same run id and intent counter, so client order ids continue and never repeat, and
//! the execution ids already applied, so a fill that arrives again (stream reconnect, backfill) is
//! recognised and skipped.

use std::collections::HashSet;

use vectura_core::{BrokerFill, ClientOrderId, IntentId, RunId};

use crate::grid::{Grid, GridSnapshot, SnapshotError};
use crate::Strategy;

/// What [`GridRun::apply_fill`] did with a broker fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// New: the grid took it.
    New,
    /// Its execution id was applied before: nothing changed.
    Duplicate,
}

/// A grid trading one symbol as one run.
#[derive(Debug, Clone)]
pub struct GridRun {
    run: RunId,
    symbol: String,
    grid: Grid,
    applied: HashSet<String>,
}

impl GridRun {
    /// A fresh run of `grid` (from [`Grid::new`]) under a new run id.
    pub fn new(run: RunId, symbol: &str, grid: Grid) -> GridRun {
        GridRun {
            run,
            symbol: symbol.to_string(),
            grid,
            applied: HashSet::new(),
        }
    }

    /// A run restored from its snapshot and the execution ids it had applied (the store's
    /// `at_executions` rows of the run).
    pub fn restore(
        run: RunId,
        symbol: &str,
        snapshot: GridSnapshot,
        applied: impl IntoIterator<Item = String>,
    ) -> Result<GridRun, SnapshotError> {
        Ok(GridRun {
            run,
            symbol: symbol.to_string(),
            grid: Grid::restore(snapshot)?,
            applied: applied.into_iter().collect(),
        })
    }

    /// The run id.
    pub fn run(&self) -> &RunId {
        &self.run
    }

    /// The symbol traded.
    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    /// The grid (read-only).
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The grid, to drive with bars, intents and order ends. Fills go through [`GridRun::apply_fill`].
    pub fn grid_mut(&mut self) -> &mut Grid {
        &mut self.grid
    }

    /// The client order id of `intent` in this run.
    pub fn client_order_id(&self, intent: IntentId) -> String {
        self.run.client_order_id(&self.symbol, intent)
    }

    /// The intent of one of this run's client order ids; `None` for another run's or a foreign order.
    pub fn intent_of(&self, client_order_id: &str) -> Option<IntentId> {
        ClientOrderId::parse(client_order_id)
            .filter(|c| c.run == self.run && c.symbol == self.symbol)
            .map(|c| c.intent)
    }

    /// Was this execution applied?
    pub fn is_applied(&self, execution_id: &str) -> bool {
        self.applied.contains(execution_id)
    }

    /// Applies a broker fill once: a second fill with the same execution id changes nothing.
    pub fn apply_fill(&mut self, f: &BrokerFill) -> Applied {
        if self.applied.contains(&f.execution_id) {
            return Applied::Duplicate;
        }
        self.applied.insert(f.execution_id.clone());
        self.grid.on_fill(&f.fill);
        Applied::New
    }
}
