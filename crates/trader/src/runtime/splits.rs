//! The pre-market step: stock splits. Once per New York day, from the pre-market time on (09:00 by
//! default), the symbol's split list is refreshed (Alpha Vantage, then Alpaca's corporate actions).
//! Every split that took effect since the run began and is not in its state yet is applied in one
//! save: open lots' shares multiplied, lot and trigger prices divided, history kept as executed, the
//! adjustment recorded in the snapshot (so it is applied once, across restarts too). Overnight, a
//! split of the day is applied as soon as the broker's position shows it, so a daemon stepping
//! through the night does not halt on the broker's adjustment.

use vectura_core::calendar;
use vectura_data::alpaca::AlpacaData;
use vectura_data::alphavantage::AlphaVantage;
use vectura_fetch::{SplitRefresh, SplitSources};

use super::{StepReport, Trader};
use crate::error::TraderError;

/// Where the pre-market step refreshes splits from; with neither, the stored list (`vectura data
/// splits --refresh`) is used as it is.
#[derive(Clone, Default)]
pub struct SplitFeed {
    pub alpha_vantage: Option<AlphaVantage>,
    pub alpaca: Option<AlpacaData>,
}

impl SplitFeed {
    /// The sources whose keys the environment holds (`ALPHA_VANTAGE_API_KEY`; `APCA_API_KEY_ID` and
    /// `APCA_API_SECRET_KEY`), as `vectura data splits --refresh` reads them.
    pub fn from_env() -> SplitFeed {
        SplitFeed {
            alpha_vantage: AlphaVantage::from_env().ok(),
            alpaca: AlpacaData::from_env().ok(),
        }
    }
}

impl std::fmt::Debug for SplitFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The clients hold keys: only whether each is set.
        f.debug_struct("SplitFeed")
            .field("alpha_vantage", &self.alpha_vantage.is_some())
            .field("alpaca", &self.alpaca.is_some())
            .finish()
    }
}

impl Trader {
    /// Applies the splits due for `sym` (see the module docs). A split effective today is applied as
    /// soon as the broker's position shows it (its shares times the ratio), and at the pre-market time
    /// at the latest: a broker that has not split the position by then is a difference, and the
    /// position check halts the symbol. False when a split could not be applied and the symbol halted
    /// (orders still out across the split).
    pub(super) async fn apply_due_splits(
        &mut self,
        sym: &str,
        report: &mut StepReport,
    ) -> Result<bool, TraderError> {
        let now = self.clock.now();
        let today = calendar::ny_date(now);
        if self.symbols[sym].splits_checked == Some(today) {
            return Ok(true);
        }
        let premarket = now >= self.schedule.open_ts(today) - self.cfg.premarket_lead_s;
        if let (true, Some(feed)) = (premarket, &self.cfg.splits) {
            let sources = SplitSources {
                alpha_vantage: feed.alpha_vantage.as_ref(),
                alpaca: feed.alpaca.as_ref(),
            };
            // A source that does not answer leaves the stored list: trading goes on, and a split it
            // missed shows as a position difference (which halts) rather than as a guess.
            match vectura_fetch::refresh_splits(&self.store, sources, sym, today, false).await? {
                SplitRefresh::Kept(why) => {
                    tracing::warn!(symbol = %sym, %why, "splits not refreshed")
                }
                r => tracing::debug!(symbol = %sym, result = ?r, "splits refreshed"),
            }
        }
        let since = self.symbols[sym].since.timestamp();
        let mut waiting = false;
        for sp in self.store.splits(sym).await? {
            let effective = calendar::session_open_ts(sp.effective);
            let grid = self.symbols[sym].run.grid();
            if sp.effective > today
                || effective <= since
                || grid.splits().iter().any(|a| a.effective == effective)
            {
                continue;
            }
            if !premarket && !grid.lots().is_empty() {
                // Overnight: only once the broker shows the split in the position.
                let ours = grid.position();
                let theirs = self.broker_position(sym).await?;
                if (theirs - ours * sp.ratio).abs() > 0.5 / self.cfg.share_scale {
                    waiting = true;
                    continue;
                }
            }
            let s = self.symbols.get_mut(sym).expect("a traded symbol");
            match s.run.grid_mut().apply_split(effective, sp.ratio) {
                Ok(false) => {}
                Ok(true) => {
                    self.save(sym, None).await?;
                    report.splits += 1;
                    tracing::info!(symbol = %sym, effective = %sp.effective, ratio = sp.ratio, "split applied");
                }
                Err(e) => {
                    let reason = format!(
                        "the split of {sym} ({} for 1) effective {} cannot be applied: {e}; then `vectura trade resume --symbol {sym}`",
                        sp.ratio, sp.effective
                    );
                    self.halt(sym, reason, report).await?;
                    return Ok(false);
                }
            }
        }
        if premarket && !waiting {
            if let Some(s) = self.symbols.get_mut(sym) {
                s.splits_checked = Some(today);
            }
        }
        Ok(true)
    }
}
