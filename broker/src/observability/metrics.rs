//! The broker's counters and histograms, kept in plain atomics so that the publish and delivery
//! paths pay one relaxed atomic add per figure on a handle resolved when the topic opened — no
//! label lookups, no locks. `exposition` turns them, plus figures read from the engine at scrape
//! time (lag, storage bytes, in-flight), into Prometheus text with `prometheus-client`.
//!
//! Label cardinality is bounded: the first `max_topic_series` topics get their own
//! `tenant`/`topic` label set; later ones share the overflow set `tenant="_other",topic="_other"`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rapidmq_proto::ErrorCode;

use super::cluster::{ClusterCounters, GroupFigures};

/// The label value shared by topics past the series limit.
pub const OVERFLOW_LABEL: &str = "_other";

/// Per-topic throughput counters; one handle per topic (or the shared overflow handle).
#[derive(Debug, Default)]
pub struct TopicCounters {
    pub messages_in: AtomicU64,
    /// Sum of message value (payload) lengths.
    pub bytes_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Messages dropped as msg-id duplicates.
    pub dedup_hits: AtomicU64,
    /// Messages a stream consumer skipped because their TTL had passed.
    pub ttl_expired: AtomicU64,
    /// Messages moved to a dead-letter topic from this topic's subscriptions.
    pub dlq_moves: AtomicU64,
}

impl TopicCounters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A fixed-bucket histogram of atomics: `observe` is a short bucket search and three atomic adds.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    /// Non-cumulative counts; the last slot is `+Inf`.
    counts: Box<[AtomicU64]>,
    /// Sum of observations in micro-units (µs for seconds, units for counts), to stay integral.
    sum_micros: AtomicU64,
    count: AtomicU64,
    scale: f64,
}

/// Latency buckets in seconds: 50 µs to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// Size buckets (messages or KiB per group commit).
pub const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 16384.0, 65536.0,
];

/// A snapshot of a histogram: cumulative `(upper bound, count)` pairs, sum and count.
#[derive(Debug, Clone, Default)]
pub struct HistogramSnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

impl HistogramSnapshot {
    /// The `q` quantile (0..1) of the observations between `earlier` and `self`, taken as the
    /// upper bound of the bucket it falls in; `None` when nothing was observed in between.
    pub fn quantile_since(&self, earlier: Option<&HistogramSnapshot>, q: f64) -> Option<f64> {
        let base = |i: usize| earlier.and_then(|e| e.buckets.get(i)).map_or(0, |b| b.1);
        let total = self.count - earlier.map_or(0, |e| e.count);
        if total == 0 {
            return None;
        }
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        let mut last = 0.0;
        for (i, &(bound, cumulative)) in self.buckets.iter().enumerate() {
            if cumulative - base(i) >= rank {
                return Some(bound);
            }
            last = bound;
        }
        Some(last)
    }
}

impl AtomicHistogram {
    /// `scale` converts an observation to the integer micro-units kept in the sum.
    fn new(bounds: &'static [f64], scale: f64) -> AtomicHistogram {
        AtomicHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
            scale,
        }
    }

    pub fn latency() -> AtomicHistogram {
        AtomicHistogram::new(LATENCY_BUCKETS, 1e6)
    }

    pub fn sizes() -> AtomicHistogram {
        AtomicHistogram::new(SIZE_BUCKETS, 1.0)
    }

    pub fn observe(&self, value: f64) {
        let slot = self
            .bounds
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(self.bounds.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value * self.scale) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, elapsed: Duration) {
        self.observe(elapsed.as_secs_f64());
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            buckets.push((
                self.bounds.get(i).copied().unwrap_or(f64::INFINITY),
                cumulative,
            ));
        }
        HistogramSnapshot {
            buckets,
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / self.scale,
            count: cumulative,
        }
    }
}

/// Which listener a connection or an error came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Grpc = 0,
    Http = 1,
}

impl Transport {
    pub const ALL: [Transport; 2] = [Transport::Grpc, Transport::Http];

    pub fn label(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Http => "http",
        }
    }
}

const CODES: usize = ErrorCode::ALL.len();

/// Errors answered to clients, by transport and stable code. Process-wide, because errors are
/// converted to gRPC statuses and problem documents where no engine is at hand.
static ERRORS: [[AtomicU64; CODES]; 2] = [
    [const { AtomicU64::new(0) }; CODES],
    [const { AtomicU64::new(0) }; CODES],
];

/// Counts one error answered to a client.
pub fn count_error(transport: Transport, code: ErrorCode) {
    if let Some(i) = ErrorCode::ALL.iter().position(|&c| c == code) {
        ERRORS[transport as usize][i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Non-zero error counts: `(transport, code, count)`.
pub fn error_counts() -> Vec<(Transport, ErrorCode, u64)> {
    let mut out = Vec::new();
    for transport in Transport::ALL {
        for (i, &code) in ErrorCode::ALL.iter().enumerate() {
            let n = ERRORS[transport as usize][i].load(Ordering::Relaxed);
            if n > 0 {
                out.push((transport, code, n));
            }
        }
    }
    out
}

/// Every broker-level figure, plus the registry of per-topic handles.
#[derive(Debug)]
pub struct Metrics {
    /// False when `observability.metrics = false`: the hot paths skip counting.
    pub enabled: bool,
    max_topic_series: usize,
    topics: Mutex<HashMap<(String, String), Arc<TopicCounters>>>,
    overflow: Arc<TopicCounters>,
    max_lag_series: usize,
    subscription_series: Mutex<SubscriptionSeries>,
    /// Publish: from the broker receiving a batch to its acknowledgement (group commit done).
    pub publish_latency: AtomicHistogram,
    /// From broker append to hand-out to a consumer.
    pub end_to_end_latency: AtomicHistogram,
    pub fsyncs: AtomicU64,
    pub fsync_latency: AtomicHistogram,
    pub slow_fsyncs: AtomicU64,
    pub storage_errors: AtomicU64,
    /// Cursors and queue states clamped to a recovered log at startup.
    pub recovery_clamps: AtomicU64,
    /// Authentication failures and denials not recorded in the audit log: its queue was full.
    pub audit_dropped: AtomicU64,
    /// Messages per group commit.
    pub group_commit_messages: AtomicHistogram,
    /// KiB per group commit.
    pub group_commit_kib: AtomicHistogram,
    pub connections: [AtomicI64; 2],
    /// fsyncs slower than this are logged as health events.
    pub slow_fsync: Duration,
    /// Cluster mode: the raft groups as this node sees them, replaced whole by the cluster on
    /// every change (`observability::cluster`). Empty in single-node mode.
    cluster: Mutex<Vec<GroupFigures>>,
    /// Cluster mode: partition groups summed, and node-to-node traffic per peer.
    pub cluster_counters: Arc<ClusterCounters>,
}

/// Subscriptions that have their own label sets, keyed by `(tenant, topic, subscription)`, with
/// the lag series (one per partition) each holds.
#[derive(Debug, Default)]
struct SubscriptionSeries {
    admitted: HashMap<(String, String, String), usize>,
    lag_series: usize,
}

/// A subscription seen at scrape time: `(tenant, topic, subscription, partitions)`.
pub type SeenSubscription<'a> = (&'a str, &'a str, &'a str, usize);

impl Metrics {
    pub fn new(enabled: bool, max_topic_series: usize, slow_fsync: Duration) -> Metrics {
        Metrics {
            enabled,
            max_topic_series,
            topics: Mutex::new(HashMap::new()),
            overflow: Arc::default(),
            max_lag_series: usize::MAX,
            subscription_series: Mutex::default(),
            publish_latency: AtomicHistogram::latency(),
            end_to_end_latency: AtomicHistogram::latency(),
            fsyncs: AtomicU64::new(0),
            fsync_latency: AtomicHistogram::latency(),
            slow_fsyncs: AtomicU64::new(0),
            storage_errors: AtomicU64::new(0),
            recovery_clamps: AtomicU64::new(0),
            audit_dropped: AtomicU64::new(0),
            group_commit_messages: AtomicHistogram::sizes(),
            group_commit_kib: AtomicHistogram::sizes(),
            connections: [AtomicI64::new(0), AtomicI64::new(0)],
            slow_fsync,
            cluster: Mutex::default(),
            cluster_counters: Arc::default(),
        }
    }

    /// The counters of a topic: its own while fewer than `max_topic_series` topics have them,
    /// the shared overflow set after that.
    pub fn topic(&self, tenant: &str, topic: &str) -> Arc<TopicCounters> {
        let mut topics = self.topics.lock();
        let key = (tenant.to_string(), topic.to_string());
        if let Some(counters) = topics.get(&key) {
            return counters.clone();
        }
        if topics.len() >= self.max_topic_series {
            return self.overflow.clone();
        }
        topics.entry(key).or_default().clone()
    }

    /// Caps the per-partition lag series (`observability.max_lag_series`).
    pub fn with_max_lag_series(mut self, max_lag_series: usize) -> Metrics {
        self.max_lag_series = max_lag_series;
        self
    }

    /// Which of the subscriptions seen at scrape time (those of topics with their own series)
    /// get their own label sets: those that had them at the last scrape, then new ones, in
    /// order, while the lag series (one per partition) stay within `max_lag_series`. The rest
    /// are summed into the `_other` set. A subscription no longer seen frees its slots.
    pub fn own_subscription_series(&self, seen: &[SeenSubscription<'_>]) -> Vec<bool> {
        let key = |&(tenant, topic, sub, _): &SeenSubscription<'_>| {
            (tenant.to_string(), topic.to_string(), sub.to_string())
        };
        let mut series = self.subscription_series.lock();
        let present: std::collections::HashSet<_> = seen.iter().map(key).collect();
        series.admitted.retain(|k, _| present.contains(k));
        series.lag_series = series.admitted.values().sum();
        let mut own = vec![false; seen.len()];
        // Those admitted before keep their slots (if their partitions still fit).
        for (i, s) in seen.iter().enumerate() {
            let k = key(s);
            if let Some(&held) = series.admitted.get(&k) {
                let total = series.lag_series - held + s.3;
                if total <= self.max_lag_series {
                    series.lag_series = total;
                    series.admitted.insert(k, s.3);
                    own[i] = true;
                } else {
                    series.lag_series -= held;
                    series.admitted.remove(&k);
                }
            }
        }
        for (i, s) in seen.iter().enumerate() {
            if own[i] || series.lag_series + s.3 > self.max_lag_series {
                continue;
            }
            let k = key(s);
            if series.admitted.contains_key(&k) {
                continue;
            }
            series.lag_series += s.3;
            series.admitted.insert(k, s.3);
            own[i] = true;
        }
        own
    }

    /// Forgets a deleted topic's series, freeing its slot.
    pub fn remove_topic(&self, tenant: &str, topic: &str) {
        self.topics
            .lock()
            .remove(&(tenant.to_string(), topic.to_string()));
    }

    /// Whether the topic has its own series (else it counts under `_other`).
    pub fn has_own_series(&self, tenant: &str, topic: &str) -> bool {
        self.topics
            .lock()
            .contains_key(&(tenant.to_string(), topic.to_string()))
    }

    /// `(tenant, topic, counters)` for every topic with its own series, then the overflow set.
    pub fn topic_counters(&self) -> Vec<(String, String, Arc<TopicCounters>)> {
        let mut out: Vec<_> = self
            .topics
            .lock()
            .iter()
            .map(|((tenant, topic), c)| (tenant.clone(), topic.clone(), c.clone()))
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out.push((
            OVERFLOW_LABEL.to_string(),
            OVERFLOW_LABEL.to_string(),
            self.overflow.clone(),
        ));
        out
    }

    /// Records one fsync and logs it as a health event when slow.
    pub fn fsync_done(&self, elapsed: Duration, what: &str) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.fsync_latency.observe_duration(elapsed);
        if elapsed >= self.slow_fsync {
            self.slow_fsyncs.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                target: "rapidmq::health",
                event = "slow_fsync",
                elapsed_ms = elapsed.as_millis() as u64,
                threshold_ms = self.slow_fsync.as_millis() as u64,
                what,
                "slow fsync"
            );
        }
    }

    /// Records a storage error as a health event.
    pub fn storage_error(&self, cause: &dyn std::fmt::Display, what: &str) {
        self.storage_errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!(target: "rapidmq::health", event = "storage_error", what, cause = %cause, "storage error");
    }

    pub fn connection_opened(&self, transport: Transport) {
        self.connections[transport as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self, transport: Transport) {
        self.connections[transport as usize].fetch_sub(1, Ordering::Relaxed);
    }

    /// Replaces what is known of `figures.group`.
    pub fn set_cluster_group(&self, figures: GroupFigures) {
        let mut groups = self.cluster.lock();
        match groups.iter_mut().find(|g| g.group == figures.group) {
            Some(known) => *known = figures,
            None => groups.push(figures),
        }
    }

    /// The raft groups as last reported; empty in single-node mode.
    pub fn cluster_groups(&self) -> Vec<GroupFigures> {
        self.cluster.lock().clone()
    }

    pub fn connections(&self, transport: Transport) -> i64 {
        self.connections[transport as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_past_the_limit_share_the_overflow_series() {
        let metrics = Metrics::new(true, 2, Duration::from_secs(1));
        let a = metrics.topic("t", "a");
        let b = metrics.topic("t", "b");
        let c = metrics.topic("t", "c");
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(Arc::ptr_eq(&c, &metrics.topic("t", "d")));
        assert!(Arc::ptr_eq(&a, &metrics.topic("t", "a")));
        assert!(!metrics.has_own_series("t", "c"));
        metrics.remove_topic("t", "a");
        assert!(!Arc::ptr_eq(&metrics.topic("t", "e"), &c));
        assert_eq!(metrics.topic_counters().len(), 3);
    }

    #[test]
    fn histogram_quantiles_come_from_the_window_between_snapshots() {
        let h = AtomicHistogram::latency();
        for _ in 0..100 {
            h.observe(0.000_02);
        }
        let first = h.snapshot();
        for _ in 0..99 {
            h.observe(0.003);
        }
        h.observe(0.2);
        let second = h.snapshot();
        assert_eq!(second.count, 200);
        assert_eq!(second.quantile_since(Some(&first), 0.5), Some(0.005));
        assert_eq!(second.quantile_since(Some(&first), 0.99), Some(0.005));
        assert_eq!(second.quantile_since(Some(&first), 1.0), Some(0.25));
        assert_eq!(first.quantile_since(None, 0.5), Some(0.000_05));
        assert_eq!(second.quantile_since(Some(&second), 0.5), None);
    }

    #[test]
    fn lag_series_past_the_limit_share_the_overflow_set_and_keep_their_slots() {
        let metrics = Metrics::new(true, 10, Duration::from_secs(1)).with_max_lag_series(10);
        let seen = [
            ("t", "a", "s1", 4),
            ("t", "a", "s2", 4),
            ("t", "b", "s1", 4),
            ("t", "b", "s2", 2),
        ];
        assert_eq!(
            metrics.own_subscription_series(&seen),
            [true, true, false, true],
            "8 series, then 12 is over the cap, then 10 fits"
        );
        // A subscription seen earlier in a later scrape does not take a slot already held.
        let reordered = [seen[2], seen[0], seen[1], seen[3]];
        assert_eq!(
            metrics.own_subscription_series(&reordered),
            [false, true, true, true]
        );
        // Deleting one frees its slots for the next.
        let after_delete = [seen[1], seen[2], seen[3]];
        assert_eq!(
            metrics.own_subscription_series(&after_delete),
            [true, true, true]
        );
    }
}
