//! The schedule comes from the broker's calendar when it answers: a day the built-in NYSE calendar
//! opens but the venue keeps closed (an unscheduled closure) is not traded. When the calendar route
//! fails, the built-in calendar is used and the day trades.

use vectura_emulator::{FaultAction, RouteFault, TradingConfig, TradingFaults};
use vectura_store::RiskLimits;

use crate::support::{bar, day, env, env_with, start};

/// Bars decided and orders sent over the first `n` bars of the fixture's first session.
async fn trade(trading: Option<TradingConfig>, tag: &str, n: usize) -> (usize, usize) {
    let e = match trading {
        Some(t) => env_with(tag, RiskLimits::default(), t, day()).await,
        None => env(tag, RiskLimits::default()).await,
    };
    let mut t = start(&e).await;
    let mut bars = 0;
    for _ in 0..n {
        bars += bar(&e, &mut t).await.bars;
    }
    (
        bars,
        e.store.orders(crate::support::SYM).await.unwrap().len(),
    )
}

fn closed_on_the_day() -> TradingConfig {
    TradingConfig {
        closed_days: [day()].into_iter().collect(),
        ..TradingConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_the_brokers_calendar_closes_is_not_traded() {
    let (bars, orders) = trade(None, "cal-open", 40).await;
    assert!(
        bars >= 30 && orders >= 1,
        "an ordinary day trades: {bars} bars, {orders} orders"
    );
    let (bars, orders) = trade(Some(closed_on_the_day()), "cal-closed", 40).await;
    assert_eq!((bars, orders), (0, 0), "the venue's closure is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_brokers_calendar_the_built_in_one_decides() {
    let failing = TradingConfig {
        faults: TradingFaults {
            routes: vec![RouteFault::on("/v2/calendar", FaultAction::Status(503))],
            ..TradingFaults::default()
        },
        ..closed_on_the_day()
    };
    let (bars, orders) = trade(Some(failing), "cal-down", 40).await;
    assert!(
        bars >= 30 && orders >= 1,
        "the built-in calendar opens the day: {bars} bars, {orders} orders"
    );
}
