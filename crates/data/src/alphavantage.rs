//! Alpha Vantage's `SPLITS` function: a symbol's stock splits.
//!
//! `GET {base}/query?function=SPLITS&symbol=X&apikey=K`. Accepted shapes: today's `data` array of
//! `{effective_date, split_factor}` (factors as strings such as `"4.0000"`, or numbers, or `"a:b"`),
//! and the older `"Stock Splits"` / `splits` objects keyed by date. Any reply that is not a split
//! list is an error, never an empty list: `Information` or `Note` (the rate-limit replies) is
//! [`SplitsError::RateLimited`], `Error Message` or an HTTP error is [`SplitsError::Service`], and
//! HTML, an empty body, bad JSON, an unknown shape or a factor that is not a finite positive number
//! is [`SplitsError::Invalid`]. A caller keeps its stored list on any error and tries again later.
//! The key travels in the query string, so it is masked in every message.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use reqwest::Url;
use serde_json::Value;
use vectura_core::{Split, Symbol};

use crate::ratelimit::TokenBucket;

/// Alpha Vantage's endpoint.
pub const DEFAULT_AV_URL: &str = "https://www.alphavantage.co";

/// Why a symbol's splits could not be had.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SplitsError {
    #[error("Alpha Vantage rate-limited the splits request for {symbol} ({message}): the stored split list is kept; try again after the limit resets (25 requests a day on the free plan) or use a premium key")]
    RateLimited { symbol: String, message: String },
    #[error("Alpha Vantage refused the splits request for {symbol} ({}{message}): check ALPHA_VANTAGE_API_KEY and the symbol; the stored split list is kept", status.map(|s| format!("HTTP {s}: ")).unwrap_or_default())]
    Service {
        symbol: String,
        /// The HTTP status when it was not 200.
        status: Option<u16>,
        message: String,
    },
    #[error("Alpha Vantage's reply for {symbol} is not a split list ({detail}): the stored split list is kept; try again later")]
    Invalid { symbol: String, detail: String },
    #[error("cannot reach Alpha Vantage for {symbol} ({detail}): check the network; the stored split list is kept")]
    Network { symbol: String, detail: String },
    #[error("{0}")]
    BadSymbol(#[from] vectura_core::SymbolError),
    #[error("ALPHA_VANTAGE_API_KEY is not set: get a free key at alphavantage.co and put it in the environment, .env or .env.local")]
    MissingKey,
    #[error("the Alpha Vantage URL {url:?} is not a valid URL ({detail}): give one like {DEFAULT_AV_URL}")]
    BadUrl { url: String, detail: String },
}

/// A client of Alpha Vantage's `SPLITS`. Cheap to clone.
#[derive(Clone)]
pub struct AlphaVantage {
    base_url: String,
    api_key: String,
    timeout: Duration,
    limiter: Option<Arc<TokenBucket>>,
    http: reqwest::Client,
}

impl fmt::Debug for AlphaVantage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlphaVantage")
            .field("base_url", &self.base_url)
            .field("api_key", &"***")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("vectura/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

impl AlphaVantage {
    /// A client of [`DEFAULT_AV_URL`] with this key and a 30 s timeout.
    pub fn new(api_key: impl Into<String>) -> AlphaVantage {
        let timeout = Duration::from_secs(30);
        AlphaVantage {
            base_url: DEFAULT_AV_URL.to_string(),
            api_key: api_key.into().trim().to_string(),
            timeout,
            limiter: None,
            http: http_client(timeout),
        }
    }

    /// From `ALPHA_VANTAGE_API_KEY`, and `ALPHA_VANTAGE_URL` when set (as the Alpaca client reads
    /// `APCA_API_DATA_URL`).
    pub fn from_env() -> Result<AlphaVantage, SplitsError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let client =
            AlphaVantage::new(var("ALPHA_VANTAGE_API_KEY").ok_or(SplitsError::MissingKey)?);
        Ok(match var("ALPHA_VANTAGE_URL") {
            Some(url) => client.with_base_url(url),
            None => client,
        })
    }

    /// Another endpoint (the emulator); a trailing `/` or `/query` is dropped.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        let url = url.trim().trim_end_matches('/');
        self.base_url = url.strip_suffix("/query").unwrap_or(url).to_string();
        self
    }

    /// The time one request may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.http = http_client(timeout);
        self
    }

    /// Paces requests through a shared limiter (Alpha Vantage's free plan: 5 a minute, 25 a day).
    pub fn with_rate_limiter(mut self, limiter: Arc<TokenBucket>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The endpoint.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `text` with the key masked.
    fn mask(&self, text: &str) -> String {
        if self.api_key.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.api_key, "***")
        }
    }

    /// The splits of `symbol`, oldest first (an empty list when it has none).
    pub async fn splits(&self, symbol: &str) -> Result<Vec<Split>, SplitsError> {
        let sym = Symbol::new(symbol)?;
        let symbol = sym.as_str().to_string();
        if self.api_key.is_empty() {
            return Err(SplitsError::MissingKey);
        }
        let mut url = Url::parse(&self.base_url).map_err(|e| SplitsError::BadUrl {
            url: self.base_url.clone(),
            detail: e.to_string(),
        })?;
        url.path_segments_mut()
            .map_err(|_| SplitsError::BadUrl {
                url: self.base_url.clone(),
                detail: "it cannot have a path".into(),
            })?
            .pop_if_empty()
            .push("query");
        if let Some(l) = &self.limiter {
            l.acquire().await;
        }
        let network = |e: reqwest::Error| SplitsError::Network {
            symbol: symbol.clone(),
            detail: self.mask(&crate::alpaca::describe(&e, self.timeout)),
        };
        let resp = self
            .http
            .get(url)
            .query(&[
                ("function", "SPLITS"),
                ("symbol", symbol.as_str()),
                ("apikey", self.api_key.as_str()),
            ])
            .send()
            .await
            .map_err(network)?;
        let status = resp.status();
        let body = resp.text().await.map_err(network)?;
        if !status.is_success() {
            let snippet: String = body.trim().chars().take(200).collect();
            return Err(SplitsError::Service {
                symbol,
                status: Some(status.as_u16()),
                message: self.mask(if snippet.is_empty() {
                    status.canonical_reason().unwrap_or("no body")
                } else {
                    &snippet
                }),
            });
        }
        parse_splits(&symbol, &body).map_err(|e| match e {
            SplitsError::RateLimited { symbol, message } => SplitsError::RateLimited {
                symbol,
                message: self.mask(&message),
            },
            SplitsError::Service {
                symbol,
                status,
                message,
            } => SplitsError::Service {
                symbol,
                status,
                message: self.mask(&message),
            },
            SplitsError::Invalid { symbol, detail } => SplitsError::Invalid {
                symbol,
                detail: self.mask(&detail),
            },
            other => other,
        })
    }
}

/// A split factor: `"4.0000"`, `4`, `"a:b"` (a/b) or `"a/b"`; `None` unless finite and positive.
pub fn parse_factor(v: &Value) -> Option<f64> {
    let x = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => {
            let s = s.trim();
            match s.split_once([':', '/']) {
                Some((a, b)) => {
                    let a: f64 = a.trim().parse().ok()?;
                    let b: f64 = b.trim().parse().ok()?;
                    if !(a > 0.0 && b > 0.0) {
                        return None;
                    }
                    a / b
                }
                None => s.parse().ok()?,
            }
        }
        _ => return None,
    };
    (x.is_finite() && x > 0.0).then_some(x)
}

fn snippet(body: &str) -> String {
    let mut s: String = body.chars().take(80).collect();
    if body.chars().count() > 80 {
        s.push('…');
    }
    s
}

/// Parses a `SPLITS` reply for `symbol` (see the module docs), sorted by date ascending.
pub fn parse_splits(symbol: &str, body: &str) -> Result<Vec<Split>, SplitsError> {
    let invalid = |detail: String| SplitsError::Invalid {
        symbol: symbol.to_string(),
        detail,
    };
    let body = body.trim_start_matches('\u{feff}').trim();
    if body.is_empty() {
        return Err(invalid("an empty body".into()));
    }
    let v: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) if body.starts_with('<') => return Err(invalid("an HTML page".into())),
        Err(e) => return Err(invalid(format!("not JSON ({e}): {}", snippet(body)))),
    };
    let Some(obj) = v.as_object() else {
        return Err(invalid(format!(
            "JSON that is not an object: {}",
            snippet(body)
        )));
    };
    let text = |k: &str| {
        obj.get(k)
            .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string))
    };
    if let Some(m) = text("Information").or_else(|| text("Note")) {
        return Err(SplitsError::RateLimited {
            symbol: symbol.to_string(),
            message: m,
        });
    }
    if let Some(m) = text("Error Message") {
        return Err(SplitsError::Service {
            symbol: symbol.to_string(),
            status: None,
            message: m,
        });
    }
    if let Some(s) = obj.get("symbol").and_then(Value::as_str) {
        if !s.trim().eq_ignore_ascii_case(symbol) {
            return Err(invalid(format!("the splits of {s}, not {symbol}")));
        }
    }
    let date = |s: &str| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|_| invalid(format!("effective date {s:?} is not YYYY-MM-DD")))
    };
    let factor = |d: NaiveDate, f: Option<&Value>| match f {
        None => Err(invalid(format!("the split on {d} has no factor"))),
        Some(f) => parse_factor(f).ok_or_else(|| {
            invalid(format!(
                "the split on {d} has factor {f}, not a finite positive number"
            ))
        }),
    };
    let mut out: Vec<Split> = Vec::new();
    if let Some(data) = obj.get("data") {
        let Some(items) = data.as_array() else {
            return Err(invalid("\"data\" is not an array".into()));
        };
        for item in items {
            let d = item
                .get("effective_date")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("a split without effective_date: {item}")))?;
            let d = date(d)?;
            let r = factor(d, item.get("split_factor"))?;
            out.push(Split {
                effective: d,
                ratio: r,
            });
        }
    } else if let Some(map) = obj.get("Stock Splits").or_else(|| obj.get("splits")) {
        let Some(map) = map.as_object() else {
            return Err(invalid("the splits are not an object keyed by date".into()));
        };
        for (k, f) in map {
            let d = date(k)?;
            let f = match f {
                Value::Object(o) => o
                    .get("split_factor")
                    .or_else(|| o.get("split_coefficient"))
                    .or_else(|| o.get("ratio")),
                other => Some(other),
            };
            let r = factor(d, f)?;
            out.push(Split {
                effective: d,
                ratio: r,
            });
        }
    } else {
        let keys: Vec<&str> = obj.keys().map(String::as_str).take(5).collect();
        return Err(invalid(if keys.is_empty() {
            "an empty object".into()
        } else {
            format!("no split list, only {keys:?}")
        }));
    }
    out.sort_by_key(|s| s.effective);
    out.dedup_by(|b, a| a.effective == b.effective && a.ratio == b.ratio);
    if let Some(w) = out.windows(2).find(|w| w[0].effective == w[1].effective) {
        return Err(invalid(format!(
            "two different splits on {}: {} and {}",
            w[0].effective, w[0].ratio, w[1].ratio
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn every_accepted_shape() {
        let today = r#"{"symbol":"AAPL","data":[
            {"effective_date":"2020-08-31","split_factor":"4.0000"},
            {"effective_date":"2014-06-09","split_factor":"7.0000"}]}"#;
        let s = parse_splits("AAPL", today).unwrap();
        assert_eq!(
            s,
            vec![
                Split {
                    effective: d("2014-06-09"),
                    ratio: 7.0
                },
                Split {
                    effective: d("2020-08-31"),
                    ratio: 4.0
                },
            ]
        );
        let legacy = r#"{"Stock Splits":{"2020-08-31":"4:1","2000-06-21":2}}"#;
        assert_eq!(parse_splits("AAPL", legacy).unwrap()[0].ratio, 2.0);
        assert_eq!(parse_splits("AAPL", legacy).unwrap()[1].ratio, 4.0);
        let lower = r#"{"splits":{"2022-07-18":{"split_factor":"1:10"}}}"#;
        assert_eq!(parse_splits("GOOG", lower).unwrap()[0].ratio, 0.1);
        assert_eq!(
            parse_splits("SPY", r#"{"symbol":"SPY","data":[]}"#).unwrap(),
            vec![]
        );
        let dup = r#"{"data":[{"effective_date":"2020-08-31","split_factor":"4"},{"effective_date":"2020-08-31","split_factor":"4.0000"}]}"#;
        assert_eq!(parse_splits("AAPL", dup).unwrap().len(), 1);
    }

    #[test]
    fn anything_else_is_an_error_never_an_empty_list() {
        let rl = |b: &str| matches!(parse_splits("X", b), Err(SplitsError::RateLimited { .. }));
        assert!(rl(r#"{"Information":"... 25 requests per day ..."}"#));
        assert!(rl(r#"{"Note":"Thank you for using Alpha Vantage!"}"#));
        assert!(matches!(
            parse_splits("X", r#"{"Error Message":"Invalid API call."}"#),
            Err(SplitsError::Service { status: None, .. })
        ));
        for bad in [
            "",
            "   ",
            "<html><body>oops</body></html>",
            "{\"data\": [",
            "[]",
            "{}",
            r#"{"symbol":"X"}"#,
            r#"{"symbol":"Y","data":[]}"#,
            r#"{"data":{}}"#,
            r#"{"data":[{"effective_date":"2020-08-31","split_factor":"0"}]}"#,
            r#"{"data":[{"effective_date":"2020-08-31","split_factor":"-2"}]}"#,
            r#"{"data":[{"effective_date":"2020-08-31","split_factor":"NaN"}]}"#,
            r#"{"data":[{"effective_date":"2020-08-31","split_factor":"1:0"}]}"#,
            r#"{"data":[{"effective_date":"2020-08-31","split_factor":"inf"}]}"#,
            r#"{"data":[{"effective_date":"2020-08-31"}]}"#,
            r#"{"data":[{"effective_date":"31/08/2020","split_factor":"4"}]}"#,
            r#"{"data":[{"effective_date":"2020-08-31","split_factor":"4"},{"effective_date":"2020-08-31","split_factor":"2"}]}"#,
        ] {
            assert!(
                matches!(parse_splits("X", bad), Err(SplitsError::Invalid { .. })),
                "{bad:?} gave {:?}",
                parse_splits("X", bad)
            );
        }
    }

    #[test]
    fn factors() {
        let f = |s: &str| parse_factor(&Value::String(s.into()));
        assert_eq!(f("2.0000"), Some(2.0));
        assert_eq!(f("3:2"), Some(1.5));
        assert_eq!(f("1/10"), Some(0.1));
        assert_eq!(f("0:1"), None);
        assert_eq!(f("abc"), None);
        assert_eq!(parse_factor(&serde_json::json!(4)), Some(4.0));
        assert_eq!(parse_factor(&Value::Null), None);
    }

    #[test]
    fn debug_and_messages_mask_the_key() {
        let av = AlphaVantage::new("SECRETKEY123");
        assert!(!format!("{av:?}").contains("SECRETKEY123"));
        assert_eq!(av.mask("key SECRETKEY123 used"), "key *** used");
    }
}
