//! One node's calls of another's `Cluster` service besides the raft traffic (which
//! [`network`](super::network) batches): a postcard-encoded request in a `RaftBatch`, a
//! postcard-encoded reply in another.

use std::fmt::Display;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::proto::RaftBatch;
use super::{NodeTls, decode, encode};

/// The HTTP/2 flow-control window of one stream of the cluster listener and of a channel to
/// it: a replication request of a few MiB goes out without waiting for window updates.
pub const STREAM_WINDOW: u32 = 8 << 20;
/// The flow-control window of one cluster connection, shared by its streams.
pub const CONNECTION_WINDOW: u32 = 32 << 20;
/// The largest HTTP/2 frame a node accepts: a 100 KiB batch in a few frames, not seven.
pub const MAX_FRAME: u32 = 1 << 20;

/// The `Cluster` RPCs [`call`] makes.
#[derive(Debug, Clone, Copy)]
pub enum Rpc {
    Propose,
    ReadIndex,
    ReadView,
    ChangeMembers,
    RebalanceLeaders,
    RebuildReplica,
    Publish,
    ReadBatches,
    Relay,
}

/// Calls `rpc` on the node whose cluster listener is `addr`, within `timeout`, with `request`
/// encoded, and decodes the reply as a `T`. The error is the bare cause: the caller names the
/// node and what it asked.
pub async fn call<T: DeserializeOwned>(
    tls: &NodeTls,
    addr: &str,
    timeout: Duration,
    rpc: Rpc,
    request: &impl Serialize,
) -> Result<T, String> {
    let text = |err: &dyn Display| err.to_string();
    // A stored batch may be larger than tonic's 4 MiB default.
    let mut client = tls
        .client(addr, timeout)?
        .max_decoding_message_size(usize::MAX);
    let request = RaftBatch {
        payload: encode(request).map_err(|err| text(&err))?.into(),
    };
    let reply = match rpc {
        Rpc::Propose => client.propose(request).await,
        Rpc::ReadIndex => client.read_index(request).await,
        Rpc::ReadView => client.read_view(request).await,
        Rpc::ChangeMembers => client.change_members(request).await,
        Rpc::RebalanceLeaders => client.rebalance_leaders(request).await,
        Rpc::RebuildReplica => client.rebuild_replica(request).await,
        Rpc::Publish => client.publish(request).await,
        Rpc::ReadBatches => client.read_batches(request).await,
        Rpc::Relay => client.relay(request).await,
    }
    .map_err(|err| text(&err))?
    .into_inner();
    decode(&reply.payload).map_err(|err| text(&err))
}
