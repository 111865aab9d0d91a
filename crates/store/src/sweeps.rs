//! Parameter sweeps: `sweep_runs` (one row per `vectura sweep`) and `sweep_results` (one row per
//! parameter set), so the dashboard can list past sweeps and show their results.
//!
//! A run is created `running`, receives its rows in batches (each batch one transaction, so a crash
//! leaves whole batches only), and is finished `done` (every set stored) or `failed`.

use crate::BeginWrite;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use sqlx::Row;

use crate::error::query_err;
use crate::{
    on_pool, symbol_key, NewSweepRun, Store, StoreError, SweepColumns, SweepResult, SweepRun,
    SweepStatus,
};

/// Rows per INSERT statement: 4 binds each stays far below SQLite's 32 766 and Postgres's 65 535
/// bind limits.
const ROWS_PER_STATEMENT: usize = 1000;

/// A new run id: the UTC time to the nanosecond, the process id and a per-process counter, so ids
/// sort by creation and two writers (two processes, or two machines on one Postgres) do not collide
/// without needing a sequence, which the two dialects spell differently.
fn new_run_id(now: DateTime<Utc>) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}-{:x}-{n}",
        now.format("%Y%m%dT%H%M%S%.9fZ"),
        std::process::id()
    )
}

fn to_i64(what: &str, id: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| {
        StoreError::Invalid(format!(
            "sweep run {id}: {what} {v} is beyond 2^63-1: give a smaller number"
        ))
    })
}

fn to_u64(table: &'static str, id: &str, what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::BadRow {
        table,
        target: format!("sweep run {id}"),
        detail: format!("the negative {what} {v}"),
    })
}

/// A run's row as read, before its status and counts are checked.
struct RawRun {
    id: String,
    created_at: DateTime<Utc>,
    symbols: Json<Vec<String>>,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
    fill: String,
    plan: Json<serde_json::Value>,
    set_count: i64,
    status: String,
    finished_at: Option<DateTime<Utc>>,
    error: Option<String>,
    rows_stored: i64,
}

impl RawRun {
    fn check(self) -> Result<SweepRun, StoreError> {
        let status = SweepStatus::parse(&self.status).ok_or_else(|| StoreError::BadRow {
            table: "sweep_runs",
            target: format!("sweep run {}", self.id),
            detail: format!(
                "the status {:?} (running, done or failed expected)",
                self.status
            ),
        })?;
        Ok(SweepRun {
            set_count: to_u64("sweep_runs", &self.id, "set_count", self.set_count)?,
            rows_stored: to_u64("sweep_results", &self.id, "row count", self.rows_stored)?,
            id: self.id,
            created_at: self.created_at,
            symbols: self.symbols.0,
            start_date: self.start_date,
            end_date: self.end_date,
            fill: self.fill,
            plan: self.plan.0,
            status,
            finished_at: self.finished_at,
            error: self.error,
        })
    }
}

/// Stores (or replaces) a run's columns; the same text in both dialects.
const UPSERT_COLUMNS: &str = "INSERT INTO sweep_columns (run_id, data) VALUES ($1, $2) \
     ON CONFLICT (run_id) DO UPDATE SET data = excluded.data";

const RUN_COLUMNS: &str =
    "s.id, s.created_at, s.symbols, s.start_date, s.end_date, s.fill, s.plan, \
     s.set_count, s.status, s.finished_at, s.error, \
     (SELECT COUNT(*) FROM sweep_results r WHERE r.run_id = s.id) AS rows_stored";

impl Store {
    /// Records a new sweep run as `running` and returns its id.
    pub async fn create_sweep_run(&self, run: &NewSweepRun) -> Result<String, StoreError> {
        let symbols = run
            .symbols
            .iter()
            .map(|s| symbol_key(s))
            .collect::<Result<Vec<_>, _>>()?;
        if let (Some(a), Some(b)) = (run.start_date, run.end_date) {
            if b < a {
                return Err(StoreError::Invalid(format!(
                    "sweep_runs: the end date {b} is before the start date {a}: swap them"
                )));
            }
        }
        let now = Utc::now();
        let id = new_run_id(now);
        let set_count = to_i64("set_count", &id, run.set_count)?;
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO sweep_runs (id, created_at, symbols, start_date, end_date, fill, plan, \
                 set_count, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'running')",
            )
            .bind(&id)
            .bind(now)
            .bind(Json(&symbols))
            .bind(run.start_date)
            .bind(run.end_date)
            .bind(&run.fill)
            .bind(Json(&run.plan))
            .bind(set_count)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(query_err("writing", "sweep_runs", format!("sweep run {id}")))
        })?;
        Ok(id)
    }

    /// Stores a batch of a running sweep's result rows, all or none (one transaction).
    pub async fn append_sweep_results(
        &self,
        run_id: &str,
        rows: &[SweepResult],
    ) -> Result<(), StoreError> {
        let target = format!("sweep run {run_id}");
        let indexes = rows
            .iter()
            .map(|r| to_i64("set index", run_id, r.set_index))
            .collect::<Result<Vec<_>, _>>()?;
        if rows.is_empty() {
            return Ok(());
        }
        let status = on_pool!(self, |p| {
            let mut tx = p.begin_write().await.map_err(query_err(
                "starting to write",
                "sweep_results",
                &target,
            ))?;
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM sweep_runs WHERE id = $1")
                    .bind(run_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(query_err("reading", "sweep_runs", &target))?;
            if status.as_deref() == Some("running") {
                for (chunk, idx) in rows
                    .chunks(ROWS_PER_STATEMENT)
                    .zip(indexes.chunks(ROWS_PER_STATEMENT))
                {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO sweep_results (run_id, set_index, params, metrics) ",
                    );
                    q.push_values(chunk.iter().zip(idx), |mut b, (r, i)| {
                        b.push_bind(run_id)
                            .push_bind(*i)
                            .push_bind(Json(&r.params))
                            .push_bind(Json(&r.metrics));
                    });
                    q.build().execute(&mut *tx).await.map_err(query_err(
                        "writing",
                        "sweep_results",
                        &target,
                    ))?;
                }
                tx.commit()
                    .await
                    .map_err(query_err("committing", "sweep_results", &target))?;
            }
            status
        });
        match status.as_deref() {
            Some("running") => Ok(()),
            None => Err(StoreError::UnknownSweepRun {
                id: run_id.to_string(),
            }),
            Some(other) => Err(StoreError::SweepRunFinished {
                id: run_id.to_string(),
                status: SweepStatus::parse(other).map_or("ended", SweepStatus::as_str),
            }),
        }
    }

    /// Ends a running sweep: `Done` (every set of the plan must be stored) or `Failed` with the reason.
    pub async fn finish_sweep_run(
        &self,
        run_id: &str,
        status: SweepStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        if status == SweepStatus::Running {
            return Err(StoreError::Invalid(format!(
                "sweep run {run_id}: finish it as done or failed, not running"
            )));
        }
        let Some(run) = self.sweep_run(run_id).await? else {
            return Err(StoreError::UnknownSweepRun {
                id: run_id.to_string(),
            });
        };
        if status == SweepStatus::Done && run.rows_stored != run.set_count {
            return Err(StoreError::Invalid(format!(
                "sweep run {run_id} holds {} rows of its {} sets: store the missing rows, or finish it as failed",
                run.rows_stored, run.set_count
            )));
        }
        if run.status != SweepStatus::Running {
            return Err(StoreError::SweepRunFinished {
                id: run_id.to_string(),
                status: run.status.as_str(),
            });
        }
        let target = format!("sweep run {run_id}");
        // The rows by column, kept with the finished run so that its heat maps need not read them all.
        let columns = SweepColumns::from_rows(&self.sweep_results(run_id).await?);
        let data = serde_json::to_string(&columns).map_err(|e| {
            StoreError::Invalid(format!("sweep run {run_id}: its result columns: {e}"))
        })?;
        // Only a running run changes: a second finish (another process, a retry) is refused below.
        // The status and the columns change together (one transaction).
        let updated = on_pool!(self, |p| {
            let mut tx = p.begin_write().await.map_err(query_err(
                "starting to write",
                "sweep_runs",
                &target,
            ))?;
            let n = sqlx::query(
                "UPDATE sweep_runs SET status = $2, finished_at = $3, error = $4 \
                 WHERE id = $1 AND status = 'running'",
            )
            .bind(run_id)
            .bind(status.as_str())
            .bind(Utc::now())
            .bind(error)
            .execute(&mut *tx)
            .await
            .map_err(query_err("updating", "sweep_runs", &target))?
            .rows_affected();
            if n > 0 {
                sqlx::query(UPSERT_COLUMNS)
                    .bind(run_id)
                    .bind(&data)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("writing", "sweep_columns", &target))?;
                tx.commit()
                    .await
                    .map_err(query_err("committing", "sweep_runs", &target))?;
            }
            n
        });
        if updated == 0 {
            return Err(StoreError::SweepRunFinished {
                id: run_id.to_string(),
                status: run.status.as_str(),
            });
        }
        Ok(())
    }

    /// One sweep run, if stored.
    pub async fn sweep_run(&self, run_id: &str) -> Result<Option<SweepRun>, StoreError> {
        Ok(self
            .runs_where("WHERE s.id = $1", Some(run_id))
            .await?
            .into_iter()
            .next())
    }

    /// Every sweep run, newest first.
    pub async fn sweep_runs(&self) -> Result<Vec<SweepRun>, StoreError> {
        self.runs_where("", None).await
    }

    async fn runs_where(&self, cond: &str, id: Option<&str>) -> Result<Vec<SweepRun>, StoreError> {
        let target = id.map_or("every sweep run".to_string(), |i| format!("sweep run {i}"));
        let err = || query_err("reading", "sweep_runs", &target);
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM sweep_runs s {cond} ORDER BY s.created_at DESC, s.id DESC"
        );
        let raw: Vec<RawRun> = on_pool!(self, |p| {
            let mut q = sqlx::query(&sql);
            if let Some(id) = id {
                q = q.bind(id);
            }
            q.fetch_all(p)
                .await
                .map_err(err())?
                .iter()
                .map(|r| {
                    Ok(RawRun {
                        id: r.try_get("id")?,
                        created_at: r.try_get("created_at")?,
                        symbols: r.try_get("symbols")?,
                        start_date: r.try_get("start_date")?,
                        end_date: r.try_get("end_date")?,
                        fill: r.try_get("fill")?,
                        plan: r.try_get("plan")?,
                        set_count: r.try_get("set_count")?,
                        status: r.try_get("status")?,
                        finished_at: r.try_get("finished_at")?,
                        error: r.try_get("error")?,
                        rows_stored: r.try_get("rows_stored")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(err())?
        });
        raw.into_iter().map(RawRun::check).collect()
    }

    /// A finished sweep run's results by column, as [`Store::finish_sweep_run`] stored them (none for
    /// a running run, or one finished before the columns were kept: see [`Store::put_sweep_columns`]).
    pub async fn sweep_columns(&self, run_id: &str) -> Result<Option<SweepColumns>, StoreError> {
        let target = format!("sweep run {run_id}");
        let data: Option<String> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT data FROM sweep_columns WHERE run_id = $1")
                .bind(run_id)
                .fetch_optional(p)
                .await
                .map_err(query_err("reading", "sweep_columns", &target))?
        });
        data.map(|d| {
            serde_json::from_str(&d).map_err(|e| StoreError::BadRow {
                table: "sweep_columns",
                target: target.clone(),
                detail: format!("columns that do not parse ({e})"),
            })
        })
        .transpose()
    }

    /// Keeps the columns of a run finished before they were stored (read from its rows by the
    /// caller). A running run is refused: its rows are still coming.
    pub async fn put_sweep_columns(
        &self,
        run_id: &str,
        columns: &SweepColumns,
    ) -> Result<(), StoreError> {
        let target = format!("sweep run {run_id}");
        let Some(run) = self.sweep_run(run_id).await? else {
            return Err(StoreError::UnknownSweepRun {
                id: run_id.to_string(),
            });
        };
        if run.status == SweepStatus::Running {
            return Err(StoreError::Invalid(format!(
                "sweep run {run_id} is still running: its columns are stored when it is finished"
            )));
        }
        let data = serde_json::to_string(columns).map_err(|e| {
            StoreError::Invalid(format!("sweep run {run_id}: its result columns: {e}"))
        })?;
        on_pool!(self, |p| {
            sqlx::query(UPSERT_COLUMNS)
                .bind(run_id)
                .bind(&data)
                .execute(p)
                .await
                .map_err(query_err("writing", "sweep_columns", &target))?;
        });
        Ok(())
    }

    /// The result rows of the sets `set_indexes` (those stored), in set order.
    pub async fn sweep_results_at(
        &self,
        run_id: &str,
        set_indexes: &[u64],
    ) -> Result<Vec<SweepResult>, StoreError> {
        let target = format!("sweep run {run_id}");
        let err = || query_err("reading", "sweep_results", &target);
        let idx = set_indexes
            .iter()
            .map(|&i| to_i64("set index", run_id, i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(idx.len());
        for chunk in idx.chunks(ROWS_PER_STATEMENT) {
            let raw: Vec<(i64, Json<serde_json::Value>, Json<serde_json::Value>)> =
                on_pool!(self, |p| {
                    let mut q = sqlx::QueryBuilder::new(
                        "SELECT set_index, params, metrics FROM sweep_results WHERE run_id = ",
                    );
                    q.push_bind(run_id).push(" AND set_index IN (");
                    let mut list = q.separated(", ");
                    for i in chunk {
                        list.push_bind(*i);
                    }
                    q.push(") ORDER BY set_index");
                    q.build()
                        .fetch_all(p)
                        .await
                        .map_err(err())?
                        .iter()
                        .map(|r| {
                            Ok((
                                r.try_get("set_index")?,
                                r.try_get("params")?,
                                r.try_get("metrics")?,
                            ))
                        })
                        .collect::<Result<_, sqlx::Error>>()
                        .map_err(err())?
                });
            for (i, params, metrics) in raw {
                out.push(SweepResult {
                    set_index: to_u64("sweep_results", run_id, "set index", i)?,
                    params: params.0,
                    metrics: metrics.0,
                });
            }
        }
        out.sort_by_key(|r| r.set_index);
        Ok(out)
    }

    /// A sweep run's result rows, in set order.
    pub async fn sweep_results(&self, run_id: &str) -> Result<Vec<SweepResult>, StoreError> {
        let target = format!("sweep run {run_id}");
        let err = || query_err("reading", "sweep_results", &target);
        let raw: Vec<(i64, Json<serde_json::Value>, Json<serde_json::Value>)> =
            on_pool!(self, |p| {
                sqlx::query(
                    "SELECT set_index, params, metrics FROM sweep_results WHERE run_id = $1 \
                     ORDER BY set_index",
                )
                .bind(run_id)
                .fetch_all(p)
                .await
                .map_err(err())?
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get("set_index")?,
                        r.try_get("params")?,
                        r.try_get("metrics")?,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(err())?
            });
        raw.into_iter()
            .map(|(i, params, metrics)| {
                Ok(SweepResult {
                    set_index: to_u64("sweep_results", run_id, "set index", i)?,
                    params: params.0,
                    metrics: metrics.0,
                })
            })
            .collect()
    }
}
