//! The trades page, its CSV, `/api/v1/trades` and the overview's symbols over a fixed history of
//! 1 100 trades and 120 orders, pinned byte for byte to what the dashboard served when it computed
//! them from every symbol's whole history in Rust (recorded in `golden/live_pages.txt` by that
//! version; `VECTURA_BLESS=1` records it again). The round trips' sums are summed by the database
//! now, so they are compared to within 1e-12 relative (a different order of addition); everything
//! else exactly.

use chrono::{DateTime, Duration, TimeZone, Utc};
use reqwest::StatusCode;
use vectura_core::Side;
use vectura_store::{OrderRow, RiskLimits, Store, TradeRecord};

use crate::support::{start, Client};

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/it/golden/live_pages.txt"
);

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 4, 14, 30, 0).unwrap()
}

/// AAA and BBB are traded (they have controls), CCC has history but no controls. Prices in dimes
/// as a real account's are, so the sums are not exact in binary.
async fn fixture(s: &Store) {
    for sym in ["BBB", "AAA"] {
        s.set_trade_controls(sym, true, &RiskLimits::default())
            .await
            .unwrap();
    }
    let mut g = Lcg(2026);
    let mut open: std::collections::HashMap<&str, Vec<(String, DateTime<Utc>)>> =
        Default::default();
    for i in 0..1100u64 {
        let sym = ["AAA", "AAA", "BBB", "CCC"][g.next(4) as usize];
        let at = t0()
            + Duration::seconds(60 * (i / 2) as i64)
            + Duration::milliseconds(if g.next(5) == 0 { 250 } else { 0 });
        let id = format!("{}{sym}-{i:04}", ["a", "B", "b_"][g.next(3) as usize]);
        let price = 45.0 + g.next(100) as f64 * 0.1;
        let shares = (1 + g.next(17)) as f64;
        let lots = open.entry(sym).or_default();
        let (side, close) = if !lots.is_empty() && g.next(2) == 0 {
            let (lot, _) = lots.remove(g.next(lots.len() as u64) as usize);
            (Side::Sell, Some(lot))
        } else {
            lots.push((id.clone(), at));
            (Side::Buy, None)
        };
        s.insert_trade(
            sym,
            &TradeRecord {
                id,
                timestamp: at,
                side,
                shares,
                price,
                close_trade_id: close,
            },
        )
        .await
        .unwrap();
    }
    let statuses = [
        "intent",
        "submitted",
        "filled",
        "partially_filled",
        "canceled",
        "rejected",
        "new",
        "accepted",
        "dropped",
    ];
    for i in 0..120u64 {
        let sym = ["AAA", "BBB", "CCC"][g.next(3) as usize];
        s.insert_order_intent(&OrderRow {
            client_order_id: format!("{}-{sym}-{i:03}", ["vt", "VT"][g.next(2) as usize]),
            symbol: sym.into(),
            side: if g.next(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            },
            qty: (1 + g.next(9)) as f64 + 0.5,
            status: statuses[g.next(statuses.len() as u64) as usize].into(),
            created_at: t0() + Duration::seconds(45 * (i / 3) as i64),
            broker_order_id: None,
            filled_qty: g.next(3) as f64,
            filled_avg_price: None,
            intent: None,
            error: (i % 7 == 0).then(|| format!("insufficient buying power, \"{i}\"")),
        })
        .await
        .unwrap();
    }
}

/// The part of a page that is the page's own (the chrome carries the session's CSRF token).
fn content(html: &str) -> &str {
    let from = html.find("<h1>").expect("a heading");
    let to = html.rfind("</table>").expect("a table") + "</table>".len();
    &html[from..to]
}

const STATS: [&str; 3] = ["win_rate_pct", "profit_factor", "realised"];

/// JSON equal, with the round trips' sums within 1e-12 relative.
fn same_json(path: &str, got: &serde_json::Value, want: &serde_json::Value) {
    let (mut g, mut w) = (got.clone(), want.clone());
    if let (Some(gs), Some(ws)) = (g.get_mut("stats"), w.get_mut("stats")) {
        for k in STATS {
            let (a, b) = (gs[k].as_f64(), ws[k].as_f64());
            match (a, b) {
                (Some(a), Some(b)) => {
                    assert!(
                        (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                        "{path}: stats.{k} is {a}, was {b}"
                    );
                    if a != b {
                        eprintln!("{path}: stats.{k} is {a}, was {b} (within 1e-12)");
                    }
                }
                _ => assert_eq!(gs[k], ws[k], "{path}: stats.{k}"),
            }
            gs[k] = serde_json::Value::Null;
            ws[k] = serde_json::Value::Null;
        }
    }
    assert_eq!(g, w, "{path}");
}

#[tokio::test]
async fn trades_pages_csv_and_overview_are_as_recorded() {
    let srv = start().await;
    fixture(&srv.store).await;
    let mut c = Client::new(&srv.base);
    c.login().await;
    let mut got: Vec<(String, String)> = Vec::new();
    for path in [
        "/api/v1/trades",
        "/api/v1/trades?symbol=aaa&side=sell&page=2&per_page=7",
        "/api/v1/trades?page=999&per_page=13",
        "/api/v1/trades?symbol=%20bbb%20&side=buy&per_page=500",
        "/api/v1/trades?symbol=CCC",
        "/api/v1/trades?side=hold",
        "/api/v1/trades?per_page=501",
        "/live/trades?side=sell&page=2",
        "/live/trades?symbol=BBB&page=3",
        "/live/trades.csv",
        "/live/trades.csv?symbol=AAA&side=sell&page=2&per_page=3",
        "/live/trades.csv?symbol=ZZZ",
        "/api/v1/overview",
    ] {
        let r = c.get(path).await;
        let status = r.status();
        let body = r.text().await.unwrap();
        let body = if path.starts_with("/live/trades?") {
            assert_eq!(status, StatusCode::OK, "{path}");
            content(&body).to_string()
        } else if path == "/api/v1/overview" {
            // Only the symbols: the rest is the clock's (and a symbol's state says whether the
            // market is open now).
            let mut v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let mut syms = v["symbols"].take();
            for s in syms.as_array_mut().unwrap() {
                s["state"] = serde_json::Value::Null;
            }
            serde_json::to_string_pretty(&syms).unwrap()
        } else {
            body
        };
        got.push((format!("{} {path}", status.as_u16()), body));
    }
    if std::env::var("VECTURA_BLESS").is_ok_and(|v| v == "1") {
        let mut out = String::new();
        for (k, body) in &got {
            out.push_str(&format!("==== {k}\n{body}\n"));
        }
        std::fs::create_dir_all(std::path::Path::new(GOLDEN).parent().unwrap()).unwrap();
        std::fs::write(GOLDEN, out).unwrap();
        return;
    }
    let text = std::fs::read_to_string(GOLDEN)
        .unwrap_or_else(|e| panic!("{GOLDEN}: {e}: record it with VECTURA_BLESS=1"));
    let want: Vec<(String, String)> = text
        .split("==== ")
        .skip(1)
        .map(|part| {
            let (k, body) = part.split_once('\n').unwrap();
            (k.to_string(), body.strip_suffix('\n').unwrap().to_string())
        })
        .collect();
    assert_eq!(
        got.iter().map(|g| &g.0).collect::<Vec<_>>(),
        want.iter().map(|w| &w.0).collect::<Vec<_>>(),
        "the requests and their statuses"
    );
    for ((k, g), (_, w)) in got.iter().zip(&want) {
        if k.contains("/api/") {
            let (gv, wv): (serde_json::Value, serde_json::Value) = (
                serde_json::from_str(g).unwrap(),
                serde_json::from_str(w).unwrap(),
            );
            same_json(k, &gv, &wv);
        } else if k.contains("/live/trades?") {
            // The statistics as the page prints them (two decimals) are the same text.
            assert_eq!(g, w, "{k}");
        } else {
            assert!(g == w, "{k}: the CSV differs");
        }
    }
    // The fixture reaches what it is for: several CSV pages of the former 500, rows of both sides
    // and P&L on the page, a refused side named.
    assert!(want[9].1.lines().count() > 800, "{}", want[9].1.len());
    assert!(want[7].1.contains("class=\"trade\""));
    assert!(want[5].1.contains("\"field\":\"side\""), "{}", want[5].1);
}

#[tokio::test]
async fn a_halt_from_the_dashboard_reads_once_on_the_algorithm_page() {
    let srv = start().await;
    for sym in ["AAA", "BBB"] {
        srv.store
            .set_trade_controls(sym, true, &RiskLimits::default())
            .await
            .unwrap();
    }
    // A halt by the trader: its reason is an explanation, shown after "halted: ".
    srv.store
        .halt_symbol("BBB", "the broker's position differs", Utc::now())
        .await
        .unwrap();
    let mut c = Client::new(&srv.base);
    c.login().await;
    let r = c
        .with_csrf(reqwest::Method::POST, "/api/v1/algo/AAA/halt")
        .json(&serde_json::json!({"confirm": "yes", "reason": "news"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = c.get("/live/algo").await.text().await.unwrap();
    assert!(
        page.contains(
            "id=\"state-AAA\">halted from the dashboard by admin (news): resume it on the algorithm page"
        ),
        "{page}"
    );
    assert!(!page.contains("halted: halted"), "{page}");
    assert!(
        page.contains("id=\"state-BBB\">halted: the broker&#39;s position differs")
            || page.contains("id=\"state-BBB\">halted: the broker&#x27;s position differs"),
        "{page}"
    );
}

/// A CSV export's body (200 expected).
async fn get_csv(c: &mut Client, path: &str) -> String {
    let r = c.get(path).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.unwrap()
}

/// The CSV export is kept between requests (`CsvCache`): each trade its filters keep is in the
/// next export, a trade they leave out changes nothing, and many filters in turn each get their
/// own trades.
#[tokio::test]
async fn the_trades_csv_follows_each_new_trade_of_its_filters() {
    let srv = start().await;
    fixture(&srv.store).await;
    let mut c = Client::new(&srv.base);
    c.login().await;
    let every = "/live/trades.csv";
    let sells = "/live/trades.csv?symbol=aaa&side=sell";
    let (all1, sells1) = (get_csv(&mut c, every).await, get_csv(&mut c, sells).await);
    assert_eq!(
        get_csv(&mut c, every).await,
        all1,
        "nothing added: the same export"
    );
    let trade = |id: &str, at: DateTime<Utc>, side: Side| TradeRecord {
        id: id.into(),
        timestamp: at,
        side,
        shares: 1.0,
        price: 10.0,
        close_trade_id: None,
    };
    let late = t0() + Duration::days(400);
    srv.store
        .insert_trade("AAA", &trade("cache-late-buy", late, Side::Buy))
        .await
        .unwrap();
    let all2 = get_csv(&mut c, every).await;
    assert_eq!(all2.lines().count(), all1.lines().count() + 1);
    assert!(
        all2.lines().nth(1).unwrap().ends_with(",cache-late-buy"),
        "the newest first: {}",
        all2.lines().nth(1).unwrap()
    );
    assert_eq!(
        get_csv(&mut c, sells).await,
        sells1,
        "a buy is not in the sells' export"
    );
    // Older than the newest: only the count tells it.
    srv.store
        .insert_trade("AAA", &trade("cache-old-sell", t0(), Side::Sell))
        .await
        .unwrap();
    let sells2 = get_csv(&mut c, sells).await;
    assert_eq!(sells2.lines().count(), sells1.lines().count() + 1);
    assert!(sells2.contains(",cache-old-sell\n"));
    assert!(get_csv(&mut c, every).await.contains(",cache-old-sell\n"));
    // A symbol given trading controls brings its trades in.
    let before = get_csv(&mut c, every).await;
    assert!(!before.contains(",CCC,"));
    srv.store
        .set_trade_controls("CCC", true, &RiskLimits::default())
        .await
        .unwrap();
    let with_ccc = get_csv(&mut c, every).await;
    assert!(with_ccc.contains(",CCC,"), "CCC is traded now");
    // More filters than are kept, in turn: each export is its own filter's.
    for path in [
        "/live/trades.csv?symbol=AAA",
        "/live/trades.csv?symbol=BBB",
        "/live/trades.csv?symbol=CCC",
        "/live/trades.csv?side=buy",
        "/live/trades.csv?side=sell",
        "/live/trades.csv?symbol=AAA&side=buy",
        "/live/trades.csv?symbol=BBB&side=buy",
        "/live/trades.csv?symbol=BBB&side=sell",
        "/live/trades.csv?symbol=CCC&side=buy",
        "/live/trades.csv?symbol=CCC&side=sell",
        "/live/trades.csv?symbol=ZZZ",
    ] {
        let body = get_csv(&mut c, path).await;
        let q: std::collections::HashMap<&str, &str> = path
            .split_once('?')
            .unwrap()
            .1
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let f = vectura_store::TradeFilter {
            symbol: q.get("symbol").map(|s| s.to_string()),
            side: q
                .get("side")
                .map(|s| if *s == "buy" { Side::Buy } else { Side::Sell }),
        };
        let n = srv.store.trade_count(&f).await.unwrap() as usize;
        assert_eq!(
            body.lines().count(),
            n + 1,
            "{path}: a header and each trade"
        );
        for line in body.lines().skip(1) {
            let cells: Vec<&str> = line.split(',').collect();
            if let Some(s) = &f.symbol {
                assert_eq!(cells[1], s, "{path}: {line}");
            }
            if let Some(side) = q.get("side") {
                assert_eq!(cells[2], *side, "{path}: {line}");
            }
        }
    }
    assert_eq!(
        get_csv(&mut c, every).await,
        with_ccc,
        "the first filter again, as it was"
    );
    assert_eq!(get_csv(&mut c, sells).await, sells2);
}

/// The trades page's round-trip summary is kept between requests (`RoundTripCache`): a sell that
/// closes a lot is in the next page's statistics and P&L histogram at once, and another symbol's
/// summary is not touched.
#[tokio::test]
async fn the_round_trips_and_their_pnl_chart_follow_each_new_closing_sell() {
    let srv = start().await;
    fixture(&srv.store).await;
    let mut c = Client::new(&srv.base);
    c.login().await;
    async fn summary(c: &mut Client, path: &str) -> (u64, Vec<u64>, serde_json::Value) {
        let v: serde_json::Value = c.get(path).await.json().await.unwrap();
        let h = &v["pnl_histogram"];
        let counts: Vec<u64> = serde_json::from_value(h["count"].clone()).unwrap();
        (
            v["stats"]["round_trips"].as_u64().unwrap(),
            counts,
            h.clone(),
        )
    }
    let (aaa, bbb) = ("/api/v1/trades?symbol=AAA", "/api/v1/trades?symbol=BBB");
    let (n1, counts1, h1) = summary(&mut c, aaa).await;
    assert!(n1 > 0);
    assert_eq!(counts1.iter().sum::<u64>(), n1, "every round trip in a bin");
    assert_eq!(summary(&mut c, aaa).await.2, h1, "nothing added: the same");
    let b1 = summary(&mut c, bbb).await;
    let at = t0() + Duration::days(400);
    let rec = |id: &str, side: Side, price: f64, close: Option<&str>| TradeRecord {
        id: id.into(),
        timestamp: at,
        side,
        shares: 1.0,
        price,
        close_trade_id: close.map(str::to_string),
    };
    srv.store
        .insert_trade("AAA", &rec("rt-buy", Side::Buy, 10.0, None))
        .await
        .unwrap();
    srv.store
        .insert_trade("AAA", &rec("rt-sell", Side::Sell, 5010.0, Some("rt-buy")))
        .await
        .unwrap();
    let (n2, counts2, h2) = summary(&mut c, aaa).await;
    assert_eq!(n2, n1 + 1, "the closing sell is a round trip more");
    assert_eq!(counts2.iter().sum::<u64>(), n2);
    // Its 5 000 dollars lie beyond every earlier bin: the last bin now reaches them.
    let lo: Vec<f64> = serde_json::from_value(h2["lo"].clone()).unwrap();
    let width = h2["width"].as_f64().unwrap();
    assert!(lo.last().unwrap() + width >= 5000.0, "{h2}");
    assert_eq!(summary(&mut c, bbb).await, b1, "BBB's summary is its own");
}
