//! The live pages' reads (`/live`, `/live/trades`, its CSV, `/live/performance`): each done in SQL
//! over indexes (migration 0009), so a page costs a few queries of the rows it shows instead of a
//! read of every trade and order of every symbol. They cover the symbols that have trading controls
//! (`at_trade_controls`), as the pages list them.
//!
//! Orders follow the pages' as they were computed in Rust: trades newest first with ties broken by
//! id in byte order (`COLLATE "C"` on Postgres; SQLite compares text bytewise), orders newest first
//! with ties by symbol then client order id. On SQLite a timestamp is text, and its text order is its
//! time order because the store writes every timestamp in one form (sqlx's RFC 3339, `+00:00`, whole
//! groups of three fractional digits).

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::Row;
use vectura_core::Side;

use crate::error::query_err;
use crate::{on_pool, OrderRow, Store, StoreError};

/// Which trades a read covers (of the symbols with trading controls).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TradeFilter {
    /// Only this symbol, as stored (upper case); a symbol with no trades gives nothing.
    pub symbol: Option<String>,
    /// Only buys or only sells.
    pub side: Option<Side>,
}

/// A trade and, when it closes a lot (`close_trade_id` names a buy of the same symbol), that buy's
/// time and price.
#[derive(Debug, Clone, PartialEq)]
pub struct TradeLine {
    pub id: String,
    pub symbol: String,
    pub timestamp: DateTime<Utc>,
    pub side: Side,
    pub shares: f64,
    pub price: f64,
    /// When the opening buy was made.
    pub open_timestamp: Option<DateTime<Utc>>,
    /// The opening buy's price.
    pub open_price: Option<f64>,
}

impl TradeLine {
    /// The round trip's profit, `(price − opening price) × shares`, for a trade that closes a lot.
    pub fn pnl(&self) -> Option<f64> {
        self.open_price.map(|b| (self.price - b) * self.shares)
    }
}

/// The round trips (trades closing a lot against its opening buy) in one aggregate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RoundTripStats {
    pub count: u64,
    /// Round trips with a profit above zero.
    pub wins: u64,
    /// The profits summed, dollars.
    pub gross_win: f64,
    /// The losses (and zero results) summed, as a positive number of dollars.
    pub gross_loss: f64,
    /// Every round trip's result summed, dollars.
    pub realised: f64,
}

/// A symbol's trade count and its last trade's price.
#[derive(Debug, Clone, PartialEq)]
pub struct TradeTally {
    pub symbol: String,
    /// Trades executed (buys and sells).
    pub trades: u64,
    /// The price of the last trade (by time, then id).
    pub last_price: Option<f64>,
}

/// A cheap fingerprint of the trades a filter keeps ([`Store::trade_version`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeVersion {
    /// How many there are.
    pub count: u64,
    /// The newest one's id and time.
    pub newest: Option<(String, DateTime<Utc>)>,
}

/// The order statuses of an order sent and not finished.
pub const IN_FLIGHT_STATUSES: [&str; 5] =
    ["intent", "submitted", "new", "accepted", "partially_filled"];

/// How a scan of trades is ordered and which it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Every trade the filter keeps, newest first (ties: id, descending).
    NewestFirst,
    /// Only trades that close a lot, by symbol then oldest first (as each symbol's history reads).
    RoundTripsBySymbol,
}

fn side_word(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// The `WHERE` of a trade read (table alias `t`) and its bound values, from `$1` on. `lead` goes
/// before the controls' `IN` test: on SQLite a `+` there keeps the planner from driving the scan
/// by the `IN` list (which reads every trade and sorts them) so that it walks the ordering index
/// and stops at the page's end; Postgres's planner needs no hint (and has no unary `+` for text).
fn trade_where<'a>(f: &'a TradeFilter, lead: &str) -> (String, Vec<&'a str>) {
    let mut sql = format!("{lead}t.symbol IN (SELECT symbol FROM at_trade_controls)");
    let mut values = Vec::new();
    if let Some(s) = &f.symbol {
        values.push(s.as_str());
        sql.push_str(&format!(" AND t.symbol = ${}", values.len()));
    }
    if let Some(side) = f.side {
        values.push(side_word(side));
        sql.push_str(&format!(" AND t.trade_type = ${}", values.len()));
    }
    (sql, values)
}

impl Store {
    /// The unary `+` that hides a column from SQLite's index choice (see [`trade_where`]); empty on
    /// Postgres.
    fn no_index_hint(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "+",
            Store::Postgres(_) => "",
        }
    }

    /// The collation that orders text by its bytes (Rust's order), whatever the database's
    /// collation: `COLLATE "C"` on Postgres (migration 0011's indexes are in it), nothing on SQLite
    /// (which compares bytes already).
    fn byte_order(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "",
            Store::Postgres(_) => " COLLATE \"C\"",
        }
    }
}

fn target_of(f: &TradeFilter) -> String {
    match (&f.symbol, f.side) {
        (Some(s), Some(side)) => format!("{s} {} trades", side_word(side)),
        (Some(s), None) => format!("{s} trades"),
        (None, Some(side)) => format!("every symbol's {} trades", side_word(side)),
        (None, None) => "every symbol's trades".into(),
    }
}

impl Store {
    /// A page of the trades `f` keeps, newest first (ties by id, descending), `limit` of them after
    /// skipping `offset`, each with its opening buy.
    pub async fn trade_lines(
        &self,
        f: &TradeFilter,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<TradeLine>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(500) as usize);
        self.scan_trades(Scan::NewestFirst, f, Some((limit, offset)), |t| out.push(t))
            .await?;
        Ok(out)
    }

    /// Calls `each` with every trade `f` keeps, newest first (as [`Store::trade_lines`] pages them),
    /// streaming the rows; returns how many there were.
    pub async fn for_each_trade_line(
        &self,
        f: &TradeFilter,
        each: impl FnMut(TradeLine),
    ) -> Result<u64, StoreError> {
        self.scan_trades(Scan::NewestFirst, f, None, each).await
    }

    /// Calls `each` with every trade that closes a lot (of `symbol`, or of every symbol), by symbol
    /// and then oldest first, streaming the rows; returns how many there were.
    pub async fn for_each_round_trip(
        &self,
        symbol: Option<&str>,
        each: impl FnMut(TradeLine),
    ) -> Result<u64, StoreError> {
        let f = TradeFilter {
            symbol: symbol.map(str::to_string),
            side: None,
        };
        self.scan_trades(Scan::RoundTripsBySymbol, &f, None, each)
            .await
    }

    async fn scan_trades(
        &self,
        scan: Scan,
        f: &TradeFilter,
        page: Option<(u64, u64)>,
        mut each: impl FnMut(TradeLine),
    ) -> Result<u64, StoreError> {
        let target = target_of(f);
        let err = || query_err("reading", "at_trade_history", target.as_str());
        let byte_order = self.byte_order();
        let columns = "t.id, t.symbol, t.timestamp, t.trade_type, t.shares, t.price, \
             b.timestamp AS open_timestamp, b.price AS open_price";
        let opening = "at_trade_history b ON b.id = t.close_trade_id AND b.symbol = t.symbol \
             AND b.trade_type = 'buy'";
        let newest = format!("t.timestamp DESC, t.id{byte_order} DESC");
        let (sql, values, limits) = match (scan, page) {
            (Scan::NewestFirst, Some((limit, offset))) => {
                // The page's ids first, from the index alone (the skipped rows are neither read
                // nor joined), then their rows and opening buys.
                let (cond, values) = trade_where(f, self.no_index_hint());
                let n = values.len();
                let sql = format!(
                    "SELECT {columns} FROM (SELECT t.id FROM at_trade_history t WHERE {cond} \
                     ORDER BY {newest} LIMIT ${} OFFSET ${}) k \
                     JOIN at_trade_history t ON t.id = k.id LEFT JOIN {opening} ORDER BY {newest}",
                    n + 1,
                    n + 2
                );
                (sql, values, Some((clamp_i64(limit), clamp_i64(offset))))
            }
            (Scan::NewestFirst, None) => {
                let (cond, values) = trade_where(f, self.no_index_hint());
                let sql = format!(
                    "SELECT {columns} FROM at_trade_history t LEFT JOIN {opening} \
                     WHERE {cond} ORDER BY {newest}"
                );
                (sql, values, None)
            }
            (Scan::RoundTripsBySymbol, _) => {
                let (cond, values) = trade_where(f, "");
                let sql = format!(
                    "SELECT {columns} FROM at_trade_history t JOIN {opening} \
                     WHERE {cond} AND t.close_trade_id IS NOT NULL \
                     ORDER BY t.symbol, t.timestamp, t.id"
                );
                (sql, values, None)
            }
        };
        let mut n = 0u64;
        on_pool!(self, |p| {
            let mut q = sqlx::query(&sql);
            for v in &values {
                q = q.bind(*v);
            }
            if let Some((limit, offset)) = limits {
                q = q.bind(limit).bind(offset);
            }
            let mut rows = q.fetch(p);
            while let Some(r) = rows.try_next().await.map_err(err())? {
                let id: String = r.try_get("id").map_err(err())?;
                let side = match r.try_get::<&str, _>("trade_type").map_err(err())? {
                    "buy" => Side::Buy,
                    "sell" => Side::Sell,
                    other => {
                        return Err(StoreError::BadRow {
                            table: "at_trade_history",
                            target: format!("trade {id}"),
                            detail: format!("the side {other:?} (buy or sell expected)"),
                        })
                    }
                };
                each(TradeLine {
                    symbol: r.try_get("symbol").map_err(err())?,
                    timestamp: r.try_get("timestamp").map_err(err())?,
                    side,
                    shares: r.try_get("shares").map_err(err())?,
                    price: r.try_get("price").map_err(err())?,
                    open_timestamp: r.try_get("open_timestamp").map_err(err())?,
                    open_price: r.try_get("open_price").map_err(err())?,
                    id,
                });
                n += 1;
            }
            Ok::<(), StoreError>(())
        })?;
        Ok(n)
    }

    /// What changes whenever a trade `f` keeps is added or removed: their count and the newest
    /// one's id and time, in two reads over the ordering indexes (no row of the rest is read). A
    /// trade is written once and never edited, so equal versions mean equal trades; a cache of
    /// anything made from the trades (the CSV export) is keyed by it.
    pub async fn trade_version(&self, f: &TradeFilter) -> Result<TradeVersion, StoreError> {
        let count = self.trade_count(f).await?;
        let newest = self
            .trade_lines(f, 1, 0)
            .await?
            .into_iter()
            .next()
            .map(|t| (t.id, t.timestamp));
        Ok(TradeVersion { count, newest })
    }

    /// How many trades `f` keeps.
    pub async fn trade_count(&self, f: &TradeFilter) -> Result<u64, StoreError> {
        let (cond, values) = trade_where(f, "");
        let sql = format!("SELECT COUNT(*) FROM at_trade_history t WHERE {cond}");
        let n: i64 = on_pool!(self, |p| {
            let mut q = sqlx::query_scalar::<_, i64>(&sql);
            for v in &values {
                q = q.bind(*v);
            }
            q.fetch_one(p)
                .await
                .map_err(query_err("counting", "at_trade_history", target_of(f)))?
        });
        Ok(n.max(0) as u64)
    }

    /// The round trips of `symbol` (or of every symbol) in one aggregate: count, wins, gross profit
    /// and loss, and the realised result.
    pub async fn round_trip_stats(
        &self,
        symbol: Option<&str>,
    ) -> Result<RoundTripStats, StoreError> {
        let f = TradeFilter {
            symbol: symbol.map(str::to_string),
            side: None,
        };
        let (cond, values) = trade_where(&f, "");
        let target = target_of(&f);
        let err = || query_err("summing", "at_trade_history", target.as_str());
        // A result of exactly zero counts as a loss, as a backtest counts it.
        let sql = format!(
            "SELECT COUNT(*) AS n, COUNT(CASE WHEN pnl > 0 THEN 1 END) AS wins, \
             COALESCE(SUM(CASE WHEN pnl > 0 THEN pnl END), 0.0) AS gross_win, \
             COALESCE(SUM(CASE WHEN pnl > 0 THEN NULL ELSE -pnl END), 0.0) AS gross_loss, \
             COALESCE(SUM(pnl), 0.0) AS realised \
             FROM (SELECT (t.price - b.price) * t.shares AS pnl FROM at_trade_history t \
             JOIN at_trade_history b ON b.id = t.close_trade_id AND b.symbol = t.symbol \
             AND b.trade_type = 'buy' WHERE {cond} AND t.close_trade_id IS NOT NULL) r"
        );
        on_pool!(self, |p| {
            let mut q = sqlx::query(&sql);
            for v in &values {
                q = q.bind(*v);
            }
            let r = q.fetch_one(p).await.map_err(err())?;
            let count: i64 = r.try_get("n").map_err(err())?;
            let wins: i64 = r.try_get("wins").map_err(err())?;
            Ok(RoundTripStats {
                count: count.max(0) as u64,
                wins: wins.max(0) as u64,
                gross_win: r.try_get("gross_win").map_err(err())?,
                gross_loss: r.try_get("gross_loss").map_err(err())?,
                realised: r.try_get("realised").map_err(err())?,
            })
        })
    }

    /// The newest `limit` orders of `symbol` (or of every symbol with trading controls), newest
    /// first; orders made at the same time by symbol, then client order id.
    pub async fn recent_orders(
        &self,
        symbol: Option<&str>,
        limit: u64,
    ) -> Result<Vec<OrderRow>, StoreError> {
        // SQLite: walk the (created_at DESC, symbol, client_order_id) index and stop after `limit`
        // (see trade_where).
        let mut cond = format!(
            "{}symbol IN (SELECT symbol FROM at_trade_controls)",
            self.no_index_hint()
        );
        let mut values = Vec::new();
        if let Some(s) = symbol {
            cond.push_str(" AND symbol = $1");
            values.push(s);
        }
        let c = self.byte_order();
        let order = format!(
            "ORDER BY created_at DESC, symbol{c}, client_order_id{c} LIMIT {}",
            clamp_i64(limit)
        );
        let target = symbol.map_or("every symbol's orders".to_string(), |s| {
            format!("{s} orders")
        });
        self.orders_where(&cond, &values, &order, &target).await
    }

    /// The symbol's orders whose status is one of `statuses` (for the overview,
    /// [`IN_FLIGHT_STATUSES`]), oldest first.
    pub async fn orders_in_status(
        &self,
        symbol: &str,
        statuses: &[&str],
    ) -> Result<Vec<OrderRow>, StoreError> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (2..statuses.len() + 2).map(|i| format!("${i}")).collect();
        let cond = format!("symbol = $1 AND status IN ({})", marks.join(", "));
        let mut values = vec![symbol];
        values.extend_from_slice(statuses);
        // SQLite would rather walk (symbol, created_at) in order than sort the few orders in flight
        // found by (symbol, status): the `+` lets the status index choose the rows.
        let order = format!(
            "ORDER BY {}created_at, client_order_id",
            self.no_index_hint()
        );
        self.orders_where(&cond, &values, &order, &format!("{symbol} orders"))
            .await
    }

    /// Every symbol with trading controls (by symbol), with its trade count and last trade's price.
    pub async fn trade_tallies(&self) -> Result<Vec<TradeTally>, StoreError> {
        let err = || query_err("counting", "at_trade_history", "every symbol's trades");
        let sql = format!(
            "SELECT c.symbol, \
             (SELECT COUNT(*) FROM at_trade_history t WHERE t.symbol = c.symbol) AS trades, \
             (SELECT t.price FROM at_trade_history t WHERE t.symbol = c.symbol \
              ORDER BY t.timestamp DESC, t.id{} DESC LIMIT 1) AS last_price \
             FROM at_trade_controls c ORDER BY c.symbol",
            self.byte_order()
        );
        on_pool!(self, |p| {
            sqlx::query(&sql)
                .fetch_all(p)
                .await
                .map_err(err())?
                .iter()
                .map(|r| {
                    let trades: i64 = r.try_get("trades")?;
                    Ok(TradeTally {
                        symbol: r.try_get("symbol")?,
                        trades: trades.max(0) as u64,
                        last_price: r.try_get("last_price")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(err())
        })
    }
}

/// A count or offset as SQL's 64-bit integer (beyond it: as many as there are).
fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
