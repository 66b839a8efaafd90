//! `/v1/audit` and `/v1/audit/export`: the audit log (`Admin.ListAuditEvents`), a page at a
//! time or every matching record as JSON lines. Tenant admins see their tenant's records,
//! cluster admins every tenant's; the engine authorizes.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::RestState;
use super::error::{ApiError, Json, Problem, Query};
use crate::audit::{self, AuditQuery, AuditRecord, MAX_LIMIT};
use crate::principal::Principal;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only records at or after this time, ms since the epoch.
    pub since_ms: Option<u64>,
    /// Only records before this time, ms since the epoch.
    pub until_ms: Option<u64>,
    /// Only this actor's records (`tenant/user`, `token:<id>`, `anonymous`, `rapidmq`).
    pub actor: Option<String>,
    /// Only actions starting with this, e.g. `auth.` or `topic.delete`.
    pub action_prefix: Option<String>,
    /// Only this outcome: `ok`, `failed` or `denied`.
    pub outcome: Option<String>,
    /// Most records per page (1 to 1000, default 100); the export ignores it.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// From a previous page's `next_page_token`.
    pub page_token: Option<String>,
}

impl AuditParams {
    fn query(self) -> Result<AuditQuery, ApiError> {
        let outcome = self
            .outcome
            .filter(|o| !o.is_empty())
            .map(|o| audit::parse_outcome(&o))
            .transpose()?;
        if self.limit.is_some_and(|l| l == 0 || l > MAX_LIMIT) {
            return Err(crate::error::Error::invalid(format!(
                "limit is between 1 and {MAX_LIMIT}"
            ))
            .into());
        }
        Ok(AuditQuery {
            since_ms: self.since_ms,
            until_ms: self.until_ms,
            actor: self.actor.filter(|a| !a.is_empty()),
            action_prefix: self.action_prefix.filter(|a| !a.is_empty()),
            outcome,
            tenant: None,
            limit: self.limit.unwrap_or(0),
            page_token: self.page_token.filter(|t| !t.is_empty()),
        })
    }
}

/// One audit record. Repeated failures from one source are coalesced into one record with a
/// count.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    /// Opaque and ordered.
    pub id: String,
    pub ts_ms: u64,
    /// The broker node that wrote it.
    pub node: u32,
    /// The tenant the action was in.
    pub tenant: String,
    /// `tenant/user`, `token:<id>` when the token is unknown, `anonymous`, or `rapidmq`.
    pub actor: String,
    /// The client's address (empty when unknown).
    pub source_addr: String,
    /// `grpc` or `http` (empty for the broker's own records).
    pub transport: String,
    /// Dotted and stable: `auth.login`, `authz.denied`, `topic.delete`, … (docs/security.md).
    pub action: String,
    /// What it acted on, e.g. `topic:orders`, `user:acme/alice`.
    pub target: String,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    pub detail: String,
    /// How many occurrences this record stands for (coalesced failures); 1 otherwise.
    pub count: u64,
}

impl AuditEvent {
    fn new(id: String, r: AuditRecord) -> AuditEvent {
        AuditEvent {
            id,
            ts_ms: r.ts_ms,
            node: u32::from(r.node),
            tenant: r.tenant,
            actor: r.actor,
            source_addr: r.source.addr,
            transport: r.source.transport,
            action: r.action,
            target: r.target,
            outcome: r.outcome.as_str().to_string(),
            detail: r.detail,
            count: r.count,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEvents {
    /// Oldest first.
    pub events: Vec<AuditEvent>,
    /// Absent when there is nothing more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// A page of the audit log, oldest first: needs `Admin` on the tenant; a cluster admin sees
/// every tenant's records.
#[utoipa::path(get, path = "/v1/audit", tag = "auth",
    params(AuditParams),
    responses(
        (status = 200, description = "Matching records, oldest first", body = AuditEvents),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Query(params): Query<AuditParams>,
) -> Result<Json<AuditEvents>, ApiError> {
    let page = state.engine.list_audit(&principal, params.query()?).await?;
    Ok(Json(AuditEvents {
        events: page
            .records
            .into_iter()
            .map(|(id, r)| AuditEvent::new(id, r))
            .collect(),
        next_page_token: page.next_page_token,
    }))
}

/// Every matching record of the audit log, oldest first, as JSON lines (one `AuditEvent` per
/// line), streamed; `limit` and `page_token` are ignored.
#[utoipa::path(get, path = "/v1/audit/export", tag = "auth",
    params(AuditParams),
    responses(
        (status = 200, description = "One AuditEvent JSON object per line", body = String, content_type = "application/x-ndjson"),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Query(params): Query<AuditParams>,
) -> Result<Response, ApiError> {
    let mut query = params.query()?;
    query.limit = MAX_LIMIT;
    query.page_token = None;
    // The first page is read before answering, so a refusal is a problem document, not a
    // broken stream.
    let first = state.engine.list_audit(&principal, query.clone()).await?;
    let (engine, principal) = (state.engine.clone(), Arc::new(principal));
    let pages = futures::stream::unfold(Some((first, query)), move |state| {
        let (engine, principal) = (engine.clone(), principal.clone());
        async move {
            let (page, mut query) = state?;
            let lines = ndjson(page.records);
            let Some(token) = page.next_page_token else {
                return Some((Ok(lines), None));
            };
            query.page_token = Some(token);
            match engine.list_audit(&principal, query.clone()).await {
                Ok(next) => Some((Ok(lines), Some((next, query)))),
                Err(err) => {
                    // The answer has started: all that is left is to cut it short.
                    tracing::error!(cause = %err, "audit export stopped");
                    Some((Err(std::io::Error::other(err.to_string())), None))
                }
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(pages),
    )
        .into_response())
}

/// One JSON object per record, each ended by a newline.
fn ndjson(records: Vec<(String, AuditRecord)>) -> Bytes {
    let mut out = Vec::new();
    for (id, record) in records {
        // Plain strings and numbers: serialising cannot fail.
        if serde_json::to_writer(&mut out, &AuditEvent::new(id, record)).is_ok() {
            out.push(b'\n');
        }
    }
    Bytes::from(out)
}
