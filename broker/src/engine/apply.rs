//! The one apply path. Every durable change to topics, subscriptions, users, roles, tenants and
//! committed offsets is an entry: a metadata command ([`MetaCommand`]) or partition entries
//! ([`PartitionEntry`]). Applying one writes it in one fsynced batch and then makes its
//! in-memory effects, in that order and in one function per kind, so that nothing else changes
//! that state and a replica applying the same entries rebuilds the same state
//! (docs/adr/0005-clustering.md).
//!
//! What stays with the callers is the leader's side: validating, authorizing, fixing ids and
//! times before the entry is built, and fencing a topic before its delete (`topics.rs`).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;

use super::command::MetaCommand;
use super::keys;
use super::partition::{ConsumerChange, Partition, PartitionEntry};
use super::queue::QueuePartition;
use super::subscription::{QueueRuntime, Subscription, SubscriptionRecord};
use super::topic::Topic;
use super::{Engine, LiveTopic, TopicState};
use crate::audit::Audit;
use crate::auth::AuthCommand;
use crate::error::{Error, Result};
use crate::storage::{Cf, Store as _, WriteBatch};

impl Engine {
    /// Applies a metadata command: one atomic, fsynced write, then its in-memory effects. The
    /// one way topics, subscriptions, users, roles and tenants change.
    ///
    /// In cluster mode the command is proposed to the metadata group instead, and this returns
    /// once the group applied it on this node, through the same in-memory effects
    /// (`replicated/`), or refused it there (a conflict with a concurrent change through
    /// another node).
    pub async fn apply(&self, command: MetaCommand) -> Result<()> {
        if let Some(log) = self.meta_log() {
            return log.propose(command).await;
        }
        self.write_to_disk(command.to_write_batch()).await?;
        self.apply_written(&command).await
    }

    /// The in-memory effects of a metadata command whose write has succeeded.
    pub(super) async fn apply_written(&self, command: &MetaCommand) -> Result<()> {
        let change = command.unaudited();
        if let MetaCommand::DeleteTopic { .. } = change {
            // A deleted memory topic's data goes too (its audit record stays on disk only).
            self.memory.write(change.to_write_batch(), false)?;
        }
        self.apply_in_memory(change).await
    }

    /// Applies `command` with the audit record of the change (`audit`, stamped here with its
    /// time and key) in the same fsynced write: no change exists without its record.
    pub async fn apply_audited(&self, command: MetaCommand, audit: Audit) -> Result<()> {
        let entry = self.audit.stamp.entry(audit, self.auth.now_ms(), 1);
        self.apply(command.audited(entry)).await
    }

    /// Applies partition entries (with the audit record of an admin seek, if any) in one
    /// fsynced write, then their in-memory effects. The one way committed offsets and queue
    /// ack state change.
    ///
    /// In cluster mode the commits and seeks of a replicated partition are proposed to its
    /// group instead, each partition's on its own, and this returns once every one is applied
    /// on this node (on the leader, from a node that is not a replica); the group's apply on
    /// every replica writes them and makes the same in-memory effects. Queue ack state is
    /// proposed only by the partition's leader, which alone delivers it. The audit record stays
    /// this node's own, written once the proposals are applied.
    pub(super) async fn apply_partition(
        &self,
        entries: &[PartitionEntry],
        audit: Option<Audit>,
    ) -> Result<()> {
        let local = match self.partition_host.get() {
            None => Cow::Borrowed(entries),
            Some(_) => Cow::Owned(self.propose_consumer_entries(entries).await?),
        };
        let mut batch = WriteBatch::new();
        for entry in local.iter() {
            entry.write_to(&mut batch);
        }
        if let Some(audit) = audit {
            let record = self.audit.stamp.entry(audit, self.auth.now_ms(), 1);
            record.write_to(&mut batch);
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.write_to_disk(batch).await?;
        for entry in local.iter() {
            self.apply_partition_in_memory(entry);
        }
        Ok(())
    }

    /// Cluster mode: proposes the entries of replicated partitions among `entries` to their
    /// groups, all partitions at once, and waits for every one; the entries left for this node
    /// to write itself (those of partitions that are not replicated).
    async fn propose_consumer_entries(
        &self,
        entries: &[PartitionEntry],
    ) -> Result<Vec<PartitionEntry>> {
        let mut local = Vec::new();
        let mut grouped: Vec<(Arc<Topic>, u32, Vec<PartitionEntry>)> = Vec::new();
        for entry in entries {
            let topic = self.topic_by_id(entry.topic_id).filter(|topic| {
                topic
                    .partition(entry.partition)
                    .is_some_and(Partition::replicated)
            });
            let Some(topic) = topic else {
                local.push(entry.clone());
                continue;
            };
            let group = grouped
                .iter_mut()
                .find(|(t, p, _)| t.id() == entry.topic_id && *p == entry.partition);
            match group {
                Some((_, _, group)) => group.push(entry.clone()),
                None => grouped.push((topic, entry.partition, vec![entry.clone()])),
            }
        }
        let proposals = grouped
            .iter()
            .map(|(topic, partition, entries)| async move {
                match topic
                    .partition(*partition)
                    .and_then(|p| p.consume(entries.clone()))
                {
                    Some(proposed) => proposed.await,
                    // Grouped above only when the partition exists and is replicated.
                    None => Err(Error::internal(format!(
                        "partition {partition} of {} took no consumer entry",
                        topic.name()
                    ))),
                }
            });
        for applied in futures::future::join_all(proposals).await {
            applied?;
        }
        Ok(local)
    }

    async fn write_to_disk(&self, batch: WriteBatch) -> Result<()> {
        let disk = self.disk.clone();
        tokio::task::spawn_blocking(move || disk.write(batch, true))
            .await
            .map_err(|err| Error::internal(format!("storage task failed: {err}")))??;
        Ok(())
    }

    /// The in-memory effects of a metadata command (not audited) whose write has succeeded.
    async fn apply_in_memory(&self, command: &MetaCommand) -> Result<()> {
        match command {
            MetaCommand::Audited { command, .. } => Box::pin(self.apply_in_memory(command)).await?,
            MetaCommand::CreateTopic(record) => {
                // A replica learns the next id from the records it applies.
                self.next_topic_id
                    .fetch_max(record.id + 1, Ordering::Relaxed);
                let topic = self.open_topic(record.clone())?;
                self.insert_topic(topic);
            }
            MetaCommand::MoveReplicas {
                topic_id,
                partition,
                moved,
            } => self.apply_move(*topic_id, *partition, moved).await,
            MetaCommand::AlterTopic(record) => {
                if let Some(topic) = self.topic_by_id(record.id) {
                    *topic.settings.write() = record.settings.clone();
                    for partition in &topic.partitions {
                        partition
                            .shared()
                            .alter(record.settings.partition_settings());
                    }
                }
            }
            MetaCommand::DeleteTopic { record, .. } => {
                if let Some(live) = self.remove_topic(record.id) {
                    live.closed.send_replace(TopicState::Deleted);
                    for sub in live.topic.subscriptions.read().values() {
                        sub.close();
                    }
                    // Already stopped on the node that fenced the topic for its delete.
                    for partition in &live.topic.partitions {
                        partition.close().await;
                    }
                }
                self.drop_partition_groups(record).await;
                self.metrics.remove_topic(&record.tenant, &record.name);
            }
            MetaCommand::CreateSubscription {
                topic_id,
                record,
                cursors,
            } => {
                if let Some(topic) = self.topic_by_id(*topic_id) {
                    let sub = self.created_subscription(*topic_id, record, cursors)?;
                    topic
                        .subscriptions
                        .write()
                        .insert(record.name.clone(), Arc::new(sub));
                }
            }
            MetaCommand::DeleteSubscription { topic_id, name } => {
                let removed = self
                    .topic_by_id(*topic_id)
                    .and_then(|topic| topic.subscriptions.write().remove(name));
                if let Some(sub) = removed {
                    sub.close();
                }
            }
            MetaCommand::Auth(command) => self.auth.apply(command),
            MetaCommand::PutTenant(record) => self.tenants.put(record.clone()),
            MetaCommand::DeleteTenant { name, roles } => {
                for role in roles {
                    self.auth.apply(&AuthCommand::DeleteRole {
                        tenant: name.clone(),
                        name: role.clone(),
                        bindings: Vec::new(),
                    });
                }
                self.tenants.delete(name);
            }
        }
        Ok(())
    }

    /// The in-memory effect of a partition entry whose write has succeeded (here, or by a
    /// partition group's apply on this replica).
    pub(in crate::engine) fn apply_partition_in_memory(&self, entry: &PartitionEntry) {
        let Some(topic) = self.topic_by_id(entry.topic_id) else {
            return;
        };
        let Some(sub) = topic.subscriptions.read().get(&entry.subscription).cloned() else {
            return;
        };
        match &entry.change {
            ConsumerChange::Commit(offset) => sub.set_committed(entry.partition, *offset),
            ConsumerChange::SeekQueue(offset) => reset_queue(&sub, entry.partition, *offset, 0),
            ConsumerChange::ResetQueue { offset, epoch } => {
                reset_queue(&sub, entry.partition, *offset, *epoch)
            }
            ConsumerChange::QueueState(state) => {
                // The node that delivers the partition wrote it, and holds this state already
                // and more: acks taken since, and the leases of messages in flight. Every other
                // replica of a group takes it: it is what this node delivers from once it leads.
                // Whether it leads, not whether it holds the lease: a leader that lost it for a
                // while still holds the newest state.
                let delivered_here = topic
                    .partition(entry.partition)
                    .is_none_or(Partition::writes_here);
                let Some(queue) = sub.queue.as_ref().filter(|_| !delivered_here) else {
                    return;
                };
                let Some(slot) = queue.partitions.get(entry.partition as usize) else {
                    return;
                };
                match QueuePartition::decode(state) {
                    Some(state) => *slot.lock() = state,
                    None => {
                        tracing::error!(topic = %topic.name(), subscription = %sub.name(), partition = entry.partition, "replicated queue ack state does not decode; kept the one before")
                    }
                }
                queue.changed.notify_waiters();
            }
            // Resolved into a commit or a seek before it is applied (`PartitionEntry::resolved`).
            ConsumerChange::Start { .. } => {}
        }
    }

    /// The live state of a subscription whose creation applied: from its starting `cursors`,
    /// and for a queue, from the ack state a partition group stored for it if there is one (in
    /// cluster mode a partition's group can apply the subscription's `Start` entry on this node
    /// before the metadata group's creation does; its state carries the start's epoch, which the
    /// group's replicas compare the leader's later flushes against).
    fn created_subscription(
        &self,
        topic_id: u32,
        record: &SubscriptionRecord,
        cursors: &[u64],
    ) -> Result<Subscription> {
        let Some(settings) = &record.queue else {
            return Ok(Subscription::new(
                record.clone(),
                topic_id,
                cursors.to_vec(),
            ));
        };
        let mut states = Vec::with_capacity(cursors.len());
        for (p, &floor) in cursors.iter().enumerate() {
            let key = keys::cursor_key(topic_id, &record.name, p as u32);
            let stored = self.disk.get(Cf::Acks, &key)?;
            states.push(
                stored
                    .as_deref()
                    .and_then(QueuePartition::decode)
                    .unwrap_or_else(|| QueuePartition::new(floor)),
            );
        }
        let queue = QueueRuntime::new(settings.clone(), states);
        Ok(Subscription::with_queue(
            record.clone(),
            topic_id,
            cursors.to_vec(),
            Some(queue),
        ))
    }

    /// Makes `topic` live: found by name and by id, serving sessions.
    pub(super) fn insert_topic(&self, topic: Arc<Topic>) -> Option<LiveTopic> {
        let (closed, _) = watch::channel(TopicState::Open);
        let key = (topic.tenant.clone(), topic.name().to_string());
        self.topic_ids.write().insert(topic.id(), key.clone());
        self.topics.write().insert(key, LiveTopic { topic, closed })
    }

    pub(super) fn remove_topic(&self, id: u32) -> Option<LiveTopic> {
        let key = self.topic_ids.write().remove(&id)?;
        self.topics.write().remove(&key)
    }

    pub(super) fn topic_by_id(&self, id: u32) -> Option<Arc<Topic>> {
        let key = self.topic_ids.read().get(&id).cloned()?;
        self.topics.read().get(&key).map(|live| live.topic.clone())
    }
}

/// A queue seek's in-memory effect: the cursor, and a fresh ack state of epoch `epoch` (0 on a
/// single node) at the same offset.
fn reset_queue(sub: &Subscription, partition: u32, offset: u64, epoch: u64) {
    sub.set_committed(partition, offset);
    if let Some(queue) = &sub.queue {
        if let Some(state) = queue.partitions.get(partition as usize) {
            *state.lock() = QueuePartition::reset(offset, epoch);
        }
        queue.changed.notify_waiters();
    }
}
