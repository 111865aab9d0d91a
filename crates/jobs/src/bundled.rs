//! The real SPY minute bars embedded in the binary, so a fresh clone backtests with no downloads.

/// Symbol of the bundled bars.
pub const SYMBOL: &str = "SPY";

/// The bundled files, oldest first: (name, gzip'd CSV).
pub const FILES: &[(&str, &[u8])] = &[
    (
        "bundled:SPY_1min_2011-01.csv.gz",
        include_bytes!("../../../data/bundled/SPY_1min_2011-01.csv.gz"),
    ),
    (
        "bundled:SPY_1min_2011-03.csv.gz",
        include_bytes!("../../../data/bundled/SPY_1min_2011-03.csv.gz"),
    ),
];
