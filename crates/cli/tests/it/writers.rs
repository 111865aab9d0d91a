//! Files the user names (`--report`, `sweep --output`, `data export --output`) are written without
//! harming what is there: a device or FIFO is written through (never replaced by a file), a symlink
//! stays a symlink and its target gets the new content, a directory is refused naming the fix, and a
//! run that fails leaves no temporary file.

use crate::common::{scratch, vectura};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Command;

const SWEEP: [&str; 5] = [
    "sweep",
    "--param",
    "buy_below_pct=1,2",
    "--param",
    "sell_above_pct=5,10",
];

fn ok(o: &std::process::Output) {
    assert!(
        o.status.success(),
        "stdout {} stderr {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The names in `dir` that look like temporary files (anything ending in `.tmp` or holding `tmp`).
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect()
}

fn sweep_with(extra: &[&str]) -> std::process::Output {
    let mut a = SWEEP.to_vec();
    a.extend_from_slice(extra);
    a.push("--no-db");
    vectura(&a)
}

#[test]
fn dev_null_stays_a_character_device() {
    // As root the old rename replaced /dev/null with a file; as another user it failed. Either way
    // the device must still be one afterwards, and the runs succeed.
    ok(&vectura(&["backtest", "--report", "/dev/null"]));
    // Without a .csv or .parquet name, a device gets CSV.
    ok(&sweep_with(&["--output", "/dev/null"]));
    ok(&sweep_with(&[
        "--output",
        "/dev/null",
        "--report",
        "/dev/null",
    ]));
    let t = std::fs::symlink_metadata("/dev/null").unwrap().file_type();
    assert!(t.is_char_device(), "/dev/null is still a character device");
}

#[test]
fn a_fifo_is_written_through_not_replaced() {
    // The same defect without root: a FIFO of our own. A reader drains it while vectura writes.
    let d = scratch("writers-fifo");
    for (name, args) in [
        ("report.html", vec!["backtest", "--report"]),
        ("out.csv", {
            let mut a = SWEEP.to_vec();
            a.extend_from_slice(&["--no-db", "--output"]);
            a
        }),
    ] {
        let fifo = d.join(name);
        let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(st.success(), "mkfifo works");
        let reader = {
            let fifo = fifo.clone();
            // A reader left blocked (the FIFO was replaced) ends with the test process.
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        let mut a = args.clone();
        a.push(fifo.to_str().unwrap());
        ok(&vectura(&a));
        let t = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(t.is_fifo(), "{name} is still a FIFO, not a file");
        let got = String::from_utf8(reader.join().unwrap()).unwrap();
        match name {
            "report.html" => assert!(
                got.starts_with("<!DOCTYPE html>") && got.trim_end().ends_with("</html>"),
                "the whole report came through the FIFO ({} bytes)",
                got.len()
            ),
            _ => {
                assert!(got.starts_with("set,"), "the CSV header came through");
                assert_eq!(got.lines().count(), 1 + 4, "a header and one row per set");
            }
        }
        assert_eq!(temporaries(&d), Vec::<String>::new());
    }
}

#[test]
fn a_symlink_stays_a_symlink_and_its_target_gets_the_content() {
    let d = scratch("writers-link");
    let real = d.join("real");
    std::fs::create_dir(&real).unwrap();
    // Relative links (resolved from the link's folder) for the sweep, an absolute one for the report.
    std::fs::write(real.join("out.csv"), "old\n").unwrap();
    std::os::unix::fs::symlink("real/out.csv", d.join("out.csv")).unwrap();
    std::os::unix::fs::symlink(real.join("report.html"), d.join("report.html")).unwrap();
    std::fs::write(real.join("bars.csv"), "old\n").unwrap();
    std::os::unix::fs::symlink("real/bars.csv", d.join("bars.csv")).unwrap();

    ok(&sweep_with(&[
        "--output",
        d.join("out.csv").to_str().unwrap(),
    ]));
    // A dangling link: its target is created.
    ok(&vectura(&[
        "backtest",
        "--report",
        d.join("report.html").to_str().unwrap(),
    ]));
    for name in ["out.csv", "report.html"] {
        let t = std::fs::symlink_metadata(d.join(name)).unwrap().file_type();
        assert!(t.is_symlink(), "{name} is still a symlink");
        assert!(
            std::fs::symlink_metadata(real.join(name))
                .unwrap()
                .is_file(),
            "its target is a regular file"
        );
    }
    let csv = std::fs::read_to_string(real.join("out.csv")).unwrap();
    assert!(csv.starts_with("set,"), "the target holds the new rows");
    assert_eq!(csv.lines().count(), 5);
    let html = std::fs::read_to_string(real.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));

    // data export: import a fixture, export it through the link to a file.
    let data = d.join("data");
    let run = |args: &[&str]| {
        Command::new(crate::common::bin())
            .env("VECTURA_DATA_DIR", &data)
            .env("DATABASE_URL", "")
            .args(args)
            .output()
            .unwrap()
    };
    let src = crate::common::fixtures().join("daily/FB_2012_2013_quandl_wiki.csv");
    ok(&run(&[
        "data",
        "import",
        src.to_str().unwrap(),
        "--symbol",
        "FB",
    ]));
    ok(&run(&[
        "data",
        "export",
        "FB",
        "--output",
        d.join("bars.csv").to_str().unwrap(),
    ]));
    assert!(std::fs::symlink_metadata(d.join("bars.csv"))
        .unwrap()
        .file_type()
        .is_symlink());
    let text = std::fs::read_to_string(real.join("bars.csv")).unwrap();
    assert!(
        text.starts_with("timestamp,"),
        "the export went to the target"
    );
    assert_eq!(
        text.lines().count(),
        std::fs::read_to_string(&src).unwrap().lines().count(),
        "a header and every bar"
    );
    assert_eq!(temporaries(&d), Vec::<String>::new());
    assert_eq!(temporaries(&real), Vec::<String>::new());
}

#[test]
fn a_directory_is_refused_naming_it() {
    let d = scratch("writers-dir");
    let dir = d.join("results.csv");
    std::fs::create_dir(&dir).unwrap();
    let o = sweep_with(&["--output", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--output") && err.contains("is a directory"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    let o = vectura(&["backtest", "--report", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--report") && err.contains("is a directory"),
        "{err}"
    );
    assert!(dir.is_dir() && std::fs::read_dir(&dir).unwrap().next().is_none());
    assert_eq!(temporaries(&d), Vec::<String>::new());
}

#[test]
fn a_sweep_that_fails_after_opening_its_output_leaves_no_temporary_file() {
    // The database is opened after the output file: a database that cannot be used stops the
    // sweep with the temporary file already created. Nothing may be left behind, and an existing
    // results file stays as it was.
    let d = scratch("writers-fail");
    let out = d.join("out.csv");
    std::fs::write(&out, "previous\n").unwrap();
    let mut a = SWEEP.to_vec();
    a.extend_from_slice(&["--output", out.to_str().unwrap()]);
    let o = Command::new(crate::common::bin())
        .env("VECTURA_DATA_DIR", d.join("data"))
        .env("DATABASE_URL", "mysql://nope")
        .args(&a)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous\n");
    assert_eq!(temporaries(&d), Vec::<String>::new());
}
