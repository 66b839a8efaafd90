//! `rapidmq._native`: the Python binding of the RapidMQ client core.
//!
//! This crate holds no client logic. Batching, retries, idempotence, flow control, commits and
//! reconnects all live in `rapidmq-core`; here are only conversions and runtime bridging. The
//! public Python API (`rapidmq`, `rapidmq.aio`) is thin Python over these classes.
//!
//! Layout:
//! - `runtime.rs`: the one core runtime of the process, blocking waits that release the GIL and
//!   stay interruptible, asyncio futures (pyo3-async-runtimes on the core runtime), fork checks.
//! - `errors.rs`: core errors to the `RapidMQError` subclasses of `rapidmq.errors`, and the
//!   error-code table those classes are generated from.
//! - `convert.rs`: Python values to core messages, positions, durations and configs; the core's
//!   defaults for the Python config classes.
//! - `types.rs`: result types (`Delivery`, `ReceivedMessage`, `TopicInfo`, ...); `users.rs`
//!   and `roles.rs`: the caller, users, tokens, roles and role bindings; `tenants.rs`: tenants,
//!   their quotas and the audit log; `cluster.rs`: the cluster status, membership changes,
//!   leader rebalances and replica moves.
//! - `client.rs`, `producer.rs`, `consumer.rs` (stream mode), `queue.rs` (queue mode),
//!   `admin.rs`: one class each over the core's.
//!
//! Every operation that waits takes `asyncio=False`: it then blocks (GIL released) and returns the
//! value, or with `asyncio=True` returns an awaitable, so the sync and asyncio Python classes
//! share one native method.

mod admin;
mod client;
mod cluster;
mod consumer;
mod convert;
mod errors;
mod producer;
mod queue;
mod roles;
mod runtime;
mod tenants;
mod types;
mod users;

use pyo3::prelude::*;

#[pymodule(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", rapidmq_core::VERSION)?;
    m.add("__git_revision__", rapidmq_core::GIT_REVISION)?;
    m.add("REPLY_TO_HEADER", rapidmq_core::REPLY_TO_HEADER)?;
    m.add("CORRELATION_ID_HEADER", rapidmq_core::CORRELATION_ID_HEADER)?;
    m.add("CONTENT_TYPE_HEADER", rapidmq_core::CONTENT_TYPE_HEADER)?;
    m.add("JSON_CONTENT_TYPE", rapidmq_core::JSON_CONTENT_TYPE)?;
    m.add_function(wrap_pyfunction!(client::connect, m)?)?;
    m.add_function(wrap_pyfunction!(convert::defaults, m)?)?;
    m.add_function(wrap_pyfunction!(convert::retry_delay, m)?)?;
    m.add_function(wrap_pyfunction!(errors::error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::shutdown, m)?)?;
    m.add_class::<client::Client>()?;
    m.add_class::<producer::Producer>()?;
    m.add_class::<producer::SendReceipt>()?;
    m.add_class::<consumer::Consumer>()?;
    m.add_class::<admin::Admin>()?;
    m.add_class::<queue::QueueConsumer>()?;
    m.add_class::<queue::QueueMessage>()?;
    m.add_class::<queue::QueueConsumerStats>()?;
    m.add_class::<types::Delivery>()?;
    m.add_class::<types::PublishAck>()?;
    m.add_class::<types::ReceivedMessage>()?;
    m.add_class::<types::TopicSettings>()?;
    m.add_class::<types::PartitionInfo>()?;
    m.add_class::<types::TopicInfo>()?;
    m.add_class::<types::PartitionCursor>()?;
    m.add_class::<types::MemberInfo>()?;
    m.add_class::<types::SubscriptionInfo>()?;
    m.add_class::<types::BrokerStatus>()?;
    m.add_class::<cluster::ClusterStatus>()?;
    m.add_class::<cluster::ClusterNode>()?;
    m.add_class::<cluster::MembershipChange>()?;
    m.add_class::<cluster::LeaderRebalance>()?;
    m.add_class::<cluster::ReplicaMove>()?;
    m.add_class::<types::ProducerStats>()?;
    m.add_class::<types::ConsumerStats>()?;
    m.add_class::<types::FetchResult>()?;
    m.add_class::<types::QueueSettings>()?;
    m.add_class::<types::QueueStats>()?;
    m.add_class::<types::DeadLetter>()?;
    m.add_class::<types::DeadLetterPage>()?;
    m.add_class::<types::DeadLetterReplay>()?;
    m.add_class::<users::Identity>()?;
    m.add_class::<users::UserInfo>()?;
    m.add_class::<users::TokenInfo>()?;
    m.add_class::<users::CreatedToken>()?;
    m.add_class::<roles::RoleInfo>()?;
    m.add_class::<roles::RoleBinding>()?;
    m.add_class::<tenants::TenantQuotas>()?;
    m.add_class::<tenants::TenantUsage>()?;
    m.add_class::<tenants::TenantInfo>()?;
    m.add_class::<tenants::AuditEvent>()?;
    m.add_class::<tenants::AuditPage>()?;
    Ok(())
}
