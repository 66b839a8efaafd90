//! Broker configuration: a TOML file, then `RAPIDMQ_*` environment variables, then command-line
//! flags, each overriding the one before. Every field has a default, so no file is needed.
//!
//! Environment variables name fields by path with `__` between sections, e.g.
//! `RAPIDMQ_GRPC_LISTEN`, `RAPIDMQ_STORAGE__FSYNC_INTERVAL_MS`,
//! `RAPIDMQ_TOPIC_DEFAULTS__PARTITIONS`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod cluster;
pub use cluster::{ClusterConfig, PeerList, peer_host};

/// `RAPIDMQ_*` variables whose first segment names a config field. Others (`RAPIDMQ_LOG`,
/// `RAPIDMQ_SERVER`, a user's own) are not config and are left alone; a wrong field inside a
/// known section (`RAPIDMQ_STORAGE__TYPO`) is still an error.
fn config_env() -> Env {
    let known: Vec<String> = match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    };
    Env::prefixed("RAPIDMQ_")
        .filter(move |key| {
            let first = key.as_str().split("__").next().unwrap_or_default();
            known.iter().any(|field| field.eq_ignore_ascii_case(first))
        })
        .split("__")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where RocksDB keeps its files.
    pub data_dir: PathBuf,
    /// gRPC listen address.
    pub grpc_listen: SocketAddr,
    /// HTTP listen address (health, readiness; REST, metrics and dashboard later).
    pub http_listen: SocketAddr,
    /// `text` (default) or `json`.
    pub log_format: LogFormat,
    pub storage: StorageConfig,
    pub limits: LimitsConfig,
    pub retention: RetentionConfig,
    pub topic_defaults: TopicDefaults,
    pub queue: QueueConfig,
    pub http: HttpConfig,
    pub observability: ObservabilityConfig,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    /// Quotas of every tenant that does not set its own (docs/security.md#tenants-and-quotas).
    pub quota_defaults: QuotaDefaults,
    pub audit: AuditConfig,
    /// Cluster mode; without peers the broker runs alone, with no raft.
    pub cluster: ClusterConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 7420)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 7421)),
            log_format: LogFormat::Text,
            storage: StorageConfig::default(),
            limits: LimitsConfig::default(),
            retention: RetentionConfig::default(),
            topic_defaults: TopicDefaults::default(),
            queue: QueueConfig::default(),
            http: HttpConfig::default(),
            observability: ObservabilityConfig::default(),
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            quota_defaults: QuotaDefaults::default(),
            audit: AuditConfig::default(),
            cluster: ClusterConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    #[serde(alias = "TEXT", alias = "Text")]
    Text,
    #[serde(alias = "JSON", alias = "Json")]
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// How often `buffered` topics are fsynced, in ms.
    pub fsync_interval_ms: u64,
    /// Recent batches kept in memory for consumers that keep up, in bytes: one budget for all
    /// partitions together; the oldest cached batches are evicted first.
    pub tail_cache_bytes: usize,
    /// Most bytes one group commit writes (one WriteBatch, one fsync).
    pub max_group_commit_bytes: usize,
    /// RocksDB write buffer of the log column family, in bytes.
    pub log_write_buffer_bytes: usize,
    /// RocksDB block cache, in bytes.
    pub block_cache_bytes: usize,
    /// RocksDB writes memtable flushes and compactions with direct I/O (`O_DIRECT`), past the
    /// page cache, where the data dir's filesystem allows it: less CPU per published byte,
    /// slower replay of flushed batches.
    pub direct_io_flush: bool,
    /// How long idempotent-producer state is kept after the producer's last write, in ms.
    pub producer_state_ttl_ms: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            fsync_interval_ms: 100,
            tail_cache_bytes: 256 << 20,
            max_group_commit_bytes: 8 << 20,
            log_write_buffer_bytes: 128 << 20,
            block_cache_bytes: 64 << 20,
            direct_io_flush: false,
            producer_state_ttl_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most partitions one topic may have.
    pub max_partitions: u32,
    /// Largest gRPC request or response, in bytes.
    pub max_request_bytes: usize,
    /// Most publish requests in flight on one PublishStream.
    pub max_inflight_per_stream: usize,
    /// Largest `max_message_bytes` a topic may set.
    pub max_message_bytes: u32,
    /// Furthest in the future a delayed message may be due, in ms (default 30 days).
    pub max_delay_ms: u64,
    // Bounded resources: what one broker holds at most. See docs/configuration.md for the
    // error a client gets at each limit.
    /// Publish payload bytes accepted but not yet acknowledged, over every transport. A publish
    /// that would exceed it is refused with `RESOURCE_EXHAUSTED` and a retry hint.
    pub max_inflight_publish_bytes: usize,
    /// Open connections per listener (gRPC and HTTP each); more are closed as they arrive.
    pub max_connections: usize,
    /// Concurrent HTTP/2 streams per gRPC connection (advertised in SETTINGS).
    pub max_streams_per_connection: u32,
    /// Requests being handled at once, over gRPC and REST together (a stream counts until it
    /// is set up); more are refused with `RESOURCE_EXHAUSTED`.
    pub max_concurrent_requests: usize,
    /// Open SSE and WebSocket sessions; more are refused with `RESOURCE_EXHAUSTED`.
    pub max_live_sessions: usize,
    /// Topics per tenant (dead-letter topics included).
    pub max_topics_per_tenant: usize,
    /// Subscriptions per tenant, over all its topics.
    pub max_subscriptions_per_tenant: usize,
    /// Consumers joined to the tenant's subscriptions (group and queue members) at once.
    pub max_members_per_tenant: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_partitions: 1024,
            max_request_bytes: 16 << 20,
            max_inflight_per_stream: 1024,
            max_message_bytes: 8 << 20,
            max_delay_ms: 30 * 24 * 3600 * 1000,
            max_inflight_publish_bytes: 256 << 20,
            max_connections: 10_000,
            max_streams_per_connection: 1024,
            max_concurrent_requests: 10_000,
            max_live_sessions: 1024,
            max_topics_per_tenant: 10_000,
            max_subscriptions_per_tenant: 100_000,
            max_members_per_tenant: 10_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// How often retention limits are enforced, in ms.
    pub check_interval_ms: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            check_interval_ms: 30_000,
        }
    }
}

/// The audit log (docs/security.md, "Audit log").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Records older than this are deleted (hourly); 0 keeps them forever.
    pub retention_ms: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention_ms: 90 * 24 * 3600 * 1000,
        }
    }
}

/// Queue-mode subscriptions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Ack deadline (visibility timeout) of subscriptions created without one, in ms.
    pub default_ack_deadline_ms: u64,
    /// Deliveries before dead-lettering, for subscriptions created without a setting.
    pub default_max_deliveries: u32,
    /// How often queue ack state is made durable, in ms. After a crash, acks from the last
    /// interval may be lost and those messages redelivered.
    pub ack_flush_interval_ms: u64,
    /// Longest nack delay a consumer may ask for, in ms; more is refused with
    /// `INVALID_ARGUMENT`.
    pub max_nack_delay_ms: u64,
    /// Longest ack deadline extension a consumer may ask for, in ms; more is refused with
    /// `INVALID_ARGUMENT`.
    pub max_ack_extension_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            default_ack_deadline_ms: 30_000,
            default_max_deliveries: 5,
            ack_flush_interval_ms: 100,
            max_nack_delay_ms: 86_400_000,
            max_ack_extension_ms: 86_400_000,
        }
    }
}

/// The REST API on the HTTP listener.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Origins allowed to call the REST API from a browser (CORS), e.g.
    /// `["https://app.example.com"]`; `["*"]` allows any. Empty (the default): no CORS headers.
    pub cors_allowed_origins: Vec<String>,
    /// Longest a REST request may take before it is answered `408` (`TIMEOUT`), in ms.
    /// Long-polls wait at most half of it. Streams (SSE, WebSocket) are not limited.
    pub request_timeout_ms: u64,
    /// A long-polling queue consumer idle this long is dropped and its unacked messages are
    /// redelivered, in ms.
    pub consumer_idle_timeout_ms: u64,
    /// Most long-polling queue consumers kept at once; more get `RESOURCE_EXHAUSTED` (429).
    pub max_consumers: usize,
    /// Names the `Host` header may carry, besides `localhost`, `127.0.0.1`, `[::1]` and the
    /// listen address (always allowed, with or without a port). Others get `403`: a web page
    /// cannot reach a local broker by DNS rebinding. `["*"]` allows any host.
    pub allowed_hosts: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            cors_allowed_origins: Vec::new(),
            request_timeout_ms: 60_000,
            consumer_idle_timeout_ms: 60_000,
            max_consumers: 1024,
            allowed_hosts: Vec::new(),
        }
    }
}

/// Metrics, message-flow tracing, the dashboard and span export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ObservabilityConfig {
    /// Count throughput and latencies on the publish and delivery paths. Off: `/metrics` still
    /// answers, with the scrape-time figures (lag, storage, connections) and zero counters.
    pub metrics: bool,
    /// Topics that get their own `tenant`/`topic` label set; later ones share `_other`.
    pub max_topic_series: usize,
    /// Per-partition lag series with their own label sets; subscriptions past it share `_other`.
    pub max_lag_series: usize,
    /// Flow events kept in the ring buffer behind `/v1/flow-events`; 0 turns flow events off.
    pub flow_events: usize,
    /// Bytes the flow-event ring may hold (events with their keys and header values); the
    /// oldest events are dropped first; 0 turns flow events off.
    pub flow_events_bytes: usize,
    /// Record flow events for every message, not only those with a `traceparent` or `msg-id`
    /// header (costs a decode per published and delivered batch).
    pub flow_all_messages: bool,
    /// fsyncs slower than this are logged as `slow_fsync` health events, in ms.
    pub slow_fsync_ms: u64,
    /// Serve the dashboard at `/`.
    pub dashboard: bool,
    /// OTLP/HTTP endpoint (e.g. `http://127.0.0.1:4318`) to export broker spans to; empty: off.
    pub otlp_endpoint: String,
}

impl Default for ObservabilityConfig {
    fn default() -> Self {
        ObservabilityConfig {
            metrics: true,
            max_topic_series: 1000,
            max_lag_series: 10_000,
            flow_events: 10_000,
            flow_events_bytes: 16 << 20,
            flow_all_messages: false,
            slow_fsync_ms: 100,
            dashboard: true,
            otlp_endpoint: String::new(),
        }
    }
}

/// TLS on both listeners (docs/security.md). Off unless `cert_file` is set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first. Empty (the default): both listeners are plaintext.
    pub cert_file: PathBuf,
    /// PEM private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates that client certificates must chain to; needed when `client_auth`
    /// is not `none`.
    pub client_ca_file: PathBuf,
    /// Whether clients present a certificate: `none`, `optional` (verified when presented) or
    /// `required`.
    pub client_auth: ClientAuth,
    /// How often the files are re-read; a change in their contents loads them (SIGHUP loads them
    /// at once), in ms. 0: only on SIGHUP.
    pub reload_interval_ms: u64,
    /// Longest a client may take to finish its TLS handshake before it is dropped, in ms.
    pub handshake_timeout_ms: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            client_ca_file: PathBuf::new(),
            client_auth: ClientAuth::None,
            reload_interval_ms: 10_000,
            handshake_timeout_ms: 10_000,
        }
    }
}

impl TlsConfig {
    /// Whether the listeners serve TLS.
    pub fn enabled(&self) -> bool {
        !self.cert_file.as_os_str().is_empty()
    }
}

/// The quotas a tenant has unless it sets its own; 0 means unlimited. Rates are per node.
/// `limits.max_topics_per_tenant` stays a ceiling over every tenant's `max_topics`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaDefaults {
    pub publish_bytes_per_sec: u64,
    pub publish_msgs_per_sec: u64,
    pub consume_bytes_per_sec: u64,
    pub storage_bytes: u64,
    pub max_topics: u64,
    pub max_partitions: u64,
    pub max_connections: u64,
}

/// Authentication (docs/security.md). Off by default: every request is anonymous in `default`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Requests need credentials (`rapidmq serve --auth`).
    pub enabled: bool,
    /// How long a session token from a login lasts, in ms (default 1 h).
    pub session_ttl_ms: u64,
    /// `/metrics` answers without credentials (for scrapers).
    pub metrics_open: bool,
    /// The OpenAPI document, the docs page and gRPC reflection answer without credentials.
    pub docs_open: bool,
    /// Password checks (argon2id, ~20-50 ms of CPU each) running at once; more logins are
    /// refused with `RESOURCE_EXHAUSTED`.
    pub max_concurrent_password_checks: usize,
    /// Password logins are accepted over plaintext connections from other hosts (by default
    /// they need TLS, or a loopback peer).
    pub allow_plaintext_passwords: bool,
    /// Which field of a verified client certificate names its user, as `[tenant/]user`; a
    /// bearer token on the same request wins.
    pub mtls_identity: MtlsIdentity,
    /// A file holding the first admin's token (`rmq_...`), read when no admin exists yet.
    pub bootstrap_admin_token_file: PathBuf,
    /// A file holding the first admin's password, read when no admin exists yet.
    pub bootstrap_admin_password_file: PathBuf,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: false,
            session_ttl_ms: 3_600_000,
            metrics_open: false,
            docs_open: false,
            max_concurrent_password_checks: 2,
            allow_plaintext_passwords: false,
            mtls_identity: MtlsIdentity::Off,
            bootstrap_admin_token_file: PathBuf::new(),
            bootstrap_admin_password_file: PathBuf::new(),
        }
    }
}

/// `auth.mtls_identity`: the client-certificate field read as `[tenant/]user`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum MtlsIdentity {
    /// Certificates name no one.
    #[default]
    Off,
    /// The subject's common name.
    SubjectCn,
    /// The first DNS subject alternative name.
    SanDns,
    /// The first email (rfc822Name) subject alternative name.
    SanEmail,
    /// The first URI subject alternative name of the form `rapidmq:[tenant/]user`.
    SanUri,
}

/// `tls.client_auth`: whether clients must present a certificate (mutual TLS).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    #[default]
    None,
    Optional,
    Required,
}

/// Settings for topics created without them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TopicDefaults {
    pub partitions: u32,
    /// 0 keeps messages forever. Default: 7 days.
    pub retention_ms: u64,
    /// Per partition; 0 is unlimited.
    pub retention_bytes: u64,
    /// Per partition; 0 is unlimited.
    pub retention_messages: u64,
    pub max_message_bytes: u32,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        TopicDefaults {
            partitions: 1,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: 0,
            retention_messages: 0,
            max_message_bytes: 1 << 20,
        }
    }
}

/// A configuration error, with the field or file it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Loads the defaults, then `file` (if any), then `RAPIDMQ_*` variables, then `overrides`
    /// (a serialisable map of flag values; `None` fields are left alone).
    pub fn load<O: Serialize>(file: Option<&Path>, overrides: O) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            // A named file must exist; figment alone would silently skip it.
            std::fs::metadata(path).map_err(|source| ConfigError::File {
                path: path.to_owned(),
                source,
            })?;
            figment = figment.merge(Toml::file(path));
        }
        let config: Config = figment
            .merge(config_env())
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|err| ConfigError::Invalid(err.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_string()));
        let d = &self.topic_defaults;
        if d.partitions == 0 || d.partitions > self.limits.max_partitions {
            return invalid(
                "topic_defaults.partitions must be between 1 and limits.max_partitions",
            );
        }
        if d.max_message_bytes == 0 || d.max_message_bytes > self.limits.max_message_bytes {
            return invalid(
                "topic_defaults.max_message_bytes must be between 1 and limits.max_message_bytes",
            );
        }
        if self.limits.max_message_bytes as usize + 1024 > self.limits.max_request_bytes {
            return invalid(
                "limits.max_request_bytes must exceed limits.max_message_bytes by at least 1 KiB",
            );
        }
        if self.storage.fsync_interval_ms == 0 {
            return invalid("storage.fsync_interval_ms must be at least 1");
        }
        if self.queue.default_max_deliveries == 0 || self.queue.default_ack_deadline_ms == 0 {
            return invalid(
                "queue.default_max_deliveries and queue.default_ack_deadline_ms must be at least 1",
            );
        }
        if self.queue.ack_flush_interval_ms == 0 {
            return invalid("queue.ack_flush_interval_ms must be at least 1");
        }
        let o = &self.observability;
        if o.flow_events > 10_000_000 {
            return invalid("observability.flow_events must be at most 10000000");
        }
        let endpoint = &o.otlp_endpoint;
        let is_url = endpoint.starts_with("http://") || endpoint.starts_with("https://");
        if !endpoint.is_empty() && !is_url {
            return invalid(
                "observability.otlp_endpoint must be an http:// or https:// URL (OTLP/HTTP), or empty",
            );
        }
        let l = &self.limits;
        if l.max_inflight_publish_bytes < l.max_request_bytes {
            return invalid(
                "limits.max_inflight_publish_bytes must be at least limits.max_request_bytes",
            );
        }
        if [
            l.max_connections,
            l.max_streams_per_connection as usize,
            l.max_concurrent_requests,
            l.max_live_sessions,
            l.max_topics_per_tenant,
            l.max_subscriptions_per_tenant,
            l.max_members_per_tenant,
        ]
        .contains(&0)
        {
            return invalid("every limits.max_* setting must be at least 1");
        }
        if self.retention.check_interval_ms == 0 {
            return invalid("retention.check_interval_ms must be at least 1");
        }
        let http = &self.http;
        if http.request_timeout_ms == 0
            || http.consumer_idle_timeout_ms == 0
            || http.max_consumers == 0
        {
            return invalid(
                "http.request_timeout_ms, http.consumer_idle_timeout_ms and http.max_consumers must be at least 1",
            );
        }
        if let Some(origin) = http
            .cors_allowed_origins
            .iter()
            .find(|o| o.as_str() != "*" && axum::http::HeaderValue::from_str(o).is_err())
        {
            return Err(ConfigError::Invalid(format!(
                "http.cors_allowed_origins: `{}` is not a valid origin",
                origin.escape_debug()
            )));
        }
        let tls = &self.tls;
        let set = |p: &PathBuf| !p.as_os_str().is_empty();
        if tls.enabled() != set(&tls.key_file) {
            return invalid("tls.cert_file and tls.key_file are set together or not at all");
        }
        if set(&tls.client_ca_file) && !tls.enabled() {
            return invalid("tls.client_ca_file needs tls.cert_file and tls.key_file");
        }
        if (tls.client_auth == ClientAuth::None) == set(&tls.client_ca_file) {
            return invalid(
                "tls.client_auth = optional or required needs tls.client_ca_file, and tls.client_ca_file needs one of them",
            );
        }
        if self.auth.session_ttl_ms == 0 || self.auth.max_concurrent_password_checks == 0 {
            return invalid(
                "auth.session_ttl_ms and auth.max_concurrent_password_checks must be at least 1",
            );
        }
        if tls.handshake_timeout_ms == 0 {
            return invalid("tls.handshake_timeout_ms must be at least 1");
        }
        self.cluster.validate(tls.enabled())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// `Config::load` reads `RAPIDMQ_*` variables and two tests set some: each test holds this
    /// lock, so a variable set by one is never read by another running in parallel.
    static ENV: Mutex<()> = Mutex::new(());

    #[test]
    fn defaults_need_no_file() {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let config = Config::load(None, serde_json::json!({})).unwrap();
        assert_eq!(config.grpc_listen.to_string(), "127.0.0.1:7420");
        assert_eq!(config.http_listen.to_string(), "127.0.0.1:7421");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn file_then_flags_override_in_order() {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rapidmq.toml");
        std::fs::write(
            &path,
            "data_dir = \"/from/file\"\n[storage]\nfsync_interval_ms = 7\n",
        )
        .unwrap();
        let config =
            Config::load(Some(&path), serde_json::json!({"data_dir": "/from/flag"})).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(config.storage.fsync_interval_ms, 7);
    }

    #[test]
    fn only_rapidmq_variables_naming_config_fields_are_read() {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: every test here holds `ENV`, so no other thread reads the environment now.
        unsafe {
            std::env::set_var("RAPIDMQ_LOG_LEVEL_UNRELATED", "x");
            std::env::set_var("RAPIDMQ_QUEUE__DEFAULT_MAX_DELIVERIES", "7");
        }
        let config = Config::load(None, serde_json::json!({})).unwrap();
        assert_eq!(config.queue.default_max_deliveries, 7);
        unsafe {
            std::env::remove_var("RAPIDMQ_LOG_LEVEL_UNRELATED");
            std::env::remove_var("RAPIDMQ_QUEUE__DEFAULT_MAX_DELIVERIES");
        }
    }

    #[test]
    fn unknown_fields_and_bad_values_are_rejected() {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "grpc_lisen = \"127.0.0.1:1\"\n").unwrap();
        let err = Config::load(Some(&path), serde_json::json!({})).unwrap_err();
        assert!(err.to_string().contains("grpc_lisen"), "{err}");

        std::fs::write(&path, "[topic_defaults]\npartitions = 0\n").unwrap();
        assert!(Config::load(Some(&path), serde_json::json!({})).is_err());

        let missing = dir.path().join("missing.toml");
        assert!(matches!(
            Config::load(Some(&missing), serde_json::json!({})),
            Err(ConfigError::File { .. })
        ));
    }

    #[test]
    fn http_section_reads_from_file_and_environment() {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let config = Config::load(None, serde_json::json!({})).unwrap();
        assert!(
            config.http.cors_allowed_origins.is_empty(),
            "no CORS by default"
        );
        assert_eq!(config.http.request_timeout_ms, 60_000);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("http.toml");
        std::fs::write(
            &path,
            "[http]\ncors_allowed_origins = [\"https://app.example\"]\nmax_consumers = 8\n",
        )
        .unwrap();
        // SAFETY: every test here holds `ENV`, so no other thread reads the environment now.
        unsafe { std::env::set_var("RAPIDMQ_HTTP__REQUEST_TIMEOUT_MS", "1234") };
        let config = Config::load(Some(&path), serde_json::json!({}));
        unsafe { std::env::remove_var("RAPIDMQ_HTTP__REQUEST_TIMEOUT_MS") };
        let config = config.unwrap();
        assert_eq!(config.http.cors_allowed_origins, ["https://app.example"]);
        assert_eq!(config.http.max_consumers, 8);
        assert_eq!(config.http.request_timeout_ms, 1234);
    }

    #[test]
    fn http_section_rejects_typos_and_bad_values() {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("http.toml");
        std::fs::write(&path, "[http]\ncors_origins = []\n").unwrap();
        let err = Config::load(Some(&path), serde_json::json!({})).unwrap_err();
        assert!(err.to_string().contains("cors_origins"), "{err}");

        std::fs::write(&path, "[http]\nrequest_timeout_ms = 0\n").unwrap();
        assert!(Config::load(Some(&path), serde_json::json!({})).is_err());

        std::fs::write(&path, "[http]\ncors_allowed_origins = [\"bad\\norigin\"]\n").unwrap();
        assert!(Config::load(Some(&path), serde_json::json!({})).is_err());
    }

    #[test]
    fn tls_is_off_by_default_and_its_files_come_together() {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let config = Config::load(None, serde_json::json!({})).unwrap();
        assert!(!config.tls.enabled());
        assert_eq!(config.tls.reload_interval_ms, 10_000);
        assert_eq!(config.tls.client_auth, ClientAuth::None);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tls.toml");
        std::fs::write(
            &path,
            "[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\nclient_ca_file = \"ca.pem\"\nclient_auth = \"required\"\n",
        )
        .unwrap();
        // SAFETY: every test here holds `ENV`, so no other thread reads the environment now.
        unsafe { std::env::set_var("RAPIDMQ_TLS__HANDSHAKE_TIMEOUT_MS", "250") };
        let config = Config::load(Some(&path), serde_json::json!({}));
        unsafe { std::env::remove_var("RAPIDMQ_TLS__HANDSHAKE_TIMEOUT_MS") };
        let config = config.unwrap();
        assert!(config.tls.enabled());
        assert_eq!(config.tls.client_auth, ClientAuth::Required);
        assert_eq!(config.tls.handshake_timeout_ms, 250);

        for bad in [
            "[tls]\ncert_file = \"c.pem\"\n",
            "[tls]\nkey_file = \"k.pem\"\n",
            "[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\nclient_auth = \"required\"\n",
            "[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\nclient_ca_file = \"ca.pem\"\n",
            "[tls]\nclient_auth = \"sometimes\"\n",
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(
                Config::load(Some(&path), serde_json::json!({})).is_err(),
                "{bad}"
            );
        }
    }
}
