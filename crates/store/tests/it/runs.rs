//! Live runs through the store: a grid's snapshot and the readable `at_*` rows saved in one
//! transaction, restored at every step of a real session; executions recorded once.

use std::collections::HashSet;

use chrono::DateTime;
use vectura_core::calendar::{self, SessionPart};
use vectura_core::{BarSeries, BrokerFill, Fill, OrderEnd, RunId, Side};
use vectura_data::{load_csv_path, LoadOptions};
use vectura_store::{ExecutionRecord, RunState, Store, StoreError};
use vectura_strategy::grid::{Grid, GridMode, GridParams};
use vectura_strategy::join::Dir;
use vectura_strategy::run::{Applied, GridRun};
use vectura_strategy::{Account, AllowAll, Strategy as _, Tick};

/// The first regular session of the bundled SPY minute bars.
fn spy_session() -> BarSeries {
    let path = format!(
        "{}/../../data/bundled/SPY_1min_2011-01.csv.gz",
        env!("CARGO_MANIFEST_DIR")
    );
    let s = load_csv_path(std::path::Path::new(&path), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .series;
    let day = calendar::ny_date(
        s.ts[(0..s.len())
            .find(|&i| calendar::classify(s.ts[i]) == SessionPart::Regular)
            .unwrap()],
    );
    s.filter(|i| {
        calendar::classify(s.ts[i]) == SessionPart::Regular && calendar::ny_date(s.ts[i]) == day
    })
}

fn busy_grid() -> Grid {
    Grid::new(
        GridParams {
            capital_pct: 20.0,
            buy_below_pct: 0.05,
            sell_above_pct: 0.1,
            buy_after_sell_pct: 0.15,
            cash_floor: 0.0,
            order_gap_pct: 0.02,
        },
        GridMode {
            compat_v1: false,
            share_scale: 1e4,
            record_lines: false,
        },
    )
}

const ACCOUNT: &str = "PA-TEST-1";

async fn sqlite() -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "vt_runs_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("store.db").display());
    (Store::open(&url).await.unwrap(), dir)
}

/// A fresh Postgres schema on `VECTURA_TEST_DATABASE_URL`; panics (the test fails) without one.
async fn postgres() -> (Store, sqlx::PgPool, String) {
    let base = std::env::var("VECTURA_TEST_DATABASE_URL").expect(
        "VECTURA_TEST_DATABASE_URL is not set: point it at a Postgres server (postgres://postgres@127.0.0.1:5432/test) or run scripts/test",
    );
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {base}: {e}"));
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let schema = format!(
        "vt_runs_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    (Store::open(&url).await.unwrap(), admin, schema)
}

/// Drives a grid over a real session twice: in memory, and saved to the store after every change and
/// restored from it before the next. Both must ask for the same orders and end in the same state,
/// and the readable tables must show that state.
async fn a_run_restored_from_the_store_at_every_step_is_the_uninterrupted_run(store: &Store) {
    let bars = spy_session();
    let run_id = store.new_run_id(ACCOUNT, bars.ts[0] * 1000).await.unwrap();
    let mut mem = GridRun::new(run_id.clone(), "SPY", busy_grid());
    store
        .create_run(&RunState::of_grid(&mem, ACCOUNT).unwrap())
        .await
        .unwrap();
    let mut cash = 10_000.0;
    let mut n_exec = 0usize;
    let mut saves = 0usize;
    let mut partial_seen = false;
    let mut queue = Vec::new();
    let mut dup_checked = false;
    for i in 0..bars.len() {
        let b = bars.get(i);
        // Orders of the previous close fill at this open; every third in two parts.
        for (k, o) in std::mem::take(&mut queue).into_iter().enumerate() {
            let o: vectura_core::OrderIntent = o;
            let parts: Vec<f64> = if k % 3 == 0 {
                vec![o.qty * 0.4, o.qty - o.qty * 0.4]
            } else {
                vec![o.qty]
            };
            for (j, &q) in parts.iter().enumerate() {
                n_exec += 1;
                let price = b.open + j as f64 * 0.01;
                let bf = BrokerFill {
                    order_id: format!("ord-{}", o.id.0),
                    execution_id: format!("exec-{n_exec}"),
                    fill: Fill {
                        intent: o.id,
                        side: o.side,
                        qty: q,
                        price,
                        commission: 0.0,
                        ts: b.ts,
                        done: j + 1 == parts.len(),
                    },
                };
                let sign = if o.side == Side::Buy { 1.0 } else { -1.0 };
                cash -= sign * q * price;
                assert_eq!(mem.apply_fill(&bf), Applied::New);
                // The stored run: restored, the fill applied, saved with its execution in one go.
                let mut stored = store
                    .active_run("SPY")
                    .await
                    .unwrap()
                    .unwrap()
                    .grid_run()
                    .unwrap();
                assert_eq!(stored.apply_fill(&bf), Applied::New);
                let x = ExecutionRecord {
                    execution_id: bf.execution_id.clone(),
                    broker_order_id: bf.order_id.clone(),
                    client_order_id: stored.client_order_id(o.id),
                    side: o.side,
                    qty: q,
                    price,
                    executed_at: DateTime::from_timestamp(b.ts, 0).unwrap(),
                };
                let st = RunState::of_grid(&stored, ACCOUNT).unwrap();
                store.save_run(&st, Some(&x)).await.unwrap();
                saves += 1;
                if !bf.fill.done {
                    partial_seen = true;
                }
                if !dup_checked && saves == 5 {
                    // The same execution again (a reconnect's replay): refused, nothing written.
                    dup_checked = true;
                    let before = store.active_run("SPY").await.unwrap().unwrap();
                    let mut again = before.grid_run().unwrap();
                    assert!(again.is_applied(&bf.execution_id));
                    assert_eq!(again.apply_fill(&bf), Applied::Duplicate);
                    let err = store.save_run(&st, Some(&x)).await.unwrap_err();
                    assert!(
                        matches!(&err, StoreError::DuplicateExecution { execution_id } if *execution_id == bf.execution_id),
                        "{err}"
                    );
                    assert!(store.execution_applied(&bf.execution_id).await.unwrap());
                    assert_eq!(store.active_run("SPY").await.unwrap().unwrap(), before);
                }
            }
        }
        let equity = cash;
        let a = Account { cash, equity };
        let tick = Tick::at(b.ts, b.close);
        mem.grid_mut().on_bar(&tick, &a, &AllowAll);
        let mut stored = store
            .active_run("SPY")
            .await
            .unwrap()
            .unwrap()
            .grid_run()
            .unwrap();
        stored.grid_mut().on_bar(&tick, &a, &AllowAll);
        let mut reserved = 0.0;
        loop {
            let a = Account {
                cash: cash - reserved,
                equity,
            };
            let want = mem.grid_mut().next_intent(&a, &AllowAll);
            let got = stored.grid_mut().next_intent(&a, &AllowAll);
            assert_eq!(want, got, "bar {i}");
            let Some(o) = want else { break };
            if o.side == Side::Buy {
                reserved += o.qty * o.ref_price * 1.01;
            }
            queue.push(o);
        }
        store
            .save_run(&RunState::of_grid(&stored, ACCOUNT).unwrap(), None)
            .await
            .unwrap();
        assert_eq!(stored.grid().snapshot(), mem.grid().snapshot(), "bar {i}");
    }
    // The last intents never filled: cancelled at the close.
    let mut stored = store
        .active_run("SPY")
        .await
        .unwrap()
        .unwrap()
        .grid_run()
        .unwrap();
    for o in &queue {
        mem.grid_mut().on_order_end(o.id, &OrderEnd::Expired);
        stored.grid_mut().on_order_end(o.id, &OrderEnd::Expired);
    }
    store
        .save_run(&RunState::of_grid(&stored, ACCOUNT).unwrap(), None)
        .await
        .unwrap();
    let back = store.active_run("SPY").await.unwrap().unwrap();
    assert_eq!(back.run_id, run_id);
    assert_eq!(back.executions.len(), n_exec);
    let back = back.grid_run().unwrap();
    let g = mem.grid();
    assert_eq!(back.grid().snapshot(), g.snapshot());
    assert!(saves > 20 && partial_seen, "{saves} saves");
    assert!(g.history().len() > 10, "{} trades", g.history().len());

    // The readable tables show the same state.
    let t = store.triggers("SPY").await.unwrap();
    let mut want_buys: Vec<(String, f64, &str)> = g
        .buy_triggers()
        .map(|b| {
            (
                b.id.to_string(),
                b.price,
                if b.dir == Dir::Below {
                    "below"
                } else {
                    "higher"
                },
            )
        })
        .collect();
    want_buys.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let got_buys: Vec<(String, f64, &str)> = t
        .buys
        .iter()
        .map(|b| (b.id.clone(), b.at_price, b.below_or_higher.as_str()))
        .collect();
    assert_eq!(got_buys, want_buys);
    assert_eq!(t.sells.len(), g.sell_triggers().len());
    for s in g.sell_triggers() {
        let row = t.sells.iter().find(|r| r.id == s.id.to_string()).unwrap();
        assert_eq!((row.at_price, row.shares), (s.price, s.shares));
        assert_eq!(row.trade_id, mem.client_order_id(s.lot));
    }
    let lots = store.open_lots("SPY").await.unwrap();
    assert_eq!(lots.len(), g.lots().len());
    for l in g.lots() {
        let row = lots
            .iter()
            .find(|r| r.id == mem.client_order_id(l.id))
            .unwrap();
        assert_eq!(
            (row.price, row.shares, row.timestamp.timestamp()),
            (l.price, l.shares, l.opened)
        );
    }
    let trades = store.trades("SPY").await.unwrap();
    assert_eq!(trades.len(), g.history().len());
    let ids: HashSet<_> = trades.iter().map(|t| t.id.clone()).collect();
    for h in g.history() {
        let id = mem.client_order_id(h.intent);
        assert!(ids.contains(&id), "{id}");
        let row = trades.iter().find(|r| r.id == id).unwrap();
        assert_eq!(
            (row.side, row.shares, row.price),
            (h.side, h.shares, h.price)
        );
        assert_eq!(row.close_trade_id, h.closes.map(|c| mem.client_order_id(c)));
    }
}

async fn a_new_run_on_the_account_gets_a_new_id_and_an_ended_run_is_not_saved(store: &Store) {
    let now = 1_700_000_000_000;
    let first = store.new_run_id(ACCOUNT, now).await.unwrap();
    let r1 = GridRun::new(first.clone(), "SPY", busy_grid());
    store
        .create_run(&RunState::of_grid(&r1, ACCOUNT).unwrap())
        .await
        .unwrap();
    // The same millisecond, or a clock behind: still a new, later id.
    let second = store.new_run_id(ACCOUNT, now).await.unwrap();
    assert!(second > first, "{second} after {first}");
    assert_eq!(
        store.new_run_id("OTHER", now).await.unwrap(),
        RunId::from_start_ms(now)
    );
    let err = store
        .create_run(&RunState::of_grid(&r1, ACCOUNT).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already stored"), "{err}");
    assert!(store.end_run(&first).await.unwrap());
    assert_eq!(store.active_run("SPY").await.unwrap(), None);
    assert!(!store.run(&first).await.unwrap().unwrap().active);
    let err = store
        .save_run(&RunState::of_grid(&r1, ACCOUNT).unwrap(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no active run"), "{err}");
    let r2 = GridRun::new(second.clone(), "SPY", busy_grid());
    store
        .create_run(&RunState::of_grid(&r2, ACCOUNT).unwrap())
        .await
        .unwrap();
    assert_eq!(
        store.active_run("SPY").await.unwrap().unwrap().run_id,
        second
    );
}

#[tokio::test]
async fn sqlite_a_run_restored_from_the_store_at_every_step_is_the_uninterrupted_run() {
    let (store, dir) = sqlite().await;
    a_run_restored_from_the_store_at_every_step_is_the_uninterrupted_run(&store).await;
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn sqlite_a_new_run_on_the_account_gets_a_new_id_and_an_ended_run_is_not_saved() {
    let (store, dir) = sqlite().await;
    a_new_run_on_the_account_gets_a_new_id_and_an_ended_run_is_not_saved(&store).await;
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test"]
async fn postgres_a_run_restored_from_the_store_at_every_step_is_the_uninterrupted_run() {
    let (store, admin, schema) = postgres().await;
    a_run_restored_from_the_store_at_every_step_is_the_uninterrupted_run(&store).await;
    store.close().await;
    sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test"]
async fn postgres_a_new_run_on_the_account_gets_a_new_id_and_an_ended_run_is_not_saved() {
    let (store, admin, schema) = postgres().await;
    a_new_run_on_the_account_gets_a_new_id_and_an_ended_run_is_not_saved(&store).await;
    store.close().await;
    sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}
