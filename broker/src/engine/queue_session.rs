//! A consumer session on a queue-mode subscription: messages go one by one to whichever member
//! claims them, within its credits.
//!
//! The session loads each partition's window from the log when it runs low, claims from the
//! partitions in turn, dead-letters messages that used up their deliveries, and otherwise waits —
//! on new data (high-watermark watches), on the subscription's `changed` notification (nacks,
//! members leaving), or until the next ack deadline or nack delay. Dropping it releases its
//! in-flight messages for the other members.
//!
//! Cancel safety: [`QueueSession::next`] does all its waiting (storage reads included) before it
//! claims, and claims in one synchronous step right before it returns, so dropping it never
//! loses a claim. Dead letters are appended by a task of their own, which a closing stream
//! cannot cancel half-way. A transport that buffers deliveries before they reach the consumer
//! wraps them in an [`Undelivered`] guard: dropped unsent, it takes the claims back without
//! counting an attempt.
//!
//! In cluster mode a replicated partition is delivered only by its group's leader
//! ([`crate::engine::partition::Partition::delivers_queue`]), from the ack state the group
//! replicates; a session on another node skips it, and so two consumers connected to different
//! nodes never hold the same message (clients read from every node, docs/clustering.md).

use std::sync::Arc;

use futures::future::{self, Either};
use prost::Message as _;
use rapidmq_proto::ErrorCode;
use tokio::sync::watch;

use super::access::AccessWatch;
use super::queue::{Budget, Clock, QueuedMessage, Settle};
use super::subscription::{QueueRuntime, Subscription};
use super::topic::Topic;
use super::{Engine, TopicState};
use crate::error::{Error, Result};

/// Messages kept loaded per partition: bounds what is ready, delayed or in flight (awaiting an
/// ack) per partition of a queue subscription; one refill may pass it by up to `REFILL_BATCHES`
/// batches. Settled messages kept behind a parked one (a long nack delay) do not count.
const WINDOW: usize = 8192;
/// Batches read per window refill.
const REFILL_BATCHES: usize = 32;
const REFILL_BYTES: usize = 4 << 20;
/// Encoded message bytes handed out per claim (one delivery), past its first message: a
/// delivery must fit the transport's message limit (gRPC clients refuse more than 4 MiB unless
/// told otherwise), and what sits in a transport's buffers is out of reach of the other members
/// until the consumer reads it or hangs up.
const DELIVERY_BYTES: usize = 256 << 10;
/// How often a session looks again at partitions another node delivers (cluster mode: a queue
/// partition is delivered by its group's leader only), to take them over once this node leads.
const LEADERSHIP_CHECK_MS: i64 = 250;

/// One message handed to a queue consumer.
#[derive(Debug, Clone)]
pub struct QueueDelivery {
    pub partition: u32,
    pub offset: u64,
    pub delivery_id: u64,
    pub attempt: u32,
    pub message: Arc<QueuedMessage>,
}

/// A receipt as sent back by a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptRef {
    pub partition: u32,
    pub offset: u64,
    pub delivery_id: u64,
}

pub struct QueueSession {
    topic: Arc<Topic>,
    sub: Arc<Subscription>,
    member: u64,
    hw: Vec<watch::Receiver<u64>>,
    topic_state: watch::Receiver<TopicState>,
    closed: watch::Receiver<bool>,
    round_robin: usize,
    /// Ends the session when the caller's credential or its grant to consume stops working.
    credential: Option<AccessWatch>,
}

impl QueueSession {
    pub(super) fn new(
        topic: Arc<Topic>,
        sub: Arc<Subscription>,
        consumer_name: &str,
        topic_state: watch::Receiver<TopicState>,
    ) -> QueueSession {
        let member = sub.queue.as_ref().map_or(0, |q| q.join(consumer_name));
        let hw = topic
            .partitions
            .iter()
            .map(|p| p.shared().watch_high_watermark())
            .collect();
        let closed = sub.watch_closed();
        QueueSession {
            topic,
            sub,
            member,
            hw,
            topic_state,
            closed,
            round_robin: 0,
            credential: None,
        }
    }

    /// Ends the session once `credential` stops working (revoked, expired, or a role lost).
    pub(super) fn watching(mut self, credential: Option<AccessWatch>) -> QueueSession {
        self.credential = credential;
        self
    }

    pub fn topic(&self) -> &Arc<Topic> {
        &self.topic
    }

    pub fn subscription(&self) -> &Arc<Subscription> {
        &self.sub
    }

    pub fn member_id(&self) -> String {
        format!("{}-{}", self.sub.name(), self.member)
    }

    fn queue(&self) -> &QueueRuntime {
        // Queue sessions are only made for queue subscriptions.
        self.sub
            .queue
            .as_ref()
            .expect("queue session on a queue subscription")
    }

    /// The next messages, at most `credits` of them. Cancel-safe: every await comes before the
    /// claim, which is synchronous and immediately followed by the return.
    pub async fn next(&mut self, engine: &Engine, credits: u32) -> Result<Vec<QueueDelivery>> {
        loop {
            if *self.closed.borrow_and_update() {
                return Err(Error::new(
                    ErrorCode::SubscriptionNotFound,
                    "the subscription was deleted",
                ));
            }
            match *self.topic_state.borrow_and_update() {
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
            let sub = self.sub.clone();
            let queue = sub.queue.as_ref().expect("queue subscription");
            let changed = queue.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            for hw in &mut self.hw {
                hw.borrow_and_update();
            }
            if credits > 0 {
                // Over its tenant's consume rate, nothing is claimed until it is back under.
                self.topic.quota.consume_pause(None).await;
                for p in 0..self.topic.partitions.len() {
                    self.refill(p).await?;
                }
                // No await from here to the return: a claim is never dropped half-way.
                let delivered = self.claim(engine, credits as usize);
                if !delivered.is_empty() {
                    let bytes = delivered.iter().map(|d| d.message.message.encoded_len());
                    self.topic.quota.consumed(bytes.sum::<usize>() as u64);
                    return Ok(delivered);
                }
            }
            let now = super::queue::mono_now_ms();
            let timer = queue
                .partitions
                .iter()
                .filter_map(|q| q.lock().next_timer())
                .min();
            // A partition led elsewhere is looked at again every `LEADERSHIP_CHECK_MS`: this node
            // delivers it once it leads it.
            let led_elsewhere = self
                .topic
                .partitions
                .iter()
                .any(|p| !p.delivers_queue())
                .then(|| now + LEADERSHIP_CHECK_MS);
            let sleep = match timer.into_iter().chain(led_elsewhere).min() {
                Some(at) => Either::Left(tokio::time::sleep(std::time::Duration::from_millis(
                    at.saturating_sub(now).max(1) as u64,
                ))),
                None => Either::Right(future::pending()),
            };
            let data = if credits > 0 {
                Either::Left(future::select_all(
                    self.hw.iter_mut().map(|hw| Box::pin(hw.changed())),
                ))
            } else {
                Either::Right(future::pending())
            };
            let credential = match self.credential.as_mut() {
                Some(credential) => Either::Left(credential.changed()),
                None => Either::Right(future::pending()),
            };
            tokio::select! {
                _ = changed => {}
                _ = data => {}
                _ = sleep => {}
                _ = self.topic_state.changed() => {}
                _ = self.closed.changed() => {}
                _ = credential => {}
            }
        }
    }

    /// Claims up to `max` loaded messages, partitions in turn; synchronous, so it cannot be
    /// interrupted between claiming and returning. Messages that used up their deliveries go to
    /// dead-letter tasks.
    fn claim(&mut self, engine: &Engine, max: usize) -> Vec<QueueDelivery> {
        let n = self.topic.partitions.len();
        let mut out = Vec::new();
        let mut budget = Budget::new(max, DELIVERY_BYTES);
        let clock = Clock::now(engine.clock.now_ms());
        for i in 0..n {
            if budget.exhausted() {
                break;
            }
            let p = (self.round_robin + i) % n;
            if !self.topic.partitions[p].delivers_queue() {
                continue;
            }
            let queue = self.queue();
            let settings = &queue.settings;
            let (claimed, dead) = queue.partitions[p].lock().claim(
                &mut budget,
                clock,
                self.member,
                settings.ack_deadline_ms,
                settings.max_deliveries,
                &mut || queue.next_delivery_id(),
            );
            for letter in dead {
                // Not awaited: the claim must not wait; the task finishes on its own.
                drop(engine.spawn_dead_letter(&self.topic, &self.sub, p as u32, letter));
            }
            out.extend(claimed.into_iter().map(|c| QueueDelivery {
                partition: p as u32,
                offset: c.offset,
                delivery_id: c.delivery_id,
                attempt: c.attempt,
                message: c.message,
            }));
        }
        self.round_robin = (self.round_robin + 1) % n.max(1);
        out
    }

    /// Loads more of partition `p` from the log when its window runs low.
    async fn refill(&self, p: usize) -> Result<()> {
        let partition = &self.topic.partitions[p];
        if !partition.delivers_queue() {
            return Ok(());
        }
        let shared = partition.shared().clone();
        let read_pos = {
            let mut q = self.queue().partitions[p].lock();
            q.skip_to(shared.log_start());
            if q.unsettled() >= WINDOW || q.read_pos() >= shared.high_watermark() {
                return Ok(());
            }
            q.read_pos()
        };
        let batches = shared.read(read_pos, REFILL_BATCHES, REFILL_BYTES).await?;
        let mut loaded = Vec::new();
        for batch in batches {
            let decoded = rapidmq_proto::batch::decode(batch.payload.clone())
                .map_err(|err| Error::internal(format!("stored batch does not decode: {err}")))?;
            for (i, message) in decoded.messages.into_iter().enumerate() {
                let offset = batch.base_offset + i as u64;
                if offset >= read_pos {
                    loaded.push((
                        offset,
                        Arc::new(QueuedMessage {
                            message,
                            append_time_ms: batch.append_time_ms,
                            base_timestamp_ms: decoded.base_timestamp_ms,
                        }),
                    ));
                }
            }
        }
        let mut q = self.queue().partitions[p].lock();
        if q.read_pos() == read_pos {
            q.load(loaded);
        }
        Ok(())
    }

    /// Acknowledges deliveries; returns how many receipts were unknown.
    pub fn ack(&self, receipts: &[ReceiptRef]) -> usize {
        let queue = self.queue();
        receipts
            .iter()
            .filter(|r| {
                queue
                    .partitions
                    .get(r.partition as usize)
                    .is_none_or(|q| q.lock().ack(r.offset, r.delivery_id) == Settle::Unknown)
            })
            .count()
    }

    /// Gives deliveries back for redelivery after `delay_ms`; returns how many were unknown,
    /// once the dead letters a last allowed attempt makes are stored. A delay above
    /// `queue.max_nack_delay_ms` is refused (`INVALID_ARGUMENT`) and settles nothing.
    pub async fn nack(
        &self,
        engine: &Engine,
        receipts: &[ReceiptRef],
        delay_ms: u64,
    ) -> Result<usize> {
        check_nack_delay(engine, delay_ms)?;
        let queue = self.queue();
        let max_deliveries = queue.settings.max_deliveries;
        let mut unknown = 0;
        let mut dead_letters = Vec::new();
        for r in receipts {
            let Some(partition) = queue.partitions.get(r.partition as usize) else {
                unknown += 1;
                continue;
            };
            let outcome = partition.lock().nack(
                r.offset,
                r.delivery_id,
                super::queue::mono_now_ms(),
                delay_ms,
                max_deliveries,
            );
            match outcome {
                Settle::Done => {}
                Settle::Unknown => unknown += 1,
                Settle::DeadLetter(letter) => dead_letters.extend(engine.spawn_dead_letter(
                    &self.topic,
                    &self.sub,
                    r.partition,
                    letter,
                )),
            }
        }
        queue.changed.notify_waiters();
        // Dropping this future (the stream closed) does not cancel the dead letters.
        for task in dead_letters {
            let _ = task.await;
        }
        Ok(unknown)
    }

    /// Pushes ack deadlines out to now + `extend_ms`; returns how many receipts were unknown.
    /// An extension above `queue.max_ack_extension_ms` is refused (`INVALID_ARGUMENT`).
    pub fn extend(
        &self,
        engine: &Engine,
        receipts: &[ReceiptRef],
        extend_ms: u64,
    ) -> Result<usize> {
        check_extension(engine, extend_ms)?;
        let queue = self.queue();
        Ok(receipts
            .iter()
            .filter(|r| {
                queue.partitions.get(r.partition as usize).is_none_or(|q| {
                    q.lock().extend(
                        r.offset,
                        r.delivery_id,
                        super::queue::mono_now_ms(),
                        extend_ms,
                    ) == Settle::Unknown
                })
            })
            .count())
    }

    /// A guard over `deliveries` about to be buffered for the consumer: see [`Undelivered`].
    pub fn undelivered(&self, deliveries: &[QueueDelivery]) -> Undelivered {
        Undelivered {
            sub: self.sub.clone(),
            receipts: deliveries
                .iter()
                .map(|d| ReceiptRef {
                    partition: d.partition,
                    offset: d.offset,
                    delivery_id: d.delivery_id,
                })
                .collect(),
        }
    }
}

/// Refuses a nack delay above `queue.max_nack_delay_ms`.
pub(super) fn check_nack_delay(engine: &Engine, delay_ms: u64) -> Result<()> {
    let max = engine.config.queue.max_nack_delay_ms;
    if delay_ms > max {
        return Err(Error::invalid(format!(
            "nack delay_ms {delay_ms} is above the broker's limit of {max} ms (queue.max_nack_delay_ms)"
        )));
    }
    Ok(())
}

/// Refuses an ack deadline extension above `queue.max_ack_extension_ms`.
pub(super) fn check_extension(engine: &Engine, extend_ms: u64) -> Result<()> {
    let max = engine.config.queue.max_ack_extension_ms;
    if extend_ms > max {
        return Err(Error::invalid(format!(
            "extend_ms {extend_ms} is above the broker's limit of {max} ms (queue.max_ack_extension_ms)"
        )));
    }
    Ok(())
}

/// Claims handed to a transport but not yet to the consumer. Dropped while still armed (the
/// stream closed with the deliveries still buffered), it takes the claims back: the messages are
/// ready again for the other members and the attempts do not count, so a consumer hanging up
/// never burns deliveries it did not get. [`Undelivered::sent`] disarms it once the transport
/// takes the deliveries to write them out.
#[must_use]
pub struct Undelivered {
    sub: Arc<Subscription>,
    receipts: Vec<ReceiptRef>,
}

impl Undelivered {
    /// The deliveries reached the consumer's stream: they count as delivered from now on.
    pub fn sent(mut self) {
        self.receipts.clear();
    }
}

impl Drop for Undelivered {
    fn drop(&mut self) {
        let Some(queue) = &self.sub.queue else {
            return;
        };
        let mut taken_back = false;
        for r in &self.receipts {
            if let Some(partition) = queue.partitions.get(r.partition as usize) {
                taken_back |= partition.lock().unclaim(r.offset, r.delivery_id);
            }
        }
        if taken_back {
            queue.changed.notify_waiters();
        }
    }
}

impl Drop for QueueSession {
    fn drop(&mut self) {
        if let Some(queue) = &self.sub.queue {
            queue.leave(self.member);
        }
    }
}
