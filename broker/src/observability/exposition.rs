//! `/metrics`: the Prometheus text exposition, encoded by `prometheus-client` from a collector
//! that reads the broker's atomics and asks its [`Source`] (the engine) for scrape-time figures.
//!
//! Every metric is named `rapidmq_*`; counters end in `_total`. The full list, with labels, is
//! in `docs/observability.md`.

use std::fmt::Write as _;
use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::metrics::{self, HistogramSnapshot, OVERFLOW_LABEL, Transport};
use super::{Mode, Source};

/// The content type of the exposition (OpenMetrics text, which Prometheus scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;

/// Reads the source on every scrape.
#[derive(Debug)]
struct SourceCollector {
    source: Weak<dyn Source>,
}

/// The registry behind `/metrics`. It holds `source` weakly: once that is gone, scrapes are empty.
pub fn registry<S: Source + 'static>(source: &Arc<S>) -> Registry {
    let source: Weak<dyn Source> = Arc::downgrade(source) as Weak<S>;
    let mut registry = Registry::with_prefix("rapidmq");
    registry.register_collector(Box::new(SourceCollector { source }));
    registry
}

/// Encodes `registry` as Prometheus text.
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode_registry(&mut out, registry)?;
    writeln!(out, "# EOF")?;
    Ok(out)
}

fn load(a: &std::sync::atomic::AtomicU64) -> u64 {
    a.load(std::sync::atomic::Ordering::Relaxed)
}

pub(super) fn counter(m: &mut MetricEncoder, v: u64) -> std::fmt::Result {
    m.encode_counter::<NoLabelSet, _, u64>(&v, None)
}

/// One metric family: a descriptor and its labelled samples.
pub(super) fn family<V>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    kind: MetricType,
    samples: impl IntoIterator<Item = (Labels, V)>,
    mut write: impl FnMut(&mut MetricEncoder, V) -> std::fmt::Result,
) -> std::fmt::Result {
    let mut m = encoder.encode_descriptor(name, help, unit, kind)?;
    for (labels, value) in samples {
        let mut sample = m.encode_family(&labels)?;
        write(&mut sample, value)?;
    }
    Ok(())
}

fn histogram(m: &mut MetricEncoder, h: &HistogramSnapshot) -> std::fmt::Result {
    // prometheus-client takes per-bucket counts and accumulates them itself.
    let mut previous = 0;
    let buckets: Vec<(f64, u64)> = h
        .buckets
        .iter()
        .map(|&(bound, cumulative)| {
            let count = cumulative - previous;
            previous = cumulative;
            (bound, count)
        })
        .collect();
    m.encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)
}

impl Collector for SourceCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let Some(source) = self.source.upgrade() else {
            return Ok(());
        };
        let m = source.metrics().clone();
        let observation = source.observe();
        let e = &mut encoder;
        use MetricType::{Counter, Gauge, Histogram};

        // Throughput per tenant and topic.
        let topics = m.topic_counters();
        let topic_labels = |tenant: &str, topic: &str| -> Labels {
            vec![("tenant", tenant.into()), ("topic", topic.into())]
        };
        let per_topic = |pick: fn(&metrics::TopicCounters) -> u64| {
            topics
                .iter()
                .map(|(tenant, topic, c)| (topic_labels(tenant, topic), pick(c)))
                .collect::<Vec<_>>()
        };
        for (name, help, unit, pick) in [
            (
                "messages_in",
                "Messages appended to a topic by publishers.",
                None,
                (|c: &metrics::TopicCounters| load(&c.messages_in))
                    as fn(&metrics::TopicCounters) -> u64,
            ),
            (
                "messages_in",
                "Bytes of message values published to a topic.",
                Some(Unit::Bytes),
                |c| load(&c.bytes_in),
            ),
            (
                "messages_out",
                "Messages handed to consumers (fetch, stream and queue deliveries, redeliveries included).",
                None,
                |c| load(&c.messages_out),
            ),
            (
                "messages_out",
                "Bytes of message values handed to consumers.",
                Some(Unit::Bytes),
                |c| load(&c.bytes_out),
            ),
            (
                "dedup_hits",
                "Messages dropped as msg-id duplicates.",
                None,
                |c| load(&c.dedup_hits),
            ),
            (
                "ttl_expired",
                "Messages skipped by stream consumers because their TTL had passed.",
                None,
                |c| load(&c.ttl_expired),
            ),
            (
                "dlq_moves",
                "Messages moved to a dead-letter topic from this topic's subscriptions.",
                None,
                |c| load(&c.dlq_moves),
            ),
        ] {
            family(
                e,
                name,
                help,
                unit.as_ref(),
                Counter,
                per_topic(pick),
                counter,
            )?;
        }

        // Latencies and the write path.
        family(
            e,
            "publish_latency",
            "From receiving a publish batch to its acknowledgement (group commit done).",
            Some(&Unit::Seconds),
            Histogram,
            [(Labels::new(), m.publish_latency.snapshot())],
            |s, h| histogram(s, &h),
        )?;
        family(
            e,
            "end_to_end_latency",
            "From broker append to hand-out to a consumer.",
            Some(&Unit::Seconds),
            Histogram,
            [(Labels::new(), m.end_to_end_latency.snapshot())],
            |s, h| histogram(s, &h),
        )?;
        family(
            e,
            "fsync_latency",
            "Duration of fsyncs (group commits of fsync topics and the interval fsync of buffered ones).",
            Some(&Unit::Seconds),
            Histogram,
            [(Labels::new(), m.fsync_latency.snapshot())],
            |s, h| histogram(s, &h),
        )?;
        family(
            e,
            "group_commit_messages",
            "Messages written per group commit.",
            None,
            Histogram,
            [(Labels::new(), m.group_commit_messages.snapshot())],
            |s, h| histogram(s, &h),
        )?;
        family(
            e,
            "group_commit_kibibytes",
            "KiB written per group commit.",
            None,
            Histogram,
            [(Labels::new(), m.group_commit_kib.snapshot())],
            |s, h| histogram(s, &h),
        )?;
        let plain = |v: u64| [(Labels::new(), v)];
        family(
            e,
            "fsyncs",
            "fsyncs issued.",
            None,
            Counter,
            plain(load(&m.fsyncs)),
            counter,
        )?;
        family(
            e,
            "slow_fsyncs",
            "fsyncs slower than observability.slow_fsync_ms.",
            None,
            Counter,
            plain(load(&m.slow_fsyncs)),
            counter,
        )?;
        family(
            e,
            "storage_errors",
            "Failed storage writes and fsyncs.",
            None,
            Counter,
            plain(load(&m.storage_errors)),
            counter,
        )?;
        family(
            e,
            "recovery_clamps",
            "Cursors and queue states clamped to a recovered log at startup.",
            None,
            Counter,
            plain(load(&m.recovery_clamps)),
            counter,
        )?;
        family(
            e,
            "audit_dropped",
            "Authentication failures and denials not recorded in the audit log because its queue was full.",
            None,
            Counter,
            plain(load(&m.audit_dropped)),
            counter,
        )?;

        // Connections and errors.
        family(
            e,
            "connections",
            "Open client connections per listener.",
            None,
            Gauge,
            Transport::ALL.map(|t| (vec![("transport", t.label().to_string())], m.connections(t))),
            |s, v| s.encode_gauge(&v),
        )?;
        family(
            e,
            "errors",
            "Errors answered to clients, by transport and stable error code.",
            None,
            Counter,
            metrics::error_counts().into_iter().map(|(t, code, n)| {
                (
                    vec![
                        ("transport", t.label().to_string()),
                        ("code", code.name().to_string()),
                    ],
                    n,
                )
            }),
            counter,
        )?;

        // Cluster mode: each raft group as this node sees it (nothing in single-node mode).
        let groups = m.cluster_groups();
        if !groups.is_empty() {
            super::cluster::families(e, &groups)?;
            family(
                e,
                "cluster_forwarded_appends",
                "Appends this node forwarded to a partition group's leader on another node (clients that route to leaders keep it still).",
                None,
                Counter,
                [(
                    Vec::new(),
                    crate::cluster::partition_writer::forwarded_appends(),
                )],
                counter,
            )?;
            super::cluster::counter_families(e, &m.cluster_counters)?;
        }

        // Storage per topic (own series, then the overflow set summed).
        let mut storage: Vec<(Labels, u64)> = Vec::new();
        let mut partitions_gauge: Vec<(Labels, u64)> = Vec::new();
        let mut other_bytes = 0;
        let mut other_partitions = 0;
        for topic in &observation.topics {
            let bytes: u64 = topic.partitions.iter().map(|p| p.bytes).sum();
            if topic.own_series {
                storage.push((topic_labels(&topic.tenant, &topic.name), bytes));
                partitions_gauge.push((
                    topic_labels(&topic.tenant, &topic.name),
                    topic.partitions.len() as u64,
                ));
            } else {
                other_bytes += bytes;
                other_partitions += topic.partitions.len() as u64;
            }
        }
        if other_partitions > 0 {
            storage.push((topic_labels(OVERFLOW_LABEL, OVERFLOW_LABEL), other_bytes));
            partitions_gauge.push((
                topic_labels(OVERFLOW_LABEL, OVERFLOW_LABEL),
                other_partitions,
            ));
        }
        family(
            e,
            "storage",
            "Bytes a topic holds in storage.",
            Some(&Unit::Bytes),
            Gauge,
            storage,
            |s, v| s.encode_gauge(&v),
        )?;
        family(
            e,
            "topic_partitions",
            "Partitions of a topic.",
            None,
            Gauge,
            partitions_gauge,
            |s, v| s.encode_gauge(&v),
        )?;

        // Subscriptions: lag per partition, in-flight and queue counters.
        let mut lag: Vec<(Labels, u64)> = Vec::new();
        let mut in_flight: Vec<(Labels, u64)> = Vec::new();
        let mut redeliveries: Vec<(Labels, u64)> = Vec::new();
        let mut dead_lettered: Vec<(Labels, u64)> = Vec::new();
        let mut expired: Vec<(Labels, u64)> = Vec::new();
        let mut members: Vec<(Labels, u64)> = Vec::new();
        let mut other = [0u64; 5];
        let mut counts: std::collections::BTreeMap<&'static str, u64> = Default::default();
        let mut rebalances: Vec<(Labels, u64)> = Vec::new();
        for sub in &observation.subscriptions {
            let (tenant, own) = (&sub.tenant, sub.own_series);
            *counts.entry(sub.mode.label()).or_default() += 1;
            let q = sub.queue.unwrap_or_default();
            let flight = q.in_flight;
            if !own {
                other[0] += sub.total_lag();
                other[1] += flight;
                other[2] += q.redeliveries;
                other[3] += q.dead_lettered;
                other[4] += q.expired;
                continue;
            }
            let labels = || -> Labels {
                vec![
                    ("tenant", tenant.clone()),
                    ("topic", sub.topic.clone()),
                    ("subscription", sub.name.clone()),
                ]
            };
            for &(partition, l) in &sub.lag {
                let mut with_partition = labels();
                with_partition.push(("partition", partition.to_string()));
                lag.push((with_partition, l));
            }
            members.push((labels(), sub.members as u64));
            if sub.mode == Mode::Stream {
                rebalances.push((labels(), sub.rebalances));
            }
            if sub.queue.is_some() {
                in_flight.push((labels(), flight));
                redeliveries.push((labels(), q.redeliveries));
                dead_lettered.push((labels(), q.dead_lettered));
                expired.push((labels(), q.expired));
            }
        }
        if other.iter().any(|&v| v > 0) {
            let labels = || -> Labels {
                vec![
                    ("tenant", OVERFLOW_LABEL.into()),
                    ("topic", OVERFLOW_LABEL.into()),
                    ("subscription", OVERFLOW_LABEL.into()),
                ]
            };
            let mut with_partition = labels();
            with_partition.push(("partition", OVERFLOW_LABEL.into()));
            lag.push((with_partition, other[0]));
            in_flight.push((labels(), other[1]));
            redeliveries.push((labels(), other[2]));
            dead_lettered.push((labels(), other[3]));
            expired.push((labels(), other[4]));
        }
        family(
            e,
            "subscriptions",
            "Subscriptions by mode.",
            None,
            Gauge,
            ["stream", "queue"].map(|mode| {
                (
                    vec![("mode", mode.to_string())],
                    counts.get(mode).copied().unwrap_or(0),
                )
            }),
            |s, v| s.encode_gauge(&v),
        )?;
        family(
            e,
            "consumer_lag",
            "Messages between a subscription's committed (stream) or acked-through (queue) offset and the partition's high watermark.",
            None,
            Gauge,
            lag,
            |s, v| s.encode_gauge(&v),
        )?;
        family(
            e,
            "subscription_members",
            "Live consumers of a subscription.",
            None,
            Gauge,
            members,
            |s, v| s.encode_gauge(&v),
        )?;
        family(
            e,
            "rebalances",
            "Consumer-group rebalances of a stream subscription (members joining or leaving) since the broker started.",
            None,
            Counter,
            rebalances,
            counter,
        )?;
        family(
            e,
            "in_flight",
            "Queue deliveries awaiting ack.",
            None,
            Gauge,
            in_flight,
            |s, v| s.encode_gauge(&v),
        )?;
        family(
            e,
            "redeliveries",
            "Queue messages delivered again (nack or ack deadline).",
            None,
            Counter,
            redeliveries,
            counter,
        )?;
        family(
            e,
            "dead_lettered",
            "Queue messages moved to the dead-letter topic.",
            None,
            Counter,
            dead_lettered,
            counter,
        )?;
        family(
            e,
            "queue_ttl_expired",
            "Queue messages dropped because their TTL passed.",
            None,
            Counter,
            expired,
            counter,
        )?;
        family(
            e,
            "uptime",
            "Seconds since the broker started.",
            Some(&Unit::Seconds),
            Gauge,
            [(Labels::new(), observation.uptime_ms as f64 / 1000.0)],
            |s, v| s.encode_gauge(&v),
        )?;
        family(
            e,
            "tail_cache",
            "Bytes of recent batches cached in memory, across partitions.",
            Some(&Unit::Bytes),
            Gauge,
            [(Labels::new(), observation.tail_cache_bytes)],
            |s, v| s.encode_gauge(&v),
        )?;
        family(
            e,
            "tail_cache_limit",
            "The tail cache's broker-wide budget (storage.tail_cache_bytes).",
            Some(&Unit::Bytes),
            Gauge,
            [(Labels::new(), observation.tail_cache_limit)],
            |s, v| s.encode_gauge(&v),
        )?;
        let flow = source.flow();
        family(
            e,
            "flow_events_capacity",
            "Capacity of the message-flow event ring buffer.",
            None,
            Gauge,
            [(Labels::new(), flow.capacity() as u64)],
            |s, v| s.encode_gauge(&v),
        )?;
        family(
            e,
            "flow_events",
            "Bytes the message-flow event ring buffer holds.",
            Some(&Unit::Bytes),
            Gauge,
            [(Labels::new(), flow.bytes() as u64)],
            |s, v| s.encode_gauge(&v),
        )?;
        family(
            e,
            "flow_events_limit",
            "Byte budget of the message-flow event ring buffer (observability.flow_events_bytes).",
            Some(&Unit::Bytes),
            Gauge,
            [(Labels::new(), flow.max_bytes() as u64)],
            |s, v| s.encode_gauge(&v),
        )?;
        Ok(())
    }
}
