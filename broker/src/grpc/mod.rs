//! The gRPC adapter: thin tonic services over the [`Engine`].
//!
//! Each handler takes the request's [`Principal`], converts wire types (see `convert`), calls
//! the engine and maps its [`Error`] to a `Status` carrying the stable code in metadata
//! (`rapidmq-error-code`, `rapidmq-error-name`). Streams carry errors as `rapidmq.v1.Error`.

mod admin;
mod auth;
mod consume;
mod convert;
mod messaging;
pub(crate) mod metadata;

use crate::rest::cluster::ClusterHandle;
use std::sync::Arc;

use rapidmq_proto::v1::admin_server::AdminServer;
use rapidmq_proto::v1::auth_server::AuthServer;
use rapidmq_proto::v1::messaging_server::MessagingServer;
use rapidmq_proto::{
    AUTH_REASON_EXPIRED, AUTH_REASON_METADATA, ERROR_CODE_METADATA, ERROR_NAME_METADATA,
    QUOTA_METADATA, RETRY_AFTER_METADATA,
};
use tokio::sync::Semaphore;
use tonic::Status;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataValue;
use tower::layer::util::{Identity, Stack};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::load_shed::error::Overloaded;
use tower::util::MapErrLayer;
use tower::{BoxError, ServiceBuilder};

use crate::budget::PublishBudget;
use crate::engine::Engine;
use crate::error::Error;
use crate::principal::Principal;

pub use admin::AdminService;
pub use auth::AuthService;
pub use messaging::MessagingService;

/// The caller of a request, which the authentication layer (`crate::auth::AuthLayer`) put in
/// its extensions. What it may do is checked by the engine operation it calls
/// (docs/adr/0004-security.md §6), which also refuses anonymous callers while auth is on.
fn principal<T>(request: &tonic::Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| {
            Status::from(Error::internal(
                "the request passed no authentication layer",
            ))
        })
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        let code = err.code();
        crate::observability::metrics::count_error(crate::observability::Transport::Grpc, code);
        let mut status = match err.leader_hint() {
            Some(hint) => {
                let details =
                    rapidmq_proto::hint::encode_hint(code.grpc_code() as i32, err.message(), hint);
                Status::with_details(code.grpc_code(), err.message(), details.into())
            }
            None => Status::new(code.grpc_code(), err.message().to_string()),
        };
        let metadata = status.metadata_mut();
        metadata.insert(ERROR_CODE_METADATA, MetadataValue::from(code.code()));
        metadata.insert(ERROR_NAME_METADATA, MetadataValue::from_static(code.name()));
        if let Some(after) = err.retry_after() {
            let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
            metadata.insert(RETRY_AFTER_METADATA, MetadataValue::from(ms));
        }
        if let Some(quota) = err.quota() {
            metadata.insert(QUOTA_METADATA, MetadataValue::from_static(quota));
        }
        if err.credentials_expired() {
            metadata.insert(
                AUTH_REASON_METADATA,
                MetadataValue::from_static(AUTH_REASON_EXPIRED),
            );
        }
        status
    }
}

/// The services, with message-size limits from the config.
pub fn services(
    engine: Arc<Engine>,
    max_request_bytes: usize,
    max_inflight_per_stream: usize,
    budget: PublishBudget,
    cluster: ClusterHandle,
) -> (
    MessagingServer<MessagingService>,
    AdminServer<AdminService>,
    AuthServer<AuthService>,
) {
    // gzip is negotiated, never imposed: a request may come gzipped, and an answer is gzipped
    // only for a client that says it accepts gzip (the client core asks for it on admin calls,
    // whose lists and dead-letter pages shrink well; batches carry their own compression).
    let messaging = MessagingServer::new(MessagingService::new(
        engine.clone(),
        max_inflight_per_stream,
        budget,
        cluster.clone(),
    ))
    .max_decoding_message_size(max_request_bytes)
    .max_encoding_message_size(max_request_bytes)
    .accept_compressed(CompressionEncoding::Gzip)
    .send_compressed(CompressionEncoding::Gzip);
    let admin = AdminServer::new(AdminService::new(engine.clone(), cluster))
        .max_decoding_message_size(max_request_bytes)
        .max_encoding_message_size(max_request_bytes)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let auth = AuthServer::new(AuthService::new(engine))
        .max_decoding_message_size(max_request_bytes)
        .max_encoding_message_size(max_request_bytes)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    (messaging, admin, auth)
}

/// The layer that bounds the requests being handled at once to the permits of `requests`
/// (`limits.max_concurrent_requests`, shared with REST). A stream holds its permit only until
/// it is set up. A request that finds none free is answered `RESOURCE_EXHAUSTED` with the
/// stable code in metadata, at once.
pub type ConcurrencyLimit = ServiceBuilder<
    Stack<
        GlobalConcurrencyLimitLayer,
        Stack<LoadShedLayer, Stack<MapErrLayer<fn(BoxError) -> BoxError>, Identity>>,
    >,
>;

pub fn concurrency_limit(requests: Arc<Semaphore>) -> ConcurrencyLimit {
    ServiceBuilder::new()
        .layer(MapErrLayer::new(overloaded as fn(BoxError) -> BoxError))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(requests))
}

/// Load shedding's error as a status with RapidMQ's code (tonic's own says "per connection").
fn overloaded(err: BoxError) -> BoxError {
    if err.is::<Overloaded>() {
        Box::new(Status::from(crate::budget::too_many_requests()))
    } else {
        err
    }
}
