//! The RapidMQ wire contract, and the single source of truth for it.
//!
//! Layout:
//! - [`v1`]: the prost messages and tonic clients/servers generated from `rapidmq/v1/*.proto`.
//!   Payloads (`key`, `value`, `batch`) are `bytes::Bytes`, so decoding slices the receive buffer
//!   instead of copying it.
//! - [`batch`]: batch compression, and [`batch::decode`], how every reader of a stored batch
//!   gets its messages.
//! - [`partition_for_key`]: the partition function, shared by the broker and the client core.
//! - [`ErrorCode`]: the stable error-code table. Codes are API; their message text is not.
//! - [`MSG_ID_HEADER`], [`TRACEPARENT_HEADER`], [`REPLY_TO_HEADER`], [`CORRELATION_ID_HEADER`],
//!   [`CONTENT_TYPE_HEADER`]: the message headers the broker and the clients
//!   give a meaning to, named once here.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC server reflection.
//!
//! This crate does no I/O and needs no runtime.

pub mod batch;
mod error_code;
pub mod hint;
mod partition;

pub use error_code::{
    AUTH_REASON_EXPIRED, AUTH_REASON_METADATA, ERROR_CODE_METADATA, ERROR_NAME_METADATA, ErrorCode,
    QUOTA_METADATA, RETRY_AFTER_METADATA, TENANT_METADATA,
};
pub use partition::partition_for_key;

/// The message header carrying an application message id: the broker deduplicates on it per
/// topic (`dedup_window_ms`), and message-flow events can be looked up by it.
pub const MSG_ID_HEADER: &str = "msg-id";

/// The W3C trace-context header: kept unchanged on a message, and marks it as traced.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The topic a request's reply goes to (the requester's inbox); set by the client core's
/// `request`, read by its `reply`.
pub const REPLY_TO_HEADER: &str = "reply-to";

/// What ties a reply to its request: set on a request, copied onto its reply.
pub const CORRELATION_ID_HEADER: &str = "correlation-id";

/// The media type of a message's value, when its producer says (the SDKs' JSON helpers set
/// [`JSON_CONTENT_TYPE`]); informative only: the broker and the cores never read it.
pub const CONTENT_TYPE_HEADER: &str = "content-type";

/// The `content-type` of a value written by an SDK's JSON helper.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// Generated code for the `rapidmq.v1` protobuf package.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("rapidmq.v1");
}

/// The encoded `FileDescriptorSet` of every RapidMQ proto file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("rapidmq_descriptor");

/// Longest topic or subscription name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// Whether `name` is a valid topic or subscription name: `[A-Za-z0-9._-]{1,200}`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_pattern() {
        assert!(is_valid_name("orders"));
        assert!(is_valid_name("orders.eu-west_1"));
        assert!(is_valid_name(&"a".repeat(200)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"a".repeat(201)));
        assert!(!is_valid_name("orders/eu"));
        assert!(!is_valid_name("ordres é"));
        assert!(!is_valid_name("a b"));
    }

    #[test]
    fn descriptor_set_names_both_services() {
        use prost::Message;
        let set = prost_types_shim::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
        let services: Vec<String> = set
            .file
            .iter()
            .flat_map(|f| f.service.iter().map(|s| s.name.clone().unwrap_or_default()))
            .collect();
        assert!(services.contains(&"Messaging".to_string()));
        assert!(services.contains(&"Admin".to_string()));
    }

    /// Just enough of descriptor.proto to read service names, so the test needs no extra crate.
    mod prost_types_shim {
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct FileDescriptorSet {
            #[prost(message, repeated, tag = "1")]
            pub file: Vec<FileDescriptorProto>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct FileDescriptorProto {
            #[prost(message, repeated, tag = "6")]
            pub service: Vec<ServiceDescriptorProto>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct ServiceDescriptorProto {
            #[prost(string, optional, tag = "1")]
            pub name: Option<String>,
        }
    }
}
