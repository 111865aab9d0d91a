//! `vectura serve`: the web dashboard against the configured store (a thin call into vectura-web).

use std::io::Write;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::Args;

use crate::env;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on. Anything but a loopback address (127.0.0.1, ::1) opens the dashboard
    /// to the network: put it behind an HTTPS proxy and pass --secure-cookies.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Mark the session cookies Secure (the browser then sends them over HTTPS only).
    #[arg(long)]
    pub secure_cookies: bool,
}

pub fn run(a: &ServeArgs, out: &mut dyn Write) -> Result<()> {
    env::load_dotenv()?;
    let loc = env::database_url(true)?;
    let rt = env::runtime()?;
    let store = env::open_store(&rt, true)?;
    rt.block_on(async {
        let config = vectura_web::Config {
            bind: a.bind,
            secure_cookies: a.secure_cookies,
            ..vectura_web::Config::default()
        };
        let server = vectura_web::Server::bind(store, config)
            .await
            .context("starting the dashboard")?;
        let addr = server.local_addr();
        writeln!(
            out,
            "vectura dashboard on http://{addr} (store: {})",
            loc.describe()
        )?;
        if !addr.ip().is_loopback() {
            writeln!(
                out,
                "warning: {addr} is reachable from other machines: serve it over HTTPS (a proxy) with --secure-cookies"
            )?;
        }
        if let Some(token) = server.setup_token() {
            // The one secret printed on purpose: it is the only way in before a password exists,
            // and it ends with this process.
            writeln!(
                out,
                "No dashboard password is set. Open http://{addr}/setup and enter this one-time token:\n\n    {token}\n\n(or stop the server and run `vectura user set-password`)"
            )?;
        }
        out.flush()?;
        server.run().await.context("serving the dashboard")
    })
}
