//! The simulated broker against the backtest: a run of the simulator over real sessions gives the same
//! trades as `vectura backtest --fill next-open` on the same bars (issue 15's done-when).
//!
//! The driver below is the smallest live loop: each bar goes to the simulator, its fill events go to
//! the strategy, the strategy decides on the bar's close and its intents go out as orders with
//! deterministic client order ids, each sized from the simulator's cash less what this bar's earlier
//! buys reserve, as the engine sizes them. The real driver (the trader) will live in its own crate.

use std::collections::HashMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use vectura_backtest::{BacktestConfig, Commission, FillModel, PdtMode};
use vectura_broker::sim::{SimBroker, SimConfig};
use vectura_broker::{
    qty_from_f64, Broker, BrokerError, OrderRequest, OrderType, Side, StreamEvent, TimeInForce,
    TradeEventKind,
};
use vectura_core::{BarSeries, Fill, IntentId, OrderEnd};
use vectura_strategy::grid::{Grid, GridMode, GridParams};
use vectura_strategy::{Account, AllowAll, Eval, Strategy, Tick};

use crate::sim_common::{date, f, session_of, spy_both, spy_month};

/// One case: the bars, the grid, the costs, the share precision and the orders' time in force.
struct Case {
    name: &'static str,
    bars: BarSeries,
    params: GridParams,
    capital: f64,
    commission: Commission,
    slippage_bps: f64,
    share_scale: f64,
    tif: TimeInForce,
}

/// Trades often on SPY minute bars (a sell 0.3 % above a buy, buys every 0.2 % down).
fn busy() -> GridParams {
    GridParams {
        capital_pct: 30.0,
        buy_below_pct: 0.2,
        sell_above_pct: 0.3,
        buy_after_sell_pct: 0.4,
        cash_floor: 50.0,
        order_gap_pct: 0.1,
    }
}

fn costs() -> (Commission, f64) {
    (
        Commission {
            per_order: 1.0,
            per_share: 0.005,
            pct: 0.1,
        },
        5.0,
    )
}

fn grid(p: GridParams, share_scale: f64) -> Grid {
    Grid::new(
        p,
        GridMode {
            compat_v1: false,
            share_scale,
            record_lines: false,
        },
    )
}

/// (time, side, shares, price, commission) of every trade.
type Trades = Vec<(i64, Side, f64, f64, f64)>;

/// The simulator driven over `bars` by the minimal live loop.
async fn drive(c: &Case) -> (SimBroker, Trades) {
    let mut cfg = SimConfig::new(Decimal::from_f64_retain(c.capital).unwrap());
    cfg.commission = c.commission;
    cfg.slippage_bps = c.slippage_bps;
    cfg.share_scale = c.share_scale;
    cfg.start = c.bars.ts[0] - 3600;
    let sim = SimBroker::new(cfg).unwrap();
    let mut updates = sim.trade_updates().await.unwrap();
    let mut s = grid(c.params, c.share_scale);
    let mut intents: HashMap<String, IntentId> = HashMap::new();
    for i in 0..c.bars.len() {
        let b = c.bars.get(i);
        sim.on_bar("SPY", &b).unwrap();
        // The fills of the orders sent at the previous close, as the stream reports them.
        while let Some(m) = updates.try_next() {
            let StreamEvent::Event(e) = m else { continue };
            let Some(&id) = intents.get(&e.order.client_order_id) else {
                continue;
            };
            match e.kind {
                TradeEventKind::Fill | TradeEventKind::PartialFill => {
                    let x = e.execution.as_ref().unwrap();
                    s.on_fill(&Fill {
                        intent: id,
                        side: x.side,
                        qty: f(x.qty),
                        price: f(x.price),
                        commission: f(sim.commission_of(&x.id).unwrap()),
                        ts: x.time.timestamp(),
                        done: x.leaves_qty.is_zero(),
                    });
                }
                TradeEventKind::Canceled => s.on_order_end(id, &OrderEnd::Cancelled),
                TradeEventKind::Expired => s.on_order_end(id, &OrderEnd::Expired),
                TradeEventKind::Rejected => {
                    s.on_order_end(id, &OrderEnd::Rejected("rejected".into()))
                }
                _ => {}
            }
        }
        // Decide on the close, sized from the broker's cash less what this bar's buys reserve.
        let acct = sim.account().await.unwrap();
        let cash = f(acct.cash);
        let equity = f(acct.equity);
        let mut reserved = 0.0;
        let tick = Tick {
            ts: b.ts,
            open: b.open,
            high: b.high,
            low: b.low,
            close: b.close,
            eval: Eval::Close,
        };
        s.on_bar(&tick, &Account { cash, equity }, &AllowAll);
        loop {
            let a = Account {
                cash: cash - reserved,
                equity,
            };
            let Some(intent) = s.next_intent(&a, &AllowAll) else {
                break;
            };
            if intent.side == Side::Buy {
                reserved += intent.qty * intent.ref_price;
            }
            let cid = intent.id.client_order_id("parity", "SPY");
            intents.insert(cid.clone(), intent.id);
            let req = OrderRequest {
                client_order_id: cid,
                symbol: "SPY".into(),
                side: intent.side,
                qty: qty_from_f64(intent.qty).unwrap(),
                order_type: OrderType::Market,
                time_in_force: c.tif,
                extended_hours: false,
            };
            match sim.submit(&req).await {
                Ok(_) => {}
                Err(BrokerError::Rejected { message, .. }) => {
                    s.on_order_end(intent.id, &OrderEnd::Rejected(message))
                }
                Err(e) => panic!("{}: {e}", c.name),
            }
        }
    }
    let trades = sim
        .ledger()
        .executions
        .iter()
        .map(|e| {
            let x = &e.execution;
            (
                x.time.timestamp(),
                x.side,
                f(x.qty),
                f(x.price),
                f(e.commission),
            )
        })
        .collect();
    (sim, trades)
}

fn day_of(ts: i64) -> NaiveDate {
    vectura_core::calendar::ny_date(ts)
}

/// Runs the case through both and compares trade by trade, then cash, equity and the position.
/// Returns the number of trades and the simulator.
async fn check(c: Case) -> (usize, SimBroker) {
    let n = c.bars.len();
    let mut bt = BacktestConfig::new("SPY", day_of(c.bars.ts[0]), day_of(c.bars.ts[n - 1]));
    bt.start_capital = c.capital;
    bt.fill = FillModel::NextOpen;
    // The live trader has no PDT gate (FINRA ended the rule) and neither has the simulator.
    bt.pdt = PdtMode::Off;
    bt.commission = c.commission;
    bt.slippage_bps = c.slippage_bps;
    bt.share_scale = c.share_scale;
    bt.record_series = false;
    let r = vectura_backtest::run(&c.bars, &mut grid(c.params, c.share_scale), &bt).unwrap();
    let want: Trades = r
        .trades
        .iter()
        .map(|t| (t.ts, t.side, t.shares, t.price, t.commission))
        .collect();

    let (sim, got) = drive(&c).await;
    assert!(
        want.len() >= 4,
        "{}: the case should trade ({} trades)",
        c.name,
        want.len()
    );
    for (k, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a, b, "{}: trade {k} (sim, backtest)", c.name);
    }
    assert_eq!(got.len(), want.len(), "{}: trade count", c.name);

    // Cash: the broker books exact decimals, the engine f64; they agree to rounding noise.
    let acct = sim.account().await.unwrap();
    let tol = |x: f64| 1e-9 * x.abs().max(1.0);
    assert!(
        (f(acct.cash) - r.final_cash).abs() <= tol(r.final_cash),
        "{}: cash {} vs {}",
        c.name,
        acct.cash,
        r.final_cash
    );
    assert!(
        (f(acct.equity) - r.final_equity).abs() <= tol(r.final_equity),
        "{}: equity {} vs {}",
        c.name,
        acct.equity,
        r.final_equity
    );
    eprintln!(
        "{}: cash differs from the engine's by {:e}",
        c.name,
        (f(acct.cash) - r.final_cash).abs()
    );
    // The broker's cash is exactly what its own executions and commissions add up to.
    let led = sim.ledger();
    let mut cash = Decimal::from_f64_retain(c.capital).unwrap();
    for e in &led.executions {
        let x = &e.execution;
        match x.side {
            Side::Buy => cash -= x.qty * x.price + e.commission,
            Side::Sell => cash += x.qty * x.price - e.commission,
        }
    }
    assert_eq!(acct.cash, cash, "{}: cash against the executions", c.name);
    // The position is the engine's open lots, share for share.
    let lots: Decimal = r
        .open_lots
        .iter()
        .map(|l| qty_from_f64(l.shares).unwrap())
        .sum();
    let held = sim
        .positions()
        .await
        .unwrap()
        .iter()
        .map(|p| p.qty)
        .sum::<Decimal>();
    assert_eq!(held, lots, "{}: shares held", c.name);
    (want.len(), sim)
}

#[tokio::test]
async fn one_session_gives_the_backtests_trades() {
    let jan = spy_month("01");
    let (commission, slippage_bps) = costs();
    let mar = spy_month("03");
    // A calm session, and a stormy one (March 16, 2011: the sell-off on the Fukushima news).
    for (name, bars, commission, slippage_bps) in [
        (
            "session",
            session_of(&jan, date(2011, 1, 4)),
            Commission::default(),
            0.0,
        ),
        (
            "session with costs",
            session_of(&jan, date(2011, 1, 4)),
            commission,
            slippage_bps,
        ),
        (
            "volatile session",
            session_of(&mar, date(2011, 3, 16)),
            Commission::default(),
            0.0,
        ),
        (
            "volatile session with costs",
            session_of(&mar, date(2011, 3, 16)),
            commission,
            slippage_bps,
        ),
    ] {
        let (n, _) = check(Case {
            name,
            bars,
            params: busy(),
            capital: 1000.0,
            commission,
            slippage_bps,
            share_scale: 1e4,
            tif: TimeInForce::Day,
        })
        .await;
        eprintln!("{name}: {n} trades");
    }
}

#[tokio::test]
async fn each_month_gives_the_backtests_trades_with_and_without_costs() {
    let (commission, slippage_bps) = costs();
    for month in ["01", "03"] {
        let bars = spy_month(month);
        for (commission, slippage_bps) in [(Commission::default(), 0.0), (commission, slippage_bps)]
        {
            let (n, _) = check(Case {
                name: "month",
                bars: bars.clone(),
                params: busy(),
                capital: 1000.0,
                commission,
                slippage_bps,
                share_scale: 1e4,
                tif: TimeInForce::Day,
            })
            .await;
            eprintln!("2011-{month} (slippage {slippage_bps} bps): {n} trades");
        }
    }
}

/// Both months in one run. The bundled data has no February, so an order sent at the close of
/// January 31 fills (in the engine) at the open of March 1; a day order would expire on February 1
/// at the broker. GTC orders live that long, and Alpaca takes GTC only for whole shares: whole shares.
#[tokio::test]
async fn both_months_in_one_run_give_the_backtests_trades() {
    let (commission, slippage_bps) = costs();
    let (n, _) = check(Case {
        name: "two months, whole shares",
        bars: spy_both(),
        params: busy(),
        capital: 20_000.0,
        commission,
        slippage_bps,
        share_scale: 1.0,
        tif: TimeInForce::Gtc,
    })
    .await;
    eprintln!("two months: {n} trades");
}

/// All the cash on every buy, with heavy slippage and a per-order fee: the open's cost often exceeds
/// the cash the order was sized from, and the simulator shrinks it exactly as the engine's guard does
/// (`partial_fill` of what the cash pays, then `canceled`).
#[tokio::test]
async fn buys_that_overspend_at_the_open_are_shrunk_as_the_engine_shrinks_them() {
    let params = GridParams {
        capital_pct: 100.0,
        buy_below_pct: 0.1,
        sell_above_pct: 0.1,
        buy_after_sell_pct: 0.1,
        cash_floor: 0.0,
        order_gap_pct: -1.0,
    };
    let (n, sim) = check(Case {
        name: "all in",
        bars: spy_month("01"),
        params,
        capital: 1000.0,
        commission: Commission {
            per_order: 2.0,
            per_share: 0.0,
            pct: 0.0,
        },
        slippage_bps: 50.0,
        share_scale: 1e4,
        tif: TimeInForce::Day,
    })
    .await;
    // The guard did shrink buys: each shows as a partial fill whose rest was cancelled.
    let shrunk = sim
        .ledger()
        .events
        .iter()
        .filter(|e| e.kind == TradeEventKind::Canceled && e.order.filled_qty > Decimal::ZERO)
        .count();
    assert!(shrunk > 0, "no buy was shrunk");
    eprintln!("all in: {n} trades, {shrunk} shrunk");
}

/// The grid of the original engine's reference case d (35 % per buy, 0.3 / 0.6 / 1 %, joining at
/// 0.2 %) over March, with costs and Alpaca's 9 share decimals.
#[tokio::test]
async fn the_reference_case_d_grid_gives_the_backtests_trades() {
    let (commission, slippage_bps) = costs();
    let (n, _) = check(Case {
        name: "case d",
        bars: spy_month("03"),
        params: GridParams {
            capital_pct: 35.0,
            buy_below_pct: 0.3,
            sell_above_pct: 0.6,
            buy_after_sell_pct: 1.0,
            cash_floor: 50.0,
            order_gap_pct: 0.2,
        },
        capital: 3000.0,
        commission,
        slippage_bps,
        share_scale: 1e9,
        tif: TimeInForce::Day,
    })
    .await;
    eprintln!("case d: {n} trades");
}
