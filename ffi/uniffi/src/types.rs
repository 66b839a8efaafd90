//! Records and enums that cross the boundary, and their conversions from and to the core's
//! domain types. Message bytes are [`Payload`]s and other byte fields `Vec<u8>` (both `byte[]` in
//! Java), durations `Duration` (`java.time.Duration`).

use std::time::Duration;

use bytes::Bytes;
use rapidmq_core as core;

/// Message bytes: `byte[]` in Java, with the wire form of a `Vec<u8>` (a big-endian `i32`
/// length, then the bytes), but written and read in one copy each way. uniffi's own `Vec<u8>`
/// goes through its generic sequence code a byte at a time, with a bounds check per byte: that
/// was 14% of the Java producer's CPU. Held as `Bytes`, so the core's messages convert without
/// another copy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payload(pub Bytes);

// SAFETY: the wire form is exactly `Vec<u8>`'s (the metadata says so, and Java's generated
// `FfiConverterByteArray` writes and reads it that way); `try_read` checks every length.
unsafe impl uniffi::FfiConverter<crate::UniFfiTag> for Payload {
    type FfiType = uniffi::RustBuffer;

    fn lower(obj: Payload) -> uniffi::RustBuffer {
        let mut buf = Vec::with_capacity(4 + obj.0.len());
        Self::write(obj, &mut buf);
        uniffi::RustBuffer::from_vec(buf)
    }

    fn try_lift(v: uniffi::RustBuffer) -> uniffi::Result<Payload> {
        let vec = v.destroy_into_vec();
        let mut buf = vec.as_slice();
        let payload = Self::try_read(&mut buf)?;
        if !buf.is_empty() {
            uniffi::deps::anyhow::bail!("junk data left in buffer after lifting bytes");
        }
        Ok(payload)
    }

    fn write(obj: Payload, buf: &mut Vec<u8>) {
        // uniffi limits sequences to i32::MAX items, as Java arrays are.
        let len = i32::try_from(obj.0.len()).expect("a payload of at most i32::MAX bytes");
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(&obj.0);
    }

    fn try_read(buf: &mut &[u8]) -> uniffi::Result<Payload> {
        uniffi::check_remaining(buf, 4)?;
        let (len, rest) = buf.split_at(4);
        let len = usize::try_from(i32::from_be_bytes(len.try_into()?))?;
        uniffi::check_remaining(rest, len)?;
        let (bytes, rest) = rest.split_at(len);
        *buf = rest;
        Ok(Payload(Bytes::copy_from_slice(bytes)))
    }

    const TYPE_ID_META: uniffi::MetadataBuffer =
        <Vec<u8> as uniffi::TypeId<crate::UniFfiTag>>::TYPE_ID_META;
}

uniffi::derive_ffi_traits!(local Payload);

/// One application header; keys may repeat.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Header {
    /// The header name.
    pub key: String,
    /// The header value.
    pub value: Payload,
}

pub(crate) fn headers_to_core(headers: Vec<Header>) -> Vec<(String, Bytes)> {
    headers.into_iter().map(|h| (h.key, h.value.0)).collect()
}

fn headers_from_core(headers: Vec<(String, Bytes)>) -> Vec<Header> {
    headers
        .into_iter()
        .map(|(key, value)| Header {
            key,
            value: Payload(value),
        })
        .collect()
}

/// A message to publish (see the core's `Message` for each field).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OutgoingMessage {
    /// Optional key; messages with the same key go to the same partition.
    pub key: Option<Payload>,
    /// The payload.
    pub value: Payload,
    /// Ordered application headers.
    pub headers: Vec<Header>,
    /// Producer timestamp, ms since the epoch; the send time when `None`.
    pub timestamp_ms: Option<i64>,
    /// Delivered this long after the broker receives it.
    pub delay: Option<Duration>,
    /// Delivered at this time, ms since the epoch.
    pub deliver_at_ms: Option<i64>,
    /// Time to live from the broker's append time.
    pub ttl: Option<Duration>,
    /// 0 (lowest) to 9 (highest).
    pub priority: u8,
}

impl From<OutgoingMessage> for core::Message {
    fn from(m: OutgoingMessage) -> core::Message {
        core::Message {
            key: m.key.map(|k| k.0),
            value: m.value.0,
            headers: headers_to_core(m.headers),
            timestamp_ms: m.timestamp_ms,
            delay: m.delay,
            deliver_at_ms: m.deliver_at_ms,
            ttl: m.ttl,
            priority: m.priority,
        }
    }
}

/// A consumed message.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReceivedMessage {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The offset within the partition.
    pub offset: u64,
    /// The key, if the producer set one.
    pub key: Option<Payload>,
    /// The payload.
    pub value: Payload,
    /// Application headers, in order.
    pub headers: Vec<Header>,
    /// Producer timestamp, ms since the epoch.
    pub timestamp_ms: i64,
    /// Broker append time, ms since the epoch.
    pub append_time_ms: i64,
    /// The delivery time of a delayed message, ms since the epoch.
    pub deliver_at_ms: Option<i64>,
    /// Its time to live, if it has one.
    pub ttl: Option<Duration>,
    /// Its priority, 0–9.
    pub priority: u8,
}

impl From<core::ReceivedMessage> for ReceivedMessage {
    fn from(m: core::ReceivedMessage) -> ReceivedMessage {
        ReceivedMessage {
            topic: m.topic,
            partition: m.partition,
            offset: m.offset,
            key: m.key.map(Payload),
            value: Payload(m.value),
            headers: headers_from_core(m.headers),
            timestamp_ms: m.timestamp_ms,
            append_time_ms: m.append_time_ms,
            deliver_at_ms: m.deliver_at_ms,
            ttl: m.ttl,
            priority: m.priority,
        }
    }
}

impl From<ReceivedMessage> for core::ReceivedMessage {
    fn from(m: ReceivedMessage) -> core::ReceivedMessage {
        core::ReceivedMessage {
            topic: m.topic,
            partition: m.partition,
            offset: m.offset,
            key: m.key.map(|k| k.0),
            value: m.value.0,
            headers: headers_to_core(m.headers),
            timestamp_ms: m.timestamp_ms,
            append_time_ms: m.append_time_ms,
            deliver_at_ms: m.deliver_at_ms,
            ttl: m.ttl,
            priority: m.priority,
        }
    }
}

/// What the broker guaranteed for a write (or, in a topic config, is asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Durability {
    /// Not reported, or the broker's default in a topic config.
    Unspecified,
    /// Fsynced before the acknowledgement.
    Fsync,
    /// Reached the OS; fsynced on an interval.
    Buffered,
    /// Held in memory only.
    Memory,
}

impl From<core::Durability> for Durability {
    fn from(d: core::Durability) -> Durability {
        match d {
            core::Durability::Unspecified => Durability::Unspecified,
            core::Durability::Fsync => Durability::Fsync,
            core::Durability::Buffered => Durability::Buffered,
            core::Durability::Memory => Durability::Memory,
        }
    }
}

impl From<Durability> for core::Durability {
    fn from(d: Durability) -> core::Durability {
        match d {
            Durability::Unspecified => core::Durability::Unspecified,
            Durability::Fsync => core::Durability::Fsync,
            Durability::Buffered => core::Durability::Buffered,
            Durability::Memory => core::Durability::Memory,
        }
    }
}

/// What the broker did with one sent message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SendStatus {
    /// Appended to the log; the delivery has an offset.
    Appended,
    /// Held in the broker's delay schedule; it gets an offset when due.
    Scheduled,
    /// Dropped as a repeated `msg-id` within the topic's dedup window.
    Deduplicated,
}

/// Where a sent message was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct Delivery {
    /// The partition.
    pub partition: u32,
    /// The offset; set exactly when `status` is `Appended`.
    pub offset: Option<u64>,
    /// What the acknowledgement guarantees.
    pub durability: Durability,
    /// Appended, scheduled or deduplicated.
    pub status: SendStatus,
}

impl From<core::Delivery> for Delivery {
    fn from(d: core::Delivery) -> Delivery {
        Delivery {
            partition: d.partition,
            offset: d.offset,
            durability: d.durability.into(),
            status: match d.status {
                core::SendStatus::Appended => SendStatus::Appended,
                core::SendStatus::Scheduled => SendStatus::Scheduled,
                core::SendStatus::Deduplicated => SendStatus::Deduplicated,
            },
        }
    }
}

/// A batch as the broker acknowledged it (the raw `publish_batch`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PublishAck {
    /// The partition.
    pub partition: u32,
    /// Offset of the first message.
    pub base_offset: u64,
    /// Messages in the batch.
    pub count: u32,
    /// What the acknowledgement guarantees.
    pub durability: Durability,
    /// Whether the broker had stored this batch already (the offsets are the original ones).
    pub duplicate: bool,
    /// Broker append time, ms since the epoch.
    pub append_time_ms: i64,
    /// Messages held in the delay schedule.
    pub scheduled: u32,
    /// Indexes of messages dropped as `msg-id` duplicates.
    pub deduplicated: Vec<u32>,
}

impl From<core::PublishAck> for PublishAck {
    fn from(a: core::PublishAck) -> PublishAck {
        PublishAck {
            partition: a.partition,
            base_offset: a.base_offset,
            count: a.count,
            durability: a.durability.into(),
            duplicate: a.duplicate,
            append_time_ms: a.append_time_ms,
            scheduled: a.scheduled,
            deduplicated: a.deduplicated,
        }
    }
}

/// Messages read by `fetch`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FetchResult {
    /// The messages, in offset order.
    pub messages: Vec<ReceivedMessage>,
    /// The partition's next offset to be written.
    pub high_watermark: u64,
    /// The partition's oldest retained offset.
    pub log_start_offset: u64,
}

impl From<core::FetchResult> for FetchResult {
    fn from(f: core::FetchResult) -> FetchResult {
        FetchResult {
            messages: f.messages.into_iter().map(Into::into).collect(),
            high_watermark: f.high_watermark,
            log_start_offset: f.log_start_offset,
        }
    }
}

/// Where a new subscription (or a seek) starts (the core's `StartPosition`; named apart from
/// the Java facade's `io.rapidmq.StartPosition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum StartAt {
    /// Only messages appended from now on.
    Latest,
    /// The oldest retained message.
    Earliest,
    /// This offset, clamped to the retained range.
    Offset {
        /// The offset.
        offset: u64,
    },
    /// The first message appended at or after this time.
    Timestamp {
        /// Ms since the epoch.
        timestamp_ms: i64,
    },
}

impl From<StartAt> for core::StartPosition {
    fn from(s: StartAt) -> core::StartPosition {
        match s {
            StartAt::Latest => core::StartPosition::Latest,
            StartAt::Earliest => core::StartPosition::Earliest,
            StartAt::Offset { offset } => core::StartPosition::Offset(offset),
            StartAt::Timestamp { timestamp_ms } => core::StartPosition::Timestamp(timestamp_ms),
        }
    }
}

impl From<core::StartPosition> for StartAt {
    fn from(s: core::StartPosition) -> StartAt {
        match s {
            core::StartPosition::Latest => StartAt::Latest,
            core::StartPosition::Earliest => StartAt::Earliest,
            core::StartPosition::Offset(offset) => StartAt::Offset { offset },
            core::StartPosition::Timestamp(timestamp_ms) => StartAt::Timestamp { timestamp_ms },
        }
    }
}

/// Where a topic's partitions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Storage {
    /// The broker's default.
    Default,
    /// Durable, in the broker's store.
    Disk,
    /// In memory only.
    Memory,
}

/// Topic settings; `None` and `Default`/`Unspecified` take the broker's defaults (or, when
/// altering, keep the current value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct TopicConfig {
    /// Partition count (0: the broker's default).
    pub partitions: u32,
    /// Time retention per partition, ms (0: unlimited).
    pub retention_ms: Option<u64>,
    /// Size retention per partition, bytes (0: unlimited).
    pub retention_bytes: Option<u64>,
    /// Message-count retention per partition (0: unlimited).
    pub retention_messages: Option<u64>,
    /// Largest message accepted, bytes.
    pub max_message_bytes: Option<u32>,
    /// Disk or memory.
    pub storage: Storage,
    /// Ack durability.
    pub durability: Durability,
    /// `msg-id` dedup window, ms (0: off).
    pub dedup_window_ms: Option<u64>,
    /// Cluster mode: copies of each partition (`None` on create: `min(3, voting nodes)`). A
    /// single-node broker accepts 1 only, and describes `None`.
    pub replication_factor: Option<u32>,
}

impl From<TopicConfig> for core::TopicConfig {
    fn from(c: TopicConfig) -> core::TopicConfig {
        core::TopicConfig {
            partitions: c.partitions,
            retention_ms: c.retention_ms,
            retention_bytes: c.retention_bytes,
            retention_messages: c.retention_messages,
            max_message_bytes: c.max_message_bytes,
            storage: match c.storage {
                Storage::Default => core::Storage::Default,
                Storage::Disk => core::Storage::Disk,
                Storage::Memory => core::Storage::Memory,
            },
            durability: c.durability.into(),
            dedup_window_ms: c.dedup_window_ms,
            replication_factor: c.replication_factor,
        }
    }
}

impl From<core::TopicConfig> for TopicConfig {
    fn from(c: core::TopicConfig) -> TopicConfig {
        TopicConfig {
            partitions: c.partitions,
            retention_ms: c.retention_ms,
            retention_bytes: c.retention_bytes,
            retention_messages: c.retention_messages,
            max_message_bytes: c.max_message_bytes,
            storage: match c.storage {
                core::Storage::Default => Storage::Default,
                core::Storage::Disk => Storage::Disk,
                core::Storage::Memory => Storage::Memory,
            },
            durability: c.durability.into(),
            dedup_window_ms: c.dedup_window_ms,
            replication_factor: c.replication_factor,
        }
    }
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PartitionInfo {
    /// The partition.
    pub partition: u32,
    /// Oldest retained offset.
    pub log_start_offset: u64,
    /// Next offset to be written.
    pub high_watermark: u64,
    /// Stored bytes.
    pub bytes: u64,
    /// Cluster mode: the nodes holding the partition, preferred leader first; empty otherwise.
    pub replicas: Vec<u64>,
    /// Cluster mode: the partition group's leader as the answering node knows it.
    pub leader: Option<u64>,
}

/// A topic as the broker describes it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TopicInfo {
    /// The name.
    pub name: String,
    /// Every setting, resolved.
    pub config: TopicConfig,
    /// The partitions.
    pub partitions: Vec<PartitionInfo>,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
}

impl From<core::TopicInfo> for TopicInfo {
    fn from(t: core::TopicInfo) -> TopicInfo {
        TopicInfo {
            name: t.name,
            config: t.config.into(),
            partitions: t
                .partitions
                .into_iter()
                .map(|p| PartitionInfo {
                    partition: p.partition,
                    log_start_offset: p.log_start_offset,
                    high_watermark: p.high_watermark,
                    bytes: p.bytes,
                    replicas: p.replicas,
                    leader: p.leader,
                })
                .collect(),
            created_at_ms: t.created_at_ms,
        }
    }
}

/// A subscription's position on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct PartitionCursor {
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
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MemberInfo {
    /// Broker-assigned id.
    pub member_id: String,
    /// The name the consumer gave.
    pub consumer_name: String,
    /// Partitions it owns.
    pub partitions: Vec<u32>,
}

/// Subscription modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SubscriptionMode {
    /// Ordered per partition; offsets committed.
    Stream,
    /// Per-message acks, redelivery and dead letters.
    Queue,
}

/// Settings of a queue-mode subscription; `None` takes the broker default.
#[derive(Debug, Clone, PartialEq, Eq, Default, uniffi::Record)]
pub struct QueueSettings {
    /// An unacked delivery is redelivered after this long (broker default 30 s).
    pub ack_deadline: Option<Duration>,
    /// Deliveries before a message is dead-lettered (broker default 5; 0 is refused).
    pub max_deliveries: Option<u32>,
    /// The dead-letter topic (broker default `<topic>.dlq`).
    pub dead_letter_topic: Option<String>,
}

impl From<QueueSettings> for core::QueueSettings {
    fn from(q: QueueSettings) -> core::QueueSettings {
        core::QueueSettings {
            ack_deadline: q.ack_deadline,
            max_deliveries: q.max_deliveries,
            dead_letter_topic: q.dead_letter_topic,
        }
    }
}

impl From<core::QueueSettings> for QueueSettings {
    fn from(q: core::QueueSettings) -> QueueSettings {
        QueueSettings {
            ack_deadline: q.ack_deadline,
            max_deliveries: q.max_deliveries,
            dead_letter_topic: q.dead_letter_topic,
        }
    }
}

/// Counters of a queue-mode subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct QueueStats {
    /// Deliveries not yet acked.
    pub in_flight: u64,
    /// Redeliveries so far.
    pub redeliveries: u64,
    /// Messages moved to the dead-letter topic.
    pub dead_lettered: u64,
    /// Messages that expired before delivery.
    pub expired: u64,
}

/// A subscription as the broker describes it, with its lag.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SubscriptionInfo {
    /// The topic.
    pub topic: String,
    /// The name.
    pub name: String,
    /// The mode.
    pub mode: SubscriptionMode,
    /// Per-partition positions and lag.
    pub cursors: Vec<PartitionCursor>,
    /// Live members.
    pub members: Vec<MemberInfo>,
    /// Sum of the per-partition lag.
    pub total_lag: u64,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Queue mode: the effective settings.
    pub queue: Option<QueueSettings>,
    /// Queue mode: the counters.
    pub queue_stats: Option<QueueStats>,
}

impl From<core::SubscriptionInfo> for SubscriptionInfo {
    fn from(s: core::SubscriptionInfo) -> SubscriptionInfo {
        SubscriptionInfo {
            topic: s.topic,
            name: s.name,
            mode: match s.mode {
                core::SubscriptionMode::Queue => SubscriptionMode::Queue,
                _ => SubscriptionMode::Stream,
            },
            cursors: s
                .cursors
                .into_iter()
                .map(|c| PartitionCursor {
                    partition: c.partition,
                    committed_offset: c.committed_offset,
                    high_watermark: c.high_watermark,
                    lag: c.lag,
                })
                .collect(),
            members: s
                .members
                .into_iter()
                .map(|m| MemberInfo {
                    member_id: m.member_id,
                    consumer_name: m.consumer_name,
                    partitions: m.partitions,
                })
                .collect(),
            total_lag: s.total_lag,
            created_at_ms: s.created_at_ms,
            queue: s.queue.map(Into::into),
            queue_stats: s.queue_stats.map(|q| QueueStats {
                in_flight: q.in_flight,
                redeliveries: q.redeliveries,
                dead_lettered: q.dead_lettered,
                expired: q.expired,
            }),
        }
    }
}

/// A dead letter with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeadLetter {
    /// Its partition in the dead-letter topic.
    pub partition: u32,
    /// Its offset in that partition.
    pub offset: u64,
    /// The topic it came from.
    pub original_topic: String,
    /// Its partition there.
    pub original_partition: u32,
    /// Its offset there.
    pub original_offset: u64,
    /// Why it was dead-lettered.
    pub reason: String,
    /// Deliveries it had.
    pub attempts: u32,
    /// The message, with the `rapidmq-dlq-*` headers.
    pub message: ReceivedMessage,
}

impl From<core::DeadLetter> for DeadLetter {
    fn from(d: core::DeadLetter) -> DeadLetter {
        DeadLetter {
            partition: d.partition,
            offset: d.offset,
            original_topic: d.original_topic,
            original_partition: d.original_partition,
            original_offset: d.original_offset,
            reason: d.reason,
            attempts: d.attempts,
            message: d.message.into(),
        }
    }
}

/// One page of the dead letters not yet replayed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeadLetterPage {
    /// Oldest first within each partition of the dead-letter topic, partitions in order.
    pub dead_letters: Vec<DeadLetter>,
    /// Pass it as `page_token` for the next page; `None` when there is nothing more.
    pub next_page_token: Option<String>,
}

impl From<core::DeadLetterPage> for DeadLetterPage {
    fn from(p: core::DeadLetterPage) -> DeadLetterPage {
        DeadLetterPage {
            dead_letters: p.dead_letters.into_iter().map(Into::into).collect(),
            next_page_token: p.next_page_token,
        }
    }
}

/// What one replay call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct DeadLetterReplay {
    /// Dead letters published back to their topics by this call.
    pub replayed: u32,
    /// Messages still pending in the dead-letter topic, over all partitions.
    pub remaining: u64,
}

impl From<core::DeadLetterReplay> for DeadLetterReplay {
    fn from(r: core::DeadLetterReplay) -> DeadLetterReplay {
        DeadLetterReplay {
            replayed: r.replayed,
            remaining: r.remaining,
        }
    }
}

/// Broker status.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BrokerStatus {
    /// Broker version.
    pub version: String,
    /// Uptime in ms.
    pub uptime_ms: u64,
    /// Topic count.
    pub topics: u32,
    /// Subscription count.
    pub subscriptions: u32,
    /// Node id.
    pub node_id: String,
}

impl From<core::BrokerStatus> for BrokerStatus {
    fn from(s: core::BrokerStatus) -> BrokerStatus {
        BrokerStatus {
            version: s.version,
            uptime_ms: s.uptime_ms,
            topics: s.topics,
            subscriptions: s.subscriptions,
            node_id: s.node_id,
        }
    }
}

/// A producer's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct ProducerStats {
    /// Messages accepted by `send`.
    pub messages_sent: u64,
    /// Messages acknowledged.
    pub messages_acked: u64,
    /// Messages that failed for good.
    pub messages_failed: u64,
    /// Batches sent.
    pub batches: u64,
    /// Publish requests, retries included.
    pub requests: u64,
    /// Retried requests.
    pub retries: u64,
    /// Batches the broker reported as duplicates.
    pub duplicates: u64,
    /// Most batches of one partition in flight at once.
    pub max_partition_in_flight: u64,
}

impl From<core::ProducerStats> for ProducerStats {
    fn from(s: core::ProducerStats) -> ProducerStats {
        ProducerStats {
            messages_sent: s.messages_sent,
            messages_acked: s.messages_acked,
            messages_failed: s.messages_failed,
            batches: s.batches,
            requests: s.requests,
            retries: s.retries,
            duplicates: s.duplicates,
            max_partition_in_flight: s.max_partition_in_flight,
        }
    }
}

/// A stream consumer's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct ConsumerStats {
    /// Messages received from the broker.
    pub received: u64,
    /// Messages returned by `poll`.
    pub polled: u64,
    /// Messages buffered ahead of `poll` now.
    pub buffered: u64,
    /// Most messages ever buffered ahead of `poll`.
    pub max_buffered: u64,
    /// Commits sent.
    pub commits: u64,
    /// Reconnects after a broken stream.
    pub reconnects: u64,
    /// Buffered messages dropped when their partition was revoked.
    pub dropped_on_revoke: u64,
    /// The current assignment generation.
    pub generation: u64,
}

impl From<core::ConsumerStats> for ConsumerStats {
    fn from(s: core::ConsumerStats) -> ConsumerStats {
        ConsumerStats {
            received: s.received,
            polled: s.polled,
            buffered: s.buffered,
            max_buffered: s.max_buffered,
            commits: s.commits,
            reconnects: s.reconnects,
            dropped_on_revoke: s.dropped_on_revoke,
            generation: s.generation,
        }
    }
}

/// A queue consumer's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct QueueConsumerStats {
    /// Deliveries received.
    pub received: u64,
    /// Deliveries returned by `poll`.
    pub polled: u64,
    /// Deliveries buffered ahead of `poll` now.
    pub buffered: u64,
    /// Most deliveries ever buffered.
    pub max_buffered: u64,
    /// Acks accepted.
    pub acked: u64,
    /// Nacks sent.
    pub nacked: u64,
    /// Deadline extensions sent.
    pub extended: u64,
    /// Ack requests sent.
    pub ack_requests: u64,
    /// Receipts from before a reconnect, dropped locally.
    pub stale_receipts: u64,
    /// Errors the broker reported on the stream.
    pub stream_errors: u64,
    /// Reconnects after a broken stream.
    pub reconnects: u64,
}

impl From<core::QueueConsumerStats> for QueueConsumerStats {
    fn from(s: core::QueueConsumerStats) -> QueueConsumerStats {
        QueueConsumerStats {
            received: s.received,
            polled: s.polled,
            buffered: s.buffered,
            max_buffered: s.max_buffered,
            acked: s.acked,
            nacked: s.nacked,
            extended: s.extended,
            ack_requests: s.ack_requests,
            stale_receipts: s.stale_receipts,
            stream_errors: s.stream_errors,
            reconnects: s.reconnects,
        }
    }
}

#[cfg(test)]
mod payload_tests {
    use uniffi::{FfiConverter, Lower};

    use super::*;

    fn read(buf: &mut &[u8]) -> uniffi::Result<Payload> {
        <Payload as FfiConverter<crate::UniFfiTag>>::try_read(buf)
    }

    #[test]
    fn a_payload_has_the_wire_form_of_a_byte_vector_and_reads_back() {
        let bytes = b"\x00\xffhello".to_vec();
        let mut as_vec = Vec::new();
        <Vec<u8> as Lower<crate::UniFfiTag>>::write(bytes.clone(), &mut as_vec);
        let mut as_payload = Vec::new();
        <Payload as FfiConverter<crate::UniFfiTag>>::write(
            Payload(Bytes::from(bytes.clone())),
            &mut as_payload,
        );
        assert_eq!(as_payload, as_vec);

        as_payload.extend_from_slice(b"next");
        let mut buf = as_payload.as_slice();
        assert_eq!(read(&mut buf).unwrap().0, bytes);
        assert_eq!(buf, b"next", "reads exactly its own bytes");
        let lowered = <Payload as FfiConverter<crate::UniFfiTag>>::lower(Payload::default());
        let lifted = <Payload as FfiConverter<crate::UniFfiTag>>::try_lift(lowered);
        assert_eq!(lifted.unwrap(), Payload::default());
    }

    #[test]
    fn a_short_or_negative_length_is_an_error_not_a_panic() {
        let mut short: &[u8] = &[0, 0, 0, 5, 1, 2];
        assert!(read(&mut short).is_err());
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(read(&mut negative).is_err());
        let mut no_length: &[u8] = &[0, 0];
        assert!(read(&mut no_length).is_err());
    }
}
