//! Dead letters: list those not yet replayed, and replay them to the topics they came from.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, Json, Path, Problem, Query};
use super::messages::MessageOut;
use super::{RestState, params, principal};
use crate::engine::DeadLetterInfo;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many (default 100).
    #[param(minimum = 1)]
    pub max: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReplayQuery {
    /// At most this many (default: all pending).
    #[param(minimum = 1)]
    pub max: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetter {
    /// Offset in the dead-letter topic.
    pub offset: u64,
    pub original_topic: String,
    pub original_partition: u32,
    pub original_offset: u64,
    pub reason: String,
    pub attempts: u32,
    pub message: MessageOut,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterList {
    pub dead_letters: Vec<DeadLetter>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Replayed {
    pub replayed: u32,
}

impl From<DeadLetterInfo> for DeadLetter {
    fn from(d: DeadLetterInfo) -> DeadLetter {
        DeadLetter {
            message: MessageOut::from_dead_letter(&d),
            offset: d.offset,
            original_topic: d.original_topic,
            original_partition: d.original_partition,
            original_offset: d.original_offset,
            reason: d.reason,
            attempts: d.attempts,
        }
    }
}

/// Lists the dead letters of a dead-letter topic not yet replayed.
#[utoipa::path(get, path = "/v1/topics/{topic}/dead-letters", tag = "dead letters",
    params(("topic" = String, Path, description = "The dead-letter topic, e.g. `orders.dlq`", pattern = r"^[A-Za-z0-9._-]{1,200}$"), ListQuery),
    responses(
        (status = 200, description = "Dead letters", body = DeadLetterList),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<Arc<RestState>>,
    Path(topic): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<DeadLetterList>, ApiError> {
    let max = params::in_range("max", query.max, 100, 1, u32::MAX)? as usize;
    let letters = state
        .engine
        .list_dead_letters(&principal(), &topic, max)
        .await?;
    Ok(Json(DeadLetterList {
        dead_letters: letters.into_iter().map(Into::into).collect(),
    }))
}

/// Publishes dead letters back to the topics they came from.
#[utoipa::path(post, path = "/v1/topics/{topic}/dead-letters/replay", tag = "dead letters",
    params(("topic" = String, Path, description = "The dead-letter topic, e.g. `orders.dlq`", pattern = r"^[A-Za-z0-9._-]{1,200}$"), ReplayQuery),
    responses(
        (status = 200, description = "How many were replayed", body = Replayed),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(topic = %topic))]
pub async fn replay(
    State(state): State<Arc<RestState>>,
    Path(topic): Path<String>,
    Query(query): Query<ReplayQuery>,
) -> Result<Json<Replayed>, ApiError> {
    let max = match query.max {
        Some(max) => params::in_range("max", Some(max), 1, 1, u32::MAX)? as usize,
        None => usize::MAX,
    };
    let replayed = state
        .engine
        .replay_dead_letters(&principal(), &topic, max)
        .await?;
    Ok(Json(Replayed { replayed }))
}
