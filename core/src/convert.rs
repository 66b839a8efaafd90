//! Conversions between wire types (`rapidmq_proto::v1`) and the domain types in [`crate::types`],
//! kept together so the boundary is in one place. Decoding delivered batches lives here too.

use bytes::Bytes;
use rapidmq_proto::v1;

use crate::error::{Error, Result};
use crate::types::*;

impl From<v1::Durability> for Durability {
    fn from(d: v1::Durability) -> Self {
        match d {
            v1::Durability::Unspecified => Durability::Unspecified,
            v1::Durability::Fsync => Durability::Fsync,
            v1::Durability::Buffered => Durability::Buffered,
            v1::Durability::Memory => Durability::Memory,
        }
    }
}

impl From<Durability> for v1::Durability {
    fn from(d: Durability) -> Self {
        match d {
            Durability::Unspecified => v1::Durability::Unspecified,
            Durability::Fsync => v1::Durability::Fsync,
            Durability::Buffered => v1::Durability::Buffered,
            Durability::Memory => v1::Durability::Memory,
        }
    }
}

pub(crate) fn durability(raw: i32) -> Durability {
    v1::Durability::try_from(raw)
        .map(Durability::from)
        .unwrap_or(Durability::Unspecified)
}

impl From<StartPosition> for v1::StartPosition {
    fn from(p: StartPosition) -> Self {
        let (kind, offset, timestamp_ms) = match p {
            StartPosition::Latest => (v1::StartKind::Latest, 0, 0),
            StartPosition::Earliest => (v1::StartKind::Earliest, 0, 0),
            StartPosition::Offset(o) => (v1::StartKind::Offset, o, 0),
            StartPosition::Timestamp(t) => (v1::StartKind::Timestamp, 0, t),
        };
        v1::StartPosition {
            kind: kind as i32,
            offset,
            timestamp_ms,
        }
    }
}

impl From<Storage> for v1::Storage {
    fn from(s: Storage) -> Self {
        match s {
            Storage::Default => v1::Storage::Unspecified,
            Storage::Disk => v1::Storage::Disk,
            Storage::Memory => v1::Storage::Memory,
        }
    }
}

fn storage(raw: i32) -> Storage {
    match v1::Storage::try_from(raw) {
        Ok(v1::Storage::Disk) => Storage::Disk,
        Ok(v1::Storage::Memory) => Storage::Memory,
        _ => Storage::Default,
    }
}

impl From<TopicConfig> for v1::TopicConfig {
    #[allow(clippy::needless_update)] // wire structs tolerate additive proto fields
    fn from(c: TopicConfig) -> Self {
        v1::TopicConfig {
            partitions: (c.partitions > 0).then_some(c.partitions),
            retention_ms: c.retention_ms,
            retention_bytes: c.retention_bytes,
            retention_messages: c.retention_messages,
            max_message_bytes: c.max_message_bytes,
            storage: v1::Storage::from(c.storage) as i32,
            durability: v1::Durability::from(c.durability) as i32,
            dedup_window_ms: c.dedup_window_ms,
            replication_factor: c.replication_factor,
            ..Default::default()
        }
    }
}

impl From<v1::TopicConfig> for TopicConfig {
    fn from(c: v1::TopicConfig) -> Self {
        TopicConfig {
            partitions: c.partitions.unwrap_or_default(),
            retention_ms: c.retention_ms,
            retention_bytes: c.retention_bytes,
            retention_messages: c.retention_messages,
            max_message_bytes: c.max_message_bytes,
            storage: storage(c.storage),
            durability: durability(c.durability),
            dedup_window_ms: c.dedup_window_ms,
            replication_factor: c.replication_factor,
        }
    }
}

impl From<v1::PartitionInfo> for PartitionInfo {
    fn from(p: v1::PartitionInfo) -> Self {
        PartitionInfo {
            partition: p.partition,
            log_start_offset: p.log_start_offset,
            high_watermark: p.high_watermark,
            bytes: p.bytes,
            replicas: p.replicas,
            leader: (p.leader != 0).then_some(p.leader),
        }
    }
}

impl From<v1::TopicInfo> for TopicInfo {
    fn from(t: v1::TopicInfo) -> Self {
        TopicInfo {
            name: t.name,
            config: t.config.map(TopicConfig::from).unwrap_or_default(),
            partitions: t.partitions.into_iter().map(PartitionInfo::from).collect(),
            created_at_ms: t.created_at_ms,
        }
    }
}

impl From<v1::PartitionCursor> for PartitionCursor {
    fn from(c: v1::PartitionCursor) -> Self {
        PartitionCursor {
            partition: c.partition,
            committed_offset: c.committed_offset,
            high_watermark: c.high_watermark,
            lag: c.lag,
        }
    }
}

impl From<v1::MemberInfo> for MemberInfo {
    fn from(m: v1::MemberInfo) -> Self {
        MemberInfo {
            member_id: m.member_id,
            consumer_name: m.consumer_name,
            partitions: m.partitions,
        }
    }
}

impl From<SubscriptionMode> for v1::SubscriptionMode {
    fn from(m: SubscriptionMode) -> Self {
        match m {
            SubscriptionMode::Stream => v1::SubscriptionMode::Stream,
            SubscriptionMode::Queue => v1::SubscriptionMode::Queue,
        }
    }
}

fn subscription_mode(raw: i32) -> SubscriptionMode {
    match v1::SubscriptionMode::try_from(raw) {
        Ok(v1::SubscriptionMode::Queue) => SubscriptionMode::Queue,
        _ => SubscriptionMode::Stream,
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl From<QueueSettings> for v1::QueueSettings {
    fn from(q: QueueSettings) -> Self {
        v1::QueueSettings {
            ack_deadline_ms: q.ack_deadline.map(millis),
            max_deliveries: q.max_deliveries,
            dead_letter_topic: q.dead_letter_topic,
        }
    }
}

impl From<v1::QueueSettings> for QueueSettings {
    fn from(q: v1::QueueSettings) -> Self {
        QueueSettings {
            ack_deadline: q.ack_deadline_ms.map(std::time::Duration::from_millis),
            max_deliveries: q.max_deliveries,
            dead_letter_topic: q.dead_letter_topic,
        }
    }
}

impl From<v1::QueueStats> for QueueStats {
    fn from(q: v1::QueueStats) -> Self {
        QueueStats {
            in_flight: q.in_flight,
            redeliveries: q.redeliveries,
            dead_lettered: q.dead_lettered,
            expired: q.expired,
        }
    }
}

/// A dead letter as listed by the broker; its message is decoded like a delivery.
pub(crate) fn dead_letter(dlq_topic: &str, d: v1::DeadLetter) -> DeadLetter {
    let message = d.message.unwrap_or_default();
    DeadLetter {
        partition: d.partition,
        offset: d.offset,
        original_topic: d.original_topic,
        original_partition: d.original_partition,
        original_offset: d.original_offset,
        reason: d.reason,
        attempts: d.attempts,
        message: received(dlq_topic, d.partition, d.offset, message, 0, 0),
    }
}

impl From<v1::SubscriptionInfo> for SubscriptionInfo {
    fn from(s: v1::SubscriptionInfo) -> Self {
        SubscriptionInfo {
            topic: s.topic,
            name: s.name,
            mode: subscription_mode(s.mode),
            cursors: s.cursors.into_iter().map(PartitionCursor::from).collect(),
            members: s.members.into_iter().map(MemberInfo::from).collect(),
            total_lag: s.total_lag,
            created_at_ms: s.created_at_ms,
            queue: s.queue.map(QueueSettings::from),
            queue_stats: s.queue_stats.map(QueueStats::from),
        }
    }
}

impl From<v1::BrokerStatus> for BrokerStatus {
    fn from(s: v1::BrokerStatus) -> Self {
        BrokerStatus {
            version: s.version,
            uptime_ms: s.uptime_ms,
            topics: s.topics,
            subscriptions: s.subscriptions,
            node_id: s.node_id,
        }
    }
}

impl From<v1::ClusterStatus> for ClusterStatus {
    fn from(s: v1::ClusterStatus) -> Self {
        ClusterStatus {
            mode: s.mode,
            node_id: s.node_id,
            leader_id: s.leader_id,
            term: s.term,
            last_applied: s.last_applied,
            membership: s.membership,
            nodes: s
                .nodes
                .into_iter()
                .map(|n| ClusterNode {
                    id: n.id,
                    cluster_addr: n.cluster_addr,
                    grpc_addr: n.grpc_addr,
                    http_addr: n.http_addr,
                    reachable: n.reachable,
                    role: n.role,
                    matched: n.matched,
                })
                .collect(),
            moving_partitions: s.moving_partitions,
            cluster_id: s.cluster_id,
        }
    }
}

impl From<v1::ReplicaMove> for ReplicaMove {
    fn from(m: v1::ReplicaMove) -> Self {
        ReplicaMove {
            tenant: m.tenant,
            topic: m.topic,
            partition: m.partition,
            from: m.from,
            to: m.to,
        }
    }
}

impl From<v1::PublishResponse> for PublishAck {
    fn from(r: v1::PublishResponse) -> Self {
        PublishAck {
            partition: r.partition,
            base_offset: r.base_offset,
            count: r.count,
            durability: durability(r.durability),
            duplicate: r.duplicate,
            append_time_ms: r.append_time_ms,
            scheduled: r.scheduled,
            deduplicated: r.deduplicated,
        }
    }
}

/// The largest producer timestamp magnitude the client accepts: any two timestamps within it
/// differ by at most `i64::MAX - 1`, so a batch's deltas to its base always fit (2^62 ms is about
/// 146 million years either side of 1970).
pub const MAX_TIMESTAMP_MS: i64 = i64::MAX / 2;

/// Refuses a producer timestamp that a batch could not carry as a delta to its base timestamp.
pub(crate) fn check_timestamp(message: &Message) -> Result<()> {
    match message.timestamp_ms {
        Some(ts) if !(-MAX_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(&ts) => {
            Err(Error::invalid(format!(
                "timestamp_ms {ts} is out of range (at most {MAX_TIMESTAMP_MS} ms either side of 1970)"
            )))
        }
        _ => Ok(()),
    }
}

/// Checks every message of a batch send before any is queued, so that a batch is queued whole
/// or not at all: the first invalid message fails the call with `INVALID_ARGUMENT`, naming its
/// index (conformance C30).
pub(crate) fn check_batch(messages: &[Message]) -> Result<()> {
    for (index, message) in messages.iter().enumerate() {
        if let Err(Error::InvalidArgument { message: why }) = check_timestamp(message) {
            return Err(Error::invalid(format!(
                "message {index} of the batch: {why}"
            )));
        }
    }
    Ok(())
}

/// A message as it goes on the wire, its timestamp relative to the batch's base timestamp.
/// Timestamps passed [`check_timestamp`], so the delta cannot overflow.
#[allow(clippy::needless_update)] // wire structs tolerate additive proto fields
pub(crate) fn message_to_wire(
    msg: Message,
    base_timestamp_ms: i64,
    timestamp_ms: i64,
) -> v1::Message {
    v1::Message {
        key: msg.key,
        value: msg.value,
        headers: msg
            .headers
            .into_iter()
            .map(|(key, value)| v1::Header { key, value })
            .collect(),
        timestamp_delta_ms: timestamp_ms - base_timestamp_ms,
        deliver_at_ms: msg.deliver_at_ms.unwrap_or_default(),
        ttl_ms: msg
            .ttl
            .map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or_default(),
        priority: u32::from(msg.priority),
        delay_ms: msg.delay.map(millis).unwrap_or_default(),
        ..Default::default()
    }
}

/// A received message from its wire form.
pub(crate) fn received(
    topic: &str,
    partition: u32,
    offset: u64,
    m: v1::Message,
    base_timestamp_ms: i64,
    append_time_ms: i64,
) -> ReceivedMessage {
    ReceivedMessage {
        topic: topic.to_string(),
        partition,
        offset,
        key: m.key,
        value: m.value,
        headers: m.headers.into_iter().map(|h| (h.key, h.value)).collect(),
        // Brokers refuse batches where this overflows; saturate for anything stored before.
        timestamp_ms: base_timestamp_ms.saturating_add(m.timestamp_delta_ms),
        append_time_ms,
        deliver_at_ms: (m.deliver_at_ms > 0).then_some(m.deliver_at_ms),
        ttl: u64::try_from(m.ttl_ms)
            .ok()
            .filter(|&t| t > 0)
            .map(std::time::Duration::from_millis),
        priority: u8::try_from(m.priority).unwrap_or(u8::MAX),
    }
}

/// Encodes messages (each with its resolved timestamp) as one `MessageBatch`, compressed with
/// `compression` when that makes it smaller.
pub(crate) fn encode_batch(
    messages: impl ExactSizeIterator<Item = (Message, i64)>,
    compression: Compression,
) -> Bytes {
    let mut messages = messages.peekable();
    let base_timestamp_ms = messages.peek().map(|(_, ts)| *ts).unwrap_or_default();
    let mut wire = Vec::with_capacity(messages.len());
    wire.extend(messages.map(|(m, ts)| message_to_wire(m, base_timestamp_ms, ts)));
    Bytes::from(rapidmq_proto::batch::encode(
        wire,
        base_timestamp_ms,
        compression.to_wire(),
    ))
}

/// The messages a `DeliveryBatch` delivers: `[skip, skip + count)` of the stored batch, with
/// offsets `base_offset + index`. Decoding slices `batch`, it does not copy payloads.
pub(crate) fn decode_delivery(
    topic: &str,
    delivery: v1::DeliveryBatch,
) -> Result<Vec<ReceivedMessage>> {
    let batch = rapidmq_proto::batch::decode(delivery.batch)
        .map_err(|e| Error::protocol(format!("undecodable delivery batch: {e}")))?;
    let skip = delivery.skip as usize;
    let end = skip + delivery.count as usize;
    if end > batch.messages.len() {
        return Err(Error::protocol(format!(
            "delivery of [{skip}, {end}) from a batch of {} messages",
            batch.messages.len()
        )));
    }
    let base_timestamp_ms = batch.base_timestamp_ms;
    Ok(batch
        .messages
        .into_iter()
        .enumerate()
        .skip(skip)
        .take(delivery.count as usize)
        .map(|(index, m)| {
            received(
                topic,
                delivery.partition,
                delivery.base_offset + index as u64,
                m,
                base_timestamp_ms,
                delivery.append_time_ms,
            )
        })
        .collect())
}

impl From<v1::UserInfo> for UserInfo {
    fn from(u: v1::UserInfo) -> Self {
        UserInfo {
            tenant: u.tenant,
            name: u.name,
            has_password: u.has_password,
            created_at_ms: u.created_at_ms,
        }
    }
}

impl From<v1::TokenInfo> for TokenInfo {
    fn from(t: v1::TokenInfo) -> Self {
        let kind = match v1::TokenKind::try_from(t.kind) {
            Ok(v1::TokenKind::Api) => "api",
            Ok(v1::TokenKind::Session) => "session",
            _ => "unknown",
        };
        TokenInfo {
            id: t.id,
            tenant: t.tenant,
            user: t.user,
            kind: kind.to_string(),
            description: t.description,
            created_at_ms: t.created_at_ms,
            expires_at_ms: Some(t.expires_at_ms).filter(|&at| at > 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn delivery_takes_the_skipped_window_with_offsets_from_the_batch_index() {
        for compression in Compression::ALL {
            let messages: Vec<(Message, i64)> = (0..5)
                .map(|i| {
                    (
                        Message::new(format!("message {i} of five")).with_key("k"),
                        1000 + i,
                    )
                })
                .collect();
            let batch = encode_batch(messages.into_iter(), compression);
            let wire = v1::MessageBatch::decode(batch.clone()).unwrap();
            assert_eq!(
                wire.compression,
                compression.to_wire() as i32,
                "{compression}"
            );
            let delivery = v1::DeliveryBatch {
                partition: 3,
                base_offset: 100,
                skip: 2,
                count: 2,
                append_time_ms: 5,
                batch,
            };
            let got = decode_delivery("t", delivery).expect("decodes");
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].offset, 102);
            assert_eq!(got[0].value, Bytes::from("message 2 of five"));
            assert_eq!(got[0].timestamp_ms, 1002);
            assert_eq!(got[1].offset, 103);
            assert_eq!(got[1].partition, 3);
            assert_eq!(got[1].key.as_deref(), Some(&b"k"[..]));
        }
    }

    #[test]
    fn timestamps_far_apart_are_refused_before_they_reach_a_batch() {
        let at = |ts| Message {
            timestamp_ms: Some(ts),
            ..Message::new("x")
        };
        for ts in [
            i64::MIN,
            -MAX_TIMESTAMP_MS - 1,
            MAX_TIMESTAMP_MS + 1,
            i64::MAX,
        ] {
            assert!(
                matches!(check_timestamp(&at(ts)), Err(Error::InvalidArgument { .. })),
                "{ts}"
            );
        }
        for ts in [-MAX_TIMESTAMP_MS, 0, MAX_TIMESTAMP_MS] {
            check_timestamp(&at(ts)).expect("in range");
        }
        // The extremes allowed still encode: their delta fits.
        let batch = encode_batch(
            vec![
                (at(-MAX_TIMESTAMP_MS), -MAX_TIMESTAMP_MS),
                (at(MAX_TIMESTAMP_MS), MAX_TIMESTAMP_MS),
            ]
            .into_iter(),
            Compression::None,
        );
        let delivery = v1::DeliveryBatch {
            partition: 0,
            base_offset: 0,
            skip: 0,
            count: 2,
            append_time_ms: 0,
            batch,
        };
        let got = decode_delivery("t", delivery).expect("decodes");
        assert_eq!(got[0].timestamp_ms, -MAX_TIMESTAMP_MS);
        assert_eq!(got[1].timestamp_ms, MAX_TIMESTAMP_MS);
    }

    #[test]
    fn delivery_past_the_end_of_the_batch_is_a_protocol_error() {
        let delivery = v1::DeliveryBatch {
            partition: 0,
            base_offset: 0,
            skip: 1,
            count: 5,
            append_time_ms: 0,
            batch: encode_batch(
                vec![(Message::new("x"), 0i64)].into_iter(),
                Compression::None,
            ),
        };
        assert!(matches!(
            decode_delivery("t", delivery),
            Err(Error::Protocol { .. })
        ));
    }
}
