//! The live pages in a browser, as a user of `vectura demo` meets them: the one-time login link, the
//! overview moving without a reload, a trade on the trades page and the overview's lots, the
//! algorithm page's validation and audit, and the kill switch with its confirmation. Each test runs
//! its own demo (the real trader replaying the bundled SPY bars at a high speed) and saves
//! screenshots under `target/screenshots/live-*.png`.

use std::future::Future;
use std::sync::Arc;

use vectura_web::demo::{Demo, DemoConfig};
use vectura_web::AppState;

use crate::driver::Browser;

/// Deadline for a state the replay brings (a trade, a new equity, a halt seen by the trader): it
/// bounds the wait on a loaded machine and decides nothing.
const LIVE_SECS: u64 = 60;

/// A running demo as the test sees it.
struct Live {
    url: String,
    link: String,
    state: Arc<AppState>,
}

/// Runs a demo at `speed` (simulated seconds per real second) beside `body`, then stops it. The
/// trader is not Sync: the demo runs in this task, joined with the test's body.
async fn with_demo<F, Fut>(tag: &str, speed: f64, body: F)
where
    F: FnOnce(Live) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = std::env::temp_dir().join(format!("vectura-live-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let demo = Demo::prepare(&DemoConfig {
        data_dir: dir.clone(),
        bind: "127.0.0.1:0".parse().unwrap(),
        speed,
        reset: false,
    })
    .await
    .unwrap();
    let live = Live {
        url: demo.url.clone(),
        link: demo.login_url.clone(),
        state: demo.state(),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = demo.run(async {
        let _ = stop_rx.await;
    });
    let test = async move {
        body(live).await;
        let _ = stop_tx.send(());
    };
    let (r, ()) = tokio::join!(run, test);
    r.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A browser logged in through the demo's link, on the overview.
async fn enter(l: &Live) -> Browser {
    let b = Browser::start().await;
    b.c().goto(&l.link).await.unwrap();
    assert_eq!(
        b.text_is("h1", "Live overview").await,
        "Live overview",
        "the link lands on the overview"
    );
    b
}

/// `12.34` as shown (money: two decimals; a dash when absent).
fn dollars(shown: &str) -> Option<f64> {
    shown.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn the_demos_login_link_logs_the_browser_in_once() {
    with_demo("link", 3000.0, |l| async move {
        let b = Browser::start().await;
        // Without the link: the login form.
        b.c().goto(&format!("{}/live", l.url)).await.unwrap();
        assert_eq!(b.path().await, "/login?next=%2Flive");
        b.c().goto(&l.link).await.unwrap();
        assert_eq!(b.text_is("h1", "Live overview").await, "Live overview");
        assert_eq!(b.path().await, "/live");
        assert_eq!(b.text_is("header .user", "admin").await, "admin");
        assert!(b.text("#equity").await.parse::<f64>().is_ok());
        b.shot("live-link-logged-in").await;
        // The same link in a browser without the session: refused with a page that says why.
        b.c().delete_all_cookies().await.unwrap();
        b.c().goto(&l.link).await.unwrap();
        assert_eq!(
            b.text_is("h1", "This login link is spent").await,
            "This login link is spent"
        );
        let why = b.text("#link-error").await;
        assert!(why.contains("a link logs in once"), "{why}");
        assert!(b.path().await.starts_with("/login/link"));
        b.shot("live-link-spent").await;
        // It logged nobody in: the overview still asks for the password.
        b.c().goto(&format!("{}/live", l.url)).await.unwrap();
        assert_eq!(b.path().await, "/login?next=%2Flive");
        assert_eq!(b.text_is("h1", "Log in").await, "Log in");
        b.end().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn the_overviews_equity_changes_without_a_reload() {
    // 3000: a minute bar every 20 ms, a replay of minutes: it is still running when the test reads.
    with_demo("equity", 3000.0, |l| async move {
        let b = enter(&l).await;
        // A mark on the page: a reload or a navigation would drop it.
        b.js("window.vecturaMark = 'same page'; return null;").await;
        let first = b.text("#equity").await;
        let as_of = b.text("#as-of").await;
        assert!(dollars(&first).is_some(), "equity {first}");
        b.shot("live-overview-before").await;
        let later = b
            .text_within("#equity", LIVE_SECS, |t| {
                t != first && dollars(t).is_some()
            })
            .await;
        assert_ne!(later, first, "the equity moves as the replay trades");
        assert_ne!(b.text("#as-of").await, as_of, "the replay's clock moves");
        assert_eq!(
            b.js("return window.vecturaMark || null;").await,
            serde_json::json!("same page"),
            "no reload in between"
        );
        assert_eq!(b.path().await, "/live");
        // What the page shows is what the account holds: cash + invested = equity (to the cent,
        // all three read from one update).
        let (e, c, i) = {
            let v = b
                .js("return [document.getElementById('equity').textContent, document.getElementById('cash').textContent, document.getElementById('invested').textContent];")
                .await;
            let s = |k: usize| dollars(v[k].as_str().unwrap()).unwrap();
            (s(0), s(1), s(2))
        };
        assert!((c + i - e).abs() < 0.02, "cash {c} + invested {i} = equity {e}");
        b.shot("live-overview-after").await;
        b.end().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn a_trade_shows_on_the_overview_and_the_trades_page() {
    with_demo("trade", 20_000.0, |l| async move {
        let b = enter(&l).await;
        let row = "#symbols tr[data-symbol=\"SPY\"]";
        // The trader's first buy: the trade count, then an open lot with its sell target.
        let n = b
            .text_within(&format!("{row} .trades"), LIVE_SECS, |t| {
                t.parse::<u64>().is_ok_and(|n| n >= 1)
            })
            .await;
        assert!(n.parse::<u64>().unwrap() >= 1, "trades on the overview: {n}");
        let lots = b
            .text_within(&format!("{row} .lots"), LIVE_SECS, |t| t.contains(" @ "))
            .await;
        b.shot("live-overview-lots").await;
        // Each line: shares @ buy price → sell target, the target above the buy.
        let line = lots.lines().next().unwrap_or_default().to_string();
        let (shares, rest) = line.split_once(" @ ").unwrap_or_else(|| panic!("lots: {lots}"));
        let (buy, target) = rest.split_once(" → ").unwrap_or_else(|| panic!("lots: {lots}"));
        let (shares, buy): (f64, f64) = (shares.parse().unwrap(), buy.parse().unwrap());
        assert!(shares > 0.0 && buy > 0.0, "{line}");
        if let Ok(t) = target.parse::<f64>() {
            assert!(t > buy, "the sell waits above the buy: {line}");
        }
        // The trades page, through the nav.
        b.click("header nav a[href=\"/live/trades\"]").await;
        assert_eq!(b.text_is("h1", "Trades").await, "Trades");
        let count: u64 = b.text("#trade-count").await.parse().unwrap();
        assert!(count >= n.parse::<u64>().unwrap(), "{count} trades");
        let first = b.text("#trades tr.trade").await;
        assert!(first.contains("SPY"), "{first}");
        assert!(first.contains("buy") || first.contains("sell"), "{first}");
        // The lot's buy is among the trades.
        let buys = b
            .js("return Array.from(document.querySelectorAll('#trades tr.trade')).filter(r => r.cells[2].textContent === 'buy').map(r => Number(r.cells[4].textContent));")
            .await;
        assert!(
            buys.as_array().unwrap().iter().any(|p| p.as_f64().is_some_and(|p| p > 0.0)),
            "buys on the trades page: {buys}"
        );
        // And the orders behind them, with their outcomes.
        let outcomes = b.text("#orders tbody").await;
        assert!(outcomes.contains("filled"), "{outcomes}");
        b.shot("live-trades").await;
        // The P&L distribution: once a lot has closed, plotly's bars hold every round trip the
        // page counts, losses red and wins green.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(LIVE_SECS);
        let trips = loop {
            b.c().goto(&format!("{}/live/trades", l.url)).await.unwrap();
            let n: u64 = b.text("#round-trips").await.parse().unwrap();
            if n >= 1 || std::time::Instant::now() > deadline {
                break n;
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        };
        assert!(trips >= 1, "a closed lot within {LIVE_SECS} s");
        b.wait_for("#pnl-chart .main-svg", 30).await;
        assert_eq!(b.text("#pnl-chart .gtitle").await, "P&L per round trip");
        let chart = b
            .js("const d = document.getElementById('pnl-chart').data[0]; const h = JSON.parse(document.getElementById('pnl-data').textContent); return [d.y.reduce((a, b) => a + b, 0), d.x.length, document.querySelectorAll('#pnl-chart g.point').length, h.lo.every((lo, i) => (lo < 0) === (d.marker.color[i] === '#c0392b'))];")
            .await;
        assert_eq!(chart[0].as_u64(), Some(trips), "every round trip in a bin: {chart}");
        assert_eq!(chart[1], chart[2], "a drawn bar per bin: {chart}");
        assert_eq!(chart[3], serde_json::json!(true), "losses red, wins green: {chart}");
        b.shot("live-trades-pnl").await;
        // A filter keeps only the sells, each with its P&L and holding time.
        b.c()
            .goto(&format!("{}/live/trades?side=sell", l.url))
            .await
            .unwrap();
        let rows = b
            .js("return Array.from(document.querySelectorAll('#trades tr.trade')).map(r => [r.cells[2].textContent, r.cells[5].textContent, r.cells[6].textContent]);")
            .await;
        for r in rows.as_array().unwrap() {
            assert_eq!(r[0], "sell", "{rows}");
            assert!(r[1].as_str().unwrap().parse::<f64>().is_ok(), "a sell's P&L: {rows}");
            assert!(r[2].as_str().unwrap().ends_with('m'), "a sell's holding time: {rows}");
        }
        b.end().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn the_algorithm_page_refuses_a_bad_value_next_to_its_field_and_audits_a_good_one() {
    with_demo("algo", 3000.0, |l| async move {
        let b = enter(&l).await;
        b.click("header nav a[href=\"/live/algo\"]").await;
        assert_eq!(b.text_is("h1", "Algorithm").await, "Algorithm");
        assert_eq!(b.value("#SPY-capital_pct").await.as_deref(), Some("20"));
        assert_eq!(b.text_now("#audit tbody").await, "", "no change yet");
        // Above 100 %: refused, the message right after its field, the typed value kept.
        b.fill("#SPY-capital_pct", "150").await;
        b.click("#save-SPY").await;
        let msg = b.text("#SPY-capital_pct-error").await;
        assert_eq!(msg, "capital_pct is 150: it must be above 0 and at most 100 (percent)");
        let next_to = b
            .js("return document.getElementById('SPY-capital_pct').nextElementSibling === document.getElementById('SPY-capital_pct-error');")
            .await;
        assert_eq!(next_to, serde_json::json!(true));
        let invalid = b
            .c()
            .find(fantoccini::Locator::Css("#SPY-capital_pct"))
            .await
            .unwrap()
            .attr("aria-invalid")
            .await
            .unwrap();
        assert_eq!(invalid.as_deref(), Some("true"));
        assert_eq!(b.value("#SPY-capital_pct").await.as_deref(), Some("150"));
        assert_eq!(b.text_now("#SPY-cash_floor-error").await, "", "other fields say nothing");
        b.shot("live-algo-refused").await;
        // A negative number: refused the same way.
        b.fill("#SPY-capital_pct", "20").await;
        b.fill("#SPY-cash_floor", "-100").await;
        b.click("#save-SPY").await;
        let msg = b
            .text_until("#SPY-cash_floor-error", |t| t.contains("-100"))
            .await;
        assert_eq!(msg, "cash_floor is -100: it must be a dollar amount from 0 to 1e12");
        assert_eq!(b.text_now("#SPY-capital_pct-error").await, "");
        b.shot("live-algo-refused-negative").await;
        // Nothing was saved: the store and the page's changes.
        let kept = l.state.store.algo_config("SPY").await.unwrap().unwrap();
        assert_eq!((kept.capital_pct, kept.cash_floor), (20.0, 0.0));
        assert!(l.state.store.audit_entries(None, 10).await.unwrap().is_empty());
        assert_eq!(b.text_now("#audit tbody").await, "");
        // A good value: saved, said so, the form shows it, and the change is listed.
        let before = chrono::Utc::now() - chrono::Duration::seconds(5);
        b.fill("#SPY-cash_floor", "0").await;
        b.fill("#SPY-capital_pct", "25").await;
        b.click("#save-SPY").await;
        let saved = b.text("#saved").await;
        assert!(saved.contains("SPY: saved capital_pct"), "{saved}");
        assert_eq!(b.value("#SPY-capital_pct").await.as_deref(), Some("25"));
        let audit = b
            .js("return Array.from(document.querySelectorAll('#audit tbody tr')).map(r => Array.from(r.cells).map(c => c.querySelector('time') ? c.querySelector('time').getAttribute('datetime') + '|' + c.textContent : c.textContent));")
            .await;
        let rows = audit.as_array().unwrap();
        assert_eq!(rows.len(), 1, "one change: {audit}");
        let r: Vec<&str> = rows[0].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        // Shown in New York time, the instant in the cell's <time datetime>.
        let (utc, shown) = r[0].split_once('|').unwrap_or_else(|| panic!("when: {}", r[0]));
        let when = chrono::DateTime::parse_from_rfc3339(utc).unwrap_or_else(|e| panic!("when {utc}: {e}"));
        assert!(when >= before && when <= chrono::Utc::now(), "when: {utc}");
        assert_eq!(
            shown,
            when.with_timezone(&chrono_tz::America::New_York)
                .format("%Y-%m-%d %H:%M:%S ET")
                .to_string()
        );
        assert_eq!(&r[1..], ["admin", "SPY", "capital_pct", "20", "25"], "{audit}");
        assert_eq!(
            l.state.store.algo_config("SPY").await.unwrap().unwrap().capital_pct,
            25.0
        );
        b.js("document.getElementById('audit').scrollIntoView(); return null;")
            .await;
        b.shot("live-algo-saved-audit").await;
        b.end().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn halting_a_symbol_asks_first_shows_it_halted_and_resume_undoes_it() {
    with_demo("halt", 3000.0, |l| async move {
        let b = enter(&l).await;
        let state = "#symbols tr[data-symbol=\"SPY\"] .state";
        let running = b
            .text_within(state, LIVE_SECS, |t| t == "trading" || t == "outside the session")
            .await;
        assert!(running == "trading" || running == "outside the session", "{running}");
        b.click("header nav a[href=\"/live/algo\"]").await;
        assert_eq!(b.text_is("#state-SPY", "enabled").await, "enabled");
        // The kill switch asks; cancelling it changes nothing.
        b.click("#halt-SPY").await;
        let ask = b.dialog_text().await;
        assert!(ask.starts_with("Halt SPY?"), "{ask}");
        b.c().dismiss_alert().await.unwrap();
        assert_eq!(b.text("#state-SPY").await, "enabled");
        assert!(b.c().find(fantoccini::Locator::Css("#saved")).await.is_err());
        let c = l.state.store.trade_control("SPY").await.unwrap().unwrap();
        assert_eq!(c.halt_reason, None, "a cancelled confirmation halts nothing");
        // Confirmed: halted, on this page and on the overview.
        b.click("#halt-SPY").await;
        b.dialog_text().await;
        b.c().accept_alert().await.unwrap();
        let said = b.text_until("#saved", |t| t.contains("halted")).await;
        assert!(said.starts_with("SPY halted"), "{said}");
        let shown = b.text_until("#state-SPY", |t| t.starts_with("halted")).await;
        // The reason says "halted" itself: shown once, not after a second "halted: ".
        assert!(shown.starts_with("halted from the dashboard by admin"), "{shown}");
        b.wait_for("#resume-SPY", 20).await;
        b.shot("live-algo-halted").await;
        b.click("header nav a[href=\"/live\"]").await;
        let s = b.text_within(state, LIVE_SECS, |t| t.starts_with("halted")).await;
        assert!(s.starts_with("halted"), "the overview shows the halt: {s}");
        assert!(s.contains("halted from the dashboard by admin"), "and why: {s}");
        b.shot("live-overview-halted").await;
        // Resume (also confirmed) undoes it on both pages.
        b.click("header nav a[href=\"/live/algo\"]").await;
        b.click("#resume-SPY").await;
        let ask = b.dialog_text().await;
        assert_eq!(ask, "Resume trading SPY?");
        b.c().accept_alert().await.unwrap();
        let said = b.text_until("#saved", |t| t.contains("resumed")).await;
        assert!(said.starts_with("SPY resumed"), "{said}");
        assert_eq!(b.text_is("#state-SPY", "enabled").await, "enabled");
        b.wait_for("#halt-SPY", 20).await;
        b.shot("live-algo-resumed").await;
        b.click("header nav a[href=\"/live\"]").await;
        let s = b
            .text_within(state, LIVE_SECS, |t| !t.starts_with("halted"))
            .await;
        assert!(s == "trading" || s == "outside the session", "resumed: {s}");
        b.shot("live-overview-resumed").await;
        // Both are in the changes, by the admin.
        b.click("header nav a[href=\"/live/algo\"]").await;
        let audit = b
            .js("return Array.from(document.querySelectorAll('#audit tbody tr')).filter(r => r.cells[3].textContent === 'halt').map(r => r.cells[1].textContent);")
            .await;
        assert_eq!(audit, serde_json::json!(["admin", "admin"]), "the halt and the resume");
        b.end().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn the_performance_page_charts_the_live_equity_and_lists_its_metrics() {
    with_demo("perf", 20_000.0, |l| async move {
        let b = enter(&l).await;
        // Until the trader has traded twice.
        let row = "#symbols tr[data-symbol=\"SPY\"] .trades";
        b.text_within(row, LIVE_SECS, |t| t.parse::<u64>().is_ok_and(|n| n >= 2))
            .await;
        b.click("header nav a[href=\"/live/performance\"]").await;
        assert_eq!(b.text_is("h1", "Performance").await, "Performance");
        // plotly draws both curves.
        b.wait_for("#equity-chart .main-svg", 30).await;
        b.wait_for("#drawdown-chart .main-svg", 30).await;
        let title = b.text("#equity-chart .gtitle").await;
        assert_eq!(title, "Equity");
        assert_eq!(
            b.text("#drawdown-chart .gtitle").await,
            "Drawdown from the peak"
        );
        let trades: u64 = b.text("#m-total_trades").await.parse().unwrap();
        assert!(trades >= 2, "{trades}");
        let ret = b.text("#m-total_return_pct").await;
        assert!(
            ret.ends_with(" %") && ret.trim_end_matches(" %").parse::<f64>().is_ok(),
            "{ret}"
        );
        let dd = b.text("#m-maximum_drawdown_pct").await;
        assert!(
            dd.trim_end_matches(" %").parse::<f64>().unwrap() >= 0.0,
            "{dd}"
        );
        let bars: u64 = b.text("#perf-bars").await.parse().unwrap();
        assert!(bars > 0);
        b.shot("live-performance").await;
        // The page follows the account: the curves grow and the bar count moves, with no reload
        // (a reload would drop the mark).
        b.js("window.vecturaMark = 'same page'; return null;").await;
        // The bar count and the curve's last time, read at one instant (an event sets both).
        let now = "const d = document.getElementById('equity-chart').data[0]; return [Number(document.getElementById('perf-bars').textContent), d.x[d.x.length - 1]];";
        let before = b.js(now).await;
        let shown = before[0].as_u64().unwrap();
        let later = b
            .text_within("#perf-bars", LIVE_SECS, |t| {
                t.parse::<u64>().is_ok_and(|n| n > shown)
            })
            .await;
        assert!(later.parse::<u64>().unwrap() > shown);
        let after = b.js(now).await;
        assert!(
            after[1].as_str().unwrap() > before[1].as_str().unwrap(),
            "the equity curve's last point moves on: {before} then {after}"
        );
        let lengths = b
            .js("return ['equity-chart', 'drawdown-chart'].map((id) => document.getElementById(id).data[0].x.length);")
            .await;
        assert_eq!(lengths[0], lengths[1], "both curves have every point");
        assert!(lengths[0].as_u64().unwrap() > 1);
        assert_eq!(
            b.js("return window.vecturaMark || null;").await,
            serde_json::json!("same page"),
            "no reload in between"
        );
        assert_eq!(b.path().await, "/live/performance");
        b.shot("live-performance-later").await;
        // The parity per session, newest first: the simulated broker fills at the next bar's open,
        // as the model does, so each session the run decided on agrees trade for trade.
        b.c().refresh().await.unwrap();
        b.wait_for("#parity tr.parity-day", 30).await;
        let rows = b
            .js("return Array.from(document.querySelectorAll('#parity tr.parity-day')).map(r => { const t = (c) => { const e = r.querySelector(c); return e ? e.textContent : null; }; return [r.dataset.date, t('.model-trades'), t('.live-fills'), t('.differences'), t('.missing'), t('.slippage')]; });")
            .await;
        let rows = rows.as_array().unwrap();
        assert!(!rows.is_empty());
        let dates: Vec<&str> = rows.iter().map(|r| r[0].as_str().unwrap()).collect();
        assert!(dates.windows(2).all(|w| w[0] > w[1]), "newest first: {dates:?}");
        assert!(dates.iter().all(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()));
        let mut fills = 0;
        for r in rows {
            assert_eq!(r[4], serde_json::Value::Null, "each session has its report: {r}");
            assert_eq!(r[1], r[2], "the model's trades are live's fills: {r}");
            assert_eq!(r[3], "none", "no difference: {r}");
            let slip = r[5].as_str().unwrap();
            assert!(slip == "–" || slip.parse::<f64>().unwrap().abs() < 0.005, "{r}");
            fills += r[2].as_str().unwrap().parse::<u64>().unwrap();
        }
        assert!(fills >= 1, "fills compared: {rows:?}");
        b.js("document.getElementById('parity').scrollIntoView(); return null;")
            .await;
        b.shot("live-performance-parity").await;
        b.end().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn the_algorithm_pages_backtest_button_runs_the_typed_settings_over_the_last_months() {
    with_demo("algo-backtest", 3000.0, |l| async move {
        let b = enter(&l).await;
        b.click("header nav a[href=\"/live/algo\"]").await;
        assert_eq!(b.value("#SPY-months").await.as_deref(), Some("3"));
        // A bad look-back and a bad setting: both refused next to their fields, nothing started.
        b.fill("#SPY-months", "0").await;
        b.fill("#SPY-capital_pct", "150").await;
        b.click("#backtest-SPY").await;
        let msg = b.text("#SPY-months-error").await;
        assert_eq!(
            msg,
            "months is \"0\": give a whole number of months from 1 to 120"
        );
        assert_eq!(
            b.text("#SPY-capital_pct-error").await,
            "capital_pct is 150: it must be above 0 and at most 100 (percent)"
        );
        assert_eq!(
            b.value("#SPY-months").await.as_deref(),
            Some("0"),
            "the typed value kept"
        );
        assert!(
            l.state.store.jobs("backtest", 10).await.unwrap().is_empty(),
            "no backtest started"
        );
        b.shot("live-algo-backtest-refused").await;
        // Settings typed and not saved, one month: the backtest runs them on the stored bars.
        b.fill("#SPY-capital_pct", "30").await;
        b.fill("#SPY-months", "1").await;
        b.click("#backtest-SPY").await;
        assert_eq!(
            b.text_is("#run-name", "SPY live settings, last 1 months")
                .await,
            "SPY live settings, last 1 months"
        );
        let path = b.path().await;
        assert!(path.starts_with("/backtests/bt-"), "{path}");
        b.c()
            .wait()
            .at_most(std::time::Duration::from_secs(240))
            .for_element(fantoccini::Locator::Css("iframe#report"))
            .await
            .unwrap();
        assert_eq!(b.text_is("#run-status", "done").await, "done");
        b.shot("live-algo-backtest-done").await;
        let job = l
            .state
            .store
            .job(path.trim_start_matches("/backtests/"))
            .await
            .unwrap()
            .unwrap();
        let input = &job.request["input"];
        assert_eq!(input["capital_pct"], 30.0, "{input}");
        assert_eq!(input["buy_below_pct"], 0.5, "{input}");
        assert_eq!(input["source"], "store", "the demo's stored bars: {input}");
        assert_eq!(input["fill"], "next-open", "{input}");
        // The bundled bars end on 2011-03-31: one month back from there.
        assert_eq!(input["end_date"], "2011-03-31", "{input}");
        assert_eq!(input["start_date"], "2011-03-01", "{input}");
        // Tried, not saved: the stored settings and the audit are as they were.
        let kept = l.state.store.algo_config("SPY").await.unwrap().unwrap();
        assert_eq!(kept.capital_pct, 20.0);
        assert!(l
            .state
            .store
            .audit_entries(None, 10)
            .await
            .unwrap()
            .is_empty());
        b.end().await;
    })
    .await;
}
