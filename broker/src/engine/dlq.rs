//! Dead letters: moving a queue message that used up its deliveries to the subscription's
//! dead-letter topic (created on first use, one partition), listing what is there, and replaying
//! it to the topics the messages came from.
//!
//! A dead letter is the original message with headers saying where it came from and why
//! (`rapidmq-dlq-*`), and without delay or TTL, so it neither waits nor vanishes. Which dead
//! letters have been replayed is a stream subscription named `rapidmq-replay` on the dead-letter
//! topic.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use rapidmq_proto::v1 as pb;
use rapidmq_proto::{ErrorCode, partition_for_key};

use super::queue::DeadLetter;
use super::subscription::Subscription;
use super::topic::{Topic, TopicSpec};
use super::{Engine, PublishParams, StartPosition, SubscriptionMode, now_ms};
use crate::error::{Error, Result};
use crate::principal::Principal;

pub const HEADER_TOPIC: &str = "rapidmq-dlq-topic";
pub const HEADER_SUBSCRIPTION: &str = "rapidmq-dlq-subscription";
pub const HEADER_PARTITION: &str = "rapidmq-dlq-partition";
pub const HEADER_OFFSET: &str = "rapidmq-dlq-offset";
pub const HEADER_REASON: &str = "rapidmq-dlq-reason";
pub const HEADER_ATTEMPTS: &str = "rapidmq-dlq-attempts";
const REPLAY_CURSOR: &str = "rapidmq-replay";

/// A dead letter as listed.
#[derive(Debug, Clone)]
pub struct DeadLetterInfo {
    /// Partition and offset in the dead-letter topic.
    pub dlq_partition: u32,
    pub offset: u64,
    pub original_topic: String,
    pub original_partition: u32,
    pub original_offset: u64,
    pub reason: String,
    pub attempts: u32,
    pub message: pb::Message,
}

fn header(message: &pb::Message, key: &str) -> Option<String> {
    message
        .headers
        .iter()
        .rev()
        .find(|h| h.key == key)
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
}

impl Engine {
    /// Dead-letters `letter` in a task of its own. The slot is `DeadLettering` until the append
    /// is done; run inline, a consumer stream closing meanwhile would cancel it half-way and leave
    /// the message stuck there (neither queued nor dead-lettered), holding its partition back.
    /// Await the handle to answer once the letter is stored; dropping it does not cancel the task.
    pub(super) fn spawn_dead_letter(
        &self,
        topic: &Arc<Topic>,
        sub: &Arc<Subscription>,
        partition: u32,
        letter: DeadLetter,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let Some(engine) = self.this.upgrade() else {
            // The engine is being dropped: the message stays queued.
            if let Some(q) = sub
                .queue
                .as_ref()
                .and_then(|q| q.partitions.get(partition as usize))
            {
                q.lock().dead_lettered(letter.offset, false);
            }
            return None;
        };
        let (topic, sub) = (topic.clone(), sub.clone());
        Some(self.runtime.spawn(async move {
            engine.dead_letter(&topic, &sub, partition, letter).await;
        }))
    }

    /// Appends `letter` to the subscription's dead-letter topic and settles it; on failure it
    /// goes back to the queue to be tried again.
    pub(super) async fn dead_letter(
        &self,
        topic: &Arc<Topic>,
        sub: &Arc<Subscription>,
        partition: u32,
        letter: DeadLetter,
    ) {
        let Some(queue) = &sub.queue else { return };
        let result = self
            .append_dead_letter(topic, sub, partition, &letter)
            .await;
        if let Err(err) = &result {
            tracing::warn!(topic = %topic.name(), subscription = %sub.name(), partition, offset = letter.offset, cause = %err, "dead-lettering failed; the message stays queued");
        } else {
            tracing::info!(topic = %topic.name(), subscription = %sub.name(), partition, offset = letter.offset, attempts = letter.attempts, "message dead-lettered");
            self.observe_dead_letter(
                topic,
                sub.name(),
                partition,
                letter.offset,
                letter.attempts,
                &letter.message.message,
            );
        }
        if let Some(q) = queue.partitions.get(partition as usize) {
            q.lock().dead_lettered(letter.offset, result.is_ok());
        }
        if result.is_err() {
            queue.changed.notify_waiters();
        }
    }

    async fn append_dead_letter(
        &self,
        topic: &Topic,
        sub: &Subscription,
        partition: u32,
        letter: &DeadLetter,
    ) -> Result<()> {
        let queue = sub
            .queue
            .as_ref()
            .ok_or_else(|| Error::internal("not a queue subscription"))?;
        let principal = Principal::system(topic.tenant.clone());
        let dlq = self
            .ensure_topic(&principal, &queue.settings.dead_letter_topic)
            .await?;
        let mut message = letter.message.message.clone();
        message.deliver_at_ms = 0;
        message.delay_ms = 0;
        message.ttl_ms = 0;
        let mut add = |key: &str, value: String| {
            message.headers.push(pb::Header {
                key: key.into(),
                value: Bytes::from(value),
            })
        };
        add(HEADER_TOPIC, topic.name().to_string());
        add(HEADER_SUBSCRIPTION, sub.name().to_string());
        add(HEADER_PARTITION, partition.to_string());
        add(HEADER_OFFSET, letter.offset.to_string());
        add(HEADER_REASON, letter.reason.to_string());
        add(HEADER_ATTEMPTS, letter.attempts.to_string());
        let target = if message.key.is_empty() {
            0
        } else {
            partition_for_key(&message.key, dlq.partitions.len() as u32)
        };
        let batch = pb::MessageBatch {
            messages: vec![message],
            base_timestamp_ms: letter.message.base_timestamp_ms,
            compression: 0,
        };
        self.publish(
            &principal,
            PublishParams {
                topic: dlq.name().to_string(),
                partition: target,
                producer_id: 0,
                base_sequence: 0,
                batch: Bytes::from(batch.encode_to_vec()),
            },
        )
        .await?;
        Ok(())
    }

    /// The topic `name`, created with one partition if it does not exist.
    async fn ensure_topic(&self, principal: &Principal, name: &str) -> Result<Arc<Topic>> {
        if let Ok(topic) = self.topic(principal, name) {
            return Ok(topic);
        }
        match self
            .create_topic(
                principal,
                name,
                TopicSpec {
                    partitions: Some(1),
                    ..TopicSpec::default()
                },
            )
            .await
        {
            Ok(_) => {}
            Err(err) if err.code() == ErrorCode::TopicAlreadyExists => {}
            Err(err) => return Err(err),
        }
        self.topic(principal, name)
    }

    /// Dead letters not yet replayed, oldest first, at most `max`. Only reads: before the first
    /// replay creates the replay cursor, every retained dead letter is pending.
    pub async fn list_dead_letters(
        &self,
        principal: &Principal,
        dlq_topic: &str,
        max: usize,
    ) -> Result<Vec<DeadLetterInfo>> {
        let topic = self.topic(principal, dlq_topic)?;
        let cursor = topic.subscriptions.read().get(REPLAY_CURSOR).cloned();
        let mut out = Vec::new();
        for partition in &topic.partitions {
            let p = partition.shared().index;
            let log_start = partition.shared().log_start();
            let mut offset = cursor
                .as_ref()
                .map_or(log_start, |c| c.committed(p).max(log_start));
            while out.len() < max {
                let fetched = self
                    .fetch(principal, dlq_topic, p, offset, 1000, Duration::ZERO)
                    .await?;
                if fetched.deliveries.is_empty() {
                    break;
                }
                for delivery in fetched.deliveries {
                    let decoded =
                        pb::MessageBatch::decode(delivery.payload.clone()).map_err(|err| {
                            Error::internal(format!("stored batch does not decode: {err}"))
                        })?;
                    for (i, message) in decoded
                        .messages
                        .into_iter()
                        .enumerate()
                        .skip(delivery.skip as usize)
                        .take(delivery.count as usize)
                    {
                        offset = delivery.base_offset + i as u64 + 1;
                        if out.len() < max {
                            out.push(DeadLetterInfo {
                                dlq_partition: p,
                                offset: delivery.base_offset + i as u64,
                                original_topic: header(&message, HEADER_TOPIC).unwrap_or_default(),
                                original_partition: header(&message, HEADER_PARTITION)
                                    .and_then(|v| v.parse().ok())
                                    .unwrap_or(0),
                                original_offset: header(&message, HEADER_OFFSET)
                                    .and_then(|v| v.parse().ok())
                                    .unwrap_or(0),
                                reason: header(&message, HEADER_REASON).unwrap_or_default(),
                                attempts: header(&message, HEADER_ATTEMPTS)
                                    .and_then(|v| v.parse().ok())
                                    .unwrap_or(0),
                                message,
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Publishes up to `max` pending dead letters back to their original topics (without the
    /// `rapidmq-dlq-*` headers) and moves the replay cursor past them.
    pub async fn replay_dead_letters(
        &self,
        principal: &Principal,
        dlq_topic: &str,
        max: usize,
    ) -> Result<u32> {
        self.replay_cursor(principal, dlq_topic).await?;
        let letters = self.list_dead_letters(principal, dlq_topic, max).await?;
        let mut replayed = 0;
        let mut commits: Vec<(u32, u64)> = Vec::new();
        for letter in letters {
            // A message without the dead-letter headers (published to this topic directly, or
            // this is no dead-letter topic) has nowhere to go back to: the cursor passes it.
            if letter.original_topic.is_empty() {
                advance(&mut commits, letter.dlq_partition, letter.offset);
                self.commit(principal, dlq_topic, REPLAY_CURSOR, &commits, None)
                    .await?;
                continue;
            }
            let original = self.topic(principal, &letter.original_topic)?;
            let mut message = letter.message;
            message
                .headers
                .retain(|h| !h.key.starts_with("rapidmq-dlq-"));
            let partitions = original.partitions.len() as u32;
            let partition = if message.key.is_empty() {
                letter.original_partition.min(partitions - 1)
            } else {
                partition_for_key(&message.key, partitions)
            };
            let batch = pb::MessageBatch {
                messages: vec![message],
                base_timestamp_ms: now_ms(),
                compression: 0,
            };
            self.publish(
                principal,
                PublishParams {
                    topic: letter.original_topic.clone(),
                    partition,
                    producer_id: 0,
                    base_sequence: 0,
                    batch: Bytes::from(batch.encode_to_vec()),
                },
            )
            .await?;
            advance(&mut commits, letter.dlq_partition, letter.offset);
            replayed += 1;
            self.commit(principal, dlq_topic, REPLAY_CURSOR, &commits, None)
                .await?;
        }
        Ok(replayed)
    }

    /// The replay cursor of `dlq_topic`, created (from the earliest offset) by the first replay.
    async fn replay_cursor(
        &self,
        principal: &Principal,
        dlq_topic: &str,
    ) -> Result<Arc<Subscription>> {
        let topic = self.topic(principal, dlq_topic)?;
        self.get_or_create_subscription(
            &topic,
            REPLAY_CURSOR,
            SubscriptionMode::Stream,
            StartPosition::Earliest,
            None,
            false,
        )
        .await
    }
}

/// Moves the replay cursor of `partition` past `offset`.
fn advance(commits: &mut Vec<(u32, u64)>, partition: u32, offset: u64) {
    match commits.iter_mut().find(|(p, _)| *p == partition) {
        Some(entry) => entry.1 = entry.1.max(offset + 1),
        None => commits.push((partition, offset + 1)),
    }
}
