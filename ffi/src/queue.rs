//! `RapidmqQueueConsumer`: queue-mode subscriptions: per-delivery receipts, ack, nack(delay),
//! deadline extension, attempt counts, stream errors.

use std::time::Duration;

use rapidmq_core::{self as core, Runtime};

use crate::arena::{Arena, Owned};
use crate::buffer::RapidmqSlice;
use crate::cancel::RapidmqCancel;
use crate::client::{RapidmqClient, client_of};
use crate::config::RapidmqConsumerConfig;
use crate::error::{
    FfiError, FfiResult, RapidmqError, RapidmqErrorKind, RapidmqStatus, guard, guard_or, put,
};
use crate::runtime::block_on;
use crate::types::{RapidmqReceivedMessage, received};

/// A consumer of a queue-mode subscription.
pub struct RapidmqQueueConsumer {
    consumer: core::QueueConsumer,
    runtime: Runtime,
}

/// Identifies one delivery; pass it to ack, nack or extend. Owned by the caller: free each one
/// with `rapidmq_receipt_free`.
pub struct RapidmqReceipt {
    receipt: core::Receipt,
}

fn handle_of<'a>(consumer: *const RapidmqQueueConsumer) -> FfiResult<&'a RapidmqQueueConsumer> {
    unsafe { consumer.as_ref() }.ok_or_else(|| FfiError::null("queue consumer"))
}

fn receipt_of<'a>(receipt: *const RapidmqReceipt) -> FfiResult<&'a core::Receipt> {
    unsafe { receipt.as_ref() }
        .map(|r| &r.receipt)
        .ok_or_else(|| FfiError::null("receipt"))
}

/// One delivery of a queue message.
#[repr(C)]
pub struct RapidmqQueueMessage {
    /// The message.
    pub message: RapidmqReceivedMessage,
    /// 1 on the first delivery; counts survive broker restarts.
    pub attempt: u32,
    /// Its receipt, owned by the caller (free with `rapidmq_receipt_free`).
    pub receipt: *mut RapidmqReceipt,
}

/// Deliveries returned by `rapidmq_queue_consumer_poll`; free with
/// `rapidmq_queue_message_batch_free` (which does not free the receipts).
#[repr(C)]
pub struct RapidmqQueueMessageBatch {
    /// The deliveries.
    pub items: *const RapidmqQueueMessage,
    /// Number of deliveries.
    pub len: usize,
}

/// Subscribes in queue mode (creating the subscription with `config.queue` when it does not
/// exist). Errors: `TOPIC_NOT_FOUND`, `SUBSCRIPTION_MODE_MISMATCH`, `INVALID_ARGUMENT`.
///
/// # Safety
/// `client` is live; `config` is readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_queue_consumer_new(
    client: *const RapidmqClient,
    config: *const RapidmqConsumerConfig,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqQueueConsumer,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let client = client_of(client)?.client.clone();
        let config = unsafe { config.as_ref() }.ok_or_else(|| FfiError::null("config"))?;
        let config = unsafe { config.read_core() }?;
        let runtime = client.runtime().clone();
        let consumer = block_on(&runtime, cancel, async move {
            client.subscribe_queue(config).await
        })?;
        let handle = RapidmqQueueConsumer { consumer, runtime };
        put(out, "out", Box::into_raw(Box::new(handle)))
    })
}

/// Returns up to `max` deliveries, waiting up to `timeout_ms` for the first one. Cancel-safe.
///
/// # Safety
/// `consumer` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_queue_consumer_poll(
    consumer: *const RapidmqQueueConsumer,
    max: usize,
    timeout_ms: u64,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqQueueMessageBatch,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let h = handle_of(consumer)?;
        let c = h.consumer.clone();
        let deliveries = block_on(&h.runtime, cancel, async move {
            c.poll(max, Duration::from_millis(timeout_ms)).await
        })?;
        let mut arena = Arena::default();
        let items: Vec<_> = deliveries
            .into_iter()
            .map(|d| RapidmqQueueMessage {
                message: received(&mut arena, d.message),
                attempt: d.attempt,
                receipt: Box::into_raw(Box::new(RapidmqReceipt { receipt: d.receipt })),
            })
            .collect();
        let (items, len) = arena.array(items);
        put(
            out,
            "out",
            Owned::into_raw(RapidmqQueueMessageBatch { items, len }, arena),
        )
    })
}

/// Frees a delivery batch (not its receipts). NULL is ignored.
///
/// # Safety
/// `batch` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_queue_message_batch_free(batch: *mut RapidmqQueueMessageBatch) {
    guard_or((), || unsafe { Owned::free(batch) })
}

/// Frees a receipt. NULL is ignored.
///
/// # Safety
/// `receipt` is NULL or a receipt from a batch, not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_receipt_free(receipt: *mut RapidmqReceipt) {
    guard_or((), || {
        if !receipt.is_null() {
            drop(unsafe { Box::from_raw(receipt) });
        }
    })
}

/// Acknowledges a delivery; sent with the next ack batch (interval, flush or close). A receipt
/// from before a reconnect is dropped and counted (`stale_receipts`).
///
/// # Safety
/// `consumer` and `receipt` are live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_queue_consumer_ack(
    consumer: *const RapidmqQueueConsumer,
    receipt: *const RapidmqReceipt,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let h = handle_of(consumer)?;
        Ok(h.consumer.ack(receipt_of(receipt)?)?)
    })
}

/// Gives a delivery back: redelivered as the next attempt no sooner than `delay_ms`, or
/// dead-lettered after `max_deliveries` attempts. Sent at once.
///
/// # Safety
/// `consumer` and `receipt` are live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_queue_consumer_nack(
    consumer: *const RapidmqQueueConsumer,
    receipt: *const RapidmqReceipt,
    delay_ms: u64,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let h = handle_of(consumer)?;
        Ok(h.consumer
            .nack(receipt_of(receipt)?, Duration::from_millis(delay_ms))?)
    })
}

/// Pushes a delivery's ack deadline out to now + `extension_ms`. Sent at once.
///
/// # Safety
/// `consumer` and `receipt` are live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_queue_consumer_extend_deadline(
    consumer: *const RapidmqQueueConsumer,
    receipt: *const RapidmqReceipt,
    extension_ms: u64,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let h = handle_of(consumer)?;
        Ok(h.consumer
            .extend_deadline(receipt_of(receipt)?, Duration::from_millis(extension_ms))?)
    })
}

/// Sends the pending acks now.
///
/// # Safety
/// `consumer` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_queue_consumer_flush(
    consumer: *const RapidmqQueueConsumer,
    cancel: *const RapidmqCancel,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let h = handle_of(consumer)?;
        let c = h.consumer.clone();
        block_on(&h.runtime, cancel, async move { c.flush().await })
    })
}

/// Sends the pending acks and leaves the subscription; unacked deliveries come back after their
/// deadline. The handle must still be freed.
///
/// # Safety
/// `consumer` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_queue_consumer_close(
    consumer: *const RapidmqQueueConsumer,
    cancel: *const RapidmqCancel,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let h = handle_of(consumer)?;
        let c = h.consumer.clone();
        block_on(&h.runtime, cancel, async move { c.close().await })
    })
}

/// Frees the handle (close it first to send pending acks).
///
/// # Safety
/// `consumer` is NULL or a live handle no other call is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_queue_consumer_free(consumer: *mut RapidmqQueueConsumer) {
    guard_or((), || {
        if !consumer.is_null() {
            drop(unsafe { Box::from_raw(consumer) });
        }
    })
}

/// One error the broker reported on the stream.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqErrorInfo {
    /// The stable code.
    pub code: u32,
    /// The kind.
    pub kind: RapidmqErrorKind,
    /// Whether retrying may succeed.
    pub retriable: bool,
    /// The detail text.
    pub message: RapidmqSlice,
}

/// Errors returned by `rapidmq_queue_consumer_take_stream_errors`; free with
/// `rapidmq_error_list_free`.
#[repr(C)]
pub struct RapidmqErrorList {
    /// The errors, oldest first.
    pub items: *const RapidmqErrorInfo,
    /// Number of errors.
    pub len: usize,
}

/// Takes the errors the broker reported on the stream since the last call (e.g.
/// `RECEIPT_UNKNOWN` for an ack of an expired delivery); they do not end the subscription.
///
/// # Safety
/// `consumer` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_queue_consumer_take_stream_errors(
    consumer: *const RapidmqQueueConsumer,
    out: *mut *mut RapidmqErrorList,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let h = handle_of(consumer)?;
        let mut arena = Arena::default();
        let items: Vec<_> = h
            .consumer
            .take_stream_errors()
            .into_iter()
            .map(|e| {
                let e = FfiError::from(e);
                let (code, kind, retriable, message) = e.parts();
                RapidmqErrorInfo {
                    code,
                    kind,
                    retriable,
                    message: arena.bytes(message),
                }
            })
            .collect();
        let (items, len) = arena.array(items);
        put(
            out,
            "out",
            Owned::into_raw(RapidmqErrorList { items, len }, arena),
        )
    })
}

/// Frees an error list. NULL is ignored.
///
/// # Safety
/// `list` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_error_list_free(list: *mut RapidmqErrorList) {
    guard_or((), || unsafe { Owned::free(list) })
}

/// A queue consumer's counters.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct RapidmqQueueConsumerStats {
    /// Deliveries received.
    pub received: u64,
    /// Deliveries returned by poll.
    pub polled: u64,
    /// Deliveries buffered now.
    pub buffered: u64,
    /// The most ever buffered.
    pub max_buffered: u64,
    /// Acks.
    pub acked: u64,
    /// Nacks.
    pub nacked: u64,
    /// Deadline extensions.
    pub extended: u64,
    /// Ack requests sent.
    pub ack_requests: u64,
    /// Receipts from before a reconnect, dropped locally.
    pub stale_receipts: u64,
    /// Errors the broker reported on the stream.
    pub stream_errors: u64,
    /// Reconnects.
    pub reconnects: u64,
}

/// Writes the queue consumer's counters to `out`; false for NULL arguments.
///
/// # Safety
/// `consumer` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_queue_consumer_stats(
    consumer: *const RapidmqQueueConsumer,
    out: *mut RapidmqQueueConsumerStats,
) -> bool {
    guard_or(false, || {
        let Ok(h) = handle_of(consumer) else {
            return false;
        };
        let s = h.consumer.stats();
        put(
            out,
            "out",
            RapidmqQueueConsumerStats {
                received: s.received,
                polled: s.polled,
                buffered: s.buffered,
                max_buffered: s.max_buffered,
                acked: s.acked,
                nacked: s.nacked,
                extended: s.extended,
                ack_requests: s.ack_requests,
                stale_receipts: s.stale_receipts,
                stream_errors: s.stream_errors,
                reconnects: s.reconnects,
            },
        )
        .is_ok()
    })
}
