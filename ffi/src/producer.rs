//! `RapidmqProducer`: batching sends with a blocking form and a callback form.

use std::os::raw::c_void;
use std::sync::atomic::Ordering;

use rapidmq_core::{self as core, ErrorCode};

use crate::buffer::RapidmqBytes;
use crate::cancel::RapidmqCancel;
use crate::client::{RapidmqClient, client_of};
use crate::config::RapidmqProducerConfig;
use crate::error::{
    FfiError, FfiResult, RapidmqError, RapidmqErrorKind, RapidmqStatus, guard, guard_or, put,
};
use crate::runtime::block_on;
use crate::types::{RapidmqDelivery, RapidmqMessage};

/// Publishes to one topic through the core producer (batching, idempotence, retries).
pub struct RapidmqProducer {
    producer: core::Producer,
}

pub(crate) fn producer_of<'a>(producer: *const RapidmqProducer) -> FfiResult<&'a core::Producer> {
    unsafe { producer.as_ref() }
        .map(|p| &p.producer)
        .ok_or_else(|| FfiError::null("producer"))
}

/// The core message a send passes in, or an error for NULL or an invalid one.
///
/// # Safety
/// `message` is NULL or readable.
pub(crate) unsafe fn message_of(message: *const RapidmqMessage) -> FfiResult<core::Message> {
    let message = unsafe { message.as_ref() }.ok_or_else(|| FfiError::null("message"))?;
    unsafe { message.read_core() }
}

/// The outcome of one send, handed to a `RapidmqSendCallback`. Valid only during the callback:
/// copy what you need (the error message is freed when the callback returns).
#[repr(C)]
pub struct RapidmqSendResult {
    /// `RAPIDMQ_STATUS_OK` with `delivery`, or `RAPIDMQ_STATUS_ERROR` with `error`.
    pub status: RapidmqStatus,
    /// Where the message went.
    pub delivery: RapidmqDelivery,
    /// Why it failed.
    pub error: RapidmqError,
}

/// Called once per `rapidmq_producer_send`, from a runtime thread, when the receipt resolves.
/// It must return quickly and must not make blocking RapidMQ calls.
pub type RapidmqSendCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, result: *const RapidmqSendResult)>;

/// The caller's `user_data`, carried to the runtime thread that calls back.
struct UserData(*mut c_void);
// SAFETY: the library only hands the pointer back to the caller's callback; what it points to
// is the caller's business (Go passes a `cgo.Handle` value, not a pointer).
unsafe impl Send for UserData {}

/// Creates a producer for `config.topic` (looked up first) and writes the handle to `out`.
/// Errors: `TOPIC_NOT_FOUND`, `INVALID_ARGUMENT`.
///
/// # Safety
/// `client` is live; `config` is readable; `out` is writable; `cancel`/`err` NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_producer_new(
    client: *const RapidmqClient,
    config: *const RapidmqProducerConfig,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqProducer,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let client = client_of(client)?.client.clone();
        let config = unsafe { config.as_ref() }.ok_or_else(|| FfiError::null("config"))?;
        let config = unsafe { config.read_core() }?;
        let rt = client.runtime().clone();
        let producer = block_on(
            &rt,
            cancel,
            async move { client.create_producer(config).await },
        )?;
        put(
            out,
            "out",
            Box::into_raw(Box::new(RapidmqProducer { producer })),
        )
    })
}

/// Queues `message` without waiting for room when possible; waits (cancellably) while the
/// producer buffers `max_buffered_messages`.
pub(crate) fn enqueue(
    producer: &core::Producer,
    message: core::Message,
    cancel: *const RapidmqCancel,
) -> FfiResult<core::SendReceipt> {
    match producer.try_send(message.clone()) {
        Err(e) if e.code() == ErrorCode::ResourceExhausted => {
            let p = producer.clone();
            block_on(producer.client().runtime(), cancel, async move {
                p.send(message).await
            })
        }
        other => Ok(other?),
    }
}

/// Sends `message` and returns at once; `callback(user_data, result)` is called exactly once,
/// from a runtime thread, when the batch is acknowledged or has failed for good. Blocks only
/// while the producer's buffer is full (interruptible through `cancel`). When this function
/// fails, the callback is not called.
///
/// # Safety
/// `producer` is live; `message` is readable; `callback` is not NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_producer_send(
    producer: *const RapidmqProducer,
    message: *const RapidmqMessage,
    cancel: *const RapidmqCancel,
    callback: RapidmqSendCallback,
    user_data: *mut c_void,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let producer = producer_of(producer)?;
        let callback = callback.ok_or_else(|| FfiError::null("callback"))?;
        let message = unsafe { message_of(message) }?;
        let receipt = enqueue(producer, message, cancel)?;
        report(producer, receipt, callback, UserData(user_data));
        Ok(())
    })
}

/// Like `rapidmq_producer_send`, but never waits: when the producer already buffers
/// `max_buffered_messages`, it writes false to `queued`, queues nothing and never calls the
/// callback. Otherwise it writes true and the callback is called exactly once, as for
/// `rapidmq_producer_send`.
///
/// # Safety
/// `producer` is live; `message` is readable; `callback` is not NULL; `queued` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_producer_try_send(
    producer: *const RapidmqProducer,
    message: *const RapidmqMessage,
    callback: RapidmqSendCallback,
    user_data: *mut c_void,
    queued: *mut bool,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let producer = producer_of(producer)?;
        let callback = callback.ok_or_else(|| FfiError::null("callback"))?;
        let message = unsafe { message_of(message) }?;
        if let Some(receipt) = try_enqueue(producer, message, queued)? {
            report(producer, receipt, callback, UserData(user_data));
        }
        Ok(())
    })
}

/// The try-send forms' common part: queues `message` unless the buffer is full, and writes to
/// `queued` whether it did. `queued` is checked before anything is queued.
pub(crate) fn try_enqueue(
    producer: &core::Producer,
    message: core::Message,
    queued: *mut bool,
) -> FfiResult<Option<core::SendReceipt>> {
    if queued.is_null() {
        return Err(FfiError::null("queued"));
    }
    let receipt = match producer.try_send(message) {
        Err(e) if e.code() == ErrorCode::ResourceExhausted => None,
        Err(e) => return Err(e.into()),
        Ok(receipt) => Some(receipt),
    };
    put(queued, "queued", receipt.is_some())?;
    Ok(receipt)
}

/// Calls `callback(user_data, result)` once, from a runtime thread, when `receipt` resolves.
fn report(
    producer: &core::Producer,
    receipt: core::SendReceipt,
    callback: unsafe extern "C" fn(*mut c_void, *const RapidmqSendResult),
    user_data: UserData,
) {
    producer.client().runtime().handle().spawn(async move {
        let outcome = receipt.await;
        let user_data = user_data;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut result = send_result(outcome);
            // SAFETY: the caller's callback, with the caller's user data.
            unsafe { callback(user_data.0, &result) };
            unsafe { crate::error::rapidmq_error_clear(&mut result.error) };
        }));
    });
}

/// A send's outcome for C; an error's message is the library's until `rapidmq_error_clear`.
pub(crate) fn send_result(outcome: core::Result<core::Delivery>) -> RapidmqSendResult {
    let mut result = RapidmqSendResult {
        status: RapidmqStatus::RAPIDMQ_STATUS_OK,
        delivery: RapidmqDelivery {
            partition: 0,
            offset: 0,
            status: 0,
            durability: 0,
        },
        error: RapidmqError {
            code: 0,
            kind: RapidmqErrorKind::RAPIDMQ_ERROR_KIND_NONE,
            retriable: false,
            message: RapidmqBytes::EMPTY,
        },
    };
    match outcome {
        Ok(delivery) => result.delivery = delivery.into(),
        Err(e) => {
            result.status = RapidmqStatus::RAPIDMQ_STATUS_ERROR;
            FfiError::from(e).write(&mut result.error);
        }
    }
    result
}

/// Sends `message` and blocks until its receipt resolves (or `cancel` is triggered: the message
/// may still be published); writes where it went to `out`.
///
/// # Safety
/// `producer` is live; `message` is readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_producer_send_wait(
    producer: *const RapidmqProducer,
    message: *const RapidmqMessage,
    cancel: *const RapidmqCancel,
    out: *mut RapidmqDelivery,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let producer = producer_of(producer)?;
        let message = unsafe { message_of(message) }?;
        let receipt = enqueue(producer, message, cancel)?;
        let delivery = block_on(producer.client().runtime(), cancel, receipt)?;
        put(out, "out", delivery.into())
    })
}

/// Sends every batch now and waits until every message sent before the call has completed.
///
/// # Safety
/// `producer` is live; `cancel`/`err` NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_producer_flush(
    producer: *const RapidmqProducer,
    cancel: *const RapidmqCancel,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let p = producer_of(producer)?.clone();
        let rt = p.client().runtime().clone();
        block_on(&rt, cancel, async move { p.flush().await })
    })
}

/// Flushes, then stops the producer; later sends fail with kind `CLOSED`. The handle must
/// still be freed.
///
/// # Safety
/// `producer` is live; `cancel`/`err` NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_producer_close(
    producer: *const RapidmqProducer,
    cancel: *const RapidmqCancel,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let p = producer_of(producer)?.clone();
        let rt = p.client().runtime().clone();
        block_on(&rt, cancel, async move { p.close().await })
    })
}

/// Frees the handle (without flushing: close it first). Pending callbacks still run.
///
/// # Safety
/// `producer` is NULL or a live handle no other call is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_producer_free(producer: *mut RapidmqProducer) {
    guard_or((), || {
        if !producer.is_null() {
            drop(unsafe { Box::from_raw(producer) });
        }
    })
}

/// The topic's partition count (0 for NULL).
///
/// # Safety
/// `producer` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_producer_partitions(producer: *const RapidmqProducer) -> u32 {
    guard_or(0, || producer_of(producer).map_or(0, |p| p.partitions()))
}

/// A producer's counters since it was created.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct RapidmqProducerStats {
    /// Messages accepted by send.
    pub messages_sent: u64,
    /// Messages acknowledged.
    pub messages_acked: u64,
    /// Messages whose batch failed.
    pub messages_failed: u64,
    /// Batches handed to the network.
    pub batches: u64,
    /// Publish requests, first attempts and retries.
    pub requests: u64,
    /// Retries.
    pub retries: u64,
    /// Batches the broker reported as duplicates.
    pub duplicates: u64,
    /// Most batches one partition had in flight at once.
    pub max_partition_in_flight: u64,
}

/// Writes the producer's counters to `out`; returns false for NULL arguments.
///
/// # Safety
/// `producer` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_producer_stats(
    producer: *const RapidmqProducer,
    out: *mut RapidmqProducerStats,
) -> bool {
    guard_or(false, || {
        let Ok(p) = producer_of(producer) else {
            return false;
        };
        let s = p.stats();
        put(
            out,
            "out",
            RapidmqProducerStats {
                messages_sent: s.messages_sent,
                messages_acked: s.messages_acked,
                messages_failed: s.messages_failed,
                batches: s.batches,
                requests: s.requests,
                retries: s.retries,
                duplicates: s.duplicates,
                max_partition_in_flight: s.max_partition_in_flight,
            },
        )
        .is_ok()
    })
}

/// **Test only, not part of the stable ABI**: discards the next `count` successful publish
/// answers as if the connection broke before the ack arrived, so the retry path runs.
///
/// # Safety
/// `producer` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_producer_testing_lose_acks(
    producer: *const RapidmqProducer,
    count: u32,
) {
    guard_or((), || {
        if let Ok(p) = producer_of(producer) {
            p.faults().lose_acks.store(count, Ordering::SeqCst);
        }
    })
}
