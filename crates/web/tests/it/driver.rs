//! The browser tests' helper: a chromedriver process and a headless Chromium session on it, with
//! the few actions the tests take (fill, click, read a text until it is what they wait for, the
//! confirmation dialogs, screenshots under `target/screenshots/`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::{TestServer, PASSWORD};

pub const NEEDS: &str = "needs chromium: run scripts/test (VECTURA_CHROMIUM, VECTURA_CHROMEDRIVER)";

fn tool(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// A chromedriver process and a browser session on it; both end when dropped.
pub struct Browser {
    driver: Child,
    client: Option<Client>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    pub async fn start() -> Browser {
        let driver_bin = tool("VECTURA_CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = tool("VECTURA_CHROMIUM", "/usr/bin/chromium");
        assert!(
            chromium.exists(),
            "{NEEDS}: {} is missing",
            chromium.display()
        );
        let port = free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{NEEDS}: {}: {e}", driver_bin.display()));
        let mut b = Browser {
            driver,
            client: None,
        };
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run"]
            }
        });
        let caps = caps.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{port}");
        // chromedriver takes a moment to listen: retry the session for up to 30 s.
        let mut last = None;
        for _ in 0..60 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => {
                    b.client = Some(c);
                    return b;
                }
                Err(e) => last = Some(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("{NEEDS}: no browser session: {last:?}");
    }

    pub fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// Saves a screenshot as `target/screenshots/NAME.png`.
    pub async fn shot(&self, name: &str) {
        let png = self.c().screenshot().await.unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// The text of the element, read again until it is not empty (a click may still be loading
    /// the next page, whose element replaces this one) or 20 s pass.
    pub async fn text(&self, css: &str) -> String {
        self.text_until(css, |t| !t.is_empty()).await
    }

    /// The element's text as it is now (an empty one included: a hidden message reads empty).
    pub async fn text_now(&self, css: &str) -> String {
        self.text_within(css, 0, |_| true).await
    }

    /// The element's text once `ok` accepts it (or the last seen after 20 s, for the assertion).
    pub async fn text_until(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        self.text_within(css, 20, ok).await
    }

    /// The text once it is `want` (else the last seen, which the caller's assertion shows).
    pub async fn text_is(&self, css: &str, want: &str) -> String {
        self.text_until(css, |t| t == want).await
    }

    /// An input's current value.
    pub async fn value(&self, css: &str) -> Option<String> {
        self.c()
            .find(Locator::Css(css))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.c().find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.c()
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    pub async fn path(&self) -> String {
        let u = self.c().current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    /// Logs in through the form from wherever the browser is.
    pub async fn login(&self, s: &TestServer, next: &str) {
        self.c().goto(&format!("{}{next}", s.base)).await.unwrap();
        self.fill("#password", PASSWORD).await;
        self.click("#login-submit").await;
        self.c()
            .wait()
            .at_most(Duration::from_secs(20))
            .for_url(&url::Url::parse(&format!("{}{next}", s.base)).unwrap())
            .await
            .unwrap();
    }

    /// Polls the element's text until `ok` accepts it or `secs` pass (the last seen then, for the
    /// caller's assertion): the deadline only bounds the wait for a state, it decides nothing.
    pub async fn text_within(&self, css: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = String::new();
        loop {
            if let Ok(e) = self.c().find(Locator::Css(css)).await {
                if let Ok(t) = e.text().await {
                    if ok(&t) {
                        return t;
                    }
                    last = t;
                }
            }
            if Instant::now() >= deadline {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (up to `secs`) for an element matching `css`.
    pub async fn wait_for(&self, css: &str, secs: u64) {
        self.c()
            .wait()
            .at_most(Duration::from_secs(secs))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} within {secs} s: {e}"));
    }

    /// The text of the open alert or confirmation dialog, once one is open (20 s at most).
    pub async fn dialog_text(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.c().get_alert_text().await {
                Ok(t) => return t,
                Err(e) if Instant::now() >= deadline => panic!("no dialog opened: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Runs a script in the page and returns its value.
    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.c().execute(script, vec![]).await.unwrap()
    }

    pub async fn end(mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.close().await;
        }
    }
}
