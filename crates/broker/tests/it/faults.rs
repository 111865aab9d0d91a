//! Every fault switch of the emulator's trading API, in turn, and what the client does about it:
//! retried (and succeeded), or halted with a reason. Stream faults are in `streams.rs`; the lost
//! reply of a submission in `submit.rs`.

use std::time::Duration;

use vectura_broker::{Broker, BrokerError, OrderQuery, Side};
use vectura_emulator::{FaultAction, Rejection, RouteFault};

use crate::common::{market, start, KEY};

fn account_requests(env: &crate::common::Env) -> Vec<u16> {
    env.handle
        .requests()
        .iter()
        .filter(|r| r.path == "/v2/account")
        .map(|r| r.status)
        .collect()
}

#[tokio::test]
async fn a_5xx_is_retried_until_it_succeeds() {
    for status in [500, 502, 503, 504] {
        let env = start().await;
        env.handle.update_trading_faults(|f| {
            f.routes
                .push(RouteFault::on("/v2/account", FaultAction::Status(status)).times(2));
        });
        let a = env
            .client
            .account()
            .await
            .unwrap_or_else(|e| panic!("{status}: {e}"));
        assert_eq!(a.cash, "100000".parse().unwrap());
        assert_eq!(
            account_requests(&env),
            vec![status, status, 200],
            "retried twice, then served"
        );
    }
}

#[tokio::test]
async fn a_5xx_that_persists_halts_the_call_with_a_reason_after_bounded_retries() {
    let env = start().await;
    env.handle.update_trading_faults(|f| {
        f.routes
            .push(RouteFault::on("/v2/positions", FaultAction::Status(503)))
    });
    let e = env.client.positions().await.unwrap_err();
    assert!(matches!(e, BrokerError::Unavailable { .. }), "{e}");
    assert!(e.to_string().contains("503"), "{e}");
    let n = env
        .handle
        .requests()
        .iter()
        .filter(|r| r.path == "/v2/positions")
        .count();
    assert_eq!(n, 4, "max_attempts tries, no more");
}

#[tokio::test]
async fn a_429_waits_for_the_rate_limit_reset_and_then_succeeds() {
    let env = start().await;
    // Alpaca's 200 a minute, scaled down: 3 requests per 1.5 s window.
    env.handle.update_trading_faults(|f| {
        f.rate_limit = Some(3);
        f.rate_window = Some(Duration::from_millis(1500));
    });
    for _ in 0..6 {
        env.client.clock().await.unwrap();
    }
    let statuses: Vec<u16> = env
        .handle
        .requests()
        .iter()
        .filter(|r| r.path == "/v2/clock")
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        6,
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "the limit was hit: {statuses:?}");
    // Every 429 told the client when to come back, and it did not hammer: one retry per 429 at most.
    let n429 = statuses.iter().filter(|s| **s == 429).count();
    assert!(n429 <= 3, "{statuses:?}");
}

#[tokio::test]
async fn an_injected_429_is_retried_and_a_persistent_one_ends_rate_limited() {
    let env = start().await;
    env.handle.update_trading_faults(|f| {
        f.routes
            .push(RouteFault::on("/v2/account", FaultAction::Status(429)).times(1))
    });
    env.client.account().await.unwrap();
    env.handle.update_trading_faults(|f| {
        f.routes = vec![RouteFault::on("/v2/account", FaultAction::Status(429))]
    });
    let e = env.client.account().await.unwrap_err();
    assert!(matches!(e, BrokerError::RateLimited { .. }), "{e}");
    assert!(e.nothing_happened());
}

#[tokio::test]
async fn a_slow_reply_within_the_timeout_is_waited_for_and_one_beyond_it_is_retried() {
    let env = start().await;
    // A roomy timeout, so that a loaded machine cannot turn the short delay into a timeout.
    let mut cfg = crate::common::fast(
        vectura_broker::alpaca::AlpacaConfig::new(KEY, crate::common::SECRET)
            .with_trading_url(&env.emu.base_url()),
    );
    cfg.request_timeout = Duration::from_secs(3);
    let client = vectura_broker::alpaca::AlpacaClient::new(cfg).unwrap();
    env.handle.update_trading_faults(|f| {
        f.routes.push(
            RouteFault::on("/v2/clock", FaultAction::Delay(Duration::from_millis(100))).times(1),
        )
    });
    client.clock().await.unwrap();
    // Beyond the 3 s timeout: the first try is abandoned, the second is served.
    env.handle.update_trading_faults(|f| {
        f.routes
            .push(RouteFault::on("/v2/clock", FaultAction::Delay(Duration::from_secs(8))).times(1))
    });
    client.clock().await.unwrap();
    let statuses: Vec<u16> = env
        .handle
        .requests()
        .iter()
        .filter(|r| r.path == "/v2/clock")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses.len(), 3, "{statuses:?}");
}

#[tokio::test]
async fn a_route_that_never_answers_or_drops_the_connection_is_retried_then_reported_unavailable() {
    for action in [FaultAction::Hang, FaultAction::Drop] {
        let env = start().await;
        env.handle.update_trading_faults(|f| {
            f.routes
                .push(RouteFault::on("/v2/account", action).times(1))
        });
        env.client
            .account()
            .await
            .unwrap_or_else(|e| panic!("{action:?}: {e}"));
        env.handle
            .update_trading_faults(|f| f.routes = vec![RouteFault::on("/v2/account", action)]);
        let e = env.client.account().await.unwrap_err();
        assert!(
            matches!(e, BrokerError::Unavailable { .. }),
            "{action:?}: {e}"
        );
        assert!(!e.nothing_happened());
    }
}

#[tokio::test]
async fn rejections_are_refusals_with_alpacas_codes_and_nothing_happened() {
    let env = start().await;
    env.handle.update_trading_faults(|f| {
        f.reject_next.push_back(Rejection::buying_power());
        f.reject_next.push_back(Rejection::wash_trade());
        f.reject_next.push_back(Rejection {
            status: 422,
            code: 40010001,
            message: "qty must be > 0".into(),
        });
    });
    let mut got = Vec::new();
    for i in 0..3 {
        match env
            .client
            .submit(&market(&format!("r{i}"), Side::Buy, "1"))
            .await
        {
            Err(e @ BrokerError::Rejected { .. }) => {
                assert!(e.nothing_happened());
                let BrokerError::Rejected {
                    status,
                    code,
                    message,
                } = e
                else {
                    unreachable!()
                };
                got.push((status, code, message));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        got,
        vec![
            (403, Some(40310000), "insufficient buying power".to_string()),
            (
                422,
                Some(42210000),
                "potential wash trade detected. use complex orders".to_string()
            ),
            (422, Some(40010001), "qty must be > 0".to_string()),
        ]
    );
    assert_eq!(env.handle.order_count(KEY), 0);
    // A real wash trade: an open sell limit, then a market buy against it.
    let buy = env
        .client
        .submit(&market("w1", Side::Buy, "2"))
        .await
        .unwrap();
    env.handle.step();
    let mut sell = market("w2", Side::Sell, "1");
    sell.order_type = vectura_broker::OrderType::Limit {
        limit_price: "500".parse().unwrap(),
    };
    env.client.submit(&sell).await.unwrap();
    let e = env
        .client
        .submit(&market("w3", Side::Buy, "1"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            BrokerError::Rejected {
                status: 422,
                code: Some(42210000),
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        env.client.orders(&OrderQuery::open()).await.unwrap().len(),
        1
    );
    let _ = buy;
}

#[tokio::test]
async fn wrong_keys_are_unauthorized_and_say_which_variables_to_check() {
    let env = start().await;
    let bad = vectura_broker::alpaca::AlpacaClient::new(crate::common::fast(
        vectura_broker::alpaca::AlpacaConfig::new(KEY, "wrong-secret")
            .with_trading_url(&env.emu.base_url()),
    ))
    .unwrap();
    let e = bad.account().await.unwrap_err();
    assert!(matches!(e, BrokerError::Unauthorized { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("APCA_API_KEY_ID") && msg.contains(&env.emu.base_url()),
        "{msg}"
    );
    assert!(!msg.contains("wrong-secret"));
    let n = env
        .handle
        .requests()
        .iter()
        .filter(|r| r.path == "/v2/account")
        .count();
    assert_eq!(n, 1, "a 401 is not retried");
}
