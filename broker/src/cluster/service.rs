//! The server side of node-to-node raft traffic: the `Cluster` gRPC service and the registry of
//! the groups this node hosts.
//!
//! A `Cluster.Raft` RPC carries the messages of many groups; each goes to its group's `Raft`
//! handle (all at once: a vote in one group never waits behind another group's append), and the
//! answers go back together in one response, in the order of the messages.
//!
//! The registry also runs the node's one heartbeat task. Groups are built with openraft's own
//! heartbeat off ([`group_config`]); every heartbeat interval the task asks every group this
//! node leads to send its heartbeat at once, so the peer queues coalesce them (see
//! [`network`](super::network)): idle groups cost one or two RPCs per peer per interval, however
//! many there are.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use parking_lot::RwLock;
use tonic::{Request, Response, Status};

use super::keys::GroupId;
use super::members::MembersHandle;
use super::proto::RaftBatch;
use super::proto::cluster_server::{Cluster, ClusterServer};
use super::wire::{Answers, GroupHandle, Requests};
use super::{decode, encode};

/// The raft settings of every group (ADR 5 §4): heartbeat every 300 ms, sent by the node's
/// heartbeat task rather than by each group, elections after 1.5–3 s of silence, pre-vote on.
pub fn group_config(cluster_name: &str) -> openraft::Config {
    openraft::Config {
        cluster_name: cluster_name.to_string(),
        heartbeat_interval: HEARTBEAT.as_millis() as u64,
        election_timeout_min: 1500,
        election_timeout_max: 3000,
        enable_heartbeat: false,
        enable_pre_vote: Some(true),
        ..openraft::Config::default()
    }
}

/// How often the node's leaders send heartbeats.
pub const HEARTBEAT: Duration = Duration::from_millis(300);

/// The raft groups this node hosts, by group id.
#[derive(Default)]
pub struct Groups {
    groups: RwLock<HashMap<GroupId, Arc<dyn GroupHandle>>>,
    /// Where `Cluster.ChangeMembers` goes (the metadata group's membership).
    members: RwLock<Option<Arc<dyn MembersHandle>>>,
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

    /// Stops routing messages to `group`.
    pub fn remove(&self, group: GroupId) -> Option<Arc<dyn GroupHandle>> {
        self.groups.write().remove(&group)
    }

    /// Answers `Cluster.ChangeMembers` with `members`.
    pub fn set_members(&self, members: Arc<dyn MembersHandle>) {
        *self.members.write() = Some(members);
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
                for group in groups.all() {
                    group.heartbeat().await;
                }
            }
        })
    }

    /// The `Cluster` gRPC service over these groups.
    pub fn service(self: &Arc<Self>) -> ClusterServer<ClusterService> {
        ClusterServer::new(ClusterService {
            groups: Arc::clone(self),
        })
        .max_decoding_message_size(usize::MAX)
    }

    /// Answers the messages of one batch, each from its group, all at once.
    async fn answer(&self, requests: Requests) -> Answers {
        join_all(requests.into_iter().map(|(group, message)| async move {
            match self.get(group) {
                Some(handle) => handle.handle(message).await,
                None => Err(format!("group {group} is not hosted on this node")),
            }
        }))
        .await
    }
}

/// The `Cluster` gRPC service.
pub struct ClusterService {
    groups: Arc<Groups>,
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn raft(&self, request: Request<RaftBatch>) -> Result<Response<RaftBatch>, Status> {
        let requests: Requests = decode(&request.into_inner().payload)
            .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let answers = self.groups.answer(requests).await;
        let payload = encode(&answers).map_err(|err| Status::internal(err.to_string()))?;
        Ok(Response::new(RaftBatch {
            payload: payload.into(),
        }))
    }

    async fn propose(&self, request: Request<RaftBatch>) -> Result<Response<RaftBatch>, Status> {
        let (group, command): (GroupId, Vec<u8>) = decode(&request.into_inner().payload)
            .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let answer: Result<Vec<u8>, String> = match self.groups.get(group) {
            Some(handle) => handle.propose(command).await,
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
}
