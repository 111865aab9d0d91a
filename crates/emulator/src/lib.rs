//! A local emulator of Alpaca's market-data API (stock bars), trading API and streams, and Alpha
//! Vantage's `SPLITS`, for tests and offline runs, with fault injection.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use vectura_emulator::{Config, Emulator};
//! let emu = Emulator::start(Config::default()).await?;
//! let base_url = emu.base_url(); // http://127.0.0.1:PORT, for both Alpaca and Alpha Vantage
//! emu.handle().update_faults(|f| f.every_nth_429 = Some(3));
//! # Ok(()) }
//! ```
//!
//! Served, in Alpaca's and Alpha Vantage's JSON shapes:
//! - `GET /v2/stocks/{symbol}/bars` and `GET /v2/stocks/bars?symbols=A,B`: `timeframe` (`[1-59]Min`,
//!   `[1-23]Hour`, `1Day`; also `T`/`H`/`D`), `start`/`end` (RFC 3339 or `YYYY-MM-DD`, meaning
//!   00:00Z; both inclusive; defaults: today 00:00Z and now), `limit` (1–10000, default 1000, over
//!   all symbols), `page_token`, `feed` (`sip` default, `iex`), `adjustment` (`raw` default,
//!   `split`, `all`), `sort` (`asc`, `desc`). The `APCA-API-KEY-ID` and `APCA-API-SECRET-KEY`
//!   headers are required: 401 `{"message":"unauthorized."}` without them, 403
//!   `{"message":"forbidden."}` for a pair [`Config::keys`] does not list. Every reply carries
//!   `X-RateLimit-Limit`/`-Remaining`/`-Reset`. Bad parameters are 400 `{"message":...}`.
//! - Data: deterministic synthetic minute bars (from [`Config::seed`]) for any symbol on every
//!   regular-session minute of every NYSE session (`vectura_core::calendar`, early closes
//!   respected) from [`Config::first_day`] up to now, plus sparse pre/after-hours bars with
//!   [`Config::extended_hours`]; or the bars of a CSV file ([`EmulatorHandle::load_csv`]). Raw
//!   prices reflect the splits set for the symbol; `adjustment=split` back-adjusts them.
//! - `GET /v1/corporate-actions?symbols=A,B&types=forward_split,reverse_split&start&end&limit&page_token`:
//!   the same splits as Alpaca's corporate actions (`forward_splits` / `reverse_splits`).
//! - `GET /query?function=SPLITS&symbol=X&apikey=K`: `{"symbol":"X","data":[{"effective_date":
//!   "2020-08-31","split_factor":"4.0000"}]}` (newest first), or the reply [`Faults::av_reply`] asks for.
//!
//! Trading (one account per key pair, [`TradingConfig`]): `/v2/account`, `/v2/clock`, `/v2/calendar`,
//! `/v2/assets[/{symbol}]`, `/v2/orders` (POST with client-order-id uniqueness forever and the 422
//! for a duplicate; GET with `status`/`after`/`until`/`limit`/`direction`/`symbols`/`side`; DELETE all
//! with a 207 body), `/v2/orders/{id}` (GET, DELETE), `/v2/orders:by_client_order_id`,
//! `/v2/positions[/{symbol}]` (GET, DELETE closes), `/v2/account/activities[/FILL]` (paged). Fills
//! come from the same bars the market-data endpoints serve (see `trading::engine` for the rules), in
//! emulator time: the system clock, a replay clock ([`TradingConfig::replay`], `speed`, `start`), or a
//! stopped clock that [`EmulatorHandle::set_time`], [`EmulatorHandle::advance`] and
//! [`EmulatorHandle::step`] move. Streams: `ws://…/stream` (`trade_updates`) and `ws://…/v2/iex`,
//! `/v2/sip` (bars), see `streams`. Trading and stream faults: [`TradingFaults`]; every order request
//! is recorded ([`EmulatorHandle::order_requests`], `--orders-log`).
//!
//! Faults ([`Faults`], changed at run time through [`EmulatorHandle`]): a 429 every N-th market-data
//! request (with `Retry-After` always, every other time or never), 5xx by probability or by request
//! number, a (symbol, day) failing K times before it succeeds, slow replies, Alpaca's per-key
//! request-per-minute limit, Alpha Vantage's daily limit. Every request is logged per key
//! ([`RequestRecord`]) so tests can check the client's pacing ([`EmulatorHandle::max_requests_in_window`]).

mod alpaca;
mod av;
pub mod clock;
mod control;
mod corp;
mod csv;
mod streams;
mod synth;
mod trading;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;

pub use clock::{Clock, Micros};
pub use rust_decimal::Decimal;
pub use synth::{EmuBar, Feed, Timeframe};
pub use trading::{
    FaultAction, LostReply, OrderRequestRecord, Rejection, RouteFault, TradingConfig, TradingFaults,
};

/// When a 429 carries a `Retry-After` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryAfter {
    /// Never (Alpaca itself sends only the `X-RateLimit-*` headers).
    #[default]
    Never,
    /// On every 429, with this many seconds.
    Always(u64),
    /// On every other 429 (the 1st, 3rd, ...), with this many seconds.
    EveryOther(u64),
}

/// What the Alpha Vantage endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AvReply {
    /// The split list of the symbol (an empty `data` array when it has none).
    #[default]
    Normal,
    /// `{"Information": "... 25 requests per day ..."}` (today's rate-limit reply).
    Information,
    /// `{"Note": "... 5 calls per minute and 500 calls per day ..."}` (the older rate-limit reply).
    Note,
    /// `{"Error Message": "Invalid API call. ..."}`.
    ErrorMessage,
    /// An HTML page with status 200.
    Html,
    /// An empty body with status 200.
    Empty,
    /// A truncated JSON body with status 200.
    BadJson,
    /// Any status, content type and body.
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
}

/// A (symbol, New York date) whose market-data requests fail `times` more times with `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingDay {
    pub symbol: String,
    pub day: NaiveDate,
    /// Failures left; each failing reply takes one.
    pub times: u32,
    /// The status of the failing replies (500, 502, 503, ... or 429).
    pub status: u16,
}

/// Faults to inject. `Faults::default()` injects none.
///
/// Order of checks for a market-data request: delay, credentials (401/403), [`Faults::rate_limit`],
/// [`Faults::every_nth_429`], [`Faults::fail_requests`], [`Faults::error_rate`], parameters (400),
/// [`Faults::failing_days`]. Request numbers count the market-data requests with credentials,
/// from 1.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Every N-th market-data request is answered 429 `{"message":"too many requests."}`.
    pub every_nth_429: Option<u64>,
    /// Whether the 429s (injected or from [`Faults::rate_limit`]) carry `Retry-After`.
    pub retry_after: RetryAfter,
    /// Probability (0..=1) that a market-data request is answered with a 5xx (seeded, so a run repeats).
    pub error_rate: f64,
    /// Market-data request numbers answered with a 5xx.
    pub fail_requests: BTreeSet<u64>,
    /// The 5xx statuses used by `error_rate` and `fail_requests`, in turn; empty means 500, 502, 503.
    /// A 500 has a JSON body; the others an HTML body, as a load balancer sends.
    pub error_statuses: Vec<u16>,
    /// (symbol, day) pairs failing some more times; a request fails when it asks for the symbol
    /// and its `start`..`end` overlaps the day (New York date).
    pub failing_days: Vec<FailingDay>,
    /// Delay before any reply (both APIs).
    pub delay: Duration,
    /// Delay only the next N requests (then it is set to `Some(0)`); `None` delays all.
    pub delay_requests: Option<u32>,
    /// Alpaca's limit: at most this many market-data requests per key in any 60 s; more are 429
    /// with `X-RateLimit-Remaining: 0` (Alpaca's free plan: 200).
    pub rate_limit: Option<u32>,
    /// The span [`Faults::rate_limit`] counts over; `None` is Alpaca's minute (tests shorten it to
    /// check pacing without waiting minutes).
    pub rate_window: Option<Duration>,
    /// What Alpha Vantage answers.
    pub av_reply: AvReply,
    /// Alpha Vantage's daily limit per key (free plan: 25): after it, the `Information` reply.
    pub av_daily_limit: Option<u32>,
    /// Every market-data error reply (401/403, 429, 4xx, 5xx) echoes the request's key id and
    /// secret in its message, as a misconfigured proxy or a debugging gateway might: clients must
    /// never print or store them.
    pub echo_credentials: bool,
}

/// The emulator's start-up settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Port on 127.0.0.1; 0 picks a free one ([`Emulator::addr`] tells which).
    pub port: u16,
    /// Seed of the synthetic bars and of the fault probabilities.
    pub seed: u64,
    /// Accepted (key id, secret) pairs; `None` accepts any non-empty pair.
    pub keys: Option<Vec<(String, String)>>,
    /// Accepted Alpha Vantage keys; `None` accepts any non-empty key.
    pub av_keys: Option<Vec<String>>,
    /// Also serve sparse pre-market and after-hours minute bars (04:00–09:30 and 16:00–20:00 ET).
    pub extended_hours: bool,
    /// The first day with bars (Alpaca's history starts 2016-01-04).
    pub first_day: NaiveDate,
    /// A fixed "now" (Unix seconds): no bar starting a minute before it is served, and it is the
    /// default `end`. `None` uses the system clock.
    pub now: Option<i64>,
    /// Splits per symbol: (effective date, ratio), 4.0 for a 4-for-1.
    pub splits: HashMap<String, Vec<(NaiveDate, f64)>>,
    /// Faults from the start.
    pub faults: Faults,
    /// The trading API: accounts, replay, order log, trading and stream faults.
    pub trading: TradingConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 0,
            seed: 42,
            keys: None,
            av_keys: None,
            extended_hours: false,
            first_day: NaiveDate::from_ymd_opt(2016, 1, 4).expect("valid date"),
            now: None,
            splits: HashMap::new(),
            faults: Faults::default(),
            trading: TradingConfig::default(),
        }
    }
}

/// One request the emulator received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Sequence number, from 1.
    pub id: u64,
    /// Arrival, monotonic.
    pub at: Instant,
    /// Arrival, Unix milliseconds.
    pub unix_ms: i64,
    /// `APCA-API-KEY-ID`, or Alpha Vantage's `apikey` (secrets are never recorded).
    pub key: Option<String>,
    pub method: String,
    pub path: String,
    /// The query string, with `apikey` masked.
    pub query: String,
    /// The status answered; 0 while the reply is pending or when the client gave up first.
    pub status: u16,
    /// The delay fault applied before answering (zero when none was).
    pub delayed: Duration,
}

pub(crate) struct Inner {
    pub seed: u64,
    pub keys: Option<Vec<(String, String)>>,
    pub av_keys: Option<Vec<String>>,
    pub extended_hours: bool,
    pub first_day: NaiveDate,
    pub clock: Clock,
    pub splits: HashMap<String, Vec<(NaiveDate, f64)>>,
    pub csv: HashMap<String, Arc<Vec<EmuBar>>>,
    pub faults: Faults,
    pub log: Vec<RequestRecord>,
    pub next_id: u64,
    /// Market-data requests with credentials so far.
    pub data_requests: u64,
    /// 429s sent so far (for [`RetryAfter::EveryOther`]).
    pub sent_429: u64,
    /// 5xx sent by `error_rate`/`fail_requests` so far (to pick the status in turn).
    pub sent_5xx: u64,
    pub rng: synth::SplitMix,
    /// Accepted market-data requests per key in the last minute.
    pub recent: HashMap<String, VecDeque<Instant>>,
    /// Alpha Vantage requests per (key, UTC date).
    pub av_counts: HashMap<(String, NaiveDate), u32>,
    /// Synthetic days generated for the trading engine.
    pub day_cache: RefCell<trading::bars::DayCache>,
    pub trading: trading::Trading,
}

pub(crate) struct Shared {
    pub seed: u64,
    pub inner: Mutex<Inner>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    /// Unix seconds of "now".
    pub(crate) fn now(&self) -> i64 {
        self.clock.now().div_euclid(clock::SECOND)
    }
}

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    addr: SocketAddr,
    handle: EmulatorHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

/// How often (real time) a running clock's due events are processed.
const TICK: Duration = Duration::from_millis(20);

/// Processes due events while the clock runs (publishing bars, filling orders), and drops streams
/// on [`TradingFaults::drop_streams_every`]. Ends with the emulator.
async fn tick(shared: std::sync::Weak<Shared>) {
    loop {
        tokio::time::sleep(TICK).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut inner = shared.lock();
        if inner.clock.runs() {
            trading::engine::sync(&mut inner);
        }
        if let Some(every) = inner.trading.faults.drop_streams_every {
            if inner.trading.last_drop.elapsed() >= every {
                inner.trading.last_drop = Instant::now();
                drop_streams(&mut inner, true, true);
            }
        }
    }
}

/// Closes stream connections (without a close frame); returns how many.
fn drop_streams(inner: &mut Inner, trade: bool, data: bool) -> usize {
    let mut n = 0;
    let t = &mut inner.trading;
    if trade {
        for a in t.accounts.values_mut() {
            for (_, tx) in a.conns.drain(..) {
                n += usize::from(tx.send(trading::StreamOut::Drop).is_ok());
            }
        }
    }
    if data {
        let stale = t.faults.stale_after_drop;
        for c in t.md_conns.drain(..) {
            n += usize::from(c.tx.send(trading::StreamOut::Drop).is_ok());
            if let Some(d) = stale {
                t.md_stale.insert(c.key.clone(), Instant::now() + d);
            }
        }
    }
    n
}

impl Emulator {
    /// Binds 127.0.0.1:[`Config::port`] and serves in a task of the current tokio runtime.
    pub async fn start(config: Config) -> std::io::Result<Emulator> {
        let mut csv: HashMap<String, Arc<Vec<EmuBar>>> = HashMap::new();
        let mut tcfg = config.trading;
        for (sym, path) in &tcfg.replay {
            let bars = csv::read_file(path)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            if bars.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("--replay {sym}={}: the file has no bars", path.display()),
                ));
            }
            csv.insert(sym.to_ascii_uppercase(), Arc::new(bars));
        }
        if !tcfg.replay.is_empty() && tcfg.symbols.is_none() {
            tcfg.symbols = Some(csv.keys().cloned().collect());
        }
        let clock = match (config.now, tcfg.replay.is_empty()) {
            (Some(now), _) => Clock::Manual(now * clock::SECOND),
            (None, true) => Clock::System,
            (None, false) => {
                let first = csv.values().filter_map(|b| b.first()).map(|b| b.t).min();
                let start = tcfg.start.or(first).unwrap_or(0);
                Clock::Scaled {
                    start: start * clock::SECOND,
                    wall: Instant::now(),
                    speed: tcfg.speed.unwrap_or(1.0),
                }
            }
        };
        let trading = trading::Trading::new(tcfg, config.seed, clock.now())?;
        let shared = Arc::new(Shared {
            seed: config.seed,
            inner: Mutex::new(Inner {
                seed: config.seed,
                keys: config.keys,
                av_keys: config.av_keys,
                extended_hours: config.extended_hours,
                first_day: config.first_day,
                clock,
                splits: config
                    .splits
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_uppercase(), v))
                    .collect(),
                csv,
                faults: config.faults,
                log: Vec::new(),
                next_id: 0,
                data_requests: 0,
                sent_429: 0,
                sent_5xx: 0,
                rng: synth::SplitMix(config.seed ^ 0x5EED_FA17),
                recent: HashMap::new(),
                av_counts: HashMap::new(),
                day_cache: RefCell::new(HashMap::new()),
                trading,
            }),
        });
        use trading::routes as tr;
        let trading_routes = Router::new()
            .route("/v2/account", get(tr::get_account))
            .route("/v2/clock", get(tr::get_clock))
            .route("/v2/calendar", get(tr::get_calendar))
            .route("/v2/assets", get(tr::get_assets))
            .route("/v2/assets/{symbol}", get(tr::get_asset))
            .route(
                "/v2/orders",
                get(tr::get_orders)
                    .post(tr::post_order)
                    .delete(tr::delete_orders),
            )
            .route(
                "/v2/orders:by_client_order_id",
                get(tr::get_order_by_client_id),
            )
            .route(
                "/v2/orders/{id}",
                get(tr::get_order)
                    .delete(tr::delete_order)
                    .patch(tr::patch_order),
            )
            .route(
                "/v2/positions",
                get(tr::get_positions).delete(tr::delete_positions),
            )
            .route(
                "/v2/positions/{symbol}",
                get(tr::get_position).delete(tr::delete_position),
            )
            .route("/v2/account/activities", get(tr::get_activities))
            .route(
                "/v2/account/activities/{kind}",
                get(tr::get_activities_of_type),
            )
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                tr::trading_guard,
            ));
        let app = Router::new()
            .route(
                "/v2/stocks/{symbol}/bars",
                axum::routing::get(alpaca::single_bars),
            )
            .route("/v2/stocks/bars", axum::routing::get(alpaca::multi_bars))
            .route(
                "/v1/corporate-actions",
                axum::routing::get(corp::corporate_actions),
            )
            .route("/query", axum::routing::get(av::query))
            .route("/stream", get(streams::trade_stream))
            .route("/v2/iex", get(streams::iex_stream))
            .route("/v2/sip", get(streams::sip_stream))
            .merge(trading_routes)
            .fallback(alpaca::not_found)
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                tr::route_faults,
            ))
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                record_and_delay,
            ))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let ticker = tokio::spawn(tick(Arc::downgrade(&shared)));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Emulator {
            addr,
            handle: EmulatorHandle { shared },
            stop: Some(stop),
            task: Some(task),
            ticker: Some(ticker),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the base URL for both the Alpaca and the Alpha Vantage client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A handle to change data and faults and to read the request log.
    pub fn handle(&self) -> EmulatorHandle {
        self.handle.clone()
    }

    /// Stops accepting connections, closes the streams and waits for open replies to finish.
    pub async fn shutdown(mut self) {
        drop_streams(&mut self.handle.shared.lock(), true, true);
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Serves until the process ends.
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        drop_streams(&mut self.handle.shared.lock(), true, true);
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Changes a running emulator's data and faults, and reads its request log. Cheap to clone.
#[derive(Clone)]
pub struct EmulatorHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle").finish_non_exhaustive()
    }
}

impl EmulatorHandle {
    /// The faults in force (with the failures and delays left).
    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    /// Replaces the faults.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    /// Changes the faults in place.
    pub fn update_faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.shared.lock().faults);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.set_faults(Faults::default());
    }

    /// Makes requests for `symbol` that cover `day` fail `times` times with HTTP 500.
    pub fn fail_day(&self, symbol: &str, day: NaiveDate, times: u32) {
        self.fail_day_with(symbol, day, times, 500);
    }

    /// Makes requests for `symbol` that cover `day` fail `times` times with `status`.
    pub fn fail_day_with(&self, symbol: &str, day: NaiveDate, times: u32, status: u16) {
        self.shared.lock().faults.failing_days.push(FailingDay {
            symbol: symbol.to_ascii_uppercase(),
            day,
            times,
            status,
        });
    }

    /// Sets a symbol's splits: (effective date, ratio). Raw bars before a split show the
    /// pre-split prices; Alpha Vantage lists them.
    pub fn set_splits(&self, symbol: &str, splits: Vec<(NaiveDate, f64)>) {
        self.shared
            .lock()
            .splits
            .insert(symbol.to_ascii_uppercase(), splits);
    }

    /// Serves `bars` (raw minute bars, any order) for `symbol` instead of synthetic ones. They are
    /// served as given, unchecked, so that a test can make the emulator send bad bars (NaN, a
    /// negative price); files go through the shared checks ([`EmulatorHandle::load_csv`]).
    pub fn set_bars(&self, symbol: &str, mut bars: Vec<EmuBar>) {
        bars.sort_by_key(|b| b.t);
        bars.dedup_by_key(|b| b.t);
        self.shared
            .lock()
            .csv
            .insert(symbol.to_ascii_uppercase(), Arc::new(bars));
    }

    /// Serves the minute bars of a CSV file for `symbol`: a header row naming `timestamp` (or `t`,
    /// `time`, `date`), `open`, `high`, `low`, `close`, `volume` and optionally `trade_count` (`n`)
    /// and `vwap` (`vw`), in any order and case; times in RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or
    /// Unix seconds; the file may be gzip-compressed. Every bar gets the checks all of Vectura's bar
    /// sources share ([`vectura_core::validate`]: positive finite prices, volume >= 0, times in the
    /// calendar's years, increasing or newest first throughout, no repeats; inconsistent bars widened),
    /// and the first bad one is an error naming the file, the line, the column and the fix. Returns
    /// the number of bars.
    pub fn load_csv(&self, symbol: &str, path: impl AsRef<Path>) -> Result<usize, String> {
        let bars = csv::read_file(path.as_ref())?;
        let n = bars.len();
        self.set_bars(symbol, bars);
        Ok(n)
    }

    /// Fixes "now" (Unix seconds), or returns to the system clock with `None`.
    pub fn set_now(&self, now: Option<i64>) {
        let mut inner = self.shared.lock();
        inner.clock = match now {
            Some(s) => Clock::Manual(s * clock::SECOND),
            None => Clock::System,
        };
        trading::engine::sync(&mut inner);
    }

    /// Turns pre-market and after-hours bars on or off.
    pub fn set_extended_hours(&self, on: bool) {
        self.shared.lock().extended_hours = on;
    }

    /// The raw SIP minute bars the emulator serves for `symbol` with `from <= t < to`.
    pub fn minute_bars(&self, symbol: &str, from: i64, to: i64) -> Vec<EmuBar> {
        let inner = self.shared.lock();
        alpaca::minute_bars_between(&self.shared, &inner, &symbol.to_ascii_uppercase(), from, to)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    /// The requests made with `key` (Alpaca key id or Alpha Vantage apikey).
    pub fn requests_for_key(&self, key: &str) -> Vec<RequestRecord> {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.key.as_deref() == Some(key))
            .cloned()
            .collect()
    }

    /// Number of requests so far.
    pub fn request_count(&self) -> usize {
        self.shared.lock().log.len()
    }

    /// Forgets the request log (not the fault counters).
    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// The most requests (of `key`, or of everyone with `None`) whose arrivals fall within any
    /// span of length `window` (a request exactly `window` after another is in the next window).
    pub fn max_requests_in_window(&self, key: Option<&str>, window: Duration) -> usize {
        let mut at: Vec<Instant> = self
            .shared
            .lock()
            .log
            .iter()
            .filter(|r| key.is_none() || r.key.as_deref() == key)
            .map(|r| r.at)
            .collect();
        at.sort();
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..at.len() {
            while at[hi].duration_since(at[lo]) >= window {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }
}

/// Middleware: applies the delay fault, then logs the request with its key and status.
async fn record_and_delay(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let at = Instant::now();
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let mut key = req
        .headers()
        .get("APCA-API-KEY-ID")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut query = Vec::new();
    for part in raw_query.split('&').filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some(("apikey", v)) => {
                if key.is_none() {
                    key = Some(v.to_string());
                }
                query.push("apikey=***".to_string());
            }
            _ => query.push(part.to_string()),
        }
    }
    let (id, delay) = {
        let mut inner = shared.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let f = &mut inner.faults;
        let delay = match f.delay_requests {
            _ if f.delay.is_zero() => Duration::ZERO,
            None => f.delay,
            Some(0) => Duration::ZERO,
            Some(n) => {
                f.delay_requests = Some(n - 1);
                f.delay
            }
        };
        inner.log.push(RequestRecord {
            id,
            at,
            unix_ms,
            key,
            method,
            path,
            query: query.join("&"),
            status: 0,
            delayed: delay,
        });
        (id, delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    if let Some(r) = shared.lock().log.iter_mut().rev().find(|r| r.id == id) {
        r.status = status;
    }
    resp
}
