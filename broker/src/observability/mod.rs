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
//!
//! Observability is a sink: the engine counts into `Metrics` and records into `FlowLog`, and
//! hands over scrape-time figures as an [`Observation`] through [`Source`], which it
//! implements. Nothing here names the engine (an Architecture Invariant, checked by a test).

pub mod cluster;
pub mod connections;
pub mod exposition;
pub mod flow;
pub mod metrics;
pub mod overview;

pub use flow::{FlowEvent, FlowKind, FlowLog, FlowQuery, Traced};
pub use metrics::{Metrics, TopicCounters, Transport};

use std::sync::Arc;

/// What `/metrics` and the dashboard read the broker through. The engine implements it.
pub trait Source: Send + Sync {
    fn metrics(&self) -> &Arc<Metrics>;
    fn flow(&self) -> &Arc<FlowLog>;
    /// Every tenant's topics and subscriptions, now.
    fn observe(&self) -> Observation;
}

/// Everything the engine reports at scrape time, across tenants.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Sorted by tenant, then name.
    pub topics: Vec<TopicObservation>,
    pub subscriptions: Vec<SubscriptionObservation>,
    /// Wall-clock time of the observation, ms since the Unix epoch.
    pub time_ms: i64,
    pub uptime_ms: u64,
    /// Bytes of the tail caches of all partitions together, and their budget.
    pub tail_cache_bytes: u64,
    pub tail_cache_limit: u64,
}

/// One topic as seen at scrape time.
#[derive(Debug, Clone)]
pub struct TopicObservation {
    pub tenant: String,
    pub name: String,
    /// False when the topic counts under the `_other` label set.
    pub own_series: bool,
    pub partitions: Vec<PartitionObservation>,
}

/// One partition of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionObservation {
    pub partition: u32,
    pub log_start_offset: u64,
    pub high_watermark: u64,
    /// Bytes the partition holds in storage.
    pub bytes: u64,
}

/// One subscription as seen at scrape time.
#[derive(Debug, Clone)]
pub struct SubscriptionObservation {
    pub tenant: String,
    pub topic: String,
    pub name: String,
    pub mode: Mode,
    /// False when it counts under the `_other` label set: its topic does, or the lag series
    /// cap (`observability.max_lag_series`) was reached.
    pub own_series: bool,
    /// `(partition, lag)`: messages between the committed (stream) or acked-through (queue)
    /// offset and the high watermark.
    pub lag: Vec<(u32, u64)>,
    /// Live consumers.
    pub members: usize,
    /// Queue subscriptions only.
    pub queue: Option<QueueObservation>,
    /// Consumer-group rebalances since the broker started.
    pub rebalances: u64,
}

impl SubscriptionObservation {
    pub fn total_lag(&self) -> u64 {
        self.lag.iter().map(|&(_, lag)| lag).sum()
    }
}

/// How a subscription hands out messages, as the `mode` label and the dashboard spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Stream,
    Queue,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Stream => "stream",
            Mode::Queue => "queue",
        }
    }
}

/// The figures of a queue subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueObservation {
    /// Deliveries awaiting ack.
    pub in_flight: u64,
    pub redeliveries: u64,
    pub dead_lettered: u64,
    /// Messages dropped because their TTL passed.
    pub expired: u64,
}

#[cfg(test)]
mod tests {
    /// Architecture Invariant: observability is a sink the engine calls, so nothing in it names
    /// the engine (which would make engine ⇄ observability a circle).
    #[test]
    fn nothing_under_observability_names_the_engine() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/observability");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            // Any path through the engine module, also inside a `use crate::{…}` group;
            // whitespace removed, so a path split over lines is caught too. The needles are
            // assembled so this file does not contain them.
            let flat: String = source.chars().filter(|c| !c.is_whitespace()).collect();
            for needle in [["crate::", "engine"].concat(), ["engine", "::"].concat()] {
                assert!(
                    !flat.contains(&needle),
                    "{} names the engine ({needle})",
                    path.display()
                );
            }
            checked += 1;
        }
        assert!(
            checked >= 6,
            "only {checked} files found in {}",
            dir.display()
        );
    }
}
