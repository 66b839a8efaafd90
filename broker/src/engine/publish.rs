//! The publish path: [`Engine::begin_publish`] (and its paced form for streams) checks the
//! caller, the partition, the batch and the tenant's quotas, then turns the batch into an
//! [`AppendRequest`] queued on the partition.
//!
//! The common case stores the producer's bytes as they are. Two features need the broker to
//! look inside: delayed messages (`deliver_at_ms`/`delay_ms`) go to the persisted schedule
//! instead of the log, and on topics with a dedup window, messages whose `msg-id` was seen within
//! the window are dropped. Such batches are decoded, split and the rest re-encoded; everything —
//! log batch, schedule entries, dedup records — is still committed in one write.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::Either;
use prost::Message;
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1::{self as pb, LeaderHint};
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

use super::batch::{self, BatchSummary, FLAG_TRACED, FLAG_TTL, MSG_ID_HEADER, TRACEPARENT_HEADER};
use super::dedup::Dedup;
use super::partition::{AppendAck, AppendExtra, AppendRequest, Partition};
use super::topic::Topic;
use super::{Engine, PublishAck, PublishParams, keys, observe};
use crate::auth::{Action, Resource};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::principal::{Principal, TenantId};

/// An append ready to queue, and what the producer's ack must report besides offsets.
pub struct Prepared {
    pub request: AppendRequest,
    /// Messages that went to the schedule.
    pub scheduled: u32,
    /// Indexes within the producer's batch of messages dropped as msg-id duplicates.
    pub deduplicated: Vec<u32>,
    /// msg-ids reserved by this batch; released if the append fails.
    pub reserved: Vec<Bytes>,
    /// Value bytes of the messages dropped as duplicates (not counted as published).
    pub deduplicated_bytes: u64,
}

pub struct Target<'a> {
    pub topic_id: u32,
    pub partition: u32,
    pub dedup_window_ms: u64,
    pub dedup: &'a Dedup,
}

pub fn prepare(
    target: &Target<'_>,
    payload: Bytes,
    summary: BatchSummary,
    now_ms: i64,
) -> Result<Prepared> {
    let flags =
        if summary.ttl { FLAG_TTL } else { 0 } | if summary.traced { FLAG_TRACED } else { 0 };
    let dedup_on = target.dedup_window_ms > 0 && summary.msg_ids;
    if !summary.scheduled && !dedup_on {
        return Ok(Prepared {
            request: AppendRequest::batch(payload, summary.count, flags),
            scheduled: 0,
            deduplicated: Vec::new(),
            reserved: Vec::new(),
            deduplicated_bytes: 0,
        });
    }
    let decoded = rapidmq_proto::batch::decode(payload)
        .map_err(|err| Error::malformed(format!("batch does not decode: {err}")))?;
    let base_timestamp_ms = decoded.base_timestamp_ms;
    let mut request = AppendRequest::batch(Bytes::new(), 0, flags);
    request.sequence_span = summary.count;
    let mut immediate = Vec::with_capacity(decoded.messages.len());
    let mut prepared_scheduled = 0;
    let mut deduplicated = Vec::new();
    let mut reserved = Vec::new();
    let mut deduplicated_bytes = 0;
    let expires = now_ms.saturating_add(i64::try_from(target.dedup_window_ms).unwrap_or(i64::MAX));
    for (index, mut message) in decoded.messages.into_iter().enumerate() {
        if dedup_on
            && let Some(id) = message
                .headers
                .iter()
                .find(|h| h.key == MSG_ID_HEADER)
                .map(|h| h.value.clone())
        {
            if !target
                .dedup
                .reserve(target.topic_id, &id, now_ms, expires)?
            {
                deduplicated.push(index as u32);
                deduplicated_bytes += message.value.len() as u64;
                continue;
            }
            request.extras.push(AppendExtra::Dedup {
                msg_id: id.clone(),
                expires_ms: expires,
            });
            reserved.push(id);
        }
        let due = if message.delay_ms > 0 {
            now_ms.saturating_add(i64::try_from(message.delay_ms).unwrap_or(i64::MAX))
        } else {
            message.deliver_at_ms
        };
        if due > 0 {
            message.deliver_at_ms = due;
            message.delay_ms = 0;
            let single = pb::MessageBatch {
                messages: vec![message],
                base_timestamp_ms,
                compression: 0,
                ..Default::default()
            };
            let key = keys::schedule_key(due, target.topic_id, target.partition, rand_nonce());
            let batch = Bytes::from(single.encode_to_vec());
            request.extras.push(AppendExtra::Schedule { key, batch });
            prepared_scheduled += 1;
        } else {
            immediate.push(message);
        }
    }
    if !immediate.is_empty() {
        request.count = immediate.len() as u32;
        let rest = pb::MessageBatch {
            messages: immediate,
            base_timestamp_ms,
            compression: 0,
            ..Default::default()
        };
        request.payload = Bytes::from(rest.encode_to_vec());
    }
    request.deduplicated = deduplicated.clone();
    Ok(Prepared {
        request,
        scheduled: prepared_scheduled,
        deduplicated,
        reserved,
        deduplicated_bytes,
    })
}

/// Checks an idempotent producer's sequence numbers: the batch takes `count` of them from
/// `base_sequence` on, and the next expected sequence (`base_sequence + count`) must fit in a
/// `u64`. Non-idempotent publishes (`producer_id` 0) carry no sequence.
pub fn check_sequence(producer_id: u64, base_sequence: u64, count: u32) -> Result<()> {
    if producer_id != 0 && base_sequence.checked_add(u64::from(count)).is_none() {
        return Err(Error::invalid(format!(
            "base_sequence {base_sequence} plus the batch's {count} messages is beyond the largest \
             sequence number (2^64 - 1)"
        )));
    }
    Ok(())
}

/// `params`' partition of `topic`.
fn topic_partition<'t>(topic: &'t Topic, params: &PublishParams) -> Result<&'t Partition> {
    topic.partition(params.partition).ok_or_else(|| {
        Error::new(
            ErrorCode::PartitionNotFound,
            format!(
                "topic `{}` has {} partitions; there is no partition {}",
                params.topic,
                topic.partitions.len(),
                params.partition
            ),
        )
    })
}

/// A producer batch one node hands to the leader of its partition as the producer sent it
/// (`Cluster.Publish`), for the leader's msg-id dedup check. The node that took it authorised
/// it and charged its tenant's quotas.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardedPublish {
    pub tenant: String,
    pub params: PublishParams,
}

/// The leader's answer to a [`ForwardedPublish`], as it travels back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardedAnswer {
    Ack {
        ack: AppendAck,
        scheduled: u32,
        deduplicated: Vec<u32>,
    },
    Error {
        /// The stable [`ErrorCode`] number.
        code: u32,
        message: String,
        retry_after_ms: Option<u64>,
        /// An encoded `LeaderHint`.
        leader_hint: Option<Vec<u8>>,
    },
}

impl From<Result<PublishAck>> for ForwardedAnswer {
    fn from(result: Result<PublishAck>) -> ForwardedAnswer {
        match result {
            Ok(ack) => ForwardedAnswer::Ack {
                ack: ack.ack,
                scheduled: ack.scheduled,
                deduplicated: ack.deduplicated,
            },
            Err(err) => ForwardedAnswer::Error {
                code: err.code().code(),
                message: err.message().to_string(),
                retry_after_ms: err
                    .retry_after()
                    .map(|after| u64::try_from(after.as_millis()).unwrap_or(u64::MAX)),
                leader_hint: err.leader_hint().map(Message::encode_to_vec),
            },
        }
    }
}

impl From<ForwardedAnswer> for Result<PublishAck> {
    /// The ack without a leader hint: the node that forwarded adds its own.
    fn from(answer: ForwardedAnswer) -> Result<PublishAck> {
        match answer {
            ForwardedAnswer::Ack {
                ack,
                scheduled,
                deduplicated,
            } => Ok(PublishAck {
                ack,
                scheduled,
                deduplicated,
                leader_hint: None,
            }),
            ForwardedAnswer::Error {
                code,
                message,
                retry_after_ms,
                leader_hint,
            } => {
                let code = ErrorCode::from_code(code).unwrap_or(ErrorCode::Internal);
                let mut err = Error::new(code, message);
                if let Some(after) = retry_after_ms {
                    err = err.with_retry_after(Duration::from_millis(after));
                }
                if let Some(hint) = leader_hint.and_then(|hint| LeaderHint::decode(&hint[..]).ok())
                {
                    err = err.with_leader_hint(hint);
                }
                Err(err)
            }
        }
    }
}

/// A nonce that keeps schedule keys with the same due time, topic and partition apart.
fn rand_nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // Time-seeded so keys written by an earlier run of the broker never collide with new ones.
    let seq = COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = SystemClock.now_ms() as u64;
    (now << 20) ^ seq
}

/// Merges due one-message batches into one batch for a partition, keeping each message's
/// producer timestamp exactly. Returns the payload, its message count and header flags.
pub fn merge_due(batches: &[Bytes]) -> Result<(Bytes, u32, u8)> {
    let mut timestamped = Vec::with_capacity(batches.len());
    for bytes in batches {
        let decoded = rapidmq_proto::batch::decode(bytes.clone())
            .map_err(|err| Error::internal(format!("schedule entry does not decode: {err}")))?;
        for message in decoded.messages {
            // Validated batches keep base + delta within i64; saturate for entries scheduled
            // before that check.
            let timestamp = decoded
                .base_timestamp_ms
                .saturating_add(message.timestamp_delta_ms);
            timestamped.push((timestamp, message));
        }
    }
    let base = common_base(timestamped.iter().map(|(timestamp, _)| *timestamp));
    let mut flags = 0;
    let mut messages = Vec::with_capacity(timestamped.len());
    for (timestamp, mut message) in timestamped {
        message.timestamp_delta_ms =
            i64::try_from(i128::from(timestamp) - i128::from(base)).unwrap_or(i64::MAX);
        if message.ttl_ms > 0 {
            flags |= FLAG_TTL;
        }
        if message
            .headers
            .iter()
            .any(|h| h.key == MSG_ID_HEADER || h.key == TRACEPARENT_HEADER)
        {
            flags |= FLAG_TRACED;
        }
        messages.push(message);
    }
    let count = messages.len() as u32;
    let merged = pb::MessageBatch {
        messages,
        base_timestamp_ms: base,
        compression: 0,
        ..Default::default()
    };
    Ok((Bytes::from(merged.encode_to_vec()), count, flags))
}

/// A base timestamp from which every one of `timestamps` is an `i64` delta: the lowest, unless
/// they span more than `i64::MAX`; then the lowest is negative and the base is 2^63 above it, so
/// the deltas run from `i64::MIN` up to at most `i64::MAX`. 0 when there are none.
fn common_base(timestamps: impl Iterator<Item = i64> + Clone) -> i64 {
    let (Some(lowest), Some(highest)) = (timestamps.clone().min(), timestamps.max()) else {
        return 0;
    };
    if i128::from(highest) - i128::from(lowest) <= i128::from(i64::MAX) {
        lowest
    } else {
        i64::try_from(i128::from(lowest) + (1i128 << 63)).unwrap_or(0)
    }
}

impl Engine {
    /// Validates a batch and queues it for the partition's next group commit. The returned future
    /// resolves with the acknowledgement. Queueing happens before this returns, so callers that
    /// queue in order get offsets in that order.
    pub async fn begin_publish(
        &self,
        principal: &Principal,
        params: PublishParams,
    ) -> Result<impl Future<Output = Result<PublishAck>> + use<>> {
        self.begin_publish_paced(principal, params, None).await
    }

    /// [`Engine::begin_publish`] for a stream, which keeps to its tenant's publish rates by
    /// waiting rather than being refused: `pace` is set to how long to wait before reading the
    /// stream's next request. Without `pace` a publish over the rates is refused.
    ///
    /// Cluster mode, on a topic with a dedup window: a batch with msg-ids goes to the
    /// partition's leader as it was sent ([`ForwardedPublish`]) where this node does not lead,
    /// for the leader's dedup check: only the leader has every id the group accepted, and the
    /// ids its appends in flight reserved.
    pub async fn begin_publish_paced(
        &self,
        principal: &Principal,
        params: PublishParams,
        pace: Option<&mut Duration>,
    ) -> Result<impl Future<Output = Result<PublishAck>> + use<>> {
        self.authorize(principal, Action::Publish, Resource::Topic(&params.topic))?;
        let topic = self.topic(principal, &params.topic)?;
        let partition = topic_partition(&topic, &params)?;
        let now = self.clock.now_ms();
        let started = Instant::now();
        let summary = self.check_batch(&topic, &params, now)?;
        // Quotas come before the partition queue, so a throttled tenant holds nothing there.
        topic.quota.check_storage(self.storage_retry_after())?;
        let (messages, bytes) = (u64::from(summary.count), params.batch.len() as u64);
        match pace {
            Some(pace) => *pace = topic.quota.publish_delay(messages, bytes),
            None => topic.quota.admit_publish(messages, bytes)?,
        }
        if summary.msg_ids
            && topic.settings().dedup_window_ms > 0
            && partition.publishes_via_leader()
        {
            let index = params.partition;
            let forwarded = ForwardedPublish {
                tenant: principal.tenant().to_string(),
                params,
            };
            let rx = partition
                .forward_publish(forwarded)
                .await
                .map_err(|err| partition.hinted(err, topic.name()))?;
            let node_id = self.config.cluster.node_id;
            return Ok(Either::Left(async move {
                let answer = rx.await.unwrap_or_else(|_| {
                    Err(Error::unavailable(
                        "the partition closed before the leader answered; retry",
                    ))
                });
                let partition = topic.partition(index);
                match answer {
                    Ok(mut ack) => {
                        ack.leader_hint = partition.and_then(|partition| {
                            partition.leader_elsewhere(topic.name(), node_id)
                        });
                        Ok(ack)
                    }
                    Err(err) => Err(match partition {
                        Some(partition) => partition.hinted(err, topic.name()),
                        None => err,
                    }),
                }
            }));
        }
        let queued = self
            .queue_publish(principal.tenant(), topic, params, summary, now, started)
            .await?;
        Ok(Either::Right(queued))
    }

    /// Publishes a batch another node handed to this one as its producer sent it (that node
    /// authorised it and charged its tenant's quotas): as [`Engine::begin_publish`] from there
    /// on, dedup check included, on this node whether or not it still leads the partition.
    pub async fn begin_forwarded_publish(
        &self,
        forwarded: ForwardedPublish,
    ) -> Result<impl Future<Output = Result<PublishAck>> + use<>> {
        let tenant = TenantId::new(forwarded.tenant);
        let params = forwarded.params;
        let topic = self.topic(&Principal::system(tenant.clone()), &params.topic)?;
        topic_partition(&topic, &params)?;
        let now = self.clock.now_ms();
        let summary = self.check_batch(&topic, &params, now)?;
        self.queue_publish(&tenant, topic, params, summary, now, Instant::now())
            .await
    }

    /// Validates `params`' batch against `topic`'s limits and its producer sequence.
    fn check_batch(&self, topic: &Topic, params: &PublishParams, now: i64) -> Result<BatchSummary> {
        let limits = batch::Limits {
            max_message_bytes: topic.settings().max_message_bytes,
            max_batch_bytes: self.config.limits.max_request_bytes,
            now_ms: now,
            max_delay_ms: self.config.limits.max_delay_ms,
        };
        let summary = batch::validate(&params.batch, &limits)?;
        check_sequence(params.producer_id, params.base_sequence, summary.count)?;
        Ok(summary)
    }

    /// Queues a checked batch on its partition (`topic_partition` found it): dedup check,
    /// delayed messages split off, then the append. The future resolves with the ack.
    async fn queue_publish(
        &self,
        tenant: &TenantId,
        topic: Arc<Topic>,
        params: PublishParams,
        mut summary: BatchSummary,
        now: i64,
        started: Instant,
    ) -> Result<impl Future<Output = Result<PublishAck>> + use<>> {
        let partition = topic_partition(&topic, &params)?;
        summary.traced |= self.flow.all_messages;
        let traced_payload = (summary.traced && self.flow.enabled()).then(|| params.batch.clone());
        let target = Target {
            topic_id: topic.id(),
            partition: params.partition,
            dedup_window_ms: topic.settings().dedup_window_ms,
            dedup: &topic.dedup,
        };
        let prepared = prepare(&target, params.batch, summary, now)?;
        let mut request = prepared.request;
        if request.count == summary.count {
            request.value_bytes = Some(summary.value_bytes);
        }
        request.producer_id = params.producer_id;
        request.base_sequence = params.base_sequence;
        if let Some(payload) = traced_payload {
            let (flow, clock, topic, deduplicated) = (
                self.flow.clone(),
                self.clock.clone(),
                topic.clone(),
                prepared.deduplicated.clone(),
            );
            let partition = params.partition;
            request.on_commit = Some(Box::new(move |base_offset| {
                observe::record_publish(
                    &flow,
                    clock.now_ms(),
                    &topic,
                    partition,
                    &payload,
                    base_offset,
                    &deduplicated,
                );
            }));
        }
        let rx = match partition.append(request).await {
            Ok(rx) => rx,
            Err(err) => {
                topic.dedup.release(&prepared.reserved);
                return Err(partition.hinted(err, &params.topic));
            }
        };
        if prepared.scheduled > 0 {
            self.schedule_wake.notify_one();
        }
        let (scheduled, deduplicated, reserved) =
            (prepared.scheduled, prepared.deduplicated, prepared.reserved);
        // Covers the wait for the group commit; the writer's `commit` span has the write itself.
        let span = tracing::debug_span!(
            "publish",
            tenant = %tenant,
            topic = %params.topic,
            partition = params.partition,
            messages = summary.count,
            traced = summary.traced,
        );
        let metrics = self.metrics.clone();
        let node_id = self.config.cluster.node_id;
        let deduplicated_bytes = prepared.deduplicated_bytes;
        let index = params.partition;
        Ok(async move {
            let result = rx
                .await
                .map_err(|_| {
                    Error::unavailable("the partition writer stopped before answering; retry")
                })
                .and_then(|r| r);
            if metrics.enabled
                && let Ok(ack) = &result
                && !ack.duplicate
            {
                let counters = &topic.counters;
                let dropped = deduplicated.len() as u64;
                counters
                    .messages_in
                    .fetch_add(u64::from(summary.count) - dropped, Ordering::Relaxed);
                counters
                    .bytes_in
                    .fetch_add(summary.value_bytes - deduplicated_bytes, Ordering::Relaxed);
                if dropped > 0 {
                    counters.dedup_hits.fetch_add(dropped, Ordering::Relaxed);
                }
                metrics.publish_latency.observe_duration(started.elapsed());
            }
            let leader_hint = || {
                topic
                    .partition(index)
                    .and_then(|partition| partition.leader_elsewhere(topic.name(), node_id))
            };
            match result {
                // A duplicate is answered as its original was, not as this retry was split.
                Ok(ack) if ack.duplicate => Ok(PublishAck {
                    deduplicated: ack.deduplicated.clone(),
                    ack,
                    scheduled,
                    leader_hint: leader_hint(),
                }),
                Ok(ack) => Ok(PublishAck {
                    ack,
                    scheduled,
                    deduplicated,
                    leader_hint: leader_hint(),
                }),
                Err(err) => {
                    topic.dedup.release(&reserved);
                    Err(match topic.partition(index) {
                        Some(partition) => partition.hinted(err, topic.name()),
                        None => err,
                    })
                }
            }
        }
        .instrument(span))
    }

    /// How many partitions a topic about to be published to has (REST spreads keyless messages
    /// over them): needs `Publish` on it, not `Describe`.
    pub fn publish_partitions(&self, principal: &Principal, topic: &str) -> Result<u32> {
        self.authorize(principal, Action::Publish, Resource::Topic(topic))?;
        Ok(self.topic(principal, topic)?.partitions.len() as u32)
    }

    /// Publishes one batch and waits for its acknowledgement.
    pub async fn publish(
        &self,
        principal: &Principal,
        params: PublishParams,
    ) -> Result<PublishAck> {
        self.begin_publish(principal, params).await?.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a forwarded publish's error says on the leader reaches the node that forwarded it
    /// as the same error: code, message, when to retry, and which node leads.
    #[test]
    fn a_forwarded_error_comes_back_as_it_was() {
        let hint = LeaderHint {
            topic: "orders".into(),
            partition: 2,
            term: 7,
            leader: 3,
            grpc_addr: String::new(),
        };
        let refused = Error::new(ErrorCode::ResourceExhausted, "over the tenant's byte quota")
            .with_retry_after(Duration::from_millis(1500))
            .with_leader_hint(hint.clone());
        let sent = ForwardedAnswer::from(Err(refused));
        let wire = postcard::to_stdvec(&sent).unwrap();
        let answer: Result<PublishAck> = postcard::from_bytes::<ForwardedAnswer>(&wire)
            .unwrap()
            .into();
        let err = answer.expect_err("an error");
        assert_eq!(err.code(), ErrorCode::ResourceExhausted);
        assert_eq!(err.message(), "over the tenant's byte quota");
        assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(err.leader_hint(), Some(&hint));

        // A code this node does not know (a newer leader's) is an internal error, not a panic.
        let unknown = ForwardedAnswer::Error {
            code: 9999,
            message: "something new".into(),
            retry_after_ms: None,
            leader_hint: Some(vec![0xff, 0xff]),
        };
        let err = Result::<PublishAck>::from(unknown).expect_err("an error");
        assert_eq!(err.code(), ErrorCode::Internal);
        assert_eq!(err.message(), "something new");
        assert_eq!(err.leader_hint(), None, "an undecodable hint is dropped");
    }

    fn due(value: &str, base_timestamp_ms: i64, timestamp_delta_ms: i64) -> Bytes {
        let batch = pb::MessageBatch {
            messages: vec![pb::Message {
                value: Bytes::copy_from_slice(value.as_bytes()),
                timestamp_delta_ms,
                ..Default::default()
            }],
            base_timestamp_ms,
            compression: 0,
            ..Default::default()
        };
        Bytes::from(batch.encode_to_vec())
    }

    fn timestamps(payload: Bytes) -> Vec<i128> {
        let merged = rapidmq_proto::batch::decode(payload).unwrap();
        merged
            .messages
            .iter()
            .map(|m| i128::from(merged.base_timestamp_ms) + i128::from(m.timestamp_delta_ms))
            .collect()
    }

    #[test]
    fn merged_due_messages_keep_their_timestamps_even_at_the_ends_of_i64() {
        let cases = [
            vec![(1_700_000_000_000, 5), (1_600_000_000_000, -7), (0, 0)],
            vec![(i64::MIN, 0), (i64::MAX, 0)],
            vec![(i64::MAX, 0), (-1, 0), (i64::MIN, 0), (0, i64::MIN)],
            vec![(i64::MAX, i64::MIN), (i64::MIN, i64::MAX)],
        ];
        for case in cases {
            let batches: Vec<Bytes> = case.iter().map(|&(b, d)| due("m", b, d)).collect();
            let (payload, count, _) = merge_due(&batches).unwrap();
            assert_eq!(count as usize, case.len());
            let expected: Vec<i128> = case
                .iter()
                .map(|&(b, d)| i128::from(b) + i128::from(d))
                .collect();
            assert_eq!(timestamps(payload), expected, "{case:?}");
        }
    }

    #[test]
    fn a_sequence_range_must_end_within_u64() {
        assert!(check_sequence(1, u64::MAX - 3, 3).is_ok());
        let err = check_sequence(1, u64::MAX - 3, 4).unwrap_err();
        assert_eq!(err.code(), rapidmq_proto::ErrorCode::InvalidArgument);
        assert!(
            check_sequence(0, u64::MAX, 4).is_ok(),
            "no producer, no sequence"
        );
    }
}
