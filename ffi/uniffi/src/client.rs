//! `NativeClient`: a connection to a broker, the factory of producers, consumers and the admin
//! API, the raw `publish_batch` / `fetch` calls, and request/reply (`request` / `reply`).

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
use crate::types::{
    Delivery, FetchResult, Header, OutgoingMessage, PublishAck, ReceivedMessage, headers_to_core,
};

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

    /// Sends `message` to `topic` as a request and returns the first reply, waiting at most
    /// `timeout` for the send and the reply together. The message goes out with a `reply-to`
    /// header (this client's inbox topic, made on the first request) and a unique
    /// `correlation-id`. Fails with `TIMEOUT` when no reply came in time, `INVALID_ARGUMENT` for
    /// a zero timeout, `TOPIC_NOT_FOUND`. Cancelling the call abandons the request; a reply that
    /// comes later is dropped.
    pub async fn request(
        &self,
        topic: String,
        message: OutgoingMessage,
        timeout: Duration,
    ) -> Result<ReceivedMessage> {
        let client = self.core.clone();
        let message = core::Message::from(message);
        on_runtime(&self.runtime, async move {
            client
                .request(topic, message, timeout)
                .await
                .map(ReceivedMessage::from)
        })
        .await
    }

    /// Sends `reply` to the requester of the message whose headers are `request_headers` (its
    /// `reply-to` topic, with its `correlation-id`); returns once the broker stored it. Fails
    /// with `INVALID_ARGUMENT` when the headers lack either (the message was not sent as a
    /// request), `TOPIC_NOT_FOUND` when the requester's inbox is gone (it closed).
    pub async fn reply(
        &self,
        request_headers: Vec<Header>,
        reply: OutgoingMessage,
    ) -> Result<Delivery> {
        let client = self.core.clone();
        let headers = headers_to_core(request_headers);
        let reply = core::Message::from(reply);
        on_runtime(&self.runtime, async move {
            client.reply(&headers, reply).await.map(Delivery::from)
        })
        .await
    }
}
