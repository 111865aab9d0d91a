//! Done-when: a submission interrupted at every point (before the request, after the request before
//! the reply, after the reply) and retried leaves exactly one order at the emulator, counted in its
//! `--orders-log` file.

use vectura_broker::{Broker, BrokerError, OrderStatus, Side};
use vectura_emulator::{FaultAction, LostReply, RouteFault};

use crate::common::{client_for, created_in_log, log_lines, market, start, Env};

/// Where the submission is interrupted, and how the emulator does it.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// The request reaches the emulator, which refuses it before doing anything (no order).
    BeforeWith(u16),
    /// The order is created, then the reply is lost this way.
    AfterRequest(LostReply),
    /// The reply arrives, then the caller dies before recording it.
    AfterReply,
}

fn apply(env: &Env, cut: Cut) {
    match cut {
        Cut::BeforeWith(status) => env.handle.update_trading_faults(|f| {
            f.routes.push(
                RouteFault::on("/v2/orders", FaultAction::Status(status))
                    .method("POST")
                    .times(1),
            );
        }),
        Cut::AfterRequest(how) => env.handle.update_trading_faults(|f| {
            f.lost_reply = Some(how);
            f.lost_replies = Some(1);
        }),
        Cut::AfterReply => {}
    }
}

fn posts(env: &Env, coid: &str) -> usize {
    log_lines(&env.log, coid)
        .iter()
        .filter(|v| v["method"] == "POST")
        .count()
}

#[tokio::test]
async fn an_interrupted_submission_retried_leaves_exactly_one_order() {
    let cuts = [
        Cut::BeforeWith(503),
        Cut::BeforeWith(500),
        Cut::BeforeWith(429),
        Cut::AfterRequest(LostReply::Status(500)),
        Cut::AfterRequest(LostReply::Status(503)),
        Cut::AfterRequest(LostReply::Status(429)),
        Cut::AfterRequest(LostReply::Hang),
        Cut::AfterRequest(LostReply::Drop),
        Cut::AfterReply,
    ];
    for cut in cuts {
        let env = start().await;
        let coid = format!("run1-TEST-{cut:?}").replace([' ', '(', ')'], "");
        let req = market(&coid, Side::Buy, "3");
        apply(&env, cut);
        // The client's own handling: it retries (before) or looks the order up (after the request).
        let first = env
            .client
            .submit(&req)
            .await
            .unwrap_or_else(|e| panic!("{cut:?}: {e}"));
        assert_eq!(first.client_order_id, coid, "{cut:?}");
        // The caller retries anyway (a crash before it recorded the order, a restart): a new client.
        let again = client_for(&env.emu.base_url())
            .submit(&req)
            .await
            .unwrap_or_else(|e| panic!("{cut:?} (retry): {e}"));
        assert_eq!(
            again.id, first.id,
            "{cut:?}: the retry returns the same order"
        );
        assert_eq!(
            created_in_log(&env.log, &coid),
            1,
            "{cut:?}: {:#?}",
            log_lines(&env.log, &coid)
        );
        assert_eq!(env.handle.order_count(crate::common::KEY), 1, "{cut:?}");
        let expected_posts = match cut {
            // Refused before processing: the client resent once it knew there was no order.
            Cut::BeforeWith(_) => 3,
            // The order existed: found by its client id, never sent again by the client.
            Cut::AfterRequest(_) => 2,
            Cut::AfterReply => 2,
        };
        assert_eq!(
            posts(&env, &coid),
            expected_posts,
            "{cut:?}: {:#?}",
            log_lines(&env.log, &coid)
        );
        // Every POST after the first that created it was answered "duplicate": the uniqueness check.
        let outcomes: Vec<String> = log_lines(&env.log, &coid)
            .iter()
            .filter(|v| v["method"] == "POST")
            .map(|v| v["outcome"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            outcomes.last().map(String::as_str),
            Some("duplicate"),
            "{cut:?}: {outcomes:?}"
        );
    }
}

#[tokio::test]
async fn a_lost_reply_whose_look_up_also_fails_is_reported_unknown_and_a_later_retry_finds_the_order(
) {
    let env = start().await;
    let req = market("run1-TEST-7", Side::Buy, "1");
    env.handle.update_trading_faults(|f| {
        f.lost_reply = Some(LostReply::Hang);
        f.lost_replies = Some(1);
        f.routes.push(RouteFault::on(
            "/v2/orders:by_client_order_id",
            FaultAction::Status(503),
        ));
    });
    let err = env.client.submit(&req).await.unwrap_err();
    assert!(matches!(err, BrokerError::Unavailable { .. }), "{err}");
    assert!(
        !err.nothing_happened(),
        "an unknown outcome is not 'nothing happened'"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("run1-TEST-7") && msg.contains("look it up"),
        "{msg}"
    );
    // The client never sent it twice while it could not tell.
    assert_eq!(posts(&env, "run1-TEST-7"), 1);
    env.handle.clear_trading_faults();
    let o = env.client.submit(&req).await.unwrap();
    assert_eq!(o.client_order_id, "run1-TEST-7");
    assert_eq!(created_in_log(&env.log, "run1-TEST-7"), 1);
    assert_eq!(env.handle.order_count(crate::common::KEY), 1);
}

#[tokio::test]
async fn client_order_ids_stay_unique_after_a_cancel_and_a_resubmission_returns_the_cancelled_order(
) {
    let env = start().await;
    let req = market("run1-TEST-8", Side::Buy, "1");
    env.handle.update_trading_faults(|f| f.hold_new = true);
    let o = env.client.submit(&req).await.unwrap();
    env.client.cancel(&o.id).await.unwrap();
    let again = env.client.submit(&req).await.unwrap();
    assert_eq!(again.id, o.id);
    assert_eq!(
        again.status,
        OrderStatus::Canceled,
        "the existing (cancelled) order is returned, not a new one"
    );
    assert_eq!(created_in_log(&env.log, "run1-TEST-8"), 1);
}

#[tokio::test]
async fn a_submission_failing_every_time_is_retried_a_bounded_number_of_times_and_creates_nothing()
{
    let env = start().await;
    env.handle.update_trading_faults(|f| {
        f.routes
            .push(RouteFault::on("/v2/orders", FaultAction::Status(503)).method("POST"));
    });
    let err = env
        .client
        .submit(&market("run1-TEST-9", Side::Buy, "1"))
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::Unavailable { .. }), "{err}");
    assert_eq!(
        posts(&env, "run1-TEST-9"),
        4,
        "max_attempts submissions, each after a look-up said none"
    );
    assert_eq!(created_in_log(&env.log, "run1-TEST-9"), 0);
    assert_eq!(env.handle.order_count(crate::common::KEY), 0);
}
