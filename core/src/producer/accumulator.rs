//! Per-partition batching: the pure part of the producer, with no I/O, so it is unit-tested.
//!
//! Each partition has a queue of batches. A message joins the last batch of its partition when it
//! fits (count and encoded bytes), or starts a new one. A partition's front batch is *ready* when
//! it is full, when a later batch exists, when its linger has passed, or when a flush is pending.
//! A partition sends up to `max_in_flight_per_partition` batches at a time (see the producer
//! docs); while its window is full, its next batch keeps filling.

use std::collections::VecDeque;
use std::time::Duration;

use rand::Rng;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::receipt::Reply;
use crate::types::Message;

/// A message waiting for its batch to be acknowledged.
pub(crate) struct Pending {
    pub(crate) message: Message,
    pub(crate) timestamp_ms: i64,
    pub(crate) size: usize,
    /// Whether the broker will schedule it rather than append it (see `placement.rs`).
    pub(crate) delayed: bool,
    pub(crate) reply: Option<Reply>,
    /// The buffer slot it holds until it completes (released per batch, see `Owner::pop`).
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

impl Pending {
    pub(crate) fn new(
        message: Message,
        timestamp_ms: i64,
        reply: Option<Reply>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Pending {
        let size = encoded_size(&message);
        Pending {
            delayed: message.is_delayed(),
            message,
            timestamp_ms,
            size,
            reply,
            permit,
        }
    }
}

/// The encoded size of a message inside a batch, close enough for batch limits.
pub(crate) fn encoded_size(message: &Message) -> usize {
    let key = message.key.as_ref().map_or(0, |k| k.len() + 6);
    let headers: usize = message
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.len() + 12)
        .sum();
    key + message.value.len() + headers + 24
}

/// A batch being filled or waiting to be sent.
pub(crate) struct Batch {
    pub(crate) messages: Vec<Pending>,
    pub(crate) bytes: usize,
    pub(crate) created: Instant,
}

/// Batching limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) linger: Duration,
    pub(crate) max_messages: usize,
    pub(crate) max_bytes: usize,
}

#[derive(Default)]
pub(crate) struct PartitionQueue {
    pub(crate) batches: VecDeque<Batch>,
    /// The partition cannot send now (its in-flight window is full, or it is recovering).
    pub(crate) blocked: bool,
}

pub(crate) struct Accumulator {
    pub(crate) partitions: Vec<PartitionQueue>,
    limits: Limits,
    sticky: u32,
}

impl Accumulator {
    pub(crate) fn new(partitions: u32, limits: Limits) -> Accumulator {
        let mut acc = Accumulator {
            partitions: (0..partitions.max(1))
                .map(|_| PartitionQueue::default())
                .collect(),
            limits,
            sticky: 0,
        };
        acc.sticky = acc.random_partition();
        acc
    }

    fn random_partition(&self) -> u32 {
        rand::rng().random_range(0..self.partitions.len() as u32)
    }

    /// The partition of a message: the shared key function, or the sticky partition.
    pub(crate) fn partition_for(&self, message: &Message) -> u32 {
        match &message.key {
            Some(key) => rapidmq_proto::partition_for_key(key, self.partitions.len() as u32),
            None => self.sticky,
        }
    }

    /// Moves the sticky partition on once the batch it was filling is closed, so keyless messages
    /// make whole batches per partition.
    fn rotate_sticky(&mut self) {
        let n = self.partitions.len() as u32;
        if n > 1 {
            let next = rand::rng().random_range(0..n - 1);
            self.sticky = if next >= self.sticky { next + 1 } else { next };
        }
    }

    fn is_full(&self, batch: &Batch) -> bool {
        batch.messages.len() >= self.limits.max_messages || batch.bytes >= self.limits.max_bytes
    }

    /// Appends a message to its partition.
    pub(crate) fn append(&mut self, partition: u32, pending: Pending, now: Instant) {
        let keyless = pending.message.key.is_none();
        let limits = self.limits;
        let queue = &mut self.partitions[partition as usize];
        let fits = queue.batches.back().is_some_and(|b| {
            b.messages.len() < limits.max_messages
                && (b.messages.is_empty() || b.bytes + pending.size <= limits.max_bytes)
        });
        if !fits {
            queue.batches.push_back(Batch {
                messages: Vec::with_capacity(limits.max_messages.min(1024)),
                bytes: 0,
                created: now,
            });
        }
        let batch = queue.batches.back_mut().expect("a batch was just ensured");
        batch.bytes += pending.size;
        batch.messages.push(pending);
        let full = batch.messages.len() >= limits.max_messages || batch.bytes >= limits.max_bytes;
        if keyless && partition == self.sticky && full {
            self.rotate_sticky();
        }
    }

    /// Whether `partition` has a batch to send now.
    pub(crate) fn is_ready(&self, partition: u32, now: Instant, flushing: bool) -> bool {
        let queue = &self.partitions[partition as usize];
        match queue.batches.front() {
            None => false,
            Some(front) => {
                flushing
                    || queue.batches.len() > 1
                    || self.is_full(front)
                    || now >= front.created + self.limits.linger
            }
        }
    }

    /// Takes the front batch of `partition` to send it.
    pub(crate) fn take(&mut self, partition: u32) -> Option<Batch> {
        let batch = self.partitions[partition as usize].batches.pop_front();
        if batch.is_some() && partition == self.sticky {
            self.rotate_sticky();
        }
        batch
    }

    /// The earliest linger deadline of a partition that could send (not blocked).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.partitions
            .iter()
            .filter(|q| !q.blocked)
            .filter_map(|q| q.batches.front())
            .map(|b| b.created + self.limits.linger)
            .min()
    }

    /// Messages waiting in batches (not in flight).
    #[cfg(test)]
    pub(crate) fn queued_messages(&self) -> usize {
        self.partitions
            .iter()
            .flat_map(|q| q.batches.iter())
            .map(|b| b.messages.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_messages: usize, max_bytes: usize) -> Limits {
        Limits {
            linger: Duration::from_millis(5),
            max_messages,
            max_bytes,
        }
    }

    fn pending(message: Message) -> Pending {
        Pending::new(message, 0, None, None)
    }

    #[test]
    fn batch_becomes_ready_when_full_before_linger() {
        let mut acc = Accumulator::new(1, limits(3, 1 << 20));
        let now = Instant::now();
        for _ in 0..2 {
            acc.append(0, pending(Message::new("x")), now);
        }
        assert!(!acc.is_ready(0, now, false));
        acc.append(0, pending(Message::new("x")), now);
        assert!(acc.is_ready(0, now, false));
        assert_eq!(acc.take(0).map(|b| b.messages.len()), Some(3));
    }

    #[test]
    fn batch_becomes_ready_after_linger_or_on_flush() {
        let mut acc = Accumulator::new(1, limits(100, 1 << 20));
        let now = Instant::now();
        acc.append(0, pending(Message::new("x")), now);
        assert!(!acc.is_ready(0, now, false));
        assert!(acc.is_ready(0, now, true));
        assert!(acc.is_ready(0, now + Duration::from_millis(5), false));
        assert_eq!(acc.next_deadline(), Some(now + Duration::from_millis(5)));
    }

    #[test]
    fn byte_limit_starts_a_new_batch_and_a_single_large_message_still_goes() {
        let mut acc = Accumulator::new(1, limits(100, 100));
        let now = Instant::now();
        acc.append(0, pending(Message::new(vec![0u8; 40])), now);
        acc.append(0, pending(Message::new(vec![0u8; 40])), now);
        assert_eq!(acc.partitions[0].batches.len(), 2);
        acc.append(0, pending(Message::new(vec![0u8; 500])), now);
        assert_eq!(acc.partitions[0].batches.len(), 3);
        assert_eq!(acc.queued_messages(), 3);
    }

    #[test]
    fn keyed_messages_use_the_shared_partition_function() {
        let acc = Accumulator::new(8, limits(10, 1 << 20));
        let message = Message::new("v").with_key("order-42");
        assert_eq!(
            acc.partition_for(&message),
            rapidmq_proto::partition_for_key(b"order-42", 8)
        );
    }

    #[test]
    fn keyless_messages_stick_to_one_partition_per_batch() {
        let mut acc = Accumulator::new(4, limits(10, 1 << 20));
        let now = Instant::now();
        let mut partitions = Vec::new();
        for _ in 0..40 {
            let message = Message::new("v");
            let p = acc.partition_for(&message);
            partitions.push(p);
            acc.append(p, pending(message), now);
        }
        // Each run of ten consecutive messages (one batch) went to one partition, and the sticky
        // partition moved after each full batch.
        for chunk in partitions.chunks(10) {
            assert!(chunk.iter().all(|&p| p == chunk[0]), "{partitions:?}");
        }
        for pair in partitions.chunks(10).collect::<Vec<_>>().windows(2) {
            assert_ne!(pair[0][0], pair[1][0]);
        }
    }
}
