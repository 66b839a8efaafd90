//! Cluster administration (docs/configuration.md, cluster section): the records and the
//! `NativeAdmin` calls for the cluster status, the metadata group's membership, handing
//! partition leadership back to the preferred replicas and moving partition replicas between
//! nodes. A single-node broker answers `cluster_status` with mode `single-node`.

use rapidmq_core as core;

use crate::admin::NativeAdmin;
use crate::error::Result;
use crate::runtime::on_runtime;

/// The cluster as the answering node sees it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ClusterStatus {
    /// `single-node` (the other fields empty) or `cluster`.
    pub mode: String,
    /// The answering node's id.
    pub node_id: u64,
    /// The metadata group's leader, if there is one.
    pub leader_id: Option<u64>,
    /// The metadata group's term.
    pub term: u64,
    /// The metadata group's last applied index on the answering node.
    pub last_applied: Option<u64>,
    /// `voter`, `learner`, `not a member yet` or `removed` (empty in single-node mode).
    pub membership: String,
    /// The metadata group's members.
    pub nodes: Vec<ClusterNode>,
    /// Partitions whose replicas are moving (`rebalance_replicas`): started, not yet complete.
    pub moving_partitions: u32,
    /// The cluster's identity; empty in single-node mode and on a joining node that has not
    /// learned it yet.
    pub cluster_id: String,
}

/// A node of the cluster's node table.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ClusterNode {
    pub id: u64,
    /// Node-to-node address.
    pub cluster_addr: String,
    /// Client gRPC address; empty until the node registered.
    pub grpc_addr: String,
    /// Client HTTP address; empty until the node registered.
    pub http_addr: String,
    /// Whether the answering node currently hears from it.
    pub reachable: bool,
    /// `voter` or `learner`.
    pub role: String,
    /// The last raft index the leader knows the node has (answered by the leader only).
    pub matched: Option<u64>,
}

/// What `add_node` or `remove_node` did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MembershipChange {
    /// The metadata group's voters afterwards.
    pub voters: Vec<u64>,
    /// For the operator (already a voter, few voters left); empty when there is nothing to say.
    pub note: String,
}

/// What `rebalance_leaders` started.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LeaderRebalance {
    /// Leadership transfers started, summed over the nodes (each completes within about an
    /// election timeout).
    pub transfers: u64,
    /// Nodes that could not be asked (down or unreachable).
    pub unreachable: Vec<u64>,
}

/// One partition's replicas before and after a move that `rebalance_replicas` started (or
/// planned), preferred leader first.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReplicaMove {
    /// The topic's tenant.
    pub tenant: String,
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// The replicas before the move.
    pub from: Vec<u64>,
    /// The replicas after it.
    pub to: Vec<u64>,
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
            nodes: s.nodes.into_iter().map(Into::into).collect(),
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
            from: m.from,
            to: m.to,
        }
    }
}

#[uniffi::export]
impl NativeAdmin {
    /// The cluster as the answering node sees it.
    pub async fn cluster_status(&self) -> Result<ClusterStatus> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin.cluster_status().await.map(Into::into)
        })
        .await
    }

    /// Adds node `id`, reached by the other nodes at `cluster_addr`, to the metadata group.
    pub async fn add_node(&self, id: u64, cluster_addr: String) -> Result<MembershipChange> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin.add_node(id, cluster_addr).await.map(Into::into)
        })
        .await
    }

    /// Removes node `id` from the metadata group.
    pub async fn remove_node(&self, id: u64) -> Result<MembershipChange> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin.remove_node(id).await.map(Into::into)
        })
        .await
    }

    /// Hands each partition's leadership back to its preferred replica, on every node.
    pub async fn rebalance_leaders(&self) -> Result<LeaderRebalance> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin.rebalance_leaders().await.map(Into::into)
        })
        .await
    }

    /// Moves partition replicas so each voting node holds an even share, first off the nodes
    /// in `exclude`; with `dry_run`, only plans. The moves started (or planned).
    pub async fn rebalance_replicas(
        &self,
        exclude: Vec<u64>,
        dry_run: bool,
    ) -> Result<Vec<ReplicaMove>> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            let moves = admin.rebalance_replicas(&exclude, dry_run).await?;
            Ok(moves.into_iter().map(Into::into).collect())
        })
        .await
    }
}
