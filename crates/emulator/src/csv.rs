//! A small CSV reader for the minute bars the emulator can serve instead of synthetic ones.

use chrono::{DateTime, NaiveDateTime};

use vectura_core::validate::{self, Checker, Field, Item, Name, Ordering, Problem};
use vectura_core::Bar;

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
    parse(&path.display().to_string(), &text)
}

/// Parses a header row and bar rows of the file `source` (named in messages); see
/// [`crate::EmulatorHandle::load_csv`].
///
/// Every bar goes through the checks all of Vectura's bar sources share
/// ([`vectura_core::validate`]), with their messages: prices finite and positive, volume finite
/// and not negative, a whole trade count, times in the calendar's years, strictly increasing
/// times (or newest first throughout, then reversed), no repeated time; an inconsistent bar (open
/// or close outside low..high) is widened, as the bar loader does without `--strict`.
pub(crate) fn parse(source: &str, text: &str) -> Result<Vec<EmuBar>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(format!(
        "{source}: the file is empty: give a header row and bars"
    ))?;
    let heads: Vec<&str> = header
        .split(',')
        .map(|h| h.trim().trim_matches('"'))
        .collect();
    let names: Vec<String> = heads
        .iter()
        .map(|h| h.to_ascii_lowercase().replace(['_', ' '], ""))
        .collect();
    let col = |alts: &[&str]| names.iter().position(|n| alts.contains(&n.as_str()));
    let t = col(&["timestamp", "t", "time", "date", "datetime"])
        .ok_or(format!("{source}: no timestamp column: name it timestamp"))?;
    let need = |alts: &[&str], what: &str| {
        col(alts).ok_or(format!("{source}: no {what} column: name one {what}"))
    };
    let o = need(&["open", "o"], "open")?;
    let h = need(&["high", "h"], "high")?;
    let l = need(&["low", "l"], "low")?;
    let c = need(&["close", "c"], "close")?;
    let v = col(&["volume", "v", "vol"]);
    let n = col(&["tradecount", "trades", "n"]);
    let vw = col(&["vwap", "vw"]);
    let column = |j: usize| format!("column {} {:?}", j + 1, heads[j]);
    let mut checker = Checker::new(source, false, Ordering::Either);
    // The trade counts in file order, beside the checker's bars (it keeps them only while every
    // bar has one; the emulator makes one up for a bar without).
    let mut counts: Vec<Option<u64>> = Vec::new();
    for (i, line) in lines {
        let item = Item::Line(i as u64 + 1);
        let cells: Vec<&str> = line
            .split(',')
            .map(|c| c.trim().trim_matches('"'))
            .collect();
        let at = |j: usize| cells.get(j).copied().unwrap_or("");
        let unreadable = |j: usize, what: &str| {
            format!(
                "{source} {item}, {}: {what} {:?} is not a number: fix or remove the row",
                column(j),
                at(j)
            )
        };
        // NaN and inf parse here and are refused by the shared checks, with their message.
        let num = |j: usize, what: &str| at(j).parse::<f64>().map_err(|_| unreadable(j, what));
        let opt = |j: Option<usize>, what: &str| match j {
            Some(j) if !at(j).is_empty() => num(j, what).map(Some),
            _ => Ok(None),
        };
        let ts = parse_time(at(t)).ok_or(format!(
            "{source} {item}, {}: time {:?} is not RFC 3339, YYYY-MM-DD HH:MM[:SS] (UTC) or Unix seconds: fix or remove the row",
            column(t),
            at(t)
        ))?;
        let count = match opt(n, "trade count")? {
            None => None,
            Some(x) => Some(validate::trade_count_f64(x).ok_or_else(|| {
                checker
                    .bad(
                        item,
                        Some(column(n.unwrap_or(0))),
                        Problem::TradeCount {
                            text: at(n.unwrap_or(0)).to_string(),
                        },
                    )
                    .to_string()
            })?),
        };
        let bar = Bar {
            ts,
            open: num(o, "open")?,
            high: num(h, "high")?,
            low: num(l, "low")?,
            close: num(c, "close")?,
            volume: opt(v, "volume")?.unwrap_or(0.0),
            vwap: opt(vw, "vwap")?,
            trade_count: None,
        };
        let name = |f: Field| {
            let j = match f {
                Field::Time => Some(t),
                Field::Open => Some(o),
                Field::High => Some(h),
                Field::Low => Some(l),
                Field::Close => Some(c),
                Field::Volume => v,
                Field::Vwap => vw,
                Field::TradeCount => n,
            };
            Name {
                field: j.map_or_else(|| f.name().to_string(), column),
                text: j.map(|j| at(j).to_string()),
            }
        };
        checker.push(bar, item, name).map_err(|e| e.to_string())?;
        counts.push(count);
    }
    let checked = checker.finish(false);
    if checked.reversed {
        counts.reverse();
    }
    let s = &checked.series;
    Ok((0..s.len())
        .map(|k| {
            let (hi, lo, close) = (s.high[k], s.low[k], s.close[k]);
            let vol = s.volume[k].round() as u64;
            let vwap = match &s.vwap {
                Some(col) => col[k],
                None => ((hi + lo + close) / 3.0 * 10_000.0).round() / 10_000.0,
            };
            EmuBar {
                t: s.ts[k],
                o: s.open[k],
                h: hi,
                l: lo,
                c: close,
                v: vol,
                n: counts[k].unwrap_or((vol / 100).max(1)),
                // A VWAP outside the (widened) range would be refused by Alpaca's clients' checks.
                vw: vwap.clamp(lo, hi),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reads_vendor_minute_files() {
        let bars = parse(
            "f.csv",
            "timestamp,open,high,low,close,volume\n2023-07-10 13:30:00,17.9,17.91,17.9,17.91,3057\n\n2023-07-10T13:31:00Z,17.92,17.93,17.91,17.92,602.0\n",
        )
        .unwrap();
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].t, 1_688_995_800);
        assert_eq!(bars[1].v, 602);
        let e = parse("f.csv", "t,o,h,l\n1,2,3,4\n").unwrap_err();
        assert!(e.contains("no close column"), "{e}");
        let e = parse("f.csv", "t,o,h,l,c\nx,2,3,4,5\n").unwrap_err();
        assert!(
            e.starts_with("f.csv line 2, column 1 \"t\": time \"x\""),
            "{e}"
        );
    }

    #[test]
    fn newest_first_files_are_reversed_with_their_trade_counts() {
        let bars = parse(
            "f.csv",
            "t,o,h,l,c,v,n\n1704205860,10,11,9,10,500,7\n1704205800,10,11,9,10,100,3\n",
        )
        .unwrap();
        assert_eq!(
            bars.iter().map(|b| (b.t, b.v, b.n)).collect::<Vec<_>>(),
            [(1_704_205_800, 100, 3), (1_704_205_860, 500, 7)]
        );
    }

    /// The emulator's files get the checks (and the messages) of every other bar source.
    #[test]
    fn bad_bars_are_refused_with_the_shared_messages() {
        let head = "timestamp,open,high,low,close,volume,trade_count\n";
        let good = "1704205800,10,11,9,10,100,3\n";
        for (row, want) in [
            ("1704205860,NaN,11,9,10,100,3", "line 3, column 2 \"open\": price `NaN` is not finite and positive"),
            ("1704205860,10,inf,9,10,100,3", "line 3, column 3 \"high\": price `inf`"),
            ("1704205860,10,11,0,10,100,3", "line 3, column 4 \"low\": price `0`"),
            ("1704205860,10,11,9,-1,100,3", "line 3, column 5 \"close\": price `-1`"),
            ("1704205860,10,11,9,10,-5,3", "line 3, column 6 \"volume\": volume `-5` must be a finite number >= 0"),
            ("1704205860,10,11,9,10,NaN,3", "line 3, column 6 \"volume\": volume `NaN`"),
            ("1704205860,10,11,9,10,100,1.5", "line 3, column 7 \"trade_count\": trade count `1.5` must be a whole number"),
            ("9223372036854775807,10,11,9,10,100,3", "line 3, column 1 \"timestamp\": time `9223372036854775807` is outside 1900-01-01..2035-12-31"),
            ("1704205800,10,11,9,10,100,3", "line 3: timestamp 2024-01-02T14:30:00Z repeats line 2"),
            ("1704205740,10,11,9,10,100,3\n1704205980,10,11,9,10,1,1", "line 4: timestamp 2024-01-02T14:33:00Z is not before (the file is newest first)"),
            ("1704205860,10,11,9,x,100,3", "line 3, column 5 \"close\": close \"x\" is not a number"),
        ] {
            let e = parse("f.csv", &format!("{head}{good}{row}\n")).unwrap_err();
            assert!(e.starts_with(&format!("f.csv {want}")), "{row}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        // Inconsistent bars are widened, as the bar loader does without --strict.
        let bars = parse(
            "f.csv",
            &format!("{head}{good}1704205860,12,11,9,8,100,3\n"),
        )
        .unwrap();
        assert_eq!((bars[1].h, bars[1].l), (12.0, 8.0));
    }
}
