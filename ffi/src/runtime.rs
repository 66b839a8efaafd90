//! `RapidmqRuntime`: the explicit tokio runtime the core spawns on, and [`block_on`], how every
//! blocking export waits for the core while honouring a `RapidmqCancel`.

use std::future::Future;
use std::time::Duration;

use rapidmq_core::Runtime;

use crate::cancel::RapidmqCancel;
use crate::error::{FfiError, FfiResult, RapidmqError, RapidmqStatus, guard, guard_or, put};

/// The runtime clients run on. Clients keep it alive; freeing the handle only drops the
/// caller's reference.
pub struct RapidmqRuntime {
    pub(crate) runtime: Runtime,
}

/// Starts a runtime with `worker_threads` threads (0: one per CPU) and writes its handle to
/// `out`. Free it with `rapidmq_runtime_free`.
///
/// # Safety
/// `out` is writable; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_runtime_new(
    worker_threads: u32,
    out: *mut *mut RapidmqRuntime,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let threads = match worker_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n as usize,
        };
        let runtime = Runtime::new(threads)?;
        put(
            out,
            "out",
            Box::into_raw(Box::new(RapidmqRuntime { runtime })),
        )
    })
}

/// Stops the runtime: cancels its tasks (every client on it stops working) and waits up to
/// `timeout_ms` for its threads. Call it before the process tears down, if at all; never from a
/// callback. The handle must still be freed.
///
/// # Safety
/// `runtime` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_runtime_shutdown(runtime: *const RapidmqRuntime, timeout_ms: u64) {
    guard_or((), || {
        if let Some(rt) = unsafe { runtime.as_ref() } {
            if tokio::runtime::Handle::try_current().is_err() {
                rt.runtime.shutdown(Duration::from_millis(timeout_ms));
            }
        }
    })
}

/// Frees the caller's handle. The runtime itself runs until the last client on it is freed.
///
/// # Safety
/// `runtime` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_runtime_free(runtime: *mut RapidmqRuntime) {
    guard_or((), || {
        if !runtime.is_null() {
            drop(unsafe { Box::from_raw(runtime) });
        }
    })
}

/// Aborts a spawned task when the caller stops waiting for it.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `future` on `runtime` and blocks the calling (non-runtime) thread until it finishes or
/// `cancel` is triggered; on cancellation the task is aborted and the call fails with kind
/// `CANCELLED`.
pub(crate) fn block_on<T, F>(
    runtime: &Runtime,
    cancel: *const RapidmqCancel,
    future: F,
) -> FfiResult<T>
where
    F: Future<Output = rapidmq_core::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(FfiError::invalid(
            "a blocking RapidMQ call was made from a runtime thread (inside a callback); \
             hand the work to another thread",
        ));
    }
    // SAFETY: the caller passes NULL or a live handle that outlives the call.
    let token = unsafe { cancel.as_ref() }.map(|c| c.token.clone());
    if token.as_ref().is_some_and(|t| t.is_cancelled()) {
        return Err(FfiError::cancelled());
    }
    let task = runtime.handle().spawn(future);
    let _abort = AbortOnDrop(task.abort_handle());
    let joined = runtime.handle().block_on(async move {
        match token {
            Some(token) => tokio::select! {
                joined = task => Some(joined),
                () = token.cancelled() => None,
            },
            None => Some(task.await),
        }
    });
    match joined {
        None => Err(FfiError::cancelled()),
        Some(Ok(result)) => result.map_err(FfiError::from),
        Some(Err(join)) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Some(Err(join)) => Err(FfiError::from(rapidmq_core::Error::Closed {
            message: format!("the client runtime stopped: {join}"),
        })),
    }
}

/// The runtime of a handle, or an error for NULL.
pub(crate) fn runtime_of<'a>(runtime: *const RapidmqRuntime) -> FfiResult<&'a RapidmqRuntime> {
    unsafe { runtime.as_ref() }.ok_or_else(|| FfiError::null("runtime"))
}
