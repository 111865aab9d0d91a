//! Alpaca's corporate actions (`GET /v1/corporate-actions`), forward and reverse splits only: the
//! second split source, served from the same per-symbol splits as the bars and Alpha Vantage.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde_json::{json, Value};

use crate::alpaca::{header_str, message};
use crate::Shared;

/// Most actions in one reply.
const MAX_LIMIT: usize = 1000;

pub(crate) async fn corporate_actions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (given_id, given_secret) = (
        header_str(&headers, "APCA-API-KEY-ID"),
        header_str(&headers, "APCA-API-SECRET-KEY"),
    );
    let inner = shared.lock();
    // The echo fault (see `Faults::echo_credentials`).
    let echo = if inner.faults.echo_credentials {
        format!(
            " (APCA-API-KEY-ID: {}, APCA-API-SECRET-KEY: {})",
            given_id.unwrap_or(""),
            given_secret.unwrap_or("")
        )
    } else {
        String::new()
    };
    let message = |status: u16, msg: &str| message(status, &format!("{msg}{echo}"));
    let (Some(id), Some(secret)) = (given_id, given_secret) else {
        return message(401, "unauthorized.");
    };
    if let Some(keys) = &inner.keys {
        if !keys.iter().any(|(k, s)| k == id && s == secret) {
            return message(403, "forbidden.");
        }
    }
    // The bad parameter's name, when a date does not parse.
    let date = |name: &'static str| -> Result<Option<NaiveDate>, &'static str> {
        match q.get(name) {
            None => Ok(None),
            Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| name),
        }
    };
    let (start, end) = match (date("start"), date("end")) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(name), _) | (_, Err(name)) => {
            return message(400, &format!("invalid {name}: give YYYY-MM-DD"))
        }
    };
    let limit = match q.get("limit").map(|v| v.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return message(400, "invalid limit"),
    };
    let types: Vec<&str> = q
        .get("types")
        .map(|t| t.split(',').map(str::trim).collect())
        .unwrap_or_else(|| vec!["forward_split", "reverse_split"]);
    let symbols: Vec<String> = q
        .get("symbols")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_ascii_uppercase())
                .collect()
        })
        .unwrap_or_default();
    // (ex_date, symbol, ratio), sorted as Alpaca sorts: by date, then symbol.
    let mut rows: Vec<(NaiveDate, String, f64)> = Vec::new();
    for (sym, list) in &inner.splits {
        if !symbols.is_empty() && !symbols.contains(sym) {
            continue;
        }
        for &(d, ratio) in list {
            if start.is_some_and(|s| d < s) || end.is_some_and(|e| d > e) {
                continue;
            }
            rows.push((d, sym.clone(), ratio));
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let skip = match q.get("page_token") {
        None => 0,
        Some(t) => match t.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return message(400, "invalid page_token"),
        },
    };
    let page: Vec<_> = rows.iter().skip(skip).take(limit).collect();
    let next = (skip + page.len() < rows.len()).then(|| (skip + page.len()).to_string());
    let (mut fwd, mut rev) = (Vec::<Value>::new(), Vec::<Value>::new());
    for (i, (d, sym, ratio)) in page.into_iter().enumerate() {
        let day = d.to_string();
        let id = format!("00000000-0000-4000-8000-{:012}", skip + i);
        if *ratio >= 1.0 {
            if types.contains(&"forward_split") {
                fwd.push(json!({
                    "id": id, "symbol": sym, "cusip": "000000000", "new_rate": ratio, "old_rate": 1.0,
                    "process_date": day, "ex_date": day, "record_date": day, "payable_date": day,
                }));
            }
        } else if types.contains(&"reverse_split") {
            rev.push(json!({
                "id": id, "symbol": sym, "old_cusip": "000000000", "new_cusip": "000000001",
                "new_rate": 1.0, "old_rate": 1.0 / ratio,
                "process_date": day, "ex_date": day, "record_date": day,
            }));
        }
    }
    let mut actions = serde_json::Map::new();
    if !fwd.is_empty() {
        actions.insert("forward_splits".into(), Value::Array(fwd));
    }
    if !rev.is_empty() {
        actions.insert("reverse_splits".into(), Value::Array(rev));
    }
    axum::Json(json!({"corporate_actions": actions, "next_page_token": next})).into_response()
}
