//! The live runtime's per-symbol controls (`at_trade_controls`): enabled or not, risk limits, and a
//! halt that survives restarts.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::error::query_err;
use crate::{finite, on_pool, symbol_key, Store, StoreError};

/// Risk limits of one symbol; `None`: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RiskLimits {
    /// Largest notional (shares × decision price) of one order, dollars.
    pub max_order_notional: Option<f64>,
    /// Most orders submitted per New York trading day.
    pub max_orders_per_day: Option<u32>,
    /// Largest loss of a day before the symbol halts, dollars (positive).
    pub max_daily_loss: Option<f64>,
    /// Largest value of the position after a buy, dollars.
    pub max_position_value: Option<f64>,
}

/// A symbol's trading controls as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TradeControls {
    pub symbol: String,
    /// Traded by `vectura trade` at all.
    pub enabled: bool,
    pub limits: RiskLimits,
    /// Set while the symbol is halted: what differs and how to resolve it.
    pub halt_reason: Option<String>,
    pub halted_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Stores a symbol's enabled flag and limits (a halt stays as it is).
    pub async fn set_trade_controls(
        &self,
        symbol: &str,
        enabled: bool,
        limits: &RiskLimits,
    ) -> Result<(), StoreError> {
        let sym = symbol_key(symbol)?;
        for (name, v) in [
            ("max_order_notional", limits.max_order_notional),
            ("max_daily_loss", limits.max_daily_loss),
            ("max_position_value", limits.max_position_value),
        ] {
            if let Some(v) = v {
                finite("at_trade_controls", name, &sym, v)?;
            }
        }
        on_pool!(self, |p| {
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
            .bind(enabled as i32)
            .bind(limits.max_order_notional)
            .bind(limits.max_orders_per_day.map(i64::from))
            .bind(limits.max_daily_loss)
            .bind(limits.max_position_value)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(query_err("writing", "at_trade_controls", &sym))
        })
    }

    /// Every symbol with controls, enabled or not, by symbol.
    pub async fn trade_controls(&self) -> Result<Vec<TradeControls>, StoreError> {
        let err = || query_err("reading", "at_trade_controls", "every symbol");
        on_pool!(self, |p| {
            sqlx::query(
                "SELECT symbol, enabled, max_order_notional, max_orders_per_day, max_daily_loss, \
                 max_position_value, halt_reason, halted_at FROM at_trade_controls ORDER BY symbol",
            )
            .fetch_all(p)
            .await
            .map_err(err())?
            .iter()
            .map(|r| {
                let per_day: Option<i64> = r.try_get("max_orders_per_day")?;
                let enabled: i32 = r.try_get("enabled")?;
                Ok(TradeControls {
                    symbol: r.try_get("symbol")?,
                    enabled: enabled != 0,
                    limits: RiskLimits {
                        max_order_notional: r.try_get("max_order_notional")?,
                        max_orders_per_day: per_day.map(|n| n.clamp(0, u32::MAX as i64) as u32),
                        max_daily_loss: r.try_get("max_daily_loss")?,
                        max_position_value: r.try_get("max_position_value")?,
                    },
                    halt_reason: r.try_get("halt_reason")?,
                    halted_at: r.try_get("halted_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(err())
        })
    }

    /// One symbol's controls.
    pub async fn trade_control(&self, symbol: &str) -> Result<Option<TradeControls>, StoreError> {
        let sym = symbol_key(symbol)?;
        Ok(self
            .trade_controls()
            .await?
            .into_iter()
            .find(|c| c.symbol == sym))
    }

    /// Halts a symbol with `reason` (what differs, how to resolve it) at `at`. A symbol without
    /// controls gets a disabled-by-halt row (enabled stays as it was, or 1 for a new row). An existing
    /// halt keeps its first reason: the first difference found is the one to resolve.
    pub async fn halt_symbol(
        &self,
        symbol: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sym = symbol_key(symbol)?;
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO at_trade_controls (symbol, enabled, halt_reason, halted_at) \
                 VALUES ($1, 1, $2, $3) ON CONFLICT (symbol) DO UPDATE SET \
                 halt_reason = COALESCE(at_trade_controls.halt_reason, excluded.halt_reason), \
                 halted_at = COALESCE(at_trade_controls.halted_at, excluded.halted_at), \
                 updated_at = CURRENT_TIMESTAMP",
            )
            .bind(&sym)
            .bind(reason)
            .bind(at)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(query_err("halting", "at_trade_controls", &sym))
        })
    }

    /// Lifts a symbol's halt; false when it was not halted.
    pub async fn resume_symbol(&self, symbol: &str) -> Result<bool, StoreError> {
        let sym = symbol_key(symbol)?;
        on_pool!(self, |p| {
            sqlx::query(
                "UPDATE at_trade_controls SET halt_reason = NULL, halted_at = NULL, \
                 updated_at = CURRENT_TIMESTAMP WHERE symbol = $1 AND halt_reason IS NOT NULL",
            )
            .bind(&sym)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(query_err("resuming", "at_trade_controls", &sym))
        })
    }
}
