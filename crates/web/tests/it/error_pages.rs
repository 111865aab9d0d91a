//! Errors reach a browser on a page's route as a page (same status, the field and the fix, a link
//! back) and a script on `/api/v1/...` as JSON.

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use crate::support::{start, Client};

fn content_type(r: &Response) -> String {
    r.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn page(r: Response) -> (StatusCode, String, String) {
    let (st, ct) = (r.status(), content_type(&r));
    (st, ct, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_routes_answer_errors_with_a_page_naming_the_field_and_a_link_back() {
    let s = start().await;
    let mut c = Client::new(&s.base);
    c.login().await;

    // A halt form posted without confirm=yes.
    let csrf = c.csrf.clone().unwrap();
    let r = c
        .request(Method::POST, "/live/algo/SPY/halt")
        .form(&[("csrf", csrf.as_str()), ("reason", "test")])
        .send()
        .await
        .unwrap();
    let (st, ct, body) = page(r).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(body.contains("<!doctype html>"), "{body}");
    assert!(body.contains("id=\"error-status\">422"), "{body}");
    assert!(
        body.contains("<strong class=\"field\">confirm</strong>")
            && body.contains("a halt needs confirm=yes"),
        "{body}"
    );
    assert!(
        body.contains("href=\"/live/algo\" id=\"error-back\""),
        "{body}"
    );
    // A logged-in error page keeps the nav.
    assert!(body.contains("href=\"/backtests\""), "{body}");

    // A bad id on a backtest's page.
    let (st, ct, body) = page(c.get("/backtests/no-such-run").await).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(body.contains("no-such-run"), "{body}");
    assert!(
        body.contains("href=\"/backtests\" id=\"error-back\""),
        "{body}"
    );
    assert!(!body.trim_start().starts_with('{'), "{body}");

    // A symbol with nothing stored, and one that is no ticker at all.
    let (st, ct, body) = page(c.get("/data/MSFT").await).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(body.contains("nothing is stored for MSFT"), "{body}");
    assert!(body.contains("href=\"/data\" id=\"error-back\""), "{body}");
    let (st, ct, body) = page(c.get("/data/bad%20sym!").await).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(
        body.contains("<strong class=\"field\">symbol</strong>"),
        "{body}"
    );

    // An unknown page.
    let (st, ct, _) = page(c.get("/no/such/page").await).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(ct.starts_with("text/html"), "{ct}");

    // A form posted without its CSRF token: a page too (403).
    let r = c
        .request(Method::POST, "/live/algo/SPY/halt")
        .form(&[("confirm", "yes")])
        .send()
        .await
        .unwrap();
    let (st, ct, body) = page(r).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(body.contains("CSRF token"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_routes_keep_json_errors() {
    let s = start().await;
    let mut c = Client::new(&s.base);
    c.login().await;

    let r = c
        .with_csrf(Method::POST, "/api/v1/algo/SPY/halt")
        .json(&serde_json::json!({"reason": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(content_type(&r).starts_with("application/json"));
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["field"], "confirm");
    assert!(b["error"].as_str().unwrap().contains("confirm=yes"), "{b}");

    let r = c.get("/api/v1/backtests/no-such-run").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(content_type(&r).starts_with("application/json"));
    let b: Value = r.json().await.unwrap();
    assert!(b["error"].as_str().unwrap().contains("no-such-run"), "{b}");

    let r = c.get("/api/v1/ranges/bad%20sym!").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(content_type(&r).starts_with("application/json"));
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["field"], "symbol");

    let r = c.get("/api/v1/no-such-endpoint").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(content_type(&r).starts_with("application/json"));

    // Without a session: JSON 401 for the API.
    let mut anon = Client::new(&s.base);
    let r = anon.get("/api/v1/ranges").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(content_type(&r).starts_with("application/json"));
}
