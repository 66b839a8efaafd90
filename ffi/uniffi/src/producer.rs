//! `NativeProducer` and `NativeSendReceipt`: sends go straight to the core's batching producer,
//! in the caller's order; a receipt resolves when the core reports its batch's outcome.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::FutureExt;
use futures::future::Shared;
use rapidmq_core::{self as core, ErrorCode, Runtime};

use crate::error::Result;
use crate::runtime::{block_on, on_runtime};
use crate::types::{Delivery, OutgoingMessage, ProducerStats};

/// Publishes to one topic through the core producer (batching, idempotence, retries).
#[derive(uniffi::Object)]
pub struct NativeProducer {
    core: core::Producer,
    runtime: Runtime,
}

impl NativeProducer {
    pub(crate) fn new(core: core::Producer, runtime: Runtime) -> NativeProducer {
        NativeProducer { core, runtime }
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
        let message = core::Message::from(message);
        let receipt = match self.core.try_send(message.clone()) {
            Ok(receipt) => receipt,
            Err(err) if err.code() == ErrorCode::ResourceExhausted => {
                let producer = self.core.clone();
                block_on(&self.runtime, async move { producer.send(message).await })?
            }
            Err(err) => return Err(err.into()),
        };
        Ok(Arc::new(NativeSendReceipt {
            inner: receipt.shared(),
            runtime: self.runtime.clone(),
        }))
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
