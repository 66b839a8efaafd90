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

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::ClientWriteError;
use openraft::impls::ProgressResponder;
use openraft::raft::ClientWriteResponse;
use openraft::{ChangeMembers, Instant as _, Raft, ReadPolicy, TokioInstant};
use parking_lot::Mutex;
use rapidmq_proto::ErrorCode;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::forward::Forwarder;
use super::keys::GroupId;
use super::leaders::standing;
use super::network::RPC_TIMEOUT;
use super::partition_group::PartitionGroup;
use super::partition_group::{AppendCommand, PartitionCommand, PartitionConfig, PartitionReply};
use super::partitions::Addresses;
use super::rebuild;
use super::rpc::{self, Rpc};
use super::service::Publisher;
use super::wire::{GroupHandle, ReadAnswer, ReadAsk};
use super::{GroupStateMachine, NodeTls, decode, encode};
use crate::clock::Clock;
use crate::engine::{
    AppendAck, AppendRequest, CommitHook, ConsumerState, ForwardedPublish, GroupLog,
    PartitionEntry, PartitionShared, PartitionView, Placement, PublishAck, RemoteRead,
};
use crate::error::{Error, Result};

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
/// Entries proposed or forwarded together at most.
const MAX_BATCH: usize = 256;
/// Requests queued per partition before publishers wait (as the single-node writer).
const QUEUE_DEPTH: usize = 4096;
/// Batches a remote read answers at most, and the longest it waits for one.
const READ_BATCHES: usize = 64;
const MAX_READ_WAIT: Duration = Duration::from_secs(5);
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

/// Who waits for an entry's reply.
enum Waiter {
    Append(Option<CommitHook>, oneshot::Sender<Result<AppendAck>>),
    Trim(oneshot::Sender<Result<()>>),
    /// Answered with the entry's raft index.
    Consume(oneshot::Sender<Result<u64>>),
}

/// Where a group and its writer live: this node's id, the replicas and how to reach them.
#[derive(Clone)]
pub struct Route {
    pub me: u64,
    pub group: GroupId,
    pub topic_id: u32,
    pub partition: u32,
    /// The group's replicas, preferred leader first (they change with a replica move).
    pub replicas: Replicas,
    /// Where each node's cluster listener is.
    pub addresses: Arc<Addresses>,
    pub tls: NodeTls,
    /// The engine, for the publishes this node forwards and then leads itself ([`Forwarder`]).
    pub publisher: Publisher,
}

/// A partition's replicas, preferred leader first, shared by what routes to them.
#[derive(Clone, Default)]
pub struct Replicas(Arc<parking_lot::RwLock<Vec<u64>>>);

impl Replicas {
    pub fn new(replicas: Vec<u64>) -> Replicas {
        Replicas(Arc::new(parking_lot::RwLock::new(replicas)))
    }

    pub fn get(&self) -> Vec<u64> {
        self.0.read().clone()
    }

    pub fn set(&self, replicas: &[u64]) {
        *self.0.write() = replicas.to_vec();
    }

    /// The preferred leader.
    pub fn first(&self) -> Option<u64> {
        self.0.read().first().copied()
    }

    pub fn contains(&self, id: u64) -> bool {
        self.0.read().contains(&id)
    }
}

impl Route {
    pub(super) fn name(&self) -> String {
        format!(
            "partition group {} (topic id {} partition {})",
            self.group, self.topic_id, self.partition
        )
    }

    /// Calls `rpc` on `node` within `timeout` with `request`: the node's answer, itself a
    /// `Result`. Either error names what was asked of which node (`"read from"`: "read from
    /// node 2: ...").
    pub(super) async fn call<T: serde::de::DeserializeOwned>(
        &self,
        node: u64,
        what: &str,
        timeout: Duration,
        rpc: Rpc,
        request: &impl serde::Serialize,
    ) -> std::result::Result<T, String> {
        let text = |err: &dyn std::fmt::Display| format!("{what} node {node}: {err}");
        let addr = self
            .addresses
            .get(node)
            .ok_or_else(|| format!("node {node} has no known cluster address"))?;
        let answer: std::result::Result<T, String> =
            rpc::call(&self.tls, &addr, timeout, rpc, request)
                .await
                .map_err(|err| text(&err))?;
        answer.map_err(|err| text(&err))
    }
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
        self.route
            .replicas
            .set(&super::partitions::routed(placement));
    }

    fn settle<'a>(&'a self, replicas: &'a [u64]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let Some(raft) = self.raft.get() else {
                return Ok(false);
            };
            settle(raft, &self.route, replicas)
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

/// The writer task's state.
struct Task {
    route: Route,
    shared: Arc<PartitionShared>,
    clock: Arc<dyn Clock>,
    raft: Arc<OnceLock<PartitionRaft>>,
}

impl Task {
    async fn run(&self, mut rx: mpsc::Receiver<Op>) {
        let mut stop = false;
        while !stop {
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut ops = vec![first];
            while ops.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => ops.push(op),
                    Err(_) => break,
                }
            }
            let mut pending = Vec::with_capacity(ops.len());
            for op in ops {
                match op {
                    Op::Append(request, reply) => {
                        let (command, hook) = append_command(request, self.clock.now_ms());
                        pending.push((command, Waiter::Append(hook, reply)));
                    }
                    Op::Trim(before, done) => {
                        pending.push((PartitionCommand::Trim { before }, Waiter::Trim(done)));
                    }
                    Op::Consume(entries, done) => {
                        let command = PartitionCommand::Consumer(entries);
                        pending.push((command, Waiter::Consume(done)));
                    }
                    Op::Barrier(done) => {
                        if !pending.is_empty() {
                            self.submit(std::mem::take(&mut pending)).await;
                        }
                        let _ = done.send(());
                    }
                    Op::Stop => stop = true,
                }
            }
            if !pending.is_empty() {
                self.submit(pending).await;
            }
        }
    }

    /// Proposes `pending` on this node if it leads the group, else forwards it to the leader,
    /// until every entry is answered or [`PROPOSAL_TIMEOUT`] passed.
    async fn submit(&self, mut pending: Vec<(PartitionCommand, Waiter)>) {
        let deadline = Instant::now() + PROPOSAL_TIMEOUT;
        let mut tried = 0usize;
        let mut last_error = String::from("no leader");
        while !pending.is_empty() {
            if Instant::now() >= deadline {
                let err = Error::unavailable(format!(
                    "{} has no reachable leader after {:?}: {last_error}",
                    self.route.name(),
                    PROPOSAL_TIMEOUT
                ));
                for (_, waiter) in pending {
                    waiter.fail(err.clone());
                }
                return;
            }
            let Some(target) = next_target(self.raft.get(), &self.route, tried, deadline).await
            else {
                continue;
            };
            tried += 1;
            if target == self.route.me
                && let Some(raft) = self.raft.get()
            {
                let (commands, waiters): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
                let replies = propose_in_order(raft, commands).await;
                let shared = Arc::clone(&self.shared);
                let name = self.route.name();
                // Answered as entries apply, while the task takes the next ones, and by the
                // deadline at the latest: a leader that lost every other replica commits
                // nothing and stays leader (openraft does not step it down). The entry may
                // still commit once one is back, so the answer is the retryable UNAVAILABLE; an
                // idempotent producer's retry is then answered with the stored batch.
                tokio::spawn(async move {
                    for (reply, waiter) in replies.into_iter().zip(waiters) {
                        let reply = match reply {
                            Ok(rx) => match tokio::time::timeout_at(deadline, rx).await {
                                Ok(answer) => answer
                                    .map_err(|_| "the group stopped".to_string())
                                    .and_then(|written| written),
                                Err(_) => Err(format!(
                                    "not committed within {PROPOSAL_TIMEOUT:?}: this node leads \
                                     the group but too few of its replicas answer"
                                )),
                            },
                            Err(err) => Err(err),
                        };
                        waiter.answer(&shared, reply, &name);
                    }
                });
                return;
            }
            let (leader_only, forwarded): (Vec<_>, Vec<_>) = pending
                .into_iter()
                .partition(|(command, _)| command.leader_only());
            pending = forwarded;
            for (_, waiter) in leader_only {
                waiter.fail(Error::unavailable(format!(
                    "{}: this node no longer leads the group (queue ack state and releases of delayed messages are proposed by the leader only)",
                    self.route.name()
                )));
            }
            if pending.is_empty() {
                return;
            }
            match self.forward(target, &pending).await {
                Ok(answers) => {
                    let mut retry = Vec::new();
                    for ((command, waiter), answer) in pending.into_iter().zip(answers) {
                        match answer {
                            Ok(reply) => waiter.answer(&self.shared, Ok(reply), &self.route.name()),
                            Err(err) => {
                                last_error = err;
                                retry.push((command, waiter));
                            }
                        }
                    }
                    pending = retry;
                }
                Err(err) => last_error = err,
            }
            if !pending.is_empty() {
                tokio::time::sleep(RETRY).await;
            }
        }
    }

    /// Sends `pending`'s commands to `leader` in one `Cluster.Propose`; its answer per command.
    async fn forward(
        &self,
        leader: u64,
        pending: &[(PartitionCommand, Waiter)],
    ) -> std::result::Result<Vec<std::result::Result<PartitionReply, String>>, String> {
        let commands: Vec<&PartitionCommand> = pending.iter().map(|(c, _)| c).collect();
        let text = |err: &dyn std::fmt::Display| format!("forwarding to node {leader}: {err}");
        let inner = encode(&commands).map_err(|err| text(&err))?;
        let request = (self.route.group, serde_bytes::Bytes::new(&inner));
        let answer: serde_bytes::ByteBuf = (self.route)
            .call(leader, "forwarding to", RPC_TIMEOUT, Rpc::Propose, &request)
            .await?;
        let answers: Vec<std::result::Result<PartitionReply, String>> =
            decode(&answer).map_err(|err| text(&err))?;
        if answers.len() != pending.len() {
            return Err(format!(
                "node {leader} answered {} of {} entries",
                answers.len(),
                pending.len()
            ));
        }
        let appends = commands
            .iter()
            .filter(|c| matches!(c, PartitionCommand::Append(_)))
            .count();
        FORWARDED_APPENDS.fetch_add(appends as u64, Ordering::Relaxed);
        Ok(answers)
    }
}

/// Where the `tried`-th attempt to reach a group's leader goes: the leader this node's `raft`
/// knows, or, on a node that is not a replica (no `raft`), the replicas in turn, the preferred
/// leader first. While an election runs, `None` after waiting until `raft` knows a leader, its
/// metrics change, or `deadline`: ask again.
pub(super) async fn next_target(
    raft: Option<&PartitionRaft>,
    route: &Route,
    tried: usize,
    deadline: Instant,
) -> Option<u64> {
    match raft {
        Some(raft) => {
            let leader = raft.metrics().borrow_watched().current_leader;
            if leader.is_none() {
                wait_for_leader(raft, deadline).await;
            }
            leader
        }
        None => {
            let replicas = route.replicas.get();
            Some(
                replicas
                    .get(tried % replicas.len().max(1))
                    .copied()
                    .unwrap_or_default(),
            )
        }
    }
}

/// Waits until `raft` knows a leader, its metrics change, or `deadline`.
/// One step of taking `raft`'s group to the voters `replicas`, where this node leads it
/// ([`GroupLog::settle`]): whether the group got there.
async fn settle(
    raft: &PartitionRaft,
    route: &Route,
    replicas: &[u64],
) -> std::result::Result<bool, String> {
    let me = route.me;
    let metrics = raft.metrics().borrow_watched().clone();
    if metrics.state != openraft::ServerState::Leader || metrics.current_leader != Some(me) {
        return Ok(false);
    }
    let membership = metrics.membership_config.membership();
    if membership.get_joint_config().len() > 1 {
        // A change under way: the leader that started it finishes it, or, if it lost the
        // leadership halfway, the leader after it (`LeaderBalance::finish_joint_changes`).
        return Ok(false);
    }
    let wanted: BTreeSet<u64> = replicas.iter().copied().collect();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let learners: BTreeSet<u64> = membership.learner_ids().collect();
    let text = |err: &dyn std::fmt::Display| err.to_string();
    let joining: BTreeSet<u64> = wanted.difference(&voters).copied().collect();
    for &id in joining.difference(&learners) {
        let addr = route
            .addresses
            .get(id)
            .ok_or_else(|| format!("node {id} has no known cluster address"))?;
        raft.add_learner(id, openraft::BasicNode::new(addr), false)
            .await
            .map_err(|err| text(&err))?;
        tracing::info!(
            group = route.group,
            node = id,
            "a new replica joins as a learner"
        );
    }
    if !joining.is_empty() {
        if !joining.iter().all(|&id| standing(raft, me, id).caught_up()) {
            return Ok(false);
        }
        raft.change_membership(ChangeMembers::AddVoterIds(joining.clone()), false)
            .await
            .map_err(|err| text(&err))?;
        tracing::info!(group = route.group, nodes = ?joining, "new replicas caught up: voters now");
        return Ok(false);
    }
    if !wanted.contains(&me) {
        // Leadership first goes to a new replica: a leader does not remove itself.
        let to = replicas
            .iter()
            .copied()
            .find(|&id| standing(raft, me, id).ready(RPC_TIMEOUT));
        if let Some(to) = to {
            raft.trigger()
                .transfer_leader(to)
                .await
                .map_err(|err| text(&err))?;
            tracing::info!(
                group = route.group,
                to,
                "handing leadership to a new replica"
            );
        }
        return Ok(false);
    }
    let leaving: BTreeSet<u64> = voters.difference(&wanted).copied().collect();
    if !leaving.is_empty() {
        raft.change_membership(ChangeMembers::RemoveVoters(leaving.clone()), false)
            .await
            .map_err(|err| text(&err))?;
        tracing::info!(group = route.group, nodes = ?leaving, "old replicas left the group");
        return Ok(false);
    }
    let extra: BTreeSet<u64> = learners.difference(&wanted).copied().collect();
    if !extra.is_empty() {
        raft.change_membership(ChangeMembers::RemoveNodes(extra), false)
            .await
            .map_err(|err| text(&err))?;
        return Ok(false);
    }
    let at = metrics
        .membership_config
        .log_id()
        .as_ref()
        .map(|id| id.index);
    let applied = metrics.last_applied.as_ref().map(|id| id.index);
    Ok(at <= applied)
}

async fn wait_for_leader(raft: &PartitionRaft, deadline: Instant) {
    let mut metrics = raft.metrics();
    let _ = tokio::time::timeout_at(deadline, metrics.changed()).await;
}

type Written = std::result::Result<PartitionReply, String>;

/// Proposes `commands` on `raft` in order, each with its own responder, without waiting for
/// any to commit; the receivers of their replies, in the same order.
async fn propose_in_order(
    raft: &PartitionRaft,
    commands: Vec<PartitionCommand>,
) -> Vec<std::result::Result<oneshot::Receiver<Written>, String>> {
    let mut replies = Vec::with_capacity(commands.len());
    for command in commands {
        let (responder, rx) = ProgressResponder::<PartitionConfig, _>::complete_only();
        if let Err(err) = raft.client_write_ff(command, Some(responder)).await {
            replies.push(Err(err.to_string()));
            continue;
        }
        let (tx, reply) = oneshot::channel();
        tokio::spawn(async move {
            let written = match rx.await {
                Ok(written) => written_reply(written),
                Err(_) => Err("the group stopped".to_string()),
            };
            let _ = tx.send(written);
        });
        replies.push(Ok(reply));
    }
    replies
}

fn written_reply(
    written: std::result::Result<
        ClientWriteResponse<PartitionConfig>,
        ClientWriteError<PartitionConfig>,
    >,
) -> Written {
    match written {
        Ok(response) => Ok(response.data),
        Err(ClientWriteError::ForwardToLeader(forward)) => Err(format!(
            "not the leader any more (now node {:?})",
            forward.leader_id
        )),
        Err(err) => Err(err.to_string()),
    }
}

impl Waiter {
    fn fail(self, err: Error) {
        match self {
            Waiter::Append(_, reply) => {
                let _ = reply.send(Err(err));
            }
            Waiter::Trim(done) => {
                let _ = done.send(Err(err));
            }
            Waiter::Consume(done) => {
                let _ = done.send(Err(err));
            }
        }
    }

    /// Answers with the entry's reply: the ack (after the hook), the sequence refusal, or the
    /// group's failure as `UNAVAILABLE`.
    fn answer(self, shared: &PartitionShared, written: Written, name: &str) {
        let reply = match written {
            Ok(reply) => reply,
            Err(err) => return self.fail(Error::unavailable(format!("{name}: {err}"))),
        };
        match (self, reply) {
            (
                Waiter::Append(hook, tx),
                PartitionReply::Appended {
                    base_offset,
                    count,
                    append_time_ms,
                    duplicate,
                    deduplicated,
                },
            ) => {
                if let Some(hook) = hook.filter(|_| !duplicate) {
                    hook(base_offset);
                }
                let _ = tx.send(Ok(AppendAck {
                    base_offset,
                    count,
                    append_time_ms,
                    durability: shared.ack(),
                    duplicate,
                    deduplicated,
                }));
            }
            (Waiter::Append(_, tx), PartitionReply::OutOfOrder(message)) => {
                let _ = tx.send(Err(Error::new(ErrorCode::OutOfOrderSequence, message)));
            }
            (Waiter::Trim(done), PartitionReply::Trimmed { .. }) => {
                let _ = done.send(Ok(()));
            }
            (Waiter::Consume(done), PartitionReply::Consumed { index }) => {
                let _ = done.send(Ok(index));
            }
            (waiter, other) => waiter.fail(Error::internal(format!(
                "{name}: unexpected reply {other:?}"
            ))),
        }
    }
}

/// The entry of an append: the request's data stamped with `now`, and its hook apart.
fn append_command(request: AppendRequest, now: i64) -> (PartitionCommand, Option<CommitHook>) {
    let AppendRequest {
        payload,
        count,
        flags,
        producer_id,
        base_sequence,
        sequence_span,
        deduplicated,
        extras,
        on_commit,
        value_bytes,
    } = request;
    let command = AppendCommand {
        payload,
        count,
        flags,
        producer_id,
        base_sequence,
        sequence_span,
        deduplicated,
        extras,
        value_bytes,
        append_time_ms: now,
    };
    (PartitionCommand::Append(command), on_commit)
}

/// A partition group as the `Cluster` service sees it: its raft, plus a `propose` that takes
/// the forwarded entries of a partition's writer (an encoded `Vec<PartitionCommand>`), stamps
/// appends with this leader's clock, proposes them in order and answers each once applied (an
/// encoded `Vec<Result<PartitionReply, String>>`).
pub struct PartitionHandle {
    pub raft: PartitionRaft,
    pub clock: Arc<dyn Clock>,
    /// What the group applies into, for [`GroupHandle::read_view`].
    pub shared: Arc<PartitionShared>,
    pub consumers: Arc<dyn ConsumerState>,
}

impl GroupHandle for PartitionHandle {
    fn handle(&self, message: Vec<u8>) -> BoxFuture<'_, std::result::Result<Vec<u8>, String>> {
        self.raft.handle(message)
    }

    fn heartbeat(&self) -> BoxFuture<'_, ()> {
        GroupHandle::heartbeat(&self.raft)
    }

    fn install_snapshot(
        &self,
        head: Vec<u8>,
        data: Vec<u8>,
    ) -> BoxFuture<'_, std::result::Result<Vec<u8>, String>> {
        self.raft.install_snapshot(head, data)
    }

    fn propose(&self, command: Vec<u8>) -> BoxFuture<'_, std::result::Result<Vec<u8>, String>> {
        Box::pin(async move {
            let mut commands: Vec<PartitionCommand> =
                decode(&command).map_err(|err| err.to_string())?;
            let now = self.clock.now_ms();
            for command in &mut commands {
                if let PartitionCommand::Append(append) = command {
                    append.append_time_ms = now;
                }
            }
            let mut answers = Vec::with_capacity(commands.len());
            for reply in propose_in_order(&self.raft, commands).await {
                answers.push(match reply {
                    Ok(rx) => rx.await.unwrap_or_else(|_| Err("the group stopped".into())),
                    Err(err) => Err(err),
                });
            }
            encode(&answers).map_err(|err| err.to_string())
        })
    }

    fn read_index(&self) -> BoxFuture<'_, std::result::Result<u64, String>> {
        GroupHandle::read_index(&self.raft)
    }

    fn read_view(
        &self,
        subscription: Option<String>,
    ) -> BoxFuture<'_, std::result::Result<Vec<u8>, String>> {
        Box::pin(async move {
            self.raft
                .ensure_linearizable(ReadPolicy::ReadIndex)
                .await
                .map_err(|err| err.to_string())?;
            let view = PartitionView::of(&self.shared, &*self.consumers, subscription.as_deref());
            encode(&view).map_err(|err| err.to_string())
        })
    }

    fn read_batches(&self, ask: ReadAsk) -> BoxFuture<'_, std::result::Result<Vec<u8>, String>> {
        Box::pin(async move {
            let leader = {
                let metrics = self.raft.metrics();
                let metrics = metrics.borrow_watched();
                (metrics.current_leader != Some(metrics.id)).then_some(metrics.current_leader)
            };
            if let Some(leader) = leader {
                return encode(&ReadAnswer::NotLeader(leader)).map_err(|err| err.to_string());
            }
            // What this leader applied is committed: no read index needed.
            let shared = &self.shared;
            if ask.from >= shared.high_watermark() && ask.wait_ms > 0 {
                let wait = Duration::from_millis(u64::from(ask.wait_ms)).min(MAX_READ_WAIT);
                let mut high_watermark = shared.watch_high_watermark();
                let _ =
                    tokio::time::timeout(wait, high_watermark.wait_for(|&hw| hw > ask.from)).await;
            }
            let batches = shared
                .read(ask.from, READ_BATCHES, ask.max_bytes as usize)
                .await
                .map_err(|err| err.to_string())?;
            let read = RemoteRead {
                batches: batches.iter().map(|batch| (**batch).clone()).collect(),
                high_watermark: shared.high_watermark(),
                log_start: shared.log_start(),
            };
            encode(&ReadAnswer::Read(read)).map_err(|err| err.to_string())
        })
    }

    fn rebuild_replica(
        &self,
        node: u64,
        request: rebuild::Request,
    ) -> BoxFuture<'_, std::result::Result<bool, String>> {
        Box::pin(rebuild::answer(&self.raft, node, request))
    }
}
