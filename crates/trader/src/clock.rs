//! The wall clock for live trading: the one place the runtime reads the system time. Tests and
//! replays hand the trader another [`Clock`] (the emulator's replay time).

use std::time::{SystemTime, UNIX_EPOCH};

pub use vectura_core::seams::Clock;

/// The system's clock, Unix seconds UTC.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}
