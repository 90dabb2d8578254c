//! Attempt limits on the routes anyone may call (login, refresh, device challenges): per
//! account and per client address.
//!
//! Limits use `governor`'s GCRA, not a fixed window, which would let twice the limit through at a
//! window edge: the burst is the per-minute limit, and one attempt comes back every 60 s / limit.
//! Logins and device challenges are limited per client address; refreshes per address first, then
//! per refresh token.

use std::time::Duration;

/// Attempt limits per key (an account, a client address): `governor`'s generic cell rate
/// algorithm, a burst of `limit` attempts and then one more every `window / limit`, so that no
/// window edge lets twice the limit through.
///
/// A refusal answers the seconds until one more attempt is allowed (`Retry-After`), not until a
/// whole window reopens. A limit of 0 refuses every attempt.
pub struct RateLimiter {
    /// `None` for a limit of 0.
    cells: Option<governor::DefaultKeyedRateLimiter<String>>,
    window: Duration,
}

/// Keys kept before the limiter forgets the keys whose attempts have all been replenished.
const RATE_LIMITER_KEYS: usize = 10_000;

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        let cells = std::num::NonZeroU32::new(limit).map(|burst| {
            let period = (window / burst.get()).max(Duration::from_nanos(1));
            let quota = governor::Quota::with_period(period).expect("a period above zero").allow_burst(burst);
            governor::RateLimiter::keyed(quota)
        });
        Self { cells, window }
    }

    /// Counts an attempt under `key`; refuses it with the seconds until the next one is allowed.
    pub fn attempt(&self, key: &str) -> Result<(), u64> {
        use governor::clock::{Clock, DefaultClock};
        let Some(cells) = &self.cells else {
            return Err(self.window.as_secs().max(1));
        };
        if cells.len() > RATE_LIMITER_KEYS {
            cells.retain_recent();
        }
        cells
            .check_key(&key.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
            })
            .map_err(|seconds| seconds.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_has_its_burst_then_waits_its_share_of_the_window_and_other_keys_are_untouched() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(limiter.attempt("a"), Ok(()));
        }
        let wait = limiter.attempt("a").unwrap_err();
        assert!((1..=20).contains(&wait), "one more after a third of the window, not {wait} s");
        assert_eq!(limiter.attempt("b"), Ok(()), "another key has its own cells");
        let fast = RateLimiter::new(2, Duration::from_millis(100));
        assert_eq!(fast.attempt("a"), Ok(()));
        assert_eq!(fast.attempt("a"), Ok(()));
        assert_eq!(fast.attempt("a"), Err(1), "a wait under a second is still answered as one");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(fast.attempt("a"), Ok(()), "a cell is back after window / limit");
        assert_eq!(RateLimiter::new(0, Duration::from_secs(60)).attempt("a"), Err(60), "a limit of 0 refuses all");
    }
}
