//! Bad input: a one-line error naming the problem and the fix, exit code 2, no panic, no partial file.

use crate::common::{scratch, vectura};
use std::path::Path;

const HEADER: &str = "timestamp,open,high,low,close,volume\n";

fn csv(dir: &Path, name: &str, rows: &[&str]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("{HEADER}{}\n", rows.join("\n"))).unwrap();
    p.display().to_string()
}

/// Runs a failing backtest with a report path; checks exit 2, one stderr line with every `needle`, no report.
fn fails(dir: &Path, args: &[&str], needles: &[&str]) {
    let report = dir.join("report.html");
    let mut all = vec![
        "backtest",
        "--session",
        "all",
        "--report",
        report.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = vectura(&all);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "args {args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{err:?} should mention {n:?}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.stdout.is_empty(), "no partial output on stdout");
    assert!(!report.exists(), "no partial report file");
    assert!(!dir.join("report.html.tmp").exists());
}

#[test]
fn malformed_row_names_file_line_and_column() {
    let d = scratch("malformed");
    let f = csv(
        &d,
        "bad.csv",
        &[
            "2024-01-02 14:30:00,1,1,1,1,100",
            "2024-01-02 14:31:00,1,1,1,abc,100",
        ],
    );
    fails(&d, &["--data", &f], &["bad.csv", "line 3", "close"]);
    let f = csv(
        &d,
        "short.csv",
        &["2024-01-02 14:30:00,1,1,1,1,100", "2024-01-02 14:31:00,1,1"],
    );
    fails(&d, &["--data", &f], &["short.csv", "line 3"]);
}

#[test]
fn disordered_and_duplicate_timestamps() {
    let d = scratch("order");
    let f = csv(
        &d,
        "dis.csv",
        &[
            "2024-01-02 14:30:00,1,1,1,1,100",
            "2024-01-02 14:32:00,1,1,1,1,100",
            "2024-01-02 14:31:00,1,1,1,1,100",
        ],
    );
    fails(&d, &["--data", &f], &["dis.csv", "line 4"]);
    let f = csv(
        &d,
        "dup.csv",
        &[
            "2024-01-02 14:30:00,1,1,1,1,100",
            "2024-01-02 14:30:00,1,1,1,1,100",
        ],
    );
    fails(&d, &["--data", &f], &["dup.csv", "line 3"]);
}

#[test]
fn non_positive_and_non_finite_prices() {
    let d = scratch("prices");
    for (name, v) in [
        ("zero.csv", "0"),
        ("neg.csv", "-3"),
        ("nan.csv", "NaN"),
        ("inf.csv", "inf"),
    ] {
        let row = format!("2024-01-02 14:31:00,1,1,1,{v},100");
        let f = csv(&d, name, &["2024-01-02 14:30:00,1,1,1,1,100", &row]);
        fails(&d, &["--data", &f], &[name, "line 3", "close"]);
    }
}

#[test]
fn parameters_outside_the_form_ranges() {
    let d = scratch("params");
    fails(&d, &["--capital-pct", "150"], &["capital-pct", "100"]);
    fails(&d, &["--buy-below-pct", "0"], &["buy-below-pct"]);
    fails(&d, &["--sell-above-pct", "-1"], &["sell-above-pct"]);
    fails(
        &d,
        &["--buy-after-sell-pct", "101"],
        &["buy-after-sell-pct"],
    );
    fails(&d, &["--cash-floor", "-5"], &["cash-floor"]);
    fails(&d, &["--order-gap-pct", "-2"], &["order-gap-pct", "-1"]);
    fails(&d, &["--start-capital", "-1"], &["start-capital"]);
    fails(
        &d,
        &["--contribution-frequency-days", "1.5"],
        &["contribution-frequency-days", "whole"],
    );
    fails(
        &d,
        &["--contribution-amount", "-10"],
        &["contribution-amount"],
    );
    fails(
        &d,
        &["--compat", "vectura-v1", "--fill", "next-open"],
        &["compat", "close"],
    );
    fails(
        &d,
        &["--strategy", "sma-cross", "--fast", "20", "--slow", "10"],
        &["--fast", "--slow"],
    );
}

#[test]
fn end_before_start_and_dates_outside_the_data() {
    let d = scratch("dates");
    fails(
        &d,
        &["--start-date", "2011-03-10", "--end-date", "2011-03-01"],
        &["--end-date", "before", "--start-date"],
    );
    fails(
        &d,
        &["--start-date", "2015-01-01", "--end-date", "2015-02-01"],
        &["no bars", "2011-01-03"],
    );
    fails(
        &d,
        &["--data", d.join("missing.csv").to_str().unwrap()],
        &["missing.csv"],
    );
    fails(&d, &["--symbol", "TQQQ"], &["TQQQ", "--data"]);
}
