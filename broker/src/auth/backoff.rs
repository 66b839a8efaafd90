//! Failed logins back off per `(peer IP, tenant, user)` (docs/adr/0004-security.md §5).
//!
//! The first [`FREE_FAILURES`] failures of a key cost nothing more than the failure; each one
//! after that closes the key for [`FIRST_DELAY`], doubled per further failure up to
//! [`MAX_DELAY`]. While a key is closed its logins are refused with `RESOURCE_EXHAUSTED` and a
//! retry hint, before any password is checked, even when the password is right. A success
//! clears the key. The IP is part of the key, so guessing from one address cannot lock a user
//! out of every other address.
//!
//! The keys live in an `lru` map bounded by [`MAX_KEYS`]: an attacker with more addresses than
//! that can push keys out, which costs them nothing they did not already have (each address
//! starts with free failures anyway).

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use lru::LruCache;
use parking_lot::Mutex;
use rapidmq_proto::ErrorCode;

use crate::error::{Error, Result};

/// Failures of a key that are not followed by a backoff.
pub const FREE_FAILURES: u32 = 5;
/// The backoff after the first failure past the free ones.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest backoff.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// Keys remembered at once.
pub const MAX_KEYS: usize = 16_384;

/// Who is logging in, as far as backoff is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoginKey {
    ip: IpAddr,
    tenant: String,
    user: String,
}

impl LoginKey {
    /// `ip` is `None` when the socket does not know its peer; such logins share one key.
    pub fn new(ip: Option<IpAddr>, tenant: &str, user: &str) -> LoginKey {
        LoginKey {
            ip: ip.map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |ip| ip.to_canonical()),
            tenant: tenant.to_string(),
            user: user.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    closed_until: Option<Instant>,
}

/// The failures of recent keys.
pub struct LoginBackoff {
    keys: Mutex<LruCache<LoginKey, Failures>>,
}

impl Default for LoginBackoff {
    fn default() -> Self {
        LoginBackoff::new(MAX_KEYS)
    }
}

impl LoginBackoff {
    pub fn new(max_keys: usize) -> LoginBackoff {
        LoginBackoff {
            keys: Mutex::new(LruCache::new(
                NonZeroUsize::new(max_keys).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// `RESOURCE_EXHAUSTED`, with how long to wait, while `key` is backing off.
    pub fn check(&self, key: &LoginKey, now: Instant) -> Result<()> {
        let closed_until = self.keys.lock().peek(key).and_then(|f| f.closed_until);
        match closed_until {
            Some(until) if until > now => Err(Error::new(
                ErrorCode::ResourceExhausted,
                "too many failed logins for this user from this address; retry after the hint",
            )
            .with_retry_after(until - now)),
            _ => Ok(()),
        }
    }

    /// Counts a failed login of `key`; returns the backoff it starts, if any.
    pub fn failed(&self, key: LoginKey, now: Instant) -> Option<Duration> {
        let mut keys = self.keys.lock();
        let failures = keys.get_or_insert_mut(key, || Failures {
            count: 0,
            closed_until: None,
        });
        failures.count = failures.count.saturating_add(1);
        let delay = delay_after(failures.count)?;
        failures.closed_until = Some(now + delay);
        Some(delay)
    }

    /// A successful login of `key` forgets its failures.
    pub fn succeeded(&self, key: &LoginKey) {
        self.keys.lock().pop(key);
    }
}

/// The backoff after the `count`th failure in a row.
fn delay_after(count: u32) -> Option<Duration> {
    let past_free = count.checked_sub(FREE_FAILURES)?.checked_sub(1)?;
    let factor = 1u32.checked_shl(past_free.min(31)).unwrap_or(u32::MAX);
    Some(FIRST_DELAY.saturating_mul(factor).min(MAX_DELAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str) -> LoginKey {
        LoginKey::new(Some(ip.parse().unwrap()), "default", "alice")
    }

    #[test]
    fn five_failures_are_free_then_the_backoff_doubles_up_to_a_minute() {
        let delays: Vec<_> = (1..=14).map(delay_after).collect();
        assert_eq!(&delays[..5], &[None; 5]);
        let secs: Vec<_> = delays[5..].iter().map(|d| d.unwrap().as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(delay_after(u32::MAX), Some(MAX_DELAY));
    }

    #[test]
    fn a_backed_off_key_is_refused_with_a_hint_until_its_time_and_a_success_resets_it() {
        let backoff = LoginBackoff::default();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(backoff.failed(key("10.0.0.1"), now), None);
            backoff.check(&key("10.0.0.1"), now).unwrap();
        }
        assert_eq!(backoff.failed(key("10.0.0.1"), now), Some(FIRST_DELAY));
        let refused = backoff.check(&key("10.0.0.1"), now).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::ResourceExhausted);
        assert_eq!(refused.retry_after(), Some(FIRST_DELAY));
        let later = now + Duration::from_millis(400);
        assert_eq!(
            backoff
                .check(&key("10.0.0.1"), later)
                .unwrap_err()
                .retry_after(),
            Some(Duration::from_millis(600))
        );
        // Another address, or another user from the same address, is not affected.
        backoff.check(&key("10.0.0.2"), now).unwrap();
        backoff
            .check(
                &LoginKey::new(Some("10.0.0.1".parse().unwrap()), "default", "bob"),
                now,
            )
            .unwrap();
        // The backoff passes; the next failure doubles it; a success clears it all.
        let after = now + FIRST_DELAY;
        backoff.check(&key("10.0.0.1"), after).unwrap();
        assert_eq!(
            backoff.failed(key("10.0.0.1"), after),
            Some(FIRST_DELAY * 2)
        );
        backoff.succeeded(&key("10.0.0.1"));
        backoff.check(&key("10.0.0.1"), after).unwrap();
        assert_eq!(backoff.failed(key("10.0.0.1"), after), None);
    }

    #[test]
    fn an_ipv4_mapped_address_is_the_same_key_as_its_ipv4_address() {
        assert_eq!(key("::ffff:10.0.0.1"), key("10.0.0.1"));
    }
}
