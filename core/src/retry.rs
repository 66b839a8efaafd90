//! Retries: exponential backoff with full jitter, bounded by a retry budget (a retry count and a
//! total time per request, from [`RetryPolicy`]). Only retriable errors are retried, and never
//! sooner than the broker asked (`retry-after-ms` on an overloaded broker's
//! `RESOURCE_EXHAUSTED`).

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::config::RetryPolicy;
use crate::error::{Error, Result};

/// The backoff state of one request.
#[derive(Debug)]
pub(crate) struct Backoff {
    policy: RetryPolicy,
    retries: u32,
    started: Instant,
}

impl Backoff {
    pub(crate) fn new(policy: RetryPolicy) -> Backoff {
        Backoff {
            policy,
            retries: 0,
            started: Instant::now(),
        }
    }

    /// The ceiling of the next delay: `initial * 2^retries`, capped at `max_backoff`.
    fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.retries.min(20)).unwrap_or(u32::MAX);
        self.policy
            .initial_backoff
            .saturating_mul(factor)
            .min(self.policy.max_backoff)
    }

    /// The delay before retrying after `err`: uniformly in `[0, ceiling]` (full jitter), but at
    /// least the broker's retry hint; `None` when the budget (retry count or total time) is
    /// spent. A tenant quota's refusal is throttling, not failure: it waits the hint and spends
    /// no retry, bounded by the total time only.
    pub(crate) fn next_delay(&mut self, err: &Error) -> Option<Duration> {
        if err.quota().is_some() {
            let delay = err.retry_after().unwrap_or(self.policy.initial_backoff);
            return (self.started.elapsed() + delay <= self.policy.delivery_timeout)
                .then_some(delay);
        }
        if self.retries >= self.policy.max_retries {
            return None;
        }
        let ceiling = self.ceiling();
        let jittered = if ceiling.is_zero() {
            ceiling
        } else {
            rand::rng().random_range(Duration::ZERO..=ceiling)
        };
        let delay = jittered.max(err.retry_after().unwrap_or_default());
        if self.started.elapsed() + delay > self.policy.delivery_timeout {
            return None;
        }
        self.retries += 1;
        Some(delay)
    }

    /// A delay for loops that never give up (consumer reconnects): the same jittered backoff
    /// without the budget.
    pub(crate) fn next_unbounded_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.retries = self.retries.saturating_add(1);
        if ceiling.is_zero() {
            ceiling
        } else {
            rand::rng().random_range(Duration::ZERO..=ceiling)
        }
    }
}

/// Runs `op` until it succeeds, fails with a non-retriable error, or the budget is spent; calls
/// `on_retry` before each retry. The last error is returned as it is.
pub(crate) async fn with_retries<T, F, Fut>(
    policy: RetryPolicy,
    mut on_retry: impl FnMut(&Error),
    mut op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut backoff = Backoff::new(policy);
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(err) if err.is_retriable() => match backoff.next_delay(&err) {
                Some(delay) => {
                    tracing::debug!(cause = %err, ?delay, "retrying");
                    on_retry(&err);
                    tokio::time::sleep(delay).await;
                }
                None => return Err(err),
            },
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rapidmq_proto::ErrorCode;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(80),
            max_retries,
            delivery_timeout: Duration::from_secs(3600),
        }
    }

    #[test]
    fn backoff_ceiling_doubles_up_to_the_maximum_and_jitter_stays_below_it() {
        let mut backoff = Backoff::new(policy(100));
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            let ceiling = backoff.ceiling();
            ceilings.push(ceiling.as_millis());
            let delay = backoff.next_delay(&busy(None)).expect("within budget");
            assert!(delay <= ceiling);
        }
        assert_eq!(ceilings, [10, 20, 40, 80, 80, 80]);
    }

    #[test]
    fn budget_stops_after_max_retries() {
        let mut backoff = Backoff::new(policy(2));
        assert!(backoff.next_delay(&busy(None)).is_some());
        assert!(backoff.next_delay(&busy(None)).is_some());
        assert!(backoff.next_delay(&busy(None)).is_none());
    }

    fn busy(retry_after: Option<Duration>) -> Error {
        Error::Broker {
            code: ErrorCode::ResourceExhausted,
            message: "busy".into(),
            retriable: true,
            retry_after,
            quota: None,
        }
    }

    #[test]
    fn a_quota_refusal_waits_its_hint_without_spending_retries() {
        let mut backoff = Backoff::new(policy(1));
        let throttled = Error::Broker {
            code: ErrorCode::ResourceExhausted,
            message: "over quota".into(),
            retriable: true,
            retry_after: Some(Duration::from_millis(7)),
            quota: Some("publish_bytes_per_sec".into()),
        };
        for _ in 0..10 {
            assert_eq!(
                backoff.next_delay(&throttled),
                Some(Duration::from_millis(7))
            );
        }
        assert!(
            backoff.next_delay(&busy(None)).is_some(),
            "the one retry is still there"
        );
        assert!(backoff.next_delay(&busy(None)).is_none());
    }

    #[test]
    fn the_broker_s_retry_hint_is_a_floor_under_the_jitter() {
        let mut backoff = Backoff::new(policy(100));
        for _ in 0..20 {
            let delay = backoff
                .next_delay(&busy(Some(Duration::from_millis(300))))
                .expect("within budget");
            assert!(delay >= Duration::from_millis(300), "{delay:?}");
        }
    }

    #[test]
    fn a_hint_beyond_the_delivery_timeout_spends_the_budget() {
        let mut backoff = Backoff::new(RetryPolicy {
            delivery_timeout: Duration::from_secs(1),
            ..policy(100)
        });
        assert!(
            backoff
                .next_delay(&busy(Some(Duration::from_secs(5))))
                .is_none()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_overloaded_broker_is_retried_after_its_hint() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let result: Result<u32> = with_retries(
            policy(5),
            |_| {},
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < 2 {
                    Err(busy(Some(Duration::from_millis(500))))
                } else {
                    Ok(n)
                }
            },
        )
        .await;
        assert_eq!(result, Ok(2));
        assert!(started.elapsed() >= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn retriable_errors_are_retried_and_others_are_not() {
        let calls = AtomicU32::new(0);
        let result: Result<u32> = with_retries(
            policy(5),
            |_| {},
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < 3 {
                    Err(Error::unavailable("down"))
                } else {
                    Ok(n)
                }
            },
        )
        .await;
        assert_eq!(result, Ok(3));

        let calls = AtomicU32::new(0);
        let result: Result<()> = with_retries(
            policy(5),
            |_| {},
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::Broker {
                    code: ErrorCode::MessageTooLarge,
                    message: "big".into(),
                    retriable: false,
                    retry_after: None,
                    quota: None,
                })
            },
        )
        .await;
        assert_eq!(
            result.map_err(|e| e.code()),
            Err(ErrorCode::MessageTooLarge)
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
