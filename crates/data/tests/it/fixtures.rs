//! Loads every bar file in `shared/data` (the real vendor exports the loader is written for) and
//! checks row counts against the folder's README.

use std::path::{Path, PathBuf};

use vectura_data::{load_csv_path, LoadOptions, Loaded};

fn data_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{} is missing: CI must run with shared/data beside the repository",
            dir.display()
        );
    }
    eprintln!(
        "skipping: {} not found (set CI=true to make this a failure)",
        dir.display()
    );
    None
}

fn bar_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            if name != "calendar" && name != "original" {
                bar_files(&p, out);
            }
        } else if name.ends_with(".csv") || name.ends_with(".csv.gz") {
            out.push(p);
        }
    }
}

fn options_for(name: &str) -> LoadOptions {
    let mut o = LoadOptions::default();
    if name == "SP500_NOV2019_IDayRVol.csv" {
        o.tz = Some(chrono_tz::America::New_York);
    }
    if name.contains("bytetheory") {
        o.symbol = Some("AAPL".to_string());
    }
    o
}

/// (file name, rows in the file, bars loaded, daily, reversed) from the README tables.
const EXPECTED: &[(&str, usize, usize, bool, bool)] = &[
    (
        "INDA_1min_2023-07-10_to_2025-07-07.csv",
        66_269,
        66_269,
        false,
        false,
    ),
    (
        "DBB_1min_2023-07-10_to_2025-07-08.csv",
        38_964,
        38_964,
        false,
        false,
    ),
    (
        "FXY_1min_2023-07-10_to_2025-07-08.csv",
        78_974,
        78_974,
        false,
        false,
    ),
    ("SP500_NOV2019_IDayRVol.csv", 1_563, 1_563, false, false),
    ("SPY_1min_2011-01.csv", 14_180, 14_180, false, false),
    ("SPY_1min_2011-03.csv", 17_577, 17_577, false, false),
    ("AAPL_2000_2013_quandl_wiki.csv", 3_270, 3_270, true, false),
    ("MSFT_2000_2013_quandl_wiki.csv", 3_270, 3_270, true, false),
    ("IBM_2000_2013_quandl_wiki.csv", 3_270, 3_270, true, false),
    ("GOOG_2004_2013_quandl_wiki.csv", 2_148, 2_148, true, false),
    ("FB_2012_2013_quandl_wiki.csv", 196, 196, true, false),
    (
        "GOOG_2004_2013_backtestingpy.csv",
        2_148,
        2_148,
        true,
        false,
    ),
    (
        "SP500_index_1999_2018_arch.csv.gz",
        5_031,
        5_031,
        true,
        false,
    ),
    (
        "NASDAQ_index_1999_2018_arch.csv.gz",
        5_031,
        5_031,
        true,
        false,
    ),
    (
        "MSFT_1986_2017_adjusted_pmdarima.csv",
        7_983,
        7_983,
        true,
        false,
    ),
    ("SPY_2011_yahoo_pyalgotrade.csv", 252, 252, true, true),
    (
        "EURUSD_1h_2017_2018_backtestingpy.csv",
        5_000,
        5_000,
        false,
        false,
    ),
];

fn check(path: &Path, l: &Loaded) {
    let name = path.file_name().unwrap().to_string_lossy();
    let s = &l.series;
    assert!(!s.is_empty(), "{name}: no bars");
    for i in 0..s.len() {
        let b = s.get(i);
        b.validate(true)
            .unwrap_or_else(|e| panic!("{name}: bar {i} ({b:?}) does not validate: {e}"));
        if i > 0 {
            assert!(
                s.ts[i] > s.ts[i - 1],
                "{name}: bar {i} is not after bar {}",
                i - 1
            );
        }
    }
    if let Some(&(_, rows, bars, daily, reversed)) = EXPECTED.iter().find(|e| e.0 == name) {
        assert_eq!(l.rows, rows, "{name}: rows");
        assert_eq!(s.len(), bars, "{name}: bars");
        assert_eq!(s.daily, daily, "{name}: daily");
        assert_eq!(l.reversed, reversed, "{name}: reversed");
    }
}

#[test]
fn every_shared_bar_file_loads() {
    let Some(dir) = data_dir() else { return };
    let mut files = Vec::new();
    bar_files(&dir, &mut files);
    assert!(
        files.len() >= 20,
        "expected the README's bar files, found {}",
        files.len()
    );
    let mut checked = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let l = load_csv_path(path, &options_for(&name)).unwrap_or_else(|e| panic!("{e}"));
        check(path, &l);
        eprintln!(
            "{name}: {} rows, {} bars, daily={}, reversed={}, widened={}",
            l.rows,
            l.series.len(),
            l.series.daily,
            l.reversed,
            l.widened
        );
        checked += EXPECTED.iter().any(|e| e.0 == name) as usize;
    }
    assert_eq!(
        checked,
        EXPECTED.len(),
        "every file named in the README tables was found"
    );
}

#[test]
fn sp500_minute_file_is_eastern_time() {
    let Some(dir) = data_dir() else { return };
    let opts = LoadOptions {
        tz: Some(chrono_tz::America::New_York),
        ..Default::default()
    };
    let l = load_csv_path(&dir.join("SP500_NOV2019_IDayRVol.csv"), &opts).unwrap();
    // 2019-11-05 09:30 EST = 14:30:00Z.
    assert_eq!(
        vectura_core::time::rfc3339(l.series.ts[0]),
        "2019-11-05T14:30:00Z"
    );
    assert_eq!(l.series.ts[0], 1_572_964_200);
    // `Date,Open,Close,High,Low,Volume`: the columns are taken by name, not position.
    let b = l.series.get(0);
    assert_eq!(
        (b.open, b.high, b.low, b.close, b.volume),
        (3080.8, 3081.47, 3080.3, 3080.49, 2_209_795.0)
    );
    // Without the zone the same text is read as UTC.
    let utc = load_csv_path(
        &dir.join("SP500_NOV2019_IDayRVol.csv"),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(utc.series.ts[0], 1_572_946_200);
}

#[test]
fn spy_minute_bars_cross_dst() {
    let Some(dir) = data_dir() else { return };
    let l = load_csv_path(
        &dir.join("minute/SPY_1min_2011-03.csv"),
        &LoadOptions::default(),
    )
    .unwrap();
    let first = vectura_core::time::rfc3339(l.series.ts[0]);
    assert_eq!(first, "2011-03-01T09:00:00Z");
    assert!(l.series.vwap.is_none() && l.series.trade_count.is_none());
}

#[test]
fn bytetheory_members_need_a_symbol() {
    let Some(dir) = data_dir() else { return };
    let path = dir.join("daily/SP500_members_2009_2010_bytetheory.csv.gz");
    let e = load_csv_path(&path, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("524 symbols") && e.contains("A, AA, AAPL") && e.contains("--symbol"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");

    let opts = LoadOptions {
        symbol: Some("aapl".into()),
        ..Default::default()
    };
    let l = load_csv_path(&path, &opts).unwrap();
    assert_eq!(l.symbol.as_deref(), Some("AAPL"));
    assert_eq!(l.rows, 122_574);
    assert!(l.series.daily);
    // 2009-08-21 … 2010-08-20 is 253 NYSE sessions; each symbol misses about 11.
    assert!((230..=253).contains(&l.series.len()), "{}", l.series.len());
    // 2009-08-21 09:30 EDT.
    assert_eq!(
        vectura_core::time::rfc3339(l.series.ts[0]),
        "2009-08-21T13:30:00Z"
    );

    let opts = LoadOptions {
        symbol: Some("NOPE".into()),
        ..Default::default()
    };
    let e = load_csv_path(&path, &opts).unwrap_err().to_string();
    assert!(
        e.contains("no rows for symbol NOPE") && e.contains("524 symbols"),
        "{e}"
    );
}

#[test]
fn bytetheory_dirty_rows_are_widened_or_rejected() {
    let Some(dir) = data_dir() else { return };
    let path = dir.join("daily/SP500_members_2009_2010_bytetheory.csv.gz");
    // BIIB has three rows with the open outside low..high (lines 14272, 14364 and 14366).
    let opts = LoadOptions {
        symbol: Some("BIIB".into()),
        ..Default::default()
    };
    let l = load_csv_path(&path, &opts).unwrap();
    assert_eq!(l.widened, 3);
    assert_eq!(l.widened_lines, vec![14_272, 14_364, 14_366]);
    let i = l
        .series
        .ts
        .iter()
        .position(|&t| vectura_core::time::rfc3339(t) == "2009-12-18T14:30:00Z")
        .unwrap();
    // 20091218,BIIB,49.28,50.45,49.31,50.07: low widened down to the open.
    assert_eq!((l.series.low[i], l.series.high[i]), (49.28, 50.45));

    let strict = LoadOptions {
        strict: true,
        ..opts
    };
    let e = load_csv_path(&path, &strict).unwrap_err().to_string();
    assert!(
        e.contains("line 14272: inconsistent bar: low 49.31 is above open 49.28"),
        "{e}"
    );
    assert!(e.contains("--strict"), "{e}");
}

#[test]
fn yahoo_daily_is_newest_first_reversed() {
    let Some(dir) = data_dir() else { return };
    let l = load_csv_path(
        &dir.join("daily/SPY_2011_yahoo_pyalgotrade.csv"),
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(l.reversed);
    assert_eq!(
        vectura_core::time::rfc3339(l.series.ts[0]),
        "2011-01-03T14:30:00Z"
    );
    assert_eq!(l.series.close[0], 127.05);
    assert_eq!(*l.series.close.last().unwrap(), 125.50);
}
