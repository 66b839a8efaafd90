//! Metadata commands: every durable change to topics, subscriptions, users, roles and tenants
//! is one of these pure-data entries. [`MetaCommand::to_write_batch`] turns one into one atomic
//! [`WriteBatch`], and `Engine::apply` (`apply.rs`) writes it and then makes its in-memory
//! effects, so replaying the same commands rebuilds the same state.
//!
//! The translation is deterministic: ids, offsets and timestamps are fixed by the engine before
//! the command is built. That is what lets a cluster replicate the same commands through its
//! metadata raft group. A partition's own state (committed offsets, queue ack state) is not
//! here: those are partition entries (`partition/entry.rs`).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::keys;
use super::partition::{ConsumerChange, PartitionEntry};
use super::replicated::Moved;
use super::subscription::SubscriptionRecord;
use super::topic::TopicRecord;
use crate::audit::AuditEntry;
use crate::auth::AuthCommand;
use crate::storage::{Cf, WriteBatch};
use crate::tenant::{TenantRecord, tenant_key};

/// Serde (postcard) carries it through the cluster's metadata group (`cluster::metadata`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Writes a new topic's record and moves the next topic id past its id, so the id is never
    /// handed out again, even after the topic is deleted and the broker restarts.
    CreateTopic(TopicRecord),
    /// Writes a topic record with new settings.
    AlterTopic(TopicRecord),
    /// Removes a topic and everything keyed by its id: subscriptions, cursors, queue state,
    /// log, index, producer and dedup state, and its delayed messages (`scheduled`: their
    /// schedule keys, found by the engine, since the schedule is keyed by due time first). One
    /// batch, so a crash leaves all of it or none.
    DeleteTopic {
        record: TopicRecord,
        scheduled: Vec<Vec<u8>>,
    },
    CreateSubscription {
        topic_id: u32,
        record: SubscriptionRecord,
        cursors: Vec<u64>,
    },
    DeleteSubscription {
        topic_id: u32,
        name: String,
    },
    /// A change to users or tokens (`crate::auth`), written beside the topics in `meta`.
    Auth(AuthCommand),
    /// Creates a tenant or replaces its quotas.
    PutTenant(TenantRecord),
    /// Deletes an empty tenant and its custom roles (listed by the engine).
    DeleteTenant {
        name: String,
        roles: Vec<String>,
    },
    /// An admin change with its audit record, written in the same batch
    /// ([`MetaCommand::audited`]).
    Audited {
        command: Box<MetaCommand>,
        entry: AuditEntry,
    },
    /// Sets where a partition's replicas are (cluster mode, `replicated/moves.rs`): a move's
    /// start (`moved.from` holds the replicas before it) or its end (`from` empty). Kept beside
    /// the topic's record, whose replicas stay as placed at create.
    MoveReplicas {
        topic_id: u32,
        partition: u32,
        moved: Moved,
    },
}

impl MetaCommand {
    /// This command with `entry`, its stamped audit record, written in the same batch.
    pub fn audited(self, entry: AuditEntry) -> MetaCommand {
        MetaCommand::Audited {
            command: Box::new(self),
            entry,
        }
    }

    /// The change itself, without its audit record.
    pub fn unaudited(&self) -> &MetaCommand {
        match self {
            MetaCommand::Audited { command, .. } => command.unaudited(),
            command => command,
        }
    }

    /// What kind of change this is, for logs (never the records: they may hold secrets'
    /// hashes).
    pub fn kind(&self) -> &'static str {
        match self.unaudited() {
            MetaCommand::CreateTopic(_) => "create topic",
            MetaCommand::AlterTopic(_) => "alter topic",
            MetaCommand::DeleteTopic { .. } => "delete topic",
            MetaCommand::CreateSubscription { .. } => "create subscription",
            MetaCommand::DeleteSubscription { .. } => "delete subscription",
            MetaCommand::Auth(_) => "auth change",
            MetaCommand::PutTenant(_) => "put tenant",
            MetaCommand::DeleteTenant { .. } => "delete tenant",
            MetaCommand::Audited { .. } => "audited change",
            MetaCommand::MoveReplicas { .. } => "move replicas",
        }
    }

    pub fn to_write_batch(&self) -> WriteBatch {
        let mut batch = WriteBatch::new();
        match self {
            MetaCommand::Audited { command, entry } => {
                batch = command.to_write_batch();
                entry.write_to(&mut batch);
            }
            MetaCommand::Auth(command) => command.write_to(&mut batch),
            MetaCommand::PutTenant(record) => {
                batch.put(Cf::Meta, tenant_key(&record.name), json(record));
            }
            MetaCommand::DeleteTenant { name, roles } => {
                batch.delete(Cf::Meta, tenant_key(name));
                for role in roles {
                    batch.delete(Cf::Meta, crate::auth::role_key(name, role));
                }
            }
            MetaCommand::CreateTopic(record) => {
                batch.put(
                    Cf::Meta,
                    keys::topic_meta_key(&record.tenant, &record.name),
                    json(record),
                );
                batch.put(
                    Cf::Meta,
                    keys::NEXT_TOPIC_ID_KEY.to_vec(),
                    Bytes::copy_from_slice(&(record.id + 1).to_be_bytes()),
                );
            }
            MetaCommand::AlterTopic(record) => {
                batch.put(
                    Cf::Meta,
                    keys::topic_meta_key(&record.tenant, &record.name),
                    json(record),
                );
            }
            MetaCommand::DeleteTopic { record, scheduled } => {
                let id = record.id;
                batch.delete(Cf::Meta, keys::topic_meta_key(&record.tenant, &record.name));
                for key in scheduled {
                    batch.delete(Cf::Schedule, key.clone());
                }
                let subs = keys::subscription_meta_prefix(id);
                batch.delete_range(Cf::Meta, subs.clone(), keys::prefix_end(&subs));
                let marks = keys::watermark_prefix(id);
                batch.delete_range(Cf::Meta, marks.clone(), keys::prefix_end(&marks));
                let moved = keys::replicas_prefix(id);
                batch.delete_range(Cf::Meta, moved.clone(), keys::prefix_end(&moved));
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
                // The starting cursors, as partition entries.
                for (partition, &offset) in cursors.iter().enumerate() {
                    let change = ConsumerChange::Commit(offset);
                    PartitionEntry::new(*topic_id, partition as u32, &record.name, change)
                        .write_to(&mut batch);
                }
            }
            MetaCommand::MoveReplicas {
                topic_id,
                partition,
                moved,
            } => {
                batch.put(
                    Cf::Meta,
                    keys::replicas_key(*topic_id, *partition),
                    json(moved),
                );
            }
            MetaCommand::DeleteSubscription { topic_id, name } => {
                batch.delete(Cf::Meta, keys::subscription_meta_key(*topic_id, name));
                let prefix = keys::cursor_prefix(*topic_id, name);
                batch.delete_range(Cf::Cursors, prefix.clone(), keys::prefix_end(&prefix));
                batch.delete_range(Cf::Acks, prefix.clone(), keys::prefix_end(&prefix));
            }
        }
        batch
    }
}

fn json<T: serde::Serialize>(record: &T) -> Bytes {
    // Records are plain structs of strings and numbers: serialising them cannot fail.
    Bytes::from(serde_json::to_vec(record).expect("metadata records serialise"))
}

/// Decodes the next topic id written by [`MetaCommand::CreateTopic`].
pub fn decode_topic_id(value: &[u8]) -> Option<u32> {
    value.try_into().ok().map(u32::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::topic::{DurabilityMode, StorageKind, TopicSettings};
    use crate::storage::{MemStore, Store};

    fn record(id: u32, name: &str) -> TopicRecord {
        TopicRecord {
            id,
            tenant: "default".into(),
            name: name.into(),
            settings: TopicSettings {
                partitions: 1,
                retention_ms: 0,
                retention_bytes: 0,
                retention_messages: 0,
                max_message_bytes: 1024,
                storage: StorageKind::Disk,
                durability: DurabilityMode::Fsync,
                dedup_window_ms: 0,
            },
            created_at_ms: 0,
            replication_factor: None,
            replicas: Vec::new(),
        }
    }

    fn apply(store: &MemStore, command: MetaCommand) {
        store.write(command.to_write_batch(), true).unwrap();
    }

    fn next_topic_id(store: &MemStore) -> Option<u32> {
        store
            .get(Cf::Meta, keys::NEXT_TOPIC_ID_KEY)
            .unwrap()
            .as_deref()
            .and_then(decode_topic_id)
    }

    #[test]
    fn creating_a_topic_moves_the_next_id_past_it_and_nothing_moves_it_back() {
        let store = MemStore::new();
        apply(&store, MetaCommand::CreateTopic(record(1, "a")));
        apply(&store, MetaCommand::CreateTopic(record(2, "b")));
        assert_eq!(next_topic_id(&store), Some(3));
        apply(&store, MetaCommand::AlterTopic(record(1, "a")));
        apply(
            &store,
            MetaCommand::DeleteTopic {
                record: record(2, "b"),
                scheduled: Vec::new(),
            },
        );
        assert_eq!(next_topic_id(&store), Some(3));
    }

    #[test]
    fn deleting_a_topic_removes_its_delayed_messages_and_keyed_state_only() {
        let store = MemStore::new();
        let mut batch = WriteBatch::new();
        let mine = keys::schedule_key(5_000, 7, 0, 1);
        let other = keys::schedule_key(5_000, 8, 0, 1);
        for key in [&mine, &other] {
            batch.put(Cf::Schedule, key.clone(), Bytes::from_static(b"m"));
        }
        for id in [7, 8] {
            batch.put(
                Cf::Dedup,
                keys::dedup_key(id, b"x"),
                Bytes::from_static(b"e"),
            );
            batch.put(
                Cf::Acks,
                keys::cursor_key(id, "s", 0),
                Bytes::from_static(b"q"),
            );
        }
        store.write(batch, true).unwrap();
        apply(
            &store,
            MetaCommand::DeleteTopic {
                record: record(7, "a"),
                scheduled: vec![mine.clone()],
            },
        );
        let has = |cf, key: &[u8]| store.get(cf, key).unwrap().is_some();
        assert!(!has(Cf::Schedule, &mine), "its delayed message is gone");
        assert!(!has(Cf::Dedup, &keys::dedup_key(7, b"x")));
        assert!(!has(Cf::Acks, &keys::cursor_key(7, "s", 0)));
        assert!(has(Cf::Schedule, &other), "another topic's stays");
        assert!(has(Cf::Dedup, &keys::dedup_key(8, b"x")));
        assert!(has(Cf::Acks, &keys::cursor_key(8, "s", 0)));
    }

    #[test]
    fn a_moved_partition_is_kept_beside_its_topic_and_deleted_with_it() {
        let store = MemStore::new();
        let moved = |replicas: Vec<u64>, from: Vec<u64>| MetaCommand::MoveReplicas {
            topic_id: 7,
            partition: 1,
            moved: Moved { replicas, from },
        };
        apply(&store, moved(vec![2, 3, 4], vec![1, 2, 3]));
        apply(&store, moved(vec![2, 3, 4], Vec::new()));
        apply(
            &store,
            MetaCommand::MoveReplicas {
                topic_id: 8,
                partition: 0,
                moved: Moved::default(),
            },
        );
        let stored = store
            .get(Cf::Meta, &keys::replicas_key(7, 1))
            .unwrap()
            .expect("kept");
        let stored: Moved = serde_json::from_slice(&stored).unwrap();
        assert_eq!((stored.replicas, stored.from), (vec![2, 3, 4], vec![]));
        apply(
            &store,
            MetaCommand::DeleteTopic {
                record: record(7, "a"),
                scheduled: Vec::new(),
            },
        );
        let has = |topic, partition| {
            store
                .get(Cf::Meta, &keys::replicas_key(topic, partition))
                .unwrap()
                .is_some()
        };
        assert!(!has(7, 1), "deleted with its topic");
        assert!(has(8, 0), "another topic's stays");
    }
}
