//! Topics: settings, the durable record, and the live topic with its partitions and
//! subscriptions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::dedup::Dedup;
use super::partition::replicated::PartitionView;
use super::partition::{Partition, PartitionSettings};
use super::subscription::Subscription;
use crate::observability::TopicCounters;
use crate::principal::TenantId;
use crate::tenant::TenantRuntime;

/// Where a topic's messages live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    #[default]
    Disk,
    /// Never written to disk; gone after a restart.
    Memory,
}

/// When a publish is acknowledged, for `disk` topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityMode {
    /// After the group commit holding the write is fsynced.
    #[default]
    Fsync,
    /// After the write reaches the OS; fsynced on an interval.
    Buffered,
}

/// What an acknowledgement guarantees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AckDurability {
    Fsync,
    Buffered,
    Memory,
}

/// A topic's settings, all resolved (no defaults left to apply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSettings {
    pub partitions: u32,
    /// 0: unlimited.
    pub retention_ms: u64,
    /// Per partition; 0: unlimited.
    pub retention_bytes: u64,
    /// Per partition; 0: unlimited.
    pub retention_messages: u64,
    pub max_message_bytes: u32,
    pub storage: StorageKind,
    pub durability: DurabilityMode,
    /// msg-id dedup window; 0: off.
    #[serde(default)]
    pub dedup_window_ms: u64,
}

impl TopicSettings {
    /// What of these settings the topic's partitions follow.
    pub fn partition_settings(&self) -> PartitionSettings {
        PartitionSettings {
            ack: self.ack_durability(),
            dedup_window_ms: self.dedup_window_ms,
        }
    }

    pub fn ack_durability(&self) -> AckDurability {
        match (self.storage, self.durability) {
            (StorageKind::Memory, _) => AckDurability::Memory,
            (StorageKind::Disk, DurabilityMode::Fsync) => AckDurability::Fsync,
            (StorageKind::Disk, DurabilityMode::Buffered) => AckDurability::Buffered,
        }
    }
}

/// Settings given at creation; `None` takes the broker default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicSpec {
    pub partitions: Option<u32>,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub retention_messages: Option<u64>,
    pub max_message_bytes: Option<u32>,
    pub storage: Option<StorageKind>,
    pub durability: Option<DurabilityMode>,
    pub dedup_window_ms: Option<u64>,
    /// Replicas per partition in cluster mode (absent: min(3, voters)); above 1 is refused in
    /// single-node mode.
    pub replication_factor: Option<u32>,
}

/// The durable description of a topic (metadata column family, JSON; postcard in the metadata
/// group's log, so no field may be skipped when serialized: older JSON records without a field
/// read it as its default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub id: u32,
    pub tenant: String,
    pub name: String,
    pub settings: TopicSettings,
    pub created_at_ms: i64,
    /// Cluster mode: the replication factor asked for (absent: the default), then, once the
    /// metadata group placed the topic, the one it has.
    #[serde(default)]
    pub replication_factor: Option<u32>,
    /// Cluster mode: each partition's replicas, node ids, the preferred leader first (decided
    /// at apply, `engine/replicated/placement.rs`). Empty in single-node mode and for
    /// `memory` topics, whose partitions stay node-local.
    #[serde(default)]
    pub replicas: Vec<Vec<u64>>,
}

/// A live topic.
pub struct Topic {
    /// As created; the settings in it may be outdated by an alter: use [`Topic::settings`].
    pub record: TopicRecord,
    pub(super) settings: RwLock<TopicSettings>,
    pub tenant: TenantId,
    /// The tenant's quotas and what it spends, resolved once.
    pub quota: Arc<TenantRuntime>,
    pub partitions: Vec<Partition>,
    /// Cluster mode: where each partition's replicas are now (the record's as placed at
    /// create, or as moved since; `replicated/moves.rs`). Empty entries: not placed.
    pub placement: RwLock<Vec<super::replicated::Placement>>,
    pub subscriptions: RwLock<BTreeMap<String, Arc<Subscription>>>,
    pub dedup: Dedup,
    /// Throughput counters, resolved once (or the shared overflow set).
    pub counters: Arc<TopicCounters>,
    /// Held by a dead-letter replay of this topic for its whole run: replays read from the
    /// replay cursor and move it only after publishing, so two at once would publish the same
    /// letters.
    pub replays: tokio::sync::Mutex<()>,
}

impl Topic {
    pub fn id(&self) -> u32 {
        self.record.id
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// The current settings.
    pub fn settings(&self) -> TopicSettings {
        self.settings.read().clone()
    }

    pub fn partition(&self, index: u32) -> Option<&Partition> {
        self.partitions.get(index as usize)
    }
}

/// A snapshot of one partition for admin answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    pub partition: u32,
    pub log_start_offset: u64,
    pub high_watermark: u64,
    pub bytes: u64,
    /// Cluster mode: the partition's replicas, preferred leader first; empty otherwise.
    pub replicas: Vec<u64>,
    /// Cluster mode: the partition group's leader as this node knows it.
    pub leader: Option<u64>,
    /// Cluster mode: the partition group's raft term as this node knows it; 0 otherwise.
    pub term: u64,
}

/// A snapshot of a topic for admin answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicStatus {
    pub name: String,
    pub settings: TopicSettings,
    pub partitions: Vec<PartitionStatus>,
    pub created_at_ms: i64,
    /// Cluster mode: the topic's replication factor; `None` otherwise.
    pub replication_factor: Option<u32>,
}

impl TopicStatus {
    /// This status with the partitions in `remote` (those this node holds no replica of) as
    /// their groups' leaders have them.
    pub fn with_remote(mut self, remote: &HashMap<u32, PartitionView>) -> TopicStatus {
        for partition in &mut self.partitions {
            if let Some(view) = remote.get(&partition.partition) {
                partition.log_start_offset = view.log_start;
                partition.high_watermark = view.high_watermark;
                partition.bytes = view.bytes;
            }
        }
        self
    }
}

impl From<&Topic> for TopicStatus {
    fn from(topic: &Topic) -> TopicStatus {
        TopicStatus {
            name: topic.record.name.clone(),
            settings: topic.settings(),
            created_at_ms: topic.record.created_at_ms,
            replication_factor: topic.record.replication_factor,
            partitions: topic
                .partitions
                .iter()
                .map(|p| {
                    let s = p.shared();
                    PartitionStatus {
                        partition: s.index,
                        log_start_offset: s.log_start(),
                        high_watermark: s.high_watermark(),
                        bytes: s.bytes(),
                        replicas: topic
                            .placement
                            .read()
                            .get(s.index as usize)
                            .map(|placement| placement.replicas.clone())
                            .unwrap_or_default(),
                        leader: p.leader(),
                        term: p.term(),
                    }
                })
                .collect(),
        }
    }
}
