//! Ctrl-C (SIGINT) and SIGTERM during a sweep: the sweep stops, removes its temporary results file,
//! marks its recorded run as interrupted (the rows stored so far stay), and exits with 128 + the
//! signal's number, as a shell reports a process ended by it. With `--local-processes` the signal
//! is passed on to the shard processes, which store nothing.

use crate::common::scratch;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// 100 × 100 = 10 000 sets: minutes of work, so the signal always comes mid-sweep.
const LONG: [&str; 5] = [
    "sweep",
    "--param",
    "buy_below_pct=0.1:10:0.1",
    "--param",
    "sell_above_pct=0.5:50:0.5",
];

fn spawn(data: &Path, args: &[&str]) -> Child {
    Command::new(crate::common::bin())
        .args(args)
        .env("VECTURA_DATA_DIR", data)
        .env("DATABASE_URL", "")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Polls `cond` every 50 ms; fails the test (after killing `child`) if it does not hold within
/// `guard` seconds or the child ends first. A guard against hanging, not a measured duration.
fn wait_until(child: &mut Child, guard: u64, what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..guard * 20 {
        if cond() {
            return;
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!("vectura ended ({st}) before {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("no {what} after {guard} s");
}

/// Waits for `child` to end (killing it and failing after `guard` seconds).
fn finish(mut child: Child, guard: u64) -> std::process::Output {
    for _ in 0..guard * 20 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("vectura did not stop within {guard} s of the signal");
}

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// The temporary files in `dir`: any name ending in `.tmp`.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect()
}

/// The sweep runs recorded in `data`'s SQLite file.
fn runs(data: &Path) -> Vec<vectura_store::SweepRun> {
    let db = data.join("vectura.db");
    if !db.exists() {
        return Vec::new();
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = vectura_store::Store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let r = s.sweep_runs().await.unwrap();
        s.close().await;
        r
    })
}

#[test]
fn a_signal_mid_sweep_removes_the_temporary_file_and_marks_the_run_interrupted() {
    for (sig, name, code) in [("TERM", "SIGTERM", 143), ("INT", "SIGINT", 130)] {
        let d = scratch(&format!("interrupt-{sig}"));
        let data = d.join("data");
        let out = d.join("results.csv");
        let mut a = LONG.to_vec();
        a.extend_from_slice(&["--output", out.to_str().unwrap()]);
        let mut child = spawn(&data, &a);
        // Partial output exists (the temporary file has rows) and the run is recorded as running.
        wait_until(&mut child, 300, "partial output and a running run", || {
            temporaries(&d)
                .iter()
                .any(|p| std::fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false))
                && runs(&data)
                    .iter()
                    .any(|r| r.status == vectura_store::SweepStatus::Running)
        });
        signal(child.id(), sig);
        let o = finish(child, 120);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(code),
            "exits with 128 + the signal ({name}) after cleaning up: {} {err}",
            o.status
        );
        assert!(err.contains(&format!("interrupted by {name}")), "{err}");
        assert_eq!(temporaries(&d), Vec::<PathBuf>::new(), "no temporary file");
        assert!(!out.exists(), "no results file");
        let runs = runs(&data);
        assert_eq!(runs.len(), 1);
        let r = &runs[0];
        assert_eq!(
            r.status,
            vectura_store::SweepStatus::Failed,
            "not left running"
        );
        assert!(
            r.error
                .as_deref()
                .is_some_and(|e| e.contains(&format!("interrupted by {name}"))),
            "{:?}",
            r.error
        );
        assert!(r.finished_at.is_some());
        assert!(r.rows_stored < r.set_count, "stopped before the end");
    }
}

/// The pids of the processes whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: the command may hold spaces, so read after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_signal_to_a_local_processes_sweep_stops_its_shards_and_stores_nothing() {
    let d = scratch("interrupt-local");
    let data = d.join("data");
    let out = d.join("results.csv");
    let store = format!("file://{}", d.join("store").display());
    let mut a = LONG.to_vec();
    a.extend_from_slice(&[
        "--store",
        &store,
        "--local-processes",
        "2",
        "--output",
        out.to_str().unwrap(),
    ]);
    let mut child = spawn(&data, &a);
    let pid = child.id();
    wait_until(&mut child, 300, "two shard processes", || {
        children_of(pid).len() == 2
    });
    let shards = children_of(pid);
    signal(pid, "TERM");
    let o = finish(child, 120);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(143), "{} {err}", o.status);
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    for s in shards {
        assert!(
            !Path::new(&format!("/proc/{s}")).exists(),
            "shard process {s} ended and was reaped"
        );
    }
    let results = d.join("store/results");
    let stored: Vec<_> = match std::fs::read_dir(&results) {
        Ok(r) => r.flatten().map(|e| e.file_name()).collect(),
        Err(_) => Vec::new(),
    };
    assert!(stored.is_empty(), "no shard stored rows: {stored:?}");
    assert!(!out.exists());
    assert_eq!(temporaries(&d), Vec::<PathBuf>::new());
    assert!(runs(&data).is_empty(), "nothing was recorded");
}
