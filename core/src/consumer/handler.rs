//! The handler loop of a queue consumer: [`QueueConsumer::run`] here, and the same semantics in
//! every SDK (Go `QueueConsumer.Run`, Java `QueueConsumer.listen`, Python `QueueConsumer.run`;
//! docs/sdk-conformance.md, C26):
//!
//! - the handler gets each delivery, at most `concurrency` at once;
//! - it succeeds: the delivery is acked;
//! - it fails: the delivery is nacked with [`retry_delay`] of its attempt, so it comes back after
//!   `retry_backoff`, doubled at each later failure, at most `max_retry_backoff`; after the
//!   subscription's `max_deliveries` attempts the broker dead-letters it;
//! - the loop stops when asked or when the consumer ends; deliveries being handled then finish
//!   (and are acked or nacked), and pending acks are flushed, before it returns.
//!
//! The bindings compute their delays with this module's [`retry_delay`], through their FFI.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::queue::{QueueConsumer, QueueMessage};
use crate::defaults;
use crate::error::{Error, Result};

/// How long one wait for deliveries lasts before the loop checks again whether to stop.
const POLL_WAIT: Duration = Duration::from_secs(1);

/// The delay before a delivery whose handler failed comes back: `retry_backoff` at its first
/// attempt, doubled at each later one, at most `max_retry_backoff`. A zero duration takes the
/// default ([`defaults::HANDLER_RETRY_BACKOFF`], [`defaults::HANDLER_MAX_RETRY_BACKOFF`]).
pub fn retry_delay(attempt: u32, retry_backoff: Duration, max_retry_backoff: Duration) -> Duration {
    let base = or_default(retry_backoff, defaults::HANDLER_RETRY_BACKOFF);
    let max = or_default(max_retry_backoff, defaults::HANDLER_MAX_RETRY_BACKOFF);
    let doublings = attempt.saturating_sub(1).min(31);
    base.saturating_mul(1 << doublings).min(max)
}

fn or_default(value: Duration, default: Duration) -> Duration {
    if value.is_zero() { default } else { value }
}

/// How [`QueueConsumer::run`] handles deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunConfig {
    /// Deliveries handled at once (at least 1).
    pub concurrency: usize,
    /// The delay before a failed delivery comes back, at its first failure (see
    /// [`retry_delay`]).
    pub retry_backoff: Duration,
    /// The longest such delay.
    pub max_retry_backoff: Duration,
}

impl Default for RunConfig {
    fn default() -> RunConfig {
        RunConfig {
            concurrency: defaults::HANDLER_CONCURRENCY,
            retry_backoff: defaults::HANDLER_RETRY_BACKOFF,
            max_retry_backoff: defaults::HANDLER_MAX_RETRY_BACKOFF,
        }
    }
}

impl QueueConsumer {
    /// Calls `handler` on each delivery, at most `config.concurrency` at once, acking those it
    /// handles and nacking those it fails with [`retry_delay`] (see the module docs), until
    /// `stop` completes or the consumer ends. Deliveries being handled then finish first, and
    /// pending acks are flushed.
    ///
    /// Returns `Ok` when `stop` completed or the consumer was closed; the error that ended the
    /// subscription otherwise.
    pub async fn run<F, Fut, E>(
        &self,
        config: RunConfig,
        stop: impl Future<Output = ()>,
        handler: F,
    ) -> Result<()>
    where
        F: Fn(QueueMessage) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
        E: Display,
    {
        if config.concurrency == 0 {
            return Err(Error::invalid("run needs concurrency >= 1"));
        }
        let mut running = FuturesUnordered::new();
        let handle = |delivery: QueueMessage| {
            let (receipt, attempt) = (delivery.receipt, delivery.attempt);
            let outcome = handler(delivery);
            async move { (receipt, attempt, outcome.await) }
        };
        tokio::pin!(stop);
        let ended = loop {
            let free = config.concurrency - running.len();
            tokio::select! {
                () = &mut stop => break Ok(()),
                Some((receipt, attempt, outcome)) = running.next(), if !running.is_empty() => {
                    self.settle(&config, &receipt, attempt, outcome)?;
                }
                polled = self.poll(free, POLL_WAIT), if free > 0 => match polled {
                    Ok(deliveries) => running.extend(deliveries.into_iter().map(handle)),
                    Err(Error::Closed { .. }) => break Ok(()),
                    Err(err) => break Err(err),
                },
            }
        };
        while let Some((receipt, attempt, outcome)) = running.next().await {
            self.settle(&config, &receipt, attempt, outcome)?;
        }
        match self.flush().await {
            Ok(()) | Err(Error::Closed { .. }) => ended,
            Err(err) => Err(err),
        }
    }

    /// Acks a handled delivery, or nacks a failed one with its retry delay.
    fn settle<E: Display>(
        &self,
        config: &RunConfig,
        receipt: &super::queue::Receipt,
        attempt: u32,
        outcome: std::result::Result<(), E>,
    ) -> Result<()> {
        let settled = match outcome {
            Ok(()) => self.ack(receipt),
            Err(err) => {
                let delay = retry_delay(attempt, config.retry_backoff, config.max_retry_backoff);
                tracing::debug!(attempt, ?delay, error = %err, "queue handler failed; nacked");
                self.nack(receipt, delay)
            }
        };
        match settled {
            Err(Error::Closed { .. }) => Ok(()), // closed meanwhile: the delivery comes back
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_delay_doubles_per_attempt_up_to_its_maximum() {
        let (base, max) = (Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<_> = (1..=5).map(|a| retry_delay(a, base, max)).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(delays, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        assert_eq!(
            retry_delay(0, base, max),
            base,
            "attempt 0 is treated as the first"
        );
        assert_eq!(retry_delay(u32::MAX, base, max), max, "no overflow");
        let defaults = retry_delay(2, Duration::ZERO, Duration::ZERO);
        assert_eq!(defaults, defaults::HANDLER_RETRY_BACKOFF * 2);
    }
}
