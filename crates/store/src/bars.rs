//! Bars, per-day status, ranges, gaps and splits.

use crate::BeginWrite;
use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use sqlx::Row;
use vectura_core::{BarSeries, Split};
use vectura_data::codec::{decode_day_into, encode_day, CodecError};

use crate::error::query_err;
use crate::{on_pool, symbol_key, DayState, DayStatus, Gap, Store, StoreError, SymbolRange};

/// Longest failure message kept per day.
const MAX_ERROR_CHARS: usize = 2000;

const UPSERT_BARS: &str =
    "INSERT INTO bt_bars_daily (symbol, day, data, records, start_ts, end_ts) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (symbol, day) DO UPDATE SET data = excluded.data, records = excluded.records, \
     start_ts = excluded.start_ts, end_ts = excluded.end_ts, created_at = CURRENT_TIMESTAMP";

const STATUS_FETCHED: &str = "INSERT INTO bt_day_status (symbol, day, status, error, attempts) \
     VALUES ($1, $2, 'fetched', NULL, 0) \
     ON CONFLICT (symbol, day) DO UPDATE SET status = 'fetched', error = NULL, \
     updated_at = CURRENT_TIMESTAMP";

/// A day already fetched keeps that state (its bars stay stored).
const STATUS_CLOSED: &str = "INSERT INTO bt_day_status (symbol, day, status, error, attempts) \
     VALUES ($1, $2, 'closed', NULL, 0) \
     ON CONFLICT (symbol, day) DO UPDATE SET \
     status = CASE WHEN bt_day_status.status = 'fetched' THEN 'fetched' ELSE 'closed' END, \
     error = NULL, updated_at = CURRENT_TIMESTAMP";

/// A failure counts an attempt and keeps its message; a day already fetched or closed keeps its state.
const STATUS_FAILED: &str = "INSERT INTO bt_day_status (symbol, day, status, error, attempts) \
     VALUES ($1, $2, 'failed', $3, 1) \
     ON CONFLICT (symbol, day) DO UPDATE SET attempts = bt_day_status.attempts + 1, \
     error = excluded.error, updated_at = CURRENT_TIMESTAMP";

const WIDEN_RANGE: &str = "INSERT INTO bt_symbol_ranges (symbol, have_from, have_to) VALUES ($1, $2, $2) \
     ON CONFLICT (symbol) DO UPDATE SET \
     have_from = CASE WHEN bt_symbol_ranges.have_from IS NULL OR excluded.have_from < bt_symbol_ranges.have_from \
         THEN excluded.have_from ELSE bt_symbol_ranges.have_from END, \
     have_to = CASE WHEN bt_symbol_ranges.have_to IS NULL OR excluded.have_to > bt_symbol_ranges.have_to \
         THEN excluded.have_to ELSE bt_symbol_ranges.have_to END, \
     updated_at = CURRENT_TIMESTAMP";

const ENSURE_RANGE: &str =
    "INSERT INTO bt_symbol_ranges (symbol) VALUES ($1) ON CONFLICT (symbol) DO NOTHING";

const RANGES: &str = "SELECT r.symbol, r.have_from, r.have_to, r.first_available_day, \
     (SELECT COUNT(*) FROM bt_bars_daily b WHERE b.symbol = r.symbol) AS days_stored, \
     (SELECT COALESCE(SUM(b.records), 0) FROM bt_bars_daily b WHERE b.symbol = r.symbol) AS bars, \
     (SELECT COUNT(*) FROM bt_day_status s WHERE s.symbol = r.symbol AND s.status = 'closed') AS days_closed, \
     (SELECT COUNT(*) FROM bt_day_status s WHERE s.symbol = r.symbol AND s.status = 'failed') AS days_failed \
     FROM bt_symbol_ranges r";

/// status, error, attempts, updated_at
type StatusRow = (String, Option<String>, i64, Option<DateTime<Utc>>);
/// day, status, attempts, error
type DayRow = (NaiveDate, String, i64, Option<String>);

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    /// Stores one symbol-day of raw bars (replacing what was stored for it), marks the day fetched and
    /// widens the symbol's range, in one transaction.
    pub async fn put_day(
        &self,
        symbol: &str,
        day: NaiveDate,
        bars: &BarSeries,
    ) -> Result<(), StoreError> {
        self.put_days(symbol, &[(day, bars)]).await
    }

    /// Stores several symbol-days (each replacing what was stored for it) in one transaction: all
    /// of them or, on any error, none.
    pub async fn put_days(
        &self,
        symbol: &str,
        days: &[(NaiveDate, &BarSeries)],
    ) -> Result<(), StoreError> {
        let sym = symbol_key(symbol)?;
        let mut rows = Vec::with_capacity(days.len());
        for &(day, bars) in days {
            if bars.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "bt_bars_daily: put_day for {sym} {day} got no bars: a day without bars is closed: call mark_closed"
                )));
            }
            let records = i32::try_from(bars.len()).map_err(|_| {
                StoreError::Invalid(format!(
                    "bt_bars_daily: {sym} {day} has {} bars, more than a day can hold: store each day separately",
                    bars.len()
                ))
            })?;
            let (start_ts, end_ts) = (bars.ts[0], bars.ts[bars.len() - 1]);
            rows.push((day, encode_day(bars), records, start_ts, end_ts));
        }
        let Some(&(first_day, ..)) = rows.first() else {
            return Ok(());
        };
        let target = if rows.len() == 1 {
            format!("{sym} {first_day}")
        } else {
            format!("{sym} {first_day}..{}", rows[rows.len() - 1].0)
        };
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await.map_err(query_err(
                "starting to write",
                "bt_bars_daily",
                &target,
            ))?;
            for (day, blob, records, start_ts, end_ts) in &rows {
                sqlx::query(UPSERT_BARS)
                    .bind(&sym)
                    .bind(day)
                    .bind(blob)
                    .bind(records)
                    .bind(start_ts)
                    .bind(end_ts)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("writing", "bt_bars_daily", &target))?;
                sqlx::query(STATUS_FETCHED)
                    .bind(&sym)
                    .bind(day)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("writing", "bt_day_status", &target))?;
                sqlx::query(WIDEN_RANGE)
                    .bind(&sym)
                    .bind(day)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("widening", "bt_symbol_ranges", &target))?;
            }
            tx.commit()
                .await
                .map_err(query_err("committing", "bt_bars_daily", &target))
        })
    }

    /// Records that the provider has no bars for the day (a day already fetched stays fetched).
    pub async fn mark_closed(&self, symbol: &str, day: NaiveDate) -> Result<(), StoreError> {
        self.mark(symbol, day, STATUS_CLOSED, None).await
    }

    /// Records a failed fetch of the day: one more attempt, and the message. The day stays a gap until
    /// it is fetched or closed (a day already fetched or closed keeps that state).
    pub async fn mark_failed(
        &self,
        symbol: &str,
        day: NaiveDate,
        error: &str,
    ) -> Result<(), StoreError> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        self.mark(symbol, day, STATUS_FAILED, Some(error)).await
    }

    async fn mark(
        &self,
        symbol: &str,
        day: NaiveDate,
        sql: &'static str,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        let sym = symbol_key(symbol)?;
        let target = format!("{sym} {day}");
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await.map_err(query_err(
                "starting to write",
                "bt_day_status",
                &target,
            ))?;
            let mut q = sqlx::query(sql).bind(&sym).bind(day);
            if let Some(e) = &error {
                q = q.bind(e);
            }
            q.execute(&mut *tx)
                .await
                .map_err(query_err("writing", "bt_day_status", &target))?;
            sqlx::query(ENSURE_RANGE)
                .bind(&sym)
                .execute(&mut *tx)
                .await
                .map_err(query_err("writing", "bt_symbol_ranges", &target))?;
            tx.commit()
                .await
                .map_err(query_err("committing", "bt_day_status", &target))
        })
    }

    /// The day's fetch status, if it was ever fetched or tried.
    pub async fn day_status(
        &self,
        symbol: &str,
        day: NaiveDate,
    ) -> Result<Option<DayStatus>, StoreError> {
        let sym = symbol_key(symbol)?;
        let target = format!("{sym} {day}");
        let err = || query_err("reading", "bt_day_status", &target);
        let row: Option<StatusRow> = on_pool!(self, |p| {
            match sqlx::query(
                "SELECT status, error, attempts, updated_at FROM bt_day_status WHERE symbol = $1 AND day = $2",
            )
            .bind(&sym)
            .bind(day)
            .fetch_optional(p)
            .await
            .map_err(err())?
            {
                None => None,
                Some(r) => Some((
                    r.try_get("status").map_err(err())?,
                    r.try_get("error").map_err(err())?,
                    r.try_get("attempts").map_err(err())?,
                    r.try_get("updated_at").map_err(err())?,
                )),
            }
        });
        row.map(|(status, error, attempts, updated_at)| {
            Ok(DayStatus {
                state: DayState::parse(&status).ok_or_else(|| StoreError::BadRow {
                    table: "bt_day_status",
                    target: target.clone(),
                    detail: format!("the unknown status {status:?}"),
                })?,
                error,
                attempts: count(attempts),
                updated_at,
            })
        })
        .transpose()
    }

    /// The stored raw bars of `symbol` on the days `from..=to`, in order, one series.
    pub async fn load(
        &self,
        symbol: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BarSeries, StoreError> {
        let sym = symbol_key(symbol)?;
        if from > to {
            return Err(StoreError::Invalid(format!(
                "bt_bars_daily: load of {sym} from {from} to {to}: the start is after the end: swap them"
            )));
        }
        let target = format!("{sym} {from}..{to}");
        let err = || query_err("reading", "bt_bars_daily", &target);
        let days: Vec<(NaiveDate, Vec<u8>, i32)> = on_pool!(self, |p| {
            sqlx::query(
                "SELECT day, data, records FROM bt_bars_daily WHERE symbol = $1 AND day >= $2 AND day <= $3 ORDER BY day",
            )
            .bind(&sym)
            .bind(from)
            .bind(to)
            .fetch_all(p)
            .await
            .map_err(err())?
            .iter()
            .map(|r| Ok((r.try_get("day")?, r.try_get("data")?, r.try_get("records")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(err())?
        });
        let mut out = BarSeries::default();
        // The stored counts size the series once (a hint: the blobs are the truth).
        let total: usize = days.iter().map(|d| usize::try_from(d.2).unwrap_or(0)).sum();
        out.reserve(total.min(1 << 28));
        for (day, blob, _) in days {
            // Each day decodes straight into the one series (no per-day allocation or copy).
            decode_day_into(&blob, &mut out).map_err(|source| match source {
                CodecError::NotAfter { .. } => StoreError::Overlap {
                    symbol: sym.clone(),
                    day,
                },
                source => StoreError::Decode {
                    symbol: sym.clone(),
                    day,
                    source,
                },
            })?;
        }
        Ok(out)
    }

    /// Every symbol with a range row, by symbol, with its counts.
    pub async fn ranges(&self) -> Result<Vec<SymbolRange>, StoreError> {
        self.ranges_where(None).await
    }

    /// One symbol's range and counts, if anything was ever stored or tried for it.
    pub async fn range(&self, symbol: &str) -> Result<Option<SymbolRange>, StoreError> {
        let sym = symbol_key(symbol)?;
        Ok(self.ranges_where(Some(&sym)).await?.into_iter().next())
    }

    async fn ranges_where(&self, symbol: Option<&str>) -> Result<Vec<SymbolRange>, StoreError> {
        let target = symbol.unwrap_or("every symbol");
        let err = || query_err("reading", "bt_symbol_ranges", target);
        let sql = match symbol {
            Some(_) => format!("{RANGES} WHERE r.symbol = $1"),
            None => format!("{RANGES} ORDER BY r.symbol"),
        };
        on_pool!(self, |p| {
            let mut q = sqlx::query(&sql);
            if let Some(s) = symbol {
                q = q.bind(s);
            }
            q.fetch_all(p)
                .await
                .map_err(err())?
                .iter()
                .map(|r| {
                    Ok(SymbolRange {
                        symbol: r.try_get("symbol")?,
                        have_from: r.try_get("have_from")?,
                        have_to: r.try_get("have_to")?,
                        first_available_day: r.try_get("first_available_day")?,
                        days_stored: count(r.try_get("days_stored")?),
                        days_closed: count(r.try_get("days_closed")?),
                        days_failed: count(r.try_get("days_failed")?),
                        bars: count(r.try_get("bars")?),
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(err())
        })
    }

    /// The days of `sessions` (the calendar's sessions for the span wanted) with neither stored bars
    /// nor a `closed` mark, in date order, with their failed attempts and last error.
    pub async fn gaps(&self, symbol: &str, sessions: &[NaiveDate]) -> Result<Vec<Gap>, StoreError> {
        let sym = symbol_key(symbol)?;
        let (Some(&lo), Some(&hi)) = (sessions.iter().min(), sessions.iter().max()) else {
            return Ok(Vec::new());
        };
        let target = format!("{sym} {lo}..{hi}");
        let err = || query_err("reading", "bt_day_status", &target);
        let (statuses, stored): (Vec<DayRow>, Vec<NaiveDate>) = on_pool!(self, |p| {
            let statuses = sqlx::query(
                "SELECT day, status, attempts, error FROM bt_day_status \
                     WHERE symbol = $1 AND day >= $2 AND day <= $3",
            )
            .bind(&sym)
            .bind(lo)
            .bind(hi)
            .fetch_all(p)
            .await
            .map_err(err())?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("day")?,
                    r.try_get("status")?,
                    r.try_get("attempts")?,
                    r.try_get("error")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(err())?;
            let stored = sqlx::query(
                "SELECT day FROM bt_bars_daily WHERE symbol = $1 AND day >= $2 AND day <= $3",
            )
            .bind(&sym)
            .bind(lo)
            .bind(hi)
            .fetch_all(p)
            .await
            .map_err(query_err("reading", "bt_bars_daily", &target))?
            .iter()
            .map(|r| r.try_get("day"))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(query_err("reading", "bt_bars_daily", &target))?;
            (statuses, stored)
        });
        let stored: std::collections::HashSet<NaiveDate> = stored.into_iter().collect();
        let status: HashMap<NaiveDate, (String, i64, Option<String>)> = statuses
            .into_iter()
            .map(|(d, s, a, e)| (d, (s, a, e)))
            .collect();
        let mut days: Vec<NaiveDate> = sessions.to_vec();
        days.sort_unstable();
        days.dedup();
        let mut out = Vec::new();
        for day in days {
            if stored.contains(&day) {
                continue;
            }
            match status.get(&day) {
                Some((s, _, _)) if s == "fetched" || s == "closed" => {}
                Some((_, attempts, error)) => out.push(Gap {
                    day,
                    attempts: count(*attempts),
                    last_error: error.clone(),
                }),
                None => out.push(Gap {
                    day,
                    attempts: 0,
                    last_error: None,
                }),
            }
        }
        Ok(out)
    }

    /// Records the first day the provider has data for (`None`: not known).
    pub async fn set_first_available_day(
        &self,
        symbol: &str,
        day: Option<NaiveDate>,
    ) -> Result<(), StoreError> {
        let sym = symbol_key(symbol)?;
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO bt_symbol_ranges (symbol, first_available_day) VALUES ($1, $2) \
                 ON CONFLICT (symbol) DO UPDATE SET first_available_day = excluded.first_available_day, \
                 updated_at = CURRENT_TIMESTAMP",
            )
            .bind(&sym)
            .bind(day)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(query_err("writing", "bt_symbol_ranges", &sym))
        })
    }

    /// The symbol's splits by effective date.
    pub async fn splits(&self, symbol: &str) -> Result<Vec<Split>, StoreError> {
        let sym = symbol_key(symbol)?;
        let err = || query_err("reading", "splits", &sym);
        on_pool!(self, |p| {
            sqlx::query(
                "SELECT effective_date, ratio FROM splits WHERE symbol = $1 ORDER BY effective_date",
            )
            .bind(&sym)
            .fetch_all(p)
            .await
            .map_err(err())?
            .iter()
            .map(|r| {
                Ok(Split {
                    effective: r.try_get("effective_date")?,
                    ratio: r.try_get("ratio")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(err())
        })
    }

    /// Replaces the symbol's splits with `splits` (a complete list from `source`, never an error reply:
    /// the caller checks), in one transaction; also mirrors them into `bt_symbol_ranges.splits` in the
    /// seed's form. Returns whether the list changed (dates or ratios), so the caller can re-adjust.
    pub async fn replace_splits(
        &self,
        symbol: &str,
        splits: &[Split],
        source: &str,
    ) -> Result<bool, StoreError> {
        let sym = symbol_key(symbol)?;
        for s in splits {
            s.validate()
                .map_err(|e| StoreError::Invalid(format!("splits: {sym}: {e}")))?;
        }
        let mut new: Vec<Split> = splits.to_vec();
        new.sort_by_key(|s| s.effective);
        let mirror: Vec<serde_json::Value> = new
            .iter()
            .map(|s| {
                serde_json::json!({
                    "effective_date": s.effective.format("%Y-%m-%d").to_string(),
                    "split_factor": s.ratio,
                })
            })
            .collect();
        let mirror = Json(serde_json::Value::Array(mirror));
        let err = || query_err("replacing", "splits", &sym);
        let old: Vec<(NaiveDate, f64)> = on_pool!(self, |p| {
            let mut tx = p.begin_write().await.map_err(err())?;
            // First the symbol's range row (the mirror): it locks that row, so a concurrent
            // replacement for the symbol waits and then sees this one's rows (Postgres), and it
            // writes, so SQLite takes its write lock at once (a read first could not be upgraded
            // when another writer commits in between).
            sqlx::query(
                "INSERT INTO bt_symbol_ranges (symbol, splits) VALUES ($1, $2) \
                 ON CONFLICT (symbol) DO UPDATE SET splits = excluded.splits, updated_at = CURRENT_TIMESTAMP",
            )
            .bind(&sym)
            .bind(&mirror)
            .execute(&mut *tx)
            .await
            .map_err(query_err("writing", "bt_symbol_ranges", &sym))?;
            let old =
                sqlx::query("DELETE FROM splits WHERE symbol = $1 RETURNING effective_date, ratio")
                    .bind(&sym)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(err())?
                    .iter()
                    .map(|r| Ok((r.try_get("effective_date")?, r.try_get("ratio")?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(err())?;
            for s in &new {
                sqlx::query(
                    "INSERT INTO splits (symbol, effective_date, ratio, source) VALUES ($1, $2, $3, $4)",
                )
                .bind(&sym)
                .bind(s.effective)
                .bind(s.ratio)
                .bind(source)
                .execute(&mut *tx)
                .await
                .map_err(query_err(
                    "replacing",
                    "splits",
                    format!("{sym} {}", s.effective),
                ))?;
            }
            tx.commit().await.map_err(err())?;
            old
        });
        let mut old = old;
        old.sort_by_key(|o| o.0);
        let changed = old.len() != new.len()
            || old
                .iter()
                .zip(&new)
                .any(|(o, n)| o.0 != n.effective || o.1.to_bits() != n.ratio.to_bits());
        Ok(changed)
    }

    /// The day splits were last checked for the symbol.
    pub async fn last_split_check(&self, symbol: &str) -> Result<Option<NaiveDate>, StoreError> {
        let sym = symbol_key(symbol)?;
        let err = || query_err("reading", "bt_symbol_ranges", &sym);
        on_pool!(self, |p| {
            match sqlx::query("SELECT last_split_check FROM bt_symbol_ranges WHERE symbol = $1")
                .bind(&sym)
                .fetch_optional(p)
                .await
                .map_err(err())?
            {
                None => Ok(None),
                Some(r) => r.try_get("last_split_check").map_err(err()),
            }
        })
    }

    /// Records the day splits were last checked for the symbol.
    pub async fn set_last_split_check(
        &self,
        symbol: &str,
        day: NaiveDate,
    ) -> Result<(), StoreError> {
        let sym = symbol_key(symbol)?;
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO bt_symbol_ranges (symbol, last_split_check) VALUES ($1, $2) \
                 ON CONFLICT (symbol) DO UPDATE SET last_split_check = excluded.last_split_check, \
                 updated_at = CURRENT_TIMESTAMP",
            )
            .bind(&sym)
            .bind(day)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(query_err("writing", "bt_symbol_ranges", &sym))
        })
    }

    /// Deletes everything stored for the symbol's bars (bars, day status, range, splits) in one
    /// transaction; the live `at_*` tables are left alone. Returns the number of days of bars deleted.
    pub async fn delete_symbol(&self, symbol: &str) -> Result<u64, StoreError> {
        let sym = symbol_key(symbol)?;
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await.map_err(query_err(
                "starting to delete from",
                "bt_bars_daily",
                &sym,
            ))?;
            let days = sqlx::query("DELETE FROM bt_bars_daily WHERE symbol = $1")
                .bind(&sym)
                .execute(&mut *tx)
                .await
                .map_err(query_err("deleting from", "bt_bars_daily", &sym))?
                .rows_affected();
            for table in ["bt_day_status", "bt_symbol_ranges", "splits"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE symbol = $1"))
                    .bind(&sym)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("deleting from", table, &sym))?;
            }
            tx.commit().await.map_err(query_err(
                "committing the delete from",
                "bt_bars_daily",
                &sym,
            ))?;
            Ok(days)
        })
    }
}
