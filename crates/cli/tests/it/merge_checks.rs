//! A distributed sweep trusts nothing it reads back from the store: a shard's object replaced by a
//! copy of another's (or cut short) stops the merge naming that shard, a `plan.json` changed to a
//! plan above the 100 000 000-set cap is refused when a shard runs, and an S3 endpoint that accepts
//! connections and never answers fails with a message naming it, within the time limit.

use crate::common::{scratch, vectura};
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// 3 × 3 × 2 = 18 sets: shard 0 of 2 holds sets 0–8, shard 1 sets 9–17.
const PARAMS: [&str; 6] = [
    "--param",
    "buy_below_pct=1,2,3",
    "--param",
    "sell_above_pct=5,10,15",
    "--param",
    "capital_pct=30,60",
];

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stdout {} stderr {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The one-line error of a refused run (exit code 2).
fn refused(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "refused with exit code 2: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

fn url(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// Packs the 18-set sweep into `store` as two shards and runs both.
fn packed_and_run(store: &str) {
    let mut a = vec!["sweep"];
    a.extend_from_slice(&PARAMS);
    a.extend_from_slice(&["--store", store, "--shard-count", "2"]);
    ok(&vectura(&a));
    for i in ["0", "1"] {
        ok(&vectura(&[
            "sweep",
            "run",
            "--store",
            store,
            "--shard-index",
            i,
        ]));
    }
}

#[test]
fn a_shard_replaced_by_a_copy_of_another_stops_the_merge_naming_it() {
    let d = scratch("merge-copy");
    let store = url(&d.join("store"));
    packed_and_run(&store);
    let results = d.join("store/results");
    let (s0, s1) = (
        results.join("shard-00000-of-00002.csv"),
        results.join("shard-00001-of-00002.csv"),
    );
    let good = std::fs::read(&s1).unwrap();
    std::fs::copy(&s0, &s1).unwrap();
    let out = d.join("merged.csv");
    // Without the database the rows were never parsed: the copy merged into sets 0–8 twice.
    for extra in [&["--no-db"][..], &[][..]] {
        let mut a = vec![
            "sweep",
            "merge",
            "--store",
            &store,
            "--output",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        let err = refused(&vectura(&a));
        assert!(
            err.contains("shard-00001-of-00002.csv")
                && err.contains("should be set 9")
                && err.contains("--shard-index 1"),
            "{err}"
        );
        assert!(!out.exists(), "no merged file");
    }

    // A shard cut short by one row is named too, with its row count.
    let text = String::from_utf8(good.clone()).unwrap();
    let short: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&s1, short).unwrap();
    let err = refused(&vectura(&[
        "sweep",
        "merge",
        "--store",
        &store,
        "--output",
        out.to_str().unwrap(),
        "--no-db",
    ]));
    assert!(
        err.contains("shard-00001-of-00002.csv") && err.contains("holds 8 rows"),
        "{err}"
    );

    // Put back, the merge gives every set once, in order.
    std::fs::write(&s1, good).unwrap();
    ok(&vectura(&[
        "sweep",
        "merge",
        "--store",
        &store,
        "--output",
        out.to_str().unwrap(),
        "--no-db",
    ]));
    let merged = std::fs::read_to_string(&out).unwrap();
    let sets: Vec<u64> = merged
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(sets, (0..18).collect::<Vec<u64>>());
}

/// Changes the stored `plan.json` with `edit`, as someone with write access to the store could.
fn tamper(store_dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let p = store_dir.join("plan.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// Runs `vectura args` and ends it (failing the test) if it has not finished after `guard_secs`:
/// before the fixes these runs went on for minutes or (10^11 sets) for ever.
fn bounded(args: &[&str], envs: &[(&str, String)], guard_secs: u64) -> Output {
    let mut c = Command::new(crate::common::bin());
    c.args(args)
        .env("VECTURA_DATA_DIR", crate::common::own_data_dir())
        .env("DATABASE_URL", "")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    for _ in 0..guard_secs * 10 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    let o = child.wait_with_output().unwrap();
    panic!(
        "vectura {args:?} still ran after {guard_secs} s; stderr {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_plan_json_changed_past_the_cap_is_refused_when_a_shard_runs() {
    let d = scratch("merge-plan");
    let dir = d.join("store");
    let store = url(&dir);
    packed_and_run(&store);
    let original = std::fs::read(dir.join("plan.json")).unwrap();
    // 100^5 × 10 = 10^11 sets of real parameters.
    tamper(&dir, |v| {
        let names = [
            "capital_pct",
            "buy_below_pct",
            "sell_above_pct",
            "buy_after_sell_pct",
            "cash_floor",
            "order_gap_pct",
        ];
        let axes: Vec<serde_json::Value> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let k = if i == 5 { 10 } else { 100 };
                let values: Vec<f64> = (0..k).map(|j| 1.0 + j as f64 / 100.0).collect();
                serde_json::json!({ "name": n, "values": values })
            })
            .collect();
        v["plan"]["axes"] = serde_json::Value::Array(axes);
    });
    let run = ["sweep", "run", "--store", &store, "--shard-index", "0"];
    let err = refused(&bounded(&run, &[], 120));
    assert!(
        err.contains("plan.json") && err.contains("100000000000 sets"),
        "{err}"
    );
    let out = d.join("m.csv");
    let merge = [
        "sweep",
        "merge",
        "--store",
        &store,
        "--output",
        out.to_str().unwrap(),
        "--no-db",
    ];
    let err = refused(&bounded(&merge, &[], 120));
    assert!(err.contains("100000000000 sets"), "{err}");

    // A shard count no sweep packs (the merge would look for 10^12 objects) is refused as well.
    std::fs::write(dir.join("plan.json"), &original).unwrap();
    tamper(&dir, |v| {
        v["shard_count"] = serde_json::json!(1_000_000_000_000u64)
    });
    let err = refused(&bounded(&merge, &[], 120));
    assert!(err.contains("shard_count 1000000000000"), "{err}");
    assert!(!out.exists());
}

#[test]
fn an_s3_endpoint_that_accepts_and_never_answers_fails_naming_it() {
    // Accepts every connection and keeps it open without a byte in reply.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    let endpoint = format!("http://127.0.0.1:{port}");
    let envs = |timeout: &str| {
        vec![
            ("AWS_ENDPOINT_URL", endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "test-key".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test-secret".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("VECTURA_S3_TIMEOUT_SECS", timeout.to_string()),
        ]
    };
    let run = [
        "sweep",
        "run",
        "--store",
        "s3://bucket/sweep",
        "--shard-index",
        "0",
    ];
    let err = refused(&bounded(&run, &envs("1"), 120));
    assert!(
        err.contains(&format!(
            "the S3 endpoint {endpoint} did not answer within 1 s"
        )) && err.contains("plan.json")
            && err.contains("VECTURA_S3_TIMEOUT_SECS"),
        "{err}"
    );
    assert!(!err.contains("test-secret"), "the secret is never printed");
    // Packing (a write) is bounded the same way.
    let mut pack = vec!["sweep"];
    pack.extend_from_slice(&PARAMS);
    pack.extend_from_slice(&["--store", "s3://bucket/sweep", "--shard-count", "2"]);
    let err = refused(&bounded(&pack, &envs("1"), 120));
    assert!(err.contains("did not answer within 1 s"), "{err}");
    // A limit that is not whole seconds in range is named with its range.
    let err = refused(&bounded(&run, &envs("0"), 120));
    assert!(
        err.contains("VECTURA_S3_TIMEOUT_SECS=\"0\"") && err.contains("1 to 3600"),
        "{err}"
    );
}
