//! Replaying dead letters: publishing pending letters back to the topics they came from, one
//! bounded page at a time, and moving the replay cursor past each page.
//!
//! A call replays at most `max` letters ([`MAX_REPLAY`] at most), so one request neither runs
//! unbounded nor holds more than a page ([`MAX_PAGE`](super::MAX_PAGE) letters, about
//! [`PAGE_BYTES`](super::page::PAGE_BYTES)) in memory; the answer says how many are still
//! pending, and a client calls again until none are.
//!
//! Within a page, consecutive letters bound for the same partition go out as one batch and all
//! batches are queued before any is awaited, so a page costs a few group commits instead of one
//! fsync per letter; the cursor then moves once. Replay is at least once: a crash between the
//! publish and the cursor's move replays that page again.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use rapidmq_proto::partition_for_key;
use rapidmq_proto::v1 as pb;

use super::super::subscription::Subscription;
use super::super::topic::Topic;
use super::page::{pending_from, read_page};
use super::{DeadLetterInfo, HEADER_PREFIX, MAX_PAGE, REPLAY_CURSOR};
use crate::auth::{Action, Resource};
use crate::engine::{Engine, PublishParams, StartPosition, SubscriptionMode};
use crate::error::{Error, Result};
use crate::principal::Principal;

/// Letters one replay call publishes when the request does not say.
pub const DEFAULT_REPLAY: usize = 1000;
/// Most letters one replay call publishes; a larger `max` is refused.
pub const MAX_REPLAY: usize = 10_000;

/// What one replay call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// Letters published back to their topics.
    pub replayed: u32,
    /// Messages still pending after the replay cursor, over all partitions.
    pub remaining: u64,
}

/// Consecutive letters of one dead-letter partition that go to the same place: one publish.
struct Run {
    dlq_partition: u32,
    /// The last letter's offset in the dead-letter topic.
    last_offset: u64,
    /// Topic and partition to publish to; `None` for messages without the dead-letter headers,
    /// which have nowhere to go back to and are passed over.
    target: Option<(String, u32)>,
    /// Letters in the run.
    count: u32,
    /// Their messages without the dead-letter headers, until they are published.
    messages: Vec<pb::Message>,
}

impl Engine {
    /// Publishes up to `max` (1 to [`MAX_REPLAY`]) pending dead letters back to their original
    /// topics (without the `rapidmq-dlq-*` headers) and moves the replay cursor past them.
    /// Messages without those headers are passed over and count toward `max`, so every call
    /// makes progress. Errors: `TOPIC_NOT_FOUND` (the dead-letter topic, or a letter's original
    /// topic: the cursor stops before that letter), `INVALID_ARGUMENT` (a bad `max`).
    pub async fn replay_dead_letters(
        &self,
        principal: &Principal,
        dlq_topic: &str,
        max: usize,
    ) -> Result<ReplayOutcome> {
        // And `Publish` on each original topic, which `begin_publish` checks per letter.
        self.authorize(principal, Action::Consume, Resource::Topic(dlq_topic))?;
        if max == 0 || max > MAX_REPLAY {
            return Err(Error::invalid(format!(
                "`max` is {max}; one replay publishes 1 to {MAX_REPLAY} dead letters: call again \
                 while `remaining` is above 0"
            )));
        }
        let topic = self.topic(principal, dlq_topic)?;
        // One replay of a topic at a time; the next starts from where this one moved the cursor.
        let _replaying = topic.replays.lock().await;
        let cursor = self.replay_cursor(&topic).await?;
        let mut replayed = 0;
        let mut examined = 0;
        while examined < max {
            let start = pending_from(&topic, Some(&*cursor), None);
            let page = read_page(&topic, start, (max - examined).min(MAX_PAGE)).await?;
            if page.letters.is_empty() {
                break;
            }
            examined += page.letters.len();
            replayed += self.replay_page(principal, &topic, page.letters).await?;
        }
        Ok(ReplayOutcome {
            replayed,
            remaining: pending(&topic, &cursor),
        })
    }

    /// Publishes one page and moves the cursor past it; returns how many were published. On a
    /// failure the cursor moves, in each partition, only past the letters before the first one
    /// that failed, and the error is returned.
    async fn replay_page(
        &self,
        principal: &Principal,
        topic: &Topic,
        letters: Vec<DeadLetterInfo>,
    ) -> Result<u32> {
        let mut runs = Vec::new();
        let mut failure = None;
        for letter in letters {
            match self.target(principal, &letter) {
                Ok(target) => push(&mut runs, letter, target),
                Err(err) => {
                    // Nothing from here on is published, in any partition.
                    failure = Some(err);
                    break;
                }
            }
        }
        // Queue every batch before awaiting any, so they share group commits.
        let mut acks = Vec::with_capacity(runs.len());
        for run in &mut runs {
            let ack = match &run.target {
                None => None,
                Some((original, partition)) => {
                    let batch = pb::MessageBatch {
                        messages: std::mem::take(&mut run.messages),
                        base_timestamp_ms: self.clock.now_ms(),
                        compression: 0,
                        ..Default::default()
                    };
                    let params = PublishParams {
                        topic: original.clone(),
                        partition: *partition,
                        producer_id: 0,
                        base_sequence: 0,
                        batch: Bytes::from(batch.encode_to_vec()),
                    };
                    match self.begin_publish(principal, params).await {
                        Ok(ack) => Some(ack),
                        Err(err) => {
                            failure = Some(err);
                            break;
                        }
                    }
                }
            };
            acks.push(ack);
        }
        let mut commits: Vec<(u32, u64)> = Vec::new();
        let mut failed: Vec<u32> = Vec::new();
        let mut replayed = 0;
        for (run, ack) in runs.iter().zip(acks) {
            let ok = match ack {
                None => true,
                Some(ack) => match ack.await {
                    Ok(_) => true,
                    Err(err) => {
                        failure.get_or_insert(err);
                        false
                    }
                },
            };
            if !ok {
                failed.push(run.dlq_partition);
            }
            if ok && !failed.contains(&run.dlq_partition) {
                advance(&mut commits, run.dlq_partition, run.last_offset);
                if run.target.is_some() {
                    replayed += run.count;
                }
            }
        }
        if !commits.is_empty() {
            self.move_cursor(principal, topic.name(), REPLAY_CURSOR, &commits, None, None)
                .await?;
        }
        match failure {
            Some(err) => Err(err),
            None => Ok(replayed),
        }
    }

    /// Where `letter` goes back to: its original topic, by key or its original partition.
    fn target(
        &self,
        principal: &Principal,
        letter: &DeadLetterInfo,
    ) -> Result<Option<(String, u32)>> {
        if letter.original_topic.is_empty() {
            return Ok(None);
        }
        let resource = Resource::Topic(&letter.original_topic);
        self.authorize(principal, Action::Publish, resource)?;
        let original = self.topic(principal, &letter.original_topic)?;
        let partitions = original.partitions.len() as u32;
        let partition = match &letter.message.key {
            Some(key) => partition_for_key(key, partitions),
            None => letter.original_partition.min(partitions - 1),
        };
        Ok(Some((letter.original_topic.clone(), partition)))
    }

    /// The replay cursor of `topic`, created (from the earliest offset) by the first replay.
    async fn replay_cursor(&self, topic: &Arc<Topic>) -> Result<Arc<Subscription>> {
        self.get_or_create_subscription(
            &Principal::system(topic.tenant.clone()),
            topic,
            REPLAY_CURSOR,
            SubscriptionMode::Stream,
            StartPosition::Earliest,
            None,
            false,
        )
        .await
    }
}

/// Adds `letter` to the last run if it goes to the same place from the same partition, or
/// starts a new run.
fn push(runs: &mut Vec<Run>, letter: DeadLetterInfo, target: Option<(String, u32)>) {
    let mut message = letter.message;
    message
        .headers
        .retain(|h| !h.key.starts_with(HEADER_PREFIX));
    match runs.last_mut() {
        Some(run) if run.dlq_partition == letter.dlq_partition && run.target == target => {
            run.last_offset = letter.offset;
            run.count += 1;
            run.messages.push(message);
        }
        _ => runs.push(Run {
            dlq_partition: letter.dlq_partition,
            last_offset: letter.offset,
            target,
            count: 1,
            messages: vec![message],
        }),
    }
}

/// Messages after the replay cursor (or the log start, if retention passed it), over all
/// partitions: what is left to replay.
fn pending(topic: &Topic, cursor: &Subscription) -> u64 {
    topic
        .partitions
        .iter()
        .enumerate()
        .map(|(p, partition)| {
            let shared = partition.shared();
            let from = cursor.committed(p as u32).max(shared.log_start());
            shared.high_watermark().saturating_sub(from)
        })
        .sum()
}

/// Moves the replay cursor of `partition` past `offset`.
fn advance(commits: &mut Vec<(u32, u64)>, partition: u32, offset: u64) {
    match commits.iter_mut().find(|(p, _)| *p == partition) {
        Some(entry) => entry.1 = entry.1.max(offset + 1),
        None => commits.push((partition, offset + 1)),
    }
}
