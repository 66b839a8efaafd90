//! `/v1/status`: broker-wide figures (the `Admin.GetStatus` RPC).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::RestState;
use super::cluster::ClusterHandle;
use super::error::{ApiError, Json, Problem};
use crate::principal::Principal;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BrokerStatus {
    pub version: String,
    pub uptime_ms: u64,
    pub topics: u32,
    pub subscriptions: u32,
    /// The node's id in cluster mode (`"2"`), `"single"` on a single-node broker.
    pub node_id: String,
    /// fsyncs the disk store has issued since the broker started.
    pub fsyncs: u64,
}

/// The broker's status.
#[utoipa::path(get, path = "/v1/status", tag = "broker",
    responses(
        (status = 200, description = "Status", body = BrokerStatus),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Extension(cluster): Extension<ClusterHandle>,
) -> Result<Json<BrokerStatus>, ApiError> {
    let status = state.engine.status(&principal)?;
    Ok(Json(BrokerStatus {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_ms: status.uptime.as_millis() as u64,
        topics: status.topics,
        subscriptions: status.subscriptions,
        node_id: cluster
            .as_deref()
            .map_or_else(|| "single".to_string(), |c| c.id().to_string()),
        fsyncs: status.fsyncs,
    }))
}
