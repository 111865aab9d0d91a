//! The trading API's HTTP routes (`/v2/account`, `/v2/orders…`, `/v2/positions…`, `/v2/clock`,
//! `/v2/calendar`, `/v2/assets…`, `/v2/account/activities…`) and the route faults of every route.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use vectura_core::calendar::{classify, next_session, ny_date, session, sessions, SessionPart};

use super::engine::{self, refusal, Refusal};
use super::{wire, FaultAction, LostReply, OrderRequestRecord, Side};
use crate::alpaca::header_str;
use crate::clock::{parse_time, rfc3339_micros, Micros, SECOND};
use crate::{Inner, Shared};

const MINUTE: Duration = Duration::from_secs(60);
/// Alpaca's trading API limit per key.
const DEFAULT_LIMIT: u32 = 200;

fn json_reply(status: u16, body: Value) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(body)).into_response()
}

fn refused((status, body): Refusal) -> Response {
    json_reply(status, body)
}

/// A 5xx as Alpaca (500, JSON) or its load balancer (502/503/504, HTML) sends it; a 429 as the
/// rate limiter does.
pub(crate) fn fault_status(status: u16) -> Response {
    match status {
        429 => {
            // Used up, resetting now: an injected 429 costs a client no real wait.
            let mut r = refused(refusal(429, 42910000, "rate limit exceeded"));
            rate_headers(&mut r, DEFAULT_LIMIT, 0, Utc::now().timestamp());
            r
        }
        500 => refused(refusal(500, 50010000, "internal server error occurred")),
        s => {
            let code = StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY);
            let reason = code.canonical_reason().unwrap_or("Error");
            let body = format!(
                "<html>\r\n<head><title>{s} {reason}</title></head>\r\n<body>\r\n<center><h1>{s} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
            );
            (code, [(header::CONTENT_TYPE, "text/html")], body).into_response()
        }
    }
}

/// A reply whose body breaks off: the client sees the status line, then a broken connection.
fn dropped_reply() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "emulated connection drop",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| fault_status(502))
}

/// Takes the first route fault matching `method` and `path` (one use of it).
fn take_route_fault(inner: &mut Inner, method: &str, path: &str) -> Option<FaultAction> {
    let routes = &mut inner.trading.faults.routes;
    let i = routes.iter().position(|f| {
        f.times != Some(0)
            && f.method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.starts_with(&f.path)
    })?;
    let f = &mut routes[i];
    if let Some(n) = &mut f.times {
        *n -= 1;
    }
    Some(f.action)
}

/// Middleware for every route: the route faults (except `POST /v2/orders`, whose handler applies
/// them itself so that the order log can name the client order id).
pub(crate) async fn route_faults(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    if !(method == "POST" && path == "/v2/orders") {
        let action = take_route_fault(&mut shared.lock(), &method, &path);
        if let Some(resp) = apply_fault(action).await {
            return resp;
        }
    }
    next.run(req).await
}

/// The reply a fault gives, or `None` to go on (after a delay).
async fn apply_fault(action: Option<FaultAction>) -> Option<Response> {
    match action? {
        FaultAction::Status(s) => Some(fault_status(s)),
        FaultAction::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
        FaultAction::Hang => std::future::pending().await,
        FaultAction::Drop => Some(dropped_reply()),
    }
}

/// Credentials of a trading request: the key id, or the 401 reply.
fn credentials(inner: &Inner, headers: &HeaderMap) -> Result<String, Refusal> {
    let unauthorized = || refusal(401, 40110000, "request is not authorized");
    let (Some(id), Some(secret)) = (
        header_str(headers, "APCA-API-KEY-ID"),
        header_str(headers, "APCA-API-SECRET-KEY"),
    ) else {
        return Err(unauthorized());
    };
    if let Some(keys) = &inner.keys {
        if !keys.iter().any(|(k, s)| k == id && s == secret) {
            return Err(unauthorized());
        }
    }
    Ok(id.to_string())
}

/// Middleware for the trading routes: credentials, the per-key rate limit and its headers.
pub(crate) async fn trading_guard(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let (limit, remaining, reset) = {
        let mut inner = shared.lock();
        let key = match credentials(&inner, req.headers()) {
            Ok(k) => k,
            Err(r) => return refused(r),
        };
        let enforced = inner.trading.faults.rate_limit;
        let window = inner.trading.faults.rate_window.unwrap_or(MINUTE);
        let limit = enforced.unwrap_or(DEFAULT_LIMIT);
        let now = Instant::now();
        let recent = inner.trading.recent.entry(key).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            recent.pop_front();
        }
        let over = enforced.is_some_and(|max| recent.len() >= max as usize);
        if !over {
            recent.push_back(now);
        }
        let left = recent
            .front()
            .map_or(window, |t| window.saturating_sub(now.duration_since(*t)));
        let reset = Utc::now().timestamp() + left.as_secs_f64().ceil() as i64;
        let remaining = if over {
            0
        } else {
            limit.saturating_sub(recent.len() as u32)
        };
        if over {
            let mut r = fault_status(429);
            rate_headers(&mut r, limit, 0, reset);
            return r;
        }
        (limit, remaining, reset)
    };
    let mut resp = next.run(req).await;
    rate_headers(&mut resp, limit, remaining, reset);
    resp
}

fn rate_headers(resp: &mut Response, limit: u32, remaining: u32, reset: i64) {
    let h = resp.headers_mut();
    h.insert("X-RateLimit-Limit", HeaderValue::from(limit));
    h.insert("X-RateLimit-Remaining", HeaderValue::from(remaining));
    h.insert("X-RateLimit-Reset", HeaderValue::from(reset));
}

fn key_of(headers: &HeaderMap) -> String {
    header_str(headers, "APCA-API-KEY-ID")
        .unwrap_or("")
        .to_string()
}

/// Locks, brings the engine to now, and returns the guard with now.
fn synced(shared: &Shared) -> (std::sync::MutexGuard<'_, Inner>, Micros) {
    let mut inner = shared.lock();
    engine::sync(&mut inner);
    let now = inner.clock.now();
    (inner, now)
}

/// One order request, for the orders log: where it came in, then what came of it.
struct Logged<'a> {
    key: &'a str,
    method: &'a str,
    path: &'a str,
    coid: Option<String>,
    order_id: Option<String>,
    status: Option<u16>,
    created: bool,
    outcome: String,
}

impl<'a> Logged<'a> {
    fn new(key: &'a str, method: &'a str, path: &'a str) -> Self {
        Logged {
            key,
            method,
            path,
            coid: None,
            order_id: None,
            status: None,
            created: false,
            outcome: String::new(),
        }
    }

    fn ids(mut self, coid: Option<String>, order_id: Option<String>) -> Self {
        self.coid = coid;
        self.order_id = order_id;
        self
    }

    fn status(mut self, status: Option<u16>) -> Self {
        self.status = status;
        self
    }

    fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = outcome.into();
        self
    }

    /// An order the request created, with the ids its reply carries.
    fn created(mut self, order: &Value) -> Self {
        let id = |field: &str| order[field].as_str().map(str::to_string);
        self.coid = id("client_order_id");
        self.order_id = id("id");
        self.status = Some(200);
        self.created = true;
        self.outcome = "created".into();
        self
    }

    /// A refusal, logged as `{verb}: {its message}`.
    fn refused(mut self, (status, body): &Refusal, verb: &str) -> Self {
        let msg = body["message"].as_str().unwrap_or("");
        self.status = Some(*status);
        self.outcome = format!("{verb}: {msg}");
        self
    }

    /// A lookup that found its order or did not.
    fn lookup(mut self, found: bool) -> Self {
        self.status = Some(if found { 200 } else { 404 });
        self.outcome = if found { "found" } else { "not found" }.into();
        self
    }

    fn write(self, inner: &mut Inner, now: Micros) {
        inner.trading.record(OrderRequestRecord {
            time: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            emulator_time: rfc3339_micros(now),
            key: Some(self.key.to_string()),
            method: self.method.to_string(),
            path: self.path.to_string(),
            client_order_id: self.coid,
            order_id: self.order_id,
            status: self.status,
            created: self.created,
            outcome: self.outcome,
        });
    }
}

pub(crate) async fn get_account(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let key = key_of(&headers);
    let (mut inner, now) = synced(&shared);
    let pdt = inner.trading.cfg.pdt_fields;
    let (src, t) = engine::parts(&mut inner);
    let a = t.account(&key, now);
    let f = engine::figures(&src, a, now);
    json_reply(200, wire::account(a, &f, now, pdt))
}

/// The session the venue holds on `d`: the built-in calendar's, unless the venue closed the day.
fn venue_session(
    closed: &std::collections::BTreeSet<chrono::NaiveDate>,
    d: chrono::NaiveDate,
) -> Option<vectura_core::calendar::Session> {
    session(d).filter(|s| !closed.contains(&s.date))
}

/// The venue's first session after `d`.
fn venue_next(
    closed: &std::collections::BTreeSet<chrono::NaiveDate>,
    mut d: chrono::NaiveDate,
) -> Option<vectura_core::calendar::Session> {
    loop {
        let s = next_session(d)?;
        if !closed.contains(&s.date) {
            return Some(s);
        }
        d = s.date;
    }
}

pub(crate) async fn get_clock(State(shared): State<Arc<Shared>>) -> Response {
    let (inner, now) = synced(&shared);
    let closed = &inner.trading.cfg.closed_days;
    let secs = now.div_euclid(SECOND);
    let d = ny_date(secs);
    let today = venue_session(closed, d);
    let next_open = match today {
        Some(s) if s.open > secs => Some(s.open),
        _ => venue_next(closed, d).map(|s| s.open),
    };
    let next_close = match today {
        Some(s) if s.close > secs => Some(s.close),
        _ => venue_next(closed, d).map(|s| s.close),
    };
    let is_open = today.is_some() && classify(secs) == SessionPart::Regular;
    drop(inner);
    json_reply(
        200,
        json!({
            "timestamp": wire::ny_time(now),
            "is_open": is_open,
            "next_open": next_open.map(|t| wire::ny_time(t * SECOND)),
            "next_close": next_close.map(|t| wire::ny_time(t * SECOND)),
        }),
    )
}

pub(crate) async fn get_calendar(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (inner, now) = synced(&shared);
    let closed = inner.trading.cfg.closed_days.clone();
    drop(inner);
    let today = ny_date(now.div_euclid(SECOND));
    let date = |name: &str, default: chrono::NaiveDate| -> Result<chrono::NaiveDate, Refusal> {
        match q.get(name).map(|s| s.trim()).filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(s) => chrono::NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
                .map_err(|_| refusal(400, 40010001, format!("invalid {name}: {s}"))),
        }
    };
    let year = chrono::Days::new(366);
    let start = match date("start", today.checked_sub_days(year).unwrap_or(today)) {
        Ok(d) => d,
        Err(r) => return refused(r),
    };
    let end = match date("end", today.checked_add_days(year).unwrap_or(today)) {
        Ok(d) => d,
        Err(r) => return refused(r),
    };
    // Settlement: T+1 since 2024-05-28, T+2 before.
    let t1 = chrono::NaiveDate::from_ymd_opt(2024, 5, 28).unwrap_or(today);
    let days: Vec<Value> = sessions(start, end)
        .iter()
        .filter(|s| !closed.contains(&s.date))
        .map(|s| {
            let mut settle = venue_next(&closed, s.date).map_or(s.date, |n| n.date);
            if s.date < t1 {
                settle = venue_next(&closed, settle).map_or(settle, |n| n.date);
            }
            wire::calendar_day(s, settle)
        })
        .collect();
    json_reply(200, Value::Array(days))
}

pub(crate) async fn get_assets(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let inner = shared.lock();
    if q.get("status").is_some_and(|s| s == "inactive") {
        return json_reply(200, json!([]));
    }
    let list: Vec<Value> = engine::listed_symbols(&inner)
        .iter()
        .map(|s| wire::asset(s))
        .collect();
    json_reply(200, Value::Array(list))
}

pub(crate) async fn get_asset(
    State(shared): State<Arc<Shared>>,
    Path(symbol): Path<String>,
) -> Response {
    let inner = shared.lock();
    let sym = symbol.trim().to_ascii_uppercase();
    if !engine::tradable(&inner, &sym) {
        return refused(refusal(404, 40410000, "asset not found"));
    }
    json_reply(200, wire::asset(&sym))
}

pub(crate) async fn post_order(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = key_of(&headers);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let coid = parsed
        .get("client_order_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let before = {
        let mut inner = shared.lock();
        let action = take_route_fault(&mut inner, "POST", "/v2/orders");
        if let Some(a) = action.filter(|a| !matches!(a, FaultAction::Delay(_))) {
            let now = inner.clock.now();
            let status = match a {
                FaultAction::Status(s) => Some(s),
                FaultAction::Drop => Some(200),
                _ => None,
            };
            Logged::new(&key, "POST", "/v2/orders")
                .ids(coid.clone(), None)
                .status(status)
                .outcome(format!("fault before processing ({a:?}): no order"))
                .write(&mut inner, now);
        }
        action
    };
    if let Some(resp) = apply_fault(before).await {
        return resp;
    }
    let (resp, lost) = {
        let (mut inner, now) = synced(&shared);
        match engine::submit(&mut inner, &key, &parsed, now) {
            Ok(s) => {
                let a = &inner.trading.accounts[&key];
                let o = &a.orders[s.index];
                let body = wire::order(o);
                let f = &mut inner.trading.faults;
                let lost = match (f.lost_reply, f.lost_replies) {
                    (Some(_), Some(0)) => None,
                    (Some(l), Some(n)) => {
                        f.lost_replies = Some(n - 1);
                        Some(l)
                    }
                    (l, None) => l,
                    (None, Some(_)) => None,
                };
                let (status, outcome) = match lost {
                    None => (Some(200), "created".to_string()),
                    Some(LostReply::Status(s)) => {
                        (Some(s), format!("created; reply replaced by {s}"))
                    }
                    Some(LostReply::Hang) => (None, "created; reply withheld (hang)".into()),
                    Some(LostReply::Drop) => {
                        (Some(200), "created; connection dropped mid-reply".into())
                    }
                    Some(LostReply::Delay(d)) => (
                        Some(200),
                        format!("created; reply delayed {} ms", d.as_millis()),
                    ),
                };
                Logged::new(&key, "POST", "/v2/orders")
                    .created(&body)
                    .status(status)
                    .outcome(outcome)
                    .write(&mut inner, now);
                (json_reply(200, body), lost)
            }
            Err((status, body)) => {
                let msg = body["message"].as_str().unwrap_or("").to_string();
                let outcome = if msg == "client_order_id must be unique" {
                    "duplicate".to_string()
                } else {
                    format!("rejected: {msg}")
                };
                Logged::new(&key, "POST", "/v2/orders")
                    .ids(coid, None)
                    .status(Some(status))
                    .outcome(outcome)
                    .write(&mut inner, now);
                (json_reply(status, body), None)
            }
        }
    };
    match lost {
        None => resp,
        Some(LostReply::Status(s)) => fault_status(s),
        Some(LostReply::Hang) => std::future::pending().await,
        Some(LostReply::Drop) => dropped_reply(),
        Some(LostReply::Delay(d)) => {
            tokio::time::sleep(d).await;
            resp
        }
    }
}

fn bad(msg: String) -> Response {
    refused(refusal(422, 40010001, msg))
}

pub(crate) async fn get_orders(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = key_of(&headers);
    let (mut inner, now) = synced(&shared);
    let status = q.get("status").map_or("open", String::as_str).to_string();
    if !matches!(status.as_str(), "open" | "closed" | "all") {
        return bad(format!("invalid status: {status}"));
    }
    let limit = match q.get("limit") {
        None => 50,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => return bad(format!("invalid limit: {s} (1 to 500)")),
        },
    };
    let time = |name: &str| -> Result<Option<Micros>, Refusal> {
        match q.get(name).map(|s| s.trim()).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => parse_time(s)
                .map(Some)
                .ok_or_else(|| refusal(422, 40010001, format!("invalid {name}: {s}"))),
        }
    };
    let (after, until) = match (time("after"), time("until")) {
        (Ok(a), Ok(u)) => (a, u),
        (Err(r), _) | (_, Err(r)) => return refused(r),
    };
    let asc = match q.get("direction").map(String::as_str) {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(d) => return bad(format!("invalid direction: {d}")),
    };
    let symbols: Option<Vec<String>> = q.get("symbols").map(|s| {
        s.split(',')
            .map(|x| x.trim().to_ascii_uppercase())
            .filter(|x| !x.is_empty())
            .collect()
    });
    let side = match q.get("side").map(String::as_str) {
        None | Some("") => None,
        Some("buy") => Some(Side::Buy),
        Some("sell") => Some(Side::Sell),
        Some(s) => return bad(format!("invalid side: {s}")),
    };
    let (_, t) = engine::parts(&mut inner);
    let a = t.account(&key, now);
    let mut list: Vec<&super::Order> = a
        .orders
        .iter()
        .filter(|o| match status.as_str() {
            "open" => o.is_open(),
            "closed" => !o.is_open(),
            _ => true,
        })
        .filter(|o| after.is_none_or(|t| o.submitted_at > t))
        .filter(|o| until.is_none_or(|t| o.submitted_at < t))
        .filter(|o| symbols.as_ref().is_none_or(|s| s.contains(&o.symbol)))
        .filter(|o| side.is_none_or(|s| o.side == s))
        .collect();
    if !asc {
        list.reverse();
    }
    let body: Vec<Value> = list.into_iter().take(limit).map(wire::order).collect();
    let n = body.len();
    Logged::new(&key, "GET", "/v2/orders")
        .status(Some(200))
        .outcome(format!("listed {n}"))
        .write(&mut inner, now);
    json_reply(200, Value::Array(body))
}

pub(crate) async fn get_order(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let key = key_of(&headers);
    let (mut inner, now) = synced(&shared);
    let path = format!("/v2/orders/{id}");
    let found = inner
        .trading
        .accounts
        .get(&key)
        .and_then(|a| a.by_id.get(&id).map(|&i| wire::order(&a.orders[i])));
    Logged::new(&key, "GET", &path)
        .ids(None, Some(id))
        .lookup(found.is_some())
        .write(&mut inner, now);
    match found {
        Some(o) => json_reply(200, o),
        None => refused(refusal(404, 40410000, "order not found")),
    }
}

pub(crate) async fn get_order_by_client_id(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = key_of(&headers);
    let (mut inner, now) = synced(&shared);
    let Some(coid) = q.get("client_order_id").cloned().filter(|c| !c.is_empty()) else {
        return bad("client_order_id is required".into());
    };
    let found = inner.trading.accounts.get(&key).and_then(|a| {
        a.by_client
            .get(&coid)
            .map(|&i| (a.orders[i].id.clone(), wire::order(&a.orders[i])))
    });
    Logged::new(&key, "GET", "/v2/orders:by_client_order_id")
        .ids(Some(coid), found.as_ref().map(|(id, _)| id.clone()))
        .lookup(found.is_some())
        .write(&mut inner, now);
    match found {
        Some((_, o)) => json_reply(200, o),
        None => refused(refusal(404, 40410000, "order not found")),
    }
}

pub(crate) async fn delete_order(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let key = key_of(&headers);
    let (mut inner, now) = synced(&shared);
    let result = engine::cancel(&mut inner.trading, &key, &id, now);
    let path = format!("/v2/orders/{id}");
    let coid = inner.trading.accounts.get(&key).and_then(|a| {
        a.by_id
            .get(&id)
            .map(|&i| a.orders[i].client_order_id.clone())
    });
    match result {
        Ok(()) => {
            Logged::new(&key, "DELETE", &path)
                .ids(coid, Some(id))
                .status(Some(204))
                .outcome("canceled")
                .write(&mut inner, now);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => {
            Logged::new(&key, "DELETE", &path)
                .ids(coid, Some(id))
                .refused(&r, "refused")
                .write(&mut inner, now);
            refused(r)
        }
    }
}

pub(crate) async fn delete_orders(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    let key = key_of(&headers);
    let (mut inner, now) = synced(&shared);
    let ids = engine::cancel_all(&mut inner.trading, &key, now);
    let n = ids.len();
    Logged::new(&key, "DELETE", "/v2/orders")
        .status(Some(207))
        .outcome(format!("canceled {n}"))
        .write(&mut inner, now);
    let body: Vec<Value> = ids
        .into_iter()
        .map(|id| json!({ "id": id, "status": 200 }))
        .collect();
    json_reply(207, Value::Array(body))
}

pub(crate) async fn get_positions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    let key = key_of(&headers);
    let (mut inner, now) = synced(&shared);
    let secs = now.div_euclid(SECOND);
    let (src, t) = engine::parts(&mut inner);
    let a = t.account(&key, now);
    let list: Vec<Value> = a
        .positions
        .iter()
        .map(|(sym, p)| {
            wire::position(
                sym,
                p,
                engine::held_for_sells(a, sym),
                engine::mark(&src, sym, p, secs),
                engine::lastday(&src, sym, p, secs),
            )
        })
        .collect();
    json_reply(200, Value::Array(list))
}

pub(crate) async fn get_position(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(symbol): Path<String>,
) -> Response {
    let key = key_of(&headers);
    let (mut inner, now) = synced(&shared);
    let secs = now.div_euclid(SECOND);
    let sym = symbol.trim().to_ascii_uppercase();
    let (src, t) = engine::parts(&mut inner);
    let a = t.account(&key, now);
    match a.positions.get(&sym) {
        Some(p) => json_reply(
            200,
            wire::position(
                &sym,
                p,
                engine::held_for_sells(a, &sym),
                engine::mark(&src, &sym, p, secs),
                engine::lastday(&src, &sym, p, secs),
            ),
        ),
        None => refused(refusal(404, 40410000, "position does not exist")),
    }
}

/// Closes (part of) a position with a market sell order; the order or the refusal.
fn close_one(
    inner: &mut Inner,
    key: &str,
    sym: &str,
    q: &HashMap<String, String>,
    now: Micros,
) -> Result<Value, Refusal> {
    let have = inner
        .trading
        .accounts
        .get(key)
        .and_then(|a| a.positions.get(sym))
        .map(|p| p.qty)
        .ok_or_else(|| refusal(404, 40410000, "position does not exist"))?;
    let qty = match (q.get("qty"), q.get("percentage")) {
        (Some(_), Some(_)) => {
            return Err(refusal(
                422,
                40010001,
                "only one of qty or percentage can be specified",
            ))
        }
        (Some(s), None) => s
            .parse::<Decimal>()
            .map_err(|_| refusal(422, 40010001, format!("invalid qty: {s}")))?,
        (None, Some(s)) => {
            let pct = s
                .parse::<Decimal>()
                .map_err(|_| refusal(422, 40010001, format!("invalid percentage: {s}")))?;
            if pct <= Decimal::ZERO || pct > Decimal::from(100) {
                return Err(refusal(
                    422,
                    40010001,
                    "percentage must be between 0 and 100",
                ));
            }
            (have * pct / Decimal::from(100))
                .round_dp_with_strategy(9, rust_decimal::RoundingStrategy::ToZero)
        }
        (None, None) => have,
    };
    let body = json!({
        "symbol": sym,
        "qty": wire::dec(qty),
        "side": "sell",
        "type": "market",
        "time_in_force": "day",
    });
    let s = engine::submit(inner, key, &body, now)?;
    Ok(wire::order(&inner.trading.accounts[key].orders[s.index]))
}

/// [`close_one`], with its outcome in the orders log.
fn close_logged(
    inner: &mut Inner,
    key: &str,
    sym: &str,
    q: &HashMap<String, String>,
    now: Micros,
) -> Result<Value, Refusal> {
    let path = format!("/v2/positions/{sym}");
    let closed = close_one(inner, key, sym, q, now);
    let log = Logged::new(key, "DELETE", &path);
    match &closed {
        Ok(o) => log.created(o),
        Err(r) => log.refused(r, "rejected"),
    }
    .write(inner, now);
    closed
}

pub(crate) async fn delete_position(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(symbol): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = key_of(&headers);
    let (mut inner, now) = synced(&shared);
    let sym = symbol.trim().to_ascii_uppercase();
    match close_logged(&mut inner, &key, &sym, &q, now) {
        Ok(o) => json_reply(200, o),
        Err(r) => refused(r),
    }
}

pub(crate) async fn delete_positions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = key_of(&headers);
    let (mut inner, now) = synced(&shared);
    if q.get("cancel_orders").is_some_and(|v| v == "true") {
        engine::cancel_all(&mut inner.trading, &key, now);
    }
    let symbols: Vec<String> = inner
        .trading
        .accounts
        .get(&key)
        .map(|a| a.positions.keys().cloned().collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for sym in symbols {
        out.push(
            match close_logged(&mut inner, &key, &sym, &HashMap::new(), now) {
                Ok(o) => json!({ "symbol": sym, "status": 200, "body": o }),
                Err((status, body)) => json!({ "symbol": sym, "status": status, "body": body }),
            },
        );
    }
    json_reply(207, Value::Array(out))
}

pub(crate) async fn get_activities(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let wants_fills = match (q.get("activity_types"), q.get("category")) {
        (Some(t), _) => t.split(',').any(|t| t.trim().eq_ignore_ascii_case("FILL")),
        (None, Some(c)) => c == "trade_activity",
        (None, None) => true,
    };
    activities(&shared, &headers, &q, wants_fills)
}

pub(crate) async fn get_activities_of_type(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(kind): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    activities(&shared, &headers, &q, kind.eq_ignore_ascii_case("FILL"))
}

fn activities(
    shared: &Shared,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    fills: bool,
) -> Response {
    let key = key_of(headers);
    let (mut inner, now) = synced(shared);
    let time = |name: &str| -> Result<Option<Micros>, Refusal> {
        match q.get(name).map(|s| s.trim()).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => parse_time(s)
                .map(Some)
                .ok_or_else(|| refusal(400, 40010001, format!("invalid {name}: {s}"))),
        }
    };
    let (after, until, date) = match (time("after"), time("until"), time("date")) {
        (Ok(a), Ok(u), Ok(d)) => (a, u, d),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return refused(r),
    };
    let asc = match q.get("direction").map(String::as_str) {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(d) => return refused(refusal(400, 40010001, format!("invalid direction: {d}"))),
    };
    let page_size = match q.get("page_size") {
        None => 100,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return refused(refusal(
                    400,
                    40010001,
                    format!("invalid page_size: {s} (1 to 100)"),
                ))
            }
        },
    };
    if !fills {
        return json_reply(200, json!([]));
    }
    let (_, t) = engine::parts(&mut inner);
    let a = t.account(&key, now);
    let mut list: Vec<&super::Fill> = a
        .fills
        .iter()
        .filter(|f| after.is_none_or(|t| f.at > t))
        .filter(|f| until.is_none_or(|t| f.at < t))
        .filter(|f| date.is_none_or(|d| f.at >= d && f.at < d + 86_400 * SECOND))
        .collect();
    if !asc {
        list.reverse();
    }
    if let Some(token) = q.get("page_token").filter(|t| !t.is_empty()) {
        match list.iter().position(|f| &f.id == token) {
            Some(i) => {
                list.drain(..=i);
            }
            None => {
                return refused(refusal(
                    400,
                    40010001,
                    format!("invalid page_token: {token}"),
                ))
            }
        }
    }
    let account_id = a.id.clone();
    let body: Vec<Value> = list
        .into_iter()
        .take(page_size)
        .map(|f| wire::activity(f, &account_id))
        .collect();
    json_reply(200, Value::Array(body))
}

pub(crate) async fn patch_order() -> Response {
    refused(refusal(
        422,
        40010001,
        "replacing orders is not supported by the emulator",
    ))
}
