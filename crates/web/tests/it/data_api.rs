//! The data API: import, ranges with gaps, delete, and bad input answered with 4xx naming the field
//! (never a 500, never a half-written import).

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{minute_csv, start, Client};

async fn import(
    c: &Client,
    symbol: &str,
    query: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let r = c
        .with_csrf(
            Method::POST,
            &format!("/api/v1/ranges/{symbol}/import{query}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_shows_its_range_and_gaps_and_a_delete_removes_it() {
    let s = start().await;
    let mut c = Client::new(&s.base);
    c.login().await;
    // 4, 5 and 7 March 2024: the 6th (a Wednesday session) is a gap.
    let (st, b) = import(&c, "spy", "?filename=spy.csv", minute_csv(&[4, 5, 7])).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_eq!(b["symbol"], "SPY");
    assert_eq!(b["bars"], 3 * 390);
    assert_eq!(b["days"], 3);
    assert_eq!(b["first_day"], "2024-03-04");
    assert_eq!(b["last_day"], "2024-03-07");
    assert!(
        b["message"].as_str().unwrap().contains("from spy.csv"),
        "{b}"
    );

    let all: Value = c.get("/api/v1/ranges").await.json().await.unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(all[0]["symbol"], "SPY");
    assert_eq!(all[0]["have_from"], "2024-03-04");
    assert_eq!(all[0]["have_to"], "2024-03-07");
    assert_eq!(all[0]["days_stored"], 3);
    assert_eq!(all[0]["bars"], 1170);
    assert_eq!(all[0]["gaps"], 1);
    let one: Value = c.get("/api/v1/ranges/SPY").await.json().await.unwrap();
    assert_eq!(one["gaps"][0]["day"], "2024-03-06");
    assert_eq!(one["gaps"][0]["attempts"], 0);

    let page = c.get("/data").await.text().await.unwrap();
    assert!(
        page.contains("data-symbol=\"SPY\"")
            && page.contains("2024-03-04")
            && page.contains("2024-03-07")
    );
    let page = c.get("/data/SPY").await.text().await.unwrap();
    assert!(
        page.contains("Gaps (1)") && page.contains("2024-03-06") && page.contains("never fetched")
    );

    let r = c
        .with_csrf(Method::DELETE, "/api/v1/ranges/SPY")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["days_deleted"], 3);
    let r = c
        .with_csrf(Method::DELETE, "/api/v1/ranges/SPY")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        c.get("/api/v1/ranges/SPY").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_naming_the_field_and_writes_nothing() {
    let s = start().await;
    let mut c = Client::new(&s.base);
    c.login().await;
    let good = minute_csv(&[4]);
    let mut broken = minute_csv(&[4, 5]);
    // A bad row on the second day: the first day must not be stored either.
    broken.push_str("2024-03-06T14:30:00Z,100,99,101,100,5\n");
    broken.push_str("2024-03-06T14:31:00Z,abc,1,1,1,5\n");
    let cases: Vec<(&str, &str, String, StatusCode, &str)> = vec![
        (
            "BAD%20SYMBOL!",
            "",
            good.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "symbol",
        ),
        (
            "SPY",
            "?tz=Mars/Olympus",
            good.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "tz",
        ),
        (
            "SPY",
            "?format=xlsx",
            good.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "format",
        ),
        (
            "SPY",
            "?strict=maybe",
            good.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "strict",
        ),
        (
            "SPY",
            "?colour=red",
            good.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "colour",
        ),
        (
            "SPY",
            "",
            String::new(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "file",
        ),
        (
            "SPY",
            "",
            "not,a,bar,file\n1,2,3,4\n".to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "file",
        ),
        (
            "SPY",
            "?filename=b.csv",
            broken,
            StatusCode::UNPROCESSABLE_ENTITY,
            "file",
        ),
        (
            "SPY",
            "?format=parquet",
            good.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "file",
        ),
        (
            "SPY",
            "?format=parquet&tz=UTC",
            good.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "tz",
        ),
    ];
    for (sym, q, body, want, field) in cases {
        let (st, b) = import(&c, sym, q, body).await;
        assert_eq!(st, want, "{sym}{q}: {b}");
        assert_eq!(b["field"], field, "{sym}{q}: {b}");
        assert!(!b["error"].as_str().unwrap().is_empty());
    }
    let all: Value = c.get("/api/v1/ranges").await.json().await.unwrap();
    assert_eq!(all, serde_json::json!([]), "no import wrote anything");
    for (path, field) in [("/api/v1/ranges/BAD%20SYMBOL!", "symbol")] {
        let r = c.get(path).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["field"], field);
    }
    let r = c
        .with_csrf(Method::DELETE, "/api/v1/ranges/a%20b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
