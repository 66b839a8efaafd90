//! `NativeQueueConsumer`: a queue-mode subscription with attempt counts, per-message receipts,
//! batched acks, `nack(delay)` and deadline extension.

use std::sync::Arc;
use std::time::Duration;

use rapidmq_core::{self as core, Runtime};

use crate::error::{ErrorInfo, Result};
use crate::runtime::on_runtime;
use crate::types::{QueueConsumerStats, ReceivedMessage};

/// Identifies one delivery; pass it back to `ack`, `nack` or `extend_deadline`.
#[derive(uniffi::Object)]
pub struct NativeReceipt {
    core: core::Receipt,
}

#[uniffi::export]
impl NativeReceipt {
    /// The message's partition.
    pub fn partition(&self) -> u32 {
        self.core.partition()
    }

    /// The message's offset.
    pub fn offset(&self) -> u64 {
        self.core.offset()
    }
}

/// One delivery of a queue message.
#[derive(uniffi::Record)]
pub struct QueueDelivery {
    /// The message.
    pub message: ReceivedMessage,
    /// 1 on the first delivery; counts survive broker restarts.
    pub attempt: u32,
    /// What `ack`, `nack` and `extend_deadline` take.
    pub receipt: Arc<NativeReceipt>,
}

/// A queue-mode subscription.
#[derive(uniffi::Object)]
pub struct NativeQueueConsumer {
    core: core::QueueConsumer,
    runtime: Runtime,
}

impl NativeQueueConsumer {
    pub(crate) fn new(core: core::QueueConsumer, runtime: Runtime) -> NativeQueueConsumer {
        NativeQueueConsumer { core, runtime }
    }
}

#[uniffi::export]
impl NativeQueueConsumer {
    /// The topic.
    pub fn topic(&self) -> String {
        self.core.config().topic.clone()
    }

    /// The subscription name.
    pub fn subscription(&self) -> String {
        self.core.config().subscription.clone()
    }

    /// Up to `max` deliveries, waiting up to `timeout` for the first. Cancel-safe.
    pub async fn poll(&self, max: u32, timeout: Duration) -> Result<Vec<QueueDelivery>> {
        let consumer = self.core.clone();
        on_runtime(&self.runtime, async move {
            let deliveries = consumer.poll(max as usize, timeout).await?;
            Ok(deliveries
                .into_iter()
                .map(|d| QueueDelivery {
                    message: d.message.into(),
                    attempt: d.attempt,
                    receipt: Arc::new(NativeReceipt { core: d.receipt }),
                })
                .collect())
        })
        .await
    }

    /// Acknowledges a delivery (batched; sent on the interval, `flush` and close).
    pub fn ack(&self, receipt: Arc<NativeReceipt>) -> Result<()> {
        Ok(self.core.ack(&receipt.core)?)
    }

    /// Redelivers the message after `delay` with the next attempt count (sent at once).
    pub fn nack(&self, receipt: Arc<NativeReceipt>, delay: Duration) -> Result<()> {
        Ok(self.core.nack(&receipt.core, delay)?)
    }

    /// Pushes the delivery's ack deadline `extension` from now (sent at once).
    pub fn extend_deadline(&self, receipt: Arc<NativeReceipt>, extension: Duration) -> Result<()> {
        Ok(self.core.extend_deadline(&receipt.core, extension)?)
    }

    /// Sends pending acks now.
    pub async fn flush(&self) -> Result<()> {
        let consumer = self.core.clone();
        on_runtime(&self.runtime, async move { consumer.flush().await }).await
    }

    /// Sends pending acks and leaves the subscription.
    pub async fn close_async(&self) -> Result<()> {
        let consumer = self.core.clone();
        on_runtime(&self.runtime, async move { consumer.close().await }).await
    }

    /// Errors the broker reported on the stream since the last call (e.g. `RECEIPT_UNKNOWN`).
    pub fn take_stream_errors(&self) -> Vec<ErrorInfo> {
        self.core
            .take_stream_errors()
            .into_iter()
            .map(ErrorInfo::from)
            .collect()
    }

    /// The counters so far.
    pub fn stats(&self) -> QueueConsumerStats {
        self.core.stats().into()
    }
}
