//! The dashboard's view: a [`Sampler`] turns the counters into rates over the interval since
//! its previous sample, and latency histograms into p50/p99 over that interval.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::Serialize;

use super::Source;
use super::cluster::{ClusterCounters, GroupFigures};
use super::metrics::{self, HistogramSnapshot, Transport};

#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub time_ms: i64,
    pub uptime_ms: u64,
    /// Seconds the rates are taken over.
    pub interval_s: f64,
    pub totals: Totals,
    pub topics: Vec<TopicRow>,
    pub subscriptions: Vec<SubscriptionRow>,
    pub health: Health,
    /// Cluster mode: each raft group as this node sees it; empty on a single node.
    pub cluster: Vec<GroupFigures>,
    /// Cluster mode: the partition groups summed, and the traffic to each peer.
    pub cluster_partitions: PartitionSummary,
}

/// [`ClusterCounters`] as read now.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PartitionSummary {
    pub groups: i64,
    pub leading: i64,
    pub leaderless: i64,
    pub leader_changes: u64,
    pub elections: u64,
    /// `(peer, raft batches, raft messages)` sent so far.
    pub traffic: Vec<(u64, u64, u64)>,
}

impl PartitionSummary {
    fn of(c: &ClusterCounters) -> PartitionSummary {
        let load = |a: &std::sync::atomic::AtomicI64| a.load(Ordering::Relaxed);
        PartitionSummary {
            groups: load(&c.partition_groups),
            leading: load(&c.partition_groups_leading),
            leaderless: load(&c.partition_groups_leaderless),
            leader_changes: c.partition_leader_changes.load(Ordering::Relaxed),
            elections: c.partition_elections.load(Ordering::Relaxed),
            traffic: c.traffic(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Totals {
    pub messages_in_per_s: f64,
    pub messages_out_per_s: f64,
    pub bytes_in_per_s: f64,
    pub bytes_out_per_s: f64,
    /// Publish latency quantiles over the interval, ms; null when nothing was published.
    pub publish_p50_ms: Option<f64>,
    pub publish_p99_ms: Option<f64>,
    pub end_to_end_p50_ms: Option<f64>,
    pub end_to_end_p99_ms: Option<f64>,
    pub connections_grpc: i64,
    pub connections_http: i64,
    pub messages_in_total: u64,
    pub messages_out_total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopicRow {
    pub tenant: String,
    pub name: String,
    pub partitions: usize,
    pub bytes: u64,
    /// Messages retained (high watermark minus log start, summed over partitions).
    pub messages: u64,
    /// Null for topics past the series limit (they count under `_other`).
    pub in_per_s: Option<f64>,
    pub out_per_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionRow {
    pub tenant: String,
    pub topic: String,
    pub name: String,
    pub mode: &'static str,
    pub lag: u64,
    pub members: usize,
    pub in_flight: u64,
    pub redeliveries: u64,
    pub dead_lettered: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// `ok`, or `degraded` after storage errors or slow fsyncs in the last interval.
    pub status: &'static str,
    pub storage_errors: u64,
    pub slow_fsyncs: u64,
    pub fsyncs: u64,
    pub fsync_p99_ms: Option<f64>,
    pub errors: u64,
    pub metrics_enabled: bool,
    pub flow_events_capacity: usize,
}

/// Remembers the previous sample so the next one can report rates.
pub struct Sampler {
    at: Instant,
    topics: HashMap<(String, String), (u64, u64)>,
    totals: (u64, u64, u64, u64),
    publish: HistogramSnapshot,
    end_to_end: HistogramSnapshot,
    fsync: HistogramSnapshot,
    health: (u64, u64),
}

fn quantile_ms(now: &HistogramSnapshot, before: &HistogramSnapshot, q: f64) -> Option<f64> {
    now.quantile_since(Some(before), q).map(|s| s * 1000.0)
}

impl Sampler {
    pub fn new(source: &dyn Source) -> Sampler {
        let mut sampler = Sampler {
            at: Instant::now(),
            topics: HashMap::new(),
            totals: (0, 0, 0, 0),
            publish: HistogramSnapshot::default(),
            end_to_end: HistogramSnapshot::default(),
            fsync: HistogramSnapshot::default(),
            health: (0, 0),
        };
        sampler.sample(source);
        sampler
    }

    pub fn sample(&mut self, source: &dyn Source) -> Overview {
        let m = source.metrics();
        let now = Instant::now();
        let dt = now.duration_since(self.at).as_secs_f64().max(1e-3);
        self.at = now;
        let rate = |now: u64, before: u64| now.saturating_sub(before) as f64 / dt;

        let mut totals = Totals::default();
        let mut sums = (0, 0, 0, 0);
        let mut per_topic = HashMap::new();
        for (tenant, topic, c) in m.topic_counters() {
            let (mi, mo) = (
                c.messages_in.load(Ordering::Relaxed),
                c.messages_out.load(Ordering::Relaxed),
            );
            sums.0 += mi;
            sums.1 += mo;
            sums.2 += c.bytes_in.load(Ordering::Relaxed);
            sums.3 += c.bytes_out.load(Ordering::Relaxed);
            per_topic.insert((tenant, topic), (mi, mo));
        }
        totals.messages_in_per_s = rate(sums.0, self.totals.0);
        totals.messages_out_per_s = rate(sums.1, self.totals.1);
        totals.bytes_in_per_s = rate(sums.2, self.totals.2);
        totals.bytes_out_per_s = rate(sums.3, self.totals.3);
        totals.messages_in_total = sums.0;
        totals.messages_out_total = sums.1;
        self.totals = sums;

        let publish = m.publish_latency.snapshot();
        let end_to_end = m.end_to_end_latency.snapshot();
        let fsync = m.fsync_latency.snapshot();
        totals.publish_p50_ms = quantile_ms(&publish, &self.publish, 0.5);
        totals.publish_p99_ms = quantile_ms(&publish, &self.publish, 0.99);
        totals.end_to_end_p50_ms = quantile_ms(&end_to_end, &self.end_to_end, 0.5);
        totals.end_to_end_p99_ms = quantile_ms(&end_to_end, &self.end_to_end, 0.99);
        totals.connections_grpc = m.connections(Transport::Grpc);
        totals.connections_http = m.connections(Transport::Http);

        let observation = source.observe();
        let topics = observation
            .topics
            .iter()
            .map(|t| {
                let key = (t.tenant.clone(), t.name.clone());
                let rates = per_topic
                    .get(&key)
                    .filter(|_| t.own_series)
                    .map(|&(mi, mo)| {
                        let (pi, po) = self.topics.get(&key).copied().unwrap_or((mi, mo));
                        (rate(mi, pi), rate(mo, po))
                    });
                TopicRow {
                    tenant: t.tenant.clone(),
                    name: t.name.clone(),
                    partitions: t.partitions.len(),
                    bytes: t.partitions.iter().map(|p| p.bytes).sum(),
                    messages: t
                        .partitions
                        .iter()
                        .map(|p| p.high_watermark.saturating_sub(p.log_start_offset))
                        .sum(),
                    in_per_s: rates.map(|r| r.0),
                    out_per_s: rates.map(|r| r.1),
                }
            })
            .collect();
        self.topics = per_topic;

        let subscriptions = observation
            .subscriptions
            .iter()
            .map(|s| {
                let q = s.queue.unwrap_or_default();
                SubscriptionRow {
                    tenant: s.tenant.clone(),
                    topic: s.topic.clone(),
                    name: s.name.clone(),
                    mode: s.mode.label(),
                    lag: s.total_lag(),
                    members: s.members,
                    in_flight: q.in_flight,
                    redeliveries: q.redeliveries,
                    dead_lettered: q.dead_lettered,
                }
            })
            .collect();

        let storage_errors = m.storage_errors.load(Ordering::Relaxed);
        let slow_fsyncs = m.slow_fsyncs.load(Ordering::Relaxed);
        let degraded = storage_errors > self.health.0 || slow_fsyncs > self.health.1;
        self.health = (storage_errors, slow_fsyncs);
        let health = Health {
            status: if degraded { "degraded" } else { "ok" },
            storage_errors,
            slow_fsyncs,
            fsyncs: m.fsyncs.load(Ordering::Relaxed),
            fsync_p99_ms: quantile_ms(&fsync, &self.fsync, 0.99),
            errors: metrics::error_counts().iter().map(|e| e.2).sum(),
            metrics_enabled: m.enabled,
            flow_events_capacity: source.flow().capacity(),
        };
        self.publish = publish;
        self.end_to_end = end_to_end;
        self.fsync = fsync;

        Overview {
            time_ms: observation.time_ms,
            uptime_ms: observation.uptime_ms,
            interval_s: dt,
            totals,
            topics,
            subscriptions,
            health,
            cluster: m.cluster_groups(),
            cluster_partitions: PartitionSummary::of(&m.cluster_counters),
        }
    }
}
