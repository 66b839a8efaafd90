//! The error-code table: defined once here, exposed by every SDK.
//!
//! Codes are grouped in ranges per subsystem and a retired code is never reused:
//!
//! | range | subsystem |
//! |-------|-----------|
//! | 1000–1999 | the request itself (malformed, invalid arguments) |
//! | 2000–2999 | topics and partitions |
//! | 3000–3999 | publishing |
//! | 4000–4999 | subscriptions and consuming |
//! | 5000–5999 | the broker (storage, overload, shutdown, cluster nodes) |
//! | 6000–6999 | security: authentication, authorisation, TLS |

use tonic::Code;

/// gRPC metadata key carrying the numeric error code on a failed call.
pub const ERROR_CODE_METADATA: &str = "rapidmq-error-code";
/// gRPC metadata key carrying the error name (e.g. `TOPIC_NOT_FOUND`) on a failed call.
pub const ERROR_NAME_METADATA: &str = "rapidmq-error-name";
/// gRPC metadata key carrying how long to wait before retrying, in ms, on a refusal that says
/// when (`RESOURCE_EXHAUSTED` from the publish byte budget).
pub const RETRY_AFTER_METADATA: &str = "retry-after-ms";
/// gRPC metadata key (and HTTP header) on a `RESOURCE_EXHAUSTED` answer from a tenant quota,
/// naming the quota (a `TenantQuotas` field name, e.g. `publish_bytes_per_sec`).
pub const QUOTA_METADATA: &str = "rapidmq-quota";
/// gRPC metadata key (and HTTP header) with which a cluster admin acts inside another tenant.
pub const TENANT_METADATA: &str = "rapidmq-tenant";
/// gRPC metadata key (and HTTP header) on an `UNAUTHENTICATED` answer saying why, sent only
/// as [`AUTH_REASON_EXPIRED`]: every other failure looks alike.
pub const AUTH_REASON_METADATA: &str = "rapidmq-auth-reason";
/// [`AUTH_REASON_METADATA`] when the token's secret matched but the token has expired: a client
/// with a user and password logs in again.
pub const AUTH_REASON_EXPIRED: &str = "expired";

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $grpc:ident, $http:literal, $retriable:literal; )*) => {
        /// A stable RapidMQ error code. The numbers and names are API; the messages that go with
        /// them are not.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant = $code, )*
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The numeric code.
            pub const fn code(self) -> u32 {
                self as u32
            }

            /// The upper-snake-case name, e.g. `TOPIC_NOT_FOUND`.
            pub const fn name(self) -> &'static str {
                match self { $(ErrorCode::$variant => $name,)* }
            }

            /// The gRPC status code this error is sent with.
            pub const fn grpc_code(self) -> Code {
                match self { $(ErrorCode::$variant => Code::$grpc,)* }
            }

            /// The HTTP status this error is sent with by the REST API.
            pub const fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $http,)* }
            }

            /// Whether retrying the same request may succeed. Clients retry only these.
            pub const fn is_retriable(self) -> bool {
                match self { $(ErrorCode::$variant => $retriable,)* }
            }

            /// The code with this number, if it is one.
            pub const fn from_code(code: u32) -> Option<ErrorCode> {
                match code { $($code => Some(ErrorCode::$variant),)* _ => None }
            }

            /// The code with this name, if it is one.
            pub fn from_name(name: &str) -> Option<ErrorCode> {
                match name { $($name => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

error_codes! {
    /// The request is not valid; the message says which field and why.
    InvalidArgument = 1001, "INVALID_ARGUMENT", InvalidArgument, 400, false;
    /// The request or an embedded batch could not be decoded.
    MalformedRequest = 1002, "MALFORMED_REQUEST", InvalidArgument, 400, false;
    /// A topic or subscription name is not `[A-Za-z0-9._-]{1,200}`.
    InvalidName = 1003, "INVALID_NAME", InvalidArgument, 400, false;
    /// A consumer granted 0 credits.
    InvalidCredits = 1004, "INVALID_CREDITS", InvalidArgument, 400, false;

    /// The topic does not exist.
    TopicNotFound = 2001, "TOPIC_NOT_FOUND", NotFound, 404, false;
    /// A topic with that name already exists.
    TopicAlreadyExists = 2002, "TOPIC_ALREADY_EXISTS", AlreadyExists, 409, false;
    /// The partition count is 0 or above the broker's limit.
    InvalidPartitionCount = 2003, "INVALID_PARTITION_COUNT", InvalidArgument, 400, false;
    /// The topic has no such partition.
    PartitionNotFound = 2004, "PARTITION_NOT_FOUND", NotFound, 404, false;
    /// A topic setting is out of range.
    InvalidTopicConfig = 2005, "INVALID_TOPIC_CONFIG", InvalidArgument, 400, false;

    /// A message is larger than the topic's `max_message_bytes`.
    MessageTooLarge = 3001, "MESSAGE_TOO_LARGE", InvalidArgument, 413, false;
    /// A publish carried no messages.
    EmptyBatch = 3002, "EMPTY_BATCH", InvalidArgument, 400, false;
    /// An idempotent producer skipped sequence numbers; messages in between were lost.
    OutOfOrderSequence = 3003, "OUT_OF_ORDER_SEQUENCE", FailedPrecondition, 409, false;
    /// `deliver_at` or `delay` is further out than the broker allows (`limits.max_delay_ms`).
    DeliverAtOutOfRange = 3004, "DELIVER_AT_OUT_OF_RANGE", InvalidArgument, 400, false;
    /// A message priority is above 9.
    InvalidPriority = 3005, "INVALID_PRIORITY", InvalidArgument, 400, false;

    /// The subscription does not exist.
    SubscriptionNotFound = 4001, "SUBSCRIPTION_NOT_FOUND", NotFound, 404, false;
    /// A subscription with that name already exists on the topic.
    SubscriptionAlreadyExists = 4002, "SUBSCRIPTION_ALREADY_EXISTS", AlreadyExists, 409, false;
    /// The subscription exists with a different mode, or the request is for the other mode
    /// (a nack on a stream subscription, a commit on a queue subscription).
    SubscriptionModeMismatch = 4003, "SUBSCRIPTION_MODE_MISMATCH", FailedPrecondition, 409, false;
    /// A Consume stream sent credits or commits before subscribing, or subscribed twice.
    NotSubscribed = 4004, "NOT_SUBSCRIBED", FailedPrecondition, 400, false;
    /// A commit or fetch names an offset beyond the partition's high watermark.
    OffsetOutOfRange = 4005, "OFFSET_OUT_OF_RANGE", OutOfRange, 400, false;
    /// A commit for a partition this member does not own (it moved in a rebalance).
    NotPartitionOwner = 4006, "NOT_PARTITION_OWNER", FailedPrecondition, 409, false;
    /// An ack, nack or extension names a delivery that is not in flight for this consumer
    /// (unknown, already acked, redelivered elsewhere, or of another subscription).
    ReceiptUnknown = 4007, "RECEIPT_UNKNOWN", FailedPrecondition, 409, false;

    /// An unexpected broker fault; details are in the broker log.
    Internal = 5001, "INTERNAL", Internal, 500, false;
    /// The storage engine failed the operation.
    StorageError = 5002, "STORAGE_ERROR", Unavailable, 503, true;
    /// The broker is shutting down (or, for clients, cannot be reached).
    Unavailable = 5003, "UNAVAILABLE", Unavailable, 503, true;
    /// A limit was reached (in-flight bytes, connections); back off and retry.
    ResourceExhausted = 5004, "RESOURCE_EXHAUSTED", ResourceExhausted, 429, true;
    /// The operation did not finish in time.
    Timeout = 5005, "TIMEOUT", DeadlineExceeded, 504, true;
    /// The node is not a member of the cluster's metadata group (removing a node that never
    /// joined or was already removed).
    NodeNotFound = 5006, "NODE_NOT_FOUND", NotFound, 404, false;

    /// No credentials where they are needed, or credentials that do not work (unknown, wrong,
    /// expired or revoked: one answer for all of them).
    Unauthenticated = 6001, "UNAUTHENTICATED", Unauthenticated, 401, false;
    /// No role bound to the caller allows this action on this resource (or one denies it).
    PermissionDenied = 6002, "PERMISSION_DENIED", PermissionDenied, 403, false;
    /// The named tenant does not exist, or the caller may not see it (the same answer).
    TenantNotFound = 6003, "TENANT_NOT_FOUND", NotFound, 404, false;
    /// The tenant still has topics or users: delete them first.
    TenantNotEmpty = 6004, "TENANT_NOT_EMPTY", FailedPrecondition, 409, false;
    /// The named user does not exist in the caller's tenant.
    UserNotFound = 6005, "USER_NOT_FOUND", NotFound, 404, false;
    /// A user with this name already exists in the caller's tenant.
    UserAlreadyExists = 6006, "USER_ALREADY_EXISTS", AlreadyExists, 409, false;
    /// The named role does not exist in the caller's tenant (built-in or custom).
    RoleNotFound = 6007, "ROLE_NOT_FOUND", NotFound, 404, false;
    /// A role with this name already exists in the caller's tenant (the built-in names are
    /// taken).
    RoleAlreadyExists = 6008, "ROLE_ALREADY_EXISTS", AlreadyExists, 409, false;
    /// The named token does not exist (or was revoked) in the caller's tenant.
    TokenNotFound = 6009, "TOKEN_NOT_FOUND", NotFound, 404, false;
    /// The client's TLS handshake with the broker failed: the broker's certificate is not
    /// trusted or not for this name, the broker refused the client's certificate, or the
    /// endpoint does not speak TLS. Client-side only: the broker never sends it (the gRPC and
    /// HTTP columns are what a transport reports for a failed handshake). Retrying cannot fix a
    /// certificate.
    TlsHandshakeFailed = 6010, "TLS_HANDSHAKE_FAILED", Unavailable, 503, false;
    /// A tenant with this name already exists.
    TenantAlreadyExists = 6011, "TENANT_ALREADY_EXISTS", AlreadyExists, 409, false;
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::from_name(s)
            .or_else(|| s.parse().ok().and_then(ErrorCode::from_code))
            .ok_or_else(|| format!("unknown error code `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_and_names_are_unique_and_round_trip() {
        let mut codes = HashSet::new();
        let mut names = HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(codes.insert(code.code()), "duplicate code {}", code.code());
            assert!(names.insert(code.name()), "duplicate name {}", code.name());
            assert_eq!(ErrorCode::from_code(code.code()), Some(code));
            assert_eq!(code.name().parse::<ErrorCode>(), Ok(code));
        }
    }

    #[test]
    fn codes_sit_in_their_subsystem_range() {
        for &code in ErrorCode::ALL {
            assert!(
                (1000..7000).contains(&code.code()),
                "{code} outside every range"
            );
        }
        assert_eq!(ErrorCode::TopicNotFound.code() / 1000, 2);
        assert_eq!(ErrorCode::MessageTooLarge.code() / 1000, 3);
    }

    #[test]
    fn only_transient_conditions_are_retriable() {
        let retriable: Vec<_> = ErrorCode::ALL.iter().filter(|c| c.is_retriable()).collect();
        assert_eq!(
            retriable,
            [
                &ErrorCode::StorageError,
                &ErrorCode::Unavailable,
                &ErrorCode::ResourceExhausted,
                &ErrorCode::Timeout
            ]
        );
    }
}
