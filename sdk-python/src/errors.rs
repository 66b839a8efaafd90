//! Core errors to Python exceptions, and the error-code table for `rapidmq.errors`.
//!
//! The exception classes are Python classes generated from the table ([`error_codes`]) into
//! `rapidmq/_error_classes.py`; this side only hands `rapidmq.errors._from_native` the code, the
//! core error kind, the detail message and the retriable flag, and raises what it returns.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use rapidmq_core::{Error, ErrorCode};

/// `rapidmq.errors._from_native`, looked up once.
static FACTORY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The core error kind, so that Python can refine a shared code (`INVALID_ARGUMENT` covers
/// invalid arguments, unsupported options and closed objects) into a subclass.
fn kind(err: &Error) -> &'static str {
    match err {
        Error::Broker { .. } => "broker",
        Error::Unavailable { .. } => "unavailable",
        Error::Timeout { .. } => "timeout",
        Error::InvalidArgument { .. } => "invalid_argument",
        Error::Unsupported { .. } => "unsupported",
        Error::Closed { .. } => "closed",
        Error::Protocol { .. } => "protocol",
        Error::TlsHandshake { .. } => "tls_handshake",
        _ => "other",
    }
}

/// The detail text (not API): the broker's message, or the core's description.
fn detail(err: &Error) -> String {
    match err {
        Error::Broker { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn build(py: Python<'_>, code: u32, kind: &str, message: String, retriable: bool) -> PyErr {
    let factory = FACTORY.get_or_try_init(py, || {
        py.import("rapidmq.errors")?
            .getattr("_from_native")
            .map(Bound::unbind)
    });
    let exception = factory.and_then(|f| f.call1(py, (code, kind, message, retriable)));
    match exception {
        Ok(exception) => PyErr::from_value(exception.into_bound(py)),
        Err(err) => err,
    }
}

/// The Python exception for a core error: the `RapidMQError` subclass of its code.
pub(crate) fn to_py_err(err: Error) -> PyErr {
    Python::attach(|py| {
        build(
            py,
            err.code().code(),
            kind(&err),
            detail(&err),
            err.is_retriable(),
        )
    })
}

/// `ForkError`: an object used in a process other than the one that created it.
pub(crate) fn forked_error() -> PyErr {
    Python::attach(|py| {
        build(
            py,
            ErrorCode::InvalidArgument.code(),
            "forked",
            "this RapidMQ object was created before fork(); its runtime does not exist in the \
             child process. Create a new Client in the child (or use the 'spawn' start method)"
                .into(),
            false,
        )
    })
}

/// The error-code table: `(code, name, retriable, grpc_code, http_status)` per code, in table order.
#[pyfunction]
pub(crate) fn error_codes() -> Vec<(u32, &'static str, bool, i32, u16)> {
    ErrorCode::ALL
        .iter()
        .map(|c| {
            (
                c.code(),
                c.name(),
                c.is_retriable(),
                c.grpc_code() as i32,
                c.http_status(),
            )
        })
        .collect()
}
