//! Request/reply over topics, like NATS: [`Client::request`] publishes a message carrying a
//! `reply-to` topic and a `correlation-id`, and waits for the message a responder sends back
//! with [`Client::reply`].
//!
//! Each client has one inbox, made on its first request: a memory topic `_inbox.<32 hex>` with
//! one partition, read by an ephemeral live tail. One task reads it and hands every reply to the
//! request waiting for its correlation id; a reply nobody waits for any more (its request timed
//! out) is dropped. [`Client::close`] deletes the inbox topic. A process that dies without
//! closing leaves an empty memory topic behind, which `rapidmq topic delete` removes.
//!
//! Requests and replies are sent by producers the client keeps per topic (linger 0: a request
//! is latency-bound), at most [`MAX_PRODUCERS`] of them; the oldest is closed to make room.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use parking_lot::Mutex;
use rapidmq_proto::{CORRELATION_ID_HEADER, REPLY_TO_HEADER};
use tokio::sync::oneshot;

use crate::client::Client;
use crate::config::{ConsumerConfig, ProducerConfig};
use crate::error::{Error, Result};
use crate::producer::Producer;
use crate::types::{Delivery, Message, ReceivedMessage, Storage, TopicConfig};

/// The prefix of every inbox topic's name.
const INBOX_PREFIX: &str = "_inbox.";

/// Producers a client keeps for requests and replies before it closes the oldest.
const MAX_PRODUCERS: usize = 64;

/// How long an inbox keeps a reply no request is reading (it is a live tail, so only replies
/// that arrive while a request waits are ever read).
const INBOX_RETENTION_MS: u64 = 60_000;

/// A client's request/reply state: its inbox, once made, and its producers.
#[derive(Default)]
pub(crate) struct Requests {
    /// The inbox, made by the first request; replaced when its reader has ended.
    inbox: tokio::sync::Mutex<Option<Arc<Inbox>>>,
    /// The inbox topic to delete at close, once one has been made.
    inbox_topic: Mutex<Option<String>>,
    producers: Mutex<Producers>,
}

#[derive(Default)]
struct Producers {
    by_topic: HashMap<String, Producer>,
    /// Topics in the order their producers were made, oldest first.
    order: VecDeque<String>,
}

/// One inbox: its topic and the requests waiting on it by correlation id.
struct Inbox {
    topic: String,
    waiting: Mutex<HashMap<String, oneshot::Sender<ReceivedMessage>>>,
    /// Cleared when the reader ends (the client closed, or the topic was deleted).
    reading: AtomicBool,
}

/// Removes a request from its inbox's waiting list however the request ends.
struct Waiting<'a> {
    inbox: &'a Inbox,
    id: String,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.inbox.waiting.lock().remove(&self.id);
    }
}

impl Client {
    /// Sends `message` to `topic` as a request and returns the first reply, waiting at most
    /// `timeout` for the send and the reply together.
    ///
    /// The message is sent with two headers, replacing any of the same names it carries:
    /// `reply-to` (this client's inbox topic) and `correlation-id` (unique per request). A
    /// responder answers with [`Client::reply`]. The first request makes the inbox (a topic
    /// create and a subscribe), and the first to a topic its producer, before `timeout` starts;
    /// each of those calls is bounded by the client's request timeout. A request queued for
    /// sending (at once, unless the producer's buffer is full) is sent even when no reply comes
    /// in time.
    ///
    /// Errors: [`Error::InvalidArgument`] for a zero timeout, `TOPIC_NOT_FOUND`,
    /// [`Error::Timeout`] when no reply came in time, and whatever the send failed with.
    pub async fn request(
        &self,
        topic: impl Into<String>,
        message: Message,
        timeout: Duration,
    ) -> Result<ReceivedMessage> {
        let topic = topic.into();
        if timeout.is_zero() {
            return Err(Error::invalid("a request needs a timeout above zero"));
        }
        self.check_open()?;
        let client = self.clone();
        // Abortable: a caller that gives up (a cancelled coroutine, a Go context) stops waiting
        // for the reply here too.
        self.runtime()
            .run_abortable(async move {
                let inbox = client.inbox().await?;
                let producer = client.producer_for(&topic).await?;
                let exchange = inbox.exchange(&producer, message);
                tokio::time::timeout(timeout, exchange)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::Timeout {
                            message: format!(
                                "no reply to a request on `{topic}` within {timeout:?}"
                            ),
                        })
                    })
            })
            .await?
    }

    /// Sends `reply` to the requester of the message whose headers are `request_headers`: to
    /// its `reply-to` topic, with its `correlation-id`. Returns once the broker stored it.
    ///
    /// Errors: [`Error::InvalidArgument`] when the headers lack either (the message was not
    /// sent with [`Client::request`]); `TOPIC_NOT_FOUND` when the requester's inbox is gone
    /// (it closed).
    pub async fn reply(
        &self,
        request_headers: &[(String, Bytes)],
        reply: Message,
    ) -> Result<Delivery> {
        let header = |name: &str| {
            request_headers
                .iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let (Some(reply_to), Some(correlation)) =
            (header(REPLY_TO_HEADER), header(CORRELATION_ID_HEADER))
        else {
            return Err(Error::invalid(format!(
                "a reply needs the request's `{REPLY_TO_HEADER}` and `{CORRELATION_ID_HEADER}` \
                 headers; this message was not sent as a request"
            )));
        };
        let reply_to = String::from_utf8(reply_to.to_vec())
            .map_err(|_| Error::invalid(format!("the `{REPLY_TO_HEADER}` header is not UTF-8")))?;
        self.check_open()?;
        let reply = with_header(reply, CORRELATION_ID_HEADER, correlation);
        let client = self.clone();
        self.runtime()
            .run(async move { client.send_one(&reply_to, reply).await })
            .await?
    }

    /// Sends one message through this client's producer for `topic` and waits for its ack.
    async fn send_one(&self, topic: &str, message: Message) -> Result<Delivery> {
        let producer = self.producer_for(topic).await?;
        producer.send(message).await?.await
    }

    /// The producer this client keeps for `topic`, made on first use.
    async fn producer_for(&self, topic: &str) -> Result<Producer> {
        let requests = self.requests();
        if let Some(producer) = requests.producers.lock().by_topic.get(topic) {
            return Ok(producer.clone());
        }
        let config = ProducerConfig {
            linger: Duration::ZERO,
            ..ProducerConfig::new(topic)
        };
        let made = self.create_producer(config).await?;
        let evicted = {
            let mut producers = requests.producers.lock();
            if let Some(existing) = producers.by_topic.get(topic) {
                // Another request made one meanwhile: keep that one.
                let existing = existing.clone();
                drop(producers);
                self.runtime().spawn(async move { made.close().await });
                return Ok(existing);
            }
            producers.by_topic.insert(topic.to_string(), made.clone());
            producers.order.push_back(topic.to_string());
            let mut evicted = Vec::new();
            while producers.order.len() > MAX_PRODUCERS {
                if let Some(oldest) = producers.order.pop_front() {
                    evicted.extend(producers.by_topic.remove(&oldest));
                }
            }
            evicted
        };
        for producer in evicted {
            self.runtime().spawn(async move { producer.close().await });
        }
        Ok(made)
    }

    /// This client's inbox, made (topic and live tail) when there is none or its reader ended.
    async fn inbox(&self) -> Result<Arc<Inbox>> {
        let mut slot = self.requests().inbox.lock().await;
        if let Some(inbox) = &*slot
            && inbox.reading.load(Ordering::SeqCst)
        {
            return Ok(inbox.clone());
        }
        // An inbox whose reader ended (its topic deleted under it): drop what is left of it.
        self.delete_inbox().await;
        let topic = format!("{INBOX_PREFIX}{:032x}", rand::random::<u128>());
        let config = TopicConfig {
            partitions: 1,
            retention_ms: Some(INBOX_RETENTION_MS),
            storage: Storage::Memory,
            replication_factor: Some(1),
            ..TopicConfig::default()
        };
        self.admin().create_topic(&topic, config).await?;
        *self.requests().inbox_topic.lock() = Some(topic.clone());
        let consumer = match self.subscribe(ConsumerConfig::new(&topic, "")).await {
            Ok(consumer) => consumer,
            Err(err) => {
                self.delete_inbox().await;
                return Err(err);
            }
        };
        let inbox = Arc::new(Inbox {
            topic,
            waiting: Mutex::new(HashMap::new()),
            reading: AtomicBool::new(true),
        });
        let reader = inbox.clone();
        self.runtime().spawn(async move {
            let mut replies = consumer;
            while let Some(next) = replies.next().await {
                match next {
                    Ok(reply) => reader.deliver(reply),
                    Err(err) => tracing::debug!(cause = %err, "the inbox reader ended"),
                }
            }
            reader.reading.store(false, Ordering::SeqCst);
            // Requests still waiting fail now rather than at their timeout.
            reader.waiting.lock().clear();
        });
        *slot = Some(inbox.clone());
        Ok(inbox)
    }

    /// Deletes the inbox topic, if one was made; at close. A failure is logged only: the topic
    /// is empty memory by then, and an operator can delete it.
    pub(crate) async fn delete_inbox(&self) {
        let Some(topic) = self.requests().inbox_topic.lock().take() else {
            return;
        };
        if let Err(err) = self.admin().delete_topic(&topic).await {
            tracing::warn!(topic, cause = %err, "deleting the request inbox failed");
        }
    }
}

impl Inbox {
    /// Sends the request through `producer` and waits for its reply here (runs on the core
    /// runtime).
    async fn exchange(&self, producer: &Producer, message: Message) -> Result<ReceivedMessage> {
        let id = format!("{:032x}", rand::random::<u128>());
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().insert(id.clone(), tx);
        let _waiting = Waiting {
            inbox: self,
            id: id.clone(),
        };
        let message = with_header(message, REPLY_TO_HEADER, Bytes::from(self.topic.clone()));
        let message = with_header(message, CORRELATION_ID_HEADER, Bytes::from(id));
        producer.send(message).await?.await?;
        rx.await.map_err(|_| {
            Error::unavailable("the inbox stopped reading before the reply came; retry the request")
        })
    }

    /// Hands `reply` to the request waiting for its correlation id, if one still is.
    fn deliver(&self, reply: ReceivedMessage) {
        let id = reply
            .headers
            .iter()
            .rev()
            .find(|(key, _)| key == CORRELATION_ID_HEADER)
            .and_then(|(_, value)| std::str::from_utf8(value).ok().map(str::to_string));
        let waiter = id.and_then(|id| self.waiting.lock().remove(&id));
        match waiter {
            Some(waiter) => {
                let _ = waiter.send(reply);
            }
            None => tracing::debug!(
                offset = reply.offset,
                "dropping a reply no request waits for (late, or a duplicate)"
            ),
        }
    }
}

/// `message` with `name` set to `value`: earlier headers of that name are removed, the new one
/// goes last.
fn with_header(mut message: Message, name: &str, value: Bytes) -> Message {
    message.headers.retain(|(key, _)| key != name);
    message.headers.push((name.to_string(), value));
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_set_for_a_request_replaces_any_of_its_name() {
        let message = Message::new("q")
            .with_header("a", "1")
            .with_header(CORRELATION_ID_HEADER, "old")
            .with_header("b", "2");
        let message = with_header(message, CORRELATION_ID_HEADER, Bytes::from_static(b"new"));
        let names: Vec<_> = message
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_ref()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a", &b"1"[..]),
                ("b", &b"2"[..]),
                (CORRELATION_ID_HEADER, &b"new"[..])
            ]
        );
    }
}
