//! Observability: what the broker tells its operators.
//!
//! Layout:
//! - `metrics`: counters and histograms kept in atomics, resolved per topic when the topic
//!   opens (the hot paths do no label lookups), with a bounded number of topic label sets.
//! - `exposition`: the Prometheus text at `/metrics`, encoded with `prometheus-client` from the
//!   atomics plus figures the engine computes at scrape time (lag, storage bytes, in-flight).
//! - `flow`: the ring buffer of message-flow events (published, delivered, dead-lettered…) for
//!   messages carrying a `traceparent` or `msg-id` header, queried at `/v1/flow-events` and by
//!   `rapidmq trace`.
//! - `overview`: the JSON snapshot the dashboard (`crate::dashboard`) streams over SSE.
//! - `connections`: listener wrappers that count open connections per transport.

pub mod connections;
pub mod exposition;
pub mod flow;
pub mod metrics;
pub mod overview;

pub use flow::{FlowEvent, FlowKind, FlowLog, FlowQuery, Traced};
pub use metrics::{Metrics, TopicCounters, Transport};

use crate::engine::{PartitionStatus, SubscriptionStatus};

/// One topic as seen at scrape time.
#[derive(Debug, Clone)]
pub struct TopicObservation {
    pub tenant: String,
    pub name: String,
    /// False when the topic counts under the `_other` label set.
    pub own_series: bool,
    pub partitions: Vec<PartitionStatus>,
}

/// One subscription as seen at scrape time.
#[derive(Debug, Clone)]
pub struct SubscriptionObservation {
    pub tenant: String,
    /// False when it counts under the `_other` label set: its topic does, or the lag series
    /// cap (`observability.max_lag_series`) was reached.
    pub own_series: bool,
    pub status: SubscriptionStatus,
    /// Consumer-group rebalances since the broker started.
    pub rebalances: u64,
}

/// Everything the engine reports at scrape time, across tenants.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub topics: Vec<TopicObservation>,
    pub subscriptions: Vec<SubscriptionObservation>,
    pub uptime_ms: u64,
}
