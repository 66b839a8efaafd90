//! `/v1/roles` and `/v1/role-bindings`: the roles of the caller's tenant and their bindings to
//! users (the role `Admin` RPCs). Permissions are JSON objects with lowercase strings:
//! `{"effect": "allow", "actions": ["publish"], "resource": "topic", "pattern": "orders.",
//! "pattern_type": "prefix"}`. The engine authorizes each operation, so the handlers take the
//! caller as the authentication layer left it.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::RestState;
use super::error::{ApiError, Json, Path, Problem, Query};
use crate::auth::{self, BindingRecord};
use crate::engine::RoleInfo;
use crate::principal::Principal;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    /// Wins over any allow that also matches.
    Deny,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Publish,
    Consume,
    Create,
    Delete,
    Alter,
    Describe,
    /// Users, tokens, roles and bindings (on the tenant); tenants and quotas (on the cluster).
    Admin,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResourceType {
    /// The pattern matches topic names.
    Topic,
    /// The pattern matches `topic/subscription`.
    Subscription,
    /// The caller's tenant (no pattern).
    Tenant,
    /// The whole broker (no pattern); only roles bound at cluster scope reach it.
    Cluster,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PatternType {
    /// The name itself.
    Literal,
    /// Every name that starts with the pattern (empty: every name).
    Prefix,
    /// `*` matches any run of characters, `?` one character.
    Glob,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BindingScope {
    /// The role applies in the user's tenant.
    #[default]
    Tenant,
    /// The role applies across the broker (`admin` so bound is a cluster admin); only a
    /// cluster admin may bind at this scope.
    Cluster,
}

/// One rule of a role.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    pub effect: Effect,
    #[schema(min_items = 1)]
    pub actions: Vec<Action>,
    pub resource: ResourceType,
    /// Required for topics and subscriptions (an empty prefix matches every name); absent or
    /// empty for the tenant and the cluster.
    #[serde(default)]
    pub pattern: String,
    /// For topics and subscriptions; absent: `literal`. Absent for the tenant and the cluster.
    pub pattern_type: Option<PatternType>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Role {
    pub name: String,
    /// A built-in role (admin, producer, consumer, viewer): it cannot be changed or deleted.
    pub builtin: bool,
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoleList {
    pub roles: Vec<Role>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,200}$")]
    pub name: String,
    #[schema(min_items = 1)]
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoleBinding {
    pub tenant: String,
    pub user: String,
    pub role: String,
    pub scope: BindingScope,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoleBindingList {
    pub bindings: Vec<RoleBinding>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindRole {
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,200}$")]
    pub user: String,
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,200}$")]
    pub role: String,
    /// Absent: tenant.
    #[serde(default)]
    pub scope: BindingScope,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BindingParams {
    /// Only this user's bindings (absent: every binding of the tenant).
    #[param(pattern = r"^[A-Za-z0-9._-]{1,200}$")]
    pub user: Option<String>,
}

impl From<Action> for auth::Action {
    fn from(a: Action) -> auth::Action {
        match a {
            Action::Publish => auth::Action::Publish,
            Action::Consume => auth::Action::Consume,
            Action::Create => auth::Action::Create,
            Action::Delete => auth::Action::Delete,
            Action::Alter => auth::Action::Alter,
            Action::Describe => auth::Action::Describe,
            Action::Admin => auth::Action::Admin,
        }
    }
}

impl From<auth::Action> for Action {
    fn from(a: auth::Action) -> Action {
        match a {
            auth::Action::Publish => Action::Publish,
            auth::Action::Consume => Action::Consume,
            auth::Action::Create => Action::Create,
            auth::Action::Delete => Action::Delete,
            auth::Action::Alter => Action::Alter,
            auth::Action::Describe => Action::Describe,
            auth::Action::Admin => Action::Admin,
        }
    }
}

impl TryFrom<Permission> for auth::Permission {
    type Error = crate::Error;

    fn try_from(p: Permission) -> crate::error::Result<auth::Permission> {
        let named = matches!(p.resource, ResourceType::Topic | ResourceType::Subscription);
        auth::Permission::new(
            match p.effect {
                Effect::Allow => auth::Effect::Allow,
                Effect::Deny => auth::Effect::Deny,
            },
            p.actions.into_iter().map(Into::into).collect(),
            match p.resource {
                ResourceType::Topic => auth::ResourceType::Topic,
                ResourceType::Subscription => auth::ResourceType::Subscription,
                ResourceType::Tenant => auth::ResourceType::Tenant,
                ResourceType::Cluster => auth::ResourceType::Cluster,
            },
            p.pattern,
            p.pattern_type
                .or(named.then_some(PatternType::Literal))
                .map(|t| match t {
                    PatternType::Literal => auth::PatternType::Literal,
                    PatternType::Prefix => auth::PatternType::Prefix,
                    PatternType::Glob => auth::PatternType::Glob,
                }),
        )
    }
}

impl From<&auth::Permission> for Permission {
    fn from(p: &auth::Permission) -> Permission {
        let named = matches!(
            p.resource,
            auth::ResourceType::Topic | auth::ResourceType::Subscription
        );
        Permission {
            effect: match p.effect {
                auth::Effect::Allow => Effect::Allow,
                auth::Effect::Deny => Effect::Deny,
            },
            actions: p.actions.iter().map(|&a| a.into()).collect(),
            resource: match p.resource {
                auth::ResourceType::Topic => ResourceType::Topic,
                auth::ResourceType::Subscription => ResourceType::Subscription,
                auth::ResourceType::Tenant => ResourceType::Tenant,
                auth::ResourceType::Cluster => ResourceType::Cluster,
            },
            pattern: p.pattern.clone(),
            pattern_type: named.then_some(match p.pattern_type {
                auth::PatternType::Literal => PatternType::Literal,
                auth::PatternType::Prefix => PatternType::Prefix,
                auth::PatternType::Glob => PatternType::Glob,
            }),
        }
    }
}

impl From<RoleInfo> for Role {
    fn from(r: RoleInfo) -> Role {
        Role {
            name: r.name,
            builtin: r.builtin,
            permissions: r.permissions.iter().map(Into::into).collect(),
        }
    }
}

impl From<BindingRecord> for RoleBinding {
    fn from(b: BindingRecord) -> RoleBinding {
        RoleBinding {
            tenant: b.tenant,
            user: b.user,
            role: b.role,
            scope: match b.scope {
                auth::BindingScope::Tenant => BindingScope::Tenant,
                auth::BindingScope::Cluster => BindingScope::Cluster,
            },
        }
    }
}

/// Lists the roles of the caller's tenant: the built-in ones, then the custom ones by name.
#[utoipa::path(get, path = "/v1/roles", tag = "auth",
    responses(
        (status = 200, description = "The roles", body = RoleList),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
) -> Result<Json<RoleList>, ApiError> {
    let roles = state.engine.list_roles(&principal)?;
    Ok(Json(RoleList {
        roles: roles.into_iter().map(Into::into).collect(),
    }))
}

/// Creates a custom role in the caller's tenant.
#[utoipa::path(post, path = "/v1/roles", tag = "auth", request_body = CreateRole,
    responses(
        (status = 201, description = "Created", body = Role),
        (status = "default", description = "An error (RFC 9457); ROLE_ALREADY_EXISTS for a taken name, built-in ones included", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(role = %body.name))]
pub async fn create(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
    Json(body): Json<CreateRole>,
) -> Result<(StatusCode, Json<Role>), ApiError> {
    let permissions = body
        .permissions
        .into_iter()
        .map(auth::Permission::try_from)
        .collect::<crate::error::Result<Vec<_>>>()?;
    let role = state
        .engine
        .create_role(&principal, &body.name, permissions)
        .await?;
    Ok((StatusCode::CREATED, Json(role.into())))
}

/// Deletes a custom role and every binding of it.
#[utoipa::path(delete, path = "/v1/roles/{role}", tag = "auth",
    params(("role" = String, Path, description = "Role name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = "default", description = "An error (RFC 9457); INVALID_ARGUMENT for a built-in role", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(role = %role))]
pub async fn delete(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
    Path(role): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.delete_role(&principal, &role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists the role bindings of the caller's tenant, by user then role (a user may list its own).
#[utoipa::path(get, path = "/v1/role-bindings", tag = "auth", params(BindingParams),
    responses(
        (status = 200, description = "The bindings", body = RoleBindingList),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn bindings(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
    Query(params): Query<BindingParams>,
) -> Result<Json<RoleBindingList>, ApiError> {
    let bindings = state
        .engine
        .list_role_bindings(&principal, params.user.as_deref())?;
    Ok(Json(RoleBindingList {
        bindings: bindings.into_iter().map(Into::into).collect(),
    }))
}

/// Binds a role to a user (again: nothing changes). Cluster scope needs a cluster admin.
#[utoipa::path(post, path = "/v1/role-bindings", tag = "auth", request_body = BindRole,
    responses(
        (status = 201, description = "Bound", body = RoleBinding),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user = %body.user, role = %body.role))]
pub async fn bind(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
    Json(body): Json<BindRole>,
) -> Result<(StatusCode, Json<RoleBinding>), ApiError> {
    let scope = match body.scope {
        BindingScope::Tenant => auth::BindingScope::Tenant,
        BindingScope::Cluster => auth::BindingScope::Cluster,
    };
    let binding = state
        .engine
        .bind_role(&principal, &body.user, &body.role, scope)
        .await?;
    Ok((StatusCode::CREATED, Json(binding.into())))
}

/// Removes a role from a user: ROLE_NOT_FOUND when it is not bound.
#[utoipa::path(delete, path = "/v1/role-bindings/{user}/{role}", tag = "auth",
    params(
        ("user" = String, Path, description = "User name", pattern = r"^[A-Za-z0-9._-]{1,200}$"),
        ("role" = String, Path, description = "Role name", pattern = r"^[A-Za-z0-9._-]{1,200}$"),
    ),
    responses(
        (status = 204, description = "Unbound"),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user = %user, role = %role))]
pub async fn unbind(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
    Path((user, role)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.engine.unbind_role(&principal, &user, &role).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_read_and_write_as_lowercase_json() {
        let text = r#"{"effect":"deny","actions":["consume","describe"],"resource":"subscription","pattern":"orders.*/audit-*","pattern_type":"glob"}"#;
        let p: Permission = serde_json::from_str(text).unwrap();
        let domain = auth::Permission::try_from(p).unwrap();
        assert_eq!(
            serde_json::to_string(&Permission::from(&domain)).unwrap(),
            text
        );
        let tenant: Permission = serde_json::from_str(
            r#"{"effect":"allow","actions":["describe"],"resource":"tenant"}"#,
        )
        .unwrap();
        let domain = auth::Permission::try_from(tenant).unwrap();
        assert_eq!(
            serde_json::to_value(Permission::from(&domain)).unwrap()["pattern_type"],
            serde_json::Value::Null
        );
    }
}
