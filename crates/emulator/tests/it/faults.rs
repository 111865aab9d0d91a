//! The emulator's data and faults, seen through plain HTTP requests.

use std::time::Duration;

use chrono::NaiveDate;
use serde_json::Value;
use vectura_emulator::{AvReply, Config, Emulator, RetryAfter};

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

async fn start() -> (Emulator, reqwest::Client) {
    let emu = Emulator::start(Config {
        now: Some(1_719_835_200), // 2024-07-01 12:00Z
        ..Config::default()
    })
    .await
    .unwrap();
    (emu, reqwest::Client::new())
}

async fn get(c: &reqwest::Client, url: String) -> (u16, reqwest::header::HeaderMap, String) {
    let r = c
        .get(url)
        .header("APCA-API-KEY-ID", "PKTEST")
        .header("APCA-API-SECRET-KEY", "secret")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

/// Pages through a bars request and returns every bar's `t`, per symbol, plus the page count.
async fn all_pages(c: &reqwest::Client, base: &str, q: &str) -> (Vec<(String, String)>, usize) {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!("{base}{q}");
        if let Some(t) = &token {
            url.push_str("&page_token=");
            url.push_str(
                &t.replace('=', "%3D")
                    .replace('+', "%2B")
                    .replace('/', "%2F"),
            );
        }
        let (status, _, body) = get(c, url).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        pages += 1;
        match &v["bars"] {
            Value::Array(bars) => {
                let sym = v["symbol"].as_str().unwrap().to_string();
                out.extend(
                    bars.iter()
                        .map(|b| (sym.clone(), b["t"].as_str().unwrap().to_string())),
                );
            }
            Value::Object(map) => {
                for (sym, bars) in map {
                    out.extend(
                        bars.as_array()
                            .unwrap()
                            .iter()
                            .map(|b| (sym.clone(), b["t"].as_str().unwrap().to_string())),
                    );
                }
            }
            other => panic!("bars is {other}"),
        }
        match v["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => return (out, pages),
        }
    }
}

#[tokio::test]
async fn pages_cover_every_session_minute_once_in_both_orders() {
    let (emu, c) = start().await;
    let base = emu.base_url();
    // 2024-11-29 closes at 13:00 ET (210 minutes); 2024-11-28 is Thanksgiving.
    let q = "/v2/stocks/SPY/bars?timeframe=1Min&start=2024-06-27T00:00:00Z&end=2024-06-28T23:59:59Z&limit=37";
    let (asc, pages) = all_pages(&c, &base, q).await;
    assert_eq!(asc.len(), 780);
    assert_eq!(pages, 780usize.div_ceil(37));
    let (desc, _) = all_pages(&c, &base, &format!("{q}&sort=desc")).await;
    let mut rev = desc.clone();
    rev.reverse();
    assert_eq!(rev, asc);
    let handle = emu.handle();
    let from = 1_719_446_400; // 2024-06-27T00:00Z
    assert_eq!(
        handle.minute_bars("SPY", from, from + 2 * 86_400).len(),
        780
    );

    let multi = "/v2/stocks/bars?symbols=SPY,AAPL,MSFT&timeframe=1Min&start=2024-06-27&end=2024-06-28&limit=1000";
    let (bars, pages) = all_pages(&c, &base, multi).await;
    assert_eq!(bars.len(), 3 * 390);
    assert_eq!(pages, 2);
    let mut syms: Vec<&str> = bars.iter().map(|(s, _)| s.as_str()).collect();
    syms.dedup();
    assert_eq!(syms, ["AAPL", "MSFT", "SPY"]);
    // Exactly full pages: no empty page at the end.
    let exact =
        "/v2/stocks/bars?symbols=SPY,AAPL&timeframe=1Min&start=2024-06-27&end=2024-06-28&limit=390";
    let (bars, pages) = all_pages(&c, &base, exact).await;
    assert_eq!((bars.len(), pages), (780, 2));

    let early = "/v2/stocks/SPY/bars?timeframe=1Min&start=2023-11-23&end=2023-11-25";
    let (bars, _) = all_pages(&c, &base, early).await;
    assert_eq!(bars.len(), 210);
    assert_eq!(bars[0].1, "2023-11-24T14:30:00Z");
    assert_eq!(bars[209].1, "2023-11-24T17:59:00Z");
}

#[tokio::test]
async fn injected_429s_5xx_and_failing_days() {
    let (emu, c) = start().await;
    let h = emu.handle();
    let url = |d: &str| {
        format!(
            "{}/v2/stocks/SPY/bars?timeframe=1Min&start={d}T14:30:00Z&end={d}T14:40:00Z",
            emu.base_url()
        )
    };
    h.update_faults(|f| {
        f.every_nth_429 = Some(2);
        f.retry_after = RetryAfter::EveryOther(3);
    });
    let mut seen = Vec::new();
    for _ in 0..6 {
        let (status, headers, _) = get(&c, url("2024-06-27")).await;
        seen.push((
            status,
            headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string()),
        ));
    }
    let three = Some("3".to_string());
    assert_eq!(
        seen,
        [
            (200, None),
            (429, three.clone()),
            (200, None),
            (429, None),
            (200, None),
            (429, three)
        ]
    );

    h.clear_faults();
    h.update_faults(|f| f.fail_requests = [7, 8, 9].into());
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            let (status, headers, body) = get(&c, url("2024-06-27")).await;
            if status == 500 {
                assert!(body.contains("message"));
            }
            if status == 502 {
                assert!(headers["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html"));
            }
            v.push(status);
        }
        v
    };
    assert_eq!(statuses, [500, 502, 503, 200]);

    h.clear_faults();
    h.fail_day("SPY", day(2024, 6, 27), 2);
    h.fail_day_with("SPY", day(2024, 6, 28), 1, 503);
    let mut got = Vec::new();
    for d in [
        "2024-06-26",
        "2024-06-27",
        "2024-06-27",
        "2024-06-27",
        "2024-06-28",
        "2024-06-28",
    ] {
        got.push(get(&c, url(d)).await.0);
    }
    assert_eq!(got, [200, 500, 500, 200, 503, 200]);
    assert!(h.faults().failing_days.iter().all(|f| f.times == 0));

    h.clear_faults();
    h.update_faults(|f| f.error_rate = 1.0);
    assert_ne!(get(&c, url("2024-06-27")).await.0, 200);
    h.update_faults(|f| f.error_rate = 0.0);
    assert_eq!(get(&c, url("2024-06-27")).await.0, 200);
}

#[tokio::test]
async fn rate_limit_delay_and_the_request_log() {
    let (emu, c) = start().await;
    let h = emu.handle();
    let url = format!(
        "{}/v2/stocks/SPY/bars?timeframe=1Day&start=2024-06-03&end=2024-06-28",
        emu.base_url()
    );
    h.update_faults(|f| f.rate_limit = Some(5));
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let (status, headers, _) = get(&c, url.clone()).await;
        if status == 429 {
            assert_eq!(headers["x-ratelimit-remaining"], "0");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    assert_eq!(h.request_count(), 7);
    assert_eq!(h.requests_for_key("PKTEST").len(), 7);
    assert_eq!(
        h.max_requests_in_window(Some("PKTEST"), Duration::from_secs(60)),
        7
    );
    assert_eq!(
        h.max_requests_in_window(Some("other"), Duration::from_secs(60)),
        0
    );
    assert!(h.requests().iter().all(|r| r.path == "/v2/stocks/SPY/bars"));

    h.clear_faults();
    h.clear_requests();
    // Only the next request is held back; the one after it is answered at once. Checked by order,
    // not by a stopwatch: the held request is still unanswered when the next one has its reply.
    h.update_faults(|f| {
        f.delay = Duration::from_secs(600);
        f.delay_requests = Some(1);
    });
    let held = tokio::spawn({
        let (c, url) = (c.clone(), url.clone());
        async move { get(&c, url).await.0 }
    });
    while h.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        h.faults().delay_requests,
        Some(0),
        "the one delay is used up"
    );
    let (status, _, _) = get(&c, url.clone()).await;
    assert_eq!(status, 200);
    let log = h.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].delayed, log[0].status),
        (Duration::from_secs(600), 0),
        "the first request is held, unanswered"
    );
    assert_eq!((log[1].delayed, log[1].status), (Duration::ZERO, 200));
    assert!(!held.is_finished());
    held.abort();

    // A delay of every request applies to each of them.
    h.clear_requests();
    h.update_faults(|f| {
        f.delay = Duration::from_millis(1);
        f.delay_requests = None;
    });
    for _ in 0..3 {
        assert_eq!(get(&c, url.clone()).await.0, 200);
    }
    assert!(h
        .requests()
        .iter()
        .all(|r| r.delayed == Duration::from_millis(1) && r.status == 200));
}

#[tokio::test]
async fn credentials_are_checked_when_keys_are_configured() {
    let emu = Emulator::start(Config {
        keys: Some(vec![("PKGOOD".into(), "right".into())]),
        ..Config::default()
    })
    .await
    .unwrap();
    let c = reqwest::Client::new();
    let url = format!(
        "{}/v2/stocks/SPY/bars?timeframe=1Day&start=2024-06-03",
        emu.base_url()
    );
    let wrong = c
        .get(&url)
        .header("APCA-API-KEY-ID", "PKGOOD")
        .header("APCA-API-SECRET-KEY", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 403);
    assert_eq!(wrong.text().await.unwrap(), r#"{"message":"forbidden."}"#);
    let only_id = c
        .get(&url)
        .header("APCA-API-KEY-ID", "PKGOOD")
        .send()
        .await
        .unwrap();
    assert_eq!(only_id.status().as_u16(), 401);
    let right = c
        .get(&url)
        .header("APCA-API-KEY-ID", "PKGOOD")
        .header("APCA-API-SECRET-KEY", "right")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status().as_u16(), 200);
}

#[tokio::test]
async fn alpha_vantage_splits_and_its_refusals() {
    let (emu, c) = start().await;
    let h = emu.handle();
    h.set_splits(
        "NVDA",
        vec![(day(2021, 7, 20), 4.0), (day(2024, 6, 10), 10.0)],
    );
    let url = |sym: &str| {
        format!(
            "{}/query?function=SPLITS&symbol={sym}&apikey=AVKEY",
            emu.base_url()
        )
    };
    let body: Value = c
        .get(url("NVDA"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        serde_json::json!({"symbol":"NVDA","data":[
            {"effective_date":"2024-06-10","split_factor":"10.0000"},
            {"effective_date":"2021-07-20","split_factor":"4.0000"}]})
    );
    let none: Value = c
        .get(url("SPY"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none, serde_json::json!({"symbol":"SPY","data":[]}));
    // Raw bars show the pre-split price, split-adjusted ones do not.
    let bars = |adj: &str| {
        format!(
            "{}/v2/stocks/NVDA/bars?timeframe=1Day&start=2024-06-06&end=2024-06-11&adjustment={adj}",
            emu.base_url()
        )
    };
    let raw: Value = serde_json::from_str(&get(&c, bars("raw")).await.2).unwrap();
    let adj: Value = serde_json::from_str(&get(&c, bars("split")).await.2).unwrap();
    let ratio = raw["bars"][0]["c"].as_f64().unwrap() / adj["bars"][0]["c"].as_f64().unwrap();
    assert!((ratio - 10.0).abs() < 1e-3, "{ratio}");
    assert_eq!(raw["bars"][2]["c"], adj["bars"][2]["c"]);

    for (reply, key) in [
        (AvReply::Information, "Information"),
        (AvReply::Note, "Note"),
        (AvReply::ErrorMessage, "Error Message"),
    ] {
        h.update_faults(|f| f.av_reply = reply);
        let v: Value = c
            .get(url("NVDA"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(v[key].is_string(), "{v}");
    }
    h.update_faults(|f| f.av_reply = AvReply::Empty);
    assert_eq!(
        c.get(url("NVDA"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        ""
    );
    h.update_faults(|f| f.av_reply = AvReply::Html);
    assert!(c
        .get(url("NVDA"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .starts_with("<!DOCTYPE"));

    h.clear_faults();
    h.update_faults(|f| f.av_daily_limit = Some(1));
    let v: Value = c
        .get(url("NVDA"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["Information"]
        .as_str()
        .unwrap()
        .contains("25 requests per day"));
    let missing: Value = c
        .get(format!(
            "{}/query?function=SPLITS&symbol=NVDA",
            emu.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(missing["Error Message"].is_string());
    let log = h.requests_for_key("AVKEY");
    assert!(!log.is_empty());
    assert!(log
        .iter()
        .all(|r| r.query.contains("apikey=***") && !r.query.contains("AVKEY")));
}

#[tokio::test]
async fn the_echo_fault_quotes_the_credentials_in_every_error_reply() {
    let emu = Emulator::start(Config {
        now: Some(1_719_835_200),
        keys: Some(vec![("PKTEST".into(), "secret".into())]),
        ..Config::default()
    })
    .await
    .unwrap();
    let h = emu.handle();
    let c = reqwest::Client::new();
    let url = |q: &str| format!("{}/v2/stocks/SPY/bars?{q}", emu.base_url());
    let day = "timeframe=1Day&start=2024-06-03&end=2024-06-28";
    let quoted = "(APCA-API-KEY-ID: PKTEST, APCA-API-SECRET-KEY: secret)";
    // Off by default: errors say nothing of the credentials.
    h.fail_day_with("SPY", self::day(2024, 6, 3), 1, 500);
    let (status, _, body) = get(&c, url(day)).await;
    assert_eq!(
        (status, body.as_str()),
        (500, r#"{"message":"internal server error"}"#)
    );

    h.update_faults(|f| f.echo_credentials = true);
    let mut seen = Vec::new();
    for (status, setup) in [(500, 500u16), (502, 502), (429, 429), (422, 422)] {
        h.fail_day_with("SPY", self::day(2024, 6, 3), 1, setup);
        let (got, _, body) = get(&c, url(day)).await;
        assert_eq!(got, status);
        assert!(body.contains(quoted), "{status}: {body}");
        seen.push(status);
    }
    let (status, _, body) = get(&c, url("timeframe=7Week")).await;
    assert_eq!(status, 400);
    assert!(body.contains(quoted), "{body}");
    // A wrong secret is quoted as sent, on the bars and the corporate-actions routes.
    for path in [
        format!("{}/v2/stocks/SPY/bars?{day}", emu.base_url()),
        format!("{}/v1/corporate-actions?symbols=SPY", emu.base_url()),
    ] {
        let r = c
            .get(&path)
            .header("APCA-API-KEY-ID", "PKTEST")
            .header("APCA-API-SECRET-KEY", "wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{path}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("APCA-API-SECRET-KEY: wrong"),
            "{path}: {body}"
        );
    }
    // Successful replies are untouched.
    let (status, _, body) = get(&c, url(day)).await;
    assert_eq!(status, 200);
    assert!(!body.contains("APCA-API"), "{body}");
    assert_eq!(seen, [500, 502, 429, 422]);
}
