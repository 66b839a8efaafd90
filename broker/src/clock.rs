//! Wall-clock time, in milliseconds since the Unix epoch, from one [`Clock`] the engine holds
//! and hands to what it starts (partition writers, sessions, auth, the audit writer).
//!
//! Everything that stamps or compares wall-clock time (append times, TTL, retention by age,
//! delays, dedup windows, token expiry, audit and flow-event times) asks this clock, so that
//! tests can move time with a [`ManualClock`] and a replicated broker can put its leader's time
//! into log entries instead of each node reading its own. Monotonic durations (ack deadlines,
//! nack delays, timeouts) stay on `Instant`/tokio time.
//!
//! Time is an `i64`: it is what the wire and the stored records use (`int64` timestamps in the
//! protocol, append times in the log index), and differences between two times (an age, a
//! remaining delay) may be negative without a cast. Records that count in `u64` (auth and
//! audit) convert where they are stamped.
//!
//! Uniqueness seeds (nonces, generated ids) read [`SystemClock`] directly: they must differ
//! between runs of the broker whatever clock it was given.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The clock the broker runs on: [`SystemClock`], shared.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// The operating system's wall clock (0 before the epoch).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicI64,
}

impl ManualClock {
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock {
            now_ms: AtomicI64::new(now_ms),
        }
    }

    pub fn set(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }

    pub fn advance(&self, ms: i64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_the_time_since_the_epoch() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let now = SystemClock.now_ms();
        assert!(now >= before && now - before < 60_000, "{now} vs {before}");
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(250);
        assert_eq!(clock.now_ms(), 1_250);
        clock.set(5);
        assert_eq!(clock.now_ms(), 5);
    }
}
