//! C views of the core's domain types, and their conversions. Inputs (`RapidmqMessage`,
//! `RapidmqTopicConfig`, `RapidmqStart`) are read during the call; outputs are plain values or
//! views into a result object's arena.

use std::time::Duration;

use bytes::Bytes;
use rapidmq_core as core;

use crate::arena::Arena;
use crate::buffer::{RapidmqSlice, RapidmqStr};
use crate::error::{FfiError, FfiResult};

/// A header passed in: key (UTF-8) and value.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqHeaderIn {
    /// The key, UTF-8.
    pub key: RapidmqStr,
    /// The value.
    pub value: RapidmqStr,
}

/// A message to send. Pointers are borrowed for the duration of the call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqMessage {
    /// The payload.
    pub value: RapidmqStr,
    /// Whether `key` is set (an empty key is a key).
    pub has_key: bool,
    /// The key: messages with the same key go to the same partition.
    pub key: RapidmqStr,
    /// Headers, in order; keys may repeat.
    pub headers: *const RapidmqHeaderIn,
    /// Number of headers.
    pub headers_len: usize,
    /// Producer timestamp in ms since the epoch; 0: the time of the send.
    pub timestamp_ms: i64,
    /// Deliver this many ms after the broker receives it (0: no delay).
    pub delay_ms: u64,
    /// Deliver at this time, ms since the epoch (0: not set).
    pub deliver_at_ms: i64,
    /// Whether `ttl_ms` is set.
    pub has_ttl: bool,
    /// Time to live from the broker's append time, in ms.
    pub ttl_ms: u64,
    /// 0 (lowest) to 9 (highest); above 9 the broker refuses the batch (`INVALID_PRIORITY`).
    pub priority: u8,
}

impl RapidmqMessage {
    /// The core message. Safety: the pointers are valid as documented.
    pub(crate) unsafe fn read_core(&self) -> FfiResult<core::Message> {
        let headers = unsafe { headers_in(self.headers, self.headers_len) }?;
        Ok(core::Message {
            key: self
                .has_key
                .then(|| Bytes::copy_from_slice(unsafe { self.key.bytes() })),
            value: Bytes::copy_from_slice(unsafe { self.value.bytes() }),
            headers,
            timestamp_ms: (self.timestamp_ms != 0).then_some(self.timestamp_ms),
            delay: (self.delay_ms > 0).then(|| Duration::from_millis(self.delay_ms)),
            deliver_at_ms: (self.deliver_at_ms > 0).then_some(self.deliver_at_ms),
            ttl: self.has_ttl.then(|| Duration::from_millis(self.ttl_ms)),
            priority: self.priority,
        })
    }
}

/// Reads `len` headers at `headers`. Safety: they are readable as documented.
pub(crate) unsafe fn headers_in(
    headers: *const RapidmqHeaderIn,
    len: usize,
) -> FfiResult<Vec<(String, Bytes)>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if headers.is_null() {
        return Err(FfiError::null("message headers"));
    }
    let raw = unsafe { std::slice::from_raw_parts(headers, len) };
    raw.iter()
        .map(|h| {
            let key = unsafe { h.key.read_string("header key") }?;
            Ok((key, Bytes::copy_from_slice(unsafe { h.value.bytes() })))
        })
        .collect()
}

/// Reads `len` messages at `messages`.
pub(crate) unsafe fn messages_in(
    messages: *const RapidmqMessage,
    len: usize,
) -> FfiResult<Vec<core::Message>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if messages.is_null() {
        return Err(FfiError::null("messages"));
    }
    let raw = unsafe { std::slice::from_raw_parts(messages, len) };
    raw.iter().map(|m| unsafe { m.read_core() }).collect()
}

/// Durability values (`RapidmqTopicConfig.durability`, `RapidmqDelivery.durability`).
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RapidmqDurability {
    /// Not reported / the broker's default.
    RAPIDMQ_DURABILITY_UNSPECIFIED = 0,
    /// Fsynced before the acknowledgement.
    RAPIDMQ_DURABILITY_FSYNC = 1,
    /// Reached the OS; fsynced on an interval.
    RAPIDMQ_DURABILITY_BUFFERED = 2,
    /// Held in memory only.
    RAPIDMQ_DURABILITY_MEMORY = 3,
}

fn durability_out(d: core::Durability) -> u32 {
    match d {
        core::Durability::Unspecified => 0,
        core::Durability::Fsync => 1,
        core::Durability::Buffered => 2,
        core::Durability::Memory => 3,
    }
}

fn durability_in(d: u32) -> FfiResult<core::Durability> {
    Ok(match d {
        0 => core::Durability::Unspecified,
        1 => core::Durability::Fsync,
        2 => core::Durability::Buffered,
        3 => core::Durability::Memory,
        other => return Err(FfiError::invalid(format!("unknown durability {other}"))),
    })
}

/// What the broker did with a sent message (`RapidmqDelivery.status`).
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RapidmqSendStatus {
    /// Appended; `offset` is set.
    RAPIDMQ_SEND_APPENDED = 0,
    /// In the broker's delay schedule; no offset yet.
    RAPIDMQ_SEND_SCHEDULED = 1,
    /// Dropped as a repeated `msg-id` within the topic's dedup window.
    RAPIDMQ_SEND_DEDUPLICATED = 2,
}

/// Where a sent message went.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqDelivery {
    /// The partition.
    pub partition: u32,
    /// The offset; meaningful only when `status` is `RAPIDMQ_SEND_APPENDED`.
    pub offset: u64,
    /// A `RapidmqSendStatus`.
    pub status: u32,
    /// A `RapidmqDurability`.
    pub durability: u32,
}

impl From<core::Delivery> for RapidmqDelivery {
    fn from(d: core::Delivery) -> RapidmqDelivery {
        RapidmqDelivery {
            partition: d.partition,
            offset: d.offset.unwrap_or(0),
            status: match d.status {
                core::SendStatus::Appended => RapidmqSendStatus::RAPIDMQ_SEND_APPENDED as u32,
                core::SendStatus::Scheduled => RapidmqSendStatus::RAPIDMQ_SEND_SCHEDULED as u32,
                core::SendStatus::Deduplicated => {
                    RapidmqSendStatus::RAPIDMQ_SEND_DEDUPLICATED as u32
                }
            },
            durability: durability_out(d.durability),
        }
    }
}

/// A raw publish acknowledgement (`rapidmq_client_publish_batch`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqPublishAck {
    /// The partition.
    pub partition: u32,
    /// Offset of the first message.
    pub base_offset: u64,
    /// Messages appended.
    pub count: u32,
    /// Whether the broker already had this batch (the offsets are the original ones).
    pub duplicate: bool,
    /// Messages put in the delay schedule.
    pub scheduled: u32,
    /// A `RapidmqDurability`.
    pub durability: u32,
}

impl From<core::PublishAck> for RapidmqPublishAck {
    fn from(a: core::PublishAck) -> RapidmqPublishAck {
        RapidmqPublishAck {
            partition: a.partition,
            base_offset: a.base_offset,
            count: a.count,
            duplicate: a.duplicate,
            scheduled: a.scheduled,
            durability: durability_out(a.durability),
        }
    }
}

/// A header of a received message.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqHeader {
    /// The key, UTF-8.
    pub key: RapidmqSlice,
    /// The value.
    pub value: RapidmqSlice,
}

/// A consumed message; its views live as long as the result object that holds it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqReceivedMessage {
    /// The topic, UTF-8.
    pub topic: RapidmqSlice,
    /// The partition.
    pub partition: u32,
    /// The offset.
    pub offset: u64,
    /// Whether the producer set a key.
    pub has_key: bool,
    /// The key.
    pub key: RapidmqSlice,
    /// The payload.
    pub value: RapidmqSlice,
    /// Headers, in order.
    pub headers: *const RapidmqHeader,
    /// Number of headers.
    pub headers_len: usize,
    /// Producer timestamp, ms since the epoch.
    pub timestamp_ms: i64,
    /// Broker append time, ms since the epoch.
    pub append_time_ms: i64,
    /// The delivery time of a delayed message, ms since the epoch (0: not delayed).
    pub deliver_at_ms: i64,
    /// Whether the message has a time to live.
    pub has_ttl: bool,
    /// Its time to live in ms.
    pub ttl_ms: u64,
    /// 0–9.
    pub priority: u8,
}

pub(crate) fn received(arena: &mut Arena, m: core::ReceivedMessage) -> RapidmqReceivedMessage {
    let view = view_of(arena, &m);
    arena.keep(m);
    view
}

/// Views of `messages`, which the arena keeps: one allocation for the batch, not one per field.
pub(crate) fn received_all(
    arena: &mut Arena,
    messages: Vec<core::ReceivedMessage>,
) -> Vec<RapidmqReceivedMessage> {
    let views = messages.iter().map(|m| view_of(arena, m)).collect();
    arena.keep(messages);
    views
}

/// A view of `m`, valid while `m`'s buffers live: the caller keeps `m` in `arena` (moving a
/// message does not move the bytes its `String`s and `Bytes` point to).
fn view_of(arena: &mut Arena, m: &core::ReceivedMessage) -> RapidmqReceivedMessage {
    let headers: Vec<RapidmqHeader> = m
        .headers
        .iter()
        .map(|(k, v)| RapidmqHeader {
            key: RapidmqSlice::of(k.as_bytes()),
            value: RapidmqSlice::of(v),
        })
        .collect();
    let (headers, headers_len) = arena.array(headers);
    RapidmqReceivedMessage {
        topic: RapidmqSlice::of(m.topic.as_bytes()),
        partition: m.partition,
        offset: m.offset,
        has_key: m.key.is_some(),
        key: m
            .key
            .as_deref()
            .map_or(RapidmqSlice::EMPTY, RapidmqSlice::of),
        value: RapidmqSlice::of(&m.value),
        headers,
        headers_len,
        timestamp_ms: m.timestamp_ms,
        append_time_ms: m.append_time_ms,
        deliver_at_ms: m.deliver_at_ms.unwrap_or(0),
        has_ttl: m.ttl.is_some(),
        ttl_ms: m
            .ttl
            .map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        priority: m.priority,
    }
}

/// Where a subscription starts or a seek goes (`RapidmqStart.kind`).
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RapidmqStartKind {
    /// Only messages appended from now on.
    RAPIDMQ_START_LATEST = 0,
    /// The oldest retained message.
    RAPIDMQ_START_EARLIEST = 1,
    /// The offset in `value`, clamped to the retained range.
    RAPIDMQ_START_OFFSET = 2,
    /// The first message appended at or after `value` ms since the epoch.
    RAPIDMQ_START_TIMESTAMP = 3,
}

/// A start position: a `RapidmqStartKind` and its value.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqStart {
    /// A `RapidmqStartKind`.
    pub kind: u32,
    /// The offset or timestamp, for those kinds.
    pub value: i64,
}

impl RapidmqStart {
    pub(crate) fn to_core(self) -> FfiResult<core::StartPosition> {
        Ok(match self.kind {
            0 => core::StartPosition::Latest,
            1 => core::StartPosition::Earliest,
            2 => core::StartPosition::Offset(
                u64::try_from(self.value)
                    .map_err(|_| FfiError::invalid("a start offset must not be negative"))?,
            ),
            3 => core::StartPosition::Timestamp(self.value),
            other => return Err(FfiError::invalid(format!("unknown start kind {other}"))),
        })
    }

    pub(crate) fn from_core(start: core::StartPosition) -> RapidmqStart {
        let (kind, value) = match start {
            core::StartPosition::Latest => (0, 0),
            core::StartPosition::Earliest => (1, 0),
            core::StartPosition::Offset(o) => (2, i64::try_from(o).unwrap_or(i64::MAX)),
            core::StartPosition::Timestamp(t) => (3, t),
        };
        RapidmqStart { kind, value }
    }
}

/// Storage values (`RapidmqTopicConfig.storage`).
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RapidmqStorage {
    /// The broker's default.
    RAPIDMQ_STORAGE_DEFAULT = 0,
    /// Durable, on disk.
    RAPIDMQ_STORAGE_DISK = 1,
    /// In memory, lost on restart.
    RAPIDMQ_STORAGE_MEMORY = 2,
}

/// Topic settings. A `has_*` flag of false takes the broker default (create) or keeps the value
/// (alter); for retention, a set value of 0 means unlimited.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct RapidmqTopicConfig {
    /// Partitions (0: the broker default).
    pub partitions: u32,
    /// Whether `retention_ms` is set.
    pub has_retention_ms: bool,
    /// Time retention per partition, ms.
    pub retention_ms: u64,
    /// Whether `retention_bytes` is set.
    pub has_retention_bytes: bool,
    /// Size retention per partition, bytes.
    pub retention_bytes: u64,
    /// Whether `retention_messages` is set.
    pub has_retention_messages: bool,
    /// Message-count retention per partition.
    pub retention_messages: u64,
    /// Whether `max_message_bytes` is set.
    pub has_max_message_bytes: bool,
    /// Largest message accepted, bytes.
    pub max_message_bytes: u32,
    /// A `RapidmqStorage`.
    pub storage: u32,
    /// A `RapidmqDurability`.
    pub durability: u32,
    /// Whether `dedup_window_ms` is set.
    pub has_dedup_window_ms: bool,
    /// Repeated `msg-id`s within this window are dropped (0: off).
    pub dedup_window_ms: u64,
    /// Whether `replication_factor` is set (on create: else `min(3, voting nodes)`; described:
    /// cluster mode only).
    pub has_replication_factor: bool,
    /// Cluster mode: copies of each partition. A single-node broker accepts 1 only.
    pub replication_factor: u32,
}

impl RapidmqTopicConfig {
    pub(crate) fn to_core(self) -> FfiResult<core::TopicConfig> {
        Ok(core::TopicConfig {
            partitions: self.partitions,
            retention_ms: self.has_retention_ms.then_some(self.retention_ms),
            retention_bytes: self.has_retention_bytes.then_some(self.retention_bytes),
            retention_messages: self
                .has_retention_messages
                .then_some(self.retention_messages),
            max_message_bytes: self.has_max_message_bytes.then_some(self.max_message_bytes),
            storage: match self.storage {
                0 => core::Storage::Default,
                1 => core::Storage::Disk,
                2 => core::Storage::Memory,
                other => return Err(FfiError::invalid(format!("unknown storage {other}"))),
            },
            durability: durability_in(self.durability)?,
            dedup_window_ms: self.has_dedup_window_ms.then_some(self.dedup_window_ms),
            replication_factor: self
                .has_replication_factor
                .then_some(self.replication_factor),
        })
    }

    fn from_core(c: core::TopicConfig) -> RapidmqTopicConfig {
        RapidmqTopicConfig {
            partitions: c.partitions,
            has_retention_ms: c.retention_ms.is_some(),
            retention_ms: c.retention_ms.unwrap_or(0),
            has_retention_bytes: c.retention_bytes.is_some(),
            retention_bytes: c.retention_bytes.unwrap_or(0),
            has_retention_messages: c.retention_messages.is_some(),
            retention_messages: c.retention_messages.unwrap_or(0),
            has_max_message_bytes: c.max_message_bytes.is_some(),
            max_message_bytes: c.max_message_bytes.unwrap_or(0),
            storage: match c.storage {
                core::Storage::Default => 0,
                core::Storage::Disk => 1,
                core::Storage::Memory => 2,
            },
            durability: durability_out(c.durability),
            has_dedup_window_ms: c.dedup_window_ms.is_some(),
            dedup_window_ms: c.dedup_window_ms.unwrap_or(0),
            has_replication_factor: c.replication_factor.is_some(),
            replication_factor: c.replication_factor.unwrap_or(0),
        }
    }
}

/// One partition of a topic.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqPartitionInfo {
    /// The partition.
    pub partition: u32,
    /// Oldest retained offset.
    pub log_start_offset: u64,
    /// Next offset to be written.
    pub high_watermark: u64,
    /// Stored bytes.
    pub bytes: u64,
    /// Cluster mode: the nodes holding the partition, preferred leader first (NULL and 0 on a
    /// single-node broker).
    pub replicas: *const u64,
    /// Number of replicas.
    pub replicas_len: usize,
    /// Whether `leader` is set: cluster mode, and the answering node knows the leader.
    pub has_leader: bool,
    /// The partition group's leader as the answering node knows it.
    pub leader: u64,
}

/// A topic as the broker describes it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqTopicInfo {
    /// The name.
    pub name: RapidmqSlice,
    /// Every setting, resolved.
    pub config: RapidmqTopicConfig,
    /// The partitions.
    pub partitions: *const RapidmqPartitionInfo,
    /// Number of partitions.
    pub partitions_len: usize,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
}

pub(crate) fn topic_info(arena: &mut Arena, t: core::TopicInfo) -> RapidmqTopicInfo {
    let partitions: Vec<RapidmqPartitionInfo> = t
        .partitions
        .into_iter()
        .map(|p| {
            let (replicas, replicas_len) = arena.array(p.replicas);
            RapidmqPartitionInfo {
                partition: p.partition,
                log_start_offset: p.log_start_offset,
                high_watermark: p.high_watermark,
                bytes: p.bytes,
                replicas,
                replicas_len,
                has_leader: p.leader.is_some(),
                leader: p.leader.unwrap_or(0),
            }
        })
        .collect();
    let (partitions, partitions_len) = arena.array(partitions);
    RapidmqTopicInfo {
        name: arena.bytes(t.name),
        config: RapidmqTopicConfig::from_core(t.config),
        partitions,
        partitions_len,
        created_at_ms: t.created_at_ms,
    }
}

/// A subscription's position on one partition.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqPartitionCursor {
    /// The partition.
    pub partition: u32,
    /// Next offset to consume.
    pub committed_offset: u64,
    /// The partition's high watermark.
    pub high_watermark: u64,
    /// Messages not yet committed.
    pub lag: u64,
}

/// A live member of a subscription.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqMemberInfo {
    /// Broker-assigned id.
    pub member_id: RapidmqSlice,
    /// The name the consumer gave.
    pub consumer_name: RapidmqSlice,
    /// Partitions it owns.
    pub partitions: *const u32,
    /// Number of partitions.
    pub partitions_len: usize,
}

/// Settings of a queue subscription; `has_*` false means the broker default.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqQueueSettings {
    /// Whether `ack_deadline_ms` is set.
    pub has_ack_deadline: bool,
    /// An unacked delivery is redelivered after this long.
    pub ack_deadline_ms: u64,
    /// Whether `max_deliveries` is set.
    pub has_max_deliveries: bool,
    /// Deliveries before a message is dead-lettered (0 is refused).
    pub max_deliveries: u32,
    /// The dead-letter topic (empty: the broker default, `<topic>.dlq`).
    pub dead_letter_topic: RapidmqStr,
}

impl RapidmqQueueSettings {
    pub(crate) unsafe fn read_core(&self) -> FfiResult<core::QueueSettings> {
        let dlq = unsafe { self.dead_letter_topic.read_string("dead_letter_topic") }?;
        Ok(core::QueueSettings {
            ack_deadline: self
                .has_ack_deadline
                .then(|| Duration::from_millis(self.ack_deadline_ms)),
            max_deliveries: self.has_max_deliveries.then_some(self.max_deliveries),
            dead_letter_topic: (!dlq.is_empty()).then_some(dlq),
        })
    }
}

/// Effective queue settings of a subscription, as described.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqQueueSettingsInfo {
    /// Whether `ack_deadline_ms` is known.
    pub has_ack_deadline: bool,
    /// The ack deadline in ms.
    pub ack_deadline_ms: u64,
    /// Whether `max_deliveries` is known.
    pub has_max_deliveries: bool,
    /// Deliveries before dead-lettering.
    pub max_deliveries: u32,
    /// The dead-letter topic (empty when unknown).
    pub dead_letter_topic: RapidmqSlice,
}

/// Counters of a queue subscription.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct RapidmqQueueStats {
    /// Deliveries not yet acked.
    pub in_flight: u64,
    /// Redeliveries so far.
    pub redeliveries: u64,
    /// Messages moved to the dead-letter topic.
    pub dead_lettered: u64,
    /// Messages that expired before delivery.
    pub expired: u64,
}

/// Subscription modes (`RapidmqSubscriptionInfo.mode`).
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RapidmqSubscriptionMode {
    /// Ordered per partition, offsets committed.
    RAPIDMQ_MODE_STREAM = 0,
    /// Per-message acks, redelivery, dead letters.
    RAPIDMQ_MODE_QUEUE = 1,
}

/// A subscription with its cursors, members and lag.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqSubscriptionInfo {
    /// The topic.
    pub topic: RapidmqSlice,
    /// The name.
    pub name: RapidmqSlice,
    /// A `RapidmqSubscriptionMode`.
    pub mode: u32,
    /// Per-partition positions.
    pub cursors: *const RapidmqPartitionCursor,
    /// Number of cursors.
    pub cursors_len: usize,
    /// Live members.
    pub members: *const RapidmqMemberInfo,
    /// Number of members.
    pub members_len: usize,
    /// Sum of the per-partition lag.
    pub total_lag: u64,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Whether `queue` is set (queue mode).
    pub has_queue: bool,
    /// Queue settings.
    pub queue: RapidmqQueueSettingsInfo,
    /// Whether `queue_stats` is set (queue mode).
    pub has_queue_stats: bool,
    /// Queue counters.
    pub queue_stats: RapidmqQueueStats,
}

pub(crate) fn subscription_info(
    arena: &mut Arena,
    s: core::SubscriptionInfo,
) -> RapidmqSubscriptionInfo {
    let cursors: Vec<RapidmqPartitionCursor> = s
        .cursors
        .iter()
        .map(|c| RapidmqPartitionCursor {
            partition: c.partition,
            committed_offset: c.committed_offset,
            high_watermark: c.high_watermark,
            lag: c.lag,
        })
        .collect();
    let (cursors, cursors_len) = arena.array(cursors);
    let members: Vec<RapidmqMemberInfo> = s
        .members
        .into_iter()
        .map(|m| {
            let (partitions, partitions_len) = arena.array(m.partitions);
            RapidmqMemberInfo {
                member_id: arena.bytes(m.member_id),
                consumer_name: arena.bytes(m.consumer_name),
                partitions,
                partitions_len,
            }
        })
        .collect();
    let (members, members_len) = arena.array(members);
    let queue = s.queue.clone().unwrap_or_default();
    RapidmqSubscriptionInfo {
        topic: arena.bytes(s.topic),
        name: arena.bytes(s.name),
        mode: match s.mode {
            core::SubscriptionMode::Queue => RapidmqSubscriptionMode::RAPIDMQ_MODE_QUEUE as u32,
            _ => RapidmqSubscriptionMode::RAPIDMQ_MODE_STREAM as u32,
        },
        cursors,
        cursors_len,
        members,
        members_len,
        total_lag: s.total_lag,
        created_at_ms: s.created_at_ms,
        has_queue: s.queue.is_some(),
        queue: RapidmqQueueSettingsInfo {
            has_ack_deadline: queue.ack_deadline.is_some(),
            ack_deadline_ms: queue
                .ack_deadline
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            has_max_deliveries: queue.max_deliveries.is_some(),
            max_deliveries: queue.max_deliveries.unwrap_or(0),
            dead_letter_topic: queue
                .dead_letter_topic
                .map_or(RapidmqSlice::EMPTY, |t| arena.bytes(t)),
        },
        has_queue_stats: s.queue_stats.is_some(),
        queue_stats: s
            .queue_stats
            .map_or_else(RapidmqQueueStats::default, |q| RapidmqQueueStats {
                in_flight: q.in_flight,
                redeliveries: q.redeliveries,
                dead_lettered: q.dead_lettered,
                expired: q.expired,
            }),
    }
}

/// A dead letter with where it came from.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqDeadLetter {
    /// Its partition in the dead-letter topic.
    pub partition: u32,
    /// Its offset in that partition.
    pub offset: u64,
    /// The topic it came from.
    pub original_topic: RapidmqSlice,
    /// Its partition there.
    pub original_partition: u32,
    /// Its offset there.
    pub original_offset: u64,
    /// Why it was dead-lettered.
    pub reason: RapidmqSlice,
    /// Deliveries it had.
    pub attempts: u32,
    /// The message, with the `rapidmq-dlq-*` headers.
    pub message: RapidmqReceivedMessage,
}

pub(crate) fn dead_letter(arena: &mut Arena, d: core::DeadLetter) -> RapidmqDeadLetter {
    RapidmqDeadLetter {
        partition: d.partition,
        offset: d.offset,
        original_topic: arena.bytes(d.original_topic),
        original_partition: d.original_partition,
        original_offset: d.original_offset,
        reason: arena.bytes(d.reason),
        attempts: d.attempts,
        message: received(arena, d.message),
    }
}

/// Broker status.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqBrokerStatus {
    /// Broker version.
    pub version: RapidmqSlice,
    /// Uptime in ms.
    pub uptime_ms: u64,
    /// Topic count.
    pub topics: u32,
    /// Subscription count.
    pub subscriptions: u32,
    /// Node id.
    pub node_id: RapidmqSlice,
}

pub(crate) fn broker_status(arena: &mut Arena, s: core::BrokerStatus) -> RapidmqBrokerStatus {
    RapidmqBrokerStatus {
        version: arena.bytes(s.version),
        uptime_ms: s.uptime_ms,
        topics: s.topics,
        subscriptions: s.subscriptions,
        node_id: arena.bytes(s.node_id),
    }
}

/// Milliseconds of a duration, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
