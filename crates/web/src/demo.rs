//! `vectura demo`: the whole system on one machine with no keys and no servers. A SQLite store in the
//! data directory, the simulated broker, the bundled real SPY minute bars replayed through the real
//! trader at an accelerated clock, and the dashboard in the same process, entered through a one-time
//! login link. Stopping and starting it again resumes where it stopped (see
//! [`vectura_trader::demo`]); `reset` starts over.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vectura_broker::Decimal;
use vectura_core::BarSeries;
use vectura_store::{AlgoConfig, RiskLimits, Store};
use vectura_trader::demo::SimSession;

use crate::live::LiveFeed;
use crate::server::{Config, Server};

/// The demo's symbol: the bundled real minute bars.
pub const SYMBOL: &str = vectura_jobs::bundled::SYMBOL;

/// The demo account's starting cash, dollars.
pub const START_CASH: i64 = 100_000;

/// The demo's grid. The original's defaults (60 % per buy, buy 2 % below, sell 18 % above) make one
/// trade in the bundled three months of SPY, so a demo with them shows nothing. A quick backtest on
/// the bundled bars (`vectura backtest --start-capital 100000 --contribution-amount 0
/// --contribution-frequency-days 0 --cash-floor 0 --order-gap-pct -1 --fill next-open` with these
/// four percentages) makes 545 trades in the 40 sessions, about 14 a session and +3.98 %: at the
/// default speed a trade every few seconds, a grid of several lots at once, and a return that moves.
/// Tighter grids (0.2 % steps) make thousands of trades, too many to follow on the page.
pub const DEMO_GRID: AlgoConfig = AlgoConfig {
    capital_pct: 20.0,
    buy_below_pct: 0.5,
    sell_above_pct: 0.5,
    buy_after_sell_pct: 0.5,
    cash_floor: 0.0,
    order_gap_pct: -1.0,
};

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Where the demo's database lives (`demo.db` in it).
    pub data_dir: PathBuf,
    /// Address of the dashboard (127.0.0.1:8080 by default; port 0 picks a free one).
    pub bind: SocketAddr,
    /// Replay speed: simulated seconds per real second (300: a minute bar every 0.2 s).
    pub speed: f64,
    /// Wipe the demo's database first.
    pub reset: bool,
}

impl Default for DemoConfig {
    fn default() -> DemoConfig {
        DemoConfig {
            data_dir: PathBuf::from("."),
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
            speed: 300.0,
            reset: false,
        }
    }
}

/// Why the demo cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("--speed is {0}: give a number of simulated seconds per real second from 1 to 1000000 (300: a minute bar every 0.2 s)")]
    Speed(f64),
    #[error("the demo's data directory {dir}: {source}: set VECTURA_DATA_DIR or --data-dir to a writable folder")]
    DataDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the bundled bars {name}: {source}")]
    Bars {
        name: String,
        #[source]
        source: vectura_data::LoadError,
    },
    #[error(transparent)]
    Store(#[from] vectura_store::StoreError),
    #[error(transparent)]
    Trader(#[from] vectura_trader::TraderError),
    #[error(transparent)]
    Web(#[from] crate::WebError),
    #[error("the dashboard's overview: {0}")]
    Overview(String),
}

/// The bundled SPY minute bars, oldest first.
pub fn bundled_bars() -> Result<BarSeries, DemoError> {
    let mut all: Option<BarSeries> = None;
    for (name, bytes) in vectura_jobs::bundled::FILES {
        let l = vectura_data::load_csv_reader(name, *bytes, &vectura_data::LoadOptions::default())
            .map_err(|source| DemoError::Bars {
                name: name.to_string(),
                source,
            })?;
        match &mut all {
            None => all = Some(l.series),
            Some(s) => {
                for i in 0..l.series.len() {
                    // The files are in time order and do not overlap; a bar out of order is skipped.
                    let _ = s.push(l.series.get(i));
                }
            }
        }
    }
    Ok(all.unwrap_or_default())
}

/// The demo's database file in `dir`.
pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("demo.db")
}

fn remove_db(dir: &Path) -> Result<(), DemoError> {
    let db = db_path(dir);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let p = PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(DemoError::DataDir {
                    dir: p.display().to_string(),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Seeds the demo's grid and enables its symbol, once: a store that has controls keeps them (the
/// user's changes survive a restart).
pub async fn seed(store: &Store) -> Result<bool, DemoError> {
    if !store.trade_controls().await?.is_empty() {
        return Ok(false);
    }
    store.upsert_algo_config(SYMBOL, &DEMO_GRID).await?;
    store
        .set_trade_controls(SYMBOL, true, &RiskLimits::default())
        .await?;
    Ok(true)
}

/// Stores the bundled bars as `vectura data fetch` would, once (a store that has bars of the
/// symbol keeps them): the data page lists them, and the performance page's parity and the
/// algorithm page's backtest read them. One transaction: all the days or none.
pub async fn store_bars(store: &Store, bars: &BarSeries) -> Result<bool, DemoError> {
    if store
        .range(SYMBOL)
        .await?
        .is_some_and(|r| r.days_stored > 0)
    {
        return Ok(false);
    }
    let mut days = Vec::new();
    let mut a = 0;
    while a < bars.len() {
        let day = vectura_core::calendar::ny_date(bars.ts[a]);
        let b = a + bars.ts[a..].partition_point(|&t| vectura_core::calendar::ny_date(t) == day);
        days.push((day, bars.slice(a, b)));
        a = b;
    }
    let refs: Vec<_> = days.iter().map(|(d, s)| (*d, s)).collect();
    store.put_days(SYMBOL, &refs).await?;
    Ok(true)
}

/// A demo ready to run: the dashboard bound, the session opened (and resumed).
pub struct Demo {
    server: Option<Server>,
    session: SimSession,
    feed: Arc<LiveFeed>,
    state: Arc<crate::AppState>,
    store: Store,
    speed: f64,
    /// The dashboard's address.
    pub url: String,
    /// The one-time login link.
    pub login_url: String,
    /// Bars replayed to rebuild the account of an earlier run (0 on a fresh start).
    pub resumed_bars: usize,
    /// Orders of an earlier run handed again to the rebuilt account.
    pub resumed_orders: usize,
}

impl Demo {
    /// Opens (or resets) the demo's store, seeds it, rebuilds the account of an earlier run, binds
    /// the dashboard and issues the one-time login link.
    pub async fn prepare(cfg: &DemoConfig) -> Result<Demo, DemoError> {
        if !(cfg.speed.is_finite() && (1.0..=1e6).contains(&cfg.speed)) {
            return Err(DemoError::Speed(cfg.speed));
        }
        std::fs::create_dir_all(&cfg.data_dir).map_err(|source| DemoError::DataDir {
            dir: cfg.data_dir.display().to_string(),
            source,
        })?;
        if cfg.reset {
            remove_db(&cfg.data_dir)?;
        }
        let url = format!("sqlite://{}?mode=rwc", db_path(&cfg.data_dir).display());
        let store = Store::open(&url).await?;
        if seed(&store).await? {
            tracing::info!(symbol = SYMBOL, "demo seeded");
        }
        let bundled = bundled_bars()?;
        if store_bars(&store, &bundled).await? {
            tracing::info!(symbol = SYMBOL, bars = bundled.len(), "demo bars stored");
        }
        let bars = vec![(SYMBOL.to_string(), bundled)];
        let (session, resumed) =
            SimSession::open(store.clone(), bars, Decimal::from(START_CASH)).await?;
        let server = Server::bind(
            store.clone(),
            Config {
                bind: cfg.bind,
                ..Config::default()
            },
        )
        .await?;
        let feed = Arc::new(LiveFeed::new(session.broker(), START_CASH as f64));
        let state = server.state();
        // A fresh state: the feed cannot have been set.
        let _ = state.live.set(feed.clone());
        let token = state.issue_login_link();
        let base = format!("http://{}", server.local_addr());
        let mut demo = Demo {
            login_url: format!("{base}/login/link?token={token}"),
            url: base,
            server: Some(server),
            session,
            feed,
            state,
            store,
            speed: cfg.speed,
            resumed_bars: resumed.bars,
            resumed_orders: resumed.orders,
        };
        demo.publish().await?;
        Ok(demo)
    }

    /// The dashboard's shared state (tests read the store and the feed through it).
    pub fn state(&self) -> Arc<crate::AppState> {
        self.state.clone()
    }

    async fn publish(&mut self) -> Result<(), DemoError> {
        let now = self.session.broker().now();
        self.feed
            .refresh(
                &self.store,
                now,
                self.session.equity(),
                Some(self.session.remaining()),
            )
            .await
            .map_err(|e| DemoError::Overview(e.to_string()))
    }

    /// Serves the dashboard and replays the bars until `stop` resolves: a regular-session bar every
    /// 60 / speed seconds (the rest of the day, nights and weekends pass at once). After the last
    /// bar it keeps serving (and applying halts and parameter changes) until stopped.
    pub async fn run(mut self, stop: impl Future<Output = ()>) -> Result<(), DemoError> {
        // Aborted when the replay ends or when this future is dropped (a kill, a test's timeout):
        // a dashboard left serving would keep the store's pool open after the demo is gone.
        let _server = AbortOnDrop(tokio::spawn(match self.server.take() {
            Some(s) => s.run(),
            None => return Ok(()),
        }));
        tokio::pin!(stop);
        let pace = Duration::from_secs_f64(60.0 / self.speed);
        let mut last_publish = Instant::now();
        let mut next_due = Instant::now();
        let result = loop {
            let step = tokio::select! {
                biased;
                _ = &mut stop => break Ok(()),
                s = self.session.next_bar() => s,
            };
            let step = match step {
                Ok(s) => s,
                Err(e) => break Err(DemoError::from(e)),
            };
            match step {
                Some(s) => {
                    let busy = s.report != Default::default() || s.controls != Default::default();
                    if busy || last_publish.elapsed() >= Duration::from_millis(100) {
                        if let Err(e) = self.publish().await {
                            break Err(e);
                        }
                        last_publish = Instant::now();
                    }
                    if s.regular {
                        next_due += pace;
                        let now = Instant::now();
                        if next_due > now {
                            tokio::select! {
                                biased;
                                _ = &mut stop => break Ok(()),
                                _ = tokio::time::sleep(next_due - now) => {}
                            }
                        } else {
                            // Behind (a slow machine): do not race to catch up.
                            next_due = now;
                        }
                    }
                }
                None => {
                    // The bars are done: keep the dashboard up and the controls applied.
                    tracing::info!("the demo's replay is finished; the dashboard stays up");
                    break loop {
                        if let Err(e) = self.session.reload_controls().await {
                            break Err(DemoError::from(e));
                        }
                        if let Err(e) = self.publish().await {
                            break Err(e);
                        }
                        tokio::select! {
                            _ = &mut stop => break Ok(()),
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    };
                }
            }
        };
        result
    }
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
