//! The simulated broker's fault schedule: which faults are on, how often, and one seed that makes every
//! decision reproducible.
//!
//! Every decision is a pure function of the seed, the fault and a key naming the occasion (a client order
//! id and its attempt number, a stream's event number, a method's call number), not of a shared random
//! stream, so a run replays exactly from its seed and a change in one part of a run (one more read, one
//! more order) does not reshuffle the faults everywhere else.

use serde::{Deserialize, Serialize};

/// A fault the simulated broker can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// A submission is refused with one of Alpaca's 403/422 replies; no order is created.
    Reject,
    /// An order fills in 2..=`max_parts` parts spread over 1..=`max_part_bars` bars.
    PartialFill,
    /// An order's fills come 1..=`max_delay_bars` bars later than the fill model says.
    DelayedFill,
    /// An accepted order stays `new` and never fills (a day order still expires at the close).
    StaysNew,
    /// The order stream drops (`Disconnected`); every event until the next bar is lost; the stream then
    /// says `Connected { reconnect: true }` and the consumer must backfill through `orders`/`executions`.
    DropTradeStream,
    /// The bar stream drops; 1..=`max_gap_bars` bars are lost before it reconnects (backfill by `bars`).
    DropBarStream,
    /// An order event is delivered twice.
    DuplicateEvent,
    /// An order event is held back and delivered after a later one (possibly of the next bar).
    ReorderEvent,
    /// A call fails with a 5xx or a timeout ([`crate::BrokerError::Unavailable`]) and has no effect.
    Unavailable,
    /// A submission or cancel takes effect but its reply is lost: the caller gets
    /// [`crate::BrokerError::Unavailable`] (look the order up before acting again).
    LostReply,
}

impl Fault {
    /// Every fault, in a fixed order.
    pub const ALL: [Fault; 10] = [
        Fault::Reject,
        Fault::PartialFill,
        Fault::DelayedFill,
        Fault::StaysNew,
        Fault::DropTradeStream,
        Fault::DropBarStream,
        Fault::DuplicateEvent,
        Fault::ReorderEvent,
        Fault::Unavailable,
        Fault::LostReply,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The rate [`Faults::all`] and [`Faults::only`] give this fault: often enough that a session of
    /// minute bars meets it many times, rarely enough that a run still trades.
    pub fn default_rate(self) -> f64 {
        match self {
            Fault::Reject => 0.05,
            Fault::PartialFill => 0.2,
            Fault::DelayedFill => 0.2,
            Fault::StaysNew => 0.05,
            Fault::DropTradeStream => 0.02,
            Fault::DropBarStream => 0.01,
            Fault::DuplicateEvent => 0.05,
            Fault::ReorderEvent => 0.05,
            Fault::Unavailable => 0.03,
            Fault::LostReply => 0.03,
        }
    }
}

/// Which faults are injected, how often, and the seed that reproduces them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// One seed reproduces every decision of a run.
    pub seed: u64,
    /// Per fault (in [`Fault::ALL`] order), the probability per occasion, 0 (off) to 1 (every time).
    rates: [f64; 10],
    /// Most parts a partially filled order fills in (at least 2).
    pub max_parts: u32,
    /// Most bars the parts of one order are spread over (1: all in one bar).
    pub max_part_bars: u32,
    /// Most bars a delayed fill comes late.
    pub max_delay_bars: u32,
    /// Most bars a dropped bar stream loses.
    pub max_gap_bars: u32,
}

impl Default for Faults {
    fn default() -> Self {
        Faults::none()
    }
}

impl Faults {
    /// No faults at all.
    pub fn none() -> Faults {
        Faults {
            seed: 0,
            rates: [0.0; 10],
            max_parts: 3,
            max_part_bars: 2,
            max_delay_bars: 3,
            max_gap_bars: 3,
        }
    }

    /// Every fault at its default rate.
    pub fn all(seed: u64) -> Faults {
        let mut f = Faults::none();
        f.seed = seed;
        for x in Fault::ALL {
            f.rates[x.index()] = x.default_rate();
        }
        f
    }

    /// One fault at its default rate, the others off.
    pub fn only(seed: u64, fault: Fault) -> Faults {
        Faults::none()
            .seeded(seed)
            .with(fault, fault.default_rate())
    }

    /// The same schedule with another seed.
    pub fn seeded(mut self, seed: u64) -> Faults {
        self.seed = seed;
        self
    }

    /// The same schedule with `fault` at `rate` (clamped to 0..=1; NaN turns it off).
    pub fn with(mut self, fault: Fault, rate: f64) -> Faults {
        self.rates[fault.index()] = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self
    }

    /// The probability of `fault` per occasion.
    pub fn rate(&self, fault: Fault) -> f64 {
        self.rates[fault.index()]
    }

    /// True when no fault is on.
    pub fn is_off(&self) -> bool {
        self.rates.iter().all(|&r| r == 0.0)
    }

    /// Whether `fault` strikes on the occasion named by `key`.
    pub(crate) fn hit(&self, fault: Fault, key: &[u64]) -> bool {
        let r = self.rate(fault);
        r > 0.0 && (r >= 1.0 || unit(self.mix(fault, key, 0)) < r)
    }

    /// A number in `0..n` (n ≥ 1) for the occasion `key`, independent of [`Faults::hit`] for it.
    pub(crate) fn pick(&self, fault: Fault, key: &[u64], salt: u64, n: u64) -> u64 {
        self.mix(fault, key, salt.wrapping_add(1)) % n.max(1)
    }

    fn mix(&self, fault: Fault, key: &[u64], salt: u64) -> u64 {
        let mut h = splitmix64(self.seed ^ (fault.index() as u64 + 1).wrapping_mul(GOLDEN));
        for &k in key {
            h = splitmix64(h ^ k);
        }
        splitmix64(h ^ salt)
    }
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's finaliser: a well-mixed 64-bit hash step, fixed forever so a seed means the same run
/// on every platform and version.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of `key` under `seed` (deterministic ids).
pub(crate) fn mix64(seed: u64, key: &[u64]) -> u64 {
    let mut h = splitmix64(seed);
    for &k in key {
        h = splitmix64(h ^ k);
    }
    h
}

/// A uniform number in [0, 1) from the top 53 bits.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// FNV-1a over a string's bytes: the key of an occasion named by an id.
pub(crate) fn key_of(s: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01B3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_depend_on_seed_and_key_only() {
        let a = Faults::all(7);
        let b = Faults::all(7);
        let c = Faults::all(8);
        let hits = |f: &Faults| -> Vec<bool> {
            (0..2000u64)
                .map(|k| f.hit(Fault::PartialFill, &[k]))
                .collect()
        };
        assert_eq!(hits(&a), hits(&b));
        assert_ne!(hits(&a), hits(&c));
        // The rate is honoured (0.2 ± a generous margin over 2000 draws).
        let n = hits(&a).iter().filter(|&&h| h).count();
        assert!((300..500).contains(&n), "{n} hits of 2000 at rate 0.2");
    }

    #[test]
    fn off_never_hits_and_one_always_hits() {
        let f = Faults::none().with(Fault::Reject, 1.0);
        assert!((0..100u64).all(|k| f.hit(Fault::Reject, &[k])));
        assert!((0..100u64).all(|k| !f.hit(Fault::PartialFill, &[k])));
        assert!(Faults::none().is_off());
        assert!(!Faults::only(1, Fault::LostReply).is_off());
        assert_eq!(
            Faults::none()
                .with(Fault::Reject, f64::NAN)
                .rate(Fault::Reject),
            0.0
        );
    }

    #[test]
    fn picks_stay_in_range() {
        let f = Faults::all(3);
        assert!((0..500u64).all(|k| f.pick(Fault::PartialFill, &[k], 1, 3) < 3));
        assert_eq!(f.pick(Fault::PartialFill, &[1], 1, 0), 0);
    }
}
