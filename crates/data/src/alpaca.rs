//! Alpaca's market-data API v2: historical stock bars (`GET /v2/stocks/{symbol}/bars` and
//! `GET /v2/stocks/bars?symbols=...`), following `data/spec/alpaca/market-data-api.json`.
//!
//! [`AlpacaData::bars_for_session`] fetches one NYSE session per request window (the regular
//! session, or 04:00–20:00 ET with [`AlpacaData::with_extended`]), raw (`adjustment=raw`: splits
//! are applied when bars are read), following `next_page_token` until the window is complete.
//! Every HTTP request waits for a token of a shared [`TokenBucket`] (200 a minute by default);
//! 429s are retried after `Retry-After` (or `X-RateLimit-Reset` when the quota is used up), 5xx,
//! timeouts and connection errors after an exponential backoff with jitter, up to
//! [`RetryPolicy::max_attempts`]; any other 4xx fails at once with Alpaca's `message`. Errors
//! ([`FetchError`]) name the symbol, the day, the HTTP status and the fix. The key and secret travel
//! only in the `APCA-API-KEY-ID`/`APCA-API-SECRET-KEY` headers and are never logged or put in an
//! error (`Debug` masks them); a reply that echoes them (a gateway quoting the request's headers) has
//! them masked in every error built from it ([`AlpacaData::redact`]), so neither what `data fetch`
//! prints nor what it stores as a day's error carries them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::DateTime;
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use vectura_core::calendar::{ny_date, session as session_on, Session};
use vectura_core::{Bar, BarSeries, Symbol};

use crate::validate::{self, BadBar, Checker, Field, Item, Name, Ordering, Problem};

use crate::ratelimit::TokenBucket;

/// Alpaca's market-data endpoint.
pub const DEFAULT_DATA_URL: &str = "https://data.alpaca.markets";
/// The most bars Alpaca sends in one page.
pub const MAX_PAGE_LIMIT: u32 = 10_000;
/// Pages followed for one request before the reply is taken as broken.
const MAX_PAGES: usize = 100_000;

/// The source feed of the bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Feed {
    /// The Investors Exchange: free, a small share of the volume (what a free plan gets by default).
    #[default]
    Iex,
    /// All US exchanges: the consolidated volume (historical data on a free plan, except the last
    /// 15 minutes).
    Sip,
}

impl Feed {
    /// The `feed` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Feed::Iex => "iex",
            Feed::Sip => "sip",
        }
    }
}

impl fmt::Display for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bar aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeframe {
    /// `NMin` (1..=59).
    Min(u32),
    /// `NHour` (1..=23).
    Hour(u32),
    /// `1Day`: one bar per session, stamped by Alpaca at midnight New York time and here with the
    /// session's open (the core's convention), in a series marked `daily`.
    Day,
}

impl Timeframe {
    /// One-minute bars.
    pub const MINUTE: Timeframe = Timeframe::Min(1);

    /// The `timeframe` parameter.
    pub fn param(self) -> String {
        match self {
            Timeframe::Min(n) => format!("{n}Min"),
            Timeframe::Hour(n) => format!("{n}Hour"),
            Timeframe::Day => "1Day".to_string(),
        }
    }
}

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per HTTP request, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the 2nd attempt; doubled for each further one.
    pub base_delay: Duration,
    /// Longest backoff.
    pub max_delay: Duration,
    /// Longest wait a `Retry-After` or `X-RateLimit-Reset` header can ask for.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): `base · 2^(attempt−1)`, capped at
    /// `max_delay`, of which the second half is random ("equal jitter"), so clients that failed
    /// together do not retry together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_delay);
        let half = exp / 2;
        let jitter = rand::thread_rng().gen_range(0.0..=1.0);
        half + half.mul_f64(jitter)
    }
}

/// Why bars could not be fetched. Every message names the symbol, the day (or span), the HTTP
/// status where there was one, and the fix.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{symbol} {day}: Alpaca refused the credentials (HTTP {status}: {message}): set APCA_API_KEY_ID and APCA_API_SECRET_KEY to a key pair from the Alpaca dashboard (paper or live), and check that the plan includes the {feed} feed")]
    Unauthorized {
        symbol: String,
        day: String,
        status: u16,
        message: String,
        feed: Feed,
    },
    #[error("{symbol} {day}: Alpaca rejected the request (HTTP {status}: {message}): check the symbol, the dates and the feed")]
    Rejected {
        symbol: String,
        day: String,
        status: u16,
        message: String,
    },
    #[error("{symbol} {day}: Alpaca still failed after {attempts} attempts (last: {last}): the day stays a gap; fetch it again later, or allow more attempts")]
    GaveUp {
        symbol: String,
        day: String,
        attempts: u32,
        /// The last HTTP status; `None` for a timeout or a connection error.
        status: Option<u16>,
        last: String,
    },
    #[error("{symbol} {day}: Alpaca's reply (HTTP {status}) is not bar data ({detail}): check the base URL ({url}); if it is Alpaca's, fetch the day again later")]
    BadReply {
        symbol: String,
        day: String,
        status: u16,
        detail: String,
        url: String,
    },
    #[error("{0}")]
    BadSymbol(#[from] vectura_core::SymbolError),
    #[error("Alpaca credentials are missing: set APCA_API_KEY_ID and APCA_API_SECRET_KEY (in the environment, .env or .env.local) to a key pair from the Alpaca dashboard")]
    MissingCredentials,
    #[error("Alpaca credentials contain characters an HTTP header cannot carry: copy APCA_API_KEY_ID and APCA_API_SECRET_KEY again from the Alpaca dashboard")]
    BadCredentials,
    #[error("the market-data URL {url:?} is not a valid URL ({detail}): give one like {DEFAULT_DATA_URL}")]
    BadUrl { url: String, detail: String },
    /// A bar of a reply that fails the checks every bar source shares ([`crate::validate`]).
    #[error("{bar}")]
    BadBar { status: u16, bar: Box<BadBar> },
}

impl FetchError {
    /// The HTTP status behind the error, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Unauthorized { status, .. }
            | FetchError::Rejected { status, .. }
            | FetchError::BadReply { status, .. }
            | FetchError::BadBar { status, .. } => Some(*status),
            FetchError::GaveUp { status, .. } => *status,
            _ => None,
        }
    }

    /// Whether the same request may succeed later (the service was down or busy).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            FetchError::GaveUp { .. } | FetchError::BadReply { .. } | FetchError::BadBar { .. }
        )
    }
}

/// A client of Alpaca's historical bars. Cheap to clone (clones share the connection pool and the
/// rate limiter).
#[derive(Clone)]
pub struct AlpacaData {
    base_url: String,
    key_id: String,
    secret: String,
    feed: Feed,
    extended: bool,
    page_limit: u32,
    retry: RetryPolicy,
    timeout: Duration,
    limiter: Arc<TokenBucket>,
    http: reqwest::Client,
}

impl fmt::Debug for AlpacaData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlpacaData")
            .field("base_url", &self.base_url)
            .field("key_id", &mask(&self.key_id))
            .field("secret", &"***")
            .field("feed", &self.feed)
            .field("extended", &self.extended)
            .field("page_limit", &self.page_limit)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The first 4 characters of a key id, the rest masked (all of it when it is that short).
fn mask(s: &str) -> String {
    if s.chars().count() <= 4 {
        return "***".to_string();
    }
    let head: String = s.chars().take(4).collect();
    format!("{head}***")
}

fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("vectura/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// One bar as Alpaca sends it.
#[derive(Debug, Deserialize)]
struct RawBar {
    t: String,
    o: f64,
    h: f64,
    l: f64,
    c: f64,
    #[serde(default)]
    v: f64,
    #[serde(default)]
    n: Option<f64>,
    #[serde(default)]
    vw: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct SingleReply {
    #[serde(default)]
    bars: Option<Vec<RawBar>>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CorporateReply {
    corporate_actions: CorporateActions,
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct CorporateActions {
    #[serde(default)]
    forward_splits: Vec<SplitAction>,
    #[serde(default)]
    reverse_splits: Vec<SplitAction>,
}

#[derive(Debug, Deserialize)]
struct SplitAction {
    symbol: String,
    ex_date: chrono::NaiveDate,
    new_rate: f64,
    old_rate: f64,
}

#[derive(Debug, Deserialize)]
struct MultiReply {
    #[serde(default)]
    bars: Option<BTreeMap<String, Vec<RawBar>>>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// What a failed request and its error message are about.
struct Ctx {
    symbol: String,
    day: String,
}

/// One symbol's bars of a request, as they are checked ([`crate::validate`]): the checker and how
/// many bars the reply has held so far (the number messages give).
struct ReplyBars {
    checker: Checker,
    seen: u64,
}

impl ReplyBars {
    fn new(ctx: &Ctx) -> ReplyBars {
        ReplyBars {
            checker: Checker::new(
                format!("Alpaca bars of {} {}", ctx.symbol, ctx.day),
                false,
                Ordering::OldestFirst,
            ),
            seen: 0,
        }
    }
}

/// The `[from, to)` window (Unix seconds) of one session's bars: the regular session, 04:00–20:00
/// ET when `extended`, or New York midnight to midnight for daily bars.
pub fn session_window(session: &Session, timeframe: Timeframe, extended: bool) -> (i64, i64) {
    match timeframe {
        Timeframe::Day => {
            let midnight = session.pre_open() - 4 * 3_600;
            (midnight, midnight + 86_400)
        }
        _ if extended => (session.pre_open(), session.post_close()),
        _ => (session.open, session.close),
    }
}

fn rfc3339(ts: i64) -> String {
    vectura_core::time::rfc3339(ts)
}

fn span(from: i64, to: i64) -> String {
    let a = ny_date(from);
    let b = ny_date((to - 1).max(from));
    if a == b {
        a.to_string()
    } else {
        format!("{a}..{b}")
    }
}

impl AlpacaData {
    /// A client of [`DEFAULT_DATA_URL`] with this key pair, the IEX feed, regular hours, pages of
    /// 10 000 bars, [`RetryPolicy::default`], a 30 s timeout and a 200-a-minute [`TokenBucket`].
    pub fn new(key_id: impl Into<String>, secret: impl Into<String>) -> AlpacaData {
        let timeout = Duration::from_secs(30);
        AlpacaData {
            base_url: DEFAULT_DATA_URL.to_string(),
            key_id: key_id.into().trim().to_string(),
            secret: secret.into().trim().to_string(),
            feed: Feed::default(),
            extended: false,
            page_limit: MAX_PAGE_LIMIT,
            retry: RetryPolicy::default(),
            timeout,
            limiter: Arc::new(TokenBucket::alpaca_default()),
            http: http_client(timeout),
        }
    }

    /// From `APCA_API_KEY_ID` and `APCA_API_SECRET_KEY`, and `APCA_API_DATA_URL` when set.
    pub fn from_env() -> Result<AlpacaData, FetchError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let (Some(id), Some(secret)) = (var("APCA_API_KEY_ID"), var("APCA_API_SECRET_KEY")) else {
            return Err(FetchError::MissingCredentials);
        };
        let client = AlpacaData::new(id, secret);
        Ok(match var("APCA_API_DATA_URL") {
            Some(url) => client.with_base_url(url),
            None => client,
        })
    }

    /// Another endpoint (the emulator, a proxy); a trailing `/` or `/v2` is dropped.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        let url = url.trim().trim_end_matches('/');
        self.base_url = url.strip_suffix("/v2").unwrap_or(url).to_string();
        self
    }

    /// The feed.
    pub fn with_feed(mut self, feed: Feed) -> Self {
        self.feed = feed;
        self
    }

    /// Whether [`AlpacaData::bars_for_session`] includes pre-market and after-hours bars.
    pub fn with_extended(mut self, extended: bool) -> Self {
        self.extended = extended;
        self
    }

    /// Bars per page (`limit`), clamped to 1..=10 000.
    pub fn with_page_limit(mut self, limit: u32) -> Self {
        self.page_limit = limit.clamp(1, MAX_PAGE_LIMIT);
        self
    }

    /// The retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Attempts per request, the first included (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.retry.max_attempts = attempts.max(1);
        self
    }

    /// The time one HTTP request (connection, reply and body) may take before it counts as failed.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.http = http_client(timeout);
        self
    }

    /// Shares a rate limiter (one per key pair: every client using the key should share it).
    pub fn with_rate_limiter(mut self, limiter: Arc<TokenBucket>) -> Self {
        self.limiter = limiter;
        self
    }

    /// The endpoint.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The feed.
    pub fn feed(&self) -> Feed {
        self.feed
    }

    /// Whether sessions are fetched with their pre- and after-hours minutes.
    pub fn extended(&self) -> bool {
        self.extended
    }

    /// The key id (not secret; the secret has no getter).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The rate limiter, to share with other clients of the same key.
    pub fn rate_limiter(&self) -> Arc<TokenBucket> {
        self.limiter.clone()
    }

    /// The retry policy.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// `text` with the secret masked (`***`) and the key id cut to its first four characters, also
    /// where they appear JSON-escaped or percent-encoded: for any text that came from a reply.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        // The secret first: a key id inside it must not leave part of the secret behind.
        for (needle, with) in [
            (self.secret.as_str(), "***".to_string()),
            (self.key_id.as_str(), mask(&self.key_id)),
        ] {
            if needle.is_empty() {
                continue;
            }
            let json = serde_json::to_string(needle).unwrap_or_default();
            let json = json.trim_matches('"');
            for form in [needle.to_string(), json.to_string(), percent_encode(needle)] {
                if !form.is_empty() && out.contains(&form) {
                    out = out.replace(&form, &with);
                }
            }
        }
        out
    }

    /// `e` with every text in it passed through [`AlpacaData::redact`].
    fn redact_error(&self, e: FetchError) -> FetchError {
        let r = |s: String| self.redact(&s);
        match e {
            FetchError::Unauthorized {
                symbol,
                day,
                status,
                message,
                feed,
            } => FetchError::Unauthorized {
                symbol: r(symbol),
                day,
                status,
                message: r(message),
                feed,
            },
            FetchError::Rejected {
                symbol,
                day,
                status,
                message,
            } => FetchError::Rejected {
                symbol: r(symbol),
                day,
                status,
                message: r(message),
            },
            FetchError::GaveUp {
                symbol,
                day,
                attempts,
                status,
                last,
            } => FetchError::GaveUp {
                symbol: r(symbol),
                day,
                attempts,
                status,
                last: r(last),
            },
            FetchError::BadReply {
                symbol,
                day,
                status,
                detail,
                url,
            } => FetchError::BadReply {
                symbol: r(symbol),
                day,
                status,
                detail: r(detail),
                url: r(url),
            },
            FetchError::BadUrl { url, detail } => FetchError::BadUrl {
                url: r(url),
                detail: r(detail),
            },
            // A bad bar names its symbol, time and numbers, nothing of the request.
            other @ (FetchError::BadSymbol(_)
            | FetchError::MissingCredentials
            | FetchError::BadCredentials
            | FetchError::BadBar { .. }) => other,
        }
    }

    fn url(&self, segments: &[&str]) -> Result<Url, FetchError> {
        let mut url = Url::parse(&self.base_url).map_err(|e| FetchError::BadUrl {
            url: self.base_url.clone(),
            detail: e.to_string(),
        })?;
        url.path_segments_mut()
            .map_err(|_| FetchError::BadUrl {
                url: self.base_url.clone(),
                detail: "it cannot have a path".into(),
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn auth(&self) -> Result<HeaderMap, FetchError> {
        let mut h = HeaderMap::new();
        let id = HeaderValue::from_str(&self.key_id).map_err(|_| FetchError::BadCredentials)?;
        let mut secret =
            HeaderValue::from_str(&self.secret).map_err(|_| FetchError::BadCredentials)?;
        secret.set_sensitive(true);
        h.insert("APCA-API-KEY-ID", id);
        h.insert("APCA-API-SECRET-KEY", secret);
        Ok(h)
    }

    /// One session's bars of `symbol`: the whole session in one request window (the regular
    /// session; 04:00–20:00 ET with [`AlpacaData::with_extended`]; the day's bar for
    /// [`Timeframe::Day`]), raw, every page. An empty series means Alpaca has no bars (a symbol
    /// not yet listed, a halted day).
    pub async fn bars_for_session(
        &self,
        symbol: &str,
        session: &Session,
        timeframe: Timeframe,
    ) -> Result<BarSeries, FetchError> {
        let (from, to) = session_window(session, timeframe, self.extended);
        self.bars(symbol, from, to, timeframe).await
    }

    /// The raw bars of `symbol` starting in `[from, to)` (Unix seconds), every page.
    pub async fn bars(
        &self,
        symbol: &str,
        from: i64,
        to: i64,
        timeframe: Timeframe,
    ) -> Result<BarSeries, FetchError> {
        self.bars_unredacted(symbol, from, to, timeframe)
            .await
            .map_err(|e| self.redact_error(e))
    }

    async fn bars_unredacted(
        &self,
        symbol: &str,
        from: i64,
        to: i64,
        timeframe: Timeframe,
    ) -> Result<BarSeries, FetchError> {
        let sym = Symbol::new(symbol)?;
        let daily = timeframe == Timeframe::Day;
        if to <= from {
            return Ok(BarSeries {
                daily,
                ..BarSeries::default()
            });
        }
        let ctx = Ctx {
            symbol: sym.as_str().to_string(),
            day: span(from, to),
        };
        let mut out = ReplyBars::new(&ctx);
        let url = self.url(&["v2", "stocks", sym.as_str(), "bars"])?;
        let query = self.query(from, to, timeframe, None);
        self.each_page(&url, &query, &ctx, |reply: SingleReply, status| {
            for raw in reply.bars.unwrap_or_default() {
                self.push(&mut out, &raw, from, to, timeframe, &ctx, status)?;
            }
            Ok(reply.next_page_token)
        })
        .await?;
        Ok(out.checker.finish(daily).series)
    }

    /// The raw bars of several symbols starting in `[from, to)`, in one series per symbol (every
    /// symbol asked for is a key, with an empty series when Alpaca has no bars for it). One request
    /// window for all symbols, every page (the page limit counts bars of all symbols together).
    pub async fn bars_multi(
        &self,
        symbols: &[&str],
        from: i64,
        to: i64,
        timeframe: Timeframe,
    ) -> Result<BTreeMap<String, BarSeries>, FetchError> {
        self.bars_multi_unredacted(symbols, from, to, timeframe)
            .await
            .map_err(|e| self.redact_error(e))
    }

    async fn bars_multi_unredacted(
        &self,
        symbols: &[&str],
        from: i64,
        to: i64,
        timeframe: Timeframe,
    ) -> Result<BTreeMap<String, BarSeries>, FetchError> {
        let daily = timeframe == Timeframe::Day;
        let mut out = BTreeMap::new();
        for s in symbols {
            let sym = Symbol::new(s)?;
            let ctx = Ctx {
                symbol: sym.as_str().to_string(),
                day: span(from, to),
            };
            out.insert(sym.as_str().to_string(), ReplyBars::new(&ctx));
        }
        let finish = |out: BTreeMap<String, ReplyBars>| {
            out.into_iter()
                .map(|(sym, b)| (sym, b.checker.finish(daily).series))
                .collect()
        };
        if out.is_empty() || to <= from {
            return Ok(finish(out));
        }
        let list = out.keys().cloned().collect::<Vec<_>>().join(",");
        let ctx = Ctx {
            symbol: list.clone(),
            day: span(from, to),
        };
        let url = self.url(&["v2", "stocks", "bars"])?;
        let query = self.query(from, to, timeframe, Some(list));
        self.each_page(&url, &query, &ctx, |reply: MultiReply, status| {
            for (sym, bars) in reply.bars.unwrap_or_default() {
                let Some(series) = out.get_mut(&sym) else {
                    return Err(self.bad_reply(
                        &ctx,
                        status,
                        format!("bars for {sym}, which was not asked for"),
                    ));
                };
                let sctx = Ctx {
                    symbol: sym.clone(),
                    day: ctx.day.clone(),
                };
                for raw in &bars {
                    self.push(series, raw, from, to, timeframe, &sctx, status)?;
                }
            }
            Ok(reply.next_page_token)
        })
        .await?;
        Ok(finish(out))
    }

    /// The forward and reverse splits of `symbol` with an ex-date in `from..=to`, from Alpaca's
    /// corporate actions (`/v1/corporate-actions`), oldest first: the second split source, for
    /// accounts whose plan includes it. Ratios are `new_rate / old_rate` (2 for a 2-for-1).
    pub async fn splits(
        &self,
        symbol: &str,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<vectura_core::Split>, FetchError> {
        self.splits_unredacted(symbol, from, to)
            .await
            .map_err(|e| self.redact_error(e))
    }

    async fn splits_unredacted(
        &self,
        symbol: &str,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<vectura_core::Split>, FetchError> {
        let sym = Symbol::new(symbol)?;
        let ctx = Ctx {
            symbol: sym.as_str().to_string(),
            day: format!("{from}..{to}"),
        };
        let url = self.url(&["v1", "corporate-actions"])?;
        let query: [(&'static str, String); 5] = [
            ("symbols", sym.as_str().to_string()),
            ("types", "forward_split,reverse_split".into()),
            ("start", from.to_string()),
            ("end", to.to_string()),
            ("limit", "1000".into()),
        ];
        let mut out = Vec::new();
        self.each_page(&url, &query, &ctx, |reply: CorporateReply, status| {
            let actions = reply.corporate_actions;
            for a in actions
                .forward_splits
                .iter()
                .chain(actions.reverse_splits.iter())
            {
                if !a.symbol.eq_ignore_ascii_case(sym.as_str()) {
                    continue;
                }
                let split = vectura_core::Split {
                    effective: a.ex_date,
                    ratio: a.new_rate / a.old_rate,
                };
                split.validate().map_err(|e| {
                    self.bad_reply(&ctx, status, format!("split on {}: {e}", a.ex_date))
                })?;
                out.push(split);
            }
            Ok(reply.next_page_token)
        })
        .await?;
        out.sort_by_key(|s: &vectura_core::Split| s.effective);
        out.dedup_by_key(|s| s.effective);
        Ok(out)
    }

    /// Every page of a paged GET: `on_page` handles one reply (with its HTTP status) and returns its
    /// `next_page_token`. A repeated token or more than [`MAX_PAGES`] pages is an error.
    async fn each_page<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
        query: &[(&'static str, String)],
        ctx: &Ctx,
        mut on_page: impl FnMut(T, u16) -> Result<Option<String>, FetchError>,
    ) -> Result<(), FetchError> {
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut q = query.to_vec();
            if let Some(t) = &token {
                q.push(("page_token", t.clone()));
            }
            let (status, text) = self.get_text(url, &q, ctx).await?;
            let reply: T = serde_json::from_str(&text)
                .map_err(|e| self.bad_reply(ctx, status, e.to_string()))?;
            match next_token(on_page(reply, status)?, &token) {
                Next::Done => return Ok(()),
                Next::Page(t) => token = Some(t),
                Next::Repeated => {
                    return Err(self.bad_reply(ctx, status, "the same page token twice".into()))
                }
            }
        }
        Err(self.bad_reply(ctx, 200, format!("more than {MAX_PAGES} pages")))
    }

    fn query(
        &self,
        from: i64,
        to: i64,
        timeframe: Timeframe,
        symbols: Option<String>,
    ) -> Vec<(&'static str, String)> {
        let mut q = Vec::with_capacity(9);
        if let Some(s) = symbols {
            q.push(("symbols", s));
        }
        q.extend([
            ("timeframe", timeframe.param()),
            ("start", rfc3339(from)),
            // Alpaca's end is inclusive.
            ("end", rfc3339(to - 1)),
            ("limit", self.page_limit.to_string()),
            ("adjustment", "raw".to_string()),
            ("feed", self.feed.as_str().to_string()),
            ("sort", "asc".to_string()),
        ]);
        q
    }

    fn bad_reply(&self, ctx: &Ctx, status: u16, detail: String) -> FetchError {
        FetchError::BadReply {
            symbol: ctx.symbol.clone(),
            day: ctx.day.clone(),
            status,
            detail,
            url: self.base_url.clone(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &self,
        out: &mut ReplyBars,
        raw: &RawBar,
        from: i64,
        to: i64,
        timeframe: Timeframe,
        ctx: &Ctx,
        status: u16,
    ) -> Result<(), FetchError> {
        out.seen += 1;
        let item = Item::Bar(out.seen);
        let ts = DateTime::parse_from_rfc3339(&raw.t)
            .map_err(|e| self.bad_reply(ctx, status, format!("bar time {:?}: {e}", raw.t)))?
            .timestamp();
        if ts < from || ts >= to {
            return Ok(());
        }
        let trade_count = match raw.n {
            None => None,
            Some(n) => Some(
                validate::trade_count_f64(n).ok_or_else(|| FetchError::BadBar {
                    status,
                    bar: Box::new(out.checker.bad(
                        item,
                        Some("field \"n\"".into()),
                        Problem::TradeCount {
                            text: n.to_string(),
                        },
                    )),
                })?,
            ),
        };
        let mut bar = Bar {
            ts,
            open: raw.o,
            high: raw.h,
            low: raw.l,
            close: raw.c,
            volume: raw.v,
            vwap: raw.vw,
            trade_count,
        };
        if timeframe == Timeframe::Day {
            // Alpaca stamps a daily bar at New York midnight; the core stamps it at the open.
            if let Some(s) = session_on(ny_date(ts)) {
                bar.ts = s.open;
            }
        }
        // Alpaca's inconsistent bars are widened (never refused): a fetch has no --strict.
        out.checker
            .push(bar, item, |f| Name {
                field: format!(
                    "field \"{}\"",
                    match f {
                        Field::Time => "t",
                        Field::Open => "o",
                        Field::High => "h",
                        Field::Low => "l",
                        Field::Close => "c",
                        Field::Volume => "v",
                        Field::Vwap => "vw",
                        Field::TradeCount => "n",
                    }
                ),
                text: (f == Field::Time).then(|| raw.t.clone()),
            })
            .map_err(|bar| FetchError::BadBar {
                status,
                bar: Box::new(bar),
            })
    }

    /// One GET through the rate limiter, with retries: the status and body of a 2xx reply.
    async fn get_text(
        &self,
        url: &Url,
        query: &[(&'static str, String)],
        ctx: &Ctx,
    ) -> Result<(u16, String), FetchError> {
        let auth = self.auth()?;
        let max = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.acquire().await;
            let sent = self
                .http
                .get(url.clone())
                .query(query)
                .headers(auth.clone())
                .send()
                .await;
            // (status, description, wait asked for by the server) of a retryable failure.
            let (status, last, wait) = match sent {
                Err(e) => (None, describe(&e, self.timeout), None),
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        match resp.text().await {
                            Ok(text) => return Ok((status.as_u16(), text)),
                            Err(e) => (Some(status.as_u16()), describe(&e, self.timeout), None),
                        }
                    } else {
                        let headers = resp.headers().clone();
                        let body = resp.text().await.unwrap_or_default();
                        let message = alpaca_message(status, &body);
                        let code = status.as_u16();
                        if status == StatusCode::TOO_MANY_REQUESTS {
                            let wait = server_wait(&headers, self.retry.max_retry_after);
                            (Some(code), format!("HTTP {code}: {message}"), wait)
                        } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT
                        {
                            (Some(code), format!("HTTP {code}: {message}"), None)
                        } else if status == StatusCode::UNAUTHORIZED
                            || status == StatusCode::FORBIDDEN
                        {
                            return Err(FetchError::Unauthorized {
                                symbol: ctx.symbol.clone(),
                                day: ctx.day.clone(),
                                status: code,
                                message,
                                feed: self.feed,
                            });
                        } else {
                            return Err(FetchError::Rejected {
                                symbol: ctx.symbol.clone(),
                                day: ctx.day.clone(),
                                status: code,
                                message,
                            });
                        }
                    }
                }
            };
            if attempt >= max {
                return Err(FetchError::GaveUp {
                    symbol: ctx.symbol.clone(),
                    day: ctx.day.clone(),
                    attempts: attempt,
                    status,
                    last,
                });
            }
            let pause = wait.unwrap_or_else(|| self.retry.backoff(attempt));
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }
}

enum Next {
    Done,
    Page(String),
    Repeated,
}

fn next_token(new: Option<String>, prev: &Option<String>) -> Next {
    match new.filter(|t| !t.is_empty()) {
        None => Next::Done,
        Some(t) if prev.as_ref() == Some(&t) => Next::Repeated,
        Some(t) => Next::Page(t),
    }
}

/// `s` percent-encoded as a query string or URL path would carry it (unreserved characters kept).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The wait a 429 asks for: `Retry-After` seconds, or until `X-RateLimit-Reset` when
/// `X-RateLimit-Remaining` is 0; capped at `cap`. `None` when the reply says nothing.
fn server_wait(headers: &HeaderMap, cap: Duration) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_string())
    };
    if let Some(secs) = get("retry-after").and_then(|s| s.parse::<f64>().ok()) {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs).min(cap));
        }
    }
    if get("x-ratelimit-remaining").as_deref() == Some("0") {
        let reset = get("x-ratelimit-reset")?.parse::<i64>().ok()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let secs = u64::try_from(reset.saturating_sub(now)).unwrap_or(0);
        return Some(Duration::from_secs(secs).min(cap));
    }
    None
}

/// Alpaca's `message`, the title of an HTML error page, or the start of the body.
fn alpaca_message(status: StatusCode, body: &str) -> String {
    let body = body.trim();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
            return m.to_string();
        }
    }
    if body.starts_with('<') {
        let lower = body.to_ascii_lowercase();
        if let (Some(a), Some(b)) = (lower.find("<title>"), lower.find("</title>")) {
            if a + 7 <= b {
                return body[a + 7..b].trim().to_string();
            }
        }
        return "an HTML error page".to_string();
    }
    if body.is_empty() {
        return status.canonical_reason().unwrap_or("no body").to_string();
    }
    let mut s: String = body.chars().take(200).collect();
    if body.chars().count() > 200 {
        s.push('…');
    }
    s
}

/// A transport error in words, without the URL.
pub(crate) fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no reply within {:.1} s", timeout.as_secs_f64());
    }
    let mut msg = if e.is_connect() {
        "cannot connect".to_string()
    } else if e.is_body() || e.is_decode() {
        "the reply broke off".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut src = std::error::Error::source(e);
    let mut seen = Vec::new();
    while let Some(s) = src {
        let text = s.to_string();
        if !seen.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
            seen.push(text);
        }
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1_000),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let d1 = p.backoff(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.backoff(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d9 = p.backoff(40);
            assert!(d9 >= Duration::from_millis(500) && d9 <= Duration::from_millis(1_000));
        }
    }

    #[test]
    fn windows_of_a_session() {
        let s = session_on(NaiveDate::from_ymd_opt(2024, 7, 3).unwrap()).unwrap();
        assert!(s.early_close);
        assert_eq!(
            session_window(&s, Timeframe::MINUTE, false),
            (s.open, s.close)
        );
        assert_eq!(
            session_window(&s, Timeframe::MINUTE, true),
            (s.pre_open(), s.post_close())
        );
        let (a, b) = session_window(&s, Timeframe::Day, false);
        assert_eq!(rfc3339(a), "2024-07-03T04:00:00Z");
        assert_eq!(b - a, 86_400);
        assert_eq!(Timeframe::Hour(2).param(), "2Hour");
        assert_eq!(span(s.open, s.close), "2024-07-03");
    }

    #[test]
    fn server_waits_and_messages() {
        let cap = Duration::from_secs(60);
        let mut h = HeaderMap::new();
        assert_eq!(server_wait(&h, cap), None);
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("3"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("99999999999"));
        assert_eq!(server_wait(&h, cap), None);
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        assert_eq!(server_wait(&h, cap), Some(cap));
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(server_wait(&h, cap), Some(Duration::from_secs(2)));
        let s = StatusCode::BAD_GATEWAY;
        assert_eq!(
            alpaca_message(s, r#"{"message":"forbidden."}"#),
            "forbidden."
        );
        assert_eq!(
            alpaca_message(
                s,
                "<html><head><title>502 Bad Gateway</title></head></html>"
            ),
            "502 Bad Gateway"
        );
        assert_eq!(alpaca_message(s, ""), "Bad Gateway");
    }

    #[test]
    fn redact_masks_the_secret_and_the_key_id_in_any_form() {
        let c = AlpacaData::new("PKABCDEFGH", "s3cr3t/v+lue\"q");
        let text = "echo s3cr3t/v+lue\"q, s3cr3t/v+lue\\\"q, s3cr3t%2Fv%2Blue%22q from PKABCDEFGH";
        let out = c.redact(text);
        assert_eq!(out, "echo ***, ***, *** from PKAB***");
        // Nothing to mask: the text is unchanged.
        assert_eq!(c.redact("forbidden."), "forbidden.");
        let short = AlpacaData::new("PK", "x");
        assert_eq!(short.redact("PK x"), "*** ***");
        // An empty pair masks nothing (and does not loop).
        assert_eq!(AlpacaData::new("", "").redact("abc"), "abc");
    }

    #[test]
    fn debug_masks_the_credentials() {
        let c = AlpacaData::new("PKABCDEFGH", "s3cr3t-value").with_base_url("http://x/v2/");
        let d = format!("{c:?}");
        assert!(!d.contains("s3cr3t") && !d.contains("PKABCDEFGH"), "{d}");
        assert_eq!(c.base_url(), "http://x");
    }
}
