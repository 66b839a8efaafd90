//! `RapidmqRuntime`: the explicit tokio runtime the core spawns on, and [`block_on`], how every
//! blocking export waits for the core while honouring a `RapidmqCancel`.

use std::future::Future;
use std::time::Duration;

use rapidmq_core::Runtime;

use crate::cancel::RapidmqCancel;
use crate::error::{FfiError, FfiResult, RapidmqError, RapidmqStatus, guard, guard_or, put};

/// The runtime clients run on: the core's own ([`Runtime::new`], whose threads block
/// `SIGPIPE`, so a write to a socket the broker closed fails with `EPIPE` instead of killing a
/// host that does not ignore the signal, as Go programs do not). Clients keep it alive;
/// freeing the handle only drops the caller's reference.
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
        if let Some(rt) = unsafe { runtime.as_ref() }
            && tokio::runtime::Handle::try_current().is_err()
        {
            rt.runtime.shutdown(Duration::from_millis(timeout_ms));
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

/// Runs `future` on the calling (non-runtime) thread inside `runtime`'s context until it
/// finishes or `cancel` is triggered; on cancellation the future is dropped (the core's futures
/// abort their runtime tasks when dropped) and the call fails with kind `CANCELLED`.
///
/// The future is polled here rather than spawned: a call whose answer is ready (a poll with
/// messages buffered, a send with room) completes without waking another thread, and the
/// core runs its own background work on the runtime anyway.
pub(crate) fn block_on<T, F>(
    runtime: &Runtime,
    cancel: *const RapidmqCancel,
    future: F,
) -> FfiResult<T>
where
    F: Future<Output = rapidmq_core::Result<T>>,
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
    let outcome = runtime.handle().block_on(async move {
        match token {
            Some(token) => tokio::select! {
                result = future => Some(result),
                () = token.cancelled() => None,
            },
            None => Some(future.await),
        }
    });
    match outcome {
        None => Err(FfiError::cancelled()),
        Some(result) => result.map_err(FfiError::from),
    }
}

/// The runtime of a handle, or an error for NULL.
pub(crate) fn runtime_of<'a>(runtime: *const RapidmqRuntime) -> FfiResult<&'a RapidmqRuntime> {
    unsafe { runtime.as_ref() }.ok_or_else(|| FfiError::null("runtime"))
}
