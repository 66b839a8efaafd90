//! `RapidmqCompletions`: send outcomes taken many at a time, instead of a callback per message.
//!
//! A binding creates one queue, sends with `rapidmq_producer_send_to` (or `_try_send_to`, or a
//! whole array with `rapidmq_producer_send_batch_to`) giving each message a token of its own,
//! and takes outcomes from a thread of its own with `rapidmq_completions_wait`. No runtime task
//! and no call into the binding happen per message (`rapidmq_core::Completions`).

use std::sync::Arc;
use std::time::Duration;

use rapidmq_core as core;

use crate::cancel::RapidmqCancel;
use crate::error::{FfiError, FfiResult, RapidmqError, RapidmqStatus, guard, guard_or, put};
use crate::producer::{
    RapidmqProducer, RapidmqSendResult, enqueue, message_of, producer_of, send_result, try_enqueue,
};
use crate::types::{RapidmqMessage, messages_in};

/// A queue of send outcomes; free with `rapidmq_completions_free`.
pub struct RapidmqCompletions {
    queue: Arc<core::Completions>,
}

fn queue_of<'a>(completions: *const RapidmqCompletions) -> FfiResult<&'a Arc<core::Completions>> {
    unsafe { completions.as_ref() }
        .map(|c| &c.queue)
        .ok_or_else(|| FfiError::null("completions"))
}

/// The outcome of one send taken by `rapidmq_completions_wait`, with the token it was sent with.
/// A failed one's `result.error` holds a message the caller frees with `rapidmq_error_clear`.
#[repr(C)]
pub struct RapidmqCompletion {
    /// The token given to the send.
    pub token: u64,
    /// Where the message went, or why it failed.
    pub result: RapidmqSendResult,
}

/// A new, empty queue. Any number of producers may send to one queue.
#[unsafe(no_mangle)]
pub extern "C" fn rapidmq_completions_new() -> *mut RapidmqCompletions {
    guard_or(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(RapidmqCompletions {
            queue: Arc::new(core::Completions::new()),
        }))
    })
}

/// Wakes every `rapidmq_completions_wait`; later waits return what is left, then nothing.
///
/// # Safety
/// `completions` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_completions_close(completions: *const RapidmqCompletions) {
    guard_or((), || {
        if let Ok(queue) = queue_of(completions) {
            queue.close();
        }
    })
}

/// Frees the queue. Sends still pending keep their outcome alive until they complete, then
/// drop it. NULL is ignored.
///
/// # Safety
/// `completions` is NULL or a live queue no other call is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_completions_free(completions: *mut RapidmqCompletions) {
    guard_or((), || {
        if !completions.is_null() {
            drop(unsafe { Box::from_raw(completions) });
        }
    })
}

/// Takes up to `max` outcomes into `items`, waiting at most `timeout_ms` for the first, and
/// writes how many to `n` (0: none came in time, or the queue is closed and drained).
///
/// # Safety
/// `completions` is live; `items` has room for `max`; `n` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_completions_wait(
    completions: *const RapidmqCompletions,
    items: *mut RapidmqCompletion,
    max: usize,
    timeout_ms: u64,
    n: *mut usize,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let queue = queue_of(completions)?;
        if items.is_null() && max > 0 {
            return Err(FfiError::null("items"));
        }
        if n.is_null() {
            return Err(FfiError::null("n"));
        }
        let taken = queue.wait(max, Duration::from_millis(timeout_ms));
        let count = taken.len();
        for (i, completion) in taken.into_iter().enumerate() {
            let item = RapidmqCompletion {
                token: completion.token,
                result: send_result(completion.result),
            };
            // SAFETY: the caller gave room for `max` items, and `count <= max`.
            unsafe { items.add(i).write(item) };
        }
        put(n, "n", count)
    })
}

/// Sends `message`; its outcome goes to `completions` with `token`. Blocks only while the
/// producer's buffer is full (interruptible through `cancel`). When this fails, no outcome
/// comes.
///
/// # Safety
/// `producer` and `completions` are live; `message` is readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_producer_send_to(
    producer: *const RapidmqProducer,
    message: *const RapidmqMessage,
    cancel: *const RapidmqCancel,
    completions: *const RapidmqCompletions,
    token: u64,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let producer = producer_of(producer)?;
        let queue = queue_of(completions)?;
        let message = unsafe { message_of(message) }?;
        enqueue(producer, message, cancel)?.complete_into(queue, token);
        Ok(())
    })
}

/// Like `rapidmq_producer_send_to`, but never waits: when the producer already buffers
/// `max_buffered_messages`, it writes false to `queued` and queues nothing (no outcome comes).
///
/// # Safety
/// `producer` and `completions` are live; `message` is readable; `queued` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_producer_try_send_to(
    producer: *const RapidmqProducer,
    message: *const RapidmqMessage,
    completions: *const RapidmqCompletions,
    token: u64,
    queued: *mut bool,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let producer = producer_of(producer)?;
        let queue = queue_of(completions)?;
        let message = unsafe { message_of(message) }?;
        if let Some(receipt) = try_enqueue(producer, message, queued)? {
            receipt.complete_into(queue, token);
        }
        Ok(())
    })
}

/// Sends `len` messages in one call; message `i`'s outcome goes to `completions` with token
/// `first_token + i`. Blocks only while the producer's buffer is full (interruptible through
/// `cancel`). Writes to `sent` how many were queued, in order: all of them on success; on an
/// error (a cancel, a closed producer) those before it, whose outcomes still come. Every message
/// is checked first: an invalid one fails the call with `INVALID_ARGUMENT` naming its index, and
/// none is queued (conformance C30).
///
/// # Safety
/// `producer` and `completions` are live; `messages` holds `len` readable messages; `sent` is
/// writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn rapidmq_producer_send_batch_to(
    producer: *const RapidmqProducer,
    messages: *const RapidmqMessage,
    len: usize,
    cancel: *const RapidmqCancel,
    completions: *const RapidmqCompletions,
    first_token: u64,
    sent: *mut usize,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let producer = producer_of(producer)?;
        let queue = queue_of(completions)?;
        if sent.is_null() {
            return Err(FfiError::null("sent"));
        }
        put(sent, "sent", 0)?;
        let messages = unsafe { messages_in(messages, len) }?;
        rapidmq_core::Producer::check_batch(&messages)?;
        for (i, message) in messages.into_iter().enumerate() {
            enqueue(producer, message, cancel)?.complete_into(queue, first_token + i as u64);
            put(sent, "sent", i + 1)?;
        }
        Ok(())
    })
}
