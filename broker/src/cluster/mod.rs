//! Raft storage and node-to-node transport for RapidMQ's raft groups (issue 17,
//! docs/adr/0005-clustering.md).
//!
//! Every node runs one openraft group for metadata and one per partition replica it holds. All of
//! them share the node's one [`Store`](crate::storage::Store): nothing here names RocksDB.
//!
//! - [`keys`]: the key layout: `group_id u64 BE | raft_index u64 BE` in `raft_log`, one small
//!   record per group and kind in `raft_state`. Big-endian keeps RocksDB's order numeric.
//! - [`LogStore`]: openraft's `RaftLogStorage` for one group: entries, vote, committed and last
//!   purged log ids. `append` reports "flushed" only after the synced write returned.
//! - [`GroupStateMachine`]: openraft's `RaftStateMachine` for one group, over an [`Apply`] that
//!   the engine implements: last applied log id and membership are written in the same batch as
//!   the application's own changes, and memory changes only after that write; a snapshot's
//!   data is stored and installed whole (a partition group's is a small record whose batches
//!   stream beside it, `wire::SnapshotSource`/`SnapshotSink`).
//! - [`node`], [`node_table`], [`metadata`]: a broker process in cluster mode: its listener,
//!   the metadata group, its entries (`RegisterNode`, and the engine's metadata commands), its
//!   state machine's application (the node table plus the engine) and the proposer through
//!   which the engine's `apply` reaches the group.
//! - [`members`]: adding and removing nodes of the metadata group (`cluster add-node`,
//!   `remove-node`): learner, catch-up, promotion by joint consensus, forwarded to the leader
//!   with `Cluster.ChangeMembers`.
//! - [`observe`]: a task per group that pushes its figures (term, leader, leader changes,
//!   replication lag) to the broker's metrics, for `/metrics` and the dashboard.
//! - [`tls`]: how nodes serve and reach each other: mutual TLS against the cluster CA when the
//!   broker's TLS is on, plaintext otherwise.
//! - [`partition_group`]: a partition's group: its entries (appends, trims) applied on every
//!   replica with the single-node writer's commit logic, so offsets and idempotent-producer
//!   answers are the same on every replica.
//! - [`partitions`], [`partition_writer`]: the partition groups a broker process hosts (one
//!   per partition it is a replica of, opened and dropped with their topics), and the
//!   engine's write side of a partition over its group: appends proposed on the leader or
//!   forwarded to it with `Cluster.Propose`, trims (retention) on the leader only.
//! - [`leaders`]: leadership returning to each partition's preferred replica after a failover:
//!   a periodic round on every node, and `rapidmq cluster rebalance-leaders` (`Cluster.RebalanceLeaders`
//!   asks every node for a round at once).
//! - [`rebuild`]: a partition replica whose stored batches fail their checksums rebuilds its
//!   copy from the other replicas: a learner first (so it never counts towards a majority of
//!   what it dropped), then emptied, caught up by the leader, and a voter again.
//! - [`network`], [`service`], [`wire`]: node-to-node raft traffic. Each group's messages to a
//!   peer go on that peer's one queue, and one sender task per peer sends what is queued as one
//!   request on its `Cluster.RaftStream` to the peer; the server hands each message to its group's `Raft` ([`Groups`]),
//!   which also runs the node's one heartbeat task, so idle groups' heartbeats coalesce.
//!
//! Built on openraft `=0.10.0-alpha.37` (pinned: pre-vote exists only in 0.10). The storage
//! traits return `io::Error`; `io_err` carries a `StorageError` into one.
//!
//! Entries and records are encoded with `postcard` (serde, compact, a stable wire format), never
//! JSON. Store calls block, so they run on the blocking pool.

mod forward;
pub mod identity;
pub mod keys;
pub mod leaders;
mod log_store;
pub mod members;
pub mod metadata;
pub mod network;
pub mod node;
pub mod node_table;
pub mod observe;
pub mod partition_group;
pub mod partition_writer;
pub mod partitions;
pub mod rebuild;
mod rpc;
pub mod service;
mod state_machine;
pub mod tls;
pub mod wire;

pub use keys::GroupId;
pub use log_store::{LogStore, LogWriter, Purge, drop_group};
pub use network::{GroupNetwork, NodeId, Peers};
pub use service::{Groups, answer_timeout_ms, group_config};
pub use state_machine::{Apply, GroupStateMachine, SnapshotBuilder};
pub use tls::NodeTls;

/// The generated `Cluster` service (`proto/rapidmq/cluster/v1/cluster.proto`, built by
/// `build.rs`).
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("rapidmq.cluster.v1");
}

use std::sync::Arc;

use openraft::RaftTypeConfig;
use openraft::type_config::alias::{DefaultEntryOf, EntryPayloadOf};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::storage::{Cf, StorageError, Store};

/// The openraft types of a group whose entries are openraft's own `Entry` with an
/// `EntryPayload` (blank, normal or membership), which is what the state machine reads.
pub trait GroupConfig:
    RaftTypeConfig<Entry = DefaultEntryOf<Self>, Payload = EntryPayloadOf<Self>>
{
}

impl<C> GroupConfig for C where
    C: RaftTypeConfig<Entry = DefaultEntryOf<C>, Payload = EntryPayloadOf<C>>
{
}

/// Encodes a log entry or a raft state record into a buffer of exactly its size. A replicated
/// batch is a few hundred KiB: grown as it is written, its buffer would be copied and its fresh
/// pages faulted in once more at each doubling.
fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    let failed = |err: postcard::Error| StorageError(format!("encode raft record: {err}"));
    let size = postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
        .map_err(failed)?;
    postcard::serialize_with_flavor(value, Presized(Vec::with_capacity(size))).map_err(failed)
}

/// A postcard output into a `Vec` made large enough beforehand.
struct Presized(Vec<u8>);

impl postcard::ser_flavors::Flavor for Presized {
    type Output = Vec<u8>;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// Decodes what [`encode`] wrote.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError> {
    postcard::from_bytes(bytes).map_err(|err| StorageError(format!("decode raft record: {err}")))
}

/// A storage error as the `io::Error` openraft's storage traits return.
fn io_err(err: impl std::borrow::Borrow<StorageError>) -> std::io::Error {
    std::io::Error::other(err.borrow().to_string())
}

/// Reads and decodes `group`'s `kind` record from `raft_state`.
fn read_state<T: DeserializeOwned>(
    store: &dyn Store,
    group: GroupId,
    kind: keys::StateKey,
) -> Result<Option<T>, StorageError> {
    store
        .get(Cf::RaftState, &keys::state(group, kind))?
        .map(|bytes| decode(&bytes))
        .transpose()
}

/// Runs a blocking store call on the blocking pool.
async fn blocking<T, F>(store: &Arc<dyn Store>, call: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Store) -> Result<T, StorageError> + Send + 'static,
{
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || call(&*store))
        .await
        .map_err(|err| StorageError(format!("raft storage task: {err}")))?
}

#[cfg(test)]
mod tests;
