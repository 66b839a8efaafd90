//! Cluster administration results as Python classes: the cluster as the answering node sees it,
//! what adding or removing a node of the metadata group did, what a leader rebalance started
//! and the replica moves a replica rebalance started.

use pyo3::prelude::*;
use rapidmq_core as core;

/// The cluster as the answering node sees it. A single-node broker answers mode `single-node`
/// (the other fields empty).
#[pyclass(module = "rapidmq", name = "ClusterStatus", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct ClusterStatus {
    /// `single-node` or `cluster`.
    mode: String,
    /// The answering node's id.
    node_id: u64,
    /// The metadata group's leader, if there is one.
    leader_id: Option<u64>,
    /// The metadata group's term.
    term: u64,
    /// The metadata group's last applied index on the answering node.
    last_applied: Option<u64>,
    /// `voter`, `learner`, `not a member yet` or `removed` (empty in single-node mode).
    membership: String,
    /// The metadata group's members.
    nodes: Vec<ClusterNode>,
    /// Partitions whose replicas are moving (`rebalance_replicas`): started, not yet complete.
    moving_partitions: u32,
    /// The cluster's identity (empty in single-node mode, and on a joining node that has not
    /// learned it yet).
    cluster_id: String,
}

#[pymethods]
impl ClusterStatus {
    fn __repr__(&self) -> String {
        format!(
            "ClusterStatus(mode='{}', node_id={}, leader_id={:?}, term={}, membership='{}', \
             nodes={}, moving_partitions={}, cluster_id='{}')",
            self.mode,
            self.node_id,
            self.leader_id,
            self.term,
            self.membership,
            self.nodes.len(),
            self.moving_partitions,
            self.cluster_id
        )
    }
}

/// A node of the cluster's node table.
#[pyclass(module = "rapidmq", name = "ClusterNode", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct ClusterNode {
    id: u64,
    /// Node-to-node address.
    cluster_addr: String,
    /// Client gRPC address; empty until the node registered.
    grpc_addr: String,
    /// Client HTTP address; empty until the node registered.
    http_addr: String,
    /// Whether the answering node currently hears from it.
    reachable: bool,
    /// `voter` or `learner`.
    role: String,
    /// The last raft index the leader knows the node has (answered by the leader only).
    matched: Option<u64>,
}

#[pymethods]
impl ClusterNode {
    fn __repr__(&self) -> String {
        format!(
            "ClusterNode(id={}, cluster_addr='{}', role='{}', reachable={})",
            self.id,
            self.cluster_addr,
            self.role,
            if self.reachable { "True" } else { "False" }
        )
    }
}

/// What `add_node` or `remove_node` did.
#[pyclass(module = "rapidmq", name = "MembershipChange", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct MembershipChange {
    /// The metadata group's voters afterwards.
    voters: Vec<u64>,
    /// For the operator (already a voter, few voters left); empty when there is nothing to say.
    note: String,
}

#[pymethods]
impl MembershipChange {
    fn __repr__(&self) -> String {
        format!(
            "MembershipChange(voters={:?}, note='{}')",
            self.voters, self.note
        )
    }
}

/// What `rebalance_leaders` started.
#[pyclass(module = "rapidmq", name = "LeaderRebalance", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct LeaderRebalance {
    /// Leadership transfers started, summed over the nodes (each completes within about an
    /// election timeout).
    transfers: u64,
    /// Nodes that could not be asked (down or unreachable).
    unreachable: Vec<u64>,
}

#[pymethods]
impl LeaderRebalance {
    fn __repr__(&self) -> String {
        format!(
            "LeaderRebalance(transfers={}, unreachable={:?})",
            self.transfers, self.unreachable
        )
    }
}

/// One partition's replicas before and after a move that `rebalance_replicas` started (or
/// planned), preferred leader first.
#[pyclass(module = "rapidmq", name = "ReplicaMove", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct ReplicaMove {
    /// The topic's tenant.
    tenant: String,
    /// Topic name.
    topic: String,
    /// Partition index.
    partition: u32,
    /// The replicas before the move (`from_`: `from` is a Python keyword).
    from_: Vec<u64>,
    /// The replicas after it.
    to: Vec<u64>,
}

#[pymethods]
impl ReplicaMove {
    fn __repr__(&self) -> String {
        format!(
            "ReplicaMove(tenant='{}', topic='{}', partition={}, from_={:?}, to={:?})",
            self.tenant, self.topic, self.partition, self.from_, self.to
        )
    }
}

impl From<core::ClusterStatus> for ClusterStatus {
    fn from(s: core::ClusterStatus) -> Self {
        ClusterStatus {
            mode: s.mode,
            node_id: s.node_id,
            leader_id: s.leader_id,
            term: s.term,
            last_applied: s.last_applied,
            membership: s.membership,
            nodes: s.nodes.into_iter().map(ClusterNode::from).collect(),
            moving_partitions: s.moving_partitions,
            cluster_id: s.cluster_id,
        }
    }
}

impl From<core::ClusterNode> for ClusterNode {
    fn from(n: core::ClusterNode) -> Self {
        ClusterNode {
            id: n.id,
            cluster_addr: n.cluster_addr,
            grpc_addr: n.grpc_addr,
            http_addr: n.http_addr,
            reachable: n.reachable,
            role: n.role,
            matched: n.matched,
        }
    }
}

impl From<core::MembershipChange> for MembershipChange {
    fn from(c: core::MembershipChange) -> Self {
        MembershipChange {
            voters: c.voters,
            note: c.note,
        }
    }
}

impl From<core::LeaderRebalance> for LeaderRebalance {
    fn from(r: core::LeaderRebalance) -> Self {
        LeaderRebalance {
            transfers: r.transfers,
            unreachable: r.unreachable,
        }
    }
}

impl From<core::ReplicaMove> for ReplicaMove {
    fn from(m: core::ReplicaMove) -> Self {
        ReplicaMove {
            tenant: m.tenant,
            topic: m.topic,
            partition: m.partition,
            from_: m.from,
            to: m.to,
        }
    }
}
