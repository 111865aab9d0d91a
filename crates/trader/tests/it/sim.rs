//! Issue 17's deterministic simulation (as FoundationDB and TigerBeetle test themselves): the trader,
//! the simulated venue and the store (SQLite in memory) in one process, driven by one seed through a
//! schedule of faults, then checked: no order twice at the venue, no fill lost, our state the venue's.
//!
//! The seed decides everything: the session window replayed (real INDA minute bars from the
//! fixture), the venue's faults ([`Faults::all`]: rejects, partial and delayed fills, orders that
//! stay new, 5xx and timeouts with no effect, submissions whose reply is lost), the poll-side faults
//! of [`Chaos`] (an executions read that misses the newest fills, repeats some or reorders them: the
//! polling trader's equivalent of dropped, duplicate and reordered stream events), the trader's
//! crashes (at each crash point, and between any two steps: the trader is dropped with everything in
//! memory and restarted from the store), and minutes the trader sleeps through. Any error of a
//! step also ends the process: it restarts from the store, as systemd would restart the daemon.
//!
//! `VECTURA_SIM_SEEDS=N` runs N seeds (default 1 000); `VECTURA_SIM_SEED=S` replays seed S alone,
//! printing each step. A failing seed prints its number and that command.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use vectura_broker::sim::{Faults, Replay, SimBroker, SimConfig};
use vectura_broker::{
    Account, Asset, Broker, BrokerError, CalendarDay, Execution, MarketClock, MarketData, Order,
    OrderFilter, OrderQuery, OrderRequest, OrderStatus, Position, TradeUpdates,
};
use vectura_broker::{BarUpdates, Decimal};
use vectura_core::calendar::{self, SessionPart};
use vectura_core::{Bar, BarSeries};
use vectura_data::{load_csv_path, LoadOptions};
use vectura_store::{AlgoConfig, RiskLimits, Store};
use vectura_strategy::grid::PendingKind;
use vectura_trader::{Clock, CrashPoint, Trader, TraderConfig, TraderError};

const SYM: &str = "INDA";

/// Bars one seed replays (kept small: a thousand seeds run in the suite).
const WINDOW: usize = 20;
/// Fault-free bars after the window, for delayed and partial fills to land before the checks.
const SETTLE: usize = 5;

fn fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/fixtures/INDA_1min_2023-07-10_to_2025-07-07.csv.gz")
}

/// The regular-session bars of 2023-07-10 (loaded once).
fn session() -> &'static BarSeries {
    static S: std::sync::OnceLock<BarSeries> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let day = NaiveDate::from_ymd_opt(2023, 7, 10).unwrap();
        let s = load_csv_path(&fixture(), &LoadOptions::default())
            .unwrap()
            .series;
        s.filter(|i| {
            calendar::classify(s.ts[i]) == SessionPart::Regular && calendar::ny_date(s.ts[i]) == day
        })
    })
}

/// SplitMix64 over (seed, salt, n): each decision a pure function of the seed and its occasion.
fn mix(seed: u64, salt: u64, n: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(salt.wrapping_mul(0xD1B5_4A32_D192_ED03))
        .wrapping_add(n);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether the occasion `(salt, n)` of `seed` strikes with probability `p`.
fn hit(seed: u64, salt: u64, n: u64, p: f64) -> bool {
    ((mix(seed, salt, n) >> 11) as f64 / (1u64 << 53) as f64) < p
}

/// The simulated venue with poll-side faults on its executions reads. Every other call goes
/// straight to the venue (whose own fault schedule is on).
struct Chaos {
    sim: Arc<SimBroker>,
    seed: u64,
    /// Faults on, until the settling bars.
    on: std::sync::atomic::AtomicBool,
    reads: AtomicU64,
    /// The last read missed fills: the next one shows them (a lag that clears on the re-read the
    /// trader makes before it halts on a position difference).
    missed: std::sync::atomic::AtomicBool,
}

const MISS: u64 = 1;
const REPEAT: u64 = 2;
const REORDER: u64 = 3;

#[async_trait]
impl Broker for Chaos {
    fn name(&self) -> &str {
        "sim-chaos"
    }
    async fn account(&self) -> Result<Account, BrokerError> {
        self.sim.account().await
    }
    async fn clock(&self) -> Result<MarketClock, BrokerError> {
        self.sim.clock().await
    }
    async fn calendar(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarDay>, BrokerError> {
        self.sim.calendar(from, to).await
    }
    async fn asset(&self, symbol: &str) -> Result<Asset, BrokerError> {
        self.sim.asset(symbol).await
    }
    async fn submit(&self, req: &OrderRequest) -> Result<Order, BrokerError> {
        self.sim.submit(req).await
    }
    async fn order_by_client_id(&self, coid: &str) -> Result<Option<Order>, BrokerError> {
        self.sim.order_by_client_id(coid).await
    }
    async fn orders(&self, q: &OrderQuery) -> Result<Vec<Order>, BrokerError> {
        self.sim.orders(q).await
    }
    async fn cancel(&self, order_id: &str) -> Result<(), BrokerError> {
        self.sim.cancel(order_id).await
    }
    async fn cancel_all(&self) -> Result<Vec<String>, BrokerError> {
        self.sim.cancel_all().await
    }
    async fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        self.sim.positions().await
    }
    async fn executions(
        &self,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<Execution>, BrokerError> {
        let mut x = self.sim.executions(after).await?;
        if !self.on.load(Ordering::SeqCst) || x.is_empty() {
            return Ok(x);
        }
        let n = self.reads.fetch_add(1, Ordering::SeqCst);
        let s = self.seed;
        let missed = self.missed.swap(false, Ordering::SeqCst);
        if !missed && hit(s, MISS, n, 0.1) {
            self.missed.store(true, Ordering::SeqCst);
            // The newest fills are not visible yet (they are the next read's).
            let k = 1 + (mix(s, MISS + 10, n) % x.len().min(2) as u64) as usize;
            x.truncate(x.len() - k);
        }
        if hit(s, REPEAT, n, 0.1) && !x.is_empty() {
            let i = (mix(s, REPEAT + 10, n) % x.len() as u64) as usize;
            let dup = x[i].clone();
            x.insert(i, dup);
        }
        // A reordered pair (an order's last part, leaves_qty 0, before an earlier one, as a stream
        // consumer can meet them): the order ends when its whole quantity has filled, not at the
        // first part that says nothing is left.
        if hit(s, REORDER, n, 0.1) && x.len() >= 2 {
            let i = (mix(s, REORDER + 10, n) % (x.len() as u64 - 1)) as usize;
            x.swap(i, i + 1);
        }
        Ok(x)
    }
    async fn trade_updates(&self) -> Result<TradeUpdates, BrokerError> {
        self.sim.trade_updates().await
    }
}

#[async_trait]
impl MarketData for Chaos {
    async fn subscribe_bars(&self, symbols: &[String]) -> Result<BarUpdates, BrokerError> {
        self.sim.subscribe_bars(symbols).await
    }
    async fn bars(
        &self,
        symbol: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Bar>, BrokerError> {
        self.sim.bars(symbol, from, to).await
    }
}

struct SimClock(Arc<SimBroker>);

impl Clock for SimClock {
    fn now(&self) -> i64 {
        self.0.now()
    }
}

/// What a seed did (for the summary line).
#[derive(Default, Debug)]
struct Tally {
    restarts: usize,
    crashes: usize,
    orders: usize,
    fills: usize,
}

const CRASH: u64 = 11;
const CRASH_POINT: u64 = 12;
const DROP: u64 = 13;
const SLEEP: u64 = 14;

async fn start(
    store: &Store,
    venue: &Arc<Chaos>,
    sim: &Arc<SimBroker>,
) -> Result<Trader, TraderError> {
    Trader::start(
        store.clone(),
        venue.clone(),
        venue.clone(),
        Arc::new(SimClock(sim.clone())),
        TraderConfig::default(),
    )
    .await
    .map(|(t, _)| t)
}

/// Starts the trader, restarting while the venue's faults fail the start (bounded: a start that
/// fails 50 times in a row is a finding).
async fn start_retrying(
    store: &Store,
    venue: &Arc<Chaos>,
    sim: &Arc<SimBroker>,
    tally: &mut Tally,
) -> Result<Trader, String> {
    let mut last = String::new();
    for _ in 0..50 {
        match start(store, venue, sim).await {
            Ok(t) => return Ok(t),
            Err(TraderError::Broker(e)) => last = e.to_string(),
            Err(e) => return Err(format!("start: {e}")),
        }
        tally.restarts += 1;
    }
    Err(format!("the trader never started: {last}"))
}

/// How a seed failed: a halt (the trader failing closed) or anything else.
#[derive(Debug)]
enum Failure {
    Halted(String),
    Other(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Failure {
        Failure::Other(s)
    }
}

async fn run_seed(seed: u64, verbose: bool) -> Result<Tally, Failure> {
    let bars = session();
    let first = (mix(seed, 0, 0) % (bars.len() - WINDOW - SETTLE) as u64) as usize;
    let window = bars.filter(|i| i >= first && i < first + WINDOW + SETTLE);
    let mut cfg = SimConfig::new(Decimal::from(100_000));
    cfg.start = window.ts[0] - 60;
    cfg.share_scale = 1e4;
    cfg.faults = Faults::all(seed);
    let sim = Arc::new(SimBroker::new(cfg).map_err(|e| e.to_string())?);
    let sim_err = |e: vectura_broker::sim::SimError| Failure::Other(e.to_string());
    let venue = Arc::new(Chaos {
        sim: sim.clone(),
        seed,
        on: true.into(),
        reads: AtomicU64::new(0),
        missed: false.into(),
    });
    let store = Store::open("sqlite::memory:")
        .await
        .map_err(|e| e.to_string())?;
    store
        .upsert_algo_config(
            SYM,
            &AlgoConfig {
                capital_pct: 20.0,
                buy_below_pct: 0.05,
                sell_above_pct: 0.08,
                buy_after_sell_pct: 0.1,
                cash_floor: 50.0,
                order_gap_pct: 0.02,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    store
        .set_trade_controls(SYM, true, &RiskLimits::default())
        .await
        .map_err(|e| e.to_string())?;
    let mut tally = Tally::default();
    let mut replay = Replay::new(vec![(SYM.to_string(), window)]);
    let mut t = start_retrying(&store, &venue, &sim, &mut tally).await?;
    let points = [
        CrashPoint::AfterIntentSaved,
        CrashPoint::AfterSubmit,
        CrashPoint::BeforeFillSaved,
        CrashPoint::InsideFillTransaction,
    ];
    let mut i = 0u64;
    while sim.step(&mut replay).map_err(sim_err)?.is_some() {
        let faulty = (i as usize) < WINDOW;
        if !faulty {
            sim.set_faults(Faults::none());
            venue.on.store(false, Ordering::SeqCst);
        }
        if faulty && hit(seed, DROP, i, 0.05) {
            // Killed between two steps: everything in memory goes.
            drop(t);
            tally.restarts += 1;
            t = start_retrying(&store, &venue, &sim, &mut tally).await?;
        }
        if faulty && hit(seed, SLEEP, i, 0.05) {
            // The trader slept through this minute (a long GC, a suspended VM).
            i += 1;
            continue;
        }
        if faulty && !t.crash_armed() && hit(seed, CRASH, i, 0.15) {
            let p = points[(mix(seed, CRASH_POINT, i) % points.len() as u64) as usize];
            t.crash_at(p, (mix(seed, CRASH_POINT + 10, i) % 2) as u32);
        }
        // A step that fails ends the process; it restarts from the store and steps again (the
        // restarted daemon's first step, in the same minute).
        for attempt in 0.. {
            match t.step().await {
                Ok(r) => {
                    if verbose {
                        eprintln!("seed {seed} bar {i} t={}: {r:?}", sim.now());
                    }
                    if !r.halted.is_empty() {
                        // Failing closed: the rest of the seed checks that nothing was doubled or
                        // lost up to the halt.
                        let why = format!("bar {i}: {:?}", r.halted);
                        drop(t);
                        let t = start_retrying(&store, &venue, &sim, &mut tally).await?;
                        check_safety(&store, &sim, &t).await?;
                        return Err(Failure::Halted(why));
                    }
                    break;
                }
                Err(e) => {
                    if verbose {
                        eprintln!("seed {seed} bar {i}: step failed: {e}");
                    }
                    if matches!(e, TraderError::Crashed(_)) {
                        tally.crashes += 1;
                    } else if !matches!(e, TraderError::Broker(_)) {
                        return Err(format!("bar {i}: {e}").into());
                    }
                    if attempt > 50 {
                        return Err(format!("bar {i}: 50 restarts in one minute: {e}").into());
                    }
                    drop(t);
                    tally.restarts += 1;
                    t = start_retrying(&store, &venue, &sim, &mut tally).await?;
                }
            }
        }
        i += 1;
    }
    drop(t);
    // The checks, from a trader restored from the store once more (the faults are off now).
    let t = start_retrying(&store, &venue, &sim, &mut tally).await?;
    match check(&store, &sim, &t, &mut tally).await {
        // Halted by the final restart's reconciliation: failing closed too.
        Err(e) if e.starts_with("halted") => {
            check_safety(&store, &sim, &t).await?;
            Err(Failure::Halted(e))
        }
        Err(e) => Err(e.into()),
        Ok(()) => Ok(tally),
    }
}

/// No order twice and no fill lost (for a seed that halted: up to the halt).
async fn check_safety(store: &Store, sim: &SimBroker, t: &Trader) -> Result<(), String> {
    let mut tally = Tally::default();
    match check(store, sim, t, &mut tally).await {
        Err(e)
            if e.starts_with("venue position")
                || e.starts_with("open at the venue")
                || e.starts_with("halted") =>
        {
            Ok(())
        }
        r => r,
    }
}

fn f(d: Decimal) -> f64 {
    d.to_string().parse().unwrap_or(f64::NAN)
}

async fn check(
    store: &Store,
    sim: &SimBroker,
    t: &Trader,
    tally: &mut Tally,
) -> Result<(), String> {
    let e = |e: BrokerError| e.to_string();
    let orders = sim
        .orders(&OrderQuery {
            status: OrderFilter::All,
            after: None,
            until: None,
            symbols: vec![],
        })
        .await
        .map_err(e)?;
    // No order twice: one order per client order id at the venue, each one ours.
    let mut per: HashMap<&str, usize> = HashMap::new();
    for o in &orders {
        *per.entry(o.client_order_id.as_str()).or_default() += 1;
    }
    if let Some((c, n)) = per.iter().find(|(_, &n)| n > 1) {
        return Err(format!("client order id {c} reached the venue {n} times"));
    }
    let ours: HashSet<String> = store
        .orders(SYM)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|o| o.client_order_id)
        .collect();
    if let Some(o) = orders.iter().find(|o| !ours.contains(&o.client_order_id)) {
        return Err(format!(
            "the venue has order {} we have no intent for",
            o.client_order_id
        ));
    }
    // No fill lost: every execution at the venue applied by the run and saved.
    let execs = sim.executions(None).await.map_err(e)?;
    let run = store
        .active_run(SYM)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no active run")?;
    let saved: HashSet<&str> = run.executions.iter().map(String::as_str).collect();
    let g = t.run(SYM).ok_or("no run in the trader")?;
    for x in &execs {
        if !saved.contains(x.id.as_str()) || !g.is_applied(&x.id) {
            return Err(format!(
                "execution {} ({:?} {} at {}) was never applied",
                x.id, x.side, x.qty, x.price
            ));
        }
    }
    if saved.len() != execs.len() {
        return Err(format!(
            "{} executions saved, {} at the venue",
            saved.len(),
            execs.len()
        ));
    }
    // Our state is the venue's: the position is our lots plus what in-flight orders filled, and every
    // order still open at the venue is one of our pending intents (and the reverse).
    let pos: f64 = sim
        .positions()
        .await
        .map_err(e)?
        .iter()
        .filter(|p| p.symbol == SYM)
        .map(|p| f(p.qty))
        .sum();
    let grid = g.grid();
    // Counted independently of `Grid::position`: a sell's sold parts count against its lot.
    let held = grid.lots().iter().map(|l| l.shares).sum::<f64>()
        + grid
            .pending()
            .iter()
            .map(|p| match p.kind {
                PendingKind::Buy { .. } => p.filled,
                PendingKind::Sell { .. } => -p.filled,
            })
            .sum::<f64>();
    if (pos - held).abs() > 0.5e-4 {
        return Err(format!("venue position {pos}, our lots {held}"));
    }
    let open: BTreeMap<String, &Order> = orders
        .iter()
        .filter(|o| {
            !matches!(
                o.status,
                OrderStatus::Filled
                    | OrderStatus::Canceled
                    | OrderStatus::Expired
                    | OrderStatus::Rejected
                    | OrderStatus::Replaced
                    | OrderStatus::DoneForDay
            )
        })
        .map(|o| (o.client_order_id.clone(), o))
        .collect();
    let pending: BTreeMap<String, ()> = grid
        .pending()
        .iter()
        .map(|p| (g.client_order_id(p.intent), ()))
        .collect();
    let a: Vec<_> = open.keys().collect();
    let b: Vec<_> = pending.keys().collect();
    if a != b {
        return Err(format!(
            "open at the venue {a:?}, pending in our state {b:?}"
        ));
    }
    if let Some(h) = t.status().iter().find_map(|s| s.halted.clone()) {
        return Err(format!("halted: {h}"));
    }
    tally.orders = orders.len();
    tally.fills = execs.len();
    Ok(())
}

/// Runs the seeds (`VECTURA_SIM_SEEDS`, `VECTURA_SIM_SEED`); every seed must end with no order
/// twice, no fill lost, our state the venue's and no halt.
async fn seeds() {
    let one = std::env::var("VECTURA_SIM_SEED").ok().map(|s| {
        s.trim()
            .parse::<u64>()
            .expect("VECTURA_SIM_SEED is a number")
    });
    let n: u64 = std::env::var("VECTURA_SIM_SEEDS")
        .ok()
        .map(|s| s.trim().parse().expect("VECTURA_SIM_SEEDS is a number"))
        .unwrap_or(1000);
    let seeds: Vec<u64> = match one {
        Some(s) => vec![s],
        None => (0..n).collect(),
    };
    let mut failed = Vec::new();
    let mut halted = Vec::new();
    let mut total = Tally::default();
    let began = std::time::Instant::now();
    for &seed in &seeds {
        match run_seed(seed, one.is_some()).await {
            Ok(t) => {
                total.restarts += t.restarts;
                total.crashes += t.crashes;
                total.orders += t.orders;
                total.fills += t.fills;
            }
            Err(Failure::Halted(why)) => {
                eprintln!(
                    "seed {seed} halted (failed closed): {why}\n  replay it: VECTURA_SIM_SEED={seed} cargo test -p vectura-trader --test it sim:: -- --nocapture"
                );
                halted.push(seed);
            }
            Err(Failure::Other(why)) => {
                eprintln!(
                    "seed {seed} FAILED: {why}\n  replay it: VECTURA_SIM_SEED={seed} cargo test -p vectura-trader --test it sim:: -- --nocapture"
                );
                failed.push(seed);
            }
        }
    }
    eprintln!(
        "simulation: {} seeds in {:?}: {} orders, {} fills, {} crashes, {} restarts; halted {:?}; failed {:?}",
        seeds.len(),
        began.elapsed(),
        total.orders,
        total.fills,
        total.crashes,
        total.restarts,
        halted,
        failed
    );
    assert!(failed.is_empty(), "failing seeds: {failed:?}");
    // A halt is the trader failing closed on something the schedule did not do (no trade happens
    // behind its back here): every halt is a finding, as is any failure.
    assert!(halted.is_empty(), "seeds that halted: {halted:?}");
    // The schedule must actually hurt: crashes and orders across the seeds.
    if one.is_none() && seeds.len() >= 100 {
        assert!(total.crashes >= seeds.len() / 10, "{total:?}");
        assert!(total.fills >= seeds.len(), "{total:?}");
    }
}

/// Safety on every seed: no order twice, no fill lost, our state the venue's, and no halt (a halt
/// still gets the safety checks up to it, then fails the seed).
#[tokio::test(flavor = "current_thread")]
async fn a_thousand_seeds_of_faults_and_crashes_end_with_no_order_twice_no_fill_lost_and_our_state_the_venues(
) {
    seeds().await;
}
