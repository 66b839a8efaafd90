//! Consumers: stream mode ([`Consumer`]) and queue mode ([`QueueConsumer`]), both with prefetch
//! credits, `poll`, batched acknowledgements and reconnects.
//!
//! Layout:
//! - `session.rs`: one session task per consumer. It owns the bidi `Consume` stream: subscribes,
//!   turns `DeliveryBatch`es into messages in the shared buffer, forwards credits, sends commits
//!   on an interval and on close, and reconnects (with backoff, until closed) when the stream
//!   breaks, for example across a broker restart. The broker then resumes every partition from
//!   its committed offset.
//! - `acks.rs`: per-partition ack tracking that turns acks into commit positions.
//! - `queue.rs` and `queue_session.rs`: the queue-mode surface (deliveries with attempt counts
//!   and receipts; `ack`, `nack`, `extend_deadline`) and its session tasks, built the same way
//!   but with one session per cluster node (a node delivers the partitions it leads), all
//!   feeding one buffer; one session on the seed connection on a single node.
//! - this file: the stream-mode pull-based surface ([`Consumer::poll`], [`Consumer::ack`], ...), which only
//!   touches the shared buffer under a short lock and sends commands to the session.
//!
//! **Flow control invariant.** The broker never sends more messages than the credits granted.
//! The session grants `prefetch` credits when it subscribes and `poll` grants back exactly as
//! many as it takes out of the buffer, so buffered + granted-but-undelivered never exceeds
//! `prefetch`. Messages dropped from the buffer (revoked partitions) are granted back too. After a
//! reconnect the buffer starts empty and credits from polls of the old session are discarded.
//! Stream mode also grants bytes (`prefetch_bytes`): the broker charges each delivery the length
//! of its batch bytes and sends one only while byte credits are left, and the consumer grants a
//! delivery's charge back once `poll` has taken (or a revoke dropped) its last message, so the
//! buffer holds at most `prefetch_bytes` plus one delivery.
//! A queue consumer keeps the invariant per session: each has its own window of `prefetch`,
//! and a poll grants each session back what it took of that session's deliveries.

mod acks;
mod handler;
mod next;
mod queue;
mod queue_session;
mod session;

pub use self::handler::{RunConfig, retry_delay};
pub use self::queue::{QueueConsumer, QueueConsumerStats, QueueMessage, Receipt};

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, oneshot};

use self::acks::AckTracker;
use self::session::{Command, Session};
use futures::future::BoxFuture;

use crate::client::{Client, Closable};
use crate::config::ConsumerConfig;
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::types::ReceivedMessage;

/// A consumer's counters since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Messages received from the broker.
    pub received: u64,
    /// Messages returned by `poll`.
    pub polled: u64,
    /// Messages buffered ahead of `poll` now.
    pub buffered: u64,
    /// The most messages ever buffered ahead of `poll`; never above `prefetch`.
    pub max_buffered: u64,
    /// Commit messages sent.
    pub commits: u64,
    /// Sessions re-established after the stream broke.
    pub reconnects: u64,
    /// Buffered messages dropped because their partition was revoked.
    pub dropped_on_revoke: u64,
    /// The latest assignment generation.
    pub generation: u64,
}

/// State shared by the surface and the session task, under a short lock (never held across an
/// await).
pub(crate) struct State {
    pub(crate) buffer: VecDeque<ReceivedMessage>,
    /// The byte charge of each delivery in `buffer`, in the buffer's order.
    pub(crate) charges: VecDeque<Charge>,
    pub(crate) acks: AckTracker,
    /// Incremented each time a new stream starts; credits of older sessions are discarded.
    pub(crate) session: u64,
    pub(crate) assignment: Vec<u32>,
    pub(crate) fatal: Option<Error>,
    pub(crate) closed: bool,
    pub(crate) stats: ConsumerStats,
}

/// What the broker charged one delivery, and how many of its messages are still buffered.
/// Messages put back ([`Consumer::put_back`]) get a charge of their own with no bytes and
/// `credited` set: their credits went back to the broker when they were first taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Charge {
    pub(crate) partition: u32,
    pub(crate) left: u32,
    pub(crate) bytes: u64,
    pub(crate) credited: bool,
}

/// What to grant the broker back: messages and bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) messages: u32,
    pub(crate) bytes: u64,
}

impl State {
    /// What to grant back after `taken` messages left the front of the buffer: a message credit
    /// for each (but those put back, credited before) and the charges of the deliveries whose
    /// last message was among them.
    fn take_charges(&mut self, mut taken: usize) -> Grant {
        let mut grant = Grant::default();
        while taken > 0
            && let Some(front) = self.charges.front_mut()
        {
            let n = taken.min(front.left as usize);
            front.left -= n as u32;
            taken -= n;
            if !front.credited {
                grant.messages += n as u32;
            }
            if front.left == 0 {
                grant.bytes += front.bytes;
                self.charges.pop_front();
            }
        }
        grant
    }

    /// What to grant back for the buffered messages of partitions `keep` no longer holds (the
    /// caller drops the messages themselves).
    pub(crate) fn drop_charges(&mut self, keep: impl Fn(u32) -> bool) -> Grant {
        let mut grant = Grant::default();
        self.charges.retain(|c| {
            let kept = keep(c.partition);
            if !kept {
                grant.bytes += c.bytes;
                if !c.credited {
                    grant.messages += c.left;
                }
            }
            kept
        });
        grant
    }

    /// The bytes charged for what is buffered.
    pub(crate) fn buffered_bytes(&self) -> u64 {
        self.charges.iter().map(|c| c.bytes).sum()
    }
}

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) notify: Notify,
}

/// A stream-mode consumer. Cheap to clone; clones share the buffer.
///
/// It is also a [`futures::Stream`] of its messages, one at a time, waiting as long as it takes;
/// the stream ends once the consumer is closed, and yields the error that ends a subscription
/// once before it ends. It takes a message from the buffer only as it yields it (with
/// auto-commit, the message counts as acknowledged then), so a stream dropped mid-way leaves the
/// rest buffered. Ack what it yields as after [`Consumer::poll`] (or let auto-commit do it).
///
/// ```no_run
/// # async fn demo(mut consumer: rapidmq_core::Consumer) -> rapidmq_core::Result<()> {
/// use futures::StreamExt;
/// while let Some(message) = consumer.next().await {
///     let message = message?;
///     consumer.ack(&message)?;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Consumer {
    inner: Arc<ConsumerInner>,
    next: next::Next<ReceivedMessage>,
}

impl futures::Stream for Consumer {
    type Item = Result<ReceivedMessage>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let consumer = self.clone(); // a clone starts without the take in flight
        self.next.poll_next(cx, move || {
            let consumer = consumer.clone();
            Box::pin(async move { consumer.poll(1, Duration::MAX).await })
        })
    }
}

struct ConsumerInner {
    client: Client,
    config: ConsumerConfig,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("topic", &self.inner.config.topic)
            .field("subscription", &self.inner.config.subscription)
            .finish()
    }
}

impl Consumer {
    pub(crate) async fn subscribe(client: Client, config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buffer: VecDeque::new(),
                charges: VecDeque::new(),
                acks: AckTracker::default(),
                session: 0,
                assignment: Vec::new(),
                fatal: None,
                closed: false,
                stats: ConsumerStats::default(),
            }),
            notify: Notify::new(),
        });
        let (commands, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let session = Session::new(client.clone(), config.clone(), shared.clone());
        client.runtime().spawn(session.run(rx, ready_tx));
        ready_rx
            .await
            .map_err(|_| Error::closed("the consumer stopped while subscribing"))??;
        let consumer = Consumer {
            inner: Arc::new(ConsumerInner {
                client: client.clone(),
                config,
                shared,
                commands,
            }),
            next: next::Next::default(),
        };
        let weak: std::sync::Weak<dyn Closable> = Arc::downgrade(&consumer.inner) as _;
        if let Err(err) = client.register(weak) {
            consumer.close().await?;
            return Err(err);
        }
        Ok(consumer)
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.inner.config
    }

    /// Returns up to `max` buffered messages, waiting up to `timeout` for the first one; an empty
    /// vector when none arrived in time. Grants the broker as many credits as messages returned.
    /// With auto-commit on, the returned messages count as acknowledged.
    ///
    /// Cancel-safe: dropping the future before it completes (a timeout, a cancelled task) takes
    /// no message out of the buffer.
    ///
    /// Errors: the fatal error that ended the subscription (e.g. `TOPIC_NOT_FOUND` after the topic
    /// was deleted), [`Error::Closed`] after [`Consumer::close`].
    pub async fn poll(&self, max: usize, timeout: Duration) -> Result<Vec<ReceivedMessage>> {
        if max == 0 {
            return Err(Error::invalid("poll needs max >= 1"));
        }
        let inner = &self.inner;
        poll_with(inner.client.runtime(), &inner.shared, timeout, || {
            inner.try_take(max, inner.config.auto_commit)
        })
        .await
    }

    /// [`Consumer::poll`] for a caller that hands the messages on one at a time (the Go SDK's
    /// iterator): they do not count as acknowledged even with auto-commit, so the caller
    /// acknowledges each as it hands it on ([`Consumer::ack_offsets`]) and puts back those it
    /// did not ([`Consumer::put_back`]).
    pub async fn poll_unacked(
        &self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>> {
        if max == 0 {
            return Err(Error::invalid("poll needs max >= 1"));
        }
        let inner = &self.inner;
        poll_with(inner.client.runtime(), &inner.shared, timeout, || {
            inner.try_take(max, false)
        })
        .await
    }

    /// Puts messages a [`Consumer::poll_unacked`] took, and the caller did not hand on, back in
    /// front of the buffer in their order, for the next poll (the Go SDK's iterator, left
    /// early, puts back the rest of its batch). Their credits are not granted again.
    ///
    /// Only messages still owed are put back: those of a partition this member still owns,
    /// polled in this session and not acknowledged. The others are dropped; the broker delivers
    /// them again where they need it (a new session or owner resumes from the committed offset).
    pub fn put_back(&self, messages: Vec<ReceivedMessage>) {
        let tracked = !self.inner.config.subscription.is_empty();
        let mut state = self.inner.shared.state.lock();
        if state.closed {
            return;
        }
        let owed: Vec<ReceivedMessage> = messages
            .into_iter()
            .filter(|m| {
                state.assignment.contains(&m.partition)
                    && (!tracked || state.acks.is_pending(m.partition, m.offset))
            })
            .collect();
        if owed.is_empty() {
            return;
        }
        state.stats.polled -= (owed.len() as u64).min(state.stats.polled);
        // A charge per run of one partition, pushed in front of the buffer's, as the messages.
        let mut runs: Vec<Charge> = Vec::new();
        for m in &owed {
            match runs.last_mut() {
                Some(run) if run.partition == m.partition => run.left += 1,
                _ => runs.push(Charge {
                    partition: m.partition,
                    left: 1,
                    bytes: 0,
                    credited: true,
                }),
            }
        }
        for run in runs.into_iter().rev() {
            state.charges.push_front(run);
        }
        for m in owed.into_iter().rev() {
            state.buffer.push_front(m);
        }
        drop(state);
        self.inner.shared.notify.notify_waiters();
    }

    /// Acknowledges a polled message. Its partition's commit position moves past it once every
    /// earlier polled message of the partition is acknowledged too; commits go out on the commit
    /// interval, on [`Consumer::commit`] and on close. Acks of messages from a revoked partition
    /// or a previous session are ignored (those messages are redelivered).
    pub fn ack(&self, message: &ReceivedMessage) -> Result<()> {
        self.ack_offset(message.partition, message.offset)
    }

    /// Acknowledges the message at `offset` on `partition`; see [`Consumer::ack`].
    pub fn ack_offset(&self, partition: u32, offset: u64) -> Result<()> {
        let mut state = self.inner.shared.state.lock();
        if state.closed {
            return Err(Error::closed("the consumer is closed"));
        }
        state.acks.ack(partition, offset);
        Ok(())
    }

    /// Acknowledges polled messages by partition and offset, under one lock; see
    /// [`Consumer::ack`].
    pub fn ack_offsets(&self, offsets: impl IntoIterator<Item = (u32, u64)>) -> Result<()> {
        let mut state = self.inner.shared.state.lock();
        if state.closed {
            return Err(Error::closed("the consumer is closed"));
        }
        for (partition, offset) in offsets {
            state.acks.ack(partition, offset);
        }
        Ok(())
    }

    /// Negative acknowledgement with redelivery after `delay`: a queue-mode feature (see
    /// [`QueueConsumer::nack`]). Stream mode has no per-message redelivery; this returns
    /// [`Error::Unsupported`].
    pub fn nack(&self, _message: &ReceivedMessage, _delay: Duration) -> Result<()> {
        Err(Error::Unsupported {
            message: "nack is not supported in stream mode; subscribe in queue mode".into(),
        })
    }

    /// Sends the acknowledged positions to the broker now.
    pub async fn commit(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Commit(tx))
            .map_err(|_| Error::closed("the consumer is closed"))?;
        rx.await
            .map_err(|_| Error::closed("the consumer stopped during commit"))?
    }

    /// Commits what was acknowledged and ends the subscription (this member leaves the group).
    pub async fn close(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        if self.inner.commands.send(Command::Close(tx)).is_err() {
            return Ok(());
        }
        // The session may end on its own (a fatal error such as a deleted topic) with this
        // close still queued: the consumer is closed either way, as when it had ended before.
        let _ = rx.await;
        Ok(())
    }

    /// The partitions this member owns now.
    pub fn assignment(&self) -> Vec<u32> {
        self.inner.shared.state.lock().assignment.clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> ConsumerStats {
        let state = self.inner.shared.state.lock();
        ConsumerStats {
            buffered: state.buffer.len() as u64,
            ..state.stats
        }
    }
}

impl Closable for ConsumerInner {
    fn close(self: Arc<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            Consumer {
                inner: self,
                next: Default::default(),
            }
            .close()
            .await
        })
    }

    fn is_producer(&self) -> bool {
        false
    }
}

impl ConsumerInner {
    /// Takes up to `max` buffered messages, or the error that ended the consumer; `None` when
    /// there is nothing to return yet. Synchronous, so it cannot be cancelled halfway.
    fn try_take(&self, max: usize, acked: bool) -> Option<Result<Vec<ReceivedMessage>>> {
        let mut state = self.shared.state.lock();
        if state.buffer.is_empty() {
            if let Some(err) = &state.fatal {
                return Some(Err(err.clone()));
            }
            if state.closed {
                return Some(Err(Error::closed("the consumer is closed")));
            }
            return None;
        }
        let n = max.min(state.buffer.len());
        let messages: Vec<_> = state.buffer.drain(..n).collect();
        if !self.config.subscription.is_empty() {
            for m in &messages {
                if acked {
                    state.acks.polled_acked(m.partition, m.offset);
                } else {
                    state.acks.polled(m.partition, m.offset);
                }
            }
        }
        state.stats.polled += n as u64;
        let grant = state.take_charges(n);
        let session = state.session;
        drop(state);
        if grant != Grant::default() {
            let _ = self.commands.send(Command::Credit {
                session,
                messages: grant.messages,
                bytes: grant.bytes,
            });
        }
        Some(Ok(messages))
    }
}

impl Buffered for Shared {
    fn notify(&self) -> &Notify {
        &self.notify
    }

    fn poll_ready(&self) -> bool {
        let state = self.state.lock();
        !state.buffer.is_empty() || state.closed || state.fatal.is_some()
    }
}

/// The commit and ack timer of a session: first due one `period` after the session starts, not
/// at once as `tokio::time::interval`'s first tick is. An immediate tick that a busy runtime
/// served late sent acks gathered meanwhile below the ack batch, ahead of the interval.
pub(crate) fn every(period: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// A consumer buffer a poll can wait on.
pub(crate) trait Buffered: Send + Sync + 'static {
    /// Notified (`notify_waiters`) when messages arrive or the consumer ends.
    fn notify(&self) -> &Notify;
    /// Whether a poll would return now: messages are buffered or the consumer ended.
    fn poll_ready(&self) -> bool;
}

/// The cancel-safe shape of `poll`: the caller takes messages only synchronously (`try_take`),
/// and the only await is [`wait_ready`], which takes nothing. A caller that gives up (timeout,
/// cancelled coroutine, dropped future) therefore leaves every message in the buffer for the
/// next poll.
pub(crate) async fn poll_with<B: Buffered, T>(
    runtime: &Runtime,
    shared: &Arc<B>,
    timeout: Duration,
    mut try_take: impl FnMut() -> Option<Result<Vec<T>>>,
) -> Result<Vec<T>> {
    let deadline = std::time::Instant::now().checked_add(timeout);
    loop {
        if let Some(result) = try_take() {
            return result;
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Ok(Vec::new());
        }
        wait_ready(runtime, shared.clone(), deadline).await?;
    }
}

/// Waits on the core runtime until `shared` has something for a poll or `deadline` passes
/// (`None`: no deadline). Takes nothing; dropping the future aborts the wait.
async fn wait_ready<B: Buffered>(
    runtime: &Runtime,
    shared: Arc<B>,
    deadline: Option<std::time::Instant>,
) -> Result<()> {
    runtime
        .run_abortable(async move {
            let notified = shared.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shared.poll_ready() {
                return;
            }
            match deadline {
                Some(deadline) => {
                    let remaining = deadline.saturating_duration_since(std::time::Instant::now());
                    let _ = tokio::time::timeout(remaining, notified).await;
                }
                None => notified.await,
            }
        })
        .await
}
