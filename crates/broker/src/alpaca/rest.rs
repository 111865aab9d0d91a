//! The trading API's HTTP core: every request waits for a token of the key's bucket (200 a minute),
//! carries the key pair in headers marked sensitive, and maps Alpaca's replies onto [`BrokerError`]
//! by what the caller can conclude. Idempotent requests are retried on a 5xx, a 429 (after the
//! `X-RateLimit-Reset`/`Retry-After` wait) and a lost connection; a submission never is (see
//! `AlpacaClient::submit`).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use vectura_data::alpaca::RetryPolicy;
use vectura_data::ratelimit::TokenBucket;

use super::config::AlpacaConfig;
use super::wire::error_body;
use crate::error::BrokerError;

/// A failed request, before it is turned into a [`BrokerError`].
#[derive(Debug)]
pub(crate) enum Failure {
    /// No complete reply (a timeout, a refused or broken connection, a body cut off): the request may
    /// or may not have had its effect.
    Lost(reqwest::Error),
    /// A reply with a non-2xx status.
    Status {
        status: u16,
        code: Option<i64>,
        message: String,
        retry_after: Option<Duration>,
    },
}

impl Failure {
    /// Whether the same request may succeed later (5xx, 429, lost).
    pub fn transient(&self) -> bool {
        match self {
            Failure::Lost(_) => true,
            Failure::Status { status, .. } => *status == 429 || *status >= 500,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Lost(_) => None,
            Failure::Status { status, .. } => Some(*status),
        }
    }
}

/// The HTTP client of one key pair.
pub(crate) struct Rest {
    http: reqwest::Client,
    base: String,
    auth: HeaderMap,
    limiter: Arc<TokenBucket>,
    pub retry: RetryPolicy,
}

impl Rest {
    pub fn new(cfg: &AlpacaConfig) -> Result<Rest, BrokerError> {
        let bad = || {
            BrokerError::Config("APCA_API_KEY_ID or APCA_API_SECRET_KEY has characters an HTTP header cannot carry: copy them again from the Alpaca dashboard".into())
        };
        let mut auth = HeaderMap::new();
        auth.insert(
            "APCA-API-KEY-ID",
            HeaderValue::from_str(&cfg.key_id).map_err(|_| bad())?,
        );
        let mut secret = HeaderValue::from_str(cfg.secret()).map_err(|_| bad())?;
        secret.set_sensitive(true);
        auth.insert("APCA-API-SECRET-KEY", secret);
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("vectura/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BrokerError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Rest {
            http,
            base: cfg.trading_url.clone(),
            auth,
            limiter: Arc::new(TokenBucket::per_window(
                cfg.rate_limit_per_minute.max(1),
                Duration::from_secs(60),
            )),
            retry: cfg.retry,
        })
    }

    /// One request, no retry.
    pub async fn once(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(u16, Vec<u8>), Failure> {
        self.limiter.acquire().await;
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .headers(self.auth.clone());
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%method, path, error = %e, "alpaca request got no reply");
                return Err(Failure::Lost(e));
            }
        };
        let status = resp.status();
        let retry_after = wait_hint(resp.headers());
        let bytes = match resp.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => {
                tracing::debug!(%method, path, status = status.as_u16(), error = %e, "alpaca reply broke off");
                return Err(Failure::Lost(e));
            }
        };
        tracing::debug!(%method, path, status = status.as_u16(), "alpaca request");
        if status.is_success() {
            return Ok((status.as_u16(), bytes));
        }
        let (code, message) = error_body(&bytes);
        let message = message.unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
        });
        Err(Failure::Status {
            status: status.as_u16(),
            code,
            message,
            retry_after,
        })
    }

    /// The wait before retry `attempt` (1 for the first retry) after `f`.
    pub fn wait(&self, f: &Failure, attempt: u32) -> Duration {
        match f {
            Failure::Status {
                status: 429,
                retry_after: Some(w),
                ..
            } => (*w).min(self.retry.max_retry_after),
            _ => self.retry.backoff(attempt),
        }
    }

    /// A request, retried on transient failures when `retry`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        retry: bool,
    ) -> Result<Vec<u8>, BrokerError> {
        let mut attempt = 1;
        loop {
            match self.once(method.clone(), path, query, body).await {
                Ok((_, b)) => return Ok(b),
                Err(f) if retry && f.transient() && attempt < self.retry.max_attempts => {
                    let w = self.wait(&f, attempt);
                    tracing::info!(%method, path, status = ?f.status(), wait_ms = w.as_millis() as u64, attempt, "alpaca request failed; retrying");
                    tokio::time::sleep(w).await;
                    attempt += 1;
                }
                Err(f) => return Err(self.error(f, path)),
            }
        }
    }

    /// A GET whose JSON reply is parsed into `T`, retried on transient failures.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, BrokerError> {
        let bytes = self.call(Method::GET, path, query, None, true).await?;
        parse(&bytes, path)
    }

    /// The error a failure means for the caller.
    pub fn error(&self, f: Failure, path: &str) -> BrokerError {
        match f {
            Failure::Lost(e) => BrokerError::Unavailable {
                message: format!("{}{path}: no reply ({})", self.base, kind_of(&e)),
                source: Some(Box::new(e)),
            },
            Failure::Status {
                status,
                code,
                message,
                retry_after,
            } => match status {
                401 => BrokerError::Unauthorized {
                    message,
                    endpoint: self.base.clone(),
                },
                // 403 is also Alpaca's "insufficient buying power" (code 40310000): a refusal.
                403 if code.is_some_and(|c| c != 40110000) => BrokerError::Rejected {
                    status,
                    code,
                    message,
                },
                403 => BrokerError::Unauthorized {
                    message,
                    endpoint: self.base.clone(),
                },
                404 => BrokerError::NotFound {
                    what: format!("{path} ({message})"),
                },
                429 => BrokerError::RateLimited { retry_after },
                s if s >= 500 => BrokerError::Unavailable {
                    message: format!("{}{path}: HTTP {s} ({message})", self.base),
                    source: None,
                },
                _ => BrokerError::Rejected {
                    status,
                    code,
                    message,
                },
            },
        }
    }
}

fn kind_of(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the reply broke off"
    } else {
        "the connection failed"
    }
}

/// Parses a JSON reply.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8], path: &str) -> Result<T, BrokerError> {
    serde_json::from_slice(bytes).map_err(|e| BrokerError::Protocol {
        message: format!("{path}: the reply is not the documented JSON ({e})"),
        source: Some(Box::new(e)),
    })
}

/// How long a 429 asks to wait: `Retry-After` (seconds), else until `X-RateLimit-Reset` (Unix
/// seconds) when the quota is used up.
fn wait_hint(h: &HeaderMap) -> Option<Duration> {
    let num = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
    };
    if let Some(s) = num("Retry-After").filter(|s| s.is_finite() && *s >= 0.0) {
        return Some(Duration::from_secs_f64(s));
    }
    if num("X-RateLimit-Remaining") == Some(0.0) {
        if let Some(reset) = num("X-RateLimit-Reset") {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            return Some(Duration::from_secs_f64((reset - now).clamp(0.0, 3_600.0)));
        }
    }
    None
}

/// Whether a refusal says the client order id is taken (the order exists).
pub(crate) fn is_duplicate_client_order_id(f: &Failure) -> bool {
    matches!(f, Failure::Status { status: 422, message, .. } if message.contains("client_order_id must be unique"))
}
