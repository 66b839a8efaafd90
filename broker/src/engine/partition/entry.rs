//! Partition entries: the durable changes to one partition's consumer state (a stream
//! subscription's committed offset, a queue subscription's ack state). They are pure data,
//! keyed by topic id, partition and subscription name, and turned into store writes by
//! [`PartitionEntry::write_to`]; [`crate::engine::Engine::apply_partition`] writes them and
//! makes their in-memory effects.
//!
//! They are kept apart from the metadata commands (`engine/command.rs`) on purpose: with
//! clustering, a replicated partition's commits and seeks are entries of its partition's raft
//! group (`PartitionCommand::Consumer`), applied on every replica with this same
//! [`PartitionEntry::write_to`], and never travel through the metadata log
//! (docs/adr/0005-clustering.md). A partition's other entries, appends and
//! retention trims, are carried by its writer task (`writer.rs`); what an append commits
//! besides its batch is data too ([`AppendExtra`]), never raw store writes.

use bytes::Bytes;

use crate::engine::keys;
use crate::engine::queue::QueuePartition;
use crate::storage::{Cf, WriteBatch};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionEntry {
    pub topic_id: u32,
    pub partition: u32,
    pub subscription: String,
    pub change: ConsumerChange,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ConsumerChange {
    /// A stream subscription's committed offset: the next offset it will be given.
    Commit(u64),
    /// A seek of a queue subscription: its cursor and a fresh ack state starting at the same
    /// offset (nothing settled above it, no attempts), written together.
    SeekQueue(u64),
    /// Queue-mode ack state (`QueuePartition::encode`). The partition's leader keeps the live
    /// state in memory and writes this snapshot of it on an interval; the leases of messages
    /// in flight are soft state that only the leader has.
    QueueState(Bytes),
    /// Cluster mode: a new subscription's starting cursor on a replicated partition, fixed by
    /// the partition's group where the entry applies ([`PartitionEntry::resolved`]), so every
    /// replica starts the subscription at the same offset whatever its own log held when the
    /// subscription's metadata applied. Becomes a [`ConsumerChange::Commit`] (stream) or a
    /// [`ConsumerChange::SeekQueue`] (queue) before it is written.
    Start { at: StartAt, queue: bool },
    /// What a [`ConsumerChange::SeekQueue`], or a queue's [`ConsumerChange::Start`], becomes
    /// where a partition group applies it ([`PartitionEntry::resolved`]): the seek, with the
    /// entry's raft index as the epoch of the fresh ack state
    /// ([`QueuePartition::epoch`](crate::engine::queue::QueuePartition::epoch)). Never
    /// proposed.
    ResetQueue { offset: u64, epoch: u64 },
}

/// Where [`ConsumerChange::Start`] puts a cursor, in the partition's log as of the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StartAt {
    /// The end of the log: the next offset appended.
    Latest,
    /// The log start.
    Earliest,
    /// This offset, clamped to the log (a timestamp start is resolved to one by the node that
    /// creates the subscription).
    Offset(u64),
}

impl PartitionEntry {
    pub fn new(
        topic_id: u32,
        partition: u32,
        subscription: &str,
        change: ConsumerChange,
    ) -> PartitionEntry {
        PartitionEntry {
            topic_id,
            partition,
            subscription: subscription.to_string(),
            change,
        }
    }

    /// This entry as a partition group applies it at raft index `index`: a
    /// [`ConsumerChange::Start`] fixed against a log that runs from `log_start` to
    /// `next_offset` (the partition as of the entry, the same on every replica), and a queue's
    /// start or seek as a [`ConsumerChange::ResetQueue`] of epoch `index`; any other entry as
    /// it is.
    pub fn resolved(&self, log_start: u64, next_offset: u64, index: u64) -> PartitionEntry {
        let change = match self.change {
            ConsumerChange::Start { at, queue } => {
                let offset = match at {
                    StartAt::Latest => next_offset,
                    StartAt::Earliest => log_start,
                    StartAt::Offset(offset) => offset.clamp(log_start, next_offset.max(log_start)),
                };
                if queue {
                    ConsumerChange::ResetQueue {
                        offset,
                        epoch: index,
                    }
                } else {
                    ConsumerChange::Commit(offset)
                }
            }
            ConsumerChange::SeekQueue(offset) => ConsumerChange::ResetQueue {
                offset,
                epoch: index,
            },
            _ => return self.clone(),
        };
        PartitionEntry {
            change,
            ..self.clone()
        }
    }

    /// Adds this entry's store writes to `batch`. A [`ConsumerChange::Start`] writes nothing:
    /// it is [resolved](PartitionEntry::resolved) into a cursor first.
    pub fn write_to(&self, batch: &mut WriteBatch) {
        let key = keys::cursor_key(self.topic_id, &self.subscription, self.partition);
        match &self.change {
            ConsumerChange::Commit(offset) => batch.put(Cf::Cursors, key, offset_value(*offset)),
            ConsumerChange::SeekQueue(offset) => {
                batch.put(Cf::Cursors, key.clone(), offset_value(*offset));
                batch.put(Cf::Acks, key, QueuePartition::new(*offset).encode());
            }
            ConsumerChange::ResetQueue { offset, epoch } => {
                batch.put(Cf::Cursors, key.clone(), offset_value(*offset));
                batch.put(
                    Cf::Acks,
                    key,
                    QueuePartition::reset(*offset, *epoch).encode(),
                );
            }
            ConsumerChange::QueueState(state) => batch.put(Cf::Acks, key, state.clone()),
            ConsumerChange::Start { .. } => {}
        }
    }
}

/// What an append commits atomically with its batch, in the same write (with clustering, in
/// the same entry of the partition's group).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AppendExtra {
    /// A msg-id dedup record of the partition's topic: the id is taken until `expires_ms`.
    Dedup { msg_id: Bytes, expires_ms: i64 },
    /// A delayed message of this partition, stored until it is due. The key
    /// (`keys::schedule_key`) holds the due time, the partition and a nonce fixed by the leader.
    Schedule { key: Vec<u8>, batch: Bytes },
    /// A delayed message released by this append: its schedule entry goes.
    Unschedule { key: Vec<u8> },
}

impl AppendExtra {
    /// Adds this extra's store writes, for a partition of topic `topic_id`, to `batch`.
    pub fn write_to(&self, topic_id: u32, batch: &mut WriteBatch) {
        match self {
            AppendExtra::Dedup { msg_id, expires_ms } => batch.put(
                Cf::Dedup,
                keys::dedup_key(topic_id, msg_id),
                Bytes::copy_from_slice(&expires_ms.to_be_bytes()),
            ),
            AppendExtra::Schedule { key, batch: value } => {
                batch.put(Cf::Schedule, key.clone(), value.clone())
            }
            AppendExtra::Unschedule { key } => batch.delete(Cf::Schedule, key.clone()),
        }
    }
}

fn offset_value(offset: u64) -> Bytes {
    Bytes::copy_from_slice(&offset.to_be_bytes())
}

/// Decodes a committed offset written by [`ConsumerChange::Commit`].
pub fn decode_offset(value: &[u8]) -> Option<u64> {
    value.try_into().ok().map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemStore, Store};

    fn apply(store: &MemStore, entry: PartitionEntry) {
        let mut batch = WriteBatch::new();
        entry.write_to(&mut batch);
        store.write(batch, true).unwrap();
    }

    #[test]
    fn a_queue_seek_writes_the_cursor_and_a_fresh_ack_state_together() {
        let store = MemStore::new();
        let key = keys::cursor_key(1, "workers", 0);
        let mut settled = QueuePartition::new(10);
        let state = ConsumerChange::QueueState(settled.encode());
        apply(&store, PartitionEntry::new(1, 0, "workers", state));
        apply(
            &store,
            PartitionEntry::new(1, 0, "workers", ConsumerChange::SeekQueue(0)),
        );
        let cursor = store.get(Cf::Cursors, &key).unwrap().unwrap();
        assert_eq!(decode_offset(&cursor), Some(0));
        let state = store.get(Cf::Acks, &key).unwrap().unwrap();
        assert_eq!(QueuePartition::decode(&state).unwrap().floor(), 0);
    }

    #[test]
    fn a_commit_is_stored_under_its_partition_only() {
        let store = MemStore::new();
        apply(
            &store,
            PartitionEntry::new(3, 1, "readers", ConsumerChange::Commit(42)),
        );
        let get = |p| {
            store
                .get(Cf::Cursors, &keys::cursor_key(3, "readers", p))
                .unwrap()
        };
        assert_eq!(get(1).as_deref().and_then(decode_offset), Some(42));
        assert_eq!(get(0), None);
    }

    #[test]
    fn a_start_is_fixed_against_the_log_as_of_its_entry() {
        let start = |at, queue| PartitionEntry::new(7, 0, "s", ConsumerChange::Start { at, queue });
        let change = |at, queue| start(at, queue).resolved(5, 12, 30).change;
        let reset = |offset| ConsumerChange::ResetQueue { offset, epoch: 30 };
        assert_eq!(change(StartAt::Latest, false), ConsumerChange::Commit(12));
        assert_eq!(change(StartAt::Earliest, false), ConsumerChange::Commit(5));
        assert_eq!(change(StartAt::Offset(2), false), ConsumerChange::Commit(5));
        assert_eq!(change(StartAt::Offset(9), true), reset(9));
        assert_eq!(change(StartAt::Offset(99), true), reset(12));
        let seek = PartitionEntry::new(7, 0, "s", ConsumerChange::SeekQueue(7));
        assert_eq!(seek.resolved(5, 12, 30).change, reset(7));
        let commit = PartitionEntry::new(7, 0, "s", ConsumerChange::Commit(3));
        assert_eq!(
            commit.resolved(5, 12, 30),
            commit,
            "other entries stay as they are"
        );
    }

    #[test]
    fn a_replicated_seek_stores_its_epoch_with_the_fresh_ack_state() {
        let store = MemStore::new();
        let key = keys::cursor_key(1, "workers", 0);
        let reset = ConsumerChange::ResetQueue {
            offset: 4,
            epoch: 17,
        };
        apply(&store, PartitionEntry::new(1, 0, "workers", reset));
        let state = store.get(Cf::Acks, &key).unwrap().unwrap();
        assert_eq!(QueuePartition::encoded_epoch(&state), Some(17));
        let restored = QueuePartition::decode(&state).unwrap();
        assert_eq!((restored.floor(), restored.epoch()), (4, 17));
        // A single node's seek writes the state as it always did: no epoch.
        apply(
            &store,
            PartitionEntry::new(1, 0, "workers", ConsumerChange::SeekQueue(4)),
        );
        let state = store.get(Cf::Acks, &key).unwrap().unwrap();
        assert_eq!(state.len(), 12);
        assert_eq!(QueuePartition::encoded_epoch(&state), Some(0));
    }
}
