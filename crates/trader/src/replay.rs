//! Trading on the broker's clock: `vectura trade --clock broker`, for a replay through the emulator
//! (`vectura-emulator --replay SYM=FILE --speed X`), whose time is the replayed bars' and not the
//! wall clock. The trader steps once per broker minute, as soon as `/v2/clock` shows a new one, and
//! reports every step (the caller prints it: a replay's progress, and what a test waits for).
//!
//! Also the crash points of the binary (`VECTURA_CRASH_AT=POINT:NTH`), parsed here, so that a test
//! can stop the `vectura trade` process exactly between two durable steps.

use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use vectura_broker::alpaca::{AlpacaClient, AlpacaConfig, Environment};
use vectura_broker::Broker;

use crate::clock::Clock;
use crate::error::{CrashPoint, TraderError};
use crate::notify::Notifier;
use crate::runtime::CrashHook;
use crate::runtime::{StepReport, Trader, TraderConfig};
use crate::venue::check_live;

/// How often the broker's clock is read while waiting for its next minute (real time).
const POLL: Duration = Duration::from_millis(5);

/// The broker's time as last read: frozen between reads, so one step sees one instant throughout.
#[derive(Debug, Default)]
pub struct BrokerClock {
    now: AtomicI64,
}

impl BrokerClock {
    /// Reads the broker's time (`/v2/clock`) and holds it until the next refresh.
    pub async fn refresh(&self, broker: &dyn Broker) -> Result<i64, TraderError> {
        let t = broker.clock().await?.now.timestamp();
        self.now.store(t, Ordering::SeqCst);
        Ok(t)
    }
}

impl Clock for BrokerClock {
    fn now(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

impl FromStr for CrashPoint {
    type Err = TraderError;

    fn from_str(s: &str) -> Result<CrashPoint, TraderError> {
        match s.trim() {
            "after-intent-saved" => Ok(CrashPoint::AfterIntentSaved),
            "after-submit" => Ok(CrashPoint::AfterSubmit),
            "before-fill-saved" => Ok(CrashPoint::BeforeFillSaved),
            "inside-fill-transaction" => Ok(CrashPoint::InsideFillTransaction),
            other => Err(TraderError::Config(format!(
                "crash point {other:?} is not one of after-intent-saved, after-submit, before-fill-saved, inside-fill-transaction"
            ))),
        }
    }
}

/// Parses `POINT[:NTH]` (`after-submit:2`: the third time the order was sent and its reply not yet
/// handled), as `VECTURA_CRASH_AT` gives it.
pub fn parse_crash_at(v: &str) -> Result<(CrashPoint, u32), TraderError> {
    let (p, n) = match v.split_once(':') {
        Some((p, n)) => (
            p,
            n.trim().parse::<u32>().map_err(|_| {
                TraderError::Config(format!(
                    "VECTURA_CRASH_AT {v:?}: {n:?} is not a count; give POINT:NTH, for example after-submit:0"
                ))
            })?,
        ),
        None => (v, 0),
    };
    Ok((p.parse()?, n))
}

/// How a broker-clock run is watched: a crash point (tests) and the webhook.
#[derive(Default)]
pub struct Watch {
    /// The step reaching this point (its nth time) calls `kill` there and fails with
    /// [`TraderError::Crashed`].
    pub crash: Option<(CrashPoint, u32)>,
    /// What a reached crash point calls (the binary kills itself: SIGKILL).
    pub kill: Option<CrashHook>,
    /// Told of fills, rejects and halts.
    pub notify: Notifier,
}

/// Trades through Alpaca (the emulator in replay mode, or paper) on the broker's clock: one step per
/// new broker minute until `stop` resolves; `on_step` hears each step with the broker's time. The
/// client's pacing is lifted for a local endpoint: a replay runs many broker minutes a real one.
pub async fn trade_on_broker_clock(
    store: vectura_store::Store,
    mut cfg: AlpacaConfig,
    live: bool,
    watch: Watch,
    stop: impl Future<Output = ()>,
    on_step: &mut dyn FnMut(i64, &StepReport),
) -> Result<StepReport, TraderError> {
    check_live(&cfg, live)?;
    if cfg.environment() == Environment::Local {
        cfg.rate_limit_per_minute = 1_000_000;
    }
    let client = Arc::new(AlpacaClient::new(cfg)?);
    let clock = Arc::new(BrokerClock::default());
    clock.refresh(client.as_ref()).await?;
    let (mut t, mut total) = Trader::start(
        store,
        client.clone(),
        client.clone(),
        clock.clone(),
        TraderConfig {
            notify: watch.notify,
            ..TraderConfig::default()
        },
    )
    .await?;
    if let Some((p, n)) = watch.crash {
        t.crash_at(p, n);
    }
    if let Some(k) = watch.kill {
        t.on_crash(k);
    }
    let mut last_minute = None;
    tokio::pin!(stop);
    loop {
        let now = clock.refresh(client.as_ref()).await?;
        let minute = now.div_euclid(60);
        if last_minute != Some(minute) {
            let r = t.step().await?;
            last_minute = Some(minute);
            total.bars += r.bars;
            total.submitted += r.submitted;
            total.fills += r.fills;
            total.ended += r.ended;
            total.halted.extend(r.halted.iter().cloned());
            on_step(now, &r);
            continue;
        }
        tokio::select! {
            _ = &mut stop => return Ok(total),
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_points_parse_with_and_without_a_count_and_bad_ones_say_what_is_allowed() {
        assert_eq!(
            parse_crash_at("after-submit:2").unwrap(),
            (CrashPoint::AfterSubmit, 2)
        );
        assert_eq!(
            parse_crash_at("before-fill-saved").unwrap(),
            (CrashPoint::BeforeFillSaved, 0)
        );
        assert_eq!(
            parse_crash_at("inside-fill-transaction:1").unwrap(),
            (CrashPoint::InsideFillTransaction, 1)
        );
        let e = parse_crash_at("after-lunch:1").unwrap_err().to_string();
        assert!(e.contains("after-intent-saved"), "{e}");
        let e = parse_crash_at("after-submit:x").unwrap_err().to_string();
        assert!(e.contains("POINT:NTH"), "{e}");
    }
}
