//! Whole runs of the trader, as `vectura trade` starts them: against Alpaca (paper, or live with
//! `--live`), or offline against the simulated broker replaying bars, once or until stopped.

use std::future::Future;
use std::sync::Arc;

use vectura_broker::alpaca::{AlpacaClient, AlpacaConfig};
use vectura_broker::sim::{Replay, SimBroker, SimConfig};
use vectura_broker::Decimal;
use vectura_core::BarSeries;
use vectura_store::Store;

use crate::clock::{Clock, WallClock};
use crate::error::TraderError;
use crate::notify::Notifier;
use crate::runtime::{SplitFeed, StepReport, Trader, TraderConfig};
use crate::venue::check_live;

/// The simulated broker's time, as the trader's clock (offline replays).
struct SimClock(Arc<SimBroker>);

impl Clock for SimClock {
    fn now(&self) -> i64 {
        self.0.now()
    }
}

/// Trades on Alpaca: one step (`once`) or steps every minute until `stop` resolves. Refuses a
/// live endpoint without `live`, and `live` without the live endpoint. The pre-market step refreshes
/// splits from `splits`; `notify` is told of fills, rejects, halts and failed steps.
pub async fn trade_alpaca(
    store: Store,
    cfg: AlpacaConfig,
    live: bool,
    once: bool,
    splits: SplitFeed,
    notify: Notifier,
    stop: impl Future<Output = ()>,
) -> Result<StepReport, TraderError> {
    check_live(&cfg, live)?;
    let client = Arc::new(AlpacaClient::new(cfg)?);
    let (mut t, mut report) = Trader::start(
        store,
        client.clone(),
        client,
        Arc::new(WallClock),
        TraderConfig {
            // Alpaca takes fractional orders to 9 decimals.
            share_scale: 1e9,
            splits: Some(splits),
            notify,
            ..TraderConfig::default()
        },
    )
    .await?;
    if once {
        let r = t.step().await?;
        report.bars += r.bars;
        report.submitted += r.submitted;
        report.fills += r.fills;
        report.ended += r.ended;
        report.splits += r.splits;
        report.halted.extend(r.halted);
        return Ok(report);
    }
    t.run_until(stop).await?;
    Ok(report)
}

/// Trades offline: the simulated broker (no keys at all) replays `bars` with `cash` dollars and the
/// trader steps at every bar's close, as it would live. With `once`, it stops after the first step
/// that decided on a bar; otherwise at the end of the bars or when `stop` resolves. The simulated
/// account lives in memory only: each run starts a new account, so the store should hold no
/// active run of these symbols from an earlier one (reconciliation halts what the new account lacks).
pub async fn trade_sim(
    store: Store,
    bars: Vec<(String, BarSeries)>,
    cash: Decimal,
    once: bool,
    notify: Notifier,
    stop: impl Future<Output = ()>,
) -> Result<StepReport, TraderError> {
    let first = bars
        .iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(_, s)| s.ts[0])
        .min()
        .ok_or_else(|| {
            TraderError::Config("no bars to replay: give a bar file with --bars".into())
        })?;
    let mut cfg = SimConfig::new(cash);
    cfg.start = first - 60;
    // The backtest's share precision: an offline run trades as `vectura backtest --fill next-open`.
    cfg.share_scale = 1e4;
    let sim = Arc::new(
        SimBroker::new(cfg).map_err(|e| TraderError::Config(format!("simulated broker: {e}")))?,
    );
    let (mut t, mut total) = Trader::start(
        store,
        sim.clone(),
        sim.clone(),
        Arc::new(SimClock(sim.clone())),
        TraderConfig {
            notify,
            ..TraderConfig::default()
        },
    )
    .await?;
    let mut replay = Replay::new(bars);
    tokio::pin!(stop);
    loop {
        let stepped = sim
            .step(&mut replay)
            .map_err(|e| TraderError::Config(format!("simulated broker: {e}")))?;
        if stepped.is_none() {
            break;
        }
        let r = t.step().await?;
        let decided = r.bars > 0;
        total.bars += r.bars;
        total.submitted += r.submitted;
        total.fills += r.fills;
        total.ended += r.ended;
        total.halted.extend(r.halted);
        if once && decided {
            break;
        }
        // A stop asked for between two bars ends the replay there (the step above completed).
        if futures_poll_ready(&mut stop).await {
            break;
        }
    }
    Ok(total)
}

/// Whether `f` has completed, without waiting for it.
async fn futures_poll_ready<F: Future<Output = ()>>(f: &mut std::pin::Pin<&mut F>) -> bool {
    tokio::select! {
        biased;
        _ = f.as_mut() => true,
        _ = std::future::ready(()) => false,
    }
}
