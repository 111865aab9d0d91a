//! Issue 17's process-level proofs: the `vectura trade` binary, on the broker's clock (`--clock
//! broker`), against the emulator replaying a real INDA session (2023-07-10, from the repository's
//! fixture), over HTTP in Alpaca's wire format.
//!
//! - Parity: the uninterrupted replay trades as `vectura backtest --fill next-open` on the same bars
//!   (same trades, prices, shares, open lots).
//! - SIGKILL trials: 50 seeded trials, each killing the process twice (once at a crash point inside
//!   the binary, `VECTURA_CRASH_AT`, once by SIGKILL at a random moment) and restarting it: no order
//!   twice in the emulator's orders log, every fill applied, the final state the uninterrupted run's.
//!   SQLite here, Postgres below.
//!
//! The emulator runs in this process with its replay clock stopped: the test moves it bar by bar and
//! waits for the trader's `step <time>` line, so a killed trader misses no bar while it is down (an
//! outage on a running clock loses bars by design, and then the states would rightly differ).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde_json::Value;
use vectura_broker::alpaca::{AlpacaClient, AlpacaConfig};
use vectura_broker::Broker;
use vectura_emulator::{Config, Emulator, EmulatorHandle, TradingConfig};
use vectura_store::{AlgoConfig, RiskLimits, Store};

use crate::common::{bin, fixtures, own_data_dir, scratch, secs, vectura};

const KEY: &str = "PKREPLAYTEST";
const SECRET: &str = "replay-secret-never-logged";
const SYM: &str = "INDA";
/// The session replayed: INDA's first in the fixture.
const DAY: &str = "2023-07-10";

/// The grid the trader runs and the backtest is given (busy on INDA's cents-wide minute moves).
const GRID: [(&str, f64); 6] = [
    ("capital-pct", 20.0),
    ("buy-below-pct", 0.05),
    ("sell-above-pct", 0.08),
    ("buy-after-sell-pct", 0.1),
    ("cash-floor", 50.0),
    ("order-gap-pct", 0.02),
];

fn day() -> NaiveDate {
    DAY.parse().unwrap()
}

/// The session's open and close, Unix s.
fn session() -> (i64, i64) {
    let s = vectura_core::calendar::session(day()).unwrap();
    (s.open, s.close)
}

/// The fixture's lines of [`DAY`] (extended hours included), as a CSV of its own: the emulator
/// loads one day instead of two years, once per trial.
fn session_file(dir: &Path) -> PathBuf {
    let src = fixtures().join("INDA_1min_2023-07-10_to_2025-07-07.csv.gz");
    let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(src).unwrap());
    let mut text = String::new();
    std::io::Read::read_to_string(&mut gz, &mut text).unwrap();
    let mut lines = text.lines();
    let mut out = String::from(lines.next().unwrap());
    out.push('\n');
    for l in lines.filter(|l| l.starts_with(DAY)) {
        out.push_str(l);
        out.push('\n');
    }
    let p = dir.join("INDA-session.csv");
    std::fs::write(&p, out).unwrap();
    p
}

/// Where the trader's state lives.
#[derive(Clone)]
enum Db {
    Sqlite,
    /// A schema of its own on the Postgres test server.
    Postgres {
        base: String,
        schema: String,
    },
}

/// One replay: the emulator (in this process), the store's URL, the orders log, the runtime.
struct Replay {
    // The emulator stops before the runtime it serves on.
    _emu: Emulator,
    h: EmulatorHandle,
    base: String,
    db_url: String,
    log: PathBuf,
    dir: PathBuf,
    rt: tokio::runtime::Runtime,
}

fn pg_url(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

fn replay(tag: &str, db: &Db, start: i64) -> Replay {
    let dir = scratch(&format!("replay-{tag}"));
    let file = session_file(&dir);
    let log = dir.join("orders.jsonl");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emu = rt
        .block_on(Emulator::start(Config {
            keys: Some(vec![(KEY.into(), SECRET.into())]),
            trading: TradingConfig {
                replay: vec![(SYM.into(), file)],
                orders_log: Some(log.clone()),
                ..TradingConfig::default()
            },
            ..Config::default()
        }))
        .unwrap();
    let h = emu.handle();
    // The replay clock stands still from here: the test moves it bar by bar.
    h.set_time(chrono::DateTime::from_timestamp(start, 0).unwrap());
    let db_url = match db {
        Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("trader.db").display()),
        Db::Postgres { base, schema } => pg_url(base, schema),
    };
    rt.block_on(async {
        let store = Store::open(&db_url).await.unwrap();
        let g: HashMap<&str, f64> = GRID.iter().copied().collect();
        store
            .upsert_algo_config(
                SYM,
                &AlgoConfig {
                    capital_pct: g["capital-pct"],
                    buy_below_pct: g["buy-below-pct"],
                    sell_above_pct: g["sell-above-pct"],
                    buy_after_sell_pct: g["buy-after-sell-pct"],
                    cash_floor: g["cash-floor"],
                    order_gap_pct: g["order-gap-pct"],
                },
            )
            .await
            .unwrap();
        store
            .set_trade_controls(SYM, true, &RiskLimits::default())
            .await
            .unwrap();
        store.close().await;
    });
    Replay {
        base: emu.base_url(),
        rt,
        _emu: emu,
        h,
        db_url,
        log,
        dir,
    }
}

/// A running `vectura trade --clock broker`, its stdout lines arriving on a channel.
struct Trader {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: PathBuf,
}

fn spawn(r: &Replay, crash: Option<&str>, n: usize) -> Trader {
    let stderr = r.dir.join(format!("trader-{n}.log"));
    let mut cmd = Command::new(bin());
    cmd.args(["trade", "--clock", "broker"])
        .env("VECTURA_DATA_DIR", own_data_dir())
        .env("DATABASE_URL", &r.db_url)
        .env("APCA_API_KEY_ID", KEY)
        .env("APCA_API_SECRET_KEY", SECRET)
        .env("APCA_API_BASE_URL", &r.base)
        .env("APCA_API_DATA_URL", &r.base)
        .env("RUST_LOG", "info")
        .env_remove("VECTURA_CRASH_AT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap());
    if let Some(c) = crash {
        cmd.env("VECTURA_CRASH_AT", c);
    }
    let mut child = cmd.spawn().expect("vectura starts");
    let out = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    Trader {
        child,
        lines,
        stderr,
    }
}

impl Trader {
    /// Waits for the step at broker time `t`; false when the process ended first (killed itself at
    /// a crash point, or was killed).
    fn stepped(&mut self, t: i64) -> bool {
        let want = format!(
            "step {}",
            chrono::DateTime::from_timestamp(t, 0)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%SZ")
        );
        loop {
            match self.lines.recv_timeout(Duration::from_secs(120)) {
                Ok(l) if l.starts_with(&want) => return true,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let st = self.child.wait().unwrap();
                    let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
                    // Only a kill is an expected end; an error exit is a failure.
                    assert!(
                        st.code().is_none(),
                        "vectura trade exited with {st} before {want}: {log}"
                    );
                    return false;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "no {want} from vectura trade in 120 s: {}",
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                ),
            }
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kill in a trial.
#[derive(Debug, Clone)]
enum Kill {
    /// `VECTURA_CRASH_AT` of the first process.
    At(String),
    /// SIGKILL `delay` after the clock reached bar `bar` (the trader is then mid-step, or between).
    Random { bar: usize, delay: Duration },
}

/// What a replay ends with.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// The emulator's executions: (time, side, shares, price).
    trades: Vec<(i64, String, f64, f64)>,
    /// The run's open lots in the store: (opened, price, shares).
    lots: Vec<(i64, f64, f64)>,
}

/// Facts of a replay beyond its outcome.
struct Facts {
    /// Processes that ended by a kill.
    kills: usize,
    /// Orders created at the emulator, per client order id.
    created: HashMap<String, usize>,
    /// Median real time from the clock's move to the trader's step line.
    step: Duration,
    /// The first process (the one with `VECTURA_CRASH_AT`) killed itself at its crash point.
    crashed_at_point: bool,
}

fn f(d: vectura_broker::Decimal) -> f64 {
    d.to_string().parse().unwrap()
}

/// Order requests in the orders log that created an order, per client order id.
fn created(log: &Path) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for l in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let v: Value = serde_json::from_str(l).expect("a JSON line");
        if v["created"] == true {
            *n.entry(v["client_order_id"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    n
}

/// Replays `bars` bar closes from the replay's start through the binary with `kills`, restarting
/// the trader after each; then reads the outcome from the emulator and the store.
fn drive(r: &Replay, bars: usize, kills: &[Kill]) -> (Outcome, Facts) {
    let crash = kills.iter().find_map(|k| match k {
        Kill::At(s) => Some(s.as_str()),
        _ => None,
    });
    let mut spawned = 0;
    let mut t = spawn(r, crash, spawned);
    let mut kills_n = 0;
    let mut crashed_at_point = false;
    let mut steps = Vec::new();
    let (_, close) = session();
    for i in 0..bars {
        let Some(now) = r.h.step().map(|t| t.timestamp()) else {
            break;
        };
        if now > close {
            break;
        }
        let moved = Instant::now();
        for k in kills {
            if let Kill::Random { bar, delay } = k {
                if *bar == i {
                    std::thread::sleep(*delay);
                    t.kill();
                    kills_n += 1;
                    spawned += 1;
                    t = spawn(r, None, spawned);
                }
            }
        }
        while !t.stepped(now) {
            crashed_at_point |= spawned == 0;
            kills_n += 1;
            spawned += 1;
            t = spawn(r, None, spawned);
        }
        steps.push(moved.elapsed());
        // Orders the step sent fill at this bar's open (next-open), as the engine has them.
        r.h.process();
    }
    t.kill();
    steps.sort();
    let (trades, lots, applied) = r.rt.block_on(async {
        let mut cfg = AlpacaConfig::new(KEY, SECRET)
            .with_trading_url(&r.base)
            .with_data_url(&r.base);
        cfg.rate_limit_per_minute = 1_000_000;
        let c = AlpacaClient::new(cfg).unwrap();
        let mut x: Vec<_> = c
            .executions(None)
            .await
            .unwrap()
            .into_iter()
            .map(|x| {
                (
                    x.time.timestamp(),
                    format!("{:?}", x.side).to_lowercase(),
                    f(x.qty),
                    f(x.price),
                    x.id,
                )
            })
            .collect();
        x.sort_by_key(|e| e.0);
        let store = Store::open(&r.db_url).await.unwrap();
        let run = store.active_run(SYM).await.unwrap().expect("an active run");
        let g = run.grid_run().unwrap();
        // No fill lost: every execution at the broker was applied by the run, and saved as such.
        for e in &x {
            assert!(g.is_applied(&e.4), "execution {} never applied", e.4);
            assert!(
                run.executions.contains(&e.4),
                "execution {} not in at_executions",
                e.4
            );
        }
        let lots: Vec<_> = g
            .grid()
            .lots()
            .iter()
            .map(|l| (l.opened, l.price, l.shares))
            .collect();
        // The broker's position is the lots'.
        let pos: f64 = c.positions().await.unwrap().iter().map(|p| f(p.qty)).sum();
        let held: f64 = lots.iter().map(|l| l.2).sum();
        assert!((pos - held).abs() < 1e-9, "position {pos} vs lots {held}");
        store.close().await;
        (
            x.into_iter()
                .map(|e| (e.0, e.1, e.2, e.3))
                .collect::<Vec<_>>(),
            lots,
            run.executions.len(),
        )
    });
    assert_eq!(applied, trades.len(), "executions saved vs at the broker");
    let facts = Facts {
        kills: kills_n,
        created: created(&r.log),
        step: steps.get(steps.len() / 2).copied().unwrap_or_default(),
        crashed_at_point,
    };
    (Outcome { trades, lots }, facts)
}

/// `vectura backtest --fill next-open --json` on the session's bars, with the trader's grid.
fn backtest(file: &Path) -> Outcome {
    let mut args: Vec<String> = [
        "backtest",
        "--json",
        "--fill",
        "next-open",
        "--pdt",
        "off",
        "--symbol",
        SYM,
        "--start-date",
        DAY,
        "--end-date",
        DAY,
        "--start-capital",
        "100000",
        "--contribution-amount",
        "0",
        "--data",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(file.display().to_string());
    for (k, v) in GRID {
        args.push(format!("--{k}"));
        args.push(v.to_string());
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = vectura(&a);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let num = |v: &Value| v.as_f64().unwrap();
    Outcome {
        trades: r["trades"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    secs(t["time"].as_str().unwrap()),
                    t["side"].as_str().unwrap().to_string(),
                    num(&t["shares"]),
                    num(&t["price"]),
                )
            })
            .collect(),
        lots: r["open_lots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    secs(l["time"].as_str().unwrap()),
                    num(&l["price"]),
                    num(&l["shares"]),
                )
            })
            .collect(),
    }
}

/// Bars in the session (bar closes from the open to the close).
fn session_bars() -> usize {
    let (open, close) = session();
    ((close - open) / 60) as usize
}

#[test]
fn a_replayed_session_through_the_trade_binary_trades_as_the_next_open_backtest() {
    let (open, _) = session();
    let r = replay("parity", &Db::Sqlite, open);
    let want = backtest(&r.dir.join("INDA-session.csv"));
    assert!(
        want.trades.len() >= 6,
        "the session should trade: {:?}",
        want.trades
    );
    let (got, facts) = drive(&r, session_bars(), &[]);
    for (k, (a, b)) in got.trades.iter().zip(&want.trades).enumerate() {
        assert_eq!(a, b, "trade {k} (vectura trade, vectura backtest)");
    }
    assert_eq!(got.trades.len(), want.trades.len(), "trade count");
    assert_eq!(got.lots, want.lots, "open lots");
    assert!(
        facts.created.values().all(|&n| n == 1),
        "{:?}",
        facts.created
    );
    assert_eq!(facts.created.len(), got.trades.len(), "one order per trade");
    eprintln!(
        "parity: {} trades, {} open lots, median step {:?}",
        got.trades.len(),
        got.lots.len(),
        facts.step
    );
    let _ = std::fs::remove_dir_all(&r.dir);
}

/// A small seeded generator (SplitMix64): the trials are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The window the trials replay: the bar closes from [`WINDOW_START`] minutes after the open on, the
/// session's busiest stretch for this grid (its first buys, sells and re-buys).
const WINDOW_START: i64 = 0;
const WINDOW_BARS: usize = 24;

/// `trials` seeded trials of the window, each with a crash-point kill and a random-time kill, against
/// the uninterrupted run of the same window.
fn sigkill_trials(name: &str, db: impl Fn(usize) -> Db, trials: usize, seed: u64) {
    let (open, _) = session();
    let start = open + WINDOW_START * 60;
    let clean = replay(&format!("{name}-clean"), &db(usize::MAX), start);
    let (want, facts) = drive(&clean, WINDOW_BARS, &[]);
    let orders = facts.created.len() as u64;
    let fills = want.trades.len() as u64;
    assert!(
        orders >= 4 && fills >= 4,
        "the window should trade: {orders} orders, {fills} fills"
    );
    let _ = std::fs::remove_dir_all(&clean.dir);
    let mut rng = Rng(seed);
    let mut reached: BTreeMap<&str, usize> = BTreeMap::new();
    let mut kills = 0;
    let began = Instant::now();
    for trial in 0..trials {
        let (point, n) = match trial % 4 {
            0 => ("after-intent-saved", rng.below(orders)),
            1 => ("after-submit", rng.below(orders)),
            2 => ("before-fill-saved", rng.below(fills)),
            // Killed with the fill's transaction open: its rows written, the commit not made.
            _ => ("inside-fill-transaction", rng.below(fills)),
        };
        let at = format!("{point}:{n}");
        // Up to three median steps: before, inside or after the step the clock move starts.
        let delay = Duration::from_micros(rng.below(3 * facts.step.as_micros() as u64 + 1));
        let bar = rng.below(WINDOW_BARS as u64) as usize;
        let plan = [Kill::At(at.clone()), Kill::Random { bar, delay }];
        let r = replay(&format!("{name}-trial-{trial}"), &db(trial), start);
        let (got, f) = drive(&r, WINDOW_BARS, &plan);
        let twice: Vec<_> = f.created.iter().filter(|(_, &n)| n > 1).collect();
        assert!(
            twice.is_empty(),
            "trial {trial} (seed {seed}, {plan:?}): orders sent twice: {twice:?}"
        );
        assert_eq!(
            got, want,
            "trial {trial} (seed {seed}, {plan:?}): the final state differs from the uninterrupted run"
        );
        assert_eq!(
            f.created.len() as u64,
            orders,
            "trial {trial}: orders placed"
        );
        // The first process ends by its crash point unless the random kill came first.
        if f.crashed_at_point {
            *reached.entry(point).or_default() += 1;
        }
        kills += f.kills;
        let _ = std::fs::remove_dir_all(&r.dir);
    }
    eprintln!(
        "{trials} trials, {kills} kills ({reached:?} crash points reached), {:?}",
        began.elapsed()
    );
    assert!(kills >= trials, "{kills} kills in {trials} trials");
    for p in [
        "after-intent-saved",
        "after-submit",
        "before-fill-saved",
        "inside-fill-transaction",
    ] {
        // About a quarter of the trials aim at each point, and the random kill comes first in some.
        assert!(
            reached.get(p).copied().unwrap_or(0) >= trials / 16,
            "{p} was reached in too few trials: {reached:?}"
        );
    }
}

#[test]
fn fifty_sigkill_trials_of_the_trade_binary_send_no_order_twice_lose_no_fill_and_end_as_the_uninterrupted_run(
) {
    sigkill_trials("sqlite", |_| Db::Sqlite, 50, 17);
}

#[test]
#[ignore = "needs PostgreSQL: run scripts/test"]
fn fifty_sigkill_trials_on_postgres_send_no_order_twice_lose_no_fill_and_end_as_the_uninterrupted_run(
) {
    let base = std::env::var("VECTURA_TEST_DATABASE_URL").expect(
        "VECTURA_TEST_DATABASE_URL is not set: point it at a Postgres server (postgres://postgres@127.0.0.1:5432/test) or run scripts/test",
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admin = rt
        .block_on(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&base),
        )
        .unwrap_or_else(|e| {
            panic!("cannot connect to {base}: {e}: start PostgreSQL (scripts/test does)")
        });
    let tag = format!("vk_{}", std::process::id());
    let schema = |i: usize| {
        if i == usize::MAX {
            format!("{tag}_clean")
        } else {
            format!("{tag}_{i}")
        }
    };
    let mut made = Vec::new();
    for i in (0..50).chain([usize::MAX]) {
        rt.block_on(sqlx::raw_sql(&format!("CREATE SCHEMA {}", schema(i))).execute(&admin))
            .unwrap();
        made.push(schema(i));
    }
    let b = base.clone();
    let result = std::panic::catch_unwind(|| {
        sigkill_trials(
            "postgres",
            |i| Db::Postgres {
                base: b.clone(),
                schema: schema(i),
            },
            50,
            1717,
        )
    });
    for s in made {
        let _ = rt.block_on(sqlx::raw_sql(&format!("DROP SCHEMA {s} CASCADE")).execute(&admin));
    }
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
