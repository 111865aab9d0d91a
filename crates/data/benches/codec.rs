//! The day codec against one Parquet file (zstd level 19) of the same bars: bytes per bar and decode
//! throughput, on real minute bars (DBB and FXY from `data/fixtures`, SPY 2011-01 + 2011-03 from
//! `data/bundled`) and a seeded synthetic year (`vectura_data::synth`, generated here, no file).
//! A missing input file panics: a benchmark that measures nothing must not pass.
//!
//! `cargo bench -p vectura-data --bench codec` prints one table (bytes per bar of our day blobs and of
//! the Parquet file, decode M bars/s of both) and then criterion's timings, with
//! `Throughput::Elements(bars)`: `ours` decodes every day's blob into one `BarSeries` (as the store loads a history), `parquet` reads
//! the whole file back into Arrow arrays.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use vectura_core::BarSeries;
use vectura_data::codec::{decode_day, decode_day_into, encode_day};
use vectura_data::parquet_io::{read_parquet, write_parquet};
use vectura_data::{load_csv_path, LoadOptions};

const PARQUET_ZSTD_LEVEL: i32 = 19;

struct Case {
    name: &'static str,
    bars: usize,
    blobs: Vec<Vec<u8>>,
    parquet: PathBuf,
    parquet_bytes: u64,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The bars of `paths`, one after the other; a missing or unreadable file panics.
fn load(paths: &[PathBuf]) -> BarSeries {
    let mut all: Option<BarSeries> = None;
    for p in paths {
        let s = load_csv_path(p, &LoadOptions::default())
            .unwrap_or_else(|e| panic!("codec bench input {}: {e}", p.display()))
            .series;
        assert!(
            !s.is_empty(),
            "codec bench input {} holds no bars",
            p.display()
        );
        match all.as_mut() {
            None => all = Some(s),
            Some(a) => {
                for i in 0..s.len() {
                    a.push(s.get(i)).expect("files in time order");
                }
            }
        }
    }
    all.expect("every case names a file")
}

/// The bars of each UTC day.
fn split_days(s: &BarSeries) -> Vec<BarSeries> {
    let mut days = Vec::new();
    let mut start = 0;
    while start < s.len() {
        let day = s.ts[start].div_euclid(86_400);
        let end = start + s.ts[start..].partition_point(|&t| t.div_euclid(86_400) == day);
        days.push(s.filter(|i| i >= start && i < end));
        start = end;
    }
    days
}

fn cases() -> Vec<Case> {
    let fixtures = root().join("data/fixtures");
    let bundled = root().join("data/bundled");
    let specs: [(&'static str, Vec<PathBuf>); 3] = [
        (
            "DBB",
            vec![fixtures.join("DBB_1min_2023-07-10_to_2025-07-08.csv.gz")],
        ),
        (
            "FXY",
            vec![fixtures.join("FXY_1min_2023-07-10_to_2025-07-08.csv.gz")],
        ),
        (
            "SPY",
            vec![
                bundled.join("SPY_1min_2011-01.csv.gz"),
                bundled.join("SPY_1min_2011-03.csv.gz"),
            ],
        ),
    ];
    let dir = std::env::temp_dir().join(format!("vectura-codec-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut inputs: Vec<(&'static str, BarSeries)> = specs
        .into_iter()
        .map(|(name, paths)| (name, load(&paths)))
        .collect();
    // Seeded, generated in Rust: the same bars on every machine.
    inputs.push(("syn_1y", vectura_data::synth::seeded_minute_bars(1, 1)));
    let mut out = Vec::new();
    for (name, series) in inputs {
        let days = split_days(&series);
        let blobs: Vec<Vec<u8>> = days.iter().map(encode_day).collect();
        for (d, b) in days.iter().zip(&blobs) {
            assert_eq!(&decode_day(b).expect("decodes"), d, "{name}: round trip");
        }
        if std::env::var_os("VECTURA_CODEC_STATS").is_some() {
            let z: Vec<usize> = blobs
                .iter()
                .enumerate()
                .filter(|(_, b)| b[5] & 8 != 0)
                .map(|(i, _)| i)
                .collect();
            eprintln!(
                "{name}: {} zstd days of {}; first {:?}",
                z.len(),
                blobs.len(),
                &z[..z.len().min(5)]
            );
            for &i in z.iter().take(3) {
                let d = &days[i];
                eprintln!(
                    "  day {i}: n={} blob={} o={:?} h={:?} l={:?} c={:?} v={:?}",
                    d.len(),
                    blobs[i].len(),
                    &d.open[..4.min(d.len())],
                    &d.high[..4.min(d.len())],
                    &d.low[..4.min(d.len())],
                    &d.close[..4.min(d.len())],
                    &d.volume[..4.min(d.len())]
                );
            }
        }
        let parquet = dir.join(format!("{name}.parquet"));
        write_parquet(&parquet, &series, PARQUET_ZSTD_LEVEL).expect("parquet written");
        assert_eq!(read_parquet(&parquet).expect("parquet read"), series);
        let parquet_bytes = std::fs::metadata(&parquet).expect("parquet file").len();
        out.push(Case {
            name,
            bars: series.len(),
            blobs,
            parquet,
            parquet_bytes,
        });
    }
    out
}

/// Every day's blob into one new series, as the store loads a history (sized from the stored
/// per-day bar counts, as the store does).
fn decode_ours(c: &Case) -> usize {
    let mut s = BarSeries::default();
    s.reserve(c.bars);
    for b in &c.blobs {
        decode_day_into(black_box(b), &mut s).expect("decodes");
    }
    black_box(&s).len()
}

fn decode_parquet(c: &Case) -> usize {
    let file = std::fs::File::open(&c.parquet).expect("parquet file");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .with_batch_size(64 * 1024)
        .build()
        .expect("parquet reader");
    let mut rows = 0;
    for batch in reader {
        rows += black_box(batch.expect("batch")).num_rows();
    }
    rows
}

/// This thread's CPU time (Linux `schedstat`), when available: the machine is shared, so rates are
/// also given per CPU second, which other processes disturb far less than wall time.
fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

/// Bars per second of `f`, by wall time and by CPU time (the best of several runs of ≥ 0.2 s each).
fn rate(bars: usize, mut f: impl FnMut() -> usize) -> (f64, Option<f64>) {
    let (mut best, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..5 {
        let (t, c) = (Instant::now(), cpu_time());
        let mut reps = 0u32;
        while t.elapsed() < Duration::from_millis(200) || reps == 0 {
            assert_eq!(f(), bars);
            reps += 1;
        }
        best = best.min(t.elapsed().as_secs_f64() / f64::from(reps));
        if let (Some(c0), Some(c1)) = (c, cpu_time()) {
            best_cpu = best_cpu.min((c1 - c0).as_secs_f64() / f64::from(reps));
        }
    }
    let cpu = best_cpu.is_finite().then(|| bars as f64 / best_cpu);
    (bars as f64 / best, cpu)
}

fn table(cases: &[Case]) {
    println!();
    println!(
        "{:<7} {:>6} {:>4} | {:>6} {:>6} {:>5} | {:>8} {:>8} {:>5} | {:>8} {:>8} {:>5}",
        "file", "bars", "days", "ours", "pq", "ratio", "ours", "pq", "x", "ours", "pq", "x"
    );
    println!(
        "{:<7} {:>6} {:>4} | {:>20} | {:>24} | {:>24}",
        "", "", "", "bytes per bar", "decode M bars/s (wall)", "decode M bars/s (CPU)"
    );
    for c in cases {
        let ours_bytes: usize = c.blobs.iter().map(Vec::len).sum();
        let ours = ours_bytes as f64 / c.bars as f64;
        let pq = c.parquet_bytes as f64 / c.bars as f64;
        let (w_ours, c_ours) = rate(c.bars, || decode_ours(c));
        let (w_pq, c_pq) = rate(c.bars, || decode_parquet(c));
        let (c_ours, c_pq) = (c_ours.unwrap_or(f64::NAN), c_pq.unwrap_or(f64::NAN));
        println!(
            "{:<7} {:>6} {:>4} | {:>6.2} {:>6.2} {:>5.2} | {:>8.1} {:>8.1} {:>5.1} | {:>8.1} {:>8.1} {:>5.1}",
            c.name,
            c.bars,
            c.blobs.len(),
            ours,
            pq,
            ours / pq,
            w_ours / 1e6,
            w_pq / 1e6,
            w_ours / w_pq,
            c_ours / 1e6,
            c_pq / 1e6,
            c_ours / c_pq,
        );
    }
    println!("ours: the sum of the day blobs / bars; pq: one Parquet file of the series, zstd level {PARQUET_ZSTD_LEVEL}, written by the parquet crate (default encodings); decode: every day's blob into one BarSeries vs the whole file read back into Arrow arrays; best of 5 runs of 0.2 s");
    println!();
}

fn bench(c: &mut Criterion) {
    if std::env::var_os("VECTURA_CODEC_FIXED").is_some() {
        for n in [0usize, 1, 2, 10, 78, 200] {
            let mut s = BarSeries::default();
            for i in 0..n {
                s.push(vectura_core::Bar {
                    ts: 1_700_000_000 + 60 * i as i64 * 3,
                    open: 17.9 + i as f64 * 0.01,
                    high: 17.95 + i as f64 * 0.01,
                    low: 17.85,
                    close: 17.91,
                    volume: 100.0 + i as f64,
                    vwap: None,
                    trade_count: None,
                })
                .unwrap();
            }
            let blob = encode_day(&s);
            let t = Instant::now();
            for _ in 0..1_000_000 {
                black_box(decode_day(black_box(&blob)).unwrap());
            }
            eprintln!(
                "n={n}: {} bytes, {:.1} ns/decode",
                blob.len(),
                t.elapsed().as_secs_f64() * 1e3
            );
        }
        return;
    }
    let cases = cases();
    // VECTURA_CODEC_NO_TABLE=1 skips the table (for profiling criterion's loops alone).
    if std::env::var_os("VECTURA_CODEC_NO_TABLE").is_none() {
        table(&cases);
    }
    let mut g = c.benchmark_group("codec_decode");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for case in &cases {
        g.throughput(Throughput::Elements(case.bars as u64));
        g.bench_function(format!("ours/{}", case.name), |b| {
            b.iter(|| decode_ours(case))
        });
        g.bench_function(format!("parquet/{}", case.name), |b| {
            b.iter(|| decode_parquet(case))
        });
    }
    g.finish();
    if let Some(dir) = cases.first().and_then(|c| c.parquet.parent()) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
