//! The one error type of the client core.
//!
//! Every error carries a stable [`ErrorCode`] ([`Error::code`]) and says whether retrying may
//! succeed ([`Error::is_retriable`]). The core has already retried retriable errors within the
//! configured budget before it returns one, so callers react to the *code*:
//!
//! - [`Error::Broker`]: the broker refused the request. Fix the request (non-retriable codes such
//!   as `TOPIC_NOT_FOUND` or `MESSAGE_TOO_LARGE`) or try later (retriable ones, after the budget
//!   ran out).
//! - [`Error::Unavailable`]: no broker could be reached (code `UNAVAILABLE`, retriable). Check the
//!   endpoints, or wait and retry.
//! - [`Error::Timeout`]: a request or a close did not finish in time (code `TIMEOUT`, retriable).
//! - [`Error::InvalidArgument`] / [`Error::Unsupported`]: the call itself is wrong or asks for a
//!   feature this version does not have (code `INVALID_ARGUMENT`). Retrying cannot help.
//! - [`Error::TlsHandshake`]: the TLS handshake with the broker failed (code
//!   `TLS_HANDSHAKE_FAILED`, not retriable). Fix the CA, the client certificate, the server name
//!   or the endpoint's scheme, as the message says.
//! - [`Error::Closed`]: the producer, consumer or runtime was closed. Create a new one.
//! - [`Error::Protocol`]: the broker sent something the core cannot decode (code
//!   `MALFORMED_REQUEST`); a version mismatch or a bug, worth a report.

use std::time::Duration;

use rapidmq_proto::{ERROR_CODE_METADATA, ERROR_NAME_METADATA, ErrorCode, RETRY_AFTER_METADATA};
use tonic::{Code, Status};

/// A client-core result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the client core. See the module docs for how to react.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The broker refused the request with a stable code.
    #[error("{code}: {message}")]
    Broker {
        /// The stable code.
        code: ErrorCode,
        /// Human-readable detail; not API.
        message: String,
        /// Whether the broker said retrying may succeed.
        retriable: bool,
        /// How long the broker asked the client to wait before retrying (an overloaded
        /// broker's `RESOURCE_EXHAUSTED`); the core's retries wait at least this long.
        retry_after: Option<Duration>,
        /// The tenant quota that refused the request (`rapidmq-quota`, e.g.
        /// `publish_bytes_per_sec`): the core waits it out without spending retries.
        quota: Option<String>,
    },
    /// No broker could be reached, or the connection broke during the request.
    #[error("broker unavailable: {message}")]
    Unavailable {
        /// What failed; not API.
        message: String,
    },
    /// The operation did not finish in time.
    #[error("timed out: {message}")]
    Timeout {
        /// What timed out; not API.
        message: String,
    },
    /// An argument or a configuration value is invalid.
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// Which argument and why; not API.
        message: String,
    },
    /// The TLS handshake with the broker failed: its certificate is not trusted or not for this
    /// name, it refused ours, or it does not speak TLS.
    #[error("{message}")]
    TlsHandshake {
        /// What failed and what to fix, starting `TLS handshake with`; not API.
        message: String,
    },
    /// The operation or option is not supported (yet) in this mode or version.
    #[error("not supported: {message}")]
    Unsupported {
        /// What is unsupported; not API.
        message: String,
    },
    /// The producer, consumer or runtime has been closed.
    #[error("closed: {message}")]
    Closed {
        /// What was closed; not API.
        message: String,
    },
    /// The broker sent a response the core could not decode.
    #[error("protocol error: {message}")]
    Protocol {
        /// What could not be decoded; not API.
        message: String,
    },
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Broker { code, .. } => *code,
            Error::Unavailable { .. } => ErrorCode::Unavailable,
            Error::Timeout { .. } => ErrorCode::Timeout,
            Error::InvalidArgument { .. } | Error::Unsupported { .. } | Error::Closed { .. } => {
                ErrorCode::InvalidArgument
            }
            Error::Protocol { .. } => ErrorCode::MalformedRequest,
            Error::TlsHandshake { .. } => ErrorCode::TlsHandshakeFailed,
        }
    }

    /// Whether the same request may succeed if retried later.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Broker { retriable, .. } => *retriable,
            Error::Unavailable { .. } | Error::Timeout { .. } => true,
            _ => false,
        }
    }

    /// How long the broker asked to wait before retrying, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Broker { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The tenant quota that refused the request, if one did.
    pub fn quota(&self) -> Option<&str> {
        match self {
            Error::Broker { quota, .. } => quota.as_deref(),
            _ => None,
        }
    }

    /// The [`Error::TlsHandshake`] for a failed connection to `endpoint`, if a TLS error
    /// (`rustls::Error`) is behind `err`; `None` for any other failure. For tools that open
    /// their own TLS connections to the broker (the CLI's HTTP client), so they report
    /// handshake failures as the core does.
    pub fn tls_handshake_failure(
        endpoint: &str,
        err: &(dyn std::error::Error + 'static),
    ) -> Option<Error> {
        tls_failure(endpoint, err)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidArgument {
            message: message.into(),
        }
    }

    pub(crate) fn closed(message: impl Into<String>) -> Error {
        Error::Closed {
            message: message.into(),
        }
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Error {
        Error::Protocol {
            message: message.into(),
        }
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Error {
        Error::Unavailable {
            message: message.into(),
        }
    }

    /// Whether this error means the connection itself is suspect, so the next attempt should
    /// reconnect (possibly to another endpoint).
    pub(crate) fn is_connection_failure(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }
}

impl From<Status> for Error {
    /// A failed gRPC call. The broker puts the stable code in the `rapidmq-error-code` metadata;
    /// a status without it comes from the transport (connection refused or reset, deadline), and
    /// is mapped from the gRPC code.
    fn from(status: Status) -> Error {
        let metadata = status.metadata();
        let code = metadata
            .get(ERROR_CODE_METADATA)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u32>().ok())
            .and_then(ErrorCode::from_code)
            .or_else(|| {
                metadata
                    .get(ERROR_NAME_METADATA)
                    .and_then(|v| v.to_str().ok())
                    .and_then(ErrorCode::from_name)
            });
        let message = status.message().to_string();
        let retry_after = metadata
            .get(RETRY_AFTER_METADATA)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_millis);
        let quota = metadata
            .get(rapidmq_proto::QUOTA_METADATA)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if code.is_none()
            && let Some(tls) = tls_failure("the broker", &status)
        {
            // With TLS 1.3 a refused client certificate reaches the client only after its side
            // of the handshake, so it ends the first request rather than the connect.
            return tls;
        }
        if let Some(code) = code {
            return Error::Broker {
                code,
                message,
                retriable: code.is_retriable(),
                retry_after,
                quota,
            };
        }
        match status.code() {
            // Transport failures: refused, reset, GOAWAY, broken HTTP/2 stream.
            Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::Aborted
            | Code::Internal => Error::Unavailable { message },
            Code::DeadlineExceeded => Error::Timeout { message },
            other => {
                let code = match other {
                    Code::InvalidArgument => ErrorCode::InvalidArgument,
                    Code::ResourceExhausted => ErrorCode::ResourceExhausted,
                    Code::Unauthenticated => ErrorCode::Unauthenticated,
                    Code::PermissionDenied => ErrorCode::PermissionDenied,
                    _ => ErrorCode::Internal,
                };
                Error::Broker {
                    code,
                    message,
                    retriable: code.is_retriable(),
                    retry_after,
                    quota,
                }
            }
        }
    }
}

/// The error for a failed TLS handshake with `endpoint`, if a `rustls::Error` is behind `err`:
/// the broker's certificate is not trusted or not for this name, the broker refused ours, or it
/// does not speak TLS. Retrying cannot change that: it is an [`Error::TlsHandshake`]
/// (`TLS_HANDSHAKE_FAILED`) whose message starts with `TLS handshake with` and says what to fix.
pub(crate) fn tls_failure(
    endpoint: &str,
    err: &(dyn std::error::Error + 'static),
) -> Option<Error> {
    let cause = find_rustls_error(err)?;
    let chain = crate::client::error_chain(err);
    let hint = match cause {
        rustls::Error::InvalidCertificate(cert) => match cert {
            rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature => {
                "the broker's certificate is not signed by a trusted CA (check the CA setting)"
            }
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. } => {
                "the broker's certificate is not for this host name (check the endpoint or the \
                 server name setting)"
            }
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. } => {
                "the broker's certificate has expired"
            }
            _ => "the broker's certificate was rejected",
        },
        rustls::Error::AlertReceived(_) => {
            "the broker refused the connection (does it require a client certificate, or not \
             trust ours?)"
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the broker did not answer with TLS (does it serve plaintext? use http://)"
        }
        _ => "",
    };
    let sep = if hint.is_empty() { "" } else { ": " };
    Some(Error::TlsHandshake {
        message: format!("TLS handshake with {endpoint} failed: {hint}{sep}{chain}"),
    })
}

/// The `rustls::Error` behind `err`, if any. `io::Error::source` skips the error it wraps, so
/// each `io::Error` is also looked into, however deeply they nest (hyper-rustls wraps
/// tokio-rustls' `io::Error` in another one).
fn find_rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(err);
    while let Some(e) = current {
        let mut wrapped: &(dyn std::error::Error + 'static) = e;
        loop {
            if let Some(tls) = wrapped.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            match wrapped
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => wrapped = inner,
                None => break,
            }
        }
        current = e.source();
    }
    None
}

impl From<rapidmq_proto::v1::Error> for Error {
    /// An error message carried inside a stream.
    fn from(err: rapidmq_proto::v1::Error) -> Error {
        let code = ErrorCode::from_code(err.code)
            .or_else(|| ErrorCode::from_name(&err.name))
            .unwrap_or(ErrorCode::Internal);
        Error::Broker {
            code,
            message: err.message,
            retriable: err.retriable,
            retry_after: (err.retry_after_ms > 0)
                .then(|| Duration::from_millis(u64::from(err.retry_after_ms))),
            quota: None,
        }
    }
}

impl From<tonic::transport::Error> for Error {
    fn from(err: tonic::transport::Error) -> Error {
        tls_failure("the broker", &err).unwrap_or_else(|| Error::unavailable(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn status_with_code(grpc: Code, code: ErrorCode) -> Status {
        let mut status = Status::new(grpc, "nope");
        status
            .metadata_mut()
            .insert(ERROR_CODE_METADATA, MetadataValue::from(code.code()));
        status
            .metadata_mut()
            .insert(ERROR_NAME_METADATA, MetadataValue::from_static("IGNORED"));
        status
    }

    #[test]
    fn broker_status_carries_the_stable_code_from_metadata() {
        let err = Error::from(status_with_code(Code::NotFound, ErrorCode::TopicNotFound));
        assert_eq!(err.code(), ErrorCode::TopicNotFound);
        assert!(!err.is_retriable());
        let err = Error::from(status_with_code(Code::Unavailable, ErrorCode::StorageError));
        assert_eq!(err.code(), ErrorCode::StorageError);
        assert!(err.is_retriable());
    }

    #[test]
    fn status_without_metadata_is_a_retriable_connection_failure() {
        for code in [Code::Unavailable, Code::Unknown, Code::Cancelled] {
            let err = Error::from(Status::new(code, "transport error"));
            assert_eq!(err.code(), ErrorCode::Unavailable);
            assert!(err.is_retriable());
            assert!(err.is_connection_failure());
        }
        let err = Error::from(Status::deadline_exceeded("slow"));
        assert_eq!(err.code(), ErrorCode::Timeout);
        assert!(err.is_retriable());
    }

    #[test]
    fn stream_error_messages_keep_code_and_retriable_flag() {
        let err = Error::from(rapidmq_proto::v1::Error {
            code: ErrorCode::NotPartitionOwner.code(),
            name: "NOT_PARTITION_OWNER".into(),
            message: "moved".into(),
            retriable: false,
            retry_after_ms: 0,
            leader_hint: None,
        });
        assert_eq!(err.code(), ErrorCode::NotPartitionOwner);
        assert!(!err.is_retriable());
    }

    #[test]
    fn an_overloaded_broker_s_retry_hint_is_kept() {
        let mut status = status_with_code(Code::ResourceExhausted, ErrorCode::ResourceExhausted);
        status
            .metadata_mut()
            .insert(RETRY_AFTER_METADATA, MetadataValue::from(250u64));
        let err = Error::from(status);
        assert_eq!(err.code(), ErrorCode::ResourceExhausted);
        assert!(err.is_retriable());
        assert_eq!(err.retry_after(), Some(Duration::from_millis(250)));

        let err = Error::from(rapidmq_proto::v1::Error {
            code: ErrorCode::ResourceExhausted.code(),
            name: "RESOURCE_EXHAUSTED".into(),
            message: "busy".into(),
            retriable: true,
            retry_after_ms: 100,
            leader_hint: None,
        });
        assert_eq!(err.retry_after(), Some(Duration::from_millis(100)));
        assert_eq!(Error::unavailable("x").retry_after(), None);
    }

    #[test]
    fn a_failed_tls_handshake_has_its_own_code_and_is_not_retriable() {
        let alert = std::io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        let err = Error::tls_handshake_failure("https://broker:7420", &alert).unwrap();
        assert_eq!(err.code(), ErrorCode::TlsHandshakeFailed);
        assert!(!err.is_retriable());
        assert!(!err.is_connection_failure());
        assert!(
            err.to_string()
                .starts_with("TLS handshake with https://broker:7420 failed: ")
        );
        assert!(err.to_string().contains("trusted CA"), "{err}");
        // hyper-rustls wraps tokio-rustls' io::Error in another one.
        let nested = std::io::Error::other(alert);
        let err = Error::tls_handshake_failure("https://broker:7421", &nested).unwrap();
        assert_eq!(err.code(), ErrorCode::TlsHandshakeFailed);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(Error::tls_handshake_failure("x", &refused), None);
    }

    #[test]
    fn client_side_errors_are_not_retriable() {
        assert!(!Error::invalid("x").is_retriable());
        assert!(!Error::closed("x").is_retriable());
        assert_eq!(
            Error::Unsupported {
                message: "nack".into()
            }
            .code(),
            ErrorCode::InvalidArgument
        );
    }
}
