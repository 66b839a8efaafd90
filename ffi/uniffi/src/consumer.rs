//! `NativeConsumer`: a stream-mode subscription with prefetch, `poll`, acks batched into commits.

use std::time::Duration;

use rapidmq_core::{self as core, Runtime};

use crate::error::Result;
use crate::packed::Packed;
use crate::runtime::on_runtime;
use crate::types::{ConsumerStats, ReceivedMessage};

/// The longest one [`NativeConsumer::poll_wait`] blocks (`Consumer.WAIT_SLICE_NANOS` in Java).
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// A stream-mode subscription.
#[derive(uniffi::Object)]
pub struct NativeConsumer {
    core: core::Consumer,
    runtime: Runtime,
}

impl NativeConsumer {
    pub(crate) fn new(core: core::Consumer, runtime: Runtime) -> NativeConsumer {
        NativeConsumer { core, runtime }
    }
}

#[uniffi::export]
impl NativeConsumer {
    /// The topic.
    pub fn topic(&self) -> String {
        self.core.config().topic.clone()
    }

    /// The subscription name (empty for an ephemeral tail).
    pub fn subscription(&self) -> String {
        self.core.config().subscription.clone()
    }

    /// Up to `max` buffered messages, waiting up to `timeout` for the first; none when none
    /// arrived. Packed into one buffer (`packed.rs`), which `io.rapidmq.Packed` reads. Cancel-safe:
    /// a cancelled poll takes no message out of the buffer.
    pub async fn poll(&self, max: u32, timeout: Duration) -> Result<Packed> {
        let consumer = self.core.clone();
        on_runtime(&self.runtime, async move {
            let messages = consumer.poll(max as usize, timeout).await?;
            Ok(Packed::received(&messages))
        })
        .await
    }

    /// [`NativeConsumer::poll`] on the calling thread, waiting at most [`WAIT_SLICE`] of
    /// `timeout`: the thread waits for the core runtime's notice itself, one wake-up when
    /// messages arrive, where the async call passes through uniffi's continuation and a Java
    /// executor first (with one batch of prefetch, the consumer's fetches wait on that hand-over).
    /// A blocked call cannot be interrupted, so the facade's blocking `poll` waits in these slices
    /// and checks for an interrupt between them.
    pub fn poll_wait(&self, max: u32, timeout: Duration) -> Result<Packed> {
        let messages = self
            .runtime
            .handle()
            .block_on(self.core.poll(max as usize, timeout.min(WAIT_SLICE)))?;
        Ok(Packed::received(&messages))
    }

    /// Acknowledges the message at `offset` on `partition`.
    pub fn ack(&self, partition: u32, offset: u64) -> Result<()> {
        Ok(self.core.ack_offset(partition, offset)?)
    }

    /// Stream mode has no per-message redelivery: always fails with `UnsupportedException`.
    pub fn nack(&self, message: ReceivedMessage, delay: Duration) -> Result<()> {
        Ok(self.core.nack(&message.into(), delay)?)
    }

    /// Sends the acknowledged positions now.
    pub async fn commit(&self) -> Result<()> {
        let consumer = self.core.clone();
        on_runtime(&self.runtime, async move { consumer.commit().await }).await
    }

    /// Commits what was acknowledged and leaves the subscription.
    pub async fn close_async(&self) -> Result<()> {
        let consumer = self.core.clone();
        on_runtime(&self.runtime, async move { consumer.close().await }).await
    }

    /// The partitions this member owns now.
    pub fn assignment(&self) -> Vec<u32> {
        self.core.assignment()
    }

    /// The counters so far.
    pub fn stats(&self) -> ConsumerStats {
        self.core.stats().into()
    }
}
