//! `/v1/tenants`: tenants and their quotas (the tenant `Admin` RPCs). Only a cluster admin
//! creates, lists, deletes or changes quotas; a tenant's own callers may describe it. A cluster
//! admin acts inside another tenant by sending `rapidmq-tenant: <name>` with any request.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::RestState;
use super::error::{ApiError, Json, Path, Problem};
use crate::engine::TenantStatus;
use crate::principal::Principal;
use crate::tenant::TenantQuotas;

/// Per-tenant limits; 0 is unlimited. Rates are per broker node. In a request an absent field
/// keeps its value (or the broker's default); in an answer every field is the value in effect.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    pub publish_bytes_per_sec: Option<u64>,
    pub publish_msgs_per_sec: Option<u64>,
    pub consume_bytes_per_sec: Option<u64>,
    /// Bytes stored in the tenant's partitions.
    pub storage_bytes: Option<u64>,
    pub max_topics: Option<u64>,
    pub max_partitions: Option<u64>,
    /// Open client connections in the tenant.
    pub max_connections: Option<u64>,
}

/// What a tenant uses now, on this node.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    pub topics: u64,
    pub partitions: u64,
    pub storage_bytes: u64,
    pub connections: u64,
    pub users: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    pub name: String,
    pub quotas: Quotas,
    pub usage: Usage,
    pub created_at_ms: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<Tenant>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub name: String,
    /// Absent fields take the broker's defaults (`[quota_defaults]`).
    #[serde(default)]
    pub quotas: Quotas,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuotas {
    /// Fields set here replace the tenant's values.
    #[serde(default)]
    pub quotas: Quotas,
    /// Quota names that go back to the broker's defaults.
    #[serde(default)]
    pub reset: Vec<String>,
}

impl From<Quotas> for TenantQuotas {
    fn from(q: Quotas) -> TenantQuotas {
        TenantQuotas {
            publish_bytes_per_sec: q.publish_bytes_per_sec,
            publish_msgs_per_sec: q.publish_msgs_per_sec,
            consume_bytes_per_sec: q.consume_bytes_per_sec,
            storage_bytes: q.storage_bytes,
            max_topics: q.max_topics,
            max_partitions: q.max_partitions,
            max_connections: q.max_connections,
        }
    }
}

impl From<TenantStatus> for Tenant {
    fn from(t: TenantStatus) -> Tenant {
        let (q, u) = (t.quotas, t.usage);
        Tenant {
            name: t.name,
            quotas: Quotas {
                publish_bytes_per_sec: Some(q.publish_bytes_per_sec),
                publish_msgs_per_sec: Some(q.publish_msgs_per_sec),
                consume_bytes_per_sec: Some(q.consume_bytes_per_sec),
                storage_bytes: Some(q.storage_bytes),
                max_topics: Some(q.max_topics),
                max_partitions: Some(q.max_partitions),
                max_connections: Some(q.max_connections),
            },
            usage: Usage {
                topics: u.topics,
                partitions: u.partitions,
                storage_bytes: u.storage_bytes,
                connections: u.connections,
                users: u.users,
            },
            created_at_ms: t.created_at_ms,
        }
    }
}

/// Lists every tenant with its quotas and usage (cluster admins).
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants",
    responses(
        (status = 200, description = "The tenants, by name", body = TenantList),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
) -> Result<Json<TenantList>, ApiError> {
    let tenants = state.engine.list_tenants(&principal)?;
    Ok(Json(TenantList {
        tenants: tenants.into_iter().map(Into::into).collect(),
    }))
}

/// Creates a tenant (cluster admins).
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses(
        (status = 201, description = "Created", body = Tenant),
        (status = "default", description = "An error (RFC 9457); TENANT_ALREADY_EXISTS for a taken name", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(tenant = %body.name))]
pub async fn create(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
    Json(body): Json<CreateTenant>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    let tenant = state
        .engine
        .create_tenant(&principal, &body.name, body.quotas.into())
        .await?;
    Ok((StatusCode::CREATED, Json(tenant.into())))
}

/// Describes a tenant: its quotas in effect and its usage (its own callers, or cluster admins).
#[utoipa::path(get, path = "/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant name", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    responses(
        (status = 200, description = "The tenant", body = Tenant),
        (status = "default", description = "An error (RFC 9457); TENANT_NOT_FOUND for a missing tenant or one the caller may not see", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn describe(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
    Path(tenant): Path<String>,
) -> Result<Json<Tenant>, ApiError> {
    let tenant = state.engine.describe_tenant(&principal, Some(&tenant))?;
    Ok(Json(tenant.into()))
}

/// Deletes a tenant with no topics and no users, with its custom roles (cluster admins).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant name", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = "default", description = "An error (RFC 9457); TENANT_NOT_EMPTY while it has topics or users", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(tenant = %tenant))]
pub async fn delete(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
    Path(tenant): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.delete_tenant(&principal, &tenant).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes some of a tenant's quotas (cluster admins): set fields replace, `reset` names go
/// back to the defaults. Open producers and consumers follow at once.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/quotas", tag = "tenants", request_body = SetQuotas,
    params(("tenant" = String, Path, description = "Tenant name", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    responses(
        (status = 200, description = "The tenant with its new quotas", body = Tenant),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(tenant = %tenant))]
pub async fn set_quotas(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
    Path(tenant): Path<String>,
    Json(body): Json<SetQuotas>,
) -> Result<Json<Tenant>, ApiError> {
    let tenant = state
        .engine
        .set_tenant_quotas(&principal, &tenant, body.quotas.into(), &body.reset)
        .await?;
    Ok(Json(tenant.into()))
}
