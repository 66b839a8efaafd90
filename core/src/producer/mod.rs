//! The producer: per-partition batching, idempotence and retries.
//!
//! Layout:
//! - [`accumulator`](self) (`accumulator.rs`): the pure batching logic: which partition, which
//!   batch, when a batch is ready.
//! - `owner.rs`: one owner task per producer. It holds the accumulator, the per-partition
//!   idempotence state and the in-flight windows. `send` appends to the shared intake (a `Vec`
//!   under a short lock; the owner is woken only when the intake was empty) and the owner moves
//!   the whole intake into its batches at once; `flush`/`close` are commands over a channel.
//!   Everything else the owner holds alone.
//! - `receipt.rs`: where outcomes go: send receipts as slots of shared blocks, completed by the
//!   owner, instead of a channel per message; or a binding's completion queue.
//! - `completions.rs`: [`Completions`], the queue the bindings send to ([`Producer::send_to`]),
//!   so outcomes reach them a batch at a time, without a task or a callback per message.
//! - `stats.rs`: counters ([`ProducerStats`]).
//! - `flight.rs`: the in-flight window of one partition.
//! - `stream.rs`: the `PublishStream` task of the current connection.
//! - `placement.rs`: per-message receipts from an answer (appended, scheduled, deduplicated).
//!
//! **Wire choice: one ordered `PublishStream` per connection.** The broker queues the requests of
//! a stream on their partitions in arrival order and answers each by its correlation id, so a
//! partition can have up to `max_in_flight_per_partition` batches in flight (default
//! [`crate::defaults::MAX_IN_FLIGHT_PER_PARTITION`]) and still have them appended in order. One
//! fsync round trip then carries several batches of a partition instead of one.
//! `max_in_flight_requests` bounds the batches in flight across partitions. A request with no
//! answer within the request timeout fails the stream (retriably); a broken stream fails what
//! was outstanding on it, and the next send opens a new one on the (re)connected channel.
//!
//! **Ordering and idempotence under retries.** Each partition has a random non-zero producer id
//! and a sequence that starts at 0; a batch takes the next sequences when it is first sent. Its
//! window completes batches strictly in order. When a batch fails, the partition sends nothing
//! new until every batch of it on the wire has answered; then (see `Owner::recover`):
//! - a retriable failure resends that batch and every later unanswered one, in order, with the
//!   same sequences, after an exponential backoff with full jitter within the retry budget; the
//!   broker answers batches it already stored as duplicates with their original offsets;
//! - a refusal (e.g. `MESSAGE_TOO_LARGE`) fails only that batch: later batches, refused by the
//!   broker as out of sequence, are resent at once with sequences shifted down;
//! - a batch that fails for good while the broker may hold it (budget spent,
//!   `OUT_OF_ORDER_SEQUENCE`, an undecodable answer) gives the partition a fresh producer id, so
//!   later batches can never be mistaken for it.
//!
//! **Receipts.** The broker may append fewer messages than a batch held: delayed messages go to
//! its schedule and repeated `msg-id`s are dropped on topics with a dedup window. Each receipt
//! says which ([`crate::SendStatus`]); only appended messages have an offset.

mod accumulator;
mod completions;
mod flight;
mod owner;
mod placement;
mod receipt;
mod stats;
mod stream;

use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

use self::accumulator::Pending;
pub use self::completions::{Completion, Completions};
use self::owner::{Command, Owner};
pub use self::receipt::SendReceipt;
use self::receipt::{Reply, Slots};
use self::stats::Counters;
pub use self::stats::ProducerStats;
use futures::future::BoxFuture;

use crate::client::{Client, Closable, now_ms};
use crate::config::ProducerConfig;
use crate::error::{Error, Result};
use crate::types::Message;

/// What [`Producer::try_send_to`] did with a message.
#[derive(Debug)]
pub enum TrySend {
    /// Queued: its outcome will come to the completion queue.
    Queued,
    /// The producer's buffer was full, so nothing was queued: the message, handed back.
    Full(Message),
}

/// Publishes messages to one topic. Cheap to clone; clones share the batches.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<ProducerInner>,
}

struct ProducerInner {
    topic: String,
    partitions: u32,
    intake: Arc<Intake>,
    commands: mpsc::UnboundedSender<Command>,
    buffer: Arc<Semaphore>,
    counters: Arc<Counters>,
    faults: Arc<Faults>,
    client: Client,
}

/// Messages sent and not yet taken by the owner task. `send` appends under a short lock and
/// wakes the owner only when the intake was empty; the owner takes everything at once. This
/// replaces a channel message (and an owner wakeup) per send.
pub(crate) struct Intake {
    pub(crate) state: Mutex<IntakeState>,
    /// Notified (`notify_one`, so a wakeup is never lost) when messages arrive in an empty intake.
    pub(crate) notify: Notify,
}

#[derive(Default)]
pub(crate) struct IntakeState {
    pub(crate) messages: Vec<Pending>,
    /// Set by the owner when it stops taking messages; later sends fail.
    pub(crate) closed: bool,
    slots: Slots,
}

/// Fault injection for tests of the retry path. Not part of the stable API.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Faults {
    /// Discard this many successful publish responses as if the connection broke before the ack
    /// arrived; the request is then retried like any lost ack.
    pub lose_acks: AtomicU32,
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
        // Where the partitions are led, so that the first batches go to their leaders.
        if client.routes().needs_metadata(&config.topic) {
            let (learner, topic) = (client.clone(), config.topic.clone());
            client
                .runtime()
                .run(async move { learner.refresh_routes(&topic).await })
                .await?;
        }
        let (commands, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let faults = Arc::new(Faults::default());
        let intake = Arc::new(Intake {
            state: Mutex::new(IntakeState::default()),
            notify: Notify::new(),
        });
        let owner = Owner::new(
            client.clone(),
            config.clone(),
            partitions,
            intake.clone(),
            counters.clone(),
            faults.clone(),
        );
        client.runtime().spawn(owner.run(rx));
        let producer = Producer {
            inner: Arc::new(ProducerInner {
                topic: config.topic,
                partitions,
                intake,
                commands,
                buffer: Arc::new(Semaphore::new(config.max_buffered_messages)),
                counters,
                faults,
                client: client.clone(),
            }),
        };
        let weak: std::sync::Weak<dyn Closable> = Arc::downgrade(&producer.inner) as _;
        if let Err(err) = client.register(weak) {
            producer.close().await?;
            return Err(err);
        }
        Ok(producer)
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
    /// the partition and either the offset, or [`crate::SendStatus::Scheduled`] /
    /// [`crate::SendStatus::Deduplicated`]) or has failed for good (with the error's code, e.g.
    /// `INVALID_PRIORITY` or `DELIVER_AT_OUT_OF_RANGE` for the whole batch).
    ///
    /// Errors here: [`Error::Closed`] after [`Producer::close`]; [`Error::InvalidArgument`] for a
    /// `timestamp_ms` 2^62 ms or more from 1970, which no batch could carry next to others.
    pub async fn send(&self, message: Message) -> Result<SendReceipt> {
        crate::convert::check_timestamp(&message)?;
        let permit = self.room().await?;
        self.enqueue(message, permit)
    }

    /// Room for one more message in the buffer, waiting while it is full.
    async fn room(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.inner
            .buffer
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::closed("the producer is closed"))
    }

    /// Queues `messages` in order, as [`Producer::send`] would one after another, and returns
    /// their receipts in the same order. Every message is checked before any is queued: an
    /// invalid one fails the call with [`Error::InvalidArgument`] naming its index, and nothing
    /// of the batch is queued. Waits only while the producer's buffer is full. When the producer
    /// closes partway ([`Error::Closed`]), the messages queued before that are still sent (close
    /// flushes them); their receipts go with the failed call, as when the call is dropped.
    ///
    /// The bindings' batch sends (the C ABI's `rapidmq_producer_send_batch_to`, UniFFI's
    /// `send_batch_tracked`, Python's `send_batch`) follow the same rule through
    /// [`Producer::check_batch`] (conformance C30).
    pub async fn send_batch(
        &self,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<Vec<SendReceipt>> {
        let messages: Vec<Message> = messages.into_iter().collect();
        Producer::check_batch(&messages)?;
        let mut receipts = Vec::with_capacity(messages.len());
        for message in messages {
            let permit = self.room().await?;
            receipts.push(self.enqueue(message, permit)?);
        }
        Ok(receipts)
    }

    /// What [`Producer::send_batch`] checks before it queues anything, for bindings that queue a
    /// batch their own way: the first invalid message fails with [`Error::InvalidArgument`]
    /// naming its index.
    pub fn check_batch(messages: &[Message]) -> Result<()> {
        crate::convert::check_batch(messages)
    }

    /// Like [`Producer::send`], but fails with `RESOURCE_EXHAUSTED` instead of waiting when the
    /// buffer is full. Never blocks; for bindings that must not wait.
    pub fn try_send(&self, message: Message) -> Result<SendReceipt> {
        crate::convert::check_timestamp(&message)?;
        let permit = self.try_room()?.ok_or_else(|| Error::Broker {
            code: rapidmq_proto::ErrorCode::ResourceExhausted,
            message: "the producer buffer is full".into(),
            retriable: true,
            retry_after: None,
            quota: None,
        })?;
        self.enqueue(message, permit)
    }

    /// Like [`Producer::send`], but the outcome goes to `completions` under `token` instead of
    /// to a receipt, pushed there with the rest of its batch's outcomes when the batch is
    /// acknowledged. The bindings send this way: they take outcomes many at a time instead of
    /// awaiting a receipt per message. When this fails, no outcome comes.
    pub async fn send_to(
        &self,
        message: Message,
        completions: &Arc<Completions>,
        token: u64,
    ) -> Result<()> {
        crate::convert::check_timestamp(&message)?;
        let permit = self.room().await?;
        self.enqueue_with(message, permit, |_| {
            (Reply::to_queue(completions, token), ())
        })
    }

    /// [`Producer::send_to`] without the wait: when the producer already buffers
    /// `max_buffered_messages` it queues nothing and hands the message back
    /// ([`TrySend::Full`]). Never blocks.
    pub fn try_send_to(
        &self,
        message: Message,
        completions: &Arc<Completions>,
        token: u64,
    ) -> Result<TrySend> {
        crate::convert::check_timestamp(&message)?;
        let Some(permit) = self.try_room()? else {
            return Ok(TrySend::Full(message));
        };
        self.enqueue_with(message, permit, |_| {
            (Reply::to_queue(completions, token), ())
        })?;
        Ok(TrySend::Queued)
    }

    /// Room for one more message in the buffer if there is some now (`None` when it is full).
    fn try_room(&self) -> Result<Option<tokio::sync::OwnedSemaphorePermit>> {
        match self.inner.buffer.clone().try_acquire_owned() {
            Ok(permit) => Ok(Some(permit)),
            Err(tokio::sync::TryAcquireError::NoPermits) => Ok(None),
            Err(tokio::sync::TryAcquireError::Closed) => {
                Err(Error::closed("the producer is closed"))
            }
        }
    }

    fn enqueue(
        &self,
        message: Message,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<SendReceipt> {
        self.enqueue_with(message, permit, Slots::next)
    }

    /// Queues `message` with the reply that `reply` makes, under the intake lock once the
    /// producer is known to be open (so a refused send leaves no reply behind to fail), and
    /// returns what `reply` returns beside it.
    fn enqueue_with<R>(
        &self,
        mut message: Message,
        permit: tokio::sync::OwnedSemaphorePermit,
        reply: impl FnOnce(&mut Slots) -> (Reply, R),
    ) -> Result<R> {
        let timestamp_ms = message.timestamp_ms.unwrap_or_else(now_ms);
        crate::trace::propagate(&mut message);
        let mut pending = Pending::new(message, timestamp_ms, None, Some(permit));
        let mut intake = self.inner.intake.state.lock();
        if intake.closed {
            return Err(Error::closed("the producer is closed"));
        }
        let (reply, out) = reply(&mut intake.slots);
        pending.reply = Some(reply);
        let was_empty = intake.messages.is_empty();
        intake.messages.push(pending);
        drop(intake);
        if was_empty {
            self.inner.intake.notify.notify_one();
        }
        Counters::add(&self.inner.counters.messages_sent, 1);
        Ok(out)
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

impl Closable for ProducerInner {
    fn close(self: Arc<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move { Producer { inner: self }.close().await })
    }

    fn is_producer(&self) -> bool {
        true
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
