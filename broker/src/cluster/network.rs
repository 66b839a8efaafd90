//! The client side of node-to-node raft traffic: every group's messages to one peer share one
//! queue, and one sender task per peer sends what is queued as one request on the stream it
//! keeps open to the peer (`Cluster.RaftStream`).
//!
//! **Coalescing without a timer.** A group's network client ([`GroupClient`]) encodes its
//! message, puts it on the target peer's queue and awaits the answer. The peer's sender task
//! takes everything queued, sends it as one batch, routes each answer back, and only then looks
//! at the queue again: whatever the groups queued while that batch was in flight goes out
//! together in the next one. So a node with a thousand groups sends a handful of batches per
//! heartbeat round to each peer, not a thousand, and nothing waits for a linger ([`IN_FLIGHT`]
//! batches in flight to a peer at most).
//!
//! **One stream per peer.** The batches go as messages of one long-lived bidirectional stream,
//! not one RPC each: a batch costs HTTP/2 data frames, not a request's headers, trailers and a
//! task on each side (5 % less CPU in the brokers: docs/benchmarks.md, "Cluster", 2026-12-06).
//! A stream that fails is replaced (see [`send_one`]); the receiving node ends its side of every
//! stream when it shuts down.
//!
//! **Snapshots** go in chunks of the group network's snapshot chunk size (1 MiB unless set),
//! each a message of its own on the peer's queue (so other groups' traffic interleaves), then
//! their head; the receiver reassembles them ([`Groups`](super::Groups)). A group with a
//! [`SnapshotSource`] (a partition group: its snapshot data is a small record naming a log
//! range) first streams what the data names, read from the store one chunk at a time while the
//! previous one is in flight, so the sender holds one chunk, never the whole log.
//!
//! One lazy tonic `Channel` per peer (connected on first use, reconnected by tonic), over TLS
//! when the node's [`NodeTls`] says so. A batch that fails answers each of its messages with
//! `Unreachable`, so openraft backs off.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use openraft::error::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse};
use openraft::raft::{TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{BasicNode, RaftNetworkV2, RaftTypeConfig};
use parking_lot::Mutex;
use serde_bytes::ByteBuf;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::keys::GroupId;
use super::proto::RaftBatch;
use super::tls::{NodeTls, PeerClient};
use super::wire::{Answers, Frame, RaftAnswer, RaftMessage, SnapshotHead, SnapshotSource};
use super::{decode, encode};
use crate::observability::cluster::ClusterCounters;

/// A node's id in the cluster (the same in every group).
pub type NodeId = u64;

/// How long one batch may wait for its answer before its messages fail (and the stream to the
/// peer is closed); a stopped peer (SIGSTOP, a dead link) must not hold every group's traffic
/// to it forever.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// Batches in flight on the stream to one peer at most. One: what queues meanwhile goes in the
/// next, so idle rounds cost about one batch each. Two were tried against a thousand groups
/// starting at once (heartbeats stuck behind a slow batch of votes and appends): it did not
/// stop that election churn, and idle it split each round into three or four RPCs (each batch
/// was an RPC of its own then; docs/clustering.md "Many partitions").
pub const IN_FLIGHT: usize = 1;

/// How many bytes of a snapshot one message carries, unless the group network says otherwise.
pub const SNAPSHOT_CHUNK: usize = 1 << 20;

/// Tells snapshot transfers apart on the receiver (a new one replaces an unfinished one).
static TRANSFERS: AtomicU64 = AtomicU64::new(1);

/// Why a queued message got no answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SendFailure(String);

/// A message waiting on a peer's queue.
struct Queued {
    group: GroupId,
    message: Frame,
    answer: oneshot::Sender<Result<Vec<u8>, SendFailure>>,
}

/// How much traffic this node sent to its peers (to one peer, in [`ClusterCounters`]):
/// `rpcs` is batches sent (one round trip each), `messages` the raft messages they carried.
pub use crate::observability::cluster::PeerTraffic as Traffic;

/// The queues to this node's peers, one sender task each. Cloned into every group's network.
#[derive(Clone)]
pub struct Peers {
    inner: Arc<PeersInner>,
}

struct PeersInner {
    peers: Mutex<HashMap<NodeId, Peer>>,
    /// Where this node reaches a peer, from its own `cluster.peers`: it wins over the address
    /// in the group's membership, which the node that initialized the group wrote from *its*
    /// view. Nodes that see each other through different addresses (NAT, a proxy per link in
    /// the fault tests) each use their own.
    routes: HashMap<NodeId, String>,
    traffic: Arc<Traffic>,
    /// The same, per peer, for the node's metrics.
    counters: Arc<ClusterCounters>,
    tls: NodeTls,
}

struct Peer {
    addr: String,
    queue: mpsc::UnboundedSender<Queued>,
    sender: JoinHandle<()>,
}

impl Default for Peers {
    fn default() -> Self {
        Peers::new()
    }
}

impl Peers {
    /// No peers yet: a peer's queue and sender task start with the first message to it.
    /// Plaintext channels.
    pub fn new() -> Peers {
        Peers::with(NodeTls::plaintext(), HashMap::new())
    }

    /// As [`Peers::new`], with channels secured as `tls` says, reaching the nodes of `routes`
    /// at those addresses whatever the membership says.
    pub fn with(tls: NodeTls, routes: HashMap<NodeId, String>) -> Peers {
        Peers::counted(tls, routes, Arc::default())
    }

    /// As [`Peers::with`], counting what is sent to each peer in `counters`.
    pub fn counted(
        tls: NodeTls,
        routes: HashMap<NodeId, String>,
        counters: Arc<ClusterCounters>,
    ) -> Peers {
        Peers {
            inner: Arc::new(PeersInner {
                peers: Mutex::new(HashMap::new()),
                routes,
                traffic: Arc::default(),
                counters,
                tls,
            }),
        }
    }

    /// What this node sent so far.
    pub fn traffic(&self) -> &Traffic {
        &self.inner.traffic
    }

    /// The queue to node `id` at `addr` (`host:port` of its cluster listener, unless this node
    /// routes it elsewhere), starting its
    /// sender task if there is none yet, or a new one if the node moved.
    fn queue(&self, id: NodeId, addr: &str) -> mpsc::UnboundedSender<Queued> {
        let addr = self.inner.routes.get(&id).map_or(addr, String::as_str);
        let mut peers = self.inner.peers.lock();
        if let Some(peer) = peers.get(&id)
            && peer.addr == addr
            && !peer.queue.is_closed()
        {
            return peer.queue.clone();
        }
        let (queue, queued) = mpsc::unbounded_channel();
        let client = self.inner.tls.client(addr, RPC_TIMEOUT);
        let sender = tokio::spawn(send_batches(
            addr.to_string(),
            client,
            queued,
            [
                Arc::clone(&self.inner.traffic),
                self.inner.counters.peer(id),
            ],
        ));
        let peer = Peer {
            addr: addr.to_string(),
            queue: queue.clone(),
            sender,
        };
        if let Some(old) = peers.insert(id, peer) {
            old.sender.abort();
        }
        queue
    }

    /// Stops every sender task; messages still queued or in flight fail as unreachable.
    pub fn close(&self) {
        for (_, peer) in self.inner.peers.lock().drain() {
            peer.sender.abort();
        }
    }
}

/// A peer's sender task: takes everything queued, sends it as one batch on the peer's
/// `Cluster.RaftStream`, hands each message its answer, and again, until every queue handle is
/// gone. One batch is in flight at a time ([`IN_FLIGHT`]).
async fn send_batches(
    addr: String,
    client: Result<PeerClient, String>,
    mut queued: mpsc::UnboundedReceiver<Queued>,
    traffic: [Arc<Traffic>; 2],
) {
    // Dropped with this task (the peer moved, the node stops): the peer sees the stream reset.
    let mut stream = None;
    while let Some(first) = queued.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = queued.try_recv() {
            batch.push(more);
        }
        // A caller that gave up (timed out) needs no answer.
        batch.retain(|message| !message.answer.is_closed());
        if batch.is_empty() {
            continue;
        }
        let answers = match &client {
            Ok(client) => send_one(client, &mut stream, &batch, &traffic).await,
            Err(err) => Err(err.clone()),
        };
        match answers {
            Ok(answers) => {
                for (message, answer) in batch.into_iter().zip(answers) {
                    let answer = answer.map(ByteBuf::into_vec).map_err(SendFailure);
                    let _ = message.answer.send(answer);
                }
            }
            Err(err) => {
                tracing::debug!(peer = %addr, cause = %err, "cluster RPC failed");
                for message in batch {
                    let _ = message.answer.send(Err(SendFailure(err.clone())));
                }
            }
        }
    }
}

/// Sends `batch` on the peer's stream and decodes the answers, one per message. A stream that
/// fails is replaced: a batch that fails on a stream it did not open (the peer restarted or shut
/// down since the last batch) goes again at once on a new one, so a peer's restart costs no
/// batch; a batch that fails on a new stream, or gets no answer within [`RPC_TIMEOUT`], fails,
/// and the next batch opens another stream, so no answer can come late for the wrong batch.
/// (Raft messages bear going twice: an append, a vote or a heartbeat is answered the same the
/// second time, and a snapshot chunk out of place fails its transfer, which openraft retries.)
async fn send_one(
    client: &PeerClient,
    stream: &mut Option<RaftStream>,
    batch: &[Queued],
    traffic: &[Arc<Traffic>; 2],
) -> Result<Answers, String> {
    // Borrowed: encodes as `Requests` does, without copying the frames.
    let requests: Vec<(GroupId, &Frame)> = batch
        .iter()
        .map(|message| (message.group, &message.message))
        .collect();
    let payload = Bytes::from(encode(&requests).map_err(|err| err.to_string())?);
    for count in traffic {
        count.rpcs.fetch_add(1, Ordering::Relaxed);
        count
            .messages
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
    let exchange = async {
        if let Some(open) = stream.as_mut() {
            match open.exchange(payload.clone()).await {
                Ok(answer) => return Ok(answer),
                Err(err) => {
                    tracing::debug!(cause = %err, "raft stream to a peer failed, reopening")
                }
            }
        }
        let open = stream.insert(RaftStream::open(client.clone()).await?);
        open.exchange(payload).await
    };
    let answer = match tokio::time::timeout(RPC_TIMEOUT, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(err)) => {
            *stream = None;
            return Err(err);
        }
        Err(_) => {
            *stream = None;
            return Err(format!("no answer within {RPC_TIMEOUT:?}"));
        }
    };
    let answers: Answers = match decode(&answer.payload) {
        Ok(answers) => answers,
        Err(err) => {
            *stream = None;
            return Err(err.to_string());
        }
    };
    if answers.len() != batch.len() {
        *stream = None;
        return Err(format!(
            "{} answers to {} messages",
            answers.len(),
            batch.len()
        ));
    }
    Ok(answers)
}

/// An open `Cluster.RaftStream` to a peer: batches go out on the request stream, their answers
/// come back on the response stream in the same order. One stream carries every batch to the
/// peer, so a batch costs HTTP/2 data frames, not a new request with its headers, trailers and
/// a task on each side.
struct RaftStream {
    requests: mpsc::Sender<RaftBatch>,
    answers: tonic::Streaming<RaftBatch>,
}

impl RaftStream {
    async fn open(mut client: PeerClient) -> Result<RaftStream, String> {
        let (requests, outgoing) = mpsc::channel(IN_FLIGHT);
        let answers = client
            .raft_stream(tokio_stream::wrappers::ReceiverStream::new(outgoing))
            .await
            .map_err(|status| format!("{}: {}", status.code(), status.message()))?
            .into_inner();
        Ok(RaftStream { requests, answers })
    }

    /// Sends one batch and awaits its answer.
    async fn exchange(&mut self, payload: Bytes) -> Result<RaftBatch, String> {
        let batch = RaftBatch { payload };
        if self.requests.send(batch).await.is_err() {
            return Err("the stream to the peer closed".into());
        }
        match self.answers.message().await {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => Err("the peer closed the stream".into()),
            Err(status) => Err(format!("{}: {}", status.code(), status.message())),
        }
    }
}

/// openraft's network factory for one group on this node: its clients put their messages on
/// the shared peer queues.
pub struct GroupNetwork<C> {
    id: NodeId,
    group: GroupId,
    peers: Peers,
    snapshot_chunk: usize,
    source: Option<Arc<dyn SnapshotSource>>,
    _config: std::marker::PhantomData<fn() -> C>,
}

impl<C> GroupNetwork<C> {
    /// The network of `group` on node `id`.
    pub fn new(id: NodeId, group: GroupId, peers: Peers) -> GroupNetwork<C> {
        GroupNetwork {
            id,
            group,
            peers,
            snapshot_chunk: SNAPSHOT_CHUNK,
            source: None,
            _config: std::marker::PhantomData,
        }
    }

    /// The same, streaming what each snapshot's data names from `source` (a partition group's
    /// batches) before the data.
    pub fn with_snapshot_source(mut self, source: Arc<dyn SnapshotSource>) -> GroupNetwork<C> {
        self.source = Some(source);
        self
    }

    /// The same, sending snapshots in chunks of `bytes` (at least 1).
    pub fn with_snapshot_chunk(mut self, bytes: usize) -> GroupNetwork<C> {
        self.snapshot_chunk = bytes.max(1);
        self
    }
}

impl<C> RaftNetworkFactory<C> for GroupNetwork<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode>,
{
    type Network = GroupClient<C>;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> GroupClient<C> {
        GroupClient {
            id: self.id,
            target,
            group: self.group,
            queue: self.peers.queue(target, &node.addr),
            snapshot_chunk: self.snapshot_chunk,
            source: self.source.clone(),
            _config: std::marker::PhantomData,
        }
    }
}

/// One group's raft messages to one peer.
pub struct GroupClient<C> {
    id: NodeId,
    target: NodeId,
    group: GroupId,
    queue: mpsc::UnboundedSender<Queued>,
    snapshot_chunk: usize,
    source: Option<Arc<dyn SnapshotSource>>,
    _config: std::marker::PhantomData<fn() -> C>,
}

impl<C> GroupClient<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode>,
{
    /// Queues `message`, awaits its answer for at most `ttl`.
    async fn call(
        &self,
        message: RaftMessage<C>,
        action: RPCTypes,
        ttl: Duration,
    ) -> Result<RaftAnswer<C>, RPCError<C>> {
        let message = encode(&message).map_err(|err| RPCError::Network(NetworkError::new(&err)))?;
        let answer = self.send(Frame::Message(message), action, ttl).await?;
        decode(&answer).map_err(|err| RPCError::Network(NetworkError::new(&err)))
    }

    /// Sends `snapshot` as chunks, then its head, each awaited for at most `ttl`.
    async fn send_snapshot(
        &self,
        vote: VoteOf<C>,
        snapshot: SnapshotOf<C, Vec<u8>>,
        ttl: Duration,
    ) -> Result<RaftAnswer<C>, RPCError<C>> {
        let transfer = TRANSFERS.fetch_add(1, Ordering::Relaxed);
        let action = RPCTypes::InstallSnapshot;
        let data = snapshot.snapshot;
        if let Some(source) = &self.source {
            let data = Arc::new(data.clone());
            let (mut from, mut chunk) = (None, 0);
            loop {
                let (source, data, max) =
                    (Arc::clone(source), Arc::clone(&data), self.snapshot_chunk);
                let (bytes, next) =
                    tokio::task::spawn_blocking(move || source.read(&data, from, max))
                        .await
                        .map_err(|err| err.to_string())
                        .and_then(|read| read)
                        .map_err(|err| RPCError::Network(NetworkError::new(&SendFailure(err))))?;
                if !bytes.is_empty() {
                    let frame = Frame::Stream {
                        transfer,
                        chunk,
                        data: bytes,
                    };
                    self.send(frame, action, ttl).await?;
                    chunk += 1;
                }
                match next {
                    Some(next) => from = Some(next),
                    None => break,
                }
            }
        }
        let mut offset = 0;
        for chunk in data.chunks(self.snapshot_chunk) {
            let frame = Frame::Chunk {
                transfer,
                offset: offset as u64,
                data: chunk.to_vec(),
            };
            self.send(frame, action, ttl).await?;
            offset += chunk.len();
        }
        let head = SnapshotHead::<C> {
            vote,
            meta: snapshot.meta,
        };
        let head = encode(&head).map_err(|err| RPCError::Network(NetworkError::new(&err)))?;
        let frame = Frame::Snapshot {
            transfer,
            total: data.len() as u64,
            head,
        };
        drop(data);
        let answer = self.send(frame, action, ttl).await?;
        decode(&answer).map_err(|err| RPCError::Network(NetworkError::new(&err)))
    }

    /// Queues `message`, awaits its raw answer for at most `ttl`.
    async fn send(
        &self,
        message: Frame,
        action: RPCTypes,
        ttl: Duration,
    ) -> Result<Vec<u8>, RPCError<C>> {
        let (answer, answered) = oneshot::channel();
        let queued = Queued {
            group: self.group,
            message,
            answer,
        };
        let unreachable = |why: String| RPCError::Unreachable(Unreachable::new(&SendFailure(why)));
        if self.queue.send(queued).is_err() {
            return Err(unreachable("the peer's sender stopped".into()));
        }
        let answer = match tokio::time::timeout(ttl, answered).await {
            Err(_) => {
                return Err(RPCError::Timeout(Timeout {
                    action,
                    id: self.id,
                    target: self.target,
                    timeout: ttl,
                }));
            }
            Ok(Err(_)) => return Err(unreachable("the peer's sender stopped".into())),
            Ok(Ok(answer)) => answer.map_err(|err| unreachable(err.0))?,
        };
        Ok(answer)
    }
}

fn unexpected<C: RaftTypeConfig>() -> RPCError<C> {
    RPCError::Network(NetworkError::new(&SendFailure(
        "answer of another kind".into(),
    )))
}

impl<C> RaftNetworkV2<C> for GroupClient<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode>,
{
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        let message = RaftMessage::Append(request);
        match self
            .call(message, RPCTypes::AppendEntries, option.hard_ttl())
            .await?
        {
            RaftAnswer::Append(answer) => Ok(answer),
            _ => Err(unexpected()),
        }
    }

    async fn vote(
        &mut self,
        request: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        match self
            .call(
                RaftMessage::Vote(request),
                RPCTypes::Vote,
                option.hard_ttl(),
            )
            .await?
        {
            RaftAnswer::Vote(answer) => Ok(answer),
            _ => Err(unexpected()),
        }
    }

    async fn pre_vote(
        &mut self,
        request: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        let message = RaftMessage::PreVote(request);
        match self
            .call(message, RPCTypes::Vote, option.hard_ttl())
            .await?
        {
            RaftAnswer::Vote(answer) => Ok(answer),
            _ => Err(unexpected()),
        }
    }

    /// openraft's default answers `Unreachable`: the target would then wait for the old
    /// leader's lease to run out before it campaigns. Sent on the peer's queue like any message.
    async fn transfer_leader(
        &mut self,
        request: TransferLeaderRequest<C>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<C>, RPCError<C>> {
        let message = RaftMessage::TransferLeader(request);
        match self
            .call(message, RPCTypes::TransferLeader, option.hard_ttl())
            .await?
        {
            RaftAnswer::TransferLeader(answer) => Ok(answer),
            _ => Err(unexpected()),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<C>,
        snapshot: SnapshotOf<C, Vec<u8>>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        let call = self.send_snapshot(vote, snapshot, option.hard_ttl());
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            answer = call => match answer? {
                RaftAnswer::Snapshot(answer) => Ok(answer),
                _ => Err(unexpected::<C>().into()),
            },
        }
    }
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;
