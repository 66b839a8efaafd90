//! `/v1/metadata`: where each partition's leader is, and the nodes' addresses (the
//! `Messaging.GetMetadata` RPC, through the same [`get_metadata`]): for HTTP clients that send
//! each partition's publishes to its leader in a cluster (docs/clustering.md "Client routing").

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use rapidmq_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::RestState;
use super::cluster::ClusterHandle;
use super::error::{ApiError, Json, Problem, Query};
use crate::grpc::metadata::get_metadata;
use crate::principal::Principal;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetadataQuery {
    /// Comma-separated topic names; absent: every topic the caller may describe. A named topic
    /// that does not exist, or that the caller may not describe, fails the request.
    #[param(pattern = r"^[A-Za-z0-9._-]{1,200}(,[A-Za-z0-9._-]{1,200})*$")]
    pub topics: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Metadata {
    pub nodes: Vec<NodeMetadata>,
    pub topics: Vec<TopicMetadata>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeMetadata {
    /// The node's id; a single-node broker is node 1.
    pub id: u64,
    /// The node's client gRPC address (`host:port`); empty until the node registered it, and
    /// for a single-node broker.
    pub grpc_addr: String,
    /// The node's REST address (`host:port`), empty likewise.
    pub http_addr: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicMetadata {
    pub name: String,
    pub partitions: Vec<PartitionMetadata>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartitionMetadata {
    pub partition: u32,
    /// The partition group's leader as the answering node knows it; 0 while unknown.
    pub leader: u64,
    /// The leader's raft term (0 in single-node mode): keep the leader of the newest term seen.
    pub term: u64,
    /// The group's replicas, preferred leader first (empty in single-node mode).
    pub replicas: Vec<u64>,
}

impl From<pb::GetMetadataResponse> for Metadata {
    fn from(answer: pb::GetMetadataResponse) -> Self {
        Metadata {
            nodes: answer
                .nodes
                .into_iter()
                .map(|node| NodeMetadata {
                    id: node.id,
                    grpc_addr: node.grpc_addr,
                    http_addr: node.http_addr,
                })
                .collect(),
            topics: answer
                .topics
                .into_iter()
                .map(|topic| TopicMetadata {
                    name: topic.name,
                    partitions: topic
                        .partitions
                        .into_iter()
                        .map(|p| PartitionMetadata {
                            partition: p.partition,
                            leader: p.leader,
                            term: p.term,
                            replicas: p.replicas,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// Partition leaders and node addresses.
#[utoipa::path(get, path = "/v1/metadata", tag = "broker",
    params(MetadataQuery),
    responses(
        (status = 200, description = "The nodes, and each partition's leader, term and replicas", body = Metadata),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Extension(cluster): Extension<ClusterHandle>,
    Query(query): Query<MetadataQuery>,
) -> Result<Json<Metadata>, ApiError> {
    // Each name is checked by the describe below (`INVALID_NAME`), an empty one here.
    let topics: Vec<String> = match &query.topics {
        None => Vec::new(),
        Some(names) => names.split(',').map(String::from).collect(),
    };
    if topics.iter().any(String::is_empty) {
        return Err(ApiError::invalid(
            "`topics` names topics separated by commas, none of them empty",
        ));
    }
    let answer = get_metadata(&state.engine, &cluster, &principal, &topics)?;
    Ok(Json(answer.into()))
}
