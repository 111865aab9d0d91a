//! `vectura data …` and `vectura db schema` end to end: the real binary, a real SQLite file, and the
//! emulator over HTTP standing in for Alpaca and Alpha Vantage.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{fixtures, scratch};
use chrono::NaiveDate;
use vectura_data::{load_csv_path, LoadOptions};

/// Runs `vectura` with a data directory of its own and no inherited store or keys.
fn vectura_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(crate::common::bin());
    c.args(args)
        .current_dir(dir)
        .env("VECTURA_DATA_DIR", dir.join("data"))
        .env_remove("DATABASE_URL")
        .env_remove("APCA_API_KEY_ID")
        .env_remove("APCA_API_SECRET_KEY")
        .env_remove("APCA_API_DATA_URL")
        .env_remove("ALPHA_VANTAGE_API_KEY")
        .env_remove("ALPHA_VANTAGE_URL");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("vectura runs")
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

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).expect("JSON on stdout")
}

/// A CSV imported, then exported as CSV and as Parquet, comes back bar for bar; the Parquet file
/// imports again to the same bars.
#[test]
fn import_export_round_trip() {
    let dir = scratch("data-roundtrip");
    let src = fixtures().join("FXY_1min_2023-07-10_to_2025-07-08.csv.gz");
    let out = ok(&vectura_in(
        &dir,
        &["data", "import", src.to_str().unwrap(), "--symbol", "fxy"],
        &[],
    ));
    assert!(out.contains("FXY: imported"), "{out}");
    let original = load_csv_path(&src, &LoadOptions::default()).unwrap().series;

    let csv = dir.join("out.csv");
    ok(&vectura_in(
        &dir,
        &["data", "export", "FXY", "--output", csv.to_str().unwrap()],
        &[],
    ));
    let back = load_csv_path(&csv, &LoadOptions::default()).unwrap().series;
    assert_eq!(back, original);

    let pq = dir.join("out.parquet");
    ok(&vectura_in(
        &dir,
        &[
            "data",
            "export",
            "FXY",
            "--format",
            "parquet",
            "-o",
            pq.to_str().unwrap(),
        ],
        &[],
    ));
    assert_eq!(
        vectura_data::parquet_io::read_parquet(&pq).unwrap(),
        original
    );
    ok(&vectura_in(
        &dir,
        &["data", "import", pq.to_str().unwrap(), "--symbol", "FXY2"],
        &[],
    ));
    let csv2 = dir.join("out2.csv");
    ok(&vectura_in(
        &dir,
        &["data", "export", "FXY2", "-o", csv2.to_str().unwrap()],
        &[],
    ));
    assert_eq!(std::fs::read(&csv).unwrap(), std::fs::read(&csv2).unwrap());

    let ranges = json(&vectura_in(&dir, &["data", "ranges", "--json"], &[]));
    let fxy = ranges
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["symbol"] == "FXY")
        .unwrap();
    assert_eq!(fxy["bars"], original.len() as u64);
    assert_eq!(fxy["have_from"], "2023-07-10");

    // Delete asks first, then deletes.
    let dry = ok(&vectura_in(&dir, &["data", "delete", "FXY2"], &[]));
    assert!(dry.contains("--yes"), "{dry}");
    ok(&vectura_in(&dir, &["data", "delete", "FXY2", "--yes"], &[]));
    let o = vectura_in(&dir, &["data", "export", "FXY2", "-o", "x.csv"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no bars of FXY2"));
}

/// A split stored after the bars changes the prices a backtest reads, without a re-download: the
/// bars table is untouched and the backtest divides the earlier prices by the ratio.
#[test]
fn a_split_added_later_adjusts_what_backtests_read() {
    let dir = scratch("data-split");
    let src = fixtures().join("DBB_1min_2023-07-10_to_2025-07-08.csv.gz");
    ok(&vectura_in(
        &dir,
        &["data", "import", src.to_str().unwrap(), "--symbol", "DBB"],
        &[],
    ));
    let bt = |dir: &Path| {
        json(&vectura_in(
            dir,
            &["backtest", "--symbol", "DBB", "--session", "all", "--json"],
            &[],
        ))
    };
    let before = bt(&dir);
    assert!(before["data"]["sources"][0]
        .as_str()
        .unwrap()
        .contains("vectura.db"));
    let export_before = dir.join("before.csv");
    ok(&vectura_in(
        &dir,
        &[
            "data",
            "export",
            "DBB",
            "-o",
            export_before.to_str().unwrap(),
        ],
        &[],
    ));

    // Alpha Vantage (the emulator) now reports a 2-for-1 on 2024-06-03.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt
        .block_on(vectura_emulator::Emulator::start(
            vectura_emulator::Config::default(),
        ))
        .unwrap();
    let split_day = NaiveDate::from_ymd_opt(2024, 6, 3).unwrap();
    emu.handle().set_splits("DBB", vec![(split_day, 2.0)]);
    let url = emu.base_url();
    let env = [
        ("ALPHA_VANTAGE_API_KEY", "demo-key"),
        ("ALPHA_VANTAGE_URL", url.as_str()),
    ];
    let out = ok(&vectura_in(
        &dir,
        &["data", "splits", "DBB", "--refresh"],
        &env,
    ));
    assert!(out.contains("2024-06-03 2-for-1"), "{out}");
    let after = bt(&dir);

    // The stored bars are as they were.
    let export_after = dir.join("after.csv");
    ok(&vectura_in(
        &dir,
        &[
            "data",
            "export",
            "DBB",
            "-o",
            export_after.to_str().unwrap(),
        ],
        &[],
    ));
    assert_eq!(
        std::fs::read(&export_before).unwrap(),
        std::fs::read(&export_after).unwrap()
    );
    // What the backtest read: halved before the split, the same from it on.
    let split_ts = vectura_core::calendar::session_open_ts(split_day);
    // The chart series keeps every bar with a trade, and the trades differ after the split, so the two
    // series are compared on the bars both kept.
    let points = |r: &serde_json::Value| -> std::collections::BTreeMap<i64, f64> {
        let (t, p) = (&r["series"]["time"], &r["series"]["price"]);
        (0..t.as_array().unwrap().len())
            .map(|i| {
                (
                    crate::common::secs(t[i].as_str().unwrap()),
                    p[i].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (p0, p1) = (points(&before), points(&after));
    let (mut halved, mut same) = (0, 0);
    for (t, a) in &p0 {
        let Some(b) = p1.get(t) else { continue };
        if *t < split_ts {
            assert_eq!(*b, a / 2.0, "at {t}");
            halved += 1;
        } else {
            assert_eq!(b, a, "at {t}");
            same += 1;
        }
    }
    assert!(halved > 100 && same > 100, "{halved} {same}");
    assert_ne!(before["final_equity"], after["final_equity"]);
}

/// `vectura data fetch` against the emulator: the days land in the store, a second run fetches
/// nothing, `data gaps` is empty, and a backtest reads the fetched symbol.
#[test]
fn fetch_then_gaps_then_backtest() {
    let dir = scratch("data-fetch");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt
        .block_on(vectura_emulator::Emulator::start(
            vectura_emulator::Config::default(),
        ))
        .unwrap();
    let url = emu.base_url();
    let env = [
        ("APCA_API_KEY_ID", "PKTEST"),
        ("APCA_API_SECRET_KEY", "secret"),
        ("APCA_API_DATA_URL", url.as_str()),
        ("ALPHA_VANTAGE_API_KEY", "demo-key"),
        ("ALPHA_VANTAGE_URL", url.as_str()),
    ];
    let args = [
        "data",
        "fetch",
        "AAA",
        "BBB",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-15",
        "--quiet",
    ];
    let out = ok(&vectura_in(&dir, &args, &env));
    assert!(out.contains("AAA: 11 days stored"), "{out}");
    assert!(out.contains("BBB: 11 days stored"), "{out}");
    let again = ok(&vectura_in(&dir, &args, &env));
    assert!(
        again.contains("AAA: 0 days stored, 0 closed, 11 already held"),
        "{again}"
    );
    let gaps = ok(&vectura_in(&dir, &["data", "gaps"], &[]));
    assert_eq!(gaps.trim(), "no gaps");
    let bt = json(&vectura_in(
        &dir,
        &["backtest", "--symbol", "AAA", "--json"],
        &[],
    ));
    assert_eq!(bt["data"]["bars_loaded"], 11 * 390);
    // Missing keys: a clear error naming the variables.
    let o = vectura_in(&dir, &args, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("APCA_API_KEY_ID"));
}

/// Keys come from `.env.local` before `.env`, and the environment wins over both.
#[test]
fn dotenv_files_are_read_in_the_seed_order() {
    let dir = scratch("data-dotenv");
    std::fs::write(dir.join(".env"), "VECTURA_DATA_DIR=from-dotenv\n").unwrap();
    std::fs::write(dir.join(".env.local"), "VECTURA_DATA_DIR=from-local\n").unwrap();
    let o = Command::new(crate::common::bin())
        .args(["data", "ranges"])
        .current_dir(&dir)
        .env_remove("VECTURA_DATA_DIR")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    ok(&o);
    assert!(dir.join("from-local/vectura.db").exists());
    assert!(!dir.join("from-dotenv").exists());
}

/// `vectura db schema` (Postgres by default, `--postgres` still accepted and the same) prints, read
/// back statement by statement, exactly the tables of every migration, each with its columns in
/// order and its primary key, and every index on its table; every statement creates only what is
/// missing, and nothing of SQLite's DDL is in it.
#[test]
fn db_schema_prints_every_table_column_and_index_of_the_migrations() {
    use vectura_store::schema::{self, Dialect};
    let dir = scratch("db-schema");
    let plain = vectura_in(&dir, &["db", "schema"], &[]);
    let sql = ok(&plain);
    assert!(
        plain.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    assert_eq!(
        ok(&vectura_in(&dir, &["db", "schema", "--postgres"], &[])),
        sql
    );
    let body: Vec<&str> = sql.lines().filter(|l| !l.starts_with("--")).collect();
    let body = body.join("\n");
    let mut tables: Vec<(String, Vec<String>)> = Vec::new();
    let mut indexes: Vec<(String, String)> = Vec::new();
    for st in body.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(rest) = st.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
            let (name, cols) = rest.split_once(" (\n").expect("columns follow the name");
            let cols = cols.strip_suffix("\n)").expect("the column list closes");
            let cols = cols.split(",\n").map(|c| c.trim().to_string()).collect();
            tables.push((name.to_string(), cols));
        } else if let Some(rest) = st.strip_prefix("CREATE INDEX IF NOT EXISTS ") {
            let (name, on) = rest
                .split_once(" ON ")
                .expect("INDEX name ON table (columns)");
            indexes.push((name.to_string(), on.to_string()));
        } else if st
            .starts_with("ALTER TABLE web_jobs DROP CONSTRAINT IF EXISTS web_jobs_kind_check")
            || st.starts_with("ALTER TABLE web_jobs ADD CONSTRAINT web_jobs_kind_check ")
        {
            // Migration 0008's CHECK swap: dropped if there, then added (harmless twice).
            assert!(
                !st.contains("ADD CONSTRAINT") || st.contains("'fetch'"),
                "{st}"
            );
        } else {
            panic!("not a CREATE … IF NOT EXISTS statement: {st:?}");
        }
    }
    let want: Vec<&schema::Table> = schema::tables().collect();
    assert_eq!(
        tables.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        want.iter().map(|t| t.name).collect::<Vec<_>>(),
        "every table of every migration, in order, each once"
    );
    for ((name, cols), t) in tables.iter().zip(&want) {
        let names: Vec<&str> = cols.iter().map(|c| c.split(' ').next().unwrap()).collect();
        let mut expected: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        expected.push("PRIMARY");
        assert_eq!(names, expected, "{name}'s columns");
        for (c, def) in cols.iter().zip(t.columns) {
            let ty = def.ty.sql(Dialect::Postgres);
            assert!(
                c.starts_with(&format!("{} {ty}", def.name)),
                "{name}: {c} is not {ty}"
            );
        }
        assert_eq!(
            cols.last().unwrap(),
            &format!("PRIMARY KEY ({})", t.primary_key.join(", "))
        );
    }
    // Per migration: its generated indexes, then those its hand-written Postgres statements create
    // (0011's byte-order indexes), in the order the file has them.
    let want_ix: Vec<(String, String)> = schema::MIGRATIONS
        .iter()
        .flat_map(|m| {
            let generated = m.indexes.iter().map(|i| {
                (
                    i.name.to_string(),
                    format!("{} ({})", i.table, i.columns.join(", ")),
                )
            });
            let raw = m
                .raw
                .map(|r| r.sql(Dialect::Postgres))
                .unwrap_or("")
                .split(';')
                .filter_map(|st| st.trim().strip_prefix("CREATE INDEX IF NOT EXISTS "))
                .filter_map(|rest| rest.split_once(" ON "))
                .map(|(n, on)| (n.to_string(), on.to_string()));
            generated.chain(raw).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(indexes, want_ix, "every index, on its table and columns");
    assert!(
        want_ix.len() >= 2 && want.len() >= 13,
        "the schema has its tables and indexes"
    );
    for lite in [" real", " blob", "CURRENT_TIMESTAMP"] {
        assert!(
            !body.contains(lite),
            "SQLite's {lite:?} in the Postgres DDL"
        );
    }
}

#[test]
fn bad_input_names_the_problem() {
    let dir = scratch("data-bad");
    let o = vectura_in(
        &dir,
        &["data", "import", "missing.csv", "--symbol", "X"],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.csv"));
    let o = vectura_in(
        &dir,
        &[
            "data",
            "fetch",
            "AAA",
            "--from",
            "2024-03-10",
            "--to",
            "2024-03-01",
        ],
        &[("APCA_API_KEY_ID", "k"), ("APCA_API_SECRET_KEY", "s")],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("swap them"));
    let o = vectura_in(&dir, &["data", "gaps", "NEVER"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("give --from and --to"));
    let o = vectura_in(&dir, &["backtest", "--symbol", "NOPE"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("vectura data fetch NOPE"));
}
