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

/// `vectura trade`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TradeArgs {
    /// An operator command instead of trading.
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
}

/// The operator's commands (they act on the store, and `halt` on the broker; a running trader
/// sees a halt or resume at its next step).
#[derive(Subcommand, Debug)]
pub enum TradeAction {
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
        let r = match args.broker {
            BrokerKind::Alpaca => {
                if !args.bars.is_empty() {
                    return Err(anyhow!("--bars is for --broker sim: drop it, or add --broker sim"));
                }
                let cfg = AlpacaConfig::from_env()?;
                vectura_trader::session::trade_alpaca(store, cfg, args.live, args.once, stop)
                    .await?
            }
            BrokerKind::Sim => {
                if args.live {
                    return Err(anyhow!("--live trades real money at Alpaca: it cannot go with --broker sim; drop one"));
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
                vectura_trader::session::trade_sim(store, bars, args.cash, args.once, stop)
                    .await?
            }
        };
        Ok::<_, anyhow::Error>(r)
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

fn action(a: &TradeAction, out: &mut dyn Write) -> Result<()> {
    use vectura_trader::ops;
    let rt = env::runtime()?;
    let store = env::open_store(&rt, true)?;
    let now = chrono::Utc::now();
    match a {
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
