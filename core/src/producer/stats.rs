//! Producer counters. They let tests and dashboards see batching and retries without timing.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a producer's counters since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProducerStats {
    /// Messages accepted by `send`.
    pub messages_sent: u64,
    /// Messages acknowledged by the broker.
    pub messages_acked: u64,
    /// Messages whose batch failed.
    pub messages_failed: u64,
    /// Batches handed to the network (each retried as one unit).
    pub batches: u64,
    /// Publish requests sent, first attempts and retries.
    pub requests: u64,
    /// Retries (requests after a retriable failure).
    pub retries: u64,
    /// Batches the broker reported as duplicates of one it already had (lost acks, retries).
    pub duplicates: u64,
    /// The most batches one partition ever had in flight at once (pipelining depth reached).
    pub max_partition_in_flight: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_acked: AtomicU64,
    pub(crate) messages_failed: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) max_partition_in_flight: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ProducerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProducerStats {
            messages_sent: get(&self.messages_sent),
            messages_acked: get(&self.messages_acked),
            messages_failed: get(&self.messages_failed),
            batches: get(&self.batches),
            requests: get(&self.requests),
            retries: get(&self.retries),
            duplicates: get(&self.duplicates),
            max_partition_in_flight: get(&self.max_partition_in_flight),
        }
    }
}
