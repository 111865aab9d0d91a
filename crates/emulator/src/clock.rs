//! The emulator's clock: the system clock, a manual clock that only tests move, or a replay clock
//! running at `speed` times real time from a start instant.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch.
pub type Micros = i64;

/// One second in [`Micros`].
pub const SECOND: Micros = 1_000_000;

/// How emulator time passes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clock {
    /// The system clock.
    System,
    /// Stands still until set or advanced (deterministic tests).
    Manual(Micros),
    /// `start` at `wall` (a monotonic instant), then `speed` emulator seconds per real second.
    Scaled {
        start: Micros,
        wall: Instant,
        speed: f64,
    },
}

pub(crate) fn system_micros() -> Micros {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as Micros)
        .unwrap_or(0)
}

impl Clock {
    /// The emulator's current time.
    pub fn now(&self) -> Micros {
        match *self {
            Clock::System => system_micros(),
            Clock::Manual(t) => t,
            Clock::Scaled { start, wall, speed } => {
                let real = wall.elapsed().as_secs_f64();
                start.saturating_add((real * speed * SECOND as f64) as i64)
            }
        }
    }

    /// Whether time passes by itself (a background task then publishes bars and fills orders).
    pub fn runs(&self) -> bool {
        !matches!(self, Clock::Manual(_))
    }
}

/// RFC 3339 with microseconds and `Z`, as Alpaca stamps orders and events.
pub fn rfc3339_micros(t: Micros) -> String {
    chrono::DateTime::from_timestamp_micros(t)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

/// Parses RFC 3339 (any offset) or `YYYY-MM-DD` (00:00Z).
pub fn parse_time(s: &str) -> Option<Micros> {
    let s = s.trim();
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp_micros());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_stands_still_and_formats_with_micros() {
        let c = Clock::Manual(1_700_000_000_123_456);
        assert_eq!(c.now(), c.now());
        assert!(!c.runs());
        assert_eq!(rfc3339_micros(c.now()), "2023-11-14T22:13:20.123456Z");
        assert_eq!(
            parse_time("2023-11-14T17:13:20.123456-05:00"),
            Some(1_700_000_000_123_456)
        );
        assert_eq!(parse_time("2023-11-15"), Some(1_700_006_400_000_000));
        assert_eq!(parse_time("yesterday"), None);
    }
}
