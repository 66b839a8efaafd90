//! Which backend a partition gets: in cluster mode a placed topic's partitions are backed by
//! their raft groups, opened through the node's [`PartitionHost`]; everything else (single-node
//! mode, `memory` topics) by the single-node writer.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::super::Engine;
use super::super::partition::replicated::{ConsumerState, PartitionHost};
use super::super::partition::{Partition, PartitionEntry, PartitionOptions, PartitionShared};
use super::super::topic::{Topic, TopicRecord};
use super::moves::Placement;
use crate::error::Result;
use crate::storage::Store;

impl Engine {
    /// Makes this node host the partition groups of placed topics, through `host`. Set once
    /// by cluster mode, before the metadata group starts applying: topics recovered at start
    /// (opened with the single-node writer) are reopened on their groups here, and topics
    /// applied later open on theirs.
    pub async fn set_partition_host(&self, host: Arc<dyn PartitionHost>) -> Result<()> {
        if self.partition_host.set(host).is_err() {
            tracing::warn!("the partition host was set twice; keeping the first");
            return Ok(());
        }
        let placed: Vec<Arc<Topic>> = self
            .topics
            .read()
            .values()
            .map(|live| Arc::clone(&live.topic))
            .filter(|topic| self.host_for(&topic.record).is_some())
            .collect();
        for topic in placed {
            for partition in &topic.partitions {
                partition.close().await;
            }
            self.reopen_fenced(&topic)?;
        }
        self.groups_hosted.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether the background tasks (delayed releases, retention) may write now. In cluster
    /// mode not before the topics recovered at start are reopened on their groups: until then
    /// they sit on single-node writers, and a release or trim through one would change this
    /// replica alone, outside its group (its log would part from the others').
    pub(in crate::engine) fn background_writes_ready(&self) -> bool {
        !self.config.cluster.enabled() || self.groups_hosted.load(Ordering::Acquire)
    }

    /// The host of `record`'s partition groups: set, and the topic placed.
    fn host_for(&self, record: &TopicRecord) -> Option<&Arc<dyn PartitionHost>> {
        self.partition_host
            .get()
            .filter(|_| !record.replicas.is_empty())
    }

    /// Opens `record`'s partitions on `store`, each on its group or its own writer.
    pub(in crate::engine) fn open_partitions(
        &self,
        record: &TopicRecord,
        placement: &[Placement],
        store: &Arc<dyn Store>,
        blocking_io: bool,
        options: &PartitionOptions,
    ) -> Result<Vec<Partition>> {
        let host = self.host_for(record);
        let record_id = record.id;
        (0..record.settings.partitions)
            .map(|p| {
                let Some(host) = host else {
                    return Partition::open(
                        record.id,
                        p,
                        Arc::clone(store),
                        blocking_io,
                        options.clone(),
                        &self.runtime,
                    );
                };
                let shared = PartitionShared::open(
                    record.id,
                    p,
                    Arc::clone(store),
                    blocking_io,
                    options.tail_budget.clone(),
                    options.tenant_storage.clone(),
                    options.settings,
                )?;
                let placed = placement.get(p as usize).cloned().unwrap_or_default();
                let log = host.open(
                    record.id,
                    p,
                    &placed,
                    Arc::clone(&shared),
                    self.consumer_state(),
                    options,
                )?;
                if placed.moving() && placed.hosts(host.node_id()) {
                    self.drive_move(record.id, p);
                }
                if !placed.hosts(host.node_id()) {
                    // A copy from before the replicas moved off this node while it was down.
                    let (host, shared) = (Arc::clone(host), Arc::clone(&shared));
                    self.runtime.spawn(async move {
                        if let Err(err) = host.retire(record_id, p, &shared).await {
                            tracing::warn!(cause = %err, topic_id = record_id, partition = p, "deleting a stale partition copy");
                        }
                    });
                }
                Ok(Partition::in_group(shared, log))
            })
            .collect()
    }

    /// Rebuilds this node's copy of partition `p` of topic `topic_id`, which a read found
    /// damaged while the partition's group ran here: the group stops on this node and starts
    /// again the way it does at a start, checked ([`PartitionHost::open`]), so the damage is
    /// found, the group's leader makes this node a learner, the copy is emptied and the leader
    /// sends it again (docs/clustering.md "Damaged data"). Nothing happens where the node holds
    /// no replica of the partition, and where no other node holds one: the group keeps running
    /// and serves what is intact.
    pub async fn rebuild_damaged(&self, topic_id: u32, p: u32) {
        let Some(host) = self.partition_host.get() else {
            return;
        };
        let _swapping = self.rehosting.lock().await;
        let Some(topic) = self.topic_by_id(topic_id) else {
            return;
        };
        let Some(partition) = topic.partitions.get(p as usize) else {
            return;
        };
        let Some(log) = partition.group_log().filter(|log| log.is_replica()) else {
            return;
        };
        let placement = topic
            .placement
            .read()
            .get(p as usize)
            .cloned()
            .unwrap_or_default();
        if placement.members().len() < 2 {
            tracing::error!(
                topic_id,
                partition = p,
                "a read found this replica's copy of the partition damaged and no other node \
                 holds it: serving what is intact (reads of the damaged batches fail)"
            );
            return;
        }
        tracing::error!(
            topic_id,
            partition = p,
            "a read found this replica's copy of the partition damaged: its group starts again \
             here, checked"
        );
        log.close().await;
        let options = self.partition_options(&topic.record);
        let opened = host.open(
            topic_id,
            p,
            &placement,
            Arc::clone(partition.shared()),
            self.consumer_state(),
            &options,
        );
        let new = match opened {
            Ok(new) => new,
            Err(err) => {
                tracing::error!(cause = %err, topic_id, partition = p, "a damaged partition's group did not start again");
                return;
            }
        };
        partition.replace_group_log(Arc::clone(&new));
        // Deleted meanwhile: the delete closed the group log it found, not this one.
        let live = self
            .topic_by_id(topic_id)
            .is_some_and(|now| Arc::ptr_eq(&now, &topic));
        if !live {
            new.close().await;
        }
    }

    /// The engine's subscriptions, as a partition group applies consumer entries to them.
    pub(in crate::engine) fn consumer_state(&self) -> Arc<dyn ConsumerState> {
        Arc::new(Subscriptions(self.this.clone()))
    }

    /// Drops the raft data of a deleted topic's partition groups (closed before).
    pub(in crate::engine) async fn drop_partition_groups(&self, record: &TopicRecord) {
        let Some(host) = self.host_for(record) else {
            return;
        };
        for p in 0..record.settings.partitions {
            if let Err(err) = host.delete(record.id, p).await {
                tracing::warn!(cause = %err, topic_id = record.id, partition = p, "dropping a partition group's raft data");
            }
        }
    }
}

/// The engine's subscriptions as a partition group's [`ConsumerState`]: weak, since the engine
/// owns the groups.
#[derive(Debug)]
struct Subscriptions(Weak<Engine>);

impl ConsumerState for Subscriptions {
    fn applied(&self, entry: &PartitionEntry) {
        if let Some(engine) = self.0.upgrade() {
            engine.apply_partition_in_memory(entry);
        }
    }

    fn committed(&self, topic_id: u32, partition: u32, subscription: &str) -> Option<u64> {
        let engine = self.0.upgrade()?;
        let topic = engine.topic_by_id(topic_id)?;
        let sub = topic.subscriptions.read().get(subscription).cloned()?;
        Some(sub.committed_or_floor(partition))
    }
}
