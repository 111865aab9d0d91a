//! `vectura trade enable | halt | resume | status | disable` through the binary, against the
//! emulator over HTTP (Alpaca's wire format) and a SQLite store.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vectura_broker::alpaca::{AlpacaClient, AlpacaConfig};
use vectura_broker::{Broker, OrderRequest, OrderStatus, OrderType, Side, TimeInForce};
use vectura_emulator::{Config, Emulator, TradingConfig};
use vectura_store::{OrderRow, Store};

use crate::common::{bin, fixtures, scratch};

const KEY: &str = "PKCLIOPS";
const SECRET: &str = "cli-ops-secret";

fn vectura_at(dir: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("VECTURA_DATA_DIR", dir)
        .env("DATABASE_URL", db_url(dir))
        .env("APCA_API_KEY_ID", KEY)
        .env("APCA_API_SECRET_KEY", SECRET)
        .env("APCA_API_BASE_URL", url)
        .env("APCA_API_DATA_URL", url)
        .output()
        .expect("vectura runs")
}

fn db_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("t.db").display())
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(o: Output) -> String {
    let (out, err) = text(&o);
    assert!(o.status.success(), "stdout {out}\nstderr {err}");
    out
}

fn inda() -> PathBuf {
    fixtures().join("INDA_1min_2023-07-10_to_2025-07-07.csv.gz")
}

fn order(coid: &str) -> OrderRequest {
    OrderRequest {
        client_order_id: coid.into(),
        symbol: "INDA".into(),
        side: Side::Buy,
        qty: "1".parse().unwrap(),
        // Far below the price: it stays open until cancelled.
        order_type: OrderType::Limit {
            limit_price: "1".parse().unwrap(),
        },
        time_in_force: TimeInForce::Day,
        extended_hours: false,
    }
}

#[test]
fn halt_cancels_our_open_orders_only_persists_and_resume_status_enable_disable_work() {
    let dir = scratch("trade-ops");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt
        .block_on(Emulator::start(Config {
            keys: Some(vec![(KEY.into(), SECRET.into())]),
            trading: TradingConfig {
                replay: vec![("INDA".into(), inda())],
                ..TradingConfig::default()
            },
            ..Config::default()
        }))
        .unwrap();
    let h = emu.handle();
    let open = vectura_core::calendar::session_open_ts(
        chrono::NaiveDate::from_ymd_opt(2023, 7, 10).unwrap(),
    );
    h.set_time(chrono::DateTime::from_timestamp(open + 600, 0).unwrap());
    let url = emu.base_url();

    // A symbol without a grid cannot be enabled without one.
    let o = vectura_at(&dir, &url, &["trade", "enable", "INDA"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("--grid"), "{:?}", text(&o));
    let out = ok(vectura_at(
        &dir,
        &url,
        &[
            "trade",
            "enable",
            "inda",
            "--grid",
            "--max-orders-per-day",
            "5",
        ],
    ));
    assert!(out.contains("ENABLED INDA"), "{out}");

    // One order of ours (its intent in at_orders) and one placed by hand in the account.
    let client = AlpacaClient::new(
        AlpacaConfig::new(KEY, SECRET)
            .with_trading_url(&url)
            .with_data_url(&url),
    )
    .unwrap();
    let store = rt.block_on(Store::open(&db_url(&dir))).unwrap();
    rt.block_on(store.insert_order_intent(&OrderRow {
        client_order_id: "ours-1".into(),
        symbol: "INDA".into(),
        side: Side::Buy,
        qty: 1.0,
        status: "intent".into(),
        created_at: chrono::Utc::now(),
        broker_order_id: None,
        filled_qty: 0.0,
        filled_avg_price: None,
        intent: None,
        error: None,
    }))
    .unwrap();
    let ours = rt.block_on(client.submit(&order("ours-1"))).unwrap();
    let manual = rt.block_on(client.submit(&order("manual-1"))).unwrap();

    let o = vectura_at(&dir, &url, &["trade", "halt", "--symbol", "NOPE"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("no such traded symbol"),
        "{:?}",
        text(&o)
    );

    let out = ok(vectura_at(
        &dir,
        &url,
        &["trade", "halt", "--symbol", "INDA"],
    ));
    assert!(out.contains("HALTED INDA · cancelled 1"), "{out}");
    let status_of = |id: &str| {
        rt.block_on(client.order_by_client_id(id))
            .unwrap()
            .unwrap()
            .status
    };
    assert_eq!(status_of("ours-1"), OrderStatus::Canceled, "{}", ours.id);
    assert_ne!(
        status_of("manual-1"),
        OrderStatus::Canceled,
        "{}",
        manual.id
    );
    let c = rt.block_on(store.trade_control("INDA")).unwrap().unwrap();
    assert!(c.halt_reason.unwrap().contains("halted by the operator"));

    // Status, JSON and text: halted, with why.
    let js: serde_json::Value =
        serde_json::from_str(&ok(vectura_at(&dir, &url, &["trade", "status", "--json"]))).unwrap();
    assert_eq!(js[0]["symbol"], "INDA");
    assert_eq!(js[0]["enabled"], true);
    assert!(js[0]["halted"]
        .as_str()
        .unwrap()
        .contains("vectura trade resume"));
    let out = ok(vectura_at(&dir, &url, &["trade", "status"]));
    assert!(
        out.contains("INDA · enabled") && out.contains("HALTED"),
        "{out}"
    );

    let out = ok(vectura_at(&dir, &url, &["trade", "resume"]));
    assert!(out.contains("RESUMED INDA"), "{out}");
    let js: serde_json::Value =
        serde_json::from_str(&ok(vectura_at(&dir, &url, &["trade", "status", "--json"]))).unwrap();
    assert!(js[0]["halted"].is_null(), "{js}");
    let out = ok(vectura_at(&dir, &url, &["trade", "resume"]));
    assert!(out.contains("nothing was halted"), "{out}");

    let out = ok(vectura_at(&dir, &url, &["trade", "disable", "INDA"]));
    assert!(out.contains("DISABLED INDA"), "{out}");
    let c = rt.block_on(store.trade_control("INDA")).unwrap().unwrap();
    assert!(!c.enabled);
    assert_eq!(c.limits.max_orders_per_day, Some(5), "limits kept");
    drop(emu);
}

#[test]
fn trade_once_at_trace_level_never_logs_the_secret_in_either_log_format() {
    let dir = scratch("trade-secret");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt
        .block_on(Emulator::start(Config {
            keys: Some(vec![(KEY.into(), SECRET.into())]),
            ..Config::default()
        }))
        .unwrap();
    let url = emu.base_url();
    ok(vectura_at(
        &dir,
        &url,
        &["trade", "enable", "SPY", "--grid"],
    ));
    for format in ["json", "text"] {
        let o = Command::new(bin())
            .args(["--log-format", format, "trade", "--once"])
            .current_dir(&dir)
            .env("VECTURA_DATA_DIR", &dir)
            .env("DATABASE_URL", db_url(&dir))
            .env("APCA_API_KEY_ID", KEY)
            .env("APCA_API_SECRET_KEY", SECRET)
            .env("APCA_API_BASE_URL", &url)
            .env("APCA_API_DATA_URL", &url)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert!(o.status.success(), "{format}: stdout {out}\nstderr {err}");
        // The logs are on, at trace level: the trader's and the HTTP stack's lines are there.
        assert!(err.lines().count() > 10, "{format}: {err}");
        assert!(err.contains("alpaca request"), "{format}: {err}");
        if format == "json" {
            for l in err.lines() {
                let v: serde_json::Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
                assert!(v["level"].is_string(), "{l}");
            }
            assert!(err.contains("\"level\":\"TRACE\""), "{err}");
        } else {
            assert!(err.contains(" DEBUG "), "{err}");
        }
        for (what, s) in [("stdout", &out), ("stderr", &err)] {
            assert!(!s.contains(SECRET), "{format}: the secret is in {what}");
        }
    }
    drop(emu);
}

#[test]
fn config_check_reports_settings_masked_and_which_services_answer() {
    let dir = scratch("config-check");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt
        .block_on(Emulator::start(Config {
            keys: Some(vec![(KEY.into(), SECRET.into())]),
            ..Config::default()
        }))
        .unwrap();
    let url = emu.base_url();
    let run = |trading: &str, av: &str| {
        Command::new(bin())
            .args(["config", "check", "--json"])
            .current_dir(&dir)
            .env("VECTURA_DATA_DIR", &dir)
            .env("DATABASE_URL", db_url(&dir))
            .env("APCA_API_KEY_ID", KEY)
            .env("APCA_API_SECRET_KEY", SECRET)
            .env("APCA_API_BASE_URL", trading)
            .env("APCA_API_DATA_URL", &url)
            .env("ALPHA_VANTAGE_API_KEY", "AVKEY-VERY-SECRET")
            .env("ALPHA_VANTAGE_URL", av)
            .env(
                "VECTURA_WEBHOOK_URL",
                "https://hooks.example.com/services/T0/B0/TOKENPART",
            )
            .output()
            .unwrap()
    };
    let o = run(&url, &url);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    for hidden in [SECRET, "AVKEY-VERY-SECRET", "TOKENPART"] {
        assert!(
            !out.contains(hidden) && !err.contains(hidden),
            "{hidden} shown: {out}"
        );
    }
    let js: serde_json::Value = serde_json::from_str(&out).unwrap();
    let state = |js: &serde_json::Value, name: &str| {
        js["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {js}"))["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for s in ["database", "alpaca trading", "alpaca data", "alpha vantage"] {
        assert_eq!(state(&js, s), "ok", "{s}: {js}");
    }
    // A down port: trading and Alpha Vantage fail, named; the exit code says so.
    let down = "http://127.0.0.1:9";
    let o = run(down, down);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    let js: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(state(&js, "alpaca trading"), "failed", "{js}");
    assert_eq!(state(&js, "alpha vantage"), "failed", "{js}");
    assert_eq!(state(&js, "alpaca data"), "ok", "{js}");
    assert_eq!(state(&js, "database"), "ok", "{js}");
    // Missing keys: named with the commands that need them.
    let o = Command::new(bin())
        .args(["config", "check"])
        .current_dir(&dir)
        .env("VECTURA_DATA_DIR", &dir)
        .env("DATABASE_URL", db_url(&dir))
        .env_remove("APCA_API_KEY_ID")
        .env_remove("APCA_API_SECRET_KEY")
        .output()
        .unwrap();
    let (out, _) = text(&o);
    assert!(
        out.contains("APCA_API_KEY_ID") && out.contains("MISSING for trade"),
        "{out}"
    );
    drop(emu);
}

/// A one-request webhook receiver on loopback (a thread): answers 200 and hands back the body.
fn webhook_receiver() -> (String, std::sync::mpsc::Receiver<serde_json::Value>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/api/webhooks/1234/webhook-token-never-logged",
        l.local_addr().unwrap()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).unwrap_or(0);
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap();
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                let _ = tx.send(body);
                return;
            }
        }
    });
    (url, rx)
}

#[test]
fn a_failed_run_is_told_to_the_webhook_and_its_url_is_never_logged() {
    let dir = scratch("trade-webhook");
    let (hook, got) = webhook_receiver();
    // Nothing enabled: the run fails at its start, after the webhook is set up.
    let o = Command::new(bin())
        .args(["--log-format", "json", "trade", "--broker", "sim", "--bars"])
        .arg(format!("INDA={}", inda().display()))
        .current_dir(&dir)
        .env("VECTURA_DATA_DIR", &dir)
        .env("DATABASE_URL", db_url(&dir))
        .env("VECTURA_WEBHOOK_URL", &hook)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(!o.status.success(), "stdout {out}\nstderr {err}");
    assert!(err.contains("no symbol is enabled"), "{err}");
    let body = got
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("the webhook was posted before the process exited");
    let line = body["text"].as_str().unwrap();
    assert!(
        line.starts_with("vectura: error: ") && line.contains("no symbol is enabled"),
        "{body}"
    );
    assert_eq!(body["content"], body["text"]);
    assert_eq!(body["vectura"]["event"], "error");
    assert!(err.lines().count() > 3, "trace logs are on: {err}");
    for (what, s) in [("stdout", &out), ("stderr", &err)] {
        assert!(
            !s.contains("webhook-token-never-logged"),
            "the webhook's token is in {what}: {s}"
        );
    }
}
