//! `vectura calendar` run as a user would: the built binary, its stdout and its exit code.

use std::process::{Command, Output};

fn vectura(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vectura"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running vectura {args:?}: {e}"))
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

#[test]
fn thanksgiving_week_2024_as_lines() {
    let text = stdout(&vectura(&[
        "calendar",
        "--from",
        "2024-11-27",
        "--to",
        "2024-12-02",
    ]));
    let lines: Vec<&str> = text.lines().collect();
    // Thanksgiving (11-28) and the weekend are absent; the day after closes at 13:00 ET = 18:00Z.
    assert_eq!(
        lines,
        [
            "2024-11-27 2024-11-27T14:30:00Z 2024-11-27T21:00:00Z",
            "2024-11-29 2024-11-29T14:30:00Z 2024-11-29T18:00:00Z",
            "2024-12-02 2024-12-02T14:30:00Z 2024-12-02T21:00:00Z",
        ]
    );
}

#[test]
fn thanksgiving_week_2024_as_json() {
    let text = stdout(&vectura(&[
        "calendar",
        "--from",
        "2024-11-27",
        "--to",
        "2024-12-02",
        "--json",
    ]));
    let got: serde_json::Value = serde_json::from_str(&text).expect("stdout is JSON");
    let want = serde_json::json!([
        {"date": "2024-11-27", "open": "2024-11-27T14:30:00Z", "close": "2024-11-27T21:00:00Z"},
        {"date": "2024-11-29", "open": "2024-11-29T14:30:00Z", "close": "2024-11-29T18:00:00Z"},
        {"date": "2024-12-02", "open": "2024-12-02T14:30:00Z", "close": "2024-12-02T21:00:00Z"},
    ]);
    assert_eq!(got, want);
    assert!(
        text.starts_with(r#"[{"date":"2024-11-27","open":"#),
        "keys in date, open, close order: {text}"
    );
}

#[test]
fn reversed_range_is_bad_input() {
    let out = vectura(&["calendar", "--from", "2024-12-02", "--to", "2024-11-27"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--to 2024-11-27 is before --from 2024-12-02"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn missing_or_malformed_dates_are_bad_input() {
    for args in [
        &["calendar", "--from", "2024-11-27"][..],
        &["calendar", "--from", "2024-11-27", "--to", "2024-13-01"],
        &["calendar", "--from", "27/11/2024", "--to", "2024-12-02"],
    ] {
        let out = vectura(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
