//! One sweep result row in typed form: the set index and every CSV column after it, so that the CSV,
//! the Parquet file and the database all carry the same numbers whether the rows come from a run or
//! from the merged shard files.

use vectura_backtest::sweep::{csv_header, metric, metric_names, SweepRow, PARAM_NAMES};
use vectura_backtest::Market;
use vectura_store::SweepResult;

use crate::JobError;

/// Columns after `set` that are outcomes rather than metrics (CSV order).
const OUTCOMES: [&str; 3] = ["final_equity", "final_cash", "invested_cash"];

/// A set and its values in CSV column order (parameters, outcomes, metrics); `None` where the CSV
/// cell is empty (a profit factor with no losing trade).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub set: u64,
    pub values: Vec<Option<f64>>,
}

/// The names of [`Record::values`], in order.
pub fn value_names() -> Vec<&'static str> {
    PARAM_NAMES
        .iter()
        .chain(OUTCOMES.iter())
        .chain(metric_names().iter())
        .copied()
        .collect()
}

impl Record {
    /// The record of a row just computed.
    pub fn from_row(r: &SweepRow) -> Record {
        let p = &r.params;
        let mut values = vec![
            Some(p.capital_pct),
            Some(p.buy_below_pct),
            Some(p.sell_above_pct),
            Some(p.buy_after_sell_pct),
            Some(p.cash_floor),
            Some(p.order_gap_pct),
            Some(r.final_equity),
            Some(r.final_cash),
            Some(r.invested_cash),
        ];
        values.extend(metric_names().iter().map(|m| metric(&r.metrics, m)));
        Record { set: r.set, values }
    }

    /// Parses a line written by `csv_line` (the shard files hold exactly those). Rust's f64 text is
    /// the shortest form that parses back to the same bits, so no number changes on the way.
    pub fn parse_csv(line: &str) -> Result<Record, JobError> {
        let bad = |why: String| {
            JobError::shards(format!("a shard's results hold a damaged row ({why}): re-run that shard (vectura sweep run --store URL --shard-index I), then merge again"))
        };
        let mut cells = line.split(',');
        let set = cells
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad(format!("no set index in {line:?}")))?;
        let values = cells
            .map(|c| {
                if c.is_empty() {
                    Ok(None)
                } else {
                    c.parse::<f64>()
                        .map(Some)
                        .map_err(|_| bad(format!("{c:?} in set {set} is not a number")))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let want = csv_header().split(',').count() - 1;
        if values.len() != want {
            return Err(bad(format!(
                "set {set} has {} values, {want} expected",
                values.len()
            )));
        }
        Ok(Record { set, values })
    }

    /// The database row of a set of `market` in a sweep of several markets: `set_index` is the row's
    /// place in the run (markets in order, then sets), since `(run_id, set_index)` is the key and a
    /// set index repeats in every market; the market (`symbol`, `start_date`, `end_date`) and the
    /// plan's `set` lead the parameters object.
    pub fn to_store_in(&self, market: &Market, row_index: u64) -> SweepResult {
        let mut r = self.to_store();
        let mut params = serde_json::Map::new();
        params.insert("symbol".into(), market.symbol.clone().into());
        params.insert("start_date".into(), market.start.to_string().into());
        params.insert("end_date".into(), market.end.to_string().into());
        params.insert("set".into(), self.set.into());
        if let serde_json::Value::Object(p) = r.params {
            params.extend(p);
        }
        r.set_index = row_index;
        r.params = serde_json::Value::Object(params);
        r
    }

    /// The database row: parameters and outcomes+metrics as JSON objects (a non-finite number is
    /// stored as null, which JSON cannot hold otherwise).
    pub fn to_store(&self) -> SweepResult {
        let names = value_names();
        let obj = |range: std::ops::Range<usize>| {
            serde_json::Value::Object(
                range
                    .map(|i| {
                        let v = self.values[i].map_or(serde_json::Value::Null, |x| x.into());
                        (names[i].to_string(), v)
                    })
                    .collect(),
            )
        };
        SweepResult {
            set_index: self.set,
            params: obj(0..PARAM_NAMES.len()),
            metrics: obj(PARAM_NAMES.len()..names.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_parse_back_to_the_same_values() {
        let header = csv_header();
        let names: Vec<&str> = header.split(',').skip(1).collect();
        assert_eq!(names, value_names());
        let n = names.len();
        let mut cells: Vec<String> = (0..n)
            .map(|i| (0.1 * i as f64 + 1e-17).to_string())
            .collect();
        cells[n - 4] = String::new();
        let line = format!("7,{}", cells.join(","));
        let r = Record::parse_csv(&line).unwrap();
        assert_eq!(r.set, 7);
        assert_eq!(r.values[n - 4], None);
        assert_eq!(
            r.values[1].map(f64::to_bits),
            Some((0.1f64 + 1e-17).to_bits())
        );
        let s = r.to_store();
        assert_eq!(s.params["buy_below_pct"], serde_json::json!(0.1 + 1e-17));
        assert!(s.metrics["final_equity"].is_number());
        assert!(Record::parse_csv("7,1,2").is_err());
        assert!(Record::parse_csv("x,1").is_err());
    }
}
