//! Publishing: one message or a batch, as JSON. The adapter encodes a `MessageBatch` per target
//! partition and hands it to the engine, as a producer would over gRPC.
//!
//! The partition is, in order: the `partition` query parameter; for a keyed message, the key's
//! partition (`partition_for_key`, the function every SDK uses); else one partition per request,
//! chosen round-robin.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use futures::future::try_join_all;
use prost::Message as _;
use rapidmq_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::RestState;
use super::error::{ApiError, Json, Path, Problem, Query};
use super::messages::MessageIn;
use super::topics::Durability;
use crate::engine::{PublishAck, PublishParams};
use crate::principal::Principal;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PublishQuery {
    /// Publish every message of the request to this partition.
    pub partition: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBatch {
    #[schema(min_items = 1)]
    pub messages: Vec<MessageIn>,
}

/// The acknowledgement of the messages that went to one partition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublishResult {
    pub partition: u32,
    /// Offset of the first appended message; the others follow in request order.
    pub base_offset: u64,
    /// Messages appended now (not counting scheduled or deduplicated ones).
    pub count: u32,
    /// What the acknowledgement guarantees.
    pub durability: Durability,
    pub duplicate: bool,
    pub append_time_ms: i64,
    /// Messages held in the delay schedule; they get offsets when due.
    pub scheduled: u32,
    /// Indexes (in the request) of messages dropped as `msg-id` duplicates.
    pub deduplicated: Vec<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublishBatchResult {
    /// One result per partition written, in partition order.
    pub results: Vec<PublishResult>,
}

/// Publishes one message.
#[utoipa::path(post, path = "/v1/topics/{topic}/message", tag = "publish",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), PublishQuery),
    request_body = MessageIn,
    responses(
        (status = 200, description = "Appended (or scheduled)", body = PublishResult),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn one(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path(topic): Path<String>,
    Query(query): Query<PublishQuery>,
    Json(message): Json<MessageIn>,
) -> Result<Json<PublishResult>, ApiError> {
    let mut results = publish(&state, &principal, &topic, query.partition, vec![message]).await?;
    results
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::from(crate::Error::internal("a publish produced no result")))
}

/// Publishes a batch of messages.
#[utoipa::path(post, path = "/v1/topics/{topic}/messages", tag = "publish",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), PublishQuery),
    request_body = PublishBatch,
    responses(
        (status = 200, description = "Appended (or scheduled)", body = PublishBatchResult),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn batch(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path(topic): Path<String>,
    Query(query): Query<PublishQuery>,
    Json(body): Json<PublishBatch>,
) -> Result<Json<PublishBatchResult>, ApiError> {
    let results = publish(&state, &principal, &topic, query.partition, body.messages).await?;
    Ok(Json(PublishBatchResult { results }))
}

async fn publish(
    state: &RestState,
    principal: &Principal,
    topic: &str,
    partition: Option<u32>,
    messages: Vec<MessageIn>,
) -> Result<Vec<PublishResult>, ApiError> {
    let messages = messages
        .into_iter()
        .map(MessageIn::into_pb)
        .collect::<Result<Vec<_>, _>>()?;
    // Partition -> (request indexes, messages), in request order within each partition.
    let mut groups: BTreeMap<u32, (Vec<u32>, Vec<pb::Message>)> = BTreeMap::new();
    match partition {
        Some(p) => {
            groups.insert(p, ((0..messages.len() as u32).collect(), messages));
        }
        None => {
            let partitions = state.engine.publish_partitions(principal, topic)?;
            let round_robin = state.round_robin.fetch_add(1, Ordering::Relaxed) % partitions;
            if messages.is_empty() {
                groups.insert(round_robin, Default::default());
            }
            for (i, m) in messages.into_iter().enumerate() {
                let p = match &m.key {
                    Some(key) => rapidmq_proto::partition_for_key(key, partitions),
                    None => round_robin,
                };
                let group = groups.entry(p).or_default();
                group.0.push(i as u32);
                group.1.push(m);
            }
        }
    }
    let batches: Vec<(u32, Vec<u32>, bytes::Bytes)> = groups
        .into_iter()
        .map(|(p, (indexes, messages))| {
            let batch = pb::MessageBatch {
                messages,
                base_timestamp_ms: state.engine.clock().now_ms(),
                compression: pb::Compression::None as i32,
                ..Default::default()
            };
            (p, indexes, batch.encode_to_vec().into())
        })
        .collect();
    // The whole request fits in the publish byte budget, or none of it is queued.
    let bytes = batches.iter().map(|(_, _, batch)| batch.len()).sum();
    let _permit = state.publish_budget.try_acquire(bytes)?;
    // Queue every partition's batch first (offsets follow the request), then await the acks.
    let mut pending = Vec::with_capacity(batches.len());
    for (p, indexes, batch) in batches {
        let params = PublishParams {
            topic: topic.to_string(),
            partition: p,
            producer_id: 0,
            base_sequence: 0,
            batch,
        };
        let ack = state.engine.begin_publish(principal, params).await?;
        pending.push(async move { ack.await.map(|ack| result(p, &indexes, ack)) });
    }
    Ok(try_join_all(pending).await?)
}

fn result(partition: u32, indexes: &[u32], ack: PublishAck) -> PublishResult {
    PublishResult {
        partition,
        base_offset: ack.ack.base_offset,
        count: ack.ack.count,
        durability: ack.ack.durability.into(),
        duplicate: ack.ack.duplicate,
        append_time_ms: ack.ack.append_time_ms,
        scheduled: ack.scheduled,
        deduplicated: ack
            .deduplicated
            .iter()
            .filter_map(|&i| indexes.get(i as usize).copied())
            .collect(),
    }
}
