//! A token bucket that may go into debt (docs/adr/0004-security.md §8): a request larger than
//! the bucket still passes, and the wait it causes falls on the requests after it, so the
//! long-run rate is exact whatever the request sizes.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Burst allowance: this much of a second's rate may pass at once.
const BURST: Duration = Duration::from_millis(100);

pub struct Bucket {
    state: Mutex<State>,
}

struct State {
    /// Units per second; 0 is unlimited.
    rate: u64,
    /// Units available now; negative is debt.
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(rate: u64) -> Bucket {
        Bucket {
            state: Mutex::new(State {
                rate,
                tokens: capacity(rate),
                at: Instant::now(),
            }),
        }
    }

    /// Changes the rate; what is in the bucket is kept up to the new capacity.
    pub fn set_rate(&self, rate: u64) {
        let mut state = self.state.lock();
        state.refill(Instant::now());
        state.rate = rate;
        state.tokens = state.tokens.min(capacity(rate));
    }

    pub fn rate(&self) -> u64 {
        self.state.lock().rate
    }

    /// Takes `n` units, going into debt if needed, and says how long the caller should wait
    /// before going on so that it keeps to the rate (zero while the bucket holds enough).
    pub fn take(&self, n: u64) -> Duration {
        let mut state = self.state.lock();
        if state.rate == 0 {
            return Duration::ZERO;
        }
        state.refill(Instant::now());
        state.tokens -= n as f64;
        state.debt()
    }

    /// How long until the bucket is out of debt (zero when it is not in debt).
    pub fn debt(&self) -> Duration {
        let mut state = self.state.lock();
        if state.rate == 0 {
            return Duration::ZERO;
        }
        state.refill(Instant::now());
        state.debt()
    }

    /// Takes `n` units unless the bucket is in debt, else says how long until it is not.
    /// For callers that refuse rather than wait (unary and REST publishes).
    pub fn try_take(&self, n: u64) -> Result<(), Duration> {
        let mut state = self.state.lock();
        if state.rate == 0 {
            return Ok(());
        }
        state.refill(Instant::now());
        if state.tokens < 0.0 {
            return Err(state.debt());
        }
        state.tokens -= n as f64;
        Ok(())
    }
}

impl State {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(capacity(self.rate));
    }

    /// How long until the debt is paid off.
    fn debt(&self) -> Duration {
        if self.tokens >= 0.0 || self.rate == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate as f64)
        }
    }
}

fn capacity(rate: u64) -> f64 {
    (rate as f64 * BURST.as_secs_f64()).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_long_run_rate_is_exact_whatever_the_request_sizes() {
        let bucket = Bucket::new(1000);
        let start = Instant::now();
        // 10 000 units in requests of 700 (larger than the 100-unit burst): each waits what it
        // owes, so the whole takes 10 s less the initial burst.
        let mut sent = 0;
        while sent < 10_000 {
            tokio::time::sleep(bucket.take(700)).await;
            sent += 700;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let expected = (sent as f64 - 100.0) / 1000.0;
        assert!((elapsed - expected).abs() < 0.01, "{elapsed} vs {expected}");
    }

    #[tokio::test(start_paused = true)]
    async fn try_take_refuses_only_in_debt_and_says_for_how_long() {
        let bucket = Bucket::new(1000);
        assert!(bucket.try_take(600).is_ok(), "an oversized request passes");
        let wait = bucket.try_take(1).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        tokio::time::advance(wait).await;
        assert!(bucket.try_take(1).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn zero_is_unlimited_and_the_rate_can_change() {
        let bucket = Bucket::new(0);
        assert_eq!(bucket.take(u64::MAX / 2), Duration::ZERO);
        bucket.set_rate(10);
        assert_eq!(bucket.take(11), Duration::from_millis(1000));
        bucket.set_rate(0);
        assert!(bucket.try_take(5).is_ok());
    }
}
