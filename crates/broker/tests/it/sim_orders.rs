//! The simulated broker's order handling without faults: fill timing and prices, idempotency, buying
//! power and held shares, cancels, expiry, the account, the clock, and bad input.

use chrono::DateTime;
use vectura_broker::sim::{Commission, FillModel, Overspend, SimBroker, SimConfig, SimError};
use vectura_broker::{
    Broker, BrokerError, MarketData, OrderFilter, OrderQuery, OrderStatus, OrderType, Side,
    StreamEvent, TimeInForce, TradeEventKind,
};
use vectura_core::Bar;

use crate::sim_common::{bar, d, date, drain, events, f, market, minutes, ny, sim};

fn kinds(evs: &[vectura_broker::TradeEvent]) -> Vec<TradeEventKind> {
    evs.iter().map(|e| e.kind.clone()).collect()
}

#[tokio::test]
async fn an_order_sent_after_a_bar_fills_at_the_next_bars_open() {
    let s = sim("1000");
    let mut u = s.trade_updates().await.unwrap();
    assert_eq!(
        drain(&mut u),
        vec![StreamEvent::Connected { reconnect: false }]
    );
    let bars = minutes(&[100.0, 101.0, 102.0]);
    s.on_bar("SPY", &bars[0]).unwrap();
    let o = s.submit(&market("a", Side::Buy, "2.5")).await.unwrap();
    assert_eq!(o.status, OrderStatus::New);
    assert_eq!(o.filled_qty, d("0"));
    s.on_bar("SPY", &bars[1]).unwrap();
    let evs = events(&drain(&mut u));
    assert_eq!(kinds(&evs), vec![TradeEventKind::New, TradeEventKind::Fill]);
    let x = evs[1].execution.as_ref().unwrap();
    // bars[1] opens at bars[0]'s close, 100.
    assert_eq!((x.qty, x.price), (d("2.5"), d("100")));
    assert_eq!(x.time.timestamp(), bars[1].ts);
    assert_eq!((x.cum_qty, x.leaves_qty), (d("2.5"), d("0")));
    assert_eq!(evs[1].position_qty, Some(d("2.5")));
    let o = s.order_by_client_id("a").await.unwrap().unwrap();
    assert_eq!(o.status, OrderStatus::Filled);
    assert_eq!(o.filled_avg_price, Some(d("100")));
    let a = s.account().await.unwrap();
    assert_eq!(a.cash, d("750"));
    // Marked at the last close, 101.
    assert_eq!(a.equity, d("750") + d("2.5") * d("101"));
    let p = s.positions().await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].qty, p[0].avg_entry_price), (d("2.5"), d("100")));
}

#[tokio::test]
async fn the_close_model_fills_at_the_last_close_on_submission() {
    let mut cfg = SimConfig::new(d("1000"));
    cfg.fill = FillModel::Close;
    let s = SimBroker::new(cfg).unwrap();
    let bars = minutes(&[100.0, 101.0]);
    s.on_bar("SPY", &bars[0]).unwrap();
    s.on_bar("SPY", &bars[1]).unwrap();
    let o = s.submit(&market("c", Side::Buy, "1")).await.unwrap();
    assert_eq!(o.status, OrderStatus::Filled);
    assert_eq!(o.filled_avg_price, Some(d("101")));
}

#[tokio::test]
async fn slippage_and_commission_are_the_backtests() {
    let mut cfg = SimConfig::new(d("1000"));
    cfg.slippage_bps = 10.0;
    cfg.commission = Commission {
        per_order: 1.0,
        per_share: 0.01,
        pct: 0.5,
    };
    let s = SimBroker::new(cfg).unwrap();
    let bars = minutes(&[100.0, 100.0, 100.0]);
    s.on_bar("SPY", &bars[0]).unwrap();
    s.submit(&market("b", Side::Buy, "2")).await.unwrap();
    s.on_bar("SPY", &bars[1]).unwrap();
    s.submit(&market("s", Side::Sell, "2")).await.unwrap();
    s.on_bar("SPY", &bars[2]).unwrap();
    let l = s.ledger();
    let (b, sl) = (&l.executions[0], &l.executions[1]);
    // Independently: a buy pays 10 bps more, a sell gets 10 bps less; fee = 1 + 0.01 × 2 + 0.5 % × notional.
    let buy_px = 100.0 * 1.001;
    let sell_px = 100.0 * 0.999;
    assert_eq!(f(b.execution.price), buy_px);
    assert_eq!(f(sl.execution.price), sell_px);
    assert_eq!(f(b.commission), 1.0 + 0.02 + 0.005 * 2.0 * buy_px);
    assert_eq!(f(sl.commission), 1.0 + 0.02 + 0.005 * 2.0 * sell_px);
    let cash = s.account().await.unwrap().cash;
    let want = d("1000") - b.execution.qty * b.execution.price - b.commission
        + sl.execution.qty * sl.execution.price
        - sl.commission;
    assert_eq!(cash, want);
    assert!(s.positions().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_repeated_client_order_id_returns_the_existing_order() {
    let s = sim("1000");
    s.on_bar("SPY", &minutes(&[100.0])[0]).unwrap();
    let a = s.submit(&market("same", Side::Buy, "1")).await.unwrap();
    // Even with other terms, the id decides: nothing new is created.
    let b = s.submit(&market("same", Side::Buy, "3")).await.unwrap();
    assert_eq!(a.id, b.id);
    assert_eq!(b.qty, Some(d("1")));
    assert_eq!(s.orders(&OrderQuery::open()).await.unwrap().len(), 1);
    assert_eq!(s.requests_for("same"), 2);
    let l = s.ledger();
    assert!(matches!(
        l.requests[1].outcome,
        vectura_broker::sim::RequestOutcome::Duplicate { .. }
    ));
    // One `new` event only.
    assert_eq!(
        l.events
            .iter()
            .filter(|e| e.kind == TradeEventKind::New)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_buy_the_cash_cannot_pay_is_refused_with_alpacas_403() {
    let s = sim("1000");
    s.on_bar("SPY", &minutes(&[100.0])[0]).unwrap();
    // 6 × 100 = 600 reserved by the first buy; the second (500) exceeds the 400 left.
    s.submit(&market("a", Side::Buy, "6")).await.unwrap();
    assert_eq!(
        s.account().await.unwrap().buying_power,
        d("400"),
        "open buys reserve their notional at the last close"
    );
    let e = s.submit(&market("b", Side::Buy, "5")).await.unwrap_err();
    match e {
        BrokerError::Rejected {
            status,
            code,
            message,
        } => {
            assert_eq!((status, code), (403, Some(40310000)));
            assert_eq!(message, "insufficient buying power");
        }
        other => panic!("{other:?}"),
    }
    assert!(s.order_by_client_id("b").await.unwrap().is_none());
    // 4 fits exactly.
    s.submit(&market("c", Side::Buy, "4")).await.unwrap();
}

#[tokio::test]
async fn selling_more_than_is_held_and_free_is_refused() {
    let s = sim("1000");
    let bars = minutes(&[100.0, 100.0, 100.0]);
    s.on_bar("SPY", &bars[0]).unwrap();
    let e = s.submit(&market("x", Side::Sell, "1")).await.unwrap_err();
    assert!(
        matches!(&e, BrokerError::Rejected { status: 403, message, .. } if message == "insufficient qty available for order (requested: 1, available: 0)"),
        "{e:?}"
    );
    s.submit(&market("b", Side::Buy, "3")).await.unwrap();
    s.on_bar("SPY", &bars[1]).unwrap();
    s.submit(&market("s1", Side::Sell, "2")).await.unwrap();
    // 2 of the 3 are already being sold.
    let e = s.submit(&market("s2", Side::Sell, "2")).await.unwrap_err();
    assert!(
        matches!(&e, BrokerError::Rejected { status: 403, message, .. } if message.ends_with("(requested: 2, available: 1)")),
        "{e:?}"
    );
    s.submit(&market("s3", Side::Sell, "1")).await.unwrap();
}

#[tokio::test]
async fn alpacas_order_rules_are_enforced() {
    let s = sim("1000");
    s.on_bar("SPY", &minutes(&[100.0])[0]).unwrap();
    let mut r = market("g", Side::Buy, "0.5");
    r.time_in_force = TimeInForce::Gtc;
    let e = s.submit(&r).await.unwrap_err();
    assert!(
        matches!(&e, BrokerError::Rejected { status: 422, message, .. } if message == "fractional orders must be DAY orders"),
        "{e:?}"
    );
    r.qty = d("1");
    s.submit(&r).await.expect("whole shares may be GTC");
    for (cid, qty) in [("z", "0"), ("neg", "-1"), ("ten", "0.0000000001")] {
        let e = s.submit(&market(cid, Side::Buy, qty)).await.unwrap_err();
        assert!(
            matches!(e, BrokerError::Rejected { status: 422, .. }),
            "{qty}: {e:?}"
        );
    }
    let mut r = market("ext", Side::Buy, "1");
    r.extended_hours = true;
    assert!(matches!(
        s.submit(&r).await.unwrap_err(),
        BrokerError::Rejected { status: 422, .. }
    ));
    let mut r = market("sym", Side::Buy, "1");
    r.symbol = "not a symbol".into();
    assert!(matches!(
        s.submit(&r).await.unwrap_err(),
        BrokerError::Rejected { status: 422, .. }
    ));
    let mut r = market(&"x".repeat(129), Side::Buy, "1");
    r.symbol = "SPY".into();
    assert!(matches!(
        s.submit(&r).await.unwrap_err(),
        BrokerError::Rejected { status: 422, .. }
    ));
    // Refusals create nothing.
    assert_eq!(
        s.orders(&OrderQuery {
            status: OrderFilter::All,
            ..OrderQuery::open()
        })
        .await
        .unwrap()
        .len(),
        1
    );
}

#[tokio::test]
async fn a_limit_order_fills_when_a_bar_trades_through_it() {
    let s = sim("1000");
    let t0 = ny(2011, 1, 3, 9, 30);
    s.on_bar("SPY", &bar(t0, 100.0, 100.0)).unwrap();
    let mut r = market("l", Side::Buy, "1");
    r.order_type = OrderType::Limit {
        limit_price: d("98.5"),
    };
    s.submit(&r).await.unwrap();
    // Low 99: not reached.
    s.on_bar("SPY", &bar(t0 + 60, 100.0, 99.0)).unwrap();
    assert_eq!(s.ledger().executions.len(), 0);
    // Low 98: filled at the limit.
    s.on_bar("SPY", &bar(t0 + 120, 99.0, 98.0)).unwrap();
    assert_eq!(s.ledger().executions[0].execution.price, d("98.5"));
    // A sell limit below an opening price fills at that better open.
    let mut r = market("ls", Side::Sell, "1");
    r.order_type = OrderType::Limit {
        limit_price: d("97"),
    };
    s.submit(&r).await.unwrap();
    s.on_bar("SPY", &bar(t0 + 180, 99.5, 99.0)).unwrap();
    assert_eq!(s.ledger().executions[1].execution.price, d("99.5"));
}

#[tokio::test]
async fn a_market_order_waits_for_the_regular_session() {
    let s = sim("1000");
    let pre = ny(2011, 1, 3, 9, 0);
    s.on_bar("SPY", &bar(pre, 100.0, 100.0)).unwrap();
    s.submit(&market("m", Side::Buy, "1")).await.unwrap();
    s.on_bar("SPY", &bar(pre + 60, 101.0, 101.0)).unwrap();
    assert!(
        s.ledger().executions.is_empty(),
        "no market fill pre-market"
    );
    s.on_bar("SPY", &bar(ny(2011, 1, 3, 9, 30), 102.0, 102.0))
        .unwrap();
    assert_eq!(s.ledger().executions[0].execution.price, d("102"));
}

#[tokio::test]
async fn day_orders_expire_at_their_sessions_close_and_after_hours_orders_are_for_the_next() {
    let s = sim("1000");
    let close_bar = ny(2011, 1, 3, 15, 59);
    s.on_bar("SPY", &bar(close_bar, 100.0, 100.0)).unwrap();
    // Placed at 16:00, after the close: for the next session, filled at its open.
    s.submit(&market("next", Side::Buy, "1")).await.unwrap();
    let mut r = market("gtc", Side::Buy, "1");
    r.time_in_force = TimeInForce::Gtc;
    r.order_type = OrderType::Limit {
        limit_price: d("50"),
    };
    s.submit(&r).await.unwrap();
    let mut r = market("day", Side::Buy, "1");
    r.order_type = OrderType::Limit {
        limit_price: d("50"),
    };
    s.submit(&r).await.unwrap();
    s.on_bar("SPY", &bar(ny(2011, 1, 4, 9, 30), 101.0, 101.0))
        .unwrap();
    let o = |cid: &'static str| {
        let s = &s;
        async move { s.order_by_client_id(cid).await.unwrap().unwrap() }
    };
    assert_eq!(o("next").await.status, OrderStatus::Filled);
    assert_eq!(o("day").await.status, OrderStatus::New);
    s.on_bar("SPY", &bar(ny(2011, 1, 4, 15, 59), 101.0, 101.0))
        .unwrap();
    // The 15:59 bar ends at 16:00: the day order's session is over.
    let day = o("day").await;
    assert_eq!(day.status, OrderStatus::Expired);
    assert_eq!(day.expired_at.unwrap().timestamp(), ny(2011, 1, 4, 16, 0));
    assert_eq!(o("gtc").await.status, OrderStatus::New);
    // The expiry is an event, and buying power is released.
    assert!(s
        .ledger()
        .events
        .iter()
        .any(|e| e.kind == TradeEventKind::Expired && e.order.client_order_id == "day"));
    assert_eq!(
        s.account().await.unwrap().buying_power,
        d("1000") - d("101") - d("50")
    );
}

#[tokio::test]
async fn cancel_and_cancel_all() {
    let s = sim("1000");
    let bars = minutes(&[100.0, 100.0]);
    s.on_bar("SPY", &bars[0]).unwrap();
    let a = s.submit(&market("a", Side::Buy, "1")).await.unwrap();
    let b = s.submit(&market("b", Side::Buy, "1")).await.unwrap();
    let c = s.submit(&market("c", Side::Buy, "1")).await.unwrap();
    s.cancel(&a.id).await.unwrap();
    s.cancel(&a.id)
        .await
        .expect("cancelling an ended order is not an error");
    assert!(matches!(
        s.cancel("no-such-order").await,
        Err(BrokerError::NotFound { .. })
    ));
    let mut ids = s.cancel_all().await.unwrap();
    ids.sort();
    let mut want = vec![b.id.clone(), c.id.clone()];
    want.sort();
    assert_eq!(ids, want);
    s.on_bar("SPY", &bars[1]).unwrap();
    assert!(
        s.ledger().executions.is_empty(),
        "cancelled orders never fill"
    );
    let closed = s
        .orders(&OrderQuery {
            status: OrderFilter::Closed,
            ..OrderQuery::open()
        })
        .await
        .unwrap();
    assert_eq!(closed.len(), 3);
    assert!(closed.iter().all(|o| o.status == OrderStatus::Canceled));
    assert_eq!(s.account().await.unwrap().buying_power, d("1000"));
}

#[tokio::test]
async fn a_gap_up_shrinks_the_buy_or_rejects_it_as_configured() {
    // Sized at 100 for all the cash, the next bar opens at 125.
    for (policy, want) in [(Overspend::Shrink, Some(d("8"))), (Overspend::Reject, None)] {
        let mut cfg = SimConfig::new(d("1000"));
        cfg.overspend = policy;
        cfg.share_scale = 1.0;
        let s = SimBroker::new(cfg).unwrap();
        let t0 = ny(2011, 1, 3, 9, 30);
        s.on_bar("SPY", &bar(t0, 100.0, 100.0)).unwrap();
        s.submit(&market("g", Side::Buy, "10")).await.unwrap();
        s.on_bar("SPY", &bar(t0 + 60, 125.0, 125.0)).unwrap();
        let l = s.ledger();
        let o = s.order_by_client_id("g").await.unwrap().unwrap();
        match want {
            Some(q) => {
                // 1000 / 125 = 8 shares; the rest of the order is cancelled.
                assert_eq!(l.executions.len(), 1);
                assert_eq!(l.executions[0].execution.qty, q);
                assert_eq!(o.status, OrderStatus::Canceled);
                assert_eq!(o.filled_qty, q);
                assert_eq!(s.account().await.unwrap().cash, d("0"));
                let k: Vec<_> = l.events.iter().map(|e| e.kind.clone()).collect();
                assert_eq!(
                    k,
                    vec![
                        TradeEventKind::New,
                        TradeEventKind::PartialFill,
                        TradeEventKind::Canceled
                    ]
                );
            }
            None => {
                assert!(l.executions.is_empty());
                assert_eq!(o.status, OrderStatus::Rejected);
                assert_eq!(s.account().await.unwrap().cash, d("1000"));
            }
        }
    }
}

#[tokio::test]
async fn the_clock_and_calendar_follow_the_driven_time() {
    let mut cfg = SimConfig::new(d("1000"));
    cfg.start = ny(2011, 1, 1, 12, 0);
    let s = SimBroker::new(cfg).unwrap();
    // A Saturday: closed, next open Monday 09:30 (January 3, 2011).
    let c = s.clock().await.unwrap();
    assert!(!c.is_open);
    assert_eq!(c.next_open.timestamp(), ny(2011, 1, 3, 9, 30));
    assert_eq!(c.next_close.timestamp(), ny(2011, 1, 3, 16, 0));
    s.on_bar("SPY", &bar(ny(2011, 1, 3, 10, 0), 100.0, 100.0))
        .unwrap();
    let c = s.clock().await.unwrap();
    assert!(c.is_open);
    assert_eq!(
        c.now.timestamp(),
        ny(2011, 1, 3, 10, 1),
        "a bar ends a minute after it starts"
    );
    assert_eq!(c.next_close.timestamp(), ny(2011, 1, 3, 16, 0));
    assert_eq!(c.next_open.timestamp(), ny(2011, 1, 4, 9, 30));
    s.advance_to(ny(2011, 1, 3, 16, 0));
    assert!(!s.clock().await.unwrap().is_open);
    // Time never goes back.
    s.advance_to(0);
    assert_eq!(
        s.clock().await.unwrap().now.timestamp(),
        ny(2011, 1, 3, 16, 0)
    );
    // The NYSE calendar: 2011-01-17 (Martin Luther King Jr. Day) is closed; 2011-11-25 closes at 13:00.
    let cal = s
        .calendar(date(2011, 1, 14), date(2011, 1, 18))
        .await
        .unwrap();
    let days: Vec<_> = cal.iter().map(|c| c.date).collect();
    assert_eq!(days, vec![date(2011, 1, 14), date(2011, 1, 18)]);
    let cal = s
        .calendar(date(2011, 11, 25), date(2011, 11, 25))
        .await
        .unwrap();
    assert_eq!(cal[0].close.timestamp(), ny(2011, 11, 25, 13, 0));
}

#[tokio::test]
async fn executions_and_orders_are_listed_oldest_first_with_strictly_later_filters() {
    let s = sim("10000");
    let bars = minutes(&[100.0, 101.0, 102.0, 103.0]);
    s.on_bar("SPY", &bars[0]).unwrap();
    for i in 0..3 {
        s.submit(&market(&format!("o{i}"), Side::Buy, "1"))
            .await
            .unwrap();
        s.on_bar("SPY", &bars[i + 1]).unwrap();
    }
    let all = s.executions(None).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].time < w[1].time));
    let after = s.executions(Some(all[0].time)).await.unwrap();
    assert_eq!(after, all[1..].to_vec());
    let ids: std::collections::HashSet<_> = all.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), 3, "execution ids are unique");
    let orders = s
        .orders(&OrderQuery::all_after(DateTime::UNIX_EPOCH))
        .await
        .unwrap();
    let cids: Vec<_> = orders.iter().map(|o| o.client_order_id.as_str()).collect();
    assert_eq!(cids, vec!["o0", "o1", "o2"]);
    let later = s
        .orders(&OrderQuery::all_after(orders[0].created_at))
        .await
        .unwrap();
    assert_eq!(later.len(), 2);
    // The position's average entry price is the volume-weighted price of the buys.
    let p = &s.positions().await.unwrap()[0];
    assert_eq!(p.avg_entry_price, (d("100") + d("101") + d("102")) / d("3"));
}

/// The per-symbol reads (kept by index in the simulated broker) answer what filtering the full
/// lists would: executions and positions of one symbol, orders of some symbols after an instant.
#[tokio::test]
async fn per_symbol_reads_are_the_full_lists_filtered() {
    let s = sim("100000");
    let syms = ["SPY", "QQQ", "IWM"];
    let bars = minutes(&[100.0, 101.0, 102.0, 103.0, 104.0, 105.0]);
    for b in &bars[..1] {
        for sym in syms {
            s.on_bar(sym, b).unwrap();
        }
    }
    for (i, b) in bars[1..].iter().enumerate() {
        for (k, sym) in syms.iter().enumerate() {
            if (i + k) % 2 == 0 {
                let o = vectura_broker::OrderRequest {
                    symbol: sym.to_string(),
                    ..market(&format!("{sym}-{i}"), Side::Buy, "1")
                };
                s.submit(&o).await.unwrap();
            }
        }
        for sym in syms {
            s.on_bar(sym, b).unwrap();
        }
    }
    let all = s.executions(None).await.unwrap();
    assert!(all.len() >= 6, "{} executions", all.len());
    let all_orders = s
        .orders(&OrderQuery::all_after(DateTime::UNIX_EPOCH))
        .await
        .unwrap();
    for cut in [None, Some(all[0].time), Some(all[all.len() / 2].time)] {
        for sym in syms.iter().chain(&["DIA"]) {
            let want: Vec<_> = s
                .executions(cut)
                .await
                .unwrap()
                .into_iter()
                .filter(|x| x.symbol == *sym)
                .collect();
            assert_eq!(
                s.executions_of(sym, cut).await.unwrap(),
                want,
                "{sym} {cut:?}"
            );
            let lower = sym.to_ascii_lowercase();
            assert_eq!(s.executions_of(&lower, cut).await.unwrap(), want);
        }
        let after = cut.unwrap_or(DateTime::UNIX_EPOCH);
        for pick in [vec!["SPY"], vec!["IWM", "spy"], vec![]] {
            let q = OrderQuery {
                symbols: pick.iter().map(|p| p.to_string()).collect(),
                ..OrderQuery::all_after(after)
            };
            let want: Vec<_> = all_orders
                .iter()
                .filter(|o| o.created_at > after)
                .filter(|o| {
                    pick.is_empty() || pick.iter().any(|p| p.eq_ignore_ascii_case(&o.symbol))
                })
                .cloned()
                .collect();
            assert_eq!(s.orders(&q).await.unwrap(), want, "{pick:?} after {after}");
        }
    }
    for sym in syms.iter().chain(&["DIA"]) {
        let want: Vec<_> = s
            .positions()
            .await
            .unwrap()
            .into_iter()
            .filter(|p| p.symbol == *sym)
            .collect();
        assert_eq!(s.positions_of(sym).await.unwrap(), want, "{sym}");
    }
}

#[tokio::test]
async fn bad_bars_are_errors_not_panics() {
    let s = sim("1000");
    let t0 = ny(2011, 1, 3, 9, 30);
    s.on_bar("SPY", &bar(t0, 100.0, 100.0)).unwrap();
    assert!(matches!(
        s.on_bar("SPY", &bar(t0, 100.0, 100.0)),
        Err(SimError::OutOfOrder { .. })
    ));
    assert!(matches!(
        s.on_bar("SPY", &bar(t0 + 60, f64::NAN, 100.0)),
        Err(SimError::BadBar { .. })
    ));
    assert!(matches!(
        s.on_bar("SPY", &bar(t0 + 60, 1e12, 1e12)),
        Err(SimError::OutOfRange { .. })
    ));
    assert!(matches!(
        s.on_bar("", &bar(t0 + 60, 100.0, 100.0)),
        Err(SimError::Symbol { .. })
    ));
    assert!(matches!(
        s.on_bar("SPY", &Bar::flat(i64::MAX, 1.0)),
        Err(SimError::OutOfRange { .. })
    ));
    let mut cfg = SimConfig::new(d("-1"));
    assert!(SimBroker::new(cfg.clone()).is_err());
    cfg.cash = d("1");
    cfg.slippage_bps = f64::NAN;
    assert!(SimBroker::new(cfg).is_err());
    // A symbol's later bar still works after the refusals.
    s.on_bar("SPY", &bar(t0 + 60, 100.0, 100.0)).unwrap();
}

#[tokio::test]
async fn the_bar_stream_and_rest_bars_serve_what_was_handed_over() {
    let s = sim("1000");
    let mut spy = s.subscribe_bars(&["SPY".into()]).await.unwrap();
    let bars = minutes(&[100.0, 101.0]);
    s.on_bar("SPY", &bars[0]).unwrap();
    s.on_bar("QQQ", &bars[0]).unwrap();
    s.on_bar("SPY", &bars[1]).unwrap();
    let mut got = vec![];
    while let Some(m) = spy.try_next() {
        got.push(m);
    }
    use vectura_broker::BarEvent;
    assert_eq!(
        got,
        vec![
            BarEvent::Connected { reconnect: false },
            BarEvent::Bar {
                symbol: "SPY".into(),
                bar: bars[0]
            },
            BarEvent::Bar {
                symbol: "SPY".into(),
                bar: bars[1]
            },
        ]
    );
    let from = DateTime::from_timestamp(bars[1].ts, 0).unwrap();
    let to = DateTime::from_timestamp(bars[1].ts + 60, 0).unwrap();
    assert_eq!(s.bars("SPY", from, to).await.unwrap(), vec![bars[1]]);
    assert_eq!(s.bars("QQQ", from, to).await.unwrap(), vec![]);
}
