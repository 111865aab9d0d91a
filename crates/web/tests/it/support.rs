//! A test server and an HTTP client that logs in as a browser does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{redirect, Response, StatusCode};
use vectura_store::Store;
use vectura_web::{AppState, Config, Server};

/// The admin password the tests set.
pub const PASSWORD: &str = "a long test password";

/// A running server over a fresh SQLite file.
pub struct TestServer {
    pub base: String,
    pub state: Arc<AppState>,
    pub store: Store,
    pub dir: PathBuf,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("vectura-web-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts a server; with `password`, the admin password is set first (no set-up token then).
pub async fn start_with(password: Option<&str>, config: Config) -> TestServer {
    let dir = temp_dir("srv");
    let url = format!("sqlite://{}?mode=rwc", dir.join("vectura.db").display());
    let store = Store::open(&url).await.unwrap();
    if let Some(pw) = password {
        let h = vectura_web::hash_password(pw).unwrap();
        store.set_user_password("admin", &h, 0).await.unwrap();
    }
    let server = Server::bind(
        store.clone(),
        Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..config
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", server.local_addr());
    let state = server.state();
    tokio::spawn(server.run());
    TestServer {
        base,
        state,
        store,
        dir,
    }
}

/// A server with the admin password set.
pub async fn start() -> TestServer {
    start_with(Some(PASSWORD), Config::default()).await
}

/// An HTTP client that follows no redirect (the tests look at them) and keeps its cookies by hand.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: Vec<(String, String)>,
    pub csrf: Option<String>,
}

/// The value of `name="NAME" value="…"` in a page.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let key = format!("name=\"{name}\" value=\"");
    let i = html.find(&key)? + key.len();
    let j = html[i..].find('"')?;
    Some(html[i..i + j].to_string())
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client {
            http: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            base: base.to_string(),
            cookies: Vec::new(),
            csrf: None,
        }
    }

    /// The Cookie header of the kept cookies.
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps the cookies a reply sets (an empty value or Max-Age=0 removes one).
    pub fn keep(&mut self, r: &Response) {
        for v in r.headers().get_all(SET_COOKIE) {
            let s = v.to_str().unwrap();
            let (kv, _) = s.split_once(';').unwrap_or((s, ""));
            let (k, val) = kv.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !val.is_empty() && !s.contains("Max-Age=0") {
                self.cookies.push((k.to_string(), val.to_string()));
            }
        }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut b = self.http.request(method, format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            b = b.header(COOKIE, self.cookie_header());
        }
        b
    }

    pub async fn get(&mut self, path: &str) -> Response {
        let r = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        self.keep(&r);
        r
    }

    /// Submits the login form as a browser would: the page first (for its CSRF cookie and field).
    pub async fn try_login(&mut self, user: &str, password: &str) -> Response {
        let page = self.get("/login").await.text().await.unwrap();
        let csrf = hidden_value(&page, "csrf").expect("the login form has a csrf field");
        let r = self
            .request(reqwest::Method::POST, "/login")
            .form(&[
                ("username", user),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/"),
            ])
            .send()
            .await
            .unwrap();
        self.keep(&r);
        r
    }

    /// Logs in as admin and reads the session's CSRF token.
    pub async fn login(&mut self) {
        let r = self.try_login("admin", PASSWORD).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
        let s: serde_json::Value = self.get("/api/v1/session").await.json().await.unwrap();
        self.csrf = Some(s["csrf_token"].as_str().unwrap().to_string());
    }

    /// A mutating call carrying the session's CSRF header.
    pub fn with_csrf(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request(method, path)
            .header("X-CSRF-Token", self.csrf.clone().expect("logged in"))
    }
}

/// Minute bars of the regular session (09:30-16:00 New York, EST: 14:30-21:00 UTC) on the given
/// days of March 2024 (before the DST change), as CSV: a deterministic price walk.
pub fn minute_csv(days: &[u32]) -> String {
    let mut out = String::from("timestamp,open,high,low,close,volume\n");
    let mut p = 100.0f64;
    for d in days {
        for m in 0..390u32 {
            let (h, mi) = (14 + (30 + m) / 60, (30 + m) % 60);
            let step = (((d * 390 + m) % 7) as f64 - 3.0) * 0.01;
            let o = p;
            p += step;
            let (hi, lo) = (o.max(p) + 0.01, o.min(p) - 0.01);
            out.push_str(&format!(
                "2024-03-{d:02}T{h:02}:{mi:02}:00Z,{o:.2},{hi:.2},{lo:.2},{p:.2},{}\n",
                1000 + m
            ));
        }
    }
    out
}
