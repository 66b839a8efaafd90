//! `NativeClient`: a connection to a broker, the factory of producers, consumers and the admin
//! API, and the raw `publish_batch` / `fetch` calls.

use std::sync::Arc;
use std::time::Duration;

use rapidmq_core::{self as core, Runtime};

use crate::admin::NativeAdmin;
use crate::config::{ClientOptions, ConsumerOptions, ProducerOptions};
use crate::consumer::NativeConsumer;
use crate::error::Result;
use crate::producer::NativeProducer;
use crate::queue::NativeQueueConsumer;
use crate::runtime::{on_runtime, runtime};
use crate::types::{FetchResult, OutgoingMessage, PublishAck};

/// Validates `options` and connects to the first reachable endpoint.
#[uniffi::export]
pub async fn connect(options: ClientOptions) -> Result<Arc<NativeClient>> {
    let runtime = runtime()?;
    let config = core::ClientConfig::from(options);
    let core = on_runtime(&runtime, {
        let runtime = runtime.clone();
        async move { core::Client::connect(runtime, config).await }
    })
    .await?;
    Ok(Arc::new(NativeClient { core, runtime }))
}

/// A connection to a RapidMQ broker.
#[derive(uniffi::Object)]
pub struct NativeClient {
    core: core::Client,
    runtime: Runtime,
}

#[uniffi::export]
impl NativeClient {
    /// The endpoints in use.
    pub fn endpoints(&self) -> Vec<String> {
        self.core.endpoints()
    }

    /// Replaces the endpoints; producers and consumers follow.
    pub fn set_endpoints(&self, endpoints: Vec<String>) -> Result<()> {
        Ok(self.core.set_endpoints(endpoints)?)
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// Closes every producer (flushing) and consumer (committing), then the connection.
    pub async fn close_async(&self) -> Result<()> {
        let client = self.core.clone();
        on_runtime(&self.runtime, async move { client.close().await }).await
    }

    /// The admin API.
    pub fn admin(&self) -> Arc<NativeAdmin> {
        Arc::new(NativeAdmin::new(self.core.admin(), self.runtime.clone()))
    }

    /// Creates a producer; looks the topic up first.
    pub async fn create_producer(&self, options: ProducerOptions) -> Result<Arc<NativeProducer>> {
        let config = core::ProducerConfig::try_from(options)?;
        let client = self.core.clone();
        let producer = on_runtime(&self.runtime, async move {
            client.create_producer(config).await
        })
        .await?;
        Ok(Arc::new(NativeProducer::new(
            producer,
            self.runtime.clone(),
        )))
    }

    /// Subscribes in stream mode.
    pub async fn subscribe(&self, options: ConsumerOptions) -> Result<Arc<NativeConsumer>> {
        let client = self.core.clone();
        let config = core::ConsumerConfig::from(options);
        let consumer =
            on_runtime(&self.runtime, async move { client.subscribe(config).await }).await?;
        Ok(Arc::new(NativeConsumer::new(
            consumer,
            self.runtime.clone(),
        )))
    }

    /// Subscribes in queue mode.
    pub async fn subscribe_queue(
        &self,
        options: ConsumerOptions,
    ) -> Result<Arc<NativeQueueConsumer>> {
        let client = self.core.clone();
        let config = core::ConsumerConfig::from(options);
        let consumer = on_runtime(&self.runtime, async move {
            client.subscribe_queue(config).await
        })
        .await?;
        Ok(Arc::new(NativeQueueConsumer::new(
            consumer,
            self.runtime.clone(),
        )))
    }

    /// Publishes one batch to one partition in a single attempt (no batching, no retries);
    /// `producer_id` 0 disables idempotence.
    pub async fn publish_batch(
        &self,
        topic: String,
        partition: u32,
        producer_id: u64,
        base_sequence: u64,
        messages: Vec<OutgoingMessage>,
    ) -> Result<PublishAck> {
        let client = self.core.clone();
        let messages: Vec<core::Message> = messages.into_iter().map(Into::into).collect();
        on_runtime(&self.runtime, async move {
            client
                .publish_batch(topic, partition, producer_id, base_sequence, messages)
                .await
                .map(PublishAck::from)
        })
        .await
    }

    /// Reads up to `max_messages` from `partition` at `offset`, waiting up to `max_wait`.
    pub async fn fetch(
        &self,
        topic: String,
        partition: u32,
        offset: u64,
        max_messages: u32,
        max_wait: Duration,
    ) -> Result<FetchResult> {
        let client = self.core.clone();
        on_runtime(&self.runtime, async move {
            client
                .fetch(topic, partition, offset, max_messages, max_wait)
                .await
                .map(FetchResult::from)
        })
        .await
    }
}
