//! Conversions between wire types (`rapidmq_proto::v1`) and engine types, kept in one place.

use rapidmq_proto::v1 as pb;

use crate::engine::{
    AckDurability, Delivery, DurabilityMode, MemberStatus, StartPosition, StorageKind,
    SubscriptionMode, SubscriptionStatus, TopicSpec, TopicStatus,
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
        Err(_) => Err(Error::invalid(format!("unknown subscription mode {mode}"))),
    }
}

impl From<SubscriptionMode> for pb::SubscriptionMode {
    fn from(mode: SubscriptionMode) -> pb::SubscriptionMode {
        match mode {
            SubscriptionMode::Stream => pb::SubscriptionMode::Stream,
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
    })
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
                durability: match s.durability {
                    DurabilityMode::Fsync => pb::Durability::Fsync,
                    DurabilityMode::Buffered => pb::Durability::Buffered,
                } as i32,
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
        }
    }
}
