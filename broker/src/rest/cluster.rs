//! `/v1/cluster`: the cluster as this node sees it (the `Admin.GetClusterStatus` RPC).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::RestState;
use super::error::{ApiError, Json, Problem};
use crate::auth::{Action, Resource};
use crate::cluster::node::ClusterNode;
use crate::principal::Principal;

/// The node's cluster handle, or `None` in single-node mode (an extension of the router).
pub type ClusterHandle = Option<Arc<ClusterNode>>;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterStatus {
    /// `single-node` (no raft) or `cluster`.
    pub mode: String,
    /// This node's id; absent in single-node mode.
    pub node_id: Option<u64>,
    /// The metadata group's leader as this node knows it.
    pub leader_id: Option<u64>,
    pub term: u64,
    /// The metadata group's last applied raft index on this node.
    pub last_applied: Option<u64>,
    pub nodes: Vec<ClusterNodeStatus>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterNodeStatus {
    pub id: u64,
    pub cluster_addr: String,
    /// Empty until the node registered in the node table.
    pub grpc_addr: String,
    pub http_addr: String,
    /// Whether this node currently hears from it (a leader: acked within an election
    /// timeout; a follower: it is the leader it follows; itself: always).
    pub reachable: bool,
}

/// The cluster's status as this node sees it.
#[utoipa::path(get, path = "/v1/cluster", tag = "broker",
    responses(
        (status = 200, description = "Cluster status", body = ClusterStatus),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Extension(cluster): Extension<ClusterHandle>,
) -> Result<Json<ClusterStatus>, ApiError> {
    state
        .engine
        .auth()
        .authorize(&principal, Action::Describe, Resource::Cluster)?;
    Ok(Json(status(cluster.as_deref())))
}

/// The status of `cluster`, or of a single node.
pub fn status(cluster: Option<&ClusterNode>) -> ClusterStatus {
    let Some(cluster) = cluster else {
        return ClusterStatus {
            mode: "single-node".to_string(),
            node_id: None,
            leader_id: None,
            term: 0,
            last_applied: None,
            nodes: Vec::new(),
        };
    };
    let status = cluster.status();
    ClusterStatus {
        mode: "cluster".to_string(),
        node_id: Some(status.node_id),
        leader_id: status.leader,
        term: status.term,
        last_applied: status.last_applied,
        nodes: status
            .nodes
            .into_iter()
            .map(|n| ClusterNodeStatus {
                id: n.id,
                cluster_addr: n.cluster_addr,
                grpc_addr: n.grpc_addr,
                http_addr: n.http_addr,
                reachable: n.reachable,
            })
            .collect(),
    }
}
