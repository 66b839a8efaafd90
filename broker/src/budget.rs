//! Publish backpressure counted in bytes: one broker-wide budget of publish payload bytes that
//! are accepted but not yet acknowledged, shared by unary gRPC publishes, `PublishStream` and
//! REST. A publish takes its payload's size from the budget before it is queued on its partition
//! and gives it back when its acknowledgement (or error) is ready. A unary or REST publish that
//! does not fit is refused at once with `RESOURCE_EXHAUSTED` and a retry hint, rather than
//! waiting in memory; a `PublishStream` stops reading until its next request fits (refusing it
//! while later requests of the stream go through would reorder a producer's batches).
//!
//! Counting bytes, not requests, is what bounds memory: a thousand 16 MiB requests and a
//! thousand 100-byte ones are not the same load.

use std::sync::Arc;
use std::time::Duration;

use rapidmq_proto::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// How long a refused client is told to wait before retrying. Group commits finish within a
/// few fsyncs, so by then the budget has usually drained.
pub const PUBLISH_RETRY_AFTER: Duration = Duration::from_millis(100);

/// The refusal of a request beyond `limits.max_concurrent_requests` (gRPC and REST), with the
/// same retry hint.
pub fn too_many_requests() -> Error {
    Error::new(
        ErrorCode::ResourceExhausted,
        "the broker is handling too many requests (limits.max_concurrent_requests); retry later",
    )
    .with_retry_after(PUBLISH_RETRY_AFTER)
}

/// The in-flight publish byte budget.
#[derive(Debug, Clone)]
pub struct PublishBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

/// Bytes held by one publish until it is dropped.
#[derive(Debug)]
pub struct PublishPermit(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl PublishBudget {
    pub fn new(total: usize) -> PublishBudget {
        // One acquisition takes at most `u32::MAX` permits.
        let total = total.min(u32::MAX as usize);
        PublishBudget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Takes `bytes` from the budget, or fails with `RESOURCE_EXHAUSTED` (retriable, with a
    /// retry hint) when they are not all free now.
    pub fn try_acquire(&self, bytes: usize) -> Result<PublishPermit> {
        if bytes == 0 {
            return Ok(PublishPermit(None));
        }
        // Config validation keeps the budget at least as large as any request.
        let wanted = u32::try_from(bytes.min(self.total)).unwrap_or(u32::MAX);
        match self.bytes.clone().try_acquire_many_owned(wanted) {
            Ok(permit) => Ok(PublishPermit(Some(permit))),
            Err(_) => Err(Error::new(
                ErrorCode::ResourceExhausted,
                format!(
                    "the broker has {} bytes of publishes in flight (limits.max_inflight_publish_bytes); retry later",
                    self.total - self.bytes.available_permits()
                ),
            )
            .with_retry_after(PUBLISH_RETRY_AFTER)),
        }
    }

    /// Takes `bytes` from the budget, waiting until they are free (for `PublishStream`, whose
    /// requests must be queued in order).
    pub async fn acquire(&self, bytes: usize) -> PublishPermit {
        if bytes == 0 {
            return PublishPermit(None);
        }
        let wanted = u32::try_from(bytes.min(self.total)).unwrap_or(u32::MAX);
        // The semaphore is never closed.
        PublishPermit(self.bytes.clone().acquire_many_owned(wanted).await.ok())
    }

    /// Bytes currently held by publishes in flight.
    pub fn in_flight(&self) -> usize {
        self.total - self.bytes.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_refused_beyond_the_budget_and_returned_on_drop() {
        let budget = PublishBudget::new(100);
        let first = budget.try_acquire(60).unwrap();
        assert_eq!(budget.in_flight(), 60);
        let err = budget.try_acquire(41).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ResourceExhausted);
        assert_eq!(err.retry_after(), Some(PUBLISH_RETRY_AFTER));
        let second = budget.try_acquire(40).unwrap();
        drop(first);
        drop(second);
        assert_eq!(budget.in_flight(), 0);
        assert!(budget.try_acquire(0).is_ok());
    }
}
