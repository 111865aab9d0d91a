//! Issue 17's first done-when, in process: a replayed INDA session through the trader against the
//! emulator in replay mode (its clock driven by hand) gives the trades, prices and final state of the
//! backtest with `next-open` fills on the same bars; and a trader stopped as if killed at each of its
//! crash points, then restarted from the store, sends each order exactly once (the emulator's orders
//! log) and ends in the uninterrupted run's state.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use vectura_backtest::{BacktestConfig, FillModel, PdtMode};
use vectura_broker::alpaca::{AlpacaClient, AlpacaConfig};
use vectura_broker::{Broker, Side};
use vectura_core::calendar::{self, SessionPart};
use vectura_core::BarSeries;
use vectura_data::{load_csv_path, LoadOptions};
use vectura_emulator::{Config, Emulator, EmulatorHandle, TradingConfig};
use vectura_store::{AlgoConfig, RiskLimits, Store};
use vectura_strategy::grid::{Grid, GridMode, GridParams};
use vectura_trader::{Clock, CrashPoint, Trader, TraderConfig, TraderError};

const KEY: &str = "PKTRADERTEST";
const SECRET: &str = "trader-secret-not-logged";
const SYM: &str = "INDA";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/fixtures/INDA_1min_2023-07-10_to_2025-07-07.csv.gz")
}

/// A first session of the fixture, 2023-07-10 (EDT: 09:30 is 13:30Z).
fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 7, 10).unwrap()
}

/// Busy enough to trade many times in one session on INDA's cents-wide minute moves.
fn params() -> GridParams {
    GridParams {
        capital_pct: 20.0,
        buy_below_pct: 0.05,
        sell_above_pct: 0.08,
        buy_after_sell_pct: 0.1,
        cash_floor: 50.0,
        order_gap_pct: 0.02,
    }
}

/// The emulator's replay time, as the trader's clock.
struct EmuClock(EmulatorHandle);

impl Clock for EmuClock {
    fn now(&self) -> i64 {
        self.0.now().timestamp()
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "vectura-trader-{tag}-{}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or(0)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Env {
    _emu: Emulator,
    h: EmulatorHandle,
    client: Arc<AlpacaClient>,
    store: Store,
    log: PathBuf,
    _dir: TempDir,
}

async fn env(tag: &str) -> Env {
    let dir = TempDir::new(tag);
    let log = dir.0.join("orders.jsonl");
    let emu = Emulator::start(Config {
        keys: Some(vec![(KEY.into(), SECRET.into())]),
        trading: TradingConfig {
            replay: vec![(SYM.into(), fixture())],
            orders_log: Some(log.clone()),
            ..TradingConfig::default()
        },
        ..Config::default()
    })
    .await
    .unwrap();
    let h = emu.handle();
    // Stop the replay clock at the open: from here the test moves it bar by bar.
    h.set_time(chrono::DateTime::from_timestamp(calendar::session_open_ts(day()), 0).unwrap());
    let base = emu.base_url();
    let mut cfg = AlpacaConfig::new(KEY, SECRET)
        .with_trading_url(&base)
        .with_data_url(&base);
    // The emulator is local: Alpaca's 200-a-minute pacing would only slow the replay down.
    cfg.rate_limit_per_minute = 1_000_000;
    let client = AlpacaClient::new(cfg).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.0.join("t.db").display());
    let store = Store::open(&url).await.unwrap();
    let p = params();
    store
        .upsert_algo_config(
            SYM,
            &AlgoConfig {
                capital_pct: p.capital_pct,
                buy_below_pct: p.buy_below_pct,
                sell_above_pct: p.sell_above_pct,
                buy_after_sell_pct: p.buy_after_sell_pct,
                cash_floor: p.cash_floor,
                order_gap_pct: p.order_gap_pct,
            },
        )
        .await
        .unwrap();
    store
        .set_trade_controls(SYM, true, &RiskLimits::default())
        .await
        .unwrap();
    Env {
        _emu: emu,
        h,
        client: Arc::new(client),
        store,
        log,
        _dir: dir,
    }
}

async fn start(e: &Env) -> Trader {
    let (t, _) = Trader::start(
        e.store.clone(),
        e.client.clone(),
        e.client.clone(),
        Arc::new(EmuClock(e.h.clone())),
        TraderConfig::default(),
    )
    .await
    .unwrap();
    t
}

/// (time, side, shares, price) of a trade.
type Trades = Vec<(i64, Side, f64, f64)>;

/// What a run ends with: the broker's executions, and the grid's open lots (time, price, shares).
#[derive(Debug, PartialEq)]
struct Outcome {
    trades: Trades,
    lots: Vec<(i64, f64, f64)>,
}

fn f(d: vectura_broker::Decimal) -> f64 {
    d.to_string().parse().unwrap()
}

/// Drives the session bar by bar: at each bar close the trader steps. `crashes` are (bar index, crash
/// point) pairs, armed in turn from that bar on until reached; there the trader is dropped where it
/// stopped and restarted from the store.
async fn drive(e: &Env, crashes: &[(usize, CrashPoint)]) -> (Outcome, usize) {
    drive_with(e, crashes, |_, _| {}).await
}

/// [`drive`], calling `before(i, handle)` before the trader's step at bar `i` (to switch faults on).
async fn drive_with(
    e: &Env,
    crashes: &[(usize, CrashPoint)],
    before: impl Fn(usize, &EmulatorHandle),
) -> (Outcome, usize) {
    let close = calendar::session(day()).unwrap().close;
    let mut t = start(e).await;
    let mut restarts = 0;
    let mut i = 0usize;
    let mut next_crash = 0;
    loop {
        let now = e.h.step().expect("the replay has bars").timestamp();
        if now > close {
            break;
        }
        if !t.crash_armed() && next_crash < crashes.len() && crashes[next_crash].0 <= i {
            t.crash_at(crashes[next_crash].1, 0);
            eprintln!("bar {i}: armed {:?}", crashes[next_crash].1);
            next_crash += 1;
        }
        before(i, &e.h);
        loop {
            match t.step().await {
                Ok(_) => break,
                Err(TraderError::Crashed(p)) => {
                    eprintln!("bar {i}: crashed at {p:?}");
                    // As if killed: everything in memory is gone; the store and the broker remain.
                    drop(t);
                    restarts += 1;
                    t = start(e).await;
                }
                Err(err) => panic!("step at {now}: {err}"),
            }
        }
        e.h.process();
        i += 1;
    }
    let mut trades: Trades = e
        .client
        .executions(None)
        .await
        .unwrap()
        .iter()
        .map(|x| (x.time.timestamp(), x.side, f(x.qty), f(x.price)))
        .collect();
    trades.sort_by_key(|x| x.0);
    let g = t.run(SYM).unwrap().grid();
    let lots = g
        .lots()
        .iter()
        .map(|l| (l.opened, l.price, l.shares))
        .collect();
    (Outcome { trades, lots }, restarts)
}

fn session_bars() -> BarSeries {
    let l = load_csv_path(&fixture(), &LoadOptions::default()).unwrap();
    let s = l.series;
    s.filter(|i| {
        calendar::classify(s.ts[i]) == SessionPart::Regular && calendar::ny_date(s.ts[i]) == day()
    })
}

fn backtest() -> Outcome {
    let bars = session_bars();
    let mut bt = BacktestConfig::new(SYM, day(), day());
    bt.start_capital = 100_000.0;
    bt.fill = FillModel::NextOpen;
    bt.pdt = PdtMode::Off;
    bt.record_series = false;
    let mut g = Grid::new(
        params(),
        GridMode {
            compat_v1: false,
            share_scale: 1e4,
            record_lines: false,
        },
    );
    let r = vectura_backtest::run(&bars, &mut g, &bt).unwrap();
    Outcome {
        trades: r
            .trades
            .iter()
            .map(|t| (t.ts, t.side, t.shares, t.price))
            .collect(),
        lots: r
            .open_lots
            .iter()
            .map(|l| (l.ts, l.price, l.shares))
            .collect(),
    }
}

/// Order requests in the orders log that created an order, per client order id.
fn created(log: &Path) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for l in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
        if v["created"] == true {
            *n.entry(v["client_order_id"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_session_through_the_trader_trades_as_the_next_open_backtest() {
    let want = backtest();
    assert!(
        want.trades.len() >= 6,
        "the session should trade: {} trades",
        want.trades.len()
    );
    let e = env("parity").await;
    let (got, _) = drive(&e, &[]).await;
    for (k, (a, b)) in got.trades.iter().zip(&want.trades).enumerate() {
        assert_eq!(a, b, "trade {k} (trader, backtest)");
    }
    assert_eq!(got.trades.len(), want.trades.len(), "trade count");
    assert_eq!(got.lots, want.lots, "open lots");
    let per = created(&e.log);
    assert!(per.values().all(|&n| n == 1), "{per:?}");
    // The broker's position is the lots'.
    let pos: f64 = e
        .client
        .positions()
        .await
        .unwrap()
        .iter()
        .map(|p| f(p.qty))
        .sum();
    let lots: f64 = got.lots.iter().map(|l| l.2).sum();
    assert!((pos - lots).abs() < 1e-9, "{pos} vs {lots}");
    eprintln!(
        "parity: {} trades, {} open lots",
        got.trades.len(),
        got.lots.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trader_killed_at_each_crash_point_and_restarted_sends_each_order_once_and_ends_as_an_uninterrupted_run(
) {
    let clean = env("clean").await;
    let (want, _) = drive(&clean, &[]).await;
    assert!(want.trades.len() >= 6, "{}", want.trades.len());
    // Crashes spread over the session, at every point, several times each.
    let points = [
        CrashPoint::AfterIntentSaved,
        CrashPoint::AfterSubmit,
        CrashPoint::BeforeFillSaved,
    ];
    let crashes: Vec<(usize, CrashPoint)> = (0..30).map(|k| (5 + k * 12, points[k % 3])).collect();
    let e = env("crash").await;
    let (got, restarts) = drive(&e, &crashes).await;
    assert!(restarts >= 9, "only {restarts} crash points were reached");
    let per = created(&e.log);
    assert!(
        per.values().all(|&n| n == 1),
        "an order was sent twice: {per:?}"
    );
    assert_eq!(per.len(), created(&clean.log).len(), "orders placed");
    assert_eq!(got, want);
    eprintln!("restart: {restarts} restarts, {} trades", got.trades.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_saved_but_never_sent_is_dropped_once_its_bar_passed_and_its_id_is_never_reused()
{
    let e = env("drop").await;
    let close = calendar::session(day()).unwrap().close;
    let mut t = start(&e).await;
    t.crash_at(CrashPoint::AfterIntentSaved, 0);
    // Step until the crash: an intent saved, its order not sent.
    loop {
        let now = e.h.step().unwrap().timestamp();
        assert!(now <= close, "no intent in the whole session");
        match t.step().await {
            Ok(_) => e.h.process(),
            Err(TraderError::Crashed(_)) => break,
            Err(err) => panic!("{err}"),
        }
    }
    drop(t);
    let orders = e.store.orders(SYM).await.unwrap();
    let lost = orders.last().unwrap().clone();
    assert_eq!(lost.status, "intent");
    // Down for a bar: when it restarts, that bar is no longer the current one.
    e.h.step().unwrap();
    let mut t = start(&e).await;
    let row = e.store.order(&lost.client_order_id).await.unwrap().unwrap();
    assert_eq!(row.status, "dropped", "{row:?}");
    assert!(
        !created(&e.log).contains_key(&lost.client_order_id),
        "a dropped intent never reaches the broker"
    );
    let run = t.run(SYM).unwrap();
    assert!(run.grid().pending().is_empty(), "its trigger re-armed");
    // Trading goes on with new ids only.
    for _ in 0..60 {
        e.h.step().unwrap();
        t.step().await.unwrap();
        e.h.process();
    }
    let per = created(&e.log);
    assert!(per.values().all(|&n| n == 1), "{per:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_order_behind_the_traders_back_halts_the_symbol_and_the_halt_survives_a_restart() {
    let e = env("manual").await;
    let mut t = start(&e).await;
    for _ in 0..20 {
        e.h.step().unwrap();
        t.step().await.unwrap();
        e.h.process();
    }
    let manual = vectura_broker::OrderRequest {
        client_order_id: "my-own-order".into(),
        symbol: SYM.into(),
        side: Side::Buy,
        qty: "1".parse().unwrap(),
        order_type: vectura_broker::OrderType::Market,
        time_in_force: vectura_broker::TimeInForce::Day,
        extended_hours: false,
    };
    e.client.submit(&manual).await.unwrap();
    e.h.step().unwrap();
    let r = t.step().await.unwrap();
    assert_eq!(r.halted.len(), 1, "{r:?}");
    let why = &r.halted[0].1;
    assert!(
        why.contains("my-own-order") && why.contains("vectura trade resume --symbol INDA"),
        "{why}"
    );
    let before = created(&e.log).len();
    drop(t);
    let t = start(&e).await;
    assert!(t.status()[0].halted.is_some(), "the halt is persisted");
    let c = e.store.trade_control(SYM).await.unwrap().unwrap();
    assert_eq!(c.halt_reason.as_deref(), Some(why.as_str()));
    // Halted: no more orders from us.
    let mut t = t;
    for _ in 0..30 {
        e.h.step().unwrap();
        t.step().await.unwrap();
        e.h.process();
    }
    assert_eq!(
        created(&e.log).len(),
        before,
        "a halted symbol places nothing"
    );
}

/// Stores the fixture's bars of the session in the store, as `vectura data fetch` would.
async fn store_session(e: &Env) {
    let l = load_csv_path(&fixture(), &LoadOptions::default()).unwrap();
    let s = l.series;
    let bars = s.filter(|i| calendar::ny_date(s.ts[i]) == day());
    e.store.put_day(SYM, day(), &bars).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parity_report_of_a_replayed_session_shows_no_difference() {
    let e = env("parity-report").await;
    let (got, _) = drive(&e, &[]).await;
    store_session(&e).await;
    let r = vectura_trader::parity::parity(&e.store, SYM, day())
        .await
        .unwrap();
    assert_eq!(r.differences, vec![], "{r:#?}");
    assert_eq!(r.model_trades, got.trades.len());
    assert_eq!(r.fills.len(), got.trades.len());
    assert_eq!(r.live_fills, got.trades.len());
    for f in &r.fills {
        assert!(f.slippage_bps.abs() < 1e-6, "{f:?}");
        assert_eq!(f.live_shares, f.model_shares, "{f:?}");
    }
    assert!(r.mean_slippage_bps.abs() < 1e-6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parity_report_of_a_session_with_one_injected_reject_shows_exactly_that_one() {
    let e = env("parity-reject").await;
    let clean = backtest();
    // The emulator refuses the first submission at or after the third trade's decision.
    let third = clean.trades[2].0;
    let (open, _) = (calendar::session_open_ts(day()), ());
    let at = ((third - open) / 60 - 1) as usize;
    let (_, _) = drive_with(&e, &[], |i, h| {
        if i == at {
            h.update_trading_faults(|f| {
                f.reject_next
                    .push_back(vectura_emulator::Rejection::buying_power())
            });
        }
    })
    .await;
    store_session(&e).await;
    let r = vectura_trader::parity::parity(&e.store, SYM, day())
        .await
        .unwrap();
    assert_eq!(r.differences.len(), 1, "{r:#?}");
    match &r.differences[0] {
        vectura_trader::parity::Difference::ModelOnly { why, time, .. } => {
            assert!(why.starts_with("reject: HTTP 403"), "{why}");
            assert!(time.timestamp() >= third, "{time}");
        }
        d => panic!("{d:?}"),
    }
    for f in &r.fills {
        assert!(f.slippage_bps.abs() < 1e-6, "{f:?}");
    }
    // The day-by-day report (the performance page's) tells the same reject for that session.
    let days = vectura_trader::parity::by_day(&e.store, SYM).await.unwrap();
    assert_eq!(days.len(), 1, "{days:#?}");
    let d = days[0].report.as_ref().unwrap();
    assert_eq!(d.differences, r.differences);
    assert_eq!(d.fills, r.fills);
    eprintln!("{r:#?}");
}

/// Stores the fixture's bars of each of `days`, as `vectura data fetch` would.
async fn store_days(e: &Env, days: &[NaiveDate]) {
    let s = load_csv_path(&fixture(), &LoadOptions::default())
        .unwrap()
        .series;
    for &d in days {
        let bars = s.filter(|i| calendar::ny_date(s.ts[i]) == d);
        e.store.put_day(SYM, d, &bars).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_day_by_day_parity_of_a_two_session_run_follows_the_model_across_the_night() {
    let e = env("parity-days").await;
    let second = calendar::next_session(day()).unwrap();
    let mut t = start(&e).await;
    loop {
        let now = e.h.step().expect("the replay has bars").timestamp();
        if now > second.close {
            break;
        }
        t.step().await.unwrap();
        e.h.process();
    }
    let mut per_day: HashMap<NaiveDate, usize> = HashMap::new();
    for x in e.client.executions(None).await.unwrap() {
        *per_day
            .entry(calendar::ny_date(x.time.timestamp()))
            .or_default() += 1;
    }
    assert!(
        per_day.get(&second.date).copied().unwrap_or(0) > 0,
        "the second session traded: {per_day:?}"
    );

    // Only the first day's bars stored: the second has no report, and says what to fetch.
    store_days(&e, &[day()]).await;
    let d = vectura_trader::parity::by_day(&e.store, SYM).await.unwrap();
    assert_eq!(
        d.iter().map(|d| d.date).collect::<Vec<_>>(),
        vec![day(), second.date]
    );
    assert!(d[0].report.is_some(), "{:#?}", d[0]);
    assert!(d[1].report.is_none());
    let why = d[1].missing.as_deref().unwrap();
    assert!(
        why.contains("vectura data fetch --symbol INDA") && why.contains(&second.date.to_string()),
        "{why}"
    );

    store_days(&e, &[second.date]).await;
    let d = vectura_trader::parity::by_day(&e.store, SYM).await.unwrap();
    assert_eq!(d.len(), 2);
    for day in &d {
        let r = day.report.as_ref().unwrap_or_else(|| panic!("{day:#?}"));
        assert_eq!(r.date, day.date);
        assert_eq!(r.differences, vec![], "{r:#?}");
        let live = per_day.get(&day.date).copied().unwrap_or(0);
        assert_eq!(r.fills.len(), live, "{r:#?}");
        assert_eq!(r.model_trades, live, "{r:#?}");
        for f in &r.fills {
            assert_eq!(calendar::ny_date(f.time.timestamp()), day.date, "{f:?}");
            assert!(f.slippage_bps.abs() < 1e-6, "{f:?}");
            assert_eq!(f.live_shares, f.model_shares, "{f:?}");
        }
    }
    // The first day is the first session's own report.
    let one = vectura_trader::parity::parity(&e.store, SYM, day())
        .await
        .unwrap();
    assert_eq!(d[0].report.as_ref().unwrap().fills, one.fills);
}
