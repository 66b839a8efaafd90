//! A consumer session on a queue-mode subscription: messages go one by one to whichever member
//! claims them, within its credits.
//!
//! The session loads each partition's window from the log when it runs low, claims from the
//! partitions in turn, dead-letters messages that used up their deliveries, and otherwise waits —
//! on new data (high-watermark watches), on the subscription's `changed` notification (nacks,
//! members leaving), or until the next ack deadline or nack delay. Dropping it releases its
//! in-flight messages for the other members.

use std::sync::Arc;

use futures::future::{self, Either};
use prost::Message as _;
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1 as pb;
use tokio::sync::watch;

use super::queue::{QueuedMessage, Settle};
use super::subscription::{QueueRuntime, Subscription};
use super::topic::Topic;
use super::{Engine, TopicState, now_ms};
use crate::error::{Error, Result};

/// Messages kept loaded per partition: bounds what is ready or in flight (awaiting an ack) per
/// partition of a queue subscription; one refill may pass it by up to `REFILL_BATCHES` batches.
const WINDOW: usize = 8192;
/// Batches read per window refill.
const REFILL_BATCHES: usize = 32;
const REFILL_BYTES: usize = 4 << 20;

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
        }
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

    /// The next messages, at most `credits` of them. Cancel-safe: messages are only claimed in
    /// the synchronous part, right before they are returned.
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
                let delivered = self.claim(engine, credits as usize).await?;
                if !delivered.is_empty() {
                    return Ok(delivered);
                }
            }
            let now = now_ms();
            let timer = queue
                .partitions
                .iter()
                .filter_map(|q| q.lock().next_timer())
                .min();
            let sleep = match timer {
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
            tokio::select! {
                _ = changed => {}
                _ = data => {}
                _ = sleep => {}
                _ = self.topic_state.changed() => {}
                _ = self.closed.changed() => {}
            }
        }
    }

    async fn claim(&mut self, engine: &Engine, max: usize) -> Result<Vec<QueueDelivery>> {
        let n = self.topic.partitions.len();
        let mut out = Vec::new();
        for i in 0..n {
            if out.len() >= max {
                break;
            }
            let p = (self.round_robin + i) % n;
            self.refill(p).await?;
            let queue = self.queue();
            let settings = queue.settings.clone();
            let (claimed, dead) = queue.partitions[p].lock().claim(
                max - out.len(),
                now_ms(),
                self.member,
                settings.ack_deadline_ms,
                settings.max_deliveries,
                &mut || queue.next_delivery_id(),
            );
            for letter in dead {
                engine
                    .dead_letter(&self.topic, &self.sub, p as u32, letter)
                    .await;
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
        Ok(out)
    }

    /// Loads more of partition `p` from the log when its window runs low.
    async fn refill(&self, p: usize) -> Result<()> {
        let shared = self.topic.partitions[p].shared().clone();
        let read_pos = {
            let mut q = self.queue().partitions[p].lock();
            q.skip_to(shared.log_start());
            if q.window_len() >= WINDOW || q.read_pos() >= shared.high_watermark() {
                return Ok(());
            }
            q.read_pos()
        };
        let batches = shared.read(read_pos, REFILL_BATCHES, REFILL_BYTES).await?;
        let mut loaded = Vec::new();
        for batch in batches {
            let decoded = pb::MessageBatch::decode(batch.payload.clone())
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

    /// Gives deliveries back for redelivery after `delay_ms`; returns how many were unknown.
    pub async fn nack(&self, engine: &Engine, receipts: &[ReceiptRef], delay_ms: u64) -> usize {
        let queue = self.queue();
        let max_deliveries = queue.settings.max_deliveries;
        let mut unknown = 0;
        for r in receipts {
            let Some(partition) = queue.partitions.get(r.partition as usize) else {
                unknown += 1;
                continue;
            };
            let outcome =
                partition
                    .lock()
                    .nack(r.offset, r.delivery_id, now_ms(), delay_ms, max_deliveries);
            match outcome {
                Settle::Done => {}
                Settle::Unknown => unknown += 1,
                Settle::DeadLetter(letter) => {
                    engine
                        .dead_letter(&self.topic, &self.sub, r.partition, letter)
                        .await
                }
            }
        }
        queue.changed.notify_waiters();
        unknown
    }

    /// Pushes ack deadlines out to now + `extend_ms`; returns how many receipts were unknown.
    pub fn extend(&self, receipts: &[ReceiptRef], extend_ms: u64) -> usize {
        let queue = self.queue();
        receipts
            .iter()
            .filter(|r| {
                queue.partitions.get(r.partition as usize).is_none_or(|q| {
                    q.lock()
                        .extend(r.offset, r.delivery_id, now_ms(), extend_ms)
                        == Settle::Unknown
                })
            })
            .count()
    }
}

impl Drop for QueueSession {
    fn drop(&mut self) {
        if let Some(queue) = &self.sub.queue {
            queue.leave(self.member);
        }
    }
}
