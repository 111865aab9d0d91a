//! Every REST method of the Alpaca client against the emulator, with results checked against what the
//! emulator's bars and books independently imply.

use chrono::NaiveDate;
use vectura_broker::{
    Broker, BrokerError, Decimal, MarketData, OrderFilter, OrderQuery, OrderStatus, OrderType, Side,
};

use crate::common::{market, open_at, open_day1, start, KEY, SYM};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[tokio::test]
async fn account_clock_calendar_and_assets() {
    let env = start().await;
    let a = env.client.account().await.unwrap();
    assert_eq!(a.cash, d("100000"));
    assert_eq!(a.equity, d("100000"));
    assert_eq!(a.buying_power, d("100000"));
    assert_eq!(a.status, "ACTIVE");
    let c = env.client.clock().await.unwrap();
    assert_eq!(c.now, open_day1() + chrono::Duration::minutes(5));
    assert!(c.is_open);
    assert_eq!(c.next_close.to_rfc3339(), "2024-07-01T20:00:00+00:00");
    assert_eq!(c.next_open.to_rfc3339(), "2024-07-02T13:30:00+00:00");
    // 2024-07-03 closes early, 07-04 is a holiday.
    let cal = env
        .client
        .calendar(
            NaiveDate::from_ymd_opt(2024, 7, 3).unwrap(),
            NaiveDate::from_ymd_opt(2024, 7, 5).unwrap(),
        )
        .await
        .unwrap();
    let days: Vec<String> = cal
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c.date,
                c.open.format("%H:%M"),
                c.close.format("%H:%M")
            )
        })
        .collect();
    assert_eq!(
        days,
        vec!["2024-07-03 13:30 17:00", "2024-07-05 13:30 20:00"]
    );
    let asset = env.client.asset("test").await.unwrap();
    assert_eq!(asset.symbol, SYM);
    assert!(asset.tradable && asset.fractionable);
}

#[tokio::test]
async fn a_market_order_fills_at_the_next_bars_open_and_the_books_follow() {
    let env = start().await;
    // 09:35 exactly: the 09:34 bar just closed; the order gets the 09:35 bar's open.
    let o = env
        .client
        .submit(&market("run1-TEST-1", Side::Buy, "2.5"))
        .await
        .unwrap();
    assert_eq!(o.status, OrderStatus::New);
    assert_eq!(o.qty, Some(d("2.5")));
    env.handle.step();
    let filled = env
        .client
        .order_by_client_id("run1-TEST-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(filled.status, OrderStatus::Filled);
    assert_eq!(filled.filled_qty, d("2.5"));
    assert_eq!(filled.filled_avg_price, Some(open_at(5)));
    let cost = d("2.5") * open_at(5);
    let a = env.client.account().await.unwrap();
    assert_eq!(a.cash, d("100000") - cost);
    // Marked at the close of the last closed bar (09:35's close = 09:36's open).
    assert_eq!(a.equity, d("100000") - cost + d("2.5") * open_at(6));
    let p = env.client.positions().await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].symbol.as_str(), p[0].qty, p[0].avg_entry_price),
        (SYM, d("2.5"), open_at(5))
    );
    // A second buy a bar later: the average entry price is the cost over the shares.
    env.client
        .submit(&market("run1-TEST-2", Side::Buy, "1.5"))
        .await
        .unwrap();
    env.handle.step();
    let p = env.client.positions().await.unwrap();
    let avg = (d("2.5") * open_at(5) + d("1.5") * open_at(6)) / d("4");
    assert_eq!(p[0].qty, d("4"));
    assert_eq!(p[0].avg_entry_price, avg.round_dp(9));
    // Selling everything leaves cash = start + the round trips' profit.
    env.client
        .submit(&market("run1-TEST-3", Side::Sell, "4"))
        .await
        .unwrap();
    env.handle.step();
    assert!(env.client.positions().await.unwrap().is_empty());
    let a = env.client.account().await.unwrap();
    let pnl = d("4") * open_at(7) - d("2.5") * open_at(5) - d("1.5") * open_at(6);
    assert_eq!(a.cash, d("100000") + pnl);
    let ex = env.client.executions(None).await.unwrap();
    assert_eq!(ex.len(), 3);
    assert_eq!(
        ex.iter().map(|e| e.price).collect::<Vec<_>>(),
        vec![open_at(5), open_at(6), open_at(7)]
    );
    assert!(ex.windows(2).all(|w| w[0].time < w[1].time), "oldest first");
    assert_eq!(ex[0].order_id, filled.id);
}

#[tokio::test]
async fn limit_orders_cancel_cancel_all_and_order_lists() {
    let env = start().await;
    let mut lim = market("run1-TEST-L1", Side::Buy, "1");
    lim.order_type = OrderType::Limit {
        limit_price: d("50"),
    };
    let o1 = env.client.submit(&lim).await.unwrap();
    lim.client_order_id = "run1-TEST-L2".into();
    let o2 = env.client.submit(&lim).await.unwrap();
    lim.client_order_id = "run1-TEST-L3".into();
    let o3 = env.client.submit(&lim).await.unwrap();
    env.handle.step();
    let open = env.client.orders(&OrderQuery::open()).await.unwrap();
    assert_eq!(
        open.iter().map(|o| o.id.clone()).collect::<Vec<_>>(),
        vec![o1.id.clone(), o2.id.clone(), o3.id.clone()]
    );
    assert_eq!(
        open[0].order_type,
        OrderType::Limit {
            limit_price: d("50")
        }
    );
    env.client.cancel(&o1.id).await.unwrap();
    // Cancelling an order that already ended is not an error; an unknown id is.
    env.client.cancel(&o1.id).await.unwrap();
    let e = env.client.cancel("no-such-order").await.unwrap_err();
    assert!(matches!(e, BrokerError::NotFound { .. }), "{e}");
    let mut ids = env.client.cancel_all().await.unwrap();
    ids.sort();
    let mut want = vec![o2.id.clone(), o3.id.clone()];
    want.sort();
    assert_eq!(ids, want);
    assert!(env
        .client
        .orders(&OrderQuery::open())
        .await
        .unwrap()
        .is_empty());
    let closed = env
        .client
        .orders(&OrderQuery {
            status: OrderFilter::Closed,
            after: None,
            until: None,
            symbols: vec![SYM.into()],
        })
        .await
        .unwrap();
    assert_eq!(closed.len(), 3);
    assert!(closed
        .iter()
        .all(|o| o.status == OrderStatus::Canceled && o.canceled_at.is_some()));
    // after: only orders submitted after o2.
    let later = env
        .client
        .orders(&OrderQuery::all_after(o2.created_at))
        .await
        .unwrap();
    assert_eq!(
        later.iter().map(|o| o.id.clone()).collect::<Vec<_>>(),
        vec![o3.id]
    );
    assert!(env
        .client
        .order_by_client_id("never-sent")
        .await
        .unwrap()
        .is_none());
    assert!(env
        .client
        .order_by_id("never-sent")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn order_lists_and_fill_activities_page_through_everything() {
    let env = start().await;
    // 510 orders (two pages of 500) and 105 fills (two pages of 100).
    env.handle.update_trading_faults(|f| f.hold_new = true);
    for i in 0..405 {
        env.client
            .submit(&market(&format!("held-{i}"), Side::Buy, "0.001"))
            .await
            .unwrap();
    }
    env.handle.clear_trading_faults();
    for i in 0..105 {
        env.client
            .submit(&market(&format!("fill-{i}"), Side::Buy, "0.01"))
            .await
            .unwrap();
    }
    env.handle.step();
    let all = env
        .client
        .orders(&OrderQuery {
            status: OrderFilter::All,
            after: None,
            until: None,
            symbols: vec![],
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 510);
    let mut ids: Vec<&str> = all.iter().map(|o| o.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 510, "no order twice");
    assert!(all.windows(2).all(|w| w[0].created_at <= w[1].created_at));
    let ex = env.client.executions(None).await.unwrap();
    assert_eq!(ex.len(), 105);
    let total: Decimal = ex.iter().map(|e| e.qty).sum();
    assert_eq!(total, d("1.05"));
    let a = env.client.account().await.unwrap();
    // 405 held orders reserve 0.001 × the price each.
    assert!(a.buying_power < a.cash);
}

#[tokio::test]
async fn refusals_keep_alpacas_status_code_and_message() {
    let env = start().await;
    let e = env
        .client
        .submit(&market("big", Side::Buy, "100000"))
        .await
        .unwrap_err();
    match &e {
        BrokerError::Rejected {
            status,
            code,
            message,
        } => {
            assert_eq!(
                (*status, *code, message.as_str()),
                (403, Some(40310000), "insufficient buying power")
            )
        }
        other => panic!("{other}"),
    }
    assert!(e.nothing_happened());
    let e = env
        .client
        .submit(&market("short", Side::Sell, "1"))
        .await
        .unwrap_err();
    match &e {
        BrokerError::Rejected {
            status: 403,
            code: Some(40310000),
            message,
        } => {
            assert_eq!(
                message,
                "insufficient qty available for order (requested: 1, available: 0)"
            )
        }
        other => panic!("{other}"),
    }
    let mut bad = market("x", Side::Buy, "1");
    // The emulator serves synthetic bars for any valid symbol: an invalid one is refused.
    bad.symbol = "NO PE".into();
    let e = env.client.submit(&bad).await.unwrap_err();
    assert!(
        matches!(e, BrokerError::Rejected { status: 422, .. }),
        "{e}"
    );
    let e = env.client.asset("NO PE").await.unwrap_err();
    assert!(matches!(e, BrokerError::NotFound { .. }), "{e}");
    // Checked before sending: a qty with 10 decimals, an empty client order id.
    let e = env
        .client
        .submit(&market("y", Side::Buy, "0.0000000001"))
        .await
        .unwrap_err();
    assert!(matches!(e, BrokerError::Config(_)), "{e}");
    let e = env
        .client
        .submit(&market("", Side::Buy, "1"))
        .await
        .unwrap_err();
    assert!(matches!(e, BrokerError::Config(_)), "{e}");
    assert_eq!(env.handle.order_count(KEY), 0);
}

#[tokio::test]
async fn rest_bars_come_from_the_market_data_api() {
    let env = start().await;
    let from = open_day1();
    let bars = env
        .client
        .bars(SYM, from, from + chrono::Duration::minutes(3))
        .await
        .unwrap();
    assert_eq!(
        bars.iter().map(|b| b.ts).collect::<Vec<_>>(),
        vec![
            from.timestamp(),
            from.timestamp() + 60,
            from.timestamp() + 120
        ]
    );
    assert_eq!(bars[1].open, 100.01);
}

/// A bar the market-data API sends that fails the shared bar checks is bad data, not an outage:
/// its own error, naming the bar and the field, with nothing to reconcile (no order was touched).
#[tokio::test]
async fn a_bad_bar_from_the_market_data_api_is_bad_data_not_an_outage() {
    let env = start().await;
    let from = open_day1();
    let mut bars = crate::common::bars();
    bars[1].l = -1.0;
    env.handle.set_bars(SYM, bars);
    let e = env
        .client
        .bars(SYM, from, from + chrono::Duration::minutes(3))
        .await
        .unwrap_err();
    assert!(matches!(e, BrokerError::BadData { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with("the market-data API sent a bad bar, which is not used: "),
        "{msg}"
    );
    assert!(
        msg.contains("bar 2") && msg.contains("\"l\""),
        "names the bar and the field: {msg}"
    );
    assert!(msg.contains("price `-1`"), "{msg}");
    assert!(
        msg.contains("fetch the day again later"),
        "says what to do: {msg}"
    );
    assert!(
        e.nothing_happened(),
        "a read that returned bad data changed nothing"
    );
    assert!(
        std::error::Error::source(&e).is_some(),
        "keeps the source chain"
    );
}
