//! Vectura's web dashboard: an axum server with server-rendered pages, a JSON API under `/api/v1`
//! (its OpenAPI document at `/api/v1/openapi.json`), `/healthz` and Prometheus metrics at `/metrics`.
//!
//! Every page and API call needs a login session (an HttpOnly, SameSite=Strict cookie whose SHA-256
//! is stored in `web_sessions`); every request that changes something also needs the session's CSRF
//! token (the `csrf` form field or the `X-CSRF-Token` header). Public: `/login`, `/setup` (the
//! one-time token printed at first start), `/healthz`, `/metrics` (counters only) and `/static/*`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), vectura_web::WebError> {
//! let store = vectura_store::Store::open("sqlite://vectura.db?mode=rwc").await.unwrap();
//! let server = vectura_web::Server::bind(store, vectura_web::Config::default()).await?;
//! println!("listening on http://{}", server.local_addr());
//! server.run().await
//! # }
//! ```

pub mod api;
pub mod assets;
pub mod auth;
pub mod backtests;
pub mod data;
pub mod data_fetch;
pub mod demo;
pub mod error;
pub mod error_pages;
pub mod histogram;
pub mod job_pages;
pub mod jobs;
pub mod live;
pub mod live_pages;
pub mod login_link;
pub mod metrics;
pub mod ny_time;
pub mod openapi;
pub mod pages;
pub mod performance;
pub mod security;
pub mod server;
pub mod session_cache;
pub mod sweep_form;
pub mod sweeps;

pub use crate::auth::{hash_password, verify_password, MIN_PASSWORD_LEN};
pub use crate::error::WebError;
pub use crate::server::{router, AppState, Config, Server};

/// The dashboard's one user (the admin).
pub const ADMIN_USER: &str = "admin";

/// The time now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
