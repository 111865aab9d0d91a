//! The original system's day blob (format "v1", spec §3.2): a gzip-compressed JSON array of
//! `[secondsSinceUtcMidnight, close]` pairs, one per minute bar in ascending time.
//!
//! The stored bytes come in several physical forms, all accepted by [`decode`]:
//!
//! - the raw gzip bytes (`1f 8b …`);
//! - the JSON text of a Node `Buffer`, `{"type":"Buffer","data":[31,139,…]}` (what supabase-js wrote);
//! - either of those hex-encoded as Postgres prints `bytea`: `\x1f8b…` or `\x7b2274…`;
//! - a JSON string holding any of these, plain hex, or base64.
//!
//! [`encode`] writes the raw gzip form with the original's JSON text (no whitespace, JavaScript's
//! shortest round-trip numbers) at zlib's default level.

use std::io::{Read, Write};

use chrono::NaiveDate;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use vectura_core::{Bar, BarSeries};

use crate::validate::{BadBar, Checker, Field, Item, Name, Ordering, Problem};

/// Largest JSON text a v1 blob may inflate to (a day of second bars is about 2 MB).
const MAX_JSON: u64 = 32 << 20;
/// Seconds in a UTC day.
const DAY_SECONDS: f64 = 86_400.0;

/// Why a v1 blob cannot be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum V1Error {
    #[error("v1 day blob is not gzip data in any known form (raw, Buffer JSON, \\x hex, base64): the stored day is damaged; fetch it again")]
    NotGzip,
    #[error("v1 day blob does not inflate ({0}): the stored day is damaged; fetch it again")]
    Gzip(String),
    #[error("v1 day blob inflates to more than {} MiB: it is not a day of bars", MAX_JSON >> 20)]
    TooLarge,
    #[error("v1 day blob is not a JSON array of [seconds, close] pairs ({0}): the stored day is damaged; fetch it again")]
    Json(String),
    /// A pair that fails the checks every bar source shares ([`crate::validate`]), or whose
    /// seconds are not a second of the day; `index` is 0-based.
    #[error("{problem}")]
    Bar { index: usize, problem: BadBar },
}

/// Decodes a v1 blob of the UTC day `day` into flat bars (open = high = low = close, volume 0)
/// stamped at `day 00:00Z + seconds`.
pub fn decode(day: NaiveDate, bytes: &[u8]) -> Result<BarSeries, V1Error> {
    let gz = physical_bytes(bytes, 0).ok_or(V1Error::NotGzip)?;
    let mut json = Vec::new();
    GzDecoder::new(&gz[..])
        .take(MAX_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|e| V1Error::Gzip(e.to_string()))?;
    if json.len() as u64 > MAX_JSON {
        return Err(V1Error::TooLarge);
    }
    let pairs: Vec<(f64, f64)> =
        serde_json::from_slice(&json).map_err(|e| V1Error::Json(e.to_string()))?;
    let midnight = day
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp();
    let mut checker = Checker::new(format!("v1 day blob {day}"), false, Ordering::OldestFirst);
    checker.reserve(pairs.len());
    let names = |f: Field| Name {
        field: match f {
            Field::Time => "seconds".into(),
            _ => "close".into(),
        },
        text: None,
    };
    for (index, (secs, close)) in pairs.into_iter().enumerate() {
        let item = Item::Pair(index as u64);
        if !(secs.fract() == 0.0 && (0.0..DAY_SECONDS).contains(&secs)) {
            return Err(V1Error::Bar {
                index,
                problem: checker.bad(
                    item,
                    Some("seconds".into()),
                    Problem::Time {
                        text: format!("{secs}"),
                        expected: "the whole seconds of one day (0..86399)".into(),
                    },
                ),
            });
        }
        checker
            .push(Bar::flat(midnight + secs as i64, close), item, names)
            .map_err(|problem| V1Error::Bar { index, problem })?;
    }
    Ok(checker.finish(false).series)
}

/// Encodes the bars of the UTC day `day` as a v1 blob (raw gzip form): each bar's seconds since
/// `day 00:00Z` and its close. Bars outside the day are written with their (out of range) offset, as
/// the original never did; callers pass one day's bars.
pub fn encode(day: NaiveDate, bars: &BarSeries) -> Vec<u8> {
    let midnight = day
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp();
    let mut json = String::with_capacity(2 + bars.len() * 20);
    json.push('[');
    for (i, (&ts, &close)) in bars.ts.iter().zip(&bars.close).enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push('[');
        json.push_str(&(ts - midnight).to_string());
        json.push(',');
        json.push_str(&js_number(close));
        json.push(']');
    }
    json.push(']');
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(json.as_bytes()).expect("writing to a Vec");
    gz.finish().expect("writing to a Vec")
}

/// Wraps gzip bytes as the JSON text of a Node `Buffer` (`{"type":"Buffer","data":[…]}`), the form
/// supabase-js stored.
pub fn buffer_json(gz: &[u8]) -> Vec<u8> {
    let mut s = String::from(r#"{"type":"Buffer","data":["#);
    for (i, b) in gz.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&b.to_string());
    }
    s.push_str("]}");
    s.into_bytes()
}

/// Formats `v` as JavaScript's `Number.prototype.toString` does (shortest round-trip digits).
pub fn js_number(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let sci = format!("{:e}", v.abs()); // shortest round-trip digits: d[.ddd]e[-]x
    let (mant, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let n = exp.parse::<i32>().expect("exponent is an integer") + 1;
    let mut out = String::new();
    if v < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if n - 1 < 0 { '-' } else { '+' });
        out.push_str(&(n - 1).abs().to_string());
    }
    out
}

fn is_gzip(b: &[u8]) -> bool {
    b.len() >= 2 && b[0] == 0x1f && b[1] == 0x8b
}

/// The gzip bytes inside any of the accepted physical forms (`depth` bounds nested JSON strings).
fn physical_bytes(bytes: &[u8], depth: u32) -> Option<Vec<u8>> {
    if is_gzip(bytes) {
        return Some(bytes.to_vec());
    }
    if depth > 2 {
        return None;
    }
    let text = bytes.trim_ascii();
    // 1. Postgres bytea text: \x + hex; the bytes are either the Buffer JSON or the gzip itself.
    if let Some(hex) = text.strip_prefix(b"\\x") {
        let raw = unhex(hex)?;
        return buffer_data(&raw).or_else(|| is_gzip(&raw).then_some(raw));
    }
    // 2. Buffer JSON, or a JSON string holding any form.
    if text.first() == Some(&b'{') {
        return buffer_data(text);
    }
    if text.first() == Some(&b'"') {
        let inner: String = serde_json::from_slice(text).ok()?;
        return physical_bytes(inner.as_bytes(), depth + 1);
    }
    // 3. Plain hex.
    if let Some(raw) = unhex(text) {
        if is_gzip(&raw) {
            return Some(raw);
        }
        if let Some(d) = buffer_data(&raw) {
            return Some(d);
        }
    }
    // 4. Base64.
    if text.len() >= 2 {
        if let Some(raw) = unbase64(text) {
            if is_gzip(&raw) {
                return Some(raw);
            }
        }
    }
    None
}

/// The `data` bytes of a `{"type":"Buffer","data":[…]}` JSON text, when they are gzip.
fn buffer_data(text: &[u8]) -> Option<Vec<u8>> {
    let v: serde_json::Value = serde_json::from_slice(text).ok()?;
    if v.get("type")?.as_str()? != "Buffer" {
        return None;
    }
    let data = v
        .get("data")?
        .as_array()?
        .iter()
        .map(|x| u8::try_from(x.as_u64()?).ok())
        .collect::<Option<Vec<u8>>>()?;
    is_gzip(&data).then_some(data)
}

fn unhex(h: &[u8]) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) || h.is_empty() {
        return None;
    }
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    h.chunks_exact(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

fn unbase64(t: &[u8]) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let t: Vec<u8> = t
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let body = t
        .strip_suffix(b"==")
        .or_else(|| t.strip_suffix(b"="))
        .unwrap_or(&t);
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = acc << 6 | val(c)?;
        }
        match chunk.len() {
            4 => out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]),
            3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
            2 => out.push((acc >> 4) as u8),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_numbers() {
        for (v, s) in [
            (100.0, "100"),
            (449.91, "449.91"),
            (0.1, "0.1"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (1.5e21, "1.5e+21"),
            (1e21, "1e+21"),
            (123456789012345680000.0, "123456789012345680000"),
            (-2.5, "-2.5"),
            (0.30000000000000004, "0.30000000000000004"),
        ] {
            assert_eq!(js_number(v), s, "{v:e}");
        }
    }

    #[test]
    fn base64_and_hex() {
        assert_eq!(unbase64(b"H4s=").unwrap(), vec![0x1f, 0x8b]);
        assert_eq!(unbase64(b"H4sI").unwrap(), vec![0x1f, 0x8b, 0x08]);
        assert_eq!(unhex(b"1f8B").unwrap(), vec![0x1f, 0x8b]);
        assert!(unhex(b"1f8").is_none());
    }
}
