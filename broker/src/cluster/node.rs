//! A broker process in cluster mode: its `Cluster` listener, the metadata group (group
//! [`METADATA`] on the broker's own store), the heartbeat task, the leader-balance rounds
//! ([`leaders`]), and the registration of this node's client addresses in the
//! node table.
//!
//! The lowest node id of `cluster.peers` initializes the membership when the group never was
//! (openraft refuses a second initialize: that is the normal restart). Every node, once a leader
//! exists, proposes `RegisterNode` with its addresses until the table holds them; a follower
//! sends it to the leader with `Cluster.Propose`.
//!
//! A node started with `cluster.join` (`--join`), or whose id is not the lowest of its
//! `cluster.peers`, never initializes: a node started to join a running cluster waits, "not a
//! member yet", until `rapidmq cluster add-node` adds it ([`members`](super::members)). Status lists the group's membership as this node knows it.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::join_all;
use openraft::Instant as _;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, Raft, ServerState, SnapshotPolicy};
use parking_lot::Mutex;
use serde_bytes::ByteBuf;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;

use super::identity::ClusterIdentity;
use super::leaders::{self, JointWatch, LeaderBalance};
use super::members::{MemberChange, Members};
use super::metadata::{Metadata, Proposer};
use super::network::RPC_TIMEOUT;
use super::node_table::{METADATA, MetaCommand, MetaConfig, NodeInfo, NodeTable, Table};
use super::partitions::{Addresses, PartitionHosting};
use super::rebuild;
use super::rpc::{self, Rpc};
use super::service::RelayHandler;
use super::{
    GroupNetwork, GroupStateMachine, Groups, LogStore, NodeTls, Peers, answer_timeout_ms, encode,
    group_config,
};
use crate::config::ClusterConfig;
use crate::engine::Engine;
use crate::error::{Error, Result};

pub(super) type MetaRaft = Raft<MetaConfig, GroupStateMachine<MetaConfig, Metadata>>;

/// How long a failed registration waits before it tries again.
const RETRY: Duration = Duration::from_millis(300);

/// This node's part of the cluster, running until [`ClusterNode::shutdown`].
pub struct ClusterNode {
    id: u64,
    raft: MetaRaft,
    table: Table,
    peers: BTreeMap<u64, String>,
    network: Peers,
    members: Arc<Members>,
    balance: Arc<LeaderBalance>,
    groups: Arc<Groups>,
    addresses: Arc<Addresses>,
    tls: NodeTls,
    election_timeout: Duration,
    tasks: Vec<JoinHandle<()>>,
    server: Mutex<Option<(watch::Sender<bool>, JoinHandle<()>)>>,
}

/// What [`ClusterNode::status`] reports.
#[derive(Debug, Clone)]
pub struct ClusterStatus {
    pub node_id: u64,
    pub leader: Option<u64>,
    pub term: u64,
    pub last_applied: Option<u64>,
    /// This node's part in the group: `voter`, `learner`, `not a member yet` (it never was),
    /// or `removed` (the membership it last saw leaves it out).
    pub membership: String,
    pub nodes: Vec<NodeStatus>,
    /// The cluster's id; `None` on a joining node that has not learned it yet.
    pub cluster_id: Option<String>,
}

/// What [`ClusterNode::rebalance_leaders`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rebalanced {
    /// Leadership transfers started, on all nodes.
    pub transfers: u64,
    /// Nodes that could not be asked (down, unreachable).
    pub unreachable: Vec<u64>,
}

/// A node of the table, or of the peers not registered yet.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub id: u64,
    pub cluster_addr: String,
    /// Empty until the node registered.
    pub grpc_addr: String,
    pub http_addr: String,
    /// As this node sees it: itself always; a leader, each follower that acked within an
    /// election timeout; a follower, the leader it follows (and no one else).
    pub reachable: bool,
    /// `voter` or `learner`.
    pub role: String,
    /// The last log index the leader knows the node has (known on the leader only).
    pub matched: Option<u64>,
}

impl ClusterNode {
    /// Listens on `cluster.cluster_addr`, opens the metadata group on the engine's store and
    /// starts the heartbeat and registration tasks. `me` is this node's client-facing
    /// addresses; `tls` secures the listener and the connections to the peers. From here on
    /// the engine's metadata commands are proposed to the group ([`Engine::set_meta_log`]),
    /// which applies them into `engine` on every node.
    pub async fn start(
        cluster: &ClusterConfig,
        tls: NodeTls,
        engine: Arc<Engine>,
        me: NodeInfo,
    ) -> Result<ClusterNode> {
        let store = engine.disk_store();
        let invalid = |err: crate::config::ConfigError| Error::invalid(err.to_string());
        let peers = cluster.peer_map().map_err(invalid)?;
        let listen = cluster.listen_addr().map_err(invalid)?;
        let id = cluster.node_id;
        let listener = TcpListener::bind(listen).await.map_err(|err| {
            Error::unavailable(format!("cannot bind cluster address {listen}: {err}"))
        })?;
        let identity = {
            let (store, peers, join) = (Arc::clone(&store), peers.clone(), cluster.join);
            let configured = cluster.id.clone();
            tokio::task::spawn_blocking(move || {
                ClusterIdentity::open(store, &configured, &peers, join)
            })
            .await
            .map_err(|err| Error::internal(format!("reading the cluster id: {err}")))?
            .map_err(Error::invalid)?
        };
        match identity.id() {
            Some(cluster_id) => tracing::info!(cluster_id, "cluster identity"),
            None => tracing::info!("no cluster id yet: taken from the cluster that adds this node"),
        }
        let tls = tls.with_identity(identity.clone());

        let mut config = group_config("rapidmq");
        config.heartbeat_interval = answer_timeout_ms(cluster.election_timeout_min_ms);
        config.election_timeout_min = cluster.election_timeout_min_ms;
        config.election_timeout_max = cluster.election_timeout_max_ms;
        config.snapshot_policy = SnapshotPolicy::LogsSinceLast(cluster.snapshot_every_entries);
        config.max_in_snapshot_log_to_keep = cluster.snapshot_every_entries;
        let config = Arc::new(
            config
                .validate()
                .map_err(|err| Error::invalid(format!("cluster timeouts: {err}")))?,
        );
        let app_store = Arc::clone(&store);
        let nodes = tokio::task::spawn_blocking(move || NodeTable::open(&*app_store))
            .await
            .map_err(|err| Error::internal(format!("opening the node table: {err}")))?
            .map_err(|err| Error::internal(err.to_string()))?;
        let table = nodes.table();
        let app = Metadata::new(nodes, Arc::clone(&engine));
        let machine = GroupStateMachine::open(Arc::clone(&store), METADATA, app)
            .map_err(|err| Error::internal(err.to_string()))?;
        let counters = Arc::clone(&engine.metrics().cluster_counters);
        let routes = peers.clone().into_iter().collect();
        let network = Peers::counted(tls.clone(), routes, Arc::clone(&counters));
        let groups = Groups::new();
        groups.publisher().set(&engine);
        // Before the metadata group applies anything: topics open on their partition groups.
        let addresses = Arc::new(Addresses::new(peers.clone()));
        let rebalance = Duration::from_millis(cluster.leader_rebalance_interval_ms);
        let balance = Arc::new(LeaderBalance::new(
            id,
            Duration::from_millis(cluster.election_timeout_min_ms),
            rebalance,
            Arc::clone(&counters),
        ));
        groups.set_balance(Arc::clone(&balance));
        let hosting = PartitionHosting::new(
            id,
            Arc::clone(&store),
            Arc::clone(&groups),
            network.clone(),
            Arc::clone(&config),
            Arc::clone(&addresses),
            tls.clone(),
            counters,
            Arc::clone(&balance),
        );
        engine.set_partition_host(Arc::new(hosting)).await?;
        let damage = rebuild::watch_damage(&store, Arc::downgrade(&engine));
        let log = LogStore::new(store, METADATA);
        let mut machine = machine;
        machine.follow_log(log.tail());
        let raft = Raft::new(
            id,
            config,
            GroupNetwork::new(id, METADATA, network.clone()),
            log,
            machine,
        )
        .await
        .map_err(|err| Error::internal(format!("starting the metadata group: {err}")))?;
        addresses.set_metadata(raft.clone());
        engine.set_meta_log(Arc::new(Proposer::new(
            id,
            raft.clone(),
            peers.clone(),
            tls.clone(),
        )));

        let members = Arc::new(Members::new(id, raft.clone(), peers.clone(), tls.clone()));
        groups.insert(METADATA, Arc::new(raft.clone()));
        groups.set_members(members.clone());
        let (stop, mut stopped) = watch::channel(false);
        let router = tonic::transport::Server::builder()
            // A replication request carries whole producer batches, often several hundred KiB:
            // with h2's 64 KiB default window its sender waits for window updates from the
            // receiver mid-request, and its 16 KiB frames come in many pieces. On one machine
            // the change was within the noise (docs/benchmarks.md, "fewer copies and wider
            // HTTP/2 windows"); between machines each update is a network round trip.
            .initial_stream_window_size(Some(rpc::STREAM_WINDOW))
            .initial_connection_window_size(Some(rpc::CONNECTION_WINDOW))
            .max_frame_size(Some(rpc::MAX_FRAME))
            .add_service(InterceptedService::new(
                groups.service(stop.subscribe()),
                identity.check(),
            ));
        let server_tls = tls.clone();
        let server = tokio::spawn(async move {
            let served = server_tls
                .serve(router, listener, async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(err) = served {
                tracing::error!(cause = %err, "cluster listener failed");
            }
        });
        let mut tasks = vec![
            groups.drive_heartbeats(Duration::from_millis(cluster.heartbeat_ms)),
            damage,
        ];
        if !rebalance.is_zero() {
            tasks.push(balance.drive(rebalance));
        }
        tasks.push(balance.drive_joint_changes(JOINT_LOOKS));
        tasks.push(finish_metadata_joint(raft.clone(), id));

        if !cluster.join && peers.keys().next() == Some(&id) {
            let members: BTreeMap<u64, BasicNode> = peers
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr)))
                .collect();
            match raft.initialize(members).await {
                Ok(()) => tracing::info!(node_id = id, "initialized the metadata group"),
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
                    tracing::debug!("the metadata group was initialized before")
                }
                Err(err) => {
                    return Err(Error::internal(format!(
                        "initializing the metadata group: {err}"
                    )));
                }
            }
        }
        tasks.push(tokio::spawn(register(
            id,
            me,
            raft.clone(),
            Arc::clone(&table),
            peers.clone(),
            tls.clone(),
        )));
        tracing::info!(node_id = id, %listen, peers = peers.len(), "cluster mode");
        Ok(ClusterNode {
            id,
            raft,
            table,
            peers,
            network,
            members,
            balance,
            groups,
            addresses,
            tls,
            election_timeout: Duration::from_millis(cluster.election_timeout_min_ms),
            tasks,
            server: Mutex::new(Some((stop, server))),
        })
    }

    /// Serves `Cluster.Relay` with `handler` (this node's REST layer) while it lives.
    pub fn serve_relay(&self, handler: Weak<dyn RelayHandler>) {
        self.groups.set_relay(handler);
    }

    /// Hands `ask` to node `node`'s REST layer (`Cluster.Relay`) and returns its answer, within
    /// `timeout`. The error names the node.
    pub async fn relay(
        &self,
        node: u64,
        ask: Vec<u8>,
        timeout: Duration,
    ) -> std::result::Result<Vec<u8>, String> {
        let addr = self
            .addresses
            .get(node)
            .ok_or_else(|| format!("node {node} has no known cluster address"))?;
        let answer: ByteBuf = rpc::call(&self.tls, &addr, timeout, Rpc::Relay, &ByteBuf::from(ask))
            .await
            .map_err(|err| format!("node {node}: {err}"))?;
        Ok(answer.into_vec())
    }

    /// The metadata group as this node sees it: its membership, each member with its
    /// addresses as the node table holds them.
    /// The node table: each registered node's client addresses (`GetMetadata`, leader hints).
    pub fn nodes(&self) -> BTreeMap<u64, NodeInfo> {
        self.table.read().clone()
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The metadata group's voters as this node knows them.
    pub fn voters(&self) -> Vec<u64> {
        self.raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    }

    pub fn status(&self) -> ClusterStatus {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let leading = metrics.state == ServerState::Leader;
        let table = self.table.read().clone();
        let membership = metrics.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        let membership_index = metrics
            .membership_config
            .log_id()
            .as_ref()
            .map_or(0, |log_id| log_id.index);
        let mine = if self.members.removed(membership_index) {
            "removed"
        } else if voters.contains(&self.id) {
            "voter"
        } else if membership.get_node(&self.id).is_some() {
            "learner"
        } else if membership.nodes().next().is_none() {
            "not a member yet"
        } else {
            "removed"
        };
        let replication = metrics.replication.as_ref();
        let nodes = membership
            .nodes()
            .map(|(&id, node)| {
                let reachable = if id == self.id {
                    true
                } else if leading {
                    metrics
                        .heartbeat
                        .as_ref()
                        .and_then(|acks| acks.get(&id).copied().flatten())
                        .is_some_and(|acked| acked.elapsed() < self.election_timeout)
                } else {
                    metrics.current_leader == Some(id)
                };
                let info = table.get(&id);
                NodeStatus {
                    id,
                    cluster_addr: self.peers.get(&id).cloned().unwrap_or(node.addr.clone()),
                    grpc_addr: info.map(|n| n.grpc_addr.clone()).unwrap_or_default(),
                    http_addr: info.map(|n| n.http_addr.clone()).unwrap_or_default(),
                    reachable,
                    role: if voters.contains(&id) {
                        "voter"
                    } else {
                        "learner"
                    }
                    .to_string(),
                    matched: if id == self.id && leading {
                        metrics.last_log_index
                    } else {
                        replication
                            .and_then(|r| r.get(&id).cloned().flatten())
                            .map(|log_id| log_id.index)
                    },
                }
            })
            .collect();
        ClusterStatus {
            node_id: self.id,
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_applied: metrics.last_applied.map(|log_id| log_id.index),
            membership: mine.to_string(),
            nodes,
            cluster_id: self.tls.identity().id().map(str::to_string),
        }
    }

    /// Adds node `id`, reached at `cluster_addr`, to the metadata group as a voter, through
    /// the leader ([`members`](super::members)).
    pub async fn add_node(&self, id: u64, cluster_addr: String) -> Result<super::members::Changed> {
        self.members
            .change(MemberChange::Add {
                id,
                addr: cluster_addr,
            })
            .await
    }

    /// Removes node `id` from the metadata group, through the leader.
    pub async fn remove_node(&self, id: u64) -> Result<super::members::Changed> {
        self.members.change(MemberChange::Remove { id }).await
    }

    /// Hands partition leadership back to preferred replicas now, on every node: a round here,
    /// and one on each other voter of the metadata group, asked at once. Transfers started, and
    /// the nodes that could not be asked.
    pub async fn rebalance_leaders(&self) -> Rebalanced {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let others: Vec<u64> = metrics
            .membership_config
            .membership()
            .voter_ids()
            .filter(|&id| id != self.id)
            .collect();
        let asked = others.iter().map(|&id| async move {
            let answer = match leader_addr(&self.raft, &self.peers, id) {
                Some(addr) => leaders::ask(&self.tls, &addr).await,
                None => Err(format!("no cluster address for node {id}")),
            };
            answer.map_err(|err| {
                tracing::warn!(node_id = id, cause = %err, "asking a node to rebalance leaders");
                id
            })
        });
        let (here, there) = tokio::join!(self.balance.round(), join_all(asked));
        let mut rebalanced = Rebalanced {
            transfers: here as u64,
            unreachable: Vec::new(),
        };
        for answer in there {
            match answer {
                Ok(started) => rebalanced.transfers += started,
                Err(id) => rebalanced.unreachable.push(id),
            }
        }
        rebalanced
    }

    /// Reports the metadata group's figures to `metrics` until the group shuts down.
    pub fn report_to(&self, metrics: Arc<crate::observability::Metrics>) -> JoinHandle<()> {
        super::observe::spawn::<MetaConfig>("metadata", self.raft.metrics(), metrics)
    }

    /// Stops the tasks, the metadata group and the listener. Takes `&self`: the transports
    /// may still hold the handle when the broker shuts down.
    pub async fn shutdown(&self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Err(err) = self.raft.shutdown().await {
            tracing::warn!(cause = %err, "stopping the metadata group");
        }
        let server = self.server.lock().take();
        if let Some((stop, server)) = server {
            let _ = stop.send(true);
            let _ = server.await;
        }
        self.network.close();
    }
}

/// How often a node looks for groups it leads that a membership change left joint.
const JOINT_LOOKS: Duration = Duration::from_secs(1);

/// Finishes, while node `me` leads the metadata group, a membership change (`cluster add-node`,
/// `remove-node`) that a former leader left joint (`leaders.rs`, "Membership changes left
/// halfway"); a removed voter leaves the group, as `remove-node` asks.
fn finish_metadata_joint(raft: MetaRaft, me: u64) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut joint = JointWatch::default();
        let mut looks = tokio::time::interval(JOINT_LOOKS);
        looks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            looks.tick().await;
            if joint.stuck(&raft, me) {
                leaders::finish_joint(&raft, METADATA, false).await;
            }
        }
    })
}

/// Proposes `RegisterNode` for this node until the table holds `me`.
async fn register(
    id: u64,
    me: NodeInfo,
    raft: MetaRaft,
    table: Table,
    peers: BTreeMap<u64, String>,
    tls: NodeTls,
) {
    let command = MetaCommand::RegisterNode {
        id,
        node: me.clone(),
    };
    let mut metrics = raft.metrics();
    loop {
        if table.read().get(&id) == Some(&me) {
            tracing::info!(node_id = id, "registered in the node table");
            return;
        }
        let leader = metrics.borrow_watched().current_leader;
        let Some(leader) = leader else {
            // No leader yet: wait until the metrics change.
            if metrics.changed().await.is_err() {
                return;
            }
            continue;
        };
        let written = if leader == id {
            raft.client_write(command.clone())
                .await
                .map(|_| ())
                .map_err(|err| err.to_string())
        } else {
            match leader_addr(&raft, &peers, leader) {
                Some(addr) => propose(&tls, &addr, &command).await.map(|_| ()),
                None => Err(format!("no address for the leader, node {leader}")),
            }
        };
        if let Err(err) = written {
            tracing::debug!(cause = %err, leader, "registering in the node table; retrying");
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// Where this node reaches node `id`: its own `cluster.peers` first, else the address the
/// group's membership holds (a node added with `cluster add-node`).
pub(super) fn leader_addr(
    raft: &MetaRaft,
    peers: &BTreeMap<u64, String>,
    id: u64,
) -> Option<String> {
    if let Some(addr) = peers.get(&id) {
        return Some(addr.clone());
    }
    let metrics = raft.metrics().borrow_watched().clone();
    metrics
        .membership_config
        .membership()
        .get_node(&id)
        .map(|node| node.addr.clone())
}

/// Sends `command` to the metadata leader at `addr` (its cluster address); returns its encoded
/// reply.
pub(super) async fn propose(
    tls: &NodeTls,
    addr: &str,
    command: &MetaCommand,
) -> std::result::Result<Vec<u8>, String> {
    let command = encode(command).map_err(|err| err.to_string())?;
    let request = (METADATA, serde_bytes::Bytes::new(&command));
    rpc::call::<std::result::Result<ByteBuf, String>>(
        tls,
        addr,
        RPC_TIMEOUT,
        Rpc::Propose,
        &request,
    )
    .await?
    .map(ByteBuf::into_vec)
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
