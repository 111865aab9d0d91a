//! A small CSV reader for the minute bars the emulator can serve instead of synthetic ones.

use chrono::{DateTime, NaiveDateTime};

use crate::synth::EmuBar;

fn parse_time(s: &str) -> Option<i64> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp());
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(d.and_utc().timestamp());
        }
    }
    s.parse::<i64>().ok()
}

/// Reads a minute-bar file (`.csv`, or gzip-compressed `.csv.gz`); see [`parse`].
pub(crate) fn read_file(path: &std::path::Path) -> Result<Vec<EmuBar>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut s)
            .map_err(|e| format!("{}: not a readable gzip file ({e})", path.display()))?;
        s
    } else {
        String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))?
    };
    let mut bars = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    bars.sort_by_key(|b| b.t);
    bars.dedup_by_key(|b| b.t);
    Ok(bars)
}

/// Parses a header row and bar rows; see [`crate::EmulatorHandle::load_csv`].
pub(crate) fn parse(text: &str) -> Result<Vec<EmuBar>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or("the file is empty: give a header row and bars")?;
    let names: Vec<String> = header
        .split(',')
        .map(|h| {
            h.trim()
                .trim_matches('"')
                .to_ascii_lowercase()
                .replace(['_', ' '], "")
        })
        .collect();
    let col = |alts: &[&str]| names.iter().position(|n| alts.contains(&n.as_str()));
    let t = col(&["timestamp", "t", "time", "date", "datetime"])
        .ok_or("no timestamp column: name it timestamp")?;
    let need = |alts: &[&str], what: &str| col(alts).ok_or(format!("no {what} column"));
    let o = need(&["open", "o"], "open")?;
    let h = need(&["high", "h"], "high")?;
    let l = need(&["low", "l"], "low")?;
    let c = need(&["close", "c"], "close")?;
    let v = col(&["volume", "v", "vol"]);
    let n = col(&["tradecount", "trades", "n"]);
    let vw = col(&["vwap", "vw"]);
    let mut out = Vec::new();
    for (i, line) in lines {
        let cells: Vec<&str> = line
            .split(',')
            .map(|c| c.trim().trim_matches('"'))
            .collect();
        let at = |j: usize| cells.get(j).copied().unwrap_or("");
        let num = |j: usize, what: &str| -> Result<f64, String> {
            at(j)
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or(format!(
                    "line {}: {what} {:?} is not a number",
                    i + 1,
                    at(j)
                ))
        };
        let ts = parse_time(at(t)).ok_or(format!("line {}: bad time {:?}", i + 1, at(t)))?;
        let (bo, bh, bl, bc) = (
            num(o, "open")?,
            num(h, "high")?,
            num(l, "low")?,
            num(c, "close")?,
        );
        let vol = match v {
            Some(j) if !at(j).is_empty() => num(j, "volume")?.max(0.0).round() as u64,
            _ => 0,
        };
        let trades = match n {
            Some(j) if !at(j).is_empty() => num(j, "trade count")?.max(0.0) as u64,
            _ => (vol / 100).max(1),
        };
        let hi = bh.max(bo).max(bc);
        let lo = bl.min(bo).min(bc);
        let vwap = match vw {
            Some(j) if !at(j).is_empty() => num(j, "vwap")?,
            _ => ((hi + lo + bc) / 3.0 * 10_000.0).round() / 10_000.0,
        };
        out.push(EmuBar {
            t: ts,
            o: bo,
            h: hi,
            l: lo,
            c: bc,
            v: vol,
            n: trades,
            vw: vwap.clamp(lo, hi),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_vendor_minute_files() {
        let bars = super::parse(
            "timestamp,open,high,low,close,volume\n2023-07-10 13:30:00,17.9,17.91,17.9,17.91,3057\n\n2023-07-10T13:31:00Z,17.92,17.93,17.91,17.92,602.0\n",
        )
        .unwrap();
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].t, 1_688_995_800);
        assert_eq!(bars[1].v, 602);
        assert!(super::parse("t,o,h,l\n1,2,3,4\n").is_err());
        assert!(super::parse("t,o,h,l,c\nx,2,3,4,5\n").is_err());
    }
}
