//! `vectura trade`: the live runtime (crates/trader), paper by default. A thin layer: flags, the
//! store, the keys, signals; the logic is `vectura_trader::session`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use clap::{Args, ValueEnum};
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
pub struct TradeArgs {
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

/// Runs `vectura trade`.
pub fn run(args: &TradeArgs, out: &mut dyn Write) -> Result<()> {
    env::load_dotenv()?;
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
