//! `/v1/cluster`: the cluster as this node sees it (the `Admin.GetClusterStatus` RPC),
//! `/v1/cluster/nodes`: adding and removing nodes of the metadata group (`Admin.AddNode`,
//! `Admin.RemoveNode`; the gRPC service calls [`add_node`] and [`remove_node`] too), and
//! `/v1/cluster/rebalance-leaders`: partition leadership back to the preferred replicas
//! (`Admin.RebalanceLeaders`, through [`rebalance_leaders`]), and
//! `/v1/cluster/rebalance-replicas`: partition replicas spread over the nodes
//! (`Admin.RebalanceReplicas`, through [`rebalance_replicas`]).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::RestState;
use super::error::{ApiError, Json, Path, Problem};
use crate::auth::{Action, Resource};
use crate::cluster::members::Changed;
use crate::cluster::node::{ClusterNode, Rebalanced};
use crate::engine::ReplicaMove;
use crate::error::{Error, Result};
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
    /// This node's part in the metadata group: `voter`, `learner`, `not a member yet` (started
    /// to join, not added yet) or `removed`. Empty in single-node mode.
    pub membership: String,
    /// The metadata group's members as this node knows them.
    pub nodes: Vec<ClusterNodeStatus>,
    /// Partitions whose replicas are moving (`rebalance-replicas`): started, not complete.
    pub moving_partitions: u32,
    /// The cluster's identity, which a node joining it can be given (`cluster.id`) so that it
    /// refuses other clusters; absent in single-node mode and on a joining node that has not
    /// learned it yet.
    pub cluster_id: Option<String>,
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
    /// `voter` or `learner` (a node being added, catching up).
    pub role: String,
    /// The last raft index the leader knows the node has; only the leader knows.
    pub matched: Option<u64>,
}

/// `POST /v1/cluster/nodes`: the node to add.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNode {
    /// The new node's id (its `--node-id`).
    pub id: u64,
    /// Its cluster listener, `host:port`.
    pub cluster_addr: String,
}

/// What an add or a remove did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MembershipChange {
    /// The metadata group's voters afterwards.
    pub voters: Vec<u64>,
    /// Already a voter, or few voters left; empty when there is nothing to say.
    pub note: String,
}

impl From<Changed> for MembershipChange {
    fn from(changed: Changed) -> Self {
        MembershipChange {
            voters: changed.voters,
            note: changed.note,
        }
    }
}

/// What `POST /v1/cluster/rebalance-leaders` started.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RebalanceLeaders {
    /// Leadership transfers started, summed over the nodes (each completes within about an
    /// election timeout).
    pub transfers: u64,
    /// Nodes that could not be asked (down or unreachable).
    pub unreachable: Vec<u64>,
}

/// `POST /v1/cluster/rebalance-replicas`: what to plan.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RebalanceReplicasRequest {
    /// Nodes to move every replica off (before removing them).
    pub exclude: Vec<u64>,
    /// Plan only: answer the moves without starting them.
    pub dry_run: bool,
}

/// What `POST /v1/cluster/rebalance-replicas` started (or, for a dry run, would start).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RebalanceReplicas {
    pub moves: Vec<ReplicaMoveBody>,
}

/// One partition's replicas before and after a move, preferred leader first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReplicaMoveBody {
    pub tenant: String,
    pub topic: String,
    pub partition: u32,
    pub from: Vec<u64>,
    pub to: Vec<u64>,
}

impl From<ReplicaMove> for ReplicaMoveBody {
    fn from(moved: ReplicaMove) -> Self {
        ReplicaMoveBody {
            tenant: moved.tenant,
            topic: moved.topic,
            partition: moved.partition,
            from: moved.from,
            to: moved.to,
        }
    }
}

impl From<Rebalanced> for RebalanceLeaders {
    fn from(rebalanced: Rebalanced) -> Self {
        RebalanceLeaders {
            transfers: rebalanced.transfers,
            unreachable: rebalanced.unreachable,
        }
    }
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
    Ok(Json(status(&state.engine, cluster.as_deref())))
}

/// The status of `cluster` (`engine` knows the partitions moving), or of a single node.
pub fn status(engine: &crate::engine::Engine, cluster: Option<&ClusterNode>) -> ClusterStatus {
    let Some(cluster) = cluster else {
        return ClusterStatus {
            mode: "single-node".to_string(),
            node_id: None,
            leader_id: None,
            term: 0,
            last_applied: None,
            membership: String::new(),
            nodes: Vec::new(),
            moving_partitions: 0,
            cluster_id: None,
        };
    };
    let status = cluster.status();
    ClusterStatus {
        mode: "cluster".to_string(),
        node_id: Some(status.node_id),
        leader_id: status.leader,
        term: status.term,
        last_applied: status.last_applied,
        membership: status.membership,
        moving_partitions: engine.moving_partitions(),
        cluster_id: status.cluster_id,
        nodes: status
            .nodes
            .into_iter()
            .map(|n| ClusterNodeStatus {
                id: n.id,
                cluster_addr: n.cluster_addr,
                grpc_addr: n.grpc_addr,
                http_addr: n.http_addr,
                reachable: n.reachable,
                role: n.role,
                matched: n.matched,
            })
            .collect(),
    }
}

/// Adds a node to the metadata group, through its leader: a learner until it caught up, then a
/// voter. Blocks until it is a voter (or its catch-up timed out).
#[utoipa::path(post, path = "/v1/cluster/nodes", tag = "broker", request_body = AddNode,
    responses(
        (status = 200, description = "The node is a voter", body = MembershipChange),
        (status = "default", description = "An error (RFC 9457); INVALID_ARGUMENT in single-node mode or for a bad address", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(node_id = body.id))]
pub async fn add(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Extension(cluster): Extension<ClusterHandle>,
    Json(body): Json<AddNode>,
) -> Result<Json<MembershipChange>, ApiError> {
    let changed = add_node(
        &state.engine,
        &principal,
        cluster.as_deref(),
        body.id,
        body.cluster_addr,
    )
    .await?;
    Ok(Json(changed.into()))
}

/// Removes a node from the metadata group. Refused for a node that is not a member and for the
/// last voter.
#[utoipa::path(delete, path = "/v1/cluster/nodes/{id}", tag = "broker",
    params(("id" = u64, Path, description = "Node id")),
    responses(
        (status = 200, description = "Removed", body = MembershipChange),
        (status = "default", description = "An error (RFC 9457); NODE_NOT_FOUND for a node that is not a member, INVALID_ARGUMENT for the last voter and in single-node mode", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(node_id = id))]
pub async fn remove(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Extension(cluster): Extension<ClusterHandle>,
    Path(id): Path<u64>,
) -> Result<(StatusCode, Json<MembershipChange>), ApiError> {
    let changed = remove_node(&state.engine, &principal, cluster.as_deref(), id).await?;
    Ok((StatusCode::OK, Json(changed.into())))
}

/// Hands each partition's leadership back to its preferred replica where that replica is caught
/// up and reachable, on every node, now. A single-node broker answers 0.
#[utoipa::path(post, path = "/v1/cluster/rebalance-leaders", tag = "broker",
    responses(
        (status = 200, description = "Transfers started", body = RebalanceLeaders),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn rebalance(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Extension(cluster): Extension<ClusterHandle>,
) -> Result<Json<RebalanceLeaders>, ApiError> {
    let rebalanced = rebalance_leaders(&state.engine, &principal, cluster.as_deref()).await?;
    Ok(Json(rebalanced.into()))
}

/// `Admin.RebalanceLeaders` and `POST /v1/cluster/rebalance-leaders`: cluster admins only. A
/// single node leads every partition it has, its preferred leader: nothing to move, 0.
pub async fn rebalance_leaders(
    engine: &crate::engine::Engine,
    principal: &Principal,
    cluster: Option<&ClusterNode>,
) -> Result<Rebalanced> {
    engine
        .auth()
        .authorize(principal, Action::Admin, Resource::Cluster)?;
    match cluster {
        Some(cluster) => Ok(cluster.rebalance_leaders().await),
        None => Ok(Rebalanced::default()),
    }
}

/// Moves partition replicas so each voting node holds an even share
/// (docs/clustering.md "Moving replicas").
#[utoipa::path(post, path = "/v1/cluster/rebalance-replicas", tag = "broker",
    request_body = RebalanceReplicasRequest,
    responses(
        (status = 200, description = "Moves started (planned, for a dry run)", body = RebalanceReplicas),
        (status = "default", description = "An error (RFC 9457); NODE_NOT_FOUND for an excluded node that is not a voter, INVALID_ARGUMENT in single-node mode or when too few voters remain for a topic's replication factor", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn rebalance_replicas_route(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Extension(cluster): Extension<ClusterHandle>,
    Json(body): Json<RebalanceReplicasRequest>,
) -> Result<Json<RebalanceReplicas>, ApiError> {
    let moves = rebalance_replicas(
        &state.engine,
        &principal,
        cluster.as_deref(),
        &body.exclude,
        body.dry_run,
    )
    .await?;
    Ok(Json(RebalanceReplicas {
        moves: moves.into_iter().map(Into::into).collect(),
    }))
}

/// `Admin.RebalanceReplicas` and `POST /v1/cluster/rebalance-replicas`: cluster admins only.
pub async fn rebalance_replicas(
    engine: &crate::engine::Engine,
    principal: &Principal,
    cluster: Option<&ClusterNode>,
    exclude: &[u64],
    dry_run: bool,
) -> Result<Vec<ReplicaMove>> {
    let cluster = cluster_admin(engine, principal, cluster)?;
    engine
        .rebalance_replicas(principal, &cluster.voters(), exclude, dry_run)
        .await
}

/// `Admin.AddNode` and `POST /v1/cluster/nodes`: cluster admins only. With
/// `cluster.rebalance_on_join`, replicas then move to the new node (said in the note).
pub async fn add_node(
    engine: &crate::engine::Engine,
    principal: &Principal,
    cluster: Option<&ClusterNode>,
    id: u64,
    cluster_addr: String,
) -> Result<Changed> {
    let cluster = cluster_admin(engine, principal, cluster)?;
    let mut changed = cluster.add_node(id, cluster_addr).await?;
    if engine.config().cluster.rebalance_on_join && changed.voters.contains(&id) {
        let moves = engine
            .rebalance_replicas(principal, &changed.voters, &[], false)
            .await?;
        if !moves.is_empty() {
            let plural = if moves.len() == 1 { "" } else { "s" };
            let note = format!(
                "moving replicas of {} partition{plural} to even the load (cluster status: moving_partitions)",
                moves.len()
            );
            changed.note = if changed.note.is_empty() {
                note
            } else {
                format!("{}; {note}", changed.note)
            };
        }
    }
    Ok(changed)
}

/// `Admin.RemoveNode` and `DELETE /v1/cluster/nodes/{id}`: cluster admins only.
pub async fn remove_node(
    engine: &crate::engine::Engine,
    principal: &Principal,
    cluster: Option<&ClusterNode>,
    id: u64,
) -> Result<Changed> {
    let cluster = cluster_admin(engine, principal, cluster)?;
    let voters = cluster.voters();
    // Not a voter, or the last one: the metadata group's answer says why not.
    let held = if voters.contains(&id) && voters.len() > 1 {
        engine.partitions_on(id)
    } else {
        0
    };
    if held > 0 {
        return Err(Error::invalid(format!(
            "node {id} still holds replicas of {held} partition(s): move them off first \
             (`rapidmq cluster remove-node` does; or `rapidmq cluster rebalance --exclude {id}`, \
             Admin.RebalanceReplicas with exclude, and wait until no partition is moving)"
        )));
    }
    cluster.remove_node(id).await
}

fn cluster_admin<'a>(
    engine: &crate::engine::Engine,
    principal: &Principal,
    cluster: Option<&'a ClusterNode>,
) -> Result<&'a ClusterNode> {
    engine
        .auth()
        .authorize(principal, Action::Admin, Resource::Cluster)?;
    cluster.ok_or_else(|| {
        Error::invalid(
            "not in cluster mode: this broker runs as a single node (start it with --node-id \
             and --peers)",
        )
    })
}
