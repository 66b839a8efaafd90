//! Settling what was consumed: ack, nack and extend by receipt (queue mode), and commit offsets
//! (stream mode, the `Messaging.CommitOffset` RPC).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use rapidmq_proto::ErrorCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::RestState;
use super::error::{ApiError, Json, Path, Problem};
use super::messages::Receipt;
use crate::engine::{ReceiptRef, Settlement};
use crate::principal::Principal;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PartitionOffset {
    pub partition: u32,
    pub offset: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub receipts: Vec<Receipt>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Nack {
    pub receipts: Vec<Receipt>,
    /// Redeliver after this long (ms). Default 0.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Extend {
    pub receipts: Vec<Receipt>,
    /// The new ack deadline is now + `extend_ms`.
    pub extend_ms: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    /// The next offset to consume, per partition.
    pub offsets: Vec<PartitionOffset>,
}

/// The error for receipts that named nothing in flight, as the gRPC stream reports it.
pub fn unknown_receipts(unknown: usize) -> Result<(), ApiError> {
    if unknown == 0 {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::ReceiptUnknown,
        format!(
            "{unknown} receipt(s) name no delivery in flight to this subscription (already acked, redelivered after the deadline, or foreign)"
        ),
    ))
}

pub fn receipts(receipts: &[Receipt]) -> Vec<ReceiptRef> {
    receipts.iter().copied().map(Into::into).collect()
}

async fn settle(
    state: &Arc<RestState>,
    principal: &Principal,
    topic: &str,
    subscription: &str,
    list: &[Receipt],
    how: Settlement,
) -> Result<StatusCode, ApiError> {
    let unknown = match &state.cluster {
        Some(cluster) => {
            super::relay::settle(state, cluster, principal, topic, subscription, list, how).await?
        }
        None => {
            state
                .engine
                .settle(principal, topic, subscription, &receipts(list), how)
                .await?
        }
    };
    unknown_receipts(unknown)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Acknowledges queue deliveries.
#[utoipa::path(post, path = "/v1/topics/{topic}/subscriptions/{subscription}/ack", tag = "consume",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), ("subscription" = String, Path, description = "Subscription name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    request_body = Ack,
    responses(
        (status = 204, description = "Acknowledged"),
        (status = "default", description = "An error (RFC 9457); RECEIPT_UNKNOWN when some receipts named nothing in flight (the others were settled)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ack(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path((topic, subscription)): Path<(String, String)>,
    Json(body): Json<Ack>,
) -> Result<StatusCode, ApiError> {
    settle(
        &state,
        &principal,
        &topic,
        &subscription,
        &body.receipts,
        Settlement::Ack,
    )
    .await
}

/// Gives queue deliveries back for redelivery (or dead-lettering on the last attempt).
#[utoipa::path(post, path = "/v1/topics/{topic}/subscriptions/{subscription}/nack", tag = "consume",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), ("subscription" = String, Path, description = "Subscription name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    request_body = Nack,
    responses(
        (status = 204, description = "Given back"),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn nack(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path((topic, subscription)): Path<(String, String)>,
    Json(body): Json<Nack>,
) -> Result<StatusCode, ApiError> {
    let how = Settlement::Nack {
        delay_ms: body.delay_ms.unwrap_or(0),
    };
    settle(
        &state,
        &principal,
        &topic,
        &subscription,
        &body.receipts,
        how,
    )
    .await
}

/// Pushes the ack deadline of queue deliveries further out.
#[utoipa::path(post, path = "/v1/topics/{topic}/subscriptions/{subscription}/extend", tag = "consume",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), ("subscription" = String, Path, description = "Subscription name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    request_body = Extend,
    responses(
        (status = 204, description = "Extended"),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn extend(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path((topic, subscription)): Path<(String, String)>,
    Json(body): Json<Extend>,
) -> Result<StatusCode, ApiError> {
    let how = Settlement::Extend {
        extend_ms: body.extend_ms,
    };
    settle(
        &state,
        &principal,
        &topic,
        &subscription,
        &body.receipts,
        how,
    )
    .await
}

/// Commits offsets of a stream subscription.
#[utoipa::path(post, path = "/v1/topics/{topic}/subscriptions/{subscription}/commit", tag = "consume",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), ("subscription" = String, Path, description = "Subscription name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    request_body = Commit,
    responses(
        (status = 204, description = "Committed"),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(topic = %topic, subscription = %subscription))]
pub async fn commit(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path((topic, subscription)): Path<(String, String)>,
    Json(body): Json<Commit>,
) -> Result<StatusCode, ApiError> {
    let offsets: Vec<(u32, u64)> = body
        .offsets
        .iter()
        .map(|o| (o.partition, o.offset))
        .collect();
    state
        .engine
        .commit(&principal, &topic, &subscription, &offsets, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
