//! `/v1/flow-events`: recent message-flow events (published, scheduled, deduplicated, delivered,
//! dead-lettered) of traced messages — those carrying a `traceparent` or `msg-id` header — from
//! the broker's bounded ring buffer, found by msg-id, key, traceparent or topic.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, Json, Problem, Query};
use super::{RestState, params};
use crate::observability::{FlowEvent, FlowKind, FlowQuery};
use crate::principal::Principal;

/// Most events one query returns.
pub const MAX_EVENTS: u32 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlowEventsQuery {
    /// Only events of the message with this `msg-id` header.
    pub msg_id: Option<String>,
    /// Only events of messages with this key (UTF-8; other bytes match as U+FFFD).
    pub key: Option<String>,
    /// Only events of messages with this exact `traceparent` header.
    pub traceparent: Option<String>,
    /// Only events on this topic.
    pub topic: Option<String>,
    /// Most events to return, the newest (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// What happened to a message.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlowEventKind {
    Published,
    Scheduled,
    Deduplicated,
    Delivered,
    DeadLettered,
}

impl From<FlowKind> for FlowEventKind {
    fn from(kind: FlowKind) -> Self {
        match kind {
            FlowKind::Published => FlowEventKind::Published,
            FlowKind::Scheduled => FlowEventKind::Scheduled,
            FlowKind::Deduplicated => FlowEventKind::Deduplicated,
            FlowKind::Delivered => FlowEventKind::Delivered,
            FlowKind::DeadLettered => FlowEventKind::DeadLettered,
        }
    }
}

/// One flow event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlowEventOut {
    /// Increases by one per event the broker records; gaps are events that matched nothing or
    /// fell out of the buffer.
    pub seq: u64,
    /// When it happened, ms since the epoch.
    pub time_ms: i64,
    pub kind: FlowEventKind,
    pub topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    /// The message's offset (absent while it is scheduled or when it was dropped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// For deliveries and dead letters: the subscription (absent for fetches and tails).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// Queue deliveries and dead letters: the delivery attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl From<FlowEvent> for FlowEventOut {
    fn from(e: FlowEvent) -> Self {
        FlowEventOut {
            seq: e.seq,
            time_ms: e.time_ms,
            kind: e.kind.into(),
            topic: e.topic,
            partition: e.partition,
            offset: e.offset,
            subscription: e.subscription,
            attempt: e.attempt,
            msg_id: e.msg_id,
            key: e.key,
            traceparent: e.traceparent,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FlowEvents {
    /// Oldest first.
    pub events: Vec<FlowEventOut>,
    /// Events the broker keeps (`observability.flow_events`); 0 when flow events are off.
    pub capacity: u64,
}

/// Recent flow events of traced messages.
#[utoipa::path(get, path = "/v1/flow-events", tag = "observability",
    params(FlowEventsQuery),
    responses(
        (status = 200, description = "Matching events, oldest first", body = FlowEvents),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Query(query): Query<FlowEventsQuery>,
) -> Result<Json<FlowEvents>, ApiError> {
    let query = FlowQuery {
        msg_id: query.msg_id,
        key: query.key,
        traceparent: query.traceparent,
        topic: query.topic,
        limit: params::in_range("limit", query.limit, 100, 1, MAX_EVENTS)? as usize,
    };
    let events = state.engine.flow_events(&principal, &query)?;
    Ok(Json(FlowEvents {
        events: events.into_iter().map(Into::into).collect(),
        capacity: state.engine.flow().capacity() as u64,
    }))
}
