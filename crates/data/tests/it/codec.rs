//! The day codec (round trips bit for bit, rejects damaged blobs without panicking), the original's v1
//! day blob in its physical forms, and the Parquet export.

use std::io::Read;

use chrono::NaiveDate;
use proptest::prelude::*;
use vectura_core::BarSeries;
use vectura_data::codec::{decode_day, decode_day_into, encode_day, CodecError, MAGIC};
use vectura_data::parquet_io::{read_parquet, write_parquet, ParquetError};
use vectura_data::v1blob::{self, V1Error};

// ---------------------------------------------------------------------------------------------
// Generated days
// ---------------------------------------------------------------------------------------------

/// A small deterministic generator (xorshift64*), so that one proptest seed makes a whole day.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    /// Any positive finite f64, subnormals included.
    fn positive_f64(&mut self) -> f64 {
        f64::from_bits(1 + self.below(0x7fef_ffff_ffff_ffff))
    }
}

/// How a generated day's prices, volumes and times look.
#[derive(Debug, Clone, Copy)]
struct Shape {
    n: usize,
    seed: u64,
    /// 0: cents; 1: 1/10000 with a few 6-decimal prints; 2: any positive f64; 3: cents with some
    /// arbitrary f64; 4: any bits at all (NaN, infinities, -0.0, negatives).
    prices: u8,
    /// 0: whole numbers; 1: three decimals; 2: any non-negative f64; 3: constant.
    volume: u8,
    /// 0: every minute; 1: minutes with gaps; 2: any seconds; 3: huge gaps.
    times: u8,
    vwap: bool,
    trades: bool,
    daily: bool,
}

fn shape(max_n: usize) -> impl Strategy<Value = Shape> {
    (
        0..max_n,
        any::<u64>(),
        0u8..5,
        0u8..4,
        0u8..4,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(n, seed, prices, volume, times, vwap, trades, daily)| Shape {
                n,
                seed,
                prices,
                volume,
                times,
                vwap,
                trades,
                daily,
            },
        )
}

fn make_day(sh: Shape) -> BarSeries {
    let mut r = Rng::new(sh.seed);
    let n = sh.n;
    let mut s = BarSeries {
        daily: sh.daily,
        ..BarSeries::default()
    };
    let mut t = r.range(-4_000_000_000, 4_000_000_000);
    let grid = match sh.prices {
        1 => 1e4,
        _ => 1e2,
    };
    let mut close_ticks = r.range(100, 5_000_000);
    for i in 0..n {
        if i > 0 {
            t += match sh.times {
                0 => 60,
                1 => 60 * r.range(1, 30),
                2 => r.range(1, 100_000),
                _ => r.range(1, 1 << 40),
            };
        }
        s.ts.push(t);
        let open_ticks = (close_ticks + r.range(-3, 3)).max(1);
        close_ticks = (close_ticks + r.range(-40, 40)).max(1);
        let high_ticks = open_ticks.max(close_ticks) + r.range(0, 25) * r.range(0, 1);
        let low_ticks = (open_ticks.min(close_ticks) - r.range(0, 25) * r.range(0, 1)).max(1);
        let mut p = [open_ticks, high_ticks, low_ticks, close_ticks].map(|x| x as f64 / grid);
        for v in p.iter_mut() {
            match sh.prices {
                1 if r.chance(3) => *v = (*v * 1e6 + r.range(1, 99) as f64).round() / 1e6,
                2 => *v = r.positive_f64(),
                3 if r.chance(10) => *v *= 1.0 + r.range(1, 1000) as f64 * 1e-13,
                4 => *v = f64::from_bits(r.next()),
                _ => {}
            }
        }
        s.open.push(p[0]);
        s.high.push(p[1]);
        s.low.push(p[2]);
        s.close.push(p[3]);
        s.volume.push(match sh.volume {
            0 => r.below(2_000_000) as f64,
            1 => r.below(10_000_000) as f64 / 1e3,
            2 => f64::from_bits(r.below(0x7ff0_0000_0000_0000)),
            _ => 100.0,
        });
    }
    if sh.vwap {
        let vw = s
            .close
            .iter()
            .map(|&c| {
                if r.chance(50) {
                    (c * 1e4).round() / 1e4
                } else {
                    c * (1.0 + r.range(-1000, 1000) as f64 * 1e-7)
                }
            })
            .collect();
        s.vwap = Some(vw);
    }
    if sh.trades {
        let big = r.chance(20);
        s.trade_count = Some(
            (0..n)
                .map(|_| if big { r.next() } else { r.below(5000) })
                .collect(),
        );
    }
    s
}

/// Asserts that two series are the same bit for bit.
fn assert_same(a: &BarSeries, b: &BarSeries) {
    assert_eq!(a.ts, b.ts, "timestamps");
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
    assert_eq!(bits(&a.open), bits(&b.open), "open");
    assert_eq!(bits(&a.high), bits(&b.high), "high");
    assert_eq!(bits(&a.low), bits(&b.low), "low");
    assert_eq!(bits(&a.close), bits(&b.close), "close");
    assert_eq!(bits(&a.volume), bits(&b.volume), "volume");
    assert_eq!(
        a.vwap.as_deref().map(bits),
        b.vwap.as_deref().map(bits),
        "vwap"
    );
    assert_eq!(a.trade_count, b.trade_count, "trade_count");
    assert_eq!(a.daily, b.daily, "daily");
}

/// What a successfully decoded blob must look like, whatever its bytes.
fn assert_well_formed(s: &BarSeries) {
    let n = s.len();
    assert!(s.ts.windows(2).all(|w| w[0] < w[1]), "timestamps in order");
    for col in [&s.open, &s.high, &s.low, &s.close, &s.volume] {
        assert_eq!(col.len(), n);
    }
    if let Some(v) = &s.vwap {
        assert_eq!(v.len(), n);
    }
    if let Some(v) = &s.trade_count {
        assert_eq!(v.len(), n);
    }
}

/// Recomputes a blob's trailing checksum (so that damage reaches the parser behind it).
fn reseal(blob: &mut [u8]) {
    if blob.len() >= 4 {
        let k = blob.len() - 4;
        let crc = crc32fast::hash(&blob[..k]);
        blob[k..].copy_from_slice(&crc.to_le_bytes());
    }
}

/// One random change of a blob: flips, overwrites, truncation, extension, insertion, deletion.
fn mutate(blob: &[u8], r: &mut Rng) -> Vec<u8> {
    let mut b = blob.to_vec();
    let rounds = 1 + r.below(3);
    for _ in 0..rounds {
        let len = b.len().max(1) as u64;
        match r.below(7) {
            0 => {
                let i = r.below(len) as usize % b.len().max(1);
                if !b.is_empty() {
                    b[i] ^= 1 << r.below(8);
                }
            }
            1 => {
                if !b.is_empty() {
                    let i = r.below(len) as usize;
                    b[i] = b[i].wrapping_add(1 + r.below(255) as u8);
                }
            }
            2 => b.truncate(r.below(len) as usize),
            3 => {
                for _ in 0..1 + r.below(16) {
                    b.push(r.next() as u8);
                }
            }
            4 => {
                let i = r.below(len + 1) as usize;
                b.insert(i.min(b.len()), r.next() as u8);
            }
            5 => {
                if !b.is_empty() {
                    b.remove(r.below(len) as usize);
                }
            }
            _ => {
                // Overwrite a run with 0x00 or 0xff (lying lengths and widths).
                if !b.is_empty() {
                    let i = r.below(len) as usize;
                    let fill = if r.chance(50) { 0 } else { 0xff };
                    for x in b.iter_mut().skip(i).take(1 + r.below(8) as usize) {
                        *x = fill;
                    }
                }
            }
        }
    }
    b
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_day_round_trips_bit_for_bit(sh in shape(2000)) {
        let day = make_day(sh);
        let blob = encode_day(&day);
        let back = decode_day(&blob).expect("a blob we wrote decodes");
        assert_same(&day, &back);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn damaged_blobs_are_rejected(sh in shape(300), seed in any::<u64>()) {
        let blob = encode_day(&make_day(sh));
        let mut r = Rng::new(seed);
        let bad = mutate(&blob, &mut r);
        prop_assume!(bad != blob);
        prop_assert!(decode_day(&bad).is_err(), "a damaged blob decoded");
    }

    #[test]
    fn damage_behind_a_valid_checksum_never_panics(sh in shape(300), seed in any::<u64>()) {
        let blob = encode_day(&make_day(sh));
        let mut r = Rng::new(seed);
        let mut bad = mutate(&blob, &mut r);
        reseal(&mut bad);
        if let Ok(s) = decode_day(&bad) {
            assert_well_formed(&s);
        }
        // Appending to a series already holding bars: all or nothing, and still well formed.
        let mut acc = BarSeries::default();
        acc.push(vectura_core::Bar::flat(i64::MIN + 1, 1.0)).unwrap();
        let before = acc.clone();
        match decode_day_into(&bad, &mut acc) {
            Ok(()) => assert_well_formed(&acc),
            Err(_) => assert_eq!(acc, before),
        }
    }

    #[test]
    fn random_bytes_are_rejected(mut bytes in prop::collection::vec(any::<u8>(), 0..600), magic in any::<bool>()) {
        if magic && bytes.len() >= 6 {
            bytes[..4].copy_from_slice(MAGIC);
            bytes[4] = 1;
        }
        prop_assert!(decode_day(&bytes).is_err());
        reseal(&mut bytes);
        if let Ok(s) = decode_day(&bytes) {
            assert_well_formed(&s);
        }
    }
}

#[test]
fn known_shapes_round_trip() {
    for prices in 0..5 {
        for volume in 0..4 {
            for times in 0..4 {
                for n in [0, 1, 2, 63, 64, 65, 127, 128, 129, 390, 1000] {
                    let sh = Shape {
                        n,
                        seed: n as u64 * 31 + prices as u64,
                        prices,
                        volume,
                        times,
                        vwap: n % 2 == 0,
                        trades: n % 3 == 0,
                        daily: n == 1,
                    };
                    let day = make_day(sh);
                    let back = decode_day(&encode_day(&day)).expect("decodes");
                    assert_same(&day, &back);
                }
            }
        }
    }
}

#[test]
fn minute_bars_on_a_cent_grid_are_small() {
    let day = make_day(Shape {
        n: 390,
        seed: 7,
        prices: 0,
        volume: 0,
        times: 0,
        vwap: false,
        trades: false,
        daily: false,
    });
    let blob = encode_day(&day);
    assert!(blob.len() < 390 * 8, "{} bytes for 390 bars", blob.len());
}

#[test]
fn a_constant_day_of_many_bars_stays_decodable() {
    // Nearly every column packs to nothing: the encoder pads the blob so that its bar count stays
    // within what the decoder accepts for its length.
    let mut s = BarSeries::default();
    for i in 0..86_400 {
        s.push(vectura_core::Bar::flat(1_700_000_000 + i, 10.0))
            .unwrap();
    }
    let blob = encode_day(&s);
    assert_same(&s, &decode_day(&blob).unwrap());
    assert!(blob.len() < 86_400 / 4, "{} bytes", blob.len());
}

#[test]
fn errors_name_the_problem() {
    let blob = encode_day(&make_day(Shape {
        n: 50,
        seed: 1,
        prices: 0,
        volume: 0,
        times: 0,
        vwap: false,
        trades: false,
        daily: false,
    }));
    assert_eq!(decode_day(&blob[..5]), Err(CodecError::TooShort(5)));
    let mut other = blob.clone();
    other[4] = 2;
    assert_eq!(decode_day(&other), Err(CodecError::UnknownFormat));
    other = blob.clone();
    other[0] = b'X';
    assert_eq!(decode_day(&other), Err(CodecError::UnknownFormat));
    other = blob.clone();
    let k = other.len() / 2;
    other[k] ^= 4;
    assert_eq!(
        decode_day(&other),
        Err(CodecError::Corrupt("checksum mismatch"))
    );
    let msg = CodecError::Corrupt("checksum mismatch").to_string();
    assert!(msg.contains("fetch it again"), "{msg}");
}

/// Mutates valid blobs (200 000 times, or `VECTURA_FUZZ_ITERS`; half of them with the checksum
/// recomputed, so that the damage reaches the parser) and decodes each, plus random bytes: never a
/// panic, never a damaged blob accepted unless its checksum was recomputed.
/// `VECTURA_FUZZ_ITERS=50000000 cargo test -p vectura-data --test codec -- --ignored --nocapture`
#[test]
#[ignore = "fuzzing: run on demand"]
fn fuzz_decoder() {
    let iters: u64 = std::env::var("VECTURA_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let seed: u64 = std::env::var("VECTURA_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2024);
    let mut r = Rng::new(seed);
    let pool: Vec<Vec<u8>> = (0..256)
        .map(|i| {
            encode_day(&make_day(Shape {
                n: [0, 1, 5, 64, 65, 200, 390, 1000][i % 8],
                seed: seed.wrapping_add(i as u64),
                prices: (i % 5) as u8,
                volume: (i / 5 % 4) as u8,
                times: (i / 3 % 4) as u8,
                vwap: i % 2 == 0,
                trades: i % 3 == 0,
                daily: i % 7 == 0,
            }))
        })
        .collect();
    let (mut tried, mut accepted) = (0u64, 0u64);
    for k in 0..iters {
        let base = &pool[r.below(pool.len() as u64) as usize];
        let mut bad = mutate(base, &mut r);
        let sealed = k % 2 == 1;
        if sealed {
            reseal(&mut bad);
        }
        tried += 1;
        if let Ok(s) = decode_day(&bad) {
            assert!(sealed || bad == *base, "damaged blob {k} accepted");
            assert_well_formed(&s);
            accepted += 1;
        }
    }
    for _ in 0..iters / 10 {
        let len = r.below(800) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
        if bytes.len() >= 6 && r.chance(50) {
            bytes[..4].copy_from_slice(MAGIC);
            bytes[4] = 1;
            reseal(&mut bytes);
        }
        tried += 1;
        if let Ok(s) = decode_day(&bytes) {
            assert_well_formed(&s);
            accepted += 1;
        }
    }
    println!("fuzz_decoder (seed {seed}): {tried} inputs decoded, {accepted} accepted (resealed damage that still parses), no panic");
}

// ---------------------------------------------------------------------------------------------
// v1 blobs
// ---------------------------------------------------------------------------------------------

/// `zlib.gzipSync(JSON.stringify([[52200,449.91],[52260,449.87],[52320,450],[52380,0.1+0.2]]))`
/// as Node 18 writes it.
const NODE_GZIP_HEX: &str = "1f8b08000000000000038b8e3635323230d03131b1d4b3348cd50171cd205c0b7330d7d8c840c7c4d400c2b630d031d03336400526b1b100df64231447000000";
const NODE_JSON: &str = "[[52200,449.91],[52260,449.87],[52320,450],[52380,0.30000000000000004]]";

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn check_node_sample(s: &BarSeries) {
    let midnight = 1_704_153_600; // 2024-01-02T00:00:00Z
    assert_eq!(
        s.ts,
        vec![
            midnight + 52_200,
            midnight + 52_260,
            midnight + 52_320,
            midnight + 52_380
        ]
    );
    assert_eq!(s.close, vec![449.91, 449.87, 450.0, 0.1 + 0.2]);
    assert_eq!(s.open, s.close);
    assert_eq!(s.high, s.close);
    assert_eq!(s.low, s.close);
    assert_eq!(s.volume, vec![0.0; 4]);
    assert_eq!((s.vwap.as_ref(), s.trade_count.as_ref()), (None, None));
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 2).unwrap()
}

#[test]
fn v1_sample_decodes_in_every_physical_form() {
    let gz = unhex(NODE_GZIP_HEX);
    let buffer_json = v1blob::buffer_json(&gz);
    assert!(buffer_json.starts_with(br#"{"type":"Buffer","data":[31,139,8,0,"#));
    let forms: Vec<(&str, Vec<u8>)> = vec![
        ("raw gzip", gz.clone()),
        ("Buffer JSON", buffer_json.clone()),
        (
            "bytea hex of the Buffer JSON",
            format!("\\x{}", hex(&buffer_json)).into_bytes(),
        ),
        ("bytea hex of the gzip", format!("\\x{}", hex(&gz)).into_bytes()),
        (
            "JSON string of the Buffer JSON",
            serde_json::to_vec(&String::from_utf8(buffer_json.clone()).unwrap()).unwrap(),
        ),
        ("plain hex", hex(&gz).into_bytes()),
        ("base64", b"H4sIAAAAAAAAA4uONjUyMjDQMTGx1LM0jNUBcc0gXAtzMNfYyEDHxNQAwrYw0DHQMzZABSaxsQDfZCMURwAAAA==".to_vec()),
    ];
    for (name, bytes) in forms {
        let s = v1blob::decode(day(), &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_node_sample(&s);
    }
}

#[test]
fn v1_encode_writes_the_originals_json() {
    let s = v1blob::decode(day(), &unhex(NODE_GZIP_HEX)).unwrap();
    let gz = v1blob::encode(day(), &s);
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, NODE_JSON);
    check_node_sample(&v1blob::decode(day(), &gz).unwrap());
    // And through the Buffer JSON form supabase-js stored.
    check_node_sample(&v1blob::decode(day(), &v1blob::buffer_json(&gz)).unwrap());
}

#[test]
fn v1_rejects_what_is_not_a_day_blob() {
    assert_eq!(v1blob::decode(day(), b""), Err(V1Error::NotGzip));
    assert_eq!(
        v1blob::decode(day(), br#"{"type":"Buffer","data":[1,2,3]}"#),
        Err(V1Error::NotGzip)
    );
    assert_eq!(v1blob::decode(day(), b"\\xzz"), Err(V1Error::NotGzip));
    let gzip = |text: &str| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    assert!(matches!(
        v1blob::decode(day(), &gzip("{}")),
        Err(V1Error::Json(_))
    ));
    assert!(matches!(
        v1blob::decode(day(), &gzip("[[86400,1]]")),
        Err(V1Error::Bar { index: 0, .. })
    ));
    assert!(matches!(
        v1blob::decode(day(), &gzip("[[60,1],[60,2]]")),
        Err(V1Error::Bar { index: 1, .. })
    ));
    assert!(matches!(
        v1blob::decode(day(), &gzip("[[60,0]]")),
        Err(V1Error::Bar { index: 0, .. })
    ));
    let mut truncated = unhex(NODE_GZIP_HEX);
    truncated.truncate(30);
    assert!(matches!(
        v1blob::decode(day(), &truncated),
        Err(V1Error::Gzip(_))
    ));
    assert_eq!(
        v1blob::decode(day(), &gzip("[]")).unwrap(),
        BarSeries::default()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn v1_random_bytes_decode_to_valid_bars_or_a_one_line_error(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        gz in any::<bool>(),
    ) {
        let mut b = bytes;
        if gz && b.len() >= 2 {
            b[0] = 0x1f;
            b[1] = 0x8b;
        }
        match v1blob::decode(day(), &b) {
            Ok(s) => {
                // Flat bars of the day, in time order, with a real price; and they survive a round trip.
                let midnight = day().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
                prop_assert!(s.ts.windows(2).all(|w| w[0] < w[1]), "{:?}", s.ts);
                prop_assert!(s.ts.iter().all(|t| (midnight..midnight + 86_400).contains(t)), "{:?}", s.ts);
                for i in 0..s.len() {
                    let bar = s.get(i);
                    prop_assert!(bar.close.is_finite() && bar.close > 0.0, "{:?}", bar);
                    prop_assert_eq!((bar.open, bar.high, bar.low), (bar.close, bar.close, bar.close));
                    prop_assert_eq!(bar.volume, 0.0);
                }
                let back = v1blob::decode(day(), &v1blob::encode(day(), &s)).unwrap();
                assert_same(&s, &back);
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.starts_with("v1 day blob") && !msg.contains('\n'), "{}", msg);
            }
        }
    }

    #[test]
    fn v1_pairs_decode_exactly_or_name_the_first_bad_pair(
        secs in prop::collection::btree_set(0u32..86_400, 1..200),
        closes in prop::collection::vec(1e-4f64..1e7, 200),
        fault in 0usize..6,
        at in any::<prop::sample::Index>(),
    ) {
        let secs: Vec<u32> = secs.into_iter().collect();
        let mut pairs: Vec<(String, f64)> = secs.iter().zip(&closes).map(|(s, c)| (s.to_string(), *c)).collect();
        let bad = at.index(pairs.len());
        // 0: none; 1: a repeated second; 2: a fraction of a second; 3: a zero close; 4: a negative
        // close; 5: the second after the day.
        match fault {
            1 if bad > 0 => pairs[bad].0 = pairs[bad - 1].0.clone(),
            2 => pairs[bad].0 = format!("{}.5", secs[bad]),
            3 => pairs[bad].1 = 0.0,
            4 => pairs[bad].1 = -pairs[bad].1,
            5 => pairs[bad].0 = "86400".into(),
            _ => {}
        }
        let faulty = fault != 0 && !(fault == 1 && bad == 0);
        let json = format!(
            "[{}]",
            pairs.iter().map(|(s, c)| format!("[{s},{}]", v1blob::js_number(*c))).collect::<Vec<_>>().join(",")
        );
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, json.as_bytes()).unwrap();
        let got = v1blob::decode(day(), &e.finish().unwrap());
        if faulty {
            // Seconds after the day are refused before their order is; any fault is at `bad`.
            match got {
                Err(V1Error::Bar { index, .. }) => prop_assert_eq!(index, bad, "fault {}", fault),
                other => prop_assert!(false, "fault {} at {}: {:?}", fault, bad, other),
            }
        } else {
            let s = got.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let midnight = day().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
            prop_assert_eq!(s.len(), secs.len());
            for (i, (sec, close)) in secs.iter().zip(&closes).enumerate() {
                prop_assert_eq!(s.get(i), vectura_core::Bar::flat(midnight + i64::from(*sec), *close));
            }
        }
    }

    #[test]
    fn v1_round_trips_closes(secs in prop::collection::btree_set(0u32..86_400, 0..500), seed in any::<u64>()) {
        let mut r = Rng::new(seed);
        let midnight = 1_704_153_600;
        let mut s = BarSeries::default();
        for t in secs {
            let p = if r.chance(50) { r.range(1, 10_000_000) as f64 / 100.0 } else { r.positive_f64() };
            s.push(vectura_core::Bar::flat(midnight + i64::from(t), p)).unwrap();
        }
        let back = v1blob::decode(day(), &v1blob::encode(day(), &s)).unwrap();
        assert_same(&s, &back);
    }
}

// ---------------------------------------------------------------------------------------------
// Parquet
// ---------------------------------------------------------------------------------------------

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("vectura-codec-test-{}-{name}", std::process::id()))
}

#[test]
fn parquet_round_trips() {
    for (i, (vwap, trades, daily, n)) in [
        (false, false, false, 5000),
        (true, true, false, 1234),
        (true, false, true, 1),
        (false, true, false, 0),
    ]
    .into_iter()
    .enumerate()
    {
        let mut day = make_day(Shape {
            n,
            seed: i as u64,
            prices: 3,
            volume: (i % 3) as u8,
            times: 1,
            vwap,
            trades,
            daily,
        });
        if n == 0 {
            day.vwap = vwap.then(Vec::new);
            day.trade_count = trades.then(Vec::new);
        }
        // Reading checks bars as every source does (validate.rs): widen the random ones first.
        for j in 0..day.len() {
            let mut b = day.get(j);
            b.widen();
            (day.high[j], day.low[j]) = (b.high, b.low);
        }
        let path = temp(&format!("rt{i}.parquet"));
        write_parquet(&path, &day, 19).unwrap();
        let back = read_parquet(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_same(&day, &back);
    }
}

#[test]
fn parquet_errors_name_the_file() {
    let missing = temp("missing.parquet");
    let e = read_parquet(&missing).unwrap_err();
    assert!(matches!(e, ParquetError::Io { .. }));
    assert!(e.to_string().contains("missing.parquet"), "{e}");
    let junk = temp("junk.parquet");
    std::fs::write(&junk, b"not parquet at all").unwrap();
    let e = read_parquet(&junk).unwrap_err();
    std::fs::remove_file(&junk).unwrap();
    assert!(matches!(e, ParquetError::Parquet { .. }), "{e}");
    assert!(matches!(
        write_parquet(&temp("x.parquet"), &BarSeries::default(), 99),
        Err(ParquetError::Level(99))
    ));
}
