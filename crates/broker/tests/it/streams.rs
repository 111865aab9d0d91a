//! The `trade_updates` and bar streams: events as the emulator sends them (binary or text frames),
//! reconnects with backfill, duplicates, and the market-data stream's error codes.

use std::collections::HashSet;
use std::time::Duration;

use vectura_broker::{
    BarEvent, BarUpdates, Broker, Decimal, MarketData, OrderStatus, Side, StreamEvent, TradeEvent,
    TradeEventKind, TradeUpdates,
};

use crate::common::{market, open_at, start, start_with, Env, SYM};

/// Waits (bounded, so a broken stream fails the test instead of hanging it) for the next message.
pub async fn next(u: &mut TradeUpdates) -> StreamEvent {
    tokio::time::timeout(Duration::from_secs(10), u.next())
        .await
        .expect("a stream message within 10 s")
        .expect("the stream is still running")
}

pub async fn next_event(u: &mut TradeUpdates) -> TradeEvent {
    loop {
        if let StreamEvent::Event(e) = next(u).await {
            return *e;
        }
    }
}

pub async fn connected(u: &mut TradeUpdates) -> bool {
    loop {
        match next(u).await {
            StreamEvent::Connected { reconnect } => return reconnect,
            StreamEvent::Disconnected {
                fatal: true,
                reason,
            } => panic!("fatal: {reason}"),
            _ => {}
        }
    }
}

async fn next_bar(u: &mut BarUpdates) -> BarEvent {
    tokio::time::timeout(Duration::from_secs(10), u.next())
        .await
        .expect("a bar message within 10 s")
        .expect("the stream is still running")
}

async fn subscribed(env: &Env) -> TradeUpdates {
    let mut u = env.client.trade_updates().await.unwrap();
    assert!(
        !connected(&mut u).await,
        "the first connection is not a reconnect"
    );
    u
}

#[tokio::test]
async fn order_events_arrive_in_binary_and_in_text_frames() {
    for binary in [true, false] {
        let env = start_with(|c| c.trading.binary_frames = binary).await;
        let mut u = subscribed(&env).await;
        let o = env
            .client
            .submit(&market("run1-TEST-1", Side::Buy, "2"))
            .await
            .unwrap();
        let e = next_event(&mut u).await;
        assert_eq!(
            (e.kind.clone(), e.order.id.clone()),
            (TradeEventKind::New, o.id.clone()),
            "binary={binary}"
        );
        env.handle.step();
        let f = next_event(&mut u).await;
        assert_eq!(f.kind, TradeEventKind::Fill);
        assert_eq!(f.order.status, OrderStatus::Filled);
        let ex = f.execution.expect("a fill carries its execution");
        assert_eq!(
            (ex.qty, ex.price, ex.cum_qty, ex.leaves_qty),
            (
                "2".parse().unwrap(),
                open_at(5),
                "2".parse().unwrap(),
                Decimal::ZERO
            )
        );
        assert_eq!(f.position_qty, Some("2".parse().unwrap()));
        // The stream's execution id is the FILL activity's: a consumer de-duplicates across both.
        let rest = env.client.executions(None).await.unwrap();
        assert_eq!(rest[0].id, ex.id);
    }
}

#[tokio::test]
async fn partial_fills_arrive_in_parts_that_add_up_and_a_cancelled_remainder_ends_the_order() {
    let env = start().await;
    env.handle
        .update_trading_faults(|f| f.partial_fills = Some(3));
    let mut u = subscribed(&env).await;
    let o = env
        .client
        .submit(&market("run1-TEST-P", Side::Buy, "10"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut u).await.kind, TradeEventKind::New);
    env.handle.step();
    env.handle.step();
    let p1 = next_event(&mut u).await;
    let p2 = next_event(&mut u).await;
    assert_eq!(
        (p1.kind.clone(), p2.kind.clone()),
        (TradeEventKind::PartialFill, TradeEventKind::PartialFill)
    );
    let (e1, e2) = (p1.execution.unwrap(), p2.execution.unwrap());
    assert_ne!(e1.id, e2.id);
    assert_eq!(e1.qty + e2.qty, e2.cum_qty);
    assert_eq!(e2.leaves_qty, "10".parse::<Decimal>().unwrap() - e2.cum_qty);
    // Each part at its own bar's open.
    assert_eq!((e1.price, e2.price), (open_at(5), open_at(6)));
    env.client.cancel(&o.id).await.unwrap();
    let c = next_event(&mut u).await;
    assert_eq!(c.kind, TradeEventKind::Canceled);
    assert_eq!(c.order.filled_qty, e2.cum_qty);
    let pos = env.client.positions().await.unwrap();
    assert_eq!(
        pos[0].qty, e2.cum_qty,
        "the cancelled remainder leaves the smaller position"
    );
}

#[tokio::test]
async fn a_dropped_stream_reconnects_and_backfills_the_fill_it_missed_before_saying_so() {
    let env = start().await;
    let mut u = subscribed(&env).await;
    let o = env
        .client
        .submit(&market("run1-TEST-D", Side::Buy, "1"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut u).await.kind, TradeEventKind::New);
    // The network fails, and stays down while the order fills.
    env.handle
        .update_trading_faults(|f| f.refuse_streams = true);
    assert_eq!(env.handle.drop_trade_streams(), 1);
    match next(&mut u).await {
        StreamEvent::Disconnected { fatal: false, .. } => {}
        other => panic!("{other:?}"),
    }
    env.handle.step();
    // Reconnect attempts fail while refused (reported, not fatal).
    match next(&mut u).await {
        StreamEvent::Disconnected { fatal: false, .. } => {}
        other => panic!("{other:?}"),
    }
    env.handle
        .update_trading_faults(|f| f.refuse_streams = false);
    let mut backfilled = Vec::new();
    loop {
        match next(&mut u).await {
            StreamEvent::Event(e) => backfilled.push(*e),
            StreamEvent::Connected { reconnect } => {
                assert!(reconnect);
                break;
            }
            StreamEvent::Disconnected { fatal, reason } => assert!(!fatal, "{reason}"),
        }
    }
    let fills: Vec<&TradeEvent> = backfilled
        .iter()
        .filter(|e| e.kind == TradeEventKind::Fill)
        .collect();
    assert_eq!(fills.len(), 1, "{backfilled:#?}");
    assert_eq!(fills[0].order.id, o.id);
    let ex = fills[0].execution.as_ref().unwrap();
    assert_eq!(ex.price, open_at(5));
    // And live events flow again.
    env.client
        .submit(&market("run1-TEST-D2", Side::Buy, "1"))
        .await
        .unwrap();
    let e = next_event(&mut u).await;
    assert_eq!(e.order.client_order_id, "run1-TEST-D2");
}

#[tokio::test]
async fn duplicate_events_after_a_reconnect_are_passed_on_and_de_duplicate_by_execution_id() {
    let env = start().await;
    env.handle
        .update_trading_faults(|f| f.duplicate_on_reconnect = Some(10));
    let mut u = subscribed(&env).await;
    env.client
        .submit(&market("run1-TEST-X", Side::Buy, "1"))
        .await
        .unwrap();
    env.handle.step();
    let mut seen = Vec::new();
    while seen
        .iter()
        .filter(|e: &&TradeEvent| e.kind == TradeEventKind::Fill)
        .count()
        < 1
    {
        seen.push(next_event(&mut u).await);
    }
    env.handle.drop_trade_streams();
    let mut after = Vec::new();
    loop {
        match next(&mut u).await {
            StreamEvent::Event(e) => after.push(*e),
            StreamEvent::Connected { reconnect: true } => break,
            _ => {}
        }
    }
    // The emulator then replays the last events on the new connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while after
        .iter()
        .filter(|e| e.kind == TradeEventKind::Fill)
        .count()
        < 2
        && tokio::time::Instant::now() < deadline
    {
        if let Ok(Some(StreamEvent::Event(e))) =
            tokio::time::timeout(Duration::from_millis(200), u.next()).await
        {
            after.push(*e);
        }
    }
    let all_fills: Vec<String> = seen
        .iter()
        .chain(after.iter())
        .filter_map(|e| e.execution.as_ref().map(|x| x.id.clone()))
        .collect();
    assert!(
        all_fills.len() >= 3,
        "the fill live, backfilled and replayed: {all_fills:?}"
    );
    let unique: HashSet<&String> = all_fills.iter().collect();
    assert_eq!(unique.len(), 1, "one execution, seen several times");
}

#[tokio::test]
async fn rejections_and_holds_arrive_as_events() {
    let env = start().await;
    let mut u = subscribed(&env).await;
    env.handle.update_trading_faults(|f| f.reject_later = 1);
    let o = env
        .client
        .submit(&market("run1-TEST-R", Side::Buy, "1"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut u).await.kind, TradeEventKind::New);
    env.handle.step();
    let r = next_event(&mut u).await;
    assert_eq!(
        (r.kind, r.order.id, r.order.status),
        (TradeEventKind::Rejected, o.id, OrderStatus::Rejected)
    );
    // An order that stays new: no fill however many bars pass, until cancelled.
    env.handle.update_trading_faults(|f| f.hold_new = true);
    let h = env
        .client
        .submit(&market("run1-TEST-H", Side::Buy, "1"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut u).await.kind, TradeEventKind::New);
    env.handle.step_bars(5);
    assert_eq!(
        env.client.order_by_id(&h.id).await.unwrap().unwrap().status,
        OrderStatus::New
    );
    env.client.cancel(&h.id).await.unwrap();
    assert_eq!(next_event(&mut u).await.kind, TradeEventKind::Canceled);
}

#[tokio::test]
async fn a_delayed_fill_comes_only_once_its_delay_passed_in_emulator_time() {
    let env = start().await;
    env.handle
        .update_trading_faults(|f| f.fill_delay = Some(Duration::from_secs(150)));
    let mut u = subscribed(&env).await;
    let o = env
        .client
        .submit(&market("run1-TEST-DL", Side::Buy, "1"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut u).await.kind, TradeEventKind::New);
    env.handle.step_bars(2); // 09:37: 120 s later
    assert_eq!(
        env.client.order_by_id(&o.id).await.unwrap().unwrap().status,
        OrderStatus::New
    );
    env.handle.step(); // 09:38: the 09:37 bar (opened 150 s after 09:35, rounded to its minute) filled it
    let f = next_event(&mut u).await;
    assert_eq!(f.kind, TradeEventKind::Fill);
    assert_eq!(f.execution.unwrap().price, open_at(7));
}

#[tokio::test]
async fn bars_stream_as_their_minute_closes_and_a_reconnect_backfills_the_gap_by_rest() {
    let env = start().await;
    let mut b = env.client.subscribe_bars(&[SYM.to_string()]).await.unwrap();
    assert_eq!(
        next_bar(&mut b).await,
        BarEvent::Connected { reconnect: false }
    );
    env.handle.step();
    match next_bar(&mut b).await {
        BarEvent::Bar { symbol, bar } => {
            assert_eq!(symbol, SYM);
            assert_eq!(bar.ts, crate::common::open_day1().timestamp() + 5 * 60);
            assert_eq!(bar.open, 100.05);
        }
        other => panic!("{other:?}"),
    }
    env.handle
        .update_trading_faults(|f| f.refuse_streams = true);
    env.handle.drop_data_streams();
    assert!(matches!(
        next_bar(&mut b).await,
        BarEvent::Disconnected { fatal: false, .. }
    ));
    env.handle.step_bars(3); // three bars close while disconnected
    env.handle
        .update_trading_faults(|f| f.refuse_streams = false);
    let mut got = Vec::new();
    loop {
        match next_bar(&mut b).await {
            BarEvent::Bar { bar, .. } => got.push(bar.ts),
            BarEvent::Connected { reconnect: true } => break,
            BarEvent::Disconnected { fatal, reason } => assert!(!fatal, "{reason}"),
            other => panic!("{other:?}"),
        }
    }
    let t0 = crate::common::open_day1().timestamp() + 6 * 60;
    assert_eq!(
        got,
        vec![t0, t0 + 60, t0 + 120],
        "the gap's bars, by REST, once each"
    );
}

#[tokio::test]
async fn the_bar_stream_stops_on_402_and_409_and_waits_out_406() {
    // 402: wrong keys.
    let env = start().await;
    let bad = vectura_broker::alpaca::AlpacaClient::new(crate::common::fast(
        vectura_broker::alpaca::AlpacaConfig::new(crate::common::KEY, "wrong")
            .with_trading_url(&env.emu.base_url())
            .with_data_url(&env.emu.base_url()),
    ))
    .unwrap();
    let mut b = bad.subscribe_bars(&[SYM.to_string()]).await.unwrap();
    match next_bar(&mut b).await {
        BarEvent::Disconnected {
            fatal: true,
            reason,
        } => assert!(reason.contains("402"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // 409: SIP not in the plan.
    let sip = {
        let mut cfg = crate::common::fast(
            vectura_broker::alpaca::AlpacaConfig::new(crate::common::KEY, crate::common::SECRET)
                .with_trading_url(&env.emu.base_url())
                .with_data_url(&env.emu.base_url()),
        );
        cfg.feed = vectura_broker::DataFeed::Sip;
        vectura_broker::alpaca::AlpacaClient::new(cfg).unwrap()
    };
    env.handle
        .update_trading_faults(|f| f.sip_not_in_plan = true);
    let mut b = sip.subscribe_bars(&[SYM.to_string()]).await.unwrap();
    match next_bar(&mut b).await {
        BarEvent::Disconnected {
            fatal: true,
            reason,
        } => assert!(reason.contains("409"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // 406: a dropped connection still counts for a while; the client waits (not fatal) and gets in.
    env.handle
        .update_trading_faults(|f| f.stale_after_drop = Some(Duration::from_millis(400)));
    let mut b = env.client.subscribe_bars(&[SYM.to_string()]).await.unwrap();
    assert_eq!(
        next_bar(&mut b).await,
        BarEvent::Connected { reconnect: false }
    );
    env.handle.drop_data_streams();
    let mut limits = 0;
    loop {
        match next_bar(&mut b).await {
            BarEvent::Disconnected {
                fatal: false,
                reason,
            } => limits += usize::from(reason.contains("406")),
            BarEvent::Connected { reconnect: true } => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(limits >= 1, "the stale connection was reported");
    assert_eq!(env.handle.data_stream_count(crate::common::KEY), 1);
}

/// A bar on the market-data stream that fails the shared bar checks (here a negative low) is not
/// handed to the strategy: the next good bar is the next event.
#[tokio::test]
async fn a_bad_bar_on_the_stream_is_dropped_not_delivered() {
    let env = start().await;
    let mut bars = crate::common::bars();
    bars[5].l = -1.0; // the 09:35 bar, the first the stream sends
    env.handle.set_bars(SYM, bars);
    let mut b = env.client.subscribe_bars(&[SYM.to_string()]).await.unwrap();
    assert_eq!(
        next_bar(&mut b).await,
        BarEvent::Connected { reconnect: false }
    );
    env.handle.step();
    env.handle.step();
    match next_bar(&mut b).await {
        BarEvent::Bar { symbol, bar } => {
            assert_eq!(symbol, SYM);
            assert_eq!(
                bar.ts,
                crate::common::open_day1().timestamp() + 6 * 60,
                "the bad 09:35 bar is skipped"
            );
            assert!(bar.low > 0.0);
        }
        other => panic!("{other:?}"),
    }
}
