//! Reads by offset: `Fetch`, a long-poll on one partition, held to the tenant's consume rate.

use std::time::Duration;

use rapidmq_proto::ErrorCode;

use super::session::Delivery;
use super::{Engine, FetchResult, MAX_FETCH_WAIT};
use crate::auth::{Action, Resource};
use crate::error::{Error, Result};
use crate::principal::Principal;

impl Engine {
    /// Reads a partition from `offset`, waiting up to `max_wait` for data if there is none.
    pub async fn fetch(
        &self,
        principal: &Principal,
        topic: &str,
        partition: u32,
        offset: u64,
        max_messages: u32,
        max_wait: Duration,
    ) -> Result<FetchResult> {
        self.authorize(principal, Action::Consume, Resource::Topic(topic))?;
        let topic = self.topic(principal, topic)?;
        let handle = topic.partition(partition).ok_or_else(|| {
            Error::new(
                ErrorCode::PartitionNotFound,
                format!("topic `{}` has no partition {partition}", topic.name()),
            )
        })?;
        if !handle.is_replica() {
            let err = Error::unavailable(format!(
                "this node holds no replica of partition {partition} of topic `{}`",
                topic.name()
            ));
            return Err(handle.hinted(err, topic.name()));
        }
        let shared = handle.shared().clone();
        let hw = shared.high_watermark();
        if offset > hw {
            return Err(Error::new(
                ErrorCode::OffsetOutOfRange,
                format!(
                    "offset {offset} is past the end of partition {partition} (high watermark {hw})"
                ),
            ));
        }
        let max_messages = if max_messages == 0 {
            1000
        } else {
            max_messages
        };
        let mut watch = shared.watch_high_watermark();
        let max_wait = max_wait.min(MAX_FETCH_WAIT);
        // Over its tenant's consume rate a fetch waits, within its `max_wait`, and answers
        // nothing if the tenant is still over it then.
        if !topic.quota.consume_pause(Some(max_wait)).await {
            return Ok(FetchResult {
                deliveries: Vec::new(),
                high_watermark: shared.high_watermark(),
                log_start_offset: shared.log_start(),
            });
        }
        if offset >= hw && !max_wait.is_zero() {
            let _ = tokio::time::timeout(max_wait, watch.wait_for(|&hw| hw > offset)).await;
        }
        let batches = shared
            .read(offset, 1024, self.config.limits.max_request_bytes / 2)
            .await?;
        let mut deliveries = Vec::new();
        let mut remaining = max_messages;
        let mut next = offset.max(shared.log_start());
        for batch in batches {
            if remaining == 0 {
                break;
            }
            let start = next.max(batch.base_offset);
            if start >= batch.end_offset() {
                continue;
            }
            let skip = (start - batch.base_offset) as u32;
            let count = (batch.count - skip).min(remaining);
            remaining -= count;
            next = start + u64::from(count);
            let delivery = Delivery::of(partition, &batch, skip, count);
            let known = (skip == 0 && count == batch.count)
                .then_some(batch.value_bytes)
                .flatten();
            self.observe_delivery(&topic, None, &delivery, batch.flags, known);
            topic.quota.consumed(delivery.payload.len() as u64);
            deliveries.push(delivery);
        }
        Ok(FetchResult {
            deliveries,
            high_watermark: shared.high_watermark(),
            log_start_offset: shared.log_start(),
        })
    }
}
