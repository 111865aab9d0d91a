//! Issue 17 §5's per-day limits against the emulator: orders per symbol per day (counted from the
//! store, so a restart does not reset the count) and the day's loss (a persisted halt).

use vectura_store::RiskLimits;

use crate::support::{algo, bar, created, env, env_with, start, SYM};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_orders_per_day_caps_the_orders_reaching_the_broker_across_a_restart() {
    // Without the limit the session places many more orders than the cap (so the cap can fail).
    let free = env("free", RiskLimits::default()).await;
    let mut t = start(&free).await;
    for _ in 0..120 {
        bar(&free, &mut t).await;
    }
    let uncapped = created(&free.log).len();
    assert!(uncapped > 4, "the session should trade often: {uncapped}");

    let e = env(
        "perday",
        RiskLimits {
            max_orders_per_day: Some(3),
            ..RiskLimits::default()
        },
    )
    .await;
    let mut t = start(&e).await;
    let mut i = 0;
    while created(&e.log).len() < 2 && i < 120 {
        bar(&e, &mut t).await;
        i += 1;
    }
    assert_eq!(created(&e.log).len(), 2, "two orders before the restart");
    // A restart (all in-memory state dropped): the day's count comes back from the store.
    drop(t);
    let mut t = start(&e).await;
    let mut ended = 0;
    for _ in i..120 {
        ended += bar(&e, &mut t).await.ended;
    }
    let per = created(&e.log);
    assert_eq!(per.len(), 3, "exactly the cap reaches the broker: {per:?}");
    assert!(
        ended > 0,
        "intents over the cap end (their triggers re-arm)"
    );
    assert!(t.status()[0].halted.is_none(), "a cap is not a halt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_daily_loss_halts_the_symbol_persistently_and_nothing_more_is_sent() {
    // 2023-07-21: INDA falls through the morning.
    let e = env_with(
        "loss",
        RiskLimits {
            // A cent: the first dip under a held lot's price breaks it.
            max_daily_loss: Some(0.01),
            ..RiskLimits::default()
        },
        Default::default(),
        chrono::NaiveDate::from_ymd_opt(2023, 7, 21).unwrap(),
    )
    .await;
    // Sells far above (5 %): the lots are held through the session's dips, so the day goes negative.
    e.store
        .upsert_algo_config(
            SYM,
            &vectura_store::AlgoConfig {
                sell_above_pct: 5.0,
                ..algo()
            },
        )
        .await
        .unwrap();
    let mut t = start(&e).await;
    let mut halted = None;
    for _ in 0..200 {
        let r = bar(&e, &mut t).await;
        if let Some(h) = r.halted.into_iter().next() {
            halted = Some(h);
            break;
        }
    }
    let (sym, why) = halted.expect("a loss of more than a cent halts the symbol");
    assert_eq!(sym, SYM);
    assert!(
        why.contains("max_daily_loss") && why.contains("vectura trade resume --symbol INDA"),
        "{why}"
    );
    let sent = created(&e.log).len();
    assert!(sent > 0, "it had bought before losing");
    drop(t);
    let stored = e.store.trade_control(SYM).await.unwrap().unwrap();
    assert_eq!(
        stored.halt_reason.as_deref(),
        Some(why.as_str()),
        "persisted"
    );
    let mut t = start(&e).await;
    assert_eq!(
        t.status()[0].halted.as_deref(),
        Some(why.as_str()),
        "survives a restart"
    );
    for _ in 0..60 {
        bar(&e, &mut t).await;
    }
    assert_eq!(created(&e.log).len(), sent, "a halted symbol sends nothing");
}
