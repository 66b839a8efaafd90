//! Dead letters: moving a queue message that used up its deliveries to the subscription's
//! dead-letter topic (created on first use, one partition), listing what is there page by page,
//! and replaying it to the topics the messages came from.
//!
//! A dead letter is the original message with headers saying where it came from and why
//! (`rapidmq-dlq-*`), and without delay or TTL, so it neither waits nor vanishes. Which dead
//! letters have been replayed is a stream subscription named `rapidmq-replay` on the dead-letter
//! topic.
//!
//! Layout:
//! - this file: dead-lettering (the append to the dead-letter topic) and what a letter is.
//! - `page`: reading pending letters a bounded page at a time, and the page token that says
//!   where the next page starts.
//! - `replay`: publishing pages back to their topics and moving the replay cursor past them.

mod page;
mod replay;

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use rapidmq_proto::v1 as pb;
use rapidmq_proto::{ErrorCode, partition_for_key};

use super::queue::DeadLetter;
use super::subscription::Subscription;
use super::topic::{Topic, TopicSpec};
use super::{Engine, PublishParams};
use crate::error::{Error, Result};
use crate::principal::Principal;

pub use page::{DEFAULT_PAGE, DeadLetterPage, MAX_PAGE};
pub use replay::{DEFAULT_REPLAY, MAX_REPLAY, ReplayOutcome};

/// Every header the broker adds to a dead letter starts with this; replay removes them.
pub const HEADER_PREFIX: &str = "rapidmq-dlq-";
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

impl DeadLetterInfo {
    /// The letter at `offset` of `dlq_partition`, with its origin read from its headers. A
    /// message without them (published to the topic directly) has an empty `original_topic`.
    fn new(dlq_partition: u32, offset: u64, message: pb::Message) -> DeadLetterInfo {
        DeadLetterInfo {
            dlq_partition,
            offset,
            original_topic: header(&message, HEADER_TOPIC).unwrap_or_default(),
            original_partition: number(&message, HEADER_PARTITION),
            original_offset: number(&message, HEADER_OFFSET),
            reason: header(&message, HEADER_REASON).unwrap_or_default(),
            attempts: number(&message, HEADER_ATTEMPTS),
            message,
        }
    }
}

fn header(message: &pb::Message, key: &str) -> Option<String> {
    message
        .headers
        .iter()
        .rev()
        .find(|h| h.key == key)
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
}

/// A numeric header, 0 when it is missing or not a number of its type.
fn number<T: std::str::FromStr + Default>(message: &pb::Message, key: &str) -> T {
    header(message, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
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
        let target = match &message.key {
            Some(key) => partition_for_key(key, dlq.partitions.len() as u32),
            None => 0,
        };
        let batch = pb::MessageBatch {
            messages: vec![message],
            base_timestamp_ms: letter.message.base_timestamp_ms,
            compression: 0,
            ..Default::default()
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
}
