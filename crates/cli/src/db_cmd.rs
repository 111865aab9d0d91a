//! `vectura db …`: the database schema.

use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand};

/// `vectura db`.
#[derive(Args, Debug)]
pub struct DbArgs {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Print the SQL that creates vectura's tables (vectura also runs it by itself on start).
    Schema(SchemaArgs),
}

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// Postgres / Supabase SQL: the default and only dialect printed (users paste it by hand; a
    /// SQLite file is created on start). Accepted for the scripts that pass it.
    #[arg(long)]
    pub postgres: bool,
}

/// Runs `vectura db …`.
pub fn run(args: &DbArgs, out: &mut dyn Write) -> Result<()> {
    match &args.command {
        DbCommand::Schema(_) => write!(out, "{}", vectura_store::schema_sql_postgres())?,
    }
    Ok(())
}
