//! Browser tests: headless Chromium driven through Debian's chromedriver (fantoccini). Each asserts
//! what a user sees and saves a screenshot under `target/screenshots/`.
//!
//! Ignored under plain `cargo test`; `scripts/test` runs them with chromium installed, and there a
//! missing browser fails the test (it never passes silently). The browser helper is in
//! [`crate::driver`]; the live pages' tests (driving `vectura demo`) in `live_browser.rs`.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;

use crate::driver::Browser;
use crate::support::{minute_csv, start, TestServer, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn a_page_without_login_redirects_to_the_login_and_logging_in_returns_there() {
    let s = start().await;
    let b = Browser::start().await;
    b.c().goto(&format!("{}/data", s.base)).await.unwrap();
    assert_eq!(b.path().await, "/login?next=%2Fdata");
    assert_eq!(b.text_is("h1", "Log in").await, "Log in");
    b.shot("login-redirect").await;
    // A wrong password: the message, and still on the login page.
    b.fill("#password", "not the password").await;
    b.click("#login-submit").await;
    assert_eq!(b.text("#login-error").await, "wrong user name or password");
    assert!(b.path().await.starts_with("/login"));
    b.shot("login-wrong-password").await;
    b.fill("#password", PASSWORD).await;
    b.click("#login-submit").await;
    assert_eq!(b.text_is("h1", "Market data").await, "Market data");
    assert_eq!(b.path().await, "/data");
    assert_eq!(b.text_is("header .user", "admin").await, "admin");
    b.shot("logged-in-data").await;
    // Logging out lands on the login page again; the data page redirects once more.
    b.click("#logout").await;
    assert_eq!(b.text_is("h1", "Log in").await, "Log in");
    b.c().goto(&format!("{}/data", s.base)).await.unwrap();
    assert_eq!(b.path().await, "/login?next=%2Fdata");
    b.end().await;
}

fn upload_file(s: &TestServer, name: &str, body: &str) -> PathBuf {
    let p = s.dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn a_bad_field_shows_its_message_next_to_it() {
    let s = start().await;
    let b = Browser::start().await;
    b.login(&s, "/data").await;
    let file = upload_file(&s, "bars.csv", &minute_csv(&[4]));
    b.fill("#import-symbol", "BAD SYMBOL!").await;
    b.c()
        .find(Locator::Css("#import-file"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    b.click("#import-submit").await;
    let msg = b.text(".field-error[data-for=\"symbol\"]").await;
    assert!(
        msg.contains("\"BAD SYMBOL!\"") && msg.contains("give a ticker"),
        "{msg}"
    );
    // Next to the field: the message is the element right after the symbol's label.
    let next_to: bool = b
        .c()
        .execute(
            "return document.querySelector('#import-symbol').closest('label').nextElementSibling === document.querySelector('.field-error[data-for=\"symbol\"]');",
            vec![],
        )
        .await
        .unwrap()
        .as_bool()
        .unwrap();
    assert!(next_to);
    let invalid = b
        .c()
        .find(Locator::Css("#import-symbol"))
        .await
        .unwrap()
        .attr("aria-invalid")
        .await
        .unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));
    assert_eq!(
        b.text(".field-error[data-for=\"tz\"]").await,
        "",
        "other fields show nothing"
    );
    b.shot("validation-message").await;
    // A bad time zone names its own field; nothing was stored meanwhile.
    b.fill("#import-symbol", "TEST").await;
    b.fill("#import-tz", "Mars/Olympus").await;
    b.click("#import-submit").await;
    let msg = b.text(".field-error[data-for=\"tz\"]").await;
    assert!(msg.contains("not a time zone"), "{msg}");
    assert!(s.store.ranges().await.unwrap().is_empty());
    b.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn the_data_page_shows_an_imported_symbols_range() {
    let s = start().await;
    let b = Browser::start().await;
    b.login(&s, "/data").await;
    assert!(b.text("#no-data").await.contains("Nothing is stored yet"));
    let file = upload_file(&s, "test-bars.csv", &minute_csv(&[4, 5, 7]));
    b.fill("#import-symbol", "test").await;
    b.c()
        .find(Locator::Css("#import-file"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    b.click("#import-submit").await;
    // The page reloads with the new row.
    let from = b.text("tr[data-symbol=\"TEST\"] td.from").await;
    let to = b.text("tr[data-symbol=\"TEST\"] td.to").await;
    assert_eq!((from.as_str(), to.as_str()), ("2024-03-04", "2024-03-07"));
    let row = b.text("tr[data-symbol=\"TEST\"]").await;
    assert!(row.contains("1170"), "bars: {row}");
    b.shot("data-imported-range").await;
    // Delete, with the confirmation.
    b.click("tr[data-symbol=\"TEST\"] a.danger").await;
    assert_eq!(b.text_is("h1", "Delete TEST?").await, "Delete TEST?");
    b.fill("#confirm", "TEST").await;
    b.click("#delete-submit").await;
    assert_eq!(
        b.text("#deleted").await,
        "Deleted every stored bar of TEST."
    );
    assert!(s.store.range("TEST").await.unwrap().is_none());
    b.shot("data-deleted").await;
    b.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn a_submitted_backtest_shows_its_progress_reaching_done_and_a_reload_finds_it() {
    let s = start().await;
    let b = Browser::start().await;
    b.login(&s, "/backtests").await;
    assert!(b.text("#no-runs").await.contains("No backtest"));
    b.fill("#f-name", "Browser run").await;
    b.click("#backtest-submit").await;
    assert_eq!(b.text_is("#run-name", "Browser run").await, "Browser run");
    let path = b.path().await;
    assert!(path.starts_with("/backtests/bt-"), "{path}");
    // The live stages, then done: the page reloads with the report.
    b.c()
        .wait()
        .at_most(Duration::from_secs(240))
        .for_element(Locator::Css("iframe#report"))
        .await
        .unwrap();
    assert_eq!(b.text_is("#run-status", "done").await, "done");
    let stages = b.text("#stages").await;
    for label in [
        "Initializing backtest",
        "Processing chunk",
        "Calculating metrics",
        "Completed",
    ] {
        assert!(stages.contains(label), "{label} in {stages}");
    }
    assert!(stages.contains("100 %"), "{stages}");
    b.shot("backtest-done").await;
    // A reload (and a new visit of the list) finds the run.
    b.c().refresh().await.unwrap();
    assert_eq!(b.text_is("#run-status", "done").await, "done");
    b.c().goto(&format!("{}/backtests", s.base)).await.unwrap();
    let id = path.trim_start_matches("/backtests/");
    let row = b.text(&format!("tr[data-run=\"{id}\"]")).await;
    assert!(row.contains("Browser run") && row.contains("done"), "{row}");
    b.shot("backtest-list").await;
    b.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn a_waiting_job_is_cancelled_from_its_page() {
    let s = start().await;
    // Hold the one run slot, so the job waits for it until the user cancels it.
    let slot = s.state.jobs.permits().acquire_owned().await.unwrap();
    let b = Browser::start().await;
    b.login(&s, "/backtests").await;
    b.fill("#f-name", "Cancel me").await;
    b.click("#backtest-submit").await;
    assert_eq!(b.text_is("#run-status", "queued").await, "queued");
    b.shot("backtest-queued").await;
    b.click("#cancel").await;
    b.c()
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#run-status.status-cancelled"))
        .await
        .unwrap();
    assert_eq!(b.text("#run-error").await, "cancelled from the dashboard");
    assert!(
        b.c().find(Locator::Css("#cancel")).await.is_err(),
        "no cancel button any more"
    );
    b.shot("backtest-cancelled").await;
    drop(slot);
    b.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn a_bad_backtest_field_shows_its_message_next_to_it() {
    let s = start().await;
    let b = Browser::start().await;
    b.login(&s, "/backtests").await;
    b.fill("#f-capital_pct", "0").await;
    b.click("#backtest-submit").await;
    let msg = b.text(".field-error[data-for=\"capital_pct\"]").await;
    assert_eq!(
        b.path().await,
        "/backtests",
        "the form page again, with the message"
    );
    assert!(msg.contains("above 0 and at most 100"), "{msg}");
    let next_to: bool = b
        .c()
        .execute(
            "return document.querySelector('#f-capital_pct').closest('label').nextElementSibling === document.querySelector('.field-error[data-for=\"capital_pct\"]');",
            vec![],
        )
        .await
        .unwrap()
        .as_bool()
        .unwrap();
    assert!(next_to);
    b.shot("backtest-validation").await;
    assert!(s.store.jobs("backtest", 10).await.unwrap().is_empty());
    b.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn a_sweeps_heat_map_opens_and_a_set_fills_the_backtest_form() {
    use vectura_store::{NewSweepRun, SweepResult, SweepStatus};
    let s = start().await;
    let id = s
        .store
        .create_sweep_run(&NewSweepRun {
            symbols: vec!["SPY".into()],
            start_date: None,
            end_date: None,
            fill: "NextOpen".into(),
            plan: json!({}),
            set_count: 9,
        })
        .await
        .unwrap();
    let rows: Vec<SweepResult> = (0..9u64)
        .map(|i| {
            let bb = [1.0, 2.0, 4.0][(i % 3) as usize];
            let sa = [10.0, 18.0, 30.0][(i / 3) as usize];
            SweepResult {
                set_index: i,
                params: json!({"symbol": "SPY", "buy_below_pct": bb, "sell_above_pct": sa}),
                metrics: json!({"total_return_pct": i as f64 - 3.0}),
            }
        })
        .collect();
    s.store.append_sweep_results(&id, &rows).await.unwrap();
    s.store
        .finish_sweep_run(&id, SweepStatus::Done, None)
        .await
        .unwrap();
    let b = Browser::start().await;
    b.login(&s, "/sweeps").await;
    b.click(&format!("a[href=\"/sweeps/{id}\"]")).await;
    // plotly.js (served by us) draws the map: its SVG and the three listed values on each axis.
    b.c()
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#heatmap-0 .main-svg"))
        .await
        .unwrap();
    let ticks = b.text("#heatmap-0 .xaxislayer-above").await;
    for v in ["1", "2", "4"] {
        assert!(ticks.contains(v), "{ticks}");
    }
    assert!(b.text("#top").await.contains("5"), "the best set is listed");
    b.shot("sweep-heatmap").await;
    b.click("#heat-labels").await;
    let labels = b.text("#heatmap-0").await;
    assert!(labels.contains("5"), "values as labels: {labels}");
    b.shot("sweep-heatmap-labels").await;
    // Where a click on a cell goes: the backtest form filled with that set.
    b.c()
        .goto(&format!("{}/backtests?sweep={id}&set=8", s.base))
        .await
        .unwrap();
    b.text_is("h1", "Backtests").await;
    assert_eq!(b.value("#f-buy_below_pct").await.as_deref(), Some("4"));
    assert_eq!(b.value("#f-sell_above_pct").await.as_deref(), Some("30"));
    assert_eq!(b.value("#f-name").await.as_deref(), Some("Sweep set 8"));
    b.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn a_running_backtest_shows_its_progress_and_is_cancelled_from_its_page() {
    let s = start().await;
    // Running jobs hold at their first progress event from inside the engine's run, until the
    // user's cancel: the click lands while the engine runs, however fast the machine is.
    s.state.jobs.pause();
    let b = Browser::start().await;
    b.login(&s, "/backtests").await;
    // The longest bundled bars, every bar of the day (extended and overnight included).
    b.fill("#f-name", "Cancel me running").await;
    b.click("details summary").await;
    b.c()
        .find(Locator::Css("#f-session option[value=\"all\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.click("#backtest-submit").await;
    assert_eq!(b.text_is("#run-status", "running").await, "running");
    let stage = b
        .text_until("#stages li[data-stage=\"working_on_chunk\"]", |t| {
            t.contains("Processing chunk") && !t.contains(" 0 %") && !t.contains("100 %")
        })
        .await;
    assert!(
        stage.contains("Processing chunk") && stage.contains('%'),
        "{stage}"
    );
    b.shot("backtest-running").await;
    b.click("#cancel").await;
    b.c()
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("#run-status.status-cancelled"))
        .await
        .unwrap();
    assert_eq!(b.text("#run-error").await, "cancelled from the dashboard");
    assert!(
        b.c().find(Locator::Css("iframe#report")).await.is_err(),
        "no report"
    );
    b.shot("backtest-cancelled-running").await;
    // Nothing of the run was stored.
    let jobs = s.store.jobs("backtest", 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    let job = s.store.job(&jobs[0].id).await.unwrap().unwrap();
    assert_eq!(job.status.as_str(), "cancelled");
    assert!(job.result.is_none());
    s.state.jobs.resume();
    b.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test"]
async fn a_sweep_submitted_from_the_form_reaches_done_and_opens_its_heat_map() {
    let s = start().await;
    let b = Browser::start().await;
    b.login(&s, "/sweeps").await;
    // A bad range first: its message next to the field, nothing started.
    b.fill("#s-params-buy_below_pct", "3:1:1").await;
    b.click("#sweep-submit").await;
    let msg = b
        .text(".field-error[data-for=\"params.buy_below_pct\"]")
        .await;
    assert!(msg.contains("step > 0"), "{msg}");
    b.shot("sweep-validation").await;
    assert!(s.store.jobs("sweep", 10).await.unwrap().is_empty());
    b.fill("#s-name", "Form sweep").await;
    // Date inputs take their value in ISO form from script (typing depends on the locale).
    b.c()
        .execute(
            "document.querySelector('#s-start_date').value = '2011-01-03'; document.querySelector('#s-end_date').value = '2011-01-31';",
            vec![],
        )
        .await
        .unwrap();
    b.fill("#s-params-buy_below_pct", "1:3:1").await;
    b.fill("#s-params-sell_above_pct", "10,20").await;
    b.click("#sweep-submit").await;
    assert_eq!(b.text_is("#run-name", "Form sweep").await, "Form sweep");
    b.c()
        .wait()
        .at_most(Duration::from_secs(240))
        .for_element(Locator::Css("#run-status.status-done"))
        .await
        .unwrap();
    assert!(b.text("#job-message").await.contains("6 sets"));
    b.shot("sweep-job-done").await;
    b.click("#job-result").await;
    b.c()
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#heatmap-0 .main-svg"))
        .await
        .unwrap();
    let ticks = b.text("#heatmap-0 .xaxislayer-above").await;
    for v in ["1", "2", "3"] {
        assert!(ticks.contains(v), "{ticks}");
    }
    b.shot("sweep-form-heatmap").await;
    b.end().await;
}
