//! The simulated broker's injected faults: what each does, and that one seed reproduces a run exactly.

use std::collections::{HashMap, HashSet};

use chrono::DateTime;
use vectura_broker::sim::{Fault, Faults, RequestOutcome, SimBroker, SimConfig};
use vectura_broker::{
    BarEvent, Broker, BrokerError, Decimal, MarketData, OrderFilter, OrderQuery, OrderStatus, Side,
    StreamEvent, TimeInForce, TradeEvent, TradeEventKind,
};
use vectura_core::BarSeries;

use crate::sim_common::{d, date, drain, events, market, session_of, spy_month};

fn session() -> BarSeries {
    session_of(&spy_month("01"), date(2011, 1, 4))
}

fn faulty(faults: Faults) -> SimBroker {
    let mut cfg = SimConfig::new(d("100000"));
    cfg.faults = faults;
    SimBroker::new(cfg).unwrap()
}

fn all_orders() -> OrderQuery {
    OrderQuery {
        status: OrderFilter::All,
        ..OrderQuery::open()
    }
}

/// A client's call retried while the broker is unavailable (up to 50 times).
macro_rules! retry {
    ($e:expr) => {{
        let mut n = 0;
        loop {
            match $e {
                Err(BrokerError::Unavailable { .. }) if n < 50 => n += 1,
                other => break other,
            }
        }
    }};
}

/// What a scripted client saw of a session: the ledger (as JSON), every stream message, every bar
/// message and every reply.
#[derive(Debug, PartialEq)]
struct Seen {
    ledger: String,
    trades: Vec<StreamEvent>,
    bars: Vec<BarEvent>,
    replies: Vec<String>,
}

/// A scripted client over one real session: buys every 3rd bar, sells every 5th, cancels the oldest
/// open order every 7th, retrying what was unavailable.
async fn scenario(faults: Faults) -> Seen {
    scenario_on(faults).await.0
}

async fn scenario_on(faults: Faults) -> (Seen, SimBroker) {
    let s = faulty(faults);
    let mut trades = retry!(s.trade_updates().await).unwrap();
    let mut bar_sub = retry!(s.subscribe_bars(&["SPY".into()]).await).unwrap();
    let mut seen = Seen {
        ledger: String::new(),
        trades: vec![],
        bars: vec![],
        replies: vec![],
    };
    let bars = session();
    for i in 0..bars.len() {
        s.on_bar("SPY", &bars.get(i)).unwrap();
        if i % 3 == 0 {
            let r = retry!(s.submit(&market(&format!("b{i}"), Side::Buy, "1.5")).await);
            seen.replies.push(format!("{r:?}"));
        }
        if i % 5 == 0 {
            let r = retry!(s.submit(&market(&format!("s{i}"), Side::Sell, "1")).await);
            seen.replies.push(format!("{r:?}"));
        }
        if i % 7 == 0 {
            if let Ok(open) = retry!(s.orders(&OrderQuery::open()).await) {
                if let Some(o) = open.first() {
                    let r = retry!(s.cancel(&o.id).await);
                    seen.replies.push(format!("{r:?}"));
                }
            }
        }
        seen.trades.extend(drain(&mut trades));
        while let Some(m) = bar_sub.try_next() {
            seen.bars.push(m);
        }
    }
    seen.ledger = serde_json::to_string(&s.ledger()).unwrap();
    (seen, s)
}

/// Whatever the faults did, the books balance: every order's fills are its executions, one order per
/// client order id, the position is the executions' net, the cash is what they cost, none negative.
#[tokio::test]
async fn the_books_balance_for_every_seed() {
    for seed in 0..40 {
        let (_, s) = scenario_on(Faults::all(seed)).await;
        s.set_faults(Faults::none());
        let l = s.ledger();
        let orders = s.orders(&all_orders()).await.unwrap();
        let cids: HashSet<_> = orders.iter().map(|o| o.client_order_id.clone()).collect();
        assert_eq!(
            cids.len(),
            orders.len(),
            "seed {seed}: one order per client order id"
        );
        for o in &orders {
            let execs: Vec<_> = l
                .executions
                .iter()
                .filter(|e| e.execution.order_id == o.id)
                .collect();
            let filled: Decimal = execs.iter().map(|e| e.execution.qty).sum();
            assert_eq!(
                filled, o.filled_qty,
                "seed {seed}: order {}",
                o.client_order_id
            );
            assert!(o.filled_qty <= o.qty.unwrap());
            assert_eq!(
                o.status == OrderStatus::Filled,
                o.filled_qty == o.qty.unwrap(),
                "seed {seed}"
            );
        }
        let (mut cash, mut held) = (d("100000"), Decimal::ZERO);
        for e in &l.executions {
            let x = &e.execution;
            match x.side {
                Side::Buy => {
                    cash -= x.qty * x.price + e.commission;
                    held += x.qty;
                }
                Side::Sell => {
                    cash += x.qty * x.price - e.commission;
                    held -= x.qty;
                }
            }
        }
        let a = s.account().await.unwrap();
        assert_eq!(a.cash, cash, "seed {seed}: cash");
        let pos: Decimal = s.positions().await.unwrap().iter().map(|p| p.qty).sum();
        assert_eq!(pos, held, "seed {seed}: position");
        assert!(
            a.cash >= Decimal::ZERO && a.buying_power >= Decimal::ZERO && a.buying_power <= a.cash
        );
        let fills = l.events.iter().filter(|e| e.execution.is_some()).count();
        assert_eq!(
            fills,
            l.executions.len(),
            "seed {seed}: one fill event per execution"
        );
        let ids: HashSet<_> = l
            .executions
            .iter()
            .map(|e| e.execution.id.clone())
            .collect();
        assert_eq!(
            ids.len(),
            l.executions.len(),
            "seed {seed}: execution ids are unique"
        );
    }
}

#[tokio::test]
async fn one_seed_reproduces_a_run_with_every_fault_on() {
    let a = scenario(Faults::all(42)).await;
    let b = scenario(Faults::all(42)).await;
    assert_eq!(
        a, b,
        "the same seed gives the same run, message for message"
    );
    let c = scenario(Faults::all(43)).await;
    assert_ne!(a.ledger, c.ledger, "another seed gives another run");
    // With all faults on, each one shows in a session.
    let l: serde_json::Value = serde_json::from_str(&a.ledger).unwrap();
    let count = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        l["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| pred(r))
            .count()
    };
    assert!(
        count(&|r| r["outcome"]["outcome"] == "refused"
            && r["outcome"]["message"] == "potential wash trade detected. use complex orders")
            > 0,
        "injected rejects"
    );
    assert!(
        count(&|r| r["outcome"]["outcome"] == "unavailable" && r["outcome"]["order_id"].is_null())
            > 0,
        "5xx/timeouts"
    );
    assert!(
        count(&|r| r["outcome"]["outcome"] == "unavailable" && r["outcome"]["order_id"].is_string())
            > 0,
        "lost replies"
    );
    let disconnects = a
        .trades
        .iter()
        .filter(|m| matches!(m, StreamEvent::Disconnected { .. }))
        .count();
    assert!(disconnects > 0, "dropped order streams");
    assert!(
        a.bars
            .iter()
            .any(|m| matches!(m, BarEvent::Disconnected { .. })),
        "dropped bar streams"
    );
    let partials = l["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "partial_fill")
        .count();
    assert!(partials > 0, "partial fills");
    // Without faults the same script runs clean.
    let clean = scenario(Faults::none()).await;
    assert!(clean
        .trades
        .iter()
        .all(|m| !matches!(m, StreamEvent::Disconnected { .. })));
    assert!(!clean.ledger.contains("\"outcome\":\"unavailable\""));
}

#[tokio::test]
async fn each_fault_alone_is_reproducible_and_changes_the_run() {
    let clean = scenario(Faults::none()).await;
    for fault in Fault::ALL {
        let a = scenario(Faults::only(7, fault)).await;
        assert_eq!(
            a,
            scenario(Faults::only(7, fault)).await,
            "{fault:?}: same seed, same run"
        );
        assert_ne!(a, clean, "{fault:?} changed nothing at its default rate");
        assert_ne!(
            a,
            scenario(Faults::only(8, fault)).await,
            "{fault:?}: another seed, another run"
        );
    }
}

#[tokio::test]
async fn rejects_refuse_with_alpacas_replies_and_create_nothing() {
    let s = faulty(Faults::none().with(Fault::Reject, 1.0));
    s.on_bar("SPY", &session().get(0)).unwrap();
    let mut msgs = HashSet::new();
    for i in 0..40 {
        match s.submit(&market(&format!("r{i}"), Side::Buy, "1")).await {
            Err(BrokerError::Rejected {
                status,
                code,
                message,
            }) => {
                assert!(status == 403 || status == 422);
                assert!(code.is_some());
                msgs.insert(message);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(msgs.contains("insufficient buying power"));
    assert!(msgs.contains("potential wash trade detected. use complex orders"));
    assert!(s.orders(&all_orders()).await.unwrap().is_empty());
    assert!(s.ledger().events.is_empty(), "no event for a refused order");
}

#[tokio::test]
async fn a_reject_is_decided_per_attempt_by_the_seed() {
    let refused = |seed: u64| async move {
        let s = faulty(Faults::none().seeded(seed).with(Fault::Reject, 0.5));
        s.on_bar("SPY", &session().get(0)).unwrap();
        let mut out = vec![];
        for i in 0..100 {
            let cid = format!("r{i}");
            let first = s.submit(&market(&cid, Side::Buy, "1")).await.is_err();
            // A refused order may be sent again under the same id: a new attempt, decided anew.
            let second = first && s.submit(&market(&cid, Side::Buy, "1")).await.is_ok();
            out.push((first, second));
        }
        out
    };
    let (a, b, c) = (refused(1).await, refused(1).await, refused(2).await);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let n = a.iter().filter(|x| x.0).count();
    assert!((30..70).contains(&n), "{n} of 100 refused at rate 0.5");
    assert!(
        a.iter().any(|x| x.1),
        "some retries of a refused id are accepted"
    );
}

#[tokio::test]
async fn partial_fills_sum_to_the_order_at_the_volume_weighted_price() {
    let f = Faults::none().with(Fault::PartialFill, 1.0).seeded(5);
    let s = faulty(f);
    let bars = session();
    s.on_bar("SPY", &bars.get(0)).unwrap();
    for (cid, qty) in [("w", "10"), ("fr", "1.2345"), ("one", "1")] {
        s.submit(&market(cid, Side::Buy, qty)).await.unwrap();
    }
    for i in 1..6 {
        s.on_bar("SPY", &bars.get(i)).unwrap();
    }
    let l = s.ledger();
    for (cid, qty) in [("w", "10"), ("fr", "1.2345"), ("one", "1")] {
        let o = s.order_by_client_id(cid).await.unwrap().unwrap();
        let parts: Vec<_> = l
            .executions
            .iter()
            .filter(|e| e.client_order_id == cid)
            .map(|e| e.execution.clone())
            .collect();
        let total: Decimal = parts.iter().map(|x| x.qty).sum();
        assert_eq!(total, d(qty), "{cid}: the parts sum to the order");
        assert_eq!(o.status, OrderStatus::Filled);
        assert_eq!(o.filled_qty, d(qty));
        if cid != "one" {
            assert!(parts.len() >= 2, "{cid}: {} parts", parts.len());
        } else {
            assert_eq!(parts.len(), 1, "one share cannot be split");
        }
        // Parts keep the order's precision; cum and leaves run down to zero.
        let scale = d(qty).normalize().scale();
        let mut cum = Decimal::ZERO;
        for x in &parts {
            assert!(x.qty > Decimal::ZERO && x.qty.normalize().scale() <= scale);
            cum += x.qty;
            assert_eq!((x.cum_qty, x.leaves_qty), (cum, d(qty) - cum));
        }
        let vwap = parts.iter().map(|x| x.qty * x.price).sum::<Decimal>() / total;
        assert_eq!(o.filled_avg_price.unwrap().round_dp(20), vwap.round_dp(20));
        // Every part but the last is a partial_fill event.
        let kinds: Vec<_> = l
            .events
            .iter()
            .filter(|e| e.order.client_order_id == cid && e.execution.is_some())
            .map(|e| e.kind.clone())
            .collect();
        let mut want = vec![TradeEventKind::PartialFill; parts.len() - 1];
        want.push(TradeEventKind::Fill);
        assert_eq!(kinds, want);
    }
}

#[tokio::test]
async fn a_partially_filled_order_can_be_cancelled_and_keeps_its_fills() {
    let mut f = Faults::none().with(Fault::PartialFill, 1.0).seeded(9);
    f.max_parts = 4;
    f.max_part_bars = 4;
    let s = faulty(f);
    let bars = session();
    s.on_bar("SPY", &bars.get(0)).unwrap();
    let mut found = 0;
    for i in 0..30 {
        let cid = format!("p{i}");
        let o = s.submit(&market(&cid, Side::Buy, "10")).await.unwrap();
        s.on_bar("SPY", &bars.get(2 * i + 1)).unwrap();
        let now = s.order_by_client_id(&cid).await.unwrap().unwrap();
        if now.status != OrderStatus::PartiallyFilled {
            continue;
        }
        found += 1;
        s.cancel(&o.id).await.unwrap();
        s.on_bar("SPY", &bars.get(2 * i + 2)).unwrap();
        let end = s.order_by_client_id(&cid).await.unwrap().unwrap();
        assert_eq!(end.status, OrderStatus::Canceled);
        assert_eq!(end.filled_qty, now.filled_qty, "no fill after the cancel");
        assert!(end.filled_qty > Decimal::ZERO && end.filled_qty < d("10"));
        let filled: Decimal = s
            .ledger()
            .executions
            .iter()
            .filter(|e| e.client_order_id == cid)
            .map(|e| e.execution.qty)
            .sum();
        assert_eq!(filled, end.filled_qty);
    }
    assert!(found >= 3, "only {found} orders were cancelled part-filled");
    // The position is exactly what was filled, over all orders.
    let total: Decimal = s.ledger().executions.iter().map(|e| e.execution.qty).sum();
    assert_eq!(s.positions().await.unwrap()[0].qty, total);
    assert_eq!(
        s.account().await.unwrap().buying_power,
        s.account().await.unwrap().cash,
        "no open order reserves anything"
    );
}

#[tokio::test]
async fn delayed_fills_come_bars_later_at_that_bars_open() {
    let f = Faults::none().with(Fault::DelayedFill, 1.0).seeded(3);
    let s = faulty(f.clone());
    let bars = session();
    let mut placed = HashMap::new();
    for i in 0..60 {
        s.on_bar("SPY", &bars.get(i)).unwrap();
        if i < 50 {
            let cid = format!("d{i}");
            s.submit(&market(&cid, Side::Buy, "1")).await.unwrap();
            placed.insert(cid, i);
        }
    }
    let l = s.ledger();
    let mut delays = HashSet::new();
    for e in &l.executions {
        let at = bars
            .ts
            .iter()
            .position(|&t| t == e.execution.time.timestamp())
            .unwrap();
        let delay = at - placed[&e.client_order_id] - 1;
        assert!(
            (1..=f.max_delay_bars as usize).contains(&delay),
            "delay {delay}"
        );
        assert_eq!(
            e.execution.price.to_string().parse::<f64>().unwrap(),
            bars.open[at]
        );
        delays.insert(delay);
    }
    assert_eq!(l.executions.len(), 50);
    assert!(delays.len() > 1, "delays vary: {delays:?}");
}

#[tokio::test]
async fn an_order_that_stays_new_never_fills_until_cancelled_or_expired() {
    let s = faulty(Faults::none().with(Fault::StaysNew, 1.0));
    let bars = session();
    s.on_bar("SPY", &bars.get(0)).unwrap();
    let day = s.submit(&market("day", Side::Buy, "1")).await.unwrap();
    let mut gtc = market("gtc", Side::Buy, "2");
    gtc.time_in_force = TimeInForce::Gtc;
    let gtc = s.submit(&gtc).await.unwrap();
    for i in 1..200 {
        s.on_bar("SPY", &bars.get(i)).unwrap();
    }
    for o in [&day, &gtc] {
        let o = s
            .order_by_client_id(&o.client_order_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(o.status, OrderStatus::New);
    }
    s.cancel(&gtc.id).await.unwrap();
    for i in 200..bars.len() {
        s.on_bar("SPY", &bars.get(i)).unwrap();
    }
    assert!(s.ledger().executions.is_empty());
    let gtc = s.order_by_client_id("gtc").await.unwrap().unwrap();
    assert_eq!(gtc.status, OrderStatus::Canceled);
    let day = s.order_by_client_id("day").await.unwrap().unwrap();
    assert_eq!(
        day.status,
        OrderStatus::Expired,
        "a day order expires at the close"
    );
}

/// A consumer that applies stream events and, after each reconnect, backfills from the REST calls.
#[tokio::test]
async fn a_dropped_order_stream_loses_events_until_the_next_bar_and_backfill_recovers_them() {
    let s = faulty(Faults::none().with(Fault::DropTradeStream, 0.3).seeded(11));
    let mut u = s.trade_updates().await.unwrap();
    let bars = session();
    // Executions the stream delivered, and those known from stream or backfill.
    let mut streamed: HashSet<String> = HashSet::new();
    let mut seen_exec: HashSet<String> = HashSet::new();
    let (mut drops, mut reconnects) = (0, 0);
    let mut down = false;
    for i in 0..bars.len() {
        s.on_bar("SPY", &bars.get(i)).unwrap();
        if i % 2 == 0 {
            s.submit(&market(&format!("o{i}"), Side::Buy, "0.5"))
                .await
                .unwrap();
        }
        for m in drain(&mut u) {
            match m {
                StreamEvent::Disconnected { fatal, .. } => {
                    assert!(!fatal && !down);
                    down = true;
                    drops += 1;
                }
                StreamEvent::Connected { reconnect: false } => {
                    assert_eq!((i, drops), (0, 0), "the first message, once");
                }
                StreamEvent::Connected { reconnect: true } => {
                    assert!(down, "a reconnect follows a drop");
                    down = false;
                    reconnects += 1;
                    for x in s.executions(None).await.unwrap() {
                        seen_exec.insert(x.id);
                    }
                }
                StreamEvent::Event(e) => {
                    assert!(!down, "no event arrives while disconnected");
                    if let Some(x) = &e.execution {
                        streamed.insert(x.id.clone());
                        seen_exec.insert(x.id.clone());
                    }
                }
            }
        }
    }
    s.advance_to(bars.ts[bars.len() - 1] + 3600);
    for m in drain(&mut u) {
        if m == (StreamEvent::Connected { reconnect: true }) {
            for x in s.executions(None).await.unwrap() {
                seen_exec.insert(x.id);
            }
        }
    }
    let all: HashSet<String> = s
        .ledger()
        .executions
        .iter()
        .map(|e| e.execution.id.clone())
        .collect();
    assert!(
        drops > 5 && reconnects >= drops - 1,
        "{drops} drops, {reconnects} reconnects"
    );
    assert!(
        streamed.len() < all.len() && streamed.is_subset(&all),
        "the gaps lost fills ({} of {} streamed)",
        streamed.len(),
        all.len()
    );
    assert_eq!(seen_exec, all, "stream plus backfill saw every execution");
}

#[tokio::test]
async fn a_dropped_bar_stream_loses_bars_that_rest_backfills() {
    let f = Faults::none().with(Fault::DropBarStream, 0.05).seeded(4);
    let s = faulty(f.clone());
    let mut sub = s.subscribe_bars(&["SPY".into()]).await.unwrap();
    let bars = session();
    let mut got: Vec<i64> = vec![];
    let mut gap_start = None;
    let mut gaps = 0;
    for i in 0..bars.len() {
        s.on_bar("SPY", &bars.get(i)).unwrap();
        while let Some(m) = sub.try_next() {
            match m {
                BarEvent::Bar { bar, .. } => got.push(bar.ts),
                BarEvent::Disconnected { .. } => gap_start = Some(bars.ts[i]),
                BarEvent::Connected { reconnect: true } => {
                    let from = DateTime::from_timestamp(gap_start.take().unwrap(), 0).unwrap();
                    let to = DateTime::from_timestamp(bars.ts[i], 0).unwrap();
                    let lost = s.bars("SPY", from, to).await.unwrap();
                    assert!(!lost.is_empty() && lost.len() <= f.max_gap_bars as usize);
                    gaps += 1;
                    got.extend(lost.iter().map(|b| b.ts));
                }
                BarEvent::Connected { reconnect: false } => {}
            }
        }
    }
    assert!(gaps > 3, "{gaps} gaps");
    // Bars of a gap still open at the end are in REST too.
    if let Some(t) = gap_start {
        let from = DateTime::from_timestamp(t, 0).unwrap();
        let to = DateTime::from_timestamp(i64::from(i32::MAX), 0).unwrap();
        got.extend(s.bars("SPY", from, to).await.unwrap().iter().map(|b| b.ts));
    }
    got.sort();
    assert_eq!(got, bars.ts, "stream plus backfill gives every bar once");
}

/// Dedupes by content (a duplicate is the same event again).
fn dedupe(evs: &[TradeEvent]) -> Vec<TradeEvent> {
    let mut out: Vec<TradeEvent> = vec![];
    for e in evs {
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    out
}

async fn run_events(f: Faults) -> (Vec<TradeEvent>, Vec<TradeEvent>) {
    let s = faulty(f);
    let mut u = s.trade_updates().await.unwrap();
    let bars = session();
    let mut msgs = vec![];
    for i in 0..120 {
        s.on_bar("SPY", &bars.get(i)).unwrap();
        s.submit(&market(&format!("o{i}"), Side::Buy, "1"))
            .await
            .unwrap();
        msgs.extend(drain(&mut u));
    }
    // Time passes: anything still held back is delivered.
    s.advance_to(bars.ts[119] + 120);
    msgs.extend(drain(&mut u));
    (events(&msgs), s.ledger().events)
}

#[tokio::test]
async fn duplicate_events_repeat_an_event_and_nothing_else() {
    let (got, all) = run_events(Faults::none().with(Fault::DuplicateEvent, 0.3).seeded(8)).await;
    assert!(
        got.len() > all.len() + 20,
        "{} delivered, {} events",
        got.len(),
        all.len()
    );
    assert_eq!(
        dedupe(&got),
        all,
        "without the repeats, the stream is the broker's events in order"
    );
}

#[tokio::test]
async fn reordered_events_arrive_late_but_all_arrive() {
    let (got, all) = run_events(Faults::none().with(Fault::ReorderEvent, 0.3).seeded(8)).await;
    assert_eq!(got.len(), all.len());
    assert_ne!(got, all, "some events are out of order");
    let mut sorted = got.clone();
    sorted.sort_by_key(|e| e.at);
    assert_eq!(sorted, all, "the same events, ordered by their time");
    // A fill overtaking its order's `new` event is among the orders a consumer must handle.
    let pos = |cid: &str, k: TradeEventKind| {
        got.iter()
            .position(|e| e.order.client_order_id == cid && e.kind == k)
    };
    assert!(
        (0..119).any(|i| {
            let cid = format!("o{i}");
            pos(&cid, TradeEventKind::Fill) < pos(&cid, TradeEventKind::New)
        }),
        "no fill overtook its new event"
    );
}

#[tokio::test]
async fn unavailable_calls_have_no_effect_and_say_so() {
    let s = faulty(Faults::none().with(Fault::Unavailable, 0.5).seeded(6));
    s.on_bar("SPY", &session().get(0)).unwrap();
    let mut failed = 0;
    for i in 0..60 {
        let cid = format!("u{i}");
        match s.submit(&market(&cid, Side::Buy, "1")).await {
            Err(e @ BrokerError::Unavailable { .. }) => {
                failed += 1;
                assert!(
                    !e.nothing_happened(),
                    "the caller cannot know; the contract says reconcile"
                );
                assert!(e.to_string().contains("simulated"));
                let found = retry!(s.order_by_client_id(&cid).await).unwrap();
                assert!(
                    found.is_none(),
                    "a 5xx before the order: nothing was created"
                );
            }
            Ok(o) => assert_eq!(o.client_order_id, cid),
            Err(e) => panic!("{e}"),
        }
    }
    assert!((15..45).contains(&failed), "{failed} of 60");
    // Reads fail too, and a retry answers.
    let mut read_failures = 0;
    for _ in 0..40 {
        if s.account().await.is_err() {
            read_failures += 1;
        }
    }
    assert!(read_failures > 5);
    assert!(retry!(s.account().await).is_ok());
}

#[tokio::test]
async fn a_lost_reply_hides_an_accepted_order_and_the_retry_finds_it() {
    let s = faulty(Faults::none().with(Fault::LostReply, 1.0));
    let bars = session();
    s.on_bar("SPY", &bars.get(0)).unwrap();
    let req = market("lost", Side::Buy, "1");
    assert!(matches!(
        s.submit(&req).await,
        Err(BrokerError::Unavailable { .. })
    ));
    let o = s
        .order_by_client_id("lost")
        .await
        .unwrap()
        .expect("the order exists");
    // The retry with the same id returns that order; nothing new.
    let again = s.submit(&req).await.unwrap();
    assert_eq!(again.id, o.id);
    assert_eq!(s.orders(&all_orders()).await.unwrap().len(), 1);
    let outcomes: Vec<_> = s
        .ledger()
        .requests
        .iter()
        .map(|r| r.outcome.clone())
        .collect();
    assert_eq!(
        outcomes,
        vec![
            RequestOutcome::Unavailable {
                order_id: Some(o.id.clone())
            },
            RequestOutcome::Duplicate {
                order_id: o.id.clone()
            }
        ]
    );
    // A cancel whose reply is lost took effect.
    assert!(s.cancel(&o.id).await.is_err());
    assert_eq!(
        s.order_by_client_id("lost").await.unwrap().unwrap().status,
        OrderStatus::Canceled
    );
}

#[tokio::test]
async fn a_consumer_that_falls_behind_is_disconnected_and_recovers() {
    let mut cfg = SimConfig::new(d("100000"));
    cfg.stream_capacity = 8;
    let s = SimBroker::new(cfg).unwrap();
    let mut u = s.trade_updates().await.unwrap();
    let bars = session();
    s.on_bar("SPY", &bars.get(0)).unwrap();
    for i in 0..20 {
        s.submit(&market(&format!("o{i}"), Side::Buy, "1"))
            .await
            .unwrap();
    }
    // 1 connect + 7 of the 20 `new` events fit; the rest is lost.
    let first = drain(&mut u);
    assert_eq!(first.len(), 8);
    s.on_bar("SPY", &bars.get(1)).unwrap();
    let next = drain(&mut u);
    assert!(
        matches!(next[0], StreamEvent::Disconnected { .. }),
        "{:?}",
        next[0]
    );
    assert_eq!(next[1], StreamEvent::Connected { reconnect: true });
    assert_eq!(
        events(&next)
            .iter()
            .filter(|e| e.kind == TradeEventKind::Fill)
            .count(),
        6,
        "what fits after the reconnect"
    );
}
