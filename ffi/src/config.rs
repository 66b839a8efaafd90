//! Client, producer and consumer configuration as C structs. Every binding fills them from
//! `rapidmq_*_config_default`, so the defaults are the core's (`rapidmq_core::defaults`) and are
//! defined nowhere else.

use std::time::Duration;

use rapidmq_core::{self as core, defaults};

use crate::buffer::RapidmqStr;
use crate::error::{FfiError, FfiResult, guard_or};
use crate::types::{RapidmqQueueSettings, RapidmqStart, millis};

/// TLS settings for `https://` endpoints (TLS is on exactly for them). Each PEM is given as a
/// file (`*_path`, read again at every reconnect) or inline (`*_pem`), not both; empty means
/// unset. A failed handshake is `TLS_HANDSHAKE_FAILED`, not retriable.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqTlsConfig {
    /// PEM file with the CA certificates to trust (empty, and no `ca_cert_pem`: system roots).
    pub ca_cert_path: RapidmqStr,
    /// The CA certificates to trust, as PEM text.
    pub ca_cert_pem: RapidmqStr,
    /// PEM file with the client certificate (chain), for mutual TLS; needs a key too.
    pub client_cert_path: RapidmqStr,
    /// The client certificate (chain) as PEM text.
    pub client_cert_pem: RapidmqStr,
    /// PEM file with the private key of the client certificate.
    pub client_key_path: RapidmqStr,
    /// The private key of the client certificate as PEM text.
    pub client_key_pem: RapidmqStr,
    /// Name to verify the server certificate against (empty: the endpoint's host).
    pub server_name: RapidmqStr,
}

/// How to reach the broker.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqClientConfig {
    /// gRPC endpoints (`http://host:port`, or `https://host:port` for TLS), tried in order.
    pub endpoints: *const RapidmqStr,
    /// Number of endpoints (0: the default endpoint).
    pub endpoints_len: usize,
    /// Time allowed to connect to one endpoint, ms.
    pub connect_timeout_ms: u64,
    /// Time allowed for one request attempt, ms.
    pub request_timeout_ms: u64,
    /// TLS settings for `https://` endpoints (NULL: the system roots); set with an `http://`
    /// endpoint it is `INVALID_ARGUMENT`.
    pub tls: *const RapidmqTlsConfig,
    /// An API token (empty: none), sent as a bearer token on every call.
    pub token: RapidmqStr,
    /// A user name (empty: none); with `password`, logs in at connect.
    pub user: RapidmqStr,
    /// The password of `user`.
    pub password: RapidmqStr,
    /// The tenant to act in (empty: the credentials' tenant), sent as `rapidmq-tenant` with every
    /// request. Only a cluster admin may name a tenant other than its own; for anyone else, and
    /// for a tenant that does not exist, requests fail with `TENANT_NOT_FOUND`. Connecting fails
    /// with `INVALID_ARGUMENT` for a name that is not a tenant name (`[A-Za-z0-9._-]{1,64}`).
    pub tenant: RapidmqStr,
}

/// Retry (and reconnect) policy: exponential backoff with full jitter within a budget.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqRetryPolicy {
    /// First backoff ceiling, ms.
    pub initial_backoff_ms: u64,
    /// Largest backoff ceiling, ms.
    pub max_backoff_ms: u64,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Total time for all attempts of one request, ms.
    pub delivery_timeout_ms: u64,
}

impl RapidmqRetryPolicy {
    fn from_core(p: core::RetryPolicy) -> RapidmqRetryPolicy {
        RapidmqRetryPolicy {
            initial_backoff_ms: millis(p.initial_backoff),
            max_backoff_ms: millis(p.max_backoff),
            max_retries: p.max_retries,
            delivery_timeout_ms: millis(p.delivery_timeout),
        }
    }

    fn to_core(self) -> core::RetryPolicy {
        core::RetryPolicy {
            initial_backoff: Duration::from_millis(self.initial_backoff_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms),
            max_retries: self.max_retries,
            delivery_timeout: Duration::from_millis(self.delivery_timeout_ms),
        }
    }
}

/// Producer settings; start from `rapidmq_producer_config_default`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqProducerConfig {
    /// The topic.
    pub topic: RapidmqStr,
    /// How long a partition's batch waits for more messages, in microseconds.
    pub linger_us: u64,
    /// Messages per batch.
    pub max_batch_messages: u64,
    /// Encoded bytes per batch.
    pub max_batch_bytes: u64,
    /// Publish requests in flight across partitions.
    pub max_in_flight_requests: u64,
    /// Batches of one partition in flight (1 to 8).
    pub max_in_flight_per_partition: u64,
    /// Messages buffered or in flight before a send waits.
    pub max_buffered_messages: u64,
    /// Producer id + sequence, so retries never duplicate.
    pub idempotence: bool,
    /// Retries of failed publishes.
    pub retry: RapidmqRetryPolicy,
    /// A `RapidmqCompression`: how each batch's messages are packed.
    pub compression: u32,
}

/// Batch compression values (`RapidmqProducerConfig.compression`).
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RapidmqCompression {
    /// Messages travel and are stored as they are.
    RAPIDMQ_COMPRESSION_NONE = 0,
    /// LZ4 frames.
    RAPIDMQ_COMPRESSION_LZ4 = 1,
    /// Zstandard frames.
    RAPIDMQ_COMPRESSION_ZSTD = 2,
}

fn compression_out(c: core::Compression) -> u32 {
    match c {
        core::Compression::None => RapidmqCompression::RAPIDMQ_COMPRESSION_NONE as u32,
        core::Compression::Lz4 => RapidmqCompression::RAPIDMQ_COMPRESSION_LZ4 as u32,
        core::Compression::Zstd => RapidmqCompression::RAPIDMQ_COMPRESSION_ZSTD as u32,
    }
}

fn compression_in(c: u32) -> FfiResult<core::Compression> {
    core::Compression::ALL
        .into_iter()
        .find(|&known| compression_out(known) == c)
        .ok_or_else(|| FfiError::invalid(format!("unknown compression {c}")))
}

/// Consumer settings (stream and queue mode); start from `rapidmq_consumer_config_default`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqConsumerConfig {
    /// The topic.
    pub topic: RapidmqStr,
    /// The subscription (empty: an ephemeral live tail; queue mode needs a name).
    pub subscription: RapidmqStr,
    /// Where a new subscription starts.
    pub start: RapidmqStart,
    /// Messages buffered ahead of poll at most; 0: the mode's default (10,000 in stream mode,
    /// 1,000 in queue mode).
    pub prefetch: u32,
    /// Stream mode: bytes of delivered batches buffered ahead of poll at most (passed by one
    /// batch at most); 0: the default (1 MiB). Queue mode ignores it.
    pub prefetch_bytes: u64,
    /// How often acks are committed (stream) or sent (queue), ms.
    pub commit_interval_ms: u64,
    /// Whether poll acknowledges what it returns.
    pub auto_commit: bool,
    /// Queue mode: settings used when subscribing creates the subscription.
    pub queue: RapidmqQueueSettings,
    /// Shown by describe-subscription.
    pub consumer_name: RapidmqStr,
    /// Reconnect backoff.
    pub reconnect: RapidmqRetryPolicy,
}

const NO_STR: RapidmqStr = RapidmqStr {
    ptr: std::ptr::null(),
    len: 0,
};

/// Fills `out` with the core's client defaults (the default endpoint is used when
/// `endpoints_len` is 0). Returns false when `out` is NULL.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_client_config_default(out: *mut RapidmqClientConfig) -> bool {
    guard_or(false, || {
        let Some(out) = (unsafe { out.as_mut() }) else {
            return false;
        };
        *out = RapidmqClientConfig {
            endpoints: std::ptr::null(),
            endpoints_len: 0,
            connect_timeout_ms: millis(defaults::CONNECT_TIMEOUT),
            request_timeout_ms: millis(defaults::REQUEST_TIMEOUT),
            tls: std::ptr::null(),
            token: NO_STR,
            user: NO_STR,
            password: NO_STR,
            tenant: NO_STR,
        };
        true
    })
}

/// Fills `out` with the core's producer defaults (topic empty). Returns false when `out` is NULL.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_producer_config_default(out: *mut RapidmqProducerConfig) -> bool {
    guard_or(false, || {
        let Some(out) = (unsafe { out.as_mut() }) else {
            return false;
        };
        let d = core::ProducerConfig::new("");
        *out = RapidmqProducerConfig {
            topic: NO_STR,
            linger_us: u64::try_from(d.linger.as_micros()).unwrap_or(u64::MAX),
            max_batch_messages: d.max_batch_messages as u64,
            max_batch_bytes: d.max_batch_bytes as u64,
            max_in_flight_requests: d.max_in_flight_requests as u64,
            max_in_flight_per_partition: d.max_in_flight_per_partition as u64,
            max_buffered_messages: d.max_buffered_messages as u64,
            idempotence: d.idempotence,
            retry: RapidmqRetryPolicy::from_core(d.retry),
            compression: compression_out(d.compression),
        };
        true
    })
}

/// Fills `out` with the core's consumer defaults (topic and subscription empty). Returns false
/// when `out` is NULL.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_consumer_config_default(out: *mut RapidmqConsumerConfig) -> bool {
    guard_or(false, || {
        let Some(out) = (unsafe { out.as_mut() }) else {
            return false;
        };
        let d = core::ConsumerConfig::new("", "");
        *out = RapidmqConsumerConfig {
            topic: NO_STR,
            subscription: NO_STR,
            start: RapidmqStart::from_core(d.start),
            prefetch: d.prefetch,
            prefetch_bytes: d.prefetch_bytes,
            commit_interval_ms: millis(d.commit_interval),
            auto_commit: d.auto_commit,
            queue: RapidmqQueueSettings {
                has_ack_deadline: false,
                ack_deadline_ms: 0,
                has_max_deliveries: false,
                max_deliveries: 0,
                dead_letter_topic: NO_STR,
            },
            consumer_name: NO_STR,
            reconnect: RapidmqRetryPolicy::from_core(d.reconnect),
        };
        true
    })
}

fn size(value: u64, what: &str) -> FfiResult<usize> {
    usize::try_from(value).map_err(|_| FfiError::invalid(format!("{what} is too large")))
}

impl RapidmqClientConfig {
    pub(crate) unsafe fn read_core(&self) -> FfiResult<core::ClientConfig> {
        let mut config = core::ClientConfig::default();
        if self.endpoints_len > 0 {
            if self.endpoints.is_null() {
                return Err(FfiError::null("endpoints"));
            }
            let raw = unsafe { std::slice::from_raw_parts(self.endpoints, self.endpoints_len) };
            config.endpoints = raw
                .iter()
                .map(|e| unsafe { e.read_string("endpoint") })
                .collect::<FfiResult<_>>()?;
        }
        config.connect_timeout = Duration::from_millis(self.connect_timeout_ms);
        config.request_timeout = Duration::from_millis(self.request_timeout_ms);
        if let Some(tls) = unsafe { self.tls.as_ref() } {
            let opt = |s: &RapidmqStr, what: &str| -> FfiResult<Option<String>> {
                let s = unsafe { s.read_string(what) }?;
                Ok((!s.is_empty()).then_some(s))
            };
            let secret = |s: &RapidmqStr, what: &str| -> FfiResult<Option<String>> {
                let mut s = unsafe { s.read_secret(what) }?;
                Ok((!s.is_empty()).then(|| std::mem::take(&mut *s)))
            };
            config.tls = Some(core::TlsConfig {
                ca_cert_path: opt(&tls.ca_cert_path, "ca_cert_path")?,
                ca_cert_pem: opt(&tls.ca_cert_pem, "ca_cert_pem")?,
                client_cert_path: opt(&tls.client_cert_path, "client_cert_path")?,
                client_cert_pem: opt(&tls.client_cert_pem, "client_cert_pem")?,
                client_key_path: opt(&tls.client_key_path, "client_key_path")?,
                server_name: opt(&tls.server_name, "server_name")?,
                // Last, so no later error drops it unwiped.
                client_key_pem: secret(&tls.client_key_pem, "client_key_pem")?,
            });
        }
        // Secrets are wiped if an error drops them here; on success they move to the core.
        let mut token = unsafe { self.token.read_secret("token") }?;
        let user = unsafe { self.user.read_string("user") }?;
        if !token.is_empty() {
            config.credentials = Some(core::Credentials::Token(std::mem::take(&mut *token)));
        } else if !user.is_empty() {
            let mut password = unsafe { self.password.read_secret("password") }?;
            config.credentials = Some(core::Credentials::UserPassword {
                user,
                password: std::mem::take(&mut *password),
            });
        }
        let tenant = unsafe { self.tenant.read_string("tenant") }?;
        config.tenant = (!tenant.is_empty()).then_some(tenant);
        Ok(config)
    }
}

impl RapidmqProducerConfig {
    pub(crate) unsafe fn read_core(&self) -> FfiResult<core::ProducerConfig> {
        let mut config = core::ProducerConfig::new(unsafe { self.topic.read_string("topic") }?);
        config.linger = Duration::from_micros(self.linger_us);
        config.max_batch_messages = size(self.max_batch_messages, "max_batch_messages")?;
        config.max_batch_bytes = size(self.max_batch_bytes, "max_batch_bytes")?;
        config.max_in_flight_requests =
            size(self.max_in_flight_requests, "max_in_flight_requests")?;
        config.max_in_flight_per_partition = size(
            self.max_in_flight_per_partition,
            "max_in_flight_per_partition",
        )?;
        config.max_buffered_messages = size(self.max_buffered_messages, "max_buffered_messages")?;
        config.idempotence = self.idempotence;
        config.retry = self.retry.to_core();
        config.compression = compression_in(self.compression)?;
        Ok(config)
    }
}

impl RapidmqConsumerConfig {
    pub(crate) unsafe fn read_core(&self) -> FfiResult<core::ConsumerConfig> {
        let mut config =
            core::ConsumerConfig::new(unsafe { self.topic.read_string("topic") }?, unsafe {
                self.subscription.read_string("subscription")
            }?);
        config.start = self.start.to_core()?;
        config.prefetch = self.prefetch;
        config.prefetch_bytes = self.prefetch_bytes;
        config.commit_interval = Duration::from_millis(self.commit_interval_ms);
        config.auto_commit = self.auto_commit;
        config.queue = unsafe { self.queue.read_core() }?;
        config.consumer_name = unsafe { self.consumer_name.read_string("consumer_name") }?;
        config.reconnect = self.reconnect.to_core();
        Ok(config)
    }
}

/// How a queue consumer's handler loop treats deliveries (`QueueConsumer.Run` in Go): the core's
/// semantics, docs/sdk-conformance.md C26.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RapidmqRunConfig {
    /// Deliveries handled at once.
    pub concurrency: u64,
    /// The delay before a failed delivery comes back, at its first failure, ms.
    pub retry_backoff_ms: u64,
    /// The longest such delay, ms.
    pub max_retry_backoff_ms: u64,
}

/// Fills `out` with the core's handler defaults. Returns false when `out` is NULL.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_run_config_default(out: *mut RapidmqRunConfig) -> bool {
    guard_or(false, || {
        let Some(out) = (unsafe { out.as_mut() }) else {
            return false;
        };
        let d = core::RunConfig::default();
        *out = RapidmqRunConfig {
            concurrency: d.concurrency as u64,
            retry_backoff_ms: millis(d.retry_backoff),
            max_retry_backoff_ms: millis(d.max_retry_backoff),
        };
        true
    })
}

/// The delay, in ms, before a delivery whose handler failed at `attempt` comes back:
/// `retry_backoff_ms` doubled per earlier attempt, at most `max_retry_backoff_ms` (0: the core's
/// default for either). The core's `retry_delay`, so every SDK backs off the same way.
#[unsafe(no_mangle)]
pub extern "C" fn rapidmq_handler_retry_delay_ms(
    attempt: u32,
    retry_backoff_ms: u64,
    max_retry_backoff_ms: u64,
) -> u64 {
    guard_or(0, || {
        millis(core::retry_delay(
            attempt,
            Duration::from_millis(retry_backoff_ms),
            Duration::from_millis(max_retry_backoff_ms),
        ))
    })
}
