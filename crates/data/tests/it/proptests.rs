//! Property tests: any input loads as valid bars or fails with one line naming the source, and valid
//! bars written as CSV load back exactly.

use proptest::prelude::*;
use vectura_core::time::rfc3339;
use vectura_data::{load_csv_reader, LoadOptions, Loaded};

/// Bytes that look like CSV more often than uniform random bytes do.
fn csvish() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: Vec<u8> = b"0123456789-:,.\n\r \"TZ/+eE\x1f\x8bNaiInf".to_vec();
    prop::collection::vec(prop::sample::select(alphabet), 0..400)
}

const HEADERS: &[&str] = &[
    "timestamp,open,high,low,close,volume\n",
    "Date,Symbol,Open,High,Low,Close,Volume\n",
    ",Close\n",
    "date,time,close,vwap,n\n",
];

/// What any load must give: bars that validate, in strictly ascending time, no more than the rows
/// read; or one line of error naming the source.
fn assert_loaded_or_one_line(
    source: &str,
    got: &Result<Loaded, vectura_data::LoadError>,
) -> Result<(), TestCaseError> {
    match got {
        Ok(l) => {
            let s = &l.series;
            prop_assert!(s.len() <= l.rows, "{} bars from {} rows", s.len(), l.rows);
            prop_assert!(s.ts.windows(2).all(|w| w[0] < w[1]), "{:?}", s.ts);
            for i in 0..s.len() {
                let b = s.get(i);
                prop_assert!(b.validate(false).is_ok(), "{:?}", b);
                prop_assert!(b.is_consistent(), "{:?} kept inconsistent", b);
            }
            prop_assert!(l.widened <= s.len());
        }
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(!msg.contains('\n'), "{}", msg);
            prop_assert!(msg.starts_with(source), "{}", msg);
        }
    }
    Ok(())
}

/// Whether 09:30 on `date` is daylight time in New York, by the US rules since 1967 (last Sunday of
/// April to last Sunday of October until 1986, first Sunday of April from 1987, second Sunday of March
/// to first Sunday of November from 2007; 1974 and 1975 had energy-crisis dates).
fn in_us_dst(date: chrono::NaiveDate) -> bool {
    use chrono::{Datelike, NaiveDate, Weekday};
    let y = date.year();
    let nth_sunday =
        |m: u32, n: u8| NaiveDate::from_weekday_of_month_opt(y, m, Weekday::Sun, n).unwrap();
    let last_sunday = |m: u32| {
        let first_next = NaiveDate::from_ymd_opt(y, m + 1, 1).unwrap();
        let back = first_next.weekday().num_days_from_sunday();
        first_next - chrono::Duration::days(if back == 0 { 7 } else { i64::from(back) })
    };
    let (start, end) = match y {
        1974 => (
            NaiveDate::from_ymd_opt(1974, 1, 6).unwrap(),
            last_sunday(10),
        ),
        1975 => (
            NaiveDate::from_ymd_opt(1975, 2, 23).unwrap(),
            last_sunday(10),
        ),
        ..=1986 => (last_sunday(4), last_sunday(10)),
        1987..=2006 => (nth_sunday(4, 1), last_sunday(10)),
        _ => (nth_sunday(3, 2), nth_sunday(11, 1)),
    };
    // The switches happen at 02:00 on a Sunday; 09:30 on a weekday is on one side of them.
    date >= start && date < end
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_load_valid_bars_or_fail_in_one_line(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let got = load_csv_reader("fuzz", &bytes[..], &LoadOptions::default());
        assert_loaded_or_one_line("fuzz", &got)?;
    }

    #[test]
    fn csvish_text_under_a_header_never_panics(
        h in 0..HEADERS.len(),
        body in csvish(),
        tz in any::<bool>(),
        strict in any::<bool>(),
        symbol in any::<bool>(),
    ) {
        let mut bytes = HEADERS[h].as_bytes().to_vec();
        bytes.extend_from_slice(&body);
        let opts = LoadOptions {
            symbol: symbol.then(|| "1".to_string()),
            tz: tz.then_some(chrono_tz::America::New_York),
            strict,
        };
        let got = load_csv_reader("fuzz", &bytes[..], &opts);
        assert_loaded_or_one_line("fuzz", &got)?;
    }

    #[test]
    fn truncated_or_corrupted_gzip_loads_the_text_or_fails(body in csvish(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
        use std::io::Write;
        let mut text = HEADERS[0].as_bytes().to_vec();
        text.extend_from_slice(&body);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let mut bytes = gz.finish().unwrap();
        let whole = bytes.len();
        let i = flip.0.index(bytes.len());
        if i >= 2 {
            bytes[i] ^= flip.1;
        }
        let changed = i >= 2 && flip.1 != 0;
        bytes.truncate(cut.index(bytes.len() + 1).max(2));
        let damaged = changed || bytes.len() < whole;
        let got = load_csv_reader("fuzz.gz", &bytes[..], &LoadOptions::default());
        assert_loaded_or_one_line("fuzz.gz", &got)?;
        let plain = load_csv_reader("fuzz.gz", &text[..], &LoadOptions::default());
        match (&got, &plain) {
            // Whatever loads is the text that was compressed: gzip's CRC and length catch the rest
            // (a flip in the header's time or OS byte changes nothing).
            (Ok(g), Ok(p)) => {
                prop_assert_eq!(&g.series, &p.series);
                prop_assert_eq!((g.rows, g.widened, g.reversed), (p.rows, p.widened, p.reversed));
            }
            (Ok(g), Err(e)) => prop_assert!(false, "damaged gzip loaded {} bars where the text fails: {}", g.series.len(), e),
            // Intact bytes load exactly as the text does, error included.
            (Err(e), _) if !damaged => {
                let p = plain.as_ref().err().map(ToString::to_string);
                prop_assert_eq!(Some(e.to_string()), p);
            }
            (Err(_), _) => {}
        }
    }

    #[test]
    fn valid_bars_round_trip(
        // Bars must fall before 2036 (validate::END_TS): 60 bars of at most 200_000 s fit.
        start in 100_000_000i64..2_070_000_000,
        bars in prop::collection::vec(
            (1i64..200_000, prop::array::uniform4(1e-6f64..1e9), 0f64..1e12, prop::option::of((1e-6f64..1e9, 0u64..1_000_000))),
            1..60,
        ),
        format in 0usize..4,
        newest_first in any::<bool>(),
        extras in any::<bool>(),
    ) {
        let mut ts = start;
        let mut want = Vec::new();
        for (gap, mut p, volume, extra) in bars {
            ts += gap;
            p.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let (vwap, n) = match (extras, extra) {
                (true, Some((v, n))) => (Some(v), Some(n)),
                _ => (None, None),
            };
            want.push(vectura_core::Bar { ts, open: p[1], high: p[3], low: p[0], close: p[2], volume, vwap, trade_count: n });
        }
        let all_extras = want.iter().all(|b| b.vwap.is_some());
        let mut text = String::from(if extras { "Time,Open,High,Low,Close,Volume,VWAP,trade_count\n" } else { "ts,open,high,low,close,volume\n" });
        let mut rows: Vec<&vectura_core::Bar> = want.iter().collect();
        if newest_first {
            rows.reverse();
        }
        for b in rows {
            let t = match format {
                0 => rfc3339(b.ts),
                1 => rfc3339(b.ts).replace('T', " ").replace('Z', ""),
                2 => b.ts.to_string(),
                _ if b.ts >= 1_000_000_000 => format!("{}000", b.ts),
                _ => b.ts.to_string(),
            };
            text.push_str(&format!("{t},{},{},{},{},{}", b.open, b.high, b.low, b.close, b.volume));
            if extras {
                match (b.vwap, b.trade_count) {
                    (Some(v), Some(n)) => text.push_str(&format!(",{v},{n}")),
                    _ => text.push_str(",,"),
                }
            }
            text.push('\n');
        }
        let l = load_csv_reader("rt.csv", text.as_bytes(), &LoadOptions { strict: true, ..Default::default() })
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(l.series.len(), want.len());
        prop_assert_eq!(l.reversed, newest_first && want.len() > 1);
        prop_assert_eq!(l.widened, 0);
        prop_assert_eq!(l.rows, want.len());
        prop_assert!(!l.series.daily);
        for (i, b) in want.iter().enumerate() {
            let mut b = *b;
            if !all_extras {
                b.vwap = None;
                b.trade_count = None;
            }
            prop_assert_eq!(l.series.get(i), b);
        }
        prop_assert_eq!(l.series.vwap.is_some(), extras && all_extras);
    }

    #[test]
    fn daily_bars_round_trip(
        // Dates up to 2035-09 (bars after 2035 are refused).
        days in prop::collection::btree_set(0i64..24_000, 1..40),
        price in 1e-3f64..1e6,
        slashed in any::<bool>(),
    ) {
        let mut text = String::from("Date,Close\n");
        for d in &days {
            let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(*d);
            let cell = if slashed { date.format("%-m/%-d/%Y").to_string() } else { date.format("%Y-%m-%d").to_string() };
            text.push_str(&format!("{cell},{price}\n"));
        }
        let l = load_csv_reader("d.csv", text.as_bytes(), &LoadOptions::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(l.series.daily);
        prop_assert_eq!(l.series.len(), days.len());
        for (i, d) in days.iter().enumerate() {
            // 09:30 New York on the date: 13:30Z in daylight time, 14:30Z in standard time (US rules
            // of the year: from 2007 the second Sunday of March to the first Sunday of November).
            let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(*d);
            let ts = l.series.ts[i];
            let want = date.and_hms_opt(9, 30, 0).unwrap().and_local_timezone(chrono_tz::America::New_York).unwrap().timestamp();
            prop_assert_eq!(ts, want, "{}: {}", date, rfc3339(ts));
            let sec = ts.rem_euclid(86_400);
            prop_assert_eq!(sec == 13 * 3600 + 1800, in_us_dst(date), "{}: {}", date, rfc3339(ts));
            prop_assert_eq!(l.series.close[i], price);
        }
    }
}
