//! Issue 17's split rule: a 2:1 split announced before the open doubles every open lot's shares,
//! halves every lot and trigger price, keeps the history as executed, is applied once (a restart on
//! the split's day does not apply it again), and the next sells sell the new share count.
//!
//! The bars are the fixture's real INDA sessions of 2023-07-10 and 2023-07-11; the second day's are
//! printed as after a 2-for-1 split (prices halved, volume doubled), and the simulated venue doubles
//! the position before that open, as a broker does.

use std::sync::Arc;

use chrono::NaiveDate;
use std::collections::HashMap;
use vectura_broker::sim::{Replay, SimBroker, SimConfig};
use vectura_broker::{Broker, Decimal};
use vectura_core::calendar::{self, SessionPart};

use vectura_core::{BarSeries, IntentId, Side, Split};
use vectura_data::{load_csv_path, LoadOptions};
use vectura_store::{RiskLimits, Store};
use vectura_strategy::grid::GridSnapshot;
use vectura_trader::{Clock, Trader, TraderConfig};

use crate::support::{algo, fixture, SYM};

struct SimClock(Arc<SimBroker>);

impl Clock for SimClock {
    fn now(&self) -> i64 {
        self.0.now()
    }
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 7, d).unwrap()
}

fn regular(s: &BarSeries, on: NaiveDate) -> BarSeries {
    s.filter(|i| {
        calendar::classify(s.ts[i]) == SessionPart::Regular && calendar::ny_date(s.ts[i]) == on
    })
}

async fn start(store: &Store, sim: &Arc<SimBroker>) -> Trader {
    let (t, _) = Trader::start(
        store.clone(),
        sim.clone(),
        sim.clone(),
        Arc::new(SimClock(sim.clone())),
        TraderConfig::default(),
    )
    .await
    .unwrap();
    t
}

async fn venue_position(sim: &SimBroker) -> f64 {
    sim.positions()
        .await
        .unwrap()
        .iter()
        .filter(|p| p.symbol == SYM)
        .map(|p| p.qty.to_string().parse::<f64>().unwrap())
        .sum()
}

/// The first day traded, its orders expired, the split stored (as the refresh stores it) and the
/// clock at 00:30 New York on the split's day. Returns the second day's bars (split-adjusted).
async fn first_day_then_split_announced() -> (Store, Arc<SimBroker>, Trader, GridSnapshot, BarSeries)
{
    let all = load_csv_path(&fixture(), &LoadOptions::default())
        .unwrap()
        .series;
    let first = regular(&all, day(10));
    let mut second = regular(&all, day(11));
    for i in 0..second.len() {
        second.open[i] /= 2.0;
        second.high[i] /= 2.0;
        second.low[i] /= 2.0;
        second.close[i] /= 2.0;
        second.volume[i] *= 2.0;
    }
    let mut cfg = SimConfig::new(Decimal::from(100_000));
    cfg.start = first.ts[0] - 60;
    cfg.share_scale = 1e4;
    let sim = Arc::new(SimBroker::new(cfg).unwrap());
    let store = Store::open("sqlite::memory:").await.unwrap();
    store.upsert_algo_config(SYM, &algo()).await.unwrap();
    store
        .set_trade_controls(SYM, true, &RiskLimits::default())
        .await
        .unwrap();
    let mut t = start(&store, &sim).await;
    let mut day1 = Replay::new(vec![(SYM.to_string(), first)]);
    while sim.step(&mut day1).unwrap().is_some() {
        let r = t.step().await.unwrap();
        assert!(r.halted.is_empty(), "{r:?}");
    }
    // The close passes (day orders expire); the split is announced for the next session.
    sim.advance_to(calendar::session_open_ts(day(10)) + 7 * 3600);
    t.step().await.unwrap();
    let before = t.run(SYM).unwrap().grid().snapshot();
    assert!(
        !before.lots.is_empty(),
        "the first day leaves lots open to split"
    );
    assert!(before.pending.is_empty(), "day orders ended at the close");
    store
        .replace_splits(
            SYM,
            &[Split {
                effective: day(11),
                ratio: 2.0,
            }],
            "test",
        )
        .await
        .unwrap();
    // Past midnight in New York, before the broker has split the position: nothing changes yet.
    sim.advance_to(calendar::session_open_ts(day(11)) - 9 * 3600);
    let r = t.step().await.unwrap();
    assert_eq!((r.splits, r.halted.len()), (0, 0), "{r:?}");
    assert_eq!(t.run(SYM).unwrap().grid().snapshot().lots, before.lots);
    (store, sim, t, before, second)
}

#[tokio::test(flavor = "current_thread")]
async fn a_2_for_1_split_before_the_open_doubles_lots_halves_triggers_and_the_next_sells_sell_the_new_shares(
) {
    let (store, sim, mut t, before, second) = first_day_then_split_announced().await;
    // The broker splits the position overnight; the next step applies the split.
    sim.split(SYM, Decimal::from(2)).unwrap();
    sim.advance_to(calendar::session_open_ts(day(11)) - 6 * 3600);
    let r = t.step().await.unwrap();
    assert_eq!((r.splits, r.halted.len()), (1, 0), "{r:?}");
    let after = t.run(SYM).unwrap().grid().snapshot();
    assert_eq!(after.lots.len(), before.lots.len());
    for (a, b) in after.lots.iter().zip(&before.lots) {
        assert_eq!(a.id, b.id);
        assert_eq!(a.shares, b.shares * 2.0, "lot {:?}", a.id);
        assert_eq!(a.price, b.price / 2.0, "lot {:?}", a.id);
    }
    assert_eq!(after.sell_triggers.len(), before.sell_triggers.len());
    for (a, b) in after.sell_triggers.iter().zip(&before.sell_triggers) {
        assert_eq!((a.price, a.shares), (b.price / 2.0, b.shares * 2.0));
    }
    assert_eq!(after.buy_triggers.len(), before.buy_triggers.len());
    for (a, b) in after.buy_triggers.iter().zip(&before.buy_triggers) {
        assert_eq!(
            a.price,
            if b.price > 0.0 {
                b.price / 2.0
            } else {
                b.price
            }
        );
    }
    assert_eq!(after.history, before.history, "history stays as executed");
    assert_eq!(after.splits.len(), 1, "the adjustment is recorded");
    let held: f64 = after.lots.iter().map(|l| l.shares).sum();
    assert!((venue_position(&sim).await - held).abs() < 1e-6);

    // A restart on the split's day, and the pre-market step itself, do not apply it again.
    drop(t);
    sim.advance_to(calendar::session_open_ts(day(11)) - 25 * 60);
    let (mut t, r) = Trader::start(
        store.clone(),
        sim.clone(),
        sim.clone(),
        Arc::new(SimClock(sim.clone())),
        TraderConfig::default(),
    )
    .await
    .unwrap();
    assert_eq!((r.splits, r.halted.len()), (0, 0), "{r:?}");
    assert_eq!(t.run(SYM).unwrap().grid().snapshot().lots, after.lots);

    // The split day trades: sells of the lots opened before the split sell their doubled shares.
    let doubled: HashMap<IntentId, f64> = after.lots.iter().map(|l| (l.id, l.shares)).collect();
    let mut day2 = Replay::new(vec![(SYM.to_string(), second)]);
    while sim.step(&mut day2).unwrap().is_some() {
        let r = t.step().await.unwrap();
        assert!(r.halted.is_empty(), "{r:?}");
    }
    sim.advance_to(calendar::session_open_ts(day(11)) + 7 * 3600);
    let r = t.step().await.unwrap();
    assert!(r.halted.is_empty(), "{r:?}");
    let history = t.run(SYM).unwrap().grid().snapshot().history;
    let sold: Vec<_> = history[before.history.len()..]
        .iter()
        .filter(|h| h.side == Side::Sell)
        .filter_map(|h| {
            h.closes
                .and_then(|l| doubled.get(&l))
                .map(|s| (h.shares, *s))
        })
        .collect();
    assert!(
        !sold.is_empty(),
        "a lot from before the split sells on its day"
    );
    for (shares, expected) in sold {
        assert_eq!(
            shares, expected,
            "a pre-split lot sells its new share count"
        );
    }
    let ours = t.run(SYM).unwrap().grid().position();
    assert!((venue_position(&sim).await - ours).abs() < 1e-6);
}

#[tokio::test(flavor = "current_thread")]
async fn a_split_the_broker_has_not_applied_by_the_pre_market_step_halts_the_symbol() {
    let (_store, sim, mut t, _before, _) = first_day_then_split_announced().await;
    // 09:05 New York: the split is applied to our state, the broker's position is still the old one.
    sim.advance_to(calendar::session_open_ts(day(11)) - 25 * 60);
    let r = t.step().await.unwrap();
    assert_eq!(r.splits, 1, "{r:?}");
    let (sym, why) = r.halted.first().expect("the difference halts");
    assert_eq!(sym, SYM);
    assert!(why.contains("a split not applied"), "{why}");
}

/// The same split through Alpaca's wire: the emulator splits the account's position overnight, the
/// trader (over HTTP) applies the stored split to its lots, the lots match the broker's position
/// again (no halt), and a later step does not apply it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_the_broker_made_is_applied_over_the_wire_once_and_reconciles() {
    use crate::support::{bar, env, start};
    let e = env("split-wire", RiskLimits::default()).await;
    let mut t = start(&e).await;
    let close = calendar::session(day(10)).unwrap().close;
    while e.h.now().timestamp() < close {
        let r = bar(&e, &mut t).await;
        assert!(r.halted.is_empty(), "{r:?}");
    }
    e.h.set_time(chrono::DateTime::from_timestamp(close + 3 * 3600, 0).unwrap());
    t.step().await.unwrap();
    let before = t.run(SYM).unwrap().grid().snapshot();
    assert!(
        !before.lots.is_empty(),
        "the first day leaves lots to split"
    );
    e.store
        .replace_splits(
            SYM,
            &[Split {
                effective: day(11),
                ratio: 2.0,
            }],
            "test",
        )
        .await
        .unwrap();
    let bad = e.h.split_positions(SYM, Decimal::ZERO).unwrap_err();
    assert!(bad.contains("positive"), "{bad}");
    assert_eq!(e.h.split_positions(SYM, Decimal::from(2)).unwrap(), 1);
    e.h.set_time(
        chrono::DateTime::from_timestamp(calendar::session_open_ts(day(11)) - 6 * 3600, 0).unwrap(),
    );
    let r = t.step().await.unwrap();
    assert_eq!((r.splits, r.halted.len()), (1, 0), "{r:?}");
    let after = t.run(SYM).unwrap().grid().snapshot();
    let held: f64 = after.lots.iter().map(|l| l.shares).sum();
    let was: f64 = before.lots.iter().map(|l| l.shares).sum();
    assert_eq!(held, was * 2.0);
    let position: f64 = e
        .client
        .positions()
        .await
        .unwrap()
        .iter()
        .filter(|p| p.symbol == SYM)
        .map(|p| p.qty.to_string().parse::<f64>().unwrap())
        .sum();
    assert!(
        (position - held).abs() < 1e-6,
        "broker {position}, lots {held}"
    );
    let r = t.step().await.unwrap();
    assert_eq!((r.splits, r.halted.len()), (0, 0), "applied once: {r:?}");
    assert_eq!(t.run(SYM).unwrap().grid().snapshot().lots, after.lots);
}
