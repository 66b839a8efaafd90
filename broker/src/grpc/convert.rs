//! Conversions between wire types (`rapidmq_proto::v1`) and engine types, kept in one place.

use crate::audit::AuditRecord;
use rapidmq_proto::v1 as pb;

use crate::auth::{
    Action, BindingRecord, BindingScope, Effect, PatternType, Permission, ResourceType,
};
use crate::engine::{
    AckDurability, DeadLetterInfo, Delivery, DurabilityMode, MemberStatus, PublishAck,
    QueueDelivery, QueueSettings, QueueSpec, StartPosition, StorageKind, SubscriptionMode,
    SubscriptionStatus, TopicSpec, TopicStatus,
};
use crate::engine::{RoleInfo, TenantStatus};
use crate::error::{Error, Result};
use crate::tenant::TenantQuotas;

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
        replication_factor: c.replication_factor,
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
        leader_hint: ack.leader_hint,
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
                replication_factor: t.replication_factor,
            }),
            partitions: t
                .partitions
                .iter()
                .map(|p| pb::PartitionInfo {
                    partition: p.partition,
                    log_start_offset: p.log_start_offset,
                    high_watermark: p.high_watermark,
                    bytes: p.bytes,
                    replicas: p.replicas.clone(),
                    leader: p.leader.unwrap_or(0),
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
            leader_hint: err.leader_hint().cloned(),
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

/// A permission as a request sent it; unset or unknown enums are `INVALID_ARGUMENT`, and
/// [`Permission::new`] checks the rest.
pub fn permission(p: pb::Permission) -> Result<Permission> {
    let unset = |what: &str| Error::invalid(format!("a permission needs {what}"));
    let effect = match pb::Effect::try_from(p.effect) {
        Ok(pb::Effect::Allow) => Effect::Allow,
        Ok(pb::Effect::Deny) => Effect::Deny,
        _ => return Err(unset("an effect: allow or deny")),
    };
    let actions = p
        .actions
        .iter()
        .map(|&a| match pb::Action::try_from(a) {
            Ok(pb::Action::Publish) => Ok(Action::Publish),
            Ok(pb::Action::Consume) => Ok(Action::Consume),
            Ok(pb::Action::Create) => Ok(Action::Create),
            Ok(pb::Action::Delete) => Ok(Action::Delete),
            Ok(pb::Action::Alter) => Ok(Action::Alter),
            Ok(pb::Action::Describe) => Ok(Action::Describe),
            Ok(pb::Action::Admin) => Ok(Action::Admin),
            _ => Err(Error::invalid(format!("unknown action {a}"))),
        })
        .collect::<Result<Vec<_>>>()?;
    let resource = match pb::ResourceType::try_from(p.resource) {
        Ok(pb::ResourceType::Topic) => ResourceType::Topic,
        Ok(pb::ResourceType::Subscription) => ResourceType::Subscription,
        Ok(pb::ResourceType::Tenant) => ResourceType::Tenant,
        Ok(pb::ResourceType::Cluster) => ResourceType::Cluster,
        _ => {
            return Err(unset(
                "a resource type: topic, subscription, tenant or cluster",
            ));
        }
    };
    let pattern_type = match pb::PatternType::try_from(p.pattern_type) {
        Ok(pb::PatternType::Literal) => Some(PatternType::Literal),
        Ok(pb::PatternType::Prefix) => Some(PatternType::Prefix),
        Ok(pb::PatternType::Glob) => Some(PatternType::Glob),
        _ => None,
    };
    Permission::new(effect, actions, resource, p.pattern, pattern_type)
}

impl From<&Permission> for pb::Permission {
    fn from(p: &Permission) -> pb::Permission {
        let action = |a: Action| match a {
            Action::Publish => pb::Action::Publish,
            Action::Consume => pb::Action::Consume,
            Action::Create => pb::Action::Create,
            Action::Delete => pb::Action::Delete,
            Action::Alter => pb::Action::Alter,
            Action::Describe => pb::Action::Describe,
            Action::Admin => pb::Action::Admin,
        };
        let effect = match p.effect {
            Effect::Allow => pb::Effect::Allow,
            Effect::Deny => pb::Effect::Deny,
        };
        let resource = match p.resource {
            ResourceType::Topic => pb::ResourceType::Topic,
            ResourceType::Subscription => pb::ResourceType::Subscription,
            ResourceType::Tenant => pb::ResourceType::Tenant,
            ResourceType::Cluster => pb::ResourceType::Cluster,
        };
        let pattern_type = match p.pattern_type {
            PatternType::Literal => pb::PatternType::Literal,
            PatternType::Prefix => pb::PatternType::Prefix,
            PatternType::Glob => pb::PatternType::Glob,
        };
        pb::Permission {
            effect: effect.into(),
            actions: p.actions.iter().map(|&a| action(a).into()).collect(),
            resource: resource.into(),
            pattern: p.pattern.clone(),
            pattern_type: pattern_type.into(),
        }
    }
}

impl From<RoleInfo> for pb::RoleInfo {
    fn from(r: RoleInfo) -> pb::RoleInfo {
        pb::RoleInfo {
            name: r.name,
            builtin: r.builtin,
            permissions: r.permissions.iter().map(Into::into).collect(),
        }
    }
}

/// Unset is the tenant.
pub fn binding_scope(scope: i32) -> Result<BindingScope> {
    match pb::BindingScope::try_from(scope) {
        Ok(pb::BindingScope::Unspecified | pb::BindingScope::Tenant) => Ok(BindingScope::Tenant),
        Ok(pb::BindingScope::Cluster) => Ok(BindingScope::Cluster),
        Err(_) => Err(Error::invalid(format!("unknown binding scope {scope}"))),
    }
}

impl From<BindingRecord> for pb::RoleBinding {
    fn from(b: BindingRecord) -> pb::RoleBinding {
        let scope = match b.scope {
            BindingScope::Tenant => pb::BindingScope::Tenant,
            BindingScope::Cluster => pb::BindingScope::Cluster,
        };
        pb::RoleBinding {
            tenant: b.tenant,
            user: b.user,
            role: b.role,
            scope: scope.into(),
        }
    }
}

pub fn tenant_quotas(q: pb::TenantQuotas) -> TenantQuotas {
    TenantQuotas {
        publish_bytes_per_sec: q.publish_bytes_per_sec,
        publish_msgs_per_sec: q.publish_msgs_per_sec,
        consume_bytes_per_sec: q.consume_bytes_per_sec,
        storage_bytes: q.storage_bytes,
        max_topics: q.max_topics,
        max_partitions: q.max_partitions,
        max_connections: q.max_connections,
    }
}

impl From<TenantStatus> for pb::TenantInfo {
    fn from(t: TenantStatus) -> Self {
        let q = t.quotas;
        let u = t.usage;
        pb::TenantInfo {
            name: t.name,
            quotas: Some(pb::TenantQuotas {
                publish_bytes_per_sec: Some(q.publish_bytes_per_sec),
                publish_msgs_per_sec: Some(q.publish_msgs_per_sec),
                consume_bytes_per_sec: Some(q.consume_bytes_per_sec),
                storage_bytes: Some(q.storage_bytes),
                max_topics: Some(q.max_topics),
                max_partitions: Some(q.max_partitions),
                max_connections: Some(q.max_connections),
            }),
            usage: Some(pb::TenantUsage {
                topics: u.topics,
                partitions: u.partitions,
                storage_bytes: u.storage_bytes,
                connections: u.connections,
                users: u.users,
            }),
            created_at_ms: t.created_at_ms,
        }
    }
}

/// An audit record as `Admin.ListAuditEvents` returns it; `id` is the hex of its key.
pub fn audit_event(id: String, record: AuditRecord) -> pb::AuditEvent {
    pb::AuditEvent {
        id,
        ts_ms: record.ts_ms,
        node: u32::from(record.node),
        tenant: record.tenant,
        actor: record.actor,
        source_addr: record.source.addr,
        transport: record.source.transport,
        action: record.action,
        target: record.target,
        outcome: record.outcome.as_str().to_string(),
        detail: record.detail,
        count: record.count,
    }
}
