//! The REST adapter: HTTP/JSON under `/v1`, a thin layer over the [`Engine`] like `grpc`.
//!
//! Each handler takes the request's [`Principal`], converts JSON to engine types, calls the
//! engine and answers JSON, or an [`error::ApiError`] as RFC 9457 problem+json carrying the
//! stable error code. One module per resource:
//! - `topics`, `subscriptions`, `status`, `dlq`: the `Admin` operations.
//! - `publish`: one message or a batch; the adapter encodes the `MessageBatch` a producer would.
//! - `fetch`: read a partition by offset. `consume`: long-poll a subscription. `acks`: ack,
//!   nack, extend (queue mode) and commit (stream mode).
//! - `sse`, `websocket`: live consumption over Server-Sent Events and WebSocket (`live` opens
//!   their session); `consumers` keeps the queue sessions of long-polling consumers, and the
//!   stream sessions other nodes' live sessions take messages through.
//! - `flow`: recent message-flow events of traced messages.
//! - `auth`: login and who-am-I; `users`: users and their API tokens; `roles`: roles and
//!   their bindings to users; `audit`: the audit log, a page at a time or exported as JSON
//!   lines.
//! - `messages`: messages as JSON. `openapi`: the OpenAPI document and the docs page.
//! - `error`: problem documents, and the extractors that turn axum's rejections into them.

mod acks;
mod audit;
mod auth;
pub mod cluster;
mod consume;
mod consumers;
mod dlq;
pub mod error;
mod fetch;
mod flow;
mod live;
mod messages;
mod metadata;
pub mod openapi;
mod params;
mod publish;
mod relay;
mod roles;
mod sse;
mod status;
mod strict;
mod subscriptions;
mod tenants;
mod topics;
mod users;
mod websocket;

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use axum::Router;
use axum::routing::{delete, get, patch, post, put};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::budget::PublishBudget;
use crate::config::Config;
use crate::engine::{Engine, MAX_FETCH_WAIT};
use crate::principal::Principal;
use consumers::Consumers;

/// What the handlers share.
pub struct RestState {
    engine: Arc<Engine>,
    consumers: Consumers,
    /// Picks the partition of keyless messages published without one.
    round_robin: AtomicU32,
    /// Longest a long-poll or fetch waits: below the request timeout.
    max_wait: Duration,
    publish_budget: PublishBudget,
    /// One permit per open SSE or WebSocket session (`limits.max_live_sessions`).
    live_sessions: Arc<Semaphore>,
    /// Whether the listener serves TLS (the session cookie is then `Secure`).
    tls: bool,
    /// This node's part of the cluster (`None` in single-node mode): REST requests that need
    /// partitions other nodes lead are relayed to them (`relay`).
    cluster: cluster::ClusterHandle,
    /// Which source of a queue poll gets the rest of its `max` next (`relay`).
    relay_turn: std::sync::atomic::AtomicUsize,
}

impl RestState {
    /// A place for one more SSE or WebSocket session, held while it is open.
    fn live_session_permit(&self) -> Result<OwnedSemaphorePermit, error::ApiError> {
        self.live_sessions.clone().try_acquire_owned().map_err(|_| {
            error::ApiError::new(
                rapidmq_proto::ErrorCode::ResourceExhausted,
                "too many SSE and WebSocket sessions are open (limits.max_live_sessions)",
            )
        })
    }
}

/// The caller of a request, which the authentication layer (`crate::auth::AuthLayer`) put in
/// its extensions (as `grpc::principal` takes it). What it may do is checked by the engine
/// operation it calls (docs/adr/0004-security.md §6), which also refuses anonymous callers
/// while auth is on.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = error::ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Principal, error::ApiError> {
        Ok(parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| crate::Error::internal("the request passed no authentication layer"))?)
    }
}

/// The `/v1` routes. Must be called inside a tokio runtime (it starts the sweeper of idle
/// queue consumers, which ends when the router is dropped).
pub fn router(
    engine: Arc<Engine>,
    config: &Config,
    publish_budget: PublishBudget,
    cluster: cluster::ClusterHandle,
) -> Router {
    let http = &config.http;
    let idle = Duration::from_millis(http.consumer_idle_timeout_ms);
    let state = Arc::new(RestState {
        engine,
        consumers: Consumers::new(http.max_consumers, idle),
        round_robin: AtomicU32::new(0),
        max_wait: MAX_FETCH_WAIT.min(Duration::from_millis(http.request_timeout_ms) / 2),
        publish_budget,
        live_sessions: Arc::new(Semaphore::new(config.limits.max_live_sessions)),
        tls: config.tls.enabled(),
        cluster,
        relay_turn: Default::default(),
    });
    if let Some(node) = &state.cluster {
        let handler: std::sync::Weak<dyn crate::cluster::service::RelayHandler> =
            Arc::downgrade(&state) as _;
        node.serve_relay(handler);
    }
    Consumers::spawn_sweeper(Arc::downgrade(&state), |s: &RestState| &s.consumers, idle);
    let topic = "/v1/topics/{topic}";
    let sub = "/v1/topics/{topic}/subscriptions/{subscription}";
    Router::new()
        .route("/v1/status", get(status::get))
        .route("/v1/cluster", get(cluster::get))
        .route("/v1/metadata", get(metadata::get))
        .route("/v1/cluster/nodes", post(cluster::add))
        .route("/v1/cluster/nodes/{id}", delete(cluster::remove))
        .route("/v1/cluster/rebalance-leaders", post(cluster::rebalance))
        .route(
            "/v1/cluster/rebalance-replicas",
            post(cluster::rebalance_replicas_route),
        )
        .route("/v1/flow-events", get(flow::list))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/whoami", get(auth::whoami))
        .route("/v1/users", get(users::list).post(users::create))
        .route("/v1/users/{user}", delete(users::delete))
        .route("/v1/users/{user}/password", put(users::set_password))
        .route(
            "/v1/users/{user}/tokens",
            get(users::tokens).post(users::create_token),
        )
        .route("/v1/tokens/{id}", delete(users::revoke))
        .route("/v1/audit", get(audit::list))
        .route("/v1/audit/export", get(audit::export))
        .route("/v1/roles", get(roles::list).post(roles::create))
        .route("/v1/roles/{role}", delete(roles::delete))
        .route("/v1/role-bindings", get(roles::bindings).post(roles::bind))
        .route("/v1/role-bindings/{user}/{role}", delete(roles::unbind))
        .route("/v1/tenants", get(tenants::list).post(tenants::create))
        .route(
            "/v1/tenants/{tenant}",
            get(tenants::describe).delete(tenants::delete),
        )
        .route("/v1/tenants/{tenant}/quotas", patch(tenants::set_quotas))
        .route("/v1/topics", get(topics::list).post(topics::create))
        .route(
            topic,
            get(topics::describe)
                .patch(topics::alter)
                .delete(topics::delete),
        )
        .route("/v1/subscriptions", get(subscriptions::list_all))
        .route(
            &format!("{topic}/subscriptions"),
            get(subscriptions::list).post(subscriptions::create),
        )
        .route(
            sub,
            get(subscriptions::describe).delete(subscriptions::delete),
        )
        .route(&format!("{sub}/seek"), post(subscriptions::seek))
        .route(&format!("{topic}/message"), post(publish::one))
        .route(&format!("{topic}/messages"), post(publish::batch))
        .route(
            &format!("{topic}/partitions/{{partition}}/messages"),
            get(fetch::fetch),
        )
        .route(&format!("{sub}/messages"), get(consume::poll))
        .route(&format!("{sub}/ack"), post(acks::ack))
        .route(&format!("{sub}/nack"), post(acks::nack))
        .route(&format!("{sub}/extend"), post(acks::extend))
        .route(&format!("{sub}/commit"), post(acks::commit))
        .route(&format!("{sub}/events"), get(sse::events))
        .route(&format!("{sub}/ws"), get(websocket::socket))
        .route(&format!("{topic}/dead-letters"), get(dlq::list))
        .route(&format!("{topic}/dead-letters/replay"), post(dlq::replay))
        .with_state(state)
        .merge(openapi::routes(&config.limits, &config.queue))
}
