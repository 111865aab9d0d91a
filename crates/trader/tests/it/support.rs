//! The operations tests' environment: the emulator replaying a real INDA session (its clock moved
//! by hand), an Alpaca client over HTTP to it, and a SQLite store in a scratch directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use vectura_broker::alpaca::{AlpacaClient, AlpacaConfig};
use vectura_core::calendar;
use vectura_emulator::{Config, Emulator, EmulatorHandle, TradingConfig};
use vectura_store::{AlgoConfig, RiskLimits, Store};
use vectura_trader::{Clock, Trader, TraderConfig};

pub const KEY: &str = "PKOPSTEST";
pub const SECRET: &str = "ops-secret-never-logged";
pub const SYM: &str = "INDA";

pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/fixtures/INDA_1min_2023-07-10_to_2025-07-07.csv.gz")
}

/// The fixture's first session, 2023-07-10.
pub fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 7, 10).unwrap()
}

/// The emulator's replay time, as the trader's clock.
pub struct EmuClock(pub EmulatorHandle);

impl Clock for EmuClock {
    fn now(&self) -> i64 {
        self.0.now().timestamp()
    }
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "vectura-ops-{tag}-{}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or(0)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[allow(dead_code)]
pub struct Env {
    pub emu: Emulator,
    pub h: EmulatorHandle,
    pub client: Arc<AlpacaClient>,
    pub store: Store,
    pub log: PathBuf,
    pub dir: TempDir,
}

/// A busy grid on INDA's cents-wide minute moves (trades many times a session).
pub fn algo() -> AlgoConfig {
    AlgoConfig {
        capital_pct: 20.0,
        buy_below_pct: 0.05,
        sell_above_pct: 0.08,
        buy_after_sell_pct: 0.1,
        cash_floor: 50.0,
        order_gap_pct: 0.02,
    }
}

/// The emulator at the session's open, INDA enabled with `limits`.
pub async fn env(tag: &str, limits: RiskLimits) -> Env {
    env_with(tag, limits, TradingConfig::default(), day()).await
}

/// [`env`] with the emulator's trading configuration as given (replay and orders log are set here),
/// at the open of `on`.
pub async fn env_with(tag: &str, limits: RiskLimits, trading: TradingConfig, on: NaiveDate) -> Env {
    let dir = TempDir::new(tag);
    let log = dir.0.join("orders.jsonl");
    let emu = Emulator::start(Config {
        keys: Some(vec![(KEY.into(), SECRET.into())]),
        trading: TradingConfig {
            replay: vec![(SYM.into(), fixture())],
            orders_log: Some(log.clone()),
            ..trading
        },
        ..Config::default()
    })
    .await
    .unwrap();
    let h = emu.handle();
    h.set_time(chrono::DateTime::from_timestamp(calendar::session_open_ts(on), 0).unwrap());
    let client = AlpacaClient::new(config(&emu.base_url())).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.0.join("t.db").display());
    let store = Store::open(&url).await.unwrap();
    store.upsert_algo_config(SYM, &algo()).await.unwrap();
    store.set_trade_controls(SYM, true, &limits).await.unwrap();
    Env {
        emu,
        h,
        client: Arc::new(client),
        store,
        log,
        dir,
    }
}

/// The Alpaca configuration for the emulator at `base`.
pub fn config(base: &str) -> AlpacaConfig {
    let mut cfg = AlpacaConfig::new(KEY, SECRET)
        .with_trading_url(base)
        .with_data_url(base);
    // Local: Alpaca's 200-a-minute pacing would only slow the replay down.
    cfg.rate_limit_per_minute = 1_000_000;
    cfg
}

pub async fn start(e: &Env) -> Trader {
    let (t, _) = Trader::start(
        e.store.clone(),
        e.client.clone(),
        e.client.clone(),
        Arc::new(EmuClock(e.h.clone())),
        TraderConfig::default(),
    )
    .await
    .unwrap();
    t
}

/// Moves the emulator one bar on, steps the trader, lets the emulator fill what was sent.
pub async fn bar(e: &Env, t: &mut Trader) -> vectura_trader::StepReport {
    e.h.step().expect("the replay has bars");
    let r = t.step().await.unwrap();
    e.h.process();
    r
}

/// Order requests in the orders log that created an order, per client order id.
pub fn created(log: &Path) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for l in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
        if v["created"] == true {
            *n.entry(v["client_order_id"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    n
}
