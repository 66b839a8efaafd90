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
//!
//! **One session per node.** In a cluster a node delivers only the partitions it leads
//! (docs/clustering.md, "Client routing"), so the consumer learns the nodes from `GetMetadata`
//! and runs one session (one `Consume` stream, on that node's own connection) per node with a
//! client address, all feeding the one buffer `poll` reads. Each session has its own credit
//! window (the configured prefetch) and its own outbox: a receipt names the session that
//! delivered it and goes back on that session's stream. Nodes that join later are found by
//! asking `GetMetadata` again every [`REDISCOVER_INTERVAL`] and whenever a stream ends. A node
//! that is down only costs its own session's reconnects; the consumer ends when its last
//! session ends. A single-node broker lists no nodes (an older one has no `GetMetadata`): then
//! there is exactly one session, on the seed connection.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use rapidmq_proto::v1;
use tokio::sync::{Notify, mpsc, oneshot};

use super::queue_session::{Command, QueueSession, Target};
use super::{Buffered, poll_with};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;

use crate::client::{Client, Closable};
use crate::config::ConsumerConfig;
use crate::defaults;
use crate::error::{Error, Result};
use crate::types::ReceivedMessage;

/// Stream errors kept for [`QueueConsumer::take_stream_errors`] at most; older ones are dropped
/// (they stay counted).
const MAX_KEPT_ERRORS: usize = 100;

/// How often a cluster consumer asks for the node list again, to find nodes that joined (also
/// asked whenever one of its streams ends).
pub(crate) const REDISCOVER_INTERVAL: Duration = Duration::from_secs(30);

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
    /// The most deliveries ever buffered ahead of `poll`; never above `prefetch` times the
    /// sessions (one per cluster node, one on a single node).
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

impl Outbox {
    /// How many receipts wait in it.
    pub(crate) fn len(&self) -> usize {
        self.acks.len()
            + self.nacks.values().map(Vec::len).sum::<usize>()
            + self.extends.values().map(Vec::len).sum::<usize>()
    }
}

/// An open stream (a session): its unsent receipts, and the way to its task.
pub(crate) struct Live {
    pub(crate) outbox: Outbox,
    /// Weak, so that dropping the consumer without closing still ends the task.
    pub(crate) commands: mpsc::WeakUnboundedSender<Command>,
}

pub(crate) struct QueueState {
    pub(crate) buffer: VecDeque<QueueMessage>,
    /// The open streams by session id. Every stream gets a new id, so a receipt whose session
    /// is not here came from before a reconnect: it is stale.
    pub(crate) sessions: HashMap<u64, Live>,
    pub(crate) next_session: u64,
    /// Session tasks still running; the consumer ends when the last one does.
    pub(crate) running: usize,
    pub(crate) errors: VecDeque<Error>,
    pub(crate) fatal: Option<Error>,
    pub(crate) closed: bool,
    /// Every session counts into the same counters, so they are the consumer's sums.
    pub(crate) stats: QueueConsumerStats,
}

impl QueueState {
    fn new() -> QueueState {
        QueueState {
            buffer: VecDeque::new(),
            sessions: HashMap::new(),
            next_session: 1,
            running: 0,
            errors: VecDeque::new(),
            fatal: None,
            closed: false,
            stats: QueueConsumerStats::default(),
        }
    }

    /// Keeps an error for [`QueueConsumer::take_stream_errors`] and counts it.
    pub(crate) fn keep_error(&mut self, err: Error) {
        self.stats.stream_errors += 1;
        if self.errors.len() == MAX_KEPT_ERRORS {
            self.errors.pop_front();
        }
        self.errors.push_back(err);
    }

    /// Registers a new stream of the task behind `commands`; its session id.
    pub(crate) fn open_session(&mut self, commands: mpsc::WeakUnboundedSender<Command>) -> u64 {
        let id = self.next_session;
        self.next_session += 1;
        let live = Live {
            outbox: Outbox::default(),
            commands,
        };
        self.sessions.insert(id, live);
        id
    }

    /// Session `id`'s stream is gone: its buffered deliveries and unsent receipts belong to it.
    /// The broker redelivers those messages; their receipts are stale from now on.
    pub(crate) fn end_session(&mut self, id: u64) {
        if let Some(live) = self.sessions.remove(&id) {
            self.stats.stale_receipts += live.outbox.len() as u64;
        }
        self.buffer.retain(|m| m.receipt.session != id);
    }

    /// Puts `receipt` in the outbox of the session that delivered it, and returns the way to
    /// that session's task; `None` (counted) for a stale receipt.
    fn route(
        &mut self,
        receipt: &Receipt,
        put: impl FnOnce(&mut Outbox, v1::Receipt),
    ) -> Option<mpsc::WeakUnboundedSender<Command>> {
        match self.sessions.get_mut(&receipt.session) {
            Some(live) => {
                put(&mut live.outbox, receipt.to_wire());
                Some(live.commands.clone())
            }
            None => {
                self.stats.stale_receipts += 1;
                tracing::debug!(
                    partition = receipt.partition,
                    offset = receipt.offset,
                    "dropping a receipt from before a reconnect"
                );
                None
            }
        }
    }

    /// The credits that taking `messages` out of the buffer earns, per session still open,
    /// with the way to its task.
    fn credits(
        &self,
        messages: &[QueueMessage],
    ) -> Vec<(mpsc::WeakUnboundedSender<Command>, u64, u32)> {
        let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
        for m in messages {
            *counts.entry(m.receipt.session).or_default() += 1;
        }
        counts
            .into_iter()
            .filter_map(|(session, n)| {
                let live = self.sessions.get(&session)?;
                Some((live.commands.clone(), session, n))
            })
            .collect()
    }
}

pub(crate) struct QueueShared {
    pub(crate) state: Mutex<QueueState>,
    pub(crate) notify: Notify,
    /// Poked when a stream ends: the node list may have changed.
    pub(crate) rediscover: Notify,
}

impl QueueShared {
    /// Records an error the broker reported on the stream.
    pub(crate) fn stream_error(&self, err: Error) {
        self.state.lock().keep_error(err);
    }
}

/// The session tasks, to reach each with flush and close.
#[derive(Default)]
struct Tasks {
    /// Set by close: no new session starts.
    closing: bool,
    /// Each task's commands, with the node it reads from (`None`: the seed connection).
    senders: Vec<(Option<u64>, mpsc::UnboundedSender<Command>)>,
}

/// A queue-mode consumer. Cheap to clone; clones share the buffer.
///
/// It is also a [`futures::Stream`] of its deliveries, one at a time, waiting as long as it
/// takes, like [`crate::Consumer`]'s; ack, nack or extend what it yields by its receipt.
#[derive(Clone)]
pub struct QueueConsumer {
    inner: Arc<Inner>,
    next: super::next::Next<QueueMessage>,
}

impl futures::Stream for QueueConsumer {
    type Item = Result<QueueMessage>;

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

struct Inner {
    client: Client,
    config: ConsumerConfig,
    shared: Arc<QueueShared>,
    /// Held here only (the node finder holds it weakly), so dropping the consumer ends its
    /// tasks as closing it does.
    tasks: Arc<Mutex<Tasks>>,
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
            state: Mutex::new(QueueState::new()),
            notify: Notify::new(),
            rediscover: Notify::new(),
        });
        let nodes = discover(&client, &config.topic).await?;
        let tasks = Arc::new(Mutex::new(Tasks::default()));
        let targets: Vec<Target> = if nodes.is_empty() {
            vec![Target::Seed]
        } else {
            nodes.iter().map(|&node| Target::Node(node)).collect()
        };
        let (targets, readies): (Vec<_>, Vec<_>) = targets
            .into_iter()
            .map(|target| {
                let (ready_tx, ready_rx) = oneshot::channel();
                ((target, Some(ready_tx)), ready_rx)
            })
            .unzip();
        start_sessions(&client, &config, &shared, &tasks, targets);
        let consumer = QueueConsumer {
            inner: Arc::new(Inner {
                client: client.clone(),
                config,
                shared,
                tasks,
            }),
            next: Default::default(),
        };
        if let Err(err) = ready(readies).await {
            consumer.close().await?;
            return Err(err);
        }
        if !nodes.is_empty() {
            let finder = consumer.inner.node_finder();
            client.runtime().spawn(finder);
        }
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
        let session = self.queue(receipt, |outbox, r| {
            outbox.acks.push(r);
            full = outbox.acks.len() == defaults::ACK_BATCH;
        })?;
        match session {
            Some(session) if full => send_now(&session),
            _ => Ok(()),
        }
    }

    /// Gives a delivery back: the broker redelivers it (as the next attempt) no sooner than
    /// `delay`, or dead-letters it when it has had `max_deliveries` attempts. Sent at once.
    pub fn nack(&self, receipt: &Receipt, delay: Duration) -> Result<()> {
        let session = self.queue(receipt, |outbox, r| {
            outbox.nacks.entry(millis(delay)).or_default().push(r)
        })?;
        session.map_or(Ok(()), |session| send_now(&session))
    }

    /// Pushes a delivery's ack deadline out to now + `extension`. Sent at once.
    pub fn extend_deadline(&self, receipt: &Receipt, extension: Duration) -> Result<()> {
        let session = self.queue(receipt, |outbox, r| {
            outbox.extends.entry(millis(extension)).or_default().push(r)
        })?;
        session.map_or(Ok(()), |session| send_now(&session))
    }

    /// Puts `receipt` in its session's outbox; the way to that session, `None` when stale.
    fn queue(
        &self,
        receipt: &Receipt,
        put: impl FnOnce(&mut Outbox, v1::Receipt),
    ) -> Result<Option<mpsc::WeakUnboundedSender<Command>>> {
        let mut state = self.inner.shared.state.lock();
        if state.closed {
            return Err(Error::closed("the consumer is closed"));
        }
        Ok(state.route(receipt, put))
    }

    /// Sends the pending acks now, on every session. Fails only when no session is connected
    /// (the receipts of a lost session are stale anyway).
    pub async fn flush(&self) -> Result<()> {
        let replies: Vec<_> = self
            .inner
            .senders()
            .into_iter()
            .filter_map(|commands| {
                let (tx, rx) = oneshot::channel();
                commands.send(Command::Flush(Some(tx))).ok().map(|_| rx)
            })
            .collect();
        let mut outcome = Err(Error::closed("the consumer is closed"));
        for reply in replies {
            let result = reply
                .await
                .map_err(|_| Error::closed("the consumer stopped during flush"))
                .and_then(|r| r);
            if outcome.is_err() {
                outcome = result;
            }
        }
        outcome
    }

    /// Sends the pending acks and ends the subscription, on every session. Unacked deliveries
    /// are redelivered (to other consumers) after their deadline.
    pub async fn close(&self) -> Result<()> {
        let senders = {
            let mut tasks = self.inner.tasks.lock();
            tasks.closing = true;
            tasks.senders.clone()
        };
        let replies: Vec<_> = senders
            .into_iter()
            .filter_map(|(_, commands)| {
                let (tx, rx) = oneshot::channel();
                commands.send(Command::Close(tx)).ok().map(|_| rx)
            })
            .collect();
        // A session may end on its own (a fatal error such as a deleted topic) with this close
        // still queued: the consumer is closed either way, as when it had ended before.
        for reply in replies {
            let _ = reply.await;
        }
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

/// Sends a session's outbox now.
fn send_now(session: &mpsc::WeakUnboundedSender<Command>) -> Result<()> {
    let closed = || Error::closed("the consumer is closed");
    let commands = session.upgrade().ok_or_else(closed)?;
    commands.send(Command::Flush(None)).map_err(|_| closed())
}

/// The nodes to read from, learned from `GetMetadata` on the seed connection: none on a
/// single-node broker or one without `GetMetadata`.
async fn discover(client: &Client, topic: &str) -> Result<Vec<u64>> {
    let (learner, topic) = (client.clone(), topic.to_string());
    client
        .runtime()
        .run(async move {
            learner.refresh_routes(&topic).await;
            learner.routes().nodes()
        })
        .await
}

/// Spawns a session task reading from each target (with its `ready`, if any) and lists them in
/// `tasks`; none once the consumer has ended (its last session gone). They count as running
/// before any starts, so that one ending at once does not end the consumer.
fn start_sessions(
    client: &Client,
    config: &ConsumerConfig,
    shared: &Arc<QueueShared>,
    tasks: &Mutex<Tasks>,
    targets: Vec<(Target, Option<oneshot::Sender<Result<()>>>)>,
) {
    {
        let mut state = shared.state.lock();
        if state.closed {
            return;
        }
        state.running += targets.len();
    }
    for (target, ready) in targets {
        let (commands, rx) = mpsc::unbounded_channel();
        let node = match target {
            Target::Seed => None,
            Target::Node(node) => Some(node),
        };
        let session = QueueSession::new(
            client.clone(),
            config.clone(),
            shared.clone(),
            target,
            commands.downgrade(),
        );
        tasks.lock().senders.push((node, commands));
        client.runtime().spawn(session.run(rx, ready));
    }
}

/// Waits for the first sessions until one has subscribed. When none does, the error (a fatal
/// one before a retriable one); the caller closes the sessions still trying.
async fn ready(readies: Vec<oneshot::Receiver<Result<()>>>) -> Result<()> {
    let mut outcomes: FuturesUnordered<_> = readies.into_iter().collect();
    let mut failure: Option<Error> = None;
    while let Some(outcome) = outcomes.next().await {
        let err = match outcome {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(err)) => err,
            Err(_) => Error::closed("the consumer stopped while subscribing"),
        };
        let keep = match &failure {
            None => true,
            Some(kept) => kept.is_retriable() && !err.is_retriable(),
        };
        if keep {
            failure = Some(err);
        }
    }
    Err(failure.unwrap_or_else(|| Error::closed("the consumer stopped while subscribing")))
}

impl Closable for Inner {
    fn close(self: Arc<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            QueueConsumer {
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

impl Inner {
    /// Every running session task's commands.
    fn senders(&self) -> Vec<mpsc::UnboundedSender<Command>> {
        let tasks = self.tasks.lock();
        tasks.senders.iter().map(|(_, s)| s.clone()).collect()
    }

    /// The task that starts a session on each node that joins: it asks for the node list every
    /// [`REDISCOVER_INTERVAL`] and whenever a stream ends, until the consumer closes or is
    /// dropped.
    fn node_finder(&self) -> impl Future<Output = ()> + Send + 'static {
        let (client, config, shared) = (
            self.client.clone(),
            self.config.clone(),
            self.shared.clone(),
        );
        let tasks = Arc::downgrade(&self.tasks);
        async move {
            let mut tick = tokio::time::interval(REDISCOVER_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shared.rediscover.notified() => {}
                }
                if shared.state.lock().closed {
                    return;
                }
                client.refresh_routes(&config.topic).await;
                let nodes = client.routes().nodes();
                if !follow_nodes(&client, &config, &shared, &tasks, &nodes) {
                    return;
                }
            }
        }
    }

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
            for m in &messages {
                state.route(&m.receipt, |outbox, r| outbox.acks.push(r));
            }
        }
        state.stats.polled += n as u64;
        let credits = state.credits(&messages);
        drop(state);
        for (commands, session, messages) in credits {
            if let Some(commands) = commands.upgrade() {
                let _ = commands.send(Command::Credit { session, messages });
            }
        }
        Some(Ok(messages))
    }
}

/// Follows the cluster's node table `nodes`: starts a session on each node that has none yet,
/// and closes the session of each node no longer listed (removed from the cluster), which would
/// otherwise reconnect to it forever. False when the consumer is closing or gone.
fn follow_nodes(
    client: &Client,
    config: &ConsumerConfig,
    shared: &Arc<QueueShared>,
    tasks: &Weak<Mutex<Tasks>>,
    nodes: &[u64],
) -> bool {
    let Some(tasks) = tasks.upgrade() else {
        return false;
    };
    let (joined, departed) = {
        let mut tasks = tasks.lock();
        if tasks.closing {
            return false;
        }
        node_changes(&mut tasks, nodes)
    };
    for &node in &joined {
        tracing::info!(node, topic = %config.topic, "a node joined; reading the queue from it too");
    }
    let targets = joined
        .into_iter()
        .map(|n| (Target::Node(n), None))
        .collect();
    // Started before the others close, so the consumer never counts no session running.
    start_sessions(client, config, shared, &tasks, targets);
    for (node, commands) in departed {
        tracing::info!(node, topic = %config.topic, "a node left the cluster; no longer reading the queue from it");
        let (reply, _) = oneshot::channel();
        let _ = commands.send(Command::Close(reply));
    }
    true
}

/// The nodes of `nodes` without a session yet, and the sessions (taken out of `tasks`) of the
/// nodes `nodes` no longer lists. An empty list (no node table: a single node) closes none.
fn node_changes(
    tasks: &mut Tasks,
    nodes: &[u64],
) -> (Vec<u64>, Vec<(u64, mpsc::UnboundedSender<Command>)>) {
    let known: Vec<u64> = tasks.senders.iter().filter_map(|(n, _)| *n).collect();
    let joined = nodes
        .iter()
        .copied()
        .filter(|n| !known.contains(n))
        .collect();
    let mut departed = Vec::new();
    if !nodes.is_empty() {
        tasks.senders.retain(|(node, commands)| match node {
            Some(node) if !nodes.contains(node) => {
                departed.push((*node, commands.clone()));
                false
            }
            _ => true,
        });
    }
    (joined, departed)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A refreshed node table starts sessions on the nodes that joined and closes those of the
    /// nodes that left; the seed session of a single node stays.
    #[test]
    fn node_changes_follow_the_node_table() {
        let (one, two, seed) = (
            mpsc::unbounded_channel().0,
            mpsc::unbounded_channel().0,
            mpsc::unbounded_channel().0,
        );
        let mut tasks = Tasks {
            closing: false,
            senders: vec![(Some(1), one), (Some(2), two)],
        };
        let (joined, departed) = node_changes(&mut tasks, &[1, 3]);
        assert_eq!(joined, [3]);
        assert_eq!(departed.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [2]);
        let left: Vec<_> = tasks.senders.iter().map(|(n, _)| *n).collect();
        assert_eq!(left, [Some(1)]);

        let mut single = Tasks {
            closing: false,
            senders: vec![(None, seed)],
        };
        let (joined, departed) = node_changes(&mut single, &[]);
        assert!(joined.is_empty() && departed.is_empty());
        assert_eq!(single.senders.len(), 1);
    }

    fn delivery(session: u64, offset: u64) -> QueueMessage {
        QueueMessage {
            message: ReceivedMessage {
                topic: "orders".into(),
                partition: 0,
                offset,
                key: None,
                value: Default::default(),
                headers: Vec::new(),
                timestamp_ms: 0,
                append_time_ms: 0,
                deliver_at_ms: None,
                ttl: None,
                priority: 0,
            },
            attempt: 1,
            receipt: Receipt {
                partition: 0,
                offset,
                delivery_id: offset,
                session,
            },
        }
    }

    /// A session's id and its task's channel.
    type Opened = (
        u64,
        mpsc::UnboundedSender<Command>,
        mpsc::UnboundedReceiver<Command>,
    );

    /// Two sessions, as two nodes' streams, each with its own task's channel.
    fn two_sessions() -> (QueueState, [Opened; 2]) {
        let mut state = QueueState::new();
        let open = |state: &mut QueueState| {
            let (tx, rx) = mpsc::unbounded_channel();
            (state.open_session(tx.downgrade()), tx, rx)
        };
        let a = open(&mut state);
        let b = open(&mut state);
        (state, [a, b])
    }

    #[test]
    fn a_receipt_goes_to_the_outbox_and_task_of_its_session() {
        let (mut state, [(a, a_tx, _), (b, b_tx, _)]) = two_sessions();
        assert_ne!(a, b);
        let to = state.route(&delivery(b, 7).receipt, |o, r| o.acks.push(r));
        assert!(
            to.and_then(|w| w.upgrade())
                .is_some_and(|t| t.same_channel(&b_tx))
        );
        let to = state.route(&delivery(a, 3).receipt, |o, r| o.acks.push(r));
        assert!(
            to.and_then(|w| w.upgrade())
                .is_some_and(|t| t.same_channel(&a_tx))
        );
        let offsets = |id: u64| -> Vec<u64> {
            state.sessions[&id]
                .outbox
                .acks
                .iter()
                .map(|r| r.offset)
                .collect()
        };
        assert_eq!(offsets(a), vec![3]);
        assert_eq!(offsets(b), vec![7]);
        assert_eq!(state.stats.stale_receipts, 0);
    }

    #[test]
    fn a_session_that_ended_takes_its_deliveries_and_receipts_and_leaves_the_others() {
        let (mut state, [(a, ..), (b, ..)]) = two_sessions();
        state
            .buffer
            .extend([delivery(a, 1), delivery(b, 2), delivery(a, 3)]);
        state.route(&delivery(a, 0).receipt, |o, r| o.acks.push(r));
        state.end_session(a);
        assert_eq!(state.stats.stale_receipts, 1);
        let left: Vec<u64> = state.buffer.iter().map(|m| m.receipt.offset).collect();
        assert_eq!(left, vec![2]);
        // A receipt of the ended session is stale; the other session's still goes out.
        assert!(
            state
                .route(&delivery(a, 1).receipt, |o, r| o.acks.push(r))
                .is_none()
        );
        assert!(
            state
                .route(&delivery(b, 2).receipt, |o, r| o.acks.push(r))
                .is_some()
        );
        assert_eq!(state.stats.stale_receipts, 2);
        // The next stream of the same task gets a new id: old receipts stay stale.
        let (tx, _rx) = mpsc::unbounded_channel();
        let again = state.open_session(tx.downgrade());
        assert!(again != a && again != b);
    }

    #[test]
    fn a_poll_grants_each_open_session_the_credits_of_its_own_deliveries() {
        let (mut state, [(a, a_tx, _), (b, _b_tx, _)]) = two_sessions();
        let taken = [
            delivery(a, 1),
            delivery(b, 2),
            delivery(a, 3),
            delivery(99, 4),
        ];
        let credits = state.credits(&taken);
        let granted: Vec<(bool, u64, u32)> = credits
            .into_iter()
            .map(|(w, session, n)| {
                let to_a = w.upgrade().is_some_and(|t| t.same_channel(&a_tx));
                (to_a, session, n)
            })
            .collect();
        // Session 99 is gone: its credits are discarded, as after a reconnect.
        assert_eq!(granted, vec![(true, a, 2), (false, b, 1)]);
        state.end_session(b);
        assert_eq!(state.credits(&taken).len(), 1);
    }
}
