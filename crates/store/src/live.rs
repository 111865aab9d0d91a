//! The live-trading tables: `at_algo_config`, `at_trade_history`, `at_to_buy`, `at_to_sell`,
//! `at_open_trades`, `at_orders`, `at_trade_summary`. Every row belongs to one symbol.

use crate::BeginWrite;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use sqlx::Row;
use vectura_core::Side;

use crate::error::query_err;
use crate::{
    finite, on_pool, symbol_key, AlgoConfig, BuyTrigger, OpenLot, OrderRow, OrderUpdate,
    SellTrigger, Store, StoreError, TradeRecord, TradeSummary, Triggers,
};

fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn parse_side(table: &'static str, target: &str, s: &str) -> Result<Side, StoreError> {
    match s {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        other => Err(StoreError::BadRow {
            table,
            target: target.to_string(),
            detail: format!("the side {other:?} (buy or sell expected)"),
        }),
    }
}

fn not_empty(table: &str, column: &str, target: &str, v: &str) -> Result<(), StoreError> {
    if v.is_empty() {
        Err(StoreError::Invalid(format!(
            "{table}: {column} for {target} is empty: give an id"
        )))
    } else {
        Ok(())
    }
}

impl Store {
    /// The symbol's grid parameters, if stored.
    pub async fn algo_config(&self, symbol: &str) -> Result<Option<AlgoConfig>, StoreError> {
        let sym = symbol_key(symbol)?;
        let err = || query_err("reading", "at_algo_config", &sym);
        on_pool!(self, |p| {
            let row = sqlx::query(
                "SELECT capital_pct, buy_below_pct, sell_above_pct, buy_after_sell_pct, cash_floor, \
                 order_gap_pct FROM at_algo_config WHERE symbol = $1",
            )
            .bind(&sym)
            .fetch_optional(p)
            .await
            .map_err(err())?;
            row.map(|r| algo_config_of(&r)).transpose().map_err(err())
        })
    }

    /// Every stored symbol's grid parameters, by symbol (one query: the trader reads them all every
    /// step).
    pub async fn algo_configs(
        &self,
    ) -> Result<std::collections::BTreeMap<String, AlgoConfig>, StoreError> {
        let err = || query_err("reading", "at_algo_config", "every symbol");
        on_pool!(self, |p| {
            sqlx::query(
                "SELECT symbol, capital_pct, buy_below_pct, sell_above_pct, buy_after_sell_pct, \
                 cash_floor, order_gap_pct FROM at_algo_config",
            )
            .fetch_all(p)
            .await
            .map_err(err())?
            .iter()
            .map(|r| Ok((r.try_get("symbol")?, algo_config_of(r)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(err())
        })
    }

    /// Stores the symbol's grid parameters (replacing any).
    pub async fn upsert_algo_config(&self, symbol: &str, c: &AlgoConfig) -> Result<(), StoreError> {
        let sym = symbol_key(symbol)?;
        for (name, v) in [
            ("capital_pct", c.capital_pct),
            ("buy_below_pct", c.buy_below_pct),
            ("sell_above_pct", c.sell_above_pct),
            ("buy_after_sell_pct", c.buy_after_sell_pct),
            ("cash_floor", c.cash_floor),
            ("order_gap_pct", c.order_gap_pct),
        ] {
            finite("at_algo_config", name, &sym, v)?;
        }
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO at_algo_config (symbol, capital_pct, buy_below_pct, sell_above_pct, \
                 buy_after_sell_pct, cash_floor, order_gap_pct) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (symbol) DO UPDATE SET capital_pct = excluded.capital_pct, \
                 buy_below_pct = excluded.buy_below_pct, sell_above_pct = excluded.sell_above_pct, \
                 buy_after_sell_pct = excluded.buy_after_sell_pct, cash_floor = excluded.cash_floor, \
                 order_gap_pct = excluded.order_gap_pct, updated_at = CURRENT_TIMESTAMP",
            )
            .bind(&sym)
            .bind(c.capital_pct)
            .bind(c.buy_below_pct)
            .bind(c.sell_above_pct)
            .bind(c.buy_after_sell_pct)
            .bind(c.cash_floor)
            .bind(c.order_gap_pct)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(query_err("writing", "at_algo_config", &sym))
        })
    }

    /// Appends an executed trade to the symbol's history (its id must be new).
    pub async fn insert_trade(&self, symbol: &str, t: &TradeRecord) -> Result<(), StoreError> {
        let sym = symbol_key(symbol)?;
        let target = format!("{sym} trade {}", t.id);
        not_empty("at_trade_history", "id", &target, &t.id)?;
        finite("at_trade_history", "shares", &target, t.shares)?;
        finite("at_trade_history", "price", &target, t.price)?;
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO at_trade_history (id, symbol, timestamp, trade_type, shares, price, close_trade_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&t.id)
            .bind(&sym)
            .bind(t.timestamp)
            .bind(side_str(t.side))
            .bind(t.shares)
            .bind(t.price)
            .bind(&t.close_trade_id)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(query_err("writing", "at_trade_history", &target))
        })
    }

    /// The symbol's trades, oldest first.
    pub async fn trades(&self, symbol: &str) -> Result<Vec<TradeRecord>, StoreError> {
        let sym = symbol_key(symbol)?;
        let err = || query_err("reading", "at_trade_history", &sym);
        let rows: Vec<(TradeRecord, String)> = on_pool!(self, |p| {
            sqlx::query(
                "SELECT id, timestamp, trade_type, shares, price, close_trade_id FROM at_trade_history \
                 WHERE symbol = $1 ORDER BY timestamp, id",
            )
            .bind(&sym)
            .fetch_all(p)
            .await
            .map_err(err())?
            .iter()
            .map(|r| {
                Ok((
                    TradeRecord {
                        id: r.try_get("id")?,
                        timestamp: r.try_get("timestamp")?,
                        side: Side::Buy,
                        shares: r.try_get("shares")?,
                        price: r.try_get("price")?,
                        close_trade_id: r.try_get("close_trade_id")?,
                    },
                    r.try_get("trade_type")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(err())?
        });
        rows.into_iter()
            .map(|(mut t, side)| {
                t.side = parse_side("at_trade_history", &format!("{sym} trade {}", t.id), &side)?;
                Ok(t)
            })
            .collect()
    }

    /// Replaces all of the symbol's buy and sell triggers, in one transaction.
    pub async fn replace_triggers(
        &self,
        symbol: &str,
        buys: &[BuyTrigger],
        sells: &[SellTrigger],
    ) -> Result<(), StoreError> {
        let sym = symbol_key(symbol)?;
        for b in buys {
            let target = format!("{sym} buy trigger {}", b.id);
            not_empty("at_to_buy", "id", &target, &b.id)?;
            finite("at_to_buy", "at_price", &target, b.at_price)?;
        }
        for s in sells {
            let target = format!("{sym} sell trigger {}", s.id);
            not_empty("at_to_sell", "id", &target, &s.id)?;
            finite("at_to_sell", "at_price", &target, s.at_price)?;
            finite("at_to_sell", "shares", &target, s.shares)?;
        }
        let is_postgres = matches!(self, Store::Postgres(_));
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await.map_err(query_err(
                "starting to replace",
                "at_to_buy",
                &sym,
            ))?;
            if is_postgres {
                // Two replacements for one symbol must not interleave (each would delete only
                // rows it can see, and both sets would remain): serialise them per symbol.
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind(format!("vectura.triggers.{sym}"))
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("locking", "at_to_buy", &sym))?;
            }
            for table in ["at_to_buy", "at_to_sell"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE symbol = $1"))
                    .bind(&sym)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("clearing", table, &sym))?;
            }
            for b in buys {
                sqlx::query(
                    "INSERT INTO at_to_buy (symbol, id, at_price, below_or_higher) VALUES ($1, $2, $3, $4)",
                )
                .bind(&sym)
                .bind(&b.id)
                .bind(b.at_price)
                .bind(&b.below_or_higher)
                .execute(&mut *tx)
                .await
                .map_err(query_err(
                    "writing",
                    "at_to_buy",
                    format!("{sym} buy trigger {}", b.id),
                ))?;
            }
            for s in sells {
                sqlx::query(
                    "INSERT INTO at_to_sell (symbol, id, at_price, below_or_higher, shares, trade_id) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&sym)
                .bind(&s.id)
                .bind(s.at_price)
                .bind(&s.below_or_higher)
                .bind(s.shares)
                .bind(&s.trade_id)
                .execute(&mut *tx)
                .await
                .map_err(query_err(
                    "writing",
                    "at_to_sell",
                    format!("{sym} sell trigger {}", s.id),
                ))?;
            }
            tx.commit()
                .await
                .map_err(query_err("committing", "at_to_buy", &sym))
        })
    }

    /// The symbol's armed triggers, each list by price ascending (then id).
    pub async fn triggers(&self, symbol: &str) -> Result<Triggers, StoreError> {
        let sym = symbol_key(symbol)?;
        on_pool!(self, |p| {
            let err = || query_err("reading", "at_to_buy", &sym);
            let buys = sqlx::query(
                "SELECT id, at_price, below_or_higher FROM at_to_buy WHERE symbol = $1 ORDER BY at_price, id",
            )
            .bind(&sym)
            .fetch_all(p)
            .await
            .map_err(err())?
            .iter()
            .map(|r| {
                Ok(BuyTrigger {
                    id: r.try_get("id")?,
                    at_price: r.try_get("at_price")?,
                    below_or_higher: r.try_get("below_or_higher")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(err())?;
            let err = || query_err("reading", "at_to_sell", &sym);
            let sells = sqlx::query(
                "SELECT id, at_price, below_or_higher, shares, trade_id FROM at_to_sell \
                 WHERE symbol = $1 ORDER BY at_price, id",
            )
            .bind(&sym)
            .fetch_all(p)
            .await
            .map_err(err())?
            .iter()
            .map(|r| {
                Ok(SellTrigger {
                    id: r.try_get("id")?,
                    at_price: r.try_get("at_price")?,
                    below_or_higher: r.try_get("below_or_higher")?,
                    shares: r.try_get("shares")?,
                    trade_id: r.try_get("trade_id")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(err())?;
            Ok(Triggers { buys, sells })
        })
    }

    /// The symbol's open lots, oldest first.
    pub async fn open_lots(&self, symbol: &str) -> Result<Vec<OpenLot>, StoreError> {
        let sym = symbol_key(symbol)?;
        let err = || query_err("reading", "at_open_trades", &sym);
        on_pool!(self, |p| {
            sqlx::query(
                "SELECT id, timestamp, price, shares FROM at_open_trades WHERE symbol = $1 ORDER BY timestamp, id",
            )
            .bind(&sym)
            .fetch_all(p)
            .await
            .map_err(err())?
            .iter()
            .map(|r| {
                Ok(OpenLot {
                    id: r.try_get("id")?,
                    timestamp: r.try_get("timestamp")?,
                    price: r.try_get("price")?,
                    shares: r.try_get("shares")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(err())
        })
    }

    /// Stores an open lot (replacing the one with the same id).
    pub async fn upsert_open_lot(&self, symbol: &str, lot: &OpenLot) -> Result<(), StoreError> {
        let sym = symbol_key(symbol)?;
        let target = format!("{sym} lot {}", lot.id);
        not_empty("at_open_trades", "id", &target, &lot.id)?;
        finite("at_open_trades", "price", &target, lot.price)?;
        finite("at_open_trades", "shares", &target, lot.shares)?;
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO at_open_trades (symbol, id, timestamp, price, shares) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (symbol, id) DO UPDATE SET timestamp = excluded.timestamp, \
                 price = excluded.price, shares = excluded.shares",
            )
            .bind(&sym)
            .bind(&lot.id)
            .bind(lot.timestamp)
            .bind(lot.price)
            .bind(lot.shares)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(query_err("writing", "at_open_trades", &target))
        })
    }

    /// Removes an open lot; false when none had that id.
    pub async fn delete_open_lot(&self, symbol: &str, id: &str) -> Result<bool, StoreError> {
        let sym = symbol_key(symbol)?;
        on_pool!(self, |p| {
            sqlx::query("DELETE FROM at_open_trades WHERE symbol = $1 AND id = $2")
                .bind(&sym)
                .bind(id)
                .execute(p)
                .await
                .map(|r| r.rows_affected() > 0)
                .map_err(query_err(
                    "deleting from",
                    "at_open_trades",
                    format!("{sym} lot {id}"),
                ))
        })
    }

    /// Stores an order intent before it is submitted. A second intent with the same client order id is
    /// [`StoreError::DuplicateOrder`] (so a resubmission after a restart is detected).
    pub async fn insert_order_intent(&self, o: &OrderRow) -> Result<(), StoreError> {
        let sym = symbol_key(&o.symbol)?;
        let target = format!("{sym} order {}", o.client_order_id);
        not_empty("at_orders", "client_order_id", &target, &o.client_order_id)?;
        finite("at_orders", "qty", &target, o.qty)?;
        finite("at_orders", "filled_qty", &target, o.filled_qty)?;
        if let Some(px) = o.filled_avg_price {
            finite("at_orders", "filled_avg_price", &target, px)?;
        }
        let intent = o.intent.as_ref().map(Json);
        let result = on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO at_orders (client_order_id, symbol, side, qty, status, created_at, \
                 broker_order_id, filled_qty, filled_avg_price, intent, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&o.client_order_id)
            .bind(&sym)
            .bind(side_str(o.side))
            .bind(o.qty)
            .bind(&o.status)
            .bind(o.created_at)
            .bind(&o.broker_order_id)
            .bind(o.filled_qty)
            .bind(o.filled_avg_price)
            .bind(intent)
            .bind(&o.error)
            .execute(p)
            .await
            .map(|_| ())
        });
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                Err(StoreError::DuplicateOrder {
                    client_order_id: o.client_order_id.clone(),
                })
            }
            Err(e) => Err(query_err("writing", "at_orders", target)(e)),
        }
    }

    /// Applies a broker report to a stored order.
    pub async fn update_order(
        &self,
        client_order_id: &str,
        u: &OrderUpdate,
    ) -> Result<(), StoreError> {
        let target = format!("order {client_order_id}");
        finite("at_orders", "filled_qty", &target, u.filled_qty)?;
        if let Some(px) = u.filled_avg_price {
            finite("at_orders", "filled_avg_price", &target, px)?;
        }
        let updated = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE at_orders SET status = $2, broker_order_id = COALESCE($3, broker_order_id), \
                 filled_qty = $4, filled_avg_price = $5, error = $6, updated_at = CURRENT_TIMESTAMP \
                 WHERE client_order_id = $1",
            )
            .bind(client_order_id)
            .bind(&u.status)
            .bind(&u.broker_order_id)
            .bind(u.filled_qty)
            .bind(u.filled_avg_price)
            .bind(&u.error)
            .execute(p)
            .await
            .map_err(query_err("updating", "at_orders", &target))?
            .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::UnknownOrder {
                client_order_id: client_order_id.to_string(),
            });
        }
        Ok(())
    }

    /// One stored order.
    pub async fn order(&self, client_order_id: &str) -> Result<Option<OrderRow>, StoreError> {
        let target = format!("order {client_order_id}");
        Ok(self
            .orders_where("client_order_id = $1", &[client_order_id], "", &target)
            .await?
            .into_iter()
            .next())
    }

    /// The symbol's orders, oldest first.
    pub async fn orders(&self, symbol: &str) -> Result<Vec<OrderRow>, StoreError> {
        let sym = symbol_key(symbol)?;
        self.orders_where("symbol = $1", &[&sym], "", &sym).await
    }

    /// The orders where `cond` holds (its `$1`, `$2`, … bound to `values` in order), oldest first
    /// unless `order` (an `ORDER BY` and `LIMIT` tail) says otherwise.
    pub(crate) async fn orders_where(
        &self,
        cond: &str,
        values: &[&str],
        order: &str,
        target: &str,
    ) -> Result<Vec<OrderRow>, StoreError> {
        let err = || query_err("reading", "at_orders", target);
        let order = if order.is_empty() {
            "ORDER BY created_at, client_order_id"
        } else {
            order
        };
        let sql = format!(
            "SELECT client_order_id, symbol, side, qty, status, created_at, broker_order_id, filled_qty, \
             filled_avg_price, intent, error FROM at_orders WHERE {cond} {order}"
        );
        type Raw = (OrderRow, String);
        let rows: Vec<Raw> = on_pool!(self, |p| {
            let mut q = sqlx::query(&sql);
            for v in values {
                q = q.bind(*v);
            }
            q.fetch_all(p)
                .await
                .map_err(err())?
                .iter()
                .map(|r| {
                    let intent: Option<Json<serde_json::Value>> = r.try_get("intent")?;
                    Ok((
                        OrderRow {
                            client_order_id: r.try_get("client_order_id")?,
                            symbol: r.try_get("symbol")?,
                            side: Side::Buy,
                            qty: r.try_get("qty")?,
                            status: r.try_get("status")?,
                            created_at: r.try_get("created_at")?,
                            broker_order_id: r.try_get("broker_order_id")?,
                            filled_qty: r.try_get("filled_qty")?,
                            filled_avg_price: r.try_get("filled_avg_price")?,
                            intent: intent.map(|j| j.0),
                            error: r.try_get("error")?,
                        },
                        r.try_get("side")?,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(err())?
        });
        rows.into_iter()
            .map(|(mut o, side)| {
                o.side = parse_side("at_orders", &format!("order {}", o.client_order_id), &side)?;
                Ok(o)
            })
            .collect()
    }

    /// The symbol's live-trading summary, if initialised.
    pub async fn trade_summary(&self, symbol: &str) -> Result<Option<TradeSummary>, StoreError> {
        let sym = symbol_key(symbol)?;
        let err = || query_err("reading", "at_trade_summary", &sym);
        on_pool!(self, |p| {
            let row = sqlx::query(
                "SELECT max_cash, max_equity, splits_last_updated_at, splits, pdt_days, session_start, \
                 session_end FROM at_trade_summary WHERE symbol = $1",
            )
            .bind(&sym)
            .fetch_optional(p)
            .await
            .map_err(err())?;
            row.map(|r| {
                let splits: Json<serde_json::Value> = r.try_get("splits")?;
                let pdt_days: Json<serde_json::Value> = r.try_get("pdt_days")?;
                let splits_last_updated_at: Option<NaiveDate> =
                    r.try_get("splits_last_updated_at")?;
                let session_start: Option<DateTime<Utc>> = r.try_get("session_start")?;
                Ok(TradeSummary {
                    max_cash: r.try_get("max_cash")?,
                    max_equity: r.try_get("max_equity")?,
                    splits_last_updated_at,
                    splits: splits.0,
                    pdt_days: pdt_days.0,
                    session_start,
                    session_end: r.try_get("session_end")?,
                })
            })
            .transpose()
            .map_err(err())
        })
    }

    /// Stores the symbol's live-trading summary (replacing it).
    pub async fn upsert_trade_summary(
        &self,
        symbol: &str,
        s: &TradeSummary,
    ) -> Result<(), StoreError> {
        let sym = symbol_key(symbol)?;
        finite("at_trade_summary", "max_cash", &sym, s.max_cash)?;
        finite("at_trade_summary", "max_equity", &sym, s.max_equity)?;
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO at_trade_summary (symbol, max_cash, max_equity, splits_last_updated_at, splits, \
                 pdt_days, session_start, session_end) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (symbol) DO UPDATE SET max_cash = excluded.max_cash, \
                 max_equity = excluded.max_equity, splits_last_updated_at = excluded.splits_last_updated_at, \
                 splits = excluded.splits, pdt_days = excluded.pdt_days, \
                 session_start = excluded.session_start, session_end = excluded.session_end",
            )
            .bind(&sym)
            .bind(s.max_cash)
            .bind(s.max_equity)
            .bind(s.splits_last_updated_at)
            .bind(Json(&s.splits))
            .bind(Json(&s.pdt_days))
            .bind(s.session_start)
            .bind(s.session_end)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(query_err("writing", "at_trade_summary", &sym))
        })
    }
}

/// A row of `at_algo_config` as parameters, on either backend.
fn algo_config_of<R>(r: &R) -> Result<AlgoConfig, sqlx::Error>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> f64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(AlgoConfig {
        capital_pct: r.try_get("capital_pct")?,
        buy_below_pct: r.try_get("buy_below_pct")?,
        sell_above_pct: r.try_get("sell_above_pct")?,
        buy_after_sell_pct: r.try_get("buy_after_sell_pct")?,
        cash_floor: r.try_get("cash_floor")?,
        order_gap_pct: r.try_get("order_gap_pct")?,
    })
}
