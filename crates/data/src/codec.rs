//! The bar codec for one symbol-day of minute bars: the `bt_bars_daily.data` blob.
//!
//! [`encode_day`] turns a [`BarSeries`] into a small, versioned, checksummed blob and [`decode_day`]
//! restores it bit for bit (every `f64` compares equal by `to_bits`, including values off any decimal
//! grid, `-0.0`, NaN and infinities). A damaged, truncated or extended blob is an error, never a panic,
//! and no length field can make the decoder allocate more than a fixed multiple of the blob's size.
//!
//! # Format, version 1 (all integers little-endian; `varint` is LEB128, `zvarint` zigzag LEB128)
//!
//! ```text
//! magic "VTBC" | version u8 = 1 | flags u8 | n: varint (bar count)
//! body          (flags & ZSTD: raw_len varint, zstd_len varint, a zstd frame of the body)
//! pad_len varint, pad_len zero bytes
//! crc32 u32     (crc32/IEEE of every byte before it)
//! ```
//!
//! Flags: 1 = VWAP column, 2 = trade-count column, 4 = [`BarSeries::daily`], 8 = zstd body; others
//! must be zero. The padding exists only so that `n <= 1024 + 16 × blob length` always holds, which
//! bounds what a decoder allocates; the encoder adds it only for days whose columns are nearly
//! constant. An empty series has an empty body. Otherwise the body holds, in order:
//!
//! - timestamps: `ts[0]` as zvarint, then the `n − 1` deltas as an *int column*;
//! - prices (open, high, low, close): a mode byte. `0`: raw, four columns of `n` f64 each.
//!   `k + 1` (k in 0..=9): integer ticks `t = round(v × 10^k)`, rebuilt as `t as f64 / 10^k`. Then
//!   `tc[0]` as zvarint; the close deltas `tc[i] − tc[i−1]` (`n − 1`), open minus the previous close
//!   (`to[0] − tc[0]` for the first bar), high minus `max(open, close)` and `min(open, close)` minus low,
//!   four int columns; then for open, high, low, close in turn an *exception list*;
//! - volume: a mode byte, `0` raw f64, `k + 1` ticks at `10^k` as one int column (no deltas) plus an
//!   exception list;
//! - VWAP (when flagged): a mode byte, `0` raw f64, `k + 1`: the first tick as zvarint, the `n − 1`
//!   deltas as an int column, an exception list;
//! - trade counts (when flagged): one int column (`u64` as `i64`, wrapping).
//!
//! An *int column* of `m` values: `g << 2 | e` varint (`g` a common divisor of all differences from
//! the first value, ≥ 1; `e` in 0..=3, the encoder's pick of the smallest), then blocks of `64 << e`
//! values (the last may be shorter): width byte `w` (0..=64), block minimum as zvarint, and the
//! values `(v − min) / g` packed in `w` bits each, least significant bit first; a full block of `b`
//! values takes `b·w / 8` bytes, a last block of `r` values `ceil(r·w / 8)`.
//!
//! An *exception list*: count varint, then per exception the index gap varint (index minus the
//! previous index plus one, from −1) and the raw f64; the value replaces the one rebuilt from ticks.
//! Ticks of an exception are the rounded value, so the neighbouring deltas stay small: a day whose
//! prices are mostly on a cent grid with a few sub-penny prints stays on the cent grid.
//!
//! The encoder picks, per day, the price and volume modes (scales) that give the smallest body, and
//! compresses the body with zstd only when that saves at least an eighth of it (in practice for the
//! raw `f64` fallback), because bit-packed columns barely compress and decode several times faster
//! without it.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use vectura_core::BarSeries;

/// Why a blob cannot be decoded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CodecError {
    #[error(
        "bar blob is {0} bytes, too short: the stored day is damaged; delete it and fetch it again"
    )]
    TooShort(usize),
    #[error(
        "bar blob has an unknown format tag: the stored day is damaged or newer than this vectura"
    )]
    UnknownFormat,
    #[error("bar blob is damaged ({0}): delete the day and fetch it again")]
    Corrupt(&'static str),
    #[error("bar blob's first bar ({first}) is not after the last bar already read ({last}): two stored days overlap; delete the later one and fetch it again")]
    NotAfter { first: i64, last: i64 },
}

/// The blob's first four bytes.
pub const MAGIC: &[u8; 4] = b"VTBC";
/// The format version written by [`encode_day`] and the only one [`decode_day`] reads.
pub const FORMAT_VERSION: u8 = 1;

const F_VWAP: u8 = 1;
const F_TRADES: u8 = 2;
const F_DAILY: u8 = 4;
const F_ZSTD: u8 = 8;
const F_ALL: u8 = F_VWAP | F_TRADES | F_DAILY | F_ZSTD;

/// Values per bit-packed block, times `2^e` for the block-size exponent `e` of a column.
const BLOCK: usize = 64;
/// Largest block-size exponent (blocks of up to 512 values).
const MAX_BLOCK_SHIFT: u32 = 3;
/// Largest decimal exponent of a tick scale.
const MAX_SCALE_EXP: u8 = 9;
/// Ticks must lie in `0..TICK_LIMIT` so that `t as f64` is exact and deltas cannot overflow.
const TICK_LIMIT: i64 = 1 << 52;
/// zstd level for the (rare) compressed bodies.
const ZSTD_LEVEL: i32 = 19;

/// The most bars a blob of `len` bytes may declare.
fn max_bars(len: usize) -> usize {
    1024 + 16 * len
}

/// The most bytes a body of `n` bars can take (caps the zstd output buffer).
fn max_body(n: usize) -> usize {
    1024 + n * 512
}

/// A decimal tick size: `s = 10^k` and `inv`, the double nearest `10^−k`.
#[derive(Clone, Copy)]
struct Scale {
    s: f64,
    inv: f64,
}

const SCALES: [Scale; MAX_SCALE_EXP as usize + 1] = {
    const S: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
    const I: [f64; 10] = [1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9];
    let mut out = [Scale { s: 1.0, inv: 1.0 }; 10];
    let mut k = 0;
    while k < 10 {
        out[k] = Scale { s: S[k], inv: I[k] };
        k += 1;
    }
    out
};

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// Encodes one symbol-day of bars (all OHLCV fields, VWAP and trade counts when present).
pub fn encode_day(bars: &BarSeries) -> Vec<u8> {
    let n = bars.len();
    let mut flags = 0u8;
    if bars.vwap.is_some() {
        flags |= F_VWAP;
    }
    if bars.trade_count.is_some() {
        flags |= F_TRADES;
    }
    if bars.daily {
        flags |= F_DAILY;
    }
    let mut body = Vec::with_capacity(16 + n * 8);
    let has_raw = n > 0 && encode_body(bars, &mut body);
    let mut out = Vec::with_capacity(body.len() + 32);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_VERSION);
    let flags_at = out.len();
    out.push(flags);
    put_varint(&mut out, n as u64);
    let mut compressed = None;
    // Bit-packed columns barely compress and zstd costs far more to decode than they do: only
    // bodies holding raw f64 columns are worth compressing.
    if has_raw && body.len() >= 64 {
        if let Ok(z) = zstd::bulk::compress(&body, ZSTD_LEVEL) {
            if z.len() + 8 < body.len() - body.len() / 8 {
                compressed = Some(z);
            }
        }
    }
    match compressed {
        Some(z) => {
            out[flags_at] |= F_ZSTD;
            put_varint(&mut out, body.len() as u64);
            put_varint(&mut out, z.len() as u64);
            out.extend_from_slice(&z);
        }
        None => out.extend_from_slice(&body),
    }
    // Pad so that n <= max_bars(total length).
    let need = n.saturating_sub(1024).div_ceil(16);
    let mut pad = need.saturating_sub(out.len() + 5);
    while n > max_bars(out.len() + varint_len(pad as u64) + pad + 4) {
        pad += 1;
    }
    put_varint(&mut out, pad as u64);
    out.resize(out.len() + pad, 0);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Writes the body; true when some column fell back to raw f64.
fn encode_body(bars: &BarSeries, out: &mut Vec<u8>) -> bool {
    let n = bars.len();
    // Timestamps.
    put_zvarint(out, bars.ts[0]);
    let deltas: Vec<i64> = bars
        .ts
        .windows(2)
        .map(|w| w[1].wrapping_sub(w[0]))
        .collect();
    put_int_column(out, &deltas);
    // Prices.
    let cols = [
        &bars.open[..],
        &bars.high[..],
        &bars.low[..],
        &bars.close[..],
    ];
    let mut best = Vec::with_capacity(n * 32 + 1);
    best.push(0u8);
    for c in cols {
        for &v in c {
            best.extend_from_slice(&v.to_le_bytes());
        }
    }
    let mut trial = Vec::new();
    for k in 0..=MAX_SCALE_EXP {
        trial.clear();
        match encode_prices_scaled(&cols, k, &mut trial) {
            Some(exceptions) => {
                if trial.len() < best.len() {
                    std::mem::swap(&mut best, &mut trial);
                }
                // A finer grid only makes the ticks larger once nothing is off this one.
                if exceptions == 0 {
                    break;
                }
            }
            None => break,
        }
    }
    let mut raw = best[0] == 0;
    out.extend_from_slice(&best);
    // Volume.
    raw |= encode_f64_column(out, &bars.volume, false);
    if let Some(vw) = &bars.vwap {
        raw |= encode_f64_column(out, vw, true);
    }
    if let Some(tc) = &bars.trade_count {
        let v: Vec<i64> = tc.iter().map(|&x| x as i64).collect();
        put_int_column(out, &v);
    }
    raw
}

/// Rebuilds a price from its ticks exactly as the decoder does: `t / 10^k` correctly rounded,
/// computed without a division (a product by the reciprocal and one fused correction step,
/// Markstein's theorem). The encoder checks every value against this very function and stores
/// any value it does not rebuild as an exception, so the format does not depend on the theorem.
#[inline(always)]
fn from_ticks(t: i64, scale: Scale) -> f64 {
    let a = from_ticks_exact(t);
    let q = a * scale.inv;
    let r = (-q).mul_add(scale.s, a);
    r.mul_add(scale.inv, q)
}

/// `t as f64` for `0 <= t < 2^52` (the encoder's ticks), in two vectorisable operations.
#[inline(always)]
fn from_ticks_exact(t: i64) -> f64 {
    const TWO52: u64 = 0x4330_0000_0000_0000; // 2^52 as f64
    f64::from_bits(TWO52 | t as u64) - f64::from_bits(TWO52)
}

/// The ticks of `v` at `scale` (rounded), or `None` when they fall outside `0..TICK_LIMIT`.
fn ticks_of(v: f64, scale: Scale) -> Option<i64> {
    let t = (v * scale.s).round();
    if t >= 0.0 && t < TICK_LIMIT as f64 {
        Some(t as i64)
    } else {
        None
    }
}

/// Ticks of a column at a scale and the indices whose value the ticks do not rebuild.
fn column_ticks(col: &[f64], scale: Scale) -> Option<(Vec<i64>, Vec<u32>)> {
    let mut ticks = Vec::with_capacity(col.len());
    let mut exc = Vec::new();
    for (i, &v) in col.iter().enumerate() {
        let t = ticks_of(v, scale)?;
        if from_ticks(t, scale).to_bits() != v.to_bits() {
            exc.push(i as u32);
        }
        ticks.push(t);
    }
    Some((ticks, exc))
}

fn put_exceptions(out: &mut Vec<u8>, col: &[f64], exc: &[u32]) {
    put_varint(out, exc.len() as u64);
    let mut prev: i64 = -1;
    for &i in exc {
        put_varint(out, (i as i64 - prev - 1) as u64);
        prev = i as i64;
        out.extend_from_slice(&col[i as usize].to_le_bytes());
    }
}

/// Encodes the four price columns on the grid `10^k`; returns the number of exceptions, or `None`
/// when some price has no ticks at that scale.
fn encode_prices_scaled(cols: &[&[f64]; 4], k: u8, out: &mut Vec<u8>) -> Option<usize> {
    let scale = SCALES[k as usize];
    let (to, eo) = column_ticks(cols[0], scale)?;
    let (th, eh) = column_ticks(cols[1], scale)?;
    let (tl, el) = column_ticks(cols[2], scale)?;
    let (tc, ec) = column_ticks(cols[3], scale)?;
    let n = tc.len();
    out.push(k + 1);
    put_zvarint(out, tc[0]);
    let dc: Vec<i64> = tc.windows(2).map(|w| w[1] - w[0]).collect();
    put_int_column(out, &dc);
    let mut d = Vec::with_capacity(n);
    d.extend((0..n).map(|i| to[i] - tc[i.saturating_sub(1)]));
    put_int_column(out, &d);
    d.clear();
    d.extend((0..n).map(|i| th[i] - to[i].max(tc[i])));
    put_int_column(out, &d);
    d.clear();
    d.extend((0..n).map(|i| to[i].min(tc[i]) - tl[i]));
    put_int_column(out, &d);
    put_exceptions(out, cols[0], &eo);
    put_exceptions(out, cols[1], &eh);
    put_exceptions(out, cols[2], &el);
    put_exceptions(out, cols[3], &ec);
    Some(eo.len() + eh.len() + el.len() + ec.len())
}

/// Encodes one f64 column (volume, or VWAP with `delta`) in its smallest mode; true when raw.
fn encode_f64_column(out: &mut Vec<u8>, col: &[f64], delta: bool) -> bool {
    let mut best = Vec::with_capacity(col.len() * 8 + 1);
    best.push(0u8);
    for &v in col {
        best.extend_from_slice(&v.to_le_bytes());
    }
    let mut trial = Vec::new();
    for k in 0..=MAX_SCALE_EXP {
        let Some((ticks, exc)) = column_ticks(col, SCALES[k as usize]) else {
            break;
        };
        trial.clear();
        trial.push(k + 1);
        if delta {
            put_zvarint(&mut trial, ticks[0]);
            let d: Vec<i64> = ticks.windows(2).map(|w| w[1] - w[0]).collect();
            put_int_column(&mut trial, &d);
        } else {
            put_int_column(&mut trial, &ticks);
        }
        put_exceptions(&mut trial, col, &exc);
        if trial.len() < best.len() {
            std::mem::swap(&mut best, &mut trial);
        }
        if exc.is_empty() {
            break;
        }
    }
    out.extend_from_slice(&best);
    best[0] == 0
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Writes an int column (see the module documentation).
fn put_int_column(out: &mut Vec<u8>, vals: &[i64]) {
    let mut g: u128 = 0;
    if let Some(&v0) = vals.first() {
        for &v in vals {
            g = gcd(g, (v as i128 - v0 as i128).unsigned_abs());
            if g == 1 {
                break;
            }
        }
    }
    // 1 divides everything; a divisor too large to share its varint with the block size is not
    // worth keeping.
    let g = if g == 0 || g >= 1 << 62 { 1 } else { g as u64 };
    let mut best: Vec<u8> = Vec::new();
    let mut trial = Vec::new();
    for e in 0..=MAX_BLOCK_SHIFT {
        trial.clear();
        put_varint(&mut trial, g << 2 | e as u64);
        for block in vals.chunks(BLOCK << e) {
            put_block(&mut trial, block, g);
        }
        if best.is_empty() || trial.len() <= best.len() {
            std::mem::swap(&mut best, &mut trial);
        }
        if vals.len() <= BLOCK << e {
            break;
        }
    }
    out.extend_from_slice(&best);
}

/// One block of an int column: width, minimum, packed values.
fn put_block(out: &mut Vec<u8>, block: &[i64], g: u64) {
    let min = *block.iter().min().expect("chunks are never empty");
    let max = block
        .iter()
        .map(|&v| (v.wrapping_sub(min) as u64) / g)
        .max()
        .unwrap_or(0);
    let w = 64 - max.leading_zeros() as usize;
    out.push(w as u8);
    put_zvarint(out, min);
    if w == 0 {
        return;
    }
    let mut packed = vec![0u64; (block.len() * w).div_ceil(64) + 1];
    for (j, &v) in block.iter().enumerate() {
        let u = (v.wrapping_sub(min) as u64) / g;
        let bit = j * w;
        let (k, off) = (bit / 64, bit % 64);
        packed[k] |= u << off;
        if off + w > 64 {
            packed[k + 1] |= u >> (64 - off);
        }
    }
    let nbytes = (block.len() * w).div_ceil(8);
    let start = out.len();
    for word in &packed[..nbytes.div_ceil(8)] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.truncate(start + nbytes);
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_zvarint(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

type R<T> = Result<T, CodecError>;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline(always)]
    fn byte(&mut self) -> R<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(CodecError::Corrupt("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    #[inline(always)]
    fn varint(&mut self) -> R<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(CodecError::Corrupt("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(CodecError::Corrupt("varint longer than 10 bytes"))
    }

    #[inline(always)]
    fn zvarint(&mut self) -> R<i64> {
        let u = self.varint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    #[inline(always)]
    fn bytes(&mut self, len: usize) -> R<&'a [u8]> {
        if len > self.buf.len() - self.pos {
            return Err(CodecError::Corrupt("truncated"));
        }
        let s = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(s)
    }

    /// A count that must not exceed `max`.
    #[inline(always)]
    fn count(&mut self, max: usize) -> R<usize> {
        let v = self.varint()?;
        if v > max as u64 {
            return Err(CodecError::Corrupt("count out of range"));
        }
        Ok(v as usize)
    }
}

/// Decodes a blob written by [`encode_day`].
pub fn decode_day(bytes: &[u8]) -> Result<BarSeries, CodecError> {
    let mut s = BarSeries::default();
    decode_day_into(bytes, &mut s)?;
    Ok(s)
}

/// Decodes a blob written by [`encode_day`] and appends its bars to `out` (a history decodes into
/// one series without a copy per day). The day's first bar must come after `out`'s last. VWAP and
/// trade counts are kept only while every day has them. On any error `out` is left as it was.
pub fn decode_day_into(bytes: &[u8], out: &mut BarSeries) -> Result<(), CodecError> {
    if bytes.len() < 4 + 1 + 1 + 1 + 1 + 4 {
        if bytes.len() >= 4 && &bytes[..4] != MAGIC {
            return Err(CodecError::UnknownFormat);
        }
        return Err(CodecError::TooShort(bytes.len()));
    }
    if &bytes[..4] != MAGIC || bytes[4] != FORMAT_VERSION {
        return Err(CodecError::UnknownFormat);
    }
    let (payload, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(payload) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(CodecError::Corrupt("checksum mismatch"));
    }
    let flags = payload[5];
    if flags & !F_ALL != 0 {
        return Err(CodecError::Corrupt("unknown flags"));
    }
    let (has_vwap, has_trades) = (flags & F_VWAP != 0, flags & F_TRADES != 0);
    let fresh = out.is_empty();
    if fresh {
        out.daily = flags & F_DAILY != 0;
        out.vwap = has_vwap.then(|| out.vwap.take().unwrap_or_default());
        out.trade_count = has_trades.then(|| out.trade_count.take().unwrap_or_default());
    } else if out.vwap.is_some() != has_vwap || out.trade_count.is_some() != has_trades {
        // The optional columns differ: decode the day alone, then keep what both have.
        let day = decode_day(bytes)?;
        return append_series(out, day);
    }
    let before = out.len();
    let mut r = Reader {
        buf: payload,
        pos: 6,
    };
    let res = decode_payload(&mut r, payload, flags, bytes.len(), out);
    let res = res.and_then(|()| {
        if before > 0 && out.len() > before && out.ts[before] <= out.ts[before - 1] {
            Err(CodecError::NotAfter {
                first: out.ts[before],
                last: out.ts[before - 1],
            })
        } else {
            Ok(())
        }
    });
    match res {
        Ok(()) => {
            if !fresh {
                out.daily &= flags & F_DAILY != 0;
            }
            Ok(())
        }
        Err(e) => {
            truncate(out, before);
            if fresh {
                out.vwap = None;
                out.trade_count = None;
                out.daily = false;
            }
            Err(e)
        }
    }
}

/// Cuts every column of `s` back to `len` bars (columns a failed decode left longer).
fn truncate(s: &mut BarSeries, len: usize) {
    s.ts.truncate(len);
    s.open.truncate(len);
    s.high.truncate(len);
    s.low.truncate(len);
    s.close.truncate(len);
    s.volume.truncate(len);
    if let Some(v) = s.vwap.as_mut() {
        v.truncate(len);
    }
    if let Some(v) = s.trade_count.as_mut() {
        v.truncate(len);
    }
}

/// Appends `day` to non-empty `out`, keeping an optional column only when both have it.
fn append_series(out: &mut BarSeries, day: BarSeries) -> Result<(), CodecError> {
    if let (Some(&last), Some(&first)) = (out.ts.last(), day.ts.first()) {
        if first <= last {
            return Err(CodecError::NotAfter { first, last });
        }
    }
    out.ts.extend_from_slice(&day.ts);
    out.open.extend_from_slice(&day.open);
    out.high.extend_from_slice(&day.high);
    out.low.extend_from_slice(&day.low);
    out.close.extend_from_slice(&day.close);
    out.volume.extend_from_slice(&day.volume);
    out.vwap = match (out.vwap.take(), day.vwap) {
        (Some(mut a), Some(b)) => {
            a.extend_from_slice(&b);
            Some(a)
        }
        _ => None,
    };
    out.trade_count = match (out.trade_count.take(), day.trade_count) {
        (Some(mut a), Some(b)) => {
            a.extend_from_slice(&b);
            Some(a)
        }
        _ => None,
    };
    out.daily &= day.daily;
    Ok(())
}

/// Decodes the bar count, the body (zstd-framed or not) and the padding, appending to `s`.
fn decode_payload(
    r: &mut Reader,
    payload: &[u8],
    flags: u8,
    blob_len: usize,
    s: &mut BarSeries,
) -> Result<(), CodecError> {
    let n = r.count(max_bars(blob_len))?;
    if flags & F_ZSTD != 0 {
        let raw_len = r.count(max_body(n))?;
        let z_len = r.count(payload.len())?;
        let frame = r.bytes(z_len)?;
        let body = ZSTD.with(|d| -> R<Vec<u8>> {
            let mut d = d.borrow_mut();
            let d = d
                .as_mut()
                .map_err(|_| CodecError::Corrupt("zstd unavailable"))?;
            d.decompress(frame, raw_len)
                .map_err(|_| CodecError::Corrupt("zstd frame"))
        })?;
        if body.len() != raw_len {
            return Err(CodecError::Corrupt("zstd length"));
        }
        let mut br = Reader { buf: &body, pos: 0 };
        if n > 0 {
            decode_body(&mut br, n, s)?;
        }
        if br.pos != body.len() {
            return Err(CodecError::Corrupt("trailing bytes in body"));
        }
    } else if n > 0 {
        decode_body(r, n, s)?;
    }
    let pad = r.count(payload.len())?;
    let pad = r.bytes(pad)?;
    if pad.iter().any(|&b| b != 0) {
        return Err(CodecError::Corrupt("padding"));
    }
    if r.pos != payload.len() {
        return Err(CodecError::Corrupt("trailing bytes"));
    }
    Ok(())
}

thread_local! {
    static ZSTD: RefCell<std::io::Result<zstd::bulk::Decompressor<'static>>> =
        RefCell::new(zstd::bulk::Decompressor::new());
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Reused buffers of the decoder (one set per thread).
#[derive(Default)]
struct Scratch {
    a: Vec<i64>,
    b: Vec<i64>,
    c: Vec<i64>,
    tail: Vec<u8>,
}

fn decode_body(r: &mut Reader, n: usize, s: &mut BarSeries) -> R<()> {
    SCRATCH.with(|sc| {
        let sc = &mut *sc.borrow_mut();
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            return unsafe { decode_body_avx2(r, n, s, sc) };
        }
        decode_body_with(r, n, s, sc)
    })
}

/// [`decode_body_with`] compiled for AVX2 and FMA (its loops vectorise over 4 lanes of i64/f64).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn decode_body_avx2(r: &mut Reader, n: usize, s: &mut BarSeries, sc: &mut Scratch) -> R<()> {
    decode_body_with(r, n, s, sc)
}

/// Resizes a scratch buffer to hold `n` values plus the up to 7 more that unpacking a short last
/// block writes, and returns that much.
#[inline(always)]
fn scratch(v: &mut Vec<i64>, n: usize) -> &mut [i64] {
    let len = n + 8;
    if v.len() < len {
        v.resize(len, 0);
    }
    &mut v[..len]
}

/// The uninitialised room for `n` more values after the end of `v`; [`set_filled`] then extends its
/// length over them (the decoder appends, so a whole history decodes into one series).
#[inline(always)]
fn room<T>(v: &mut Vec<T>, n: usize) -> &mut [MaybeUninit<T>] {
    v.reserve(n);
    &mut v.spare_capacity_mut()[..n]
}

/// Extends the length of `v` over the `n` values of [`room`]`(v, n)`, all written.
#[inline(always)]
fn set_filled<T>(v: &mut Vec<T>, n: usize) {
    let len = v.len() + n;
    assert!(len <= v.capacity());
    // SAFETY: every caller wrote all `n` slots of `room(v, n)` (loops over the whole slice).
    unsafe { v.set_len(len) };
}

/// `out = ticks / scale` (prices rebuilt from ticks).
#[inline(always)]
fn put_prices(out: &mut Vec<f64>, ticks: &[i64], scale: Scale) {
    let n = ticks.len();
    for (o, &t) in room(out, n).iter_mut().zip(ticks) {
        o.write(from_ticks(t, scale));
    }
    set_filled(out, n);
}

/// `out = ticks` (whole numbers).
#[inline(always)]
fn put_whole(out: &mut Vec<f64>, ticks: &[i64]) {
    let n = ticks.len();
    for (o, &t) in room(out, n).iter_mut().zip(ticks) {
        o.write(from_ticks_exact(t));
    }
    set_filled(out, n);
}

#[inline(always)]
fn decode_body_with(r: &mut Reader, n: usize, s: &mut BarSeries, sc: &mut Scratch) -> R<()> {
    let Scratch { a, b, c, tail } = sc;
    let (a, b, c) = (scratch(a, n), scratch(b, n), scratch(c, n));
    // Timestamps.
    let t0 = r.zvarint()?;
    get_int_column(r, c, n - 1, tail)?;
    let d = &c[..n - 1];
    // Strictly increasing: every delta positive and the last time within i64 (two reductions
    // that vectorise, instead of a check per step of the running sum).
    let (lo, hi) = d
        .iter()
        .fold((i64::MAX, 0i64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    if lo <= 0 {
        return Err(CodecError::Corrupt("timestamps out of order"));
    }
    if i128::from(t0) + i128::from(hi) * d.len() as i128 > i128::from(i64::MAX) {
        let total: i128 = d.iter().map(|&x| i128::from(x)).sum();
        if i128::from(t0) + total > i128::from(i64::MAX) {
            return Err(CodecError::Corrupt("timestamps out of range"));
        }
    }
    let mut prev = t0;
    let room_ts = room(&mut s.ts, n);
    room_ts[0].write(t0);
    for (o, &dt) in room_ts[1..].iter_mut().zip(d) {
        prev = prev.wrapping_add(dt);
        o.write(prev);
    }
    set_filled(&mut s.ts, n);
    // Prices.
    let mode = r.byte()?;
    if mode == 0 {
        for col in [&mut s.open, &mut s.high, &mut s.low, &mut s.close] {
            get_raw_f64(r, n, col)?;
        }
    } else {
        let scale = scale_of(mode)?;
        let c0 = r.zvarint()?;
        // a: close ticks.
        get_int_column(r, c, n - 1, tail)?;
        prefix_sum(c0, &c[..n - 1], a);
        // b: open ticks (the previous close plus a delta; the first bar's own close).
        get_int_column(r, c, n, tail)?;
        let (a, b, c) = (&a[..n], &mut b[..n], &mut c[..]);
        b[0] = a[0].wrapping_add(c[0]);
        for (o, (&pc, &d)) in b[1..].iter_mut().zip(a.iter().zip(&c[1..])) {
            *o = pc.wrapping_add(d);
        }
        put_prices(&mut s.open, b, scale);
        put_prices(&mut s.close, a, scale);
        let b: &[i64] = b;
        get_int_column(r, c, n, tail)?;
        let high = room(&mut s.high, n);
        for (h, ((&ct, &ot), &d)) in high.iter_mut().zip(a.iter().zip(b.iter()).zip(c.iter())) {
            h.write(from_ticks(ot.max(ct).wrapping_add(d), scale));
        }
        set_filled(&mut s.high, n);
        get_int_column(r, c, n, tail)?;
        let low = room(&mut s.low, n);
        for (l, ((&ct, &ot), &d)) in low.iter_mut().zip(a.iter().zip(b.iter()).zip(c.iter())) {
            l.write(from_ticks(ot.min(ct).wrapping_sub(d), scale));
        }
        set_filled(&mut s.low, n);
        for col in [&mut s.open, &mut s.high, &mut s.low, &mut s.close] {
            let at = col.len() - n;
            get_exceptions(r, &mut col[at..])?;
        }
    }
    // Volume.
    get_f64_column(r, n, &mut s.volume, false, a, c, tail)?;
    if let Some(vw) = s.vwap.as_mut() {
        get_f64_column(r, n, vw, true, a, c, tail)?;
    }
    if let Some(tc) = s.trade_count.as_mut() {
        get_int_column(r, c, n, tail)?;
        for (o, &x) in room(tc, n).iter_mut().zip(c.iter()) {
            o.write(x as u64);
        }
        set_filled(tc, n);
    }
    Ok(())
}

/// `out = [t0, t0 + d[0], t0 + d[0] + d[1], …]` (`out` is one longer than `d`).
#[inline(always)]
fn prefix_sum(t0: i64, d: &[i64], out: &mut [i64]) {
    let out = &mut out[..d.len() + 1];
    out[0] = t0;
    let mut acc = t0;
    for i in 0..d.len() {
        acc = acc.wrapping_add(d[i]);
        out[i + 1] = acc;
    }
}

#[inline]
fn scale_of(mode: u8) -> R<Scale> {
    if mode == 0 || mode > MAX_SCALE_EXP + 1 {
        return Err(CodecError::Corrupt("unknown column mode"));
    }
    Ok(SCALES[mode as usize - 1])
}

fn get_raw_f64(r: &mut Reader, n: usize, col: &mut Vec<f64>) -> R<()> {
    let raw = r.bytes(n.checked_mul(8).ok_or(CodecError::Corrupt("length"))?)?;
    col.extend(
        raw.chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
    );
    Ok(())
}

fn get_exceptions(r: &mut Reader, col: &mut [f64]) -> R<()> {
    let count = r.count(col.len())?;
    let mut idx: u64 = 0;
    for k in 0..count {
        let gap = r.varint()?;
        idx = if k == 0 {
            gap
        } else {
            idx.checked_add(gap)
                .and_then(|x| x.checked_add(1))
                .ok_or(CodecError::Corrupt("exception index"))?
        };
        if idx >= col.len() as u64 {
            return Err(CodecError::Corrupt("exception index"));
        }
        let b = r.bytes(8)?;
        col[idx as usize] = f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    }
    Ok(())
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn get_f64_column(
    r: &mut Reader,
    n: usize,
    col: &mut Vec<f64>,
    delta: bool,
    ticks: &mut [i64],
    tmp: &mut [i64],
    tail: &mut Vec<u8>,
) -> R<()> {
    let mode = r.byte()?;
    if mode == 0 {
        return get_raw_f64(r, n, col);
    }
    let scale = scale_of(mode)?;
    let ticks = if delta {
        let t0 = r.zvarint()?;
        get_int_column(r, tmp, n - 1, tail)?;
        prefix_sum(t0, &tmp[..n - 1], ticks);
        &ticks[..n]
    } else {
        get_int_column(r, tmp, n, tail)?;
        &tmp[..n]
    };
    if scale.s == 1.0 {
        put_whole(col, ticks);
    } else {
        put_prices(col, ticks, scale);
    }
    let at = col.len() - n;
    get_exceptions(r, &mut col[at..])
}

/// Reads an int column of `m` values into `out` (at least `m + 7` long; the values past `m` are
/// garbage).
// Not `inline(always)`: it holds 57 width-specialised unpackers, and copying them into every caller
// made this crate take minutes to compile; one call per block of values costs nothing measurable.
fn get_int_column(r: &mut Reader, out: &mut [i64], m: usize, tail: &mut Vec<u8>) -> R<()> {
    let ge = r.varint()?;
    let (g, e) = (ge >> 2, (ge & 3) as u32);
    if g == 0 {
        return Err(CodecError::Corrupt("zero divisor"));
    }
    let size = BLOCK << e;
    let mut at = 0;
    while at < m {
        let len = (m - at).min(size);
        let w = r.byte()? as usize;
        if w > 64 {
            return Err(CodecError::Corrupt("bit width above 64"));
        }
        let min = r.zvarint()?;
        let base = if g == 1 { min } else { 0 };
        let groups = len.div_ceil(8);
        let rest = &r.buf[r.pos..];
        let src = r.bytes((len * w).div_ceil(8))?;
        let dst = &mut out[at..at + 8 * groups];
        if rest.len() >= unpack_reads(w, groups) {
            // The values unpacked past `len` come from the next bytes and are ignored.
            unpack(w, rest, base, dst, groups);
        } else {
            tail.clear();
            tail.extend_from_slice(src);
            tail.resize(unpack_reads(w, groups), 0);
            unpack(w, tail, base, dst, groups);
        }
        if g != 1 {
            for x in out[at..at + len].iter_mut() {
                *x = min.wrapping_add((*x as u64).wrapping_mul(g) as i64);
            }
        }
        at += len;
    }
    Ok(())
}

/// Bytes [`unpack`] may read for `groups` groups of 8 values of width `w`.
#[inline(always)]
fn unpack_reads(w: usize, groups: usize) -> usize {
    groups * w + 8
}

/// Unpacks `8 × groups` values of `W <= 56` bits from `src` (at least [`unpack_reads`] bytes) into
/// `out` (that long), adding `base` to each. Every 8 values start on a byte boundary, so each value
/// is one unaligned load shifted by a constant.
#[inline(always)]
fn unpack_w<const W: usize>(src: &[u8], base: i64, out: &mut [i64], groups: usize) {
    let out = &mut out[..8 * groups];
    if W == 0 {
        out.fill(base);
        return;
    }
    let src = &src[..groups * W + 8];
    let mask = u64::MAX >> (64 - W);
    for (g, o) in out.chunks_exact_mut(8).enumerate() {
        let at = g * W;
        macro_rules! extract {
            ($($j:literal)*) => {$(
                o[$j] = base.wrapping_add(
                    ((load64(src, at + $j * W / 8) >> ($j * W % 8)) & mask) as i64,
                );
            )*};
        }
        extract!(0 1 2 3 4 5 6 7);
    }
}

/// The little-endian u64 at byte `at`.
#[inline(always)]
fn load64(src: &[u8], at: usize) -> u64 {
    let c = &src[at..at + 8];
    u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
}

/// [`unpack_w`] for any width `w` (used for 57..=64 bits).
fn unpack_wide(w: usize, src: &[u8], base: i64, out: &mut [i64], groups: usize) {
    let src = &src[..groups * w + 8];
    let mask = u64::MAX >> (64 - w);
    for (j, o) in out[..8 * groups].iter_mut().enumerate() {
        let bit = j * w;
        let (b, sh) = (bit / 8, bit % 8);
        let mut v = load64(src, b) >> sh;
        if sh + w > 64 {
            v |= u64::from(src[b + 8]) << (64 - sh);
        }
        *o = base.wrapping_add((v & mask) as i64);
    }
}

macro_rules! unpack_dispatch {
    ($w:expr, $src:expr, $base:expr, $out:expr, $groups:expr; $($n:literal)*) => {
        match $w {
            $($n => unpack_w::<$n>($src, $base, $out, $groups),)*
            w => unpack_wide(w, $src, $base, $out, $groups),
        }
    };
}

/// Unpacks `8 × groups` values of width `w <= 64` from `src` (at least [`unpack_reads`] bytes) into
/// `out`, adding `base` to every value.
#[inline(never)]
fn unpack(w: usize, src: &[u8], base: i64, out: &mut [i64], groups: usize) {
    unpack_dispatch!(w, src, base, out, groups;
        0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
        33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vectura_core::Bar;

    fn day() -> BarSeries {
        let mut s = BarSeries::default();
        let mut p = 100.0f64;
        for i in 0..390 {
            let c = ((p + ((i * 7919) % 13) as f64 * 0.01 - 0.06) * 100.0).round() / 100.0;
            s.push(Bar {
                ts: 1_700_000_000 + 60 * i,
                open: p,
                high: p.max(c) + 0.02,
                low: p.min(c) - 0.01,
                close: c,
                volume: (100 + (i * 37) % 5000) as f64,
                vwap: None,
                trade_count: None,
            })
            .unwrap();
            p = c;
        }
        s
    }

    #[test]
    fn round_trip_and_size() {
        let s = day();
        let blob = encode_day(&s);
        assert!(blob.len() < s.len() * 8, "{} bytes", blob.len());
        assert_eq!(decode_day(&blob).unwrap(), s);
    }

    #[test]
    fn empty_and_constant_days() {
        let e = BarSeries::default();
        assert_eq!(decode_day(&encode_day(&e)).unwrap(), e);
        let mut s = BarSeries::default();
        for i in 0..5000 {
            s.push(Bar::flat(i, 1.0)).unwrap();
        }
        let blob = encode_day(&s);
        assert!(s.len() <= max_bars(blob.len()));
        assert_eq!(decode_day(&blob).unwrap(), s);
    }

    fn series(ts: &[i64], vwap: bool) -> BarSeries {
        let mut s = BarSeries::default();
        for &t in ts {
            s.push(Bar {
                vwap: vwap.then_some(1.5),
                ..Bar::flat(t, 1.0)
            })
            .unwrap();
        }
        s
    }

    #[test]
    fn decode_into_appends_and_keeps_optional_columns_only_when_all_have_them() {
        let mut out = BarSeries::default();
        decode_day_into(&encode_day(&series(&[1, 2], true)), &mut out).unwrap();
        decode_day_into(&encode_day(&series(&[3], true)), &mut out).unwrap();
        assert_eq!(out.ts, [1, 2, 3]);
        assert_eq!(out.vwap.as_deref(), Some(&[1.5, 1.5, 1.5][..]));
        decode_day_into(&encode_day(&series(&[4], false)), &mut out).unwrap();
        assert_eq!(out.vwap, None);
        let before = out.clone();
        assert_eq!(
            decode_day_into(&encode_day(&series(&[4, 5], false)), &mut out),
            Err(CodecError::NotAfter { first: 4, last: 4 })
        );
        assert_eq!(out, before, "a refused day leaves the series as it was");
        let mut bad = encode_day(&series(&[9, 10], false));
        let k = bad.len() - 6;
        bad[k] ^= 0x55;
        assert!(decode_day_into(&bad, &mut out).is_err());
        assert_eq!(out, before);
        // A whole history decodes into the series a day at a time equals the concatenation.
        let days = [day(), series(&[1_800_000_000, 1_800_000_060], false)];
        let mut all = BarSeries::default();
        for d in &days {
            decode_day_into(&encode_day(d), &mut all).unwrap();
        }
        assert_eq!(all.len(), days[0].len() + 2);
        assert_eq!(all.close[..days[0].len()], days[0].close[..]);
    }

    #[test]
    fn varint_len_matches() {
        for v in [0u64, 1, 127, 128, 16383, 16384, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
        }
    }
}
