//! An async token bucket that paces requests to a rate-limited service (Alpaca's market data:
//! 200 requests a minute on the free plan). Share one bucket per API key through an `Arc`.
//!
//! A bucket of capacity `C` refilled at `r` tokens a second lets at most `C + r·W` requests start
//! in any span of `W` seconds. [`TokenBucket::per_window`] picks `C` and `r` so that this stays
//! within the service's limit: `C` = 5 % of the limit (at least 1) and `r` = the rest spread over
//! the window plus a 5 % margin for network and clock jitter. So 200 a minute is a burst of 10
//! and then one request every 0.33 s (181 a minute sustained); never 201 in 60 s.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket; [`TokenBucket::acquire`] waits (asynchronously) for a token.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    refill_per_sec: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Tokens now; negative when callers are waiting for tokens already promised to them.
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens (at least 1), refilled at `refill_per_sec` (> 0).
    pub fn new(capacity: u32, refill_per_sec: f64) -> TokenBucket {
        TokenBucket::new_at(capacity, refill_per_sec, Instant::now())
    }

    /// [`TokenBucket::new`], full at `start`: the clock the bucket's time starts from (tests pass a
    /// fixed instant and then ask at chosen instants after it).
    fn new_at(capacity: u32, refill_per_sec: f64, start: Instant) -> TokenBucket {
        let capacity = f64::from(capacity.max(1));
        let refill_per_sec = if refill_per_sec.is_finite() && refill_per_sec > 0.0 {
            refill_per_sec
        } else {
            f64::MIN_POSITIVE
        };
        TokenBucket {
            capacity,
            refill_per_sec,
            state: Mutex::new(State {
                tokens: capacity,
                last: start,
            }),
        }
    }

    /// A bucket that never lets more than `limit` requests start in any span of `window`.
    pub fn per_window(limit: u32, window: Duration) -> TokenBucket {
        let limit = limit.max(1);
        let burst = (limit / 20).max(1);
        let window = window.as_secs_f64().max(1e-3) * 1.05;
        let rest = f64::from(limit - burst).max(0.5);
        TokenBucket::new(burst, rest / window)
    }

    /// Alpaca's market-data limit on the free plan: 200 requests a minute.
    pub fn alpaca_default() -> TokenBucket {
        TokenBucket::per_window(200, Duration::from_secs(60))
    }

    /// The burst size.
    pub fn capacity(&self) -> u32 {
        self.capacity as u32
    }

    /// Tokens added per second.
    pub fn refill_per_sec(&self) -> f64 {
        self.refill_per_sec
    }

    /// The most requests this bucket lets start within any span of `window`.
    pub fn max_in(&self, window: Duration) -> f64 {
        self.capacity + self.refill_per_sec * window.as_secs_f64()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn refill(&self, s: &mut State, now: Instant) {
        let dt = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + dt * self.refill_per_sec).min(self.capacity);
        s.last = now;
    }

    /// Takes a token, waiting until one is available. Callers are served in the order they
    /// asked. A caller dropped while waiting gives up its token (the bucket errs on the slow side).
    pub async fn acquire(&self) {
        let wait = self.take_at(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token if one is available now.
    pub fn try_acquire(&self) -> bool {
        self.try_take_at(Instant::now())
    }

    /// Takes a token at `now` (promising a future one when none is left): how long after `now` it
    /// is due. The clock is a parameter so that tests can drive the bucket with chosen instants.
    fn take_at(&self, now: Instant) -> Duration {
        let mut s = self.lock();
        self.refill(&mut s, now);
        s.tokens -= 1.0;
        if s.tokens < 0.0 {
            Duration::from_secs_f64(-s.tokens / self.refill_per_sec)
        } else {
            Duration::ZERO
        }
    }

    /// Takes a token at `now` if one is there.
    fn try_take_at(&self, now: Instant) -> bool {
        let mut s = self.lock();
        self.refill(&mut s, now);
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Default for TokenBucket {
    fn default() -> Self {
        TokenBucket::alpaca_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_window_never_exceeds_the_limit() {
        for (limit, secs) in [(200, 60), (20, 1), (1, 1), (5, 60), (10_000, 60)] {
            let b = TokenBucket::per_window(limit, Duration::from_secs(secs));
            let max = b.max_in(Duration::from_secs(secs));
            // Requests are whole: a bucket admits floor(max) of them.
            assert!(
                max.floor() <= f64::from(limit),
                "{limit}/{secs}s allows {max}"
            );
            assert!(
                max >= f64::from(limit) * 0.9,
                "{limit}/{secs}s allows only {max}"
            );
        }
        let a = TokenBucket::alpaca_default();
        assert_eq!(a.capacity(), 10);
        assert!(a.max_in(Duration::from_secs(60)) <= 200.0);
    }

    /// `d` rounded to whole microseconds (token times are computed in floating point).
    fn us(d: Duration) -> u128 {
        (d.as_nanos() + 500) / 1_000
    }

    #[test]
    fn tokens_after_the_burst_are_due_one_refill_apart() {
        // A manual clock: every caller asks at `t0`, then at chosen instants after it.
        let t0 = Instant::now();
        let b = TokenBucket::new_at(3, 50.0, t0); // 3 at once, then one every 20 ms
        let waits: Vec<u128> = (0..8).map(|_| us(b.take_at(t0))).collect();
        assert_eq!(waits, [0, 0, 0, 20_000, 40_000, 60_000, 80_000, 100_000]);
        // The five promised tokens are all spent at t0 + 100 ms; the next one is there 20 ms later.
        assert!(!b.try_take_at(t0));
        assert!(!b.try_take_at(t0 + Duration::from_millis(99)));
        assert!(!b.try_take_at(t0 + Duration::from_millis(119)));
        assert!(b.try_take_at(t0 + Duration::from_millis(120)));
        assert!(!b.try_take_at(t0 + Duration::from_millis(120)));
        // After a long idle time the bucket holds its capacity, no more.
        let later = t0 + Duration::from_secs(3_600);
        let burst = (0..10).take_while(|_| b.try_take_at(later)).count();
        assert_eq!(burst, 3);
        assert_eq!(us(b.take_at(later)), 20_000);
    }

    #[test]
    fn callers_arriving_at_once_never_exceed_the_window_limit() {
        for (limit, secs) in [(20u32, 1u64), (200, 60), (100, 10)] {
            let t0 = Instant::now();
            let b = TokenBucket::per_window(limit, Duration::from_secs(secs));
            let b = TokenBucket::new_at(b.capacity(), b.refill_per_sec(), t0);
            let n = 3 * limit as usize;
            // When each of n callers that all ask at t0 may start, in µs after t0.
            let due: Vec<u128> = (0..n).map(|_| us(b.take_at(t0))).collect();
            assert!(
                due.windows(2).all(|w| w[0] <= w[1]),
                "served in order: {due:?}"
            );
            let window = u128::from(secs) * 1_000_000;
            let most = (0..n)
                .map(|i| due[i..].partition_point(|&t| t < due[i] + window))
                .max()
                .unwrap();
            assert!(
                most <= limit as usize,
                "{limit}/{secs}s: {most} start in one window"
            );
            // Not slower than the margin promises: the limit less 5 % and the burst, per window.
            assert!(
                most as f64 >= f64::from(limit) * 0.9,
                "{limit}/{secs}s: only {most} start in one window"
            );
        }
    }
}
