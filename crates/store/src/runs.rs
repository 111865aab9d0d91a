//! Live runs: a strategy's complete state (`at_runs`, with its trade history in `at_run_trades`), the
//! readable rows written from it (`at_to_buy`, `at_to_sell`, `at_open_trades`, `at_trade_history`) and
//! the executions it has applied (`at_executions`), all changed together in one transaction per save.
//!
//! A live run is saved every bar, and its history only grows: the state row holds the snapshot
//! without its history (`at_runs.format` [`FORMAT_TRADES_APART`]), and each save appends the trades
//! the history gained to `at_run_trades`, so a save costs the same in a run's first week and after
//! years of trades. [`Store::save_grid`] and its siblings, given the [`SavedRun`] of the last save,
//! also leave the readable trigger and lot rows alone when they did not change. Reading puts the
//! history back: [`StoredRun::snapshot`] is the whole snapshot, as rows written before migration
//! 0010 (format 1, the history inside the state) still are.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::Row;
use vectura_core::{IntentId, RunId, Side};
use vectura_strategy::grid::{GridSnapshot, GridTrade, SNAPSHOT_FORMAT};
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
    let (buys, sells, lots) = shown_rows(run, &s.buy_triggers, &s.sell_triggers, &s.lots)?;
    let trades = (0..s.history.len())
        .map(|i| trade_record(run, &s.history, i))
        .collect::<Result<_, StoreError>>()?;
    Ok(RunView {
        buys,
        sells,
        lots,
        trades,
    })
}

/// The readable trigger and lot rows of a run: trigger ids as numbers, lots under their intents'
/// client order ids.
#[allow(clippy::type_complexity)]
fn shown_rows<'a>(
    run: &GridRun,
    buys: impl IntoIterator<Item = &'a vectura_strategy::join::BuyTrigger>,
    sells: impl IntoIterator<Item = &'a vectura_strategy::grid::SellTrigger>,
    lots: impl IntoIterator<Item = &'a vectura_strategy::grid::Lot>,
) -> Result<(Vec<BuyTrigger>, Vec<SellTrigger>, Vec<OpenLot>), StoreError> {
    let coid = |i| run.client_order_id(i);
    let buys = buys
        .into_iter()
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
    let sells = sells
        .into_iter()
        .map(|t| SellTrigger {
            id: t.id.to_string(),
            at_price: t.price,
            below_or_higher: "higher".into(),
            shares: t.shares,
            trade_id: coid(t.lot),
        })
        .collect();
    let lots = lots
        .into_iter()
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
    Ok((buys, sells, lots))
}

/// Trade `i` of `history` as `at_trade_history` shows it, under its intent's client order id (a sell's
/// `close_trade_id` is the buy that opened its lot). One trade per intent; should an intent ever
/// record two, the later ones get `.2`, `.3`.
fn trade_record(run: &GridRun, history: &[GridTrade], i: usize) -> Result<TradeRecord, StoreError> {
    let t = &history[i];
    let n = 1 + history[..i].iter().filter(|e| e.intent == t.intent).count();
    let coid = |i| run.client_order_id(i);
    let id = match n {
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
}

/// `at_runs.format` of a state saved without its history, whose trades are the run's `at_run_trades`
/// rows (seq 0, 1, …; the state's `history_rows` says how many). Every save writes it; format 1, the
/// whole snapshot in the state (rows saved before migration 0010), is read as well, and its first
/// save moves the history out. An older vectura refuses this format by its number ("state format 2
/// while this vectura reads 1") instead of restoring a run without its history.
pub const FORMAT_TRADES_APART: u32 = 2;

/// What a save writes of the readable trigger and lot rows: all of them anew (`all`: the table rows
/// of the symbol deleted first), or the rows that changed since the last save (written over) and the
/// ids of those gone (deleted): a fill changes a few rows of a grid's dozens.
#[derive(Debug, Default)]
struct ViewChange {
    all: bool,
    buys: Vec<BuyTrigger>,
    sells: Vec<SellTrigger>,
    lots: Vec<OpenLot>,
    gone_buys: Vec<String>,
    gone_sells: Vec<String>,
    gone_lots: Vec<String>,
}

/// Which entries of `before` are gone from `now` (their keys) and which of `now` are new or changed
/// (their indices).
fn changes<K: Copy + Eq + std::hash::Hash, T: Copy + PartialEq>(
    before: &[T],
    now: &[T],
    key: impl Fn(&T) -> K,
) -> (Vec<K>, Vec<usize>) {
    if before == now {
        return (Vec::new(), Vec::new());
    }
    let was: std::collections::HashMap<K, T> = before.iter().map(|t| (key(t), *t)).collect();
    let is: std::collections::HashSet<K> = now.iter().map(&key).collect();
    let gone = before
        .iter()
        .map(&key)
        .filter(|k| !is.contains(k))
        .collect();
    let put = (0..now.len())
        .filter(|&i| was.get(&key(&now[i])) != Some(&now[i]))
        .collect();
    (gone, put)
}

impl ViewChange {
    /// The rows that changed from what `before` shows to what the grid of `run` (shown as `now`) does.
    fn between(run: &GridRun, before: &Shown, now: &Shown) -> Result<ViewChange, StoreError> {
        let g = run.grid();
        let (gone_b, put_b) = changes(&before.buys, &now.buys, |t| t.0);
        let (gone_s, put_s) = changes(&before.sells, &now.sells, |t| t.0);
        let (gone_l, put_l) = changes(&before.lots, &now.lots, |t| t.0);
        let all_buys: Vec<_> = if put_b.is_empty() {
            Vec::new()
        } else {
            g.buy_triggers().collect()
        };
        let (buys, sells, lots) = shown_rows(
            run,
            put_b.iter().map(|&i| all_buys[i]),
            put_s.iter().map(|&i| &g.sell_triggers()[i]),
            put_l.iter().map(|&i| &g.lots()[i]),
        )?;
        check_shown(&buys, &sells, &lots)?;
        Ok(ViewChange {
            all: false,
            buys,
            sells,
            lots,
            gone_buys: gone_b.iter().map(u64::to_string).collect(),
            gone_sells: gone_s.iter().map(u64::to_string).collect(),
            gone_lots: gone_l.iter().map(|&i| run.client_order_id(i)).collect(),
        })
    }
}

/// The state row of a save: the snapshot (its `history` empty) and how many trades are stored apart.
#[derive(Serialize)]
struct StateRow<'a, S: Serialize> {
    #[serde(flatten)]
    snapshot: &'a S,
    history_rows: usize,
}

/// What one run's readable trigger and lot rows show, as compared between saves (prices as bits, so
/// any change at all is a change).
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    buys: Vec<(u64, u64, Dir)>,
    sells: Vec<(u64, u64, u64, IntentId)>,
    lots: Vec<(IntentId, u64, u64, i64)>,
}

fn shown_buy(t: &vectura_strategy::join::BuyTrigger) -> (u64, u64, Dir) {
    (t.id, t.price.to_bits(), t.dir)
}

fn shown_sell(t: &vectura_strategy::grid::SellTrigger) -> (u64, u64, u64, IntentId) {
    (t.id, t.price.to_bits(), t.shares.to_bits(), t.lot)
}

fn shown_lot(l: &vectura_strategy::grid::Lot) -> (IntentId, u64, u64, i64) {
    (l.id, l.price.to_bits(), l.shares.to_bits(), l.opened)
}

impl Shown {
    fn of(g: &vectura_strategy::grid::Grid) -> Shown {
        Shown {
            buys: g.buy_triggers().map(shown_buy).collect(),
            sells: g.sell_triggers().iter().map(shown_sell).collect(),
            lots: g.lots().iter().map(shown_lot).collect(),
        }
    }

    /// Whether the grid's triggers and lots are still these (compared in place, nothing allocated).
    fn same(&self, g: &vectura_strategy::grid::Grid) -> bool {
        self.buys
            .iter()
            .copied()
            .eq(g.buy_triggers().map(shown_buy))
            && self
                .sells
                .iter()
                .copied()
                .eq(g.sell_triggers().iter().map(shown_sell))
            && self.lots.iter().copied().eq(g.lots().iter().map(shown_lot))
    }
}

/// What the last save of one run through [`Store::save_grid`] (or its siblings) wrote, so that the
/// next writes only what changed: the state row every time (small: the history is not in it), the
/// trades the history gained since, and the readable trigger and lot rows only when they differ
/// from those written. A new one ([`SavedRun::default`]) knows nothing: its first save asks the
/// database how many trades it holds and writes the readable rows anew. A failed save forgets what
/// it knew (the next starts over the same way), so it never trusts a write that did not commit.
/// Keep one per run, from the run's load or creation on; it is only a cache of the database.
#[derive(Debug, Default)]
pub struct SavedRun {
    /// The run and symbol key this describes (another run's save starts over).
    run: Option<(RunId, String)>,
    /// Trades of the history stored in `at_run_trades`.
    trades: Option<usize>,
    /// What the readable trigger and lot rows show.
    shown: Option<Shown>,
}

impl SavedRun {
    fn forget(&mut self) {
        *self = SavedRun::default();
    }
}

/// One grid save, made from the run before the transaction (so the save's future holds no reference
/// to the grid, which is not `Sync`): the state without its history, the readable rows when they
/// changed, and the readable records of the trades that may be new.
struct GridSave<'a> {
    run_id: &'a RunId,
    sym: String,
    snapshot: GridSnapshot,
    history: &'a [GridTrade],
    /// The readable trigger and lot rows to write, when they differ from those `SavedRun` says were
    /// written.
    rows: Option<ViewChange>,
    /// What those rows show, for the `SavedRun` once they are committed.
    shown: Option<Shown>,
    /// `at_trade_history` records of the history from trade `records_from` on (the trades stored, when
    /// known; all of them otherwise).
    records: Vec<TradeRecord>,
    records_from: usize,
}

impl<'a> GridSave<'a> {
    fn of(saved: &mut SavedRun, run: &'a GridRun) -> Result<GridSave<'a>, StoreError> {
        if saved.run.as_ref().is_none_or(|(id, _)| id != run.run()) {
            saved.forget();
            saved.run = Some((run.run().clone(), symbol_key(run.symbol())?));
        }
        let sym = saved.run.as_ref().map_or_else(String::new, |r| r.1.clone());
        let g = run.grid();
        let (rows, shown) = match &saved.shown {
            Some(s) if s.same(g) => (None, None),
            Some(before) => {
                let now = Shown::of(g);
                (Some(ViewChange::between(run, before, &now)?), Some(now))
            }
            None => {
                let (buys, sells, lots) =
                    shown_rows(run, g.buy_triggers(), g.sell_triggers(), g.lots())?;
                check_shown(&buys, &sells, &lots)?;
                let all = ViewChange {
                    all: true,
                    buys,
                    sells,
                    lots,
                    ..ViewChange::default()
                };
                (Some(all), Some(Shown::of(g)))
            }
        };
        let history = g.history();
        let from = saved.trades.unwrap_or(0).min(history.len());
        let records = (from..history.len())
            .map(|i| trade_record(run, history, i))
            .collect::<Result<_, _>>()?;
        Ok(GridSave {
            run_id: run.run(),
            sym,
            snapshot: g.snapshot_without_history(),
            history,
            rows,
            shown,
            records,
            records_from: from,
        })
    }
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

fn check_account(run: &RunId, account: &str) -> Result<(), StoreError> {
    if account.is_empty() {
        return Err(StoreError::Invalid(format!(
            "at_runs: account for run {run} is empty: give the broker account id"
        )));
    }
    Ok(())
}

fn check_execution(run: &RunId, x: Option<&ExecutionRecord>) -> Result<(), StoreError> {
    if let Some(x) = x {
        if x.execution_id.is_empty() {
            return Err(StoreError::Invalid(format!(
                "at_executions: execution_id for run {run} is empty: give the broker's execution id"
            )));
        }
        finite("at_executions", "qty", &x.execution_id, x.qty)?;
        finite("at_executions", "price", &x.execution_id, x.price)?;
    }
    Ok(())
}

fn check_order(symbol: &str, order: &OrderRow) -> Result<(), StoreError> {
    let target = format!("{symbol} order {}", order.client_order_id);
    if order.client_order_id.is_empty() {
        return Err(StoreError::Invalid(format!(
            "at_orders: client_order_id of {target} is empty: give the intent's client order id"
        )));
    }
    finite("at_orders", "qty", &target, order.qty)
}

fn check_shown(
    buys: &[BuyTrigger],
    sells: &[SellTrigger],
    lots: &[OpenLot],
) -> Result<(), StoreError> {
    for b in buys {
        finite("at_to_buy", "at_price", &b.id, b.at_price)?;
    }
    for s in sells {
        finite("at_to_sell", "at_price", &s.id, s.at_price)?;
        finite("at_to_sell", "shares", &s.id, s.shares)?;
    }
    for l in lots {
        finite("at_open_trades", "price", &l.id, l.price)?;
        finite("at_open_trades", "shares", &l.id, l.shares)?;
    }
    Ok(())
}

fn check_state(st: &RunState) -> Result<String, StoreError> {
    let sym = symbol_key(&st.symbol)?;
    check_account(&st.run_id, &st.account)?;
    check_shown(&st.view.buys, &st.view.sells, &st.view.lots)?;
    for t in &st.view.trades {
        finite("at_trade_history", "price", &t.id, t.price)?;
        finite("at_trade_history", "shares", &t.id, t.shares)?;
    }
    Ok(sym)
}

/// One save's rows, for [`write_run!`].
struct Write<'a> {
    /// The symbol's key (upper case).
    sym: &'a str,
    run_id: &'a str,
    account: &'a str,
    strategy: &'a str,
    create: bool,
    execution: Option<&'a ExecutionRecord>,
    order: Option<&'a OrderRow>,
    /// The readable trigger and lot rows to write, when any.
    shown: Option<&'a ViewChange>,
    /// How many trades of the history are stored, when known (asked of the database otherwise).
    trades: Option<usize>,
}

/// The body of a save inside transaction `$tx`: the run row (insert or update, with `$state`), the
/// execution, the order intent, the readable trigger and lot rows when given, and the trades of
/// `$history` not stored yet (each into `at_run_trades` and, as `$records` shows them from trade
/// `$from` on, into `at_trade_history`). Written once as a macro so that it is type-checked against
/// both backends.
macro_rules! write_run {
    ($tx:expr, $w:expr, $state:expr, $history:expr, $records:expr, $from:expr, $is_pg:expr) => {{
        let w: &Write<'_> = $w;
        let sym: &str = w.sym;
        let run = w.run_id;
        if $is_pg {
            // Two saves for one symbol must not interleave their delete-and-insert of the view rows.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("vectura.triggers.{sym}"))
                .execute(&mut *$tx)
                .await
                .map_err(query_err("locking", "at_runs", sym))?;
        }
        let state = Json($state);
        let format = i64::from(FORMAT_TRADES_APART);
        if w.create {
            let r = sqlx::query(
                "INSERT INTO at_runs (symbol, run_id, account, strategy, format, state, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'active')",
            )
            .bind(sym)
            .bind(run)
            .bind(w.account)
            .bind(w.strategy)
            .bind(format)
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
            .bind(w.account)
            .bind(state)
            .bind(format)
            .bind(w.strategy)
            .execute(&mut *$tx)
            .await
            .map_err(query_err("updating", "at_runs", format!("run {run}")))?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::Invalid(format!(
                    "at_runs: no active run {run} of {sym} on account {} is stored: create it with create_run (an ended run is not saved again)",
                    w.account
                )));
            }
        }
        if let Some(x) = w.execution {
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
        if let Some(o) = w.order {
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
        if let Some(v) = w.shown {
            if v.all {
                for table in ["at_to_buy", "at_to_sell", "at_open_trades"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE symbol = $1"))
                        .bind(sym)
                        .execute(&mut *$tx)
                        .await
                        .map_err(query_err("clearing", table, sym))?;
                }
            }
            for (table, gone) in [
                ("at_to_buy", &v.gone_buys),
                ("at_to_sell", &v.gone_sells),
                ("at_open_trades", &v.gone_lots),
            ] {
                for id in gone {
                    sqlx::query(&format!("DELETE FROM {table} WHERE symbol = $1 AND id = $2"))
                        .bind(sym)
                        .bind(id)
                        .execute(&mut *$tx)
                        .await
                        .map_err(query_err("deleting from", table, format!("{sym} row {id}")))?;
                }
            }
            for b in &v.buys {
                sqlx::query(
                    "INSERT INTO at_to_buy (symbol, id, at_price, below_or_higher) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (symbol, id) DO UPDATE SET at_price = excluded.at_price, \
                     below_or_higher = excluded.below_or_higher",
                )
                .bind(sym)
                .bind(&b.id)
                .bind(b.at_price)
                .bind(&b.below_or_higher)
                .execute(&mut *$tx)
                .await
                .map_err(query_err("writing", "at_to_buy", format!("{sym} buy trigger {}", b.id)))?;
            }
            for s in &v.sells {
                sqlx::query(
                    "INSERT INTO at_to_sell (symbol, id, at_price, below_or_higher, shares, trade_id) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (symbol, id) DO UPDATE SET \
                     at_price = excluded.at_price, below_or_higher = excluded.below_or_higher, \
                     shares = excluded.shares, trade_id = excluded.trade_id",
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
            for l in &v.lots {
                sqlx::query(
                    "INSERT INTO at_open_trades (symbol, id, timestamp, price, shares) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (symbol, id) DO UPDATE SET timestamp = excluded.timestamp, \
                     price = excluded.price, shares = excluded.shares",
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
        }
        // The history is append-only: the trades not stored yet are those after the stored ones.
        let history = $history;
        let stored = match w.trades {
            Some(n) => n,
            None => {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COALESCE(MAX(seq) + 1, 0) FROM at_run_trades WHERE run_id = $1",
                )
                .bind(run)
                .fetch_one(&mut *$tx)
                .await
                .map_err(query_err("reading", "at_run_trades", format!("run {run}")))?;
                usize::try_from(n).unwrap_or(usize::MAX)
            }
        };
        if stored > history.len() {
            return Err(StoreError::Invalid(format!(
                "at_run_trades: run {run} of {sym} has {stored} trades stored, the state saved only {}: \
                 the state is older than the stored one (another process saving this run? stop it)",
                history.len()
            )));
        }
        for (i, trade) in history.iter().enumerate().skip(stored) {
            let records: &[TradeRecord] = $records;
            let Some(t) = i.checked_sub($from).and_then(|k| records.get(k)) else {
                return Err(StoreError::Invalid(format!(
                    "at_run_trades: run {run} of {sym} has {stored} trades stored, fewer than the {} its last save wrote: \
                     the database was changed behind this process (restored from a backup?): restart it",
                    $from
                )));
            };
            finite("at_trade_history", "price", &t.id, t.price)?;
            finite("at_trade_history", "shares", &t.id, t.shares)?;
            sqlx::query(
                "INSERT INTO at_run_trades (symbol, run_id, seq, trade) VALUES ($1, $2, $3, $4)",
            )
            .bind(sym)
            .bind(run)
            .bind(i as i64)
            .bind(Json(trade))
            .execute(&mut *$tx)
            .await
            .map_err(query_err("writing", "at_run_trades", format!("run {run} trade {i}")))?;
            // A run saved before migration 0010 has its trades here already: written again, unchanged.
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
        check_order(&st.symbol, order)?;
        self.write_run(st, false, None, Some(order), None).await
    }

    /// Saves a grid run as [`Store::save_run`] does, writing only what changed since the save `saved`
    /// describes (see [`SavedRun`]): the live trader's save, every bar.
    pub fn save_grid<'a>(
        &'a self,
        saved: &'a mut SavedRun,
        run: &'a GridRun,
        account: &'a str,
        execution: Option<&'a ExecutionRecord>,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'a {
        let save = GridSave::of(saved, run);
        self.write_grid(saved, save, account, execution, None, None)
    }

    /// [`Store::save_grid`] with a hook inside the transaction, as [`Store::save_run_with_hook`].
    pub fn save_grid_with_hook<'a>(
        &'a self,
        saved: &'a mut SavedRun,
        run: &'a GridRun,
        account: &'a str,
        execution: Option<&'a ExecutionRecord>,
        before_commit: &'a (dyn Fn() -> bool + Send + Sync),
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'a {
        let save = GridSave::of(saved, run);
        self.write_grid(saved, save, account, execution, None, Some(before_commit))
    }

    /// [`Store::save_grid`] with a new order intent, in one transaction, as
    /// [`Store::save_run_with_order`].
    pub fn save_grid_with_order<'a>(
        &'a self,
        saved: &'a mut SavedRun,
        run: &'a GridRun,
        account: &'a str,
        order: &'a OrderRow,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'a {
        let save = check_order(run.symbol(), order).and_then(|()| GridSave::of(saved, run));
        self.write_grid(saved, save, account, None, Some(order), None)
    }

    async fn write_grid(
        &self,
        saved: &mut SavedRun,
        save: Result<GridSave<'_>, StoreError>,
        account: &str,
        execution: Option<&ExecutionRecord>,
        order: Option<&OrderRow>,
        before_commit: Option<&(dyn Fn() -> bool + Send + Sync)>,
    ) -> Result<(), StoreError> {
        let save = match save {
            Ok(s) => s,
            Err(e) => {
                saved.forget();
                return Err(e);
            }
        };
        check_account(save.run_id, account)?;
        check_execution(save.run_id, execution)?;
        let state = StateRow {
            snapshot: &save.snapshot,
            history_rows: save.history.len(),
        };
        let w = Write {
            sym: &save.sym,
            run_id: save.run_id.as_str(),
            account,
            strategy: "grid",
            create: false,
            execution,
            order,
            shown: save.rows.as_ref(),
            trades: saved.trades,
        };
        let r = self
            .commit_write(
                &w,
                &state,
                save.history,
                &save.records,
                save.records_from,
                before_commit,
            )
            .await;
        match r {
            Ok(()) => {
                saved.trades = Some(save.history.len());
                if save.shown.is_some() {
                    saved.shown = save.shown;
                }
                Ok(())
            }
            Err(e) => {
                saved.forget();
                Err(e)
            }
        }
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
        check_execution(&st.run_id, execution)?;
        // The history goes to at_run_trades; the state row keeps the rest.
        let mut snapshot = st.snapshot.clone();
        let history = match snapshot.get_mut("history") {
            Some(serde_json::Value::Array(h)) => std::mem::take(h),
            _ => Vec::new(),
        };
        if history.len() != st.view.trades.len() {
            return Err(StoreError::Invalid(format!(
                "at_trade_history: run {} shows {} trades for a history of {}: make the state with RunState::of_grid",
                st.run_id,
                st.view.trades.len(),
                history.len()
            )));
        }
        let state = StateRow {
            snapshot: &snapshot,
            history_rows: history.len(),
        };
        let all = ViewChange {
            all: true,
            buys: st.view.buys.clone(),
            sells: st.view.sells.clone(),
            lots: st.view.lots.clone(),
            ..ViewChange::default()
        };
        let w = Write {
            sym: &sym,
            run_id: st.run_id.as_str(),
            account: &st.account,
            strategy: &st.strategy,
            create,
            execution,
            order,
            shown: Some(&all),
            trades: if create { Some(0) } else { None },
        };
        self.commit_write(&w, &state, &history, &st.view.trades, 0, before_commit)
            .await
    }

    /// Runs one save in a write transaction (the hook, when given, just before its commit).
    async fn commit_write<S: Serialize + Sync, T: Serialize + Sync>(
        &self,
        w: &Write<'_>,
        state: &StateRow<'_, S>,
        history: &[T],
        records: &[TradeRecord],
        records_from: usize,
        before_commit: Option<&(dyn Fn() -> bool + Send + Sync)>,
    ) -> Result<(), StoreError> {
        let is_pg = matches!(self, Store::Postgres(_));
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await.map_err(query_err(
                "starting to save",
                "at_runs",
                format!("run {}", w.run_id),
            ))?;
            write_run!(tx, w, state, history, records, records_from, is_pg);
            if before_commit.is_some_and(|h| !h()) {
                // Dropping the transaction rolls it back.
                return Err(StoreError::Interrupted {
                    run_id: w.run_id.to_string(),
                });
            }
            tx.commit().await.map_err(query_err(
                "committing",
                "at_runs",
                format!("run {}", w.run_id),
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
            let trades = if format == i64::from(FORMAT_TRADES_APART) {
                let err = || query_err("reading", "at_run_trades", format!("run {run_id}"));
                sqlx::query("SELECT seq, trade FROM at_run_trades WHERE run_id = $1 ORDER BY seq")
                    .bind(&run_id)
                    .fetch_all(p)
                    .await
                    .map_err(err())?
                    .iter()
                    .map(|r| {
                        let seq: i64 = r.try_get("seq")?;
                        let t: Json<serde_json::Value> = r.try_get("trade")?;
                        Ok((seq, t.0))
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(err())?
            } else {
                Vec::new()
            };
            (
                run_id, state.0, format, status, symbol, account, strategy, execs, trades,
            )
        });
        let (run_id, mut snapshot, format, status, symbol, account, strategy, executions, trades) =
            row;
        let bad = |detail: String| StoreError::BadRow {
            table: "at_runs",
            target: format!("run {run_id}"),
            detail,
        };
        let format = if format == i64::from(FORMAT_TRADES_APART) {
            join_history(&mut snapshot, trades).map_err(|detail| StoreError::BadRow {
                table: "at_run_trades",
                target: format!("run {run_id}"),
                detail,
            })?
        } else {
            format
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

/// Puts a run's trades (`at_run_trades` rows, by seq) back into its state, as the snapshot's
/// `history`; returns the snapshot's own format. What is wrong, when the rows are not the state's
/// trades 0, 1, … `history_rows - 1` (a row missing or extra: restored from a backup taken between
/// the two tables?).
fn join_history(
    snapshot: &mut serde_json::Value,
    trades: Vec<(i64, serde_json::Value)>,
) -> Result<i64, String> {
    let fix = "restore at_runs and at_run_trades from the same backup";
    let Some(obj) = snapshot.as_object_mut() else {
        return Err("a state that is not a JSON object".into());
    };
    let want = obj
        .remove("history_rows")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| {
            format!("a state of format {FORMAT_TRADES_APART} without history_rows: {fix}")
        })?;
    if trades.len() as u64 != want || trades.iter().enumerate().any(|(i, t)| t.0 != i as i64) {
        return Err(format!(
            "{} trade rows (seq {:?}…) for a state of {want} trades (seq 0 to {}): {fix}",
            trades.len(),
            trades.first().map(|t| t.0),
            want as i64 - 1
        ));
    }
    obj.insert(
        "history".into(),
        serde_json::Value::Array(trades.into_iter().map(|t| t.1).collect()),
    );
    obj.get("format")
        .and_then(|v| v.as_i64())
        .ok_or_else(|| format!("a state without its snapshot's format: {fix}"))
}
