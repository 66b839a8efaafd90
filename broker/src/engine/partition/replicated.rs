//! A partition whose log is a raft group (cluster mode, docs/clustering.md).
//!
//! The engine keeps one [`Partition`](super::Partition) handle per partition, whatever backs
//! it: the single-node writer (`writer.rs`), or, for a partition placed on the cluster's nodes,
//! a [`GroupLog`] that the cluster layer implements (`cluster/partitions.rs`): appends and
//! trims become entries of the partition's group, proposed on its leader (or forwarded to it),
//! and applied on every replica into the same [`PartitionShared`] the readers use. So
//! publishing, fetching, sessions and queues do not know which one they talk to.
//!
//! The engine opens the groups through the node's [`PartitionHost`], set once by cluster mode
//! ([`Engine::set_partition_host`](crate::engine::Engine::set_partition_host)).
//!
//! Consumer state goes the same way: a replicated partition's commits and queue seeks are
//! proposed to its group ([`GroupLog::consume`]), and every replica's apply writes them and
//! hands them to the engine's subscriptions through [`ConsumerState`].

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::{
    AppendAck, AppendRequest, Backend, Partition, PartitionEntry, PartitionOptions, PartitionShared,
};
use crate::engine::{ForwardedPublish, PublishAck};
use crate::error::{Error, Result};
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1::LeaderHint;

impl Partition {
    /// A partition whose writes go to its raft group, `log`, which applies into `shared`.
    pub fn in_group(shared: Arc<PartitionShared>, log: Arc<dyn GroupLog>) -> Partition {
        Partition {
            shared,
            backend: Backend::Group(parking_lot::RwLock::new(log)),
        }
    }

    /// Whether this node may write on its own to the partition now (retention, delayed
    /// messages): always for the single-node writer; for a group, only on its leader once it
    /// has applied every entry of earlier terms. A new leader so sees the releases and trims
    /// its predecessors committed (their schedule keys gone) before it releases anything:
    /// no delayed message is released twice across a failover.
    pub fn writes_here(&self) -> bool {
        match &self.backend {
            Backend::Writer { .. } => true,
            Backend::Group(log) => {
                let log = log.read();
                log.leads_applied()
            }
        }
    }

    /// Whether this node hands out the partition's queue messages now: where it writes on its
    /// own ([`Partition::writes_here`]), so on a group's leader once it applied every entry of
    /// earlier terms: its queue ack state is then the group's (the last one proposed by the
    /// leader before it). And only while a majority of the replicas acknowledged it as leader
    /// within the lease ([`GroupLog::holds_lease`]): a leader cut off from the others (or
    /// restarted, believing it still leads) would deliver from an ack state that a new leader
    /// elsewhere has moved on from, so no other node delivers the partition at the same time.
    pub fn delivers_queue(&self) -> bool {
        self.leads_with_lease()
    }

    /// Whether this node leads the partition's group, has applied an entry of its own term, and
    /// holds its lease ([`GroupLog::holds_lease`]): no other node can believe the same. Always
    /// for the single-node writer.
    pub fn leads_with_lease(&self) -> bool {
        match &self.backend {
            Backend::Writer { .. } => true,
            Backend::Group(log) => {
                let log = log.read();
                log.leads_applied() && log.holds_lease()
            }
        }
    }

    /// Cluster mode: the partition group's leader as this node knows it.
    pub fn leader(&self) -> Option<u64> {
        match &self.backend {
            Backend::Writer { .. } => None,
            Backend::Group(log) => {
                let log = log.read();
                log.leader()
            }
        }
    }

    /// Cluster mode: the partition group's raft term as this node knows it; 0 otherwise.
    pub fn term(&self) -> u64 {
        match &self.backend {
            Backend::Writer { .. } => 0,
            Backend::Group(log) => {
                let log = log.read();
                log.term()
            }
        }
    }

    fn preferred_leader(&self) -> Option<u64> {
        match &self.backend {
            Backend::Writer { .. } => None,
            Backend::Group(log) => {
                let log = log.read();
                log.preferred_leader()
            }
        }
    }

    /// Whether this node holds the partition's data: always for the single-node writer.
    pub fn is_replica(&self) -> bool {
        match &self.backend {
            Backend::Writer { .. } => true,
            Backend::Group(log) => {
                let log = log.read();
                log.is_replica()
            }
        }
    }

    /// Cluster mode, on a replica that knows the group's leader and is not it (node `me`): a
    /// [`LeaderHint`] naming that leader (the transport adds its address), for the ack of an
    /// append this node forwarded.
    pub fn leader_elsewhere(&self, topic: &str, me: u64) -> Option<LeaderHint> {
        let leader = self.leader().filter(|leader| *leader != me)?;
        Some(LeaderHint {
            topic: topic.to_string(),
            partition: self.shared.index,
            term: self.term(),
            leader,
            grpc_addr: String::new(),
        })
    }

    /// `err` with a [`LeaderHint`] when it is an `UNAVAILABLE` of a partition backed by a raft
    /// group: the leader and term this node knows (the transport adds the leader's address).
    pub fn hinted(&self, err: Error, topic: &str) -> Error {
        if err.code() != ErrorCode::Unavailable || !self.replicated() || err.leader_hint().is_some()
        {
            return err;
        }
        let hint = LeaderHint {
            topic: topic.to_string(),
            partition: self.shared.index,
            term: self.term(),
            leader: self
                .leader()
                .or_else(|| self.preferred_leader())
                .unwrap_or(0),
            grpc_addr: String::new(),
        };
        err.with_leader_hint(hint)
    }

    /// Cluster mode: resolves once this node applied everything the partition's group
    /// committed before the call ([`GroupLog::read_barrier`]); at once for the single-node
    /// writer, which applies what it commits.
    pub async fn read_barrier(&self) -> Result<()> {
        match &self.backend {
            Backend::Writer { .. } => Ok(()),
            Backend::Group(log) => {
                let log = Arc::clone(&log.read());
                log.read_barrier().await
            }
        }
    }

    /// Cluster mode, on a node that is not one of the partition's replicas: the partition as
    /// its group has it ([`GroupLog::remote_view`]). `None` where this node holds the partition
    /// (the single-node writer, a replica): its own state is the one to read.
    pub async fn remote_view(&self, subscription: Option<&str>) -> Option<Result<PartitionView>> {
        match &self.backend {
            Backend::Group(log) => {
                let log = Arc::clone(&log.read());
                if log.is_replica() {
                    return None;
                }
                Some(log.remote_view(subscription.map(str::to_string)).await)
            }
            _ => None,
        }
    }

    /// Cluster mode: the partition's group log now.
    pub(in crate::engine) fn group_log(&self) -> Option<Arc<dyn GroupLog>> {
        match &self.backend {
            Backend::Writer { .. } => None,
            Backend::Group(log) => Some(Arc::clone(&log.read())),
        }
    }

    /// Cluster mode: makes `log` the partition's group log; the one it replaces, which the
    /// caller closes. Wakes the partition's readers, so a stream session reading this node's
    /// copy looks again at where to read it (the node may no longer hold it).
    pub(in crate::engine) fn replace_group_log(
        &self,
        log: Arc<dyn GroupLog>,
    ) -> Option<Arc<dyn GroupLog>> {
        match &self.backend {
            Backend::Writer { .. } => None,
            Backend::Group(current) => {
                let replaced = std::mem::replace(&mut *current.write(), log);
                self.shared.wake_readers();
                Some(replaced)
            }
        }
    }

    /// Whether the partition is backed by a raft group.
    pub fn replicated(&self) -> bool {
        matches!(self.backend, Backend::Group(_))
    }

    /// Whether a publish that needs the leader's msg-id check goes to the leader as it was sent
    /// ([`GroupLog::publishes_via_leader`]): never for the single-node writer.
    pub fn publishes_via_leader(&self) -> bool {
        match &self.backend {
            Backend::Writer { .. } => false,
            Backend::Group(log) => log.read().publishes_via_leader(),
        }
    }

    /// Queues `publish` for the partition group's leader ([`GroupLog::forward_publish`]).
    pub async fn forward_publish(
        &self,
        publish: ForwardedPublish,
    ) -> Result<oneshot::Receiver<Result<PublishAck>>> {
        match &self.backend {
            Backend::Writer { .. } => Err(Error::internal(
                "a single-node partition has no leader to forward to",
            )),
            Backend::Group(log) => {
                let log = Arc::clone(&log.read());
                log.forward_publish(publish).await
            }
        }
    }

    /// Cluster mode, on a node that holds no replica of the partition: its batches from the
    /// group's leader ([`GroupLog::read_remote`]). `None` where this node holds the partition.
    pub async fn read_remote(
        &self,
        from: u64,
        max_bytes: usize,
        wait: std::time::Duration,
    ) -> Option<Result<RemoteRead>> {
        let log = self.group_log()?;
        if log.is_replica() {
            return None;
        }
        Some(log.read_remote(from, max_bytes, wait).await)
    }

    /// Cluster mode: proposes consumer entries of this partition to its group
    /// ([`GroupLog::consume`]). `None` for the single-node writer: the engine writes those
    /// itself.
    pub fn consume(&self, entries: Vec<PartitionEntry>) -> Option<BoxFuture<'_, Result<()>>> {
        match &self.backend {
            Backend::Writer { .. } => None,
            Backend::Group(log) => {
                let log = Arc::clone(&log.read());
                Some(Box::pin(async move { log.consume(entries).await }))
            }
        }
    }
}

/// The write side of a partition backed by its raft group.
pub trait GroupLog: Send + Sync + 'static {
    /// Queues an append (in call order: an idempotent producer's batches stay in order); the
    /// receiver resolves once the entry is applied on the node that proposed it, or failed.
    fn append(
        &self,
        request: AppendRequest,
    ) -> BoxFuture<'_, Result<oneshot::Receiver<Result<AppendAck>>>>;

    /// Whether this node hands publishes that need the leader's msg-id check to the group's
    /// leader as they were sent ([`GroupLog::forward_publish`]): where it does not lead the
    /// group, and while publishes it handed on are unanswered, so that later ones do not
    /// overtake them.
    fn publishes_via_leader(&self) -> bool;

    /// Queues `publish` for the group's leader (in call order, after the appends queued
    /// before it), which publishes it as its producer sent it
    /// ([`Engine::begin_forwarded_publish`](crate::engine::Engine::begin_forwarded_publish));
    /// this node does, if it leads by then. The receiver resolves with the leader's answer
    /// (without a leader hint).
    fn forward_publish(
        &self,
        publish: ForwardedPublish,
    ) -> BoxFuture<'_, Result<oneshot::Receiver<Result<PublishAck>>>>;

    /// Proposes consumer entries of this partition (commits, queue seeks), in call order with
    /// the appends and trims. Resolves once they are applied on this node, or, on a node that
    /// is not a replica (which applies nothing of the group), once applied on the leader.
    fn consume(&self, entries: Vec<PartitionEntry>) -> BoxFuture<'_, Result<()>>;

    /// Resolves once this node applied everything the group committed before the call: the
    /// group's read index, asked of its leader (a quorum confirms the leadership), is applied
    /// here. A replica then answers reads of consumer state (cursors, queue floors) as the
    /// leader would: a follower learns of a commit only with the leader's next message. On a
    /// node that is not a replica, at once (it holds none of the group's state). `UNAVAILABLE`
    /// when the group has no leader, or this node cannot catch up, in time.
    fn read_barrier(&self) -> BoxFuture<'_, Result<()>>;

    /// The partition as its group has it, for a node that is not a replica (which holds none
    /// of its state): asked of the group's leader, which first confirms what the group
    /// committed (a raft read index). With `subscription`, that subscription's committed offset
    /// (a queue's floor) too. `UNAVAILABLE` when no replica answers in time.
    fn remote_view(&self, subscription: Option<String>) -> BoxFuture<'_, Result<PartitionView>>;

    /// Committed batches of the partition from `from` on (up to about `max_bytes`; at least
    /// one), as its group's leader has them, for a node that is not a replica: waits up to
    /// `wait` on the leader for one when there is none yet (an empty read then).
    /// `UNAVAILABLE` when no replica answers as leader.
    fn read_remote(
        &self,
        from: u64,
        max_bytes: usize,
        wait: std::time::Duration,
    ) -> BoxFuture<'_, Result<RemoteRead>>;

    /// Proposes a trim (retention) with this node's cutoff, if this node leads the group; a
    /// follower does nothing (followers never truncate on their own).
    fn truncate(&self, before: u64) -> BoxFuture<'_, Result<()>>;

    /// Whether this node leads the group and has applied an entry of its own term, and so
    /// every entry of the terms before: what it applied is all the group has committed.
    fn leads_applied(&self) -> bool;

    /// Whether a majority of the group's voters acknowledged this node as leader lately enough
    /// that no other leader can have been elected since: within a lease shorter than the
    /// election timeout. Always on a group of one voter; never on a node that does not lead.
    fn holds_lease(&self) -> bool;

    /// The group's leader as this node knows it (none while an election runs, or on a node
    /// that is not a replica).
    fn leader(&self) -> Option<u64>;

    /// The group's current raft term as this node knows it (0 on a node that is not a
    /// replica): a client keeps the leader of the newest term it heard of.
    fn term(&self) -> u64;

    /// Whether this node is one of the group's replicas (holds the partition's data).
    fn is_replica(&self) -> bool;

    /// The group's preferred leader (its first replica): the best guess of a node that is not
    /// a replica and so does not follow the group's elections.
    fn preferred_leader(&self) -> Option<u64>;

    /// The partition's placement changed (a replica move), this node's part in its group did
    /// not: where appends are forwarded, and the preferred leader.
    fn set_replicas(&self, placement: &crate::engine::Placement);

    /// On the group's leader, one step of taking the group's voters to `replicas`: add the
    /// missing ones as learners; once caught up, make them voters; hand leadership to one of
    /// them if this node is not (one that was a replica before the move, `from`, if one is
    /// ready); remove the other voters and learners. `Ok(true)` once the group's committed
    /// voters are `replicas` and it has no other member; `Ok(false)` while steps remain, or
    /// where this node does not lead the group.
    fn settle<'a>(&'a self, replicas: &'a [u64], from: &'a [u64]) -> BoxFuture<'a, Result<bool>>;

    /// Answers what is queued, then stops the group on this node (its data stays).
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// Batches of a partition read from its group's leader ([`GroupLog::read_remote`]), with the
/// leader's high watermark and log start after the read.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RemoteRead {
    pub batches: Vec<crate::engine::batch::StoredBatch>,
    pub high_watermark: u64,
    pub log_start: u64,
}

/// Where a partition group's replicas make the in-memory effects of the consumer entries they
/// applied (their writes are the entries' own [`PartitionEntry::write_to`]): the engine's
/// subscriptions, with the code single-node mode runs after its write.
pub trait ConsumerState: std::fmt::Debug + Send + Sync + 'static {
    /// The in-memory effects of `entry`, written already.
    fn applied(&self, entry: &PartitionEntry);

    /// The committed offset (for a queue subscription, its floor) of `subscription` on
    /// partition `partition` of topic `topic_id`, as this node has it; `None` when it knows no
    /// such subscription.
    fn committed(&self, topic_id: u32, partition: u32, subscription: &str) -> Option<u64>;
}

/// A partition as its group's leader has it ([`GroupLog::remote_view`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionView {
    pub high_watermark: u64,
    pub log_start: u64,
    pub bytes: u64,
    /// The asked subscription's committed offset (a queue's floor).
    pub committed: Option<u64>,
}

impl PartitionView {
    /// `shared`'s partition as this node has it, with `subscription`'s offset from `consumers`.
    pub fn of(
        shared: &PartitionShared,
        consumers: &dyn ConsumerState,
        subscription: Option<&str>,
    ) -> PartitionView {
        PartitionView {
            high_watermark: shared.high_watermark(),
            log_start: shared.log_start(),
            bytes: shared.bytes(),
            committed: subscription
                .and_then(|name| consumers.committed(shared.topic_id, shared.index, name)),
        }
    }
}

/// Opens and drops this node's partition groups.
pub trait PartitionHost: Send + Sync + 'static {
    /// This node's id.
    fn node_id(&self) -> u64;

    /// Starts the group of partition `index` of topic `topic_id`, placed as `placement`,
    /// applying into `shared` and `consumers` where this node runs the group
    /// ([`Placement::hosts`](crate::engine::Placement::hosts)); elsewhere the log only forwards
    /// appends to the replicas. Blocks on storage; the group itself starts in the background.
    fn open(
        &self,
        topic_id: u32,
        index: u32,
        placement: &crate::engine::Placement,
        shared: Arc<PartitionShared>,
        consumers: Arc<dyn ConsumerState>,
        options: &PartitionOptions,
    ) -> Result<Arc<dyn GroupLog>>;

    /// Drops the raft log and state of a deleted partition's group (closed before).
    fn delete(&self, topic_id: u32, index: u32) -> BoxFuture<'_, Result<()>>;

    /// Deletes this node's copy of partition `index` of topic `topic_id` and of its group's
    /// raft log and records but its vote (the group stopped here: its replicas moved off this
    /// node). `shared` shows an empty partition afterwards.
    fn retire<'a>(
        &'a self,
        topic_id: u32,
        index: u32,
        shared: &'a Arc<PartitionShared>,
    ) -> BoxFuture<'a, Result<()>>;
}
