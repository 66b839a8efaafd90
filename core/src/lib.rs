//! `rapidmq-core`: the client engine every RapidMQ SDK runs.
//!
//! All client behaviour lives here, so the Rust, Python, Go and Java SDKs behave identically:
//! they only convert types, bridge runtimes and offer an idiomatic surface.
//!
//! Layout:
//! - [`Runtime`] (`runtime.rs`): the explicit tokio runtime every task runs on. The core never
//!   uses an ambient runtime.
//! - [`Client`] (`client.rs`): endpoints, the shared connection and reconnects, and the raw
//!   calls ([`Client::publish_batch`], [`Client::fetch`]).
//! - [`Producer`] (`producer/`): per-partition batching on linger, count and bytes; the shared
//!   partition function with a sticky partition for keyless messages; pipelining over one
//!   `PublishStream`; idempotence; retries; per-message receipts (appended, scheduled,
//!   deduplicated).
//! - [`Consumer`] (`consumer/`): stream-mode subscriptions with prefetch credits, `poll`, acks
//!   batched into commits, reconnect and resubscribe; [`QueueConsumer`]: queue-mode
//!   subscriptions with attempt counts, receipts, batched acks, `nack(delay)` and deadline
//!   extension.
//! - Request/reply (`request.rs`): [`Client::request`] sends a message with a `reply-to` inbox
//!   and a `correlation-id` and waits for the answer a responder sends with [`Client::reply`].
//! - [`Admin`] (`admin.rs`): topics, subscriptions (queue settings and stats), lag, dead letters,
//!   broker status.
//! - [`Error`] (`error.rs`): one error type; every error carries the stable
//!   [`ErrorCode`] and whether it is retriable.
//! - [`defaults`]: every default, defined once for all SDKs.
//! - [`trace`]: W3C `traceparent` propagation from the application's current span.
//! - `types.rs` and `convert.rs`: domain types and their conversion from and to the wire.
//!
//! The surface is pull-based for bindings: `send` returns a receipt to await or poll,
//! [`Consumer::poll`] returns messages; nothing calls back into the application. Every async
//! operation runs on the core [`Runtime`], so its futures may be awaited from any executor.

mod admin;
mod auth;
mod client;
pub mod config;
mod consumer;
mod convert;
pub mod defaults;
mod error;
mod producer;
mod request;
mod retry;
pub mod roles;
mod routing;
mod runtime;
pub mod tenants;
pub mod trace;
mod types;

/// The version of this client core, which every SDK reports as its own (one version for every
/// RapidMQ artifact: the workspace's, in the root `Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision this core was built from (12 hex digits), or "unknown" for a build outside a
/// checkout and without `RAPIDMQ_GIT_REVISION` (see `build.rs`).
pub const GIT_REVISION: &str = env!("RAPIDMQ_GIT_REVISION");

pub use admin::Admin;
pub use client::{Client, FetchResult};
pub use config::{
    ClientConfig, ConsumerConfig, Credentials, ProducerConfig, RetryPolicy, TlsConfig,
};
pub use consumer::{
    Consumer, ConsumerStats, QueueConsumer, QueueConsumerStats, QueueMessage, Receipt, RunConfig,
    retry_delay,
};
pub use convert::MAX_TIMESTAMP_MS;
pub use error::{Error, Result};
pub use producer::{
    Completion, Completions, Faults, Producer, ProducerStats, SendReceipt, TrySend,
};
pub use rapidmq_proto::{
    CONTENT_TYPE_HEADER, CORRELATION_ID_HEADER, ErrorCode, JSON_CONTENT_TYPE, REPLY_TO_HEADER,
};
pub use roles::{Permission, RoleBinding, RoleInfo};
pub use runtime::Runtime;
pub use tenants::{AuditEvent, AuditPage, AuditQuery, TenantInfo, TenantQuotas, TenantUsage};
pub use types::{
    BrokerStatus, ClusterNode, ClusterStatus, Compression, CreatedToken, DeadLetter,
    DeadLetterPage, DeadLetterReplay, Delivery, Durability, LeaderRebalance, MSG_ID_HEADER,
    MemberInfo, MembershipChange, Message, PartitionCursor, PartitionInfo, PublishAck,
    QueueSettings, QueueStats, ReceivedMessage, ReplicaMove, SendStatus, StartPosition, Storage,
    SubscriptionInfo, SubscriptionMode, TokenInfo, TopicConfig, TopicInfo, UserInfo,
};
