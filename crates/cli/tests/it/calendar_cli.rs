//! `vectura calendar` run as a user would: the built binary, its stdout and its exit code.

use std::process::{Command, Output};

fn vectura(args: &[&str]) -> Output {
    Command::new(crate::common::bin())
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

/// The calendar's session times are checked for 1990–2035 only: `vectura calendar` refuses other
/// years (1985 would print 09:30, when the NYSE opened at 10:00), as bad input.
#[test]
fn years_outside_the_checked_calendar_are_bad_input() {
    for (from, to, flag) in [
        ("1985-01-02", "1985-01-31", "--from 1985-01-02"),
        ("2030-01-02", "2036-01-02", "--to 2036-01-02"),
    ] {
        let out = vectura(&["calendar", "--from", from, "--to", to]);
        assert_eq!(out.status.code(), Some(2), "{from}..{to}");
        assert!(out.stdout.is_empty(), "{from}..{to}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("error: {flag}: "))
                && err.contains("outside the NYSE calendar's checked years 1990–2035")
                && err.contains("use dates from 1990-01-01 to 2035-12-31"),
            "{err}"
        );
    }
}

/// Daily bars from 1986 (data/fixtures/daily/MSFT_1986_2017_adjusted_pmdarima.csv) still backtest,
/// with every session, and a one-line note that the calendar is extrapolated before 1990; intraday
/// bars before 1990 are refused by the session filters that need the calendar's times, and run with
/// `--session all`.
#[test]
fn bars_before_1990_run_daily_or_with_session_all_and_are_refused_by_session_filters() {
    let msft = super::common::fixtures().join("daily/MSFT_1986_2017_adjusted_pmdarima.csv");
    let msft = msft.to_str().unwrap();
    for session in ["all", "regular"] {
        let out = super::common::vectura(&[
            "backtest",
            "--data",
            msft,
            "--symbol",
            "MSFT",
            "--session",
            session,
            "--json",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "--session {session}: {err}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
        assert_eq!(doc["data"]["bars_loaded"], 7_983, "--session {session}");
        let notes: Vec<&str> = err.lines().filter(|l| l.starts_with("note: ")).collect();
        assert_eq!(notes.len(), 1, "{err}");
        assert!(
            notes[0].contains("1986-03-13 to 2017-11-10") && notes[0].contains("1990–2035"),
            "{err}"
        );
    }
    // Inside the checked years, no note.
    let out = super::common::vectura(&[
        "backtest",
        "--data",
        msft,
        "--symbol",
        "MSFT",
        "--start-date",
        "1990-01-02",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("note: "));

    // Two sessions of minute bars in December 1989.
    let dir = super::common::scratch("minutes-1989");
    let file = dir.join("old.csv");
    let mut text = String::from("timestamp,open,high,low,close,volume\n");
    for day in ["1989-12-28", "1989-12-29"] {
        let open = chrono::DateTime::parse_from_rfc3339(&format!("{day}T14:30:00Z"))
            .unwrap()
            .timestamp();
        for m in 0..390 {
            let p = 10.0 + (m % 7) as f64 * 0.01;
            text.push_str(&format!("{},{p},{p},{p},{p},100\n", open + 60 * m));
        }
    }
    std::fs::write(&file, text).unwrap();
    let file = file.to_str().unwrap();
    for session in ["regular", "extended"] {
        let out = super::common::vectura(&[
            "backtest",
            "--data",
            file,
            "--symbol",
            "OLD",
            "--session",
            session,
        ]);
        assert_eq!(out.status.code(), Some(2), "--session {session}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!(
                "--session {session} needs the NYSE calendar's session times"
            )) && err.contains("1989-12-28 is outside")
                && err.contains("--session all"),
            "{err}"
        );
    }
    let out = super::common::vectura(&[
        "backtest",
        "--data",
        file,
        "--symbol",
        "OLD",
        "--session",
        "all",
        "--json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("note: "), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
