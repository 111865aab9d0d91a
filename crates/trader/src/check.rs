//! `vectura config check`: which settings are set (secrets masked), which are missing for which
//! command, and whether each service answers (the database, Alpaca trading and data, Alpha Vantage).

use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use vectura_broker::alpaca::{AlpacaClient, AlpacaConfig};
use vectura_broker::{Broker, MarketData};

/// How long a service may take to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// One setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    pub name: &'static str,
    /// The value as shown (keys masked), `None` when unset.
    pub value: Option<String>,
    /// The commands that need it (empty: optional).
    pub needed_by: &'static str,
    /// What an unset value means.
    pub when_unset: &'static str,
}

/// One service's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    pub name: &'static str,
    /// `ok`, `failed` or `skipped` (not configured).
    pub state: &'static str,
    pub detail: String,
}

/// What `vectura config check` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub settings: Vec<Setting>,
    pub services: Vec<Service>,
}

impl Report {
    /// Services that were asked and did not answer well.
    pub fn failed(&self) -> usize {
        self.services.iter().filter(|s| s.state == "failed").count()
    }
}

/// A key shown by its first four characters only; a secret not at all.
fn mask(v: &str, secret: bool) -> String {
    if secret {
        return format!("set ({} characters, hidden)", v.chars().count());
    }
    let head: String = v.chars().take(4).collect();
    format!("{head}… (masked)")
}

/// A URL with any user information and query removed (webhook URLs carry their token in the path:
/// only the scheme and host are shown).
fn host_only(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, _)) => format!("{scheme}://{}/… (path hidden)", crate::notify::host_of(url)),
        None => "set (not a URL)".into(),
    }
}

/// Checks the settings read by `get` and the services they name; `database` is the store's URL as
/// the commands resolve it (DATABASE_URL or the SQLite file in the data directory).
pub async fn check(get: impl Fn(&str) -> Option<String>, database: Option<String>) -> Report {
    let var = |k: &str| {
        get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut settings = Vec::new();
    let mut add = |name, value: Option<String>, needed_by, when_unset| {
        settings.push(Setting {
            name,
            value,
            needed_by,
            when_unset,
        })
    };
    add(
        "DATABASE_URL",
        var("DATABASE_URL").map(|u| vectura_store::mask_url(&u)),
        "",
        "SQLite in VECTURA_DATA_DIR (or the user's data directory)",
    );
    add(
        "APCA_API_KEY_ID",
        var("APCA_API_KEY_ID").map(|v| mask(&v, false)),
        "trade (--broker alpaca), trade halt, data fetch",
        "missing: create a key pair in Alpaca's (paper) dashboard",
    );
    add(
        "APCA_API_SECRET_KEY",
        var("APCA_API_SECRET_KEY").map(|v| mask(&v, true)),
        "trade (--broker alpaca), trade halt, data fetch",
        "missing: the secret of the key pair",
    );
    add(
        "APCA_API_BASE_URL",
        var("APCA_API_BASE_URL"),
        "",
        "https://paper-api.alpaca.markets (paper)",
    );
    add(
        "APCA_API_DATA_URL",
        var("APCA_API_DATA_URL"),
        "",
        "https://data.alpaca.markets",
    );
    add(
        "ALPHA_VANTAGE_API_KEY",
        var("ALPHA_VANTAGE_API_KEY").map(|v| mask(&v, false)),
        "data splits --refresh",
        "missing: splits come from Alpaca's corporate actions only",
    );
    add(
        "VECTURA_WEBHOOK_URL",
        var("VECTURA_WEBHOOK_URL").map(|u| host_only(&u)),
        "",
        "no notifications",
    );

    let mut services = Vec::new();
    services.push(match database {
        None => Service {
            name: "database",
            state: "failed",
            detail: "no database location: set DATABASE_URL or VECTURA_DATA_DIR".into(),
        },
        Some(url) => {
            match tokio::time::timeout(ANSWER_WITHIN, vectura_store::Store::open(&url)).await {
                Ok(Ok(_)) => Service {
                    name: "database",
                    state: "ok",
                    detail: format!("{} opens and is migrated", vectura_store::mask_url(&url)),
                },
                Ok(Err(e)) => Service {
                    name: "database",
                    state: "failed",
                    detail: e.to_string(),
                },
                Err(_) => Service {
                    name: "database",
                    state: "failed",
                    detail: format!("no answer within {ANSWER_WITHIN:?}"),
                },
            }
        }
    });
    let alpaca = AlpacaConfig::from_vars(|k| get(k)).map(|mut c| {
        c.request_timeout = ANSWER_WITHIN;
        // One attempt: a check reports what answers now, it does not wait out an outage.
        c.retry.max_attempts = 1;
        c
    });
    match alpaca.and_then(AlpacaClient::new) {
        Err(e) => {
            for name in ["alpaca trading", "alpaca data"] {
                services.push(Service {
                    name,
                    state: "skipped",
                    detail: e.to_string(),
                });
            }
        }
        Ok(c) => {
            let base = c.config().trading_url.clone();
            services.push(match c.account().await {
                Ok(a) => Service {
                    name: "alpaca trading",
                    state: "ok",
                    detail: format!("{base}: account {} ({})", a.id, a.status),
                },
                Err(e) => Service {
                    name: "alpaca trading",
                    state: "failed",
                    detail: format!("{base}: {e}"),
                },
            });
            let now = Utc::now();
            let data = c.config().data_url.clone();
            services.push(
                match c.bars("SPY", now - chrono::Duration::days(7), now).await {
                    Ok(b) => Service {
                        name: "alpaca data",
                        state: "ok",
                        detail: format!("{data}: {} SPY minute bars in the last 7 days", b.len()),
                    },
                    Err(e) => Service {
                        name: "alpaca data",
                        state: "failed",
                        detail: format!("{data}: {e}"),
                    },
                },
            );
        }
    }
    services.push(match var("ALPHA_VANTAGE_API_KEY") {
        None => Service {
            name: "alpha vantage",
            state: "skipped",
            detail: "ALPHA_VANTAGE_API_KEY is not set".into(),
        },
        Some(key) => {
            let mut av =
                vectura_data::alphavantage::AlphaVantage::new(key).with_timeout(ANSWER_WITHIN);
            if let Some(u) = var("ALPHA_VANTAGE_URL") {
                av = av.with_base_url(u);
            }
            let base = av.base_url().to_string();
            match av.splits("SPY").await {
                Ok(s) => Service {
                    name: "alpha vantage",
                    state: "ok",
                    detail: format!("{base}: {} SPY splits", s.len()),
                },
                Err(e) => Service {
                    name: "alpha vantage",
                    state: "failed",
                    detail: format!("{base}: {e}"),
                },
            }
        }
    });
    Report { settings, services }
}
