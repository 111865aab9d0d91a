//! `vectura demo`: the whole system in a browser with no keys and no servers (a thin call into
//! `vectura_web::demo`).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::env;

/// `vectura demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Port of the dashboard on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Replay speed, simulated seconds per real second (300: a minute bar every 0.2 s).
    #[arg(long, default_value_t = 300.0)]
    pub speed: f64,
    /// Do not open a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Wipe the demo's database and start over.
    #[arg(long)]
    pub reset: bool,
    /// Folder of the demo's database (demo.db). Default: VECTURA_DATA_DIR, or the platform's data
    /// folder plus `vectura`.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Opens `url` in the desktop's browser when `xdg-open` (or `open` on macOS) exists; never fails.
fn open_browser(url: &str) -> bool {
    for cmd in ["xdg-open", "open"] {
        if std::process::Command::new(cmd)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
        {
            return true;
        }
    }
    false
}

/// Runs `vectura demo` until Ctrl-C.
pub fn run(a: &DemoArgs, out: &mut dyn Write) -> Result<()> {
    env::load_dotenv()?;
    let data_dir = match &a.data_dir {
        Some(d) => d.clone(),
        None => vectura_jobs::config::data_dir()?,
    };
    let cfg = vectura_web::demo::DemoConfig {
        data_dir: data_dir.clone(),
        bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), a.port),
        speed: a.speed,
        reset: a.reset,
    };
    let rt = env::runtime()?;
    crate::interrupt::install();
    rt.block_on(async {
        let demo = vectura_web::demo::Demo::prepare(&cfg)
            .await
            .context("starting the demo")?;
        if demo.resumed_bars > 0 {
            writeln!(
                out,
                "resumed the demo in {}: {} bars replayed, {} orders handed again to the simulated account",
                vectura_web::demo::db_path(&data_dir).display(),
                demo.resumed_bars,
                demo.resumed_orders
            )?;
        }
        // The one secret printed on purpose: it logs in once, and dies with this process.
        writeln!(
            out,
            "vectura demo: the real trader on the bundled SPY minute bars (2011), simulated broker, speed {}×\n\ndashboard:  {}\nlog in once with:\n\n    {}\n\n(stop with Ctrl-C; run `vectura demo` again to resume, `vectura demo --reset` to start over)",
            a.speed, demo.url, demo.login_url
        )?;
        out.flush()?;
        if !a.no_browser && !open_browser(&demo.login_url) {
            writeln!(out, "(no browser opener found: open the link above yourself)")?;
        }
        let stop = async {
            while crate::interrupt::received().is_none() {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        };
        demo.run(stop).await.context("running the demo")?;
        writeln!(out, "demo stopped; run `vectura demo` to resume")?;
        Ok(())
    })
}
