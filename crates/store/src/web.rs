//! The dashboard's tables: `web_users` (password hashes), `web_sessions` (login sessions by the hash
//! of their cookie) and `web_jobs` (backtests and sweeps run by the server).
//!
//! Times are Unix milliseconds given by the caller (the store reads no clock here), so expiry is
//! one integer comparison in both dialects and tests can move time.

use sqlx::types::Json;
use sqlx::Row;

use crate::error::query_err;
use crate::{on_pool, BeginWrite, Store, StoreError};

/// One login session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// The SHA-256 (hex) of the cookie's secret.
    pub id_hash: String,
    pub username: String,
    /// The token every form and mutating call of this session must carry.
    pub csrf_token: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// Where a server job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(s: &str) -> Option<JobStatus> {
        Some(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "done" => JobStatus::Done,
            "failed" => JobStatus::Failed,
            "cancelled" => JobStatus::Cancelled,
            _ => return None,
        })
    }

    /// Whether the job has ended (nothing changes it any more).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// One server job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct WebJob {
    pub id: String,
    /// `backtest` or `sweep`.
    pub kind: String,
    pub name: String,
    pub status: JobStatus,
    /// The request as submitted (re-running a job submits it again).
    pub request: serde_json::Value,
    /// The progress events seen so far (a JSON array).
    pub progress: serde_json::Value,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
}

/// A job summary for lists: everything but the (large) result.
#[derive(Debug, Clone, PartialEq)]
pub struct WebJobSummary {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub status: JobStatus,
    pub request: serde_json::Value,
    pub error: Option<String>,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

fn check_user(username: &str) -> Result<(), StoreError> {
    if username.is_empty()
        || username.len() > 64
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(StoreError::Invalid(format!(
            "web_users: the user name {username:?} is not allowed: use 1 to 64 letters, digits, '_', '-' or '.'"
        )));
    }
    Ok(())
}

fn check_kind(kind: &str) -> Result<(), StoreError> {
    if matches!(kind, "backtest" | "sweep" | "fetch") {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "web_jobs: the kind {kind:?} is not known: backtest, sweep or fetch"
        )))
    }
}

fn bad_status(id: &str, s: &str) -> StoreError {
    StoreError::BadRow {
        table: "web_jobs",
        target: format!("job {id}"),
        detail: format!("the status {s:?} (queued, running, done, failed or cancelled expected)"),
    }
}

impl Store {
    /// Sets (or replaces) a user's password hash and ends every session of that user, in one
    /// transaction: a changed password logs everyone out.
    pub async fn set_user_password(
        &self,
        username: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        check_user(username)?;
        if password_hash.is_empty() {
            return Err(StoreError::Invalid(
                "web_users: the password hash is empty: hash the password first".to_string(),
            ));
        }
        let target = format!("user {username}");
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await.map_err(query_err(
                "starting to write",
                "web_users",
                &target,
            ))?;
            sqlx::query(
                "INSERT INTO web_users (username, password_hash, updated_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, \
                 updated_at_ms = excluded.updated_at_ms",
            )
            .bind(username)
            .bind(password_hash)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(query_err("writing", "web_users", &target))?;
            sqlx::query("DELETE FROM web_sessions WHERE username = $1")
                .bind(username)
                .execute(&mut *tx)
                .await
                .map_err(query_err("deleting", "web_sessions", &target))?;
            tx.commit()
                .await
                .map_err(query_err("committing", "web_users", &target))?;
        });
        Ok(())
    }

    /// A user's password hash, if the user exists.
    pub async fn user_password_hash(&self, username: &str) -> Result<Option<String>, StoreError> {
        let target = format!("user {username}");
        on_pool!(self, |p| {
            sqlx::query_scalar("SELECT password_hash FROM web_users WHERE username = $1")
                .bind(username)
                .fetch_optional(p)
                .await
                .map_err(query_err("reading", "web_users", target))
        })
    }

    /// How many users have a password.
    pub async fn user_count(&self) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT COUNT(*) FROM web_users")
                .fetch_one(p)
                .await
                .map_err(query_err("reading", "web_users", "every user"))?
        });
        Ok(n.max(0) as u64)
    }

    /// Stores a new session (its expired neighbours are removed in the same transaction, so the
    /// table does not grow with logins).
    pub async fn create_session(&self, s: &WebSession) -> Result<(), StoreError> {
        check_user(&s.username)?;
        let target = format!("a session of {}", s.username);
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await.map_err(query_err(
                "starting to write",
                "web_sessions",
                &target,
            ))?;
            sqlx::query("DELETE FROM web_sessions WHERE expires_at_ms <= $1")
                .bind(s.created_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(query_err("deleting", "web_sessions", "expired sessions"))?;
            sqlx::query(
                "INSERT INTO web_sessions (id_hash, username, csrf_token, created_at_ms, expires_at_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&s.id_hash)
            .bind(&s.username)
            .bind(&s.csrf_token)
            .bind(s.created_at_ms)
            .bind(s.expires_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(query_err("writing", "web_sessions", &target))?;
            tx.commit()
                .await
                .map_err(query_err("committing", "web_sessions", &target))?;
        });
        Ok(())
    }

    /// The session with this id hash, if it exists and has not expired at `now_ms`.
    pub async fn session(
        &self,
        id_hash: &str,
        now_ms: i64,
    ) -> Result<Option<WebSession>, StoreError> {
        let row = on_pool!(self, |p| {
            sqlx::query(
                "SELECT id_hash, username, csrf_token, created_at_ms, expires_at_ms FROM web_sessions \
                 WHERE id_hash = $1 AND expires_at_ms > $2",
            )
            .bind(id_hash)
            .bind(now_ms)
            .fetch_optional(p)
            .await
            .map_err(query_err("reading", "web_sessions", "a session"))?
            .map(|r| {
                Ok::<_, sqlx::Error>(WebSession {
                    id_hash: r.try_get("id_hash")?,
                    username: r.try_get("username")?,
                    csrf_token: r.try_get("csrf_token")?,
                    created_at_ms: r.try_get("created_at_ms")?,
                    expires_at_ms: r.try_get("expires_at_ms")?,
                })
            })
            .transpose()
            .map_err(query_err("reading", "web_sessions", "a session"))?
        });
        Ok(row)
    }

    /// Ends one session (logout). Whether it existed.
    pub async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let n = on_pool!(self, |p| {
            sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
                .bind(id_hash)
                .execute(p)
                .await
                .map_err(query_err("deleting", "web_sessions", "a session"))?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Stores a new job (status queued).
    pub async fn create_job(
        &self,
        id: &str,
        kind: &str,
        name: &str,
        request: &serde_json::Value,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        check_kind(kind)?;
        let target = format!("job {id}");
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO web_jobs (id, kind, name, status, request, created_at_ms) \
                 VALUES ($1, $2, $3, 'queued', $4, $5)",
            )
            .bind(id)
            .bind(kind)
            .bind(name)
            .bind(Json(request))
            .bind(now_ms)
            .execute(p)
            .await
            .map_err(query_err("writing", "web_jobs", target))?;
        });
        Ok(())
    }

    /// Marks a queued job running.
    pub async fn start_job(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE web_jobs SET status = 'running', started_at_ms = $2 \
                 WHERE id = $1 AND status = 'queued'",
            )
            .bind(id)
            .bind(now_ms)
            .execute(p)
            .await
            .map_err(query_err("updating", "web_jobs", format!("job {id}")))?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Replaces a running job's progress events (a JSON array).
    pub async fn set_job_progress(
        &self,
        id: &str,
        progress: &serde_json::Value,
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| {
            sqlx::query("UPDATE web_jobs SET progress = $2 WHERE id = $1 AND status = 'running'")
                .bind(id)
                .bind(Json(progress))
                .execute(p)
                .await
                .map_err(query_err("updating", "web_jobs", format!("job {id}")))?;
        });
        Ok(())
    }

    /// Ends a queued or running job with its final status, progress, result and error. Whether it
    /// changed (a job already ended is left as it was).
    pub async fn finish_job(
        &self,
        id: &str,
        status: JobStatus,
        progress: &serde_json::Value,
        result: Option<&serde_json::Value>,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if !status.is_final() {
            return Err(StoreError::Invalid(format!(
                "web_jobs: job {id} must end as done, failed or cancelled, not {}",
                status.as_str()
            )));
        }
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE web_jobs SET status = $2, progress = $3, result = $4, error = $5, \
                 finished_at_ms = $6 WHERE id = $1 AND status IN ('queued', 'running')",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(Json(progress))
            .bind(result.map(Json))
            .bind(error)
            .bind(now_ms)
            .execute(p)
            .await
            .map_err(query_err("updating", "web_jobs", format!("job {id}")))?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Jobs left queued or running by a server that stopped: they are failed with `reason` (a
    /// restarted server does not pick up a half-run job). How many.
    pub async fn fail_unfinished_jobs(&self, reason: &str, now_ms: i64) -> Result<u64, StoreError> {
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE web_jobs SET status = 'failed', error = $1, finished_at_ms = $2 \
                 WHERE status IN ('queued', 'running')",
            )
            .bind(reason)
            .bind(now_ms)
            .execute(p)
            .await
            .map_err(query_err("updating", "web_jobs", "unfinished jobs"))?
            .rows_affected()
        });
        Ok(n)
    }

    /// One job, if stored.
    pub async fn job(&self, id: &str) -> Result<Option<WebJob>, StoreError> {
        let target = format!("job {id}");
        let err = || query_err("reading", "web_jobs", &target);
        let row = on_pool!(self, |p| {
            sqlx::query(
                "SELECT id, kind, name, status, request, progress, result, error, created_at_ms, \
                 started_at_ms, finished_at_ms FROM web_jobs WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(p)
            .await
            .map_err(err())?
            .map(|r| {
                Ok::<_, sqlx::Error>((
                    WebJob {
                        id: r.try_get("id")?,
                        kind: r.try_get("kind")?,
                        name: r.try_get("name")?,
                        status: JobStatus::Queued,
                        request: r.try_get::<Json<serde_json::Value>, _>("request")?.0,
                        progress: r.try_get::<Json<serde_json::Value>, _>("progress")?.0,
                        result: r
                            .try_get::<Option<Json<serde_json::Value>>, _>("result")?
                            .map(|j| j.0),
                        error: r.try_get("error")?,
                        created_at_ms: r.try_get("created_at_ms")?,
                        started_at_ms: r.try_get("started_at_ms")?,
                        finished_at_ms: r.try_get("finished_at_ms")?,
                    },
                    r.try_get::<String, _>("status")?,
                ))
            })
            .transpose()
            .map_err(err())?
        });
        row.map(|(mut job, status)| {
            job.status = JobStatus::parse(&status).ok_or_else(|| bad_status(id, &status))?;
            Ok(job)
        })
        .transpose()
    }

    /// The newest `limit` jobs of a kind, newest first, without their results.
    pub async fn jobs(&self, kind: &str, limit: u32) -> Result<Vec<WebJobSummary>, StoreError> {
        check_kind(kind)?;
        let err = || query_err("reading", "web_jobs", format!("the {kind} jobs"));
        let rows = on_pool!(self, |p| {
            sqlx::query(
                "SELECT id, kind, name, status, request, error, created_at_ms, finished_at_ms \
                 FROM web_jobs WHERE kind = $1 ORDER BY created_at_ms DESC, id DESC LIMIT $2",
            )
            .bind(kind)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await
            .map_err(err())?
            .iter()
            .map(|r| {
                Ok::<_, sqlx::Error>((
                    WebJobSummary {
                        id: r.try_get("id")?,
                        kind: r.try_get("kind")?,
                        name: r.try_get("name")?,
                        status: JobStatus::Queued,
                        request: r.try_get::<Json<serde_json::Value>, _>("request")?.0,
                        error: r.try_get("error")?,
                        created_at_ms: r.try_get("created_at_ms")?,
                        finished_at_ms: r.try_get("finished_at_ms")?,
                    },
                    r.try_get::<String, _>("status")?,
                ))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(err())?
        });
        rows.into_iter()
            .map(|(mut j, s)| {
                j.status = JobStatus::parse(&s).ok_or_else(|| bad_status(&j.id, &s))?;
                Ok(j)
            })
            .collect()
    }

    /// Deletes an ended job. Whether it was deleted (a queued or running job is kept: cancel it
    /// first).
    pub async fn delete_job(&self, id: &str) -> Result<bool, StoreError> {
        let n = on_pool!(self, |p| {
            sqlx::query(
                "DELETE FROM web_jobs WHERE id = $1 AND status IN ('done', 'failed', 'cancelled')",
            )
            .bind(id)
            .execute(p)
            .await
            .map_err(query_err("deleting", "web_jobs", format!("job {id}")))?
            .rows_affected()
        });
        Ok(n > 0)
    }
}
