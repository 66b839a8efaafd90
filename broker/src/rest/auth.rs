//! `/v1/auth`: password login for a session token, and who the caller is (the `Auth` RPCs).

use std::sync::Arc;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::RestState;
use super::error::{ApiError, Json, Problem};
use crate::auth::SESSION_COOKIE;
use crate::observability::Transport;
use crate::principal::{Credential, Principal, PrincipalKind, Source};
use crate::tls::PeerInfo;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// `alice` (tenant `default`) or `tenant/alice`.
    pub user: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginResult {
    /// The session token in full, `rmq_<id>_<secret>`: send it as `authorization: Bearer`.
    pub token: String,
    pub token_id: String,
    /// When the session ends, in ms since the Unix epoch.
    pub expires_at_ms: u64,
}

/// Checks a password and returns a session token; also sets it as the `rapidmq_session`
/// cookie (`HttpOnly; SameSite=Strict`), which the broker accepts on `GET` and `HEAD` only (the
/// dashboard). Every failure is the same `UNAUTHENTICATED`; after five in a row for a user from
/// one address, that address backs off (`RESOURCE_EXHAUSTED` with `Retry-After`).
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = Login,
    security(()),
    responses(
        (status = 200, description = "Logged in", body = LoginResult),
        (status = "default", description = "An error (RFC 9457); UNAUTHENTICATED for any credentials that do not work", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user = %body.user))]
pub async fn login(
    State(state): State<Arc<RestState>>,
    peer: Option<Extension<ConnectInfo<PeerInfo>>>,
    Json(body): Json<Login>,
) -> Result<Response, ApiError> {
    let peer = peer.map_or_else(PeerInfo::unknown, |Extension(ConnectInfo(peer))| peer);
    let source = Source {
        addr: peer.remote,
        transport: Transport::Http.label(),
    };
    let issued = state
        .engine
        .login(&body.user, body.password, &peer, source)
        .await?;
    let ttl_s = state.engine.auth().config().session_ttl_ms / 1000;
    let secure = if state.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={ttl_s}{secure}",
        issued.token
    );
    let result = LoginResult {
        token: issued.token.to_string(),
        token_id: issued.record.id,
        expires_at_ms: issued.record.expires_at_ms.unwrap_or(0),
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(result)).into_response())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub tenant: String,
    /// Absent for an anonymous caller.
    pub user: Option<String>,
    /// `anonymous`, `user` or `system`.
    pub kind: String,
    /// The token or session the caller authenticated with.
    pub token_id: Option<String>,
    /// When the credential expires, in ms since the Unix epoch; absent if it does not.
    pub expires_at_ms: Option<u64>,
    /// Whether the broker requires credentials (`auth.enabled`).
    pub auth_enabled: bool,
}

/// The caller as the broker sees it.
#[utoipa::path(get, path = "/v1/auth/whoami", tag = "auth",
    responses(
        (status = 200, description = "The caller", body = WhoAmI),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn whoami(
    principal: Principal,
    State(state): State<Arc<RestState>>,
) -> Result<Json<WhoAmI>, ApiError> {
    state.engine.authenticated(&principal)?;
    let token_id = match principal.credential() {
        Some(Credential::Token(id) | Credential::Session(id)) => Some(id.clone()),
        Some(Credential::Certificate) | None => None,
    };
    let kind = match principal.kind() {
        PrincipalKind::Anonymous => "anonymous",
        PrincipalKind::User => "user",
        PrincipalKind::System => "system",
    };
    Ok(Json(WhoAmI {
        tenant: principal.home_tenant().to_string(),
        user: principal.name().map(str::to_string),
        kind: kind.to_string(),
        token_id,
        expires_at_ms: principal.expires_at_ms(),
        auth_enabled: state.engine.auth().enabled(),
    }))
}
