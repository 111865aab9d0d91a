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
                last: Instant::now(),
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
        let wait = {
            let mut s = self.lock();
            self.refill(&mut s, Instant::now());
            s.tokens -= 1.0;
            (s.tokens < 0.0).then(|| Duration::from_secs_f64(-s.tokens / self.refill_per_sec))
        };
        if let Some(w) = wait {
            tokio::time::sleep(w).await;
        }
    }

    /// Takes a token if one is available now.
    pub fn try_acquire(&self) -> bool {
        let mut s = self.lock();
        self.refill(&mut s, Instant::now());
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

    #[tokio::test]
    async fn acquire_paces_after_the_burst() {
        let b = TokenBucket::new(3, 50.0); // a token every 20 ms after 3 at once
        let t = Instant::now();
        let mut at = Vec::new();
        for _ in 0..8 {
            b.acquire().await;
            at.push(t.elapsed());
        }
        assert!(at[2] < Duration::from_millis(15), "{at:?}");
        // The 8th token: 5 refills of 20 ms.
        assert!(at[7] >= Duration::from_millis(99), "{at:?}");
        assert!(!b.try_acquire());
        tokio::time::sleep(Duration::from_millis(25)).await;
        assert!(b.try_acquire());
    }
}
