//! The producer: per-partition batching, idempotence and retries.
//!
//! Layout:
//! - [`accumulator`](self) (`accumulator.rs`): the pure batching logic: which partition, which
//!   batch, when a batch is ready.
//! - `owner.rs`: one owner task per producer. It holds the accumulator, the per-partition
//!   idempotence state and the in-flight bookkeeping, receives `send`/`flush`/`close` commands over
//!   a channel and completions from request tasks, and never shares state behind a lock.
//! - `stats.rs`: counters ([`ProducerStats`]).
//!
//! **Wire choice: unary `Publish`, one request task per batch.** HTTP/2 already multiplexes
//! concurrent unary calls over the one connection, so batches for different partitions are
//! pipelined without a stream. Each request gets its own status (with the stable error code in
//! metadata), its own deadline and its own retry loop, and a broken call fails only its own batch.
//! `PublishStream` would save a little header overhead per batch but couples every in-flight batch
//! to one stream's fate and needs correlation bookkeeping; it can replace the request task later
//! without changing anything above it.
//!
//! **Ordering under retries.** A partition has at most one batch in flight, so a retry can never
//! overtake a later batch, and a later batch never reaches the broker before an earlier one.
//! Batches keep filling while their predecessor is in flight, so throughput comes from batch size
//! (up to [`crate::defaults::MAX_BATCH_MESSAGES`]) rather than from pipelining one partition.
//! `max_in_flight_requests` bounds the requests across partitions.
//!
//! **Idempotence.** Each partition has a random non-zero producer id and a sequence that starts
//! at 0; a batch carries the sequence of its first message and the sequence advances by the
//! message count on success. A retry resends the same bytes with the same sequence, so the broker
//! answers a duplicate with the original offsets. A batch that fails for good with a retriable
//! error (the broker may or may not have stored it) or with `OUT_OF_ORDER_SEQUENCE` gives its
//! partition a fresh producer id, so later batches can never be mistaken for it.

mod accumulator;
mod owner;
mod stats;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::task::{Context, Poll};

use tokio::sync::{Semaphore, mpsc, oneshot};

use self::accumulator::Pending;
use self::owner::{Command, Owner};
use self::stats::Counters;
pub use self::stats::ProducerStats;
use crate::client::{Client, now_ms};
use crate::config::ProducerConfig;
use crate::error::{Error, Result};
use crate::types::{Delivery, Message};

/// Publishes messages to one topic. Cheap to clone; clones share the batches.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<ProducerInner>,
}

struct ProducerInner {
    topic: String,
    partitions: u32,
    commands: mpsc::UnboundedSender<Command>,
    buffer: Arc<Semaphore>,
    counters: Arc<Counters>,
    faults: Arc<Faults>,
    client: Client,
}

/// Fault injection for tests of the retry path. Not part of the stable API.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Faults {
    /// Discard this many successful publish responses as if the connection broke before the ack
    /// arrived; the request is then retried like any lost ack.
    pub lose_acks: AtomicU32,
}

/// The eventual result of one `send`: where the message was stored, or why it was not.
///
/// Await it (it is a `Future`), or poll it without blocking with [`SendReceipt::try_result`].
pub struct SendReceipt {
    rx: oneshot::Receiver<Result<Delivery>>,
}

impl SendReceipt {
    /// The result if it is known already; `None` while the batch is pending.
    pub fn try_result(&mut self) -> Option<Result<Delivery>> {
        match self.rx.try_recv() {
            Ok(result) => Some(result),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(Error::closed(
                "the producer stopped before this message completed",
            ))),
        }
    }
}

impl Future for SendReceipt {
    type Output = Result<Delivery>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                Err(Error::closed(
                    "the producer stopped before this message completed",
                ))
            })
        })
    }
}

impl Producer {
    pub(crate) async fn create(client: Client, config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        let topic = client.admin().describe_topic(config.topic.clone()).await?;
        let partitions = u32::try_from(topic.partitions.len())
            .ok()
            .filter(|&n| n > 0)
            .or(Some(topic.config.partitions))
            .filter(|&n| n > 0)
            .ok_or_else(|| Error::protocol("the broker described a topic with no partitions"))?;
        let (commands, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let faults = Arc::new(Faults::default());
        let owner = Owner::new(
            client.clone(),
            config.clone(),
            partitions,
            counters.clone(),
            faults.clone(),
        );
        client.runtime().spawn(owner.run(rx));
        Ok(Producer {
            inner: Arc::new(ProducerInner {
                topic: config.topic,
                partitions,
                commands,
                buffer: Arc::new(Semaphore::new(config.max_buffered_messages)),
                counters,
                faults,
                client,
            }),
        })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// The topic's partition count, as described when the producer was created.
    pub fn partitions(&self) -> u32 {
        self.inner.partitions
    }

    /// Queues `message` for its partition's next batch. Waits only while the producer already
    /// buffers `max_buffered_messages`. The receipt resolves once the batch is acknowledged (with
    /// `(partition, offset)`) or has failed for good (with the error's code).
    ///
    /// Errors here: [`Error::Closed`] after [`Producer::close`].
    pub async fn send(&self, message: Message) -> Result<SendReceipt> {
        let permit = self
            .inner
            .buffer
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::closed("the producer is closed"))?;
        self.enqueue(message, permit)
    }

    /// Like [`Producer::send`], but fails with `RESOURCE_EXHAUSTED` instead of waiting when the
    /// buffer is full. Never blocks; for bindings that must not wait.
    pub fn try_send(&self, message: Message) -> Result<SendReceipt> {
        let permit = self
            .inner
            .buffer
            .clone()
            .try_acquire_owned()
            .map_err(|e| match e {
                tokio::sync::TryAcquireError::Closed => Error::closed("the producer is closed"),
                tokio::sync::TryAcquireError::NoPermits => Error::Broker {
                    code: rapidmq_proto::ErrorCode::ResourceExhausted,
                    message: "the producer buffer is full".into(),
                    retriable: true,
                },
            })?;
        self.enqueue(message, permit)
    }

    fn enqueue(
        &self,
        message: Message,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<SendReceipt> {
        let (tx, rx) = oneshot::channel();
        let timestamp_ms = message.timestamp_ms.unwrap_or_else(now_ms);
        let pending = Pending::new(message, timestamp_ms, Some(tx), Some(permit));
        self.inner
            .commands
            .send(Command::Send(pending))
            .map_err(|_| Error::closed("the producer is closed"))?;
        Counters::add(&self.inner.counters.messages_sent, 1);
        Ok(SendReceipt { rx })
    }

    /// Sends every batch now, without waiting for linger, and waits until every message sent
    /// before this call has completed (acknowledged or failed; see each receipt).
    pub async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Flush(tx))
            .map_err(|_| Error::closed("the producer is closed"))?;
        rx.await
            .map_err(|_| Error::closed("the producer stopped during flush"))
    }

    /// Flushes, then stops the producer. Later sends fail with [`Error::Closed`].
    pub async fn close(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        if self.inner.commands.send(Command::Close(tx)).is_err() {
            return Ok(());
        }
        let result = rx.await;
        self.inner.buffer.close();
        result.map_err(|_| Error::closed("the producer stopped during close"))
    }

    /// The counters so far.
    pub fn stats(&self) -> ProducerStats {
        self.inner.counters.snapshot()
    }

    /// Fault injection for tests. Not part of the stable API.
    #[doc(hidden)]
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The client this producer publishes through.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("topic", &self.inner.topic)
            .field("partitions", &self.inner.partitions)
            .finish()
    }
}
