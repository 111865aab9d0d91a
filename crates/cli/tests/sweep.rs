//! Sweeps: one process vs shard processes through an object store give identical results, shards are
//! idempotent, and the S3 path works against a real signature-checking S3 server on 127.0.0.1.

mod common;
use common::{scratch, vectura};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PARAMS: [&str; 6] = [
    "--param",
    "buy_below_pct=0.5:3:0.5",
    "--param",
    "sell_above_pct=1,5,10,18",
    "--param",
    "capital_pct=30,60",
];

fn sweep(extra: &[&str]) -> std::process::Output {
    let mut a = vec!["sweep"];
    a.extend_from_slice(&PARAMS);
    a.extend_from_slice(extra);
    vectura(&a)
}

fn ok(o: &std::process::Output) {
    assert!(
        o.status.success(),
        "stdout {} stderr {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn single(dir: &Path) -> Vec<u8> {
    let out = dir.join("single.csv");
    let o = sweep(&["--output", out.to_str().unwrap()]);
    ok(&o);
    std::fs::read(out).unwrap()
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

#[test]
fn one_process_and_four_shard_processes_agree_set_by_set() {
    let d = scratch("sweep-local");
    let one = single(&d);
    let text = String::from_utf8(one.clone()).unwrap();
    assert_eq!(
        text.lines().count(),
        1 + 6 * 4 * 2,
        "a header and one row per set"
    );
    let out = d.join("four.csv");
    let store = file_url(&d.join("store"));
    let o = sweep(&[
        "--store",
        &store,
        "--local-processes",
        "4",
        "--output",
        out.to_str().unwrap(),
    ]);
    ok(&o);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        one,
        "merged shards equal the single-machine file byte for byte"
    );
}

#[test]
fn a_killed_shard_rerun_gives_the_same_merge_and_missing_shards_are_named() {
    let d = scratch("sweep-kill");
    let one = single(&d);
    let store = file_url(&d.join("store"));
    // Pack as three shards, run 0 and 2.
    ok(&sweep(&["--store", &store, "--shard-count", "3"]));
    for i in ["0", "2"] {
        ok(&vectura(&[
            "sweep",
            "run",
            "--store",
            &store,
            "--shard-index",
            i,
        ]));
    }
    // Merging now names the missing shard.
    let merged = d.join("merged.csv");
    let o = vectura(&[
        "sweep",
        "merge",
        "--store",
        &store,
        "--output",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("[1]"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!merged.exists(), "no partial merged file");
    // Shard 1 is started and killed at once, then run again to completion; shard 2 is re-run too.
    let mut child = Command::new(env!("CARGO_BIN_EXE_vectura"))
        .args(["sweep", "run", "--store", &store, "--shard-index", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    ok(&vectura(&[
        "sweep",
        "run",
        "--store",
        &store,
        "--shard-index",
        "1",
    ]));
    ok(&vectura(&[
        "sweep",
        "run",
        "--store",
        &store,
        "--shard-index",
        "2",
    ]));
    ok(&vectura(&[
        "sweep",
        "merge",
        "--store",
        &store,
        "--output",
        merged.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(&merged).unwrap(), one);
}

#[test]
fn a_store_holding_another_sweep_is_refused() {
    let d = scratch("sweep-other");
    let store = file_url(&d.join("store"));
    ok(&sweep(&["--store", &store, "--shard-count", "2"]));
    let o = vectura(&[
        "sweep",
        "--param",
        "cash_floor=1,2",
        "--store",
        &store,
        "--shard-count",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("different sweep"));
}

/// The s3s-fs binary (0.14.1 verifies SigV4 signatures), from VECTURA_S3S_FS or PATH.
fn s3s_fs() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VECTURA_S3S_FS") {
        return Some(PathBuf::from(p));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("s3s-fs"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("s3s-fs is not installed: .ci/run installs it (cargo install s3s-fs --version 0.14.1 --features binary)");
        }
        eprintln!("skipping: s3s-fs not found (set VECTURA_S3S_FS or put it on PATH)");
    }
    found
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn shards_through_a_real_s3_server_and_a_wrong_secret_is_refused() {
    let Some(bin) = s3s_fs() else { return };
    let d = scratch("sweep-s3");
    let one = single(&d);
    let root = d.join("s3root");
    std::fs::create_dir_all(root.join("sweeps")).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let _server = Server(
        Command::new(&bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                "AKTEST",
                "--secret-key",
                "SKTEST",
            ])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts"),
    );
    // Wait for it to listen (bounded).
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let run = |secret: &str, args: &[&str]| {
        let mut a = vec!["sweep"];
        a.extend_from_slice(&PARAMS);
        a.extend_from_slice(args);
        Command::new(env!("CARGO_BIN_EXE_vectura"))
            .args(&a)
            .env("AWS_ACCESS_KEY_ID", "AKTEST")
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
            .output()
            .unwrap()
    };
    let out = d.join("s3.csv");
    let o = run(
        "SKTEST",
        &[
            "--store",
            "s3://sweeps/run1",
            "--local-processes",
            "2",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    ok(&o);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        one,
        "the S3 path gives the single-machine file"
    );
    let bad = run(
        "WRONG",
        &["--store", "s3://sweeps/run2", "--shard-count", "2"],
    );
    assert_eq!(bad.status.code(), Some(2), "a wrong secret is refused");
    let err = String::from_utf8_lossy(&bad.stderr).to_lowercase();
    assert!(
        err.contains("sweep store") || err.contains("signature") || err.contains("403"),
        "{err}"
    );
}

#[test]
fn walk_forward_reports_out_of_sample_results_of_in_sample_winners() {
    let Some(shared) = common::shared() else {
        return;
    };
    let d = scratch("sweep-wf");
    let out = d.join("wf.csv");
    let data = shared.join("data/yahoofinance-SPY-20080101-20180101.csv");
    let o = vectura(&[
        "sweep",
        "--data",
        data.to_str().unwrap(),
        "--contribution-frequency-days",
        "0",
        "--param",
        "buy_below_pct=1:5:1",
        "--param",
        "sell_above_pct=2,5,10,20",
        "--walk-forward",
        "720:180",
        "--top",
        "2",
        "--rank-by",
        "total_return_pct",
        "--output",
        out.to_str().unwrap(),
    ]);
    ok(&o);
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(rows.len() >= 20, "about 16 windows × top 2: {}", rows.len());
    for pair in rows.chunks(2) {
        assert_eq!(pair[0][5], "1");
        assert_eq!(pair[1][5], "2");
        // The winner's in-sample metric is at least the runner-up's.
        assert!(pair[0][13].parse::<f64>().unwrap() >= pair[1][13].parse::<f64>().unwrap());
        // Out of sample starts the day after in sample ends.
        let is_end = chrono::NaiveDate::parse_from_str(pair[0][2], "%Y-%m-%d").unwrap();
        let oos_start = chrono::NaiveDate::parse_from_str(pair[0][3], "%Y-%m-%d").unwrap();
        assert_eq!(oos_start, is_end + chrono::Duration::days(1));
    }
    assert!(String::from_utf8_lossy(&o.stdout).contains("in-sample winners"));
}
