//! `vectura config check`: printing of `vectura_trader::check`.

use std::io::Write;

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};

use crate::env;

/// `vectura config`.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

/// What `vectura config` does.
#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// What is set (keys masked), what is missing for which command, whether each service answers.
    Check {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `vectura config`.
pub fn run(a: &ConfigArgs, out: &mut dyn Write) -> Result<()> {
    env::load_dotenv()?;
    let ConfigAction::Check { json } = &a.action;
    let rt = env::runtime()?;
    let db = env::database_url(true).ok().map(|l| l.url);
    let r = rt.block_on(vectura_trader::check::check(env::var, db));
    if *json {
        serde_json::to_writer_pretty(&mut *out, &r)?;
        writeln!(out)?;
    } else {
        writeln!(out, "settings:")?;
        for s in &r.settings {
            match &s.value {
                Some(v) => writeln!(out, "  {:<22} {v}", s.name)?,
                None if s.needed_by.is_empty() => {
                    writeln!(out, "  {:<22} unset: {}", s.name, s.when_unset)?
                }
                None => writeln!(
                    out,
                    "  {:<22} MISSING for {}: {}",
                    s.name, s.needed_by, s.when_unset
                )?,
            }
        }
        writeln!(out, "services:")?;
        for s in &r.services {
            writeln!(out, "  {:<15} {:<8} {}", s.name, s.state, s.detail)?;
        }
    }
    match r.failed() {
        0 => Ok(()),
        n => Err(anyhow!(
            "{n} service(s) did not answer: see the lines marked failed above"
        )),
    }
}
