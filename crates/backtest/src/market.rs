//! One market of a sweep: a symbol's bars over a date range. A sweep plan runs on each of its markets
//! in turn; results files, reports and the database name a row's market with these three fields.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A symbol over the dates its bars were cut to (both inclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Market {
    pub symbol: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Market {
    /// The leading CSV columns of this market's rows in a sweep of several markets
    /// (`symbol,start_date,end_date,`).
    pub fn csv_prefix(&self) -> String {
        format!("{},{},{},", self.symbol, self.start, self.end)
    }
}
