//! Delayed delivery: a background task that appends scheduled messages to their partitions when
//! they fall due.
//!
//! Entries sit in the `schedule` column family keyed by due time first, so the next due entry is
//! the first key and nothing is held in memory: a million pending delays cost a million small
//! RocksDB entries, not RAM. Due entries are merged into one batch per partition and appended
//! through the partition writer with their schedule keys deleted in the same write, so a crash
//! can neither lose nor duplicate them. The task sleeps until the next due time (at most a
//! second) or until a publish schedules something.
//!
//! Deleting a topic deletes its pending entries in the same write as the rest of the topic
//! ([`scheduled_keys`] finds them), and topic ids are never reused, so a delayed message can
//! only ever reach the topic it was published to.
//!
//! In cluster mode a partition group's delayed messages are scheduled and released through the
//! group (the extras of its appends), so they are on every replica; only the group's leader
//! releases them, and followers leave them alone.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, watch};

use super::partition::{AppendExtra, AppendRequest};
use super::{Engine, keys, publish};
use crate::error::Result;
use crate::storage::{Cf, StorageError, Store, WriteBatch};

/// Entries moved per partition per round.
const ROUND: usize = 10_000;
/// Longest sleep between checks.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Due entries of one partition: their schedule keys and one-message batches.
type DueGroup = (Vec<Vec<u8>>, Vec<Bytes>);

pub async fn run(engine: Weak<Engine>, wake: Arc<Notify>, mut stopping: watch::Receiver<bool>) {
    let Some(clock) = engine.upgrade().map(|engine| engine.clock.clone()) else {
        return;
    };
    loop {
        let next_due = {
            let Some(engine) = engine.upgrade() else {
                return;
            };
            match engine.release_due().await {
                Ok(next) => next,
                Err(err) => {
                    tracing::warn!(cause = %err, "moving due delayed messages failed; retrying");
                    None
                }
            }
        };
        let sleep = next_due
            .map(|due| Duration::from_millis(due.saturating_sub(clock.now_ms()).max(0) as u64))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = wake.notified() => {}
            _ = stopping.changed() => return,
        }
    }
}

/// The schedule keys of every pending delayed message of `topic_id` in `store`. The schedule is
/// keyed by due time first, so this reads all of it, a page at a time: it serves topic deletion
/// and recovery, never the publish path.
pub fn scheduled_keys(store: &dyn Store, topic_id: u32) -> Result<Vec<Vec<u8>>> {
    let mut found = Vec::new();
    for_each_scheduled(store, |key, _, id, _| {
        if id == topic_id {
            found.push(key.to_vec());
        }
    })?;
    Ok(found)
}

/// The highest topic id with a pending delayed message in `store`.
pub fn max_scheduled_topic_id(store: &dyn Store) -> Result<Option<u32>> {
    let mut max = None;
    for_each_scheduled(store, |_, _, id, _| max = max.max(Some(id)))?;
    Ok(max)
}

/// The schedule entries `(key, batch)` of partition `partition` of topic `topic_id` in
/// `store`, in due order: what a partition group's snapshot carries (cluster mode), so a replica
/// rebuilt from one holds the same pending delayed messages as the group. Reads all of the
/// schedule, as [`scheduled_keys`] does.
pub fn partition_schedule(
    store: &dyn Store,
    topic_id: u32,
    partition: u32,
) -> std::result::Result<Vec<(Vec<u8>, Bytes)>, StorageError> {
    let mut found = Vec::new();
    for_each_scheduled(store, |key, value, id, p| {
        if (id, p) == (topic_id, partition) {
            found.push((key.to_vec(), value.clone()));
        }
    })?;
    Ok(found)
}

/// Calls `visit` with every schedule entry of `store`: its key, batch, topic id and partition.
fn for_each_scheduled(
    store: &dyn Store,
    mut visit: impl FnMut(&[u8], &Bytes, u32, u32),
) -> std::result::Result<(), StorageError> {
    let end = [0xff; 25];
    let mut from = Vec::new();
    loop {
        let page = store.scan(Cf::Schedule, &from, &end, ROUND)?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        from = last.clone();
        from.push(0);
        for (key, value) in &page {
            if let Some((_, topic_id, partition)) = keys::parse_schedule_key(key) {
                visit(key, value, topic_id, partition);
            }
        }
        if page.len() < ROUND {
            return Ok(());
        }
    }
}

impl Engine {
    /// Appends every due scheduled message; returns the due time of the next pending one.
    pub(super) async fn release_due(&self) -> Result<Option<i64>> {
        if !self.background_writes_ready() {
            return Ok(None);
        }
        let mut next = None;
        for store in [self.disk.clone() as Arc<dyn Store>, self.memory.clone()] {
            if let Some(due) = self.release_due_in(store).await? {
                next = Some(next.map_or(due, |n: i64| n.min(due)));
            }
        }
        Ok(next)
    }

    async fn release_due_in(&self, store: Arc<dyn Store>) -> Result<Option<i64>> {
        loop {
            let now = self.clock.now_ms();
            let upper = keys::schedule_key(now + 1, 0, 0, 0);
            let scan_store = store.clone();
            let due = tokio::task::spawn_blocking(move || {
                scan_store.scan(Cf::Schedule, &[], &upper, ROUND)
            })
            .await
            .map_err(|err| {
                crate::error::Error::internal(format!("schedule scan failed: {err}"))
            })??;
            if due.is_empty() {
                break;
            }
            let mut released = false;
            let mut groups: BTreeMap<(u32, u32), DueGroup> = BTreeMap::new();
            for (key, value) in due {
                let Some((_, topic_id, partition)) = keys::parse_schedule_key(&key) else {
                    continue;
                };
                let group = groups.entry((topic_id, partition)).or_default();
                group.0.push(key);
                group.1.push(value);
            }
            for ((topic_id, partition), (keys_due, batches)) in groups {
                let target = self.topic_by_id(topic_id);
                let Some(partition) = target.as_ref().and_then(|t| t.partition(partition)) else {
                    // The topic was deleted: drop its pending delays.
                    let mut orphans = WriteBatch::new();
                    for key in keys_due {
                        orphans.delete(Cf::Schedule, key);
                    }
                    store.write(orphans, false)?;
                    released = true;
                    continue;
                };
                // A partition group's delayed messages are released by its leader, through the
                // group (the release deletes the schedule keys on every replica); a follower
                // leaves them to it.
                if !partition.writes_here() {
                    continue;
                }
                let (payload, count, flags) = publish::merge_due(&batches)?;
                let mut request = AppendRequest::batch(payload, count, flags);
                request.extras = keys_due
                    .into_iter()
                    .map(|key| AppendExtra::Unschedule { key })
                    .collect();
                let ack = partition.append(request).await?;
                ack.await
                    .map_err(|_| crate::error::Error::unavailable("the partition is closing"))??;
                tracing::debug!(
                    topic_id,
                    partition = partition.shared().index,
                    count,
                    "delayed messages are due"
                );
                released = true;
            }
            if !released {
                // Only other nodes' to release: look again after the usual pause.
                return Ok(None);
            }
        }
        let first = store.scan(Cf::Schedule, &[], &[0xff; 25], 1)?;
        Ok(first
            .first()
            .and_then(|(key, _)| keys::parse_schedule_key(key))
            .map(|(due, _, _)| due))
    }
}
