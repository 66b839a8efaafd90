//! The single writer of one partition: group commit, offsets and append times, producer
//! state, truncation, and recovery after a failed write or a panic (see the parent module).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use lru::LruCache;
use rapidmq_proto::ErrorCode;
use tokio::sync::{mpsc, oneshot};

use super::{
    AppendAck, AppendRequest, Command, CommitHook, INDEX_CHUNK, MAX_CACHED_PRODUCERS,
    PartitionOptions, PartitionShared, recover,
};
use crate::engine::batch::{self, IndexEntry, StoredBatch};
use crate::engine::health;
use crate::engine::keys;
use crate::engine::producer::{ProducerState, RecentBatch, SequenceCheck};
use crate::engine::topic::AckDurability;
use crate::error::{Error, Result};
use crate::storage::{Cf, WriteBatch, fault};

/// The single writer of one partition.
pub(super) struct Writer {
    pub(super) shared: Arc<PartitionShared>,
    pub(super) rx: mpsc::Receiver<Command>,
    pub(super) next_offset: u64,
    pub(super) last_append_time_ms: i64,
    pub(super) producers: LruCache<u64, ProducerState>,
    /// Set after a failed write: the next write first deletes the log and index from here on.
    pub(super) cleanup_from: Option<u64>,
    /// The task's name in health events.
    pub(super) task: Arc<str>,
    pub(super) options: PartitionOptions,
}

type Reply = oneshot::Sender<Result<AppendAck>>;

impl Writer {
    pub(super) async fn run(mut self) {
        let mut group: Vec<(AppendRequest, Reply)> = Vec::new();
        let mut stop = false;
        while !stop && let Some(command) = self.rx.recv().await {
            let mut pending_truncate = None;
            let mut group_bytes = 0;
            let mut next = Some(command);
            while let Some(command) = next.take() {
                match command {
                    Command::Append(request, reply) => {
                        group_bytes += request.payload.len();
                        group.push((request, reply));
                    }
                    Command::Truncate { before, done } => {
                        pending_truncate = Some((before, done));
                        break;
                    }
                    Command::Stop => {
                        stop = true;
                        break;
                    }
                }
                if group_bytes >= self.options.max_group_commit_bytes {
                    break;
                }
                next = self.rx.try_recv().ok();
            }
            let (health, task) = (self.options.health.clone(), self.task.clone());
            if !group.is_empty() {
                let group = std::mem::take(&mut group);
                if health::catch(&health, &task, self.commit(group))
                    .await
                    .is_none()
                {
                    self.reload().await;
                }
            }
            if let Some((before, done)) = pending_truncate {
                match health::catch(&health, &task, self.truncate(before)).await {
                    Some(result) => {
                        let _ = done.send(result);
                    }
                    None => self.reload().await,
                }
            }
        }
    }

    /// After a panic the store is the truth: reloads the high watermark and size from it, makes
    /// visible whatever the store holds (a group whose write succeeded before the panic), and
    /// drops the tail cache and cached producer state, which may be half-updated.
    async fn reload(&mut self) {
        let shared = self.shared.clone();
        let (t, p) = (shared.topic_id, shared.index);
        self.producers.clear();
        shared.tail.clear();
        let store = shared.store.clone();
        match shared.blocking(move || recover(&*store, t, p)).await {
            Ok((_, high_watermark, bytes)) => {
                let hw = high_watermark.max(shared.high_watermark());
                self.next_offset = hw;
                self.cleanup_from = None;
                shared.set_bytes(bytes);
                shared.hw.send_if_modified(|current| {
                    let moved = *current < hw;
                    *current = hw.max(*current);
                    moved
                });
            }
            Err(err) => {
                // Keep what readers see; the next write deletes anything stored above it.
                self.options
                    .metrics
                    .storage_error(&err, "reloading a partition after a panic");
                self.next_offset = shared.high_watermark();
                self.cleanup_from = Some(self.next_offset);
            }
        }
        tracing::warn!(target: "rapidmq::health", event = "task_restarted", task = %self.task, high_watermark = self.next_offset, "partition writer reloaded its state after a panic");
    }

    async fn commit(&mut self, group: Vec<(AppendRequest, Reply)>) {
        fault::panic_point("writer");
        while self.producers.len() > MAX_CACHED_PRODUCERS {
            self.producers.pop_lru();
        }
        let shared = self.shared.clone();
        let (t, p) = (shared.topic_id, shared.index);
        let first_offset = self.next_offset;
        let mut ops = WriteBatch::new();
        let mut stored = Vec::with_capacity(group.len());
        let mut answers: Vec<(Reply, Result<AppendAck>)> = Vec::with_capacity(group.len());
        let mut written = Vec::with_capacity(group.len());
        let mut hooks: Vec<(CommitHook, u64)> = Vec::new();
        let now = self.options.clock.now_ms();

        for (mut request, reply) in group {
            if request.producer_id != 0 {
                match self.sequence_check(&request, now).await {
                    Ok(SequenceCheck::Append) => {}
                    Ok(SequenceCheck::Duplicate(original)) => {
                        let mut ack = self.ack(
                            original.base_offset,
                            original.count,
                            original.append_time_ms,
                            true,
                        );
                        ack.deduplicated = original.deduplicated.clone();
                        // A retry of a batch written in this same group shares its fate.
                        if original.base_offset >= first_offset && original.count > 0 {
                            written.push(answers.len());
                        }
                        answers.push((reply, Ok(ack)));
                        continue;
                    }
                    Ok(SequenceCheck::DuplicateUnknown) => {
                        answers.push((reply, Err(Error::new(
                            ErrorCode::OutOfOrderSequence,
                            format!(
                                "batch with sequence {} of producer {} was stored long ago; its offsets are no longer known",
                                request.base_sequence, request.producer_id
                            ),
                        ))));
                        continue;
                    }
                    Ok(SequenceCheck::Gap { expected }) => {
                        answers.push((reply, Err(Error::new(
                            ErrorCode::OutOfOrderSequence,
                            format!(
                                "producer {} sent sequence {} but {} was expected: batches in between are missing",
                                request.producer_id, request.base_sequence, expected
                            ),
                        ))));
                        continue;
                    }
                    Err(err) => {
                        answers.push((reply, Err(err)));
                        continue;
                    }
                }
            }
            let base_offset = self.next_offset;
            let append_time_ms = now.max(self.last_append_time_ms);
            self.next_offset += u64::from(request.count);
            self.last_append_time_ms = append_time_ms;

            if request.count > 0 {
                let value = batch::encode_stored(
                    request.flags,
                    base_offset,
                    request.count,
                    append_time_ms,
                    request.producer_id,
                    request.base_sequence,
                    &request.payload,
                );
                let key = keys::log_key(t, p, base_offset);
                let entry = IndexEntry {
                    count: request.count,
                    append_time_ms,
                    stored_len: value.len() as u32,
                };
                ops.put(Cf::Index, key.clone(), entry.encode());
                ops.put(Cf::Log, key, value.clone());
                stored.push(Arc::new(StoredBatch {
                    flags: request.flags,
                    base_offset,
                    count: request.count,
                    append_time_ms,
                    payload: value.slice(batch::HEADER_LEN..),
                    value_bytes: request.value_bytes,
                }));
            }
            for extra in request.extras.drain(..) {
                extra.write_to(self.shared.topic_id, &mut ops);
            }
            if request.producer_id != 0 {
                let state = self
                    .producers
                    .get_or_insert_mut(request.producer_id, ProducerState::default);
                state.record(RecentBatch {
                    base_sequence: request.base_sequence,
                    span: request.sequence_span,
                    base_offset,
                    count: request.count,
                    append_time_ms,
                    deduplicated: std::mem::take(&mut request.deduplicated),
                });
                ops.put(
                    Cf::Producers,
                    keys::producer_key(t, p, request.producer_id),
                    state.encode(),
                );
            }
            if let Some(hook) = request.on_commit.take() {
                hooks.push((hook, base_offset));
            }
            let ack = self.ack(base_offset, request.count, append_time_ms, false);
            written.push(answers.len());
            answers.push((reply, Ok(ack)));
        }

        if !ops.is_empty() {
            if let Some(from) = self.cleanup_from {
                let mut cleanup = WriteBatch::new();
                let (lower, upper) = (keys::log_key(t, p, from), keys::log_key(t, p, u64::MAX));
                cleanup.delete_range(Cf::Log, lower.clone(), upper.clone());
                cleanup.delete_range(Cf::Index, lower, upper);
                cleanup.extend(ops);
                ops = cleanup;
            }
            let ack = shared.ack();
            let sync = ack == AckDurability::Fsync;
            let store = shared.store.clone();
            let span = tracing::debug_span!(
                "commit",
                topic_id = t,
                partition = p,
                batches = stored.len(),
                fsync = sync
            );
            let started = std::time::Instant::now();
            let result = tracing::Instrument::instrument(
                shared.blocking(move || Ok(store.write(ops, sync)?)),
                span,
            )
            .await;
            let metrics = &self.options.metrics;
            if let Err(err) = result {
                metrics.storage_error(&err, "group commit");
                // Nothing of this group is visible: give its offsets back (the next write deletes
                // anything the store may still hold there) and forget producer state we
                // advanced, so it is reloaded from the store.
                self.next_offset = first_offset;
                self.cleanup_from = Some(
                    self.cleanup_from
                        .map_or(first_offset, |c| c.min(first_offset)),
                );
                self.producers.clear();
                for index in written {
                    answers[index].1 = Err(err.clone());
                }
                for (reply, answer) in answers {
                    let _ = reply.send(answer);
                }
                return;
            }
            self.cleanup_from = None;
            if ack == AckDurability::Buffered {
                self.options.dirty.store(true, Ordering::Release);
            }
            let added: u64 = stored.iter().map(|b| b.stored_len() as u64).sum();
            if metrics.enabled {
                if sync {
                    metrics.fsync_done(started.elapsed(), "group commit");
                }
                let messages: u64 = stored.iter().map(|b| u64::from(b.count)).sum();
                metrics.group_commit_messages.observe(messages as f64);
                metrics.group_commit_kib.observe(added as f64 / 1024.0);
            } else if sync {
                metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
            }
            shared.add_bytes(added);
            for (hook, base_offset) in hooks {
                hook(base_offset);
            }
            shared.tail.push(stored);
            shared.hw.send_replace(self.next_offset);
        } else {
            for (hook, base_offset) in hooks {
                hook(base_offset);
            }
        }
        for (reply, answer) in answers {
            let _ = reply.send(answer);
        }
    }

    fn ack(&self, base_offset: u64, count: u32, append_time_ms: i64, duplicate: bool) -> AppendAck {
        AppendAck {
            base_offset,
            count,
            append_time_ms,
            durability: self.shared.ack(),
            duplicate,
            deduplicated: Vec::new(),
        }
    }

    async fn sequence_check(&mut self, request: &AppendRequest, now: i64) -> Result<SequenceCheck> {
        let id = request.producer_id;
        if !self.producers.contains(&id) {
            let store = self.shared.store.clone();
            let key = keys::producer_key(self.shared.topic_id, self.shared.index, id);
            let loaded = self
                .shared
                .blocking(move || Ok(store.get(Cf::Producers, &key)?))
                .await?;
            if let Some(state) = loaded.as_deref().and_then(ProducerState::decode) {
                self.producers.put(id, state);
            }
        }
        let ttl = i64::try_from(self.options.producer_state_ttl_ms).unwrap_or(i64::MAX);
        if let Some(state) = self.producers.get(&id)
            && now.saturating_sub(state.last_write_ms) > ttl
        {
            self.producers.pop(&id);
        }
        Ok(ProducerState::check(
            self.producers.get(&id),
            request.base_sequence,
        ))
    }

    async fn truncate(&mut self, before: u64) -> Result<()> {
        let shared = self.shared.clone();
        let before = before.min(self.next_offset);
        if before <= shared.log_start() {
            return Ok(());
        }
        let (t, p) = (shared.topic_id, shared.index);
        let this = shared.clone();
        let (removed, cut) = shared
            .blocking(move || {
                let mut removed = 0u64;
                let mut from = this.log_start();
                'scan: loop {
                    let entries = this.scan_index(from, INDEX_CHUNK)?;
                    if entries.is_empty() {
                        break;
                    }
                    for (base, entry) in &entries {
                        if base + u64::from(entry.count) > before {
                            break 'scan;
                        }
                        removed += u64::from(entry.stored_len);
                        from = base + u64::from(entry.count);
                    }
                }
                // `from` is now the end of the last whole batch to drop: cut there.
                let cut = from;
                let mut ops = WriteBatch::new();
                ops.delete_range(Cf::Log, keys::log_key(t, p, 0), keys::log_key(t, p, cut));
                ops.delete_range(Cf::Index, keys::log_key(t, p, 0), keys::log_key(t, p, cut));
                ops.put(
                    Cf::Meta,
                    keys::watermark_key(t, p),
                    Bytes::copy_from_slice(&this.high_watermark().to_be_bytes()),
                );
                this.store.write(ops, false)?;
                Ok((removed, cut))
            })
            .await?;
        if cut <= shared.log_start() {
            return Ok(());
        }
        shared.log_start.store(cut, Ordering::Release);
        shared.remove_bytes(removed);
        shared.tail.truncate(cut);
        Ok(())
    }
}
