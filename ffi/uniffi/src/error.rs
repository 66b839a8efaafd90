//! The one error type of the bindings, and the error-code table.
//!
//! A core [`Error`] crosses as [`NativeError::Failure`] with its stable code, its name, the core
//! error kind (so Java can refine `INVALID_ARGUMENT` into `UnsupportedException` or
//! `ClosedException`), the detail text and the retriable flag. The Java facade turns it into the
//! `RapidMQException` subclass generated for that code.

use rapidmq_core::{Error, ErrorCode};

/// Which core error variant a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ErrorKind {
    /// The broker refused the request with a stable code.
    Broker,
    /// No broker could be reached.
    Unavailable,
    /// The operation did not finish in time.
    Timeout,
    /// An argument or a configuration value is invalid.
    InvalidArgument,
    /// The operation or option is not supported (yet).
    Unsupported,
    /// The client, producer or consumer was closed.
    Closed,
    /// The broker sent something the core could not decode.
    Protocol,
    /// The TLS handshake with the broker failed.
    TlsHandshake,
}

/// A failed call: a core error with its stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum NativeError {
    /// Every failure; the fields say which.
    #[error("{name} ({code}): {detail}")]
    Failure {
        /// The stable numeric code.
        code: u32,
        /// The code's name, e.g. `TOPIC_NOT_FOUND`.
        name: String,
        /// The core error kind.
        kind: ErrorKind,
        /// Human-readable detail; not API.
        detail: String,
        /// Whether retrying may succeed.
        retriable: bool,
    },
}

/// An error as a plain value, for lists of errors (`take_stream_errors`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ErrorInfo {
    /// The stable numeric code.
    pub code: u32,
    /// The code's name.
    pub name: String,
    /// The core error kind.
    pub kind: ErrorKind,
    /// Human-readable detail; not API.
    pub detail: String,
    /// Whether retrying may succeed.
    pub retriable: bool,
}

impl From<Error> for ErrorInfo {
    fn from(err: Error) -> ErrorInfo {
        let kind = match &err {
            Error::Broker { .. } => ErrorKind::Broker,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Closed { .. } => ErrorKind::Closed,
            Error::Protocol { .. } => ErrorKind::Protocol,
            Error::TlsHandshake { .. } => ErrorKind::TlsHandshake,
            // `Error` is non-exhaustive: a future variant still carries its code.
            _ => ErrorKind::Broker,
        };
        let detail = match &err {
            Error::Broker { message, .. } => message.clone(),
            other => other.to_string(),
        };
        ErrorInfo {
            code: err.code().code(),
            name: err.code().name().to_string(),
            kind,
            detail,
            retriable: err.is_retriable(),
        }
    }
}

impl From<Error> for NativeError {
    fn from(err: Error) -> NativeError {
        let info = ErrorInfo::from(err);
        NativeError::Failure {
            code: info.code,
            name: info.name,
            kind: info.kind,
            detail: info.detail,
            retriable: info.retriable,
        }
    }
}

/// A failure as a value (`BatchQueued::error`), for where it is reported rather than thrown.
impl From<NativeError> for ErrorInfo {
    fn from(err: NativeError) -> ErrorInfo {
        let NativeError::Failure {
            code,
            name,
            kind,
            detail,
            retriable,
        } = err;
        ErrorInfo {
            code,
            name,
            kind,
            detail,
            retriable,
        }
    }
}

/// A binding result.
pub type Result<T, E = NativeError> = std::result::Result<T, E>;

/// One row of the error-code table.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ErrorCodeInfo {
    /// The stable numeric code.
    pub code: u32,
    /// Its name, e.g. `TOPIC_NOT_FOUND`.
    pub name: String,
    /// Whether errors with this code are retriable.
    pub retriable: bool,
    /// The gRPC status code the broker answers with.
    pub grpc_code: i32,
    /// The HTTP status the REST API answers with.
    pub http_status: u16,
}

/// The error-code table of `rapidmq-proto`, in table order. The Java exception classes are
/// generated from it, and a Java test checks that they still match.
#[uniffi::export]
pub fn error_codes() -> Vec<ErrorCodeInfo> {
    ErrorCode::ALL
        .iter()
        .map(|c| ErrorCodeInfo {
            code: c.code(),
            name: c.name().to_string(),
            retriable: c.is_retriable(),
            grpc_code: c.grpc_code() as i32,
            http_status: c.http_status(),
        })
        .collect()
}
