//! `RapidmqConsumer`: stream-mode subscriptions: poll, ack, commit.

use std::time::Duration;

use rapidmq_core::{self as core, Runtime};

use crate::arena::{Arena, Owned};
use crate::cancel::RapidmqCancel;
use crate::client::{RapidmqClient, client_of};
use crate::config::RapidmqConsumerConfig;
use crate::error::{FfiError, FfiResult, RapidmqError, RapidmqStatus, guard, guard_or, put};
use crate::runtime::block_on;
use crate::types::{RapidmqReceivedMessage, received_all};

/// A member of a stream subscription.
pub struct RapidmqConsumer {
    consumer: core::Consumer,
    runtime: Runtime,
}

fn consumer_of<'a>(consumer: *const RapidmqConsumer) -> FfiResult<&'a core::Consumer> {
    handle_of(consumer).map(|c| &c.consumer)
}

fn handle_of<'a>(consumer: *const RapidmqConsumer) -> FfiResult<&'a RapidmqConsumer> {
    unsafe { consumer.as_ref() }.ok_or_else(|| FfiError::null("consumer"))
}

/// The consumer and its runtime, cloned for a blocking call.
fn parts(consumer: *const RapidmqConsumer) -> FfiResult<(core::Consumer, Runtime)> {
    let h = handle_of(consumer)?;
    Ok((h.consumer.clone(), h.runtime.clone()))
}

/// Messages returned by `rapidmq_consumer_poll`; free with `rapidmq_message_batch_free`.
#[repr(C)]
pub struct RapidmqMessageBatch {
    /// The messages.
    pub items: *const RapidmqReceivedMessage,
    /// Number of messages (0 when none arrived in time).
    pub len: usize,
}

/// Subscribes (stream mode) and writes the handle to `out` once the broker confirmed.
/// Errors: `TOPIC_NOT_FOUND`, `SUBSCRIPTION_MODE_MISMATCH`, `INVALID_ARGUMENT`.
///
/// # Safety
/// `client` is live; `config` is readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_consumer_new(
    client: *const RapidmqClient,
    config: *const RapidmqConsumerConfig,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqConsumer,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let client = client_of(client)?.client.clone();
        let config = unsafe { config.as_ref() }.ok_or_else(|| FfiError::null("config"))?;
        let config = unsafe { config.read_core() }?;
        let runtime = client.runtime().clone();
        let consumer = block_on(
            &runtime,
            cancel,
            async move { client.subscribe(config).await },
        )?;
        put(
            out,
            "out",
            Box::into_raw(Box::new(RapidmqConsumer { consumer, runtime })),
        )
    })
}

/// Returns up to `max` buffered messages, waiting up to `timeout_ms` for the first one (an empty
/// batch when none arrived). Cancel-safe: a cancelled poll takes no message.
///
/// # Safety
/// `consumer` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_consumer_poll(
    consumer: *const RapidmqConsumer,
    max: usize,
    timeout_ms: u64,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqMessageBatch,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        poll_batch(consumer, max, timeout_ms, cancel, out, false)
    })
}

/// `rapidmq_consumer_poll` for a caller that hands the messages on one at a time: they do not
/// count as acknowledged even with auto-commit; acknowledge each as it is handed on
/// (`rapidmq_consumer_ack_many`).
///
/// # Safety
/// `consumer` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_consumer_poll_unacked(
    consumer: *const RapidmqConsumer,
    max: usize,
    timeout_ms: u64,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqMessageBatch,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        poll_batch(consumer, max, timeout_ms, cancel, out, true)
    })
}

/// The two polls: `unacked` leaves auto-commit's acknowledgement to the caller.
fn poll_batch(
    consumer: *const RapidmqConsumer,
    max: usize,
    timeout_ms: u64,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqMessageBatch,
    unacked: bool,
) -> FfiResult<()> {
    let (c, rt) = parts(consumer)?;
    let timeout = Duration::from_millis(timeout_ms);
    let messages = block_on(&rt, cancel, async move {
        if unacked {
            c.poll_unacked(max, timeout).await
        } else {
            c.poll(max, timeout).await
        }
    })?;
    let mut arena = Arena::default();
    let items = received_all(&mut arena, messages);
    let (items, len) = arena.array(items);
    put(
        out,
        "out",
        Owned::into_raw(RapidmqMessageBatch { items, len }, arena),
    )
}

/// Puts the messages of `batch` from index `from` on back in front of the consumer's buffer, in
/// order, for the next poll: those a caller took with `rapidmq_consumer_poll_unacked` and did not
/// hand on (the Go SDK's iterator, left early). Their credits are not granted again, and only
/// messages still owed go back (of a partition the member still owns, polled in this session,
/// not acknowledged); see `Consumer::put_back` in rapidmq-core.
///
/// `batch` comes from a poll of this consumer and is still the caller's: free it as usual. Its
/// items from `from` on must not be read after this call.
///
/// # Safety
/// `consumer` is live; `batch` comes from `rapidmq_consumer_poll_unacked` (or
/// `rapidmq_consumer_poll`) and was not freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_consumer_put_back(
    consumer: *const RapidmqConsumer,
    batch: *mut RapidmqMessageBatch,
    from: usize,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let c = consumer_of(consumer)?;
        let arena = unsafe { Owned::arena_of(batch) }.ok_or_else(|| FfiError::null("batch"))?;
        let Some(mut messages) = arena.take::<Vec<core::ReceivedMessage>>() else {
            return Ok(());
        };
        let rest = messages.split_off(from.min(messages.len()));
        arena.keep(messages); // the views before `from` stay valid
        c.put_back(rest);
        Ok(())
    })
}

/// Acknowledges `len` messages: `offsets[i]` of `partitions[i]`, as `rapidmq_consumer_ack`
/// does one.
///
/// # Safety
/// `consumer` is live; `partitions` and `offsets` hold `len` values each (either may be NULL
/// when `len` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_consumer_ack_many(
    consumer: *const RapidmqConsumer,
    partitions: *const u32,
    offsets: *const u64,
    len: usize,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let consumer = consumer_of(consumer)?;
        if len == 0 {
            return Ok(());
        }
        if partitions.is_null() {
            return Err(FfiError::null("partitions"));
        }
        if offsets.is_null() {
            return Err(FfiError::null("offsets"));
        }
        let partitions = unsafe { std::slice::from_raw_parts(partitions, len) };
        let offsets = unsafe { std::slice::from_raw_parts(offsets, len) };
        Ok(consumer.ack_offsets(partitions.iter().copied().zip(offsets.iter().copied()))?)
    })
}

/// Frees a message batch. NULL is ignored.
///
/// # Safety
/// `batch` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_message_batch_free(batch: *mut RapidmqMessageBatch) {
    guard_or((), || unsafe { Owned::free(batch) })
}

/// Acknowledges the message at `offset` of `partition`; committed once every earlier polled
/// message of the partition is acknowledged too.
///
/// # Safety
/// `consumer` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_consumer_ack(
    consumer: *const RapidmqConsumer,
    partition: u32,
    offset: u64,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        Ok(consumer_of(consumer)?.ack_offset(partition, offset)?)
    })
}

/// Negative acknowledgement: a queue-mode feature. In stream mode it always fails with kind
/// `UNSUPPORTED` (code `INVALID_ARGUMENT`); use a queue consumer.
///
/// # Safety
/// `consumer` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_consumer_nack(
    consumer: *const RapidmqConsumer,
    partition: u32,
    offset: u64,
    delay_ms: u64,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let c = consumer_of(consumer)?;
        let message = core::ReceivedMessage {
            topic: c.config().topic.clone(),
            partition,
            offset,
            key: None,
            value: Default::default(),
            headers: Vec::new(),
            timestamp_ms: 0,
            append_time_ms: 0,
            deliver_at_ms: None,
            ttl: None,
            priority: 0,
        };
        Ok(c.nack(&message, Duration::from_millis(delay_ms))?)
    })
}

/// Sends the acknowledged positions now.
///
/// # Safety
/// `consumer` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_consumer_commit(
    consumer: *const RapidmqConsumer,
    cancel: *const RapidmqCancel,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let (c, rt) = parts(consumer)?;
        block_on(&rt, cancel, async move { c.commit().await })
    })
}

/// Commits what was acknowledged and leaves the subscription. The handle must still be freed.
///
/// # Safety
/// `consumer` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_consumer_close(
    consumer: *const RapidmqConsumer,
    cancel: *const RapidmqCancel,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let (c, rt) = parts(consumer)?;
        block_on(&rt, cancel, async move { c.close().await })
    })
}

/// Frees the handle (close it first to commit).
///
/// # Safety
/// `consumer` is NULL or a live handle no other call is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_consumer_free(consumer: *mut RapidmqConsumer) {
    guard_or((), || {
        if !consumer.is_null() {
            drop(unsafe { Box::from_raw(consumer) });
        }
    })
}

/// Writes up to `cap` partitions this member owns to `out` and returns how many it owns.
///
/// # Safety
/// `consumer` is NULL or live; `out` has room for `cap` values (or `cap` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_consumer_assignment(
    consumer: *const RapidmqConsumer,
    out: *mut u32,
    cap: usize,
) -> usize {
    guard_or(0, || {
        let Ok(c) = consumer_of(consumer) else {
            return 0;
        };
        let assignment = c.assignment();
        if !out.is_null() {
            for (i, p) in assignment.iter().take(cap).enumerate() {
                unsafe { out.add(i).write(*p) };
            }
        }
        assignment.len()
    })
}

/// A stream consumer's counters.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct RapidmqConsumerStats {
    /// Messages received from the broker.
    pub received: u64,
    /// Messages returned by poll.
    pub polled: u64,
    /// Messages buffered now.
    pub buffered: u64,
    /// The most ever buffered.
    pub max_buffered: u64,
    /// Commit requests sent.
    pub commits: u64,
    /// Reconnects.
    pub reconnects: u64,
    /// Messages dropped when their partition was revoked.
    pub dropped_on_revoke: u64,
    /// The subscription generation.
    pub generation: u64,
}

/// Writes the consumer's counters to `out`; false for NULL arguments.
///
/// # Safety
/// `consumer` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_consumer_stats(
    consumer: *const RapidmqConsumer,
    out: *mut RapidmqConsumerStats,
) -> bool {
    guard_or(false, || {
        let Ok(c) = consumer_of(consumer) else {
            return false;
        };
        let s = c.stats();
        put(
            out,
            "out",
            RapidmqConsumerStats {
                received: s.received,
                polled: s.polled,
                buffered: s.buffered,
                max_buffered: s.max_buffered,
                commits: s.commits,
                reconnects: s.reconnects,
                dropped_on_revoke: s.dropped_on_revoke,
                generation: s.generation,
            },
        )
        .is_ok()
    })
}
