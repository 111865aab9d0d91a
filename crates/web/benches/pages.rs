//! Server-side page times with a full database: 10 years of seeded minute bars (about 983 000 bars
//! on 2520 days), 50 stored backtests (each with a real result document) and a 100 000-row sweep.
//! Each page is fetched over HTTP from a server on 127.0.0.1 with a logged-in session (issue 16:
//! every page under 200 ms).
//!
//! `cargo bench -p vectura-web --bench pages` (release); the data is built once per run. Each page's
//! first view (nothing cached yet) is printed before criterion's runs.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use vectura_core::{calendar, BarSeries};
use vectura_store::{JobStatus, NewSweepRun, Store, SweepResult, SweepStatus};

struct Fixture {
    base: String,
    cookie: String,
    backtest: String,
    sweep: String,
    _dir: std::path::PathBuf,
}

fn by_day(s: &BarSeries) -> Vec<(chrono::NaiveDate, BarSeries)> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=s.len() {
        if i == s.len() || calendar::ny_date(s.ts[i]) != calendar::ny_date(s.ts[start]) {
            out.push((calendar::ny_date(s.ts[start]), s.slice(start, i)));
            start = i;
        }
    }
    out
}

async fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!("vectura-web-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&format!("sqlite://{}?mode=rwc", dir.join("v.db").display()))
        .await
        .unwrap();
    let bars = vectura_data::synth::seeded_minute_bars(10, 7);
    let days = by_day(&bars);
    let refs: Vec<_> = days.iter().map(|(d, s)| (*d, s)).collect();
    store.put_days("SYN", &refs).await.unwrap();

    // One real result document (the bundled SPY bars), stored as 50 runs.
    let ctx = vectura_jobs::JobContext {
        store: vectura_jobs::StoreAccess::Open {
            store: store.clone(),
            name: "bench".into(),
        },
        ..vectura_jobs::JobContext::new(tokio::runtime::Handle::current())
    };
    let req = vectura_jobs::BacktestRequest {
        record_series: true,
        ..Default::default()
    };
    let doc = tokio::task::spawn_blocking(move || vectura_jobs::backtest::run(&req, &ctx))
        .await
        .unwrap()
        .unwrap()
        .done()
        .unwrap()
        .doc;
    let mut backtest = String::new();
    for i in 0..50 {
        let id = format!("bt-bench-{i:02}");
        let stored = json!({"input": {"name": format!("Run {i}")}, "request": {}});
        store
            .create_job(&id, "backtest", &format!("Run {i}"), &stored, 1000 + i)
            .await
            .unwrap();
        store.start_job(&id, 1001 + i).await.unwrap();
        store
            .finish_job(&id, JobStatus::Done, &json!([]), Some(&doc), None, 1002 + i)
            .await
            .unwrap();
        backtest = id;
    }

    let sweep = store
        .create_sweep_run(&NewSweepRun {
            symbols: vec!["SYN".into()],
            start_date: None,
            end_date: None,
            fill: "NextOpen".into(),
            plan: json!({}),
            set_count: 100_000,
        })
        .await
        .unwrap();
    let rows: Vec<SweepResult> = (0..100_000u64)
        .map(|i| SweepResult {
            set_index: i,
            params: json!({"symbol": "SYN", "buy_below_pct": 0.5 + (i % 100) as f64 * 0.1,
                           "sell_above_pct": 1.0 + ((i / 100) % 100) as f64 * 0.5,
                           "capital_pct": 10.0 + (i / 10_000) as f64 * 10.0}),
            metrics: json!({"total_return_pct": ((i * 7919) % 1000) as f64 / 10.0,
                            "max_drawdown_pct": ((i * 104729) % 500) as f64 / 10.0, "trades": i % 300}),
        })
        .collect();
    for chunk in rows.chunks(10_000) {
        store.append_sweep_results(&sweep, chunk).await.unwrap();
    }
    store
        .finish_sweep_run(&sweep, SweepStatus::Done, None)
        .await
        .unwrap();

    let h = vectura_web::hash_password("bench password 1").unwrap();
    store.set_user_password("admin", &h, 0).await.unwrap();
    let server = vectura_web::Server::bind(
        store,
        vectura_web::Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.run());
    // Log in as a browser does.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http.get(format!("{base}/login")).send().await.unwrap();
    let login_cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = r.text().await.unwrap();
    let key = "name=\"csrf\" value=\"";
    let i = page.find(key).unwrap() + key.len();
    let csrf = &page[i..i + page[i..].find('"').unwrap()];
    let r = http
        .post(format!("{base}/login"))
        .header("cookie", &login_cookie)
        .form(&[
            ("username", "admin"),
            ("password", "bench password 1"),
            ("csrf", csrf),
        ])
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("vectura_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    Fixture {
        base,
        cookie,
        backtest,
        sweep,
        _dir: dir,
    }
}

fn pages(c: &mut Criterion) {
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    let f = rt.block_on(fixture());
    let http = reqwest::Client::new();
    let paths = [
        "/".to_string(),
        "/data".to_string(),
        "/data/SYN".to_string(),
        "/backtests".to_string(),
        format!("/backtests/{}", f.backtest),
        format!("/backtests/{}/report.html", f.backtest),
        "/sweeps".to_string(),
        format!("/sweeps/{}", f.sweep),
    ];
    // The first view of each page, before anything is cached (criterion's warm-up would hide it).
    for p in &paths {
        let url = format!("{}{p}", f.base);
        let t = std::time::Instant::now();
        let len = rt.block_on(async {
            let r = http
                .get(&url)
                .header("cookie", &f.cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{url}");
            r.bytes().await.unwrap().len()
        });
        eprintln!(
            "first view {p}: {:.1} ms ({len} bytes)",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    let mut g = c.benchmark_group("pages");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for p in &paths {
        let url = format!("{}{p}", f.base);
        let name = p
            .replace(&f.sweep, "{sweep}")
            .replace(&f.backtest, "{backtest}");
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let r = http
                        .get(&url)
                        .header("cookie", &f.cookie)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200, "{url}");
                    r.bytes().await.unwrap().len()
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);
