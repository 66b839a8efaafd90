//! Metadata commands: every durable change to topics, subscriptions and committed offsets is one
//! of these, turned into one atomic [`WriteBatch`] by [`MetaCommand::to_write_batch`].
//!
//! The translation is deterministic: ids, offsets and timestamps are fixed by the engine before
//! the command is built. That is what lets a cluster replicate the same commands through Raft
//! later without touching the engine. Appends and truncations have the same shape per partition
//! (see `partition.rs`).

use bytes::Bytes;

use super::keys;
use super::subscription::SubscriptionRecord;
use super::topic::TopicRecord;
use crate::storage::{Cf, WriteBatch};

#[derive(Debug, Clone)]
pub enum MetaCommand {
    /// Writes a topic record: on creation, and with new settings on an alter.
    CreateTopic(TopicRecord),
    DeleteTopic(TopicRecord),
    CreateSubscription {
        topic_id: u32,
        record: SubscriptionRecord,
        cursors: Vec<u64>,
    },
    DeleteSubscription {
        topic_id: u32,
        name: String,
    },
    SetCursors {
        topic_id: u32,
        subscription: String,
        offsets: Vec<(u32, u64)>,
    },
    /// Queue-mode ack state of some partitions of a subscription.
    SetQueueState {
        topic_id: u32,
        subscription: String,
        states: Vec<(u32, Bytes)>,
    },
}

impl MetaCommand {
    pub fn to_write_batch(&self) -> WriteBatch {
        let mut batch = WriteBatch::new();
        match self {
            MetaCommand::CreateTopic(record) => {
                batch.put(
                    Cf::Meta,
                    keys::topic_meta_key(&record.tenant, &record.name),
                    json(record),
                );
            }
            MetaCommand::DeleteTopic(record) => {
                let id = record.id;
                batch.delete(Cf::Meta, keys::topic_meta_key(&record.tenant, &record.name));
                let subs = keys::subscription_meta_prefix(id);
                batch.delete_range(Cf::Meta, subs.clone(), keys::prefix_end(&subs));
                let marks = keys::watermark_prefix(id);
                batch.delete_range(Cf::Meta, marks.clone(), keys::prefix_end(&marks));
                for cf in [
                    Cf::Log,
                    Cf::Index,
                    Cf::Producers,
                    Cf::Cursors,
                    Cf::Acks,
                    Cf::Dedup,
                ] {
                    batch.delete_range(cf, keys::topic_start(id), keys::topic_end(id));
                }
            }
            MetaCommand::CreateSubscription {
                topic_id,
                record,
                cursors,
            } => {
                batch.put(
                    Cf::Meta,
                    keys::subscription_meta_key(*topic_id, &record.name),
                    json(record),
                );
                for (partition, offset) in cursors.iter().enumerate() {
                    batch.put(
                        Cf::Cursors,
                        keys::cursor_key(*topic_id, &record.name, partition as u32),
                        offset_value(*offset),
                    );
                }
            }
            MetaCommand::DeleteSubscription { topic_id, name } => {
                batch.delete(Cf::Meta, keys::subscription_meta_key(*topic_id, name));
                let prefix = keys::cursor_prefix(*topic_id, name);
                batch.delete_range(Cf::Cursors, prefix.clone(), keys::prefix_end(&prefix));
                batch.delete_range(Cf::Acks, prefix.clone(), keys::prefix_end(&prefix));
            }
            MetaCommand::SetQueueState {
                topic_id,
                subscription,
                states,
            } => {
                for (partition, state) in states {
                    batch.put(
                        Cf::Acks,
                        keys::cursor_key(*topic_id, subscription, *partition),
                        state.clone(),
                    );
                }
            }
            MetaCommand::SetCursors {
                topic_id,
                subscription,
                offsets,
            } => {
                for (partition, offset) in offsets {
                    batch.put(
                        Cf::Cursors,
                        keys::cursor_key(*topic_id, subscription, *partition),
                        offset_value(*offset),
                    );
                }
            }
        }
        batch
    }
}

fn json<T: serde::Serialize>(record: &T) -> Bytes {
    // Records are plain structs of strings and numbers: serialising them cannot fail.
    Bytes::from(serde_json::to_vec(record).expect("metadata records serialise"))
}

fn offset_value(offset: u64) -> Bytes {
    Bytes::copy_from_slice(&offset.to_be_bytes())
}

/// Decodes a committed offset written by [`MetaCommand::SetCursors`].
pub fn decode_offset(value: &[u8]) -> Option<u64> {
    value.try_into().ok().map(u64::from_be_bytes)
}
