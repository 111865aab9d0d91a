//! The two WebSocket streams, each a task that reconnects by itself with backoff and jitter.
//!
//! `trade_updates`: authenticate, listen; JSON in text or binary frames. Alpaca never replays events
//! missed while disconnected, so after every reconnect the task backfills from the REST API (orders
//! submitted since the last event, the orders it knew open, and the `FILL` activities since) and
//! emits them as events (consumers de-duplicate by execution id) before
//! [`StreamEvent::Connected`]`{ reconnect: true }`.
//!
//! Market data: connected → auth → subscribe bars; arrays of messages. 402 (credentials) and 409
//! (feed not in the plan) end the stream ([`BarEvent::Disconnected`] with `fatal`); 406 (the old
//! connection still counts) waits longer before the next try, and ends the stream after
//! [`super::AlpacaConfig::max_connection_limit_errors`] in a row. After a reconnect the bars of the
//! gap are fetched by REST and emitted before [`BarEvent::Connected`]`{ reconnect: true }`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use vectura_core::validate::{BadBar, Checker, Field, Item, Name, Ordering};
use vectura_core::Bar;

use super::wire::RawTradeUpdate;
use super::AlpacaClient;
use crate::error::BrokerError;
use crate::types::{Order, OrderQuery, OrderStatus, TradeEvent, TradeEventKind};
use crate::venue::{BarEvent, Broker, MarketData, StreamEvent};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connection attempt failed.
enum ConnectError {
    /// Try again after the usual backoff.
    Retry(String),
    /// Try again after the longer 406 backoff.
    ConnectionLimit(String),
    /// Do not try again.
    Fatal(String),
}

/// How long one step of connecting (handshake, a reply) may take.
const STEP: Duration = Duration::from_secs(15);

async fn connect(url: &str) -> Result<Ws, ConnectError> {
    match tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url)).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(ConnectError::Retry(format!("cannot connect to {url}: {e}"))),
        Err(_) => Err(ConnectError::Retry(format!(
            "connecting to {url} timed out"
        ))),
    }
}

/// The next JSON message (text or binary frame), answering nothing else.
async fn next_json(ws: &mut Ws) -> Result<Value, ConnectError> {
    loop {
        let msg = match tokio::time::timeout(STEP, ws.next()).await {
            Err(_) => return Err(ConnectError::Retry("no reply within 15 s".into())),
            Ok(None) => {
                return Err(ConnectError::Retry(
                    "the server closed the connection".into(),
                ))
            }
            Ok(Some(Err(e))) => {
                return Err(ConnectError::Retry(format!("the connection failed: {e}")))
            }
            Ok(Some(Ok(m))) => m,
        };
        if let Some(v) = frame_json(&msg) {
            return Ok(v);
        }
        if let Message::Close(c) = msg {
            return Err(ConnectError::Retry(format!(
                "the server closed the connection ({c:?})"
            )));
        }
    }
}

fn frame_json(msg: &Message) -> Option<Value> {
    match msg {
        Message::Text(t) => serde_json::from_str(t.as_str()).ok(),
        Message::Binary(b) => serde_json::from_slice(b).ok(),
        _ => None,
    }
}

async fn send_json(ws: &mut Ws, v: &Value) -> Result<(), ConnectError> {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .map_err(|e| ConnectError::Retry(format!("cannot send: {e}")))
}

/// Waits for the next message, pinging once after `idle` of silence; `None` when the connection
/// is dead or closed (with the reason).
async fn read(ws: &mut Ws, idle: Duration) -> Result<Value, String> {
    let mut pinged = false;
    loop {
        match tokio::time::timeout(idle, ws.next()).await {
            Err(_) if pinged => {
                return Err(format!("no data and no pong for {} s", 2 * idle.as_secs()))
            }
            Err(_) => {
                pinged = true;
                if ws.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return Err("the connection failed".into());
                }
            }
            Ok(None) => return Err("the server closed the connection".into()),
            Ok(Some(Err(e))) => return Err(format!("the connection failed: {e}")),
            Ok(Some(Ok(msg))) => {
                pinged = false;
                if let Message::Close(c) = &msg {
                    return Err(format!("the server closed the connection ({c:?})"));
                }
                if let Some(v) = frame_json(&msg) {
                    return Ok(v);
                }
            }
        }
    }
}

/// Connects, authenticates and listens to `trade_updates`.
async fn open_trade_stream(c: &AlpacaClient) -> Result<Ws, ConnectError> {
    let cfg = c.config();
    let mut ws = connect(&cfg.trade_stream_url).await?;
    send_json(
        &mut ws,
        &json!({"action":"authenticate","data":{"key_id":cfg.key_id,"secret_key":cfg.secret()}}),
    )
    .await?;
    let reply = next_json(&mut ws).await?;
    if reply["stream"] != "authorization" || reply["data"]["status"] != "authorized" {
        return Err(ConnectError::Fatal(format!(
            "the trade stream at {} refused the credentials ({}): check APCA_API_KEY_ID and APCA_API_SECRET_KEY and that they belong to {}",
            cfg.trade_stream_url, reply["data"]["status"], cfg.trading_url
        )));
    }
    send_json(
        &mut ws,
        &json!({"action":"listen","data":{"streams":["trade_updates"]}}),
    )
    .await?;
    loop {
        let v = next_json(&mut ws).await?;
        if v["stream"] == "listening" {
            let ok = v["data"]["streams"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x == "trade_updates"));
            if !ok {
                return Err(ConnectError::Fatal(format!(
                    "the trade stream at {} did not grant trade_updates ({v})",
                    cfg.trade_stream_url
                )));
            }
            return Ok(ws);
        }
    }
}

/// The event kind that an order's state stands for (a backfilled order without a fill).
fn kind_of_status(s: &OrderStatus) -> TradeEventKind {
    match s {
        OrderStatus::Accepted | OrderStatus::PendingNew => TradeEventKind::PendingNew,
        other => TradeEventKind::parse(other.as_str()),
    }
}

/// What happened while the stream was down, as events, oldest first.
async fn backfill(
    c: &AlpacaClient,
    since: DateTime<Utc>,
    known_open: &HashSet<String>,
) -> Result<Vec<TradeEvent>, BrokerError> {
    let margin = chrono::Duration::from_std(c.config().backfill_margin).unwrap_or_default();
    let after = since - margin;
    let mut orders: HashMap<String, Order> = c
        .orders(&OrderQuery::all_after(after))
        .await?
        .into_iter()
        .map(|o| (o.id.clone(), o))
        .collect();
    for id in known_open {
        if !orders.contains_key(id) {
            if let Some(o) = c.order_by_id(id).await? {
                orders.insert(o.id.clone(), o);
            }
        }
    }
    let executions = c.executions(Some(after)).await?;
    let mut events = Vec::new();
    for e in executions {
        if !orders.contains_key(&e.order_id) {
            if let Some(o) = c.order_by_id(&e.order_id).await? {
                orders.insert(o.id.clone(), o);
            }
        }
        let Some(order) = orders.get(&e.order_id) else {
            continue;
        };
        events.push(TradeEvent {
            kind: if e.leaves_qty.is_zero() {
                TradeEventKind::Fill
            } else {
                TradeEventKind::PartialFill
            },
            order: order.clone(),
            at: e.time,
            execution: Some(e),
            position_qty: None,
        });
    }
    for o in orders.into_values() {
        if matches!(o.status, OrderStatus::Filled | OrderStatus::PartiallyFilled) {
            continue;
        }
        events.push(TradeEvent {
            kind: kind_of_status(&o.status),
            at: o.updated_at.unwrap_or(o.created_at),
            order: o,
            execution: None,
            position_qty: None,
        });
    }
    events.sort_by_key(|e| e.at);
    Ok(events)
}

/// The `trade_updates` task: runs until the receiver is dropped or the credentials are refused.
pub(crate) async fn trade_updates(c: AlpacaClient, tx: mpsc::Sender<StreamEvent>) {
    let cfg = c.config().clone();
    let mut reconnect = false;
    let mut attempt: u32 = 0;
    let mut since: Option<DateTime<Utc>> = None;
    let mut known_open: HashSet<String> = HashSet::new();
    loop {
        if tx.is_closed() {
            return;
        }
        let reason = match open_trade_stream(&c).await {
            Err(ConnectError::Fatal(reason)) => {
                tracing::error!(%reason, "trade stream stopped");
                let _ = tx
                    .send(StreamEvent::Disconnected {
                        reason,
                        fatal: true,
                    })
                    .await;
                return;
            }
            Err(ConnectError::Retry(r) | ConnectError::ConnectionLimit(r)) => r,
            Ok(mut ws) => {
                // The broker's clock: where the next backfill starts if no event comes first.
                match c.clock().await {
                    Ok(clock) => {
                        since = Some(since.map_or(clock.now, |s| s.min(clock.now)));
                        let mut ok = true;
                        if reconnect {
                            match backfill(&c, since.unwrap_or(clock.now), &known_open).await {
                                Ok(events) => {
                                    tracing::info!(
                                        events = events.len(),
                                        "trade stream reconnected; backfilled"
                                    );
                                    for e in events {
                                        track(&mut known_open, &e);
                                        if tx.send(StreamEvent::Event(Box::new(e))).await.is_err() {
                                            return;
                                        }
                                    }
                                }
                                Err(e) => {
                                    ok = false;
                                    tracing::warn!(error = %e, "trade stream backfill failed; reconnecting");
                                    let _ = tx
                                        .send(StreamEvent::Disconnected {
                                            reason: format!(
                                                "backfill after the reconnect failed: {e}"
                                            ),
                                            fatal: false,
                                        })
                                        .await;
                                }
                            }
                        }
                        if ok {
                            since = Some(clock.now);
                            attempt = 0;
                            if tx.send(StreamEvent::Connected { reconnect }).await.is_err() {
                                return;
                            }
                            reconnect = true;
                            let reason =
                                listen(&mut ws, &tx, &cfg, &mut since, &mut known_open).await;
                            let _ = ws.close(None).await;
                            match reason {
                                None => return,
                                Some(r) => r,
                            }
                        } else {
                            let _ = ws.close(None).await;
                            attempt += 1;
                            tokio::time::sleep(cfg.stream_backoff.delay(attempt)).await;
                            continue;
                        }
                    }
                    Err(e) => {
                        let _ = ws.close(None).await;
                        format!("cannot read the broker's clock after connecting: {e}")
                    }
                }
            }
        };
        tracing::warn!(%reason, attempt, "trade stream disconnected; reconnecting");
        if tx
            .send(StreamEvent::Disconnected {
                reason,
                fatal: false,
            })
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(cfg.stream_backoff.delay(attempt)).await;
        attempt = attempt.saturating_add(1);
    }
}

fn track(known_open: &mut HashSet<String>, e: &TradeEvent) {
    if e.order.status.is_final() {
        known_open.remove(&e.order.id);
    } else {
        known_open.insert(e.order.id.clone());
    }
}

/// Forwards events until the connection drops (`Some(reason)`) or the receiver is gone (`None`).
async fn listen(
    ws: &mut Ws,
    tx: &mpsc::Sender<StreamEvent>,
    cfg: &super::AlpacaConfig,
    since: &mut Option<DateTime<Utc>>,
    known_open: &mut HashSet<String>,
) -> Option<String> {
    loop {
        let v = tokio::select! {
            _ = tx.closed() => return None,
            r = read(ws, cfg.stream_idle) => match r {
                Ok(v) => v,
                Err(reason) => return Some(reason),
            },
        };
        if v["stream"] != "trade_updates" {
            continue;
        }
        let raw: RawTradeUpdate = match serde_json::from_value(v["data"].clone()) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "a trade update that is not the documented JSON; skipped");
                continue;
            }
        };
        match raw.into_event() {
            Ok(e) => {
                *since = Some(since.map_or(e.at, |s| s.max(e.at)));
                track(known_open, &e);
                if tx.send(StreamEvent::Event(Box::new(e))).await.is_err() {
                    return None;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "a trade update Vectura cannot represent; skipped (reconciliation will see the order)")
            }
        }
    }
}

/// Connects to the market-data stream, authenticates and subscribes to `symbols`' bars.
async fn open_bar_stream(c: &AlpacaClient, symbols: &[String]) -> Result<Ws, ConnectError> {
    let cfg = c.config();
    let url = cfg.data_stream_endpoint();
    let mut ws = connect(&url).await?;
    let control = |v: &Value| -> Option<Value> { v.as_array().and_then(|a| a.first()).cloned() };
    let error = |m: &Value| -> ConnectError {
        let code = m["code"].as_i64().unwrap_or(0);
        let msg = m["msg"].as_str().unwrap_or("").to_string();
        match code {
            402 => ConnectError::Fatal(format!("the market-data stream {url} refused the credentials (402 {msg}): check APCA_API_KEY_ID and APCA_API_SECRET_KEY")),
            409 => ConnectError::Fatal(format!("the market-data stream {url} says the feed is not in the plan (409 {msg}): use APCA_API_DATA_FEED=iex or subscribe to SIP")),
            406 => ConnectError::ConnectionLimit(format!("the market-data stream allows one connection per key and still counts another (406 {msg})")),
            _ => ConnectError::Retry(format!("the market-data stream answered an error ({code} {msg})")),
        }
    };
    let hello = next_json(&mut ws).await?;
    match control(&hello) {
        Some(m) if m["T"] == "success" && m["msg"] == "connected" => {}
        Some(m) if m["T"] == "error" => return Err(error(&m)),
        _ => return Err(ConnectError::Retry(format!("unexpected greeting {hello}"))),
    }
    send_json(
        &mut ws,
        &json!({"action":"auth","key":cfg.key_id,"secret":cfg.secret()}),
    )
    .await?;
    let reply = next_json(&mut ws).await?;
    match control(&reply) {
        Some(m) if m["T"] == "success" && m["msg"] == "authenticated" => {}
        Some(m) if m["T"] == "error" => return Err(error(&m)),
        _ => {
            return Err(ConnectError::Retry(format!(
                "unexpected reply to auth {reply}"
            )))
        }
    }
    send_json(&mut ws, &json!({"action":"subscribe","bars":symbols})).await?;
    loop {
        let v = next_json(&mut ws).await?;
        match control(&v) {
            Some(m) if m["T"] == "subscription" => return Ok(ws),
            Some(m) if m["T"] == "error" => return Err(error(&m)),
            _ => {}
        }
    }
}

/// A bar message (`{"T":"b","S":…,"o","h","l","c","v","t","n","vw"}`) as (symbol, bar).
fn bar_of(m: &Value) -> Option<(String, Bar)> {
    let f = |k: &str| m[k].as_f64();
    let ts = DateTime::parse_from_rfc3339(m["t"].as_str()?)
        .ok()?
        .timestamp();
    Some((
        m["S"].as_str()?.to_string(),
        Bar {
            ts,
            open: f("o")?,
            high: f("h")?,
            low: f("l")?,
            close: f("c")?,
            volume: f("v").unwrap_or(0.0),
            vwap: f("vw"),
            trade_count: m["n"].as_u64(),
        },
    ))
}

/// A stream bar through the checks every bar source shares ([`vectura_core::validate`]): the bar
/// (widened when inconsistent, as a fetched one is), or why it must not be used.
fn checked(symbol: &str, bar: Bar) -> Result<Bar, BadBar> {
    let mut c = Checker::new(
        format!("Alpaca's {symbol} bar stream"),
        false,
        Ordering::OldestFirst,
    );
    c.push(bar, Item::Bar(1), |f| Name {
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
        text: None,
    })?;
    Ok(c.finish(false).series.get(0))
}

/// The bar-stream task: runs until the receiver is dropped or a fatal error.
pub(crate) async fn bars(c: AlpacaClient, symbols: Vec<String>, tx: mpsc::Sender<BarEvent>) {
    let cfg = c.config().clone();
    let mut reconnect = false;
    let mut attempt: u32 = 0;
    let mut limit_errors: u32 = 0;
    let mut last: HashMap<String, i64> = HashMap::new();
    loop {
        if tx.is_closed() {
            return;
        }
        let (reason, wait) = match open_bar_stream(&c, &symbols).await {
            Err(ConnectError::Fatal(reason)) => {
                tracing::error!(%reason, "bar stream stopped");
                let _ = tx
                    .send(BarEvent::Disconnected {
                        reason,
                        fatal: true,
                    })
                    .await;
                return;
            }
            Err(ConnectError::ConnectionLimit(reason)) => {
                limit_errors += 1;
                if limit_errors >= cfg.max_connection_limit_errors {
                    let reason = format!("{reason}, {limit_errors} times in a row: is another program streaming with this key?");
                    tracing::error!(%reason, "bar stream stopped");
                    let _ = tx
                        .send(BarEvent::Disconnected {
                            reason,
                            fatal: true,
                        })
                        .await;
                    return;
                }
                (reason, cfg.connection_limit_backoff.delay(limit_errors - 1))
            }
            Err(ConnectError::Retry(reason)) => {
                attempt = attempt.saturating_add(1);
                (reason, cfg.stream_backoff.delay(attempt - 1))
            }
            Ok(mut ws) => {
                attempt = 0;
                limit_errors = 0;
                if reconnect {
                    // The gap's bars, by REST (the stream never replays them).
                    let now = Utc::now();
                    for (sym, t) in last.clone() {
                        let from = DateTime::from_timestamp(t + 60, 0).unwrap_or(now);
                        match c.bars(&sym, from, now).await {
                            Ok(bars) => {
                                for bar in bars {
                                    if forward(&tx, &mut last, sym.clone(), bar).await.is_err() {
                                        return;
                                    }
                                }
                            }
                            Err(e) => {
                                tracing::warn!(symbol = %sym, error = %e, "cannot backfill the bars of the gap; they stay missing")
                            }
                        }
                    }
                }
                if tx.send(BarEvent::Connected { reconnect }).await.is_err() {
                    return;
                }
                reconnect = true;
                let reason = loop {
                    let v = tokio::select! {
                        _ = tx.closed() => return,
                        r = read(&mut ws, cfg.stream_idle) => match r {
                            Ok(v) => v,
                            Err(reason) => break reason,
                        },
                    };
                    for m in v.as_array().into_iter().flatten() {
                        match m["T"].as_str() {
                            Some("b") => {
                                let Some((sym, bar)) = bar_of(m) else {
                                    continue;
                                };
                                let bar = match checked(&sym, bar) {
                                    Ok(bar) => bar,
                                    Err(e) => {
                                        // Never traded on; the strategy sees a missing minute.
                                        tracing::error!(symbol = %sym, error = %e, "a bad bar from the market-data stream is dropped");
                                        continue;
                                    }
                                };
                                if forward(&tx, &mut last, sym, bar).await.is_err() {
                                    return;
                                }
                            }
                            Some("error") => {
                                tracing::warn!(message = %m, "the market-data stream reported an error")
                            }
                            _ => {}
                        }
                    }
                };
                let _ = ws.close(None).await;
                (reason, cfg.stream_backoff.delay(0))
            }
        };
        tracing::warn!(%reason, "bar stream disconnected; reconnecting");
        if tx
            .send(BarEvent::Disconnected {
                reason,
                fatal: false,
            })
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

/// Sends a bar unless one at or after its time was already sent for the symbol.
async fn forward(
    tx: &mpsc::Sender<BarEvent>,
    last: &mut HashMap<String, i64>,
    symbol: String,
    bar: Bar,
) -> Result<(), ()> {
    if last.get(&symbol).is_some_and(|t| *t >= bar.ts) {
        return Ok(());
    }
    last.insert(symbol.clone(), bar.ts);
    tx.send(BarEvent::Bar { symbol, bar }).await.map_err(|_| ())
}
