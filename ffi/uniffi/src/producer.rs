//! `NativeProducer` and `NativeSendReceipt`: sends go straight to the core's batching producer,
//! in the caller's order; a receipt resolves when the core reports its batch's outcome.
//!
//! Two ways to learn the outcome:
//! - a [`NativeSendReceipt`] per send (`send`), awaited or waited on: one object and one call per
//!   message;
//! - tracked sends (`send_tracked`): the caller names each send with an id and collects outcomes
//!   in batches with `next_completions`, one call for many messages. The Java facade's
//!   `sendAsync` uses these, so a producer pays one async call per batch of acknowledgements, not
//!   per message.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::Shared;
use rapidmq_core::{self as core, ErrorCode, Runtime};
use tokio::sync::Notify;

use crate::error::{ErrorInfo, Result};
use crate::runtime::{block_on, on_runtime};
use crate::types::{Delivery, OutgoingMessage, ProducerStats};

/// The outcome of one tracked send: exactly one of `delivery` and `error` is set.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SendCompletion {
    /// The id the caller gave `send_tracked`.
    pub id: u64,
    /// Where the message was stored.
    pub delivery: Option<Delivery>,
    /// Why it was not.
    pub error: Option<ErrorInfo>,
}

/// Outcomes of tracked sends not yet collected.
#[derive(Default)]
struct Completions {
    queue: Mutex<VecDeque<SendCompletion>>,
    ready: Notify,
}

impl Completions {
    fn push(&self, completion: SendCompletion) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(completion);
        self.ready.notify_one();
    }

    /// Up to `max` outcomes, waiting for the first.
    async fn next(&self, max: usize) -> Vec<SendCompletion> {
        loop {
            let ready = self.ready.notified();
            {
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                if !queue.is_empty() {
                    let n = queue.len().min(max.max(1));
                    return queue.drain(..n).collect();
                }
            }
            ready.await;
        }
    }
}

/// Publishes to one topic through the core producer (batching, idempotence, retries).
#[derive(uniffi::Object)]
pub struct NativeProducer {
    core: core::Producer,
    runtime: Runtime,
    completions: Arc<Completions>,
}

impl NativeProducer {
    pub(crate) fn new(core: core::Producer, runtime: Runtime) -> NativeProducer {
        NativeProducer {
            core,
            runtime,
            completions: Arc::default(),
        }
    }

    /// Queues `message`, on the calling thread; waits only while the buffer is full.
    fn enqueue(&self, message: OutgoingMessage) -> Result<core::SendReceipt> {
        let message = core::Message::from(message);
        match self.core.try_send(message.clone()) {
            Ok(receipt) => Ok(receipt),
            Err(err) if err.code() == ErrorCode::ResourceExhausted => {
                let producer = self.core.clone();
                block_on(&self.runtime, async move { producer.send(message).await })
            }
            Err(err) => Err(err.into()),
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

    /// Queues `message` for its partition's batch, on the calling thread so sends keep their
    /// order. Blocks the caller only while the producer's buffer is full.
    pub fn send(&self, message: OutgoingMessage) -> Result<Arc<NativeSendReceipt>> {
        let receipt = self.enqueue(message)?;
        Ok(Arc::new(NativeSendReceipt {
            inner: receipt.shared(),
            runtime: self.runtime.clone(),
        }))
    }

    /// Like `send`, but the outcome is reported by `next_completions` under `id` (every accepted
    /// send reports exactly once, also when the producer is closed).
    pub fn send_tracked(&self, id: u64, message: OutgoingMessage) -> Result<()> {
        let receipt = self.enqueue(message)?;
        let completions = self.completions.clone();
        self.runtime.handle().spawn(async move {
            let completion = match receipt.await {
                Ok(delivery) => SendCompletion {
                    id,
                    delivery: Some(delivery.into()),
                    error: None,
                },
                Err(err) => SendCompletion {
                    id,
                    delivery: None,
                    error: Some(err.into()),
                },
            };
            completions.push(completion);
        });
        Ok(())
    }

    /// Up to `max` outcomes of tracked sends, waiting for the first. Needs no runtime (a lock and
    /// a `Notify`), so it is polled directly by the caller. Dropped while waiting, it takes
    /// nothing; the outcomes it returned are the caller's to deliver.
    pub async fn next_completions(&self, max: u32) -> Vec<SendCompletion> {
        self.completions.next(max as usize).await
    }

    /// Like `send`, but returns `None` instead of waiting when the buffer is full.
    pub fn try_send(&self, message: OutgoingMessage) -> Result<Option<Arc<NativeSendReceipt>>> {
        match self.core.try_send(message.into()) {
            Ok(receipt) => Ok(Some(Arc::new(NativeSendReceipt {
                inner: receipt.shared(),
                runtime: self.runtime.clone(),
            }))),
            Err(err) if err.code() == ErrorCode::ResourceExhausted => Ok(None),
            Err(err) => Err(err.into()),
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

/// The eventual result of one `send`.
#[derive(uniffi::Object)]
pub struct NativeSendReceipt {
    inner: Shared<core::SendReceipt>,
    runtime: Runtime,
}

#[uniffi::export]
impl NativeSendReceipt {
    /// Whether the outcome is known (never blocks).
    pub fn is_done(&self) -> bool {
        self.inner.peek().is_some() || self.inner.clone().now_or_never().is_some()
    }

    /// The delivery, once the batch completed. Dropping (cancelling) the wait leaves the message
    /// in flight; it is sent all the same.
    pub async fn delivery(&self) -> Result<Delivery> {
        let receipt = self.inner.clone();
        on_runtime(
            &self.runtime,
            async move { receipt.await.map(Delivery::from) },
        )
        .await
    }

    /// Blocks the calling thread until the batch completed: the blocking variant of `delivery`,
    /// without a Java future per message.
    pub fn wait_blocking(&self) -> Result<Delivery> {
        if let Some(result) = self.inner.peek() {
            return Ok(result.clone().map(Delivery::from)?);
        }
        let receipt = self.inner.clone();
        block_on(
            &self.runtime,
            async move { receipt.await.map(Delivery::from) },
        )
    }
}
