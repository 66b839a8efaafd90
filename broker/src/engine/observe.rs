//! What the engine tells `crate::observability`: scrape-time snapshots of every tenant's topics
//! and subscriptions (the engine is the observability [`Source`]), counting of deliveries
//! (messages, value bytes, end-to-end latency) and the flow events of traced messages.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rapidmq_proto::v1 as pb;

use super::batch::{self, FLAG_TRACED};
use super::queue_session::QueueDelivery;
use super::session::Delivery;
use super::subscriptions::subscription_status;
use super::topic::{Topic, TopicStatus};
use super::{Engine, SubscriptionMode, SubscriptionStatus};
use crate::auth::Resource;
use crate::clock::Clock;
use crate::error::Result;
use crate::observability::flow::FlowPlace;
use crate::observability::{
    FlowEvent, FlowKind, FlowLog, FlowQuery, Metrics, Mode, Observation, PartitionObservation,
    QueueObservation, Source, SubscriptionObservation, TopicObservation, Traced,
};
use crate::principal::Principal;

/// The handles a consumer session counts its deliveries with.
#[derive(Clone)]
pub(crate) struct Observer {
    pub metrics: Arc<Metrics>,
    pub flow: Arc<FlowLog>,
    pub clock: Arc<dyn Clock>,
}

impl Observer {
    /// Counts a delivery of messages `[skip, skip + count)` of a stored batch (`known_bytes`:
    /// their value bytes, when known without walking the batch), and records flow events when
    /// the batch holds traced messages.
    pub fn delivered(
        &self,
        topic: &Topic,
        subscription: Option<&str>,
        delivery: &Delivery,
        flags: u8,
        known_bytes: Option<u64>,
    ) {
        let now = self.clock.now_ms();
        if self.metrics.enabled {
            let counters = &topic.counters;
            counters
                .messages_out
                .fetch_add(u64::from(delivery.count), Ordering::Relaxed);
            let bytes = known_bytes.unwrap_or_else(|| {
                batch::value_bytes(&delivery.payload, delivery.skip, delivery.count)
            });
            counters.bytes_out.fetch_add(bytes, Ordering::Relaxed);
            let age_ms = now.saturating_sub(delivery.append_time_ms).max(0);
            self.metrics
                .end_to_end_latency
                .observe(age_ms as f64 / 1000.0);
        }
        if flags & FLAG_TRACED == 0 || !self.flow.enabled() {
            return;
        }
        let Ok(decoded) = rapidmq_proto::batch::decode(delivery.payload.clone()) else {
            return;
        };
        let range = delivery.skip as usize..(delivery.skip + delivery.count) as usize;
        for (i, message) in decoded.messages.iter().enumerate() {
            if !range.contains(&i) {
                continue;
            }
            if let Some(traced) = Traced::of(message, self.flow.all_messages) {
                let place = FlowPlace {
                    tenant: topic.tenant.as_str(),
                    topic: topic.name(),
                    partition: Some(delivery.partition),
                    offset: Some(delivery.base_offset + i as u64),
                    subscription,
                    attempt: None,
                };
                self.flow.record(now, FlowKind::Delivered, place, &traced);
            }
        }
    }
}

/// Records the flow events of a publish committed at `time_ms`: each traced message was
/// published at its offset, scheduled, or dropped as a duplicate.
pub(super) fn record_publish(
    flow: &FlowLog,
    time_ms: i64,
    topic: &Topic,
    partition: u32,
    payload: &bytes::Bytes,
    base_offset: u64,
    deduplicated: &[u32],
) {
    let Ok(decoded) = rapidmq_proto::batch::decode(payload.clone()) else {
        return;
    };
    let mut offset = base_offset;
    for (i, message) in decoded.messages.iter().enumerate() {
        let (kind, at) = if deduplicated.contains(&(i as u32)) {
            (FlowKind::Deduplicated, None)
        } else if message.delay_ms > 0 || message.deliver_at_ms > 0 {
            (FlowKind::Scheduled, None)
        } else {
            offset += 1;
            (FlowKind::Published, Some(offset - 1))
        };
        if let Some(traced) = Traced::of(message, flow.all_messages) {
            let place = FlowPlace {
                tenant: topic.tenant.as_str(),
                topic: topic.name(),
                partition: Some(partition),
                offset: at,
                ..Default::default()
            };
            flow.record(time_ms, kind, place, &traced);
        }
    }
}

impl Engine {
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn flow(&self) -> &Arc<FlowLog> {
        &self.flow
    }

    pub(crate) fn observer(&self) -> Observer {
        Observer {
            metrics: self.metrics.clone(),
            flow: self.flow.clone(),
            clock: self.clock.clone(),
        }
    }

    pub(super) fn observe_delivery(
        &self,
        topic: &Topic,
        subscription: Option<&str>,
        delivery: &Delivery,
        flags: u8,
        known_bytes: Option<u64>,
    ) {
        self.observer()
            .delivered(topic, subscription, delivery, flags, known_bytes);
    }

    /// Counts queue deliveries handed to a consumer (call right after `QueueSession::next`).
    pub fn observe_queue_deliveries(
        &self,
        topic: &Topic,
        subscription: &str,
        deliveries: &[QueueDelivery],
    ) {
        if deliveries.is_empty() {
            return;
        }
        let now = self.clock.now_ms();
        if self.metrics.enabled {
            let counters = &topic.counters;
            let bytes: u64 = deliveries
                .iter()
                .map(|d| d.message.message.value.len() as u64)
                .sum();
            counters
                .messages_out
                .fetch_add(deliveries.len() as u64, Ordering::Relaxed);
            counters.bytes_out.fetch_add(bytes, Ordering::Relaxed);
            for d in deliveries {
                let age_ms = now.saturating_sub(d.message.append_time_ms).max(0);
                self.metrics
                    .end_to_end_latency
                    .observe(age_ms as f64 / 1000.0);
            }
        }
        if !self.flow.enabled() {
            return;
        }
        for d in deliveries {
            if let Some(traced) = Traced::of(&d.message.message, self.flow.all_messages) {
                let place = FlowPlace {
                    tenant: topic.tenant.as_str(),
                    topic: topic.name(),
                    partition: Some(d.partition),
                    offset: Some(d.offset),
                    subscription: Some(subscription),
                    attempt: Some(d.attempt),
                };
                self.flow.record(now, FlowKind::Delivered, place, &traced);
            }
        }
    }

    /// Records a dead-lettered message (counter and flow event).
    pub(super) fn observe_dead_letter(
        &self,
        topic: &Topic,
        subscription: &str,
        partition: u32,
        offset: u64,
        attempt: u32,
        message: &pb::Message,
    ) {
        topic.counters.dlq_moves.fetch_add(1, Ordering::Relaxed);
        if let Some(traced) = Traced::of(message, self.flow.all_messages)
            && self.flow.enabled()
        {
            let place = FlowPlace {
                tenant: topic.tenant.as_str(),
                topic: topic.name(),
                partition: Some(partition),
                offset: Some(offset),
                subscription: Some(subscription),
                attempt: Some(attempt),
            };
            self.flow
                .record(self.clock.now_ms(), FlowKind::DeadLettered, place, &traced);
        }
    }

    /// Recent flow events of the caller's tenant matching `query`, on topics it may describe
    /// (never refused but for anonymous callers while auth is on).
    pub fn flow_events(&self, principal: &Principal, query: &FlowQuery) -> Result<Vec<FlowEvent>> {
        self.authenticated(principal)?;
        let visible = |e: &FlowEvent| self.visible(principal, Resource::Topic(&e.topic));
        Ok(self
            .flow
            .query_visible(principal.tenant().as_str(), query, visible))
    }
}

impl Source for Engine {
    fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    fn flow(&self) -> &Arc<FlowLog> {
        &self.flow
    }

    /// Every tenant's topics and subscriptions, for `/metrics` and the dashboard.
    fn observe(&self) -> Observation {
        let mut topics: Vec<Arc<Topic>> = self.topics_snapshot();
        topics.sort_by(|a, b| (a.tenant.as_str(), a.name()).cmp(&(b.tenant.as_str(), b.name())));
        let mut observation = Observation {
            time_ms: self.clock.now_ms(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            tail_cache_bytes: self.tail_budget.used() as u64,
            tail_cache_limit: self.tail_budget.limit() as u64,
            ..Default::default()
        };
        for topic in topics {
            let tenant = topic.tenant.as_str().to_string();
            let own_series = self.metrics.has_own_series(&tenant, topic.name());
            let status = TopicStatus::from(&*topic);
            for sub in topic.subscriptions.read().values() {
                let status = subscription_status(&topic, sub);
                observation.subscriptions.push(observed(
                    tenant.clone(),
                    own_series,
                    status,
                    sub.rebalances(),
                ));
            }
            observation.topics.push(TopicObservation {
                tenant,
                name: status.name,
                own_series,
                partitions: status
                    .partitions
                    .iter()
                    .map(|p| PartitionObservation {
                        partition: p.partition,
                        log_start_offset: p.log_start_offset,
                        high_watermark: p.high_watermark,
                        bytes: p.bytes,
                    })
                    .collect(),
            });
        }
        let seen: Vec<_> = observation
            .subscriptions
            .iter()
            .filter(|s| s.own_series)
            .map(|s| {
                (
                    s.tenant.as_str(),
                    s.topic.as_str(),
                    s.name.as_str(),
                    s.lag.len(),
                )
            })
            .collect();
        let mut own = self.metrics.own_subscription_series(&seen).into_iter();
        for s in observation
            .subscriptions
            .iter_mut()
            .filter(|s| s.own_series)
        {
            s.own_series = own.next().unwrap_or(false);
        }
        observation
    }
}

/// A subscription's admin snapshot as observability sees it.
fn observed(
    tenant: String,
    own_series: bool,
    status: SubscriptionStatus,
    rebalances: u64,
) -> SubscriptionObservation {
    SubscriptionObservation {
        tenant,
        mode: match status.mode {
            SubscriptionMode::Stream => Mode::Stream,
            SubscriptionMode::Queue => Mode::Queue,
        },
        own_series,
        lag: status.cursors.iter().map(|c| (c.0, c.3)).collect(),
        members: status.members.len(),
        queue: status.queue.map(|(_, in_flight, q)| QueueObservation {
            in_flight,
            redeliveries: q.redeliveries,
            dead_lettered: q.dead_lettered,
            expired: q.expired,
        }),
        rebalances,
        topic: status.topic,
        name: status.name,
    }
}
