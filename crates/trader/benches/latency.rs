//! Decision latency of the trader, bar arrival to order submission, without the network: the
//! simulated venue in process and the store in memory (SQLite), for 1 and for 100 symbols (each
//! trading the same real INDA session, 2023-07-10). Issue 17's target: p99 under 1 ms.
//!
//! Printed first, over a whole session per case: p50/p99 of
//! - `decision`: one symbol's own path, from its reconciliation read to its submission (sync with the
//!   venue, the grid's decision, the intent saved, the order sent);
//! - `from bar`: from the bar's arrival (the step's start) to the submission, which for 100 symbols
//!   includes the symbols decided before it in the same step.
//!
//! Then criterion times whole steps (`cargo bench -p vectura-trader --bench latency -- --quick`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use vectura_broker::sim::{Replay, SimBroker, SimConfig};
use vectura_broker::{
    Account, Asset, BarUpdates, Broker, BrokerError, CalendarDay, Decimal, Execution, MarketClock,
    MarketData, Order, OrderQuery, OrderRequest, Position, TradeUpdates,
};
use vectura_core::calendar::{self, SessionPart};
use vectura_core::{Bar, BarSeries};
use vectura_store::{AlgoConfig, RiskLimits, Store};
use vectura_trader::{Clock, Trader, TraderConfig};

/// The venue, timing each symbol's decision: from its first read of a step to its submission.
struct Timed {
    sim: Arc<SimBroker>,
    /// The step's start (the bar's arrival).
    step: Mutex<Option<Instant>>,
    began: Mutex<HashMap<String, Instant>>,
    /// (decision, from bar) per submission.
    samples: Mutex<Vec<(Duration, Duration)>>,
}

#[async_trait]
impl Broker for Timed {
    fn name(&self) -> &str {
        "sim-timed"
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
        let now = Instant::now();
        let began = self.began.lock().unwrap().get(&req.symbol).copied();
        let step = *self.step.lock().unwrap();
        if let (Some(b), Some(s)) = (began, step) {
            self.samples.lock().unwrap().push((now - b, now - s));
        }
        self.sim.submit(req).await
    }
    async fn order_by_client_id(&self, coid: &str) -> Result<Option<Order>, BrokerError> {
        self.sim.order_by_client_id(coid).await
    }
    async fn orders(&self, q: &OrderQuery) -> Result<Vec<Order>, BrokerError> {
        // The sync's first read of a symbol: its decision starts here.
        if let [sym] = &q.symbols[..] {
            self.began
                .lock()
                .unwrap()
                .insert(sym.clone(), Instant::now());
        }
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
    async fn positions_of(&self, symbol: &str) -> Result<Vec<Position>, BrokerError> {
        self.sim.positions_of(symbol).await
    }
    async fn executions(
        &self,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<Execution>, BrokerError> {
        self.sim.executions(after).await
    }
    async fn executions_of(
        &self,
        symbol: &str,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<Execution>, BrokerError> {
        self.sim.executions_of(symbol, after).await
    }
    async fn trade_updates(&self) -> Result<TradeUpdates, BrokerError> {
        self.sim.trade_updates().await
    }
}

#[async_trait]
impl MarketData for Timed {
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

fn session() -> BarSeries {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/fixtures/INDA_1min_2023-07-10_to_2025-07-07.csv.gz");
    let day = NaiveDate::from_ymd_opt(2023, 7, 10).unwrap();
    let s = vectura_data::load_csv_path(&path, &vectura_data::LoadOptions::default())
        .unwrap()
        .series;
    s.filter(|i| {
        calendar::classify(s.ts[i]) == SessionPart::Regular && calendar::ny_date(s.ts[i]) == day
    })
}

/// A trader of `n` symbols over the session, each its own copy of the bars.
struct Case {
    trader: Trader,
    sim: Arc<SimBroker>,
    venue: Arc<Timed>,
    replay: Replay,
    n: usize,
}

async fn case(bars: &BarSeries, n: usize) -> Case {
    let mut cfg = SimConfig::new(Decimal::from(100_000 * n as i64));
    cfg.start = bars.ts[0] - 60;
    cfg.share_scale = 1e4;
    let sim = Arc::new(SimBroker::new(cfg).unwrap());
    let venue = Arc::new(Timed {
        sim: sim.clone(),
        step: Mutex::new(None),
        began: Mutex::new(HashMap::new()),
        samples: Mutex::new(Vec::new()),
    });
    let store = Store::open("sqlite::memory:").await.unwrap();
    let syms: Vec<String> = (0..n).map(|i| format!("S{i:03}")).collect();
    for s in &syms {
        store
            .upsert_algo_config(
                s,
                &AlgoConfig {
                    capital_pct: 20.0 / n as f64,
                    buy_below_pct: 0.05,
                    sell_above_pct: 0.08,
                    buy_after_sell_pct: 0.1,
                    cash_floor: 50.0,
                    order_gap_pct: 0.02,
                },
            )
            .await
            .unwrap();
        store
            .set_trade_controls(s, true, &RiskLimits::default())
            .await
            .unwrap();
    }
    let (trader, _) = Trader::start(
        store,
        venue.clone(),
        venue.clone(),
        Arc::new(SimClock(sim.clone())),
        TraderConfig::default(),
    )
    .await
    .unwrap();
    let replay = Replay::new(syms.into_iter().map(|s| (s, bars.clone())).collect());
    Case {
        trader,
        sim,
        venue,
        replay,
        n,
    }
}

impl Case {
    /// Hands over the next minute's bars of every symbol; false at the session's end.
    fn feed(&mut self) -> bool {
        for _ in 0..self.n {
            if self.sim.step(&mut self.replay).unwrap().is_none() {
                return false;
            }
        }
        true
    }

    async fn step(&mut self) -> Duration {
        let t0 = Instant::now();
        *self.venue.step.lock().unwrap() = Some(t0);
        self.trader.step().await.unwrap();
        t0.elapsed()
    }
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn report(rt: &tokio::runtime::Runtime, bars: &BarSeries, n: usize) {
    let mut c = rt.block_on(case(bars, n));
    let mut steps = Vec::new();
    while c.feed() {
        steps.push(rt.block_on(c.step()));
    }
    let samples = c.venue.samples.lock().unwrap().clone();
    let mut own: Vec<Duration> = samples.iter().map(|s| s.0).collect();
    let mut from_bar: Vec<Duration> = samples.iter().map(|s| s.1).collect();
    assert!(!own.is_empty(), "{n} symbols: no order was submitted");
    println!(
        "latency {n:>3} symbol(s): {} submissions over {} steps; decision p50 {:?} p99 {:?}; from bar p50 {:?} p99 {:?}; whole step p50 {:?} p99 {:?}",
        own.len(),
        steps.len(),
        pct(&mut own, 0.5),
        pct(&mut own, 0.99),
        pct(&mut from_bar, 0.5),
        pct(&mut from_bar, 0.99),
        pct(&mut steps, 0.5),
        pct(&mut steps, 0.99),
    );
}

fn bench(cr: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bars = session();
    for n in [1, 100] {
        report(&rt, &bars, n);
    }
    for n in [1, 100] {
        let mut c = rt.block_on(case(&bars, n));
        cr.bench_function(&format!("trader step, {n} symbol(s)"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    if !c.feed() {
                        c = rt.block_on(case(&bars, n));
                        c.feed();
                    }
                    total += rt.block_on(c.step());
                }
                total
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
