//! `vectura user set-password`: the dashboard's admin password, read from the terminal (without
//! echo, twice) or from standard input (one line), never from the command line.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};

use crate::env;

#[derive(Args, Debug)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Set the dashboard password (read from the terminal, or one line of standard input). Every
    /// session of the user ends.
    SetPassword(SetPasswordArgs),
}

#[derive(Args, Debug)]
pub struct SetPasswordArgs {
    /// The user (the dashboard has one: admin).
    #[arg(long, default_value = vectura_web::ADMIN_USER)]
    pub user: String,
}

pub fn run(a: &UserArgs, out: &mut dyn Write) -> Result<()> {
    match &a.command {
        UserCommand::SetPassword(p) => set_password(p, out),
    }
}

/// Turns terminal echo off until dropped.
struct NoEcho {
    saved: Option<libc::termios>,
}

impl NoEcho {
    fn new() -> NoEcho {
        // SAFETY: tcgetattr/tcsetattr on stdin with a zeroed termios the call fills in.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                return NoEcho { saved: None };
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            t.c_lflag |= libc::ECHONL;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) != 0 {
                return NoEcho { saved: None };
            }
            NoEcho { saved: Some(saved) }
        }
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if let Some(t) = self.saved {
            // SAFETY: restores the attributes read in `new`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t);
            }
        }
    }
}

fn read_line(stdin: &mut impl BufRead) -> Result<String> {
    let mut s = String::new();
    let n = stdin.read_line(&mut s).context("reading the password")?;
    if n == 0 {
        bail!("no password was given: type it, or pipe it on standard input (echo … | vectura user set-password)");
    }
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}

fn set_password(a: &SetPasswordArgs, out: &mut dyn Write) -> Result<()> {
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    let password = if stdin.is_terminal() {
        let _echo = NoEcho::new();
        eprint!("New password for {}: ", a.user);
        let p1 = read_line(&mut lock)?;
        eprint!("Again: ");
        let p2 = read_line(&mut lock)?;
        if p1 != p2 {
            bail!("the two passwords differ: nothing was changed; run the command again");
        }
        p1
    } else {
        read_line(&mut lock)?
    };
    vectura_web::auth::check_new_password(&password)
        .map_err(|m| anyhow!("{m}: nothing was changed"))?;
    let hash = vectura_web::hash_password(&password)?;
    env::load_dotenv()?;
    let rt = env::runtime()?;
    let store = env::open_store(&rt, true)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    rt.block_on(store.set_user_password(&a.user, &hash, now))
        .map_err(|e| anyhow!("{e}"))?;
    writeln!(
        out,
        "the password of {} is set (its sessions were ended); log in at the dashboard",
        a.user
    )?;
    Ok(())
}
