//! Subscriptions: create, list, describe, seek and delete (the `Admin` subscription RPCs).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, Json, Path, Problem, Query};
use super::{RestState, params};
use crate::engine::{
    MemberStatus, QueueSettings as EngineQueueSettings, QueueSpec, StartPosition, SubscriptionMode,
    SubscriptionStatus,
};
use crate::principal::Principal;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Ordered per partition; partitions are shared among members; the group commits offsets.
    #[default]
    Stream,
    /// Messages go one by one to any consumer and are acked individually.
    Queue,
}

impl From<Mode> for SubscriptionMode {
    fn from(mode: Mode) -> SubscriptionMode {
        match mode {
            Mode::Stream => SubscriptionMode::Stream,
            Mode::Queue => SubscriptionMode::Queue,
        }
    }
}

impl From<SubscriptionMode> for Mode {
    fn from(mode: SubscriptionMode) -> Mode {
        match mode {
            SubscriptionMode::Stream => Mode::Stream,
            SubscriptionMode::Queue => Mode::Queue,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StartKind {
    Latest,
    Earliest,
    Offset,
    Timestamp,
}

/// Where a new subscription (or a seek) starts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Start {
    pub kind: StartKind,
    /// With `offset`: the offset, clamped to the retained range. Default 0.
    #[serde(default)]
    pub offset: Option<u64>,
    /// With `timestamp`: the first message appended at or after this time (ms since the epoch).
    #[serde(default)]
    pub timestamp_ms: Option<i64>,
}

impl From<Start> for StartPosition {
    fn from(s: Start) -> StartPosition {
        match s.kind {
            StartKind::Latest => StartPosition::Latest,
            StartKind::Earliest => StartPosition::Earliest,
            StartKind::Offset => StartPosition::Offset(s.offset.unwrap_or(0)),
            StartKind::Timestamp => StartPosition::Timestamp(s.timestamp_ms.unwrap_or(0)),
        }
    }
}

/// Queue-mode settings. Absent fields take the broker defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    /// Visibility timeout: an unacked delivery is redelivered after this long.
    #[schema(minimum = 1)]
    pub ack_deadline_ms: Option<u64>,
    /// Deliveries before a message moves to the dead-letter topic.
    #[schema(minimum = 1)]
    pub max_deliveries: Option<u32>,
    /// Default (absent or empty) `<topic>.dlq`. Not the subscription's own topic.
    #[schema(pattern = r"^[A-Za-z0-9._-]{0,200}$")]
    pub dead_letter_topic: Option<String>,
}

impl From<QueueSettings> for QueueSpec {
    fn from(q: QueueSettings) -> QueueSpec {
        QueueSpec {
            ack_deadline_ms: q.ack_deadline_ms,
            max_deliveries: q.max_deliveries,
            dead_letter_topic: q.dead_letter_topic.filter(|t| !t.is_empty()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    /// `[A-Za-z0-9._-]{1,200}`.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,200}$")]
    pub name: String,
    /// Default `stream`.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Default latest.
    #[serde(default)]
    pub start: Option<Start>,
    /// Queue mode only.
    #[serde(default)]
    pub queue: Option<QueueSettings>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Seek {
    pub position: Start,
    /// Only this partition; every partition when absent.
    #[serde(default)]
    pub partition: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartitionCursor {
    pub partition: u32,
    pub committed_offset: u64,
    pub high_watermark: u64,
    pub lag: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberInfo {
    pub member_id: String,
    pub consumer_name: String,
    pub partitions: Vec<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueStats {
    pub in_flight: u64,
    pub redeliveries: u64,
    pub dead_lettered: u64,
    pub expired: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionInfo {
    pub topic: String,
    pub name: String,
    pub mode: Mode,
    pub cursors: Vec<PartitionCursor>,
    pub members: Vec<MemberInfo>,
    pub total_lag: u64,
    pub created_at_ms: i64,
    /// Queue mode: the effective settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueSettings>,
    /// Queue mode: counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_stats: Option<QueueStats>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionList {
    pub subscriptions: Vec<SubscriptionInfo>,
}

impl From<EngineQueueSettings> for QueueSettings {
    fn from(q: EngineQueueSettings) -> QueueSettings {
        QueueSettings {
            ack_deadline_ms: Some(q.ack_deadline_ms),
            max_deliveries: Some(q.max_deliveries),
            dead_letter_topic: Some(q.dead_letter_topic),
        }
    }
}

impl From<MemberStatus> for MemberInfo {
    fn from(m: MemberStatus) -> MemberInfo {
        MemberInfo {
            member_id: m.member_id,
            consumer_name: m.consumer_name,
            partitions: m.partitions,
        }
    }
}

impl From<SubscriptionStatus> for SubscriptionInfo {
    fn from(s: SubscriptionStatus) -> SubscriptionInfo {
        let total_lag = s.total_lag();
        SubscriptionInfo {
            topic: s.topic,
            name: s.name,
            mode: s.mode.into(),
            cursors: s
                .cursors
                .into_iter()
                .map(
                    |(partition, committed_offset, high_watermark, lag)| PartitionCursor {
                        partition,
                        committed_offset,
                        high_watermark,
                        lag,
                    },
                )
                .collect(),
            members: s.members.into_iter().map(Into::into).collect(),
            total_lag,
            created_at_ms: s.created_at_ms,
            queue_stats: s.queue.as_ref().map(|(_, in_flight, c)| QueueStats {
                in_flight: *in_flight,
                redeliveries: c.redeliveries,
                dead_lettered: c.dead_lettered,
                expired: c.expired,
            }),
            queue: s.queue.map(|(settings, _, _)| settings.into()),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this topic's subscriptions (empty: every topic's).
    #[param(pattern = r"^[A-Za-z0-9._-]{0,200}$")]
    pub topic: Option<String>,
}

/// Lists subscriptions, of every topic or of one.
#[utoipa::path(get, path = "/v1/subscriptions", tag = "subscriptions", params(ListParams),
    responses(
        (status = 200, description = "Subscriptions", body = SubscriptionList),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_all(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Query(params): Query<ListParams>,
) -> Result<Json<SubscriptionList>, ApiError> {
    let topic = params.topic.filter(|t| !t.is_empty());
    let subs = state
        .engine
        .list_subscriptions(&principal, topic.as_deref())
        .await?;
    Ok(Json(SubscriptionList {
        subscriptions: subs.into_iter().map(Into::into).collect(),
    }))
}

/// Lists a topic's subscriptions.
#[utoipa::path(get, path = "/v1/topics/{topic}/subscriptions", tag = "subscriptions",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    responses(
        (status = 200, description = "Subscriptions", body = SubscriptionList),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path(topic): Path<String>,
) -> Result<Json<SubscriptionList>, ApiError> {
    let subs = state
        .engine
        .list_subscriptions(&principal, Some(&topic))
        .await?;
    Ok(Json(SubscriptionList {
        subscriptions: subs.into_iter().map(Into::into).collect(),
    }))
}

/// Creates a subscription.
#[utoipa::path(post, path = "/v1/topics/{topic}/subscriptions", tag = "subscriptions",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    request_body = CreateSubscription,
    responses(
        (status = 201, description = "Created", body = SubscriptionInfo),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(topic = %topic, subscription = %body.name))]
pub async fn create(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path(topic): Path<String>,
    Json(body): Json<CreateSubscription>,
) -> Result<(StatusCode, Json<SubscriptionInfo>), ApiError> {
    let queue = body.queue.unwrap_or_default();
    // The document's minimums hold even where the settings go unused (a stream subscription).
    params::in_range(
        "queue.ack_deadline_ms",
        queue.ack_deadline_ms,
        1,
        1,
        u64::MAX,
    )?;
    params::in_range("queue.max_deliveries", queue.max_deliveries, 1, 1, u32::MAX)?;
    if let Some(dlq) = queue.dead_letter_topic.as_deref().filter(|t| !t.is_empty()) {
        crate::error::check_name("dead-letter topic", dlq)?;
    }
    let queue = QueueSpec::from(queue);
    let sub = state
        .engine
        .create_subscription(
            &principal,
            &topic,
            &body.name,
            body.mode.unwrap_or_default().into(),
            body.start.map(Into::into).unwrap_or_default(),
            Some(&queue),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(sub.into())))
}

/// Describes a subscription: cursors, lag, members and queue counters.
#[utoipa::path(get, path = "/v1/topics/{topic}/subscriptions/{subscription}", tag = "subscriptions",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), ("subscription" = String, Path, description = "Subscription name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionInfo),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn describe(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path((topic, name)): Path<(String, String)>,
) -> Result<Json<SubscriptionInfo>, ApiError> {
    Ok(Json(
        state
            .engine
            .describe_subscription(&principal, &topic, &name)
            .await?
            .into(),
    ))
}

/// Moves a subscription's committed offsets; live members resume from there.
#[utoipa::path(post, path = "/v1/topics/{topic}/subscriptions/{subscription}/seek", tag = "subscriptions",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), ("subscription" = String, Path, description = "Subscription name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    request_body = Seek,
    responses(
        (status = 200, description = "The subscription after the seek", body = SubscriptionInfo),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(topic = %topic, subscription = %name))]
pub async fn seek(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path((topic, name)): Path<(String, String)>,
    Json(body): Json<Seek>,
) -> Result<Json<SubscriptionInfo>, ApiError> {
    let sub = state
        .engine
        .seek_subscription(
            &principal,
            &topic,
            &name,
            body.position.into(),
            body.partition,
        )
        .await?;
    Ok(Json(sub.into()))
}

/// Deletes a subscription; its consumers' sessions end.
#[utoipa::path(delete, path = "/v1/topics/{topic}/subscriptions/{subscription}", tag = "subscriptions",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), ("subscription" = String, Path, description = "Subscription name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(topic = %topic, subscription = %name))]
pub async fn delete(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path((topic, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .delete_subscription(&principal, &topic, &name)
        .await?;
    state.consumers.forget_subscription(&topic, &name);
    Ok(StatusCode::NO_CONTENT)
}
