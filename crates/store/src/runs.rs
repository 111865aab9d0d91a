//! Live runs: a strategy's complete state (`at_runs`), the readable rows written from it
//! (`at_to_buy`, `at_to_sell`, `at_open_trades`, `at_trade_history`) and the executions it has applied
//! (`at_executions`), all changed together in one transaction per save.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::Row;
use vectura_core::{RunId, Side};
use vectura_strategy::grid::{GridSnapshot, SNAPSHOT_FORMAT};
use vectura_strategy::join::Dir;
use vectura_strategy::run::GridRun;

use crate::error::query_err;
use crate::{
    finite, on_pool, symbol_key, BeginWrite, BuyTrigger, OpenLot, OrderRow, SellTrigger, Store,
    StoreError, TradeRecord,
};

/// What the readable `at_*` tables show of a run: armed and pending triggers, open lots, trades.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunView {
    pub buys: Vec<BuyTrigger>,
    pub sells: Vec<SellTrigger>,
    pub lots: Vec<OpenLot>,
    pub trades: Vec<TradeRecord>,
}

/// A run's state as saved: the snapshot (the truth, restored from) and the readable rows made from it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
    pub run_id: RunId,
    pub symbol: String,
    /// The broker account the run trades on (run ids are unique per account).
    pub account: String,
    /// The strategy's name (`grid`).
    pub strategy: String,
    /// The snapshot's layout version.
    pub format: u32,
    pub snapshot: serde_json::Value,
    pub view: RunView,
}

/// A broker execution a save applies (its id is stored once, in the same transaction as the state).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRecord {
    pub execution_id: String,
    pub broker_order_id: String,
    pub client_order_id: String,
    pub side: Side,
    pub qty: f64,
    pub price: f64,
    pub executed_at: DateTime<Utc>,
}

/// A run as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    pub run_id: RunId,
    pub symbol: String,
    pub account: String,
    pub strategy: String,
    pub format: u32,
    pub snapshot: serde_json::Value,
    /// False once the run was ended ([`Store::end_run`]).
    pub active: bool,
    /// Every execution id the run applied, oldest first.
    pub executions: Vec<String>,
}

fn instant(table: &'static str, target: &str, ts: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp(ts, 0).ok_or_else(|| StoreError::BadRow {
        table,
        target: target.to_string(),
        detail: format!("the instant {ts} (Unix s), which is out of range"),
    })
}

impl RunState {
    /// The state of a grid run, with its readable rows: trigger ids as numbers, lots and trades under
    /// their intents' client order ids (a sell's `close_trade_id` is the buy that opened its lot).
    pub fn of_grid(run: &GridRun, account: &str) -> Result<RunState, StoreError> {
        let snap = run.grid().snapshot();
        let view = view_of(run, &snap)?;
        Ok(RunState {
            run_id: run.run().clone(),
            symbol: run.symbol().to_string(),
            account: account.to_string(),
            strategy: "grid".into(),
            format: snap.format,
            snapshot: serde_json::to_value(&snap).map_err(|e| {
                StoreError::Invalid(format!(
                    "at_runs: the state of run {} cannot be written as JSON: {e}",
                    run.run()
                ))
            })?,
            view,
        })
    }
}

fn view_of(run: &GridRun, s: &GridSnapshot) -> Result<RunView, StoreError> {
    let coid = |i| run.client_order_id(i);
    let buys = s
        .buy_triggers
        .iter()
        .map(|t| BuyTrigger {
            id: t.id.to_string(),
            at_price: t.price,
            below_or_higher: match t.dir {
                Dir::Below => "below",
                Dir::Higher => "higher",
            }
            .into(),
        })
        .collect();
    let sells = s
        .sell_triggers
        .iter()
        .map(|t| SellTrigger {
            id: t.id.to_string(),
            at_price: t.price,
            below_or_higher: "higher".into(),
            shares: t.shares,
            trade_id: coid(t.lot),
        })
        .collect();
    let lots = s
        .lots
        .iter()
        .map(|l| {
            let id = coid(l.id);
            Ok(OpenLot {
                timestamp: instant("at_open_trades", &id, l.opened)?,
                id,
                price: l.price,
                shares: l.shares,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    // One trade per intent; should an intent ever record two, the later ones get `.2`, `.3`.
    let mut seen: HashMap<u64, u32> = HashMap::new();
    let trades = s
        .history
        .iter()
        .map(|t| {
            let n = seen.entry(t.intent.0).or_insert(0);
            *n += 1;
            let id = match *n {
                1 => coid(t.intent),
                k => format!("{}.{k}", coid(t.intent)),
            };
            Ok(TradeRecord {
                timestamp: instant("at_trade_history", &id, t.ts)?,
                id,
                side: t.side,
                shares: t.shares,
                price: t.price,
                close_trade_id: t.closes.map(coid),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(RunView {
        buys,
        sells,
        lots,
        trades,
    })
}

impl StoredRun {
    /// The grid run this row holds, restored (with its applied executions).
    pub fn grid_run(&self) -> Result<GridRun, StoreError> {
        let bad = |detail: String| StoreError::BadRow {
            table: "at_runs",
            target: format!("run {}", self.run_id),
            detail,
        };
        if self.strategy != "grid" {
            return Err(bad(format!(
                "the strategy {:?} (grid expected)",
                self.strategy
            )));
        }
        if self.format != SNAPSHOT_FORMAT {
            return Err(bad(format!(
                "state format {} while this vectura reads {SNAPSHOT_FORMAT}",
                self.format
            )));
        }
        let snap: GridSnapshot = serde_json::from_value(self.snapshot.clone())
            .map_err(|e| bad(format!("a state that is not a grid snapshot ({e})")))?;
        GridRun::restore(
            self.run_id.clone(),
            &self.symbol,
            snap,
            self.executions.iter().cloned(),
        )
        .map_err(|e| bad(format!("a state that cannot be restored ({e})")))
    }
}

fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn check_state(st: &RunState) -> Result<String, StoreError> {
    let sym = symbol_key(&st.symbol)?;
    if st.account.is_empty() {
        return Err(StoreError::Invalid(format!(
            "at_runs: account for run {} is empty: give the broker account id",
            st.run_id
        )));
    }
    for b in &st.view.buys {
        finite("at_to_buy", "at_price", &b.id, b.at_price)?;
    }
    for s in &st.view.sells {
        finite("at_to_sell", "at_price", &s.id, s.at_price)?;
        finite("at_to_sell", "shares", &s.id, s.shares)?;
    }
    for l in &st.view.lots {
        finite("at_open_trades", "price", &l.id, l.price)?;
        finite("at_open_trades", "shares", &l.id, l.shares)?;
    }
    for t in &st.view.trades {
        finite("at_trade_history", "price", &t.id, t.price)?;
        finite("at_trade_history", "shares", &t.id, t.shares)?;
    }
    Ok(sym)
}

/// The body of a save inside transaction `$tx`: the run row (insert or update), the execution, the
/// readable rows. Written once as a macro so that it is type-checked against both backends.
macro_rules! write_run {
    ($tx:expr, $sym:expr, $st:expr, $create:expr, $exec:expr, $order:expr, $is_pg:expr) => {{
        let sym: &str = $sym;
        let st: &RunState = $st;
        let run = st.run_id.as_str();
        if $is_pg {
            // Two saves for one symbol must not interleave their delete-and-insert of the view rows.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("vectura.triggers.{sym}"))
                .execute(&mut *$tx)
                .await
                .map_err(query_err("locking", "at_runs", sym))?;
        }
        let state = Json(&st.snapshot);
        if $create {
            let r = sqlx::query(
                "INSERT INTO at_runs (symbol, run_id, account, strategy, format, state, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'active')",
            )
            .bind(sym)
            .bind(run)
            .bind(&st.account)
            .bind(&st.strategy)
            .bind(st.format as i64)
            .bind(state)
            .execute(&mut *$tx)
            .await;
            match r {
                Ok(_) => {}
                Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                    return Err(StoreError::Invalid(format!(
                        "at_runs: run {run} is already stored: make a new run id with new_run_id"
                    )));
                }
                Err(e) => return Err(query_err("writing", "at_runs", format!("run {run}"))(e)),
            }
        } else {
            let n = sqlx::query(
                "UPDATE at_runs SET state = $4, format = $5, strategy = $6, updated_at = CURRENT_TIMESTAMP \
                 WHERE run_id = $1 AND symbol = $2 AND account = $3 AND status = 'active'",
            )
            .bind(run)
            .bind(sym)
            .bind(&st.account)
            .bind(state)
            .bind(st.format as i64)
            .bind(&st.strategy)
            .execute(&mut *$tx)
            .await
            .map_err(query_err("updating", "at_runs", format!("run {run}")))?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::Invalid(format!(
                    "at_runs: no active run {run} of {sym} on account {} is stored: create it with create_run (an ended run is not saved again)",
                    st.account
                )));
            }
        }
        if let Some(x) = $exec {
            let x: &ExecutionRecord = x;
            let r = sqlx::query(
                "INSERT INTO at_executions (symbol, execution_id, run_id, client_order_id, broker_order_id, \
                 side, qty, price, executed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(sym)
            .bind(&x.execution_id)
            .bind(run)
            .bind(&x.client_order_id)
            .bind(&x.broker_order_id)
            .bind(side_str(x.side))
            .bind(x.qty)
            .bind(x.price)
            .bind(x.executed_at)
            .execute(&mut *$tx)
            .await;
            match r {
                Ok(_) => {}
                Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                    return Err(StoreError::DuplicateExecution {
                        execution_id: x.execution_id.clone(),
                    });
                }
                Err(e) => {
                    return Err(query_err(
                        "writing",
                        "at_executions",
                        format!("execution {}", x.execution_id),
                    )(e))
                }
            }
        }
        if let Some(o) = $order {
            let o: &OrderRow = o;
            let r = sqlx::query(
                "INSERT INTO at_orders (client_order_id, symbol, side, qty, status, created_at, \
                 broker_order_id, filled_qty, filled_avg_price, intent, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&o.client_order_id)
            .bind(sym)
            .bind(side_str(o.side))
            .bind(o.qty)
            .bind(&o.status)
            .bind(o.created_at)
            .bind(&o.broker_order_id)
            .bind(o.filled_qty)
            .bind(o.filled_avg_price)
            .bind(o.intent.as_ref().map(Json))
            .bind(&o.error)
            .execute(&mut *$tx)
            .await;
            match r {
                Ok(_) => {}
                Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                    return Err(StoreError::DuplicateOrder {
                        client_order_id: o.client_order_id.clone(),
                    });
                }
                Err(e) => {
                    return Err(query_err(
                        "writing",
                        "at_orders",
                        format!("{sym} order {}", o.client_order_id),
                    )(e))
                }
            }
        }
        for table in ["at_to_buy", "at_to_sell", "at_open_trades"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE symbol = $1"))
                .bind(sym)
                .execute(&mut *$tx)
                .await
                .map_err(query_err("clearing", table, sym))?;
        }
        for b in &st.view.buys {
            sqlx::query(
                "INSERT INTO at_to_buy (symbol, id, at_price, below_or_higher) VALUES ($1, $2, $3, $4)",
            )
            .bind(sym)
            .bind(&b.id)
            .bind(b.at_price)
            .bind(&b.below_or_higher)
            .execute(&mut *$tx)
            .await
            .map_err(query_err("writing", "at_to_buy", format!("{sym} buy trigger {}", b.id)))?;
        }
        for s in &st.view.sells {
            sqlx::query(
                "INSERT INTO at_to_sell (symbol, id, at_price, below_or_higher, shares, trade_id) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(sym)
            .bind(&s.id)
            .bind(s.at_price)
            .bind(&s.below_or_higher)
            .bind(s.shares)
            .bind(&s.trade_id)
            .execute(&mut *$tx)
            .await
            .map_err(query_err("writing", "at_to_sell", format!("{sym} sell trigger {}", s.id)))?;
        }
        for l in &st.view.lots {
            sqlx::query(
                "INSERT INTO at_open_trades (symbol, id, timestamp, price, shares) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(sym)
            .bind(&l.id)
            .bind(l.timestamp)
            .bind(l.price)
            .bind(l.shares)
            .execute(&mut *$tx)
            .await
            .map_err(query_err("writing", "at_open_trades", format!("{sym} lot {}", l.id)))?;
        }
        // The history is append-only and every save writes it up to its end: the trades not stored
        // yet are those after the last stored one (found from the end, so a save writes only what
        // is new instead of the whole history every bar).
        let trades = &st.view.trades;
        let mut from = trades.len();
        while from > 0 {
            let stored = sqlx::query("SELECT 1 FROM at_trade_history WHERE id = $1")
                .bind(&trades[from - 1].id)
                .fetch_optional(&mut *$tx)
                .await
                .map_err(query_err("reading", "at_trade_history", sym))?
                .is_some();
            if stored {
                break;
            }
            from -= 1;
        }
        for t in &trades[from..] {
            sqlx::query(
                "INSERT INTO at_trade_history (id, symbol, timestamp, trade_type, shares, price, close_trade_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET \
                 timestamp = excluded.timestamp, trade_type = excluded.trade_type, \
                 shares = excluded.shares, price = excluded.price, close_trade_id = excluded.close_trade_id",
            )
            .bind(&t.id)
            .bind(sym)
            .bind(t.timestamp)
            .bind(side_str(t.side))
            .bind(t.shares)
            .bind(t.price)
            .bind(&t.close_trade_id)
            .execute(&mut *$tx)
            .await
            .map_err(query_err("writing", "at_trade_history", format!("{sym} trade {}", t.id)))?;
        }
    }};
}

impl Store {
    /// A run id for a new run on `account` starting at `now_ms` (Unix ms): later than every run the
    /// account has stored, so it never repeats one (see [`RunId::after`]).
    pub async fn new_run_id(&self, account: &str, now_ms: i64) -> Result<RunId, StoreError> {
        let latest: Option<String> = on_pool!(self, |p| {
            sqlx::query(
                "SELECT run_id FROM at_runs WHERE account = $1 ORDER BY run_id DESC LIMIT 1",
            )
            .bind(account)
            .fetch_optional(p)
            .await
            .map_err(query_err(
                "reading",
                "at_runs",
                format!("account {account}"),
            ))?
            .map(|r| r.try_get::<String, _>("run_id"))
            .transpose()
            .map_err(query_err(
                "reading",
                "at_runs",
                format!("account {account}"),
            ))?
        });
        let latest = latest
            .map(|s| {
                RunId::parse(&s).map_err(|e| StoreError::BadRow {
                    table: "at_runs",
                    target: format!("account {account}"),
                    detail: e.to_string(),
                })
            })
            .transpose()?;
        Ok(RunId::after(latest.as_ref(), now_ms))
    }

    /// Stores a new run with its first state and readable rows, in one transaction.
    pub async fn create_run(&self, st: &RunState) -> Result<(), StoreError> {
        self.write_run(st, true, None, None, None).await
    }

    /// Saves a run's state and its readable rows, in one transaction. With `execution`, the execution
    /// id is recorded in the same transaction; an id already recorded is
    /// [`StoreError::DuplicateExecution`] and nothing is written (the fill was applied before).
    pub async fn save_run(
        &self,
        st: &RunState,
        execution: Option<&ExecutionRecord>,
    ) -> Result<(), StoreError> {
        self.write_run(st, false, execution, None, None).await
    }

    /// [`Store::save_run`] with a hook called inside the transaction, after every row is written and
    /// before the commit: the crash tests kill the process there (a fill's transaction open). A hook
    /// returning false rolls the transaction back ([`StoreError::Interrupted`]).
    pub async fn save_run_with_hook(
        &self,
        st: &RunState,
        execution: Option<&ExecutionRecord>,
        before_commit: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<(), StoreError> {
        self.write_run(st, false, execution, None, Some(before_commit))
            .await
    }

    /// Saves a run's state together with a new order intent (`at_orders`, status as given), in one
    /// transaction: the intent counter the state carries and the intent's client order id become
    /// durable together, before the order is submitted, so a crash after this can never reuse the id.
    /// An intent already stored is [`StoreError::DuplicateOrder`] and nothing is written.
    pub async fn save_run_with_order(
        &self,
        st: &RunState,
        order: &OrderRow,
    ) -> Result<(), StoreError> {
        let target = format!("{} order {}", st.symbol, order.client_order_id);
        if order.client_order_id.is_empty() {
            return Err(StoreError::Invalid(format!(
                "at_orders: client_order_id of {target} is empty: give the intent's client order id"
            )));
        }
        finite("at_orders", "qty", &target, order.qty)?;
        self.write_run(st, false, None, Some(order), None).await
    }

    async fn write_run(
        &self,
        st: &RunState,
        create: bool,
        execution: Option<&ExecutionRecord>,
        order: Option<&OrderRow>,
        before_commit: Option<&(dyn Fn() -> bool + Send + Sync)>,
    ) -> Result<(), StoreError> {
        let sym = check_state(st)?;
        if let Some(x) = execution {
            if x.execution_id.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "at_executions: execution_id for run {} is empty: give the broker's execution id",
                    st.run_id
                )));
            }
            finite("at_executions", "qty", &x.execution_id, x.qty)?;
            finite("at_executions", "price", &x.execution_id, x.price)?;
        }
        let is_pg = matches!(self, Store::Postgres(_));
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await.map_err(query_err(
                "starting to save",
                "at_runs",
                format!("run {}", st.run_id),
            ))?;
            write_run!(tx, &sym, st, create, execution, order, is_pg);
            if before_commit.is_some_and(|h| !h()) {
                // Dropping the transaction rolls it back.
                return Err(StoreError::Interrupted {
                    run_id: st.run_id.to_string(),
                });
            }
            tx.commit().await.map_err(query_err(
                "committing",
                "at_runs",
                format!("run {}", st.run_id),
            ))
        })
    }

    /// Has any run applied this execution?
    pub async fn execution_applied(&self, execution_id: &str) -> Result<bool, StoreError> {
        on_pool!(self, |p| {
            sqlx::query("SELECT 1 FROM at_executions WHERE execution_id = $1")
                .bind(execution_id)
                .fetch_optional(p)
                .await
                .map(|r| r.is_some())
                .map_err(query_err(
                    "reading",
                    "at_executions",
                    format!("execution {execution_id}"),
                ))
        })
    }

    /// The symbol's active run (the latest, should there be several), with its applied executions.
    pub async fn active_run(&self, symbol: &str) -> Result<Option<StoredRun>, StoreError> {
        let sym = symbol_key(symbol)?;
        self.run_where("symbol = $1 AND status = 'active'", &sym)
            .await
    }

    /// One run by id.
    pub async fn run(&self, run_id: &RunId) -> Result<Option<StoredRun>, StoreError> {
        self.run_where("run_id = $1", run_id.as_str()).await
    }

    /// Ends a run: it is no longer active and is not saved again (its rows stay readable).
    pub async fn end_run(&self, run_id: &RunId) -> Result<bool, StoreError> {
        on_pool!(self, |p| {
            sqlx::query(
                "UPDATE at_runs SET status = 'ended', updated_at = CURRENT_TIMESTAMP WHERE run_id = $1 \
                 AND status = 'active'",
            )
            .bind(run_id.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(query_err("ending", "at_runs", format!("run {run_id}")))
        })
    }

    async fn run_where(&self, cond: &str, value: &str) -> Result<Option<StoredRun>, StoreError> {
        let sql = format!(
            "SELECT symbol, run_id, account, strategy, format, state, status FROM at_runs WHERE {cond} \
             ORDER BY run_id DESC LIMIT 1"
        );
        let target = value.to_string();
        let row = on_pool!(self, |p| {
            let err = || query_err("reading", "at_runs", target.clone());
            let Some(r) = sqlx::query(&sql)
                .bind(value)
                .fetch_optional(p)
                .await
                .map_err(err())?
            else {
                return Ok(None);
            };
            let run_id: String = r.try_get("run_id").map_err(err())?;
            let state: Json<serde_json::Value> = r.try_get("state").map_err(err())?;
            let format: i64 = r.try_get("format").map_err(err())?;
            let status: String = r.try_get("status").map_err(err())?;
            let symbol: String = r.try_get("symbol").map_err(err())?;
            let account: String = r.try_get("account").map_err(err())?;
            let strategy: String = r.try_get("strategy").map_err(err())?;
            let execs = sqlx::query(
                "SELECT execution_id FROM at_executions WHERE run_id = $1 ORDER BY executed_at, execution_id",
            )
            .bind(&run_id)
            .fetch_all(p)
            .await
            .map_err(query_err("reading", "at_executions", format!("run {run_id}")))?
            .iter()
            .map(|r| r.try_get::<String, _>("execution_id"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(query_err("reading", "at_executions", format!("run {run_id}")))?;
            (
                run_id, state.0, format, status, symbol, account, strategy, execs,
            )
        });
        let (run_id, snapshot, format, status, symbol, account, strategy, executions) = row;
        let bad = |detail: String| StoreError::BadRow {
            table: "at_runs",
            target: format!("run {run_id}"),
            detail,
        };
        Ok(Some(StoredRun {
            run_id: RunId::parse(&run_id).map_err(|e| bad(e.to_string()))?,
            format: u32::try_from(format).map_err(|_| bad(format!("the format {format}")))?,
            active: status == "active",
            symbol,
            account,
            strategy,
            snapshot,
            executions,
        }))
    }
}
