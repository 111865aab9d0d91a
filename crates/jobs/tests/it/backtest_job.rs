//! The backtest job: the bundled bars run inside a tokio runtime's blocking thread, with its
//! progress stages in order; a bad field is refused naming it; a cancelled token is an outcome.

use crate::common::{context, runtime};
use vectura_jobs::{BacktestRequest, JobError, JobOutcome, Stage};

#[test]
fn a_backtest_runs_on_a_blocking_thread_of_a_server_runtime_with_its_stages() {
    let rt = runtime();
    let (ctx, events) = context(&rt);
    let req = BacktestRequest {
        record_series: true,
        ..BacktestRequest::default()
    };
    // As a server runs it: spawn_blocking from inside the runtime (a job that built a runtime or
    // called block_on on an async thread would panic here).
    let done = rt
        .block_on(async move {
            tokio::task::spawn_blocking(move || vectura_jobs::backtest::run(&req, &ctx)).await
        })
        .unwrap()
        .unwrap();
    let JobOutcome::Done(d) = done else {
        panic!("not cancelled, so done");
    };
    assert_eq!(d.result.symbol, "SPY");
    assert!(
        d.result.bars_processed > 10_000,
        "{}",
        d.result.bars_processed
    );
    assert_eq!(d.doc["data"]["session"], "regular");
    assert_eq!(d.doc["params"]["capital_pct"], 60.0);
    assert!(d.doc["series"].is_object() || d.doc["series"].is_array());
    let stages: Vec<Stage> = events.0.lock().unwrap().iter().map(|p| p.stage).collect();
    assert_eq!(stages.first(), Some(&Stage::InitializeBacktest));
    assert_eq!(stages.last(), Some(&Stage::Completed));
    let work: Vec<_> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.stage == Stage::WorkingOnChunk)
        .map(|p| (p.current, p.total))
        .collect();
    let n = d.result.bars_processed;
    // 0, then at the first bar of days the replay loop reaches (a quiet stretch the kernel
    // skips through may span days), then all.
    assert_eq!(work.first(), Some(&(0, n)));
    assert_eq!(work.last(), Some(&(n, n)));
    assert!(work.len() > 5, "{} events", work.len());
    assert!(work.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 == n));
}

#[test]
fn a_bad_field_is_refused_naming_it() {
    let rt = runtime();
    let (ctx, _) = context(&rt);
    let req = BacktestRequest {
        capital_pct: 0.0,
        ..BacktestRequest::default()
    };
    let err = vectura_jobs::backtest::run(&req, &ctx).unwrap_err();
    assert_eq!(err.field(), Some("capital_pct"), "{err}");
    assert!(err.to_string().contains("--capital-pct"), "{err}");
    let req = BacktestRequest {
        tz: Some("Mars/Olympus".into()),
        data: vec!["x.csv".into()],
        ..BacktestRequest::default()
    };
    let err = vectura_jobs::backtest::run(&req, &ctx).unwrap_err();
    assert!(
        matches!(err, JobError::Invalid { field: "tz", .. }),
        "{err}"
    );
}

#[test]
fn a_symbol_the_open_store_lacks_is_named_with_the_fix() {
    let rt = runtime();
    let (ctx, _) = context(&rt);
    let req = BacktestRequest {
        symbol: Some("AAPL".into()),
        ..BacktestRequest::default()
    };
    let err = vectura_jobs::backtest::run(&req, &ctx).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("--symbol AAPL") && msg.contains("vectura data fetch"),
        "{msg}"
    );
}

#[test]
fn a_cancelled_backtest_is_an_outcome_with_its_reason() {
    let rt = runtime();
    let (ctx, events) = context(&rt);
    ctx.cancel.cancel("stopped by the user");
    let out = vectura_jobs::backtest::run(&BacktestRequest::default(), &ctx).unwrap();
    // As a server's API sends it.
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["cancelled"]["reason"], "stopped by the user");
    match out {
        JobOutcome::Cancelled(c) => {
            assert_eq!(c.reason, "stopped by the user");
            assert_eq!(c.signal, None);
        }
        JobOutcome::Done(_) => panic!("a cancelled token ends the job cancelled"),
    }
    assert!(events
        .0
        .lock()
        .unwrap()
        .iter()
        .all(|p| p.stage != Stage::Completed));
}

#[test]
fn a_cancel_while_the_engine_runs_stops_it_at_the_next_day() {
    use std::sync::{Arc, Mutex};
    let rt = runtime();
    let (mut ctx, _) = context(&rt);
    // The sink cancels at the first progress from inside the run, as a user's click would.
    let token = ctx.cancel.clone();
    let seen: Arc<Mutex<Vec<(Stage, u64, u64)>>> = Arc::default();
    let log = seen.clone();
    ctx.progress = Arc::new(move |p: &vectura_jobs::Progress| {
        log.lock().unwrap().push((p.stage, p.current, p.total));
        if p.stage == Stage::WorkingOnChunk && p.current > 0 && p.current < p.total {
            token.cancel("cancelled mid-run");
        }
    });
    let req = BacktestRequest {
        record_series: true,
        ..BacktestRequest::default()
    };
    let out = rt
        .block_on(async move {
            tokio::task::spawn_blocking(move || vectura_jobs::backtest::run(&req, &ctx)).await
        })
        .unwrap()
        .unwrap();
    match out {
        JobOutcome::Cancelled(c) => assert_eq!(c.reason, "cancelled mid-run"),
        JobOutcome::Done(_) => panic!("the engine ran on past its checkpoint"),
    }
    let seen = seen.lock().unwrap();
    let mid: Vec<_> = seen
        .iter()
        .filter(|(s, c, t)| *s == Stage::WorkingOnChunk && *c > 0 && c < t)
        .collect();
    // Exactly one event from inside the run: the next day's checkpoint stopped it.
    assert_eq!(mid.len(), 1, "{seen:?}");
    assert!(seen
        .iter()
        .all(|(s, _, _)| !matches!(s, Stage::CalculatingMetrics | Stage::Completed)));
}

#[test]
fn an_uninterrupted_run_and_a_checkpointed_one_agree_bit_for_bit() {
    // The daily checkpoint changes nothing of the run: the same result document, byte for byte.
    let rt = runtime();
    let req = BacktestRequest {
        record_series: true,
        ..BacktestRequest::default()
    };
    let (ctx, _) = context(&rt);
    let prep = vectura_jobs::backtest::prepare(&req, &ctx).unwrap();
    let params = prep.params;
    let mode = vectura_strategy::grid::GridMode {
        compat_v1: prep.cfg.compat_v1,
        share_scale: prep.cfg.share_scale,
        record_lines: true,
    };
    let plain = vectura_backtest::run(
        &prep.bars,
        &mut vectura_strategy::grid::Grid::new(params, mode),
        &prep.cfg,
    )
    .unwrap();
    struct Count(usize);
    impl vectura_backtest::Checkpoint for Count {
        fn day(&mut self, _: usize, _: usize) -> bool {
            self.0 += 1;
            true
        }
    }
    let mut days = Count(0);
    let checked = vectura_backtest::run_until(
        &prep.bars,
        &mut vectura_strategy::grid::Grid::new(params, mode),
        &prep.cfg,
        &mut days,
    )
    .unwrap()
    .expect("never stopped");
    assert!(days.0 >= 5, "asked {} times over two months", days.0);
    assert_eq!(
        serde_json::to_string(&plain).unwrap(),
        serde_json::to_string(&checked).unwrap()
    );
}
