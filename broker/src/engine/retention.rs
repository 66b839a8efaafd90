//! Retention: a background task that, every `retention.check_interval_ms`, drops the oldest whole
//! batches of each partition that are past any of its topic's limits (age, bytes, messages), and
//! msg-id dedup records whose window has passed.
//!
//! A batch is dropped when all its messages are past a limit: older than `retention_ms` (batches
//! share one append time), outside the newest `retention_messages`, or while the partition holds
//! more than `retention_bytes`. Truncation goes through the partition's writer, like appends; in
//! cluster mode, only on a partition group's leader, which proposes it to the group.

use super::Engine;
use std::sync::Arc;

use super::partition::Partition;
use super::topic::TopicSettings;
use crate::clock::Clock;
use crate::error::Result;

const SCAN_CHUNK: usize = 1024;

/// One retention pass over every partition: expire old producer state, drop batches past the
/// limits. Runs every `retention.check_interval_ms`.
pub async fn enforce_all(engine: &Engine) {
    if !engine.background_writes_ready() {
        return;
    }
    let producer_ttl = engine.config.storage.producer_state_ttl_ms;
    for topic in engine.topics_snapshot() {
        let (expired, clock) = (topic.clone(), engine.clock.clone());
        let purged = tokio::task::spawn_blocking(move || {
            expired.dedup.purge_expired(expired.id(), clock.now_ms())
        })
        .await;
        if let Ok(Err(err)) = purged {
            tracing::warn!(topic = %topic.name(), cause = %err, "purging expired msg-id records failed");
        }
        for partition in &topic.partitions {
            // A partition group's leader proposes the trim, with its cutoff, and every replica
            // applies it; followers never truncate on their own. A group's producer state lives
            // in the group (on every replica, from its entries): this task does not expire it
            // behind the group's back.
            if !partition.writes_here() {
                continue;
            }
            if !partition.replicated()
                && let Err(err) = expire_producers(partition, producer_ttl, &engine.clock).await
            {
                tracing::warn!(topic = %topic.name(), cause = %err, "expiring producer state failed");
            }
            if let Err(err) = enforce(partition, &topic.settings(), &engine.clock).await {
                tracing::warn!(topic = %topic.name(), partition = partition.shared().index, cause = %err, "retention check failed");
            }
        }
    }
}

async fn enforce(
    partition: &Partition,
    settings: &TopicSettings,
    clock: &Arc<dyn Clock>,
) -> Result<()> {
    if settings.retention_ms == 0
        && settings.retention_bytes == 0
        && settings.retention_messages == 0
    {
        return Ok(());
    }
    let shared = partition.shared().clone();
    let settings = settings.clone();
    let (scanner, clock) = (shared.clone(), clock.clone());
    let cut = shared
        .blocking(move || {
            let hw = scanner.high_watermark();
            let mut bytes = scanner.bytes();
            let oldest_kept = clock
                .now_ms()
                .saturating_sub(i64::try_from(settings.retention_ms).unwrap_or(i64::MAX));
            let mut cut = scanner.log_start();
            loop {
                let entries = scanner.scan_index(cut, SCAN_CHUNK)?;
                if entries.is_empty() {
                    return Ok(cut);
                }
                for (base, entry) in entries {
                    let end = base + u64::from(entry.count);
                    let too_old = settings.retention_ms > 0 && entry.append_time_ms < oldest_kept;
                    let too_many =
                        settings.retention_messages > 0 && hw - end >= settings.retention_messages;
                    let too_big = settings.retention_bytes > 0 && bytes > settings.retention_bytes;
                    if !(too_old || too_many || too_big) {
                        return Ok(cut);
                    }
                    bytes = bytes.saturating_sub(u64::from(entry.stored_len));
                    cut = end;
                }
            }
        })
        .await?;
    if cut > shared.log_start() {
        tracing::debug!(
            partition = shared.index,
            before = cut,
            "retention drops old batches"
        );
        partition.truncate(cut).await?;
    }
    Ok(())
}

/// Deletes idempotent-producer state not written for `ttl_ms`, so producers that come and go do
/// not accumulate forever. A producer that writes again later simply starts afresh.
async fn expire_producers(
    partition: &Partition,
    ttl_ms: u64,
    clock: &Arc<dyn Clock>,
) -> Result<()> {
    let shared = partition.shared().clone();
    let (scanner, clock) = (shared.clone(), clock.clone());
    shared
        .blocking(move || {
            let cutoff = clock
                .now_ms()
                .saturating_sub(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
            let expired = scanner.expired_producers(cutoff)?;
            scanner.delete_producers(expired)
        })
        .await
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use prost::Message as _;
    use rapidmq_proto::v1 as pb;

    use super::*;
    use crate::clock::ManualClock;
    use crate::config::Config;
    use crate::engine::{PublishParams, TopicSpec};
    use crate::principal::Principal;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_age_out_by_the_engine_clock() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let clock = Arc::new(ManualClock::new(1_000_000));
        let (runtime, engine_clock) = (tokio::runtime::Handle::current(), clock.clone());
        let engine = tokio::task::spawn_blocking(move || {
            Engine::open_with_clock(config, runtime, engine_clock)
        })
        .await
        .unwrap()
        .unwrap();
        let principal = Principal::anonymous();
        let spec = TopicSpec {
            retention_ms: Some(60_000),
            ..TopicSpec::default()
        };
        engine.create_topic(&principal, "t", spec).await.unwrap();
        let batch = pb::MessageBatch {
            messages: vec![pb::Message {
                value: Bytes::from_static(b"v"),
                ..Default::default()
            }],
            ..Default::default()
        };
        let params = PublishParams {
            topic: "t".into(),
            partition: 0,
            producer_id: 0,
            base_sequence: 0,
            batch: batch.encode_to_vec().into(),
        };
        let ack = engine.publish(&principal, params).await.unwrap();
        assert_eq!(ack.ack.append_time_ms, 1_000_000);
        let log_start = || {
            engine
                .topic_status_here(&principal, "t")
                .unwrap()
                .partitions[0]
                .log_start_offset
        };

        clock.advance(60_000);
        enforce_all(&engine).await;
        assert_eq!(log_start(), 0, "kept while not older than retention_ms");
        clock.advance(1);
        enforce_all(&engine).await;
        assert_eq!(log_start(), 1, "dropped once the clock passed retention_ms");
        engine.begin_shutdown();
        engine.shutdown().await;
    }
}
