//! `vectura`: argument parsing and printing over the library jobs (backtests, sweeps, data,
//! calendars, the database schema).

// `!(x > 0.0)` is deliberate throughout: NaN must fail every price and cash check.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

mod backtest_cmd;
mod calendar_cmd;
mod config_cmd;
mod data_cmd;
mod db_cmd;
mod demo_cmd;
mod env;
mod interrupt;
mod logs;
mod progress;
mod serve_cmd;
mod sweep_cmd;
mod trade_cmd;
mod user_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Automated grid trading: backtest, sweep, paper and live trading on Alpaca.
#[derive(Parser, Debug)]
#[command(name = "vectura", version, about, propagate_version = true)]
struct Cli {
    /// Log lines on stderr as text or JSON (one object a line); the level is RUST_LOG's (info).
    #[arg(long, value_enum, global = true, default_value = "text")]
    log_format: logs::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Backtest a strategy on minute or daily bars (the bundled SPY data when no --data is given).
    #[command(allow_negative_numbers = true)]
    Backtest(Box<backtest_cmd::BacktestArgs>),
    /// List NYSE sessions (open and close, UTC) between two dates.
    Calendar(calendar_cmd::CalendarArgs),
    /// Run many grid parameter sets over the same bars on all cores, ranked, optionally as one shard.
    #[command(allow_negative_numbers = true)]
    Sweep(Box<sweep_cmd::SweepArgs>),
    /// Market data in the store: fetch from Alpaca, import and export files, ranges, gaps, splits.
    Data(data_cmd::DataArgs),
    /// The database: print the schema (for pasting into Supabase's SQL editor).
    Db(db_cmd::DbArgs),
    /// The web dashboard (backtests, sweeps, data) on http://127.0.0.1:8080 by default.
    Serve(serve_cmd::ServeArgs),
    /// Dashboard users: set the admin password.
    User(user_cmd::UserArgs),
    /// The configuration: `vectura config check` (settings, missing keys, services that answer).
    Config(config_cmd::ConfigArgs),
    /// Trade automatically per enabled symbol (paper by default; --live for real money; --broker sim offline).
    Trade(trade_cmd::TradeArgs),
    /// The whole system with no keys: the real trader on bundled real bars, a simulated broker, the dashboard.
    Demo(demo_cmd::DemoArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    logs::init(cli.log_format);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let res = match &cli.command {
        Command::Backtest(a) => backtest_cmd::run(a, &mut out),
        Command::Calendar(a) => calendar_cmd::run(a, &mut out),
        Command::Sweep(a) => sweep_cmd::run(a, &mut out),
        Command::Data(a) => data_cmd::run(a, &mut out),
        Command::Db(a) => db_cmd::run(a, &mut out),
        Command::Serve(a) => serve_cmd::run(a, &mut out),
        Command::User(a) => user_cmd::run(a, &mut out),
        Command::Trade(a) => trade_cmd::run(a, &mut out),
        Command::Config(a) => config_cmd::run(a, &mut out),
        Command::Demo(a) => demo_cmd::run(a, &mut out),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`vectura … | head`): what it wanted it has; nothing to report.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the problem and its fix (and what caused it).
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            // Stopped by Ctrl-C / SIGTERM (after cleaning up): the code a shell gives that signal.
            // Bad input is exit code 2, as clap does for bad flags.
            ExitCode::from(interrupt::exit_code(&e).unwrap_or(2))
        }
    }
}

/// Whether the error is a write to a closed pipe (directly, or inside a JSON writer's error).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}
