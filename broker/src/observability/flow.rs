//! Message-flow events: a bounded ring buffer of what happened to traced messages (published,
//! scheduled, deduplicated, delivered, dead-lettered), queryable by `msg-id` header or key.
//!
//! The ring is bounded twice: in events (`observability.flow_events`) and in bytes
//! (`observability.flow_events_bytes`, each event counted as its struct plus its strings, which
//! carry client-chosen keys and header values). The oldest events go first; an event larger than
//! the whole byte budget is not kept (its `seq` still counts, so the gap shows).
//!
//! A message is traced when it carries a W3C `traceparent` or a `msg-id` header, or when
//! `observability.flow_all_messages` is on. Untraced traffic pays one flag test per batch: the
//! broker marks stored batches that hold traced messages (`batch::FLAG_TRACED`) and only those
//! are decoded on delivery.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rapidmq_proto::v1 as pb;
use serde::Serialize;

pub use rapidmq_proto::TRACEPARENT_HEADER;

/// What happened to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// Appended to the log (committed) at `partition`/`offset`.
    Published,
    /// Held in the delay schedule; appended when due.
    Scheduled,
    /// Dropped as a msg-id duplicate within the topic's dedup window.
    Deduplicated,
    /// Handed to a consumer of `subscription` (absent for fetches and ephemeral tails).
    Delivered,
    /// Moved to the subscription's dead-letter topic.
    DeadLettered,
}

/// One flow event.
#[derive(Debug, Clone, Serialize)]
pub struct FlowEvent {
    /// Increases by one per event recorded, so gaps show events that fell out of the buffer.
    pub seq: u64,
    pub time_ms: i64,
    pub kind: FlowKind,
    pub tenant: String,
    pub topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl FlowEvent {
    /// Bytes the event holds in memory: the struct and the heap capacity of its strings.
    pub fn footprint(&self) -> usize {
        let strings = [
            Some(&self.tenant),
            Some(&self.topic),
            self.subscription.as_ref(),
            self.msg_id.as_ref(),
            self.key.as_ref(),
            self.traceparent.as_ref(),
        ];
        std::mem::size_of::<FlowEvent>()
            + strings
                .into_iter()
                .flatten()
                .map(String::capacity)
                .sum::<usize>()
    }
}

/// The identity of a traced message: what flow events are found by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traced {
    pub msg_id: Option<String>,
    pub key: Option<String>,
    pub traceparent: Option<String>,
}

impl Traced {
    /// The message's identity if it is traced (`all`: every message is).
    pub fn of(message: &pb::Message, all: bool) -> Option<Traced> {
        let mut traced = Traced::default();
        for header in &message.headers {
            if header.key == TRACEPARENT_HEADER {
                traced.traceparent = Some(String::from_utf8_lossy(&header.value).into_owned());
            } else if header.key == rapidmq_proto::MSG_ID_HEADER {
                traced.msg_id = Some(String::from_utf8_lossy(&header.value).into_owned());
            }
        }
        if traced.traceparent.is_none() && traced.msg_id.is_none() && !all {
            return None;
        }
        if let Some(key) = &message.key {
            traced.key = Some(String::from_utf8_lossy(key).into_owned());
        }
        Some(traced)
    }
}

/// Where an event happened.
#[derive(Debug, Clone, Default)]
pub struct FlowPlace<'a> {
    pub tenant: &'a str,
    pub topic: &'a str,
    pub partition: Option<u32>,
    pub offset: Option<u64>,
    pub subscription: Option<&'a str>,
    pub attempt: Option<u32>,
}

/// The ring buffer.
#[derive(Debug)]
pub struct FlowLog {
    capacity: usize,
    max_bytes: usize,
    /// Trace every message, not only those with a traceparent or msg-id header.
    pub all_messages: bool,
    ring: Mutex<Ring>,
    next_seq: AtomicU64,
}

#[derive(Debug, Default)]
struct Ring {
    events: VecDeque<FlowEvent>,
    /// Sum of [`FlowEvent::footprint`] over `events`.
    bytes: usize,
}

/// What a query selects.
#[derive(Debug, Clone, Default)]
pub struct FlowQuery {
    pub msg_id: Option<String>,
    pub key: Option<String>,
    pub traceparent: Option<String>,
    pub topic: Option<String>,
    pub limit: usize,
}

impl FlowLog {
    /// A buffer of at most `capacity` events and `max_bytes` bytes; 0 for either records nothing.
    pub fn new(capacity: usize, max_bytes: usize, all_messages: bool) -> FlowLog {
        FlowLog {
            capacity,
            max_bytes,
            all_messages,
            ring: Mutex::new(Ring {
                events: VecDeque::with_capacity(capacity.min(65_536)),
                bytes: 0,
            }),
            next_seq: AtomicU64::new(1),
        }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0 && self.max_bytes > 0
    }

    /// The byte budget of the buffer.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Bytes the buffered events take now (as [`FlowEvent::footprint`] counts them).
    pub fn bytes(&self) -> usize {
        self.ring.lock().bytes
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records that `kind` happened at `time_ms` (ms since the Unix epoch, by the engine's clock).
    pub fn record(&self, time_ms: i64, kind: FlowKind, place: FlowPlace<'_>, traced: &Traced) {
        if !self.enabled() {
            return;
        }
        let event = FlowEvent {
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            time_ms,
            kind,
            tenant: place.tenant.to_string(),
            topic: place.topic.to_string(),
            partition: place.partition,
            offset: place.offset,
            subscription: place.subscription.map(str::to_string),
            attempt: place.attempt,
            msg_id: traced.msg_id.clone(),
            key: traced.key.clone(),
            traceparent: traced.traceparent.clone(),
        };
        tracing::debug!(
            target: "rapidmq::flow",
            kind = ?event.kind,
            topic = %event.topic,
            partition = event.partition,
            offset = event.offset,
            subscription = event.subscription.as_deref(),
            msg_id = event.msg_id.as_deref(),
            traceparent = event.traceparent.as_deref(),
            "message flow"
        );
        let size = event.footprint();
        if size > self.max_bytes {
            return;
        }
        let mut ring = self.ring.lock();
        while ring.events.len() >= self.capacity || ring.bytes + size > self.max_bytes {
            let Some(old) = ring.events.pop_front() else {
                break;
            };
            ring.bytes -= old.footprint();
        }
        ring.bytes += size;
        ring.events.push_back(event);
    }

    /// Events of `tenant` matching every given field, oldest first, at most `limit` (the newest).
    pub fn query(&self, tenant: &str, query: &FlowQuery) -> Vec<FlowEvent> {
        self.query_visible(tenant, query, |_| true)
    }

    /// [`FlowLog::query`] over the events `visible` keeps (the caller may describe their topic),
    /// so hidden events do not use up the limit.
    pub fn query_visible(
        &self,
        tenant: &str,
        query: &FlowQuery,
        visible: impl Fn(&FlowEvent) -> bool,
    ) -> Vec<FlowEvent> {
        let matches = |e: &FlowEvent| {
            e.tenant == tenant
                && visible(e)
                && query
                    .msg_id
                    .as_ref()
                    .is_none_or(|m| e.msg_id.as_ref() == Some(m))
                && query.key.as_ref().is_none_or(|k| e.key.as_ref() == Some(k))
                && query
                    .traceparent
                    .as_ref()
                    .is_none_or(|t| e.traceparent.as_ref() == Some(t))
                && query.topic.as_ref().is_none_or(|t| &e.topic == t)
        };
        let ring = self.ring.lock();
        let mut found: Vec<FlowEvent> = ring
            .events
            .iter()
            .rev()
            .filter(|e| matches(e))
            .take(query.limit)
            .cloned()
            .collect();
        found.reverse();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(headers: &[(&str, &str)], key: &str) -> pb::Message {
        pb::Message {
            key: Some(key.as_bytes().to_vec().into()),
            headers: headers
                .iter()
                .map(|(k, v)| pb::Header {
                    key: k.to_string(),
                    value: v.as_bytes().to_vec().into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_messages_with_a_traceparent_or_msg_id_are_traced_by_default() {
        assert_eq!(Traced::of(&message(&[], "k"), false), None);
        let traced = Traced::of(&message(&[("msg-id", "m1")], "k"), false).unwrap();
        assert_eq!(traced.msg_id.as_deref(), Some("m1"));
        assert_eq!(traced.key.as_deref(), Some("k"));
        assert!(Traced::of(&message(&[], "k"), true).is_some());
    }

    #[test]
    fn the_buffer_keeps_the_newest_events_and_queries_by_msg_id_or_key() {
        let log = FlowLog::new(3, 1 << 20, false);
        let place = || FlowPlace {
            tenant: "default",
            topic: "t",
            ..Default::default()
        };
        for i in 0..5 {
            let traced = Traced {
                msg_id: Some(format!("m{}", i % 2)),
                key: Some(format!("k{i}")),
                traceparent: None,
            };
            log.record(1_000 + i, FlowKind::Published, place(), &traced);
        }
        let by_id = FlowQuery {
            msg_id: Some("m0".into()),
            limit: 10,
            ..Default::default()
        };
        let found = log.query("default", &by_id);
        assert_eq!(found.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 5]);
        let by_key = FlowQuery {
            key: Some("k0".into()),
            limit: 10,
            ..Default::default()
        };
        assert!(log.query("default", &by_key).is_empty());
        assert!(log.query("other", &by_id).is_empty());
    }

    fn event_with_key(log: &FlowLog, key: String) {
        let place = FlowPlace {
            tenant: "default",
            topic: "t",
            ..Default::default()
        };
        let traced = Traced {
            msg_id: Some("m".into()),
            key: Some(key),
            traceparent: None,
        };
        log.record(1_000, FlowKind::Published, place, &traced);
    }

    #[test]
    fn the_buffer_is_bounded_in_bytes_and_drops_the_oldest_events_first() {
        let max_bytes = 64 * 1024;
        let log = FlowLog::new(1_000_000, max_bytes, false);
        let all = FlowQuery {
            limit: usize::MAX,
            ..Default::default()
        };
        // Small events: many fit.
        for i in 0..100 {
            event_with_key(&log, format!("k{i}"));
        }
        assert_eq!(log.query("default", &all).len(), 100);
        // Events with 10 KiB keys: only the newest few fit, however many are recorded.
        for i in 0..1_000 {
            event_with_key(&log, format!("{i:05}{}", "x".repeat(10 * 1024)));
            assert!(
                log.bytes() <= max_bytes,
                "over the byte budget after event {i}"
            );
        }
        let kept = log.query("default", &all);
        assert!((4..=6).contains(&kept.len()), "{} events kept", kept.len());
        let total: usize = kept.iter().map(FlowEvent::footprint).sum();
        assert_eq!(total, log.bytes());
        let newest = kept.last().unwrap();
        assert!(newest.key.as_ref().unwrap().starts_with("00999"));
        assert_eq!(newest.seq, 1_100);
        // An event larger than the whole budget is not kept; the ones before it stay.
        event_with_key(&log, "y".repeat(max_bytes));
        assert_eq!(log.query("default", &all).len(), kept.len());
        assert_eq!(log.query("default", &all).last().unwrap().seq, 1_100);
    }
}
