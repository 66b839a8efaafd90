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
use crate::producer::{RapidmqProducer, RapidmqSendResult, message_of, producer_of, send_result};
use crate::runtime::block_on;
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
        check_out(items, max, n)?;
        let taken = queue.wait(max, Duration::from_millis(timeout_ms));
        unsafe { hand_over(taken, items, n) }
    })
}

/// Takes up to `max` outcomes into `items` without waiting, and writes how many to `n`. It
/// re-arms the queue's ready descriptor (`rapidmq_completions_ready_fd`) first: an outcome that
/// arrives after this call makes the descriptor readable again.
///
/// # Safety
/// `completions` is live; `items` has room for `max`; `n` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_completions_take(
    completions: *const RapidmqCompletions,
    items: *mut RapidmqCompletion,
    max: usize,
    n: *mut usize,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let queue = queue_of(completions)?;
        check_out(items, max, n)?;
        unsafe { hand_over(queue.try_take(max), items, n) }
    })
}

/// The out-parameters of a take, checked before anything is taken.
fn check_out(items: *mut RapidmqCompletion, max: usize, n: *mut usize) -> FfiResult<()> {
    if items.is_null() && max > 0 {
        return Err(FfiError::null("items"));
    }
    if n.is_null() {
        return Err(FfiError::null("n"));
    }
    Ok(())
}

/// Writes `taken` to `items` and its length to `n`.
///
/// # Safety
/// `items` has room for `taken.len()` items; `n` is writable.
unsafe fn hand_over(
    taken: Vec<core::Completion>,
    items: *mut RapidmqCompletion,
    n: *mut usize,
) -> FfiResult<()> {
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
}

/// Writes to `fd` a file descriptor that becomes readable when outcomes arrive, for a caller
/// that waits in its own event loop (Go's poller) rather than in `rapidmq_completions_wait`.
/// The protocol: wait until `fd` is readable, read and discard what it holds (it is
/// non-blocking), then call `rapidmq_completions_take` until it returns nothing. After each take
/// the next outcome (and closing the queue) makes `fd` readable again. The caller owns `fd` and
/// closes it; the queue keeps its own ends of the pipe until it is freed. Unix only
/// (`UNSUPPORTED` elsewhere); one descriptor per queue (`INVALID_ARGUMENT` for a second).
///
/// # Safety
/// `completions` is live; `fd` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_completions_ready_fd(
    completions: *const RapidmqCompletions,
    fd: *mut std::ffi::c_int,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let queue = queue_of(completions)?;
        if fd.is_null() {
            return Err(FfiError::null("fd"));
        }
        put(fd, "fd", ready_fd(queue)?)
    })
}

#[cfg(unix)]
fn ready_fd(queue: &core::Completions) -> FfiResult<std::ffi::c_int> {
    use std::io::Write;
    use std::os::fd::{AsFd, AsRawFd, IntoRawFd};

    let pipe = |e| FfiError::io("could not create the completion queue's pipe", e);
    let (reader, writer) = std::io::pipe().map_err(pipe)?;
    for end in [reader.as_raw_fd(), writer.as_raw_fd()] {
        // SAFETY: `end` is an open descriptor this function owns.
        if unsafe { nonblocking_cloexec(end) } != 0 {
            return Err(pipe(std::io::Error::last_os_error()));
        }
    }
    let theirs = reader.as_fd().try_clone_to_owned().map_err(pipe)?;
    // The queue keeps its reading end open, so a write never meets a pipe without readers
    // (SIGPIPE) however early the caller closes its copy. A full pipe is readable already, so
    // a write that would block is dropped.
    let installed = queue.on_ready(move || {
        let _keep_open = &reader;
        let _ = (&writer).write(&[1]);
    });
    if !installed {
        return Err(FfiError::invalid(
            "the queue already has a ready descriptor",
        ));
    }
    Ok(theirs.into_raw_fd())
}

/// Makes `fd` non-blocking and close-on-exec; 0 on success.
///
/// # Safety
/// `fd` is open.
#[cfg(unix)]
unsafe fn nonblocking_cloexec(fd: std::ffi::c_int) -> std::ffi::c_int {
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return -1;
        }
        let fd_flags = libc::fcntl(fd, libc::F_GETFD);
        if fd_flags < 0 || libc::fcntl(fd, libc::F_SETFD, fd_flags | libc::FD_CLOEXEC) < 0 {
            return -1;
        }
    }
    0
}

#[cfg(not(unix))]
fn ready_fd(_queue: &core::Completions) -> FfiResult<std::ffi::c_int> {
    Err(FfiError::unsupported(
        "a completion queue's ready descriptor needs a Unix platform; use rapidmq_completions_wait",
    ))
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
        enqueue_to(producer, message, cancel, queue, token)
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
        if queued.is_null() {
            return Err(FfiError::null("queued"));
        }
        let message = unsafe { message_of(message) }?;
        let sent = producer.try_send_to(message, queue, token)?;
        put(queued, "queued", matches!(sent, core::TrySend::Queued))
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
            enqueue_to(producer, message, cancel, queue, first_token + i as u64)?;
            put(sent, "sent", i + 1)?;
        }
        Ok(())
    })
}

/// Queues `message` for `queue` under `token`: at once when the buffer has room, else waiting
/// (interruptible through `cancel`) until it has.
fn enqueue_to(
    producer: &core::Producer,
    message: core::Message,
    cancel: *const RapidmqCancel,
    queue: &Arc<core::Completions>,
    token: u64,
) -> FfiResult<()> {
    match producer.try_send_to(message, queue, token)? {
        core::TrySend::Queued => Ok(()),
        core::TrySend::Full(message) => {
            let (p, q) = (producer.clone(), queue.clone());
            block_on(producer.client().runtime(), cancel, async move {
                p.send_to(message, &q, token).await
            })
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::Read;
    use std::os::fd::FromRawFd;

    use super::*;

    #[test]
    fn the_ready_descriptor_is_non_blocking_and_turns_readable_on_close() {
        let completions = rapidmq_completions_new();
        let mut fd = -1;
        // SAFETY: all zeroes is an empty error (kind NONE, no message).
        let mut err: RapidmqError = unsafe { std::mem::zeroed() };
        let status = unsafe { rapidmq_completions_ready_fd(completions, &mut fd, &mut err) };
        assert_eq!(status, RapidmqStatus::RAPIDMQ_STATUS_OK);
        // SAFETY: the call handed this descriptor over to the caller.
        let mut ready = unsafe { std::fs::File::from_raw_fd(fd) };
        let mut buf = [0u8; 8];
        let idle = ready.read(&mut buf).unwrap_err();
        assert_eq!(
            idle.kind(),
            std::io::ErrorKind::WouldBlock,
            "nothing to read yet"
        );

        let again = unsafe { rapidmq_completions_ready_fd(completions, &mut fd, &mut err) };
        assert_eq!(again, RapidmqStatus::RAPIDMQ_STATUS_ERROR);
        assert_eq!(
            err.kind,
            crate::error::RapidmqErrorKind::RAPIDMQ_ERROR_KIND_INVALID_ARGUMENT
        );
        unsafe { crate::error::rapidmq_error_clear(&mut err) };

        unsafe { rapidmq_completions_close(completions) };
        assert!(
            ready.read(&mut buf).unwrap() > 0,
            "closing signals the descriptor"
        );
        let mut n = usize::MAX;
        let taken = unsafe {
            rapidmq_completions_take(completions, std::ptr::null_mut(), 0, &mut n, &mut err)
        };
        assert_eq!((taken, n), (RapidmqStatus::RAPIDMQ_STATUS_OK, 0));
        unsafe { rapidmq_completions_free(completions) };
    }
}
