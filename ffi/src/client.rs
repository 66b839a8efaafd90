//! `RapidmqClient`: connect, endpoints, close; and the raw calls (`publish_batch`, `fetch`) for
//! tools and tests.

use std::time::Duration;

use rapidmq_core::{self as core, Client, Runtime};

use crate::arena::{Arena, Owned};
use crate::buffer::{RapidmqSlice, RapidmqStr};
use crate::cancel::RapidmqCancel;
use crate::config::RapidmqClientConfig;
use crate::error::{FfiError, FfiResult, RapidmqError, RapidmqStatus, guard, guard_or, put};
use crate::runtime::{RapidmqRuntime, block_on, runtime_of};
use crate::types::{
    RapidmqDelivery, RapidmqHeaderIn, RapidmqMessage, RapidmqPublishAck, RapidmqReceivedMessage,
    headers_in, messages_in, received, received_all,
};

/// A connection to a broker, shared by the producers and consumers made from it.
pub struct RapidmqClient {
    pub(crate) client: Client,
}

impl RapidmqClient {
    pub(crate) fn runtime(&self) -> &Runtime {
        self.client.runtime()
    }
}

/// The client behind a handle, or an error for NULL.
pub(crate) fn client_of<'a>(client: *const RapidmqClient) -> FfiResult<&'a RapidmqClient> {
    unsafe { client.as_ref() }.ok_or_else(|| FfiError::null("client"))
}

/// Validates `config` and connects to the first reachable endpoint; writes the handle to `out`.
/// Errors: `INVALID_ARGUMENT`, `UNAVAILABLE`, `UNAUTHENTICATED` (credentials refused), and a failed
/// TLS handshake (see `RapidmqTlsConfig`).
///
/// # Safety
/// Handles are live; `config` and its strings are readable; `out` is writable; `cancel` and
/// `err` are NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_client_connect(
    runtime: *const RapidmqRuntime,
    config: *const RapidmqClientConfig,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqClient,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let runtime = runtime_of(runtime)?.runtime.clone();
        let config = unsafe { config.as_ref() }.ok_or_else(|| FfiError::null("config"))?;
        let config = unsafe { config.read_core() }?;
        config.validate()?;
        let rt = runtime.clone();
        let client = block_on(&runtime, cancel, async move {
            Client::connect(rt, config).await
        })?;
        put(
            out,
            "out",
            Box::into_raw(Box::new(RapidmqClient { client })),
        )
    })
}

/// Endpoints returned by `rapidmq_client_endpoints`; free with `rapidmq_endpoint_list_free`.
#[repr(C)]
pub struct RapidmqEndpointList {
    /// The endpoints (UTF-8), in order.
    pub items: *const RapidmqSlice,
    /// Number of endpoints.
    pub len: usize,
}

/// The endpoints the client connects to: the configured ones, or those of the last
/// `rapidmq_client_set_endpoints`.
///
/// # Safety
/// `client` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_client_endpoints(
    client: *const RapidmqClient,
    out: *mut *mut RapidmqEndpointList,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let endpoints = client_of(client)?.client.endpoints();
        let mut arena = Arena::default();
        let items: Vec<_> = endpoints.into_iter().map(|e| arena.bytes(e)).collect();
        let (items, len) = arena.array(items);
        put(
            out,
            "out",
            Owned::into_raw(RapidmqEndpointList { items, len }, arena),
        )
    })
}

/// Frees an endpoint list. NULL is ignored.
///
/// # Safety
/// `list` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_endpoint_list_free(list: *mut RapidmqEndpointList) {
    guard_or((), || unsafe { Owned::free(list) })
}

/// Whether `rapidmq_client_close` was called on this client (false for NULL).
///
/// # Safety
/// `client` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_client_is_closed(client: *const RapidmqClient) -> bool {
    guard_or(false, || {
        client_of(client).is_ok_and(|c| c.client.is_closed())
    })
}

/// Replaces the endpoints (e.g. after a broker moved); producers and consumers follow.
///
/// # Safety
/// `client` is live; `endpoints` points at `len` readable strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_client_set_endpoints(
    client: *const RapidmqClient,
    endpoints: *const RapidmqStr,
    len: usize,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let client = client_of(client)?;
        if len > 0 && endpoints.is_null() {
            return Err(FfiError::null("endpoints"));
        }
        let raw = if len == 0 {
            &[][..]
        } else {
            unsafe { std::slice::from_raw_parts(endpoints, len) }
        };
        let list = raw
            .iter()
            .map(|e| unsafe { e.read_string("endpoint") })
            .collect::<FfiResult<Vec<_>>>()?;
        client.client.set_endpoints(list)?;
        Ok(())
    })
}

/// Closes every producer (flushing) and consumer (final commits and acks) of this client, then
/// the connection. Idempotent. The handle must still be freed.
///
/// # Safety
/// `client` is live; `cancel` and `err` are NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_client_close(
    client: *const RapidmqClient,
    cancel: *const RapidmqCancel,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let client = client_of(client)?.client.clone();
        let rt = client.runtime().clone();
        block_on(&rt, cancel, async move { client.close().await })
    })
}

/// Frees the handle. Producers and consumers made from it keep working until freed; close the
/// client first to flush them.
///
/// # Safety
/// `client` is NULL or a live handle no other call is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_client_free(client: *mut RapidmqClient) {
    guard_or((), || {
        if !client.is_null() {
            drop(unsafe { Box::from_raw(client) });
        }
    })
}

/// Publishes one batch to one partition in a single attempt, without batching or retries
/// (`producer_id` 0 disables idempotence): the raw path for tools and tests.
///
/// # Safety
/// `client` is live; `topic` and `messages` are readable; `out` is writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn rapidmq_client_publish_batch(
    client: *const RapidmqClient,
    topic: RapidmqStr,
    partition: u32,
    producer_id: u64,
    base_sequence: u64,
    messages: *const RapidmqMessage,
    messages_len: usize,
    cancel: *const RapidmqCancel,
    out: *mut RapidmqPublishAck,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let client = client_of(client)?.client.clone();
        let topic = unsafe { topic.read_string("topic") }?;
        let messages = unsafe { messages_in(messages, messages_len) }?;
        let rt = client.runtime().clone();
        let ack = block_on(&rt, cancel, async move {
            client
                .publish_batch(topic, partition, producer_id, base_sequence, messages)
                .await
        })?;
        put(out, "out", ack.into())
    })
}

/// Messages read by `rapidmq_client_fetch`; free with `rapidmq_fetch_result_free`.
#[repr(C)]
pub struct RapidmqFetchResult {
    /// The messages, in offset order.
    pub items: *const RapidmqReceivedMessage,
    /// Number of messages.
    pub len: usize,
    /// The partition's next offset to be written.
    pub high_watermark: u64,
    /// The partition's oldest retained offset.
    pub log_start_offset: u64,
}

/// Reads up to `max_messages` from `partition` from `offset`, waiting up to `max_wait_ms` for
/// data when there is none yet.
///
/// # Safety
/// `client` is live; `topic` is readable; `out` is writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn rapidmq_client_fetch(
    client: *const RapidmqClient,
    topic: RapidmqStr,
    partition: u32,
    offset: u64,
    max_messages: u32,
    max_wait_ms: u64,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqFetchResult,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let client = client_of(client)?.client.clone();
        let topic = unsafe { topic.read_string("topic") }?;
        let rt = client.runtime().clone();
        let fetched: core::FetchResult = block_on(&rt, cancel, async move {
            client
                .fetch(
                    topic,
                    partition,
                    offset,
                    max_messages,
                    Duration::from_millis(max_wait_ms),
                )
                .await
        })?;
        let mut arena = Arena::default();
        let items = received_all(&mut arena, fetched.messages);
        let (items, len) = arena.array(items);
        let view = RapidmqFetchResult {
            items,
            len,
            high_watermark: fetched.high_watermark,
            log_start_offset: fetched.log_start_offset,
        };
        put(out, "out", Owned::into_raw(view, arena))
    })
}

/// Frees a fetch result. NULL is ignored.
///
/// # Safety
/// `result` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_fetch_result_free(result: *mut RapidmqFetchResult) {
    guard_or((), || unsafe { Owned::free(result) })
}

/// A reply returned by `rapidmq_client_request`; free with `rapidmq_reply_free`.
#[repr(C)]
pub struct RapidmqReply {
    /// The reply, as read from the requester's inbox topic.
    pub message: RapidmqReceivedMessage,
}

/// Sends `message` to `topic` as a request and waits at most `timeout_ms` (above 0) for the
/// send and the first reply together. The request goes out with a `reply-to` header (this
/// client's inbox topic, made on the first request) and a unique `correlation-id`.
///
/// Errors: `INVALID_ARGUMENT` for a zero timeout, `TOPIC_NOT_FOUND`, a timeout when no reply
/// came in time.
///
/// # Safety
/// `client` is live; `topic` and `message` are readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_client_request(
    client: *const RapidmqClient,
    topic: RapidmqStr,
    message: *const RapidmqMessage,
    timeout_ms: u64,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqReply,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let client = client_of(client)?.client.clone();
        let topic = unsafe { topic.read_string("topic") }?;
        let message = unsafe { messages_in(message, 1) }?.remove(0);
        let rt = client.runtime().clone();
        let reply = block_on(&rt, cancel, async move {
            client
                .request(topic, message, Duration::from_millis(timeout_ms))
                .await
        })?;
        let mut arena = Arena::default();
        let view = RapidmqReply {
            message: received(&mut arena, reply),
        };
        put(out, "out", Owned::into_raw(view, arena))
    })
}

/// Frees a reply. NULL is ignored.
///
/// # Safety
/// `reply` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_reply_free(reply: *mut RapidmqReply) {
    guard_or((), || unsafe { Owned::free(reply) })
}

/// Answers a request: sends `reply` to the `reply-to` topic named in the request's headers
/// (`request_headers`, as received), with its `correlation-id`, and waits for the broker's ack.
///
/// Errors: `INVALID_ARGUMENT` when the headers lack either (the message was not sent as a
/// request); `TOPIC_NOT_FOUND` when the requester's inbox is gone (it closed).
///
/// # Safety
/// `client` is live; `request_headers` (`request_headers_len` of them) and `reply` are
/// readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_client_reply(
    client: *const RapidmqClient,
    request_headers: *const RapidmqHeaderIn,
    request_headers_len: usize,
    reply: *const RapidmqMessage,
    cancel: *const RapidmqCancel,
    out: *mut RapidmqDelivery,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let client = client_of(client)?.client.clone();
        let headers = unsafe { headers_in(request_headers, request_headers_len) }?;
        let reply = unsafe { messages_in(reply, 1) }?.remove(0);
        let rt = client.runtime().clone();
        let delivery = block_on(
            &rt,
            cancel,
            async move { client.reply(&headers, reply).await },
        )?;
        put(out, "out", delivery.into())
    })
}
