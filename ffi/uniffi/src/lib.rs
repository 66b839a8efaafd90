//! The RapidMQ client core as UniFFI bindings, for the Java SDK (`sdk-java`).
//!
//! Thin wrappers only: every behaviour lives in `rapidmq-core`; this crate converts types and
//! bridges runtimes. `uniffi-bindgen-java` generates the Java side (package `io.rapidmq.ffi`,
//! Foreign Function & Memory API) from the compiled library during the Java build; the
//! hand-written facade in `io.rapidmq` wraps it.
//!
//! Layout:
//! - `runtime.rs`: the one core runtime of the process; async exports run their bodies there
//!   and abort them when Java cancels the call.
//! - `error.rs`: [`NativeError`], carrying the stable code of every core error, and the
//!   error-code table ([`error_codes`]) the Java exception classes are generated from.
//! - `config.rs`: client, producer and consumer options with the core's defaults.
//! - `types.rs`: records and enums, converted from and to the core's domain types.
//! - `packed.rs`: the hot lists (a poll's messages, send outcomes, a batch to send) in one
//!   buffer each, which the Java facade reads and writes itself (uniffi's generated code for
//!   lists of records was a large share of the Java producer's and consumer's time).
//! - `client.rs`, `producer.rs`, `consumer.rs`, `queue.rs`, `admin.rs`: one object each;
//!   `users.rs` adds the caller, users and API tokens to `NativeAdmin`, `roles.rs` roles and
//!   their bindings, `tenants.rs` tenants, their quotas and the audit log, `cluster.rs` the
//!   cluster status, the metadata group's membership, leader rebalances and replica moves.

uniffi::setup_scaffolding!();

mod admin;
mod client;
mod cluster;
mod config;
mod consumer;
mod error;
mod packed;
mod producer;
mod queue;
mod roles;
mod runtime;
mod tenants;
mod types;
mod users;

pub use admin::NativeAdmin;
pub use client::{NativeClient, connect};
pub use cluster::{ClusterNode, ClusterStatus, LeaderRebalance, MembershipChange, ReplicaMove};
pub use config::{
    ClientOptions, ConsumerOptions, Credentials, ProducerOptions, RetryOptions, TlsOptions,
    default_client_options, default_consumer_options, default_producer_options,
};
pub use consumer::NativeConsumer;
pub use error::{ErrorCodeInfo, ErrorInfo, ErrorKind, NativeError, error_codes};
pub use producer::{BatchQueued, CompletionBatch, NativeProducer, SendCompletion};
pub use queue::{NativeQueueConsumer, NativeReceipt, QueueDelivery};
pub use roles::{BindingScope, RoleBinding, RoleInfo};
pub use tenants::{
    AuditEvent, AuditPage, AuditQuery, Quota, TenantInfo, TenantQuotas, TenantUsage,
};
pub use types::*;
pub use users::{CreatedToken, Identity, TokenInfo, UserInfo};
