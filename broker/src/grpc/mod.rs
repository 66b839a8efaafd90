//! The gRPC adapter: thin tonic services over the [`Engine`].
//!
//! Each handler takes the request's [`Principal`], converts wire types (see `convert`), calls
//! the engine and maps its [`Error`] to a `Status` carrying the stable code in metadata
//! (`rapidmq-error-code`, `rapidmq-error-name`). Streams carry errors as `rapidmq.v1.Error`.

mod admin;
mod consume;
mod convert;
mod messaging;

use std::sync::Arc;

use rapidmq_proto::v1::admin_server::AdminServer;
use rapidmq_proto::v1::messaging_server::MessagingServer;
use rapidmq_proto::{ERROR_CODE_METADATA, ERROR_NAME_METADATA};
use tonic::Status;
use tonic::metadata::MetadataValue;

use crate::engine::Engine;
use crate::error::Error;
use crate::principal::Principal;

pub use admin::AdminService;
pub use messaging::MessagingService;

/// The caller of a request. Authentication arrives with the security work; until then every
/// caller is anonymous in the `default` tenant.
fn principal<T>(_request: &tonic::Request<T>) -> Principal {
    Principal::anonymous()
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        let code = err.code();
        crate::observability::metrics::count_error(crate::observability::Transport::Grpc, code);
        let mut status = Status::new(code.grpc_code(), err.message().to_string());
        let metadata = status.metadata_mut();
        metadata.insert(ERROR_CODE_METADATA, MetadataValue::from(code.code()));
        metadata.insert(ERROR_NAME_METADATA, MetadataValue::from_static(code.name()));
        status
    }
}

/// Both services, with message-size limits from the config.
pub fn services(
    engine: Arc<Engine>,
    max_request_bytes: usize,
    max_inflight_per_stream: usize,
) -> (MessagingServer<MessagingService>, AdminServer<AdminService>) {
    let messaging = MessagingServer::new(MessagingService::new(
        engine.clone(),
        max_inflight_per_stream,
    ))
    .max_decoding_message_size(max_request_bytes)
    .max_encoding_message_size(max_request_bytes);
    let admin = AdminServer::new(AdminService::new(engine))
        .max_decoding_message_size(max_request_bytes)
        .max_encoding_message_size(max_request_bytes);
    (messaging, admin)
}
