//! Distributed sweeps through an object store (`file:///path` or `s3://bucket/prefix`): the plan and the
//! bars are packed once, each shard writes its rows as one object, and `merge` concatenates them in shard
//! order into exactly the file a single machine writes. Every write is a whole-object put, so a killed
//! shard leaves nothing half-written and re-running it rewrites the same object.
//!
//! Layout under the prefix: `plan.json` ([`Packed`]), `bars.bin` (the first market's bars) and, for a
//! sweep of several markets, `bars-00001.bin`, `bars-00002.bin`, … (market 1, 2, … in the order of
//! [`Packed::markets`]); `results/shard-IIIII-of-NNNNN.csv` per shard. A one-market sweep stores
//! exactly what it stored before markets existed (no `markets` key, format 1).

use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use vectura_backtest::sweep::Plan;
use vectura_backtest::BacktestConfig;
use vectura_core::{Bar, BarSeries};

use crate::JobError;

type Result<T, E = JobError> = std::result::Result<T, E>;

/// Refuses what the sweep store holds (or what a flag says about it), naming the fix.
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err(JobError::shards(format!($($arg)*)))
    };
}

/// The newest `plan.json` format this binary reads: 1 is one market, 2 adds [`Packed::markets`].
pub const FORMAT: u32 = 2;

/// The packed description of a sweep, stored as `plan.json`. The top-level market fields describe the
/// first market (whose bars are `bars.bin`), so a one-market plan is the format-1 file unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Packed {
    pub format: u32,
    pub symbol: String,
    pub plan: Plan,
    pub cfg: BacktestConfig,
    pub shard_count: u64,
    pub bars: usize,
    /// FNV-1a 64 of `bars.bin`, hex.
    pub bars_hash: String,
    /// The markets after the first, in row order (format 2); absent for a one-market sweep, which
    /// keeps its stored bytes, and so its "same sweep?" comparison, exactly as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub markets: Vec<PackedMarket>,
}

/// One further market of a packed sweep: its symbol, its configuration (dates included) and its bars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackedMarket {
    pub symbol: String,
    pub cfg: BacktestConfig,
    pub bars: usize,
    /// FNV-1a 64 of its bars object, hex.
    pub bars_hash: String,
}

impl Packed {
    /// How many markets the sweep covers (rows are market-major, then set).
    pub fn market_count(&self) -> usize {
        1 + self.markets.len()
    }

    /// Market `i`'s symbol and configuration.
    pub fn market(&self, i: usize) -> Option<(&str, &BacktestConfig)> {
        match i {
            0 => Some((&self.symbol, &self.cfg)),
            _ => self.markets.get(i - 1).map(|m| (m.symbol.as_str(), &m.cfg)),
        }
    }

    fn market_hash(&self, i: usize) -> Option<&str> {
        match i {
            0 => Some(&self.bars_hash),
            _ => self.markets.get(i - 1).map(|m| m.bars_hash.as_str()),
        }
    }
}

/// The object holding market `i`'s bars: `bars.bin` for the first, as a one-market sweep always had.
fn bars_name(i: usize) -> String {
    match i {
        0 => "bars.bin".to_string(),
        _ => format!("bars-{i:05}.bin"),
    }
}

/// An object store and the prefix a sweep lives under.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    rt: tokio::runtime::Handle,
    /// With S3: the longest one read or write may take, and the endpoint, for the error.
    deadline: Option<(Duration, String)>,
}

/// The longest an S3 read or write may take by default (a server that accepts the connection and
/// never answers would otherwise stall for object_store's 30 s timeout times its retries: 181 s).
const S3_TIMEOUT: Duration = Duration::from_secs(20);
/// The variable that changes [`S3_TIMEOUT`] (whole seconds, 1 to 3600), for a slow link.
const S3_TIMEOUT_VAR: &str = "VECTURA_S3_TIMEOUT_SECS";
/// The most shards a plan may be cut into (Kubernetes' indexed jobs stop at 100 000 too); a
/// larger count in a changed plan.json would make `merge` look for that many objects.
pub const MAX_SHARDS: u64 = 100_000;

/// The S3 time limit: [`S3_TIMEOUT`], or [`S3_TIMEOUT_VAR`] when set.
fn s3_timeout() -> Result<Duration> {
    match std::env::var(S3_TIMEOUT_VAR) {
        Err(_) => Ok(S3_TIMEOUT),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(s) if (1..=3600).contains(&s) => Ok(Duration::from_secs(s)),
            _ => Err(JobError::invalid(
                "store",
                format!(
                    "{S3_TIMEOUT_VAR}={v:?}: give whole seconds from 1 to 3600 (default {})",
                    S3_TIMEOUT.as_secs()
                ),
            )),
        },
    }
}

/// FNV-1a 64: a tiny, fully specified checksum, so packed bars are verified identically everywhere.
fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

const BARS_MAGIC: &[u8; 8] = b"VTBARS1\0";

/// Packs bars into a columnar little-endian blob with a checksum trailer.
pub fn pack_bars(s: &BarSeries) -> Vec<u8> {
    let n = s.len();
    let mut out = Vec::with_capacity(17 + n * 48 + 8);
    out.extend_from_slice(BARS_MAGIC);
    out.extend_from_slice(&(n as u64).to_le_bytes());
    out.push(s.daily as u8);
    for &t in &s.ts {
        out.extend_from_slice(&t.to_le_bytes());
    }
    for col in [&s.open, &s.high, &s.low, &s.close, &s.volume] {
        for &v in col {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    let h = fnv64(&out);
    out.extend_from_slice(&h.to_le_bytes());
    out
}

/// Unpacks [`pack_bars`] output, verifying its checksum and order.
pub fn unpack_bars(b: &[u8]) -> Result<BarSeries> {
    let bad = || {
        JobError::shards("the packed bars in the sweep store are damaged: pack the sweep again into a new --store prefix")
    };
    if b.len() < 25 || &b[..8] != BARS_MAGIC {
        return Err(bad());
    }
    let (body, tail) = b.split_at(b.len() - 8);
    if fnv64(body).to_le_bytes() != tail {
        return Err(bad());
    }
    let n = u64::from_le_bytes(body[8..16].try_into().map_err(|_| bad())?) as usize;
    if body.len() != 17 + n.checked_mul(48).ok_or_else(bad)? {
        return Err(bad());
    }
    let word = |k: usize| -> [u8; 8] { body[17 + k * 8..25 + k * 8].try_into().unwrap_or([0; 8]) };
    let mut s = BarSeries::with_capacity(n);
    s.daily = body[16] != 0;
    for i in 0..n {
        s.push(Bar {
            ts: i64::from_le_bytes(word(i)),
            open: f64::from_le_bytes(word(n + i)),
            high: f64::from_le_bytes(word(2 * n + i)),
            low: f64::from_le_bytes(word(3 * n + i)),
            close: f64::from_le_bytes(word(4 * n + i)),
            volume: f64::from_le_bytes(word(5 * n + i)),
            vwap: None,
            trade_count: None,
        })
        .map_err(|_| bad())?;
    }
    Ok(s)
}

/// An object-store error as one line: a refused credential (HTTP 401/403, a wrong secret's
/// SignatureDoesNotMatch among them) says so and names the variables to check; anything else
/// (an unreachable endpoint, a server error) keeps the store's own words.
fn store_error(op: &str, p: &ObjPath, e: object_store::Error) -> JobError {
    let context = match e {
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            format!("the sweep store refused access to {p} (cannot {op} it): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and that the key may {op} under the prefix")
        }
        _ => {
            let dir = if op == "read" { "from" } else { "to" };
            format!("cannot {op} {p} {dir} the sweep store")
        }
    };
    JobError::ObjectStore { context, source: e }
}

/// An object-store error while opening `--store url`, with the fix.
fn open_error(url: &str, fix: &str) -> impl FnOnce(object_store::Error) -> JobError {
    let context = format!("--store {url:?}: {fix}");
    move |source| JobError::ObjectStore { context, source }
}

impl Remote {
    /// Opens `file:///path` (created if missing) or `s3://bucket/prefix` (credentials, region and an
    /// optional endpoint from the AWS_* environment variables, as the AWS tools read them). Its
    /// operations run on `rt` and are waited for: use it from a blocking thread.
    pub fn open(url: &str, rt: tokio::runtime::Handle) -> Result<Remote> {
        let parsed = url::Url::parse(url).map_err(|source| JobError::StoreUrl {
            url: url.to_string(),
            source,
        })?;
        let mut deadline = None;
        let (store, prefix): (Arc<dyn ObjectStore>, ObjPath) = match parsed.scheme() {
            "file" => {
                let path = parsed.to_file_path().map_err(|_| {
                    JobError::invalid("store", format!("--store {url:?}: give an absolute path, file:///tmp/sweep"))
                })?;
                std::fs::create_dir_all(&path).map_err(|e| {
                    JobError::io(format!("cannot create --store {}: check the folder's permissions", path.display()), e)
                })?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&path)
                    .map_err(open_error(url, "the folder cannot be used as a sweep store"))?;
                (Arc::new(fs), ObjPath::from(""))
            }
            "s3" => {
                let bucket = parsed.host_str().ok_or_else(|| {
                    JobError::invalid("store", format!("--store {url:?}: name a bucket, s3://bucket/prefix"))
                })?;
                let limit = s3_timeout()?;
                // Every operation is bounded as a whole by `limit` (see `Remote::op`), which names
                // the endpoint; the client's own timeouts lie just past it, so that a hung connect
                // or reply ends there rather than in an unnamed "error sending request", and a
                // quick failure (a 503) is retried for half of it, not for object_store's 3 min.
                let past = limit + Duration::from_secs(5);
                let options = object_store::ClientOptions::new()
                    .with_connect_timeout(past)
                    .with_timeout(past);
                let retry = object_store::RetryConfig {
                    max_retries: 3,
                    retry_timeout: limit / 2,
                    ..Default::default()
                };
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_client_options(options)
                    .with_retry(retry);
                let mut endpoint = format!("S3 (bucket {bucket})");
                if let Ok(ep) = std::env::var("AWS_ENDPOINT_URL") {
                    endpoint = format!("the S3 endpoint {ep}");
                    b = b.with_endpoint(ep.clone()).with_allow_http(ep.starts_with("http://"));
                }
                let s = b
                    .build()
                    .map_err(open_error(url, "set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION"))?;
                deadline = Some((limit, endpoint));
                (Arc::new(s), ObjPath::from(parsed.path().trim_start_matches('/')))
            }
            other => return Err(JobError::invalid("store", format!("--store {url:?}: scheme {other:?} is not supported: give file:///path or s3://bucket/prefix"))),
        };
        Ok(Remote {
            store,
            prefix,
            rt,
            deadline,
        })
    }

    /// Runs one store operation to its end; with S3, within the time limit, failing with a message
    /// that names the endpoint and the fix.
    fn op<T>(&self, what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        match &self.deadline {
            None => self.rt.block_on(f),
            Some((limit, endpoint)) => self
                .rt
                .block_on(async { tokio::time::timeout(*limit, f).await })
                .unwrap_or_else(|_| {
                    Err(JobError::shards(format!(
                        "{what}: {endpoint} did not answer within {} s: check AWS_ENDPOINT_URL / AWS_REGION and that the server is up (set {S3_TIMEOUT_VAR} to allow a slow link longer)",
                        limit.as_secs()
                    )))
                }),
        }
    }

    fn path(&self, name: &str) -> ObjPath {
        if self.prefix.as_ref().is_empty() {
            ObjPath::from(name)
        } else {
            ObjPath::from(format!("{}/{name}", self.prefix.as_ref()))
        }
    }

    fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let p = self.path(name);
        self.op(&format!("cannot read {p} from the sweep store"), async {
            match self.store.get(&p).await {
                Ok(r) => Ok(Some(
                    r.bytes()
                        .await
                        .map_err(|e| store_error("read", &p, e))?
                        .to_vec(),
                )),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(store_error("read", &p, e)),
            }
        })
    }

    fn put(&self, name: &str, bytes: Vec<u8>, create_only: bool) -> Result<bool> {
        let p = self.path(name);
        let opts = PutOptions {
            mode: if create_only {
                PutMode::Create
            } else {
                PutMode::Overwrite
            },
            ..Default::default()
        };
        self.op(&format!("cannot write {p} to the sweep store"), async {
            match self.store.put_opts(&p, PutPayload::from(bytes), opts).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                Err(e) => Err(store_error("write", &p, e)),
            }
        })
    }

    /// Packs the sweep once: writes every market's bars object and `plan.json` unless present; if
    /// present, they must describe the same sweep (the shards of one sweep may all try to pack it).
    /// `bars` holds one series per market: the first for the top-level fields, the rest for
    /// `packed_plan.markets` in order. The bars go first, so a `plan.json` always has its bars.
    pub fn pack(&self, packed_plan: &Packed, bars: &[&BarSeries]) -> Result<()> {
        let mut p = packed_plan.clone();
        if bars.len() != p.market_count() {
            refuse!(
                "internal: {} bar series for {} markets",
                bars.len(),
                p.market_count()
            );
        }
        if !p.markets.is_empty() {
            p.format = FORMAT;
        }
        let mut blobs = Vec::with_capacity(bars.len());
        for (i, b) in bars.iter().enumerate() {
            let blob = pack_bars(b);
            let hash = format!("{:016x}", fnv64(&blob));
            match i {
                0 => (p.bars_hash, p.bars) = (hash, b.len()),
                _ => {
                    let m = &mut p.markets[i - 1];
                    (m.bars_hash, m.bars) = (hash, b.len());
                }
            }
            blobs.push(blob);
        }
        let refuse = |stored: &Packed| -> Result<()> {
            if *stored != p {
                refuse!("the sweep store already holds a different sweep (plan.json differs): use a new --store prefix, or the same flags as the shards");
            }
            Ok(())
        };
        // A store already packed is checked before anything is written, so that a refused sweep
        // adds no bars objects to another sweep's prefix.
        if self.get("plan.json")?.is_some() {
            return refuse(&self.packed()?);
        }
        for (i, blob) in blobs.into_iter().enumerate() {
            // A bars object left by a different sweep is kept; its hash then differs from this
            // plan's, so the plan.json comparison below (or the shard's check) refuses it.
            self.put(&bars_name(i), blob, true)?;
        }
        let json = serde_json::to_vec_pretty(&p)
            .map_err(crate::error::json_err("plan.json cannot be written"))?;
        if !self.put("plan.json", json, true)? {
            // Another shard packed it meanwhile.
            refuse(&self.packed()?)?;
        }
        Ok(())
    }

    /// The packed plan.
    pub fn packed(&self) -> Result<Packed> {
        let b = self.get("plan.json")?.ok_or_else(|| JobError::shards("the sweep store has no plan.json: pack the sweep first (vectura sweep … --store URL --shard-count N)"))?;
        let p: Packed = serde_json::from_slice(&b).map_err(crate::error::json_err(
            "plan.json in the sweep store is damaged: pack again into a new prefix",
        ))?;
        // A newer format may mean rows this binary would cut differently: refuse rather than guess.
        if p.format == 0 || p.format > FORMAT {
            refuse!("plan.json in the sweep store has format {}, this vectura reads 1 to {FORMAT}: run the shards with the vectura that packed the sweep", p.format);
        }
        // The file may have been changed since it was packed: its plan gets the checks a plan from
        // the flags gets (at most 100 000 000 sets, each parameter once), before any set runs.
        Plan::new(p.plan.base, p.plan.axes.clone(), p.plan.sampling.clone())
            .map_err(JobError::PackedPlan)?;
        if p.shard_count == 0 || p.shard_count > MAX_SHARDS {
            refuse!("plan.json in the sweep store has shard_count {}, not 1 to {MAX_SHARDS}: it was changed after packing; pack the sweep again into a new prefix", p.shard_count);
        }
        Ok(p)
    }

    /// Market `market`'s packed bars, verified against the plan's checksum.
    pub fn bars(&self, p: &Packed, market: usize) -> Result<BarSeries> {
        let name = bars_name(market);
        let want = p.market_hash(market).ok_or_else(|| {
            JobError::shards(format!(
                "plan.json has no market {market}: pack again into a new prefix"
            ))
        })?;
        let b = self.get(&name)?.ok_or_else(|| {
            JobError::shards(format!(
                "the sweep store has no {name}: pack the sweep first"
            ))
        })?;
        if format!("{:016x}", fnv64(&b)) != want {
            refuse!("{name} does not match plan.json: the store was changed; pack again into a new prefix");
        }
        unpack_bars(&b)
    }

    /// The object holding shard `index`'s rows.
    pub fn shard_name(index: u64, count: u64) -> String {
        format!("results/shard-{index:05}-of-{count:05}.csv")
    }

    /// Stores one shard's rows (CSV lines without the header), replacing a previous attempt.
    pub fn put_shard(&self, index: u64, count: u64, rows: Vec<u8>) -> Result<()> {
        self.put(&Self::shard_name(index, count), rows, false)
            .map(|_| ())
    }

    /// Every shard's rows (its object's bytes), in shard order; an error names the shards still
    /// missing.
    pub fn shard_rows(&self, count: u64) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let mut missing = vec![];
        for i in 0..count {
            match self.get(&Self::shard_name(i, count))? {
                Some(b) => out.push(b),
                None => missing.push(i),
            }
        }
        if !missing.is_empty() {
            refuse!("shards {missing:?} of {count} have no results yet: run them (vectura sweep run --store URL --shard-index I), then merge again");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_pack_round_trip_and_reject_damage() {
        let mut s = BarSeries::default();
        for i in 0..100 {
            s.push(Bar {
                volume: i as f64,
                ..Bar::flat(60 * i, 100.0 + i as f64 / 7.0)
            })
            .unwrap();
        }
        let b = pack_bars(&s);
        assert_eq!(unpack_bars(&b).unwrap(), s);
        let mut d = b.clone();
        d[40] ^= 1;
        assert!(unpack_bars(&d).is_err());
        assert!(unpack_bars(&b[..b.len() - 1]).is_err());
        assert!(unpack_bars(&[]).is_err());
    }
}
