//! Conversions between wire types (`rapidmq_proto::v1`) and engine types, kept in one place.

use rapidmq_proto::v1 as pb;

use crate::engine::{
    AckDurability, DeadLetterInfo, Delivery, DurabilityMode, MemberStatus, PublishAck,
    QueueDelivery, QueueSettings, QueueSpec, StartPosition, StorageKind, SubscriptionMode,
    SubscriptionStatus, TopicSpec, TopicStatus,
};
use crate::error::{Error, Result};

impl From<AckDurability> for pb::Durability {
    fn from(ack: AckDurability) -> pb::Durability {
        match ack {
            AckDurability::Fsync => pb::Durability::Fsync,
            AckDurability::Buffered => pb::Durability::Buffered,
            AckDurability::Memory => pb::Durability::Memory,
        }
    }
}

impl From<Delivery> for pb::DeliveryBatch {
    fn from(d: Delivery) -> pb::DeliveryBatch {
        pb::DeliveryBatch {
            partition: d.partition,
            base_offset: d.base_offset,
            skip: d.skip,
            count: d.count,
            append_time_ms: d.append_time_ms,
            batch: d.payload,
        }
    }
}

/// A `StartPosition` from the wire; absent means latest.
pub fn start_position(start: Option<pb::StartPosition>) -> Result<StartPosition> {
    let Some(start) = start else {
        return Ok(StartPosition::Latest);
    };
    match pb::StartKind::try_from(start.kind) {
        Ok(pb::StartKind::Unspecified | pb::StartKind::Latest) => Ok(StartPosition::Latest),
        Ok(pb::StartKind::Earliest) => Ok(StartPosition::Earliest),
        Ok(pb::StartKind::Offset) => Ok(StartPosition::Offset(start.offset)),
        Ok(pb::StartKind::Timestamp) => Ok(StartPosition::Timestamp(start.timestamp_ms)),
        Err(_) => Err(Error::invalid(format!("unknown start kind {}", start.kind))),
    }
}

pub fn subscription_mode(mode: i32) -> Result<SubscriptionMode> {
    match pb::SubscriptionMode::try_from(mode) {
        Ok(pb::SubscriptionMode::Unspecified | pb::SubscriptionMode::Stream) => {
            Ok(SubscriptionMode::Stream)
        }
        Ok(pb::SubscriptionMode::Queue) => Ok(SubscriptionMode::Queue),
        Err(_) => Err(Error::invalid(format!("unknown subscription mode {mode}"))),
    }
}

impl From<SubscriptionMode> for pb::SubscriptionMode {
    fn from(mode: SubscriptionMode) -> pb::SubscriptionMode {
        match mode {
            SubscriptionMode::Stream => pb::SubscriptionMode::Stream,
            SubscriptionMode::Queue => pb::SubscriptionMode::Queue,
        }
    }
}

/// Topic settings from the wire; unset fields take the broker defaults.
pub fn topic_spec(config: Option<pb::TopicConfig>) -> Result<TopicSpec> {
    let Some(c) = config else {
        return Ok(TopicSpec::default());
    };
    let storage = match pb::Storage::try_from(c.storage) {
        Ok(pb::Storage::Unspecified) => None,
        Ok(pb::Storage::Disk) => Some(StorageKind::Disk),
        Ok(pb::Storage::Memory) => Some(StorageKind::Memory),
        Err(_) => return Err(Error::invalid(format!("unknown storage {}", c.storage))),
    };
    let durability = match pb::Durability::try_from(c.durability) {
        Ok(pb::Durability::Unspecified) => None,
        Ok(pb::Durability::Fsync) => Some(DurabilityMode::Fsync),
        Ok(pb::Durability::Buffered) => Some(DurabilityMode::Buffered),
        Ok(pb::Durability::Memory) => {
            return Err(Error::invalid(
                "durability `memory` is not a setting: use storage = memory",
            ));
        }
        Err(_) => {
            return Err(Error::invalid(format!(
                "unknown durability {}",
                c.durability
            )));
        }
    };
    Ok(TopicSpec {
        partitions: c.partitions,
        retention_ms: c.retention_ms,
        retention_bytes: c.retention_bytes,
        retention_messages: c.retention_messages,
        max_message_bytes: c.max_message_bytes,
        storage,
        durability,
        dedup_window_ms: c.dedup_window_ms,
    })
}

/// Queue settings from the wire; unset fields take the broker defaults.
pub fn queue_spec(settings: Option<pb::QueueSettings>) -> QueueSpec {
    let Some(q) = settings else {
        return QueueSpec::default();
    };
    QueueSpec {
        ack_deadline_ms: q.ack_deadline_ms,
        max_deliveries: q.max_deliveries,
        dead_letter_topic: q.dead_letter_topic.filter(|t| !t.is_empty()),
    }
}

impl From<QueueSettings> for pb::QueueSettings {
    fn from(q: QueueSettings) -> pb::QueueSettings {
        pb::QueueSettings {
            ack_deadline_ms: Some(q.ack_deadline_ms),
            max_deliveries: Some(q.max_deliveries),
            dead_letter_topic: Some(q.dead_letter_topic),
        }
    }
}

pub fn publish_response(partition: u32, ack: PublishAck) -> pb::PublishResponse {
    pb::PublishResponse {
        partition,
        base_offset: ack.ack.base_offset,
        count: ack.ack.count,
        durability: pb::Durability::from(ack.ack.durability) as i32,
        duplicate: ack.ack.duplicate,
        append_time_ms: ack.ack.append_time_ms,
        scheduled: ack.scheduled,
        deduplicated: ack.deduplicated,
    }
}

impl From<QueueDelivery> for pb::QueueMessage {
    fn from(d: QueueDelivery) -> pb::QueueMessage {
        pb::QueueMessage {
            receipt: Some(pb::Receipt {
                partition: d.partition,
                offset: d.offset,
                delivery_id: d.delivery_id,
            }),
            attempt: d.attempt,
            append_time_ms: d.message.append_time_ms,
            base_timestamp_ms: d.message.base_timestamp_ms,
            message: Some(d.message.message.clone()),
        }
    }
}

impl From<DeadLetterInfo> for pb::DeadLetter {
    fn from(d: DeadLetterInfo) -> pb::DeadLetter {
        pb::DeadLetter {
            partition: d.dlq_partition,
            offset: d.offset,
            original_topic: d.original_topic,
            original_partition: d.original_partition,
            original_offset: d.original_offset,
            reason: d.reason,
            attempts: d.attempts,
            message: Some(d.message),
        }
    }
}

impl From<TopicStatus> for pb::TopicInfo {
    fn from(t: TopicStatus) -> pb::TopicInfo {
        let s = &t.settings;
        pb::TopicInfo {
            name: t.name,
            config: Some(pb::TopicConfig {
                partitions: Some(s.partitions),
                retention_ms: Some(s.retention_ms),
                retention_bytes: Some(s.retention_bytes),
                retention_messages: Some(s.retention_messages),
                max_message_bytes: Some(s.max_message_bytes),
                storage: match s.storage {
                    StorageKind::Disk => pb::Storage::Disk,
                    StorageKind::Memory => pb::Storage::Memory,
                } as i32,
                durability: pb::Durability::from(s.ack_durability()) as i32,
                dedup_window_ms: Some(s.dedup_window_ms),
            }),
            partitions: t
                .partitions
                .iter()
                .map(|p| pb::PartitionInfo {
                    partition: p.partition,
                    log_start_offset: p.log_start_offset,
                    high_watermark: p.high_watermark,
                    bytes: p.bytes,
                })
                .collect(),
            created_at_ms: t.created_at_ms,
        }
    }
}

impl From<SubscriptionStatus> for pb::SubscriptionInfo {
    fn from(s: SubscriptionStatus) -> pb::SubscriptionInfo {
        let total_lag = s.total_lag();
        pb::SubscriptionInfo {
            topic: s.topic,
            name: s.name,
            mode: pb::SubscriptionMode::from(s.mode) as i32,
            cursors: s
                .cursors
                .into_iter()
                .map(
                    |(partition, committed_offset, high_watermark, lag)| pb::PartitionCursor {
                        partition,
                        committed_offset,
                        high_watermark,
                        lag,
                    },
                )
                .collect(),
            members: s.members.into_iter().map(pb::MemberInfo::from).collect(),
            total_lag,
            created_at_ms: s.created_at_ms,
            queue_stats: s.queue.as_ref().map(|(_, in_flight, c)| pb::QueueStats {
                in_flight: *in_flight,
                redeliveries: c.redeliveries,
                dead_lettered: c.dead_lettered,
                expired: c.expired,
            }),
            queue: s.queue.map(|(settings, _, _)| settings.into()),
        }
    }
}

impl From<MemberStatus> for pb::MemberInfo {
    fn from(m: MemberStatus) -> pb::MemberInfo {
        pb::MemberInfo {
            member_id: m.member_id,
            consumer_name: m.consumer_name,
            partitions: m.partitions,
        }
    }
}

impl From<&Error> for pb::Error {
    fn from(err: &Error) -> pb::Error {
        let code = err.code();
        pb::Error {
            code: code.code(),
            name: code.name().to_string(),
            message: err.message().to_string(),
            retriable: code.is_retriable(),
            retry_after_ms: err.retry_after().map_or(0, millis_u32),
        }
    }
}

fn millis_u32(after: std::time::Duration) -> u32 {
    u32::try_from(after.as_millis()).unwrap_or(u32::MAX)
}

impl From<&crate::auth::UserRecord> for pb::UserInfo {
    fn from(u: &crate::auth::UserRecord) -> pb::UserInfo {
        pb::UserInfo {
            tenant: u.tenant.clone(),
            name: u.name.clone(),
            has_password: u.password_phc.is_some(),
            created_at_ms: u.created_at_ms,
        }
    }
}

impl From<&crate::auth::TokenRecord> for pb::TokenInfo {
    fn from(t: &crate::auth::TokenRecord) -> pb::TokenInfo {
        let kind = match t.kind {
            crate::auth::TokenKind::Api => pb::TokenKind::Api,
            crate::auth::TokenKind::Session => pb::TokenKind::Session,
        };
        pb::TokenInfo {
            id: t.id.clone(),
            tenant: t.tenant.clone(),
            user: t.user.clone(),
            kind: kind.into(),
            description: t.description.clone(),
            created_at_ms: t.created_at_ms,
            expires_at_ms: t.expires_at_ms.unwrap_or(0),
        }
    }
}
