//! Errors across the boundary: `RapidmqStatus` return values, the `RapidmqError` out-parameter,
//! the error-code table for bindings, and [`guard`], the `catch_unwind` wrapper every export uses.

use std::panic::{AssertUnwindSafe, catch_unwind};

use rapidmq_core::{Error, ErrorCode};

use crate::buffer::{RapidmqBytes, RapidmqSlice};

/// What a fallible function returns. On `RAPIDMQ_STATUS_ERROR` the `RapidmqError` out-parameter
/// (when not NULL) says what went wrong, and no other out-parameter was written.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RapidmqStatus {
    /// The call succeeded.
    RAPIDMQ_STATUS_OK = 0,
    /// The call failed; see the `RapidmqError`.
    RAPIDMQ_STATUS_ERROR = 1,
}

/// Which kind of failure an error is. The `code` says what to do; the kind refines the shared
/// `INVALID_ARGUMENT` code (invalid argument, unsupported option, closed object) and marks
/// failures that did not come from the core at all (cancelled, panic).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RapidmqErrorKind {
    /// No error.
    RAPIDMQ_ERROR_KIND_NONE = 0,
    /// The broker refused the request with a stable code.
    RAPIDMQ_ERROR_KIND_BROKER = 1,
    /// No broker could be reached (`UNAVAILABLE`, retriable).
    RAPIDMQ_ERROR_KIND_UNAVAILABLE = 2,
    /// A request did not finish in time (`TIMEOUT`, retriable).
    RAPIDMQ_ERROR_KIND_TIMEOUT = 3,
    /// An argument or configuration value is invalid (`INVALID_ARGUMENT`).
    RAPIDMQ_ERROR_KIND_INVALID_ARGUMENT = 4,
    /// The option or operation is not supported (yet) (`INVALID_ARGUMENT`).
    RAPIDMQ_ERROR_KIND_UNSUPPORTED = 5,
    /// The object was closed (`INVALID_ARGUMENT`).
    RAPIDMQ_ERROR_KIND_CLOSED = 6,
    /// The broker sent something the core cannot decode (`MALFORMED_REQUEST`).
    RAPIDMQ_ERROR_KIND_PROTOCOL = 7,
    /// The call was interrupted through its `RapidmqCancel` (code 0).
    RAPIDMQ_ERROR_KIND_CANCELLED = 8,
    /// A bug: the library panicked; the panic was caught at the boundary (`INTERNAL`).
    RAPIDMQ_ERROR_KIND_PANIC = 9,
    /// The TLS handshake with the broker failed (`TLS_HANDSHAKE_FAILED`, not retriable).
    RAPIDMQ_ERROR_KIND_TLS_HANDSHAKE = 10,
}

/// An error: a stable numeric `code` from the error-code table (0 for a cancelled call), its
/// kind, whether retrying may succeed, and a human-readable message (not API) owned by the
/// library. Release the message with `rapidmq_error_clear`.
#[repr(C)]
pub struct RapidmqError {
    /// The stable code, e.g. 2001 for `TOPIC_NOT_FOUND`; 0 for a cancelled call.
    pub code: u32,
    /// The kind.
    pub kind: RapidmqErrorKind,
    /// Whether the same request may succeed later.
    pub retriable: bool,
    /// UTF-8 detail text, owned by the library.
    pub message: RapidmqBytes,
}

/// An error on its way to the caller.
#[derive(Debug, Clone)]
pub(crate) struct FfiError {
    code: u32,
    kind: RapidmqErrorKind,
    retriable: bool,
    message: String,
}

impl FfiError {
    pub(crate) fn invalid(message: impl Into<String>) -> FfiError {
        FfiError {
            code: ErrorCode::InvalidArgument.code(),
            kind: RapidmqErrorKind::RAPIDMQ_ERROR_KIND_INVALID_ARGUMENT,
            retriable: false,
            message: message.into(),
        }
    }

    /// A local resource the call needed could not be had (`UNAVAILABLE`, retriable), e.g. no
    /// file descriptor left.
    pub(crate) fn io(what: &str, error: std::io::Error) -> FfiError {
        FfiError {
            code: ErrorCode::Unavailable.code(),
            kind: RapidmqErrorKind::RAPIDMQ_ERROR_KIND_UNAVAILABLE,
            retriable: true,
            message: format!("{what}: {error}"),
        }
    }

    /// The operation is not supported on this platform or build.
    #[cfg_attr(unix, allow(dead_code))]
    pub(crate) fn unsupported(message: impl Into<String>) -> FfiError {
        FfiError {
            kind: RapidmqErrorKind::RAPIDMQ_ERROR_KIND_UNSUPPORTED,
            ..FfiError::invalid(message)
        }
    }

    pub(crate) fn null(what: &str) -> FfiError {
        FfiError::invalid(format!("{what} must not be NULL"))
    }

    pub(crate) fn cancelled() -> FfiError {
        FfiError {
            code: 0,
            kind: RapidmqErrorKind::RAPIDMQ_ERROR_KIND_CANCELLED,
            retriable: false,
            message: "cancelled".into(),
        }
    }

    fn panic(payload: Box<dyn std::any::Any + Send>) -> FfiError {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        FfiError {
            code: ErrorCode::Internal.code(),
            kind: RapidmqErrorKind::RAPIDMQ_ERROR_KIND_PANIC,
            retriable: false,
            message: format!("rapidmq-ffi panicked (a bug, please report it): {what}"),
        }
    }

    /// Code, kind, retriable flag and message.
    pub(crate) fn parts(self) -> (u32, RapidmqErrorKind, bool, String) {
        (self.code, self.kind, self.retriable, self.message)
    }

    /// Writes the error into `out` (when not NULL).
    pub(crate) fn write(self, out: *mut RapidmqError) {
        if out.is_null() {
            return;
        }
        // SAFETY: the caller passes a writable `RapidmqError` or NULL.
        unsafe {
            out.write(RapidmqError {
                code: self.code,
                kind: self.kind,
                retriable: self.retriable,
                message: RapidmqBytes::from_vec(self.message.into_bytes()),
            });
        }
    }
}

impl From<Error> for FfiError {
    fn from(err: Error) -> FfiError {
        use RapidmqErrorKind::*;
        let kind = match &err {
            Error::Broker { .. } => RAPIDMQ_ERROR_KIND_BROKER,
            Error::Unavailable { .. } => RAPIDMQ_ERROR_KIND_UNAVAILABLE,
            Error::Timeout { .. } => RAPIDMQ_ERROR_KIND_TIMEOUT,
            Error::InvalidArgument { .. } => RAPIDMQ_ERROR_KIND_INVALID_ARGUMENT,
            Error::Unsupported { .. } => RAPIDMQ_ERROR_KIND_UNSUPPORTED,
            Error::Closed { .. } => RAPIDMQ_ERROR_KIND_CLOSED,
            Error::Protocol { .. } => RAPIDMQ_ERROR_KIND_PROTOCOL,
            Error::TlsHandshake { .. } => RAPIDMQ_ERROR_KIND_TLS_HANDSHAKE,
            _ => RAPIDMQ_ERROR_KIND_BROKER,
        };
        let message = match &err {
            Error::Broker { message, .. } => message.clone(),
            other => other.to_string(),
        };
        FfiError {
            code: err.code().code(),
            kind,
            retriable: err.is_retriable(),
            message,
        }
    }
}

pub(crate) type FfiResult<T> = Result<T, FfiError>;

/// Runs an export's body under `catch_unwind`: a panic becomes an `INTERNAL` error of kind
/// `PANIC`, an error is written to `err`, and the status says which happened.
pub(crate) fn guard(err: *mut RapidmqError, body: impl FnOnce() -> FfiResult<()>) -> RapidmqStatus {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|p| Err(FfiError::panic(p)));
    match outcome {
        Ok(()) => RapidmqStatus::RAPIDMQ_STATUS_OK,
        Err(e) => {
            e.write(err);
            RapidmqStatus::RAPIDMQ_STATUS_ERROR
        }
    }
}

/// Runs an infallible export's body under `catch_unwind`, returning `fallback` on a panic.
pub(crate) fn guard_or<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// Writes `value` to the out-parameter `out`, or fails when it is NULL.
pub(crate) fn put<T>(out: *mut T, what: &str, value: T) -> FfiResult<()> {
    if out.is_null() {
        return Err(FfiError::null(what));
    }
    // SAFETY: the caller passes a writable `T`.
    unsafe { out.write(value) };
    Ok(())
}

/// Releases the message of `err` and resets it to "no error". NULL is ignored.
///
/// # Safety
/// `err` is NULL or points at a `RapidmqError` filled by this library (or zeroed).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_error_clear(err: *mut RapidmqError) {
    guard_or((), || {
        if err.is_null() {
            return;
        }
        // SAFETY: see above.
        let err = unsafe { &mut *err };
        let message = std::mem::replace(&mut err.message, RapidmqBytes::EMPTY);
        unsafe { crate::buffer::rapidmq_bytes_free(message) };
        err.code = 0;
        err.kind = RapidmqErrorKind::RAPIDMQ_ERROR_KIND_NONE;
        err.retriable = false;
    })
}

/// One row of the error-code table.
#[repr(C)]
pub struct RapidmqErrorCodeInfo {
    /// The stable number, e.g. 2001.
    pub code: u32,
    /// The upper-snake-case name, e.g. `TOPIC_NOT_FOUND` (static, never freed).
    pub name: RapidmqSlice,
    /// Whether the core retries it.
    pub retriable: bool,
    /// The HTTP status the REST API sends it with.
    pub http_status: u16,
}

/// How many codes the error-code table holds (for bindings that check their own list).
#[unsafe(no_mangle)]
pub extern "C" fn rapidmq_error_code_count() -> usize {
    guard_or(0, || ErrorCode::ALL.len())
}

/// Row `index` of the error-code table, in table order. Returns false when `index` is out of
/// range or `out` is NULL.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_error_code_info(
    index: usize,
    out: *mut RapidmqErrorCodeInfo,
) -> bool {
    guard_or(false, || {
        let Some(code) = ErrorCode::ALL.get(index) else {
            return false;
        };
        put(
            out,
            "out",
            RapidmqErrorCodeInfo {
                code: code.code(),
                name: RapidmqSlice::of(code.name().as_bytes()),
                retriable: code.is_retriable(),
                http_status: code.http_status(),
            },
        )
        .is_ok()
    })
}
