//! Client, producer and consumer options, with their defaults taken from
//! `rapidmq_core::defaults` ([`default_client_options`], [`default_producer_options`],
//! [`default_consumer_options`]) so the Java builders start from the same values as every SDK.

use std::time::Duration;

use rapidmq_core::{self as core, Compression, defaults};

use crate::error::{NativeError, Result};
use crate::types::{QueueSettings, StartAt};

/// TLS settings for `https://` endpoints (TLS is on exactly for them). Each PEM is given as a
/// file (`*_path`, read again at every reconnect) or inline (`*_pem`), not both. A failed
/// handshake is `TLS_HANDSHAKE_FAILED`, not retriable.
#[derive(Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct TlsOptions {
    /// PEM file with the CA certificates to trust; the system roots when neither this nor
    /// `ca_cert_pem` is set.
    pub ca_cert_path: Option<String>,
    /// The CA certificates to trust, as PEM text.
    pub ca_cert_pem: Option<String>,
    /// PEM file with the client certificate (chain), for mutual TLS; needs a key too.
    pub client_cert_path: Option<String>,
    /// The client certificate (chain) as PEM text.
    pub client_cert_pem: Option<String>,
    /// PEM file with the private key of the client certificate.
    pub client_key_path: Option<String>,
    /// The private key of the client certificate as PEM text.
    pub client_key_pem: Option<String>,
    /// Name to verify the server certificate against; the endpoint's host when unset.
    pub server_name: Option<String>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The core's Debug hides the PEM texts (a key among them).
        std::fmt::Debug::fmt(&core::TlsConfig::from(self.clone()), f)
    }
}

impl From<TlsOptions> for core::TlsConfig {
    fn from(t: TlsOptions) -> core::TlsConfig {
        core::TlsConfig {
            ca_cert_path: t.ca_cert_path,
            ca_cert_pem: t.ca_cert_pem,
            client_cert_path: t.client_cert_path,
            client_cert_pem: t.client_cert_pem,
            client_key_path: t.client_key_path,
            client_key_pem: t.client_key_pem,
            server_name: t.server_name,
        }
    }
}

/// Credentials for a broker with authentication on: an API token, or a user and password that
/// log in at connect (the session is renewed before it expires).
#[derive(Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Credentials {
    /// An API token.
    Token {
        /// The token.
        token: String,
    },
    /// A user name and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Token { .. } => f.write_str("Token(***)"),
            Credentials::UserPassword { user, .. } => write!(f, "UserPassword({user}, ***)"),
        }
    }
}

/// How to reach the broker.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ClientOptions {
    /// gRPC endpoints (`http://host:port`, or `https://host:port` for TLS), tried in order.
    pub endpoints: Vec<String>,
    /// Time allowed to open a connection to one endpoint.
    pub connect_timeout: Duration,
    /// Time allowed for one request (one attempt).
    pub request_timeout: Duration,
    /// TLS settings for `https://` endpoints (`None`: the system roots); set with an `http://`
    /// endpoint it is `INVALID_ARGUMENT`.
    pub tls: Option<TlsOptions>,
    /// Credentials; `None` for a broker without authentication.
    pub credentials: Option<Credentials>,
    /// The tenant to act in, sent as `rapidmq-tenant` with every request. Only a cluster admin
    /// may name a tenant other than its own; for anyone else, and for a tenant that does not
    /// exist, requests fail with `TENANT_NOT_FOUND`. `None`: the credentials' tenant. Connecting
    /// fails with `INVALID_ARGUMENT` for a name that is not a tenant name (`[A-Za-z0-9._-]{1,64}`).
    pub tenant: Option<String>,
}

impl From<ClientOptions> for core::ClientConfig {
    fn from(o: ClientOptions) -> core::ClientConfig {
        core::ClientConfig {
            endpoints: o.endpoints,
            connect_timeout: o.connect_timeout,
            request_timeout: o.request_timeout,
            tls: o.tls.map(core::TlsConfig::from),
            credentials: o.credentials.map(|c| match c {
                Credentials::Token { token } => core::Credentials::Token(token),
                Credentials::UserPassword { user, password } => {
                    core::Credentials::UserPassword { user, password }
                }
            }),
            tenant: o.tenant,
        }
    }
}

/// Retry policy: exponential backoff with full jitter within a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct RetryOptions {
    /// First backoff ceiling.
    pub initial_backoff: Duration,
    /// Largest backoff ceiling.
    pub max_backoff: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Total time for all attempts of one request.
    pub delivery_timeout: Duration,
}

impl From<RetryOptions> for core::RetryPolicy {
    fn from(r: RetryOptions) -> core::RetryPolicy {
        core::RetryPolicy {
            initial_backoff: r.initial_backoff,
            max_backoff: r.max_backoff,
            max_retries: r.max_retries,
            delivery_timeout: r.delivery_timeout,
        }
    }
}

impl From<core::RetryPolicy> for RetryOptions {
    fn from(r: core::RetryPolicy) -> RetryOptions {
        RetryOptions {
            initial_backoff: r.initial_backoff,
            max_backoff: r.max_backoff,
            max_retries: r.max_retries,
            delivery_timeout: r.delivery_timeout,
        }
    }
}

/// Producer settings (see the core's `ProducerConfig`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ProducerOptions {
    /// The topic.
    pub topic: String,
    /// How long a partition's batch waits for more messages.
    pub linger: Duration,
    /// Messages per batch.
    pub max_batch_messages: u64,
    /// Encoded bytes per batch.
    pub max_batch_bytes: u64,
    /// Publish requests in flight at once across partitions.
    pub max_in_flight_requests: u64,
    /// Batches of one partition in flight at once.
    pub max_in_flight_per_partition: u64,
    /// Messages buffered or in flight before `send` waits.
    pub max_buffered_messages: u64,
    /// Producer id + per-partition sequence, so retries never duplicate.
    pub idempotence: bool,
    /// Retries of failed publishes.
    pub retry: RetryOptions,
    /// How each batch's messages are packed.
    pub compression: Compression,
}

/// The core's `Compression`, exposed as it is: UniFFI generates the conversion from this
/// mirror, and the build fails if the core's variants change without it.
#[uniffi::remote(Enum)]
pub enum Compression {
    /// Messages travel and are stored as they are.
    None,
    /// LZ4 frames: cheap on CPU, a moderate ratio.
    Lz4,
    /// Zstandard frames (level 3): a better ratio for more CPU.
    Zstd,
}

fn count(value: u64, what: &str) -> Result<usize> {
    usize::try_from(value).map_err(|_| {
        NativeError::from(core::Error::InvalidArgument {
            message: format!("{what} is too large"),
        })
    })
}

impl TryFrom<ProducerOptions> for core::ProducerConfig {
    type Error = NativeError;

    fn try_from(o: ProducerOptions) -> Result<core::ProducerConfig> {
        let mut config = core::ProducerConfig::new(o.topic);
        config.linger = o.linger;
        config.max_batch_messages = count(o.max_batch_messages, "max_batch_messages")?;
        config.max_batch_bytes = count(o.max_batch_bytes, "max_batch_bytes")?;
        config.max_in_flight_requests = count(o.max_in_flight_requests, "max_in_flight_requests")?;
        config.max_in_flight_per_partition =
            count(o.max_in_flight_per_partition, "max_in_flight_per_partition")?;
        config.max_buffered_messages = count(o.max_buffered_messages, "max_buffered_messages")?;
        config.idempotence = o.idempotence;
        config.retry = o.retry.into();
        config.compression = o.compression;
        Ok(config)
    }
}

/// Consumer settings, for stream and queue mode (see the core's `ConsumerConfig`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ConsumerOptions {
    /// The topic.
    pub topic: String,
    /// The subscription name; empty for an ephemeral live tail (stream mode only).
    pub subscription: String,
    /// Where a new subscription starts.
    pub start: StartAt,
    /// Messages buffered ahead of `poll` at most; 0: the mode's default (10,000 in stream
    /// mode, 1,000 in queue mode).
    pub prefetch: u32,
    /// Stream mode: bytes of delivered batches buffered ahead of `poll` at most (passed by one
    /// batch at most); 0: the default (1 MiB). Queue mode ignores it.
    pub prefetch_bytes: u64,
    /// How often acks are committed (stream) or sent (queue).
    pub commit_interval: Duration,
    /// Whether `poll` acknowledges what it returns.
    pub auto_commit: bool,
    /// Queue mode: settings used when subscribing creates the subscription.
    pub queue: QueueSettings,
    /// Shown by DescribeSubscription.
    pub consumer_name: String,
    /// Reconnect backoff.
    pub reconnect: RetryOptions,
}

impl From<ConsumerOptions> for core::ConsumerConfig {
    fn from(o: ConsumerOptions) -> core::ConsumerConfig {
        let mut config = core::ConsumerConfig::new(o.topic, o.subscription);
        config.start = o.start.into();
        config.prefetch = o.prefetch;
        config.prefetch_bytes = o.prefetch_bytes;
        config.commit_interval = o.commit_interval;
        config.auto_commit = o.auto_commit;
        config.queue = o.queue.into();
        config.consumer_name = o.consumer_name;
        config.reconnect = o.reconnect.into();
        config
    }
}

/// The version of the client core in this library (e.g. "0.1.0").
#[uniffi::export]
pub fn version() -> String {
    core::VERSION.to_string()
}

/// The git revision the library was built from (12 hex digits, or "unknown" for a build outside
/// a checkout).
#[uniffi::export]
pub fn git_revision() -> String {
    core::GIT_REVISION.to_string()
}

/// The core's client defaults.
#[uniffi::export]
pub fn default_client_options() -> ClientOptions {
    let config = core::ClientConfig::default();
    ClientOptions {
        endpoints: config.endpoints,
        connect_timeout: config.connect_timeout,
        request_timeout: config.request_timeout,
        tls: None,
        credentials: None,
        tenant: config.tenant,
    }
}

/// The core's producer defaults for `topic`.
#[uniffi::export]
pub fn default_producer_options(topic: String) -> ProducerOptions {
    let config = core::ProducerConfig::new(topic);
    ProducerOptions {
        topic: config.topic,
        linger: config.linger,
        max_batch_messages: config.max_batch_messages as u64,
        max_batch_bytes: config.max_batch_bytes as u64,
        max_in_flight_requests: config.max_in_flight_requests as u64,
        max_in_flight_per_partition: config.max_in_flight_per_partition as u64,
        max_buffered_messages: config.max_buffered_messages as u64,
        idempotence: config.idempotence,
        retry: config.retry.into(),
        compression: config.compression,
    }
}

/// The core's consumer defaults for `subscription` on `topic`.
#[uniffi::export]
pub fn default_consumer_options(topic: String, subscription: String) -> ConsumerOptions {
    let config = core::ConsumerConfig::new(topic, subscription);
    ConsumerOptions {
        topic: config.topic,
        subscription: config.subscription,
        start: config.start.into(),
        prefetch: config.prefetch,
        prefetch_bytes: config.prefetch_bytes,
        commit_interval: config.commit_interval,
        auto_commit: config.auto_commit,
        queue: config.queue.into(),
        consumer_name: config.consumer_name,
        reconnect: config.reconnect.into(),
    }
}

/// The largest `max_in_flight_per_partition` the core accepts.
#[uniffi::export]
pub fn max_in_flight_per_partition_limit() -> u64 {
    defaults::MAX_IN_FLIGHT_PER_PARTITION_LIMIT as u64
}

/// The largest producer timestamp magnitude the core accepts, in ms either side of 1970: a send
/// checks it before it queues anything (conformance C30).
#[uniffi::export]
pub fn max_timestamp_ms() -> i64 {
    rapidmq_core::MAX_TIMESTAMP_MS
}

/// How a queue consumer's handler loop treats deliveries (`QueueConsumer.listen` in Java): the
/// core's semantics, docs/sdk-conformance.md C26.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct RunOptions {
    /// Deliveries handled at once.
    pub concurrency: u32,
    /// The delay before a failed delivery comes back, at its first failure, ms.
    pub retry_backoff_ms: u64,
    /// The longest such delay, ms.
    pub max_retry_backoff_ms: u64,
}

/// The core's handler defaults.
#[uniffi::export]
pub fn default_run_options() -> RunOptions {
    let d = core::RunConfig::default();
    RunOptions {
        concurrency: u32::try_from(d.concurrency).unwrap_or(u32::MAX),
        retry_backoff_ms: u64::try_from(d.retry_backoff.as_millis()).unwrap_or(u64::MAX),
        max_retry_backoff_ms: u64::try_from(d.max_retry_backoff.as_millis()).unwrap_or(u64::MAX),
    }
}

/// The delay, in ms, before a delivery whose handler failed at `attempt` comes back (the core's
/// `retry_delay`; 0 for either backoff: the core's default).
#[uniffi::export]
pub fn handler_retry_delay_ms(
    attempt: u32,
    retry_backoff_ms: u64,
    max_retry_backoff_ms: u64,
) -> u64 {
    let delay = core::retry_delay(
        attempt,
        Duration::from_millis(retry_backoff_ms),
        Duration::from_millis(max_retry_backoff_ms),
    );
    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
}
