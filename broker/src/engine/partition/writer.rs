//! The single writer of one partition: group commit, truncation, and recovery after a failed
//! write or a panic (see the parent module). What an append becomes (offsets, append times,
//! producer state, disk changes) is staged by `commit.rs`, which a partition group's state
//! machine shares; the writer runs the write and makes it visible or rolls it back.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};

use super::commit::{self, Append, LogState, NewProducers, Staged, Target};
use super::{
    AppendAck, AppendRequest, Command, CommitHook, MAX_CACHED_PRODUCERS, PartitionOptions,
    PartitionShared, recover,
};
use crate::engine::health;
use crate::engine::keys;
use crate::engine::producer::ProducerState;
use crate::engine::topic::AckDurability;
use crate::error::Result;
use crate::storage::{Cf, WriteBatch, fault};

/// The single writer of one partition.
pub(super) struct Writer {
    pub(super) shared: Arc<PartitionShared>,
    pub(super) rx: mpsc::Receiver<Command>,
    /// Where the next append goes, the producers' state, the cleanup a failed write left.
    pub(super) log: LogState,
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
        self.log.producers.clear();
        shared.tail.clear();
        let store = shared.store.clone();
        match shared.blocking(move || recover(&*store, t, p)).await {
            Ok((_, high_watermark, bytes)) => {
                let hw = high_watermark.max(shared.high_watermark());
                self.log.cursor.next_offset = hw;
                self.log.cleanup_from = None;
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
                self.log.cursor.next_offset = shared.high_watermark();
                self.log.cleanup_from = Some(self.log.cursor.next_offset);
            }
        }
        tracing::warn!(target: "rapidmq::health", event = "task_restarted", task = %self.task, high_watermark = self.log.cursor.next_offset, "partition writer reloaded its state after a panic");
    }

    async fn commit(&mut self, group: Vec<(AppendRequest, Reply)>) {
        fault::panic_point("writer");
        while self.log.producers.len() > MAX_CACHED_PRODUCERS {
            self.log.producers.pop_lru();
        }
        let shared = self.shared.clone();
        let (t, p) = (shared.topic_id, shared.index);
        let target = Target {
            topic_id: t,
            partition: p,
            durability: shared.ack(),
            producer_state_ttl_ms: self.options.producer_state_ttl_ms,
            new_producers: NewProducers::AnySequence,
        };
        let first_offset = self.log.cursor.next_offset;
        let mut ops = WriteBatch::new();
        let mut stored = Vec::with_capacity(group.len());
        let mut answers: Vec<(Reply, Result<AppendAck>)> = Vec::with_capacity(group.len());
        let mut written = Vec::with_capacity(group.len());
        let mut hooks: Vec<(CommitHook, u64)> = Vec::new();
        let now = self.options.clock.now_ms();

        for (mut request, reply) in group {
            if request.producer_id != 0
                && let Err(err) = self.load_producer(request.producer_id).await
            {
                answers.push((reply, Err(err)));
                continue;
            }
            let append = Append {
                payload: &request.payload,
                count: request.count,
                flags: request.flags,
                producer_id: request.producer_id,
                base_sequence: request.base_sequence,
                sequence_span: request.sequence_span,
                deduplicated: std::mem::take(&mut request.deduplicated),
                extras: &request.extras,
                value_bytes: request.value_bytes,
                raft: None,
            };
            let staged = commit::stage_append(
                &target,
                &mut self.log.cursor,
                &mut self.log.producers,
                append,
                now,
                &mut ops,
                &mut stored,
            );
            match staged {
                Staged::Appended(ack) => {
                    if let Some(hook) = request.on_commit.take() {
                        hooks.push((hook, ack.base_offset));
                    }
                    written.push(answers.len());
                    answers.push((reply, Ok(ack)));
                }
                Staged::Duplicate(ack) => {
                    // A retry of a batch written in this same group shares its fate.
                    if ack.base_offset >= first_offset && ack.count > 0 {
                        written.push(answers.len());
                    }
                    answers.push((reply, Ok(ack)));
                }
                Staged::Refused(err) => answers.push((reply, Err(err))),
            }
        }

        if !ops.is_empty() {
            let ops = self.log.with_cleanup(t, p, ops);
            let sync = target.durability == AckDurability::Fsync;
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
                self.log.roll_back(first_offset);
                for index in written {
                    answers[index].1 = Err(err.clone());
                }
                for (reply, answer) in answers {
                    let _ = reply.send(answer);
                }
                return;
            }
            self.log.cleanup_from = None;
            if target.durability == AckDurability::Buffered {
                self.options.dirty.store(true, Ordering::Release);
            }
            let added = commit::stored_bytes(&stored);
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
            for (hook, base_offset) in hooks {
                hook(base_offset);
            }
            shared.publish(stored, added, self.log.cursor.next_offset);
        } else {
            for (hook, base_offset) in hooks {
                hook(base_offset);
            }
        }
        for (reply, answer) in answers {
            let _ = reply.send(answer);
        }
    }

    /// Loads producer `id`'s state from the store into the cache, unless it is cached.
    async fn load_producer(&mut self, id: u64) -> Result<()> {
        if self.log.producers.contains(&id) {
            return Ok(());
        }
        let store = self.shared.store.clone();
        let key = keys::producer_key(self.shared.topic_id, self.shared.index, id);
        let loaded = self
            .shared
            .blocking(move || Ok(store.get(Cf::Producers, &key)?))
            .await?;
        if let Some(state) = loaded.as_deref().and_then(ProducerState::decode) {
            self.log.producers.put(id, state);
        }
        Ok(())
    }

    async fn truncate(&mut self, before: u64) -> Result<()> {
        let shared = self.shared.clone();
        let before = before.min(self.log.cursor.next_offset);
        if before <= shared.log_start() {
            return Ok(());
        }
        let this = shared.clone();
        let (removed, cut) = shared
            .blocking(move || {
                let mut ops = WriteBatch::new();
                let (removed, cut) = this.plan_trim(
                    this.log_start(),
                    before,
                    this.high_watermark(),
                    &[],
                    &mut ops,
                )?;
                this.store.write(ops, false)?;
                Ok((removed, cut))
            })
            .await?;
        shared.trimmed(removed, cut);
        Ok(())
    }
}
