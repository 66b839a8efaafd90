//! A consumer session on a stream subscription (or an ephemeral live tail), independent of any
//! transport: the gRPC `Consume` stream drives it today, REST streaming will later.
//!
//! [`StreamSession::next`] returns the next event within the caller's credits: a new assignment,
//! or messages from one stored batch. It is cancel-safe, so a transport can `select!` it against
//! incoming credits and commits: positions only move once a delivery is handed out.
//!
//! A delivery of part of a stored batch carries only those messages (cut out by
//! [`super::slice`]), so reading a large batch a few messages at a time costs the bytes of the
//! batch once, not once per delivery.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::{self, Either};
use rapidmq_proto::ErrorCode;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::TopicState;

use super::access::AccessWatch;
use super::batch::{FLAG_TTL, StoredBatch};
use super::observe::Observer;
use super::partition::{Partition, PartitionShared};
use super::remote_tail::RemoteTail;
use super::slice;
use super::subscription::{Assignment, MemberHandle};
use super::topic::Topic;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::observability::TopicCounters;

/// Batches read ahead per partition from storage.
const READ_AHEAD_BATCHES: usize = 16;
const READ_AHEAD_BYTES: usize = 4 << 20;

/// Messages `[skip, skip + count)` of `payload`, the first at `base_offset`. A whole stored
/// batch goes out as stored; part of one is cut down to the delivered messages (`skip` 0).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub partition: u32,
    pub base_offset: u64,
    pub skip: u32,
    pub count: u32,
    pub append_time_ms: i64,
    pub payload: Bytes,
}

impl Delivery {
    /// Messages `[skip, skip + count)` of `batch`: the batch as stored when that is all of it,
    /// otherwise only those messages' records (`skip` 0), so a partial delivery does not resend
    /// the whole batch.
    pub(super) fn of(partition: u32, batch: &StoredBatch, skip: u32, count: u32) -> Delivery {
        if !(skip == 0 && count == batch.count)
            && let Some(payload) = slice::messages(&batch.payload, skip, count)
        {
            return Delivery {
                partition,
                base_offset: batch.base_offset + u64::from(skip),
                skip: 0,
                count,
                append_time_ms: batch.append_time_ms,
                payload,
            };
        }
        Delivery {
            partition,
            base_offset: batch.base_offset,
            skip,
            count,
            append_time_ms: batch.append_time_ms,
            payload: batch.payload.clone(),
        }
    }
}

/// What a session hands out.
#[derive(Debug, Clone)]
pub enum SessionEvent {
    /// The partitions this session now reads, with the offset it resumes from on each.
    Assigned {
        generation: u64,
        partitions: Vec<(u32, u64)>,
    },
    Delivery(Delivery),
}

struct Cursor {
    partition: u32,
    source: Source,
    next: u64,
    read_ahead: VecDeque<Arc<StoredBatch>>,
    /// Changes when the source has more: the partition's high watermark, or the remote tail's
    /// arrivals.
    hw: watch::Receiver<u64>,
}

/// Where a cursor reads its partition.
enum Source {
    /// This node's copy (single node, or a replica).
    Local(Arc<PartitionShared>),
    /// Cluster mode, on a node that holds no replica: read ahead from the group's leader.
    Remote(RemoteTail),
}

impl Cursor {
    /// A cursor on `partition` of `topic` from `next`: reading this node's copy, or, on a node
    /// that holds none, the group leader's.
    fn open(topic: &Arc<Topic>, partition: &Partition, next: u64) -> Cursor {
        let index = partition.shared().index;
        let source = if partition.replicated() && !partition.is_replica() {
            Source::Remote(RemoteTail::spawn(Arc::clone(topic), index, next))
        } else {
            Source::Local(Arc::clone(partition.shared()))
        };
        let hw = match &source {
            Source::Local(shared) => shared.watch_high_watermark(),
            Source::Remote(tail) => tail.watch(),
        };
        Cursor {
            partition: index,
            source,
            next,
            read_ahead: VecDeque::new(),
            hw,
        }
    }

    /// Follows a replica move: a cursor on this node's copy of a partition that this node no
    /// longer holds reads the group leader's from where it is ([`Partition::replace_group_log`]
    /// wakes it).
    fn follow_moves(&mut self, topic: &Arc<Topic>) {
        if !matches!(self.source, Source::Local(_)) {
            return;
        }
        if let Some(partition) = topic.partition(self.partition)
            && partition.replicated()
            && !partition.is_replica()
        {
            *self = Cursor::open(topic, partition, self.next);
        }
    }

    fn log_start(&self) -> u64 {
        match &self.source {
            Source::Local(shared) => shared.log_start(),
            Source::Remote(tail) => tail.log_start(),
        }
    }

    async fn read(&self) -> Result<Vec<Arc<StoredBatch>>> {
        match &self.source {
            Source::Local(shared) => {
                shared
                    .read(self.next, READ_AHEAD_BATCHES, READ_AHEAD_BYTES)
                    .await
            }
            Source::Remote(tail) => Ok(tail.take(self.next, READ_AHEAD_BATCHES, READ_AHEAD_BYTES)),
        }
    }
}

/// Offsets to resume from, per partition.
type Starts = HashMap<u32, u64>;

/// A consumer's session.
pub struct StreamSession {
    topic: Arc<Topic>,
    member: Option<MemberHandle>,
    /// Ephemeral sessions announce their fixed assignment once.
    announce: Option<u64>,
    generation: u64,
    cursors: BTreeMap<u32, Cursor>,
    round_robin: usize,
    topic_closed: watch::Receiver<TopicState>,
    observer: Observer,
    /// Ends the session when the caller's credential or its grant to consume stops working.
    credential: Option<AccessWatch>,
    /// Cluster mode: the partition whose leader coordinates the subscription
    /// ([`Engine::stream_coordinator`](super::Engine::stream_coordinator)); the session ends,
    /// with a hint to the new coordinator, once this node no longer leads it.
    coordinator: Option<u32>,
    /// Cluster mode: the resume offsets of a new assignment being asked of the leaders of
    /// partitions this node holds no replica of ([`StreamSession::remote_starts`]).
    resolving: Option<(u64, JoinHandle<Result<Starts>>)>,
}

/// How often a coordinated session checks that its node still coordinates the subscription.
const COORDINATOR_CHECK: std::time::Duration = std::time::Duration::from_millis(250);

impl StreamSession {
    /// Ends the session once `credential` stops working (revoked, expired, or a role lost).
    pub(super) fn watching(mut self, credential: Option<AccessWatch>) -> StreamSession {
        self.credential = credential;
        self
    }

    pub(super) fn member(
        topic: Arc<Topic>,
        member: MemberHandle,
        topic_closed: watch::Receiver<TopicState>,
        observer: Observer,
    ) -> StreamSession {
        StreamSession {
            topic,
            member: Some(member),
            announce: None,
            generation: 0,
            cursors: BTreeMap::new(),
            round_robin: 0,
            topic_closed,
            observer,
            credential: None,
            coordinator: None,
            resolving: None,
        }
    }

    pub(super) fn ephemeral(
        topic: Arc<Topic>,
        starts: Vec<u64>,
        topic_closed: watch::Receiver<TopicState>,
        observer: Observer,
    ) -> StreamSession {
        let cursors = topic
            .partitions
            .iter()
            .zip(starts)
            .map(|(p, next)| (p.shared().index, Cursor::open(&topic, p, next)))
            .collect();
        StreamSession {
            topic,
            member: None,
            announce: Some(1),
            generation: 1,
            cursors,
            round_robin: 0,
            topic_closed,
            observer,
            credential: None,
            coordinator: None,
            resolving: None,
        }
    }

    /// Ends the session once this node no longer leads `partition`, the one whose leader
    /// coordinates the subscription.
    pub fn coordinated_by(&mut self, partition: u32) {
        self.coordinator = Some(partition);
    }

    /// `UNAVAILABLE`, with a hint to the partition's leader, when this node no longer
    /// coordinates the subscription.
    fn check_coordinator(&self) -> Result<()> {
        let Some(index) = self.coordinator else {
            return Ok(());
        };
        match self.topic.partition(index) {
            Some(partition) if !partition.leads_with_lease() => Err(partition.hinted(
                Error::unavailable(format!(
                    "this node no longer coordinates subscription `{}` of topic `{}` (partition \
                     {index} is led elsewhere): join again through its leader",
                    self.subscription_name().unwrap_or_default(),
                    self.topic.name()
                )),
                self.topic.name(),
            )),
            _ => Ok(()),
        }
    }

    pub fn topic(&self) -> &Arc<Topic> {
        &self.topic
    }

    /// The group member id, or `None` for an ephemeral session.
    pub fn member_id(&self) -> Option<&str> {
        self.member.as_ref().map(MemberHandle::id)
    }

    pub fn subscription_name(&self) -> Option<&str> {
        self.member.as_ref().map(|m| m.subscription().name())
    }

    /// The next event, delivering at most `credits` messages. With 0 credits it only waits for
    /// assignment changes. Errors when the subscription or topic is deleted.
    pub async fn next(&mut self, credits: u32) -> Result<SessionEvent> {
        loop {
            if let Some(generation) = self.announce.take() {
                return Ok(self.assigned(generation));
            }
            if let Some(member) = self.member.as_mut() {
                // `changed()` in `wait` marks values seen, so compare generations instead.
                if member.assignments().has_changed().is_err() {
                    return Err(Error::new(
                        ErrorCode::SubscriptionNotFound,
                        "the subscription was deleted",
                    ));
                }
                let assignment = member.assignments().borrow_and_update().clone();
                if assignment.generation != self.generation {
                    let starts = self.remote_starts(&assignment).await?;
                    self.reassign(
                        assignment.generation,
                        &assignment.partitions,
                        assignment.reset,
                        &starts,
                    );
                    return Ok(self.assigned(assignment.generation));
                }
            }
            match *self.topic_closed.borrow_and_update() {
                TopicState::Open => {}
                TopicState::Deleted => return Err(Error::topic_not_found(self.topic.name())),
                TopicState::Stopping => {
                    return Err(Error::unavailable("the broker is shutting down"));
                }
                TopicState::Reopened => {
                    return Err(Error::unavailable(
                        "the topic was reopened after a failed delete: subscribe again",
                    ));
                }
            }
            if let Some(credential) = &self.credential {
                credential.check()?;
            }
            self.check_coordinator()?;
            let span = tracing::debug_span!(
                "deliver",
                topic = %self.topic.name(),
                subscription = self.subscription_name(),
                credits,
            );
            // Over its tenant's consume rate, nothing is read until the tenant is back under.
            if credits > 0 {
                self.topic.quota.consume_pause(None).await;
            }
            if credits > 0
                && let Some((delivery, flags, known_bytes)) =
                    self.deliver(credits).instrument(span).await?
            {
                self.topic.quota.consumed(delivery.payload.len() as u64);
                self.observer.delivered(
                    &self.topic,
                    self.subscription_name(),
                    &delivery,
                    flags,
                    known_bytes,
                );
                return Ok(SessionEvent::Delivery(delivery));
            }
            self.wait(credits > 0).await;
        }
    }

    fn assigned(&self, generation: u64) -> SessionEvent {
        SessionEvent::Assigned {
            generation,
            partitions: self.cursors.iter().map(|(p, c)| (*p, c.next)).collect(),
        }
    }

    /// The offsets to resume from on the partitions of `assignment` that this node holds no
    /// replica of and the session does not read yet (all of them after a reset): the group's
    /// committed offsets, asked of the partitions' leaders (this node applies none of their
    /// commits). Cancel-safe: the asking goes on at the next call for the same generation.
    async fn remote_starts(&mut self, assignment: &Assignment) -> Result<Starts> {
        let current = matches!(&self.resolving, Some((generation, _)) if *generation == assignment.generation);
        if !current {
            let wanted: Vec<u32> = assignment
                .partitions
                .iter()
                .copied()
                .filter(|p| assignment.reset || !self.cursors.contains_key(p))
                .filter(|&p| {
                    self.topic
                        .partition(p)
                        .is_some_and(|partition| partition.replicated() && !partition.is_replica())
                })
                .collect();
            let Some(subscription) = self.member.as_ref().map(|m| m.subscription().clone()) else {
                return Ok(HashMap::new());
            };
            if wanted.is_empty() {
                return Ok(HashMap::new());
            }
            let topic = Arc::clone(&self.topic);
            let asking = async move {
                let (topic, subscription) = (&topic, &subscription);
                let views = wanted.iter().map(|&p| {
                    let name = subscription.name();
                    async move {
                        let Some(partition) = topic.partition(p) else {
                            return Ok(None);
                        };
                        match partition.remote_view(Some(name)).await {
                            None => Ok(None),
                            Some(Ok(view)) => {
                                let committed =
                                    view.committed.unwrap_or_else(|| subscription.committed(p));
                                Ok(Some((p, committed.min(view.high_watermark))))
                            }
                            Some(Err(err)) => Err(partition.hinted(err, topic.name())),
                        }
                    }
                });
                let starts = futures::future::try_join_all(views).await?;
                Ok(starts.into_iter().flatten().collect())
            };
            self.resolving = Some((assignment.generation, tokio::spawn(asking)));
        }
        let Some((_, asking)) = self.resolving.as_mut() else {
            return Ok(HashMap::new());
        };
        let starts = asking.await;
        self.resolving = None;
        starts.map_err(|err| Error::internal(format!("asking for resume offsets: {err}")))?
    }

    fn reassign(&mut self, generation: u64, partitions: &[u32], reset: bool, starts: &Starts) {
        self.generation = generation;
        self.cursors.retain(|p, _| !reset && partitions.contains(p));
        let Some(member) = self.member.as_ref() else {
            return;
        };
        let subscription = member.subscription().clone();
        for &p in partitions {
            if self.cursors.contains_key(&p) {
                continue;
            }
            let Some(partition) = self.topic.partition(p) else {
                continue;
            };
            let next = match starts.get(&p) {
                Some(&next) => next,
                // A memory topic restarts empty while its cursors live on: never wait past the
                // end.
                None => subscription
                    .committed(p)
                    .min(partition.shared().high_watermark()),
            };
            self.cursors
                .insert(p, Cursor::open(&self.topic, partition, next));
        }
    }

    async fn deliver(&mut self, credits: u32) -> Result<Option<(Delivery, u8, Option<u64>)>> {
        let order: Vec<u32> = self.cursors.keys().copied().collect();
        for i in 0..order.len() {
            let p = order[(self.round_robin + i) % order.len()];
            let Some(cursor) = self.cursors.get_mut(&p) else {
                continue;
            };
            cursor.follow_moves(&self.topic);
            cursor.hw.borrow_and_update();
            if let Some(delivery) =
                take(cursor, credits, &self.topic.counters, &*self.observer.clock).await?
            {
                self.round_robin = (self.round_robin + i + 1) % order.len();
                return Ok(Some(delivery));
            }
        }
        Ok(None)
    }

    async fn wait(&mut self, for_data: bool) {
        tracing::trace!(partitions = self.cursors.len(), "session waits");
        let data = if for_data && !self.cursors.is_empty() {
            Either::Left(future::select_all(
                self.cursors.values_mut().map(|c| Box::pin(c.hw.changed())),
            ))
        } else {
            Either::Right(future::pending())
        };
        let assignment = match self.member.as_mut() {
            Some(member) => Either::Left(member.assignments().changed()),
            None => Either::Right(future::pending()),
        };
        let credential = match self.credential.as_mut() {
            Some(credential) => Either::Left(credential.changed()),
            None => Either::Right(future::pending()),
        };
        let coordinator = match self.coordinator {
            Some(_) => Either::Left(tokio::time::sleep(COORDINATOR_CHECK)),
            None => Either::Right(future::pending()),
        };
        tokio::select! {
            _ = coordinator => tracing::trace!("session checks its coordination"),
            _ = data => tracing::trace!("session woken by data"),
            _ = assignment => tracing::trace!("session woken by assignment"),
            _ = self.topic_closed.changed() => tracing::trace!("session woken by topic state"),
            _ = credential => tracing::trace!("session woken by an auth change"),
        }
    }
}

/// Hands out up to `credits` messages from the batch holding the cursor's next offset, skipping
/// messages whose TTL has passed by `clock`.
async fn take(
    cursor: &mut Cursor,
    credits: u32,
    counters: &TopicCounters,
    clock: &dyn Clock,
) -> Result<Option<(Delivery, u8, Option<u64>)>> {
    loop {
        let log_start = cursor.log_start();
        if cursor.next < log_start {
            cursor.next = log_start;
        }
        while cursor
            .read_ahead
            .front()
            .is_some_and(|b| b.end_offset() <= cursor.next)
        {
            cursor.read_ahead.pop_front();
        }
        if cursor.read_ahead.is_empty() {
            let batches = cursor.read().await?;
            cursor
                .read_ahead
                .extend(batches.into_iter().filter(|b| b.end_offset() > cursor.next));
        }
        let Some(batch) = cursor.read_ahead.front().cloned() else {
            return Ok(None);
        };
        // Retention may have removed the offsets before this batch.
        let mut next = cursor.next.max(batch.base_offset);
        let mut end = batch.end_offset();
        if batch.flags & FLAG_TTL != 0 {
            let expired = expired_messages(&batch, clock.now_ms())?;
            let index = |offset: u64| (offset - batch.base_offset) as usize;
            let from = next;
            while next < end && expired[index(next)] {
                next += 1;
            }
            TopicCounters::add(&counters.ttl_expired, next - from);
            if next == end {
                // Everything left in this batch has expired: move on.
                cursor.next = end;
                continue;
            }
            end = (next..end).find(|&o| expired[index(o)]).unwrap_or(end);
        }
        let skip = (next - batch.base_offset) as u32;
        let count = ((end - next) as u32).min(credits);
        cursor.next = next + u64::from(count);
        if cursor.next >= batch.end_offset() {
            cursor.read_ahead.pop_front();
        }
        let delivery = Delivery::of(cursor.partition, &batch, skip, count);
        // The whole batch: its value bytes may be known without a walk.
        let known_bytes = (skip == 0 && count == batch.count)
            .then_some(batch.value_bytes)
            .flatten();
        return Ok(Some((delivery, batch.flags, known_bytes)));
    }
}

/// Which messages of a batch have outlived their TTL at `now`.
fn expired_messages(batch: &StoredBatch, now: i64) -> Result<Vec<bool>> {
    let decoded = rapidmq_proto::batch::decode(batch.payload.clone())
        .map_err(|err| Error::internal(format!("stored batch does not decode: {err}")))?;
    Ok(decoded
        .messages
        .iter()
        .map(|m| m.ttl_ms > 0 && batch.append_time_ms.saturating_add(m.ttl_ms) <= now)
        .collect())
}
