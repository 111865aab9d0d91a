//! `vectura trade`: the live runtime (crates/trader), paper by default. A thin layer: flags, the
//! store, the keys, signals; the logic is `vectura_trader::session`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use vectura_broker::alpaca::AlpacaConfig;
use vectura_broker::Decimal;

use crate::env;

/// Which broker `vectura trade` trades through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BrokerKind {
    /// Alpaca (paper unless --live): APCA_API_KEY_ID, APCA_API_SECRET_KEY, APCA_API_BASE_URL.
    Alpaca,
    /// The simulated broker, offline, replaying --bars (no keys at all).
    Sim,
}

/// Whose clock `vectura trade` trades on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClockKind {
    /// The system clock (live and paper trading).
    Wall,
    /// The broker's `/v2/clock`: a replay through `vectura-emulator --replay SYM=FILE --speed X`;
    /// one step per broker minute, each printed.
    Broker,
}

/// `vectura trade parity`.
#[derive(Args, Debug)]
pub struct ParityArgs {
    /// The traded symbol.
    #[arg(long)]
    pub symbol: String,
    /// The session, YYYY-MM-DD (New York).
    #[arg(long)]
    pub date: chrono::NaiveDate,
    /// One JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `vectura trade`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TradeArgs {
    /// An operator command or a report instead of trading.
    #[command(subcommand)]
    pub action: Option<TradeAction>,
    /// One decision step, then exit (for cron or a cloud scheduler, every minute).
    #[arg(long)]
    pub once: bool,
    /// The broker.
    #[arg(long, value_enum, default_value = "alpaca")]
    pub broker: BrokerKind,
    /// Trade real money: needs APCA_API_BASE_URL=https://api.alpaca.markets (refused otherwise).
    #[arg(long)]
    pub live: bool,
    /// With --broker sim: the minute-bar CSV (or .csv.gz) to replay, as SYMBOL=FILE (repeatable).
    #[arg(long = "bars", value_name = "SYMBOL=FILE")]
    pub bars: Vec<String>,
    /// With --broker sim: the simulated account's cash, dollars.
    #[arg(long, default_value = "100000")]
    pub cash: Decimal,
    /// With --broker alpaca: whose clock to trade on (broker: a replaying emulator's time).
    #[arg(long, value_enum, default_value = "wall")]
    pub clock: ClockKind,
}

/// `VECTURA_CRASH_AT=POINT[:NTH]` (tests only): the process kills itself (SIGKILL) the NTH time it
/// reaches POINT, to prove a restart loses and doubles nothing.
fn crash_at() -> Result<Option<(vectura_trader::CrashPoint, u32)>> {
    match std::env::var("VECTURA_CRASH_AT") {
        Ok(v) if !v.trim().is_empty() => Ok(Some(vectura_trader::replay::parse_crash_at(&v)?)),
        _ => Ok(None),
    }
}

/// Ends the process as SIGKILL would: no destructor, no flush, no further write.
fn kill_self() -> ! {
    // SAFETY: kill(2) on our own pid; it does not return for SIGKILL.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}

/// Prints the parity report.
fn parity(a: &ParityArgs, url: &str, out: &mut dyn Write) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let r = rt.block_on(async {
        let store = vectura_store::Store::open(url).await?;
        let r = vectura_trader::parity::parity(&store, &a.symbol, a.date).await;
        store.close().await;
        Ok::<_, anyhow::Error>(r?)
    })?;
    if a.json {
        serde_json::to_writer_pretty(&mut *out, &r)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} {}: model {} trades, live {} fills, {} difference(s), mean slippage {:.2} bps",
        r.symbol,
        r.date,
        r.model_trades,
        r.live_fills,
        r.differences.len(),
        r.mean_slippage_bps
    )?;
    for f in &r.fills {
        writeln!(
            out,
            "  fill {} {:?} {} @ {} (model {} @ {}): {:+.2} bps  [{}]",
            f.time.format("%H:%M"),
            f.side,
            f.live_shares,
            f.live_price,
            f.model_shares,
            f.model_price,
            f.slippage_bps,
            f.client_order_id
        )?;
    }
    for d in &r.differences {
        match d {
            vectura_trader::parity::Difference::ModelOnly {
                time,
                side,
                shares,
                price,
                why,
            } => writeln!(
                out,
                "  MODEL ONLY {} {side:?} {shares} @ {price}: {why}",
                time.format("%H:%M")
            )?,
            vectura_trader::parity::Difference::LiveOnly {
                time,
                side,
                shares,
                price,
                client_order_id,
            } => writeln!(
                out,
                "  LIVE ONLY {} {side:?} {shares} @ {price} [{client_order_id}]",
                time.format("%H:%M")
            )?,
            vectura_trader::parity::Difference::Shares {
                time,
                side,
                model_shares,
                live_shares,
                client_order_id,
            } => writeln!(
                out,
                "  SHARES {} {side:?}: live {live_shares}, model {model_shares} [{client_order_id}]",
                time.format("%H:%M")
            )?,
        }
    }
    Ok(())
}

/// The operator's commands (they act on the store, and `halt` on the broker; a running trader
/// sees a halt or resume at its next step).
#[derive(Subcommand, Debug)]
pub enum TradeAction {
    /// Live against the backtest: a session's stored bars through the next-open model, from the
    /// run's state at the open; every difference with what the broker did (slippage, rejects, halts).
    Parity(ParityArgs),
    /// The kill switch: halt a symbol (or all), persisted, and cancel our open orders at the broker.
    Halt {
        /// Only this symbol (default: every symbol with controls).
        #[arg(long)]
        symbol: Option<String>,
        /// Where our open orders are: alpaca (cancels them) or sim (nothing to cancel).
        #[arg(long, value_enum, default_value = "alpaca")]
        broker: BrokerKind,
    },
    /// Lift a halt (one symbol or all): the next start or step trades it again.
    Resume {
        /// Only this symbol (default: every halted symbol).
        #[arg(long)]
        symbol: Option<String>,
    },
    /// Per symbol: position, lots, pending orders, triggers, today's P&L, halted and why.
    Status {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Enable a symbol for trading, with its grid and risk limits.
    #[command(allow_negative_numbers = true)]
    Enable(Box<EnableArgs>),
    /// Stop trading a symbol at the next start (its run and lots stay).
    Disable {
        /// The symbol.
        symbol: String,
    },
}

/// `vectura trade enable`.
#[derive(Args, Debug)]
pub struct EnableArgs {
    /// The symbol, for example SPY.
    pub symbol: String,
    /// Store the grid from the flags below (each defaults to the backtest's default); without it
    /// and without any grid flag, the stored grid is kept (and must exist).
    #[arg(long)]
    pub grid: bool,
    /// Percent of current cash used per buy.
    #[arg(long)]
    pub capital_pct: Option<f64>,
    /// Percent below a fill for the next "below" buy trigger.
    #[arg(long)]
    pub buy_below_pct: Option<f64>,
    /// Percent above a buy for that lot's sell trigger.
    #[arg(long)]
    pub sell_above_pct: Option<f64>,
    /// Percent above a sell for the "buy higher" trigger.
    #[arg(long)]
    pub buy_after_sell_pct: Option<f64>,
    /// Dollars a buy may not dip into.
    #[arg(long)]
    pub cash_floor: Option<f64>,
    /// Join gap for buy triggers, percent; -1 turns joining off.
    #[arg(long)]
    pub order_gap_pct: Option<f64>,
    /// Largest notional of one order, dollars.
    #[arg(long)]
    pub max_order_notional: Option<f64>,
    /// Most orders per New York trading day.
    #[arg(long)]
    pub max_orders_per_day: Option<u32>,
    /// Largest loss of a day before the symbol halts, dollars.
    #[arg(long)]
    pub max_daily_loss: Option<f64>,
    /// Largest value of the position after a buy, dollars.
    #[arg(long)]
    pub max_position_value: Option<f64>,
}

/// Runs `vectura trade`.
pub fn run(args: &TradeArgs, out: &mut dyn Write) -> Result<()> {
    env::load_dotenv()?;
    if let Some(a) = &args.action {
        return action(a, out);
    }
    let loc = env::database_url(true)?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    crate::interrupt::install();
    let stop = async {
        while crate::interrupt::received().is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    let report = rt.block_on(async {
        let store = vectura_store::Store::open(&loc.url).await?;
        let notify = vectura_trader::Notifier::from_env(|k| std::env::var(k).ok())?;
        let r = trade(args, store, notify.clone(), stop).await;
        if let Err(e) = &r {
            notify.send(vectura_trader::Event::Error {
                message: format!("{e:#}"),
            });
        }
        // The last events of a run are told before the process exits (bounded: never hangs).
        notify.flush(std::time::Duration::from_secs(10)).await;
        r
    })?;
    writeln!(
        out,
        "bars {} · orders submitted {} · fills {} · intents ended {}",
        report.bars, report.submitted, report.fills, report.ended
    )?;
    for (sym, why) in &report.halted {
        writeln!(out, "HALTED {sym}: {why}")?;
    }
    if let Some(i) = crate::interrupt::received() {
        writeln!(out, "stopped by {} after the step in progress", i.name())?;
    }
    Ok(())
}

/// Runs the trader as the arguments say, telling `notify` of what happens.
async fn trade(
    args: &TradeArgs,
    store: vectura_store::Store,
    notify: vectura_trader::Notifier,
    stop: impl std::future::Future<Output = ()>,
) -> Result<vectura_trader::StepReport> {
    Ok(match args.broker {
        BrokerKind::Alpaca => {
            if !args.bars.is_empty() {
                return Err(anyhow!(
                    "--bars is for --broker sim: drop it, or add --broker sim"
                ));
            }
            let cfg = AlpacaConfig::from_env()?;
            match args.clock {
                ClockKind::Wall => {
                    vectura_trader::session::trade_alpaca(
                        store,
                        cfg,
                        args.live,
                        args.once,
                        vectura_trader::runtime::SplitFeed::from_env(),
                        notify,
                        stop,
                    )
                    .await?
                }
                ClockKind::Broker => {
                    if args.once {
                        return Err(anyhow!("--clock broker steps once per broker minute until stopped: drop --once (or --clock)"));
                    }
                    let crash = crash_at()?;
                    let mut print = |now: i64, r: &vectura_trader::StepReport| {
                        let at = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
                        println!(
                            "step {} · bars {} · submitted {} · fills {} · ended {}",
                            at.format("%Y-%m-%dT%H:%M:%SZ"),
                            r.bars,
                            r.submitted,
                            r.fills,
                            r.ended
                        );
                        let _ = std::io::stdout().flush();
                    };
                    match vectura_trader::replay::trade_on_broker_clock(
                        store,
                        cfg,
                        args.live,
                        vectura_trader::replay::Watch {
                            crash,
                            kill: Some(std::sync::Arc::new(|_| kill_self())),
                            notify,
                        },
                        stop,
                        &mut print,
                    )
                    .await
                    {
                        Err(vectura_trader::TraderError::Crashed(_)) => kill_self(),
                        r => r?,
                    }
                }
            }
        }
        BrokerKind::Sim => {
            if args.live {
                return Err(anyhow!(
                    "--live trades real money at Alpaca: it cannot go with --broker sim; drop one"
                ));
            }
            if args.clock == ClockKind::Broker {
                return Err(anyhow!("--clock broker follows Alpaca's /v2/clock: the simulated broker replays on its own clock; drop --clock"));
            }
            let mut bars = Vec::new();
            for spec in &args.bars {
                let (sym, file) = spec.split_once('=').ok_or_else(|| {
                    anyhow!("--bars {spec:?}: give SYMBOL=FILE, for example --bars SPY=spy.csv.gz")
                })?;
                let loaded = vectura_data::load_csv_path(
                    &PathBuf::from(file),
                    &vectura_data::LoadOptions::default(),
                )
                .with_context(|| format!("--bars {spec}"))?;
                bars.push((sym.to_ascii_uppercase(), loaded.series));
            }
            vectura_trader::session::trade_sim(store, bars, args.cash, args.once, notify, stop)
                .await?
        }
    })
}

fn action(a: &TradeAction, out: &mut dyn Write) -> Result<()> {
    use vectura_trader::ops;
    if let TradeAction::Parity(p) = a {
        return parity(p, &env::database_url(true)?.url, out);
    }
    let rt = env::runtime()?;
    let store = env::open_store(&rt, true)?;
    let now = chrono::Utc::now();
    match a {
        TradeAction::Parity(_) => {}
        TradeAction::Halt { symbol, broker } => {
            let client = match broker {
                BrokerKind::Alpaca => Some(
                    vectura_broker::alpaca::AlpacaClient::new(AlpacaConfig::from_env()?)
                        .context("the broker whose orders the halt cancels (or --broker sim)")?,
                ),
                BrokerKind::Sim => None,
            };
            let b = client.as_ref().map(|c| c as &dyn vectura_broker::Broker);
            let halted = rt.block_on(ops::halt(&store, b, symbol.as_deref(), now))?;
            for h in halted {
                writeln!(
                    out,
                    "HALTED {} · cancelled {} open order(s){}",
                    h.symbol,
                    h.cancelled.len(),
                    if h.cancelled.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", h.cancelled.join(", "))
                    }
                )?;
            }
        }
        TradeAction::Resume { symbol } => {
            let resumed = rt.block_on(ops::resume(&store, symbol.as_deref()))?;
            if resumed.is_empty() {
                writeln!(out, "nothing was halted")?;
            }
            for s in resumed {
                writeln!(out, "RESUMED {s}")?;
            }
        }
        TradeAction::Status { json } => {
            // Today's P&L needs prices: from Alpaca's market data when keys are set.
            let client = AlpacaConfig::from_env()
                .ok()
                .and_then(|c| vectura_broker::alpaca::AlpacaClient::new(c).ok());
            let m = client
                .as_ref()
                .map(|c| c as &dyn vectura_broker::MarketData);
            let st = rt.block_on(ops::status(&store, m, now.timestamp()))?;
            if *json {
                serde_json::to_writer_pretty(&mut *out, &st)?;
                writeln!(out)?;
            } else if st.is_empty() {
                writeln!(
                    out,
                    "no symbol has trading controls: `vectura trade enable SYMBOL --grid`"
                )?;
            }
            if !*json {
                for s in &st {
                    writeln!(
                        out,
                        "{} · {} · run {} · {} shares in {} lot(s) · {} pending · {} trigger(s) · today {}{}",
                        s.symbol,
                        if s.enabled { "enabled" } else { "disabled" },
                        s.run.as_deref().unwrap_or("none"),
                        s.shares,
                        s.lots.len(),
                        s.pending.len(),
                        s.triggers.len(),
                        s.today_pnl
                            .map(|p| format!("{p:+.2}"))
                            .unwrap_or_else(|| "n/a (no prices)".into()),
                        s.halted
                            .as_ref()
                            .map(|h| format!(" · HALTED: {h}"))
                            .unwrap_or_default()
                    )?;
                }
            }
        }
        TradeAction::Enable(e) => {
            let d = vectura_strategy::grid::GridParams::default();
            let any = e.grid
                || [
                    e.capital_pct,
                    e.buy_below_pct,
                    e.sell_above_pct,
                    e.buy_after_sell_pct,
                    e.cash_floor,
                    e.order_gap_pct,
                ]
                .iter()
                .any(Option::is_some);
            let params = any.then(|| vectura_strategy::grid::GridParams {
                capital_pct: e.capital_pct.unwrap_or(d.capital_pct),
                buy_below_pct: e.buy_below_pct.unwrap_or(d.buy_below_pct),
                sell_above_pct: e.sell_above_pct.unwrap_or(d.sell_above_pct),
                buy_after_sell_pct: e.buy_after_sell_pct.unwrap_or(d.buy_after_sell_pct),
                cash_floor: e.cash_floor.unwrap_or(d.cash_floor),
                order_gap_pct: e.order_gap_pct.unwrap_or(d.order_gap_pct),
            });
            let limits = vectura_store::RiskLimits {
                max_order_notional: e.max_order_notional,
                max_orders_per_day: e.max_orders_per_day,
                max_daily_loss: e.max_daily_loss,
                max_position_value: e.max_position_value,
            };
            rt.block_on(ops::enable(&store, &e.symbol, params, limits))?;
            writeln!(out, "ENABLED {}", e.symbol.trim().to_ascii_uppercase())?;
        }
        TradeAction::Disable { symbol } => {
            if rt.block_on(ops::disable(&store, symbol))? {
                writeln!(out, "DISABLED {}", symbol.trim().to_ascii_uppercase())?;
            } else {
                return Err(anyhow!(
                    "{symbol}: no trading controls to disable (it was never enabled)"
                ));
            }
        }
    }
    Ok(())
}
