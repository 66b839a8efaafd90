//! `RapidmqCancel`: interrupts a blocking call from another thread (Go: when a
//! `context.Context` is done).

use tokio_util::sync::CancellationToken;

use crate::error::guard_or;

/// A cancellation handle. Pass it to blocking calls; `rapidmq_cancel_trigger` (from any thread)
/// makes every call waiting on it return at once with kind `RAPIDMQ_ERROR_KIND_CANCELLED`, and
/// every later call with it fail the same way. One handle may serve several calls.
pub struct RapidmqCancel {
    pub(crate) token: CancellationToken,
}

/// A new, untriggered cancellation handle; free it with `rapidmq_cancel_free`.
#[unsafe(no_mangle)]
pub extern "C" fn rapidmq_cancel_new() -> *mut RapidmqCancel {
    guard_or(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(RapidmqCancel {
            token: CancellationToken::new(),
        }))
    })
}

/// Cancels every call waiting on `cancel`, now and later. Thread-safe; NULL is ignored.
///
/// # Safety
/// `cancel` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_cancel_trigger(cancel: *const RapidmqCancel) {
    guard_or((), || {
        if let Some(cancel) = unsafe { cancel.as_ref() } {
            cancel.token.cancel();
        }
    })
}

/// Frees a cancellation handle once no call uses it any more. NULL is ignored.
///
/// # Safety
/// `cancel` is NULL or a live handle no call is still using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_cancel_free(cancel: *mut RapidmqCancel) {
    guard_or((), || {
        if !cancel.is_null() {
            drop(unsafe { Box::from_raw(cancel) });
        }
    })
}
