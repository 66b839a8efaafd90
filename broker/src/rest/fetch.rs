//! Fetch by offset: read one partition from an offset, optionally long-polling for new data
//! (the `Messaging.Fetch` RPC).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, Json, Path, Problem, Query};
use super::messages::MessageOut;
use super::{RestState, params};
use crate::principal::Principal;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FetchQuery {
    /// First offset to read. Default 0 (from the start of the retained log).
    pub offset: Option<u64>,
    /// Most messages to return (1 to 10000, default 100).
    #[param(minimum = 1, maximum = 10000)]
    pub max: Option<u32>,
    /// With nothing at `offset` yet, wait up to this long for it (ms, at most 30000; the broker
    /// waits at most half of its `http.request_timeout_ms`). Default 0.
    #[param(minimum = 0, maximum = 30000)]
    pub wait_ms: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FetchResult {
    pub messages: Vec<MessageOut>,
    /// The offset to fetch from next.
    pub next_offset: u64,
    pub high_watermark: u64,
    pub log_start_offset: u64,
}

/// Reads a partition from an offset.
#[utoipa::path(get, path = "/v1/topics/{topic}/partitions/{partition}/messages", tag = "consume",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), ("partition" = u32, Path, description = "Partition"), FetchQuery),
    responses(
        (status = 200, description = "Messages from the offset on", body = FetchResult),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn fetch(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path((topic, partition)): Path<(String, u32)>,
    Query(query): Query<FetchQuery>,
) -> Result<Json<FetchResult>, ApiError> {
    let offset = query.offset.unwrap_or(0);
    let max = params::max_messages(query.max)?;
    let wait = params::wait(query.wait_ms, 0, state.max_wait)?;
    let result = state
        .engine
        .fetch(&principal, &topic, partition, offset, max, wait)
        .await?;
    let mut messages = Vec::new();
    for delivery in &result.deliveries {
        messages.extend(MessageOut::from_delivery(delivery)?);
    }
    let next_offset = messages
        .last()
        .map_or(offset.max(result.log_start_offset), |m| m.offset + 1);
    Ok(Json(FetchResult {
        messages,
        next_offset,
        high_watermark: result.high_watermark,
        log_start_offset: result.log_start_offset,
    }))
}
