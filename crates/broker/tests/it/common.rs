//! The emulator and a client wired to it, with a stopped clock and known bars.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use vectura_broker::alpaca::{AlpacaClient, AlpacaConfig, Backoff};
use vectura_broker::{Decimal, OrderRequest, OrderType, Side, TimeInForce};
use vectura_data::alpaca::RetryPolicy;
use vectura_emulator::{Config, EmuBar, Emulator, EmulatorHandle, TradingConfig};

pub const KEY: &str = "PKTESTKEY";
pub const SECRET: &str = "sEcReT-do-not-log-4f9a2c";
pub const SYM: &str = "TEST";

/// 2024-07-01 (a Monday, EDT): 09:30 ET is 13:30Z.
pub fn open_day1() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 7, 1, 13, 30, 0).unwrap()
}

/// Every regular-session minute of 2024-07-01 and 2024-07-02 for [`SYM`]: bar `i` of a day opens at
/// 100 + i/100 and closes at 100 + (i + 1)/100 (so each open is the previous close).
pub fn bars() -> Vec<EmuBar> {
    let mut out = Vec::new();
    for day_open in [1_719_840_600i64, 1_719_927_000] {
        for i in 0..390i64 {
            let o = 100.0 + i as f64 / 100.0;
            let c = 100.0 + (i + 1) as f64 / 100.0;
            out.push(EmuBar {
                t: day_open + 60 * i,
                o,
                h: c + 0.05,
                l: o - 0.05,
                c,
                v: 1000,
                n: 10,
                vw: o,
            });
        }
    }
    out
}

/// The open of the bar starting `minutes` after 09:30 on day 1 (as the emulator writes it).
pub fn open_at(minutes: i64) -> Decimal {
    format!("{}", 100.0 + minutes as f64 / 100.0)
        .parse()
        .unwrap()
}

pub struct Env {
    pub emu: Emulator,
    pub handle: EmulatorHandle,
    pub client: AlpacaClient,
    pub log: PathBuf,
    _dir: TempDir,
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "vectura-broker-{tag}-{}-{}",
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

/// Fast retries and reconnects, short timeouts: the tests wait on events, never on durations.
pub fn fast(cfg: AlpacaConfig) -> AlpacaConfig {
    let mut cfg = cfg;
    cfg.request_timeout = Duration::from_millis(700);
    cfg.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(3),
    };
    cfg.stream_backoff = Backoff {
        min: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    cfg.connection_limit_backoff = Backoff {
        min: Duration::from_millis(50),
        max: Duration::from_millis(300),
    };
    cfg.stream_idle = Duration::from_secs(5);
    // The tests that exercise the 200-a-minute limit set it themselves.
    cfg.rate_limit_per_minute = 1_000_000;
    cfg
}

pub fn client_for(base: &str) -> AlpacaClient {
    let cfg = AlpacaConfig::new(KEY, SECRET)
        .with_trading_url(base)
        .with_data_url(base);
    AlpacaClient::new(fast(cfg)).unwrap()
}

pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Env {
    let dir = TempDir::new("emu");
    let log = dir.0.join("orders.jsonl");
    let mut config = Config {
        keys: Some(vec![(KEY.to_string(), SECRET.to_string())]),
        now: Some(open_day1().timestamp() + 5 * 60),
        trading: TradingConfig {
            orders_log: Some(log.clone()),
            ..TradingConfig::default()
        },
        ..Config::default()
    };
    tweak(&mut config);
    let emu = Emulator::start(config).await.unwrap();
    let handle = emu.handle();
    handle.set_bars(SYM, bars());
    let client = client_for(&emu.base_url());
    Env {
        emu,
        handle,
        client,
        log,
        _dir: dir,
    }
}

pub async fn start() -> Env {
    start_with(|_| {}).await
}

pub fn market(coid: &str, side: Side, qty: &str) -> OrderRequest {
    OrderRequest {
        client_order_id: coid.to_string(),
        symbol: SYM.to_string(),
        side,
        qty: qty.parse().unwrap(),
        order_type: OrderType::Market,
        time_in_force: TimeInForce::Day,
        extended_hours: false,
    }
}

/// Lines of the orders log that created an order with `coid`.
pub fn created_in_log(log: &std::path::Path, coid: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter(|v| v["created"] == true && v["client_order_id"] == coid)
        .count()
}

/// Requests in the orders log for `coid` (any outcome).
pub fn log_lines(log: &std::path::Path, coid: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter(|v| v["client_order_id"] == coid)
        .collect()
}
