//! Admin calls on a client: topics, subscriptions (stream and queue), lag, dead letters, broker
//! status. Descriptions come back as result objects freed with their `_free` function.

use rapidmq_core::{self as core, Admin};

use crate::arena::{Arena, Owned};
use crate::buffer::{RapidmqSlice, RapidmqStr};
use crate::cancel::RapidmqCancel;
use crate::client::{RapidmqClient, client_of};
use crate::error::{FfiError, FfiResult, RapidmqError, RapidmqStatus, guard, guard_or, put};
use crate::runtime::block_on;
use crate::types::{
    RapidmqBrokerStatus, RapidmqDeadLetter, RapidmqQueueSettings, RapidmqStart,
    RapidmqSubscriptionInfo, RapidmqTopicConfig, RapidmqTopicInfo, broker_status, dead_letter,
    subscription_info, topic_info,
};

/// Topics returned by `rapidmq_admin_list_topics`; free with `rapidmq_topic_list_free`.
#[repr(C)]
pub struct RapidmqTopicList {
    /// The topics.
    pub items: *const RapidmqTopicInfo,
    /// Number of topics.
    pub len: usize,
}

/// Subscriptions returned by `rapidmq_admin_list_subscriptions`; free with
/// `rapidmq_subscription_list_free`.
#[repr(C)]
pub struct RapidmqSubscriptionList {
    /// The subscriptions.
    pub items: *const RapidmqSubscriptionInfo,
    /// Number of subscriptions.
    pub len: usize,
}

/// One page of dead letters returned by `rapidmq_admin_list_dead_letters`; free with
/// `rapidmq_dead_letter_list_free`.
#[repr(C)]
pub struct RapidmqDeadLetterList {
    /// The dead letters: oldest first within each partition, partitions in order.
    pub items: *const RapidmqDeadLetter,
    /// Number of dead letters.
    pub len: usize,
    /// Pass it as `page_token` for the next page; empty when there is nothing more.
    pub next_page_token: RapidmqSlice,
}

/// What one `rapidmq_admin_replay_dead_letters` call did.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqDeadLetterReplay {
    /// Dead letters published back to their topics by this call.
    pub replayed: u32,
    /// Messages still pending in the dead-letter topic, over all partitions.
    pub remaining: u64,
}

/// Runs one admin call with the client's admin API, blocking and cancellable.
pub(crate) fn admin_call<T, F, Fut>(
    client: *const RapidmqClient,
    cancel: *const RapidmqCancel,
    call: F,
) -> FfiResult<T>
where
    F: FnOnce(Admin) -> Fut,
    Fut: std::future::Future<Output = core::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let client = client_of(client)?;
    let future = call(client.client.admin());
    block_on(client.runtime(), cancel, future)
}

pub(crate) fn text(s: RapidmqStr, what: &str) -> FfiResult<String> {
    unsafe { s.read_string(what) }
}

/// An empty string is "not set".
pub(crate) fn optional(s: RapidmqStr, what: &str) -> FfiResult<Option<String>> {
    let s = text(s, what)?;
    Ok((!s.is_empty()).then_some(s))
}

/// The `len` strings at `items` (NULL allowed when `len` is 0).
pub(crate) fn texts(items: *const RapidmqStr, len: usize, what: &str) -> FfiResult<Vec<String>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if items.is_null() {
        return Err(FfiError::null(what));
    }
    let raw = unsafe { std::slice::from_raw_parts(items, len) };
    raw.iter().map(|s| text(*s, what)).collect()
}

fn topic_out(out: *mut *mut RapidmqTopicInfo, info: core::TopicInfo) -> FfiResult<()> {
    let mut arena = Arena::default();
    let view = topic_info(&mut arena, info);
    put(out, "out", Owned::into_raw(view, arena))
}

fn subscription_out(
    out: *mut *mut RapidmqSubscriptionInfo,
    info: core::SubscriptionInfo,
) -> FfiResult<()> {
    let mut arena = Arena::default();
    let view = subscription_info(&mut arena, info);
    put(out, "out", Owned::into_raw(view, arena))
}

fn topic_config(config: *const RapidmqTopicConfig) -> FfiResult<core::TopicConfig> {
    unsafe { config.as_ref() }
        .copied()
        .unwrap_or_default()
        .to_core()
}

/// Creates a topic (`config` NULL: broker defaults). Errors: `TOPIC_ALREADY_EXISTS`,
/// `INVALID_NAME`, `INVALID_PARTITION_COUNT`, `INVALID_TOPIC_CONFIG`.
///
/// # Safety
/// `client` is live; `name` and `config` are readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_create_topic(
    client: *const RapidmqClient,
    name: RapidmqStr,
    config: *const RapidmqTopicConfig,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqTopicInfo,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let (name, config) = (text(name, "name")?, topic_config(config)?);
        let info = admin_call(client, cancel, |a| async move {
            a.create_topic(name, config).await
        })?;
        topic_out(out, info)
    })
}

/// Changes a topic's settings (unset fields keep their value). Errors: `TOPIC_NOT_FOUND`,
/// `INVALID_PARTITION_COUNT`, `INVALID_TOPIC_CONFIG`.
///
/// # Safety
/// As `rapidmq_admin_create_topic`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_alter_topic(
    client: *const RapidmqClient,
    name: RapidmqStr,
    config: *const RapidmqTopicConfig,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqTopicInfo,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let (name, config) = (text(name, "name")?, topic_config(config)?);
        let info = admin_call(client, cancel, |a| async move {
            a.alter_topic(name, config).await
        })?;
        topic_out(out, info)
    })
}

/// Describes a topic and its partitions. Errors: `TOPIC_NOT_FOUND`.
///
/// # Safety
/// `client` is live; `name` is readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_describe_topic(
    client: *const RapidmqClient,
    name: RapidmqStr,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqTopicInfo,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let name = text(name, "name")?;
        let info = admin_call(
            client,
            cancel,
            |a| async move { a.describe_topic(name).await },
        )?;
        topic_out(out, info)
    })
}

/// Lists every topic.
///
/// # Safety
/// `client` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_list_topics(
    client: *const RapidmqClient,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqTopicList,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let topics = admin_call(client, cancel, |a| async move { a.list_topics().await })?;
        let mut arena = Arena::default();
        let items: Vec<_> = topics
            .into_iter()
            .map(|t| topic_info(&mut arena, t))
            .collect();
        let (items, len) = arena.array(items);
        put(
            out,
            "out",
            Owned::into_raw(RapidmqTopicList { items, len }, arena),
        )
    })
}

/// Deletes a topic and its subscriptions. Errors: `TOPIC_NOT_FOUND`.
///
/// # Safety
/// `client` is live; `name` is readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_delete_topic(
    client: *const RapidmqClient,
    name: RapidmqStr,
    cancel: *const RapidmqCancel,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let name = text(name, "name")?;
        admin_call(
            client,
            cancel,
            |a| async move { a.delete_topic(name).await },
        )
    })
}

/// Creates a stream subscription starting at `start`. Errors: `TOPIC_NOT_FOUND`,
/// `SUBSCRIPTION_ALREADY_EXISTS`, `INVALID_NAME`.
///
/// # Safety
/// `client` is live; strings are readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_create_subscription(
    client: *const RapidmqClient,
    topic: RapidmqStr,
    name: RapidmqStr,
    start: RapidmqStart,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqSubscriptionInfo,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let (topic, name, start) = (text(topic, "topic")?, text(name, "name")?, start.to_core()?);
        let info = admin_call(client, cancel, |a| async move {
            a.create_subscription(topic, name, start).await
        })?;
        subscription_out(out, info)
    })
}

/// Creates a queue subscription with `settings` (NULL: broker defaults). Errors:
/// `TOPIC_NOT_FOUND`, `SUBSCRIPTION_ALREADY_EXISTS`, `INVALID_NAME`, `INVALID_ARGUMENT`.
///
/// # Safety
/// `client` is live; strings and `settings` are readable; `out` is writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn rapidmq_admin_create_queue_subscription(
    client: *const RapidmqClient,
    topic: RapidmqStr,
    name: RapidmqStr,
    start: RapidmqStart,
    settings: *const RapidmqQueueSettings,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqSubscriptionInfo,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let (topic, name, start) = (text(topic, "topic")?, text(name, "name")?, start.to_core()?);
        let settings = match unsafe { settings.as_ref() } {
            Some(s) => unsafe { s.read_core() }?,
            None => core::QueueSettings::default(),
        };
        let info = admin_call(client, cancel, |a| async move {
            a.create_queue_subscription(topic, name, start, settings)
                .await
        })?;
        subscription_out(out, info)
    })
}

/// Describes a subscription with its cursors, members and lag. Errors:
/// `SUBSCRIPTION_NOT_FOUND`.
///
/// # Safety
/// `client` is live; strings are readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_describe_subscription(
    client: *const RapidmqClient,
    topic: RapidmqStr,
    name: RapidmqStr,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqSubscriptionInfo,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let (topic, name) = (text(topic, "topic")?, text(name, "name")?);
        let info = admin_call(client, cancel, |a| async move {
            a.describe_subscription(topic, name).await
        })?;
        subscription_out(out, info)
    })
}

/// Lists the subscriptions of `topic`, or of every topic when `topic` is empty.
///
/// # Safety
/// `client` is live; `topic` is readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_list_subscriptions(
    client: *const RapidmqClient,
    topic: RapidmqStr,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqSubscriptionList,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let topic = text(topic, "topic")?;
        let topic = (!topic.is_empty()).then_some(topic);
        let subs = admin_call(client, cancel, |a| async move {
            a.list_subscriptions(topic).await
        })?;
        let mut arena = Arena::default();
        let items: Vec<_> = subs
            .into_iter()
            .map(|s| subscription_info(&mut arena, s))
            .collect();
        let (items, len) = arena.array(items);
        put(
            out,
            "out",
            Owned::into_raw(RapidmqSubscriptionList { items, len }, arena),
        )
    })
}

/// Writes a subscription's total lag (messages not yet committed) to `out`.
///
/// # Safety
/// `client` is live; strings are readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_lag(
    client: *const RapidmqClient,
    topic: RapidmqStr,
    name: RapidmqStr,
    cancel: *const RapidmqCancel,
    out: *mut u64,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let (topic, name) = (text(topic, "topic")?, text(name, "name")?);
        let lag = admin_call(client, cancel, |a| async move { a.lag(topic, name).await })?;
        put(out, "out", lag)
    })
}

/// Moves a subscription's cursor on one partition (`has_partition`) or all. Errors:
/// `SUBSCRIPTION_NOT_FOUND`, `PARTITION_NOT_FOUND`, `OFFSET_OUT_OF_RANGE`.
///
/// # Safety
/// `client` is live; strings are readable; `out` is writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn rapidmq_admin_seek_subscription(
    client: *const RapidmqClient,
    topic: RapidmqStr,
    name: RapidmqStr,
    position: RapidmqStart,
    has_partition: bool,
    partition: u32,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqSubscriptionInfo,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let (topic, name) = (text(topic, "topic")?, text(name, "name")?);
        let position = position.to_core()?;
        let partition = has_partition.then_some(partition);
        let info = admin_call(client, cancel, |a| async move {
            a.seek_subscription(topic, name, position, partition).await
        })?;
        subscription_out(out, info)
    })
}

/// Deletes a subscription. Errors: `SUBSCRIPTION_NOT_FOUND`.
///
/// # Safety
/// `client` is live; strings are readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_delete_subscription(
    client: *const RapidmqClient,
    topic: RapidmqStr,
    name: RapidmqStr,
    cancel: *const RapidmqCancel,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let (topic, name) = (text(topic, "topic")?, text(name, "name")?);
        admin_call(client, cancel, |a| async move {
            a.delete_subscription(topic, name).await
        })
    })
}

/// Lists one page of the dead letters of `dead_letter_topic` not yet replayed: at most `max`
/// (0: the broker default, 100; at most 1000), from `page_token` (the `next_page_token` of the
/// previous page) or, when it is empty, from the start. Free the page with
/// `rapidmq_dead_letter_list_free`. Errors: `TOPIC_NOT_FOUND`, `INVALID_ARGUMENT` (`max` above
/// 1000, or a token not issued for this topic).
///
/// # Safety
/// `client` is live; `dead_letter_topic` and `page_token` are readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_list_dead_letters(
    client: *const RapidmqClient,
    dead_letter_topic: RapidmqStr,
    max: u32,
    page_token: RapidmqStr,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqDeadLetterList,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let topic = text(dead_letter_topic, "dead_letter_topic")?;
        let token = text(page_token, "page_token")?;
        let page = admin_call(client, cancel, |a| async move {
            let token = (!token.is_empty()).then_some(token);
            a.list_dead_letters(topic, max, token.as_deref()).await
        })?;
        let mut arena = Arena::default();
        let items: Vec<_> = page
            .dead_letters
            .into_iter()
            .map(|d| dead_letter(&mut arena, d))
            .collect();
        let (items, len) = arena.array(items);
        let next_page_token = arena.bytes(page.next_page_token.unwrap_or_default());
        put(
            out,
            "out",
            Owned::into_raw(
                RapidmqDeadLetterList {
                    items,
                    len,
                    next_page_token,
                },
                arena,
            ),
        )
    })
}

/// Publishes up to `max` (0: the broker default, 1000; at most 10000) pending dead letters
/// back to their topics; writes how many it published and how many are still pending to
/// `out`. Call again until `remaining` is 0. Sent once, never retried. Errors:
/// `TOPIC_NOT_FOUND`, `INVALID_ARGUMENT` (`max` above 10000).
///
/// # Safety
/// `client` is live; `dead_letter_topic` is readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_replay_dead_letters(
    client: *const RapidmqClient,
    dead_letter_topic: RapidmqStr,
    max: u32,
    cancel: *const RapidmqCancel,
    out: *mut RapidmqDeadLetterReplay,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let topic = text(dead_letter_topic, "dead_letter_topic")?;
        let max = (max > 0).then_some(max);
        let outcome = admin_call(client, cancel, |a| async move {
            a.replay_dead_letters(topic, max).await
        })?;
        put(
            out,
            "out",
            RapidmqDeadLetterReplay {
                replayed: outcome.replayed,
                remaining: outcome.remaining,
            },
        )
    })
}

/// Broker version, uptime and counts; free with `rapidmq_broker_status_free`.
///
/// # Safety
/// `client` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_status(
    client: *const RapidmqClient,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqBrokerStatus,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let status = admin_call(client, cancel, |a| async move { a.status().await })?;
        let mut arena = Arena::default();
        let view = broker_status(&mut arena, status);
        put(out, "out", Owned::into_raw(view, arena))
    })
}

/// Frees a topic description. NULL is ignored.
///
/// # Safety
/// `info` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_topic_info_free(info: *mut RapidmqTopicInfo) {
    guard_or((), || unsafe { Owned::free(info) })
}

/// Frees a topic list. NULL is ignored.
///
/// # Safety
/// `list` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_topic_list_free(list: *mut RapidmqTopicList) {
    guard_or((), || unsafe { Owned::free(list) })
}

/// Frees a subscription description. NULL is ignored.
///
/// # Safety
/// `info` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_subscription_info_free(info: *mut RapidmqSubscriptionInfo) {
    guard_or((), || unsafe { Owned::free(info) })
}

/// Frees a subscription list. NULL is ignored.
///
/// # Safety
/// `list` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_subscription_list_free(list: *mut RapidmqSubscriptionList) {
    guard_or((), || unsafe { Owned::free(list) })
}

/// Frees a dead-letter list. NULL is ignored.
///
/// # Safety
/// `list` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_dead_letter_list_free(list: *mut RapidmqDeadLetterList) {
    guard_or((), || unsafe { Owned::free(list) })
}

/// Frees a broker status. NULL is ignored.
///
/// # Safety
/// `status` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_broker_status_free(status: *mut RapidmqBrokerStatus) {
    guard_or((), || unsafe { Owned::free(status) })
}
