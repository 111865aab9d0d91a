//! The sweep job: rows streamed to a file and the database with progress; a cancel mid-sweep
//! leaves no temporary file and marks the recorded run failed with the cancel's reason.

use crate::common::{context, names, runtime, scratch};
use std::sync::Arc;
use vectura_jobs::sweep::SweepDone;
use vectura_jobs::{JobOutcome, Progress, Stage, SweepRequest};

fn request(params: &[&str]) -> SweepRequest {
    SweepRequest {
        params: params.iter().map(|s| s.to_string()).collect(),
        ..SweepRequest::default()
    }
}

#[test]
fn a_sweep_writes_its_rows_records_them_and_reports_progress() {
    let rt = runtime();
    let (ctx, events) = context(&rt);
    let d = scratch("sweep-done");
    let out = d.join("results.csv");
    let mut req = request(&["buy_below_pct=1:3:1", "sell_above_pct=5,10"]);
    req.output = Some(out.clone());
    let prep = vectura_jobs::sweep::prepare(&req, &ctx)
        .unwrap()
        .done()
        .unwrap();
    assert_eq!(prep.plan.len(), 6);
    let done = vectura_jobs::sweep::run(prep, &req, None, &ctx).unwrap();
    let JobOutcome::Done(SweepDone::Ran(r)) = done else {
        panic!("a plain sweep runs here to its end");
    };
    assert_eq!((r.from, r.to), (0, 6));
    assert_eq!(r.top.len(), 6);
    let rec = r.recorded.expect("recorded in the open store");
    assert_eq!(rec.at, "store test");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 7, "header and 6 rows");
    let runs = rt.block_on(async {
        let vectura_jobs::StoreAccess::Open { store, .. } = &ctx.store else {
            unreachable!()
        };
        store.sweep_runs().await.unwrap()
    });
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, rec.run_id);
    assert_eq!(runs[0].status, vectura_store::SweepStatus::Done);
    assert_eq!(runs[0].rows_stored, 6);
    let ev = events.0.lock().unwrap();
    assert_eq!(ev.last().map(|p| p.stage), Some(Stage::Completed));
    assert!(ev
        .iter()
        .any(|p| p.stage == Stage::WorkingOnChunk && p.total == 6));
}

#[test]
fn a_cancel_mid_sweep_is_an_outcome_leaving_no_file_and_a_failed_run() {
    let rt = runtime();
    let (mut ctx, _) = context(&rt);
    let d = scratch("sweep-cancel");
    let out = d.join("results.csv");
    // 40 × 20 = 800 sets: the cancel comes after the first 256 rows' progress event.
    let mut req = request(&["buy_below_pct=0.25:10:0.25", "sell_above_pct=1:20:1"]);
    req.output = Some(out.clone());
    let token = ctx.cancel.clone();
    ctx.progress = Arc::new(move |p: &Progress| {
        if p.stage == Stage::WorkingOnChunk && p.current >= 256 {
            token.cancel("cancelled from the dashboard");
        }
    });
    let prep = vectura_jobs::sweep::prepare(&req, &ctx)
        .unwrap()
        .done()
        .unwrap();
    let outcome = vectura_jobs::sweep::run(prep, &req, None, &ctx).unwrap();
    let JobOutcome::Cancelled(c) = outcome else {
        panic!("the cancel ends the sweep cancelled");
    };
    assert_eq!(c.reason, "cancelled from the dashboard");
    assert!(!out.exists(), "no results file");
    assert_eq!(names(&d), Vec::<String>::new(), "no temporary file");
    let runs = rt.block_on(async {
        let vectura_jobs::StoreAccess::Open { store, .. } = &ctx.store else {
            unreachable!()
        };
        store.sweep_runs().await.unwrap()
    });
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, vectura_store::SweepStatus::Failed);
    assert_eq!(
        runs[0].error.as_deref(),
        Some("cancelled from the dashboard")
    );
    assert!(runs[0].rows_stored < 800, "stopped before the end");
}

#[test]
fn a_bad_sweep_request_names_its_field() {
    let rt = runtime();
    let (ctx, _) = context(&rt);
    let mut req = request(&["buy_below_pct=1:3:1"]);
    req.rank_by = "luck".into();
    let err = vectura_jobs::sweep::prepare(&req, &ctx).err().unwrap();
    assert_eq!(err.field(), Some("rank_by"), "{err}");
    let err = vectura_jobs::sweep::prepare(&request(&[]), &ctx)
        .err()
        .unwrap();
    assert_eq!(err.field(), Some("params"), "{err}");
}
