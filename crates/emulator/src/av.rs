//! Alpha Vantage's `GET /query?function=SPLITS&symbol=X&apikey=K`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::{AvReply, Shared};

/// Alpha Vantage's reply once the free plan's daily limit is used up.
pub const INFORMATION: &str = "We have detected your API key as {KEY} and our standard API rate limit is 25 requests per day. Please subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to instantly remove all daily rate limits.";
/// Alpha Vantage's older per-minute rate-limit reply.
pub const NOTE: &str = "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would like to target a higher API call frequency.";
const BAD_KEY: &str = "the parameter apikey is invalid or missing. Please claim your free API key on (https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds.";
const BAD_CALL: &str = "Invalid API call. Please retry or visit the documentation (https://www.alphavantage.co/documentation/) for SPLITS.";

fn ok_json(v: serde_json::Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

fn body(status: u16, content_type: &str, text: String) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (
        code,
        [(header::CONTENT_TYPE, content_type.to_string())],
        text,
    )
        .into_response()
}

fn fault_reply(reply: &AvReply, key: &str) -> Option<Response> {
    Some(match reply {
        AvReply::Normal => return None,
        AvReply::Information => ok_json(json!({ "Information": INFORMATION.replace("{KEY}", key) })),
        AvReply::Note => ok_json(json!({ "Note": NOTE })),
        AvReply::ErrorMessage => ok_json(json!({ "Error Message": BAD_CALL })),
        AvReply::Html => body(
            200,
            "text/html; charset=utf-8",
            "<!DOCTYPE html><html><head><title>Alpha Vantage</title></head><body><h1>Service temporarily unavailable</h1></body></html>".into(),
        ),
        AvReply::Empty => body(200, "application/json", String::new()),
        AvReply::BadJson => body(
            200,
            "application/json",
            "{\"symbol\": \"X\", \"data\": [{\"effective_date\": \"2020-08-".into(),
        ),
        AvReply::Raw {
            status,
            content_type,
            body: text,
        } => body(*status, content_type, text.clone()),
    })
}

pub(crate) async fn query(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = shared.lock();
    let Some(key) = q
        .get("apikey")
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
    else {
        return ok_json(json!({ "Error Message": BAD_KEY }));
    };
    if let Some(keys) = &inner.av_keys {
        if !keys.contains(&key) {
            return ok_json(json!({ "Error Message": BAD_KEY }));
        }
    }
    let today = vectura_core::time::date_utc(inner.now());
    let count = inner.av_counts.entry((key.clone(), today)).or_insert(0);
    *count += 1;
    let count = *count;
    if inner.faults.av_daily_limit.is_some_and(|max| count > max) {
        return ok_json(json!({ "Information": INFORMATION.replace("{KEY}", &key) }));
    }
    if let Some(r) = fault_reply(&inner.faults.av_reply, &key) {
        return r;
    }
    match q.get("function").map(String::as_str) {
        Some("SPLITS") => {}
        Some(other) => {
            return ok_json(json!({
                "Error Message": format!("This API function ({other}) does not exist.")
            }))
        }
        None => return ok_json(json!({ "Error Message": BAD_CALL })),
    }
    let Some(symbol) = q
        .get("symbol")
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
    else {
        return ok_json(json!({ "Error Message": BAD_CALL }));
    };
    let mut splits = inner.splits.get(&symbol).cloned().unwrap_or_default();
    splits.sort_by_key(|s| std::cmp::Reverse(s.0));
    let data: Vec<serde_json::Value> = splits
        .iter()
        .map(|(d, r)| {
            json!({
                "effective_date": d.format("%Y-%m-%d").to_string(),
                "split_factor": format!("{r:.4}"),
            })
        })
        .collect();
    ok_json(json!({ "symbol": symbol, "data": data }))
}
