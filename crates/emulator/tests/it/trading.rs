//! The trading engine seen through HTTP: fills at the next bar's open, validation with Alpaca's codes,
//! expiry, the replay mode on a real minute-bar file, the orders log, and route faults.

use std::io::Read;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use reqwest::Method as M;
use serde_json::{json, Value};
use vectura_emulator::{Config, EmuBar, Emulator, FaultAction, RouteFault, TradingConfig};

use crate::trading_spec::{start, Http};

/// Bars every minute of 2024-07-01's session with open = 50 + i, close = 50.5 + i, plus a
/// pre-market bar at 08:00 ET (12:00Z).
fn bars() -> Vec<EmuBar> {
    let open = 1_719_840_600i64;
    let mut v: Vec<EmuBar> = (0..390)
        .map(|i| {
            let o = 50.0 + i as f64;
            EmuBar {
                t: open + 60 * i,
                o,
                h: o + 1.0,
                l: o - 1.0,
                c: o + 0.5,
                v: 100,
                n: 1,
                vw: o,
            }
        })
        .collect();
    v.insert(
        0,
        EmuBar {
            t: 1_719_835_200,
            o: 7.0,
            h: 7.0,
            l: 7.0,
            c: 7.0,
            v: 1,
            n: 1,
            vw: 7.0,
        },
    );
    v
}

fn buy(sym: &str, qty: &str, coid: &str) -> Value {
    json!({"symbol": sym, "qty": qty, "side": "buy", "type": "market", "time_in_force": "day", "client_order_id": coid})
}

#[tokio::test]
async fn an_order_sent_when_a_bar_closes_fills_at_the_next_bars_open() {
    let (emu, c) = start(|c| c.now = Some(1_719_840_600)).await; // 09:30 ET
    let h = emu.handle();
    h.set_bars("X", bars());
    // 09:40:00.003: the 09:39 bar closed 3 ms ago; the strategy's order arrives now.
    h.set_time(
        Utc.with_ymd_and_hms(2024, 7, 1, 13, 40, 0).unwrap() + chrono::Duration::milliseconds(3),
    );
    let (s, o) = c
        .call(M::POST, "/v2/orders", Some(buy("X", "1", "a")))
        .await;
    assert_eq!((s, o["status"].as_str()), (200, Some("new")), "{o}");
    h.process();
    let (_, o) = c
        .call(
            M::GET,
            "/v2/orders:by_client_order_id?client_order_id=a",
            None,
        )
        .await;
    assert_eq!(o["status"], "filled");
    // Bar i = 10 (09:40) opens at 60: the backtest's next-open after the 09:39 decision bar.
    assert_eq!(o["filled_avg_price"], "60");
    // Mid-minute (09:41:45): that minute's bar open.
    h.set_time(Utc.with_ymd_and_hms(2024, 7, 1, 13, 41, 45).unwrap());
    c.call(M::POST, "/v2/orders", Some(buy("X", "1", "b")))
        .await;
    h.process();
    let (_, o) = c
        .call(
            M::GET,
            "/v2/orders:by_client_order_id?client_order_id=b",
            None,
        )
        .await;
    assert_eq!(o["filled_avg_price"], "61");
    let (_, fills) = c
        .call(M::GET, "/v2/account/activities/FILL?direction=asc", None)
        .await;
    assert_eq!(fills[1]["transaction_time"], "2024-07-01T13:41:45.000000Z");
}

#[tokio::test]
async fn a_pre_market_order_waits_for_the_first_regular_bar_and_unfilled_day_orders_expire_at_the_close(
) {
    let (emu, c) = start(|c| c.now = Some(1_719_835_200 - 3600)).await; // 07:00 ET
    let h = emu.handle();
    h.set_bars("X", bars());
    c.call(M::POST, "/v2/orders", Some(buy("X", "1", "pre")))
        .await;
    c.call(
        M::POST,
        "/v2/orders",
        Some(json!({"symbol":"X","qty":"1","side":"buy","type":"limit","limit_price":"10","time_in_force":"day","client_order_id":"lim"})),
    )
    .await;
    h.step(); // 08:01: the pre-market bar closed; a market order ignores it
    let (_, o) = c
        .call(
            M::GET,
            "/v2/orders:by_client_order_id?client_order_id=pre",
            None,
        )
        .await;
    assert_eq!(o["status"], "new");
    h.step(); // 09:31
    let (_, o) = c
        .call(
            M::GET,
            "/v2/orders:by_client_order_id?client_order_id=pre",
            None,
        )
        .await;
    assert_eq!(
        (o["status"].as_str(), o["filled_avg_price"].as_str()),
        (Some("filled"), Some("50"))
    );
    h.set_time(Utc.with_ymd_and_hms(2024, 7, 1, 21, 0, 0).unwrap());
    let (_, l) = c
        .call(
            M::GET,
            "/v2/orders:by_client_order_id?client_order_id=lim",
            None,
        )
        .await;
    assert_eq!(l["status"], "expired");
    assert_eq!(l["expired_at"], "2024-07-01T20:00:00.000000Z");
    // last_equity is the equity at that close: cash plus 1 share at the last close (439.5).
    let (_, a) = c.call(M::GET, "/v2/account", None).await;
    assert_eq!(a["last_equity"], "100389.5");
    assert_eq!(a["equity"], a["last_equity"]);
}

#[tokio::test]
async fn submissions_are_checked_as_alpaca_checks_them() {
    let (emu, c) = start(|_| {}).await;
    emu.handle().set_bars("X", bars());
    let cases = [
        (json!({"symbol":"X","qty":"0","side":"buy","type":"market","time_in_force":"day"}), 422, 40010001, "qty must be > 0"),
        (json!({"symbol":"X","qty":"1.5","side":"buy","type":"market","time_in_force":"gtc"}), 422, 42210000, "fractional orders must be DAY orders"),
        (json!({"symbol":"X","qty":"1","side":"buy","type":"limit","limit_price":"60.123","time_in_force":"day"}), 422, 42210000, "invalid limit_price 60.123. sub-penny increment does not fulfill minimum pricing criteria"),
        (json!({"symbol":"X","qty":"1","side":"buy","type":"market","time_in_force":"day","extended_hours":true}), 422, 40010001, "extended hours order must be DAY limit orders"),
        (json!({"symbol":"X","qty":"1","side":"hold","type":"market","time_in_force":"day"}), 422, 40010001, "invalid side: hold"),
        (json!({"symbol":"X","qty":"1","notional":"5","side":"buy","type":"market","time_in_force":"day"}), 422, 40010001, "only one of qty or notional can be specified"),
        (json!({"symbol":"X","qty":"10000","side":"buy","type":"market","time_in_force":"day"}), 403, 40310000, "insufficient buying power"),
        (json!({"symbol":"X","qty":"1","side":"sell","type":"market","time_in_force":"day"}), 403, 40310000, "insufficient qty available for order (requested: 1, available: 0)"),
        (json!({"symbol":"X","qty":"1","side":"buy","type":"market","time_in_force":"day","client_order_id":"x".repeat(129)}), 422, 40010001, "client_order_id must be no more than 128 characters"),
    ];
    for (body, status, code, message) in cases {
        let (s, b) = c.call(M::POST, "/v2/orders", Some(body.clone())).await;
        assert_eq!(
            (s, b["code"].as_i64(), b["message"].as_str()),
            (status, Some(code), Some(message)),
            "{body}"
        );
    }
    // A client order id is unique forever, a cancelled order's included.
    let hold = json!({"symbol":"X","qty":"1","side":"buy","type":"limit","limit_price":"1","time_in_force":"day","client_order_id":"once"});
    let (_, o) = c.call(M::POST, "/v2/orders", Some(hold.clone())).await;
    let (s, _) = c
        .call(
            M::DELETE,
            &format!("/v2/orders/{}", o["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, b) = c
        .call(
            M::DELETE,
            &format!("/v2/orders/{}", o["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        (s, b["message"].as_str()),
        (422, Some("order is already in \"canceled\" state"))
    );
    let (s, b) = c.call(M::POST, "/v2/orders", Some(hold)).await;
    assert_eq!(
        (s, b["code"].as_i64(), b["message"].as_str()),
        (422, Some(40010001), Some("client_order_id must be unique"))
    );
    // A notional order buys floor(notional / price) to 9 decimals.
    let (s, n) = c.call(M::POST, "/v2/orders", Some(json!({"symbol":"X","notional":"100","side":"buy","type":"market","time_in_force":"day"}))).await;
    assert_eq!(s, 200, "{n}");
    emu.handle().step();
    let (_, n) = c
        .call(
            M::GET,
            &format!("/v2/orders/{}", n["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(n["filled_qty"], "1.25"); // 100 / 80, the 10:00 bar's open (bar 30)
    let (s, n) = c
        .call(M::POST, "/v2/orders", Some(json!({"symbol":"X","notional":"100","side":"buy","type":"market","time_in_force":"day"})))
        .await;
    assert_eq!(s, 200, "{n}");
    emu.handle().step();
    let (_, n) = c
        .call(
            M::GET,
            &format!("/v2/orders/{}", n["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(n["filled_qty"], "1.234567901"); // 100 / 81 rounded down to 9 decimals
}

#[tokio::test]
async fn order_lists_filter_and_activities_page_as_documented() {
    let (emu, c) = start(|_| {}).await;
    let h = emu.handle();
    h.set_bars("X", bars());
    h.set_time(Utc.with_ymd_and_hms(2024, 7, 1, 13, 30, 0).unwrap());
    for i in 0..5 {
        c.call(M::POST, "/v2/orders", Some(buy("X", "1", &format!("o{i}"))))
            .await;
        h.step();
    }
    let (_, all) = c.call(M::GET, "/v2/orders?status=all", None).await;
    let coids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["client_order_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        coids,
        vec!["o4", "o3", "o2", "o1", "o0"],
        "newest first by default"
    );
    let after = all[3]["submitted_at"].as_str().unwrap().to_string(); // o1
    let (_, page) = c
        .call(
            M::GET,
            &format!("/v2/orders?status=closed&after={after}&direction=asc&limit=2"),
            None,
        )
        .await;
    let coids: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["client_order_id"].as_str().unwrap())
        .collect();
    assert_eq!(coids, vec!["o2", "o3"], "after is exclusive");
    let (_, none) = c.call(M::GET, "/v2/orders", None).await;
    assert_eq!(none, json!([]), "open by default");
    let (_, p1) = c
        .call(
            M::GET,
            "/v2/account/activities/FILL?direction=asc&page_size=2",
            None,
        )
        .await;
    let token = p1[1]["id"].as_str().unwrap();
    assert!(token.contains("::"));
    let (_, p2) = c
        .call(
            M::GET,
            &format!("/v2/account/activities/FILL?direction=asc&page_size=2&page_token={token}"),
            None,
        )
        .await;
    let prices: Vec<&str> = p1
        .as_array()
        .unwrap()
        .iter()
        .chain(p2.as_array().unwrap())
        .map(|a| a["price"].as_str().unwrap())
        .collect();
    assert_eq!(prices, vec!["50", "51", "52", "53"]);
    let (s, _) = c.call(M::GET, "/v2/orders?status=done", None).await;
    assert_eq!(s, 422);
}

fn fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/fixtures/INDA_1min_2023-07-10_to_2025-07-07.csv.gz")
}

/// The first rows of the fixture, read independently of the emulator: (time, open).
fn fixture_rows(n: usize) -> Vec<(i64, String)> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(fixture()).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .skip(1)
        .take(n)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let t = chrono::NaiveDateTime::parse_from_str(cells[0], "%Y-%m-%d %H:%M:%S")
                .unwrap()
                .and_utc()
                .timestamp();
            (t, cells[1].to_string())
        })
        .collect()
}

/// An emulator replaying the INDA fixture at `speed`× real time.
async fn replaying_inda(speed: f64) -> Emulator {
    Emulator::start(Config {
        trading: TradingConfig {
            replay: vec![("INDA".into(), fixture())],
            speed: Some(speed),
            ..TradingConfig::default()
        },
        ..Config::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_replay_mode_drives_clock_assets_bars_and_fills_from_a_real_minute_file() {
    let emu = replaying_inda(1.0).await;
    let c = Http {
        http: reqwest::Client::new(),
        base: emu.base_url(),
    };
    let h = emu.handle();
    let rows = fixture_rows(40);
    // The replay starts at the first bar; from here the test drives the clock by hand.
    let start = h.now().timestamp();
    assert!(
        start >= rows[0].0 && start < rows[0].0 + 60,
        "{start} vs {}",
        rows[0].0
    );
    h.set_time(chrono::DateTime::from_timestamp(rows[0].0, 0).unwrap());
    let (_, clock) = c.call(M::GET, "/v2/clock", None).await;
    assert_eq!(clock["timestamp"], "2023-07-10T06:10:00.000000-04:00");
    assert_eq!(clock["is_open"], false);
    let (_, assets) = c.call(M::GET, "/v2/assets", None).await;
    assert_eq!(assets.as_array().unwrap().len(), 1);
    assert_eq!(assets[0]["symbol"], "INDA");
    let (s, b) = c
        .call(M::POST, "/v2/orders", Some(buy("SPY", "1", "spy")))
        .await;
    assert_eq!(
        (s, b["message"].as_str()),
        (422, Some("could not find asset \"SPY\""))
    );
    // A market order before the open fills at the first regular-session bar's open.
    c.call(M::POST, "/v2/orders", Some(buy("INDA", "3", "inda")))
        .await;
    while h.step().is_some_and(|t| t.timestamp() < 1_688_996_000) {}
    let first_regular = rows
        .iter()
        .find(|(t, _)| {
            vectura_core::calendar::classify(*t) == vectura_core::calendar::SessionPart::Regular
        })
        .unwrap();
    let (_, o) = c
        .call(
            M::GET,
            "/v2/orders:by_client_order_id?client_order_id=inda",
            None,
        )
        .await;
    assert_eq!(o["status"], "filled");
    let want: vectura_emulator::Decimal = first_regular.1.parse().unwrap();
    assert_eq!(o["filled_avg_price"], want.normalize().to_string());
    // The bars endpoint serves the file's bars up to emulator now only.
    let (_, bars) = c
        .call(
            M::GET,
            "/v2/stocks/INDA/bars?timeframe=1Min&start=2023-07-10&end=2023-07-11",
            None,
        )
        .await;
    let last = bars["bars"].as_array().unwrap().last().unwrap()["t"]
        .as_str()
        .unwrap()
        .to_string();
    let last = chrono::DateTime::parse_from_rfc3339(&last)
        .unwrap()
        .timestamp();
    assert!(last + 60 <= h.now().timestamp());
}

#[tokio::test]
async fn a_running_replay_clock_moves_forward_by_itself() {
    let emu = replaying_inda(600.0).await;
    let a = emu.handle().now();
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(emu.handle().now() > a, "the clock moved");
}

#[tokio::test]
async fn the_orders_log_has_one_json_line_per_order_request_with_its_outcome() {
    let dir = std::env::temp_dir().join(format!("vectura-emu-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("orders.jsonl");
    let _ = std::fs::remove_file(&path);
    let (emu, c) = start(|cfg| cfg.trading.orders_log = Some(path.clone())).await;
    emu.handle().set_bars("X", bars());
    emu.handle().update_trading_faults(|f| {
        f.routes.push(
            RouteFault::on("/v2/orders", FaultAction::Status(503))
                .method("POST")
                .times(1),
        )
    });
    c.call(M::POST, "/v2/orders", Some(buy("X", "1", "k1")))
        .await;
    c.call(M::POST, "/v2/orders", Some(buy("X", "1", "k1")))
        .await;
    c.call(M::POST, "/v2/orders", Some(buy("X", "1", "k1")))
        .await;
    c.call(M::POST, "/v2/orders", Some(buy("X", "100000", "k2")))
        .await;
    c.call(
        M::GET,
        "/v2/orders:by_client_order_id?client_order_id=k1",
        None,
    )
    .await;
    let lines: Vec<Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(String, String, bool, String)> = lines
        .iter()
        .map(|l| {
            (
                l["method"].as_str().unwrap().to_string(),
                l["client_order_id"].as_str().unwrap_or("").to_string(),
                l["created"].as_bool().unwrap(),
                l["outcome"]
                    .as_str()
                    .unwrap()
                    .split(':')
                    .next()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        got,
        vec![
            (
                s("POST"),
                s("k1"),
                false,
                s("fault before processing (Status(503))")
            ),
            (s("POST"), s("k1"), true, s("created")),
            (s("POST"), s("k1"), false, s("duplicate")),
            (s("POST"), s("k2"), false, s("rejected")),
            (s("GET"), s("k1"), false, s("found")),
        ]
    );
    for l in &lines {
        assert!(l["path"].as_str().unwrap().starts_with("/v2/orders"));
        assert!(chrono::DateTime::parse_from_rfc3339(l["time"].as_str().unwrap()).is_ok());
        assert_eq!(l["key"], "PKSPEC");
    }
    assert_eq!(emu.handle().order_requests().len(), lines.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn route_faults_answer_as_alpaca_and_its_load_balancer_do_and_every_reply_has_rate_headers() {
    let (emu, c) = start(|_| {}).await;
    let h = emu.handle();
    for (status, html) in [(500, false), (502, true), (503, true), (504, true)] {
        h.update_trading_faults(|f| {
            f.routes = vec![RouteFault::on("/v2/clock", FaultAction::Status(status)).times(1)]
        });
        let r = c
            .http
            .get(format!("{}/v2/clock", c.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status);
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert_eq!(ct.contains("html"), html, "{status}: {ct}");
    }
    h.update_trading_faults(|f| {
        f.routes = vec![RouteFault::on("/", FaultAction::Status(429)).times(1)]
    });
    let r = c
        .http
        .get(format!("{}/v2/stocks/SPY/bars?timeframe=1Min", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    // A drop: the connection breaks before the reply is complete.
    h.update_trading_faults(|f| {
        f.routes = vec![RouteFault::on("/v2/account", FaultAction::Drop).times(1)]
    });
    let r = c
        .http
        .get(format!("{}/v2/account", c.base))
        .header("APCA-API-KEY-ID", "k")
        .header("APCA-API-SECRET-KEY", "s")
        .send()
        .await;
    match r {
        Err(e) => assert!(!e.is_timeout(), "{e}"),
        Ok(r) => assert!(r.text().await.is_err()),
    }
    let r = c
        .http
        .get(format!("{}/v2/account", c.base))
        .header("APCA-API-KEY-ID", "k")
        .header("APCA-API-SECRET-KEY", "s")
        .send()
        .await
        .unwrap();
    for k in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        r.headers()[k].to_str().unwrap().parse::<i64>().unwrap();
    }
    assert_eq!(r.headers()["x-ratelimit-limit"], "200");
    let r = c
        .http
        .get(format!("{}/v2/account", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], 40110000);
}
