//! The SMA cross's snapshot and restore on real bars, as the grid's (`seams.rs`): a restore after
//! every call into the strategy gives exactly the uninterrupted run.

use proptest::prelude::*;
use vectura_strategy::sma::{SmaCross, SmaParams};

use crate::replay::{drive, round_trip, Delivery, Event};
use crate::seams::{days, plan, SPY};

fn sma(fast: usize, slow: usize) -> SmaCross {
    SmaCross::new(SmaParams { fast, slow }).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Issue 15, seam 1 for the SMA cross: a snapshot through JSON and a restore after EVERY call
    /// (each bar, the intent it asks for, each fill part, each order end) over a real session, with
    /// orders filled in parts and some cancelled, gives the same intents, cash and final state.
    #[test]
    fn sma_restoring_at_every_step_gives_the_uninterrupted_run(
        day in 0usize..18,
        fast in 1usize..8,
        extra in 1usize..30,
        plans in prop::collection::vec(plan(), 1..6),
    ) {
        let bars = SPY.with(|s| days(s, day, 1));
        let slow = fast + extra;
        let a = drive(sma(fast, slow), &bars, &plans, Delivery::Parts, |g| g);
        let mut restores = 0usize;
        let b = drive(sma(fast, slow), &bars, &plans, Delivery::Parts, |g| {
            restores += 1;
            round_trip(g)
        });
        let intents = a.events.iter().filter(|e| matches!(e, Event::Intent(_))).count();
        prop_assert!(intents >= 4, "the session trades: {} intents", intents);
        prop_assert!(restores > bars.len());
        prop_assert_eq!(&a.events, &b.events);
        prop_assert_eq!(a.cash.to_bits(), b.cash.to_bits());
        prop_assert_eq!(&a.state, &b.state);
    }
}
