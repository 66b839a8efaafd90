//! Dead letters: list those not yet replayed a page at a time, and replay them to the topics
//! they came from a bounded number per call.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, Json, Path, Problem, Query};
use super::messages::MessageOut;
use super::{RestState, params};
use crate::engine::{
    DEFAULT_PAGE, DEFAULT_REPLAY, DeadLetterInfo, MAX_PAGE, MAX_REPLAY, ReplayOutcome,
};
use crate::principal::Principal;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size: at most this many (default 100). A page can hold fewer (it also stops at
    /// about 2 MiB of messages): only an empty `next_page_token` means there is nothing more.
    #[param(minimum = 1, maximum = 1000)]
    pub max: Option<u32>,
    /// The `next_page_token` of the previous page, unchanged; absent or empty for the first
    /// page. A token the broker did not issue for this topic is `400 INVALID_ARGUMENT`. The
    /// pattern is the tokens' alphabet (URL-safe base64 without padding); which tokens are valid
    /// only the broker that issued them knows.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub page_token: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReplayQuery {
    /// At most this many in this call (default 1000). Call again while `remaining` is above 0.
    #[param(minimum = 1, maximum = 10000)]
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
    /// Oldest first within each partition of the dead-letter topic, partitions in order.
    pub dead_letters: Vec<DeadLetter>,
    /// Pass it as `page_token` for the next page; empty when every partition was read to its
    /// end.
    pub next_page_token: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Replayed {
    /// Dead letters published back to their topics by this call.
    pub replayed: u32,
    /// Messages still pending after the replay cursor, over all partitions.
    pub remaining: u64,
}

impl From<ReplayOutcome> for Replayed {
    fn from(o: ReplayOutcome) -> Replayed {
        Replayed {
            replayed: o.replayed,
            remaining: o.remaining,
        }
    }
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

/// Lists the dead letters of a dead-letter topic not yet replayed, one page at a time.
#[utoipa::path(get, path = "/v1/topics/{topic}/dead-letters", tag = "dead letters",
    params(("topic" = String, Path, description = "The dead-letter topic, e.g. `orders.dlq`", pattern = r"^[A-Za-z0-9._-]{1,200}$"), ListQuery),
    responses(
        (status = 200, description = "Dead letters", body = DeadLetterList),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path(topic): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<DeadLetterList>, ApiError> {
    let max = params::in_range("max", query.max, DEFAULT_PAGE as u32, 1, MAX_PAGE as u32)?;
    let page = state
        .engine
        .list_dead_letters(
            &principal,
            &topic,
            max as usize,
            query.page_token.as_deref(),
        )
        .await?;
    Ok(Json(DeadLetterList {
        dead_letters: page.letters.into_iter().map(Into::into).collect(),
        next_page_token: page.next_page_token.unwrap_or_default(),
    }))
}

/// Publishes dead letters back to the topics they came from, at most `max` in this call.
#[utoipa::path(post, path = "/v1/topics/{topic}/dead-letters/replay", tag = "dead letters",
    params(("topic" = String, Path, description = "The dead-letter topic, e.g. `orders.dlq`", pattern = r"^[A-Za-z0-9._-]{1,200}$"), ReplayQuery),
    responses(
        (status = 200, description = "How many were replayed and how many are still pending", body = Replayed),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(topic = %topic))]
pub async fn replay(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path(topic): Path<String>,
    Query(query): Query<ReplayQuery>,
) -> Result<Json<Replayed>, ApiError> {
    let max = params::in_range(
        "max",
        query.max,
        DEFAULT_REPLAY as u32,
        1,
        MAX_REPLAY as u32,
    )?;
    let outcome = state
        .engine
        .replay_dead_letters(&principal, &topic, max as usize)
        .await?;
    Ok(Json(outcome.into()))
}
