use std::collections::HashSet;

use proptest::prelude::*;
use vectura_core::{BarSeries, BrokerFill, Fill, IntentId, OrderEnd, RunId, Side};
use vectura_strategy::grid::{Grid, GridMode, GridParams, JoinedInFlight, SnapshotError};
use vectura_strategy::run::{Applied, GridRun};
use vectura_strategy::{Account, AllowAll, Strategy as _, Tick};

use crate::replay::{drive, round_trip, spy_january, Delivery, Event, OrderPlan};

/// A grid tight enough to trade many times a day on SPY minute bars.
fn busy_grid(gap: f64, record_lines: bool, in_flight: JoinedInFlight) -> Grid {
    let mut g = Grid::new(
        GridParams {
            capital_pct: 20.0,
            buy_below_pct: 0.05,
            sell_above_pct: 0.1,
            buy_after_sell_pct: 0.15,
            cash_floor: 0.0,
            order_gap_pct: gap,
        },
        GridMode {
            compat_v1: false,
            share_scale: 1e4,
            record_lines,
        },
    );
    g.set_joined_in_flight(in_flight);
    g
}

/// `n` session days of January 2011 from day `start`.
pub(crate) fn days(all: &BarSeries, start: usize, n: usize) -> BarSeries {
    let mut dates: Vec<_> = (0..all.len())
        .map(|i| vectura_core::calendar::ny_date(all.ts[i]))
        .collect();
    dates.dedup();
    let keep: HashSet<_> = dates.iter().skip(start).take(n).copied().collect();
    all.filter(|i| keep.contains(&vectura_core::calendar::ny_date(all.ts[i])))
}

pub(crate) fn plan() -> impl Strategy<Value = OrderPlan> {
    (
        prop::collection::vec((0.05f64..1.0, -20.0f64..20.0), 1..4),
        prop::bool::weighted(0.25),
        any::<bool>(),
    )
        .prop_map(|(parts, cancel_rest, reverse)| OrderPlan {
            parts,
            cancel_rest,
            reverse,
        })
}

fn in_flight() -> impl Strategy<Value = JoinedInFlight> {
    prop_oneof![Just(JoinedInFlight::Keep), Just(JoinedInFlight::Cancel)]
}

thread_local! {
    pub(crate) static SPY: BarSeries = spy_january();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Issue 15, seam 1: a snapshot through JSON and a restore after EVERY call into the grid (each
    /// bar, each intent, each fill part, each order end, each cancel) gives exactly the run without
    /// them: the same intents and cancels, the same cash, the same final state.
    ///
    /// A snapshot holds the whole history, so restoring after every call costs time quadratic in
    /// the trades: with joining off (gap -1) a session makes ~1300 trades and ~4700 calls (34 s of
    /// round trips in the debug profile), so those cases run the session's first 90 bars (~300
    /// trades, still every call restored); the others trade a few dozen times and run the whole
    /// session. The whole session with joining off is covered by the sampled test below.
    #[test]
    fn restoring_at_every_step_gives_the_uninterrupted_run(
        day in 0usize..18,
        gap in prop_oneof![Just(-1.0), Just(0.02), Just(0.1)],
        lines in any::<bool>(),
        joined in in_flight(),
        plans in prop::collection::vec(plan(), 1..6),
    ) {
        let session = SPY.with(|s| days(s, day, 1));
        let bars = if gap == -1.0 { session.slice(0, 90) } else { session };
        let a = drive(busy_grid(gap, lines, joined), &bars, &plans, Delivery::Parts, |g| g);
        let mut restores = 0usize;
        let b = drive(busy_grid(gap, lines, joined), &bars, &plans, Delivery::Parts, |g| {
            restores += 1;
            round_trip(g)
        });
        prop_assert!(a.state.history.len() >= 4, "the session trades: {}", a.state.history.len());
        prop_assert!(restores > bars.len());
        prop_assert_eq!(&a.events, &b.events);
        prop_assert_eq!(a.cash.to_bits(), b.cash.to_bits());
        prop_assert_eq!(&a.state, &b.state);
    }

    /// Seam 1 over whole sessions of every kind (joining off included, with its thousands of
    /// trades and largest snapshots): a restore after every `every`-th call, from a drawn phase,
    /// gives exactly the uninterrupted run.
    #[test]
    fn restoring_at_sampled_steps_of_a_whole_session_gives_the_uninterrupted_run(
        day in 0usize..18,
        gap in prop_oneof![Just(-1.0), Just(0.02), Just(0.1)],
        lines in any::<bool>(),
        joined in in_flight(),
        plans in prop::collection::vec(plan(), 1..6),
        every in 7usize..40,
        phase in 0usize..40,
    ) {
        let bars = SPY.with(|s| days(s, day, 1));
        let mut calls = 0usize;
        let a = drive(busy_grid(gap, lines, joined), &bars, &plans, Delivery::Parts, |g| {
            calls += 1;
            g
        });
        let (mut k, mut restores) = (0usize, 0usize);
        let b = drive(busy_grid(gap, lines, joined), &bars, &plans, Delivery::Parts, |g| {
            k += 1;
            if k % every == phase % every {
                restores += 1;
                round_trip(g)
            } else {
                g
            }
        });
        prop_assert!(a.state.history.len() >= 4, "the session trades: {}", a.state.history.len());
        prop_assert_eq!(k, calls, "both runs make the same calls");
        prop_assert!(restores >= calls / every, "{} restores of {} calls", restores, calls);
        prop_assert_eq!(&a.events, &b.events);
        prop_assert_eq!(a.cash.to_bits(), b.cash.to_bits());
        prop_assert_eq!(&a.state, &b.state);
    }

    /// Issue 15, seam 4: any split of each fill into parts (some with the rest cancelled) leaves the
    /// grid as one fill of each total at its volume-weighted price would, over a real session.
    #[test]
    fn any_split_of_a_fill_is_one_fill_at_the_vwap(
        day in 0usize..18,
        gap in prop_oneof![Just(-1.0), Just(0.02), Just(0.1)],
        joined in in_flight(),
        plans in prop::collection::vec(plan(), 1..6),
    ) {
        let bars = SPY.with(|s| days(s, day, 1));
        let parts = drive(busy_grid(gap, false, joined), &bars, &plans, Delivery::Parts, |g| g);
        let total = drive(busy_grid(gap, false, joined), &bars, &plans, Delivery::Total, |g| g);
        prop_assert!(parts.state.history.len() >= 4);
        prop_assert_eq!(&parts.events, &total.events);
        prop_assert_eq!(&parts.state, &total.state);
    }
}

fn fill(intent: IntentId, side: Side, qty: f64, price: f64, ts: i64, done: bool) -> Fill {
    Fill {
        intent,
        side,
        qty,
        price,
        commission: 0.0,
        ts,
        done,
    }
}

fn acct(cash: f64) -> Account {
    Account { cash, equity: cash }
}

#[test]
fn a_buy_filled_in_parts_sells_from_its_vwap_and_a_cancelled_rest_leaves_a_smaller_sound_lot() {
    let p = GridParams {
        order_gap_pct: -1.0,
        ..GridParams::default()
    };
    let mut g = Grid::new(p, GridMode::default());
    g.on_bar(&Tick::at(1, 50.0), &acct(1000.0), &AllowAll);
    let b = g.next_intent(&acct(1000.0), &AllowAll).unwrap();
    assert_eq!(b.qty, 12.0);
    g.on_fill(&fill(b.id, Side::Buy, 4.0, 50.0, 10, false));
    assert!(g.lots().is_empty(), "no lot until the order ends");
    g.on_fill(&fill(b.id, Side::Buy, 2.0, 51.5, 11, false));
    g.on_order_end(b.id, &OrderEnd::Cancelled);
    let vwap = (4.0 * 50.0 + 2.0 * 51.5) / 6.0;
    let lot = g.lots()[0];
    assert_eq!((lot.shares, lot.price, lot.opened), (6.0, vwap, 10));
    let s = g.sell_triggers()[0];
    assert_eq!((s.shares, s.price, s.pending), (6.0, vwap * 1.18, None));
    let buys: Vec<_> = g.buy_triggers().map(|t| (t.price, t.pending)).collect();
    assert_eq!(
        buys,
        vec![(vwap * 0.98, None)],
        "the fired trigger is used up"
    );
    assert!(g.pending().is_empty());
    assert_eq!(g.history().len(), 1);
    assert_eq!(g.history()[0].shares, 6.0);
    // The lot sells at its trigger: 6 shares; 2 of them sell, then the rest is cancelled.
    g.on_bar(&Tick::at(20, vwap * 1.18), &acct(700.0), &AllowAll);
    let sell = g.next_intent(&acct(700.0), &AllowAll).unwrap();
    assert_eq!(
        (sell.side, sell.qty, sell.closes),
        (Side::Sell, 6.0, Some(b.id))
    );
    g.on_fill(&fill(sell.id, Side::Sell, 2.0, 60.0, 21, false));
    g.on_order_end(sell.id, &OrderEnd::Cancelled);
    assert_eq!(g.lots()[0].shares, 4.0);
    assert_eq!(g.lots()[0].price, vwap, "the rest keeps its buy price");
    let s = g.sell_triggers()[0];
    assert_eq!((s.shares, s.price, s.pending), (4.0, vwap * 1.18, None));
    assert_eq!(
        g.buy_triggers().count(),
        1,
        "no follow-up buys: the lot is not closed"
    );
    // Re-armed: the next bar at the trigger sells the 4 shares left.
    g.on_bar(&Tick::at(30, vwap * 1.18), &acct(820.0), &AllowAll);
    let again = g.next_intent(&acct(820.0), &AllowAll).unwrap();
    assert_eq!((again.qty, again.closes), (4.0, Some(b.id)));
}

#[test]
fn client_order_ids_continue_after_a_restore_and_a_new_run_never_collides() {
    let bars = spy_january();
    let start_ms = bars.ts[0] * 1000;
    let first = RunId::after(None, start_ms);
    let mut run = GridRun::new(
        first.clone(),
        "SPY",
        busy_grid(-1.0, false, JoinedInFlight::Keep),
    );
    let mut ids = Vec::new();
    let mut cash = 10_000.0;
    let mut restored_at = None;
    for i in 0..bars.len().min(2000) {
        if i == 700 {
            let snap = serde_json::to_string(&run.grid().snapshot()).unwrap();
            run = GridRun::restore(
                first.clone(),
                "SPY",
                serde_json::from_str(&snap).unwrap(),
                Vec::new(),
            )
            .unwrap();
            restored_at = Some(ids.len());
        }
        let b = bars.get(i);
        run.grid_mut()
            .on_bar(&Tick::at(b.ts, b.close), &acct(cash), &AllowAll);
        while let Some(intent) = run.grid_mut().next_intent(&acct(cash), &AllowAll) {
            let cid = run.client_order_id(intent.id);
            assert_eq!(run.intent_of(&cid), Some(intent.id));
            ids.push(cid);
            let sign = if intent.side == Side::Buy { 1.0 } else { -1.0 };
            cash -= sign * intent.qty * intent.ref_price;
            let f = fill(
                intent.id,
                intent.side,
                intent.qty,
                intent.ref_price,
                b.ts,
                true,
            );
            let bf = BrokerFill {
                order_id: format!("o{}", ids.len()),
                execution_id: format!("x{}", ids.len()),
                fill: f,
            };
            assert_eq!(run.apply_fill(&bf), Applied::New);
        }
    }
    let k = restored_at.unwrap();
    assert!(
        k > 10 && ids.len() > k + 10,
        "orders before and after the restore: {k} of {}",
        ids.len()
    );
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no client order id is made twice");
    // The counter continued: the first id after the restore is the one after the last before it.
    let n = |s: &str| vectura_core::ClientOrderId::parse(s).unwrap().intent.0;
    assert_eq!(n(&ids[k]), n(&ids[k - 1]) + 1);
    // A new run on the same account, started in the same millisecond, counts from 1 again yet
    // shares no id with the first run.
    let second = RunId::after(Some(&first), start_ms);
    assert_ne!(second, first);
    let fresh = GridRun::new(second, "SPY", busy_grid(-1.0, false, JoinedInFlight::Keep));
    for i in 1..=ids.len() as u64 {
        let id = fresh.client_order_id(IntentId(i));
        assert!(id.len() <= vectura_core::order::CLIENT_ORDER_ID_MAX);
        assert!(!unique.contains(&id), "{id} was the first run's");
        assert_eq!(
            run.intent_of(&id),
            None,
            "the first run does not claim the second's orders"
        );
    }
}

#[test]
fn a_fill_seen_twice_is_applied_once_even_after_a_restore() {
    let run_id = RunId::from_start_ms(1_700_000_000_000);
    let mut run = GridRun::new(
        run_id.clone(),
        "SPY",
        Grid::new(GridParams::default(), GridMode::default()),
    );
    run.grid_mut()
        .on_bar(&Tick::at(1, 50.0), &acct(1000.0), &AllowAll);
    let b = run
        .grid_mut()
        .next_intent(&acct(1000.0), &AllowAll)
        .unwrap();
    let part = |x: &str, q: f64, done: bool| BrokerFill {
        order_id: "broker-order-1".into(),
        execution_id: x.into(),
        fill: fill(b.id, Side::Buy, q, 50.0, 2, done),
    };
    assert_eq!(run.apply_fill(&part("e1", 5.0, false)), Applied::New);
    let after_first = run.grid().snapshot();
    assert_eq!(run.apply_fill(&part("e1", 5.0, false)), Applied::Duplicate);
    assert_eq!(
        run.grid().snapshot(),
        after_first,
        "a duplicate changes nothing"
    );
    // Restored with the execution ids the store kept: the replayed part is still recognised.
    let mut run = GridRun::restore(run_id, "SPY", after_first, vec!["e1".to_string()]).unwrap();
    assert!(run.is_applied("e1"));
    assert_eq!(run.apply_fill(&part("e1", 5.0, false)), Applied::Duplicate);
    assert_eq!(run.apply_fill(&part("e2", 7.0, true)), Applied::New);
    assert_eq!(run.grid().lots()[0].shares, 12.0, "5 + 7, not 5 + 5 + 7");
}

#[test]
fn a_bad_snapshot_is_refused_with_the_field_named() {
    let mut g = Grid::new(GridParams::default(), GridMode::default());
    g.on_bar(&Tick::at(1, 50.0), &acct(1000.0), &AllowAll);
    let _ = g.next_intent(&acct(1000.0), &AllowAll).unwrap();
    let good = g.snapshot();
    let mut s = good.clone();
    s.next_intent = 1;
    assert_eq!(
        Grid::restore(s).unwrap_err().to_string(),
        "grid snapshot pending: id 1 is not below next_intent 1"
    );
    let mut s = good.clone();
    s.format = 99;
    assert!(matches!(
        Grid::restore(s),
        Err(SnapshotError::Format { found: 99 })
    ));
    let mut s = good.clone();
    s.params.capital_pct = 0.0;
    assert!(Grid::restore(s)
        .unwrap_err()
        .to_string()
        .contains("capital-pct"));
    assert_eq!(Grid::restore(good.clone()).unwrap().snapshot(), good);
}

#[test]
fn the_replay_exercises_partial_fills_cancels_and_restores() {
    // Guards the property tests above against a driver that quietly stopped testing anything.
    let all = spy_january();
    let plans = vec![
        OrderPlan {
            parts: vec![(0.5, 5.0), (0.5, -5.0)],
            cancel_rest: false,
            reverse: true,
        },
        OrderPlan {
            parts: vec![(1.0, 0.0)],
            cancel_rest: true,
            reverse: false,
        },
    ];
    let (mut intents, mut cancels) = (0, 0);
    for (day, gap) in (0..18).flat_map(|d| [(d, 0.1), (d, 0.3), (d, 1.0)]) {
        let bars = days(&all, day, 1);
        let out = drive(
            busy_grid(gap, true, JoinedInFlight::Cancel),
            &bars,
            &plans,
            Delivery::Parts,
            |g| g,
        );
        intents += out
            .events
            .iter()
            .filter(|e| matches!(e, Event::Intent(_)))
            .count();
        cancels += out
            .events
            .iter()
            .filter(|e| matches!(e, Event::Cancel(_)))
            .count();
    }
    assert!(intents > 200, "{intents} intents");
    eprintln!("{intents} intents, {cancels} cancels");
    assert!(
        cancels > 0,
        "the join filter removed a trigger with an order out"
    );
}
