//! Property tests: no input makes the loader panic, and valid bars written as CSV load back exactly.

use proptest::prelude::*;
use vectura_core::time::rfc3339;
use vectura_data::{load_csv_reader, LoadOptions};

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

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = load_csv_reader("fuzz", &bytes[..], &LoadOptions::default());
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
        if let Err(e) = load_csv_reader("fuzz", &bytes[..], &opts) {
            let msg = e.to_string();
            prop_assert!(!msg.contains('\n'), "{}", msg);
            prop_assert!(msg.starts_with("fuzz"), "{}", msg);
        }
    }

    #[test]
    fn truncated_or_corrupted_gzip_never_panics(body in csvish(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(HEADERS[0].as_bytes()).unwrap();
        gz.write_all(&body).unwrap();
        let mut bytes = gz.finish().unwrap();
        let i = flip.0.index(bytes.len());
        if i >= 2 {
            bytes[i] ^= flip.1;
        }
        bytes.truncate(cut.index(bytes.len() + 1).max(2));
        let _ = load_csv_reader("fuzz.gz", &bytes[..], &LoadOptions::default());
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
        for (i, d) in days.iter().enumerate() {
            // 09:30 New York is 13:30Z or 14:30Z on the same UTC date.
            let ts = l.series.ts[i];
            prop_assert_eq!(ts.div_euclid(86_400), *d);
            let sec = ts.rem_euclid(86_400);
            prop_assert!(sec == 13 * 3600 + 1800 || sec == 14 * 3600 + 1800, "{}", rfc3339(ts));
            prop_assert_eq!(l.series.close[i], price);
        }
    }
}
