//! A symbol's trading settings saved together with their audit trail (`at_algo_audit`): the grid
//! (`at_algo_config`), the enabled flag and risk limits (`at_trade_controls`) and one audit row per
//! changed field, in one transaction, so a setting never changes without its record.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::controls::RiskLimits;
use crate::error::query_err;
use crate::{finite, on_pool, symbol_key, AlgoConfig, BeginWrite, Store, StoreError};

/// Inserts one audit row in the transaction `tx`.
macro_rules! insert_audit {
    ($tx:ident, $sym:expr, $c:expr, $id:expr) => {
        sqlx::query(
            "INSERT INTO at_algo_audit (symbol, id, changed_at, username, field, old_value, new_value) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind($sym)
        .bind($id)
        .bind($c.changed_at)
        .bind(&$c.username)
        .bind(&$c.field)
        .bind(&$c.old_value)
        .bind(&$c.new_value)
        .execute(&mut *$tx)
        .await
        .map_err(query_err("writing", "at_algo_audit", $sym))?
    };
}

/// One audited change.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub symbol: String,
    pub changed_at: DateTime<Utc>,
    pub username: String,
    /// The field's name as the form calls it (`capital_pct`, `enabled`, `max_daily_loss`, `halt`, …).
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

/// A symbol's settings as the algorithm page saves them.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolSettings {
    pub algo: AlgoConfig,
    pub enabled: bool,
    pub limits: RiskLimits,
}

impl Store {
    /// Saves `settings` for `symbol` and `changes` (their audit rows) in one transaction. `batch`
    /// makes the rows' ids unique (a random token per save); a halt already set stays as it is.
    pub async fn save_symbol_settings(
        &self,
        symbol: &str,
        settings: &SymbolSettings,
        changes: &[AuditEntry],
        batch: &str,
    ) -> Result<(), StoreError> {
        let sym = symbol_key(symbol)?;
        let a = &settings.algo;
        for (name, v) in [
            ("capital_pct", a.capital_pct),
            ("buy_below_pct", a.buy_below_pct),
            ("sell_above_pct", a.sell_above_pct),
            ("buy_after_sell_pct", a.buy_after_sell_pct),
            ("cash_floor", a.cash_floor),
            ("order_gap_pct", a.order_gap_pct),
        ] {
            finite("at_algo_config", name, &sym, v)?;
        }
        let l = &settings.limits;
        for (name, v) in [
            ("max_order_notional", l.max_order_notional),
            ("max_daily_loss", l.max_daily_loss),
            ("max_position_value", l.max_position_value),
        ] {
            if let Some(v) = v {
                finite("at_trade_controls", name, &sym, v)?;
            }
        }
        on_pool!(self, |p| {
            let err = |what: &'static str| query_err(what, "at_algo_audit", sym.clone());
            let mut tx = p.begin_write().await.map_err(err("starting to save"))?;
            sqlx::query(
                "INSERT INTO at_algo_config (symbol, capital_pct, buy_below_pct, sell_above_pct, \
                 buy_after_sell_pct, cash_floor, order_gap_pct) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (symbol) DO UPDATE SET capital_pct = excluded.capital_pct, \
                 buy_below_pct = excluded.buy_below_pct, sell_above_pct = excluded.sell_above_pct, \
                 buy_after_sell_pct = excluded.buy_after_sell_pct, cash_floor = excluded.cash_floor, \
                 order_gap_pct = excluded.order_gap_pct, updated_at = CURRENT_TIMESTAMP",
            )
            .bind(&sym)
            .bind(a.capital_pct)
            .bind(a.buy_below_pct)
            .bind(a.sell_above_pct)
            .bind(a.buy_after_sell_pct)
            .bind(a.cash_floor)
            .bind(a.order_gap_pct)
            .execute(&mut *tx)
            .await
            .map_err(query_err("writing", "at_algo_config", &sym))?;
            sqlx::query(
                "INSERT INTO at_trade_controls (symbol, enabled, max_order_notional, max_orders_per_day, \
                 max_daily_loss, max_position_value) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (symbol) DO UPDATE SET enabled = excluded.enabled, \
                 max_order_notional = excluded.max_order_notional, \
                 max_orders_per_day = excluded.max_orders_per_day, \
                 max_daily_loss = excluded.max_daily_loss, \
                 max_position_value = excluded.max_position_value, updated_at = CURRENT_TIMESTAMP",
            )
            .bind(&sym)
            .bind(settings.enabled as i32)
            .bind(l.max_order_notional)
            .bind(l.max_orders_per_day.map(i64::from))
            .bind(l.max_daily_loss)
            .bind(l.max_position_value)
            .execute(&mut *tx)
            .await
            .map_err(query_err("writing", "at_trade_controls", &sym))?;
            for (i, c) in changes.iter().enumerate() {
                insert_audit!(tx, &sym, c, format!("{batch}-{i:02}"));
            }
            tx.commit().await.map_err(err("committing"))
        })
    }

    /// Records one change made outside [`Store::save_symbol_settings`] (a halt, a resume).
    pub async fn record_audit(&self, entry: &AuditEntry, id: &str) -> Result<(), StoreError> {
        let sym = symbol_key(&entry.symbol)?;
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await.map_err(query_err(
                "starting to write",
                "at_algo_audit",
                &sym,
            ))?;
            insert_audit!(tx, &sym, entry, id.to_string());
            tx.commit()
                .await
                .map_err(query_err("committing", "at_algo_audit", &sym))
        })
    }

    /// The latest `limit` changes, newest first, of one symbol or (`None`) of all.
    pub async fn audit_entries(
        &self,
        symbol: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let sym = symbol.map(symbol_key).transpose()?;
        let err = || query_err("reading", "at_algo_audit", sym.clone().unwrap_or_default());
        on_pool!(self, |p| {
            let sql = if sym.is_some() {
                "SELECT symbol, changed_at, username, field, old_value, new_value FROM at_algo_audit \
                 WHERE symbol = $1 ORDER BY changed_at DESC, id DESC LIMIT $2"
            } else {
                "SELECT symbol, changed_at, username, field, old_value, new_value FROM at_algo_audit \
                 WHERE $1 = $1 ORDER BY changed_at DESC, id DESC LIMIT $2"
            };
            sqlx::query(sql)
                .bind(sym.clone().unwrap_or_default())
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
                .map_err(err())?
                .iter()
                .map(|r| {
                    Ok(AuditEntry {
                        symbol: r.try_get("symbol")?,
                        changed_at: r.try_get("changed_at")?,
                        username: r.try_get("username")?,
                        field: r.try_get("field")?,
                        old_value: r.try_get("old_value")?,
                        new_value: r.try_get("new_value")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(err())
        })
    }
}
