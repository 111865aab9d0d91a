//! Live runs through the store: a grid's snapshot and the readable `at_*` rows saved in one
//! transaction, restored at every step of a real session; executions recorded once.

use std::collections::HashSet;

use chrono::DateTime;
use vectura_core::calendar::{self, SessionPart};
use vectura_core::{BarSeries, BrokerFill, Fill, OrderEnd, RunId, Side};
use vectura_data::{load_csv_path, LoadOptions};
use vectura_store::{ExecutionRecord, RunState, SavedRun, Store, StoreError, FORMAT_TRADES_APART};
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

/// Drives a grid over the SPY session, each intent filled whole at the next bar's open; `save` is
/// called after every fill (with its execution) and after every bar.
async fn drive<F, Fut>(run: &mut GridRun, mut save: F)
where
    F: FnMut(GridRun, Option<ExecutionRecord>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let bars = spy_session();
    let mut cash = 10_000.0;
    let mut queue: Vec<vectura_core::OrderIntent> = Vec::new();
    let mut n = 0;
    for i in 0..bars.len() {
        let b = bars.get(i);
        for o in std::mem::take(&mut queue) {
            n += 1;
            let bf = BrokerFill {
                order_id: format!("ord-{}", o.id.0),
                execution_id: format!("x-{n}"),
                fill: Fill {
                    intent: o.id,
                    side: o.side,
                    qty: o.qty,
                    price: b.open,
                    commission: 0.0,
                    ts: b.ts,
                    done: true,
                },
            };
            cash -= if o.side == Side::Buy { 1.0 } else { -1.0 } * o.qty * b.open;
            assert_eq!(run.apply_fill(&bf), Applied::New);
            let x = ExecutionRecord {
                execution_id: bf.execution_id.clone(),
                broker_order_id: bf.order_id.clone(),
                client_order_id: run.client_order_id(o.id),
                side: o.side,
                qty: o.qty,
                price: b.open,
                executed_at: DateTime::from_timestamp(b.ts, 0).unwrap(),
            };
            save(run.clone(), Some(x)).await;
        }
        let a = Account { cash, equity: cash };
        run.grid_mut()
            .on_bar(&Tick::at(b.ts, b.close), &a, &AllowAll);
        let mut reserved = 0.0;
        while let Some(o) = run.grid_mut().next_intent(
            &Account {
                cash: cash - reserved,
                equity: cash,
            },
            &AllowAll,
        ) {
            if o.side == Side::Buy {
                reserved += o.qty * o.ref_price * 1.01;
            }
            queue.push(o);
        }
        save(run.clone(), None).await;
    }
}

/// Runs a statement on the store's own pool (both backends accept `$n` parameters).
async fn exec_sql(store: &Store, sql: &str, args: &[&str]) -> u64 {
    match store {
        Store::Sqlite(p) => {
            let mut q = sqlx::query(sql);
            for a in args {
                q = q.bind(*a);
            }
            q.execute(p).await.unwrap().rows_affected()
        }
        Store::Postgres(p) => {
            let mut q = sqlx::query(sql);
            for a in args {
                q = q.bind(*a);
            }
            q.execute(p).await.unwrap().rows_affected()
        }
    }
}

async fn count(store: &Store, sql: &str, arg: &str) -> i64 {
    match store {
        Store::Sqlite(p) => sqlx::query_scalar(sql)
            .bind(arg)
            .fetch_one(p)
            .await
            .unwrap(),
        Store::Postgres(p) => sqlx::query_scalar(sql)
            .bind(arg)
            .fetch_one(p)
            .await
            .unwrap(),
    }
}

/// The readable rows of SPY, for comparing two stores' (or two moments').
async fn readable(
    store: &Store,
) -> (
    vectura_store::Triggers,
    Vec<vectura_store::OpenLot>,
    Vec<vectura_store::TradeRecord>,
) {
    let mut trades = store.trades("SPY").await.unwrap();
    trades.sort_by(|a, b| a.id.cmp(&b.id));
    let mut lots = store.open_lots("SPY").await.unwrap();
    lots.sort_by(|a, b| a.id.cmp(&b.id));
    (store.triggers("SPY").await.unwrap(), lots, trades)
}

/// The live trader's save ([`Store::save_grid`], writing only what changed) leaves the same state and
/// readable rows as the full save after every step of a real session, and reads back whole.
async fn a_grid_saved_by_its_changes_reads_back_as_a_full_save_leaves_it(
    inc: &Store,
    full: &Store,
) {
    let bars = spy_session();
    let run_id = inc.new_run_id(ACCOUNT, bars.ts[0] * 1000).await.unwrap();
    let mut run = GridRun::new(run_id.clone(), "SPY", busy_grid());
    for s in [inc, full] {
        s.create_run(&RunState::of_grid(&run, ACCOUNT).unwrap())
            .await
            .unwrap();
    }
    let saved = std::cell::RefCell::new(SavedRun::default());
    let steps = std::cell::Cell::new(0usize);
    drive(&mut run, |r, x| {
        let saved = &saved;
        let steps = &steps;
        async move {
            let mut sv = saved.take();
            inc.save_grid(&mut sv, &r, ACCOUNT, x.as_ref())
                .await
                .unwrap();
            saved.replace(sv);
            full.save_run(&RunState::of_grid(&r, ACCOUNT).unwrap(), x.as_ref())
                .await
                .unwrap();
            steps.set(steps.get() + 1);
            // The rows the incremental save changed, added and deleted are the full save's, always.
            assert_eq!(
                readable(inc).await,
                readable(full).await,
                "save {}",
                steps.get()
            );
            // Every 25 saves: both read back the same, whole.
            if steps.get().is_multiple_of(25) {
                let a = inc.active_run("SPY").await.unwrap().unwrap();
                assert_eq!(a, full.active_run("SPY").await.unwrap().unwrap());
                assert_eq!(a.grid_run().unwrap().grid().snapshot(), r.grid().snapshot());
            }
        }
    })
    .await;
    let g = run.grid();
    assert!(g.history().len() > 10, "{} trades", g.history().len());
    let back = inc.active_run("SPY").await.unwrap().unwrap();
    assert_eq!(back.format, vectura_strategy::grid::SNAPSHOT_FORMAT);
    assert_eq!(back.grid_run().unwrap().grid().snapshot(), g.snapshot());
    assert_eq!(
        back.executions.len(),
        full.active_run("SPY")
            .await
            .unwrap()
            .unwrap()
            .executions
            .len()
    );
    assert_eq!(readable(inc).await, readable(full).await);
    // The history is stored apart, one row per trade, and not in the state.
    for s in [inc, full] {
        assert_eq!(
            count(
                s,
                "SELECT COUNT(*) FROM at_run_trades WHERE run_id = $1",
                run_id.as_str()
            )
            .await,
            g.history().len() as i64
        );
        assert_eq!(
            count(
                s,
                "SELECT format FROM at_runs WHERE run_id = $1",
                run_id.as_str()
            )
            .await,
            i64::from(FORMAT_TRADES_APART)
        );
    }

    // A save that changes no trigger or lot leaves the readable rows alone (a row changed behind
    // the store's back stays changed); a save knowing nothing (a restart's) writes them anew.
    let mut sv = saved.into_inner();
    let id = inc.triggers("SPY").await.unwrap().buys[0].id.clone();
    assert_eq!(
        exec_sql(
            inc,
            "UPDATE at_to_buy SET at_price = 12345 WHERE symbol = 'SPY' AND id = $1",
            &[&id]
        )
        .await,
        1
    );
    inc.save_grid(&mut sv, &run, ACCOUNT, None).await.unwrap();
    let price = |t: &vectura_store::Triggers| t.buys.iter().find(|b| b.id == id).unwrap().at_price;
    assert_eq!(price(&inc.triggers("SPY").await.unwrap()), 12345.0);
    inc.save_grid(&mut SavedRun::default(), &run, ACCOUNT, None)
        .await
        .unwrap();
    assert_eq!(readable(inc).await, readable(full).await);

    // A save rolled back by its hook is forgotten: the next one writes what it had.
    let mut sv = SavedRun::default();
    inc.save_grid(&mut sv, &run, ACCOUNT, None).await.unwrap();
    let mut more = run.clone();
    let last = bars.get(bars.len() - 1);
    more.grid_mut().on_bar(
        &Tick::at(last.ts + 60, last.close * 0.9),
        &Account {
            cash: 1e6,
            equity: 1e6,
        },
        &AllowAll,
    );
    let mut filled = 0;
    while let Some(o) = more.grid_mut().next_intent(
        &Account {
            cash: 1e6,
            equity: 1e6,
        },
        &AllowAll,
    ) {
        filled += 1;
        let bf = BrokerFill {
            order_id: format!("ord-{}", o.id.0),
            execution_id: format!("late-{filled}"),
            fill: Fill {
                intent: o.id,
                side: o.side,
                qty: o.qty,
                price: last.close * 0.9,
                commission: 0.0,
                ts: last.ts + 60,
                done: true,
            },
        };
        assert_eq!(more.apply_fill(&bf), Applied::New);
    }
    assert!(filled > 0, "a drop of 10 % fires a buy");
    assert!(more.grid().history().len() > run.grid().history().len());
    let err = inc
        .save_grid_with_hook(&mut sv, &more, ACCOUNT, None, &|| false)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Interrupted { .. }), "{err}");
    assert_eq!(
        inc.active_run("SPY")
            .await
            .unwrap()
            .unwrap()
            .grid_run()
            .unwrap()
            .grid()
            .snapshot(),
        run.grid().snapshot(),
        "nothing of the rolled-back save"
    );
    inc.save_grid(&mut sv, &more, ACCOUNT, None).await.unwrap();
    full.save_run(&RunState::of_grid(&more, ACCOUNT).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(
        inc.active_run("SPY")
            .await
            .unwrap()
            .unwrap()
            .grid_run()
            .unwrap()
            .grid()
            .snapshot(),
        more.grid().snapshot()
    );
    assert_eq!(readable(inc).await, readable(full).await);
}

/// A run saved before migration 0010 (format 1: the whole snapshot, history included, in the state)
/// reads back as it was, and its first save moves the history to `at_run_trades` without writing a
/// trade twice; rows that do not match the state are refused, naming the table.
async fn a_run_saved_before_migration_0010_loads_and_its_next_save_moves_the_history_out(
    store: &Store,
) {
    let bars = spy_session();
    let run_id = store.new_run_id(ACCOUNT, bars.ts[0] * 1000).await.unwrap();
    let mut run = GridRun::new(run_id.clone(), "SPY", busy_grid());
    store
        .create_run(&RunState::of_grid(&run, ACCOUNT).unwrap())
        .await
        .unwrap();
    let mut sv = SavedRun::default();
    drive(&mut run, |_, _| async {}).await;
    assert!(run.grid().history().len() > 10);
    store
        .save_run(&RunState::of_grid(&run, ACCOUNT).unwrap(), None)
        .await
        .unwrap();
    let want = store.active_run("SPY").await.unwrap().unwrap();
    let trades = store.trades("SPY").await.unwrap().len();
    // The row as vectura wrote it before 0010.
    let old = serde_json::to_string(&run.grid().snapshot()).unwrap();
    let cast = match store.dialect() {
        vectura_store::Dialect::Sqlite => "$1",
        vectura_store::Dialect::Postgres => "CAST($1 AS jsonb)",
    };
    assert_eq!(
        exec_sql(
            store,
            &format!("UPDATE at_runs SET format = 1, state = {cast} WHERE run_id = $2"),
            &[&old, run_id.as_str()]
        )
        .await,
        1
    );
    exec_sql(
        store,
        "DELETE FROM at_run_trades WHERE run_id = $1",
        &[run_id.as_str()],
    )
    .await;
    let got = store.active_run("SPY").await.unwrap().unwrap();
    assert_eq!(got, want, "read as before");
    assert_eq!(
        got.grid_run().unwrap().grid().snapshot(),
        run.grid().snapshot()
    );
    // The next save (a restarted trader's) writes the new layout, every trade once.
    store.save_grid(&mut sv, &run, ACCOUNT, None).await.unwrap();
    assert_eq!(
        count(
            store,
            "SELECT format FROM at_runs WHERE run_id = $1",
            run_id.as_str()
        )
        .await,
        i64::from(FORMAT_TRADES_APART)
    );
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM at_run_trades WHERE run_id = $1",
            run_id.as_str()
        )
        .await,
        run.grid().history().len() as i64
    );
    assert_eq!(store.trades("SPY").await.unwrap().len(), trades);
    assert_eq!(store.active_run("SPY").await.unwrap().unwrap(), want);
    // A trade row missing (tables restored from different backups): refused, not guessed at.
    exec_sql(
        store,
        "DELETE FROM at_run_trades WHERE run_id = $1 AND seq = 3",
        &[run_id.as_str()],
    )
    .await;
    let err = store.active_run("SPY").await.unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::BadRow {
                table: "at_run_trades",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("same backup"), "{err}");
    // A save whose state is behind what is stored (another process saving the run) is refused.
    let mut behind = GridRun::new(run_id.clone(), "SPY", busy_grid());
    behind.grid_mut().on_bar(
        &Tick::at(bars.ts[0], bars.get(0).close),
        &Account {
            cash: 1e4,
            equity: 1e4,
        },
        &AllowAll,
    );
    let err = store
        .save_grid(&mut SavedRun::default(), &behind, ACCOUNT, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at_run_trades"), "{err}");
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

#[tokio::test]
async fn sqlite_a_grid_saved_by_its_changes_reads_back_as_a_full_save_leaves_it() {
    let (inc, d1) = sqlite().await;
    let (full, d2) = sqlite().await;
    a_grid_saved_by_its_changes_reads_back_as_a_full_save_leaves_it(&inc, &full).await;
    for (s, d) in [(inc, d1), (full, d2)] {
        s.close().await;
        let _ = std::fs::remove_dir_all(d);
    }
}

#[tokio::test]
async fn sqlite_a_run_saved_before_migration_0010_loads_and_its_next_save_moves_the_history_out() {
    let (store, dir) = sqlite().await;
    a_run_saved_before_migration_0010_loads_and_its_next_save_moves_the_history_out(&store).await;
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test"]
async fn postgres_a_grid_saved_by_its_changes_reads_back_as_a_full_save_leaves_it() {
    let (inc, admin, s1) = postgres().await;
    let (full, _, s2) = postgres().await;
    a_grid_saved_by_its_changes_reads_back_as_a_full_save_leaves_it(&inc, &full).await;
    inc.close().await;
    full.close().await;
    for s in [s1, s2] {
        sqlx::raw_sql(&format!("DROP SCHEMA {s} CASCADE"))
            .execute(&admin)
            .await
            .unwrap();
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test"]
async fn postgres_a_run_saved_before_migration_0010_loads_and_its_next_save_moves_the_history_out()
{
    let (store, admin, schema) = postgres().await;
    a_run_saved_before_migration_0010_loads_and_its_next_save_moves_the_history_out(&store).await;
    store.close().await;
    sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}
