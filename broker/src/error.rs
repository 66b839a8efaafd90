//! The broker's one error type: a stable [`ErrorCode`] plus a message for people.
//!
//! Transports map it without looking inside: gRPC sends `code.grpc_code()` with the code in
//! metadata, REST sends `code.http_status()` with a problem+json body. Internal details (storage
//! failures) are logged where they happen; the message sent to clients stays generic.

use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1::LeaderHint;

use crate::storage::StorageError;

/// An error with a stable code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    code: ErrorCode,
    message: String,
    /// When the client should retry (an overloaded broker says so); sent as gRPC metadata
    /// `retry-after-ms` and HTTP `Retry-After`.
    retry_after: Option<std::time::Duration>,
    /// An `UNAUTHENTICATED` for a token whose secret matched but that has expired; sent as
    /// `rapidmq-auth-reason: expired` so that a client with a password logs in again.
    credentials_expired: bool,
    /// The tenant quota that refused the request (`rapidmq-quota`).
    quota: Option<&'static str>,
    /// Cluster mode: where the partition this request was for is led (an `UNAVAILABLE` from a
    /// node that cannot serve it); sent in the gRPC status details (docs/errors.md).
    leader_hint: Option<Box<LeaderHint>>,
}

/// Result alias for the broker.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            retry_after: None,
            credentials_expired: false,
            quota: None,
            leader_hint: None,
        }
    }

    /// The same error, telling the client where the partition is led.
    pub fn with_leader_hint(mut self, hint: LeaderHint) -> Error {
        self.leader_hint = Some(Box::new(hint));
        self
    }

    /// Where the partition this error is about is led, if the node said.
    pub fn leader_hint(&self) -> Option<&LeaderHint> {
        self.leader_hint.as_deref()
    }

    /// The leader hint, to fill in what only the transport knows (the leader's address).
    pub fn leader_hint_mut(&mut self) -> Option<&mut LeaderHint> {
        self.leader_hint.as_deref_mut()
    }

    /// The same error, naming the tenant quota that refused the request.
    pub fn with_quota(mut self, quota: &'static str) -> Error {
        self.quota = Some(quota);
        self
    }

    /// The tenant quota that refused the request, if one did.
    pub fn quota(&self) -> Option<&'static str> {
        self.quota
    }

    pub fn resource_exhausted(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::ResourceExhausted, message)
    }

    /// The same error, marked as an expired credential (`rapidmq-auth-reason: expired`).
    pub fn with_credentials_expired(mut self) -> Error {
        self.credentials_expired = true;
        self
    }

    /// Whether the credential was right but has expired.
    pub fn credentials_expired(&self) -> bool {
        self.credentials_expired
    }

    /// The same error with a retry hint.
    pub fn with_retry_after(mut self, after: std::time::Duration) -> Error {
        self.retry_after = Some(after);
        self
    }

    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidArgument, message)
    }

    pub fn malformed(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::MalformedRequest, message)
    }

    pub fn topic_not_found(name: &str) -> Error {
        Error::new(
            ErrorCode::TopicNotFound,
            format!("topic `{name}` does not exist"),
        )
    }

    pub fn subscription_not_found(topic: &str, name: &str) -> Error {
        Error::new(
            ErrorCode::SubscriptionNotFound,
            format!("subscription `{name}` does not exist on topic `{topic}`"),
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::Unavailable, message)
    }

    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::Internal, message)
    }
}

impl From<StorageError> for Error {
    fn from(err: StorageError) -> Error {
        tracing::error!(cause = %err, "storage operation failed");
        Error::new(
            ErrorCode::StorageError,
            "the storage engine failed the operation",
        )
    }
}

/// Checks a topic or subscription name.
pub fn check_name(kind: &str, name: &str) -> Result<()> {
    if rapidmq_proto::is_valid_name(name) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::InvalidName,
            format!(
                "invalid {kind} name `{}`: use 1 to {} characters from [A-Za-z0-9._-]",
                name.escape_debug(),
                rapidmq_proto::MAX_NAME_LEN
            ),
        ))
    }
}
