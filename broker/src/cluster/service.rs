//! The server side of node-to-node raft traffic: the `Cluster` gRPC service and the registry of
//! the groups this node hosts.
//!
//! Each request on a peer's `Cluster.RaftStream` carries the messages of many groups; each goes
//! to its group's `Raft` handle (all at once: a vote in one group never waits behind another
//! group's append), and the answers go back together in one response, in the order of the
//! messages. A stream's requests are answered one after another, in the order they came.
//!
//! A snapshot comes in chunks ([`Frame`]): the registry appends each to its group's transfer
//! and hands the reassembled data to the group with the last frame. One transfer per group at a
//! time: a transfer that starts anew (its first chunk) replaces whatever was left of another.
//! What a partition group's snapshot streams ([`Frame::Stream`], its batches) goes to the
//! group's [`SnapshotSink`] as it arrives (written to the store, not held); the last frame seals
//! it before the install, and whatever the install did not take is abandoned after it.
//!
//! The registry also runs the node's one heartbeat task. Groups are built with openraft's own
//! heartbeat off ([`group_config`]); every heartbeat interval the task asks every group this
//! node leads to send its heartbeat at once, so the peer queues coalesce them (see
//! [`network`](super::network)): idle groups cost one or two RPCs per peer per interval, however
//! many there are.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use futures::future::join_all;
use futures::{Stream, StreamExt};
use parking_lot::{Mutex, RwLock};
use serde_bytes::ByteBuf;
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};

use super::keys::GroupId;
use super::leaders::LeaderBalance;
use super::members::MembersHandle;
use super::proto::RaftBatch;
use super::proto::cluster_server::{Cluster, ClusterServer};
use super::rebuild;
use super::wire::{Answers, Frame, GroupHandle, ReadAsk, Requests, SnapshotSink};
use super::{decode, encode};
use crate::engine::{Engine, ForwardedAnswer, ForwardedPublish};

/// The raft settings of every group (ADR 5 §4): heartbeat every 300 ms, sent by the node's
/// heartbeat task rather than by each group, elections after 1.5–3 s of silence, pre-vote on.
///
/// A leader that restarts does not lead its old term again (`enable_leader_restore` off): it
/// becomes a follower and must win an election. Its log sends each entry to the followers while
/// its own write is under way (`log_store.rs`), so the followers can commit an entry the leader
/// never stored; leading the same term again, it would number its next entry like that one
/// (same term, same index), the followers would keep theirs as the same entry, and the replicas
/// would apply different batches at the same offsets. An election at a higher term cannot be won
/// with that shorter log.
pub fn group_config(cluster_name: &str) -> openraft::Config {
    const ELECTION_TIMEOUT_MIN: u64 = 1500;
    openraft::Config {
        cluster_name: cluster_name.to_string(),
        heartbeat_interval: answer_timeout_ms(ELECTION_TIMEOUT_MIN),
        election_timeout_min: ELECTION_TIMEOUT_MIN,
        election_timeout_max: 2 * ELECTION_TIMEOUT_MIN,
        // Per snapshot frame: the last one waits for the install (a synced write).
        install_snapshot_timeout: 10_000,
        enable_heartbeat: false,
        enable_pre_vote: Some(true),
        enable_leader_restore: Some(false),
        ..openraft::Config::default()
    }
}

/// How often the node's leaders send heartbeats.
pub const HEARTBEAT: Duration = Duration::from_millis(300);

/// What goes in openraft's `heartbeat_interval` for groups that elect after
/// `election_timeout_min` ms: two thirds of it. With openraft's own heartbeat off that setting
/// is not the cadence (the node's heartbeat task sends every `cluster.heartbeat_ms`) but how
/// long a heartbeat or an append stream waits for its answer, and about a fifth of it (13/64) is
/// how often each group's election timer ticks. A heartbeat answered late did its job when it
/// arrived (the follower's timer restarted), so failing it after one cadence, 300 ms, under load
/// only added warnings and retried appends; and a thousand groups ticking every 60 ms cost a
/// busy debug node more than their heartbeats.
pub fn answer_timeout_ms(election_timeout_min: u64) -> u64 {
    election_timeout_min * 2 / 3
}

/// The raft groups this node hosts, by group id.
#[derive(Default)]
pub struct Groups {
    groups: RwLock<HashMap<GroupId, Arc<dyn GroupHandle>>>,
    /// Snapshot data received so far, per group: `(transfer, bytes)`.
    transfers: Mutex<HashMap<GroupId, (u64, Vec<u8>)>>,
    /// Where `Cluster.ChangeMembers` goes (the metadata group's membership).
    members: RwLock<Option<Arc<dyn MembersHandle>>>,
    /// Where the groups that stream snapshots (partition groups) take what they stream.
    sinks: RwLock<HashMap<GroupId, Arc<dyn SnapshotSink>>>,
    /// Where `Cluster.RebalanceLeaders` goes.
    balance: RwLock<Option<Arc<LeaderBalance>>>,
    /// Where `Cluster.Publish` goes.
    publisher: Publisher,
    /// Where `Cluster.Relay` goes: this node's REST layer, once it runs.
    relay: RwLock<Option<Weak<dyn RelayHandler>>>,
}

/// This node's REST layer, serving the requests of another node's REST clients that need
/// partitions this node leads (`Cluster.Relay`, `crate::rest::relay`). The request and the
/// answer are that layer's own encoding: the cluster passes bytes.
pub trait RelayHandler: Send + Sync + 'static {
    fn relay(&self, ask: Vec<u8>) -> futures::future::BoxFuture<'_, Vec<u8>>;
}

/// The engine, for the publishes another node hands to this one as their producers sent them
/// (`Cluster.Publish`, [`forward`](super::forward)); set once the engine runs. Weak: the engine
/// holds the groups.
#[derive(Clone, Default)]
pub struct Publisher(Arc<OnceLock<Weak<Engine>>>);

impl Publisher {
    pub fn set(&self, engine: &Arc<Engine>) {
        let _ = self.0.set(Arc::downgrade(engine));
    }

    /// The engine, unless it is not set yet or stopped.
    pub fn engine(&self) -> Option<Arc<Engine>> {
        self.0.get().and_then(Weak::upgrade)
    }

    /// Publishes `publishes` on this node in their order (each queued on its partition before
    /// the next), then waits for all: the answer of each.
    pub async fn publish(
        &self,
        publishes: Vec<ForwardedPublish>,
    ) -> Result<Vec<ForwardedAnswer>, String> {
        let engine = self
            .engine()
            .ok_or_else(|| "this node takes no publishes yet".to_string())?;
        let mut queued = Vec::with_capacity(publishes.len());
        for publish in publishes {
            queued.push(engine.begin_forwarded_publish(publish).await);
        }
        Ok(join_all(queued.into_iter().map(|queued| async move {
            match queued {
                Ok(ack) => ForwardedAnswer::from(ack.await),
                Err(err) => ForwardedAnswer::from(Err(err)),
            }
        }))
        .await)
    }
}

impl Groups {
    /// An empty registry.
    pub fn new() -> Arc<Groups> {
        Arc::default()
    }

    /// Hosts `group`: messages for it now reach `handle` (a `Raft`).
    pub fn insert(&self, group: GroupId, handle: Arc<dyn GroupHandle>) {
        self.groups.write().insert(group, handle);
    }

    /// Streamed snapshot chunks for `group` ([`Frame::Stream`]) now go to `sink`.
    pub fn insert_snapshot_sink(&self, group: GroupId, sink: Arc<dyn SnapshotSink>) {
        self.sinks.write().insert(group, sink);
    }

    /// Stops routing messages to `group`.
    pub fn remove(&self, group: GroupId) -> Option<Arc<dyn GroupHandle>> {
        self.sinks.write().remove(&group);
        self.groups.write().remove(&group)
    }

    /// Answers `Cluster.ChangeMembers` with `members`.
    pub fn set_members(&self, members: Arc<dyn MembersHandle>) {
        *self.members.write() = Some(members);
    }

    /// Where `Cluster.Publish` publishes.
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// Answers `Cluster.RebalanceLeaders` with a round of `balance`.
    pub fn set_balance(&self, balance: Arc<LeaderBalance>) {
        *self.balance.write() = Some(balance);
    }

    /// Answers `Cluster.Relay` with `handler`, while it lives.
    pub fn set_relay(&self, handler: Weak<dyn RelayHandler>) {
        *self.relay.write() = Some(handler);
    }

    fn sink(&self, group: GroupId) -> Option<Arc<dyn SnapshotSink>> {
        self.sinks.read().get(&group).cloned()
    }

    fn get(&self, group: GroupId) -> Option<Arc<dyn GroupHandle>> {
        self.groups.read().get(&group).cloned()
    }

    fn all(&self) -> Vec<Arc<dyn GroupHandle>> {
        self.groups.read().values().cloned().collect()
    }

    /// Starts the node's heartbeat task: every `interval`, each group this node leads sends its
    /// heartbeat. Abort the handle to stop it.
    pub fn drive_heartbeats(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let groups = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                groups.heartbeat_all().await;
            }
        })
    }

    /// One heartbeat round: every group asked at once, not one after another. Asking a group
    /// is a round trip to its raft task; a thousand in a row on a busy node stretched the round
    /// past the interval (the idle test, `cli/tests/cluster_idle.rs`), and at once the peer
    /// queues also receive the round's heartbeats together, to go out in one or two RPCs.
    async fn heartbeat_all(&self) {
        let groups = self.all();
        join_all(groups.iter().map(|group| group.heartbeat())).await;
    }

    /// The `Cluster` gRPC service over these groups. Its raft streams end once `closing` turns
    /// true (or its sender is gone): a peer keeps its stream open for as long as it runs, and
    /// the listener's graceful shutdown waits for every stream to end.
    pub fn service(
        self: &Arc<Self>,
        closing: watch::Receiver<bool>,
    ) -> ClusterServer<ClusterService> {
        ClusterServer::new(ClusterService {
            groups: Arc::clone(self),
            closing,
        })
        .max_decoding_message_size(usize::MAX)
    }

    /// Answers the messages of one batch, each from its group, all at once.
    async fn answer(&self, requests: Requests) -> Answers {
        join_all(requests.into_iter().map(|(group, frame)| async move {
            let Some(handle) = self.get(group) else {
                return Err(format!("group {group} is not hosted on this node"));
            };
            match frame {
                Frame::Message(message) => handle.handle(message).await,
                Frame::Chunk {
                    transfer,
                    offset,
                    data,
                } => self
                    .add_chunk(group, transfer, offset, data)
                    .map(|()| Vec::new()),
                Frame::Snapshot {
                    transfer,
                    total,
                    head,
                } => {
                    let data = self.take_transfer(group, transfer, total)?;
                    let Some(sink) = self.sink(group) else {
                        return handle.install_snapshot(head, data).await;
                    };
                    on_sink(&sink, move |sink| sink.seal(transfer)).await?;
                    let installed = handle.install_snapshot(head, data).await;
                    // Whatever the install did not take (refused, failed) is cleaned up.
                    on_sink(&sink, move |sink| sink.abandon(transfer)).await?;
                    installed
                }
                Frame::Stream {
                    transfer,
                    chunk,
                    data,
                } => {
                    let Some(sink) = self.sink(group) else {
                        return Err(format!("group {group} takes no streamed snapshots"));
                    };
                    on_sink(&sink, move |sink| sink.stage(transfer, chunk, &data))
                        .await
                        .map(|()| Vec::new())
                }
            }
        }))
        .await
        .into_iter()
        .map(|answer| answer.map(ByteBuf::from))
        .collect()
    }

    /// Appends a chunk to `group`'s snapshot transfer (a new one when `offset` is 0).
    fn add_chunk(
        &self,
        group: GroupId,
        transfer: u64,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<(), String> {
        let mut transfers = self.transfers.lock();
        if offset == 0 {
            transfers.insert(group, (transfer, data));
            return Ok(());
        }
        match transfers.get_mut(&group) {
            Some((current, received))
                if *current == transfer && received.len() as u64 == offset =>
            {
                received.extend_from_slice(&data);
                Ok(())
            }
            _ => Err(format!(
                "snapshot chunk at {offset} of transfer {transfer} of group {group} does not follow what was received"
            )),
        }
    }

    /// The whole data of `group`'s snapshot transfer, if all `total` bytes came.
    fn take_transfer(&self, group: GroupId, transfer: u64, total: u64) -> Result<Vec<u8>, String> {
        let mut transfers = self.transfers.lock();
        match transfers.remove(&group) {
            Some((current, data)) if current == transfer && data.len() as u64 == total => Ok(data),
            None if total == 0 => Ok(Vec::new()),
            other => {
                if let Some(other) = other.filter(|(current, _)| *current != transfer) {
                    transfers.insert(group, other);
                }
                Err(format!(
                    "snapshot transfer {transfer} of group {group} is incomplete"
                ))
            }
        }
    }
}

/// Runs a blocking call on a group's snapshot sink on the blocking pool.
async fn on_sink<F>(sink: &Arc<dyn SnapshotSink>, call: F) -> Result<(), String>
where
    F: FnOnce(&dyn SnapshotSink) -> Result<(), String> + Send + 'static,
{
    let sink = Arc::clone(sink);
    tokio::task::spawn_blocking(move || call(&*sink))
        .await
        .map_err(|err| format!("snapshot sink task: {err}"))?
}

/// The `Cluster` gRPC service.
pub struct ClusterService {
    groups: Arc<Groups>,
    closing: watch::Receiver<bool>,
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    type RaftStreamStream = Pin<Box<dyn Stream<Item = Result<RaftBatch, Status>> + Send + 'static>>;

    async fn raft_stream(
        &self,
        request: Request<Streaming<RaftBatch>>,
    ) -> Result<Response<Self::RaftStreamStream>, Status> {
        let groups = Arc::clone(&self.groups);
        let mut closing = self.closing.clone();
        let closed = async move {
            let _ = closing.wait_for(|closing| *closing).await;
        };
        // One batch after another: the answers go back in the order the batches came.
        let answers = request.into_inner().take_until(closed).then(move |batch| {
            let groups = Arc::clone(&groups);
            async move {
                let requests: Requests = decode(&batch?.payload)
                    .map_err(|err| Status::invalid_argument(err.to_string()))?;
                let answers = groups.answer(requests).await;
                let payload = encode(&answers).map_err(|err| Status::internal(err.to_string()))?;
                Ok(RaftBatch {
                    payload: payload.into(),
                })
            }
        });
        Ok(Response::new(Box::pin(answers)))
    }

    async fn propose(&self, request: Request<RaftBatch>) -> Result<Response<RaftBatch>, Status> {
        let (group, command): (GroupId, ByteBuf) = decode(&request.into_inner().payload)
            .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let answer: Result<ByteBuf, String> = match self.groups.get(group) {
            Some(handle) => handle.propose(command.into_vec()).await.map(ByteBuf::from),
            None => Err(format!("group {group} is not hosted on this node")),
        };
        let payload = encode(&answer).map_err(|err| Status::internal(err.to_string()))?;
        Ok(Response::new(RaftBatch {
            payload: payload.into(),
        }))
    }

    async fn read_index(&self, request: Request<RaftBatch>) -> Result<Response<RaftBatch>, Status> {
        let group: GroupId = decode(&request.into_inner().payload)
            .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let answer: Result<u64, String> = match self.groups.get(group) {
            Some(handle) => handle.read_index().await,
            None => Err(format!("group {group} is not hosted on this node")),
        };
        let payload = encode(&answer).map_err(|err| Status::internal(err.to_string()))?;
        Ok(Response::new(RaftBatch {
            payload: payload.into(),
        }))
    }

    async fn read_view(&self, request: Request<RaftBatch>) -> Result<Response<RaftBatch>, Status> {
        let (group, subscription): (GroupId, Option<String>) =
            decode(&request.into_inner().payload)
                .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let answer: Result<Vec<u8>, String> = match self.groups.get(group) {
            Some(handle) => handle.read_view(subscription).await,
            None => Err(format!("group {group} is not hosted on this node")),
        };
        let payload = encode(&answer).map_err(|err| Status::internal(err.to_string()))?;
        Ok(Response::new(RaftBatch {
            payload: payload.into(),
        }))
    }

    async fn change_members(
        &self,
        request: Request<RaftBatch>,
    ) -> Result<Response<RaftBatch>, Status> {
        let members = self.groups.members.read().clone();
        let members =
            members.ok_or_else(|| Status::unavailable("membership changes are not served yet"))?;
        let payload = members
            .change(request.into_inner().payload.to_vec())
            .await
            .map_err(Status::invalid_argument)?;
        Ok(Response::new(RaftBatch {
            payload: payload.into(),
        }))
    }

    async fn rebuild_replica(
        &self,
        request: Request<RaftBatch>,
    ) -> Result<Response<RaftBatch>, Status> {
        let (group, node, ask): (GroupId, u64, rebuild::Request) =
            decode(&request.into_inner().payload)
                .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let answer: Result<bool, String> = match self.groups.get(group) {
            Some(handle) => handle.rebuild_replica(node, ask).await,
            None => Err(format!("group {group} is not hosted on this node")),
        };
        let payload = encode(&answer).map_err(|err| Status::internal(err.to_string()))?;
        Ok(Response::new(RaftBatch {
            payload: payload.into(),
        }))
    }

    async fn rebalance_leaders(
        &self,
        _request: Request<RaftBatch>,
    ) -> Result<Response<RaftBatch>, Status> {
        let balance = self.groups.balance.read().clone();
        let balance =
            balance.ok_or_else(|| Status::unavailable("partitions are not hosted yet"))?;
        let started = balance.round().await as u64;
        let payload = encode(&started).map_err(|err| Status::internal(err.to_string()))?;
        Ok(Response::new(RaftBatch {
            payload: payload.into(),
        }))
    }

    async fn read_batches(
        &self,
        request: Request<RaftBatch>,
    ) -> Result<Response<RaftBatch>, Status> {
        let (group, ask): (GroupId, ReadAsk) = decode(&request.into_inner().payload)
            .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let answer: Result<Vec<u8>, String> = match self.groups.get(group) {
            Some(handle) => handle.read_batches(ask).await,
            None => Err(format!("group {group} is not hosted on this node")),
        };
        let payload = encode(&answer).map_err(|err| Status::internal(err.to_string()))?;
        Ok(Response::new(RaftBatch {
            payload: payload.into(),
        }))
    }

    async fn relay(&self, request: Request<RaftBatch>) -> Result<Response<RaftBatch>, Status> {
        let ask: ByteBuf = decode(&request.into_inner().payload)
            .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let handler = self.groups.relay.read().as_ref().and_then(Weak::upgrade);
        let handler =
            handler.ok_or_else(|| Status::unavailable("this node serves no REST requests yet"))?;
        let answer = ByteBuf::from(handler.relay(ask.into_vec()).await);
        let payload = encode(&answer).map_err(|err| Status::internal(err.to_string()))?;
        Ok(Response::new(RaftBatch {
            payload: payload.into(),
        }))
    }

    async fn publish(&self, request: Request<RaftBatch>) -> Result<Response<RaftBatch>, Status> {
        let publishes: Vec<ForwardedPublish> = decode(&request.into_inner().payload)
            .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let answer = self.groups.publisher.publish(publishes).await;
        let payload = encode(&answer).map_err(|err| Status::internal(err.to_string()))?;
        Ok(Response::new(RaftBatch {
            payload: payload.into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use futures::future::BoxFuture;

    use super::*;

    /// Answers an installed snapshot with its head followed by its data.
    struct Installs;

    impl GroupHandle for Installs {
        fn handle(&self, message: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>> {
            Box::pin(async move { Ok(message) })
        }

        fn heartbeat(&self) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }

        fn install_snapshot(
            &self,
            head: Vec<u8>,
            data: Vec<u8>,
        ) -> BoxFuture<'_, Result<Vec<u8>, String>> {
            Box::pin(async move { Ok([head, data].concat()) })
        }

        fn propose(&self, _command: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>> {
            Box::pin(async { Err("no commands".to_string()) })
        }

        fn read_index(&self) -> BoxFuture<'_, Result<u64, String>> {
            Box::pin(async { Err("no log".to_string()) })
        }
    }

    fn chunk(transfer: u64, offset: u64, data: &[u8]) -> Requests {
        let data = data.to_vec();
        vec![(
            5,
            Frame::Chunk {
                transfer,
                offset,
                data,
            },
        )]
    }

    fn end(transfer: u64, total: u64) -> Requests {
        let head = b"head:".to_vec();
        vec![(
            5,
            Frame::Snapshot {
                transfer,
                total,
                head,
            },
        )]
    }

    #[tokio::test]
    async fn a_snapshot_sent_in_chunks_is_installed_whole_and_a_gap_is_refused() {
        let groups = Groups::new();
        groups.insert(5, Arc::new(Installs));
        assert_eq!(
            groups.answer(chunk(9, 0, b"abc")).await,
            [Ok(ByteBuf::new())]
        );
        assert_eq!(
            groups.answer(chunk(9, 3, b"de")).await,
            [Ok(ByteBuf::new())]
        );
        let gap = groups.answer(chunk(9, 9, b"x")).await;
        assert!(gap[0].is_err(), "a chunk that skips bytes: {gap:?}");
        assert_eq!(
            groups.answer(end(9, 5)).await,
            [Ok(ByteBuf::from(b"head:abcde".to_vec()))]
        );

        // A transfer that starts anew replaces an unfinished one; an incomplete one is refused.
        groups.answer(chunk(10, 0, b"old")).await;
        groups.answer(chunk(11, 0, b"new")).await;
        assert!(groups.answer(end(10, 3)).await[0].is_err(), "replaced");
        assert!(groups.answer(end(11, 4)).await[0].is_err(), "incomplete");
        assert_eq!(
            groups.answer(end(12, 0)).await,
            [Ok(ByteBuf::from(b"head:".to_vec()))]
        );
    }

    /// Records what a group's snapshot sink is asked.
    #[derive(Default)]
    struct Recording(Mutex<Vec<String>>);

    impl SnapshotSink for Recording {
        fn stage(&self, transfer: u64, chunk: u64, data: &[u8]) -> Result<(), String> {
            let data = String::from_utf8_lossy(data);
            self.0
                .lock()
                .push(format!("stage {transfer}/{chunk} {data}"));
            Ok(())
        }

        fn seal(&self, transfer: u64) -> Result<(), String> {
            self.0.lock().push(format!("seal {transfer}"));
            Ok(())
        }

        fn abandon(&self, transfer: u64) -> Result<(), String> {
            self.0.lock().push(format!("abandon {transfer}"));
            Ok(())
        }
    }

    fn stream(transfer: u64, chunk: u64, data: &[u8]) -> Requests {
        let data = data.to_vec();
        vec![(
            5,
            Frame::Stream {
                transfer,
                chunk,
                data,
            },
        )]
    }

    #[tokio::test]
    async fn streamed_chunks_go_to_the_sink_which_is_sealed_before_the_install_and_cleaned_after() {
        let groups = Groups::new();
        groups.insert(5, Arc::new(Installs));
        let refused = groups.answer(stream(3, 0, b"batches")).await;
        assert!(refused[0].is_err(), "no sink: {refused:?}");

        let sink = Arc::new(Recording::default());
        groups.insert_snapshot_sink(5, Arc::clone(&sink) as Arc<dyn SnapshotSink>);
        assert_eq!(
            groups.answer(stream(3, 0, b"one")).await,
            [Ok(ByteBuf::new())]
        );
        assert_eq!(
            groups.answer(stream(3, 1, b"two")).await,
            [Ok(ByteBuf::new())]
        );
        groups.answer(chunk(3, 0, b"state")).await;
        assert_eq!(
            groups.answer(end(3, 5)).await,
            [Ok(ByteBuf::from(b"head:state".to_vec()))]
        );
        assert_eq!(
            *sink.0.lock(),
            ["stage 3/0 one", "stage 3/1 two", "seal 3", "abandon 3"]
        );
    }
}
