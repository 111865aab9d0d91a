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

/// `vectura trade`'s reports.
#[derive(Subcommand, Debug)]
pub enum TradeCommand {
    /// Live against the backtest: a session's stored bars through the next-open model, from the
    /// run's state at the open; every difference with what the broker did (slippage, rejects, halts).
    Parity(ParityArgs),
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
pub struct TradeArgs {
    #[command(subcommand)]
    pub command: Option<TradeCommand>,
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

/// Runs `vectura trade`.
pub fn run(args: &TradeArgs, out: &mut dyn Write) -> Result<()> {
    env::load_dotenv()?;
    let loc = env::database_url(true)?;
    if let Some(TradeCommand::Parity(a)) = &args.command {
        return parity(a, &loc.url, out);
    }
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
                match args.clock {
                    ClockKind::Wall => {
                        vectura_trader::session::trade_alpaca(store, cfg, args.live, args.once, stop)
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
                            store, cfg, args.live, crash, stop, &mut print,
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
                    return Err(anyhow!("--live trades real money at Alpaca: it cannot go with --broker sim; drop one"));
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
