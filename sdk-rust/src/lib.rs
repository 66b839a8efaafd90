//! The RapidMQ client for Rust.
//!
//! An async, builder-style API over [`rapidmq_core`], the client engine every RapidMQ SDK shares:
//! batching, retries, idempotence, flow control and reconnects all happen there, so this crate
//! behaves exactly like the Python, Go and Java SDKs. Defaults are in [`defaults`].
//!
//! Layout:
//! - [`Client`] and [`ClientBuilder`]: endpoints and timeouts; the entry point.
//! - [`ProducerBuilder`] → [`Producer`]: `send` returns a [`SendReceipt`] future that resolves to
//!   the message's `(partition, offset)`; `send_batch` queues many messages in order and returns
//!   a receipt per message, or queues none when one of them is invalid.
//!   Messages can carry a delay, a delivery time, a TTL and a priority; a receipt says whether the
//!   message was appended (with its offset), scheduled or dropped as a `msg-id` duplicate.
//! - [`ConsumerBuilder`] → [`Consumer`]: `poll`, `ack`, `commit` (stream mode); also a
//!   `futures::Stream` of its messages (`while let Some(m) = consumer.next().await`), which
//!   takes one message at a time as it yields it.
//! - [`QueueConsumerBuilder`] → [`QueueConsumer`]: `poll` deliveries with attempt counts and
//!   receipts, `ack`, `nack(delay)`, `extend_deadline` (queue mode); also a `Stream` of its
//!   deliveries; `run(RunConfig, stop, handler)` is the handler loop every SDK has (ack on `Ok`,
//!   nack with [`retry_delay`] on `Err`, at most `concurrency` at once).
//! - [`Admin`]: topics, subscriptions (with queue settings and stats), lag, dead letters, broker
//!   status; users, tokens, and roles ([`RoleInfo`], [`Permission`]) bound to users
//!   ([`RoleBinding`], [`BindingScope`]) when the broker has authentication on; for cluster
//!   admins, tenants with their quotas and usage ([`TenantInfo`], [`TenantQuotas`],
//!   [`TenantUsage`]); and the audit log ([`AuditQuery`] → [`AuditPage`] of [`AuditEvent`]s).
//!   [`ClientBuilder::tenant`] makes a cluster admin act inside another tenant. Cluster
//!   administration: `cluster_status` ([`ClusterStatus`] with its [`ClusterNode`]s; mode
//!   `single-node` on a broker not in cluster mode), `add_node` and `remove_node`
//!   ([`MembershipChange`]; `NODE_NOT_FOUND` for a node that is not a member),
//!   `rebalance_leaders` ([`LeaderRebalance`]: partition leadership back to the preferred
//!   replicas), and `rebalance_replicas` ([`ReplicaMove`]s: partition replicas spread evenly
//!   over the voters, or moved off nodes about to be removed; `ClusterStatus::moving_partitions`
//!   counts those under way).
//! - [`json_message`] and [`JsonExt::json`] (feature `json`, on by default): values as JSON
//!   through serde, marked `content-type: application/json`.
//! - [`Error`]: every error carries a stable [`ErrorCode`] and says whether it is retriable.
//!
//! ```no_run
//! use std::time::Duration;
//! use rapidmq::{Client, Message, StartPosition, TopicConfig};
//!
//! # async fn demo() -> rapidmq::Result<()> {
//! let client = Client::builder().endpoint("http://127.0.0.1:7420").connect().await?;
//! client
//!     .admin()
//!     .create_topic("orders", TopicConfig { partitions: 4, ..TopicConfig::default() })
//!     .await?;
//!
//! let producer = client.producer("orders").build().await?;
//! let receipt = producer.send(Message::new("hello").with_key("customer-7")).await?;
//! let delivery = receipt.await?;
//! println!("stored at {}:{:?}", delivery.partition, delivery.offset);
//!
//! let consumer = client
//!     .consumer("orders")
//!     .subscription("billing")
//!     .start(StartPosition::Earliest)
//!     .subscribe()
//!     .await?;
//! for message in consumer.poll(100, Duration::from_secs(1)).await? {
//!     consumer.ack(&message)?;
//! }
//! consumer.close().await?;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

pub use rapidmq_core::defaults;
pub use rapidmq_core::roles::{Action, BindingScope, Effect, PatternType, ResourceType};
pub use rapidmq_core::{
    Admin, AuditEvent, AuditPage, AuditQuery, BrokerStatus, CONTENT_TYPE_HEADER,
    CORRELATION_ID_HEADER, ClusterNode, ClusterStatus, Compression, Consumer, ConsumerStats,
    CreatedToken, Credentials, DeadLetter, DeadLetterPage, DeadLetterReplay, Delivery, Durability,
    Error, ErrorCode, FetchResult, GIT_REVISION, JSON_CONTENT_TYPE, LeaderRebalance, MSG_ID_HEADER,
    MemberInfo, MembershipChange, Message, PartitionCursor, PartitionInfo, Permission, Producer,
    ProducerStats, PublishAck, QueueConsumer, QueueConsumerStats, QueueMessage, QueueSettings,
    QueueStats, REPLY_TO_HEADER, Receipt, ReceivedMessage, ReplicaMove, Result, RetryPolicy,
    RoleBinding, RoleInfo, RunConfig, Runtime, SendReceipt, SendStatus, StartPosition, Storage,
    SubscriptionInfo, SubscriptionMode, TenantInfo, TenantQuotas, TenantUsage, TlsConfig,
    TokenInfo, TopicConfig, TopicInfo, UserInfo, VERSION, retry_delay,
};
use rapidmq_core::{ClientConfig, ConsumerConfig, ProducerConfig};

#[cfg(feature = "json")]
mod json;
#[cfg(feature = "json")]
pub use json::{JsonExt, json_message};

/// A connection to a RapidMQ broker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    core: rapidmq_core::Client,
}

impl Client {
    /// A builder with every default (endpoint [`defaults::ENDPOINT`]).
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            config: ClientConfig::default(),
            runtime: None,
        }
    }

    /// Connects to one endpoint with default settings.
    ///
    /// ```no_run
    /// # async fn demo() -> rapidmq::Result<()> {
    /// let client = rapidmq::Client::connect("http://127.0.0.1:7420").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(endpoint: impl Into<String>) -> Result<Client> {
        Client::builder().endpoint(endpoint).connect().await
    }

    /// A producer for `topic`; configure it, then [`ProducerBuilder::build`].
    pub fn producer(&self, topic: impl Into<String>) -> ProducerBuilder {
        ProducerBuilder {
            client: self.core.clone(),
            config: ProducerConfig::new(topic),
        }
    }

    /// A consumer of `topic`; configure it, then [`ConsumerBuilder::subscribe`].
    pub fn consumer(&self, topic: impl Into<String>) -> ConsumerBuilder {
        ConsumerBuilder {
            client: self.core.clone(),
            config: ConsumerConfig::new(topic, ""),
        }
    }

    /// A queue-mode consumer of `topic`; configure it, then [`QueueConsumerBuilder::subscribe`].
    pub fn queue_consumer(&self, topic: impl Into<String>) -> QueueConsumerBuilder {
        QueueConsumerBuilder {
            client: self.core.clone(),
            config: ConsumerConfig::new(topic, ""),
        }
    }

    /// The admin API.
    pub fn admin(&self) -> Admin {
        self.core.admin()
    }

    /// The endpoints this client connects to (the seeds, or those of the last
    /// [`Client::set_endpoints`]).
    pub fn endpoints(&self) -> Vec<String> {
        self.core.endpoints()
    }

    /// Replaces the endpoints; producers and consumers of this client follow on their next
    /// reconnect.
    pub fn set_endpoints<I, S>(&self, endpoints: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.core
            .set_endpoints(endpoints.into_iter().map(Into::into).collect())
    }

    /// Publishes one batch to one partition in a single attempt: no batching, no retries. The
    /// raw path for tools and tests; a [`Producer`] is what applications use. `producer_id` 0
    /// disables idempotence; otherwise a repeated `(producer_id, base_sequence)` is answered as a
    /// duplicate with the original offsets.
    pub async fn publish_batch(
        &self,
        topic: impl Into<String>,
        partition: u32,
        producer_id: u64,
        base_sequence: u64,
        messages: Vec<Message>,
    ) -> Result<PublishAck> {
        self.core
            .publish_batch(topic, partition, producer_id, base_sequence, messages)
            .await
    }

    /// Reads up to `max_messages` from one partition starting at `offset`.
    pub async fn fetch(
        &self,
        topic: impl Into<String>,
        partition: u32,
        offset: u64,
        max_messages: u32,
    ) -> Result<FetchResult> {
        self.core
            .fetch(topic, partition, offset, max_messages, Duration::ZERO)
            .await
    }

    /// Sends `message` to `topic` as a request and returns the first reply, waiting at most
    /// `timeout` for both. The message goes out with a `reply-to` header (this client's inbox,
    /// made on the first request) and a unique `correlation-id`; a responder answers with
    /// [`Client::reply`]. Fails with [`Error::Timeout`] when no reply came in time.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # async fn demo(client: rapidmq::Client) -> rapidmq::Result<()> {
    /// let reply = client
    ///     .request("prices", rapidmq::Message::new("EURUSD"), Duration::from_secs(2))
    ///     .await?;
    /// println!("{:?}", reply.value);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn request(
        &self,
        topic: impl Into<String>,
        message: Message,
        timeout: Duration,
    ) -> Result<ReceivedMessage> {
        self.core.request(topic, message, timeout).await
    }

    /// Answers `request` (a message sent with [`Client::request`], as any consumer received
    /// it) with `reply`: sends it to the request's `reply-to` topic with its `correlation-id`,
    /// and returns once the broker stored it. Fails with `INVALID_ARGUMENT` for a message that
    /// was not sent as a request.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # async fn demo(client: rapidmq::Client, consumer: rapidmq::QueueConsumer) -> rapidmq::Result<()> {
    /// for delivery in consumer.poll(10, Duration::from_secs(1)).await? {
    ///     client.reply(&delivery.message, rapidmq::Message::new("1.0842")).await?;
    ///     consumer.ack(&delivery.receipt)?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn reply(&self, request: &ReceivedMessage, reply: Message) -> Result<Delivery> {
        self.core.reply(&request.headers, reply).await
    }

    /// Closes every producer (flushing) and consumer (final commits and acks) made from this
    /// client, then the connection. Idempotent; afterwards every operation of the client and of
    /// its producers and consumers fails with [`Error::Closed`].
    ///
    /// ```no_run
    /// # async fn demo(client: rapidmq::Client) -> rapidmq::Result<()> {
    /// let producer = client.producer("orders").build().await?;
    /// let _receipt = producer.send(rapidmq::Message::new("hello")).await?;
    /// client.close().await?; // the message is flushed first
    /// # Ok(())
    /// # }
    /// ```
    pub async fn close(&self) -> Result<()> {
        self.core.close().await
    }

    /// Whether [`Client::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// The core client, for what this crate does not wrap.
    pub fn core(&self) -> &rapidmq_core::Client {
        &self.core
    }
}

/// Configures and connects a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    config: ClientConfig,
    runtime: Option<Runtime>,
}

impl ClientBuilder {
    /// Uses only `endpoint` (`http://host:port`).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.config.endpoints = vec![endpoint.into()];
        self
    }

    /// Uses these endpoints, tried in order.
    pub fn endpoints<I, S>(mut self, endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// Time to open a connection (default [`defaults::CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Time for one request attempt (default [`defaults::REQUEST_TIMEOUT`]).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// TLS settings (CA, client certificate and key, server name) for `https://` endpoints;
    /// without them an `https://` endpoint is verified against the system roots. With an
    /// `http://` endpoint, `connect` fails with [`Error::InvalidArgument`].
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.config.tls = Some(tls);
        self
    }

    /// Credentials for a broker with authentication on: an API token, or a user and password
    /// (the client logs in at connect and renews its session before it expires). `connect`
    /// checks them, failing with `UNAUTHENTICATED` when the broker refuses them.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.config.credentials = Some(credentials);
        self
    }

    /// The tenant to act in, sent as `rapidmq-tenant` with every request. Only a cluster admin
    /// may name a tenant other than its own; for anyone else, and for a tenant that does not
    /// exist, requests fail with `TENANT_NOT_FOUND`. By default the credentials' tenant.
    /// `connect` fails with [`Error::InvalidArgument`] for a name that is not a tenant name
    /// (`[A-Za-z0-9._-]{1,64}`).
    ///
    /// ```no_run
    /// # async fn demo(token: String) -> rapidmq::Result<()> {
    /// let acme = rapidmq::Client::builder()
    ///     .credentials(rapidmq::Credentials::Token(token))
    ///     .tenant("acme")
    ///     .connect()
    ///     .await?;
    /// acme.admin().create_user("alice", None).await?; // acme/alice
    /// # Ok(())
    /// # }
    /// ```
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.config.tenant = Some(tenant.into());
        self
    }

    /// The runtime the client's tasks run on. By default, the tokio runtime `connect` is called
    /// from.
    pub fn runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Connects.
    ///
    /// Errors: [`Error::InvalidArgument`] (bad endpoint, or no tokio runtime and none given),
    /// `UNAUTHENTICATED` (credentials the broker refuses), [`Error::TlsHandshake`]
    /// (`TLS_HANDSHAKE_FAILED`: untrusted or misnamed broker certificate, refused client
    /// certificate, a plaintext broker at an `https://` endpoint; retrying cannot help),
    /// [`Error::Unavailable`] (no endpoint answered).
    pub async fn connect(self) -> Result<Client> {
        let runtime = match self.runtime {
            Some(runtime) => runtime,
            None => tokio::runtime::Handle::try_current()
                .map(Runtime::from_handle)
                .map_err(|_| Error::InvalidArgument {
                    message: "connect outside a tokio runtime needs ClientBuilder::runtime".into(),
                })?,
        };
        let core = rapidmq_core::Client::connect(runtime, self.config).await?;
        Ok(Client { core })
    }
}

/// Configures a [`Producer`]. Every setting defaults to the value in [`defaults`].
///
/// ```no_run
/// # async fn demo(client: rapidmq::Client) -> rapidmq::Result<()> {
/// use std::time::Duration;
/// let producer = client
///     .producer("orders")
///     .linger(Duration::from_millis(10))
///     .max_batch_messages(500)
///     .build()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ProducerBuilder {
    client: rapidmq_core::Client,
    config: ProducerConfig,
}

impl ProducerBuilder {
    /// How long a batch waits for more messages ([`defaults::LINGER`]).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.config.linger = linger;
        self
    }

    /// Messages per batch ([`defaults::MAX_BATCH_MESSAGES`]).
    pub fn max_batch_messages(mut self, n: usize) -> Self {
        self.config.max_batch_messages = n;
        self
    }

    /// Encoded bytes per batch ([`defaults::MAX_BATCH_BYTES`]).
    pub fn max_batch_bytes(mut self, n: usize) -> Self {
        self.config.max_batch_bytes = n;
        self
    }

    /// Requests in flight across partitions ([`defaults::MAX_IN_FLIGHT_REQUESTS`]).
    pub fn max_in_flight_requests(mut self, n: usize) -> Self {
        self.config.max_in_flight_requests = n;
        self
    }

    /// Batches of one partition in flight at once
    /// ([`defaults::MAX_IN_FLIGHT_PER_PARTITION`], at most
    /// [`defaults::MAX_IN_FLIGHT_PER_PARTITION_LIMIT`]). Per-partition order and idempotence hold
    /// for any value; 1 sends one batch per partition at a time.
    pub fn max_in_flight_per_partition(mut self, n: usize) -> Self {
        self.config.max_in_flight_per_partition = n;
        self
    }

    /// Messages buffered before `send` waits ([`defaults::MAX_BUFFERED_MESSAGES`]).
    pub fn max_buffered_messages(mut self, n: usize) -> Self {
        self.config.max_buffered_messages = n;
        self
    }

    /// Idempotent publishing ([`defaults::IDEMPOTENCE`]).
    pub fn idempotence(mut self, on: bool) -> Self {
        self.config.idempotence = on;
        self
    }

    /// How each batch's messages are packed ([`defaults::COMPRESSION`]): LZ4 or Zstandard
    /// frames, stored by the broker as sent and unpacked by consumers. A batch that would not
    /// shrink goes plain.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.config.compression = compression;
        self
    }

    /// Retry backoff and budget.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// Creates the producer. Errors: `TOPIC_NOT_FOUND`, [`Error::InvalidArgument`].
    pub async fn build(self) -> Result<Producer> {
        self.client.create_producer(self.config).await
    }
}

/// Configures a stream-mode [`Consumer`]. Every setting defaults to the value in [`defaults`].
///
/// ```no_run
/// # async fn demo(client: rapidmq::Client) -> rapidmq::Result<()> {
/// use rapidmq::StartPosition;
/// let consumer = client
///     .consumer("orders")
///     .subscription("billing")
///     .start(StartPosition::Earliest)
///     .prefetch(100)
///     .subscribe()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ConsumerBuilder {
    client: rapidmq_core::Client,
    config: ConsumerConfig,
}

impl ConsumerBuilder {
    /// The subscription to join (created on first use); without one the consumer is an
    /// ephemeral live tail with nothing committed.
    pub fn subscription(mut self, name: impl Into<String>) -> Self {
        self.config.subscription = name.into();
        self
    }

    /// Where a new subscription starts (default latest).
    pub fn start(mut self, start: StartPosition) -> Self {
        self.config.start = start;
        self
    }

    /// Messages buffered ahead of `poll` at most ([`defaults::STREAM_PREFETCH`]; 0: that
    /// default).
    pub fn prefetch(mut self, n: u32) -> Self {
        self.config.prefetch = n;
        self
    }

    /// Bytes of delivered batches buffered ahead of `poll` at most
    /// ([`defaults::PREFETCH_BYTES`]; 0: that default). The broker sends a batch whole while any
    /// are left, so the buffer can pass the bound by one batch.
    pub fn prefetch_bytes(mut self, n: u64) -> Self {
        self.config.prefetch_bytes = n;
        self
    }

    /// How often acknowledged positions are committed ([`defaults::COMMIT_INTERVAL`]).
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.config.commit_interval = interval;
        self
    }

    /// Whether `poll` acknowledges what it returns ([`defaults::AUTO_COMMIT`]).
    pub fn auto_commit(mut self, on: bool) -> Self {
        self.config.auto_commit = on;
        self
    }

    /// A name shown by `describe_subscription`.
    pub fn consumer_name(mut self, name: impl Into<String>) -> Self {
        self.config.consumer_name = name.into();
        self
    }

    /// Subscribes. Errors: `TOPIC_NOT_FOUND`, `INVALID_NAME`, [`Error::InvalidArgument`].
    pub async fn subscribe(self) -> Result<Consumer> {
        self.client.subscribe(self.config).await
    }
}

/// Configures a queue-mode [`QueueConsumer`]: deliveries go one by one to any live consumer of
/// the subscription and are acked individually. Settings default to the values in [`defaults`];
/// the queue settings (ack deadline, max deliveries, dead-letter topic) apply when subscribing
/// creates the subscription, and take the broker's defaults (30 s, 5, `<topic>.dlq`) when unset.
///
/// ```no_run
/// # async fn demo(client: rapidmq::Client) -> rapidmq::Result<()> {
/// use std::time::Duration;
/// let worker = client
///     .queue_consumer("jobs")
///     .subscription("workers")
///     .ack_deadline(Duration::from_secs(60))
///     .max_deliveries(3)
///     .subscribe()
///     .await?;
/// for delivery in worker.poll(10, Duration::from_secs(1)).await? {
///     if delivery.attempt < 3 {
///         worker.ack(&delivery.receipt)?;
///     } else {
///         worker.nack(&delivery.receipt, Duration::from_secs(5))?;
///     }
/// }
/// worker.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct QueueConsumerBuilder {
    client: rapidmq_core::Client,
    config: ConsumerConfig,
}

impl QueueConsumerBuilder {
    /// The subscription to join (required; created in queue mode on first use).
    pub fn subscription(mut self, name: impl Into<String>) -> Self {
        self.config.subscription = name.into();
        self
    }

    /// Where a new subscription starts (default latest).
    pub fn start(mut self, start: StartPosition) -> Self {
        self.config.start = start;
        self
    }

    /// Deliveries buffered ahead of `poll` at most ([`defaults::QUEUE_PREFETCH`]; 0: that
    /// default). Each holds a lease while it waits in the buffer.
    pub fn prefetch(mut self, n: u32) -> Self {
        self.config.prefetch = n;
        self
    }

    /// How often pending acks are sent ([`defaults::ACK_INTERVAL`]).
    pub fn ack_interval(mut self, interval: Duration) -> Self {
        self.config.commit_interval = interval;
        self
    }

    /// Whether `poll` acks what it returns ([`defaults::AUTO_COMMIT`]): at-most-once processing.
    pub fn auto_ack(mut self, on: bool) -> Self {
        self.config.auto_commit = on;
        self
    }

    /// A name shown by `describe_subscription`.
    pub fn consumer_name(mut self, name: impl Into<String>) -> Self {
        self.config.consumer_name = name.into();
        self
    }

    /// Visibility timeout of a new subscription: an unacked delivery is redelivered after this.
    pub fn ack_deadline(mut self, deadline: Duration) -> Self {
        self.config.queue.ack_deadline = Some(deadline);
        self
    }

    /// Deliveries before a message of a new subscription is dead-lettered (0 is refused).
    pub fn max_deliveries(mut self, n: u32) -> Self {
        self.config.queue.max_deliveries = Some(n);
        self
    }

    /// The dead-letter topic of a new subscription.
    pub fn dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.config.queue.dead_letter_topic = Some(topic.into());
        self
    }

    /// Subscribes. Errors: `TOPIC_NOT_FOUND`, `SUBSCRIPTION_MODE_MISMATCH`, `INVALID_ARGUMENT`
    /// (no subscription name, `max_deliveries` of 0).
    pub async fn subscribe(self) -> Result<QueueConsumer> {
        self.client.subscribe_queue(self.config).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // C14: TLS settings with a plaintext endpoint are an invalid argument, caught before
    // connecting. (Credentials are supported: tests/auth.rs.)
    #[tokio::test]
    async fn tls_needs_https_before_connecting() {
        let err = Client::builder()
            .endpoint("http://127.0.0.1:1")
            .tls(TlsConfig::default())
            .connect()
            .await
            .expect_err("TLS with http://");
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
        assert!(err.to_string().contains("https://"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_a_retriable_unavailable_error() {
        let err = Client::builder()
            .endpoint("http://127.0.0.1:1")
            .connect_timeout(Duration::from_millis(500))
            .connect()
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(err.code(), ErrorCode::Unavailable);
        assert!(err.is_retriable());
    }

    #[test]
    fn connect_outside_a_runtime_without_one_given_is_an_invalid_argument() {
        let err = futures_lite_block_on(Client::builder().connect()).expect_err("no runtime");
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
    }

    fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }
}
