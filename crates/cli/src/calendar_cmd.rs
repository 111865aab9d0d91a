//! `vectura calendar`: the NYSE sessions between two dates, as text lines or JSON.

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use serde::Serialize;
use vectura_core::calendar;
use vectura_core::time::rfc3339;

/// Flags of `vectura calendar`.
#[derive(clap::Args, Debug)]
pub struct CalendarArgs {
    /// First date to list (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: NaiveDate,
    /// Last date to list (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: NaiveDate,
    /// Print a JSON array of {date, open, close} objects instead of one line per session.
    #[arg(long)]
    pub json: bool,
}

/// One session as printed; field order is the JSON key order.
#[derive(Serialize)]
struct Row {
    date: String,
    open: String,
    close: String,
}

/// Writes the sessions from `--from` to `--to` to `out`, one `date open close` line each or as JSON.
pub fn run(args: &CalendarArgs, out: &mut dyn std::io::Write) -> Result<()> {
    if args.to < args.from {
        bail!(
            "--to {} is before --from {}: pass a --to on or after --from (both dates are inclusive)",
            args.to,
            args.from
        );
    }
    // Outside the checked years the sessions would only be extrapolated (1985 would open at 09:30,
    // which was 10:00 then): refuse rather than print them as facts.
    let sessions = calendar::checked_sessions(args.from, args.to).map_err(|e| {
        let flag = if e.date == args.from {
            "--from"
        } else {
            "--to"
        };
        anyhow::anyhow!("{flag} {}: {e}", e.date)
    })?;
    let rows = sessions.into_iter().map(|s| Row {
        date: s.date.to_string(),
        open: rfc3339(s.open),
        close: rfc3339(s.close),
    });
    if args.json {
        let rows: Vec<Row> = rows.collect();
        serde_json::to_writer(&mut *out, &rows).context("writing the session list")?;
        writeln!(out).context("writing the session list")?;
    } else {
        for r in rows {
            writeln!(out, "{} {} {}", r.date, r.open, r.close)
                .context("writing the session list")?;
        }
    }
    out.flush().context("writing the session list")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(from: &str, to: &str, json: bool) -> CalendarArgs {
        CalendarArgs {
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
            json,
        }
    }

    fn output(a: &CalendarArgs) -> String {
        let mut out = Vec::new();
        run(a, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_skip_the_holiday_and_show_the_early_close() {
        assert_eq!(
            output(&args("2024-07-03", "2024-07-05", false)),
            "2024-07-03 2024-07-03T13:30:00Z 2024-07-03T17:00:00Z\n\
             2024-07-05 2024-07-05T13:30:00Z 2024-07-05T20:00:00Z\n"
        );
    }

    #[test]
    fn json_keeps_date_open_close_order() {
        assert_eq!(
            output(&args("2024-07-03", "2024-07-03", true)),
            "[{\"date\":\"2024-07-03\",\"open\":\"2024-07-03T13:30:00Z\",\"close\":\"2024-07-03T17:00:00Z\"}]\n"
        );
        assert_eq!(output(&args("2024-07-04", "2024-07-04", true)), "[]\n");
        assert_eq!(output(&args("2024-07-04", "2024-07-04", false)), "");
    }

    #[test]
    fn dates_outside_the_checked_years_are_refused() {
        for (from, to, start) in [
            ("1985-01-02", "1985-01-31", "--from 1985-01-02: 1985-01-02 is outside the NYSE calendar's checked years 1990–2035"),
            ("2035-12-01", "2036-01-31", "--to 2036-01-31: 2036-01-31 is outside"),
        ] {
            let mut out = Vec::new();
            let err = run(&args(from, to, false), &mut out).unwrap_err().to_string();
            assert!(err.starts_with(start), "{err}");
            assert!(err.contains("use dates from 1990-01-01 to 2035-12-31"), "{err}");
            assert!(out.is_empty(), "nothing printed before the error");
        }
        assert!(output(&args("1990-01-02", "1990-01-02", false)).starts_with("1990-01-02 "));
    }

    #[test]
    fn reversed_range_names_both_flags() {
        let err = run(&args("2024-07-05", "2024-07-01", false), &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--to 2024-07-01 is before --from 2024-07-05"),
            "{err}"
        );
    }
}
