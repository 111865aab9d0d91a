//! Alpaca's official Python SDK (alpaca-py) against the emulator: `TradingClient` places, reads, lists
//! and cancels orders and `TradingStream` receives their trade updates, unchanged
//! (`tests/alpaca_py/check.py`). Python is `VECTURA_ALPACA_PY`, by default the virtual environment
//! `.venv-alpaca/` at the repository root (`python3 -m venv .venv-alpaca &&
//! .venv-alpaca/bin/pip install alpaca-py==0.44.0`).

use std::path::PathBuf;

use serde_json::Value;
use vectura_emulator::{Config, Emulator};

const NEEDS: &str = "needs python3 with alpaca-py: run scripts/test";

fn python() -> PathBuf {
    match std::env::var_os("VECTURA_ALPACA_PY") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../.venv-alpaca/bin/python"
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3 with alpaca-py: run scripts/test"]
async fn alpaca_py_trades_and_streams_against_the_emulator_unchanged() {
    let py = python();
    let probe = std::process::Command::new(&py)
        .args(["-c", "import alpaca, alpaca.trading.stream"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "{NEEDS} ({} cannot import alpaca: {})",
            py.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("{NEEDS} ({}: {e})", py.display()),
    }
    // 2024-07-01 14:00Z, a stopped clock: a market order fills at the next request, at the 14:00 bar's open.
    let emu = Emulator::start(Config {
        now: Some(1_719_842_400),
        keys: Some(vec![("PKPY".into(), "py-secret".into())]),
        ..Config::default()
    })
    .await
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/alpaca_py/check.py");
    let base = emu.base_url();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(py)
            .args([script, &base, "PKPY", "py-secret"])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "check.py failed:\n{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    // The 14:00 bar, as the market-data API serves it once it closed.
    emu.handle().advance(std::time::Duration::from_secs(60));
    let bar = emu
        .handle()
        .minute_bars("SPY", 1_719_842_400, 1_719_842_460)[0];
    let open: vectura_emulator::Decimal = format!("{}", bar.o).parse().unwrap();
    assert_eq!(v["stream_running"], true, "{v}");
    assert!(
        v["account_number"].as_str().unwrap().starts_with("PA"),
        "{v}"
    );
    assert_eq!(
        (v["cash"].as_str(), v["status"].as_str()),
        (Some("100000"), Some("ACTIVE"))
    );
    assert_eq!(v["clock_is_open"], true);
    assert_eq!(v["submitted_status"], "new");
    assert_eq!(v["filled_status"], "filled");
    assert_eq!(v["filled_avg_price"], open.normalize().to_string());
    assert_eq!(v["filled_qty"], "1");
    assert_eq!(v["same_order_by_client_id"], true);
    assert_eq!(v["duplicate_error"]["status"], 422);
    assert_eq!(v["duplicate_error"]["code"], 40010001);
    assert_eq!(v["canceled_status"], "canceled");
    assert_eq!(v["cancel_all"], serde_json::json!([200]));
    assert_eq!(v["listed"], serde_json::json!(["py-1", "py-2", "py-3"]));
    assert_eq!(v["position_spy_qty"], "1");
    assert_eq!(v["fills"], 1);
    let events: Vec<(String, String)> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e[0].as_str().unwrap().to_string(),
                e[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("new", "py-1"),
        ("fill", "py-1"),
        ("new", "py-2"),
        ("canceled", "py-2"),
        ("new", "py-3"),
        ("canceled", "py-3"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(events, want, "{v}");
}
