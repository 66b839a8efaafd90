//! `/v1/users` and `/v1/tokens`: users of the caller's tenant and their API tokens (the user
//! and token `Admin` RPCs). The engine authorizes each (an admin, or the caller's own account),
//! so the handlers take the caller as the authentication layer left it.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::RestState;
use super::error::{ApiError, Json, Path, Problem};
use crate::auth::{TokenKind, TokenRecord, UserRecord};
use crate::principal::Principal;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserInfo {
    pub tenant: String,
    pub name: String,
    /// Whether the user can log in with a password.
    pub has_password: bool,
    pub created_at_ms: u64,
}

impl From<&UserRecord> for UserInfo {
    fn from(u: &UserRecord) -> UserInfo {
        UserInfo {
            tenant: u.tenant.clone(),
            name: u.name.clone(),
            has_password: u.password_phc.is_some(),
            created_at_ms: u.created_at_ms,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserInfo>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// `[A-Za-z0-9._-]{1,200}`.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,200}$")]
    pub name: String,
    /// Absent: the user authenticates with API tokens only.
    #[schema(min_length = 1)]
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    #[schema(min_length = 1)]
    pub password: String,
}

/// A token without its secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub tenant: String,
    pub user: String,
    /// `api` (created by an admin) or `session` (from a login).
    pub kind: String,
    pub description: String,
    pub created_at_ms: u64,
    /// Absent: never expires.
    pub expires_at_ms: Option<u64>,
}

impl From<&TokenRecord> for TokenInfo {
    fn from(t: &TokenRecord) -> TokenInfo {
        TokenInfo {
            id: t.id.clone(),
            tenant: t.tenant.clone(),
            user: t.user.clone(),
            kind: TokenKind::as_str(t.kind).to_string(),
            description: t.description.clone(),
            created_at_ms: t.created_at_ms,
            expires_at_ms: t.expires_at_ms,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenInfo>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    #[serde(default)]
    pub description: Option<String>,
    /// Absent or 0: the token does not expire.
    pub ttl_ms: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The token in full, `rmq_<id>_<secret>`: shown only here.
    pub token: String,
    pub info: TokenInfo,
}

/// Lists the users of the caller's tenant.
#[utoipa::path(get, path = "/v1/users", tag = "auth",
    responses(
        (status = 200, description = "The users, by name", body = UserList),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
) -> Result<Json<UserList>, ApiError> {
    let users = state.engine.list_users(&principal)?;
    Ok(Json(UserList {
        users: users.iter().map(|u| UserInfo::from(&**u)).collect(),
    }))
}

/// Creates a user in the caller's tenant.
#[utoipa::path(post, path = "/v1/users", tag = "auth", request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = UserInfo),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user = %body.name))]
pub async fn create(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
    Json(body): Json<CreateUser>,
) -> Result<(StatusCode, Json<UserInfo>), ApiError> {
    let user = state
        .engine
        .create_user(&principal, &body.name, body.password)
        .await?;
    Ok((StatusCode::CREATED, Json(UserInfo::from(&*user))))
}

/// Deletes a user and revokes its tokens.
#[utoipa::path(delete, path = "/v1/users/{user}", tag = "auth",
    params(("user" = String, Path, description = "User name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user = %user))]
pub async fn delete(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.delete_user(&principal, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a user's password.
#[utoipa::path(put, path = "/v1/users/{user}/password", tag = "auth", request_body = SetPassword,
    params(("user" = String, Path, description = "User name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    responses(
        (status = 204, description = "Set"),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user = %user))]
pub async fn set_password(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
    Path(user): Path<String>,
    Json(body): Json<SetPassword>,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .set_password(&principal, &user, body.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists a user's tokens (API and session), without their secrets.
#[utoipa::path(get, path = "/v1/users/{user}/tokens", tag = "auth",
    params(("user" = String, Path, description = "User name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    responses(
        (status = 200, description = "The tokens, oldest first", body = TokenList),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn tokens(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
    Path(user): Path<String>,
) -> Result<Json<TokenList>, ApiError> {
    let tokens = state.engine.list_tokens(&principal, Some(&user))?;
    Ok(Json(TokenList {
        tokens: tokens.iter().map(|t| TokenInfo::from(&**t)).collect(),
    }))
}

/// Creates an API token for a user. The full token is in this answer only.
#[utoipa::path(post, path = "/v1/users/{user}/tokens", tag = "auth", request_body = CreateToken,
    params(("user" = String, Path, description = "User name", pattern = r"^[A-Za-z0-9._-]{1,200}$")),
    responses(
        (status = 201, description = "Created", body = CreatedToken),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user = %user))]
pub async fn create_token(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
    Path(user): Path<String>,
    Json(body): Json<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let issued = state
        .engine
        .create_token(
            &principal,
            Some(&user),
            body.description.as_deref().unwrap_or_default(),
            body.ttl_ms,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: issued.token.to_string(),
            info: TokenInfo::from(&issued.record),
        }),
    ))
}

/// Revokes a token (API or session) at once.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "auth",
    params(("id" = String, Path, description = "Token id (the part after `rmq_`)", pattern = r"^[a-z2-7]{12}$")),
    responses(
        (status = 204, description = "Revoked"),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke(
    Extension(principal): Extension<Principal>,
    State(state): State<Arc<RestState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.revoke_tokens(&principal, &[id]).await?;
    Ok(StatusCode::NO_CONTENT)
}
