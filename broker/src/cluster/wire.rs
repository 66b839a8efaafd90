//! What the `Cluster` service's `RaftBatch` carries (see `proto/rapidmq/cluster/v1/cluster.proto`).
//!
//! A request's payload is a postcard-encoded [`Requests`]: for each raft message, the group it is
//! for and the message itself, encoded on its own ([`RaftMessage`] of that group's type config),
//! as a [`Frame`]. A snapshot travels in several frames: its data in chunks of a configured
//! size, each answered once it is appended to the group's transfer, then its head (vote and
//! meta), answered once the reassembled snapshot is installed.
//! The answer's payload is a postcard-encoded [`Answers`], one per request, in the same order.
//! Encoding each message apart keeps the transport ignorant of type configs, so groups of
//! different kinds (metadata, partitions) share one batch.

use futures::future::BoxFuture;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse};
use openraft::raft::{TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse};
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use openraft::{Raft, RaftTypeConfig, ReadPolicy};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::keys::GroupId;
use super::{decode, encode};

/// A request's payload: `(group, frame)` for each message.
pub type Requests = Vec<(GroupId, Frame)>;

/// What a request carries for one group.
///
/// Its byte fields are (de)serialized as bytes (`serde_bytes`), not as sequences of `u8`: serde
/// would otherwise visit every byte of every replicated batch one call at a time, which was
/// 9 % of a 3-node cluster's CPU under publish load (docs/benchmarks.md "Cluster"). Postcard
/// writes both the same way (a length, then the bytes), so the encoding did not change.
#[derive(Debug, Serialize, Deserialize)]
pub enum Frame {
    /// An encoded [`RaftMessage`].
    Message(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The next piece of snapshot `transfer`'s data, starting at byte `offset`.
    Chunk {
        transfer: u64,
        offset: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// The end of snapshot `transfer`: its encoded [`SnapshotHead`]; the data is the `total`
    /// bytes of its chunks.
    Snapshot {
        transfer: u64,
        total: u64,
        #[serde(with = "serde_bytes")]
        head: Vec<u8>,
    },
    /// Chunk number `chunk` of what snapshot `transfer` streams besides its data (a partition
    /// group's batches, read by a [`SnapshotSource`]), for the group's [`SnapshotSink`]. Sent
    /// before the data's chunks.
    Stream {
        transfer: u64,
        chunk: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
}

/// Where a group's sender reads what its snapshots stream besides their data: a partition
/// group's snapshot data names a log range, whose batches come from the store as they are sent.
pub trait SnapshotSource: Send + Sync + 'static {
    /// The next chunk (about `max_bytes`) of what the snapshot whose data is `snapshot` streams,
    /// from `from` (`None`: its start), and where the next chunk starts (`None`: it ended).
    /// Blocks on the store.
    fn read(
        &self,
        snapshot: &[u8],
        from: Option<u64>,
        max_bytes: usize,
    ) -> Result<(Vec<u8>, Option<u64>), String>;
}

/// Where a group's receiver puts what a snapshot streams, chunk by chunk, before its install.
/// Blocking calls (they write to the store).
pub trait SnapshotSink: Send + Sync + 'static {
    /// Takes chunk `chunk` of `transfer` (chunk 0 starts a transfer, abandoning any other); a
    /// chunk out of order abandons the transfer and is refused.
    fn stage(&self, transfer: u64, chunk: u64, data: &[u8]) -> Result<(), String>;

    /// Every chunk of `transfer` came: the install that follows takes them.
    fn seal(&self, transfer: u64) -> Result<(), String>;

    /// Cleans up whatever `transfer` staged that no install took.
    fn abandon(&self, transfer: u64) -> Result<(), String>;
}

/// An answer's payload: the encoded [`RaftAnswer`] for each request, or why the node could not
/// hand it to its group (not hosted here, shut down). Bytes as bytes, like [`Frame`]'s.
pub type Answers = Vec<Result<ByteBuf, String>>;

/// One raft message from a group's leader or candidate to the same group on another node.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum RaftMessage<C: RaftTypeConfig> {
    /// Entries to replicate, or none: a heartbeat.
    Append(AppendEntriesRequest<C>),
    /// A candidate asks for a vote.
    Vote(VoteRequest<C>),
    /// A node asks whether it would win an election, before it raises its term.
    PreVote(VoteRequest<C>),
    /// The leader hands leadership to a caught-up voter (sent to every voter: the others stop
    /// waiting for the old leader's lease, the target campaigns at once).
    TransferLeader(TransferLeaderRequest<C>),
}

/// What a snapshot, for a follower behind the leader's purged log, carries besides its data
/// (which comes in [`Frame::Chunk`]s).
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct SnapshotHead<C: RaftTypeConfig> {
    pub vote: VoteOf<C>,
    pub meta: SnapshotMetaOf<C>,
}

/// The answer of a group to a [`RaftMessage`] of the same kind.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum RaftAnswer<C: RaftTypeConfig> {
    Append(AppendEntriesResponse<C>),
    Vote(VoteResponse<C>),
    Snapshot(SnapshotResponse<C>),
    TransferLeader(TransferLeaderResponse<C>),
}

/// What a node that holds no replica of a partition asks its leader for
/// (`Cluster.ReadBatches`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ReadAsk {
    /// The first offset wanted.
    pub from: u64,
    /// Bytes of batches at most (at least one batch is answered, whatever its size).
    pub max_bytes: u32,
    /// How long the leader waits for a batch past `from` when it has none yet.
    pub wait_ms: u32,
}

/// The answer to a [`ReadAsk`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ReadAnswer {
    Read(crate::engine::RemoteRead),
    /// This node does not lead the group: the leader it knows.
    NotLeader(Option<u64>),
}

/// A raft group hosted on this node, as the `Cluster` service sees it: whatever its type
/// config, it takes an encoded [`RaftMessage`] and returns an encoded [`RaftAnswer`].
pub trait GroupHandle: Send + Sync + 'static {
    /// Hands `message` to the group and encodes its answer; `Err` when the group cannot answer
    /// (it stopped).
    fn handle(&self, message: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>>;

    /// Sends a heartbeat to the group's followers if this node leads it (the node's heartbeat
    /// task calls it for every group at once, so the heartbeats of all groups are coalesced).
    fn heartbeat(&self) -> BoxFuture<'_, ()>;

    /// Installs a snapshot: `head` is its encoded [`SnapshotHead`], `data` its reassembled
    /// data; the answer is an encoded [`RaftAnswer::Snapshot`].
    fn install_snapshot(
        &self,
        head: Vec<u8>,
        data: Vec<u8>,
    ) -> BoxFuture<'_, Result<Vec<u8>, String>>;

    /// Writes an encoded command (the group's `C::D`) through this node, which must lead the
    /// group, and encodes its result (`C::R`); `Err` says why not (not the leader, stopped).
    fn propose(&self, command: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>>;

    /// The group's read index, if this node leads it: the raft index a replica must have
    /// applied to answer a read with everything the group committed before the call
    /// (openraft's `ReadIndex` policy: a quorum confirms the leadership first). `Err` says why
    /// not (not the leader, no quorum, stopped).
    fn read_index(&self) -> BoxFuture<'_, Result<u64, String>>;

    /// A partition group's state as this node has it once it confirmed it leads the group and
    /// applied what it committed (an encoded `PartitionView`); `subscription`'s offset with
    /// it. Only partition groups answer.
    fn read_view(&self, _subscription: Option<String>) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async { Err("not a partition group".to_string()) })
    }

    /// Committed batches of a partition group this node leads (`Cluster.ReadBatches`): an
    /// encoded [`ReadAnswer`]. Only partition groups answer.
    fn read_batches(&self, _ask: ReadAsk) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async { Err("not a partition group".to_string()) })
    }

    /// The leader's side of a damaged replica's `request` (`Cluster.RebuildReplica`,
    /// [`rebuild`](super::rebuild)): whether it was done. Only partition groups answer.
    fn rebuild_replica(
        &self,
        _node: u64,
        _request: super::rebuild::Request,
    ) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(async { Err("not a partition group".to_string()) })
    }
}

impl<C, SM> GroupHandle for Raft<C, SM>
where
    C: RaftTypeConfig,
    SM: RaftStateMachine<C, SnapshotData = Vec<u8>>,
{
    fn handle(&self, message: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let message: RaftMessage<C> = decode(&message).map_err(|err| err.to_string())?;
            let answer = match message {
                RaftMessage::Append(request) => {
                    RaftAnswer::Append(self.append_entries(request).await.map_err(err_text)?)
                }
                RaftMessage::Vote(request) => {
                    RaftAnswer::Vote(self.vote(request).await.map_err(err_text)?)
                }
                RaftMessage::PreVote(request) => {
                    RaftAnswer::Vote(self.pre_vote(request).await.map_err(err_text)?)
                }
                RaftMessage::TransferLeader(request) => RaftAnswer::TransferLeader(
                    self.handle_transfer_leader(request)
                        .await
                        .map_err(err_text)?,
                ),
            };
            encode(&answer).map_err(|err| err.to_string())
        })
    }

    fn install_snapshot(
        &self,
        head: Vec<u8>,
        data: Vec<u8>,
    ) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let head: SnapshotHead<C> = decode(&head).map_err(|err| err.to_string())?;
            let snapshot = SnapshotOf::<C, Vec<u8>> {
                meta: head.meta,
                snapshot: data,
            };
            let answer = self.install_full_snapshot(head.vote, snapshot).await;
            let answer = RaftAnswer::<C>::Snapshot(answer.map_err(err_text)?);
            encode(&answer).map_err(|err| err.to_string())
        })
    }

    fn heartbeat(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.is_leader() {
                // A stopped group has nothing to send; its own error surfaces elsewhere.
                let _ = self.trigger().heartbeat().await;
            }
        })
    }

    fn propose(&self, command: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let command: C::D = decode(&command).map_err(|err| err.to_string())?;
            let written = self.client_write(command).await.map_err(err_text)?;
            encode(&written.data).map_err(|err| err.to_string())
        })
    }

    fn read_index(&self) -> BoxFuture<'_, Result<u64, String>> {
        Box::pin(async move {
            let (read, _applied) = self
                .get_read_log_id(ReadPolicy::ReadIndex)
                .await
                .map_err(err_text)?;
            Ok(read.index())
        })
    }
}

fn err_text(err: impl std::fmt::Display) -> String {
    err.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`Frame`]'s first variants as they were encoded before their byte fields were marked
    /// `serde_bytes`: nodes of both versions must read each other's frames.
    #[derive(Serialize)]
    enum PlainFrame {
        Message(Vec<u8>),
        Chunk {
            transfer: u64,
            offset: u64,
            data: Vec<u8>,
        },
    }

    #[test]
    fn answers_encode_as_sequences_of_bytes_did() {
        let data: Vec<u8> = (0..=255).collect();
        let plain: Vec<Result<Vec<u8>, String>> = vec![Ok(data.clone()), Err("gone".into())];
        let answers: Answers = vec![Ok(ByteBuf::from(data)), Err("gone".into())];
        assert_eq!(encode(&answers).unwrap(), encode(&plain).unwrap());
    }

    #[test]
    fn byte_fields_encode_as_sequences_of_bytes_did() {
        let data: Vec<u8> = (0..=255).chain(0..=255).collect();
        assert_eq!(
            encode(&Frame::Message(data.clone())).unwrap(),
            encode(&PlainFrame::Message(data.clone())).unwrap()
        );
        let plain = PlainFrame::Chunk {
            transfer: 7,
            offset: 1 << 20,
            data: data.clone(),
        };
        let Frame::Chunk {
            transfer,
            offset,
            data: read,
        } = decode(&encode(&plain).unwrap()).unwrap()
        else {
            panic!("not a chunk");
        };
        assert_eq!((transfer, offset, read), (7, 1 << 20, data));
    }
}
