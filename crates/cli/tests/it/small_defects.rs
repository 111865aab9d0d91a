//! Issue 14's smaller CLI defects, one test each: what a new user reads must be plain and true, bad
//! input must be named as such (exit 2, one line), and a closed pipe is not an error.

use crate::common::{own_data_dir, scratch, vectura};
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

/// Asserts a refusal: exit 2, one stderr line naming every `needle` and none of `not`, no stdout.
fn refused(o: &Output, needles: &[&str], not: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{err:?} should name {n:?}");
    }
    for n in not {
        assert!(!err.contains(n), "{err:?} should not speak of {n:?}");
    }
    assert!(o.stdout.is_empty(), "nothing on stdout");
    err
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const PARAMS: [&str; 4] = [
    "--param",
    "buy_below_pct=1,2,3",
    "--param",
    "sell_above_pct=5,10",
];

fn sweep(extra: &[&str]) -> Output {
    let mut a = vec!["sweep"];
    a.extend_from_slice(&PARAMS);
    a.extend_from_slice(extra);
    vectura(&a)
}

/// `--random N` above the 6 distinct sets, and `--random 0`, are refused before anything runs
/// (done on main by the engine's plan check; verified here at the CLI).
#[test]
fn random_draws_beyond_the_distinct_sets_or_none_are_refused() {
    refused(
        &sweep(&["--random", "7", "--no-db"]),
        &["--random 7", "6 distinct", "--random 6 or fewer"],
        &[],
    );
    refused(
        &sweep(&["--random", "0", "--no-db"]),
        &["--random 0", "--random 1 or more"],
        &["set·bars/s"],
    );
    let out = ok(&sweep(&["--random", "6", "--no-db"]));
    assert!(out.starts_with("6 sets × "), "{out}");
    // All six draws are different sets: each combination runs exactly once (drawn without
    // replacement), whatever the seed.
    let dir = scratch("random-all-distinct");
    for seed in ["1", "7", "12345"] {
        let csv = dir.join(format!("seed-{seed}.csv"));
        ok(&sweep(&[
            "--random",
            "6",
            "--seed",
            seed,
            "--no-db",
            "--output",
            csv.to_str().unwrap(),
        ]));
        let text = std::fs::read_to_string(&csv).unwrap();
        let mut lines = text.lines();
        let head: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
        let (b, s) = (col("buy_below_pct"), col("sell_above_pct"));
        let mut sets: Vec<(String, String)> = lines
            .map(|l| {
                let c: Vec<&str> = l.split(',').collect();
                (c[b].to_string(), c[s].to_string())
            })
            .collect();
        sets.sort();
        let mut want: Vec<(String, String)> = ["1", "2", "3"]
            .iter()
            .flat_map(|b| ["10", "5"].map(|s| (b.to_string(), s.to_string())))
            .collect();
        want.sort();
        assert_eq!(sets, want, "seed {seed}: every set once");
    }
}

/// A shard with no sets (more shards than sets) reports 0 set·bars/s, never "-0" (an empty f64 sum
/// is -0.0), and says which slice of how many sets it ran in words.
#[test]
fn an_empty_shard_reports_zero_throughput_and_its_slice_plainly() {
    let out = ok(&sweep(&[
        "--shard-index",
        "0",
        "--shard-count",
        "10",
        "--no-db",
    ]));
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("sets 0..0 of 6 (shard index 0 of 10 shards) × "),
        "{first}"
    );
    assert!(first.ends_with(": 0 set·bars/s"), "{first}");
    assert!(!out.contains("-0"), "{out}");
}

/// The summary line of a whole sweep is "N sets × B bars of SYM" (no "shard 0/1 of N"), the top
/// table's metric column holds the whole metric name, and every row lines up with the header.
#[test]
fn a_sweep_says_its_sets_plainly_and_the_table_keeps_the_metric_name() {
    let out = ok(&sweep(&["--no-db"]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("6 sets × "), "{}", lines[0]);
    assert!(lines[0].contains(" bars of SPY in "), "{}", lines[0]);
    assert!(!out.contains("shard"), "{out}");
    let at = lines
        .iter()
        .position(|l| l.starts_with("top 10 by time_weighted_return_pct"))
        .unwrap_or_else(|| panic!("{out}"));
    let header = lines[at + 1];
    let cols: Vec<&str> = header.split_whitespace().collect();
    assert!(cols.contains(&"time_weighted_return_pct"), "{header}");
    let rows = &lines[at + 2..at + 2 + 6];
    for r in rows {
        assert_eq!(
            r.chars().count(),
            header.chars().count(),
            "aligned with the header:\n{header}\n{r}"
        );
        assert_eq!(r.split_whitespace().count(), cols.len(), "{r}");
    }
    // Each row's metric ends where the header's metric name ends.
    let end = header.find("time_weighted_return_pct").unwrap() + "time_weighted_return_pct".len();
    for r in rows {
        let before: String = r.chars().take(end).collect();
        assert!(
            before.ends_with(|c: char| c.is_ascii_digit() || c == '—'),
            "{r}"
        );
        assert_eq!(r.chars().nth(end), Some(' '), "{r}");
    }
}

/// `--local-processes 0` is refused as such, not as a shard index or count.
#[test]
fn zero_local_processes_are_refused_as_such() {
    let d = scratch("zero-processes");
    let store = format!("file://{}", d.join("store").display());
    let out = d.join("out.csv");
    refused(
        &sweep(&[
            "--store",
            &store,
            "--local-processes",
            "0",
            "--output",
            out.to_str().unwrap(),
        ]),
        &["--local-processes 0", "1 or more"],
        &["--shard-index", "--shard-count"],
    );
    assert!(!out.exists());
}

/// A start date after the bundled data (which ends in March 2011) names --start-date and the data's
/// span; an end date before it names --end-date. Neither blames the flag that was not given.
#[test]
fn a_date_given_alone_outside_the_data_is_named_itself() {
    let err = refused(
        &vectura(&["backtest", "--start-date", "2020-01-01"]),
        &[
            "--start-date 2020-01-01",
            "after the last day",
            "2011-03-31",
        ],
        &["--end-date"],
    );
    assert!(err.contains("spans 2011-01-03 to 2011-03-31"), "{err}");
    refused(
        &vectura(&["backtest", "--end-date", "2000-01-01"]),
        &[
            "--end-date 2000-01-01",
            "before the first day",
            "2011-01-03",
        ],
        &["--start-date"],
    );
    // Both given and reversed is still the end's fault, named with both.
    refused(
        &vectura(&[
            "backtest",
            "--start-date",
            "2011-02-01",
            "--end-date",
            "2011-01-15",
        ]),
        &["--end-date 2011-01-15 is before --start-date 2011-02-01"],
        &[],
    );
}

/// The header says the fill as the flag spells it (`next-open`), in text and in the sweep report.
#[test]
fn the_fill_is_printed_as_the_flag_spells_it() {
    for (args, want) in [
        (vec![], "fill next-open"),
        (vec!["--fill", "touch"], "fill touch"),
        (vec!["--compat", "vectura-v1"], "fill close"),
    ] {
        let mut a = vec!["backtest"];
        a.extend_from_slice(&args);
        let out = ok(&vectura(&a));
        let first = out.lines().next().unwrap();
        assert!(first.contains(want), "{args:?}: {first}");
        assert!(!out.contains("NextOpen") && !out.contains("Touch"), "{out}");
    }
    let d = scratch("fill-report");
    let page = d.join("s.html");
    ok(&sweep(&["--report", page.to_str().unwrap(), "--no-db"]));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("fill next-open"), "the report's header");
    assert!(!html.contains("fill NextOpen"));
}

/// `data gaps --from` after `--to` is bad input naming both flags, not "no gaps".
#[test]
fn gaps_with_from_after_to_is_refused_naming_both_flags() {
    refused(
        &vectura(&[
            "data",
            "gaps",
            "SPY",
            "--from",
            "2024-03-10",
            "--to",
            "2024-03-01",
        ]),
        &["--from 2024-03-10", "--to 2024-03-01"],
        &["no gaps"],
    );
    // One flag beyond what is stored: the flag is named with the stored day that stands opposite.
    let d = scratch("gaps-one-flag");
    let run = |args: &[&str]| {
        Command::new(crate::common::bin())
            .args(args)
            .env("VECTURA_DATA_DIR", &d)
            .env("DATABASE_URL", "")
            .output()
            .unwrap()
    };
    let fixture = crate::common::fixtures().join("yahoofinance-SPY-20080101-20180101.csv");
    ok(&run(&[
        "data",
        "import",
        fixture.to_str().unwrap(),
        "--symbol",
        "SPY",
    ]));
    refused(
        &run(&["data", "gaps", "SPY", "--from", "2030-01-02"]),
        &[
            "--from 2030-01-02",
            "after its last stored day 2017-12-29",
            "--to",
        ],
        &["no gaps"],
    );
    refused(
        &run(&["data", "gaps", "SPY", "--to", "2000-01-03"]),
        &[
            "--to 2000-01-03",
            "before its first stored day 2007-12-31",
            "--from",
        ],
        &["no gaps"],
    );
}

/// Bars with open or close outside low..high are widened and reported with their count and the
/// first few file:line places, in the text summary, the JSON and `data import`.
#[test]
fn widened_bars_are_reported_with_their_lines() {
    let d = scratch("widened");
    let file = d.join("w.csv");
    let mut text = String::from("timestamp,open,high,low,close,volume\n");
    // Data rows are lines 2..; lines 3, 5, 6, 8, 9, 10 and 12 are inconsistent (close above high).
    let bad = [3, 5, 6, 8, 9, 10, 12];
    for line in 2..=20 {
        let t = format!("2024-01-02T14:{:02}:00Z", line + 10);
        let close = if bad.contains(&line) { 10.5 } else { 10.0 };
        text.push_str(&format!("{t},10,10.2,9.8,{close},100\n"));
    }
    std::fs::write(&file, text).unwrap();
    let f = file.to_str().unwrap();
    let out = ok(&vectura(&[
        "backtest",
        "--data",
        f,
        "--session",
        "all",
        "--symbol",
        "WID",
    ]));
    let note = out
        .lines()
        .find(|l| l.starts_with("note: "))
        .unwrap_or_else(|| panic!("no note: {out}"));
    let first_five: Vec<String> = bad[..5].iter().map(|l| format!("{f}:{l}")).collect();
    assert!(note.contains("7 inconsistent bars were widened"), "{note}");
    assert!(note.contains(&first_five.join(", ")), "{note}");
    assert!(note.ends_with(", …"), "more than shown: {note}");
    assert!(!note.contains(&format!("{f}:10")), "five shown: {note}");
    let json: serde_json::Value = serde_json::from_str(&ok(&vectura(&[
        "backtest",
        "--data",
        f,
        "--session",
        "all",
        "--symbol",
        "WID",
        "--json",
    ])))
    .unwrap();
    assert_eq!(json["data"]["widened_bars"], 7);
    assert_eq!(json["data"]["widened_at"], serde_json::json!(first_five));
    let imported = ok(&vectura(&["data", "import", f, "--symbol", "WID"]));
    assert!(
        imported.contains("7 inconsistent bars were widened") && imported.contains(&first_five[0]),
        "{imported}"
    );
    // A clean file says nothing of widening.
    let clean = d.join("clean.csv");
    std::fs::write(
        &clean,
        "timestamp,open,high,low,close,volume\n2024-01-02T14:30:00Z,10,10.2,9.8,10,100\n2024-01-02T14:31:00Z,10,10.2,9.8,10,100\n",
    )
    .unwrap();
    let out = ok(&vectura(&[
        "backtest",
        "--data",
        clean.to_str().unwrap(),
        "--session",
        "all",
    ]));
    assert!(!out.contains("inconsistent"), "{out}");
}

/// `vectura … | head`: when the reader closes the pipe, vectura stops quietly (no "Broken pipe"
/// error, exit 0). The calendar of 40 years is far more than a pipe buffers, so the write that
/// meets the closed pipe is certain.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    for args in [
        vec!["calendar", "--from", "1991-01-01", "--to", "2030-12-31"],
        vec![
            "calendar",
            "--from",
            "1991-01-01",
            "--to",
            "2030-12-31",
            "--json",
        ],
    ] {
        let mut child = Command::new(crate::common::bin())
            .args(&args)
            .env("VECTURA_DATA_DIR", own_data_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty());
        drop(stdout);
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.is_empty(), "{args:?}: {err}");
        assert_eq!(o.status.code(), Some(0), "{args:?}");
    }
}

/// A plain `sqlite://DIR/new.db` DATABASE_URL in an existing folder is created and used.
#[test]
fn a_plain_sqlite_database_url_creates_the_file() {
    let d = scratch("plain-sqlite");
    let db = d.join("new.db");
    let run = |args: &[&str]| {
        Command::new(crate::common::bin())
            .args(args)
            .env("VECTURA_DATA_DIR", d.join("unused"))
            .env("DATABASE_URL", format!("sqlite://{}", db.display()))
            .output()
            .unwrap()
    };
    let out = ok(&run(&["data", "ranges"]));
    assert!(out.contains("nothing stored yet"), "{out}");
    assert!(db.is_file(), "the database file is created");
    let fixture = crate::common::fixtures().join("yahoofinance-SPY-20080101-20180101.csv");
    ok(&run(&[
        "data",
        "import",
        fixture.to_str().unwrap(),
        "--symbol",
        "SPY",
    ]));
    assert!(ok(&run(&["data", "ranges"])).contains("SPY"));
    assert!(!d.join("unused").join("vectura.db").exists());
}
