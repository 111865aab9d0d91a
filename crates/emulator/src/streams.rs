//! The WebSocket streams: `trade_updates` at `/stream` and the market-data stream at `/v2/iex` and
//! `/v2/sip`.
//!
//! Trade stream: the client sends `{"action":"authenticate","data":{"key_id":…,"secret_key":…}}` (or
//! `{"action":"auth","key":…,"secret":…}`) and gets exactly one reply,
//! `{"stream":"authorization","data":{"action":"authenticate","status":"authorized"}}` (or
//! `"unauthorized"`, then the socket closes); `{"action":"listen","data":{"streams":["trade_updates"]}}`
//! is acknowledged with `{"stream":"listening",…}` and then every order event of the key's account
//! follows. Frames are binary (as Alpaca's paper endpoint sends them) or text
//! ([`crate::TradingConfig::binary_frames`]); clients may send either.
//!
//! Market data: `[{"T":"success","msg":"connected"}]` on connect; `{"action":"auth","key","secret"}`
//! (or the `APCA-API-KEY-ID`/`APCA-API-SECRET-KEY` headers of the upgrade request) →
//! `[{"T":"success","msg":"authenticated"}]`, or an error and the socket closes: 402 `auth failed`,
//! 406 `connection limit exceeded` (one connection per key), 409 `insufficient subscription` (SIP
//! not in the plan). `{"action":"subscribe","bars":[…]}` → `[{"T":"subscription",…}]`; bars arrive as
//! `[{"T":"b","S":…,"o","h","l","c","v","t","n","vw"}]` when their minute closes in emulator time
//! (trades and quotes subscriptions are acknowledged but carry no data). With
//! `Content-Type: application/msgpack` on the upgrade request every frame is MessagePack (bar times
//! as MessagePack timestamps), as alpaca-py's `StockDataStream` expects.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::alpaca::header_str;
use crate::trading::{engine, MdConn, StreamOut};
use crate::{Inner, Shared};

/// How long a client has to authenticate.
const AUTH_WINDOW: Duration = Duration::from_secs(10);

fn keys_ok(inner: &Inner, id: &str, secret: &str) -> bool {
    !id.is_empty()
        && !secret.is_empty()
        && inner
            .keys
            .as_ref()
            .is_none_or(|keys| keys.iter().any(|(k, s)| k == id && s == secret))
}

/// A client frame as JSON (text or binary JSON; binary MessagePack when `msgpack`).
fn decode(msg: &Message, msgpack: bool) -> Option<Value> {
    match msg {
        Message::Text(t) => serde_json::from_str(t.as_str()).ok(),
        Message::Binary(b) if msgpack => {
            let mut r = &b[..];
            rmpv::decode::read_value(&mut r)
                .ok()
                .map(|v| from_msgpack(&v))
        }
        Message::Binary(b) => serde_json::from_slice(b).ok(),
        _ => None,
    }
}

fn from_msgpack(v: &rmpv::Value) -> Value {
    use rmpv::Value as M;
    match v {
        M::Nil => Value::Null,
        M::Boolean(b) => Value::Bool(*b),
        M::Integer(i) => i
            .as_i64()
            .map(Value::from)
            .or_else(|| i.as_u64().map(Value::from))
            .unwrap_or(Value::Null),
        M::F32(f) => json!(f),
        M::F64(f) => json!(f),
        M::String(s) => Value::String(s.as_str().unwrap_or("").to_string()),
        M::Binary(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        M::Array(a) => Value::Array(a.iter().map(from_msgpack).collect()),
        M::Map(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap_or("").to_string(), from_msgpack(v)))
                .collect(),
        ),
        M::Ext(..) => Value::Null,
    }
}

/// JSON to MessagePack; a string under the key `t` that is an RFC 3339 time becomes a MessagePack
/// timestamp (extension type -1), as Alpaca encodes bar times.
fn to_msgpack(v: &Value, key: Option<&str>) -> rmpv::Value {
    use rmpv::Value as M;
    match v {
        Value::Null => M::Nil,
        Value::Bool(b) => M::Boolean(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                M::from(i)
            } else if let Some(u) = n.as_u64() {
                M::from(u)
            } else {
                M::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => {
            if key == Some("t") {
                if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
                    let secs = d.timestamp() as u64;
                    let nanos = u64::from(d.timestamp_subsec_nanos());
                    let data = ((nanos << 34) | (secs & ((1 << 34) - 1))).to_be_bytes();
                    return M::Ext(-1, data.to_vec());
                }
            }
            M::from(s.as_str())
        }
        Value::Array(a) => M::Array(a.iter().map(|x| to_msgpack(x, None)).collect()),
        Value::Object(o) => M::Map(
            o.iter()
                .map(|(k, x)| (M::from(k.as_str()), to_msgpack(x, Some(k))))
                .collect(),
        ),
    }
}

fn encode(v: &Value, msgpack: bool, binary: bool) -> Message {
    if msgpack {
        let mut buf = Vec::new();
        let _ = rmpv::encode::write_value(&mut buf, &to_msgpack(v, None));
        return Message::Binary(buf.into());
    }
    let text = v.to_string();
    if binary {
        Message::Binary(text.into_bytes().into())
    } else {
        Message::Text(text.into())
    }
}

fn refused() -> Response {
    crate::trading::routes::fault_status(503)
}

pub(crate) async fn trade_stream(
    State(shared): State<Arc<Shared>>,
    ws: WebSocketUpgrade,
) -> Response {
    if shared.lock().trading.faults.refuse_streams {
        return refused();
    }
    ws.on_upgrade(move |socket| trade_conn(shared, socket))
        .into_response()
}

async fn trade_conn(shared: Arc<Shared>, mut socket: WebSocket) {
    let binary = shared.lock().trading.cfg.binary_frames;
    let send = |v: Value| encode(&v, false, binary);
    // Authentication: the first message, within the window.
    let deadline = tokio::time::Instant::now() + AUTH_WINDOW;
    let key = loop {
        let msg = match tokio::time::timeout_at(deadline, socket.recv()).await {
            Ok(Some(Ok(m))) => m,
            _ => return,
        };
        let Some(v) = decode(&msg, false) else {
            if matches!(msg, Message::Close(_)) {
                return;
            }
            continue;
        };
        let (id, secret) = match v["action"].as_str() {
            Some("authenticate") => (
                v["data"]["key_id"].as_str().unwrap_or(""),
                v["data"]["secret_key"].as_str().unwrap_or(""),
            ),
            Some("auth") => (
                v["key"].as_str().unwrap_or(""),
                v["secret"].as_str().unwrap_or(""),
            ),
            _ => {
                let _ = socket
                    .send(send(json!({"stream":"authorization","data":{"action":"listen","status":"unauthorized"}})))
                    .await;
                continue;
            }
        };
        let ok = keys_ok(&shared.lock(), id, secret);
        let status = if ok { "authorized" } else { "unauthorized" };
        let _ = socket
            .send(send(
                json!({"stream":"authorization","data":{"action":"authenticate","status":status}}),
            ))
            .await;
        if !ok {
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        break id.to_string();
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<StreamOut>();
    let conn_id = {
        let mut inner = shared.lock();
        inner.trading.next_conn += 1;
        inner.trading.next_conn
    };
    let mut listening = false;
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { break };
                if matches!(msg, Message::Close(_)) {
                    break;
                }
                let Some(v) = decode(&msg, false) else { continue };
                if v["action"] != "listen" {
                    continue;
                }
                let streams: BTreeSet<String> = v["data"]["streams"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .filter(|s| s == "trade_updates")
                    .collect();
                let wants = !streams.is_empty();
                let _ = socket
                    .send(send(json!({"stream":"listening","data":{"streams":streams}})))
                    .await;
                let mut inner = shared.lock();
                engine::sync(&mut inner);
                let now = inner.clock.now();
                let dup = inner.trading.faults.duplicate_on_reconnect;
                let a = inner.trading.account(&key, now);
                a.conns.retain(|(id, _)| *id != conn_id);
                if wants {
                    a.conns.push((conn_id, tx.clone()));
                    if !listening {
                        if let Some(n) = dup {
                            let skip = a.sent.len().saturating_sub(n);
                            for m in a.sent.iter().skip(skip) {
                                let _ = tx.send(StreamOut::Json(m.clone()));
                            }
                        }
                    }
                }
                listening = wants;
            }
            out = rx.recv() => {
                match out {
                    Some(StreamOut::Json(v)) => {
                        if socket.send(send(v)).await.is_err() {
                            break;
                        }
                    }
                    Some(StreamOut::Drop) | None => return forget_trade(&shared, &key, conn_id),
                }
            }
        }
    }
    forget_trade(&shared, &key, conn_id);
}

fn forget_trade(shared: &Shared, key: &str, conn_id: u64) {
    if let Some(a) = shared.lock().trading.accounts.get_mut(key) {
        a.conns.retain(|(id, _)| *id != conn_id);
    }
}

pub(crate) async fn iex_stream(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    md_stream(shared, headers, ws, false)
}

pub(crate) async fn sip_stream(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    md_stream(shared, headers, ws, true)
}

fn md_stream(shared: Arc<Shared>, headers: HeaderMap, ws: WebSocketUpgrade, sip: bool) -> Response {
    if shared.lock().trading.faults.refuse_streams {
        return refused();
    }
    let msgpack = header_str(&headers, "Content-Type").is_some_and(|c| c.contains("msgpack"));
    let creds = match (
        header_str(&headers, "APCA-API-KEY-ID"),
        header_str(&headers, "APCA-API-SECRET-KEY"),
    ) {
        (Some(k), Some(s)) => Some((k.to_string(), s.to_string())),
        _ => None,
    };
    ws.on_upgrade(move |socket| md_conn(shared, socket, sip, msgpack, creds))
        .into_response()
}

fn error_msg(code: u16, msg: &str) -> Value {
    json!([{ "T": "error", "code": code, "msg": msg }])
}

/// Authenticates a market-data connection: `Ok` with the registered connection id, or the error
/// message to send before closing.
fn md_auth(
    shared: &Shared,
    id: &str,
    secret: &str,
    sip: bool,
    tx: &mpsc::UnboundedSender<StreamOut>,
) -> Result<u64, Value> {
    let mut inner = shared.lock();
    if !keys_ok(&inner, id, secret) {
        return Err(error_msg(402, "auth failed"));
    }
    if sip && inner.trading.faults.sip_not_in_plan {
        return Err(error_msg(409, "insufficient subscription"));
    }
    let t = &mut inner.trading;
    let stale = t
        .md_stale
        .get(id)
        .is_some_and(|until| Instant::now() < *until);
    if stale || t.md_conns.iter().any(|c| c.key == id) {
        return Err(error_msg(406, "connection limit exceeded"));
    }
    t.next_conn += 1;
    let conn = t.next_conn;
    t.md_conns.push(MdConn {
        id: conn,
        key: id.to_string(),
        sip,
        bars: BTreeSet::new(),
        tx: tx.clone(),
    });
    Ok(conn)
}

fn subscription(
    bars: &BTreeSet<String>,
    trades: &BTreeSet<String>,
    quotes: &BTreeSet<String>,
) -> Value {
    json!([{
        "T": "subscription",
        "trades": trades,
        "quotes": quotes,
        "bars": bars,
        "updatedBars": [],
        "dailyBars": [],
        "statuses": [],
        "lulds": [],
        "corrections": [],
        "cancelErrors": [],
    }])
}

fn symbols(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(|s| s.trim().to_ascii_uppercase()))
        .filter(|s| !s.is_empty())
        .collect()
}

async fn md_conn(
    shared: Arc<Shared>,
    mut socket: WebSocket,
    sip: bool,
    msgpack: bool,
    creds: Option<(String, String)>,
) {
    let send = |v: &Value| encode(v, msgpack, msgpack);
    if socket
        .send(send(&json!([{"T":"success","msg":"connected"}])))
        .await
        .is_err()
    {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<StreamOut>();
    let mut conn: Option<u64> = None;
    if let Some((id, secret)) = &creds {
        match md_auth(&shared, id, secret, sip, &tx) {
            Ok(c) => {
                conn = Some(c);
                let _ = socket
                    .send(send(&json!([{"T":"success","msg":"authenticated"}])))
                    .await;
            }
            Err(e) => {
                let _ = socket.send(send(&e)).await;
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
        }
    }
    let (mut trades, mut quotes) = (BTreeSet::new(), BTreeSet::new());
    let deadline = tokio::time::Instant::now() + AUTH_WINDOW;
    loop {
        let wait_auth = async {
            if conn.is_none() {
                tokio::time::sleep_until(deadline).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = wait_auth => {
                let _ = socket.send(send(&error_msg(404, "auth timeout"))).await;
                break;
            }
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { break };
                if matches!(msg, Message::Close(_)) {
                    break;
                }
                if matches!(msg, Message::Ping(_) | Message::Pong(_)) {
                    continue;
                }
                let Some(v) = decode(&msg, msgpack) else {
                    let _ = socket.send(send(&error_msg(400, "invalid syntax"))).await;
                    continue;
                };
                match v["action"].as_str() {
                    Some("auth") => {
                        if conn.is_some() {
                            let _ = socket.send(send(&error_msg(403, "already authenticated"))).await;
                            continue;
                        }
                        let id = v["key"].as_str().unwrap_or("");
                        let secret = v["secret"].as_str().unwrap_or("");
                        match md_auth(&shared, id, secret, sip, &tx) {
                            Ok(c) => {
                                conn = Some(c);
                                let _ = socket.send(send(&json!([{"T":"success","msg":"authenticated"}]))).await;
                            }
                            Err(e) => {
                                let _ = socket.send(send(&e)).await;
                                let _ = socket.send(Message::Close(None)).await;
                                break;
                            }
                        }
                    }
                    Some(action @ ("subscribe" | "unsubscribe")) => {
                        let Some(c) = conn else {
                            let _ = socket.send(send(&error_msg(401, "not authenticated"))).await;
                            continue;
                        };
                        let add = action == "subscribe";
                        for (set, field) in [(&mut trades, "trades"), (&mut quotes, "quotes")] {
                            for s in symbols(&v[field]) {
                                if add { set.insert(s); } else { set.remove(&s); }
                            }
                        }
                        let reply = {
                            let mut inner = shared.lock();
                            engine::sync(&mut inner);
                            let mut wanted = symbols(&v["bars"]);
                            if wanted.iter().any(|s| s == "*") {
                                wanted.retain(|s| s != "*");
                                wanted.extend(engine::listed_symbols(&inner));
                            }
                            let t = &mut inner.trading;
                            let processed = t.processed;
                            for s in &wanted {
                                let others = t.md_conns.iter().any(|m| m.id != c && m.bars.contains(s));
                                if add && !others {
                                    t.md_cursor.insert(s.clone(), processed);
                                }
                            }
                            let bars = match t.md_conns.iter_mut().find(|m| m.id == c) {
                                Some(m) => {
                                    for s in wanted {
                                        if add { m.bars.insert(s); } else { m.bars.remove(&s); }
                                    }
                                    m.bars.clone()
                                }
                                None => BTreeSet::new(),
                            };
                            subscription(&bars, &trades, &quotes)
                        };
                        let _ = socket.send(send(&reply)).await;
                    }
                    _ => {
                        let _ = socket.send(send(&error_msg(400, "invalid syntax"))).await;
                    }
                }
            }
            out = rx.recv() => {
                match out {
                    Some(StreamOut::Json(v)) => {
                        if socket.send(send(&v)).await.is_err() {
                            break;
                        }
                    }
                    Some(StreamOut::Drop) | None => {
                        if let Some(c) = conn {
                            forget_md(&shared, c);
                        }
                        return;
                    }
                }
            }
        }
    }
    if let Some(c) = conn {
        forget_md(&shared, c);
    }
}

fn forget_md(shared: &Shared, conn: u64) {
    shared.lock().trading.md_conns.retain(|c| c.id != conn);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_times_become_msgpack_timestamps_and_messages_round_trip() {
        let v = json!([{"T":"b","S":"SPY","o":1.5,"v":10,"t":"2024-07-01T13:30:00Z"}]);
        let m = to_msgpack(&v, None);
        let rmpv::Value::Array(items) = &m else {
            panic!("an array")
        };
        let rmpv::Value::Map(fields) = &items[0] else {
            panic!("a map")
        };
        let t = fields
            .iter()
            .find(|(k, _)| k.as_str() == Some("t"))
            .unwrap();
        let rmpv::Value::Ext(-1, data) = &t.1 else {
            panic!("a timestamp: {:?}", t.1)
        };
        let raw = u64::from_be_bytes(data[..].try_into().unwrap());
        assert_eq!(raw & ((1 << 34) - 1), 1_719_840_600);
        assert_eq!(raw >> 34, 0);
        let mut buf = Vec::new();
        rmpv::encode::write_value(
            &mut buf,
            &to_msgpack(&json!({"action":"auth","key":"k"}), None),
        )
        .unwrap();
        let back = decode(&Message::Binary(buf.into()), true).unwrap();
        assert_eq!(back, json!({"action":"auth","key":"k"}));
    }
}
