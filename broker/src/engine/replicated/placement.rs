//! Where a topic's partitions live in cluster mode (docs/clustering.md "Placement").
//!
//! Decided once, when the metadata group applies the topic's creation (phase one,
//! [`Engine::decide_replicated`]), from what every node has alike: the voters and the topic's
//! id. So every node places the topic the same way, and the result is kept in the topic's
//! record.
//!
//! - Replication factor: the one asked for, else `min(3, voters)`; more than the voters is
//!   refused (`INVALID_TOPIC_CONFIG`, an `INVALID_ARGUMENT`).
//! - Replicas of partition `p`: `rf` consecutive voters of the sorted voter ids, starting at
//!   `(topic id + p) mod voters`. The first is the preferred leader, so first replicas (and
//!   the leaders, while every node is up) spread over the nodes.
//! - `memory` topics are not placed: their partitions stay node-local, as in single-node mode.

use rapidmq_proto::ErrorCode;

use super::super::Engine;
use super::super::topic::{StorageKind, TopicRecord};
use crate::error::{Error, Result};

/// The default replication factor, at most the voters.
pub const DEFAULT_REPLICATION_FACTOR: u32 = 3;

impl Engine {
    /// Checks a create's replication factor before it is proposed: 0 is refused, and above 1
    /// in single-node mode (one copy is all it has); the voters' bound is checked at apply.
    pub(in crate::engine) fn check_replication_factor(
        &self,
        asked: Option<u32>,
    ) -> Result<Option<u32>> {
        match asked {
            Some(0) => Err(Error::new(
                ErrorCode::InvalidTopicConfig,
                "replication_factor must be at least 1",
            )),
            Some(rf) if rf > 1 && !self.replicated() => Err(Error::new(
                ErrorCode::InvalidTopicConfig,
                format!(
                    "replication_factor {rf}: a single-node broker keeps one copy; replication needs cluster mode"
                ),
            )),
            Some(_) if !self.replicated() => Ok(None),
            asked => Ok(asked),
        }
    }
}

/// Places `record` (whose id is decided) on `voters`: its replication factor and each
/// partition's replicas, or the refusal of a factor above the voters. No voters (a test's
/// metadata log) or a `memory` topic: not placed.
pub fn place(record: &mut TopicRecord, voters: &[u64]) -> Result<()> {
    if voters.is_empty() || record.settings.storage == StorageKind::Memory {
        record.replicas = Vec::new();
        return Ok(());
    }
    let mut voters = voters.to_vec();
    voters.sort_unstable();
    voters.dedup();
    let count = voters.len();
    let rf = record
        .replication_factor
        .unwrap_or(DEFAULT_REPLICATION_FACTOR.min(count as u32));
    if rf as usize > count {
        return Err(Error::new(
            ErrorCode::InvalidTopicConfig,
            format!("replication_factor {rf} is more than the cluster's {count} voting nodes"),
        ));
    }
    record.replication_factor = Some(rf);
    record.replicas = (0..record.settings.partitions)
        .map(|p| {
            let first = (record.id as usize + p as usize) % count;
            (0..rf as usize)
                .map(|k| voters[(first + k) % count])
                .collect()
        })
        .collect();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::topic::{DurabilityMode, TopicSettings};

    fn record(id: u32, partitions: u32, rf: Option<u32>) -> TopicRecord {
        TopicRecord {
            id,
            tenant: "default".into(),
            name: "t".into(),
            settings: TopicSettings {
                partitions,
                retention_ms: 0,
                retention_bytes: 0,
                retention_messages: 0,
                max_message_bytes: 1024,
                storage: StorageKind::Disk,
                durability: DurabilityMode::Fsync,
                dedup_window_ms: 0,
            },
            created_at_ms: 0,
            replication_factor: rf,
            replicas: Vec::new(),
        }
    }

    #[test]
    fn default_factor_is_three_and_first_replicas_rotate() {
        let mut topic = record(1, 3, None);
        place(&mut topic, &[3, 1, 2]).unwrap();
        assert_eq!(topic.replication_factor, Some(3));
        assert_eq!(
            topic.replicas,
            vec![vec![2, 3, 1], vec![3, 1, 2], vec![1, 2, 3]]
        );
    }

    #[test]
    fn a_factor_below_the_voters_spreads_over_all_of_them() {
        let mut topic = record(0, 4, Some(2));
        place(&mut topic, &[1, 2, 3, 4, 5]).unwrap();
        assert_eq!(
            topic.replicas,
            vec![vec![1, 2], vec![2, 3], vec![3, 4], vec![4, 5]]
        );
        let mut small = record(7, 1, None);
        place(&mut small, &[1, 2]).unwrap();
        assert_eq!(small.replication_factor, Some(2), "min(3, voters)");
    }

    #[test]
    fn a_factor_above_the_voters_is_refused() {
        let mut topic = record(1, 1, Some(4));
        let err = place(&mut topic, &[1, 2, 3]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidTopicConfig);
        assert!(topic.replicas.is_empty());
    }

    #[test]
    fn placed_records_round_trip_in_the_log_and_older_records_read_unplaced() {
        let mut topic = record(3, 2, Some(2));
        place(&mut topic, &[1, 2, 3]).unwrap();
        let logged: TopicRecord =
            postcard::from_bytes(&postcard::to_stdvec(&topic).unwrap()).unwrap();
        assert_eq!(logged, topic, "the metadata group's log encoding");
        let json: TopicRecord =
            serde_json::from_str(&serde_json::to_string(&topic).unwrap()).unwrap();
        assert_eq!(json, topic, "the topic record in the store");
        let mut older = serde_json::to_value(record(3, 2, None)).unwrap();
        let fields = older.as_object_mut().unwrap();
        fields.remove("replicas");
        fields.remove("replication_factor");
        let older: TopicRecord = serde_json::from_value(older).unwrap();
        assert!(older.replicas.is_empty() && older.replication_factor.is_none());
    }

    #[test]
    fn memory_topics_and_voterless_logs_are_not_placed() {
        let mut topic = record(1, 2, None);
        topic.settings.storage = StorageKind::Memory;
        place(&mut topic, &[1, 2, 3]).unwrap();
        assert!(topic.replicas.is_empty());
        let mut topic = record(1, 2, None);
        place(&mut topic, &[]).unwrap();
        assert!(topic.replicas.is_empty());
    }
}
