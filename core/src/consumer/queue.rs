//! The queue-mode consumer surface: `poll` hands out deliveries one by one, each with its attempt
//! count and an opaque [`Receipt`]; `ack`, `nack` and `extend_deadline` name receipts.
//!
//! Acks are batched: they collect in the shared state and the session sends them on the ack
//! interval ([`crate::ConsumerConfig::commit_interval`], the same timer as stream commits), as
//! soon as [`crate::defaults::ACK_BATCH`] are pending, on [`QueueConsumer::flush`] and on close.
//! Nacks and deadline extensions are time-sensitive and go out at once. A receipt from before a
//! reconnect is stale (the broker forgot that delivery and redelivers the message): it is
//! dropped here and counted in [`QueueConsumerStats::stale_receipts`], never sent.
//!
//! Errors the broker reports on the stream about one request (for example `RECEIPT_UNKNOWN` for
//! an ack whose delivery already timed out and went to another consumer) do not end the
//! subscription: they are logged, counted in [`QueueConsumerStats::stream_errors`] and kept for
//! [`QueueConsumer::take_stream_errors`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rapidmq_proto::v1;
use tokio::sync::{Notify, mpsc, oneshot};

use super::queue_session::{Command, QueueSession};
use super::{Buffered, poll_with};
use futures::future::BoxFuture;

use crate::client::{Client, Closable};
use crate::config::ConsumerConfig;
use crate::defaults;
use crate::error::{Error, Result};
use crate::types::ReceivedMessage;

/// Stream errors kept for [`QueueConsumer::take_stream_errors`] at most; older ones are dropped
/// (they stay counted).
const MAX_KEPT_ERRORS: usize = 100;

/// Identifies one delivery of a queue message. Opaque: pass it back to `ack`, `nack` or
/// `extend_deadline`. Valid only for the consumer (and connection) that received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Receipt {
    pub(crate) partition: u32,
    pub(crate) offset: u64,
    pub(crate) delivery_id: u64,
    /// The local session (stream) it came from.
    pub(crate) session: u64,
}

impl Receipt {
    /// The message's partition.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// The message's offset in its partition.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn to_wire(self) -> v1::Receipt {
        v1::Receipt {
            partition: self.partition,
            offset: self.offset,
            delivery_id: self.delivery_id,
        }
    }
}

/// One delivery of a queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// The message, with its partition and offset.
    pub message: ReceivedMessage,
    /// 1 on the first delivery; counts survive broker restarts.
    pub attempt: u32,
    /// What `ack`, `nack` and `extend_deadline` take.
    pub receipt: Receipt,
}

/// A queue consumer's counters since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueConsumerStats {
    /// Deliveries received from the broker.
    pub received: u64,
    /// Deliveries returned by `poll`.
    pub polled: u64,
    /// Deliveries buffered ahead of `poll` now.
    pub buffered: u64,
    /// The most deliveries ever buffered ahead of `poll`; never above `prefetch`.
    pub max_buffered: u64,
    /// Receipts acked, nacked and extended (sent to the broker).
    pub acked: u64,
    /// Receipts nacked.
    pub nacked: u64,
    /// Receipts whose deadline was extended.
    pub extended: u64,
    /// Ack messages sent (each carries a batch of receipts).
    pub ack_requests: u64,
    /// Receipts dropped because they came from before a reconnect.
    pub stale_receipts: u64,
    /// Errors the broker reported on the stream (e.g. `RECEIPT_UNKNOWN`).
    pub stream_errors: u64,
    /// Sessions re-established after the stream broke.
    pub reconnects: u64,
}

/// Receipts waiting to be sent.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) acks: Vec<v1::Receipt>,
    /// Nacks by delay in ms.
    pub(crate) nacks: BTreeMap<u64, Vec<v1::Receipt>>,
    /// Extensions by extension in ms.
    pub(crate) extends: BTreeMap<u64, Vec<v1::Receipt>>,
}

pub(crate) struct QueueState {
    pub(crate) buffer: VecDeque<QueueMessage>,
    pub(crate) outbox: Outbox,
    /// Incremented each time a new stream starts; receipts of older sessions are stale.
    pub(crate) session: u64,
    pub(crate) errors: VecDeque<Error>,
    pub(crate) fatal: Option<Error>,
    pub(crate) closed: bool,
    pub(crate) stats: QueueConsumerStats,
}

pub(crate) struct QueueShared {
    pub(crate) state: Mutex<QueueState>,
    pub(crate) notify: Notify,
}

impl QueueShared {
    /// Records an error the broker reported on the stream.
    pub(crate) fn stream_error(&self, err: Error) {
        let mut state = self.state.lock();
        state.stats.stream_errors += 1;
        if state.errors.len() == MAX_KEPT_ERRORS {
            state.errors.pop_front();
        }
        state.errors.push_back(err);
    }
}

/// A queue-mode consumer. Cheap to clone; clones share the buffer.
#[derive(Clone)]
pub struct QueueConsumer {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    config: ConsumerConfig,
    shared: Arc<QueueShared>,
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for QueueConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueConsumer")
            .field("topic", &self.inner.config.topic)
            .field("subscription", &self.inner.config.subscription)
            .finish()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl QueueConsumer {
    pub(crate) async fn subscribe(client: Client, config: ConsumerConfig) -> Result<QueueConsumer> {
        config.validate()?;
        if config.subscription.is_empty() {
            return Err(Error::invalid("queue mode needs a subscription name"));
        }
        let shared = Arc::new(QueueShared {
            state: Mutex::new(QueueState {
                buffer: VecDeque::new(),
                outbox: Outbox::default(),
                session: 0,
                errors: VecDeque::new(),
                fatal: None,
                closed: false,
                stats: QueueConsumerStats::default(),
            }),
            notify: Notify::new(),
        });
        let (commands, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let session = QueueSession::new(client.clone(), config.clone(), shared.clone());
        client.runtime().spawn(session.run(rx, ready_tx));
        ready_rx
            .await
            .map_err(|_| Error::closed("the consumer stopped while subscribing"))??;
        let consumer = QueueConsumer {
            inner: Arc::new(Inner {
                client: client.clone(),
                config,
                shared,
                commands,
            }),
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

    /// Returns up to `max` buffered deliveries, waiting up to `timeout` for the first one; an
    /// empty vector when none arrived in time. Grants the broker as many credits as deliveries
    /// returned. With auto-commit on, the returned deliveries are acked.
    ///
    /// Cancel-safe: dropping the future before it completes (a timeout, a cancelled task) takes
    /// no delivery out of the buffer.
    ///
    /// Errors: the fatal error that ended the subscription, [`Error::Closed`] after close.
    pub async fn poll(&self, max: usize, timeout: Duration) -> Result<Vec<QueueMessage>> {
        if max == 0 {
            return Err(Error::invalid("poll needs max >= 1"));
        }
        let inner = &self.inner;
        poll_with(inner.client.runtime(), &inner.shared, timeout, || {
            inner.try_take(max)
        })
        .await
    }

    /// Acknowledges a delivery: the broker will not deliver the message again. Sent with the
    /// next ack batch (interval, [`defaults::ACK_BATCH`] pending acks, [`QueueConsumer::flush`]
    /// or close). A stale receipt (from before a reconnect) is dropped and counted; the broker
    /// redelivers that message.
    ///
    /// Errors: [`Error::Closed`] after close.
    pub fn ack(&self, receipt: &Receipt) -> Result<()> {
        let mut full = false;
        self.queue(receipt, |outbox, r| {
            outbox.acks.push(r);
            full = outbox.acks.len() == defaults::ACK_BATCH;
        })?;
        if full { self.send_now() } else { Ok(()) }
    }

    /// Gives a delivery back: the broker redelivers it (as the next attempt) no sooner than
    /// `delay`, or dead-letters it when it has had `max_deliveries` attempts. Sent at once.
    pub fn nack(&self, receipt: &Receipt, delay: Duration) -> Result<()> {
        self.queue(receipt, |outbox, r| {
            outbox.nacks.entry(millis(delay)).or_default().push(r)
        })?;
        self.send_now()
    }

    /// Pushes a delivery's ack deadline out to now + `extension`. Sent at once.
    pub fn extend_deadline(&self, receipt: &Receipt, extension: Duration) -> Result<()> {
        self.queue(receipt, |outbox, r| {
            outbox.extends.entry(millis(extension)).or_default().push(r)
        })?;
        self.send_now()
    }

    fn queue(&self, receipt: &Receipt, put: impl FnOnce(&mut Outbox, v1::Receipt)) -> Result<()> {
        let mut state = self.inner.shared.state.lock();
        if state.closed {
            return Err(Error::closed("the consumer is closed"));
        }
        if receipt.session != state.session {
            state.stats.stale_receipts += 1;
            tracing::debug!(
                partition = receipt.partition,
                offset = receipt.offset,
                "dropping a receipt from before a reconnect"
            );
            return Ok(());
        }
        put(&mut state.outbox, receipt.to_wire());
        Ok(())
    }

    fn send_now(&self) -> Result<()> {
        self.inner
            .commands
            .send(Command::Flush(None))
            .map_err(|_| Error::closed("the consumer is closed"))
    }

    /// Sends the pending acks now.
    pub async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Flush(Some(tx)))
            .map_err(|_| Error::closed("the consumer is closed"))?;
        rx.await
            .map_err(|_| Error::closed("the consumer stopped during flush"))?
    }

    /// Sends the pending acks and ends the subscription. Unacked deliveries are redelivered
    /// (to other consumers) after their deadline.
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

    /// Errors the broker reported on the stream since the last call (at most the last 100),
    /// oldest first.
    pub fn take_stream_errors(&self) -> Vec<Error> {
        self.inner.shared.state.lock().errors.drain(..).collect()
    }

    /// The counters so far.
    pub fn stats(&self) -> QueueConsumerStats {
        let state = self.inner.shared.state.lock();
        QueueConsumerStats {
            buffered: state.buffer.len() as u64,
            ..state.stats
        }
    }
}

impl Closable for Inner {
    fn close(self: Arc<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move { QueueConsumer { inner: self }.close().await })
    }

    fn is_producer(&self) -> bool {
        false
    }
}

impl Inner {
    /// Takes up to `max` buffered deliveries, or the error that ended the consumer; `None` when
    /// there is nothing to return yet. Synchronous, so it cannot be cancelled halfway.
    fn try_take(&self, max: usize) -> Option<Result<Vec<QueueMessage>>> {
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
        if self.config.auto_commit {
            let receipts = messages.iter().map(|m| m.receipt.to_wire());
            state.outbox.acks.extend(receipts);
        }
        state.stats.polled += n as u64;
        let session = state.session;
        drop(state);
        let _ = self.commands.send(Command::Credit {
            session,
            messages: n as u32,
        });
        Some(Ok(messages))
    }
}

impl Buffered for QueueShared {
    fn notify(&self) -> &Notify {
        &self.notify
    }

    fn poll_ready(&self) -> bool {
        let state = self.state.lock();
        !state.buffer.is_empty() || state.closed || state.fatal.is_some()
    }
}
