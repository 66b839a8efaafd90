//! `/v1/topics`: create, list, describe, alter and delete topics (the `Admin` topic RPCs).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::RestState;
use super::error::{ApiError, Json, Path, Problem};
use crate::engine::{AckDurability, DurabilityMode, StorageKind, TopicSpec, TopicStatus};
use crate::principal::Principal;
use std::sync::Arc;

/// Where a topic keeps its messages.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    Disk,
    Memory,
}

/// How far a write has gone before it is acknowledged: `memory` for a memory topic.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    Fsync,
    Buffered,
    Memory,
}

/// The durability a disk topic is set to. (A memory topic has none: use `storage: memory`.)
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DurabilitySetting {
    Fsync,
    Buffered,
}

impl From<AckDurability> for Durability {
    fn from(ack: AckDurability) -> Durability {
        match ack {
            AckDurability::Fsync => Durability::Fsync,
            AckDurability::Buffered => Durability::Buffered,
            AckDurability::Memory => Durability::Memory,
        }
    }
}

/// The settings of a new topic. Absent fields take the broker's defaults.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    #[schema(minimum = 1)]
    pub partitions: Option<u32>,
    /// Per partition; 0 keeps messages forever.
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub retention_messages: Option<u64>,
    #[schema(minimum = 1)]
    pub max_message_bytes: Option<u32>,
    pub storage: Option<Storage>,
    pub durability: Option<DurabilitySetting>,
    /// Messages with a `msg-id` header seen within this window are dropped. 0: off.
    pub dedup_window_ms: Option<u64>,
    /// Cluster mode: copies of each partition, on distinct nodes (absent: min(3, voting
    /// nodes); more is refused). A single-node broker accepts 1 only.
    #[schema(minimum = 1)]
    pub replication_factor: Option<u32>,
}

/// A topic's settings, every one reported.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TopicSettingsInfo {
    pub partitions: u32,
    /// Per partition; 0 keeps messages forever.
    pub retention_ms: u64,
    pub retention_bytes: u64,
    pub retention_messages: u64,
    pub max_message_bytes: u32,
    pub storage: Storage,
    pub durability: Durability,
    /// Messages with a `msg-id` header seen within this window are dropped. 0: off.
    pub dedup_window_ms: u64,
    /// Cluster mode: copies of each partition; absent in single-node mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<u32>,
}

impl From<TopicConfig> for TopicSpec {
    fn from(c: TopicConfig) -> TopicSpec {
        let durability = c.durability.map(|d| match d {
            DurabilitySetting::Fsync => DurabilityMode::Fsync,
            DurabilitySetting::Buffered => DurabilityMode::Buffered,
        });
        TopicSpec {
            partitions: c.partitions,
            retention_ms: c.retention_ms,
            retention_bytes: c.retention_bytes,
            retention_messages: c.retention_messages,
            max_message_bytes: c.max_message_bytes,
            storage: c.storage.map(|s| match s {
                Storage::Disk => StorageKind::Disk,
                Storage::Memory => StorageKind::Memory,
            }),
            durability,
            dedup_window_ms: c.dedup_window_ms,
            replication_factor: c.replication_factor,
        }
    }
}

/// What an existing topic may change; absent fields keep their value. The partition count and
/// the storage are fixed when the topic is created, so they are not fields here.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlterTopic {
    /// Per partition; 0 keeps messages forever.
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub retention_messages: Option<u64>,
    #[schema(minimum = 1)]
    pub max_message_bytes: Option<u32>,
    /// A disk topic's durability (a memory topic has none).
    pub durability: Option<DurabilitySetting>,
    /// Messages with a `msg-id` header seen within this window are dropped. 0: off.
    pub dedup_window_ms: Option<u64>,
}

impl From<AlterTopic> for TopicConfig {
    fn from(a: AlterTopic) -> TopicConfig {
        TopicConfig {
            partitions: None,
            storage: None,
            retention_ms: a.retention_ms,
            retention_bytes: a.retention_bytes,
            retention_messages: a.retention_messages,
            max_message_bytes: a.max_message_bytes,
            durability: a.durability,
            dedup_window_ms: a.dedup_window_ms,
            replication_factor: None,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    /// `[A-Za-z0-9._-]{1,200}`.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,200}$")]
    pub name: String,
    #[serde(default)]
    pub config: Option<TopicConfig>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartitionInfo {
    pub partition: u32,
    pub log_start_offset: u64,
    pub high_watermark: u64,
    pub bytes: u64,
    /// Cluster mode: the nodes holding the partition, preferred leader first; absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<u64>,
    /// Cluster mode: the partition group's leader as the answering node knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicInfo {
    pub name: String,
    pub config: TopicSettingsInfo,
    pub partitions: Vec<PartitionInfo>,
    pub created_at_ms: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicList {
    pub topics: Vec<TopicInfo>,
}

impl From<TopicStatus> for TopicInfo {
    fn from(t: TopicStatus) -> TopicInfo {
        let s = &t.settings;
        TopicInfo {
            config: TopicSettingsInfo {
                partitions: s.partitions,
                retention_ms: s.retention_ms,
                retention_bytes: s.retention_bytes,
                retention_messages: s.retention_messages,
                max_message_bytes: s.max_message_bytes,
                storage: match s.storage {
                    StorageKind::Disk => Storage::Disk,
                    StorageKind::Memory => Storage::Memory,
                },
                durability: s.ack_durability().into(),
                dedup_window_ms: s.dedup_window_ms,
                replication_factor: t.replication_factor,
            },
            name: t.name,
            partitions: t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition,
                    log_start_offset: p.log_start_offset,
                    high_watermark: p.high_watermark,
                    bytes: p.bytes,
                    replicas: p.replicas.clone(),
                    leader: p.leader,
                })
                .collect(),
            created_at_ms: t.created_at_ms,
        }
    }
}

/// Creates a topic.
#[utoipa::path(post, path = "/v1/topics", tag = "topics", request_body = CreateTopic,
    responses(
        (status = 201, description = "Created", body = TopicInfo),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(topic = %body.name))]
pub async fn create(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Json(body): Json<CreateTopic>,
) -> Result<(StatusCode, Json<TopicInfo>), ApiError> {
    let spec = TopicSpec::from(body.config.unwrap_or_default());
    let topic = state
        .engine
        .create_topic(&principal, &body.name, spec)
        .await?;
    Ok((StatusCode::CREATED, Json(topic.into())))
}

/// Lists the topics.
#[utoipa::path(get, path = "/v1/topics", tag = "topics",
    responses(
        (status = 200, description = "The topics, by name", body = TopicList),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    principal: Principal,
    State(state): State<Arc<RestState>>,
) -> Result<Json<TopicList>, ApiError> {
    let topics = state.engine.list_topics_described(&principal).await?;
    Ok(Json(TopicList {
        topics: topics.into_iter().map(Into::into).collect(),
    }))
}

/// Describes a topic: settings and partitions.
#[utoipa::path(get, path = "/v1/topics/{topic}", tag = "topics",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    responses(
        (status = 200, description = "The topic", body = TopicInfo),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn describe(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path(topic): Path<String>,
) -> Result<Json<TopicInfo>, ApiError> {
    Ok(Json(
        state
            .engine
            .describe_topic(&principal, &topic)
            .await?
            .into(),
    ))
}

/// Alters a topic: retention, max message size, durability, dedup window. Absent fields keep
/// their value; the partition count and storage cannot change.
#[utoipa::path(patch, path = "/v1/topics/{topic}", tag = "topics", request_body = AlterTopic,
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    responses(
        (status = 200, description = "The altered topic", body = TopicInfo),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(topic = %topic))]
pub async fn alter(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path(topic): Path<String>,
    Json(body): Json<AlterTopic>,
) -> Result<Json<TopicInfo>, ApiError> {
    let spec = TopicSpec::from(TopicConfig::from(body));
    let altered = state.engine.alter_topic(&principal, &topic, spec).await?;
    Ok(Json(altered.into()))
}

/// Deletes a topic with its messages and subscriptions.
#[utoipa::path(delete, path = "/v1/topics/{topic}", tag = "topics",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(topic = %topic))]
pub async fn delete(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path(topic): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.delete_topic(&principal, &topic).await?;
    Ok(StatusCode::NO_CONTENT)
}
