//! Fetching bars from the Data page and `POST /api/v1/data/fetch`: a job against the local Alpaca
//! emulator that reaches done and shows its range on the Data page, a cancel while it runs, the
//! fields named when bad, and no keys answered with a 422 naming APCA_API_KEY_ID.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use vectura_data::alpaca::{AlpacaData, RetryPolicy};
use vectura_emulator::{Config, Emulator};

use crate::support::{start, Client, TestServer};

fn client(base: &str) -> AlpacaData {
    AlpacaData::new("PKTEST", "secret-value")
        .with_base_url(base)
        .with_retry(RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_millis(50),
        })
}

async fn with_emulator() -> (Emulator, TestServer) {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let s = start().await;
    s.state.alpaca.set(client(&emu.base_url())).unwrap();
    (emu, s)
}

async fn start_fetch(c: &Client, body: Value) -> (StatusCode, Value) {
    let r = c
        .with_csrf(Method::POST, "/api/v1/data/fetch")
        .json(&body)
        .send()
        .await
        .unwrap();
    let st = r.status();
    (st, r.json().await.unwrap())
}

async fn wait_end(c: &mut Client, id: &str) -> Value {
    for _ in 0..600 {
        let j: Value = c
            .get(&format!("/api/v1/jobs/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if matches!(j["status"].as_str(), Some("done" | "failed" | "cancelled")) {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_from_the_form_runs_as_a_job_and_its_range_appears_on_the_data_page() {
    let (_emu, s) = with_emulator().await;
    let mut c = Client::new(&s.base);
    c.login().await;
    let page = c.get("/data").await.text().await.unwrap();
    assert!(page.contains("id=\"fetch-form\""), "{page}");
    assert!(
        !page.contains("id=\"fetch-keys\""),
        "a client is set: {page}"
    );

    // The form: to the job's page.
    let csrf = c.csrf.clone().unwrap();
    let r = c
        .request(Method::POST, "/data/fetch")
        .form(&[
            ("csrf", csrf.as_str()),
            ("symbol", "aaa"),
            ("from", "2024-03-04"),
            ("to", "2024-03-08"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    let id = to
        .strip_prefix("/jobs/")
        .expect("to the job's page")
        .to_string();
    let j = wait_end(&mut c, &id).await;
    assert_eq!(j["status"], "done", "{j}");
    assert_eq!(j["kind"], "fetch");
    assert_eq!(j["result"]["link"], "/data/AAA");
    assert_eq!(j["result"]["summary"]["days_stored"], 5, "{j}");
    let stages: Vec<&str> = j["progress"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["stage"].as_str())
        .collect();
    assert!(stages.contains(&"working_on_chunk"), "{stages:?}");
    assert_eq!(stages.last(), Some(&"completed"));

    let job_page = c.get(&to).await.text().await.unwrap();
    assert!(
        job_page.contains("Fetch AAA 2024-03-04 to 2024-03-08"),
        "{job_page}"
    );
    assert!(job_page.contains("href=\"/data/AAA\""), "{job_page}");

    let page = c.get("/data").await.text().await.unwrap();
    assert!(page.contains("data-symbol=\"AAA\""), "{page}");
    assert!(
        page.contains("<td class=\"from\">2024-03-04</td>")
            && page.contains("<td class=\"to\">2024-03-08</td>"),
        "{page}"
    );
    let r: Value = c.get("/api/v1/ranges/AAA").await.json().await.unwrap();
    assert_eq!(r["range"]["days_stored"], 5, "{r}");
    assert_eq!(r["range"]["gaps"], 0, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_fetch_is_cancelled_and_keeps_the_whole_days_it_stored() {
    let (_emu, s) = with_emulator().await;
    let mut c = Client::new(&s.base);
    c.login().await;
    // Paused jobs hold in the middle of their work: the cancel comes while it runs.
    s.state.jobs.pause();
    let (st, b) = start_fetch(
        &c,
        json!({"symbol": "BBB", "from": "2024-01-02", "to": "2024-03-28"}),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(b["link"], format!("/jobs/{id}"));
    let mut running = false;
    for _ in 0..400 {
        let j: Value = c
            .get(&format!("/api/v1/jobs/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if j["status"] == "running" && s.state.jobs.get(&id).is_some() {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(running, "the job never ran");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = c
        .with_csrf(Method::POST, &format!("/api/v1/jobs/{id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    s.state.jobs.resume();
    let j = wait_end(&mut c, &id).await;
    assert_eq!(j["status"], "cancelled", "{j}");
    // Whatever was stored is whole days, fewer than asked for.
    let ranges: Value = c.get("/api/v1/ranges").await.json().await.unwrap();
    let stored = ranges
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["symbol"] == "BBB")
        .map_or(0, |r| r["days_stored"].as_u64().unwrap());
    assert!(stored < 60, "{ranges}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_fetch_input_is_named_by_field_and_nothing_starts() {
    let (_emu, s) = with_emulator().await;
    let mut c = Client::new(&s.base);
    c.login().await;
    for (body, field) in [
        (json!({"symbol": "", "from": "2024-03-04"}), "symbol"),
        (
            json!({"symbol": "bad sym!", "from": "2024-03-04"}),
            "symbol",
        ),
        (json!({"symbol": "SPY"}), "from"),
        (json!({"symbol": "SPY", "from": "04/03/2024"}), "from"),
        (
            json!({"symbol": "SPY", "from": "2024-03-04", "to": "2024-13-01"}),
            "to",
        ),
        (
            json!({"symbol": "SPY", "from": "2024-03-08", "to": "2024-03-04"}),
            "from",
        ),
        (json!({"symbol": "SPY", "from": "2999-01-01"}), "from"),
        (
            json!({"symbol": "SPY", "from": "1990-01-01", "to": "2024-01-01"}),
            "from",
        ),
        (json!({"symbol": 5, "from": "2024-03-04"}), "symbol"),
    ] {
        let (st, b) = start_fetch(&c, body.clone()).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        assert_eq!(b["field"], field, "{body}: {b}");
    }
    // The form shows the message next to itself, with what was typed.
    let csrf = c.csrf.clone().unwrap();
    let r = c
        .request(Method::POST, "/data/fetch")
        .form(&[("csrf", csrf.as_str()), ("symbol", "SPY"), ("from", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("id=\"fetch-error\" data-for=\"from\"") && page.contains("is not a date"),
        "{page}"
    );
    assert!(
        page.contains(
            "id=\"fetch-symbol\" required maxlength=\"20\" autocomplete=\"off\" value=\"SPY\""
        ),
        "{page}"
    );
    // Nothing was started.
    assert!(s.store.jobs("fetch", 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_alpaca_keys_a_fetch_says_what_to_set() {
    if std::env::var_os("APCA_API_KEY_ID").is_some() {
        eprintln!("APCA_API_KEY_ID is set in this environment: the no-keys case cannot be shown");
        return;
    }
    let s = start().await;
    let mut c = Client::new(&s.base);
    c.login().await;
    let page = c.get("/data").await.text().await.unwrap();
    assert!(
        page.contains("id=\"fetch-keys\"") && page.contains("APCA_API_KEY_ID"),
        "{page}"
    );
    let (st, b) = start_fetch(&c, json!({"symbol": "SPY", "from": "2024-03-04"})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["field"], "APCA_API_KEY_ID", "{b}");
    assert!(
        b["error"].as_str().unwrap().contains("APCA_API_SECRET_KEY"),
        "{b}"
    );
    assert!(s.store.jobs("fetch", 10).await.unwrap().is_empty());
}
