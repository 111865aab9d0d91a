//! `vectura demo` in-process: the one-time login link, the overview moving as the real trader trades
//! the bundled bars, the algorithm page's validation, audit and kill switch, the refusals without a
//! session or CSRF token, and a restart that resumes with no duplicate order.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use vectura_web::demo::{Demo, DemoConfig};

use crate::support::Client;

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("vectura-demo-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn config(dir: &std::path::Path, speed: f64) -> DemoConfig {
    DemoConfig {
        data_dir: dir.to_path_buf(),
        bind: "127.0.0.1:0".parse().unwrap(),
        speed,
        reset: false,
    }
}

/// Logs a client in through the demo's link and reads the session's CSRF token.
async fn enter(demo_url: &str, link: &str) -> Client {
    let mut c = Client::new(demo_url);
    let path = link.strip_prefix(demo_url).unwrap();
    let r = c.get(path).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the link logs in");
    assert_eq!(r.headers()["location"], "/live");
    let s: serde_json::Value = c.get("/api/v1/session").await.json().await.unwrap();
    c.csrf = Some(s["csrf_token"].as_str().unwrap().to_string());
    c
}

async fn overview(c: &mut Client) -> serde_json::Value {
    let r = c.get("/api/v1/overview").await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_logs_in_once_trades_and_its_overview_moves() {
    let dir = temp_dir("live");
    let demo = Demo::prepare(&config(&dir, 100_000.0)).await.unwrap();
    let (url, link) = (demo.url.clone(), demo.login_url.clone());
    let state = demo.state();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The trader is not Sync (its grid caches in a Cell): the demo runs in this task, beside the test.
    let run = demo.run(async {
        let _ = stop_rx.await;
    });
    let body =
        async move {
            let mut anon = Client::new(&url);
            let r = anon.get("/api/v1/overview").await;
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "the overview needs a login"
            );
            let mut c = enter(&url, &link).await;
            let path = link.strip_prefix(url.as_str()).unwrap();
            let again = Client::new(&url).get(path).await;
            assert_eq!(again.status(), StatusCode::FORBIDDEN, "the link is spent");

            let first = overview(&mut c).await;
            let mut last = first.clone();
            for _ in 0..300 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                last = overview(&mut c).await;
                if last["symbols"][0]["trades"].as_u64().unwrap_or(0) >= 2
                    && last["as_of"] != first["as_of"]
                {
                    break;
                }
            }
            assert_ne!(last["as_of"], first["as_of"], "the replay's clock moves");
            assert!(last["seq"].as_u64() > first["seq"].as_u64());
            assert!(
                last["symbols"][0]["trades"].as_u64().unwrap() >= 2,
                "the trader trades: {last}"
            );
            assert_ne!(last["equity"], first["equity"], "the equity moves");
            assert_eq!(last["symbols"][0]["symbol"], "SPY");
            let page = c.get("/live").await.text().await.unwrap();
            assert!(page.contains("id=\"equity\""), "{page}");
            let trades: serde_json::Value = c.get("/api/v1/trades").await.json().await.unwrap();
            assert!(trades["total"].as_u64().unwrap() >= 2, "{trades}");
            let csv = c.get("/live/trades.csv").await.text().await.unwrap();
            assert!(
                csv.starts_with("time,symbol,side,shares,price,pnl,held,id\n"),
                "{csv}"
            );
            assert!(csv.lines().count() > 2, "{csv}");

            // A bad value is refused naming its field; nothing is saved.
            let r = c
        .with_csrf(Method::POST, "/api/v1/algo/SPY")
        .json(&serde_json::json!({"capital_pct": 150, "buy_below_pct": 0.5, "sell_above_pct": 0.5,
            "buy_after_sell_pct": 0.5, "cash_floor": 0, "order_gap_pct": -1, "enabled": true}))
        .send()
        .await
        .unwrap();
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let e: serde_json::Value = r.json().await.unwrap();
            assert_eq!(e["field"], "capital_pct", "{e}");
            // The form shows the message next to its field.
            let page = c.get("/live/algo").await.text().await.unwrap();
            let csrf = crate::support::hidden_value(&page, "csrf").unwrap();
            let r = c
                .request(Method::POST, "/live/algo/SPY")
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("capital_pct", "abc"),
                    ("buy_below_pct", "0.5"),
                    ("sell_above_pct", "0.5"),
                    ("buy_after_sell_pct", "0.5"),
                    ("cash_floor", "0"),
                    ("order_gap_pct", "-1"),
                    ("enabled", "1"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let html = r.text().await.unwrap();
            assert!(
                html.contains(
                    "id=\"SPY-capital_pct-error\">capital_pct is &#34;abc&#34;: give a number"
                ) || html.contains(
                    "id=\"SPY-capital_pct-error\">capital_pct is &quot;abc&quot;: give a number"
                ),
                "{html}"
            );
            // Without the CSRF token: refused, nothing saved.
            let r = c
                .request(Method::POST, "/api/v1/algo/SPY")
                .json(&serde_json::json!({"capital_pct": 30}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
            let r = anon
                .request(Method::POST, "/api/v1/algo/SPY/halt")
                .json(&serde_json::json!({"confirm": "yes"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            // The backtest button's form: without the token, or without a session, refused and
            // no job started.
            let settings = [
                ("capital_pct", "30"),
                ("buy_below_pct", "0.5"),
                ("sell_above_pct", "0.5"),
                ("buy_after_sell_pct", "0.5"),
                ("cash_floor", "0"),
                ("order_gap_pct", "-1"),
                ("months", "1"),
            ];
            let r = c
                .request(Method::POST, "/live/algo/SPY/backtest")
                .form(&settings)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
            let r = anon
                .request(Method::POST, "/live/algo/SPY/backtest")
                .form(&settings)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "to the login");
            assert!(state.store.jobs("backtest", 10).await.unwrap().is_empty());

            // A good save is audited: who, the field, old and new.
            let r = c
        .with_csrf(Method::POST, "/api/v1/algo/SPY")
        .json(&serde_json::json!({"capital_pct": 25, "buy_below_pct": 0.5, "sell_above_pct": 0.5,
            "buy_after_sell_pct": 0.5, "cash_floor": 0, "order_gap_pct": -1, "enabled": true,
            "max_order_notional": "50000"}))
        .send()
        .await
        .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let saved: serde_json::Value = r.json().await.unwrap();
            assert_eq!(
                saved["changed"],
                serde_json::json!(["capital_pct", "max_order_notional"])
            );
            let algo: serde_json::Value = c.get("/api/v1/algo").await.json().await.unwrap();
            assert_eq!(algo["symbols"][0]["capital_pct"], 25.0);
            let a = algo["audit"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["field"] == "capital_pct")
                .expect("an audit row for capital_pct");
            assert_eq!(a["username"], "admin");
            assert_eq!(a["old_value"], "20");
            assert_eq!(a["new_value"], "25");

            // The kill switch needs its confirmation, then halts the symbol.
            let r = c
                .with_csrf(Method::POST, "/api/v1/algo/SPY/halt")
                .json(&serde_json::json!({"confirm": "no"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let r = c
                .with_csrf(Method::POST, "/api/v1/algo/SPY/halt")
                .json(&serde_json::json!({"confirm": "yes"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let mut halted = serde_json::Value::Null;
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                halted = overview(&mut c).await;
                if halted["symbols"][0]["state"] == "halted" {
                    break;
                }
            }
            assert_eq!(halted["symbols"][0]["state"], "halted", "{halted}");
            // Stamped on the trader's clock (the replay's 2011), as parity reads it.
            let at = state
                .store
                .trade_control("SPY")
                .await
                .unwrap()
                .unwrap()
                .halted_at
                .unwrap();
            assert_eq!(at.format("%Y").to_string(), "2011", "{at}");
            let trades_at_halt = halted["symbols"][0]["trades"].as_u64().unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            let later = overview(&mut c).await;
            assert_eq!(
                later["symbols"][0]["trades"].as_u64().unwrap(),
                trades_at_halt,
                "a halted symbol does not trade"
            );

            let _ = stop_tx.send(());
        };
    let (r, ()) = tokio::join!(run, body);
    r.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_demo_resumes_with_no_duplicate_order() {
    let dir = temp_dir("resume");
    let count = |dir: std::path::PathBuf| async move {
        let url = format!(
            "sqlite://{}?mode=rwc",
            vectura_web::demo::db_path(&dir).display()
        );
        let store = vectura_store::Store::open(&url).await.unwrap();
        let orders = store.orders("SPY").await.unwrap();
        let controls = store.trade_control("SPY").await.unwrap().unwrap();
        store.close().await;
        (orders, controls.halt_reason)
    };
    let mut seen = 0;
    for round in 0..3 {
        let demo = Demo::prepare(&config(&dir, 1_000_000.0)).await.unwrap();
        if round > 0 {
            assert!(demo.resumed_bars > 0, "round {round} resumes");
            assert_eq!(
                demo.resumed_orders, seen,
                "round {round}: every sent order handed again"
            );
        }
        // Dropped mid-replay after 4 s, as a kill would (not asked to stop).
        let r =
            tokio::time::timeout(Duration::from_secs(4), demo.run(std::future::pending())).await;
        assert!(r.is_err(), "round {round}: the replay was still running");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (orders, halt) = count(dir.clone()).await;
        assert_eq!(
            halt, None,
            "round {round}: reconciliation found nothing unexplained"
        );
        let mut ids: Vec<&str> = orders.iter().map(|o| o.client_order_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            orders.len(),
            "round {round}: no client order id twice"
        );
        let sent = orders
            .iter()
            .filter(|o| o.broker_order_id.is_some())
            .count();
        assert!(sent >= seen, "round {round}: {sent} orders, {seen} before");
        seen = sent;
    }
    assert!(
        seen >= 2,
        "the demo traded across the restarts: {seen} orders"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_performance_api_gives_the_live_curves_and_the_engines_metrics() {
    let dir = temp_dir("perf");
    let demo = Demo::prepare(&config(&dir, 100_000.0)).await.unwrap();
    let (url, link) = (demo.url.clone(), demo.login_url.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = demo.run(async {
        let _ = stop_rx.await;
    });
    let body = async move {
        let r = Client::new(&url).get("/api/v1/performance").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "it needs a login");
        let mut c = enter(&url, &link).await;
        let mut p = serde_json::Value::Null;
        for _ in 0..300 {
            p = c.get("/api/v1/performance").await.json().await.unwrap();
            if p["metrics"]["total_trades"].as_u64().unwrap_or(0) >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(p["live"], true);
        let m = &p["metrics"];
        assert!(m["total_trades"].as_u64().unwrap() >= 2, "{m}");
        let curves = &p["curves"];
        let eq: Vec<f64> = serde_json::from_value(curves["equity"].clone()).unwrap();
        let dd: Vec<f64> = serde_json::from_value(curves["drawdown_pct"].clone()).unwrap();
        let times = curves["time"].as_array().unwrap();
        assert!(!eq.is_empty() && eq.len() == dd.len() && eq.len() == times.len());
        assert!(eq.len() <= vectura_web::performance::MAX_POINTS);
        assert!(p["bars"].as_u64().unwrap() as usize >= eq.len());
        assert!(times[0].as_str().unwrap() < times[times.len() - 1].as_str().unwrap());
        // The metrics read the same equity the curve shows: its last point is the final equity,
        // and no drawn drawdown is deeper than the metric's.
        let last = *eq.last().unwrap();
        let ret = m["total_return_pct"].as_f64().unwrap();
        assert!(
            (ret - (last / 100_000.0 - 1.0) * 100.0).abs() < 1e-9,
            "{ret} vs {last}"
        );
        let deepest = dd.iter().cloned().fold(0.0f64, f64::min);
        assert!(dd.iter().all(|d| *d <= 0.0));
        let max_dd = m["maximum_drawdown_pct"].as_f64().unwrap();
        assert!(max_dd + 1e-9 >= -deepest, "{max_dd} vs {deepest}");
        assert!(
            m["exposure_pct"].as_f64().unwrap() > 0.0,
            "the grid holds lots: {m}"
        );
        assert!(m["buy_hold_final_equity"].is_null(), "no benchmark live");
        // The page shows them, and the nav links it.
        let page = c.get("/live/performance").await.text().await.unwrap();
        assert!(page.contains("id=\"m-total_trades\""), "{page}");
        assert!(page.contains("id=\"performance-data\""));
        assert!(page.contains("href=\"/live/performance\""));
        // The parity per session, once the run has decided on two: the simulated broker fills at
        // the next bar's open as the model does, so each session agrees trade for trade.
        let mut days = Vec::new();
        for _ in 0..600 {
            p = c.get("/api/v1/performance").await.json().await.unwrap();
            days = p["parity"].as_array().cloned().unwrap_or_default();
            if days.len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(days.len() >= 2, "{days:?}");
        assert!(
            days[0]["date"].as_str() > days[1]["date"].as_str(),
            "newest first"
        );
        let mut fills = 0;
        for d in &days {
            assert_eq!(d["symbol"], "SPY");
            assert!(d["missing"].is_null(), "{d}");
            assert_eq!(d["differences"], serde_json::json!([]), "{d}");
            assert_eq!(d["model_trades"], d["live_fills"], "{d}");
            fills += d["live_fills"].as_u64().unwrap();
        }
        let trades = p["metrics"]["total_trades"].as_u64().unwrap();
        assert!(fills >= 1 && fills <= trades, "{fills} of {trades}");
        let page = c.get("/live/performance").await.text().await.unwrap();
        assert!(page.contains("id=\"parity\""), "{page}");
        let _ = stop_tx.send(());
    };
    let (r, ()) = tokio::join!(run, body);
    r.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `performance` events of `r` (a server-sent event stream) as they come, until `want` of
/// them; the deadline bounds a stalled stream and decides nothing else.
async fn performance_events(r: reqwest::Response, want: usize) -> Vec<serde_json::Value> {
    let mut r = r;
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while out.len() < want {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .unwrap_or_else(|_| panic!("{} of {want} performance events came", out.len()))
            .unwrap()
            .expect("the stream stays open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut name = "";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n;
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            if name == "performance" {
                out.push(serde_json::from_str(&data).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_performance_events_append_each_new_bar_to_the_curves() {
    let dir = temp_dir("perf-events");
    // A minute bar every 20 ms: the replay runs through the test.
    let demo = Demo::prepare(&config(&dir, 3000.0)).await.unwrap();
    let (url, link) = (demo.url.clone(), demo.login_url.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = demo.run(async {
        let _ = stop_rx.await;
    });
    let body = async move {
        let r = Client::new(&url).get("/api/v1/performance/events").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "it needs a login");
        let c = enter(&url, &link).await;
        let r = c
            .request(Method::GET, "/api/v1/performance/events")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let events = performance_events(r, 6).await;
        let start = 100_000.0;
        // The points as the page holds them: the first event's whole, then each one's appended.
        let (mut times, mut equity, mut dd) = (Vec::new(), Vec::new(), Vec::new());
        let mut bars = 0u64;
        for (i, e) in events.iter().enumerate() {
            let col = |k: &str| e["curves"][k].as_array().unwrap().clone();
            let (t, q, d) = (col("time"), col("equity"), col("drawdown_pct"));
            assert!(t.len() == q.len() && q.len() == d.len(), "{e}");
            if i == 0 {
                assert_eq!(e["reset"], true, "the first event draws the curves whole");
            } else {
                assert_eq!(e["reset"], false, "a few hundred bars: appended, {e}");
                assert!(!t.is_empty(), "an event brings a new bar: {e}");
                assert!(e["bars"].as_u64().unwrap() > bars, "{e}");
            }
            times.extend(t.into_iter().map(|v| v.as_str().unwrap().to_string()));
            equity.extend(q.into_iter().map(|v| v.as_f64().unwrap()));
            dd.extend(d.into_iter().map(|v| v.as_f64().unwrap()));
            bars = e["bars"].as_u64().unwrap();
            // Every bar is drawn once, in time order (RFC 3339 in UTC: text order is time order).
            assert_eq!(times.len() as u64, bars, "{e}");
            assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
        }
        // The appended drawdown continues the running peak, as the whole curve computes it.
        let whole = vectura_web::performance::curves_of(
            &equity
                .iter()
                .enumerate()
                .map(|(i, e)| (i as i64 * 60, *e))
                .collect::<Vec<_>>(),
            start,
        );
        assert_eq!(whole.drawdown_pct.len(), dd.len());
        for (a, b) in whole.drawdown_pct.iter().zip(&dd) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
        // The metrics are refreshed with each: the last one's return is the last point's.
        let last = events.last().unwrap();
        let ret = last["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == "total_return_pct")
            .expect("the metrics come with the bars");
        assert_eq!(
            ret["value"],
            format!("{:.2} %", (equity.last().unwrap() / start - 1.0) * 100.0)
        );
        let _ = stop_tx.send(());
    };
    let (r, ()) = tokio::join!(run, body);
    r.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_performance_metrics_are_the_backtest_engines_on_the_equity() {
    use vectura_backtest::metrics::TradeStats;
    // Four days: 100 000, a peak of 110 000, a fall to 99 000 (10 % down), a close at 120 000.
    let day = 86_400;
    let t0 = 1_700_000_000 - 1_700_000_000 % day + 20 * 3600;
    let curve = [
        (t0, 100_000.0),
        (t0 + day, 110_000.0),
        (t0 + 2 * day, 99_000.0),
        (t0 + 3 * day, 120_000.0),
    ];
    let m =
        vectura_web::performance::metrics_of(&curve, |_| 0.0, 100_000.0, &TradeStats::default(), 3)
            .unwrap();
    assert!((m.total_return_pct - 20.0).abs() < 1e-9, "{m:?}");
    assert!((m.maximum_drawdown_pct - 10.0).abs() < 1e-9, "{m:?}");
    assert!((m.maximum_drawdown_dollar - 11_000.0).abs() < 1e-6, "{m:?}");
    assert_eq!(m.maximum_equity, 120_000.0);
    assert_eq!(m.total_trades, 3);
    assert!((m.exposure_pct - 100.0).abs() < 1e-9, "fully invested");
    let c = vectura_web::performance::curves_of(&curve, 100_000.0);
    assert_eq!(c.equity.len(), 4);
    assert!(
        (c.drawdown_pct[2] + 10.0).abs() < 1e-9,
        "{:?}",
        c.drawdown_pct
    );
    assert_eq!(c.drawdown_pct[3], 0.0);
    // Without a trader in the process the API says so.
    let s = crate::support::start().await;
    let mut cl = Client::new(&s.base);
    cl.login().await;
    let p: serde_json::Value = cl.get("/api/v1/performance").await.json().await.unwrap();
    assert_eq!(p["live"], false);
    assert!(p["metrics"].is_null());
    let page = cl.get("/live/performance").await.text().await.unwrap();
    assert!(page.contains("id=\"not-live\""), "{page}");
}
