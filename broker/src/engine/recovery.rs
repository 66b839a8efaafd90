//! Opening the engine: [`Engine::recover`] reopens every stored topic and subscription, and
//! repairs what needs it.
//!
//! - **Topic ids.** The next id is stored with every topic creation (`next_topic_id` in the
//!   metadata) and never goes back, so a topic created after a delete and a restart cannot
//!   inherit state keyed by an old id.
//! - **State above the recovered log.** A memory topic comes back empty and a buffered topic can
//!   lose its tail after an OS crash, so the high watermark can be lower than before. Committed
//!   cursors and queue ack state above it would skip the messages that get those offsets next.
//!   They are clamped to the high watermark, the clamped value is persisted (fsynced), and each
//!   clamp is logged as a `cursor_clamped` or `queue_state_clamped` health event.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::partition::{self, ConsumerChange, PartitionEntry};
use super::queue::{self, QueuePartition};
use super::subscription::{self, Subscription, SubscriptionRecord};
use super::topic::{Topic, TopicRecord};
use super::{Engine, command, keys, scheduler};
use crate::error::{Error, Result};
use crate::storage::{Cf, Store as _, WriteBatch};

impl Engine {
    /// Opens every stored topic with its subscriptions, their cursors and queue state, repairing
    /// what is above a recovered log, and makes them live.
    pub(super) fn recover(&self) -> Result<()> {
        let prefix = keys::TOPIC_META_PREFIX;
        let records = self
            .disk
            .scan(Cf::Meta, prefix, &keys::prefix_end(prefix), usize::MAX)?;
        let records = records
            .into_iter()
            .map(|(_, value)| {
                serde_json::from_slice::<TopicRecord>(&value)
                    .map_err(|err| Error::internal(format!("unreadable topic record: {err}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let max_id = records.iter().map(|record| record.id).max();
        self.next_topic_id
            .store(self.recovered_next_topic_id(max_id)?, Ordering::Relaxed);
        for record in records {
            let topic = self.open_topic(record)?;
            for sub in self.recover_subscriptions(&topic)? {
                topic
                    .subscriptions
                    .write()
                    .insert(sub.name().to_string(), sub);
            }
            tracing::info!(topic = %topic.name(), partitions = topic.partitions.len(), "topic recovered");
            self.insert_topic(topic);
        }
        Ok(())
    }

    /// The stored subscriptions of `topic`, with their cursors and queue state, repaired above
    /// a recovered log (which persists the repair).
    pub(super) fn recover_subscriptions(&self, topic: &Topic) -> Result<Vec<Arc<Subscription>>> {
        let mut subs = Vec::new();
        let sub_prefix = keys::subscription_meta_prefix(topic.id());
        for (_, value) in self.disk.scan(
            Cf::Meta,
            &sub_prefix,
            &keys::prefix_end(&sub_prefix),
            usize::MAX,
        )? {
            let record: SubscriptionRecord = serde_json::from_slice(&value)
                .map_err(|err| Error::internal(format!("unreadable subscription record: {err}")))?;
            let mut cursors = (0..topic.settings().partitions)
                .map(|p| {
                    let key = keys::cursor_key(topic.id(), &record.name, p);
                    Ok(self
                        .disk
                        .get(Cf::Cursors, &key)?
                        .as_deref()
                        .and_then(partition::decode_offset)
                        .unwrap_or(0))
                })
                .collect::<Result<Vec<u64>>>()?;
            let mut states = match &record.queue {
                Some(_) => {
                    let mut states = Vec::with_capacity(cursors.len());
                    for (p, &floor) in cursors.iter().enumerate() {
                        let key = keys::cursor_key(topic.id(), &record.name, p as u32);
                        let state = self
                            .disk
                            .get(Cf::Acks, &key)?
                            .as_deref()
                            .and_then(queue::QueuePartition::decode);
                        states.push(state.unwrap_or_else(|| queue::QueuePartition::new(floor)));
                    }
                    Some(states)
                }
                None => None,
            };
            self.clamp_to_recovered_log(topic, &record.name, &mut cursors, states.as_deref_mut())?;
            let queue = record
                .queue
                .clone()
                .zip(states)
                .map(|(settings, states)| subscription::QueueRuntime::new(settings, states));
            subs.push(Arc::new(Subscription::with_queue(
                record,
                topic.id(),
                cursors,
                queue,
            )));
        }
        Ok(subs)
    }

    /// Writes repairs of partition entries from a blocking context, before the engine serves
    /// anything. Their in-memory effects are the caller's: it builds the live subscription
    /// from the repaired values.
    fn write_during_recovery(&self, entries: &[PartitionEntry]) -> Result<()> {
        let mut batch = WriteBatch::new();
        for entry in entries {
            entry.write_to(&mut batch);
        }
        self.disk.write(batch, true)?;
        Ok(())
    }

    /// The next topic id: the stored one, raised past `max_record_id` (a record written by a
    /// broker that did not store it). A data directory from before the stored id also has its
    /// pending delayed messages scanned, since a deleted topic's could still be there.
    pub(super) fn recovered_next_topic_id(&self, max_record_id: Option<u32>) -> Result<u32> {
        let stored = self
            .disk
            .get(Cf::Meta, keys::NEXT_TOPIC_ID_KEY)?
            .as_deref()
            .and_then(command::decode_topic_id);
        let leftovers = match stored {
            Some(_) => None,
            None => scheduler::max_scheduled_topic_id(&*self.disk)?,
        };
        let next = [
            stored,
            max_record_id.map(|id| id + 1),
            leftovers.map(|id| id + 1),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(1)
        .max(1);
        if stored != Some(next) {
            let mut batch = crate::storage::WriteBatch::new();
            batch.put(
                Cf::Meta,
                keys::NEXT_TOPIC_ID_KEY.to_vec(),
                Bytes::copy_from_slice(&next.to_be_bytes()),
            );
            self.disk.write(batch, true)?;
        }
        Ok(next)
    }

    /// Clamps a recovered subscription's cursors and queue states to its topic's recovered high
    /// watermarks, persisting and reporting every change.
    pub(super) fn clamp_to_recovered_log(
        &self,
        topic: &Topic,
        subscription: &str,
        cursors: &mut [u64],
        queue: Option<&mut [QueuePartition]>,
    ) -> Result<()> {
        let high_watermark = |p: usize| topic.partitions[p].shared().high_watermark();
        let mut offsets = Vec::new();
        for (p, cursor) in cursors.iter_mut().enumerate() {
            let to = high_watermark(p);
            if *cursor > to {
                tracing::warn!(
                    target: "rapidmq::health",
                    event = "cursor_clamped",
                    topic = %topic.name(),
                    subscription,
                    partition = p,
                    from = *cursor,
                    to,
                    "committed offset above the recovered log; clamped to its high watermark"
                );
                self.metrics.recovery_clamps.fetch_add(1, Ordering::Relaxed);
                *cursor = to;
                let change = ConsumerChange::Commit(to);
                offsets.push(PartitionEntry::new(
                    topic.id(),
                    p as u32,
                    subscription,
                    change,
                ));
            }
        }
        if !offsets.is_empty() {
            self.write_during_recovery(&offsets)?;
        }
        let Some(states) = queue else {
            return Ok(());
        };
        let mut changed = Vec::new();
        for (p, state) in states.iter_mut().enumerate() {
            let to = high_watermark(p);
            if let Some(from) = state.clamp_to(to) {
                tracing::warn!(
                    target: "rapidmq::health",
                    event = "queue_state_clamped",
                    topic = %topic.name(),
                    subscription,
                    partition = p,
                    from,
                    to,
                    "queue ack state above the recovered log; clamped to its high watermark"
                );
                self.metrics.recovery_clamps.fetch_add(1, Ordering::Relaxed);
                let change = ConsumerChange::QueueState(state.encode());
                changed.push(PartitionEntry::new(
                    topic.id(),
                    p as u32,
                    subscription,
                    change,
                ));
            }
        }
        if !changed.is_empty() {
            self.write_during_recovery(&changed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::engine::TopicSpec;
    use crate::principal::Principal;
    use crate::storage::{RocksStore, RocksTuning, Store, WriteBatch};

    async fn open(config: &Config) -> Arc<Engine> {
        let (config, runtime) = (config.clone(), tokio::runtime::Handle::current());
        tokio::task::spawn_blocking(move || Engine::open(config, runtime))
            .await
            .unwrap()
            .unwrap()
    }

    async fn reopen(engine: Arc<Engine>, config: &Config) -> Arc<Engine> {
        engine.begin_shutdown();
        engine.shutdown().await;
        drop(engine);
        open(config).await
    }

    async fn create(engine: &Engine, name: &str) -> u32 {
        let principal = Principal::anonymous();
        engine
            .create_topic(&principal, name, TopicSpec::default())
            .await
            .unwrap();
        engine.topic(&principal, name).unwrap().id()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_topic_id_is_never_handed_out_twice_across_deletes_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let principal = Principal::anonymous();
        let engine = open(&config).await;
        let first = create(&engine, "a").await;
        engine.delete_topic(&principal, "a").await.unwrap();

        let engine = reopen(engine, &config).await;
        let second = create(&engine, "a").await;
        assert!(second > first, "{second} reuses or precedes {first}");
        let third = create(&engine, "b").await;
        engine.delete_topic(&principal, "b").await.unwrap();

        let engine = reopen(engine, &config).await;
        let fourth = create(&engine, "c").await;
        assert!(fourth > third, "{fourth} reuses or precedes {third}");
        engine.begin_shutdown();
        engine.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_data_directory_without_a_stored_next_id_skips_ids_with_delayed_messages() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        {
            // As an older broker left it: topic 9 deleted, one of its delayed messages kept.
            let store =
                RocksStore::open(&dir.path().join("store"), &RocksTuning::default()).unwrap();
            let mut batch = WriteBatch::new();
            batch.put(
                Cf::Schedule,
                keys::schedule_key(i64::MAX / 2, 9, 0, 1),
                Bytes::from_static(b"m"),
            );
            store.write(batch, true).unwrap();
        }
        let engine = open(&config).await;
        assert_eq!(create(&engine, "a").await, 10);
        engine.begin_shutdown();
        engine.shutdown().await;
    }
}
