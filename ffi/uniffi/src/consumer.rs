//! `NativeConsumer`: a stream-mode subscription with prefetch, `poll`, acks batched into commits.

use std::time::Duration;

use rapidmq_core::{self as core, Runtime};

use crate::error::Result;
use crate::runtime::on_runtime;
use crate::types::{ConsumerStats, ReceivedMessage};

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

    /// Up to `max` buffered messages, waiting up to `timeout` for the first; empty when none
    /// arrived. Cancel-safe: a cancelled poll takes no message out of the buffer.
    pub async fn poll(&self, max: u32, timeout: Duration) -> Result<Vec<ReceivedMessage>> {
        let consumer = self.core.clone();
        on_runtime(&self.runtime, async move {
            let messages = consumer.poll(max as usize, timeout).await?;
            Ok(messages.into_iter().map(ReceivedMessage::from).collect())
        })
        .await
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
