//! The Alpaca client: [`Broker`] and [`MarketData`] over Alpaca's trading API v2 (REST), the
//! `trade_updates` stream, the market-data stream (minute bars) and the market-data REST API (bars,
//! through `vectura-data`).
//!
//! - Paper or live from [`AlpacaConfig`] (`APCA_API_BASE_URL`, no `/v2`); [`AlpacaConfig::environment`]
//!   tells which, so a trader can refuse live trading without an explicit flag.
//! - Money and quantities are exact decimals, sent and read as Alpaca's decimal strings.
//! - A submission is safe to retry: a `POST /v2/orders` that times out, gets a 5xx or 429, or loses
//!   its connection is never blindly sent again. The client looks the order up by client order id
//!   and resends only when the broker certainly has none; a 422 "client_order_id must be unique"
//!   means the order exists, and that order is returned.
//! - Requests wait for a token of a 200-a-minute bucket; 429s wait for `Retry-After` or
//!   `X-RateLimit-Reset`.
//! - Streams reconnect with backoff and jitter and backfill what they missed (see [`stream`]).
//! - The secret travels only in the `APCA-API-SECRET-KEY` header (marked sensitive) and the
//!   streams' authentication messages; no log line and no error carries it. Note that tungstenite
//!   itself logs raw frames (hex) through the `log` crate at trace level: never enable `log`'s trace
//!   level for `tungstenite` in a binary that holds real keys.

mod config;
mod rest;
pub mod stream;
mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use vectura_core::Bar;
use vectura_data::alpaca::{AlpacaData, Feed, FetchError, Timeframe};

pub use config::{
    AlpacaConfig, Backoff, Environment, DATA_STREAM_URL, DATA_URL, LIVE_URL, PAPER_URL,
};

use crate::error::BrokerError;
use crate::types::{
    Account, Asset, CalendarDay, DataFeed, Execution, MarketClock, Order, OrderFilter, OrderQuery,
    OrderRequest, OrderType, Position, Side, TimeInForce, QTY_DECIMALS,
};
use crate::venue::{BarUpdates, Broker, MarketData, TradeUpdates};
use rest::{is_duplicate_client_order_id, parse, Rest};

/// Room in a stream's channel before the stream waits for its consumer.
const CHANNEL: usize = 4096;
/// Orders per page (Alpaca's maximum).
const ORDER_PAGE: usize = 500;
/// Activities per page (Alpaca's maximum).
const ACTIVITY_PAGE: usize = 100;

struct Inner {
    cfg: AlpacaConfig,
    rest: Rest,
    data: AlpacaData,
    name: String,
}

/// An Alpaca account (paper, live, or the emulator). Cheap to clone: clones share the connection
/// pool and the rate limiter.
#[derive(Clone)]
pub struct AlpacaClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AlpacaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlpacaClient")
            .field("name", &self.inner.name)
            .field("config", &self.inner.cfg)
            .finish()
    }
}

fn fetch_error(e: FetchError) -> BrokerError {
    match e {
        FetchError::Unauthorized { message, .. } => BrokerError::Unauthorized {
            message,
            endpoint: "the market-data API".into(),
        },
        FetchError::Rejected {
            status, message, ..
        } => BrokerError::Rejected {
            status,
            code: None,
            message,
        },
        e @ (FetchError::BadSymbol(_)
        | FetchError::MissingCredentials
        | FetchError::BadCredentials
        | FetchError::BadUrl { .. }) => BrokerError::Config(e.to_string()),
        e @ FetchError::BadReply { .. } => BrokerError::Protocol {
            message: e.to_string(),
            source: Some(Box::new(e)),
        },
        // Bad data is not an outage: the reply came, and its bar was refused.
        e @ FetchError::BadBar { .. } => BrokerError::BadData {
            message: e.to_string(),
            source: Some(Box::new(e)),
        },
        e => BrokerError::Unavailable {
            message: e.to_string(),
            source: Some(Box::new(e)),
        },
    }
}

fn dec(d: rust_decimal::Decimal) -> String {
    d.normalize().to_string()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl AlpacaClient {
    /// A client of the account `cfg` names.
    pub fn new(cfg: AlpacaConfig) -> Result<AlpacaClient, BrokerError> {
        cfg.validate()?;
        let rest = Rest::new(&cfg)?;
        let feed = match cfg.feed {
            DataFeed::Iex => Feed::Iex,
            DataFeed::Sip => Feed::Sip,
        };
        let data = AlpacaData::new(cfg.key_id.clone(), cfg.secret().to_string())
            .with_base_url(cfg.data_url.clone())
            .with_feed(feed)
            .with_timeout(cfg.request_timeout)
            // The same pacing as the trading API's (Alpaca: 200 a minute per key), so that a local
            // emulator's replay can lift both with `rate_limit_per_minute`.
            .with_rate_limiter(Arc::new(vectura_data::ratelimit::TokenBucket::per_window(
                cfg.rate_limit_per_minute.max(1),
                std::time::Duration::from_secs(60),
            )));
        let name = match cfg.environment() {
            Environment::Paper => "alpaca-paper".to_string(),
            Environment::Live => "alpaca-live".to_string(),
            Environment::Local => "alpaca-local".to_string(),
            Environment::Other(h) => format!("alpaca-{h}"),
        };
        Ok(AlpacaClient {
            inner: Arc::new(Inner {
                cfg,
                rest,
                data,
                name,
            }),
        })
    }

    /// From the environment ([`AlpacaConfig::from_env`]).
    pub fn from_env() -> Result<AlpacaClient, BrokerError> {
        AlpacaClient::new(AlpacaConfig::from_env()?)
    }

    /// The settings.
    pub fn config(&self) -> &AlpacaConfig {
        &self.inner.cfg
    }

    /// Which account this is (paper, live, local, other).
    pub fn environment(&self) -> Environment {
        self.inner.cfg.environment()
    }

    fn rest(&self) -> &Rest {
        &self.inner.rest
    }

    /// The order with the broker's id, or `None`.
    pub async fn order_by_id(&self, id: &str) -> Result<Option<Order>, BrokerError> {
        let path = format!("/v2/orders/{id}");
        match self.rest().get::<wire::RawOrder>(&path, &[]).await {
            Ok(o) => o.into_order().map(Some),
            Err(BrokerError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn order_body(req: &OrderRequest) -> Value {
        let mut b = json!({
            "symbol": req.symbol,
            "qty": dec(req.qty),
            "side": match req.side { Side::Buy => "buy", Side::Sell => "sell" },
            "time_in_force": serde_json::to_value(req.time_in_force).unwrap_or(Value::Null),
            "client_order_id": req.client_order_id,
        });
        match req.order_type {
            OrderType::Market => b["type"] = json!("market"),
            OrderType::Limit { limit_price } => {
                b["type"] = json!("limit");
                b["limit_price"] = json!(dec(limit_price));
            }
        }
        if req.extended_hours {
            b["extended_hours"] = json!(true);
        }
        b
    }

    fn check(req: &OrderRequest) -> Result<(), BrokerError> {
        let bad = |m: String| Err(BrokerError::Config(m));
        let n = req.client_order_id.chars().count();
        if n == 0 || n > 128 {
            return bad(format!(
                "client order id {:?} must have 1 to 128 characters",
                req.client_order_id
            ));
        }
        if req.symbol.trim().is_empty() {
            return bad("an order needs a symbol".into());
        }
        if req.qty <= rust_decimal::Decimal::ZERO || req.qty.normalize().scale() > QTY_DECIMALS {
            return bad(format!(
                "order {}: qty {} must be positive with at most {QTY_DECIMALS} decimals",
                req.client_order_id, req.qty
            ));
        }
        if !req.qty.fract().is_zero() && req.time_in_force != TimeInForce::Day {
            return bad(format!(
                "order {}: a fractional qty ({}) needs time_in_force day at Alpaca",
                req.client_order_id, req.qty
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Broker for AlpacaClient {
    fn name(&self) -> &str {
        &self.inner.name
    }

    async fn account(&self) -> Result<Account, BrokerError> {
        self.rest()
            .get::<wire::RawAccount>("/v2/account", &[])
            .await?
            .into_account()
    }

    async fn clock(&self) -> Result<MarketClock, BrokerError> {
        self.rest()
            .get::<wire::RawClock>("/v2/clock", &[])
            .await?
            .into_clock()
    }

    async fn calendar(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarDay>, BrokerError> {
        let q = [("start", from.to_string()), ("end", to.to_string())];
        self.rest()
            .get::<Vec<wire::RawCalendarDay>>("/v2/calendar", &q)
            .await?
            .into_iter()
            .map(wire::RawCalendarDay::into_day)
            .collect()
    }

    async fn asset(&self, symbol: &str) -> Result<Asset, BrokerError> {
        let path = format!("/v2/assets/{}", symbol.trim().to_ascii_uppercase());
        self.rest()
            .get::<wire::RawAsset>(&path, &[])
            .await?
            .into_asset()
    }

    async fn submit(&self, req: &OrderRequest) -> Result<Order, BrokerError> {
        AlpacaClient::check(req)?;
        let body = AlpacaClient::order_body(req);
        let coid = &req.client_order_id;
        let rest = self.rest();
        let mut attempt = 0;
        loop {
            attempt += 1;
            tracing::info!(client_order_id = %coid, symbol = %req.symbol, attempt, "submitting order");
            let f = match rest
                .once(Method::POST, "/v2/orders", &[], Some(&body))
                .await
            {
                Ok((_, bytes)) => {
                    return parse::<wire::RawOrder>(&bytes, "/v2/orders")?.into_order()
                }
                Err(f) => f,
            };
            if is_duplicate_client_order_id(&f) {
                // An earlier attempt (or a run before a restart) placed it: that order is the answer.
                tracing::info!(client_order_id = %coid, "the broker already has this client order id; fetching that order");
                return match self.order_by_client_id(coid).await? {
                    Some(o) => Ok(o),
                    None => Err(BrokerError::Protocol {
                        message: format!(
                            "the broker says client order id {coid} exists, but cannot find it"
                        ),
                        source: None,
                    }),
                };
            }
            if !f.transient() {
                return Err(rest.error(f, "/v2/orders"));
            }
            // The outcome is unknown: never send again before knowing whether the order exists.
            tracing::warn!(client_order_id = %coid, status = ?f.status(), attempt, "order submission got no clear reply; looking the order up before deciding");
            tokio::time::sleep(rest.wait(&f, attempt)).await;
            let known = match self.order_by_client_id(coid).await {
                Ok(k) => k,
                Err(e) => {
                    let first = rest.error(f, "/v2/orders");
                    return Err(BrokerError::Unavailable {
                        message: format!(
                            "order {coid}: the outcome is unknown (submission: {first}; look-up: {e}): look it up by client order id before acting"
                        ),
                        source: Some(Box::new(e)),
                    });
                }
            };
            match known {
                Some(o) => {
                    tracing::info!(client_order_id = %coid, order_id = %o.id, "the order exists despite the failed reply");
                    return Ok(o);
                }
                None if attempt < rest.retry.max_attempts => {
                    tracing::info!(client_order_id = %coid, "the broker has no such order; sending it again");
                }
                None => {
                    let last = rest.error(f, "/v2/orders");
                    return Err(BrokerError::Unavailable {
                        message: format!(
                            "order {coid}: {attempt} submissions failed and the broker had no such order after the last one ({last}); a delayed request may still arrive: look it up before acting"
                        ),
                        source: Some(Box::new(last)),
                    });
                }
            }
        }
    }

    async fn order_by_client_id(
        &self,
        client_order_id: &str,
    ) -> Result<Option<Order>, BrokerError> {
        let q = [("client_order_id", client_order_id.to_string())];
        match self
            .rest()
            .get::<wire::RawOrder>("/v2/orders:by_client_order_id", &q)
            .await
        {
            Ok(o) => o.into_order().map(Some),
            Err(BrokerError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn orders(&self, q: &OrderQuery) -> Result<Vec<Order>, BrokerError> {
        let status = match q.status {
            OrderFilter::Open => "open",
            OrderFilter::Closed => "closed",
            OrderFilter::All => "all",
        };
        let mut out: Vec<Order> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut after = q.after;
        loop {
            let mut params = vec![
                ("status", status.to_string()),
                ("direction", "asc".to_string()),
                ("limit", ORDER_PAGE.to_string()),
                ("nested", "false".to_string()),
            ];
            if let Some(a) = after {
                params.push(("after", rfc3339(a)));
            }
            if let Some(u) = q.until {
                params.push(("until", rfc3339(u)));
            }
            if !q.symbols.is_empty() {
                params.push(("symbols", q.symbols.join(",")));
            }
            let page = self
                .rest()
                .get::<Vec<wire::RawOrder>>("/v2/orders", &params)
                .await?;
            let full = page.len() >= ORDER_PAGE;
            let mut fresh = 0;
            for raw in page {
                let o = raw.into_order()?;
                let t = o.submitted_at.unwrap_or(o.created_at);
                after = Some(after.map_or(t, |a| a.max(t)));
                if seen.insert(o.id.clone()) {
                    fresh += 1;
                    out.push(o);
                }
            }
            if !full || fresh == 0 {
                break;
            }
            // Orders sharing the last page's final instant: step back a microsecond and de-duplicate.
            after = after.map(|a| a - chrono::Duration::microseconds(1));
        }
        out.sort_by_key(|o| o.submitted_at.unwrap_or(o.created_at));
        Ok(out)
    }

    async fn cancel(&self, order_id: &str) -> Result<(), BrokerError> {
        let path = format!("/v2/orders/{order_id}");
        match self
            .rest()
            .call(Method::DELETE, &path, &[], None, true)
            .await
        {
            Ok(_) => Ok(()),
            // 422: the order already ended (filled, cancelled, expired): nothing left to cancel.
            Err(BrokerError::Rejected { status: 422, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn cancel_all(&self) -> Result<Vec<String>, BrokerError> {
        let bytes = self
            .rest()
            .call(Method::DELETE, "/v2/orders", &[], None, true)
            .await?;
        let items: Vec<Value> = if bytes.is_empty() {
            Vec::new()
        } else {
            parse(&bytes, "/v2/orders")?
        };
        Ok(items
            .iter()
            .filter_map(|v| v["id"].as_str().map(str::to_string))
            .collect())
    }

    async fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        self.rest()
            .get::<Vec<wire::RawPosition>>("/v2/positions", &[])
            .await?
            .into_iter()
            .map(wire::RawPosition::into_position)
            .collect()
    }

    async fn executions(
        &self,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<Execution>, BrokerError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = vec![
                ("direction", "asc".to_string()),
                ("page_size", ACTIVITY_PAGE.to_string()),
            ];
            if let Some(a) = after {
                params.push(("after", rfc3339(a)));
            }
            if let Some(t) = &token {
                params.push(("page_token", t.clone()));
            }
            let page = self
                .rest()
                .get::<Vec<wire::RawActivity>>("/v2/account/activities/FILL", &params)
                .await?;
            let n = page.len();
            let last_id = page.last().and_then(|a| a.id.clone());
            for raw in page {
                if let Some(e) = raw.into_execution()? {
                    out.push(e);
                }
            }
            match last_id {
                Some(id) if n >= ACTIVITY_PAGE && token.as_ref() != Some(&id) => token = Some(id),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn trade_updates(&self) -> Result<TradeUpdates, BrokerError> {
        let (tx, rx) = mpsc::channel(CHANNEL);
        tokio::spawn(stream::trade_updates(self.clone(), tx));
        Ok(TradeUpdates::new(rx))
    }
}

#[async_trait]
impl MarketData for AlpacaClient {
    /// Alpaca allows one market-data connection per key: subscribe once, with every symbol.
    async fn subscribe_bars(&self, symbols: &[String]) -> Result<BarUpdates, BrokerError> {
        let symbols: Vec<String> = symbols
            .iter()
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .collect();
        if symbols.is_empty() {
            return Err(BrokerError::Config(
                "subscribe to at least one symbol".into(),
            ));
        }
        let (tx, rx) = mpsc::channel(CHANNEL);
        tokio::spawn(stream::bars(self.clone(), symbols, tx));
        Ok(BarUpdates::new(rx))
    }

    async fn bars(
        &self,
        symbol: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Bar>, BrokerError> {
        let series = self
            .inner
            .data
            .bars(symbol, from.timestamp(), to.timestamp(), Timeframe::MINUTE)
            .await
            .map_err(fetch_error)?;
        Ok((0..series.len()).map(|i| series.get(i)).collect())
    }
}
