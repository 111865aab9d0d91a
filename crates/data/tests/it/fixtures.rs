//! Loads every bar file in `data/fixtures` and `data/bundled` (real vendor exports, part of the
//! repository) and checks each against what the folders' READMEs state: rows, bars, daily or not,
//! newest first or not, first and last New York date. A file the tables do not name, or a named file
//! that is missing, is a failure.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use vectura_core::calendar::ny_date;
use vectura_data::{load_csv_path, LoadOptions, Loaded};

/// `data/` of the repository.
fn data_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    assert!(
        dir.join("fixtures").is_dir(),
        "{} is part of the repository",
        dir.display()
    );
    dir
}

fn fixture(rel: &str) -> PathBuf {
    let p = data_dir().join(rel);
    assert!(p.is_file(), "{} is part of the repository", p.display());
    p
}

fn bar_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            // Sessions, not bars.
            if name != "calendar" {
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

/// One file as the READMEs describe it.
struct Expected {
    /// Path under `data/`.
    path: &'static str,
    /// Data rows in the file.
    rows: usize,
    /// Bars loaded; `None` where the README gives no figure (one symbol of a many-symbol file).
    bars: Option<usize>,
    daily: bool,
    reversed: bool,
    /// New York dates of the first and last bar.
    span: (&'static str, &'static str),
}

const fn e(
    path: &'static str,
    rows: usize,
    daily: bool,
    span: (&'static str, &'static str),
) -> Expected {
    Expected {
        path,
        rows,
        bars: Some(rows),
        daily,
        reversed: false,
        span,
    }
}

/// The README tables (`data/fixtures/README.md`, `data/bundled/README.md`).
const EXPECTED: &[Expected] = &[
    e(
        "fixtures/INDA_1min_2023-07-10_to_2025-07-07.csv.gz",
        66_269,
        false,
        ("2023-07-10", "2025-06-24"),
    ),
    e(
        "fixtures/DBB_1min_2023-07-10_to_2025-07-08.csv.gz",
        38_964,
        false,
        ("2023-07-10", "2025-07-08"),
    ),
    e(
        "fixtures/FXY_1min_2023-07-10_to_2025-07-08.csv.gz",
        78_974,
        false,
        ("2023-07-10", "2025-07-08"),
    ),
    e(
        "fixtures/SP500_NOV2019_IDayRVol.csv",
        1_563,
        false,
        ("2019-11-05", "2019-11-08"),
    ),
    e(
        "fixtures/yahoofinance-AAPL-20040819-20180120.csv",
        3_379,
        true,
        ("2004-08-19", "2018-01-19"),
    ),
    e(
        "fixtures/yahoofinance-GOOG-20040819-20180120.csv",
        3_379,
        true,
        ("2004-08-19", "2018-01-19"),
    ),
    e(
        "fixtures/yahoofinance-SPY-20080101-20180101.csv",
        2_519,
        true,
        ("2007-12-31", "2017-12-29"),
    ),
    e(
        "fixtures/yahoofinance-INTC-19950101-20040412.csv",
        2_335,
        true,
        ("1995-01-03", "2004-04-08"),
    ),
    e(
        "bundled/SPY_1min_2011-01.csv.gz",
        14_180,
        false,
        ("2011-01-03", "2011-01-31"),
    ),
    e(
        "bundled/SPY_1min_2011-03.csv.gz",
        17_577,
        false,
        ("2011-03-01", "2011-03-31"),
    ),
    e(
        "fixtures/daily/AAPL_2000_2013_quandl_wiki.csv",
        3_270,
        true,
        ("2000-03-01", "2013-03-01"),
    ),
    e(
        "fixtures/daily/MSFT_2000_2013_quandl_wiki.csv",
        3_270,
        true,
        ("2000-03-01", "2013-03-01"),
    ),
    e(
        "fixtures/daily/IBM_2000_2013_quandl_wiki.csv",
        3_270,
        true,
        ("2000-03-01", "2013-03-01"),
    ),
    e(
        "fixtures/daily/GOOG_2004_2013_quandl_wiki.csv",
        2_148,
        true,
        ("2004-08-19", "2013-03-01"),
    ),
    e(
        "fixtures/daily/FB_2012_2013_quandl_wiki.csv",
        196,
        true,
        ("2012-05-18", "2013-03-01"),
    ),
    e(
        "fixtures/daily/GOOG_2004_2013_backtestingpy.csv",
        2_148,
        true,
        ("2004-08-19", "2013-03-01"),
    ),
    e(
        "fixtures/daily/SP500_index_1999_2018_arch.csv.gz",
        5_031,
        true,
        ("1999-01-04", "2018-12-31"),
    ),
    e(
        "fixtures/daily/NASDAQ_index_1999_2018_arch.csv.gz",
        5_031,
        true,
        ("1999-01-04", "2018-12-31"),
    ),
    e(
        "fixtures/daily/MSFT_1986_2017_adjusted_pmdarima.csv",
        7_983,
        true,
        ("1986-03-13", "2017-11-10"),
    ),
    Expected {
        path: "fixtures/daily/SP500_members_2009_2010_bytetheory.csv.gz",
        rows: 122_574,
        bars: None,
        daily: true,
        reversed: false,
        span: ("2009-08-21", "2010-08-20"),
    },
    Expected {
        reversed: true,
        ..e(
            "fixtures/daily/SPY_2011_yahoo_pyalgotrade.csv",
            252,
            true,
            ("2011-01-03", "2011-12-30"),
        )
    },
    e(
        "fixtures/hourly/EURUSD_1h_2017_2018_backtestingpy.csv",
        5_000,
        false,
        ("2017-04-19", "2018-02-07"),
    ),
];

fn date(s: &str) -> NaiveDate {
    s.parse()
        .unwrap_or_else(|e| panic!("bad test date {s}: {e}"))
}

fn check(want: &Expected, l: &Loaded) {
    let name = want.path;
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
    assert_eq!(l.rows, want.rows, "{name}: rows");
    if let Some(bars) = want.bars {
        assert_eq!(s.len(), bars, "{name}: bars");
    }
    assert!(s.len() <= l.rows, "{name}: more bars than rows");
    assert_eq!(s.daily, want.daily, "{name}: daily");
    assert_eq!(l.reversed, want.reversed, "{name}: reversed");
    let (first, last) = (ny_date(s.ts[0]), ny_date(s.ts[s.len() - 1]));
    assert_eq!(
        (first, last),
        (date(want.span.0), date(want.span.1)),
        "{name}: span"
    );
}

#[test]
fn every_fixture_loads_as_its_readme_states() {
    let dir = data_dir();
    let mut files = Vec::new();
    bar_files(&dir.join("fixtures"), &mut files);
    bar_files(&dir.join("bundled"), &mut files);
    let mut named: Vec<&str> = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(&dir)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let want = EXPECTED.iter().find(|e| e.path == rel).unwrap_or_else(|| {
            panic!("{rel} is not in the README tables this test follows: add it")
        });
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let l = load_csv_path(path, &options_for(&name)).unwrap_or_else(|e| panic!("{e}"));
        check(want, &l);
        named.push(want.path);
    }
    let missing: Vec<&str> = EXPECTED
        .iter()
        .map(|e| e.path)
        .filter(|p| !named.contains(p))
        .collect();
    assert!(
        missing.is_empty(),
        "README files missing from data/: {missing:?}"
    );
}

#[test]
fn sp500_minute_file_is_eastern_time() {
    let path = fixture("fixtures/SP500_NOV2019_IDayRVol.csv");
    let opts = LoadOptions {
        tz: Some(chrono_tz::America::New_York),
        ..Default::default()
    };
    let l = load_csv_path(&path, &opts).unwrap();
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
    let utc = load_csv_path(&path, &LoadOptions::default()).unwrap();
    assert_eq!(utc.series.ts[0], 1_572_946_200);
}

#[test]
fn spy_minute_bars_cross_dst() {
    let l = load_csv_path(
        &fixture("bundled/SPY_1min_2011-03.csv.gz"),
        &LoadOptions::default(),
    )
    .unwrap();
    let first = vectura_core::time::rfc3339(l.series.ts[0]);
    assert_eq!(first, "2011-03-01T09:00:00Z");
    assert!(l.series.vwap.is_none() && l.series.trade_count.is_none());
}

#[test]
fn bytetheory_members_need_a_symbol() {
    let path = fixture("fixtures/daily/SP500_members_2009_2010_bytetheory.csv.gz");
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
    let path = fixture("fixtures/daily/SP500_members_2009_2010_bytetheory.csv.gz");
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
    let l = load_csv_path(
        &fixture("fixtures/daily/SPY_2011_yahoo_pyalgotrade.csv"),
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
