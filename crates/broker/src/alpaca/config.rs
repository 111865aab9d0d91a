//! Where the Alpaca client connects and with which keys: paper or live trading, the market-data
//! endpoints, the streams, timeouts and retries.
//!
//! From the environment ([`AlpacaConfig::from_env`]):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `APCA_API_KEY_ID`, `APCA_API_SECRET_KEY` | the key pair (required) | — |
//! | `APCA_API_BASE_URL` | trading API base URL, without `/v2` (a trailing `/v2` is dropped) | `https://paper-api.alpaca.markets` |
//! | `APCA_API_DATA_URL` | market-data REST base URL (as `vectura-data` reads it) | `https://data.alpaca.markets` |
//! | `APCA_API_STREAM_URL` | the `trade_updates` WebSocket URL | the base URL with `ws(s)://` and `/stream` |
//! | `APCA_API_DATA_STREAM_URL` | market-data WebSocket base, without `/v2/{feed}` | `wss://stream.data.alpaca.markets`, or the data URL with `ws(s)://` when that is not Alpaca's |
//! | `APCA_API_DATA_FEED` | `iex` or `sip` | `iex` |
//!
//! So the emulator needs only `APCA_API_BASE_URL=http://127.0.0.1:PORT` and
//! `APCA_API_DATA_URL=http://127.0.0.1:PORT`: both stream URLs follow.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use vectura_data::alpaca::RetryPolicy;

use crate::error::BrokerError;
use crate::types::DataFeed;

/// Alpaca's paper trading endpoint.
pub const PAPER_URL: &str = "https://paper-api.alpaca.markets";
/// Alpaca's live trading endpoint (real money).
pub const LIVE_URL: &str = "https://api.alpaca.markets";
/// Alpaca's market-data REST endpoint.
pub const DATA_URL: &str = "https://data.alpaca.markets";
/// Alpaca's market-data stream endpoint.
pub const DATA_STREAM_URL: &str = "wss://stream.data.alpaca.markets";

/// Which account the trading URL reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Environment {
    /// `paper-api.alpaca.markets`: paper money.
    Paper,
    /// `api.alpaca.markets`: real money.
    Live,
    /// A loopback address (the emulator).
    Local,
    /// Any other host (a proxy, which may reach either): treat it as live.
    Other(String),
}

impl Environment {
    /// Whether orders may move real money: live, or a host we cannot tell.
    pub fn may_be_live(&self) -> bool {
        matches!(self, Environment::Live | Environment::Other(_))
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Environment::Paper => f.write_str("paper"),
            Environment::Live => f.write_str("live"),
            Environment::Local => f.write_str("local"),
            Environment::Other(h) => write!(f, "unknown host {h}"),
        }
    }
}

/// Reconnect pacing of a stream: exponential backoff with jitter between `min` and `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait before reconnect attempt `attempt` (0 for the first): `min · 2^attempt`, capped at
    /// `max`, then a random 50–100 % of it so that many clients do not reconnect in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        use rand::Rng;
        let full = self
            .min
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(self.max);
        full.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }
}

/// The Alpaca client's settings. `Debug` masks the secret; nothing prints it.
#[derive(Clone)]
pub struct AlpacaConfig {
    /// Trading API base URL, without `/v2`.
    pub trading_url: String,
    /// Market-data REST base URL.
    pub data_url: String,
    /// The `trade_updates` WebSocket URL (with `/stream`).
    pub trade_stream_url: String,
    /// Market-data WebSocket base URL (the client appends `/v2/{feed}`).
    pub data_stream_url: String,
    pub feed: DataFeed,
    pub key_id: String,
    secret: String,
    /// One HTTP request (connection, reply and body) before it counts as lost.
    pub request_timeout: Duration,
    /// Retries of idempotent requests (and of a submission's look-up) on 5xx, 429 and lost
    /// connections.
    pub retry: RetryPolicy,
    /// Requests per minute, of the trading API and (a bucket of its own) of market data (Alpaca:
    /// 200 per key).
    pub rate_limit_per_minute: u32,
    /// Reconnect pacing of both streams.
    pub stream_backoff: Backoff,
    /// Reconnect pacing after a 406 (the old market-data connection still counts).
    pub connection_limit_backoff: Backoff,
    /// Consecutive 406 replies after which the bar stream gives up (fatal).
    pub max_connection_limit_errors: u32,
    /// Silence after which a stream is pinged, and after twice which it is taken as dead.
    pub stream_idle: Duration,
    /// How far before the last event the backfill after a reconnect starts (clock skew, in-flight events).
    pub backfill_margin: Duration,
}

impl fmt::Debug for AlpacaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlpacaConfig")
            .field("trading_url", &self.trading_url)
            .field("data_url", &self.data_url)
            .field("trade_stream_url", &self.trade_stream_url)
            .field("data_stream_url", &self.data_stream_url)
            .field("feed", &self.feed)
            .field("key_id", &self.key_id)
            .field("secret", &"***")
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

fn trim_base(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    url.strip_suffix("/v2").unwrap_or(url).to_string()
}

/// `http(s)://host[:port][/path]` → `ws(s)://host[:port][/path]`.
fn ws_of(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        url.to_string()
    }
}

fn check_url(name: &str, url: &str, schemes: &[&str]) -> Result<Url, BrokerError> {
    let u = Url::parse(url).map_err(|e| {
        BrokerError::Config(format!(
            "{name} {url:?} is not a valid URL ({e}): give one like {PAPER_URL}"
        ))
    })?;
    if !schemes.contains(&u.scheme()) {
        return Err(BrokerError::Config(format!(
            "{name} {url:?} must start with {}",
            schemes
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    if u.host_str().is_none() {
        return Err(BrokerError::Config(format!("{name} {url:?} has no host")));
    }
    Ok(u)
}

impl AlpacaConfig {
    /// Paper trading with this key pair, the IEX feed and the defaults below.
    pub fn new(key_id: impl Into<String>, secret: impl Into<String>) -> AlpacaConfig {
        AlpacaConfig {
            trading_url: PAPER_URL.to_string(),
            data_url: DATA_URL.to_string(),
            trade_stream_url: format!("{}/stream", ws_of(PAPER_URL)),
            data_stream_url: DATA_STREAM_URL.to_string(),
            feed: DataFeed::Iex,
            key_id: key_id.into().trim().to_string(),
            secret: secret.into().trim().to_string(),
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            rate_limit_per_minute: 200,
            stream_backoff: Backoff {
                min: Duration::from_millis(500),
                max: Duration::from_secs(30),
            },
            connection_limit_backoff: Backoff {
                min: Duration::from_secs(5),
                max: Duration::from_secs(60),
            },
            max_connection_limit_errors: 10,
            stream_idle: Duration::from_secs(30),
            backfill_margin: Duration::from_secs(2),
        }
    }

    /// Trading at `url` (paper, live or the emulator; `/v2` dropped); the trade stream follows
    /// (`ws(s)://…/stream`).
    pub fn with_trading_url(mut self, url: &str) -> AlpacaConfig {
        self.trading_url = trim_base(url);
        self.trade_stream_url = format!("{}/stream", ws_of(&self.trading_url));
        self
    }

    /// Market data at `url`; the data stream follows unless it is Alpaca's own endpoint.
    pub fn with_data_url(mut self, url: &str) -> AlpacaConfig {
        self.data_url = trim_base(url);
        self.data_stream_url = if self.data_url == DATA_URL {
            DATA_STREAM_URL.to_string()
        } else {
            ws_of(&self.data_url)
        };
        self
    }

    /// The paper or live endpoint by name.
    pub fn with_live(self, live: bool) -> AlpacaConfig {
        self.with_trading_url(if live { LIVE_URL } else { PAPER_URL })
    }

    /// From the environment (see the module docs for the variables).
    pub fn from_env() -> Result<AlpacaConfig, BrokerError> {
        AlpacaConfig::from_vars(|k| std::env::var(k).ok())
    }

    /// From variables looked up by `get` (the environment, a `.env` file, a test's map).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<AlpacaConfig, BrokerError> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let (Some(id), Some(secret)) = (var("APCA_API_KEY_ID"), var("APCA_API_SECRET_KEY")) else {
            return Err(BrokerError::Config(
                "Alpaca credentials are missing: set APCA_API_KEY_ID and APCA_API_SECRET_KEY to a key pair from the Alpaca dashboard (paper keys for paper-api.alpaca.markets)".into(),
            ));
        };
        let mut c = AlpacaConfig::new(id, secret);
        if let Some(u) = var("APCA_API_BASE_URL") {
            c = c.with_trading_url(&u);
        }
        if let Some(u) = var("APCA_API_DATA_URL") {
            c = c.with_data_url(&u);
        }
        if let Some(u) = var("APCA_API_STREAM_URL") {
            c.trade_stream_url = u.trim_end_matches('/').to_string();
        }
        if let Some(u) = var("APCA_API_DATA_STREAM_URL") {
            c.data_stream_url = trim_base(&u);
        }
        if let Some(f) = var("APCA_API_DATA_FEED") {
            c.feed = match f.to_ascii_lowercase().as_str() {
                "iex" => DataFeed::Iex,
                "sip" => DataFeed::Sip,
                _ => {
                    return Err(BrokerError::Config(format!(
                        "APCA_API_DATA_FEED {f:?} is neither iex nor sip"
                    )))
                }
            };
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks the URLs and the keys (characters an HTTP header can carry).
    pub fn validate(&self) -> Result<(), BrokerError> {
        check_url("APCA_API_BASE_URL", &self.trading_url, &["http", "https"])?;
        check_url("APCA_API_DATA_URL", &self.data_url, &["http", "https"])?;
        check_url(
            "APCA_API_STREAM_URL",
            &self.trade_stream_url,
            &["ws", "wss"],
        )?;
        check_url(
            "APCA_API_DATA_STREAM_URL",
            &self.data_stream_url,
            &["ws", "wss"],
        )?;
        let header_safe = |s: &str| !s.is_empty() && s.bytes().all(|b| (0x21..0x7f).contains(&b));
        if !header_safe(&self.key_id) || !header_safe(&self.secret) {
            return Err(BrokerError::Config(
                "APCA_API_KEY_ID or APCA_API_SECRET_KEY is empty or has characters a key cannot have: copy them again from the Alpaca dashboard".into(),
            ));
        }
        Ok(())
    }

    /// The secret (for the request headers and the stream's authentication only).
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }

    /// Which account the trading URL reaches.
    pub fn environment(&self) -> Environment {
        let host = Url::parse(&self.trading_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        match host.as_str() {
            "paper-api.alpaca.markets" => Environment::Paper,
            "api.alpaca.markets" => Environment::Live,
            "localhost" | "127.0.0.1" | "[::1]" | "::1" => Environment::Local,
            h if h.starts_with("127.") => Environment::Local,
            h => Environment::Other(h.to_string()),
        }
    }

    /// Whether the trading URL is Alpaca's live endpoint.
    pub fn is_live(&self) -> bool {
        self.environment() == Environment::Live
    }

    /// The market-data stream URL for the feed.
    pub fn data_stream_endpoint(&self) -> String {
        let feed = match self.feed {
            DataFeed::Iex => "iex",
            DataFeed::Sip => "sip",
        };
        format!("{}/v2/{feed}", self.data_stream_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<AlpacaConfig, BrokerError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AlpacaConfig::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn urls_follow_the_seed_convention_and_the_emulator_needs_two_variables() {
        let keys = [
            ("APCA_API_KEY_ID", "PK1"),
            ("APCA_API_SECRET_KEY", "s3cret"),
        ];
        let c = cfg(&keys).unwrap();
        assert_eq!(c.environment(), Environment::Paper);
        assert_eq!(c.trade_stream_url, "wss://paper-api.alpaca.markets/stream");
        assert_eq!(
            c.data_stream_endpoint(),
            "wss://stream.data.alpaca.markets/v2/iex"
        );
        let mut v = keys.to_vec();
        v.push(("APCA_API_BASE_URL", "https://api.alpaca.markets/v2/"));
        let c = cfg(&v).unwrap();
        assert!(c.is_live() && c.environment().may_be_live());
        assert_eq!(c.trading_url, LIVE_URL);
        let mut v = keys.to_vec();
        v.push(("APCA_API_BASE_URL", "http://127.0.0.1:8089"));
        v.push(("APCA_API_DATA_URL", "http://127.0.0.1:8089"));
        v.push(("APCA_API_DATA_FEED", "SIP"));
        let c = cfg(&v).unwrap();
        assert_eq!(c.environment(), Environment::Local);
        assert!(!c.environment().may_be_live());
        assert_eq!(c.trade_stream_url, "ws://127.0.0.1:8089/stream");
        assert_eq!(c.data_stream_endpoint(), "ws://127.0.0.1:8089/v2/sip");
        let mut v = keys.to_vec();
        v.push(("APCA_API_BASE_URL", "https://proxy.example.com"));
        assert!(cfg(&v).unwrap().environment().may_be_live());
    }

    #[test]
    fn bad_settings_name_the_variable_and_never_the_secret() {
        let e = cfg(&[("APCA_API_KEY_ID", "PK1")]).unwrap_err().to_string();
        assert!(e.contains("APCA_API_SECRET_KEY"), "{e}");
        let e = cfg(&[
            ("APCA_API_KEY_ID", "PK1"),
            ("APCA_API_SECRET_KEY", "s3cret"),
            ("APCA_API_BASE_URL", "paper-api"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("APCA_API_BASE_URL") && !e.contains("s3cret"),
            "{e}"
        );
        let e = cfg(&[
            ("APCA_API_KEY_ID", "PK1"),
            ("APCA_API_SECRET_KEY", "s3 cret"),
        ])
        .unwrap_err()
        .to_string();
        assert!(!e.contains("s3 cret"), "{e}");
        let c = cfg(&[
            ("APCA_API_KEY_ID", "PK1"),
            ("APCA_API_SECRET_KEY", "s3cret"),
        ])
        .unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let b = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 0..10 {
            let d = b.delay(attempt);
            let full = Duration::from_millis(100 * 2u64.pow(attempt)).min(Duration::from_secs(1));
            assert!(d <= full && d >= full / 2, "{attempt}: {d:?}");
        }
    }
}
