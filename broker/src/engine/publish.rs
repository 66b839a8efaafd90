//! Turning a validated producer batch into an [`AppendRequest`].
//!
//! The common case stores the producer's bytes as they are. Two features need the broker to
//! look inside: delayed messages (`deliver_at_ms`/`delay_ms`) go to the persisted schedule
//! instead of the log, and on topics with a dedup window, messages whose `msg-id` was seen within
//! the window are dropped. Such batches are decoded, split and the rest re-encoded; everything —
//! log batch, schedule entries, dedup records — is still committed in one write.

use bytes::Bytes;
use prost::Message as _;
use rapidmq_proto::v1 as pb;

use super::batch::{BatchSummary, FLAG_TRACED, FLAG_TTL, MSG_ID_HEADER, TRACEPARENT_HEADER};
use super::dedup::Dedup;
use super::keys;
use super::partition::AppendRequest;
use crate::error::{Error, Result};
use crate::storage::Cf;

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
    let decoded = pb::MessageBatch::decode(payload)
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
            request.extra.put(
                Cf::Dedup,
                keys::dedup_key(target.topic_id, &id),
                Bytes::copy_from_slice(&expires.to_be_bytes()),
            );
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
            };
            let key = keys::schedule_key(due, target.topic_id, target.partition, rand_nonce());
            request
                .extra
                .put(Cf::Schedule, key, Bytes::from(single.encode_to_vec()));
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

/// A nonce that keeps schedule keys with the same due time, topic and partition apart.
fn rand_nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // Time-seeded so keys written by an earlier run of the broker never collide with new ones.
    let seq = COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = super::now_ms() as u64;
    (now << 20) ^ seq
}

/// Merges due one-message batches into one batch for a partition, keeping each message's
/// timestamp. Returns the payload, its message count and header flags.
pub fn merge_due(batches: &[Bytes]) -> Result<(Bytes, u32, u8)> {
    let mut messages = Vec::with_capacity(batches.len());
    let mut base = i64::MAX;
    let mut decoded_all = Vec::with_capacity(batches.len());
    for bytes in batches {
        let decoded = pb::MessageBatch::decode(bytes.clone())
            .map_err(|err| Error::internal(format!("schedule entry does not decode: {err}")))?;
        base = base.min(decoded.base_timestamp_ms);
        decoded_all.push(decoded);
    }
    let mut flags = 0;
    for decoded in decoded_all {
        for mut message in decoded.messages {
            message.timestamp_delta_ms =
                decoded.base_timestamp_ms + message.timestamp_delta_ms - base;
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
    }
    let count = messages.len() as u32;
    let merged = pb::MessageBatch {
        messages,
        base_timestamp_ms: if base == i64::MAX { 0 } else { base },
        compression: 0,
    };
    Ok((Bytes::from(merged.encode_to_vec()), count, flags))
}
