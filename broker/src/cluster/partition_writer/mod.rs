//! The write side of a partition in cluster mode: the engine's [`GroupLog`] over the
//! partition's raft group (docs/clustering.md "The produce path").
//!
//! **Order.** Appends and trims queue on one channel per partition, as the single-node writer's
//! do, and one task takes them in order. On the group's leader it proposes each with
//! `client_write_ff` (queued in raft in that order, many in flight: the task does not wait for
//! a commit before proposing the next) and a waiter answers each once its entry is applied.
//! On a follower, or on a node that is not a replica, the task forwards everything queued as
//! one `Cluster.Propose` to the leader (one in flight per partition, so an idempotent
//! producer's batches keep their order), where [`PartitionHandle::propose`] proposes them the
//! same way and answers once all are applied there.
//!
//! **Consumer entries** (commits, queue seeks) queue on the same channel and go the same way.
//! Proposed on the leader, they are answered once applied there; forwarded from a follower,
//! the follower then waits until it applied them too ([`GroupLog::consume`]), so the node a
//! consumer committed through shows its commit; a node that is not a replica answers once the
//! leader applied them.
//!
//! **Time.** An append is stamped with the leader's clock: the node that proposes it, or, for a
//! forwarded one, the leader that receives it ([`PartitionHandle::propose`] stamps again). The
//! group's apply keeps append times monotonic per partition.
//!
//! **Acks.** The entry's [`PartitionReply`] becomes the [`AppendAck`]; a sequence refusal the
//! same `OUT_OF_ORDER_SEQUENCE` error as single-node mode. An ack means the entry is committed
//! (on a majority of the replicas) and applied on the leader. Reads on every replica come from
//! its applied state, so a reader never sees above the commit index.
//!
//! **Ordering change of `on_commit`.** The single-node writer runs an append's hook after its
//! write and before the high watermark moves; here it runs when the reply arrives, after the
//! entry was applied (on the leader; for a forwarded append, possibly before this node applied
//! it), so a consumer may see a message before its publish's flow event is recorded.
//!
//! **Failures.** No leader within [`PROPOSAL_TIMEOUT`], or a leader that cannot be reached in
//! that time, is `UNAVAILABLE` naming the group. A forward that failed is sent again (to the
//! leader known then) until that timeout: an idempotent producer's retry is answered as a
//! duplicate by the group; a non-idempotent append may then be stored twice.
//!
//! Here the engine's [`GroupWriter`]; in [`task`] the writer task that proposes or forwards
//! what it queued; in [`handle`] the group as the `Cluster` service sees it (forwarded
//! proposals, remote reads); in [`settle`] a replica move's steps; in [`route`] where the
//! group's replicas are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::{Instant as _, Raft, TokioInstant};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::forward::Forwarder;
use super::network::RPC_TIMEOUT;
use super::partition_group::{PartitionConfig, PartitionGroup};
use super::rpc::Rpc;
use super::wire::{GroupHandle, ReadAnswer, ReadAsk};
use super::{GroupStateMachine, decode};
use crate::clock::Clock;
use crate::engine::{
    AppendAck, AppendRequest, ForwardedPublish, GroupLog, PartitionEntry, PartitionShared,
    PartitionView, Placement, PublishAck, RemoteRead,
};
use crate::error::{Error, Result};

mod handle;
mod route;
mod settle;
mod task;

pub use handle::PartitionHandle;
pub use route::{Replicas, Route};
pub(super) use task::next_target;
use task::{Task, wait_for_leader};

/// Appends this process forwarded to another node's group leader (it did not lead the
/// group): `rapidmq_cluster_forwarded_appends_total`. Clients that route to leaders keep it
/// still (docs/clustering.md "Client routing").
static FORWARDED_APPENDS: AtomicU64 = AtomicU64::new(0);

/// How many appends this process forwarded to a group leader on another node.
pub fn forwarded_appends() -> u64 {
    FORWARDED_APPENDS.load(Ordering::Relaxed)
}

/// A partition group's raft.
pub type PartitionRaft = Raft<PartitionConfig, GroupStateMachine<PartitionConfig, PartitionGroup>>;

/// How long an append waits for its group to have a reachable leader and to commit it.
pub const PROPOSAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after a majority of the voters last acknowledged a heartbeat (timed from when it
/// was sent) a leader still delivers queue messages: well inside the election timeout's 1.5 s
/// minimum (`service::group_config`), before which no other replica can have been elected.
const LEADER_LEASE: Duration = Duration::from_secs(1);
/// Requests queued per partition before publishers wait (as the single-node writer).
const QUEUE_DEPTH: usize = 4096;
/// How long a forward that failed waits before it is sent again.
pub(super) const RETRY: Duration = Duration::from_millis(100);

/// What the engine queued.
pub(super) enum Op {
    Append(AppendRequest, oneshot::Sender<Result<AppendAck>>),
    Trim(u64, oneshot::Sender<Result<()>>),
    Consume(Vec<PartitionEntry>, oneshot::Sender<Result<u64>>),
    /// Answered once what was queued before it is proposed, or forwarded and answered
    /// ([`Forwarder`]).
    Barrier(oneshot::Sender<()>),
    Stop,
}

/// The engine's [`GroupLog`] of one partition.
pub struct GroupWriter {
    tx: mpsc::Sender<Op>,
    /// Ends a start still under way (a damaged replica waiting to be rebuilt) when the
    /// partition closes.
    closing: Arc<tokio::sync::Notify>,
    raft: Arc<OnceLock<PartitionRaft>>,
    route: Route,
    replica: bool,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Where publishes for the leader's msg-id check queue; started by the first.
    forwarder: OnceLock<Forwarder>,
    /// The node that last answered a remote read as the group's leader (0: none yet).
    read_from: AtomicU64,
}

impl GroupWriter {
    /// Starts the writer task of `route`'s partition. `raft` is set once the group runs on
    /// this node (never, on a node that is not a replica); `started` resolves then, and the
    /// task runs `stopped` after its last answer (shuts the group down).
    pub fn spawn(
        route: Route,
        shared: Arc<PartitionShared>,
        clock: Arc<dyn Clock>,
        raft: Arc<OnceLock<PartitionRaft>>,
        started: BoxFuture<'static, ()>,
        stopped: BoxFuture<'static, ()>,
    ) -> GroupWriter {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let replica = route.replicas.contains(route.me);
        let task = Task {
            route: route.clone(),
            shared,
            clock,
            raft: Arc::clone(&raft),
        };
        let closing = Arc::new(tokio::sync::Notify::new());
        let closed = Arc::clone(&closing);
        let handle = tokio::spawn(async move {
            tokio::select! {
                () = started => task.run(rx).await,
                () = closed.notified() => {}
            }
            stopped.await;
        });
        GroupWriter {
            tx,
            closing,
            raft,
            route,
            replica,
            task: Mutex::new(Some(handle)),
            forwarder: OnceLock::new(),
            read_from: AtomicU64::new(0),
        }
    }

    /// Whether this node leads the group now, as its raft knows it.
    fn leads(&self) -> bool {
        self.leader() == Some(self.route.me)
    }

    /// The partition as `node` has it after confirming it leads the group (`Cluster.ReadView`).
    async fn ask_view(
        &self,
        node: u64,
        subscription: &Option<String>,
    ) -> std::result::Result<PartitionView, String> {
        let request = (self.route.group, subscription);
        let answer: Vec<u8> = (self.route)
            .call(node, "view from", RPC_TIMEOUT, Rpc::ReadView, &request)
            .await?;
        decode(&answer).map_err(|err| format!("view from node {node}: {err}"))
    }

    /// Batches of the partition from `node`, if it leads the group (`Cluster.ReadBatches`).
    async fn ask_batches(
        &self,
        node: u64,
        ask: ReadAsk,
        wait: Duration,
    ) -> std::result::Result<ReadAnswer, String> {
        let request = (self.route.group, ask);
        let timeout = wait + RPC_TIMEOUT;
        let answer: Vec<u8> = (self.route)
            .call(node, "read from", timeout, Rpc::ReadBatches, &request)
            .await?;
        decode(&answer).map_err(|err| format!("read from node {node}: {err}"))
    }

    /// The group's read index from `leader`: asked of this node's raft when it leads, else of
    /// the leader in a `Cluster.ReadIndex`.
    async fn read_index(
        &self,
        raft: &PartitionRaft,
        leader: u64,
    ) -> std::result::Result<u64, String> {
        if leader == self.route.me {
            return GroupHandle::read_index(raft).await;
        }
        let group = self.route.group;
        (self.route)
            .call(
                leader,
                "read index from",
                RPC_TIMEOUT,
                Rpc::ReadIndex,
                &group,
            )
            .await
    }
}

pub(super) fn closing() -> Error {
    Error::unavailable("the partition is closing")
}

impl GroupLog for GroupWriter {
    fn publishes_via_leader(&self) -> bool {
        !self.leads() || self.forwarder.get().is_some_and(Forwarder::busy)
    }

    fn forward_publish(
        &self,
        publish: ForwardedPublish,
    ) -> BoxFuture<'_, Result<oneshot::Receiver<Result<PublishAck>>>> {
        Box::pin(async move {
            let forwarder = self.forwarder.get_or_init(|| {
                Forwarder::spawn(self.route.clone(), Arc::clone(&self.raft), self.tx.clone())
            });
            forwarder.queue(publish).await
        })
    }

    fn append(
        &self,
        request: AppendRequest,
    ) -> BoxFuture<'_, Result<oneshot::Receiver<Result<AppendAck>>>> {
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            self.tx
                .send(Op::Append(request, reply))
                .await
                .map_err(|_| closing())?;
            Ok(rx)
        })
    }

    fn truncate(&self, before: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if !self.leads() {
                return Ok(());
            }
            let (done, rx) = oneshot::channel();
            self.tx
                .send(Op::Trim(before, done))
                .await
                .map_err(|_| closing())?;
            rx.await.map_err(|_| closing())?
        })
    }

    fn consume(&self, entries: Vec<PartitionEntry>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let (done, rx) = oneshot::channel();
            self.tx
                .send(Op::Consume(entries, done))
                .await
                .map_err(|_| closing())?;
            let index = rx.await.map_err(|_| closing())??;
            let Some(raft) = self.raft.get() else {
                return Ok(());
            };
            raft.wait(Some(PROPOSAL_TIMEOUT))
                .applied_index_at_least(Some(index), "a forwarded consumer entry")
                .await
                .map(drop)
                .map_err(|err| {
                    Error::unavailable(format!(
                        "consumer entry {index} not applied here yet: {err}"
                    ))
                })
        })
    }

    fn read_barrier(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let Some(raft) = self.raft.get() else {
                return Ok(());
            };
            let deadline = Instant::now() + PROPOSAL_TIMEOUT;
            let mut last_error = String::from("no leader");
            while Instant::now() < deadline {
                let leader = raft.metrics().borrow_watched().current_leader;
                let Some(leader) = leader else {
                    wait_for_leader(raft, deadline).await;
                    continue;
                };
                match self.read_index(raft, leader).await {
                    Ok(index) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        return raft
                            .wait(Some(left))
                            .applied_index_at_least(Some(index), "a read index")
                            .await
                            .map(drop)
                            .map_err(|err| {
                                Error::unavailable(format!(
                                    "{}: read index {index} not applied here yet: {err}",
                                    self.route.name()
                                ))
                            });
                    }
                    Err(err) => last_error = err,
                }
                tokio::time::sleep(RETRY).await;
            }
            Err(Error::unavailable(format!(
                "{} cannot confirm what it committed within {:?}: {last_error}",
                self.route.name(),
                PROPOSAL_TIMEOUT
            )))
        })
    }

    fn remote_view(&self, subscription: Option<String>) -> BoxFuture<'_, Result<PartitionView>> {
        Box::pin(async move {
            let deadline = Instant::now() + PROPOSAL_TIMEOUT;
            let mut last_error = String::from("no replica");
            // The replicas in turn, the preferred leader first: the leader answers.
            for target in self.route.replicas.get().into_iter().cycle() {
                if Instant::now() >= deadline {
                    break;
                }
                match self.ask_view(target, &subscription).await {
                    Ok(view) => return Ok(view),
                    Err(err) => last_error = err,
                }
                tokio::time::sleep(RETRY).await;
            }
            Err(Error::unavailable(format!(
                "{}: no replica described the partition within {:?}: {last_error}",
                self.route.name(),
                PROPOSAL_TIMEOUT
            )))
        })
    }

    fn read_remote(
        &self,
        from: u64,
        max_bytes: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<RemoteRead>> {
        Box::pin(async move {
            let ask = ReadAsk {
                from,
                max_bytes: u32::try_from(max_bytes).unwrap_or(u32::MAX),
                wait_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
            };
            let replicas = self.route.replicas.get();
            let mut target = match self.read_from.load(Ordering::Relaxed) {
                0 => self.leader().or_else(|| replicas.first().copied()),
                known => Some(known),
            };
            let mut last_error = String::from("no replica");
            // Each replica once, and the leader one of them names.
            for attempt in 0..=replicas.len() {
                let node = target
                    .or_else(|| replicas.get(attempt % replicas.len().max(1)).copied())
                    .unwrap_or_default();
                target = None;
                match self.ask_batches(node, ask, wait).await {
                    Ok(ReadAnswer::Read(read)) => {
                        self.read_from.store(node, Ordering::Relaxed);
                        return Ok(read);
                    }
                    Ok(ReadAnswer::NotLeader(leader)) => {
                        last_error = format!("node {node} does not lead the group");
                        target = leader.filter(|&leader| leader != node);
                    }
                    Err(err) => last_error = err,
                }
            }
            self.read_from.store(0, Ordering::Relaxed);
            Err(Error::unavailable(format!(
                "{}: no replica answered a read as its leader: {last_error}",
                self.route.name()
            )))
        })
    }

    fn leads_applied(&self) -> bool {
        let Some(raft) = self.raft.get() else {
            return false;
        };
        let metrics = raft.metrics();
        let metrics = metrics.borrow_watched();
        let me = Some(self.route.me);
        metrics.current_leader == me
            && metrics.last_applied.as_ref().is_some_and(|applied| {
                let by = applied.committed_leader_id();
                by.term == metrics.current_term && Some(by.node_id) == me
            })
    }

    fn holds_lease(&self) -> bool {
        let Some(raft) = self.raft.get() else {
            return false;
        };
        let metrics = raft.metrics();
        let metrics = metrics.borrow_watched();
        if metrics.current_leader != Some(self.route.me) {
            return false;
        }
        if metrics.membership_config.membership().voter_ids().count() == 1 {
            return true;
        }
        metrics
            .last_quorum_acked
            .as_ref()
            .is_some_and(|acked| TokioInstant::now() - **acked < LEADER_LEASE)
    }

    fn leader(&self) -> Option<u64> {
        let raft = self.raft.get()?;
        raft.metrics().borrow_watched().current_leader
    }

    fn term(&self) -> u64 {
        self.raft
            .get()
            .map_or(0, |raft| raft.metrics().borrow_watched().current_term)
    }

    fn is_replica(&self) -> bool {
        self.replica
    }

    fn preferred_leader(&self) -> Option<u64> {
        self.route.replicas.first()
    }

    fn set_replicas(&self, placement: &Placement) {
        self.route.replicas.set(&placement.members());
    }

    fn settle<'a>(&'a self, replicas: &'a [u64], from: &'a [u64]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let Some(raft) = self.raft.get() else {
                return Ok(false);
            };
            settle::settle(raft, &self.route, replicas, from)
                .await
                .map_err(|err| Error::unavailable(format!("{}: {err}", self.route.name())))
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // A start under way ends here; a running task stops after what is queued (it
            // dropped its queue already if the start ended, and the send fails at once).
            self.closing.notify_one();
            let _ = self.tx.send(Op::Stop).await;
            let handle = self.task.lock().take();
            if let Some(handle) = handle {
                let _ = handle.await;
            }
        })
    }
}
