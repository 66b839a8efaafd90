//! Configuration of clients, producers and consumers. Every field starts at the value in
//! [`crate::defaults`]; bindings expose these structs (or builders over them) and nothing else.

use std::time::Duration;

use crate::defaults;
use crate::error::{Error, Result};
use crate::types::{Compression, QueueSettings, StartPosition};

/// TLS settings for `https://` endpoints. TLS is on exactly for `https://` endpoints; with
/// `tls: None` they are verified against the system roots. Each PEM can be given as a file
/// (`*_path`, re-read at every reconnect, so rotated files are picked up) or inline (`*_pem`),
/// not both.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
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
    /// Name to verify the server certificate against; the endpoint's host when `None`.
    pub server_name: Option<String>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_cert_path", &self.ca_cert_path)
            .field("ca_cert_pem", &self.ca_cert_pem.as_ref().map(|_| "…"))
            .field("client_cert_path", &self.client_cert_path)
            .field(
                "client_cert_pem",
                &self.client_cert_pem.as_ref().map(|_| "…"),
            )
            .field("client_key_path", &self.client_key_path)
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "***"),
            )
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TlsConfig {
    /// Checks that each PEM is given at most once and that a client certificate comes with its
    /// key.
    pub fn validate(&self) -> Result<()> {
        for (name, path, pem) in [
            ("ca_cert", &self.ca_cert_path, &self.ca_cert_pem),
            ("client_cert", &self.client_cert_path, &self.client_cert_pem),
            ("client_key", &self.client_key_path, &self.client_key_pem),
        ] {
            if path.is_some() && pem.is_some() {
                return Err(Error::invalid(format!(
                    "tls: set {name}_path or {name}_pem, not both"
                )));
            }
        }
        let has_cert = self.client_cert_path.is_some() || self.client_cert_pem.is_some();
        let has_key = self.client_key_path.is_some() || self.client_key_pem.is_some();
        if has_cert != has_key {
            return Err(Error::invalid(
                "tls: a client certificate needs its key and a key needs its certificate",
            ));
        }
        if self.server_name.as_deref() == Some("") {
            return Err(Error::invalid("tls: server_name must not be empty"));
        }
        Ok(())
    }
}

/// Credentials for a broker with authentication on (docs/security.md). An API token is sent as
/// a bearer token; a user and password log in at connect for a session token, renewed before it
/// expires.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// An API token, sent as a bearer token.
    Token(String),
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
            Credentials::Token(_) => f.write_str("Token(***)"),
            Credentials::UserPassword { user, .. } => write!(f, "UserPassword({user}, ***)"),
        }
    }
}

/// How to reach the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// gRPC endpoints (`http://host:port`, or `https://host:port` for TLS), tried in order; the core moves to the next one when a
    /// connection fails.
    pub endpoints: Vec<String>,
    /// Time allowed to open a connection to one endpoint.
    pub connect_timeout: Duration,
    /// Time allowed for one request (one attempt).
    pub request_timeout: Duration,
    /// TLS settings for `https://` endpoints; `None` verifies them against the system roots.
    /// Setting it with an `http://` endpoint is an error, so TLS is never silently off.
    pub tls: Option<TlsConfig>,
    /// Credentials; `None` for a broker without authentication.
    pub credentials: Option<Credentials>,
    /// The tenant to act in, sent as `rapidmq-tenant` with every request; only a cluster admin
    /// may name one other than its own. `None`: the credentials' tenant.
    pub tenant: Option<String>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            endpoints: vec![defaults::ENDPOINT.to_string()],
            connect_timeout: defaults::CONNECT_TIMEOUT,
            request_timeout: defaults::REQUEST_TIMEOUT,
            tls: None,
            credentials: None,
            tenant: None,
        }
    }
}

impl ClientConfig {
    /// Checks the configuration; returns the error `Client::connect` would give.
    pub fn validate(&self) -> Result<()> {
        if self.endpoints.is_empty() {
            return Err(Error::invalid("at least one endpoint is required"));
        }
        for endpoint in &self.endpoints {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(Error::invalid(format!(
                    "endpoint `{endpoint}` must start with http:// or https://"
                )));
            }
        }
        if let Some(tls) = &self.tls {
            if let Some(plain) = self.endpoints.iter().find(|e| e.starts_with("http://")) {
                return Err(Error::invalid(format!(
                    "TLS is configured but endpoint `{plain}` is http://: use https://"
                )));
            }
            tls.validate()?;
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(Error::invalid("timeouts must be greater than zero"));
        }
        if let Some(tenant) = &self.tenant {
            let valid = (1..=64).contains(&tenant.len())
                && tenant
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !valid {
                return Err(Error::invalid(format!(
                    "tenant `{tenant}` is not a tenant name: 1 to 64 of A-Z, a-z, 0-9, `.`, `_`, `-`"
                )));
            }
        }
        Ok(())
    }
}

/// Retry policy for one request: exponential backoff with full jitter, bounded by a retry budget
/// of `max_retries` attempts and `delivery_timeout` in total. Only retriable codes are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First backoff ceiling.
    pub initial_backoff: Duration,
    /// Largest backoff ceiling.
    pub max_backoff: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Total time for all attempts of one request.
    pub delivery_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: defaults::RETRY_INITIAL_BACKOFF,
            max_backoff: defaults::RETRY_MAX_BACKOFF,
            max_retries: defaults::MAX_RETRIES,
            delivery_timeout: defaults::DELIVERY_TIMEOUT,
        }
    }
}

/// Producer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// The topic this producer writes to.
    pub topic: String,
    /// How long a partition's batch waits for more messages.
    pub linger: Duration,
    /// Messages per batch.
    pub max_batch_messages: usize,
    /// Encoded bytes per batch (a single larger message still goes alone).
    pub max_batch_bytes: usize,
    /// Publish requests in flight at once across partitions.
    pub max_in_flight_requests: usize,
    /// Batches of one partition in flight at once (1 to
    /// [`defaults::MAX_IN_FLIGHT_PER_PARTITION_LIMIT`]); order and idempotence hold for any value.
    pub max_in_flight_per_partition: usize,
    /// Messages buffered or in flight before `send` waits.
    pub max_buffered_messages: usize,
    /// Producer id + per-partition sequence, so retries never duplicate.
    pub idempotence: bool,
    /// Retries of failed publishes.
    pub retry: RetryPolicy,
    /// How each batch's messages are packed: none, LZ4 or Zstandard.
    pub compression: Compression,
}

impl ProducerConfig {
    /// Defaults for `topic`.
    pub fn new(topic: impl Into<String>) -> ProducerConfig {
        ProducerConfig {
            topic: topic.into(),
            linger: defaults::LINGER,
            max_batch_messages: defaults::MAX_BATCH_MESSAGES,
            max_batch_bytes: defaults::MAX_BATCH_BYTES,
            max_in_flight_requests: defaults::MAX_IN_FLIGHT_REQUESTS,
            max_in_flight_per_partition: defaults::MAX_IN_FLIGHT_PER_PARTITION,
            max_buffered_messages: defaults::MAX_BUFFERED_MESSAGES,
            idempotence: defaults::IDEMPOTENCE,
            retry: RetryPolicy::default(),
            compression: defaults::COMPRESSION,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if !rapidmq_proto::is_valid_name(&self.topic) {
            return Err(Error::invalid(format!(
                "topic name `{}` is not [A-Za-z0-9._-]{{1,200}}",
                self.topic
            )));
        }
        if self.max_batch_messages == 0
            || self.max_batch_bytes == 0
            || self.max_in_flight_requests == 0
            || self.max_buffered_messages == 0
        {
            return Err(Error::invalid(
                "max_batch_messages, max_batch_bytes, max_in_flight_requests and \
                 max_buffered_messages must be greater than zero",
            ));
        }
        if !(1..=defaults::MAX_IN_FLIGHT_PER_PARTITION_LIMIT)
            .contains(&self.max_in_flight_per_partition)
        {
            return Err(Error::invalid(format!(
                "max_in_flight_per_partition must be 1 to {}",
                defaults::MAX_IN_FLIGHT_PER_PARTITION_LIMIT
            )));
        }
        Ok(())
    }
}

/// Consumer settings, for stream mode ([`crate::Client::subscribe`]) and queue mode
/// ([`crate::Client::subscribe_queue`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The topic to consume.
    pub topic: String,
    /// The subscription name; empty for an ephemeral live tail (no commits).
    pub subscription: String,
    /// Where a new subscription starts.
    pub start: StartPosition,
    /// Messages buffered ahead of `poll` at most (credits granted to the broker). 0, the
    /// default: [`defaults::STREAM_PREFETCH`] in stream mode, [`defaults::QUEUE_PREFETCH`] in queue
    /// mode ([`ConsumerConfig::stream_prefetch`], [`ConsumerConfig::queue_prefetch`]).
    pub prefetch: u32,
    /// Stream mode: bytes of delivered batches buffered ahead of `poll` at most; the broker
    /// sends a batch whole while any are left, so the buffer can pass the bound by one batch.
    /// 0, the default: [`defaults::PREFETCH_BYTES`]. Queue mode counts messages only.
    pub prefetch_bytes: u64,
    /// How often acknowledged positions are committed (stream mode) or pending acks are sent
    /// (queue mode).
    pub commit_interval: Duration,
    /// Whether `poll` acknowledges what it returns (in queue mode: acks every delivery).
    pub auto_commit: bool,
    /// Queue mode: settings used when subscribing creates the subscription.
    pub queue: QueueSettings,
    /// Shown by DescribeSubscription.
    pub consumer_name: String,
    /// Reconnect backoff (only `initial_backoff` and `max_backoff` are used: a consumer
    /// reconnects until it is closed).
    pub reconnect: RetryPolicy,
}

impl ConsumerConfig {
    /// Defaults for `subscription` on `topic`.
    pub fn new(topic: impl Into<String>, subscription: impl Into<String>) -> ConsumerConfig {
        ConsumerConfig {
            topic: topic.into(),
            subscription: subscription.into(),
            start: StartPosition::Latest,
            prefetch: 0,
            prefetch_bytes: 0,
            commit_interval: defaults::COMMIT_INTERVAL,
            auto_commit: defaults::AUTO_COMMIT,
            queue: QueueSettings::default(),
            consumer_name: String::new(),
            reconnect: RetryPolicy::default(),
        }
    }

    /// The stream-mode window in messages: `prefetch`, or its default.
    pub fn stream_prefetch(&self) -> u32 {
        match self.prefetch {
            0 => defaults::STREAM_PREFETCH,
            n => n,
        }
    }

    /// The stream-mode window in bytes: `prefetch_bytes`, or its default.
    pub fn stream_prefetch_bytes(&self) -> u64 {
        match self.prefetch_bytes {
            0 => defaults::PREFETCH_BYTES,
            n => n,
        }
    }

    /// The queue-mode window in deliveries: `prefetch`, or its default.
    pub fn queue_prefetch(&self) -> u32 {
        match self.prefetch {
            0 => defaults::QUEUE_PREFETCH,
            n => n,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if !rapidmq_proto::is_valid_name(&self.topic) {
            return Err(Error::invalid(format!(
                "topic name `{}` is not [A-Za-z0-9._-]{{1,200}}",
                self.topic
            )));
        }
        if !self.subscription.is_empty() && !rapidmq_proto::is_valid_name(&self.subscription) {
            return Err(Error::invalid(format!(
                "subscription name `{}` is not [A-Za-z0-9._-]{{1,200}}",
                self.subscription
            )));
        }
        if self.commit_interval.is_zero() {
            return Err(Error::invalid("commit_interval must be greater than zero"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_accepted() {
        let config = ClientConfig {
            credentials: Some(Credentials::Token("t".into())),
            ..ClientConfig::default()
        };
        assert!(config.validate().is_ok());
        assert!(ClientConfig::default().validate().is_ok());
    }

    #[test]
    fn a_tenant_must_be_a_tenant_name() {
        let in_tenant = |tenant: &str| ClientConfig {
            tenant: Some(tenant.into()),
            ..ClientConfig::default()
        };
        assert!(in_tenant("acme-eu.1_x").validate().is_ok());
        for bad in ["", "a/b", "a b", &"x".repeat(65)] {
            assert!(
                matches!(
                    in_tenant(bad).validate(),
                    Err(Error::InvalidArgument { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn tls_is_on_exactly_for_https_endpoints() {
        let https = |tls: Option<TlsConfig>| ClientConfig {
            endpoints: vec!["https://broker:7890".into()],
            tls,
            ..ClientConfig::default()
        };
        assert!(https(None).validate().is_ok());
        assert!(https(Some(TlsConfig::default())).validate().is_ok());
        // TLS settings with a plaintext endpoint would silently not be used.
        let config = ClientConfig {
            tls: Some(TlsConfig::default()),
            ..ClientConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn each_pem_is_given_once_and_a_certificate_comes_with_its_key() {
        let invalid = |tls: TlsConfig| {
            let config = ClientConfig {
                endpoints: vec!["https://broker:7890".into()],
                tls: Some(tls),
                ..ClientConfig::default()
            };
            matches!(config.validate(), Err(Error::InvalidArgument { .. }))
        };
        assert!(invalid(TlsConfig {
            ca_cert_path: Some("ca.pem".into()),
            ca_cert_pem: Some("-----BEGIN".into()),
            ..TlsConfig::default()
        }));
        assert!(invalid(TlsConfig {
            client_cert_path: Some("c.pem".into()),
            ..TlsConfig::default()
        }));
        assert!(invalid(TlsConfig {
            client_key_pem: Some("k".into()),
            ..TlsConfig::default()
        }));
        assert!(!invalid(TlsConfig {
            client_cert_path: Some("c.pem".into()),
            client_key_pem: Some("k".into()),
            ..TlsConfig::default()
        }));
        let text = format!(
            "{:?}",
            TlsConfig {
                client_key_pem: Some("secret-key".into()),
                ..TlsConfig::default()
            }
        );
        assert!(!text.contains("secret-key"));
    }

    #[test]
    fn credentials_never_print_secrets() {
        let text = format!("{:?}", Credentials::Token("secret".into()));
        assert!(!text.contains("secret"));
    }

    #[test]
    fn invalid_names_and_zero_limits_are_rejected() {
        assert!(ProducerConfig::new("bad/name").validate().is_err());
        let mut config = ProducerConfig::new("ok");
        config.max_batch_messages = 0;
        assert!(config.validate().is_err());
        let mut config = ConsumerConfig::new("ok", "");
        assert!(config.validate().is_ok());
        config.commit_interval = Duration::ZERO;
        assert!(config.validate().is_err());
    }

    #[test]
    fn a_zero_prefetch_means_the_default_of_each_mode() {
        let mut config = ConsumerConfig::new("ok", "");
        assert_eq!(config.stream_prefetch(), defaults::STREAM_PREFETCH);
        assert_eq!(config.queue_prefetch(), defaults::QUEUE_PREFETCH);
        assert_eq!(config.stream_prefetch_bytes(), defaults::PREFETCH_BYTES);
        config.prefetch = 7;
        config.prefetch_bytes = 9;
        assert_eq!(config.stream_prefetch(), 7);
        assert_eq!(config.queue_prefetch(), 7);
        assert_eq!(config.stream_prefetch_bytes(), 9);
    }
}
