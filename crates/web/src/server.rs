//! The server: its configuration, shared state, routes and layers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use vectura_store::Store;

use crate::auth::{random_token, LoginLimiter};
use crate::error::WebError;
use crate::jobs::Jobs;
use crate::metrics::Metrics;
use crate::{api, assets, backtests, data, job_pages, pages, security, sweep_form, sweeps};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; 127.0.0.1:8080 unless told otherwise.
    pub bind: SocketAddr,
    /// Mark cookies `Secure` (when the dashboard is reached over HTTPS, through a proxy).
    pub secure_cookies: bool,
    /// How long a login lasts (absolute, from the login).
    pub session_ttl: Duration,
    /// Login rate limit: the window, failures per client address, failures in total.
    pub login_window: Duration,
    pub login_per_client: usize,
    pub login_total: usize,
    /// Jobs run at once (the rest wait, queued).
    pub max_jobs: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
            secure_cookies: false,
            session_ttl: Duration::from_secs(12 * 3600),
            login_window: Duration::from_secs(15 * 60),
            login_per_client: 5,
            login_total: 50,
            max_jobs: 1,
        }
    }
}

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    pub config: Config,
    pub limiter: LoginLimiter,
    pub metrics: Metrics,
    /// The one-time set-up token while no password exists (consumed by `/setup`).
    pub setup_token: Mutex<Option<String>>,
    /// The running and queued jobs.
    pub jobs: Jobs,
    /// Sweep heat maps computed lately.
    pub sweep_cache: crate::sweeps::DetailCache,
    /// Trades CSV exports made lately.
    pub csv_cache: crate::live_pages::CsvCache,
    /// The trades page's round-trip statistics and P&L histogram, per symbol filter.
    pub round_trip_cache: crate::live_pages::RoundTripCache,
    /// Sessions read lately (a database read per request would cap the request rate).
    pub sessions: crate::session_cache::SessionCache,
    /// The trader running in this process (`vectura demo`), when one does.
    pub live: std::sync::OnceLock<Arc<crate::live::LiveFeed>>,
    /// The one-time login link's token (`vectura demo` prints it), until it is used.
    pub login_link: Mutex<Option<String>>,
    /// The Alpaca market-data client data fetches use; unset: the environment's, read per fetch
    /// (so keys set later need no restart of the state, and the tests pass an emulator's).
    pub alpaca: std::sync::OnceLock<vectura_data::alpaca::AlpacaData>,
}

impl AppState {
    /// The state over `store`; a set-up token is made when no user has a password yet.
    pub async fn new(store: Store, config: Config) -> Result<AppState, WebError> {
        let token = if store.user_count().await? == 0 {
            Some(random_token())
        } else {
            None
        };
        Ok(AppState {
            limiter: LoginLimiter::new(
                config.login_window,
                config.login_per_client,
                config.login_total,
            ),
            store,
            metrics: Metrics::default(),
            setup_token: Mutex::new(token),
            jobs: Jobs::new(config.max_jobs),
            sweep_cache: Default::default(),
            csv_cache: Default::default(),
            round_trip_cache: Default::default(),
            sessions: Default::default(),
            live: Default::default(),
            login_link: Mutex::new(None),
            alpaca: Default::default(),
            config,
        })
    }

    /// Makes a new one-time login link token (replacing an unused one) and returns it.
    pub fn issue_login_link(&self) -> String {
        let t = random_token();
        *self.login_link.lock().unwrap_or_else(|p| p.into_inner()) = Some(t.clone());
        t
    }

    /// The set-up token, while one is valid.
    pub fn setup_token(&self) -> Option<String> {
        self.setup_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

async fn count(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let res = next.run(req).await;
    state
        .metrics
        .request(&method, &route, res.status().as_u16());
    res
}

/// Every route, with the session, CSRF, metrics and header layers.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/setup", get(pages::setup_form).post(pages::setup))
        .route("/logout", post(pages::logout))
        .route("/login/link", get(crate::login_link::enter))
        .merge(crate::live_pages::routes())
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route("/static/{name}", get(assets::serve))
        .route("/data", get(data::page))
        .route("/data/fetch", post(crate::data_fetch::submit))
        .route("/api/v1/data/fetch", post(crate::data_fetch::api_start))
        .route("/data/{symbol}", get(data::symbol_page))
        .route(
            "/data/{symbol}/delete",
            get(data::delete_confirm).post(data::delete_form),
        )
        .route("/backtests", get(backtests::page).post(backtests::submit))
        .route("/backtests/compare", get(backtests::compare))
        .route("/backtests/{id}", get(backtests::run_page))
        .route("/backtests/{id}/cancel", post(backtests::cancel_form))
        .route("/backtests/{id}/rerun", post(backtests::rerun_form))
        .route("/backtests/{id}/delete", post(backtests::delete_form))
        .route("/backtests/{id}/report.html", get(backtests::report))
        .route(
            "/api/v1/backtests",
            get(backtests::api_list).post(backtests::api_start),
        )
        .route("/api/v1/backtests/{id}", get(backtests::api_get))
        .route("/api/v1/backtests/{id}/events", get(backtests::api_events))
        .route("/api/v1/backtests/{id}/cancel", post(backtests::api_cancel))
        .route(
            "/api/v1/backtests/{id}/result.json",
            get(backtests::api_result),
        )
        .route("/sweeps", get(sweeps::page).post(sweep_form::submit))
        .route("/jobs/{id}", get(job_pages::page))
        .route("/jobs/{id}/cancel", post(job_pages::cancel_form))
        .route("/api/v1/jobs/{id}", get(job_pages::api_get))
        .route("/api/v1/jobs/{id}/events", get(job_pages::api_events))
        .route("/api/v1/jobs/{id}/cancel", post(job_pages::api_cancel))
        .route("/sweeps/{id}", get(sweeps::run_page))
        .route("/api/v1/openapi.json", get(crate::openapi::document))
        .route("/api/v1/session", get(api::session))
        .route("/api/v1/ranges", get(data::api_ranges))
        .route(
            "/api/v1/ranges/{symbol}",
            get(data::api_range).delete(data::api_delete),
        )
        .route(
            "/api/v1/ranges/{symbol}/import",
            post(data::api_import).layer(axum::extract::DefaultBodyLimit::max(data::IMPORT_LIMIT)),
        )
        .route(
            "/api/v1/sweeps",
            get(sweeps::api_runs).post(sweep_form::api_start),
        )
        .route("/api/v1/sweeps/{id}", get(sweeps::api_run))
        .fallback(api::not_found)
        .route_layer(from_fn_with_state(state.clone(), count))
        .layer(from_fn_with_state(state.clone(), security::require_session))
        .layer(from_fn_with_state(
            state.clone(),
            crate::error_pages::error_pages,
        ))
        .layer(from_fn(security::headers))
        .with_state(state)
}

/// A bound server, ready to run.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
}

impl Server {
    /// Binds `config.bind` and prepares the state (marking jobs a stopped server left unfinished
    /// as failed).
    pub async fn bind(store: Store, config: Config) -> Result<Server, WebError> {
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|source| WebError::Bind {
                addr: config.bind.to_string(),
                source,
            })?;
        store
            .fail_unfinished_jobs(
                "the server stopped while the job ran: run it again",
                crate::now_ms(),
            )
            .await?;
        let state = Arc::new(AppState::new(store, config).await?);
        // Build the compressed static files now rather than on the first page view.
        let _ = assets::all();
        Ok(Server { listener, state })
    }

    /// The address listened on (the port chosen when the configuration said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.state.config.bind)
    }

    /// The one-time set-up token, when no password is set yet (print it for the admin).
    pub fn setup_token(&self) -> Option<String> {
        self.state.setup_token()
    }

    /// The shared state.
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until the process stops.
    pub async fn run(self) -> Result<(), WebError> {
        let app = router(self.state);
        axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .map_err(|source| WebError::Serve { source })
    }
}
