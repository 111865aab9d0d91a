//! Sweeps: one process vs shard processes through an object store give identical results, shards are
//! idempotent, and the S3 path works against a real signature-checking S3 server on 127.0.0.1.

use crate::common::scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `vectura` with the database in a data directory of this test process (never the user's own).
fn vectura(args: &[&str]) -> std::process::Output {
    vectura_in(&test_data_dir(), args)
}

/// One data directory for the runs every test of this file records.
fn test_data_dir() -> PathBuf {
    std::env::temp_dir().join(format!("vectura-test-{}-sweep-data", std::process::id()))
}

/// A `vectura` command with VECTURA_DATA_DIR = `data` and DATABASE_URL blank (set, so that no
/// .env file fills it in, and blank, so that the default SQLite file in `data` is used).
fn command_in(data: &Path) -> Command {
    let mut c = Command::new(crate::common::bin());
    c.env("VECTURA_DATA_DIR", data).env("DATABASE_URL", "");
    c
}

fn vectura_in(data: &Path, args: &[&str]) -> std::process::Output {
    command_in(data).args(args).output().expect("vectura runs")
}

const PARAMS: [&str; 6] = [
    "--param",
    "buy_below_pct=0.5:3:0.5",
    "--param",
    "sell_above_pct=1,5,10,18",
    "--param",
    "capital_pct=30,60",
];

fn sweep(extra: &[&str]) -> std::process::Output {
    let mut a = vec!["sweep"];
    a.extend_from_slice(&PARAMS);
    a.extend_from_slice(extra);
    vectura(&a)
}

fn ok(o: &std::process::Output) {
    assert!(
        o.status.success(),
        "stdout {} stderr {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn single(dir: &Path) -> Vec<u8> {
    let out = dir.join("single.csv");
    let o = sweep(&["--output", out.to_str().unwrap()]);
    ok(&o);
    std::fs::read(out).unwrap()
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

#[test]
fn one_process_and_four_shard_processes_agree_set_by_set() {
    let d = scratch("sweep-local");
    let one = single(&d);
    let text = String::from_utf8(one.clone()).unwrap();
    assert_eq!(
        text.lines().count(),
        1 + 6 * 4 * 2,
        "a header and one row per set"
    );
    let out = d.join("four.csv");
    let store = file_url(&d.join("store"));
    let o = sweep(&[
        "--store",
        &store,
        "--local-processes",
        "4",
        "--output",
        out.to_str().unwrap(),
    ]);
    ok(&o);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        one,
        "merged shards equal the single-machine file byte for byte"
    );
}

#[test]
fn a_killed_shard_rerun_gives_the_same_merge_and_missing_shards_are_named() {
    let d = scratch("sweep-kill");
    let one = single(&d);
    let store = file_url(&d.join("store"));
    // Pack as three shards, run 0 and 2.
    ok(&sweep(&["--store", &store, "--shard-count", "3"]));
    for i in ["0", "2"] {
        ok(&vectura(&[
            "sweep",
            "run",
            "--store",
            &store,
            "--shard-index",
            i,
        ]));
    }
    // Merging now names the missing shard.
    let merged = d.join("merged.csv");
    let o = vectura(&[
        "sweep",
        "merge",
        "--store",
        &store,
        "--output",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("[1]"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!merged.exists(), "no partial merged file");
    // Shard 1 killed once part of its output exists: its results object holds its first rows and
    // half a row, and the store's staging file of the write in flight is left behind.
    plant_partial_shard(&d.join("store"), &one, 1, 3);
    let o = vectura(&[
        "sweep",
        "merge",
        "--store",
        &store,
        "--output",
        merged.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a partial shard is refused: {err}"
    );
    assert!(err.contains("re-run"), "{err}");
    assert!(!merged.exists(), "no merged file from a partial shard");
    // Shard 1 is started and killed again over its partial output, then run to completion; shard 2
    // is re-run too.
    let mut child = command_in(&test_data_dir())
        .args(["sweep", "run", "--store", &store, "--shard-index", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    ok(&vectura(&[
        "sweep",
        "run",
        "--store",
        &store,
        "--shard-index",
        "1",
    ]));
    ok(&vectura(&[
        "sweep",
        "run",
        "--store",
        &store,
        "--shard-index",
        "2",
    ]));
    ok(&vectura(&[
        "sweep",
        "merge",
        "--store",
        &store,
        "--output",
        merged.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(&merged).unwrap(), one);
}

/// Leaves what a shard killed mid-write leaves in a `file://` store: the first third of its rows
/// and half of the next one under its results name, and a staging file with the same start. The
/// rows are shard `index` of `count`'s rows of the single-machine file `single` (a header first).
fn plant_partial_shard(store: &Path, single: &[u8], index: usize, count: usize) {
    let text = std::str::from_utf8(single).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    let (a, b) = (rows.len() * index / count, rows.len() * (index + 1) / count);
    let mine = &rows[a..b];
    assert!(mine.len() >= 3, "a shard of several rows");
    let mut partial: String = mine[..mine.len() / 3]
        .iter()
        .map(|r| format!("{r}\n"))
        .collect();
    let next = mine[mine.len() / 3];
    partial.push_str(&next[..next.len() / 2]);
    let results = store.join("results");
    std::fs::create_dir_all(&results).unwrap();
    let name = format!("shard-{index:05}-of-{count:05}.csv");
    std::fs::write(results.join(&name), &partial).unwrap();
    std::fs::write(results.join(format!("{name}#1")), &partial).unwrap();
}

#[test]
fn a_store_holding_another_sweep_is_refused() {
    let d = scratch("sweep-other");
    let store = file_url(&d.join("store"));
    ok(&sweep(&["--store", &store, "--shard-count", "2"]));
    let o = vectura(&[
        "sweep",
        "--param",
        "cash_floor=1,2",
        "--store",
        &store,
        "--shard-count",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("different sweep"));
}

/// The s3s-fs binary (0.14.1 verifies SigV4 signatures), from VECTURA_S3S_FS or PATH. Its test is
/// ignored unless asked for; asked for, a missing server fails it rather than passing by skipping.
fn s3s_fs() -> PathBuf {
    if let Some(p) = std::env::var_os("VECTURA_S3S_FS") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "VECTURA_S3S_FS={} is not a file: run scripts/test (it installs s3s-fs 0.14.1)",
            p.display()
        );
        return p;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("s3s-fs"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("s3s-fs is not installed: run scripts/test (it installs s3s-fs 0.14.1), or set VECTURA_S3S_FS")
        })
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs s3s-fs: run scripts/test"]
fn shards_through_a_real_s3_server_and_a_wrong_secret_is_refused() {
    let bin = s3s_fs();
    let d = scratch("sweep-s3");
    let one = single(&d);
    let root = d.join("s3root");
    std::fs::create_dir_all(root.join("sweeps")).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let _server = Server(
        Command::new(&bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                "AKTEST",
                "--secret-key",
                "SKTEST",
            ])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts"),
    );
    // Wait for it to listen (bounded).
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let run = |secret: &str, args: &[&str]| {
        let mut a = vec!["sweep"];
        a.extend_from_slice(&PARAMS);
        a.extend_from_slice(args);
        command_in(&test_data_dir())
            .args(&a)
            .env("AWS_ACCESS_KEY_ID", "AKTEST")
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
            .output()
            .unwrap()
    };
    let out = d.join("s3.csv");
    let o = run(
        "SKTEST",
        &[
            "--store",
            "s3://sweeps/run1",
            "--local-processes",
            "2",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    ok(&o);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        one,
        "the S3 path gives the single-machine file"
    );
    let bad = run(
        "WRONG",
        &["--store", "s3://sweeps/run2", "--shard-count", "2"],
    );
    assert_eq!(bad.status.code(), Some(2), "a wrong secret is refused");
    let err = String::from_utf8_lossy(&bad.stderr);
    // The server's own verdict on the signature, as an access refusal naming the variables to
    // check: not any store error (an unreachable server or a missing bucket reads otherwise).
    assert!(
        err.contains("the sweep store refused access to run2/plan.json"),
        "{err}"
    );
    assert!(
        err.contains("403 Forbidden") && err.contains("SignatureDoesNotMatch"),
        "{err}"
    );
    assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    assert!(!err.contains("WRONG"), "the secret is never printed: {err}");
    assert!(
        !d.join("s3root/sweeps/run2").exists(),
        "nothing was written with the wrong secret"
    );
}

#[test]
fn walk_forward_reports_out_of_sample_results_of_in_sample_winners() {
    let d = scratch("sweep-wf");
    let out = d.join("wf.csv");
    let data = crate::common::fixtures().join("yahoofinance-SPY-20080101-20180101.csv");
    let o = vectura(&[
        "sweep",
        "--data",
        data.to_str().unwrap(),
        "--contribution-frequency-days",
        "0",
        "--param",
        "buy_below_pct=1:5:1",
        "--param",
        "sell_above_pct=2,5,10,20",
        "--walk-forward",
        "720:180",
        "--top",
        "2",
        "--rank-by",
        "total_return_pct",
        "--output",
        out.to_str().unwrap(),
    ]);
    ok(&o);
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(rows.len() >= 20, "about 16 windows × top 2: {}", rows.len());
    for pair in rows.chunks(2) {
        assert_eq!(pair[0][5], "1");
        assert_eq!(pair[1][5], "2");
        // The winner's in-sample metric is at least the runner-up's.
        assert!(pair[0][13].parse::<f64>().unwrap() >= pair[1][13].parse::<f64>().unwrap());
        // Out of sample starts the day after in sample ends.
        let is_end = chrono::NaiveDate::parse_from_str(pair[0][2], "%Y-%m-%d").unwrap();
        let oos_start = chrono::NaiveDate::parse_from_str(pair[0][3], "%Y-%m-%d").unwrap();
        assert_eq!(oos_start, is_end + chrono::Duration::days(1));
    }
    assert!(String::from_utf8_lossy(&o.stdout).contains("in-sample winners"));
}

/// Result rows as (set, values in column order), an empty cell as None.
type Rows = Vec<(u64, Vec<Option<f64>>)>;

/// The CSV's rows as (set, values), the empty cells as None.
fn csv_rows(text: &str) -> Rows {
    text.lines()
        .skip(1)
        .map(|l| {
            let mut c = l.split(',');
            let set = c.next().unwrap().parse().unwrap();
            let vals = c
                .map(|v| (!v.is_empty()).then(|| v.parse::<f64>().unwrap()))
                .collect();
            (set, vals)
        })
        .collect()
}

fn same_bits(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        (None, None) => true,
        _ => false,
    }
}

/// The runs stored in `data`'s SQLite file, and each run's results.
fn stored_runs(data: &Path) -> Vec<(vectura_store::SweepRun, Vec<vectura_store::SweepResult>)> {
    let url = format!("sqlite://{}", data.join("vectura.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = vectura_store::Store::open(&url).await.unwrap();
        let mut out = Vec::new();
        for run in store.sweep_runs().await.unwrap() {
            let rows = store.sweep_results(&run.id).await.unwrap();
            out.push((run, rows));
        }
        store.close().await;
        out
    })
}

/// Every stored row equals the CSV row of its set, number for number (bit for bit).
fn assert_rows_match_csv(rows: &[vectura_store::SweepResult], csv: &str) {
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').skip(1).collect();
    let want = csv_rows(csv);
    assert_eq!(rows.len(), want.len(), "one stored row per set");
    for (r, (set, vals)) in rows.iter().zip(&want) {
        assert_eq!(r.set_index, *set);
        for (name, v) in header.iter().zip(vals) {
            let got = r
                .params
                .get(*name)
                .or_else(|| r.metrics.get(*name))
                .unwrap_or_else(|| panic!("set {set}: no {name} stored"));
            let got = got.as_f64();
            // JSON holds no NaN or infinity: those are stored as null.
            let v = v.filter(|x| x.is_finite());
            assert!(
                same_bits(got, v),
                "set {set} {name}: stored {got:?}, CSV {v:?}"
            );
        }
    }
}

#[test]
fn a_sweep_records_its_run_and_every_row_in_the_database() {
    let d = scratch("sweep-db");
    let data = d.join("data");
    let out = d.join("one.csv");
    let mut a = vec!["sweep"];
    a.extend_from_slice(&PARAMS);
    a.extend_from_slice(&["--output", out.to_str().unwrap()]);
    let o = vectura_in(&data, &a);
    ok(&o);
    let csv = std::fs::read_to_string(&out).unwrap();
    let runs = stored_runs(&data);
    assert_eq!(runs.len(), 1);
    let (run, rows) = &runs[0];
    // It says where it recorded: the database file and the run's id.
    let said = format!(
        "recorded in the database {} as sweep run {}",
        data.join("vectura.db").display(),
        run.id
    );
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l == said),
        "{said}: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(run.status, vectura_store::SweepStatus::Done);
    assert_eq!((run.set_count, run.rows_stored), (48, 48));
    assert_eq!(run.symbols, ["SPY"]);
    assert_eq!(run.fill, "NextOpen");
    assert!(run.start_date.is_some() && run.end_date >= run.start_date);
    assert_eq!(run.plan["axes"].as_array().unwrap().len(), 3);
    assert!(run.finished_at.is_some());
    assert_rows_match_csv(rows, &csv);

    // The distributed path records the merged run, with the same rows; shard processes write nothing.
    let store = file_url(&d.join("store"));
    let mut a = vec!["sweep"];
    a.extend_from_slice(&PARAMS);
    let four = d.join("four.csv");
    a.extend_from_slice(&[
        "--store",
        &store,
        "--local-processes",
        "2",
        "--output",
        four.to_str().unwrap(),
    ]);
    ok(&vectura_in(&data, &a));
    let runs = stored_runs(&data);
    assert_eq!(runs.len(), 2, "the merge is one run; the shards add none");
    assert_eq!(runs[0].0.status, vectura_store::SweepStatus::Done);
    assert_rows_match_csv(&runs[0].1, &csv);

    // --no-db leaves the database alone (and creates none).
    let none = d.join("none");
    let mut a = vec!["sweep"];
    a.extend_from_slice(&PARAMS);
    a.push("--no-db");
    let o = vectura_in(&none, &a);
    ok(&o);
    assert!(!none.join("vectura.db").exists());
    assert!(!String::from_utf8_lossy(&o.stdout).contains("recorded"));

    // A database that cannot be opened stops the sweep before it runs, naming --no-db.
    let mut a = vec!["sweep"];
    a.extend_from_slice(&PARAMS);
    let o = command_in(&data)
        .env("DATABASE_URL", "mysql://nope")
        .args(&a)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--no-db"));
}

/// The Parquet file's rows as (set, values), in file order.
fn parquet_rows(path: &Path) -> (Vec<String>, Rows) {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, UInt64Type};
    use arrow_array::Array;
    let f = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    let mut names = Vec::new();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        names = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let sets = batch.column(0).as_primitive::<UInt64Type>();
        for i in 0..batch.num_rows() {
            let vals = (1..batch.num_columns())
                .map(|c| {
                    let col = batch.column(c).as_primitive::<Float64Type>();
                    (!col.is_null(i)).then(|| col.value(i))
                })
                .collect();
            rows.push((sets.value(i), vals));
        }
    }
    (names, rows)
}

fn assert_parquet_equals_csv(parquet: &Path, csv: &str) {
    let (names, rows) = parquet_rows(parquet);
    assert_eq!(
        names.join(","),
        csv.lines().next().unwrap(),
        "the CSV's columns, in order"
    );
    let want = csv_rows(csv);
    assert_eq!(rows.len(), want.len());
    for ((set, vals), (wset, wvals)) in rows.iter().zip(&want) {
        assert_eq!(set, wset, "ordered by set");
        assert_eq!(vals.len(), wvals.len());
        for (i, (a, b)) in vals.iter().zip(wvals).enumerate() {
            assert!(
                same_bits(*a, *b),
                "set {set} column {}: {a:?} vs {b:?}",
                names[i + 1]
            );
        }
    }
}

#[test]
fn parquet_output_holds_the_csv_rows_bit_for_bit_also_when_merged() {
    let d = scratch("sweep-parquet");
    let csv = String::from_utf8(single(&d)).unwrap();
    let pq = d.join("one.parquet");
    ok(&sweep(&["--output", pq.to_str().unwrap()]));
    assert!(
        !d.join("one.parquet.tmp").exists(),
        "the temporary file was renamed"
    );
    assert_parquet_equals_csv(&pq, &csv);
    // Two shards merged into Parquet give the same file content.
    let store = file_url(&d.join("store"));
    ok(&sweep(&["--store", &store, "--shard-count", "2"]));
    for i in ["0", "1"] {
        ok(&vectura(&[
            "sweep",
            "run",
            "--store",
            &store,
            "--shard-index",
            i,
        ]));
    }
    let merged = d.join("merged.parquet");
    ok(&vectura(&[
        "sweep",
        "merge",
        "--store",
        &store,
        "--output",
        merged.to_str().unwrap(),
        "--no-db",
    ]));
    assert_parquet_equals_csv(&merged, &csv);
    // Another extension is refused with the fix, before anything runs.
    let o = sweep(&["--output", d.join("x.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("give a .csv or .parquet file"));
}

/// The report's heat map, read from the page's embedded data, against the results CSV of the same
/// run: its axes are the distinct values of the two parameters, ascending, and each cell is the
/// highest finite `metric` of the CSV rows with that pair of values (null when none), bit for bit.
fn assert_heat_cells_are_the_best_csv_rows(
    html: &str,
    csv: &str,
    axes: (&str, &str),
    metric: &str,
) {
    let start = html
        .find(r#"<script type="application/json" id="vectura-data">"#)
        .expect("the page's data")
        + r#"<script type="application/json" id="vectura-data">"#.len();
    let end = start + html[start..].find("</script>").unwrap();
    let data: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
    let trace = &data["traces"][0];
    assert_eq!(trace["type"], "heatmap");
    let nums = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            // Axis values are text (category axes), each Rust's shortest form of the value.
            .map(|x| x.as_str().unwrap().parse::<f64>().unwrap())
            .collect()
    };
    let (xs, ys) = (nums(&trace["x"]), nums(&trace["y"]));
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (cx, cy, cm) = (col(axes.0), col(axes.1), col(metric));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let distinct = |c: usize| {
        let mut v: Vec<f64> = rows.iter().map(|r| r[c].parse().unwrap()).collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    };
    assert_eq!(xs, distinct(cx), "x axis: {}", axes.0);
    assert_eq!(ys, distinct(cy), "y axis: {}", axes.1);
    let z = trace["z"].as_array().unwrap();
    assert_eq!(z.len(), ys.len());
    let mut filled = 0;
    for (yi, y) in ys.iter().enumerate() {
        let zrow = z[yi].as_array().unwrap();
        assert_eq!(zrow.len(), xs.len());
        for (xi, x) in xs.iter().enumerate() {
            let best = rows
                .iter()
                .filter(|r| {
                    r[cx].parse::<f64>().unwrap() == *x && r[cy].parse::<f64>().unwrap() == *y
                })
                .filter_map(|r| r[cm].parse::<f64>().ok().filter(|v| v.is_finite()))
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
            let got = zrow[xi].as_f64();
            assert_eq!(
                got.map(f64::to_bits),
                best.map(f64::to_bits),
                "cell {}={x} {}={y}: map {got:?}, CSV best {best:?}",
                axes.0,
                axes.1
            );
            filled += usize::from(got.is_some());
        }
    }
    assert!(filled > 1, "the map has cells");
    // The cells differ, or the comparison above would prove little.
    let values: Vec<f64> = z
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().filter_map(|v| v.as_f64()))
        .collect();
    assert!(values.iter().any(|v| *v != values[0]), "{values:?}");
}

#[test]
fn html_report_embeds_plotly_a_heat_map_and_the_top_table() {
    let d = scratch("sweep-report");
    let page = d.join("sweep.html");
    let rows_csv = d.join("rows.csv");
    let o = sweep(&[
        "--report",
        page.to_str().unwrap(),
        "--rank-by",
        "total_return_pct",
        "--top",
        "5",
        "--output",
        rows_csv.to_str().unwrap(),
        "--no-db",
    ]);
    ok(&o);
    assert_heat_cells_are_the_best_csv_rows(
        &std::fs::read_to_string(&page).unwrap(),
        &std::fs::read_to_string(&rows_csv).unwrap(),
        ("buy_below_pct", "sell_above_pct"),
        "total_return_pct",
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    // The first row of the printed top table: its first word is the set.
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("top 5 by total_return_pct"))
        .unwrap();
    let first_set = lines[at + 2].split_whitespace().next().unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("window.Plotly"), "plotly.js is embedded");
    assert!(!html.contains("<script src="), "nothing is fetched");
    assert!(html.contains(r#""type":"heatmap""#), "a heatmap trace");
    // The first two swept parameters are the default axes.
    assert!(html.contains("total_return_pct over buy_below_pct × sell_above_pct"));
    assert!(
        html.contains(&format!(
            r#"<tr data-set="{first_set}"><td>1</td><td>{first_set}</td>"#
        )),
        "the top table starts with set {first_set}"
    );
    // Chosen axes; an unswept axis is refused with the fix.
    ok(&sweep(&[
        "--report",
        page.to_str().unwrap(),
        "--heatmap-x",
        "capital_pct",
        "--heatmap-y",
        "buy_below_pct",
        "--output",
        rows_csv.to_str().unwrap(),
        "--no-db",
    ]));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("over capital_pct × buy_below_pct"));
    assert_heat_cells_are_the_best_csv_rows(
        &html,
        &std::fs::read_to_string(&rows_csv).unwrap(),
        ("capital_pct", "buy_below_pct"),
        "time_weighted_return_pct",
    );
    let o = sweep(&[
        "--report",
        page.to_str().unwrap(),
        "--heatmap-x",
        "cash_floor",
        "--no-db",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--heatmap-x cash_floor") && err.contains("buy_below_pct"),
        "{err}"
    );
}

/// A bar file with a Symbol column holding AAPL's and MSFT's 2011 daily bars, built from
/// the repository's fixtures.
fn two_symbol_file(dir: &Path) -> PathBuf {
    let daily = crate::common::fixtures().join("daily");
    let mut text = String::from("symbol,date,open,high,low,close,volume\n");
    for (sym, file) in [
        ("AAPL", "AAPL_2000_2013_quandl_wiki.csv"),
        ("MSFT", "MSFT_2000_2013_quandl_wiki.csv"),
    ] {
        let src = std::fs::read_to_string(daily.join(file)).unwrap();
        for line in src.lines().skip(1) {
            let c: Vec<&str> = line.split(',').collect();
            if c[0].starts_with("2011-") {
                text.push_str(&format!("{sym},{}\n", c[..6].join(",")));
            }
        }
    }
    let p = dir.join("two.csv");
    std::fs::write(&p, text).unwrap();
    p
}

const MARKET_PARAMS: [&str; 4] = [
    "--param",
    "buy_below_pct=1:3:1",
    "--param",
    "sell_above_pct=5,10",
];

#[test]
fn a_sweep_of_two_symbols_and_two_ranges_equals_one_sweep_per_market() {
    let d = scratch("sweep-markets");
    let file = two_symbol_file(&d);
    let file = file.to_str().unwrap();
    let data = d.join("data");
    let ranges = ["2011-01-01:2011-06-30", "2011-07-01:2011-12-31"];
    let multi = d.join("multi.csv");
    let multi_pq = d.join("multi.parquet");
    let mut a = vec![
        "sweep", "--data", file, "--symbol", "MSFT", "--symbol", "AAPL",
    ];
    for r in ranges {
        a.extend_from_slice(&["--range", r]);
    }
    a.extend_from_slice(&MARKET_PARAMS);
    let mut pq = a.clone();
    a.extend_from_slice(&["--output", multi.to_str().unwrap(), "--top", "4"]);
    let o = vectura_in(&data, &a);
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("4 markets × 6 sets = 24 rows"), "{stdout}");
    // The top table ranks across markets and names each row's market.
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("symbol"))
        .skip(1)
        .take_while(|l| !l.starts_with("results:"))
        .collect();
    assert_eq!(table.len(), 4, "{stdout}");
    assert!(table
        .iter()
        .all(|l| l.starts_with("MSFT ") || l.starts_with("AAPL ")));

    let text = std::fs::read_to_string(&multi).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 4 * 6, "a row per set per market");
    let mut next = 0;
    let mut single_header = String::new();
    // Markets in the order given, symbol first; each market's rows equal its own sweep's, bit for bit.
    for sym in ["MSFT", "AAPL"] {
        for r in ranges {
            let (from, to) = r.split_once(':').unwrap();
            let one = d.join(format!("{sym}-{from}.csv"));
            let mut a = vec!["sweep", "--data", file, "--symbol", sym];
            a.extend_from_slice(&["--start-date", from, "--end-date", to, "--no-db"]);
            a.extend_from_slice(&MARKET_PARAMS);
            a.extend_from_slice(&["--output", one.to_str().unwrap()]);
            ok(&vectura_in(&data, &a));
            let want = std::fs::read_to_string(&one).unwrap();
            single_header = want.lines().next().unwrap().to_string();
            let prefix = format!("{sym},{from},{to},");
            for w in want.lines().skip(1) {
                assert_eq!(rows[next], format!("{prefix}{w}"), "row {next}");
                next += 1;
            }
        }
    }
    assert_eq!(next, rows.len());
    assert_eq!(
        header,
        format!("symbol,start_date,end_date,{single_header}"),
        "the market columns lead"
    );

    // The run records both symbols, the whole span and every row, keyed by its place in the run.
    let runs = stored_runs(&data);
    assert_eq!(runs.len(), 1);
    let (run, stored) = &runs[0];
    assert_eq!(run.status, vectura_store::SweepStatus::Done);
    assert_eq!(run.symbols, ["MSFT", "AAPL"]);
    assert_eq!(run.start_date.unwrap().to_string(), "2011-01-01");
    assert_eq!(run.end_date.unwrap().to_string(), "2011-12-31");
    assert_eq!((run.set_count, run.rows_stored), (24, 24));
    for (i, (s, line)) in stored.iter().zip(&rows).enumerate() {
        let c: Vec<&str> = line.split(',').collect();
        assert_eq!(s.set_index, i as u64);
        assert_eq!(s.params["symbol"], c[0]);
        assert_eq!(s.params["start_date"], c[1]);
        assert_eq!(s.params["end_date"], c[2]);
        assert_eq!(s.params["set"].to_string(), c[3]);
        let eq = s.metrics["final_equity"].as_f64().unwrap();
        assert_eq!(eq.to_bits(), c[10].parse::<f64>().unwrap().to_bits());
    }

    // Parquet: the same rows, with the market as the leading columns.
    pq.extend_from_slice(&["--output", multi_pq.to_str().unwrap(), "--no-db"]);
    ok(&vectura_in(&data, &pq));
    let f = std::fs::File::open(&multi_pq).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    let mut n = 0;
    for batch in reader {
        use arrow_array::cast::AsArray;
        use arrow_array::types::{Date32Type, Float64Type, UInt64Type};
        let batch = batch.unwrap();
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names.join(","), header);
        for i in 0..batch.num_rows() {
            let c: Vec<&str> = rows[n].split(',').collect();
            assert_eq!(batch.column(0).as_string::<i32>().value(i), c[0]);
            let day = |col: usize| {
                let d = batch.column(col).as_primitive::<Date32Type>().value(i);
                (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
                    + chrono::Duration::days(d.into()))
                .to_string()
            };
            assert_eq!((day(1), day(2)), (c[1].to_string(), c[2].to_string()));
            let set = batch.column(3).as_primitive::<UInt64Type>().value(i);
            assert_eq!(set.to_string(), c[3]);
            let eq = batch.column(10).as_primitive::<Float64Type>().value(i);
            assert_eq!(eq.to_bits(), c[10].parse::<f64>().unwrap().to_bits());
            n += 1;
        }
    }
    assert_eq!(n, rows.len());
}

#[test]
fn one_market_given_as_a_range_writes_the_file_of_today() {
    let d = scratch("sweep-one-range");
    let file = two_symbol_file(&d);
    let file = file.to_str().unwrap();
    let (a_out, b_out) = (d.join("a.csv"), d.join("b.csv"));
    let mut a = vec!["sweep", "--data", file, "--symbol", "AAPL", "--no-db"];
    a.extend_from_slice(&MARKET_PARAMS);
    let mut b = a.clone();
    a.extend_from_slice(&["--range", "2011-02-01:2011-05-31"]);
    a.extend_from_slice(&["--output", a_out.to_str().unwrap()]);
    b.extend_from_slice(&["--start-date", "2011-02-01", "--end-date", "2011-05-31"]);
    b.extend_from_slice(&["--output", b_out.to_str().unwrap()]);
    ok(&vectura_in(&d.join("data"), &a));
    ok(&vectura_in(&d.join("data"), &b));
    assert_eq!(
        std::fs::read(&a_out).unwrap(),
        std::fs::read(&b_out).unwrap()
    );
}

#[test]
fn several_markets_refuse_conflicting_ranges_naming_the_fix() {
    // --store, --shard-count, --local-processes, --walk-forward and --report run several markets
    // (see several_markets_through_three_shard_processes_merge_into_the_single_machine_file,
    // a_report_of_two_symbols_draws_a_heat_map_per_market and
    // a_walk_forward_of_two_symbols_prints_each_markets_own_table).
    let o = sweep(&[
        "--symbol",
        "SPY",
        "--symbol",
        "QQQ",
        "--range",
        "2011-01-01:2011-02-01",
        "--start-date",
        "2011-01-01",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--range"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    for (bad, says) in [
        ("2011-02-01", "FROM:TO"),
        ("2011-02-30:2011-03-01", "FROM:TO"),
        ("2011-03-01:2011-02-01", "before the start"),
    ] {
        let o = sweep(&["--range", bad]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{bad}: {err}");
        assert!(
            err.contains("--range") && err.contains(says),
            "{bad}: {err}"
        );
    }
    // A range without bars names the market it is about.
    let o = sweep(&["--range", "2030-01-01:2030-02-01", "--no-db"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--range 2030-01-01:2030-02-01") && err.contains("no bars"),
        "{err}"
    );
    let o = sweep(&["--symbol", "SPY", "--symbol", "spy"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("given twice"));
    // A backtest still runs one symbol.
    let o = vectura(&["backtest", "--symbol", "SPY", "--symbol", "QQQ"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--symbol") && err.contains("vectura sweep"),
        "{err}"
    );
}

#[test]
fn a_report_of_two_symbols_draws_a_heat_map_per_market() {
    let d = scratch("sweep-markets-report");
    let file = two_symbol_file(&d);
    let page = d.join("two.html");
    let mut a = vec![
        "sweep",
        "--data",
        file.to_str().unwrap(),
        "--symbol",
        "MSFT",
        "--symbol",
        "AAPL",
        "--rank-by",
        "total_return_pct",
        "--top",
        "4",
        "--no-db",
        "--report",
        page.to_str().unwrap(),
    ];
    a.extend_from_slice(&MARKET_PARAMS);
    let o = vectura_in(&d.join("data"), &a);
    ok(&o);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("window.Plotly"), "plotly.js is embedded");
    assert!(!html.contains("<script src="), "nothing is fetched");
    assert_eq!(
        html.matches(r#""type":"heatmap""#).count(),
        2,
        "a map per market"
    );
    // Each map is titled with its market, in market order.
    let (msft, aapl) = (
        "MSFT 2011-01-03 → 2011-12-30",
        "AAPL 2011-01-03 → 2011-12-30",
    );
    for m in [msft, aapl] {
        assert!(html.contains(&format!(r#""name":"{m}""#)), "{m} trace");
        assert!(
            html.contains(&format!(
                "<h2>{m}: total_return_pct over buy_below_pct × sell_above_pct</h2>"
            )),
            "{m} heading"
        );
    }
    assert!(html.find(msft).unwrap() < html.find(aapl).unwrap());
    assert!(html.contains(r#"id="heat-0""#) && html.contains(r#"id="heat-1""#));
    // The top table ranks across markets and names each row's market, as the printed table does.
    assert!(html.contains("<th>rank</th><th>symbol</th><th>start</th><th>end</th><th>set</th>"));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let printed: Vec<Vec<&str>> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("symbol"))
        .skip(1)
        .take_while(|l| !l.starts_with("report:"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(printed.len(), 4, "{stdout}");
    for (i, r) in printed.iter().enumerate() {
        let row = format!(
            r#"<tr data-set="{set}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{set}</td>"#,
            i + 1,
            r[0],
            r[1],
            r[2],
            set = r[3]
        );
        assert!(html.contains(&row), "top row {i}: {row}");
    }
}

#[test]
fn a_walk_forward_of_two_symbols_prints_each_markets_own_table() {
    let d = scratch("sweep-markets-wf");
    let file = two_symbol_file(&d);
    let file = file.to_str().unwrap();
    let data = d.join("data");
    let wf = ["--walk-forward", "90:30", "--top", "2", "--no-db"];
    let mut a = vec![
        "sweep", "--data", file, "--symbol", "MSFT", "--symbol", "AAPL",
    ];
    a.extend_from_slice(&MARKET_PARAMS);
    a.extend_from_slice(&wf);
    let o = vectura_in(&data, &a);
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    // Each market's table is exactly its one-market walk-forward's, under a heading naming it.
    let mut want = Vec::new();
    for sym in ["MSFT", "AAPL"] {
        let mut a = vec!["sweep", "--data", file, "--symbol", sym];
        a.extend_from_slice(&MARKET_PARAMS);
        a.extend_from_slice(&wf);
        let one = vectura_in(&data, &a);
        ok(&one);
        let one = String::from_utf8_lossy(&one.stdout).into_owned();
        assert!(one.lines().count() > 4, "{one}");
        want.push(format!("{sym} 2011-01-03 → 2011-12-30:\n{one}"));
    }
    assert_eq!(stdout, want.join("\n"));

    // --output holds both markets' rows, each led by its market.
    let out = d.join("wf.csv");
    a.extend_from_slice(&["--output", out.to_str().unwrap()]);
    ok(&vectura_in(&data, &a));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("symbol,start_date,end_date,window,"));
    let syms: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    assert!(syms.contains(&"MSFT") && syms.contains(&"AAPL"));
    assert!(
        syms.windows(2).all(|w| w != ["AAPL", "MSFT"]),
        "market order"
    );
}

/// The stored rows of a run as comparable text: key, parameters and metrics.
fn stored_text(rows: &[vectura_store::SweepResult]) -> Vec<String> {
    rows.iter()
        .map(|r| format!("{} {} {}", r.set_index, r.params, r.metrics))
        .collect()
}

#[test]
fn several_markets_through_three_shard_processes_merge_into_the_single_machine_file() {
    let d = scratch("sweep-markets-shards");
    let file = two_symbol_file(&d);
    let file = file.to_str().unwrap();
    let mut flags = vec![
        "sweep", "--data", file, "--symbol", "MSFT", "--symbol", "AAPL",
    ];
    for r in ["2011-01-01:2011-06-30", "2011-07-01:2011-12-31"] {
        flags.extend_from_slice(&["--range", r]);
    }
    flags.extend_from_slice(&MARKET_PARAMS);
    fn joined<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<&'a str> {
        a.iter().chain(b).copied().collect()
    }

    // One machine: CSV (recorded in its own database) and Parquet.
    let (one_data, shard_data) = (d.join("one-data"), d.join("shard-data"));
    let (one, one_pq) = (d.join("one.csv"), d.join("one.parquet"));
    ok(&vectura_in(
        &one_data,
        &joined(&flags, &["--output", one.to_str().unwrap()]),
    ));
    ok(&vectura_in(
        &one_data,
        &joined(&flags, &["--output", one_pq.to_str().unwrap(), "--no-db"]),
    ));
    let one = std::fs::read(&one).unwrap();
    assert_eq!(String::from_utf8_lossy(&one).lines().count(), 1 + 4 * 6);

    // Packed once as 3 shards (8 rows each, so shards cross market boundaries), run as 3 processes.
    let store = file_url(&d.join("store"));
    let o = vectura_in(
        &shard_data,
        &joined(&flags, &["--store", &store, "--shard-count", "3"]),
    );
    ok(&o);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("packed 4 markets × 6 sets"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    for f in ["plan.json", "bars.bin", "bars-00001.bin", "bars-00003.bin"] {
        assert!(d.join("store").join(f).exists(), "{f} is packed");
    }
    let run_shard = |i: &str| {
        command_in(&shard_data)
            .args(["sweep", "run", "--store", &store, "--shard-index", i])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let shards: Vec<_> = ["0", "1", "2"].into_iter().map(run_shard).collect();
    for mut c in shards {
        assert!(c.wait().unwrap().success());
    }
    let merge = |out: &Path, extra: &[&str]| {
        let mut a = vec!["sweep", "merge", "--store", &store, "--output"];
        a.push(out.to_str().unwrap());
        a.extend_from_slice(extra);
        ok(&vectura_in(&shard_data, &a));
    };
    let (merged, merged_pq) = (d.join("merged.csv"), d.join("merged.parquet"));
    merge(&merged, &[]);
    assert_eq!(
        std::fs::read(&merged).unwrap(),
        one,
        "merged shards equal the single-machine file byte for byte"
    );
    merge(&merged_pq, &["--no-db"]);
    assert_eq!(
        std::fs::read(&merged_pq).unwrap(),
        std::fs::read(&one_pq).unwrap(),
        "merged Parquet equals the single-machine Parquet byte for byte"
    );

    // The merge is recorded as the single-machine run is: same markets, same keyed rows.
    let (a, b) = (stored_runs(&one_data), stored_runs(&shard_data));
    assert_eq!((a.len(), b.len()), (1, 1), "shard processes record nothing");
    assert_eq!(b[0].0.status, vectura_store::SweepStatus::Done);
    assert_eq!(b[0].0.symbols, a[0].0.symbols);
    assert_eq!(
        (b[0].0.start_date, b[0].0.end_date),
        (a[0].0.start_date, a[0].0.end_date)
    );
    assert_eq!((b[0].0.set_count, b[0].0.rows_stored), (24, 24));
    assert_eq!(stored_text(&b[0].1), stored_text(&a[0].1));

    // A shard killed once part of its output exists is refused by the merge; killed again and
    // re-run, the merge is identical.
    plant_partial_shard(&d.join("store"), &one, 1, 3);
    let partial = vectura_in(
        &shard_data,
        &[
            "sweep",
            "merge",
            "--store",
            &store,
            "--output",
            d.join("partial.csv").to_str().unwrap(),
            "--no-db",
        ],
    );
    assert_eq!(
        partial.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&partial.stderr)
    );
    assert!(!d.join("partial.csv").exists());
    let mut c = command_in(&shard_data)
        .args(["sweep", "run", "--store", &store, "--shard-index", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = c.kill();
    let _ = c.wait();
    assert!(run_shard("1").wait().unwrap().success());
    merge(&merged, &["--no-db"]);
    assert_eq!(std::fs::read(&merged).unwrap(), one);

    // The store holds this sweep: other markets or another plan are refused.
    for other in [
        vec![
            "sweep",
            "--data",
            file,
            "--symbol",
            "MSFT",
            "--range",
            "2011-01-01:2011-06-30",
        ],
        {
            let mut a = flags.clone();
            a.extend_from_slice(&["--param", "capital_pct=30,60"]);
            a
        },
        {
            let mut a = flags.clone();
            a[4] = "AAPL";
            a[6] = "MSFT";
            a
        },
    ] {
        let mut a = other.clone();
        if !a.contains(&"--param") {
            a.extend_from_slice(&MARKET_PARAMS);
        }
        a.extend_from_slice(&["--store", &store, "--shard-count", "3"]);
        let o = vectura_in(&shard_data, &a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {err}");
        assert!(err.contains("different sweep"), "{err}");
    }
    // The same sweep packed again is accepted (every shard may try to pack it).
    ok(&vectura_in(
        &shard_data,
        &joined(&flags, &["--store", &store, "--shard-count", "3"]),
    ));

    // Without a store, --shard-index/--shard-count write the same slices: their rows, in shard
    // order, are the single-machine file's.
    let mut rows = String::new();
    for i in ["0", "1", "2"] {
        let part = d.join(format!("part{i}.csv"));
        ok(&vectura_in(
            &shard_data,
            &joined(
                &flags,
                &[
                    "--shard-index",
                    i,
                    "--shard-count",
                    "3",
                    "--output",
                    part.to_str().unwrap(),
                ],
            ),
        ));
        let text = std::fs::read_to_string(&part).unwrap();
        rows.extend(text.lines().skip(1).map(|l| format!("{l}\n")));
    }
    let one_text = String::from_utf8(one.clone()).unwrap();
    assert_eq!(rows, one_text[one_text.find('\n').unwrap() + 1..]);

    // --local-processes runs the shards and merges in one command.
    let local = d.join("local.csv");
    let store2 = file_url(&d.join("store2"));
    ok(&vectura_in(
        &shard_data,
        &joined(
            &flags,
            &[
                "--store",
                &store2,
                "--local-processes",
                "3",
                "--output",
                local.to_str().unwrap(),
                "--no-db",
            ],
        ),
    ));
    assert_eq!(std::fs::read(&local).unwrap(), one);
}
