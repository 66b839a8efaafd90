//! `NativeProducer`: sends go to the core's batching producer, many per call and in the
//! caller's order; their outcomes come back many per call.
//!
//! Every send carries an id the caller chose. `send_batch_tracked` queues a whole list in one
//! call (ids `first_id..`), waiting in the core while its buffer is full, like the C ABI's
//! `rapidmq_producer_send_batch_to`; `try_send_tracked` queues one without waiting. The core
//! pushes each outcome into its completion queue ([`core::Completions`]) when the batch
//! completes, with no task per message, and `next_completions` takes them out in batches. The
//! Java facade (`io.rapidmq.NativeSends`) drives both, so a producer pays one native call per
//! batch of sends and one per batch of outcomes, not per message.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rapidmq_core::{self as core, Runtime};

use crate::error::{ErrorInfo, Result};
use crate::packed::{Packed, unpack_messages};
use crate::runtime::{block_on, on_runtime};
use crate::types::{Delivery, OutgoingMessage, Payload, ProducerStats};

/// The outcome of one tracked send: exactly one of `delivery` and `error` is set.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SendCompletion {
    /// The id the send was tracked with.
    pub id: u64,
    /// Where the message was stored.
    pub delivery: Option<Delivery>,
    /// Why it was not.
    pub error: Option<ErrorInfo>,
}

/// Outcomes of tracked sends, in the order they completed: all of them packed
/// (`packed.rs`), and the failed ones also in full, in the same order.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CompletionBatch {
    /// Every outcome: deliveries in place, failures as a mark for the next of `failed`.
    pub packed: Packed,
    /// The failed sends.
    pub failed: Vec<SendCompletion>,
}

/// What `send_batch_tracked` queued: the first `queued` messages, in order, whose outcomes come
/// through `next_completions`; when `error` is set, message `queued` failed with it and it and
/// every later message were not queued (no outcome comes for them).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BatchQueued {
    /// How many messages were queued, from the first.
    pub queued: u32,
    /// Why message `queued` was not: a closed producer (`CLOSED`), an invalid message
    /// (`INVALID_ARGUMENT`, e.g. a timestamp out of range).
    pub error: Option<ErrorInfo>,
}

/// Publishes to one topic through the core producer (batching, idempotence, retries).
#[derive(uniffi::Object)]
pub struct NativeProducer {
    core: core::Producer,
    runtime: Runtime,
    /// Outcomes of tracked sends, until `next_completions` takes them.
    completions: Arc<core::Completions>,
}

impl NativeProducer {
    pub(crate) fn new(core: core::Producer, runtime: Runtime) -> NativeProducer {
        NativeProducer {
            core,
            runtime,
            completions: Arc::new(core::Completions::new()),
        }
    }

    /// Queues `message` for the completion queue under `id`, on the calling thread; waits only
    /// while the buffer is full.
    fn enqueue(&self, message: core::Message, id: u64) -> Result<()> {
        match self.core.try_send_to(message, &self.completions, id)? {
            core::TrySend::Queued => Ok(()),
            core::TrySend::Full(message) => {
                let (producer, completions) = (self.core.clone(), self.completions.clone());
                block_on(&self.runtime, async move {
                    producer.send_to(message, &completions, id).await
                })
            }
        }
    }
}

#[uniffi::export]
impl NativeProducer {
    /// The topic.
    pub fn topic(&self) -> String {
        self.core.topic().to_string()
    }

    /// The topic's partition count.
    pub fn partitions(&self) -> u32 {
        self.core.partitions()
    }

    /// Queues `messages` in one call, in order; message `i`'s outcome is reported by
    /// `next_completions` under `first_id + i`. Blocks the caller only while the producer's
    /// buffer is full, then goes on with the next message. Stops at the first message the
    /// producer refuses (closed, invalid): the messages before it stay queued and report as
    /// usual; that one and the rest are not queued (see [`BatchQueued`]). The messages come
    /// packed by the facade (`packed.rs`); a malformed buffer queues nothing and fails with
    /// `INVALID_ARGUMENT`. The C ABI's `rapidmq_producer_send_batch_to`, without its cancel.
    pub fn send_batch_tracked(&self, first_id: u64, messages: Payload) -> Result<BatchQueued> {
        let messages = unpack_messages(messages.0)?;
        let len = messages.len();
        for (i, message) in messages.into_iter().enumerate() {
            if let Err(err) = self.enqueue(message, first_id + i as u64) {
                return Ok(BatchQueued {
                    queued: i as u32,
                    error: Some(err.into()),
                });
            }
        }
        Ok(BatchQueued {
            queued: len as u32,
            error: None,
        })
    }

    /// Up to `max` outcomes of tracked sends, waiting for the first (the core's completion
    /// queue; no runtime needed, so it is polled directly by the caller). Dropped while
    /// waiting, it takes nothing; the outcomes it returned are the caller's to deliver.
    pub async fn next_completions(&self, max: u32) -> CompletionBatch {
        let taken = self.completions.next(max.max(1) as usize).await;
        let (packed, failed) = Packed::completions(taken);
        CompletionBatch { packed, failed }
    }

    /// Like `send_batch_tracked` for one message, but never waits: false (nothing queued, no
    /// outcome comes) when the producer already buffers `max_buffered_messages`.
    pub fn try_send_tracked(&self, id: u64, message: OutgoingMessage) -> Result<bool> {
        match self
            .core
            .try_send_to(message.into(), &self.completions, id)?
        {
            core::TrySend::Queued => Ok(true),
            core::TrySend::Full(_) => Ok(false),
        }
    }

    /// Sends every batch now and waits until everything sent before completed.
    pub async fn flush(&self) -> Result<()> {
        let producer = self.core.clone();
        on_runtime(&self.runtime, async move { producer.flush().await }).await
    }

    /// Flushes, then stops the producer.
    pub async fn close_async(&self) -> Result<()> {
        let producer = self.core.clone();
        on_runtime(&self.runtime, async move { producer.close().await }).await
    }

    /// The counters so far.
    pub fn stats(&self) -> ProducerStats {
        self.core.stats().into()
    }

    /// Test hook, not API: discard the next `n` successful publish responses as if the ack was
    /// lost, so the retry path can be tested (conformance C06, C19).
    pub fn test_only_lose_acks(&self, n: u32) {
        self.core.faults().lose_acks.store(n, Ordering::SeqCst);
    }
}
