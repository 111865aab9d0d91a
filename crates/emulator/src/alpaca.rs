//! Alpaca's market-data bars endpoints: `/v2/stocks/{symbol}/bars` and `/v2/stocks/bars`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate};
use serde_json::{json, Value};
use vectura_core::calendar::{ny_date, session, Session};

use crate::synth::{self, EmuBar, Feed, Timeframe};
use crate::{Inner, RetryAfter, Shared};

/// Alpaca's own per-minute limit, reported when no limit is enforced.
const DEFAULT_LIMIT: u32 = 200;
const MAX_LIMIT: usize = 10_000;
const DEFAULT_PAGE: usize = 1_000;
const MINUTE: Duration = Duration::from_secs(60);

/// The `X-RateLimit-*` values of one reply.
struct RateHeaders {
    limit: u32,
    remaining: u32,
    reset: i64,
}

fn with_headers(
    mut resp: Response,
    rl: Option<&RateHeaders>,
    retry_after: Option<u64>,
) -> Response {
    let h = resp.headers_mut();
    if let Some(rl) = rl {
        h.insert("X-RateLimit-Limit", HeaderValue::from(rl.limit));
        h.insert("X-RateLimit-Remaining", HeaderValue::from(rl.remaining));
        h.insert("X-RateLimit-Reset", HeaderValue::from(rl.reset));
    }
    if let Some(s) = retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    resp
}

pub(crate) fn message(status: u16, msg: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(json!({ "message": msg }))).into_response()
}

/// A 5xx as Alpaca (500, JSON) or its load balancer (502/503/504, HTML) sends it; `echo` is
/// appended to the message (the [`crate::Faults::echo_credentials`] fault).
fn server_error(status: u16, echo: &str) -> Response {
    if status == 500 {
        return message(500, &format!("internal server error{echo}"));
    }
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let reason = code.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<html>\r\n<head><title>{status} {reason}{echo}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
    );
    (code, [(header::CONTENT_TYPE, "text/html")], body).into_response()
}

pub(crate) async fn not_found() -> Response {
    message(404, "Not Found")
}

pub(crate) async fn single_bars(
    State(shared): State<Arc<Shared>>,
    Path(symbol): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    bars(&shared, Some(symbol), &headers, &q)
}

pub(crate) async fn multi_bars(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    bars(&shared, None, &headers, &q)
}

/// The parsed query of a bars request.
struct Params {
    symbols: Vec<String>,
    tf: Timeframe,
    start: i64,
    end: i64,
    limit: usize,
    cursor: Option<(String, i64)>,
    feed: Feed,
    split_adjusted: bool,
    desc: bool,
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn bars(
    shared: &Shared,
    single: Option<String>,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Response {
    let (given_id, given_secret) = (
        header_str(headers, "APCA-API-KEY-ID"),
        header_str(headers, "APCA-API-SECRET-KEY"),
    );
    let mut guard = shared.lock();
    let inner = &mut *guard;
    // The echo fault: what a gateway that quotes the request's headers in its errors would add.
    let echo = if inner.faults.echo_credentials {
        format!(
            " (APCA-API-KEY-ID: {}, APCA-API-SECRET-KEY: {})",
            given_id.unwrap_or(""),
            given_secret.unwrap_or("")
        )
    } else {
        String::new()
    };
    let say = |status: u16, msg: &str| message(status, &format!("{msg}{echo}"));
    let (Some(id), Some(secret)) = (given_id, given_secret) else {
        return say(401, "unauthorized.");
    };
    if let Some(keys) = &inner.keys {
        if !keys.iter().any(|(k, s)| k == id && s == secret) {
            return say(403, "forbidden.");
        }
    }
    inner.data_requests += 1;
    let ordinal = inner.data_requests;

    // The per-key window: Alpaca's limit when enforced, the headers always.
    let now = Instant::now();
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let enforced = inner.faults.rate_limit;
    let limit = enforced.unwrap_or(DEFAULT_LIMIT);
    let window = inner.faults.rate_window.unwrap_or(MINUTE);
    let (over, rl) = {
        let recent = inner.recent.entry(id.to_string()).or_default();
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
        let rl = RateHeaders {
            limit,
            remaining: if over {
                0
            } else {
                limit.saturating_sub(recent.len() as u32)
            },
            reset: now_unix + left.as_secs_f64().ceil() as i64,
        };
        (over, rl)
    };
    if over {
        let ra = next_retry_after(inner);
        return with_headers(say(429, "too many requests."), Some(&rl), ra);
    }

    if let Some(n) = inner.faults.every_nth_429.filter(|n| *n > 0) {
        if ordinal.is_multiple_of(n) {
            let ra = next_retry_after(inner);
            return with_headers(say(429, "too many requests."), Some(&rl), ra);
        }
    }
    let scheduled = inner.faults.fail_requests.contains(&ordinal);
    let rate = inner.faults.error_rate;
    if scheduled || (rate > 0.0 && inner.rng.next_f64() < rate) {
        let statuses: &[u16] = if inner.faults.error_statuses.is_empty() {
            &[500, 502, 503]
        } else {
            &inner.faults.error_statuses
        };
        let status = statuses[(inner.sent_5xx % statuses.len() as u64) as usize];
        inner.sent_5xx += 1;
        return with_headers(server_error(status, &echo), Some(&rl), None);
    }

    let is_single = single.is_some();
    let p = match parse_params(inner, single, q) {
        Ok(p) => p,
        Err(msg) => return with_headers(say(400, &msg), Some(&rl), None),
    };

    let (first, last) = (ny_date(p.start), ny_date(p.end));
    if let Some(fd) = inner.faults.failing_days.iter_mut().find(|fd| {
        fd.times > 0 && fd.day >= first && fd.day <= last && p.symbols.contains(&fd.symbol)
    }) {
        fd.times -= 1;
        let status = fd.status;
        if status == 429 {
            let ra = next_retry_after(inner);
            return with_headers(say(429, "too many requests."), Some(&rl), ra);
        }
        return with_headers(
            if status >= 500 {
                server_error(status, &echo)
            } else {
                say(status, "failing day")
            },
            Some(&rl),
            None,
        );
    }

    let body = serve(shared, inner, &p, is_single);
    with_headers(
        (StatusCode::OK, axum::Json(body)).into_response(),
        Some(&rl),
        None,
    )
}

fn next_retry_after(inner: &mut Inner) -> Option<u64> {
    inner.sent_429 += 1;
    match inner.faults.retry_after {
        RetryAfter::Never => None,
        RetryAfter::Always(s) => Some(s),
        RetryAfter::EveryOther(s) => (inner.sent_429 % 2 == 1).then_some(s),
    }
}

pub(crate) fn valid_symbol(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 21
        && s.bytes().all(|b| {
            b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'/')
        })
}

/// RFC 3339 (any offset, any fraction) or `YYYY-MM-DD` (00:00Z); `round_up` rounds a fraction
/// of a second up (for an inclusive start).
fn parse_time(s: &str, round_up: bool) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        let frac = dt.timestamp_subsec_nanos() > 0;
        return Some(dt.timestamp() + i64::from(round_up && frac));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
}

pub(crate) fn encode_token(symbol: &str, tf: Timeframe, t: i64) -> String {
    let ts = DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S.000000000Z").to_string())
        .unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(format!("{symbol}|{}|{ts}", tf.token_letter()))
}

fn decode_token(token: &str) -> Option<(String, i64)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.splitn(3, '|');
    let sym = parts.next()?.to_string();
    let _letter = parts.next()?;
    let t = DateTime::parse_from_rfc3339(parts.next()?)
        .ok()?
        .timestamp();
    Some((sym, t))
}

fn parse_params(
    inner: &Inner,
    single: Option<String>,
    q: &HashMap<String, String>,
) -> Result<Params, String> {
    let mut symbols: Vec<String> = match (&single, q.get("symbols")) {
        (Some(s), _) => vec![s.trim().to_ascii_uppercase()],
        (None, Some(list)) => list
            .split(',')
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .collect(),
        (None, None) => return Err("missing symbols".into()),
    };
    if symbols.is_empty() {
        return Err("missing symbols".into());
    }
    if let Some(bad) = symbols.iter().find(|s| !valid_symbol(s)) {
        return Err(format!("invalid symbol: {bad}"));
    }
    symbols.sort();
    symbols.dedup();
    let tf = match q.get("timeframe") {
        None => return Err("missing timeframe".into()),
        Some(s) => Timeframe::parse(s).ok_or_else(|| format!("invalid timeframe: {s}"))?,
    };
    let now = inner.now();
    let start = match q.get("start") {
        Some(s) => parse_time(s, true).ok_or_else(|| format!("invalid start: {s}"))?,
        None => now.div_euclid(86_400) * 86_400,
    };
    let end = match q.get("end") {
        Some(s) => parse_time(s, false).ok_or_else(|| format!("invalid end: {s}"))?,
        None => now,
    };
    if end < start {
        return Err("end should not be before start".into());
    }
    let limit = match q.get("limit") {
        None => DEFAULT_PAGE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(format!("invalid limit: {s} (1 to {MAX_LIMIT})")),
        },
    };
    let cursor = match q
        .get("page_token")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(t) => Some(decode_token(t).ok_or_else(|| "invalid page token".to_string())?),
    };
    let feed = match q.get("feed").map(String::as_str) {
        None | Some("sip") => Feed::Sip,
        Some("iex") => Feed::Iex,
        Some(other) => {
            return Err(format!(
                "invalid feed: {other} (the emulator serves sip and iex)"
            ))
        }
    };
    let mut split_adjusted = false;
    if let Some(a) = q.get("adjustment") {
        for part in a.split(',') {
            match part.trim() {
                "raw" | "dividend" | "spin-off" => {}
                "split" | "all" => split_adjusted = true,
                other => return Err(format!("invalid adjustment: {other}")),
            }
        }
    }
    let desc = match q.get("sort").map(String::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(format!("invalid sort: {other}")),
    };
    Ok(Params {
        symbols,
        tf,
        start,
        end,
        limit,
        cursor,
        feed,
        split_adjusted,
        desc,
    })
}

/// One symbol's bars of one session, as the request asks for them (before the window filter).
fn day_bars(shared: &Shared, inner: &Inner, symbol: &str, s: &Session, p: &Params) -> Vec<EmuBar> {
    let now = inner.now();
    let mut bars: Vec<EmuBar> = match inner.csv.get(symbol) {
        Some(all) => {
            let lo = all.partition_point(|b| b.t < s.pre_open());
            let hi = all.partition_point(|b| b.t < s.post_close());
            all[lo..hi].to_vec()
        }
        None => {
            let mut b = synth::synthetic_day(shared.seed, symbol, s, inner.extended_hours);
            let f = inner
                .splits
                .get(symbol)
                .map_or(1.0, |sp| synth::split_factor_after(sp, s.date));
            synth::to_raw(&mut b, f);
            b
        }
    };
    bars.retain(|b| b.t + 60 <= now);
    if p.split_adjusted {
        if let Some(sp) = inner.splits.get(symbol) {
            synth::adjust_split(&mut bars, synth::split_factor_after(sp, s.date));
        }
    }
    if p.feed == Feed::Iex {
        synth::to_iex(&mut bars);
    }
    synth::aggregate(&bars, p.tf, s)
}

/// Up to `want` bars of `symbol` in the request's window and order, after `after` when given.
fn collect(
    shared: &Shared,
    inner: &Inner,
    symbol: &str,
    p: &Params,
    after: Option<i64>,
    want: usize,
) -> Vec<EmuBar> {
    let mut out = Vec::new();
    let mut lo = ny_date(p.start).max(inner.first_day);
    let mut hi = ny_date(p.end).min(ny_date(inner.now()));
    if let Some(t) = after {
        if p.desc {
            hi = hi.min(ny_date(t));
        } else {
            lo = lo.max(ny_date(t));
        }
    }
    if hi < lo {
        return out;
    }
    let keep = |b: &EmuBar| {
        b.t >= p.start
            && b.t <= p.end
            && match after {
                None => true,
                Some(t) if p.desc => b.t < t,
                Some(t) => b.t > t,
            }
    };
    let mut d = if p.desc { hi } else { lo };
    loop {
        if let Some(s) = session(d) {
            let mut day = day_bars(shared, inner, symbol, &s, p);
            if p.desc {
                day.reverse();
            }
            for b in day.into_iter().filter(keep) {
                out.push(b);
                if out.len() >= want {
                    return out;
                }
            }
        }
        let next = if p.desc { d.pred_opt() } else { d.succ_opt() };
        match next {
            Some(n) if n >= lo && n <= hi => d = n,
            _ => return out,
        }
    }
}

fn bar_json(b: &EmuBar) -> Value {
    json!({
        "t": vectura_core::time::rfc3339(b.t),
        "o": b.o,
        "h": b.h,
        "l": b.l,
        "c": b.c,
        "v": b.v,
        "n": b.n,
        "vw": b.vw,
    })
}

/// The page of bars for a valid request, with its `next_page_token`.
fn serve(shared: &Shared, inner: &Inner, p: &Params, single: bool) -> Value {
    let mut left = p.limit;
    let mut page: Vec<(String, Vec<EmuBar>)> = Vec::new();
    let mut token = None;
    let start_idx = match &p.cursor {
        Some((sym, _)) => p.symbols.partition_point(|s| s < sym),
        None => 0,
    };
    for sym in &p.symbols[start_idx..] {
        let after = match &p.cursor {
            Some((cs, t)) if cs == sym => Some(*t),
            _ => None,
        };
        // One more than fits tells whether another page follows.
        let mut bars = collect(shared, inner, sym, p, after, left + 1);
        if bars.len() > left {
            bars.truncate(left);
            let last = bars.last().map(|b| b.t);
            let t = last.or(after).unwrap_or(p.start);
            token = Some(encode_token(sym, p.tf, t));
            if !bars.is_empty() {
                page.push((sym.clone(), bars));
            }
            break;
        }
        left -= bars.len();
        if !bars.is_empty() {
            page.push((sym.clone(), bars));
        }
        if left == 0 {
            // The page is full; another page follows only if a later symbol has bars.
            let rest = p.symbols.iter().skip_while(|s| *s != sym).skip(1);
            for next in rest {
                if !collect(shared, inner, next, p, None, 1).is_empty() {
                    let t = page
                        .last()
                        .and_then(|(_, b)| b.last())
                        .map_or(p.start, |b| b.t);
                    token = Some(encode_token(sym, p.tf, t));
                    break;
                }
            }
            break;
        }
    }
    if single {
        let sym = p.symbols[0].clone();
        let bars: Vec<Value> = page
            .into_iter()
            .flat_map(|(_, b)| b)
            .map(|b| bar_json(&b))
            .collect();
        json!({ "bars": bars, "symbol": sym, "next_page_token": token })
    } else {
        let map: serde_json::Map<String, Value> = page
            .into_iter()
            .map(|(s, b)| (s, Value::Array(b.iter().map(bar_json).collect())))
            .collect();
        json!({ "bars": map, "next_page_token": token })
    }
}

/// Raw SIP minute bars of `symbol` with `from <= t < to` (for [`crate::EmulatorHandle::minute_bars`]).
pub(crate) fn minute_bars_between(
    shared: &Shared,
    inner: &Inner,
    symbol: &str,
    from: i64,
    to: i64,
) -> Vec<EmuBar> {
    if to <= from {
        return Vec::new();
    }
    let p = Params {
        symbols: vec![symbol.to_string()],
        tf: Timeframe::Minutes(1),
        start: from,
        end: to - 1,
        limit: usize::MAX,
        cursor: None,
        feed: Feed::Sip,
        split_adjusted: false,
        desc: false,
    };
    collect(shared, inner, symbol, &p, None, usize::MAX)
}
