//! `Messaging.GetMetadata`, and the leader hints of `UNAVAILABLE` answers and of the acks of
//! forwarded appends: where each partition's leader is, so that clients send to it (docs/clustering.md "Client routing").

use rapidmq_proto::v1 as pb;

use super::convert::publish_response;
use crate::cluster::node_table::NodeInfo;
use crate::engine::{Engine, PublishAck, TopicStatus};
use crate::error::{Error, Result};
use crate::principal::Principal;
use crate::rest::cluster::ClusterHandle;

/// The node id a single-node broker answers as: it leads every partition.
pub const SINGLE_NODE_ID: u64 = 1;

/// The metadata of `topics` (empty: every topic the caller may describe) and the nodes.
pub fn get_metadata(
    engine: &Engine,
    cluster: &ClusterHandle,
    principal: &Principal,
    topics: &[String],
) -> Result<pb::GetMetadataResponse> {
    let statuses = if topics.is_empty() {
        engine.list_topics(principal)?
    } else {
        topics
            .iter()
            .map(|name| engine.topic_status_here(principal, name))
            .collect::<Result<Vec<_>>>()?
    };
    let (nodes, single) = match cluster {
        Some(cluster) => (node_list(&cluster.nodes()), false),
        // The node the client is connected to; no address, so the client stays on its seed.
        None => (
            vec![pb::NodeMetadata {
                id: SINGLE_NODE_ID,
                grpc_addr: String::new(),
                http_addr: String::new(),
            }],
            true,
        ),
    };
    Ok(pb::GetMetadataResponse {
        nodes,
        topics: statuses
            .iter()
            .map(|topic| topic_metadata(topic, single))
            .collect(),
    })
}

fn node_list(table: &std::collections::BTreeMap<u64, NodeInfo>) -> Vec<pb::NodeMetadata> {
    table
        .iter()
        .map(|(id, info)| pb::NodeMetadata {
            id: *id,
            grpc_addr: info.grpc_addr.clone(),
            http_addr: info.http_addr.clone(),
        })
        .collect()
}

fn topic_metadata(topic: &TopicStatus, single: bool) -> pb::TopicMetadata {
    pb::TopicMetadata {
        name: topic.name.clone(),
        partitions: topic
            .partitions
            .iter()
            .map(|p| pb::PartitionMetadata {
                partition: p.partition,
                leader: if single {
                    SINGLE_NODE_ID
                } else {
                    p.leader.unwrap_or(0)
                },
                term: p.term,
                replicas: p.replicas.clone(),
            })
            .collect(),
    }
}

/// `err` with its leader hint's address filled in from the node table, when it has a hint.
pub fn with_leader_address(mut err: Error, cluster: &ClusterHandle) -> Error {
    if let Some(hint) = err.leader_hint_mut() {
        fill_address(hint, cluster);
    }
    err
}

/// The publish ack of `partition`, with its leader hint's address filled in from the node
/// table, when it has a hint (the append was forwarded).
pub fn publish_answer(
    partition: u32,
    ack: PublishAck,
    cluster: &ClusterHandle,
) -> pb::PublishResponse {
    let mut response = publish_response(partition, ack);
    if let Some(hint) = &mut response.leader_hint {
        fill_address(hint, cluster);
    }
    response
}

fn fill_address(hint: &mut pb::LeaderHint, cluster: &ClusterHandle) {
    if let Some(cluster) = cluster
        && hint.leader != 0
        && hint.grpc_addr.is_empty()
        && let Some(info) = cluster.nodes().get(&hint.leader)
    {
        hint.grpc_addr = info.grpc_addr.clone();
    }
}
