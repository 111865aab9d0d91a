//! Validates the running emulator's replies against Alpaca's OpenAPI document
//! (`data/spec/alpaca/market-data-api.json`, part of the repository), with a small schema checker:
//! `$ref`, `type`, `nullable`, `required`, `properties`, `additionalProperties`, `items`, `enum`,
//! `allOf`/`anyOf`/`oneOf` and the `date-time` format; and the replies' content against what the
//! document's parameters say (inclusive start and end, a limit on all symbols together, paging).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use vectura_emulator::{Config, Emulator};

fn spec() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/spec/alpaca/market-data-api.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} is part of the repository: {e}", path.display()));
    serde_json::from_str(&text).expect("the OpenAPI document is JSON")
}

/// Follows `$ref`s (local JSON pointers) until a schema without one.
fn resolve<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let ptr = r.strip_prefix('#').expect("local $ref");
                schema = doc
                    .pointer(ptr)
                    .unwrap_or_else(|| panic!("unresolved $ref {r}"));
            }
            None => return schema,
        }
    }
    panic!("$ref cycle");
}

/// Checks `value` against `schema`, pushing one message per violation.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(doc, s, value, at, errors);
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            let ok = alts.iter().any(|s| {
                let mut e = Vec::new();
                check(doc, s, value, at, &mut e);
                e.is_empty()
            });
            if !ok {
                errors.push(format!("{at}: matches none of {key}"));
            }
        }
    }
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) && schema.get("type").is_some() {
            errors.push(format!("{at}: null but not nullable"));
        }
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            errors.push(format!("{at}: {value} not in {options:?}"));
        }
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let Some(obj) = value.as_object() else {
                errors.push(format!("{at}: expected an object, got {value}"));
                return;
            };
            for r in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = r.as_str().unwrap_or_default();
                if !obj.contains_key(name) {
                    errors.push(format!("{at}: required field {name} is missing"));
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, v) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => check(doc, s, v, &format!("{at}.{k}"), errors),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            errors.push(format!("{at}: unexpected field {k}"))
                        }
                        Some(s @ Value::Object(_)) => {
                            check(doc, s, v, &format!("{at}.{k}"), errors)
                        }
                        _ => {}
                    },
                }
            }
        }
        Some("array") => {
            let Some(items) = value.as_array() else {
                errors.push(format!("{at}: expected an array, got {value}"));
                return;
            };
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    check(doc, s, v, &format!("{at}[{i}]"), errors);
                }
            }
        }
        Some("string") => match value.as_str() {
            None => errors.push(format!("{at}: expected a string, got {value}")),
            Some(s) => {
                if schema.get("format").and_then(Value::as_str) == Some("date-time")
                    && chrono::DateTime::parse_from_rfc3339(s).is_err()
                {
                    errors.push(format!("{at}: {s:?} is not an RFC 3339 date-time"));
                }
            }
        },
        Some("number") if !value.is_number() => {
            errors.push(format!("{at}: expected a number, got {value}"));
        }
        Some("integer") if !(value.is_i64() || value.is_u64()) => {
            errors.push(format!("{at}: expected an integer, got {value}"));
        }
        Some("boolean") if !value.is_boolean() => {
            errors.push(format!("{at}: expected a boolean, got {value}"));
        }
        _ => {}
    }
}

/// The 200 response schema of `GET path`.
fn response_schema<'a>(doc: &'a Value, path: &str) -> &'a Value {
    let op = &doc["paths"][path]["get"]["responses"]["200"];
    let op = resolve(doc, op);
    &op["content"]["application/json"]["schema"]
}

fn errors_of(doc: &Value, path: &str, body: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(doc, response_schema(doc, path), body, "$", &mut errors);
    errors
}

const SINGLE: &str = "/v2/stocks/{symbol}/bars";
const MULTI: &str = "/v2/stocks/bars";

#[test]
fn the_checker_accepts_the_spec_examples_and_rejects_broken_bars() {
    let doc = spec();
    for path in [SINGLE, MULTI] {
        let examples = &doc["paths"][path]["get"]["responses"]["200"]["content"]
            ["application/json"]["examples"];
        let examples = examples.as_object().expect("the spec has examples");
        assert!(!examples.is_empty());
        for (name, ex) in examples {
            let errors = errors_of(&doc, path, &ex["value"]);
            assert!(errors.is_empty(), "{path} example {name}: {errors:?}");
        }
    }
    let bar = serde_json::json!({"t":"2024-01-02T14:30:00Z","o":1.0,"h":1.0,"l":1.0,"c":1.0,"v":1,"n":1,"vw":1.0});
    let good = serde_json::json!({"bars":[bar],"symbol":"X","next_page_token":null});
    assert!(errors_of(&doc, SINGLE, &good).is_empty());
    let mut no_vw = good.clone();
    no_vw["bars"][0].as_object_mut().unwrap().remove("vw");
    assert_eq!(
        errors_of(&doc, SINGLE, &no_vw),
        vec!["$.bars[0]: required field vw is missing"]
    );
    let mut bad_types = good.clone();
    bad_types["bars"][0]["o"] = "1.0".into();
    bad_types["bars"][0]["v"] = 1.5.into();
    bad_types["bars"][0]["t"] = "yesterday".into();
    assert_eq!(errors_of(&doc, SINGLE, &bad_types).len(), 3);
    let no_token = serde_json::json!({"bars":[],"symbol":"X"});
    assert_eq!(errors_of(&doc, SINGLE, &no_token).len(), 1);
    let multi_as_list = serde_json::json!({"bars":[bar],"next_page_token":null});
    assert!(!errors_of(&doc, MULTI, &multi_as_list).is_empty());
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn get(&self, path_and_query: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        let resp = self
            .http
            .get(format!("{}{path_and_query}", self.base))
            .header("APCA-API-KEY-ID", "PKTEST")
            .header("APCA-API-SECRET-KEY", "secret")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }
}

async fn start(config: Config) -> (Emulator, Client) {
    let emu = Emulator::start(config).await.unwrap();
    let client = Client {
        http: reqwest::Client::new(),
        base: emu.base_url(),
    };
    (emu, client)
}

fn frozen() -> Config {
    Config {
        // 2024-07-01 12:00Z: every day before it is complete.
        now: Some(1_719_835_200),
        extended_hours: true,
        splits: [(
            "AAPL".to_string(),
            vec![(chrono::NaiveDate::from_ymd_opt(2020, 8, 31).unwrap(), 4.0)],
        )]
        .into(),
        ..Config::default()
    }
}

#[tokio::test]
async fn single_symbol_replies_validate_against_the_spec() {
    let doc = spec();
    let (_emu, c) = start(frozen()).await;
    let queries = [
        "/v2/stocks/SPY/bars?timeframe=1Min&start=2024-01-02T14:30:00Z&end=2024-01-02T21:00:00Z",
        "/v2/stocks/SPY/bars?timeframe=1Min&start=2024-01-02&limit=50&feed=iex",
        "/v2/stocks/SPY/bars?timeframe=1Min&start=2024-01-02T09:30:00-05:00&end=2024-01-02T10:00:00.5-05:00&sort=desc",
        "/v2/stocks/AAPL/bars?timeframe=1Day&start=2020-08-01&end=2020-09-30&adjustment=split",
        "/v2/stocks/AAPL/bars?timeframe=1Hour&start=2020-08-28&end=2020-09-01&adjustment=raw&feed=sip",
        "/v2/stocks/AAPL/bars?timeframe=15Min&start=2024-03-01&end=2024-03-02&limit=10000",
        // A holiday, a weekend, and before the first day: no bars.
        "/v2/stocks/SPY/bars?timeframe=1Min&start=2024-12-25&end=2024-12-26",
        "/v2/stocks/SPY/bars?timeframe=1Min&start=2024-01-06&end=2024-01-08",
        "/v2/stocks/SPY/bars?timeframe=1Day&start=2010-01-01&end=2015-12-31",
    ];
    for q in queries {
        let (status, headers, body) = c.get(q).await;
        assert_eq!(status, 200, "{q}: {body}");
        let errors = errors_of(&doc, SINGLE, &body);
        assert!(errors.is_empty(), "{q}: {errors:?}");
        for h in [
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ] {
            let v = headers.get(h).unwrap_or_else(|| panic!("{q}: no {h}"));
            v.to_str()
                .unwrap()
                .parse::<i64>()
                .expect("an integer header");
        }
    }
    // Paging through a whole extended day with a page token keeps validating.
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = "/v2/stocks/SPY/bars?timeframe=1Min&start=2024-01-02T09:00:00Z&end=2024-01-03T01:00:00Z&limit=100".to_string();
        if let Some(t) = &token {
            q.push_str(&format!("&page_token={}", urlencode(t)));
        }
        let (status, _, body) = c.get(&q).await;
        assert_eq!(status, 200);
        assert!(errors_of(&doc, SINGLE, &body).is_empty());
        pages += 1;
        match body["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert!(pages > 4);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Unix seconds of an RFC 3339 instant.
fn secs(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("{t:?}: {e}"))
        .timestamp()
}

/// Every page of a bars request, each checked against the spec's schema for `path`.
async fn pages(c: &Client, doc: &Value, path: &str, q: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = q.to_string();
        if let Some(t) = &token {
            url.push_str(&format!("&page_token={}", urlencode(t)));
        }
        let (status, _, body) = c.get(&url).await;
        assert_eq!(status, 200, "{url}: {body}");
        let errors = errors_of(doc, path, &body);
        assert!(errors.is_empty(), "{url}: {errors:?}");
        token = body["next_page_token"].as_str().map(str::to_string);
        out.push(body);
        assert!(out.len() < 1_000, "{q}: the pages never end");
        if token.is_none() {
            return out;
        }
    }
}

/// One multi-symbol request of the test and what its parameters say of the reply.
struct Multi {
    symbols: &'static [&'static str],
    /// The other parameters.
    params: &'static str,
    /// The inclusive `start` and `end`, Unix seconds.
    span: (i64, i64),
    /// The `limit` (the spec's default is 1000).
    limit: usize,
    /// Every page (true) or only the first.
    every_page: bool,
    /// The symbols that have bars in the span.
    with_bars: &'static [&'static str],
}

#[tokio::test]
async fn multi_symbol_replies_validate_against_the_spec() {
    let doc = spec();
    let (emu, c) = start(frozen()).await;
    let day = |t: &str| secs(t);
    let cases = [
        Multi {
            symbols: &["AAPL", "SPY"],
            params: "timeframe=1Min&start=2024-01-02&end=2024-01-03&feed=sip",
            span: (day("2024-01-02T00:00:00Z"), day("2024-01-03T00:00:00Z")),
            limit: 1000,
            every_page: true,
            with_bars: &["AAPL", "SPY"],
        },
        Multi {
            symbols: &["SPY", "AAPL", "MSFT"],
            params: "timeframe=1Min&start=2024-01-02&limit=500",
            span: (day("2024-01-02T00:00:00Z"), 1_719_835_200),
            limit: 500,
            every_page: false,
            with_bars: &["AAPL", "MSFT", "SPY"],
        },
        Multi {
            symbols: &["AAPL"],
            params: "timeframe=1Day&start=2020-08-01&end=2020-09-30&adjustment=split&feed=iex",
            span: (day("2020-08-01T00:00:00Z"), day("2020-09-30T00:00:00Z")),
            limit: 1000,
            every_page: true,
            with_bars: &["AAPL"],
        },
        Multi {
            symbols: &["AAPL", "SPY"],
            params: "timeframe=1Min&start=2024-12-25&end=2024-12-26",
            span: (day("2024-12-25T00:00:00Z"), day("2024-12-26T00:00:00Z")),
            limit: 1000,
            every_page: true,
            with_bars: &[],
        },
    ];
    for m in &cases {
        let list = m.symbols.join(",");
        let q = format!("/v2/stocks/bars?symbols={list}&{}", m.params);
        let got = if m.every_page {
            pages(&c, &doc, MULTI, &q).await
        } else {
            let (status, _, body) = c.get(&q).await;
            assert_eq!(status, 200, "{q}: {body}");
            let errors = errors_of(&doc, MULTI, &body);
            assert!(errors.is_empty(), "{q}: {errors:?}");
            assert!(
                body["next_page_token"].is_string(),
                "{q}: months of minutes need more pages"
            );
            vec![body]
        };
        // Per symbol, the bars of every page in order.
        let mut merged: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (i, page) in got.iter().enumerate() {
            let bars = page["bars"]
                .as_object()
                .unwrap_or_else(|| panic!("{q}: bars is an object"));
            let total: usize = bars.values().map(|v| v.as_array().unwrap().len()).sum();
            assert!(
                total <= m.limit,
                "{q} page {i}: {total} bars, limit {}",
                m.limit
            );
            for (sym, list) in bars {
                assert!(
                    m.symbols.contains(&sym.as_str()),
                    "{q}: bars of {sym}, not asked for"
                );
                let list = list.as_array().unwrap();
                assert!(!list.is_empty(), "{q}: {sym} is listed without bars");
                merged
                    .entry(sym.clone())
                    .or_default()
                    .extend(list.iter().cloned());
            }
            // A page that is not the last is full: the limit counts all symbols together.
            if page["next_page_token"].is_string() {
                assert_eq!(
                    total, m.limit,
                    "{q} page {i} is followed by another but not full"
                );
            }
        }
        let keys: Vec<&str> = merged.keys().map(String::as_str).collect();
        if m.every_page {
            assert_eq!(keys, m.with_bars, "{q}: symbols with bars");
        } else {
            // One full page: some of the symbols with bars, not necessarily all.
            assert!(
                !keys.is_empty() && keys.iter().all(|k| m.with_bars.contains(k)),
                "{q}: {keys:?}"
            );
        }
        for (sym, list) in &merged {
            let ts: Vec<i64> = list
                .iter()
                .map(|b| secs(b["t"].as_str().unwrap()))
                .collect();
            assert!(
                ts.windows(2).all(|w| w[0] < w[1]),
                "{q}: {sym} bars out of order"
            );
            assert!(
                ts.iter().all(|t| (m.span.0..=m.span.1).contains(t)),
                "{q}: {sym} bars outside start..=end"
            );
            // The same bars as the single-symbol endpoint gives (its first page only when only
            // the first multi page was read: a prefix).
            let single_q = format!("/v2/stocks/{sym}/bars?{}", m.params);
            let single: Vec<Value> = pages_or_first(&c, &doc, &single_q, m.every_page)
                .await
                .iter()
                .flat_map(|p| p["bars"].as_array().cloned().unwrap_or_default())
                .collect();
            if m.every_page {
                assert_eq!(list, &single, "{q}: {sym} differs from {single_q}");
            } else {
                assert!(
                    single.len() >= list.len() && single[..list.len()] == list[..],
                    "{q}: {sym} is not the start of {single_q}"
                );
            }
        }
    }
    // Real content: the SIP minute bars of the first case are the emulator's bars, field for field.
    let (from, to) = cases[0].span;
    for sym in ["AAPL", "SPY"] {
        let want = emu.handle().minute_bars(sym, from, to + 1);
        assert!(want.len() > 390, "{sym}: a session with extended hours");
        let q = format!("/v2/stocks/bars?symbols={sym}&{}", cases[0].params);
        let got: Vec<Value> = pages(&c, &doc, MULTI, &q)
            .await
            .iter()
            .flat_map(|p| p["bars"][sym].as_array().cloned().unwrap_or_default())
            .collect();
        assert_eq!(got.len(), want.len(), "{sym}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(secs(g["t"].as_str().unwrap()), w.t);
            assert_eq!(
                (
                    g["o"].as_f64(),
                    g["h"].as_f64(),
                    g["l"].as_f64(),
                    g["c"].as_f64()
                ),
                (Some(w.o), Some(w.h), Some(w.l), Some(w.c)),
                "{sym} {}",
                w.t
            );
            assert_eq!(
                (g["v"].as_u64(), g["n"].as_u64(), g["vw"].as_f64()),
                (Some(w.v), Some(w.n), Some(w.vw))
            );
        }
    }
}

async fn pages_or_first(c: &Client, doc: &Value, q: &str, every: bool) -> Vec<Value> {
    if every {
        return pages(c, doc, SINGLE, q).await;
    }
    let (status, _, body) = c.get(q).await;
    assert_eq!(status, 200, "{q}: {body}");
    assert!(errors_of(doc, SINGLE, &body).is_empty());
    vec![body]
}

#[tokio::test]
async fn error_replies_carry_a_message() {
    let (emu, c) = start(frozen()).await;
    let bare = reqwest::get(format!(
        "{}/v2/stocks/SPY/bars?timeframe=1Min",
        emu.base_url()
    ))
    .await
    .unwrap();
    assert_eq!(bare.status().as_u16(), 401);
    let body: Value = bare.json().await.unwrap();
    assert!(body["message"].is_string());
    for q in [
        "/v2/stocks/SPY/bars?timeframe=7Week",
        "/v2/stocks/SPY/bars?timeframe=1Min&limit=10001",
        "/v2/stocks/SPY/bars?timeframe=1Min&start=yesterday",
        "/v2/stocks/SPY/bars?timeframe=1Min&start=2024-01-03&end=2024-01-02",
        "/v2/stocks/SPY/bars?timeframe=1Min&page_token=%%%",
        "/v2/stocks/SPY/bars?timeframe=1Min&feed=nasdaq",
        "/v2/stocks/bars?timeframe=1Min",
    ] {
        let (status, _, body) = c.get(q).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body["message"].is_string(), "{q}: {body}");
    }
}

#[tokio::test]
async fn corporate_actions_match_the_spec_and_page() {
    let doc = spec();
    let (emu, c) = start(frozen()).await;
    let d = |y, m, day| chrono::NaiveDate::from_ymd_opt(y, m, day).unwrap();
    emu.handle().set_splits(
        "AAA",
        vec![
            (d(2020, 8, 31), 4.0),
            (d(2019, 3, 1), 0.1),
            (d(2022, 1, 3), 2.0),
        ],
    );
    let path = "/v1/corporate-actions";
    let (status, _, body) = c
        .get("/v1/corporate-actions?symbols=AAA&types=forward_split,reverse_split&start=2000-01-01&end=2026-01-01&limit=2")
        .await;
    assert_eq!(status, 200, "{body}");
    let errors = errors_of(&doc, path, &body);
    assert!(errors.is_empty(), "{errors:?}: {body}");
    assert_eq!(
        body["corporate_actions"]["reverse_splits"][0]["old_rate"],
        10.0
    );
    assert_eq!(
        body["corporate_actions"]["forward_splits"][0]["ex_date"],
        "2020-08-31"
    );
    let token = body["next_page_token"]
        .as_str()
        .expect("a second page")
        .to_string();
    let (_, _, page2) = c
        .get(&format!("/v1/corporate-actions?symbols=AAA&types=forward_split,reverse_split&start=2000-01-01&end=2026-01-01&limit=2&page_token={token}"))
        .await;
    assert!(errors_of(&doc, path, &page2).is_empty());
    assert_eq!(
        page2["corporate_actions"]["forward_splits"][0]["ex_date"],
        "2022-01-03"
    );
    assert!(page2["next_page_token"].is_null());
}
